//! The user's turn: the VAD's and the recogniser's events, typed turns, and when the turn ends.

use super::barge_in::Resumable;
use super::words::{is_late_final_of, is_real_words, join_words, normalise, push_words};
use super::Orchestrator;
use crate::audio::VadTransition;
use crate::behaviour::defaults::is_backchannel;
use crate::behaviour::{BargeInDecision, TurnTrigger};
use crate::providers::SttEvent;
use crate::session::events::{Action, TurnEnd};
use crate::transport::protocol::{ServerMessage, VadEventKind};

/// The longest a turn waits for the VAD to confirm or drop voice it heard beginning: webrtc-vad
/// confirms speech about 140 ms after its first voiced frame (docs/benchmarks.md).
const ONSET_SETTLE_MS: u64 = 300;

impl Orchestrator {
    pub(super) fn on_vad(&mut self, now: u64, t: VadTransition, out: &mut Vec<Action>) {
        match t {
            VadTransition::SpeechStart { at_ms } => {
                // The utterance holds an unheard reply from here on.
                self.user.onset = None;
                self.user.settling_until = None;
                self.user.vad_speaking = true;
                self.user.speech_started_at = Some(now);
                self.user.first_voice_at.get_or_insert(now);
                self.user.silent_since = None;
                self.user.policy.voice_again();
                self.user.ended = false;
                out.push(Action::Send(ServerMessage::Vad {
                    event: VadEventKind::SpeechStart,
                    at_ms,
                }));
                self.hold_unheard_reply(now);
                self.maybe_start_barge_in(now, out);
            }
            VadTransition::SpeechEnd { at_ms } => {
                self.user.vad_speaking = false;
                self.user.speech_end_at = Some(now);
                out.push(Action::Send(ServerMessage::Vad {
                    event: VadEventKind::SpeechEnd,
                    at_ms,
                }));
                out.push(Action::FinalizeStt);
                // If the recogniser already saw the end and nothing was said since, its
                // answer to the finalize adds nothing: the turn need not wait for it.
                if !(self.user.ended && self.user.interim.trim().is_empty()) {
                    self.user.finalize_until = Some(now + self.cfg.finalize_wait_ms);
                }
                self.user.ended = true;
                let hangover = self.cfg.vad_hangover_ms;
                self.user
                    .silent_since
                    .get_or_insert(now.saturating_sub(hangover));
                if !self.user.policy.ended() {
                    self.ask_turn(now, TurnTrigger::SpeechEnd, out);
                }
            }
            VadTransition::Pause { at_ms, silence_ms } => {
                if self.user.vad_speaking {
                    self.user.silent_since = Some(now.saturating_sub(u64::from(silence_ms)));
                    self.user.paused_at_ms = Some(at_ms);
                    self.ask_turn(now, TurnTrigger::Pause, out);
                }
            }
            VadTransition::Resume { .. } => {
                // Only within speech: the VAD's end of speech closes its pauses.
                if self.user.vad_speaking {
                    self.user.silent_since = None;
                    self.user.policy.voice_again();
                    self.hold_unheard_reply(now);
                }
            }
            VadTransition::Onset { .. } => {
                // Voice may be beginning: a reply nobody has heard yet does not start over it,
                // and a turn waits to know whether the user is going on.
                self.user.onset.get_or_insert(now);
                self.user
                    .settling_until
                    .get_or_insert(now + ONSET_SETTLE_MS);
                self.hold_unheard_reply(now);
            }
            VadTransition::FalseOnset { .. } => {
                // Nothing came of it: a reply it alone held plays. One an utterance holds
                // waits for that utterance to end.
                self.user.settling_until = None;
                let utterance = self.user.vad_speaking
                    || self.user.first_voice_at.is_some()
                    || self.user.has_text();
                if self.user.onset.take().is_some() && !utterance {
                    self.release_unheard_reply(now, out);
                }
            }
        }
    }

