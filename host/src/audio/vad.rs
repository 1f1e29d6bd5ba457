//! Voice activity detection: webrtc-vad frame decisions, debounced into speech start/end, and
//! (when asked for) the short pauses inside speech that an end-of-turn policy judges.

use webrtc_vad::{SampleRate, Vad, VadMode};

use super::{FRAME_MS, FRAME_SAMPLES};

/// How eagerly speech is detected and how long silence must last to end it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VadConfig {
    /// webrtc-vad mode, 0 (accepts most as speech) ..= 3 (most restrictive).
    pub aggressiveness: u8,
    /// Voiced 20 ms frames in a row needed to start speech (0 is treated as 1).
    pub start_frames: u32,
    /// Unvoiced audio, in ms, needed to end speech.
    pub hangover_ms: u32,
    /// Unvoiced audio, in ms, after which a pause inside speech is reported (`Pause`, and
    /// `Resume` if the voice comes back before the hangover ends); 0 reports none.
    pub pause_ms: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            aggressiveness: 2,
            start_frames: 3,
            hangover_ms: 600,
            pause_ms: 0,
        }
    }
}

/// A change between silence and speech.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadTransition {
    /// Speech began; `at_ms` is the start of the first voiced frame of the run.
    SpeechStart {
        /// Audio clock time in ms.
        at_ms: u64,
    },
    /// Speech ended; `at_ms` is the end of the last voiced frame.
    SpeechEnd {
        /// Audio clock time in ms.
        at_ms: u64,
    },
    /// The voice stopped `silence_ms` ago (`VadConfig::pause_ms`), speech not ended yet.
    Pause {
        /// Audio clock time in ms of the end of the last voiced frame.
        at_ms: u64,
        /// Unvoiced audio since then, in ms.
        silence_ms: u32,
    },
    /// The voice came back after a `Pause`, before the end of speech.
    Resume {
        /// Audio clock time in ms.
        at_ms: u64,
    },
}

/// Owns a webrtc-vad instance so it can move between threads.
struct SendVad(Vad);

// SAFETY: `Vad` is not `Send` only because it holds a raw pointer to its libfvad state.
// That state is a heap block owned solely by this value (freed on drop), it has no
// thread affinity and libfvad keeps no global or thread-local state, so moving it to
// another thread is sound. It is still used from one thread at a time (`&mut self`).
unsafe impl Send for SendVad {}

/// Debounces per-frame voice decisions into speech start and end events.
///
/// webrtc-vad keeps flagging frames as voiced for a few frames after the voice stops
/// (its own hysteresis: 3 to 7 frames of 20 ms depending on mode and on how long the
/// speech ran), and a frame more after a loud sound. The gate discounts both, so a start
/// needs `start_frames` frames the detector really heard as voice (with the defaults,
/// speech is confirmed 140 ms after it begins and reported from its first frame), and end
/// times and hangover count from where the voice most likely stopped rather than from
/// where the detector let go.
pub struct VoiceGate {
    vad: SendVad,
    start_frames: u32,
    hangover_ms: u32,
    pause_ms: u32,
    overhang: Overhang,
    in_speech: bool,
    /// A `Pause` was reported for the current silence.
    paused: bool,
    /// Consecutive frames the detector flagged as voiced, up to the latest one.
    flagged_run: u32,
    run_started_at: u64,
    speech_started_at: Option<u64>,
    /// Estimated end of the voice in the latest flagged run.
    voice_end: u64,
    /// Unvoiced audio since `voice_end`, including the detector's overhang.
    silence_ms: u32,
}

/// Frames of 20 ms that webrtc-vad keeps flagging after the last voiced frame.
#[derive(Clone, Copy)]
struct Overhang {
    /// After short speech (up to `LONG_SPEECH_FRAMES` voiced frames in a row).
    short: u32,
    /// After longer speech.
    long: u32,
}

