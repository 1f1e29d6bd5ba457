//! Asking the end-of-turn policy (see `turn_policy.rs`) about the user's turn.

use super::Orchestrator;
use crate::audio::VadTransition;
use crate::behaviour::{Role, TurnDecision, TurnEvent, TurnTrigger};
use crate::session::events::Action;
use crate::session::turn_policy::{last_sentence, Verdict};

impl Orchestrator {
    /// Asks the end-of-turn policy about the user's turn, when one serves the session and the
    /// user holds the floor (a barge-in is the barge-in policy's).
    pub(super) fn ask_turn(&mut self, now: u64, trigger: TurnTrigger, out: &mut Vec<Action>) {
        if !self.policy_has_the_floor() {
            return;
        }
        let u = &self.user;
        let Some(silent_since) = u.silent_since else {
            return;
        };
        if u.first_voice_at.is_none() && !u.has_text() {
            return;
        }
        self.turn_seq += 1;
        let seq = self.turn_seq;
        let text = u.text();
        let agent_last_sentence = self.agent_last_sentence();
        let event = TurnEvent {
            trigger,
            silence_ms: clamp_ms(now.saturating_sub(silent_since)),
            speech_ms: clamp_ms(
                silent_since.saturating_sub(u.first_voice_at.unwrap_or(silent_since)),
            ),
            word_count: text
                .split_whitespace()
                .count()
                .try_into()
                .unwrap_or(u32::MAX),
            text_final: u.interim.trim().is_empty() && !u.finals.trim().is_empty(),
            text,
            model_probability: None,
            words_probability: None,
            agent_last_sentence,
            turn: self.next_turn,
        };
        self.user.policy.asked(seq, now);
        out.push(Action::AskTurn { seq, event });
    }

    /// Whether the end-of-turn policy decides now: one serves the session and the user holds
    /// the floor (a barge-in is the barge-in policy's).
    fn policy_has_the_floor(&self) -> bool {
        self.cfg.turn_policy && self.barge.is_none() && !self.draining
    }

    fn agent_last_sentence(&self) -> String {
        self.memory
            .last_of(Role::Assistant)
            .map(|m| last_sentence(&m.content).to_string())
            .unwrap_or_default()
    }

    /// The agent's last sentence and the user's words so far, as the end-of-turn policy would be
    /// asked about them now; `None` when it would not be asked (no policy, a barge-in, no
    /// words). The I/O reads them ahead with the text end-of-turn model.
    pub fn turn_words(&self) -> Option<(String, String)> {
        (self.policy_has_the_floor() && self.user.has_text())
            .then(|| (self.agent_last_sentence(), self.user.text()))
    }

    /// New words while the user is silent: the end-of-turn policy may judge them.
    pub(super) fn ask_about_words(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.user.silent_since.is_some() && !self.user.policy.ended() {
            self.ask_turn(now, TurnTrigger::Transcript, out);
        }
    }

    pub(super) fn on_turn_decision(
        &mut self,
        now: u64,
        seq: u32,
        decision: TurnDecision,
        out: &mut Vec<Action>,
    ) {
        let u = &self.user;
        let last_activity = u
            .silent_since
            .unwrap_or(now)
            .max(u.last_text_at.unwrap_or(0));
        if self.user.policy.answer(seq, decision, now, last_activity) == Some(Verdict::EndSpeech)
            && self.user.vad_speaking
        {
            // The speech ends here and now, as if the VAD's hangover had passed; the VAD is told
            // so that the next voice starts new speech.
            out.push(Action::EndSpeech);
            let at_ms = self.user.paused_at_ms.unwrap_or(0);
            self.on_vad(now, VadTransition::SpeechEnd { at_ms }, out);
        }
    }
}

fn clamp_ms(ms: u64) -> u32 {
    ms.try_into().unwrap_or(u32::MAX)
}
