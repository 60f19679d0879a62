//! IPv6 (RFC 8200): the fixed header, the fragment header, and a bounded
//! walker over the extension-header chain that finds the upper-layer
//! protocol.
//!
//! Not handled: jumbograms (RFC 2675; a payload length of 0 means an empty
//! payload here), and the contents of options and routing headers, which are
//! skipped by length. Payload length is trusted over the buffer: trailing
//! Ethernet padding is not payload.

use core::fmt;
use core::net::Ipv6Addr;

use super::{Error, Field, IpProtocol, Rest, Result};

mod field {
    use super::Field;

    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// Fixed header length.
pub const HEADER_LEN: usize = 40;
/// Most extension headers the walker follows before giving up (`BadOption`).
/// RFC 8200 §4.1 recommends at most one of each, destination options twice:
/// seven in a sane packet.
pub const MAX_EXT_HEADERS: usize = 8;

/// A read/write view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Ipv6Packet<T> {
        Ipv6Packet { buffer }
    }

    /// Checks that the fixed header and the payload length it claims fit in
    /// the buffer (`Truncated` otherwise). Does not check the version.
    pub fn new_checked(buffer: T) -> Result<Ipv6Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || self.total_len() > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn data(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn first_word(&self) -> u32 {
        let d = &self.data()[field::VER_TC_FLOW];
        u32::from_be_bytes([d[0], d[1], d[2], d[3]])
    }

    pub fn version(&self) -> u8 {
        (self.first_word() >> 28) as u8
    }

    pub fn traffic_class(&self) -> u8 {
        (self.first_word() >> 20) as u8
    }

    /// The 20-bit flow label.
    pub fn flow_label(&self) -> u32 {
        self.first_word() & 0x000f_ffff
    }

    pub fn payload_len(&self) -> u16 {
        let d = &self.data()[field::LENGTH];
        u16::from_be_bytes([d[0], d[1]])
    }

    /// Fixed header plus payload length.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }

    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.data()[field::NXT_HDR])
    }

    pub fn hop_limit(&self) -> u8 {
        self.data()[field::HOP_LIMIT]
    }

    pub fn src_addr(&self) -> Ipv6Addr {
        let a: [u8; 16] = self.data()[field::SRC_ADDR].try_into().unwrap_or([0; 16]);
        Ipv6Addr::from(a)
    }

    pub fn dst_addr(&self) -> Ipv6Addr {
        let a: [u8; 16] = self.data()[field::DST_ADDR].try_into().unwrap_or([0; 16]);
        Ipv6Addr::from(a)
    }

    /// The `payload_len` bytes after the fixed header (extension headers
    /// included); trailing padding is excluded.
    pub fn payload(&self) -> &[u8] {
        &self.data()[HEADER_LEN..self.total_len()]
    }

    /// Walks the extension headers (hop-by-hop, routing, fragment,
    /// destination options, AH) to the upper-layer protocol. Bounded by
    /// [`MAX_EXT_HEADERS`]; every header is length-checked against the
    /// payload. Errors: `Truncated` (a header runs past the payload),
    /// `BadOption` (too many headers), `Malformed` (hop-by-hop not first, or
    /// a second fragment header).
    ///
    /// In a non-first fragment (offset > 0) the walk stops after the fragment
    /// header: what follows is the middle of the original payload, so
    /// `upper_protocol` is the fragment header's next header and
    /// `upper_offset` points at fragment data, not at a header.
    pub fn ext_headers(&self) -> Result<Ipv6ExtHeaders> {
        self.check_len()?;
        let payload = self.payload();
        let mut nh = self.next_header();
        let mut off = 0usize;
        let mut count = 0u8;
        let mut fragment = None;
        let mut fragment_at = None;
        loop {
            let len_of = |hdr: &[u8]| -> usize {
                match nh {
                    IpProtocol::Ipv6Frag => FRAGMENT_HEADER_LEN,
                    // RFC 4302 §2.2: in 4-byte units, minus 2.
                    IpProtocol::Ah => (usize::from(hdr[1]) + 2) * 4,
                    // RFC 8200 §4.3-4.6: in 8-byte units, not counting the first.
                    _ => (usize::from(hdr[1]) + 1) * 8,
                }
            };
            match nh {
                IpProtocol::HopByHop
                | IpProtocol::Ipv6Route
                | IpProtocol::Ipv6Frag
                | IpProtocol::Ipv6Opts
                | IpProtocol::Ah => {}
                _ => break,
            }
            if usize::from(count) == MAX_EXT_HEADERS {
                return Err(Error::BadOption);
            }
            if nh == IpProtocol::HopByHop && count != 0 {
                return Err(Error::Malformed);
            }
            let start = payload.get(off..off + 2).ok_or(Error::Truncated)?;
            let len = len_of(start);
            let hdr = payload.get(off..off + len).ok_or(Error::Truncated)?;
            count += 1;
            if nh == IpProtocol::Ipv6Frag {
                if fragment.is_some() {
                    return Err(Error::Malformed);
                }
                let frag = Ipv6FragmentRepr::parse(&Ipv6FragmentHeader::new_checked(hdr)?)?;
                fragment = Some(frag);
                fragment_at = Some(HEADER_LEN + off);
                nh = frag.next_header;
                off += len;
                if frag.frag_offset != 0 {
                    break;
                }
                continue;
            }
            nh = IpProtocol::from(hdr[0]);
            off += len;
        }
        Ok(Ipv6ExtHeaders {
            upper_protocol: nh,
            upper_offset: HEADER_LEN + off,
            count,
            fragment,
            fragment_at,
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    fn set_first_word(&mut self, w: u32) {
        self.data_mut()[field::VER_TC_FLOW].copy_from_slice(&w.to_be_bytes());
    }

    pub fn set_version(&mut self, v: u8) {
        let w = self.first_word();
        self.set_first_word((w & 0x0fff_ffff) | (u32::from(v & 0x0f) << 28));
    }

    pub fn set_traffic_class(&mut self, tc: u8) {
        let w = self.first_word();
        self.set_first_word((w & 0xf00f_ffff) | (u32::from(tc) << 20));
    }

    pub fn set_flow_label(&mut self, label: u32) {
        let w = self.first_word();
        self.set_first_word((w & 0xfff0_0000) | (label & 0x000f_ffff));
    }

    pub fn set_payload_len(&mut self, len: u16) {
        self.data_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }

    pub fn set_next_header(&mut self, nh: IpProtocol) {
        self.data_mut()[field::NXT_HDR] = nh.into();
    }

    pub fn set_hop_limit(&mut self, v: u8) {
        self.data_mut()[field::HOP_LIMIT] = v;
    }

    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.data_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.data_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Decrements the hop limit (IPv6 has no header checksum). Returns the
    /// new value; `Err(Malformed)` (nothing changed) if it is already 0.
    pub fn decrement_hop_limit(&mut self) -> Result<u8> {
        let h = self.hop_limit();
        if h == 0 {
            return Err(Error::Malformed);
        }
        self.set_hop_limit(h - 1);
        Ok(h - 1)
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.data_mut()[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Ipv6Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Ipv6Repr::parse(self) {
            Ok(r) => {
                write!(f, "{r}")?;
                match self.ext_headers() {
                    Ok(x) if x.count > 0 => write!(f, " {x}"),
                    Ok(_) => Ok(()),
                    Err(e) => write!(f, " (ext: {e})"),
                }
            }
            Err(e) => write!(f, "IPv6 ({e})"),
        }
    }
}

/// What the extension-header walk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6ExtHeaders {
    /// The first header that is not a walked extension header: TCP, UDP,
    /// ICMPv6, ESP, No Next Header, ...
    pub upper_protocol: IpProtocol,
    /// Offset of that header from the start of the IPv6 header.
    pub upper_offset: usize,
    /// Extension headers walked.
    pub count: u8,
    /// The fragment header, if there is one.
    pub fragment: Option<Ipv6FragmentRepr>,
    /// Offset of the fragment header from the start of the IPv6 header.
    pub fragment_at: Option<usize>,
}

impl Ipv6ExtHeaders {
    /// A fragment whose offset is not 0: no upper-layer header in it.
    pub fn is_non_first_fragment(&self) -> bool {
        matches!(self.fragment, Some(f) if f.frag_offset != 0)
    }
}

impl fmt::Display for Ipv6ExtHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ext={} upper={}@{}",
            self.count, self.upper_protocol, self.upper_offset
        )?;
        if let Some(frag) = self.fragment {
            write!(f, " [{frag}]")?;
        }
        Ok(())
    }
}

