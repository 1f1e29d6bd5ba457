//! Test-only barge-in plug-in that answers `pause` (which the built-in rules never do) except when the user's
//! words contain "boom": then it spins forever. The host must survive it. "work N" spins N
//! iterations and then answers: a healthy call that uses a chosen amount of CPU.
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
        // "work N": a healthy call that spins N iterations (a measurable amount of CPU) and
        // answers, so tests can make calls long enough to be preempted.
        if let Some(n) = event
            .interim_text
            .strip_prefix("work ")
            .and_then(|n| n.trim().parse::<u64>().ok())
        {
            let mut acc: u64 = 0;
            for i in 0..n {
                acc = std::hint::black_box(acc.wrapping_add(i));
            }
            std::hint::black_box(acc);
            return Decision::Pause;
        }
        if event.interim_text.contains("boom") {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Decision::Pause
    }
}

export!(Hostile);
