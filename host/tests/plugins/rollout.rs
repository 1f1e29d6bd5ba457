//! Shadow and canary versions through the registry, with real components: a shadow is counted
//! and never changes a decision; a canary serves its share of new sessions, is rolled back by
//! itself when it faults, and can be promoted or aborted.
//!
//! The live version is `barge-in-seed` (the built-in rules, which never answer `pause`); the
//! candidate is `test-hostile-trap`, which answers `pause` and traps on "boom". So every answer
//! tells which version gave it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{install, metric, settings, slot, wasm, TempDir};
use voice_host::behaviour::defaults::{BargeInRules, BuiltinBehaviours, DefaultBargeIn};
use voice_host::behaviour::{BargeInDecision, BargeInEvent, BehaviourSource, Behaviours};
use voice_host::plugins::{
    CanaryPolicy, CanarySettings, PluginRegistry, PluginSettings, Slot, SlotSettings, SlotStatus,
};

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

fn registry(tweak: impl FnOnce(&mut PluginSettings)) -> Arc<PluginRegistry> {
    let mut s = PluginSettings {
        barge_in: slot("barge-in-seed", &[]),
        ..settings()
    };
    tweak(&mut s);
    PluginRegistry::start(s, BuiltinBehaviours::default()).expect("registry starts")
}

fn canary(percent: u8, policy: CanaryPolicy) -> CanarySettings {
    CanarySettings {
        path: wasm("test-hostile-trap"),
        percent,
        policy,
    }
}

fn barge_in_status(reg: &PluginRegistry) -> SlotStatus {
    reg.status()
        .into_iter()
        .find(|s| s.slot == Slot::BargeIn)
        .expect("barge-in slot")
}

/// One turn boundary of a session, then a decision.
fn turn(reg: &PluginRegistry, id: &str, b: &mut Behaviours, words: &str) -> BargeInDecision {
    reg.refresh(id, b);
    b.decide(&event(words))
}

#[test]
fn a_canary_that_traps_is_rolled_back_by_itself_while_live_sessions_keep_the_live_version() {
    let reg = registry(|_| {});
    let mut live = reg.for_session("live-before");
    assert_eq!(live.decide(&event("hello")), builtin("hello"));

    reg.start_canary(Slot::BargeIn, &canary(100, CanaryPolicy::default()))
        .expect("canary loads");
    let status = barge_in_status(&reg);
    let running = status.canary.as_ref().expect("canary running");
    assert_eq!(running.percent, 100);
    assert_eq!(running.candidate.plugin, "test_hostile_trap");

    // The session that started on the live version keeps it across turns.
    assert_eq!(
        turn(&reg, "live-before", &mut live, "hello"),
        builtin("hello")
    );

    // New sessions take the canary; each traps once (the built-in answers that call). Three
    // faulting sessions quarantine the candidate, which rolls it back.
    let mut canaries: Vec<(String, Behaviours)> = (0..3)
        .map(|i| {
            let id = format!("canary-{i}");
            let b = reg.for_session(&id);
            (id, b)
        })
        .collect();
    for (_, b) in canaries.iter_mut() {
        assert_eq!(
            b.decide(&event("hello")),
            BargeInDecision::Pause,
            "canary answers"
        );
        assert_eq!(
            b.decide(&event("boom")),
            builtin("boom"),
            "fault falls back"
        );
    }
    let status = barge_in_status(&reg);
    assert!(status.canary.is_none(), "rolled back: {status:?}");
    let outcome = status.last_canary.expect("outcome recorded");
    assert_eq!(outcome.outcome, "rolled_back");
    let reason = outcome.reason.expect("reason");
    assert!(reason.contains("quarantined"), "{reason}");
    assert_eq!(outcome.usage.faults, 3);
    assert_eq!(
        metric(
            &reg.prometheus(),
            "voice_plugin_canary_rollbacks_total{slot=\"barge_in\"}"
        ),
        1
    );

    // The canary's sessions return to the live version at their next turn; new sessions and
    // the live session get the live version.
    for (id, b) in canaries.iter_mut() {
        assert_eq!(turn(&reg, id, b, "hello"), builtin("hello"), "{id}");
    }
    let mut after = reg.for_session("after");
    assert_eq!(after.decide(&event("hello")), builtin("hello"));
    assert_eq!(
        turn(&reg, "live-before", &mut live, "hello"),
        builtin("hello")
    );
    assert_eq!(
        barge_in_status(&reg).faults,
        0,
        "the live version never faulted"
    );
}

