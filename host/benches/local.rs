//! Offline providers: transcription and synthesis real-time factors, LLM tokens/s and the offline
//! turn latency (speech end to first agent audio) for 1, 2 and 4 concurrent turns.
//!
//! `cargo bench -p voice-host --bench local` (models from `voice-host models install`; the
//! benchmark prints a notice and does nothing when they are missing).

use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;
use std::time::{Duration, Instant};
use voice_host::audio::Resampler;
use voice_host::behaviour::{ChatMessage, GenerationSettings, Role};
use voice_host::providers::local::bench::{EncoderWindow, Espeak, WhisperModel};
use voice_host::providers::local::{LocalLlm, LocalModels, LocalStt, LocalTts};
use voice_host::providers::{
    LlmEvent, LlmProvider, LlmRequest, SttEvent, SttInput, SttParams, SttProvider, TtsEvent,
    TtsInput, TtsParams, TtsProvider,
};

const UTTERANCE: &str = "what is the weather in paris";

fn models() -> Option<LocalModels> {
    let dir = std::env::var_os("MODELS_DIR").map_or_else(LocalModels::default_dir, Into::into);
    let models = LocalModels::new(dir);
    let missing = models.check();
    if missing.is_empty() {
        Some(models)
    } else {
        eprintln!("offline benchmarks skipped: {}", missing.join("; "));
        None
    }
}

/// The utterance spoken by espeak-ng, at 16 kHz.
fn speech_16k() -> Vec<i16> {
    let espeak = Espeak::get().expect("espeak-ng");
    let mut native = Vec::new();
    espeak
        .synthesize(UTTERANCE, None, Some(150), &mut |s: &[i16]| {
            native.extend_from_slice(s);
            true
        })
        .expect("synthesis");
    let mut resampler = Resampler::new(espeak.sample_rate(), 16_000).expect("resampler");
    let mut out = Vec::new();
    resampler.process(&native, &mut out);
    resampler.flush(&mut out);
    out
}

fn stt(c: &mut Criterion, models: &LocalModels, speech: &[i16]) {
    let mut whisper = WhisperModel::load(&models.whisper_dir()).expect("whisper");
    let audio: Vec<f32> = speech.iter().map(|&s| f32::from(s) / 32_768.0).collect();
    let seconds = audio.len() as f64 / 16_000.0;
    let mut group = c.benchmark_group("whisper");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));
    for (name, window) in [
        ("utterance-window", EncoderWindow::default()),
        ("full-window", EncoderWindow::Full),
    ] {
        let text = whisper
            .transcribe(&audio, window, &|| false)
            .expect("transcribe")
            .unwrap_or_default();
        let start = Instant::now();
        let runs = 3;
        for _ in 0..runs {
            whisper
                .transcribe(&audio, window, &|| false)
                .expect("transcribe");
        }
        let rtf = start.elapsed().as_secs_f64() / runs as f64 / seconds;
        println!("whisper {name}: {seconds:.2} s of speech, real-time factor {rtf:.3}, transcript {text:?}");
        group.bench_function(name, |b| {
            b.iter(|| {
                whisper
                    .transcribe(&audio, window, &|| false)
                    .expect("transcribe")
            })
        });
    }
    group.finish();
}

fn request(text: &str, max_tokens: u32) -> LlmRequest {
    LlmRequest {
        messages: vec![ChatMessage::new(Role::User, text)],
        settings: GenerationSettings {
            temperature: Some(0.0),
            max_tokens: Some(max_tokens),
        },
        ..Default::default()
    }
}

fn llm(c: &mut Criterion, rt: &tokio::runtime::Runtime, llm: &Arc<LocalLlm>) {
    // Tokens/s of generation alone: a long reply, minus the time to the first token.
    let (mut tokens, mut gen_time, mut first_token) = (0u32, 0f64, 0f64);
    for _ in 0..3 {
        let mut rx = llm.stream(request("Tell me a long story about a cat in Paris.", 64));
        let start = Instant::now();
        let mut first = None;
        rt.block_on(async {
            while let Some(event) = rx.recv().await {
                match event {
                    LlmEvent::Token(_) if first.is_none() => first = Some(start.elapsed()),
                    LlmEvent::Done { usage, .. } => {
                        let first = first.unwrap_or_default();
                        tokens += usage.map_or(0, |u| u.completion_tokens).saturating_sub(1);
                        gen_time += (start.elapsed() - first).as_secs_f64();
                        first_token += first.as_secs_f64();
                    }
                    LlmEvent::Error(e) => panic!("{e}"),
                    _ => {}
                }
            }
        });
    }
    println!(
        "llm: {:.1} tokens/s generation, {:.0} ms to first token (prompt of about 120 tokens)",
        f64::from(tokens) / gen_time,
        first_token / 3.0 * 1000.0
    );
    let mut group = c.benchmark_group("llm");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("reply-up-to-32-tokens", |b| {
        b.iter(|| {
            let mut rx = llm.stream(request("what is the weather in paris", 32));
            rt.block_on(async { while rx.recv().await.is_some() {} })
        })
    });
    group.finish();
}

