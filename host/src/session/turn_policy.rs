//! The end-of-turn policy's say in a user turn, as the orchestrator keeps it.
//!
//! Without a policy the orchestrator ends a turn by its silence rules alone. With one (the `turn`
//! plug-in slot), the policy is asked at each pause in the user's speech, at the end of speech,
//! on new words while the user is silent and when its own `Wait` runs out; its answer can only
//! move the end of the turn:
//! - `EndTurn` brings the end of speech forward to now (the recogniser's last words are still
//!   taken, as after any end of speech);
//! - `Wait(ms)` holds the turn open past what the rules would allow, `ms` counted from when the
//!   question was asked (the moment its `silence_ms` describes, not when the answer came), but
//!   never more than [`MAX_HOLD_MS`] after the user's last voice or words, so a policy cannot
//!   keep a caller waiting for ever;
//! - `Wait(0)`, or no answer within [`ANSWER_WAIT_MS`], leaves the rules in charge.
//!
//! This file holds the state and its arithmetic; the orchestrator decides when to ask.

use crate::behaviour::TurnDecision;

/// The longest a `Wait` holds a turn open after the user's last voice or words, in ms.
pub const MAX_HOLD_MS: u64 = 5000;
/// How long the rules wait for the answer to a question before deciding without it, in ms.
/// The plug-in worker always answers (the built-in answer when the plug-in cannot), so this
/// only matters when it is far behind.
pub const ANSWER_WAIT_MS: u64 = 1000;

/// A question awaiting its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Question {
    seq: u32,
    asked_at: u64,
}

/// What the policy said about the utterance being collected. Reset with it at each turn.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct TurnPolicyState {
    pending: Option<Question>,
    /// A `Wait` answer holds the turn open until then; the policy is asked again then.
    hold_until: Option<u64>,
    /// The policy ended this utterance (its end of speech is not asked about again).
    ended: bool,
}

/// What an answer asks of the orchestrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// End the user's speech now.
    EndSpeech,
    /// Nothing to do now (a hold, or the rules decide).
    Nothing,
}

impl TurnPolicyState {
    /// Question `seq` was asked at `now`; any older one no longer counts.
    pub fn asked(&mut self, seq: u32, now: u64) {
        self.pending = Some(Question { seq, asked_at: now });
    }

    /// Whether the policy already ended this utterance.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The voice came back or new speech began: what was said about the silence is void.
    pub fn voice_again(&mut self) {
        self.pending = None;
        self.hold_until = None;
        self.ended = false;
    }

    /// Applies the answer to question `seq`; `None` for an answer to an older question (or to
    /// one of an utterance already turned into a turn). `last_activity` is when the user's voice
    /// or words last came, which bounds a hold.
    pub fn answer(
        &mut self,
        seq: u32,
        decision: TurnDecision,
        now: u64,
        last_activity: u64,
    ) -> Option<Verdict> {
        let asked_at = self.pending.filter(|q| q.seq == seq)?.asked_at;
        self.pending = None;
        Some(match decision {
            TurnDecision::EndTurn => {
                self.hold_until = None;
                self.ended = true;
                Verdict::EndSpeech
            }
            TurnDecision::Wait(ms) => {
                // Counted from the moment the question describes, so the time the answer took
                // (the model's run, a queue under load) does not lengthen the hold.
                let until = (asked_at + u64::from(ms)).min(last_activity + MAX_HOLD_MS);
                self.hold_until = (ms > 0 && until > now).then_some(until);
                Verdict::Nothing
            }
        })
    }

    /// Whether a `Wait` answer holds the turn open at `now` (the policy thinks the user is not
    /// done).
    pub fn waits(&self, now: u64) -> bool {
        self.hold_until.is_some_and(|t| now < t)
    }

    /// Whether the turn must stay open at `now` whatever the silence rules say: an answer is
    /// awaited (for at most `ANSWER_WAIT_MS`) or a `Wait` holds it.
    pub fn holds(&self, now: u64) -> bool {
        self.pending
            .is_some_and(|q| now < q.asked_at + ANSWER_WAIT_MS)
            || self.waits(now)
    }

    /// Time passed: an answer overdue by `now` is given up on (the rules decide), and a hold
    /// that ran out is cleared; `true` when the policy should be asked again.
    pub fn hold_expired(&mut self, now: u64) -> bool {
        if self
            .pending
            .is_some_and(|q| now >= q.asked_at + ANSWER_WAIT_MS)
        {
            self.pending = None;
        }
        if self.hold_until.is_some_and(|t| now >= t) {
            self.hold_until = None;
            return true;
        }
        false
    }

