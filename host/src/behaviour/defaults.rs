//! Built-in behaviours: the seed's barge-in rules, a pass-through prompt, no intent and the
//! silence rules for the end of a turn. They are
//! what a session uses when a slot has no plug-in, and the fallback decision when a plug-in call
//! fails.

use super::{
    BargeInDecision, BargeInEvent, BargeInPolicy, BehaviourSource, Behaviours, ChatMessage,
    GenerationSettings, Intent, IntentAnalyzer, IntentInput, PromptInput, PromptOutput,
    PromptShaper, Role, TurnDecision, TurnEvent, TurnPolicy,
};

/// Knobs of the built-in barge-in rules (from `TTS_*` configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BargeInRules {
    /// Interrupt once the user's words reach this count.
    pub threshold_words: u32,
    /// Never interrupt before the agent has been heard this long.
    pub min_agent_ms: u32,
    /// Never interrupt during a protected phrase.
    pub protect_phrases: bool,
}

impl Default for BargeInRules {
    fn default() -> Self {
        Self {
            threshold_words: 5,
            min_agent_ms: 3000,
            protect_phrases: true,
        }
    }
}

/// Short acknowledgements a listener says without meaning to take the turn.
pub const BACKCHANNELS: &[&str] = &[
    "uh-huh", "uh", "huh", "mm-hmm", "mhm", "mm", "hmm", "yeah", "yes", "yep", "ok", "okay",
    "right", "sure", "i see", "got it", "alright", "cool",
];

/// True when every word of `text` is part of a backchannel ("uh-huh", "yeah okay").
pub fn is_backchannel(text: &str) -> bool {
    let norm: String = text
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let words: Vec<&str> = norm.split_whitespace().collect();
    if words.is_empty() {
        return false;
    }
    let single: Vec<&str> = BACKCHANNELS
        .iter()
        .flat_map(|b| b.split_whitespace())
        .collect();
    words.iter().all(|w| single.contains(w))
}

/// The seed's rules: interrupt at the word threshold, never before the minimum agent speech,
/// never during a protected phrase; backchannels never interrupt. While a rule holds the
/// interruption back the answer is `Wait`, so the barge-in is judged again as it goes on (the
/// protected phrase ends, the agent passes the minimum duration).
#[derive(Debug, Clone, Copy)]
pub struct DefaultBargeIn(pub BargeInRules);

impl DefaultBargeIn {
    pub fn decide_with(rules: &BargeInRules, ev: &BargeInEvent) -> BargeInDecision {
        if ev.word_count > 0 && is_backchannel(&ev.interim_text) {
            return BargeInDecision::Ignore;
        }
        let held_back = (rules.protect_phrases && ev.protected_playing)
            || ev.agent_spoken_ms < rules.min_agent_ms;
        if !held_back && ev.word_count >= rules.threshold_words {
            return BargeInDecision::Interrupt;
        }
        BargeInDecision::Wait
    }
}

impl BargeInPolicy for DefaultBargeIn {
    fn decide(&mut self, event: &BargeInEvent) -> BargeInDecision {
        Self::decide_with(&self.0, event)
    }
}

/// No intent.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoIntent;

impl IntentAnalyzer for NoIntent {
    fn analyze(&mut self, _input: &IntentInput) -> Option<Intent> {
        None
    }
}

/// System prompt, then history, then the user's turn.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThroughPrompt;

impl PassThroughPrompt {
    pub fn messages(input: &PromptInput) -> Vec<ChatMessage> {
        let mut messages = Vec::with_capacity(input.history.len() + 2);
        if !input.system_prompt.is_empty() {
            messages.push(ChatMessage::new(Role::System, input.system_prompt.clone()));
        }
        messages.extend(input.history.iter().cloned());
        messages.push(ChatMessage::new(Role::User, input.user_turn.clone()));
        messages
    }
}

