//! The simulated streaming recogniser: perfect words, a streaming recogniser's timing.
//!
//! While a segment's voice lasts it reports the words spoken so far (in proportion to the time
//! spoken) every `INTERIM_MS`, and when the voice ends the segment's words as a final. Asked to
//! finalize, it answers with every word heard by then that no final has carried yet, as a
//! streaming recogniser flushes what it has; the segment's own final then carries only the rest,
//! and interims after a final carry only the words after it.

use voice_host::providers::SttEvent;

/// How often the recogniser reports the words heard so far while the voice lasts.
pub const INTERIM_MS: u64 = 300;

struct Segment {
    words: Vec<String>,
    start: u64,
    end: u64,
    /// Words already carried by a final.
    finalized: usize,
}

impl Segment {
    /// How many of the words have been spoken by `t`.
    fn spoken_by(&self, t: u64) -> usize {
        if t >= self.end {
            return self.words.len();
        }
        let n = self.words.len() as u64 * t.saturating_sub(self.start);
        (n.div_ceil(self.end - self.start) as usize).min(self.words.len())
    }
}

pub struct Recogniser {
    segments: Vec<Segment>,
}

impl Recogniser {
    /// `segments`: each segment's text as the recogniser writes it and its voice (start, end).
    pub fn new(segments: impl IntoIterator<Item = (String, (u64, u64))>) -> Self {
        let segments = segments
            .into_iter()
            .map(|(text, (start, end))| Segment {
                words: text.split_whitespace().map(str::to_string).collect(),
                start,
                end,
                finalized: 0,
            })
            .collect();
        Self { segments }
    }

    /// When each report is due: (time, segment, `Some(t)` for the interim of the words spoken by
    /// `t`, `None` for the segment's final), in order.
    pub fn schedule(&self) -> Vec<(u64, usize, Option<u64>)> {
        let mut out = Vec::new();
        for (i, s) in self.segments.iter().enumerate() {
            let mut t = s.start + INTERIM_MS;
            while t < s.end {
                out.push((t, i, Some(t)));
                t += INTERIM_MS;
            }
            out.push((s.end, i, None));
        }
        out
    }

    /// The interim of segment `i` for the words spoken by `t`: only those no final carried, and
    /// without a final stop (a guess carries none yet). `None` when there are no such words.
    pub fn interim(&self, i: usize, t: u64) -> Option<SttEvent> {
        let s = &self.segments[i];
        let n = s.spoken_by(t);
        (n > s.finalized).then(|| SttEvent::Interim {
            text: s.words[s.finalized..n]
                .join(" ")
                .trim_end_matches(['.', '?', '!'])
                .to_string(),
            words: Vec::new(),
        })
    }

    /// Segment `i`'s final when its voice ends: the words no final carried yet.
    pub fn segment_final(&mut self, i: usize) -> Option<SttEvent> {
        let s = &mut self.segments[i];
        let text = s.words[s.finalized..].join(" ");
        s.finalized = s.words.len();
        (!text.is_empty()).then(|| final_words(text, false))
    }

    /// The answer to a finalize sent at `t`: the words spoken by then of the segment whose voice
    /// goes on, that no final carried (a segment whose voice has ended has its own final on the
    /// way, with the recogniser's latency).
    pub fn finalize(&mut self, t: u64) -> SttEvent {
        let mut taken = Vec::new();
        for s in self
            .segments
            .iter_mut()
            .filter(|s| s.start <= t && t < s.end)
        {
            let n = s.spoken_by(t);
            taken.extend(s.words[s.finalized.min(n)..n].iter().cloned());
            s.finalized = s.finalized.max(n);
        }
        final_words(taken.join(" "), true)
    }
}

fn final_words(text: String, from_finalize: bool) -> SttEvent {
    SttEvent::Final {
        text,
        words: Vec::new(),
        speech_final: false,
        from_finalize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(e: Option<SttEvent>) -> Option<(String, bool)> {
        match e? {
            SttEvent::Interim { text, .. } => Some((text, false)),
            SttEvent::Final { text, .. } => Some((text, true)),
            _ => None,
        }
    }

    #[test]
    fn a_finalize_mid_segment_carries_the_words_heard_and_the_final_the_rest() {
        // "and" (1000-1600), then "saying it in a bunch of words." (2000-3000), 7 words.
        let mut r = Recogniser::new([
            ("and".to_string(), (1000, 1600)),
            ("saying it in a bunch of words.".to_string(), (2000, 3000)),
        ]);
        assert_eq!(text(r.segment_final(0)), Some(("and".into(), true)));
        assert_eq!(
            text(r.interim(1, 2300)),
            Some(("saying it in".into(), false)),
            "30 % of the time spoken: 2.1 words, rounded up"
        );
        assert_eq!(
            text(Some(r.finalize(2500))),
            Some(("saying it in a".into(), true)),
            "half the time spoken: 4 words, and not \"and\" again"
        );
        assert_eq!(
            text(r.interim(1, 2700)),
            Some(("bunch".into(), false)),
            "after the final only the new words"
        );
        assert_eq!(
            text(r.segment_final(1)),
            Some(("bunch of words.".into(), true)),
            "the segment's final carries the rest, with its stop"
        );
        assert_eq!(text(Some(r.finalize(3500))), Some((String::new(), true)));
    }

    #[test]
    fn a_finalize_after_the_voice_leaves_the_words_to_the_segment_s_final() {
        let mut r = Recogniser::new([("What time is it?".to_string(), (1000, 2000))]);
        assert_eq!(text(Some(r.finalize(2100))), Some((String::new(), true)));
        assert_eq!(
            text(r.segment_final(0)),
            Some(("What time is it?".into(), true))
        );
    }

    #[test]
    fn without_a_finalize_each_segment_is_one_final() {
        let mut r = Recogniser::new([
            ("Book me a flight to London".to_string(), (1000, 2000)),
            ("for next Monday morning.".to_string(), (2900, 3800)),
        ]);
        let finals: Vec<_> = r
            .schedule()
            .into_iter()
            .filter(|(_, _, interim)| interim.is_none())
            .filter_map(|(_, i, _)| text(r.segment_final(i)))
            .collect();
        assert_eq!(
            finals,
            [
                ("Book me a flight to London".into(), true),
                ("for next Monday morning.".into(), true)
            ]
        );
    }
}
