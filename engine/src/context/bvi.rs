//! Frames between a bridge domain and its bridge virtual interface (BVI):
//! the routed port a `[[bridge]]` with addresses becomes.
//!
//! A BVI has no socket. The switch stage delivers a frame for the BVI's MAC
//! (or a broadcast/multicast it floods in the BVI's VLAN) with
//! [`Ctx::to_router`](super::Ctx::to_router); the router sends out of the
//! BVI port with [`Ctx::send`](super::Ctx::send) as out of any port, and
//! `send` diverts the frame here. The pipeline runs the queue at the end
//! of the worker's round (`dataplane::pipeline::run_bvi`): frames toward the
//! router go through it as received on the BVI port, frames toward the
//! bridge through the switch stage as received from the BVI's member.
//! Fixed capacity: a full queue drops (counted as `bvi-queue-full`), it
//! never reallocates.

use crate::xsk::{Desc, BURST};

/// Frames the queue holds between two runs: four bursts each way.
pub const BVI_QUEUE: usize = 8 * BURST;

/// Which way a queued frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Toward {
    /// From the bridge into the router (received on the BVI port).
    #[default]
    Router,
    /// From the router into the bridge (sent out of the BVI port).
    Bridge,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct BviFrame {
    /// The BVI's engine port.
    pub port: u16,
    pub toward: Toward,
    pub d: Desc,
}

#[derive(Debug)]
pub struct BviQueue {
    q: Box<[BviFrame; BVI_QUEUE]>,
    len: usize,
}

impl Default for BviQueue {
    fn default() -> Self {
        BviQueue {
            q: Box::new([BviFrame::default(); BVI_QUEUE]),
            len: 0,
        }
    }
}

impl BviQueue {
    /// Queues a frame; gives it back when the queue is full.
    #[inline]
    pub fn push(&mut self, f: BviFrame) -> Result<(), Desc> {
        match self.q.get_mut(self.len) {
            Some(slot) => {
                *slot = f;
                self.len += 1;
                Ok(())
            }
            None => Err(f.d),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Empties the queue, handing every frame to `free` (a worker that stops).
    pub fn clear_with(&mut self, mut free: impl FnMut(Desc)) {
        for f in &self.q[..self.len] {
            free(f.d);
        }
        self.len = 0;
    }

    /// Moves every queued frame into `out` (which must hold [`BVI_QUEUE`]);
    /// returns how many. The queue is empty after, ready for what running
    /// them queues.
    pub fn take_into(&mut self, out: &mut [BviFrame]) -> usize {
        let n = self.len.min(out.len());
        out[..n].copy_from_slice(&self.q[..n]);
        // What did not fit (never, with `out` of BVI_QUEUE) stays, in order.
        self.q.copy_within(n..self.len, 0);
        self.len -= n;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_refuses_and_hands_over_in_order() {
        let mut q = BviQueue::default();
        for i in 0..BVI_QUEUE {
            let d = Desc {
                addr: i as u64,
                len: 60,
                options: 0,
            };
            assert!(q
                .push(BviFrame {
                    port: 3,
                    toward: Toward::Router,
                    d
                })
                .is_ok());
        }
        let extra = Desc {
            addr: 9999,
            len: 60,
            options: 0,
        };
        assert_eq!(
            q.push(BviFrame {
                port: 3,
                toward: Toward::Bridge,
                d: extra
            }),
            Err(extra)
        );
        let mut out = [BviFrame::default(); BVI_QUEUE];
        assert_eq!(q.take_into(&mut out), BVI_QUEUE);
        assert!(q.is_empty());
        assert!(out.iter().enumerate().all(|(i, f)| f.d.addr == i as u64));
        let mut small = [BviFrame::default(); 2];
        for i in 0..3 {
            q.push(BviFrame {
                port: 1,
                toward: Toward::Bridge,
                d: Desc {
                    addr: i,
                    len: 60,
                    options: 0,
                },
            })
            .unwrap();
        }
        assert_eq!(q.take_into(&mut small), 2);
        assert_eq!(q.len(), 1);
        assert_eq!(q.take_into(&mut small), 1);
        assert_eq!(small[0].d.addr, 2);
    }
}
