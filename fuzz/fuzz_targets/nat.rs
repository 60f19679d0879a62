//! The NAT's packet code on arbitrary IPv4 packets: classification and every
//! rewrite never panic, and a rewrite of a packet whose header checksum was
//! valid leaves it valid (the incremental update is exact). The first six
//! bytes are the endpoint to translate to; the rest is the packet, its
//! header checksum fixed first so the fuzzer reaches past it.
#![no_main]

use engine::conntrack::rewrite::{classify, rewrite_addr, rewrite_echo, rewrite_icmp_error, rewrite_ports, Ep, Kind, Side};
use engine::wire::checksum;
use libfuzzer_sys::fuzz_target;

fn header_ok(ip: &[u8]) -> bool {
    let hl = usize::from(ip[0] & 15) * 4;
    checksum::data(&ip[..hl]) == 0xffff
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 + 20 {
        return;
    }
    let to = Ep::new(u32::from_be_bytes([data[0], data[1], data[2], data[3]]), u16::from_be_bytes([data[4], data[5]]));
    let mut ip = data[6..].to_vec();
    ip[0] = 0x40 | (ip[0] & 0x0f).max(5);
    let hl = usize::from(ip[0] & 15) * 4;
    if ip.len() < hl {
        let _ = classify(&ip);
        return;
    }
    ip[10..12].fill(0);
    let c = checksum::checksum(&ip[..hl]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let side = if data[5] & 1 == 0 { Side::Src } else { Side::Dst };
    let done = match classify(&ip) {
        Kind::Ports { .. } => rewrite_ports(&mut ip, side, to),
        Kind::Echo { .. } => rewrite_echo(&mut ip, side, to),
        Kind::IcmpError { .. } => rewrite_icmp_error(&mut ip, side, to.addr, to),
        Kind::LaterFragment { .. } => rewrite_addr(&mut ip, side, to.addr),
        Kind::Other => false,
    };
    if done {
        assert!(header_ok(&ip), "the IPv4 header checksum no longer verifies");
    }
});
