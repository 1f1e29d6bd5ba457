//! Compiled components, cached on disk as precompiled artifacts keyed by the component's content
//! hash and the engine's compatibility hash, so a restart does not recompile. Artifacts are
//! native code: each carries a MAC and only a trusted directory is used (see `cache_dir.rs`).

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use super::cache_dir::{TrustedDir, MAC_LEN};

/// Hex SHA-256 of a component's bytes: its version identity.
pub(crate) fn content_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// How a component was obtained, for logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Loaded from the precompiled cache.
    Cache,
    /// Compiled now (and written to the cache when one is configured).
    Compiled,
}

impl Origin {
    /// Both origins, in the order of their per-slot load counters.
    pub const ALL: [Origin; 2] = [Origin::Cache, Origin::Compiled];

    /// The name in `plugins list`, the admin listing and the `origin` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Cache => "cache",
            Origin::Compiled => "compiled",
        }
    }
}

/// Compiles components, reusing precompiled artifacts from a trusted directory when present.
/// An artifact is stored with an HMAC-SHA256 tag (see `cache_dir.rs`); one whose tag does not
/// verify is recompiled and overwritten, never deserialized.
pub(crate) struct ComponentCache {
    dir: Option<TrustedDir>,
}

impl ComponentCache {
    /// A cache in `dir`, or none when `dir` is `None` or fails the ownership and mode checks
    /// (logged once, as a warning).
    pub fn open(dir: Option<PathBuf>) -> Self {
        let dir = dir.and_then(|d| match TrustedDir::open(&d) {
            Ok(trusted) => Some(trusted),
            Err(reason) => {
                tracing::warn!(
                    dir = %d.display(),
                    reason,
                    "plug-in cache directory refused; plug-ins are compiled at every start"
                );
                None
            }
        });
        Self { dir }
    }

    /// Whether compiled components are cached on disk.
    #[cfg(test)]
    pub fn is_enabled(&self) -> bool {
        self.dir.is_some()
    }

    /// The component for `bytes` (whose hash is `hash`), from the cache or compiled.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        hash: &str,
    ) -> wasmtime::Result<(Component, Origin)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, bytes)?, Origin::Compiled));
        };
        let name = artifact_name(engine, hash);
        let path = dir.path.join(&name);
        if let Some(component) = read_artifact(engine, dir, &name, &path) {
            return Ok((component, Origin::Cache));
        }
        let component = Component::new(engine, bytes)?;
        if let Err(err) = store_artifact(&component, dir, &name, &path) {
            tracing::warn!(path = %path.display(), error = %err, "cannot cache compiled plug-in");
        }
        Ok((component, Origin::Compiled))
    }
}

fn artifact_name(engine: &Engine, hash: &str) -> String {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{hash}-{:016x}.cwasm", hasher.finish())
}

/// The cached component at `path`, if there is one and its MAC verifies.
fn read_artifact(engine: &Engine, dir: &TrustedDir, name: &str, path: &Path) -> Option<Component> {
    // Read once into memory: what is verified is what is deserialized.
    let file = fs::read(path).ok()?;
    let split = file.len().checked_sub(MAC_LEN)?;
    let (artifact, tag) = file.split_at(split);
    if !dir.verify(name, artifact, tag) {
        tracing::warn!(
            path = %path.display(),
            "precompiled plug-in fails its MAC check; recompiling"
        );
        return None;
    }
    // SAFETY: the bytes carry a valid MAC under this host's cache key, so this program's own
    // `serialize` produced them; wasmtime also checks the engine compatibility header.
    match unsafe { Component::deserialize(engine, artifact) } {
        Ok(component) => Some(component),
        Err(err) => {
            tracing::warn!(
                path = %path.display(),
                error = %super::error::one_line(&err),
                "precompiled plug-in unusable; recompiling"
            );
            None
        }
    }
}

fn store_artifact(
    component: &Component,
    dir: &TrustedDir,
    name: &str,
    path: &Path,
) -> Result<(), String> {
    let mut bytes = component
        .serialize()
        .map_err(|e| super::error::one_line(&e))?;
    let tag = dir.mac(name, &bytes);
    bytes.extend_from_slice(&tag);
    let tmp = dir.path.join(format!(".{name}.{}.tmp", std::process::id()));
    fs::write(&tmp, &bytes).map_err(|e| e.to_string())?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        e.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The smallest component: the preamble of an empty one.
    const EMPTY_COMPONENT: &[u8] = &[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

    fn temp(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("voice-host-cache-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn only_artifact(dir: &Path) -> PathBuf {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .expect("an artifact was written")
    }

    #[test]
    fn tampered_artifact_is_recompiled_not_loaded() {
        let dir = temp("tamper");
        let engine = Engine::default();
        let hash = content_hash(EMPTY_COMPONENT);
        let cache = ComponentCache::open(Some(dir.clone()));
        assert!(cache.is_enabled());
        let (_, origin) = cache.load(&engine, EMPTY_COMPONENT, &hash).unwrap();
        assert_eq!(origin, Origin::Compiled);
        let (_, origin) = cache.load(&engine, EMPTY_COMPONENT, &hash).unwrap();
        assert_eq!(origin, Origin::Cache, "an intact artifact is reused");

        let path = only_artifact(&dir);
        let good = fs::read(&path).unwrap();
        let mut bad = good.clone();
        bad[good.len() / 2] ^= 0x01;
        fs::write(&path, &bad).unwrap();
        let (_, origin) = cache.load(&engine, EMPTY_COMPONENT, &hash).unwrap();
        assert_eq!(
            origin,
            Origin::Compiled,
            "a flipped byte is never deserialized"
        );
        assert!(
            dir_verifies(&dir, &path),
            "the recompiled artifact replaced the tampered one"
        );

        // An artifact from elsewhere (a valid serialisation without this host's MAC).
        let foreign = Component::new(&engine, EMPTY_COMPONENT)
            .unwrap()
            .serialize()
            .unwrap();
        let mut forged = foreign.clone();
        forged.extend_from_slice(&[0u8; MAC_LEN]);
        fs::write(&path, &forged).unwrap();
        let (_, origin) = cache.load(&engine, EMPTY_COMPONENT, &hash).unwrap();
        assert_eq!(origin, Origin::Compiled, "a MAC mismatch is recompiled");
        fs::remove_dir_all(&dir).unwrap();
    }

    fn dir_verifies(dir: &Path, path: &Path) -> bool {
        let trusted = TrustedDir::open(dir).unwrap();
        let file = fs::read(path).unwrap();
        let (artifact, tag) = file.split_at(file.len() - MAC_LEN);
        let name = path.file_name().unwrap().to_str().unwrap();
        trusted.verify(name, artifact, tag)
    }

    #[test]
    fn world_writable_directory_disables_the_cache() {
        let dir = temp("world");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let cache = ComponentCache::open(Some(dir.clone()));
        assert!(!cache.is_enabled());
        let engine = Engine::default();
        let hash = content_hash(EMPTY_COMPONENT);
        let (_, origin) = cache.load(&engine, EMPTY_COMPONENT, &hash).unwrap();
        assert_eq!(origin, Origin::Compiled);
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            0,
            "nothing written there"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
