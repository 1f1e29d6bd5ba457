//! `GET /agent`: admission before the WebSocket upgrade, then client protocol v1.

use super::AppState;
use crate::admission::{Refusal, Request, Route, PROTOCOL};
use crate::transport::protocol::MAX_AUDIO_FRAME_BYTES;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// Log a refusal by its code and client, never by its token.
pub(super) fn refused(route: Route, peer: SocketAddr, r: Refusal) -> Response {
    tracing::info!(?route, peer = %peer.ip(), code = r.code, status = r.status.as_u16(), "session refused");
    r.into_response()
}

/// Admit or refuse a session, then upgrade.
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    let request = Request {
        route: Route::Agent,
        peer: peer.ip(),
        headers: &headers,
        uri: &uri,
    };
    let admitted = match state.admission.admit(&request) {
        Ok(a) => a,
        Err(r) => return refused(Route::Agent, peer, r),
    };
    let env = state.session_env();
    // Frames up to 1 MiB are read so an oversize audio frame gets a protocol error (1009)
    // rather than a dropped connection; larger ones are refused by the WebSocket layer.
    // A client that offered subprotocols gets `voice-host.v1` back, never its token entry.
    ws.protocols([PROTOCOL])
        .max_message_size(16 * MAX_AUDIO_FRAME_BYTES)
        .max_frame_size(16 * MAX_AUDIO_FRAME_BYTES)
        .read_buffer_size(crate::ws_buffers::READ_BUFFER_BYTES)
        .on_upgrade(move |socket| crate::transport::v1::serve(socket, env, admitted))
        .into_response()
}
