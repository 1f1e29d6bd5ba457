//! `GET /agent`: admission (origin, capacity, drain) before the WebSocket upgrade.

use super::AppState;
use crate::transport::protocol::MAX_AUDIO_FRAME_BYTES;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

fn refuse(status: StatusCode, code: &str, message: &str, retry_after: Option<u32>) -> Response {
    crate::metrics::global().sessions_rejected.inc();
    let body = Json(json!({"type": "error", "code": code, "message": message, "fatal": true}));
    match retry_after {
        Some(s) => (status, [(header::RETRY_AFTER, s.to_string())], body).into_response(),
        None => (status, body).into_response(),
    }
}

/// Admission shared by every session endpoint: refuse while draining, from a foreign `Origin`
/// (requests without one, native clients and Twilio, pass) or at capacity; else a session slot.
pub fn admit(state: &AppState, headers: &HeaderMap) -> Result<OwnedSemaphorePermit, Box<Response>> {
    if state.is_draining() {
        return Err(Box::new(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the server is shutting down",
            Some(5),
        )));
    }
    if !state.config.allowed_origins.is_empty() {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let allowed = origin
                .to_str()
                .is_ok_and(|o| state.config.allowed_origins.iter().any(|a| a == o));
            if !allowed {
                return Err(Box::new(refuse(
                    StatusCode::FORBIDDEN,
                    "origin_not_allowed",
                    "this origin may not open sessions",
                    None,
                )));
            }
        }
    }
    state.try_admit().ok_or_else(|| {
        Box::new(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "at_capacity",
            "the server is at capacity",
            Some(1),
        ))
    })
}

/// Admit or refuse a session, then upgrade.
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let permit = match admit(&state, &headers) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    // Frames up to 1 MiB are read so an oversize audio frame gets a protocol error (1009)
    // rather than a dropped connection; larger ones are refused by the WebSocket layer.
    ws.max_message_size(16 * MAX_AUDIO_FRAME_BYTES)
        .max_frame_size(16 * MAX_AUDIO_FRAME_BYTES)
        .on_upgrade(move |socket| crate::transport::v1::serve(socket, state, permit))
        .into_response()
}
