//! Fixed-capacity byte queues for a connection: the send queue and the
//! receive buffer.
//!
//! A [`RingBuf`] is one allocation made when the connection is created
//! (capacity given then, any size; a power of two is usual), so the
//! per-packet path allocates nothing; only receive autotuning enlarges a
//! receive ring ([`grow`](RingBuf::grow)), a few times in a connection's
//! life. It is a ring of
//! `capacity` bytes holding `len` readable bytes from `head`; the rest is
//! free space, which has a use of its own:
//!
//! - **Send queue.** The application [`push`](RingBuf::push)es what fits;
//!   TCP reads unacknowledged bytes at their offset from SND.UNA with
//!   [`peek_at`](RingBuf::peek_at) (first transmission and retransmission
//!   alike, straight into the frame), and [`consume`](RingBuf::consume)s
//!   them when an ACK covers them.
//! - **Receive buffer.** TCP writes a segment's text into the free space at
//!   its offset from RCV.NXT with [`write_at`](RingBuf::write_at), without
//!   making it readable: out-of-order data waits there, in place, while
//!   [`super::reasm`] remembers which ranges arrived. When the gap before
//!   them fills, [`commit`](RingBuf::commit) makes the now-contiguous bytes
//!   readable, with no second copy. The application reads with
//!   [`pop_into`](RingBuf::pop_into), or without a copy through
//!   [`as_slices`](RingBuf::as_slices) followed by `consume`.
//!
//! Choices:
//! - Positions wrap with one compare and subtract (every sum is below twice
//!   the capacity), so the capacity need not be a power of two and there is
//!   no division.
//! - `head` is not reset to 0 when the queue empties: uncommitted bytes in
//!   the free space are addressed relative to the end of the readable bytes,
//!   and moving `head` would move them.
//! - Every operation clamps to what is there (`push` returns what fit,
//!   `consume` what was there to consume, ...): nothing panics on any
//!   argument, and the caller learns from the return value.

use core::fmt;

/// A fixed-capacity byte ring (see the module doc).
pub struct RingBuf {
    buf: Box<[u8]>,
    /// Index of the first readable byte; below `buf.len()` unless it is 0.
    head: usize,
    /// Readable bytes; at most `buf.len()`.
    len: usize,
}

impl fmt::Debug for RingBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingBuf")
            .field("capacity", &self.buf.len())
            .field("head", &self.head)
            .field("len", &self.len)
            .finish()
    }
}

