//! The turn orchestrator: a pure, synchronous state machine per session. It is fed events with the
//! time they happen and answers with actions; it does no I/O, so every transition is unit-tested
//! and the whole machine is driven through generated interleavings of events
//! (`tests::simulation`).
//!
//! States: Listening (no reply), Thinking (a reply is being planned or generated, nothing heard
//! yet) and Speaking (reply audio is going out). Barge-in, pauses and cancellation are sub-states
//! of Speaking.
//!
//! The rules it keeps (docs/protocol.md states them for clients):
//! - A user turn ends only when the VAD hears no speech, nor voice beginning it has not yet
//!   confirmed or dropped (at most `ONSET_SETTLE_MS`): after the VAD's end of speech, the turn
//!   waits (at most `finalize_wait_ms`) for the recogniser's answer to `Finalize`, so trailing
//!   words are part of it. The one exception is the silence timeout: text without new words for
//!   `silence_timeout_ms` ends the turn even under steady noise.
//! - Every reply ends with exactly one `agent_done`; a reply that broke off (barge-in, error,
//!   stall, a newer turn) is `interrupted` and memory keeps only what the user heard of it.
//! - With an end-of-turn policy (`turn_policy.rs`), its answers move the end of a user turn:
//!   sooner (the end of speech is brought forward) or later (a bounded hold); without one, or
//!   when it answers `Wait(0)`, the rules above decide alone.
//! - A barge-in the policy answers `wait` lives until the policy answers something else, even
//!   after the user stops talking; the words it holds belong to the next user turn.
//! - A reply nobody has heard yet waits for a user who speaks again (they had only paused): its
//!   audio, and its text not yet shown, are held from the first voiced frame the VAD hears
//!   (`VadTransition::Onset`) while they speak; final words drop it, and their utterance becomes
//!   a new turn in its place; no words (a cough, a click the VAD never confirms as speech) let it
//!   play (at the latest `pause_timeout_ms` after the voice began, so steady noise cannot hold it
//!   for ever).
//! - With preemptive generation (`preemption.rs`), a reply may be planned and generated before
//!   the turn is committed, but nothing of it is sent or remembered until a turn with exactly
//!   its words takes it over; otherwise it is dropped unheard.
//!
//! `handle` and `advance` below route each event and timer to the part it concerns:
//! - `user_turn.rs`: the VAD's and the recogniser's events, typed turns, and when a turn ends
//!   (the user's side is `user_input.rs`); `end_of_turn.rs` asks the end-of-turn policy;
//! - `barge_in.rs`: speech while the agent talks; `unheard_reply.rs`: speech before any of the
//!   reply was heard;
//! - the reply (`reply.rs`): `reply_start.rs` plans it, `reply_stream.rs` turns the LLM's tokens
//!   into sentences for text-to-speech, `reply_end.rs` finishes, interrupts or drops it;
//! - `preemptive.rs`: a reply started before its turn is committed;
//! - `config.rs`: the settings; `words.rs`: joining and comparing transcripts.

mod barge_in;
mod config;
mod end_of_turn;
mod preemptive;
mod reply;
mod reply_end;
mod reply_start;
mod reply_stream;
mod unheard_reply;
mod user_input;
mod user_turn;
mod words;

#[cfg(test)]
mod tests;

pub use config::OrchestratorConfig;

use barge_in::{BargeIn, Resumable, BARGE_REASK_MS};
use reply::{Reply, Tts};
use user_input::UserInput;
use words::is_real_words;

use super::events::{Action, Event};
use super::memory::Memory;
use super::preemption::Speculation;
use crate::behaviour::{ChatMessage, PromptOutput, TurnTrigger};
use crate::transport::protocol::{close, ServerMessage};

/// The coarse state, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Listening,
    Thinking,
    Speaking,
}

/// The per-session state machine.
pub struct Orchestrator {
    /// Interim text that the silence timeout turned into a turn: a final for the same words that
    /// arrives late belongs to that turn and must not start another.
    timed_out_text: Option<String>,
    cfg: OrchestratorConfig,
    memory: Memory,
    next_turn: u32,
    user: UserInput,
    reply: Option<Reply>,
    barge: Option<BargeIn>,
    /// Set by a barge-in interruption until the user's turn ends.
    resumable: Option<Resumable>,
    ask_seq: u32,
    /// Numbers the end-of-turn policy's questions (never reset, so a late answer cannot pass for
    /// the answer to a newer question).
    turn_seq: u32,
    /// Numbers plan requests, so the answer to a dropped speculation's plan cannot pass for the
    /// plan of the turn that replaced it (they share a turn number).
    plan_seq: u32,
    /// A reply started before its turn was committed (preemptive generation).
    speculation: Option<Speculation>,
    draining: bool,
    closed: bool,
}

