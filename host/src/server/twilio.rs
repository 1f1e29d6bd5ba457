//! `GET /twilio` (the Media Stream, admitted like `/agent`) and `POST /twilio/voice` (the voice
//! webhook: signature checked, TwiML with a stream token for the call).

use super::agent::refused;
use super::AppState;
use crate::admission::{Refusal, Request, Route};
use crate::transport::twilio::{self, MAX_TWILIO_FRAME_BYTES};
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// Admit the call like an `/agent` session, then upgrade to the Media Streams WebSocket.
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    // Twilio sends no Origin; a browser page that tries to open this stream does.
    let request = Request {
        route: Route::Twilio,
        peer: peer.ip(),
        headers: &headers,
        uri: &uri,
    };
    let admitted = match state.admission.admit(&request) {
        Ok(a) => a,
        Err(r) => return refused(Route::Twilio, peer, r),
    };
    let env = state.session_env();
    ws.max_message_size(MAX_TWILIO_FRAME_BYTES)
        .max_frame_size(MAX_TWILIO_FRAME_BYTES)
        .read_buffer_size(crate::ws_buffers::READ_BUFFER_BYTES)
        .on_upgrade(move |socket| twilio::serve(socket, env, admitted))
        .into_response()
}

/// Answer Twilio's voice webhook with `<Connect><Stream>` to this host.
pub async fn voice(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<twilio::VoiceQuery>,
    body: Bytes,
) -> Response {
    let agent = query.agent.as_deref().filter(|a| !a.is_empty());
    if agent.is_some_and(|a| !twilio::valid_agent(a)) {
        return Refusal::new(
            StatusCode::BAD_REQUEST,
            "bad_agent",
            "agent must be 1-64 letters, digits, '_' or '-'",
        )
        .into_response();
    }
    let webhook = match state
        .admission
        .twilio_webhook(peer.ip(), &headers, &uri, &body, agent)
    {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        twilio::twiml_document(&webhook.host, agent, webhook.stream_token.as_deref()),
    )
        .into_response()
}
