//! Agent audio playout: paces the reply's audio at real time plus a small lead, and maps audio time
//! back to the reply text so memory keeps only what the user heard.

use crate::audio::{AudioFormat, Encoding};
use crate::providers::Alignment;
use std::collections::VecDeque;

/// Speaking rate used to estimate heard text when the TTS gives no timing (chars per second).
const ESTIMATED_CHARS_PER_SEC: f64 = 14.0;

/// The audio queue and timeline of one reply.
#[derive(Debug)]
pub struct Playout {
    bytes_per_sample: usize,
    samples_per_ms: f64,
    chunk_bytes: usize,
    lead_ms: u64,
    queue: VecDeque<u8>,
    /// Audio received from TTS for this reply, in ms.
    received_ms: f64,
    /// Audio sent to the client, in ms.
    sent_ms: f64,
    /// When (session clock) the client will have played everything sent so far.
    play_end: u64,
    first_sent_at: Option<u64>,
    /// When the reply was paused (session clock), while it is.
    paused_at: Option<u64>,
    /// End time (ms of reply audio) of each aligned character, in text order.
    char_ends: Vec<u32>,
    /// The client's latest report of how much it has played, and when it arrived.
    reported_played: Option<(u64, u64)>,
}

impl Playout {
    pub fn new(format: AudioFormat, lead_ms: u64, chunk_ms: u32) -> Self {
        let bytes_per_sample = match format.encoding {
            Encoding::Pcm16 => 2,
            Encoding::Mulaw => 1,
        };
        let samples_per_chunk = (format.sample_rate as usize * chunk_ms as usize / 1000).max(1);
        Self {
            bytes_per_sample,
            samples_per_ms: format.sample_rate as f64 / 1000.0,
            chunk_bytes: samples_per_chunk * bytes_per_sample,
            lead_ms,
            queue: VecDeque::new(),
            received_ms: 0.0,
            sent_ms: 0.0,
            play_end: 0,
            first_sent_at: None,
            paused_at: None,
            char_ends: Vec::new(),
            reported_played: None,
        }
    }

    fn ms_of(&self, bytes: usize) -> f64 {
        (bytes / self.bytes_per_sample) as f64 / self.samples_per_ms
    }

    /// Queue encoded audio from TTS, with its character timing if the provider gave one.
    pub fn push(&mut self, bytes: &[u8], alignment: Option<&Alignment>) {
        let chunk_start = self.received_ms;
        if let Some(a) = alignment {
            for (i, (start, dur)) in a.start_ms.iter().zip(&a.duration_ms).enumerate() {
                // Only visible characters are counted: providers differ in which spaces (e.g.
                // between sentences) they include, so spaces cannot anchor the text position.
                if a.chars.get(i).is_some_and(|c| c.is_whitespace()) {
                    continue;
                }
                self.char_ends
                    .push((chunk_start + f64::from(start.saturating_add(*dur))).round() as u32);
            }
        }
        self.received_ms += self.ms_of(bytes.len());
        self.queue.extend(bytes);
    }

    /// Send what the pacing allows at `now`; calls `send` with each chunk.
    pub fn pump(&mut self, now: u64, mut send: impl FnMut(Vec<u8>)) {
        if self.paused_at.is_some() {
            return;
        }
        while !self.queue.is_empty() && self.play_end.saturating_sub(now) < self.lead_ms {
            let n = self.chunk_bytes.min(self.queue.len());
            let chunk: Vec<u8> = self.queue.drain(..n).collect();
            let ms = self.ms_of(chunk.len());
            self.sent_ms += ms;
            self.play_end = self.play_end.max(now) + ms.round() as u64;
            self.first_sent_at.get_or_insert(now);
            send(chunk);
        }
    }

    /// When the next chunk may be sent (None when nothing is queued or paused): the first
    /// instant at which `pump` sends, so a timer set for it never fires without work to do.
    pub fn next_send_at(&self) -> Option<u64> {
        if self.paused_at.is_some() || self.queue.is_empty() {
            None
        } else {
            Some((self.play_end + 1).saturating_sub(self.lead_ms))
        }
    }