    pub(super) fn on_stt(&mut self, now: u64, e: SttEvent, out: &mut Vec<Action>) {
        match e {
            SttEvent::SpeechStarted => {}
            SttEvent::Interim { text, .. } => {
                if text.trim().is_empty() {
                    return;
                }
                self.timed_out_text = None;
                if self.user.vad_speaking {
                    // Words after the recogniser's endpoint: the utterance goes on.
                    self.user.ended = false;
                }
                self.user.interim = text;
                self.user.last_text_at = Some(now);
                self.send_transcript(out);
                self.on_user_words(now, out);
                self.ask_about_words(now, out);
            }
            SttEvent::Final {
                text,
                speech_final,
                from_finalize,
                ..
            } => {
                if let Some(done) = self.timed_out_text.take() {
                    if !self.user.has_text() && is_late_final_of(&done, &text) {
                        return; // the late final of a turn already taken
                    }
                }
                if !text.trim().is_empty() {
                    push_words(&mut self.user.finals, &text);
                    self.user.last_text_at = Some(now);
                }
                self.user.interim.clear();
                if from_finalize || speech_final {
                    self.user.finalize_until = None;
                }
                if speech_final || from_finalize || !self.user.vad_speaking {
                    self.user.ended = true;
                } else if !text.trim().is_empty() {
                    // Words after the recogniser's endpoint: the utterance goes on.
                    self.user.ended = false;
                }
                if self.cfg.turn_policy
                    && !text.trim().is_empty()
                    && !self.user.vad_speaking
                    && self.user.silent_since.is_none()
                {
                    // Words the VAD never counted as speech (a short or quiet "the", "um"):
                    // the user is silent now, and the policy judges them as after a pause
                    // rather than the rules ending the turn on them at once.
                    self.user.silent_since = Some(now);
                }
                if !text.trim().is_empty() {
                    self.send_transcript(out);
                    self.drop_unheard_reply(now, out);
                    self.on_user_words(now, out);
                    self.ask_about_words(now, out);
                }
            }
            SttEvent::UtteranceEnd => {
                // Nothing more of the utterance is coming: no finalize result to wait for, and
                // an interim guess is all the text there will be (a late final for the same
                // words is recognised as such).
                self.user.ended = true;
                self.user.finalize_until = None;
                if !self.user.interim.trim().is_empty() {
                    self.timed_out_text = Some(normalise(&self.user.interim));
                    let interim = std::mem::take(&mut self.user.interim);
                    push_words(&mut self.user.finals, &interim);
                }
            }
            SttEvent::Error(error) => {
                out.push(Action::Send(ServerMessage::error(
                    error.client_code(),
                    format!("speech recognition failed: {error}"),
                    false,
                )));
            }
        }
    }

    pub(super) fn on_user_text(&mut self, now: u64, text: String, out: &mut Vec<Action>) {
        let text = text.trim().to_string();
        if text.is_empty() {
            out.push(Action::Send(ServerMessage::error(
                "bad_message",
                "text must not be empty",
                false,
            )));
            return;
        }
        if self.draining {
            // No new turn starts while the server shuts down; the reply in flight finishes.
            return;
        }
        // A typed turn is deliberate: it replaces whatever reply is in flight. Words the user
        // had finished saying but that were not answered yet (held by a barge-in, or finals of
        // an unfinished utterance) come first in it; an interim guess is dropped (its final
        // will follow as words of their own).
        let held = self.take_held();
        let finals = std::mem::take(&mut self.user.finals);
        self.user.reset();
        self.end_reply_for_new_turn(now, out);
        let text = join_words(&join_words(&held, &finals), &text);
        self.start_turn(now, text, None, TurnEnd::Typed, out);
    }

    pub(super) fn send_transcript(&self, out: &mut Vec<Action>) {
        out.push(Action::Send(ServerMessage::Transcript {
            turn: self.next_turn,
            text: self.user.text(),
            is_final: false,
        }));
    }

    /// When unfinished user text becomes a turn for want of an end: `silence_timeout_ms` after
    /// the later of the last words and the end of speech. This is the one rule that ends a turn
    /// while the VAD may still hear "speech": steady noise must not hold a turn open for ever.
    pub(super) fn silence_deadline(&self) -> Option<u64> {
        let u = &self.user;
        if !u.has_text() {
            return None;
        }
        let last = u.last_text_at?.max(u.speech_end_at.unwrap_or(0));
        Some(last + self.cfg.silence_timeout_ms)
    }

