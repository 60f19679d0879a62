//! The control-plane RIB and the FIB it publishes to the workers.
//!
//! One writer ([`RouteTable`]) holds every route with its metric; per prefix the lowest metric
//! wins, and a route with several `via`s is an ECMP group. The winners go into binary tries and
//! from them into two copies of each Poptrie: the published one, which readers use and nobody
//! writes, and a spare that the writer patches. Publishing swaps an `Arc<Fib>` in an
//! [`ArcSwap`]: readers load it without locks and keep it for a burst, so they never wait and
//! never see half an update. The old copy becomes the spare once the last reader lets go of it;
//! the writer then patches it with the changes it missed (or copies the live one if a reader
//! holds on too long), so each update costs a patch of the touched part of the structure,
//! not a rebuild of the whole.

use core::fmt;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::lpm4::Fib4;
use super::lpm6::Fib6;
use super::nexthop::{NextHop, NextHopEntry, NextHopId, NextHopTable, NextHopTableFull, Reject};
use super::poptrie::{BinaryTrie, Key, Leaf, Poptrie, NO_ROUTE};
use super::prefix::IpPrefix;

/// A route as configured: `PREFIX via GW [dev PORT] [via GW2 ...] metric N`, or
/// `blackhole|unreachable|prohibit PREFIX metric N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: IpPrefix,
    /// One hop, or several for ECMP (none for a reject route).
    pub hops: Vec<NextHop>,
    pub metric: u32,
    /// A route that forwards nothing (then `hops` is ignored).
    pub reject: Option<Reject>,
}

impl Route {
    /// A `blackhole`, `unreachable` or `prohibit` route.
    pub fn reject(prefix: IpPrefix, kind: Reject, metric: u32) -> Route {
        Route {
            prefix,
            hops: Vec::new(),
            metric,
            reject: Some(kind),
        }
    }
}

/// Who put a route into the table. Each origin has its own routes: the kernel
/// mirror never replaces or removes a configured route, and `ctl route del`
/// never removes a mirrored one. At equal metric a static route wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// The configuration, `ctl route add`, a routes file, `--import-kernel-routes`.
    Static,
    /// The live mirror of a kernel routing table (`[routing] mirror`).
    Kernel,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Static => "static",
            Origin::Kernel => "kernel",
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if let Some(r) = self.reject {
            return write!(f, "{} {} metric {}", r.keyword(), self.prefix, self.metric);
        }
        write!(f, "{}", self.prefix)?;
        for h in &self.hops {
            write!(f, " {h}")?;
        }
        write!(f, " metric {}", self.metric)
    }
}

/// Why a route change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No `via` and no `dev`.
    NoNextHop,
    /// A gateway of the other address family than the prefix.
    FamilyMismatch,
    NextHopTableFull,
    /// Removing a route that is not there.
    NotFound,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            RouteError::NoNextHop => "route has no next hop",
            RouteError::FamilyMismatch => "gateway and prefix are of different address families",
            RouteError::NextHopTableFull => "next-hop table full",
            RouteError::NotFound => "no such route",
        })
    }
}

impl std::error::Error for RouteError {}

impl From<NextHopTableFull> for RouteError {
    fn from(_: NextHopTableFull) -> Self {
        RouteError::NextHopTableFull
    }
}

/// What the workers read: both lookup structures and the next-hop table they index, always
/// from the same moment.
#[derive(Debug)]
pub struct Fib {
    pub v4: Arc<Fib4>,
    pub v6: Arc<Fib6>,
    pub nexthops: Arc<NextHopTable>,
}

impl Fib {
    #[inline]
    pub fn lookup_v4(&self, a: Ipv4Addr) -> Option<NextHopId> {
        let v = self.v4.lookup(u32::from(a));
        (v != NO_ROUTE).then_some(v)
    }

    #[inline]
    pub fn lookup_v6(&self, a: Ipv6Addr) -> Option<NextHopId> {
        let v = self.v6.lookup(u128::from(a));
        (v != NO_ROUTE).then_some(v)
    }

