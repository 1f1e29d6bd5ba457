//! A loaded plug-in version: compiled, linked, type-checked against its world and self-checked.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::component::Component;

use super::cache::{content_hash, Origin};
use super::deadline;
use super::error::{one_line, PluginError};
use super::faults::FaultWindow;
use super::imports;
use super::instance::{instantiate, InstantiateError};
use super::runtime::Runtime;
use super::usage::Usage;
use super::worlds::World;

/// Identity of a loaded version.
#[derive(Debug, Clone)]
pub(crate) struct VersionInfo {
    /// File stem of the component, e.g. `barge_in_smart`.
    pub name: String,
    pub path: PathBuf,
    /// Hex SHA-256 of the component bytes.
    pub hash: String,
    /// When this version was loaded, in ms since the Unix epoch.
    pub loaded_at_ms: u64,
    pub origin: Origin,
}

impl VersionInfo {
    /// First 12 hex digits of the content hash: the version shown to people.
    pub fn short_hash(&self) -> &str {
        &self.hash[..self.hash.len().min(12)]
    }
}

/// One version of a slot's plug-in, shared by every session that instantiated it.
pub(crate) struct LoadedPlugin<W: World> {
    pub pre: W::Pre,
    pub info: VersionInfo,
    /// `name@short-hash`, the tag on every log line about this version.
    pub label: Arc<str>,
    pub config: Vec<(String, String)>,
    pub faults: FaultWindow,
    /// Registry-wide increasing number; sessions compare it at turn boundaries.
    pub generation: u64,
    /// Linear memory the self-check instance used (instantiation, `init` and one call).
    pub checked_memory: usize,
    /// What this version did in sessions (canary judgement and the admin endpoint).
    pub usage: Usage,
}

/// Reads the file at `path`.
pub(crate) fn read_component<W: World>(path: &Path) -> Result<Vec<u8>, PluginError> {
    std::fs::read(path).map_err(|e| PluginError::Read {
        slot: W::SLOT,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Compiles (or loads from cache), links and validates `bytes` for world `W`, then runs `init`
/// with `config` and a self-check call on a throw-away instance.
pub(crate) fn load<W: World>(
    rt: &Runtime,
    path: &Path,
    bytes: &[u8],
    config: &[(String, String)],
    generation: u64,
) -> Result<Arc<LoadedPlugin<W>>, PluginError> {
    let hash = content_hash(bytes);
    let (component, origin) = rt
        .cache
        .load(&rt.engine.engine, bytes, &hash)
        .map_err(|e| PluginError::Invalid {
            slot: W::SLOT,
            path: path.to_path_buf(),
            reason: one_line(&e),
        })?;
    load_compiled(rt, path, &component, hash, origin, config, generation)
}

/// [`load`] for a component already compiled (`plugins check` tries one against every world).
pub(crate) fn load_compiled<W: World>(
    rt: &Runtime,
    path: &Path,
    component: &Component,
    hash: String,
    origin: Origin,
    config: &[(String, String)],
    generation: u64,
) -> Result<Arc<LoadedPlugin<W>>, PluginError> {
    let invalid = |reason: String| PluginError::Invalid {
        slot: W::SLOT,
        path: path.to_path_buf(),
        reason,
    };
    let linker = imports::linker_for::<W>(&rt.engine.engine, component)
        .map_err(|e| invalid(one_line(&e)))?;
    let instance_pre = linker
        .instantiate_pre(component)
        .map_err(|e| invalid(one_line(&e)))?;
    let pre = W::pre(instance_pre).map_err(|e| invalid(one_line(&e)))?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin")
        .to_string();
    let info = VersionInfo {
        name,
        path: path.to_path_buf(),
        hash,
        loaded_at_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        origin,
    };
    let label: Arc<str> = format!("{}@{}", info.name, info.short_hash()).into();
    let mut plugin = LoadedPlugin {
        faults: FaultWindow::new(rt.limits.quarantine, label.clone()),
        label,
        pre,
        info,
        config: config.to_vec(),
        generation,
        checked_memory: 0,
        usage: Usage::default(),
    };
    plugin.checked_memory = self_check(rt, &plugin).map_err(|reason| PluginError::SelfCheck {
        slot: W::SLOT,
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(Arc::new(plugin))
}

/// Instantiates, `init`s and calls a throw-away instance; returns the memory it used.
fn self_check<W: World>(rt: &Runtime, plugin: &LoadedPlugin<W>) -> Result<usize, String> {
    let mut live = instantiate(rt, plugin).map_err(|e| match e {
        InstantiateError::PoolExhausted => "the instance pool is full".to_string(),
        InstantiateError::Fault(kind, reason) => format!("{}: {reason}", kind.as_str()),
    })?;
    let _ticking = deadline::arm(&mut live.store, rt.limits.init_budget, &rt.engine);
    live.bindings
        .self_check(&mut live.store)
        .map_err(|e| one_line(&e))?;
    Ok(live.store.data().peak_memory)
}