/// Voiced frames in a row after which webrtc-vad switches to its longer overhang.
const LONG_SPEECH_FRAMES: u32 = 7;
/// Frames after a loud sound that webrtc-vad may still judge voiced before its overhang
/// starts (its filters carry the energy over): a 40 ms click is flagged for 6 frames.
const SPILL_FRAMES: u32 = 1;

impl VoiceGate {
    /// A gate for 16 kHz, 20 ms frames; fails if `aggressiveness` is above 3.
    pub fn new(cfg: VadConfig) -> Result<Self, String> {
        // Overhang figures are libfvad's `kOverHangMax{1,2}*` for 20 ms frames.
        let (mode, overhang) = match cfg.aggressiveness {
            0 => (VadMode::Quality, Overhang { short: 4, long: 7 }),
            1 => (VadMode::LowBitrate, Overhang { short: 4, long: 7 }),
            2 => (VadMode::Aggressive, Overhang { short: 3, long: 5 }),
            3 => (VadMode::VeryAggressive, Overhang { short: 3, long: 5 }),
            other => return Err(format!("VAD aggressiveness {other} is outside 0..=3")),
        };
        Ok(Self {
            vad: SendVad(Vad::new_with_rate_and_mode(SampleRate::Rate16kHz, mode)),
            start_frames: cfg.start_frames.max(1),
            hangover_ms: cfg.hangover_ms,
            pause_ms: cfg.pause_ms,
            overhang,
            in_speech: false,
            paused: false,
            flagged_run: 0,
            run_started_at: 0,
            speech_started_at: None,
            voice_end: 0,
            silence_ms: 0,
        })
    }

    /// Classifies one 20 ms, 16 kHz frame starting at `at_ms` and reports a transition, if any.
    ///
    /// A frame of any other length is ignored.
    pub fn process(&mut self, frame: &[i16], at_ms: u64) -> Option<VadTransition> {
        if frame.len() != FRAME_SAMPLES {
            return None;
        }
        let flagged = self.vad.0.is_voice_segment(frame).unwrap_or(false);
        if flagged {
            if self.flagged_run == 0 {
                self.run_started_at = at_ms;
            }
            self.flagged_run = self.flagged_run.saturating_add(1);
            let overhang = self.overhang_frames();
            // The run's last `overhang` frames may be the detector's hysteresis, not voice.
            self.voice_end = at_ms + u64::from(FRAME_MS)
                - u64::from(overhang.min(self.flagged_run - 1) * FRAME_MS);
            self.silence_ms = (overhang.min(self.flagged_run - 1)) * FRAME_MS;
        } else {
            self.flagged_run = 0;
            self.silence_ms = self.silence_ms.saturating_add(FRAME_MS);
        }
        if !self.in_speech {
            // Ask for enough flagged frames that `start_frames` of them are real voice.
            let needed = self.start_frames + SPILL_FRAMES + self.overhang_frames();
            if flagged && self.flagged_run >= needed {
                self.in_speech = true;
                self.speech_started_at = Some(self.run_started_at);
                return Some(VadTransition::SpeechStart {
                    at_ms: self.run_started_at,
                });
            }
            return None;
        }
        if self.paused && flagged {
            // Voice again before the end of speech.
            self.paused = false;
            return Some(VadTransition::Resume { at_ms });
        }
        if flagged || self.silence_ms < self.hangover_ms {
            if self.pause_ms > 0 && !self.paused && !flagged && self.silence_ms >= self.pause_ms {
                self.paused = true;
                return Some(VadTransition::Pause {
                    at_ms: self.voice_end,
                    silence_ms: self.silence_ms,
                });
            }
            return None;
        }
        Some(self.end())
    }

    /// Ends the current speech now (an end-of-turn policy decided the user has finished),
    /// as if the hangover had passed; `None` when not in speech. Voice after this starts new
    /// speech.
    pub fn end_now(&mut self) -> Option<VadTransition> {
        self.in_speech.then(|| self.end())
    }