    /// Stop sending, keep the rest queued. The client pauses its player too (the `pause`
    /// message), so what it had buffered is not heard until `resume`.
    pub fn pause(&mut self, now: u64) {
        self.paused_at.get_or_insert(now);
    }

    /// Continue sending from where it stopped; the client's buffered audio plays from now on.
    pub fn resume(&mut self, now: u64) {
        if let Some(at) = self.paused_at.take() {
            let held = now.saturating_sub(at);
            if self.play_end > at {
                self.play_end += held;
            }
            // The client played nothing while paused: its report is projected from the resume.
            if let Some((_, reported_at)) = &mut self.reported_played {
                *reported_at = if *reported_at <= at {
                    *reported_at + held
                } else {
                    now
                };
            }
        }
    }

    /// When the reply was paused, while it is.
    pub fn paused_since(&self) -> Option<u64> {
        self.paused_at
    }

    pub fn is_paused(&self) -> bool {
        self.paused_at.is_some()
    }

    /// Whether any audio has gone to the client yet.
    pub fn started(&self) -> bool {
        self.first_sent_at.is_some()
    }

    pub fn first_sent_at(&self) -> Option<u64> {
        self.first_sent_at
    }

    pub fn queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// When the client will have played everything sent.
    pub fn play_end(&self) -> u64 {
        self.play_end
    }

    /// The client reported at `now` having played `played_ms` of this reply.
    pub fn report_played(&mut self, played_ms: u64, now: u64) {
        self.reported_played = Some((played_ms, now));
    }

    /// How much of the reply the user has heard at `now`, in ms: what was sent minus what is
    /// still in the client's buffer, or less when the client's latest report (projected forward
    /// by the time since it arrived) says it is behind. A client can be behind the pacing, never
    /// ahead of it. Nothing is played while the reply is paused.
    pub fn heard_ms(&self, now: u64) -> u64 {
        let now = self.paused_at.map_or(now, |at| now.min(at));
        let estimate = (self.sent_ms as u64).saturating_sub(self.play_end.saturating_sub(now));
        match self.reported_played {
            Some((played, at)) => (played + now.saturating_sub(at)).min(estimate),
            None => estimate,
        }
    }

    /// How many characters of `text` (the text sent to TTS) the user heard by `heard_ms`.
    pub fn chars_heard(&self, heard_ms: u64, text: &str, tts_done: bool) -> usize {
        let text_chars = text.chars().count();
        let heard = u32::try_from(heard_ms).unwrap_or(u32::MAX);
        if !self.char_ends.is_empty() {
            let n = self.char_ends.partition_point(|&end| end <= heard);
            if n == self.char_ends.len() && tts_done && heard_ms as f64 >= self.received_ms - 1.0 {
                return text_chars;
            }
            return chars_through_visible(text, n);
        }
        if tts_done && self.received_ms > 0.0 {
            let frac = (heard_ms as f64 / self.received_ms).min(1.0);
            return (text_chars as f64 * frac).round() as usize;
        }
        ((heard_ms as f64 / 1000.0 * ESTIMATED_CHARS_PER_SEC) as usize).min(text_chars)
    }
}

/// The length in characters of the shortest prefix of `text` holding `visible` non-space
/// characters (all of `text` if it has fewer).
fn chars_through_visible(text: &str, visible: usize) -> usize {
    if visible == 0 {
        return 0;
    }
    let mut seen = 0;
    for (i, c) in text.chars().enumerate() {
        if !c.is_whitespace() {
            seen += 1;
            if seen == visible {
                return i + 1;
            }
        }
    }
    text.chars().count()
}

