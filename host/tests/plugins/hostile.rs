//! Hostile plug-ins: the host survives each, the session keeps going with the built-in decision,
//! and the fault is counted.

use crate::common::{metric, settings, slot, wasm};
use voice_host::behaviour::defaults::{BargeInRules, BuiltinBehaviours, DefaultBargeIn};
use voice_host::behaviour::{BargeInDecision, BargeInEvent, BehaviourSource};
use voice_host::plugins::{check_component, PluginError, PluginRegistry, PluginSettings, Slot};

/// A barge-in event. The hostile plug-ins, when they behave, answer `pause`, which the built-in
/// rules never do, so every answer tells who made it.
fn event(words: &str) -> BargeInEvent {
    BargeInEvent {
        interim_text: words.into(),
        word_count: words.split_whitespace().count() as u32,
        agent_spoken_ms: 10,
        ..Default::default()
    }
}

/// What the built-in rules answer.
fn builtin(words: &str) -> BargeInDecision {
    DefaultBargeIn::decide_with(&BargeInRules::default(), &event(words))
}

fn registry(krate: &str, quarantine_sessions: u32) -> std::sync::Arc<PluginRegistry> {
    PluginRegistry::start(
        PluginSettings {
            barge_in: slot(krate, &[]),
            quarantine_sessions,
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .expect("hostile plug-ins behave during the self-check")
}

fn survives(krate: &str, kind: &str) {
    let reg = registry(krate, 100);
    let mut session = reg.for_session("s1");
    let mut bystander = reg.for_session("s2");
    assert_eq!(
        session.barge_in.decide(&event("hello")),
        BargeInDecision::Pause,
        "plug-in answers"
    );
    assert_eq!(
        session.barge_in.decide(&event("boom")),
        builtin("boom"),
        "{krate}: the faulting call gets the built-in decision"
    );
    assert_eq!(
        session.barge_in.decide(&event("hello again")),
        BargeInDecision::Pause,
        "{krate}: the instance was replaced and the plug-in answers again"
    );
    assert_eq!(
        bystander.barge_in.decide(&event("hi")),
        BargeInDecision::Pause
    );
    let text = reg.prometheus();
    assert_eq!(
        metric(
            &text,
            &format!("voice_plugin_faults_total{{slot=\"barge_in\",kind=\"{kind}\"}}")
        ),
        1,
        "{text}"
    );
    assert_eq!(
        metric(&text, "voice_plugin_fallbacks_total{slot=\"barge_in\"}"),
        1
    );
    assert_eq!(
        metric(&text, "voice_plugin_calls_total{slot=\"barge_in\"}"),
        4
    );
    assert_eq!(reg.status()[2].faults, 1);
    assert!(reg.quarantined().is_empty());
}

#[test]
fn endless_loop_hits_the_deadline() {
    survives("test-hostile-loop", "deadline");
}

#[test]
fn unbounded_allocation_hits_the_memory_cap() {
    survives("test-hostile-alloc", "memory");
}

#[test]
fn trap_is_contained() {
    survives("test-hostile-trap", "trap");
}

#[test]
fn faults_in_several_sessions_quarantine_and_a_reload_lifts_it() {
    let reg = registry("test-hostile-trap", 3);
    let mut s = reg.for_session("s");
    assert_eq!(s.barge_in.decide(&event("boom")), builtin("boom"));
    for other in ["t", "u"] {
        let mut o = reg.for_session(other);
        assert_eq!(o.barge_in.decide(&event("boom")), builtin("boom"));
    }
    let reasons = reg.quarantined();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("barge_in") && reasons[0].contains("test_hostile_trap"),
        "{reasons:?}"
    );
    // Quarantined: the built-in rules answer even calls the plug-in would handle.
    assert_eq!(s.barge_in.decide(&event("hello")), builtin("hello"));
    let mut fresh = reg.for_session("new");
    assert_eq!(fresh.barge_in.decide(&event("hello")), builtin("hello"));
    let text = reg.prometheus();
    assert_eq!(
        metric(&text, "voice_plugin_quarantines_total{slot=\"barge_in\"}"),
        1
    );
    assert_eq!(
        metric(&text, "voice_plugin_quarantined{slot=\"barge_in\"}"),
        1
    );

    // A reload gives the version a fresh start; sessions pick it up at their next turn.
    reg.reload().expect("reload");
    assert!(reg.quarantined().is_empty());
    reg.refresh("s", &mut s);
    assert_eq!(s.barge_in.decide(&event("hello")), BargeInDecision::Pause);
}

#[test]
fn wrong_world_is_refused() {
    let err = PluginRegistry::start(
        PluginSettings {
            barge_in: slot("test-hostile-wrong-world", &[]),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .err()
    .expect("a component with the wrong types cannot serve the slot");
    assert!(
        matches!(
            err,
            PluginError::Invalid {
                slot: Slot::BargeIn,
                ..
            }
        ),
        "{err}"
    );

    let err = check_component(&wasm("test-hostile-wrong-world")).expect_err("fits no world");
    assert!(
        err.to_string().contains("fits no voice:policy world"),
        "{err}"
    );
}

#[test]
fn garbage_file_is_refused() {
    let dir = crate::common::TempDir::new("garbage");
    let path = dir.path().join("half.wasm");
    let full = std::fs::read(wasm("barge-in-seed")).unwrap();
    std::fs::write(&path, &full[..full.len() / 2]).unwrap();
    let err = PluginRegistry::start(
        PluginSettings {
            barge_in: voice_host::plugins::SlotSettings::component(&path, vec![]),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .err()
    .expect("a half-written component is never loaded");
    assert!(matches!(err, PluginError::Invalid { .. }), "{err}");
}

#[test]
fn full_pool_falls_back_to_builtin_and_recovers_when_a_session_ends() {
    let reg = PluginRegistry::start(
        PluginSettings {
            barge_in: slot("test-hostile-trap", &[]),
            max_sessions: 1,
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .unwrap();
    let mut sessions = Vec::new();
    let starved = loop {
        assert!(sessions.len() < 1000, "the pool is bounded");
        let mut s = reg.for_session("s");
        if s.barge_in.decide(&event("hello")) != BargeInDecision::Pause {
            break s;
        }
        sessions.push(s);
    };
    let mut starved = starved;
    let text = reg.prometheus();
    assert!(
        metric(
            &text,
            "voice_plugin_pool_exhausted_total{slot=\"barge_in\"}"
        ) >= 1
    );
    assert_eq!(
        metric(
            &text,
            "voice_plugin_faults_total{slot=\"barge_in\",kind=\"instantiate\"}"
        ),
        0,
        "a full pool is not the plug-in's fault"
    );
    // A session ends: its instance goes back to the pool and the starved session gets one.
    sessions.pop();
    assert_eq!(
        starved.barge_in.decide(&event("hello")),
        BargeInDecision::Pause
    );
}