    pub fn lookup(&self, a: IpAddr) -> Option<NextHopId> {
        match a {
            IpAddr::V4(a) => self.lookup_v4(a),
            IpAddr::V6(a) => self.lookup_v6(a),
        }
    }

    /// Burst lookup, addresses as big-endian integers; [`NO_ROUTE`] where nothing matches.
    #[inline]
    pub fn lookup_v4_batch(&self, addrs: &[u32], out: &mut [Leaf]) {
        self.v4.lookup_batch(addrs, out)
    }

    #[inline]
    pub fn lookup_v6_batch(&self, addrs: &[u128], out: &mut [Leaf]) {
        self.v6.lookup_batch(addrs, out)
    }

    pub fn nexthop(&self, id: NextHopId) -> Option<&NextHopEntry> {
        self.nexthops.get(id)
    }
}

/// A worker's handle on the published FIB. Cloning is cheap; take a snapshot per burst.
#[derive(Debug, Clone)]
pub struct FibReader {
    shared: Arc<ArcSwap<Fib>>,
}

impl FibReader {
    /// The current FIB; hold it for a burst, not forever (the writer reuses released copies).
    #[inline]
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Fib>> {
        self.shared.load()
    }
}

/// How long the writer waits for readers to release the spare copy before copying instead.
const SPARE_WAIT: Duration = Duration::from_millis(2);
/// Past this many pending changes a fresh build is cheaper than patching.
const PATCH_LIMIT: usize = 20_000;

/// One family's FIB state on the writer's side.
struct Family<K: Key> {
    trie: BinaryTrie<K>,
    /// What is published.
    live: Arc<Poptrie<K>>,
    /// The previous published copy, behind `live` by `lag`.
    spare: Option<Arc<Poptrie<K>>>,
    lag: Vec<(K, u32)>,
    /// Changed in `trie`, not yet in `live`.
    dirty: Vec<(K, u32)>,
    rebuild: bool,
}

impl<K: Key> Family<K> {
    fn new() -> Self {
        let trie = BinaryTrie::new();
        let live = Arc::new(Poptrie::build(&trie));
        Family {
            trie,
            live,
            spare: None,
            lag: Vec::new(),
            dirty: Vec::new(),
            rebuild: false,
        }
    }

    fn set(&mut self, key: K, len: u32, value: Option<NextHopId>) {
        let changed = match value {
            Some(v) => self.trie.insert(key, len, v) != Some(v),
            None => self.trie.remove(key, len).is_some(),
        };
        if changed && !self.rebuild {
            self.dirty.push((key, len));
            if self.dirty.len() > PATCH_LIMIT {
                self.rebuild = true;
                self.dirty.clear();
            }
        }
    }

    /// The next copy to publish, or `None` if nothing changed.
    fn next(&mut self) -> Option<Arc<Poptrie<K>>> {
        if !self.rebuild && self.dirty.is_empty() {
            return None;
        }
        let fresh = if self.rebuild || self.lag.len() + self.dirty.len() > PATCH_LIMIT {
            Arc::new(Poptrie::build(&self.trie))
        } else {
            let mut spare = self.spare.take().and_then(wait_exclusive);
            match spare.as_mut().and_then(Arc::get_mut) {
                Some(p) => {
                    for &(k, l) in self.lag.iter().chain(&self.dirty) {
                        p.update(&self.trie, k, l);
                    }
                }
                None => {
                    // A reader still holds the old copy: copy the live one instead.
                    let mut p = (*self.live).clone();
                    for &(k, l) in &self.dirty {
                        p.update(&self.trie, k, l);
                    }
                    spare = Some(Arc::new(p));
                }
            }
            spare.unwrap_or_else(|| Arc::new(Poptrie::build(&self.trie)))
        };
        let old = core::mem::replace(&mut self.live, fresh.clone());
        self.spare = Some(old);
        self.lag = core::mem::take(&mut self.dirty);
        if self.rebuild {
            // The spare missed everything: rebuild it too next time.
            self.spare = None;
            self.rebuild = false;
        }
        Some(fresh)
    }
}

