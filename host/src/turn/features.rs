//! The model's input, computed exactly as pipecat computes it (`_whisper_features.py` and
//! `LocalSmartTurnAnalyzerV3._predict_endpoint` in the `pipecat-ai` 1.14.0 wheel, itself a copy
//! of `transformers.WhisperFeatureExtractor`): Smart Turn was trained on these numbers, and a
//! feature that is merely "Whisper-like" moves its probabilities.
//!
//! 1. the last 8 s of 16 kHz audio, front-padded with zeros to 128 000 samples;
//! 2. normalised to zero mean and unit variance (in f32 with numpy's summation, variance + 1e-7);
//! 3. a centred power spectrogram in f64: reflect-padded by 200 samples at both ends, periodic
//!    Hann window of 400, hop 160, |rFFT|²;
//! 4. 80 Slaney mel bands (0-8 kHz, area-normalised), log10(max(1e-10, x));
//! 5. the last of the 801 frames dropped, then clamped to (max - 8) and mapped by (x + 4) / 4.
//!
//! The result is `[80, 800]`, row-major (band by band), in f32.
//!
//! The filterbank is the offline recogniser's ([`crate::providers::local::mel`]). Its
//! spectrogram (`candle_transformers::models::whisper::audio::pcm_to_mel`, after whisper.cpp) is
//! not reused: it does not centre the frames (every frame sits 200 samples later), it doubles the
//! power of every bin but the first and last, and it pads the audio to 30 s and takes the
//! maximum over frames that pipecat drops; each of these changes the features the model sees.

use crate::providers::local::mel::mel_filters_f64;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

/// Sample rate the model reads.
pub const SAMPLE_RATE: usize = 16_000;
/// Audio the model reads: the last 8 s.
pub const WINDOW_SAMPLES: usize = 8 * SAMPLE_RATE;
/// Mel bands.
pub const N_MELS: usize = 80;
/// Frames (10 ms each) of the 8 s window.
pub const N_FRAMES: usize = WINDOW_SAMPLES / HOP;
/// Values of one input: `[N_MELS, N_FRAMES]`.
pub const FEATURES_LEN: usize = N_MELS * N_FRAMES;

const N_FFT: usize = 400;
const HOP: usize = 160;
const N_FREQS: usize = N_FFT / 2 + 1;
const MEL_FLOOR: f64 = 1e-10;
const VARIANCE_EPSILON: f32 = 1e-7;

/// One mel band: the first FFT bin it weighs and its (non-zero) weights from there.
struct Band {
    first: usize,
    weights: Vec<f64>,
}

/// Computes features; holds the FFT plan, the window and the filterbank, built once.
pub struct FeatureExtractor {
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    bands: Vec<Band>,
}

impl Default for FeatureExtractor {
    fn default() -> Self {
        Self::new()
    }
}

impl FeatureExtractor {
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT);
        // Periodic Hann (numpy's `hanning(401)[:-1]`, torch's `hann_window(400)`).
        let window = (0..N_FFT)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos())
            .collect();
        let dense = mel_filters_f64(SAMPLE_RATE as f64, N_FFT, N_MELS);
        // Each band is a triangle over a few bins: keep only that run.
        let bands = dense
            .chunks(N_FREQS)
            .map(|row| {
                let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&w| w != 0.0).unwrap_or(0);
                Band {
                    first,
                    weights: row[first..=last].to_vec(),
                }
            })
            .collect();
        Self { fft, window, bands }
    }

    /// The features of the last 8 s of `audio` (16 kHz mono), `[80, 800]` row-major.
    /// Non-finite samples count as silence.
    pub fn features(&self, audio: &[f32]) -> Vec<f32> {
        let padded = reflect_pad(&normalise(&last_window(audio)), N_FFT / 2);

        let mut log_mel = vec![0f64; FEATURES_LEN];
        let mut frame = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = [0f64; N_FREQS];
        // Frame N_FRAMES (the 801st) is dropped before the maximum is taken: never computed.
        for t in 0..N_FRAMES {
            let start = t * HOP;
            for ((x, &s), &w) in frame
                .iter_mut()
                .zip(&padded[start..start + N_FFT])
                .zip(&self.window)
            {
                *x = s * w;
            }
            self.fft
                .process_with_scratch(&mut frame, &mut spectrum, &mut scratch)
                .expect("buffers sized by the plan");
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = Complex::norm_sqr(c);
            }
            for (m, band) in self.bands.iter().enumerate() {
                let energy: f64 = band
                    .weights
                    .iter()
                    .zip(&power[band.first..])
                    .map(|(w, p)| w * p)
                    .sum();
                log_mel[m * N_FRAMES + t] = energy.max(MEL_FLOOR).log10();
            }
        }

        let floor = log_mel.iter().copied().fold(f64::NEG_INFINITY, f64::max) - 8.0;
        log_mel
            .into_iter()
            .map(|v| ((v.max(floor) + 4.0) / 4.0) as f32)
            .collect()
    }
}

