//! Bridges with routed interfaces (BVIs) end to end on in-memory ports:
//! hosts on switch ports reach the engine (ARP, ping, ND) through the
//! bridge, are routed to and from a routed port and between the VLANs of a
//! VLAN-aware bridge; traffic between two hosts of one VLAN is switched and
//! never touches the router. Frames checked byte by byte where it matters,
//! the frame ledger after every test.
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use crate::context::counters::{Drop, SharedCounters, Stage};
use crate::context::events;
use crate::context::tables::Routes;
use crate::control::config::{Config, Environment, PollMode};
use crate::dataplane::tables::Tables;
use crate::dataplane::worker::{Socket, Worker, WorkerConfig};
use crate::neighbor::{NeighborKey, NeighborTable};
use crate::runtime::setup;
use crate::wire::checksum;
use crate::wire::Mac;
use crate::xsk::{MemPort, MemPortConfig, Umem, UmemConfig};

const A: Mac = [0x02, 0xa0, 0, 0, 0, 0x0a];
const B: Mac = [0x02, 0xb0, 0, 0, 0, 0x0b];
const OUT: Mac = [0x02, 0x0e, 0, 0, 0, 0x0e];
const LAN_MAC: Mac = [0x02, 0, 0, 0, 0x01, 0x01];
const BCAST: Mac = [0xff; 6];
const HA: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const HB: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 3);
const LAN_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const FAR: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 2);

struct AnyEnv;
impl Environment for AnyEnv {
    fn interface_exists(&self, _: &str) -> bool {
        true
    }
    fn core_count(&self) -> usize {
        2
    }
}

/// p0, p1: access ports of bridge `lan` (VLAN 1), whose BVI `lan` has
/// 198.18.1.1/24; `wan` (m2) a routed port.
const GATEWAY: &str = r#"
[engine]
cores = [0]
[[bridge]]
name = "lan"
addresses = ["198.18.1.1/24", "2001:2:0:1::1/64"]
mac = "02:00:00:00:01:01"
[[port]]
name = "p0"
interface = "m0"
mode = "switch"
bridge = "lan"
[[port]]
name = "p1"
interface = "m1"
mode = "switch"
bridge = "lan"
[[port]]
name = "wan"
interface = "m2"
mode = "router"
addresses = ["198.19.1.1/24"]
"#;

/// p0: access VLAN 10, p1: access VLAN 20, p2: trunk 10, 20; a BVI per VLAN.
const VLANS: &str = r#"
[engine]
cores = [0]
[[bridge]]
name = "br0"
[[bridge.vlan]]
id = 10
addresses = ["198.18.10.1/24"]
[[bridge.vlan]]
id = 20
addresses = ["198.18.20.1/24"]
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
vlan = 20
[[port]]
name = "p2"
interface = "m2"
mode = "switch"
bridge = "br0"
trunk = [10, 20]
"#;

struct Rig {
    w: Worker<MemPort>,
    tables: Arc<Tables>,
    neigh: NeighborTable,
    shared: Arc<SharedCounters>,
    cfg: Config,
}

fn rig(text: &str) -> Rig {
    let cfg = Config::parse(Path::new("t.toml"), text, &AnyEnv).unwrap();
    let ifs =
        setup::interfaces(&cfg, &|n: &str| Ok([0x02, 0xee, 0, 0, 0, n.as_bytes()[1]])).unwrap();
    let mut rt = setup::route_table(&cfg).unwrap();
    rt.publish();
    let routes = Routes::resolve(rt.reader().snapshot().clone(), &ifs);
    let neigh = NeighborTable::new(30_000, 120_000);
    let tables = Arc::new(Tables::new(ifs, routes, neigh.map()).with_l2(cfg.switch()));
    let umem = Umem::new(UmemConfig {
        frame_size: 2048,
        frame_count: 2048,
        huge_pages: false,
        headroom: 0,
    })
    .unwrap();
    let sockets = (0..3)
        .map(|i| Socket {
            port: i,
            io: MemPort::new(&format!("b{i}"), &umem, MemPortConfig::default()),
        })
        .collect();
    let shared = Arc::new(SharedCounters::default());
    let (sink, _events) = events::channel(1024);
    let wc = WorkerConfig {
        id: 0,
        poll: PollMode::Busy,
        idle_timeout: std::time::Duration::from_millis(1),
    };
    let mut w = Worker::new(wc, umem, sockets, tables.clone(), shared.clone(), sink);
    w.prime();
    Rig {
        w,
        tables,
        neigh,
        shared,
        cfg,
    }
}

impl Rig {
    fn port(&self, name: &str) -> u16 {
        self.cfg.ports.iter().position(|p| p.name == name).unwrap() as u16
    }

