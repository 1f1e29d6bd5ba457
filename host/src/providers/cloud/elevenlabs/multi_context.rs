//! The multi-context WebSocket transport (`multi-stream-input`): one socket per session, each
//! reply a context on it, so a reply after the first pays no TLS and WebSocket handshake.
//!
//! One task per session owns the socket and the reply in flight. A reply's context is opened
//! with its first sentence's socket, takes the text sentence by sentence, and at its end is
//! flushed and closed, so the server sends the rest of its audio and then `isFinal`. A reply
//! cancelled before that (barge-in, a newer reply) has its context closed; the audio still
//! under way for it names a context no reply owns any more and is dropped.
//!
//! Between replies the socket idles without keep-alive messages: it is opened with the longest
//! inactivity timeout the service allows ([`INACTIVITY_TIMEOUT_S`]), far above the pause
//! between turns of a conversation, and a session quiet for longer lets the service close it
//! rather than holding a socket (and the provider's resources) for a user who may be gone. The
//! next reply then opens a new socket, as it does after any close or drop between replies. A
//! socket lost during a reply is replaced, and the reply replayed, only while none of its audio
//! has arrived, as the per-reply transport does; otherwise the reply fails with the error.

use super::context_messages as wire;
use super::messages::ServerMessage;
use super::output::{with_trailing_space, Job, OutputFormat};
use super::websocket::{closed_error, decode_audio, dropped, parse};
use super::{ElevenLabsSettings, EVENT_CAPACITY, INPUT_CAPACITY, NAME};
use crate::providers::cloud::backoff::{RetryAfter, RetryPolicy};
use crate::providers::cloud::ws::{self, ws_base, WsStream};
use crate::providers::{
    ProviderError, ProviderErrorKind, TtsEvent, TtsInput, TtsParams, TtsSession, TtsStream,
};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// The idle time after which the service closes the socket: the largest value it accepts.
pub(super) const INACTIVITY_TIMEOUT_S: u32 = 180;

/// How long the goodbye to the service may take when the session ends.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A session's ElevenLabs speech: hands each reply to the session's connection task.
pub(super) struct MultiContextSession {
    settings: Arc<ElevenLabsSettings>,
    replies: mpsc::UnboundedSender<Reply>,
    /// Replies opened so far: part of each context id, so no id is used twice on a socket.
    opened: u32,
}

impl MultiContextSession {
    /// Starts the session's connection task (inside a Tokio runtime); it connects when the
    /// first reply opens and ends, closing the socket, once this handle and the last reply's
    /// stream are dropped.
    pub(super) fn spawn(settings: Arc<ElevenLabsSettings>, session_id: &str) -> Self {
        let (replies, incoming) = mpsc::unbounded_channel();
        let connection = Connection {
            policy: RetryPolicy {
                max_retries: settings.max_retries,
                ..RetryPolicy::default()
            },
            settings: settings.clone(),
            session_id: session_id.to_string(),
            incoming,
            socket: None,
            reply: None,
        };
        tokio::spawn(connection.run());
        Self {
            settings,
            replies,
            opened: 0,
        }
    }
}

impl TtsSession for MultiContextSession {
    fn open(&mut self, params: TtsParams) -> TtsStream {
        let (input_tx, input) = mpsc::channel(INPUT_CAPACITY);
        let (events, events_rx) = mpsc::channel(EVENT_CAPACITY);
        let reply = Reply {
            context: format!("t{}-{}", params.turn, self.opened),
            job: Job::new(self.settings.clone(), &params),
            input,
            events,
            texts: Vec::new(),
            flushed: false,
            audio_received: false,
            attached: false,
            retry: 0,
            waited: Duration::ZERO,
        };
        self.opened = self.opened.wrapping_add(1);
        if let Err(refused) = self.replies.send(reply) {
            // The task ends only after this handle is dropped; a panic is the one way here.
            let error = ProviderError::new(
                ProviderErrorKind::Unavailable,
                NAME,
                "the session's speech connection has ended",
            );
            let _ = refused.0.events.try_send(TtsEvent::Error(error));
        }
        TtsStream {
            input: input_tx,
            events: events_rx,
        }
    }
}

/// One reply: its context on the socket and what it has asked for so far (replayed when the
/// context is opened again on a new socket).
struct Reply {
    context: String,
    job: Job,
    input: mpsc::Receiver<TtsInput>,
    events: mpsc::Sender<TtsEvent>,
    texts: Vec<String>,
    flushed: bool,
    audio_received: bool,
    /// Its context is open on the current socket.
    attached: bool,
    retry: u32,
    waited: Duration,
}

/// An open socket.
struct Socket {
    sink: SplitSink<WsStream, Message>,
    stream: SplitStream<WsStream>,
    /// The voice and format its URL names: a reply wanting others needs another socket.
    target: (String, OutputFormat),
    /// An error message the server sent, reported with the close that follows it.
    server_error: Option<ServerMessage>,
}

