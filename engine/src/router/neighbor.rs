// TEMPORARY compile stub, replaced by the helper's neighbor.rs at merge.
use std::net::IpAddr;
use super::Mac;
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NeighborKey { pub port: u16, pub ip: IpAddr }
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighState { Incomplete, Reachable, Stale, Failed, Permanent }
impl std::fmt::Display for NeighState { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{self:?}") } }
pub const REACHABLE_MS: u64 = 30_000;
pub const STALE_GC_MS: u64 = 120_000;
#[derive(Debug, Default)]
pub struct NeighborTable { e: std::collections::BTreeMap<NeighborKey, Mac> }
impl NeighborTable {
    pub fn new(_r: u64, _s: u64) -> Self { Self::default() }
    pub fn learn(&mut self, key: NeighborKey, mac: Mac, _now: u64, _c: bool) -> bool { self.e.insert(key, mac) != Some(mac) }
    pub fn incomplete(&mut self, _k: NeighborKey, _n: u64) {}
    pub fn failed(&mut self, _k: NeighborKey, _n: u64) {}
    pub fn tick(&mut self, _n: u64) -> Vec<NeighborKey> { vec![] }
    pub fn rows(&self) -> Vec<(NeighborKey, Option<Mac>, NeighState, u64)> { self.e.iter().map(|(k, m)| (*k, Some(*m), NeighState::Reachable, 0)).collect() }
    pub fn map(&self) -> NeighborMap { NeighborMap { e: self.e.clone() } }
}
#[derive(Debug, Default)]
pub struct NeighborMap { e: std::collections::BTreeMap<NeighborKey, Mac> }
impl NeighborMap { pub fn get(&self, port: u16, ip: IpAddr) -> Option<Mac> { self.e.get(&NeighborKey { port, ip }).copied() } }
pub enum Push<T> { Queued { send_request: bool }, QueuedDroppedOldest { dropped: T, send_request: bool }, NoSlot(T) }
pub enum Retry<T> { Resend, GiveUp(T) }
#[derive(Debug)]
pub struct PendingQueues<T: Copy> { q: Vec<(NeighborKey, T)> }
impl<T: Copy> PendingQueues<T> {
    pub fn new(_a: usize, _b: usize) -> Self { Self { q: vec![] } }
    pub fn push(&mut self, key: NeighborKey, item: T, _now: u64) -> Push<T> { let first = !self.q.iter().any(|(k, _)| *k == key); self.q.push((key, item)); Push::Queued { send_request: first } }
    pub fn take_resolved(&mut self, key: NeighborKey, out: &mut impl FnMut(T)) { let (a, b): (Vec<_>, Vec<_>) = self.q.drain(..).partition(|(k, _)| *k == key); self.q = b; for (_, t) in a { out(t) } }
    pub fn due(&mut self, _now: u64, _out: &mut impl FnMut(NeighborKey, Retry<T>)) {}
    pub fn keys(&self) -> impl Iterator<Item = NeighborKey> + '_ { self.q.iter().map(|(k, _)| *k) }
    pub fn len(&self) -> usize { self.q.len() }
}
