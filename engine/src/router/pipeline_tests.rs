//! The router pipeline end to end on in-memory ports: frames in on one port,
//! frames out on another, checked byte by byte, with the frame ledger
//! checked after every test.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crossbeam::channel::Receiver;

use crate::context::counters::{Drop, SharedCounters};
use crate::context::events::{self, Event};
use crate::context::tables::{Interfaces, PortInfo, Routes};
use crate::control::config::{PollMode, PortMode};
use crate::dataplane::tables::Tables;
use crate::dataplane::worker::{Socket, Worker, WorkerConfig};
use crate::l3::route_table::RouteTable;
use crate::l3::routes_file::parse_line;
use crate::neighbor::{NeighborKey, NeighborTable};
use crate::runtime::setup::connected_route;
use crate::wire::checksum;
use crate::wire::Mac;
use crate::xsk::{MemPort, MemPortConfig, Umem, UmemConfig};

const LAN_MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];
const WAN_MAC: Mac = [0x02, 0, 0, 0, 0, 0x02];
const WAN2_MAC: Mac = [0x02, 0, 0, 0, 0, 0x03];
const H1_MAC: Mac = [0x02, 0x11, 0, 0, 0, 0x01];
const H2_MAC: Mac = [0x02, 0x22, 0, 0, 0, 0x02];
const H3_MAC: Mac = [0x02, 0x33, 0, 0, 0, 0x03];
const H1: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const H2: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 2);
const LAN_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);

struct Rig {
    w: Worker<MemPort>,
    tables: Arc<Tables>,
    _rt: RouteTable,
    neigh: NeighborTable,
    events: Receiver<Event>,
    shared: Arc<SharedCounters>,
}

fn port(i: u16, name: &str, mac: Mac, v4: (&str, u8), v6: (&str, u8), mtu: u16) -> PortInfo {
    PortInfo {
        index: i,
        name: name.into(),
        interface: format!("mem{i}"),
        mac,
        mtu,
        mode: PortMode::Router,
        v4: vec![(v4.0.parse().unwrap(), v4.1)],
        v6: vec![(v6.0.parse().unwrap(), v6.1)],
    }
}