/// The session's connection task: the one owner of the socket and of the reply in flight.
struct Connection {
    settings: Arc<ElevenLabsSettings>,
    session_id: String,
    policy: RetryPolicy,
    incoming: mpsc::UnboundedReceiver<Reply>,
    socket: Option<Socket>,
    reply: Option<Reply>,
}

/// What woke the task.
enum Wake {
    Opened(Option<Reply>),
    Input(Option<TtsInput>),
    /// The session dropped the reply's stream.
    Cancelled,
    Frame(Option<Result<Message, WsError>>),
}

impl Connection {
    async fn run(mut self) {
        let mut session_over = false;
        loop {
            if self.reply.as_ref().is_some_and(|r| !r.attached) {
                self.attach().await;
                continue;
            }
            if session_over && self.reply.is_none() {
                break;
            }
            let wake = tokio::select! {
                opened = self.incoming.recv(), if !session_over => Wake::Opened(opened),
                signal = reply_signal(&mut self.reply) => signal,
                frame = next_frame(&mut self.socket) => Wake::Frame(frame),
            };
            match wake {
                Wake::Opened(Some(reply)) => self.start(reply).await,
                Wake::Opened(None) => session_over = true,
                Wake::Input(Some(TtsInput::Text(text))) => self.text(text).await,
                Wake::Input(Some(TtsInput::Flush)) => self.flush().await,
                // Input dropped before the end of the reply, or its events: cancelled.
                Wake::Input(None) | Wake::Cancelled => self.cancel().await,
                Wake::Frame(frame) => self.frame(frame).await,
            }
        }
        self.close_socket().await;
    }

    fn key(&self) -> Option<&str> {
        self.settings.api_key.as_deref()
    }

    /// A new reply replaces the one in flight, whose context is closed.
    async fn start(&mut self, reply: Reply) {
        let previous = self.reply.replace(reply);
        if let Some(old) = previous.filter(|r| r.attached) {
            self.send_or_lose(wire::close(&old.context)).await;
        }
    }

    async fn text(&mut self, text: String) {
        let Some(reply) = &mut self.reply else { return };
        if text.trim().is_empty() {
            return;
        }
        let text = with_trailing_space(&text);
        let message = wire::text(&reply.context, &text);
        reply.texts.push(text);
        self.send_or_lose(message).await;
    }

    async fn flush(&mut self) {
        let Some(reply) = &mut self.reply else { return };
        reply.flushed = true;
        for message in wire::end(&reply.context) {
            self.send_or_lose(message).await;
        }
    }

    /// The session no longer wants the reply: close its context; what still comes for it is
    /// dropped, since no reply owns that context any more.
    async fn cancel(&mut self) {
        let Some(reply) = &self.reply else { return };
        let message = wire::close(&reply.context);
        self.reply = None;
        self.send_or_lose(message).await;
    }

    /// Opens the reply's context (connecting first when there is no fitting socket) and
    /// replays what the reply asked for so far.
    async fn attach(&mut self) {
        let Some(reply) = &self.reply else { return };
        let target = (reply.job.voice.clone(), reply.job.format);
        if self.socket.as_ref().is_some_and(|s| s.target != target) {
            self.close_socket().await;
        }
        if self.socket.is_none() {
            match self.connect(target).await {
                Some(Ok(socket)) => self.socket = Some(socket),
                Some(Err(error)) => return self.retry_or_fail(error).await,
                None => return,
            }
        }
        let Some(reply) = &self.reply else { return };
        let mut outbox = vec![wire::open(&reply.context, &self.settings.voice_settings)];
        outbox.extend(reply.texts.iter().map(|t| wire::text(&reply.context, t)));
        if reply.flushed {
            outbox.extend(wire::end(&reply.context));
        }
        for message in outbox {
            if let Err(error) = self.send(message).await {
                self.socket = None;
                return self.retry_or_fail(error).await;
            }
        }
        if let Some(reply) = &mut self.reply {
            reply.attached = true;
        }
    }