/// Cut `text` after its first `chars` characters, backing off to the last whole word.
pub fn heard_prefix(text: &str, chars: usize) -> String {
    let total = text.chars().count();
    if chars >= total {
        return text.to_string();
    }
    let cut: String = text.chars().take(chars).collect();
    let next_is_space = text.chars().nth(chars).is_some_and(char::is_whitespace);
    let word_end = if next_is_space {
        cut.len()
    } else {
        cut.rfind(char::is_whitespace).unwrap_or(0)
    };
    cut[..word_end].trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcm16k() -> AudioFormat {
        AudioFormat {
            encoding: Encoding::Pcm16,
            sample_rate: 16_000,
        }
    }

    #[test]
    fn paces_at_real_time_plus_lead() {
        let mut p = Playout::new(pcm16k(), 200, 20);
        p.push(&vec![0u8; 32_000], None); // 1 s
        let mut sent = 0;
        p.pump(0, |c| sent += c.len());
        assert_eq!(sent, 640 * 10, "only the 200 ms lead goes out at once");
        p.pump(100, |c| sent += c.len());
        assert_eq!(sent, 640 * 15, "then real time");
        assert_eq!(p.heard_ms(100), 100);
        let next = p.next_send_at().expect("audio is still queued");
        assert!(next > 100, "a wakeup now would find nothing to send");
        p.pump(next, |c| sent += c.len());
        assert_eq!(
            sent,
            640 * 16,
            "the next chunk goes out when its wakeup fires"
        );
    }

    #[test]
    fn pause_holds_audio_and_resume_continues() {
        let mut p = Playout::new(pcm16k(), 200, 20);
        p.push(&vec![0u8; 32_000], None);
        let mut sent = 0;
        p.pump(0, |c| sent += c.len());
        p.pause(0);
        p.pump(1000, |c| sent += c.len());
        assert_eq!(sent, 6400);
        assert_eq!(p.next_send_at(), None);
        assert_eq!(p.heard_ms(1000), 0, "a paused client plays nothing");
        p.resume(1000);
        assert_eq!(p.heard_ms(1100), 100, "its buffer plays on from the resume");
        p.pump(1000, |c| sent += c.len());
        assert_eq!(sent, 6400, "the client still holds the 200 ms lead");
        p.pump(1100, |c| sent += c.len());
        assert_eq!(sent, 6400 + 640 * 5, "then real time again");
    }

    #[test]
    fn alignment_maps_heard_time_to_characters() {
        let mut p = Playout::new(pcm16k(), 200, 20);
        let a = Alignment {
            chars: "hi yo".chars().collect(),
            start_ms: vec![0, 100, 200, 300, 400],
            duration_ms: vec![100; 5],
        };
        p.push(&vec![0u8; 16_000], Some(&a)); // 500 ms
        assert_eq!(p.chars_heard(250, "hi yo", false), 2);
        assert_eq!(p.chars_heard(500, "hi yo", true), 5);
    }

    #[test]
    fn alignment_without_the_spaces_between_sentences_keeps_its_place() {
        let mut p = Playout::new(pcm16k(), 200, 20);
        let chunk = |text: &str| Alignment {
            chars: text.chars().collect(),
            start_ms: (0..text.len() as u32).map(|i| i * 100).collect(),
            duration_ms: vec![100; text.len()],
        };
        // Two sentences synthesised separately; the text sent to TTS joins them with a space.
        p.push(&vec![0u8; 3_200 * 3], Some(&chunk("Hi.")));
        p.push(&vec![0u8; 3_200 * 4], Some(&chunk(" Yes.")));
        let text = "Hi. Yes.";
        assert_eq!(heard_prefix(text, p.chars_heard(300, text, false)), "Hi.");
        assert_eq!(p.chars_heard(600, text, false), 6, "through \"Hi. Ye\"");
    }

    #[test]
    fn client_report_wins_over_estimate() {
        let mut p = Playout::new(pcm16k(), 200, 20);
        p.push(&vec![0u8; 32_000], None);
        p.pump(0, |_| {});
        p.report_played(40, 150);
        assert_eq!(p.heard_ms(150), 40);
        assert_eq!(
            p.heard_ms(190),
            80,
            "projected forward by the time since the report"
        );
        assert_eq!(p.heard_ms(5000), 200, "but never past what was sent");
    }

    #[test]
    fn heard_prefix_backs_off_to_whole_words() {
        assert_eq!(heard_prefix("hello there friend", 8), "hello");
        assert_eq!(heard_prefix("hello there friend", 11), "hello there");
        assert_eq!(heard_prefix("hello", 2), "");
        assert_eq!(heard_prefix("hello", 9), "hello");
    }
}
