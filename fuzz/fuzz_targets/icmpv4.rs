//! ICMPv4: the view and repr never panic; whatever parses re-emits and parses
//! the same (an error's embedded datagram cut to the 576-byte limit). The
//! first byte says whether to fix the checksum first.
#![no_main]

use engine::wire::icmpv4::{Icmpv4Packet, Icmpv4Repr, HEADER_LEN, MAX_ERROR_DATAGRAM_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 != 0 && bytes.len() >= HEADER_LEN {
        Icmpv4Packet::new_unchecked(&mut bytes[..]).fill_checksum();
    }
    let _ = Icmpv4Packet::new_unchecked(&bytes[..]).to_string();
    let Ok(packet) = Icmpv4Packet::new_checked(&bytes[..]) else {
        return;
    };
    let _ = (packet.msg_type(), packet.msg_code(), packet.data().len());
    let _ = packet.to_string();
    let Ok(repr) = Icmpv4Repr::parse(&packet) else {
        return;
    };
    let _ = repr.to_string();
    if repr.is_error() {
        assert!(20 + repr.buffer_len() <= MAX_ERROR_DATAGRAM_LEN);
    }
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]))
        .expect("emit of a parsed repr");
    let again = Icmpv4Packet::new_checked(&out[..]).expect("emitted message is well formed");
    assert!(again.verify_checksum());
    let reparsed = Icmpv4Repr::parse(&again).expect("emitted message parses");
    if repr.buffer_len() == bytes.len() {
        assert_eq!(reparsed, repr);
    } else {
        // Only an error's embedded datagram may have been cut.
        assert!(repr.is_error());
        assert_eq!(reparsed.emitted_data(), repr.emitted_data());
    }
});
