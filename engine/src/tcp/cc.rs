//! Congestion control: slow start, congestion avoidance, fast retransmit and
//! fast recovery (RFC 5681 §3), with NewReno's partial-ACK handling
//! (RFC 6582 §3.2), the initial window of RFC 6928 §2 and the restart after
//! idle of RFC 5681 §4.1.
//!
//! [`Cc`] is pure logic over integers (bytes and sequence numbers): the
//! connection tells it what happened (a new ACK, a duplicate ACK, a
//! retransmission timeout) and acts on the [`AckAction`] it returns; the
//! connection also sends new data while its flight is below
//! min(cwnd, rwnd) ([`Cc::usable`]). Without SACK, FlightSize is
//! SND.NXT − SND.UNA.
//!
//! Choices:
//! - Slow start counts bytes with the limit L = 2·SMSS per ACK (RFC 3465
//!   §2.2, allowed by RFC 5681 §3.1): cwnd += min(acked, 2·SMSS), so a
//!   receiver that delays ACKs (one per two segments) still doubles cwnd per
//!   RTT. In the slow start that follows a retransmission timeout L is
//!   1·SMSS (RFC 3465 §2.3), as ACKs of go-back-N retransmissions may cover
//!   segments that were never lost.
//! - Congestion avoidance counts bytes too (RFC 5681 §3.1, RFC 3465 §2.1):
//!   cwnd grows by one SMSS each time a cwnd's worth of bytes has been
//!   acknowledged, so exactly one SMSS per RTT whatever the ACK pattern, and
//!   with no division. cwnd == ssthresh counts as congestion avoidance.
//! - A full ACK ends recovery with cwnd = min(ssthresh, max(FlightSize,
//!   SMSS) + SMSS) (RFC 6582 §3.2 step 3, option 1), which cannot burst.
//! - `recover` holds SND.NXT when recovery (or a timeout) began, i.e. one
//!   past the highest sequence number sent, so "covers more than recover"
//!   and "full acknowledgment" are both `ack >= recover`. Outside recovery
//!   it follows SND.UNA forward, so it never falls 2^31 behind and turns
//!   "ahead" by wraparound on a long transfer.
//!
//! Left to the caller: which ACKs are duplicates (RFC 5681 §2: data
//! outstanding, no payload, no SYN/FIN, ACK = SND.UNA, window unchanged);
//! limited transmit on the first two duplicates (RFC 3042: the caller asks
//! [`Cc::usable_limited`] when it sends new data); restarting the retransmission timer on new ACKs
//! (RFC 6298 §5.3), which for partial ACKs is RFC 6582 §4's
//! "Slow-but-Steady" variant; calling [`Cc::restart_after_idle`] when
//! nothing was sent for longer than an RTO. Not implemented: SACK-based
//! recovery, RFC 6582's optional heuristics (§4.1), RFC 7661 (cwnd
//! validation for application-limited flows).

use super::seq::Seq;

/// Duplicate ACKs that trigger fast retransmit (RFC 5681 §3.2).
pub const DUP_ACK_THRESHOLD: u32 = 3;

/// The byte-counting limit in slow start, in segments (RFC 3465 §2.2).
pub const SLOW_START_LIMIT_SEGMENTS: u32 = 2;

/// The initial window for a sender maximum segment size of `smss` bytes
/// (RFC 6928 §2): min(10·SMSS, max(2·SMSS, 14600)).
pub const fn initial_window(smss: u32) -> u32 {
    let two = smss.saturating_mul(2);
    let ten = smss.saturating_mul(10);
    let floor = if two > 14_600 { two } else { 14_600 };
    if ten < floor {
        ten
    } else {
        floor
    }
}

