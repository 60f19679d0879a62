//! Bounded out-of-order reassembly for the receive side (RFC 9293
//! §3.10.7.4, "seventh, process the segment text": segments inside the
//! window are kept and their text delivered in sequence order).
//!
//! The bytes themselves never pass through here. TCP writes a segment's
//! text straight into the receive [`RingBuf`](super::buffer::RingBuf)'s
//! free space at its offset from RCV.NXT (`write_at`, the only copy), and
//! [`Reassembly`] remembers which ranges of that free space hold data: at
//! most `N` (64 by default) disjoint, sorted, non-adjacent `[start, end)`
//! intervals in sequence space relative to RCV.NXT, in a fixed array, plus
//! the count of bytes contiguous from offset 0 that have arrived but not
//! been handed on yet. Per segment:
//!
//! ```text
//! let Some(p) = in_window(seg.seq, payload.len() as u32, rcv_nxt, window) else { drop text };
//! if reasm.insert(p.offset, p.len) != Insert::Full {
//!     rx.write_at(p.offset as usize, &payload[p.skip as usize..][..p.len as usize]);
//! }
//! let n = reasm.advance();   // bytes now contiguous from RCV.NXT
//! rx.commit(n as usize);     // ... become readable
//! rcv_nxt += n;              // and are acknowledged
//! ```
//!
//! Choices:
//! - **Bounded state, no allocation.** `N` intervals cost `8 * N` bytes per
//!   connection and a linear scan of at most `N` entries per segment (only
//!   for out-of-order data). 64 intervals hold the holes of a 1 MiB window
//!   (718 segments) at several percent of loss: with 8, a window at 2% loss
//!   (about 14 holes) had its far end thrown away, 16-24% of what arrived,
//!   which the sender had to resend in long loss episodes (issue 21,
//!   docs/ARCHITECTURE.md "Under loss without SACK").
//! - **When all `N` are in use**, a segment that needs a new interval below
//!   the highest one evicts that highest interval (its bytes are forgotten,
//!   the sender sends them again), as Linux's `tcp_prune_ofo_queue` drops
//!   from the far end: data nearest RCV.NXT is what the next ACKs need. A
//!   segment beyond every held interval is refused ([`Insert::Full`]): the
//!   caller drops its text. Segments that touch a held interval, and
//!   in-order segments, are always taken: the contiguous prefix is kept
//!   apart from the `N` slots, so the segment that fills the first hole is
//!   never refused.
//! - **Overlaps.** A segment overlapping held data, or a full duplicate, is
//!   merged; the overlapping bytes are written again with (for a correct
//!   sender) the same values. The result says how many bytes were new.
//! - **Window.** The caller trims each segment to the window before it
//!   inserts it: [`in_window`] cuts off the part before RCV.NXT (old data)
//!   and the part beyond the window, so what `insert` records is exactly what
//!   `write_at` could store. `insert` itself only saturates at 2^32 - 1.
//! - RFC 5681 §4.2 asks for an immediate ACK when out-of-order data arrives
//!   and when a hole fills; that is the connection's business, not this
//!   module's.

use core::ops::Range;

/// Intervals kept by default (the receive side's `Reassembly`).
pub const DEFAULT_SLOTS: usize = 64;

/// What [`Reassembly::insert`] did with a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// Recorded; this many of its bytes were not held before (more than 0).
    New(u32),
    /// Nothing new: every byte was already held, or the segment was empty.
    Duplicate,
    /// Refused: it touches no held interval and all slots are in use. The
    /// caller drops the text (does not write it); the sender retransmits.
    Full,
}

/// One held interval, offsets from RCV.NXT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

/// The ranges received beyond RCV.NXT (see the module doc).
#[derive(Debug, Clone)]
pub struct Reassembly<const N: usize = DEFAULT_SLOTS> {
    /// Bytes `[0, front)` have arrived and wait for `advance`.
    front: u32,
    /// `spans[..count]`: sorted, disjoint, non-adjacent, each non-empty and
    /// starting after `front` (a gap separates it from the prefix).
    spans: [Span; N],
    count: usize,
    /// Intervals evicted to make room for lower ones.
    evicted: u64,
}

