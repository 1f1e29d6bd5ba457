//! A local Deepgram live-streaming server (`/v1/listen`) speaking the documented protocol:
//! handshake auth and query validation (HTTP 400 for a value it cannot read), interim/final
//! `Results` for audio that is voice as the query declared it, `SpeechStarted`, `UtteranceEnd`,
//! `KeepAlive`/`Finalize`/`CloseStream` (anything else is refused with a 1008 close),
//! `Metadata` and the idle close (1011 `NET-0001`).

mod control;
mod linear16;
mod query;
mod transcriber;
pub mod voice;

pub use transcriber::Script;

use crate::faults::{Fault, Faults};
use crate::request_log::{header_list, RequestLog};
use crate::server::{ServerHandle, Shutdown};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use control::Control;
use linear16::Linear16;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use transcriber::{Options, Transcriber};

/// The real service's idle-close reason.
pub const NET_0001: &str = "NET-0001 Deepgram did not receive audio data or a text message within the timeout window. See https://dpgr.am/net0001";

/// What the fake will say, and how it behaves.
#[derive(Debug, Clone)]
pub struct DeepgramScript {
    /// Transcripts for successive utterances (shared across connections).
    pub utterances: Vec<String>,
    /// Transcript once the script is used up.
    pub fallback: String,
    /// When set, the handshake must carry this key.
    pub api_key: Option<String>,
    /// Close the stream (1011 NET-0001) after this long without audio or text.
    pub idle_timeout: Duration,
    /// Frame RMS that counts as speech.
    pub speech_rms: f64,
    /// Loud frames count as speech only when they are voice at the declared rate (see
    /// [`voice`]). Off, loudness alone decides: a load rig's cheap endpointing.
    pub pitch_check: bool,
    /// Every message goes out this long after the audio or message that caused it (the
    /// recogniser's processing time).
    pub latency: Duration,
}

