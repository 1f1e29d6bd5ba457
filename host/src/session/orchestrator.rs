//! The turn orchestrator: a pure, synchronous state machine per session. It is fed events with the
//! time they happen and answers with actions; it does no I/O, so every transition is unit-tested.
//!
//! States: Listening (no reply), Thinking (a reply is being planned or generated, nothing heard
//! yet) and Speaking (reply audio is going out). Barge-in, pauses and cancellation are sub-states
//! of Speaking.

use super::aggregator::{strip_markers, Sentence, SentenceAggregator};
use super::events::{Action, Event};
use super::memory::Memory;
use super::playout::{heard_prefix, Playout};
use crate::audio::{AudioFormat, VadTransition};
use crate::behaviour::defaults::is_backchannel;
use crate::behaviour::{BargeInDecision, BargeInEvent, PromptOutput, Role};
use crate::providers::{LlmEvent, SttEvent};
use crate::transport::protocol::{close, ServerMessage, TurnMetrics, VadEventKind};
use regex::Regex;
use std::sync::Arc;

/// How often an undecided barge-in is judged again while nothing new is heard (the agent's spoken
/// time or the protected state may have changed).
const BARGE_REASK_MS: u64 = 200;

/// Settings of the orchestrator (from the host configuration).
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    pub output: AudioFormat,
    /// End the user's turn after this much silence following interim text without a final.
    pub silence_timeout_ms: u64,
    /// A paused reply resumes after this long if no real words follow.
    pub pause_timeout_ms: u64,
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
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        Self {
            output: AudioFormat {
                encoding: crate::audio::Encoding::Pcm16,
                sample_rate: 16_000,
            },
            silence_timeout_ms: 2500,
            pause_timeout_ms: 2000,
            lead_ms: 200,
            chunk_ms: 20,
            max_sentence_chars: 120,
            protect_phrases: true,
            protected_patterns: Arc::new(Vec::new()),
            greeting: None,
            memory_turns: 20,
            memory_chars: 8000,
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
}

impl UserInput {
    fn text(&self) -> String {
        let mut t = self.finals.trim().to_string();
        let interim = self.interim.trim();
        if !interim.is_empty() {
            if !t.is_empty() {
                t.push(' ');
            }
            t.push_str(interim);
        }
        t
    }

    fn has_text(&self) -> bool {
        !self.finals.trim().is_empty() || !self.interim.trim().is_empty()
    }

