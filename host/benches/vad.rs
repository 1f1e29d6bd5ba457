//! CPU of voice activity detection per second of a session's audio, webrtc-vad against Silero
//! VAD: the gate over a minute of espeak-ng speech and silence (the committed fixtures), 20 ms
//! frames at 16 kHz, as a session feeds it. Time per iteration / 60 is the CPU one session costs
//! per second of audio. Silero needs `voice-host models install` (skipped with a notice without it).

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use voice_host::audio::{read_wav_mono_i16, SileroVad, VadConfig, VadEngine, VoiceGate};
use voice_host::providers::local::LocalModels;

const SECONDS: usize = 60;

/// A minute of the four fixtures in turn, each followed by a second of silence.
fn minute() -> Vec<i16> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smart-turn");
    let mut clips = Vec::new();
    for name in ["weather", "number", "time", "table"] {
        let (samples, rate) = read_wav_mono_i16(dir.join(format!("{name}.wav"))).unwrap();
        assert_eq!(rate, 16_000);
        clips.push(samples);
    }
    let mut audio = Vec::new();
    for clip in clips.iter().cycle() {
        if audio.len() >= 16_000 * SECONDS {
            break;
        }
        audio.extend_from_slice(clip);
        audio.extend(std::iter::repeat_n(0i16, 16_000));
    }
    audio.truncate(16_000 * SECONDS);
    audio
}

fn gate(c: &mut Criterion) {
    let audio = minute();
    let mut engines = vec![VadEngine::WebRtc];
    let dir = std::env::var_os("MODELS_DIR").map_or_else(LocalModels::default_dir, Into::into);
    match SileroVad::load_sessions(&dir, 1) {
        Ok(model) => engines.push(VadEngine::Silero(model)),
        Err(e) => eprintln!("SKIPPED silero: {e}"),
    }
    let mut group = c.benchmark_group("vad_gate_60s");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    for engine in engines {
        group.bench_function(engine.name(), |b| {
            b.iter(|| {
                let mut gate = VoiceGate::with_engine(VadConfig::default(), &engine).unwrap();
                let mut transitions = 0u32;
                for (i, frame) in audio.chunks_exact(320).enumerate() {
                    transitions +=
                        u32::from(gate.process(black_box(frame), i as u64 * 20).is_some());
                }
                black_box(transitions)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, gate);
criterion_main!(benches);
