//! What the orchestrator is fed (events) and what it asks the session's I/O to do (actions).

use crate::audio::VadTransition;
use crate::behaviour::{
    BargeInDecision, BargeInEvent, ChatMessage, GenerationSettings, PromptOutput, TurnDecision,
    TurnEvent,
};
use crate::providers::{Alignment, LlmEvent, ProviderError, SttEvent};
use crate::transport::protocol::{ServerMessage, TurnMetrics};

/// An input to the orchestrator. Every event is handled at a time `now` (ms since session start).
#[derive(Debug, Clone)]
pub enum Event {
    /// The local VAD saw speech start or end (times on the audio clock).
    Vad(VadTransition),
    /// Speech-to-text reported something.
    Stt(SttEvent),
    /// The client typed a user turn.
    UserText(String),
    /// The client has played this much of reply `turn`'s audio (`None`: of the current reply,
    /// from clients that do not name it).
    Playback { turn: Option<u32>, played_ms: u64 },
    /// The intent and prompt plug-ins decided what to do with a user turn (`plan` names the
    /// request it answers).
    ReplyPlanned {
        turn: u32,
        plan: u32,
        output: PromptOutput,
        plugins_ms: f64,
    },
    /// The LLM stream of a reply reported something.
    Llm { turn: u32, event: LlmEvent },
    /// Text-to-speech produced audio, already encoded in the client's output format.
    TtsAudio {
        turn: u32,
        bytes: Vec<u8>,
        alignment: Option<Alignment>,
    },
    /// Text-to-speech finished the reply.
    TtsDone { turn: u32 },
    /// Text-to-speech failed for this reply.
    TtsError { turn: u32, error: ProviderError },
    /// The barge-in policy answered query `seq`.
    BargeInDecided {
        turn: u32,
        seq: u32,
        decision: BargeInDecision,
    },
    /// The end-of-turn policy answered question `seq`.
    TurnDecided { seq: u32, decision: TurnDecision },
    /// Time passed (pacing, timeouts).
    Tick,
    /// The client asked to end the session.
    Stop,
    /// The server is shutting down: finish the turn in flight, then close.
    Drain,
}

/// An instruction from the orchestrator to the session's I/O.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send a JSON message to the client.
    Send(ServerMessage),
    /// Send agent audio (output format) to the client.
    SendAudio(Vec<u8>),
    /// Ask speech-to-text to finalise what it has buffered (local end of speech).
    FinalizeStt,
    /// A user turn was committed: its words are final and its reply is planned from here (or
    /// was already under way, started preemptively).
    TurnCommitted {
        turn: u32,
        user_text: String,
        by: TurnEnd,
    },
    /// The user went on speaking after turn `turn` was committed, before any of its reply was
    /// heard: the reply is dropped and their words join the next turn. The turn's end came too
    /// early (or its reply too late); `by` is what had ended it.
    TurnContinued { turn: u32, by: TurnEnd },
    /// Run the intent and prompt plug-ins for a user turn (committed, or about to be when the
    /// request is preemptive), then report `Event::ReplyPlanned` with the same `plan`.
    PlanReply {
        turn: u32,
        plan: u32,
        user_text: String,
        history: Vec<ChatMessage>,
    },
    /// Start the LLM stream of a reply.
    StartLlm {
        turn: u32,
        messages: Vec<ChatMessage>,
        settings: GenerationSettings,
    },
    /// Drop the LLM stream of a reply (closes the provider connection).
    CancelLlm { turn: u32 },
    /// A reply generated before its turn was committed was used, or thrown away unheard.
    Preempted(Preemption),
    /// Open a text-to-speech stream for a reply.
    StartTts { turn: u32 },
    /// Speak one sentence of the reply.
    SpeakSentence { turn: u32, text: String },
    /// No more text for this reply.
    FlushTts { turn: u32 },
    /// Drop the text-to-speech stream of a reply and any audio not yet sent.
    CancelTts { turn: u32 },
    /// Ask the barge-in policy; answer with `Event::BargeInDecided` carrying the same `seq`.
    AskBargeIn {
        turn: u32,
        seq: u32,
        event: BargeInEvent,
    },
    /// Ask the end-of-turn policy; answer with `Event::TurnDecided` carrying the same `seq`. The
    /// I/O adds the end-of-turn model's probability when a model runs.
    AskTurn { seq: u32, event: TurnEvent },
    /// The end-of-turn policy ended the user's speech (the orchestrator has taken it as the end
    /// of speech): end the VAD's current speech too, so the next voice starts new speech.
    EndSpeech,
    /// Per-turn timings; the I/O adds the host's processing share and sends them.
    Metrics(TurnMetrics),
    /// Close the session with this WebSocket close code.
    Close { code: u16, reason: String },
}

/// What became of a reply the orchestrator started before the user's turn was committed
/// (preemptive generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preemption {
    /// The committed turn said exactly what the reply was started on: it goes on as the reply.
    Used,
    /// The user went on (or the turn went another way): its LLM stream was dropped unheard.
    Wasted,
}

/// What ended a user turn (the `by` label of `voice_turn_ends_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnEnd {
    /// The silence rules: the VAD's end of speech with the recogniser's last words.
    Silence,
    /// Words without a final for `STT_SILENCE_TIMEOUT_MS` (steady noise, a lost final).
    SilenceTimeout,
    /// The end-of-turn policy (`turn` slot) ended the speech.
    Policy,
    /// The client typed it.
    Typed,
    /// Words the user said during a reply, held by the barge-in policy until it ended.
    HeldWords,
}

impl TurnEnd {
    pub const ALL: [TurnEnd; 5] = [
        TurnEnd::Silence,
        TurnEnd::SilenceTimeout,
        TurnEnd::Policy,
        TurnEnd::Typed,
        TurnEnd::HeldWords,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TurnEnd::Silence => "silence",
            TurnEnd::SilenceTimeout => "silence_timeout",
            TurnEnd::Policy => "policy",
            TurnEnd::Typed => "typed",
            TurnEnd::HeldWords => "held_words",
        }
    }
}
