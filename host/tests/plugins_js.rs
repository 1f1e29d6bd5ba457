//! Plug-ins written in JavaScript (componentize-js), run through the host runtime: the reference
//! `intent-keywords-js` answers exactly like the Rust `intent-keywords`, and a probe shows that a
//! JavaScript component reaches nothing of the host and that its exceptions are contained.
//!
//! Its own test binary, like the Python one: compiling the 12 MB SpiderMonkey component takes
//! both cores for a while, which the timed fault tests of `plugins` must not run beside.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[path = "plugins/common/mod.rs"]
mod plugins_common;

use plugins_common::{
    analyze, interpreted_intent, interpreted_settings, js_wasm, metric, settings, slot, slots,
};
use voice_host::behaviour::defaults::BuiltinBehaviours;
use voice_host::behaviour::{BehaviourSource, Behaviours};
use voice_host::plugins::{check_component, PluginError, PluginRegistry, PluginSettings, Slot};

/// The JavaScript component `name` in the intent slot. The deadline is CPU time, and the probe's
/// endless loop burns all of it: 500 ms.
fn registry(name: &str, pairs: &[(&str, &str)]) -> Result<Arc<PluginRegistry>, PluginError> {
    interpreted_intent(js_wasm(name), pairs, 500)
}

/// The Rust reference plug-in with the same configuration.
fn rust_registry(pairs: &[(&str, &str)]) -> Result<Arc<PluginRegistry>, PluginError> {
    PluginRegistry::start(
        PluginSettings {
            intent: slot("intent-keywords", pairs),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
}

/// Names of the interfaces and functions the component at `path` imports, read from its
/// import sections (component binary format: section id 10 of the outer component; type imports,
/// the records a world `use`s, are left out).
fn component_imports(path: &Path) -> Vec<String> {
    struct Reader<'a> {
        bytes: &'a [u8],
        at: usize,
    }
    impl Reader<'_> {
        fn byte(&mut self) -> u8 {
            self.at += 1;
            self.bytes[self.at - 1]
        }
        fn u32(&mut self) -> u32 {
            let (mut value, mut shift) = (0u32, 0);
            loop {
                let b = self.byte();
                value |= u32::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    return value;
                }
                shift += 7;
            }
        }
        fn name(&mut self) -> String {
            let len = self.u32() as usize;
            self.at += len;
            String::from_utf8_lossy(&self.bytes[self.at - len..self.at]).into_owned()
        }
    }

    let bytes = std::fs::read(path).expect("read the component");
    assert_eq!(&bytes[..8], b"\0asm\x0d\0\x01\0", "not a component");
    let mut r = Reader {
        bytes: &bytes,
        at: 8,
    };
    let mut names = Vec::new();
    while r.at < bytes.len() {
        let id = r.byte();
        let size = r.u32() as usize;
        let end = r.at + size;
        if id == 10 {
            for _ in 0..r.u32() {
                let form = r.byte();
                let name = r.name();
                if form == 0x01 {
                    r.name(); // version suffix
                }
                // externdesc: 0x00 core module, 0x01 func, 0x02 value, 0x03 type, 0x04
                // component, 0x05 instance (an interface).
                let kind = r.byte();
                match kind {
                    0x00 | 0x02 => {
                        r.byte();
                        r.u32();
                    }
                    0x01 | 0x04 | 0x05 => {
                        r.u32();
                    }
                    0x03 => {
                        if r.byte() == 0x00 {
                            r.u32();
                        }
                    }
                    other => panic!("unknown import kind {other:#x}"),
                }
                if kind != 0x03 {
                    names.push(name);
                }
            }
        }
        r.at = end;
    }
    names
}

#[test]
fn check_says_the_js_component_fits_the_intent_slot_within_the_default_memory() {
    let report = check_component(&js_wasm("intent-keywords-js")).expect("fits a slot");
    assert_eq!(report.fits, vec![Slot::Intent], "{report}");
    assert_eq!(report.rejected.len(), Slot::ALL.len() - 1, "{report}");
    // SpiderMonkey's heap is snapshotted into the component: megabytes before the first call,
    // but within the default cap, so it deploys without raising PLUGIN_MEMORY_MB.
    assert!(report.memory_bytes > 1024 * 1024, "{report}");
    assert!(
        report.memory_bytes <= PluginSettings::default().memory_limit_bytes,
        "{report}"
    );
    assert!(
        !report.to_string().contains("over the default cap"),
        "{report}"
    );
}

