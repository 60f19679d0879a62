//! [`MemPort`]: a port without a kernel, for testing pipelines.
//!
//! It has the four rings of an AF_XDP socket, on the heap, and plays the
//! kernel's part itself: [`MemPort::inject`] receives a frame the way the
//! kernel would (takes a fill-ring address, copies the bytes, posts an RX
//! descriptor, or counts the drop in the same XDP_STATISTICS counters), and
//! [`MemPort::take_sent`] transmits (consumes TX descriptors, hands the bytes
//! to the caller, posts completions). The worker side is the same [`Port`]
//! as the AF_XDP socket, on the same [`Umem`] and frame ledger.
use std::io;
use std::time::Duration;

use super::port::{queue_tx, Port, RingLevels};
use super::ring::{heap_ring, Consumer, Desc, Producer};
use super::stats::{PortStats, XdpStatistics};
use super::umem::{FrameState, Umem};

/// Ring sizes of an in-memory port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemPortConfig {
    /// RX ring slots.
    pub rx_size: u32,
    /// TX ring slots.
    pub tx_size: u32,
    /// Fill ring slots.
    pub fill_size: u32,
    /// Completion ring slots.
    pub comp_size: u32,
}

impl Default for MemPortConfig {
    fn default() -> Self {
        MemPortConfig {
            rx_size: 256,
            tx_size: 256,
            fill_size: 256,
            comp_size: 256,
        }
    }
}

/// An in-memory port: worker-side rings plus the wire side that stands in
/// for the kernel.
#[derive(Debug)]
pub struct MemPort {
    name: String,
    umem_id: u64,
    fill: Producer<u64>,
    wire_fill: Consumer<u64>,
    wire_rx: Producer<Desc>,
    rx: Consumer<Desc>,
    tx: Producer<Desc>,
    wire_tx: Consumer<Desc>,
    wire_comp: Producer<u64>,
    comp: Consumer<u64>,
    stats: PortStats,
}

impl MemPort {
    /// A port on `umem` with the given ring sizes (powers of two).
    pub fn new(name: &str, umem: &Umem, cfg: MemPortConfig) -> MemPort {
        let (fill, wire_fill) = heap_ring(cfg.fill_size);
        let (wire_rx, rx) = heap_ring(cfg.rx_size);
        let (tx, wire_tx) = heap_ring(cfg.tx_size);
        let (wire_comp, comp) = heap_ring(cfg.comp_size);
        MemPort {
            name: format!("mem:{name}"),
            umem_id: umem.id(),
            fill,
            wire_fill,
            wire_rx,
            rx,
            tx,
            wire_tx,
            wire_comp,
            comp,
            stats: PortStats::default(),
        }
    }

    fn check_umem(&self, umem: &Umem) {
        assert_eq!(
            umem.id(),
            self.umem_id,
            "{} driven with a UMEM it was not made on",
            self.name
        );
    }

    /// Wire side: a frame arrives. Returns false, counting the drop as the
    /// kernel would, when the fill ring is empty, the RX ring is full, or the
    /// frame does not fit in a UMEM frame.
    pub fn inject(&mut self, umem: &mut Umem, frame: &[u8]) -> bool {
        self.check_umem(umem);
        if self.wire_rx.free(1) == 0 {
            self.stats.xdp.rx_ring_full += 1;
            self.stats.xdp.rx_dropped += 1;
            return false;
        }
        if self.wire_fill.peek(1) == 0 {
            self.stats.xdp.rx_fill_ring_empty_descs += 1;
            self.stats.xdp.rx_dropped += 1;
            return false;
        }
        let addr = self.wire_fill.read(0);
        if addr as usize >= umem.len() {
            // The kernel refuses fill descriptors outside the UMEM.
            self.wire_fill.release(1);
            self.stats.xdp.rx_invalid_descs += 1;
            return false;
        }
        let Some(d) = umem.wire_write(addr, frame) else {
            // Too long: dropped, the frame stays with the wire side for the next one.
            self.stats.xdp.rx_dropped += 1;
            return false;
        };
        self.wire_fill.release(1);
        self.wire_rx.push_burst(&[d]);
        true
    }

    /// Wire side: transmits up to `max` queued frames, calling `out` with the
    /// bytes of each, and posts their completions. Returns how many.
    pub fn take_sent(&mut self, umem: &mut Umem, max: usize, mut out: impl FnMut(&[u8])) -> usize {
        self.check_umem(umem);
        let room = self.wire_comp.free(max as u32).min(max as u32);
        let n = self.wire_tx.peek(room);
        let done = self.wire_comp.reserve(n);
        debug_assert_eq!(done, n);
        for i in 0..n {
            let d = self.wire_tx.read(i);
            if umem.desc_ok(&d) {
                out(umem.wire_read(&d));
            } else {
                self.stats.xdp.tx_invalid_descs += 1;
            }
            self.wire_comp.write(i, umem.frame_base(d.addr));
        }
        self.wire_tx.release(n);
        self.wire_comp.submit(n);
        n as usize
    }

