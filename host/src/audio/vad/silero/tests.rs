//! The stream's windows, state and thresholds; the probabilities against pipecat's own code.

use super::*;
use crate::audio::vad::silero_model::test_model;

fn ramp(n: usize, from: i16) -> Vec<i16> {
    (0..n).map(|i| from.wrapping_add(i as i16)).collect()
}

#[test]
fn windows_start_from_zero_context_and_carry_the_last_64_samples() {
    let mut w = Windower::new();
    let samples = ramp(2 * 512 + 100, 1);
    let frames: Vec<&[i16]> = samples.chunks(320).collect();
    // 320 samples: no window yet; 640: the first one.
    assert!(w.push(frames[0]).is_none());
    let first = *w.push(frames[1]).expect("a window after 512 samples");
    assert!(first[..CONTEXT].iter().all(|&x| x == 0.0));
    let expected: Vec<f32> = samples[..512]
        .iter()
        .map(|&s| f32::from(s) / 32_768.0)
        .collect();
    assert_eq!(&first[CONTEXT..], &expected[..]);
    // 960: none; 1280: the second, whose context is the first one's last 64 samples.
    assert!(w.push(frames[2]).is_none());
    let second = *w.push(frames[3]).expect("a window after 1024 samples");
    assert_eq!(&second[..CONTEXT], &first[WINDOW - CONTEXT..]);
    let expected: Vec<f32> = samples[512..1024]
        .iter()
        .map(|&s| f32::from(s) / 32_768.0)
        .collect();
    assert_eq!(&second[CONTEXT..], &expected[..]);
}

#[test]
fn a_reset_forgets_the_context_but_not_the_samples_waiting() {
    let mut w = Windower::new();
    let samples = ramp(1024, 100);
    assert!(w.push(&samples[..512]).is_some());
    w.push(&samples[512..812]);
    w.reset_context();
    let next = *w.push(&samples[812..1024]).expect("second window");
    assert!(next[..CONTEXT].iter().all(|&x| x == 0.0));
    assert_eq!(next[CONTEXT], f32::from(samples[512]) / 32_768.0);
    assert_eq!(next[WINDOW - 1], f32::from(samples[1023]) / 32_768.0);
}

#[test]
fn voice_starts_at_the_threshold_and_ends_below_the_negative_one() {
    assert!(!next_voiced(false, 0.49));
    assert!(next_voiced(false, 0.5));
    assert!(next_voiced(true, 0.4), "between the thresholds voice holds");
    assert!(next_voiced(true, NEG_THRESHOLD));
    assert!(!next_voiced(true, 0.34));
    assert!(
        !next_voiced(false, 0.4),
        "between the thresholds silence holds"
    );
}

/// The recording of `host/tests/fixtures/silero/reference.json`, and its probabilities.
fn reference() -> (Vec<i16>, Vec<f32>) {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("silero/reference.json")).unwrap(),
    )
    .unwrap();
    let mut audio = Vec::new();
    for part in json["parts"].as_array().unwrap() {
        match part {
            serde_json::Value::Number(ms) => {
                audio.extend(std::iter::repeat_n(
                    0i16,
                    ms.as_u64().unwrap() as usize * 16,
                ));
            }
            serde_json::Value::String(name) => {
                let (samples, rate) =
                    crate::audio::read_wav_mono_i16(fixtures.join("smart-turn").join(name))
                        .unwrap();
                assert_eq!(rate, 16_000);
                audio.extend(samples);
            }
            other => panic!("part {other}"),
        }
    }
    let probabilities = json["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap() as f32)
        .collect();
    (audio, probabilities)
}

/// Feeds `audio` in 20 ms frames; the probability of each window, in order.
fn probabilities(frames: &mut SileroFrames, audio: &[i16], in_speech: bool) -> Vec<f32> {
    let mut out = Vec::new();
    let mut windows = frames.windows_since_reset;
    for frame in audio.chunks_exact(320) {
        frames.classify(frame, in_speech);
        if frames.windows_since_reset != windows {
            windows = frames.windows_since_reset;
            out.push(frames.probability);
        }
    }
    out
}

#[test]
fn probabilities_are_pipecats_window_for_window() {
    let Some(model) = test_model() else { return };
    let (mut audio, expected) = reference();
    // Whole frames: the reference's last window ends in the last, partial one.
    audio.resize(audio.len().div_ceil(320) * 320, 0);
    // In speech throughout: no reset, the model as one stream, as the reference ran it.
    let got = probabilities(&mut SileroFrames::new(model), &audio, true);
    assert_eq!(got.len(), expected.len());
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert!((g - e).abs() < 1e-4, "window {i}: {g} vs pipecat's {e}");
    }
}

#[test]
fn the_state_resets_after_two_seconds_of_quiet_and_never_in_speech() {
    let Some(model) = test_model() else { return };
    let silence = vec![0i16; 16_000 * 3];
    let windows = silence.len() / CHUNK;
    let mut speaking = SileroFrames::new(model.clone());
    probabilities(&mut speaking, &silence, true);
    assert_eq!(speaking.windows_since_reset as usize, windows);
    let mut quiet = SileroFrames::new(model);
    probabilities(&mut quiet, &silence, false);
    assert_eq!(
        quiet.windows_since_reset as usize,
        windows - RESET_INTERVAL_WINDOWS as usize,
        "one reset, after 2 s"
    );
}
