//! One slot's behaviour as a replay drives it: the recorded input rebuilt, the session's own
//! plug-in behaviour (limits, deadline, fallback and clamping included) called with it, and the
//! decision put back in its recorded form for comparison.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::behaviour::defaults::{
    BargeInRules, DefaultBargeIn, NoIntent, PassThroughPrompt, SilenceRules,
};
use crate::plugins::behaviours::{PluginBargeIn, PluginIntent, PluginPrompt, PluginTurn};
use crate::plugins::bindings::{barge_in, intent, prompt, turn};
use crate::plugins::instance::{Fallback, SlotInstance};
use crate::plugins::record::{
    BargeInEventForm, IntentForm, IntentInputForm, PromptInputForm, PromptOutputForm, Text,
    TurnEventForm,
};
use crate::plugins::worlds::World;

/// What the fallbacks of a replayed call need from the host's configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostRules {
    /// The built-in barge-in rules (`TTS_*`).
    pub barge_in: BargeInRules,
    /// `LLM_MAX_TOKENS`, the clamp of a prompt plug-in's answer.
    pub max_tokens: u32,
}

/// A component's behaviour for one slot, fed recorded inputs.
pub(crate) trait Driver: Sized {
    type W: World;
    /// The input as recorded.
    type Input: DeserializeOwned + Clone;

    fn new(slot: SlotInstance<Self::W>, rules: &HostRules) -> Self;
    fn slot(&mut self) -> &mut SlotInstance<Self::W>;
    /// Makes the call; the decision comes back in its recorded form (text masked when
    /// `keep_text` is off, like the recording's), with why the built-in answered if it did.
    fn run(&mut self, input: &Self::Input, turn: u32, keep_text: bool)
        -> (Value, Option<Fallback>);
    /// The input in a few words, for the list of disagreements.
    fn summary(input: &Self::Input) -> String;
}

/// `value` as the JSON a recording holds: through text, so that numbers compare the way they
/// were written (an `f32` confidence reads back as the same `f64` on both sides).
pub(crate) fn recorded_form(value: &impl Serialize) -> Value {
    serde_json::to_string(value)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null)
}

/// Free text for a summary: itself in quotes (cut), or its shape when masked.
fn show(text: &Text) -> String {
    match text {
        Text::Plain(s) => {
            let cut: String = s.chars().take(80).collect();
            let more = if cut.len() < s.len() { "…" } else { "" };
            format!("{cut:?}{more}")
        }
        Text::Masked { words, chars } => format!("({words} words, {chars} characters)"),
    }
}

pub(crate) struct IntentDriver(PluginIntent);

impl Driver for IntentDriver {
    type W = intent::IntentAnalyzer;
    type Input = IntentInputForm;

    fn new(slot: SlotInstance<Self::W>, _rules: &HostRules) -> Self {
        Self(PluginIntent {
            slot,
            fallback: NoIntent,
        })
    }

    fn slot(&mut self) -> &mut SlotInstance<Self::W> {
        &mut self.0.slot
    }

    fn run(&mut self, input: &Self::Input, _turn: u32, keep: bool) -> (Value, Option<Fallback>) {
        let (decision, fallback) = self.0.analyze_traced(&input.clone().restore());
        let form = decision.map(|i| IntentForm::of(i, keep));
        (recorded_form(&form), fallback)
    }

    fn summary(input: &Self::Input) -> String {
        show(&input.transcript)
    }
}

pub(crate) struct PromptDriver(PluginPrompt);

impl Driver for PromptDriver {
    type W = prompt::PromptShaper;
    type Input = PromptInputForm;

    fn new(slot: SlotInstance<Self::W>, rules: &HostRules) -> Self {
        Self(PluginPrompt {
            slot,
            fallback: PassThroughPrompt,
            max_tokens: rules.max_tokens,
        })
    }

    fn slot(&mut self) -> &mut SlotInstance<Self::W> {
        &mut self.0.slot
    }

    fn run(&mut self, input: &Self::Input, _turn: u32, keep: bool) -> (Value, Option<Fallback>) {
        let (decision, fallback) = self.0.shape_traced(&input.clone().restore());
        (
            recorded_form(&PromptOutputForm::of(decision, keep)),
            fallback,
        )
    }

    fn summary(input: &Self::Input) -> String {
        let intent = input
            .intent
            .as_ref()
            .map(|i| format!(" (intent {})", i.name))
            .unwrap_or_default();
        format!("{}{intent}", show(&input.user_turn))
    }
}

pub(crate) struct BargeInDriver(PluginBargeIn);

impl Driver for BargeInDriver {
    type W = barge_in::BargeInPolicy;
    type Input = BargeInEventForm;

    fn new(slot: SlotInstance<Self::W>, rules: &HostRules) -> Self {
        Self(PluginBargeIn {
            slot,
            fallback: DefaultBargeIn(rules.barge_in),
        })
    }

    fn slot(&mut self) -> &mut SlotInstance<Self::W> {
        &mut self.0.slot
    }

    fn run(&mut self, input: &Self::Input, turn: u32, _keep: bool) -> (Value, Option<Fallback>) {
        let (decision, fallback) = self.0.decide_traced(&input.clone().restore(turn));
        (recorded_form(&decision), fallback)
    }

    fn summary(input: &Self::Input) -> String {
        format!(
            "{}, {} words, user {} ms, agent {} ms{}",
            show(&input.interim_text),
            input.word_count,
            input.user_speech_ms,
            input.agent_spoken_ms,
            if input.protected_playing {
                ", protected phrase playing"
            } else {
                ""
            }
        )
    }
}

pub(crate) struct TurnDriver(PluginTurn);

impl Driver for TurnDriver {
    type W = turn::EndOfTurnPolicy;
    type Input = TurnEventForm;

    fn new(slot: SlotInstance<Self::W>, _rules: &HostRules) -> Self {
        Self(PluginTurn {
            slot,
            fallback: SilenceRules,
        })
    }

    fn slot(&mut self) -> &mut SlotInstance<Self::W> {
        &mut self.0.slot
    }

    fn run(&mut self, input: &Self::Input, turn: u32, _keep: bool) -> (Value, Option<Fallback>) {
        let (decision, fallback) = self.0.decide_traced(&input.clone().restore(turn));
        (recorded_form(&decision), fallback)
    }

    fn summary(input: &Self::Input) -> String {
        let probability = input
            .model_probability
            .map(|p| format!(", model {p:.2}"))
            .unwrap_or_default()
            + &input
                .words_probability
                .map(|p| format!(", words {p:.2}"))
                .unwrap_or_default();
        format!(
            "{:?} after {} ms of silence, {}, {} words{}{probability}",
            input.trigger,
            input.silence_ms,
            show(&input.text),
            input.word_count,
            if input.text_final { ", final" } else { "" },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_as_written() {
        let intent = IntentForm {
            name: "weather".into(),
            confidence: 0.9,
            slots: vec![],
        };
        let written = serde_json::to_string(&intent).unwrap();
        let read: Value = serde_json::from_str(&written).unwrap();
        assert_eq!(recorded_form(&intent), read);
    }

    #[test]
    fn summaries_show_text_or_its_shape() {
        assert_eq!(show(&Text::Plain("stop".into())), "\"stop\"");
        assert_eq!(
            show(&Text::Masked { words: 2, chars: 9 }),
            "(2 words, 9 characters)"
        );
        let long = Text::Plain("word ".repeat(40));
        assert!(show(&long).ends_with('…'));
    }
}
