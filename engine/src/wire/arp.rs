//! ARP (RFC 826). The view handles any hardware/protocol address length; the
//! repr only Ethernet (htype 1, hlen 6) over IPv4 (ptype 0x0800, plen 4), the
//! one combination an Ethernet/IPv4 host or router needs.

use core::fmt;
use core::net::Ipv4Addr;

use super::ethernet::{EtherType, EthernetAddress};
use super::{Error, Field, Result};

/// ARP hardware type for Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

/// An ARP operation code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    Request,
    Reply,
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(v: u16) -> Self {
        match v {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(op: ArpOperation) -> u16 {
        match op {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(v) => v,
        }
    }
}

impl fmt::Display for ArpOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArpOperation::Request => f.write_str("request"),
            ArpOperation::Reply => f.write_str("reply"),
            ArpOperation::Unknown(v) => write!(f, "op-{v}"),
        }
    }
}

mod field {
    #![allow(non_snake_case)]
    use super::Field;

    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    /// Fixed part before the addresses.
    pub const FIXED_LEN: usize = 8;

    // The address fields depend on hlen and plen.
    pub const fn SHA(hlen: u8, _plen: u8) -> Field {
        let start = FIXED_LEN;
        start..start + hlen as usize
    }
    pub const fn SPA(hlen: u8, plen: u8) -> Field {
        let start = SHA(hlen, plen).end;
        start..start + plen as usize
    }
    pub const fn THA(hlen: u8, plen: u8) -> Field {
        let start = SPA(hlen, plen).end;
        start..start + hlen as usize
    }
    pub const fn TPA(hlen: u8, plen: u8) -> Field {
        let start = THA(hlen, plen).end;
        start..start + plen as usize
    }
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const ETHERNET_IPV4_LEN: usize = 28;

/// A read/write view of an ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub const fn new_unchecked(buffer: T) -> ArpPacket<T> {
        ArpPacket { buffer }
    }

    /// Checks that the buffer holds the fixed part and the four addresses
    /// whose lengths it announces. Trailing bytes (Ethernet padding) are
    /// allowed and ignored.
    pub fn new_checked(buffer: T) -> Result<ArpPacket<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < field::FIXED_LEN {
            return Err(Error::Truncated);
        }
        if len < field::TPA(self.hardware_len(), self.protocol_len()).end {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn read_u16(&self, f: Field) -> u16 {
        let d = &self.buffer.as_ref()[f];
        u16::from_be_bytes([d[0], d[1]])
    }

    pub fn hardware_type(&self) -> u16 {
        self.read_u16(field::HTYPE)
    }

    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(self.read_u16(field::PTYPE))
    }

    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    pub fn operation(&self) -> ArpOperation {
        ArpOperation::from(self.read_u16(field::OPER))
    }

    pub fn source_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SHA(self.hardware_len(), self.protocol_len())]
    }

    pub fn source_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SPA(self.hardware_len(), self.protocol_len())]
    }

    pub fn target_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::THA(self.hardware_len(), self.protocol_len())]
    }

    pub fn target_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::TPA(self.hardware_len(), self.protocol_len())]
    }

    /// Length of the ARP packet proper (without trailing padding).
    pub fn packet_len(&self) -> usize {
        field::TPA(self.hardware_len(), self.protocol_len()).end
    }

    /// Bytes after the ARP packet (Ethernet padding): never part of ARP.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.packet_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    fn write_u16(&mut self, f: Field, v: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_hardware_type(&mut self, v: u16) {
        self.write_u16(field::HTYPE, v);
    }

    pub fn set_protocol_type(&mut self, v: EtherType) {
        self.write_u16(field::PTYPE, v.into());
    }

    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v;
    }

    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PLEN] = v;
    }

    pub fn set_operation(&mut self, op: ArpOperation) {
        self.write_u16(field::OPER, op.into());
    }

    /// Address setters copy `addr`, which must have the announced length.
    pub fn set_source_hardware_addr(&mut self, addr: &[u8]) {
        let f = field::SHA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[f].copy_from_slice(addr);
    }

    pub fn set_source_protocol_addr(&mut self, addr: &[u8]) {
        let f = field::SPA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[f].copy_from_slice(addr);
    }

    pub fn set_target_hardware_addr(&mut self, addr: &[u8]) {
        let f = field::THA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[f].copy_from_slice(addr);
    }

    pub fn set_target_protocol_addr(&mut self, addr: &[u8]) {
        let f = field::TPA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[f].copy_from_slice(addr);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let n = self.packet_len();
        &mut self.buffer.as_mut()[n..]
    }
}

impl<T: AsRef<[u8]>> fmt::Display for ArpPacket<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match ArpRepr::parse(self) {
            Ok(r) => write!(f, "{r}"),
            Err(e) => write!(f, "ARP ({e})"),
        }
    }
}

