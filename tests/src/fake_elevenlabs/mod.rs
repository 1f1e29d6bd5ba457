//! A local ElevenLabs text-to-speech server: the `stream-input` WebSocket (init message with
//! voice settings and key, text, `flush`, end of input, base64 audio with alignment, `isFinal`,
//! 1008 errors, messages refused as the service refuses them: see [`messages`]), the
//! `multi-stream-input` WebSocket (contexts on one socket: see [`multi`]) and
//! `POST /v1/text-to-speech/{voice}/stream` (raw audio bytes).

pub mod messages;
mod multi;
pub mod synth;

use crate::faults::{Fault, Faults};
use crate::request_log::{header_list, RequestLog};
use crate::server::{ServerHandle, Shutdown};
use axum::body::{Body, Bytes};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use synth::{synthesise, Format};

/// How the fake voice behaves.
#[derive(Debug, Clone)]
pub struct ElevenLabsScript {
    /// When set, the key must come in the `xi-api-key` header or the first message.
    pub api_key: Option<String>,
    /// Pause between audio messages (or HTTP body chunks).
    pub chunk_interval: Duration,
    /// Pause before a stream's (or a context's) first audio (the voice's time to first audio).
    pub first_audio_delay: Duration,
    /// Pause before a WebSocket upgrade is answered: models the TCP, TLS and HTTP round trips
    /// of a real connection, which a loopback connection does not have.
    pub handshake_delay: Duration,
    /// Overrides the `inactivity_timeout` query parameter (20 s when absent, at most 180 s):
    /// a socket that received no message this long closes with 1008 `input_timeout_exceeded`.
    pub inactivity_timeout: Option<Duration>,
}

impl Default for ElevenLabsScript {
    fn default() -> Self {
        Self {
            api_key: None,
            chunk_interval: Duration::from_millis(1),
            first_audio_delay: Duration::ZERO,
            handshake_delay: Duration::ZERO,
            inactivity_timeout: None,
        }
    }
}

impl ElevenLabsScript {
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }
}

/// One WebSocket connection or HTTP request as the server saw it.
#[derive(Debug, Clone, Default)]
pub struct ElevenLabsRequest {
    /// `websocket` or `http`.
    pub transport: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// Client messages (WebSocket) or the request body (HTTP).
    pub messages: Vec<Value>,
    pub audio_messages_sent: usize,
    pub audio_bytes_sent: usize,
    /// The contexts of a multi-context socket, in the order they were opened.
    pub contexts: Vec<ContextLog>,
    /// `final` (isFinal sent and closed), `client-close`, `client-gone`, `refused <code>`,
    /// `auth`, `idle`, `invalid` (a message refused), `dropped-by-fault`, `error-by-fault`,
    /// `completed` (HTTP); `None` while open.
    pub ended: Option<String>,
}

/// One context of a multi-context socket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextLog {
    pub id: String,
    pub audio_bytes_sent: usize,
    /// The client closed it before flushing it (a barge-in or a cancelled reply).
    pub closed_unflushed: bool,
    /// Audio bytes sent for it after the client closed it (audio already under way).
    pub audio_bytes_after_close: usize,
    /// `isFinal` was sent for it.
    pub finished: bool,
}

impl ElevenLabsRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A multi-context socket (path ending in `multi-stream-input`).
    pub fn is_multi_context(&self) -> bool {
        self.path.ends_with("/multi-stream-input")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    script: ElevenLabsScript,
    faults: Faults,
    log: RequestLog<ElevenLabsRequest>,
    shutdown: Shutdown,
}

/// A running fake ElevenLabs; stops when dropped.
pub struct FakeElevenLabs {
    server: ServerHandle,
    shared: Arc<Shared>,
}

impl FakeElevenLabs {
    pub async fn start(script: ElevenLabsScript) -> std::io::Result<Self> {
        Self::start_on(0, script).await
    }

