//! Per-destination token buckets for ICMP errors (RFC 1812 §4.3.2.8,
//! RFC 4443 §2.4(f)).
//!
//! A fixed table of [`SLOTS`] buckets indexed by a hash of the destination:
//! no allocation after `new`, O(1) per call. Destinations that collide share
//! a bucket, which can only make the limiter stricter, never looser.
//! Tokens are kept in nanoseconds of "credit" so refill is exact integer
//! arithmetic without a per-tick timer.

use core::net::IpAddr;

/// Errors per second per destination the router allows by default.
pub const DEFAULT_RATE: u32 = 100;
/// Burst size (back-to-back errors after a quiet period) by default.
pub const DEFAULT_BURST: u32 = 50;
/// Buckets in the table (a power of two).
pub const SLOTS: usize = 1024;

const NS_PER_SEC: u64 = 1_000_000_000;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Credit in nanoseconds; one token costs `cost_ns`.
    credit_ns: u64,
    last_ns: u64,
    used: bool,
}

/// Token-bucket limiter keyed by destination address.
#[derive(Debug, Clone)]
pub struct IcmpRateLimiter {
    buckets: Box<[Bucket; SLOTS]>,
    /// Nanoseconds per token (1 s / rate); 0 means "no limit".
    cost_ns: u64,
    /// Maximum credit: `burst` tokens.
    cap_ns: u64,
}

impl IcmpRateLimiter {
    /// `rate_per_sec` tokens refill per second up to `burst` tokens; a fresh
    /// bucket starts full. `rate_per_sec == 0` disables sending entirely,
    /// `burst == 0` likewise (a bucket that holds nothing).
    pub fn new(rate_per_sec: u32, burst: u32) -> Self {
        let cost_ns = if rate_per_sec == 0 {
            u64::MAX
        } else {
            (NS_PER_SEC / u64::from(rate_per_sec)).max(1)
        };
        IcmpRateLimiter {
            buckets: Box::new([Bucket::default(); SLOTS]),
            cost_ns,
            cap_ns: cost_ns.saturating_mul(u64::from(burst)),
        }
    }

    fn slot(dst: IpAddr) -> usize {
        let h = match dst {
            IpAddr::V4(a) => u64::from(u32::from(a)).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            IpAddr::V6(a) => {
                let v = u128::from(a);
                ((v as u64) ^ ((v >> 64) as u64).rotate_left(29))
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            }
        };
        (h >> 54) as usize & (SLOTS - 1)
    }

    /// Takes one token for `dst` at time `now_ns` (monotonic); false when
    /// the bucket is empty. A clock that goes backwards refills nothing.
    pub fn allow(&mut self, dst: IpAddr, now_ns: u64) -> bool {
        let cost = self.cost_ns;
        let cap = self.cap_ns;
        if cap == 0 || cost == u64::MAX {
            return false;
        }
        let b = &mut self.buckets[Self::slot(dst)];
        if !b.used {
            *b = Bucket {
                credit_ns: cap,
                last_ns: now_ns,
                used: true,
            };
        } else {
            let elapsed = now_ns.saturating_sub(b.last_ns);
            b.credit_ns = b.credit_ns.saturating_add(elapsed).min(cap);
            b.last_ns = b.last_ns.max(now_ns);
        }
        if b.credit_ns >= cost {
            b.credit_ns -= cost;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const MS: u64 = 1_000_000;

    fn a(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(198, 18, 0, last))
    }

    #[test]
    fn burst_then_refill() {
        let mut l = IcmpRateLimiter::new(DEFAULT_RATE, DEFAULT_BURST);
        let t0 = 5_000 * MS;
        let n = (0..200).filter(|_| l.allow(a(1), t0)).count();
        assert_eq!(n, DEFAULT_BURST as usize);
        // 100/s: one token per 10 ms.
        assert!(!l.allow(a(1), t0 + 9 * MS));
        assert!(l.allow(a(1), t0 + 10 * MS));
        assert!(!l.allow(a(1), t0 + 10 * MS));
        // One second later: 100 tokens earned but capped at the burst.
        let n = (0..200).filter(|_| l.allow(a(1), t0 + 1010 * MS)).count();
        assert_eq!(n, DEFAULT_BURST as usize);
    }

    #[test]
    fn destinations_are_independent() {
        let mut l = IcmpRateLimiter::new(10, 3);
        let x = a(1);
        // Find a destination in a different bucket (collisions share one).
        let y = (2..=255u8)
            .map(a)
            .find(|y| IcmpRateLimiter::slot(*y) != IcmpRateLimiter::slot(x))
            .unwrap();
        for _ in 0..3 {
            assert!(l.allow(x, 0));
        }
        assert!(!l.allow(x, 0));
        for _ in 0..3 {
            assert!(l.allow(y, 0));
        }
        assert!(!l.allow(y, 0));
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1));
        if IcmpRateLimiter::slot(v6) != IcmpRateLimiter::slot(x) {
            assert!(l.allow(v6, 0));
        }
    }

    #[test]
    fn steady_rate_over_time() {
        let mut l = IcmpRateLimiter::new(100, 5);
        // Try every millisecond for 10 s: 5 burst + 100/s * 10 s.
        let n = (0..10_000u64).filter(|i| l.allow(a(7), i * MS)).count();
        assert!((1000..=1006).contains(&n), "{n}");
    }

    #[test]
    fn clock_backwards_and_zero_settings() {
        let mut l = IcmpRateLimiter::new(1, 1);
        assert!(l.allow(a(1), 10 * NS_PER_SEC));
        assert!(!l.allow(a(1), 0));
        assert!(!l.allow(a(1), 10 * NS_PER_SEC + NS_PER_SEC / 2));
        assert!(l.allow(a(1), 11 * NS_PER_SEC));
        let mut off = IcmpRateLimiter::new(0, 10);
        assert!(!off.allow(a(1), 0));
        let mut none = IcmpRateLimiter::new(10, 0);
        assert!(!none.allow(a(1), 0));
        let mut huge = IcmpRateLimiter::new(u32::MAX, u32::MAX);
        assert!(huge.allow(a(1), u64::MAX));
    }
}
