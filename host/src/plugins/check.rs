//! `voice-host plugins check FILE.wasm`: which slot(s) a component fits.

use std::fmt;
use std::path::{Path, PathBuf};

use super::bindings::{barge_in, intent, prompt};
use super::cache::content_hash;
use super::error::PluginError;
use super::loaded::load;
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
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} (sha256 {})",
            self.path.display(),
            &self.hash[..12.min(self.hash.len())]
        )?;
        for slot in &self.fits {
            writeln!(
                f,
                "  fits slot {slot} (world voice:policy/{}@0.1.0)",
                slot.world()
            )?;
        }
        for (slot, reason) in &self.rejected {
            writeln!(f, "  not {slot}: {reason}")?;
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
        ..PluginSettings::default()
    };
    let rt = Runtime::new(&settings)?;
    let mut report = CheckReport {
        path: path.to_path_buf(),
        hash: content_hash(&bytes),
        fits: Vec::new(),
        rejected: Vec::new(),
    };
    try_world::<intent::IntentAnalyzer>(&rt, path, &bytes, &mut report);
    try_world::<prompt::PromptShaper>(&rt, path, &bytes, &mut report);
    try_world::<barge_in::BargeInPolicy>(&rt, path, &bytes, &mut report);
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

fn try_world<W: World>(rt: &Runtime, path: &Path, bytes: &[u8], report: &mut CheckReport) {
    match load::<W>(rt, path, bytes, &[], 0) {
        Ok(_) => report.fits.push(W::SLOT),
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