/// A validated Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Only `Request` or `Reply`.
    pub operation: ArpOperation,
    pub source_hardware_addr: EthernetAddress,
    pub source_protocol_addr: Ipv4Addr,
    pub target_hardware_addr: EthernetAddress,
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// `Unrecognized` for any hardware/protocol combination other than
    /// Ethernet/IPv4, and for operations other than request and reply.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr> {
        packet.check_len()?;
        if packet.hardware_type() != HTYPE_ETHERNET
            || packet.protocol_type() != EtherType::Ipv4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Unrecognized);
        }
        let operation = packet.operation();
        if let ArpOperation::Unknown(_) = operation {
            return Err(Error::Unrecognized);
        }
        let ip = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
        let mac = |b: &[u8]| EthernetAddress([b[0], b[1], b[2], b[3], b[4], b[5]]);
        Ok(ArpRepr {
            operation,
            source_hardware_addr: mac(packet.source_hardware_addr()),
            source_protocol_addr: ip(packet.source_protocol_addr()),
            target_hardware_addr: mac(packet.target_hardware_addr()),
            target_protocol_addr: ip(packet.target_protocol_addr()),
        })
    }

    pub const fn header_len(&self) -> usize {
        ETHERNET_IPV4_LEN
    }

    pub const fn buffer_len(&self) -> usize {
        ETHERNET_IPV4_LEN
    }

    /// Writes the 28-byte packet; `packet` must be at least that long.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_hardware_type(HTYPE_ETHERNET);
        packet.set_protocol_type(EtherType::Ipv4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(&self.source_hardware_addr.0);
        packet.set_source_protocol_addr(&self.source_protocol_addr.octets());
        packet.set_target_hardware_addr(&self.target_hardware_addr.0);
        packet.set_target_protocol_addr(&self.target_protocol_addr.octets());
    }
}

