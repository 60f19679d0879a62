//! The switch end to end on in-memory ports: frames in on one port, out on
//! others, checked byte by byte (tags pushed, popped, rewritten), with the
//! frame ledger checked at the end of every test. Each test runs with and
//! without headroom in front of received frames (tag pushed into the
//! headroom, or the frame shifted).
use std::path::Path;
use std::sync::Arc;

use crate::context::counters::{Drop, SharedCounters, Stage};
use crate::context::events;
use crate::context::tables::Routes;
use crate::control::config::{Config, Environment, PollMode};
use crate::dataplane::tables::Tables;
use crate::dataplane::worker::{Socket, Worker, WorkerConfig};
use crate::l2::MacKey;
use crate::l3::route_table::RouteTable;
use crate::neighbor::NeighborTable;
use crate::runtime::setup;
use crate::wire::Mac;
use crate::xsk::{MemPort, MemPortConfig, Umem, UmemConfig};

const A: Mac = [0x02, 0xa0, 0, 0, 0, 0x0a];
const B: Mac = [0x02, 0xb0, 0, 0, 0, 0x0b];
const C: Mac = [0x02, 0xc0, 0, 0, 0, 0x0c];
const S: Mac = [0x02, 0x5a, 0, 0, 0, 0x01];
const BCAST: Mac = [0xff; 6];

struct AnyEnv;
impl Environment for AnyEnv {
    fn interface_exists(&self, _: &str) -> bool {
        true
    }
    fn core_count(&self) -> usize {
        2
    }
}

/// p0, p1: access VLAN 10; p2: access VLAN 20; p3: trunk 10, 20.
const CONFIG: &str = r#"
[engine]
cores = [0]
[[bridge]]
name = "br0"
max_entries = MAX
static = ["02:5a:00:00:00:01 port p1"]
[[port]]
name = "p0"
interface = "m0"
mode = "switch"
bridge = "br0"
vlan = 10
[[port]]
name = "p1"
interface = "m1"
mode = "switch"
bridge = "br0"
vlan = 10
[[port]]
name = "p2"
interface = "m2"
mode = "switch"
bridge = "br0"
vlan = 20
[[port]]
name = "p3"
interface = "m3"
mode = "switch"
bridge = "br0"
trunk = [10, 20]
"#;

struct Rig {
    w: Worker<MemPort>,
    tables: Arc<Tables>,
    shared: Arc<SharedCounters>,
}

/// A worker with its own UMEM and in-memory ports on shared tables.
fn worker(tables: &Arc<Tables>, headroom: u32, id: u16) -> (Worker<MemPort>, Arc<SharedCounters>) {
    let umem = Umem::new(UmemConfig {
        frame_size: 2048,
        frame_count: 2048,
        huge_pages: false,
        headroom,
    })
    .unwrap();
    let sockets = (0..4)
        .map(|i| Socket {
            port: i,
            io: MemPort::new(&format!("w{id}p{i}"), &umem, MemPortConfig::default()),
        })
        .collect();
    let shared = Arc::new(SharedCounters::default());
    let (sink, _events) = events::channel(1024);
    let wc = WorkerConfig {
        id,
        poll: PollMode::Busy,
        idle_timeout: std::time::Duration::from_millis(1),
    };
    let mut w = Worker::new(wc, umem, sockets, tables.clone(), shared.clone(), sink);
    w.prime();
    (w, shared)
}

fn rig_with(headroom: u32, max_entries: u32) -> Rig {
    let text = CONFIG.replace("MAX", &max_entries.to_string());
    let cfg = Config::parse(Path::new("t.toml"), &text, &AnyEnv).unwrap();
    let ifs =
        setup::interfaces(&cfg, &|n: &str| Ok([0x02, 0xee, 0, 0, 0, n.as_bytes()[1]])).unwrap();
    let rt = RouteTable::new();
    let routes = Routes::resolve(rt.reader().snapshot().clone(), &ifs);
    let tables = Arc::new(
        Tables::new(ifs, routes, NeighborTable::new(30_000, 120_000).map()).with_l2(cfg.switch()),
    );
    let (w, shared) = worker(&tables, headroom, 0);
    Rig { w, tables, shared }
}

impl Rig {
    fn inject(&mut self, p: usize, frame: &[u8]) {
        let (umem, socks) = self.w.split();
        assert!(socks[p].io.inject(umem, frame), "inject refused");
    }

    /// Injects and runs the worker; returns what each port sent.
    fn send(&mut self, p: usize, frame: &[u8]) -> [Vec<Vec<u8>>; 4] {
        self.inject(p, frame);
        self.w.poll_once();
        std::array::from_fn(|i| self.sent(i))
    }

