//! IPv4 (RFC 791) headers, with options kept opaque but length-checked.
//!
//! The view trusts the total length field over the buffer: a frame may be
//! longer than its datagram (Ethernet pads to 60 bytes), so `payload` ends at
//! `total_len`, never at the end of the buffer.

use core::fmt;
use core::net::Ipv4Addr;

use super::checksum;
use super::{Error, Field, IpProtocol, Result};

mod field {
    use super::Field;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
    /// Options run from here to `header_len`.
    pub const OPTIONS_START: usize = 20;
}

/// Header length without options.
pub const HEADER_LEN: usize = 20;
/// Longest header (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;
/// Longest options area.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;

const FLAG_RESERVED: u16 = 0x8000;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A read/write view of an IPv4 datagram.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Checks the lengths once: 20 bytes present, IHL in 5..=15, and
    /// `header_len <= total_len <= buffer length`. Does not check the version
    /// or checksum (that is `Ipv4Repr::parse`).
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::BadLength);
        }
        if hl > len {
            return Err(Error::Truncated);
        }
        let tl = usize::from(self.total_len());
        if tl < hl {
            return Err(Error::BadLength);
        }
        if tl > len {
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

    fn read_u16(&self, f: Field) -> u16 {
        let d = &self.data()[f];
        u16::from_be_bytes([d[0], d[1]])
    }

    pub fn version(&self) -> u8 {
        self.data()[field::VER_IHL] >> 4
    }

    /// Header length in 32-bit words.
    pub fn ihl(&self) -> u8 {
        self.data()[field::VER_IHL] & 0x0f
    }

    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }

    pub fn dscp(&self) -> u8 {
        self.data()[field::DSCP_ECN] >> 2
    }

    pub fn ecn(&self) -> u8 {
        self.data()[field::DSCP_ECN] & 0x03
    }

    pub fn total_len(&self) -> u16 {
        self.read_u16(field::LENGTH)
    }

    pub fn ident(&self) -> u16 {
        self.read_u16(field::IDENT)
    }

    /// The reserved ("evil") flag bit, which must be zero.
    pub fn reserved_flag(&self) -> bool {
        self.read_u16(field::FLG_OFF) & FLAG_RESERVED != 0
    }

    pub fn dont_frag(&self) -> bool {
        self.read_u16(field::FLG_OFF) & FLAG_DF != 0
    }

    pub fn more_frags(&self) -> bool {
        self.read_u16(field::FLG_OFF) & FLAG_MF != 0
    }

    /// Fragment offset in 8-byte units, as on the wire.
    pub fn frag_offset_units(&self) -> u16 {
        self.read_u16(field::FLG_OFF) & OFFSET_MASK
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        self.frag_offset_units() << 3
    }

    /// True for any fragment of a fragmented datagram (MF set or offset > 0).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset_units() != 0
    }

    /// True for the first fragment of a fragmented datagram (MF set, offset
    /// 0): the only one that carries the upper-layer header.
    pub fn is_first_fragment(&self) -> bool {
        self.more_frags() && self.frag_offset_units() == 0
    }

    pub fn ttl(&self) -> u8 {
        self.data()[field::TTL]
    }

    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.data()[field::PROTOCOL])
    }

    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    pub fn src_addr(&self) -> Ipv4Addr {
        let d = &self.data()[field::SRC_ADDR];
        Ipv4Addr::new(d[0], d[1], d[2], d[3])
    }

    pub fn dst_addr(&self) -> Ipv4Addr {
        let d = &self.data()[field::DST_ADDR];
        Ipv4Addr::new(d[0], d[1], d[2], d[3])
    }

    /// The raw options area (`header_len - 20` bytes, possibly empty).
    pub fn options(&self) -> &[u8] {
        &self.data()[field::OPTIONS_START..self.header_len()]
    }

    /// The header (with options) sums to 0xffff.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(&self.data()[..self.header_len()]) == 0xffff
    }

    /// Bytes from the end of the header to `total_len`; trailing padding is
    /// excluded.
    pub fn payload(&self) -> &[u8] {
        &self.data()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    fn write_u16(&mut self, f: Field, v: u16) {
        self.data_mut()[f].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.data_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Sets the IHL (header length in 32-bit words, 0..=15).
    pub fn set_ihl(&mut self, words: u8) {
        let b = &mut self.data_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | (words & 0x0f);
    }

    /// Sets the header length in bytes (a multiple of 4, 20..=60).
    pub fn set_header_len(&mut self, len: usize) {
        self.set_ihl((len / 4) as u8);
    }

    pub fn set_dscp(&mut self, v: u8) {
        let b = &mut self.data_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (v << 2);
    }

    pub fn set_ecn(&mut self, v: u8) {
        let b = &mut self.data_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (v & 0x03);
    }

    pub fn set_total_len(&mut self, v: u16) {
        self.write_u16(field::LENGTH, v);
    }

    pub fn set_ident(&mut self, v: u16) {
        self.write_u16(field::IDENT, v);
    }

    fn set_flag(&mut self, flag: u16, on: bool) {
        let w = self.read_u16(field::FLG_OFF);
        self.write_u16(field::FLG_OFF, if on { w | flag } else { w & !flag });
    }

    pub fn set_reserved_flag(&mut self, on: bool) {
        self.set_flag(FLAG_RESERVED, on);
    }

    pub fn set_dont_frag(&mut self, on: bool) {
        self.set_flag(FLAG_DF, on);
    }

    pub fn set_more_frags(&mut self, on: bool) {
        self.set_flag(FLAG_MF, on);
    }

    /// Sets the fragment offset in 8-byte units (13 bits).
    pub fn set_frag_offset_units(&mut self, units: u16) {
        let w = self.read_u16(field::FLG_OFF);
        self.write_u16(field::FLG_OFF, (w & !OFFSET_MASK) | (units & OFFSET_MASK));
    }

    /// Sets the fragment offset in bytes (a multiple of 8; the rest is lost).
    pub fn set_frag_offset(&mut self, bytes: u16) {
        self.set_frag_offset_units(bytes >> 3);
    }

    pub fn set_ttl(&mut self, v: u8) {
        self.data_mut()[field::TTL] = v;
    }

    pub fn set_protocol(&mut self, p: IpProtocol) {
        self.data_mut()[field::PROTOCOL] = p.into();
    }

    pub fn set_checksum(&mut self, v: u16) {
        self.write_u16(field::CHECKSUM, v);
    }

    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.data_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.data_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.data_mut()[field::OPTIONS_START..hl]
    }

    /// Computes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(&self.data()[..self.header_len()]);
        self.set_checksum(c);
    }

    /// Decrements the TTL and patches the checksum incrementally (RFC 1624)
    /// over the TTL/protocol word, without re-summing the header. Returns
    /// the new TTL; `Err(Malformed)` (nothing changed) if the TTL is already 0.
    /// A router checks `ttl() <= 1` first and answers Time Exceeded instead.
    pub fn decrement_ttl_incremental(&mut self) -> Result<u8> {
        let ttl = self.ttl();
        if ttl == 0 {
            return Err(Error::Malformed);
        }
        let proto = self.data()[field::PROTOCOL];
        let old = u16::from_be_bytes([ttl, proto]);
        let new = u16::from_be_bytes([ttl - 1, proto]);
        let c = checksum::update16(self.checksum(), old, new);
        self.set_ttl(ttl - 1);
        self.set_checksum(c);
        Ok(ttl - 1)
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let tl = usize::from(self.total_len());
        &mut self.data_mut()[hl..tl]
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Ipv4Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Ipv4Repr::parse(self) {
            Ok(r) => write!(f, "{r}"),
            Err(e) => write!(f, "IPv4 ({e})"),
        }
    }
}

