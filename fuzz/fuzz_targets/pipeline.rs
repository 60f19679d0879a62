//! The whole router pipeline on arbitrary frames: a worker with three
//! in-memory ports (connected subnets, a static route, an ECMP route,
//! resolved and unresolved neighbors, MTU 576 on one port, a filter with
//! every action, NAT from p0 inside to p1/p2 outside with a static forward,
//! the `[impair]` stage on every port, the engine's TCP apps and UDP echo, a
//! full-NAT load-balancer service, and a stateful filter: `ct state` rules
//! tracking connections on the NAT's table; and a VLAN-aware bridge: p3 an
//! access port of VLAN 10, p4 a trunk of 10 and 20, with a routed interface
//! (BVI) per VLAN, ports 5 and 6, inside the NAT)
//! receives the input as a sequence of frames. Nothing may panic, after the
//! burst every frame of the UMEM must be accounted for (the frame ledger),
//! and the connection table stays within its configured size.
//!
//! Input: repeated [port byte][len u16 LE][len bytes].
#![no_main]

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;

use engine::control::config::{PollMode, PortMode};
use engine::context::counters::SharedCounters;
use engine::context::events;
use engine::context::tables::{Interfaces, PortInfo, Routes};
use engine::dataplane::tables::Tables;
use engine::dataplane::worker::{Socket, Worker, WorkerConfig};
use engine::l3::route_table::RouteTable;
use engine::l3::routes_file::parse_line;
use engine::neighbor::{NeighborKey, NeighborTable};
use engine::xsk::{MemPort, MemPortConfig, Umem, UmemConfig};
use libfuzzer_sys::fuzz_target;

fn port(i: u16, mac: u8, v4: &str, v6: &str, mtu: u16) -> PortInfo {
    PortInfo {
        index: i,
        name: ["p0", "p1", "p2", "p3", "p4", "br10", "br20"][usize::from(i)].to_string(),
        interface: format!("p{i}"),
        mac: [0x02, 0, 0, 0, 0, mac],
        mtu,
        mode: PortMode::Router,
        v4: vec![(v4.parse().unwrap(), 24)],
        v6: vec![(v6.parse().unwrap(), 64)],
    }
}

