//! Limits on one admitted session: time to `start`, idle time, total length and typed-turn rate.
//! Admission fixes them (a token's `max_session_s` lowers the configured cap); the transport's
//! reader enforces them.

use crate::config::security::SecurityConfig;
use std::time::Duration;

/// Typed turns a session may send at once before `TEXT_TURNS_PER_MIN` applies.
pub const TEXT_TURN_BURST: u32 = 5;

/// Client audio may run ahead of wall time by this factor, sustained.
pub const MAX_AUDIO_SPEED: u64 = 2;

/// Audio a client may send ahead of that pace in one go (a reconnect flushing its buffer, or
/// one maximum-size frame of 16 kHz PCM16, about 2 s).
pub const AUDIO_BURST: Duration = Duration::from_secs(5);

/// The limits of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub start_timeout: Duration,
    pub idle_timeout: Option<Duration>,
    pub max_session: Option<Duration>,
    /// 0: no limit.
    pub text_turns_per_min: u32,
}

impl SessionLimits {
    /// The configured limits.
    pub fn from_config(c: &SecurityConfig) -> Self {
        let nonzero = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
        Self {
            start_timeout: Duration::from_millis(c.start_timeout_ms),
            idle_timeout: nonzero(c.idle_timeout_ms),
            max_session: nonzero(c.max_session_ms),
            text_turns_per_min: c.text_turns_per_min,
        }
    }

    /// These limits with the session length capped at `max_s` seconds (a token's claim).
    pub fn capped(mut self, max_s: Option<u64>) -> Self {
        if let Some(s) = max_s {
            let claim = Duration::from_secs(s.max(1));
            self.max_session = Some(self.max_session.map_or(claim, |m| m.min(claim)));
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_only_lowers_the_cap() {
        let l = SessionLimits {
            start_timeout: Duration::from_secs(5),
            idle_timeout: None,
            max_session: Some(Duration::from_secs(600)),
            text_turns_per_min: 0,
        };
        assert_eq!(
            l.capped(Some(60)).max_session,
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            l.capped(Some(6000)).max_session,
            Some(Duration::from_secs(600))
        );
        assert_eq!(l.capped(None), l);
        let unlimited = SessionLimits {
            max_session: None,
            ..l
        };
        assert_eq!(
            unlimited.capped(Some(30)).max_session,
            Some(Duration::from_secs(30))
        );
    }
}
