//! Single-producer, single-consumer descriptor rings: the four AF_XDP rings
//! (fill, completion, RX, TX) mapped from the kernel, or the same layout on
//! the heap for the in-memory port and the benches.
//!
//! # Memory ordering
//!
//! A ring is a power-of-two array of slots and two free-running `u32`
//! indices: `producer` (written only by the producer) and `consumer` (written
//! only by the consumer). The kernel side follows the same protocol
//! (`smp_load_acquire` / `smp_store_release` in `net/xdp/xsk_queue.h`).
//!
//! - The producer writes the slots, then stores `producer` with **Release**:
//!   nobody can see the new index before the slot contents.
//! - The consumer loads `producer` with **Acquire** before reading slots, so
//!   it reads what was written before the index moved.
//! - The consumer, once done with the slots (it has copied the descriptors
//!   out), stores `consumer` with **Release**: its reads happen before the
//!   producer may overwrite the slots.
//! - The producer loads `consumer` with **Acquire** before reusing slots.
//!
//! Both sides keep cached copies of the other side's index and touch the
//! shared cache line only when the cached view says the ring is full (producer)
//! or empty (consumer) for the requested burst, so a burst of 64 costs one
//! index load and one index store, not 64.
//!
//! # Batch API
//!
//! Producer: [`Producer::reserve`] `n` slots, [`Producer::write`] each,
//! [`Producer::submit`] them. Consumer: [`Producer`]'s mirror,
//! [`Consumer::peek`], [`Consumer::read`], [`Consumer::release`]. The
//! one-call forms [`Producer::push_burst`] and [`Consumer::pop_burst`] do the
//! same for a slice.
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// One frame on the RX or TX ring: the layout of the kernel's `struct xdp_desc`.
///
/// `addr` is the offset of the packet's first byte inside the UMEM, `len`
/// its length.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Desc {
    /// Offset of the packet's first byte in the UMEM.
    pub addr: u64,
    /// Packet length in bytes.
    pub len: u32,
    /// Option bits (`XDP_PKT_CONTD`, ...); zero for single-buffer frames.
    pub options: u32,
}

const _: () = assert!(std::mem::size_of::<Desc>() == std::mem::size_of::<libc::xdp_desc>());
const _: () = assert!(std::mem::align_of::<Desc>() == std::mem::align_of::<libc::xdp_desc>());

impl fmt::Display for Desc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "desc addr={:#x} len={}", self.addr, self.len)
    }
}

/// What a ring slot may hold: plain data the kernel reads and writes too.
pub trait Slot: Copy + Default + Send + 'static {}
impl Slot for u64 {}
impl Slot for Desc {}

/// Raw view of one ring's shared memory, plus whatever keeps it mapped.
struct RingPtrs<T> {
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    slots: *mut T,
    size: u32,
    /// Keeps the memory alive (the kernel mapping or the heap ring).
    _keep: Arc<dyn Send + Sync>,
}

// SAFETY: the pointers target memory kept alive by `_keep` (a mapping or a heap
// ring that is Send + Sync); all shared accesses go through atomics or through
// slots whose ownership the ring protocol hands from one side to the other.
unsafe impl<T: Slot> Send for RingPtrs<T> {}

impl<T> RingPtrs<T> {
    #[inline]
    fn producer(&self) -> &AtomicU32 {
        // SAFETY: `producer` points to an aligned u32 inside memory that `_keep`
        // keeps alive for the lifetime of `self`.
        unsafe { &*self.producer }
    }
    #[inline]
    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { &*self.consumer }
    }
    #[inline]
    fn flags(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { &*self.flags }
    }
}

/// Where ring memory lives when it is not a kernel mapping.
#[repr(C, align(64))]
struct Line(AtomicU32);

struct HeapRing<T> {
    producer: Line,
    consumer: Line,
    flags: Line,
    slots: Box<[std::cell::UnsafeCell<T>]>,
}

// SAFETY: slots are written by exactly one side at a time, as the index protocol
// (Release/Acquire on producer and consumer) hands them over; indices are atomics.
unsafe impl<T: Send> Sync for HeapRing<T> {}

/// Creates a ring on the heap with the kernel's layout: one producer and one
/// consumer end. `size` must be a power of two.
pub fn heap_ring<T: Slot>(size: u32) -> (Producer<T>, Consumer<T>) {
    assert!(
        size.is_power_of_two(),
        "ring size {size} is not a power of two"
    );
    let ring = Arc::new(HeapRing {
        producer: Line(AtomicU32::new(0)),
        consumer: Line(AtomicU32::new(0)),
        flags: Line(AtomicU32::new(0)),
        slots: (0..size)
            .map(|_| std::cell::UnsafeCell::new(T::default()))
            .collect(),
    });
    let ptrs = || RingPtrs {
        producer: &ring.producer.0 as *const AtomicU32,
        consumer: &ring.consumer.0 as *const AtomicU32,
        flags: &ring.flags.0 as *const AtomicU32,
        slots: ring.slots.as_ptr() as *mut T,
        size,
        _keep: ring.clone() as Arc<dyn Send + Sync>,
    };
    (Producer::new(ptrs()), Consumer::new(ptrs()))
}

