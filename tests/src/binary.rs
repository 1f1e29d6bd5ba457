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
    // The sources the binary was built from, as Cargo's dep-info lists them: a test-only file
    // (a `#[cfg(test)]` module) changes no binary and must not make it look stale.
    let newest_source = match built_from(&profile_dir.join("voice-host.d")) {
        Some(files) => files
            .into_iter()
            .filter_map(|f| Some((std::fs::metadata(&f).ok()?.modified().ok()?, f)))
            .max_by_key(|(t, _)| *t),
        None => newest(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src")),
    };
    if let Some(newer) = newest_source.filter(|(t, _)| *t > built) {
        panic!(
            "{} is older than {}: run `scripts/build.sh` first",
            bin.display(),
            newer.1.display()
        );
    }
    bin
}

/// The files a Cargo dep-info file (`target: dep dep ...`, spaces in names escaped) lists.
fn built_from(dep_info: &Path) -> Option<Vec<PathBuf>> {
    let text = std::fs::read_to_string(dep_info).ok()?;
    let line = text.lines().next()?;
    let (_, deps) = line.split_once(": ")?;
    let mut files = Vec::new();
    let mut current = String::new();
    let mut chars = deps.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ' ' => files
                .extend((!current.is_empty()).then(|| PathBuf::from(std::mem::take(&mut current)))),
            c => current.push(c),
        }
    }
    files.extend((!current.is_empty()).then(|| PathBuf::from(current)));
    (!files.is_empty()).then_some(files)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_info_lists_each_source_with_escaped_spaces_kept() {
        let dir = std::env::temp_dir().join(format!("dep-info-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("voice-host.d");
        std::fs::write(
            &file,
            "/t/voice-host: /h/src/a.rs /h/my\\ dir/b.rs\n\n/h/src/a.rs:\n",
        )
        .unwrap();
        let files = built_from(&file).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            files,
            vec![
                PathBuf::from("/h/src/a.rs"),
                PathBuf::from("/h/my dir/b.rs")
            ]
        );
    }
}
