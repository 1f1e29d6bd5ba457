//! Canary versions: a candidate serves a share of new sessions beside the live version, and is
//! rolled back by itself when it faults clearly more than the live version does.
//!
//! Which sessions take the candidate is decided by a stable hash of the session id, so the same
//! session lands on the same side on every replica of a fleet (and after a resume). A session
//! keeps the side it started on: the live version's sessions never move to the candidate, and
//! the candidate's sessions move to the live version at their next turn once it is rolled back
//! or aborted.

use serde::{Deserialize, Serialize};

use super::usage::UsageSnapshot;

/// When a canary is rolled back by itself.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CanaryPolicy {
    /// Fault-rate points (0.05 = 5 %) by which the candidate may exceed the live version.
    pub margin: f64,
    /// Calls the candidate must have answered before its fault rate is judged (a quarantine
    /// rolls it back whatever the count).
    pub min_calls: u64,
}

impl Default for CanaryPolicy {
    fn default() -> Self {
        Self {
            margin: 0.05,
            min_calls: 20,
        }
    }
}

/// Whether session `session_id` takes the candidate when `percent` % of sessions do.
pub(crate) fn takes_canary(session_id: &str, percent: u8) -> bool {
    bucket(session_id) < u64::from(percent.min(100))
}

/// The session's bucket, 0..100: FNV-1a of its id, fixed across processes and builds.
fn bucket(session_id: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in session_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash % 100
}

/// Why the candidate must be rolled back, or `None` while it may go on. `live` is `None` when
/// the built-in behaviour serves the slot (it never faults). A quarantined candidate is rolled
/// back at once.
pub(crate) fn verdict(
    candidate: &UsageSnapshot,
    live: Option<&UsageSnapshot>,
    candidate_quarantined: bool,
    policy: &CanaryPolicy,
) -> Option<String> {
    if candidate_quarantined {
        return Some(format!(
            "quarantined after faults in several sessions ({} faults in {} calls)",
            candidate.faults, candidate.calls
        ));
    }
    if candidate.calls < policy.min_calls.max(1) {
        return None;
    }
    let live_rate = live.map_or(0.0, UsageSnapshot::fault_rate);
    let rate = candidate.fault_rate();
    (rate > live_rate + policy.margin).then(|| {
        format!(
            "fault rate {:.1}% over {} calls exceeds the live version's {:.1}% by more than {:.1} points",
            rate * 100.0,
            candidate.calls,
            live_rate * 100.0,
            policy.margin * 100.0
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usage(calls: u64, faults: u64) -> UsageSnapshot {
        UsageSnapshot {
            calls,
            faults,
            ..Default::default()
        }
    }

    #[test]
    fn a_candidate_faulting_more_than_the_margin_is_rolled_back() {
        let policy = CanaryPolicy {
            margin: 0.05,
            min_calls: 20,
        };
        let reason = verdict(&usage(20, 2), Some(&usage(100, 0)), false, &policy)
            .expect("10 % against 0 % with a 5-point margin");
        assert!(
            reason.contains("fault rate 10.0% over 20 calls"),
            "{reason}"
        );
        assert_eq!(
            verdict(&usage(20, 1), Some(&usage(100, 0)), false, &policy),
            None,
            "5 % is within the margin"
        );
        assert_eq!(
            verdict(&usage(20, 2), Some(&usage(100, 8)), false, &policy),
            None,
            "the live version faults as much"
        );
        assert_eq!(
            verdict(&usage(19, 19), None, false, &policy),
            None,
            "too few calls to judge"
        );
        assert!(verdict(&usage(1, 1), None, true, &policy).is_some());
    }

    #[test]
    fn sessions_split_near_the_percentage_and_always_the_same_way() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("session-{i}")).collect();
        for percent in [0u8, 10, 50, 100] {
            let taken = ids.iter().filter(|id| takes_canary(id, percent)).count();
            let expected = ids.len() * usize::from(percent) / 100;
            assert!(
                taken.abs_diff(expected) <= ids.len() / 50,
                "{percent}%: {taken} of {}",
                ids.len()
            );
        }
        assert!(ids
            .iter()
            .all(|id| takes_canary(id, 30) == takes_canary(id, 30)));
    }

    proptest! {
        /// Raising the share only adds sessions to the candidate's side: nobody on it at 10 %
        /// leaves it at 20 %.
        #[test]
        fn a_larger_share_keeps_every_session_of_a_smaller_one(id in ".{0,40}", a in 0u8..=100, b in 0u8..=100) {
            let (low, high) = (a.min(b), a.max(b));
            prop_assert!(!takes_canary(&id, low) || takes_canary(&id, high));
        }

        /// A candidate that faults no more often than the live version is never rolled back
        /// (unless quarantined), whatever the counts.
        #[test]
        fn no_worse_than_live_is_never_rolled_back(calls in 0u64..10_000, faults in 0u64..10_000, live_calls in 1u64..10_000, margin in prop_oneof![Just(0.0f64), 0.0f64..0.5]) {
            let faults = faults.min(calls);
            let candidate = usage(calls, faults);
            let live_faults = ((candidate.fault_rate() * live_calls as f64).ceil() as u64).min(live_calls);
            let live = usage(live_calls, live_faults);
            prop_assume!(live.fault_rate() >= candidate.fault_rate());
            let policy = CanaryPolicy { margin, min_calls: 1 };
            prop_assert_eq!(verdict(&candidate, Some(&live), false, &policy), None);
        }
    }
}
