//! Admin endpoints: `GET /admin/plugins` (what is loaded) and `POST /admin/plugins/reload`.
//!
//! Both need `Authorization: Bearer <token>`; a missing or wrong token gets 401. When no admin
//! token is configured the endpoints do not exist: they answer 404, so an unconfigured server
//! does not even reveal them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::registry::PluginRegistry;

#[derive(Clone)]
struct AdminState {
    registry: Arc<PluginRegistry>,
    token: Option<Arc<str>>,
}

/// The admin router; merge it into the server's router.
pub fn admin_routes(registry: Arc<PluginRegistry>, admin_token: Option<String>) -> Router {
    let state = AdminState {
        registry,
        token: admin_token.filter(|t| !t.is_empty()).map(Into::into),
    };
    Router::new()
        .route("/admin/plugins", get(list))
        .route("/admin/plugins/reload", post(reload))
        .with_state(state)
}

/// The response refusing the request, or `None` when it carries the admin token.
fn refusal(state: &AdminState, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &state.token else {
        return Some(StatusCode::NOT_FOUND.into_response());
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(p) if crate::admission::secret::secret_eq(p.as_bytes(), token.as_bytes()) => None,
        _ => Some(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({ "error": "missing or wrong admin token" })),
            )
                .into_response(),
        ),
    }
}

async fn list(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if let Some(denied) = refusal(&state, &headers) {
        return denied;
    }
    Json(json!({ "slots": state.registry.status() })).into_response()
}

async fn reload(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if let Some(denied) = refusal(&state, &headers) {
        return denied;
    }
    let registry = state.registry.clone();
    // Compiling a component takes milliseconds to seconds: keep it off the async workers.
    let outcome = tokio::task::spawn_blocking(move || registry.reload()).await;
    let slots = state.registry.status();
    match outcome {
        Ok(Ok(_)) => Json(json!({ "ok": true, "slots": slots })).into_response(),
        Ok(Err(err)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "ok": false, "error": err.to_string(), "slots": slots })),
        )
            .into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "ok": false, "error": "reload did not complete", "slots": slots })),
        )
            .into_response(),
    }
}
