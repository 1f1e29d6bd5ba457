//! Compiled components, cached on disk as precompiled artifacts keyed by the component's content
//! hash and the engine's compatibility hash, so a restart does not recompile.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

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

/// Compiles components, reusing precompiled artifacts from `dir` when present.
pub(crate) struct ComponentCache {
    dir: Option<PathBuf>,
}

impl ComponentCache {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// The component for `bytes` (whose hash is `hash`), from the cache or compiled.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        hash: &str,
    ) -> wasmtime::Result<(Component, Origin)> {
        let Some(path) = self.artifact_path(engine, hash) else {
            return Ok((Component::new(engine, bytes)?, Origin::Compiled));
        };
        if path.is_file() {
            // SAFETY: the artifact was written by this program's own `serialize` into the cache
            // directory (content-addressed, renamed into place only once complete), and
            // wasmtime checks its engine compatibility header before using it.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, Origin::Cache)),
                Err(err) => tracing::warn!(
                    path = %path.display(),
                    error = %super::error::one_line(&err),
                    "precompiled plug-in unusable; recompiling"
                ),
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(err) = store_artifact(&component, &path) {
            tracing::warn!(path = %path.display(), error = %err, "cannot cache compiled plug-in");
        }
        Ok((component, Origin::Compiled))
    }

    fn artifact_path(&self, engine: &Engine, hash: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Some(dir.join(format!("{hash}-{:016x}.cwasm", hasher.finish())))
    }
}

fn store_artifact(component: &Component, path: &Path) -> Result<(), String> {
    let bytes = component
        .serialize()
        .map_err(|e| super::error::one_line(&e))?;
    let dir = path.parent().ok_or("cache path has no directory")?;
    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("artifact"),
        std::process::id()
    ));
    fs::write(&tmp, &bytes).map_err(|e| e.to_string())?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        e.to_string()
    })
}
