//! One session's trace. The session's driver shows it every event it feeds the orchestrator,
//! every action it carries out and every plug-in answer; the trace keeps timestamps, and when a
//! turn ends (`agent_done`) it emits the turn's spans in one go:
//!
//! ```text
//! session                      the whole connection (root)
//! └── turn                     user speech end (or typed text) -> agent_done
//!     ├── stt                  speech end -> final transcript
//!     ├── plugin.intent        the intent analyzer's call
//!     ├── plugin.prompt        the prompt shaper's call
//!     ├── llm                  request -> last token (event: first_token)
//!     ├── tts                  stream opened -> last audio (event: first_audio)
//!     ├── playout              first audio byte sent -> the reply ended
//!     └── barge_in.decide      each barge-in policy call (attribute: the decision)
//! ```
//!
//! Every span carries `session.id` and `voice.turn`. Text (transcript, reply) appears only with
//! `OTEL_RECORD_TEXT=true`; otherwise its length does.

use crate::audio::VadTransition;
use crate::behaviour::BargeInDecision;
use crate::providers::{LlmEvent, SttEvent, Usage};
use crate::session::events::{Action, Event, Preemption};
use crate::session::plugin_worker::Answer;
use crate::transport::protocol::ServerMessage;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;
use std::time::{Duration, SystemTime};

/// Barge-in decisions kept per turn (a long barge-in asks again every few hundred ms).
const MAX_DECISIONS: usize = 32;

/// A stage of a reply that opens, may report a first output, and ends.
#[derive(Debug)]
struct Stage {
    start: SystemTime,
    first: Option<SystemTime>,
    end: Option<SystemTime>,
    /// Tokens (LLM) or sentences (TTS) handed through.
    count: u32,
    /// Ended by the host before it finished (barge-in, newer turn, session end).
    cancelled: bool,
    failed: bool,
}

impl Stage {
    fn new(start: SystemTime) -> Self {
        Self {
            start,
            first: None,
            end: None,
            count: 0,
            cancelled: false,
            failed: false,
        }
    }

    fn finish(&mut self, at: SystemTime) {
        self.end.get_or_insert(at);
    }
}

/// What is known of the user's next turn before it is committed.
#[derive(Debug, Default)]
struct Pending {
    speech_end: Option<SystemTime>,
    final_at: Option<SystemTime>,
    /// When the LLM stream of a reply started before the commit opened (preemptive
    /// generation); its span starts there if the turn takes it over.
    preempted_llm: Option<SystemTime>,
    /// The plug-in calls (intent, prompt) of that reply's plan.
    preempted_plan: Option<Calls>,
}

/// When the intent and the prompt plug-ins ran for a plan: (start, end) each.
type Calls = ((SystemTime, SystemTime), (SystemTime, SystemTime));

/// One turn, from commit to `agent_done`.
#[derive(Debug)]
struct Turn {
    turn: u32,
    start: SystemTime,
    stt: Option<(SystemTime, SystemTime)>,
    user_text: String,
    intent: Option<(SystemTime, SystemTime)>,
    prompt: Option<(SystemTime, SystemTime)>,
    llm: Option<Stage>,
    usage: Option<Usage>,
    tts: Option<Stage>,
    playout_start: Option<SystemTime>,
    interrupted_at: Option<SystemTime>,
    decisions: Vec<(SystemTime, SystemTime, BargeInDecision)>,
    /// The reply was started before the turn was committed (its stages may begin before the
    /// end of speech; the turn's span begins with the first of them).
    preempted: bool,
    /// The user went on speaking after the turn was committed, before its reply was heard.
    continued: bool,
}

/// The trace of one session (see the module docs for its spans).
pub struct SessionTrace {
    tracer: SdkTracer,
    /// Holds the session's root span; turns are its children.
    session: Context,
    session_id: String,
    record_text: bool,
    pending: Pending,
    turn: Option<Turn>,
    turns: u32,
}

impl SessionTrace {
    pub(super) fn new(tracer: SdkTracer, session_id: &str, record_text: bool) -> Self {
        let span = tracer
            .span_builder("session")
            .with_kind(SpanKind::Server)
            .with_attributes([KeyValue::new("session.id", session_id.to_string())])
            .start_with_context(&tracer, &Context::new());
        Self {
            session: Context::new().with_span(span),
            tracer,
            session_id: session_id.to_string(),
            record_text,
            pending: Pending::default(),
            turn: None,
            turns: 0,
        }
    }

