//! The stateful filter: connection tracking for rules that match `ct state`.
//!
//! When a rule matches `ct state`, every packet the router forwards is
//! tracked before the rules are consulted (nftables' conntrack runs before
//! its forward chain): its entry in the worker's connection table is found
//! (one hash probe) or prepared, the tracker (`conntrack::track`) decides
//! its state (new, established, related, invalid) and moves the entry on,
//! and the classifier sees that state as one more field.
//!
//! The table is the NAT's (`conntrack::table`): a NATed flow's entry is its
//! NAT session (the NAT's prerouting lookup of an inbound packet is handed
//! over in [`Place::Known`]; an outbound packet's probe is handed to the
//! NAT's postrouting, which then does not probe again). A flow the NAT does
//! not translate is a plain entry of the same table. Without a NAT the
//! filter holds a table of its own ([`CtWorker`]).
//!
//! Ownership: an entry lives on one worker. A translated flow belongs to
//! the NAT's owner (by port); a plain flow to the worker chosen by a
//! symmetric hash of its tuple ([`owner`]), so both directions find the
//! same worker. A packet that arrives elsewhere is handed over
//! (`Ctx::hand_to`) and runs the pipeline again on its owner.
//!
//! A new entry is made only for a packet the rules accept (nftables
//! confirms a conntrack entry when the packet leaves); a session the NAT
//! made for a packet the rules then drop is removed. Fragments other than
//! the first have no ports: they take the state of their first fragment
//! (remembered per worker for 30 s), or are invalid.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use super::config::ConntrackConfig;
use super::rule::Action;
use super::Filter;
use crate::conntrack::packet::{CtPacket, Tuple, L4};
use crate::conntrack::table::{ConnInfo, CtTableConfig, TableConfig};
use crate::conntrack::track::{
    class, ct_state, Track, TrackConfig, Verdict, FLIP, SEEN_REPLY, TRACKED,
};
use crate::conntrack::NatTable;
use crate::context::counters::Drop;
use crate::context::dump::{Cursor, Mode};
use crate::context::icmp_error::{Icmp4Error, Icmp6Error};
use crate::context::Ctx;
use crate::xsk::Desc;

/// `ctl conn show`: one slot per worker (`context::dump`).
pub type Dumps = crate::context::dump::Dumps<ConnInfo>;

/// Per-state packet counters' order.
pub const STATES: [&str; 4] = ["new", "established", "related", "invalid"];

/// What a worker publishes (relaxed stores, read by `ctl stats` and the metrics).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct CtGauges {
    pub entries: AtomicU32,
    /// Packets by state, in [`STATES`] order.
    pub packets: [AtomicU64; 4],
    pub created: AtomicU64,
    pub expired: AtomicU64,
    pub evicted: AtomicU64,
    pub full: AtomicU64,
}

/// The stateful filter's shared part: configuration, per-worker gauges, dumps.
#[derive(Debug)]
pub struct CtShared {
    pub cfg: ConntrackConfig,
    workers: u16,
    pub gauges: Vec<CtGauges>,
    pub dumps: Arc<Dumps>,
}

impl CtShared {
    pub fn new(cfg: ConntrackConfig, workers: u16) -> CtShared {
        let workers = workers.max(1);
        CtShared {
            cfg,
            workers,
            gauges: (0..workers).map(|_| CtGauges::default()).collect(),
            dumps: Arc::new(Dumps::new(workers)),
        }
    }

    pub fn workers(&self) -> u16 {
        self.workers
    }

    /// What a connection table needs to track for the filter.
    pub fn table_part(&self) -> CtTableConfig {
        CtTableConfig {
            max_entries: self.cfg.max_entries,
            track: self.cfg.track,
        }
    }

    /// Packets by state over all workers, in [`STATES`] order.
    pub fn packet_totals(&self) -> [u64; 4] {
        let mut t = [0; 4];
        for g in &self.gauges {
            for (a, v) in t.iter_mut().zip(&g.packets) {
                *a += v.load(Ordering::Relaxed);
            }
        }
        t
    }