impl DeepgramScript {
    /// A script answering the given utterances in order.
    pub fn new<S: Into<String>>(utterances: impl IntoIterator<Item = S>) -> Self {
        Self {
            utterances: utterances.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// Requires `Authorization: Token <key>`.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }
}

impl Default for DeepgramScript {
    fn default() -> Self {
        Self {
            utterances: Vec::new(),
            fallback: "hello there".into(),
            api_key: None,
            idle_timeout: Duration::from_secs(10),
            speech_rms: 300.0,
            pitch_check: true,
            latency: Duration::ZERO,
        }
    }
}

/// What one connection (or refused handshake) looked like from the server.
#[derive(Debug, Clone, Default)]
pub struct DeepgramConnection {
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Request headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// HTTP status of a refused handshake; `None` when upgraded.
    pub refused: Option<u16>,
    pub audio_bytes: usize,
    pub binary_frames: usize,
    /// Control messages received, by `type` (`KeepAlive`, `Finalize`, `CloseStream`), or
    /// `refused` for a text frame that is none of them.
    pub control: Vec<String>,
    /// Text frames sent to the client.
    pub sent: Vec<Value>,
    /// How the connection ended: `client-close`, `close-stream`, `idle`, `dropped-by-fault`,
    /// `client-gone`, `shutdown`, `refused-message`, `refused` (handshake); `None` while open.
    pub ended: Option<String>,
}

impl DeepgramConnection {
    /// The value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    script: DeepgramScript,
    transcripts: Script,
    faults: Faults,
    log: RequestLog<DeepgramConnection>,
    shutdown: Shutdown,
}

/// A running fake Deepgram; stops when dropped.
pub struct FakeDeepgram {
    server: ServerHandle,
    shared: Arc<Shared>,
}

impl FakeDeepgram {
    /// Starts on a free port.
    pub async fn start(script: DeepgramScript) -> std::io::Result<Self> {
        Self::start_on(0, script).await
    }

    /// Starts on `port` (0 = any free port).
    pub async fn start_on(port: u16, script: DeepgramScript) -> std::io::Result<Self> {
        let transcripts = Script::new(script.utterances.clone(), script.fallback.clone());
        let (server, shared) = ServerHandle::start(
            port,
            |shutdown| {
                Arc::new(Shared {
                    script,
                    transcripts,
                    faults: Faults::default(),
                    log: RequestLog::default(),
                    shutdown,
                })
            },
            Router::new().route("/v1/listen", get(listen)),
        )
        .await?;
        Ok(Self { server, shared })
    }

    /// Base URL for `DEEPGRAM_URL` (`ws://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        self.server.ws_url()
    }

    /// Faults for the next connections.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Every connection so far, oldest first.
    pub fn connections(&self) -> Vec<DeepgramConnection> {
        self.shared.log.snapshot()
    }
}

async fn listen(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let id = shared.log.record(DeepgramConnection {
        path: "/v1/listen".into(),
        query: query.clone(),
        headers: header_list(&headers),
        ..Default::default()
    });
    let fault = shared.faults.next();
    if let Some(Fault::Delay(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    let refuse = |status: StatusCode, code: &str, msg: &str| {
        shared.log.update(id, |c| {
            c.refused = Some(status.as_u16());
            c.ended = Some("refused".into());
        });
        let body = json!({"err_code": code, "err_msg": msg, "request_id": uuid::Uuid::new_v4().to_string()});
        (status, Json(body)).into_response()
    };
    if let Some(Fault::Status { code, .. }) = &fault {
        let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return refuse(status, "INJECTED_FAULT", "Injected failure.");
    }
    let subprotocol_key = headers
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("token,"))
        .map(|k| k.trim().to_string());
    if let Some(expected) = &shared.script.api_key {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let presented = auth
            .strip_prefix("Token ")
            .or_else(|| auth.strip_prefix("Bearer "))
            .map(str::to_string)
            .or(subprotocol_key.clone());
        if presented.as_deref() != Some(expected.as_str()) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "INVALID_AUTH",
                "Invalid credentials.",
            );
        }
    }
    let asked = match query::parse(&query) {
        Ok(q) => q,
        Err(message) => {
            return refuse(StatusCode::BAD_REQUEST, "INVALID_QUERY_PARAMETER", &message)
        }
    };
    let options = Options {
        sample_rate: asked.sample_rate,
        interim_results: asked.interim_results,
        // Off means no pause ever ends an utterance by itself.
        endpointing_ms: asked.endpointing_ms.unwrap_or(u32::MAX / 2),
        utterance_end_ms: asked.utterance_end_ms,
        vad_events: asked.vad_events,
        smart_format: asked.smart_format,
        speech_rms: shared.script.speech_rms,
        pitch_check: shared.script.pitch_check,
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    let channels = asked.channels;
    let ws = if subprotocol_key.is_some() {
        ws.protocols(["token"])
    } else {
        ws
    };
    // A small read buffer: tungstenite zero-fills the whole buffer before each read, and a
    // load run reads a 20 ms frame at a time from a thousand sockets.
    ws.read_buffer_size(8 * 1024)
        .on_upgrade(move |socket| serve(socket, shared, id, options, channels, fault))
}

/// Serves one upgraded connection.
async fn serve(
    mut socket: WebSocket,
    shared: Arc<Shared>,
    id: usize,
    options: Options,
    channels: u32,
    fault: Option<Fault>,
) {
    let request_id = options.request_id.clone();
    let mut decoder = Linear16::new(channels);
    let mut transcriber = Transcriber::new(options, shared.transcripts.clone());
    let mut hasher = Sha256::new();
    let mut received = 0usize;
    let mut malformed_pending = matches!(fault, Some(Fault::Malformed));
    let mut shutdown = shared.shutdown.clone();
    let idle = shared.script.idle_timeout;
    let latency = shared.script.latency;
    // Messages held back by `latency`, in order, with when each is due.
    let mut delayed: VecDeque<(tokio::time::Instant, Value)> = VecDeque::new();
    let ended = loop {
        let next_due = delayed.front().map(|(due, _)| *due);
        let frame = tokio::select! {
            f = tokio::time::timeout(idle, socket.recv()) => f,
            _ = shutdown.wait() => break "shutdown",
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(tokio::time::Instant::now)), if next_due.is_some() => {
                let now = tokio::time::Instant::now();
                let mut due = Vec::new();
                while delayed.front().is_some_and(|(at, _)| *at <= now) {
                    due.extend(delayed.pop_front().map(|(_, m)| m));
                }
                if send_all(&mut socket, &shared, id, due).await.is_err() {
                    break "client-gone";
                }
                continue;
            }
        };
        let mut out = Vec::new();
        match frame {
            Err(_) => {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: 1011,
                        reason: NET_0001.into(),
                    })))
                    .await;
                break "idle";
            }
            Ok(None) | Ok(Some(Err(_))) => break "client-gone",
            Ok(Some(Ok(Message::Close(_)))) => break "client-close",
            Ok(Some(Ok(Message::Binary(bytes)))) => {
                if bytes.is_empty() {
                    // The deprecated way of closing: treat it like CloseStream.
                    break close_stream(
                        &mut socket,
                        &shared,
                        id,
                        &request_id,
                        &hasher,
                        &mut transcriber,
                        delayed.drain(..).map(|(_, m)| m).chain(out).collect(),
                    )
                    .await;
                }
                hasher.update(&bytes);
                received += bytes.len();
                shared.log.update(id, |c| {
                    c.audio_bytes += bytes.len();
                    c.binary_frames += 1;
                });
                if let Some(Fault::DropMidStream { after }) = fault {
                    if received >= after {
                        break "dropped-by-fault";
                    }
                }
                transcriber.push(&decoder.push(&bytes), &mut out);
                if let Some(Fault::DropMidUtterance { after_ms }) = fault {
                    if transcriber
                        .speaking_ms()
                        .is_some_and(|ms| ms >= f64::from(after_ms))
                    {
                        break "dropped-by-fault";
                    }
                }
            }
            Ok(Some(Ok(Message::Text(text)))) => match control::parse(text.as_str()) {
                Err(reason) => {
                    shared.log.update(id, |c| c.control.push("refused".into()));
                    let _ = refuse_message(&mut socket, &shared, id, &reason).await;
                    break "refused-message";
                }
                Ok(kind) => {
                    shared
                        .log
                        .update(id, |c| c.control.push(kind.name().into()));
                    match kind {
                        Control::KeepAlive => {}
                        Control::Finalize => transcriber.finalize(&mut out),
                        Control::CloseStream => {
                            break close_stream(
                                &mut socket,
                                &shared,
                                id,
                                &request_id,
                                &hasher,
                                &mut transcriber,
                                delayed.drain(..).map(|(_, m)| m).chain(out).collect(),
                            )
                            .await;
                        }
                    }
                }
            },
            Ok(Some(Ok(_))) => {}
        }
        if malformed_pending && !out.is_empty() {
            malformed_pending = false;
            if socket
                .send(Message::Text("{\"type\":\"Results\",\"channel\":".into()))
                .await
                .is_err()
            {
                break "client-gone";
            }
        }
        if !latency.is_zero() {
            let due = tokio::time::Instant::now() + latency;
            delayed.extend(out.into_iter().map(|m| (due, m)));
        } else if send_all(&mut socket, &shared, id, out).await.is_err() {
            break "client-gone";
        }
    };
    shared.log.update(id, |c| c.ended = Some(ended.to_string()));
}

