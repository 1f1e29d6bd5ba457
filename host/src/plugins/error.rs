//! Errors of the plug-in runtime. Messages are one line and name the slot and file involved.

use std::path::PathBuf;

use super::settings::Slot;

/// Why a plug-in could not be loaded, checked or reloaded.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The component file could not be read.
    #[error("plug-in {slot}: cannot read {}: {reason}", path.display())]
    Read {
        slot: Slot,
        path: PathBuf,
        reason: String,
    },
    /// The file is not a valid component, or does not target the slot's world.
    #[error("plug-in {slot}: {} is not a valid {} component: {reason}", path.display(), slot.world())]
    Invalid {
        slot: Slot,
        path: PathBuf,
        reason: String,
    },
    /// `init` refused the configuration or the self-check call failed.
    #[error("plug-in {slot}: {} failed its self-check: {reason}", path.display())]
    SelfCheck {
        slot: Slot,
        path: PathBuf,
        reason: String,
    },
    /// A slot's `oci://` source is malformed, or could not be pulled (and no earlier copy is
    /// stored).
    #[error("plug-in {slot}: {reason}")]
    Source { slot: Slot, reason: String },
    /// A component checked outside of a slot fits no world.
    #[error("{}: {reason}", path.display())]
    Check { path: PathBuf, reason: String },
    /// The runtime itself could not start (engine or pool configuration).
    #[error("plug-in runtime: {0}")]
    Runtime(String),
    /// A canary operation named a slot that has no canary running.
    #[error("plug-in {0}: no canary version is running")]
    NoCanary(Slot),
}

/// One line of an error chain, without newlines, bounded in length.
pub(crate) fn one_line(err: &wasmtime::Error) -> String {
    // The cause comes first: a trap's wasm backtrace is long and would push it past the cut.
    let cause = err.root_cause().to_string();
    let full = format!("{err:#}");
    let text = if full.starts_with(&cause) {
        full
    } else {
        format!("{cause}; {full}")
    };
    let mut line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > 300 {
        let mut cut = 300;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_puts_the_cause_first_and_stays_bounded() {
        let err =
            wasmtime::Error::msg("unknown import: `wasi:cli/environment` has not been defined")
                .context(format!(
                    "error while executing at wasm backtrace:\n{}",
                    "  0: frame\n".repeat(80)
                ));
        let line = one_line(&err);
        assert!(
            line.starts_with("unknown import: `wasi:cli/environment`"),
            "{line}"
        );
        assert!(!line.contains('\n'));
        assert!(line.chars().count() <= 301, "{}", line.len());
    }
}