impl<const N: usize> Default for Reassembly<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Reassembly<N> {
    /// Nothing held.
    pub const fn new() -> Self {
        Reassembly {
            front: 0,
            spans: [Span { start: 0, end: 0 }; N],
            count: 0,
            evicted: 0,
        }
    }

    /// Intervals evicted so far to make room for lower ones.
    #[inline]
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Whether nothing is held beyond RCV.NXT (no out-of-order interval and
    /// no bytes waiting for `advance`).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.front == 0 && self.count == 0
    }

    /// Out-of-order intervals held (at most `N`).
    #[inline]
    pub fn intervals(&self) -> usize {
        self.count
    }

    /// Forgets everything (the connection was reset or reused).
    pub fn clear(&mut self) {
        self.front = 0;
        self.count = 0;
    }

    /// Records that bytes `[offset, offset + len)` (relative to RCV.NXT,
    /// already trimmed to the window) have been, or are about to be, written
    /// into the receive buffer. Merges with overlapping and adjacent
    /// intervals; see [`Insert`] for the answer.
    pub fn insert(&mut self, offset: u32, len: u32) -> Insert {
        let start = offset;
        let end = offset.saturating_add(len);
        if start >= end {
            return Insert::Duplicate;
        }
        let held = &self.spans[..self.count];
        if start <= self.front {
            // Extends (or repeats) the contiguous prefix; swallows the
            // intervals it reaches.
            if end <= self.front {
                return Insert::Duplicate;
            }
            let mut new_end = end;
            let mut covered = 0;
            let mut j = 0;
            while j < held.len() && held[j].start <= new_end {
                new_end = new_end.max(held[j].end);
                covered += held[j].end - held[j].start;
                j += 1;
            }
            let new = new_end - self.front - covered;
            self.front = new_end;
            self.spans.copy_within(j..self.count, 0);
            self.count -= j;
            return Self::answer(new);
        }
        // First interval that ends at or after `start` (touches or follows).
        let mut i = 0;
        while i < held.len() && held[i].end < start {
            i += 1;
        }
        // First interval after `i` that starts beyond `end` (does not touch).
        let mut j = i;
        while j < held.len() && held[j].start <= end {
            j += 1;
        }
        if i == j {
            if self.count == N {
                // Evict the highest interval for a lower segment; refuse
                // one beyond them all (see the module doc).
                if i >= self.count {
                    return Insert::Full;
                }
                self.count -= 1;
                self.evicted += 1;
            }
            self.spans.copy_within(i..self.count, i + 1);
            self.spans[i] = Span { start, end };
            self.count += 1;
            return Insert::New(end - start);
        }
        let merged = Span {
            start: start.min(held[i].start),
            end: end.max(held[j - 1].end),
        };
        let covered: u32 = held[i..j].iter().map(|s| s.end - s.start).sum();
        let new = merged.end - merged.start - covered;
        self.spans[i] = merged;
        self.spans.copy_within(j..self.count, i + 1);
        self.count -= j - i - 1;
        Self::answer(new)
    }

    #[inline]
    fn answer(new: u32) -> Insert {
        if new == 0 {
            Insert::Duplicate
        } else {
            Insert::New(new)
        }
    }

    /// How many bytes now continue contiguously from offset 0 (to commit in
    /// the receive buffer and add to RCV.NXT); the held intervals are shifted
    /// down by as much, since RCV.NXT moves. 0 while the first hole is open.
    pub fn advance(&mut self) -> u32 {
        let n = self.front;
        if n != 0 {
            for s in &mut self.spans[..self.count] {
                s.start -= n;
                s.end -= n;
            }
            self.front = 0;
        }
        n
    }

    /// The held ranges, in order: the contiguous prefix (if any) and then
    /// each out-of-order interval.
    pub fn ranges(&self) -> impl Iterator<Item = Range<u32>> + '_ {
        let front = (self.front > 0).then_some(0..self.front);
        front
            .into_iter()
            .chain(self.spans[..self.count].iter().map(|s| s.start..s.end))
    }

    /// The missing ranges before the last held byte, in order (what the
    /// sender still has to fill): for tests and debugging.
    pub fn holes(&self) -> impl Iterator<Item = Range<u32>> + '_ {
        let mut prev = self.front;
        self.spans[..self.count].iter().map(move |s| {
            let hole = prev..s.start;
            prev = s.end;
            hole
        })
    }
}

