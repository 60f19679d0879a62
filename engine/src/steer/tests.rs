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
