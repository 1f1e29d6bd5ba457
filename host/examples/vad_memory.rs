//! Resident memory of Silero VAD: what the shared model costs once, what each session's stream
//! costs on top (`cargo run --release -p voice-host --example vad_memory [SESSIONS]`), and what
//! one more ONNX Runtime session of the model would cost (the price of a session per stream).

use voice_host::audio::{SileroVad, VadConfig, VadEngine, VoiceGate};
use voice_host::providers::local::LocalModels;

/// Resident set size of this process in KiB (Linux `/proc/self/statm`).
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

fn main() {
    let sessions: usize = std::env::args()
        .nth(1)
        .map_or(1000, |n| n.parse().expect("SESSIONS"));
    let dir = std::env::var_os("MODELS_DIR").map_or_else(LocalModels::default_dir, Into::into);
    let before = rss_kib();
    let model = SileroVad::load_sessions(&dir, 1).expect("Silero VAD installed");
    let loaded = rss_kib();
    let engine = VadEngine::Silero(model);
    // Each stream hears a second of a voice-like buzz, so every window has run once or more.
    let buzz: Vec<i16> = (0..16_000)
        .map(|i| {
            let t = i as f32 / 16_000.0;
            ((std::f32::consts::TAU * 140.0 * t).sin() * 6_000.0) as i16
        })
        .collect();
    let start = rss_kib();
    let mut gates = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let mut gate = VoiceGate::with_engine(VadConfig::default(), &engine).unwrap();
        for (i, frame) in buzz.chunks_exact(320).enumerate() {
            gate.process(frame, i as u64 * 20);
        }
        gates.push(gate);
    }
    let end = rss_kib();
    // Last, so that memory it frees is not reused by the streams above.
    let more = SileroVad::load_sessions(&dir, 8).expect("Silero VAD installed");
    let eight = rss_kib();
    std::hint::black_box(more);
    println!("runtime + model + 1 session: {} KiB", loaded - before);
    println!("one more ONNX Runtime session: {} KiB", (eight - end) / 8);
    println!(
        "{sessions} streams: {} KiB, {:.1} KiB each",
        end - start,
        (end - start) as f64 / sessions as f64
    );
    std::hint::black_box(gates);
}
