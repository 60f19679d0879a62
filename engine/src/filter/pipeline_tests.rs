//! The stateful filter in the whole pipeline on in-memory ports: the
//! classic firewall (`ct state established,related accept`, `ct state
//! invalid drop`, `iif lan ct state new accept`, default drop on wan) for
//! IPv4 and IPv6, TCP, UDP and ICMP; on the NAT's table (one entry per
//! NATed flow) and on its own; two workers handing flows to their owner;
//! expiry; fragments; `ctl conn show`. Frame ledger checked at the end.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::conntrack::track::{ct_state, TrackConfig};
use crate::conntrack::ConnInfo;
use crate::context::counters::{Drop, SharedCounters};
use crate::context::dump::{Collector, Mode};
use crate::context::events;
use crate::context::tables::{Interfaces, PortInfo, Routes};
use crate::control::config::{PollMode, PortMode};
use crate::dataplane::tables::Tables;
use crate::dataplane::worker::{Socket, Worker, WorkerConfig};
use crate::filter::config::ConntrackConfig;
use crate::filter::conn::CtShared;
use crate::filter::rule::{Action, Rule};
use crate::filter::Filter;
use crate::l3::route_table::RouteTable;
use crate::nat::{NatConfig, NatShared, Role};
use crate::neighbor::{NeighborKey, NeighborTable};
use crate::runtime::setup::connected_route;
use crate::wire::checksum;
use crate::wire::Mac;
use crate::xsk::{MemPort, MemPortConfig, Umem, UmemConfig};

const LAN_MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];
const WAN_MAC: Mac = [0x02, 0, 0, 0, 0, 0x02];
const H1_MAC: Mac = [0x02, 0x11, 0, 0, 0, 0x01];
const H2_MAC: Mac = [0x02, 0x22, 0, 0, 0, 0x02];
const H1: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const H2: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 2);
const POOL: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 1);
const LAN: usize = 0;
const WAN: usize = 1;

fn h1_6() -> Ipv6Addr {
    "2001:2:0:1::2".parse().unwrap()
}

fn h2_6() -> Ipv6Addr {
    "2001:2:0:2::2".parse().unwrap()
}

/// The classic firewall of the issue.
const RULES: [&str; 3] = [
    "ct state established,related accept",
    "ct state invalid drop",
    "iif lan ct state new accept",
];

struct Rig {
    workers: Vec<Worker<MemPort>>,
    tables: Arc<Tables>,
    counters: Vec<Arc<SharedCounters>>,
    _rt: RouteTable,
}

fn port(i: u16, name: &str, mac: Mac, v4: &str, v6: &str) -> PortInfo {
    PortInfo {
        index: i,
        name: name.into(),
        interface: format!("mem{i}"),
        mac,
        mtu: 1500,
        mode: PortMode::Router,
        v4: vec![(v4.parse().unwrap(), 24)],
        v6: vec![(v6.parse().unwrap(), 64)],
    }
}