fn worker() -> (Worker<MemPort>, crossbeam::channel::Receiver<events::Event>) {
    let switch_port = |i: u16, mac: u8| PortInfo { mode: PortMode::Switch, v4: vec![], v6: vec![], ..port(i, mac, "0.0.0.0", "::", 1500) };
    let mut ifs = Interfaces::new(vec![
        port(0, 1, "198.18.1.1", "2001:2:0:1::1", 1500),
        port(1, 2, "198.19.1.1", "2001:2:0:2::1", 576),
        port(2, 3, "198.19.2.1", "2001:2:0:3::1", 1500),
        switch_port(3, 4),
        switch_port(4, 5),
        port(5, 6, "198.18.10.1", "2001:2:0:10::1", 1500),
        port(6, 7, "198.18.20.1", "2001:2:0:20::1", 1400),
    ]);
    ifs.set_bvi(5);
    ifs.set_bvi(6);
    let switch = {
        use engine::l2::bridge::{BridgeConfig, BviConfig, Membership, VlanMode};
        let (router, access, trunk) = (VlanMode::Access(1), VlanMode::Access(10), VlanMode::Trunk(vec![10, 20]));
        let (v10, v20) = (VlanMode::Access(10), VlanMode::Access(20));
        let m = |name, bridge, vlans, bvi| Membership { name, bridge, vlans, bvi };
        let members = [
            m("p0", None, &router, None),
            m("p1", None, &router, None),
            m("p2", None, &router, None),
            m("p3", Some("br"), &access, None),
            m("p4", Some("br"), &trunk, None),
            m("br10", Some("br"), &v10, Some([0x02, 0, 0, 0, 0, 6])),
            m("br20", Some("br"), &v20, Some([0x02, 0, 0, 0, 0, 7])),
        ];
        let bvis = vec![
            BviConfig { port: "br10".into(), vlan: 10, mac: [0x02, 0, 0, 0, 0, 6] },
            BviConfig { port: "br20".into(), vlan: 20, mac: [0x02, 0, 0, 0, 0, 7] },
        ];
        let b = BridgeConfig { name: "br".into(), aging_s: 300, max_entries: 64, statics: vec![], bvis };
        engine::l2::Switch::build(&[b], &members)
    };
    let mut rt = RouteTable::new();
    for r in [
        "198.18.1.0/24 dev p0",
        "198.19.1.0/24 dev p1",
        "198.19.2.0/24 dev p2",
        "2001:2:0:1::/64 dev p0",
        "2001:2:0:2::/64 dev p1",
        "2001:2:0:3::/64 dev p2",
        "198.19.100.0/24 via 198.19.1.2",
        "198.19.200.0/24 via 198.19.1.2 via 198.19.2.2",
        "2001:2:0:100::/64 via 2001:2:0:2::2",
        "198.18.10.0/24 dev br10",
        "198.18.20.0/24 dev br20",
        "2001:2:0:10::/64 dev br10",
        "2001:2:0:20::/64 dev br20",
        // Routes that forward nothing (issue 23): their ICMP answers see arbitrary packets too.
        "blackhole 198.19.50.0/24",
        "unreachable 198.19.51.0/24",
        "prohibit 2001:2:0:51::/64",
    ] {
        rt.stage_add(parse_line(r).unwrap().unwrap()).unwrap();
    }
    rt.publish();
    let routes = Routes::resolve(rt.reader().snapshot().clone(), &ifs);
    let mut neigh = NeighborTable::new(30_000, 120_000);
    for (p, ip) in [(0, "198.18.1.2"), (1, "198.19.1.2"), (1, "2001:2:0:2::2"), (0, "2001:2:0:1::2"), (5, "198.18.10.2"), (6, "2001:2:0:20::2")] {
        neigh.learn(NeighborKey { port: p, ip: ip.parse::<IpAddr>().unwrap() }, [0x02, 9, 9, 9, 9, p as u8], 0, true);
    }
    use engine::nat::{Forward, NatConfig, NatShared, Role};
    let nat = NatConfig {
        pool: vec!["198.19.1.1".parse().unwrap(), "198.19.1.50".parse().unwrap()],
        port_lo: 1024,
        port_hi: 1300,
        max_per_host: 64,
        max_sessions: MAX_SESSIONS,
        forwards: vec![Forward {
            proto: 6,
            outside: engine::nat::Ep::new(u32::from(std::net::Ipv4Addr::new(198, 19, 1, 1)), 8080),
            inside: engine::nat::Ep::new(u32::from(std::net::Ipv4Addr::new(198, 18, 1, 2)), 80),
        }],
        ..Default::default()
    };
    let nat = NatShared::new(nat, vec![Role::Inside, Role::Outside, Role::Outside, Role::None, Role::None, Role::Inside, Role::Inside], 1);
    // Impairment on every port and both directions: its copies and held frames
    // must keep the ledger exact too. (Held frames leave with the next frame on
    // their lane, or after a millisecond: the only timing-dependent part.)
    let impair = engine::impair::ImpairConfig { drop: 0.02, duplicate: 0.05, reorder: 0.1, seed: 1, ..Default::default() };
    let mut tables = Tables::new(ifs, routes, neigh.map()).with_l2(switch).with_nat(nat).with_handoff(1, false).unwrap().with_impair(impair);
    // Connection tracking for the stateful rules below, on the NAT's table (as large as the NAT's).
    let ct = engine::filter::config::ConntrackConfig { max_entries: MAX_SESSIONS, ..Default::default() };
    tables = tables.with_ct(engine::filter::conn::CtShared::new(ct, 1));
    // The engine's TCP apps and UDP echo on its addresses too (all features on).
    {
        use engine::tcp::endpoint::{App, AppConfig, StackConfig, TcpShared};
        let app = |port, app| AppConfig { port, connect: None, connections: 1, app, nodelay: false };
        let apps = vec![app(7, App::Echo), app(80, App::Http { body: b"x".to_vec() }), app(5001, App::Bulk { bytes: 10_000 })];
        let stack = StackConfig { max_conns: 16, backlog: 4, ..StackConfig::default() };
        tables.tcp = Some(Arc::new(TcpShared::new(apps, stack, 1)));
        tables.udp_echo = vec![7];
    }
    // A load-balancer service too: a VIP on p1's subnet, full NAT toward two backends behind p2.
    {
        use engine::lb::{parse_backend, DownPolicy, LbShared, Mode, Scheduler, ServiceConfig};
        let svc = ServiceConfig {
            name: "web".into(),
            proto: 6,
            vip: engine::nat::Ep::new(u32::from(std::net::Ipv4Addr::new(198, 19, 1, 100)), 80),
            scheduler: Scheduler::Maglev,
            mode: Mode::FullNat,
            snat: u32::from(std::net::Ipv4Addr::new(198, 19, 2, 1)),
            down_policy: DownPolicy::Keep,
            backends: vec![parse_backend("198.19.2.2:8080").unwrap(), parse_backend("198.19.2.3:8080 weight 2").unwrap()],
            timeouts: Default::default(),
            health: None,
            announce: false,
        };
        tables = tables.with_lb(LbShared::new(&[svc], 1));
    }
    let tables = Arc::new(tables);
    // A filter with every action, so the reject paths see arbitrary packets too.
    let port = |n: &str| ["p0", "p1", "p2", "p3", "p4", "br10", "br20"].iter().position(|p| *p == n).map(|i| i as u16);
    let rules = [
        "ct state invalid drop",
        "iif p0 ct state established,related accept",
        "iif p1 tcp flags syn / syn,ack drop",
        "oif p1 tcp dport 9000 reject with tcp reset",
        "oif p2 udp dport 1000-2000 reject",
        "ip6 saddr 2001:2:0:1::/64 icmpv6 type echo-request reject",
        "ip daddr 198.19.100.0/24 tcp dport 22 drop",
        "iif p2 ct state new drop",
        "iif br20 ct state new drop",
        "ct state { established, related } accept",
    ]
    .iter()
    .map(|r| engine::filter::rule::Rule::parse(r, &port).unwrap())
    .collect();
    tables.filter.store(Arc::new(engine::filter::Filter::new(rules, engine::filter::rule::Action::Accept, vec![])));
    let umem = Umem::new(UmemConfig { frame_size: 2048, frame_count: 1024, huge_pages: false, headroom: 0 }).unwrap();
    let sockets = (0..5).map(|i| Socket { port: i, io: MemPort::new(&format!("p{i}"), &umem, MemPortConfig::default()) }).collect();
    let (sink, rx) = events::channel(4096);
    let cfg = WorkerConfig { id: 0, poll: PollMode::Busy, idle_timeout: std::time::Duration::from_millis(1) };
    let mut w = Worker::new(cfg, umem, sockets, tables, Arc::new(SharedCounters::default()), sink);
    w.prime();
    (w, rx)
}

