//! Token buckets for ICMP errors (RFC 1812 §4.3.2.8, RFC 4443 §2.4(f)):
//! one per destination, and one for all destinations of the worker (as
//! Linux's `icmp_msgs_per_sec`/`icmp_msgs_burst` beside its per-peer
//! limit), so a scan of many destinations cannot make the engine send more
//! than the global rate.
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
/// Errors per second per worker, all destinations together (Linux's
/// `icmp_msgs_per_sec` default).
pub const DEFAULT_GLOBAL_RATE: u32 = 1000;
/// Burst of the global bucket (Linux's `icmp_msgs_burst` default).
pub const DEFAULT_GLOBAL_BURST: u32 = 50;
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

impl Bucket {
    /// Refills by the time since the last call (a fresh bucket starts full)
    /// and says whether one token is there, without taking it.
    fn refill(&mut self, now_ns: u64, cost: u64, cap: u64) -> bool {
        if !self.used {
            *self = Bucket {
                credit_ns: cap,
                last_ns: now_ns,
                used: true,
            };
        } else {
            let elapsed = now_ns.saturating_sub(self.last_ns);
            self.credit_ns = self.credit_ns.saturating_add(elapsed).min(cap);
            self.last_ns = self.last_ns.max(now_ns);
        }
        cap != 0 && cost != u64::MAX && self.credit_ns >= cost
    }
}

/// The limits of one worker's ICMP errors (`[engine]` `icmp_rate_per_dest`,
/// `icmp_burst_per_dest`, `icmp_msgs_per_sec`, `icmp_msgs_burst`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpLimits {
    pub per_dest_rate: u32,
    pub per_dest_burst: u32,
    pub global_rate: u32,
    pub global_burst: u32,
}

impl Default for IcmpLimits {
    fn default() -> Self {
        IcmpLimits {
            per_dest_rate: DEFAULT_RATE,
            per_dest_burst: DEFAULT_BURST,
            global_rate: DEFAULT_GLOBAL_RATE,
            global_burst: DEFAULT_GLOBAL_BURST,
        }
    }
}

/// Nanoseconds per token for a rate; `u64::MAX` for rate 0 (never).
fn cost_of(rate_per_sec: u32) -> u64 {
    if rate_per_sec == 0 {
        u64::MAX
    } else {
        (NS_PER_SEC / u64::from(rate_per_sec)).max(1)
    }
}

/// Token-bucket limiter keyed by destination address, under a global bucket.
#[derive(Debug, Clone)]
pub struct IcmpRateLimiter {
    buckets: Box<[Bucket; SLOTS]>,
    /// Nanoseconds per token (1 s / rate); `u64::MAX`: never.
    cost_ns: u64,
    /// Maximum credit: `burst` tokens.
    cap_ns: u64,
    /// The bucket of all destinations together, with its own cost and cap.
    global: Bucket,
    global_cost_ns: u64,
    global_cap_ns: u64,
}

impl IcmpRateLimiter {
    /// `rate_per_sec` tokens refill per second up to `burst` tokens per
    /// destination, under the default global limit; a fresh bucket starts
    /// full. `rate_per_sec == 0` disables sending entirely, `burst == 0`
    /// likewise (a bucket that holds nothing).
    pub fn new(rate_per_sec: u32, burst: u32) -> Self {
        Self::with_limits(IcmpLimits {
            per_dest_rate: rate_per_sec,
            per_dest_burst: burst,
            ..IcmpLimits::default()
        })
    }

    /// A limiter with these per-destination and global limits.
    pub fn with_limits(l: IcmpLimits) -> Self {
        let cost_ns = cost_of(l.per_dest_rate);
        let global_cost_ns = cost_of(l.global_rate);
        IcmpRateLimiter {
            buckets: Box::new([Bucket::default(); SLOTS]),
            cost_ns,
            cap_ns: cost_ns.saturating_mul(u64::from(l.per_dest_burst)),
            global: Bucket::default(),
            global_cost_ns,
            global_cap_ns: global_cost_ns.saturating_mul(u64::from(l.global_burst)),
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

    /// Takes one token for `dst` at time `now_ns` (monotonic), and one of
    /// the global bucket; false when either is empty (then neither is
    /// taken). A clock that goes backwards refills nothing.
    pub fn allow(&mut self, dst: IpAddr, now_ns: u64) -> bool {
        let (cost, cap, gcost, gcap) = (
            self.cost_ns,
            self.cap_ns,
            self.global_cost_ns,
            self.global_cap_ns,
        );
        if !self.global.refill(now_ns, gcost, gcap) {
            return false;
        }
        let b = &mut self.buckets[Self::slot(dst)];
        if !b.refill(now_ns, cost, cap) {
            return false;
        }
        b.credit_ns -= cost;
        self.global.credit_ns -= gcost;
        true
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
    fn the_global_bucket_caps_many_destinations() {
        // 100/s per destination (burst 50), 1000/s for all (burst 50): a scan
        // of 1,000 destinations at one instant gets the global burst, not
        // 50 per destination.
        let mut l = IcmpRateLimiter::with_limits(IcmpLimits::default());
        let t0 = 7 * NS_PER_SEC;
        let dst = |i: u32| IpAddr::V4(Ipv4Addr::from(0xc612_0000 + i));
        let n = (0..1000).filter(|&i| l.allow(dst(i), t0)).count();
        assert_eq!(n, DEFAULT_GLOBAL_BURST as usize);
        // Over one second of a scan, one try per destination per millisecond:
        // about the global rate (plus the burst), far below 1,000 x 100.
        let n = (1..=1000u64)
            .map(|ms| {
                (0..8)
                    .filter(|&i| l.allow(dst(i + ms as u32 * 8), t0 + ms * MS))
                    .count()
            })
            .sum::<usize>();
        assert!((990..=1010).contains(&n), "{n}");
        // A denied global token takes nothing from the destination's bucket.
        let mut l = IcmpRateLimiter::with_limits(IcmpLimits {
            global_rate: 1,
            global_burst: 1,
            ..IcmpLimits::default()
        });
        assert!(l.allow(a(1), t0));
        assert!(!l.allow(a(2), t0));
        assert!(l.allow(a(2), t0 + NS_PER_SEC));
        let mut off = IcmpRateLimiter::with_limits(IcmpLimits {
            global_rate: 0,
            ..IcmpLimits::default()
        });
        assert!(!off.allow(a(1), t0));
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