fn tts(c: &mut Criterion) {
    let espeak = Espeak::get().expect("espeak-ng");
    let sentence = "The weather in Paris is mild today, with a light breeze and some sunshine.";
    let synth = || {
        let mut n = 0usize;
        espeak
            .synthesize(sentence, None, None, &mut |s: &[i16]| {
                n += s.len();
                true
            })
            .expect("synthesis");
        n
    };
    let samples = synth();
    let start = Instant::now();
    for _ in 0..10 {
        synth();
    }
    let rtf =
        start.elapsed().as_secs_f64() / 10.0 / (samples as f64 / f64::from(espeak.sample_rate()));
    println!(
        "espeak-ng: real-time factor {rtf:.4} ({:.2} s sentence)",
        samples as f64 / f64::from(espeak.sample_rate())
    );
    let mut group = c.benchmark_group("espeak");
    group.sample_size(20);
    group.bench_function("sentence", |b| b.iter(synth));
    group.finish();
}

/// One offline turn after the user stopped speaking: STT final, LLM until its first sentence,
/// TTS of that sentence until the first audio chunk. Returns the latency.
async fn turn(
    stt: Arc<LocalStt>,
    llm: Arc<LocalLlm>,
    tts: Arc<LocalTts>,
    speech: Arc<Vec<i16>>,
) -> Duration {
    let mut s = stt.open(SttParams::default());
    for chunk in speech.chunks(320) {
        s.input
            .send(SttInput::Audio(chunk.to_vec()))
            .await
            .expect("stt input");
    }
    s.input
        .send(SttInput::Audio(vec![0; 8_000]))
        .await
        .expect("stt input");
    let speech_end = Instant::now();
    s.input.send(SttInput::Finalize).await.expect("stt input");
    let transcript = loop {
        match s.events.recv().await.expect("stt events") {
            SttEvent::Final { text, .. } => break text,
            SttEvent::Error(e) => panic!("{e}"),
            _ => {}
        }
    };
    let mut rx = llm.stream(LlmRequest {
        messages: vec![ChatMessage::new(Role::User, transcript)],
        ..Default::default()
    });
    let mut sentence = String::new();
    while let Some(event) = rx.recv().await {
        match event {
            LlmEvent::Token(t) => {
                sentence.push_str(&t);
                if sentence.trim_end().ends_with(['.', '!', '?']) {
                    break;
                }
            }
            LlmEvent::Error(e) => panic!("{e}"),
            LlmEvent::Done { .. } => break,
            LlmEvent::Working => {}
        }
    }
    drop(rx);
    let mut t = tts.open(TtsParams {
        preferred_rate: 24_000,
        ..Default::default()
    });
    t.input
        .send(TtsInput::Text(sentence))
        .await
        .expect("tts input");
    match t.events.recv().await.expect("tts events") {
        TtsEvent::Audio { .. } => speech_end.elapsed(),
        TtsEvent::Error(e) => panic!("{e}"),
        TtsEvent::Done => panic!("no audio"),
    }
}

fn turns(rt: &tokio::runtime::Runtime, models: &LocalModels, llm: Arc<LocalLlm>, speech: &[i16]) {
    let stt = LocalStt::load(models).expect("stt");
    let tts = LocalTts::load().expect("tts");
    let speech = Arc::new(speech.to_vec());
    for concurrent in [1usize, 2, 4] {
        let mut latencies = Vec::new();
        for _ in 0..3 {
            let handles: Vec<_> = (0..concurrent)
                .map(|_| rt.spawn(turn(stt.clone(), llm.clone(), tts.clone(), speech.clone())))
                .collect();
            for h in handles {
                latencies.push(rt.block_on(h).expect("turn").as_secs_f64() * 1000.0);
            }
        }
        latencies.sort_by(f64::total_cmp);
        let mean = latencies.iter().sum::<f64>() / latencies.len() as f64;
        println!(
            "offline turn, {concurrent} concurrent: speech end to first audio mean {mean:.0} ms, worst {:.0} ms",
            latencies.last().copied().unwrap_or_default()
        );
    }
}

fn benches(c: &mut Criterion) {
    let Some(models) = models() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let speech = speech_16k();
    stt(c, &models, &speech);
    let local_llm = LocalLlm::load(&models).expect("llm");
    llm(c, &rt, &local_llm);
    tts(c);
    turns(&rt, &models, local_llm, &speech);
}

criterion_group!(offline, benches);
criterion_main!(offline);