    /// Connects for the reply in flight; `None` when the session dropped the reply meanwhile.
    async fn connect(
        &mut self,
        target: (String, OutputFormat),
    ) -> Option<Result<Socket, ProviderError>> {
        let reply = self.reply.as_ref()?;
        let url = match reply.job.checked_voice() {
            Ok(voice) => format!(
                "{}/v1/text-to-speech/{voice}/multi-stream-input?model_id={}&output_format={}&auto_mode=true&inactivity_timeout={INACTIVITY_TIMEOUT_S}",
                ws_base(&self.settings.url),
                self.settings.model_id,
                target.1.query_value()
            ),
            Err(e) => return Some(Err(e)),
        };
        let headers: Vec<(&'static str, String)> = self
            .key()
            .map(|k| vec![("xi-api-key", k.to_string())])
            .unwrap_or_default();
        let connected = tokio::select! {
            r = ws::connect(NAME, &url, &headers, self.key()) => r,
            _ = reply.events.closed() => {
                self.reply = None;
                return None;
            }
        };
        Some(connected.map(|socket| {
            let (sink, stream) = socket.split();
            Socket {
                sink,
                stream,
                target,
                server_error: None,
            }
        }))
    }

    /// A failure of the reply's connection: retried after a pause while no audio of the reply
    /// has arrived and the error is worth it, else reported and the reply ends.
    async fn retry_or_fail(&mut self, error: ProviderError) {
        let Some(reply) = &mut self.reply else { return };
        reply.attached = false;
        let delay = if error.retryable() && !reply.audio_received {
            self.policy
                .next_delay(reply.retry, reply.waited, RetryAfter::Absent)
        } else {
            None
        };
        let Some(delay) = delay else {
            tracing::warn!(session = %self.session_id, turn = reply.job.turn, provider = NAME,
                %error, "speech synthesis failed");
            let _ = reply.events.send(TtsEvent::Error(error)).await;
            self.reply = None;
            return;
        };
        tracing::warn!(session = %self.session_id, turn = reply.job.turn, provider = NAME,
            %error, retry = reply.retry + 1, "speech synthesis connection failed; retrying");
        let cancelled = tokio::select! {
            _ = tokio::time::sleep(delay) => false,
            _ = reply.events.closed() => true,
        };
        reply.waited += delay;
        reply.retry += 1;
        if cancelled {
            self.reply = None;
        }
    }

    async fn send(&mut self, message: String) -> Result<(), ProviderError> {
        let key = self.settings.api_key.as_deref();
        match &mut self.socket {
            Some(socket) => socket
                .sink
                .send(Message::text(message))
                .await
                .map_err(|e| dropped(key, e)),
            // No socket: the reply's context is opened, and its text replayed, on the next.
            None => Ok(()),
        }
    }

    async fn send_or_lose(&mut self, message: String) {
        if let Err(error) = self.send(message).await {
            self.lost(error).await;
        }
    }

    /// The socket failed or the server closed it: the reply in flight, if any, is retried on a
    /// new socket or fails; with none, the next reply connects anew.
    async fn lost(&mut self, error: ProviderError) {
        self.socket = None;
        if self.reply.is_some() {
            self.retry_or_fail(error).await;
        } else {
            tracing::debug!(session = %self.session_id, provider = NAME, %error,
                "idle speech socket closed; the next reply opens another");
        }
    }

    async fn frame(&mut self, frame: Option<Result<Message, WsError>>) {
        let error = match frame {
            Some(Ok(Message::Text(text))) => return self.server_text(text.as_str()).await,
            Some(Ok(Message::Close(frame))) => {
                let code = frame.as_ref().map(|f| f.code);
                let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                let server_error = self.socket.as_mut().and_then(|s| s.server_error.take());
                closed_error(self.key(), code, &reason, server_error)
            }
            Some(Ok(_)) => return,
            Some(Err(e)) => dropped(self.key(), e),
            None => dropped(self.key(), "connection ended"),
        };
        self.lost(error).await;
    }

    async fn server_text(&mut self, text: &str) {
        let Some(mut message) = parse(&self.session_id, text) else {
            return;
        };
        if message.error.is_some() {
            if let Some(socket) = &mut self.socket {
                socket.server_error = Some(message);
            }
            return;
        }
        // Audio and ends of contexts no reply owns (closed ones) go nowhere.
        let Some(reply) = self
            .reply
            .as_mut()
            .filter(|r| message.context_id.as_deref() == Some(r.context.as_str()))
        else {
            return;
        };
        if let Some(audio) = message.audio.take().filter(|a| !a.is_empty()) {
            if let Some(bytes) = decode_audio(&self.session_id, &audio) {
                reply.audio_received = true;
                if let Some(event) = reply.job.audio_event(&bytes, message.take_alignment()) {
                    if reply.events.send(event).await.is_err() {
                        return self.cancel().await;
                    }
                }
            }
        }
        if message.is_final == Some(true) {
            if reply.flushed {
                let _ = reply.events.send(TtsEvent::Done).await;
                self.reply = None;
            } else {
                let error = ProviderError::new(
                    ProviderErrorKind::Unavailable,
                    NAME,
                    "the service ended the reply's context before the reply ended",
                );
                self.retry_or_fail(error).await;
            }
        }
    }

    /// Says goodbye to the service (every context closes) and closes the socket.
    async fn close_socket(&mut self) {
        let Some(mut socket) = self.socket.take() else {
            return;
        };
        let goodbye = async {
            let _ = socket.sink.send(Message::text(wire::close_socket())).await;
            let _ = socket.sink.close().await;
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, goodbye).await;
    }
}

/// What the reply in flight asks for next, or that the session dropped it.
async fn reply_signal(reply: &mut Option<Reply>) -> Wake {
    let Some(reply) = reply else {
        return std::future::pending().await;
    };
    if reply.flushed {
        reply.events.closed().await;
        return Wake::Cancelled;
    }
    tokio::select! {
        input = reply.input.recv() => Wake::Input(input),
        _ = reply.events.closed() => Wake::Cancelled,
    }
}

async fn next_frame(socket: &mut Option<Socket>) -> Option<Result<Message, WsError>> {
    match socket {
        Some(socket) => socket.stream.next().await,
        None => std::future::pending().await,
    }
}
