//! Barge-in: the user speaks while the agent talks, and the barge-in policy decides.

use super::words::{is_real_words, join_words};
use super::{Orchestrator, State};
use crate::behaviour::defaults::is_backchannel;
use crate::behaviour::{BargeInDecision, BargeInEvent};
use crate::session::events::{Action, TurnEnd};
use crate::session::playout::heard_prefix;
use crate::transport::protocol::ServerMessage;

/// How often an undecided barge-in is judged again while nothing new is heard (the agent's spoken
/// time or the protected state may have changed).
pub(super) const BARGE_REASK_MS: u64 = 200;

/// A barge-in being judged.
#[derive(Debug)]
pub(super) struct BargeIn {
    pub(super) turn: u32,
    pub(super) seq: u32,
    pub(super) last_decision: Option<BargeInDecision>,
    pub(super) last_asked_at: u64,
    pub(super) paused_at: Option<u64>,
    /// Words of utterances the user finished while the policy still answered `wait`: they
    /// become the next user turn (at the interruption, or when the reply ends).
    pub(super) held: String,
    pub(super) held_speech_end: Option<u64>,
}

/// What is left of a reply that a barge-in stopped, in case the barge-in turns out to have
/// been no words at all (the recogniser's final came back empty).
#[derive(Debug)]
pub(super) struct Resumable {
    /// Complete sentences the user had not heard yet.
    pub(super) text: String,
}

impl Orchestrator {
    pub(super) fn barge_undecided(&self) -> bool {
        self.barge.as_ref().is_some_and(|b| {
            b.paused_at.is_none()
                && matches!(b.last_decision, None | Some(BargeInDecision::Wait))
                && (self.user.vad_speaking || self.user.has_text() || !b.held.is_empty())
        })
    }

    /// The words of the barge-in so far (held utterances and what the user is saying now).
    pub(super) fn barge_words(&self) -> Option<String> {
        let b = self.barge.as_ref()?;
        Some(join_words(&b.held, &self.user.text()))
    }

    /// New words from the user: judge them as a barge-in while the agent speaks.
    pub(super) fn on_user_words(&mut self, now: u64, out: &mut Vec<Action>) {
        // Words the VAD did not count as speech hold an unheard reply as voice does.
        self.hold_unheard_reply(now);
        if self.barge.is_none() {
            self.maybe_start_barge_in(now, out);
            return;
        }
        let ignored = self
            .barge
            .as_ref()
            .is_some_and(|b| b.last_decision == Some(BargeInDecision::Ignore));
        // An ignored barge-in stays ignored while it is only a backchannel; real words after
        // "yeah" ("yeah but what about...") are judged afresh.
        if !ignored || !is_backchannel(&self.user.text()) {
            if let Some(b) = &mut self.barge {
                if ignored {
                    b.last_decision = None;
                }
            }
            self.ask_barge_in(now, out);
        }
    }

    pub(super) fn maybe_start_barge_in(&mut self, now: u64, out: &mut Vec<Action>) {
        let Some(r) = &self.reply else { return };
        if r.state() != State::Speaking || self.barge.is_some() {
            return;
        }
        self.barge = Some(BargeIn {
            turn: r.turn,
            seq: 0,
            last_decision: None,
            last_asked_at: now,
            paused_at: None,
            held: String::new(),
            held_speech_end: None,
        });
        self.ask_barge_in(now, out);
    }

    pub(super) fn ask_barge_in(&mut self, now: u64, out: &mut Vec<Action>) {
        let Some(words) = self.barge_words() else {
            return;
        };
        let Some(r) = &self.reply else { return };
        let Some(b) = &mut self.barge else { return };
        let heard_ms = r.playout.heard_ms(now);
        let chars = r.playout.chars_heard(heard_ms, &r.spoken, r.tts_done());
        let spoken = heard_prefix(&r.spoken, chars);
        let remaining = r.spoken[spoken.len()..].trim().to_string();
        let event = BargeInEvent {
            word_count: words.split_whitespace().count() as u32,
            interim_text: words,
            user_speech_ms: self
                .user
                .speech_started_at
                .map_or(0, |s| now.saturating_sub(s)) as u32,
            agent_spoken_ms: heard_ms as u32,
            spoken_text: spoken,
            remaining_text: remaining,
            protected_playing: r.protected_at(chars),
            turn: b.turn,
        };
        self.ask_seq += 1;
        b.seq = self.ask_seq;
        b.last_asked_at = now;
        out.push(Action::AskBargeIn {
            turn: b.turn,
            seq: b.seq,
            event,
        });
    }

