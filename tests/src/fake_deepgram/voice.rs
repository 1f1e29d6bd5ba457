//! Is this 20 ms frame voice, read as the query declared it? Energy alone would take any loud
//! bytes for speech; a real recogniser hears nothing in byte-swapped or misaligned linear16
//! (it decodes to near white noise) nor in audio played at the wrong rate (the voice's pitch
//! leaves the human range). So a frame is voice when it is smooth like sound rather than noise
//! and periodic with a fundamental that a speaking voice has at the declared sample rate.

/// Lowest fundamental of a speaking voice, Hz (the usual pitch floor of speech analysis).
pub const MIN_F0: f64 = 75.0;
/// Highest fundamental of an adult speaking voice, Hz. A voice near the middle (140 Hz)
/// declared at half or double its rate is heard at 70 or 280 Hz: outside the range.
pub const MAX_F0: f64 = 250.0;
/// Periodicity is searched over this band (wider than the voice range, so that audio at the
/// wrong rate shows its true, out-of-range pitch instead of a subharmonic inside the range).
const SEARCH_MIN_F0: f64 = 50.0;
const SEARCH_MAX_F0: f64 = 1000.0;
/// Normalised autocorrelation below which a window counts as aperiodic.
const MIN_PERIODICITY: f64 = 0.5;
/// A shorter lag within this share of the best one is the period (the best may be a multiple).
const OCTAVE_SHARE: f64 = 0.85;
/// Mean squared first difference over mean square: white noise gives about 2, speech at 8 kHz
/// and above well under 1.
const MAX_ROUGHNESS: f64 = 1.0;

/// `window` (the previous and the current frame) holds voice at `rate` Hz.
pub fn is_voice(window: &[i16], rate: u32) -> bool {
    let x: Vec<f64> = window.iter().map(|&s| f64::from(s)).collect();
    let energy: f64 = x.iter().map(|v| v * v).sum();
    if energy == 0.0 {
        return false;
    }
    let roughness: f64 = x.windows(2).map(|w| (w[1] - w[0]).powi(2)).sum::<f64>() / energy;
    if roughness > MAX_ROUGHNESS {
        return false;
    }
    fundamental(&x, rate).is_some_and(|f0| (MIN_F0..=MAX_F0).contains(&f0))
}

/// The fundamental frequency of `x` at `rate`, if it is periodic at all.
pub fn fundamental(x: &[f64], rate: u32) -> Option<f64> {
    let rate = f64::from(rate);
    let shortest = ((rate / SEARCH_MAX_F0) as usize).max(2);
    // Keep at least half the window overlapping.
    let longest = ((rate / SEARCH_MIN_F0) as usize).min(x.len() / 2);
    if longest <= shortest + 1 {
        return None;
    }
    let r: Vec<f64> = (0..=longest + 1).map(|lag| correlation(x, lag)).collect();
    let peak = |lag: usize| r[lag] >= r[lag - 1] && r[lag] >= r[lag + 1];
    let best = (shortest..=longest)
        .filter(|&lag| peak(lag))
        .max_by(|&a, &b| r[a].total_cmp(&r[b]))?;
    if r[best] < MIN_PERIODICITY {
        return None;
    }
    let period = (shortest..=best)
        .find(|&lag| peak(lag) && r[lag] >= OCTAVE_SHARE * r[best])
        .unwrap_or(best);
    Some(rate / period as f64)
}

/// Normalised correlation of `x` with itself `lag` samples later.
fn correlation(x: &[f64], lag: usize) -> f64 {
    if lag >= x.len() {
        return 0.0;
    }
    let (a, b) = (&x[lag..], &x[..x.len() - lag]);
    let dot: f64 = a.iter().zip(b).map(|(p, q)| p * q).sum();
    let norm = (a.iter().map(|v| v * v).sum::<f64>() * b.iter().map(|v| v * v).sum::<f64>()).sqrt();
    if norm == 0.0 {
        0.0
    } else {
        dot / norm
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speech::voiced;

    /// The last 40 ms of `samples`.
    fn window(samples: &[i16], rate: u32) -> &[i16] {
        &samples[samples.len() - (rate / 25) as usize..]
    }

    #[test]
    fn voice_is_heard_only_as_declared() {
        let voice = voiced(200);
        assert!(is_voice(window(&voice, 16_000), 16_000));
        let half: Vec<i16> = voice.iter().step_by(2).copied().collect();
        assert!(is_voice(window(&half, 8000), 8000), "8 kHz copy at 8 kHz");
        // The same samples at the wrong rate: pitch 70 Hz or 280 Hz / 420 Hz.
        assert!(!is_voice(window(&voice, 8000), 8000));
        assert!(!is_voice(window(&half, 16_000), 16_000));
        assert!(!is_voice(window(&voice, 48_000), 48_000));
        // Byte-swapped: the same loudness, but noise.
        let swapped: Vec<i16> = voice.iter().map(|s| s.swap_bytes()).collect();
        assert!(!is_voice(window(&swapped, 16_000), 16_000));
        assert!(!is_voice(&[0; 640], 16_000));
    }
}
