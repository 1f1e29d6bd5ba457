//! The JSON form of a recorded call, one line per call, and the conversions between the
//! session's records and their recorded forms (both ways: `plugins replay` rebuilds the inputs).
//!
//! Secrets cannot reach a line: a line holds only what the plug-in was given (its input, which
//! carries no configuration and no keys) and what it answered, plus the plug-in's identity and
//! the call's place in its session.

use serde::{Deserialize, Serialize};

use crate::behaviour::{
    BargeInEvent, ChatMessage, Intent, IntentInput, PromptInput, PromptOutput, Role, TurnEvent,
    TurnTrigger,
};
use crate::plugins::faults::FaultKind;
use crate::plugins::instance::Fallback;
use crate::plugins::settings::Slot;

use super::mask::Text;
use super::{Call, CallRecord};

/// How a recorded call was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// By the plug-in.
    Plugin,
    /// By the built-in behaviour after a fault (the line's `fault` says which).
    Fault,
    /// By the built-in behaviour: the version was quarantined.
    Quarantined,
    /// By the built-in behaviour: the session reached its fault limit with this version.
    Benched,
    /// By the built-in behaviour: no instance, the pool was full.
    PoolFull,
    /// By the built-in behaviour: the plug-in's answer could not be used.
    Unusable,
}

impl Outcome {
    /// The outcome of a call and, for a fault, its kind.
    pub fn of(fallback: Option<Fallback>) -> (Self, Option<FaultKind>) {
        match fallback {
            None => (Outcome::Plugin, None),
            Some(Fallback::Fault(kind)) => (Outcome::Fault, Some(kind)),
            Some(Fallback::Quarantined) => (Outcome::Quarantined, None),
            Some(Fallback::Benched) => (Outcome::Benched, None),
            Some(Fallback::PoolFull) => (Outcome::PoolFull, None),
            Some(Fallback::Unusable) => (Outcome::Unusable, None),
        }
    }
}

/// One line of a recording. `I` and `D` are the slot's input and decision forms when writing,
/// and raw JSON when reading a recording of any slot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Line<I, D> {
    /// When the call was made, in ms since the Unix epoch.
    pub ts_ms: u64,
    pub slot: Slot,
    /// The plug-in's name (its file stem) and version (first 12 hex digits of its SHA-256).
    pub plugin: String,
    pub version: String,
    /// The session's id and the host's number of the session's instance of this version: calls
    /// with the same pair went to one plug-in instance, in file order.
    pub session: String,
    pub instance: u64,
    /// The user turn the call belongs to.
    pub turn: u32,
    /// Time of the call, fallback included, in microseconds.
    pub duration_us: u64,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultKind>,
    /// Whether free text was reduced to word counts and lengths (`PLUGIN_RECORD_TEXT=false`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub masked: bool,
    pub input: I,
    pub decision: D,
}

/// A chat message as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MessageForm {
    pub role: Role,
    pub content: Text,
}

impl MessageForm {
    fn of(m: ChatMessage, keep: bool) -> Self {
        Self {
            role: m.role,
            content: Text::of(m.content, keep),
        }
    }

    fn restore(self) -> ChatMessage {
        ChatMessage::new(self.role, self.content.restore())
    }
}

fn messages_of(history: Vec<ChatMessage>, keep: bool) -> Vec<MessageForm> {
    history
        .into_iter()
        .map(|m| MessageForm::of(m, keep))
        .collect()
}

fn restore_messages(history: Vec<MessageForm>) -> Vec<ChatMessage> {
    history.into_iter().map(MessageForm::restore).collect()
}

/// An intent as recorded: its name is a label and stays; slot values are free text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct IntentForm {
    pub name: String,
    pub confidence: f32,
    pub slots: Vec<(String, Text)>,
}

impl IntentForm {
    pub fn of(intent: Intent, keep: bool) -> Self {
        Self {
            name: intent.name,
            confidence: intent.confidence,
            slots: intent
                .slots
                .into_iter()
                .map(|(k, v)| (k, Text::of(v, keep)))
                .collect(),
        }
    }

    fn restore(self) -> Intent {
        Intent {
            name: self.name,
            confidence: self.confidence,
            slots: self
                .slots
                .into_iter()
                .map(|(k, v)| (k, v.restore()))
                .collect(),
        }
    }
}

/// The intent analyzer's input as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct IntentInputForm {
    pub transcript: Text,
    pub turn: u32,
    pub history: Vec<MessageForm>,
}

impl IntentInputForm {
    pub fn of(input: IntentInput, keep: bool) -> Self {
        Self {
            transcript: Text::of(input.transcript, keep),
            turn: input.turn,
            history: messages_of(input.history, keep),
        }
    }

    pub fn restore(self) -> IntentInput {
        IntentInput {
            transcript: self.transcript.restore(),
            turn: self.turn,
            history: restore_messages(self.history),
        }
    }
}

/// The prompt shaper's input as recorded. The system prompt is the operator's text, masked with
/// the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PromptInputForm {
    pub system_prompt: Text,
    pub history: Vec<MessageForm>,
    pub user_turn: Text,
    pub turn: u32,
    pub intent: Option<IntentForm>,
}