/// The last 8 s, front-padded with zeros (as pipecat's `truncate_audio_to_last_n_seconds`).
fn last_window(audio: &[f32]) -> Vec<f32> {
    let tail = &audio[audio.len().saturating_sub(WINDOW_SAMPLES)..];
    let mut window = vec![0f32; WINDOW_SAMPLES - tail.len()];
    window.extend(tail.iter().map(|&s| if s.is_finite() { s } else { 0.0 }));
    window
}

/// Zero mean, unit variance, in f32 exactly as numpy's `(x - x.mean()) / np.sqrt(x.var() + 1e-7)`
/// on a float32 array. The sums must be numpy's own: where zeros pad the window they become
/// `-mean`, whose energy fills every padded frame's lowest band, and the mean of speech is a
/// small difference of large sums, so a sum in another order (or in f64) moves those frames.
fn normalise(x: &[f32]) -> Vec<f64> {
    let n = x.len() as f32;
    let mean = numpy_sum(x) / n;
    let squares: Vec<f32> = x.iter().map(|&v| (v - mean) * (v - mean)).collect();
    let variance = numpy_sum(&squares) / n;
    let scale = (variance + VARIANCE_EPSILON).sqrt();
    x.iter().map(|&v| f64::from((v - mean) / scale)).collect()
}

/// numpy's float32 sum (`pairwise_sum_FLOAT`): blocks of at most 128 summed in eight interleaved
/// accumulators, longer runs split in two (at a multiple of 8) and summed recursively.
fn numpy_sum(a: &[f32]) -> f32 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |sum, &v| sum + v)
    } else if n <= 128 {
        let mut r = [0f32; 8];
        r.copy_from_slice(&a[..8]);
        let whole = n - n % 8;
        for block in a[8..whole].chunks_exact(8) {
            for (acc, &v) in r.iter_mut().zip(block) {
                *acc += v;
            }
        }
        let mut sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[whole..] {
            sum += v;
        }
        sum
    } else {
        let half = n / 2 - (n / 2) % 8;
        numpy_sum(&a[..half]) + numpy_sum(&a[half..])
    }
}