    /// Injects on `p`, runs the worker; what each of the three sockets sent.
    fn send(&mut self, p: usize, frame: &[u8]) -> [Vec<Vec<u8>>; 3] {
        let (umem, socks) = self.w.split();
        assert!(socks[p].io.inject(umem, frame), "inject refused");
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

    fn learn(&mut self, port: u16, ip: Ipv4Addr, mac: Mac) {
        self.neigh.learn(
            NeighborKey {
                port,
                ip: IpAddr::V4(ip),
            },
            mac,
            0,
            true,
        );
        self.tables.neigh.store(Arc::new(self.neigh.map()));
    }

    fn stage(&self, s: Stage) -> u64 {
        self.shared.stage_count(s)
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

/// `eth` with an 802.1Q tag of `vid`.
fn eth_tagged(dst: Mac, src: Mac, vid: u16, et: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x81, 0x00]);
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn arp_request(sha: Mac, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&tpa.octets());
    a
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, proto: u8, payload: &[u8]) -> Vec<u8> {
    let len = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0, 0, ttl, proto, 0, 0];
    h[2..4].copy_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let c = checksum::checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn echo_request(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    icmp.extend_from_slice(&[0x5a; 32]);
    let c = checksum::checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, ttl, 1, &icmp)
}

#[test]
fn a_bridge_host_resolves_and_pings_the_bvi() {
    let mut r = rig(GATEWAY);
    let lan = r.port("lan");
    assert!(r.tables.ifs.is_bvi(lan));
    // ARP for the gateway: flooded to p1, answered by the BVI to p0.
    let out = r.send(0, &eth(BCAST, A, 0x0806, &arp_request(A, HA, LAN_IP)));
    assert_eq!(
        out[1].len(),
        1,
        "the broadcast is flooded to the other host"
    );
    assert_eq!(
        out[0].len(),
        1,
        "the BVI's reply comes back on p0: {:?}",
        out[0]
    );
    let reply = &out[0][0];
    assert_eq!(&reply[..6], &A);
    assert_eq!(&reply[6..12], &LAN_MAC, "from the BVI's MAC");
    assert_eq!(&reply[20..22], &[0, 2], "an ARP reply");
    assert_eq!(&reply[22..28], &LAN_MAC);
    assert!(out[2].is_empty(), "nothing on the routed port");
    // Ping the gateway (the control thread has learned A from its ARP
    // request): the reply is switched back to the host's port only.
    r.learn(lan, HA, A);
    let out = r.send(0, &eth(LAN_MAC, A, 0x0800, &echo_request(HA, LAN_IP, 64)));
    assert_eq!(out[0].len(), 1, "echo reply on p0");
    assert!(out[1].is_empty() && out[2].is_empty(), "{out:?}");
    let f = &out[0][0];
    assert_eq!((&f[..6], &f[6..12]), (&A[..], &LAN_MAC[..]));
    assert_eq!(f[14 + 20], 0, "ICMP echo reply");
    assert_eq!(&f[26..30], &LAN_IP.octets());
    assert_eq!(
        r.stage(Stage::BviIn),
        2,
        "ARP and ping reached the router through the BVI"
    );
    assert_eq!(
        r.stage(Stage::BviOut),
        2,
        "the two answers went into the bridge"
    );
    r.finish();
}

#[test]
fn bridge_hosts_are_routed_to_and_from_a_routed_port() {
    let mut r = rig(GATEWAY);
    let (lan, wan) = (r.port("lan"), r.port("wan"));
    r.learn(wan, FAR, OUT);
    // Out: to the BVI's MAC, routed to wan with the TTL decremented.
    let out = r.send(0, &eth(LAN_MAC, A, 0x0800, &echo_request(HA, FAR, 64)));
    assert_eq!(out[2].len(), 1, "routed out of wan: {out:?}");
    let f = &out[2][0];
    assert_eq!(
        (&f[..6], &f[6..12]),
        (&OUT[..], &[0x02, 0xee, 0, 0, 0, b'2'][..])
    );
    assert_eq!(f[14 + 8], 63, "TTL decremented");
    assert!(out[0].is_empty() && out[1].is_empty());
    // In: toward a bridge host the engine has not resolved: the ARP request
    // goes out of the BVI, flooded to both hosts from the BVI's MAC.
    let out = r.send(
        2,
        &eth(
            [0x02, 0xee, 0, 0, 0, b'2'],
            OUT,
            0x0800,
            &echo_request(FAR, HA, 64),
        ),
    );
    for p in [0, 1] {
        assert_eq!(out[p].len(), 1, "ARP request flooded to p{p}: {out:?}");
        assert_eq!(&out[p][0][..12], &[BCAST, LAN_MAC].concat()[..]);
        assert_eq!(&out[p][0][12..14], &[0x08, 0x06]);
    }
    // Resolved, and the bridge knows the host's port: the packet goes to p0 only.
    r.learn(lan, HA, A);
    r.send(0, &eth(LAN_MAC, A, 0x0800, &echo_request(HA, LAN_IP, 64)));
    let out = r.send(
        2,
        &eth(
            [0x02, 0xee, 0, 0, 0, b'2'],
            OUT,
            0x0800,
            &echo_request(FAR, HA, 64),
        ),
    );
    assert_eq!(out[0].len(), 1, "to the host's port: {out:?}");
    assert!(out[1].is_empty(), "not flooded: the bridge learned A on p0");
    let f = &out[0][0];
    assert_eq!((&f[..6], &f[6..12]), (&A[..], &LAN_MAC[..]));
    assert_eq!(f[14 + 8], 63);
    r.finish();
}

