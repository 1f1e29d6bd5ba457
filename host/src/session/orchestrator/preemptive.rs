//! Preemptive generation (see `preemption.rs`): a reply started before its turn is committed.

use super::Orchestrator;
use crate::session::events::{Action, Preemption, TurnEnd};
use crate::session::preemption::{Planned, Speculation};

impl Orchestrator {
    /// After every event: drop a speculation whose words or memory no longer hold, and start
    /// one when the user's words are final and their utterance is ending.
    pub(super) fn review_speculation(&mut self, now: u64, out: &mut Vec<Action>) {
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
    pub(super) fn likely_end(&self, now: u64) -> bool {
        let u = &self.user;
        self.may_speculate()
            && u.interim.trim().is_empty()
            && !u.finals.trim().is_empty()
            && (u.ended || !u.vad_speaking || u.silent_since.is_some())
            && !u.policy.waits(now)
    }

    /// Whether a speculation may run at all: preemption is on, and no reply is in flight (its
    /// LLM stream and turn number are the reply's) nor a barge-in being judged.
    pub(super) fn may_speculate(&self) -> bool {
        self.cfg.preemptive
            && !self.closed
            && !self.draining
            && self.reply.is_none()
            && self.barge.is_none()
    }

    /// The speculation is void: its stream is dropped, nothing of it was shown.
    pub(super) fn drop_speculation(&mut self, out: &mut Vec<Action>) {
        let Some(s) = self.speculation.take() else {
            return;
        };
        out.push(Action::CancelLlm { turn: s.turn });
        if s.started_llm() {
            out.push(Action::Preempted(Preemption::Wasted));
        }
    }

    /// The committed turn is the one a speculation was started on: it becomes the reply, and
    /// what its stream said so far is taken in order, as if it had come just now.
    pub(super) fn take_over(
        &mut self,
        now: u64,
        s: Speculation,
        speech_end: Option<u64>,
        by: TurnEnd,
        out: &mut Vec<Action>,
    ) {
        let turn = s.turn;
        if s.started_llm() {
            out.push(Action::Preempted(Preemption::Used));
        }
        let mut reply = self.new_reply(turn, s.plan, now, speech_end, Some(by));
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
}
