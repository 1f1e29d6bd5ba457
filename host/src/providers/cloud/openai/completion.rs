//! One streamed completion: the HTTP request with its retries, the SSE body read into events,
//! and the tool-call rounds.

use super::chunk::{Chunk, Reply, ToolCall};
use super::request::{answer_tool_calls, body, wire_messages};
use super::{OpenAiSettings, NAME};
use crate::providers::cloud::backoff::{retry_after, RetryAfter};
use crate::providers::cloud::redact::{clip, scrub};
use crate::providers::cloud::sse::SseDecoder;
use crate::providers::{
    LlmEvent, LlmRequest, ProviderError, ProviderErrorKind, Usage, WORKING_EVERY,
};
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A body that sends nothing for this long is treated as a dropped stream.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The result of one request that completed.
struct Round {
    text: String,
    finish_reason: Option<String>,
    tool_calls: Vec<ToolCall>,
}

/// A failed attempt and whether trying again may help.
struct Failure {
    error: ProviderError,
    retryable: bool,
    hint: RetryAfter,
    /// Tokens already reached the session: repeating the request would repeat them.
    emitted: bool,
}

impl Failure {
    fn new(kind: ProviderErrorKind, message: String, emitted: bool) -> Self {
        Self {
            retryable: kind == ProviderErrorKind::Unavailable,
            error: ProviderError::new(kind, NAME, message),
            hint: RetryAfter::Absent,
            emitted,
        }
    }
}

/// One LLM request from start to `Done` or `Error`.
pub(super) struct Completion {
    settings: Arc<OpenAiSettings>,
    http: reqwest::Client,
    events: mpsc::Sender<LlmEvent>,
    usage: Option<Usage>,
    /// When the session last heard from this completion (a token or `Working`).
    last_signal: tokio::time::Instant,
}

impl Completion {
    pub(super) fn new(
        settings: Arc<OpenAiSettings>,
        http: reqwest::Client,
        events: mpsc::Sender<LlmEvent>,
    ) -> Self {
        Self {
            settings,
            http,
            events,
            usage: None,
            last_signal: tokio::time::Instant::now(),
        }
    }

    /// Tells the session the model is still at work when it has heard nothing for a while:
    /// tool-call rounds carry no reply text, and must not look like a stalled stream.
    async fn still_working(&mut self) {
        if self.last_signal.elapsed() >= WORKING_EVERY {
            self.last_signal = tokio::time::Instant::now();
            let _ = self.events.send(LlmEvent::Working).await;
        }
    }

    /// Runs the request; returns at once (dropping the connection) when the receiver is gone.
    pub(super) async fn run(mut self, request: LlmRequest) {
        let events = self.events.clone();
        tokio::select! {
            _ = self.complete(&request) => {}
            _ = events.closed() => {
                tracing::debug!(session = %request.session_id, turn = request.turn, provider = NAME,
                    "completion cancelled");
            }
        }
    }

    async fn complete(&mut self, request: &LlmRequest) {
        let mut messages = wire_messages(&request.messages);
        let mut rounds = 0;
        loop {
            let body = body(
                &self.settings,
                request.model.as_deref(),
                &request.settings,
                &messages,
            );
            let round = match self.with_retries(request, &body).await {
                Ok(round) => round,
                Err(error) => {
                    tracing::warn!(session = %request.session_id, turn = request.turn,
                        provider = NAME, %error, "completion failed");
                    let _ = self.events.send(LlmEvent::Error(error)).await;
                    return;
                }
            };
            if !round.tool_calls.is_empty() && rounds < self.settings.max_tool_rounds {
                rounds += 1;
                let names: Vec<&str> = round.tool_calls.iter().map(|c| c.name.as_str()).collect();
                tracing::info!(session = %request.session_id, turn = request.turn, provider = NAME,
                    tools = ?names, "model asked for tools that are not available; answering with an error");
                answer_tool_calls(&mut messages, &round.text, &round.tool_calls);
                continue;
            }
            let _ = self
                .events
                .send(LlmEvent::Done {
                    finish_reason: round.finish_reason,
                    usage: self.usage,
                })
                .await;
            return;
        }
    }

    /// Repeats the request on retryable failures that happened before any token was emitted.
    async fn with_retries(
        &mut self,
        request: &LlmRequest,
        body: &Value,
    ) -> Result<Round, ProviderError> {
        let policy = self.settings.retry_policy();
        let mut waited = Duration::ZERO;
        let mut retry = 0;
        loop {
            let failure = match self.attempt(body).await {
                Ok(round) => return Ok(round),
                Err(f) => f,
            };
            if !failure.retryable || failure.emitted {
                return Err(failure.error);
            }
            let Some(delay) = policy.next_delay(retry, waited, failure.hint) else {
                return Err(failure.error);
            };
            tracing::warn!(session = %request.session_id, turn = request.turn, provider = NAME,
                error = %failure.error, retry = retry + 1, delay_ms = delay.as_millis() as u64,
                "retrying completion");
            tokio::time::sleep(delay).await;
            waited += delay;
            retry += 1;
        }
    }

