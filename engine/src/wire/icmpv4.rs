//! ICMP for IPv4 (RFC 792), with fragmentation-needed MTU (RFC 1191) and the
//! error-size rule of RFC 1812 §4.3.2.3.
//!
//! The repr knows echo request/reply, destination unreachable (all 16 codes)
//! and time exceeded; everything else is `Unrecognized` at repr level while
//! the view still reads type, code and checksum.

use core::fmt;

use super::checksum;
use super::pseudo::be16;
use super::{Error, Result};

mod field {
    use crate::wire::Field;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    /// RFC 1191: the low half of the otherwise unused word of code 4.
    pub const NEXT_HOP_MTU: Field = 6..8;
    pub const UNUSED: Field = 4..8;
    pub const HEADER_END: usize = 8;
}

/// Length of the ICMP header (type, code, checksum, 4 type-specific bytes).
pub const HEADER_LEN: usize = field::HEADER_END;
/// RFC 1812 §4.3.2.3: an ICMP error datagram must not exceed 576 bytes.
pub const MAX_ERROR_DATAGRAM_LEN: usize = 576;
/// Embedded-datagram bytes that fit an error sent with a 20-byte IPv4 header.
pub const MAX_ERROR_DATA_LEN: usize = error_data_limit(20);

/// How much of the offending datagram an error may carry when the error's own
/// IPv4 header is `ip_header_len` bytes long.
pub const fn error_data_limit(ip_header_len: usize) -> usize {
    MAX_ERROR_DATAGRAM_LEN.saturating_sub(ip_header_len + HEADER_LEN)
}

/// ICMPv4 message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Message {
    EchoReply,
    DstUnreachable,
    Redirect,
    EchoRequest,
    RouterAdvert,
    RouterSolicit,
    TimeExceeded,
    ParamProblem,
    Timestamp,
    TimestampReply,
    Unknown(u8),
}

impl From<u8> for Icmpv4Message {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::EchoReply,
            3 => Self::DstUnreachable,
            5 => Self::Redirect,
            8 => Self::EchoRequest,
            9 => Self::RouterAdvert,
            10 => Self::RouterSolicit,
            11 => Self::TimeExceeded,
            12 => Self::ParamProblem,
            13 => Self::Timestamp,
            14 => Self::TimestampReply,
            other => Self::Unknown(other),
        }
    }
}

impl From<Icmpv4Message> for u8 {
    fn from(m: Icmpv4Message) -> u8 {
        match m {
            Icmpv4Message::EchoReply => 0,
            Icmpv4Message::DstUnreachable => 3,
            Icmpv4Message::Redirect => 5,
            Icmpv4Message::EchoRequest => 8,
            Icmpv4Message::RouterAdvert => 9,
            Icmpv4Message::RouterSolicit => 10,
            Icmpv4Message::TimeExceeded => 11,
            Icmpv4Message::ParamProblem => 12,
            Icmpv4Message::Timestamp => 13,
            Icmpv4Message::TimestampReply => 14,
            Icmpv4Message::Unknown(v) => v,
        }
    }
}

impl fmt::Display for Icmpv4Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EchoReply => f.write_str("echo reply"),
            Self::DstUnreachable => f.write_str("destination unreachable"),
            Self::Redirect => f.write_str("redirect"),
            Self::EchoRequest => f.write_str("echo request"),
            Self::RouterAdvert => f.write_str("router advertisement"),
            Self::RouterSolicit => f.write_str("router solicitation"),
            Self::TimeExceeded => f.write_str("time exceeded"),
            Self::ParamProblem => f.write_str("parameter problem"),
            Self::Timestamp => f.write_str("timestamp"),
            Self::TimestampReply => f.write_str("timestamp reply"),
            Self::Unknown(v) => write!(f, "type {v}"),
        }
    }
}