impl PromptInputForm {
    pub fn of(input: PromptInput, keep: bool) -> Self {
        Self {
            system_prompt: Text::of(input.system_prompt, keep),
            history: messages_of(input.history, keep),
            user_turn: Text::of(input.user_turn, keep),
            turn: input.turn,
            intent: input.intent.map(|i| IntentForm::of(i, keep)),
        }
    }

    pub fn restore(self) -> PromptInput {
        PromptInput {
            system_prompt: self.system_prompt.restore(),
            history: restore_messages(self.history),
            user_turn: self.user_turn.restore(),
            turn: self.turn,
            intent: self.intent.map(IntentForm::restore),
        }
    }
}

/// The prompt shaper's answer (as the session used it, clamped) as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PromptOutputForm {
    Llm {
        messages: Vec<MessageForm>,
        temperature: Option<f32>,
        max_tokens: Option<u32>,
    },
    Direct {
        text: Text,
    },
}

impl PromptOutputForm {
    pub fn of(output: PromptOutput, keep: bool) -> Self {
        match output {
            PromptOutput::Llm { messages, settings } => PromptOutputForm::Llm {
                messages: messages_of(messages, keep),
                temperature: settings.temperature,
                max_tokens: settings.max_tokens,
            },
            PromptOutput::Direct { text } => PromptOutputForm::Direct {
                text: Text::of(text, keep),
            },
        }
    }
}

/// A barge-in event as recorded (its turn is the line's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BargeInEventForm {
    pub interim_text: Text,
    pub word_count: u32,
    pub user_speech_ms: u32,
    pub agent_spoken_ms: u32,
    pub spoken_text: Text,
    pub remaining_text: Text,
    pub protected_playing: bool,
}

impl BargeInEventForm {
    pub fn of(event: BargeInEvent, keep: bool) -> Self {
        Self {
            interim_text: Text::of(event.interim_text, keep),
            word_count: event.word_count,
            user_speech_ms: event.user_speech_ms,
            agent_spoken_ms: event.agent_spoken_ms,
            spoken_text: Text::of(event.spoken_text, keep),
            remaining_text: Text::of(event.remaining_text, keep),
            protected_playing: event.protected_playing,
        }
    }

    pub fn restore(self, turn: u32) -> BargeInEvent {
        BargeInEvent {
            interim_text: self.interim_text.restore(),
            word_count: self.word_count,
            user_speech_ms: self.user_speech_ms,
            agent_spoken_ms: self.agent_spoken_ms,
            spoken_text: self.spoken_text.restore(),
            remaining_text: self.remaining_text.restore(),
            protected_playing: self.protected_playing,
            turn,
        }
    }
}

/// An end-of-turn event as recorded (its turn is the line's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TurnEventForm {
    pub trigger: TurnTrigger,
    pub silence_ms: u32,
    pub speech_ms: u32,
    pub text: Text,
    pub word_count: u32,
    pub text_final: bool,
    pub model_probability: Option<f32>,
    /// Absent from recordings of hosts before the text end-of-turn model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub words_probability: Option<f32>,
    pub agent_last_sentence: Text,
}

impl TurnEventForm {
    pub fn of(event: TurnEvent, keep: bool) -> Self {
        Self {
            trigger: event.trigger,
            silence_ms: event.silence_ms,
            speech_ms: event.speech_ms,
            text: Text::of(event.text, keep),
            word_count: event.word_count,
            text_final: event.text_final,
            model_probability: event.model_probability,
            words_probability: event.words_probability,
            agent_last_sentence: Text::of(event.agent_last_sentence, keep),
        }
    }

    pub fn restore(self, turn: u32) -> TurnEvent {
        TurnEvent {
            trigger: self.trigger,
            silence_ms: self.silence_ms,
            speech_ms: self.speech_ms,
            text: self.text.restore(),
            word_count: self.word_count,
            text_final: self.text_final,
            model_probability: self.model_probability,
            words_probability: self.words_probability,
            agent_last_sentence: self.agent_last_sentence.restore(),
            turn,
        }
    }
}

/// The intent decision as recorded.
pub(crate) fn intent_decision(decision: Option<Intent>, keep: bool) -> Option<IntentForm> {
    decision.map(|i| IntentForm::of(i, keep))
}

/// `record` as one JSON line (without the newline); free text kept only when `keep_text`.
pub(crate) fn encode(record: CallRecord, keep_text: bool) -> serde_json::Result<String> {
    let (outcome, fault) = Outcome::of(record.fallback);
    let head = |slot: Slot| Line {
        ts_ms: record.at_ms,
        slot,
        plugin: record.plugin,
        version: record.version,
        session: record.session.to_string(),
        instance: record.instance,
        turn: record.turn,
        duration_us: u64::try_from(record.duration.as_micros()).unwrap_or(u64::MAX),
        outcome,
        fault,
        masked: !keep_text,
        input: (),
        decision: (),
    };
    match record.call {
        Call::Intent { input, decision } => serde_json::to_string(&with(
            head(Slot::Intent),
            IntentInputForm::of(input, keep_text),
            intent_decision(decision, keep_text),
        )),
        Call::Prompt { input, decision } => serde_json::to_string(&with(
            head(Slot::Prompt),
            PromptInputForm::of(input, keep_text),
            PromptOutputForm::of(decision, keep_text),
        )),
        Call::BargeIn { input, decision } => serde_json::to_string(&with(
            head(Slot::BargeIn),
            BargeInEventForm::of(input, keep_text),
            // A barge-in decision holds no text.
            decision,
        )),
        Call::Turn { input, decision } => serde_json::to_string(&with(
            head(Slot::Turn),
            TurnEventForm::of(input, keep_text),
            decision,
        )),
    }
}