fn rig_with(wan_mtu: u16, routes: &[&str]) -> Rig {
    let ifs = Interfaces::new(vec![
        port(
            0,
            "lan",
            LAN_MAC,
            ("198.18.1.1", 24),
            ("2001:2:0:1::1", 64),
            1500,
        ),
        port(
            1,
            "wan",
            WAN_MAC,
            ("198.19.1.1", 24),
            ("2001:2:0:2::1", 64),
            wan_mtu,
        ),
        port(
            2,
            "wan2",
            WAN2_MAC,
            ("198.19.2.1", 24),
            ("2001:2:0:3::1", 64),
            1500,
        ),
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
        for &(a, l) in &p.v6 {
            let ia = crate::control::config::InterfaceAddress {
                addr: IpAddr::V6(a),
                prefix_len: l,
            };
            rt.stage_add(connected_route(&p.name, &ia).unwrap())
                .unwrap();
        }
    }
    for r in routes {
        rt.stage_add(parse_line(r).unwrap().unwrap()).unwrap();
    }
    rt.publish();
    let routes = Routes::resolve(rt.reader().snapshot().clone(), &ifs);
    let neigh = NeighborTable::new(30_000, 120_000);
    let tables = Arc::new(Tables::new(ifs, routes, neigh.map()));
    let mut umem = Umem::new(UmemConfig {
        frame_size: 2048,
        frame_count: 1024,
        huge_pages: false,
        headroom: 0,
    })
    .unwrap();
    let sockets = (0..3)
        .map(|i| Socket {
            port: i,
            io: MemPort::new(&format!("p{i}"), &umem, MemPortConfig::default()),
        })
        .collect::<Vec<_>>();
    let _ = &mut umem;
    let shared = Arc::new(SharedCounters::default());
    let (sink, events) = events::channel(1024);
    let cfg = WorkerConfig {
        id: 0,
        poll: PollMode::Busy,
        idle_timeout: std::time::Duration::from_millis(1),
    };
    let mut w = Worker::new(cfg, umem, sockets, tables.clone(), shared.clone(), sink);
    w.prime();
    Rig {
        w,
        tables,
        _rt: rt,
        neigh,
        events,
        shared,
    }
}

fn rig() -> Rig {
    rig_with(1500, &[])
}

impl Rig {
    fn inject(&mut self, p: usize, frame: &[u8]) {
        let (umem, socks) = self.w.split();
        assert!(socks[p].io.inject(umem, frame), "inject refused");
    }

    fn run(&mut self) {
        for _ in 0..3 {
            self.w.poll_once();
        }
    }

    fn sent(&mut self, p: usize) -> Vec<Vec<u8>> {
        let (umem, socks) = self.w.split();
        let mut v = Vec::new();
        socks[p]
            .io
            .take_sent(umem, usize::MAX, |b| v.push(b.to_vec()));
        v
    }

    fn learn(&mut self, p: u16, ip: IpAddr, mac: Mac) {
        self.neigh.learn(NeighborKey { port: p, ip }, mac, 0, true);
        self.tables.neigh.store(Arc::new(self.neigh.map()));
    }

    fn drops(&self, d: Drop) -> u64 {
        self.shared.drop_count(d)
    }

    fn finish(mut self) {
        for p in 0..3 {
            self.sent(p);
        }
        self.w.poll_once();
        let c = self.w.umem().check();
        assert!(c.is_ok(), "{c:?}");
    }
}

fn eth(dst: Mac, src: Mac, et: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, df: bool, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![
        0x45,
        0,
        0,
        0,
        0x12,
        0x34,
        if df { 0x40 } else { 0 },
        0,
        ttl,
        proto,
        0,
        0,
    ];
    h[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let c = checksum::checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn udp4(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, ttl: u8, len: usize) -> Vec<u8> {
    let mut u = vec![0u8; 8 + len];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + len) as u16).to_be_bytes());
    for (i, b) in u[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let s = checksum::combine(&[
        checksum::pseudo_header_v4(&src.octets(), &dst.octets(), 17, (8 + len) as u16),
        checksum::data(&u),
    ]);
    u[6..8].copy_from_slice(&checksum::udp_nonzero(!s).to_be_bytes());
    eth(LAN_MAC, H1_MAC, 0x0800, &ipv4(src, dst, ttl, false, 17, &u))
}

fn ip_ok(f: &[u8]) -> bool {
    checksum::data(&f[14..14 + usize::from(f[14] & 15) * 4]) == 0xffff
}

#[test]
fn forwards_ipv4_with_ttl_and_macs_rewritten() {
    let mut r = rig();
    r.learn(1, IpAddr::V4(H2), H2_MAC);
    let f = udp4(H1, H2, 1000, 2000, 64, 100);
    r.inject(0, &f);
    r.run();
    let out = r.sent(1);
    assert_eq!(out.len(), 1);
    let o = &out[0];
    assert_eq!(&o[0..6], &H2_MAC);
    assert_eq!(&o[6..12], &WAN_MAC);
    assert_eq!(o[14 + 8], 63);
    assert!(ip_ok(o));
    // Everything else unchanged.
    assert_eq!(&o[14 + 12..], &f[14 + 12..]);
    assert_eq!(&o[12..14 + 8], &f[12..14 + 8]);
    r.finish();
}

#[test]
fn unresolved_next_hop_parks_the_packet_and_sends_arp() {
    let mut r = rig();
    r.inject(0, &udp4(H1, H2, 1000, 2000, 64, 10));
    r.run();
    let out = r.sent(1);
    assert_eq!(out.len(), 1, "one ARP request, no IP yet");
    let a = &out[0];
    assert_eq!(&a[0..6], &[0xff; 6]);
    assert_eq!(&a[12..14], &[0x08, 0x06]);
    assert_eq!(&a[28..32], &[198, 19, 1, 1], "sender is the wan address");
    assert_eq!(&a[38..42], &H2.octets(), "target is the next hop");
    assert!(r
        .events
        .try_iter()
        .any(|e| matches!(e, Event::NeighMiss { key } if key.ip == IpAddr::V4(H2))));
    r.learn(1, IpAddr::V4(H2), H2_MAC);
    r.run();
    let out = r.sent(1);
    assert_eq!(out.len(), 1, "the parked packet leaves once resolved");
    assert_eq!(&out[0][0..6], &H2_MAC);
    assert_eq!(out[0][14 + 8], 63);
    r.finish();
}

#[test]
fn ttl_expiry_and_no_route_answer_with_icmp_from_ingress_address() {
    let mut r = rig();
    r.learn(0, IpAddr::V4(H1), H1_MAC);
    r.inject(0, &udp4(H1, H2, 1000, 2000, 1, 10));
    r.inject(
        0,
        &udp4(H1, Ipv4Addr::new(198, 19, 200, 1), 1000, 2000, 64, 10),
    );
    r.run();
    let out = r.sent(0);
    assert_eq!(out.len(), 2);
    for (o, (ty, code)) in out.iter().zip([(11u8, 0u8), (3, 0)]) {
        assert_eq!(&o[0..6], &H1_MAC);
        assert_eq!(&o[14 + 12..14 + 16], &LAN_IP.octets());
        assert_eq!(&o[14 + 16..14 + 20], &H1.octets());
        assert_eq!((o[34], o[35]), (ty, code));
        assert!(ip_ok(o));
        assert_eq!(checksum::data(&o[34..]), 0xffff, "ICMP checksum");
        // The quote starts with the offending IPv4 header.
        assert_eq!(&o[42 + 12..42 + 16], &H1.octets());
    }
    assert_eq!(r.drops(Drop::Ip4TtlExpired), 1);
    assert_eq!(r.drops(Drop::Ip4NoRoute), 1);
    assert!(r.sent(1).is_empty());
    r.finish();
}

/// Kernel route types that forward nothing (issue 23: the mirror copies
/// them): blackhole drops silently, unreachable answers Host Unreachable
/// (IPv6: No Route), prohibit Administratively Prohibited, as Linux does; a
/// more specific unicast route inside a blackhole still forwards.
#[test]
fn reject_routes_drop_with_the_icmp_error_of_their_type() {
    let mut r = rig_with(
        1500,
        &[
            "blackhole 198.19.100.0/24",
            "unreachable 198.19.101.0/24",
            "prohibit 198.19.102.0/24",
            "blackhole 198.19.0.0/16 metric 5",
            "blackhole 2001:2:100::/48",
            "unreachable 2001:2:101::/48",
            "prohibit 2001:2:102::/48",
        ],
    );
    r.learn(0, IpAddr::V4(H1), H1_MAC);
    r.learn(1, IpAddr::V4(H2), H2_MAC);
    for last in [100u8, 101, 102] {
        r.inject(
            0,
            &udp4(H1, Ipv4Addr::new(198, 19, last, 9), 1000, 2000, 64, 10),
        );
    }
    // 198.19.1.0/24 (connected, wan) is more specific than the /16 blackhole.
    r.inject(0, &udp4(H1, H2, 1000, 2000, 64, 10));
    r.run();
    let back = r.sent(0);
    assert_eq!(back.len(), 2, "blackhole sends nothing");
    assert_eq!(
        (back[0][34], back[0][35]),
        (3, 1),
        "unreachable: host unreachable"
    );
    assert_eq!(
        (back[1][34], back[1][35]),
        (3, 13),
        "prohibit: admin prohibited"
    );
    assert_eq!(r.sent(1).len(), 1, "the more specific route forwards");
    assert_eq!(r.drops(Drop::RouteBlackhole), 1);
    assert_eq!(r.drops(Drop::RouteUnreachable), 1);
    assert_eq!(r.drops(Drop::RouteProhibit), 1);
    assert_eq!(r.drops(Drop::Ip4NoRoute), 0);

    let h1: Ipv6Addr = "2001:2:0:1::2".parse().unwrap();
    r.learn(0, IpAddr::V6(h1), H1_MAC);
    for n in [0x100u16, 0x101, 0x102] {
        let dst = Ipv6Addr::new(0x2001, 2, n, 0, 0, 0, 0, 9);
        r.inject(0, &ipv6_udp(h1, dst, 64, 10));
    }
    r.run();
    let back = r.sent(0);
    assert_eq!(back.len(), 2);
    assert_eq!((back[0][54], back[0][55]), (1, 0), "unreachable: no route");
    assert_eq!(
        (back[1][54], back[1][55]),
        (1, 1),
        "prohibit: admin prohibited"
    );
    assert_eq!(r.drops(Drop::RouteBlackhole), 2);
    r.finish();
}

#[test]
fn engine_answers_ping_and_arp_for_its_addresses() {
    let mut r = rig();
    r.learn(0, IpAddr::V4(H1), H1_MAC);
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    icmp.extend_from_slice(b"abcdefgh");
    let c = checksum::checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    // To the wan address, arriving on lan (a router answers for all its addresses).
    r.inject(
        0,
        &eth(
            LAN_MAC,
            H1_MAC,
            0x0800,
            &ipv4(H1, Ipv4Addr::new(198, 19, 1, 1), 64, false, 1, &icmp),
        ),
    );
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&H1_MAC);
    arp.extend_from_slice(&H1.octets());
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&LAN_IP.octets());
    r.inject(0, &eth([0xff; 6], H1_MAC, 0x0806, &arp));
    r.run();
    let out = r.sent(0);
    assert_eq!(out.len(), 2, "{out:?}");
    let echo = out.iter().find(|o| o[12..14] == [8, 0]).unwrap();
    assert_eq!(echo[34], 0, "echo reply");
    assert_eq!(&echo[14 + 12..14 + 16], &[198, 19, 1, 1]);
    assert_eq!(&echo[14 + 16..14 + 20], &H1.octets());
    assert!(ip_ok(echo));
    assert_eq!(checksum::data(&echo[34..]), 0xffff);
    let reply = out.iter().find(|o| o[12..14] == [8, 6]).unwrap();
    assert_eq!(&reply[0..6], &H1_MAC);
    assert_eq!(&reply[20..22], &[0, 2], "ARP reply");
    assert_eq!(&reply[22..28], &LAN_MAC);
    assert_eq!(&reply[28..32], &LAN_IP.octets());
    r.finish();
}

