//! The turn orchestrator: a pure, synchronous state machine per session. It is fed events with the
//! time they happen and answers with actions; it does no I/O, so every transition is unit-tested
//! and the whole machine is driven through generated interleavings of events
//! (`orchestrator_tests::simulation`).
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
//!   audio is held from the first voiced frame the VAD hears (`VadTransition::Onset`) while they
//!   speak; final words drop it, and their utterance becomes a new turn in its place; no words (a
//!   cough, a click the VAD never confirms as speech) let it play (at the latest `pause_timeout_ms`
//!   after the voice began, so steady noise cannot hold it for ever).
//! - With preemptive generation (`preemption.rs`), a reply may be planned and generated before
//!   the turn is committed, but nothing of it is sent or remembered until a turn with exactly
//!   its words takes it over; otherwise it is dropped unheard.

use super::aggregator::{strip_markers, Pushed, Sentence, SentenceAggregator};
use super::events::{Action, Event, Preemption, TurnEnd};
use super::memory::Memory;
use super::playout::{heard_prefix, Playout};
use super::preemption::{Planned, Speculation};
use super::turn_policy::{last_sentence, TurnPolicyState, Verdict};
use crate::audio::{AudioFormat, VadTransition};
use crate::behaviour::defaults::is_backchannel;
use crate::behaviour::{
    BargeInDecision, BargeInEvent, ChatMessage, PromptOutput, Role, TurnDecision, TurnEvent,
    TurnTrigger,
};
use crate::providers::{LlmEvent, ProviderError, ProviderErrorKind, SttEvent};
use crate::transport::protocol::{close, ServerMessage, TurnMetrics, VadEventKind};
use regex::Regex;
use std::sync::Arc;

/// How often an undecided barge-in is judged again while nothing new is heard (the agent's spoken
/// time or the protected state may have changed).
const BARGE_REASK_MS: u64 = 200;

/// The longest a turn waits for the VAD to confirm or drop voice it heard beginning: webrtc-vad
/// confirms speech about 140 ms after its first voiced frame (docs/benchmarks.md).
const ONSET_SETTLE_MS: u64 = 300;

/// Settings of the orchestrator (from the host configuration).
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    pub output: AudioFormat,
    /// End the user's turn after this much silence following interim text without a final.
    pub silence_timeout_ms: u64,
    /// After the VAD's end of speech, how long the turn waits for the recogniser's final.
    pub finalize_wait_ms: u64,
    /// A paused reply resumes after this long if no real words follow.
    pub pause_timeout_ms: u64,
    /// An LLM stream silent this long (no token, no end) is ended with an error.
    pub llm_stall_ms: u64,
    /// A text-to-speech stream that owes audio and stays silent this long is ended with an error.
    pub tts_stall_ms: u64,
    /// How far ahead of real time agent audio is sent.
    pub lead_ms: u64,
    pub chunk_ms: u32,
    pub max_sentence_chars: usize,
    /// Never cut a protected sentence (`TTS_PROTECTED_PHRASES`).
    pub protect_phrases: bool,
    /// Sentences matching any of these are protected.
    pub protected_patterns: Arc<Vec<Regex>>,
    pub greeting: Option<String>,
    pub memory_turns: usize,
    pub memory_chars: usize,
    /// Ask the end-of-turn policy (a `turn` plug-in serves the session); the I/O then reports
    /// pauses inside speech and answers `EndSpeech`.
    pub turn_policy: bool,
    /// The VAD's hangover: how long the user has been silent at its end of speech.
    pub vad_hangover_ms: u64,
    /// Start the reply on a final transcript before the turn is committed
    /// (`PREEMPTIVE_GENERATION`).
    pub preemptive: bool,
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        Self {
            output: AudioFormat {
                encoding: crate::audio::Encoding::Pcm16,
                sample_rate: 16_000,
            },
            silence_timeout_ms: 2500,
            finalize_wait_ms: 300,
            pause_timeout_ms: 2000,
            llm_stall_ms: 10_000,
            tts_stall_ms: 10_000,
            lead_ms: 200,
            chunk_ms: 20,
            max_sentence_chars: 120,
            protect_phrases: true,
            protected_patterns: Arc::new(Vec::new()),
            greeting: None,
            memory_turns: 20,
            memory_chars: 8000,
            turn_policy: false,
            vad_hangover_ms: 600,
            preemptive: false,
        }
    }
}

