//! The TCP endpoint in a whole worker on an in-memory port: `ctl tcp show`
//! answered a slice per loop iteration.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::context::counters::SharedCounters;
use crate::context::dump::{Collector, Mode, SLICE};
use crate::context::events;
use crate::context::tables::{Interfaces, PortInfo, Routes};
use crate::control::config::{PollMode, PortMode};
use crate::dataplane::tables::Tables;
use crate::dataplane::worker::{Socket, Worker, WorkerConfig};
use crate::l3::route_table::RouteTable;
use crate::l3::routes_file::parse_line;
use crate::neighbor::{NeighborKey, NeighborTable};
use crate::tcp::apps::{App, AppConfig};
use crate::tcp::endpoint::{StackConfig, TcpShared};
use crate::tcp::tcb::State;
use crate::xsk::{MemPort, MemPortConfig, Umem, UmemConfig};

const ENGINE: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);

/// One worker whose client app opens `conns` connections to a peer that
/// never answers (they stay in SYN-SENT).
fn worker(conns: u32) -> (Worker<MemPort>, Arc<TcpShared>) {
    let ifs = Interfaces::new(vec![PortInfo {
        index: 0,
        name: "p0".into(),
        interface: "p0".into(),
        mac: [0x02, 0, 0, 0, 0, 1],
        mtu: 1500,
        mode: PortMode::Router,
        v4: vec![(ENGINE, 24)],
        v6: vec![],
    }]);
    let mut rt = RouteTable::new();
    rt.stage_add(parse_line("198.18.1.0/24 dev p0").unwrap().unwrap())
        .unwrap();
    rt.publish();
    let routes = Routes::resolve(rt.reader().snapshot().clone(), &ifs);
    let mut neigh = NeighborTable::new(30_000, 120_000);
    neigh.learn(
        NeighborKey {
            port: 0,
            ip: IpAddr::V4(PEER),
        },
        [0x02, 9, 9, 9, 9, 0],
        0,
        true,
    );
    let apps = vec![AppConfig {
        port: 0,
        connect: Some("198.18.1.2:5555".parse().unwrap()),
        connections: conns,
        app: App::Discard,
        nodelay: false,
    }];
    let mut stack = StackConfig {
        max_conns: 4096,
        ..StackConfig::default()
    };
    stack.tcb.send_buffer = 4096;
    stack.tcb.recv_buffer = 4096;
    let shared = Arc::new(TcpShared::new(apps, stack, 1));
    let mut tables = Tables::new(ifs, routes, neigh.map());
    tables.tcp = Some(shared.clone());
    let umem = Umem::new(UmemConfig {
        frame_size: 2048,
        frame_count: 2048,
        huge_pages: false,
        headroom: 0,
    })
    .unwrap();
    let sockets = vec![Socket {
        port: 0,
        io: MemPort::new("p0", &umem, MemPortConfig::default()),
    }];
    let (sink, _rx) = events::channel(4096);
    let cfg = WorkerConfig {
        id: 0,
        poll: PollMode::Busy,
        idle_timeout: std::time::Duration::from_millis(1),
    };
    let mut w = Worker::new(
        cfg,
        umem,
        sockets,
        Arc::new(tables),
        Arc::new(SharedCounters::default()),
        sink,
    );
    w.prime();
    (w, shared)
}

fn step(w: &mut Worker<MemPort>) {
    w.poll_once();
    let (umem, socks) = w.split();
    socks[0].io.take_sent(umem, usize::MAX, |_| {});
}

/// 3,000 connections: `ctl tcp show` lists each once, a slice of at most
/// `SLICE` (256) slots per worker loop (12 loops).
#[test]
fn a_tcp_dump_goes_a_slice_per_loop_and_lists_every_connection_once() {
    let (mut w, shared) = worker(3000);
    for _ in 0..4 {
        step(&mut w);
    }
    let mut c = Collector::start(&shared.dumps, Mode::Show).unwrap();
    let mut rows = Vec::new();
    let mut loops = 0;
    while !c.is_done() {
        assert!(loops < 1000, "the dump did not end");
        step(&mut w);
        loops += 1;
        let p = c.poll();
        assert!(
            p.rows.len() <= SLICE,
            "one slice per loop, got {}",
            p.rows.len()
        );
        assert!(p.silent.is_empty());
        rows.extend(p.rows.into_iter().map(|(_, r)| r));
    }
    assert_eq!(
        loops,
        3000usize.div_ceil(SLICE),
        "3,000 slots: a slice per loop"
    );
    let ports: std::collections::BTreeSet<u16> = rows.iter().map(|r| r.local.port()).collect();
    assert_eq!(
        (rows.len(), ports.len()),
        (3000, 3000),
        "each connection once"
    );
    let peer: SocketAddr = "198.18.1.2:5555".parse().unwrap();
    assert!(rows.iter().all(|r| r.remote == peer
        && r.state == State::SynSent
        && r.local.ip() == IpAddr::V4(ENGINE)));
    // The worker is idle again: the next dump starts from the first slot.
    let mut c = Collector::start(&shared.dumps, Mode::Show).unwrap();
    let mut n = 0;
    while !c.is_done() {
        step(&mut w);
        n += c.poll().rows.len();
    }
    assert_eq!(n, 3000);
}
