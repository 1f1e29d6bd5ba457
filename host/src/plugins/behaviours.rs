//! The session-facing behaviours backed by plug-in instances; each falls back to the built-in
//! decision whenever its plug-in cannot answer, and hands every call to the recorder.
//!
//! Each behaviour has one `*_traced` method that makes the decision and says whether the
//! built-in one was used: the session's trait method records what it returns, and `plugins
//! replay` calls it directly, so a replay runs exactly the code a session runs.

use std::time::Instant;

use crate::behaviour::defaults::{DefaultBargeIn, NoIntent, PassThroughPrompt, SilenceRules};
use crate::behaviour::{
    BargeInDecision, BargeInEvent, BargeInPolicy, Intent, IntentAnalyzer, IntentInput, PromptInput,
    PromptOutput, PromptShaper, TurnDecision, TurnEvent, TurnPolicy,
};

use super::bindings::{barge_in, intent, prompt, turn, HostState};
use super::instance::{Fallback, SlotInstance};
use super::prompt_clamp::clamp;
use super::record::Call;
use super::worlds::{
    barge_in_event, decision_back, intent_back, intent_input, prompt_input, prompt_output,
    turn_decision_back, turn_event,
};

/// Intent analysis by a plug-in; no intent when it cannot answer.
pub(crate) struct PluginIntent {
    pub slot: SlotInstance<intent::IntentAnalyzer>,
    pub fallback: NoIntent,
}

impl PluginIntent {
    /// The intent, and why the built-in answer was used when it was.
    pub fn analyze_traced(&mut self, input: &IntentInput) -> (Option<Intent>, Option<Fallback>) {
        let wit_input = intent_input(input);
        match self.slot.call(|b, store| b.call_analyze(store, &wit_input)) {
            Ok(result) => (result.map(intent_back), None),
            Err(why) => (self.fallback.analyze(input), Some(why)),
        }
    }
}

impl IntentAnalyzer for PluginIntent {
    fn analyze(&mut self, input: &IntentInput) -> Option<Intent> {
        let started = Instant::now();
        let (decision, fallback) = self.analyze_traced(input);
        self.slot
            .record(input.turn, started.elapsed(), fallback, || Call::Intent {
                input: input.clone(),
                decision: decision.clone(),
            });
        decision
    }

    fn plugin_generation(&self) -> Option<u64> {
        Some(self.slot.plugin().generation)
    }
}

/// Prompt shaping by a plug-in; the pass-through prompt when it cannot answer. The plug-in's
/// answer is clamped (see `prompt_clamp.rs`) before the session sees it.
pub(crate) struct PluginPrompt {
    pub slot: SlotInstance<prompt::PromptShaper>,
    pub fallback: PassThroughPrompt,
    /// The host's `LLM_MAX_TOKENS`.
    pub max_tokens: u32,
}

impl PluginPrompt {
    /// The prompt, and why the built-in answer was used when it was.
    pub fn shape_traced(&mut self, input: &PromptInput) -> (PromptOutput, Option<Fallback>) {
        let wit_input = prompt_input(input);
        match self.slot.call(|b, store| b.call_shape(store, &wit_input)) {
            Ok(out) => match prompt_output(out) {
                Some(out) => (clamp(out, self.max_tokens), None),
                None => {
                    let why = self.slot.unusable_result("an LLM request without messages");
                    (self.fallback.shape(input), Some(why))
                }
            },
            Err(why) => (self.fallback.shape(input), Some(why)),
        }
    }
}

impl PromptShaper for PluginPrompt {
    fn shape(&mut self, input: &PromptInput) -> PromptOutput {
        let started = Instant::now();
        let (decision, fallback) = self.shape_traced(input);
        self.slot
            .record(input.turn, started.elapsed(), fallback, || Call::Prompt {
                input: input.clone(),
                decision: decision.clone(),
            });
        decision
    }

    fn plugin_generation(&self) -> Option<u64> {
        Some(self.slot.plugin().generation)
    }
}

/// Barge-in policy by a plug-in; the seed rules when it cannot answer.
pub(crate) struct PluginBargeIn {
    pub slot: SlotInstance<barge_in::BargeInPolicy>,
    pub fallback: DefaultBargeIn,
}

impl PluginBargeIn {
    /// The decision, and why the built-in answer was used when it was.
    pub fn decide_traced(&mut self, event: &BargeInEvent) -> (BargeInDecision, Option<Fallback>) {
        let wit_event = barge_in_event(event);
        match self.slot.call(|b, store| b.call_decide(store, &wit_event)) {
            Ok(decision) => {
                let decision = decision_back(decision);
                if decision == BargeInDecision::Interrupt {
                    self.slot.plugin().usage.interrupt();
                }
                (decision, None)
            }
            Err(why) => (self.fallback.decide(event), Some(why)),
        }
    }
}

impl BargeInPolicy for PluginBargeIn {
    fn decide(&mut self, event: &BargeInEvent) -> BargeInDecision {
        let started = Instant::now();
        let (decision, fallback) = self.decide_traced(event);
        self.slot
            .record(event.turn, started.elapsed(), fallback, || Call::BargeIn {
                input: event.clone(),
                decision,
            });
        decision
    }

    fn plugin_generation(&self) -> Option<u64> {
        Some(self.slot.plugin().generation)
    }
}

/// End-of-turn policy by a plug-in; the silence rules when it cannot answer.
pub(crate) struct PluginTurn {
    pub slot: SlotInstance<turn::EndOfTurnPolicy>,
    pub fallback: SilenceRules,
}

impl PluginTurn {
    /// The decision, and why the built-in answer was used when it was.
    pub fn decide_traced(&mut self, event: &TurnEvent) -> (TurnDecision, Option<Fallback>) {
        let wit_event = turn_event(event);
        let words = event.words_probability;
        let call = |b: &turn::EndOfTurnPolicy, store: &mut wasmtime::Store<HostState>| {
            // What the `turn-signals` import answers during this call.
            store.data_mut().words_probability = words;
            b.call_decide(store, &wit_event)
        };
        match self.slot.call(call) {
            Ok(decision) => {
                let decision = turn_decision_back(decision);
                if decision == TurnDecision::EndTurn {
                    self.slot.plugin().usage.turn_end();
                }
                (decision, None)
            }
            Err(why) => (self.fallback.decide(event), Some(why)),
        }
    }
}

impl TurnPolicy for PluginTurn {
    fn decide(&mut self, event: &TurnEvent) -> TurnDecision {
        let started = Instant::now();
        let (decision, fallback) = self.decide_traced(event);
        self.slot
            .record(event.turn, started.elapsed(), fallback, || Call::Turn {
                input: event.clone(),
                decision,
            });
        decision
    }

    fn turn_continued(&mut self) {
        self.slot.plugin().usage.turn_continued();
    }

    fn plugin_generation(&self) -> Option<u64> {
        Some(self.slot.plugin().generation)
    }
}