/// Destination-unreachable codes (RFC 792, RFC 1122, RFC 1812).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Icmpv4DstUnreachable {
    NetUnreachable = 0,
    HostUnreachable = 1,
    ProtoUnreachable = 2,
    PortUnreachable = 3,
    /// Fragmentation needed and DF set; carries the next-hop MTU (RFC 1191).
    FragRequired = 4,
    SrcRouteFailed = 5,
    DstNetUnknown = 6,
    DstHostUnknown = 7,
    SrcHostIsolated = 8,
    NetProhibited = 9,
    HostProhibited = 10,
    NetUnreachToS = 11,
    HostUnreachToS = 12,
    CommProhibited = 13,
    HostPrecedenceViolation = 14,
    PrecedenceCutoff = 15,
}

impl Icmpv4DstUnreachable {
    pub const ALL: [Self; 16] = [
        Self::NetUnreachable,
        Self::HostUnreachable,
        Self::ProtoUnreachable,
        Self::PortUnreachable,
        Self::FragRequired,
        Self::SrcRouteFailed,
        Self::DstNetUnknown,
        Self::DstHostUnknown,
        Self::SrcHostIsolated,
        Self::NetProhibited,
        Self::HostProhibited,
        Self::NetUnreachToS,
        Self::HostUnreachToS,
        Self::CommProhibited,
        Self::HostPrecedenceViolation,
        Self::PrecedenceCutoff,
    ];

    /// The code for `v`; `Unrecognized` above 15.
    pub fn from_code(v: u8) -> Result<Self> {
        Self::ALL
            .get(usize::from(v))
            .copied()
            .ok_or(Error::Unrecognized)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NetUnreachable => "net unreachable",
            Self::HostUnreachable => "host unreachable",
            Self::ProtoUnreachable => "protocol unreachable",
            Self::PortUnreachable => "port unreachable",
            Self::FragRequired => "fragmentation needed",
            Self::SrcRouteFailed => "source route failed",
            Self::DstNetUnknown => "destination net unknown",
            Self::DstHostUnknown => "destination host unknown",
            Self::SrcHostIsolated => "source host isolated",
            Self::NetProhibited => "net administratively prohibited",
            Self::HostProhibited => "host administratively prohibited",
            Self::NetUnreachToS => "net unreachable for TOS",
            Self::HostUnreachToS => "host unreachable for TOS",
            Self::CommProhibited => "communication administratively prohibited",
            Self::HostPrecedenceViolation => "host precedence violation",
            Self::PrecedenceCutoff => "precedence cutoff in effect",
        }
    }
}

/// Time-exceeded codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Icmpv4TimeExceeded {
    /// TTL reached zero in transit.
    TtlExpired = 0,
    /// Fragment reassembly timed out.
    FragExpired = 1,
}

impl Icmpv4TimeExceeded {
    pub fn from_code(v: u8) -> Result<Self> {
        match v {
            0 => Ok(Self::TtlExpired),
            1 => Ok(Self::FragExpired),
            _ => Err(Error::Unrecognized),
        }
    }
}

/// A zero-copy view of an ICMPv4 message; the buffer is the whole message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps a buffer without checks; accessors may panic if it is short.
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// Wraps a buffer of at least [`HEADER_LEN`] bytes (`Truncated` otherwise).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn msg_type(&self) -> Icmpv4Message {
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
    /// Echo identifier (meaningful for echo messages).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }
    /// Echo sequence number (meaningful for echo messages).
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_SEQNO.start)
    }
    /// Next-hop MTU (meaningful for destination unreachable code 4).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), field::NEXT_HOP_MTU.start)
    }
    /// Everything after the 8-byte header: echo data or the embedded datagram.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_END..]
    }

    /// True if the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    #[inline]
    pub fn set_msg_type(&mut self, v: Icmpv4Message) {
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
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        self.buffer.as_mut()[field::NEXT_HOP_MTU].copy_from_slice(&v.to_be_bytes());
    }
    /// Zeroes the four type-specific header bytes.
    #[inline]
    pub fn clear_rest_of_header(&mut self) {
        self.buffer.as_mut()[field::UNUSED].fill(0);
    }
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::HEADER_END..]
    }

    /// Computes and stores the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// Rewrites the echo identifier, patching the checksum (NAPT of ICMP
    /// queries uses the identifier as the port).
    pub fn set_echo_ident_incremental(&mut self, v: u16) {
        let old = self.echo_ident();
        self.set_echo_ident(v);
        self.set_checksum(checksum::update16(self.checksum(), old, v));
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Icmpv4Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.check_len().is_err() {
            return write!(
                f,
                "ICMPv4 (truncated, {} bytes)",
                self.buffer.as_ref().len()
            );
        }
        match Icmpv4Repr::parse(self) {
            Ok(repr) => write!(f, "{repr}"),
            Err(e) => write!(
                f,
                "ICMPv4 {} code={} cksum={:#06x} len={} ({e})",
                self.msg_type(),
                self.msg_code(),
                self.checksum(),
                self.data().len()
            ),
        }
    }
}

