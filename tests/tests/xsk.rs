//! AF_XDP ports and the XDP steering program on real veth pairs in network
//! namespaces. Every test builds its own namespaces (unique names, removed on
//! drop) and ends with the frame-ledger check (`Rig::finish`).
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::process::Stdio;
use std::time::{Duration, Instant};

use engine::steer::{self, AttachMode, L4Proto, Steering, Verdict, XdpMode};
use engine::xsk::{BoundMode, Desc, FrameState, Port, Umem, UmemConfig, XskConfig, XskPort, BURST};
use pktengine_tests::frames::{arp_request, ipv4_flow, ping_frame, udp_frame};
use pktengine_tests::packet::{capture, send_frames};
use pktengine_tests::{Netns, VethPair};

const ENGINE_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// Source MAC of every crafted frame: captures filter on it.
const MARK: [u8; 6] = [0x02, 0x70, 0x6b, 0x74, 0x00, 0x01];
const WAIT: Duration = Duration::from_secs(20);

fn small_rings() -> XskConfig {
    XskConfig {
        rx_size: 512,
        tx_size: 512,
        fill_size: 1024,
        comp_size: 512,
        ..XskConfig::default()
    }
}

/// The engine side of a test: one UMEM, its sockets, the steering programs.
struct Rig {
    umem: Umem,
    ports: Vec<XskPort>,
    steers: Vec<Steering>,
}

/// A frame the rig received, copied out.
struct Got {
    port: usize,
    desc: Desc,
    bytes: Vec<u8>,
}

impl Rig {
    fn new(frames: u32) -> Rig {
        let umem = Umem::new(UmemConfig {
            frame_size: 2048,
            frame_count: frames,
            huge_pages: true,
            headroom: 0,
        })
        .expect("UMEM");
        Rig {
            umem,
            ports: Vec::new(),
            steers: Vec::new(),
        }
    }

    /// Binds a socket (call from inside the namespace).
    fn bind(&mut self, ifname: &str, queue: u32) -> usize {
        let p = XskPort::bind(&mut self.umem, ifname, queue, &small_rings()).expect("bind");
        // veth has no zero-copy: the fallback to copy mode must have happened.
        assert_eq!(p.mode(), BoundMode::Copy);
        self.ports.push(p);
        self.ports.len() - 1
    }

    /// Loads and attaches steering on `ifname` with the given sockets on
    /// queue `queue` (call from inside the namespace).
    fn steer(&mut self, ifname: &str, queues: &[(u32, &[usize])]) -> usize {
        let mut s = Steering::load().expect("load");
        for (q, socks) in queues {
            let fds: Vec<i32> = socks.iter().map(|i| self.ports[*i].raw_fd()).collect();
            s.set_queue_sockets(*q, &fds).expect("socket map");
        }
        let idx = engine::xsk::socket::ifindex(ifname).unwrap();
        let mode = s.attach(idx, AttachMode::Auto).expect("attach");
        assert_eq!(mode, XdpMode::Driver, "veth supports native XDP");
        self.steers.push(s);
        self.steers.len() - 1
    }

    fn refill_all(&mut self) {
        for p in &mut self.ports {
            p.refill(&mut self.umem, 1024);
        }
    }

    /// Receives on every port until `want` frames passing `keep` arrived or
    /// the time is up. Kept frames are copied out; all frames are freed
    /// unless `hold` (then the caller owns the kept ones).
    fn collect(&mut self, want: usize, keep: impl Fn(&[u8]) -> bool, hold: bool) -> Vec<Got> {
        let mut got = Vec::new();
        let mut descs = [Desc::default(); BURST];
        let deadline = Instant::now() + WAIT;
        while got.len() < want && Instant::now() < deadline {
            self.refill_all();
            let mut any = false;
            for (i, p) in self.ports.iter_mut().enumerate() {
                let n = p.recv(&mut self.umem, &mut descs);
                any |= n > 0;
                for d in &descs[..n] {
                    let bytes = self.umem.data(d).to_vec();
                    let k = keep(&bytes);
                    if k {
                        got.push(Got {
                            port: i,
                            desc: *d,
                            bytes,
                        });
                    }
                    if !(k && hold) {
                        self.umem.free(*d);
                    }
                }
            }
            if !any {
                let _ = self.ports[0].wait_rx(Duration::from_millis(20));
            }
        }
        got
    }