    /// When the state next needs the clock: a hold's end, or giving up on an answer.
    pub fn next_wakeup(&self) -> Option<u64> {
        let gave_up = self.pending.map(|q| q.asked_at + ANSWER_WAIT_MS);
        match (self.hold_until, gave_up) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The last sentence of `text` ("" for none): what the agent said just before the user's turn.
/// A sentence ends at `.`, `!`, `?` or `…` followed by a space ("5.30" is not an end).
pub(super) fn last_sentence(text: &str) -> &str {
    let text = text.trim();
    let mut start = 0;
    let mut prev_end = false;
    for (i, c) in text.char_indices() {
        if prev_end && c.is_whitespace() {
            start = i;
        }
        prev_end = matches!(c, '.' | '!' | '?' | '…');
    }
    text[start..].trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_latest_question_is_answered() {
        let mut s = TurnPolicyState::default();
        s.asked(1, 0);
        s.asked(2, 10);
        assert_eq!(s.answer(1, TurnDecision::EndTurn, 20, 0), None);
        assert!(!s.ended());
        assert_eq!(
            s.answer(2, TurnDecision::EndTurn, 20, 0),
            Some(Verdict::EndSpeech)
        );
        assert!(s.ended());
        // Answered once: a repeat of the same answer is stale.
        assert_eq!(s.answer(2, TurnDecision::EndTurn, 21, 0), None);
    }

    #[test]
    fn a_hold_is_capped_after_the_last_activity() {
        let mut s = TurnPolicyState::default();
        s.asked(1, 1000);
        s.answer(1, TurnDecision::Wait(60_000), 1000, 800);
        assert!(s.holds(800 + MAX_HOLD_MS - 1));
        assert!(!s.holds(800 + MAX_HOLD_MS));
        assert_eq!(s.next_wakeup(), Some(800 + MAX_HOLD_MS));
        assert!(!s.hold_expired(800 + MAX_HOLD_MS - 1));
        assert!(s.hold_expired(800 + MAX_HOLD_MS));
        assert!(!s.hold_expired(800 + MAX_HOLD_MS), "reported once");
        // Past the cap a wait holds nothing.
        s.asked(2, 9000);
        s.answer(2, TurnDecision::Wait(500), 9000, 800);
        assert!(!s.holds(9000));
    }

    #[test]
    fn a_hold_counts_from_the_question_not_the_answer() {
        let mut s = TurnPolicyState::default();
        // Asked 200 ms into a silence; the answer (hold to 1000 ms of silence) took 50 ms.
        s.asked(1, 1200);
        s.answer(1, TurnDecision::Wait(800), 1250, 1000);
        assert!(s.holds(1999));
        assert!(!s.holds(2000));
        assert_eq!(s.next_wakeup(), Some(2000));
        // An answer slower than its own hold holds nothing: the rules decide at once.
        s.asked(2, 3000);
        s.answer(2, TurnDecision::Wait(100), 3150, 2800);
        assert!(!s.holds(3150));
        assert_eq!(s.next_wakeup(), None);
    }

    #[test]
    fn an_unanswered_question_holds_the_turn_for_a_bounded_time() {
        let mut s = TurnPolicyState::default();
        s.asked(1, 100);
        assert!(s.holds(100 + ANSWER_WAIT_MS - 1));
        assert!(!s.holds(100 + ANSWER_WAIT_MS));
        assert_eq!(s.next_wakeup(), Some(100 + ANSWER_WAIT_MS));
        s.answer(1, TurnDecision::Wait(0), 150, 100);
        assert!(!s.holds(150));
        assert_eq!(s.next_wakeup(), None);
        // An answer that never comes is given up on, and no timer is left.
        s.asked(2, 200);
        assert!(!s.hold_expired(200 + ANSWER_WAIT_MS));
        assert_eq!(s.next_wakeup(), None);
        assert_eq!(s.answer(2, TurnDecision::EndTurn, 1300, 200), None);
    }

    #[test]
    fn voice_voids_what_was_said_about_the_silence() {
        let mut s = TurnPolicyState::default();
        s.asked(1, 0);
        s.voice_again();
        assert_eq!(s.answer(1, TurnDecision::EndTurn, 5, 0), None);
        assert!(!s.holds(5));
    }

    #[test]
    fn the_last_sentence_is_found() {
        assert_eq!(last_sentence("Hello. How can I help?"), "How can I help?");
        assert_eq!(last_sentence("It is 5.30 now"), "It is 5.30 now");
        assert_eq!(last_sentence("Sure!"), "Sure!");
        assert_eq!(last_sentence(""), "");
        assert_eq!(last_sentence("Done… Anything else…"), "Anything else…");
    }
}
