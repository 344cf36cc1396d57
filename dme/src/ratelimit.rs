//! Request rate limiting without locks: token buckets packed into atomic words. Per-client-IP
//! buckets live in a fixed table indexed by a hash of the IP (bounded memory whatever the number
//! of clients; two IPs that collide share a bucket, which only makes the limit stricter for them).
//! Upstream keyed its per-IP limiter by `ip:port`, so a client escaped it by reconnecting; here
//! the key is the IP alone.

use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A rate and a burst, in requests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// One token bucket in one word: high 32 bits the last refill time (ms since the limiter's start,
/// wrapping), low 32 bits the tokens in thousandths.
struct Bucket(AtomicU64);

const MILLI: u64 = 1000;

impl Bucket {
    fn new(rate: Rate) -> Self {
        Self(AtomicU64::new(u64::from(rate.burst) * MILLI))
    }

    /// Takes one token if there is one. `now_ms` wraps every ~49 days; the wrapping difference
    /// keeps refills right across the wrap.
    fn take(&self, rate: Rate, now_ms: u32) -> bool {
        let cap = u64::from(rate.burst.max(1)) * MILLI;
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let (last, tokens) = ((cur >> 32) as u32, cur & 0xffff_ffff);
            let elapsed = u64::from(now_ms.wrapping_sub(last));
            // rate per second = rate thousandths per millisecond.
            let refilled = (tokens + elapsed.saturating_mul(u64::from(rate.per_second))).min(cap);
            if refilled < MILLI {
                return false;
            }
            let next = (u64::from(now_ms) << 32) | (refilled - MILLI);
            match self
                .0
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }
}

/// Global and per-IP limits; either may be off.
pub struct RateLimiter {
    start: Instant,
    global: Option<(Rate, Bucket)>,
    per_ip: Option<(Rate, Box<[Bucket]>)>,
    hasher: hashbrown::DefaultHashBuilder,
}

/// Slots of the per-IP table (a power of two). 64k slots keep collisions rare for the ~10k active
/// client IPs upstream sized its tracker for, in 512 KiB.
const IP_SLOTS: usize = 1 << 16;

impl RateLimiter {
    pub fn new(global: Option<Rate>, per_ip: Option<Rate>) -> Self {
        Self {
            start: Instant::now(),
            global: global.map(|r| (r, Bucket::new(r))),
            per_ip: per_ip.map(|r| (r, (0..IP_SLOTS).map(|_| Bucket::new(r)).collect())),
            hasher: hashbrown::DefaultHashBuilder::default(),
        }
    }

    /// No limits at all.
    pub fn unlimited() -> Self {
        Self::new(None, None)
    }

    pub fn is_unlimited(&self) -> bool {
        self.global.is_none() && self.per_ip.is_none()
    }

    /// Admits one request from `ip` (unknown peers only count against the global limit).
    pub fn admit(&self, ip: Option<IpAddr>) -> bool {
        if self.is_unlimited() {
            return true;
        }
        let now_ms = self.start.elapsed().as_millis() as u32;
        self.admit_at(ip, now_ms)
    }

    fn admit_at(&self, ip: Option<IpAddr>, now_ms: u32) -> bool {
        if let (Some((rate, table)), Some(ip)) = (&self.per_ip, ip) {
            let mut h = self.hasher.build_hasher();
            ip.hash(&mut h);
            let slot = (std::hash::Hasher::finish(&h) as usize) & (IP_SLOTS - 1);
            if !table[slot].take(*rate, now_ms) {
                return false;
            }
        }
        match &self.global {
            Some((rate, bucket)) => bucket.take(*rate, now_ms),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn burst_then_refill_per_ip() {
        let l = RateLimiter::new(
            None,
            Some(Rate {
                per_second: 10,
                burst: 3,
            }),
        );
        let a = ip("10.0.0.1");
        assert!((0..3).all(|_| l.admit_at(a, 0)));
        assert!(!l.admit_at(a, 0));
        // Another client is unaffected.
        assert!(l.admit_at(ip("10.0.0.2"), 0));
        // 10/s: one token per 100 ms.
        assert!(!l.admit_at(a, 99));
        assert!(l.admit_at(a, 100));
        assert!(!l.admit_at(a, 100));
        // Long idle refills only up to the burst.
        assert!((0..3).all(|_| l.admit_at(a, 1_000_000)));
        assert!(!l.admit_at(a, 1_000_000));
    }

    #[test]
    fn global_limit_counts_everyone_and_survives_clock_wrap() {
        let l = RateLimiter::new(
            Some(Rate {
                per_second: 1000,
                burst: 2,
            }),
            None,
        );
        let start = u32::MAX - 1;
        assert!(l.admit_at(ip("1.1.1.1"), start));
        assert!(l.admit_at(None, start));
        assert!(!l.admit_at(ip("2.2.2.2"), start));
        // 3 ms later, across the wrap of the millisecond clock: refilled.
        assert!(l.admit_at(ip("2.2.2.2"), 1));
    }

    #[test]
    fn unlimited_admits_everything() {
        let l = RateLimiter::unlimited();
        assert!((0..10_000).all(|_| l.admit(ip("::1"))));
    }
}
