//! Hot swap under load at the registry level: sessions keep calling while the component file is
//! replaced with a new version and then with a broken one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::common::{install, settings, wasm, TempDir};
use voice_host::behaviour::defaults::BuiltinBehaviours;
use voice_host::behaviour::{BargeInDecision, BargeInEvent, BehaviourSource};
use voice_host::plugins::{PluginRegistry, PluginSettings, SlotSettings};

/// "stop" after the agent spoke long enough: the seed rules wait for more words, the smart
/// policy interrupts. The answer tells which version made it.
fn stop_event() -> BargeInEvent {
    BargeInEvent {
        interim_text: "stop".into(),
        word_count: 1,
        user_speech_ms: 200,
        agent_spoken_ms: 5000,
        ..Default::default()
    }
}

/// Waits for `cond`, polling; the bound only keeps a broken build from hanging the suite.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "gave up waiting: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn swap_under_load_switches_at_turn_boundaries_and_keeps_the_old_version_on_failure() {
    let dir = TempDir::new("hot-swap");
    let live = dir.path().join("policy.wasm");
    install(&wasm("barge-in-seed"), &live);
    let reg = PluginRegistry::start(
        PluginSettings {
            barge_in: SlotSettings::component(&live, vec![]),
            watch: true,
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .unwrap();
    let seed_version = reg.status()[2].version.clone().unwrap();

    const SESSIONS: usize = 6;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(Barrier::new(SESSIONS + 1));
    let workers: Vec<_> = (0..SESSIONS)
        .map(|i| {
            let (reg, stop, started) = (reg.clone(), stop.clone(), started.clone());
            std::thread::spawn(move || {
                let id = format!("session-{i}");
                let mut b = reg.for_session(&id);
                let mut turns: Vec<Vec<BargeInDecision>> = vec![vec![]];
                started.wait();
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..20 {
                        turns
                            .last_mut()
                            .unwrap()
                            .push(b.barge_in.decide(&stop_event()));
                    }
                    // Turn boundary.
                    reg.refresh(&id, &mut b);
                    turns.push(vec![]);
                }
                turns
            })
        })
        .collect();
    started.wait();

    // New version (write-then-rename): the watcher loads it.
    install(&wasm("barge-in-smart"), &live);
    eventually("the new version is loaded", || {
        reg.status()[2].version.as_deref() != Some(seed_version.as_str())
    });
    let smart_version = reg.status()[2].version.clone().unwrap();
    let mut newcomer = reg.for_session("newcomer");
    assert_eq!(
        newcomer.barge_in.decide(&stop_event()),
        BargeInDecision::Interrupt,
        "new sessions get it at once"
    );

    // A broken file: rejected, the old version stays and the reason is reported.
    let broken = dir.path().join("broken.wasm");
    std::fs::write(&broken, b"\0asm\x0d\0\x01\0 truncated").unwrap();
    install(&broken, &live);
    eventually("the broken version is rejected", || {
        reg.status()[2].last_error.is_some()
    });
    assert_eq!(
        reg.status()[2].version.as_deref(),
        Some(smart_version.as_str())
    );
    assert!(
        reg.reload().is_err(),
        "an explicit reload reports the failure too"
    );
    assert_eq!(
        newcomer.barge_in.decide(&stop_event()),
        BargeInDecision::Interrupt
    );

    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let turns = worker.join().expect("no session panicked");
        let all: Vec<BargeInDecision> = turns.iter().flatten().copied().collect();
        assert_eq!(
            all.first(),
            Some(&BargeInDecision::Wait),
            "started on the seed version"
        );
        assert_eq!(
            all.last(),
            Some(&BargeInDecision::Interrupt),
            "ended on the new version"
        );
        for turn in &turns {
            assert!(
                turn.windows(2).all(|w| w[0] == w[1]),
                "a version never changes inside a turn: {turn:?}"
            );
        }
        let switches = all.windows(2).filter(|w| w[0] != w[1]).count();
        assert_eq!(switches, 1, "exactly one switch, seed to smart");
    }
    let text = reg.prometheus();
    assert_eq!(
        crate::common::metric(&text, "voice_plugin_reloads_total{slot=\"barge_in\"}"),
        1
    );
    assert!(
        crate::common::metric(
            &text,
            "voice_plugin_reloads_failed_total{slot=\"barge_in\"}"
        ) >= 2
    );
    assert_eq!(
        crate::common::metric(
            &text,
            "voice_plugin_faults_total{slot=\"barge_in\",kind=\"trap\"}"
        ),
        0
    );
}
