//! A continuous real-time microphone client of `/agent`: it sends a 20 ms frame every 20 ms,
//! queued speech when there is some and silence otherwise, as a browser or phone does, and
//! collects what the server says. Every end-to-end test that speaks uses it.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Guard against a hung pipeline (offline models on a busy machine are slow); not a performance bound.
pub const LIMIT: Duration = Duration::from_secs(180);

/// What the test client heard.
#[derive(Debug)]
pub enum Heard {
    Json(Value),
    Audio(usize),
}

/// A client that streams 20 ms frames in real time: queued speech, else silence.
pub struct Microphone {
    queue: Arc<Mutex<VecDeque<i16>>>,
    /// While set, no frames are sent (a paused microphone, a call on hold).
    muted: Arc<AtomicBool>,
    control: mpsc::UnboundedSender<Value>,
    events: mpsc::UnboundedReceiver<Heard>,
    /// Every JSON message received so far.
    pub log: Vec<Value>,
    /// Agent audio bytes received so far.
    pub audio_bytes: usize,
}

impl Microphone {
    /// Connect to `url` and start a session sending PCM16 at 16 kHz, asking for `output`.
    pub async fn connect(url: &str, output: Value) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connects to /agent");
        let (mut sink, mut stream) = socket.split();
        let start = json!({"type": "start", "audio": {"encoding": "pcm16", "sample_rate": 16000},
                           "output": output});
        sink.send(Message::text(start.to_string())).await.unwrap();
        let queue: Arc<Mutex<VecDeque<i16>>> = Arc::new(Mutex::new(VecDeque::new()));
        let pending = queue.clone();
        let muted = Arc::new(AtomicBool::new(false));
        let silent = muted.clone();
        let (control, mut outbox) = mpsc::unbounded_channel::<Value>();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    Some(msg) = outbox.recv() => {
                        if sink.send(Message::text(msg.to_string())).await.is_err() {
                            return;
                        }
                        continue;
                    }
                }
                if silent.load(Ordering::Relaxed) {
                    continue;
                }
                let frame: Vec<u8> = {
                    let mut q = pending.lock().unwrap();
                    (0..320)
                        .flat_map(|_| q.pop_front().unwrap_or(0).to_le_bytes())
                        .collect()
                };
                if sink.send(Message::binary(frame)).await.is_err() {
                    return;
                }
            }
        });
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let heard = match msg {
                    Message::Text(t) => {
                        Heard::Json(serde_json::from_str(t.as_str()).unwrap_or(Value::Null))
                    }
                    Message::Binary(b) => Heard::Audio(b.len()),
                    _ => continue,
                };
                if tx.send(heard).is_err() {
                    return;
                }
            }
        });
        Self {
            queue,
            muted,
            control,
            events,
            log: Vec::new(),
            audio_bytes: 0,
        }
    }

    /// A microphone on the host at `addr`, past `ready`, asking for PCM16 at 16 kHz.
    pub async fn ready(addr: std::net::SocketAddr) -> Self {
        Self::many_ready(addr, 1).await.remove(0)
    }

    /// `n` microphones on the host at `addr`, all connected at once, each past `ready`, asking
    /// for PCM16 at 16 kHz.
    pub async fn many_ready(addr: std::net::SocketAddr, n: usize) -> Vec<Self> {
        let url = format!("ws://{addr}/agent");
        let output = json!({"encoding": "pcm16", "sample_rate": 16000});
        let mut mics =
            futures_util::future::join_all((0..n).map(|_| Self::connect(&url, output.clone())))
                .await;
        futures_util::future::join_all(
            mics.iter_mut()
                .map(|m| m.until("ready", |v| v["type"] == "ready")),
        )
        .await;
        mics
    }

    /// Reads until `ready`, sends a typed turn and reads until its reply's first words;
    /// returns the reply's turn.
    pub async fn ask_after_ready(&mut self, text: &str) -> u64 {
        self.until("ready", |v| v["type"] == "ready").await;
        self.send(serde_json::json!({"type": "text", "text": text}));
        self.until("the reply's first words", |v| v["type"] == "agent_text")
            .await["turn"]
            .as_u64()
            .expect("a turn number")
    }

    pub fn send(&self, message: Value) {
        self.control.send(message).expect("client is connected");
    }

    /// Stops (`true`) or resumes sending frames, as a client that pauses its microphone.
    pub fn mute(&self, muted: bool) {
        self.muted.store(muted, Ordering::Relaxed);
    }

    pub fn say(&self, audio: &[i16]) {
        self.queue.lock().unwrap().extend(audio.iter().copied());
    }

    /// Reads until a JSON message satisfies `done`; returns it.
    pub async fn until(&mut self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        loop {
            let heard = tokio::time::timeout(LIMIT, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}; saw {:#?}", self.log))
                .unwrap_or_else(|| {
                    panic!("connection ended waiting for {what}; saw {:#?}", self.log)
                });
            match heard {
                Heard::Audio(n) => self.audio_bytes += n,
                Heard::Json(v) => {
                    self.log.push(v.clone());
                    if done(&v) {
                        return v;
                    }
                }
            }
        }
    }

    /// Reads until at least `bytes` more agent audio arrived.
    pub async fn audio(&mut self, bytes: usize) {
        let target = self.audio_bytes + bytes;
        while self.audio_bytes < target {
            match tokio::time::timeout(LIMIT, self.events.recv()).await {
                Ok(Some(Heard::Audio(n))) => self.audio_bytes += n,
                Ok(Some(Heard::Json(v))) => self.log.push(v),
                _ => panic!("no agent audio; saw {:#?}", self.log),
            }
        }
    }

    /// Reads what the server says until every queued sample has been sent.
    pub async fn finish_saying(&mut self) {
        let deadline = tokio::time::Instant::now() + LIMIT;
        while !self.queue.lock().unwrap().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "speech still queued after {LIMIT:?}; saw {:#?}",
                self.log
            );
            let tick = tokio::time::sleep(Duration::from_millis(20));
            tokio::select! {
                _ = tick => {}
                heard = self.events.recv() => match heard {
                    Some(Heard::Audio(n)) => self.audio_bytes += n,
                    Some(Heard::Json(v)) => self.log.push(v),
                    None => panic!("connection ended while speaking; saw {:#?}", self.log),
                },
            }
        }
    }

    /// JSON messages of type `kind`, in order.
    pub fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.log.iter().filter(|v| v["type"] == kind).collect()
    }

    pub fn of(&self, kind: &str, turn: u64) -> Vec<&Value> {
        self.log
            .iter()
            .filter(|v| v["type"] == kind && v["turn"] == turn)
            .collect()
    }
}

/// A matcher for message `kind` of `turn`.
pub fn is(kind: &'static str, turn: u64) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == kind && v["turn"] == turn
}