#[test]
fn malformed_and_foreign_frames_are_dropped_and_counted() {
    let mut r = rig();
    let mut bad = udp4(H1, H2, 1, 2, 64, 10);
    bad[14 + 10] ^= 0xff;
    r.inject(0, &bad);
    let mut other = udp4(H1, H2, 1, 2, 64, 10);
    other[0..6].copy_from_slice(&[0x02, 9, 9, 9, 9, 9]);
    r.inject(0, &other);
    r.inject(0, &[1, 2, 3]);
    let mut trunc = udp4(H1, H2, 1, 2, 64, 10);
    trunc.truncate(30);
    r.inject(0, &trunc);
    let mut mart = udp4(Ipv4Addr::new(127, 0, 0, 1), H2, 1, 2, 64, 10);
    mart[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&mart[14..34]);
    mart[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
    r.inject(0, &mart);
    r.run();
    assert_eq!(r.drops(Drop::Ip4BadChecksum), 1);
    assert_eq!(r.drops(Drop::EthNotForUs), 1);
    assert_eq!(r.drops(Drop::EthTruncated), 1);
    assert_eq!(r.drops(Drop::Ip4Malformed), 1);
    assert_eq!(r.drops(Drop::Ip4MartianSrc), 1);
    assert!(r.sent(1).is_empty() && r.sent(0).is_empty());
    r.finish();
}

#[test]
fn ecmp_keeps_each_flow_on_one_path_and_uses_both() {
    let mut r = rig_with(1500, &["198.20.0.0/16 via 198.19.1.2 via 198.19.2.2"]);
    r.learn(1, IpAddr::V4(H2), H2_MAC);
    r.learn(2, IpAddr::V4(Ipv4Addr::new(198, 19, 2, 2)), H3_MAC);
    let dst = Ipv4Addr::new(198, 20, 0, 9);
    let mut first: Vec<usize> = Vec::new();
    for round in 0..2 {
        let mut paths = Vec::new();
        for sport in 0..32u16 {
            r.inject(0, &udp4(H1, dst, 1000 + sport, 53, 64, 4));
            r.run();
            let a = r.sent(1).len();
            let b = r.sent(2).len();
            assert_eq!(a + b, 1);
            paths.push(if a == 1 { 1 } else { 2 });
        }
        if round == 0 {
            first = paths;
        } else {
            assert_eq!(first, paths, "a flow changed path");
        }
    }
    assert!(first.contains(&1) && first.contains(&2), "{first:?}");
    r.finish();
}

#[test]
fn fragments_without_df_and_refuses_with_df() {
    let mut r = rig_with(576, &[]);
    r.learn(1, IpAddr::V4(H2), H2_MAC);
    r.learn(0, IpAddr::V4(H1), H1_MAC);
    let f = udp4(H1, H2, 7, 9, 64, 1400);
    r.inject(0, &f);
    r.run();
    let frags = r.sent(1);
    assert_eq!(frags.len(), 3, "1428 bytes over MTU 576");
    let mut payload = Vec::new();
    for (i, fr) in frags.iter().enumerate() {
        assert!(fr.len() - 14 <= 576);
        assert!(ip_ok(fr));
        let off = (u16::from_be_bytes([fr[20], fr[21]]) & 0x1fff) as usize * 8;
        let mf = fr[20] & 0x20 != 0;
        assert_eq!(mf, i < 2);
        assert_eq!(off, payload.len());
        assert_eq!(fr[14 + 8], 63);
        payload.extend_from_slice(&fr[34..]);
    }
    assert_eq!(payload, f[34..].to_vec(), "reassembled payload");
    let mut df = udp4(H1, H2, 7, 9, 64, 1400);
    df[14 + 6] |= 0x40;
    df[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&df[14..34]);
    df[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
    r.inject(0, &df);
    r.run();
    assert!(r.sent(1).is_empty());
    let back = r.sent(0);
    assert_eq!(back.len(), 1);
    assert_eq!((back[0][34], back[0][35]), (3, 4), "fragmentation needed");
    assert_eq!(
        u16::from_be_bytes([back[0][40], back[0][41]]),
        576,
        "next-hop MTU"
    );
    r.finish();
}

fn ipv6_udp(src: Ipv6Addr, dst: Ipv6Addr, hl: u8, len: usize) -> Vec<u8> {
    let mut u = vec![0u8; 8 + len];
    u[0..2].copy_from_slice(&1000u16.to_be_bytes());
    u[2..4].copy_from_slice(&2000u16.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + len) as u16).to_be_bytes());
    let s = checksum::combine(&[
        checksum::pseudo_header_v6(&src.octets(), &dst.octets(), 17, (8 + len) as u32),
        checksum::data(&u),
    ]);
    u[6..8].copy_from_slice(&(!s).to_be_bytes());
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&((8 + len) as u16).to_be_bytes());
    h.push(17);
    h.push(hl);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(&u);
    eth(LAN_MAC, H1_MAC, 0x86dd, &h)
}