    /// End the user's turn once nothing holds it open: the VAD is quiet, something said the
    /// utterance ended and no finalize result is awaited any more (or the silence timeout).
    pub(super) fn check_user_turn(&mut self, now: u64, out: &mut Vec<Action>) {
        let timed_out = self.silence_deadline().is_some_and(|at| now >= at);
        if self.user.finalize_until.is_some_and(|until| now >= until) {
            self.user.finalize_until = None;
        }
        if self.user.settling_until.is_some_and(|until| now >= until) {
            self.user.settling_until = None;
        }
        if self.user.policy.holds(now) {
            // The end-of-turn policy holds the turn open (bounded), or its answer is due.
            return;
        }
        let u = &self.user;
        // Interim words wait for their final (or the silence timeout): a guess is not a turn.
        // Voice the VAD heard beginning and has not settled: the user may be going on.
        let waiting = u.vad_speaking
            || u.settling_until.is_some()
            || u.finalize_until.is_some()
            || !u.ended
            || !u.interim.trim().is_empty();
        if !timed_out && waiting {
            return;
        }
        // A turn taken before its final came: the final, when it comes, is not a new turn.
        if !self.user.interim.trim().is_empty() {
            self.timed_out_text = Some(normalise(&self.user.text()));
        }
        let by = if self.user.policy.ended() {
            TurnEnd::Policy
        } else if waiting {
            TurnEnd::SilenceTimeout
        } else {
            TurnEnd::Silence
        };
        self.end_user_turn(now, by, out);
    }

    /// The user finished an utterance (its text may be empty).
    pub(super) fn end_user_turn(&mut self, now: u64, by: TurnEnd, out: &mut Vec<Action>) {
        let text = self.user.text();
        // A spoken turn the recogniser ended (endpointing) before the local VAD's hangover did:
        // its speech ended now, as far as the host can tell.
        let spoken = self.user.speech_started_at.is_some() || self.user.speech_end_at.is_some();
        let speech_end = self.user.speech_end_at.or_else(|| spoken.then_some(now));
        self.user.reset();
        if text.is_empty() {
            self.on_empty_utterance(now, out);
            return;
        }
        self.resumable = None;
        // Speech during a reply: the barge-in policy decides, now with the finished words.
        let reply_turn = self.reply.as_ref().map(|r| r.turn);
        let barge = self.barge.as_mut().filter(|b| Some(b.turn) == reply_turn);
        if let Some(b) = barge {
            push_words(&mut b.held, &text);
            b.held_speech_end = speech_end;
            let words = b.held.clone();
            if b.paused_at.is_some() {
                // Paused for more words: they came, and they decide at once.
                if is_real_words(&words) {
                    self.barge_interrupt(now, out);
                } else {
                    self.drop_barge(now, out);
                }
            } else if b.last_decision == Some(BargeInDecision::Ignore) && is_backchannel(&words) {
                self.barge = None;
            } else {
                b.last_decision = None;
                self.ask_barge_in(now, out);
            }
            return;
        }
        if self.draining {
            // No new turn while the server shuts down: the reply in flight finishes.
            self.release_unheard_reply(now, out);
            return;
        }
        // A reply not heard yet (words without a final reach here without dropping it first).
        self.note_turn_continued(out);
        self.end_reply_for_new_turn(now, out);
        self.start_turn(now, text, speech_end, by, out);
    }

    /// An utterance ended with no words (noise, or a recogniser that revised its guess to
    /// nothing). If it had interrupted a reply, the agent goes on with what it had left to say.
    pub(super) fn on_empty_utterance(&mut self, now: u64, out: &mut Vec<Action>) {
        // Voice already beginning again holds the reply until it is settled.
        if self.user.onset.is_none() {
            self.release_unheard_reply(now, out);
        }
        if let Some(b) = &self.barge {
            if b.held.is_empty() && b.paused_at.is_none() {
                self.barge = None;
            }
        }
        let Some(Resumable { text }) = self.resumable.take() else {
            return;
        };
        if self.reply.is_some() || self.draining || text.trim().is_empty() {
            return;
        }
        let turn = self.claim_turn(out);
        self.reply = Some(self.new_reply(turn, 0, now, None, None));
        self.speak_direct(now, &text, out);
    }
}
