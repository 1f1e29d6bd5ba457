//! Test-only barge-in plug-in that answers `pause` (which the built-in rules never do) except when the user's
//! words contain "boom": then it traps (`unreachable`). The host must survive it.
// The generated bindings lift a record into one argument per field.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "barge-in-policy",
    path: "../../wit",
});

struct Hostile;

impl Guest for Hostile {
    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn decide(event: BargeInEvent) -> Decision {
        if event.interim_text.contains("boom") {
            // On wasm32 an abort is the `unreachable` instruction: a trap.
            std::process::abort();
        }
        Decision::Pause
    }
}

export!(Hostile);