#[test]
fn forwards_ipv6_and_answers_hop_limit_and_too_big() {
    let mut r = rig_with(1280, &[]);
    let h1: Ipv6Addr = "2001:2:0:1::2".parse().unwrap();
    let h2: Ipv6Addr = "2001:2:0:2::2".parse().unwrap();
    r.learn(1, IpAddr::V6(h2), H2_MAC);
    r.learn(0, IpAddr::V6(h1), H1_MAC);
    r.inject(0, &ipv6_udp(h1, h2, 64, 100));
    r.inject(0, &ipv6_udp(h1, h2, 1, 100));
    r.inject(0, &ipv6_udp(h1, h2, 64, 1300));
    r.run();
    let out = r.sent(1);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][0..6], &H2_MAC);
    assert_eq!(out[0][14 + 7], 63);
    let back = r.sent(0);
    assert_eq!(back.len(), 2);
    assert_eq!(back[0][14 + 40], 3, "time exceeded");
    assert_eq!(back[1][14 + 40], 2, "packet too big");
    assert_eq!(
        u32::from_be_bytes([back[1][58], back[1][59], back[1][60], back[1][61]]),
        1280
    );
    r.finish();
}

/// The malformed-input corpus (issue 13): every frame is dropped under its
/// own reason (or answered with the ICMP error it deserves), nothing
/// reaches the far port, and the frame ledger stays exact.
#[test]
fn malformed_corpus_is_dropped_and_counted_under_its_reason() {
    let mut r = rig();
    r.learn(1, IpAddr::V4(H2), H2_MAC);
    r.learn(0, IpAddr::V4(H1), H1_MAC);
    let good = udp4(H1, H2, 1000, 2000, 64, 40);
    let fix = |f: &mut Vec<u8>| {
        let hl = usize::from(f[14] & 15) * 4;
        if f.len() >= 14 + hl && hl >= 20 {
            f[24..26].copy_from_slice(&[0, 0]);
            let c = checksum::checksum(&f[14..14 + hl]);
            f[24..26].copy_from_slice(&c.to_be_bytes());
        }
    };
    let mut cases: Vec<(String, Vec<u8>, Drop)> = Vec::new();
    // Truncated at every length: runts, then cut IPv4 headers, then short payloads.
    for n in 0..good.len() {
        let why = if n < 14 {
            Drop::EthTruncated
        } else {
            Drop::Ip4Malformed
        };
        cases.push((format!("truncated to {n}"), good[..n].to_vec(), why));
    }
    for ihl in [0u8, 1, 4] {
        let mut f = good.clone();
        f[14] = 0x40 | ihl;
        cases.push((format!("IHL {ihl}"), f, Drop::Ip4Malformed));
    }
    let mut f = udp4(H1, H2, 1000, 2000, 64, 12);
    f[14] = 0x4f; // IHL 15: a 60-byte header, longer than the 40-byte packet
    fix(&mut f);
    cases.push(("IHL beyond total length".into(), f, Drop::Ip4Malformed));
    let mut f = good.clone();
    f[16..18].copy_from_slice(&2000u16.to_be_bytes());
    fix(&mut f);
    cases.push((
        "total length beyond the frame".into(),
        f,
        Drop::Ip4Malformed,
    ));
    let mut f = good.clone();
    f[16..18].copy_from_slice(&19u16.to_be_bytes());
    fix(&mut f);
    cases.push((
        "total length below the header".into(),
        f,
        Drop::Ip4Malformed,
    ));
    let mut f = good.clone();
    f[24] ^= 0x55;
    cases.push(("bad header checksum".into(), f, Drop::Ip4BadChecksum));
    let mut f = good.clone();
    f[14] = 0x65;
    cases.push((
        "version 6 in an IPv4 ethertype".into(),
        f,
        Drop::Ip4Malformed,
    ));
    for ttl in [0u8, 1] {
        let mut f = good.clone();
        f[22] = ttl;
        fix(&mut f);
        cases.push((format!("TTL {ttl}"), f, Drop::Ip4TtlExpired));
    }
    for (src, why) in [
        ([0u8, 1, 2, 3], Drop::Ip4MartianSrc),
        ([127, 0, 0, 1], Drop::Ip4MartianSrc),
        ([224, 0, 0, 1], Drop::Ip4MartianSrc),
        ([255, 255, 255, 255], Drop::Ip4MartianSrc),
    ] {
        let mut f = good.clone();
        f[26..30].copy_from_slice(&src);
        fix(&mut f);
        cases.push((format!("source {src:?}"), f, why));
    }
    for (dst, why) in [
        ([0u8, 1, 2, 3], Drop::Ip4MartianDst),
        ([127, 0, 0, 1], Drop::Ip4MartianDst),
        ([239, 1, 2, 3], Drop::Ip4Multicast),
    ] {
        let mut f = good.clone();
        f[30..34].copy_from_slice(&dst);
        fix(&mut f);
        cases.push((format!("destination {dst:?}"), f, why));
    }
    for (tags, name) in [(1, "one VLAN tag"), (2, "QinQ")] {
        let mut f = good[..12].to_vec();
        for _ in 0..tags {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
        }
        f.extend_from_slice(&good[12..]);
        cases.push((name.into(), f, Drop::EthTaggedOnRoutedPort));
    }
    let mut f = good.clone();
    f[12..14].copy_from_slice(&[0x88, 0xcc]);
    cases.push(("LLDP ethertype".into(), f, Drop::EthUnknownType));
    let mut f = good.clone();
    f[0..6].copy_from_slice(&[0x01, 0x00, 0x5e, 0, 0, 1]);
    cases.push(("IPv4 multicast MAC".into(), f, Drop::EthMulticastNotJoined));
    let mut f = ipv6_udp(
        "2001:2:0:1::2".parse().unwrap(),
        "2001:2:0:2::2".parse().unwrap(),
        64,
        10,
    );
    f[18..20].copy_from_slice(&4000u16.to_be_bytes());
    cases.push((
        "IPv6 payload length beyond the frame".into(),
        f,
        Drop::Ip6Malformed,
    ));
    let f = ipv6_udp(
        "fe80::1".parse().unwrap(),
        "2001:2:0:2::2".parse().unwrap(),
        64,
        10,
    );
    cases.push(("IPv6 link-local source".into(), f, Drop::Ip6LinkLocal));
    let f = ipv6_udp(
        "::1".parse().unwrap(),
        "2001:2:0:2::2".parse().unwrap(),
        64,
        10,
    );
    cases.push(("IPv6 loopback source".into(), f, Drop::Ip6Martian));
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&H1_MAC);
    cases.push((
        "truncated ARP".into(),
        eth([0xff; 6], H1_MAC, 0x0806, &arp),
        Drop::ArpMalformed,
    ));

    for (name, frame, why) in cases {
        let before = r.drops(why);
        let total_before: u64 = Drop::ALL.iter().map(|d| r.drops(*d)).sum();
        if frame.is_empty() {
            // A zero-length frame cannot exist on the wire; the port refuses nothing else.
            continue;
        }
        r.inject(0, &frame);
        r.run();
        assert_eq!(
            r.drops(why),
            before + 1,
            "{name}: not counted as {}",
            why.name()
        );
        let total: u64 = Drop::ALL.iter().map(|d| r.drops(*d)).sum();
        // ICMP errors may add their own suppression counters; nothing else is dropped.
        assert!(
            total - total_before <= 2,
            "{name}: {} drops",
            total - total_before
        );
        assert!(
            r.sent(1).is_empty(),
            "{name}: something reached the far port"
        );
        for back in r.sent(0) {
            // Only ICMP errors may come back (TTL expiry).
            assert_eq!(back[23], 1, "{name}: a non-ICMP answer");
        }
    }
    r.finish();
}