/// A validated IPv6 fixed header, by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    pub src_addr: Ipv6Addr,
    pub dst_addr: Ipv6Addr,
    /// The fixed header's next header (may be an extension header).
    pub next_header: IpProtocol,
    /// Bytes after the fixed header, extension headers included.
    pub payload_len: usize,
    pub hop_limit: u8,
    pub traffic_class: u8,
    /// 20 bits.
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Checks the lengths and version 6.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Result<Ipv6Repr> {
        packet.check_len()?;
        if packet.version() != 6 {
            return Err(Error::BadVersion);
        }
        Ok(Ipv6Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the fixed header; `packet` must hold at least 40 bytes and
    /// `payload_len` must fit in 16 bits.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) {
        packet.set_first_word(0x6000_0000);
        packet.set_traffic_class(self.traffic_class);
        packet.set_flow_label(self.flow_label);
        packet.set_payload_len(self.payload_len as u16);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

impl fmt::Display for Ipv6Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IPv6 src={} dst={} nxt={} hop={} len={}",
            self.src_addr, self.dst_addr, self.next_header, self.hop_limit, self.payload_len
        )?;
        if self.traffic_class != 0 || self.flow_label != 0 {
            write!(
                f,
                " tc={} flow=0x{:05x}",
                self.traffic_class, self.flow_label
            )?;
        }
        Ok(())
    }
}

