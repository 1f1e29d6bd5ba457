//! Fault classification and the per-version fault window that quarantines a plug-in failing
//! in several sessions.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wasmtime::Trap;

use super::bindings::HostState;

/// Why a plug-in call (or instantiation) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    pub(crate) fn of_call(err: &wasmtime::Error, state: &HostState) -> FaultKind {
        match err.downcast_ref::<Trap>() {
            _ if state.clock.expired => FaultKind::Deadline,
            Some(Trap::Interrupt) => FaultKind::Deadline,
            Some(Trap::AllocationTooLarge) => FaultKind::Memory,
            _ if state.memory_refused => FaultKind::Memory,
            _ => FaultKind::Trap,
        }
    }
}

/// When a version is quarantined and for how long.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QuarantinePolicy {
    /// Distinct sessions that must fault within `window` to quarantine the version.
    pub sessions: u32,
    pub window: Duration,
    /// First quarantine's length; each further one doubles it, up to `backoff_max`.
    pub backoff: Duration,
    pub backoff_max: Duration,
}

/// Mutable part of [`FaultWindow`].
#[derive(Default)]
struct WindowState {
    /// The latest fault of each session that faulted within the window (one entry per session,
    /// so one session faulting in a loop cannot grow it or count twice).
    recent: VecDeque<(Instant, u64)>,
    /// End of the current quarantine.
    until: Option<Instant>,
    /// Length of the next quarantine.
    next_backoff: Duration,
    /// When the last quarantine ended.
    lifted_at: Option<Instant>,
}

/// Faults of one loaded plug-in version. The version is quarantined when faults come from
/// `policy.sessions` distinct sessions within `policy.window`, and let out again by itself after
/// a backoff that doubles with each further quarantine (capped), like Envoy's fail-reload: a
/// single hostile session cannot switch the plug-in off for everyone, and a plug-in that fails
/// for everyone is retried instead of staying off until someone reloads it.
pub(crate) struct FaultWindow {
    policy: QuarantinePolicy,
    /// `name@version`, for the log line that lifts a quarantine.
    label: Arc<str>,
    state: Mutex<WindowState>,
    total: AtomicU64,
    quarantines: AtomicU64,
    /// Fast path of [`FaultWindow::is_quarantined`] (every call checks it).
    quarantined: AtomicBool,
}

impl FaultWindow {
    pub fn new(policy: QuarantinePolicy, label: Arc<str>) -> Self {
        let policy = QuarantinePolicy {
            sessions: policy.sessions.max(1),
            backoff_max: policy.backoff_max.max(policy.backoff),
            ..policy
        };
        Self {
            state: Mutex::new(WindowState {
                next_backoff: policy.backoff,
                ..WindowState::default()
            }),
            policy,
            label,
            total: AtomicU64::new(0),
            quarantines: AtomicU64::new(0),
            quarantined: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WindowState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a fault of `session`; returns the quarantine's length when this fault
    /// quarantines the version.
    pub fn record(&self, session: u64) -> Option<Duration> {
        self.total.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut st = self.lock();
        if st.until.is_some() {
            return None;
        }
        let window = self.policy.window;
        st.recent
            .retain(|(t, s)| *s != session && now.duration_since(*t) <= window);
        st.recent.push_back((now, session));
        if st.recent.len() < self.policy.sessions as usize {
            return None;
        }
        // A version that stayed out of quarantine for a full maximum backoff starts over.
        if st
            .lifted_at
            .is_some_and(|t| now.duration_since(t) > self.policy.backoff_max)
        {
            st.next_backoff = self.policy.backoff;
        }
        let backoff = st.next_backoff;
        st.next_backoff = (backoff * 2).min(self.policy.backoff_max);
        st.until = Some(now + backoff);
        st.recent.clear();
        self.quarantines.fetch_add(1, Ordering::Relaxed);
        self.quarantined.store(true, Ordering::Release);
        Some(backoff)
    }

    /// Whether calls to this version are currently answered by the built-in default. Lifts a
    /// quarantine whose backoff has passed.
    pub fn is_quarantined(&self) -> bool {
        if !self.quarantined.load(Ordering::Acquire) {
            return false;
        }
        let now = Instant::now();
        let mut st = self.lock();
        match st.until {
            Some(until) if now < until => true,
            Some(_) => {
                st.until = None;
                st.lifted_at = Some(now);
                self.quarantined.store(false, Ordering::Release);
                tracing::info!(
                    plugin = &*self.label,
                    "plug-in quarantine over; the version serves again"
                );
                false
            }
            None => false,
        }
    }

    /// Time left in the current quarantine, if any.
    pub fn retry_in(&self) -> Option<Duration> {
        let until = self.lock().until?;
        Some(until.saturating_duration_since(Instant::now()))
    }

    /// Faults recorded since the version was loaded.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Times this version was quarantined.
    pub fn quarantines(&self) -> u64 {
        self.quarantines.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(sessions: u32, window: Duration, backoff: Duration) -> FaultWindow {
        FaultWindow::new(
            QuarantinePolicy {
                sessions,
                window,
                backoff,
                backoff_max: backoff * 4,
            },
            "test@0".into(),
        )
    }

    #[test]
    fn one_session_never_quarantines() {
        let w = window(3, Duration::from_secs(60), Duration::from_secs(60));
        for _ in 0..100 {
            assert_eq!(w.record(7), None);
        }
        assert!(!w.is_quarantined());
        assert_eq!(w.total(), 100);
    }

    #[test]
    fn distinct_sessions_quarantine_once() {
        let w = window(3, Duration::from_secs(60), Duration::from_secs(60));
        assert_eq!(w.record(1), None);
        assert_eq!(w.record(1), None);
        assert_eq!(w.record(2), None);
        assert!(!w.is_quarantined());
        assert_eq!(w.record(3), Some(Duration::from_secs(60)), "third session");
        assert!(w.is_quarantined());
        assert!(w.retry_in().is_some());
        assert_eq!(w.record(4), None, "quarantine is reported once");
        assert_eq!(w.quarantines(), 1);
    }

    #[test]
    fn faults_outside_the_window_do_not_count() {
        let w = window(2, Duration::ZERO, Duration::from_secs(60));
        assert_eq!(w.record(1), None);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(w.record(2), None, "the first fault has left the window");
        assert!(!w.is_quarantined());
    }

    #[test]
    fn quarantine_lifts_by_itself_and_backs_off() {
        let w = window(1, Duration::from_secs(60), Duration::from_millis(1));
        assert_eq!(w.record(1), Some(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(3));
        assert!(!w.is_quarantined(), "lifted after the backoff");
        assert_eq!(w.retry_in(), None);
        assert_eq!(w.record(1), Some(Duration::from_millis(2)), "doubled");
        std::thread::sleep(Duration::from_millis(5));
        assert!(!w.is_quarantined());
        assert_eq!(w.record(1), Some(Duration::from_millis(4)));
        std::thread::sleep(Duration::from_millis(8));
        assert!(!w.is_quarantined());
        assert_eq!(w.record(1), Some(Duration::from_millis(4)), "capped");
    }
}
