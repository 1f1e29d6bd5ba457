//! Plug-ins written in Python (componentize-py), run through the host runtime: they load, answer,
//! are configured through `init`, and see nothing of the host through the WASI stand-ins.

#[path = "plugins/common/mod.rs"]
mod plugins_common;

use std::sync::Arc;

use plugins_common::{
    analyze, interpreted_intent, interpreted_settings, metric, python_wasm, slots,
};
use voice_host::behaviour::defaults::BuiltinBehaviours;
use voice_host::behaviour::BehaviourSource;
use voice_host::plugins::{check_component, PluginError, PluginRegistry, PluginSettings, Slot};

/// The Python component `name` in the intent slot. A loaded machine must not turn a healthy call
/// into a deadline fault: 1 s.
fn registry(name: &str, pairs: &[(&str, &str)]) -> Result<Arc<PluginRegistry>, PluginError> {
    interpreted_intent(python_wasm(name), pairs, 1000)
}

#[test]
fn check_says_the_python_component_fits_the_intent_slot() {
    let report = check_component(&python_wasm("intent-regex-py")).expect("fits a slot");
    assert_eq!(report.fits, vec![Slot::Intent], "{report}");
    assert_eq!(report.rejected.len(), Slot::ALL.len() - 1, "{report}");
    // CPython's heap is snapshotted into the component: megabytes before the first call.
    assert!(report.memory_bytes > 1024 * 1024, "{report}");
    assert!(report.to_string().contains("memory:"), "{report}");
}

#[test]
fn python_intent_analyzer_matches_builtin_and_configured_rules() {
    let reg = registry(
        "intent-regex-py",
        &[(
            "intent.book",
            r"book a table for (?P<people>\d+)(?: at (?P<time>\d+))?",
        )],
    )
    .expect("loads");
    let mut s = reg.for_session("s");

    let weather = analyze(&mut s, "What's the weather in New York tomorrow").expect("an intent");
    assert_eq!(weather.name, "weather");
    assert_eq!(slots(&weather)["city"], "new york");
    assert!((weather.confidence - 0.9).abs() < 1e-6);

    let book = analyze(&mut s, "I'd like to book a table for 4 at 7").expect("an intent");
    assert_eq!(book.name, "book");
    assert_eq!(slots(&book)["people"], "4");
    assert_eq!(slots(&book)["time"], "7");

    assert_eq!(
        analyze(&mut s, "Can you say that again?").unwrap().name,
        "repeat"
    );
    assert_eq!(analyze(&mut s, "tell me a story about dragons"), None);
    let text = reg.prometheus();
    assert_eq!(
        metric(&text, "voice_plugin_fallbacks_total{slot=\"intent\"}"),
        0,
        "{text}"
    );
}

#[test]
fn python_init_refusal_keeps_the_plugin_out() {
    let err = registry("intent-regex-py", &[("intent.broken", "book (a table")])
        .err()
        .expect("an invalid pattern is refused");
    let text = err.to_string();
    assert!(
        text.contains("intent.broken") && text.contains("missing )"),
        "{text}"
    );
    let err = registry("intent-regex-py", &[("colour", "blue")])
        .err()
        .expect("an unknown key is refused");
    assert!(err.to_string().contains("unknown key 'colour'"), "{err}");
}

#[test]
fn python_component_sees_no_environment_files_clock_or_entropy() {
    // A secret in the host's environment must not reach a plug-in.
    std::env::set_var("PROBE_SECRET_KEY", "sk-must-not-leak");
    let reg = registry("test-probe-py", &[]).expect("loads");
    let mut a = reg.for_session("a");
    let mut b = reg.for_session("b");
    let seen = slots(&analyze(&mut a, "look around").expect("the probe answers"));
    assert_eq!(seen["env"], "0", "{seen:?}");
    assert!(seen["listdir"].starts_with("error:"), "{seen:?}");
    assert!(seen["passwd"].starts_with("error:"), "{seen:?}");
    assert_eq!(seen["time"], "0", "the wall clock is frozen: {seen:?}");
    // The same fixed bytes for every instance: no entropy to fingerprint the host with.
    let other = slots(&analyze(&mut b, "look around").expect("the probe answers"));
    assert_eq!(seen["urandom"], other["urandom"]);
    assert_eq!(seen["random"], other["random"]);
    assert_eq!(seen["calls"], "1");

    let socket = slots(&analyze(&mut a, "socket").expect("the probe answers"))
        .remove("socket")
        .unwrap_or_default();
    assert!(!socket.contains("connected"), "{socket}");
}

#[test]
fn python_sleep_and_exceptions_are_contained_faults() {
    let reg = registry("test-probe-py", &[]).expect("loads");
    let mut s = reg.for_session("s");
    assert_eq!(
        slots(&analyze(&mut s, "look").unwrap())["calls"],
        "1",
        "fresh instance"
    );
    assert_eq!(
        slots(&analyze(&mut s, "look").unwrap())["calls"],
        "2",
        "the instance keeps its state between calls"
    );
    // Sleeping would block a host thread where the deadline cannot reach: it faults instead.
    assert_eq!(analyze(&mut s, "sleep"), None, "built-in intent (none)");
    assert_eq!(
        slots(&analyze(&mut s, "look").unwrap())["calls"],
        "1",
        "the faulted instance was replaced"
    );
    assert_eq!(analyze(&mut s, "raise"), None);
    assert_eq!(slots(&analyze(&mut s, "look").unwrap())["calls"], "1");
    // Output goes to the host log; it does not disturb the call.
    assert_eq!(analyze(&mut s, "print").unwrap().name, "probe");

    let text = reg.prometheus();
    assert_eq!(
        metric(
            &text,
            "voice_plugin_faults_total{slot=\"intent\",kind=\"trap\"}"
        ),
        2,
        "{text}"
    );
    assert_eq!(
        metric(&text, "voice_plugin_fallbacks_total{slot=\"intent\"}"),
        2
    );
}

#[test]
fn python_component_over_the_memory_cap_is_refused_with_a_clear_reason() {
    let err = PluginRegistry::start(
        PluginSettings {
            memory_limit_bytes: 4 * 1024 * 1024,
            ..interpreted_settings(python_wasm("intent-regex-py"), &[], 1000)
        },
        BuiltinBehaviours::default(),
    )
    .err()
    .expect("CPython does not fit in 4 MiB");
    assert!(err.to_string().contains("memory"), "{err}");
}
