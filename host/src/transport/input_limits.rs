//! What one client may send once its session runs: the reader checks every frame here. A session
//! without audio or text for `IDLE_TIMEOUT_MS`, or older than its cap, is ended; audio sustained
//! faster than twice real time and typed turns over the per-session rate are dropped with an
//! error, so they cost no speech-to-text or LLM calls.

use super::protocol::ServerMessage;
use crate::admission::session_limits::{AUDIO_BURST, MAX_AUDIO_SPEED, TEXT_TURN_BURST};
use crate::admission::SessionLimits;
use crate::audio::AudioFormat;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// At most one `audio_too_fast` error a second, however many frames are dropped.
const FAST_ERROR_INTERVAL: Duration = Duration::from_secs(1);

/// Why a session's time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Idle,
    MaxSession,
}

impl Expiry {
    /// The fatal error the client gets before the close.
    pub fn error(self, limits: &SessionLimits) -> ServerMessage {
        let ms = |d: Option<Duration>| d.map_or(0, |d| d.as_millis());
        match self {
            Self::Idle => ServerMessage::error(
                "idle_timeout",
                format!("no audio or text for {} ms", ms(limits.idle_timeout)),
                true,
            ),
            Self::MaxSession => ServerMessage::error(
                "session_time_limit",
                format!("sessions may last {} ms", ms(limits.max_session)),
                true,
            ),
        }
    }

    /// The close frame's reason text.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Idle => "idle timeout",
            Self::MaxSession => "session time limit",
        }
    }
}

/// The per-session input checks.
pub struct InputLimits {
    limits: SessionLimits,
    started: Instant,
    last_input: Instant,
    /// Audio accepted so far, in microseconds of the input format.
    audio_us: u64,
    /// Input bytes per second (0 when unknown: no pace check).
    bytes_per_s: u64,
    last_fast_error: Option<Instant>,
    text: Option<DefaultDirectRateLimiter>,
    /// Runs to the nearest deadline as it was when last set: input moves the idle deadline on
    /// without touching the timer (a frame every 20 ms would otherwise re-arm it every 20 ms);
    /// when it fires early it is set again.
    timer: Pin<Box<Sleep>>,
}

impl InputLimits {
    pub fn new(limits: SessionLimits, input: AudioFormat) -> Self {
        let now = Instant::now();
        let text = NonZeroU32::new(limits.text_turns_per_min).map(|n| {
            let burst = NonZeroU32::new(TEXT_TURN_BURST).unwrap_or(NonZeroU32::MIN);
            RateLimiter::direct(Quota::per_minute(n).allow_burst(burst))
        });
        let mut limits = Self {
            limits,
            started: now,
            last_input: now,
            audio_us: 0,
            bytes_per_s: u64::from(input.sample_rate) * input.bytes_per_sample() as u64,
            last_fast_error: None,
            text,
            timer: Box::pin(tokio::time::sleep_until(now)),
        };
        if let Some((at, _)) = limits.next_expiry() {
            limits.timer.as_mut().reset(at);
        }
        limits
    }

