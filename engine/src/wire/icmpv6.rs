//! ICMPv6 (RFC 4443) and the neighbor solicitation/advertisement messages of
//! Neighbor Discovery (RFC 4861).
//!
//! The repr knows echo, the four error messages and NS/NA; router
//! solicitation/advertisement, redirect and MLD are `Unrecognized` at repr
//! level (the view still reads type, code and checksum). Link-layer address
//! options are Ethernet's (6 bytes, option length 1).

use core::fmt;
use core::net::Ipv6Addr;

use super::checksum;
use super::pseudo::{be16, be32};
use super::{Error, IpProtocol, Result};

mod field {
    use crate::wire::{Field, Rest};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    /// Packet too big: MTU. Parameter problem: pointer.
    pub const MTU: Field = 4..8;
    pub const POINTER: Field = 4..8;
    /// The word after the checksum: NA flags in its first byte.
    pub const RESERVED: Field = 4..8;
    pub const NDISC_FLAGS: usize = 4;
    pub const HEADER_END: usize = 8;
    pub const TARGET_ADDR: Field = 8..24;
    pub const NDISC_OPTIONS: Rest = 24..;
}

/// Length of the common ICMPv6 header.
pub const HEADER_LEN: usize = field::HEADER_END;
/// Length of an NS/NA message without options.
pub const NDISC_HEADER_LEN: usize = field::TARGET_ADDR.end;
/// IPv6 minimum link MTU; an ICMPv6 error must fit it (RFC 4443 §2.4(c)).
pub const MIN_MTU: usize = 1280;
/// Embedded-packet bytes that fit an error behind a 40-byte IPv6 header.
pub const MAX_ERROR_DATA_LEN: usize = MIN_MTU - 40 - HEADER_LEN;
const IPV6_HEADER_LEN: usize = 40;

const NDISC_OPT_SOURCE_LLADDR: u8 = 1;
const NDISC_OPT_TARGET_LLADDR: u8 = 2;

/// ICMPv6 message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv6Message {
    DstUnreachable,
    PktTooBig,
    TimeExceeded,
    ParamProblem,
    EchoRequest,
    EchoReply,
    MldQuery,
    MldReport,
    MldDone,
    RouterSolicit,
    RouterAdvert,
    NeighborSolicit,
    NeighborAdvert,
    Redirect,
    MldReportV2,
    Unknown(u8),
}

impl From<u8> for Icmpv6Message {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::DstUnreachable,
            2 => Self::PktTooBig,
            3 => Self::TimeExceeded,
            4 => Self::ParamProblem,
            128 => Self::EchoRequest,
            129 => Self::EchoReply,
            130 => Self::MldQuery,
            131 => Self::MldReport,
            132 => Self::MldDone,
            133 => Self::RouterSolicit,
            134 => Self::RouterAdvert,
            135 => Self::NeighborSolicit,
            136 => Self::NeighborAdvert,
            137 => Self::Redirect,
            143 => Self::MldReportV2,
            other => Self::Unknown(other),
        }
    }
}

impl From<Icmpv6Message> for u8 {
    fn from(m: Icmpv6Message) -> u8 {
        match m {
            Icmpv6Message::DstUnreachable => 1,
            Icmpv6Message::PktTooBig => 2,
            Icmpv6Message::TimeExceeded => 3,
            Icmpv6Message::ParamProblem => 4,
            Icmpv6Message::EchoRequest => 128,
            Icmpv6Message::EchoReply => 129,
            Icmpv6Message::MldQuery => 130,
            Icmpv6Message::MldReport => 131,
            Icmpv6Message::MldDone => 132,
            Icmpv6Message::RouterSolicit => 133,
            Icmpv6Message::RouterAdvert => 134,
            Icmpv6Message::NeighborSolicit => 135,
            Icmpv6Message::NeighborAdvert => 136,
            Icmpv6Message::Redirect => 137,
            Icmpv6Message::MldReportV2 => 143,
            Icmpv6Message::Unknown(v) => v,
        }
    }
}

impl Icmpv6Message {
    /// Error messages have the high bit of the type clear (RFC 4443 §2.1).
    pub fn is_error(self) -> bool {
        u8::from(self) & 0x80 == 0
    }

    /// Messages whose fixed part is 24 bytes (target address after the header).
    fn has_target(self) -> bool {
        matches!(
            self,
            Self::NeighborSolicit | Self::NeighborAdvert | Self::Redirect
        )
    }
}

impl fmt::Display for Icmpv6Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DstUnreachable => f.write_str("destination unreachable"),
            Self::PktTooBig => f.write_str("packet too big"),
            Self::TimeExceeded => f.write_str("time exceeded"),
            Self::ParamProblem => f.write_str("parameter problem"),
            Self::EchoRequest => f.write_str("echo request"),
            Self::EchoReply => f.write_str("echo reply"),
            Self::MldQuery => f.write_str("MLD query"),
            Self::MldReport => f.write_str("MLD report"),
            Self::MldDone => f.write_str("MLD done"),
            Self::RouterSolicit => f.write_str("router solicitation"),
            Self::RouterAdvert => f.write_str("router advertisement"),
            Self::NeighborSolicit => f.write_str("neighbor solicitation"),
            Self::NeighborAdvert => f.write_str("neighbor advertisement"),
            Self::Redirect => f.write_str("redirect"),
            Self::MldReportV2 => f.write_str("MLDv2 report"),
            Self::Unknown(v) => write!(f, "type {v}"),
        }
    }
}

/// Destination-unreachable codes (RFC 4443 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Icmpv6DstUnreachable {
    NoRoute = 0,
    AdminProhibit = 1,
    BeyondScope = 2,
    AddrUnreachable = 3,
    PortUnreachable = 4,
    FailedPolicy = 5,
    RejectRoute = 6,
}

impl Icmpv6DstUnreachable {
    pub const ALL: [Self; 7] = [
        Self::NoRoute,
        Self::AdminProhibit,
        Self::BeyondScope,
        Self::AddrUnreachable,
        Self::PortUnreachable,
        Self::FailedPolicy,
        Self::RejectRoute,
    ];

