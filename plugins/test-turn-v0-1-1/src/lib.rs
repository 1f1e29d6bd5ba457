//! Test-only: an end-of-turn policy built against `voice:policy@0.1.1` (before the
//! `turn-signals` import): it ends the turn when the words end with a full stop and holds 700 ms
//! otherwise, so a test can tell it (not the silence rules) answered.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "end-of-turn-policy",
    path: "wit",
});

use voice::policy::log::{log, Level};

struct Plugin;

impl Guest for Plugin {
    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        log(Level::Info, "built against voice:policy@0.1.1");
        Ok(())
    }

    fn decide(event: TurnEvent) -> TurnDecision {
        if event.text.trim_end().ends_with('.') {
            TurnDecision::EndTurn
        } else {
            TurnDecision::Wait(700)
        }
    }
}

export!(Plugin);
