//! The reply being produced: its text, its speech stream and what the user heard of it.

use super::State;
use crate::session::aggregator::SentenceAggregator;
use crate::session::events::{Action, TurnEnd};
use crate::session::playout::{heard_prefix, Playout};
use crate::transport::protocol::{ServerMessage, TurnMetrics};

/// A sentence's span in the text sent to TTS.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    pub(super) end_char: usize,
    pub(super) protected: bool,
}

/// Timestamps of one reply (session clock, ms).
#[derive(Debug, Default, Clone)]
pub(super) struct Marks {
    pub(super) speech_end: Option<u64>,
    pub(super) turn_end: u64,
    pub(super) plugins_ms: Option<f64>,
    pub(super) llm_first_token: Option<u64>,
    pub(super) first_sentence: Option<u64>,
    pub(super) tts_first_audio: Option<u64>,
}

/// Where the reply's text-to-speech stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tts {
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
pub(super) struct Reply {
    pub(super) turn: u32,
    /// The plan request whose answer it waits for (answers to any other are stale).
    pub(super) plan: u32,
    pub(super) planned: bool,
    pub(super) aggregator: SentenceAggregator,
    /// Clean text generated so far.
    pub(super) text: String,
    /// How much of `text` (bytes) the client was shown (`agent_text`): all of it, except while
    /// the reply waits for a user who spoke again before hearing any of it (`show_text`).
    pub(super) shown: usize,
    /// Text sent to TTS so far, sentences joined by a space.
    pub(super) spoken: String,
    pub(super) spoken_chars: usize,
    pub(super) spans: Vec<Span>,
    /// When the LLM stream was opened or last reported (None: no LLM stream open).
    pub(super) llm_last_at: Option<u64>,
    pub(super) llm_done: bool,
    /// The reply broke off (LLM error or stall): it ends interrupted at what was heard.
    pub(super) broken: bool,
    pub(super) tts: Tts,
    pub(super) playout: Playout,
    /// What ended the user turn this reply answers (`None`: a reply no user turn asked for, the
    /// greeting or the rest of a reply a false barge-in stopped).
    pub(super) ended_by: Option<TurnEnd>,
    pub(super) marks: Marks,
}

impl Reply {
    pub(super) fn state(&self) -> State {
        if self.playout.started() {
            State::Speaking
        } else {
            State::Thinking
        }
    }

    /// Since when the reply waits for the user, who spoke before any of it was heard.
    pub(super) fn held_for_user(&self) -> Option<u64> {
        self.playout
            .paused_since()
            .filter(|_| !self.playout.started())
    }

    /// Shows the client the text it has not seen, unless the reply waits for the user: a reply
    /// their words may yet replace is not shown until it plays, so a client does not display a
    /// reply that is then dropped unheard.
    pub(super) fn show_text(&mut self, out: &mut Vec<Action>) {
        if self.held_for_user().is_none() {
            self.show_all_text(out);
        }
    }

    /// Shows the client the text it has not seen, waiting or not (the reply ends with it).
    pub(super) fn show_all_text(&mut self, out: &mut Vec<Action>) {
        if self.shown < self.text.len() {
            out.push(Action::Send(ServerMessage::AgentText {
                turn: self.turn,
                delta: self.text[self.shown..].to_string(),
            }));
            self.shown = self.text.len();
        }
    }

    pub(super) fn protected_at(&self, chars: usize) -> bool {
        self.spans
            .iter()
            .find(|s| chars < s.end_char)
            .is_some_and(|s| s.protected)
    }

    pub(super) fn tts_done(&self) -> bool {
        self.tts == Tts::Done
    }

    pub(super) fn finished(&self, now: u64) -> bool {
        self.planned
            && self.llm_done
            && self.tts_done()
            && !self.playout.queued()
            && now >= self.playout.play_end()
    }

    /// Characters of `spoken` the user has heard by `now`.
    pub(super) fn chars_heard(&self, now: u64) -> usize {
        let heard_ms = self.playout.heard_ms(now);
        self.playout
            .chars_heard(heard_ms, &self.spoken, self.tts_done())
    }

    /// The words of the reply the user has heard by `now`.
    pub(super) fn heard(&self, now: u64) -> String {
        heard_prefix(&self.spoken, self.chars_heard(now))
    }
}

pub(super) fn metrics(r: &Reply) -> TurnMetrics {
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