    /// The code for `v`; `Unrecognized` above 6.
    pub fn from_code(v: u8) -> Result<Self> {
        Self::ALL
            .get(usize::from(v))
            .copied()
            .ok_or(Error::Unrecognized)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoRoute => "no route",
            Self::AdminProhibit => "administratively prohibited",
            Self::BeyondScope => "beyond scope of source address",
            Self::AddrUnreachable => "address unreachable",
            Self::PortUnreachable => "port unreachable",
            Self::FailedPolicy => "source address failed policy",
            Self::RejectRoute => "reject route",
        }
    }
}

/// Time-exceeded codes (RFC 4443 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Icmpv6TimeExceeded {
    HopLimitExceeded = 0,
    FragReassemblyExceeded = 1,
}

impl Icmpv6TimeExceeded {
    pub fn from_code(v: u8) -> Result<Self> {
        match v {
            0 => Ok(Self::HopLimitExceeded),
            1 => Ok(Self::FragReassemblyExceeded),
            _ => Err(Error::Unrecognized),
        }
    }
}

/// Parameter-problem codes (RFC 4443 §3.4, RFC 7112).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Icmpv6ParamProblem {
    ErroneousHeaderField = 0,
    UnrecognizedNextHeader = 1,
    UnrecognizedOption = 2,
    IncompleteHeaderChain = 3,
}

impl Icmpv6ParamProblem {
    pub const ALL: [Self; 4] = [
        Self::ErroneousHeaderField,
        Self::UnrecognizedNextHeader,
        Self::UnrecognizedOption,
        Self::IncompleteHeaderChain,
    ];

    pub fn from_code(v: u8) -> Result<Self> {
        Self::ALL
            .get(usize::from(v))
            .copied()
            .ok_or(Error::Unrecognized)
    }
}

/// Neighbor advertisement flags (RFC 4861 §4.4), as in the first byte after
/// the checksum.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NeighborFlags(u8);

impl NeighborFlags {
    pub const ROUTER: NeighborFlags = NeighborFlags(0x80);
    pub const SOLICITED: NeighborFlags = NeighborFlags(0x40);
    pub const OVERRIDE: NeighborFlags = NeighborFlags(0x20);
    const MASK: u8 = 0xe0;

    pub const fn empty() -> Self {
        NeighborFlags(0)
    }
    /// From the raw byte; reserved bits are dropped.
    pub const fn from_bits(v: u8) -> Self {
        NeighborFlags(v & Self::MASK)
    }
    pub const fn bits(self) -> u8 {
        self.0
    }
    pub const fn contains(self, other: NeighborFlags) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn router(self) -> bool {
        self.contains(Self::ROUTER)
    }
    pub const fn solicited(self) -> bool {
        self.contains(Self::SOLICITED)
    }
    pub const fn override_(self) -> bool {
        self.contains(Self::OVERRIDE)
    }
}

impl core::ops::BitOr for NeighborFlags {
    type Output = NeighborFlags;
    fn bitor(self, rhs: NeighborFlags) -> NeighborFlags {
        NeighborFlags(self.0 | rhs.0)
    }
}

impl fmt::Display for NeighborFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = if self.router() { "R" } else { "-" };
        let s = if self.solicited() { "S" } else { "-" };
        let o = if self.override_() { "O" } else { "-" };
        write!(f, "{r}{s}{o}")
    }
}

impl fmt::Debug for NeighborFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NeighborFlags({self})")
    }
}

