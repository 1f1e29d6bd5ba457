//! The gate with webrtc-vad, on synthetic voice and noise.
use super::*;
use crate::audio::PIPELINE_RATE;
use webrtc_vad::{SampleRate, Vad, VadMode};

/// A deterministic voice-like signal at 16 kHz: a 120 Hz glottal pulse train through
/// three formant resonators (an /a/ vowel), with a gentle pitch wobble and an
/// attack/release envelope.
pub(crate) fn synthetic_vowel(ms: u32) -> Vec<i16> {
    let rate = PIPELINE_RATE as f64;
    let n = ms as usize * (PIPELINE_RATE as usize / 1000);
    let mut formants = [
        Resonator::new(730.0, 90.0, rate),
        Resonator::new(1_090.0, 110.0, rate),
        Resonator::new(2_440.0, 170.0, rate),
    ];
    let mut phase = 0.0f64;
    let mut raw = Vec::with_capacity(n);
    for i in 0..n {
        let t = i as f64 / rate;
        let f0 = 120.0 + 8.0 * (std::f64::consts::TAU * 3.0 * t).sin();
        phase += f0 / rate;
        // A Rosenberg-like pulse: the glottis opens over 40% of the period, then closes.
        let p = phase.fract();
        let pulse = if p < 0.4 {
            0.5 * (1.0 - (std::f64::consts::PI * p / 0.4).cos())
        } else if p < 0.56 {
            (std::f64::consts::FRAC_PI_2 * (p - 0.4) / 0.16).cos()
        } else {
            0.0
        };
        // Differentiating the flow gives the excitation the vocal tract sees.
        raw.push(pulse);
    }
    let mut prev = 0.0;
    let mut out = Vec::with_capacity(n);
    let max_env = (ms as f64 / 1000.0).min(0.05);
    let mut filtered = Vec::with_capacity(n);
    for (i, &x) in raw.iter().enumerate() {
        let excitation = x - prev;
        prev = x;
        let y: f64 = formants.iter_mut().map(|r| r.step(excitation)).sum();
        let t = i as f64 / rate;
        let left = (n - i) as f64 / rate;
        let envelope = (t / max_env).min(1.0) * (left / max_env).min(1.0);
        filtered.push(y * envelope);
    }
    let peak = filtered
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(1e-9);
    for y in filtered {
        out.push((y / peak * 12_000.0) as i16);
    }
    out
}

/// Two-pole resonator with unit gain at its centre frequency.
struct Resonator {
    a1: f64,
    a2: f64,
    gain: f64,
    y1: f64,
    y2: f64,
}

impl Resonator {
    fn new(freq: f64, bandwidth: f64, rate: f64) -> Self {
        let r = (-std::f64::consts::PI * bandwidth / rate).exp();
        let theta = std::f64::consts::TAU * freq / rate;
        Self {
            a1: 2.0 * r * theta.cos(),
            a2: -r * r,
            gain: 1.0 - r,
            y1: 0.0,
            y2: 0.0,
        }
    }

    fn step(&mut self, x: f64) -> f64 {
        let y = self.gain * x + self.a1 * self.y1 + self.a2 * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// Deterministic white noise (xorshift) at the given peak level.
pub(crate) fn noise(samples: usize, level: i16, seed: u32) -> Vec<i16> {
    let mut state = seed.max(1);
    (0..samples)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            ((((state >> 16) as i32 - 32_768) * i32::from(level)) / 32_768) as i16
        })
        .collect()
}

/// Runs `signal` through a gate in 20 ms frames, returning the transitions.
fn run(gate: &mut VoiceGate, signal: &[i16]) -> Vec<VadTransition> {
    signal
        .chunks_exact(320)
        .enumerate()
        .filter_map(|(i, frame)| gate.process(frame, i as u64 * 20))
        .collect()
}

/// The transitions by kind, for comparing sequences.
fn kinds(events: &[VadTransition]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            VadTransition::SpeechStart { .. } => "start",
            VadTransition::Pause { .. } => "pause",
            VadTransition::Resume { .. } => "resume",
            VadTransition::SpeechEnd { .. } => "end",
            VadTransition::Onset { .. } => "onset",
            VadTransition::FalseOnset { .. } => "false onset",
        })
        .collect()
}

fn voiced_frames(signal: &[i16]) -> usize {
    let mut vad = Vad::new_with_rate_and_mode(SampleRate::Rate16kHz, VadMode::Aggressive);
    signal
        .chunks_exact(320)
        .filter(|f| vad.is_voice_segment(f) == Ok(true))
        .count()
}

