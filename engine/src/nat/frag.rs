//! Fragments through the NAT without reassembly: the first fragment carries
//! the ports, so it finds or creates the mapping like any packet; what it
//! was translated to is remembered under (protocol, source, destination, IP
//! id), and the later fragments of the same datagram, which carry no ports,
//! get the same address rewrite (or go to the worker that owns it).
//!
//! The memory is a fixed direct-mapped table: a new datagram whose key
//! lands on a busy slot replaces the old entry. Bounded memory and work
//! whatever the traffic; the cost of a collision is the later fragments of
//! one datagram dropped (counted, `nat-frag-no-state`), as if they had come
//! before their first fragment, which the NAT does not wait for either.

use crate::conntrack::rewrite::Side;

/// Slots in a worker's table (a power of two).
pub const SLOTS: usize = 4096;
/// How long a datagram's fragments are followed (Linux keeps fragments 30 s).
pub const LIFETIME_MS: u64 = 30_000;

/// What the later fragments of a datagram get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Rewrite this side's address.
    Rewrite { side: Side, addr: u32 },
    /// Hand them to this worker, which translated the first fragment.
    Owner(u16),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: (u64, u32),
    follow: Follow,
    until_ms: u64,
}

/// One worker's fragment memory.
#[derive(Debug)]
pub struct FragTable {
    slots: Vec<Option<Entry>>,
}

impl Default for FragTable {
    fn default() -> Self {
        FragTable {
            slots: vec![None; SLOTS],
        }
    }
}

#[inline]
fn key(proto: u8, src: u32, dst: u32, id: u16) -> (u64, u32) {
    (
        u64::from(src) << 32 | u64::from(dst),
        u32::from(proto) << 16 | u32::from(id),
    )
}

#[inline]
fn slot_of(k: (u64, u32)) -> usize {
    let h = (k.0 ^ u64::from(k.1).rotate_left(17)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 52) as usize & (SLOTS - 1)
}

impl FragTable {
    /// Remembers what the first fragment of (proto, src, dst, id) got.
    pub fn remember(
        &mut self,
        proto: u8,
        src: u32,
        dst: u32,
        id: u16,
        follow: Follow,
        now_ms: u64,
    ) {
        let k = key(proto, src, dst, id);
        self.slots[slot_of(k)] = Some(Entry {
            key: k,
            follow,
            until_ms: now_ms + LIFETIME_MS,
        });
    }

    /// What a later fragment of (proto, src, dst, id) gets, if its first
    /// fragment came through.
    #[inline]
    pub fn follow(&self, proto: u8, src: u32, dst: u32, id: u16, now_ms: u64) -> Option<Follow> {
        let k = key(proto, src, dst, id);
        match self.slots[slot_of(k)] {
            Some(e) if e.key == k && now_ms < e.until_ms => Some(e.follow),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_fragments_follow_their_first_until_it_expires() {
        let mut t = FragTable::default();
        let f = Follow::Rewrite {
            side: Side::Src,
            addr: 7,
        };
        t.remember(17, 1, 2, 99, f, 0);
        assert_eq!(t.follow(17, 1, 2, 99, 10), Some(f));
        assert_eq!(t.follow(17, 1, 2, 98, 10), None, "another datagram");
        assert_eq!(t.follow(6, 1, 2, 99, 10), None, "another protocol");
        assert_eq!(t.follow(17, 1, 2, 99, LIFETIME_MS), None, "expired");
        t.remember(17, 1, 2, 99, Follow::Owner(1), 0);
        assert_eq!(t.follow(17, 1, 2, 99, 1), Some(Follow::Owner(1)));
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = FragTable::default();
        for id in 0..=u16::MAX {
            t.remember(17, 1, 2, id, Follow::Owner(0), 0);
        }
        assert_eq!(t.slots.len(), SLOTS);
        let found = (0..=u16::MAX)
            .filter(|&id| t.follow(17, 1, 2, id, 1).is_some())
            .count();
        assert!(found <= SLOTS && found > SLOTS / 2, "{found}");
    }
}
