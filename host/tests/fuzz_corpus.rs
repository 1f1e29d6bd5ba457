//! Replays the fuzz seed corpus (`fuzz/corpus/<target>/`) through the same entry points the fuzz
//! targets call, so the ordinary test command checks that none of those inputs makes the host
//! panic. The fuzzer itself runs on nightly (scripts/fuzz.sh).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use voice_host::fuzzing::TARGETS;

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_input_is_handled_without_a_panic() {
    let mut panicked = Vec::new();
    for (target, entry) in TARGETS {
        let inputs = files(&corpus_root().join(target));
        assert!(!inputs.is_empty(), "no seed corpus for {target}");
        for path in inputs {
            let data = std::fs::read(&path).expect("corpus file");
            if catch_unwind(AssertUnwindSafe(|| entry(&data))).is_err() {
                panicked.push(path.display().to_string());
            }
        }
    }
    assert!(panicked.is_empty(), "inputs that panicked: {panicked:#?}");
}

#[test]
fn every_corpus_directory_belongs_to_a_target() {
    for dir in std::fs::read_dir(corpus_root()).expect("fuzz/corpus") {
        let name = dir.expect("directory entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/corpus/{name} has no target in voice_host::fuzzing::TARGETS"
        );
    }
}

// Crashes the fuzzer found, kept as named cases. Release builds wrap on overflow instead of
// panicking, so each asserts what the user would notice, not only the absence of a panic.

/// A final result whose window reaches absurdly far (`start: 1e300`) on a connection that began
/// an hour into the session overflowed `connection_base + covered`: a panic with overflow checks,
/// and in release a wrapped index that released none of the audio the server had covered, so it
/// would be sent again after a reconnect.
#[test]
fn deepgram_final_result_with_a_huge_window_releases_all_kept_audio() {
    let text = r#"{"type":"Results","is_final":true,"start":1e300,"duration":-5,"channel":{"alternatives":[]}}"#;
    let hour = 16_000 * 3600;
    assert_eq!(
        voice_host::fuzzing::deepgram_kept_after(text, hour, 16_000),
        Some(0)
    );
}
