//! The per-session task: owns the WebSocket, forwards audio and control messages, maps results
//! onto session events and reconnects when the stream drops.

use super::messages::{Results, ServerMessage};
use super::resend::ResendBuffer;
use super::{DeepgramSettings, NAME};
use crate::providers::cloud::backoff::RetryPolicy;
use crate::providers::cloud::redact::scrub;
use crate::providers::cloud::ws::{self, WsStream};
use crate::providers::{ProviderError, ProviderErrorKind, SttEvent, SttInput, STT_SAMPLE_RATE};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const KEEP_ALIVE: &str = r#"{"type":"KeepAlive"}"#;
const FINALIZE: &str = r#"{"type":"Finalize"}"#;
const CLOSE_STREAM: &str = r#"{"type":"CloseStream"}"#;

/// How long to wait for the last results after `CloseStream`.
const CLOSE_GRACE: Duration = Duration::from_secs(3);
/// Samples per binary frame when resending buffered audio (200 ms).
const RESEND_CHUNK: usize = 3200;

/// How a connection ended.
enum Ended {
    /// The session is over (closed normally, or the session went away).
    Finished,
    /// The connection failed mid-session; reconnect.
    Dropped(String),
}

/// The state of one session's stream across reconnects.
pub(super) struct Listener {
    settings: Arc<DeepgramSettings>,
    url: String,
    session_id: String,
    events: mpsc::Sender<SttEvent>,
    buffer: ResendBuffer,
    /// Session sample index at which the current connection's audio starts.
    connection_base: u64,
    /// A `Finalize` arrived while disconnected: send it after the resend.
    finalize_pending: bool,
    closing: bool,
    /// Consecutive connection failures since the server last answered.
    failures: u32,
    reported: bool,
}

impl Listener {
    pub(super) fn new(
        settings: Arc<DeepgramSettings>,
        url: String,
        session_id: String,
        events: mpsc::Sender<SttEvent>,
    ) -> Self {
        let samples_per_ms = (STT_SAMPLE_RATE / 1000) as usize;
        let capacity = settings.resend_buffer_ms as usize * samples_per_ms;
        Self {
            settings,
            url,
            session_id,
            events,
            buffer: ResendBuffer::new(capacity),
            connection_base: 0,
            finalize_pending: false,
            closing: false,
            failures: 0,
            reported: false,
        }
    }

    fn key(&self) -> Option<&str> {
        self.settings.api_key.as_deref()
    }

