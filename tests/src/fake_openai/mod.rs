//! A local OpenAI-compatible chat-completions server (`POST /v1/chat/completions`): streams SSE
//! in small, oddly split chunks, emits tool calls on demand, answers 401/429/500, refuses with
//! 400 what the real API refuses (see [`validate`]) and records every request and whether the
//! client hung up.

mod messages;
mod replies;
pub mod validate;

use crate::faults::{Fault, Faults};
use crate::request_log::{header_list, RequestLog};
use crate::server::{ServerHandle, Shutdown};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use replies::Completion;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// What the model says once its tool calls were answered (the host has no tools: it answers
/// every call with an error).
pub const AFTER_TOOLS: &str = "I could not look that up right now, sorry.";

/// How the fake model behaves.
#[derive(Debug, Clone)]
pub struct OpenAiScript {
    /// `(substring of the last user message, reply)`; the one ending latest in the message wins
    /// (the first listed among those ending at the same place). Otherwise the
    /// reply is "You said: <text>. That is interesting. Tell me more."
    pub replies: Vec<(String, String)>,
    /// When the last user message contains this, the model calls the tool `get_weather`.
    pub tool_call_when: Option<String>,
    /// When set, requests must carry `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Pause between body chunks (one token each: the model's token rate).
    pub chunk_interval: Duration,
    /// Pause before the first body chunk (the model's time to first token).
    pub first_token_delay: Duration,
    /// Cut the stream into odd pieces (splitting lines and characters) to exercise the
    /// client's event framing; off, each body chunk is one whole event, a token each, as the
    /// real service sends them over a good network (load runs time tokens that way).
    pub split_events: bool,
}

impl Default for OpenAiScript {
    fn default() -> Self {
        Self {
            replies: Vec::new(),
            tool_call_when: None,
            api_key: None,
            chunk_interval: Duration::from_millis(1),
            first_token_delay: Duration::ZERO,
            split_events: true,
        }
    }
}

impl OpenAiScript {
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    pub fn reply(mut self, when: impl Into<String>, text: impl Into<String>) -> Self {
        self.replies.push((when.into(), text.into()));
        self
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct OpenAiRequest {
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// `completed`, `status <code>`, `client-gone`, `dropped-by-fault`, `stream-error`;
    /// `None` while streaming.
    pub outcome: Option<String>,
    /// When the request arrived.
    pub at: std::time::Instant,
}

impl OpenAiRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The conversation the request carries, without its system messages: (role, content).
    pub fn conversation(&self) -> Vec<(&str, &str)> {
        fn text<'a>(m: &'a Value, key: &str) -> &'a str {
            m[key].as_str().unwrap_or_default()
        }
        self.body["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["role"] != "system")
            .map(|m| (text(m, "role"), text(m, "content")))
            .collect()
    }
}

struct Shared {
    script: OpenAiScript,
    faults: Faults,
    log: RequestLog<OpenAiRequest>,
    shutdown: Shutdown,
}

impl Shared {
    fn set_outcome(&self, id: usize, outcome: &str) {
        self.log
            .update(id, |r| r.outcome = Some(outcome.to_string()));
    }
}

/// A running fake OpenAI endpoint; stops when dropped.
pub struct FakeOpenAi {
    server: ServerHandle,
    shared: Arc<Shared>,
}

impl FakeOpenAi {
    pub async fn start(script: OpenAiScript) -> std::io::Result<Self> {
        Self::start_on(0, script).await
    }

    pub async fn start_on(port: u16, script: OpenAiScript) -> std::io::Result<Self> {
        let (server, shared) = ServerHandle::start(
            port,
            |shutdown| {
                Arc::new(Shared {
                    script,
                    faults: Faults::default(),
                    log: RequestLog::default(),
                    shutdown,
                })
            },
            Router::new().route("/v1/chat/completions", post(completions)),
        )
        .await?;
        Ok(Self { server, shared })
    }

    /// Base URL for `OPENAI_BASE_URL` (`http://127.0.0.1:<port>/v1`).
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.server.http_url())
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<OpenAiRequest> {
        self.shared.log.snapshot()
    }
}

/// The API's 400 body for a refused request.
fn invalid_response(invalid: validate::Invalid) -> Response {
    let body = json!({"error": {"message": invalid.message, "type": "invalid_request_error",
                                "param": invalid.param, "code": invalid.code}});
    let mut response = (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert("x-request-id", HeaderValue::from_static("req_fake_invalid"));
    response
}

/// How a refusal says when to come back.
#[derive(Clone, Copy)]
enum RetryAfter {
    /// `retry-after` in seconds and `retry-after-ms`, as the real API sends them.
    Seconds(Duration),
    /// `retry-after` as an HTTP date this far from now, as other servers and proxies send it.
    Date(Duration),
}

fn error_response(
    code: u16,
    retry_after: Option<RetryAfter>,
    presented_key: Option<&str>,
) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (message, kind, err_code) = match code {
        401 => {
            // The real service shows only the key's last four characters.
            let tail: String = presented_key
                .map(|k| k.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect())
                .unwrap_or_default();
            (
                format!("Incorrect API key provided: sk-****{tail}. You can find your API key at https://platform.openai.com/account/api-keys."),
                "invalid_request_error",
                Some("invalid_api_key"),
            )
        }
        400 => ("Invalid value for 'messages'.".to_string(), "invalid_request_error", None),
        429 => (
            "Rate limit reached for gpt-4o-mini in organization org-TEST on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s.".to_string(),
            "requests",
            Some("rate_limit_exceeded"),
        ),
        _ => ("The server had an error processing your request. Sorry about that!".to_string(), "server_error", None),
    };
    let body =
        json!({"error": {"message": message, "type": kind, "param": null, "code": err_code}});
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert("x-request-id", HeaderValue::from_static("req_fake_error"));
    match retry_after {
        Some(RetryAfter::Seconds(d)) => {
            if let Ok(v) = HeaderValue::from_str(&format!("{}", d.as_secs_f64())) {
                headers.insert("retry-after", v);
            }
            if let Ok(v) = HeaderValue::from_str(&d.as_millis().to_string()) {
                headers.insert("retry-after-ms", v);
            }
        }
        Some(RetryAfter::Date(d)) => {
            let date = httpdate::fmt_http_date(std::time::SystemTime::now() + d);
            if let Ok(v) = HeaderValue::from_str(&date) {
                headers.insert("retry-after", v);
            }
        }
        None => {}
    }
    response
}

