//! The retransmission timer's value (RFC 6298): the smoothed round-trip time
//! (SRTT), its variation (RTTVAR), the retransmission timeout (RTO) and its
//! exponential backoff.
//!
//! - §2: before any sample the RTO is `initial_rto` (1 s, §2.1). The first
//!   sample R sets SRTT = R, RTTVAR = R/2 (§2.2); later ones set
//!   RTTVAR = 3/4·RTTVAR + 1/4·|SRTT − R| (with the old SRTT), then
//!   SRTT = 7/8·SRTT + 1/8·R (§2.3). RTO = SRTT + max(G, 4·RTTVAR), clamped
//!   to [`min_rto`, `max_rto`] (§2.4, §2.5).
//! - §5.5: each expiry doubles the RTO up to `max_rto` ([`RttEstimator::backoff`]);
//!   a new sample recomputes it from SRTT and RTTVAR, which ends the backoff.
//! - §5.7: an RTO of 3 s once the handshake completes if a SYN timed out and
//!   no sample was taken ([`RttEstimator::begin_data_after_syn_timeout`]).
//!
//! Deviation: `min_rto` defaults to 200 ms like Linux rather than the RFC's
//! 1 s (§2.4 SHOULD); [`RttConfig::RFC6298`] has the RFC's value.
//!
//! The caller owns Karn's rule (RFC 6298 §3): never take a sample from a
//! segment that was retransmitted, since its ACK may be for either copy.
//! With timestamps (RFC 7323 §4) the echoed TSecr names the copy, so a
//! sample from TSecr is valid also after retransmissions. The caller also
//! runs the timer itself (§5.1-5.6: start, restart on new ACKs, stop when
//! all data is acknowledged), e.g. on the worker's timer wheel.
//!
//! Units: integer microseconds in `u32` (up to ~71 minutes, far above
//! `max_rto`), so the per-ACK update is a few integer operations with no
//! `Duration` conversions; the state is four `u32` and a flag besides the
//! configuration.
//! The smoothing divides with truncation: SRTT can settle up to 7 µs below
//! a constant R, which is below any timer's granularity.

/// Microseconds per millisecond, for writing configurations.
pub const US_PER_MS: u32 = 1_000;
/// Microseconds per second.
pub const US_PER_SEC: u32 = 1_000_000;
/// RTO after a SYN timed out and no sample was taken (RFC 6298 §5.7).
pub const SYN_FALLBACK_RTO_US: u32 = 3 * US_PER_SEC;

/// Bounds and granularity of the retransmission timeout, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttConfig {
    /// Lower bound on the RTO (RFC 6298 §2.4; default 200 ms like Linux).
    pub min_rto_us: u32,
    /// Upper bound on the RTO, also for backoff (§2.5, §5.5; default 60 s).
    pub max_rto_us: u32,
    /// RTO before the first sample (§2.1; default 1 s).
    pub initial_rto_us: u32,
    /// Clock granularity G: the timer's tick (default 1 ms).
    pub granularity_us: u32,
}

impl RttConfig {
    /// The RFC's values: `min_rto` 1 s (§2.4), `max_rto` 60 s, initial 1 s.
    pub const RFC6298: RttConfig = RttConfig {
        min_rto_us: US_PER_SEC,
        max_rto_us: 60 * US_PER_SEC,
        initial_rto_us: US_PER_SEC,
        granularity_us: US_PER_MS,
    };

    /// This configuration with `max_rto >= min_rto` and `initial_rto`
    /// inside the bounds, so every RTO it yields is within them.
    fn normalized(self) -> RttConfig {
        let max_rto_us = self.max_rto_us.max(self.min_rto_us);
        RttConfig {
            max_rto_us,
            initial_rto_us: self.initial_rto_us.clamp(self.min_rto_us, max_rto_us),
            ..self
        }
    }
}

impl Default for RttConfig {
    fn default() -> Self {
        RttConfig {
            min_rto_us: 200 * US_PER_MS,
            ..RttConfig::RFC6298
        }
    }
}

