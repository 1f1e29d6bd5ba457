//! Playback progress on a phone call. Twilio plays the agent's audio from its own buffer and
//! echoes a `mark` once the audio queued before it has played, so marks sent every
//! [`MARK_INTERVAL_MS`] of reply audio tell the session how much the caller actually heard.

/// Reply audio between two marks.
pub const MARK_INTERVAL_MS: u64 = 100;

/// The agent audio sent on a call, counted per reply, and the marks that measure it.
#[derive(Debug)]
pub struct PlaybackMarks {
    samples_per_ms: u64,
    /// Numbers mark epochs so echoes from before a reply change or a `clear` (which Twilio
    /// sends at once, played or not) are recognised and dropped.
    epoch: u32,
    /// The session's turn number of the reply being played, once its first text was seen.
    turn: Option<u32>,
    /// Samples of the current reply sent to Twilio.
    sent_samples: u64,
    /// Reply audio (ms) at the last mark sent.
    marked_ms: u64,
}

impl PlaybackMarks {
    /// Tracking for audio at `sample_rate` Hz (one byte a sample for mu-law).
    pub fn new(sample_rate: u32) -> Self {
        Self {
            samples_per_ms: u64::from(sample_rate / 1000).max(1),
            epoch: 0,
            turn: None,
            sent_samples: 0,
            marked_ms: 0,
        }
    }

    /// The session began streaming reply `turn` (its text comes before its audio).
    pub fn start_reply(&mut self, turn: u32) {
        if self.turn != Some(turn) {
            self.end_reply();
            self.turn = Some(turn);
        }
    }

    /// `samples` of the current reply were sent; returns the name of a mark to send after them
    /// when one is due.
    pub fn on_audio(&mut self, samples: usize) -> Option<String> {
        self.sent_samples += samples as u64;
        let sent_ms = self.sent_samples / self.samples_per_ms;
        if sent_ms >= self.marked_ms + MARK_INTERVAL_MS {
            self.marked_ms = sent_ms;
            Some(format!("r{}-{}", self.epoch, sent_ms))
        } else {
            None
        }
    }

    /// The reply ended (finished, or cleared on barge-in): audio from now on belongs to the next
    /// reply, and the echoes of this reply's marks (which Twilio sends at once on `clear`) no
    /// longer say anything about what was heard.
    pub fn end_reply(&mut self) {
        self.forget_pending();
        self.turn = None;
        self.sent_samples = 0;
        self.marked_ms = 0;
    }

    /// Twilio's buffer was cleared mid-reply (a pause): marks sent so far are echoed at once
    /// and say nothing; the reply's audio count goes on.
    pub fn forget_pending(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// An echoed mark: the reply it belongs to and how much of it the caller has heard (ms), or
    /// `None` when the mark is stale or not ours.
    pub fn on_echo(&self, name: &str) -> Option<(Option<u32>, u64)> {
        let (epoch, ms) = name.strip_prefix('r')?.split_once('-')?;
        if epoch.parse::<u32>().ok()? != self.epoch {
            return None;
        }
        Some((self.turn, ms.parse().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_every_hundred_ms_of_reply_audio() {
        let mut m = PlaybackMarks::new(8000);
        // 20 ms chunks of mu-law at 8 kHz: 160 samples each.
        let names: Vec<String> = (0..12).filter_map(|_| m.on_audio(160)).collect();
        assert_eq!(names, ["r0-100", "r0-200"]);
        assert_eq!(m.on_echo("r0-100"), Some((None, 100)));
        assert_eq!(m.on_echo("r0-200"), Some((None, 200)));
    }

    #[test]
    fn echoes_of_an_ended_reply_are_ignored() {
        let mut m = PlaybackMarks::new(8000);
        let first = m.on_audio(800 * 3).expect("a mark after 300 ms");
        m.end_reply();
        // Twilio echoes pending marks at once on `clear`: they must not count as heard.
        assert_eq!(m.on_echo(&first), None);
        let next = m.on_audio(800).expect("the next reply is marked from zero");
        assert_eq!(next, "r1-100");
        assert_eq!(m.on_echo(&next), Some((None, 100)));
    }

    #[test]
    fn echoes_name_their_reply_and_a_pause_makes_earlier_ones_stale() {
        let mut m = PlaybackMarks::new(8000);
        m.start_reply(3);
        let first = m.on_audio(800).unwrap();
        assert_eq!(m.on_echo(&first), Some((Some(3), 100)));
        m.forget_pending();
        assert_eq!(m.on_echo(&first), None, "echoed by the clear, not played");
        let next = m.on_audio(800).unwrap();
        assert_eq!(
            m.on_echo(&next),
            Some((Some(3), 200)),
            "the reply's count goes on"
        );
        m.start_reply(4);
        assert_eq!(
            m.on_echo(&next),
            None,
            "a mark of reply 3 says nothing of reply 4"
        );
    }

    #[test]
    fn foreign_mark_names_are_ignored() {
        let m = PlaybackMarks::new(8000);
        for name in ["", "greeting", "r", "r0", "r0-", "rx-10", "r0-ten", "q0-10"] {
            assert_eq!(m.on_echo(name), None, "{name:?}");
        }
    }
}