    /// Entries over all workers, as last published.
    pub fn entries(&self) -> u64 {
        self.gauges
            .iter()
            .map(|g| u64::from(g.entries.load(Ordering::Relaxed)))
            .sum()
    }
}

/// Where a first fragment's later fragments go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Follow {
    /// Handed to this worker.
    Owner(u16),
    /// Tracked here with this state.
    State(u8),
}

#[derive(Debug, Clone, Copy)]
struct FragSlot {
    key: (u128, u128, u32, u8),
    follow: Follow,
    at_ms: u64,
}

/// Later fragments follow their first (a small direct-mapped memory: a
/// collision forgets the older datagram, whose later fragments are then invalid).
#[derive(Debug)]
struct Frags {
    slots: Vec<Option<FragSlot>>,
    hash: crate::hashing::Seeded,
}

const FRAG_SLOTS: usize = 1024;
const FRAG_MS: u64 = 30_000;

impl Frags {
    fn new() -> Frags {
        Frags {
            slots: vec![None; FRAG_SLOTS],
            hash: crate::hashing::seeded(),
        }
    }

    fn key(t: &Tuple, id: u32) -> (u128, u128, u32, u8) {
        (t.src, t.dst, id, t.proto)
    }

    fn index(&self, k: &(u128, u128, u32, u8)) -> usize {
        use std::hash::BuildHasher;
        (self.hash.hash_one(k) as usize) % FRAG_SLOTS
    }

    fn remember(&mut self, t: &Tuple, id: u32, follow: Follow, now_ms: u64) {
        let key = Self::key(t, id);
        let i = self.index(&key);
        self.slots[i] = Some(FragSlot {
            key,
            follow,
            at_ms: now_ms,
        });
    }

    fn follow(&self, t: &Tuple, id: u32, now_ms: u64) -> Option<Follow> {
        let key = Self::key(t, id);
        let s = self.slots[self.index(&key)]?;
        (s.key == key && now_ms.saturating_sub(s.at_ms) < FRAG_MS).then_some(s.follow)
    }
}

/// One worker's stateful-filter state: its own connection table when there
/// is no NAT (the NAT's otherwise), and the rest ([`CtLocal`]) apart, so
/// that the hook can borrow both.
#[derive(Debug)]
pub struct CtWorker {
    pub own: Option<NatTable>,
    pub local: CtLocal,
}

/// A worker's tracker counters, fragment memory and dump cursor.
#[derive(Debug)]
pub struct CtLocal {
    /// Packets by state (published every 10 ms).
    packets: [u64; 4],
    frags: Frags,
    dump: Cursor,
    last_sweep_ms: u64,
}

/// How often a worker looks for expired entries of its own table, and how many slots per look.
const SWEEP_EVERY_MS: u64 = 10;
const SWEEP_BUDGET: usize = 2048;

impl CtWorker {
    /// Worker `w`'s state; `own_table`: the worker has no NAT table to share.
    pub fn new(shared: &CtShared, w: u16, own_table: bool) -> CtWorker {
        let own = own_table.then(|| {
            let mut c = TableConfig::simple(Vec::new(), shared.cfg.max_entries);
            c.worker = w;
            c.workers = shared.workers;
            c.ct = Some(shared.table_part());
            NatTable::new(c)
        });
        CtWorker {
            own,
            local: CtLocal {
                packets: [0; 4],
                frags: Frags::new(),
                dump: Cursor::default(),
                last_sweep_ms: 0,
            },
        }
    }

    /// A `ctl conn show` is under way.
    pub fn dumping(&self) -> bool {
        self.local.dump.busy()
    }

