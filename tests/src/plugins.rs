//! Plug-in components for server-level tests: the copies `scripts/build-plugins.sh` put in
//! `plugins/dist`, built on demand when a test runs before that script.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The component of plug-in `name` (a crate under `plugins/` or a Python plug-in under
/// `plugins/python/`), e.g. `prompt-persona` -> `plugins/dist/prompt_persona.wasm`.
pub fn component(name: &str) -> PathBuf {
    let root = workspace_root();
    let file = format!("{}.wasm", name.replace('-', "_"));
    let built = root.join("plugins/dist").join(&file);
    if built.is_file() {
        return built;
    }
    if root.join("plugins/python").join(name).is_dir() {
        run(Command::new("bash")
            .current_dir(&root)
            .args(["scripts/build-plugins.sh", name]));
        return built;
    }
    // A target directory of its own: the outer `cargo test` may hold the workspace's lock.
    let target = root.join("target").join("test-plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            name,
        ])
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo"));
    target.join("wasm32-wasip2/release").join(file)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("the plug-in build runs");
    assert!(
        out.status.success(),
        "building a plug-in failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