/// What the connection does after an ACK, besides sending new data as
/// [`Cc::usable`] allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckAction {
    /// Nothing more.
    None,
    /// The third duplicate ACK: retransmit the segment at SND.UNA now
    /// (RFC 5681 §3.2 step 3); fast recovery has begun.
    FastRetransmit,
    /// A partial ACK in fast recovery: retransmit the segment at the new
    /// SND.UNA now (RFC 6582 §3.2 step 3); recovery goes on.
    RetransmitNext,
}

/// One connection's congestion state (RFC 5681, RFC 6582), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cc {
    smss: u32,
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged in congestion avoidance towards the next increase.
    bytes_acked: u32,
    dup_acks: u32,
    /// SND.NXT when the last recovery or timeout began (see the module doc).
    recover: Seq,
    in_recovery: bool,
    /// A timeout happened and no new data was acknowledged since: another
    /// timeout is for the same segment and keeps ssthresh (RFC 5681 §3.1).
    timed_out: bool,
    /// In the slow start that follows a timeout (L = 1 SMSS).
    after_timeout: bool,
}

impl Cc {
    /// A sender with maximum segment size `smss` (0 is read as 1) whose
    /// initial send sequence number is `iss` (RFC 6582: recover = ISS):
    /// cwnd = IW (RFC 6928), ssthresh "arbitrarily high" (RFC 5681 §3.1).
    pub fn new(smss: u32, iss: Seq) -> Self {
        let smss = smss.max(1);
        Cc {
            smss,
            cwnd: initial_window(smss),
            ssthresh: u32::MAX,
            bytes_acked: 0,
            dup_acks: 0,
            recover: iss,
            in_recovery: false,
            timed_out: false,
            after_timeout: false,
        }
    }

    /// The handshake completed after `syn_retransmits` retransmissions of
    /// our SYN or SYN-ACK: with more than one, start from one segment
    /// instead of IW (RFC 6928 §2, relaxing RFC 5681 §3.1's "any").
    pub fn on_handshake(&mut self, syn_retransmits: u32) {
        if syn_retransmits > 1 {
            self.cwnd = self.smss;
        }
    }

