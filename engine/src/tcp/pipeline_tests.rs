//! The TCP endpoint in a whole worker on an in-memory port: `ctl tcp show`
//! answered a slice per loop iteration; a client connection over IPv6
//! (source address, MSS, neighbour discovery, handshake).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
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
use crate::wire::tcp::TcpRepr;
use crate::xsk::{MemPort, MemPortConfig, Umem, UmemConfig};

const ENGINE: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const ENGINE6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 1);
const GATEWAY6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 2);
/// Off-link: routed through GATEWAY6.
const SERVER6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 9, 0, 0, 0, 2);
const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const PEER_MAC: [u8; 6] = [0x02, 9, 9, 9, 9, 0];

/// One worker whose client app opens `conns` connections to a peer that
/// never answers (they stay in SYN-SENT).
fn worker(conns: u32) -> (Worker<MemPort>, Arc<TcpShared>) {
    worker_to("198.18.1.2:5555", conns, true)
}

/// One worker with a client app of `conns` connections to `server`; the
/// peers' MACs known (`neighbours`) or to be discovered.
fn worker_to(server: &str, conns: u32, neighbours: bool) -> (Worker<MemPort>, Arc<TcpShared>) {
    let ifs = Interfaces::new(vec![PortInfo {
        index: 0,
        name: "p0".into(),
        interface: "p0".into(),
        mac: MAC,
        mtu: 1500,
        mode: PortMode::Router,
        v4: vec![(ENGINE, 24)],
        // A link-local address first: never the source of a connection.
        v6: vec![("fe80::1".parse().unwrap(), 64), (ENGINE6, 64)],
    }]);
    let mut rt = RouteTable::new();
    for r in [
        "198.18.1.0/24 dev p0",
        "2001:2:0:1::/64 dev p0",
        "2001:2:0:9::/64 via 2001:2:0:1::2 dev p0",
    ] {
        rt.stage_add(parse_line(r).unwrap().unwrap()).unwrap();
    }
    rt.publish();
    let routes = Routes::resolve(rt.reader().snapshot().clone(), &ifs);
    let mut neigh = NeighborTable::new(30_000, 120_000);
    for ip in [IpAddr::V4(PEER), IpAddr::V6(GATEWAY6)]
        .into_iter()
        .filter(|_| neighbours)
    {
        neigh.learn(NeighborKey { port: 0, ip }, PEER_MAC, 0, true);
    }
    let apps = vec![AppConfig {
        port: 0,
        connect: Some(server.parse().unwrap()),
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

/// One loop; the frames the worker sent.
fn step_frames(w: &mut Worker<MemPort>) -> Vec<Vec<u8>> {
    w.poll_once();
    let (umem, socks) = w.split();
    let mut out = Vec::new();
    socks[0]
        .io
        .take_sent(umem, usize::MAX, |f| out.push(f.to_vec()));
    out
}

/// The TCP segment of an Ethernet/IPv6 frame (checksum verified): source,
/// destination, hop limit, the segment.
fn tcp6(f: &[u8]) -> Option<(Ipv6Addr, Ipv6Addr, u8, TcpRepr<'_>)> {
    use crate::wire::tcp::TcpPacket;
    if f.get(12..14)? != [0x86, 0xdd] || *f.get(20)? != 6 {
        return None;
    }
    let at = |i: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&f[i..i + 16]).unwrap());
    let (src, dst) = (at(22), at(38));
    let len = usize::from(u16::from_be_bytes([f[18], f[19]]));
    let pkt = TcpPacket::new_checked(f.get(54..54 + len)?).ok()?;
    // `parse` borrows the packet; the payload is not looked at here.
    let r = TcpRepr::parse(&pkt, src, dst).ok()?;
    Some((src, dst, f[21], TcpRepr { payload: &[], ..r }))
}

/// An Ethernet/IPv6 frame from the server to the engine carrying `r`.
fn frame6(r: &TcpRepr<'_>) -> Vec<u8> {
    use crate::wire::tcp::TcpPacket;
    let tl = r.buffer_len();
    let mut f = vec![0u8; 54 + tl];
    f[..6].copy_from_slice(&MAC);
    f[6..12].copy_from_slice(&PEER_MAC);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    f[14..22].copy_from_slice(&[0x60, 0, 0, 0, (tl >> 8) as u8, tl as u8, 6, 60]);
    f[22..38].copy_from_slice(&SERVER6.octets());
    f[38..54].copy_from_slice(&ENGINE6.octets());
    r.emit(
        &mut TcpPacket::new_unchecked(&mut f[54..]),
        SERVER6,
        ENGINE6,
    )
    .unwrap();
    f
}

/// `ctl tcp show`'s rows (one worker).
fn show(w: &mut Worker<MemPort>, shared: &TcpShared) -> Vec<crate::tcp::endpoint::ConnInfo> {
    let mut c = Collector::start(&shared.dumps, Mode::Show).unwrap();
    let mut rows = Vec::new();
    while !c.is_done() {
        step(w);
        rows.extend(c.poll().rows.into_iter().map(|(_, r)| r));
    }
    rows
}

/// A client connection to an IPv6 server beyond a router: the SYN leaves
/// from the port's global address (not its link-local one) to the
/// gateway's MAC, with an MSS 20 bytes below IPv4's (1500 - 60), from an
/// ephemeral port; the server's SYN-ACK completes the handshake.
#[test]
fn an_ipv6_client_connection_sends_its_syn_from_the_global_address_and_completes() {
    use crate::tcp::endpoint::EPHEMERAL;
    use crate::wire::tcp::TcpFlags;
    let (mut w, shared) = worker_to("[2001:2:0:9::2]:5001", 1, true);
    let mut frames = Vec::new();
    for _ in 0..4 {
        frames.extend(step_frames(&mut w));
    }
    let syns: Vec<_> = frames.iter().filter_map(|f| tcp6(f)).collect();
    assert_eq!(syns.len(), 1, "one SYN: {frames:02x?}");
    let (src, dst, hops, syn) = syns[0];
    let f = frames.iter().find(|f| tcp6(f).is_some()).unwrap();
    assert_eq!(
        (&f[..6], &f[6..12]),
        (&PEER_MAC[..], &MAC[..]),
        "to the gateway"
    );
    assert_eq!((src, dst, hops), (ENGINE6, SERVER6, 64));
    assert_eq!((syn.flags, syn.ack_number), (TcpFlags::SYN, None));
    assert_eq!(syn.dst_port, 5001);
    assert!((EPHEMERAL.0..=EPHEMERAL.1).contains(&syn.src_port));
    assert_eq!(syn.max_seg_size, Some(1440), "1500 - 40 (IPv6) - 20 (TCP)");
    let rows = show(&mut w, &shared);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].local, rows[0].remote, rows[0].state),
        (
            SocketAddr::new(IpAddr::V6(ENGINE6), syn.src_port),
            "[2001:2:0:9::2]:5001".parse().unwrap(),
            State::SynSent
        )
    );

    let synack = TcpRepr {
        src_port: 5001,
        dst_port: syn.src_port,
        seq_number: 7000,
        ack_number: Some(syn.seq_number.wrapping_add(1)),
        flags: TcpFlags::SYN,
        window_len: 65535,
        urgent_at: 0,
        max_seg_size: Some(1440),
        window_scale: None,
        sack_permitted: false,
        sack_ranges: Default::default(),
        timestamp: None,
        payload: &[],
    };
    {
        let (umem, socks) = w.split();
        assert!(socks[0].io.inject(umem, &frame6(&synack)));
    }
    let mut frames = Vec::new();
    for _ in 0..4 {
        frames.extend(step_frames(&mut w));
    }
    let acks: Vec<_> = frames.iter().filter_map(|f| tcp6(f)).collect();
    assert_eq!(acks.len(), 1, "the handshake's ACK: {frames:02x?}");
    let (src, dst, _, ack) = acks[0];
    assert_eq!((src, dst), (ENGINE6, SERVER6));
    // (`TcpRepr` carries ACK as `ack_number`.)
    assert!(!ack
        .flags
        .intersects(TcpFlags::SYN.union(TcpFlags::FIN).union(TcpFlags::RST)));
    assert_eq!(
        (ack.seq_number, ack.ack_number),
        (syn.seq_number.wrapping_add(1), Some(7001))
    );
    let rows = show(&mut w, &shared);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, State::Established);
}

/// The gateway's MAC unknown: the engine asks for it by neighbour
/// discovery (an NS from its global address to the solicited-node group).
#[test]
fn an_ipv6_client_connection_resolves_the_gateway_by_neighbour_discovery() {
    let (mut w, _shared) = worker_to("[2001:2:0:9::2]:5001", 1, false);
    let mut frames = Vec::new();
    for _ in 0..4 {
        frames.extend(step_frames(&mut w));
    }
    let ns = frames
        .iter()
        .find(|f| f.len() > 62 && f[12..14] == [0x86, 0xdd] && f[20] == 58 && f[54] == 135)
        .unwrap_or_else(|| panic!("a neighbour solicitation: {frames:02x?}"));
    let at = |i: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&ns[i..i + 16]).unwrap());
    assert_eq!(at(22), ENGINE6, "from the global address");
    assert_eq!(at(62), GATEWAY6, "for the gateway");
    assert_eq!(&ns[..3], &[0x33, 0x33, 0xff]);
}
