//! webrtc-vad as a frame classifier, with the hold-over it applies after voice.

use super::FrameClassifier;
use webrtc_vad::{SampleRate, Vad, VadMode};

/// Owns a webrtc-vad instance so it can move between threads.
struct SendVad(Vad);

// SAFETY: `Vad` is not `Send` only because it holds a raw pointer to its libfvad state.
// That state is a heap block owned solely by this value (freed on drop), it has no
// thread affinity and libfvad keeps no global or thread-local state, so moving it to
// another thread is sound. It is still used from one thread at a time (`&mut self`).
unsafe impl Send for SendVad {}

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

/// webrtc-vad on 20 ms frames.
///
/// webrtc-vad keeps flagging frames as voiced for a few frames after the voice stops (its own
/// hysteresis: 3 to 7 frames of 20 ms depending on mode and on how long the speech ran), and a
/// frame more after a loud sound. The gate discounts both through [`FrameClassifier`]: with the
/// default 3 start frames, speech is confirmed 140 ms after it begins.
pub(super) struct WebRtcFrames {
    vad: SendVad,
    overhang: Overhang,
}

impl WebRtcFrames {
    /// webrtc-vad in mode `aggressiveness` (0..=3).
    pub(super) fn new(aggressiveness: u8) -> Result<Self, String> {
        // Overhang figures are libfvad's `kOverHangMax{1,2}*` for 20 ms frames.
        let (mode, overhang) = match aggressiveness {
            0 => (VadMode::Quality, Overhang { short: 4, long: 7 }),
            1 => (VadMode::LowBitrate, Overhang { short: 4, long: 7 }),
            2 => (VadMode::Aggressive, Overhang { short: 3, long: 5 }),
            3 => (VadMode::VeryAggressive, Overhang { short: 3, long: 5 }),
            other => return Err(format!("VAD aggressiveness {other} is outside 0..=3")),
        };
        Ok(Self {
            vad: SendVad(Vad::new_with_rate_and_mode(SampleRate::Rate16kHz, mode)),
            overhang,
        })
    }

    /// Overhang the detector applies after a run of `run` flagged frames.
    fn overhang_frames(&self, run: u32) -> u32 {
        // A long overhang needs more than `LONG_SPEECH_FRAMES` voiced frames in a row and
        // is then itself flagged, so shorter runs can only carry the short one.
        if run >= LONG_SPEECH_FRAMES + self.overhang.long {
            self.overhang.long
        } else {
            self.overhang.short
        }
    }
}

impl FrameClassifier for WebRtcFrames {
    fn classify(&mut self, frame: &[i16], _in_speech: bool) -> bool {
        self.vad.0.is_voice_segment(frame).unwrap_or(false)
    }

    fn trailing_hold(&self, run: u32) -> u32 {
        self.overhang_frames(run).min(run.saturating_sub(1))
    }

    fn start_margin(&self, run: u32) -> u32 {
        SPILL_FRAMES + self.overhang_frames(run)
    }

    fn onset_lead(&self) -> u32 {
        0
    }
}
