//! `voice-host plugins replay FILE.wasm RECORDING.jsonl [--against OTHER.wasm]
//! [--max-disagreement PCT]`: runs a component over a recording of plug-in calls
//! (`PLUGIN_RECORD`) and prints what it decided differently, whether it faulted and how long its
//! calls took, so a new version can be judged on real traffic before it is deployed.
//!
//! The configuration (`--config FILE` and the environment) is read as the server reads it: the
//! replay runs under the same limits, and each slot's plug-in gets the same `init`
//! configuration. Exit status: 0 when the replay passes, 1 when a component faulted or more
//! calls disagree than `--max-disagreement` allows (the reason as one line on stderr), 2 when
//! the replay cannot run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::Config;
use crate::plugins::{replay, ReplayOptions};
use crate::server::{barge_in_rules, plugin_settings};

/// Arguments of `plugins replay`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReplayArgs {
    /// The component to run on every recorded call of its slot.
    #[arg(value_name = "FILE.wasm")]
    pub file: PathBuf,
    /// A recording written with PLUGIN_RECORD (plugin-calls.jsonl or a rotated file).
    #[arg(value_name = "RECORDING.jsonl")]
    pub recording: PathBuf,
    /// Compare with this component's decisions instead of the recorded ones.
    #[arg(long, value_name = "OTHER.wasm")]
    pub against: Option<PathBuf>,
    /// Exit with status 1 when more than this percentage of the compared calls disagree.
    #[arg(long, value_name = "PCT", value_parser = percentage)]
    pub max_disagreement: Option<f64>,
}

/// A percentage from 0 to 100.
fn percentage(text: &str) -> Result<f64, String> {
    let pct: f64 = text
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("expected a percentage, got {text:?}"))?;
    if (0.0..=100.0).contains(&pct) {
        Ok(pct)
    } else {
        Err(format!("must be between 0 and 100, got {pct}"))
    }
}

/// Runs the replay and prints its table on stdout.
pub fn run(config_file: Option<&Path>, args: ReplayArgs) -> ExitCode {
    let fail = |status: u8, reason: String| {
        eprintln!("voice-host plugins replay: {reason}");
        ExitCode::from(status)
    };
    let cfg = match Config::load(config_file) {
        Ok(cfg) => cfg,
        Err(e) => return fail(2, format!("config error: {e}")),
    };
    let options = ReplayOptions {
        component: args.file,
        recording: args.recording,
        against: args.against,
        settings: plugin_settings(&cfg),
        barge_in_rules: barge_in_rules(&cfg),
    };
    match replay(&options) {
        Ok(report) => {
            print!("{report}");
            match report.verdict(args.max_disagreement) {
                Ok(()) => ExitCode::SUCCESS,
                Err(reason) => fail(1, reason),
            }
        }
        Err(e) => fail(2, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_are_checked() {
        assert_eq!(percentage("0"), Ok(0.0));
        assert_eq!(percentage("2.5%"), Ok(2.5));
        assert!(percentage("101").is_err());
        assert!(percentage("-1").is_err());
        assert!(percentage("lots").is_err());
    }
}