#[test]
fn synthetic_vowel_is_voiced_for_webrtc_vad() {
    let vowel = synthetic_vowel(1_000);
    let voiced = voiced_frames(&vowel);
    assert!(voiced >= 45, "only {voiced} of 50 frames voiced");
}

#[test]
fn silence_gives_nothing() {
    let mut gate = VoiceGate::new(VadConfig::default()).unwrap();
    assert!(run(&mut gate, &vec![0; 16_000 * 3]).is_empty());
    assert!(!gate.in_speech());
    let quiet = noise(16_000 * 3, 30, 7);
    assert!(run(&mut gate, &quiet).is_empty());
}

#[test]
fn short_noise_blip_gives_nothing() {
    let mut signal = vec![0i16; 320 * 20];
    let blip = noise(640, 20_000, 99);
    signal[320 * 10..320 * 12].copy_from_slice(&blip);
    // The raw detector does flag the blip, so the gate is what keeps it out.
    assert!(
        voiced_frames(&signal) >= 1,
        "blip not voiced; test proves nothing"
    );
    let mut gate = VoiceGate::new(VadConfig::default()).unwrap();
    assert!(run(&mut gate, &signal).is_empty());
}

fn with_onsets() -> VoiceGate {
    VoiceGate::new(VadConfig {
        onsets: true,
        ..VadConfig::default()
    })
    .unwrap()
}

#[test]
fn a_blip_is_an_onset_that_comes_to_nothing() {
    let mut signal = vec![0i16; 320 * 20];
    signal[320 * 10..320 * 12].copy_from_slice(&noise(640, 20_000, 99));
    let events = run(&mut with_onsets(), &signal);
    let [VadTransition::Onset { at_ms: onset }, VadTransition::FalseOnset { at_ms: gone }] =
        events[..]
    else {
        panic!("{events:?}");
    };
    assert_eq!(onset, 200);
    assert!(gone > onset && gone <= 400, "{gone}");
}

#[test]
fn voice_is_reported_at_its_first_frame_and_confirmed_later() {
    let mut signal = vec![0i16; 320 * 10];
    signal.extend(synthetic_vowel(600));
    signal.extend(vec![0i16; 320 * 50]);
    let mut gate = with_onsets();
    let events: Vec<(usize, VadTransition)> = signal
        .chunks_exact(320)
        .enumerate()
        .filter_map(|(i, f)| gate.process(f, i as u64 * 20).map(|t| (i, t)))
        .collect();
    let [(first, VadTransition::Onset { at_ms: 200 }), (confirmed, VadTransition::SpeechStart { at_ms: 200 }), (_, VadTransition::SpeechEnd { .. })] =
        events[..]
    else {
        panic!("{events:?}");
    };
    // The onset is heard on the first voiced frame; speech is confirmed frames later.
    assert_eq!(first, 10);
    assert!(confirmed > first + 2, "{events:?}");
    // Without `onsets`, the same audio gives only the start and the end.
    assert_eq!(
        run(&mut VoiceGate::new(VadConfig::default()).unwrap(), &signal).len(),
        2
    );
}

#[test]
fn short_word_starts_speech() {
    let mut signal = vec![0i16; 320 * 10];
    signal.extend(synthetic_vowel(100));
    signal.extend(vec![0i16; 320 * 10]);
    let mut gate = VoiceGate::new(VadConfig::default()).unwrap();
    let events = run(&mut gate, &signal);
    assert_eq!(
        events.first(),
        Some(&VadTransition::SpeechStart { at_ms: 200 })
    );
}

#[test]
fn voiced_signal_gives_one_start_and_one_end() {
    let mut signal = vec![0i16; 16_000 / 2];
    signal.extend(synthetic_vowel(1_000));
    signal.extend(vec![0i16; 16_000 * 2]);
    let mut gate = VoiceGate::new(VadConfig::default()).unwrap();
    let events = run(&mut gate, &signal);
    assert_eq!(events.len(), 2, "{events:?}");
    let VadTransition::SpeechStart { at_ms: start } = events[0] else {
        panic!("first event {:?}", events[0]);
    };
    let VadTransition::SpeechEnd { at_ms: end } = events[1] else {
        panic!("second event {:?}", events[1]);
    };
    assert!((500..=560).contains(&start), "start at {start}");
    assert!((1_440..=1_520).contains(&end), "end at {end}");
    assert!(!gate.in_speech());
}

