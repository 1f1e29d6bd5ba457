//! Buffers one user utterance for the offline speech-to-text: an energy detector against an
//! adaptive noise floor marks where speech starts (keeping a short pre-roll so the first
//! syllable is not clipped) and where it pauses for [`ENDPOINT_MS`] (the recogniser's own
//! endpoint, as Deepgram's `endpointing`: its final comes while the host's VAD still waits out
//! its hangover); the host's `Finalize` (its own VAD end of speech) hands over what is left.
//! It also reports the start of each pause ([`PAUSE_MS`]) and the voice coming back after one,
//! so the recogniser can transcribe speculatively while it waits for the endpoint.

use std::collections::VecDeque;

/// 20 ms at 16 kHz.
const FRAME: usize = 320;
/// Audio kept from before speech starts.
const PRE_ROLL_FRAMES: usize = 15;
/// Consecutive loud frames that count as speech.
const START_FRAMES: usize = 3;
/// Speech must be this many times the noise floor's RMS (about 10 dB) ...
const SNR_FACTOR: f32 = 3.2;
/// ... and at least this loud (about -50 dBFS), so digital silence does not trigger.
const MIN_SPEECH_RMS: f32 = 100.0;
/// Quiet after speech that ends an utterance (the cloud recogniser is asked for 300 ms too).
pub const ENDPOINT_MS: usize = 300;
const ENDPOINT_FRAMES: usize = ENDPOINT_MS / 20;
/// Quiet after speech that starts a pause: long enough to skip the gaps inside words (stop
/// consonants), short enough that a transcription started here is done about when the
/// endpoint comes.
pub const PAUSE_MS: usize = 100;
const PAUSE_FRAMES: usize = PAUSE_MS / 20;
/// Longest utterance kept: Whisper's 30 s window.
pub const MAX_UTTERANCE_SAMPLES: usize = 30 * 16_000;

/// What a push observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segmented {
    /// Nothing notable.
    Nothing,
    /// Speech started in this push.
    SpeechStarted,
    /// The utterance reached the 30 s limit: take it with [`Segmenter::take`] and transcribe.
    Full,
    /// The speech paused for [`ENDPOINT_MS`]: take the utterance and transcribe it as final.
    Endpoint,
    /// The speech paused for [`PAUSE_MS`] (the endpoint may follow).
    Pause,
    /// The voice came back after a [`Pause`](Self::Pause), before the endpoint.
    Resumed,
}

/// The utterance buffer and speech detector of one stream.
#[derive(Debug)]
pub struct Segmenter {
    pending: Vec<i16>,
    pre_roll: VecDeque<Vec<i16>>,
    utterance: Vec<i16>,
    in_speech: bool,
    loud_run: usize,
    /// Quiet frames in a row since the last loud one, while in speech.
    quiet_run: usize,
    noise_rms: f32,
    /// Samples received since the stream started (the stream clock).
    received: u64,
    /// Stream time (in samples) of the utterance's first buffered sample.
    utterance_start: u64,
}

impl Default for Segmenter {
    fn default() -> Self {
        Self::new()
    }
}

impl Segmenter {
    /// An empty segmenter.
    pub fn new() -> Self {
        Self {
            pending: Vec::with_capacity(FRAME),
            pre_roll: VecDeque::with_capacity(PRE_ROLL_FRAMES + 1),
            utterance: Vec::new(),
            in_speech: false,
            loud_run: 0,
            quiet_run: 0,
            noise_rms: MIN_SPEECH_RMS / SNR_FACTOR,
            received: 0,
            utterance_start: 0,
        }
    }

    /// Whether speech has been heard since the last [`take`](Self::take).
    pub fn in_speech(&self) -> bool {
        self.in_speech
    }

    /// Length of the buffered utterance in samples (0 before speech starts).
    pub fn utterance_len(&self) -> usize {
        if self.in_speech {
            self.utterance.len()
        } else {
            0
        }
    }

    /// Samples at the end of the utterance since its last loud frame.
    pub fn quiet_samples(&self) -> usize {
        if self.in_speech {
            self.quiet_run * FRAME
        } else {
            0
        }
    }

    /// A copy of the utterance so far (for interim results).
    pub fn snapshot(&self) -> Vec<i16> {
        if self.in_speech {
            self.utterance.clone()
        } else {
            Vec::new()
        }
    }

    /// Stream time in ms of the utterance start.
    pub fn utterance_start_ms(&self) -> u32 {
        (self.utterance_start / 16) as u32
    }

    /// Adds audio.
    pub fn push(&mut self, samples: &[i16]) -> Segmented {
        let mut outcome = Segmented::Nothing;
        self.received += samples.len() as u64;
        for &s in samples {
            self.pending.push(s);
            if self.pending.len() == FRAME {
                let frame = std::mem::replace(&mut self.pending, Vec::with_capacity(FRAME));
                match self.frame(frame) {
                    Segmented::Nothing => {}
                    other => outcome = other,
                }
            }
        }
        outcome
    }