    /// An event about to be fed to the orchestrator.
    pub fn on_event(&mut self, event: &Event) {
        let now = SystemTime::now;
        match event {
            Event::Vad(VadTransition::SpeechStart { .. }) => self.pending = Pending::default(),
            Event::Vad(VadTransition::SpeechEnd { .. }) => self.pending.speech_end = Some(now()),
            Event::Stt(SttEvent::Final { .. }) => {
                self.pending.final_at = Some(now());
            }
            Event::Llm { turn, event } => {
                let Some(t) = self.turn_mut(*turn) else {
                    return;
                };
                let usage = &mut t.usage;
                let Some(llm) = t.llm.as_mut() else { return };
                match event {
                    LlmEvent::Token(_) => {
                        llm.first.get_or_insert_with(now);
                        llm.count += 1;
                    }
                    LlmEvent::Working => {}
                    LlmEvent::Done { usage: u, .. } => {
                        *usage = *u;
                        llm.finish(now());
                    }
                    LlmEvent::Error(_) => {
                        llm.failed = true;
                        llm.finish(now());
                    }
                }
            }
            Event::TtsAudio { turn, .. } => {
                if let Some(tts) = self.turn_mut(*turn).and_then(|t| t.tts.as_mut()) {
                    tts.first.get_or_insert_with(now);
                }
            }
            Event::TtsDone { turn } => {
                if let Some(tts) = self.turn_mut(*turn).and_then(|t| t.tts.as_mut()) {
                    tts.finish(now());
                }
            }
            Event::TtsError { turn, .. } => {
                if let Some(tts) = self.turn_mut(*turn).and_then(|t| t.tts.as_mut()) {
                    tts.failed = true;
                    tts.finish(now());
                }
            }
            _ => {}
        }
    }

    /// An action about to be carried out.
    pub fn on_action(&mut self, action: &Action) {
        // The clock is read only where a time is kept: not for every audio frame, tick or
        // token, only for the first of each.
        let now = SystemTime::now;
        if let Action::SendAudio(_) = action {
            if let Some(t) = self.turn.as_mut() {
                t.playout_start.get_or_insert_with(now);
            }
            return;
        }
        match action {
            Action::TurnCommitted {
                turn, user_text, ..
            } => {
                let at = now();
                if let Some(old) = self.turn.take() {
                    self.emit(old, at, None, true);
                }
                let pending = std::mem::take(&mut self.pending);
                let start = pending.speech_end.unwrap_or(at);
                self.turn = Some(Turn {
                    turn: *turn,
                    start,
                    stt: pending
                        .speech_end
                        .map(|end| (end, pending.final_at.filter(|f| *f >= end).unwrap_or(at))),
                    user_text: user_text.clone(),
                    intent: None,
                    prompt: None,
                    llm: None,
                    usage: None,
                    tts: None,
                    playout_start: None,
                    interrupted_at: None,
                    decisions: Vec::new(),
                    preempted: false,
                    continued: false,
                });
                // Taken by `Preempted(Used)` if the reply started before the commit.
                self.pending.preempted_llm = pending.preempted_llm;
                self.pending.preempted_plan = pending.preempted_plan;
            }
            Action::StartLlm { turn, .. } => match self.turn_mut(*turn) {
                Some(t) => t.llm = Some(Stage::new(now())),
                None => self.pending.preempted_llm = Some(now()),
            },
            Action::Preempted(Preemption::Used) => {
                let started = self.pending.preempted_llm.take();
                let plan = self.pending.preempted_plan.take();
                if let (Some(t), Some(start)) = (self.turn.as_mut(), started) {
                    t.preempted = true;
                    t.llm = Some(Stage::new(start));
                    if let Some((intent, prompt)) = plan {
                        t.intent = Some(intent);
                        t.prompt = Some(prompt);
                    }
                    let first = plan.map_or(start, |(intent, _)| intent.0.min(start));
                    t.start = t.start.min(first);
                }
            }
            Action::TurnContinued { turn, .. } => {
                if let Some(t) = self.turn_mut(*turn) {
                    t.continued = true;
                }
            }
            Action::Preempted(Preemption::Wasted) => {
                self.pending.preempted_llm = None;
                self.pending.preempted_plan = None;
            }
            Action::CancelLlm { turn } => {
                if let Some(llm) = self.turn_mut(*turn).and_then(|t| t.llm.as_mut()) {
                    if llm.end.is_none() {
                        llm.cancelled = true;
                        llm.finish(now());
                    }
                }
            }
            Action::StartTts { turn } => {
                if let Some(t) = self.turn_mut(*turn) {
                    t.tts = Some(Stage::new(now()));
                }
            }
            Action::SpeakSentence { turn, .. } => {
                if let Some(tts) = self.turn_mut(*turn).and_then(|t| t.tts.as_mut()) {
                    tts.count += 1;
                }
            }
            Action::CancelTts { turn } => {
                if let Some(tts) = self.turn_mut(*turn).and_then(|t| t.tts.as_mut()) {
                    if tts.end.is_none() {
                        tts.cancelled = true;
                        tts.finish(now());
                    }
                }
            }
            Action::Send(ServerMessage::Interrupt { turn }) => {
                if let Some(t) = self.turn_mut(*turn) {
                    t.interrupted_at.get_or_insert_with(now);
                }
            }
            Action::Send(ServerMessage::AgentDone {
                turn,
                text,
                interrupted,
            }) => {
                if let Some(t) = self.turn.take_if(|t| t.turn == *turn) {
                    self.emit(t, now(), Some(text), *interrupted);
                }
            }
            _ => {}
        }
    }