/// One connection's RTT estimate and retransmission timeout (RFC 6298).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttEstimator {
    cfg: RttConfig,
    srtt_us: u32,
    rttvar_us: u32,
    /// The current RTO, including backoff.
    rto_us: u32,
    /// Consecutive expiries since the last sample or reset.
    backoffs: u32,
    has_sample: bool,
}

impl RttEstimator {
    /// An estimator with no sample yet: RTO = `initial_rto`. A configuration
    /// with `max_rto < min_rto` is read as `max_rto = min_rto`.
    pub fn new(cfg: RttConfig) -> Self {
        let cfg = cfg.normalized();
        RttEstimator {
            cfg,
            srtt_us: 0,
            rttvar_us: 0,
            rto_us: cfg.initial_rto_us,
            backoffs: 0,
            has_sample: false,
        }
    }

    /// Takes a round-trip sample of `rtt_us` (RFC 6298 §2.2, §2.3) and
    /// recomputes the RTO, which also ends any backoff. The caller applies
    /// Karn's rule (see the module doc).
    #[inline]
    pub fn sample(&mut self, rtt_us: u32) {
        if self.has_sample {
            // RTTVAR first: it uses the SRTT from before this sample.
            let delta = u64::from(self.srtt_us.abs_diff(rtt_us));
            // Weighted means of u32 values: the results fit in u32.
            self.rttvar_us = ((3 * u64::from(self.rttvar_us) + delta) / 4) as u32;
            self.srtt_us = ((7 * u64::from(self.srtt_us) + u64::from(rtt_us)) / 8) as u32;
        } else {
            self.srtt_us = rtt_us;
            self.rttvar_us = rtt_us / 2;
            self.has_sample = true;
        }
        self.reset_backoff();
    }

    /// The retransmission timeout to arm the timer with, in microseconds;
    /// always within [`min_rto`, `max_rto`].
    #[inline]
    pub fn rto_us(&self) -> u32 {
        self.rto_us
    }

    /// The timer expired (RFC 6298 §5.5): doubles the RTO, at most to
    /// `max_rto`, and returns the new value.
    #[inline]
    pub fn backoff(&mut self) -> u32 {
        self.rto_us = self.rto_us.saturating_mul(2).min(self.cfg.max_rto_us);
        self.backoffs = self.backoffs.saturating_add(1);
        self.rto_us
    }

    /// Drops the backoff: the RTO is again computed from SRTT and RTTVAR
    /// (or `initial_rto` without a sample). [`sample`](Self::sample) does this.
    #[inline]
    pub fn reset_backoff(&mut self) {
        self.rto_us = self.base_rto_us();
        self.backoffs = 0;
    }

    /// Consecutive expiries since the last sample or reset (a caller can give
    /// up on a connection after so many, like Linux's `tcp_retries2`).
    #[inline]
    pub fn backoffs(&self) -> u32 {
        self.backoffs
    }

    /// The handshake completed after a SYN (or SYN-ACK) timed out (RFC 6298
    /// §5.7): without an RTT sample the RTO becomes at least 3 s (within
    /// `max_rto`) and the backoff ends; with a sample this does nothing.
    pub fn begin_data_after_syn_timeout(&mut self) {
        if !self.has_sample {
            self.cfg.initial_rto_us = self
                .cfg
                .initial_rto_us
                .max(SYN_FALLBACK_RTO_US)
                .min(self.cfg.max_rto_us);
            self.reset_backoff();
        }
    }

    /// The smoothed RTT in microseconds, `None` before the first sample.
    #[inline]
    pub fn srtt_us(&self) -> Option<u32> {
        self.has_sample.then_some(self.srtt_us)
    }

    /// The RTT variation in microseconds, `None` before the first sample.
    #[inline]
    pub fn rttvar_us(&self) -> Option<u32> {
        self.has_sample.then_some(self.rttvar_us)
    }

    /// The configuration in use (normalised by [`new`](Self::new)).
    pub fn config(&self) -> RttConfig {
        self.cfg
    }

