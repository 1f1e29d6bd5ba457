//! Synthetic speech-like audio for driving the Deepgram fake (which detects speech by energy):
//! voiced bursts separated by silence, at 16 kHz.

/// A voiced buzz of `ms` milliseconds at 16 kHz: a 140 Hz fundamental with two formant-like
/// harmonics, loud enough for any energy detector.
pub fn voiced(ms: u32) -> Vec<i16> {
    let n = (16 * ms) as usize;
    (0..n)
        .map(|i| {
            let t = i as f32 / 16_000.0;
            let tau = std::f32::consts::TAU;
            let s = 0.5 * (tau * 140.0 * t).sin()
                + 0.3 * (tau * 700.0 * t).sin()
                + 0.2 * (tau * 1220.0 * t).sin();
            (s * 9000.0) as i16
        })
        .collect()
}

/// `ms` milliseconds of digital silence at 16 kHz.
pub fn silence(ms: u32) -> Vec<i16> {
    vec![0; (16 * ms) as usize]
}

/// One utterance: `ms` of speech followed by `pause_ms` of silence.
pub fn utterance(ms: u32, pause_ms: u32) -> Vec<i16> {
    let mut v = voiced(ms);
    v.extend(silence(pause_ms));
    v
}

/// Splits audio into 20 ms frames (320 samples) as the session sends them.
pub fn frames(audio: &[i16]) -> Vec<Vec<i16>> {
    audio.chunks(320).map(<[i16]>::to_vec).collect()
}
