//! A session clock, a policy answering barge-in questions, and helpers to read actions.

use crate::audio::VadTransition;
use crate::behaviour::defaults::{BargeInRules, DefaultBargeIn};
use crate::behaviour::{
    BargeInDecision, BargeInEvent, ChatMessage, GenerationSettings, PromptOutput,
};
use crate::providers::{Alignment, LlmEvent, ProviderError, ProviderErrorKind, SttEvent};
use crate::session::events::{Action, Event};
use crate::session::orchestrator::{Orchestrator, OrchestratorConfig};
use crate::transport::protocol::{ServerMessage, TurnMetrics};
use std::collections::HashMap;

/// Bytes of 1 ms of the default output (PCM16 mono, 16 kHz).
pub const BYTES_PER_MS: usize = 32;

/// How barge-in questions are answered.
#[derive(Debug, Clone, Copy)]
pub enum Policy {
    /// Not at all: the test answers with `Session::decide`.
    Manual,
    /// The built-in rules, as a session without a barge-in plug-in uses them.
    Rules(BargeInRules),
    /// A plug-in that always gives this answer.
    Always(BargeInDecision),
}

/// One orchestrator on a simulated session clock.
pub struct Session {
    pub orch: Orchestrator,
    pub now: u64,
    pub policy: Policy,
    /// Every question asked, with the decision given (None when answered manually).
    pub asked: Vec<(BargeInEvent, Option<BargeInDecision>)>,
    /// The newest plan request of each turn (its answer must name it).
    plans: HashMap<u32, u32>,
}

impl Session {
    pub fn new(cfg: OrchestratorConfig, policy: Policy) -> Self {
        Self {
            orch: Orchestrator::new(cfg),
            now: 0,
            policy,
            asked: Vec::new(),
            plans: HashMap::new(),
        }
    }

    /// Default settings and the built-in barge-in rules.
    pub fn with_rules() -> Self {
        Self::new(
            OrchestratorConfig::default(),
            Policy::Rules(BargeInRules::default()),
        )
    }

    /// Begin the session at the current time (greeting).
    pub fn start(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.orch.start(self.now, &mut out);
        self.answer(&mut out);
        self.note_plans(&out);
        self.check_wakeup();
        out
    }

    /// Handle one event now, answering any barge-in question as the policy says.
    pub fn feed(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        self.orch.handle(self.now, event, &mut out);
        self.answer(&mut out);
        self.note_plans(&out);
        self.check_wakeup();
        out
    }

    fn note_plans(&mut self, out: &[Action]) {
        for a in out {
            if let Action::PlanReply { turn, plan, .. } = a {
                self.plans.insert(*turn, *plan);
            }
        }
    }

    /// The newest plan request made for `turn`.
    pub fn plan_of(&self, turn: u32) -> u32 {
        *self.plans.get(&turn).expect("the turn was planned")
    }

    /// The prompt plug-ins answer the newest plan of `turn` with an LLM request.
    pub fn planned_llm(&self, turn: u32) -> Event {
        Event::ReplyPlanned {
            turn,
            plan: self.plan_of(turn),
            output: PromptOutput::Llm {
                messages: prompt_messages(turn),
                settings: GenerationSettings {
                    temperature: Some(0.5),
                    max_tokens: None,
                },
            },
            plugins_ms: 0.25,
        }
    }

    /// The prompt plug-ins answer the newest plan of `turn` with a fixed text.
    pub fn planned_direct(&self, turn: u32, text: &str) -> Event {
        Event::ReplyPlanned {
            turn,
            plan: self.plan_of(turn),
            output: PromptOutput::Direct { text: text.into() },
            plugins_ms: 0.25,
        }
    }

    /// Let time pass to `t`, ticking at every wakeup the orchestrator asks for (as the session
    /// task's timer does).
    pub fn run_until(&mut self, t: u64) -> Vec<Action> {
        assert!(t >= self.now, "the session clock never goes back");
        let mut out = Vec::new();
        while let Some(wake) = self.orch.next_wakeup().filter(|&w| w <= t) {
            self.now = wake;
            out.extend(self.feed(Event::Tick));
        }
        self.now = t;
        out
    }

    /// Let time pass to `t`, then handle `event` at `t`.
    pub fn at(&mut self, t: u64, event: Event) -> Vec<Action> {
        let mut out = self.run_until(t);
        out.extend(self.feed(event));
        out
    }

    /// Answer question `seq` of `turn` now.
    pub fn decide(&mut self, turn: u32, seq: u32, decision: BargeInDecision) -> Vec<Action> {
        self.feed(Event::BargeInDecided {
            turn,
            seq,
            decision,
        })
    }