    /// RTO without backoff: SRTT + max(G, 4·RTTVAR), clamped (§2.3-§2.5).
    fn base_rto_us(&self) -> u32 {
        if !self.has_sample {
            return self.cfg.initial_rto_us;
        }
        let var = self
            .cfg
            .granularity_us
            .max(self.rttvar_us.saturating_mul(4));
        self.srtt_us
            .saturating_add(var)
            .clamp(self.cfg.min_rto_us, self.cfg.max_rto_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: u32 = US_PER_MS;
    const SEC: u32 = US_PER_SEC;

    #[test]
    fn defaults() {
        let cfg = RttConfig::default();
        assert_eq!(cfg.min_rto_us, 200 * MS);
        assert_eq!(cfg.max_rto_us, 60 * SEC);
        assert_eq!(cfg.initial_rto_us, SEC);
        assert_eq!(cfg.granularity_us, MS);
        let r = RttEstimator::new(cfg);
        assert_eq!(r.rto_us(), SEC);
        assert_eq!(r.srtt_us(), None);
        assert_eq!(r.rttvar_us(), None);
    }

    #[test]
    fn first_sample() {
        // §2.2: SRTT = R, RTTVAR = R/2, RTO = 100 + max(1, 4 * 50) = 300 ms.
        let mut r = RttEstimator::new(RttConfig::default());
        r.sample(100 * MS);
        assert_eq!(r.srtt_us(), Some(100 * MS));
        assert_eq!(r.rttvar_us(), Some(50 * MS));
        assert_eq!(r.rto_us(), 300 * MS);
        // The RFC's 1 s floor wins over 300 ms.
        let mut r = RttEstimator::new(RttConfig::RFC6298);
        r.sample(100 * MS);
        assert_eq!(r.rto_us(), SEC);
        // 10 ms: 10 + 20 = 30 ms, raised to the 200 ms floor.
        let mut r = RttEstimator::new(RttConfig::default());
        r.sample(10 * MS);
        assert_eq!(r.rto_us(), 200 * MS);
    }

    #[test]
    fn second_sample_uses_old_srtt_for_rttvar() {
        let mut r = RttEstimator::new(RttConfig::default());
        r.sample(100 * MS);
        r.sample(200 * MS);
        // RTTVAR = 3/4 * 50 + 1/4 * |100 - 200| = 62.5 ms (59.375 with the new SRTT).
        assert_eq!(r.rttvar_us(), Some(62_500));
        // SRTT = 7/8 * 100 + 1/8 * 200 = 112.5 ms.
        assert_eq!(r.srtt_us(), Some(112_500));
        // RTO = 112.5 + 4 * 62.5 = 362.5 ms.
        assert_eq!(r.rto_us(), 362_500);
    }

    #[test]
    fn granularity_dominates_small_variance() {
        let cfg = RttConfig {
            granularity_us: 500 * MS,
            ..RttConfig::default()
        };
        let mut r = RttEstimator::new(cfg);
        r.sample(100 * MS);
        assert_eq!(r.rto_us(), 600 * MS);
        // A steady RTT drives RTTVAR towards 0; G keeps the margin.
        for _ in 0..100 {
            r.sample(100 * MS);
        }
        assert_eq!(r.rttvar_us(), Some(0));
        assert_eq!(r.rto_us(), 600 * MS);
    }

    #[test]
    fn max_rto_clamps_samples() {
        let mut r = RttEstimator::new(RttConfig::default());
        r.sample(30 * SEC);
        // 30 s + 4 * 15 s = 90 s, clamped to 60 s.
        assert_eq!(r.rto_us(), 60 * SEC);
        r.sample(u32::MAX);
        assert_eq!(r.rto_us(), 60 * SEC);
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_a_sample_ends_it() {
        let mut r = RttEstimator::new(RttConfig::default());
        let got: Vec<u32> = (0..8).map(|_| r.backoff() / SEC).collect();
        assert_eq!(got, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(r.backoffs(), 8);
        r.sample(100 * MS);
        assert_eq!(r.backoffs(), 0);
        assert_eq!(r.rto_us(), 300 * MS);
        assert_eq!(r.backoff(), 600 * MS);
        // Without a sample, a reset goes back to the computed value.
        r.reset_backoff();
        assert_eq!(r.rto_us(), 300 * MS);
        assert_eq!(r.backoffs(), 0);
    }

    #[test]
    fn syn_timeout_fallback() {
        // §5.7: no sample (Karn's rule excluded the retransmitted SYN): 3 s.
        let mut r = RttEstimator::new(RttConfig::default());
        r.backoff();
        r.begin_data_after_syn_timeout();
        assert_eq!(r.rto_us(), 3 * SEC);
        assert_eq!(r.backoffs(), 0);
        assert_eq!(r.backoff(), 6 * SEC);
        r.reset_backoff();
        assert_eq!(r.rto_us(), 3 * SEC);
        // A sample (e.g. from TSecr) takes over.
        r.sample(100 * MS);
        assert_eq!(r.rto_us(), 300 * MS);
        r.begin_data_after_syn_timeout();
        assert_eq!(r.rto_us(), 300 * MS);
        // Never beyond max_rto.
        let cfg = RttConfig {
            max_rto_us: 2 * SEC,
            ..RttConfig::default()
        };
        let mut r = RttEstimator::new(cfg);
        r.begin_data_after_syn_timeout();
        assert_eq!(r.rto_us(), 2 * SEC);
    }

    #[test]
    fn inconsistent_config_is_normalised() {
        let cfg = RttConfig {
            min_rto_us: 5 * SEC,
            max_rto_us: SEC,
            initial_rto_us: 0,
            granularity_us: 0,
        };
        let mut r = RttEstimator::new(cfg);
        assert_eq!(r.config().max_rto_us, 5 * SEC);
        assert_eq!(r.rto_us(), 5 * SEC);
        r.sample(0);
        assert_eq!(r.rto_us(), 5 * SEC);
        assert_eq!(r.backoff(), 5 * SEC);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Sample(u32),
        Backoff,
        Reset,
        SynFallback,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<u32>().prop_map(Op::Sample),
            (0u32..10 * SEC).prop_map(Op::Sample),
            Just(Op::Backoff),
            Just(Op::Reset),
            Just(Op::SynFallback),
        ]
    }

    proptest! {
        #[test]
        fn rto_always_within_bounds(
            min in any::<u32>(),
            max in any::<u32>(),
            initial in any::<u32>(),
            g in any::<u32>(),
            ops in proptest::collection::vec(op(), 0..64),
        ) {
            let cfg = RttConfig { min_rto_us: min, max_rto_us: max, initial_rto_us: initial, granularity_us: g };
            let mut r = RttEstimator::new(cfg);
            let hi = max.max(min);
            prop_assert!((min..=hi).contains(&r.rto_us()));
            for op in ops {
                match op {
                    Op::Sample(s) => r.sample(s),
                    Op::Backoff => { r.backoff(); }
                    Op::Reset => r.reset_backoff(),
                    Op::SynFallback => r.begin_data_after_syn_timeout(),
                }
                prop_assert!((min..=hi).contains(&r.rto_us()), "{:?}", r);
            }
        }

        #[test]
        fn backoff_never_shrinks(rtt in 0u32..120 * SEC, n in 0usize..40) {
            let mut r = RttEstimator::new(RttConfig::default());
            r.sample(rtt);
            let mut last = r.rto_us();
            for _ in 0..n {
                let next = r.backoff();
                prop_assert!(next >= last);
                prop_assert!(next == 60 * SEC || next == 2 * last);
                last = next;
            }
        }

        #[test]
        fn steady_rtt_converges(first in 0u32..10 * SEC, rtt in 0u32..10 * SEC) {
            let mut r = RttEstimator::new(RttConfig::default());
            r.sample(first);
            for _ in 0..250 {
                r.sample(rtt);
            }
            let srtt = r.srtt_us().unwrap();
            prop_assert!(srtt <= rtt && rtt - srtt < 8, "srtt {} rtt {}", srtt, rtt);
        }
    }
}