/// Two ports, `workers` workers, the classic firewall; NAT lan -> wan when `nat`.
fn rig(workers: u16, nat: bool, edit: impl FnOnce(&mut ConntrackConfig)) -> Rig {
    let ifs = Interfaces::new(vec![
        port(0, "lan", LAN_MAC, "198.18.1.1", "2001:2:0:1::1"),
        port(1, "wan", WAN_MAC, "198.19.1.1", "2001:2:0:2::1"),
    ]);
    let mut rt = RouteTable::new();
    for p in &ifs.ports {
        for a in
            p.v4.iter()
                .map(|&(a, l)| (IpAddr::V4(a), l))
                .chain(p.v6.iter().map(|&(a, l)| (IpAddr::V6(a), l)))
        {
            let ia = crate::control::config::InterfaceAddress {
                addr: a.0,
                prefix_len: a.1,
            };
            rt.stage_add(connected_route(&p.name, &ia).unwrap())
                .unwrap();
        }
    }
    rt.publish();
    let routes = Routes::resolve(rt.reader().snapshot().clone(), &ifs);
    let mut neigh = NeighborTable::new(30_000, 120_000);
    for (p, ip, mac) in [
        (0, IpAddr::V4(H1), H1_MAC),
        (1, IpAddr::V4(H2), H2_MAC),
        (0, IpAddr::V6(h1_6()), H1_MAC),
        (1, IpAddr::V6(h2_6()), H2_MAC),
    ] {
        neigh.learn(NeighborKey { port: p, ip }, mac, 0, true);
    }
    let mut ct = ConntrackConfig::default();
    edit(&mut ct);
    let mut tables = Tables::new(ifs, routes, neigh.map()).with_ct(CtShared::new(ct, workers));
    if nat {
        let cfg = NatConfig {
            pool: vec![POOL],
            ..Default::default()
        };
        tables = tables.with_nat(NatShared::new(
            cfg,
            vec![Role::Inside, Role::Outside],
            workers,
        ));
    }
    let tables = Arc::new(tables.with_handoff(workers, false).unwrap());
    let port = |n: &str| {
        ["lan", "wan"]
            .iter()
            .position(|p| *p == n)
            .map(|i| i as u16)
    };
    let rules: Vec<Rule> = RULES
        .iter()
        .map(|r| Rule::parse(r, &port).unwrap())
        .collect();
    tables.filter.store(Arc::new(Filter::new(
        rules,
        Action::Accept,
        vec![Action::Accept, Action::Drop],
    )));
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

    /// Frames sent on `port` by any worker, with the worker.
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

    /// `frame` arrives on `port` of worker `w`: did it come out on the other port?
    fn passes(&mut self, w: usize, port: usize, frame: &[u8]) -> bool {
        self.inject(w, port, frame);
        let out = self.sent(1 - port);
        assert!(out.len() <= 1, "{} frames out", out.len());
        !out.is_empty()
    }

    fn drops(&self, d: Drop) -> u64 {
        self.counters.iter().map(|c| c.drop_count(d)).sum()
    }

    /// Packets of each ct state (new, established, related, invalid) over the workers.
    fn states(&mut self) -> [u64; 4] {
        // The workers publish every 10 ms of their clock: let it pass.
        std::thread::sleep(std::time::Duration::from_millis(12));
        self.run();
        self.tables.ct.as_ref().unwrap().packet_totals()
    }

    fn entries(&self) -> u32 {
        self.workers.iter().map(|w| w.ct_entries().unwrap()).sum()
    }

    fn conn_show(&mut self) -> Vec<ConnInfo> {
        let ct = self.tables.ct.clone().unwrap();
        let mut c = Collector::start(&ct.dumps, Mode::Show).unwrap();
        let mut rows = Vec::new();
        for _ in 0..10_000 {
            for w in &mut self.workers {
                w.poll_once();
            }
            let p = c.poll();
            rows.extend(p.rows.into_iter().map(|(_, r)| r));
            if p.done {
                return rows;
            }
        }
        panic!("the dump did not end");
    }

    fn finish(mut self) {
        self.sent(0);
        self.sent(1);
        for w in &mut self.workers {
            w.poll_once();
            let c = w.umem().check();
            assert!(c.is_ok(), "{c:?}");
        }
    }
}

// ---- frames ---------------------------------------------------------------------------------

fn eth(dst: Mac, src: Mac, et: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![
        0x45,
        0,
        0,
        0,
        0xbe,
        0xef,
        (frag >> 8) as u8,
        frag as u8,
        64,
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

fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0, 0, 0, nh, 64];
    h[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(payload);
    h
}

/// A TCP header (checksums are not what these tests look at).
fn tcp(sp: u16, dp: u16, flags: u8, seq: u32, ack: u32, data: usize) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sp.to_be_bytes());
    t[2..4].copy_from_slice(&dp.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 0x50;
    t[13] = flags;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    t.extend(std::iter::repeat_n(0x61, data));
    t
}

fn udp(sp: u16, dp: u16) -> Vec<u8> {
    let mut u = vec![0u8; 8];
    u[0..2].copy_from_slice(&sp.to_be_bytes());
    u[2..4].copy_from_slice(&dp.to_be_bytes());
    u[4..6].copy_from_slice(&12u16.to_be_bytes());
    u.extend_from_slice(b"ping");
    u
}

