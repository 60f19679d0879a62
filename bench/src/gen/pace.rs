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
}

impl Pacer {
    /// Starts at `start_ns`.
    pub fn new(start_ns: u64, rate: Option<f64>) -> Pacer {
        Pacer {
            start_ns,
            rate: rate.filter(|r| *r > 0.0),
            sent: 0,
        }
    }

    /// How many packets (at most `max`) may go at `now_ns`.
    #[inline]
    pub fn due(&self, now_ns: u64, max: usize) -> usize {
        match self.rate {
            None => max,
            Some(r) => {
                let elapsed = now_ns.saturating_sub(self.start_ns) as f64 * 1e-9;
                let allowed = (elapsed * r) as u64 + 1; // the first packet at t=0
                (allowed.saturating_sub(self.sent) as usize).min(max)
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
                let due_at = self.start_ns + (self.sent as f64 / r * 1e9) as u64;
                due_at.saturating_sub(now_ns)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