/// Waits briefly for the readers of an unpublished copy to go.
fn wait_exclusive<T>(mut a: Arc<T>) -> Option<Arc<T>> {
    let start = Instant::now();
    loop {
        if Arc::get_mut(&mut a).is_some() {
            return Some(a);
        }
        if start.elapsed() > SPARE_WAIT {
            return None;
        }
        std::thread::yield_now();
    }
}

/// Per prefix: the routes to it, each with its metric, origin and next-hop entry.
type Candidates = Vec<(u32, Origin, NextHopId)>;

/// Counters of the writer, for reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpdateStats {
    pub publishes: u64,
    pub last_publish: Duration,
}

/// The RIB with its FIB publisher. Single writer; readers use [`FibReader`]s.
pub struct RouteTable {
    rib: HashMap<IpPrefix, Candidates>,
    v4: Family<u32>,
    v6: Family<u128>,
    nexthops: NextHopTable,
    nexthops_changed: bool,
    shared: Arc<ArcSwap<Fib>>,
    stats: UpdateStats,
}

impl fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "RouteTable {{ prefixes: {}, v4: {:?}, v6: {:?}, nexthops: {} }}",
            self.rib.len(),
            self.v4.live,
            self.v6.live,
            self.nexthops.len()
        )
    }
}

impl Default for RouteTable {
    fn default() -> Self {
        Self::new()
    }
}

impl RouteTable {
    pub fn new() -> Self {
        let v4 = Family::new();
        let v6 = Family::new();
        let fib = Fib {
            v4: v4.live.clone(),
            v6: v6.live.clone(),
            nexthops: Arc::new(NextHopTable::new()),
        };
        RouteTable {
            rib: HashMap::new(),
            v4,
            v6,
            nexthops: NextHopTable::new(),
            nexthops_changed: false,
            shared: Arc::new(ArcSwap::from_pointee(fib)),
            stats: UpdateStats::default(),
        }
    }

    /// A handle for a worker.
    pub fn reader(&self) -> FibReader {
        FibReader {
            shared: self.shared.clone(),
        }
    }

    /// Adds a route and publishes. A route to the same prefix with the same metric is replaced.
    pub fn add(&mut self, route: Route) -> Result<(), RouteError> {
        self.stage_add(route)?;
        self.publish();
        Ok(())
    }

    /// Adds a route of `origin` and publishes.
    pub fn add_from(&mut self, route: Route, origin: Origin) -> Result<(), RouteError> {
        self.stage_add_from(route, origin)?;
        self.publish();
        Ok(())
    }

    /// Removes the route to `prefix` with `metric` (any metric: the best one) and publishes.
    pub fn remove(&mut self, prefix: IpPrefix, metric: Option<u32>) -> Result<(), RouteError> {
        self.stage_remove(prefix, metric)?;
        self.publish();
        Ok(())
    }

    /// Adds a static route without publishing; [`RouteTable::publish`] makes staged changes
    /// visible all at once.
    pub fn stage_add(&mut self, route: Route) -> Result<(), RouteError> {
        self.stage_add_from(route, Origin::Static)
    }

    /// Adds (or replaces: same prefix, metric and origin) a route of `origin` without publishing.
    pub fn stage_add_from(&mut self, route: Route, origin: Origin) -> Result<(), RouteError> {
        let v4 = matches!(route.prefix, IpPrefix::V4(_));
        let entry = match route.reject {
            Some(r) => NextHopEntry::Reject(r),
            None => {
                if route
                    .hops
                    .iter()
                    .any(|h| h.gateway.is_some_and(|g| g.is_ipv4() != v4))
                {
                    return Err(RouteError::FamilyMismatch);
                }
                NextHopEntry::from_hops(route.hops).ok_or(RouteError::NoNextHop)?
            }
        };
        let before = self.nexthops.len();
        let id = self.nexthops.acquire(entry)?;
        self.nexthops_changed |= self.nexthops.len() != before;
        let c = self.rib.entry(route.prefix).or_default();
        match c
            .iter_mut()
            .find(|(m, o, _)| *m == route.metric && *o == origin)
        {
            Some(slot) => {
                let old = core::mem::replace(&mut slot.2, id);
                self.nexthops.release(old);
            }
            None => c.push((route.metric, origin, id)),
        }
        self.sync(route.prefix);
        Ok(())
    }

