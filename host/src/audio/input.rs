//! Inbound audio: client bytes to 20 ms, 16 kHz frames with voice activity decisions.

use super::codec::{AudioFormat, Decoder};
use super::framer::Framer;
use super::resample::Resampler;
use super::vad::{VadConfig, VadEngine, VadTransition, VoiceGate};
use super::{FRAME_MS, FRAME_SAMPLES, PIPELINE_RATE};

/// Decodes, resamples to 16 kHz, frames at 20 ms and runs the VAD on a client's audio.
///
/// Frame times come from the audio itself (20 ms per frame since the session began), not
/// from the wall clock, so they stay exact however the network bunches the packets.
pub struct InputPipeline {
    decoder: Decoder,
    resampler: Resampler,
    framer: Framer,
    gate: VoiceGate,
    decoded: Vec<i16>,
    resampled: Vec<i16>,
    frames: u64,
}

impl InputPipeline {
    /// A pipeline for audio arriving in `format` with webrtc-vad; fails on an unsupported rate
    /// or VAD setting.
    pub fn new(format: AudioFormat, vad: VadConfig) -> Result<Self, String> {
        Self::with_engine(format, vad, &VadEngine::WebRtc)
    }

    /// Like [`InputPipeline::new`], running `engine`'s VAD.
    pub fn with_engine(
        format: AudioFormat,
        vad: VadConfig,
        engine: &VadEngine,
    ) -> Result<Self, String> {
        format.validate()?;
        Ok(Self {
            decoder: Decoder::new(format),
            resampler: Resampler::new(format.sample_rate, PIPELINE_RATE)?,
            framer: Framer::new(FRAME_SAMPLES),
            gate: VoiceGate::with_engine(vad, engine)?,
            decoded: Vec::new(),
            resampled: Vec::new(),
            frames: 0,
        })
    }

    /// The client format this pipeline decodes.
    pub fn format(&self) -> AudioFormat {
        self.decoder.format()
    }

    /// Ends the VAD's current speech now (an end-of-turn policy decided the user has finished);
    /// `None` when no speech is in progress.
    pub fn end_speech_now(&mut self) -> Option<VadTransition> {
        self.gate.end_now()
    }

    /// Feeds client bytes; calls `on_frame(frame, frame_start_ms, transition)` for each
    /// completed 20 ms frame at 16 kHz, with the VAD transition that frame caused, if any.
    pub fn push(
        &mut self,
        bytes: &[u8],
        mut on_frame: impl FnMut(&[i16], u64, Option<VadTransition>),
    ) {
        self.decoded.clear();
        self.decoder.decode(bytes, &mut self.decoded);
        self.resampled.clear();
        self.resampler.process(&self.decoded, &mut self.resampled);
        let gate = &mut self.gate;
        let frames = &mut self.frames;
        self.framer.push(&self.resampled, |frame| {
            let at_ms = *frames * u64::from(FRAME_MS);
            *frames += 1;
            let transition = gate.process(frame, at_ms);
            on_frame(frame, at_ms, transition);
        });
    }

    /// Audio time framed so far, in ms since the pipeline started (the next frame's start).
    pub fn clock_ms(&self) -> u64 {
        self.frames * u64::from(FRAME_MS)
    }

    /// Whether the VAD currently hears speech.
    pub fn in_speech(&self) -> bool {
        self.gate.in_speech()
    }

    /// When the current speech began, in audio ms, if in speech.
    pub fn speech_started_at(&self) -> Option<u64> {
        self.gate.speech_started_at()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::codec::Encoding;
    use crate::audio::vad::tests::synthetic_vowel;

    /// Speech framed by silence, at 16 kHz: 0.5 s silence, 1 s vowel, 1.5 s silence.
    fn utterance() -> Vec<i16> {
        let mut signal = vec![0i16; 8_000];
        signal.extend(synthetic_vowel(1_000));
        signal.extend(vec![0i16; 24_000]);
        signal
    }

    fn run(
        pipeline: &mut InputPipeline,
        bytes: &[u8],
        piece: usize,
    ) -> (usize, Vec<(u64, VadTransition)>) {
        let mut frames = 0;
        let mut events = Vec::new();
        let mut expected_ms = 0;
        for chunk in bytes.chunks(piece) {
            pipeline.push(chunk, |frame, at_ms, transition| {
                assert_eq!(frame.len(), FRAME_SAMPLES);
                assert_eq!(at_ms, expected_ms);
                expected_ms += u64::from(FRAME_MS);
                frames += 1;
                if let Some(t) = transition {
                    events.push((at_ms, t));
                }
            });
        }
        (frames, events)
    }

    fn assert_one_utterance(events: &[(u64, VadTransition)]) {
        assert_eq!(events.len(), 2, "{events:?}");
        match (events[0].1, events[1].1) {
            (
                VadTransition::SpeechStart { at_ms: start },
                VadTransition::SpeechEnd { at_ms: end },
            ) => {
                assert!((480..=580).contains(&start), "start at {start}");
                assert!((1_420..=1_540).contains(&end), "end at {end}");
            }
            other => panic!("unexpected transitions {other:?}"),
        }
    }

    #[test]
    fn pcm16_at_16k_frames_and_detects_speech() {
        let format = AudioFormat::new(Encoding::Pcm16, 16_000);
        let mut bytes = Vec::new();
        format.encode(&utterance(), &mut bytes);
        let mut pipeline = InputPipeline::new(format, VadConfig::default()).unwrap();
        // Odd-sized pieces split samples across pushes.
        let (frames, events) = run(&mut pipeline, &bytes, 333);
        assert_eq!(frames, 150);
        assert_eq!(pipeline.clock_ms(), 3_000);
        assert_one_utterance(&events);
    }

    #[test]
    fn mulaw_at_8k_frames_and_detects_speech() {
        let mut narrow = Resampler::new(16_000, 8_000).unwrap();
        let mut samples = Vec::new();
        narrow.process(&utterance(), &mut samples);
        narrow.flush(&mut samples);
        let format = AudioFormat::new(Encoding::Mulaw, 8_000);
        let mut bytes = Vec::new();
        format.encode(&samples, &mut bytes);
        let mut pipeline = InputPipeline::new(format, VadConfig::default()).unwrap();
        // Twilio sends 20 ms (160 byte) media frames.
        let (frames, events) = run(&mut pipeline, &bytes, 160);
        // The resampler holds back up to one block until more audio arrives.
        assert!((148..=150).contains(&frames), "{frames} frames");
        assert_one_utterance(&events);
    }

    #[test]
    fn pipelines_can_move_into_a_session_task() {
        fn assert_send<T: Send>() {}
        assert_send::<InputPipeline>();
        assert_send::<crate::audio::OutputPipeline>();
    }

    #[test]
    fn rejects_unsupported_format() {
        let format = AudioFormat::new(Encoding::Pcm16, 4_000);
        assert!(InputPipeline::new(format, VadConfig::default()).is_err());
    }
}
