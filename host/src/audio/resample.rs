//! Streaming band-limited sample-rate conversion of mono 16-bit audio.

use rubato::{
    FftFixedInOut, Resampler as _, SincFixedIn, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

use super::codec::{MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};

/// Input block the resampler aims for: 10 ms keeps latency low while giving the
/// anti-aliasing filter enough taps.
const TARGET_BLOCK_MS: usize = 10;
/// Longest input block the exact FFT resampler may need before the sinc resampler is
/// used instead (rate pairs with a small common divisor need long FFT blocks).
const MAX_FFT_BLOCK_MS: usize = 40;
/// Full scale of i16 as f32, for converting to the [-1, 1) range rubato works in.
const FULL_SCALE: f32 = 32_768.0;

/// Converts a stream of mono i16 samples from one rate to another.
///
/// Input arrives in arbitrary pieces; output is produced in blocks of about 10 ms of input
/// and is time-aligned with the input (the filter delay is trimmed), so `N` input samples
/// yield `N * to / from` output samples once [`Resampler::flush`] has run.
pub struct Resampler {
    from_hz: u32,
    to_hz: u32,
    engine: Option<Engine>,
}

/// The rubato resampler with its reusable buffers.
struct Engine {
    inner: Inner,
    from_hz: usize,
    to_hz: usize,
    /// Input block being filled (one channel).
    input: Vec<Vec<f32>>,
    /// Output block (one channel), sized for the largest block.
    output: Vec<Vec<f32>>,
    block_len: usize,
    /// Output samples still to drop at the start of the stream (the filter delay).
    to_skip: usize,
    delay: usize,
    /// Input and output sample counts since the stream started, to size the tail on flush.
    consumed: u64,
    produced: u64,
}

impl Resampler {
    /// A resampler from `from_hz` to `to_hz`; both must be within 8000..=48000 Hz.
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, String> {
        for rate in [from_hz, to_hz] {
            if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
                return Err(format!(
                    "cannot resample at {rate} Hz: supported rates are {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE} Hz"
                ));
            }
        }
        let engine = if from_hz == to_hz {
            None
        } else {
            Some(Engine::new(from_hz as usize, to_hz as usize)?)
        };
        Ok(Self {
            from_hz,
            to_hz,
            engine,
        })
    }

    /// Input rate in Hz.
    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    /// Output rate in Hz.
    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// Resamples `input`, appending the output that is ready to `out` and buffering the rest.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        match &mut self.engine {
            None => out.extend_from_slice(input),
            Some(engine) => engine.process(input, out),
        }
    }

    /// Emits the buffered tail (padding with silence) and readies the resampler for a new stream.
    pub fn flush(&mut self, out: &mut Vec<i16>) {
        if let Some(engine) = &mut self.engine {
            engine.flush(out);
        }
    }

    /// Drops buffered audio and filter state, as if newly created.
    pub fn reset(&mut self) {
        if let Some(engine) = &mut self.engine {
            engine.reset();
        }
    }

    /// Worst-case delay, in output samples, between a sample going in and coming out:
    /// one input block of buffering plus the filter delay. Zero for a pass-through.
    pub fn latency_samples(&self) -> usize {
        match &self.engine {
            None => 0,
            Some(engine) => {
                let block_out =
                    engine.block_len as u64 * u64::from(self.to_hz) / u64::from(self.from_hz);
                block_out as usize + engine.delay
            }
        }
    }
}

impl Engine {
    fn new(from_hz: usize, to_hz: usize) -> Result<Self, String> {
        let gcd = gcd(from_hz, to_hz);
        // The FFT resampler works on blocks that are whole multiples of from/gcd samples.
        let unit = from_hz / gcd;
        let target = (from_hz * TARGET_BLOCK_MS / 1000).max(1);
        let fft_block = target.div_ceil(unit) * unit;
        let inner = if fft_block * 1000 <= from_hz * MAX_FFT_BLOCK_MS {
            Inner::Fft(
                FftFixedInOut::<f32>::new(from_hz, to_hz, target, 1)
                    .map_err(|e| format!("resampler {from_hz}->{to_hz} Hz: {e}"))?,
            )
        } else {
            let params = SincInterpolationParameters {
                sinc_len: 128,
                f_cutoff: 0.92,
                oversampling_factor: 128,
                interpolation: SincInterpolationType::Cubic,
                window: WindowFunction::BlackmanHarris2,
            };
            Inner::Sinc(
                SincFixedIn::<f32>::new(to_hz as f64 / from_hz as f64, 1.0, params, target, 1)
                    .map_err(|e| format!("resampler {from_hz}->{to_hz} Hz: {e}"))?,
            )
        };
        let block_len = inner.input_frames_next();
        let delay = inner.output_delay();
        let input = vec![Vec::with_capacity(inner.input_frames_max())];
        let output = inner.output_buffer_allocate();
        Ok(Self {
            inner,
            from_hz,
            to_hz,
            input,
            output,
            block_len,
            to_skip: delay,
            delay,
            consumed: 0,
            produced: 0,
        })
    }

