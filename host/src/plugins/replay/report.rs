//! What a replay found, as the table `voice-host plugins replay` prints, and its verdict (the
//! exit status and its one-line reason).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::plugins::settings::Slot;

/// Disagreements listed in the report at most; the count covers them all.
pub const MAX_LISTED: usize = 20;

/// One component's side of a replay.
#[derive(Debug, Clone)]
pub struct SideReport {
    /// The component file.
    pub path: PathBuf,
    /// `name@version` (first 12 hex digits of its SHA-256).
    pub label: String,
    /// Faults by kind (`trap`, `deadline`, `memory`, `init`, `instantiate`, and `unusable`
    /// for an answer the host cannot use).
    pub faults: BTreeMap<&'static str, u64>,
    /// Call times, in the order of the calls.
    pub call_times: Vec<Duration>,
}

impl SideReport {
    /// A side with no calls yet.
    pub fn new(path: PathBuf, label: String) -> Self {
        Self {
            path,
            label,
            faults: BTreeMap::new(),
            call_times: Vec::new(),
        }
    }

    /// Faults of every kind.
    pub fn fault_count(&self) -> u64 {
        self.faults.values().sum()
    }

    /// The `p`th percentile (0-100) of the call times, by nearest rank.
    pub fn percentile(&self, p: f64) -> Duration {
        let mut times = self.call_times.clone();
        times.sort_unstable();
        nearest_rank(&times, p)
    }

    fn faults_text(&self) -> String {
        if self.faults.is_empty() {
            return "none".into();
        }
        let kinds: Vec<String> = self
            .faults
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        kinds.join(", ")
    }

    fn times_text(&self) -> String {
        format!(
            "p50 {} us, p99 {} us",
            self.percentile(50.0).as_micros(),
            self.percentile(99.0).as_micros()
        )
    }
}

/// The value at rank `ceil(p / 100 * n)` of sorted `times` (zero when there are none).
fn nearest_rank(times: &[Duration], p: f64) -> Duration {
    if times.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p.clamp(0.0, 100.0) / 100.0 * times.len() as f64).ceil() as usize;
    times[rank.clamp(1, times.len()) - 1]
}

/// A call whose decision differed.
#[derive(Debug, Clone, PartialEq)]
pub struct Disagreement {
    pub session: String,
    pub turn: u32,
    /// The input in a few words.
    pub input: String,
    /// The decision of the recording (or of the `--against` component), compact JSON.
    pub expected: String,
    /// The replayed component's decision, compact JSON.
    pub got: String,
}

/// What a replay found.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    /// The slot replayed.
    pub slot: Slot,
    /// The recording file.
    pub recording: PathBuf,
    /// The component replayed.
    pub component: SideReport,
    /// The component it was compared with; `None`: compared with the recording.
    pub against: Option<SideReport>,
    /// Calls replayed, and the plug-in instances (sessions) they were recorded in.
    pub calls: u64,
    pub sessions: u64,
    /// Calls whose decisions were compared, and how many agreed.
    pub compared: u64,
    pub agreed: u64,
    /// Calls the built-in behaviour answered when recorded (fault, quarantine...): replayed,
    /// but not compared with the recording.
    pub recorded_fallbacks: u64,
    /// Calls recorded with masked text (`PLUGIN_RECORD_TEXT=false`): replayed with
    /// placeholder words of the same count and length.
    pub masked: u64,
    /// Lines that are not recorded calls, and recorded calls of other slots.
    pub unreadable: u64,
    pub other_slots: u64,
    /// Disagreements, the first [`MAX_LISTED`].
    pub disagreements: Vec<Disagreement>,
}

impl ReplayReport {
    /// Share of compared calls that disagree, in percent (0 when none were compared).
    pub fn disagreement_pct(&self) -> f64 {
        if self.compared == 0 {
            return 0.0;
        }
        (self.compared - self.agreed) as f64 * 100.0 / self.compared as f64
    }

    /// `Ok` when the replay passes: no fault on either side and, with a limit, no more
    /// disagreement than `max_disagreement_pct`; else the one-line reason.
    pub fn verdict(&self, max_disagreement_pct: Option<f64>) -> Result<(), String> {
        let sides = std::iter::once(&self.component).chain(self.against.as_ref());
        let faulty: Vec<String> = sides
            .filter(|s| s.fault_count() > 0)
            .map(|s| {
                format!(
                    "{} faulted {} times ({})",
                    s.label,
                    s.fault_count(),
                    s.faults_text()
                )
            })
            .collect();
        if !faulty.is_empty() {
            return Err(faulty.join("; "));
        }
        if let Some(max) = max_disagreement_pct {
            let pct = self.disagreement_pct();
            if pct > max {
                return Err(format!(
                    "{} of {} calls disagree ({pct:.1}%), more than --max-disagreement {max}%",
                    self.compared - self.agreed,
                    self.compared
                ));
            }
        }
        Ok(())
    }

