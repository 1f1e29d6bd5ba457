//! Reference barge-in policy with the host's seed rules: backchannels ("uh-huh", "yeah") are
//! ignored; otherwise interrupt once the user's words reach a threshold, but never before the
//! agent has spoken a minimum time nor during a protected phrase (then `wait` and decide again).
//!
//! Configuration (`init`): `threshold_words` (default 5), `min_agent_ms` (default 3000),
//! `protect_phrases` (`true`/`false`, default `true`).
// The generated bindings lift a record into one argument per field.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "barge-in-policy",
    path: "../../wit",
});

use std::cell::Cell;

use voice::policy::log::{log, Level};

/// Rules set by `init`; one instance serves one session, so plain thread-local state is fine.
#[derive(Clone, Copy)]
struct Rules {
    threshold_words: u32,
    min_agent_ms: u32,
    protect_phrases: bool,
}

const DEFAULT_RULES: Rules = Rules {
    threshold_words: 5,
    min_agent_ms: 3000,
    protect_phrases: true,
};

thread_local! {
    static RULES: Cell<Rules> = const { Cell::new(DEFAULT_RULES) };
}

/// Words a listener says without meaning to take the turn.
const BACKCHANNEL_WORDS: &[&str] = &[
    "uh-huh", "uh", "huh", "mm-hmm", "mhm", "mm", "hmm", "yeah", "yes", "yep", "ok", "okay",
    "right", "sure", "i", "see", "got", "it", "alright", "cool",
];

fn is_backchannel(text: &str) -> bool {
    let norm: String = text
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let mut words = norm.split_whitespace().peekable();
    words.peek().is_some() && words.all(|w| BACKCHANNEL_WORDS.contains(&w))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{key}: expected true or false, got {value:?}")),
    }
}

fn parse_u32(key: &str, value: &str) -> Result<u32, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{key}: expected a whole number, got {value:?}"))
}

struct SeedPolicy;

impl Guest for SeedPolicy {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let mut rules = DEFAULT_RULES;
        for (key, value) in &config {
            match key.as_str() {
                "threshold_words" => rules.threshold_words = parse_u32(key, value)?,
                "min_agent_ms" => rules.min_agent_ms = parse_u32(key, value)?,
                "protect_phrases" => rules.protect_phrases = parse_bool(key, value)?,
                other => log(
                    Level::Warn,
                    &format!("unknown config key {other:?} ignored"),
                ),
            }
        }
        RULES.with(|r| r.set(rules));
        Ok(())
    }

    fn decide(event: BargeInEvent) -> Decision {
        let rules = RULES.with(Cell::get);
        if event.word_count > 0 && is_backchannel(&event.interim_text) {
            return Decision::Ignore;
        }
        // Held back: a protected sentence is playing, or the agent has not spoken long enough.
        // Not `ignore`: the host asks again on the next event, when that may have changed.
        let held_back = (rules.protect_phrases && event.protected_playing)
            || event.agent_spoken_ms < rules.min_agent_ms;
        if !held_back && event.word_count >= rules.threshold_words {
            return Decision::Interrupt;
        }
        Decision::Wait
    }
}

export!(SeedPolicy);