/// numpy's `pad(x, (n, n), mode="reflect")`: mirrored about the first and last samples, which
/// are not repeated.
fn reflect_pad(x: &[f64], n: usize) -> Vec<f64> {
    let len = x.len();
    let mut out = Vec::with_capacity(len + 2 * n);
    out.extend((1..=n).rev().map(|i| x[i]));
    out.extend_from_slice(x);
    out.extend((1..=n).map(|i| x[len - 1 - i]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turn::reference::{self, Reference};

    #[test]
    fn reflect_padding_mirrors_without_repeating_the_edge() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(
            reflect_pad(&x, 2),
            [3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 3.0]
        );
    }

    #[test]
    fn short_audio_is_front_padded_and_long_audio_keeps_its_end() {
        let short = last_window(&[0.5; 100]);
        assert_eq!(short.len(), WINDOW_SAMPLES);
        assert!(short[..WINDOW_SAMPLES - 100].iter().all(|&s| s == 0.0));
        assert!(short[WINDOW_SAMPLES - 100..].iter().all(|&s| s == 0.5));

        let long: Vec<f32> = (0..WINDOW_SAMPLES + 500).map(|i| i as f32).collect();
        let kept = last_window(&long);
        assert_eq!(kept.len(), WINDOW_SAMPLES);
        assert_eq!(kept[0], 500.0);
        assert_eq!(*kept.last().unwrap(), (WINDOW_SAMPLES + 499) as f32);
    }

    #[test]
    fn normalised_audio_has_zero_mean_and_unit_variance() {
        let x: Vec<f32> = (0..WINDOW_SAMPLES)
            .map(|i| 0.3 * (i as f32 * 0.01).sin() + 0.1)
            .collect();
        let y = normalise(&x);
        let n = y.len() as f64;
        let mean = y.iter().sum::<f64>() / n;
        let variance = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 1e-6, "{mean}");
        assert!((variance - 1.0).abs() < 1e-4, "{variance}");
    }

    #[test]
    fn features_span_eight_decades_below_the_loudest_value() {
        let extractor = FeatureExtractor::new();
        let tone: Vec<f32> = (0..SAMPLE_RATE)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 16_000.0).sin())
            .collect();
        let f = extractor.features(&tone);
        assert_eq!(f.len(), FEATURES_LEN);
        let max = f.iter().copied().fold(f32::MIN, f32::max);
        let min = f.iter().copied().fold(f32::MAX, f32::min);
        // (x + 4) / 4 of a range clamped to 8 below its maximum spans 2.
        assert!((max - min - 2.0).abs() < 1e-5, "{min}..{max}");
        // The padding (frames clear of the last second) sits at the floor; the tone is loudest
        // in its own band.
        for band in f.chunks(N_FRAMES) {
            assert!(band[..N_FRAMES * 7 / 8 - 2].iter().all(|&v| v == min));
        }
        let band_of_440 = (0..N_MELS)
            .max_by(|&a, &b| f[a * N_FRAMES + 790].total_cmp(&f[b * N_FRAMES + 790]))
            .unwrap();
        // Band m is centred near 37 Hz * (m + 1) below 1 kHz: 440 Hz falls on band 10 or 11.
        assert!((10..=11).contains(&band_of_440), "band {band_of_440}");
    }

    #[test]
    fn non_finite_samples_count_as_silence() {
        let extractor = FeatureExtractor::new();
        let mut audio: Vec<f32> = (0..8000).map(|i| (i as f32 * 0.05).sin() * 0.2).collect();
        let clean = extractor.features(&audio);
        audio.insert(0, f32::NAN);
        audio.insert(0, f32::INFINITY);
        let dirty = extractor.features(&audio);
        assert!(dirty.iter().all(|v| v.is_finite()));
        assert_eq!(clean, dirty);
    }

    /// pipecat's own features of the fixture recordings (scripts/smart-turn-reference.py): the
    /// mean of every band and frame and 256 single values agree to within float rounding.
    #[test]
    fn features_match_pipecat_on_the_reference_recordings() {
        let Reference { cases, .. } = reference::load();
        let extractor = FeatureExtractor::new();
        for case in &cases {
            let audio = case.audio();
            assert_eq!(audio.len(), case.samples, "{}", case.name);
            let f = extractor.features(&audio);
            let mut worst = 0f64;
            for (m, &expected) in case.band_means.iter().enumerate() {
                let got = f[m * N_FRAMES..(m + 1) * N_FRAMES]
                    .iter()
                    .map(|&v| f64::from(v))
                    .sum::<f64>()
                    / N_FRAMES as f64;
                worst = worst.max((got - expected).abs());
            }
            for (t, &expected) in case.frame_means.iter().enumerate() {
                let got = (0..N_MELS)
                    .map(|m| f64::from(f[m * N_FRAMES + t]))
                    .sum::<f64>()
                    / N_MELS as f64;
                worst = worst.max((got - expected).abs());
            }
            for &(i, expected) in &case.values {
                worst = worst.max((f64::from(f[i]) - f64::from(expected as f32)).abs());
            }
            // On the machine that made the reference the features are bit-identical to pipecat's;
            // the margin (a few f32 steps near 1, above the 7 decimals the means keep) covers FFT
            // code paths that differ by CPU.
            assert!(worst < 1e-6, "{}: off by {worst:e}", case.name);
        }
    }
}
