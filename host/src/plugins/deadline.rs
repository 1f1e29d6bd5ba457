//! The call deadline counts the CPU time of the calling thread, not wall-clock time: on a busy
//! machine a healthy call may be preempted for longer than its whole budget, and cutting it then
//! would punish the plug-in for the host's load.
//!
//! The epoch ticker still drives the checks. When a call's epoch deadline passes, the callback
//! (which runs on the thread executing the guest) reads that thread's CPU clock: if the call has
//! used less CPU than its budget it was only preempted, and the deadline is pushed out by the CPU
//! time it has left. A wall-clock backstop, an order of magnitude larger, ends a call whatever
//! its CPU use.

use std::time::{Duration, Instant};

use wasmtime::{Store, StoreContextMut, Trap, UpdateDeadline};

use super::bindings::HostState;
use super::engine::{EngineHandle, EPOCH_TICK};
use super::epoch_ticker::Ticking;

/// How much longer than the CPU budget a call may take in wall-clock time.
pub(crate) const BACKSTOP_FACTOR: u32 = 10;
/// Smallest wall-clock backstop: a thread of a loaded two-core machine can wait tens of
/// milliseconds for a core, and the backstop must not end healthy calls either.
pub(crate) const BACKSTOP_MIN: Duration = Duration::from_millis(100);

/// The time a call may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    /// CPU time of the calling thread.
    pub cpu: Duration,
    /// Wall-clock backstop.
    pub wall: Duration,
}

impl Budget {
    /// A budget of `cpu` with the backstop derived from it.
    pub fn from_cpu(cpu: Duration) -> Self {
        Self {
            cpu,
            wall: (cpu * BACKSTOP_FACTOR).max(BACKSTOP_MIN),
        }
    }
}

/// Clock of the call in progress.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallClock {
    budget: Budget,
    cpu_start: Option<Duration>,
    wall_start: Instant,
    /// Set when this clock ended the call, to classify the trap.
    pub expired: bool,
}

impl CallClock {
    pub fn new(budget: Budget) -> Self {
        Self {
            budget,
            cpu_start: thread_cpu_time(),
            wall_start: Instant::now(),
            expired: false,
        }
    }

    /// What to do when the epoch deadline passes, given the thread's CPU time and the
    /// wall-clock time used so far. `None` ends the call; otherwise the number of ticks to wait
    /// before checking again.
    fn next_check(&self, cpu_used: Option<Duration>, wall_used: Duration) -> Option<u64> {
        if wall_used >= self.budget.wall {
            return None;
        }
        // Without a thread CPU clock the deadline is a wall-clock one.
        let used = cpu_used.unwrap_or(wall_used);
        if used >= self.budget.cpu {
            return None;
        }
        let left = (self.budget.cpu - used).min(self.budget.wall - wall_used);
        Some(ticks(left))
    }
}

/// Epoch ticks covering `time` (at least one).
pub(crate) fn ticks(time: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos().max(1);
    (time.as_nanos().div_ceil(tick) as u64).max(1)
}

/// CPU time the calling thread has used, where the platform has a per-thread CPU clock.
#[cfg(unix)]
pub(crate) fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call writes only to it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[cfg(not(unix))]
pub(crate) fn thread_cpu_time() -> Option<Duration> {
    None
}

/// Installs the deadline callback on a new store.
pub(crate) fn install(store: &mut Store<HostState>) {
    store.epoch_deadline_callback(on_deadline);
}

/// Starts the clock of a call (or of instantiation) with `budget`. The epoch advances, and so
/// the deadline can end the call, only while the returned guard is held: keep it for the call.
pub(crate) fn arm(store: &mut Store<HostState>, budget: Budget, engine: &EngineHandle) -> Ticking {
    store.data_mut().clock = CallClock::new(budget);
    // One extra tick: the current one is already partly over.
    store.set_epoch_deadline(ticks(budget.cpu) + 1);
    engine.ticking()
}

fn on_deadline(mut ctx: StoreContextMut<'_, HostState>) -> wasmtime::Result<UpdateDeadline> {
    let clock = &mut ctx.data_mut().clock;
    let cpu_used = match (clock.cpu_start, thread_cpu_time()) {
        (Some(start), Some(now)) => Some(now.saturating_sub(start)),
        _ => None,
    };
    match clock.next_check(cpu_used, clock.wall_start.elapsed()) {
        Some(ticks) => Ok(UpdateDeadline::Continue(ticks)),
        None => {
            clock.expired = true;
            Err(Trap::Interrupt.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn preempted_call_is_extended_by_its_cpu_left() {
        let clock = CallClock::new(Budget::from_cpu(5 * MS));
        // 40 ms of wall-clock time, 1 ms of CPU: the thread was waiting for a core.
        assert_eq!(clock.next_check(Some(MS), 40 * MS), Some(ticks(4 * MS)));
    }

    #[test]
    fn spent_cpu_budget_ends_the_call() {
        let clock = CallClock::new(Budget::from_cpu(5 * MS));
        assert_eq!(clock.next_check(Some(5 * MS), 6 * MS), None);
    }

    #[test]
    fn wall_backstop_ends_a_call_whatever_its_cpu() {
        let budget = Budget::from_cpu(20 * MS);
        assert_eq!(budget.wall, 200 * MS);
        let clock = CallClock::new(budget);
        assert_eq!(clock.next_check(Some(MS), 200 * MS), None);
        assert_eq!(Budget::from_cpu(MS).wall, BACKSTOP_MIN);
    }

    #[test]
    fn without_a_cpu_clock_the_deadline_is_wall_clock() {
        let clock = CallClock::new(Budget::from_cpu(5 * MS));
        assert_eq!(clock.next_check(None, 5 * MS), None);
        assert_eq!(clock.next_check(None, 2 * MS), Some(ticks(3 * MS)));
    }

    #[test]
    fn thread_cpu_clock_counts_only_this_thread() {
        let start = thread_cpu_time().expect("a thread CPU clock");
        std::thread::sleep(20 * MS);
        let slept = thread_cpu_time().unwrap() - start;
        assert!(slept < 20 * MS, "sleeping uses no CPU: {slept:?}");
    }
}
