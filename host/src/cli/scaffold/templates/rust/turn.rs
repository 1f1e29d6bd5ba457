//! {{name}}: an end-of-turn policy for voice-host (slot `turn`, world `end-of-turn-policy`).
//!
//! `decide` is called while the user holds the floor: at each short pause in their speech, at
//! the end of speech, on new words after a pause and when a `wait` runs out. `end-turn` answers
//! at once; `wait(ms)` holds the turn open at least that long, counted from the moment the event
//! describes (its `silence_ms`); `wait(0)` leaves it to the host's silence rules. This stub keeps
//! the host's rules except after a word that promises more ("and", "um", "to"...): then it holds
//! the turn open for 1.5 s.

// The generated bindings lift a record into one argument per field.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "end-of-turn-policy",
    path: "wit",
});

#[allow(unused_imports)]
use voice::policy::log::{log, Level};

/// Words after which a speaker is rarely done.
const HOLD_AFTER: &[&str] = &["and", "but", "or", "so", "um", "uh", "to", "the", "a", "for"];
/// How long to hold the turn after one of them, in ms.
const HOLD_MS: u32 = 1500;

struct Plugin;

impl Guest for Plugin {
    /// Called once per session instance with `[plugins.turn] config`. Return `Err("reason")` to
    /// refuse it; this stub accepts anything.
    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn decide(event: TurnEvent) -> TurnDecision {
        let last = event
            .text
            .split_whitespace()
            .last()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase());
        match last {
            Some(word) if HOLD_AFTER.contains(&word.as_str()) => TurnDecision::Wait(HOLD_MS),
            _ => TurnDecision::Wait(0),
        }
    }
}

export!(Plugin);
