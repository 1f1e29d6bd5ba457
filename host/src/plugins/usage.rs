//! What one loaded version did in sessions: sessions, calls, faults, fallbacks, barge-in
//! interrupts, turns ended and how many of those the user went on after, and, for a shadow, how
//! often it agreed with the live decision. Canary judgement ([`super::canary`]) compares these
//! between a candidate and the live version; the admin endpoint shows them.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Counters of one version, shared by every session running it.
#[derive(Default)]
pub(crate) struct Usage {
    sessions: AtomicU64,
    attempts: AtomicU64,
    faults: AtomicU64,
    fallbacks: AtomicU64,
    interrupts: AtomicU64,
    turn_ends: AtomicU64,
    turns_continued: AtomicU64,
    agreed: AtomicU64,
    disagreed: AtomicU64,
    dropped: AtomicU64,
}

/// A copy of a version's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UsageSnapshot {
    /// Sessions that ran this version.
    pub sessions: u64,
    /// Calls into the version, counting failed instantiations as calls (they cost the session
    /// the plug-in's answer just the same).
    pub calls: u64,
    /// Faults (traps, deadline, memory, failed instantiations).
    pub faults: u64,
    /// Calls answered by the built-in behaviour instead.
    pub fallbacks: u64,
    /// Barge-in decisions of `interrupt` the version made itself.
    pub interrupts: u64,
    /// End-of-turn decisions of `end-turn` the version made itself.
    pub turn_ends: u64,
    /// Of the turns it ended, those the user went on speaking after before any of the reply was
    /// heard: ends called too early (`turns_continued / turn_ends` compares two versions).
    pub turns_continued: u64,
    /// As a shadow: calls whose answer matched the live decision, and calls where it did not.
    pub agreed: u64,
    pub disagreed: u64,
    /// As a shadow: live decisions not compared because the shadow was behind.
    pub dropped: u64,
}

impl UsageSnapshot {
    /// Faults per call, 0 when there were no calls.
    pub fn fault_rate(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.faults as f64 / self.calls as f64
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Usage {
    pub fn session(&self) {
        bump(&self.sessions);
    }
    pub fn attempt(&self) {
        bump(&self.attempts);
    }
    pub fn fault(&self) {
        bump(&self.faults);
    }
    pub fn fallback(&self) {
        bump(&self.fallbacks);
    }
    pub fn interrupt(&self) {
        bump(&self.interrupts);
    }
    pub fn turn_end(&self) {
        bump(&self.turn_ends);
    }
    pub fn turn_continued(&self) {
        bump(&self.turns_continued);
    }
    pub fn compared(&self, agreed: bool) {
        bump(if agreed {
            &self.agreed
        } else {
            &self.disagreed
        });
    }
    pub fn dropped(&self) {
        bump(&self.dropped);
    }

    pub fn snapshot(&self) -> UsageSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        UsageSnapshot {
            sessions: get(&self.sessions),
            calls: get(&self.attempts),
            faults: get(&self.faults),
            fallbacks: get(&self.fallbacks),
            interrupts: get(&self.interrupts),
            turn_ends: get(&self.turn_ends),
            turns_continued: get(&self.turns_continued),
            agreed: get(&self.agreed),
            disagreed: get(&self.disagreed),
            dropped: get(&self.dropped),
        }
    }
}
