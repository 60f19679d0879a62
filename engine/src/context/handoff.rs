//! Frames handed from one worker to another: the NAT's and the load
//! balancer's owner rule (a flow's state lives on the worker that owns its
//! port) meets AF_XDP's
//! (a frame arrives on the queue the kernel chose, and an XSK only gets
//! frames of the queue it is bound to, so the steering program cannot move
//! a frame to another worker's queue).
//!
//! Every worker has an inbox and a pool of empty slots, both bounded
//! lock-free queues (crossbeam `ArrayQueue`) filled at start: a sender takes
//! an empty slot from the target's pool, copies the frame in (the two
//! workers have separate UMEMs, so the bytes must move), and pushes it to
//! the target's inbox; the target copies it into one of its own frames and
//! returns the slot. No allocation after start, no lock; a full inbox or an
//! empty pool drops the frame (counted, `nat-handoff-full`). A target asleep
//! in `poll()` is woken through its eventfd, and only then (one flag load
//! per handoff otherwise).

use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam::queue::ArrayQueue;

use crate::xsk::Waker;

/// Frames a worker's inbox holds (8 MiB of slots): a worker takes up to
/// four bursts of them per loop, so the inbox absorbs a few loops of a busy
/// sender (measured: 512 overflowed under 2.6 Gbit/s of TCP through the NAT).
pub const INBOX: usize = 2048;
/// The largest frame handed over (a 4096-byte UMEM frame less headroom).
pub const SLOT_BYTES: usize = 4096;

/// The handed frame should be processed as if it arrived on an outside
/// port: the second half of a hairpin (RFC 4787 REQ-9).
pub const AS_OUTSIDE: u8 = 1;

/// Set on every handed frame while the receiving worker runs it: its RX
/// was counted where it arrived.
pub const HANDED: u8 = 0x80;

/// One frame in transit between workers.
#[derive(Debug)]
pub struct Slot {
    pub port: u16,
    pub flags: u8,
    pub len: u16,
    pub data: Box<[u8; SLOT_BYTES]>,
}

/// One worker's inbox.
#[derive(Debug)]
pub struct Inbox {
    full: ArrayQueue<Slot>,
    pool: ArrayQueue<Slot>,
    sleeping: AtomicBool,
    waker: Option<Waker>,
}

/// Every worker's inbox.
#[derive(Debug)]
pub struct Handoff {
    inboxes: Vec<Inbox>,
}

impl Handoff {
    /// Inboxes for `workers` workers; with `wakers` each has an eventfd
    /// (real workers; tests drive workers by hand and need none).
    pub fn new(workers: usize, wakers: bool) -> std::io::Result<Handoff> {
        let mut inboxes = Vec::with_capacity(workers);
        for _ in 0..workers {
            let pool = ArrayQueue::new(INBOX);
            for _ in 0..INBOX {
                let _ = pool.push(Slot {
                    port: 0,
                    flags: 0,
                    len: 0,
                    data: Box::new([0; SLOT_BYTES]),
                });
            }
            let waker = if wakers { Some(Waker::new()?) } else { None };
            inboxes.push(Inbox {
                full: ArrayQueue::new(INBOX),
                pool,
                sleeping: AtomicBool::new(false),
                waker,
            });
        }
        Ok(Handoff { inboxes })
    }

    /// Hands `frame` (received on `port`) to worker `to`. False when it has
    /// no room (the caller drops and counts) or the frame is too large.
    pub fn send(&self, to: u16, port: u16, flags: u8, frame: &[u8]) -> bool {
        let Some(inbox) = self.inboxes.get(usize::from(to)) else {
            return false;
        };
        if frame.len() > SLOT_BYTES {
            return false;
        }
        let Some(mut slot) = inbox.pool.pop() else {
            return false;
        };
        slot.port = port;
        slot.flags = flags;
        slot.len = frame.len() as u16;
        slot.data[..frame.len()].copy_from_slice(frame);
        if let Err(slot) = inbox.full.push(slot) {
            let _ = inbox.pool.push(slot);
            return false;
        }
        // Pairs with the SeqCst store in `may_sleep`: either the target sees
        // the frame before it sleeps, or we see it asleep and wake it.
        if inbox.sleeping.load(Ordering::SeqCst) {
            if let Some(w) = &inbox.waker {
                w.wake();
            }
        }
        true
    }