/// Checks that `data` starts with an IPv4 header followed by at least 8
/// bytes of its payload, or by all of it if the datagram was shorter.
fn check_embedded(data: &[u8]) -> Result<()> {
    let Some(&vihl) = data.first() else {
        return Err(Error::Truncated);
    };
    if vihl >> 4 != 4 {
        return Err(Error::Malformed);
    }
    if data.len() < 20 {
        return Err(Error::Truncated);
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    let total = usize::from(be16(data, 2));
    if ihl < 20 || total < ihl {
        return Err(Error::Malformed);
    }
    if data.len() < (ihl + 8).min(total) {
        return Err(Error::Truncated);
    }
    Ok(())
}

/// A validated ICMPv4 message, borrowing echo data or the embedded datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
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
    /// `next_hop_mtu` is carried for `FragRequired` only; it is 0 otherwise.
    DstUnreachable {
        reason: Icmpv4DstUnreachable,
        next_hop_mtu: u16,
        data: &'a [u8],
    },
    TimeExceeded {
        reason: Icmpv4TimeExceeded,
        data: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Validates a message: checksum, a known type and code (`Unrecognized`
    /// otherwise), and for errors an embedded IPv4 header plus 8 bytes.
    pub fn parse<T: AsRef<[u8]>>(packet: &'a Icmpv4Packet<T>) -> Result<Self> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let code = packet.msg_code();
        let data = packet.data();
        match (packet.msg_type(), code) {
            (Icmpv4Message::EchoRequest, 0) => Ok(Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            (Icmpv4Message::EchoReply, 0) => Ok(Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            (Icmpv4Message::DstUnreachable, _) => {
                let reason = Icmpv4DstUnreachable::from_code(code)?;
                check_embedded(data)?;
                let next_hop_mtu = match reason {
                    Icmpv4DstUnreachable::FragRequired => packet.next_hop_mtu(),
                    _ => 0,
                };
                Ok(Icmpv4Repr::DstUnreachable {
                    reason,
                    next_hop_mtu,
                    data,
                })
            }
            (Icmpv4Message::TimeExceeded, _) => {
                let reason = Icmpv4TimeExceeded::from_code(code)?;
                check_embedded(data)?;
                Ok(Icmpv4Repr::TimeExceeded { reason, data })
            }
            _ => Err(Error::Unrecognized),
        }
    }

    /// True for error messages (which must not be answered with errors).
    pub const fn is_error(&self) -> bool {
        matches!(
            self,
            Self::DstUnreachable { .. } | Self::TimeExceeded { .. }
        )
    }

    /// The data `emit` writes: echo data whole, an embedded datagram cut to
    /// [`MAX_ERROR_DATA_LEN`] so the error fits 576 bytes of IPv4.
    pub fn emitted_data(&self) -> &'a [u8] {
        match *self {
            Self::EchoRequest { data, .. } | Self::EchoReply { data, .. } => data,
            Self::DstUnreachable { data, .. } | Self::TimeExceeded { data, .. } => {
                &data[..data.len().min(MAX_ERROR_DATA_LEN)]
            }
        }
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.emitted_data().len()
    }

    /// Writes the message and its checksum. The packet buffer must be exactly
    /// [`buffer_len`](Self::buffer_len) bytes (`Truncated` if smaller,
    /// `BadLength` if larger), since the checksum covers all of it.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv4Packet<T>) -> Result<()> {
        let have = packet.buffer.as_ref().len();
        let need = self.buffer_len();
        if have != need {
            return Err(if have < need {
                Error::Truncated
            } else {
                Error::BadLength
            });
        }
        packet.clear_rest_of_header();
        match *self {
            Self::EchoRequest { ident, seq_no, .. } | Self::EchoReply { ident, seq_no, .. } => {
                let t = match self {
                    Self::EchoRequest { .. } => Icmpv4Message::EchoRequest,
                    _ => Icmpv4Message::EchoReply,
                };
                packet.set_msg_type(t);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
            }
            Self::DstUnreachable {
                reason,
                next_hop_mtu,
                ..
            } => {
                packet.set_msg_type(Icmpv4Message::DstUnreachable);
                packet.set_msg_code(reason as u8);
                if reason == Icmpv4DstUnreachable::FragRequired {
                    packet.set_next_hop_mtu(next_hop_mtu);
                }
            }
            Self::TimeExceeded { reason, .. } => {
                packet.set_msg_type(Icmpv4Message::TimeExceeded);
                packet.set_msg_code(reason as u8);
            }
        }
        packet.data_mut().copy_from_slice(self.emitted_data());
        packet.fill_checksum();
        Ok(())
    }
}

impl fmt::Display for Icmpv4Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                write!(
                    f,
                    "ICMPv4 echo request id={ident} seq={seq_no} len={}",
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
                    "ICMPv4 echo reply id={ident} seq={seq_no} len={}",
                    data.len()
                )
            }
            Self::DstUnreachable {
                reason,
                next_hop_mtu,
                data,
            } => {
                write!(f, "ICMPv4 unreachable ({})", reason.as_str())?;
                if *reason == Icmpv4DstUnreachable::FragRequired {
                    write!(f, " mtu={next_hop_mtu}")?;
                }
                write!(f, " len={}", data.len())
            }
            Self::TimeExceeded { reason, data } => {
                let what = match reason {
                    Icmpv4TimeExceeded::TtlExpired => "ttl",
                    Icmpv4TimeExceeded::FragExpired => "reassembly",
                };
                write!(f, "ICMPv4 time exceeded ({what}) len={}", data.len())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Captured on veth pairs (tx checksum offload off), IPv4 headers kept:
    // `ping -c1 198.18.0.2` and its reply; the port unreachable a UDP send to
    // a closed port drew; from a router namespace, `ping -M do -s 1300`
    // across a 1280-MTU link (fragmentation needed, cut to 576 bytes by
    // Linux) and `ping -t 1` (time exceeded).
    #[rustfmt::skip]
    const ICMP4_ECHO_REQUEST: [u8; 84] = [
        0x45, 0x00, 0x00, 0x54, 0x0e, 0x6e, 0x40, 0x00, 0x40, 0x01, 0xa0, 0x13, 0xc6, 0x12, 0x00, 0x01,
        0xc6, 0x12, 0x00, 0x02, 0x08, 0x00, 0x3e, 0xea, 0x29, 0xc5, 0x00, 0x01, 0x7e, 0x27, 0x05, 0x6b,
        0x00, 0x00, 0x00, 0x00, 0x47, 0xea, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13,
        0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23,
        0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33,
        0x34, 0x35, 0x36, 0x37,
    ];

    #[rustfmt::skip]
    const ICMP4_ECHO_REPLY: [u8; 84] = [
        0x45, 0x00, 0x00, 0x54, 0x70, 0xb7, 0x00, 0x00, 0x40, 0x01, 0x7d, 0xca, 0xc6, 0x12, 0x00, 0x02,
        0xc6, 0x12, 0x00, 0x01, 0x00, 0x00, 0x46, 0xea, 0x29, 0xc5, 0x00, 0x01, 0x7e, 0x27, 0x05, 0x6b,
        0x00, 0x00, 0x00, 0x00, 0x47, 0xea, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13,
        0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23,
        0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33,
        0x34, 0x35, 0x36, 0x37,
    ];

    #[rustfmt::skip]
    const ICMP4_PORT_UNREACH: [u8; 72] = [
        0x45, 0xc0, 0x00, 0x48, 0x70, 0xc6, 0x00, 0x00, 0x40, 0x01, 0x7d, 0x07, 0xc6, 0x12, 0x00, 0x02,
        0xc6, 0x12, 0x00, 0x01, 0x03, 0x03, 0x89, 0x4e, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x2c,
        0x3e, 0x8f, 0x40, 0x00, 0x40, 0x11, 0x70, 0x0a, 0xc6, 0x12, 0x00, 0x01, 0xc6, 0x12, 0x00, 0x02,
        0x8a, 0x5f, 0x27, 0x0f, 0x00, 0x18, 0x5c, 0x84, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x70, 0x6b,
        0x74, 0x65, 0x6e, 0x67, 0x69, 0x6e, 0x65, 0x0a,
    ];

    #[rustfmt::skip]
    const ICMP4_FRAG_NEEDED: [u8; 576] = [
        0x45, 0xc0, 0x02, 0x40, 0xf8, 0xef, 0x00, 0x00, 0x40, 0x01, 0xef, 0xe9, 0xc6, 0x12, 0x01, 0xfe,
        0xc6, 0x12, 0x01, 0x01, 0x03, 0x04, 0x87, 0x0f, 0x00, 0x00, 0x05, 0x00, 0x45, 0x00, 0x05, 0x30,
        0x00, 0x00, 0x40, 0x00, 0x40, 0x01, 0xa6, 0xa6, 0xc6, 0x12, 0x01, 0x01, 0xc6, 0x12, 0x02, 0x01,
        0x08, 0x00, 0x8a, 0x89, 0x2a, 0x75, 0x00, 0x01, 0x8a, 0x27, 0x05, 0x6b, 0x00, 0x00, 0x00, 0x00,
        0xc5, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
        0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,
        0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
        0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
        0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57,
        0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67,
        0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77,
        0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
        0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
        0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
        0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
        0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
        0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7,
        0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7,
        0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7,
        0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
        0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
        0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,
        0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
        0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
        0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57,
        0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67,
        0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77,
        0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
        0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
        0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
        0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
        0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
        0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7,
        0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7,
        0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7,
        0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    ];

    #[rustfmt::skip]
    const ICMP4_TIME_EXCEEDED: [u8; 112] = [
        0x45, 0xc0, 0x00, 0x70, 0xf8, 0xf1, 0x00, 0x00, 0x40, 0x01, 0xf1, 0xb7, 0xc6, 0x12, 0x01, 0xfe,
        0xc6, 0x12, 0x01, 0x01, 0x0b, 0x00, 0xf4, 0xff, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x54,
        0x6d, 0x92, 0x40, 0x00, 0x01, 0x01, 0x7c, 0xf0, 0xc6, 0x12, 0x01, 0x01, 0xc6, 0x12, 0x02, 0x01,
        0x08, 0x00, 0xac, 0x05, 0x2a, 0x76, 0x00, 0x01, 0x8a, 0x27, 0x05, 0x6b, 0x00, 0x00, 0x00, 0x00,
        0xc8, 0x1d, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
        0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,
        0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];

    /// The 56 data bytes of the captured echo (16-byte timeval, then 0x10..0x37).
    fn echo_data() -> &'static [u8] {
        &ICMP4_ECHO_REQUEST[28..]
    }

    #[test]
    fn deconstruct_echo() {
        let p = Icmpv4Packet::new_checked(&ICMP4_ECHO_REQUEST[20..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv4Message::EchoRequest);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0x3eea);
        assert_eq!(p.echo_ident(), 10693);
        assert_eq!(p.echo_seq_no(), 1);
        assert_eq!(p.data().len(), 56);
        assert_eq!(p.data()[16..], (0x10u8..0x38).collect::<Vec<_>>()[..]);
        assert!(p.verify_checksum());
        assert_eq!(p.to_string(), "ICMPv4 echo request id=10693 seq=1 len=56");
    }

    #[test]
    fn parse_and_emit_echo() {
        for (bytes, req) in [(&ICMP4_ECHO_REQUEST, true), (&ICMP4_ECHO_REPLY, false)] {
            let p = Icmpv4Packet::new_checked(&bytes[20..]).unwrap();
            let r = Icmpv4Repr::parse(&p).unwrap();
            let want = if req {
                Icmpv4Repr::EchoRequest {
                    ident: 10693,
                    seq_no: 1,
                    data: echo_data(),
                }
            } else {
                Icmpv4Repr::EchoReply {
                    ident: 10693,
                    seq_no: 1,
                    data: echo_data(),
                }
            };
            assert_eq!(r, want);
            assert!(!r.is_error());
            let mut buf = vec![0xffu8; r.buffer_len()];
            r.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]))
                .unwrap();
            assert_eq!(&buf[..], &bytes[20..]);
        }
    }

    #[test]
    fn construct_echo_with_setters() {
        let mut buf = [0u8; 64];
        let mut p = Icmpv4Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Icmpv4Message::EchoReply);
        p.set_msg_code(0);
        p.set_echo_ident(10693);
        p.set_echo_seq_no(1);
        p.data_mut().copy_from_slice(echo_data());
        p.fill_checksum();
        assert_eq!(&buf[..], &ICMP4_ECHO_REPLY[20..]);
    }

    #[test]
    fn port_unreachable_with_embedded_udp() {
        let p = Icmpv4Packet::new_checked(&ICMP4_PORT_UNREACH[20..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv4Message::DstUnreachable);
        assert_eq!(p.msg_code(), 3);
        let r = Icmpv4Repr::parse(&p).unwrap();
        let Icmpv4Repr::DstUnreachable {
            reason,
            next_hop_mtu,
            data,
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(reason, Icmpv4DstUnreachable::PortUnreachable);
        assert_eq!(next_hop_mtu, 0);
        // The whole original datagram: IPv4 header, UDP header, payload.
        assert_eq!(data.len(), 44);
        assert_eq!(data[9], 17);
        assert_eq!(&data[20..24], &[0x8a, 0x5f, 0x27, 0x0f]);
        assert!(r.is_error());
        assert_eq!(
            r.to_string(),
            "ICMPv4 unreachable (port unreachable) len=44"
        );
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]))
            .unwrap();
        assert_eq!(&buf[..], &ICMP4_PORT_UNREACH[20..]);
    }

    #[test]
    fn frag_needed_mtu_and_576_limit() {
        let icmp = &ICMP4_FRAG_NEEDED[20..];
        assert_eq!(ICMP4_FRAG_NEEDED.len(), MAX_ERROR_DATAGRAM_LEN);
        let p = Icmpv4Packet::new_checked(icmp).unwrap();
        assert_eq!(p.next_hop_mtu(), 1280);
        let r = Icmpv4Repr::parse(&p).unwrap();
        let Icmpv4Repr::DstUnreachable {
            reason,
            next_hop_mtu,
            data,
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(
            (reason, next_hop_mtu),
            (Icmpv4DstUnreachable::FragRequired, 1280)
        );
        assert_eq!(data.len(), MAX_ERROR_DATA_LEN);
        // The embedded header still claims the original 1328 bytes.
        assert_eq!(be16(data, 2), 1328);
        assert_eq!(
            r.to_string(),
            "ICMPv4 unreachable (fragmentation needed) mtu=1280 len=548"
        );

        // Given the whole original datagram, emit cuts it as Linux did.
        let mut original = data.to_vec();
        original.resize(1328, 0x5a);
        let full = Icmpv4Repr::DstUnreachable {
            reason,
            next_hop_mtu,
            data: &original,
        };
        assert_eq!(full.buffer_len() + 20, MAX_ERROR_DATAGRAM_LEN);
        let mut buf = vec![0u8; full.buffer_len()];
        full.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]))
            .unwrap();
        assert_eq!(&buf[..], icmp);
        assert_eq!(error_data_limit(24), 544);
        assert_eq!(error_data_limit(600), 0);
    }

    #[test]
    fn time_exceeded() {
        let p = Icmpv4Packet::new_checked(&ICMP4_TIME_EXCEEDED[20..]).unwrap();
        let r = Icmpv4Repr::parse(&p).unwrap();
        let Icmpv4Repr::TimeExceeded { reason, data } = r else {
            panic!("{r:?}")
        };
        assert_eq!(reason, Icmpv4TimeExceeded::TtlExpired);
        assert_eq!(data.len(), 84);
        assert_eq!(data[8], 1, "embedded TTL was 1");
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]))
            .unwrap();
        assert_eq!(&buf[..], &ICMP4_TIME_EXCEEDED[20..]);
    }

    #[test]
    fn every_unreachable_code_round_trips() {
        let embedded = &ICMP4_PORT_UNREACH[28..];
        for (i, reason) in Icmpv4DstUnreachable::ALL.into_iter().enumerate() {
            assert_eq!(reason as u8 as usize, i);
            assert_eq!(Icmpv4DstUnreachable::from_code(i as u8), Ok(reason));
            let mtu = if reason == Icmpv4DstUnreachable::FragRequired {
                1400
            } else {
                0
            };
            let r = Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu: mtu,
                data: embedded,
            };
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]))
                .unwrap();
            let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
            assert_eq!(p.msg_code(), i as u8);
            assert_eq!(Icmpv4Repr::parse(&p).unwrap(), r);
        }
        assert_eq!(
            Icmpv4DstUnreachable::from_code(16),
            Err(Error::Unrecognized)
        );
    }

    fn with_header(t: u8, code: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![t, code, 0, 0, 0, 0, 0, 0];
        v.extend_from_slice(data);
        Icmpv4Packet::new_unchecked(&mut v[..]).fill_checksum();
        v
    }

    #[test]
    fn unrecognized_types_and_codes() {
        let embedded = &ICMP4_PORT_UNREACH[28..];
        for (t, code) in [
            (3u8, 16u8),
            (11, 2),
            (8, 1),
            (0, 9),
            (5, 0),
            (12, 0),
            (13, 0),
            (42, 0),
        ] {
            let v = with_header(t, code, embedded);
            let p = Icmpv4Packet::new_checked(&v[..]).unwrap();
            assert_eq!(
                Icmpv4Repr::parse(&p),
                Err(Error::Unrecognized),
                "type {t} code {code}"
            );
            assert_eq!(p.msg_type(), Icmpv4Message::from(t));
            assert!(p.to_string().contains("unrecognized"));
        }
        for t in 0..=255u8 {
            assert_eq!(u8::from(Icmpv4Message::from(t)), t);
        }
    }

    #[test]
    fn embedded_datagram_checks() {
        let embedded = &ICMP4_PORT_UNREACH[28..];
        // Header + 8 bytes is the minimum; one less is truncated.
        let v = with_header(3, 1, &embedded[..28]);
        assert!(Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&v[..]).unwrap()).is_ok());
        for n in 0..28 {
            let v = with_header(3, 1, &embedded[..n]);
            let p = Icmpv4Packet::new_checked(&v[..]).unwrap();
            assert_eq!(Icmpv4Repr::parse(&p), Err(Error::Truncated), "embedded {n}");
        }
        // Not IPv4, or a header length below 20.
        let mut bad = embedded.to_vec();
        bad[0] = 0x65;
        let v = with_header(11, 0, &bad);
        assert_eq!(
            Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&v[..]).unwrap()),
            Err(Error::Malformed)
        );
        bad[0] = 0x44;
        let v = with_header(11, 0, &bad);
        assert_eq!(
            Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&v[..]).unwrap()),
            Err(Error::Malformed)
        );
        // A tiny original datagram (header + 4 bytes) is carried whole.
        let mut tiny = embedded[..24].to_vec();
        tiny[2..4].copy_from_slice(&24u16.to_be_bytes());
        let v = with_header(3, 3, &tiny);
        assert!(Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&v[..]).unwrap()).is_ok());
    }

    #[test]
    fn truncated_and_bad_checksum() {
        let m = &ICMP4_ECHO_REQUEST[20..];
        for n in 0..HEADER_LEN {
            assert_eq!(
                Icmpv4Packet::new_checked(&m[..n]).unwrap_err(),
                Error::Truncated
            );
        }
        for n in HEADER_LEN..m.len() {
            let p = Icmpv4Packet::new_checked(&m[..n]).unwrap();
            assert_eq!(Icmpv4Repr::parse(&p), Err(Error::BadChecksum), "len {n}");
        }
        let mut d = ICMP4_ECHO_REQUEST;
        d[60] ^= 1;
        assert_eq!(
            Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&d[20..]).unwrap()),
            Err(Error::BadChecksum)
        );
    }

    #[test]
    fn emit_needs_exact_buffer() {
        let r = Icmpv4Repr::EchoRequest {
            ident: 1,
            seq_no: 2,
            data: b"xyz",
        };
        let mut small = [0u8; 10];
        assert_eq!(
            r.emit(&mut Icmpv4Packet::new_unchecked(&mut small[..])),
            Err(Error::Truncated)
        );
        let mut big = [0u8; 12];
        assert_eq!(
            r.emit(&mut Icmpv4Packet::new_unchecked(&mut big[..])),
            Err(Error::BadLength)
        );
    }

    #[test]
    fn ident_rewrite_is_incremental() {
        let mut d = ICMP4_ECHO_REQUEST;
        let mut p = Icmpv4Packet::new_checked(&mut d[20..]).unwrap();
        p.set_echo_ident_incremental(0xbeef);
        assert_eq!(p.echo_ident(), 0xbeef);
        assert!(p.verify_checksum());
    }

    fn repr_strategy() -> impl Strategy<Value = (u8, u16, u16, u8, Vec<u8>)> {
        (
            0u8..4,
            any::<u16>(),
            any::<u16>(),
            0u8..16,
            proptest::collection::vec(any::<u8>(), 0..600),
        )
    }

    proptest! {
        #[test]
        fn emit_parse_identity((kind, a, b, code, mut data) in repr_strategy()) {
            // Errors need a plausible embedded IPv4 header.
            if kind >= 2 {
                data.truncate(MAX_ERROR_DATA_LEN);
                if data.len() < 28 {
                    data.resize(28, 0);
                }
                data[0] = 0x45;
                let total = data.len() as u16 + 100;
                data[2..4].copy_from_slice(&total.to_be_bytes());
            }
            let repr = match kind {
                0 => Icmpv4Repr::EchoRequest { ident: a, seq_no: b, data: &data },
                1 => Icmpv4Repr::EchoReply { ident: a, seq_no: b, data: &data },
                2 => {
                    let reason = Icmpv4DstUnreachable::from_code(code).unwrap();
                    let mtu = if reason == Icmpv4DstUnreachable::FragRequired { a } else { 0 };
                    Icmpv4Repr::DstUnreachable { reason, next_hop_mtu: mtu, data: &data }
                }
                _ => Icmpv4Repr::TimeExceeded {
                    reason: Icmpv4TimeExceeded::from_code(code & 1).unwrap(),
                    data: &data,
                },
            };
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..])).unwrap();
            let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(Icmpv4Repr::parse(&p).unwrap(), repr);
        }

        #[test]
        fn errors_never_exceed_576(data in proptest::collection::vec(any::<u8>(), 28..3000)) {
            let r = Icmpv4Repr::TimeExceeded { reason: Icmpv4TimeExceeded::FragExpired, data: &data };
            prop_assert!(20 + r.buffer_len() <= MAX_ERROR_DATAGRAM_LEN);
        }

        #[test]
        fn never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..96), fix in any::<bool>(), t in prop_oneof![Just(0u8), Just(3), Just(8), Just(11), any::<u8>()]) {
            if let Some(b) = bytes.first_mut() {
                *b = t;
            }
            if let Some(b) = bytes.get_mut(8) {
                *b = 0x45; // an embedded IPv4 header start, so errors can parse
            }
            if let (true, Some(code)) = (fix, bytes.get_mut(1)) {
                *code &= 0x03;
            }
            if fix && bytes.len() >= HEADER_LEN {
                Icmpv4Packet::new_unchecked(&mut bytes[..]).fill_checksum();
            }
            if let Ok(p) = Icmpv4Packet::new_checked(&bytes[..]) {
                let _ = p.to_string();
                if let Ok(r) = Icmpv4Repr::parse(&p) {
                    let mut out = vec![0u8; r.buffer_len()];
                    r.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..])).unwrap();
                    let q = Icmpv4Packet::new_checked(&out[..]).unwrap();
                    prop_assert_eq!(Icmpv4Repr::parse(&q).unwrap(), r);
                }
            }
        }
    }
}
