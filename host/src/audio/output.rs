//! Outbound audio: synthesised speech to the client's rate and encoding.

use super::codec::AudioFormat;
use super::resample::Resampler;

/// Resamples text-to-speech audio to the client's output rate and encodes it.
pub struct OutputPipeline {
    format: AudioFormat,
    resampler: Option<Resampler>,
    /// Input rate that failed to build a resampler, so the warning is logged once.
    rejected_rate: Option<u32>,
    scratch: Vec<i16>,
}

impl OutputPipeline {
    /// A pipeline producing audio in `out` (validate it with [`AudioFormat::validate`] first;
    /// audio that cannot be resampled is dropped with a warning).
    pub fn new(out: AudioFormat) -> Self {
        Self {
            format: out,
            resampler: None,
            rejected_rate: None,
            scratch: Vec::new(),
        }
    }

    /// The client format produced.
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// Resamples `samples` from `sample_rate` and appends the encoded bytes to `out`.
    ///
    /// When the rate differs from the previous call, the old stream's tail is flushed first.
    pub fn push(&mut self, samples: &[i16], sample_rate: u32, out: &mut Vec<u8>) {
        if self.resampler.as_ref().map(Resampler::from_hz) != Some(sample_rate) {
            self.flush(out);
            self.resampler = match Resampler::new(sample_rate, self.format.sample_rate) {
                Ok(r) => Some(r),
                Err(reason) => {
                    if self.rejected_rate != Some(sample_rate) {
                        tracing::warn!(%reason, "dropping synthesised audio");
                        self.rejected_rate = Some(sample_rate);
                    }
                    None
                }
            };
        }
        let Some(resampler) = &mut self.resampler else {
            return;
        };
        self.scratch.clear();
        resampler.process(samples, &mut self.scratch);
        self.format.encode(&self.scratch, out);
    }

    /// Appends the buffered tail of the current stream to `out`.
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        if let Some(resampler) = &mut self.resampler {
            self.scratch.clear();
            resampler.flush(&mut self.scratch);
            self.format.encode(&self.scratch, out);
        }
    }

    /// Drops buffered audio (the user barged in).
    pub fn reset(&mut self) {
        if let Some(resampler) = &mut self.resampler {
            resampler.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::codec::Encoding;

    fn tone(rate: u32, ms: u32) -> Vec<i16> {
        let n = (rate * ms / 1000) as usize;
        (0..n)
            .map(|i| {
                let t = i as f32 / rate as f32;
                (8_000.0 * (std::f32::consts::TAU * 440.0 * t).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn resamples_and_encodes_to_client_format() {
        let mut pipeline = OutputPipeline::new(AudioFormat::new(Encoding::Mulaw, 8_000));
        let mut out = Vec::new();
        for piece in tone(24_000, 1_000).chunks(480) {
            pipeline.push(piece, 24_000, &mut out);
        }
        pipeline.flush(&mut out);
        assert!(out.len().abs_diff(8_000) <= 3, "{} bytes", out.len());
        // A 440 Hz tone at 8000 peak must not decode to silence.
        let mut decoded = Vec::new();
        pipeline.format().decode(&out, &mut decoded);
        let peak = decoded.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((7_000..9_000).contains(&peak), "peak {peak}");
    }

    #[test]
    fn rate_change_keeps_both_streams_whole() {
        let mut pipeline = OutputPipeline::new(AudioFormat::new(Encoding::Pcm16, 16_000));
        let mut out = Vec::new();
        pipeline.push(&tone(22_050, 500), 22_050, &mut out);
        pipeline.push(&tone(44_100, 500), 44_100, &mut out);
        pipeline.flush(&mut out);
        // 0.5 s + 0.5 s at 16 kHz, two bytes a sample.
        assert!(out.len().abs_diff(32_000) <= 8, "{} bytes", out.len());
    }

    #[test]
    fn reset_drops_pending_audio() {
        let mut pipeline = OutputPipeline::new(AudioFormat::new(Encoding::Pcm16, 16_000));
        let mut out = Vec::new();
        pipeline.push(&tone(24_000, 5), 24_000, &mut out);
        pipeline.reset();
        pipeline.flush(&mut out);
        assert!(out.is_empty(), "{} bytes after reset", out.len());
    }

    #[test]
    fn unsupported_rate_is_dropped_without_panic() {
        let mut pipeline = OutputPipeline::new(AudioFormat::new(Encoding::Pcm16, 16_000));
        let mut out = Vec::new();
        pipeline.push(&[1, 2, 3], 0, &mut out);
        pipeline.flush(&mut out);
        assert!(out.is_empty());
        pipeline.push(&tone(16_000, 20), 16_000, &mut out);
        assert_eq!(out.len(), 640);
    }
}
