//! What one client IP may hold and open: concurrent sessions (`MAX_SESSIONS_PER_IP`) and new
//! connections per minute (`CONNECT_RATE_PER_MIN`, a keyed token bucket).
//!
//! An IPv6 client is counted by its /64: one subscriber (one home, one cloud VM) is given a
//! whole /64 and can use a new address from it for every connection.

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Limiter entries kept before idle ones are swept, so scanning many addresses cannot grow
/// memory without bound.
const SWEEP_ABOVE: usize = 10_000;

/// Concurrent sessions per IP.
pub struct PerIpSessions {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One session's place in its IP's count; released on drop.
pub struct IpSlot {
    ip: IpAddr,
    open: Option<Arc<Mutex<HashMap<IpAddr, usize>>>>,
}

impl PerIpSessions {
    /// `max` 0: no limit.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            open: Arc::default(),
        }
    }

    /// A slot for `ip`, or `None` when it (its /64, for IPv6) already holds `max` sessions.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<IpSlot> {
        let ip = address_block(ip);
        if self.max == 0 {
            return Some(IpSlot::uncounted(ip));
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            ip,
            open: Some(self.open.clone()),
        })
    }

    /// Sessions `ip` holds now.
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&address_block(ip)).copied().unwrap_or(0)
    }
}

impl IpSlot {
    /// A place that does not count against `ip`'s limit.
    pub fn uncounted(ip: IpAddr) -> Self {
        Self { ip, open: None }
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let Some(open) = &self.open else { return };
        let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// New connections per IP: a token bucket of `burst` refilled at `per_min` a minute.
pub struct ConnectRate {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl ConnectRate {
    /// `per_min` 0: no limit.
    pub fn new(per_min: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_min).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
        });
        Self { limiter }
    }

    /// `Err(wait)` when `ip` must wait before connecting again.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() > SWEEP_ABOVE {
            limiter.retain_recent();
        }
        limiter
            .check_key(&address_block(ip))
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }
}

/// The address a limit counts `ip` under: an IPv4 address (also when written IPv4-mapped) as
/// is, an IPv6 address as its /64.
pub fn address_block(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// `Retry-After` seconds for a wait: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let caps = PerIpSessions::new(1);
        let first = caps.try_acquire(ip("2001:db8:1:2::1")).unwrap();
        assert!(
            caps.try_acquire(ip("2001:db8:1:2:ffff::9")).is_none(),
            "another address of the same /64"
        );
        assert!(
            caps.try_acquire(ip("2001:db8:1:3::1")).is_some(),
            "another /64"
        );
        drop(first);
        assert_eq!(caps.open(ip("2001:db8:1:2::7")), 0);
        let v4 = caps.try_acquire(ip("192.0.2.7")).unwrap();
        assert!(caps.try_acquire(ip("::ffff:192.0.2.7")).is_none());
        drop(v4);

        let rate = ConnectRate::new(1, 1);
        assert!(rate.check(ip("2001:db8::1")).is_ok());
        assert!(
            rate.check(ip("2001:db8::2")).is_err(),
            "same /64, same bucket"
        );
        assert!(rate.check(ip("2001:db8:0:1::1")).is_ok());
    }

    #[test]
    fn per_ip_cap_counts_each_address_and_frees_on_drop() {
        let caps = PerIpSessions::new(2);
        let a1 = caps.try_acquire(ip("198.51.100.1")).unwrap();
        let _a2 = caps.try_acquire(ip("198.51.100.1")).unwrap();
        assert!(caps.try_acquire(ip("198.51.100.1")).is_none());
        assert!(caps.try_acquire(ip("198.51.100.2")).is_some());
        drop(a1);
        assert_eq!(caps.open(ip("198.51.100.1")), 1);
        assert!(caps.try_acquire(ip("198.51.100.1")).is_some());
    }

    #[test]
    fn zero_means_unlimited() {
        let caps = PerIpSessions::new(0);
        let slots: Vec<_> = (0..100)
            .map(|_| caps.try_acquire(ip("::1")).unwrap())
            .collect();
        assert_eq!(slots.len(), 100);
        let rate = ConnectRate::new(0, 1);
        assert!((0..100).all(|_| rate.check(ip("::1")).is_ok()));
    }

    #[test]
    fn the_bucket_allows_the_burst_then_asks_to_wait() {
        let rate = ConnectRate::new(6, 3);
        for _ in 0..3 {
            assert!(rate.check(ip("198.51.100.1")).is_ok());
        }
        let wait = rate.check(ip("198.51.100.1")).unwrap_err();
        // One token every 10 s.
        assert!(wait <= Duration::from_secs(10), "{wait:?}");
        assert!(retry_after_secs(wait) >= 1);
        assert!(rate.check(ip("198.51.100.2")).is_ok());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