#[test]
fn speech_state_is_visible_while_speaking() {
    let mut gate = VoiceGate::new(VadConfig::default()).unwrap();
    let events = run(&mut gate, &synthetic_vowel(500));
    assert!(matches!(
        events.as_slice(),
        [VadTransition::SpeechStart { .. }]
    ));
    assert!(gate.in_speech());
    assert!(gate.speech_started_at().is_some_and(|t| t <= 60));
}

#[test]
fn speech_end_waits_for_the_hangover() {
    let cfg = VadConfig {
        hangover_ms: 200,
        ..VadConfig::default()
    };
    let mut gate = VoiceGate::new(cfg).unwrap();
    let mut signal = synthetic_vowel(400);
    // A 100 ms pause is shorter than the hangover and must not split the utterance.
    signal.extend(vec![0i16; 1_600]);
    signal.extend(synthetic_vowel(400));
    signal.extend(vec![0i16; 16_000]);
    let events = run(&mut gate, &signal);
    assert_eq!(events.len(), 2, "{events:?}");
    let VadTransition::SpeechEnd { at_ms: end } = events[1] else {
        panic!("{events:?}");
    };
    assert!((860..=920).contains(&end), "end at {end}");
}

#[test]
fn a_pause_inside_speech_is_reported_and_so_is_the_voice_coming_back() {
    let cfg = VadConfig {
        pause_ms: 200,
        ..VadConfig::default()
    };
    let mut gate = VoiceGate::new(cfg).unwrap();
    let mut signal = synthetic_vowel(600);
    // 400 ms of silence: a pause (200 ms), not an end (600 ms).
    signal.extend(vec![0i16; 16 * 400]);
    signal.extend(synthetic_vowel(600));
    signal.extend(vec![0i16; 16_000]);
    let events = run(&mut gate, &signal);
    assert_eq!(
        kinds(&events),
        ["start", "pause", "resume", "pause", "end"],
        "{events:?}"
    );
    let VadTransition::Pause { at_ms, silence_ms } = events[1] else {
        unreachable!()
    };
    assert!((560..=620).contains(&at_ms), "voice ended at {at_ms}");
    assert!((200..=240).contains(&silence_ms), "{silence_ms}");
    // Without `pause_ms` the same audio is one utterance and nothing else.
    let mut plain = VoiceGate::new(VadConfig::default()).unwrap();
    assert_eq!(run(&mut plain, &signal).len(), 2);
}

#[test]
fn ending_speech_now_makes_the_next_voice_new_speech() {
    let cfg = VadConfig {
        pause_ms: 200,
        ..VadConfig::default()
    };
    let mut gate = VoiceGate::new(cfg).unwrap();
    let mut first = synthetic_vowel(600);
    first.extend(vec![0i16; 16 * 250]);
    let events = run(&mut gate, &first);
    assert!(
        matches!(events.last(), Some(VadTransition::Pause { .. })),
        "{events:?}"
    );
    let ended = gate.end_now();
    assert!(
        matches!(ended, Some(VadTransition::SpeechEnd { at_ms }) if (560..=620).contains(&at_ms)),
        "{ended:?}"
    );
    assert!(!gate.in_speech());
    assert_eq!(gate.end_now(), None, "nothing left to end");
    let events = run(&mut gate, &synthetic_vowel(600));
    assert!(
        matches!(events.first(), Some(VadTransition::SpeechStart { .. })),
        "{events:?}"
    );
}

#[test]
fn rejects_bad_aggressiveness_and_odd_frames() {
    assert!(VoiceGate::new(VadConfig {
        aggressiveness: 4,
        ..VadConfig::default()
    })
    .is_err());
    let mut gate = VoiceGate::new(VadConfig::default()).unwrap();
    assert_eq!(gate.process(&[], 0), None);
    assert_eq!(gate.process(&[0; 100], 0), None);
}

// ---- the same gate with Silero VAD ----

fn silero_gate(cfg: VadConfig) -> Option<VoiceGate> {
    let model = super::silero_model::test_model()?;
    Some(VoiceGate::with_engine(cfg, &VadEngine::Silero(model)).unwrap())
}

/// A committed espeak-ng recording (its voice runs from 0 to 2270 ms) after `lead_ms` of silence
/// and before 1.5 s of it.
fn weather(lead_ms: usize) -> Vec<i16> {
    fixture("weather", lead_ms)
}