    /// A plug-in answer, as it arrives: the calls it reports ended just now.
    pub fn on_answer(&mut self, answer: &Answer) {
        let now = SystemTime::now();
        let ago = |ms: f64| now - Duration::from_secs_f64(ms.max(0.0) / 1000.0);
        match answer {
            Answer::Planned {
                turn,
                plugins_ms,
                intent_ms,
                ..
            } => {
                let start = ago(*plugins_ms);
                let split = start + Duration::from_secs_f64(intent_ms.max(0.0) / 1000.0);
                let calls = ((start, split.min(now)), (split.min(now), now));
                match self.turn_mut(*turn) {
                    Some(t) => (t.intent, t.prompt) = (Some(calls.0), Some(calls.1)),
                    // A plan made before its turn was committed (preemptive generation).
                    None => self.pending.preempted_plan = Some(calls),
                }
            }
            Answer::Decided {
                turn,
                decision,
                took_ms,
                ..
            } => {
                if let Some(t) = self.turn_mut(*turn) {
                    if t.decisions.len() < MAX_DECISIONS {
                        t.decisions.push((ago(*took_ms), now, *decision));
                    }
                }
            }
            // End-of-turn questions come before the turn they end exists (its span starts at the
            // end of speech); they are counted in /metrics, not traced.
            Answer::TurnDecided { .. } => {}
        }
    }

    /// The session is over: a turn still open ends now, then the session span.
    pub fn end(mut self) {
        let now = SystemTime::now();
        if let Some(t) = self.turn.take() {
            self.emit(t, now, None, true);
        }
        let span = self.session.span();
        span.set_attribute(KeyValue::new("voice.turns", i64::from(self.turns)));
        span.end_with_timestamp(now);
    }

    fn turn_mut(&mut self, turn: u32) -> Option<&mut Turn> {
        self.turn.as_mut().filter(|t| t.turn == turn)
    }

    fn ids(&self, turn: u32) -> [KeyValue; 2] {
        [
            KeyValue::new("session.id", self.session_id.clone()),
            KeyValue::new("voice.turn", i64::from(turn)),
        ]
    }

    fn text(&self, key: &'static str, text: &str) -> KeyValue {
        if self.record_text {
            KeyValue::new(key, text.to_string())
        } else {
            KeyValue::new(format!("{key}_chars"), text.chars().count() as i64)
        }
    }