/// Builds the ring ends over a kernel mapping of an AF_XDP ring.
///
/// # Safety
/// `base` must point to a live mapping (kept alive by `keep`) laid out as
/// `off` says, with `size` slots of `T`; the caller is the only user-space
/// party at this end of the ring.
pub(crate) unsafe fn mapped_ring<T: Slot>(
    base: *mut u8,
    off: &libc::xdp_ring_offset,
    size: u32,
    keep: Arc<dyn Send + Sync>,
) -> RingPtrsHandle<T> {
    // SAFETY: the offsets come from XDP_MMAP_OFFSETS for this very mapping (caller's
    // contract), so each field pointer lies inside it and is suitably aligned.
    let ptrs = unsafe {
        RingPtrs {
            producer: base.add(off.producer as usize) as *const AtomicU32,
            consumer: base.add(off.consumer as usize) as *const AtomicU32,
            flags: base.add(off.flags as usize) as *const AtomicU32,
            slots: base.add(off.desc as usize) as *mut T,
            size,
            _keep: keep,
        }
    };
    RingPtrsHandle(ptrs)
}

/// A mapped ring before it is turned into its producer or consumer end.
pub(crate) struct RingPtrsHandle<T>(RingPtrs<T>);

impl<T: Slot> RingPtrsHandle<T> {
    pub(crate) fn producer(self) -> Producer<T> {
        Producer::new(self.0)
    }
    pub(crate) fn consumer(self) -> Consumer<T> {
        Consumer::new(self.0)
    }
}

/// The producing end of a ring (fill and TX in user space; RX and
/// completion on the in-memory port's wire side).
pub struct Producer<T> {
    ring: RingPtrs<T>,
    mask: u32,
    /// Our producer index (published up to here, or reserved beyond).
    cached_prod: u32,
    /// The consumer index seen last, plus `size`: the first index we may not write.
    cached_end: u32,
    /// Slots reserved but not yet submitted.
    reserved: u32,
}

impl<T: Slot> Producer<T> {
    fn new(ring: RingPtrs<T>) -> Self {
        let cached_prod = ring.producer().load(Ordering::Relaxed);
        let cached_end = ring
            .consumer()
            .load(Ordering::Acquire)
            .wrapping_add(ring.size);
        Producer {
            mask: ring.size - 1,
            ring,
            cached_prod,
            cached_end,
            reserved: 0,
        }
    }

    /// Number of slots.
    pub fn size(&self) -> u32 {
        self.ring.size
    }

    /// Free slots, refreshing the consumer index only if fewer than `want`
    /// are known to be free.
    #[inline]
    pub fn free(&mut self, want: u32) -> u32 {
        let free = self.cached_end.wrapping_sub(self.cached_prod);
        if free >= want {
            return free;
        }
        // Acquire: the consumer's reads of the slots happen before we reuse them.
        self.cached_end = self
            .ring
            .consumer()
            .load(Ordering::Acquire)
            .wrapping_add(self.ring.size);
        self.cached_end.wrapping_sub(self.cached_prod)
    }

    /// Reserves up to `n` slots and returns how many it got (maybe 0).
    /// Fill them with [`Producer::write`], publish with [`Producer::submit`].
    #[inline]
    pub fn reserve(&mut self, n: u32) -> u32 {
        let got = n.min(self.free(n));
        self.reserved = got;
        got
    }

    /// Writes reserved slot `i` (0-based inside the reservation).
    #[inline]
    pub fn write(&mut self, i: u32, value: T) {
        assert!(i < self.reserved, "ring write outside the reservation");
        let idx = (self.cached_prod.wrapping_add(i) & self.mask) as usize;
        // SAFETY: idx < size, so the slot is inside the ring; it is reserved, i.e.
        // between our producer index and the consumer's, so the other side does
        // not read it until we publish it.
        unsafe { self.ring.slots.add(idx).write_volatile(value) };
    }

    /// Publishes the first `n` reserved slots (Release: the slot writes become
    /// visible no later than the index).
    #[inline]
    pub fn submit(&mut self, n: u32) {
        assert!(n <= self.reserved, "ring submit beyond the reservation");
        self.cached_prod = self.cached_prod.wrapping_add(n);
        self.reserved = 0;
        self.ring
            .producer()
            .store(self.cached_prod, Ordering::Release);
    }