    /// Housekeeping once per loop iteration: expiry of its own table (the
    /// NAT expires its own), gauges, one slice of a `ctl conn show`.
    /// `table`: the table in use (the NAT's or its own).
    pub fn service(
        &mut self,
        shared: &CtShared,
        table: Option<&mut NatTable>,
        w: u16,
        now_ms: u64,
        behind: bool,
    ) {
        let own = self.own.is_some();
        let Some(table) = table.or(self.own.as_mut()) else {
            return;
        };
        let me = &mut self.local;
        let gauges = shared.gauges.get(usize::from(w));
        if now_ms.saturating_sub(me.last_sweep_ms) >= SWEEP_EVERY_MS {
            me.last_sweep_ms = now_ms;
            if own {
                table.expire(now_ms, SWEEP_BUDGET);
            }
            if let Some(g) = gauges {
                publish(g, table, &me.packets);
            }
        }
        let Some(slot) = shared.dumps.slot(w) else {
            return;
        };
        let packets = me.packets;
        me.dump
            .step(slot, table.session_slots(), behind, now_ms, |s, rows| {
                if s.mode == Mode::Show {
                    table.conn_dump_slice(s.range.clone(), now_ms, rows);
                }
                if let (true, Some(g)) = (s.last, gauges) {
                    publish(g, table, &packets);
                }
            });
    }
}

fn publish(g: &CtGauges, t: &NatTable, packets: &[u64; 4]) {
    let st = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
    g.entries.store(t.entries(), Ordering::Relaxed);
    for (a, &v) in g.packets.iter().zip(packets) {
        st(a, v);
    }
    let c = t.ct_counts;
    st(&g.created, c.created);
    st(&g.expired, c.expired);
    st(&g.evicted, c.evicted);
    st(&g.full, c.full);
}

/// The worker that owns a plain flow: a hash of its tuple that both
/// directions give (the ports' sum and the addresses' XOR), through the
/// NAT's port hash.
#[inline]
pub fn owner(t: &Tuple, workers: u16) -> u16 {
    let x = t.src ^ t.dst;
    let mut f = 0u16;
    for i in 0..8 {
        f ^= (x >> (16 * i)) as u16;
    }
    crate::conntrack::port_owner(t.sport.wrapping_add(t.dport) ^ f, workers)
}

/// A packet's entry as the NAT found it before routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    /// The frame the hint is about (its UMEM address).
    pub addr: u64,
    pub slot: u32,
    /// The NAT made the session for this packet (a static forward, endpoint-independent filtering).
    pub created: bool,
    /// An ICMP error about the session's flow.
    pub related: bool,
}

/// Where a forwarded packet's entry is.
pub enum Place<'a> {
    /// A flow the NAT does not translate: a plain entry.
    Plain,
    /// IPv4 from a NAT inside port to an outside port: the NAT session of
    /// (source, destination), owned by the worker `owner` names.
    NatOut(&'a dyn Fn(&CtPacket) -> Option<u16>),
    /// The NAT translated the packet already and found its session.
    Known(Hint),
}

impl std::fmt::Debug for Place<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Plain => f.write_str("Plain"),
            Place::NatOut(_) => f.write_str("NatOut"),
            Place::Known(h) => write!(f, "Known({h:?})"),
        }
    }
}

/// What the pipeline does after the filter let a packet through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    Nothing,
    /// An outbound packet that opens a NAT session: the NAT's postrouting
    /// makes it (or finds it at `slot`), then its tracker is this.
    NatNew(Track),
    /// An outbound NATed packet of the session at `slot`.
    NatAt(u32),
}

/// What happened to the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Dropped, rejected or handed to its owner: the caller stops.
    Consumed,
    Pass(After),
}

/// What the tracker made of the packet, before the rules.
enum Entry {
    /// No entry: invalid, or a state that needs none (related, a fragment).
    None,
    /// An existing entry (a NAT session: `nat`); `close`: remove it after
    /// the packet (a RST with no reply).
    Existing {
        slot: u32,
        dir: usize,
        nat: bool,
        close: bool,
    },
    /// A NAT session made for this packet (removed if the rules drop it).
    Created { slot: u32 },
    /// A plain entry to make if the rules accept.
    NewPlain(Track),
    /// A NAT session the NAT's postrouting will make.
    NewNat(Track),
}