    fn reset(&mut self) {
        let speaking = self.vad_speaking;
        let started = self.speech_started_at;
        *self = UserInput::default();
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

/// The reply being produced.
#[derive(Debug)]
struct Reply {
    turn: u32,
    planned: bool,
    aggregator: SentenceAggregator,
    /// Clean text generated so far (what the client was shown).
    text: String,
    /// Text sent to TTS so far, sentences joined by a space.
    spoken: String,
    spoken_chars: usize,
    spans: Vec<Span>,
    llm_done: bool,
    tts_done: bool,
    tts_started: bool,
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

    fn protected_at(&self, chars: usize) -> bool {
        self.spans
            .iter()
            .find(|s| chars < s.end_char)
            .is_some_and(|s| s.protected)
    }

    fn finished(&self, now: u64) -> bool {
        self.planned
            && self.llm_done
            && self.tts_done
            && !self.playout.queued()
            && now >= self.playout.play_end()
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
    /// What the user said during a reply that neither interrupted it nor was a backchannel; it
    /// becomes a turn when the reply ends.
    held_user_text: String,
    ask_seq: u32,
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
            held_user_text: String::new(),
            ask_seq: 0,
            draining: false,
            closed: false,
        }
    }

    /// The conversation memory (for tests and diagnostics).
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    pub fn state(&self) -> State {
        self.reply.as_ref().map_or(State::Listening, Reply::state)
    }

    /// Begin the session: speak the greeting if one is configured (as turn 0).
    pub fn start(&mut self, now: u64, out: &mut Vec<Action>) {
        if let Some(greeting) = self.cfg.greeting.clone().filter(|g| !g.trim().is_empty()) {
            let mut reply = self.new_reply(0, now, None);
            reply.planned = true;
            self.reply = Some(reply);
            self.speak_direct(now, &greeting, out);
        }
    }

    /// When the orchestrator next needs a `Tick` (session clock), if at all.
    pub fn next_wakeup(&self) -> Option<u64> {
        let mut at: Option<u64> = None;
        let mut consider = |t: Option<u64>| {
            if let Some(t) = t {
                at = Some(at.map_or(t, |a| a.min(t)));
            }
        };
        if let Some(r) = &self.reply {
            consider(r.playout.next_send_at());
            if r.planned && r.llm_done && r.tts_done && !r.playout.queued() {
                consider(Some(r.playout.play_end()));
            }
        }
        consider(self.silence_deadline());
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
            Event::Playback { played_ms } => {
                if let Some(r) = &mut self.reply {
                    r.playout.report_played(played_ms);
                }
            }
            Event::ReplyPlanned {
                turn,
                output,
                plugins_ms,
            } => self.on_planned(now, turn, output, plugins_ms, out),
            Event::Llm { turn, event } => self.on_llm(now, turn, event, out),
            Event::TtsAudio {
                turn,
                bytes,
                alignment,
            } => {
                if let Some(r) = self.reply_for(turn) {
                    r.marks.tts_first_audio.get_or_insert(now);
                    r.playout.push(&bytes, alignment.as_ref());
                }
            }
            Event::TtsDone { turn } => {
                if let Some(r) = self.reply_for(turn) {
                    r.tts_done = true;
                }
            }
            Event::TtsError { turn, error } => {
                if let Some(r) = self.reply_for(turn) {
                    r.tts_done = true;
                    out.push(Action::Send(ServerMessage::error(
                        error.client_code(),
                        format!("speech synthesis failed: {error}"),
                        false,
                    )));
                }
            }
            Event::BargeInDecided {
                turn,
                seq,
                decision,
            } => self.on_decision(now, turn, seq, decision, out),
            Event::Tick => {}
            Event::Stop => {
                self.cancel_reply(out);
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
        if let Some(r) = &mut self.reply {
            r.playout
                .pump(now, |chunk| out.push(Action::SendAudio(chunk)));
        }
        // Pause timeout: resume, or interrupt if real words followed.
        if let Some(paused_at) = self.barge.as_ref().and_then(|b| b.paused_at) {
            if now >= paused_at + self.cfg.pause_timeout_ms {
                let text = self.user.text();
                if !text.is_empty() && !is_backchannel(&text) {
                    self.interrupt(now, out);
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
        // Silence after interim text ends the turn.
        if self.silence_deadline().is_some_and(|at| now >= at) {
            if !self.user.interim.trim().is_empty() {
                self.timed_out_text = Some(normalise(&self.user.text()));
            }
            self.end_user_turn(now, out);
        }
        if self.reply.as_ref().is_some_and(|r| r.finished(now)) {
            self.finish_reply(now, out);
        }
        // Draining: once no reply is left (finished, interrupted or cancelled) the session ends.
        if self.draining && !self.closed && self.reply.is_none() {
            self.close(close::GOING_AWAY, "server shutting down", out);
        }
    }

    /// When unfinished user text becomes a turn for want of a final: `silence_timeout_ms` after
    /// the later of the last words and the end of speech. Not while the VAD still hears the
    /// user, so a slow recogniser never cuts a user off mid-sentence.
    fn silence_deadline(&self) -> Option<u64> {
        let u = &self.user;
        if u.vad_speaking || !u.has_text() {
            return None;
        }
        let last = u.last_text_at?.max(u.speech_end_at.unwrap_or(0));
        Some(last + self.cfg.silence_timeout_ms)
    }

    fn barge_undecided(&self) -> bool {
        self.barge.as_ref().is_some_and(|b| {
            b.paused_at.is_none()
                && matches!(b.last_decision, None | Some(BargeInDecision::Wait))
                && self.user.vad_speaking
        })
    }

    fn reply_for(&mut self, turn: u32) -> Option<&mut Reply> {
        self.reply.as_mut().filter(|r| r.turn == turn)
    }

    fn new_reply(&self, turn: u32, now: u64, speech_end: Option<u64>) -> Reply {
        Reply {
            turn,
            planned: false,
            aggregator: SentenceAggregator::new(self.cfg.max_sentence_chars),
            text: String::new(),
            spoken: String::new(),
            spoken_chars: 0,
            spans: Vec::new(),
            llm_done: false,
            tts_done: false,
            tts_started: false,
            playout: Playout::new(self.cfg.output, self.cfg.lead_ms, self.cfg.chunk_ms),
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
                self.user.vad_speaking = true;
                self.user.speech_started_at = Some(now);
                out.push(Action::Send(ServerMessage::Vad {
                    event: VadEventKind::SpeechStart,
                    at_ms,
                }));
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
                if !self.user.finals.trim().is_empty() && self.user.interim.trim().is_empty() {
                    self.end_user_turn(now, out);
                }
            }
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
                self.user.interim = text;
                self.user.last_text_at = Some(now);
                self.send_transcript(false, out);
                self.on_user_words(now, out);
            }
            SttEvent::Final {
                text, speech_final, ..
            } => {
                if let Some(done) = self.timed_out_text.take() {
                    let late = normalise(&text);
                    if !self.user.has_text() && !late.is_empty() && done.contains(&late) {
                        return; // the late final of a turn already taken
                    }
                }
                if !text.trim().is_empty() {
                    if !self.user.finals.is_empty() {
                        self.user.finals.push(' ');
                    }
                    self.user.finals.push_str(text.trim());
                    self.user.last_text_at = Some(now);
                }
                self.user.interim.clear();
                if !self.user.has_text() {
                    return;
                }
                self.send_transcript(false, out);
                self.on_user_words(now, out);
                if speech_final || !self.user.vad_speaking {
                    self.end_user_turn(now, out);
                }
            }
            SttEvent::UtteranceEnd => {
                if self.user.has_text() {
                    self.end_user_turn(now, out);
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

    fn send_transcript(&self, is_final: bool, out: &mut Vec<Action>) {
        out.push(Action::Send(ServerMessage::Transcript {
            turn: self.next_turn,
            text: self.user.text(),
            is_final,
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
        // A typed turn is deliberate: it replaces whatever reply is in flight.
        if self
            .reply
            .as_ref()
            .is_some_and(|r| r.state() == State::Speaking)
        {
            self.interrupt(now, out);
        }
        self.user = UserInput {
            finals: text,
            ..Default::default()
        };
        self.end_user_turn(now, out);
    }

    /// New words from the user: judge them as a barge-in while the agent speaks.
    fn on_user_words(&mut self, now: u64, out: &mut Vec<Action>) {
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
            self.ask_barge_in(now, out);
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
        });
        self.ask_barge_in(now, out);
    }

    fn ask_barge_in(&mut self, now: u64, out: &mut Vec<Action>) {
        let Some(r) = &self.reply else { return };
        let Some(b) = &mut self.barge else { return };
        let heard_ms = r.playout.heard_ms(now);
        let chars = r.playout.chars_heard(heard_ms, &r.spoken, r.tts_done);
        let spoken = heard_prefix(&r.spoken, chars);
        let remaining = r.spoken[spoken.len()..].trim().to_string();
        let interim = self.user.text();
        let event = BargeInEvent {
            word_count: interim.split_whitespace().count() as u32,
            interim_text: interim,
            user_speech_ms: self
                .user
                .speech_started_at
                .map_or(0, |s| now.saturating_sub(s)) as u32,
            agent_spoken_ms: heard_ms as u32,
            spoken_text: spoken,
            remaining_text: remaining,
            protected_playing: r.protected_at(chars),
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
        let Some(b) = &mut self.barge else { return };
        if b.turn != turn || b.seq != seq || self.reply.as_ref().is_none_or(|r| r.turn != turn) {
            return; // an answer to an older question
        }
        let protected_now = self.reply.as_ref().is_some_and(|r| {
            let heard = r.playout.heard_ms(now);
            r.protected_at(r.playout.chars_heard(heard, &r.spoken, r.tts_done))
        });
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
        b.last_decision = Some(decision);
        match decision {
            BargeInDecision::Interrupt => self.interrupt(now, out),
            BargeInDecision::Pause => {
                if b.paused_at.is_none() {
                    b.paused_at = Some(now);
                    if let Some(r) = &mut self.reply {
                        r.playout.pause();
                    }
                }
            }
            BargeInDecision::Ignore => {
                if b.paused_at.is_some() {
                    self.resume(now, out);
                }
            }
            BargeInDecision::Wait => {}
        }
    }

    fn resume(&mut self, now: u64, out: &mut Vec<Action>) {
        if let Some(b) = &mut self.barge {
            b.paused_at = None;
            b.last_decision = Some(BargeInDecision::Ignore);
        }
        if let Some(r) = &mut self.reply {
            r.playout.resume();
            r.playout.pump(now, |c| out.push(Action::SendAudio(c)));
        }
    }

    /// The user finished a turn.
    fn end_user_turn(&mut self, now: u64, out: &mut Vec<Action>) {
        let text = self.user.text();
        // A spoken turn the recogniser ended (endpointing) before the local VAD's hangover did:
        // its speech ended now, as far as the host can tell.
        let spoken = self.user.speech_started_at.is_some() || self.user.speech_end_at.is_some();
        let speech_end = self.user.speech_end_at.or_else(|| spoken.then_some(now));
        self.user.reset();
        if text.is_empty() {
            return;
        }
        // Speech during a reply that did not interrupt it.
        if let Some(b) = self.barge.take() {
            if self.reply.as_ref().is_some_and(|r| r.turn == b.turn) {
                if b.paused_at.is_some() && !is_backchannel(&text) {
                    self.barge = Some(b);
                    self.interrupt(now, out);
                } else {
                    if b.paused_at.is_some() {
                        self.barge = Some(b);
                        self.resume(now, out);
                        self.barge = None;
                    }
                    if !is_backchannel(&text) {
                        push_words(&mut self.held_user_text, &text);
                    }
                    return;
                }
            }
        }
        if self.draining {
            return;
        }
        // A reply to an earlier turn gives way to the new one; if it was already playing, memory
        // keeps what the user heard of it.
        if self
            .reply
            .as_ref()
            .is_some_and(|r| r.state() == State::Speaking)
        {
            self.interrupt(now, out);
        } else if self.reply.is_some() {
            self.cancel_reply(out);
        }
        self.start_turn(now, text, speech_end, out);
    }

    fn start_turn(
        &mut self,
        now: u64,
        text: String,
        speech_end: Option<u64>,
        out: &mut Vec<Action>,
    ) {
        let turn = self.next_turn;
        self.next_turn += 1;
        out.push(Action::Send(ServerMessage::Transcript {
            turn,
            text: text.clone(),
            is_final: true,
        }));
        let history = self.memory.messages();
        self.memory.push(Role::User, &text);
        self.reply = Some(self.new_reply(turn, now, speech_end));
        out.push(Action::PlanReply {
            turn,
            user_text: text,
            history,
        });
    }

    // ---- the reply ----

    fn on_planned(
        &mut self,
        now: u64,
        turn: u32,
        output: PromptOutput,
        plugins_ms: f64,
        out: &mut Vec<Action>,
    ) {
        let Some(r) = self.reply_for(turn) else {
            return;
        };
        if r.planned {
            return;
        }
        r.planned = true;
        r.marks.plugins_ms = Some(plugins_ms);
        match output {
            PromptOutput::Llm { messages, settings } => {
                out.push(Action::StartLlm {
                    turn,
                    messages,
                    settings,
                });
            }
            PromptOutput::Direct { text } => self.speak_direct(now, &text, out),
        }
    }

    /// Speak a fixed text (greeting, or a plug-in's direct reply) as if the LLM had produced it.
    fn speak_direct(&mut self, now: u64, text: &str, out: &mut Vec<Action>) {
        let Some(turn) = self.reply.as_ref().map(|r| r.turn) else {
            return;
        };
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
        let pushed = match event {
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
                out.push(Action::Send(ServerMessage::error(
                    error.client_code(),
                    format!("the reply could not be generated: {error}"),
                    false,
                )));
                r.aggregator.finish()
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
            if !r.tts_started {
                r.tts_started = true;
                out.push(Action::StartTts { turn });
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
            if r.tts_started {
                out.push(Action::FlushTts { turn });
            } else {
                // Nothing to say: the reply is complete without audio.
                r.tts_done = true;
            }
        }
    }

    /// Stop the reply the user barged in on; keep in memory only what they heard.
    fn interrupt(&mut self, now: u64, out: &mut Vec<Action>) {
        let Some(r) = self.reply.take() else { return };
        if let Some(b) = &mut self.barge {
            b.paused_at = None;
            b.last_decision = Some(BargeInDecision::Interrupt);
        }
        let heard_ms = r.playout.heard_ms(now);
        let chars = r.playout.chars_heard(heard_ms, &r.spoken, r.tts_done);
        let heard = heard_prefix(&r.spoken, chars);
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
        // The barge-in utterance goes on as the user's next turn.
        self.barge = None;
    }

    /// Drop a reply nobody heard (or the session ends).
    fn cancel_reply(&mut self, out: &mut Vec<Action>) {
        let Some(r) = self.reply.take() else { return };
        self.barge = None;
        out.push(Action::CancelLlm { turn: r.turn });
        out.push(Action::CancelTts { turn: r.turn });
        if r.playout.started() || !r.text.is_empty() {
            out.push(Action::Send(ServerMessage::Interrupt { turn: r.turn }));
            out.push(Action::Send(ServerMessage::AgentDone {
                turn: r.turn,
                text: String::new(),
                interrupted: true,
            }));
        }
    }

    fn finish_reply(&mut self, now: u64, out: &mut Vec<Action>) {
        let Some(r) = self.reply.take() else { return };
        self.barge = None;
        out.push(Action::Send(ServerMessage::AgentDone {
            turn: r.turn,
            text: r.text.clone(),
            interrupted: false,
        }));
        self.memory.push(Role::Assistant, &r.text);
        out.push(Action::Metrics(metrics(&r)));
        if self.draining {
            self.close(close::GOING_AWAY, "server shutting down", out);
            return;
        }
        let held = std::mem::take(&mut self.held_user_text);
        if !held.is_empty() {
            self.start_turn(now, held, None, out);
        }
    }

    fn close(&mut self, code: u16, reason: &str, out: &mut Vec<Action>) {
        self.closed = true;
        out.push(Action::Close {
            code,
            reason: reason.to_string(),
        });
    }
}

/// Lowercase words without punctuation, for comparing transcripts.
fn normalise(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn push_words(buf: &mut String, text: &str) {
    if !buf.is_empty() {
        buf.push(' ');
    }
    buf.push_str(text.trim());
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
