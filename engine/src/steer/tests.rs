//! The steering decisions, run in the kernel with BPF_PROG_TEST_RUN on
//! hand-built frames (needs root / CAP_BPF; no interface needed). As a normal
//! user each test says it is skipped and returns.
use super::*;
use crate::xsk::test_support::require_root;
use crate::xsk::{Umem, UmemConfig, XskConfig, XskPort};
use std::net::{Ipv4Addr, Ipv6Addr};

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];

fn eth(ethertype: u16, vlan: Option<u16>, payload: &[u8]) -> Vec<u8> {
    let mut f = MAC_B.to_vec();
    f.extend_from_slice(&MAC_A);
    if let Some(vid) = vlan {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, frag_off: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0, 0, 0, 0, 1];
    h[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&frag_off.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let c = crate::wire::checksum::checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[nh, 64]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(payload);
    h
}

fn l4(sport: u16, dport: u16) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&[0, 12, 0, 0, 1, 2, 3, 4]);
    u
}

fn v4(a: u8, b: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, a, b)
}

fn v6(x: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, x)
}

fn udp4(src: Ipv4Addr, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    eth(0x0800, None, &ipv4(src, dst, 17, 0, &l4(40000, dport)))
}

/// Runs `frame` and checks both the action and which counter moved.
fn expect(s: &Steering, frame: &[u8], action: u32, verdict: Verdict) {
    let before = s.counters().unwrap();
    assert_eq!(
        s.test_run(frame).unwrap(),
        action,
        "action for verdict {verdict}"
    );
    let after = s.counters().unwrap();
    for v in Verdict::ALL {
        let d = after.packets(v) - before.packets(v);
        assert_eq!(
            d,
            (v == verdict) as u64,
            "counter {v} moved by {d}, expected {verdict}"
        );
    }
    assert_eq!(
        after.bytes[verdict as usize] - before.bytes[verdict as usize],
        frame.len() as u64
    );
}

#[test]
fn no_socket_passes_everything() {
    if !require_root("steer::tests::no_socket_passes_everything") {
        return;
    }
    let s = Steering::load().unwrap();
    expect(
        &s,
        &udp4(v4(0, 1), v4(0, 2), 53),
        action::PASS,
        Verdict::PassNoSocket,
    );
    expect(
        &s,
        &eth(0x0806, None, &[0; 28]),
        action::PASS,
        Verdict::PassNoSocket,
    );
    // A frame cut inside its VLAN tag too (BPF_PROG_TEST_RUN needs 14 bytes at least).
    expect(
        &s,
        &eth(0x8100, None, &[]),
        action::PASS,
        Verdict::PassNoSocket,
    );
}

#[test]
fn source_blocklist_drops_v4_and_v6() {
    if !require_root("steer::tests::source_blocklist_drops_v4_and_v6") {
        return;
    }
    let mut s = Steering::load().unwrap();
    s.drop_src_prefix(v4(5, 0).into(), 24, true).unwrap();
    s.drop_src_prefix(v6(0).into(), 112, true).unwrap();
    expect(
        &s,
        &udp4(v4(5, 9), v4(0, 2), 53),
        action::DROP,
        Verdict::DropSrcPrefix,
    );
    expect(
        &s,
        &udp4(v4(6, 9), v4(0, 2), 53),
        action::PASS,
        Verdict::PassNoSocket,
    );
    // The blocklist wins over pass rules.
    s.pass_l4_port(L4Proto::Udp, 53, true).unwrap();
    expect(
        &s,
        &udp4(v4(5, 9), v4(0, 2), 53),
        action::DROP,
        Verdict::DropSrcPrefix,
    );
    let f6 = eth(0x86dd, None, &ipv6(v6(7), v6(0x1001), 17, &l4(1, 2)));
    expect(&s, &f6, action::DROP, Verdict::DropSrcPrefix);
    s.drop_src_prefix(v4(5, 0).into(), 24, false).unwrap();
    expect(
        &s,
        &udp4(v4(5, 9), v4(0, 2), 80),
        action::PASS,
        Verdict::PassNoSocket,
    );
}

