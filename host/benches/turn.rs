//! The end-of-turn model (Smart Turn v3.2 on ONNX Runtime): CPU time of the features and of one
//! run of the model at batch 1 to 8, and the latency of requests through the model's threads
//! (one and two) with 1 to 8 sessions asking at once; and the text end-of-turn model (SmolLM2
//! read through its thread): a question read cold, one whose words were read ahead, and the
//! reads ahead of one utterance.
//!
//! `cargo bench -p voice-host --bench turn` (model and runtime from `voice-host models install`;
//! the benchmark prints a notice and does nothing when they are missing).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use voice_host::providers::local::LocalModels;
use voice_host::turn::bench::{FeatureExtractor, SmartTurn};
use voice_host::turn::features::FEATURES_LEN;
use voice_host::turn::words::{worth_reading_ahead, READ_AHEAD_WORDS};
use voice_host::turn::{TurnModel, WordsModel};

fn models_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("MODELS_DIR").map_or_else(LocalModels::default_dir, Into::into);
    let started = Instant::now();
    match SmartTurn::load(&dir) {
        Ok(_) => {
            let first = started.elapsed();
            let started = Instant::now();
            SmartTurn::load(&dir).expect("model");
            println!(
                "load: {:.0} ms the first time (ONNX Runtime and the model), {:.0} ms after",
                first.as_secs_f64() * 1e3,
                started.elapsed().as_secs_f64() * 1e3
            );
            Some(dir)
        }
        Err(e) => {
            eprintln!("end-of-turn benchmarks skipped: {e}");
            None
        }
    }
}

/// A finished question (espeak-ng) and 300 ms of silence, as the model is asked at a pause.
fn question() -> Vec<f32> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/smart-turn/weather.wav"
    );
    let (pcm, rate) = voice_host::audio::read_wav_mono_i16(path).expect("fixture WAV");
    assert_eq!(rate, 16_000);
    let mut audio: Vec<f32> = pcm.iter().map(|&s| f32::from(s) / 32_768.0).collect();
    audio.extend(std::iter::repeat_n(0.0, 4_800));
    audio
}

/// CPU time used by the whole process so far (every thread ONNX Runtime might use counts).
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Median of `runs` (CPU, wall) times of `f`, in ms.
fn median_ms(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut cpu = Vec::with_capacity(runs);
    let mut wall = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (c, w) = (process_cpu(), Instant::now());
        f();
        cpu.push((process_cpu() - c).as_secs_f64() * 1e3);
        wall.push(w.elapsed().as_secs_f64() * 1e3);
    }
    cpu.sort_by(f64::total_cmp);
    wall.sort_by(f64::total_cmp);
    (cpu[runs / 2], wall[runs / 2])
}