    pub async fn start_on(port: u16, script: ElevenLabsScript) -> std::io::Result<Self> {
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
            Router::new()
                .route("/v1/text-to-speech/{voice}/stream-input", get(stream_input))
                .route(
                    "/v1/text-to-speech/{voice}/multi-stream-input",
                    get(multi_stream_input),
                )
                .route("/v1/text-to-speech/{voice}/stream", post(stream_http)),
        )
        .await?;
        Ok(Self { server, shared })
    }

    /// Base URL for `ELEVENLABS_URL` (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        self.server.http_url()
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// WebSocket connections accepted or refused so far (either endpoint).
    pub fn websocket_connections(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.transport == "websocket")
            .count()
    }

    /// Every connection and request so far, oldest first.
    pub fn requests(&self) -> Vec<ElevenLabsRequest> {
        self.shared.log.snapshot()
    }
}

fn detail(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"detail": {"status": code, "message": message}})),
    )
        .into_response()
}

async fn stream_input(
    State(shared): State<Arc<Shared>>,
    Path(voice): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(shared, "stream-input", voice, query, headers, ws).await
}

async fn multi_stream_input(
    State(shared): State<Arc<Shared>>,
    Path(voice): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(shared, "multi-stream-input", voice, query, headers, ws).await
}

/// Answers the upgrade of either WebSocket endpoint: records it, applies a handshake fault,
/// checks the query and hands the socket to the endpoint's server.
async fn upgrade(
    shared: Arc<Shared>,
    endpoint: &'static str,
    voice: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let id = shared.log.record(ElevenLabsRequest {
        transport: "websocket".into(),
        path: format!("/v1/text-to-speech/{voice}/{endpoint}"),
        query: query.clone(),
        headers: header_list(&headers),
        ..Default::default()
    });
    let fault = shared.faults.next();
    tokio::time::sleep(shared.script.handshake_delay).await;
    if let Some(Fault::Delay(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    if let Some(Fault::Status { code, .. }) = &fault {
        shared
            .log
            .update(id, |r| r.ended = Some(format!("refused {code}")));
        let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return detail(status, "injected_fault", "Injected failure.");
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let Some(format) = Format::parse(&param("output_format").unwrap_or_else(|| "pcm_16000".into()))
    else {
        shared
            .log
            .update(id, |r| r.ended = Some("refused 422".into()));
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_output_format",
            "This fake produces pcm_* and ulaw_8000 only.",
        );
    };
    let header_key = headers
        .get("xi-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let options = WsOptions {
        format,
        auto_mode: param("auto_mode").as_deref() == Some("true"),
        inactivity: shared.script.inactivity_timeout.unwrap_or_else(|| {
            Duration::from_secs(
                param("inactivity_timeout")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(20)
                    .min(180),
            )
        }),
        header_key,
        fault,
    };
    // A small read buffer: tungstenite zero-fills the whole buffer before each read.
    let ws = ws.read_buffer_size(8 * 1024);
    if endpoint == "multi-stream-input" {
        ws.on_upgrade(move |socket| multi::serve(socket, shared, id, options))
    } else {
        ws.on_upgrade(move |socket| serve_ws(socket, shared, id, options))
    }
}

struct WsOptions {
    format: Format,
    auto_mode: bool,
    inactivity: Duration,
    header_key: Option<String>,
    fault: Option<Fault>,
}

/// Generation threshold without `auto_mode` (the first step of the default chunk schedule).
const SCHEDULE_CHARS: usize = 120;

async fn serve_ws(mut socket: WebSocket, shared: Arc<Shared>, id: usize, opts: WsOptions) {
    let mut buffer = String::new();
    let mut init: Option<Value> = None;
    let mut sent_audio = 0usize;
    let mut malformed_pending = matches!(opts.fault, Some(Fault::Malformed));
    let drop_after = match opts.fault {
        Some(Fault::DropMidStream { after }) => Some(after),
        _ => None,
    };
    let stall_after = match opts.fault {
        Some(Fault::Stall { after }) => Some(after),
        _ => None,
    };
    let error_after = match opts.fault {
        Some(Fault::StreamError { after }) => Some(after),
        _ => None,
    };
    // Once stalled, the connection reads on but never speaks or finishes again.
    let mut stalled = false;
    let mut awaiting_first_audio = true;
    let mut shutdown = shared.shutdown.clone();
    let ended: String = 'conn: loop {
        let frame = tokio::select! {
            f = tokio::time::timeout(opts.inactivity, socket.recv()) => f,
            _ = shutdown.wait() => break "shutdown".into(),
        };
        let text = match frame {
            Err(_) => {
                let message = idle_message(opts.inactivity);
                let _ = close_with_error(&mut socket, "input_timeout_exceeded", &message).await;
                break "idle".into();
            }
            Ok(None) | Ok(Some(Err(_))) => break "client-gone".into(),
            Ok(Some(Ok(Message::Close(_)))) => break "client-close".into(),
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(_))) => continue,
        };
        let message: Value = match serde_json::from_str(text.as_str()) {
            Ok(v) => v,
            Err(_) => {
                let _ =
                    close_with_error(&mut socket, "invalid_input_message", messages::UNPARSEABLE)
                        .await;
                break "invalid".into();
            }
        };
        shared.log.update(id, |r| r.messages.push(message.clone()));
        if let Err(refusal) = messages::check(&message, init.as_ref()) {
            let _ = close_with_error(&mut socket, refusal.code, &refusal.message).await;
            break "invalid".into();
        }
        let text = message
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if init.is_none() {
            init = Some(message.clone());
            if let Some(expected) = &shared.script.api_key {
                let in_message = message
                    .get("xi-api-key")
                    .or_else(|| message.get("xi_api_key"))
                    .and_then(Value::as_str);
                let presented = in_message.or(opts.header_key.as_deref());
                if presented != Some(expected.as_str()) {
                    let _ =
                        close_with_error(&mut socket, "invalid_api_key", "Invalid API key").await;
                    break "auth".into();
                }
            }
            continue;
        }
        let end_of_input = message.get("text").and_then(Value::as_str) == Some("");
        let flush = message.get("flush").and_then(Value::as_bool) == Some(true);
        let trigger = message
            .get("try_trigger_generation")
            .and_then(Value::as_bool)
            == Some(true);
        if !end_of_input {
            buffer.push_str(&text);
        }
        let generate = end_of_input
            || flush
            || opts.auto_mode
            || trigger
            || buffer.chars().count() >= SCHEDULE_CHARS;
        if stalled {
            continue;
        }
        if generate && !buffer.trim().is_empty() {
            let spoken = std::mem::take(&mut buffer);
            if std::mem::take(&mut awaiting_first_audio) {
                tokio::time::sleep(shared.script.first_audio_delay).await;
            }
            for chunk in synthesise(spoken.trim_start(), opts.format) {
                if drop_after == Some(sent_audio) {
                    break 'conn "dropped-by-fault".into();
                }
                if error_after == Some(sent_audio) {
                    let _ = close_with_error(&mut socket, QUOTA_ERROR, QUOTA_MESSAGE).await;
                    break 'conn "error-by-fault".into();
                }
                if stall_after == Some(sent_audio) {
                    stalled = true;
                    break;
                }
                if malformed_pending {
                    malformed_pending = false;
                    if socket
                        .send(Message::Text("{\"audio\":".into()))
                        .await
                        .is_err()
                    {
                        break 'conn "client-gone".into();
                    }
                }
                let bytes = chunk.audio.len();
                if socket
                    .send(Message::Text(chunk.message().to_string().into()))
                    .await
                    .is_err()
                {
                    break 'conn "client-gone".into();
                }
                sent_audio += 1;
                shared.log.update(id, |r| {
                    r.audio_messages_sent += 1;
                    r.audio_bytes_sent += bytes;
                });
                tokio::time::sleep(shared.script.chunk_interval).await;
            }
        } else if generate {
            buffer.clear();
        }
        if end_of_input && !stalled {
            let _ = socket
                .send(Message::Text(json!({"isFinal": true}).to_string().into()))
                .await;
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code: 1000,
                    reason: "".into(),
                })))
                .await;
            break "final".into();
        }
    };
    shared.log.update(id, |r| r.ended = Some(ended));
}