    /// The ledger check every test ends with: all transmissions complete,
    /// nothing held, the counts consistent; after closing, every frame back.
    fn finish(mut self) {
        let deadline = Instant::now() + WAIT;
        while self.umem.counts().tx > 0 && Instant::now() < deadline {
            for p in &mut self.ports {
                p.reclaim(&mut self.umem, 1024);
                p.wake();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let c = self.umem.check().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.tx, 0, "transmissions never completed: {c}");
        assert_eq!(c.held, 0, "frames still held at the end: {c}");
        // Census: the Rx frames include everything on the fill and RX rings
        // (the rest is inside the kernel); nothing is left on TX or completion.
        let mut on_rings = 0;
        for p in &self.ports {
            let l = p.ring_levels();
            assert_eq!((l.tx, l.comp), (0, 0), "{}: {l}", p.name());
            on_rings += l.fill + l.rx;
        }
        assert!(
            on_rings <= c.rx,
            "{on_rings} frames on fill/RX rings but the ledger has {c}"
        );
        for p in &self.ports {
            let s = p.stats();
            assert_eq!(
                s.xdp.rx_invalid_descs + s.xdp.tx_invalid_descs,
                0,
                "{}: {s}",
                p.name()
            );
        }
        self.steers.clear();
        self.ports.clear();
        let back = self.umem.recover().expect("recover");
        let c = self.umem.check().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.free,
            self.umem.frame_count(),
            "after closing ({back} recovered): {c}"
        );
    }
}

/// A namespace for the engine, one for the traffic, one veth between them.
struct Net {
    engine: Netns,
    peer: Netns,
    veth: VethPair,
    engine_mac: [u8; 6],
    peer_mac: [u8; 6],
}

impl Net {
    fn new(tag: &str, queues: u32) -> Net {
        let engine = Netns::new(&format!("{tag}e")).unwrap();
        let peer = Netns::new(&format!("{tag}p")).unwrap();
        let veth = VethPair::new(&engine, &peer, queues).unwrap();
        veth.addr(&engine, &veth.a, "198.18.0.1/24").unwrap();
        veth.addr(&peer, &veth.b, "198.18.0.2/24").unwrap();
        let engine_mac = veth.mac(&engine, &veth.a).unwrap();
        let peer_mac = veth.mac(&peer, &veth.b).unwrap();
        Net {
            engine,
            peer,
            veth,
            engine_mac,
            peer_mac,
        }
    }

    fn e(&self) -> String {
        self.veth.a.name.clone()
    }

    fn p(&self) -> String {
        self.veth.b.name.clone()
    }

    /// Static neighbours both ways: ARP goes to the engine in these tests.
    fn static_neighbours(&self) {
        let mac = |m: [u8; 6]| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        self.peer
            .ip(&[
                "neigh",
                "replace",
                "198.18.0.1",
                "lladdr",
                &mac(self.engine_mac),
                "dev",
                &self.p(),
            ])
            .unwrap();
        self.peer
            .ip(&[
                "neigh",
                "replace",
                "198.18.0.100",
                "lladdr",
                &mac(self.engine_mac),
                "dev",
                &self.p(),
            ])
            .unwrap();
        self.engine
            .ip(&[
                "neigh",
                "replace",
                "198.18.0.2",
                "lladdr",
                &mac(self.peer_mac),
                "dev",
                &self.e(),
            ])
            .unwrap();
    }
}

fn has_xdp(ns: &Netns, dev: &str) -> bool {
    let out = ns.ip(&["link", "show", "dev", dev]).unwrap();
    String::from_utf8_lossy(&out.stdout).contains("xdp")
}