    fn sent(&mut self, p: usize) -> Vec<Vec<u8>> {
        let (umem, socks) = self.w.split();
        let mut v = Vec::new();
        socks[p]
            .io
            .take_sent(umem, usize::MAX, |b| v.push(b.to_vec()));
        v
    }

    fn drops(&self, d: Drop) -> u64 {
        self.shared.drop_count(d)
    }

    fn lookup(&self, vlan: u16, mac: Mac) -> Option<u8> {
        self.tables.l2.bridges[0]
            .table
            .load()
            .lookup(MacKey::new(vlan, mac))
    }

    fn finish(mut self) {
        for p in 0..4 {
            self.sent(p);
        }
        self.w.poll_once();
        let c = self.w.umem().check();
        assert!(c.is_ok(), "{c:?}");
        assert_eq!(c.unwrap().held, 0, "a frame is still held");
    }
}

fn frame(dst: Mac, src: Mac, len: usize) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend((0..len).map(|i| i as u8));
    f
}

fn tagged(f: &[u8], tci: u16) -> Vec<u8> {
    let mut t = f[..12].to_vec();
    t.extend_from_slice(&[0x81, 0x00]);
    t.extend_from_slice(&tci.to_be_bytes());
    t.extend_from_slice(&f[12..]);
    t
}

fn counts(out: &[Vec<Vec<u8>>; 4]) -> [usize; 4] {
    std::array::from_fn(|i| out[i].len())
}

fn both(test: impl Fn(u32)) {
    for headroom in [0, 256] {
        test(headroom);
    }
}

#[test]
fn unknown_unicast_floods_in_its_vlan_then_learned_stations_get_one_port() {
    both(|h| {
        let mut r = rig_with(h, 1024);
        let ab = frame(B, A, 100);
        let out = r.send(0, &ab);
        assert_eq!(
            counts(&out),
            [0, 1, 0, 1],
            "flooded to VLAN 10 (p1, trunk p3), not p2 (VLAN 20)"
        );
        assert_eq!(out[1][0], ab, "access egress: untagged, unchanged");
        assert_eq!(out[3][0], tagged(&ab, 10), "trunk egress: tag 10 pushed");
        assert_eq!(r.lookup(10, A), Some(0));
        assert_eq!(r.lookup(20, A), None, "learned in VLAN 10 only");
        // B answers: A is known, one port only.
        let ba = frame(A, B, 60);
        let out = r.send(1, &ba);
        assert_eq!(counts(&out), [1, 0, 0, 0]);
        assert_eq!(out[0][0], ba);
        // A again: B is known now.
        let out = r.send(0, &ab);
        assert_eq!(counts(&out), [0, 1, 0, 0]);
        assert_eq!(r.shared.stage_count(Stage::L2Flood), 1);
        assert_eq!(r.shared.stage_count(Stage::L2Learned), 2);
        r.finish();
    });
}

#[test]
fn broadcast_floods_to_all_vlan_members_except_ingress() {
    both(|h| {
        let mut r = rig_with(h, 1024);
        // Broadcasts flood even when everyone is known.
        r.send(1, &frame(BCAST, B, 40));
        let f = frame(BCAST, A, 46);
        let out = r.send(0, &f);
        assert_eq!(counts(&out), [0, 1, 0, 1]);
        assert_eq!(out[3][0], tagged(&f, 10));
        let m = frame([0x01, 0x00, 0x5e, 0, 0, 1], C, 46);
        let out = r.send(2, &m);
        assert_eq!(
            counts(&out),
            [0, 0, 0, 1],
            "VLAN 20 multicast: only the trunk"
        );
        assert_eq!(out[3][0], tagged(&m, 20));
        r.finish();
    });
}

#[test]
fn destination_on_the_ingress_port_is_filtered() {
    both(|h| {
        let mut r = rig_with(h, 1024);
        r.send(0, &frame(BCAST, B, 40));
        let out = r.send(0, &frame(B, A, 40));
        assert_eq!(counts(&out), [0, 0, 0, 0]);
        assert_eq!(r.drops(Drop::L2Filtered), 1);
        r.finish();
    });
}

