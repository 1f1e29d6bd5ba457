//! The reply's LLM and speech streams: tokens become sentences for text-to-speech; a stream that
//! stalls or fails ends the reply.

use super::reply::{Span, Tts};
use super::Orchestrator;
use crate::providers::{LlmEvent, ProviderError, ProviderErrorKind};
use crate::session::aggregator::{Pushed, Sentence};
use crate::session::events::{Action, TurnEnd};
use crate::transport::protocol::ServerMessage;

impl Orchestrator {
    pub(super) fn on_llm(&mut self, now: u64, turn: u32, event: LlmEvent, out: &mut Vec<Action>) {
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
        r.text.push_str(&pushed.delta);
        r.show_text(out);
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

    /// End a reply whose provider went quiet without finishing or failing.
    pub(super) fn watch_stalls(&mut self, now: u64, out: &mut Vec<Action>) {
        let Some(r) = &self.reply else { return };
        let turn = r.turn;
        let llm_stalled = !r.llm_done
            && r.llm_last_at
                .is_some_and(|t| now >= t + self.cfg.llm_stall_ms);
        let tts_stalled = matches!(
            r.tts,
            Tts::Open { owed_since: Some(t), .. } if now >= t + self.cfg.tts_stall_ms
        );
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

    /// Text-to-speech failed (or stalled): nothing more of the reply can be heard. It ends now,
    /// interrupted at what the user heard; the client flushes what it buffered.
    pub(super) fn tts_failed(&mut self, now: u64, error: ProviderError, out: &mut Vec<Action>) {
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
}
