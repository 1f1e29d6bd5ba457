//! Plug-in runtime benchmarks: per-call latency of each slot (with p50/p99 printed from
//! individually timed calls), per-session instantiation of all three slots, and loading a
//! component from the precompiled cache versus compiling it; the same for the Python intent
//! analyzer (componentize-py) and the JavaScript one (componentize-js), plus the memory each
//! session's instance of them keeps.
//!
//! Run: `cargo bench -p voice-host --bench plugins`

#[path = "../tests/plugins/common/mod.rs"]
mod plugins_common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use plugins_common::{js_wasm, python_wasm, slot, TempDir};
use voice_host::behaviour::defaults::BuiltinBehaviours;
use voice_host::behaviour::{
    BargeInEvent, BehaviourSource, ChatMessage, IntentInput, PromptInput, Role,
};
use voice_host::plugins::{PluginRegistry, PluginSettings, SlotSettings};

/// Default limits except the call deadline: the deadline does not change what a call costs, and
/// a generous one keeps a preempted call on a busy machine from turning into a fallback (which
/// would then be measured instead of the plug-in).
fn bench_settings() -> PluginSettings {
    PluginSettings {
        max_sessions: 64,
        cache_dir: None,
        watch: false,
        call_deadline_ms: 100,
        ..PluginSettings::default()
    }
}

/// Panics when any call was answered by a built-in fallback: the figures would be wrong.
fn assert_no_fallbacks(reg: &PluginRegistry) {
    let text = reg.prometheus();
    for slot in ["intent", "prompt", "barge_in"] {
        let series = format!("voice_plugin_fallbacks_total{{slot=\"{slot}\"}}");
        assert_eq!(plugins_common::metric(&text, &series), 0, "{text}");
    }
}

fn all_three() -> PluginSettings {
    PluginSettings {
        intent: slot("intent-keywords", &[]),
        prompt: slot("prompt-persona", &[]),
        barge_in: slot("barge-in-smart", &[]),
        ..bench_settings()
    }
}

fn barge_event() -> BargeInEvent {
    BargeInEvent {
        interim_text: "no I meant".into(),
        word_count: 3,
        user_speech_ms: 700,
        agent_spoken_ms: 4200,
        spoken_text: "Sure. The weather in Paris today is".into(),
        remaining_text: "sunny with a high of twenty degrees.".into(),
        protected_playing: false,
        turn: 1,
    }
}

fn history() -> Vec<ChatMessage> {
    (0..6)
        .map(|i| {
            let role = if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            ChatMessage::new(role, format!("message number {i} of a short conversation"))
        })
        .collect()
}

/// Times `n` calls one by one and prints p50/p99/max.
fn percentiles(name: &str, n: usize, mut call: impl FnMut()) {
    for _ in 0..1000 {
        call();
    }
    let mut samples: Vec<Duration> = (0..n)
        .map(|_| {
            let start = Instant::now();
            call();
            start.elapsed()
        })
        .collect();
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "{name}: p50 {:.2} us, p99 {:.2} us, max {:.2} us ({n} calls)",
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        samples[samples.len() - 1].as_secs_f64() * 1e6
    );
}

fn per_call(c: &mut Criterion) {
    let reg = PluginRegistry::start(all_three(), BuiltinBehaviours::default()).expect("starts");
    let mut b = reg.for_session("bench");
    let event = barge_event();
    let intent_input = IntentInput {
        transcript: "what's the weather in paris tomorrow".into(),
        turn: 4,
        history: history(),
    };
    let prompt_input = PromptInput {
        system_prompt: "You are a helpful voice agent.".into(),
        history: history(),
        user_turn: "what's the weather in paris tomorrow".into(),
        turn: 4,
        intent: b.intent.analyze(&intent_input),
    };

    let mut group = c.benchmark_group("plugin_call");
    group.bench_function("barge_in_smart_decide", |bench| {
        bench.iter(|| black_box(b.barge_in.decide(black_box(&event))))
    });
    group.bench_function("intent_keywords_analyze", |bench| {
        bench.iter(|| black_box(b.intent.analyze(black_box(&intent_input))))
    });
    group.bench_function("prompt_persona_shape", |bench| {
        bench.iter(|| black_box(b.prompt.shape(black_box(&prompt_input))))
    });
    group.finish();

    percentiles("barge_in_smart_decide", 100_000, || {
        black_box(b.barge_in.decide(&event));
    });
    percentiles("intent_keywords_analyze", 20_000, || {
        black_box(b.intent.analyze(&intent_input));
    });
    percentiles("prompt_persona_shape", 20_000, || {
        black_box(b.prompt.shape(&prompt_input));
    });
    let seed = PluginRegistry::start(
        PluginSettings {
            barge_in: slot("barge-in-seed", &[]),
            ..bench_settings()
        },
        BuiltinBehaviours::default(),
    )
    .expect("starts");
    let mut s = seed.for_session("bench");
    percentiles("barge_in_seed_decide", 100_000, || {
        black_box(s.barge_in.decide(&event));
    });
    assert_no_fallbacks(&reg);
    assert_no_fallbacks(&seed);
}