const MAX_SESSIONS: u32 = 256;

thread_local! {
    static RIG: RefCell<(Worker<MemPort>, crossbeam::channel::Receiver<events::Event>)> = RefCell::new(worker());
}

fuzz_target!(|data: &[u8]| {
    RIG.with(|rig| {
        let (w, rx) = &mut *rig.borrow_mut();
        let mut rest = data;
        while rest.len() >= 3 {
            let p = usize::from(rest[0] % 5);
            let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3).min(1600);
            let frame = &rest[3..3 + len];
            rest = &rest[3 + len..];
            let (umem, socks) = w.split();
            socks[p].io.inject(umem, frame);
        }
        for _ in 0..2 {
            w.poll_once();
        }
        let (umem, socks) = w.split();
        for s in socks.iter_mut() {
            s.io.take_sent(umem, usize::MAX, |_| {});
        }
        w.poll_once();
        while rx.try_recv().is_ok() {}
        if let Err(e) = w.umem().check() {
            panic!("frame ledger: {e}");
        }
        assert!(w.tcp_conns().unwrap_or(0) <= 16, "TCP table beyond its limit");
        let (sessions, mappings) = w.nat_counts().unwrap_or((0, 0));
        assert!(sessions <= MAX_SESSIONS && mappings <= sessions + 1, "NAT table beyond its limits: {sessions} sessions, {mappings} mappings");
        let entries = w.ct_entries().unwrap_or(0);
        assert!(entries <= MAX_SESSIONS && entries >= sessions, "connection table beyond its limit: {entries} entries, {sessions} NAT sessions");
    });
});
