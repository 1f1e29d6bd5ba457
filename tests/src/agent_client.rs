//! A client of voice-host's `/agent` protocol v1 for the end-to-end tests: connects, sends
//! `start`, streams audio and collects what the server says.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Something the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Json(Value),
    Audio(Vec<u8>),
    Closed { code: u16, reason: String },
}

/// A connected `/agent` client.
pub struct AgentClient {
    ws: Ws,
    /// Every JSON message received so far, in order.
    pub messages: Vec<Value>,
    /// Agent audio bytes received so far.
    pub audio: Vec<u8>,
    /// Number of binary frames received.
    pub audio_frames: usize,
    pub closed: Option<(u16, String)>,
    /// The subprotocol the server selected, if any.
    pub protocol: Option<String>,
}

/// Why an upgrade was refused: the HTTP status and body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: String,
}

impl AgentClient {
    /// Open `/agent` on `addr`, optionally with an `Origin` header.
    pub async fn connect(addr: SocketAddr, origin: Option<&str>) -> Result<Self, Refused> {
        Self::connect_path(addr, "/agent", origin).await
    }

    pub async fn connect_path(
        addr: SocketAddr,
        path: &str,
        origin: Option<&str>,
    ) -> Result<Self, Refused> {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        Self::connect_with(addr, path, &headers).await
    }

    /// Open `path` (with its query) on `addr` with extra request headers.
    pub async fn connect_with(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, Refused> {
        let mut req = format!("ws://{addr}{path}")
            .into_client_request()
            .expect("valid request");
        for (name, value) in headers {
            req.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .expect("valid header name"),
                value.parse().expect("valid header value"),
            );
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, resp)) => Ok(Self {
                ws,
                messages: Vec::new(),
                audio: Vec::new(),
                audio_frames: 0,
                closed: None,
                protocol: resp
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(Refused {
                status: resp.status().as_u16(),
                retry_after: resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                body: resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).to_string())
                    .unwrap_or_default(),
            }),
            Err(e) => Err(Refused {
                status: 0,
                retry_after: None,
                body: e.to_string(),
            }),
        }
    }

    /// Connect and start a session with these input/output formats; returns after `ready`.
    pub async fn start(addr: SocketAddr, audio: Value, output: Option<Value>) -> Self {
        let c = Self::connect(addr, None).await.expect("upgrade accepted");
        c.start_session(audio, output).await
    }

    /// [`AgentClient::start`] sending 16 kHz PCM16 and taking the default output.
    pub async fn start_pcm16(addr: SocketAddr) -> Self {
        Self::start(
            addr,
            json!({"encoding": "pcm16", "sample_rate": 16000}),
            None,
        )
        .await
    }

    /// Send `start` on this connection; returns after `ready`.
    pub async fn start_session(self, audio: Value, output: Option<Value>) -> Self {
        let mut c = self;
        let mut start = json!({"type": "start", "audio": audio});
        if let Some(o) = output {
            start["output"] = o;
        }
        c.send_json(start).await;
        c.expect_type("ready", Duration::from_secs(10)).await;
        c
    }

    pub async fn send_json(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send text");
    }

    pub async fn send_text_frame(&mut self, s: &str) {
        self.ws
            .send(Message::Text(s.to_string().into()))
            .await
            .expect("send text");
    }

    pub async fn send_audio(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .expect("send binary");
    }

    /// Read what arrives until `deadline`.
    pub async fn drain_until(&mut self, deadline: tokio::time::Instant) {
        while tokio::time::Instant::now() < deadline && self.closed.is_none() {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(m))) => {
                    self.record(m);
                }
                Ok(_) => {
                    if self.closed.is_none() {
                        self.closed = Some((1006, String::new()));
                    }
                }
                Err(_) => break,
            }
        }
    }

    fn record(&mut self, m: Message) -> Option<Received> {
        match m {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).expect("server sends JSON text frames");
                self.messages.push(v.clone());
                Some(Received::Json(v))
            }
            Message::Binary(b) => {
                self.audio.extend_from_slice(&b);
                self.audio_frames += 1;
                Some(Received::Audio(b.to_vec()))
            }
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((u16::from(CloseCode::Status), String::new()));
                self.closed = Some((code, reason.clone()));
                Some(Received::Closed { code, reason })
            }
            _ => None,
        }
    }

    /// The next thing the server sends, within `limit`.
    pub async fn next(&mut self, limit: Duration) -> Option<Received> {
        loop {
            match tokio::time::timeout(limit, self.ws.next()).await {
                Ok(Some(Ok(m))) => {
                    if let Some(r) = self.record(m) {
                        return Some(r);
                    }
                }
                Ok(_) => {
                    if self.closed.is_none() {
                        self.closed = Some((1006, String::new()));
                    }
                    return None;
                }
                Err(_) => return None,
            }
        }
    }

    /// Wait for a JSON message of `type` (recording everything before it); panics after `limit`.
    pub async fn expect_type(&mut self, kind: &str, limit: Duration) -> Value {
        self.wait_for(limit, |v| v["type"] == kind)
            .await
            .unwrap_or_else(|| panic!("no {kind:?} message; got {:?}", self.messages))
    }

    /// Wait for a JSON message matching `pred`.
    pub async fn wait_for(
        &mut self,
        limit: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            match self.next(left).await {
                Some(Received::Json(v)) if pred(&v) => return Some(v),
                Some(_) => {}
                None => return None,
            }
        }
    }

    /// Wait for the server to close; returns the close code.
    pub async fn expect_close(&mut self, limit: Duration) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.closed.is_none() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || self.next(left).await.is_none() && self.closed.is_none() {
                break;
            }
        }
        self.closed
            .clone()
            .unwrap_or_else(|| panic!("server did not close; got {:?}", self.messages))
    }

    /// All JSON messages of `type` received so far.
    pub fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.messages.iter().filter(|m| m["type"] == kind).collect()
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
