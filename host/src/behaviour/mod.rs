//! The four pluggable behaviours (intent analysis, prompt shaping, barge-in policy, end-of-turn
//! policy) as the session sees them. The WebAssembly runtime (`crate::plugins`) implements these traits for
//! components; `defaults` holds the built-in behaviour used when no plug-in is configured and as
//! the fallback when a plug-in call fails.
//!
//! These records mirror the WIT package in `wit/` one to one, so marshalling stays thin.

pub mod defaults;
mod message_runs;

pub use message_runs::{join_onto, joined_runs};

use serde::{Deserialize, Serialize};

/// Who said a message in the conversation history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One message of the conversation as sent to the LLM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// What the intent analyzer concluded about a user turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub name: String,
    /// 0.0 ..= 1.0
    pub confidence: f32,
    pub slots: Vec<(String, String)>,
}

/// Input of the intent analyzer: the final transcript of a user turn.
#[derive(Debug, Clone)]
pub struct IntentInput {
    pub transcript: String,
    pub turn: u32,
    /// Recent history, oldest first (bounded by the session's memory).
    pub history: Vec<ChatMessage>,
}

/// Input of the prompt shaper.
#[derive(Debug, Clone)]
pub struct PromptInput {
    pub system_prompt: String,
    pub history: Vec<ChatMessage>,
    pub user_turn: String,
    pub turn: u32,
    pub intent: Option<Intent>,
}

/// Optional generation settings the prompt shaper may set for one LLM request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerationSettings {
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
}

/// What to do with a user turn.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptOutput {
    /// Send these messages to the LLM.
    Llm {
        messages: Vec<ChatMessage>,
        settings: GenerationSettings,
    },
    /// Speak this text without calling the LLM (e.g. "repeat that").
    Direct { text: String },
}

/// A barge-in event: the user is speaking while the agent speaks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BargeInEvent {
    /// Interim words of the user heard so far in this barge-in ("" right at speech start).
    pub interim_text: String,
    pub word_count: u32,
    /// How long the user has been speaking, in ms.
    pub user_speech_ms: u32,
    /// How long the agent has been heard speaking in this turn, in ms.
    pub agent_spoken_ms: u32,
    /// The reply text heard so far and the text still to speak.
    pub spoken_text: String,
    pub remaining_text: String,
    /// Whether the sentence playing now is protected (must be heard whole).
    pub protected_playing: bool,
    /// The user turn the agent is replying to. Host-side only (the WIT event has no turn, so
    /// plug-ins do not see it): it numbers the call in recordings.
    pub turn: u32,
}

/// The barge-in policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BargeInDecision {
    /// Keep speaking; this barge-in is over.
    Ignore,
    /// Stop the reply now.
    Interrupt,
    /// Stop audio now, hold the rest; resume if no real words follow.
    Pause,
    /// Decide again on the next event of this barge-in.
    Wait,
}

/// Why the end-of-turn policy is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnTrigger {
    /// The user's voice stopped a moment ago (before the VAD's end of speech).
    Pause,
    /// The VAD ended the speech.
    SpeechEnd,
    /// New words arrived while the user is silent.
    Transcript,
    /// A `Wait` of the previous answer ran out with the user still silent.
    Timer,
}

/// What the host knows about the user's turn when it asks the end-of-turn policy.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnEvent {
    pub trigger: TurnTrigger,
    /// Silence since the user's voice stopped, in ms.
    pub silence_ms: u32,
    /// First voice to last voice of this turn, in ms.
    pub speech_ms: u32,
    /// Final words, then the latest interim guess.
    pub text: String,
    pub word_count: u32,
    /// Whether every word of `text` is final.
    pub text_final: bool,
    /// The end-of-turn model's probability that the user has finished (`None`: no model).
    pub model_probability: Option<f32>,
    /// The text end-of-turn model's probability that the user's sentence ends where `text`
    /// stops (`None`: no text model, or no answer in time). Plug-ins read it through the
    /// `turn-signals` import.
    pub words_probability: Option<f32>,
    /// The last sentence the agent said before this turn.
    pub agent_last_sentence: String,
    /// The user turn being decided. Host-side only (plug-ins do not see it): it numbers the call
    /// in recordings.
    pub turn: u32,
}

/// The end-of-turn policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnDecision {
    /// The user has finished: end the turn now (after the recogniser's last words).
    EndTurn,
    /// Keep the turn open at least this many ms; `Wait(0)` leaves it to the silence rules.
    Wait(u32),
}

/// Intent analysis behaviour. Implementations must not block for long: the runtime bounds them.
pub trait IntentAnalyzer: Send {
    fn analyze(&mut self, input: &IntentInput) -> Option<Intent>;
    /// Identity of the plug-in version behind this behaviour (`None` for built-ins); lets a
    /// `BehaviourSource` tell at a turn boundary whether a newer version should replace it.
    fn plugin_generation(&self) -> Option<u64> {
        None
    }
}