#[test]
fn js_components_import_nothing_but_the_policy_contract() {
    // Built with every optional engine feature off: no WASI at all, so the host links none of
    // its stand-ins for them.
    for name in ["intent-keywords-js", "test-probe-js"] {
        let imports = component_imports(&js_wasm(name));
        assert!(!imports.is_empty(), "{name}: no imports found");
        assert!(
            imports.iter().all(|i| i.starts_with("voice:policy/")),
            "{name} imports {imports:?}"
        );
    }
}

/// Transcripts on which the JavaScript and the Rust plug-in must agree: every built-in rule,
/// configured rules, case, punctuation, apostrophes and hyphens, ties, slots at the end,
/// non-ASCII letters and digits, and nothing at all.
const TRANSCRIPTS: &[&str] = &[
    "What's the weather in Paris tomorrow?",
    "what's the WEATHER in new york",
    "Is it raining in Lyon or in Nice?",
    "What's the temperature outside in Oslo",
    "Sorry, can you repeat that?",
    "Can you say that again please",
    "pardon",
    "what did you say",
    "ok bye",
    "Bye bye!",
    "bye-bye",
    "-bye-",
    "'goodbye'",
    "That's all, thanks.",
    "that\u{2019}s all",
    "help",
    "help, bye",
    "weather bye",
    "What can you do?",
    "how does this work, and what's the forecast in",
    "I'd like to book a table for four at eight",
    "can I make a reservation for 2",
    "reserve a table",
    "Wie ist das Wetter in München?",
    "weather in Zürich",
    "weather in São Paulo",
    "weather in \u{5317}\u{4eac}\u{3002}",
    "forecast in \u{0627}\u{0644}\u{0631}\u{064a}\u{0627}\u{0636}",
    "weather in \u{00bd}",
    "weather in ①",
    "WEATHER IN ΑΘΗΝΑ",
    "tell me a story about dragons",
    "say that again, bye bye, what can you do",
    "'-'",
    "weather in-",
    "in",
    "",
    "   ",
    "?!...",
];

#[test]
fn js_intent_analyzer_answers_exactly_like_the_rust_one() {
    let configs: &[&[(&str, &str)]] = &[
        &[],
        &[
            ("intent.book", "book a table, reservation | reserve"),
            ("slot.people", "for"),
            ("slot.when", " AT "),
            ("colour", "blue"),
        ],
        &[("defaults", "false"), ("intent.weather", "forecast")],
        &[("defaults", "no"), ("intent.help", "help, what can you do")],
        &[("intent.goodbye", ""), ("slot.city", "")],
    ];
    let mut compared = 0;
    for pairs in configs {
        let js = registry("intent-keywords-js", pairs).expect("the JS plug-in loads");
        let rust = rust_registry(pairs).expect("the Rust plug-in loads");
        let mut j = js.for_session("js");
        let mut r = rust.for_session("rust");
        for transcript in TRANSCRIPTS {
            assert_eq!(
                analyze(&mut j, transcript),
                analyze(&mut r, transcript),
                "config {pairs:?}, transcript {transcript:?}"
            );
            compared += 1;
        }
        let text = js.prometheus();
        assert_eq!(
            metric(&text, "voice_plugin_fallbacks_total{slot=\"intent\"}"),
            0,
            "{text}"
        );
    }
    assert_eq!(compared, configs.len() * TRANSCRIPTS.len());

    // What a caller's turn turns into, spelled out once.
    let js = registry("intent-keywords-js", &[]).expect("loads");
    let mut s = js.for_session("s");
    let weather = analyze(&mut s, "What's the weather in Paris tomorrow?").expect("an intent");
    assert_eq!(weather.name, "weather");
    assert_eq!(slots(&weather)["city"], "paris");
    assert_eq!(analyze(&mut s, "say that again").unwrap().name, "repeat");
    assert_eq!(analyze(&mut s, "say that again").unwrap().confidence, 1.0);
    assert_eq!(analyze(&mut s, "tell me a story about dragons"), None);
}