mod frag_field {
    use super::{Field, Rest};

    pub const NXT_HDR: usize = 0;
    pub const RESERVED: usize = 1;
    /// Offset (13 bits, 8-byte units), 2 reserved bits, M flag.
    pub const OFF_M: Field = 2..4;
    pub const IDENT: Field = 4..8;
    pub const PAYLOAD: Rest = 8..;
}

/// Fragment header length.
pub const FRAGMENT_HEADER_LEN: usize = 8;

/// A read/write view of an IPv6 fragment header (RFC 8200 §4.5).
#[derive(Debug, Clone)]
pub struct Ipv6FragmentHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6FragmentHeader<T> {
    pub const fn new_unchecked(buffer: T) -> Ipv6FragmentHeader<T> {
        Ipv6FragmentHeader { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Ipv6FragmentHeader<T>> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < FRAGMENT_HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn off_m(&self) -> u16 {
        let d = &self.buffer.as_ref()[frag_field::OFF_M];
        u16::from_be_bytes([d[0], d[1]])
    }

    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[frag_field::NXT_HDR])
    }

    /// Fragment offset in 8-byte units.
    pub fn frag_offset_units(&self) -> u16 {
        self.off_m() >> 3
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        self.off_m() & !0x7
    }

    pub fn more_frags(&self) -> bool {
        self.off_m() & 1 != 0
    }

    pub fn ident(&self) -> u32 {
        let d = &self.buffer.as_ref()[frag_field::IDENT];
        u32::from_be_bytes([d[0], d[1], d[2], d[3]])
    }

    /// The bytes after the fragment header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[frag_field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6FragmentHeader<T> {
    fn set_off_m(&mut self, v: u16) {
        self.buffer.as_mut()[frag_field::OFF_M].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_next_header(&mut self, nh: IpProtocol) {
        self.buffer.as_mut()[frag_field::NXT_HDR] = nh.into();
    }

    /// Zeroes the reserved byte and reserved bits.
    pub fn clear_reserved(&mut self) {
        self.buffer.as_mut()[frag_field::RESERVED] = 0;
        let w = self.off_m();
        self.set_off_m(w & !0x6);
    }

    /// Sets the offset in bytes (a multiple of 8; the low bits are lost).
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let w = self.off_m();
        self.set_off_m((w & 0x7) | (bytes & !0x7));
    }

    pub fn set_more_frags(&mut self, on: bool) {
        let w = self.off_m();
        self.set_off_m(if on { w | 1 } else { w & !1 });
    }