#[test]
fn a_canary_faulting_more_often_than_the_margin_is_rolled_back_before_any_quarantine() {
    let reg = registry(|s| s.quarantine_sessions = 100);
    reg.start_canary(
        Slot::BargeIn,
        &canary(
            100,
            CanaryPolicy {
                margin: 0.05,
                min_calls: 10,
            },
        ),
    )
    .unwrap();
    let mut b = reg.for_session("one");
    // 1 fault in 10 calls: 10 %, over the live version's 0 % by more than 5 points.
    for i in 0..9 {
        assert_eq!(
            turn(&reg, "one", &mut b, "hello"),
            BargeInDecision::Pause,
            "call {i}"
        );
    }
    assert!(
        barge_in_status(&reg).canary.is_some(),
        "9 calls: not judged"
    );
    assert_eq!(turn(&reg, "one", &mut b, "boom"), builtin("boom"));
    let status = barge_in_status(&reg);
    assert!(status.canary.is_none(), "{status:?}");
    let reason = status.last_canary.unwrap().reason.unwrap();
    assert!(
        reason.contains("fault rate 10.0% over 10 calls"),
        "{reason}"
    );
    assert_eq!(turn(&reg, "one", &mut b, "hello"), builtin("hello"));
}

#[test]
fn a_canary_serves_its_share_of_new_sessions_and_each_keeps_its_side() {
    let reg = registry(|_| {});
    reg.start_canary(Slot::BargeIn, &canary(50, CanaryPolicy::default()))
        .unwrap();
    let mut on_canary = 0;
    for i in 0..40 {
        let id = format!("s{i}");
        let mut b = reg.for_session(&id);
        let first = b.decide(&event("hello"));
        for _ in 0..3 {
            assert_eq!(
                turn(&reg, &id, &mut b, "hello"),
                first,
                "{id} stays on its side"
            );
        }
        on_canary += usize::from(first == BargeInDecision::Pause);
    }
    assert!(
        (8..=32).contains(&on_canary),
        "about half of 40 sessions: {on_canary}"
    );
    let usage = barge_in_status(&reg).canary.unwrap().candidate.usage;
    assert_eq!(usage.sessions, on_canary as u64);
    assert_eq!(usage.calls, on_canary as u64 * 4);
}

#[test]
fn promoting_makes_the_canary_live_for_everyone_and_aborting_sends_its_sessions_back() {
    let reg = registry(|_| {});
    let mut old = reg.for_session("old");
    reg.start_canary(Slot::BargeIn, &canary(100, CanaryPolicy::default()))
        .unwrap();
    let mut new = reg.for_session("new");
    assert_eq!(new.decide(&event("hello")), BargeInDecision::Pause);

    let promoted = reg.promote_canary(Slot::BargeIn).expect("promoted");
    assert_eq!(promoted.outcome, "promoted");
    let status = barge_in_status(&reg);
    assert_eq!(status.plugin.as_deref(), Some("test_hostile_trap"));
    assert!(status.canary.is_none());
    assert_eq!(turn(&reg, "old", &mut old, "hello"), BargeInDecision::Pause);
    assert_eq!(turn(&reg, "new", &mut new, "hello"), BargeInDecision::Pause);
    // A reload reads the promoted file now, so it keeps the promoted version.
    reg.reload_slot(Slot::BargeIn).unwrap();
    assert_eq!(
        barge_in_status(&reg).plugin.as_deref(),
        Some("test_hostile_trap")
    );
    assert!(
        reg.promote_canary(Slot::BargeIn).is_err(),
        "nothing left to promote"
    );

    // Abort: back to seed as a canary of the trap's live version, then abort it.
    reg.start_canary(
        Slot::BargeIn,
        &CanarySettings {
            path: wasm("barge-in-seed"),
            percent: 100,
            policy: CanaryPolicy::default(),
        },
    )
    .unwrap();
    let mut c = reg.for_session("c");
    assert_eq!(c.decide(&event("hello")), builtin("hello"));
    let aborted = reg.abort_canary(Slot::BargeIn).unwrap();
    assert_eq!(aborted.outcome, "aborted");
    assert_eq!(turn(&reg, "c", &mut c, "hello"), BargeInDecision::Pause);
    assert_eq!(
        barge_in_status(&reg).last_canary.unwrap().outcome,
        "aborted"
    );
}