    fn key(&self) -> Option<&str> {
        self.settings.api_key.as_deref()
    }

    /// One HTTP request and its streamed body.
    async fn attempt(&mut self, body: &Value) -> Result<Round, Failure> {
        let mut builder = self
            .http
            .post(self.settings.completions_url())
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(body);
        if let Some(key) = self.key() {
            builder = builder.bearer_auth(key);
        }
        let response = builder.send().await.map_err(|e| {
            let kind = if e.is_builder() {
                ProviderErrorKind::Rejected
            } else {
                ProviderErrorKind::Unavailable
            };
            Failure::new(
                kind,
                scrub(&format!("request failed: {e}"), self.key()),
                false,
            )
        })?;
        if !response.status().is_success() {
            return Err(self.refused(response).await);
        }
        self.read_stream(response).await
    }

    /// Classifies an error status, as the OpenAI SDK does.
    async fn refused(&self, response: reqwest::Response) -> Failure {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        let error = parsed.as_ref().and_then(|v| v.get("error"));
        let field = |name: &str| error.and_then(|e| e.get(name)).and_then(Value::as_str);
        let detail = field("message")
            .map(str::to_string)
            .unwrap_or_else(|| clip(text.trim(), 300));
        let quota = field("code") == Some("insufficient_quota")
            || field("type") == Some("insufficient_quota");
        let kind = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ProviderErrorKind::Auth,
            StatusCode::REQUEST_TIMEOUT | StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS => {
                ProviderErrorKind::Unavailable
            }
            s if s.is_server_error() => ProviderErrorKind::Unavailable,
            _ => ProviderErrorKind::Rejected,
        };
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(|id| format!(" (request id {id})"))
            .unwrap_or_default();
        let message = scrub(
            &format!(
                "HTTP {}: {}{request_id}",
                status.as_u16(),
                clip(&detail, 300)
            ),
            self.key(),
        );
        let mut failure = Failure::new(kind, message, false);
        failure.hint = retry_after(&headers);
        failure.retryable = match headers.get("x-should-retry").and_then(|v| v.to_str().ok()) {
            Some("true") => true,
            Some("false") => false,
            _ => failure.retryable && !quota,
        };
        failure
    }

    /// Reads the SSE body, forwarding text as it arrives.
    async fn read_stream(&mut self, mut response: reqwest::Response) -> Result<Round, Failure> {
        let mut decoder = SseDecoder::new();
        let mut reply = Reply::default();
        let mut text = String::new();
        let mut finish_reason = None;
        let mut payloads = Vec::new();
        let mut emitted = false;
        let mut done = false;
        'body: loop {
            let next = tokio::time::timeout(STALL_TIMEOUT, response.chunk()).await;
            let bytes = match next {
                Ok(Ok(Some(bytes))) => bytes,
                Ok(Ok(None)) => {
                    decoder.finish();
                    break 'body;
                }
                Ok(Err(e)) => {
                    let message = scrub(&format!("stream interrupted: {e}"), self.key());
                    return Err(Failure::new(
                        ProviderErrorKind::Unavailable,
                        message,
                        emitted,
                    ));
                }
                Err(_) => {
                    let message = "stream stalled".to_string();
                    return Err(Failure::new(
                        ProviderErrorKind::Unavailable,
                        message,
                        emitted,
                    ));
                }
            };
            decoder.push(&bytes, &mut payloads);
            for data in payloads.drain(..) {
                let data = data.trim();
                if data.starts_with("[DONE]") {
                    done = true;
                    break 'body;
                }
                if data.is_empty() {
                    continue;
                }
                let chunk: Chunk = match serde_json::from_str(data) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(provider = NAME, error = %e, "skipping a malformed stream chunk");
                        continue;
                    }
                };
                if let Some(err) = &chunk.error {
                    let detail = err
                        .message
                        .as_deref()
                        .unwrap_or("An error occurred during streaming");
                    let message =
                        scrub(&format!("stream error: {}", clip(detail, 300)), self.key());
                    return Err(Failure::new(
                        ProviderErrorKind::Unavailable,
                        message,
                        emitted,
                    ));
                }
                let part = reply.take(chunk);
                if let Some(usage) = part.usage {
                    self.usage.get_or_insert_with(Usage::default).add(usage);
                }
                if part.finish_reason.is_some() {
                    finish_reason = part.finish_reason;
                }
                if let Some(token) = part.text {
                    emitted = true;
                    text.push_str(&token);
                    self.last_signal = tokio::time::Instant::now();
                    let _ = self.events.send(LlmEvent::Token(token)).await;
                }
            }
            self.still_working().await;
        }
        let tool_calls = reply.tool_calls();
        if !done && finish_reason.is_none() {
            let message = "stream ended before the reply was complete".to_string();
            return Err(Failure::new(
                ProviderErrorKind::Unavailable,
                message,
                emitted,
            ));
        }
        Ok(Round {
            text,
            finish_reason,
            tool_calls,
        })
    }
}
