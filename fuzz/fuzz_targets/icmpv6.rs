//! ICMPv6: the view, the NDP option iterator and the repr never panic;
//! whatever parses re-emits and parses the same (an error's embedded packet
//! cut to fit 1280 bytes; NS/NA drop options they do not use). The first
//! byte says whether to fix the checksum first.
#![no_main]

use core::net::Ipv6Addr;

use engine::wire::icmpv6::{Icmpv6Packet, Icmpv6Repr, NdiscOptions, HEADER_LEN, MIN_MTU};
use libfuzzer_sys::fuzz_target;

const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 != 0 && bytes.len() >= HEADER_LEN {
        Icmpv6Packet::new_unchecked(&mut bytes[..]).fill_checksum(SRC, DST);
    }
    for opt in NdiscOptions::new(&bytes).flatten() {
        let _ = opt;
    }
    let Ok(packet) = Icmpv6Packet::new_checked(&bytes[..]) else {
        return;
    };
    let _ = packet.to_string();
    let _ = packet.ndisc_option_iter().count();
    let Ok(repr) = Icmpv6Repr::parse(&packet, SRC, DST) else {
        return;
    };
    let _ = repr.to_string();
    if repr.is_error() {
        assert!(40 + repr.buffer_len() <= MIN_MTU);
    }
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]), SRC, DST)
        .expect("emit of a parsed repr");
    let again = Icmpv6Packet::new_checked(&out[..]).expect("emitted message is well formed");
    assert!(again.verify_checksum(SRC, DST));
    let reparsed = Icmpv6Repr::parse(&again, SRC, DST).expect("emitted message parses");
    if repr.is_error() && repr.buffer_len() != bytes.len() {
        assert_eq!(reparsed.emitted_data(), repr.emitted_data());
    } else {
        assert_eq!(reparsed, repr);
    }
});
