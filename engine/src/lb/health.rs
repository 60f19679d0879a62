//! The optional active health check: a TCP connect probe to each backend of
//! a service with `health_check_ms` set. The engine owns its ports (the
//! kernel has no address there to connect from), so the probe is its own: a
//! SYN from the engine's address toward the backend; a SYN-ACK means up (the
//! engine answers it with a RST, so the backend's kernel keeps no half-open
//! connection), a RST or silence until the timeout is a failure. After
//! `health_check_fails` failures in a row the backend is down for new
//! connections; one success brings it back. An operator's `down` is kept
//! apart: a health check never brings up a backend set down by hand.
//!
//! Control thread ↔ data plane, lock-free: a probe slot per (service,
//! backend), its source port `PROBE_PORT_LO + slot` (the NAT and the load
//! balancer never allocate that range); the control thread arms a slot and
//! queues its index; worker 0 sends the SYN; whichever worker receives the
//! answer records it in the slot (atomics), and the control thread reads it.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use crossbeam::queue::ArrayQueue;

use crate::conntrack::Ep;
use crate::wire::checksum;

/// Probe source ports: `PROBE_PORT_LO .. PROBE_PORT_LO + PROBES`.
pub const PROBE_PORT_LO: u16 = 61_000;
pub const PROBES: usize = 256;

const IDLE: u8 = 0;
const PENDING: u8 = 1;
const UP: u8 = 2;
const REFUSED: u8 = 3;

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Waiting,
    Up,
    Refused,
}

#[derive(Debug, Default)]
struct Slot {
    /// `addr << 16 | port` of the backend probed.
    target: AtomicU64,
    /// The SYN's sequence number: a SYN-ACK must acknowledge it + 1.
    seq: AtomicU32,
    state: AtomicU8,
}

/// The probe slots and the queue of probes to send.
#[derive(Debug)]
pub struct Health {
    slots: Vec<Slot>,
    queue: ArrayQueue<u16>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            slots: (0..PROBES).map(|_| Slot::default()).collect(),
            queue: ArrayQueue::new(PROBES),
        }
    }
}

#[inline]
fn key(e: Ep) -> u64 {
    u64::from(e.addr) << 16 | u64::from(e.port)
}

impl Health {
    /// Control thread: arms slot `i` for `target` and queues the probe.
    pub fn start(&self, i: u16, target: Ep, seq: u32) -> bool {
        let Some(s) = self.slots.get(usize::from(i)) else {
            return false;
        };
        s.target.store(key(target), Ordering::Relaxed);
        s.seq.store(seq, Ordering::Relaxed);
        s.state.store(PENDING, Ordering::Release);
        self.queue.push(i).is_ok()
    }

    /// Control thread: the slot's outcome so far.
    pub fn outcome(&self, i: u16) -> Outcome {
        match self
            .slots
            .get(usize::from(i))
            .map(|s| s.state.load(Ordering::Acquire))
        {
            Some(UP) => Outcome::Up,
            Some(REFUSED) => Outcome::Refused,
            _ => Outcome::Waiting,
        }
    }

    /// Worker 0: the next probe to send (slot, backend, source port, sequence number).
    #[inline]
    pub fn next(&self) -> Option<(Ep, u16, u32)> {
        let i = self.queue.pop()?;
        let s = &self.slots[usize::from(i)];
        let t = s.target.load(Ordering::Relaxed);
        Some((
            Ep::new((t >> 16) as u32, t as u16),
            PROBE_PORT_LO + i,
            s.seq.load(Ordering::Relaxed),
        ))
    }

    /// Any worker: a TCP segment from `from` to local port `dport`. Returns
    /// `Some(syn_ack)` when it answered a pending probe (the caller consumes it
    /// and resets a SYN-ACK), None when it is no probe's.
    pub fn answer(&self, from: Ep, dport: u16, flags: u8, ack: u32) -> Option<bool> {
        let i = usize::from(dport.checked_sub(PROBE_PORT_LO)?);
        let s = self.slots.get(i)?;
        if s.target.load(Ordering::Relaxed) != key(from)
            || s.state.load(Ordering::Acquire) != PENDING
        {
            return None;
        }
        let syn_ack = flags & 0x12 == 0x12 && ack == s.seq.load(Ordering::Relaxed).wrapping_add(1);
        let rst = flags & 0x04 != 0;
        if !syn_ack && !rst {
            return None;
        }
        s.state
            .store(if syn_ack { UP } else { REFUSED }, Ordering::Release);
        Some(syn_ack)
    }

