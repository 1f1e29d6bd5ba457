//! Test-only barge-in plug-in that answers `pause` (which the built-in rules never do) except when the user's
//! words contain "boom": then it allocates memory without bound. The host must survive it.
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
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                // Touch every page so the memory is really committed.
                hoard.push(vec![0xA5; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        Decision::Pause
    }
}

export!(Hostile);
