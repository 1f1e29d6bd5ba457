//! Fault classification and the per-version fault window that quarantines a failing plug-in.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::Trap;

/// Why a plug-in call (or instantiation) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The call ran past its epoch deadline.
    Deadline,
    /// The plug-in asked for more memory (or table) than its cap and then trapped.
    Memory,
    /// Any other trap (`unreachable`, out-of-bounds access, stack overflow, ...).
    Trap,
    /// `init` refused the configuration or trapped while a fresh instance was set up.
    Init,
    /// The instance could not be created (e.g. its memory does not fit the pool's slots).
    Instantiate,
}

impl FaultKind {
    /// All kinds, for metrics.
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Deadline,
        FaultKind::Memory,
        FaultKind::Trap,
        FaultKind::Init,
        FaultKind::Instantiate,
    ];

    /// Label value in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Deadline => "deadline",
            FaultKind::Memory => "memory",
            FaultKind::Trap => "trap",
            FaultKind::Init => "init",
            FaultKind::Instantiate => "instantiate",
        }
    }

    /// Classifies the error of a failed call.
    pub(crate) fn of_call(err: &wasmtime::Error, memory_refused: bool) -> FaultKind {
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => FaultKind::Deadline,
            Some(Trap::AllocationTooLarge) => FaultKind::Memory,
            _ if memory_refused => FaultKind::Memory,
            _ => FaultKind::Trap,
        }
    }
}

/// Faults of one loaded plug-in version over a sliding window.
pub(crate) struct FaultWindow {
    limit: u32,
    window: Duration,
    recent: Mutex<VecDeque<Instant>>,
    total: AtomicU64,
    quarantined: AtomicBool,
}

impl FaultWindow {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            recent: Mutex::new(VecDeque::new()),
            total: AtomicU64::new(0),
            quarantined: AtomicBool::new(false),
        }
    }

    /// Records a fault; returns true when this fault quarantines the version.
    pub fn record(&self) -> bool {
        self.total.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            recent.pop_front();
        }
        recent.push_back(now);
        let over = recent.len() >= self.limit as usize;
        over && !self.quarantined.swap(true, Ordering::AcqRel)
    }

    /// Whether calls to this version are currently answered by the built-in default.
    pub fn is_quarantined(&self) -> bool {
        self.quarantined.load(Ordering::Acquire)
    }

    /// Faults recorded since the version was loaded.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantines_once_at_the_limit_within_the_window() {
        let w = FaultWindow::new(3, Duration::from_secs(60));
        assert!(!w.record());
        assert!(!w.record());
        assert!(!w.is_quarantined());
        assert!(w.record(), "the third fault quarantines");
        assert!(w.is_quarantined());
        assert!(!w.record(), "quarantine is reported once");
        assert_eq!(w.total(), 4);
    }

    #[test]
    fn faults_outside_the_window_do_not_count() {
        let w = FaultWindow::new(2, Duration::ZERO);
        assert!(!w.record());
        std::thread::sleep(Duration::from_millis(2));
        assert!(!w.record(), "the first fault has left the window");
        assert!(!w.is_quarantined());
    }
}