/// The part of a segment's text that lies inside the receive window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InWindow {
    /// Leading bytes of the text to skip (they are before RCV.NXT: old).
    pub skip: u32,
    /// Where the kept part starts, relative to RCV.NXT.
    pub offset: u32,
    /// Bytes kept (more than 0).
    pub len: u32,
}

/// Trims a segment's text (`len` bytes from sequence number `seq`) to the
/// window `[rcv_nxt, rcv_nxt + window)`: the part before RCV.NXT is old,
/// the part beyond the window is not accepted (RFC 9293 §3.10.7.4). `window`
/// is what the receive buffer can store (its free space, at least the
/// advertised window). `None` when nothing is left. Sequence numbers compare
/// modulo 2^32 (a distance of 2^31 or more counts as behind).
pub fn in_window(seq: u32, len: u32, rcv_nxt: u32, window: u32) -> Option<InWindow> {
    let delta = seq.wrapping_sub(rcv_nxt) as i32;
    let (skip, offset) = if delta < 0 {
        (delta.unsigned_abs(), 0)
    } else {
        (0, delta as u32)
    };
    if skip >= len || offset >= window {
        return None;
    }
    let len = (len - skip).min(window - offset);
    Some(InWindow { skip, offset, len })
}

#[cfg(test)]
mod tests {
    use super::super::buffer::RingBuf;
    use super::*;
    use proptest::prelude::*;

    fn ranges<const N: usize>(r: &Reassembly<N>) -> Vec<(u32, u32)> {
        r.ranges().map(|x| (x.start, x.end)).collect()
    }

    fn holes<const N: usize>(r: &Reassembly<N>) -> Vec<(u32, u32)> {
        r.holes().map(|x| (x.start, x.end)).collect()
    }

    #[test]
    fn in_order_segments_advance_at_once() {
        let mut r: Reassembly = Reassembly::new();
        assert!(r.is_empty());
        assert_eq!(r.advance(), 0);
        assert_eq!(r.insert(0, 100), Insert::New(100));
        assert_eq!(r.advance(), 100);
        assert!(r.is_empty());
        assert_eq!(r.insert(0, 50), Insert::New(50));
        assert_eq!(r.insert(50, 50), Insert::New(50));
        assert_eq!(r.advance(), 100);
        assert_eq!(r.advance(), 0);
    }

    #[test]
    fn reversed_segments_deliver_when_the_first_arrives() {
        let mut r: Reassembly = Reassembly::new();
        for k in (1..5).rev() {
            assert_eq!(r.insert(k * 10, 10), Insert::New(10));
            // Adjacent to the one before: still one interval.
            assert_eq!(r.intervals(), 1);
            assert_eq!(r.advance(), 0);
        }
        assert_eq!(ranges(&r), [(10, 50)]);
        assert_eq!(holes(&r), [(0, 10)]);
        assert_eq!(r.insert(0, 10), Insert::New(10));
        assert_eq!(r.advance(), 50);
        assert!(r.is_empty());
    }

    #[test]
    fn overlapping_segments_merge_and_count_new_bytes() {
        let mut r: Reassembly = Reassembly::new();
        assert_eq!(r.insert(10, 10), Insert::New(10));
        assert_eq!(r.insert(15, 10), Insert::New(5));
        assert_eq!(r.insert(5, 30), Insert::New(15));
        assert_eq!(ranges(&r), [(5, 35)]);
        assert_eq!(r.insert(0, 8), Insert::New(5));
        assert_eq!(r.advance(), 35);
    }

    #[test]
    fn duplicates_and_empty_segments_add_nothing() {
        let mut r: Reassembly = Reassembly::new();
        assert_eq!(r.insert(10, 0), Insert::Duplicate);
        assert_eq!(r.insert(0, 0), Insert::Duplicate);
        assert!(r.is_empty());
        assert_eq!(r.insert(10, 10), Insert::New(10));
        assert_eq!(r.insert(10, 10), Insert::Duplicate);
        assert_eq!(r.insert(12, 3), Insert::Duplicate);
        assert_eq!(r.insert(0, 4), Insert::New(4));
        assert_eq!(r.insert(1, 2), Insert::Duplicate);
        assert_eq!(ranges(&r), [(0, 4), (10, 20)]);
        assert_eq!(r.advance(), 4);
        assert_eq!(ranges(&r), [(6, 16)]);
        assert_eq!(r.insert(6, 10), Insert::Duplicate);
    }