fn per_session(c: &mut Criterion) {
    let reg = PluginRegistry::start(all_three(), BuiltinBehaviours::default()).expect("starts");
    c.bench_function("session_instantiate_all_three", |bench| {
        bench.iter(|| black_box(reg.for_session("bench")))
    });
    percentiles("session_instantiate_all_three", 5_000, || {
        black_box(reg.for_session("bench"));
    });
    let text = reg.prometheus();
    for slot in ["intent", "prompt", "barge_in"] {
        let fallbacks = format!("voice_plugin_pool_exhausted_total{{slot=\"{slot}\"}}");
        assert_eq!(plugins_common::metric(&text, &fallbacks), 0, "{text}");
    }
    assert!(reg.quarantined().is_empty(), "{:?}", reg.quarantined());
}

fn load(c: &mut Criterion) {
    let cache = TempDir::new("bench-cache");
    let path = plugins_common::wasm("barge-in-smart");
    let settings = |cache_dir| PluginSettings {
        barge_in: SlotSettings::component(&path, vec![]),
        cache_dir,
        max_sessions: 4,
        ..bench_settings()
    };
    // Warm the cache once.
    drop(
        PluginRegistry::start(
            settings(Some(cache.path().to_path_buf())),
            BuiltinBehaviours::default(),
        )
        .unwrap(),
    );
    let mut group = c.benchmark_group("plugin_load");
    group.sample_size(10);
    group.bench_function("start_from_precompiled_cache", |bench| {
        bench.iter(|| {
            black_box(
                PluginRegistry::start(
                    settings(Some(cache.path().to_path_buf())),
                    BuiltinBehaviours::default(),
                )
                .unwrap(),
            )
        })
    });
    group.bench_function("start_compiling", |bench| {
        bench.iter(|| {
            black_box(PluginRegistry::start(settings(None), BuiltinBehaviours::default()).unwrap())
        })
    });
    group.finish();
}

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The intent analyzer of an interpreted language, `prefix` naming its figures: load (compiling
/// versus from the precompiled cache), per-call p50/p99, per-session instantiation, and the
/// memory each session's instance keeps. `criterion`: also a criterion run of the call, whose
/// iteration count is open-ended (one instance makes tens of thousands of calls).
fn interpreted(
    c: &mut Criterion,
    prefix: &str,
    component: std::path::PathBuf,
    criterion: bool,
) -> std::sync::Arc<PluginRegistry> {
    let cache = TempDir::new(&format!("bench-{prefix}-cache"));
    let settings = |cache_dir| PluginSettings {
        intent: SlotSettings::component(&component, vec![]),
        cache_dir,
        max_sessions: 128,
        ..bench_settings()
    };
    let t0 = Instant::now();
    let reg = PluginRegistry::start(
        settings(Some(cache.path().to_path_buf())),
        BuiltinBehaviours::default(),
    )
    .expect("starts");
    let compiling = t0.elapsed();
    let t0 = Instant::now();
    drop(
        PluginRegistry::start(
            settings(Some(cache.path().to_path_buf())),
            BuiltinBehaviours::default(),
        )
        .expect("starts"),
    );
    println!(
        "{prefix}_intent_load: compiling {:.1} s, from the precompiled cache {:.1} ms",
        compiling.as_secs_f64(),
        t0.elapsed().as_secs_f64() * 1000.0
    );

    let mut b = reg.for_session("bench");
    let input = IntentInput {
        transcript: "what's the weather in paris tomorrow".into(),
        turn: 4,
        history: history(),
    };
    assert!(b.intent.analyze(&input).is_some());
    if criterion {
        c.bench_function(&format!("{prefix}_intent_analyze"), |bench| {
            bench.iter(|| black_box(b.intent.analyze(black_box(&input))))
        });
    }
    percentiles(&format!("{prefix}_intent_analyze"), 5_000, || {
        black_box(b.intent.analyze(&input));
    });
    percentiles(&format!("{prefix}_session_instantiate"), 500, || {
        black_box(reg.for_session("bench"));
    });

    // What a session's instance keeps: instantiate and call 100, compare RSS.
    let before = rss_kib();
    let sessions: Vec<_> = (0..100)
        .map(|_| {
            let mut s = reg.for_session("bench");
            black_box(s.intent.analyze(&input));
            s
        })
        .collect();
    let after = rss_kib();
    println!(
        "{prefix}_session_memory: {} KiB RSS per session (100 sessions, one call each)",
        after.saturating_sub(before) / 100
    );
    drop(sessions);
    assert_no_fallbacks(&reg);
    reg
}

/// Calls a fresh instance of `reg`'s intent plug-in answers before it outgrows the memory cap
/// and faults (the host then replaces it), up to `limit` calls.
fn calls_until_memory_fault(prefix: &str, reg: &PluginRegistry, limit: u32) {
    let mut b = reg.for_session("bench");
    let input = IntentInput {
        transcript: "what's the weather in paris tomorrow".into(),
        turn: 4,
        history: history(),
    };
    let series = "voice_plugin_faults_total{slot=\"intent\",kind=\"memory\"}";
    let before = plugins_common::metric(&reg.prometheus(), series);
    let calls = (1..=limit)
        .find(|_| {
            black_box(b.intent.analyze(&input));
            plugins_common::metric(&reg.prometheus(), series) > before
        })
        .map_or(format!("none in {limit}"), |n| (n - 1).to_string());
    let limit_mib = bench_settings().memory_limit_bytes / (1024 * 1024);
    println!("{prefix}_calls_until_memory_fault: {calls} ({limit_mib} MiB cap, one instance)");
}

/// `plugins/python/intent-regex-py` (componentize-py, CPython).
fn python(c: &mut Criterion) {
    interpreted(c, "python", python_wasm("intent-regex-py"), true);
}

/// `plugins/js/intent-keywords-js` (componentize-js, SpiderMonkey); the same rules as the Rust
/// `intent-keywords` of `per_call`, so the two call figures compare directly. Its instances grow
/// by a few hundred bytes a call (the componentize-js runtime; docs/plugins.md), so the
/// open-ended criterion run would end in a memory fault; the growth is measured instead.
fn js(c: &mut Criterion) {
    let reg = interpreted(c, "js", js_wasm("intent-keywords-js"), false);
    calls_until_memory_fault("js", &reg, 100_000);
}

/// What a shadow version costs the session: the live barge-in call alone, and with a shadow
/// (`barge-in-seed`) watching, in one run so the two compare. The session only hands the input
/// and decision to the shadow's queue; the shadow answers on its own thread, and what it could
/// not keep up with is dropped and counted (printed).
fn shadow(c: &mut Criterion) {
    let live = PluginRegistry::start(
        PluginSettings {
            barge_in: slot("barge-in-smart", &[]),
            ..bench_settings()
        },
        BuiltinBehaviours::default(),
    )
    .expect("starts");
    let shadowed = PluginRegistry::start(
        PluginSettings {
            barge_in: SlotSettings {
                shadow: Some(plugins_common::wasm("barge-in-seed")),
                ..slot("barge-in-smart", &[])
            },
            ..bench_settings()
        },
        BuiltinBehaviours::default(),
    )
    .expect("starts");
    let event = barge_event();
    let mut alone = live.for_session("bench");
    let mut watched = shadowed.for_session("bench");
    let mut group = c.benchmark_group("shadow");
    group.bench_function("barge_in_decide_alone", |bench| {
        bench.iter(|| black_box(alone.decide(black_box(&event))))
    });
    group.bench_function("barge_in_decide_with_shadow", |bench| {
        bench.iter(|| black_box(watched.decide(black_box(&event))))
    });
    group.finish();
    percentiles("barge_in_decide_alone", 100_000, || {
        black_box(alone.decide(&event));
    });
    percentiles("barge_in_decide_with_shadow", 100_000, || {
        black_box(watched.decide(&event));
    });
    // Paced (a decision every 50 us, still far more than any barge-in sees), the shadow keeps
    // up but for scheduling hiccups: the count shows how many.
    let text = shadowed.prometheus();
    let series =
        |name: &str| plugins_common::metric(&text, &format!("{name}{{slot=\"barge_in\"}}"));
    println!(
        "shadow, back to back: {} compared, {} dropped (queue full)",
        series("voice_plugin_shadow_calls_total"),
        series("voice_plugin_shadow_dropped_total")
    );
    let before = series("voice_plugin_shadow_dropped_total");
    for _ in 0..2_000 {
        black_box(watched.decide(&event));
        std::thread::sleep(Duration::from_micros(50));
    }
    let text = shadowed.prometheus();
    let dropped = plugins_common::metric(
        &text,
        "voice_plugin_shadow_dropped_total{slot=\"barge_in\"}",
    );
    println!(
        "shadow, paced 1 per 50 us: {} of 2000 dropped",
        dropped - before
    );
    assert_no_fallbacks(&live);
    assert_no_fallbacks(&shadowed);
}

criterion_group!(benches, per_call, per_session, load, shadow, python, js);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
