//! Per-flow receive accounting from the stamp's sequence numbers.
//!
//! For each flow the sink keeps the highest sequence seen (`next` is that
//! plus one), packets and bytes received, packets that arrived after a
//! higher sequence (reordered: RFC 4737's "reordered" singleton, simplified
//! to `seq < next`), and duplicates (a sequence seen twice in a sliding
//! window of the last 64 sequences). Loss as the sink sees it is
//! `next - (received - duplicates)`: sequences never seen up to the highest
//! one; losses after the last packet received show up only against the
//! generator's sent count, which the benchmark script compares.

/// One flow's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Frames received.
    pub packets: u64,
    /// Bytes received (frames without FCS).
    pub bytes: u64,
    /// Highest sequence + 1 (0: nothing yet).
    pub next: u64,
    /// Frames that arrived with a sequence below the highest seen.
    pub reordered: u64,
    /// Frames whose sequence had been seen already (within 64).
    pub duplicates: u64,
    /// Smallest and largest TTL / hop limit seen.
    pub ttl_min: u8,
    /// Largest TTL seen.
    pub ttl_max: u8,
    /// Bit i set: sequence `next - 1 - i` was seen.
    window: u64,
}

impl FlowStats {
    /// Accounts one frame.
    #[inline]
    pub fn record(&mut self, seq: u32, bytes: u32, ttl: u8) {
        let seq = seq as u64;
        if self.packets == 0 {
            self.ttl_min = ttl;
            self.ttl_max = ttl;
        } else {
            self.ttl_min = self.ttl_min.min(ttl);
            self.ttl_max = self.ttl_max.max(ttl);
        }
        self.packets += 1;
        self.bytes += bytes as u64;
        if seq >= self.next {
            let shift = seq + 1 - self.next;
            self.window = if shift >= 64 { 0 } else { self.window << shift };
            self.window |= 1;
            self.next = seq + 1;
        } else {
            let back = self.next - 1 - seq;
            if back < 64 && self.window & (1 << back) != 0 {
                self.duplicates += 1;
            } else {
                self.reordered += 1;
                if back < 64 {
                    self.window |= 1 << back;
                }
            }
        }
    }

    /// Sequences below the highest one that never arrived.
    pub fn lost(&self) -> u64 {
        self.next.saturating_sub(self.packets - self.duplicates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(seqs: &[u32]) -> FlowStats {
        let mut f = FlowStats::default();
        for s in seqs {
            f.record(*s, 100, 63);
        }
        f
    }

    #[test]
    fn in_order() {
        let f = run(&[0, 1, 2, 3]);
        assert_eq!(
            (
                f.packets,
                f.bytes,
                f.next,
                f.reordered,
                f.lost(),
                f.duplicates
            ),
            (4, 400, 4, 0, 0, 0)
        );
        assert_eq!((f.ttl_min, f.ttl_max), (63, 63));
    }

    #[test]
    fn a_gap_is_loss() {
        let f = run(&[0, 1, 4, 5]);
        assert_eq!((f.lost(), f.reordered), (2, 0));
    }

    #[test]
    fn a_late_packet_is_reordered_not_lost() {
        let f = run(&[0, 2, 1, 3]);
        assert_eq!((f.lost(), f.reordered, f.duplicates), (0, 1, 0));
    }

    #[test]
    fn a_repeat_is_a_duplicate() {
        let f = run(&[0, 1, 1, 2]);
        assert_eq!(
            (f.lost(), f.reordered, f.duplicates, f.packets),
            (0, 0, 1, 4)
        );
    }

    #[test]
    fn very_late_packet_still_counts() {
        let mut seqs: Vec<u32> = (1..200).collect();
        seqs.push(0);
        let f = run(&seqs);
        assert_eq!((f.lost(), f.reordered), (0, 1));
    }

    proptest! {
        /// Against a reference: a permutation of a subset of 0..n without
        /// repeats: lost = sequences below the max not received; reordered =
        /// arrivals below the running max.
        #[test]
        fn matches_reference(keep in proptest::collection::vec(any::<bool>(), 1..300), seed in any::<u64>()) {
            let mut seqs: Vec<u32> = keep.iter().enumerate().filter(|(_, k)| **k).map(|(i, _)| i as u32).collect();
            // Local swaps (a mild reordering, as a network would).
            let mut x = seed;
            for i in 1..seqs.len() {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if x >> 62 == 0 { seqs.swap(i - 1, i); }
            }
            let f = run(&seqs);
            let max = seqs.iter().max().map_or(0, |m| *m as u64 + 1);
            let mut running = 0u64;
            let mut reord = 0;
            for s in &seqs {
                if (*s as u64) < running { reord += 1; } else { running = *s as u64 + 1; }
            }
            prop_assert_eq!(f.next, max);
            prop_assert_eq!(f.lost(), max - seqs.len() as u64);
            prop_assert_eq!(f.reordered, reord);
            prop_assert_eq!(f.duplicates, 0);
        }
    }
}