    /// Reserves, writes and submits as many of `items` as fit; returns how many.
    #[inline]
    pub fn push_burst(&mut self, items: &[T]) -> usize {
        let n = self.reserve(items.len().min(u32::MAX as usize) as u32);
        for (i, item) in items.iter().take(n as usize).enumerate() {
            self.write(i as u32, *item);
        }
        self.submit(n);
        n as usize
    }

    /// Entries published but not yet consumed by the other side.
    pub fn pending(&self) -> u32 {
        self.cached_prod
            .wrapping_sub(self.ring.consumer().load(Ordering::Acquire))
    }

    /// Whether the consumer asked to be woken (XDP_RING_NEED_WAKEUP).
    #[inline]
    pub fn needs_wakeup(&self) -> bool {
        self.ring.flags().load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Sets or clears the need-wakeup flag (the in-memory wire side plays the kernel).
    pub fn set_needs_wakeup(&self, on: bool) {
        set_flag(self.ring.flags(), on)
    }
}

/// The consuming end of a ring (RX and completion in user space).
pub struct Consumer<T> {
    ring: RingPtrs<T>,
    mask: u32,
    /// Our consumer index (released up to here).
    cached_cons: u32,
    /// The producer index seen last.
    cached_prod: u32,
    /// Entries peeked but not yet released.
    peeked: u32,
}

impl<T: Slot> Consumer<T> {
    fn new(ring: RingPtrs<T>) -> Self {
        let cached_cons = ring.consumer().load(Ordering::Relaxed);
        let cached_prod = ring.producer().load(Ordering::Acquire);
        Consumer {
            mask: ring.size - 1,
            ring,
            cached_cons,
            cached_prod,
            peeked: 0,
        }
    }

    /// Number of slots.
    pub fn size(&self) -> u32 {
        self.ring.size
    }

