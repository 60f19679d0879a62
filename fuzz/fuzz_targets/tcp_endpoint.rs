//! The engine's TCP endpoint through the whole pipeline, driven by a peer
//! that follows the conversation: each input op becomes a well-formed
//! segment (valid checksums) from one of four client ports to one of the
//! engine's apps (echo, HTTP, discard, bulk, a closed port), with flags,
//! sequence and acknowledgment numbers chosen *relative to* what the
//! engine last sent on that connection (so the fuzzer gets past the
//! handshake and into every state), window, options and payload from the
//! input. Invariants: no panic, the frame ledger exact after every op, the
//! connection table within its limit.
//!
//! Input: repeated 8-byte ops
//! `[flags][seq delta i8][ack delta i8][window][payload len][options][app][conn]`.
#![no_main]

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr};
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
use engine::tcp::endpoint::{App, AppConfig, StackConfig, TcpShared};
use engine::wire::tcp::{TcpFlags, TcpPacket, TcpRepr};
use engine::xsk::{MemPort, MemPortConfig, Umem, UmemConfig};
use libfuzzer_sys::fuzz_target;

const MAX_CONNS: usize = 8;
const ENGINE: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const APPS: [u16; 5] = [7, 80, 9, 5001, 8];
const ENGINE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const PEER_MAC: [u8; 6] = [0x02, 9, 9, 9, 9, 0];

fn worker() -> (Worker<MemPort>, crossbeam::channel::Receiver<events::Event>) {
    let ifs = Interfaces::new(vec![PortInfo {
        index: 0,
        name: "p0".into(),
        interface: "p0".into(),
        mac: ENGINE_MAC,
        mtu: 1500,
        mode: PortMode::Router,
        v4: vec![(ENGINE, 24)],
        v6: vec![],
    }]);
    let mut rt = RouteTable::new();
    rt.stage_add(parse_line("198.18.1.0/24 dev p0").unwrap().unwrap()).unwrap();
    rt.publish();
    let routes = Routes::resolve(rt.reader().snapshot().clone(), &ifs);
    let mut neigh = NeighborTable::new(30_000, 120_000);
    neigh.learn(NeighborKey { port: 0, ip: IpAddr::V4(PEER) }, PEER_MAC, 0, true);
    let app = |port, app| AppConfig { port, connect: None, connections: 1, app, nodelay: false };
    let apps = vec![
        app(7, App::Echo),
        app(80, App::Http { body: b"hello\n".to_vec() }),
        app(9, App::Discard),
        app(5001, App::Bulk { bytes: 20_000 }),
        // A client too: its SYN goes to the peer, which may answer anything.
        AppConfig { port: 0, connect: Some("198.18.1.2:5555".parse().unwrap()), connections: 1, app: App::Bulk { bytes: 5000 }, nodelay: true },
    ];
    let mut stack = StackConfig { max_conns: MAX_CONNS, backlog: 2, ..StackConfig::default() };
    stack.tcb.send_buffer = 8192;
    stack.tcb.recv_buffer = 8192;
    let mut tables = Tables::new(ifs, routes, neigh.map());
    tables.tcp = Some(Arc::new(TcpShared::new(apps, stack, 1)));
    tables.udp_echo = vec![7];
    let tables = Arc::new(tables);
    let umem = Umem::new(UmemConfig { frame_size: 2048, frame_count: 512, huge_pages: false, headroom: 0 }).unwrap();
    let sockets = vec![Socket { port: 0, io: MemPort::new("p0", &umem, MemPortConfig::default()) }];
    let (sink, rx) = events::channel(4096);
    let cfg = WorkerConfig { id: 0, poll: PollMode::Busy, idle_timeout: std::time::Duration::from_millis(1) };
    let mut w = Worker::new(cfg, umem, sockets, tables, Arc::new(SharedCounters::default()), sink);
    w.prime();
    (w, rx)
}

/// What the peer knows of each of its four connections (per app).
#[derive(Default, Clone, Copy)]
struct PeerConn {
    /// Our next sequence number.
    snd_nxt: u32,
    /// The engine's sequence space as seen: one past its last segment.
    rcv_nxt: u32,
}

struct Rig {
    w: Worker<MemPort>,
    rx: crossbeam::channel::Receiver<events::Event>,
    conns: [[PeerConn; 4]; 6],
    /// The local port of the engine's client connection (learned from its SYN).
    client_port: u16,
}

thread_local! {
    static RIG: RefCell<Rig> = RefCell::new({
        let (w, rx) = worker();
        Rig { w, rx, conns: [[PeerConn::default(); 4]; 6], client_port: 32768 }
    });
}