    pub fn set_ident(&mut self, id: u32) {
        self.buffer.as_mut()[frag_field::IDENT].copy_from_slice(&id.to_be_bytes());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[frag_field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Ipv6FragmentHeader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Ipv6FragmentRepr::parse(self) {
            Ok(r) => write!(f, "{r}"),
            Err(e) => write!(f, "IPv6 fragment ({e})"),
        }
    }
}

/// A fragment header, by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6FragmentRepr {
    pub next_header: IpProtocol,
    /// Offset in bytes (a multiple of 8).
    pub frag_offset: u16,
    pub more_frags: bool,
    pub ident: u32,
}

impl Ipv6FragmentRepr {
    /// Reserved fields are ignored on receipt (RFC 8200 §4.5).
    pub fn parse<T: AsRef<[u8]>>(header: &Ipv6FragmentHeader<T>) -> Result<Ipv6FragmentRepr> {
        header.check_len()?;
        Ok(Ipv6FragmentRepr {
            next_header: header.next_header(),
            frag_offset: header.frag_offset(),
            more_frags: header.more_frags(),
            ident: header.ident(),
        })
    }

    pub const fn header_len(&self) -> usize {
        FRAGMENT_HEADER_LEN
    }

    pub const fn buffer_len(&self) -> usize {
        FRAGMENT_HEADER_LEN
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, header: &mut Ipv6FragmentHeader<T>) {
        header.set_next_header(self.next_header);
        header.set_off_m(0);
        header.clear_reserved();
        header.set_frag_offset(self.frag_offset);
        header.set_more_frags(self.more_frags);
        header.set_ident(self.ident);
    }
}

