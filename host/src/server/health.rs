//! `/healthz`, `/readyz` and `/metrics`.

use super::AppState;
use crate::metrics::exposition;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use std::sync::Arc;

/// 200 while the process is up.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// 200 when sessions can be served, else 503 with the reasons. Either way `degraded` lists the
/// slots whose quarantined plug-in is replaced by the built-in behaviour.
pub async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let reasons = state.not_ready_reasons();
    let degraded = state.degraded_plugins();
    let providers = json!({
        "stt": state.deps.providers.stt.name(),
        "llm": state.deps.providers.llm.name(),
        "tts": state.deps.providers.tts.name(),
    });
    if reasons.is_empty() {
        (
            StatusCode::OK,
            Json(json!({
                "status": "ready",
                "sessions": state.active_sessions(),
                "providers": providers,
                "degraded": degraded,
            })),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "unavailable",
                "reasons": reasons,
                "providers": providers,
                "degraded": degraded,
            })),
        )
    }
}

/// Metrics of the host and the plug-in runtime, as one OpenMetrics exposition.
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let mut body = String::new();
    crate::metrics::global().encode(&mut body);
    if let Some(r) = &state.registry {
        body.push_str(&r.prometheus());
    }
    exposition::finish(&mut body);
    ([(header::CONTENT_TYPE, exposition::CONTENT_TYPE)], body)
}