fn icmp(ty: u8, code: u8, rest: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(rest);
    let c = checksum::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn v4(from_lan: bool, src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let (d, s) = if from_lan {
        (LAN_MAC, H1_MAC)
    } else {
        (WAN_MAC, H2_MAC)
    };
    eth(d, s, 0x0800, &ipv4(src, dst, proto, 0, l4))
}

fn v6(from_lan: bool, src: Ipv6Addr, dst: Ipv6Addr, nh: u8, l4: &[u8]) -> Vec<u8> {
    let (d, s) = if from_lan {
        (LAN_MAC, H1_MAC)
    } else {
        (WAN_MAC, H2_MAC)
    };
    eth(d, s, 0x86dd, &ipv6(src, dst, nh, l4))
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const SYNACK: u8 = 0x12;
const PSHACK: u8 = 0x18;
const FINACK: u8 = 0x11;

/// h1:40000 -> h2:80, a handshake, data both ways and a close, all passing;
/// `dst` is where h1 sends (h2 itself), `back` where h2's answers go (h1, or the NAT's pool).
fn tcp_conversation(r: &mut Rig, w_lan: usize, w_wan: usize, back: Ipv4Addr, back_port: u16) {
    let lan = |l4: Vec<u8>| v4(true, H1, H2, 6, &l4);
    let wan = |l4: Vec<u8>| v4(false, H2, back, 6, &l4);
    assert!(
        r.passes(w_lan, LAN, &lan(tcp(40000, 80, SYN, 1000, 0, 0))),
        "SYN out"
    );
    assert!(
        r.passes(w_wan, WAN, &wan(tcp(80, back_port, SYNACK, 5000, 1001, 0))),
        "SYN-ACK back"
    );
    assert!(
        r.passes(w_lan, LAN, &lan(tcp(40000, 80, ACK, 1001, 5001, 0))),
        "ACK"
    );
    assert!(
        r.passes(w_lan, LAN, &lan(tcp(40000, 80, PSHACK, 1001, 5001, 100))),
        "request"
    );
    assert!(
        r.passes(
            w_wan,
            WAN,
            &wan(tcp(80, back_port, PSHACK, 5001, 1101, 1000))
        ),
        "response"
    );
    // A forged segment far beyond the window (1 GB ahead): invalid, dropped.
    // (One far *behind* it passes as a retransmission, as nf_conntrack's does.)
    assert!(
        !r.passes(
            w_wan,
            WAN,
            &wan(tcp(80, back_port, ACK, 6001 + 0x4000_0000, 1101, 0))
        ),
        "forged in-connection ACK"
    );
    assert!(
        r.passes(w_lan, LAN, &lan(tcp(40000, 80, FINACK, 1101, 6001, 0))),
        "FIN"
    );
    assert!(
        r.passes(w_wan, WAN, &wan(tcp(80, back_port, FINACK, 6001, 1102, 0))),
        "FIN back"
    );
    assert!(
        r.passes(w_lan, LAN, &lan(tcp(40000, 80, ACK, 1102, 6002, 0))),
        "last ACK"
    );
}

#[test]
fn classic_firewall_ipv4() {
    let mut r = rig(1, false, |_| {});
    tcp_conversation(&mut r, 0, 0, H1, 40000);
    let [new, est, rel, inv] = r.states();
    assert_eq!(
        (new, inv),
        (1, 1),
        "one SYN new, one forged segment invalid"
    );
    assert_eq!(est, 7);
    assert_eq!(rel, 0);
    // Outside cannot open a connection in.
    assert!(
        !r.passes(0, WAN, &v4(false, H2, H1, 6, &tcp(5555, 22, SYN, 1, 0, 0))),
        "SYN in"
    );
    // A lone ACK from outside: invalid (no connection), dropped.
    assert!(
        !r.passes(0, WAN, &v4(false, H2, H1, 6, &tcp(5555, 22, ACK, 1, 1, 0))),
        "forged ACK"
    );
    let [_, _, _, inv] = r.states();
    assert_eq!(inv, 2);
    // UDP: the reply passes, unsolicited does not.
    assert!(r.passes(0, LAN, &v4(true, H1, H2, 17, &udp(40001, 53))));
    assert!(
        r.passes(0, WAN, &v4(false, H2, H1, 17, &udp(53, 40001))),
        "UDP reply"
    );
    assert!(
        !r.passes(0, WAN, &v4(false, H2, H1, 17, &udp(53, 40002))),
        "unsolicited UDP"
    );
    // An ICMP error about the UDP flow comes back (related); about another flow it is invalid.
    let quote = ipv4(H1, H2, 17, 0, &udp(40001, 53));
    let mut rest = vec![0u8; 4];
    rest.extend_from_slice(&quote);
    assert!(
        r.passes(0, WAN, &v4(false, H2, H1, 1, &icmp(3, 3, &rest))),
        "port unreachable, related"
    );
    let quote = ipv4(H1, H2, 17, 0, &udp(40009, 53));
    let mut rest = vec![0u8; 4];
    rest.extend_from_slice(&quote);
    assert!(
        !r.passes(0, WAN, &v4(false, H2, H1, 1, &icmp(3, 3, &rest))),
        "about no flow: invalid"
    );
    // Ping out, the reply back; an unsolicited echo reply is invalid.
    assert!(r.passes(
        0,
        LAN,
        &v4(true, H1, H2, 1, &icmp(8, 0, &[0x12, 0x34, 0, 1]))
    ));
    assert!(
        r.passes(
            0,
            WAN,
            &v4(false, H2, H1, 1, &icmp(0, 0, &[0x12, 0x34, 0, 1]))
        ),
        "echo reply"
    );
    assert!(
        !r.passes(
            0,
            WAN,
            &v4(false, H2, H1, 1, &icmp(0, 0, &[0x99, 0x99, 0, 1]))
        ),
        "lone echo reply"
    );
    let [_, _, rel, inv] = r.states();
    assert_eq!((rel, inv), (1, 4));
    assert_eq!(r.entries(), 3, "tcp, udp, icmp");
    // Hits: the rules count what they decided, the port policy the rest.
    let f = r.tables.filter.load();
    assert!(
        f.hits[1].load(std::sync::atomic::Ordering::Relaxed) >= 4,
        "ct state invalid drop"
    );
    assert_eq!(
        r.drops(Drop::FilterDrop),
        4 + 2,
        "invalid ones and the two new from wan"
    );
    r.finish();
}

#[test]
fn classic_firewall_ipv6() {
    let mut r = rig(1, false, |_| {});
    let (a, b) = (h1_6(), h2_6());
    assert!(r.passes(0, LAN, &v6(true, a, b, 6, &tcp(40000, 443, SYN, 7, 0, 0))));
    assert!(r.passes(
        0,
        WAN,
        &v6(false, b, a, 6, &tcp(443, 40000, SYNACK, 900, 8, 0))
    ));
    assert!(r.passes(0, LAN, &v6(true, a, b, 6, &tcp(40000, 443, ACK, 8, 901, 0))));
    assert!(
        !r.passes(
            0,
            WAN,
            &v6(
                false,
                b,
                a,
                6,
                &tcp(443, 40000, ACK, 901 + 0x4000_0000, 8, 0)
            )
        ),
        "forged"
    );
    assert!(
        !r.passes(0, WAN, &v6(false, b, a, 6, &tcp(5555, 22, SYN, 1, 0, 0))),
        "SYN in"
    );
    assert!(
        !r.passes(0, WAN, &v6(false, b, a, 6, &tcp(5555, 22, ACK, 1, 1, 0))),
        "lone ACK in"
    );
    assert!(r.passes(0, LAN, &v6(true, a, b, 58, &icmp(128, 0, &[0, 7, 0, 1]))));
    assert!(
        r.passes(0, WAN, &v6(false, b, a, 58, &icmp(129, 0, &[0, 7, 0, 1]))),
        "echo reply"
    );
    assert!(r.passes(0, LAN, &v6(true, a, b, 17, &udp(40001, 53))));
    // Destination unreachable quoting the datagram.
    let mut rest = vec![0u8; 4];
    rest.extend_from_slice(&ipv6(a, b, 17, &udp(40001, 53)));
    assert!(
        r.passes(0, WAN, &v6(false, b, a, 58, &icmp(1, 4, &rest))),
        "related"
    );
    assert!(
        !r.passes(0, WAN, &v6(false, b, a, 17, &udp(53, 40002))),
        "unsolicited"
    );
    let [new, est, rel, inv] = r.states();
    assert_eq!(
        (new, est, rel, inv),
        (5, 3, 1, 2),
        "new: 3 out, 2 refused in"
    );
    assert_eq!(r.entries(), 3);
    let rows = r.conn_show();
    assert!(
        rows.iter().all(|c| c.orig.family == 6 && !c.nat),
        "{rows:?}"
    );
    let t = rows.iter().find(|c| c.orig.proto == 6).unwrap();
    assert_eq!(
        (t.orig.src, t.orig.dport, t.tcp),
        (u128::from(a), 443, "ESTABLISHED")
    );
    r.finish();
}

#[test]
fn a_natted_flow_is_one_entry_its_nat_session() {
    let mut r = rig(1, true, |_| {});
    tcp_conversation(&mut r, 0, 0, POOL, 40000);
    assert_eq!(r.workers[0].nat_counts(), Some((1, 1)));
    assert_eq!(
        r.entries(),
        1,
        "the NAT session is the tracked entry: no second one"
    );
    let rows = r.conn_show();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].nat);
    assert_eq!(rows[0].tcp, "TIME_WAIT");
    assert_eq!(
        (rows[0].reply.dst, rows[0].reply.dport),
        (u128::from(u32::from(POOL)), 40000)
    );
    // UDP through the NAT: the reply is established, an ICMP error about it related.
    assert!(r.passes(0, LAN, &v4(true, H1, H2, 17, &udp(40001, 53))));
    assert!(r.passes(0, WAN, &v4(false, H2, POOL, 17, &udp(53, 40001))));
    let quote = ipv4(POOL, H2, 17, 0, &udp(40001, 53));
    let mut rest = vec![0u8; 4];
    rest.extend_from_slice(&quote);
    assert!(
        r.passes(0, WAN, &v4(false, H2, POOL, 1, &icmp(3, 3, &rest))),
        "related through the NAT"
    );
    assert_eq!(r.entries(), 2);
    let [new, _, rel, inv] = r.states();
    assert_eq!((new, rel, inv), (2, 1, 1));
    // A SYN from outside to the pool: no mapping, the NAT drops it first.
    assert!(!r.passes(
        0,
        WAN,
        &v4(false, H2, POOL, 6, &tcp(5555, 40000, SYN, 1, 0, 0))
    ));
    r.finish();
}

