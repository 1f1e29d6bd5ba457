//! Preemptive generation: a reply started before the user's turn is committed.
//!
//! Between the user's last words and the committed turn lie the VAD's hangover and the wait for
//! the recogniser's last final: a few hundred milliseconds in which the words are usually
//! already known. When the transcript is final and something says the utterance is ending, the
//! orchestrator plans the reply and starts its LLM stream on those words, as the turn they
//! would become, and keeps what the stream says here, unsent. At the commit:
//! - the same words, with the same memory behind them: the reply goes on from what was kept,
//!   as if it had been started at the commit, only sooner;
//! - anything else (the user went on, typed, or the words came back different): the stream is
//!   dropped and the turn is planned afresh. Nothing of it reached the client, the transcript
//!   or memory.
//!
//! This file holds what a speculation keeps; the orchestrator decides when to start one and
//! resolves it.

use crate::behaviour::PromptOutput;
use crate::providers::LlmEvent;

/// A reply being generated for words the user may not have finished.
#[derive(Debug)]
pub(super) struct Speculation {
    /// The turn number it would become (the orchestrator's next turn when it started).
    pub turn: u32,
    /// The plan request it made.
    pub plan: u32,
    /// The user's words it was started on, exactly.
    pub text: String,
    /// The memory's revision it saw.
    pub memory_revision: u64,
    pub planned: Planned,
    /// What the LLM stream said so far, in order, not yet shown to anyone.
    pub llm: Vec<LlmEvent>,
    /// When the LLM stream was opened or last reported (its stall clock at the commit).
    pub llm_last_at: u64,
}

/// How far the speculation's plan got.
#[derive(Debug)]
pub(super) enum Planned {
    /// The intent and prompt plug-ins have not answered yet.
    Pending,
    /// The LLM stream was started.
    Llm { plugins_ms: f64 },
    /// The prompt plug-in answered with a fixed text.
    Direct { text: String, plugins_ms: f64 },
    /// The LLM stream failed: the commit asks again rather than repeat an error it may not get.
    Failed,
}

impl Speculation {
    pub fn new(turn: u32, plan: u32, text: String, memory_revision: u64, now: u64) -> Self {
        Self {
            turn,
            plan,
            text,
            memory_revision,
            planned: Planned::Pending,
            llm: Vec::new(),
            llm_last_at: now,
        }
    }

    /// Whether it was started on these words, with this memory, for this turn number. A failed
    /// one stays for as long as that holds, so the same words do not start another request
    /// (a failing provider is asked once per turn, not at every event).
    pub fn is_for(&self, turn: u32, text: &str, memory_revision: u64) -> bool {
        self.turn == turn && self.text == text && self.memory_revision == memory_revision
    }

    /// Whether a turn committed with these words and this memory can take it over.
    pub fn fits(&self, turn: u32, text: &str, memory_revision: u64) -> bool {
        self.is_for(turn, text, memory_revision) && !matches!(self.planned, Planned::Failed)
    }

    /// Whether it started an LLM request (what the counters count: the requests that cost).
    pub fn started_llm(&self) -> bool {
        matches!(self.planned, Planned::Llm { .. } | Planned::Failed)
    }

    /// The plan's answer: the LLM output starts a stream (the caller sends `StartLlm`).
    pub fn planned(&mut self, output: &PromptOutput, plugins_ms: f64, now: u64) {
        self.planned = match output {
            PromptOutput::Llm { .. } => Planned::Llm { plugins_ms },
            PromptOutput::Direct { text } => Planned::Direct {
                text: text.clone(),
                plugins_ms,
            },
        };
        self.llm_last_at = now;
    }

    /// An event of its LLM stream, kept for the commit.
    pub fn llm_event(&mut self, event: LlmEvent, now: u64) {
        if !matches!(self.planned, Planned::Llm { .. }) {
            return;
        }
        self.llm_last_at = now;
        match event {
            LlmEvent::Working => {}
            LlmEvent::Error(_) => {
                self.planned = Planned::Failed;
                self.llm.clear();
            }
            event => self.llm.push(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::GenerationSettings;
    use crate::providers::{ProviderError, ProviderErrorKind};

    fn llm_output() -> PromptOutput {
        PromptOutput::Llm {
            messages: Vec::new(),
            settings: GenerationSettings::default(),
        }
    }

    #[test]
    fn only_the_same_words_on_the_same_memory_take_it_over() {
        let s = Speculation::new(3, 7, "what time is it".into(), 4, 100);
        assert!(s.fits(3, "what time is it", 4));
        assert!(!s.fits(3, "what time is it in Paris", 4));
        assert!(!s.fits(3, "what time is it", 5));
        assert!(!s.fits(4, "what time is it", 4));
    }

    #[test]
    fn a_failed_stream_is_not_taken_over_and_keeps_nothing() {
        let mut s = Speculation::new(1, 1, "hi".into(), 0, 0);
        s.planned(&llm_output(), 0.5, 10);
        s.llm_event(LlmEvent::Token("Hel".into()), 20);
        assert_eq!(s.llm.len(), 1);
        let error = ProviderError::new(ProviderErrorKind::Unavailable, "llm", "down");
        s.llm_event(LlmEvent::Error(error), 30);
        assert!(s.llm.is_empty());
        assert!(!s.fits(1, "hi", 0));
        assert!(s.started_llm());
    }

    #[test]
    fn events_before_the_plan_or_for_a_direct_reply_are_not_kept() {
        let mut s = Speculation::new(1, 1, "hi".into(), 0, 0);
        s.llm_event(LlmEvent::Token("x".into()), 5);
        assert!(s.llm.is_empty());
        s.planned(
            &PromptOutput::Direct {
                text: "Hello.".into(),
            },
            0.1,
            6,
        );
        s.llm_event(LlmEvent::Token("x".into()), 7);
        assert!(s.llm.is_empty());
        assert!(!s.started_llm());
    }
}