fn turn(c: &mut Criterion) {
    let Some(dir) = models_dir() else {
        return;
    };
    let audio = question();
    let extractor = FeatureExtractor::new();
    let features = extractor.features(&audio);
    assert_eq!(features.len(), FEATURES_LEN);
    let mut model = SmartTurn::load(&dir).expect("model");
    let p = model.run(features.clone(), 1).expect("run")[0];

    // CPU time per run, on this thread (one intra-op thread: the run stays on it).
    let runs = 30;
    let (f_cpu, f_wall) = median_ms(runs, || {
        extractor.features(&audio);
    });
    println!("features: {f_cpu:.2} ms CPU ({f_wall:.2} ms wall) per clip");
    for batch in [1usize, 2, 4, 8] {
        let input: Vec<f32> = features.repeat(batch);
        let (cpu, wall) = median_ms(runs, || {
            model.run(input.clone(), batch).expect("run");
        });
        println!(
            "model, batch {batch}: {cpu:.1} ms CPU ({wall:.1} ms wall) per run, {:.1} ms CPU per clip",
            cpu / batch as f64
        );
    }
    println!("p(complete) of the question: {p:.4}");

    // Through the model's threads, as sessions ask.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("turn");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("features", |b| b.iter(|| extractor.features(&audio)));
    for batch in [1usize, 4] {
        let input: Vec<f32> = features.repeat(batch);
        group.bench_function(format!("model_batch{batch}"), |b| {
            b.iter_batched(
                || input.clone(),
                |input| model.run(input, batch).expect("run"),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
    words(&dir, &rt);
    // After the text model, whose memory is freed by then: each thread's copy is measured.
    for threads in [1usize, 2] {
        model_threads(&dir, &rt, &audio, threads);
    }
}

/// Through the model's `threads` threads, as sessions ask: 1 to 8 at once. Wall time until the
/// last answer, and CPU per answer.
fn model_threads(
    dir: &std::path::Path,
    rt: &tokio::runtime::Runtime,
    audio: &[f32],
    threads: usize,
) {
    // Models dropped before are freed by their threads as they end.
    std::thread::sleep(Duration::from_millis(500));
    let before = resident_mb();
    let shared = TurnModel::load_on(dir, threads).expect("model");
    for sessions in [1usize, 2, 4, 8] {
        let (cpu, wall) = median_ms(20, || {
            rt.block_on(futures_util::future::join_all(
                (0..sessions).map(|_| shared.predict(audio.to_vec())),
            ))
            .into_iter()
            .for_each(|r| {
                r.expect("prediction");
            });
        });
        println!(
            "TurnModel on {threads} thread(s), {sessions} session(s) asking at once: {wall:.1} ms \
             until the last answer, {:.1} ms CPU per answer (features included)",
            cpu / sessions as f64
        );
    }
    println!(
        "TurnModel on {threads} thread(s): resident memory of its copies after their runs: {:.0} MB",
        resident_mb() - before
    );
}

/// The text end-of-turn model, as a session uses it: CPU and wall time per question.
fn words(dir: &std::path::Path, rt: &tokio::runtime::Runtime) {
    let before = resident_mb();
    let model = match WordsModel::load(dir) {
        Ok(model) => model,
        Err(e) => {
            eprintln!("text end-of-turn benchmarks skipped: {e}");
            return;
        }
    };
    let agent = "Sure, where would you like to go?";
    let said = "I need a taxi from the central station to the airport for tomorrow morning at";
    let runs = 15;
    // Cold: a session's first question, the whole prompt evaluated (the system part is shared
    // in no cache: each session has its own sequence).
    let (cpu, wall) = median_ms(runs, || {
        rt.block_on(model.session().probability(agent, said))
            .expect("read");
    });
    println!(
        "words, read cold ({} words): {cpu:.1} ms CPU ({wall:.1} ms wall)",
        said.split(' ').count()
    );
    // Warm: the words were read ahead as the recogniser's interims came, as a session reads
    // them; the pause's question has the rest.
    let words: Vec<&str> = said.split(' ').collect();
    let (mut ahead_cpu, mut ahead_reads, mut unread) = (0.0, 0, 0);
    let (cpu, wall) = {
        let mut cpu = Vec::new();
        let mut wall = Vec::new();
        for _ in 0..runs {
            let session = model.session();
            let c = process_cpu();
            // Word by word, as interims grow, reading what the session would read.
            let mut read = None;
            for n in 1..words.len() {
                let now = (agent.to_string(), words[..n].join(" "));
                if worth_reading_ahead(read.as_ref(), &now) {
                    rt.block_on(session.probability(&now.0, &now.1))
                        .expect("read ahead");
                    ahead_reads += 1;
                    read = Some(now);
                }
            }
            unread = words.len() - read.map_or(0, |r| r.1.split(' ').count());
            ahead_cpu += (process_cpu() - c).as_secs_f64() * 1e3;
            let (c, w) = (process_cpu(), Instant::now());
            rt.block_on(session.probability(agent, said)).expect("read");
            cpu.push((process_cpu() - c).as_secs_f64() * 1e3);
            wall.push(w.elapsed().as_secs_f64() * 1e3);
        }
        cpu.sort_by(f64::total_cmp);
        wall.sort_by(f64::total_cmp);
        (cpu[runs / 2], wall[runs / 2])
    };
    println!(
        "words, read ahead at the first word, then {READ_AHEAD_WORDS} words at a time: \
         {:.1} ms CPU per read ahead, {:.1} ms CPU for the utterance's {} reads; the pause's \
         question ({unread} words unread) then {cpu:.1} ms CPU ({wall:.1} ms wall)",
        ahead_cpu / ahead_reads as f64,
        ahead_cpu / runs as f64,
        ahead_reads / runs
    );
    for sessions in [4, 8, 12, 16, 24, 32] {
        words_sessions_at_once(&model, rt, sessions);
    }
    println!(
        "words, resident memory of the model and its cache once every sequence was used: {:.0} MB",
        resident_mb() - before
    );
    // A second thread with its own context (`TURN_WORDS_THREADS=2`), on a machine with a core
    // to spare for it: the same work in about half the wall time.
    let two = WordsModel::load_on(dir, 2).expect("the model loaded once already");
    println!("words, on two threads:");
    for sessions in [8, 32] {
        words_sessions_at_once(&two, rt, sessions);
    }
}

/// The process's resident memory, in MB (Linux).
fn resident_mb() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / 1e6
}

/// Sessions speaking at once: each reads its turn ahead as the driver does and asks at its
/// pause, all sessions' reads of each word sent together. CPU per turn, against the context's
/// cached sequences (past them a session's cached prompt may be given away between its reads),
/// and the wall time of the whole, against the model's threads.
fn words_sessions_at_once(model: &WordsModel, rt: &tokio::runtime::Runtime, sessions: usize) {
    use futures_util::future::join_all;
    let agent = "Sure, where would you like to go?";
    let said = "I need a taxi from the central station to the airport for tomorrow morning at";
    let words: Vec<&str> = said.split(' ').collect();
    let speakers: Vec<_> = (0..sessions).map(|_| model.session()).collect();
    let mut read: Vec<Option<(String, String)>> = vec![None; sessions];
    let (c, w) = (process_cpu(), Instant::now());
    for n in 1..words.len() {
        let now = (agent.to_string(), words[..n].join(" "));
        let mut reads = Vec::new();
        for (session, read) in speakers.iter().zip(read.iter_mut()) {
            if worth_reading_ahead(read.as_ref(), &now) {
                reads.push(session.probability(&now.0, &now.1));
                *read = Some(now.clone());
            }
        }
        for answer in rt.block_on(join_all(reads)) {
            answer.expect("read ahead");
        }
    }
    let questions = speakers.iter().map(|s| s.probability(agent, said));
    for answer in rt.block_on(join_all(questions)) {
        answer.expect("read");
    }
    let cpu = (process_cpu() - c).as_secs_f64() * 1e3 / sessions as f64;
    let wall = w.elapsed().as_secs_f64() * 1e3;
    println!(
        "words, {sessions} sessions speaking at once: {cpu:.1} ms CPU per turn, {wall:.0} ms wall for all"
    );
}

criterion_group!(benches, turn);
criterion_main!(benches);