    #[test]
    fn filling_a_hole_joins_two_intervals() {
        let mut r: Reassembly = Reassembly::new();
        r.insert(10, 10);
        r.insert(30, 10);
        r.insert(50, 10);
        assert_eq!(holes(&r), [(0, 10), (20, 30), (40, 50)]);
        assert_eq!(r.insert(20, 10), Insert::New(10));
        assert_eq!(ranges(&r), [(10, 40), (50, 60)]);
        // Overlapping both neighbours and the hole between them.
        assert_eq!(r.insert(35, 20), Insert::New(10));
        assert_eq!(ranges(&r), [(10, 60)]);
        assert_eq!(r.intervals(), 1);
        // The in-order segment swallows the interval it reaches.
        assert_eq!(r.insert(0, 15), Insert::New(10));
        assert_eq!(r.intervals(), 0);
        assert_eq!(r.advance(), 60);
    }

    #[test]
    fn in_order_segment_reaching_several_intervals() {
        let mut r: Reassembly = Reassembly::new();
        r.insert(10, 5);
        r.insert(20, 5);
        r.insert(40, 5);
        assert_eq!(r.insert(0, 22), Insert::New(15));
        assert_eq!(ranges(&r), [(0, 25), (40, 45)]);
        assert_eq!(r.advance(), 25);
        assert_eq!(ranges(&r), [(15, 20)]);
        assert_eq!(holes(&r), [(0, 15)]);
    }

    #[test]
    fn slot_exhaustion_refuses_only_new_intervals() {
        let mut r: Reassembly<4> = Reassembly::new();
        for k in 0..4 {
            assert_eq!(r.insert(10 + k * 10, 5), Insert::New(5));
        }
        assert_eq!(r.intervals(), 4);
        // Needs a fifth interval beyond them all: refused, nothing changes.
        assert_eq!(r.insert(100, 5), Insert::Full);
        assert_eq!(ranges(&r), [(10, 15), (20, 25), (30, 35), (40, 45)]);
        // A fifth below the highest: the highest is evicted for it.
        assert_eq!(r.insert(16, 2), Insert::New(2));
        assert_eq!(r.evicted(), 1);
        assert_eq!(ranges(&r), [(10, 15), (16, 18), (20, 25), (30, 35)]);
        // Adjacent or overlapping segments still merge.
        assert_eq!(r.insert(35, 5), Insert::New(5));
        assert_eq!(r.insert(8, 2), Insert::New(2));
        assert_eq!(r.insert(12, 10), Insert::New(3));
        assert_eq!(ranges(&r), [(8, 25), (30, 40)]);
        assert_eq!(r.insert(45, 5), Insert::New(5));
        assert_eq!(r.insert(100, 5), Insert::New(5));
        // The segment at RCV.NXT is never refused, whatever is held.
        assert_eq!(r.intervals(), 4);
        assert_eq!(r.insert(0, 3), Insert::New(3));
        assert_eq!(r.advance(), 3);
        assert_eq!(ranges(&r), [(5, 22), (27, 37), (42, 47), (97, 102)]);
    }

    #[test]
    fn no_slots_still_takes_in_order_data() {
        let mut r: Reassembly<0> = Reassembly::new();
        assert_eq!(r.insert(5, 5), Insert::Full);
        assert_eq!(r.insert(0, 5), Insert::New(5));
        assert_eq!(r.insert(5, 5), Insert::New(5));
        assert_eq!(r.advance(), 10);
    }

    #[test]
    fn huge_offsets_saturate_without_panicking() {
        let mut r: Reassembly = Reassembly::new();
        assert_eq!(r.insert(u32::MAX - 5, u32::MAX), Insert::New(5));
        assert_eq!(r.insert(u32::MAX, 10), Insert::Duplicate);
        assert_eq!(r.insert(0, u32::MAX), Insert::New(u32::MAX - 5));
        assert_eq!(r.advance(), u32::MAX);
        assert!(r.is_empty());
        r.insert(3, 4);
        r.clear();
        assert!(r.is_empty());
    }