/// Test 1: Frames from a namespace (ARP, ping, UDP) arrive at the socket byte for byte.
#[test]
fn rx_frames_arrive_byte_for_byte() {
    let net = Net::new("rx", 1);
    let e = net.e();
    let mut rig = net.engine.run(|| {
        let mut rig = Rig::new(2048);
        let s = rig.bind(&e, 0);
        rig.steer(&e, &[(0, &[s])]);
        rig.refill_all();
        rig
    });
    let mut sent = vec![
        arp_request(MARK, PEER_IP, ENGINE_IP),
        ping_frame(net.engine_mac, MARK, PEER_IP, ENGINE_IP, 0x77, 1),
    ];
    for i in 0..20u16 {
        let payload: Vec<u8> = (0..(i as usize * 50))
            .map(|b| (b as u8) ^ (i as u8))
            .collect();
        sent.push(udp_frame(
            net.engine_mac,
            MARK,
            PEER_IP,
            ENGINE_IP,
            40000 + i,
            9000,
            &payload,
        ));
    }
    send_frames(&net.peer, &net.p(), &sent).unwrap();
    let got = rig.collect(sent.len(), |b| b.get(6..12) == Some(&MARK[..]), false);
    assert_eq!(got.len(), sent.len(), "all crafted frames reach the socket");
    for (g, s) in got.iter().zip(&sent) {
        assert_eq!(&g.bytes, s, "frame differs");
    }

    // The peer kernel's own traffic too: ping makes it ARP for the engine's address.
    let _ = net.peer.exec("ping", &["-c", "1", "-W", "1", "198.18.0.1"]);
    let peer_mac = net.peer_mac;
    let arp = rig.collect(
        1,
        move |b| {
            b.get(12..14) == Some(&[8, 6][..])
                && b.get(6..12) == Some(&peer_mac[..])
                && b.get(38..42) == Some(&ENGINE_IP.octets()[..])
        },
        false,
    );
    assert!(
        !arp.is_empty(),
        "the kernel's ARP request reaches the socket"
    );
    let c = rig.steers[0].counters().unwrap();
    assert!(c.packets(Verdict::ToEngine) > sent.len() as u64, "{c}");
    assert_eq!(rig.ports[0].stats().xdp.rx_invalid_descs, 0);
    rig.finish();
}

/// Test 2: Frames sent on TX arrive in the namespace, byte for byte and in order.
#[test]
fn tx_frames_arrive_in_namespace() {
    let net = Net::new("tx", 1);
    let e = net.e();
    let mut rig = net.engine.run(|| {
        let mut rig = Rig::new(1024);
        rig.bind(&e, 0);
        rig
    });
    let frames: Vec<Vec<u8>> = (0..150u16)
        .map(|i| {
            let payload: Vec<u8> = (0..(18 + i as usize * 9))
                .map(|b| (b as u8).wrapping_add(i as u8))
                .collect();
            udp_frame(
                net.peer_mac,
                MARK,
                ENGINE_IP,
                PEER_IP,
                5000,
                6000 + i,
                &payload,
            )
        })
        .collect();
    let cap = capture(&net.peer, &net.p(), MARK, frames.len(), WAIT).unwrap();
    // More than one burst, and more than the 32 frames the kernel sends per
    // wakeup in copy mode.
    let mut pending: Vec<Desc> = frames
        .iter()
        .map(|f| rig.umem.alloc_with(f).unwrap())
        .collect();
    let deadline = Instant::now() + WAIT;
    while !pending.is_empty() && Instant::now() < deadline {
        let take = pending.len().min(BURST);
        let n = rig.ports[0].send(&mut rig.umem, &pending[..take]);
        pending.drain(..n);
        rig.ports[0].reclaim(&mut rig.umem, 1024);
        rig.ports[0].wake();
    }
    assert!(pending.is_empty());
    let got = cap.finish().unwrap();
    assert_eq!(got.len(), frames.len(), "all frames arrive");
    for (g, f) in got.iter().zip(&frames) {
        assert_eq!(g, f);
    }
    let s = rig.ports[0].stats();
    assert_eq!(s.tx_packets, 150);
    assert!(s.tx_wakeups > 0, "copy mode needs TX kicks: {s}");
    rig.finish();
}