    fn answer(&mut self, out: &mut Vec<Action>) {
        let mut i = 0;
        while i < out.len() {
            if let Action::AskBargeIn { turn, seq, event } = &out[i] {
                let (turn, seq) = (*turn, *seq);
                let decision = match self.policy {
                    Policy::Manual => None,
                    Policy::Rules(rules) => Some(DefaultBargeIn::decide_with(&rules, event)),
                    Policy::Always(d) => Some(d),
                };
                self.asked.push((event.clone(), decision));
                if let Some(decision) = decision {
                    let event = Event::BargeInDecided {
                        turn,
                        seq,
                        decision,
                    };
                    self.orch.handle(self.now, event, out);
                }
            }
            i += 1;
        }
    }

    /// A wakeup at or before now would make the session task spin without progress.
    fn check_wakeup(&self) {
        if let Some(wake) = self.orch.next_wakeup() {
            assert!(
                wake > self.now,
                "wakeup {wake} is not after now {}: the timer would spin",
                self.now
            );
        }
    }

    /// A typed user turn at `t`; returns the turn number the orchestrator gave it.
    pub fn typed(&mut self, t: u64, text: &str) -> u32 {
        let out = self.at(t, Event::UserText(text.into()));
        planned_turn(&out).expect("a typed turn is planned")
    }

    /// Produce a whole LLM reply for `turn` now: planned, streamed word by word, done; then
    /// `audio_ms` of speech (aligned at `ms_per_char` if given) and the end of synthesis.
    pub fn reply(&mut self, turn: u32, text: &str, speech: Speech) -> Vec<Action> {
        let mut out = self.feed(self.planned_llm(turn));
        for token in tokens(text) {
            out.extend(self.feed(llm_token(turn, &token)));
        }
        out.extend(self.feed(llm_done(turn)));
        out.extend(self.speak(turn, &spoken_sentences(&out), speech));
        out
    }

    /// Feed the TTS audio of `sentences` for `turn` now.
    pub fn speak(&mut self, turn: u32, sentences: &[String], speech: Speech) -> Vec<Action> {
        let mut out = Vec::new();
        match speech {
            Speech::Unaligned { ms, done } => {
                out.extend(self.feed(tts_audio(turn, ms, None)));
                if done {
                    out.extend(self.feed(Event::TtsDone { turn }));
                }
            }
            Speech::Aligned { ms_per_char } => {
                for s in sentences {
                    let n = s.chars().count() as u32;
                    let alignment = Alignment {
                        chars: s.chars().collect(),
                        start_ms: (0..n).map(|i| i * ms_per_char).collect(),
                        duration_ms: vec![ms_per_char; n as usize],
                    };
                    out.extend(self.feed(tts_audio(
                        turn,
                        (n * ms_per_char) as u64,
                        Some(alignment),
                    )));
                }
                out.extend(self.feed(Event::TtsDone { turn }));
            }
        }
        out
    }
}

/// How the TTS speaks a reply in a test.
#[derive(Debug, Clone, Copy)]
pub enum Speech {
    /// One chunk of `ms` without timing; `done` says whether synthesis then finishes.
    Unaligned { ms: u64, done: bool },
    /// One chunk per sentence, every character taking `ms_per_char`, with alignment.
    Aligned { ms_per_char: u32 },
}

/// Split a reply into LLM-like tokens (words with their leading space).
pub fn tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, w) in text.split(' ').enumerate() {
        out.push(if i == 0 {
            w.to_string()
        } else {
            format!(" {w}")
        });
    }
    out
}

// ---- events ----

pub fn vad_start(at_ms: u64) -> Event {
    Event::Vad(VadTransition::SpeechStart { at_ms })
}

pub fn vad_end(at_ms: u64) -> Event {
    Event::Vad(VadTransition::SpeechEnd { at_ms })
}

/// The VAD hears voice it has not confirmed as speech yet.
pub fn vad_onset(at_ms: u64) -> Event {
    Event::Vad(VadTransition::Onset { at_ms })
}

/// The voice of the last onset stopped before it was speech.
pub fn vad_false_onset(at_ms: u64) -> Event {
    Event::Vad(VadTransition::FalseOnset { at_ms })
}

pub fn interim(text: &str) -> Event {
    Event::Stt(SttEvent::Interim {
        text: text.into(),
        words: Vec::new(),
    })
}

pub fn final_text(text: &str, speech_final: bool) -> Event {
    Event::Stt(SttEvent::Final {
        text: text.into(),
        words: Vec::new(),
        speech_final,
        from_finalize: false,
    })
}

/// The recogniser's answer to the session's `Finalize`.
pub fn finalize_result(text: &str) -> Event {
    Event::Stt(SttEvent::Final {
        text: text.into(),
        words: Vec::new(),
        speech_final: false,
        from_finalize: true,
    })
}

/// The messages the test's prompt shaper sends to the LLM.
pub fn prompt_messages(turn: u32) -> Vec<ChatMessage> {
    vec![ChatMessage::new(
        crate::behaviour::Role::User,
        format!("prompt of turn {turn}"),
    )]
}