#[test]
fn two_workers_hand_flows_to_their_owner() {
    for nat in [false, true] {
        let mut r = rig(2, nat, |_| {});
        let back = if nat { POOL } else { H1 };
        // Every combination of arrival workers.
        for (i, (wl, ww)) in [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().enumerate() {
            let sp = 41000 + i as u16 * 7;
            assert!(
                r.passes(wl, LAN, &v4(true, H1, H2, 17, &udp(sp, 53))),
                "nat {nat}"
            );
            assert!(
                r.passes(ww, WAN, &v4(false, H2, back, 17, &udp(53, sp))),
                "nat {nat}: reply of flow {i}"
            );
        }
        assert_eq!(r.entries(), 4, "one entry per flow, on its owner only");
        let [new, est, _, inv] = r.states();
        assert_eq!((new, est, inv), (4, 4, 0), "nat {nat}");
        let rows = r.conn_show();
        assert_eq!(rows.len(), 4);
        r.finish();
    }
}

#[test]
fn entries_expire_and_then_replies_are_new() {
    let mut r = rig(1, false, |c| {
        c.track.timeouts.ms[usize::from(crate::conntrack::track::class::UDP)] = 50;
    });
    assert!(r.passes(0, LAN, &v4(true, H1, H2, 17, &udp(40001, 53))));
    assert_eq!(r.entries(), 1);
    std::thread::sleep(std::time::Duration::from_millis(120));
    r.run();
    assert_eq!(r.entries(), 0, "expired");
    assert!(
        !r.passes(0, WAN, &v4(false, H2, H1, 17, &udp(53, 40001))),
        "the late reply is new from wan"
    );
    std::thread::sleep(std::time::Duration::from_millis(12));
    r.run();
    let g = &r.tables.ct.as_ref().unwrap().gauges[0];
    assert_eq!(g.expired.load(std::sync::atomic::Ordering::Relaxed), 1);
    r.finish();
}

#[test]
fn later_fragments_follow_their_first() {
    let mut r = rig(1, false, |_| {});
    // A fragmented datagram out: the first fragment opens the flow, the second follows.
    let first = eth(
        LAN_MAC,
        H1_MAC,
        0x0800,
        &ipv4(H1, H2, 17, 0x2000, &udp(40001, 53)),
    );
    let second = eth(
        LAN_MAC,
        H1_MAC,
        0x0800,
        &ipv4(H1, H2, 17, 0x0002, &[0u8; 16]),
    );
    assert!(r.passes(0, LAN, &first));
    assert!(r.passes(0, LAN, &second));
    // A later fragment from outside whose first was never seen: invalid.
    let stray = eth(
        WAN_MAC,
        H2_MAC,
        0x0800,
        &ipv4(H2, H1, 17, 0x0002, &[0u8; 16]),
    );
    assert!(!r.passes(0, WAN, &stray));
    let [new, _, _, inv] = r.states();
    assert_eq!((new, inv), (2, 1));
    r.finish();
}

#[test]
fn a_full_table_evicts_or_refuses() {
    let mut r = rig(1, false, |c| c.max_entries = 4);
    for p in 0..4u16 {
        assert!(r.passes(0, LAN, &v4(true, H1, H2, 17, &udp(40000 + p, 53))));
    }
    // A fifth new flow: an unassured one goes.
    assert!(r.passes(0, LAN, &v4(true, H1, H2, 17, &udp(41000, 53))));
    assert_eq!(r.entries(), 4);
    std::thread::sleep(std::time::Duration::from_millis(12));
    r.run();
    let g = &r.tables.ct.as_ref().unwrap().gauges[0];
    assert_eq!(g.evicted.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(r.drops(Drop::CtTableFull), 0);
    let _ = TrackConfig::default();
    let _ = ct_state::NEW;
    r.finish();
}

#[test]
fn conn_show_streams_a_large_table_a_slice_at_a_time() {
    let mut r = rig(2, false, |_| {});
    // 1,500 flows (IPv4 and IPv6), a burst at a time, arriving on worker 0.
    for chunk in (0..1500u16).collect::<Vec<_>>().chunks(50) {
        let (umem, socks) = r.workers[0].split();
        for &i in chunk {
            let f = if i % 2 == 0 {
                v4(true, H1, H2, 17, &udp(20000 + i, 53))
            } else {
                v6(true, h1_6(), h2_6(), 17, &udp(20000 + i, 53))
            };
            assert!(socks[LAN].io.inject(umem, &f));
        }
        r.run();
        r.sent(WAN);
    }
    assert_eq!(r.entries(), 1500);
    // The dump: at most one slice per worker and loop, every flow once.
    let ct = r.tables.ct.clone().unwrap();
    let mut c = Collector::start(&ct.dumps, Mode::Show).unwrap();
    let mut ports = Vec::new();
    let mut polls = 0;
    loop {
        for w in &mut r.workers {
            w.poll_once();
        }
        let p = c.poll();
        polls += 1;
        assert!(
            p.rows.len() <= crate::context::dump::SLICE * 2,
            "{} rows in one round",
            p.rows.len()
        );
        ports.extend(p.rows.iter().map(|(_, c)| c.orig.sport));
        if p.done {
            break;
        }
    }
    ports.sort_unstable();
    assert_eq!(
        ports,
        (20000..21500).collect::<Vec<u16>>(),
        "every flow exactly once"
    );
    assert!(
        polls >= 3,
        "1,500 entries on two workers take several slices ({polls} rounds)"
    );
    r.finish();
}