/// Test 3: Pass rules: kernel services on the engine side keep answering on their
/// ports while everything else goes to the engine; the source blocklist drops.
#[test]
fn pass_rules_keep_host_services() {
    let net = Net::new("pass", 1);
    net.static_neighbours();
    net.engine
        .ip(&["addr", "add", "198.18.0.100/32", "dev", &net.e()])
        .unwrap();
    net.peer
        .ip(&["addr", "add", "198.18.0.3/32", "dev", &net.p()])
        .unwrap();
    let e = net.e();
    let (mut rig, udp, tcp) = net.engine.run(|| {
        let mut rig = Rig::new(2048);
        let s = rig.bind(&e, 0);
        let i = rig.steer(&e, &[(0, &[s])]);
        let st = &mut rig.steers[i];
        st.pass_l4_port(L4Proto::Udp, 7777, true).unwrap();
        st.pass_l4_port(L4Proto::Tcp, 2222, true).unwrap();
        st.pass_dst_prefix("198.18.0.100".parse().unwrap(), 32, true)
            .unwrap();
        st.drop_src_prefix("198.18.0.3".parse().unwrap(), 32, true)
            .unwrap();
        rig.refill_all();
        (
            rig,
            UdpSocket::bind("198.18.0.1:7777").unwrap(),
            TcpListener::bind("198.18.0.1:2222").unwrap(),
        )
    });
    // Kernel services: a UDP echo and a TCP banner.
    udp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok((n, from)) = udp.recv_from(&mut buf) {
                let _ = udp.send_to(&buf[..n], from);
            }
        }
    });
    let banner = std::thread::spawn(move || {
        use std::io::Write;
        if let Ok((mut c, _)) = tcp.accept() {
            let _ = c.write_all(b"SSH-2.0-test\r\n");
        }
    });

    let udp_ask = |src: &str, port: u16| {
        net.peer.exec(
            "python3",
            &["-c", &format!(
                "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('{src}',0))\ns.settimeout(1.0)\n\
                 ok=False\nfor i in range(5):\n  s.sendto(b'hello',('198.18.0.1',{port}))\n  try:\n    ok = s.recv(100)==b'hello'\n    break\n  except OSError: pass\nsys.exit(0 if ok else 1)"
            )],
        )
        .is_ok()
    };
    assert!(
        udp_ask("198.18.0.2", 7777),
        "the kernel's UDP service answers through the pass rule"
    );
    let tcp_ok = net
        .peer
        .exec(
            "python3",
            &["-c", "import socket\ns=socket.create_connection(('198.18.0.1',2222),timeout=5)\nassert s.recv(100).startswith(b'SSH-2.0')"],
        )
        .is_ok();
    assert!(
        tcp_ok,
        "the kernel's TCP service (SSH-like) works through the pass rule"
    );
    // The destination-prefix rule lets the kernel answer pings to .100, not to .1.
    assert!(
        net.peer
            .exec("ping", &["-c", "1", "-W", "2", "198.18.0.100"])
            .is_ok(),
        "pass by destination"
    );
    // Other ports go to the engine: no answer from the kernel, the socket sees them.
    assert!(
        !udp_ask("198.18.0.2", 7778),
        "no kernel answer on other ports"
    );
    let got = rig.collect(1, |b| ipv4_flow(b).is_some_and(|f| f.3 == 7778), false);
    assert!(!got.is_empty(), "other UDP reaches the engine socket");
    assert!(
        net.peer
            .exec("ping", &["-c", "1", "-W", "1", "198.18.0.1"])
            .is_err(),
        "ping to .1 goes to the engine"
    );
    // The blocklisted source gets nothing, even on the pass port.
    assert!(
        !udp_ask("198.18.0.3", 7777),
        "blocklisted source is dropped"
    );
    let c = rig.steers[0].counters().unwrap();
    assert!(c.packets(Verdict::PassL4Port) >= 4, "{c}"); // UDP request + TCP handshake and data
    assert!(c.packets(Verdict::PassDstPrefix) >= 1, "{c}");
    assert!(c.packets(Verdict::DropSrcPrefix) >= 1, "{c}");
    assert!(c.packets(Verdict::ToEngine) >= 2, "{c}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    echo.join().unwrap();
    banner.join().unwrap();
    rig.finish();
}

