//! UDP (RFC 768; IPv6 rules from RFC 8200 §8.1).
//!
//! The view trusts nothing: `new_checked` makes sure the length field is at
//! least the header and no more than the buffer, so a datagram padded by a
//! lower layer (Ethernet minimum frame) yields exactly its own payload.

use core::fmt;

use super::checksum;
use super::pseudo::{be16, PseudoHeader};
use super::{Error, IpProtocol, Result};

mod field {
    use crate::wire::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A zero-copy view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without checks; accessors may panic if it is malformed.
    /// Use only on buffers this program built itself.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Truncated` if the buffer is shorter than the header; `BadLength` if the
    /// length field is below the header or beyond the buffer.
    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(self.len());
        if len < HEADER_LEN || len > have {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// The length field: header plus payload.
    #[inline]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH.start)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The payload as the length field bounds it (trailing padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// True if the checksum verifies. Over IPv4 a zero checksum means "none"
    /// and passes; over IPv6 it is forbidden and fails.
    pub fn verify_checksum<A: PseudoHeader>(&self, src: A, dst: A) -> bool {
        if self.checksum() == 0 {
            return !A::IS_V6;
        }
        let len = self.len();
        let d = &self.buffer.as_ref()[..usize::from(len)];
        let sum = checksum::add(
            A::pseudo_header_sum(src, dst, IpProtocol::Udp, u32::from(len)),
            checksum::data(d),
        );
        sum == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn set_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    /// The payload as the length field bounds it, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// Computes and stores the checksum (a computed 0 is sent as 0xffff).
    pub fn fill_checksum<A: PseudoHeader>(&mut self, src: A, dst: A) {
        self.set_checksum(0);
        let len = self.len();
        let d = &self.buffer.as_ref()[..usize::from(len)];
        let sum = checksum::add(
            A::pseudo_header_sum(src, dst, IpProtocol::Udp, u32::from(len)),
            checksum::data(d),
        );
        self.set_checksum(checksum::udp_nonzero(!sum));
    }

    /// Applies an RFC 1624 update, keeping "no checksum" (0) untouched and
    /// never producing 0 for a real checksum.
    #[inline]
    fn patch_checksum(&mut self, f: impl FnOnce(u16) -> u16) {
        let c = self.checksum();
        if c != 0 {
            self.set_checksum(checksum::udp_nonzero(f(c)));
        }
    }

    /// Rewrites the source port and patches the checksum incrementally (NAT).
    pub fn set_src_port_incremental(&mut self, v: u16) {
        let old = self.src_port();
        self.set_src_port(v);
        self.patch_checksum(|c| checksum::update16(c, old, v));
    }

    /// Rewrites the destination port and patches the checksum incrementally.
    pub fn set_dst_port_incremental(&mut self, v: u16) {
        let old = self.dst_port();
        self.set_dst_port(v);
        self.patch_checksum(|c| checksum::update16(c, old, v));
    }

    /// Patches the checksum for an address of the pseudo-header rewritten
    /// from `old` to `new` (the IP header itself is the caller's business).
    pub fn update_checksum_for_addr<A: PseudoHeader>(&mut self, old: A, new: A) {
        self.patch_checksum(|c| A::update_checksum(c, old, new));
    }
}

impl<T: AsRef<[u8]>> fmt::Display for UdpPacket<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return write!(f, "UDP (truncated, {} bytes)", self.buffer.as_ref().len());
        }
        write!(
            f,
            "UDP src={} dst={} len={} cksum={:#06x}",
            self.src_port(),
            self.dst_port(),
            self.len(),
            self.checksum()
        )
    }
}

/// A validated UDP datagram, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

