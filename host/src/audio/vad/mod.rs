//! Voice activity detection: a frame classifier (webrtc-vad, or Silero VAD with `VAD_ENGINE=silero`)
//! decides per 20 ms frame whether it is voiced, and [`VoiceGate`] debounces those decisions into
//! speech start/end and (when asked for) the short pauses inside speech that an end-of-turn
//! policy judges.
//!
//! - [`webrtc`]: webrtc-vad, and the hold-over it adds after voice that the gate discounts;
//! - [`silero`]: Silero VAD v5 per session stream (windows, recurrent state, thresholds);
//! - [`silero_model`]: the Silero model on ONNX Runtime, loaded once and shared by all sessions.
//!
//! The gate does no I/O: the Silero model is loaded at start-up and handed in as a [`VadEngine`].

mod silero;
mod silero_model;
mod webrtc;

pub use silero_model::{SileroError, SileroVad};

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
    /// Report voice before it is confirmed as speech: `Onset` at the first voiced frame of a
    /// run, then `SpeechStart` or `FalseOnset`. A session holds a reply nobody has heard yet
    /// from there, so that it does not start over a user who is only beginning to speak.
    pub onsets: bool,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            aggressiveness: 2,
            start_frames: 3,
            hangover_ms: 600,
            pause_ms: 0,
            onsets: false,
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
    /// Outside speech, voice may be beginning: the first voiced frame of a run, not yet
    /// enough to start speech (`VadConfig::onsets`). `SpeechStart` or `FalseOnset` follows.
    Onset {
        /// Audio clock time in ms of where the voice most likely began.
        at_ms: u64,
    },
    /// The voice reported by `Onset` stopped before it was confirmed as speech (a click, a
    /// breath, a burst of noise).
    FalseOnset {
        /// Audio clock time in ms of the frame that was not voiced.
        at_ms: u64,
    },
}

/// Decides, frame by frame, whether audio is voiced: the part of VAD that differs by engine.
///
/// A classifier may be late on both edges of the voice (it needs some of the voice to hear it,
/// and may hold a decision a while after the voice stops); it tells the gate by how much, so that
/// the gate's times and counts are about the voice, whichever engine heard it.
pub(crate) trait FrameClassifier: Send {
    /// Whether this 20 ms, 16 kHz frame (the next one of the stream) is voiced. `in_speech`:
    /// whether the gate is in speech, for classifiers whose state handling depends on it.
    fn classify(&mut self, frame: &[i16], in_speech: bool) -> bool;

    /// Of a run of `run` (>= 1) voiced frames ending with the latest frame, how many at its end
    /// may be the classifier holding on after the voice stopped rather than voice (at most
    /// `run - 1`).
    fn trailing_hold(&self, run: u32) -> u32;

    /// Voiced frames a run of `run` frames needs beyond `VadConfig::start_frames` before the
    /// gate starts speech: those the classifier may flag without voice (a loud click's spill,
    /// its hold-over), so that `start_frames` of them are real voice.
    fn start_margin(&self, run: u32) -> u32;

    /// Frames before the first voiced frame of a run where its voice most likely began (a
    /// classifier that judges longer stretches than a frame hears voice late).
    fn onset_lead(&self) -> u32;
}

/// Which frame classifier the gates of this process run (`VAD_ENGINE`); cheap to clone.
#[derive(Clone, Default)]
pub enum VadEngine {
    /// webrtc-vad (the default): about 2 us of CPU per frame, no model file.
    #[default]
    WebRtc,
    /// Silero VAD v5 on ONNX Runtime: hears voice sooner and is not fooled by clicks, for about
    /// 0.1 ms of CPU per 32 ms of audio (see `docs/benchmarks.md`).
    Silero(SileroVad),
}

impl VadEngine {
    /// The value as written in `VAD_ENGINE`.
    pub fn name(&self) -> &'static str {
        match self {
            VadEngine::WebRtc => "webrtc",
            VadEngine::Silero(_) => "silero",
        }
    }
}