    fn process(&mut self, mut input: &[i16], out: &mut Vec<i16>) {
        while !input.is_empty() {
            let room = self.block_len - self.input[0].len();
            let (now, later) = input.split_at(room.min(input.len()));
            self.input[0].extend(now.iter().map(|&s| f32::from(s) / FULL_SCALE));
            self.consumed += now.len() as u64;
            input = later;
            if self.input[0].len() == self.block_len {
                self.run_block(out, u64::MAX);
            }
        }
    }

    /// Resamples the full input block, appending at most `limit` more samples in total.
    fn run_block(&mut self, out: &mut Vec<i16>, limit: u64) {
        let written = match self
            .inner
            .process_into_buffer(&self.input, &mut self.output)
        {
            Ok((_, written)) => written,
            // Buffers are sized from the resampler's own figures, so this cannot happen;
            // losing one block is the safe answer if it ever does.
            Err(_) => 0,
        };
        self.input[0].clear();
        let block = &self.output[0][..written];
        let skip = self.to_skip.min(block.len());
        self.to_skip -= skip;
        let ready = &block[skip..];
        let room = limit.saturating_sub(self.produced);
        let take = ready.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        out.extend(ready[..take].iter().map(|&s| to_i16(s)));
        self.produced += take as u64;
    }

    fn flush(&mut self, out: &mut Vec<i16>) {
        let expected = self.expected_output();
        // Zero blocks push the buffered input and the filter delay out; a bounded number
        // of rounds guards against a resampler that produces nothing.
        let max_rounds = 2 + (self.delay + self.block_len) / self.block_len.max(1) * 4;
        let mut rounds = 0;
        while self.produced < expected && rounds < max_rounds {
            self.input[0].resize(self.block_len, 0.0);
            self.run_block(out, expected);
            rounds += 1;
        }
        self.reset();
    }

    fn expected_output(&self) -> u64 {
        let (from, to) = (self.from_hz as u64, self.to_hz as u64);
        (self.consumed * to + from / 2) / from
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.input[0].clear();
        self.to_skip = self.delay;
        self.consumed = 0;
        self.produced = 0;
    }
}

/// The rubato resampler in use: exact FFT conversion when the rates share a large common
/// divisor (all the usual ones), windowed-sinc interpolation otherwise.
enum Inner {
    Fft(FftFixedInOut<f32>),
    Sinc(SincFixedIn<f32>),
}

/// Calls the same `rubato::Resampler` method on whichever resampler is in use.
macro_rules! with_inner {
    ($inner:expr, $r:ident => $call:expr) => {
        match $inner {
            Inner::Fft($r) => $call,
            Inner::Sinc($r) => $call,
        }
    };
}

impl Inner {
    fn process_into_buffer(
        &mut self,
        input: &[Vec<f32>],
        output: &mut [Vec<f32>],
    ) -> rubato::ResampleResult<(usize, usize)> {
        with_inner!(self, r => r.process_into_buffer(input, output, None))
    }

    fn input_frames_next(&self) -> usize {
        with_inner!(self, r => r.input_frames_next())
    }

    fn input_frames_max(&self) -> usize {
        with_inner!(self, r => r.input_frames_max())
    }

    fn output_buffer_allocate(&self) -> Vec<Vec<f32>> {
        with_inner!(self, r => r.output_buffer_allocate(true))
    }

    fn output_delay(&self) -> usize {
        with_inner!(self, r => r.output_delay())
    }

    fn reset(&mut self) {
        with_inner!(self, r => r.reset())
    }
}