    #[test]
    fn in_window_trims_old_and_excess() {
        let w = |skip, offset, len| Some(InWindow { skip, offset, len });
        // In order, inside.
        assert_eq!(in_window(1000, 100, 1000, 500), w(0, 0, 100));
        // Partly old: the first 40 bytes were delivered already.
        assert_eq!(in_window(960, 100, 1000, 500), w(40, 0, 60));
        // Entirely old, exactly up to RCV.NXT, and empty.
        assert_eq!(in_window(900, 100, 1000, 500), None);
        assert_eq!(in_window(1000, 0, 1000, 500), None);
        // Beyond the window: cut, or nothing left.
        assert_eq!(in_window(1400, 200, 1000, 500), w(0, 400, 100));
        assert_eq!(in_window(1500, 10, 1000, 500), None);
        assert_eq!(in_window(1000, 10, 1000, 0), None);
        // Old at the front and cut at the back.
        assert_eq!(in_window(990, 1000, 1000, 500), w(10, 0, 500));
        // Across the 2^32 wrap.
        assert_eq!(in_window(u32::MAX - 9, 30, 5, 100), w(15, 0, 15));
        assert_eq!(in_window(3, 10, u32::MAX, 100), w(0, 4, 10));
        // Half the sequence space away counts as behind.
        assert_eq!(
            in_window(1000u32.wrapping_add(1 << 31), 10, 1000, u32::MAX),
            None
        );
    }

