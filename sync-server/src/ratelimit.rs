//! Enrolment guesses per client address: a token bucket (GCRA) that allows `burst`
//! failed guesses at once and one more every `refill`.
//!
//! Each attempt takes a token up front (so concurrent guesses cannot all pass the check
//! before the first failure is counted) and a successful enrolment gives it back. IPv6
//! addresses count per /64 (what one subscriber is usually given). The table is bounded:
//! when it is full, buckets that have refilled are dropped, and if it is still full, new
//! addresses share one bucket, so an attacker with very many addresses neither grows the
//! server's memory nor gets more attempts than the table allows.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked at most (about 40 bytes each).
pub const MAX_TRACKED: usize = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Addr(IpAddr),
    /// The shared bucket once the table is full.
    Overflow,
}

/// The per-address limiter.
#[derive(Debug)]
pub struct RateLimiter {
    burst: u32,
    refill: Duration,
    /// Per key, the time at which its bucket is full again (GCRA's theoretical arrival
    /// time); absent or in the past: full.
    full_at: Mutex<HashMap<Key, Instant>>,
    max_tracked: usize,
}

impl RateLimiter {
    /// `burst` attempts at once, then one per `refill`.
    pub fn new(burst: u32, refill: Duration) -> Self {
        Self::with_capacity(burst, refill, MAX_TRACKED)
    }

    fn with_capacity(burst: u32, refill: Duration, max_tracked: usize) -> Self {
        RateLimiter {
            burst: burst.max(1),
            refill: refill.max(Duration::from_millis(1)),
            full_at: Mutex::new(HashMap::new()),
            max_tracked: max_tracked.max(1),
        }
    }

    fn key(addr: IpAddr) -> Key {
        match addr {
            IpAddr::V4(v4) => Key::Addr(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Key::Addr(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Key::Addr(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }

    /// Take a token for an attempt from `addr`, or say how long until one is available.
    pub fn acquire(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut table = self.full_at.lock().unwrap_or_else(|e| e.into_inner());
        let mut key = Self::key(addr);
        if !table.contains_key(&key) && table.len() >= self.max_tracked {
            table.retain(|_, full_at| *full_at > now);
            if table.len() >= self.max_tracked {
                key = Key::Overflow;
            }
        }
        let window = self.refill * self.burst;
        let start = table.get(&key).map_or(now, |t| (*t).max(now));
        let next = start + self.refill;
        if next > now + window {
            return Err(next - (now + window));
        }
        table.insert(key, next);
        Ok(())
    }

    /// Give back the token of an attempt that succeeded.
    pub fn refund(&self, addr: IpAddr, now: Instant) {
        let mut table = self.full_at.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(full_at) = table.get_mut(&Self::key(addr)) {
            *full_at = full_at.checked_sub(self.refill).unwrap_or(now).max(now);
        }
    }

    /// Addresses tracked now (for tests).
    pub fn tracked(&self) -> usize {
        self.full_at.lock().map(|t| t.len()).unwrap_or(0)
    }
}

/// `Retry-After` seconds for a wait (at least 1).
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
    fn a_burst_then_one_per_refill_per_address() {
        let l = RateLimiter::new(3, Duration::from_secs(20));
        let t = Instant::now();
        for _ in 0..3 {
            assert!(l.acquire(ip("10.0.0.1"), t).is_ok());
        }
        let wait = l.acquire(ip("10.0.0.1"), t).unwrap_err();
        assert_eq!(wait, Duration::from_secs(20));
        assert_eq!(retry_after_secs(wait), 20);
        // Another address is not limited.
        assert!(l.acquire(ip("10.0.0.2"), t).is_ok());
        // One token back after one refill period, not two.
        let later = t + Duration::from_secs(20);
        assert!(l.acquire(ip("10.0.0.1"), later).is_ok());
        assert!(l.acquire(ip("10.0.0.1"), later).is_err());
        // A refund (successful attempt) gives the token back.
        l.refund(ip("10.0.0.1"), later);
        assert!(l.acquire(ip("10.0.0.1"), later).is_ok());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let l = RateLimiter::new(1, Duration::from_secs(60));
        let t = Instant::now();
        assert!(l.acquire(ip("2001:db8:1:2::1"), t).is_ok());
        assert!(l.acquire(ip("2001:db8:1:2:ffff::9"), t).is_err());
        assert!(l.acquire(ip("2001:db8:1:3::1"), t).is_ok());
        assert!(l.acquire(ip("192.0.2.7"), t).is_ok());
        assert!(l.acquire(ip("::ffff:192.0.2.7"), t).is_err());
    }

    #[test]
    fn the_table_is_bounded_and_new_addresses_share_a_bucket_when_full() {
        let l = RateLimiter::with_capacity(2, Duration::from_secs(60), 4);
        let t = Instant::now();
        for i in 0..4 {
            assert!(l.acquire(ip(&format!("10.0.0.{i}")), t).is_ok());
        }
        assert_eq!(l.tracked(), 4);
        // Full of non-refilled buckets: newcomers share the overflow bucket (burst 2).
        assert!(l.acquire(ip("10.0.1.1"), t).is_ok());
        assert!(l.acquire(ip("10.0.1.2"), t).is_ok());
        assert!(l.acquire(ip("10.0.1.3"), t).is_err());
        assert!(l.tracked() <= 5);
        // Once the buckets have refilled they are dropped to make room.
        let later = t + Duration::from_secs(600);
        assert!(l.acquire(ip("10.0.2.1"), later).is_ok());
        assert_eq!(l.tracked(), 1);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(6)), 6);
    }
}