/// Test 4: SIGKILL of the engine process leaves no XDP program on the interface,
/// and kernel traffic flows again.
#[test]
fn sigkill_detaches_program() {
    let net = Net::new("kill", 1);
    assert!(
        net.peer
            .exec("ping", &["-c", "1", "-W", "2", "198.18.0.1"])
            .is_ok(),
        "baseline"
    );
    net.peer.ip(&["neigh", "flush", "dev", &net.p()]).unwrap();
    let mut child = net
        .engine
        .command(env!("CARGO_BIN_EXE_xsk_hold"))
        .arg(net.e())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("ready driver copy"),
        "helper says {line:?}"
    );
    assert!(
        has_xdp(&net.engine, &net.e()),
        "program attached while the engine runs"
    );
    // While it runs, ARP and ICMP go to the engine: the kernel does not answer.
    assert!(net
        .peer
        .exec("ping", &["-c", "1", "-W", "1", "198.18.0.1"])
        .is_err());
    child.kill().unwrap(); // SIGKILL, our own child
    child.wait().unwrap();
    let deadline = Instant::now() + WAIT;
    while has_xdp(&net.engine, &net.e()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !has_xdp(&net.engine, &net.e()),
        "no XDP program left after SIGKILL"
    );
    let flows = (0..5).any(|_| {
        net.peer
            .exec("ping", &["-c", "1", "-W", "2", "198.18.0.1"])
            .is_ok()
    });
    assert!(flows, "kernel traffic flows again");
}

/// Test 5a: A two-queue veth: traffic on both queues is received.
#[test]
fn two_queues_both_received() {
    let net = Net::new("mq", 2);
    net.static_neighbours();
    let e = net.e();
    let mut rig = net.engine.run(|| {
        let mut rig = Rig::new(2048);
        let q0 = rig.bind(&e, 0);
        let q1 = rig.bind(&e, 1);
        // Different queues: each socket has its own fill ring on the shared UMEM.
        assert!(rig.ports[q0].owns_fill_ring() && rig.ports[q1].owns_fill_ring());
        rig.steer(&e, &[(0, &[q0]), (1, &[q1])]);
        rig.refill_all();
        rig
    });
    // Each new UDP socket gets a random TX hash, which picks the veth queue.
    let script = "import socket\nfor i in range(64):\n  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n  s.sendto(b'q',('198.18.0.1',9999))\n  s.close()";
    let mut per_port = [0usize; 2];
    let deadline = Instant::now() + WAIT;
    while per_port.contains(&0) && Instant::now() < deadline {
        net.peer.exec("python3", &["-c", script]).unwrap();
        for g in rig.collect(64, |b| ipv4_flow(b).is_some_and(|f| f.3 == 9999), false) {
            per_port[g.port] += 1;
        }
    }
    assert!(
        per_port[0] > 0 && per_port[1] > 0,
        "frames on both queues: {per_port:?}"
    );
    rig.finish();
}