impl<'a> UdpRepr<'a> {
    /// Validates a datagram: checksum (per address family), destination port
    /// not 0 (`Malformed`).
    pub fn parse<T: AsRef<[u8]>, A: PseudoHeader>(
        packet: &'a UdpPacket<T>,
        src: A,
        dst: A,
    ) -> Result<Self> {
        packet.check_len()?;
        if packet.dst_port() == 0 {
            return Err(Error::Malformed);
        }
        if !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload: packet.payload(),
        })
    }

    /// Bytes `emit` writes: header plus payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes header, payload and checksum into the start of the packet buffer.
    /// `Truncated` if the buffer is too small, `BadLength` if the datagram
    /// would not fit the 16-bit length field.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>, A: PseudoHeader>(
        &self,
        packet: &mut UdpPacket<T>,
        src: A,
        dst: A,
    ) -> Result<()> {
        let len = self.buffer_len();
        let Ok(len16) = u16::try_from(len) else {
            return Err(Error::BadLength);
        };
        if packet.buffer.as_ref().len() < len {
            return Err(Error::Truncated);
        }
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len16);
        packet.payload_mut().copy_from_slice(self.payload);
        packet.fill_checksum(src, dst);
        Ok(())
    }
}

impl fmt::Display for UdpRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UDP src={} dst={} len={}",
            self.src_port,
            self.dst_port,
            self.payload.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    const SRC4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const DST4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
    const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);

    // Captured on a veth pair (tx checksum offload off) from a Python
    // `sendto(b"hello pktengine\n", ("198.18.0.2", 9999))`; IPv4 header kept.
    #[rustfmt::skip]
    const UDP4_DATAGRAM: [u8; 44] = [
        0x45, 0x00, 0x00, 0x2c, 0x3e, 0x8f, 0x40, 0x00, 0x40, 0x11, 0x70, 0x0a, 0xc6, 0x12, 0x00, 0x01,
        0xc6, 0x12, 0x00, 0x02, 0x8a, 0x5f, 0x27, 0x0f, 0x00, 0x18, 0x5c, 0x84, 0x68, 0x65, 0x6c, 0x6c,
        0x6f, 0x20, 0x70, 0x6b, 0x74, 0x65, 0x6e, 0x67, 0x69, 0x6e, 0x65, 0x0a,
    ];

    // The same from `sendto(b"hello v6\n", ("2001:2::2", 9999))`; IPv6 header kept.
    #[rustfmt::skip]
    const UDP6_DATAGRAM: [u8; 57] = [
        0x60, 0x00, 0xc1, 0xeb, 0x00, 0x11, 0x11, 0x40, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc7, 0x52, 0x27, 0x0f, 0x00, 0x11, 0x0d, 0x39,
        0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x76, 0x36, 0x0a,
    ];

    const PAYLOAD4: &[u8] = b"hello pktengine\n";
    const PAYLOAD6: &[u8] = b"hello v6\n";

    #[test]
    fn deconstruct_v4() {
        let p = UdpPacket::new_checked(&UDP4_DATAGRAM[20..]).unwrap();
        assert_eq!(p.src_port(), 35423);
        assert_eq!(p.dst_port(), 9999);
        assert_eq!(p.len(), 24);
        assert_eq!(p.checksum(), 0x5c84);
        assert_eq!(p.payload(), PAYLOAD4);
        assert!(p.verify_checksum(SRC4, DST4));
        assert!(!p.verify_checksum(DST4, Ipv4Addr::new(198, 18, 0, 3)));
        assert_eq!(p.to_string(), "UDP src=35423 dst=9999 len=24 cksum=0x5c84");
    }

    #[test]
    fn deconstruct_v6() {
        let p = UdpPacket::new_checked(&UDP6_DATAGRAM[40..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (51026, 9999, 17));
        assert_eq!(p.checksum(), 0x0d39);
        assert_eq!(p.payload(), PAYLOAD6);
        assert!(p.verify_checksum(SRC6, DST6));
    }

    #[test]
    fn construct_v4_and_v6() {
        let mut buf = [0xa5u8; 24];
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(35423);
        p.set_dst_port(9999);
        p.set_len(24);
        p.payload_mut().copy_from_slice(PAYLOAD4);
        p.fill_checksum(SRC4, DST4);
        assert_eq!(&buf[..], &UDP4_DATAGRAM[20..]);

        let mut buf = [0u8; 17];
        let repr = UdpRepr {
            src_port: 51026,
            dst_port: 9999,
            payload: PAYLOAD6,
        };
        assert_eq!(repr.buffer_len(), 17);
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), SRC6, DST6)
            .unwrap();
        assert_eq!(&buf[..], &UDP6_DATAGRAM[40..]);
    }

    #[test]
    fn parse_real() {
        let p = UdpPacket::new_checked(&UDP4_DATAGRAM[20..]).unwrap();
        let r = UdpRepr::parse(&p, SRC4, DST4).unwrap();
        assert_eq!(
            r,
            UdpRepr {
                src_port: 35423,
                dst_port: 9999,
                payload: PAYLOAD4
            }
        );
        assert_eq!(r.to_string(), "UDP src=35423 dst=9999 len=16");
        let p = UdpPacket::new_checked(&UDP6_DATAGRAM[40..]).unwrap();
        assert_eq!(UdpRepr::parse(&p, SRC6, DST6).unwrap().payload, PAYLOAD6);
        // Right bytes, wrong family/addresses: the pseudo-header differs.
        assert_eq!(
            UdpRepr::parse(&p, DST6, SRC4.to_ipv6_mapped()),
            Err(Error::BadChecksum)
        );
    }

    #[test]
    fn padding_after_length_is_not_payload() {
        let mut buf = [0u8; 40];
        buf[..24].copy_from_slice(&UDP4_DATAGRAM[20..]);
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload(), PAYLOAD4);
        assert!(p.verify_checksum(SRC4, DST4));
    }

    #[test]
    fn truncated_at_every_length() {
        let d = &UDP4_DATAGRAM[20..];
        for n in 0..d.len() {
            let want = if n < HEADER_LEN {
                Error::Truncated
            } else {
                Error::BadLength
            };
            assert_eq!(
                UdpPacket::new_checked(&d[..n]).unwrap_err(),
                want,
                "len {n}"
            );
        }
    }

    #[test]
    fn length_field_out_of_range() {
        let mut d = UDP4_DATAGRAM;
        d[24..26].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(
            UdpPacket::new_checked(&d[20..]).unwrap_err(),
            Error::BadLength
        );
        d[24..26].copy_from_slice(&25u16.to_be_bytes());
        assert_eq!(
            UdpPacket::new_checked(&d[20..]).unwrap_err(),
            Error::BadLength
        );
        // Exactly the header: empty payload is fine (checksum is now wrong).
        d[24..26].copy_from_slice(&8u16.to_be_bytes());
        let p = UdpPacket::new_checked(&d[20..]).unwrap();
        assert!(p.payload().is_empty());
        assert_eq!(UdpRepr::parse(&p, SRC4, DST4), Err(Error::BadChecksum));
    }

    #[test]
    fn zero_checksum_v4_none_v6_invalid() {
        let mut d = UDP4_DATAGRAM;
        d[26] = 0;
        d[27] = 0;
        let p = UdpPacket::new_checked(&d[20..]).unwrap();
        assert!(UdpRepr::parse(&p, SRC4, DST4).is_ok());
        let mut d = UDP6_DATAGRAM;
        d[46] = 0;
        d[47] = 0;
        let p = UdpPacket::new_checked(&d[40..]).unwrap();
        assert_eq!(UdpRepr::parse(&p, SRC6, DST6), Err(Error::BadChecksum));
    }

    #[test]
    fn bad_checksum_and_zero_port() {
        let mut d = UDP4_DATAGRAM;
        d[30] ^= 0x01;
        let p = UdpPacket::new_checked(&d[20..]).unwrap();
        assert_eq!(UdpRepr::parse(&p, SRC4, DST4), Err(Error::BadChecksum));
        let mut d = UDP4_DATAGRAM;
        d[22] = 0;
        d[23] = 0;
        let p = UdpPacket::new_checked(&d[20..]).unwrap();
        assert_eq!(UdpRepr::parse(&p, SRC4, DST4), Err(Error::Malformed));
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Choose a payload word that makes the sum 0xffff, so !sum == 0.
        let mut buf = [0u8; 10];
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_len(10);
        p.fill_checksum(SRC4, DST4);
        let partial = !p.checksum();
        let word = !partial; // sum + word = 0xffff
        p.payload_mut().copy_from_slice(&word.to_be_bytes());
        p.fill_checksum(SRC4, DST4);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(SRC4, DST4));
    }

    #[test]
    fn emit_refuses_small_buffer() {
        let repr = UdpRepr {
            src_port: 1,
            dst_port: 2,
            payload: b"abc",
        };
        let mut buf = [0u8; 10];
        assert_eq!(
            repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), SRC4, DST4),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn incremental_rewrite_v4_and_v6() {
        let mut d = UDP4_DATAGRAM;
        let mut p = UdpPacket::new_checked(&mut d[20..]).unwrap();
        let nat = Ipv4Addr::new(198, 19, 255, 1);
        p.set_src_port_incremental(61000);
        p.set_dst_port_incremental(53);
        p.update_checksum_for_addr(SRC4, nat);
        assert!(p.verify_checksum(nat, DST4));

        let mut d = UDP6_DATAGRAM;
        let mut p = UdpPacket::new_checked(&mut d[40..]).unwrap();
        let nat6 = Ipv6Addr::new(0x2001, 2, 0xff, 0, 0, 0, 0, 0x99);
        p.set_dst_port_incremental(4242);
        p.update_checksum_for_addr(DST6, nat6);
        assert!(p.verify_checksum(SRC6, nat6));

        // No checksum stays no checksum.
        let mut d = UDP4_DATAGRAM;
        d[26] = 0;
        d[27] = 0;
        let mut p = UdpPacket::new_checked(&mut d[20..]).unwrap();
        p.set_src_port_incremental(1);
        assert_eq!(p.checksum(), 0);
    }

    proptest! {
        #[test]
        fn emit_parse_identity_v4(
            src_port in any::<u16>(), dst_port in 1u16.., payload in proptest::collection::vec(any::<u8>(), 0..300),
            s in any::<[u8; 4]>(), d in any::<[u8; 4]>(),
        ) {
            let (s, d) = (Ipv4Addr::from(s), Ipv4Addr::from(d));
            let repr = UdpRepr { src_port, dst_port, payload: &payload };
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), s, d).unwrap();
            let p = UdpPacket::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum(s, d));
            prop_assert_ne!(p.checksum(), 0);
            prop_assert_eq!(UdpRepr::parse(&p, s, d).unwrap(), repr);
        }

        #[test]
        fn emit_parse_identity_v6(
            src_port in any::<u16>(), dst_port in 1u16.., payload in proptest::collection::vec(any::<u8>(), 0..300),
            s in any::<[u8; 16]>(), d in any::<[u8; 16]>(),
        ) {
            let (s, d) = (Ipv6Addr::from(s), Ipv6Addr::from(d));
            let repr = UdpRepr { src_port, dst_port, payload: &payload };
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), s, d).unwrap();
            let p = UdpPacket::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(UdpRepr::parse(&p, s, d).unwrap(), repr);
        }

        #[test]
        fn never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..64), fix in any::<bool>()) {
            if fix && bytes.len() >= HEADER_LEN {
                // A consistent length and checksum take parsing further.
                let mut p = UdpPacket::new_unchecked(&mut bytes[..]);
                p.set_len(p.buffer.len() as u16);
                p.fill_checksum(SRC4, DST4);
            }
            if let Ok(p) = UdpPacket::new_checked(&bytes[..]) {
                let _ = p.to_string();
                let _ = UdpRepr::parse(&p, SRC6, DST6);
                if let Ok(r) = UdpRepr::parse(&p, SRC4, DST4) {
                    let mut out = vec![0u8; r.buffer_len()];
                    r.emit(&mut UdpPacket::new_unchecked(&mut out[..]), SRC4, DST4).unwrap();
                    let q = UdpPacket::new_checked(&out[..]).unwrap();
                    prop_assert_eq!(UdpRepr::parse(&q, SRC4, DST4).unwrap(), r);
                }
            }
            let _ = UdpPacket::new_unchecked(&bytes[..]).to_string();
        }

        #[test]
        fn incremental_port_rewrite_matches_recompute(port in any::<u16>(), a in any::<[u8; 4]>()) {
            let mut d = UDP4_DATAGRAM;
            let mut p = UdpPacket::new_checked(&mut d[20..]).unwrap();
            let a = Ipv4Addr::from(a);
            p.set_src_port_incremental(port);
            p.update_checksum_for_addr(DST4, a);
            prop_assert!(p.verify_checksum(SRC4, a));
        }
    }
}