/// The tracker of a packet that opens an entry, or None (invalid).
fn open(pk: &CtPacket, cfg: &TrackConfig) -> Option<Track> {
    match pk.l4 {
        L4::Tcp(seg) => {
            let mut t = Track::tcp_new(&seg, cfg)?;
            match t.tcp_packet(0, &seg, cfg) {
                Verdict::Accept { .. } | Verdict::Ignore => Some(t),
                _ => None,
            }
        }
        L4::Udp => {
            let mut t = Track::other_new(class::UDP);
            t.other_packet(class::UDP, 0);
            Some(t)
        }
        L4::Query { request: true } => Some(Track::other_new(class::ICMP)),
        L4::Other => Some(Track::other_new(class::GENERIC)),
        _ => None,
    }
}

fn proto_class(l4: &L4) -> u8 {
    match l4 {
        L4::Udp => class::UDP,
        L4::Query { .. } => class::ICMP,
        _ => class::GENERIC,
    }
}

/// A connection the tracker has not seen yet (a NAT session made before
/// the filter became stateful): picked up as established, checked liberally.
fn pick_up(t: &mut Track, proto: u8, both_ways: bool) {
    if t.status & TRACKED != 0 {
        return;
    }
    let flip = t.status & FLIP;
    *t = Track::other_new(class::GENERIC);
    t.status |= flip;
    if both_ways {
        t.status |= SEEN_REPLY;
    }
    if proto == crate::conntrack::packet::PROTO_TCP {
        *t = Track::picked_up(t.status);
    }
}

/// Tracks a packet of an existing entry in direction `table_dir` (the
/// table's; the tracker's is that XOR the entry's FLIP): its state bits and
/// the entry; true when a SYN reopens the connection. The packet is
/// counted and the entry refreshed here, before the rules, as nf_conntrack
/// does.
#[inline]
fn existing(
    table: &mut NatTable,
    slot: u32,
    table_dir: usize,
    pk: &CtPacket,
    now_ms: u64,
) -> (u8, Entry, bool) {
    let Some(mut e) = table.entry_ct(slot) else {
        return (ct_state::INVALID, Entry::None, false);
    };
    let nat = e.is_nat();
    let age = e.age_ms(now_ms);
    let cfg = e.cfg;
    let t = e.track();
    let dir = table_dir ^ usize::from(t.status & FLIP != 0);
    let bits = t.packet_state(dir);
    let (refresh, close) = match pk.l4 {
        L4::Tcp(seg) => match t.tcp_packet(dir, &seg, cfg) {
            Verdict::Accept { refresh } => {
                t.seen(dir);
                (refresh, false)
            }
            Verdict::Close => {
                t.seen(dir);
                (true, true)
            }
            Verdict::Ignore => {
                return (
                    bits,
                    Entry::Existing {
                        slot,
                        dir: table_dir,
                        nat,
                        close: false,
                    },
                    false,
                )
            }
            Verdict::Invalid => return (ct_state::INVALID, Entry::None, false),
            Verdict::Reopen => return (0, Entry::None, true),
        },
        L4::Udp | L4::Query { .. } | L4::Other => {
            t.other_packet(proto_class(&pk.l4), age);
            t.seen(dir);
            (true, false)
        }
        _ => return (ct_state::INVALID, Entry::None, false),
    };
    e.touch(table_dir, now_ms, refresh);
    (
        bits,
        Entry::Existing {
            slot,
            dir: table_dir,
            nat,
            close,
        },
        false,
    )
}

/// The forward hook of a stateful filter: tracks the packet, classifies it
/// with its state, and acts. `table` is the worker's connection table.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    ctx: &mut Ctx,
    filter: &Filter,
    shared: &CtShared,
    w: &mut CtLocal,
    table: &mut NatTable,
    place: Place<'_>,
    in_port: u16,
    out_port: u16,
    d: Desc,
) -> Outcome {
    let now = ctx.now_ms();
    let pk = CtPacket::parse(ctx.ip_of(&d));
    // The common case first: a packet of a plain flow's entry, on its owner.
    if let (Place::Plain, L4::Tcp(_) | L4::Udp | L4::Query { .. } | L4::Other) = (&place, &pk.l4) {
        let here = shared.workers <= 1 || owner(&pk.tuple, shared.workers) == ctx.st.worker;
        if let (true, Some(f)) = (here, table.ct_find(&pk.tuple)) {
            let (bits, entry, reopen) = existing(table, f.slot, f.dir, &pk, now);
            if !reopen {
                return decide(
                    ctx, filter, w, table, &pk, entry, bits, in_port, out_port, d, now,
                );
            }
            return forward_slow(
                ctx,
                filter,
                shared,
                w,
                table,
                place,
                in_port,
                out_port,
                d,
                pk,
                Some(f.slot),
            );
        }
    }
    forward_slow(
        ctx, filter, shared, w, table, place, in_port, out_port, d, pk, None,
    )
}

