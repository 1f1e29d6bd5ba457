//! ElevenLabs streamed text-to-speech, one stream per reply.
//!
//! The WebSocket transports take the reply sentence by sentence as the LLM produces it and
//! return base64 audio with character alignment, so the host can cut its memory at the word the
//! user heard: the multi-context `multi-stream-input` socket (default) carries all of a
//! session's replies, one context each; `stream-input` opens a socket per reply. The HTTP
//! `/stream` transport synthesises each sentence with its own request (no alignment). Dropping
//! a reply's stream stops it at once and drops audio not yet delivered.

mod context_messages;
mod http;
mod messages;
mod multi_context;
mod output;
mod websocket;

use crate::providers::{
    PerReplyTts, ProviderError, TtsEvent, TtsParams, TtsProvider, TtsSession, TtsStream,
};
use multi_context::MultiContextSession;
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Short provider name used in logs and errors.
pub const NAME: &str = "elevenlabs";

const INPUT_CAPACITY: usize = 64;
const EVENT_CAPACITY: usize = 256;

/// Which ElevenLabs endpoint carries the speech.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtsTransport {
    /// `wss://…/v1/text-to-speech/{voice}/multi-stream-input`: one socket per session, each
    /// reply a context on it, with alignment.
    #[default]
    MultiContext,
    /// `wss://…/v1/text-to-speech/{voice}/stream-input`: one socket per reply, with alignment.
    WebSocket,
    /// `POST …/v1/text-to-speech/{voice}/stream` per sentence; no alignment.
    Http,
}

/// Voice settings sent with every request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct VoiceSettings {
    /// 0.0 (expressive) ..= 1.0 (monotone).
    pub stability: f32,
    /// How closely to match the original voice, 0.0 ..= 1.0.
    pub similarity_boost: f32,
    /// Speaking rate; 1.0 is normal.
    pub speed: f32,
}

impl Default for VoiceSettings {
    fn default() -> Self {
        Self {
            stability: 0.5,
            similarity_boost: 0.75,
            speed: 1.0,
        }
    }
}

/// ElevenLabs settings.
#[derive(Clone)]
pub struct ElevenLabsSettings {
    /// HTTP base URL; the WebSocket URL is derived from it (`https` -> `wss`, `http` -> `ws`).
    pub url: String,
    /// Sent as `xi-api-key`; `None` sends no key.
    pub api_key: Option<String>,
    /// Voice used when the session does not name one.
    pub voice_id: String,
    pub model_id: String,
    pub transport: TtsTransport,
    pub voice_settings: VoiceSettings,
    /// Retries of a failed connection or request before any audio arrived.
    pub max_retries: u32,
}

impl Default for ElevenLabsSettings {
    fn default() -> Self {
        Self {
            url: "https://api.elevenlabs.io".into(),
            api_key: None,
            voice_id: "21m00Tcm4TlvDq8ikWAM".into(),
            model_id: "eleven_flash_v2_5".into(),
            transport: TtsTransport::MultiContext,
            voice_settings: VoiceSettings::default(),
            max_retries: 2,
        }
    }
}

impl fmt::Debug for ElevenLabsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElevenLabsSettings")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("voice_id", &self.voice_id)
            .field("model_id", &self.model_id)
            .field("transport", &self.transport)
            .field("voice_settings", &self.voice_settings)
            .finish_non_exhaustive()
    }
}

/// Reads one stream-input server text frame as the WebSocket transport does, for a session that
/// prefers `preferred_rate`: the audio event it carries, or the error a close after it would
/// report. `None` for a frame the transport skips. An entry point for replaying hostile frames
/// (see `crate::fuzzing`).
pub(crate) fn read_server_text(
    text: &str,
    preferred_rate: u32,
) -> Option<Result<Option<TtsEvent>, ProviderError>> {
    let params = TtsParams {
        session_id: String::new(),
        turn: 0,
        voice: None,
        preferred_rate,
    };
    let mut job = output::Job::new(Arc::new(ElevenLabsSettings::default()), &params);
    websocket::read_text(&mut job, text)
}

/// ElevenLabs text-to-speech provider; cheap to share across sessions.
#[derive(Debug, Clone)]
pub struct ElevenLabsTts {
    settings: Arc<ElevenLabsSettings>,
    http: reqwest::Client,
}

impl ElevenLabsTts {
    /// `http` is the process-wide client (used by the HTTP transport).
    pub fn new(settings: ElevenLabsSettings, http: reqwest::Client) -> Self {
        Self {
            settings: Arc::new(settings),
            http,
        }
    }
}

impl TtsProvider for ElevenLabsTts {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Opens the reply's stream (inside a Tokio runtime). The WebSocket transports connect at
    /// once, so the socket is ready when the first sentence arrives; the multi-context one
    /// opens a socket for this reply alone (a session keeps one through [`Self::session`]).
    fn open(&self, params: TtsParams) -> TtsStream {
        if self.settings.transport == TtsTransport::MultiContext {
            return MultiContextSession::spawn(self.settings.clone(), &params.session_id)
                .open(params);
        }
        let (input_tx, input_rx) = mpsc::channel(INPUT_CAPACITY);
        let (event_tx, event_rx) = mpsc::channel(EVENT_CAPACITY);
        let job = output::Job::new(self.settings.clone(), &params);
        if self.settings.transport == TtsTransport::Http {
            tokio::spawn(http::run(job, self.http.clone(), input_rx, event_tx));
        } else {
            tokio::spawn(websocket::run(job, input_rx, event_tx));
        }
        TtsStream {
            input: input_tx,
            events: event_rx,
        }
    }

    /// The multi-context transport keeps one socket for the session; the others open each
    /// reply on its own.
    fn session(self: Arc<Self>, session_id: &str) -> Box<dyn TtsSession> {
        match self.settings.transport {
            TtsTransport::MultiContext => Box::new(MultiContextSession::spawn(
                self.settings.clone(),
                session_id,
            )),
            TtsTransport::WebSocket | TtsTransport::Http => Box::new(PerReplyTts::new(self)),
        }
    }
}
