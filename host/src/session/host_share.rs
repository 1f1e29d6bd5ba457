//! The host's share of a turn: the time the session's task spends on its own work (audio in,
//! the orchestrator, audio out) from the moment the turn is committed (its reply is planned)
//! until its first audio is sent. Waiting on providers and plug-ins is not in it, and neither is
//! the audio processed while the user was still talking or silent: summing all busy time since
//! the previous turn made a quiet 10 s between turns look like milliseconds of turn latency.

use std::time::{Duration, Instant};

/// Where the measurement of the current turn stands.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum Window {
    /// No turn is being measured.
    #[default]
    Closed,
    /// The turn was committed at `since` and has no audio out yet: busy time after it counts.
    Open { since: Instant, busy: Duration },
    /// The first audio went out: the share is known.
    Measured(Duration),
}

/// The share of the turn in flight, reported once with its metrics.
///
/// Work is reported as spans (`started`..`ended`), and the commitment and the first audio as
/// instants, so the part of one unit of work (e.g. handling one event) before the commitment is
/// left out and the part before the first audio is counted, wherever in the unit they fall.
#[derive(Debug, Default)]
pub struct HostShare {
    window: Window,
}

impl HostShare {
    /// The session was busy from `started` to `ended`; counts the part after the commitment.
    pub fn add(&mut self, started: Instant, ended: Instant) {
        if let Window::Open { since, busy } = &mut self.window {
            *busy += ended.saturating_duration_since(started.max(*since));
        }
    }

    /// A turn was committed (its reply is being planned) at `at`: measuring starts from zero.
    pub fn turn_committed(&mut self, at: Instant) {
        self.window = Window::Open {
            since: at,
            busy: Duration::ZERO,
        };
    }

    /// Audio went out to the client at `at`, from work that started at `work_started`: the first
    /// audio of the turn counts that work up to `at` and ends the measurement.
    pub fn audio_sent(&mut self, work_started: Instant, at: Instant) {
        if let Window::Open { since, busy } = self.window {
            let until_audio = at.saturating_duration_since(work_started.max(since));
            self.window = Window::Measured(busy + until_audio);
        }
    }

    /// The share for the turn's metrics (up to now when it never sent audio), and closes it.
    pub fn take(&mut self) -> Duration {
        match std::mem::take(&mut self.window) {
            Window::Open { busy, .. } | Window::Measured(busy) => busy,
            Window::Closed => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn only_work_between_the_commitment_and_the_first_audio_counts() {
        let t = Instant::now();
        let mut s = HostShare::default();
        // Ten seconds of listening before the turn.
        for i in 0..500 {
            s.add(t + i * 20 * MS, t + i * 20 * MS + MS);
        }
        let c = t + 10_000 * MS;
        s.turn_committed(c);
        s.add(c, c + 2 * MS);
        // The first audio goes out 1 ms into a unit of work that took 3 ms.
        s.audio_sent(c + 10 * MS, c + 11 * MS);
        s.add(c + 10 * MS, c + 13 * MS);
        // The rest of the reply's audio, after the first frame.
        s.add(c + 20 * MS, c + 25 * MS);
        s.audio_sent(c + 20 * MS, c + 21 * MS);
        assert_eq!(s.take(), 3 * MS);
        // Reported once.
        assert_eq!(s.take(), Duration::ZERO);
    }

    #[test]
    fn work_before_the_commitment_in_the_same_unit_is_left_out() {
        let t = Instant::now();
        let mut s = HostShare::default();
        // One event's handling runs from t to t + 4 ms and commits the turn at t + 3 ms.
        s.turn_committed(t + 3 * MS);
        s.add(t, t + 4 * MS);
        assert_eq!(s.take(), MS);
    }

    #[test]
    fn a_turn_without_audio_reports_its_work_so_far() {
        let t = Instant::now();
        let mut s = HostShare::default();
        s.turn_committed(t);
        s.add(t, t + 3 * MS);
        assert_eq!(s.take(), 3 * MS);
    }
}
