//! What the sessions measured, merged across sessions, and its summary.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Percentile `p` (0..=1) of sorted values (nearest rank); NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// p50, p95, p99 and max of unsorted values.
pub fn summary(values: &[f64]) -> [f64; 4] {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    [
        percentile(&v, 0.5),
        percentile(&v, 0.95),
        percentile(&v, 0.99),
        v.last().copied().unwrap_or(f64::NAN),
    ]
}

/// One session's record; merged into [`Totals`] when the session ends, so sessions never
/// contend while they run.
#[derive(Debug, Default)]
pub struct SessionRecord {
    pub ready: bool,
    pub connect_ms: f64,
    pub frames_sent: u64,
    /// Frames sent more than 20 ms after they were due (the client fell behind).
    pub late_frames: u64,
    pub agent_audio_bytes: u64,
    /// User turns whose speech was sent in the measured window.
    pub turns_started: u64,
    /// Of those, turns whose reply started playing (first agent audio).
    pub turns_answered: u64,
    /// Of those, turns whose reply ended (`agent_done`), interrupted or not.
    pub turns_done: u64,
    /// Turns spoken over the agent's reply, and the interrupts the host sent for them.
    pub barge_ins: u64,
    pub interrupts: u64,
    /// Client-side: the last frame with voice sent -> the first agent audio of that turn, ms.
    pub first_audio_ms: Vec<f64>,
    /// From `turn_metrics`: the host's own time on the turn, ms.
    pub host_ms: Vec<f64>,
    /// From `turn_metrics`: each stage's time from speech end, ms, by field name.
    pub stage_ms: BTreeMap<&'static str, Vec<f64>>,
    /// Holes in the agent's audio longer than 40 ms while it spoke (the client's playout ran dry).
    pub audio_gaps: u64,
    /// `error` messages by code.
    pub errors: BTreeMap<String, u64>,
    /// The session ended before its time (socket closed or failed).
    pub ended_early: bool,
}

/// The `turn_metrics` stages reported, in the order a turn passes them.
pub const STAGES: [&str; 5] = [
    "transcript_final_ms",
    "llm_first_token_ms",
    "first_sentence_ms",
    "tts_first_audio_ms",
    "first_audio_sent_ms",
];

/// All sessions' records.
#[derive(Default)]
pub struct Totals {
    pub records: Mutex<Vec<SessionRecord>>,
}

impl Totals {
    pub fn add(&self, r: SessionRecord) {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(r);
    }

    pub fn take(&self) -> Vec<SessionRecord> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(summary(&v), [51.0, 95.0, 99.0, 100.0]);
        assert!(summary(&[])[0].is_nan());
    }
}