    /// Builds the turn's spans, ending at `end`.
    fn emit(&mut self, t: Turn, end: SystemTime, agent_text: Option<&str>, interrupted: bool) {
        self.turns += 1;
        let mut attrs = self.ids(t.turn).to_vec();
        attrs.push(self.text("voice.user_text", &t.user_text));
        if let Some(text) = agent_text {
            attrs.push(self.text("voice.agent_text", text));
        }
        attrs.push(KeyValue::new("voice.interrupted", interrupted));
        if t.preempted {
            attrs.push(KeyValue::new("voice.preempted", true));
        }
        if t.continued {
            attrs.push(KeyValue::new("voice.continued", true));
        }
        let span = self
            .tracer
            .span_builder("turn")
            .with_start_time(t.start)
            .with_attributes(attrs)
            .start_with_context(&self.tracer, &self.session);
        let cx = self.session.with_span(span);
        if let Some(at) = t.interrupted_at {
            cx.span().add_event_with_timestamp("barge_in", at, vec![]);
        }
        if let Some((start, stop)) = t.stt {
            self.child(&cx, t.turn, "stt", start, stop, vec![]);
        }
        if let Some((start, stop)) = t.intent {
            self.child(&cx, t.turn, "plugin.intent", start, stop, vec![]);
        }
        if let Some((start, stop)) = t.prompt {
            self.child(&cx, t.turn, "plugin.prompt", start, stop, vec![]);
        }
        if let Some(llm) = &t.llm {
            let mut attrs = vec![KeyValue::new("llm.tokens", i64::from(llm.count))];
            if let Some(u) = t.usage {
                attrs.push(KeyValue::new(
                    "gen_ai.usage.input_tokens",
                    i64::from(u.prompt_tokens),
                ));
                attrs.push(KeyValue::new(
                    "gen_ai.usage.output_tokens",
                    i64::from(u.completion_tokens),
                ));
            }
            self.stage(&cx, t.turn, "llm", llm, "first_token", end, attrs);
        }
        if let Some(tts) = &t.tts {
            let attrs = vec![KeyValue::new("tts.sentences", i64::from(tts.count))];
            self.stage(&cx, t.turn, "tts", tts, "first_audio", end, attrs);
        }
        if let Some(start) = t.playout_start {
            let attrs = vec![KeyValue::new("voice.interrupted", interrupted)];
            self.child(&cx, t.turn, "playout", start, end, attrs);
        }
        for (start, stop, decision) in &t.decisions {
            let attrs = vec![KeyValue::new(
                "voice.barge_in.decision",
                decision_name(*decision),
            )];
            self.child(&cx, t.turn, "barge_in.decide", *start, *stop, attrs);
        }
        cx.span().end_with_timestamp(end.max(t.start));
    }

    #[allow(clippy::too_many_arguments)]
    fn stage(
        &self,
        parent: &Context,
        turn: u32,
        name: &'static str,
        stage: &Stage,
        first_event: &'static str,
        turn_end: SystemTime,
        mut attrs: Vec<KeyValue>,
    ) {
        let stop = stage.end.unwrap_or(turn_end);
        attrs.push(KeyValue::new("voice.cancelled", stage.cancelled));
        let first = stage.first.map(|at| (first_event, at));
        let status = stage
            .failed
            .then(|| Status::error(format!("{name} failed")));
        let mut span = self.start_child(parent, turn, name, stage.start, attrs);
        if let Some((event, at)) = first {
            span.add_event_with_timestamp(event, at, vec![]);
        }
        if let Some(status) = status {
            span.set_status(status);
        }
        span.end_with_timestamp(stop.max(stage.start));
    }

    #[allow(clippy::too_many_arguments)]
    fn child(
        &self,
        parent: &Context,
        turn: u32,
        name: &'static str,
        start: SystemTime,
        stop: SystemTime,
        attrs: Vec<KeyValue>,
    ) {
        let mut span = self.start_child(parent, turn, name, start, attrs);
        span.end_with_timestamp(stop.max(start));
    }

    fn start_child(
        &self,
        parent: &Context,
        turn: u32,
        name: &'static str,
        start: SystemTime,
        mut attrs: Vec<KeyValue>,
    ) -> opentelemetry_sdk::trace::Span {
        attrs.extend(self.ids(turn));
        self.tracer
            .span_builder(name)
            .with_start_time(start)
            .with_attributes(attrs)
            .start_with_context(&self.tracer, parent)
    }
}

fn decision_name(d: BargeInDecision) -> &'static str {
    match d {
        BargeInDecision::Ignore => "ignore",
        BargeInDecision::Interrupt => "interrupt",
        BargeInDecision::Pause => "pause",
        BargeInDecision::Wait => "wait",
    }
}

#[cfg(test)]
#[path = "session_trace_tests.rs"]
mod tests;