    /// Entries ready to read, refreshing the producer index only if fewer than
    /// `want` are known to be ready.
    #[inline]
    pub fn available(&mut self, want: u32) -> u32 {
        let avail = self.cached_prod.wrapping_sub(self.cached_cons);
        if avail >= want {
            return avail;
        }
        // Acquire: the producer's slot writes happen before we read them.
        self.cached_prod = self.ring.producer().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Makes up to `n` entries readable with [`Consumer::read`]; returns how many.
    #[inline]
    pub fn peek(&mut self, n: u32) -> u32 {
        let got = n.min(self.available(n));
        self.peeked = got;
        got
    }

    /// Reads peeked entry `i` (0-based inside the peek).
    #[inline]
    pub fn read(&self, i: u32) -> T {
        assert!(i < self.peeked, "ring read outside the peek");
        let idx = (self.cached_cons.wrapping_add(i) & self.mask) as usize;
        // SAFETY: idx < size; the slot lies between our consumer index and the
        // producer index loaded with Acquire, so it is fully written and the
        // producer does not touch it until we release it.
        unsafe { self.ring.slots.add(idx).read_volatile() }
    }

    /// Hands the first `n` peeked slots back to the producer (Release: our
    /// reads happen before the producer may overwrite them).
    #[inline]
    pub fn release(&mut self, n: u32) {
        assert!(n <= self.peeked, "ring release beyond the peek");
        self.cached_cons = self.cached_cons.wrapping_add(n);
        self.peeked = 0;
        self.ring
            .consumer()
            .store(self.cached_cons, Ordering::Release);
    }

    /// Peeks, copies out and releases as many entries as fit in `out`.
    #[inline]
    pub fn pop_burst(&mut self, out: &mut [T]) -> usize {
        let n = self.peek(out.len().min(u32::MAX as usize) as u32);
        for (i, slot) in out.iter_mut().take(n as usize).enumerate() {
            *slot = self.read(i as u32);
        }
        self.release(n);
        n as usize
    }

    /// Whether the producer asked to be woken (XDP_RING_NEED_WAKEUP).
    #[inline]
    pub fn needs_wakeup(&self) -> bool {
        self.ring.flags().load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Entries published and not yet released (a fresh look at the producer index).
    pub fn len(&self) -> u32 {
        self.ring
            .producer()
            .load(Ordering::Acquire)
            .wrapping_sub(self.cached_cons)
    }

    /// Whether no entry is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets or clears the need-wakeup flag.
    pub fn set_needs_wakeup(&self, on: bool) {
        set_flag(self.ring.flags(), on)
    }
}

fn set_flag(flags: &AtomicU32, on: bool) {
    if on {
        flags.fetch_or(libc::XDP_RING_NEED_WAKEUP, Ordering::Relaxed);
    } else {
        flags.fetch_and(!libc::XDP_RING_NEED_WAKEUP, Ordering::Relaxed);
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("size", &self.ring.size)
            .field("prod", &self.cached_prod)
            .field("end", &self.cached_end)
            .finish()
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("size", &self.ring.size)
            .field("cons", &self.cached_cons)
            .field("prod", &self.cached_prod)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    #[test]
    fn burst_round_trip_and_wrap() {
        let (mut p, mut c) = heap_ring::<u64>(8);
        let mut out = [0u64; 8];
        let mut next = 0u64;
        let mut expect = 0u64;
        // Many laps around an 8-slot ring: indices wrap, values stay in order.
        for round in 0..100u64 {
            let items: Vec<u64> = (0..(round % 7 + 1)).map(|i| next + i).collect();
            let n = p.push_burst(&items);
            next += n as u64;
            let got = c.pop_burst(&mut out);
            for v in &out[..got] {
                assert_eq!(*v, expect);
                expect += 1;
            }
        }
        assert_eq!(expect, next);
    }

    #[test]
    fn full_ring_refuses_until_released() {
        let (mut p, mut c) = heap_ring::<Desc>(4);
        let d = |a| Desc {
            addr: a,
            len: 60,
            options: 0,
        };
        assert_eq!(p.push_burst(&[d(1), d(2), d(3), d(4), d(5)]), 4);
        assert_eq!(p.reserve(1), 0);
        assert_eq!(p.pending(), 4);
        assert_eq!(c.peek(2), 2);
        assert_eq!(c.read(0), d(1));
        assert_eq!(c.read(1), d(2));
        c.release(2);
        assert_eq!(p.reserve(3), 2);
        p.write(0, d(6));
        p.submit(1);
        let mut out = [Desc::default(); 8];
        assert_eq!(c.pop_burst(&mut out), 3);
        assert_eq!(&out[..3], &[d(3), d(4), d(6)]);
    }

    #[test]
    fn indices_wrap_past_u32_max() {
        let (p, c) = heap_ring::<u64>(4);
        // Start both ends just below the wrap point.
        let start = u32::MAX - 2;
        p.ring.producer().store(start, Ordering::Relaxed);
        p.ring.consumer().store(start, Ordering::Relaxed);
        let (mut p, mut c) = (Producer::new(p.ring), Consumer::new(c.ring));
        let mut out = [0u64; 4];
        for lap in 0..5u64 {
            assert_eq!(p.push_burst(&[lap, lap + 10, lap + 20]), 3);
            assert_eq!(c.pop_burst(&mut out), 3);
            assert_eq!(&out[..3], &[lap, lap + 10, lap + 20]);
        }
    }

    #[test]
    #[should_panic(expected = "outside the reservation")]
    fn write_outside_reservation_panics() {
        let (mut p, _c) = heap_ring::<u64>(4);
        p.reserve(1);
        p.write(1, 7);
    }

    #[test]
    fn need_wakeup_flag() {
        let (p, c) = heap_ring::<u64>(4);
        assert!(!p.needs_wakeup());
        c.set_needs_wakeup(true);
        assert!(p.needs_wakeup());
        p.set_needs_wakeup(false);
        assert!(!c.needs_wakeup());
    }

    #[test]
    fn two_threads_keep_order() {
        let (mut p, mut c) = heap_ring::<u64>(64);
        const N: u64 = 200_000;
        let t = std::thread::spawn(move || {
            let mut next = 0u64;
            let mut buf = [0u64; 64];
            while next < N {
                let want = (N - next).min(64) as usize;
                for (i, b) in buf[..want].iter_mut().enumerate() {
                    *b = next + i as u64;
                }
                next += p.push_burst(&buf[..want]) as u64;
                std::hint::spin_loop();
            }
        });
        let mut expect = 0u64;
        let mut out = [0u64; 64];
        while expect < N {
            let n = c.pop_burst(&mut out);
            for v in &out[..n] {
                assert_eq!(*v, expect);
                expect += 1;
            }
            if n == 0 {
                std::thread::yield_now();
            }
        }
        t.join().unwrap();
    }

    proptest! {
        /// Any sequence of pushes and pops behaves like a bounded FIFO queue.
        #[test]
        fn behaves_like_a_bounded_fifo(ops in proptest::collection::vec((any::<bool>(), 0usize..70), 1..200)) {
            let (mut p, mut c) = heap_ring::<u64>(64);
            let mut model: VecDeque<u64> = VecDeque::new();
            let mut next = 0u64;
            let mut out = vec![0u64; 70];
            for (push, n) in ops {
                if push {
                    let items: Vec<u64> = (next..next + n as u64).collect();
                    let pushed = p.push_burst(&items);
                    prop_assert_eq!(pushed, n.min(64 - model.len()));
                    model.extend(&items[..pushed]);
                    next += pushed as u64;
                } else {
                    let got = c.pop_burst(&mut out[..n]);
                    prop_assert_eq!(got, n.min(model.len()));
                    for v in &out[..got] {
                        prop_assert_eq!(Some(*v), model.pop_front());
                    }
                }
            }
        }
    }
}
