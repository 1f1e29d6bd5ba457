//! `voice-host plugins new`, run as the binary: the projects it writes into temporary
//! directories, outside this workspace, build with their own `build.sh`, pass
//! `voice-host plugins check` and replay their sample recording with exit status 0 (Rust: every
//! slot, through the project's `test.sh`; Python and JavaScript: the intent slot, with the tools
//! this workspace already installed under `target/tools`); bad names and existing directories
//! are refused with one line on stderr.
//!
//! Its own test binary: building CPython and SpiderMonkey components and compiling them for
//! `plugins check` takes both cores for a while, which the timed end-to-end tests must not run
//! beside.
//!
//! The Rust projects share `target/scaffold` as their target directory, so wit-bindgen is built
//! once; their dependencies come from the crates registry. Compiled components are cached in the
//! test's own temporary directory (`XDG_CACHE_HOME`), removed with it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A directory under the system's temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "voice-plugins-new-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `program` with a clean environment: what the toolchains need to find themselves and the
/// registries (so no host setting of the machine running the tests changes a replay), and
/// compiled components cached under `scratch`.
fn command(program: impl AsRef<std::ffi::OsStr>, scratch: &Scratch) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear();
    let passed = |name: &str| {
        matches!(
            name,
            "PATH"
                | "HOME"
                | "USER"
                | "TMPDIR"
                | "RUSTUP_HOME"
                | "RUSTUP_TOOLCHAIN"
                | "CARGO_HOME"
                | "SSL_CERT_FILE"
                | "SSL_CERT_DIR"
        ) || name.to_ascii_lowercase().ends_with("_proxy")
            || [
                "CARGO_REGISTRIES_",
                "CARGO_REGISTRY_",
                "CARGO_NET_",
                "CARGO_HTTP_",
                "PYENV_",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
    };
    for (name, value) in std::env::vars_os() {
        if name.to_str().is_some_and(passed) {
            cmd.env(name, value);
        }
    }
    cmd.env("XDG_CACHE_HOME", scratch.path().join("cache"));
    cmd
}

/// Runs `cmd` to its end.
fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{cmd:?} did not start: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// Asserts that `out` succeeded, showing its output otherwise.
fn succeeded(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `voice-host plugins new ARGS` run in `cwd`.
fn plugins_new(scratch: &Scratch, cwd: &Path, args: &[&str]) -> Output {
    run(command(voice_tests::binary::voice_host(), scratch)
        .current_dir(cwd)
        .args(["plugins", "new"])
        .args(args))
}

/// The single line `voice-host plugins new: <reason>` on stderr of a failed run.
fn refusal(out: &Output) -> String {
    assert!(!out.status.success(), "should fail: {}", text(&out.stdout));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {stderr:?}");
    assert!(lines[0].starts_with("voice-host plugins new: "), "{stderr}");
    lines[0].to_string()
}

/// Creates project `name` of `slot` and `lang` under `scratch` and returns its directory.
fn generate(scratch: &Scratch, name: &str, slot: &str, lang: &str) -> PathBuf {
    let out = plugins_new(
        scratch,
        scratch.path(),
        &[
            name,
            "--slot",
            slot,
            "--lang",
            lang,
            "--dir",
            scratch.path().to_str().expect("a UTF-8 path"),
        ],
    );
    succeeded("voice-host plugins new", &out);
    let dir = scratch.path().join(name);
    assert!(dir.is_dir(), "{}", text(&out.stdout));
    // The contract is vendored as the host has it.
    let wit = std::fs::read_to_string(dir.join("wit/policy.wit")).expect("wit/policy.wit");
    let host_wit = std::fs::read_to_string(workspace_root().join("wit/policy.wit")).unwrap();
    assert_eq!(wit, host_wit, "the vendored WIT differs from the host's");
    for file in ["README.md", "build.sh", "test.sh", "sample-recording.jsonl"] {
        assert!(
            dir.join(file).is_file(),
            "{file} missing in {}",
            dir.display()
        );
    }
    dir
}

/// `voice-host plugins check FILE` passes and names `slot`.
fn check(scratch: &Scratch, dir: &Path, file: &str, slot: &str) {
    let out = run(command(voice_tests::binary::voice_host(), scratch)
        .current_dir(dir)
        .args(["plugins", "check", file]));
    succeeded("voice-host plugins check", &out);
    let report = text(&out.stdout);
    assert!(report.contains(&format!("fits slot {slot} ")), "{report}");
}

/// `voice-host plugins replay FILE sample-recording.jsonl --max-disagreement 0` passes with
/// every sample call agreeing.
fn replay_sample(scratch: &Scratch, dir: &Path, file: &str, slot: &str) {
    let out = run(command(voice_tests::binary::voice_host(), scratch)
        .current_dir(dir)
        .args(["plugins", "replay", file, "sample-recording.jsonl"])
        .args(["--max-disagreement", "0"]));
    succeeded("voice-host plugins replay", &out);
    assert_replayed(&text(&out.stdout), slot);
}

/// The replay's table shows `slot`, full agreement and no faults.
fn assert_replayed(table: &str, slot: &str) {
    let row = |name: &str| {
        table
            .lines()
            .find_map(|l| l.strip_prefix(name).filter(|r| r.starts_with(' ')))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name:?} row in:\n{table}"))
            .to_string()
    };
    assert_eq!(row("slot"), slot, "{table}");
    assert_eq!(row("faults"), "none", "{table}");
    let agreement = row("agreement");
    assert!(agreement.ends_with("(100.0%)"), "{table}");
    assert!(!agreement.starts_with("0 of"), "{table}");
}

