//! The `voice-host` executable for tests that run it as a process (exit statuses, signals,
//! stderr). It is another package's binary, so Cargo does not build it for this crate's tests:
//! it is taken from this profile's target directory (`target/release/voice-host`), where
//! `cargo build --release -p voice-host` (or the workspace's `cargo test`) puts it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Path of the built `voice-host` binary. Panics with the command to run when it is missing or
/// older than the host's sources (a stale binary would test old code).
pub fn voice_host() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/voice-host
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable under target/<profile>/deps");
    let bin = profile_dir.join("voice-host");
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: run `scripts/build.sh` first", bin.display()));
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src");
    if let Some(newer) = newest(&sources).filter(|(t, _)| *t > built) {
        panic!(
            "{} is older than {}: run `scripts/build.sh` first",
            bin.display(),
            newer.1.display()
        );
    }
    bin
}

/// The most recently modified file under `dir`, with its time.
fn newest(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut best: Option<(SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let candidate = if path.is_dir() {
            newest(&path)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .map(|t| (t, path))
        };
        if let Some(c) = candidate {
            if best.as_ref().is_none_or(|b| c.0 > b.0) {
                best = Some(c);
            }
        }
    }
    best
}