/// The coarse state, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Listening,
    Thinking,
    Speaking,
}

/// The user's speech being collected into a turn.
#[derive(Debug, Default)]
struct UserInput {
    finals: String,
    interim: String,
    vad_speaking: bool,
    speech_started_at: Option<u64>,
    speech_end_at: Option<u64>,
    last_text_at: Option<u64>,
    /// Something says the utterance is over (the VAD's end of speech, the recogniser's
    /// endpoint, or a final while the VAD heard nothing); the turn ends once the VAD is quiet
    /// and no finalize result is awaited.
    ended: bool,
    /// After the VAD's end of speech: the recogniser's answer to `Finalize` is awaited until then.
    finalize_until: Option<u64>,
    /// First voice of this turn (speech may pause and resume within it).
    first_voice_at: Option<u64>,
    /// When the voice last stopped, while the user is silent (a pause or after the end of speech).
    silent_since: Option<u64>,
    /// Where the voice stopped on the audio clock, at the last pause (the end of speech the
    /// policy brings forward is reported from there).
    paused_at_ms: Option<u64>,
    /// The end-of-turn policy's say in this turn.
    policy: TurnPolicyState,
    /// When the VAD heard voice it has not confirmed as speech yet (`VadTransition::Onset`),
    /// until `SpeechStart` or `FalseOnset` settles it.
    onset: Option<u64>,
    /// Until when the turn waits for the VAD to settle voice it heard beginning: the user may
    /// be going on. Bounded (`ONSET_SETTLE_MS`), so voice never settled (the audio stopped
    /// coming) does not hold the turn.
    settling_until: Option<u64>,
}

impl UserInput {
    fn text(&self) -> String {
        join_words(&self.finals, &self.interim)
    }

    fn has_text(&self) -> bool {
        !self.finals.trim().is_empty() || !self.interim.trim().is_empty()
    }

    fn reset(&mut self) {
        let speaking = self.vad_speaking;
        let started = self.speech_started_at;
        let onset = self.onset;
        *self = UserInput::default();
        // Voice beginning is the next utterance's.
        self.onset = onset;
        // A user still speaking keeps their speech state for the next turn.
        if speaking {
            self.vad_speaking = true;
            self.speech_started_at = started;
        }
    }
}

/// A sentence's span in the text sent to TTS.
#[derive(Debug, Clone, Copy)]
struct Span {
    end_char: usize,
    protected: bool,
}

/// Timestamps of one reply (session clock, ms).
#[derive(Debug, Default, Clone)]
struct Marks {
    speech_end: Option<u64>,
    turn_end: u64,
    plugins_ms: Option<f64>,
    llm_first_token: Option<u64>,
    first_sentence: Option<u64>,
    tts_first_audio: Option<u64>,
}

/// Where the reply's text-to-speech stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tts {
    /// No sentence yet (no stream opened).
    Idle,
    /// Open. It owes audio since `owed_since` (None: nothing owed): for a sentence sent and
    /// not yet answered with audio, and after the flush until it is done.
    Open {
        owed_since: Option<u64>,
        flushed: bool,
    },
    /// Finished normally: all text was synthesised.
    Done,
}

/// The reply being produced.
#[derive(Debug)]
struct Reply {
    turn: u32,
    /// The plan request whose answer it waits for (answers to any other are stale).
    plan: u32,
    planned: bool,
    aggregator: SentenceAggregator,
    /// Clean text generated so far (what the client was shown).
    text: String,
    /// Text sent to TTS so far, sentences joined by a space.
    spoken: String,
    spoken_chars: usize,
    spans: Vec<Span>,
    /// When the LLM stream was opened or last reported (None: no LLM stream open).
    llm_last_at: Option<u64>,
    llm_done: bool,
    /// The reply broke off (LLM error or stall): it ends interrupted at what was heard.
    broken: bool,
    tts: Tts,
    playout: Playout,
    marks: Marks,
}

impl Reply {
    fn state(&self) -> State {
        if self.playout.started() {
            State::Speaking
        } else {
            State::Thinking
        }
    }