/// The options area of an IPv4 header, by value: up to 40 bytes, a multiple
/// of 4 long (it is what IHL counts). Unused bytes are always zero, so derived
/// equality compares only the options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Options {
    bytes: [u8; MAX_OPTIONS_LEN],
    len: u8,
}

impl Default for Ipv4Options {
    fn default() -> Self {
        Ipv4Options::EMPTY
    }
}

impl Ipv4Options {
    pub const EMPTY: Ipv4Options = Ipv4Options {
        bytes: [0; MAX_OPTIONS_LEN],
        len: 0,
    };

    /// Copies `raw` (a multiple of 4, at most 40 bytes) after checking the
    /// TLV structure: EOL (0) ends the list, NOP (1) is one byte, every other
    /// option has a length byte >= 2 that stays inside the area.
    pub fn new(raw: &[u8]) -> Result<Ipv4Options> {
        if raw.len() > MAX_OPTIONS_LEN || raw.len() % 4 != 0 {
            return Err(Error::BadLength);
        }
        let mut i = 0;
        while let Some(&kind) = raw.get(i) {
            match kind {
                0 => break,
                1 => i += 1,
                _ => {
                    let len = usize::from(*raw.get(i + 1).ok_or(Error::BadOption)?);
                    if len < 2 || i + len > raw.len() {
                        return Err(Error::BadOption);
                    }
                    i += len;
                }
            }
        }
        let mut bytes = [0; MAX_OPTIONS_LEN];
        bytes[..raw.len()].copy_from_slice(raw);
        Ok(Ipv4Options {
            bytes,
            len: raw.len() as u8,
        })
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub const fn len(&self) -> usize {
        self.len as usize
    }

    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Whether `Ipv4Repr::parse_with` verifies the header checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumMode {
    Verify,
    /// For headers already verified upstream (or deliberately corrupted in
    /// tests).
    Ignore,
}

/// A validated IPv4 header, by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: IpProtocol,
    /// Payload bytes (`total_len - header_len`).
    pub payload_len: usize,
    pub ttl: u8,
    /// 6 bits.
    pub dscp: u8,
    /// 2 bits.
    pub ecn: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// Fragment offset in bytes (a multiple of 8, at most 65528).
    pub frag_offset: u16,
    pub options: Ipv4Options,
}

impl Ipv4Repr {
    /// Parses and verifies the checksum.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr> {
        Self::parse_with(packet, ChecksumMode::Verify)
    }

