//! Audio I/O: codecs (PCM16, G.711 mu-law), resampling, 20 ms framing and voice activity detection.
//!
//! Inbound audio is decoded, resampled to [`PIPELINE_RATE`] and cut into [`FRAME_MS`] frames
//! for the VAD and speech-to-text ([`InputPipeline`]); synthesised speech is resampled to the
//! client's rate and encoded ([`OutputPipeline`]).

mod codec;
mod framer;
mod input;
mod output;
mod resample;
mod vad;
mod wav;

pub use codec::{
    linear_to_mulaw, mulaw_to_linear, AudioFormat, Decoder, Encoding, MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
};
pub use framer::Framer;
pub use input::InputPipeline;
pub use output::OutputPipeline;
pub use resample::Resampler;
pub use vad::{SileroError, SileroVad, VadConfig, VadEngine, VadTransition, VoiceGate};
pub use wav::{decode_wav_mono_i16, read_wav_mono_i16, write_wav_mono_i16};

/// Length of one pipeline frame in ms.
pub const FRAME_MS: u32 = 20;
/// Sample rate of the internal pipeline (VAD and speech-to-text) in Hz.
pub const PIPELINE_RATE: u32 = 16_000;
/// Samples in one pipeline frame.
pub const FRAME_SAMPLES: usize = (PIPELINE_RATE / 1000 * FRAME_MS) as usize;