    fn against_text(&self) -> String {
        match &self.against {
            None => format!("the recording {}", self.recording.display()),
            Some(other) => format!("{} ({})", other.label, other.path.display()),
        }
    }
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = |f: &mut fmt::Formatter<'_>, name: &str, value: String| {
            writeln!(f, "{name:<20} {value}")
        };
        row(
            f,
            "component",
            format!(
                "{} ({})",
                self.component.label,
                self.component.path.display()
            ),
        )?;
        row(f, "slot", self.slot.to_string())?;
        row(f, "compared with", self.against_text())?;
        row(
            f,
            "calls",
            format!(
                "{} in {} session{}",
                self.calls,
                self.sessions,
                if self.sessions == 1 { "" } else { "s" }
            ),
        )?;
        let agreement = if self.compared == 0 {
            "no call compared".to_string()
        } else {
            format!(
                "{} of {} ({:.1}%)",
                self.agreed,
                self.compared,
                100.0 - self.disagreement_pct()
            )
        };
        row(f, "agreement", agreement)?;
        row(
            f,
            "disagreements",
            (self.compared - self.agreed).to_string(),
        )?;
        if self.against.is_none() && self.recorded_fallbacks > 0 {
            row(
                f,
                "not compared",
                format!(
                    "{} (answered by the built-in behaviour when recorded)",
                    self.recorded_fallbacks
                ),
            )?;
        }
        match &self.against {
            None => {
                row(f, "faults", self.component.faults_text())?;
                row(f, "call time", self.component.times_text())?;
            }
            Some(other) => {
                for side in [&self.component, other] {
                    row(f, &format!("faults {}", side.label), side.faults_text())?;
                    row(f, &format!("call time {}", side.label), side.times_text())?;
                }
            }
        }
        if self.masked > 0 {
            row(
                f,
                "masked inputs",
                format!(
                    "{} (replayed with placeholder words of the same count and length)",
                    self.masked
                ),
            )?;
        }
        if self.unreadable > 0 {
            row(f, "unreadable lines", self.unreadable.to_string())?;
        }
        if self.other_slots > 0 {
            row(f, "other slots' calls", self.other_slots.to_string())?;
        }
        if !self.disagreements.is_empty() {
            let total = self.compared - self.agreed;
            let expected = match &self.against {
                None => "recorded".to_string(),
                Some(other) => other.label.clone(),
            };
            writeln!(
                f,
                "\ndisagreements ({} of {total} shown):",
                self.disagreements.len()
            )?;
            for d in &self.disagreements {
                writeln!(f, "  session {} turn {}: {}", d.session, d.turn, d.input)?;
                writeln!(f, "    {expected}: {}", d.expected)?;
                writeln!(f, "    {}: {}", self.component.label, d.got)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(times_us: &[u64]) -> SideReport {
        SideReport {
            path: "a.wasm".into(),
            label: "a@0123456789ab".into(),
            faults: BTreeMap::new(),
            call_times: times_us.iter().map(|t| Duration::from_micros(*t)).collect(),
        }
    }

    fn report(compared: u64, agreed: u64) -> ReplayReport {
        ReplayReport {
            slot: Slot::BargeIn,
            recording: "rec.jsonl".into(),
            component: side(&[10, 20, 30]),
            against: None,
            calls: compared,
            sessions: 1,
            compared,
            agreed,
            recorded_fallbacks: 0,
            masked: 0,
            unreadable: 0,
            other_slots: 0,
            disagreements: Vec::new(),
        }
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let times: Vec<u64> = (1..=100).collect();
        let s = side(&times);
        assert_eq!(s.percentile(50.0), Duration::from_micros(50));
        assert_eq!(s.percentile(99.0), Duration::from_micros(99));
        assert_eq!(side(&[7]).percentile(99.0), Duration::from_micros(7));
        assert_eq!(side(&[]).percentile(50.0), Duration::ZERO);
    }

    #[test]
    fn the_verdict_fails_on_faults_and_on_too_much_disagreement() {
        assert_eq!(report(10, 10).verdict(Some(0.0)), Ok(()));
        assert_eq!(report(10, 9).verdict(None), Ok(()));
        assert_eq!(report(10, 9).verdict(Some(10.0)), Ok(()));
        let reason = report(10, 9).verdict(Some(0.0)).unwrap_err();
        assert_eq!(
            reason,
            "1 of 10 calls disagree (10.0%), more than --max-disagreement 0%"
        );
        let mut faulty = report(10, 10);
        faulty.component.faults.insert("trap", 2);
        let reason = faulty.verdict(None).unwrap_err();
        assert_eq!(reason, "a@0123456789ab faulted 2 times (trap 2)");
        assert_eq!(report(0, 0).verdict(Some(0.0)), Ok(()));
    }

    #[test]
    fn the_table_names_the_agreement_and_lists_disagreements() {
        let mut r = report(4, 3);
        r.disagreements.push(Disagreement {
            session: "s1".into(),
            turn: 2,
            input: "\"stop\", 1 words".into(),
            expected: "\"wait\"".into(),
            got: "\"interrupt\"".into(),
        });
        let text = r.to_string();
        assert!(
            text.contains("agreement            3 of 4 (75.0%)"),
            "{text}"
        );
        assert!(text.contains("session s1 turn 2: \"stop\""), "{text}");
        assert!(text.contains("recorded: \"wait\""), "{text}");
        assert!(text.contains("a@0123456789ab: \"interrupt\""), "{text}");
        assert!(
            text.contains("call time            p50 20 us, p99 30 us"),
            "{text}"
        );
    }
}