    /// Checks lengths, version 4, the option TLVs, and (per `mode`) the
    /// checksum. The reserved flag bit is tolerated (and dropped), as hosts do.
    pub fn parse_with<T: AsRef<[u8]>>(
        packet: &Ipv4Packet<T>,
        mode: ChecksumMode,
    ) -> Result<Ipv4Repr> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(Error::BadVersion);
        }
        if mode == ChecksumMode::Verify && !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let options = Ipv4Options::new(packet.options())?;
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            ttl: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
            options,
        })
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN + self.options.len()
    }

    /// Header plus payload: the total length `emit` writes.
    pub const fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    pub const fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_offset != 0
    }

    /// First fragment of a fragmented datagram (MF set, offset 0).
    pub const fn is_first_fragment(&self) -> bool {
        self.more_frags && self.frag_offset == 0
    }

    /// Writes the header with its checksum; the payload is the caller's.
    /// `packet` must hold at least `header_len()` bytes, and
    /// `buffer_len()` must fit in 16 bits.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        packet.set_version(4);
        packet.set_header_len(self.header_len());
        packet.set_dscp(self.dscp);
        packet.set_ecn(self.ecn);
        packet.set_total_len(self.buffer_len() as u16);
        packet.set_ident(self.ident);
        packet.write_u16(field::FLG_OFF, 0);
        packet.set_dont_frag(self.dont_frag);
        packet.set_more_frags(self.more_frags);
        packet.set_frag_offset(self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet
            .options_mut()
            .copy_from_slice(self.options.as_slice());
        packet.fill_checksum();
    }
}