#[test]
fn traffic_between_two_bridge_hosts_is_switched_not_routed() {
    let mut r = rig(GATEWAY);
    r.send(1, &eth(LAN_MAC, B, 0x0800, &echo_request(HB, LAN_IP, 64)));
    let (bvi_in, fwd) = (r.stage(Stage::BviIn), r.stage(Stage::Ip4Forward));
    for _ in 0..5 {
        let out = r.send(0, &eth(B, A, 0x0800, &echo_request(HA, HB, 64)));
        assert_eq!(out[1].len(), 1, "switched to B's port");
        assert_eq!(out[1][0][14 + 8], 64, "not routed: TTL as sent");
        assert!(out[0].is_empty() && out[2].is_empty());
    }
    assert_eq!(r.stage(Stage::BviIn), bvi_in, "the router never saw them");
    assert_eq!(r.stage(Stage::Ip4Forward), fwd);
    r.finish();
}

#[test]
fn each_vlan_has_its_bvi_and_traffic_is_routed_between_vlans() {
    let mut r = rig(VLANS);
    let (b10, b20) = (r.port("br0.10"), r.port("br0.20"));
    let mac10 = r.tables.ifs.port(b10).unwrap().mac;
    let mac20 = r.tables.ifs.port(b20).unwrap().mac;
    assert_ne!(mac10, mac20);
    let h10 = Ipv4Addr::new(198, 18, 10, 2);
    let h20 = Ipv4Addr::new(198, 18, 20, 2);
    // An ARP in VLAN 10 is answered by VLAN 10's BVI only; it reaches the trunk tagged 10.
    let out = r.send(
        0,
        &eth(
            BCAST,
            A,
            0x0806,
            &arp_request(A, h10, Ipv4Addr::new(198, 18, 10, 1)),
        ),
    );
    assert_eq!(out[0].len(), 1);
    assert_eq!(&out[0][0][6..12], &mac10);
    assert!(out[1].is_empty(), "VLAN 20 sees nothing");
    assert_eq!(out[2].len(), 1);
    assert_eq!(&out[2][0][12..16], &[0x81, 0x00, 0, 10]);
    // VLAN 20's BVI does not answer for VLAN 10's address.
    let out = r.send(
        1,
        &eth(
            BCAST,
            B,
            0x0806,
            &arp_request(B, h20, Ipv4Addr::new(198, 18, 10, 1)),
        ),
    );
    assert!(out[1].is_empty(), "{out:?}");
    // Routed from VLAN 10 (p0, untagged) to VLAN 20 (p1): TTL - 1, VLAN 20's BVI MAC.
    r.learn(b20, h20, B);
    r.send(
        1,
        &eth(
            mac20,
            B,
            0x0800,
            &echo_request(h20, Ipv4Addr::new(198, 18, 20, 1), 64),
        ),
    );
    let out = r.send(0, &eth(mac10, A, 0x0800, &echo_request(h10, h20, 64)));
    assert_eq!(out[1].len(), 1, "{out:?}");
    let f = &out[1][0];
    assert_eq!((&f[..6], &f[6..12]), (&B[..], &mac20[..]));
    assert_eq!(f[14 + 8], 63);
    // From the trunk, tagged 10, to the BVI: the answer leaves the trunk tagged 10.
    let out = r.send(
        2,
        &eth_tagged(
            mac10,
            [0x02, 0x77, 0, 0, 0, 7],
            10,
            0x0800,
            &echo_request(
                Ipv4Addr::new(198, 18, 10, 7),
                Ipv4Addr::new(198, 18, 10, 1),
                64,
            ),
        ),
    );
    assert_eq!(out[2].len(), 1, "{out:?}");
    assert_eq!(&out[2][0][12..16], &[0x81, 0x00, 0, 10]);
    assert_eq!(out[2][0][18 + 20], 0, "echo reply");
    assert_eq!(r.shared.drop_count(Drop::BviQueueFull), 0);
    r.finish();
}

#[test]
fn a_burst_of_broadcasts_reaches_the_bvi_and_every_answer_leaves() {
    let mut r = rig(GATEWAY);
    let n = 48;
    {
        let (umem, socks) = r.w.split();
        for i in 0..n {
            let mac = [0x02, 0xa0, 0, 0, 0, i as u8 + 1];
            let ip = Ipv4Addr::new(198, 18, 1, 10 + i as u8);
            assert!(socks[0].io.inject(
                umem,
                &eth(BCAST, mac, 0x0806, &arp_request(mac, ip, LAN_IP))
            ));
        }
    }
    r.w.poll_once();
    assert_eq!(r.sent(1).len(), n, "each flooded to p1");
    assert_eq!(r.sent(0).len(), n, "each answered");
    assert_eq!(r.stage(Stage::BviIn), n as u64);
    r.finish();
}
