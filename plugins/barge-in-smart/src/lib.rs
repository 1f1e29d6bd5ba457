//! A smarter barge-in policy than the seed rules:
//! - a stop word ("stop", "wait", "hold on", ...) interrupts at once, even before the agent's
//!   minimum speaking time;
//! - backchannels ("uh-huh", "yeah", "okay") are ignored however many there are;
//! - sustained speech without words yet pauses the audio, so the agent does not talk over the
//!   user while the transcript catches up (the host resumes if no real words follow);
//! - otherwise the seed rules: interrupt at `threshold_words` after `min_agent_ms`.
//!
//! A protected sentence is never interrupted when `protect_phrases` is on (`wait` until it ends).
//!
//! Configuration keys: `threshold_words` (5), `min_agent_ms` (3000), `protect_phrases` (true),
//! `pause_after_ms` (600; 0 disables pausing), `stop_words` (comma separated, replaces the list).
// The generated bindings lift a record into one argument per field.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "barge-in-policy",
    path: "../../wit",
});

use std::cell::RefCell;

struct Rules {
    threshold_words: u32,
    min_agent_ms: u32,
    protect_phrases: bool,
    pause_after_ms: u32,
    /// Normalised stop phrases, each a list of words.
    stop_phrases: Vec<Vec<String>>,
}

const DEFAULT_STOP_WORDS: &str = "stop, wait, hold on, hang on, cancel, shut up, be quiet, no no";

const BACKCHANNEL_WORDS: &[&str] = &[
    "uh-huh", "uh", "huh", "mm-hmm", "mhm", "mm", "hmm", "yeah", "yes", "yep", "ok", "okay",
    "right", "sure", "i", "see", "got", "it", "alright", "cool",
];

impl Default for Rules {
    fn default() -> Self {
        Self {
            threshold_words: 5,
            min_agent_ms: 3000,
            protect_phrases: true,
            pause_after_ms: 600,
            stop_phrases: phrases(DEFAULT_STOP_WORDS),
        }
    }
}

thread_local! {
    static RULES: RefCell<Rules> = RefCell::new(Rules::default());
}

fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn phrases(list: &str) -> Vec<Vec<String>> {
    list.split(',')
        .map(words)
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_u32(key: &str, value: &str) -> Result<u32, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{key}: expected a whole number, got {value:?}"))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{key}: expected true or false, got {value:?}")),
    }
}

struct SmartPolicy;

impl Guest for SmartPolicy {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let mut rules = Rules::default();
        for (key, value) in &config {
            match key.as_str() {
                "threshold_words" => rules.threshold_words = parse_u32(key, value)?,
                "min_agent_ms" => rules.min_agent_ms = parse_u32(key, value)?,
                "protect_phrases" => rules.protect_phrases = parse_bool(key, value)?,
                "pause_after_ms" => rules.pause_after_ms = parse_u32(key, value)?,
                "stop_words" => rules.stop_phrases = phrases(value),
                _ => {}
            }
        }
        RULES.with(|r| *r.borrow_mut() = rules);
        Ok(())
    }

    fn decide(event: BargeInEvent) -> Decision {
        RULES.with(|rules| {
            let rules = rules.borrow();
            let heard = words(&event.interim_text);
            if !heard.is_empty()
                && heard
                    .iter()
                    .all(|w| BACKCHANNEL_WORDS.contains(&w.as_str()))
            {
                return Decision::Ignore;
            }
            if rules.protect_phrases && event.protected_playing {
                // Decide again once the protected sentence is over.
                return Decision::Wait;
            }
            let says_stop = rules
                .stop_phrases
                .iter()
                .any(|p| heard.windows(p.len()).any(|w| w == p.as_slice()));
            if says_stop {
                return Decision::Interrupt;
            }
            if event.agent_spoken_ms < rules.min_agent_ms {
                return Decision::Wait;
            }
            if event.word_count >= rules.threshold_words {
                return Decision::Interrupt;
            }
            if heard.is_empty()
                && rules.pause_after_ms > 0
                && event.user_speech_ms >= rules.pause_after_ms
            {
                return Decision::Pause;
            }
            Decision::Wait
        })
    }
}

export!(SmartPolicy);
