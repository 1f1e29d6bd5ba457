//! The stream-input WebSocket transport: one socket per reply, text in sentence by sentence,
//! base64 audio with alignment out. Also the reading and error classification the
//! multi-context transport shares.

use super::messages::ServerMessage;
use super::output::{with_trailing_space, Job};
use super::NAME;
use crate::providers::cloud::backoff::RetryPolicy;
use crate::providers::cloud::redact::{clip, scrub};
use crate::providers::cloud::ws::{self, ws_base, WsStream};
use crate::providers::{ProviderError, ProviderErrorKind, TtsEvent, TtsInput};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// How one connection ended.
enum Ended {
    /// Done, failed for good, or cancelled: nothing more to do.
    Finished,
    /// Dropped before any audio arrived: worth reconnecting and sending the text again.
    Retry(ProviderError),
}

/// What the reply has asked for so far, replayed on a reconnect.
#[derive(Default)]
struct Sent {
    texts: Vec<String>,
    flushed: bool,
    audio_received: bool,
}

pub(super) async fn run(
    mut job: Job,
    mut input: mpsc::Receiver<TtsInput>,
    events: mpsc::Sender<TtsEvent>,
) {
    let url = match job.checked_voice() {
        Ok(voice) => format!(
            "{}/v1/text-to-speech/{voice}/stream-input?model_id={}&output_format={}&auto_mode=true",
            ws_base(&job.settings.url),
            job.settings.model_id,
            job.format.query_value()
        ),
        Err(e) => {
            let _ = events.send(TtsEvent::Error(e)).await;
            return;
        }
    };
    let headers: Vec<(&'static str, String)> = job
        .key()
        .map(|k| vec![("xi-api-key", k.to_string())])
        .unwrap_or_default();
    let policy = RetryPolicy {
        max_retries: job.settings.max_retries,
        ..RetryPolicy::default()
    };
    let mut sent = Sent::default();
    let mut retry = 0;
    let mut waited = std::time::Duration::ZERO;
    loop {
        let connected = tokio::select! {
            r = ws::connect(NAME, &url, &headers, job.key()) => r,
            _ = events.closed() => return,
        };
        let error = match connected {
            Ok(socket) => match serve(&mut job, socket, &mut sent, &mut input, &events).await {
                Ended::Finished => return,
                Ended::Retry(e) => e,
            },
            Err(e) => e,
        };
        let delay = if error.retryable() && !sent.audio_received {
            policy.next_delay(
                retry,
                waited,
                crate::providers::cloud::backoff::RetryAfter::Absent,
            )
        } else {
            None
        };
        let Some(delay) = delay else {
            tracing::warn!(session = %job.session_id, turn = job.turn, provider = NAME, %error,
                "speech synthesis failed");
            let _ = events.send(TtsEvent::Error(error)).await;
            return;
        };
        tracing::warn!(session = %job.session_id, turn = job.turn, provider = NAME, %error,
            retry = retry + 1, "speech synthesis connection failed; retrying");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = events.closed() => return,
        }
        waited += delay;
        retry += 1;
    }
}