/// Generates, builds, checks and `test.sh`-tests a Rust project of `slot`.
fn rust_project(slot: &str) {
    let scratch = Scratch::new(&format!("rust-{slot}"));
    let name = format!("my-{}", slot.replace('_', "-"));
    let dir = generate(&scratch, &name, slot, "rust");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
    // One target directory for the three projects: wit-bindgen is compiled once.
    let target = workspace_root().join("target/scaffold");
    let out = run(command(dir.join("build.sh"), &scratch)
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target));
    succeeded("build.sh", &out);
    let wasm = format!("{name}.wasm");
    assert!(dir.join(&wasm).is_file(), "{}", text(&out.stderr));
    check(&scratch, &dir, &wasm, slot);
    // The project's own replay test: it rebuilds (nothing to do) and replays the sample.
    let out = run(command(dir.join("test.sh"), &scratch)
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .env("VOICE_HOST", voice_tests::binary::voice_host()));
    succeeded("test.sh", &out);
    assert_replayed(&text(&out.stdout), slot);
}

#[test]
fn a_rust_intent_project_builds_checks_and_replays() {
    rust_project("intent");
}

#[test]
fn a_rust_prompt_project_builds_checks_and_replays() {
    rust_project("prompt");
}

#[test]
fn a_rust_barge_in_project_builds_checks_and_replays() {
    rust_project("barge_in");
}

