//! `voice-host plugins push FILE oci://...` and `plugins check oci://...`: publishing a component
//! to an OCI registry and checking one there, with the registry settings of the configuration
//! (`PLUGIN_OCI_INSECURE`, `PLUGIN_OCI_USERNAME`, `PLUGIN_OCI_PASSWORD`).

use std::path::Path;

use crate::config::Config;
use crate::plugins::oci::{self, OciSettings};

/// The registry settings of the configuration (file and environment).
fn settings(config_file: Option<&Path>) -> Result<OciSettings, String> {
    let cfg = Config::load(config_file).map_err(|e| format!("config error: {e}"))?;
    Ok(crate::server::plugin_settings(&cfg).oci)
}

/// Checks `file` (a component, or `oci://...`, pulled first) against every slot; returns the
/// report to print.
pub fn check(config_file: Option<&Path>, file: &Path) -> Result<String, String> {
    let target = file.to_string_lossy();
    if !target.starts_with(oci::SCHEME) {
        let report = crate::plugins::check_component(file).map_err(|e| e.to_string())?;
        return Ok(report.to_string());
    }
    let settings = settings(config_file)?;
    let pulled = oci::pull_for_check(&settings, &target).map_err(|e| format!("{target}: {e}"))?;
    let report = crate::plugins::check_component(&pulled.file).map_err(|e| e.to_string())?;
    Ok(format!("{target} ({})\n{report}", pulled.digest))
}

/// Publishes `file` as `target`; returns the line to print (the pinned reference pushed).
pub fn push(config_file: Option<&Path>, file: &Path, target: &str) -> Result<String, String> {
    let settings = settings(config_file)?;
    let pinned = oci::push(&settings, file, target)?;
    Ok(format!("pushed {target}\n{pinned}"))
}