    pub fn reset(&self, i: u16) {
        if let Some(s) = self.slots.get(usize::from(i)) {
            s.state.store(IDLE, Ordering::Release);
        }
    }
}

/// Writes an IPv4 TCP SYN (MSS 1460) from `src:sport` to `dst` into `buf`;
/// returns its length.
pub fn build_syn(buf: &mut [u8], src: Ipv4Addr, sport: u16, dst: Ep, seq: u32) -> Option<usize> {
    const LEN: usize = 20 + 24;
    let b = buf.get_mut(..LEN)?;
    b.fill(0);
    b[..12].copy_from_slice(&[0x45, 0, 0, LEN as u8, 0, 0, 0x40, 0, 64, 6, 0, 0]);
    b[12..16].copy_from_slice(&src.octets());
    b[16..20].copy_from_slice(&dst.addr.to_be_bytes());
    let c = checksum::checksum(&b[..20]);
    b[10..12].copy_from_slice(&c.to_be_bytes());
    let t = &mut b[20..];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dst.port.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[12] = 6 << 4;
    t[13] = 0x02;
    t[14..16].copy_from_slice(&64_240u16.to_be_bytes());
    t[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]);
    let s = checksum::combine(&[
        checksum::pseudo_header_v4(&src.octets(), &dst.addr.to_be_bytes(), 6, 24),
        checksum::data(t),
    ]);
    t[16..18].copy_from_slice(&(!s).to_be_bytes());
    Some(LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_is_armed_sent_and_answered() {
        let h = Health::default();
        let b = Ep::new(0xc613_020b, 8000);
        assert!(h.start(3, b, 1000));
        assert_eq!(h.next(), Some((b, PROBE_PORT_LO + 3, 1000)));
        assert_eq!(h.next(), None);
        // Not the probe's: another source, a wrong ack, a bare ACK.
        assert_eq!(
            h.answer(Ep::new(0xc613_020c, 8000), PROBE_PORT_LO + 3, 0x12, 1001),
            None
        );
        assert_eq!(h.answer(b, PROBE_PORT_LO + 3, 0x12, 77), None);
        assert_eq!(h.answer(b, PROBE_PORT_LO + 3, 0x10, 1001), None);
        assert_eq!(h.answer(b, 80, 0x12, 1001), None);
        assert_eq!(h.outcome(3), Outcome::Waiting);
        assert_eq!(h.answer(b, PROBE_PORT_LO + 3, 0x12, 1001), Some(true));
        assert_eq!(h.outcome(3), Outcome::Up);
        assert_eq!(
            h.answer(b, PROBE_PORT_LO + 3, 0x12, 1001),
            None,
            "answered once"
        );
        h.start(3, b, 5);
        assert_eq!(h.answer(b, PROBE_PORT_LO + 3, 0x14, 0), Some(false));
        assert_eq!(h.outcome(3), Outcome::Refused);
    }

    #[test]
    fn the_syn_has_valid_checksums() {
        let mut buf = [0u8; 64];
        let n = build_syn(
            &mut buf,
            Ipv4Addr::new(198, 19, 2, 1),
            61_000,
            Ep::new(0xc613_020b, 8000),
            42,
        )
        .unwrap();
        let ip = &buf[..n];
        assert_eq!(checksum::data(&ip[..20]), 0xffff);
        let s = checksum::combine(&[
            checksum::pseudo_header_v4(
                &ip[12..16].try_into().unwrap(),
                &ip[16..20].try_into().unwrap(),
                6,
                24,
            ),
            checksum::data(&ip[20..]),
        ]);
        assert_eq!(s, 0xffff);
        assert_eq!(ip[33], 0x02, "SYN");
    }
}