impl std::fmt::Debug for VadEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Debounces per-frame voice decisions into speech start and end events.
///
/// A start needs `start_frames` frames in a row the classifier really heard as voice (with
/// webrtc-vad and the defaults, speech is confirmed 140 ms after it begins; with Silero, 60 to
/// 100 ms) and is reported from the run's first frame; end times and hangover count from where
/// the voice most likely stopped rather than from where the classifier let go.
pub struct VoiceGate {
    classifier: Box<dyn FrameClassifier>,
    start_frames: u32,
    hangover_ms: u32,
    pause_ms: u32,
    onsets: bool,
    in_speech: bool,
    /// An `Onset` was reported and neither `SpeechStart` nor `FalseOnset` has followed.
    onset_open: bool,
    /// A `Pause` was reported for the current silence.
    paused: bool,
    /// Consecutive frames the classifier flagged as voiced, up to the latest one.
    flagged_run: u32,
    run_started_at: u64,
    speech_started_at: Option<u64>,
    /// Estimated end of the voice in the latest flagged run.
    voice_end: u64,
    /// Unvoiced audio since `voice_end`, including the classifier's hold-over.
    silence_ms: u32,
}

impl VoiceGate {
    /// A webrtc-vad gate for 16 kHz, 20 ms frames; fails if `aggressiveness` is above 3.
    pub fn new(cfg: VadConfig) -> Result<Self, String> {
        Self::with_engine(cfg, &VadEngine::WebRtc)
    }

    /// A gate running `engine`'s classifier (a Silero gate has its own stream state).
    pub fn with_engine(cfg: VadConfig, engine: &VadEngine) -> Result<Self, String> {
        let classifier: Box<dyn FrameClassifier> = match engine {
            VadEngine::WebRtc => Box::new(webrtc::WebRtcFrames::new(cfg.aggressiveness)?),
            VadEngine::Silero(model) => Box::new(silero::SileroFrames::new(model.clone())),
        };
        Ok(Self {
            classifier,
            start_frames: cfg.start_frames.max(1),
            hangover_ms: cfg.hangover_ms,
            pause_ms: cfg.pause_ms,
            onsets: cfg.onsets,
            in_speech: false,
            onset_open: false,
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
        let flagged = self.classifier.classify(frame, self.in_speech);
        if flagged {
            if self.flagged_run == 0 {
                // Never before the end of the voice heard last.
                let lead = u64::from(self.classifier.onset_lead() * FRAME_MS);
                self.run_started_at = at_ms.saturating_sub(lead).max(self.voice_end).min(at_ms);
            }
            self.flagged_run = self.flagged_run.saturating_add(1);
            // The run's last frames may be the classifier's hold-over, not voice.
            let hold = self
                .classifier
                .trailing_hold(self.flagged_run)
                .min(self.flagged_run - 1);
            self.voice_end = at_ms + u64::from(FRAME_MS) - u64::from(hold * FRAME_MS);
            self.silence_ms = hold * FRAME_MS;
        } else {
            self.flagged_run = 0;
            self.silence_ms = self.silence_ms.saturating_add(FRAME_MS);
        }
        if !self.in_speech {
            let needed = self.start_frames + self.classifier.start_margin(self.flagged_run);
            if flagged && self.flagged_run >= needed {
                self.in_speech = true;
                self.onset_open = false;
                self.speech_started_at = Some(self.run_started_at);
                return Some(VadTransition::SpeechStart {
                    at_ms: self.run_started_at,
                });
            }
            if self.onsets && flagged != self.onset_open {
                self.onset_open = flagged;
                return Some(if flagged {
                    VadTransition::Onset {
                        at_ms: self.run_started_at,
                    }
                } else {
                    VadTransition::FalseOnset { at_ms }
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
pub(crate) mod tests;