/// Test 5b: Two sockets on one queue split flows by the symmetric hash; both
/// directions of a flow land on the same socket, the one the Rust mirror of
/// the hash predicts.
#[test]
fn two_sockets_one_queue_split_by_symmetric_hash() {
    let net = Net::new("hash", 1);
    let e = net.e();
    let mut rig = net.engine.run(|| {
        let mut rig = Rig::new(2048);
        let a = rig.bind(&e, 0);
        let b = rig.bind(&e, 0);
        // Same queue: the kernel shares the first socket's fill ring.
        assert!(rig.ports[a].owns_fill_ring() && !rig.ports[b].owns_fill_ring());
        rig.steer(&e, &[(0, &[a, b])]);
        rig.refill_all();
        rig
    });
    let (x, y) = (PEER_IP, ENGINE_IP);
    let mut frames = Vec::new();
    for i in 0..32u16 {
        frames.push(udp_frame(
            net.engine_mac,
            MARK,
            x,
            y,
            1000 + i,
            2000,
            b"fwd",
        ));
        frames.push(udp_frame(
            net.engine_mac,
            MARK,
            y,
            x,
            2000,
            1000 + i,
            b"rev",
        ));
    }
    let predicted: Vec<u32> = (0..32u16)
        .map(|i| steer::socket_slot(steer::flow_hash_v4(x, y, 1000 + i, 2000, 17), 2))
        .collect();
    assert!(
        predicted.contains(&0) && predicted.contains(&1),
        "the chosen flows use both sockets"
    );
    send_frames(&net.peer, &net.p(), &frames).unwrap();
    let got = rig.collect(frames.len(), |b| b.get(6..12) == Some(&MARK[..]), false);
    assert_eq!(got.len(), frames.len());
    let mut seen = [[None::<usize>; 2]; 32];
    for g in &got {
        let (s, _, sp, dp, _) = ipv4_flow(&g.bytes).unwrap();
        let (flow, dir) = if s == x {
            ((sp - 1000) as usize, 0)
        } else {
            ((dp - 1000) as usize, 1)
        };
        seen[flow][dir] = Some(g.port);
        assert_eq!(
            g.port as u32, predicted[flow],
            "flow {flow} direction {dir} on the predicted socket"
        );
    }
    for (flow, dirs) in seen.iter().enumerate() {
        assert!(
            dirs[0].is_some() && dirs[0] == dirs[1],
            "flow {flow}: both directions on one socket: {dirs:?}"
        );
    }
    rig.finish();
}

