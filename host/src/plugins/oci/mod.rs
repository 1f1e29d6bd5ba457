//! Plug-ins published in OCI registries: a slot may name `oci://REGISTRY/REPOSITORY:TAG` (rolled
//! to whatever the tag names, checked every `PLUGIN_POLL_S`) or `...@sha256:DIGEST` (frozen).
//!
//! A version is pulled as a wasm OCI artifact (`artifact.rs`), verified against its digests,
//! kept on disk under the digest of its bytes (`store.rs`) and then loaded like a file: the
//! registry validates and self-checks it and hot-swaps it in, so a moved tag rolls out exactly
//! like a changed file. A failed pull or a broken artifact keeps the running version and says why
//! in `/readyz`, the admin listing and the log (`tracked.rs`). `voice-host plugins push` publishes
//! a component in the same layout.

mod artifact;
mod client;
mod follow;
mod reference;
mod store;
mod tracked;

pub use artifact::{Publication, WORLD_ANNOTATION};
pub use client::OciSettings;
pub(crate) use client::Registries;
pub(crate) use follow::spawn_follower;
pub use reference::{OciSource, SCHEME};
pub use store::Pulled;
pub(crate) use tracked::Tracked;

use std::path::{Path, PathBuf};

/// Where pulled components are kept: beside the compiled-code cache, else in the temp dir.
pub(crate) fn store_dir(cache_dir: Option<&Path>) -> PathBuf {
    match cache_dir {
        Some(dir) => dir.join("oci"),
        None => std::env::temp_dir().join("voice-host-oci"),
    }
}

/// Pulls what `source` names now; when the registry cannot be reached, the version it named
/// when last pulled, if stored intact (with the reason it is not fresh).
pub(crate) fn first_pull(
    registries: &Registries,
    source: &OciSource,
) -> Result<(Pulled, Option<String>), String> {
    match registries.fetch(source) {
        Ok(pulled) => Ok((pulled, None)),
        Err(reason) => match registries.last_known(source) {
            Some(pulled) => {
                tracing::warn!(
                    source = %source,
                    error = %reason,
                    digest = %pulled.digest,
                    "cannot pull the plug-in; starting with the copy pulled before"
                );
                Ok((pulled, Some(reason)))
            }
            None => Err(reason),
        },
    }
}

/// Publishes the component at `file` as `target`, recording the worlds `plugins check` found it
/// fits; returns `oci://...@sha256:...` of what was pushed.
pub fn push(settings: &OciSettings, file: &Path, target: &str) -> Result<String, String> {
    let source = OciSource::parse(target)?;
    let report = super::check_component(file).map_err(|e| e.to_string())?;
    let bytes = std::fs::read(file).map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
    let worlds: Vec<String> = report
        .fits
        .iter()
        .map(|slot| slot.qualified_world())
        .collect();
    let file_name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("component.wasm");
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let registries = Registries::new(settings.clone(), cli_store());
    let digest = registries.push(
        &source,
        Publication {
            bytes,
            file_name,
            worlds: &worlds,
            imports: &report.imports,
            exports: &report.exports,
            created: &created,
        },
    )?;
    let reference = &source.reference;
    Ok(format!(
        "oci://{}/{}@{digest}",
        reference.registry(),
        reference.repository()
    ))
}

/// Pulls `source` into the host's store and returns the component file (`plugins check
/// oci://...`): a component checked on a host is there when the server on it pulls it.
pub fn pull_for_check(settings: &OciSettings, source: &str) -> Result<Pulled, String> {
    let source = OciSource::parse(source)?;
    Registries::new(settings.clone(), cli_store()).fetch(&source)
}

/// The store the server uses by default (the commands have no configured cache directory).
fn cli_store() -> PathBuf {
    store_dir(super::default_cache_dir().as_deref())
}