    /// Wire side: transmits everything queued into `other`'s receive path,
    /// like a cable between two ports. Returns how many frames crossed.
    pub fn cable_to(
        &mut self,
        umem: &mut Umem,
        other: &mut MemPort,
        other_umem: &mut Umem,
    ) -> usize {
        let mut frames = Vec::new();
        self.take_sent(umem, usize::MAX, |b| frames.push(b.to_vec()));
        frames
            .iter()
            .filter(|f| other.inject(other_umem, f))
            .count()
    }

    /// Wire side: entries on the fill ring not yet used for a received frame.
    pub fn fill_level(&mut self) -> u32 {
        self.wire_fill.available(u32::MAX)
    }

    /// Wire side: asks the worker for a wakeup on the fill ring.
    pub fn set_fill_needs_wakeup(&mut self, on: bool) {
        self.wire_fill.set_needs_wakeup(on);
    }
}

impl Port for MemPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn recv(&mut self, umem: &mut Umem, descs: &mut [Desc]) -> usize {
        self.check_umem(umem);
        let n = self.rx.peek(descs.len().min(u32::MAX as usize) as u32);
        for (i, slot) in descs.iter_mut().take(n as usize).enumerate() {
            let d = self.rx.read(i as u32);
            umem.moved(d.addr, FrameState::Rx, FrameState::Held);
            self.stats.rx_bytes += d.len as u64;
            *slot = d;
        }
        self.rx.release(n);
        self.stats.rx_packets += n as u64;
        n as usize
    }

    fn send(&mut self, umem: &mut Umem, descs: &[Desc]) -> usize {
        self.check_umem(umem);
        queue_tx(umem, &mut self.tx, descs, &mut self.stats)
    }

    fn refill(&mut self, umem: &mut Umem, max: usize) -> usize {
        self.check_umem(umem);
        let want = max.min(umem.free_frames()).min(u32::MAX as usize) as u32;
        let n = self.fill.reserve(want);
        let fill = &mut self.fill;
        let got = umem.take_for_fill(n as usize, |i, addr| fill.write(i as u32, addr));
        self.fill.submit(got as u32);
        self.stats.filled += got as u64;
        got
    }

    fn reclaim(&mut self, umem: &mut Umem, max: usize) -> usize {
        self.check_umem(umem);
        let n = self.comp.peek(max.min(u32::MAX as usize) as u32);
        for i in 0..n {
            umem.returned(self.comp.read(i), FrameState::Tx);
        }
        self.comp.release(n);
        self.stats.completed += n as u64;
        n as usize
    }

    fn wake(&mut self) -> usize {
        if self.fill.needs_wakeup() {
            // The "kernel" is woken: it clears its request.
            self.fill.set_needs_wakeup(false);
            self.stats.rx_wakeups += 1;
            return 1;
        }
        0
    }

    fn wait_rx(&mut self, _timeout: Duration) -> io::Result<bool> {
        // Nothing arrives while the caller waits: the wire side is the caller.
        Ok(self.rx.available(1) > 0)
    }

    fn tx_pending(&self) -> u32 {
        self.tx.pending()
    }

    fn ring_levels(&self) -> RingLevels {
        RingLevels {
            fill: self.fill.pending(),
            rx: self.rx.len(),
            tx: self.tx.pending(),
            comp: self.comp.len(),
        }
    }

    fn stats(&self) -> PortStats {
        self.stats
    }
}

/// Kernel counters of an in-memory port, for symmetry with [`super::XskPort`].
impl MemPort {
    /// The XDP_STATISTICS-shaped drop counters of the wire side.
    pub fn xdp_statistics(&self) -> XdpStatistics {
        self.stats.xdp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xsk::umem::UmemConfig;
    use crate::xsk::BURST;
    use proptest::prelude::*;

    fn umem(frames: u32) -> Umem {
        Umem::new(UmemConfig {
            frame_size: 2048,
            frame_count: frames,
            huge_pages: false,
            headroom: 0,
        })
        .unwrap()
    }

    fn frame(tag: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| tag.wrapping_add(i as u8)).collect()
    }

