//! UDP: the view and repr never panic; whatever parses re-emits and parses
//! the same. The first byte picks the address family and whether to fix the
//! length and checksum first, so the fuzzer reaches past them.
#![no_main]

use core::net::{Ipv4Addr, Ipv6Addr};

use engine::wire::udp::{UdpPacket, UdpRepr, HEADER_LEN};
use engine::wire::PseudoHeader;
use libfuzzer_sys::fuzz_target;

fn round_trip<A: PseudoHeader>(bytes: &mut [u8], fix: bool, src: A, dst: A) {
    if fix && bytes.len() >= HEADER_LEN {
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        let mut p = UdpPacket::new_unchecked(&mut *bytes);
        p.set_len(len);
        if p.check_len().is_ok() {
            p.fill_checksum(src, dst);
        }
    }
    let _ = UdpPacket::new_unchecked(&*bytes).to_string();
    let Ok(packet) = UdpPacket::new_checked(&*bytes) else {
        return;
    };
    let _ = packet.to_string();
    let Ok(repr) = UdpRepr::parse(&packet, src, dst) else {
        return;
    };
    let _ = repr.to_string();
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut UdpPacket::new_unchecked(&mut out[..]), src, dst)
        .expect("emit of a parsed repr");
    let again = UdpPacket::new_checked(&out[..]).expect("emitted datagram is well formed");
    assert!(again.verify_checksum(src, dst));
    assert_eq!(UdpRepr::parse(&again, src, dst), Ok(repr));
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    let fix = mode & 1 != 0;
    if mode & 2 == 0 {
        round_trip(
            &mut bytes,
            fix,
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 18, 0, 2),
        );
    } else {
        round_trip(
            &mut bytes,
            fix,
            Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1),
            Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2),
        );
    }
});