/// A sample's value, 0 when the series is not there yet.
fn sample(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.trim().parse().ok()))
        .unwrap_or(0)
}

/// Barge-in calls the shadow has compared (all decision pairs).
fn compared(text: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with("voice_plugin_shadow_total{slot=\"barge_in\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Polls `/metrics` text until `done` holds (shadow threads run on their own).
fn wait_until(reg: &PluginRegistry, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = reg.prometheus();
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "not reached in 30 s:\n{text}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

const SHADOWED: &str = "voice_plugin_shadow_sessions{slot=\"barge_in\"}";

#[test]
fn a_shadow_is_compared_and_counted_and_never_changes_a_decision() {
    let plain = registry(|_| {});
    let shadowed = registry(|s| s.barge_in.shadow = Some(wasm("test-hostile-trap")));
    let words = ["hello", "boom", "wait a second please stop", "boom", "ok"];
    let mut a = plain.for_session("a");
    let mut b = shadowed.for_session("a");
    for w in words {
        assert_eq!(
            turn(&shadowed, "a", &mut b, w),
            turn(&plain, "a", &mut a, w),
            "{w:?}: the shadow changes nothing"
        );
    }
    let text = wait_until(&shadowed, |t| compared(t) == 5);
    let live = |w: &str| format!("{:?}", builtin(w)).to_lowercase();
    let pause_pairs: u64 = ["hello", "wait a second please stop", "ok"]
        .iter()
        .map(|w| live(w))
        .collect::<std::collections::BTreeSet<_>>()
        .iter()
        .map(|l| {
            sample(
                &text,
                &format!(
                    "voice_plugin_shadow_total{{slot=\"barge_in\",live=\"{l}\",candidate=\"pause\"}}"
                ),
            )
        })
        .sum();
    assert_eq!(pause_pairs, 3, "{text}");
    assert_eq!(
        metric(
            &text,
            &format!(
                "voice_plugin_shadow_total{{slot=\"barge_in\",live=\"{}\",candidate=\"fault\"}}",
                live("boom")
            )
        ),
        2,
        "{text}"
    );
    assert_eq!(
        metric(&text, "voice_plugin_shadow_faults_total{slot=\"barge_in\"}"),
        2
    );
    // The shadow's faults are its own: the slot's figures and quarantine are untouched.
    assert_eq!(
        metric(&text, "voice_plugin_calls_total{slot=\"barge_in\"}"),
        5
    );
    assert_eq!(
        metric(&text, "voice_plugin_fallbacks_total{slot=\"barge_in\"}"),
        0
    );
    let status = barge_in_status(&shadowed);
    let shadow = status.shadow.expect("shadow shown");
    assert_eq!(shadow.plugin, "test_hostile_trap");
    assert_eq!(shadow.usage.disagreed, 3);
    assert_eq!(shadow.usage.faults, 2);
    assert_eq!(status.faults, 0);

    // Stopping the shadow ends the session's shadow thread at its next turn.
    shadowed.set_shadow(Slot::BargeIn, None).unwrap();
    turn(&shadowed, "a", &mut b, "hello");
    let text = wait_until(&shadowed, |t| sample(t, SHADOWED) == 0);
    assert_eq!(
        metric(&text, "voice_plugin_shadow_calls_total{slot=\"barge_in\"}"),
        5,
        "no calls after the shadow stopped"
    );
}

#[test]
fn shadowed_sessions_are_capped_and_ended_sessions_free_their_place() {
    let reg = registry(|s| {
        s.barge_in.shadow = Some(wasm("barge-in-seed"));
        s.shadow_max_sessions = 2;
    });
    let first = reg.for_session("1");
    let _second = reg.for_session("2");
    let mut third = reg.for_session("3");
    let text = reg.prometheus();
    assert_eq!(metric(&text, SHADOWED), 2);
    assert_eq!(
        metric(
            &text,
            "voice_plugin_shadow_sessions_skipped_total{slot=\"barge_in\"}"
        ),
        1
    );
    assert_eq!(
        third.decide(&event("hello")),
        builtin("hello"),
        "unshadowed still served"
    );
    drop(first);
    wait_until(&reg, |t| sample(t, SHADOWED) == 1);
    // The third session is shadowed at its next turn, and agrees with itself (same version).
    turn(&reg, "3", &mut third, "hello");
    let text = wait_until(&reg, |t| compared(t) == 1);
    let l = format!("{:?}", builtin("hello")).to_lowercase();
    assert_eq!(
        metric(
            &text,
            &format!(
                "voice_plugin_shadow_total{{slot=\"barge_in\",live=\"{l}\",candidate=\"{l}\"}}"
            )
        ),
        1,
        "{text}"
    );
}

#[test]
fn after_a_promotion_the_file_watcher_follows_the_promoted_file() {
    let dir = TempDir::new("promote-watch");
    let live = dir.path().join("live.wasm");
    let candidate = dir.path().join("candidate.wasm");
    install(&wasm("barge-in-seed"), &live);
    install(&wasm("test-hostile-trap"), &candidate);
    let reg = PluginRegistry::start(
        PluginSettings {
            barge_in: SlotSettings::component(&live, vec![]),
            watch: true,
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .unwrap();
    reg.start_canary(
        Slot::BargeIn,
        &CanarySettings {
            path: candidate.clone(),
            percent: 100,
            policy: CanaryPolicy::default(),
        },
    )
    .unwrap();
    reg.promote_canary(Slot::BargeIn).unwrap();
    let promoted = barge_in_status(&reg).version.unwrap();
    // The old live file changing no longer swaps anything in...
    install(&wasm("barge-in-smart"), &live);
    // ...while a new version written over the promoted file is picked up.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(barge_in_status(&reg).version.unwrap(), promoted);
    install(&wasm("barge-in-seed"), &candidate);
    let deadline = Instant::now() + Duration::from_secs(30);
    while barge_in_status(&reg).version.as_deref() == Some(promoted.as_str()) {
        assert!(
            Instant::now() < deadline,
            "the promoted file's change was not picked up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = barge_in_status(&reg);
    assert_eq!(status.path.as_deref(), Some(candidate.as_path()));
    let mut b = reg.for_session("after");
    assert_eq!(b.decide(&event("hello")), builtin("hello"), "seed answers");
}

/// Which reference component a version is: the seed answers like the built-in rules, the trap
/// answers `pause` (it never sees "boom" here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Seed,
    Trap,
}

impl Kind {
    fn other(self) -> Kind {
        match self {
            Kind::Seed => Kind::Trap,
            Kind::Trap => Kind::Seed,
        }
    }
    fn crate_name(self) -> &'static str {
        match self {
            Kind::Seed => "barge-in-seed",
            Kind::Trap => "test-hostile-trap",
        }
    }
    fn answer(self) -> BargeInDecision {
        match self {
            Kind::Seed => builtin("hello"),
            Kind::Trap => BargeInDecision::Pause,
        }
    }
}

/// One step of the generated rollouts.
#[derive(Debug, Clone)]
enum Op {
    NewSession,
    Turn(usize),
    EndSession(usize),
    /// A canary of the other component at this share.
    Start(u8),
    Promote,
    Abort,
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        3 => Just(Op::NewSession),
        6 => (0usize..8).prop_map(Op::Turn),
        1 => (0usize..8).prop_map(Op::EndSession),
        2 => prop_oneof![Just(0u8), Just(50), Just(100)].prop_map(Op::Start),
        1 => Just(Op::Promote),
        1 => Just(Op::Abort),
    ]
}

/// Which version a session runs in the model: the live one, or canary number `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Live,
    Canary(u32),
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 24, ..Default::default() })]

    /// Generated interleavings of sessions, turns, canaries started (replacing one another),
    /// promoted and aborted: after every step each session answers with the version the model
    /// says it runs (a session keeps the side it started on; the canary's sessions follow the
    /// live version once their canary ends; nobody moves onto a canary), and the registry shows
    /// the model's live version and canary.
    #[test]
    fn sessions_run_the_version_their_side_says_through_any_rollout(
        ops in proptest::collection::vec(op(), 1..40)
    ) {
        let cache = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugin-cache");
        let reg = registry(|s| s.cache_dir = Some(cache));
        let mut live = Kind::Seed;
        let mut canary: Option<(u32, Kind, u8)> = None;
        let mut next = 0u32;
        let mut sessions: Vec<(String, Behaviours, Side)> = Vec::new();
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::NewSession => {
                    let id = format!("s{step}");
                    let mut b = reg.for_session(&id);
                    let got = b.decide(&event("hello"));
                    let side = match canary {
                        Some((n, kind, _)) if got == kind.answer() => Side::Canary(n),
                        _ => Side::Live,
                    };
                    let expected = match (canary, side) {
                        (Some((_, kind, 100)), _) => kind.answer(),
                        (Some((_, _, 0)) | None, _) => live.answer(),
                        (Some((_, kind, _)), Side::Canary(_)) => kind.answer(),
                        (Some(_), Side::Live) => live.answer(),
                    };
                    proptest::prop_assert_eq!(got, expected, "new session at step {}", step);
                    sessions.push((id, b, side));
                }
                Op::Turn(i) if !sessions.is_empty() => {
                    let i = i % sessions.len();
                    let (id, b, side) = &mut sessions[i];
                    let runs = match (*side, canary) {
                        (Side::Canary(n), Some((m, kind, _))) if n == m => kind,
                        _ => {
                            *side = Side::Live;
                            live
                        }
                    };
                    proptest::prop_assert_eq!(turn(&reg, id, b, "hello"), runs.answer(), "turn of {} at step {}", id, step);
                }
                Op::EndSession(i) if !sessions.is_empty() => {
                    let i = i % sessions.len();
                    sessions.remove(i);
                }
                Op::Start(percent) => {
                    let kind = live.other();
                    reg.start_canary(Slot::BargeIn, &CanarySettings {
                        path: wasm(kind.crate_name()),
                        percent,
                        policy: CanaryPolicy::default(),
                    }).unwrap();
                    next += 1;
                    canary = Some((next, kind, percent));
                }
                Op::Promote => {
                    let done = reg.promote_canary(Slot::BargeIn);
                    proptest::prop_assert_eq!(done.is_ok(), canary.is_some());
                    if let Some((_, kind, _)) = canary.take() {
                        live = kind;
                    }
                }
                Op::Abort => {
                    let done = reg.abort_canary(Slot::BargeIn);
                    proptest::prop_assert_eq!(done.is_ok(), canary.is_some());
                    canary = None;
                }
                Op::Turn(_) | Op::EndSession(_) => {}
            }
            let status = barge_in_status(&reg);
            let live_name = live.crate_name().replace('-', "_");
            proptest::prop_assert_eq!(status.plugin.as_deref(), Some(live_name.as_str()));
            proptest::prop_assert_eq!(status.canary.map(|c| c.percent), canary.map(|c| c.2));
        }
    }
}
