//! The NAT in the whole pipeline on in-memory ports: two workers sharing
//! the tables (each with its own UMEM, as real workers), frames injected on
//! the worker the kernel would have chosen, translated by the owner, with
//! checksums verified and the frame ledger checked at the end.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::conntrack::rewrite::{classify, Ep, Kind, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::context::counters::{Drop, SharedCounters, Stage};
use crate::context::dump::{Collector, Mode, SLICE};
use crate::context::events;
use crate::context::tables::{Interfaces, PortInfo, Routes};
use crate::control::config::{PollMode, PortMode};
use crate::dataplane::tables::Tables;
use crate::dataplane::worker::{Socket, Worker, WorkerConfig};
use crate::l3::route_table::RouteTable;
use crate::nat::{Filtering, Forward, NatConfig, NatShared, Role, SessionInfo};
use crate::neighbor::{NeighborKey, NeighborTable};
use crate::runtime::setup::connected_route;
use crate::wire::checksum;
use crate::wire::Mac;
use crate::xsk::{MemPort, MemPortConfig, Umem, UmemConfig};

const LAN_MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];
const WAN_MAC: Mac = [0x02, 0, 0, 0, 0, 0x02];
const H1_MAC: Mac = [0x02, 0x11, 0, 0, 0, 0x01];
const H3_MAC: Mac = [0x02, 0x33, 0, 0, 0, 0x03];
const H2_MAC: Mac = [0x02, 0x22, 0, 0, 0, 0x02];
const H1: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const H3: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 3);
const H2: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 2);
const FAR: Ipv4Addr = Ipv4Addr::new(198, 19, 7, 7);
const NAT: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 1);
const LAN: u16 = 0;
const WAN: u16 = 1;

struct Rig {
    workers: Vec<Worker<MemPort>>,
    tables: Arc<Tables>,
    counters: Vec<Arc<SharedCounters>>,
    _rt: RouteTable,
}

fn port(i: u16, name: &str, mac: Mac, v4: (&str, u8)) -> PortInfo {
    PortInfo {
        index: i,
        name: name.into(),
        interface: format!("mem{i}"),
        mac,
        mtu: 1500,
        mode: PortMode::Router,
        v4: vec![(v4.0.parse().unwrap(), v4.1)],
        v6: vec![],
    }
}

fn rig(workers: u16, edit: impl FnOnce(&mut NatConfig)) -> Rig {
    rig_with(workers, edit, None)
}