#[test]
fn trunk_tags_pop_to_access_and_foreign_vlans_drop() {
    both(|h| {
        let mut r = rig_with(h, 1024);
        let inner = frame(BCAST, C, 80);
        // PCP 3, VLAN 20 on the trunk: p2 gets it untagged.
        let out = r.send(3, &tagged(&inner, 0x6000 | 20));
        assert_eq!(counts(&out), [0, 0, 1, 0]);
        assert_eq!(out[2][0], inner, "tag popped");
        assert_eq!(r.lookup(20, C), Some(3));
        // Unicast back from p2 to C: to the trunk, tagged 20.
        let back = frame(C, A, 50);
        let out = r.send(2, &back);
        assert_eq!(counts(&out), [0, 0, 0, 1]);
        assert_eq!(out[3][0], tagged(&back, 20));
        // VLAN 30 is not on the trunk; untagged frames have no VLAN on a trunk;
        // VLAN 20 tags are refused on an access port of VLAN 10.
        r.send(3, &tagged(&inner, 30));
        r.send(3, &inner);
        r.send(0, &tagged(&inner, 20));
        assert_eq!(r.drops(Drop::L2VlanNotAllowed), 2);
        assert_eq!(r.drops(Drop::L2UntaggedOnTrunk), 1);
        r.finish();
    });
}

#[test]
fn priority_tags_join_the_access_vlan_and_keep_their_priority() {
    both(|h| {
        let mut r = rig_with(h, 1024);
        let f = frame(BCAST, A, 60);
        let out = r.send(0, &tagged(&f, 0xa000));
        assert_eq!(counts(&out), [0, 1, 0, 1]);
        assert_eq!(out[1][0], f, "popped toward the access port");
        assert_eq!(
            out[3][0],
            tagged(&f, 0xa000 | 10),
            "VID written, PCP 5 kept"
        );
        r.finish();
    });
}

#[test]
fn a_station_that_moves_is_followed_at_once() {
    both(|h| {
        let mut r = rig_with(h, 1024);
        r.send(0, &frame(BCAST, A, 40));
        assert_eq!(r.lookup(10, A), Some(0));
        // A shows up on the trunk in VLAN 10.
        r.send(3, &tagged(&frame(BCAST, A, 40), 10));
        assert_eq!(r.lookup(10, A), Some(3));
        let out = r.send(1, &frame(A, B, 40));
        assert_eq!(counts(&out), [0, 0, 0, 1]);
        assert_eq!(r.shared.stage_count(Stage::L2Moved), 1);
        r.finish();
    });
}

#[test]
fn static_entries_forward_without_learning_and_do_not_move() {
    let mut r = rig_with(256, 1024);
    let out = r.send(0, &frame(S, A, 40));
    assert_eq!(counts(&out), [0, 1, 0, 0], "static entry: no flood");
    // S appears on p0: a static entry stays.
    r.send(0, &frame(BCAST, S, 40));
    assert_eq!(r.lookup(10, S), Some(1));
    r.finish();
}

#[test]
fn full_table_stops_learning_floods_and_counts() {
    let mut r = rig_with(256, 2);
    // The static entry takes one place; A the second; B does not fit.
    r.send(0, &frame(BCAST, A, 40));
    r.send(1, &frame(BCAST, B, 40));
    assert_eq!(r.lookup(10, B), None);
    assert_eq!(r.shared.stage_count(Stage::L2TableFull), 1);
    let out = r.send(0, &frame(B, A, 40));
    assert_eq!(counts(&out), [0, 1, 0, 1], "unknown: flooded");
    r.finish();
}

