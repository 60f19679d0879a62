//! IPv6: the view, repr and extension-header walker never panic; a parsed
//! header re-emits to the same repr and the same walk result, and a parsed
//! fragment header re-emits to the same fragment repr.
#![no_main]

use engine::wire::ipv6::MAX_EXT_HEADERS;
use engine::wire::{Ipv6FragmentHeader, Ipv6FragmentRepr, Ipv6Packet, Ipv6Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Ipv6Repr::parse(&Ipv6Packet::new_unchecked(data));
    let _ = Ipv6Packet::new_unchecked(data).ext_headers();
    if let Ok(h) = Ipv6FragmentHeader::new_checked(data) {
        let frag = Ipv6FragmentRepr::parse(&h).expect("8 bytes always parse");
        let mut b = [0u8; 8];
        frag.emit(&mut Ipv6FragmentHeader::new_unchecked(&mut b[..]));
        assert_eq!(Ipv6FragmentRepr::parse(&Ipv6FragmentHeader::new_unchecked(&b[..])), Ok(frag));
    }

    let Ok(packet) = Ipv6Packet::new_checked(data) else {
        return;
    };
    let _ = packet.to_string();
    let walk = packet.ext_headers();
    if let Ok(x) = walk {
        assert!(x.upper_offset <= packet.total_len());
        assert!(usize::from(x.count) <= MAX_EXT_HEADERS);
    }
    let Ok(repr) = Ipv6Repr::parse(&packet) else {
        return;
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    let mut out = Ipv6Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut out);
    out.payload_mut().copy_from_slice(packet.payload());
    let again = Ipv6Packet::new_checked(&buf[..]).expect("emitted packet is valid");
    assert_eq!(Ipv6Repr::parse(&again), Ok(repr));
    assert_eq!(again.ext_headers(), walk);
    assert_eq!(&buf[..], &data[..packet.total_len()]);
});
