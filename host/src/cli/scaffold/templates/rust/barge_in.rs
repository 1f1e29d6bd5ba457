//! {{name}}: a barge-in policy for voice-host (slot `barge_in`, world `barge-in-policy`).
//!
//! `decide` is called when the user starts speaking while the agent speaks, and again on each
//! new interim transcript of that barge-in until it answers something other than `wait`. This
//! stub is a simple rule in the spirit of the host's built-in one: backchannels ("uh-huh",
//! "yeah") are ignored; five words interrupt once the agent has spoken three seconds, unless a
//! protected phrase is playing; anything else waits for more words.

// The generated bindings lift a record into one argument per field.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "barge-in-policy",
    path: "wit",
});

#[allow(unused_imports)]
use voice::policy::log::{log, Level};

/// Words a listener says without meaning to take the turn.
const BACKCHANNELS: &[&str] = &["uh-huh", "mm-hmm", "yeah", "yes", "okay", "ok", "right"];
/// Words that interrupt the agent.
const THRESHOLD_WORDS: u32 = 5;
/// The agent is never interrupted before it has been heard this long.
const MIN_AGENT_MS: u32 = 3000;

fn is_backchannel(text: &str) -> bool {
    let lower = text.to_lowercase();
    let mut words = lower
        .split_whitespace()
        .map(|w| w.trim_matches(|c| ".,!?;:".contains(c)))
        .peekable();
    words.peek().is_some() && words.all(|w| BACKCHANNELS.contains(&w))
}

struct Plugin;

impl Guest for Plugin {
    /// Called once per session instance with `[plugins.barge_in] config` (the host adds
    /// `threshold_words`, `min_agent_ms` and `protect_phrases` from its TTS_* settings). Return
    /// `Err("reason")` to refuse it; this stub accepts anything and keeps its constants.
    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn decide(event: BargeInEvent) -> Decision {
        if event.word_count > 0 && is_backchannel(&event.interim_text) {
            return Decision::Ignore;
        }
        // Not `ignore` while held back: the host asks again on the next event, when the
        // protected phrase may be over or the agent may have spoken long enough.
        let held_back = event.protected_playing || event.agent_spoken_ms < MIN_AGENT_MS;
        if !held_back && event.word_count >= THRESHOLD_WORDS {
            return Decision::Interrupt;
        }
        Decision::Wait
    }
}

export!(Plugin);
