//! `voice-host plugins replay`: a component run on every recorded call of its slot (see
//! `record/`), to learn before deploying it whether it decides as the recorded version did (or
//! as another component does) and whether it faults.
//!
//! The replay uses the server's own runtime: the same engine configuration, memory cap, call
//! deadline, fallback and clamping (the calls go through the session's plug-in behaviours).
//! Only the fault limits differ: a replay never benches a session or quarantines the version,
//! so every recorded input is really tried. Each recorded session (one plug-in instance) gets a
//! fresh instance and its calls in recorded order, so a plug-in that keeps state sees the same
//! sequence; where the recording shows a fault (after which the server used a fresh instance)
//! the replay starts a fresh instance too.

mod recording;
mod report;
mod slots;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use wasmtime::component::Component;

pub use report::{Disagreement, ReplayReport, SideReport, MAX_LISTED};

use crate::behaviour::defaults::BargeInRules;

use super::cache::{content_hash, Origin};
use super::error::{one_line, PluginError};
use super::instance::{Fallback, SlotInstance};
use super::loaded::{load_compiled, LoadedPlugin};
use super::record::Outcome;
use super::runtime::Runtime;
use super::settings::{PluginSettings, Slot};
use super::worlds::World;
use recording::{RawLine, Recording};
use slots::{BargeInDriver, Driver, HostRules, IntentDriver, PromptDriver, TurnDriver};

/// What to replay, and the host configuration to replay it under.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The component to run.
    pub component: PathBuf,
    /// The recording (`plugin-calls.jsonl` or a rotated one).
    pub recording: PathBuf,
    /// Compare with this component instead of with the recording.
    pub against: Option<PathBuf>,
    /// The plug-in runtime's settings as the server builds them (limits, and the slots'
    /// configuration passed to `init`).
    pub settings: PluginSettings,
    /// The built-in barge-in rules (the barge-in fallback).
    pub barge_in_rules: BargeInRules,
}

/// A component compiled once, tried against the slots' worlds.
struct Compiled {
    path: PathBuf,
    component: Component,
    hash: String,
    origin: Origin,
}

impl Compiled {
    fn new(rt: &Runtime, path: &Path) -> Result<Self, PluginError> {
        let problem = |reason: String| PluginError::Check {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| problem(format!("cannot read: {e}")))?;
        let hash = content_hash(&bytes);
        let (component, origin) = rt
            .cache
            .load(&rt.engine.engine, &bytes, &hash)
            .map_err(|e| problem(one_line(&e)))?;
        Ok(Self {
            path: path.to_path_buf(),
            component,
            hash,
            origin,
        })
    }

    /// The component as a loaded version of `W`'s slot, `init`-ed with that slot's
    /// configuration and self-checked, as the server loads it.
    fn load<W: World>(
        &self,
        rt: &Runtime,
        settings: &PluginSettings,
    ) -> Result<Arc<LoadedPlugin<W>>, String> {
        let config = &settings.slot(W::SLOT).config;
        load_compiled::<W>(
            rt,
            &self.path,
            &self.component,
            self.hash.clone(),
            self.origin,
            config,
            0,
        )
        .map_err(|e| match e {
            PluginError::Invalid { reason, .. } | PluginError::SelfCheck { reason, .. } => reason,
            other => other.to_string(),
        })
    }
}

/// Runs the replay. Fails (one line) when a file cannot be read, the component fits none of
/// the slots in the recording, or `--against` does not fit the same slot.
pub fn replay(options: &ReplayOptions) -> Result<ReplayReport, PluginError> {
    let settings = PluginSettings {
        // One session's instances at a time, plus the self-checks.
        max_sessions: 2,
        watch: false,
        record: None,
        // Every recorded input is tried: no benching, no quarantine.
        session_fault_limit: u32::MAX,
        quarantine_sessions: u32::MAX,
        ..options.settings.clone()
    };
    let rt = Runtime::new(&settings)?;
    let recording = Recording::read(&options.recording).map_err(|e| PluginError::Check {
        path: options.recording.clone(),
        reason: format!("cannot read: {e}"),
    })?;
    let slots = recording.slots();
    if slots.is_empty() {
        return Err(PluginError::Check {
            path: options.recording.clone(),
            reason: "no recorded plug-in calls".into(),
        });
    }
    let component = Compiled::new(&rt, &options.component)?;
    let against = options
        .against
        .as_deref()
        .map(|p| Compiled::new(&rt, p))
        .transpose()?;
    let job = Job {
        rt: &rt,
        settings: &settings,
        recording: &recording,
        recording_path: &options.recording,
        component: &component,
        against: against.as_ref(),
        rules: HostRules {
            barge_in: options.barge_in_rules,
            max_tokens: settings.prompt_max_tokens,
        },
    };
    let mut misfits = Vec::new();
    for slot in slots {
        let outcome = match slot {
            Slot::Intent => job.run::<IntentDriver>(),
            Slot::Prompt => job.run::<PromptDriver>(),
            Slot::BargeIn => job.run::<BargeInDriver>(),
            Slot::Turn => job.run::<TurnDriver>(),
        };
        match outcome {
            Ok(report) => return Ok(report),
            Err(Failure::Misfit(reason)) => misfits.push(format!("{slot}: {reason}")),
            Err(Failure::Fatal(e)) => return Err(e),
        }
    }
    Err(PluginError::Check {
        path: options.component.clone(),
        reason: format!(
            "fits no slot recorded in {} ({})",
            options.recording.display(),
            misfits.join("; ")
        ),
    })
}