impl fmt::Display for Ipv6FragmentRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "frag id=0x{:08x} off={} nxt={}",
            self.ident, self.frag_offset, self.next_header
        )?;
        if self.more_frags {
            f.write_str(" M")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{EtherType, EthernetFrame};
    use proptest::prelude::*;

    /// tcpdump -xx on a veth (MTU 1280) in a test netns, during
    /// `ping -6 -s 1300 2001:2::2`: the second fragment,
    /// "IP6 2001:2::1 > 2001:2::2: frag (1232|76)". Fragment header
    /// 3a 00 04 d0 46 c3 66 24: next ICMPv6, offset 1232, M=0.
    static FRAG2_FRAME: [u8; 138] = [
        0x06, 0x33, 0x26, 0xde, 0xf6, 0xca, 0x16, 0x3e, 0xee, 0xfe, 0x2a, 0xc6, 0x86, 0xdd, 0x60,
        0x0f, 0x82, 0x01, 0x00, 0x54, 0x2c, 0x40, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x3a, 0x00, 0x04, 0xd0, 0x46, 0xc3,
        0x66, 0x24, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4,
        0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xe1, 0xe2, 0xe3,
        0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf2,
        0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, 0x00, 0x01,
        0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
        0x11, 0x12, 0x13,
    ];

    /// tcpdump -xx on a veth in a test netns, at link up: an MLDv2 report
    /// "IP6 :: > ff02::16: HBH ICMP6, multicast listener report v2", with a
    /// hop-by-hop header carrying Router Alert (3a 00 05 02 00 00 01 00).
    static MLD_HBH_FRAME: [u8; 110] = [
        0x33, 0x33, 0x00, 0x00, 0x00, 0x16, 0x2e, 0x78, 0xc6, 0x70, 0xf9, 0xa7, 0x86, 0xdd, 0x60,
        0x00, 0x00, 0x00, 0x00, 0x38, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x16, 0x3a, 0x00, 0x05, 0x02, 0x00, 0x00,
        0x01, 0x00, 0x8f, 0x00, 0x73, 0x57, 0x00, 0x00, 0x00, 0x02, 0x04, 0x00, 0x00, 0x00, 0xff,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x00, 0x01,
        0x04, 0x00, 0x00, 0x00, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x01, 0xff, 0x70, 0xf9, 0xa7,
    ];

    const A: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
    const B: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);

    fn frag2_ip() -> &'static [u8] {
        &FRAG2_FRAME[14..]
    }

    fn frag2_repr() -> Ipv6Repr {
        Ipv6Repr {
            src_addr: A,
            dst_addr: B,
            next_header: IpProtocol::Ipv6Frag,
            payload_len: 84,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0xf8201,
        }
    }

    fn frag2_frag() -> Ipv6FragmentRepr {
        Ipv6FragmentRepr {
            next_header: IpProtocol::Icmpv6,
            frag_offset: 1232,
            more_frags: false,
            ident: 0x46c3_6624,
        }
    }

    #[test]
    fn deconstruct() {
        let eth = EthernetFrame::new_checked(&FRAG2_FRAME[..]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Ipv6);
        let p = Ipv6Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0);
        assert_eq!(p.flow_label(), 0xf8201);
        assert_eq!(p.payload_len(), 84);
        assert_eq!(p.next_header(), IpProtocol::Ipv6Frag);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), A);
        assert_eq!(p.dst_addr(), B);
        assert_eq!(p.payload(), &FRAG2_FRAME[54..]);

        let h = Ipv6FragmentHeader::new_checked(p.payload()).unwrap();
        assert_eq!(h.next_header(), IpProtocol::Icmpv6);
        assert_eq!(h.frag_offset(), 1232);
        assert_eq!(h.frag_offset_units(), 154);
        assert!(!h.more_frags());
        assert_eq!(h.ident(), 0x46c3_6624);
        assert_eq!(h.payload(), &FRAG2_FRAME[62..]);
    }

    #[test]
    fn construct() {
        let mut buf = [0xffu8; 124];
        buf[48..].copy_from_slice(&FRAG2_FRAME[62..]);
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        p.set_version(6);
        p.set_traffic_class(0);
        p.set_flow_label(0xf8201);
        p.set_payload_len(84);
        p.set_next_header(IpProtocol::Ipv6Frag);
        p.set_hop_limit(64);
        p.set_src_addr(A);
        p.set_dst_addr(B);
        let mut h = Ipv6FragmentHeader::new_unchecked(p.payload_mut());
        h.set_next_header(IpProtocol::Icmpv6);
        h.clear_reserved();
        h.set_frag_offset(1232);
        h.set_more_frags(false);
        h.set_ident(0x46c3_6624);
        assert_eq!(&buf[..], frag2_ip());
    }

    #[test]
    fn parse_and_emit() {
        let p = Ipv6Packet::new_checked(frag2_ip()).unwrap();
        let repr = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(repr, frag2_repr());
        assert_eq!(repr.buffer_len(), 124);
        let frag = Ipv6FragmentRepr::parse(&Ipv6FragmentHeader::new_checked(p.payload()).unwrap());
        assert_eq!(frag, Ok(frag2_frag()));

        let mut buf = [0u8; 124];
        buf[48..].copy_from_slice(&FRAG2_FRAME[62..]);
        let mut out = Ipv6Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut out);
        frag2_frag().emit(&mut Ipv6FragmentHeader::new_unchecked(out.payload_mut()));
        assert_eq!(&buf[..], frag2_ip());
        assert_eq!(
            p.to_string(),
            "IPv6 src=2001:2::1 dst=2001:2::2 nxt=ipv6-frag hop=64 len=84 tc=0 flow=0xf8201 \
             ext=1 upper=icmpv6@48 [frag id=0x46c36624 off=1232 nxt=icmpv6]"
        );
    }

    #[test]
    fn walk_non_first_fragment() {
        let p = Ipv6Packet::new_checked(frag2_ip()).unwrap();
        let x = p.ext_headers().unwrap();
        assert_eq!(
            x,
            Ipv6ExtHeaders {
                upper_protocol: IpProtocol::Icmpv6,
                upper_offset: 48,
                count: 1,
                fragment: Some(frag2_frag()),
                fragment_at: Some(40),
            }
        );
        assert!(x.is_non_first_fragment());
    }

    #[test]
    fn walk_stops_after_non_first_fragment_header() {
        // Same fragment, but claiming a destination-options header follows:
        // in a non-first fragment that header is in fragment 0, and the bytes
        // here (c8 c9 ...) are data; walking them would read "length 0xc9".
        let mut buf = frag2_ip().to_vec();
        buf[40] = 60;
        let x = walk(&buf).unwrap();
        assert_eq!(x.upper_protocol, IpProtocol::Ipv6Opts);
        assert_eq!((x.upper_offset, x.count), (48, 1));
        assert!(x.is_non_first_fragment());
    }

    #[test]
    fn walk_first_fragment_continues() {
        // The first fragment of the same ping had 00 01 (offset 0, M) and an
        // ICMPv6 header behind it; a destination-options header is inserted
        // after the fragment header here to show the walk goes on.
        let mut buf = frag2_ip().to_vec();
        buf[42..44].copy_from_slice(&[0x00, 0x01]);
        buf[40] = 60;
        buf[48] = 58; // dest opts -> ICMPv6
        buf[49] = 0; // 8 bytes
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        let x = p.ext_headers().unwrap();
        assert_eq!(x.count, 2);
        assert_eq!(x.upper_protocol, IpProtocol::Icmpv6);
        assert_eq!(x.upper_offset, 56);
        let f = x.fragment.unwrap();
        assert!(f.more_frags && f.frag_offset == 0);
        assert!(!x.is_non_first_fragment());
    }

    #[test]
    fn walk_hop_by_hop() {
        let eth = EthernetFrame::new_checked(&MLD_HBH_FRAME[..]).unwrap();
        let p = Ipv6Packet::new_checked(eth.payload()).unwrap();
        let repr = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(repr.next_header, IpProtocol::HopByHop);
        assert_eq!(repr.hop_limit, 1);
        assert_eq!(repr.src_addr, Ipv6Addr::UNSPECIFIED);
        assert_eq!(repr.dst_addr, Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16));
        let x = p.ext_headers().unwrap();
        assert_eq!(x.upper_protocol, IpProtocol::Icmpv6);
        assert_eq!(x.upper_offset, 48);
        assert_eq!(x.count, 1);
        assert_eq!(x.fragment, None);
        // ICMPv6 type 143 (MLDv2 report) is where the walk says.
        assert_eq!(eth.payload()[x.upper_offset], 143);
    }

    /// Builds a packet whose payload is the given chain of extension headers
    /// (each 8 bytes unless stated), ending in UDP with 8 bytes of data.
    fn chain(headers: &[(u8, usize)]) -> Vec<u8> {
        let mut payload = Vec::new();
        for (i, &(kind, len)) in headers.iter().enumerate() {
            let next = headers.get(i + 1).map_or(17, |h| h.0);
            let mut h = vec![0u8; len];
            h[0] = next;
            h[1] = match kind {
                51 => (len / 4 - 2) as u8,
                44 => 0,
                _ => (len / 8 - 1) as u8,
            };
            payload.extend_from_slice(&h);
        }
        payload.extend_from_slice(&[0u8; 8]);
        let repr = Ipv6Repr {
            next_header: IpProtocol::from(headers.first().map_or(17, |h| h.0)),
            payload_len: payload.len(),
            ..frag2_repr()
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        buf[40..].copy_from_slice(&payload);
        repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
        buf
    }

    fn walk(buf: &[u8]) -> Result<Ipv6ExtHeaders> {
        Ipv6Packet::new_checked(buf)?.ext_headers()
    }

    #[test]
    fn walk_every_kind_and_ah_length_rule() {
        // HBH 16, routing 24, dest 8, AH 24 (len field 4: (4+2)*4), frag 8.
        let buf = chain(&[(0, 16), (43, 24), (60, 8), (51, 24), (44, 8)]);
        let x = walk(&buf).unwrap();
        assert_eq!(x.count, 5);
        assert_eq!(x.upper_protocol, IpProtocol::Udp);
        assert_eq!(x.upper_offset, 40 + 16 + 24 + 8 + 24 + 8);
        assert_eq!(x.fragment_at, Some(40 + 72));
        // ESP stops the walk: what follows is encrypted.
        let buf = chain(&[(60, 8), (50, 8)]);
        let x = walk(&buf).unwrap();
        assert_eq!(
            (x.upper_protocol, x.upper_offset, x.count),
            (IpProtocol::Esp, 48, 1)
        );
    }

    #[test]
    fn too_many_extension_headers() {
        let eight = [(60u8, 8usize); MAX_EXT_HEADERS];
        assert_eq!(walk(&chain(&eight)).unwrap().count, 8);
        let nine = [(60u8, 8usize); MAX_EXT_HEADERS + 1];
        assert_eq!(walk(&chain(&nine)).err(), Some(Error::BadOption));
    }

    #[test]
    fn hop_by_hop_only_first() {
        assert_eq!(
            walk(&chain(&[(60, 8), (0, 8)])).err(),
            Some(Error::Malformed)
        );
        assert_eq!(
            walk(&chain(&[(0, 8), (0, 8)])).err(),
            Some(Error::Malformed)
        );
    }

    #[test]
    fn two_fragment_headers() {
        assert_eq!(
            walk(&chain(&[(44, 8), (44, 8)])).err(),
            Some(Error::Malformed)
        );
    }

    #[test]
    fn extension_header_past_payload() {
        // Routing header claiming 8 * (1 + 4) bytes in a 16-byte payload.
        let mut buf = chain(&[(43, 8)]);
        buf[41] = 4;
        assert_eq!(walk(&buf).err(), Some(Error::Truncated));
        // Payload too short even for the first two bytes of a header.
        let mut buf = chain(&[]);
        buf[4..6].copy_from_slice(&1u16.to_be_bytes());
        buf[6] = 60;
        assert_eq!(walk(&buf).err(), Some(Error::Truncated));
    }

    #[test]
    fn padding_is_not_payload() {
        let mut buf = frag2_ip().to_vec();
        buf.extend_from_slice(&[0xee; 10]);
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload(), &FRAG2_FRAME[54..]);
    }

    #[test]
    fn truncated_at_every_length() {
        for len in 0..frag2_ip().len() {
            let b = &frag2_ip()[..len];
            assert_eq!(
                Ipv6Packet::new_checked(b).err(),
                Some(Error::Truncated),
                "len {len}"
            );
            assert!(Ipv6Repr::parse(&Ipv6Packet::new_unchecked(b)).is_err());
            assert!(Ipv6Packet::new_unchecked(b).ext_headers().is_err());
        }
        for len in 0..FRAGMENT_HEADER_LEN {
            assert_eq!(
                Ipv6FragmentHeader::new_checked(&frag2_ip()[40..40 + len]).err(),
                Some(Error::Truncated)
            );
        }
    }

    #[test]
    fn bad_version() {
        for v in [0u8, 4, 15] {
            let mut buf = frag2_ip().to_vec();
            Ipv6Packet::new_unchecked(&mut buf[..]).set_version(v);
            let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
            assert_eq!(p.flow_label(), 0xf8201);
            assert_eq!(Ipv6Repr::parse(&p), Err(Error::BadVersion));
        }
    }

    #[test]
    fn decrement_hop_limit() {
        let mut buf = frag2_ip().to_vec();
        let mut p = Ipv6Packet::new_checked(&mut buf[..]).unwrap();
        assert_eq!(p.decrement_hop_limit(), Ok(63));
        p.set_hop_limit(1);
        assert_eq!(p.decrement_hop_limit(), Ok(0));
        assert_eq!(p.decrement_hop_limit(), Err(Error::Malformed));
        assert_eq!(p.hop_limit(), 0);
    }

    fn arb_repr() -> impl Strategy<Value = Ipv6Repr> {
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u8>(),
            0usize..1500,
            any::<u8>(),
            any::<u8>(),
            0u32..(1 << 20),
        )
            .prop_map(
                |(s, d, nh, payload_len, hop_limit, traffic_class, flow_label)| Ipv6Repr {
                    src_addr: Ipv6Addr::from(s),
                    dst_addr: Ipv6Addr::from(d),
                    next_header: IpProtocol::from(nh),
                    payload_len,
                    hop_limit,
                    traffic_class,
                    flow_label,
                },
            )
    }

    fn arb_frag() -> impl Strategy<Value = Ipv6FragmentRepr> {
        (any::<u8>(), 0u16..8192, any::<bool>(), any::<u32>()).prop_map(|(nh, off, m, id)| {
            Ipv6FragmentRepr {
                next_header: IpProtocol::from(nh),
                frag_offset: off << 3,
                more_frags: m,
                ident: id,
            }
        })
    }

    /// A valid chain: optional HBH first, then up to 7 of routing / dest
    /// opts / AH / at most one fragment (offset 0), each with a random length.
    fn arb_chain() -> impl Strategy<Value = Vec<(u8, usize)>> {
        let kind = prop_oneof![
            (0usize..4).prop_map(|n| (43u8, (n + 1) * 8)),
            (0usize..4).prop_map(|n| (60u8, (n + 1) * 8)),
            (0usize..6).prop_map(|n| (51u8, (n + 3) * 4)),
            Just((44u8, 8usize)),
        ];
        (
            any::<bool>(),
            0usize..4,
            proptest::collection::vec(kind, 0..7),
        )
            .prop_map(|(hbh, hbh_n, rest)| {
                let mut v = Vec::new();
                if hbh {
                    v.push((0u8, (hbh_n + 1) * 8));
                }
                let mut seen_frag = false;
                for h in rest {
                    if h.0 == 44 {
                        if seen_frag {
                            continue;
                        }
                        seen_frag = true;
                    }
                    v.push(h);
                }
                v
            })
    }

    proptest! {
        #[test]
        fn emit_then_parse_is_identity(repr in arb_repr(), pad in 0usize..16) {
            let mut buf = vec![0u8; repr.buffer_len() + pad];
            repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
            let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Ipv6Repr::parse(&p), Ok(repr));
            prop_assert_eq!(p.payload().len(), repr.payload_len);
        }

        #[test]
        fn fragment_emit_then_parse_is_identity(frag in arb_frag()) {
            let mut buf = [0xffu8; FRAGMENT_HEADER_LEN];
            frag.emit(&mut Ipv6FragmentHeader::new_unchecked(&mut buf[..]));
            prop_assert_eq!(buf[1], 0);
            let h = Ipv6FragmentHeader::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Ipv6FragmentRepr::parse(&h), Ok(frag));
        }

        #[test]
        fn walker_matches_model(headers in arb_chain()) {
            let buf = chain(&headers);
            let x = walk(&buf).unwrap();
            prop_assert_eq!(usize::from(x.count), headers.len());
            prop_assert_eq!(x.upper_protocol, IpProtocol::Udp);
            let total: usize = headers.iter().map(|h| h.1).sum();
            prop_assert_eq!(x.upper_offset, 40 + total);
            prop_assert_eq!(x.fragment.is_some(), headers.iter().any(|h| h.0 == 44));
            // Cutting the payload anywhere inside the chain is an error.
            for cut in 0..total {
                let mut b = buf[..40 + cut].to_vec();
                b[4..6].copy_from_slice(&(cut as u16).to_be_bytes());
                prop_assert_eq!(walk(&b).err(), Some(Error::Truncated), "cut {}", cut);
            }
        }

        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
            let _ = Ipv6Repr::parse(&Ipv6Packet::new_unchecked(&bytes[..]));
            let _ = Ipv6Packet::new_unchecked(&bytes[..]).ext_headers();
            let _ = Ipv6FragmentRepr::parse(&Ipv6FragmentHeader::new_unchecked(&bytes[..]));
            let mut bytes = bytes;
            if let Ok(mut p) = Ipv6Packet::new_checked(&mut bytes[..]) {
                let _ = (p.payload().len(), p.to_string());
                let _ = p.decrement_hop_limit();
                let _ = p.payload_mut();
            }
        }

        #[test]
        fn never_panics_on_random_chains(
            nh in prop_oneof![Just(0u8), Just(43), Just(44), Just(51), Just(60)],
            mut payload in proptest::collection::vec(
                prop_oneof![Just(0u8), Just(43), Just(44), Just(51), Just(60), Just(1), any::<u8>()], 0..200),
        ) {
            let len = payload.len();
            let mut buf = frag2_ip()[..40].to_vec();
            buf[4..6].copy_from_slice(&(len as u16).to_be_bytes());
            buf[6] = nh;
            buf.append(&mut payload);
            if let Ok(x) = walk(&buf) {
                prop_assert!(x.upper_offset <= 40 + len);
                prop_assert!(usize::from(x.count) <= MAX_EXT_HEADERS);
            }
        }

        #[test]
        fn never_panics_on_prefixes(which in any::<bool>(), len in 0usize..124) {
            let b = if which { frag2_ip() } else { &MLD_HBH_FRAME[14..] };
            let b = &b[..len.min(b.len())];
            if let Ok(p) = Ipv6Packet::new_checked(b) {
                prop_assert!(p.ext_headers().is_ok());
            } else {
                prop_assert!(Ipv6Packet::new_unchecked(b).ext_headers().is_err());
            }
        }
    }
}
