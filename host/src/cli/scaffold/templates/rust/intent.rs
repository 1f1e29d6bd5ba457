//! {{name}}: an intent analyzer for voice-host (slot `intent`, world `intent-analyzer`).
//!
//! `analyze` is called once per final user turn; its answer goes to the prompt shaper. This stub
//! finds no intent, as the host's built-in behaviour does: replace it with your rules.

// The generated bindings lift a record into one argument per field.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "intent-analyzer",
    path: "wit",
});

#[allow(unused_imports)]
use voice::policy::log::{log, Level};

struct Plugin;

impl Guest for Plugin {
    /// Called once per session instance with `[plugins.intent] config` from the host's
    /// configuration. Return `Err("reason")` to refuse it; this stub accepts anything.
    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    /// The intent of the turn, e.g.
    /// `Some(Intent { name: "weather".into(), confidence: 0.9, slots: vec![("city".into(), "paris".into())] })`,
    /// or `None` when nothing matched.
    fn analyze(input: IntentInput) -> Option<Intent> {
        // Logging goes to the host's log, tagged with this plug-in's name and version.
        // log(Level::Debug, &format!("turn {}: {} words", input.turn, input.transcript.split_whitespace().count()));
        let _ = input;
        None
    }
}

export!(Plugin);