    /// Since when the reply waits for the user, who spoke before any of it was heard.
    fn held_for_user(&self) -> Option<u64> {
        self.playout
            .paused_since()
            .filter(|_| !self.playout.started())
    }

    fn protected_at(&self, chars: usize) -> bool {
        self.spans
            .iter()
            .find(|s| chars < s.end_char)
            .is_some_and(|s| s.protected)
    }

    fn tts_done(&self) -> bool {
        self.tts == Tts::Done
    }

    fn finished(&self, now: u64) -> bool {
        self.planned
            && self.llm_done
            && self.tts_done()
            && !self.playout.queued()
            && now >= self.playout.play_end()
    }

    /// Characters of `spoken` the user has heard by `now`.
    fn chars_heard(&self, now: u64) -> usize {
        let heard_ms = self.playout.heard_ms(now);
        self.playout
            .chars_heard(heard_ms, &self.spoken, self.tts_done())
    }

    /// The words of the reply the user has heard by `now`.
    fn heard(&self, now: u64) -> String {
        heard_prefix(&self.spoken, self.chars_heard(now))
    }
}

/// A barge-in being judged.
#[derive(Debug)]
struct BargeIn {
    turn: u32,
    seq: u32,
    last_decision: Option<BargeInDecision>,
    last_asked_at: u64,
    paused_at: Option<u64>,
    /// Words of utterances the user finished while the policy still answered `wait`: they
    /// become the next user turn (at the interruption, or when the reply ends).
    held: String,
    held_speech_end: Option<u64>,
}

/// What is left of a reply that a barge-in stopped, in case the barge-in turns out to have
/// been no words at all (the recogniser's final came back empty).
#[derive(Debug)]
struct Resumable {
    /// Complete sentences the user had not heard yet.
    text: String,
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
            self.reply = Some(self.new_reply(0, 0, now, None));
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

    // ---- preemptive generation (see `preemption.rs`) ----

    /// After every event: drop a speculation whose words or memory no longer hold, and start
    /// one when the user's words are final and their utterance is ending.
    fn review_speculation(&mut self, now: u64, out: &mut Vec<Action>) {
        // Runs after every event (audio pacing included): nothing is built unless a speculation
        // lives or may start.
        if self.speculation.is_none() && !self.likely_end(now) {
            return;
        }
        let text = self.user.text();
        let revision = self.memory.revision();
        // Once started, it lives while its words do: voice without new words (a breath, a
        // cough) or a policy's hold leaves it be.
        let stale = self
            .speculation
            .as_ref()
            .is_some_and(|s| !self.may_speculate() || !s.is_for(self.next_turn, &text, revision));
        if stale {
            self.drop_speculation(out);
        }
        if self.speculation.is_some() || !self.likely_end(now) {
            return;
        }
        let turn = self.next_turn;
        self.plan_seq += 1;
        let plan = self.plan_seq;
        self.speculation = Some(Speculation::new(turn, plan, text.clone(), revision, now));
        out.push(Action::PlanReply {
            turn,
            plan,
            user_text: text,
            history: self.memory.messages(),
        });
    }

    /// Whether the user's turn is likely over, enough to start its reply: nothing else is in
    /// flight, the words are final, and the recogniser or the VAD says the utterance ended (or
    /// the user is silent) while no end-of-turn policy holds it open. Interim words are no
    /// basis, even when the policy ended the turn on them: offline they are up to a second
    /// stale, and a wasted generation on the local model slows the real one (measured in
    /// docs/benchmarks.md, "Speech end -> first agent audio").
    fn likely_end(&self, now: u64) -> bool {
        let u = &self.user;
        self.may_speculate()
            && u.interim.trim().is_empty()
            && !u.finals.trim().is_empty()
            && (u.ended || !u.vad_speaking || u.silent_since.is_some())
            && !u.policy.waits(now)
    }

    /// Whether a speculation may run at all: preemption is on, and no reply is in flight (its
    /// LLM stream and turn number are the reply's) nor a barge-in being judged.
    fn may_speculate(&self) -> bool {
        self.cfg.preemptive
            && !self.closed
            && !self.draining
            && self.reply.is_none()
            && self.barge.is_none()
    }