    #[test]
    fn receive_forward_complete() {
        let mut u = umem(64);
        let mut a = MemPort::new("a", &u, MemPortConfig::default());
        let mut b = MemPort::new("b", &u, MemPortConfig::default());
        assert_eq!(a.refill(&mut u, BURST), BURST);
        for t in 0..10 {
            assert!(a.inject(&mut u, &frame(t, 60 + t as usize)));
        }
        let mut descs = [Desc::default(); BURST];
        let n = a.recv(&mut u, &mut descs);
        assert_eq!(n, 10);
        assert_eq!(u.counts().held, 10);
        for (t, d) in descs[..n].iter().enumerate() {
            assert_eq!(u.data(d), &frame(t as u8, 60 + t)[..]);
        }
        // Forward on b: same descriptors, no copy.
        assert_eq!(b.send(&mut u, &descs[..n]), 10);
        let mut seen = Vec::new();
        assert_eq!(
            b.take_sent(&mut u, 64, |bytes| seen.push(bytes.to_vec())),
            10
        );
        for (t, s) in seen.iter().enumerate() {
            assert_eq!(s, &frame(t as u8, 60 + t));
        }
        assert_eq!(b.reclaim(&mut u, 64), 10);
        let c = u.check().unwrap();
        assert_eq!((c.free, c.rx, c.held, c.tx), (64 - 54, 54, 0, 0));
        assert_eq!(a.stats().rx_packets, 10);
        assert_eq!(b.stats().tx_packets, 10);
    }

    #[test]
    fn drops_are_counted_like_the_kernel() {
        let mut u = umem(8);
        let mut p = MemPort::new(
            "p",
            &u,
            MemPortConfig {
                rx_size: 4,
                tx_size: 4,
                fill_size: 8,
                comp_size: 4,
            },
        );
        assert!(!p.inject(&mut u, &[1; 60]));
        assert_eq!(p.xdp_statistics().rx_fill_ring_empty_descs, 1);
        p.refill(&mut u, 8);
        for _ in 0..4 {
            assert!(p.inject(&mut u, &[2; 60]));
        }
        assert!(!p.inject(&mut u, &[3; 60]));
        assert_eq!(p.xdp_statistics().rx_ring_full, 1);
        assert_eq!(p.xdp_statistics().rx_dropped, 2);
        u.check().unwrap();
    }

    #[test]
    fn tx_ring_full_leaves_frames_with_the_caller() {
        let mut u = umem(16);
        let mut p = MemPort::new(
            "p",
            &u,
            MemPortConfig {
                rx_size: 4,
                tx_size: 4,
                fill_size: 4,
                comp_size: 4,
            },
        );
        let mut descs = [Desc::default(); 6];
        assert_eq!(u.alloc_burst(&mut descs), 6);
        assert_eq!(p.send(&mut u, &descs), 4);
        assert_eq!(p.stats().tx_ring_full, 2);
        assert_eq!(u.counts().held, 2);
        assert_eq!(p.take_sent(&mut u, 16, |_| ()), 4);
        assert_eq!(p.reclaim(&mut u, 16), 4);
        assert_eq!(p.send(&mut u, &descs[4..]), 2);
        assert_eq!(p.take_sent(&mut u, 16, |_| ()), 2);
        assert_eq!(p.reclaim(&mut u, 16), 2);
        assert_eq!(u.check().unwrap().free, 16);
    }

