//! Shared helpers of the plug-in tests: building the guest components, temporary directories
//! and registry settings.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use std::collections::HashMap;
use std::sync::Arc;

use voice_host::behaviour::defaults::BuiltinBehaviours;
use voice_host::behaviour::{Behaviours, Intent, IntentInput};
use voice_host::plugins::{PluginError, PluginRegistry, PluginSettings, SlotSettings};

/// Every guest crate the tests use.
const CRATES: &[&str] = &[
    "intent-keywords",
    "prompt-persona",
    "barge-in-seed",
    "barge-in-smart",
    "turn-smart",
    "test-policy-v0-1-0",
    "test-turn-v0-1-1",
    "test-hostile-loop",
    "test-hostile-alloc",
    "test-hostile-trap",
    "test-hostile-wrong-world",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// Builds the guest crates once per test process (a no-op when up to date) and returns the
/// directory holding the `.wasm` files. A target directory of its own inside the workspace's
/// `target/` keeps this build from waiting on the lock of the build that runs the tests.
fn wasm_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = workspace_root();
        let target = root.join("target").join("test-plugins");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&root)
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .env("CARGO_TARGET_DIR", &target)
            .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
            .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
        for krate in CRATES {
            cmd.args(["-p", krate]);
        }
        let out = cmd.output().expect("cargo runs");
        assert!(
            out.status.success(),
            "building the plug-ins failed (is `rustup target add wasm32-wasip2` done?):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join("wasm32-wasip2").join("release")
    })
}

/// Path of the built component of `krate` (e.g. `barge-in-seed`).
pub fn wasm(krate: &str) -> PathBuf {
    let path = wasm_dir().join(format!("{}.wasm", krate.replace('-', "_")));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// Builds the Python plug-ins under `plugins/python/` once per test process with
/// `scripts/build-plugins.sh` (componentize-py; a no-op when up to date) and returns the path of
/// `name`'s component (e.g. `intent-regex-py`).
pub fn python_wasm(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    interpreted_wasm(&BUILT, "python", "python-plugins", name)
}

/// Builds the JavaScript plug-ins under `plugins/js/` once per test process with
/// `scripts/build-plugins.sh` (componentize-js, installed with npm on first use; a no-op when up
/// to date) and returns the path of `name`'s component (e.g. `intent-keywords-js`).
pub fn js_wasm(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    interpreted_wasm(&BUILT, "js", "js-plugins", name)
}

/// Builds every plug-in under `plugins/<lang>/` once (`built`) and returns the path of `name`'s
/// component in `target/<out_dir>/`.
fn interpreted_wasm(built: &OnceLock<()>, lang: &str, out_dir: &str, name: &str) -> PathBuf {
    let root = workspace_root();
    built.get_or_init(|| {
        let mut cmd = Command::new("bash");
        cmd.current_dir(&root)
            .arg("scripts/build-plugins.sh")
            .env_remove("CARGO_TARGET_DIR");
        let dir = root.join("plugins").join(lang);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let entry = entry.expect("dir entry");
            cmd.arg(entry.file_name());
        }
        let out = cmd.output().expect("bash runs");
        assert!(
            out.status.success(),
            "building the plug-ins under plugins/{lang} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let path = root
        .join("target")
        .join(out_dir)
        .join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "voice-host-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies `src` to `dst` by writing a temporary file and renaming it into place.
pub fn install(src: &Path, dst: &Path) {
    let tmp = dst.with_extension("wasm.tmp");
    std::fs::copy(src, &tmp).expect("copy component");
    std::fs::rename(&tmp, dst).expect("rename component");
}

/// Settings for tests: a small pool, no disk cache, no watcher, and a call deadline generous
/// enough that a busy shared machine never faults a well-behaved plug-in (a plug-in that loops
/// forever hits any deadline).
pub fn settings() -> PluginSettings {
    PluginSettings {
        max_sessions: 16,
        cache_dir: None,
        watch: false,
        call_deadline_ms: 200,
        ..PluginSettings::default()
    }
}

/// Key/value configuration from pairs.
pub fn config(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A slot served by the built component of `krate`.
pub fn slot(krate: &str, pairs: &[(&str, &str)]) -> SlotSettings {
    SlotSettings::component(wasm(krate), config(pairs))
}

/// The value of a Prometheus sample line `name{labels}`.
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

/// Settings whose intent slot runs the interpreted (Python or JavaScript) component at `path`,
/// compiled once into a cache the tests share (compiling one takes seconds), with a call
/// deadline of `deadline_ms` (calls into an interpreter take longer than into a Rust plug-in).
pub fn interpreted_settings(
    path: PathBuf,
    pairs: &[(&str, &str)],
    deadline_ms: u64,
) -> PluginSettings {
    PluginSettings {
        intent: SlotSettings::component(path, config(pairs)),
        cache_dir: Some(workspace_root().join("target/test-plugin-cache")),
        call_deadline_ms: deadline_ms,
        ..settings()
    }
}

/// A registry of [`interpreted_settings`].
pub fn interpreted_intent(
    path: PathBuf,
    pairs: &[(&str, &str)],
    deadline_ms: u64,
) -> Result<Arc<PluginRegistry>, PluginError> {
    PluginRegistry::start(
        interpreted_settings(path, pairs, deadline_ms),
        BuiltinBehaviours::default(),
    )
}

/// The intent slot's answer to `transcript` as the first turn.
pub fn analyze(b: &mut Behaviours, transcript: &str) -> Option<Intent> {
    b.intent.analyze(&IntentInput {
        transcript: transcript.into(),
        turn: 1,
        history: vec![],
    })
}

/// An intent's slots by name.
pub fn slots(intent: &Intent) -> HashMap<String, String> {
    intent.slots.iter().cloned().collect()
}
