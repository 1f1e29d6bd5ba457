//! Test-only: a barge-in policy built against `voice:policy@0.1.0` that interrupts on any words
//! and logs once, so a test can tell it (not the built-in rules) answered.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "barge-in-policy",
    path: "wit",
});

use voice::policy::log::{log, Level};

struct Plugin;

impl Guest for Plugin {
    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        log(Level::Info, "built against voice:policy@0.1.0");
        Ok(())
    }

    fn decide(event: BargeInEvent) -> Decision {
        if event.word_count > 0 {
            Decision::Interrupt
        } else {
            Decision::Wait
        }
    }
}

export!(Plugin);