    /// Removes a static route without publishing: the one with `metric`, or
    /// the best static one.
    pub fn stage_remove(
        &mut self,
        prefix: IpPrefix,
        metric: Option<u32>,
    ) -> Result<(), RouteError> {
        let c = self.rib.get(&prefix).ok_or(RouteError::NotFound)?;
        let m = match metric {
            Some(m) => m,
            None => c
                .iter()
                .filter(|(_, o, _)| *o == Origin::Static)
                .map(|(m, _, _)| *m)
                .min()
                .ok_or(RouteError::NotFound)?,
        };
        self.stage_remove_from(prefix, m, Origin::Static)
    }

    /// Removes the route of `origin` to `prefix` with `metric`, without publishing.
    pub fn stage_remove_from(
        &mut self,
        prefix: IpPrefix,
        metric: u32,
        origin: Origin,
    ) -> Result<(), RouteError> {
        let c = self.rib.get_mut(&prefix).ok_or(RouteError::NotFound)?;
        let i = c
            .iter()
            .position(|(m, o, _)| *m == metric && *o == origin)
            .ok_or(RouteError::NotFound)?;
        let (_, _, id) = c.swap_remove(i);
        if c.is_empty() {
            self.rib.remove(&prefix);
        }
        self.nexthops.release(id);
        self.sync(prefix);
        Ok(())
    }

    /// The next hops of the route of `origin` to `prefix` with `metric`.
    pub fn route_of(&self, prefix: IpPrefix, metric: u32, origin: Origin) -> Option<&NextHopEntry> {
        let c = self.rib.get(&prefix)?;
        let &(_, _, id) = c.iter().find(|(m, o, _)| *m == metric && *o == origin)?;
        self.nexthops.get(id)
    }

    /// Every (prefix, metric) that has a route of `origin` (control path: allocates).
    pub fn keys_of(&self, origin: Origin) -> Vec<(IpPrefix, u32)> {
        self.rib
            .iter()
            .flat_map(|(p, c)| {
                c.iter()
                    .filter(move |(_, o, _)| *o == origin)
                    .map(move |(m, _, _)| (*p, *m))
            })
            .collect()
    }

    /// Routes of `origin` (O(routes)).
    pub fn count_of(&self, origin: Origin) -> usize {
        self.rib
            .values()
            .map(|c| c.iter().filter(|(_, o, _)| *o == origin).count())
            .sum()
    }

    /// Puts the winner for `prefix` into the trie of its family.
    fn sync(&mut self, prefix: IpPrefix) {
        let best = self
            .rib
            .get(&prefix)
            .and_then(|c| c.iter().min_by_key(|(m, o, _)| (*m, *o)))
            .map(|&(_, _, id)| id);
        match prefix {
            IpPrefix::V4(p) => self.v4.set(p.bits(), u32::from(p.len()), best),
            IpPrefix::V6(p) => self.v6.set(p.bits(), u32::from(p.len()), best),
        }
    }

    /// Makes every staged change visible to readers at once.
    pub fn publish(&mut self) {
        let start = Instant::now();
        let v4 = self.v4.next();
        let v6 = self.v6.next();
        if v4.is_none() && v6.is_none() && !self.nexthops_changed {
            return;
        }
        let cur = self.shared.load_full();
        let nexthops = if self.nexthops_changed {
            self.nexthops_changed = false;
            Arc::new(self.nexthops.clone())
        } else {
            cur.nexthops.clone()
        };
        let fib = Fib {
            v4: v4.unwrap_or_else(|| cur.v4.clone()),
            v6: v6.unwrap_or_else(|| cur.v6.clone()),
            nexthops,
        };
        drop(cur);
        // Dropping the old Fib here leaves the spares referenced only by lingering readers.
        drop(self.shared.swap(Arc::new(fib)));
        self.stats.publishes += 1;
        self.stats.last_publish = start.elapsed();
    }