impl Orchestrator {
    pub fn new(cfg: OrchestratorConfig) -> Self {
        let memory = Memory::new(cfg.memory_turns, cfg.memory_chars);
        Self {
            timed_out_text: None,
            cfg,
            memory,
            next_turn: 1,
            user: UserInput::default(),
            reply: None,
            barge: None,
            resumable: None,
            ask_seq: 0,
            turn_seq: 0,
            plan_seq: 0,
            speculation: None,
            draining: false,
            closed: false,
        }
    }

    /// A session resumed after a dropped connection: its memory and turn numbers go on.
    /// The greeting is not spoken again.
    pub fn resumed(cfg: OrchestratorConfig, memory: &[ChatMessage], next_turn: u32) -> Self {
        let mut o = Self::new(OrchestratorConfig {
            greeting: None,
            ..cfg
        });
        o.memory = Memory::restored(o.cfg.memory_turns, o.cfg.memory_chars, memory);
        o.next_turn = next_turn.max(1);
        o
    }

    /// The conversation memory (what a resumed session keeps, and for tests).
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// The number the next turn will get.
    pub fn next_turn(&self) -> u32 {
        self.next_turn
    }

    pub fn state(&self) -> State {
        self.reply.as_ref().map_or(State::Listening, Reply::state)
    }

    /// Whether the session has closed (nothing more will happen).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether anything is still in progress: a reply, a barge-in being judged, or user words
    /// not yet turned into a turn.
    pub fn is_idle(&self) -> bool {
        self.reply.is_none()
            && self.barge.is_none()
            && !self.user.has_text()
            && self.user.finalize_until.is_none()
    }

    /// Begin the session: speak the greeting if one is configured (as turn 0).
    pub fn start(&mut self, now: u64, out: &mut Vec<Action>) {
        if let Some(greeting) = self.cfg.greeting.clone().filter(|g| !g.trim().is_empty()) {
            self.reply = Some(self.new_reply(0, 0, now, None, None));
            self.speak_direct(now, &greeting, out);
        }
    }

    /// Whether the end-of-turn policy holds the user's turn open at `now` (for the simulation's
    /// invariants).
    #[cfg(test)]
    pub(crate) fn turn_held(&self, now: u64) -> bool {
        self.user.policy.holds(now)
    }

    /// Whether the user has words in progress, not yet a turn (for the simulation's invariants).
    #[cfg(test)]
    pub(crate) fn user_has_words(&self) -> bool {
        self.user.has_text()
    }

    /// When the orchestrator next needs a `Tick` (session clock), if at all.
    pub fn next_wakeup(&self) -> Option<u64> {
        if self.closed {
            return None;
        }
        let mut at: Option<u64> = None;
        let mut consider = |t: Option<u64>| {
            if let Some(t) = t {
                at = Some(at.map_or(t, |a| a.min(t)));
            }
        };
        if let Some(r) = &self.reply {
            consider(r.playout.next_send_at());
            consider(self.unheard_hold_ends_at());
            if r.planned && r.llm_done && r.tts_done() && !r.playout.queued() {
                consider(Some(r.playout.play_end()));
            }
            if !r.llm_done {
                consider(r.llm_last_at.map(|t| t + self.cfg.llm_stall_ms));
            }
            if let Tts::Open {
                owed_since: Some(t),
                ..
            } = r.tts
            {
                consider(Some(t + self.cfg.tts_stall_ms));
            }
        }
        // While the end-of-turn policy holds the turn, the silence rules wait for it.
        let released = self.user.policy.next_wakeup();
        consider(
            self.silence_deadline()
                .map(|t| released.map_or(t, |r| t.max(r))),
        );
        consider(self.user.finalize_until);
        consider(self.user.settling_until);
        consider(released);
        if let Some(b) = &self.barge {
            if let Some(p) = b.paused_at {
                consider(Some(p + self.cfg.pause_timeout_ms));
            }
            if self.barge_undecided() {
                consider(Some(b.last_asked_at + BARGE_REASK_MS));
            }
        }
        at
    }

