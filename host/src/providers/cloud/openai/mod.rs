//! OpenAI chat completions, streamed over server-sent events. Any OpenAI-compatible endpoint works
//! by pointing `base_url` at it (with no key when it needs none).
//!
//! Requests are retried before the first token on 408/409/429/5xx and connect errors, with
//! exponential backoff and jitter, honouring `retry-after`; 401/403 and 400/422 are reported at
//! once. Dropping the event receiver cancels the request and closes its connection. Tool calls
//! are answered with an error result (no tools are exposed yet) and the request is repeated.

mod chunk;
mod completion;
mod request;

use super::backoff::RetryPolicy;
use crate::providers::{LlmEvent, LlmProvider, LlmRequest, Usage};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Short provider name used in logs and errors.
pub const NAME: &str = "openai";

const EVENT_CAPACITY: usize = 128;

/// What a streamed completion body amounted to (see [`read_stream`]).
#[derive(Debug, Default)]
pub(crate) struct StreamSummary {
    pub text: String,
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
    pub tool_calls: usize,
    /// `[DONE]` was seen.
    pub done: bool,
    /// The error a mid-stream `{"error":…}` chunk reports.
    pub error: Option<String>,
}

/// Reads a completion body arriving in `pieces` through the same decoder and chunk parsing as a
/// live stream, without the network. An entry point for replaying hostile bodies (see
/// `crate::fuzzing`).
pub(crate) fn read_stream<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> StreamSummary {
    let mut decoder = super::sse::SseDecoder::new();
    let mut reply = chunk::Reply::default();
    let mut summary = StreamSummary::default();
    let mut payloads = Vec::new();
    'body: for piece in pieces {
        decoder.push(piece, &mut payloads);
        for data in payloads.drain(..) {
            let data = data.trim();
            if data.starts_with("[DONE]") {
                summary.done = true;
                break 'body;
            }
            let Ok(chunk) = serde_json::from_str::<chunk::Chunk>(data) else {
                continue;
            };
            if let Some(err) = &chunk.error {
                let detail = err.message.as_deref().unwrap_or_default();
                summary.error = Some(super::redact::clip(detail, 300));
                break 'body;
            }
            let part = reply.take(chunk);
            if let Some(usage) = part.usage {
                summary.usage.get_or_insert_with(Usage::default).add(usage);
            }
            if part.finish_reason.is_some() {
                summary.finish_reason = part.finish_reason;
            }
            summary
                .text
                .push_str(part.text.as_deref().unwrap_or_default());
        }
    }
    decoder.finish();
    summary.tool_calls = reply.tool_calls().len();
    summary
}

/// OpenAI (or compatible) endpoint settings.
#[derive(Clone)]
pub struct OpenAiSettings {
    /// Base URL up to and including the API version, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer <key>`; `None` sends no Authorization header.
    pub api_key: Option<String>,
    pub model: String,
    /// Default sampling temperature; a request's own settings override it.
    pub temperature: Option<f32>,
    /// Default reply length limit (`max_completion_tokens` to api.openai.com, `max_tokens` to
    /// compatible servers).
    pub max_tokens: Option<u32>,
    /// Retries after the first attempt, before any token arrived.
    pub max_retries: u32,
    pub retry_base_delay: Duration,
    pub retry_max_delay: Duration,
    /// Most time spent waiting between retries of one request.
    pub retry_budget: Duration,
    /// How many times a reply that asks for tools is answered and requested again.
    pub max_tool_rounds: u32,
}

impl Default for OpenAiSettings {
    fn default() -> Self {
        let retry = RetryPolicy::default();
        Self {
            base_url: "https://api.openai.com/v1".into(),
            api_key: None,
            model: "gpt-4o-mini".into(),
            temperature: None,
            max_tokens: None,
            max_retries: retry.max_retries,
            retry_base_delay: retry.base,
            retry_max_delay: retry.cap,
            retry_budget: retry.budget,
            max_tool_rounds: 2,
        }
    }
}

impl fmt::Debug for OpenAiSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiSettings")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("temperature", &self.temperature)
            .field("max_tokens", &self.max_tokens)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl OpenAiSettings {
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.max_retries,
            base: self.retry_base_delay,
            cap: self.retry_max_delay,
            budget: self.retry_budget,
        }
    }

    fn completions_url(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }
}

/// Streaming chat-completions client; cheap to share across sessions.
#[derive(Debug, Clone)]
pub struct OpenAiLlm {
    settings: Arc<OpenAiSettings>,
    http: reqwest::Client,
}

impl OpenAiLlm {
    /// `http` is the process-wide client, so connections are reused across sessions.
    pub fn new(settings: OpenAiSettings, http: reqwest::Client) -> Self {
        Self {
            settings: Arc::new(settings),
            http,
        }
    }
}

impl LlmProvider for OpenAiLlm {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Starts the request in a task (must be called inside a Tokio runtime).
    fn stream(&self, request: LlmRequest) -> mpsc::Receiver<LlmEvent> {
        let (tx, rx) = mpsc::channel(EVENT_CAPACITY);
        let run = completion::Completion::new(self.settings.clone(), self.http.clone(), tx);
        tokio::spawn(run.run(request));
        rx
    }
}