    /// The limits in force.
    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    /// Ready when the session has been idle too long or is over its cap; never when neither
    /// limit is set. Polled by the stream that reads the client, which is woken by the timer.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<Expiry> {
        let Some((at, why)) = self.next_expiry() else {
            return Poll::Pending;
        };
        // The nearest deadline never moves earlier (the idle one only moves on with input, the
        // cap is fixed), so the timer is at or before it.
        while self.timer.as_mut().poll(cx).is_ready() {
            if self.timer.deadline() >= at {
                return Poll::Ready(why);
            }
            self.timer.as_mut().reset(at);
        }
        Poll::Pending
    }

    /// The nearest of the idle and session-length deadlines.
    fn next_expiry(&self) -> Option<(Instant, Expiry)> {
        let idle = self
            .limits
            .idle_timeout
            .map(|d| (self.last_input + d, Expiry::Idle));
        let max = self
            .limits
            .max_session
            .map(|d| (self.started + d, Expiry::MaxSession));
        match (idle, max) {
            (Some(i), Some(m)) => Some(if m.0 <= i.0 { m } else { i }),
            (a, b) => a.or(b),
        }
    }

    /// Account for an audio frame. `Err(Some(error))`: drop it and send the client that error
    /// (JSON);
    /// `Err(None)`: drop it quietly (the client was told within the last second).
    pub fn audio(&mut self, bytes: usize) -> Result<(), Option<String>> {
        self.audio_at(bytes, Instant::now())
    }

    fn audio_at(&mut self, bytes: usize, now: Instant) -> Result<(), Option<String>> {
        self.last_input = now;
        if self.bytes_per_s == 0 {
            return Ok(());
        }
        let frame_us = bytes as u64 * 1_000_000 / self.bytes_per_s;
        let elapsed_us = now.duration_since(self.started).as_micros() as u64;
        let allowed_us = MAX_AUDIO_SPEED * elapsed_us + AUDIO_BURST.as_micros() as u64;
        if self.audio_us + frame_us <= allowed_us {
            self.audio_us += frame_us;
            return Ok(());
        }
        if self
            .last_fast_error
            .is_some_and(|t| now.duration_since(t) < FAST_ERROR_INTERVAL)
        {
            return Err(None);
        }
        self.last_fast_error = Some(now);
        Err(Some(
            ServerMessage::error(
                "audio_too_fast",
                format!(
                    "audio arrives faster than {MAX_AUDIO_SPEED}x real time; frames are dropped"
                ),
                false,
            )
            .to_json(),
        ))
    }

    /// Account for a typed turn: `Err` with the error (JSON) to send when over the rate (the turn
    /// is dropped).
    pub fn text_turn(&mut self) -> Result<(), String> {
        self.last_input = Instant::now();
        match &self.text {
            Some(limiter) if limiter.check().is_err() => Err(ServerMessage::error(
                "rate_limited",
                format!(
                    "at most {} typed turns a minute; this one was dropped",
                    self.limits.text_turns_per_min
                ),
                false,
            )
            .to_json()),
            _ => Ok(()),
        }
    }

    /// Any other message counts as activity.
    pub fn touch(&mut self) {
        self.touch_at(Instant::now());
    }

    fn touch_at(&mut self, now: Instant) {
        self.last_input = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::Encoding;

    fn limits() -> SessionLimits {
        SessionLimits {
            start_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(10)),
            max_session: Some(Duration::from_secs(60)),
            text_turns_per_min: 6,
        }
    }

    const PCM16K: AudioFormat = AudioFormat {
        encoding: Encoding::Pcm16,
        sample_rate: 16000,
    };

    #[tokio::test]
    async fn audio_faster_than_twice_real_time_is_dropped_after_the_burst() {
        let mut l = InputLimits::new(limits(), PCM16K);
        let t0 = l.started;
        // 20 ms frames of 640 bytes every 5 ms: four times real time.
        let first_error =
            (0..1000u64).find_map(
                |i| match l.audio_at(640, t0 + Duration::from_millis(5 * i)) {
                    Err(Some(e)) => Some((i, e)),
                    _ => None,
                },
            );
        let (i, e) = first_error.expect("audio_too_fast reported");
        assert!(e.contains("audio_too_fast"));
        // 5 s burst + 2x: the excess reaches 5 s after about 2.5 s of wall time (500 frames).
        assert!((490..=510).contains(&i), "{i}");
        // Reported at most once a second; the excess is dropped meanwhile.
        let next_second: Vec<_> = (i + 1..i + 190)
            .map(|k| l.audio_at(640, t0 + Duration::from_millis(5 * k)))
            .collect();
        assert!(next_second.iter().all(|r| !matches!(r, Err(Some(_)))));
        assert!(next_second.iter().filter(|r| r.is_err()).count() > 50);
    }

    #[tokio::test]
    async fn real_time_audio_is_never_dropped() {
        let mut l = InputLimits::new(limits(), PCM16K);
        let t0 = l.started;
        for i in 0..3000u64 {
            assert!(l.audio_at(640, t0 + Duration::from_millis(20 * i)).is_ok());
        }
    }

    #[tokio::test]
    async fn idle_and_max_session_expire_in_order() {
        let mut l = InputLimits::new(limits(), PCM16K);
        let t0 = l.started;
        assert_eq!(
            l.next_expiry(),
            Some((t0 + Duration::from_secs(10), Expiry::Idle))
        );
        l.touch_at(t0 + Duration::from_secs(55));
        assert_eq!(
            l.next_expiry(),
            Some((t0 + Duration::from_secs(60), Expiry::MaxSession))
        );
        let none = SessionLimits {
            idle_timeout: None,
            max_session: None,
            ..limits()
        };
        assert_eq!(InputLimits::new(none, PCM16K).next_expiry(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_idle_limit_fires_after_the_last_input_not_the_first() {
        let mut l = InputLimits::new(limits(), PCM16K);
        let expired = |l: &mut InputLimits| {
            let waker = futures_util::task::noop_waker();
            l.poll_expired(&mut Context::from_waker(&waker)).is_ready()
        };
        tokio::time::advance(Duration::from_secs(8)).await;
        l.touch();
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(
            !expired(&mut l),
            "10 s after the start, 3 s after the input"
        );
        tokio::time::advance(Duration::from_secs(7)).await;
        assert!(expired(&mut l), "10 s after the input");
        // The cap: input every 5 s never lets the session pass 60 s.
        let mut l = InputLimits::new(limits(), PCM16K);
        let mut at = 0;
        while !expired(&mut l) {
            tokio::time::advance(Duration::from_secs(5)).await;
            l.touch();
            at += 5;
        }
        assert_eq!(at, 60);
    }

    #[tokio::test]
    async fn typed_turns_over_the_burst_are_rate_limited() {
        let mut l = InputLimits::new(limits(), PCM16K);
        for _ in 0..TEXT_TURN_BURST {
            assert!(l.text_turn().is_ok());
        }
        let e = l.text_turn().unwrap_err();
        assert!(e.contains("rate_limited"));
    }
}