pub fn llm_token(turn: u32, token: &str) -> Event {
    Event::Llm {
        turn,
        event: LlmEvent::Token(token.into()),
    }
}

pub fn llm_working(turn: u32) -> Event {
    Event::Llm {
        turn,
        event: LlmEvent::Working,
    }
}

pub fn llm_done(turn: u32) -> Event {
    Event::Llm {
        turn,
        event: LlmEvent::Done {
            finish_reason: Some("stop".into()),
            usage: None,
        },
    }
}

pub fn provider_error(kind: ProviderErrorKind) -> ProviderError {
    ProviderError::new(kind, "fake", "the fake provider failed")
}

pub fn tts_audio(turn: u32, ms: u64, alignment: Option<Alignment>) -> Event {
    Event::TtsAudio {
        turn,
        bytes: vec![0; ms as usize * BYTES_PER_MS],
        alignment,
    }
}

// ---- reading actions ----

pub fn messages(out: &[Action]) -> Vec<&ServerMessage> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// Milliseconds of agent audio sent.
pub fn audio_ms(out: &[Action]) -> u64 {
    let bytes: usize = out
        .iter()
        .map(|a| match a {
            Action::SendAudio(b) => b.len(),
            _ => 0,
        })
        .sum();
    (bytes / BYTES_PER_MS) as u64
}

/// The `agent_done` messages: (turn, text, interrupted).
pub fn agent_done(out: &[Action]) -> Vec<(u32, String, bool)> {
    messages(out)
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::AgentDone {
                turn,
                text,
                interrupted,
            } => Some((*turn, text.clone(), *interrupted)),
            _ => None,
        })
        .collect()
}

/// The `transcript` messages: (turn, text, final).
pub fn transcripts(out: &[Action]) -> Vec<(u32, String, bool)> {
    messages(out)
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::Transcript {
                turn,
                text,
                is_final,
            } => Some((*turn, text.clone(), *is_final)),
            _ => None,
        })
        .collect()
}

/// The `error` messages' codes.
pub fn error_codes(out: &[Action]) -> Vec<String> {
    messages(out)
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::Error { code, fatal, .. } => {
                assert!(!fatal, "provider and input errors never end the session");
                Some(code.clone())
            }
            _ => None,
        })
        .collect()
}

/// The agent text shown to the client, concatenated.
pub fn agent_text(out: &[Action]) -> String {
    messages(out)
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::AgentText { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect()
}

/// The sentences handed to TTS.
pub fn spoken_sentences(out: &[Action]) -> Vec<String> {
    out.iter()
        .filter_map(|a| match a {
            Action::SpeakSentence { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// What ended the turns committed in `out`.
pub fn ended_by(out: &[Action]) -> Vec<crate::session::events::TurnEnd> {
    out.iter()
        .filter_map(|a| match a {
            Action::TurnCommitted { by, .. } => Some(*by),
            _ => None,
        })
        .collect()
}

/// The turns the user went on speaking after before any of their reply was heard, with what had
/// ended them.
pub fn continued(out: &[Action]) -> Vec<(u32, crate::session::events::TurnEnd)> {
    out.iter()
        .filter_map(|a| match a {
            Action::TurnContinued { turn, by } => Some((*turn, *by)),
            _ => None,
        })
        .collect()
}

/// The turn of the first `PlanReply`.
pub fn planned_turn(out: &[Action]) -> Option<u32> {
    plans(out).first().map(|(turn, _, _)| *turn)
}

/// The `PlanReply` actions: (turn, user text, history).
pub fn plans(out: &[Action]) -> Vec<(u32, String, Vec<ChatMessage>)> {
    out.iter()
        .filter_map(|a| match a {
            Action::PlanReply {
                turn,
                user_text,
                history,
                ..
            } => Some((*turn, user_text.clone(), history.clone())),
            _ => None,
        })
        .collect()
}

/// The barge-in questions: (turn, seq, event).
pub fn questions(out: &[Action]) -> Vec<(u32, u32, BargeInEvent)> {
    out.iter()
        .filter_map(|a| match a {
            Action::AskBargeIn { turn, seq, event } => Some((*turn, *seq, event.clone())),
            _ => None,
        })
        .collect()
}

pub fn metrics(out: &[Action]) -> Vec<TurnMetrics> {
    out.iter()
        .filter_map(|a| match a {
            Action::Metrics(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

pub fn closes(out: &[Action]) -> Vec<u16> {
    out.iter()
        .filter_map(|a| match a {
            Action::Close { code, .. } => Some(*code),
            _ => None,
        })
        .collect()
}

/// Whether `out` holds the cancellation of both streams of `turn` and the client's `interrupt`.
pub fn cancelled(out: &[Action], turn: u32) -> bool {
    out.contains(&Action::CancelLlm { turn })
        && out.contains(&Action::CancelTts { turn })
        && out.contains(&Action::Send(ServerMessage::Interrupt { turn }))
}