/// Everything but an existing plain entry on its owner: handoff, new
/// entries, NAT sessions, ICMP errors, fragments; `reopen`: a plain entry a
/// SYN reopens (removed here).
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn forward_slow(
    ctx: &mut Ctx,
    filter: &Filter,
    shared: &CtShared,
    w: &mut CtLocal,
    table: &mut NatTable,
    place: Place<'_>,
    in_port: u16,
    out_port: u16,
    d: Desc,
    pk: CtPacket,
    reopen: Option<u32>,
) -> Outcome {
    let now = ctx.now_ms();
    if let Some(slot) = reopen {
        table.remove_slot(slot);
    }
    // Copied where a new entry is opened; an existing one borrows it with its entry.
    let cfg = |table: &NatTable| *table.track_config();
    // The flow this packet's entry is about: an ICMP error's quoted one.
    let flow = match pk.l4 {
        L4::Error { inner } => inner,
        _ => pk.tuple,
    };
    // Later fragments: their first fragment's worker and state.
    if pk.l4 == L4::LaterFragment {
        let follow = pk.frag.and_then(|id| w.frags.follow(&pk.tuple, id, now));
        let bits = match follow {
            Some(Follow::Owner(to)) if to != ctx.st.worker => {
                ctx.hand_to(to, in_port, 0, d);
                return Outcome::Consumed;
            }
            Some(Follow::State(b)) => b,
            _ => ct_state::INVALID,
        };
        return decide(
            ctx,
            filter,
            w,
            table,
            &pk,
            Entry::None,
            bits,
            in_port,
            out_port,
            d,
            now,
        );
    }
    // The owner.
    let owner = match &place {
        Place::Known(_) => None,
        Place::NatOut(f) => f(&pk),
        Place::Plain if shared.workers > 1 => Some(owner(&flow, shared.workers)),
        Place::Plain => None,
    };
    if let Some(to) = ctx.elsewhere(owner) {
        if let (Some(id), true) = (pk.frag, pk.l4 != L4::Bad) {
            w.frags.remember(&pk.tuple, id, Follow::Owner(to), now);
        }
        ctx.hand_to(to, in_port, 0, d);
        return Outcome::Consumed;
    }
    let (bits, entry) = match (place, pk.l4) {
        (_, L4::Bad) => (ct_state::INVALID, Entry::None),
        (Place::Known(h), _) if h.related => (ct_state::RELATED, Entry::None),
        (Place::Known(h), _) => {
            if h.created {
                // The NAT made the session for this inbound packet: the
                // connection's original direction is this one.
                match open(&pk, &cfg(table)) {
                    Some(mut t) => {
                        t.status |= FLIP;
                        if let Some(e) = table.track_mut(h.slot) {
                            *e = t;
                        }
                        table.ct_counts.created += 1;
                        (ct_state::NEW, Entry::Created { slot: h.slot })
                    }
                    None => (ct_state::INVALID, Entry::Created { slot: h.slot }),
                }
            } else {
                if let Some(t) = table.track_mut(h.slot) {
                    pick_up(t, pk.tuple.proto, true);
                }
                let (b, e, reopen) = existing(table, h.slot, 1, &pk, now);
                if reopen {
                    reopen_nat(table, h.slot, 1, &pk, &cfg(table))
                } else {
                    (b, e)
                }
            }
        }
        (Place::NatOut(_), L4::Error { inner }) => {
            // An inside host's error about a packet it received: the quote
            // goes remote -> inside.
            let found = nat_slot(table, inner.proto, &inner.reversed());
            related(found.is_some(), &pk)
        }
        (Place::NatOut(_), L4::Tcp(_) | L4::Udp | L4::Query { .. }) => {
            match nat_slot(table, pk.tuple.proto, &pk.tuple) {
                Some(slot) => {
                    if let Some(t) = table.track_mut(slot) {
                        pick_up(t, pk.tuple.proto, true);
                    }
                    let (b, e, reopen) = existing(table, slot, 0, &pk, now);
                    if reopen {
                        reopen_nat(table, slot, 0, &pk, &cfg(table))
                    } else {
                        (b, e)
                    }
                }
                None => match open(&pk, &cfg(table)) {
                    Some(t) => (ct_state::NEW, Entry::NewNat(t)),
                    None => (ct_state::INVALID, Entry::None),
                },
            }
        }
        (Place::NatOut(_), _) => {
            // A protocol the NAT does not translate: it drops it after us.
            (
                if open(&pk, &cfg(table)).is_some() {
                    ct_state::NEW
                } else {
                    ct_state::INVALID
                },
                Entry::None,
            )
        }
        (Place::Plain, L4::Error { inner }) => {
            let found = table.ct_find(&inner).is_some();
            related(found, &pk)
        }
        (Place::Plain, _) => match table.ct_find(&pk.tuple) {
            Some(f) => {
                let (b, e, reopen) = existing(table, f.slot, f.dir, &pk, now);
                if reopen {
                    table.remove_slot(f.slot);
                    match open(&pk, &cfg(table)) {
                        Some(t) => (ct_state::NEW, Entry::NewPlain(t)),
                        None => (ct_state::INVALID, Entry::None),
                    }
                } else {
                    (b, e)
                }
            }
            None => match open(&pk, &cfg(table)) {
                Some(t) => (ct_state::NEW, Entry::NewPlain(t)),
                None => (ct_state::INVALID, Entry::None),
            },
        },
    };
    decide(
        ctx, filter, w, table, &pk, entry, bits, in_port, out_port, d, now,
    )
}

