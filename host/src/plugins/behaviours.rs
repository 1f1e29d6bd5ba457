//! The session-facing behaviours backed by plug-in instances; each falls back to the built-in
//! decision whenever its plug-in cannot answer.

use crate::behaviour::defaults::{DefaultBargeIn, NoIntent, PassThroughPrompt};
use crate::behaviour::{
    BargeInDecision, BargeInEvent, BargeInPolicy, Intent, IntentAnalyzer, IntentInput, PromptInput,
    PromptOutput, PromptShaper,
};

use super::bindings::{barge_in, intent, prompt};
use super::instance::SlotInstance;
use super::prompt_clamp::clamp;
use super::worlds::{
    barge_in_event, decision_back, intent_back, intent_input, prompt_input, prompt_output,
};

/// Intent analysis by a plug-in; no intent when it cannot answer.
pub(crate) struct PluginIntent {
    pub slot: SlotInstance<intent::IntentAnalyzer>,
    pub fallback: NoIntent,
}

impl IntentAnalyzer for PluginIntent {
    fn analyze(&mut self, input: &IntentInput) -> Option<Intent> {
        let wit_input = intent_input(input);
        match self.slot.call(|b, store| b.call_analyze(store, &wit_input)) {
            Some(result) => result.map(intent_back),
            None => self.fallback.analyze(input),
        }
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

impl PromptShaper for PluginPrompt {
    fn shape(&mut self, input: &PromptInput) -> PromptOutput {
        let wit_input = prompt_input(input);
        match self.slot.call(|b, store| b.call_shape(store, &wit_input)) {
            Some(out) => match prompt_output(out) {
                Some(out) => clamp(out, self.max_tokens),
                None => {
                    self.slot.unusable_result("an LLM request without messages");
                    self.fallback.shape(input)
                }
            },
            None => self.fallback.shape(input),
        }
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

impl BargeInPolicy for PluginBargeIn {
    fn decide(&mut self, event: &BargeInEvent) -> BargeInDecision {
        let wit_event = barge_in_event(event);
        match self.slot.call(|b, store| b.call_decide(store, &wit_event)) {
            Some(decision) => decision_back(decision),
            None => self.fallback.decide(event),
        }
    }

    fn plugin_generation(&self) -> Option<u64> {
        Some(self.slot.plugin().generation)
    }
}
