//! The next-hop table: what a route lookup's small integer means.
//!
//! A lookup returns a [`NextHopId`], an index into a [`NextHopTable`] whose entry is one next
//! hop (gateway and/or egress port) or an ECMP group. The router picks a group member with
//! [`NextHopTable::select`] from the packet's flow hash, so one flow stays on one path.

use core::fmt;
use std::net::IpAddr;

/// Index of a next-hop entry. `u16::MAX` is reserved for "no route" inside the lookup
/// structures, so a table holds at most 65,535 entries.
pub type NextHopId = u16;

/// Entries a table can hold.
pub const MAX_NEXT_HOPS: usize = u16::MAX as usize;

/// One way out: a gateway, an egress port, or both (a connected route has no gateway).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NextHop {
    pub gateway: Option<IpAddr>,
    /// Egress port (device) name, as in `ip route ... dev NAME`.
    pub dev: Option<String>,
}

impl NextHop {
    pub fn via(gateway: IpAddr) -> Self {
        NextHop {
            gateway: Some(gateway),
            dev: None,
        }
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match (&self.gateway, &self.dev) {
            (Some(g), Some(d)) => write!(f, "via {g} dev {d}"),
            (Some(g), None) => write!(f, "via {g}"),
            (None, Some(d)) => write!(f, "dev {d}"),
            (None, None) => f.write_str("blackhole"),
        }
    }
}

/// What a [`NextHopId`] stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NextHopEntry {
    Single(NextHop),
    /// Equal-cost paths, in a canonical (sorted, deduplicated) order.
    Group(Box<[NextHop]>),
    /// A route that forwards nothing: `blackhole`, `unreachable`, `prohibit`.
    Reject(Reject),
}

/// The kernel's route types that refuse a packet (`ip route add blackhole ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    /// Dropped silently.
    Blackhole,
    /// Dropped with ICMP Host Unreachable (IPv4) / No Route (IPv6), as Linux.
    Unreachable,
    /// Dropped with ICMP Administratively Prohibited (IPv4 code 13, IPv6 code 1).
    Prohibit,
}

impl Reject {
    /// The keyword of `ip route`.
    pub fn keyword(self) -> &'static str {
        match self {
            Reject::Blackhole => "blackhole",
            Reject::Unreachable => "unreachable",
            Reject::Prohibit => "prohibit",
        }
    }

    /// The keyword's route type, if `s` is one.
    pub fn parse(s: &str) -> Option<Reject> {
        match s {
            "blackhole" => Some(Reject::Blackhole),
            "unreachable" => Some(Reject::Unreachable),
            "prohibit" => Some(Reject::Prohibit),
            _ => None,
        }
    }
}

impl NextHopEntry {
    /// The entry for a route's `via` list: a single hop, or a sorted group of several.
    /// `None` for an empty list.
    pub fn from_hops(mut hops: Vec<NextHop>) -> Option<Self> {
        hops.sort();
        hops.dedup();
        match hops.len() {
            0 => None,
            1 => hops.pop().map(NextHopEntry::Single),
            _ => Some(NextHopEntry::Group(hops.into_boxed_slice())),
        }
    }

    /// The member carrying a flow with hash `flow_hash` (None for a reject route).
    #[inline]
    pub fn select(&self, flow_hash: u32) -> Option<&NextHop> {
        match self {
            NextHopEntry::Single(h) => Some(h),
            NextHopEntry::Group(g) => {
                // Multiply-shift maps the hash onto [0, len) without a division.
                let i = (u64::from(flow_hash) * g.len() as u64) >> 32;
                g.get(i as usize)
            }
            NextHopEntry::Reject(_) => None,
        }
    }

    /// The ways out (none for a reject route).
    pub fn hops(&self) -> &[NextHop] {
        match self {
            NextHopEntry::Single(h) => core::slice::from_ref(h),
            NextHopEntry::Group(g) => g,
            NextHopEntry::Reject(_) => &[],
        }
    }

    /// The reject type, for a route that forwards nothing.
    pub fn reject(&self) -> Option<Reject> {
        match self {
            NextHopEntry::Reject(r) => Some(*r),
            _ => None,
        }
    }
}

impl fmt::Display for NextHopEntry {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if let NextHopEntry::Reject(r) = self {
            return f.write_str(r.keyword());
        }
        for (i, h) in self.hops().iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if matches!(self, NextHopEntry::Group(_)) {
                f.write_str("nexthop ")?;
            }
            write!(f, "{h}")?;
        }
        Ok(())
    }
}