    fn end(&mut self) -> VadTransition {
        let started = self.speech_started_at.take().unwrap_or(0);
        self.in_speech = false;
        self.paused = false;
        VadTransition::SpeechEnd {
            at_ms: self.voice_end.max(started),
        }
    }

    /// Overhang the detector applies after the current run of flagged frames.
    fn overhang_frames(&self) -> u32 {
        // A long overhang needs more than `LONG_SPEECH_FRAMES` voiced frames in a row and
        // is then itself flagged, so shorter runs can only carry the short one.
        if self.flagged_run >= LONG_SPEECH_FRAMES + self.overhang.long {
            self.overhang.long
        } else {
            self.overhang.short
        }
    }

    /// Whether the gate is currently in speech.
    pub fn in_speech(&self) -> bool {
        self.in_speech
    }

    /// When the current speech began, if in speech.
    pub fn speech_started_at(&self) -> Option<u64> {
        self.speech_started_at
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::audio::PIPELINE_RATE;

    /// A deterministic voice-like signal at 16 kHz: a 120 Hz glottal pulse train through
    /// three formant resonators (an /a/ vowel), with a gentle pitch wobble and an
    /// attack/release envelope.
    pub(crate) fn synthetic_vowel(ms: u32) -> Vec<i16> {
        let rate = PIPELINE_RATE as f64;
        let n = ms as usize * (PIPELINE_RATE as usize / 1000);
        let mut formants = [
            Resonator::new(730.0, 90.0, rate),
            Resonator::new(1_090.0, 110.0, rate),
            Resonator::new(2_440.0, 170.0, rate),
        ];
        let mut phase = 0.0f64;
        let mut raw = Vec::with_capacity(n);
        for i in 0..n {
            let t = i as f64 / rate;
            let f0 = 120.0 + 8.0 * (std::f64::consts::TAU * 3.0 * t).sin();
            phase += f0 / rate;
            // A Rosenberg-like pulse: the glottis opens over 40% of the period, then closes.
            let p = phase.fract();
            let pulse = if p < 0.4 {
                0.5 * (1.0 - (std::f64::consts::PI * p / 0.4).cos())
            } else if p < 0.56 {
                (std::f64::consts::FRAC_PI_2 * (p - 0.4) / 0.16).cos()
            } else {
                0.0
            };
            // Differentiating the flow gives the excitation the vocal tract sees.
            raw.push(pulse);
        }
        let mut prev = 0.0;
        let mut out = Vec::with_capacity(n);
        let max_env = (ms as f64 / 1000.0).min(0.05);
        let mut filtered = Vec::with_capacity(n);
        for (i, &x) in raw.iter().enumerate() {
            let excitation = x - prev;
            prev = x;
            let y: f64 = formants.iter_mut().map(|r| r.step(excitation)).sum();
            let t = i as f64 / rate;
            let left = (n - i) as f64 / rate;
            let envelope = (t / max_env).min(1.0) * (left / max_env).min(1.0);
            filtered.push(y * envelope);
        }
        let peak = filtered
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()))
            .max(1e-9);
        for y in filtered {
            out.push((y / peak * 12_000.0) as i16);
        }
        out
    }

    /// Two-pole resonator with unit gain at its centre frequency.
    struct Resonator {
        a1: f64,
        a2: f64,
        gain: f64,
        y1: f64,
        y2: f64,
    }

    impl Resonator {
        fn new(freq: f64, bandwidth: f64, rate: f64) -> Self {
            let r = (-std::f64::consts::PI * bandwidth / rate).exp();
            let theta = std::f64::consts::TAU * freq / rate;
            Self {
                a1: 2.0 * r * theta.cos(),
                a2: -r * r,
                gain: 1.0 - r,
                y1: 0.0,
                y2: 0.0,
            }
        }

        fn step(&mut self, x: f64) -> f64 {
            let y = self.gain * x + self.a1 * self.y1 + self.a2 * self.y2;
            self.y2 = self.y1;
            self.y1 = y;
            y
        }
    }

    /// Deterministic white noise (xorshift) at the given peak level.
    pub(crate) fn noise(samples: usize, level: i16, seed: u32) -> Vec<i16> {
        let mut state = seed.max(1);
        (0..samples)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                ((((state >> 16) as i32 - 32_768) * i32::from(level)) / 32_768) as i16
            })
            .collect()
    }

    /// Runs `signal` through a gate in 20 ms frames, returning the transitions.
    fn run(gate: &mut VoiceGate, signal: &[i16]) -> Vec<VadTransition> {
        signal
            .chunks_exact(320)
            .enumerate()
            .filter_map(|(i, frame)| gate.process(frame, i as u64 * 20))
            .collect()
    }

    fn voiced_frames(signal: &[i16]) -> usize {
        let mut vad = Vad::new_with_rate_and_mode(SampleRate::Rate16kHz, VadMode::Aggressive);
        signal
            .chunks_exact(320)
            .filter(|f| vad.is_voice_segment(f) == Ok(true))
            .count()
    }

    #[test]
    fn synthetic_vowel_is_voiced_for_webrtc_vad() {
        let vowel = synthetic_vowel(1_000);
        let voiced = voiced_frames(&vowel);
        assert!(voiced >= 45, "only {voiced} of 50 frames voiced");
    }

    #[test]
    fn silence_gives_nothing() {
        let mut gate = VoiceGate::new(VadConfig::default()).unwrap();
        assert!(run(&mut gate, &vec![0; 16_000 * 3]).is_empty());
        assert!(!gate.in_speech());
        let quiet = noise(16_000 * 3, 30, 7);
        assert!(run(&mut gate, &quiet).is_empty());
    }

    #[test]
    fn short_noise_blip_gives_nothing() {
        let mut signal = vec![0i16; 320 * 20];
        let blip = noise(640, 20_000, 99);
        signal[320 * 10..320 * 12].copy_from_slice(&blip);
        // The raw detector does flag the blip, so the gate is what keeps it out.
        assert!(
            voiced_frames(&signal) >= 1,
            "blip not voiced; test proves nothing"
        );
        let mut gate = VoiceGate::new(VadConfig::default()).unwrap();
        assert!(run(&mut gate, &signal).is_empty());
    }

    #[test]
    fn short_word_starts_speech() {
        let mut signal = vec![0i16; 320 * 10];
        signal.extend(synthetic_vowel(100));
        signal.extend(vec![0i16; 320 * 10]);
        let mut gate = VoiceGate::new(VadConfig::default()).unwrap();
        let events = run(&mut gate, &signal);
        assert_eq!(
            events.first(),
            Some(&VadTransition::SpeechStart { at_ms: 200 })
        );
    }

    #[test]
    fn voiced_signal_gives_one_start_and_one_end() {
        let mut signal = vec![0i16; 16_000 / 2];
        signal.extend(synthetic_vowel(1_000));
        signal.extend(vec![0i16; 16_000 * 2]);
        let mut gate = VoiceGate::new(VadConfig::default()).unwrap();
        let events = run(&mut gate, &signal);
        assert_eq!(events.len(), 2, "{events:?}");
        let VadTransition::SpeechStart { at_ms: start } = events[0] else {
            panic!("first event {:?}", events[0]);
        };
        let VadTransition::SpeechEnd { at_ms: end } = events[1] else {
            panic!("second event {:?}", events[1]);
        };
        assert!((500..=560).contains(&start), "start at {start}");
        assert!((1_440..=1_520).contains(&end), "end at {end}");
        assert!(!gate.in_speech());
    }

    #[test]
    fn speech_state_is_visible_while_speaking() {
        let mut gate = VoiceGate::new(VadConfig::default()).unwrap();
        let events = run(&mut gate, &synthetic_vowel(500));
        assert!(matches!(
            events.as_slice(),
            [VadTransition::SpeechStart { .. }]
        ));
        assert!(gate.in_speech());
        assert!(gate.speech_started_at().is_some_and(|t| t <= 60));
    }

    #[test]
    fn speech_end_waits_for_the_hangover() {
        let cfg = VadConfig {
            hangover_ms: 200,
            ..VadConfig::default()
        };
        let mut gate = VoiceGate::new(cfg).unwrap();
        let mut signal = synthetic_vowel(400);
        // A 100 ms pause is shorter than the hangover and must not split the utterance.
        signal.extend(vec![0i16; 1_600]);
        signal.extend(synthetic_vowel(400));
        signal.extend(vec![0i16; 16_000]);
        let events = run(&mut gate, &signal);
        assert_eq!(events.len(), 2, "{events:?}");
        let VadTransition::SpeechEnd { at_ms: end } = events[1] else {
            panic!("{events:?}");
        };
        assert!((860..=920).contains(&end), "end at {end}");
    }

    #[test]
    fn a_pause_inside_speech_is_reported_and_so_is_the_voice_coming_back() {
        let cfg = VadConfig {
            pause_ms: 200,
            ..VadConfig::default()
        };
        let mut gate = VoiceGate::new(cfg).unwrap();
        let mut signal = synthetic_vowel(600);
        // 400 ms of silence: a pause (200 ms), not an end (600 ms).
        signal.extend(vec![0i16; 16 * 400]);
        signal.extend(synthetic_vowel(600));
        signal.extend(vec![0i16; 16_000]);
        let events = run(&mut gate, &signal);
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| match e {
                VadTransition::SpeechStart { .. } => "start",
                VadTransition::Pause { .. } => "pause",
                VadTransition::Resume { .. } => "resume",
                VadTransition::SpeechEnd { .. } => "end",
            })
            .collect();
        assert_eq!(
            kinds,
            ["start", "pause", "resume", "pause", "end"],
            "{events:?}"
        );
        let VadTransition::Pause { at_ms, silence_ms } = events[1] else {
            unreachable!()
        };
        assert!((560..=620).contains(&at_ms), "voice ended at {at_ms}");
        assert!((200..=240).contains(&silence_ms), "{silence_ms}");
        // Without `pause_ms` the same audio is one utterance and nothing else.
        let mut plain = VoiceGate::new(VadConfig::default()).unwrap();
        assert_eq!(run(&mut plain, &signal).len(), 2);
    }

    #[test]
    fn ending_speech_now_makes_the_next_voice_new_speech() {
        let cfg = VadConfig {
            pause_ms: 200,
            ..VadConfig::default()
        };
        let mut gate = VoiceGate::new(cfg).unwrap();
        let mut first = synthetic_vowel(600);
        first.extend(vec![0i16; 16 * 250]);
        let events = run(&mut gate, &first);
        assert!(
            matches!(events.last(), Some(VadTransition::Pause { .. })),
            "{events:?}"
        );
        let ended = gate.end_now();
        assert!(
            matches!(ended, Some(VadTransition::SpeechEnd { at_ms }) if (560..=620).contains(&at_ms)),
            "{ended:?}"
        );
        assert!(!gate.in_speech());
        assert_eq!(gate.end_now(), None, "nothing left to end");
        let events = run(&mut gate, &synthetic_vowel(600));
        assert!(
            matches!(events.first(), Some(VadTransition::SpeechStart { .. })),
            "{events:?}"
        );
    }

    #[test]
    fn rejects_bad_aggressiveness_and_odd_frames() {
        assert!(VoiceGate::new(VadConfig {
            aggressiveness: 4,
            ..VadConfig::default()
        })
        .is_err());
        let mut gate = VoiceGate::new(VadConfig::default()).unwrap();
        assert_eq!(gate.process(&[], 0), None);
        assert_eq!(gate.process(&[0; 100], 0), None);
    }
}
