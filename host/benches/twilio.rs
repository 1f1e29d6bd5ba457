//! Cost of the Twilio Media Streams bridge per 20 ms of audio: an inbound `media` event parsed
//! and its payload decoded, and an outbound chunk of agent audio turned into `media` (+ `mark`).

use std::hint::black_box;
use std::sync::{Arc, Mutex};

use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use voice_host::transport::twilio::inbound::inbound;
use voice_host::transport::twilio::marks::PlaybackMarks;
use voice_host::transport::twilio::outbound::Translator;

fn bench(c: &mut Criterion) {
    let chunk: Vec<u8> = (0..160u32).map(|i| (i * 37 % 256) as u8).collect();
    let payload = base64::engine::general_purpose::STANDARD.encode(&chunk);
    let media = format!(
        r#"{{"event":"media","sequenceNumber":"42","streamSid":"MZ00000000000000000000000000000001","media":{{"track":"inbound","chunk":"41","timestamp":"820","payload":"{payload}"}}}}"#
    );
    let marks = Arc::new(Mutex::new(PlaybackMarks::new(8000)));
    let mut group = c.benchmark_group("twilio_20ms");
    group.bench_function("inbound_media", |b| {
        b.iter(|| black_box(inbound(black_box(&media), &marks)))
    });
    let mut translator =
        Translator::new("MZ00000000000000000000000000000001".into(), marks.clone());
    group.bench_function("outbound_media_and_marks", |b| {
        b.iter(|| black_box(translator.audio(black_box(&chunk))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