impl PromptShaper for PassThroughPrompt {
    fn shape(&mut self, input: &PromptInput) -> PromptOutput {
        PromptOutput::Llm {
            messages: Self::messages(input),
            settings: GenerationSettings::default(),
        }
    }
}

/// The end of a turn by silence alone: no opinion (`Wait(0)`), so the orchestrator's silence
/// rules decide. A session without a turn plug-in never asks (the answer could not differ); this
/// is the answer when a plug-in cannot give one.
#[derive(Debug, Clone, Copy, Default)]
pub struct SilenceRules;

impl TurnPolicy for SilenceRules {
    fn decide(&mut self, _event: &TurnEvent) -> TurnDecision {
        TurnDecision::Wait(0)
    }
}

/// The built-in behaviours for every slot.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinBehaviours {
    pub rules: BargeInRules,
}

impl BuiltinBehaviours {
    pub fn behaviours(&self) -> Behaviours {
        Behaviours {
            intent: Box::new(NoIntent),
            prompt: Box::new(PassThroughPrompt),
            barge_in: Box::new(DefaultBargeIn(self.rules)),
            turn: Box::new(SilenceRules),
            shadows: Default::default(),
        }
    }
}

impl BehaviourSource for BuiltinBehaviours {
    fn for_session(&self, _session_id: &str) -> Behaviours {
        self.behaviours()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(words: &str, agent_ms: u32, protected: bool) -> BargeInEvent {
        BargeInEvent {
            interim_text: words.into(),
            word_count: words.split_whitespace().count() as u32,
            agent_spoken_ms: agent_ms,
            protected_playing: protected,
            ..Default::default()
        }
    }

    #[test]
    fn interrupts_at_threshold_after_min_duration() {
        let r = BargeInRules::default();
        assert_eq!(
            DefaultBargeIn::decide_with(&r, &ev("no wait I meant tuesday", 4000, false)),
            BargeInDecision::Interrupt
        );
    }

    #[test]
    fn refuses_before_min_duration() {
        let r = BargeInRules::default();
        assert_eq!(
            DefaultBargeIn::decide_with(&r, &ev("no wait I meant tuesday", 1000, false)),
            BargeInDecision::Wait
        );
    }

    #[test]
    fn refuses_during_protected_phrase_only_when_enabled() {
        let mut r = BargeInRules::default();
        let e = ev("no wait I meant tuesday", 4000, true);
        assert_eq!(DefaultBargeIn::decide_with(&r, &e), BargeInDecision::Wait);
        r.protect_phrases = false;
        assert_eq!(
            DefaultBargeIn::decide_with(&r, &e),
            BargeInDecision::Interrupt
        );
    }

    #[test]
    fn waits_below_threshold_and_ignores_backchannels() {
        let r = BargeInRules::default();
        assert_eq!(
            DefaultBargeIn::decide_with(&r, &ev("no wait", 4000, false)),
            BargeInDecision::Wait
        );
        assert_eq!(
            DefaultBargeIn::decide_with(&r, &ev("uh-huh yeah", 4000, false)),
            BargeInDecision::Ignore
        );
        assert_eq!(
            DefaultBargeIn::decide_with(&r, &ev("", 4000, false)),
            BargeInDecision::Wait
        );
    }

    #[test]
    fn backchannel_detection() {
        assert!(is_backchannel("Uh-huh."));
        assert!(is_backchannel("okay, got it"));
        assert!(!is_backchannel("stop"));
        assert!(!is_backchannel(""));
    }

    #[test]
    fn pass_through_prompt_orders_messages() {
        let input = PromptInput {
            system_prompt: "be brief".into(),
            history: vec![ChatMessage::new(Role::Assistant, "hello")],
            user_turn: "hi".into(),
            turn: 1,
            intent: None,
        };
        let PromptOutput::Llm { messages, .. } = PassThroughPrompt.shape(&input) else {
            panic!("expected an LLM request")
        };
        let roles: Vec<Role> = messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, vec![Role::System, Role::Assistant, Role::User]);
        assert_eq!(messages[2].content, "hi");
    }
}