    fn frame(&mut self, frame: Vec<i16>) -> Segmented {
        let rms = rms(&frame);
        let loud = rms > (self.noise_rms * SNR_FACTOR).max(MIN_SPEECH_RMS);
        if self.in_speech {
            self.utterance.extend_from_slice(&frame);
            let resumed = loud && self.quiet_run >= PAUSE_FRAMES;
            self.quiet_run = if loud { 0 } else { self.quiet_run + 1 };
            return if self.utterance.len() >= MAX_UTTERANCE_SAMPLES {
                Segmented::Full
            } else if self.quiet_run >= ENDPOINT_FRAMES {
                Segmented::Endpoint
            } else if self.quiet_run == PAUSE_FRAMES {
                Segmented::Pause
            } else if resumed {
                Segmented::Resumed
            } else {
                Segmented::Nothing
            };
        }
        if loud {
            self.loud_run += 1;
        } else {
            self.loud_run = 0;
            // The floor falls fast and rises slowly, following the quietest recent frames.
            let rate = if rms < self.noise_rms { 0.3 } else { 0.02 };
            self.noise_rms += (rms - self.noise_rms) * rate;
        }
        self.pre_roll.push_back(frame);
        if self.pre_roll.len() > PRE_ROLL_FRAMES {
            self.pre_roll.pop_front();
        }
        if self.loud_run >= START_FRAMES {
            self.in_speech = true;
            self.utterance.clear();
            for f in self.pre_roll.drain(..) {
                self.utterance.extend_from_slice(&f);
            }
            self.utterance_start = (self.received - self.pending.len() as u64)
                .saturating_sub(self.utterance.len() as u64);
            return Segmented::SpeechStarted;
        }
        Segmented::Nothing
    }

    /// Hands over the utterance (with the partial last frame) and starts listening for the
    /// next one; `None` when no speech was heard.
    pub fn take(&mut self) -> Option<Vec<i16>> {
        if !self.in_speech {
            return None;
        }
        self.in_speech = false;
        self.loud_run = 0;
        self.quiet_run = 0;
        let mut utterance = std::mem::take(&mut self.utterance);
        utterance.extend_from_slice(&self.pending);
        self.pending.clear();
        self.pre_roll.clear();
        Some(utterance)
    }
}

fn rms(frame: &[i16]) -> f32 {
    let sum: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / frame.len().max(1) as f64).sqrt() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: usize, amplitude: f32) -> Vec<i16> {
        (0..ms * 16)
            .map(|i| {
                (amplitude * (i as f32 * 2.0 * std::f32::consts::PI * 220.0 / 16_000.0).sin())
                    as i16
            })
            .collect()
    }

    fn noise(ms: usize, amplitude: i16) -> Vec<i16> {
        // Deterministic pseudo-noise.
        let mut x: u32 = 12345;
        (0..ms * 16)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as i16 % amplitude.max(1)
            })
            .collect()
    }

    #[test]
    fn a_pause_of_300_ms_in_speech_ends_the_utterance() {
        let mut seg = Segmenter::new();
        seg.push(&noise(400, 150));
        assert_eq!(seg.push(&tone(600, 8000.0)), Segmented::SpeechStarted);
        // A pause shorter than the endpoint, then more speech: the same utterance.
        assert_eq!(seg.push(&vec![0; 280 * 16]), Segmented::Pause);
        assert_eq!(seg.quiet_samples(), 280 * 16);
        assert_eq!(seg.push(&tone(200, 8000.0)), Segmented::Resumed);
        assert_eq!(seg.quiet_samples(), 0);
        // A gap inside a word is no pause.
        assert_eq!(seg.push(&vec![0; 80 * 16]), Segmented::Nothing);
        assert_eq!(seg.push(&tone(200, 8000.0)), Segmented::Nothing);
        assert_eq!(seg.push(&vec![0; 280 * 16]), Segmented::Pause);
        assert_eq!(seg.push(&vec![0; 20 * 16]), Segmented::Endpoint);
        let utterance = seg.take().expect("the utterance");
        assert!(utterance.len() >= (600 + 280 + 200 + 80 + 200 + 300) * 16);
        assert!(!seg.in_speech());
    }

    #[test]
    fn silence_and_quiet_background_noise_are_not_speech() {
        let mut seg = Segmenter::new();
        assert_eq!(seg.push(&vec![0; 16_000]), Segmented::Nothing);
        for _ in 0..50 {
            assert_eq!(seg.push(&noise(20, 150)), Segmented::Nothing);
        }
        assert_eq!(seg.take(), None);
    }

    #[test]
    fn speech_after_silence_is_buffered_with_pre_roll_until_taken() {
        let mut seg = Segmenter::new();
        seg.push(&vec![0; 16_000]);
        let mut started = false;
        for _ in 0..50 {
            started |= seg.push(&tone(20, 8_000.0)) == Segmented::SpeechStarted;
        }
        assert!(started);
        assert!(seg.in_speech());
        let start_ms = seg.utterance_start_ms();
        assert!(
            (700..=1_000).contains(&start_ms),
            "pre-roll reaches back before 1 s: {start_ms}"
        );
        seg.push(&[7; 100]);
        let utterance = seg.take().expect("utterance");
        // 1 s of tone + up to 300 ms pre-roll + the partial frame.
        assert!(
            utterance.len() >= 16_000 + 100 && utterance.len() <= 16_000 + 4_800 + 100,
            "{}",
            utterance.len()
        );
        assert_eq!(*utterance.last().unwrap(), 7);
        assert!(!seg.in_speech());
        assert_eq!(seg.take(), None);
    }

    #[test]
    fn a_long_utterance_reports_full_at_thirty_seconds() {
        let mut seg = Segmenter::new();
        let mut full = false;
        for _ in 0..(31 * 50) {
            full |= seg.push(&tone(20, 8_000.0)) == Segmented::Full;
        }
        assert!(full);
    }
}
