//! A reply nobody has heard yet waits for a user who speaks again.

use super::Orchestrator;
use crate::session::events::Action;

/// The longest the user may stay silent after the end of speech the host marked for a turn
/// (the VAD's end of speech, or the policy's commit at a pause) and still be going on with the
/// same utterance when they speak before hearing its reply. Pauses inside a sentence run to
/// about 1.5 s (the labelled sets' longest); a user silent for longer was waiting for the reply.
pub(super) const CONTINUED_WITHIN_MS: u64 = 2000;

impl Orchestrator {
    /// The user speaks before any of the reply was heard (they had only paused): its audio
    /// waits, so the agent does not start talking over them. Their utterance decides: words
    /// make it a new turn that replaces the reply (`end_user_turn`), none let the reply play
    /// (`release_unheard_reply`).
    pub(super) fn hold_unheard_reply(&mut self, now: u64) {
        if let Some(r) = &mut self.reply {
            if !r.playout.started() {
                r.playout.pause(now);
            }
        }
    }

    /// Final words before any of the reply was heard: it waits for the user
    /// (`hold_unheard_reply`) and their utterance will be the next turn and replace it
    /// (`end_user_turn`), so it is dropped now, unheard. Its LLM and TTS stop, and
    /// the next turn's reply may be prepared while they finish (`review_speculation`). Not
    /// while draining: the reply in flight is then the last one.
    pub(super) fn drop_unheard_reply(&mut self, now: u64, out: &mut Vec<Action>) {
        let unheard = self.reply.as_ref().is_some_and(|r| !r.playout.started());
        if unheard && !self.draining {
            self.note_turn_continued(out);
            self.cancel_reply(now, out);
        }
    }

    /// The user goes on after their turn was committed, and its reply, not heard yet, is about to
    /// be dropped for their words: the turn's end came too early, which the I/O counts
    /// (`voice_turn_continued_total`, and the plug-in version's `turns_continued`) against what
    /// ended the turn. Only when their voice came back within [`CONTINUED_WITHIN_MS`] of the
    /// turn's end of speech: later, they were waiting for a slow reply, not finishing a sentence.
    pub(super) fn note_turn_continued(&self, out: &mut Vec<Action>) {
        let Some(r) = self.reply.as_ref().filter(|r| !r.playout.started()) else {
            return;
        };
        let speech_end = r.marks.speech_end.unwrap_or(r.marks.turn_end);
        // The reply waits from the user's first voice or words after it (`hold_unheard_reply`).
        let went_on = r
            .held_for_user()
            .is_none_or(|back| back.saturating_sub(speech_end) <= CONTINUED_WITHIN_MS);
        if let (Some(by), true) = (r.ended_by, went_on) {
            out.push(Action::TurnContinued { turn: r.turn, by });
        }
    }

    /// When a reply waiting for the user plays anyway: voice without words for the pause
    /// timeout (steady noise), counted from the latest voice that may be beginning. Words hold
    /// it until their utterance ends.
    pub(super) fn unheard_hold_ends_at(&self) -> Option<u64> {
        let held = self.reply.as_ref()?.held_for_user()?;
        let since = held.max(self.user.onset.unwrap_or(0));
        (!self.user.has_text()).then_some(since + self.cfg.pause_timeout_ms)
    }

    /// The user's voice came to nothing: the reply that waited for them plays.
    pub(super) fn release_unheard_reply(&mut self, now: u64, out: &mut Vec<Action>) {
        if let Some(r) = &mut self.reply {
            if r.held_for_user().is_some() {
                r.playout.resume(now);
                r.show_text(out);
                r.playout.pump(now, |c| out.push(Action::SendAudio(c)));
            }
        }
    }
}