/// The kernel's XDP_STATISTICS reach `ctl stats` through the worker's
/// counters: frames the full RX ring refused are counted on their port.
#[test]
fn the_worker_publishes_its_sockets_xdp_statistics() {
    let mut r = rig();
    r.w.poll_once();
    let f = udp4(H1, H2, 1000, 2000, 64, 100);
    let (umem, socks) = r.w.split();
    let mut refused = 0;
    for _ in 0..300 {
        refused += u64::from(!socks[0].io.inject(umem, &f));
    }
    assert!(refused > 0, "the in-memory RX ring holds 256");
    std::thread::sleep(std::time::Duration::from_millis(110));
    r.run();
    let x = r.shared.xdp(0);
    assert_eq!(
        x.iter().find(|(n, _)| *n == "rx_ring_full").map(|f| f.1),
        Some(refused),
        "{x:?}"
    );
    assert!(r.shared.xdp(1).iter().all(|(_, v)| *v == 0));
    r.finish();
}

#[test]
fn busy_time_counts_the_iterations_that_found_work_only() {
    use std::sync::atomic::Ordering;
    let mut r = rig();
    r.learn(1, IpAddr::V4(H2), H2_MAC);
    // Idle iterations: no busy time, however long they take.
    for _ in 0..3 {
        r.w.poll_once();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    r.w.poll_once();
    assert_eq!(r.shared.busy_ns.load(Ordering::Relaxed), 0);
    // A busy iteration is timed from its start to the next iteration's start.
    r.inject(0, &udp4(H1, H2, 1000, 2000, 64, 100));
    assert_eq!(r.w.poll_once(), 1);
    std::thread::sleep(std::time::Duration::from_millis(5));
    r.w.poll_once();
    let busy = r.shared.busy_ns.load(Ordering::Relaxed);
    assert!(busy >= 5_000_000, "busy {busy} ns");
    // Idle again: it stays.
    r.w.poll_once();
    std::thread::sleep(std::time::Duration::from_millis(2));
    r.w.poll_once();
    assert_eq!(r.shared.busy_ns.load(Ordering::Relaxed), busy);
    r.finish();
}