async fn completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Unparseable bodies are logged as `null` and refused by validation below.
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = shared.log.record(OpenAiRequest {
        path: "/v1/chat/completions".into(),
        headers: header_list(&headers),
        body: body.clone(),
        outcome: None,
        at: std::time::Instant::now(),
    });
    let fault = shared.faults.next();
    if let Some(Fault::Delay(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let refusal = match (&fault, &shared.script.api_key) {
        (Some(Fault::Status { code, retry_after }), _) => {
            Some((*code, retry_after.map(RetryAfter::Seconds)))
        }
        (Some(Fault::RetryAt { code, after }), _) => Some((*code, Some(RetryAfter::Date(*after)))),
        (_, Some(expected)) if presented != Some(expected.as_str()) => Some((401, None)),
        _ => None,
    };
    if let Some((code, retry_after)) = refusal {
        shared.set_outcome(id, &format!("status {code}"));
        return error_response(code, retry_after, presented);
    }
    if let Err(invalid) = validate::request(&body) {
        shared.set_outcome(id, "status 400");
        return invalid_response(invalid);
    }
    if body.get("stream") != Some(&json!(true)) {
        // Valid for the real API (a whole JSON completion), but this fake only streams.
        shared.set_outcome(id, "status 400");
        return invalid_response(validate::Invalid {
            message: "This local server answers streamed requests only ('stream': true).".into(),
            param: Some("stream".into()),
            code: None,
        });
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let model = body["model"].as_str().unwrap_or("gpt-4o-mini");
    let completion = Completion::new(model);
    let prompt_tokens = messages.len() as u32 * 10;
    let last_is_user = messages
        .last()
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        == Some("user");
    let wants_tool = shared.script.tool_call_when.as_ref().is_some_and(|w| {
        last_is_user
            && replies::last_user_text(&messages)
                .to_lowercase()
                .contains(&w.to_lowercase())
    });
    let events = if let Some(Fault::ToolStorm { calls }) = fault {
        completion.tool_storm(calls, prompt_tokens)
    } else if wants_tool {
        completion.tool_call(
            "get_weather",
            r#"{"city":"Paris","unit":"celsius"}"#,
            prompt_tokens,
        )
    } else {
        completion.text(
            &replies::reply_text(&shared.script.replies, &messages),
            prompt_tokens,
        )
    };
    let mut pieces = if shared.script.split_events {
        replies::odd_pieces(&replies::event_stream(&events))
    } else {
        replies::event_pieces(&events)
    };
    match fault {
        Some(Fault::Malformed) => pieces.insert(0, b"data: {\"choices\":[{\"delta\":\n\n".to_vec()),
        Some(Fault::StreamError { after }) => {
            pieces.truncate(after);
            pieces.push(b"\n\ndata: {\"error\":{\"message\":\"The server had an error while processing your request.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n".to_vec());
        }
        _ => {}
    }
    let drop_after = match fault {
        Some(Fault::DropMidStream { after }) => Some(after),
        _ => None,
    };
    let stall_after = match fault {
        Some(Fault::Stall { after }) => Some(after),
        _ => None,
    };
    let stream_error = matches!(fault, Some(Fault::StreamError { .. }));
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let interval = shared.script.chunk_interval;
    let first_token_delay = shared.script.first_token_delay;
    let producer_shared = shared.clone();
    tokio::spawn(async move {
        let mut shutdown = producer_shared.shutdown.clone();
        if !first_token_delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(first_token_delay) => {}
                _ = tx.closed() => {
                    producer_shared.set_outcome(id, "client-gone");
                    return;
                }
            }
        }
        let total = pieces.len();
        for (i, piece) in pieces.into_iter().enumerate() {
            if drop_after == Some(i) {
                let _ = tx.send(Err(std::io::Error::other("injected drop"))).await;
                producer_shared.set_outcome(id, "dropped-by-fault");
                return;
            }
            if stall_after == Some(i) {
                // Silent, with the connection open, until the client gives up.
                tokio::select! {
                    _ = tx.closed() => producer_shared.set_outcome(id, "client-gone"),
                    _ = shutdown.wait() => {}
                }
                return;
            }
            let sent = tokio::select! {
                r = tx.send(Ok(Bytes::from(piece))) => r.is_ok(),
                _ = shutdown.wait() => false,
            };
            if !sent {
                producer_shared.set_outcome(id, "client-gone");
                return;
            }
            if i + 1 == total {
                // Everything is handed over; a client that now hangs up did not cut the stream.
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = tx.closed() => {
                    producer_shared.set_outcome(id, "client-gone");
                    return;
                }
            }
        }
        producer_shared.set_outcome(
            id,
            if stream_error {
                "stream-error"
            } else {
                "completed"
            },
        );
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert("x-request-id", HeaderValue::from_static("req_fake_stream"));
    h.insert(
        "x-ratelimit-remaining-requests",
        HeaderValue::from_static("99"),
    );
    h.insert(
        "x-ratelimit-reset-requests",
        HeaderValue::from_static("12ms"),
    );
    response
}