/// The version `scripts/build-plugins.sh` pins for `variable` (e.g. `COMPONENTIZE_PY_VERSION`).
fn pinned(variable: &str) -> String {
    let script = std::fs::read_to_string(workspace_root().join("scripts/build-plugins.sh"))
        .expect("scripts/build-plugins.sh");
    script
        .lines()
        .find_map(|l| l.strip_prefix(variable)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{variable} is not in scripts/build-plugins.sh"))
        .trim()
        .to_string()
}

/// The install of `tool` (e.g. `componentize-py-0.25.1`) under `target/tools`, installed by
/// `scripts/build-plugins.sh` (building `reference`) when it is not there yet.
fn installed_tool(tool: &str, reference: &str) -> PathBuf {
    let root = workspace_root();
    let dir = root.join("target/tools").join(tool);
    if !dir.join(".installed").is_file() {
        let out = run(Command::new("bash")
            .current_dir(&root)
            .args(["scripts/build-plugins.sh", reference])
            .env_remove("CARGO_TARGET_DIR"));
        succeeded("scripts/build-plugins.sh", &out);
    }
    assert!(
        dir.join(".installed").is_file(),
        "{} missing",
        dir.display()
    );
    dir
}

/// Generates `lang`'s intent project, builds it with the workspace's install of its tool
/// (`env` names it), checks it and replays its sample.
fn interpreted_intent_project(lang: &str, env: &str, tool: PathBuf) {
    let scratch = Scratch::new(lang);
    let name = format!("my-intent-{lang}");
    let dir = generate(&scratch, &name, "intent", lang);
    let out = run(command(dir.join("build.sh"), &scratch)
        .current_dir(&dir)
        .env(env, &tool));
    succeeded("build.sh", &out);
    // The install was reused: nothing was installed into the project.
    assert!(!dir.join(".tools").exists(), "{}", text(&out.stderr));
    let wasm = format!("{name}.wasm");
    assert!(dir.join(&wasm).is_file(), "{}", text(&out.stderr));
    check(&scratch, &dir, &wasm, "intent");
    replay_sample(&scratch, &dir, &wasm, "intent");
}

#[test]
fn a_python_intent_project_builds_and_checks() {
    let tool = installed_tool(
        &format!("componentize-py-{}", pinned("COMPONENTIZE_PY_VERSION")),
        "intent-regex-py",
    );
    interpreted_intent_project("python", "COMPONENTIZE_PY_DIR", tool);
}

#[test]
fn a_js_intent_project_builds_and_checks() {
    let tool = installed_tool(
        &format!("componentize-js-{}", pinned("COMPONENTIZE_JS_VERSION")),
        "intent-keywords-js",
    );
    interpreted_intent_project("js", "COMPONENTIZE_JS_DIR", tool);
}

/// The names of the entries of `dir`.
fn entries(dir: &Path) -> Vec<OsString> {
    let mut names: Vec<OsString> = std::fs::read_dir(dir)
        .expect("readable dir")
        .map(|e| e.expect("dir entry").file_name())
        .collect();
    names.sort();
    names
}

#[test]
fn bad_names_are_refused_in_one_line() {
    let scratch = Scratch::new("bad-name");
    for name in ["My-Policy", "my policy", "../escape", "9lives", "a/b", "fn"] {
        let out = plugins_new(&scratch, scratch.path(), &[name, "--slot", "intent"]);
        let reason = refusal(&out);
        assert!(reason.contains("invalid name"), "{name}: {reason}");
        assert_eq!(out.status.code(), Some(2), "{name}");
    }
    assert!(entries(scratch.path()).is_empty(), "nothing is written");
    // Values outside the lists are clap's to refuse.
    for args in [
        ["ok-name", "--slot", "greeting", "--lang", "rust"],
        ["ok-name", "--slot", "intent", "--lang", "cobol"],
    ] {
        let out = plugins_new(&scratch, scratch.path(), &args);
        assert!(!out.status.success(), "{args:?}");
        assert!(text(&out.stderr).contains("invalid value"), "{args:?}");
    }
    assert!(entries(scratch.path()).is_empty(), "nothing is written");
}

#[test]
fn an_existing_directory_is_refused_in_one_line() {
    let scratch = Scratch::new("existing");
    // Without --dir the project goes into the current directory.
    let out = plugins_new(&scratch, scratch.path(), &["taken", "--slot", "barge_in"]);
    succeeded("voice-host plugins new", &out);
    let dir = scratch.path().join("taken");
    let before = entries(&dir);
    assert!(before.contains(&OsString::from("Cargo.toml")), "{before:?}");
    std::fs::write(dir.join("src/lib.rs"), "// my own work\n").unwrap();

    for lang in ["rust", "python"] {
        let out = plugins_new(
            &scratch,
            scratch.path(),
            &["taken", "--slot", "intent", "--lang", lang],
        );
        let reason = refusal(&out);
        assert!(reason.ends_with("taken already exists"), "{reason}");
    }
    // Nothing was written into it.
    assert_eq!(entries(&dir), before);
    assert_eq!(
        std::fs::read_to_string(dir.join("src/lib.rs")).unwrap(),
        "// my own work\n"
    );
    // A file of that name is refused too.
    std::fs::write(scratch.path().join("file"), "").unwrap();
    let out = plugins_new(&scratch, scratch.path(), &["file", "--slot", "prompt"]);
    assert!(refusal(&out).ends_with("file already exists"));
}