fn to_i16(sample: f32) -> i16 {
    // `as` saturates, and maps NaN to 0.
    (sample * FULL_SCALE).round() as i16
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::TAU;

    fn sine(rate: u32, freq: f32, amplitude: f32, seconds: f32) -> Vec<i16> {
        let n = (rate as f32 * seconds) as usize;
        (0..n)
            .map(|i| (amplitude * (TAU * freq * i as f32 / rate as f32).sin()) as i16)
            .collect()
    }

    /// Resamples in uneven pieces, as audio arrives from a socket, then flushes.
    fn resample_stream(from: u32, to: u32, input: &[i16]) -> Vec<i16> {
        let mut r = Resampler::new(from, to).unwrap();
        let mut out = Vec::new();
        for piece in input.chunks(173) {
            r.process(piece, &mut out);
        }
        r.flush(&mut out);
        out
    }

    fn rms(samples: &[i16]) -> f64 {
        let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        (sum / samples.len().max(1) as f64).sqrt()
    }

    fn zero_crossings(samples: &[i16]) -> usize {
        samples
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count()
    }

    #[test]
    fn output_length_follows_rate_ratio() {
        for (from, to) in [
            (8_000, 16_000),
            (48_000, 16_000),
            (22_050, 16_000),
            (16_000, 8_000),
            (44_100, 16_000),
            (16_000, 24_000),
            (8_001, 16_000),
        ] {
            let input = sine(from, 440.0, 8_000.0, 1.0);
            let out = resample_stream(from, to, &input);
            let expected = input.len() as i64 * i64::from(to) / i64::from(from);
            assert!(
                (out.len() as i64 - expected).abs() <= 3,
                "{from}->{to}: {} samples, expected {expected}",
                out.len()
            );
        }
    }

    #[test]
    fn sine_keeps_frequency_and_amplitude() {
        for (from, to) in [
            (8_000, 16_000),
            (48_000, 16_000),
            (22_050, 16_000),
            (16_000, 8_000),
            (8_001, 16_000),
        ] {
            let input = sine(from, 1_000.0, 10_000.0, 1.0);
            let out = resample_stream(from, to, &input);
            // Skip the edges, where the filter sees the stream start and the padding.
            let edge = to as usize / 20;
            let middle = &out[edge..out.len() - edge];
            let seconds = middle.len() as f64 / f64::from(to);
            let freq = zero_crossings(middle) as f64 / 2.0 / seconds;
            assert!((freq - 1_000.0).abs() < 10.0, "{from}->{to}: {freq} Hz");
            let ratio = rms(middle) / rms(&input);
            assert!(
                (0.9..1.1).contains(&ratio),
                "{from}->{to}: RMS ratio {ratio}"
            );
        }
    }

    #[test]
    fn output_is_time_aligned_with_input() {
        // A click at 0.5 s must come out at 0.5 s despite the filter delay.
        let mut input = vec![0i16; 16_000];
        input[8_000] = 20_000;
        for (to, tolerance) in [(8_000usize, 2usize), (48_000, 6)] {
            let out = resample_stream(16_000, to as u32, &input);
            let peak = out
                .iter()
                .enumerate()
                .max_by_key(|(_, s)| s.unsigned_abs())
                .map(|(i, _)| i)
                .unwrap();
            assert!(peak.abs_diff(to / 2) <= tolerance, "peak at {peak} of {to}");
        }
    }

    #[test]
    fn tone_above_new_nyquist_is_removed() {
        let input = sine(48_000, 7_000.0, 10_000.0, 1.0);
        let out = resample_stream(48_000, 8_000, &input);
        let ratio = rms(&out[400..out.len() - 400]) / rms(&input);
        assert!(ratio < 0.1, "7 kHz leaked through at {ratio}");
    }

    #[test]
    fn same_rate_passes_through() {
        let input = sine(16_000, 300.0, 5_000.0, 0.1);
        let mut r = Resampler::new(16_000, 16_000).unwrap();
        let mut out = Vec::new();
        r.process(&input, &mut out);
        r.flush(&mut out);
        assert_eq!(out, input);
        assert_eq!(r.latency_samples(), 0);
    }

    #[test]
    fn rejects_unsupported_rates() {
        assert!(Resampler::new(0, 16_000).is_err());
        assert!(Resampler::new(16_000, 96_000).is_err());
        assert!(Resampler::new(7_999, 8_000).is_err());
    }

    #[test]
    fn reset_drops_buffered_audio() {
        let mut r = Resampler::new(8_000, 16_000).unwrap();
        let mut out = Vec::new();
        // One whole 80-sample block (filter state) and 50 samples still buffered.
        r.process(&[10_000i16; 130], &mut out);
        r.reset();
        out.clear();
        r.process(&[0i16; 800], &mut out);
        r.flush(&mut out);
        assert_eq!(out.len(), 1_600);
        assert!(
            out.iter().all(|&s| s == 0),
            "audio from before reset leaked"
        );
    }

    #[test]
    fn flush_allows_a_new_stream() {
        let input = sine(8_000, 500.0, 8_000.0, 0.5);
        let mut r = Resampler::new(8_000, 16_000).unwrap();
        let mut first = Vec::new();
        r.process(&input, &mut first);
        r.flush(&mut first);
        let mut second = Vec::new();
        r.process(&input, &mut second);
        r.flush(&mut second);
        assert_eq!(first, second);
    }

    #[test]
    fn latency_covers_one_block_and_the_filter() {
        // 10 ms blocks (160 output samples at 16 kHz) plus half a block of filter delay.
        let r = Resampler::new(8_000, 16_000).unwrap();
        assert_eq!(r.latency_samples(), 240);
    }
}
