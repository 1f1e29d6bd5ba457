//! Plug-in faults stay local: one session's faults never switch the plug-in off for the others,
//! faults from several sessions quarantine a version only until its backoff passes, and the
//! CPU-time deadline never cuts a healthy call on a busy machine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{metric, settings, slot};
use voice_host::behaviour::defaults::{BargeInRules, BuiltinBehaviours, DefaultBargeIn};
use voice_host::behaviour::{BargeInDecision, BargeInEvent, BehaviourSource};
use voice_host::plugins::{PluginRegistry, PluginSettings};

/// A barge-in event; the test plug-ins answer `pause` (never the built-in rules' answer) unless
/// the words say "boom".
fn event(words: &str) -> BargeInEvent {
    BargeInEvent {
        interim_text: words.into(),
        word_count: words.split_whitespace().count() as u32,
        agent_spoken_ms: 10,
        ..Default::default()
    }
}

fn builtin(words: &str) -> BargeInDecision {
    DefaultBargeIn::decide_with(&BargeInRules::default(), &event(words))
}

fn registry(krate: &str, tweak: impl FnOnce(&mut PluginSettings)) -> Arc<PluginRegistry> {
    let mut s = PluginSettings {
        barge_in: slot(krate, &[]),
        ..settings()
    };
    tweak(&mut s);
    PluginRegistry::start(s, BuiltinBehaviours::default()).expect("plug-in loads")
}

fn series(reg: &PluginRegistry, name: &str) -> u64 {
    metric(&reg.prometheus(), name)
}

#[test]
fn twenty_faults_from_one_session_leave_every_other_session_on_the_plugin() {
    let reg = registry("test-hostile-loop", |s| {
        // Short, so the endless loop costs little; healthy calls stay far below it.
        s.call_deadline_ms = 20;
        s.quarantine_sessions = 3;
        s.session_fault_limit = 5;
    });
    let mut others: Vec<_> = (0..4)
        .map(|i| reg.for_session(&format!("other-{i}")))
        .collect();
    let mut hostile = reg.for_session("hostile");
    for _ in 0..20 {
        assert_eq!(hostile.barge_in.decide(&event("boom")), builtin("boom"));
        for o in &mut others {
            assert_eq!(
                o.barge_in.decide(&event("hello")),
                BargeInDecision::Pause,
                "the plug-in, not the fallback, answers the other sessions"
            );
        }
    }
    let mut late = reg.for_session("late");
    assert_eq!(late.barge_in.decide(&event("hi")), BargeInDecision::Pause);
    assert!(reg.quarantined().is_empty(), "{:?}", reg.quarantined());
    assert!(!reg.status()[2].quarantined);
    // The hostile session faulted five times, then kept the built-in rules.
    assert_eq!(
        series(
            &reg,
            "voice_plugin_faults_total{slot=\"barge_in\",kind=\"deadline\"}"
        ),
        5
    );
    assert_eq!(
        series(
            &reg,
            "voice_plugin_sessions_benched_total{slot=\"barge_in\"}"
        ),
        1
    );
    assert_eq!(
        series(&reg, "voice_plugin_fallbacks_total{slot=\"barge_in\"}"),
        20
    );
    assert_eq!(series(&reg, "voice_plugin_degraded{slot=\"barge_in\"}"), 0);
    assert_eq!(
        series(&reg, "voice_plugin_quarantines_total{slot=\"barge_in\"}"),
        0
    );
}

