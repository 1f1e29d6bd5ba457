//! Whisper's mel filterbank (80 bands over a 400-point FFT at 16 kHz), computed instead of
//! shipped: the Slaney-style mel scale with area normalisation, as librosa's `filters.mel`
//! defaults that Whisper was trained with. Used by the offline recogniser (f32) and by the
//! end-of-turn model's features (`crate::turn::features`, f64 like pipecat's numpy code).

/// The filterbank, row-major `[n_mels][N_FREQS]`.
pub fn mel_filters(sample_rate: f64, n_fft: usize, n_mels: usize) -> Vec<f32> {
    mel_filters_f64(sample_rate, n_fft, n_mels)
        .into_iter()
        .map(|w| w as f32)
        .collect()
}

/// The filterbank in double precision, row-major `[n_mels][N_FREQS]`.
pub fn mel_filters_f64(sample_rate: f64, n_fft: usize, n_mels: usize) -> Vec<f64> {
    let n_freqs = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..n_freqs)
        .map(|i| i as f64 * sample_rate / n_fft as f64)
        .collect();
    let mel_max = hz_to_mel(sample_rate / 2.0);
    let mel_points: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(mel_max * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut weights = vec![0f64; n_mels * n_freqs];
    for m in 0..n_mels {
        let (lo, mid, hi) = (mel_points[m], mel_points[m + 1], mel_points[m + 2]);
        let norm = 2.0 / (hi - lo);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - lo) / (mid - lo);
            let upper = (hi - f) / (hi - mid);
            let w = lower.min(upper).max(0.0);
            weights[m * n_freqs + k] = w * norm;
        }
    }
    weights
}

const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

/// Slaney mel scale: linear below 1 kHz, logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FFT bins of Whisper's 400-point FFT.
    const N_FREQS: usize = 400 / 2 + 1;

    #[test]
    fn whisper_filterbank_has_librosa_values() {
        let f = mel_filters(16_000.0, 400, 80);
        assert_eq!(f.len(), 80 * N_FREQS);
        // Reference values from librosa.filters.mel(sr=16000, n_fft=400, n_mels=80).
        assert!((f[1] - 0.024_862_74).abs() < 1e-6, "{}", f[1]);
        // Each band is a triangle: non-zero on a contiguous run of bins.
        for m in 0..80 {
            let row = &f[m * N_FREQS..(m + 1) * N_FREQS];
            let nz: Vec<usize> = (0..N_FREQS).filter(|&k| row[k] > 0.0).collect();
            assert!(!nz.is_empty(), "band {m} is empty");
            assert_eq!(
                nz.last().unwrap() - nz[0] + 1,
                nz.len(),
                "band {m} not contiguous"
            );
        }
    }

    #[test]
    fn mel_scale_round_trips() {
        for hz in [0.0, 500.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6);
        }
    }
}