#[test]
fn prefix_length_is_checked() {
    if !require_root("steer::tests::prefix_length_is_checked") {
        return;
    }
    let mut s = Steering::load().unwrap();
    assert!(s.drop_src_prefix(v4(0, 0).into(), 33, true).is_err());
    assert!(s.pass_dst_prefix(v6(0).into(), 129, true).is_err());
    assert!(s.set_queue_sockets(MAX_QUEUES, &[]).is_err());
    assert!(s.set_queue_sockets(0, &[1, 2, 3, 4, 5]).is_err());
}

/// With a socket bound, frames go to the engine unless a pass rule matches.
/// The socket is bound on `lo` in copy mode; no program is attached there,
/// so nothing real is redirected: BPF_PROG_TEST_RUN only reports the action.
#[test]
fn pass_rules_beat_the_socket() {
    if !require_root("steer::tests::pass_rules_beat_the_socket") {
        return;
    }
    let mut s = Steering::load().unwrap();
    let mut umem = Umem::new(UmemConfig {
        frame_count: 64,
        huge_pages: false,
        ..UmemConfig::default()
    })
    .unwrap();
    let cfg = XskConfig {
        rx_size: 64,
        tx_size: 64,
        fill_size: 64,
        comp_size: 64,
        ..XskConfig::default()
    };
    let port = XskPort::bind(&mut umem, "lo", 0, &cfg).unwrap();
    s.set_queue_sockets(0, &[port.raw_fd()]).unwrap();

    let udp = udp4(v4(0, 1), v4(0, 2), 5000);
    expect(&s, &udp, action::REDIRECT, Verdict::ToEngine);

    // Ethertype, also behind a VLAN tag.
    let arp = eth(0x0806, None, &[0; 28]);
    expect(&s, &arp, action::REDIRECT, Verdict::ToEngine);
    s.pass_ethertype(0x0806, true).unwrap();
    expect(&s, &arp, action::PASS, Verdict::PassEthertype);
    expect(
        &s,
        &eth(0x0806, Some(7), &[0; 28]),
        action::PASS,
        Verdict::PassEthertype,
    );
    s.pass_ethertype(0x0806, false).unwrap();
    expect(&s, &arp, action::REDIRECT, Verdict::ToEngine);

    // Destination prefixes, v4 and v6.
    s.pass_dst_prefix(v4(0, 2).into(), 32, true).unwrap();
    expect(&s, &udp, action::PASS, Verdict::PassDstPrefix);
    expect(
        &s,
        &udp4(v4(0, 1), v4(0, 3), 5000),
        action::REDIRECT,
        Verdict::ToEngine,
    );
    s.pass_dst_prefix(v6(0x100).into(), 120, true).unwrap();
    let f6 = |dst| eth(0x86dd, None, &ipv6(v6(1), dst, 17, &l4(1, 2)));
    expect(&s, &f6(v6(0x1ff)), action::PASS, Verdict::PassDstPrefix);
    expect(&s, &f6(v6(0x200)), action::REDIRECT, Verdict::ToEngine);

    // TCP/UDP destination ports: TCP 22 passes, UDP 22 does not.
    s.pass_l4_port(L4Proto::Tcp, 22, true).unwrap();
    let tcp22 = eth(
        0x0800,
        None,
        &ipv4(v4(0, 1), v4(0, 9), 6, 0, &l4(40000, 22)),
    );
    expect(&s, &tcp22, action::PASS, Verdict::PassL4Port);
    expect(
        &s,
        &udp4(v4(0, 1), v4(0, 9), 22),
        action::REDIRECT,
        Verdict::ToEngine,
    );
    // A non-first fragment has no ports: it cannot match a port rule.
    let frag = eth(
        0x0800,
        None,
        &ipv4(v4(0, 1), v4(0, 9), 6, 100, &l4(40000, 22)),
    );
    expect(&s, &frag, action::REDIRECT, Verdict::ToEngine);
    // IPv6 behind a hop-by-hop and a destination-options header.
    let mut ext = vec![60, 0, 1, 4, 0, 0, 0, 0]; // hop-by-hop, next: dest opts
    ext.extend_from_slice(&[6, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // dest opts (16 B), next: TCP
    ext.extend_from_slice(&l4(40000, 22));
    let tcp6 = eth(0x86dd, None, &ipv6(v6(1), v6(0x300), 0, &ext));
    expect(&s, &tcp6, action::PASS, Verdict::PassL4Port);
    // Truncated TCP header: no ports, to the engine.
    let short = eth(0x0800, None, &ipv4(v4(0, 1), v4(0, 9), 6, 0, &[0, 1]));
    expect(&s, &short, action::REDIRECT, Verdict::ToEngine);

    // No sockets again: pass.
    s.set_queue_sockets(0, &[]).unwrap();
    expect(
        &s,
        &udp4(v4(0, 1), v4(0, 3), 5000),
        action::PASS,
        Verdict::PassNoSocket,
    );
    drop(port);
    umem.recover().unwrap();
    umem.check().unwrap();
}

/// A socket bound on `lo` queue 0 (copy mode) in the program's XSKMAP, so
/// that "to the engine" shows as REDIRECT; see `pass_rules_beat_the_socket`.
struct Bound {
    port: Option<XskPort>,
    umem: Umem,
}

impl Bound {
    fn new(s: &mut Steering) -> Bound {
        let mut umem = Umem::new(UmemConfig {
            frame_count: 64,
            huge_pages: false,
            ..UmemConfig::default()
        })
        .unwrap();
        let cfg = XskConfig {
            rx_size: 64,
            tx_size: 64,
            fill_size: 64,
            comp_size: 64,
            ..XskConfig::default()
        };
        let port = XskPort::bind(&mut umem, "lo", 0, &cfg).unwrap();
        s.set_queue_sockets(0, &[port.raw_fd()]).unwrap();
        Bound {
            port: Some(port),
            umem,
        }
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        drop(self.port.take());
        let _ = self.umem.recover();
    }
}

fn tcp4(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, vlan: Option<u16>) -> Vec<u8> {
    eth(0x0800, vlan, &ipv4(src, dst, 6, 0, &l4(sport, dport)))
}

fn tcp6(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16) -> Vec<u8> {
    eth(0x86dd, None, &ipv6(src, dst, 6, &l4(sport, dport)))
}

fn arp(op: u16, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&MAC_A);
    a.extend_from_slice(&sender.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target.octets());
    eth(0x0806, None, &a)
}

/// An ICMPv6 message of `typ` (checksum not checked by the program), with
/// `target` after the 4 reserved bytes, as NS and NA carry it.
fn icmp6(src: Ipv6Addr, dst: Ipv6Addr, typ: u8, target: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![typ, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    eth(0x86dd, None, &ipv6(src, dst, 58, &m))
}

/// The engine's addresses: 198.18.0.1, 2001:2::1 and fe80::1 on this port.
fn control_rules(s: &mut Steering) {
    s.pass_local_addr(v4(0, 1).into(), true).unwrap();
    s.pass_local_addr(v6(1).into(), true).unwrap();
    s.pass_local_addr("fe80::1".parse::<Ipv6Addr>().unwrap().into(), true)
        .unwrap();
    s.pass_local_proto(89, true).unwrap();
    s.pass_local_port(6, 179, true).unwrap();
    s.pass_local_port(17, 3784, true).unwrap();
    s.pass_nd(true).unwrap();
    s.pass_arp(true).unwrap();
    s.pass_control(true).unwrap();
}

#[test]
fn control_traffic_to_the_engine_goes_to_the_kernel() {
    if !require_root("steer::tests::control_traffic_to_the_engine_goes_to_the_kernel") {
        return;
    }
    let mut s = Steering::load().unwrap();
    let _b = Bound::new(&mut s);
    let (me, peer, far) = (v4(0, 1), v4(0, 2), v4(9, 9));
    // Nothing configured yet: BGP to the engine goes to the engine.
    expect(
        &s,
        &tcp4(peer, me, 40000, 179, None),
        action::REDIRECT,
        Verdict::ToEngine,
    );
    control_rules(&mut s);
    // BGP: a peer connecting to the kernel's port 179, and the answers to
    // the kernel's own connection out to a peer's port 179 (source port 179).
    for f in [
        tcp4(peer, me, 40000, 179, None),
        tcp4(peer, me, 179, 40000, None),
        tcp6(v6(2), v6(1), 40000, 179),
        tcp6(v6(2), v6(1), 179, 40000),
        // Behind a VLAN tag too.
        tcp4(peer, me, 40000, 179, Some(7)),
        // BFD.
        udp4(peer, me, 3784),
    ] {
        expect(&s, &f, action::PASS, Verdict::PassControl);
    }
    // Transit BGP (between two hosts across the engine) is forwarded.
    for f in [
        tcp4(peer, far, 40000, 179, None),
        tcp4(far, peer, 179, 40000, None),
        tcp6(v6(2), v6(0x900), 40000, 179),
        udp4(peer, far, 3784),
    ] {
        expect(&s, &f, action::REDIRECT, Verdict::ToEngine);
    }
    // Other traffic to the engine stays with the engine: echo, UDP, TCP 80.
    let echo = eth(
        0x0800,
        None,
        &ipv4(peer, me, 1, 0, &[8, 0, 0, 0, 0, 1, 0, 1]),
    );
    expect(&s, &echo, action::REDIRECT, Verdict::ToEngine);
    expect(&s, &udp4(peer, me, 53), action::REDIRECT, Verdict::ToEngine);
    expect(
        &s,
        &tcp4(peer, me, 40000, 80, None),
        action::REDIRECT,
        Verdict::ToEngine,
    );
    let echo6 = icmp6(v6(2), v6(1), 128, v6(0));
    expect(&s, &echo6, action::REDIRECT, Verdict::ToEngine);
    // UDP 179 is not TCP 179.
    expect(
        &s,
        &udp4(peer, me, 179),
        action::REDIRECT,
        Verdict::ToEngine,
    );
    // A non-first fragment to port 179 has no ports.
    let frag = eth(0x0800, None, &ipv4(peer, me, 6, 100, &l4(40000, 179)));
    expect(&s, &frag, action::REDIRECT, Verdict::ToEngine);

    // Turning a rule off takes it away.
    s.pass_local_port(6, 179, false).unwrap();
    expect(
        &s,
        &tcp4(peer, me, 40000, 179, None),
        action::REDIRECT,
        Verdict::ToEngine,
    );
    s.pass_local_addr(me.into(), false).unwrap();
    s.pass_local_port(6, 179, true).unwrap();
    expect(
        &s,
        &tcp4(peer, me, 40000, 179, None),
        action::REDIRECT,
        Verdict::ToEngine,
    );
    assert!(s.pass_local_port(1, 7, true).is_err());
    // The rule off as a whole: nothing passes, whatever the maps hold.
    s.pass_local_addr(me.into(), true).unwrap();
    expect(
        &s,
        &tcp4(peer, me, 40000, 179, None),
        action::PASS,
        Verdict::PassControl,
    );
    s.pass_control(false).unwrap();
    expect(
        &s,
        &tcp4(peer, me, 40000, 179, None),
        action::REDIRECT,
        Verdict::ToEngine,
    );
}

/// What the rule costs per frame in the program (BPF_PROG_TEST_RUN, the
/// kernel's average over 2^20 runs; `cargo test -p engine --lib
/// steer::tests::control_rule_cost -- --ignored --nocapture`).
#[test]
#[ignore]
fn control_rule_cost() {
    if !require_root("steer::tests::control_rule_cost") {
        return;
    }
    let mut s = Steering::load().unwrap();
    let _b = Bound::new(&mut s);
    let transit = udp4(v4(0, 2), v4(9, 9), 5000);
    let bgp = tcp4(v4(0, 2), v4(0, 1), 40000, 179, None);
    let ns = |s: &Steering, f: &[u8]| {
        let input = || libbpf_rs::ProgramInput {
            context_in: None,
            context_out: None,
            data_in: Some(f),
            data_out: None,
            cpu: 0,
            flags: 0,
            repeat: 1 << 20,
            _non_exhaustive: (),
        };
        (0..5)
            .map(|_| {
                s.skel
                    .progs
                    .steer
                    .test_run(input())
                    .unwrap()
                    .duration
                    .as_nanos()
            })
            .min()
            .unwrap()
    };
    let off = ns(&s, &transit);
    control_rules(&mut s);
    let on = ns(&s, &transit);
    let passed = ns(&s, &bgp);
    println!("steering ns/frame: transit, rule off {off}; transit, rule on {on}; BGP to the engine (passed) {passed}");
}

#[test]
fn routing_protocols_and_neighbor_discovery_go_to_the_kernel() {
    if !require_root("steer::tests::routing_protocols_and_neighbor_discovery_go_to_the_kernel") {
        return;
    }
    let mut s = Steering::load().unwrap();
    let _b = Bound::new(&mut s);
    control_rules(&mut s);
    let (me, peer) = (v4(0, 1), v4(0, 2));
    let ospf = |dst| eth(0x0800, None, &ipv4(peer, dst, 89, 0, &[2, 1, 0, 44]));
    // OSPF hellos to AllSPFRouters / AllDRouters, and unicast to the engine.
    for dst in [Ipv4Addr::new(224, 0, 0, 5), Ipv4Addr::new(224, 0, 0, 6), me] {
        expect(&s, &ospf(dst), action::PASS, Verdict::PassControl);
    }
    // OSPF across the engine is forwarded; 239/8 is not link-local.
    expect(&s, &ospf(v4(9, 9)), action::REDIRECT, Verdict::ToEngine);
    expect(
        &s,
        &ospf(Ipv4Addr::new(239, 0, 0, 5)),
        action::REDIRECT,
        Verdict::ToEngine,
    );
    // OSPFv3 to ff02::5 and ff02::6; and to the link-local address.
    let ll: Ipv6Addr = "fe80::1".parse().unwrap();
    let peer_ll: Ipv6Addr = "fe80::2".parse().unwrap();
    for dst in ["ff02::5", "ff02::6"] {
        let f = eth(
            0x86dd,
            None,
            &ipv6(peer_ll, dst.parse().unwrap(), 89, &[3, 1, 0, 36]),
        );
        expect(&s, &f, action::PASS, Verdict::PassControl);
    }
    let f = eth(0x86dd, None, &ipv6(peer_ll, ll, 6, &l4(179, 50000)));
    expect(&s, &f, action::PASS, Verdict::PassControl);

    // ND: NS for the engine's addresses (to their solicited-node group and
    // unicast), NA to the engine, RS to all-routers.
    let sn = "ff02::1:ff00:1".parse().unwrap();
    for f in [
        icmp6(v6(2), sn, 135, v6(1)),
        icmp6(peer_ll, sn, 135, ll),
        icmp6(v6(2), v6(1), 135, v6(1)),
        icmp6(v6(2), v6(1), 136, v6(2)),
        icmp6(peer_ll, ll, 136, peer_ll),
        icmp6(peer_ll, "ff02::2".parse().unwrap(), 133, v6(0)),
    ] {
        expect(&s, &f, action::PASS, Verdict::PassControl);
    }
    // NS for an address that is not the engine's (a VIP): the engine answers.
    expect(
        &s,
        &icmp6(v6(2), "ff02::1:ff00:77".parse().unwrap(), 135, v6(0x77)),
        action::REDIRECT,
        Verdict::ToEngine,
    );
    // ND across the engine (not to it) is not the kernel's.
    expect(
        &s,
        &icmp6(v6(2), v6(0x900), 136, v6(2)),
        action::REDIRECT,
        Verdict::ToEngine,
    );
    // ARP for the engine's address (request and reply), also tagged; ARP
    // for another address stays with the engine.
    expect(&s, &arp(1, peer, me), action::PASS, Verdict::PassControl);
    expect(&s, &arp(2, peer, me), action::PASS, Verdict::PassControl);
    let mut tagged = arp(1, peer, me);
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x07]);
    expect(&s, &tagged, action::PASS, Verdict::PassControl);
    expect(
        &s,
        &arp(1, peer, v4(0, 77)),
        action::REDIRECT,
        Verdict::ToEngine,
    );
    // Truncated ARP: to the engine, which counts it malformed.
    let mut short = arp(1, peer, me);
    short.truncate(14 + 20);
    expect(&s, &short, action::REDIRECT, Verdict::ToEngine);

    // With arp_nd off, both stay with the engine.
    s.pass_nd(false).unwrap();
    s.pass_arp(false).unwrap();
    expect(&s, &arp(1, peer, me), action::REDIRECT, Verdict::ToEngine);
    expect(
        &s,
        &icmp6(v6(2), sn, 135, v6(1)),
        action::REDIRECT,
        Verdict::ToEngine,
    );
    // OSPF still passes: it is a protocol rule.
    expect(
        &s,
        &ospf(Ipv4Addr::new(224, 0, 0, 5)),
        action::PASS,
        Verdict::PassControl,
    );
    s.pass_local_proto(89, false).unwrap();
    expect(
        &s,
        &ospf(Ipv4Addr::new(224, 0, 0, 5)),
        action::REDIRECT,
        Verdict::ToEngine,
    );
}