#[test]
fn js_init_refuses_what_the_rust_one_refuses() {
    for key in ["intent.", "slot."] {
        let js = registry("intent-keywords-js", &[(key, "anything")])
            .err()
            .expect("the JS plug-in refuses an empty name");
        let rust = rust_registry(&[(key, "anything")])
            .err()
            .expect("the Rust plug-in refuses an empty name");
        let reason = format!("{key}<name>: the ");
        assert!(js.to_string().contains(&reason), "{js}");
        assert!(rust.to_string().contains(&reason), "{rust}");
    }
}

#[test]
fn js_exceptions_and_endless_loops_are_contained_faults() {
    let reg = registry("test-probe-js", &[]).expect("loads");
    let mut s = reg.for_session("s");
    let mut other = reg.for_session("other");
    let calls = |b: &mut Behaviours| {
        slots(&analyze(b, "look").expect("the probe answers"))["calls"].clone()
    };
    assert_eq!(calls(&mut s), "1", "fresh instance");
    assert_eq!(
        calls(&mut s),
        "2",
        "the instance keeps its state between calls"
    );
    assert_eq!(calls(&mut other), "1");

    // An uncaught exception traps the call: the built-in answer (no intent) stands in for it.
    assert_eq!(analyze(&mut s, "throw"), None);
    assert_eq!(calls(&mut s), "1", "the faulted instance was replaced");
    // An endless loop is cut off at the deadline.
    assert_eq!(analyze(&mut s, "loop"), None);
    assert_eq!(calls(&mut s), "1");
    // Console output goes nowhere (stdio is off) and does not disturb the call.
    assert_eq!(analyze(&mut s, "print").unwrap().name, "probe");
    // The other session never noticed.
    assert_eq!(calls(&mut other), "2");

    let text = reg.prometheus();
    assert_eq!(
        metric(
            &text,
            "voice_plugin_faults_total{slot=\"intent\",kind=\"trap\"}"
        ),
        1,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "voice_plugin_faults_total{slot=\"intent\",kind=\"deadline\"}"
        ),
        1,
        "{text}"
    );
    assert_eq!(
        metric(&text, "voice_plugin_fallbacks_total{slot=\"intent\"}"),
        2
    );
    assert!(reg.quarantined().is_empty(), "{:?}", reg.quarantined());
}

#[test]
fn js_component_sees_no_environment_clock_entropy_or_network() {
    // No environment: the engine has no `process`, and the component imports no WASI (see
    // `js_components_import_nothing_but_the_policy_contract`) through which one could come.
    let reg = registry("test-probe-js", &[]).expect("loads");
    let mut a = reg.for_session("a");
    let seen = slots(&analyze(&mut a, "look around").expect("the probe answers"));
    assert_eq!(seen["process"], "undefined", "{seen:?}");
    assert!(seen["env"].starts_with("error:"), "{seen:?}");

    // Later, in another instance, the clock has not moved and the "random" numbers repeat: the
    // engine's clock and entropy were frozen when the component was built, so there is nothing
    // to fingerprint or time the host with.
    std::thread::sleep(Duration::from_millis(20));
    let mut b = reg.for_session("b");
    let other = slots(&analyze(&mut b, "look around").expect("the probe answers"));
    assert_eq!(seen["time"], other["time"], "the clock is frozen");
    assert_eq!(seen["random"], other["random"]);
    assert_eq!(seen["crypto"], other["crypto"]);
    assert!(seen["crypto"].starts_with("ok:"), "{seen:?}");

    // A high-resolution timer and fetch() do not exist: using them ends the call.
    assert_eq!(analyze(&mut a, "clock"), None);
    assert_eq!(analyze(&mut a, "fetch"), None);
    let text = reg.prometheus();
    assert_eq!(
        metric(
            &text,
            "voice_plugin_faults_total{slot=\"intent\",kind=\"trap\"}"
        ),
        2,
        "{text}"
    );
}

#[test]
fn js_component_over_the_memory_cap_is_refused_with_a_clear_reason() {
    let err = PluginRegistry::start(
        PluginSettings {
            memory_limit_bytes: 4 * 1024 * 1024,
            ..interpreted_settings(js_wasm("intent-keywords-js"), &[], 500)
        },
        BuiltinBehaviours::default(),
    )
    .err()
    .expect("SpiderMonkey does not fit in 4 MiB");
    assert!(err.to_string().contains("memory"), "{err}");
}