impl RingBuf {
    /// A ring of `capacity` bytes, allocated here once. A capacity of 0
    /// makes a queue that holds nothing (every operation returns 0).
    pub fn new(capacity: usize) -> Self {
        RingBuf {
            buf: vec![0; capacity].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    /// Enlarges the ring to `capacity` bytes (nothing if it is not
    /// larger): one allocation and one copy of the old ring from `head`,
    /// so readable bytes and the uncommitted ones after them keep their
    /// offsets. The receive buffer's autotuning grows it a few times in a
    /// connection's life, never per packet.
    pub fn grow(&mut self, capacity: usize) {
        let old = self.buf.len();
        if capacity <= old {
            return;
        }
        let mut nb = vec![0; capacity].into_boxed_slice();
        let first = old - self.head;
        nb[..first].copy_from_slice(&self.buf[self.head..]);
        nb[first..old].copy_from_slice(&self.buf[..self.head]);
        self.buf = nb;
        self.head = 0;
    }

    /// The number of bytes the ring holds.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Readable (committed) bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte is readable.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free space: what `push` or `write_at` can still take.
    #[inline]
    pub fn free(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Drops every readable byte and starts over at index 0 (a connection
    /// reused for another). Uncommitted bytes are lost too.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Wraps an index below twice the capacity.
    #[inline]
    fn wrap(&self, i: usize) -> usize {
        if i >= self.buf.len() {
            i - self.buf.len()
        } else {
            i
        }
    }

    /// Copies `src` (at most the capacity) into the ring from index `pos`.
    #[inline]
    fn copy_in(&mut self, pos: usize, src: &[u8]) {
        let first = src.len().min(self.buf.len() - pos);
        let (a, b) = src.split_at(first);
        self.buf[pos..pos + first].copy_from_slice(a);
        self.buf[..b.len()].copy_from_slice(b);
    }

    /// Fills `dst` (at most the capacity) from the ring from index `pos`.
    #[inline]
    fn copy_out(&self, pos: usize, dst: &mut [u8]) {
        let first = dst.len().min(self.buf.len() - pos);
        let (a, b) = dst.split_at_mut(first);
        a.copy_from_slice(&self.buf[pos..pos + first]);
        b.copy_from_slice(&self.buf[..b.len()]);
    }

    /// Appends what fits of `data` as readable bytes; returns how many.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = self.write_at(0, data);
        self.len += n;
        n
    }

    /// Moves readable bytes into `dst` (as many as fit); returns how many.
    pub fn pop_into(&mut self, dst: &mut [u8]) -> usize {
        let n = self.peek_at(0, dst);
        self.consume(n)
    }

    /// Copies readable bytes starting `offset` bytes after the head into
    /// `dst` without consuming them; returns how many (0 when `offset` is at
    /// or beyond `len`).
    pub fn peek_at(&self, offset: usize, dst: &mut [u8]) -> usize {
        if offset >= self.len {
            return 0;
        }
        let n = dst.len().min(self.len - offset);
        let pos = self.wrap(self.head + offset);
        self.copy_out(pos, &mut dst[..n]);
        n
    }

    /// Drops up to `n` bytes from the head (acknowledged bytes leave the
    /// send queue, read bytes leave the receive buffer); returns how many.
    pub fn consume(&mut self, n: usize) -> usize {
        let n = n.min(self.len);
        self.head = self.wrap(self.head + n);
        self.len -= n;
        n
    }

    /// Writes `data` into the free space starting `offset` bytes after the
    /// last readable byte, without making it readable; returns how many
    /// bytes fit (0 when `offset` is at or beyond the free space). Whatever
    /// was there before is overwritten.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let free = self.free();
        if offset >= free {
            return 0;
        }
        let n = data.len().min(free - offset);
        if n == 0 {
            return 0;
        }
        // head + len + offset < head + capacity < 2 * capacity.
        let pos = self.wrap(self.head + self.len + offset);
        self.copy_in(pos, &data[..n]);
        n
    }

    /// Makes up to `n` bytes after the last readable byte readable (the
    /// bytes `write_at` put there); returns how many (at most `free()`).
    pub fn commit(&mut self, n: usize) -> usize {
        let n = n.min(self.free());
        self.len += n;
        n
    }

    /// The readable bytes in order, as two slices (the second is empty
    /// unless they wrap around the end of the ring).
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        let first = self.len.min(self.buf.len() - self.head);
        let (end, start) = self.buf.split_at(self.head);
        (&start[..first], &end[..self.len - first])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn readable(r: &RingBuf) -> Vec<u8> {
        let (a, b) = r.as_slices();
        [a, b].concat()
    }

    /// Growing keeps readable bytes and the uncommitted ones after them at
    /// their offsets, also when the old ring had wrapped.
    #[test]
    fn grow_keeps_readable_and_uncommitted_bytes() {
        let mut r = RingBuf::new(8);
        assert_eq!(r.push(b"abcdef"), 6);
        let mut sink = [0u8; 5];
        assert_eq!(r.pop_into(&mut sink), 5);
        assert_eq!(r.push(b"ghij"), 4); // wraps: head 5, "fghij"
        assert_eq!(r.write_at(1, b"LM"), 2); // uncommitted, after a gap
        r.grow(4); // not larger: nothing
        assert_eq!(r.capacity(), 8);
        r.grow(32);
        assert_eq!(r.capacity(), 32);
        assert_eq!(readable(&r), b"fghij");
        assert_eq!(r.write_at(0, b"K"), 1);
        assert_eq!(r.commit(3), 3);
        assert_eq!(readable(&r), b"fghijKLM");
        assert_eq!(r.free(), 24);
        assert_eq!(r.push(&[b'x'; 24]), 24);
    }

    #[test]
    fn push_pop_fifo() {
        let mut r = RingBuf::new(8);
        assert_eq!((r.capacity(), r.len(), r.free()), (8, 0, 8));
        assert!(r.is_empty());
        assert_eq!(r.push(b"hello"), 5);
        assert_eq!((r.len(), r.free()), (5, 3));
        let mut out = [0u8; 3];
        assert_eq!(r.pop_into(&mut out), 3);
        assert_eq!(&out, b"hel");
        assert_eq!(readable(&r), b"lo");
        let mut out = [0u8; 16];
        assert_eq!(r.pop_into(&mut out), 2);
        assert_eq!(&out[..2], b"lo");
        assert!(r.is_empty());
        assert_eq!(r.pop_into(&mut out), 0);
    }

    #[test]
    fn push_takes_what_fits() {
        let mut r = RingBuf::new(4);
        assert_eq!(r.push(b"abcdef"), 4);
        assert_eq!(r.free(), 0);
        assert_eq!(r.push(b"x"), 0);
        assert_eq!(readable(&r), b"abcd");
    }

    #[test]
    fn wraparound_keeps_order() {
        let mut r = RingBuf::new(8);
        assert_eq!(r.push(b"012345"), 6);
        assert_eq!(r.consume(5), 5);
        // head at 5: "5" then "abcdefg" wraps past index 7.
        assert_eq!(r.push(b"abcdefg"), 7);
        assert_eq!(r.len(), 8);
        let (a, b) = r.as_slices();
        assert_eq!(a, b"5ab");
        assert_eq!(b, b"cdefg");
        let mut out = [0u8; 4];
        assert_eq!(r.peek_at(2, &mut out), 4);
        assert_eq!(&out, b"bcde");
        let mut out = [0u8; 8];
        assert_eq!(r.pop_into(&mut out), 8);
        assert_eq!(&out, b"5abcdefg");
    }

    #[test]
    fn peek_at_offsets_and_bounds() {
        let mut r = RingBuf::new(16);
        r.push(b"0123456789");
        let mut out = [0u8; 4];
        assert_eq!(r.peek_at(8, &mut out), 2);
        assert_eq!(&out[..2], b"89");
        assert_eq!(r.peek_at(10, &mut out), 0);
        assert_eq!(r.peek_at(usize::MAX, &mut out), 0);
        assert_eq!(r.peek_at(0, &mut []), 0);
        // Peeking consumes nothing.
        assert_eq!(r.len(), 10);
        assert_eq!(r.consume(usize::MAX), 10);
        assert!(r.is_empty());
    }

    #[test]
    fn write_at_then_commit() {
        let mut r = RingBuf::new(8);
        r.push(b"ab");
        // Out of order: bytes 3..5 after the readable ones first.
        assert_eq!(r.write_at(3, b"fgh"), 3);
        assert_eq!(r.len(), 2);
        assert_eq!(r.write_at(0, b"cde"), 3);
        assert_eq!(r.commit(6), 6);
        assert_eq!(readable(&r), b"abcdefgh");
        assert_eq!(r.commit(1), 0);
        assert_eq!(r.write_at(0, b"x"), 0);
    }

    #[test]
    fn write_at_clamps_to_free_space() {
        let mut r = RingBuf::new(8);
        r.push(b"abcde");
        assert_eq!(r.write_at(2, b"xyz"), 1);
        assert_eq!(r.write_at(3, b"xyz"), 0);
        assert_eq!(r.write_at(usize::MAX, b"xyz"), 0);
        assert_eq!(r.write_at(0, b""), 0);
    }

    #[test]
    fn uncommitted_bytes_survive_emptying_and_wrap() {
        let mut r = RingBuf::new(8);
        r.push(b"abcdef");
        r.consume(3);
        assert_eq!(r.write_at(1, b"XYZ"), 3); // indices 7, 0, 1: wraps
        assert_eq!(r.consume(3), 3);
        assert!(r.is_empty());
        assert_eq!(r.write_at(0, b"W"), 1);
        assert_eq!(r.commit(4), 4);
        assert_eq!(readable(&r), b"WXYZ");
    }

    #[test]
    fn zero_capacity_holds_nothing() {
        let mut r = RingBuf::new(0);
        let mut out = [0u8; 4];
        assert_eq!(r.push(b"ab"), 0);
        assert_eq!(r.write_at(0, b"ab"), 0);
        assert_eq!(r.commit(2), 0);
        assert_eq!(r.consume(2), 0);
        assert_eq!(r.pop_into(&mut out), 0);
        assert_eq!(r.peek_at(0, &mut out), 0);
        assert_eq!(r.as_slices(), (&[][..], &[][..]));
    }

    #[test]
    fn clear_starts_over() {
        let mut r = RingBuf::new(4);
        r.push(b"abc");
        r.consume(2);
        r.clear();
        assert!(r.is_empty());
        assert_eq!(r.push(b"wxyz"), 4);
        assert_eq!(r.as_slices(), (&b"wxyz"[..], &[][..]));
    }

    #[test]
    fn debug_does_not_dump_the_bytes() {
        let r = RingBuf::new(4096);
        let s = format!("{r:?}");
        assert!(s.contains("capacity: 4096") && s.len() < 80, "{s}");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(Vec<u8>),
        Pop(usize),
        Peek(usize, usize),
        Consume(usize),
        WriteAt(usize, Vec<u8>),
        Commit(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let bytes = proptest::collection::vec(any::<u8>(), 0..40);
        prop_oneof![
            bytes.clone().prop_map(Op::Push),
            (0usize..40).prop_map(Op::Pop),
            (0usize..40, 0usize..40).prop_map(|(o, n)| Op::Peek(o, n)),
            (0usize..40).prop_map(Op::Consume),
            (0usize..40, bytes).prop_map(|(o, d)| Op::WriteAt(o, d)),
            (0usize..40).prop_map(Op::Commit),
        ]
    }

    /// Model bytes: `None` where the ring's content is unspecified (free
    /// space never written since it was freed).
    fn check(r: &RingBuf, model: &VecDeque<Option<u8>>, got: &[u8]) -> Result<(), TestCaseError> {
        prop_assert_eq!(got.len(), model.len());
        for (g, m) in got.iter().zip(model) {
            if let Some(m) = m {
                prop_assert_eq!(g, m);
            }
        }
        prop_assert_eq!(r.len(), model.len());
        Ok(())
    }

    proptest! {
        /// Random operation sequences agree with a model: a VecDeque of the
        /// readable bytes and one of the free space's content.
        #[test]
        fn behaves_like_a_vecdeque(cap in 1usize..48, ops in proptest::collection::vec(op(), 1..200)) {
            let mut r = RingBuf::new(cap);
            let mut data: VecDeque<Option<u8>> = VecDeque::new();
            let mut staged: VecDeque<Option<u8>> = (0..cap).map(|_| None).collect();
            let mut out = [0u8; 40];
            for op in ops {
                match op {
                    Op::Push(d) => {
                        let n = r.push(&d);
                        prop_assert_eq!(n, d.len().min(staged.len()));
                        data.extend(d[..n].iter().copied().map(Some));
                        staged.drain(..n);
                    }
                    Op::Pop(k) => {
                        let n = r.pop_into(&mut out[..k]);
                        prop_assert_eq!(n, k.min(data.len()));
                        let want: VecDeque<Option<u8>> = data.drain(..n).collect();
                        for (g, m) in out[..n].iter().zip(&want) {
                            if let Some(m) = m {
                                prop_assert_eq!(g, m);
                            }
                        }
                        staged.extend((0..n).map(|_| None));
                    }
                    Op::Peek(o, k) => {
                        let n = r.peek_at(o, &mut out[..k]);
                        let want = if o >= data.len() { 0 } else { k.min(data.len() - o) };
                        prop_assert_eq!(n, want);
                        for (i, g) in out[..n].iter().enumerate() {
                            if let Some(m) = data[o + i] {
                                prop_assert_eq!(*g, m);
                            }
                        }
                    }
                    Op::Consume(k) => {
                        let n = r.consume(k);
                        prop_assert_eq!(n, k.min(data.len()));
                        data.drain(..n);
                        staged.extend((0..n).map(|_| None));
                    }
                    Op::WriteAt(o, d) => {
                        let n = r.write_at(o, &d);
                        let want = if o >= staged.len() { 0 } else { d.len().min(staged.len() - o) };
                        prop_assert_eq!(n, want);
                        for (i, b) in d[..n].iter().enumerate() {
                            staged[o + i] = Some(*b);
                        }
                    }
                    Op::Commit(k) => {
                        let n = r.commit(k);
                        prop_assert_eq!(n, k.min(staged.len()));
                        data.extend(staged.drain(..n));
                    }
                }
                prop_assert_eq!(r.capacity(), cap);
                prop_assert_eq!(r.free(), staged.len());
                check(&r, &data, &readable(&r))?;
            }
        }
    }
}
