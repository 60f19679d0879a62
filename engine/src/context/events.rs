//! What workers tell the control thread: neighbors seen and missed, captured
//! frames, trace records. A bounded crossbeam channel: `try_send` never
//! blocks a worker; when the control thread falls behind, events are dropped
//! and counted (a neighbor seen again is reported again, so nothing is lost
//! for good).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam::channel::{Receiver, Sender, TrySendError};

use super::counters::Drop;
use crate::neighbor::NeighborKey;
use crate::wire::Mac;

/// Where a traced packet ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceEnd {
    /// Queued for transmission on this port.
    Tx(u16),
    Drop(Drop),
    /// Waiting for ARP/ND on this port.
    Parked(u16),
    /// Answered or consumed by the engine itself (ARP, ND, echo).
    Local,
}

/// One traced packet: where it came from and how it ended, with its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceRecord {
    pub worker: u16,
    pub port: u16,
    pub len: u32,
    pub time_ns: u64,
    pub end: TraceEnd,
    pub head: [u8; 64],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A neighbor's link-layer address was seen (ARP, NS/NA); `confirmed`
    /// when it answered us (reply or solicited advertisement).
    NeighSeen {
        key: NeighborKey,
        mac: Mac,
        confirmed: bool,
    },
    /// A worker started resolving a neighbor.
    NeighMiss {
        key: NeighborKey,
    },
    /// A neighbor did not answer.
    NeighFailed {
        key: NeighborKey,
    },
    /// A frame copied for `ctl capture` (rx or tx on `port`).
    Captured {
        port: u16,
        time_ns: u64,
        data: Vec<u8>,
    },
    Trace(Box<TraceRecord>),
    /// A station's MAC appeared on another port of its bridge (for the log).
    MacMoved {
        bridge: u8,
        key: crate::mac_table::MacKey,
        from: u16,
        to: u16,
    },
}

/// A worker's end of the event channel.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: Sender<Event>,
    dropped: Arc<AtomicU64>,
}

impl EventSink {
    /// Sends without blocking; counts the event if the channel is full.
    #[inline]
    pub fn send(&self, e: Event) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(e) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A channel of `cap` events: the workers' sink and the control thread's receiver.
pub fn channel(cap: usize) -> (EventSink, Receiver<Event>) {
    let (tx, rx) = crossbeam::channel::bounded(cap);
    (
        EventSink {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        },
        rx,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_channel_counts_instead_of_blocking() {
        let (sink, rx) = channel(2);
        let key = NeighborKey {
            port: 0,
            ip: "198.18.0.1".parse().unwrap(),
        };
        for _ in 0..5 {
            sink.send(Event::NeighMiss { key });
        }
        assert_eq!(rx.len(), 2);
        assert_eq!(sink.dropped(), 3);
    }
}
