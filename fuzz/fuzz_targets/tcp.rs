//! TCP: the view, the option iterator and the repr never panic; whatever
//! parses re-emits (within 60 bytes of header) and parses the same. The first
//! byte picks the address family and whether to fix the checksum first.
#![no_main]

use core::net::{Ipv4Addr, Ipv6Addr};

use engine::wire::tcp::{TcpOptions, TcpPacket, TcpRepr, HEADER_LEN, MAX_HEADER_LEN};
use engine::wire::PseudoHeader;
use libfuzzer_sys::fuzz_target;

fn round_trip<A: PseudoHeader>(bytes: &mut [u8], fix: bool, src: A, dst: A) {
    if fix && bytes.len() >= HEADER_LEN {
        TcpPacket::new_unchecked(&mut *bytes).fill_checksum(src, dst);
    }
    // The option iterator alone, over the raw bytes.
    for opt in TcpOptions::new(bytes).flatten() {
        let _ = opt.to_string();
    }
    let _ = TcpPacket::new_unchecked(&*bytes).to_string();
    let Ok(packet) = TcpPacket::new_checked(&*bytes) else {
        return;
    };
    let _ = packet.to_string();
    let Ok(repr) = TcpRepr::parse(&packet, src, dst) else {
        return;
    };
    let _ = repr.to_string();
    assert!(repr.header_len() <= MAX_HEADER_LEN);
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut TcpPacket::new_unchecked(&mut out[..]), src, dst)
        .expect("emit of a parsed repr");
    let again = TcpPacket::new_checked(&out[..]).expect("emitted segment is well formed");
    assert!(again.verify_checksum(src, dst));
    assert_eq!(again.segment_len(), packet.segment_len());
    assert_eq!(TcpRepr::parse(&again, src, dst), Ok(repr));
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
