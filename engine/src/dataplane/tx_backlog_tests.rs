//! A full TX ring holds frames back (`context::txq`): a worker on in-memory
//! ports whose egress TX ring is small and not drained by its wire side.
//! Frames it does not take are held and leave in order on later loops; RX
//! stops while the backlog is over its bound; a port that cannot drain is
//! given up (`tx-port-stuck`); no frame is lost or sent twice.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::context::counters::{Drop, SharedCounters, Stage};
use crate::context::events;
use crate::context::tables::{Interfaces, PortInfo, Routes};
use crate::context::txq::TX_HOLD;
use crate::control::config::{PollMode, PortMode};
use crate::dataplane::tables::Tables;
use crate::dataplane::worker::{Socket, Worker, WorkerConfig};
use crate::l3::route_table::RouteTable;
use crate::neighbor::{NeighborKey, NeighborTable};
use crate::runtime::setup::connected_route;
use crate::wire::{checksum, Mac};
use crate::xsk::{MemPort, MemPortConfig, Port, Umem, UmemConfig, BURST};

const LAN_MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];
const WAN_MAC: Mac = [0x02, 0, 0, 0, 0, 0x02];
const H1_MAC: Mac = [0x02, 0x11, 0, 0, 0, 0x01];
const H2_MAC: Mac = [0x02, 0x22, 0, 0, 0, 0x02];
const H1: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const H2: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 2);
/// The egress TX ring: one burst.
const WAN_TX: u32 = BURST as u32;

struct Rig {
    w: Worker<MemPort>,
    shared: Arc<SharedCounters>,
    _neigh: NeighborTable,
    _rt: RouteTable,
}

fn port(i: u16, name: &str, mac: Mac, v4: &str) -> PortInfo {
    PortInfo {
        index: i,
        name: name.into(),
        interface: format!("mem{i}"),
        mac,
        mtu: 1500,
        mode: PortMode::Router,
        v4: vec![(v4.parse().unwrap(), 24)],
        v6: vec![],
    }
}

fn rig() -> Rig {
    let ifs = Interfaces::new(vec![
        port(0, "lan", LAN_MAC, "198.18.1.1"),
        port(1, "wan", WAN_MAC, "198.19.1.1"),
    ]);
    let mut rt = RouteTable::new();
    for p in &ifs.ports {
        for &(a, l) in &p.v4 {
            let ia = crate::control::config::InterfaceAddress {
                addr: IpAddr::V4(a),
                prefix_len: l,
            };
            rt.stage_add(connected_route(&p.name, &ia).unwrap())
                .unwrap();
        }
    }
    rt.publish();
    let routes = Routes::resolve(rt.reader().snapshot().clone(), &ifs);
    let mut neigh = NeighborTable::new(30_000, 120_000);
    neigh.learn(
        NeighborKey {
            port: 1,
            ip: IpAddr::V4(H2),
        },
        H2_MAC,
        0,
        true,
    );
    let tables = Arc::new(Tables::new(ifs, routes, neigh.map()));
    let umem = Umem::new(UmemConfig {
        frame_size: 2048,
        frame_count: 2048,
        huge_pages: false,
        headroom: 0,
    })
    .unwrap();
    let lan = MemPortConfig {
        rx_size: 1024,
        tx_size: 64,
        fill_size: 1024,
        comp_size: 64,
    };
    let wan = MemPortConfig {
        rx_size: 64,
        tx_size: WAN_TX,
        fill_size: 64,
        comp_size: WAN_TX,
    };
    let sockets = vec![
        Socket {
            port: 0,
            io: MemPort::new("lan", &umem, lan),
        },
        Socket {
            port: 1,
            io: MemPort::new("wan", &umem, wan),
        },
    ];
    let shared = Arc::new(SharedCounters::default());
    let (sink, _events) = events::channel(64);
    let cfg = WorkerConfig {
        id: 0,
        poll: PollMode::Busy,
        idle_timeout: std::time::Duration::from_millis(1),
    };
    let mut w = Worker::new(cfg, umem, sockets, tables, shared.clone(), sink);
    w.prime();
    Rig {
        w,
        shared,
        _neigh: neigh,
        _rt: rt,
    }
}

/// A UDP datagram h1 -> h2 through the engine, its sequence number in the payload.
fn datagram(seq: u32) -> Vec<u8> {
    let mut udp = vec![0u8; 8 + 32];
    udp[0..2].copy_from_slice(&1000u16.to_be_bytes());
    udp[2..4].copy_from_slice(&2000u16.to_be_bytes());
    let ulen = udp.len() as u16;
    udp[4..6].copy_from_slice(&ulen.to_be_bytes());
    udp[8..12].copy_from_slice(&seq.to_be_bytes());
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&((20 + udp.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&H1.octets());
    ip.extend_from_slice(&H2.octets());
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&udp);
    let mut f = LAN_MAC.to_vec();
    f.extend_from_slice(&H1_MAC);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.extend_from_slice(&ip);
    f
}

fn seq_of(frame: &[u8]) -> u32 {
    assert_eq!(&frame[0..6], &H2_MAC, "forwarded to h2");
    u32::from_be_bytes(frame[14 + 20 + 8..14 + 20 + 12].try_into().unwrap())
}

impl Rig {
    fn inject(&mut self, n: u32) {
        let (umem, socks) = self.w.split();
        for seq in 0..n {
            assert!(socks[0].io.inject(umem, &datagram(seq)), "inject {seq}");
        }
    }

