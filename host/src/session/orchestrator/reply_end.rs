//! How a reply ends: finished, interrupted, or dropped unheard.

use super::barge_in::Resumable;
use super::reply::metrics;
use super::{Orchestrator, State};
use crate::behaviour::Role;
use crate::session::aggregator::strip_markers;
use crate::session::events::{Action, TurnEnd};
use crate::transport::protocol::{close, ServerMessage};

impl Orchestrator {
    /// Stop the reply now; memory keeps only what the user heard. Returns what was left unsaid.
    pub(super) fn interrupt(&mut self, now: u64, out: &mut Vec<Action>) -> Option<Resumable> {
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
    pub(super) fn cancel_reply(&mut self, now: u64, out: &mut Vec<Action>) {
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
        if r.shown > 0 {
            // The client was shown text of it: drop it.
            out.push(Action::Send(ServerMessage::Interrupt { turn: r.turn }));
        }
        out.push(Action::Send(ServerMessage::AgentDone {
            turn: r.turn,
            text: String::new(),
            interrupted: true,
        }));
    }

    pub(super) fn finish_reply(&mut self, now: u64, out: &mut Vec<Action>) {
        let Some(mut r) = self.reply.take() else {
            return;
        };
        let held = self.take_held();
        self.barge = None;
        if !r.broken {
            // Ends whole: the client is shown all of it, even if it waited for the user (its
            // speech never came).
            r.show_all_text(out);
        }
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
}
