//! Provider traits: speech-to-text, LLM and text-to-speech, each streaming both ways and
//! cancellable. A provider returns channel handles and runs its own task; dropping the handle
//! cancels the stream (the task notices the closed channel and drops its connection).
//!
//! Concrete providers live in submodules (cloud: deepgram, openai, elevenlabs; offline: local).

pub mod cloud;
pub mod error;
pub mod factory;
pub mod local;

pub use error::{ProviderError, ProviderErrorKind};

use crate::behaviour::{ChatMessage, GenerationSettings};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Audio handed to speech-to-text: 16 kHz mono PCM16, 20 ms frames (320 samples) or a few of them.
pub const STT_SAMPLE_RATE: u32 = 16_000;

/// Client side of an open speech-to-text stream (one per session).
pub struct SttStream {
    pub input: mpsc::Sender<SttInput>,
    pub events: mpsc::Receiver<SttEvent>,
}

/// What the session sends to speech-to-text.
#[derive(Debug, Clone)]
pub enum SttInput {
    /// 16 kHz mono PCM16 samples.
    Audio(Vec<i16>),
    /// Local end of speech: flush and finalise what is buffered.
    Finalize,
    /// End of session: flush, then close the stream.
    Close,
}

/// A recognised word with its timing (ms from the start of the stream).
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    pub word: String,
    pub start_ms: u32,
    pub end_ms: u32,
    pub confidence: f32,
}

/// What speech-to-text reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SttEvent {
    /// The provider heard speech start (before any transcript).
    SpeechStarted,
    /// An interim guess for the current utterance segment (may be revised).
    Interim { text: String, words: Vec<Word> },
    /// A final segment; `speech_final` says the provider saw the end of the utterance, and
    /// `from_finalize` that this final answers the session's `Finalize` (nothing of the
    /// utterance is left to come).
    Final {
        text: String,
        words: Vec<Word>,
        speech_final: bool,
        from_finalize: bool,
    },
    /// No new word was finalised for a while: the utterance ended.
    UtteranceEnd,
    /// The stream failed and could not recover.
    Error(ProviderError),
}

/// Options for a speech-to-text stream.
#[derive(Debug, Clone, Default)]
pub struct SttParams {
    pub session_id: String,
    pub language: Option<String>,
}

/// Speech-to-text provider.
pub trait SttProvider: Send + Sync {
    /// Short name for logs and `/readyz` (e.g. "deepgram", "local").
    fn name(&self) -> &'static str;
    /// Open a stream for one session. Connection errors arrive as `SttEvent::Error`.
    fn open(&self, params: SttParams) -> SttStream;
    /// How much audio (16 kHz samples) a session gathers into one [`SttInput::Audio`].
    fn audio_batch_samples(&self) -> usize {
        SOCKET_AUDIO_BATCH_SAMPLES
    }
}

/// Audio for a recogniser across a socket goes in 100 ms messages: five times fewer channel
/// sends and socket writes than one per 20 ms frame, within the 20-250 ms Deepgram recommends.
/// The end of speech flushes what is gathered, so the final transcript is never held back; an
/// interim may come up to 80 ms later than with 20 ms messages.
pub const SOCKET_AUDIO_BATCH_SAMPLES: usize = 1600;

/// One LLM request.
#[derive(Debug, Clone, Default)]
pub struct LlmRequest {
    pub session_id: String,
    pub turn: u32,
    pub messages: Vec<ChatMessage>,
    pub settings: GenerationSettings,
    /// Model of the session's agent profile; `None` uses the provider's configured model (the
    /// embedded LLM has one model and ignores it).
    pub model: Option<String>,
}

/// Token usage reported at the end of a completion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

impl Usage {
    /// Adds another report's counts (a reply that took several requests).
    /// Saturates: the counts come from the provider, which may report anything.
    pub fn add(&mut self, other: Usage) {
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(other.completion_tokens);
    }
}

/// What the LLM stream reports.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmEvent {
    /// A text fragment of the reply.
    Token(String),
    /// The model is still answering with something other than reply text (tool calls
    /// streaming, another round under way): it has not stalled. Sent at most every
    /// [`WORKING_EVERY`] while no text flows.
    Working,
    /// The reply is complete.
    Done {
        finish_reason: Option<String>,
        usage: Option<Usage>,
    },
    /// The request failed (before or during the stream).
    Error(ProviderError),
}

