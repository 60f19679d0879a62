//! ARP: the view and repr never panic; a parsed packet re-emits to the same
//! repr.
#![no_main]

use engine::wire::{ArpPacket, ArpRepr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ArpRepr::parse(&ArpPacket::new_unchecked(data));
    let Ok(packet) = ArpPacket::new_checked(data) else {
        return;
    };
    let _ = (packet.source_hardware_addr(), packet.target_protocol_addr(), packet.payload());
    let _ = packet.to_string();
    let Ok(repr) = ArpRepr::parse(&packet) else {
        return;
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
    let again = ArpPacket::new_checked(&buf[..]).expect("emitted packet is valid");
    assert_eq!(ArpRepr::parse(&again), Ok(repr));
    assert_eq!(&buf[..], &data[..repr.buffer_len()]);
});
