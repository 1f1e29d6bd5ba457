//! Test-only plug-in exporting functions named like the barge-in-policy world with the wrong
//! types; the host must refuse to load it.
// The generated bindings lift a record into one argument per field.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "barge-in-policy",
    path: "wit",
});

struct Wrong;

impl Guest for Wrong {
    fn init(config: u32) -> u32 {
        config
    }

    fn decide(word_count: u32) -> bool {
        word_count > 2
    }
}

export!(Wrong);