#[test]
fn invalid_frames_are_dropped_and_counted() {
    let mut r = rig_with(0, 1024);
    r.send(0, &frame(B, [0x03, 0, 0, 0, 0, 1], 40));
    r.send(0, &frame([0x01, 0x80, 0xc2, 0, 0, 0x0e], A, 40));
    r.send(0, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    r.send(
        3,
        &[
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0,
        ],
    );
    assert_eq!(r.drops(Drop::L2BadSource), 1);
    assert_eq!(r.drops(Drop::L2ReservedGroup), 1);
    assert_eq!(r.drops(Drop::EthTruncated), 2);
    // A link-local frame is not relayed, but its source is still learned.
    assert_eq!(r.lookup(10, A), Some(0));
    r.finish();
}

#[test]
fn aging_and_flush_restore_flooding() {
    let mut r = rig_with(256, 1024);
    r.send(1, &frame(BCAST, B, 40));
    let b = &r.tables.l2.bridges[0];
    let t = b.table.load();
    assert_eq!(t.len(), 2, "B and the static entry");
    // Aging at 300 s: nothing yet; far in the future: B goes, the static entry stays.
    assert_eq!(t.age(r.tables.now_ms()), 0);
    assert_eq!(t.age(r.tables.now_ms() + 301_000), 1);
    let out = r.send(0, &frame(B, A, 40));
    assert_eq!(counts(&out), [0, 1, 0, 1], "aged out: flooded again");
    assert_eq!(r.tables.l2.bridges[0].table.load().flush(), 1, "A");
    assert_eq!(r.lookup(10, S), Some(1));
    r.finish();
}

/// Two workers (own UMEMs and sockets, as with two queues per port) on one
/// bridge: a station learned by one is used by the other on its next frame.
#[test]
fn a_station_learned_by_one_worker_is_used_by_another() {
    let mut r = rig_with(256, 1024);
    let (mut w2, shared2) = worker(&r.tables, 256, 1);
    r.send(0, &frame(BCAST, A, 40));
    // Worker 2 receives B -> A on p1: known, to p0 only, no flood.
    {
        let (umem, socks) = w2.split();
        assert!(socks[1].io.inject(umem, &frame(A, B, 40)));
    }
    w2.poll_once();
    let mut got = [0usize; 4];
    for (p, g) in got.iter_mut().enumerate() {
        let (umem, socks) = w2.split();
        *g = socks[p].io.take_sent(umem, usize::MAX, |_| {});
    }
    assert_eq!(got, [1, 0, 0, 0]);
    assert_eq!(shared2.stage_count(Stage::L2Flood), 0);
    // And worker 1 uses what worker 2 learned (B on p1).
    let out = r.send(0, &frame(B, A, 40));
    assert_eq!(counts(&out), [0, 1, 0, 0]);
    w2.poll_once();
    assert!(w2.umem().check().is_ok());
    r.finish();
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// Arbitrary frames (short, tagged or not, any addresses) on any port:
        /// no panic, every frame ends somewhere, the ledger holds.
        #[test]
        fn any_frames_on_any_ports_keep_the_ledger(
            frames in proptest::collection::vec((0usize..4, proptest::collection::vec(any::<u8>(), 0..80), any::<bool>(), 0u16..40), 1..40),
            headroom in prop_oneof![Just(0u32), Just(256u32)],
        ) {
            let mut r = rig_with(headroom, 8);
            for (port, mut bytes, tag, vid) in frames {
                if tag && bytes.len() >= 16 {
                    bytes[12..14].copy_from_slice(&[0x81, 0x00]);
                    bytes[14..16].copy_from_slice(&vid.to_be_bytes());
                }
                // Few distinct addresses, so learning, moves and lookups hit.
                if let Some(b) = bytes.get_mut(5) { *b &= 3; }
                if let Some(b) = bytes.get_mut(11) { *b &= 3; }
                if bytes.is_empty() {
                    continue;
                }
                r.inject(port, &bytes);
                r.w.poll_once();
            }
            r.finish();
        }
    }
}

/// Two bridges are two worlds, even with the same VLAN numbers.
#[test]
fn bridges_do_not_share_stations_or_floods() {
    let text = r#"
[engine]
cores = [0]
[[bridge]]
name = "br0"
[[bridge]]
name = "br1"
[[port]]
name = "a0"
interface = "m0"
mode = "switch"
bridge = "br0"
[[port]]
name = "a1"
interface = "m1"
mode = "switch"
bridge = "br0"
[[port]]
name = "b0"
interface = "m2"
mode = "switch"
bridge = "br1"
[[port]]
name = "b1"
interface = "m3"
mode = "switch"
bridge = "br1"
"#;
    let cfg = Config::parse(Path::new("t.toml"), text, &AnyEnv).unwrap();
    let ifs =
        setup::interfaces(&cfg, &|n: &str| Ok([0x02, 0xee, 0, 0, 0, n.as_bytes()[1]])).unwrap();
    let routes = Routes::resolve(RouteTable::new().reader().snapshot().clone(), &ifs);
    let tables = Arc::new(
        Tables::new(ifs, routes, NeighborTable::new(30_000, 120_000).map()).with_l2(cfg.switch()),
    );
    let (w, shared) = worker(&tables, 256, 0);
    let mut r = Rig { w, tables, shared };
    let out = r.send(0, &frame(BCAST, A, 40));
    assert_eq!(counts(&out), [0, 1, 0, 0], "br0's broadcast stays in br0");
    let out = r.send(2, &frame(A, B, 40));
    assert_eq!(
        counts(&out),
        [0, 0, 0, 1],
        "A is unknown in br1: flooded there only"
    );
    assert_eq!(
        r.tables.l2.bridges[0]
            .table
            .load()
            .lookup(MacKey::new(1, B)),
        None
    );
    assert_eq!(
        r.tables.l2.bridges[1]
            .table
            .load()
            .lookup(MacKey::new(1, B)),
        Some(0)
    );
    r.finish();
}