    /// An ACK for new data: `ack` is the new SND.UNA, `acked` the bytes it
    /// newly acknowledges and `flight_before` the FlightSize before it.
    #[inline]
    pub fn on_ack(&mut self, ack: Seq, acked: u32, flight_before: u32) -> AckAction {
        self.dup_acks = 0;
        self.timed_out = false;
        if self.in_recovery {
            if ack.lt(self.recover) {
                // Partial ACK: deflate by what left the network, add back one
                // segment if a full one did (RFC 6582 §3.2 step 3).
                let mut cwnd = self.cwnd.saturating_sub(acked);
                if acked >= self.smss {
                    cwnd = cwnd.saturating_add(self.smss);
                }
                self.cwnd = cwnd.max(self.smss);
                return AckAction::RetransmitNext;
            }
            // Full ACK: leave recovery without a burst.
            let flight = flight_before.saturating_sub(acked);
            self.cwnd = self
                .ssthresh
                .min(flight.max(self.smss).saturating_add(self.smss));
            self.in_recovery = false;
            self.bytes_acked = 0;
        } else if self.cwnd < self.ssthresh {
            let segments = if self.after_timeout {
                1
            } else {
                SLOW_START_LIMIT_SEGMENTS
            };
            let limit = self.smss.saturating_mul(segments);
            self.cwnd = self.cwnd.saturating_add(acked.min(limit));
        } else {
            self.after_timeout = false;
            self.bytes_acked = self.bytes_acked.saturating_add(acked);
            if self.bytes_acked >= self.cwnd {
                self.bytes_acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.smss);
                // At most one increase per ACK; carry at most one window.
                self.bytes_acked = self.bytes_acked.min(self.cwnd);
            }
        }
        self.recover = self.recover.max(ack);
        AckAction::None
    }

    /// A duplicate ACK (the caller applies RFC 5681 §2's definition): `ack`
    /// is SND.UNA, `flight` the FlightSize, `snd_nxt` SND.NXT. The third one
    /// starts fast retransmit and recovery unless it does not cover
    /// `recover` (RFC 6582 §3.2 step 2); in recovery each one inflates cwnd
    /// by one segment (RFC 5681 §3.2 step 4).
    #[inline]
    pub fn on_dup_ack(&mut self, ack: Seq, flight: u32, snd_nxt: Seq) -> AckAction {
        self.dup_acks = self.dup_acks.saturating_add(1);
        if self.in_recovery {
            self.cwnd = self.cwnd.saturating_add(self.smss);
            return AckAction::None;
        }
        if self.dup_acks != DUP_ACK_THRESHOLD || ack.lt(self.recover) {
            return AckAction::None;
        }
        self.enter_recovery(flight, snd_nxt)
    }

    /// The retransmission timer expired with `flight` bytes outstanding and
    /// SND.NXT at `snd_nxt`: ssthresh = max(FlightSize/2, 2·SMSS) (held on
    /// a repeated timeout of the same segment), cwnd = 1 SMSS (the loss
    /// window, RFC 5681 §3.1), recovery ends and recover = SND.NXT
    /// (RFC 6582 §3.2 step 4).
    pub fn on_rto(&mut self, flight: u32, snd_nxt: Seq) {
        if !self.timed_out {
            self.ssthresh = self.loss_ssthresh(flight);
        }
        self.cwnd = self.smss;
        self.recover = snd_nxt;
        self.in_recovery = false;
        self.dup_acks = 0;
        self.bytes_acked = 0;
        self.timed_out = true;
        self.after_timeout = true;
    }

    /// Starts fast retransmit and recovery now, whatever the duplicate
    /// count (after a tail loss probe, one duplicate is enough): as the
    /// third duplicate ACK would.
    pub fn enter_recovery(&mut self, flight: u32, snd_nxt: Seq) -> AckAction {
        self.ssthresh = self.loss_ssthresh(flight);
        self.cwnd = self
            .ssthresh
            .saturating_add(self.smss.saturating_mul(DUP_ACK_THRESHOLD));
        self.recover = snd_nxt;
        self.in_recovery = true;
        self.bytes_acked = 0;
        AckAction::FastRetransmit
    }

    /// A loss repaired without a recovery episode (a tail loss probe):
    /// ssthresh = max(FlightSize/2, 2·SMSS) and cwnd = ssthresh, the
    /// window fast recovery would have ended with.
    pub fn reduce(&mut self, flight: u32) {
        self.ssthresh = self.loss_ssthresh(flight);
        self.cwnd = self.ssthresh;
        self.bytes_acked = 0;
    }

    /// A timeout found spurious (RFC 4015 §4, step 4): cwnd becomes
    /// FlightSize plus min(bytes acknowledged, IW) and ssthresh becomes
    /// `pipe_prev`, i.e. max(FlightSize, ssthresh) when the timer expired;
    /// the slow start of the timeout ends.
    pub fn undo_timeout(&mut self, pipe_prev: u32, flight: u32, acked: u32) {
        self.cwnd = flight
            .saturating_add(acked.min(initial_window(self.smss)))
            .max(self.smss);
        self.ssthresh = pipe_prev.max(self.smss.saturating_mul(2));
        self.timed_out = false;
        self.after_timeout = false;
        self.in_recovery = false;
        self.dup_acks = 0;
        self.bytes_acked = 0;
    }

    /// A fast retransmit found spurious (the segment was reordered, not
    /// lost): back to the state `before` it, out of recovery.
    pub fn undo_recovery(&mut self, before: Cc) {
        *self = before;
        self.in_recovery = false;
        self.dup_acks = 0;
    }

    /// Nothing was sent for longer than an RTO (RFC 5681 §4.1): cwnd becomes
    /// the restart window min(IW, cwnd) before sending again.
    pub fn restart_after_idle(&mut self) {
        self.cwnd = self.cwnd.min(initial_window(self.smss));
        self.bytes_acked = 0;
    }

    /// Bytes that may be sent now with `flight` outstanding and a peer
    /// window of `rwnd`: min(cwnd, rwnd) − FlightSize.
    #[inline]
    pub fn usable(&self, flight: u32, rwnd: u32) -> u32 {
        self.cwnd.min(rwnd).saturating_sub(flight)
    }

    /// [`usable`](Self::usable) with RFC 3042 limited transmit: on the
    /// first and second duplicate ACK outside recovery, one more SMSS each
    /// of *new* data may go (cwnd itself unchanged), so that a small window
    /// still produces the three duplicates fast retransmit needs. The
    /// caller uses it only when the next byte is new data (SND.NXT = SND.MAX).
    #[inline]
    pub fn usable_limited(&self, flight: u32, rwnd: u32) -> u32 {
        let extra = if !self.in_recovery && (1..DUP_ACK_THRESHOLD).contains(&self.dup_acks) {
            self.dup_acks.saturating_mul(self.smss)
        } else {
            0
        };
        self.cwnd
            .saturating_add(extra)
            .min(rwnd)
            .saturating_sub(flight)
    }

    /// The congestion window in bytes (never below one SMSS).
    #[inline]
    pub fn cwnd(&self) -> u32 {
        self.cwnd
    }

    /// The slow start threshold in bytes (`u32::MAX` until the first loss).
    #[inline]
    pub fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    /// The sender maximum segment size in bytes.
    #[inline]
    pub fn smss(&self) -> u32 {
        self.smss
    }

    /// In slow start (cwnd < ssthresh).
    #[inline]
    pub fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }

    /// In NewReno fast recovery.
    #[inline]
    pub fn in_recovery(&self) -> bool {
        self.in_recovery
    }

    /// Consecutive duplicate ACKs (1 and 2 allow limited transmit, RFC 3042).
    #[inline]
    pub fn dup_acks(&self) -> u32 {
        self.dup_acks
    }

    /// NewReno's `recover` (SND.NXT when recovery or a timeout began).
    #[inline]
    pub fn recover(&self) -> Seq {
        self.recover
    }

    /// RFC 5681 eq. (4): max(FlightSize / 2, 2·SMSS).
    fn loss_ssthresh(&self, flight: u32) -> u32 {
        (flight / 2).max(self.smss.saturating_mul(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MSS: u32 = 1460;
    const ISS: Seq = Seq(1_000);

    /// A sender in steady state: `cwnd` and `ssthresh` in segments,
    /// SND.UNA at `una` (past the handshake).
    fn sender(cwnd: u32, ssthresh: u32, una: Seq) -> Cc {
        let mut cc = Cc::new(MSS, una - 1);
        cc.cwnd = cwnd * MSS;
        cc.ssthresh = ssthresh * MSS;
        cc.recover = una;
        cc
    }

    /// One RTT: the whole window is sent and acknowledged `per_ack`
    /// segments at a time. Returns SND.UNA after it.
    fn round(cc: &mut Cc, una: Seq, per_ack: u32) -> Seq {
        let segs = cc.cwnd() / MSS;
        let mut una = una;
        let mut flight = segs * MSS;
        let mut left = segs;
        while left > 0 {
            let n = left.min(per_ack);
            una += n * MSS;
            assert_eq!(cc.on_ack(una, n * MSS, flight), AckAction::None);
            flight -= n * MSS;
            left -= n;
        }
        una
    }

    #[test]
    fn initial_windows() {
        assert_eq!(initial_window(1460), 14_600); // 10 segments
        assert_eq!(initial_window(536), 5_360); // 10 segments
        assert_eq!(initial_window(4_000), 14_600); // 3.65 segments
        assert_eq!(initial_window(8_960), 17_920); // 2 segments
        assert_eq!(initial_window(u32::MAX), u32::MAX);
        let cc = Cc::new(MSS, ISS);
        assert_eq!(cc.cwnd(), 14_600);
        assert_eq!(cc.ssthresh(), u32::MAX);
        assert!(cc.in_slow_start() && !cc.in_recovery());
    }

    #[test]
    fn handshake_retransmits() {
        let mut cc = Cc::new(MSS, ISS);
        cc.on_handshake(1);
        assert_eq!(cc.cwnd(), 14_600);
        cc.on_handshake(2);
        assert_eq!(cc.cwnd(), MSS);
    }

    #[test]
    fn slow_start_doubles_per_rtt() {
        // An ACK per segment: 10, 20, 40, 80 segments.
        let mut cc = Cc::new(MSS, ISS);
        let mut una = ISS + 1;
        for want in [20, 40, 80] {
            una = round(&mut cc, una, 1);
            assert_eq!(cc.cwnd(), want * MSS);
        }
        // Delayed ACKs (one per two segments) still double with L = 2 SMSS.
        let mut cc = Cc::new(MSS, ISS);
        let mut una = ISS + 1;
        for want in [20, 40, 80] {
            una = round(&mut cc, una, 2);
            assert_eq!(cc.cwnd(), want * MSS);
        }
        // A stretch ACK of 4 segments counts as 2.
        let mut cc = Cc::new(MSS, ISS);
        cc.on_ack(ISS + 1 + 4 * MSS, 4 * MSS, 10 * MSS);
        assert_eq!(cc.cwnd(), 12 * MSS);
        // A small ACK counts its bytes.
        cc.on_ack(ISS + 1 + 4 * MSS + 100, 100, 6 * MSS);
        assert_eq!(cc.cwnd(), 12 * MSS + 100);
    }

    #[test]
    fn congestion_avoidance_adds_one_segment_per_rtt() {
        let mut cc = sender(20, 20, ISS + 1);
        assert!(!cc.in_slow_start());
        let mut una = ISS + 1;
        for want in 21..=25 {
            una = round(&mut cc, una, 1);
            assert_eq!(cc.cwnd(), want * MSS);
        }
        // The same with delayed ACKs: not halved as with SMSS*SMSS/cwnd per ACK.
        let mut cc = sender(20, 10, ISS + 1);
        let mut una = ISS + 1;
        for want in 21..=25 {
            una = round(&mut cc, una, 2);
            assert_eq!(cc.cwnd(), want * MSS);
        }
    }

    #[test]
    fn slow_start_hands_over_to_congestion_avoidance() {
        let mut cc = sender(10, 15, ISS + 1);
        let una = round(&mut cc, ISS + 1, 1);
        // 10 ACKs: 5 in slow start up to 15 segments, then 5 segments'
        // worth counted towards the next increase.
        assert_eq!(cc.cwnd(), 15 * MSS);
        assert!(!cc.in_slow_start());
        // 15 more: the increase comes after 10 of them.
        round(&mut cc, una, 1);
        assert_eq!(cc.cwnd(), 16 * MSS);
    }

    #[test]
    fn three_dup_acks_then_partial_then_full_ack() {
        // 20 segments in flight, cwnd 20 segments, segment at SND.UNA lost.
        let una = ISS + 1;
        let nxt = una + 20 * MSS;
        let flight = 20 * MSS;
        let mut cc = sender(20, 64, una);
        assert_eq!(cc.on_dup_ack(una, flight, nxt), AckAction::None);
        assert_eq!(cc.on_dup_ack(una, flight, nxt), AckAction::None);
        assert_eq!(cc.dup_acks(), 2);
        assert_eq!(cc.cwnd(), 20 * MSS);
        // RFC 5681 §3.2: ssthresh = 20/2 = 10, cwnd = 10 + 3 segments.
        assert_eq!(cc.on_dup_ack(una, flight, nxt), AckAction::FastRetransmit);
        assert!(cc.in_recovery());
        assert_eq!(cc.ssthresh(), 10 * MSS);
        assert_eq!(cc.cwnd(), 13 * MSS);
        assert_eq!(cc.recover(), nxt);
        // Each further duplicate inflates by one segment.
        assert_eq!(cc.on_dup_ack(una, flight, nxt), AckAction::None);
        assert_eq!(cc.on_dup_ack(una, flight, nxt), AckAction::None);
        assert_eq!(cc.cwnd(), 15 * MSS);
        // Partial ACK of 5 segments (a second loss at una + 5):
        // cwnd = 15 - 5 + 1 = 11 segments, retransmit, stay in recovery.
        let una2 = una + 5 * MSS;
        assert_eq!(cc.on_ack(una2, 5 * MSS, flight), AckAction::RetransmitNext);
        assert!(cc.in_recovery());
        assert_eq!(cc.cwnd(), 11 * MSS);
        assert_eq!(cc.ssthresh(), 10 * MSS);
        // Further duplicates keep inflating, never a second fast retransmit.
        for _ in 0..3 {
            assert_eq!(cc.on_dup_ack(una2, 15 * MSS, nxt), AckAction::None);
        }
        assert_eq!(cc.cwnd(), 14 * MSS);
        // A partial ACK of less than a segment adds nothing back.
        assert_eq!(
            cc.on_ack(una2 + 100, 100, 15 * MSS),
            AckAction::RetransmitNext
        );
        assert_eq!(cc.cwnd(), 14 * MSS - 100);
        // Full ACK (covers recover) with 4 segments sent during recovery
        // still out: cwnd = min(10, max(4, 1) + 1) = 5 segments.
        let flight_before = nxt.offset_from(una2 + 100) + 4 * MSS;
        let acked = nxt.offset_from(una2 + 100);
        assert_eq!(cc.on_ack(nxt, acked, flight_before), AckAction::None);
        assert!(!cc.in_recovery());
        assert_eq!(cc.cwnd(), 5 * MSS);
        assert!(cc.in_slow_start());
        // With much data sent during recovery still out, a full ACK gives ssthresh.
        let mut cc = sender(20, 64, una);
        for _ in 0..3 {
            cc.on_dup_ack(una, flight, nxt);
        }
        cc.on_ack(nxt + 40 * MSS, 20 * MSS, 80 * MSS);
        assert_eq!(cc.cwnd(), 10 * MSS);
    }

    #[test]
    fn ssthresh_floor_is_two_segments() {
        let una = ISS + 1;
        let mut cc = sender(3, 64, una);
        for _ in 0..3 {
            cc.on_dup_ack(una, 2 * MSS, una + 2 * MSS);
        }
        assert_eq!(cc.ssthresh(), 2 * MSS);
        assert_eq!(cc.cwnd(), 5 * MSS);
    }

    #[test]
    fn rto_collapses_cwnd_and_blocks_false_fast_retransmit() {
        let una = ISS + 1;
        let nxt = una + 30 * MSS;
        let mut cc = sender(30, 64, una);
        cc.on_rto(30 * MSS, nxt);
        assert_eq!(cc.cwnd(), MSS);
        assert_eq!(cc.ssthresh(), 15 * MSS);
        assert_eq!(cc.recover(), nxt);
        // The retransmission times out again: ssthresh is held.
        cc.on_rto(30 * MSS, nxt);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (MSS, 15 * MSS));
        // Slow start after the timeout, L = 1 SMSS: a stretch ACK adds one segment.
        assert_eq!(cc.on_ack(una + 2 * MSS, 2 * MSS, 30 * MSS), AckAction::None);
        assert_eq!(cc.cwnd(), 2 * MSS);
        // Duplicate ACKs below recover (go-back-N duplicates) do not fast-retransmit.
        let una2 = una + 2 * MSS;
        for _ in 0..5 {
            assert_eq!(cc.on_dup_ack(una2, 28 * MSS, nxt), AckAction::None);
        }
        assert!(!cc.in_recovery());
        assert_eq!(cc.ssthresh(), 15 * MSS);
        // Once everything sent before the timeout is acknowledged, a new loss
        // is recovered by fast retransmit again.
        cc.on_ack(nxt, 28 * MSS, 28 * MSS);
        let nxt2 = nxt + 10 * MSS;
        for _ in 0..2 {
            assert_eq!(cc.on_dup_ack(nxt, 10 * MSS, nxt2), AckAction::None);
        }
        assert_eq!(
            cc.on_dup_ack(nxt, 10 * MSS, nxt2),
            AckAction::FastRetransmit
        );
        assert_eq!(cc.ssthresh(), 5 * MSS);
        // A timeout in recovery ends it; a new timeout (after new data was
        // acknowledged) recomputes ssthresh.
        cc.on_rto(16 * MSS, nxt2);
        assert!(!cc.in_recovery());
        assert_eq!((cc.cwnd(), cc.ssthresh()), (MSS, 8 * MSS));
    }

    #[test]
    fn wraparound_of_recover() {
        // ISS just below 2^32: recovery spans the wrap.
        let una = Seq(u32::MAX - 5 * MSS);
        let nxt = una + 20 * MSS;
        assert!(nxt.get() < una.get());
        let mut cc = sender(20, 64, una);
        for _ in 0..3 {
            cc.on_dup_ack(una, 20 * MSS, nxt);
        }
        assert!(cc.in_recovery());
        assert_eq!(
            cc.on_ack(una + 10 * MSS, 10 * MSS, 20 * MSS),
            AckAction::RetransmitNext
        );
        assert_eq!(cc.on_ack(nxt, 10 * MSS, 10 * MSS), AckAction::None);
        assert!(!cc.in_recovery());
        // 3 GiB later without a loss, a stale recover would be "ahead" of
        // SND.UNA by wraparound; it has followed SND.UNA, so the third
        // duplicate still starts recovery.
        let mut ack = nxt;
        let step = 1 << 20;
        for _ in 0..3 * 1024 {
            ack += step;
            cc.on_ack(ack, step, 2 * step);
        }
        for _ in 0..2 {
            cc.on_dup_ack(ack, 20 * MSS, ack + 20 * MSS);
        }
        assert_eq!(
            cc.on_dup_ack(ack, 20 * MSS, ack + 20 * MSS),
            AckAction::FastRetransmit
        );
    }

    #[test]
    fn restart_after_idle_uses_restart_window() {
        let mut cc = sender(40, 64, ISS + 1);
        cc.restart_after_idle();
        assert_eq!(cc.cwnd(), initial_window(MSS));
        let mut cc = sender(4, 64, ISS + 1);
        cc.restart_after_idle();
        assert_eq!(cc.cwnd(), 4 * MSS);
    }

    #[test]
    fn usable_window() {
        let cc = sender(10, 64, ISS + 1);
        assert_eq!(cc.usable(4 * MSS, u32::MAX), 6 * MSS);
        assert_eq!(cc.usable(4 * MSS, 5 * MSS), MSS);
        assert_eq!(cc.usable(12 * MSS, u32::MAX), 0);
    }

    #[test]
    fn zero_and_huge_smss() {
        let mut cc = Cc::new(0, ISS);
        assert_eq!(cc.smss(), 1);
        cc.on_rto(0, ISS);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (1, 2));
        let mut cc = Cc::new(u32::MAX, ISS);
        for _ in 0..3 {
            cc.on_dup_ack(ISS + 1, u32::MAX, ISS);
        }
        assert_eq!(cc.cwnd(), u32::MAX);
        cc.on_ack(ISS + 5, u32::MAX, u32::MAX);
        assert!(cc.cwnd() >= cc.smss());
    }

    #[derive(Debug, Clone)]
    enum Ev {
        Ack { advance: u32, flight: u32 },
        Dup { flight: u32, ahead: u32 },
        Rto { flight: u32, ahead: u32 },
        Idle,
        Handshake(u32),
    }

    fn ev() -> impl Strategy<Value = Ev> {
        let bytes = prop_oneof![0u32..100_000, any::<u32>()];
        prop_oneof![
            (bytes.clone(), bytes.clone())
                .prop_map(|(advance, flight)| Ev::Ack { advance, flight }),
            (bytes.clone(), bytes.clone()).prop_map(|(flight, ahead)| Ev::Dup { flight, ahead }),
            (bytes.clone(), bytes).prop_map(|(flight, ahead)| Ev::Rto { flight, ahead }),
            Just(Ev::Idle),
            (0u32..4).prop_map(Ev::Handshake),
        ]
    }

    proptest! {
        #[test]
        fn invariants_hold_for_any_events(
            smss in prop_oneof![1u32..10_000, any::<u32>()],
            iss: u32,
            evs in proptest::collection::vec(ev(), 0..100),
        ) {
            let mut cc = Cc::new(smss, Seq(iss));
            let mut una = Seq(iss) + 1;
            for e in evs {
                match e {
                    Ev::Ack { advance, flight } => {
                        una += advance;
                        let action = cc.on_ack(una, advance, flight);
                        prop_assert!(action != AckAction::FastRetransmit);
                    }
                    Ev::Dup { flight, ahead } => {
                        let was = cc.in_recovery();
                        let action = cc.on_dup_ack(una, flight, una + ahead);
                        prop_assert!(action != AckAction::RetransmitNext);
                        if action == AckAction::FastRetransmit {
                            prop_assert!(!was && cc.in_recovery());
                            prop_assert_eq!(cc.dup_acks(), DUP_ACK_THRESHOLD);
                        }
                    }
                    Ev::Rto { flight, ahead } => {
                        cc.on_rto(flight, una + ahead);
                        prop_assert_eq!(cc.cwnd(), cc.smss());
                        prop_assert!(!cc.in_recovery());
                    }
                    Ev::Idle => cc.restart_after_idle(),
                    Ev::Handshake(n) => cc.on_handshake(n),
                }
                prop_assert!(cc.cwnd() >= cc.smss(), "{:?}", cc);
                prop_assert!(cc.ssthresh() >= cc.smss().saturating_mul(2));
            }
        }

        #[test]
        fn recovery_ends_at_or_below_ssthresh(
            segs in 4u32..1000,
            lost in 1u32..4,
            extra in 0u32..50,
            sent in 0u32..2000,
        ) {
            // segs in flight, the first `lost` segments lost one after another.
            let una = Seq(7);
            let nxt = una + segs * MSS;
            let mut cc = sender(segs, u32::MAX / MSS, una);
            for _ in 0..3 {
                cc.on_dup_ack(una, segs * MSS, nxt);
            }
            prop_assert!(cc.in_recovery());
            let ss = cc.ssthresh();
            prop_assert_eq!(ss, (segs * MSS / 2).max(2 * MSS));
            for _ in 0..extra {
                cc.on_dup_ack(una, segs * MSS, nxt);
            }
            let mut u = una;
            for _ in 1..lost {
                u += MSS;
                prop_assert_eq!(cc.on_ack(u, MSS, nxt.offset_from(u) + MSS), AckAction::RetransmitNext);
                prop_assert!(cc.in_recovery());
            }
            // The full ACK, with `sent` segments sent during recovery still out.
            let rest = nxt.offset_from(u);
            prop_assert_eq!(cc.on_ack(nxt, rest, rest + sent * MSS), AckAction::None);
            prop_assert!(!cc.in_recovery());
            prop_assert_eq!(cc.cwnd(), ss.min((sent * MSS).max(MSS) + MSS));
            prop_assert!(cc.cwnd() <= ss);
        }
    }
}
