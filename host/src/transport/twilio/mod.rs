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
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

/// Largest text frame read from Twilio; media messages carry about 300 bytes.
pub const MAX_TWILIO_FRAME_BYTES: usize = 64 * 1024;

fn refuse(status: StatusCode, code: &str, message: &str, retry_after: Option<u32>) -> Response {
    crate::metrics::global().sessions_rejected.inc();
    let body = Json(json!({"type": "error", "code": code, "message": message, "fatal": true}));
    match retry_after {
        Some(s) => (status, [(header::RETRY_AFTER, s.to_string())], body).into_response(),
        None => (status, body).into_response(),
    }
}

/// `GET /twilio`: admit the call like an `/agent` session (drain, origin, capacity), then
/// upgrade to the Media Streams WebSocket.
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if state.is_draining() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the server is shutting down",
            Some(5),
        );
    }
    // Twilio sends no Origin; a browser page that tries to open this stream does.
    if !state.config.allowed_origins.is_empty() {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let allowed = origin
                .to_str()
                .is_ok_and(|o| state.config.allowed_origins.iter().any(|a| a == o));
            if !allowed {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "origin_not_allowed",
                    "this origin may not open sessions",
                    None,
                );
            }
        }
    }
    let Some(permit) = state.try_admit() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "at_capacity",
            "the server is at capacity",
            Some(1),
        );
    };
    ws.max_message_size(MAX_TWILIO_FRAME_BYTES)
        .max_frame_size(MAX_TWILIO_FRAME_BYTES)
        .on_upgrade(move |socket| call::serve(socket, state, permit))
        .into_response()
}