    fn reconnect_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: u32::MAX,
            base: Duration::from_millis(self.settings.reconnect_base_delay_ms),
            cap: Duration::from_millis(self.settings.reconnect_max_delay_ms),
            budget: Duration::MAX,
        }
    }

    /// Runs until the session closes the stream, drops it, or a failure cannot be recovered.
    pub(super) async fn run(mut self, mut input: mpsc::Receiver<SttInput>) {
        let headers: Vec<(&'static str, String)> = self
            .key()
            .map(|k| vec![("authorization", format!("Token {k}"))])
            .unwrap_or_default();
        let policy = self.reconnect_policy();
        loop {
            let connected = tokio::select! {
                r = ws::connect(NAME, &self.url, &headers, self.key()) => r,
                _ = self.events.closed() => return,
            };
            match connected {
                Ok(socket) => match self.drive(socket, &mut input).await {
                    Ended::Finished => return,
                    Ended::Dropped(reason) => {
                        self.failures += 1;
                        tracing::warn!(session = %self.session_id, provider = NAME, %reason,
                            "speech-to-text stream dropped; reconnecting");
                    }
                },
                Err(e) if !e.retryable() => {
                    tracing::warn!(session = %self.session_id, provider = NAME, error = %e,
                        "speech-to-text stream refused");
                    let _ = self.events.send(SttEvent::Error(e)).await;
                    return;
                }
                Err(e) => {
                    self.failures += 1;
                    tracing::warn!(session = %self.session_id, provider = NAME, error = %e,
                        attempt = self.failures, "speech-to-text connect failed");
                }
            }
            if self.failures > self.settings.reconnect_attempts && !self.reported {
                self.reported = true;
                let lost = ProviderError::new(
                    ProviderErrorKind::Unavailable,
                    NAME,
                    format!(
                        "speech-to-text stream lost; {} reconnect attempts failed",
                        self.settings.reconnect_attempts
                    ),
                );
                if self.events.send(SttEvent::Error(lost)).await.is_err() {
                    return;
                }
            }
            let delay = policy.delay(self.failures.saturating_sub(1));
            if !self.buffer_while_waiting(delay, &mut input).await {
                return;
            }
        }
    }

    /// Waits `delay` before the next connect, keeping the session's audio. False when the
    /// session ended meanwhile.
    async fn buffer_while_waiting(
        &mut self,
        delay: Duration,
        input: &mut mpsc::Receiver<SttInput>,
    ) -> bool {
        let deadline = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return true,
                _ = self.events.closed() => return false,
                next = input.recv() => match next {
                    Some(SttInput::Audio(samples)) => self.buffer.push(&samples),
                    Some(SttInput::Finalize) => self.finalize_pending = true,
                    Some(SttInput::Close) | None => return false,
                },
            }
        }
    }

    /// Serves one connection until it ends.
    async fn drive(&mut self, socket: WsStream, input: &mut mpsc::Receiver<SttInput>) -> Ended {
        let (mut sink, mut stream) = socket.split();
        self.connection_base = self.buffer.start();
        if !self.buffer.is_empty() {
            tracing::debug!(session = %self.session_id, provider = NAME,
                samples = self.buffer.end() - self.buffer.start(), "resending buffered audio");
        }
        for chunk in self.buffer.chunks(RESEND_CHUNK) {
            if let Err(e) = sink.send(Message::binary(pcm_bytes(&chunk))).await {
                return Ended::Dropped(self.scrubbed(e));
            }
        }
        if std::mem::take(&mut self.finalize_pending) {
            if let Err(e) = sink.send(Message::text(FINALIZE)).await {
                return Ended::Dropped(self.scrubbed(e));
            }
        }
        let keepalive = Duration::from_millis(self.settings.keepalive_interval_ms.max(100));
        let mut ticker = tokio::time::interval(keepalive / 4);
        let mut last_sent = Instant::now();
        let mut close_deadline = Instant::now();
        loop {
            tokio::select! {
                _ = self.events.closed() => {
                    let _ = sink.send(Message::text(CLOSE_STREAM)).await;
                    let _ = sink.close().await;
                    return Ended::Finished;
                }
                frame = stream.next() => match frame {
                    Some(Ok(Message::Text(text))) => self.on_server_text(text.as_str()).await,
                    Some(Ok(Message::Close(close))) => {
                        if self.closing {
                            return Ended::Finished;
                        }
                        let reason = close
                            .map(|c| format!("closed by server: {} {}", u16::from(c.code), c.reason))
                            .unwrap_or_else(|| "closed by server".into());
                        return Ended::Dropped(reason);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) if !self.closing => return Ended::Dropped(self.scrubbed(e)),
                    None if !self.closing => return Ended::Dropped("connection ended".into()),
                    Some(Err(_)) | None => return Ended::Finished,
                },
                next = input.recv(), if !self.closing => {
                    let sent = match next {
                        Some(SttInput::Audio(samples)) => {
                            self.buffer.push(&samples);
                            last_sent = Instant::now();
                            sink.send(Message::binary(pcm_bytes(&samples))).await
                        }
                        Some(SttInput::Finalize) => sink.send(Message::text(FINALIZE)).await,
                        Some(SttInput::Close) | None => {
                            self.closing = true;
                            close_deadline = Instant::now() + CLOSE_GRACE;
                            sink.send(Message::text(CLOSE_STREAM)).await
                        }
                    };
                    if let Err(e) = sent {
                        if self.closing {
                            return Ended::Finished;
                        }
                        return Ended::Dropped(self.scrubbed(e));
                    }
                }
                _ = ticker.tick(), if !self.closing => {
                    if last_sent.elapsed() >= keepalive {
                        last_sent = Instant::now();
                        if let Err(e) = sink.send(Message::text(KEEP_ALIVE)).await {
                            return Ended::Dropped(self.scrubbed(e));
                        }
                    }
                }
                _ = tokio::time::sleep_until(close_deadline), if self.closing => {
                    return Ended::Finished;
                }
            }
        }
    }

    /// Handles one server message; malformed ones are logged and skipped.
    async fn on_server_text(&mut self, text: &str) {
        let message = match serde_json::from_str::<ServerMessage>(text) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(session = %self.session_id, provider = NAME, error = %e,
                    "skipping an unparseable server message");
                return;
            }
        };
        self.failures = 0;
        self.reported = false;
        let event = match message {
            ServerMessage::Results(results) => {
                release_covered(&mut self.buffer, self.connection_base, &results);
                results.to_event(offset_ms(self.connection_base))
            }
            ServerMessage::SpeechStarted {} => Some(SttEvent::SpeechStarted),
            ServerMessage::UtteranceEnd {} => Some(SttEvent::UtteranceEnd),
            ServerMessage::Metadata { request_id } => {
                tracing::debug!(session = %self.session_id, provider = NAME,
                    request_id = request_id.as_deref().unwrap_or(""), "stream metadata");
                None
            }
            ServerMessage::Error {
                description,
                message,
            } => {
                let text = description.or(message).unwrap_or_default();
                tracing::warn!(session = %self.session_id, provider = NAME,
                    error = %scrub(&text, self.key()), "server reported an error");
                None
            }
            ServerMessage::Other => None,
        };
        if let Some(event) = event {
            // A closed receiver is noticed by the select loop.
            let _ = self.events.send(event).await;
        }
    }

    fn scrubbed(&self, e: impl std::fmt::Display) -> String {
        scrub(&e.to_string(), self.key())
    }
}

/// Where a connection's audio starts in the session, in ms.
pub(super) fn offset_ms(connection_base: u64) -> f64 {
    connection_base as f64 * 1000.0 / STT_SAMPLE_RATE as f64
}

/// Lets go of the kept audio a final result covers (the server has it for good); the result's
/// window is counted from `connection_base`, where this connection's audio starts.
pub(super) fn release_covered(buffer: &mut ResendBuffer, connection_base: u64, results: &Results) {
    if results.is_final() {
        let covered = (results.end_secs() * STT_SAMPLE_RATE as f64).round() as u64;
        // A hostile window (`start: 1e300`) saturates `covered`; it releases everything.
        buffer.release_until(connection_base.saturating_add(covered));
    }
}

/// PCM16 samples as linear16 little-endian bytes.
fn pcm_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_sent_little_endian() {
        assert_eq!(
            pcm_bytes(&[1, -2, 0x1234]),
            vec![1, 0, 0xFE, 0xFF, 0x34, 0x12]
        );
    }
}
