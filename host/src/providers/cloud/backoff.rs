//! Retry timing shared by the cloud providers: exponential backoff with jitter, bounded by a retry
//! count and an overall time budget, and the server's `retry-after` hints.

use rand::Rng;
use reqwest::header::HeaderMap;
use std::time::Duration;

/// The longest server-requested delay that is honoured; a longer one means "do not retry".
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// How often and how long to retry a failed request or connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = never retry).
    pub max_retries: u32,
    /// Delay before the first retry; doubles on each further retry.
    pub base: Duration,
    /// Upper bound of one delay.
    pub cap: Duration,
    /// Upper bound of the time spent waiting across all retries of one request.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    /// The OpenAI SDK's policy: 2 retries, 0.5 s doubling, capped at 8 s; within 10 s in total.
    fn default() -> Self {
        Self {
            max_retries: 2,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(8),
            budget: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (0-based): `base * 2^retry`, capped, minus up to
    /// 25 % jitter so that many sessions do not retry in lockstep.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << retry.min(16));
        let capped = exp.min(self.cap);
        let jitter = rand::rng().random_range(0.0..=0.25);
        capped.mul_f64(1.0 - jitter)
    }

    /// Decides whether retry number `retry` may happen after `waited` has already been spent
    /// waiting, and how long to wait first. `hint` is the server's request, if any.
    pub fn next_delay(&self, retry: u32, waited: Duration, hint: RetryAfter) -> Option<Duration> {
        if retry >= self.max_retries {
            return None;
        }
        let delay = match hint {
            RetryAfter::Absent => self.delay(retry),
            RetryAfter::After(d) => d,
            RetryAfter::Refused => return None,
        };
        (waited + delay <= self.budget).then_some(delay)
    }
}

/// What the server said about when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// No usable hint: use the backoff schedule.
    Absent,
    /// Wait this long.
    After(Duration),
    /// The server asked for a wait longer than [`MAX_RETRY_AFTER`]: do not retry.
    Refused,
}

/// Reads `retry-after-ms` (milliseconds) and then `retry-after`, as the OpenAI SDK does:
/// seconds (fractions allowed) or an HTTP date (RFC 9110), counted from now.
pub fn retry_after(headers: &HeaderMap) -> RetryAfter {
    retry_after_at(headers, std::time::SystemTime::now())
}

/// [`retry_after`] with the current time given (an HTTP date is relative to it).
fn retry_after_at(headers: &HeaderMap, now: std::time::SystemTime) -> RetryAfter {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let seconds = |v: &str| v.parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0);
    let date = |v: &str| {
        httpdate::parse_http_date(v)
            .ok()
            // A date already past means "now": retry after the shortest wait.
            .map(|at| {
                at.duration_since(now)
                    .unwrap_or_default()
                    .as_secs_f64()
                    .max(0.001)
            })
    };
    let delay = text("retry-after-ms")
        .and_then(seconds)
        .map(|ms| ms / 1000.0)
        .or_else(|| text("retry-after").and_then(|v| seconds(v).or_else(|| date(v))));
    match delay {
        None => RetryAfter::Absent,
        Some(secs) if secs > MAX_RETRY_AFTER.as_secs_f64() => RetryAfter::Refused,
        Some(secs) => RetryAfter::After(Duration::from_secs_f64(secs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn delays_double_are_capped_and_jittered_by_at_most_a_quarter() {
        let p = RetryPolicy {
            max_retries: 10,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(8),
            budget: Duration::from_secs(60),
        };
        for (retry, full) in [(0, 500), (1, 1000), (2, 2000), (5, 8000), (9, 8000)] {
            let d = p.delay(retry).as_millis() as u64;
            assert!(d <= full && d >= full * 3 / 4, "retry {retry}: {d} ms");
        }
    }

    #[test]
    fn retries_stop_at_the_count_and_the_budget() {
        let p = RetryPolicy {
            max_retries: 2,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(8),
            budget: Duration::from_secs(3),
        };
        assert!(p
            .next_delay(0, Duration::ZERO, RetryAfter::Absent)
            .is_some());
        assert!(p
            .next_delay(2, Duration::ZERO, RetryAfter::Absent)
            .is_none());
        let long = RetryAfter::After(Duration::from_secs(5));
        assert_eq!(p.next_delay(0, Duration::ZERO, long), None);
        let short = RetryAfter::After(Duration::from_millis(200));
        assert_eq!(
            p.next_delay(1, Duration::from_secs(1), short),
            Some(Duration::from_millis(200))
        );
        assert_eq!(p.next_delay(0, Duration::ZERO, RetryAfter::Refused), None);
    }

    #[test]
    fn retry_after_prefers_milliseconds_and_refuses_long_waits() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), RetryAfter::Absent);
        h.insert("retry-after", HeaderValue::from_static("1.5"));
        assert_eq!(
            retry_after(&h),
            RetryAfter::After(Duration::from_millis(1500))
        );
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(
            retry_after(&h),
            RetryAfter::After(Duration::from_millis(250))
        );
        let mut long = HeaderMap::new();
        long.insert("retry-after", HeaderValue::from_static("600"));
        assert_eq!(retry_after(&long), RetryAfter::Refused);
        let mut junk = HeaderMap::new();
        junk.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&junk), RetryAfter::Absent);
    }

    #[test]
    fn retry_after_as_an_http_date_counts_from_now() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:03 GMT"),
        );
        assert_eq!(
            retry_after_at(&h, now),
            RetryAfter::After(Duration::from_secs(3))
        );
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 08:28:00 GMT"),
        );
        assert_eq!(retry_after_at(&h, now), RetryAfter::Refused, "an hour away");
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:27:00 GMT"),
        );
        assert_eq!(
            retry_after_at(&h, now),
            RetryAfter::After(Duration::from_millis(1)),
            "a date already past: retry at once"
        );
    }
}