/// A rig whose two ports have the NIC RSS model `rss` (both ports alike).
fn rig_with(
    workers: u16,
    edit: impl FnOnce(&mut NatConfig),
    rss: Option<Arc<crate::rss::Rss>>,
) -> Rig {
    let ifs = Interfaces::new(vec![
        port(LAN, "lan", LAN_MAC, ("198.18.1.1", 24)),
        port(WAN, "wan", WAN_MAC, ("198.19.1.1", 24)),
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
    rt.stage_add(
        crate::l3::routes_file::parse_line("198.19.7.0/24 via 198.19.1.2")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    rt.publish();
    let routes = Routes::resolve(rt.reader().snapshot().clone(), &ifs);
    let mut neigh = NeighborTable::new(30_000, 120_000);
    for (p, ip, mac) in [(LAN, H1, H1_MAC), (LAN, H3, H3_MAC), (WAN, H2, H2_MAC)] {
        neigh.learn(
            NeighborKey {
                port: p,
                ip: IpAddr::V4(ip),
            },
            mac,
            0,
            true,
        );
    }
    let mut cfg = NatConfig {
        pool: vec![NAT],
        ..Default::default()
    };
    edit(&mut cfg);
    let shared = NatShared::new(cfg, vec![Role::Inside, Role::Outside], workers)
        .with_rss(vec![rss.clone(), rss]);
    let tables = Arc::new(
        Tables::new(ifs, routes, neigh.map())
            .with_nat(shared)
            .with_handoff(workers, false)
            .unwrap(),
    );
    let mut ws = Vec::new();
    let mut counters = Vec::new();
    for id in 0..workers {
        let umem = Umem::new(UmemConfig {
            frame_size: 2048,
            frame_count: 2048,
            huge_pages: false,
            headroom: 0,
        })
        .unwrap();
        let sockets = (0..2)
            .map(|i| Socket {
                port: i,
                io: MemPort::new(&format!("w{id}p{i}"), &umem, MemPortConfig::default()),
            })
            .collect();
        let c = Arc::new(SharedCounters::default());
        let (sink, _rx) = events::channel(1024);
        let cfg = WorkerConfig {
            id,
            poll: PollMode::Busy,
            idle_timeout: std::time::Duration::from_millis(1),
        };
        let mut w = Worker::new(cfg, umem, sockets, tables.clone(), c.clone(), sink);
        w.prime();
        ws.push(w);
        counters.push(c);
    }
    Rig {
        workers: ws,
        tables,
        counters,
        _rt: rt,
    }
}

impl Rig {
    /// A frame arrives on `port` of worker `w`; every worker then runs a few loops.
    fn inject(&mut self, w: usize, port: usize, frame: &[u8]) {
        let (umem, socks) = self.workers[w].split();
        assert!(socks[port].io.inject(umem, frame), "inject refused");
        self.run();
    }

    fn run(&mut self) {
        for _ in 0..4 {
            for w in &mut self.workers {
                w.poll_once();
            }
        }
    }

    /// Every frame sent on `port` by any worker, with the worker's id.
    fn sent(&mut self, port: usize) -> Vec<(usize, Vec<u8>)> {
        let mut v = Vec::new();
        for (i, w) in self.workers.iter_mut().enumerate() {
            let (umem, socks) = w.split();
            socks[port]
                .io
                .take_sent(umem, usize::MAX, |b| v.push((i, b.to_vec())));
        }
        v
    }

    fn one(&mut self, port: usize) -> (usize, Vec<u8>) {
        let mut s = self.sent(port);
        assert_eq!(
            s.len(),
            1,
            "one frame expected on port {port}: {} (drops {:?})",
            s.len(),
            self.nonzero_drops()
        );
        s.remove(0)
    }

    fn drops(&self, d: Drop) -> u64 {
        self.counters.iter().map(|c| c.drop_count(d)).sum()
    }

    fn stage(&self, s: Stage) -> u64 {
        self.counters.iter().map(|c| c.stage_count(s)).sum()
    }

    fn nonzero_drops(&self) -> Vec<(&'static str, u64)> {
        Drop::ALL
            .iter()
            .map(|&d| (d.name(), self.drops(d)))
            .filter(|&(_, n)| n > 0)
            .collect()
    }

    /// `ctl nat show` (or `flush`) as the control thread runs it, every
    /// worker looping once between polls; checks that one loop hands over at
    /// most one slice. The rows, in the order they came.
    fn dump(&mut self, mode: Mode) -> Vec<SessionInfo> {
        self.dump_while(mode, |_| {})
    }

    /// [`Rig::dump`], running `between(self)` before every loop of the workers.
    fn dump_while(&mut self, mode: Mode, mut between: impl FnMut(&mut Rig)) -> Vec<SessionInfo> {
        let nat = self.tables.nat.clone().unwrap();
        let mut c = Collector::start(&nat.dumps, mode).unwrap();
        let mut rows = Vec::new();
        for _ in 0..100_000 {
            between(self);
            for w in &mut self.workers {
                w.poll_once();
            }
            let p = c.poll();
            assert!(
                p.rows.len() <= SLICE * self.workers.len(),
                "one slice per worker and loop, got {}",
                p.rows.len()
            );
            assert!(p.silent.is_empty(), "a worker did not answer");
            rows.extend(p.rows.into_iter().map(|(_, r)| r));
            if p.done {
                return rows;
            }
        }
        panic!("the dump did not end");
    }

    /// Flows from h1 port `sp` to h2 ports `dports` (one session each), a burst at a time.
    fn flows(&mut self, sp: u16, dports: std::ops::Range<u16>) {
        let ports: Vec<u16> = dports.collect();
        for burst in ports.chunks(64) {
            let (umem, socks) = self.workers[0].split();
            for &dp in burst {
                assert!(
                    socks[0].io.inject(umem, &from_h1(sp, H2, dp)),
                    "inject refused"
                );
            }
            self.run();
            self.sent(1);
        }
    }

    fn finish(mut self) {
        self.sent(0);
        self.sent(1);
        for w in &mut self.workers {
            w.poll_once();
            let c = w.umem().check();
            assert!(c.is_ok(), "{c:?}");
        }
        let h = self.tables.handoff.as_ref().unwrap();
        for w in 0..self.workers.len() as u16 {
            assert_eq!(h.pending(w), 0);
        }
    }
}

fn eth(dst: Mac, src: Mac, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(payload);
    f
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, proto: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![
        0x45,
        0,
        0,
        0,
        0xbe,
        0xef,
        (frag >> 8) as u8,
        frag as u8,
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

fn l4_sum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, seg: &[u8]) -> u16 {
    checksum::combine(&[
        checksum::pseudo_header_v4(&src.octets(), &dst.octets(), proto, seg.len() as u16),
        checksum::data(seg),
    ])
}

fn udp(src: Ipv4Addr, dst: Ipv4Addr, sp: u16, dp: u16, body: &[u8]) -> Vec<u8> {
    let mut u = vec![0u8; 8];
    u[0..2].copy_from_slice(&sp.to_be_bytes());
    u[2..4].copy_from_slice(&dp.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    u.extend_from_slice(body);
    let c = checksum::udp_nonzero(!l4_sum(src, dst, PROTO_UDP, &u));
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

fn tcp(src: Ipv4Addr, dst: Ipv4Addr, sp: u16, dp: u16, flags: u8) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sp.to_be_bytes());
    t[2..4].copy_from_slice(&dp.to_be_bytes());
    t[12] = 0x50;
    t[13] = flags;
    let c = !l4_sum(src, dst, PROTO_TCP, &t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

fn from_h1(sp: u16, dst: Ipv4Addr, dp: u16) -> Vec<u8> {
    eth(
        LAN_MAC,
        H1_MAC,
        &ipv4(H1, dst, 64, PROTO_UDP, 0, &udp(H1, dst, sp, dp, b"ping")),
    )
}

fn from_h2(sp: u16, dp: u16) -> Vec<u8> {
    eth(
        WAN_MAC,
        H2_MAC,
        &ipv4(H2, NAT, 64, PROTO_UDP, 0, &udp(H2, NAT, sp, dp, b"pong")),
    )
}

/// IP header and L4 checksums both verify.
fn valid(f: &[u8]) -> bool {
    let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
    let ip = &f[14..14 + total];
    let hl = usize::from(ip[0] & 15) * 4;
    if checksum::data(&ip[..hl]) != 0xffff {
        return false;
    }
    let (s, d) = (
        Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
    );
    let l4 = &ip[hl..];
    match ip[9] {
        PROTO_UDP | PROTO_TCP => l4_sum(s, d, ip[9], l4) == 0xffff,
        PROTO_ICMP => checksum::data(l4) == 0xffff,
        _ => true,
    }
}

fn kind(f: &[u8]) -> Kind {
    classify(&f[14..])
}

fn ep(a: Ipv4Addr, p: u16) -> Ep {
    Ep::new(u32::from(a), p)
}

#[test]
fn udp_out_and_back_on_one_worker() {
    let mut r = rig(1, |_| {});
    r.inject(0, 0, &from_h1(40000, H2, 7));
    let (_, o) = r.one(1);
    assert!(valid(&o));
    assert_eq!(&o[0..6], &H2_MAC);
    assert_eq!(o[14 + 8], 63, "TTL decremented once");
    assert_eq!(
        kind(&o),
        Kind::Ports {
            proto: PROTO_UDP,
            src: ep(NAT, 40000),
            dst: ep(H2, 7),
            tcp_flags: 0
        }
    );
    r.inject(0, 1, &from_h2(7, 40000));
    let (_, b) = r.one(0);
    assert!(valid(&b));
    assert_eq!(&b[0..6], &H1_MAC);
    assert_eq!(
        kind(&b),
        Kind::Ports {
            proto: PROTO_UDP,
            src: ep(H2, 7),
            dst: ep(H1, 40000),
            tcp_flags: 0
        }
    );
    // From another port of the same remote host: filtered (address and port dependent).
    r.inject(0, 1, &from_h2(8, 40000));
    assert!(r.sent(0).is_empty());
    assert_eq!(r.drops(Drop::NatFiltered), 1);
    // To a port nobody mapped: the engine's own address answers (Port Unreachable).
    r.inject(0, 1, &from_h2(7, 50000));
    let (_, u) = r.one(1);
    assert_eq!(u[14 + 9], PROTO_ICMP);
    assert_eq!(u[14 + 20], 3, "destination unreachable");
    assert_eq!(r.stage(Stage::NatOut), 1);
    assert_eq!(r.stage(Stage::NatIn), 1);
    r.finish();
}

#[test]
fn two_workers_hand_each_flow_to_its_owner() {
    let mut r = rig(2, |_| {});
    // Inside port 40001 belongs to worker 1; the frame arrives on worker 0.
    r.inject(0, 0, &from_h1(40001, H2, 7));
    let (w, o) = r.one(1);
    assert_eq!(w, 1, "the owner sends it");
    assert!(valid(&o));
    assert_eq!(
        kind(&o),
        Kind::Ports {
            proto: PROTO_UDP,
            src: ep(NAT, 40001),
            dst: ep(H2, 7),
            tcp_flags: 0
        }
    );
    // The reply arrives on worker 0 too: handed to worker 1, which has the session.
    r.inject(0, 1, &from_h2(7, 40001));
    let (w, b) = r.one(0);
    assert_eq!(w, 1);
    assert_eq!(
        kind(&b),
        Kind::Ports {
            proto: PROTO_UDP,
            src: ep(H2, 7),
            dst: ep(H1, 40001),
            tcp_flags: 0
        }
    );
    assert_eq!(r.stage(Stage::Handoff), 2);
    // Many flows, arriving on both workers: every one translates both ways,
    // external ports of worker w are the ports it owns (`nat::port_owner`).
    for sp in 42000..42040u16 {
        let arrive = usize::from(sp % 3 == 0);
        r.inject(arrive, 0, &from_h1(sp, H2, 9));
        let (w, o) = r.one(1);
        let Kind::Ports { src, .. } = kind(&o) else {
            panic!()
        };
        assert_eq!(usize::from(crate::nat::port_owner(src.port, 2)), w);
        r.inject(1 - arrive, 1, &from_h2(9, src.port));
        let (_, b) = r.one(0);
        assert_eq!(
            kind(&b),
            Kind::Ports {
                proto: PROTO_UDP,
                src: ep(H2, 9),
                dst: ep(H1, sp),
                tcp_flags: 0
            }
        );
    }
    let nat = r.tables.nat.clone().unwrap();
    for w in &mut r.workers {
        w.poll_once();
    }
    r.run();
    let _ = nat;
    r.finish();
}

#[test]
fn echo_ids_and_icmp_errors_are_translated_both_ways() {
    let mut r = rig(1, |_| {});
    // Echo request from h1 with id 9 (below the range: moved into it).
    let mut m = vec![8, 0, 0, 0, 0, 9, 0, 1, b'x', b'y'];
    let c = checksum::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    r.inject(
        0,
        0,
        &eth(LAN_MAC, H1_MAC, &ipv4(H1, H2, 64, PROTO_ICMP, 0, &m)),
    );
    let (_, o) = r.one(1);
    assert!(valid(&o));
    let Kind::Echo {
        src, request: true, ..
    } = kind(&o)
    else {
        panic!("{:?}", kind(&o))
    };
    assert_eq!(src.addr, u32::from(NAT));
    let id = src.port;
    assert!(id >= 1024);
    // The reply comes back with the translated id.
    let mut rep = o[14 + 20..].to_vec();
    rep[0] = 0;
    rep[2..4].fill(0);
    let c = checksum::checksum(&rep);
    rep[2..4].copy_from_slice(&c.to_be_bytes());
    r.inject(
        0,
        1,
        &eth(WAN_MAC, H2_MAC, &ipv4(H2, NAT, 64, PROTO_ICMP, 0, &rep)),
    );
    let (_, b) = r.one(0);
    assert!(valid(&b));
    assert_eq!(
        kind(&b),
        Kind::Echo {
            src: ep(H2, 9),
            dst: ep(H1, 9),
            request: false
        }
    );

    // A UDP probe to a far host dies at h2 (a router): its Time Exceeded,
    // quoting the translated packet, comes back to h1 about h1's packet.
    r.inject(0, 0, &from_h1(33434, FAR, 33434));
    let (_, probe) = r.one(1);
    let mut body = vec![11, 0, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&probe[14..]);
    let c = checksum::checksum(&body);
    body[2..4].copy_from_slice(&c.to_be_bytes());
    r.inject(
        0,
        1,
        &eth(WAN_MAC, H2_MAC, &ipv4(H2, NAT, 64, PROTO_ICMP, 0, &body)),
    );
    let (_, te) = r.one(0);
    assert!(valid(&te), "outer checksums");
    assert_eq!(
        kind(&te),
        Kind::IcmpError {
            outer_src: u32::from(H2),
            outer_dst: u32::from(H1),
            proto: PROTO_UDP,
            inner_src: ep(H1, 33434),
            inner_dst: ep(FAR, 33434)
        }
    );
    let inner = &te[14 + 28..];
    assert!(
        checksum::data(&inner[..20]) == 0xffff,
        "quoted header checksum"
    );
    assert_eq!(inner[8], 63, "the quoted TTL is the one h2 saw");
    // An error about a flow nobody mapped goes to the engine itself (ignored).
    let mut stray = vec![3, 3, 0, 0, 0, 0, 0, 0];
    stray.extend_from_slice(&ipv4(
        NAT,
        H2,
        64,
        PROTO_UDP,
        0,
        &udp(NAT, H2, 5555, 53, b""),
    ));
    r.inject(
        0,
        1,
        &eth(WAN_MAC, H2_MAC, &ipv4(H2, NAT, 64, PROTO_ICMP, 0, &stray)),
    );
    assert!(r.sent(0).is_empty());
    r.finish();
}

#[test]
fn an_inside_host_reports_an_error_about_a_translated_flow() {
    let mut r = rig(1, |c| c.filtering = Filtering::EndpointIndependent);
    r.inject(0, 0, &from_h1(40000, H2, 7));
    r.one(1);
    r.inject(0, 1, &from_h2(7, 40000));
    let (_, b) = r.one(0);
    // h1 answers Port Unreachable quoting what it received.
    let mut body = vec![3, 3, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&b[14..]);
    let c = checksum::checksum(&body);
    body[2..4].copy_from_slice(&c.to_be_bytes());
    r.inject(
        0,
        0,
        &eth(LAN_MAC, H1_MAC, &ipv4(H1, H2, 64, PROTO_ICMP, 0, &body)),
    );
    let (_, e) = r.one(1);
    assert!(valid(&e));
    assert_eq!(
        kind(&e),
        Kind::IcmpError {
            outer_src: u32::from(NAT),
            outer_dst: u32::from(H2),
            proto: PROTO_UDP,
            inner_src: ep(H2, 7),
            inner_dst: ep(NAT, 40000)
        }
    );
    r.finish();
}

#[test]
fn tcp_unsolicited_syn_is_dropped_and_a_forward_admits_it() {
    let fwd = Forward {
        proto: PROTO_TCP,
        outside: ep(NAT, 8080),
        inside: ep(H1, 80),
    };
    let mut r = rig(2, |c| c.forwards = vec![fwd]);
    // A SYN to an unmapped port of the engine's address: the engine's, dropped (no TCP there).
    r.inject(
        0,
        1,
        &eth(
            WAN_MAC,
            H2_MAC,
            &ipv4(H2, NAT, 64, PROTO_TCP, 0, &tcp(H2, NAT, 5000, 22, 0x02)),
        ),
    );
    assert!(r.sent(0).is_empty());
    // Through the forward, on either worker, without a handoff.
    for w in 0..2 {
        let sp = 5001 + w as u16;
        r.inject(
            w,
            1,
            &eth(
                WAN_MAC,
                H2_MAC,
                &ipv4(H2, NAT, 64, PROTO_TCP, 0, &tcp(H2, NAT, sp, 8080, 0x02)),
            ),
        );
        let (sw, o) = r.one(0);
        assert_eq!(sw, w);
        assert!(valid(&o));
        assert_eq!(
            kind(&o),
            Kind::Ports {
                proto: PROTO_TCP,
                src: ep(H2, sp),
                dst: ep(H1, 80),
                tcp_flags: 0x02
            }
        );
        // The SYN-ACK leaves from the forwarded endpoint.
        r.inject(
            1 - w,
            0,
            &eth(
                LAN_MAC,
                H1_MAC,
                &ipv4(H1, H2, 64, PROTO_TCP, 0, &tcp(H1, H2, 80, sp, 0x12)),
            ),
        );
        let (_, a) = r.one(1);
        assert_eq!(
            kind(&a),
            Kind::Ports {
                proto: PROTO_TCP,
                src: ep(NAT, 8080),
                dst: ep(H2, sp),
                tcp_flags: 0x12
            }
        );
    }
    assert_eq!(r.stage(Stage::Handoff), 0);
    r.finish();
}

#[test]
fn hairpin_through_a_forward_shows_the_outside_source() {
    let fwd = Forward {
        proto: PROTO_TCP,
        outside: ep(NAT, 8080),
        inside: ep(H1, 80),
    };
    for workers in [1, 2] {
        let mut r = rig(workers, |c| c.forwards = vec![fwd]);
        // h3 connects to the forward's outside endpoint.
        r.inject(
            0,
            0,
            &eth(
                LAN_MAC,
                H3_MAC,
                &ipv4(H3, NAT, 64, PROTO_TCP, 0, &tcp(H3, NAT, 40003, 8080, 0x02)),
            ),
        );
        let (_, o) = r.one(0);
        assert_eq!(&o[0..6], &H1_MAC, "back out of the lan port to h1");
        assert!(valid(&o));
        let Kind::Ports { src, dst, .. } = kind(&o) else {
            panic!()
        };
        assert_eq!(dst, ep(H1, 80));
        assert_eq!(src, ep(NAT, 40003), "h1 sees h3's outside endpoint");
        // h1's answer goes back the same way.
        r.inject(
            0,
            0,
            &eth(
                LAN_MAC,
                H1_MAC,
                &ipv4(H1, NAT, 64, PROTO_TCP, 0, &tcp(H1, NAT, 80, 40003, 0x12)),
            ),
        );
        let (_, a) = r.one(0);
        assert_eq!(&a[0..6], &H3_MAC);
        assert!(valid(&a));
        assert_eq!(
            kind(&a),
            Kind::Ports {
                proto: PROTO_TCP,
                src: ep(NAT, 8080),
                dst: ep(H3, 40003),
                tcp_flags: 0x12
            }
        );
        r.finish();
    }
}

#[test]
fn later_fragments_follow_the_first_across_workers() {
    let mut r = rig(2, |_| {});
    // A 1200-byte UDP datagram in two fragments from h1, inside port 40001 (worker 1's), arriving on worker 0.
    let body: Vec<u8> = (0..1200u32).map(|i| i as u8).collect();
    let dgram = udp(H1, H2, 40001, 9, &body);
    let (a, b) = dgram.split_at(800);
    r.inject(
        0,
        0,
        &eth(LAN_MAC, H1_MAC, &ipv4(H1, H2, 64, PROTO_UDP, 0x2000, a)),
    );
    r.inject(
        0,
        0,
        &eth(LAN_MAC, H1_MAC, &ipv4(H1, H2, 64, PROTO_UDP, 100, b)),
    );
    let out = r.sent(1);
    assert_eq!(out.len(), 2, "{:?}", r.nonzero_drops());
    for (w, f) in &out {
        assert_eq!(*w, 1);
        assert_eq!(&f[14 + 12..14 + 16], &NAT.octets());
        assert!(checksum::data(&f[14..34]) == 0xffff);
    }
    // Reassembled, the datagram's UDP checksum holds for the new source.
    let mut whole = out[0].1[34..].to_vec();
    whole.extend_from_slice(&out[1].1[34..]);
    assert_eq!(l4_sum(NAT, H2, PROTO_UDP, &whole), 0xffff);
    // A later fragment of a datagram never seen: dropped.
    let mut stray = ipv4(H1, H2, 64, PROTO_UDP, 200, b);
    stray[4] = 0x77;
    stray[10..12].fill(0);
    let c = checksum::checksum(&stray[..20]);
    stray[10..12].copy_from_slice(&c.to_be_bytes());
    r.inject(1, 0, &eth(LAN_MAC, H1_MAC, &stray));
    assert!(r.sent(1).is_empty());
    assert_eq!(r.drops(Drop::NatFragNoState), 1);
    r.finish();
}

#[test]
fn host_limit_and_exhaustion_are_counted_and_may_answer() {
    let mut r = rig(1, |c| {
        c.max_per_host = 2;
        c.port_lo = 2000;
        c.port_hi = 2002;
        c.icmp_on_exhaustion = true;
    });
    for sp in [2000, 2001] {
        r.inject(0, 0, &from_h1(sp, H2, 7));
        r.one(1);
    }
    r.inject(0, 0, &from_h1(2002, H2, 7));
    assert!(r.sent(1).is_empty());
    assert_eq!(r.drops(Drop::NatHostLimit), 1);
    let (_, p) = r.one(0);
    assert_eq!(
        (p[14 + 20], p[14 + 21]),
        (3, 13),
        "administratively prohibited to h1"
    );
    // h3 gets the last port, then the range is exhausted.
    let h3 = |sp| {
        eth(
            LAN_MAC,
            H3_MAC,
            &ipv4(H3, H2, 64, PROTO_UDP, 0, &udp(H3, H2, sp, 7, b"x")),
        )
    };
    r.inject(0, 0, &h3(5000));
    r.one(1);
    r.inject(0, 0, &h3(5001));
    assert_eq!(r.drops(Drop::NatExhausted), 1);
    r.finish();
}

#[test]
fn sessions_expire_and_the_dump_shows_them() {
    let mut r = rig(1, |c| c.timeouts.udp_ms = 50);
    r.inject(0, 0, &from_h1(40000, H2, 7));
    r.one(1);
    let nat = r.tables.nat.clone().unwrap();
    let rows = r.dump(Mode::Show);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].inside, rows[0].outside, rows[0].remote),
        (ep(H1, 40000), ep(NAT, 40000), ep(H2, 7))
    );
    std::thread::sleep(std::time::Duration::from_millis(80));
    r.run();
    assert!(r.dump(Mode::Show).is_empty());
    assert_eq!(nat.totals(), (0, 0));
    // The reply after expiry is refused (the engine's own address: Port Unreachable to h2).
    r.inject(0, 1, &from_h2(7, 40000));
    assert!(r.sent(0).is_empty());
    r.finish();
}

/// 5,000 sessions: `ctl nat show` lists each once, a slice of at most
/// `SLICE` (256) slots per worker loop (20 loops), not the whole table in one.
#[test]
fn a_dump_goes_a_slice_per_loop_and_lists_every_session_once() {
    let mut r = rig(1, |_| {});
    for sp in 40000..40005 {
        r.flows(sp, 1000..2000);
    }
    let mut loops = 0;
    let rows = r.dump_while(Mode::Show, |_| loops += 1);
    assert_eq!(
        loops,
        5000usize.div_ceil(SLICE),
        "5,000 slots: a slice per loop"
    );
    let keys: std::collections::BTreeSet<(u16, u16)> = rows
        .iter()
        .map(|s| (s.inside.port, s.remote.port))
        .collect();
    assert_eq!((rows.len(), keys.len()), (5000, 5000), "each session once");
    assert!(rows.iter().all(|s| s.inside.addr == u32::from(H1)
        && s.outside.addr == u32::from(NAT)
        && s.remote.addr == u32::from(H2)));
    r.finish();
}

/// Traffic creates and (by expiry) removes sessions while the dump runs:
/// every session alive throughout is listed, none twice.
#[test]
fn a_dump_during_traffic_lists_every_lasting_session_once() {
    let mut r = rig(1, |c| c.timeouts.udp_ms = 60_000);
    for sp in 40000..40004 {
        r.flows(sp, 1000..2000);
    }
    let before = r.dump(Mode::Show).len();
    assert_eq!(before, 4000);
    // New flows during the dump, 16 per loop (a burst that is not full: a
    // slice every loop).
    let mut next = 0u16;
    let rows = r.dump_while(Mode::Show, |r| {
        let (umem, socks) = r.workers[0].split();
        for _ in 0..16 {
            assert!(socks[0].io.inject(umem, &from_h1(41000, H2, 1000 + next)));
            next += 1;
        }
        r.sent(1);
    });
    let mut seen = std::collections::BTreeMap::new();
    for s in &rows {
        *seen.entry((s.inside.port, s.remote.port)).or_insert(0) += 1;
    }
    assert!(seen.values().all(|&n| n == 1), "no session twice");
    for sp in 40000..40004 {
        for dp in 1000..2000 {
            assert!(
                seen.contains_key(&(sp, dp)),
                "{sp}->{dp} lived throughout and is missing"
            );
        }
    }
    assert!(next > 0);
    r.run();
    r.sent(1);
    assert_eq!(
        r.dump(Mode::Show).len(),
        4000 + usize::from(next),
        "the new ones are there after"
    );
    r.finish();
}

/// `ctl nat flush` goes a slice per loop too: every dynamic session and
/// mapping gone, the static forward's mapping kept.
#[test]
fn a_flush_goes_a_slice_per_loop_and_keeps_the_forwards() {
    let fwd = Forward {
        proto: PROTO_TCP,
        outside: ep(NAT, 8080),
        inside: ep(H1, 8000),
    };
    let mut r = rig(1, |c| c.forwards = vec![fwd]);
    for sp in 40000..40003 {
        r.flows(sp, 1000..2000);
    }
    let nat = r.tables.nat.clone().unwrap();
    assert_eq!(r.dump(Mode::Show).len(), 3000);
    let mut loops = 0;
    assert!(
        r.dump_while(Mode::Flush, |_| loops += 1).is_empty(),
        "a flush lists nothing"
    );
    assert_eq!(loops, 3000usize.div_ceil(SLICE));
    assert_eq!(
        nat.totals(),
        (0, 0),
        "the gauges say what is left when the flush ends (no dynamic mapping)"
    );
    assert!(r.dump(Mode::Show).is_empty());
    // The flows start again from scratch.
    r.inject(0, 0, &from_h1(40000, H2, 1000));
    r.one(1);
    assert_eq!(r.dump(Mode::Show).len(), 1);
    r.finish();
}

/// Two workers answer together; a session on each is listed with its worker.
#[test]
fn two_workers_answer_one_dump() {
    let mut r = rig(2, |_| {});
    r.flows(40000, 1000..1500);
    r.flows(40001, 1000..1500);
    assert_eq!(r.dump(Mode::Show).len(), 1000);
    r.finish();
}

/// A worker whose RX bursts come full (traffic waits in the ring) gives a
/// dump one slice per millisecond, not one per loop.
#[test]
fn a_worker_behind_on_traffic_takes_a_slice_per_millisecond() {
    let mut r = rig(1, |_| {});
    r.flows(40000, 1000..3000);
    let nat = r.tables.nat.clone().unwrap();
    let t0 = std::time::Instant::now();
    let mut c = Collector::start(&nat.dumps, Mode::Show).unwrap();
    let (mut loops, mut slices, mut rows) = (0, 0, 0);
    while !c.is_done() {
        let (umem, socks) = r.workers[0].split();
        for _ in 0..crate::xsk::BURST {
            assert!(socks[0].io.inject(umem, &from_h1(40000, H2, 1000)));
        }
        r.workers[0].poll_once();
        r.sent(1);
        loops += 1;
        let p = c.poll();
        slices += usize::from(!p.rows.is_empty());
        rows += p.rows.len();
    }
    let ms = t0.elapsed().as_millis();
    let want = 2000usize.div_ceil(SLICE);
    assert_eq!((rows, slices), (2000, want));
    // The worker's clock counts whole milliseconds: the first slice comes at once and the last
    // in the (want - 1)th tick after it, which may be barely more than want - 2 ms of real time.
    assert!(
        ms + 2 >= want as u128,
        "{want} slices, one per ms at most, in {ms} ms"
    );
    assert!(
        loops > slices,
        "some loops deferred the dump ({loops} loops)"
    );
    r.finish();
}

/// The worker a NIC with RSS `rss` (queue q to worker q % n) gives a UDP frame.
fn nic(rss: &crate::rss::Rss, n: u16, src: Ipv4Addr, dst: Ipv4Addr, sp: u16, dp: u16) -> usize {
    let q = rss.queue_v4(PROTO_UDP, u32::from(src), u32::from(dst), sp, dp);
    usize::from(crate::rss::queue_worker(q, n))
}

/// Flows injected where a real NIC's RSS would deliver them (the model of
/// the test, a 128-entry table over two queues): with the engine told the
/// NIC's RSS, no frame of either direction is handed between the workers
/// and each flow's outside port brings its reply to its owner; by port hash
/// (the engine told nothing, as on veth) about half of them are.
#[test]
fn with_the_nics_rss_no_frame_crosses_between_workers() {
    let model = Arc::new(
        crate::rss::Rss::new(
            crate::rss::MS_KEY.to_vec(),
            (0..128).map(|i| i % 2).collect(),
        )
        .unwrap(),
    );
    let mut share = Vec::new();
    for told in [false, true] {
        let mut r = rig_with(2, |_| {}, told.then(|| model.clone()));
        let flows = 300u16;
        for i in 0..flows {
            let sp = 20000 + i * 7;
            let w = nic(&model, 2, H1, H2, sp, 5000);
            r.inject(w, 0, &from_h1(sp, H2, 5000));
            let (owner, o) = r.one(1);
            let Kind::Ports { src, .. } = kind(&o) else {
                panic!("not translated")
            };
            if told {
                assert_eq!(owner, w, "the worker the NIC chose owns the flow");
                assert_eq!(
                    nic(&model, 2, H2, NAT, 5000, src.port),
                    owner,
                    "port {}",
                    src.port
                );
            }
            let back = nic(&model, 2, H2, NAT, 5000, src.port);
            r.inject(back, 1, &from_h2(5000, src.port));
            let (_, b) = r.one(0);
            assert!(valid(&b));
            assert_eq!(
                kind(&b),
                Kind::Ports {
                    proto: PROTO_UDP,
                    src: ep(H2, 5000),
                    dst: ep(H1, sp),
                    tcp_flags: 0
                }
            );
        }
        let handed = r.stage(Stage::Handoff);
        assert_eq!(
            handed,
            r.stage(Stage::HandoffIn),
            "every handed frame taken"
        );
        share.push(handed as f64 / f64::from(2 * flows));
        r.finish();
    }
    eprintln!(
        "frames handed between 2 workers: by port hash {:.1}%, by RSS {:.1}%",
        share[0] * 100.0,
        share[1] * 100.0
    );
    assert!(share[0] > 0.3, "by port hash about half cross: {share:?}");
    assert_eq!(share[1], 0.0, "with the NIC's RSS none does");
}
