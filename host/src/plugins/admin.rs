//! Admin endpoints:
//!
//! - `GET /admin/plugins`: what serves each slot, with its shadow and canary and how the last
//!   canary ended;
//! - `POST /admin/plugins/reload`: re-read the live component files;
//! - `PUT /admin/plugins/{slot}/shadow` `{"path": "..."}` and `DELETE` of it: start or stop a
//!   shadow version;
//! - `PUT /admin/plugins/{slot}/canary` `{"path": "...", "percent": 10, "margin_pct": 5,
//!   "min_calls": 20}`: start a canary (replacing a running one);
//! - `POST /admin/plugins/{slot}/canary/promote` and `.../canary/abort`.
//!
//! All need `Authorization: Bearer <token>`; a missing or wrong token gets 401. When no admin
//! token is configured the endpoints do not exist: they answer 404, so an unconfigured server
//! does not even reveal them. Changes take effect at once for new sessions and at the next turn
//! for running ones; they last until the process ends (the configuration file is not written).

use std::sync::Arc;

use std::path::PathBuf;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::canary::CanaryPolicy;
use super::error::PluginError;
use super::registry::PluginRegistry;
use super::settings::{CanarySettings, Slot};

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
        .route(
            "/admin/plugins/{slot}/shadow",
            put(start_shadow).delete(stop_shadow),
        )
        .route("/admin/plugins/{slot}/canary", put(start_canary))
        .route("/admin/plugins/{slot}/canary/promote", post(promote))
        .route("/admin/plugins/{slot}/canary/abort", post(abort))
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

/// The slot named in a path.
fn slot_named(name: &str) -> Option<Slot> {
    Slot::ALL.into_iter().find(|s| s.as_str() == name)
}

/// The 404 answer to a path naming no slot, listing the valid ones.
fn unknown_slot(name: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({
            "ok": false,
            "error": format!("no slot {name:?} (expected intent, prompt or barge_in)")
        })),
    )
        .into_response()
}

/// A malformed JSON body, answered with 400 and the reason.
fn bad_body(rejection: JsonRejection) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "ok": false, "error": rejection.body_text() })),
    )
        .into_response()
}

/// Runs a registry change off the async workers (loading a component compiles it) and answers
/// with the slots' status, or 422 and the reason (404 when there is no canary to act on).
async fn change<T: Send + 'static>(
    state: &AdminState,
    work: impl FnOnce(&PluginRegistry) -> Result<T, PluginError> + Send + 'static,
) -> Response {
    let registry = state.registry.clone();
    let outcome = tokio::task::spawn_blocking(move || work(&registry).map(drop)).await;
    let slots = state.registry.status();
    match outcome {
        Ok(Ok(())) => Json(json!({ "ok": true, "slots": slots })).into_response(),
        Ok(Err(err)) => {
            let status = match err {
                PluginError::NoCanary(_) => StatusCode::NOT_FOUND,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            (
                status,
                Json(json!({ "ok": false, "error": err.to_string(), "slots": slots })),
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "ok": false, "error": "the change did not complete", "slots": slots })),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShadowBody {
    path: PathBuf,
}

async fn start_shadow(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Json<ShadowBody>, JsonRejection>,
) -> Response {
    if let Some(denied) = refusal(&state, &headers) {
        return denied;
    }
    let Some(slot) = slot_named(&name) else {
        return unknown_slot(&name);
    };
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return bad_body(e),
    };
    change(&state, move |r| r.set_shadow(slot, Some(&body.path))).await
}

async fn stop_shadow(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(denied) = refusal(&state, &headers) {
        return denied;
    }
    match slot_named(&name) {
        Some(slot) => change(&state, move |r| r.set_shadow(slot, None)).await,
        None => unknown_slot(&name),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CanaryBody {
    path: PathBuf,
    /// Share of new sessions, 0..=100.
    percent: u8,
    /// Fault-rate points over the live version that roll the canary back.
    margin_pct: Option<f64>,
    /// Calls before the fault rate is judged.
    min_calls: Option<u64>,
}

async fn start_canary(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Json<CanaryBody>, JsonRejection>,
) -> Response {
    if let Some(denied) = refusal(&state, &headers) {
        return denied;
    }
    let Some(slot) = slot_named(&name) else {
        return unknown_slot(&name);
    };
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return bad_body(e),
    };
    let defaults = state.registry.canary_policy();
    let margin_pct = body.margin_pct.unwrap_or(defaults.margin * 100.0);
    if body.percent > 100 || !(0.0..=100.0).contains(&margin_pct) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "ok": false,
                "error": "percent must be 0..=100 and margin_pct 0..=100"
            })),
        )
            .into_response();
    }
    let canary = CanarySettings {
        path: body.path,
        percent: body.percent,
        policy: CanaryPolicy {
            margin: margin_pct / 100.0,
            min_calls: body.min_calls.unwrap_or(defaults.min_calls),
        },
    };
    change(&state, move |r| r.start_canary(slot, &canary)).await
}

async fn promote(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(denied) = refusal(&state, &headers) {
        return denied;
    }
    match slot_named(&name) {
        Some(slot) => change(&state, move |r| r.promote_canary(slot)).await,
        None => unknown_slot(&name),
    }
}

async fn abort(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(denied) = refusal(&state, &headers) {
        return denied;
    }
    match slot_named(&name) {
        Some(slot) => change(&state, move |r| r.abort_canary(slot)).await,
        None => unknown_slot(&name),
    }
}
