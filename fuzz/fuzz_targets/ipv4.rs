//! IPv4: the view and repr never panic; a parsed header re-emits to the same
//! repr with a valid checksum, and the incremental TTL decrement keeps a
//! valid checksum valid.
#![no_main]

use engine::wire::ipv4::ChecksumMode;
use engine::wire::{Ipv4Packet, Ipv4Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(data));
    let Ok(packet) = Ipv4Packet::new_checked(data) else {
        return;
    };
    let _ = packet.to_string();
    let valid_sum = packet.verify_checksum();
    let Ok(repr) = Ipv4Repr::parse_with(&packet, ChecksumMode::Ignore) else {
        return;
    };
    assert_eq!(Ipv4Repr::parse(&packet).is_ok(), valid_sum);

    let mut buf = vec![0u8; repr.buffer_len()];
    let mut out = Ipv4Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut out);
    out.payload_mut().copy_from_slice(packet.payload());
    let again = Ipv4Packet::new_checked(&buf[..]).expect("emitted packet is valid");
    assert!(again.verify_checksum());
    assert_eq!(Ipv4Repr::parse(&again), Ok(repr));
    assert_eq!(again.payload(), packet.payload());

    let mut copy = data.to_vec();
    let mut p = Ipv4Packet::new_checked(&mut copy[..]).expect("same bytes");
    if p.decrement_ttl_incremental().is_ok() {
        assert_eq!(p.verify_checksum(), valid_sum);
    }
});