/// Prompt shaping behaviour.
pub trait PromptShaper: Send {
    fn shape(&mut self, input: &PromptInput) -> PromptOutput;
    /// Identity of the plug-in version behind this behaviour (`None` for built-ins); lets a
    /// `BehaviourSource` tell at a turn boundary whether a newer version should replace it.
    fn plugin_generation(&self) -> Option<u64> {
        None
    }
}

/// Barge-in policy behaviour.
pub trait BargeInPolicy: Send {
    fn decide(&mut self, event: &BargeInEvent) -> BargeInDecision;
    /// Identity of the plug-in version behind this behaviour (`None` for built-ins); lets a
    /// `BehaviourSource` tell at a turn boundary whether a newer version should replace it.
    fn plugin_generation(&self) -> Option<u64> {
        None
    }
}

/// End-of-turn policy behaviour.
pub trait TurnPolicy: Send {
    fn decide(&mut self, event: &TurnEvent) -> TurnDecision;
    /// A turn this policy ended turned out to be unfinished: the user went on speaking before
    /// any of its reply was heard. Only counted (a plug-in version's figures); no decision
    /// depends on it.
    fn turn_continued(&mut self) {}
    /// Identity of the plug-in version behind this behaviour (`None` for built-ins); lets a
    /// `BehaviourSource` tell at a turn boundary whether a newer version should replace it.
    fn plugin_generation(&self) -> Option<u64> {
        None
    }
}

/// Watches the decisions of one slot without taking part in them: a shadow version answering
/// the same inputs on its own thread, to be compared. `observe` must return at once (it may drop
/// the observation when it is behind); what callers hear never depends on it.
pub trait Observer<Input, Decision>: Send {
    /// The session's behaviour decided `decision` for `input`.
    fn observe(&self, input: &Input, decision: &Decision);
    /// Identity of the observing version, compared at turn boundaries like
    /// [`IntentAnalyzer::plugin_generation`].
    fn generation(&self) -> u64;
}

/// Observers of a session's slots (`None`: nobody watches that slot).
#[derive(Default)]
pub struct Shadows {
    pub intent: Option<Box<dyn Observer<IntentInput, Option<Intent>>>>,
    pub prompt: Option<Box<dyn Observer<PromptInput, PromptOutput>>>,
    pub barge_in: Option<Box<dyn Observer<BargeInEvent, BargeInDecision>>>,
    pub turn: Option<Box<dyn Observer<TurnEvent, TurnDecision>>>,
}

/// The behaviours one session uses, one per slot, and whatever watches them.
pub struct Behaviours {
    pub intent: Box<dyn IntentAnalyzer>,
    pub prompt: Box<dyn PromptShaper>,
    pub barge_in: Box<dyn BargeInPolicy>,
    pub turn: Box<dyn TurnPolicy>,
    pub shadows: Shadows,
}

impl Behaviours {
    /// The intent of a user turn, shown to the intent slot's observer.
    pub fn analyze(&mut self, input: &IntentInput) -> Option<Intent> {
        let intent = self.intent.analyze(input);
        if let Some(shadow) = &self.shadows.intent {
            shadow.observe(input, &intent);
        }
        intent
    }

    /// The prompt for a user turn, shown to the prompt slot's observer.
    pub fn shape(&mut self, input: &PromptInput) -> PromptOutput {
        let output = self.prompt.shape(input);
        if let Some(shadow) = &self.shadows.prompt {
            shadow.observe(input, &output);
        }
        output
    }

    /// The barge-in decision, shown to the barge-in slot's observer.
    pub fn decide(&mut self, event: &BargeInEvent) -> BargeInDecision {
        let decision = self.barge_in.decide(event);
        if let Some(shadow) = &self.shadows.barge_in {
            shadow.observe(event, &decision);
        }
        decision
    }

    /// A turn the end-of-turn policy ended was continued by the user (see
    /// [`TurnPolicy::turn_continued`]).
    pub fn turn_continued(&mut self) {
        self.turn.turn_continued();
    }

    /// The end-of-turn decision, shown to the turn slot's observer.
    pub fn decide_turn(&mut self, event: &TurnEvent) -> TurnDecision {
        let decision = self.turn.decide(event);
        if let Some(shadow) = &self.shadows.turn {
            shadow.observe(event, &decision);
        }
        decision
    }
}

/// Where sessions get their behaviours from. The plug-in registry implements this; so do the
/// built-in defaults.
pub trait BehaviourSource: Send + Sync {
    /// Behaviours for a new session.
    fn for_session(&self, session_id: &str) -> Behaviours;
    /// Whether sessions ask the end-of-turn slot at all: only when something other than the
    /// silence rules may answer (a plug-in, its canary or its shadow). Without one, asking could
    /// not change a turn, so a session keeps the rules alone and pays nothing.
    fn asks_turn(&self) -> bool {
        false
    }
    /// Called at each turn boundary: swap in newer plug-in versions if any were loaded since.
    fn refresh(&self, session_id: &str, current: &mut Behaviours) {
        let _ = (session_id, current);
    }
}
