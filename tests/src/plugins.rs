//! Plug-in components for server-level tests: the copies `scripts/build-plugins.sh` put in
//! `plugins/dist` when they are newer than every source they come from, otherwise built on
//! demand, so a plain `cargo test` after editing a plug-in or a WIT file never runs a stale build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `bytes` with `old`, which must occur exactly once, replaced by `new` of the same length: a
/// variant of a built component whose every offset stays (another default text, another
/// decision name), without a second build.
pub fn patched(bytes: &[u8], old: &str, new: &str) -> Vec<u8> {
    assert_eq!(old.len(), new.len(), "{old:?} and {new:?} differ in length");
    let at: Vec<usize> = bytes
        .windows(old.len())
        .enumerate()
        .filter(|(_, w)| *w == old.as_bytes())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "{old:?} appears once in the component");
    let mut out = bytes.to_vec();
    out[at[0]..at[0] + new.len()].copy_from_slice(new.as_bytes());
    out
}

/// The component of plug-in `name` (a crate under `plugins/` or a Python plug-in under
/// `plugins/python/`), e.g. `prompt-persona` -> `plugins/dist/prompt_persona.wasm`.
pub fn component(name: &str) -> PathBuf {
    let root = workspace_root();
    let file = format!("{}.wasm", name.replace('-', "_"));
    let built = root.join("plugins/dist").join(&file);
    let sources = [
        root.join("plugins").join(name),
        root.join("plugins/python").join(name),
        root.join("wit"),
    ];
    if is_newer_than_all(&built, &sources) {
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

/// Puts `bytes` at `path` the way a deployment should: written beside it, then renamed over it,
/// so a reload never reads half a file.
pub fn install(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("wasm.tmp");
    std::fs::write(&tmp, bytes).expect("write the plug-in");
    std::fs::rename(&tmp, path).expect("rename the plug-in into place");
}

/// Calls the admin API of the host at `addr` (`GET /admin/plugins`, `POST
/// /admin/plugins/reload`) with the bearer `token`; returns the status and the JSON body
/// (`null` when there is none).
pub async fn admin(
    addr: std::net::SocketAddr,
    token: &str,
    method: &str,
    path: &str,
) -> (u16, serde_json::Value) {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}{path}");
    let req = if method == "POST" {
        client.post(url)
    } else {
        client.get(url)
    };
    let resp = req.bearer_auth(token).send().await.expect("admin request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// Calls the admin API with any method and an optional JSON body (the shadow and canary
/// endpoints); returns the status and the JSON body (`null` when there is none).
pub async fn admin_with(
    addr: std::net::SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut req = reqwest::Client::new()
        .request(method, format!("http://{addr}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("admin request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// The entry of `slot` in a `GET /admin/plugins` body.
pub fn slot_entry<'a>(listing: &'a serde_json::Value, slot: &str) -> &'a serde_json::Value {
    listing["slots"]
        .as_array()
        .expect("slot list")
        .iter()
        .find(|s| s["slot"] == slot)
        .unwrap_or_else(|| panic!("no {slot} slot in {listing}"))
}

/// The version loaded in `slot`, from a `GET /admin/plugins` body.
pub fn version(listing: &serde_json::Value, slot: &str) -> String {
    let slots = listing
        .as_array()
        .or_else(|| listing["slots"].as_array())
        .expect("slot list");
    let entry = slots
        .iter()
        .find(|s| s["slot"] == slot)
        .unwrap_or_else(|| panic!("no {slot} slot in {listing}"));
    entry["version"].as_str().unwrap_or_default().to_string()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("the plug-in build runs");
    assert!(
        out.status.success(),
        "building a plug-in failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether `file` exists and was written after every file under `sources` (missing source
/// directories are ignored).
fn is_newer_than_all(file: &Path, sources: &[PathBuf]) -> bool {
    let Ok(built) = std::fs::metadata(file).and_then(|m| m.modified()) else {
        return false;
    };
    sources
        .iter()
        .all(|dir| newest_under(dir).is_none_or(|newest| newest <= built))
}

/// The newest modification time of the files under `path` (itself when a file); build outputs
/// and caches are not sources.
fn newest_under(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            !matches!(name.to_str(), Some("target" | "__pycache__" | ".venv"))
        })
        .filter_map(|e| newest_under(&e.path()))
        .max()
}

/// The lines of the plug-in call recording in `dir` (`PLUGIN_RECORD`), parsed; none when the
/// file is not written yet.
pub fn recorded_calls(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("plugin-calls.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_older_than_a_source_is_stale() {
        let dir = std::env::temp_dir().join(format!("voice-plugin-fresh-{}", std::process::id()));
        let src = dir.join("src");
        std::fs::create_dir_all(&src).unwrap();
        let built = dir.join("built.wasm");
        std::fs::write(&built, b"wasm").unwrap();
        let old = SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&built)
            .unwrap()
            .set_modified(old)
            .unwrap();
        std::fs::write(src.join("lib.rs"), b"// edited").unwrap();
        assert!(!is_newer_than_all(&built, std::slice::from_ref(&src)));
        assert!(!is_newer_than_all(&dir.join("missing.wasm"), &[]));
        std::fs::File::options()
            .write(true)
            .open(&built)
            .unwrap()
            .set_modified(SystemTime::now() + std::time::Duration::from_secs(60))
            .unwrap();
        assert!(is_newer_than_all(&built, &[src, dir.join("no-such-dir")]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