/// The fixture `name` of `tests/fixtures/smart-turn/` after `lead_ms` of silence and before
/// 1.5 s of it.
fn fixture(name: &str, lead_ms: usize) -> Vec<i16> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/smart-turn/{name}.wav"));
    let (words, rate) = crate::audio::read_wav_mono_i16(&path).unwrap();
    assert_eq!(rate, 16_000);
    let mut signal = vec![0i16; 16 * lead_ms];
    signal.extend(words);
    signal.extend(vec![0i16; 16 * 1_500]);
    signal
}

/// Like `run`, with the index of the frame each transition came on.
fn run_frames(gate: &mut VoiceGate, signal: &[i16]) -> Vec<(usize, VadTransition)> {
    signal
        .chunks_exact(320)
        .enumerate()
        .filter_map(|(i, frame)| gate.process(frame, i as u64 * 20).map(|t| (i, t)))
        .collect()
}

#[test]
fn silero_hears_words_from_where_they_start_to_where_they_end() {
    let Some(mut gate) = silero_gate(VadConfig::default()) else {
        return;
    };
    let events = run(&mut gate, &weather(500));
    let [VadTransition::SpeechStart { at_ms: start }, VadTransition::SpeechEnd { at_ms: end }] =
        events[..]
    else {
        panic!("one run of speech expected: {events:?}");
    };
    // The voice runs from 500 to 2770 ms; a window is 32 ms and a frame takes the latest.
    assert!((480..=560).contains(&start), "start at {start}");
    assert!((2_740..=2_860).contains(&end), "end at {end}");
}

#[test]
fn silero_confirms_speech_sooner_than_webrtc_vad() {
    let Some(mut silero) = silero_gate(VadConfig::default()) else {
        return;
    };
    let mut webrtc = VoiceGate::new(VadConfig::default()).unwrap();
    let signal = weather(500);
    let confirmed = |events: Vec<(usize, VadTransition)>| match events.first() {
        Some((frame, VadTransition::SpeechStart { .. })) => *frame,
        other => panic!("{other:?}"),
    };
    let silero = confirmed(run_frames(&mut silero, &signal));
    let webrtc = confirmed(run_frames(&mut webrtc, &signal));
    // webrtc-vad needs 7 flagged frames (3 + spill + overhang), Silero 3 (but hears the voice
    // a window or two after it begins).
    assert!(
        silero < webrtc,
        "Silero confirmed on frame {silero}, webrtc-vad on {webrtc}"
    );
}

/// Silence with a 5 ms click of loud noise every `every_ms`.
fn clicks(ms: usize, every_ms: usize) -> Vec<i16> {
    let mut signal = vec![0i16; 16 * ms];
    for (n, at) in (every_ms..ms).step_by(every_ms).enumerate() {
        let click = noise(80, 20_000, 11 + n as u32);
        signal[16 * at..16 * at + 80].copy_from_slice(&click);
    }
    signal
}

#[test]
fn silero_starts_no_speech_on_clicks_nor_on_a_hum() {
    let Some(mut gate) = silero_gate(VadConfig::default()) else {
        return;
    };
    let events = run(&mut gate, &clicks(5_000, 120));
    assert!(events.is_empty(), "clicks: {events:?}");
    let hum: Vec<i16> = (0..16 * 2_000)
        .map(|i| ((std::f32::consts::TAU * 150.0 * i as f32 / 16_000.0).sin() * 3_300.0) as i16)
        .collect();
    let events = run(&mut gate, &hum);
    assert!(events.is_empty(), "hum: {events:?}");
    // The same gate still hears words after them.
    let events = run(&mut gate, &weather(300));
    assert!(
        matches!(events.first(), Some(VadTransition::SpeechStart { .. })),
        "{events:?}"
    );
}

#[test]
fn silero_reports_a_pause_inside_speech_and_the_voice_coming_back() {
    let Some(mut gate) = silero_gate(VadConfig {
        pause_ms: 200,
        ..VadConfig::default()
    }) else {
        return;
    };
    // "number" pauses from 2450 to 2740 ms: after the lead, 2950 to 3240.
    let events = run(&mut gate, &fixture("number", 500));
    assert_eq!(
        kinds(&events),
        ["start", "pause", "resume", "pause", "end"],
        "{events:?}"
    );
    let (VadTransition::Pause { at_ms: paused, .. }, VadTransition::Resume { at_ms: resumed }) =
        (events[1], events[2])
    else {
        unreachable!()
    };
    assert!((2_900..=3_020).contains(&paused), "{events:?}");
    assert!((3_220..=3_320).contains(&resumed), "{events:?}");
}