/// An ICMP error: related when it quotes a tracked flow and goes back to
/// the quoted packet's sender.
fn related(found: bool, pk: &CtPacket) -> (u8, Entry) {
    let back = matches!(pk.l4, L4::Error { inner } if inner.src == pk.tuple.dst);
    (
        if found && back {
            ct_state::RELATED
        } else {
            ct_state::INVALID
        },
        Entry::None,
    )
}

/// The NAT session of a packet going `t.src` (inside) -> `t.dst` (remote).
fn nat_slot(table: &NatTable, proto: u8, t: &Tuple) -> Option<u32> {
    use crate::conntrack::Ep;
    table.out_slot(
        proto,
        Ep::new(t.src4(), t.sport),
        Ep::new(t.dst4(), t.dport),
    )
}

/// A SYN reopens a NAT session's connection: the session stays (its
/// mapping), its tracker starts again with this packet's direction as the original.
fn reopen_nat(
    table: &mut NatTable,
    slot: u32,
    table_dir: usize,
    pk: &CtPacket,
    cfg: &TrackConfig,
) -> (u8, Entry) {
    match open(pk, cfg) {
        Some(mut t) => {
            if table_dir == 1 {
                t.status |= FLIP;
            }
            if let Some(e) = table.track_mut(slot) {
                *e = t;
            }
            (
                ct_state::NEW,
                Entry::Existing {
                    slot,
                    dir: table_dir,
                    nat: table.is_nat(slot),
                    close: false,
                },
            )
        }
        None => (ct_state::INVALID, Entry::None),
    }
}

