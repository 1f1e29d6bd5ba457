//! Silero VAD v5 on one stream: 20 ms frames cut into the model's windows, the recurrent state
//! and context carried from window to window, and the model's probability turned into a voiced
//! or unvoiced frame.
//!
//! The contract (silero-vad's `OnnxWrapper`, pipecat's `SileroOnnxModel`): each call takes 512
//! new samples at 16 kHz (32 ms) as f32 in -1..1, preceded by the last 64 samples of the previous
//! window (zeros at first), and the state the previous call returned (zeros at first); it answers
//! the probability that the 512 samples are speech and the next state.
//!
//! Choices, where 512-sample windows meet 20 ms frames:
//! - a frame takes the probability of the latest window that ended within it or before it (at
//!   most one ends in a frame; a frame without one keeps the previous window's probability), so
//!   a decision is never about audio that has not arrived yet;
//! - thresholds are silero's own iterator's: a frame becomes voiced at a probability of
//!   [`THRESHOLD`] or more and stays voiced until it falls below [`NEG_THRESHOLD`]
//!   (`THRESHOLD - 0.15`), so a probability between the two neither starts nor ends voice;
//! - the state and context are reset as pipecat resets them: after 2 s of audio since the last
//!   reset, once the gate is out of speech and 5 windows in a row scored below 0.1. Long silence
//!   or noise drifts the recurrent state so the model under-reports the speech that follows; a
//!   reset during speech would make it lose confidence mid-word, hence waiting for quiet.

use super::silero_model::{SileroVad, STATE_LEN};
use super::FrameClassifier;

/// New samples per window (32 ms at 16 kHz).
pub(crate) const CHUNK: usize = 512;
/// Samples of the previous window that precede the new ones.
pub(crate) const CONTEXT: usize = 64;
/// The model's input length.
pub(crate) const WINDOW: usize = CONTEXT + CHUNK;
/// Probability at or above which a frame becomes voiced (silero's default `threshold`).
pub(crate) const THRESHOLD: f32 = 0.5;
/// Probability below which a voiced frame stops being voiced (silero's `neg_threshold`).
pub(crate) const NEG_THRESHOLD: f32 = THRESHOLD - 0.15;
/// Windows after which a reset is due: 2 s of audio (pipecat's `_MODEL_RESET_INTERVAL_SECS`).
const RESET_INTERVAL_WINDOWS: u32 = 2 * 16_000_u32.div_ceil(CHUNK as u32);
/// A due reset waits for this many windows in a row below [`RESET_MAX_CONFIDENCE`].
const RESET_LOW_WINDOWS: u32 = 5;
/// Probability below which a window counts as clear non-speech for a reset.
const RESET_MAX_CONFIDENCE: f32 = 0.1;

/// Cuts a stream of 16 kHz samples into the model's windows: 64 samples of context, then 512 new.
pub(crate) struct Windower {
    /// The window being filled: context in `..CONTEXT`, new samples after it.
    filling: [f32; WINDOW],
    /// New samples in `filling`.
    filled: usize,
    /// The latest complete window.
    ready: [f32; WINDOW],
}

impl Windower {
    pub(crate) fn new() -> Self {
        Self {
            filling: [0.0; WINDOW],
            filled: 0,
            ready: [0.0; WINDOW],
        }
    }

    /// Appends `samples` (at most [`CHUNK`] of them, so at most one window completes); returns the
    /// window they completed, if any.
    pub(crate) fn push(&mut self, samples: &[i16]) -> Option<&[f32; WINDOW]> {
        debug_assert!(samples.len() <= CHUNK);
        let mut complete = false;
        for &s in samples {
            self.filling[CONTEXT + self.filled] = f32::from(s) / 32_768.0;
            self.filled += 1;
            if self.filled == CHUNK {
                self.ready = self.filling;
                // The next window's context is this one's last samples.
                self.filling.copy_within(CHUNK.., 0);
                self.filled = 0;
                complete = true;
            }
        }
        complete.then_some(&self.ready)
    }

    /// Forgets the context (the next window starts from zeros, as the first one did); samples
    /// not yet in a window stay.
    pub(crate) fn reset_context(&mut self) {
        self.filling[..CONTEXT].fill(0.0);
    }
}

/// Silero VAD on one session's audio.
pub(super) struct SileroFrames {
    model: SileroVad,
    windows: Windower,
    state: [f32; STATE_LEN],
    /// The latest window's probability.
    probability: f32,
    voiced: bool,
    windows_since_reset: u32,
    low_windows: u32,
    /// An inference error was logged for this stream (one line per stream, not per window).
    reported: bool,
}

impl SileroFrames {
    pub(super) fn new(model: SileroVad) -> Self {
        Self {
            model,
            windows: Windower::new(),
            state: [0.0; STATE_LEN],
            probability: 0.0,
            voiced: false,
            windows_since_reset: 0,
            low_windows: 0,
            reported: false,
        }
    }

    /// After a window scored: resets the model's state when due and the user is quiet.
    fn maybe_reset(&mut self, in_speech: bool) {
        self.windows_since_reset += 1;
        if self.probability < RESET_MAX_CONFIDENCE {
            self.low_windows += 1;
        } else {
            self.low_windows = 0;
        }
        if self.windows_since_reset >= RESET_INTERVAL_WINDOWS
            && !in_speech
            && self.low_windows >= RESET_LOW_WINDOWS
        {
            self.state = [0.0; STATE_LEN];
            self.windows.reset_context();
            self.windows_since_reset = 0;
        }
    }
}

impl FrameClassifier for SileroFrames {
    fn classify(&mut self, frame: &[i16], in_speech: bool) -> bool {
        if let Some(window) = self.windows.push(frame) {
            self.probability = match self.model.infer(window, &mut self.state) {
                Ok(p) => p,
                Err(e) => {
                    // Unvoiced rather than a dropped session: the user's next turn may still be
                    // heard, and the error is logged once.
                    if !self.reported {
                        self.reported = true;
                        tracing::error!(error = %e, "Silero VAD inference failed: frames count as unvoiced");
                    }
                    0.0
                }
            };
            self.maybe_reset(in_speech);
        }
        self.voiced = next_voiced(self.voiced, self.probability);
        self.voiced
    }

    fn trailing_hold(&self, _run: u32) -> u32 {
        HOLD_FRAMES
    }

    fn start_margin(&self, _run: u32) -> u32 {
        0
    }

    fn onset_lead(&self) -> u32 {
        LEAD_FRAMES
    }
}

/// Silero's hysteresis: voice starts at [`THRESHOLD`] and ends below [`NEG_THRESHOLD`].
pub(crate) fn next_voiced(voiced: bool, probability: f32) -> bool {
    if voiced {
        probability >= NEG_THRESHOLD
    } else {
        probability >= THRESHOLD
    }
}

/// Frames at the end of a voiced run that may be the model holding on after the voice stopped:
/// on the espeak-ng fixtures its probability stays above [`NEG_THRESHOLD`] 70 to 130 ms past the
/// voice's end (two to four windows), so 60 ms are discounted, leaving the end a little late
/// rather than early.
const HOLD_FRAMES: u32 = 3;
/// Frames before its first voiced frame where a run's voice most likely began: the window that
/// flagged it began 12 to 32 ms before that frame, and on the fixtures the model hears voice 40
/// to 100 ms after it begins.
const LEAD_FRAMES: u32 = 2;

#[cfg(test)]
mod tests;