/// One Neighbor Discovery option (RFC 4861 §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdiscOption<'a> {
    /// Source link-layer address; the bytes after type and length.
    SourceLinkLayerAddr(&'a [u8]),
    /// Target link-layer address; the bytes after type and length.
    TargetLinkLayerAddr(&'a [u8]),
    /// Any other type (nonce, MTU, prefix information...), kept whole.
    Unknown { kind: u8, data: &'a [u8] },
}

impl<'a> NdiscOption<'a> {
    /// Parses one option from the front of `buf`; returns it and the rest.
    /// `BadOption` for a length of 0 or beyond `buf` (RFC 4861 §4.6: such a
    /// packet must be discarded).
    pub fn parse(buf: &'a [u8]) -> Result<(&'a [u8], NdiscOption<'a>)> {
        let [kind, len, ..] = *buf else {
            return Err(Error::BadOption);
        };
        let n = usize::from(len) * 8;
        if n == 0 || n > buf.len() {
            return Err(Error::BadOption);
        }
        let data = &buf[2..n];
        let opt = match kind {
            NDISC_OPT_SOURCE_LLADDR => NdiscOption::SourceLinkLayerAddr(data),
            NDISC_OPT_TARGET_LLADDR => NdiscOption::TargetLinkLayerAddr(data),
            kind => NdiscOption::Unknown { kind, data },
        };
        Ok((&buf[n..], opt))
    }
}

/// Iterates over an NDP option area; yields an error once and stops.
#[derive(Debug, Clone)]
pub struct NdiscOptions<'a> {
    rest: &'a [u8],
}

impl<'a> NdiscOptions<'a> {
    pub const fn new(options: &'a [u8]) -> Self {
        NdiscOptions { rest: options }
    }
}

impl<'a> Iterator for NdiscOptions<'a> {
    type Item = Result<NdiscOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match NdiscOption::parse(self.rest) {
            Ok((rest, opt)) => {
                self.rest = rest;
                Some(Ok(opt))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// A zero-copy view of an ICMPv6 message; the buffer is the whole message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wraps a buffer without checks; accessors may panic if it is short.
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Truncated` below 8 bytes, or below 24 for NS, NA and redirect (so
    /// [`target_addr`](Self::target_addr) is safe on those).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || (self.msg_type().has_target() && len < NDISC_HEADER_LEN) {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn msg_type(&self) -> Icmpv6Message {
        self.buffer.as_ref()[field::TYPE].into()
    }
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_SEQNO.start)
    }
    /// Packet too big: the MTU of the next hop.
    #[inline]
    pub fn pkt_too_big_mtu(&self) -> u32 {
        be32(self.buffer.as_ref(), field::MTU.start)
    }
    /// Parameter problem: offset of the offending byte.
    #[inline]
    pub fn param_problem_ptr(&self) -> u32 {
        be32(self.buffer.as_ref(), field::POINTER.start)
    }
    /// NA flags (R, S, O).
    #[inline]
    pub fn neighbor_flags(&self) -> NeighborFlags {
        NeighborFlags::from_bits(self.buffer.as_ref()[field::NDISC_FLAGS])
    }
    /// NS/NA/redirect target; `new_checked` guarantees the bytes for those types.
    #[inline]
    pub fn target_addr(&self) -> Ipv6Addr {
        let d = &self.buffer.as_ref()[field::TARGET_ADDR];
        let mut a = [0u8; 16];
        a.copy_from_slice(d);
        Ipv6Addr::from(a)
    }
    /// Everything after the 8-byte header (echo data, embedded packet).
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_END..]
    }
    /// NDP option bytes after the target address (empty if there are none
    /// or the message is shorter).
    #[inline]
    pub fn ndisc_options(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(field::NDISC_OPTIONS)
            .unwrap_or(&[])
    }
    #[inline]
    pub fn ndisc_option_iter(&self) -> NdiscOptions<'_> {
        NdiscOptions::new(self.ndisc_options())
    }

    fn sum_with(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
        let d = self.buffer.as_ref();
        checksum::add(
            checksum::pseudo_header_v6(
                &src.octets(),
                &dst.octets(),
                IpProtocol::Icmpv6.into(),
                d.len() as u32,
            ),
            checksum::data(d),
        )
    }

    /// True if the checksum (IPv6 pseudo-header plus message) verifies.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.sum_with(src, dst) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    #[inline]
    pub fn set_msg_type(&mut self, v: Icmpv6Message) {
        self.buffer.as_mut()[field::TYPE] = v.into();
    }
    #[inline]
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }
    #[inline]
    pub fn set_echo_ident(&mut self, v: u16) {
        self.buffer.as_mut()[field::ECHO_IDENT].copy_from_slice(&v.to_be_bytes());
    }
    #[inline]
    pub fn set_echo_seq_no(&mut self, v: u16) {
        self.buffer.as_mut()[field::ECHO_SEQNO].copy_from_slice(&v.to_be_bytes());
    }
    #[inline]
    pub fn set_pkt_too_big_mtu(&mut self, v: u32) {
        self.buffer.as_mut()[field::MTU].copy_from_slice(&v.to_be_bytes());
    }
    #[inline]
    pub fn set_param_problem_ptr(&mut self, v: u32) {
        self.buffer.as_mut()[field::POINTER].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the NA flags and clears the reserved bits after them.
    #[inline]
    pub fn set_neighbor_flags(&mut self, v: NeighborFlags) {
        let d = self.buffer.as_mut();
        d[field::RESERVED].fill(0);
        d[field::NDISC_FLAGS] = v.bits();
    }
    #[inline]
    pub fn clear_reserved(&mut self) {
        self.buffer.as_mut()[field::RESERVED].fill(0);
    }
    #[inline]
    pub fn set_target_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET_ADDR].copy_from_slice(&a.octets());
    }
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::HEADER_END..]
    }
    #[inline]
    pub fn ndisc_options_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::NDISC_OPTIONS]
    }

    /// Computes and stores the checksum.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let sum = self.sum_with(src, dst);
        self.set_checksum(!sum);
    }

    /// Rewrites the echo identifier, patching the checksum (NAT66/NPTv6-style
    /// query translation).
    pub fn set_echo_ident_incremental(&mut self, v: u16) {
        let old = self.echo_ident();
        self.set_echo_ident(v);
        self.set_checksum(checksum::update16(self.checksum(), old, v));
    }

    /// Patches the checksum for a pseudo-header address changed from `old`
    /// to `new`.
    pub fn update_checksum_for_addr(&mut self, old: Ipv6Addr, new: Ipv6Addr) {
        let c = checksum::update_bytes(self.checksum(), &old.octets(), &new.octets());
        self.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Icmpv6Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.check_len().is_err() {
            return write!(
                f,
                "ICMPv6 (truncated, {} bytes)",
                self.buffer.as_ref().len()
            );
        }
        write!(
            f,
            "ICMPv6 {} code={} cksum={:#06x} len={}",
            self.msg_type(),
            self.msg_code(),
            self.checksum(),
            self.buffer.as_ref().len()
        )?;
        if self.msg_type().has_target() {
            write!(f, " target={}", self.target_addr())?;
        }
        Ok(())
    }
}

/// Checks that an error's data starts with an IPv6 header.
fn check_embedded(data: &[u8]) -> Result<()> {
    let Some(&first) = data.first() else {
        return Err(Error::Truncated);
    };
    if first >> 4 != 6 {
        return Err(Error::Malformed);
    }
    if data.len() < IPV6_HEADER_LEN {
        return Err(Error::Truncated);
    }
    Ok(())
}

/// The Ethernet address carried by a link-layer address option.
fn ethernet_lladdr(data: &[u8]) -> Result<[u8; 6]> {
    <[u8; 6]>::try_from(data).map_err(|_| Error::BadOption)
}

/// A validated ICMPv6 message, borrowing echo data or the embedded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Repr<'a> {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    DstUnreachable {
        reason: Icmpv6DstUnreachable,
        data: &'a [u8],
    },
    PktTooBig {
        mtu: u32,
        data: &'a [u8],
    },
    TimeExceeded {
        reason: Icmpv6TimeExceeded,
        data: &'a [u8],
    },
    ParamProblem {
        reason: Icmpv6ParamProblem,
        pointer: u32,
        data: &'a [u8],
    },
    /// `lladdr`: the source link-layer address option, if present.
    NeighborSolicit {
        target_addr: Ipv6Addr,
        lladdr: Option<[u8; 6]>,
    },
    /// `lladdr`: the target link-layer address option, if present.
    NeighborAdvert {
        flags: NeighborFlags,
        target_addr: Ipv6Addr,
        lladdr: Option<[u8; 6]>,
    },
}

impl<'a> Icmpv6Repr<'a> {
    /// Validates a message sent from `src` to `dst`: checksum; a known type
    /// and code (`Unrecognized` otherwise); an embedded IPv6 header for
    /// errors; for NS/NA the checks of RFC 4861 §7.1 that do not need the IP
    /// header (code 0, target not multicast, options well formed, no source
    /// link-layer option in an NS from `::`, no S flag in an NA to multicast).
    /// The hop limit of 255 is the IP layer's to check.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &'a Icmpv6Packet<T>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Result<Self> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        let code = packet.msg_code();
        let data = packet.data();
        let repr = match (packet.msg_type(), code) {
            (Icmpv6Message::EchoRequest, 0) => Icmpv6Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            (Icmpv6Message::EchoReply, 0) => Icmpv6Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            (Icmpv6Message::DstUnreachable, _) => {
                let reason = Icmpv6DstUnreachable::from_code(code)?;
                check_embedded(data)?;
                Icmpv6Repr::DstUnreachable { reason, data }
            }
            (Icmpv6Message::PktTooBig, 0) => {
                check_embedded(data)?;
                Icmpv6Repr::PktTooBig {
                    mtu: packet.pkt_too_big_mtu(),
                    data,
                }
            }
            (Icmpv6Message::TimeExceeded, _) => {
                let reason = Icmpv6TimeExceeded::from_code(code)?;
                check_embedded(data)?;
                Icmpv6Repr::TimeExceeded { reason, data }
            }
            (Icmpv6Message::ParamProblem, _) => {
                let reason = Icmpv6ParamProblem::from_code(code)?;
                check_embedded(data)?;
                Icmpv6Repr::ParamProblem {
                    reason,
                    pointer: packet.param_problem_ptr(),
                    data,
                }
            }
            (Icmpv6Message::NeighborSolicit | Icmpv6Message::NeighborAdvert, c) => {
                if c != 0 {
                    return Err(Error::Malformed);
                }
                return Self::parse_ndisc(packet, src, dst);
            }
            _ => return Err(Error::Unrecognized),
        };
        Ok(repr)
    }

    fn parse_ndisc<T: AsRef<[u8]>>(
        packet: &Icmpv6Packet<T>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Result<Self> {
        let target_addr = packet.target_addr();
        if target_addr.is_multicast() {
            return Err(Error::Malformed);
        }
        let solicit = packet.msg_type() == Icmpv6Message::NeighborSolicit;
        let mut lladdr = None;
        for opt in packet.ndisc_option_iter() {
            match opt? {
                NdiscOption::SourceLinkLayerAddr(d) if solicit => {
                    lladdr = Some(ethernet_lladdr(d)?)
                }
                NdiscOption::TargetLinkLayerAddr(d) if !solicit => {
                    lladdr = Some(ethernet_lladdr(d)?)
                }
                _ => {}
            }
        }
        if solicit {
            if src.is_unspecified() && lladdr.is_some() {
                return Err(Error::Malformed);
            }
            Ok(Icmpv6Repr::NeighborSolicit {
                target_addr,
                lladdr,
            })
        } else {
            let flags = packet.neighbor_flags();
            if dst.is_multicast() && flags.solicited() {
                return Err(Error::Malformed);
            }
            Ok(Icmpv6Repr::NeighborAdvert {
                flags,
                target_addr,
                lladdr,
            })
        }
    }

    /// True for error messages (which must not be answered with errors).
    pub const fn is_error(&self) -> bool {
        matches!(
            self,
            Self::DstUnreachable { .. }
                | Self::PktTooBig { .. }
                | Self::TimeExceeded { .. }
                | Self::ParamProblem { .. }
        )
    }

    /// The data `emit` writes after the 8-byte header: echo data whole, an
    /// embedded packet cut to [`MAX_ERROR_DATA_LEN`] so the error fits the
    /// IPv6 minimum MTU; nothing for NS/NA.
    pub fn emitted_data(&self) -> &'a [u8] {
        match *self {
            Self::EchoRequest { data, .. } | Self::EchoReply { data, .. } => data,
            Self::DstUnreachable { data, .. }
            | Self::PktTooBig { data, .. }
            | Self::TimeExceeded { data, .. }
            | Self::ParamProblem { data, .. } => &data[..data.len().min(MAX_ERROR_DATA_LEN)],
            Self::NeighborSolicit { .. } | Self::NeighborAdvert { .. } => &[],
        }
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            Self::NeighborSolicit { lladdr, .. } | Self::NeighborAdvert { lladdr, .. } => {
                NDISC_HEADER_LEN + if lladdr.is_some() { 8 } else { 0 }
            }
            _ => HEADER_LEN + self.emitted_data().len(),
        }
    }

    /// Writes the message and its checksum for `src` -> `dst`. The packet
    /// buffer must be exactly [`buffer_len`](Self::buffer_len) bytes
    /// (`Truncated` if smaller, `BadLength` if larger).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Icmpv6Packet<T>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Result<()> {
        let have = packet.buffer.as_ref().len();
        let need = self.buffer_len();
        if have != need {
            return Err(if have < need {
                Error::Truncated
            } else {
                Error::BadLength
            });
        }
        packet.clear_reserved();
        let (t, code) = match *self {
            Self::EchoRequest { ident, seq_no, .. } => {
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                (Icmpv6Message::EchoRequest, 0)
            }
            Self::EchoReply { ident, seq_no, .. } => {
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                (Icmpv6Message::EchoReply, 0)
            }
            Self::DstUnreachable { reason, .. } => (Icmpv6Message::DstUnreachable, reason as u8),
            Self::PktTooBig { mtu, .. } => {
                packet.set_pkt_too_big_mtu(mtu);
                (Icmpv6Message::PktTooBig, 0)
            }
            Self::TimeExceeded { reason, .. } => (Icmpv6Message::TimeExceeded, reason as u8),
            Self::ParamProblem {
                reason, pointer, ..
            } => {
                packet.set_param_problem_ptr(pointer);
                (Icmpv6Message::ParamProblem, reason as u8)
            }
            Self::NeighborSolicit {
                target_addr,
                lladdr,
            } => {
                packet.set_target_addr(target_addr);
                if let Some(mac) = lladdr {
                    Self::emit_lladdr(packet.ndisc_options_mut(), NDISC_OPT_SOURCE_LLADDR, mac);
                }
                (Icmpv6Message::NeighborSolicit, 0)
            }
            Self::NeighborAdvert {
                flags,
                target_addr,
                lladdr,
            } => {
                packet.set_neighbor_flags(flags);
                packet.set_target_addr(target_addr);
                if let Some(mac) = lladdr {
                    Self::emit_lladdr(packet.ndisc_options_mut(), NDISC_OPT_TARGET_LLADDR, mac);
                }
                (Icmpv6Message::NeighborAdvert, 0)
            }
        };
        packet.set_msg_type(t);
        packet.set_msg_code(code);
        if !matches!(
            self,
            Self::NeighborSolicit { .. } | Self::NeighborAdvert { .. }
        ) {
            packet.data_mut().copy_from_slice(self.emitted_data());
        }
        packet.fill_checksum(src, dst);
        Ok(())
    }

    /// `buf` is exactly the 8 bytes `buffer_len` reserved.
    fn emit_lladdr(buf: &mut [u8], kind: u8, mac: [u8; 6]) {
        buf[0] = kind;
        buf[1] = 1;
        buf[2..8].copy_from_slice(&mac);
    }
}

struct Mac([u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Display for Icmpv6Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                write!(
                    f,
                    "ICMPv6 echo request id={ident} seq={seq_no} len={}",
                    data.len()
                )
            }
            Self::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                write!(
                    f,
                    "ICMPv6 echo reply id={ident} seq={seq_no} len={}",
                    data.len()
                )
            }
            Self::DstUnreachable { reason, data } => {
                write!(
                    f,
                    "ICMPv6 unreachable ({}) len={}",
                    reason.as_str(),
                    data.len()
                )
            }
            Self::PktTooBig { mtu, data } => {
                write!(f, "ICMPv6 packet too big mtu={mtu} len={}", data.len())
            }
            Self::TimeExceeded { reason, data } => {
                let what = match reason {
                    Icmpv6TimeExceeded::HopLimitExceeded => "hop limit",
                    Icmpv6TimeExceeded::FragReassemblyExceeded => "reassembly",
                };
                write!(f, "ICMPv6 time exceeded ({what}) len={}", data.len())
            }
            Self::ParamProblem {
                reason,
                pointer,
                data,
            } => {
                write!(
                    f,
                    "ICMPv6 parameter problem code={} ptr={pointer} len={}",
                    *reason as u8,
                    data.len()
                )
            }
            Self::NeighborSolicit {
                target_addr,
                lladdr,
            } => {
                write!(f, "ICMPv6 neighbor solicitation target={target_addr}")?;
                if let Some(m) = lladdr {
                    write!(f, " sll={}", Mac(*m))?;
                }
                Ok(())
            }
            Self::NeighborAdvert {
                flags,
                target_addr,
                lladdr,
            } => {
                write!(
                    f,
                    "ICMPv6 neighbor advertisement target={target_addr} flags={flags}"
                )?;
                if let Some(m) = lladdr {
                    write!(f, " tll={}", Mac(*m))?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Captured on veth pairs (tx checksum offload off), IPv6 headers kept:
    // the kernel's DAD probe (NS from ::, with a nonce option), the NS/NA
    // exchange and echo of `ping -6 2001:2::2`, the port unreachable a UDP
    // send to a closed port drew; from a router namespace, an NA with the R
    // flag, `ping -6 -M do -s 1300` over a 1280-MTU link (packet too big, cut
    // to 1280 bytes by Linux) and `ping -6 -t 1` (time exceeded).
    #[rustfmt::skip]
    const NS_DAD: [u8; 72] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x01, 0xff, 0xc5, 0xdd, 0xea, 0x87, 0x00, 0xea, 0x88, 0x00, 0x00, 0x00, 0x00,
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x88, 0xde, 0xe2, 0xff, 0xfe, 0xc5, 0xdd, 0xea,
        0x0e, 0x01, 0xc1, 0x7f, 0x0b, 0x81, 0x8f, 0x55,
    ];

    #[rustfmt::skip]
    const NS: [u8; 72] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x00, 0x02, 0x87, 0x00, 0x98, 0x4e, 0x00, 0x00, 0x00, 0x00,
        0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
        0x01, 0x01, 0xfe, 0xb5, 0xa5, 0xa3, 0xfc, 0xeb,
    ];

    #[rustfmt::skip]
    const NA: [u8; 72] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0x00, 0x6a, 0x06, 0x60, 0x00, 0x00, 0x00,
        0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
        0x02, 0x01, 0x8a, 0xde, 0xe2, 0xc5, 0xdd, 0xea,
    ];

    #[rustfmt::skip]
    const ECHO_REQUEST: [u8; 104] = [
        0x60, 0x0f, 0x82, 0x01, 0x00, 0x40, 0x3a, 0x40, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x80, 0x00, 0xb6, 0x4f, 0x29, 0xc6, 0x00, 0x01,
        0x7e, 0x27, 0x05, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x17, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];

    #[rustfmt::skip]
    const ECHO_REPLY: [u8; 104] = [
        0x60, 0x0c, 0x21, 0x05, 0x00, 0x40, 0x3a, 0x40, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x81, 0x00, 0xb5, 0x4f, 0x29, 0xc6, 0x00, 0x01,
        0x7e, 0x27, 0x05, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x17, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];

    #[rustfmt::skip]
    const PORT_UNREACH: [u8; 105] = [
        0x60, 0x06, 0xe7, 0x6d, 0x00, 0x41, 0x3a, 0x40, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x04, 0x8b, 0x5c, 0x00, 0x00, 0x00, 0x00,
        0x60, 0x00, 0xc1, 0xeb, 0x00, 0x11, 0x11, 0x40, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc7, 0x52, 0x27, 0x0f, 0x00, 0x11, 0x0d, 0x39,
        0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x76, 0x36, 0x0a,
    ];

    #[rustfmt::skip]
    const NA_ROUTER: [u8; 72] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0x20, 0x01, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x20, 0x01, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0x00, 0xef, 0x6e, 0xe0, 0x00, 0x00, 0x00,
        0x20, 0x01, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfe,
        0x02, 0x01, 0x9a, 0xd8, 0xbe, 0x22, 0xeb, 0x2f,
    ];

    #[rustfmt::skip]
    const TIME_EXCEEDED: [u8; 152] = [
        0x60, 0x07, 0x52, 0x32, 0x00, 0x70, 0x3a, 0x40, 0x20, 0x01, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x20, 0x01, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x00, 0x70, 0x13, 0x00, 0x00, 0x00, 0x00,
        0x60, 0x05, 0xb1, 0x6e, 0x00, 0x40, 0x3a, 0x01, 0x20, 0x01, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x00, 0x02, 0x00, 0x02, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x80, 0x00, 0xc2, 0x5b, 0x2a, 0x78, 0x00, 0x01,
        0x8a, 0x27, 0x05, 0x6b, 0x00, 0x00, 0x00, 0x00, 0xf9, 0x3f, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];

    #[rustfmt::skip]
    const PKT_TOO_BIG: [u8; 1280] = [
        0x60, 0x02, 0xb6, 0xa3, 0x04, 0xd8, 0x3a, 0x40, 0x20, 0x01, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x20, 0x01, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0xb8, 0xf7, 0x00, 0x00, 0x05, 0x00,
        0x60, 0x05, 0xb1, 0x6e, 0x05, 0x1c, 0x3a, 0x40, 0x20, 0x01, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x00, 0x02, 0x00, 0x02, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x80, 0x00, 0xd5, 0x00, 0x2a, 0x77, 0x00, 0x01,
        0x8a, 0x27, 0x05, 0x6b, 0x00, 0x00, 0x00, 0x00, 0xbd, 0x2f, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
        0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
        0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
        0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
        0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f,
        0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
        0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
        0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
        0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
        0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
        0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
        0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,
        0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
        0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
        0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
        0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
        0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f,
        0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
        0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
        0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
        0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
        0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
        0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
        0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,
        0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
        0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
        0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
        0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
        0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f,
        0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
        0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
        0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
        0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
        0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
        0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
        0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,
        0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
        0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
        0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
        0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
        0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f,
        0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
        0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
        0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
        0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
        0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
        0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
        0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,
        0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
        0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
        0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
        0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
        0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f,
        0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
        0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
    ];

    /// Source and destination addresses of a captured IPv6 packet.
    fn addrs(p: &[u8]) -> (Ipv6Addr, Ipv6Addr) {
        let s: [u8; 16] = p[8..24].try_into().unwrap();
        let d: [u8; 16] = p[24..40].try_into().unwrap();
        (Ipv6Addr::from(s), Ipv6Addr::from(d))
    }

    /// Parses a captured packet (checksum with its own addresses) and checks
    /// that emitting the repr reproduces the kernel's bytes.
    fn parse_emit(p: &'static [u8]) -> Icmpv6Repr<'static> {
        let (s, d) = addrs(p);
        let view: &'static Icmpv6Packet<&[u8]> =
            Box::leak(Box::new(Icmpv6Packet::new_checked(&p[40..]).unwrap()));
        assert!(view.verify_checksum(s, d));
        let r = Icmpv6Repr::parse(view, s, d).unwrap();
        let mut buf = vec![0xa5u8; r.buffer_len()];
        r.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), s, d)
            .unwrap();
        assert_eq!(&buf[..], &p[40..], "{r}");
        r
    }

    const MAC_A: [u8; 6] = [0xfe, 0xb5, 0xa5, 0xa3, 0xfc, 0xeb];
    const MAC_B: [u8; 6] = [0x8a, 0xde, 0xe2, 0xc5, 0xdd, 0xea];
    const H1: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
    const H2: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);

    #[test]
    fn deconstruct_ns() {
        let p = Icmpv6Packet::new_checked(&NS[40..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv6Message::NeighborSolicit);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0x984e);
        assert_eq!(p.target_addr(), H2);
        let opts: Vec<_> = p.ndisc_option_iter().map(|o| o.unwrap()).collect();
        assert_eq!(opts, [NdiscOption::SourceLinkLayerAddr(&MAC_A)]);
        assert_eq!(
            p.to_string(),
            "ICMPv6 neighbor solicitation code=0 cksum=0x984e len=32 target=2001:2::2"
        );
    }

    #[test]
    fn ns_and_na_parse_emit() {
        let r = parse_emit(&NS);
        assert_eq!(
            r,
            Icmpv6Repr::NeighborSolicit {
                target_addr: H2,
                lladdr: Some(MAC_A)
            }
        );
        assert_eq!(
            r.to_string(),
            "ICMPv6 neighbor solicitation target=2001:2::2 sll=fe:b5:a5:a3:fc:eb"
        );
        let r = parse_emit(&NA);
        let flags = NeighborFlags::SOLICITED | NeighborFlags::OVERRIDE;
        assert_eq!(
            r,
            Icmpv6Repr::NeighborAdvert {
                flags,
                target_addr: H2,
                lladdr: Some(MAC_B)
            }
        );
        assert_eq!(
            r.to_string(),
            "ICMPv6 neighbor advertisement target=2001:2::2 flags=-SO tll=8a:de:e2:c5:dd:ea"
        );
        let Icmpv6Repr::NeighborAdvert { flags, .. } = parse_emit(&NA_ROUTER) else {
            panic!()
        };
        assert!(flags.router() && flags.solicited() && flags.override_());
    }

    #[test]
    fn dad_probe_with_nonce_option() {
        let (s, d) = addrs(&NS_DAD);
        assert!(s.is_unspecified());
        let p = Icmpv6Packet::new_checked(&NS_DAD[40..]).unwrap();
        let opts: Vec<_> = p.ndisc_option_iter().map(|o| o.unwrap()).collect();
        assert_eq!(
            opts,
            [NdiscOption::Unknown {
                kind: 14,
                data: &[0xc1, 0x7f, 0x0b, 0x81, 0x8f, 0x55]
            }]
        );
        let r = Icmpv6Repr::parse(&p, s, d).unwrap();
        let target = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x88de, 0xe2ff, 0xfec5, 0xddea);
        assert_eq!(
            r,
            Icmpv6Repr::NeighborSolicit {
                target_addr: target,
                lladdr: None
            }
        );
    }

    /// Copies a message, applies `f`, and fixes the checksum.
    fn mutate(p: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let (s, d) = addrs(p);
        let mut m = p[40..].to_vec();
        f(&mut m);
        if m.len() >= HEADER_LEN {
            Icmpv6Packet::new_unchecked(&mut m[..]).fill_checksum(s, d);
        }
        m
    }

    fn parse_mutated(p: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        let (s, d) = addrs(p);
        let m = mutate(p, f);
        let view = Icmpv6Packet::new_checked(&m[..])?;
        Icmpv6Repr::parse(&view, s, d).map(|_| ())
    }

    #[test]
    fn ndisc_option_errors() {
        assert_eq!(
            parse_mutated(&NS, |m| m[25] = 0),
            Err(Error::BadOption),
            "length 0"
        );
        assert_eq!(
            parse_mutated(&NS, |m| m[25] = 2),
            Err(Error::BadOption),
            "beyond end"
        );
        assert_eq!(
            parse_mutated(&NS, |m| m.push(1)),
            Err(Error::BadOption),
            "stray byte"
        );
        // An Ethernet link-layer option must be 8 bytes; 16 is refused.
        let r = parse_mutated(&NS, |m| {
            m[25] = 2;
            m.extend_from_slice(&[0; 8]);
        });
        assert_eq!(r, Err(Error::BadOption));
        // An unknown option of length 0 is refused as well.
        assert_eq!(
            parse_mutated(&NA, |m| m.extend_from_slice(&[14, 0, 0, 0, 0, 0, 0, 0])),
            Err(Error::BadOption)
        );
        assert_eq!(NdiscOption::parse(&[1]), Err(Error::BadOption));
        let mut it = NdiscOptions::new(&[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(it.next(), Some(Err(Error::BadOption)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn ndisc_validation() {
        assert_eq!(
            parse_mutated(&NS, |m| m[1] = 1),
            Err(Error::Malformed),
            "code"
        );
        assert_eq!(
            parse_mutated(&NA, |m| m[8] = 0xff),
            Err(Error::Malformed),
            "multicast target"
        );
        for n in HEADER_LEN..NDISC_HEADER_LEN {
            assert_eq!(
                parse_mutated(&NS, |m| m.truncate(n)),
                Err(Error::Truncated),
                "len {n}"
            );
        }
        // NS from :: must not carry a source link-layer address.
        let m = mutate(&NS, |_| {});
        let p = Icmpv6Packet::new_checked(&m[..]).unwrap();
        let dst = addrs(&NS).1;
        let mut mm = m.clone();
        Icmpv6Packet::new_unchecked(&mut mm[..]).fill_checksum(Ipv6Addr::UNSPECIFIED, dst);
        let p2 = Icmpv6Packet::new_checked(&mm[..]).unwrap();
        assert!(Icmpv6Repr::parse(&p, addrs(&NS).0, dst).is_ok());
        assert_eq!(
            Icmpv6Repr::parse(&p2, Ipv6Addr::UNSPECIFIED, dst),
            Err(Error::Malformed)
        );
        // A solicited NA must not go to a multicast address.
        let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        let mut m = NA[40..].to_vec();
        Icmpv6Packet::new_unchecked(&mut m[..]).fill_checksum(H2, all_nodes);
        let p = Icmpv6Packet::new_checked(&m[..]).unwrap();
        assert_eq!(Icmpv6Repr::parse(&p, H2, all_nodes), Err(Error::Malformed));
    }

    #[test]
    fn echo() {
        let p = Icmpv6Packet::new_checked(&ECHO_REQUEST[40..]).unwrap();
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (10694, 1));
        let r = parse_emit(&ECHO_REQUEST);
        assert_eq!(
            r,
            Icmpv6Repr::EchoRequest {
                ident: 10694,
                seq_no: 1,
                data: &ECHO_REQUEST[48..]
            }
        );
        assert_eq!(r.to_string(), "ICMPv6 echo request id=10694 seq=1 len=56");
        let r = parse_emit(&ECHO_REPLY);
        assert!(matches!(
            r,
            Icmpv6Repr::EchoReply {
                ident: 10694,
                seq_no: 1,
                ..
            }
        ));
        // Construct by setters.
        let mut buf = [0u8; 64];
        let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Icmpv6Message::EchoRequest);
        p.set_msg_code(0);
        p.set_echo_ident(10694);
        p.set_echo_seq_no(1);
        p.data_mut().copy_from_slice(&ECHO_REQUEST[48..]);
        p.fill_checksum(H1, H2);
        assert_eq!(&buf[..], &ECHO_REQUEST[40..]);
    }

    #[test]
    fn errors_with_embedded_packet() {
        let r = parse_emit(&PORT_UNREACH);
        let Icmpv6Repr::DstUnreachable { reason, data } = r else {
            panic!("{r:?}")
        };
        assert_eq!(reason, Icmpv6DstUnreachable::PortUnreachable);
        assert_eq!(data.len(), 57);
        assert_eq!(data[6], 17, "embedded next header is UDP");
        assert!(r.is_error());

        let r = parse_emit(&TIME_EXCEEDED);
        let Icmpv6Repr::TimeExceeded { reason, data } = r else {
            panic!("{r:?}")
        };
        assert_eq!(reason, Icmpv6TimeExceeded::HopLimitExceeded);
        assert_eq!(data[7], 1, "embedded hop limit was 1");

        let r = parse_emit(&PKT_TOO_BIG);
        assert_eq!(PKT_TOO_BIG.len(), MIN_MTU);
        let Icmpv6Repr::PktTooBig { mtu, data } = r else {
            panic!("{r:?}")
        };
        assert_eq!(mtu, 1280);
        assert_eq!(data.len(), MAX_ERROR_DATA_LEN);
        assert_eq!(r.to_string(), "ICMPv6 packet too big mtu=1280 len=1232");
    }

    #[test]
    fn error_truncated_to_minimum_mtu() {
        // Given the whole 1348-byte original, emit cuts it as Linux did.
        let (s, d) = addrs(&PKT_TOO_BIG);
        let mut original = PKT_TOO_BIG[48..].to_vec();
        original.resize(1348, 0x77);
        let r = Icmpv6Repr::PktTooBig {
            mtu: 1280,
            data: &original,
        };
        assert_eq!(40 + r.buffer_len(), MIN_MTU);
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), s, d)
            .unwrap();
        assert_eq!(&buf[..], &PKT_TOO_BIG[40..]);
    }

    #[test]
    fn codes_and_unrecognized() {
        for (i, reason) in Icmpv6DstUnreachable::ALL.into_iter().enumerate() {
            assert_eq!(Icmpv6DstUnreachable::from_code(i as u8), Ok(reason));
            let r = parse_mutated(&PORT_UNREACH, |m| m[1] = i as u8);
            assert_eq!(r, Ok(()));
        }
        assert_eq!(
            parse_mutated(&PORT_UNREACH, |m| m[1] = 7),
            Err(Error::Unrecognized)
        );
        assert_eq!(parse_mutated(&TIME_EXCEEDED, |m| m[1] = 1), Ok(()));
        assert_eq!(
            parse_mutated(&TIME_EXCEEDED, |m| m[1] = 2),
            Err(Error::Unrecognized)
        );
        assert_eq!(
            parse_mutated(&ECHO_REQUEST, |m| m[1] = 1),
            Err(Error::Unrecognized)
        );
        // Router solicitation, MLD, unknown types.
        for t in [133u8, 134, 143, 200, 5] {
            assert_eq!(
                parse_mutated(&ECHO_REQUEST, |m| m[0] = t),
                Err(Error::Unrecognized),
                "type {t}"
            );
        }
        // Parameter problem round-trips with its pointer.
        let r = parse_mutated(&PORT_UNREACH, |m| {
            m[0] = 4;
            m[1] = 1;
            m[4..8].copy_from_slice(&6u32.to_be_bytes());
        });
        assert_eq!(r, Ok(()));
        for t in 0..=255u8 {
            assert_eq!(u8::from(Icmpv6Message::from(t)), t);
            assert_eq!(Icmpv6Message::from(t).is_error(), t < 128);
        }
    }

    #[test]
    fn embedded_checks_truncation_and_checksum() {
        assert_eq!(
            parse_mutated(&PORT_UNREACH, |m| m.truncate(8 + 39)),
            Err(Error::Truncated)
        );
        assert_eq!(
            parse_mutated(&PORT_UNREACH, |m| m.truncate(8)),
            Err(Error::Truncated)
        );
        assert_eq!(
            parse_mutated(&PORT_UNREACH, |m| m[8] = 0x45),
            Err(Error::Malformed)
        );
        let m = &ECHO_REQUEST[40..];
        for n in 0..HEADER_LEN {
            assert_eq!(
                Icmpv6Packet::new_checked(&m[..n]).unwrap_err(),
                Error::Truncated
            );
        }
        for n in HEADER_LEN..m.len() {
            let p = Icmpv6Packet::new_checked(&m[..n]).unwrap();
            assert_eq!(
                Icmpv6Repr::parse(&p, H1, H2),
                Err(Error::BadChecksum),
                "len {n}"
            );
        }
        // Right bytes, wrong pseudo-header (a swap would sum the same).
        let p = Icmpv6Packet::new_checked(m).unwrap();
        let other = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 3);
        assert_eq!(Icmpv6Repr::parse(&p, H1, other), Err(Error::BadChecksum));
    }

    #[test]
    fn incremental_rewrites() {
        let mut m = ECHO_REQUEST[40..].to_vec();
        let mut p = Icmpv6Packet::new_checked(&mut m[..]).unwrap();
        let nat = Ipv6Addr::new(0x2001, 2, 0xbeef, 0, 0, 0, 0, 1);
        p.set_echo_ident_incremental(7);
        p.update_checksum_for_addr(H1, nat);
        assert!(p.verify_checksum(nat, H2));
    }

    fn addr() -> impl Strategy<Value = Ipv6Addr> {
        any::<[u8; 16]>().prop_map(Ipv6Addr::from)
    }

    proptest! {
        #[test]
        fn emit_parse_identity(
            kind in 0u8..8, a in any::<u16>(), b in any::<u32>(), code in any::<u8>(),
            mut data in proptest::collection::vec(any::<u8>(), 0..1400),
            target in addr(), mac in any::<Option<[u8; 6]>>(), flags in any::<u8>(),
            src in addr(), dst in addr(),
        ) {
            if (2..6).contains(&kind) {
                data.truncate(MAX_ERROR_DATA_LEN);
                if data.len() < 40 {
                    data.resize(40, 0);
                }
                data[0] = 0x60 | (data[0] & 0x0f);
            }
            prop_assume!(!target.is_multicast());
            let flags = NeighborFlags::from_bits(flags);
            let src = if kind == 6 && mac.is_some() && src.is_unspecified() { H1 } else { src };
            let dst = if kind == 7 && flags.solicited() && dst.is_multicast() { H2 } else { dst };
            let repr = match kind {
                0 => Icmpv6Repr::EchoRequest { ident: a, seq_no: b as u16, data: &data },
                1 => Icmpv6Repr::EchoReply { ident: a, seq_no: b as u16, data: &data },
                2 => Icmpv6Repr::DstUnreachable {
                    reason: Icmpv6DstUnreachable::from_code(code % 7).unwrap(), data: &data },
                3 => Icmpv6Repr::PktTooBig { mtu: b, data: &data },
                4 => Icmpv6Repr::TimeExceeded {
                    reason: Icmpv6TimeExceeded::from_code(code % 2).unwrap(), data: &data },
                5 => Icmpv6Repr::ParamProblem {
                    reason: Icmpv6ParamProblem::from_code(code % 4).unwrap(), pointer: b, data: &data },
                6 => Icmpv6Repr::NeighborSolicit { target_addr: target, lladdr: mac },
                _ => Icmpv6Repr::NeighborAdvert { flags, target_addr: target, lladdr: mac },
            };
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), src, dst).unwrap();
            prop_assert!(40 + buf.len() <= MIN_MTU || kind < 2);
            let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum(src, dst));
            prop_assert_eq!(Icmpv6Repr::parse(&p, src, dst).unwrap(), repr);
        }

        #[test]
        fn never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..96), fix in any::<bool>(), t in prop_oneof![Just(135u8), Just(136), Just(1), Just(2), any::<u8>()]) {
            if let Some(b) = bytes.first_mut() {
                *b = t;
            }
            if fix && bytes.len() >= HEADER_LEN {
                // Small codes and an embedded IPv6 header start reach deeper.
                bytes[1] &= 0x03;
                if let Some(b) = bytes.get_mut(8) {
                    *b = 0x60;
                }
                Icmpv6Packet::new_unchecked(&mut bytes[..]).fill_checksum(H1, H2);
            }
            if let Ok(p) = Icmpv6Packet::new_checked(&bytes[..]) {
                let _ = p.to_string();
                let _ = p.ndisc_option_iter().count();
                if let Ok(r) = Icmpv6Repr::parse(&p, H1, H2) {
                    let _ = r.to_string();
                    let mut out = vec![0u8; r.buffer_len()];
                    r.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]), H1, H2).unwrap();
                    let q = Icmpv6Packet::new_checked(&out[..]).unwrap();
                    prop_assert_eq!(Icmpv6Repr::parse(&q, H1, H2).unwrap(), r);
                }
            }
        }
    }
}