#[test]
fn three_faulting_sessions_quarantine_and_the_version_serves_again_by_itself() {
    let reg = registry("test-hostile-trap", |s| {
        s.quarantine_sessions = 3;
        s.quarantine_backoff_ms = 300;
    });
    let mut first = reg.for_session("a");
    assert_eq!(first.barge_in.decide(&event("boom")), builtin("boom"));
    let mut second = reg.for_session("b");
    assert_eq!(second.barge_in.decide(&event("boom")), builtin("boom"));
    assert!(reg.quarantined().is_empty(), "two sessions are not enough");
    assert_eq!(
        first.barge_in.decide(&event("hello")),
        BargeInDecision::Pause
    );

    let mut third = reg.for_session("c");
    assert_eq!(third.barge_in.decide(&event("boom")), builtin("boom"));
    let reasons = reg.quarantined();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("barge_in"), "{reasons:?}");
    assert!(reg.status()[2].retry_in_ms.is_some());
    assert_eq!(series(&reg, "voice_plugin_degraded{slot=\"barge_in\"}"), 1);
    let mut fresh = reg.for_session("d");
    assert_eq!(
        fresh.barge_in.decide(&event("hello")),
        builtin("hello"),
        "quarantined: the built-in rules answer"
    );

    // No reload: after the backoff the version is given another chance by itself.
    let mut waited = 0;
    while !reg.quarantined().is_empty() {
        waited += 1;
        assert!(waited < 3000, "the quarantine never ended");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        fresh.barge_in.decide(&event("hello")),
        BargeInDecision::Pause
    );
    assert_eq!(
        first.barge_in.decide(&event("hello")),
        BargeInDecision::Pause
    );
    assert_eq!(series(&reg, "voice_plugin_degraded{slot=\"barge_in\"}"), 0);
    assert_eq!(
        series(&reg, "voice_plugin_quarantines_total{slot=\"barge_in\"}"),
        1
    );
    assert_eq!(reg.status()[2].quarantines, 1);

    // Failing everywhere again: quarantined again, for twice as long.
    for id in ["e", "f", "g"] {
        let mut s = reg.for_session(id);
        assert_eq!(s.barge_in.decide(&event("boom")), builtin("boom"));
    }
    let status = &reg.status()[2];
    assert!(status.quarantined);
    assert_eq!(status.quarantines, 2);
    assert_eq!(
        series(&reg, "voice_plugin_quarantines_total{slot=\"barge_in\"}"),
        2
    );
}

/// Spins `2 x cores` threads until the returned flag is set.
fn cpu_hog() -> (Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = (0..2 * cores)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            })
        })
        .collect();
    (stop, threads)
}

/// The smallest wall-clock backstop of a call (docs/plugins.md).
const WALL_BACKSTOP: Duration = Duration::from_millis(100);

/// A healthy call of the loop plug-in that uses some CPU.
const WORK: &str = "work 300000";

#[test]
fn healthy_plugin_under_a_cpu_hog_has_no_deadline_faults() {
    // The production deadline, not the tests' generous one.
    let reg = registry("test-hostile-loop", |s| {
        s.call_deadline_ms = PluginSettings::default().call_deadline_ms;
    });
    let mut session = reg.for_session("busy");
    let (stop, hogs) = cpu_hog();
    let mut by_plugin = 0;
    let mut backstopped = 0;
    // Each call spins a few hundred microseconds of CPU, well inside the 5 ms budget but long
    // enough that the busy machine preempts many of them midway.
    for _ in 0..10_000 {
        let started = Instant::now();
        if session.barge_in.decide(&event(WORK)) == BargeInDecision::Pause {
            by_plugin += 1;
        } else {
            // Only the wall-clock backstop (docs/plugins.md: ten times the deadline, at least
            // 100 ms) may end a healthy call: one starved of a core that long. The CPU deadline
            // never may, and would cut it far sooner.
            let took = started.elapsed();
            assert!(
                took >= WALL_BACKSTOP,
                "a healthy call was cut after {took:?}, before the wall-clock backstop"
            );
            backstopped += 1;
        }
    }
    // An endless loop is still stopped, busy machine or not.
    let looped = session.barge_in.decide(&event("boom"));
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    assert_eq!(looped, builtin("boom"));
    let faults = series(
        &reg,
        "voice_plugin_faults_total{slot=\"barge_in\",kind=\"deadline\"}",
    );
    assert_eq!(
        faults,
        1 + backstopped,
        "only the endless loop and starved calls hit the deadline: {by_plugin} of 10000 answered by the plug-in"
    );
    assert!(
        backstopped <= 10,
        "{backstopped} of 10000 healthy calls starved past the backstop"
    );
    assert_eq!(
        series(&reg, "voice_plugin_calls_total{slot=\"barge_in\"}"),
        10_001
    );
}