    /// Handle one event at time `now`, appending the resulting actions to `out`.
    pub fn handle(&mut self, now: u64, event: Event, out: &mut Vec<Action>) {
        if self.closed {
            return;
        }
        match event {
            Event::Vad(t) => self.on_vad(now, t, out),
            Event::Stt(e) => self.on_stt(now, e, out),
            Event::UserText(text) => self.on_user_text(now, text, out),
            Event::Playback { turn, played_ms } => {
                if let Some(r) = &mut self.reply {
                    // A report names its reply; one for another reply says nothing about this one.
                    if turn.is_none_or(|t| t == r.turn) {
                        r.playout.report_played(played_ms, now);
                    }
                }
            }
            Event::ReplyPlanned {
                turn,
                plan,
                output,
                plugins_ms,
            } => {
                if let Some(s) = self.speculation.as_mut().filter(|s| s.plan == plan) {
                    s.planned(&output, plugins_ms, now);
                    if let PromptOutput::Llm { messages, settings } = output {
                        out.push(Action::StartLlm {
                            turn: s.turn,
                            messages,
                            settings,
                        });
                    }
                } else {
                    self.on_planned(now, turn, plan, output, plugins_ms, out)
                }
            }
            Event::Llm { turn, event } => match self.speculation.as_mut() {
                // Only a speculation's stream is open while it lives (no reply is in flight).
                Some(s) if s.turn == turn => s.llm_event(event, now),
                _ => self.on_llm(now, turn, event, out),
            },
            Event::TtsAudio {
                turn,
                bytes,
                alignment,
            } => {
                if let Some(r) = self.reply_for(turn) {
                    r.marks.tts_first_audio.get_or_insert(now);
                    if let Tts::Open {
                        owed_since,
                        flushed,
                    } = &mut r.tts
                    {
                        // Audio answers what was sent; after the flush it is progress towards
                        // the end, which is still owed.
                        *owed_since = flushed.then_some(now);
                    }
                    r.playout.push(&bytes, alignment.as_ref());
                }
            }
            Event::TtsDone { turn } => {
                if let Some(r) = self.reply_for(turn) {
                    r.tts = Tts::Done;
                }
            }
            Event::TtsError { turn, error } => {
                if self.reply_for(turn).is_some() {
                    self.tts_failed(now, error, out);
                }
            }
            Event::BargeInDecided {
                turn,
                seq,
                decision,
            } => self.on_decision(now, turn, seq, decision, out),
            Event::TurnDecided { seq, decision } => self.on_turn_decision(now, seq, decision, out),
            Event::Tick => {}
            Event::Stop => {
                self.cancel_reply(now, out);
                self.close(close::NORMAL, "session stopped", out);
                return;
            }
            Event::Drain => {
                if self.draining {
                    return;
                }
                self.draining = true;
                out.push(Action::Send(ServerMessage::Shutdown {}));
                if self.reply.is_none() {
                    self.close(close::GOING_AWAY, "server shutting down", out);
                    return;
                }
            }
        }
        self.advance(now, out);
    }

    /// Time-driven work after every event: send paced audio, expire timers, finish replies.
    fn advance(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.closed {
            return;
        }
        self.watch_stalls(now, out);
        if let Some(r) = &mut self.reply {
            r.playout
                .pump(now, |chunk| out.push(Action::SendAudio(chunk)));
        }
        // Voice without words for the pause timeout (noise) holds an unheard reply no longer.
        if self.unheard_hold_ends_at().is_some_and(|at| now >= at) {
            self.release_unheard_reply(now, out);
        }
        // Pause timeout: resume, or interrupt if real words followed.
        if let Some(paused_at) = self.barge.as_ref().and_then(|b| b.paused_at) {
            if now >= paused_at + self.cfg.pause_timeout_ms {
                if self.barge_words().is_some_and(|t| is_real_words(&t)) {
                    self.barge_interrupt(now, out);
                } else {
                    self.resume(now, out);
                }
            }
        }
        // Re-judge an undecided barge-in as time passes.
        if self.barge_undecided() {
            let due = self
                .barge
                .as_ref()
                .is_some_and(|b| now >= b.last_asked_at + BARGE_REASK_MS);
            if due {
                self.ask_barge_in(now, out);
            }
        }
        if self.user.policy.hold_expired(now) && self.user.silent_since.is_some() {
            self.ask_turn(now, TurnTrigger::Timer, out);
        }
        self.check_user_turn(now, out);
        if self.reply.as_ref().is_some_and(|r| r.finished(now)) {
            self.finish_reply(now, out);
        }
        // Draining: once no reply is left (finished, interrupted or cancelled) the session ends.
        if self.draining && !self.closed && self.reply.is_none() {
            self.close(close::GOING_AWAY, "server shutting down", out);
        }
        self.review_speculation(now, out);
    }

    /// Takes a turn number for a new reply. A speculation still open at this point was for
    /// other words: it is dropped first, so its stream cannot speak for the new reply.
    fn claim_turn(&mut self, out: &mut Vec<Action>) -> u32 {
        self.drop_speculation(out);
        let turn = self.next_turn;
        self.next_turn += 1;
        turn
    }

    fn reply_for(&mut self, turn: u32) -> Option<&mut Reply> {
        self.reply.as_mut().filter(|r| r.turn == turn)
    }

    fn close(&mut self, code: u16, reason: &str, out: &mut Vec<Action>) {
        self.drop_speculation(out);
        self.closed = true;
        out.push(Action::Close {
            code,
            reason: reason.to_string(),
        });
    }
}