/// Serves one connection: replays what was sent before, then streams both ways.
async fn serve(
    job: &mut Job,
    socket: WsStream,
    sent: &mut Sent,
    input: &mut mpsc::Receiver<TtsInput>,
    events: &mpsc::Sender<TtsEvent>,
) -> Ended {
    let (mut sink, mut stream) = socket.split();
    let mut init = json!({"text": " ", "voice_settings": job.settings.voice_settings});
    if let Some(key) = job.key() {
        init["xi-api-key"] = json!(key);
    }
    let mut outbox = vec![init.to_string()];
    outbox.extend(sent.texts.iter().map(|t| json!({"text": t}).to_string()));
    if sent.flushed {
        outbox.extend(end_of_reply());
    }
    for message in outbox {
        if let Err(e) = sink.send(Message::text(message)).await {
            return Ended::Retry(dropped(job.key(), e));
        }
    }
    let mut server_error: Option<ServerMessage> = None;
    loop {
        tokio::select! {
            _ = events.closed() => {
                let _ = sink.close().await;
                return Ended::Finished;
            }
            next = input.recv(), if !sent.flushed => {
                let outgoing = match next {
                    Some(TtsInput::Text(text)) if text.trim().is_empty() => continue,
                    Some(TtsInput::Text(text)) => {
                        let text = with_trailing_space(&text);
                        let message = json!({"text": text}).to_string();
                        sent.texts.push(text);
                        vec![message]
                    }
                    Some(TtsInput::Flush) => {
                        sent.flushed = true;
                        end_of_reply()
                    }
                    None => {
                        // The session dropped its input without finishing the reply: cancel.
                        let _ = sink.close().await;
                        return Ended::Finished;
                    }
                };
                for message in outgoing {
                    if let Err(e) = sink.send(Message::text(message)).await {
                        return Ended::Retry(dropped(job.key(), e));
                    }
                }
            }
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let Some(mut message) = parse(&job.session_id, text.as_str()) else {
                        continue;
                    };
                    if message.error.is_some() {
                        server_error = Some(message);
                        continue;
                    }
                    if let Some(audio) = message.audio.take().filter(|a| !a.is_empty()) {
                        let Some(bytes) = decode_audio(&job.session_id, &audio) else {
                            continue;
                        };
                        sent.audio_received = true;
                        if let Some(event) = job.audio_event(&bytes, message.take_alignment()) {
                            if events.send(event).await.is_err() {
                                return Ended::Finished;
                            }
                        }
                    }
                    if message.is_final == Some(true) && sent.flushed {
                        let _ = events.send(TtsEvent::Done).await;
                        let _ = sink.close().await;
                        return Ended::Finished;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.as_ref().map(|f| f.code);
                    if code == Some(CloseCode::Normal) && sent.flushed {
                        let _ = events.send(TtsEvent::Done).await;
                        return Ended::Finished;
                    }
                    let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                    let error = closed_error(job.key(), code, &reason, server_error.take());
                    return if error.retryable() { Ended::Retry(error) } else {
                        let _ = events.send(TtsEvent::Error(error)).await;
                        Ended::Finished
                    };
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Ended::Retry(dropped(job.key(), e)),
                None => return Ended::Retry(dropped(job.key(), "connection ended")),
            },
        }
    }
}

/// A server text frame; an unparseable one is logged and skipped.
pub(super) fn parse(session_id: &str, text: &str) -> Option<ServerMessage> {
    serde_json::from_str(text)
        .inspect_err(|e| {
            tracing::warn!(session = %session_id, provider = NAME, error = %e,
                "skipping an unparseable server message");
        })
        .ok()
}

/// A frame's base64 audio; audio that is not base64 is logged and skipped.
pub(super) fn decode_audio(session_id: &str, audio: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(audio.as_bytes())
        .inspect_err(|e| {
            tracing::warn!(session = %session_id, provider = NAME, error = %e,
                "skipping audio that is not valid base64");
        })
        .ok()
}

/// One text frame outside a live socket, through the same steps as [`serve`]: the audio event,
/// or the error the policy close that follows an error message reports.
pub(super) fn read_text(
    job: &mut Job,
    text: &str,
) -> Option<Result<Option<TtsEvent>, ProviderError>> {
    let mut message = parse(&job.session_id, text)?;
    if message.error.is_some() {
        let error = closed_error(job.key(), Some(CloseCode::Policy), "", Some(message));
        return Some(Err(error));
    }
    let audio = message.audio.take().filter(|a| !a.is_empty());
    let Some(bytes) = audio.map(|a| decode_audio(&job.session_id, &a)) else {
        return Some(Ok(None));
    };
    Some(Ok(job.audio_event(&bytes?, message.take_alignment())))
}

/// Flush what is buffered, then end the input: the server answers with the last audio,
/// `isFinal` and a normal close.
fn end_of_reply() -> Vec<String> {
    vec![
        json!({"text": " ", "flush": true}).to_string(),
        json!({"text": ""}).to_string(),
    ]
}

pub(super) fn dropped(key: Option<&str>, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::new(
        ProviderErrorKind::Unavailable,
        NAME,
        scrub(&format!("stream dropped: {e}"), key),
    )
}

/// Classifies a close the client did not expect. Key and quota problems are auth errors.
pub(super) fn closed_error(
    key: Option<&str>,
    code: Option<CloseCode>,
    reason: &str,
    server_error: Option<ServerMessage>,
) -> ProviderError {
    let (error_code, detail) = match server_error {
        Some(m) => (m.error.unwrap_or_default(), m.message.unwrap_or_default()),
        None => (String::new(), reason.to_string()),
    };
    let lower = format!("{error_code} {detail}").to_lowercase();
    let kind = if lower.contains("api_key") || lower.contains("api key") || lower.contains("quota")
    {
        ProviderErrorKind::Auth
    } else if code == Some(CloseCode::Policy) && error_code.is_empty() {
        ProviderErrorKind::Rejected
    } else {
        ProviderErrorKind::Unavailable
    };
    let code = code.map(u16::from).unwrap_or(1005);
    ProviderError::new(
        kind,
        NAME,
        scrub(
            &format!(
                "stream closed ({code}) {error_code}: {}",
                clip(&detail, 300)
            ),
            key,
        ),
    )
}
