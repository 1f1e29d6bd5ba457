//! A committed turn gets its reply: planned, then spoken from the LLM or a fixed text.

use super::reply::{Marks, Reply, Tts};
use super::{Orchestrator, State};
use crate::behaviour::{PromptOutput, Role};
use crate::providers::LlmEvent;
use crate::session::aggregator::SentenceAggregator;
use crate::session::events::{Action, TurnEnd};
use crate::session::playout::Playout;
use crate::transport::protocol::ServerMessage;

impl Orchestrator {
    /// A new user turn replaces the reply in flight: if it was already playing, memory keeps
    /// what the user heard of it.
    pub(super) fn end_reply_for_new_turn(&mut self, now: u64, out: &mut Vec<Action>) {
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

    pub(super) fn start_turn(
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
            Some(s) => self.take_over(now, s, speech_end, by, out),
            None => {
                self.plan_seq += 1;
                let plan = self.plan_seq;
                self.reply = Some(self.new_reply(turn, plan, now, speech_end, Some(by)));
                out.push(Action::PlanReply {
                    turn,
                    plan,
                    user_text: text,
                    history,
                });
            }
        }
    }

    /// A reply for `turn`; `speech_end` and `ended_by` describe the user turn it answers (both
    /// `None` for a reply no user turn asked for).
    pub(super) fn new_reply(
        &self,
        turn: u32,
        plan: u32,
        now: u64,
        speech_end: Option<u64>,
        ended_by: Option<TurnEnd>,
    ) -> Reply {
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
            shown: 0,
            spoken: String::new(),
            spoken_chars: 0,
            spans: Vec::new(),
            llm_last_at: None,
            llm_done: false,
            broken: false,
            tts: Tts::Idle,
            playout,
            ended_by,
            marks: Marks {
                speech_end,
                turn_end: now,
                ..Default::default()
            },
        }
    }

    pub(super) fn on_planned(
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
    pub(super) fn speak_direct(&mut self, now: u64, text: &str, out: &mut Vec<Action>) {
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
}