    /// The speculation is void: its stream is dropped, nothing of it was shown.
    fn drop_speculation(&mut self, out: &mut Vec<Action>) {
        let Some(s) = self.speculation.take() else {
            return;
        };
        out.push(Action::CancelLlm { turn: s.turn });
        if s.started_llm() {
            out.push(Action::Preempted(Preemption::Wasted));
        }
    }

    /// Takes a turn number for a new reply. A speculation still open at this point was for
    /// other words: it is dropped first, so its stream cannot speak for the new reply.
    fn claim_turn(&mut self, out: &mut Vec<Action>) -> u32 {
        self.drop_speculation(out);
        let turn = self.next_turn;
        self.next_turn += 1;
        turn
    }

    /// End a reply whose provider went quiet without finishing or failing.
    fn watch_stalls(&mut self, now: u64, out: &mut Vec<Action>) {
        let Some(r) = &self.reply else { return };
        let turn = r.turn;
        let llm_stalled = !r.llm_done
            && r.llm_last_at
                .is_some_and(|t| now >= t + self.cfg.llm_stall_ms);
        let tts_stalled = matches!(r.tts, Tts::Open { owed_since: Some(t), .. } if now >= t + self.cfg.tts_stall_ms);
        if llm_stalled {
            out.push(Action::CancelLlm { turn });
            let error = ProviderError::new(
                ProviderErrorKind::Unavailable,
                "llm",
                "the language model stopped responding",
            );
            self.on_llm(now, turn, LlmEvent::Error(error), out);
        }
        if tts_stalled {
            let error = ProviderError::new(
                ProviderErrorKind::Unavailable,
                "tts",
                "speech synthesis stopped responding",
            );
            self.tts_failed(now, error, out);
        }
    }

    /// When unfinished user text becomes a turn for want of an end: `silence_timeout_ms` after
    /// the later of the last words and the end of speech. This is the one rule that ends a turn
    /// while the VAD may still hear "speech": steady noise must not hold a turn open for ever.
    fn silence_deadline(&self) -> Option<u64> {
        let u = &self.user;
        if !u.has_text() {
            return None;
        }
        let last = u.last_text_at?.max(u.speech_end_at.unwrap_or(0));
        Some(last + self.cfg.silence_timeout_ms)
    }

    fn barge_undecided(&self) -> bool {
        self.barge.as_ref().is_some_and(|b| {
            b.paused_at.is_none()
                && matches!(b.last_decision, None | Some(BargeInDecision::Wait))
                && (self.user.vad_speaking || self.user.has_text() || !b.held.is_empty())
        })
    }

    /// The words of the barge-in so far (held utterances and what the user is saying now).
    fn barge_words(&self) -> Option<String> {
        let b = self.barge.as_ref()?;
        Some(join_words(&b.held, &self.user.text()))
    }

    fn reply_for(&mut self, turn: u32) -> Option<&mut Reply> {
        self.reply.as_mut().filter(|r| r.turn == turn)
    }

    fn new_reply(&self, turn: u32, plan: u32, now: u64, speech_end: Option<u64>) -> Reply {
        let mut playout = Playout::new(self.cfg.output, self.cfg.lead_ms, self.cfg.chunk_ms);
        if self.user.has_text() || self.user.onset.is_some() {
            // The user is already saying more (a turn of held words, a typed turn, voice the VAD
            // is hearing): the reply waits for them as if they had begun after it
            // (`hold_unheard_reply`). Speech without words does not hold a new reply: the
            // silence timeout ends a turn under steady noise, and its reply must not wait for
            // that noise too.
            playout.pause(now);
        }
        Reply {
            turn,
            plan,
            planned: false,
            aggregator: SentenceAggregator::new(self.cfg.max_sentence_chars),
            text: String::new(),
            spoken: String::new(),
            spoken_chars: 0,
            spans: Vec::new(),
            llm_last_at: None,
            llm_done: false,
            broken: false,
            tts: Tts::Idle,
            playout,
            marks: Marks {
                speech_end,
                turn_end: now,
                ..Default::default()
            },
        }
    }

    // ---- user speech ----