    /// Takes the next frame for worker `me`; give the slot back with [`Handoff::recycle`].
    #[inline]
    pub fn recv(&self, me: u16) -> Option<Slot> {
        self.inboxes.get(usize::from(me))?.full.pop()
    }

    pub fn recycle(&self, me: u16, slot: Slot) {
        if let Some(i) = self.inboxes.get(usize::from(me)) {
            let _ = i.pool.push(slot);
        }
    }

    /// Frames waiting for worker `me`.
    pub fn pending(&self, me: u16) -> usize {
        self.inboxes
            .get(usize::from(me))
            .map_or(0, |i| i.full.len())
    }

    /// Worker `me` is about to sleep: returns false (do not sleep) when
    /// frames are already waiting. Call [`Handoff::awake`] after the sleep.
    pub fn may_sleep(&self, me: u16) -> bool {
        let Some(i) = self.inboxes.get(usize::from(me)) else {
            return true;
        };
        i.sleeping.store(true, Ordering::SeqCst);
        if !i.full.is_empty() {
            i.sleeping.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    pub fn awake(&self, me: u16) {
        if let Some(i) = self.inboxes.get(usize::from(me)) {
            i.sleeping.store(false, Ordering::SeqCst);
            if let Some(w) = &i.waker {
                w.drain();
            }
        }
    }

    /// The eventfd worker `me` polls beside its sockets.
    pub fn wake_fd(&self, me: u16) -> Option<std::os::fd::RawFd> {
        self.inboxes
            .get(usize::from(me))?
            .waker
            .as_ref()
            .map(Waker::fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cross_and_slots_come_back() {
        let h = Handoff::new(2, true).unwrap();
        assert!(h.send(1, 3, AS_OUTSIDE, b"frame"));
        assert_eq!(h.pending(1), 1);
        let s = h.recv(1).unwrap();
        assert_eq!(
            (s.port, s.flags, &s.data[..usize::from(s.len)]),
            (3, AS_OUTSIDE, &b"frame"[..])
        );
        h.recycle(1, s);
        assert!(h.recv(1).is_none());
        assert!(!h.send(2, 0, 0, b"x"), "no such worker");
        assert!(!h.send(0, 0, 0, &[0; SLOT_BYTES + 1]), "too large");
    }

    #[test]
    fn a_full_inbox_refuses_and_nothing_leaks() {
        let h = Handoff::new(1, false).unwrap();
        for _ in 0..INBOX {
            assert!(h.send(0, 0, 0, b"x"));
        }
        assert!(!h.send(0, 0, 0, b"x"));
        let mut n = 0;
        while let Some(s) = h.recv(0) {
            h.recycle(0, s);
            n += 1;
        }
        assert_eq!(n, INBOX);
        assert!(h.send(0, 0, 0, b"x"), "slots were returned");
    }

    #[test]
    fn a_sleeping_worker_is_woken() {
        let h = std::sync::Arc::new(Handoff::new(1, true).unwrap());
        assert!(h.may_sleep(0));
        let fd = h.wake_fd(0).unwrap();
        let h2 = h.clone();
        let t = std::thread::spawn(move || h2.send(0, 0, 0, b"x"));
        let woke = crate::xsk::wait_any(&[fd], std::time::Duration::from_secs(5)).unwrap();
        assert!(woke && t.join().unwrap());
        h.awake(0);
        assert!(!h.may_sleep(0), "a frame waits: do not sleep");
    }
}