fn frame(src_port: u16, dst_port: u16, repr: &TcpRepr<'_>) -> Vec<u8> {
    let tl = repr.buffer_len();
    let mut f = vec![0u8; 14 + 20 + tl];
    f[..6].copy_from_slice(&ENGINE_MAC);
    f[6..12].copy_from_slice(&PEER_MAC);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let total = (20 + tl) as u16;
    let ip = &mut f[14..];
    ip[..12].copy_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, 6, 0, 0]);
    ip[12..16].copy_from_slice(&PEER.octets());
    ip[16..20].copy_from_slice(&ENGINE.octets());
    let c = engine::wire::checksum::checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let _ = (src_port, dst_port);
    let mut pkt = TcpPacket::new_unchecked(&mut ip[20..]);
    let _ = repr.emit(&mut pkt, PEER, ENGINE);
    f
}

fuzz_target!(|data: &[u8]| {
    RIG.with(|rig| {
        let rig = &mut *rig.borrow_mut();
        let payload = [b'\r', b'\n', b'G', b'E', b'T', b' ', b'/', b'\r', b'\n', b'\r', b'\n'].repeat(24);
        for op in data.chunks_exact(8) {
            let app = usize::from(op[6]) % 6;
            let c = usize::from(op[7]) % 4;
            // App 5 is the peer's side of the engine's client connection.
            let (sport, dport) = if app == 5 { (5555, 0) } else { (40000 + c as u16, APPS[app]) };
            let pc = rig.conns[app][c];
            // ACK is carried by ack_number in a TcpRepr, not in its flags.
            let ack_on = op[0] & 0x10 != 0;
            let flags = TcpFlags::from_bits(u16::from(op[0] & !0x10));
            let seq = pc.snd_nxt.wrapping_add((op[1] as i8 as i32 * 97) as u32);
            let ack = pc.rcv_nxt.wrapping_add((op[2] as i8 as i32 * 97) as u32);
            let n = usize::from(op[4]).min(payload.len());
            let o = op[5];
            let dport = if dport == 0 { rig.client_port } else { dport };
            let repr = TcpRepr {
                src_port: sport,
                dst_port: dport,
                seq_number: seq,
                ack_number: ack_on.then_some(ack),
                flags,
                window_len: u16::from(op[3]) << (o & 7),
                urgent_at: 0,
                max_seg_size: (o & 0x08 != 0).then_some(u16::from(op[3]).max(1) * 8),
                window_scale: (o & 0x10 != 0).then_some(o >> 5),
                sack_permitted: o & 0x20 != 0,
                sack_ranges: Default::default(),
                timestamp: (o & 0x40 != 0).then_some((u32::from(o), 0)),
                payload: &payload[..n],
            };
            let f = frame(sport, dport, &repr);
            {
                let (umem, socks) = rig.w.split();
                socks[0].io.inject(umem, &f);
            }
            if op[1] as i8 == 0 {
                // An in-order segment: the peer moves on.
                let adv = n as u32 + u32::from(flags.contains(TcpFlags::SYN)) + u32::from(flags.contains(TcpFlags::FIN));
                rig.conns[app][c].snd_nxt = pc.snd_nxt.wrapping_add(adv);
            }
            rig.w.poll_once();
            // Read what the engine sent: remember its sequence space per connection.
            let mut seen: Vec<(u16, u16, u32)> = Vec::new();
            {
                let (umem, socks) = rig.w.split();
                socks[0].io.take_sent(umem, usize::MAX, |b: &[u8]| {
                    if b.len() < 54 || b[12..14] != [0x08, 0x00] || b[23] != 6 {
                        return;
                    }
                    let ihl = usize::from(b[14] & 0x0f) * 4;
                    let Ok(p) = TcpPacket::new_checked(&b[14 + ihl..]) else { return };
                    let Ok(r) = TcpRepr::parse(&p, ENGINE, PEER) else { return };
                    let len = r.payload.len() as u32 + u32::from(r.flags.contains(TcpFlags::SYN)) + u32::from(r.flags.contains(TcpFlags::FIN));
                    seen.push((r.src_port, r.dst_port, r.seq_number.wrapping_add(len)));
                });
            }
            for (sp, dp, end) in seen {
                let slot = if dp == 5555 { Some((5, 0)) } else { APPS.iter().position(|&a| a == sp).map(|a| (a, usize::from(dp.wrapping_sub(40000)))) };
                if let Some((a, c)) = slot {
                    if c < 4 {
                        rig.conns[a][c].rcv_nxt = end;
                        if dp == 5555 {
                            rig.client_port = sp;
                        }
                    }
                }
            }
            while rig.rx.try_recv().is_ok() {}
            if let Err(e) = rig.w.umem().check() {
                panic!("frame ledger: {e}");
            }
            let conns = rig.w.tcp_conns().unwrap_or(0);
            assert!(conns <= MAX_CONNS, "TCP table beyond its limit: {conns}");
        }
    });
});
