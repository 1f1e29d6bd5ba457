//! Phone calls through Twilio Media Streams: `GET /twilio` is the bidirectional stream a
//! `<Connect><Stream>` opens (caller audio in, agent audio, marks and `clear` out) and
//! `POST /twilio/voice` answers the voice webhook with that TwiML. Calls run the same session
//! as `/agent`, in mu-law at the stream's rate (8 kHz), under the same admission rules.

mod call;
pub mod inbound;
pub mod marks;
pub mod messages;
pub mod outbound;
mod twiml;

pub use twiml::{document as twiml_document, voice, VoiceQuery};

use crate::server::AppState;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Largest text frame read from Twilio; media messages carry about 300 bytes.
pub const MAX_TWILIO_FRAME_BYTES: usize = 64 * 1024;

/// `GET /twilio`: admit the call like an `/agent` session (drain, origin, capacity), then
/// upgrade to the Media Streams WebSocket.
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // Twilio sends no Origin; a browser page that tries to open this stream does.
    let permit = match crate::server::admit(&state, &headers) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    ws.max_message_size(MAX_TWILIO_FRAME_BYTES)
        .max_frame_size(MAX_TWILIO_FRAME_BYTES)
        .on_upgrade(move |socket| call::serve(socket, state, permit))
        .into_response()
}