    /// The routes to `prefix`: `(metric, next hops)`.
    pub fn routes(&self, prefix: IpPrefix) -> Vec<(u32, &NextHopEntry)> {
        self.rib
            .get(&prefix)
            .map(|c| {
                c.iter()
                    .filter_map(|&(m, _, id)| Some((m, self.nexthops.get(id)?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every route, sorted by prefix, metric then origin: `(prefix, metric, next hops)`.
    /// For `ctl route show`; allocates, control path only.
    pub fn all(&self) -> Vec<(IpPrefix, u32, &NextHopEntry)> {
        self.all_with_origin()
            .into_iter()
            .map(|(p, m, _, e)| (p, m, e))
            .collect()
    }

    /// As [`RouteTable::all`], with each route's origin.
    pub fn all_with_origin(&self) -> Vec<(IpPrefix, u32, Origin, &NextHopEntry)> {
        let mut v: Vec<(IpPrefix, u32, Origin, &NextHopEntry)> = self
            .rib
            .iter()
            .flat_map(|(p, c)| {
                c.iter()
                    .filter_map(|&(m, o, id)| Some((*p, m, o, self.nexthops.get(id)?)))
            })
            .collect();
        v.sort_by_key(|x| (x.0, x.1, x.2));
        v
    }

    /// The longest matching prefix of `a` with its winning next-hop id, from the RIB's trie.
    pub fn longest_match(&self, a: IpAddr) -> Option<(IpPrefix, NextHopId)> {
        match a {
            IpAddr::V4(a) => {
                let (len, id) = self.v4.trie.longest_match(u32::from(a))?;
                let p = super::prefix::Ipv4Prefix::new(a, len as u8)?;
                Some((p.into(), id))
            }
            IpAddr::V6(a) => {
                let (len, id) = self.v6.trie.longest_match(u128::from(a))?;
                let p = super::prefix::Ipv6Prefix::new(a, len as u8)?;
                Some((p.into(), id))
            }
        }
    }

    /// Number of prefixes with at least one route.
    pub fn len(&self) -> usize {
        self.rib.len()
    }

    /// Prefixes in the forwarding tries (the winners), (IPv4, IPv6); O(1).
    pub fn prefixes(&self) -> (usize, usize) {
        (self.v4.trie.len(), self.v6.trie.len())
    }

    pub fn is_empty(&self) -> bool {
        self.rib.is_empty()
    }

    pub fn stats(&self) -> UpdateStats {
        self.stats
    }

    /// Bytes of the published lookup structures (v4, v6).
    pub fn fib_bytes(&self) -> (usize, usize) {
        (self.v4.live.memory_bytes(), self.v6.live.memory_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn route(p: &str, gws: &[&str], metric: u32) -> Route {
        Route {
            reject: None,
            prefix: p.parse().unwrap(),
            hops: gws
                .iter()
                .map(|g| NextHop::via(g.parse().unwrap()))
                .collect(),
            metric,
        }
    }

    fn gw_of(t: &RouteTable, a: &str) -> Option<String> {
        let fib = t.reader().snapshot();
        let id = fib.lookup(a.parse().unwrap())?;
        Some(fib.nexthop(id).unwrap().to_string())
    }

    #[test]
    fn origins_keep_their_own_routes() {
        let p: IpPrefix = "198.18.0.0/16".parse().unwrap();
        let mut t = RouteTable::new();
        t.add(route("198.18.0.0/16", &["198.18.255.1"], 10))
            .unwrap();
        // The same prefix and metric from the kernel does not replace the static route...
        t.stage_add_from(
            route("198.18.0.0/16", &["198.18.255.2"], 10),
            Origin::Kernel,
        )
        .unwrap();
        t.publish();
        assert_eq!(t.routes(p).len(), 2);
        let fib = t.reader().snapshot().clone();
        let id = fib.lookup_v4("198.18.1.1".parse().unwrap()).unwrap();
        // ...and at equal metric the static one wins.
        assert_eq!(
            fib.nexthops.get(id).unwrap().to_string(),
            "via 198.18.255.1"
        );
        // A kernel route with a lower metric wins over the static one.
        t.add_from(route("198.18.0.0/16", &["198.18.255.3"], 5), Origin::Kernel)
            .unwrap();
        let fib = t.reader().snapshot().clone();
        let id = fib.lookup_v4("198.18.1.1".parse().unwrap()).unwrap();
        assert_eq!(
            fib.nexthops.get(id).unwrap().to_string(),
            "via 198.18.255.3"
        );
        // `ctl route del` (static) never removes a kernel route; the mirror never a static one.
        t.remove(p, None).unwrap();
        assert_eq!(t.remove(p, Some(5)), Err(RouteError::NotFound));
        assert_eq!(
            t.stage_remove_from(p, 10, Origin::Static),
            Err(RouteError::NotFound)
        );
        let mut keys = t.keys_of(Origin::Kernel);
        keys.sort();
        assert_eq!(keys, vec![(p, 5), (p, 10)]);
        assert_eq!(t.count_of(Origin::Kernel), 2);
        assert_eq!(t.count_of(Origin::Static), 0);
        assert_eq!(
            t.route_of(p, 10, Origin::Kernel).unwrap().to_string(),
            "via 198.18.255.2"
        );
        t.stage_remove_from(p, 5, Origin::Kernel).unwrap();
        t.stage_remove_from(p, 10, Origin::Kernel).unwrap();
        t.publish();
        assert!(t.is_empty());
        assert!(t
            .reader()
            .snapshot()
            .lookup_v4("198.18.1.1".parse().unwrap())
            .is_none());
    }

    #[test]
    fn reject_routes_are_entries_of_their_own() {
        let mut t = RouteTable::new();
        let p: IpPrefix = "198.18.0.0/16".parse().unwrap();
        t.add(Route::reject(p, Reject::Unreachable, 0)).unwrap();
        let fib = t.reader().snapshot().clone();
        let id = fib.lookup_v4("198.18.1.1".parse().unwrap()).unwrap();
        assert_eq!(
            fib.nexthops.get(id).unwrap().reject(),
            Some(Reject::Unreachable)
        );
        assert_eq!(fib.nexthops.select(id, 0), None);
        assert_eq!(
            Route::reject(p, Reject::Blackhole, 7).to_string(),
            "blackhole 198.18.0.0/16 metric 7"
        );
    }

    #[test]
    fn lowest_metric_wins_and_falls_back() {
        let mut t = RouteTable::new();
        t.add(route("198.18.0.0/16", &["198.18.255.1"], 100))
            .unwrap();
        t.add(route("198.18.0.0/16", &["198.18.255.2"], 10))
            .unwrap();
        assert_eq!(gw_of(&t, "198.18.1.1").as_deref(), Some("via 198.18.255.2"));
        t.remove("198.18.0.0/16".parse().unwrap(), Some(10))
            .unwrap();
        assert_eq!(gw_of(&t, "198.18.1.1").as_deref(), Some("via 198.18.255.1"));
        assert_eq!(
            t.remove("198.18.0.0/16".parse().unwrap(), Some(10)),
            Err(RouteError::NotFound)
        );
        t.remove("198.18.0.0/16".parse().unwrap(), None).unwrap();
        assert_eq!(gw_of(&t, "198.18.1.1"), None);
        assert!(t.is_empty());
        assert_eq!(t.nexthops.len(), 0, "next hops released");
    }

    #[test]
    fn ecmp_and_v6_and_errors() {
        let mut t = RouteTable::new();
        t.add(route("0.0.0.0/0", &["198.18.0.1", "198.18.0.2"], 0))
            .unwrap();
        t.add(route("2001:2::/48", &["2001:2::1"], 0)).unwrap();
        let fib = t.reader().snapshot();
        let id = fib.lookup_v4("203.0.113.9".parse().unwrap()).unwrap();
        let e = fib.nexthop(id).unwrap();
        assert_eq!(e.hops().len(), 2);
        assert_eq!(
            t.nexthops.select(id, 0).unwrap().to_string(),
            "via 198.18.0.1"
        );
        assert_eq!(gw_of(&t, "2001:2:0:1::5").as_deref(), Some("via 2001:2::1"));
        assert_eq!(gw_of(&t, "2001:3::5"), None);
        assert_eq!(
            t.add(route("198.18.0.0/15", &["2001:2::1"], 0)),
            Err(RouteError::FamilyMismatch)
        );
        assert_eq!(
            t.add(route("198.18.0.0/15", &[], 0)),
            Err(RouteError::NoNextHop)
        );
    }

    #[test]
    fn staged_changes_are_invisible_until_published() {
        let mut t = RouteTable::new();
        let r = t.reader();
        t.stage_add(route("198.18.0.0/24", &["198.18.1.1"], 0))
            .unwrap();
        assert_eq!(r.snapshot().lookup("198.18.0.1".parse().unwrap()), None);
        t.publish();
        assert!(r.snapshot().lookup("198.18.0.1".parse().unwrap()).is_some());
    }

    /// A held snapshot does not change, and the writer does not wait for it forever.
    #[test]
    fn held_snapshot_is_stable() {
        let mut t = RouteTable::new();
        t.add(route("198.18.0.0/24", &["198.18.1.1"], 0)).unwrap();
        let r = t.reader();
        let old = r.snapshot();
        for i in 0..50u32 {
            t.add(route(&format!("198.18.{}.0/24", i + 1), &["198.18.1.2"], 0))
                .unwrap();
            t.remove("198.18.0.0/24".parse().unwrap(), None).ok();
        }
        assert!(old.lookup("198.18.0.1".parse().unwrap()).is_some());
        assert!(old.lookup("198.18.5.1".parse().unwrap()).is_none());
        assert!(r.snapshot().lookup("198.18.5.1".parse().unwrap()).is_some());
        assert!(r.snapshot().lookup("198.18.0.1".parse().unwrap()).is_none());
    }

    /// Readers look up while the writer flips routes. Each published batch changes a covering
    /// route and a more-specific one together; every snapshot must show both before or both
    /// after, and every answer must be one that was valid at some point.
    #[test]
    fn concurrent_updates_are_atomic_for_readers() {
        let mut t = RouteTable::new();
        t.add(route("198.18.0.0/15", &["198.18.0.1"], 0)).unwrap();
        t.add(route("2001:2::/48", &["2001:2::1"], 0)).unwrap();
        let reader = t.reader();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let probe4: Vec<u32> = (0..64u32).map(|i| 0xc612_0000 | i << 8 | 7).collect();
        let handle = std::thread::spawn(move || {
            let mut seen = 0u64;
            let mut out = vec![0u16; probe4.len()];
            while !stop2.load(Ordering::Relaxed) {
                let fib = reader.snapshot();
                fib.lookup_v4_batch(&probe4, &mut out);
                let v6 = fib.lookup_v6("2001:2:0:5::1".parse().unwrap());
                let names: Vec<String> = out
                    .iter()
                    .map(|&id| fib.nexthop(id).map(|e| e.to_string()).unwrap_or_default())
                    .collect();
                let v6n = v6.and_then(|id| fib.nexthop(id)).map(|e| e.to_string());
                // Version A: everything via .1; version B: /24s via .2 and the v6 /64 via ::2.
                let a = names.iter().all(|n| n == "via 198.18.0.1")
                    && v6n.as_deref() == Some("via 2001:2::1");
                let b = names.iter().all(|n| n == "via 198.18.0.2")
                    && v6n.as_deref() == Some("via 2001:2::2");
                assert!(a || b, "mixed snapshot: {names:?} {v6n:?}");
                seen += 1;
            }
            seen
        });
        for round in 0..300 {
            for i in 0..64u32 {
                let p = format!("198.18.{i}.0/24");
                if round % 2 == 0 {
                    t.stage_add(route(&p, &["198.18.0.2"], 0)).unwrap();
                } else {
                    t.stage_remove(p.parse().unwrap(), None).unwrap();
                }
            }
            if round % 2 == 0 {
                t.stage_add(route("2001:2:0:5::/64", &["2001:2::2"], 0))
                    .unwrap();
            } else {
                t.stage_remove("2001:2:0:5::/64".parse().unwrap(), None)
                    .unwrap();
            }
            t.publish();
        }
        stop.store(true, Ordering::Relaxed);
        let seen = handle.join().unwrap();
        assert!(seen > 0);
    }
}