/// Next-hop entries by index, with reference counts so that the writer reuses ids of entries
/// no route uses any more. Readers get an immutable copy inside each published FIB.
#[derive(Debug, Clone, Default)]
pub struct NextHopTable {
    entries: Vec<Option<NextHopEntry>>,
    refs: Vec<u32>,
    index: std::collections::HashMap<NextHopEntry, NextHopId>,
    free: Vec<NextHopId>,
}

/// The table is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHopTableFull;

impl fmt::Display for NextHopTableFull {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "next-hop table full ({MAX_NEXT_HOPS} entries)")
    }
}

impl std::error::Error for NextHopTableFull {}

impl NextHopTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry of `id`.
    #[inline]
    pub fn get(&self, id: NextHopId) -> Option<&NextHopEntry> {
        self.entries.get(usize::from(id)).and_then(Option::as_ref)
    }

    /// The hop for a flow: the entry itself, or the group member chosen by `flow_hash`.
    #[inline]
    pub fn select(&self, id: NextHopId, flow_hash: u32) -> Option<&NextHop> {
        self.get(id).and_then(|e| e.select(flow_hash))
    }

    /// Entries in use.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The id of `entry`, adding it if new; takes one reference.
    pub fn acquire(&mut self, entry: NextHopEntry) -> Result<NextHopId, NextHopTableFull> {
        if let Some(&id) = self.index.get(&entry) {
            self.refs[usize::from(id)] += 1;
            return Ok(id);
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None if self.entries.len() < MAX_NEXT_HOPS => {
                self.entries.push(None);
                self.refs.push(0);
                (self.entries.len() - 1) as NextHopId
            }
            None => return Err(NextHopTableFull),
        };
        self.entries[usize::from(id)] = Some(entry.clone());
        self.refs[usize::from(id)] = 1;
        self.index.insert(entry, id);
        Ok(id)
    }

    /// Drops one reference; the entry goes when the last one does.
    pub fn release(&mut self, id: NextHopId) {
        let i = usize::from(id);
        let Some(r) = self.refs.get_mut(i) else {
            return;
        };
        if *r == 0 {
            return;
        }
        *r -= 1;
        if *r == 0 {
            if let Some(e) = self.entries[i].take() {
                self.index.remove(&e);
            }
            self.free.push(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(s: &str) -> NextHop {
        NextHop::via(s.parse().unwrap())
    }

    #[test]
    fn interning_and_reuse() {
        let mut t = NextHopTable::new();
        let a = t.acquire(NextHopEntry::Single(hop("198.18.0.1"))).unwrap();
        let b = t.acquire(NextHopEntry::Single(hop("198.18.0.2"))).unwrap();
        assert_ne!(a, b);
        assert_eq!(
            t.acquire(NextHopEntry::Single(hop("198.18.0.1"))).unwrap(),
            a
        );
        t.release(a);
        assert!(t.get(a).is_some());
        t.release(a);
        assert!(t.get(a).is_none());
        let c = t.acquire(NextHopEntry::Single(hop("198.18.0.3"))).unwrap();
        assert_eq!(c, a, "freed id is reused");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn group_is_canonical_and_select_spreads() {
        let g1 = NextHopEntry::from_hops(vec![hop("198.18.0.2"), hop("198.18.0.1")]).unwrap();
        let g2 = NextHopEntry::from_hops(vec![hop("198.18.0.1"), hop("198.18.0.2")]).unwrap();
        assert_eq!(g1, g2);
        assert_eq!(
            g1.to_string(),
            "nexthop via 198.18.0.1 nexthop via 198.18.0.2"
        );
        let mut counts = [0u32; 2];
        let mut h = 1u32;
        for _ in 0..10_000 {
            h = h.wrapping_mul(2_654_435_761).wrapping_add(12345);
            let m = g1.select(h).unwrap();
            counts[usize::from(m == &hop("198.18.0.2"))] += 1;
            assert_eq!(g1.select(h), Some(m), "same flow, same member");
        }
        assert!(counts.iter().all(|&c| c > 4000), "{counts:?}");
        assert_eq!(g1.select(0), Some(&hop("198.18.0.1")));
        assert_eq!(g1.select(u32::MAX), Some(&hop("198.18.0.2")));
        let bh = NextHopEntry::Reject(Reject::Blackhole);
        assert_eq!(bh.select(7), None);
        assert!(bh.hops().is_empty());
        assert_eq!(bh.to_string(), "blackhole");
        assert!(NextHopEntry::from_hops(vec![]).is_none());
        let single = NextHopEntry::from_hops(vec![hop("198.18.0.9"), hop("198.18.0.9")]).unwrap();
        assert_eq!(single, NextHopEntry::Single(hop("198.18.0.9")));
    }
}
