//! A worker's per-port transmit queues, and the backlog that holds what a
//! port's TX ring did not take.
//!
//! Stages queue finished frames with [`TxQueues::push`] during a loop; the
//! worker sends each port's queue as one burst at the end of it. The TX ring
//! of an AF_XDP socket takes what it has room for; the rest is not dropped
//! but moves to the port's **backlog**, in order, and goes out first on the
//! next loop (frames queued meanwhile join it behind the held ones, so a
//! port's frames leave in the order they were queued). While some port's
//! backlog is over [`TX_HOLD`] the worker takes no RX ([`TxQueues::over`]):
//! back-pressure goes to the RX rings and the kernel, which count what they
//! drop, instead of to a silent drop here.
//!
//! Only a backlog that cannot drain is dropped: a port whose ring took
//! nothing for [`TX_STUCK_NS`] while frames waited (a dead link, a stopped
//! queue) or on which this worker has no socket (`tx-port-stuck`). A stuck
//! port holds nothing until its ring takes a frame again, so it never stops
//! the worker's other ports. A queue with no room at all (more frames for
//! one port than [`TX_QUEUE`] in one loop, or a backlog at [`TX_BACKLOG`])
//! drops as `tx-ring-full`; the bounds below keep that from happening under
//! the engine's own bursts.
//!
//! Nothing here allocates after [`TxQueues::new`]: both vectors of a port
//! are created at their capacity and never grow.
use crate::xsk::{Desc, Umem, BURST};

use super::counters::{Drop, LocalCounters, Stage};

/// Frames a port's queue takes in one loop: a loop receives at most a
/// burst per socket (a worker has a few) and up to four bursts of handed
/// frames, all of which may leave by one port, plus what the services add
/// (neighbor queues flushed, TCP segments, ICMP errors, fragments). Four
/// bursts, the bound before 2026-12-03, overflowed under the soak's NAT load
/// (a burst from each of two sockets and four handed bursts in one loop).
pub const TX_QUEUE: usize = 16 * BURST;

/// Frames a port's backlog holds (what its TX ring did not take).
pub const TX_BACKLOG: usize = 16 * BURST;

/// Backlog over which the worker stops taking RX (sockets and handoffs):
/// four bursts, so a ring that drains more slowly than frames arrive holds
/// a few loops' worth and then pushes back, and [`TX_BACKLOG`] keeps room for
/// a whole loop's frames on top of it.
pub const TX_HOLD: usize = 4 * BURST;

/// A backlog whose ring took nothing for this long is given up (dropped,
/// `tx-port-stuck`): 100 ms, a long time for a ring that drains in
/// microseconds, short enough that a dead port does not stall the worker's
/// other ports for long.
pub const TX_STUCK_NS: u64 = 100_000_000;

/// One port's backlog.
#[derive(Debug)]
struct Held {
    /// Frames the ring did not take, oldest first.
    frames: Vec<Desc>,
    /// When the backlog began to wait or the ring last took a frame (ns).
    progress_ns: u64,
    /// The ring took nothing for [`TX_STUCK_NS`]: hold nothing until it does.
    stuck: bool,
}

/// Per-port transmit queues and backlogs of one worker. The two are
/// separate fields so that the worker can send a slice of this loop's queue
/// (or of the impairment stage's output) while the backlog takes the rest.
#[derive(Debug)]
pub struct TxQueues {
    /// Frames queued during this loop, per port.
    pub new: Vec<Vec<Desc>>,
    /// What the rings did not take, per port.
    pub back: Backlog,
}

impl TxQueues {
    pub fn new(ports: usize) -> Self {
        TxQueues {
            new: (0..ports).map(|_| Vec::with_capacity(TX_QUEUE)).collect(),
            back: Backlog {
                ports: (0..ports)
                    .map(|_| Held {
                        frames: Vec::with_capacity(TX_BACKLOG),
                        progress_ns: 0,
                        stuck: false,
                    })
                    .collect(),
                stuck_ns: TX_STUCK_NS,
                over: false,
            },
        }
    }

    /// Queues a frame; gives it back if the port is unknown or its queue is full.
    #[inline]
    pub fn push(&mut self, port: u16, d: Desc) -> Result<(), Desc> {
        match self.new.get_mut(usize::from(port)) {
            Some(q) if q.len() < TX_QUEUE => {
                q.push(d);
                Ok(())
            }
            _ => Err(d),
        }
    }

    /// The frames queued on `port` during this loop (not the backlog).
    pub fn queue(&self, port: usize) -> &[Desc] {
        self.new.get(port).map_or(&[], |q| q.as_slice())
    }

    /// Forgets this loop's queue of `port` (the caller took its frames).
    pub fn clear(&mut self, port: usize) {
        if let Some(q) = self.new.get_mut(port) {
            q.clear();
        }
    }

    pub fn ports(&self) -> usize {
        self.new.len()
    }

    /// Nothing queued and nothing held.
    pub fn is_empty(&self) -> bool {
        self.new.iter().all(|q| q.is_empty()) && self.back.is_empty()
    }