/// Refuses a text frame: an `Error` message in the shape older SDKs read, then a 1008 close
/// whose reason says what was wrong (current clients see only the close).
async fn refuse_message(
    socket: &mut WebSocket,
    shared: &Shared,
    id: usize,
    reason: &str,
) -> Result<(), axum::Error> {
    let error = json!({"type": "Error", "variant": "INVALID_MESSAGE",
                       "description": reason, "message": reason});
    send_all(socket, shared, id, vec![error]).await?;
    socket
        .send(Message::Close(Some(CloseFrame {
            code: 1008,
            reason: reason.chars().take(120).collect::<String>().into(),
        })))
        .await
}

async fn send_all(
    socket: &mut WebSocket,
    shared: &Shared,
    id: usize,
    messages: Vec<Value>,
) -> Result<(), axum::Error> {
    for m in messages {
        socket.send(Message::Text(m.to_string().into())).await?;
        shared.log.update(id, |c| c.sent.push(m));
    }
    Ok(())
}

/// CloseStream (or its deprecated empty frame): flush the last results, send the Metadata
/// message and close; returns why the connection ended.
async fn close_stream(
    socket: &mut WebSocket,
    shared: &Shared,
    id: usize,
    request_id: &str,
    hasher: &Sha256,
    transcriber: &mut Transcriber,
    mut out: Vec<Value>,
) -> &'static str {
    transcriber.close(&mut out);
    if send_all(socket, shared, id, out).await.is_err() {
        return "client-gone";
    }
    let _ = close_with_metadata(socket, shared, id, request_id, hasher, transcriber).await;
    "close-stream"
}

async fn close_with_metadata(
    socket: &mut WebSocket,
    shared: &Shared,
    id: usize,
    request_id: &str,
    hasher: &Sha256,
    transcriber: &Transcriber,
) -> Result<(), axum::Error> {
    let sha: String = hasher
        .clone()
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let metadata = json!({
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": request_id,
        "sha256": sha,
        "created": "2026-01-01T00:00:00.000Z",
        "duration": transcriber.duration_secs(),
        "channels": 1,
    });
    send_all(socket, shared, id, vec![metadata]).await?;
    socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await
}