/// Why a slot was not replayed.
enum Failure {
    /// The component does not fit this slot (another recorded slot may fit).
    Misfit(String),
    /// The replay cannot run.
    Fatal(PluginError),
}

/// One replay's inputs.
struct Job<'a> {
    rt: &'a Arc<Runtime>,
    settings: &'a PluginSettings,
    recording: &'a Recording,
    recording_path: &'a Path,
    component: &'a Compiled,
    against: Option<&'a Compiled>,
    rules: HostRules,
}

impl Job<'_> {
    /// Replays the calls of `D`'s slot.
    fn run<D: Driver>(&self) -> Result<ReplayReport, Failure> {
        let slot = D::W::SLOT;
        let primary = self
            .component
            .load::<D::W>(self.rt, self.settings)
            .map_err(Failure::Misfit)?;
        let other = match self.against {
            None => None,
            Some(c) => Some(c.load::<D::W>(self.rt, self.settings).map_err(|reason| {
                Failure::Fatal(PluginError::Check {
                    path: c.path.clone(),
                    reason: format!("--against does not fit slot {slot}: {reason}"),
                })
            })?),
        };
        let groups = self.recording.sessions(slot);
        let mut report = ReplayReport {
            slot,
            recording: self.recording_path.to_path_buf(),
            component: SideReport::new(self.component.path.clone(), primary.label.to_string()),
            against: other
                .as_ref()
                .map(|o| SideReport::new(o.info.path.clone(), o.label.to_string())),
            calls: 0,
            sessions: groups.len() as u64,
            compared: 0,
            agreed: 0,
            recorded_fallbacks: 0,
            masked: 0,
            unreadable: self.recording.unreadable,
            other_slots: self
                .recording
                .lines
                .iter()
                .filter(|l| l.slot != slot)
                .count() as u64,
            disagreements: Vec::new(),
        };
        for group in groups {
            let Some(first) = group.first() else { continue };
            let session: Arc<str> = first.session.as_str().into();
            let mut mine = D::new(
                SlotInstance::new(self.rt.clone(), primary.clone(), session.clone()),
                &self.rules,
            );
            let mut theirs = other.as_ref().map(|o| {
                D::new(
                    SlotInstance::new(self.rt.clone(), o.clone(), session.clone()),
                    &self.rules,
                )
            });
            for line in group {
                self.replay_call(line, &mut mine, theirs.as_mut(), &mut report);
            }
        }
        Ok(report)
    }

    /// Replays one recorded call on both sides and compares the decisions.
    fn replay_call<D: Driver>(
        &self,
        line: &RawLine,
        mine: &mut D,
        theirs: Option<&mut D>,
        report: &mut ReplayReport,
    ) {
        let Ok(input) = serde_json::from_value::<D::Input>(line.input.clone()) else {
            report.unreadable += 1;
            return;
        };
        report.calls += 1;
        report.masked += u64::from(line.masked);
        let keep_text = !line.masked;
        let got = timed(mine, &input, line.turn, keep_text, &mut report.component);
        let expected = match (theirs, report.against.as_mut()) {
            (Some(theirs), Some(side)) => {
                let theirs_got = timed(theirs, &input, line.turn, keep_text, side);
                restart_after_recorded_fault(line, theirs);
                Some(theirs_got)
            }
            _ if line.outcome == Outcome::Plugin => Some(line.decision.clone()),
            _ => {
                report.recorded_fallbacks += 1;
                None
            }
        };
        restart_after_recorded_fault(line, mine);
        let Some(expected) = expected else { return };
        report.compared += 1;
        if expected == got {
            report.agreed += 1;
        } else if report.disagreements.len() < MAX_LISTED {
            report.disagreements.push(Disagreement {
                session: line.session.clone(),
                turn: line.turn,
                input: D::summary(&input),
                expected: compact(&expected),
                got: compact(&got),
            });
        }
    }
}

/// Makes one call on `driver`, noting its time and any fault on `side`.
fn timed<D: Driver>(
    driver: &mut D,
    input: &D::Input,
    turn: u32,
    keep_text: bool,
    side: &mut SideReport,
) -> Value {
    let started = Instant::now();
    let (decision, fallback) = driver.run(input, turn, keep_text);
    side.call_times.push(started.elapsed());
    let kind = match fallback {
        Some(Fallback::Fault(kind)) => Some(kind.as_str()),
        Some(Fallback::Unusable) => Some("unusable"),
        // Not reachable with a replay's limits; not the component's doing either way.
        Some(Fallback::Quarantined | Fallback::Benched | Fallback::PoolFull) | None => None,
    };
    if let Some(kind) = kind {
        *side.faults.entry(kind).or_default() += 1;
    }
    decision
}

/// After a call the recording shows faulting, the server gave the session a fresh instance:
/// so does the replay.
fn restart_after_recorded_fault<D: Driver>(line: &RawLine, driver: &mut D) {
    if line.outcome == Outcome::Fault {
        driver.slot().restart();
    }
}

/// `value` as compact JSON, cut to a readable length.
fn compact(value: &Value) -> String {
    const MAX_CHARS: usize = 300;
    let text = value.to_string();
    if text.chars().count() <= MAX_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_CHARS).collect();
    cut.push('…');
    cut
}
