//! `voice-host plugins check FILE.wasm`: which slot(s) a component fits.

use std::fmt;
use std::path::{Path, PathBuf};

use wasmtime::component::Component;

use super::bindings::{barge_in, intent, prompt, turn};
use super::cache::{content_hash, Origin};
use super::error::{one_line, PluginError};
use super::loaded::load_compiled;
use super::runtime::Runtime;
use super::settings::{PluginSettings, Slot};
use super::worlds::World;

/// Result of checking one component.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The component checked.
    pub path: PathBuf,
    /// Hex SHA-256 of the file.
    pub hash: String,
    /// Slots the component fits (exports match the world, `init` with an empty configuration
    /// and a self-check call succeed).
    pub fits: Vec<Slot>,
    /// Why it does not fit each other slot.
    pub rejected: Vec<(Slot, String)>,
    /// Most linear memory an instance used while loading (instantiation, `init` with an empty
    /// configuration and the self-check call), in bytes.
    pub memory_bytes: u64,
    /// Names the component imports (e.g. `wasi:cli/environment@0.2.0`), in its order.
    pub imports: Vec<String>,
    /// Names the component exports (e.g. `analyze`).
    pub exports: Vec<String>,
}

/// Memory cap of the trial instances: enough for an interpreter, so the report can say what a
/// component needs instead of only that it does not fit the default cap.
const CHECK_MEMORY_LIMIT: u64 = 512 * 1024 * 1024;

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} (sha256 {})",
            self.path.display(),
            &self.hash[..12.min(self.hash.len())]
        )?;
        for slot in &self.fits {
            writeln!(f, "  fits slot {slot} (world {})", slot.qualified_world())?;
        }
        for (slot, reason) in &self.rejected {
            writeln!(f, "  not {slot}: {reason}")?;
        }
        if !self.fits.is_empty() {
            let default = PluginSettings::default().memory_limit_bytes;
            let mib = |b: u64| b.div_ceil(1024 * 1024);
            write!(f, "  memory: {} MiB at load", mib(self.memory_bytes))?;
            if self.memory_bytes > default {
                write!(
                    f,
                    "; over the default cap of {} MiB: set PLUGIN_MEMORY_MB above {} \
                     (with room for what its calls allocate)",
                    mib(default),
                    mib(self.memory_bytes)
                )?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Checks `path` against every world. Fails when the file cannot be read or fits no world.
pub fn check_component(path: &Path) -> Result<CheckReport, PluginError> {
    let bytes = std::fs::read(path).map_err(|e| PluginError::Check {
        path: path.to_path_buf(),
        reason: format!("cannot read: {e}"),
    })?;
    let settings = PluginSettings {
        max_sessions: 1,
        cache_dir: None,
        watch: false,
        // A check runs once, cold: allow more time than a session's call.
        call_deadline_ms: 100,
        memory_limit_bytes: CHECK_MEMORY_LIMIT,
        ..PluginSettings::default()
    };
    let rt = Runtime::new(&settings)?;
    let mut report = CheckReport {
        path: path.to_path_buf(),
        hash: content_hash(&bytes),
        fits: Vec::new(),
        rejected: Vec::new(),
        memory_bytes: 0,
        imports: Vec::new(),
        exports: Vec::new(),
    };
    // Compiled once, tried against every world.
    let (component, origin) = rt
        .cache
        .load(&rt.engine.engine, &bytes, &report.hash)
        .map_err(|e| PluginError::Check {
            path: path.to_path_buf(),
            reason: one_line(&e),
        })?;
    let ty = component.component_type();
    let engine = &rt.engine.engine;
    report.imports = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    report.exports = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    try_world::<intent::IntentAnalyzer>(&rt, path, &component, origin, &mut report);
    try_world::<prompt::PromptShaper>(&rt, path, &component, origin, &mut report);
    try_world::<barge_in::BargeInPolicy>(&rt, path, &component, origin, &mut report);
    try_world::<turn::EndOfTurnPolicy>(&rt, path, &component, origin, &mut report);
    if report.fits.is_empty() {
        let reasons: Vec<String> = report
            .rejected
            .iter()
            .map(|(slot, reason)| format!("{slot}: {reason}"))
            .collect();
        return Err(PluginError::Check {
            path: path.to_path_buf(),
            reason: format!("fits no voice:policy world ({})", reasons.join("; ")),
        });
    }
    Ok(report)
}

fn try_world<W: World>(
    rt: &Runtime,
    path: &Path,
    component: &Component,
    origin: Origin,
    report: &mut CheckReport,
) {
    let hash = report.hash.clone();
    match load_compiled::<W>(rt, path, component, hash, origin, &[], 0) {
        Ok(plugin) => {
            report.fits.push(W::SLOT);
            report.memory_bytes = report.memory_bytes.max(plugin.checked_memory as u64);
        }
        Err(err) => report.rejected.push((W::SLOT, short_reason(&err))),
    }
}

/// The error without its "plug-in <slot>: <path>" prefix, which the report already shows.
fn short_reason(err: &PluginError) -> String {
    match err {
        PluginError::Invalid { reason, .. } | PluginError::SelfCheck { reason, .. } => {
            reason.clone()
        }
        other => other.to_string(),
    }
}
