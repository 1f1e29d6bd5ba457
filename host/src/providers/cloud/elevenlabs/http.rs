//! The HTTP transport: `POST /v1/text-to-speech/{voice}/stream` per sentence, raw audio back.

use super::output::Job;
use super::NAME;
use crate::providers::cloud::backoff::{retry_after, RetryPolicy};
use crate::providers::cloud::redact::{clip, scrub};
use crate::providers::{ProviderError, ProviderErrorKind, TtsEvent, TtsInput};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::mpsc;

pub(super) async fn run(
    mut job: Job,
    http: reqwest::Client,
    mut input: mpsc::Receiver<TtsInput>,
    events: mpsc::Sender<TtsEvent>,
) {
    let closed = events.clone();
    tokio::select! {
        _ = serve(&mut job, &http, &mut input, &events) => {}
        _ = closed.closed() => {
            tracing::debug!(session = %job.session_id, turn = job.turn, provider = NAME, "synthesis cancelled");
        }
    }
}

async fn serve(
    job: &mut Job,
    http: &reqwest::Client,
    input: &mut mpsc::Receiver<TtsInput>,
    events: &mpsc::Sender<TtsEvent>,
) {
    let url = match job.checked_voice() {
        Ok(voice) => format!(
            "{}/v1/text-to-speech/{voice}/stream",
            job.settings.url.trim_end_matches('/')
        ),
        Err(e) => {
            let _ = events.send(TtsEvent::Error(e)).await;
            return;
        }
    };
    while let Some(next) = input.recv().await {
        match next {
            TtsInput::Text(text) if text.trim().is_empty() => {}
            TtsInput::Text(text) => {
                if let Err(error) = sentence(job, http, &url, &text, events).await {
                    tracing::warn!(session = %job.session_id, turn = job.turn, provider = NAME,
                        %error, "speech synthesis failed");
                    let _ = events.send(TtsEvent::Error(error)).await;
                    return;
                }
            }
            TtsInput::Flush => {
                let _ = events.send(TtsEvent::Done).await;
                return;
            }
        }
    }
}

/// Synthesises one sentence, retrying failures that happen before any audio arrived.
async fn sentence(
    job: &mut Job,
    http: &reqwest::Client,
    url: &str,
    text: &str,
    events: &mpsc::Sender<TtsEvent>,
) -> Result<(), ProviderError> {
    let policy = RetryPolicy {
        max_retries: job.settings.max_retries,
        ..RetryPolicy::default()
    };
    let body = json!({
        "text": text,
        "model_id": job.settings.model_id,
        "voice_settings": job.settings.voice_settings,
    });
    let mut retry = 0;
    let mut waited = Duration::ZERO;
    loop {
        let mut request = http
            .post(url)
            .query(&[("output_format", job.format.query_value())])
            .json(&body);
        if let Some(key) = job.key() {
            let mut value = reqwest::header::HeaderValue::from_str(key).map_err(|_| {
                ProviderError::new(
                    ProviderErrorKind::Rejected,
                    NAME,
                    "the API key contains characters not allowed in a header",
                )
            })?;
            value.set_sensitive(true);
            request = request.header("xi-api-key", value);
        }
        let (error, hint) = match request.send().await {
            Err(e) => (
                ProviderError::new(
                    ProviderErrorKind::Unavailable,
                    NAME,
                    scrub(&format!("request failed: {e}"), job.key()),
                ),
                crate::providers::cloud::backoff::RetryAfter::Absent,
            ),
            Ok(response) if response.status().is_success() => {
                return stream_audio(job, response, events).await;
            }
            Ok(response) => {
                let hint = retry_after(response.headers());
                (refused(job, response).await, hint)
            }
        };
        let Some(delay) = error
            .retryable()
            .then(|| policy.next_delay(retry, waited, hint))
            .flatten()
        else {
            return Err(error);
        };
        tracing::warn!(session = %job.session_id, provider = NAME, %error, retry = retry + 1,
            "retrying speech synthesis");
        tokio::time::sleep(delay).await;
        waited += delay;
        retry += 1;
    }
}

async fn stream_audio(
    job: &mut Job,
    mut response: reqwest::Response,
    events: &mpsc::Sender<TtsEvent>,
) -> Result<(), ProviderError> {
    loop {
        match response.chunk().await {
            Ok(Some(bytes)) => {
                if let Some(event) = job.audio_event(&bytes, None) {
                    if events.send(event).await.is_err() {
                        return Ok(());
                    }
                }
            }
            Ok(None) => return Ok(()),
            Err(e) => {
                return Err(ProviderError::new(
                    ProviderErrorKind::Unavailable,
                    NAME,
                    scrub(&format!("audio stream interrupted: {e}"), job.key()),
                ))
            }
        }
    }
}

/// Classifies an error status: 401 (bad key or no credits) -> auth, 400/422 -> rejected,
/// 429 and 5xx -> unavailable.
async fn refused(job: &Job, response: reqwest::Response) -> ProviderError {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("detail").cloned())
        .map(|d| match d.get("message").and_then(Value::as_str) {
            Some(m) => m.to_string(),
            None => d.to_string(),
        })
        .unwrap_or_else(|| text.trim().to_string());
    let kind = match status {
        401 | 403 => ProviderErrorKind::Auth,
        429 | 408 => ProviderErrorKind::Unavailable,
        s if s >= 500 => ProviderErrorKind::Unavailable,
        _ => ProviderErrorKind::Rejected,
    };
    ProviderError::new(
        kind,
        NAME,
        scrub(&format!("HTTP {status}: {}", clip(&detail, 300)), job.key()),
    )
}