/// The most often an LLM stream reports [`LlmEvent::Working`].
pub const WORKING_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// LLM provider. Dropping the receiver cancels the request at once.
pub trait LlmProvider: Send + Sync {
    fn name(&self) -> &'static str;
    fn stream(&self, request: LlmRequest) -> mpsc::Receiver<LlmEvent>;
}

/// Options for a text-to-speech stream (one per reply).
#[derive(Debug, Clone, Default)]
pub struct TtsParams {
    pub session_id: String,
    pub turn: u32,
    pub voice: Option<String>,
    /// The sample rate the session would like (providers may answer with another; resampled).
    pub preferred_rate: u32,
}

/// Client side of a text-to-speech stream for one reply.
pub struct TtsStream {
    pub input: mpsc::Sender<TtsInput>,
    pub events: mpsc::Receiver<TtsEvent>,
}

/// What the session sends to text-to-speech.
#[derive(Debug, Clone, PartialEq)]
pub enum TtsInput {
    /// A complete sentence (or clause) of the reply.
    Text(String),
    /// End of the reply: synthesise what is buffered, then finish.
    Flush,
}

/// Character timing within an audio chunk (ms relative to the chunk's start).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Alignment {
    pub chars: Vec<char>,
    pub start_ms: Vec<u32>,
    pub duration_ms: Vec<u32>,
}

/// What text-to-speech reports.
#[derive(Debug, Clone, PartialEq)]
pub enum TtsEvent {
    /// Mono PCM16 audio at `sample_rate`, with optional character alignment.
    Audio {
        samples: Vec<i16>,
        sample_rate: u32,
        alignment: Option<Alignment>,
    },
    /// All text sent so far has been synthesised and the reply is complete (after `Flush`).
    Done,
    Error(ProviderError),
}

/// Text-to-speech provider.
pub trait TtsProvider: SharedTts + Send + Sync {
    fn name(&self) -> &'static str;
    /// Opens the stream of one reply, on its own.
    fn open(&self, params: TtsParams) -> TtsStream;
    /// The text-to-speech of one session (`session_id` names it in logs), which opens the
    /// stream of each of its replies. A provider that can carry a session's replies on one
    /// connection returns an object that keeps it; the default opens each reply with
    /// [`TtsProvider::open`].
    fn session(self: Arc<Self>, session_id: &str) -> Box<dyn TtsSession> {
        let _ = session_id;
        Box::new(PerReplyTts::new(self.shared()))
    }
}

/// A session's text-to-speech, owned by the session and dropped with it (a connection kept
/// for the session closes then).
pub trait TtsSession: Send {
    /// Opens the stream of the session's next reply. Dropping the stream cancels that reply.
    fn open(&mut self, params: TtsParams) -> TtsStream;
}

/// The default [`TtsSession`]: every reply opens a stream of its own.
pub struct PerReplyTts(Arc<dyn TtsProvider>);

impl PerReplyTts {
    pub fn new(provider: Arc<dyn TtsProvider>) -> Self {
        Self(provider)
    }
}

impl TtsSession for PerReplyTts {
    fn open(&mut self, params: TtsParams) -> TtsStream {
        self.0.open(params)
    }
}

/// An `Arc` of a provider as the shared trait object, so that [`TtsProvider::session`]'s
/// default can keep the provider (implemented for every sized provider).
pub trait SharedTts {
    fn shared(self: Arc<Self>) -> Arc<dyn TtsProvider>;
}

impl<T: TtsProvider + 'static> SharedTts for T {
    fn shared(self: Arc<Self>) -> Arc<dyn TtsProvider> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::Usage;

    #[test]
    fn usage_totals_saturate_instead_of_overflowing() {
        let mut total = Usage {
            prompt_tokens: u32::MAX - 1,
            completion_tokens: 7,
        };
        total.add(Usage {
            prompt_tokens: 5,
            completion_tokens: 3,
        });
        assert_eq!(total.prompt_tokens, u32::MAX);
        assert_eq!(total.completion_tokens, 10);
    }
}
