//! Throughput of the inbound audio pipeline (decode, resample to 16 kHz, 20 ms framing, VAD).
//!
//! Each iteration pushes 60 s of audio in 20 ms packets, as a client streams it; criterion's
//! time per iteration divided into 60 s gives the real-time factor on one core.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use voice_host::audio::{AudioFormat, Encoding, InputPipeline, VadConfig};

const SECONDS: u32 = 60;

/// A minute of speech-like audio: 120 Hz buzz with a slow syllable envelope and pauses,
/// so the VAD sees both voiced and silent stretches.
fn speechlike(rate: u32) -> Vec<i16> {
    let n = (rate * SECONDS) as usize;
    (0..n)
        .map(|i| {
            let t = i as f32 / rate as f32;
            let syllable = (std::f32::consts::TAU * 3.0 * t).sin().max(0.0);
            let pause = if (t as u32) % 4 == 3 { 0.0 } else { 1.0 };
            let buzz = (std::f32::consts::TAU * 120.0 * t).sin()
                + 0.5 * (std::f32::consts::TAU * 730.0 * t).sin()
                + 0.3 * (std::f32::consts::TAU * 1_090.0 * t).sin();
            (6_000.0 * syllable * pause * buzz) as i16
        })
        .collect()
}

fn bench_input(c: &mut Criterion, name: &str, format: AudioFormat) {
    let mut bytes = Vec::new();
    format.encode(&speechlike(format.sample_rate), &mut bytes);
    let packet = format.bytes_for_ms(20);
    let mut group = c.benchmark_group("input_pipeline");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function(name, |b| {
        b.iter(|| {
            let mut pipeline = InputPipeline::new(format, VadConfig::default()).unwrap();
            let mut transitions = 0u32;
            for chunk in bytes.chunks(packet) {
                pipeline.push(black_box(chunk), |frame, _, t| {
                    black_box(frame);
                    transitions += u32::from(t.is_some());
                });
            }
            black_box((pipeline.clock_ms(), transitions))
        })
    });
    group.finish();
}

fn input_pipeline(c: &mut Criterion) {
    bench_input(
        c,
        "pcm16_16k_60s",
        AudioFormat::new(Encoding::Pcm16, 16_000),
    );
    bench_input(c, "mulaw_8k_60s", AudioFormat::new(Encoding::Mulaw, 8_000));
    bench_input(
        c,
        "pcm16_48k_60s",
        AudioFormat::new(Encoding::Pcm16, 48_000),
    );
}

criterion_group!(benches, input_pipeline);
criterion_main!(benches);