/// Classifies the packet with its state and acts on the verdict; makes or
/// removes entries as the verdict says.
#[allow(clippy::too_many_arguments)]
fn decide(
    ctx: &mut Ctx,
    filter: &Filter,
    w: &mut CtLocal,
    table: &mut NatTable,
    pk: &CtPacket,
    entry: Entry,
    bits: u8,
    in_port: u16,
    out_port: u16,
    d: Desc,
    now: u64,
) -> Outcome {
    if let Some(i) = [
        ct_state::NEW,
        ct_state::ESTABLISHED,
        ct_state::RELATED,
        ct_state::INVALID,
    ]
    .iter()
    .position(|&b| b == bits)
    {
        w.packets[i] += 1;
    }
    if let (Some(id), true) = (pk.frag, pk.l4 != L4::LaterFragment) {
        // A first fragment: its later fragments take its state.
        w.frags.remember(&pk.tuple, id, Follow::State(bits), now);
    }
    let mut f = super::fields(ctx.umem.data(&d), in_port, out_port);
    f.ct_state = bits;
    let action = filter.decide(&f);
    if action != Action::Accept {
        if let Entry::Created { slot } = entry {
            // Never confirmed: the NAT's session goes with the packet.
            table.remove_slot(slot);
        }
        if let Entry::Existing {
            slot, close: true, ..
        } = entry
        {
            table.remove_slot(slot);
        }
        act(ctx, action, f.family == 6, f.proto, in_port, d);
        return Outcome::Consumed;
    }
    let after = match entry {
        Entry::NewPlain(t) => {
            if table.ct_insert(&pk.tuple, t, now).is_err() {
                ctx.drop(in_port, d, Drop::CtTableFull);
                return Outcome::Consumed;
            }
            After::Nothing
        }
        Entry::NewNat(t) => After::NatNew(t),
        Entry::Existing {
            slot, close: true, ..
        } => {
            table.remove_slot(slot);
            After::Nothing
        }
        Entry::Existing {
            slot,
            dir: 0,
            nat: true,
            ..
        } => After::NatAt(slot),
        Entry::Existing { .. } => After::Nothing,
        Entry::Created { .. } | Entry::None => After::Nothing,
    };
    Outcome::Pass(after)
}

/// Drops or rejects a packet the rules refused.
fn act(ctx: &mut Ctx, action: Action, v6: bool, proto: u8, in_port: u16, d: Desc) {
    match action {
        Action::Accept => {}
        Action::Drop => ctx.drop(in_port, d, Drop::FilterDrop),
        Action::RejectTcpReset if proto == 6 => {
            ctx.tcp_reset(in_port, &d);
            ctx.drop(in_port, d, Drop::FilterReject);
        }
        Action::RejectIcmp | Action::RejectTcpReset => {
            if v6 {
                ctx.icmp6_error(in_port, &d, Icmp6Error::AdminProhibited);
            } else {
                ctx.icmp4_error(in_port, &d, Icmp4Error::AdminProhibited);
            }
            ctx.drop(in_port, d, Drop::FilterReject);
        }
    }
}

/// After the NAT's postrouting made (or found) the session of an outbound
/// packet that opens one: its tracker.
pub fn nat_made(table: &mut NatTable, t: Track) {
    if let Some(slot) = table.last_slot() {
        if let Some(e) = table.track_mut(slot) {
            if e.status & TRACKED == 0 {
                *e = t;
                table.ct_counts.created += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_is_the_same_both_ways() {
        for i in 0..1000u32 {
            let t = Tuple {
                family: 4,
                proto: 6,
                src: u128::from(0xc612_0102 + i),
                dst: u128::from(0xc613_0102u32),
                sport: 40000 + i as u16,
                dport: 80,
            };
            for n in 1..5 {
                assert_eq!(owner(&t, n), owner(&t.reversed(), n));
            }
        }
        // Flows spread over the workers.
        let mut seen = [0u32; 2];
        for p in 0..1000u16 {
            let t = Tuple {
                family: 4,
                proto: 6,
                src: 0xc612_0102,
                dst: 0xc613_0102,
                sport: 32768 + 2 * p,
                dport: 80,
            };
            seen[usize::from(owner(&t, 2))] += 1;
        }
        assert!(seen[0] > 400 && seen[1] > 400, "{seen:?}");
    }
}