/// Test 6: Shared UMEM: a frame received on port A and sent on port B arrives
/// intact, from the address it was received at (no copy in user space).
#[test]
fn shared_umem_forward_keeps_address() {
    let net = Net::new("fwd", 1);
    // Port B: a second veth from the engine namespace to the peer namespace.
    let vb = VethPair::new(&net.engine, &net.peer, 1).unwrap();
    let (ea, eb) = (net.e(), vb.a.name.clone());
    let mut rig = net.engine.run(|| {
        let mut rig = Rig::new(2048);
        let a = rig.bind(&ea, 0);
        let b = rig.bind(&eb, 0);
        assert!(
            rig.ports[b].owns_fill_ring(),
            "another interface: own fill and completion rings"
        );
        rig.steer(&ea, &[(0, &[a])]);
        rig.refill_all();
        rig
    });
    let frames: Vec<Vec<u8>> = (0..40u16)
        .map(|i| {
            udp_frame(
                [0x02, 0, 0, 0, 0, 0xbb],
                MARK,
                PEER_IP,
                Ipv4Addr::new(198, 19, 0, 1),
                3000 + i,
                4000,
                &[i as u8; 100],
            )
        })
        .collect();
    let cap = capture(&net.peer, &vb.b.name, MARK, frames.len(), WAIT).unwrap();
    send_frames(&net.peer, &net.p(), &frames).unwrap();
    let got = rig.collect(frames.len(), |b| b.get(6..12) == Some(&MARK[..]), true);
    assert_eq!(got.len(), frames.len());
    assert!(got.iter().all(|g| g.port == 0));
    let rx_addrs: std::collections::BTreeSet<u64> = got
        .iter()
        .map(|g| rig.umem.frame_base(g.desc.addr))
        .collect();
    let descs: Vec<Desc> = got.iter().map(|g| g.desc).collect();
    let mut off = 0;
    let deadline = Instant::now() + WAIT;
    while off < descs.len() && Instant::now() < deadline {
        off += rig.ports[1].send(&mut rig.umem, &descs[off..]);
        rig.ports[1].wake();
    }
    assert_eq!(off, descs.len());
    // Exactly the frames received on A are now with the kernel for transmit on B...
    let state = |rig: &Rig, a: u64| rig.umem.ledger().state(rig.umem.frame_index(a));
    assert_eq!(rig.umem.counts().tx as usize, descs.len());
    assert!(rx_addrs
        .iter()
        .all(|a| state(&rig, *a) == Some(FrameState::Tx)));
    // ...and B's completions return exactly those frames.
    let deadline = Instant::now() + WAIT;
    while rig.umem.counts().tx > 0 && Instant::now() < deadline {
        if rig.ports[1].reclaim(&mut rig.umem, 1024) == 0 {
            rig.ports[1].wake();
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert_eq!(rig.ports[1].stats().completed as usize, descs.len());
    assert!(
        rx_addrs
            .iter()
            .all(|a| state(&rig, *a) == Some(FrameState::Free)),
        "completed at the addresses received at"
    );
    let out = cap.finish().unwrap();
    assert_eq!(out, frames, "forwarded frames arrive intact");
    rig.finish();
}

/// XDP_STATISTICS: with nothing on the fill ring the kernel drops the frames
/// the program redirects and counts them; once the fill ring is stocked,
/// frames flow.
#[test]
fn xdp_statistics_count_fill_ring_empty() {
    let net = Net::new("stat", 1);
    let e = net.e();
    let mut rig = net.engine.run(|| {
        let mut rig = Rig::new(1024);
        let s = rig.bind(&e, 0);
        rig.steer(&e, &[(0, &[s])]);
        rig // no refill
    });
    let frames: Vec<Vec<u8>> = (0..10u16)
        .map(|i| {
            udp_frame(
                net.engine_mac,
                MARK,
                PEER_IP,
                ENGINE_IP,
                100 + i,
                9,
                b"drop me",
            )
        })
        .collect();
    send_frames(&net.peer, &net.p(), &frames).unwrap();
    let deadline = Instant::now() + WAIT;
    let mut s = rig.ports[0].stats();
    while s.xdp.rx_dropped < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        s = rig.ports[0].stats();
    }
    assert!(s.xdp.rx_dropped >= 10, "{s}");
    assert!(s.xdp.rx_fill_ring_empty_descs >= 1, "{s}");
    assert_eq!(s.rx_packets, 0);
    rig.refill_all();
    send_frames(&net.peer, &net.p(), &frames).unwrap();
    let got = rig.collect(frames.len(), |b| b.get(6..12) == Some(&MARK[..]), false);
    assert_eq!(got.len(), frames.len());
    rig.finish();
}

/// Generic mode, when asked for (the fallback where a driver has no native
/// XDP), steers the same way and shows as `xdpgeneric`.
#[test]
fn generic_mode_attach_steers_too() {
    let net = Net::new("gen", 1);
    let e = net.e();
    let mut rig = net.engine.run(|| {
        let mut rig = Rig::new(1024);
        let s = rig.bind(&e, 0);
        let mut st = Steering::load().unwrap();
        st.set_queue_sockets(0, &[rig.ports[s].raw_fd()]).unwrap();
        let idx = engine::xsk::socket::ifindex(&e).unwrap();
        assert_eq!(
            st.attach(idx, AttachMode::Generic).unwrap(),
            XdpMode::Generic
        );
        assert_eq!(st.mode(), Some(XdpMode::Generic));
        rig.steers.push(st);
        rig.refill_all();
        rig
    });
    let out = net.engine.ip(&["link", "show", "dev", &net.e()]).unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("xdpgeneric"));
    let frames: Vec<Vec<u8>> = (0..8u16)
        .map(|i| {
            udp_frame(
                net.engine_mac,
                MARK,
                PEER_IP,
                ENGINE_IP,
                200 + i,
                9,
                b"generic",
            )
        })
        .collect();
    send_frames(&net.peer, &net.p(), &frames).unwrap();
    let got = rig.collect(frames.len(), |b| b.get(6..12) == Some(&MARK[..]), false);
    assert_eq!(got.len(), frames.len());
    for (g, f) in got.iter().zip(&frames) {
        assert_eq!(&g.bytes, f);
    }
    rig.steers[0].detach();
    assert!(
        !has_xdp(&net.engine, &net.e()),
        "detach removes the program"
    );
    rig.finish();
}