    pub(super) fn on_decision(
        &mut self,
        now: u64,
        turn: u32,
        seq: u32,
        decision: BargeInDecision,
        out: &mut Vec<Action>,
    ) {
        let Some(b) = &self.barge else { return };
        if b.turn != turn || b.seq != seq || self.reply.as_ref().is_none_or(|r| r.turn != turn) {
            return; // an answer to an older question
        }
        let protected_now = self
            .reply
            .as_ref()
            .is_some_and(|r| r.protected_at(r.chars_heard(now)));
        // The host keeps the protected-phrase promise whatever a plug-in answers.
        let decision = if self.cfg.protect_phrases
            && protected_now
            && matches!(
                decision,
                BargeInDecision::Interrupt | BargeInDecision::Pause
            ) {
            BargeInDecision::Wait
        } else {
            decision
        };
        let user_done = !b.held.is_empty() && !self.user.vad_speaking && !self.user.has_text();
        if let Some(b) = &mut self.barge {
            b.last_decision = Some(decision);
        }
        match decision {
            BargeInDecision::Interrupt => self.barge_interrupt(now, out),
            // Pausing to listen for more words makes no sense once the user has finished:
            // their words decide at once.
            BargeInDecision::Pause if user_done => {
                if self.barge_words().is_some_and(|t| is_real_words(&t)) {
                    self.barge_interrupt(now, out);
                } else {
                    self.drop_barge(now, out);
                }
            }
            BargeInDecision::Pause => {
                let turn = self.reply.as_ref().map_or(turn, |r| r.turn);
                if let Some(b) = &mut self.barge {
                    if b.paused_at.is_none() {
                        b.paused_at = Some(now);
                        if let Some(r) = &mut self.reply {
                            r.playout.pause(now);
                        }
                        out.push(Action::Send(ServerMessage::Pause { turn }));
                    }
                }
            }
            BargeInDecision::Ignore => {
                if self.barge.as_ref().is_some_and(|b| b.paused_at.is_some()) {
                    self.resume(now, out);
                }
                // Words the user already finished are not a turn: the policy judged them not
                // meant to take it (docs/protocol.md, "held words").
                if user_done {
                    self.drop_barge(now, out);
                } else if let Some(b) = &mut self.barge {
                    b.held.clear();
                    b.held_speech_end = None;
                }
            }
            BargeInDecision::Wait => {}
        }
    }

    /// The barge-in is over without interrupting: audio goes on, its words are dropped.
    pub(super) fn drop_barge(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.barge.as_ref().is_some_and(|b| b.paused_at.is_some()) {
            self.resume(now, out);
        }
        self.barge = None;
    }

    pub(super) fn resume(&mut self, now: u64, out: &mut Vec<Action>) {
        if let Some(b) = &mut self.barge {
            b.paused_at = None;
            b.last_decision = Some(BargeInDecision::Ignore);
        }
        if let Some(r) = &mut self.reply {
            if r.playout.is_paused() {
                r.playout.resume(now);
                out.push(Action::Send(ServerMessage::Resume { turn: r.turn }));
            }
            r.playout.pump(now, |c| out.push(Action::SendAudio(c)));
        }
    }

    /// The barge-in interrupts the reply. Its words are the user's next turn: at once when the
    /// user already finished them, else when their utterance ends.
    pub(super) fn barge_interrupt(&mut self, now: u64, out: &mut Vec<Action>) {
        let (held, held_end) = self
            .barge
            .take()
            .map(|b| (b.held, b.held_speech_end))
            .unwrap_or_default();
        let resumable = self.interrupt(now, out);
        self.resumable = resumable;
        if held.is_empty() || self.draining {
            return;
        }
        if self.user.vad_speaking || self.user.has_text() {
            // The user is saying more: the held words open the turn that utterance ends.
            self.user.finals = join_words(&held, &self.user.finals);
        } else {
            self.resumable = None;
            self.start_turn(now, held, held_end, TurnEnd::HeldWords, out);
        }
    }

    /// Words held by the barge-in of the current reply, taken out of it.
    pub(super) fn take_held(&mut self) -> String {
        self.barge
            .as_mut()
            .map(|b| std::mem::take(&mut b.held))
            .unwrap_or_default()
    }
}