/// The error [`Fault::StreamError`] sends: the quota ran out in the middle of a stream.
const QUOTA_ERROR: &str = "quota_exceeded";
const QUOTA_MESSAGE: &str = "This request exceeds your quota of 10000. You have 0 credits remaining, while 91 credits are required for this request.";

/// The service's words when a socket received no text for `inactivity`.
fn idle_message(inactivity: Duration) -> String {
    format!("Have not received a new text input within the timeout of {} seconds. Streaming input terminated. Please make sure to either feed the input in the timely manner, or to send the end of input text (empty string \"\") when done.", inactivity.as_secs())
}

async fn close_with_error(
    socket: &mut WebSocket,
    code: &str,
    message: &str,
) -> Result<(), axum::Error> {
    let body = json!({"message": message, "error": code, "code": 1008});
    socket.send(Message::Text(body.to_string().into())).await?;
    let reason: String = message.chars().take(120).collect();
    socket
        .send(Message::Close(Some(CloseFrame {
            code: 1008,
            reason: reason.into(),
        })))
        .await
}

async fn stream_http(
    State(shared): State<Arc<Shared>>,
    Path(voice): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = shared.log.record(ElevenLabsRequest {
        transport: "http".into(),
        path: format!("/v1/text-to-speech/{voice}/stream"),
        query: query.clone(),
        headers: header_list(&headers),
        messages: vec![body.clone()],
        ..Default::default()
    });
    let fault = shared.faults.next();
    if let Some(Fault::Delay(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    let refuse = |status: StatusCode, code: &str, message: &str| {
        shared.log.update(id, |r| {
            r.ended = Some(format!("refused {}", status.as_u16()))
        });
        detail(status, code, message)
    };
    if let Some(Fault::Status { code, retry_after }) = &fault {
        let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = refuse(status, "system_busy", "The system is busy.");
        if let Some(d) = retry_after {
            if let Ok(v) = format!("{}", d.as_secs_f64()).parse() {
                response.headers_mut().insert("retry-after", v);
            }
        }
        return response;
    }
    if let Some(expected) = &shared.script.api_key {
        if headers.get("xi-api-key").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "Invalid API key",
            );
        }
    }
    let Some(text) = body.get("text").and_then(Value::as_str).map(str::to_string) else {
        shared
            .log
            .update(id, |r| r.ended = Some("refused 422".into()));
        let body = json!({"detail": [{"loc": ["body", "text"], "msg": "field required", "type": "value_error.missing"}]});
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
    };
    let param = query
        .iter()
        .find(|(k, _)| k == "output_format")
        .map(|(_, v)| v.as_str())
        .unwrap_or("mp3_44100_128");
    let Some(format) = Format::parse(param) else {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_output_format",
            "This fake produces pcm_* and ulaw_8000 only.",
        );
    };
    let chunks = synthesise(&text, format);
    let interval = shared.script.chunk_interval;
    let producer = shared.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let first_audio_delay = shared.script.first_audio_delay;
    tokio::spawn(async move {
        tokio::time::sleep(first_audio_delay).await;
        for (i, chunk) in chunks.into_iter().enumerate() {
            if matches!(fault, Some(Fault::DropMidStream { after }) if after == i) {
                let _ = tx.send(Err(std::io::Error::other("injected drop"))).await;
                producer
                    .log
                    .update(id, |r| r.ended = Some("dropped-by-fault".into()));
                return;
            }
            let bytes = chunk.audio.len();
            if tx.send(Ok(Bytes::from(chunk.audio))).await.is_err() {
                producer
                    .log
                    .update(id, |r| r.ended = Some("client-gone".into()));
                return;
            }
            producer.log.update(id, |r| {
                r.audio_messages_sent += 1;
                r.audio_bytes_sent += bytes;
            });
            tokio::time::sleep(interval).await;
        }
        producer
            .log
            .update(id, |r| r.ended = Some("completed".into()));
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        "content-type",
        axum::http::HeaderValue::from_static("audio/mpeg"),
    );
    response
}