    /// The receive side's real path over a stream: `in_window`, `insert`,
    /// `write_at`, `advance`, `commit`, and an application that reads at its
    /// own pace, checking every byte it gets.
    struct Receiver<'a, const N: usize> {
        stream: &'a [u8],
        isn: u32,
        rx: RingBuf,
        reasm: Reassembly<N>,
        rcv_nxt: u32,
        delivered: Vec<u8>,
        read: Vec<u8>,
    }

    impl<'a, const N: usize> Receiver<'a, N> {
        fn new(stream: &'a [u8], isn: u32, cap: usize) -> Self {
            Receiver {
                stream,
                isn,
                rx: RingBuf::new(cap),
                reasm: Reassembly::new(),
                rcv_nxt: isn,
                delivered: Vec::with_capacity(stream.len()),
                read: vec![0; cap],
            }
        }

        /// Stream bytes acknowledged so far (RCV.NXT - ISN).
        fn acked(&self) -> usize {
            self.rcv_nxt.wrapping_sub(self.isn) as usize
        }

        /// A segment with stream bytes `[start, start + len)` arrives, then
        /// the application reads up to `app_reads` bytes.
        fn segment(
            &mut self,
            start: usize,
            len: usize,
            app_reads: usize,
        ) -> Result<(), TestCaseError> {
            let end = (start + len).min(self.stream.len());
            let text = &self.stream[start.min(end)..end];
            let seq = self.isn.wrapping_add(start as u32);
            let window = self.rx.free() as u32;
            if let Some(p) = in_window(seq, text.len() as u32, self.rcv_nxt, window) {
                let kept = &text[p.skip as usize..][..p.len as usize];
                if self.reasm.insert(p.offset, p.len) != Insert::Full {
                    prop_assert_eq!(self.rx.write_at(p.offset as usize, kept), kept.len());
                }
            }
            let n = self.reasm.advance();
            prop_assert_eq!(self.rx.commit(n as usize), n as usize);
            self.rcv_nxt = self.rcv_nxt.wrapping_add(n);
            let want = app_reads.min(self.read.len());
            let got = self.rx.pop_into(&mut self.read[..want]);
            self.delivered.extend_from_slice(&self.read[..got]);
            let at = self.delivered.len();
            prop_assert!(
                self.delivered[..] == self.stream[..at],
                "wrong byte before {}",
                at
            );
            Ok(())
        }

        /// Feeds `segments`, then the sender's retransmissions (in order
        /// from RCV.NXT, the application reading all it can) until the whole
        /// stream is delivered. Returns what was delivered and how much of
        /// it before the retransmissions.
        fn run(mut self, segments: &[Segment]) -> Result<(Vec<u8>, usize), TestCaseError> {
            let window = self.read.len() + 4000;
            for &(near, pos, len, app_reads) in segments {
                // Near RCV.NXT (old, in order, out of order, beyond the
                // window) or anywhere in the stream.
                let start = if near {
                    (self.acked() + pos % window).saturating_sub(2000)
                } else {
                    pos
                };
                self.segment(start, len, app_reads)?;
            }
            let early = self.delivered.len();
            while self.delivered.len() < self.stream.len() {
                self.segment(self.acked(), 1460, usize::MAX)?;
            }
            Ok((self.delivered, early))
        }
    }

    const STREAM: usize = 64 * 1024;

    /// (near RCV.NXT, position, length, what the application reads after).
    type Segment = (bool, usize, usize, usize);

    fn segments() -> impl Strategy<Value = Vec<Segment>> {
        let one = (
            prop::bool::weighted(0.9),
            0..STREAM,
            0usize..3000,
            0usize..4000,
        );
        proptest::collection::vec(one, 1..400)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Random segments (order, overlaps, duplicates, beyond the window)
        /// of a 64 KiB stream: what is delivered is always a prefix of the
        /// stream, and in the end the whole of it.
        #[test]
        fn delivers_the_stream_in_order(
            seed in any::<u64>(),
            isn in any::<u32>(),
            cap_log in 10u32..17,
            segs in segments(),
        ) {
            let mut x = seed | 1;
            let stream: Vec<u8> = (0..STREAM)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let (got, _) = Receiver::<8>::new(&stream, isn, 1 << cap_log).run(&segs)?;
            prop_assert!(got == stream);
            // Few slots, a capacity that is not a power of two.
            let (got, _) = Receiver::<2>::new(&stream, isn, 3000 + (1 << cap_log)).run(&segs)?;
            prop_assert!(got == stream);
        }

        /// Against a byte map of what arrived: the held ranges, the answer
        /// to each insert, and what `advance` returns.
        #[test]
        fn agrees_with_a_byte_map(ops in proptest::collection::vec((0u32..300, 0u32..40, any::<bool>()), 1..200)) {
            let mut r: Reassembly<4> = Reassembly::new();
            let mut have = [false; 400];
            for (offset, len, advance) in ops {
                let seg = offset as usize..(offset + len) as usize;
                let new = have[seg.clone()].iter().filter(|h| !**h).count() as u32;
                let evicted = r.evicted();
                let got = r.insert(offset, len);
                if r.evicted() > evicted {
                    // It touched nothing and lay below the highest run,
                    // which the model forgets too.
                    prop_assert_eq!(r.evicted(), evicted + 1);
                    let last = have.iter().rposition(|h| *h).unwrap();
                    prop_assert!(seg.end < last);
                    let mut k = last;
                    while have[k] {
                        have[k] = false;
                        if k == 0 { break; }
                        k -= 1;
                    }
                }
                match got {
                    Insert::Full => {
                        prop_assert!(new > 0);
                        prop_assert_eq!(r.intervals(), 4);
                        // It touched nothing held and not the prefix, and
                        // lay beyond every held byte.
                        let lo = seg.start.saturating_sub(1);
                        let hi = (seg.end + 1).min(have.len());
                        prop_assert!(seg.start > 0 && have[lo..hi].iter().all(|h| !*h));
                        prop_assert!(have[seg.end.min(have.len())..].iter().all(|h| !*h));
                    }
                    Insert::Duplicate => prop_assert_eq!(new, 0),
                    Insert::New(n) => {
                        prop_assert_eq!(n, new);
                        have[seg].iter_mut().for_each(|h| *h = true);
                    }
                }
                // Runs of held bytes are exactly the ranges.
                let mut runs = Vec::new();
                let mut i = 0;
                while i < have.len() {
                    if have[i] {
                        let s = i;
                        while i < have.len() && have[i] {
                            i += 1;
                        }
                        runs.push((s as u32, i as u32));
                    } else {
                        i += 1;
                    }
                }
                prop_assert_eq!(ranges(&r), runs);
                if advance {
                    let n = have.iter().take_while(|h| **h).count();
                    prop_assert_eq!(r.advance() as usize, n);
                    have.copy_within(n.., 0);
                    let len = have.len();
                    have[len - n..].iter_mut().for_each(|h| *h = false);
                }
            }
        }
    }
}