impl fmt::Display for ArpRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ARP {} src={}/{} tgt={}/{}",
            self.operation,
            self.source_protocol_addr,
            self.source_hardware_addr,
            self.target_protocol_addr,
            self.target_hardware_addr
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::EthernetFrame;
    use proptest::prelude::*;

    /// tcpdump -xx on a veth in a test netns: ARP, Request who-has 198.18.0.2
    /// tell 198.18.0.1 (Ethernet header included).
    static REQUEST_FRAME: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x2e, 0x78, 0xc6, 0x70, 0xf9, 0xa7, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x2e, 0x78, 0xc6, 0x70, 0xf9, 0xa7, 0xc6, 0x12,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc6, 0x12, 0x00, 0x02,
    ];

    /// The reply from the same capture: 198.18.0.2 is-at 02:3d:eb:1d:6d:b9.
    static REPLY_FRAME: [u8; 42] = [
        0x2e, 0x78, 0xc6, 0x70, 0xf9, 0xa7, 0x02, 0x3d, 0xeb, 0x1d, 0x6d, 0xb9, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x02, 0x3d, 0xeb, 0x1d, 0x6d, 0xb9, 0xc6, 0x12,
        0x00, 0x02, 0x2e, 0x78, 0xc6, 0x70, 0xf9, 0xa7, 0xc6, 0x12, 0x00, 0x01,
    ];

    const A_MAC: EthernetAddress = EthernetAddress([0x2e, 0x78, 0xc6, 0x70, 0xf9, 0xa7]);
    const B_MAC: EthernetAddress = EthernetAddress([0x02, 0x3d, 0xeb, 0x1d, 0x6d, 0xb9]);
    const A_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const B_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn request_repr() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: A_MAC,
            source_protocol_addr: A_IP,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: B_IP,
        }
    }

    fn reply_repr() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: B_MAC,
            source_protocol_addr: B_IP,
            target_hardware_addr: A_MAC,
            target_protocol_addr: A_IP,
        }
    }

    #[test]
    fn deconstruct() {
        let eth = EthernetFrame::new_checked(&REQUEST_FRAME[..]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Arp);
        let p = ArpPacket::new_checked(eth.payload()).unwrap();
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), EtherType::Ipv4);
        assert_eq!(p.hardware_len(), 6);
        assert_eq!(p.protocol_len(), 4);
        assert_eq!(p.operation(), ArpOperation::Request);
        assert_eq!(p.source_hardware_addr(), &A_MAC.0);
        assert_eq!(p.source_protocol_addr(), &[198, 18, 0, 1]);
        assert_eq!(p.target_hardware_addr(), &[0; 6]);
        assert_eq!(p.target_protocol_addr(), &[198, 18, 0, 2]);
        assert_eq!(p.packet_len(), 28);
        assert!(p.payload().is_empty());
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 28];
        let mut p = ArpPacket::new_unchecked(&mut buf[..]);
        p.set_hardware_type(1);
        p.set_protocol_type(EtherType::Ipv4);
        p.set_hardware_len(6);
        p.set_protocol_len(4);
        p.set_operation(ArpOperation::Reply);
        p.set_source_hardware_addr(&B_MAC.0);
        p.set_source_protocol_addr(&B_IP.octets());
        p.set_target_hardware_addr(&A_MAC.0);
        p.set_target_protocol_addr(&A_IP.octets());
        assert_eq!(&buf[..], &REPLY_FRAME[14..]);
    }

    #[test]
    fn parse_and_emit() {
        for (frame, repr) in [
            (&REQUEST_FRAME, request_repr()),
            (&REPLY_FRAME, reply_repr()),
        ] {
            let p = ArpPacket::new_checked(&frame[14..]).unwrap();
            assert_eq!(ArpRepr::parse(&p), Ok(repr));
            let mut buf = [0u8; 28];
            repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
            assert_eq!(&buf[..], &frame[14..]);
        }
        assert_eq!(
            reply_repr().to_string(),
            "ARP reply src=198.18.0.2/02:3d:eb:1d:6d:b9 tgt=198.18.0.1/2e:78:c6:70:f9:a7"
        );
    }

    #[test]
    fn padding_is_not_arp() {
        // A NIC pads the 42-byte frame to 60 bytes.
        let mut padded = [0u8; 46];
        padded[..28].copy_from_slice(&REQUEST_FRAME[14..]);
        let p = ArpPacket::new_checked(&padded[..]).unwrap();
        assert_eq!(ArpRepr::parse(&p), Ok(request_repr()));
        assert_eq!(p.payload().len(), 18);
    }

    #[test]
    fn truncated_at_every_length() {
        for len in 0..28 {
            assert_eq!(
                ArpPacket::new_checked(&REQUEST_FRAME[14..14 + len]).err(),
                Some(Error::Truncated),
                "len {len}"
            );
        }
    }

    #[test]
    fn unrecognized_combinations() {
        let base: [u8; 28] = REQUEST_FRAME[14..].try_into().unwrap();
        // htype 6 (IEEE 802), ptype IPv6, hlen 8, op 3 (RARP request).
        for (at, val) in [(1usize, 6u8), (2, 0x86), (4, 8), (7, 3)] {
            let mut b = base;
            b[at] = val;
            let p = ArpPacket::new_unchecked(&b[..]);
            if p.check_len().is_ok() {
                assert_eq!(ArpRepr::parse(&p), Err(Error::Unrecognized), "byte {at}");
            }
        }
        // hlen 8 needs 32 bytes: the view notices first.
        let mut b = base;
        b[4] = 8;
        assert_eq!(ArpPacket::new_checked(&b[..]).err(), Some(Error::Truncated));
        // plen 16 (IPv6) with enough room is a valid view but not our repr.
        let mut big = [0u8; 8 + 2 * (6 + 16)];
        big[..8].copy_from_slice(&base[..8]);
        big[5] = 16;
        let p = ArpPacket::new_checked(&big[..]).unwrap();
        assert_eq!(p.target_protocol_addr().len(), 16);
        assert_eq!(ArpRepr::parse(&p), Err(Error::Unrecognized));
    }

    fn arb_repr() -> impl Strategy<Value = ArpRepr> {
        (
            prop_oneof![Just(ArpOperation::Request), Just(ArpOperation::Reply)],
            any::<[u8; 6]>(),
            any::<[u8; 4]>(),
            any::<[u8; 6]>(),
            any::<[u8; 4]>(),
        )
            .prop_map(|(operation, sha, spa, tha, tpa)| ArpRepr {
                operation,
                source_hardware_addr: EthernetAddress(sha),
                source_protocol_addr: Ipv4Addr::from(spa),
                target_hardware_addr: EthernetAddress(tha),
                target_protocol_addr: Ipv4Addr::from(tpa),
            })
    }

    proptest! {
        #[test]
        fn emit_then_parse_is_identity(repr in arb_repr()) {
            let mut buf = [0u8; 28];
            repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
            let p = ArpPacket::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(ArpRepr::parse(&p), Ok(repr));
        }

        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = ArpPacket::new_checked(&bytes[..]) {
                let _ = ArpRepr::parse(&p);
                let _ = (p.source_hardware_addr(), p.target_protocol_addr(), p.payload());
                let _ = p.to_string();
            }
            // An unchecked view's repr parse must not panic either.
            let _ = ArpRepr::parse(&ArpPacket::new_unchecked(&bytes[..]));
        }

        #[test]
        fn never_panics_on_prefixes(len in 0usize..28) {
            prop_assert!(ArpPacket::new_checked(&REPLY_FRAME[14..14 + len]).is_err());
            prop_assert!(ArpRepr::parse(&ArpPacket::new_unchecked(&REPLY_FRAME[14..14 + len])).is_err());
        }
    }
}