    /// `send` returns only what the TX ring took. A descriptor it refuses
    /// (here one longer than its frame) ends the accepted prefix: the caller
    /// keeps it and the rest (here it frees them; the worker holds frames
    /// the ring did not take for its next loop, `context::txq`, tested in
    /// `dataplane::tx_backlog_tests`), and no frame leaks.
    #[test]
    fn send_returns_only_what_the_ring_took() {
        let mut u = umem(16);
        let mut p = MemPort::new(
            "p",
            &u,
            MemPortConfig {
                rx_size: 4,
                tx_size: 4,
                fill_size: 4,
                comp_size: 4,
            },
        );
        // What flush_tx does with a queue: send, then free what was not sent.
        let flush = |p: &mut MemPort, u: &mut Umem, q: &[Desc]| {
            let sent = p.send(u, q);
            u.free_burst(&q[sent..]);
            sent
        };
        let mut q: Vec<Desc> = (0..6).map(|i| u.alloc_with(&[i; 60]).unwrap()).collect();
        q[2].len = 2049; // held, but not inside its frame: refused
        assert_eq!(
            flush(&mut p, &mut u, &q),
            2,
            "refused descriptor and those after it stay with the caller"
        );
        let c = u.check().unwrap();
        assert_eq!((c.free, c.held, c.tx), (14, 0, 2));
        // The ring has room for two more: fill it, and send more than fits.
        let q: Vec<Desc> = (0..3)
            .map(|i| u.alloc_with(&[10 + i; 60]).unwrap())
            .collect();
        assert_eq!(flush(&mut p, &mut u, &q), 2);
        let full = [u.alloc_with(&[20; 60]).unwrap()];
        assert_eq!(flush(&mut p, &mut u, &full), 0, "full ring");
        let c = u.check().unwrap();
        assert_eq!((c.free, c.held, c.tx), (12, 0, 4));
        // The sent frames may still be read (packet capture after send).
        assert_eq!(u.data(&q[1]), &[11; 60]);
        let s = p.stats();
        assert_eq!(
            (s.tx_packets, s.tx_bytes, s.tx_refused, s.tx_ring_full),
            (4, 240, 1, 2 + 1 + 1)
        );
        let mut seen = Vec::new();
        assert_eq!(p.take_sent(&mut u, 16, |b| seen.push(b[0])), 4);
        assert_eq!(seen, [0, 1, 10, 11]);
        assert_eq!(p.reclaim(&mut u, 16), 4);
        assert_eq!(u.check().unwrap().free, 16);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "double use")]
    fn sending_a_frame_twice_is_caught() {
        let mut u = umem(4);
        let mut p = MemPort::new("p", &u, MemPortConfig::default());
        let d = u.alloc_with(&[1, 2, 3]).unwrap();
        p.send(&mut u, &[d]);
        p.send(&mut u, &[d]);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "double use")]
    fn freeing_a_sent_frame_is_caught() {
        let mut u = umem(4);
        let mut p = MemPort::new("p", &u, MemPortConfig::default());
        let d = u.alloc_with(&[1, 2, 3]).unwrap();
        p.send(&mut u, &[d]);
        u.free(d);
    }

    #[test]
    fn cable_connects_two_ports() {
        let mut ua = umem(32);
        let mut ub = umem(32);
        let mut a = MemPort::new("a", &ua, MemPortConfig::default());
        let mut b = MemPort::new("b", &ub, MemPortConfig::default());
        b.refill(&mut ub, 32);
        let d = ua.alloc_with(b"hello, wire").unwrap();
        a.send(&mut ua, &[d]);
        assert_eq!(a.cable_to(&mut ua, &mut b, &mut ub), 1);
        let mut descs = [Desc::default(); 4];
        assert_eq!(b.recv(&mut ub, &mut descs), 1);
        assert_eq!(ub.data(&descs[0]), b"hello, wire");
        ub.free(descs[0]);
        a.reclaim(&mut ua, 4);
        ua.check().unwrap();
        ub.check().unwrap();
    }

    #[test]
    fn wake_answers_fill_requests_only() {
        let u = umem(4);
        let mut p = MemPort::new("p", &u, MemPortConfig::default());
        assert_eq!(p.wake(), 0);
        p.set_fill_needs_wakeup(true);
        assert_eq!(p.wake(), 1);
        assert_eq!(p.wake(), 0);
    }

    proptest! {
        /// Whatever a worker does (receive, forward, drop, allocate, reclaim,
        /// refill, in any order), every frame stays in exactly one state and
        /// draining brings all back.
        #[test]
        fn ledger_holds_under_random_worker_steps(steps in proptest::collection::vec(0u8..7, 1..300)) {
            let mut u = umem(64);
            let cfg = MemPortConfig { rx_size: 16, tx_size: 16, fill_size: 32, comp_size: 16 };
            let mut a = MemPort::new("a", &u, cfg);
            let mut b = MemPort::new("b", &u, cfg);
            let mut held: Vec<Desc> = Vec::new();
            let mut descs = [Desc::default(); 16];
            for (i, s) in steps.iter().enumerate() {
                match s {
                    0 => { a.refill(&mut u, 16); }
                    1 => { a.inject(&mut u, &frame(i as u8, 64)); }
                    2 => { let n = a.recv(&mut u, &mut descs); held.extend_from_slice(&descs[..n]); }
                    3 => { let n = b.send(&mut u, &held); held.drain(..n); }
                    4 => { if let Some(d) = held.pop() { u.free(d); } }
                    5 => { b.take_sent(&mut u, 8, |_| ()); b.reclaim(&mut u, 16); }
                    _ => { if let Some(d) = u.alloc() { held.push(d); } }
                }
                let c = u.check().map_err(TestCaseError::fail)?;
                prop_assert_eq!(c.held as usize, held.len());
                // Exact census: every Rx frame is on a's fill or RX ring, every
                // Tx frame on b's TX or completion ring.
                let (la, lb) = (a.ring_levels(), b.ring_levels());
                prop_assert_eq!(c.rx, la.fill + la.rx);
                prop_assert_eq!(c.tx, lb.tx + lb.comp);
            }
            // Drain: everything comes back to the free list or the fill ring.
            u.free_burst(&held);
            while b.take_sent(&mut u, 64, |_| ()) > 0 {}
            b.reclaim(&mut u, 64);
            let c = u.check().map_err(TestCaseError::fail)?;
            prop_assert_eq!(c.held + c.tx, 0);
            prop_assert_eq!(c.free + c.rx, 64);
        }
    }
}