    /// The wire side of wan transmits up to `max` frames: their sequence numbers.
    fn wire_out(&mut self, max: usize) -> Vec<u32> {
        let (umem, socks) = self.w.split();
        let mut v = Vec::new();
        socks[1].io.take_sent(umem, max, |b| v.push(seq_of(b)));
        v
    }

    fn lan_rx_waiting(&mut self) -> u32 {
        self.w.sockets()[0].io.ring_levels().rx
    }

    fn drops(&self, d: Drop) -> u64 {
        self.shared.drop_count(d)
    }

    fn stage(&self, s: Stage) -> u64 {
        self.shared.stage_count(s)
    }

    fn ledger_ok(&mut self) {
        let c = self.w.umem().check();
        assert!(c.is_ok(), "{c:?}");
    }
}

/// More frames than the egress ring holds, the ring not drained: what it
/// does not take is held, RX stops once the backlog is over its bound (the
/// frames wait in the RX ring), and when the wire drains every frame leaves
/// exactly once, in order, with no drop.
#[test]
fn held_frames_leave_in_order_and_rx_pauses_over_the_bound() {
    let mut r = rig();
    r.w.tx_queues().back.stuck_ns = u64::MAX; // a slow test machine is not a dead port
    const N: u32 = 900;
    r.inject(N);
    // Without draining wan: each loop takes a burst; the ring (one burst)
    // fills on the first, the rest is held.
    let mut loops = 0;
    while r.w.tx_queues().back.held(1) <= TX_HOLD {
        assert_eq!(r.w.poll_once(), BURST, "a burst received per loop");
        loops += 1;
        assert!(loops < 20, "backlog never went over the bound");
    }
    let held = r.w.tx_queues().back.held(1);
    assert_eq!(held, (loops - 1) * BURST, "all but the ring's burst held");
    assert!(r.stage(Stage::TxHeld) > 0);
    // Over the bound: no RX; the frames wait in lan's RX ring.
    let waiting = r.lan_rx_waiting();
    assert!(waiting > 0);
    for _ in 0..3 {
        assert_eq!(r.w.poll_once(), 0, "RX paused");
    }
    assert_eq!(r.lan_rx_waiting(), waiting, "nothing taken from RX");
    assert_eq!(r.w.tx_queues().back.held(1), held, "nothing more held");
    assert!(r.stage(Stage::RxPaused) >= 3);
    // The wire drains a burst per loop: everything leaves, in order, once.
    let mut out = Vec::new();
    for _ in 0..200 {
        out.extend(r.wire_out(BURST));
        r.w.poll_once();
        if out.len() == N as usize {
            break;
        }
    }
    out.extend(r.wire_out(usize::MAX));
    assert_eq!(
        out,
        (0..N).collect::<Vec<_>>(),
        "in order, none lost or doubled"
    );
    assert_eq!(r.drops(Drop::TxRingFull), 0);
    assert_eq!(r.drops(Drop::TxPortStuck), 0);
    assert_eq!(r.w.tx_queues().back.held(1), 0);
    r.w.poll_once();
    r.ledger_ok();
}

/// A port whose ring takes nothing for the stuck time is given up: its
/// backlog is dropped as `tx-port-stuck`, RX resumes (a dead port does not
/// stall the worker), frames for it are dropped while it stays stuck, and it
/// holds again once its ring moves. Every frame is either sent once or
/// counted as dropped.
#[test]
fn a_port_that_cannot_drain_is_given_up_and_rx_resumes() {
    let mut r = rig();
    r.w.tx_queues().back.stuck_ns = 1_000_000; // 1 ms
    const N: u32 = 900;
    r.inject(N);
    for _ in 0..20 {
        if r.w.tx_queues().over() {
            break;
        }
        r.w.poll_once();
    }
    assert!(r.w.tx_queues().over(), "backlog never went over the bound");
    let waiting = r.lan_rx_waiting();
    std::thread::sleep(std::time::Duration::from_millis(3));
    r.w.poll_once(); // paused; the ring took nothing for 3 ms: given up
    assert_eq!(r.w.tx_queues().back.held(1), 0);
    let stuck = r.drops(Drop::TxPortStuck);
    assert!(stuck > TX_HOLD as u64, "the backlog was dropped: {stuck}");
    assert_eq!(r.w.poll_once(), BURST, "RX resumed");
    assert!(r.lan_rx_waiting() < waiting);
    assert!(
        r.drops(Drop::TxPortStuck) > stuck,
        "a stuck port holds nothing"
    );
    assert_eq!(r.w.tx_queues().back.held(1), 0);
    // The wire moves again: the port holds again instead of dropping.
    let mut out = r.wire_out(usize::MAX);
    r.w.poll_once();
    r.w.poll_once();
    assert!(r.w.tx_queues().back.held(1) > 0, "holding again");
    let before = r.drops(Drop::TxPortStuck);
    r.w.tx_queues().back.stuck_ns = u64::MAX;
    for _ in 0..200 {
        out.extend(r.wire_out(BURST));
        r.w.poll_once();
        if r.lan_rx_waiting() == 0 && r.w.tx_queues().back.held(1) == 0 {
            break;
        }
    }
    out.extend(r.wire_out(usize::MAX));
    assert_eq!(r.drops(Drop::TxPortStuck), before, "no drop once it moved");
    let mut seen = out.clone();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), out.len(), "no frame sent twice");
    assert!(out.windows(2).all(|w| w[0] < w[1]), "in order");
    assert_eq!(out.len() as u64 + before, u64::from(N), "sent or counted");
    assert_eq!(r.drops(Drop::TxRingFull), 0);
    r.w.poll_once();
    r.ledger_ok();
}
