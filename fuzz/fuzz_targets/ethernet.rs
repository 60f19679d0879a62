//! Ethernet/VLAN: the view and repr never panic; a parsed header re-emits to
//! the same repr, and pushing then popping a tag restores the frame.
#![no_main]

use engine::wire::ethernet::{pop_vlan_tag, push_vlan_tag, VLAN_TAG_LEN};
use engine::wire::{EthernetFrame, EthernetRepr, VlanTag};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = EthernetFrame::new_checked(data) else {
        return;
    };
    let repr = EthernetRepr::parse(&frame).expect("a checked frame always parses");
    let _ = frame.to_string();
    let payload = frame.payload();

    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    buf[repr.header_len()..].copy_from_slice(payload);
    repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    let again = EthernetFrame::new_checked(&buf[..]).expect("emitted frame is valid");
    assert_eq!(EthernetRepr::parse(&again), Ok(repr));
    assert_eq!(again.payload(), payload);

    let len = buf.len();
    buf.resize(len + VLAN_TAG_LEN, 0);
    if let Ok(pushed) = push_vlan_tag(&mut buf, len, VlanTag::dot1q(42)) {
        let (tag, popped) = pop_vlan_tag(&mut buf, pushed).expect("just pushed a tag");
        assert_eq!(tag, VlanTag::dot1q(42));
        assert_eq!(popped, len);
        let back = EthernetFrame::new_checked(&buf[..popped]).expect("restored frame");
        assert_eq!(EthernetRepr::parse(&back), Ok(repr));
    }
});
