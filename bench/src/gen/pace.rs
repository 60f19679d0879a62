//! Rate pacing by timestamps: packet `i` is due at `start + i / rate`. Each
//! loop asks how many packets are due now (at most one burst), so the rate
//! holds on average without sleeping per packet; when the sender falls
//! behind it catches up in full bursts (bounded by the ring), never by
//! skipping.

/// A pacer for `rate` packets per second (None: as fast as possible).
#[derive(Clone, Copy, Debug)]
pub struct Pacer {
    start_ns: u64,
    rate: Option<f64>,
    sent: u64,
    /// Packets that go together: none go until this many are due.
    burst: u64,
}

impl Pacer {
    /// Starts at `start_ns`.
    pub fn new(start_ns: u64, rate: Option<f64>) -> Pacer {
        Pacer {
            start_ns,
            rate: rate.filter(|r| *r > 0.0),
            sent: 0,
            burst: 1,
        }
    }

    /// Sends in bursts of `n` (1..=64): packet `i` still leaves no earlier than
    /// `start + i / rate`, but the pacer holds packets back until `n` are due, so
    /// the receiver sees `rate / n` bursts per second whatever the rate. The cost
    /// mode of bench.sh uses it: a receiver woken per burst then does the same
    /// work per packet at every offered rate.
    pub fn with_burst(mut self, n: usize) -> Pacer {
        self.burst = n.clamp(1, 64) as u64;
        self
    }

    /// How many packets (at most `max`) may go at `now_ns`.
    #[inline]
    pub fn due(&self, now_ns: u64, max: usize) -> usize {
        match self.rate {
            None => max,
            Some(r) => {
                let elapsed = now_ns.saturating_sub(self.start_ns) as f64 * 1e-9;
                let allowed = (elapsed * r) as u64 + 1; // the first packet at t=0
                let due = allowed.saturating_sub(self.sent);
                if due < self.burst.min(max as u64) {
                    return 0;
                }
                (due as usize).min(max)
            }
        }
    }

    /// Records `n` packets sent.
    #[inline]
    pub fn sent(&mut self, n: usize) {
        self.sent += n as u64;
    }

    /// Nanoseconds until the next packet is due (0 if one is due now).
    pub fn wait_ns(&self, now_ns: u64) -> u64 {
        match self.rate {
            None => 0,
            Some(r) => {
                // The last packet of the next burst.
                let last = self.sent + self.burst - 1;
                let due_at = self.start_ns + (last as f64 / r * 1e9) as u64;
                due_at.saturating_sub(now_ns)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_hold_packets_until_enough_are_due() {
        // 1 Mpps in bursts of 8: nothing until 8 are due (t = 7 µs), then 8.
        let mut p = Pacer::new(0, Some(1_000_000.0)).with_burst(8);
        assert_eq!(p.due(0, 64), 0);
        assert_eq!(p.wait_ns(0), 7_000);
        assert_eq!(p.due(6_999, 64), 0);
        assert_eq!(p.due(7_000, 64), 8);
        p.sent(8);
        assert_eq!(p.due(10_000, 64), 0);
        assert_eq!(p.wait_ns(10_000), 5_000);
        // Behind: catches up in whole bursts, capped by `max`.
        assert_eq!(p.due(1_000_000, 64), 64);
        assert_eq!(p.due(1_000_000, 4), 4, "a cap below the burst still sends");
        // Over a second the rate holds, and every send was a whole burst.
        let mut p = Pacer::new(0, Some(100_000.0)).with_burst(32);
        let (mut t, mut sends) = (0, 0);
        while t <= 1_000_000_000 {
            let n = p.due(t, 64);
            if n > 0 {
                assert!(n >= 32, "{n}");
                sends += 1;
            }
            p.sent(n);
            t += 1_000;
        }
        assert!((99_968..=100_001).contains(&p.sent), "{}", p.sent);
        assert_eq!(sends, 3125);
    }

    #[test]
    fn paces_at_the_rate() {
        let mut p = Pacer::new(1_000, Some(1_000_000.0)); // one per microsecond
        assert_eq!(p.due(1_000, 64), 1);
        p.sent(1);
        assert_eq!(p.due(1_500, 64), 0);
        assert_eq!(p.wait_ns(1_500), 500);
        assert_eq!(p.due(11_000, 64), 10);
        assert_eq!(p.due(1_000_000_000, 64), 64, "capped at a burst");
        // Simulated loop: over one second exactly rate + 1 packets go.
        let mut p = Pacer::new(0, Some(1_000_000.0));
        let mut t = 0;
        while t <= 1_000_000_000 {
            let n = p.due(t, 64);
            p.sent(n);
            t += 37_000;
        }
        let n = p.due(1_000_000_000, usize::MAX);
        p.sent(n);
        assert_eq!(p.sent, 1_000_001);
    }

    #[test]
    fn max_rate_is_always_a_full_burst() {
        let p = Pacer::new(0, None);
        assert_eq!(p.due(0, 64), 64);
        assert_eq!(p.wait_ns(0), 0);
        assert_eq!(Pacer::new(0, Some(0.0)).due(5, 64), 64, "rate 0 means max");
    }
}