/// `line` with its input and decision.
fn with<I, D>(line: Line<(), ()>, input: I, decision: D) -> Line<I, D> {
    Line {
        ts_ms: line.ts_ms,
        slot: line.slot,
        plugin: line.plugin,
        version: line.version,
        session: line.session,
        instance: line.instance,
        turn: line.turn,
        duration_us: line.duration_us,
        outcome: line.outcome,
        fault: line.fault,
        masked: line.masked,
        input,
        decision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::BargeInDecision;
    use std::sync::Arc;
    use std::time::Duration;

    fn prompt_call(fallback: Option<Fallback>) -> CallRecord {
        CallRecord {
            at_ms: 1_700_000_000_000,
            plugin: "prompt_persona".into(),
            version: "0123456789ab".into(),
            session: Arc::from("s-1"),
            instance: 7,
            turn: 2,
            call: Call::Prompt {
                input: PromptInput {
                    system_prompt: "You are terse.".into(),
                    history: vec![ChatMessage::new(Role::Assistant, "Hello there.")],
                    user_turn: "my account number is 4711".into(),
                    turn: 2,
                    intent: Some(Intent {
                        name: "account".into(),
                        confidence: 0.9,
                        slots: vec![("number".into(), "4711".into())],
                    }),
                },
                decision: PromptOutput::Direct {
                    text: "Your account 4711 is open.".into(),
                },
            },
            fallback,
            duration: Duration::from_micros(42),
        }
    }

    #[test]
    fn a_line_has_the_call_and_its_place_in_the_session() {
        let line = encode(prompt_call(None), true).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["slot"], "prompt");
        assert_eq!(v["plugin"], "prompt_persona");
        assert_eq!(v["version"], "0123456789ab");
        assert_eq!(v["session"], "s-1");
        assert_eq!(v["instance"], 7);
        assert_eq!(v["turn"], 2);
        assert_eq!(v["duration_us"], 42);
        assert_eq!(v["outcome"], "plugin");
        assert!(v.get("fault").is_none() && v.get("masked").is_none(), "{v}");
        assert_eq!(v["input"]["user_turn"], "my account number is 4711");
        assert_eq!(v["input"]["intent"]["confidence"], 0.9);
        assert_eq!(
            v["decision"]["direct"]["text"],
            "Your account 4711 is open."
        );
        // And it reads back into the input it came from.
        let back: Line<PromptInputForm, serde_json::Value> = serde_json::from_str(&line).unwrap();
        let input = back.input.restore();
        assert_eq!(input.user_turn, "my account number is 4711");
        assert_eq!(input.history[0].content, "Hello there.");
        assert_eq!(input.intent.unwrap().slots[0].1, "4711");
    }

    #[test]
    fn masked_lines_keep_counts_and_lengths_only() {
        let line = encode(
            prompt_call(Some(Fallback::Fault(FaultKind::Deadline))),
            false,
        )
        .unwrap();
        for word in ["4711", "account number", "terse", "Hello", "open"] {
            assert!(!line.contains(word), "{word:?} leaked: {line}");
        }
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["masked"], true);
        assert_eq!(v["outcome"], "fault");
        assert_eq!(v["fault"], "deadline");
        assert_eq!(
            v["input"]["user_turn"],
            serde_json::json!({"words": 5, "chars": 25})
        );
        // Labels stay: the intent's name and slot keys, the roles.
        assert_eq!(v["input"]["intent"]["name"], "account");
        assert_eq!(
            v["input"]["intent"]["slots"][0],
            serde_json::json!(["number", {"words": 1, "chars": 4}])
        );
        assert_eq!(v["input"]["history"][0]["role"], "assistant");
    }

    #[test]
    fn barge_in_events_read_back_with_the_line_turn() {
        let record = CallRecord {
            call: Call::BargeIn {
                input: BargeInEvent {
                    interim_text: "stop".into(),
                    word_count: 1,
                    agent_spoken_ms: 1200,
                    turn: 3,
                    ..Default::default()
                },
                decision: BargeInDecision::Interrupt,
            },
            turn: 3,
            ..prompt_call(None)
        };
        let line = encode(record, true).unwrap();
        let back: Line<BargeInEventForm, BargeInDecision> = serde_json::from_str(&line).unwrap();
        assert_eq!(back.slot, Slot::BargeIn);
        assert_eq!(back.decision, BargeInDecision::Interrupt);
        let event = back.input.restore(back.turn);
        assert_eq!((event.interim_text.as_str(), event.turn), ("stop", 3));
    }
}