impl fmt::Display for Ipv4Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IPv4 src={} dst={} proto={} ttl={} len={}",
            self.src_addr, self.dst_addr, self.protocol, self.ttl, self.payload_len
        )?;
        if self.dscp != 0 || self.ecn != 0 {
            write!(f, " dscp={} ecn={}", self.dscp, self.ecn)?;
        }
        if self.dont_frag {
            f.write_str(" DF")?;
        }
        if self.is_fragment() {
            write!(f, " frag id={} off={}", self.ident, self.frag_offset)?;
            if self.more_frags {
                f.write_str(" MF")?;
            }
        }
        if !self.options.is_empty() {
            write!(f, " opts={}B", self.options.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{EtherType, EthernetFrame};
    use proptest::prelude::*;

    /// tcpdump -xx on a veth in a test netns: 198.18.0.1 > 198.18.0.2 ICMP
    /// echo request, id 983, seq 1, length 64 (ping -c 1), Ethernet included.
    static ECHO_FRAME: [u8; 98] = [
        0x02, 0x3d, 0xeb, 0x1d, 0x6d, 0xb9, 0x2e, 0x78, 0xc6, 0x70, 0xf9, 0xa7, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x54, 0xeb, 0x10, 0x40, 0x00, 0x40, 0x01, 0xc3, 0x70, 0xc6, 0x12, 0x00, 0x01,
        0xc6, 0x12, 0x00, 0x02, 0x08, 0x00, 0x4e, 0x40, 0x03, 0xd7, 0x00, 0x01, 0xa4, 0x2b, 0x05,
        0x6b, 0x00, 0x00, 0x00, 0x00, 0x32, 0x7e, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11,
        0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
        0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];

    /// The echo reply from the same capture (no DF, id 0x0d86).
    static REPLY_IP: [u8; 20] = [
        0x45, 0x00, 0x00, 0x54, 0x0d, 0x86, 0x00, 0x00, 0x40, 0x01, 0xe0, 0xfb, 0xc6, 0x12, 0x00,
        0x02, 0xc6, 0x12, 0x00, 0x01,
    ];

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn echo_ip() -> &'static [u8] {
        &ECHO_FRAME[14..]
    }

    fn echo_repr() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: A,
            dst_addr: B,
            protocol: IpProtocol::Icmp,
            payload_len: 64,
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident: 0xeb10,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            options: Ipv4Options::EMPTY,
        }
    }

    #[test]
    fn deconstruct() {
        let eth = EthernetFrame::new_checked(&ECHO_FRAME[..]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Ipv4);
        let p = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.ihl(), 5);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.dscp(), 0);
        assert_eq!(p.ecn(), 0);
        assert_eq!(p.total_len(), 84);
        assert_eq!(p.ident(), 0xeb10);
        assert!(p.dont_frag() && !p.more_frags() && !p.reserved_flag());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment() && !p.is_first_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::Icmp);
        assert_eq!(p.checksum(), 0xc370);
        assert_eq!(p.src_addr(), A);
        assert_eq!(p.dst_addr(), B);
        assert!(p.options().is_empty());
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &ECHO_FRAME[34..]);
    }

    #[test]
    fn construct() {
        let mut buf = [0xffu8; 84];
        buf[20..].copy_from_slice(&ECHO_FRAME[34..]);
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_version(4);
        p.set_header_len(20);
        p.set_dscp(0);
        p.set_ecn(0);
        p.set_total_len(84);
        p.set_ident(0xeb10);
        p.set_reserved_flag(false);
        p.set_dont_frag(true);
        p.set_more_frags(false);
        p.set_frag_offset(0);
        p.set_ttl(64);
        p.set_protocol(IpProtocol::Icmp);
        p.set_src_addr(A);
        p.set_dst_addr(B);
        p.fill_checksum();
        assert_eq!(&buf[..], echo_ip());
    }

    #[test]
    fn parse_and_emit() {
        let p = Ipv4Packet::new_checked(echo_ip()).unwrap();
        let repr = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(repr, echo_repr());
        assert_eq!(repr.buffer_len(), 84);
        assert_eq!(
            repr.to_string(),
            "IPv4 src=198.18.0.1 dst=198.18.0.2 proto=icmp ttl=64 len=64 DF"
        );
        let mut buf = [0u8; 84];
        buf[20..].copy_from_slice(p.payload());
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..], echo_ip());

        // The reply header alone claims 84 bytes: the view refuses it, so
        // pad it with a zero payload (the header is what is checked here).
        assert_eq!(
            Ipv4Packet::new_checked(&REPLY_IP[..]).err(),
            Some(Error::Truncated)
        );
        let mut padded = REPLY_IP.to_vec();
        padded.resize(84, 0);
        let reply = Ipv4Repr::parse(&Ipv4Packet::new_checked(&padded[..]).unwrap()).unwrap();
        assert_eq!(
            (reply.src_addr, reply.dst_addr, reply.ident),
            (B, A, 0x0d86)
        );
        assert!(!reply.dont_frag);
        let mut hdr = [0u8; 20];
        reply.emit(&mut Ipv4Packet::new_unchecked(&mut hdr[..]));
        assert_eq!(hdr, REPLY_IP);
    }

    #[test]
    fn inside_qinq_frame() {
        use crate::wire::ethernet::{push_vlan_tag, VlanTag};
        // The captured echo, tagged by hand with C-tag 100 then S-tag 300.
        let mut buf = [0u8; 106];
        buf[..98].copy_from_slice(&ECHO_FRAME);
        let len = push_vlan_tag(&mut buf, 98, VlanTag::dot1q(100)).unwrap();
        let s_tag = VlanTag {
            tpid: EtherType::QinQ,
            ..VlanTag::dot1q(300)
        };
        let len = push_vlan_tag(&mut buf, len, s_tag).unwrap();
        assert_eq!(
            &buf[12..20],
            &[0x88, 0xa8, 0x01, 0x2c, 0x81, 0x00, 0x00, 0x64]
        );
        let eth = EthernetFrame::new_checked(&buf[..len]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Ipv4);
        let p = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(Ipv4Repr::parse(&p), Ok(echo_repr()));
        assert_eq!(p.payload(), &ECHO_FRAME[34..]);
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        // A 20-byte header + 8-byte payload, padded by the NIC to 46 bytes.
        let mut repr = echo_repr();
        repr.payload_len = 8;
        let mut buf = [0xeeu8; 46];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload().len(), 8);
        assert_eq!(Ipv4Repr::parse(&p).unwrap().payload_len, 8);
    }

    #[test]
    fn decrement_ttl_matches_full_recompute() {
        let mut buf = echo_ip().to_vec();
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        for want in (0..64u8).rev() {
            assert_eq!(p.decrement_ttl_incremental(), Ok(want));
            assert!(p.verify_checksum(), "ttl {want}");
            let inc = p.checksum();
            p.fill_checksum();
            assert_eq!(p.checksum(), inc);
        }
        assert_eq!(p.decrement_ttl_incremental(), Err(Error::Malformed));
        assert_eq!(p.ttl(), 0);
    }

    #[test]
    fn options_round_trip() {
        // Router alert (94 04 00 00) as IGMP and RSVP send it.
        let opts = Ipv4Options::new(&[0x94, 0x04, 0x00, 0x00]).unwrap();
        let repr = Ipv4Repr {
            options: opts,
            protocol: IpProtocol::Igmp,
            ..echo_repr()
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf[0], 0x46);
        assert_eq!(&buf[20..24], &[0x94, 0x04, 0x00, 0x00]);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.options(), opts.as_slice());
        assert_eq!(Ipv4Repr::parse(&p), Ok(repr));
        assert!(repr.to_string().ends_with("opts=4B"));
    }

    #[test]
    fn bad_options() {
        assert_eq!(Ipv4Options::new(&[1, 1, 1]).err(), Some(Error::BadLength));
        assert_eq!(Ipv4Options::new(&[0; 44]).err(), Some(Error::BadLength));
        // Length 1 (below 2), length running past the area, missing length.
        for raw in [[0x94, 0x01, 0, 0], [1, 0x94, 0x05, 0], [1, 1, 1, 0x83]] {
            assert_eq!(
                Ipv4Options::new(&raw).err(),
                Some(Error::BadOption),
                "{raw:?}"
            );
        }
        // NOPs, then EOL followed by garbage: fine.
        assert!(Ipv4Options::new(&[1, 1, 0, 0xff]).is_ok());
        // In a datagram: the repr refuses it.
        let mut repr = echo_repr();
        repr.options = Ipv4Options::new(&[1, 1, 1, 1]).unwrap();
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        buf[20..24].copy_from_slice(&[0x94, 0x08, 0, 0]);
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum();
        assert_eq!(Ipv4Repr::parse(&p), Err(Error::BadOption));
    }

    #[test]
    fn fragments() {
        let mut buf = echo_ip().to_vec();
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        p.set_dont_frag(false);
        p.set_more_frags(true);
        assert!(p.is_fragment() && p.is_first_fragment());
        p.set_frag_offset(1480);
        assert_eq!(p.frag_offset_units(), 185);
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.is_fragment() && !p.is_first_fragment());
        p.set_more_frags(false);
        assert!(p.is_fragment() && !p.is_first_fragment());
        p.set_frag_offset_units(0x1fff);
        assert_eq!(p.frag_offset(), 65528);
        assert!(!p.dont_frag() && !p.more_frags() && !p.reserved_flag());
        p.fill_checksum();
        let r = Ipv4Repr::parse(&p).unwrap();
        assert!(r.is_fragment() && !r.is_first_fragment() && r.frag_offset == 65528);
        let first = Ipv4Repr {
            more_frags: true,
            frag_offset: 0,
            ..r
        };
        assert!(first.is_fragment() && first.is_first_fragment());
        assert!(r.to_string().contains("frag id=60176 off=65528"));
    }

    #[test]
    fn truncated_at_every_length() {
        for len in 0..echo_ip().len() {
            let e = Ipv4Packet::new_checked(&echo_ip()[..len]).err();
            assert_eq!(e, Some(Error::Truncated), "len {len}");
            assert!(Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&echo_ip()[..len])).is_err());
        }
    }

    #[test]
    fn bad_ihl() {
        for ihl in 0..5u8 {
            let mut buf = echo_ip().to_vec();
            buf[0] = 0x40 | ihl;
            assert_eq!(
                Ipv4Packet::new_checked(&buf[..]).err(),
                Some(Error::BadLength),
                "ihl {ihl}"
            );
        }
        // IHL 15 claims 60 header bytes: fits in 84, but total 40 < 60.
        let mut buf = echo_ip().to_vec();
        buf[0] = 0x4f;
        buf[2..4].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).err(),
            Some(Error::BadLength)
        );
        // IHL 15 on a 40-byte buffer: the header does not fit.
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..40]).err(),
            Some(Error::Truncated)
        );
    }

    #[test]
    fn total_len_checks() {
        let mut buf = echo_ip().to_vec();
        buf[2..4].copy_from_slice(&85u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).err(),
            Some(Error::Truncated)
        );
        buf[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).err(),
            Some(Error::BadLength)
        );
        buf[2..4].copy_from_slice(&20u16.to_be_bytes());
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.payload().is_empty());
    }

    #[test]
    fn bad_checksum_and_version() {
        let mut buf = echo_ip().to_vec();
        buf[11] ^= 1;
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(!p.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&p), Err(Error::BadChecksum));
        assert_eq!(
            Ipv4Repr::parse_with(&p, ChecksumMode::Ignore),
            Ok(echo_repr())
        );

        for v in [0u8, 6, 15] {
            let mut buf = echo_ip().to_vec();
            let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
            p.set_version(v);
            p.fill_checksum();
            assert_eq!(Ipv4Repr::parse(&p), Err(Error::BadVersion), "version {v}");
        }
    }

    fn arb_repr() -> impl Strategy<Value = Ipv4Repr> {
        let opts = (0usize..=10, any::<bool>()).prop_map(|(words, nop)| {
            // Either all NOPs or a single well-formed option of that length.
            let mut raw = [1u8; MAX_OPTIONS_LEN];
            let n = words * 4;
            if !nop && n >= 4 {
                raw[0] = 0x88; // stream id-like opaque option
                raw[1] = n as u8;
            }
            Ipv4Options::new(&raw[..n]).unwrap()
        });
        (
            (
                any::<[u8; 4]>(),
                any::<[u8; 4]>(),
                any::<u8>(),
                0usize..1400,
                any::<u8>(),
            ),
            (
                0u8..64,
                0u8..4,
                any::<u16>(),
                any::<bool>(),
                any::<bool>(),
                0u16..8192,
            ),
            opts,
        )
            .prop_map(
                |((s, d, proto, payload_len, ttl), (dscp, ecn, ident, df, mf, off), options)| {
                    Ipv4Repr {
                        src_addr: Ipv4Addr::from(s),
                        dst_addr: Ipv4Addr::from(d),
                        protocol: IpProtocol::from(proto),
                        payload_len,
                        ttl,
                        dscp,
                        ecn,
                        ident,
                        dont_frag: df,
                        more_frags: mf,
                        frag_offset: off << 3,
                        options,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn emit_then_parse_is_identity(repr in arb_repr(), pad in 0usize..20) {
            let mut buf = vec![0u8; repr.buffer_len() + pad];
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
            let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(Ipv4Repr::parse(&p), Ok(repr));
            prop_assert_eq!(p.payload().len(), repr.payload_len);
        }

        #[test]
        fn decrement_ttl_keeps_checksum_valid(repr in arb_repr()) {
            prop_assume!(repr.ttl > 0);
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
            let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
            prop_assert_eq!(p.decrement_ttl_incremental(), Ok(repr.ttl - 1));
            prop_assert!(p.verify_checksum());
        }

        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&bytes[..]));
            let mut bytes = bytes;
            if let Ok(mut p) = Ipv4Packet::new_checked(&mut bytes[..]) {
                let _ = Ipv4Repr::parse_with(&p, ChecksumMode::Ignore);
                let _ = (p.payload().len(), p.options().len(), p.verify_checksum(), p.to_string());
                let _ = p.decrement_ttl_incremental();
                let _ = p.payload_mut();
            }
        }

        #[test]
        fn never_panics_on_prefixes(len in 0usize..84) {
            let b = &echo_ip()[..len];
            prop_assert!(Ipv4Packet::new_checked(b).is_err());
            prop_assert!(Ipv4Repr::parse(&Ipv4Packet::new_unchecked(b)).is_err());
        }
    }
}
