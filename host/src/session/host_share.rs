//! The host's share of a turn: the time the session's task spends on its own work (audio in,
//! the orchestrator, audio out) from the moment the turn is committed (its reply is planned)
//! until its first audio is sent. Waiting on providers and plug-ins is not in it, and neither is
//! the audio processed while the user was still talking or silent: summing all busy time since
//! the previous turn made a quiet 10 s between turns look like milliseconds of turn latency.

use std::time::Duration;

/// Where the measurement of the current turn stands.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum Window {
    /// No turn is being measured.
    #[default]
    Closed,
    /// The turn is committed and has no audio out yet: busy time counts.
    Open(Duration),
    /// The first audio went out: the share is known.
    Measured(Duration),
}

/// The share of the turn in flight, reported once with its metrics.
#[derive(Debug, Default)]
pub struct HostShare {
    window: Window,
}

impl HostShare {
    /// The session was busy for `d`; counts only between a turn's commitment and its audio.
    pub fn add(&mut self, d: Duration) {
        if let Window::Open(busy) = &mut self.window {
            *busy += d;
        }
    }

    /// A turn was committed (its reply is being planned): measuring starts from zero.
    pub fn turn_committed(&mut self) {
        self.window = Window::Open(Duration::ZERO);
    }

    /// Audio went out to the client: the first audio of the turn ends the measurement.
    pub fn audio_sent(&mut self) {
        if let Window::Open(busy) = self.window {
            self.window = Window::Measured(busy);
        }
    }

    /// The share for the turn's metrics (up to now when it never sent audio), and closes it.
    pub fn take(&mut self) -> Duration {
        match std::mem::take(&mut self.window) {
            Window::Open(busy) | Window::Measured(busy) => busy,
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
        let mut s = HostShare::default();
        // Ten seconds of listening before the turn.
        for _ in 0..500 {
            s.add(MS);
        }
        s.turn_committed();
        s.add(2 * MS);
        s.audio_sent();
        // The rest of the reply's audio, after the first frame.
        s.add(5 * MS);
        s.audio_sent();
        assert_eq!(s.take(), 2 * MS);
        // Reported once.
        assert_eq!(s.take(), Duration::ZERO);
    }

    #[test]
    fn a_turn_without_audio_reports_its_work_so_far() {
        let mut s = HostShare::default();
        s.turn_committed();
        s.add(3 * MS);
        assert_eq!(s.take(), 3 * MS);
    }
}