    fn on_vad(&mut self, now: u64, t: VadTransition, out: &mut Vec<Action>) {
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

    // ---- the end-of-turn policy (see `turn_policy.rs`) ----

    /// Asks the end-of-turn policy about the user's turn, when one serves the session and the
    /// user holds the floor (a barge-in is the barge-in policy's).
    fn ask_turn(&mut self, now: u64, trigger: TurnTrigger, out: &mut Vec<Action>) {
        if !self.cfg.turn_policy || self.barge.is_some() || self.draining {
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
        let agent_last_sentence = self
            .memory
            .last_of(Role::Assistant)
            .map(|m| last_sentence(&m.content).to_string())
            .unwrap_or_default();
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
            agent_last_sentence,
            turn: self.next_turn,
        };
        self.user.policy.asked(seq, now);
        out.push(Action::AskTurn { seq, event });
    }

    fn on_turn_decision(
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

    fn on_stt(&mut self, now: u64, e: SttEvent, out: &mut Vec<Action>) {
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

    /// New words while the user is silent: the end-of-turn policy may judge them.
    fn ask_about_words(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.user.silent_since.is_some() && !self.user.policy.ended() {
            self.ask_turn(now, TurnTrigger::Transcript, out);
        }
    }

    /// End the user's turn once nothing holds it open: the VAD is quiet, something said the
    /// utterance ended and no finalize result is awaited any more (or the silence timeout).
    fn check_user_turn(&mut self, now: u64, out: &mut Vec<Action>) {
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

    fn send_transcript(&self, out: &mut Vec<Action>) {
        out.push(Action::Send(ServerMessage::Transcript {
            turn: self.next_turn,
            text: self.user.text(),
            is_final: false,
        }));
    }

    fn on_user_text(&mut self, now: u64, text: String, out: &mut Vec<Action>) {
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

    /// New words from the user: judge them as a barge-in while the agent speaks.
    fn on_user_words(&mut self, now: u64, out: &mut Vec<Action>) {
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

    /// The user speaks before any of the reply was heard (they had only paused): its audio
    /// waits, so the agent does not start talking over them. Their utterance decides: words
    /// make it a new turn that replaces the reply (`end_user_turn`), none let the reply play
    /// (`release_unheard_reply`).
    fn hold_unheard_reply(&mut self, now: u64) {
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
    fn drop_unheard_reply(&mut self, now: u64, out: &mut Vec<Action>) {
        let unheard = self.reply.as_ref().is_some_and(|r| !r.playout.started());
        if unheard && !self.draining {
            self.cancel_reply(now, out);
        }
    }

    /// When a reply waiting for the user plays anyway: voice without words for the pause
    /// timeout (steady noise), counted from the latest voice that may be beginning. Words hold
    /// it until their utterance ends.
    fn unheard_hold_ends_at(&self) -> Option<u64> {
        let held = self.reply.as_ref()?.held_for_user()?;
        let since = held.max(self.user.onset.unwrap_or(0));
        (!self.user.has_text()).then_some(since + self.cfg.pause_timeout_ms)
    }

    /// The user's voice came to nothing: the reply that waited for them plays.
    fn release_unheard_reply(&mut self, now: u64, out: &mut Vec<Action>) {
        if let Some(r) = &mut self.reply {
            if r.held_for_user().is_some() {
                r.playout.resume(now);
                r.playout.pump(now, |c| out.push(Action::SendAudio(c)));
            }
        }
    }

    fn maybe_start_barge_in(&mut self, now: u64, out: &mut Vec<Action>) {
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

    fn ask_barge_in(&mut self, now: u64, out: &mut Vec<Action>) {
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

    fn on_decision(
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
    fn drop_barge(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.barge.as_ref().is_some_and(|b| b.paused_at.is_some()) {
            self.resume(now, out);
        }
        self.barge = None;
    }

    fn resume(&mut self, now: u64, out: &mut Vec<Action>) {
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
    fn barge_interrupt(&mut self, now: u64, out: &mut Vec<Action>) {
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
    fn take_held(&mut self) -> String {
        self.barge
            .as_mut()
            .map(|b| std::mem::take(&mut b.held))
            .unwrap_or_default()
    }

    /// The user finished an utterance (its text may be empty).
    fn end_user_turn(&mut self, now: u64, by: TurnEnd, out: &mut Vec<Action>) {
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
        self.end_reply_for_new_turn(now, out);
        self.start_turn(now, text, speech_end, by, out);
    }

    /// An utterance ended with no words (noise, or a recogniser that revised its guess to
    /// nothing). If it had interrupted a reply, the agent goes on with what it had left to say.
    fn on_empty_utterance(&mut self, now: u64, out: &mut Vec<Action>) {
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
        self.reply = Some(self.new_reply(turn, 0, now, None));
        self.speak_direct(now, &text, out);
    }

    /// A new user turn replaces the reply in flight: if it was already playing, memory keeps
    /// what the user heard of it.
    fn end_reply_for_new_turn(&mut self, now: u64, out: &mut Vec<Action>) {
        self.barge = None;
        self.resumable = None;
        if self
            .reply
            .as_ref()
            .is_some_and(|r| r.state() == State::Speaking)
        {
            self.interrupt(now, out);
        } else {
            self.cancel_reply(now, out);
        }
    }

    fn start_turn(
        &mut self,
        now: u64,
        text: String,
        speech_end: Option<u64>,
        by: TurnEnd,
        out: &mut Vec<Action>,
    ) {
        let revision = self.memory.revision();
        let taken = self
            .speculation
            .take_if(|s| s.fits(self.next_turn, &text, revision));
        let turn = self.claim_turn(out);
        out.push(Action::Send(ServerMessage::Transcript {
            turn,
            text: text.clone(),
            is_final: true,
        }));
        out.push(Action::TurnCommitted {
            turn,
            user_text: text.clone(),
            by,
        });
        let history = self.memory.messages();
        self.memory.push(Role::User, &text);
        match taken {
            Some(s) => self.take_over(now, s, speech_end, out),
            None => {
                self.plan_seq += 1;
                let plan = self.plan_seq;
                self.reply = Some(self.new_reply(turn, plan, now, speech_end));
                out.push(Action::PlanReply {
                    turn,
                    plan,
                    user_text: text,
                    history,
                });
            }
        }
    }

    /// The committed turn is the one a speculation was started on: it becomes the reply, and
    /// what its stream said so far is taken in order, as if it had come just now.
    fn take_over(
        &mut self,
        now: u64,
        s: Speculation,
        speech_end: Option<u64>,
        out: &mut Vec<Action>,
    ) {
        let turn = s.turn;
        if s.started_llm() {
            out.push(Action::Preempted(Preemption::Used));
        }
        let mut reply = self.new_reply(turn, s.plan, now, speech_end);
        match s.planned {
            // Its plan is still running: the answer comes to the reply. (A failed stream never
            // fits a turn, so it is not taken over.)
            Planned::Pending | Planned::Failed => self.reply = Some(reply),
            Planned::Direct { text, plugins_ms } => {
                reply.marks.plugins_ms = Some(plugins_ms);
                self.reply = Some(reply);
                self.speak_direct(now, &text, out);
            }
            Planned::Llm { plugins_ms } => {
                reply.marks.plugins_ms = Some(plugins_ms);
                reply.planned = true;
                reply.llm_last_at = Some(s.llm_last_at);
                self.reply = Some(reply);
                for event in s.llm {
                    self.on_llm(now, turn, event, out);
                }
            }
        }
    }

    // ---- the reply ----

    fn on_planned(
        &mut self,
        now: u64,
        turn: u32,
        plan: u32,
        output: PromptOutput,
        plugins_ms: f64,
        out: &mut Vec<Action>,
    ) {
        let Some(r) = self.reply_for(turn) else {
            return;
        };
        if r.planned || r.plan != plan {
            return;
        }
        r.marks.plugins_ms = Some(plugins_ms);
        match output {
            PromptOutput::Llm { messages, settings } => {
                r.planned = true;
                r.llm_last_at = Some(now);
                out.push(Action::StartLlm {
                    turn,
                    messages,
                    settings,
                });
            }
            PromptOutput::Direct { text } => self.speak_direct(now, &text, out),
        }
    }

    /// Speak a fixed text (greeting, a plug-in's direct reply, the rest of a reply a false
    /// barge-in stopped) as if the LLM had produced it.
    fn speak_direct(&mut self, now: u64, text: &str, out: &mut Vec<Action>) {
        let Some(r) = &mut self.reply else {
            return;
        };
        r.planned = true;
        let turn = r.turn;
        self.on_llm(now, turn, LlmEvent::Token(text.to_string()), out);
        self.on_llm(
            now,
            turn,
            LlmEvent::Done {
                finish_reason: Some("direct".into()),
                usage: None,
            },
            out,
        );
    }

    fn on_llm(&mut self, now: u64, turn: u32, event: LlmEvent, out: &mut Vec<Action>) {
        let patterns = self.cfg.protected_patterns.clone();
        let Some(r) = self.reply_for(turn) else {
            return;
        };
        if r.llm_done {
            return;
        }
        if r.llm_last_at.is_some() {
            r.llm_last_at = Some(now);
        }
        let pushed: Pushed = match event {
            // Alive, nothing to say yet: only the stall watchdog hears of it (above).
            LlmEvent::Working => return,
            LlmEvent::Token(token) => {
                r.marks.llm_first_token.get_or_insert(now);
                r.aggregator.push(&token)
            }
            LlmEvent::Done { .. } => {
                r.llm_done = true;
                r.aggregator.finish()
            }
            LlmEvent::Error(error) => {
                r.llm_done = true;
                r.broken = true;
                out.push(Action::Send(ServerMessage::error(
                    error.client_code(),
                    format!("the reply could not be generated: {error}"),
                    false,
                )));
                // Only whole sentences are spoken: a fragment is dropped.
                r.aggregator.abandon()
            }
        };
        if !pushed.delta.is_empty() {
            r.text.push_str(&pushed.delta);
            out.push(Action::Send(ServerMessage::AgentText {
                turn,
                delta: pushed.delta,
            }));
        }
        for Sentence { text, protected } in pushed.sentences {
            let protected = protected || patterns.iter().any(|p| p.is_match(&text));
            match &mut r.tts {
                Tts::Idle => {
                    r.tts = Tts::Open {
                        owed_since: Some(now),
                        flushed: false,
                    };
                    out.push(Action::StartTts { turn });
                }
                Tts::Open { owed_since, .. } => {
                    owed_since.get_or_insert(now);
                }
                Tts::Done => {}
            }
            r.marks.first_sentence.get_or_insert(now);
            if !r.spoken.is_empty() {
                r.spoken.push(' ');
                r.spoken_chars += 1;
            }
            r.spoken.push_str(&text);
            r.spoken_chars += text.chars().count();
            r.spans.push(Span {
                end_char: r.spoken_chars,
                protected,
            });
            out.push(Action::SpeakSentence { turn, text });
        }
        if r.llm_done {
            if let Tts::Open {
                owed_since,
                flushed,
            } = &mut r.tts
            {
                owed_since.get_or_insert(now);
                *flushed = true;
                out.push(Action::FlushTts { turn });
            } else {
                // Nothing to say: the reply is complete without audio.
                r.tts = Tts::Done;
            }
        }
    }

    /// Text-to-speech failed (or stalled): nothing more of the reply can be heard. It ends now,
    /// interrupted at what the user heard; the client flushes what it buffered.
    fn tts_failed(&mut self, now: u64, error: ProviderError, out: &mut Vec<Action>) {
        out.push(Action::Send(ServerMessage::error(
            error.client_code(),
            format!("speech synthesis failed: {error}"),
            false,
        )));
        if let Some(r) = &mut self.reply {
            // What was synthesised is not all that was sent: heard text is estimated from time.
            r.tts = Tts::Open {
                owed_since: None,
                flushed: false,
            };
        }
        let held = self.take_held();
        self.barge = None;
        self.interrupt(now, out);
        if !held.is_empty() && !self.draining {
            self.start_turn(now, held, None, TurnEnd::HeldWords, out);
        }
    }

    /// Stop the reply now; memory keeps only what the user heard. Returns what was left unsaid.
    fn interrupt(&mut self, now: u64, out: &mut Vec<Action>) -> Option<Resumable> {
        let r = self.reply.take()?;
        self.barge = None;
        let heard = r.heard(now);
        out.push(Action::CancelLlm { turn: r.turn });
        out.push(Action::CancelTts { turn: r.turn });
        out.push(Action::Send(ServerMessage::Interrupt { turn: r.turn }));
        out.push(Action::Send(ServerMessage::AgentDone {
            turn: r.turn,
            text: heard.clone(),
            interrupted: true,
        }));
        self.memory.push(Role::Assistant, &strip_markers(&heard));
        out.push(Action::Metrics(metrics(&r)));
        let rest = r.spoken[heard.len()..].trim().to_string();
        Some(Resumable { text: rest })
    }

    /// Drop a reply (a newer turn replaces it, or the session ends). Its turn still gets an
    /// `agent_done`, so the client knows what became of it; `interrupt` flushes any audio.
    fn cancel_reply(&mut self, now: u64, out: &mut Vec<Action>) {
        if self
            .reply
            .as_ref()
            .is_some_and(|r| r.state() == State::Speaking)
        {
            self.interrupt(now, out);
            return;
        }
        let Some(r) = self.reply.take() else { return };
        self.barge = None;
        out.push(Action::CancelLlm { turn: r.turn });
        out.push(Action::CancelTts { turn: r.turn });
        if !r.text.is_empty() {
            // The client was shown text of it: drop it.
            out.push(Action::Send(ServerMessage::Interrupt { turn: r.turn }));
        }
        out.push(Action::Send(ServerMessage::AgentDone {
            turn: r.turn,
            text: String::new(),
            interrupted: true,
        }));
    }

    fn finish_reply(&mut self, now: u64, out: &mut Vec<Action>) {
        let Some(r) = self.reply.take() else { return };
        let held = self.take_held();
        self.barge = None;
        // A reply that broke off keeps what was heard (all of its whole sentences, by now).
        let text = if r.broken {
            r.heard(now)
        } else {
            r.text.clone()
        };
        out.push(Action::Send(ServerMessage::AgentDone {
            turn: r.turn,
            text: text.clone(),
            interrupted: r.broken,
        }));
        self.memory.push(Role::Assistant, &text);
        out.push(Action::Metrics(metrics(&r)));
        if self.draining {
            self.close(close::GOING_AWAY, "server shutting down", out);
            return;
        }
        // Words the user finished during the reply, still held back when it ended: the next turn.
        if !held.is_empty() {
            self.start_turn(now, held, None, TurnEnd::HeldWords, out);
        }
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

/// Lowercase words without punctuation, for comparing transcripts.
fn clamp_ms(ms: u64) -> u32 {
    ms.try_into().unwrap_or(u32::MAX)
}

fn normalise(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `late` (a final) repeats words of `done` (a turn already taken from interim text):
/// its words appear in `done` as a run of whole words ("no" is not in "i don't know").
fn is_late_final_of(done: &str, late: &str) -> bool {
    let late = normalise(late);
    if late.is_empty() {
        return false;
    }
    let done: Vec<&str> = done.split(' ').collect();
    let late: Vec<&str> = late.split(' ').collect();
    done.windows(late.len()).any(|w| w == late.as_slice())
}

/// Words that take the turn: not empty and not only a backchannel ("uh-huh", "yeah").
fn is_real_words(text: &str) -> bool {
    !text.trim().is_empty() && !is_backchannel(text)
}

fn push_words(buf: &mut String, text: &str) {
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    if !buf.is_empty() {
        buf.push(' ');
    }
    buf.push_str(text);
}

fn join_words(a: &str, b: &str) -> String {
    let mut s = a.trim().to_string();
    push_words(&mut s, b);
    s
}

fn metrics(r: &Reply) -> TurnMetrics {
    let base = r.marks.speech_end.unwrap_or(r.marks.turn_end);
    let since = |t: Option<u64>| t.map(|t| t.saturating_sub(base));
    TurnMetrics {
        turn: r.turn,
        speech_end_ms: r.marks.speech_end,
        transcript_final_ms: r
            .marks
            .speech_end
            .map(|s| r.marks.turn_end.saturating_sub(s)),
        plugins_ms: r.marks.plugins_ms,
        llm_first_token_ms: since(r.marks.llm_first_token),
        first_sentence_ms: since(r.marks.first_sentence),
        tts_first_audio_ms: since(r.marks.tts_first_audio),
        first_audio_sent_ms: since(r.playout.first_sent_at()),
        host_processing_ms: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::is_late_final_of;

    #[test]
    fn a_late_final_is_compared_by_whole_words() {
        assert!(is_late_final_of("i don't know", "don't know"));
        assert!(!is_late_final_of("i don't know", "no"));
        assert!(!is_late_final_of("i don't know", ""));
    }
}