    /// Some port's backlog is over [`TX_HOLD`]: take no RX this loop.
    #[inline]
    pub fn over(&self) -> bool {
        self.back.over
    }
}

/// The frames each port's TX ring did not take, held for the next loop.
///
/// Per port and loop the worker calls [`Backlog::batch`] (what to send: this
/// loop's frames, or the backlog with them behind it), sends that slice in
/// one burst, then [`Backlog::sent`] with how many the ring took.
#[derive(Debug)]
pub struct Backlog {
    ports: Vec<Held>,
    /// How long a ring may take nothing before its backlog is given up
    /// ([`TX_STUCK_NS`]; tests shorten or lengthen it).
    pub stuck_ns: u64,
    /// Some port's backlog is over [`TX_HOLD`] (as of the last [`Backlog::settle`]).
    over: bool,
}

impl Backlog {
    /// Frames held for `port`.
    pub fn held(&self, port: usize) -> usize {
        self.ports.get(port).map_or(0, |h| h.frames.len())
    }

    pub fn is_empty(&self) -> bool {
        self.ports.iter().all(|h| h.frames.is_empty())
    }

    /// What to send on `port` this loop: `fresh` (this loop's frames, after
    /// the impairment stage if it is on) when nothing is held, else the
    /// backlog with `fresh` joined behind it (what does not fit is dropped,
    /// `tx-ring-full`). Empty when there is nothing to send.
    pub fn batch<'a>(
        &'a mut self,
        port: usize,
        fresh: &'a [Desc],
        counters: &mut LocalCounters,
        umem: &mut Umem,
    ) -> &'a [Desc] {
        let Some(h) = self.ports.get_mut(port) else {
            return fresh;
        };
        if h.frames.is_empty() {
            return fresh;
        }
        let room = TX_BACKLOG - h.frames.len();
        let (join, over) = fresh.split_at(fresh.len().min(room));
        h.frames.extend_from_slice(join);
        for &d in over {
            counters.drop(Drop::TxRingFull);
            umem.free(d);
        }
        &h.frames
    }

    /// The ring took the first `took` frames of the slice [`Backlog::batch`]
    /// returned for `port` (`fresh` is the same slice given to it): holds
    /// the rest, or drops it (`tx-port-stuck`) when the port cannot drain.
    pub fn sent(
        &mut self,
        port: usize,
        fresh: &[Desc],
        took: usize,
        now_ns: u64,
        counters: &mut LocalCounters,
        umem: &mut Umem,
    ) {
        let Some(h) = self.ports.get_mut(port) else {
            return;
        };
        if h.frames.is_empty() {
            // The batch was `fresh`: a backlog begins with what the ring left.
            h.progress_ns = now_ns;
            let rest = fresh.get(took..).unwrap_or(&[]);
            if h.stuck {
                for &d in rest {
                    counters.drop(Drop::TxPortStuck);
                    umem.free(d);
                }
            } else {
                // The impairment stage's output may be longer than a queue:
                // what does not fit is dropped, the backlog never grows.
                let (keep, over) = rest.split_at(rest.len().min(TX_BACKLOG));
                h.frames.extend_from_slice(keep);
                for &d in over {
                    counters.drop(Drop::TxRingFull);
                    umem.free(d);
                }
            }
        } else {
            h.frames.drain(..took.min(h.frames.len()));
        }
        if took > 0 {
            h.progress_ns = now_ns;
            h.stuck = false;
        } else if !h.frames.is_empty() && now_ns.saturating_sub(h.progress_ns) >= self.stuck_ns {
            // The ring took nothing for a long time: this backlog cannot drain.
            h.stuck = true;
            for &d in &h.frames {
                counters.drop(Drop::TxPortStuck);
                umem.free(d);
            }
            h.frames.clear();
        }
        if !h.frames.is_empty() {
            counters.stage(Stage::TxHeld, h.frames.len() as u64);
        }
    }

    /// No socket of this worker transmits on `port`: nothing can drain, so
    /// the backlog and `fresh` are dropped (`tx-port-stuck`).
    pub fn give_up(
        &mut self,
        port: usize,
        fresh: &[Desc],
        counters: &mut LocalCounters,
        umem: &mut Umem,
    ) {
        let held = self.ports.get_mut(port).map(|h| &mut h.frames);
        for &d in held.iter().flat_map(|f| f.iter()).chain(fresh) {
            counters.drop(Drop::TxPortStuck);
            umem.free(d);
        }
        if let Some(h) = self.ports.get_mut(port) {
            h.frames.clear();
        }
    }

    /// Recomputes [`TxQueues::over`] after every port was flushed.
    pub fn settle(&mut self) {
        self.over = self.ports.iter().any(|h| h.frames.len() > TX_HOLD);
    }

    /// Frees every held frame (worker exit), counted as `tx-port-stuck`.
    pub fn free_all(&mut self, counters: &mut LocalCounters, umem: &mut Umem) {
        for h in &mut self.ports {
            for &d in &h.frames {
                counters.drop(Drop::TxPortStuck);
                umem.free(d);
            }
            h.frames.clear();
        }
        self.over = false;
    }
}
