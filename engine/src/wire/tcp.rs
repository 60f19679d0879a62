//! TCP segments (RFC 9293) and their options (RFC 9293 §3.1, RFC 7323
//! window scale and timestamps, RFC 2018 SACK).
//!
//! Sequence-number arithmetic belongs to the TCP endpoint, not here. The view
//! offers incremental port/address rewrites (RFC 1624) for NAT and the load
//! balancer, which must not re-sum whole segments.

use core::fmt;

use super::checksum;
use super::pseudo::{be16, be32, PseudoHeader};
use super::{Error, IpProtocol, Result};

mod field {
    use crate::wire::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    /// Data offset (high nibble of the first byte), reserved bits, flags.
    pub const FLAGS: Field = 12..14;
    pub const WIN_SIZE: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;

    pub const fn options(header_len: usize) -> crate::wire::Field {
        URGENT.end..header_len
    }

    pub const OPT_END: u8 = 0;
    pub const OPT_NOP: u8 = 1;
    pub const OPT_MSS: u8 = 2;
    pub const OPT_WS: u8 = 3;
    pub const OPT_SACKPERM: u8 = 4;
    pub const OPT_SACKRNG: u8 = 5;
    pub const OPT_TSTAMP: u8 = 8;
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = field::URGENT.end;
/// Largest TCP header (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;
/// Largest option area.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;

/// TCP control bits, as they sit in the low 9 bits of header bytes 12..14.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u16);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x001);
    pub const SYN: TcpFlags = TcpFlags(0x002);
    pub const RST: TcpFlags = TcpFlags(0x004);
    pub const PSH: TcpFlags = TcpFlags(0x008);
    pub const ACK: TcpFlags = TcpFlags(0x010);
    pub const URG: TcpFlags = TcpFlags(0x020);
    pub const ECE: TcpFlags = TcpFlags(0x040);
    pub const CWR: TcpFlags = TcpFlags(0x080);
    /// ECN nonce (RFC 3540, historic); still a bit on the wire.
    pub const NS: TcpFlags = TcpFlags(0x100);
    const MASK: u16 = 0x1ff;
    const NAMES: [(&'static str, TcpFlags); 9] = [
        ("FIN", Self::FIN),
        ("SYN", Self::SYN),
        ("RST", Self::RST),
        ("PSH", Self::PSH),
        ("ACK", Self::ACK),
        ("URG", Self::URG),
        ("ECE", Self::ECE),
        ("CWR", Self::CWR),
        ("NS", Self::NS),
    ];

    pub const fn empty() -> Self {
        TcpFlags(0)
    }
    /// From raw bits; bits above the 9 flags are dropped.
    pub const fn from_bits(bits: u16) -> Self {
        TcpFlags(bits & Self::MASK)
    }
    pub const fn bits(self) -> u16 {
        self.0
    }
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }
    pub const fn union(self, other: TcpFlags) -> Self {
        TcpFlags(self.0 | other.0)
    }
    pub const fn without(self, other: TcpFlags) -> Self {
        TcpFlags(self.0 & !other.0)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        self.union(rhs)
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, flag) in Self::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpFlags({self})")
    }
}

/// A zero-copy view of a TCP segment. The buffer must end where the IP
/// payload ends: TCP has no length field, and the checksum covers it all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without checks; accessors may panic if it is malformed.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Truncated` below 20 bytes; `BadLength` if the data offset is below 5
    /// or points beyond the buffer.
    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = usize::from(self.header_len());
        if hl < HEADER_LEN || hl > have {
            return Err(Error::BadLength);
        }
        Ok(())
    }

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
    #[inline]
    pub fn seq_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ_NUM.start)
    }
    #[inline]
    pub fn ack_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::ACK_NUM.start)
    }
    /// The data offset in bytes (4 × the 4-bit field).
    #[inline]
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::FLAGS.start] >> 4) * 4
    }
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags::from_bits(be16(self.buffer.as_ref(), field::FLAGS.start))
    }
    #[inline]
    pub fn fin(&self) -> bool {
        self.flags().contains(TcpFlags::FIN)
    }
    #[inline]
    pub fn syn(&self) -> bool {
        self.flags().contains(TcpFlags::SYN)
    }
    #[inline]
    pub fn rst(&self) -> bool {
        self.flags().contains(TcpFlags::RST)
    }
    #[inline]
    pub fn psh(&self) -> bool {
        self.flags().contains(TcpFlags::PSH)
    }
    #[inline]
    pub fn ack(&self) -> bool {
        self.flags().contains(TcpFlags::ACK)
    }
    #[inline]
    pub fn urg(&self) -> bool {
        self.flags().contains(TcpFlags::URG)
    }
    #[inline]
    pub fn ece(&self) -> bool {
        self.flags().contains(TcpFlags::ECE)
    }
    #[inline]
    pub fn cwr(&self) -> bool {
        self.flags().contains(TcpFlags::CWR)
    }
    #[inline]
    pub fn ns(&self) -> bool {
        self.flags().contains(TcpFlags::NS)
    }
    #[inline]
    pub fn window_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WIN_SIZE.start)
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        be16(self.buffer.as_ref(), field::URGENT.start)
    }

    /// The raw option bytes (possibly empty).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::options(usize::from(self.header_len()))]
    }

    /// An iterator over the options; see [`TcpOptions`].
    #[inline]
    pub fn option_iter(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options())
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[usize::from(self.header_len())..]
    }

    /// Sequence space the segment occupies: payload plus one each for SYN and FIN.
    pub fn segment_len(&self) -> usize {
        self.payload().len() + usize::from(self.syn()) + usize::from(self.fin())
    }

    fn sum_with<A: PseudoHeader>(&self, src: A, dst: A) -> u16 {
        let d = self.buffer.as_ref();
        checksum::add(
            A::pseudo_header_sum(src, dst, IpProtocol::Tcp, d.len() as u32),
            checksum::data(d),
        )
    }

    /// True if the checksum verifies over the pseudo-header and whole buffer.
    pub fn verify_checksum<A: PseudoHeader>(&self, src: A, dst: A) -> bool {
        self.sum_with(src, dst) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn put16(&mut self, f: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }
    fn put32(&mut self, f: core::ops::Range<usize>, v: u32) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        self.put16(field::SRC_PORT, v)
    }
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        self.put16(field::DST_PORT, v)
    }
    #[inline]
    pub fn set_seq_number(&mut self, v: u32) {
        self.put32(field::SEQ_NUM, v)
    }
    #[inline]
    pub fn set_ack_number(&mut self, v: u32) {
        self.put32(field::ACK_NUM, v)
    }
    /// Sets the data offset from a byte length (rounded down to 4 bytes,
    /// clamped to 60).
    #[inline]
    pub fn set_header_len(&mut self, len: u8) {
        let b = &mut self.buffer.as_mut()[field::FLAGS.start];
        *b = (*b & 0x0f) | ((len.min(MAX_HEADER_LEN as u8) / 4) << 4);
    }
    /// Sets all nine flags; the data offset and reserved bits are kept.
    #[inline]
    pub fn set_flags(&mut self, flags: TcpFlags) {
        let d = self.buffer.as_mut();
        let old = be16(d, field::FLAGS.start);
        let new = (old & !TcpFlags::MASK) | flags.bits();
        d[field::FLAGS].copy_from_slice(&new.to_be_bytes());
    }
    #[inline]
    pub fn set_window_len(&mut self, v: u16) {
        self.put16(field::WIN_SIZE, v)
    }
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.put16(field::CHECKSUM, v)
    }
    #[inline]
    pub fn set_urgent_at(&mut self, v: u16) {
        self.put16(field::URGENT, v)
    }

    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = usize::from(self.header_len());
        &mut self.buffer.as_mut()[field::options(hl)]
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = usize::from(self.header_len());
        &mut self.buffer.as_mut()[hl..]
    }

    /// Computes and stores the checksum over the pseudo-header and buffer.
    pub fn fill_checksum<A: PseudoHeader>(&mut self, src: A, dst: A) {
        self.set_checksum(0);
        let sum = self.sum_with(src, dst);
        self.set_checksum(!sum);
    }

    /// Rewrites the source port, patching the checksum incrementally (NAT).
    pub fn set_src_port_incremental(&mut self, v: u16) {
        let old = self.src_port();
        self.set_src_port(v);
        self.set_checksum(checksum::update16(self.checksum(), old, v));
    }

    /// Rewrites the destination port, patching the checksum incrementally.
    pub fn set_dst_port_incremental(&mut self, v: u16) {
        let old = self.dst_port();
        self.set_dst_port(v);
        self.set_checksum(checksum::update16(self.checksum(), old, v));
    }

    /// Rewrites the sequence number, patching the checksum (SYN-proxy style
    /// sequence translation).
    pub fn set_seq_number_incremental(&mut self, v: u32) {
        let old = self.seq_number();
        self.set_seq_number(v);
        self.set_checksum(checksum::update32(
            self.checksum(),
            old.to_be_bytes(),
            v.to_be_bytes(),
        ));
    }

    /// Rewrites the acknowledgment number, patching the checksum.
    pub fn set_ack_number_incremental(&mut self, v: u32) {
        let old = self.ack_number();
        self.set_ack_number(v);
        self.set_checksum(checksum::update32(
            self.checksum(),
            old.to_be_bytes(),
            v.to_be_bytes(),
        ));
    }

    /// Patches the checksum for a pseudo-header address rewritten from `old`
    /// to `new` (the IP header itself is the caller's business).
    pub fn update_checksum_for_addr<A: PseudoHeader>(&mut self, old: A, new: A) {
        self.set_checksum(A::update_checksum(self.checksum(), old, new));
    }
}

impl<T: AsRef<[u8]>> fmt::Display for TcpPacket<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.check_len().is_err() {
            return write!(f, "TCP (malformed, {} bytes)", self.buffer.as_ref().len());
        }
        write!(
            f,
            "TCP src={} dst={} seq={} ack={} win={} flags={} len={}",
            self.src_port(),
            self.dst_port(),
            self.seq_number(),
            self.ack_number(),
            self.window_len(),
            self.flags(),
            self.payload().len()
        )?;
        for opt in self.option_iter() {
            match opt {
                Ok(TcpOption::EndOfList) | Ok(TcpOption::NoOperation) => {}
                Ok(o) => write!(f, " {o}")?,
                Err(_) => f.write_str(" (bad options)")?,
            }
        }
        Ok(())
    }
}

/// Up to four SACK blocks `(left, right)`; unused slots are `None`.
pub type SackRanges = [Option<(u32, u32)>; 4];

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    EndOfList,
    NoOperation,
    MaxSegmentSize(u16),
    /// The shift count as sent; RFC 7323 §2.3 caps its use at 14 (the
    /// endpoint applies the cap, so the value round-trips here).
    WindowScale(u8),
    SackPermitted,
    SackRange(SackRanges),
    Timestamp {
        tsval: u32,
        tsecr: u32,
    },
    /// Any other kind; `data` excludes the kind and length bytes.
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

impl<'a> TcpOption<'a> {
    /// Parses one option from the front of `buf`; returns it and the bytes
    /// after it. `BadOption` for a length below 2, beyond `buf`, or not the
    /// fixed length of its kind; `Truncated` for an empty `buf`.
    pub fn parse(buf: &'a [u8]) -> Result<(&'a [u8], TcpOption<'a>)> {
        let (&kind, rest) = buf.split_first().ok_or(Error::Truncated)?;
        match kind {
            field::OPT_END => return Ok((rest, TcpOption::EndOfList)),
            field::OPT_NOP => return Ok((rest, TcpOption::NoOperation)),
            _ => {}
        }
        let (&len, _) = rest.split_first().ok_or(Error::BadOption)?;
        let len = usize::from(len);
        if len < 2 || len > buf.len() {
            return Err(Error::BadOption);
        }
        let data = &buf[2..len];
        let rest = &buf[len..];
        let opt = match (kind, len) {
            (field::OPT_MSS, 4) => TcpOption::MaxSegmentSize(be16(data, 0)),
            (field::OPT_WS, 3) => TcpOption::WindowScale(data[0]),
            (field::OPT_SACKPERM, 2) => TcpOption::SackPermitted,
            (field::OPT_SACKRNG, 10 | 18 | 26 | 34) => {
                let mut ranges: SackRanges = [None; 4];
                for (slot, block) in ranges.iter_mut().zip(data.chunks_exact(8)) {
                    *slot = Some((be32(block, 0), be32(block, 4)));
                }
                TcpOption::SackRange(ranges)
            }
            (field::OPT_TSTAMP, 10) => TcpOption::Timestamp {
                tsval: be32(data, 0),
                tsecr: be32(data, 4),
            },
            (
                field::OPT_MSS
                | field::OPT_WS
                | field::OPT_SACKPERM
                | field::OPT_SACKRNG
                | field::OPT_TSTAMP,
                _,
            ) => return Err(Error::BadOption),
            (kind, _) => TcpOption::Unknown { kind, data },
        };
        Ok((rest, opt))
    }

    /// Bytes this option takes on the wire.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::SackRange(r) => 2 + 8 * r.iter().flatten().count(),
            TcpOption::Timestamp { .. } => 10,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the front of `buf`; returns the bytes after it.
    /// `Truncated` if `buf` is too small, `BadOption` if it cannot be encoded
    /// (an unknown option over 253 data bytes, a SACK option with no block).
    pub fn emit<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8]> {
        let n = self.buffer_len();
        if buf.len() < n {
            return Err(Error::Truncated);
        }
        let (out, rest) = buf.split_at_mut(n);
        let len = u8::try_from(n).map_err(|_| Error::BadOption)?;
        match *self {
            TcpOption::EndOfList => out[0] = field::OPT_END,
            TcpOption::NoOperation => out[0] = field::OPT_NOP,
            TcpOption::MaxSegmentSize(v) => {
                out[..2].copy_from_slice(&[field::OPT_MSS, len]);
                out[2..].copy_from_slice(&v.to_be_bytes());
            }
            TcpOption::WindowScale(v) => out.copy_from_slice(&[field::OPT_WS, len, v]),
            TcpOption::SackPermitted => out.copy_from_slice(&[field::OPT_SACKPERM, len]),
            TcpOption::SackRange(r) => {
                if n == 2 {
                    return Err(Error::BadOption);
                }
                out[..2].copy_from_slice(&[field::OPT_SACKRNG, len]);
                for ((l, r), block) in r.iter().flatten().zip(out[2..].chunks_exact_mut(8)) {
                    block[..4].copy_from_slice(&l.to_be_bytes());
                    block[4..].copy_from_slice(&r.to_be_bytes());
                }
            }
            TcpOption::Timestamp { tsval, tsecr } => {
                out[..2].copy_from_slice(&[field::OPT_TSTAMP, len]);
                out[2..6].copy_from_slice(&tsval.to_be_bytes());
                out[6..].copy_from_slice(&tsecr.to_be_bytes());
            }
            TcpOption::Unknown { kind, data } => {
                out[..2].copy_from_slice(&[kind, len]);
                out[2..].copy_from_slice(data);
            }
        }
        Ok(rest)
    }
}

impl fmt::Display for TcpOption<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpOption::EndOfList => f.write_str("eol"),
            TcpOption::NoOperation => f.write_str("nop"),
            TcpOption::MaxSegmentSize(v) => write!(f, "mss={v}"),
            TcpOption::WindowScale(v) => write!(f, "wscale={v}"),
            TcpOption::SackPermitted => f.write_str("sackOK"),
            TcpOption::SackRange(r) => {
                f.write_str("sack=")?;
                for (i, (l, r)) in r.iter().flatten().enumerate() {
                    write!(f, "{}{l}-{r}", if i == 0 { "" } else { "," })?;
                }
                Ok(())
            }
            TcpOption::Timestamp { tsval, tsecr } => write!(f, "ts={tsval}/{tsecr}"),
            TcpOption::Unknown { kind, data } => write!(f, "opt{kind}(len {})", data.len() + 2),
        }
    }
}

/// Iterates over an option area. Yields each option; after an error it
/// yields that error once and stops, and after End of Option List it stops
/// (the rest is padding). Never panics.
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    rest: &'a [u8],
}

impl<'a> TcpOptions<'a> {
    pub const fn new(options: &'a [u8]) -> Self {
        TcpOptions { rest: options }
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match TcpOption::parse(self.rest) {
            Ok((_, TcpOption::EndOfList)) => {
                self.rest = &[];
                Some(Ok(TcpOption::EndOfList))
            }
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

/// A validated TCP segment, borrowing its payload.
///
/// `flags` holds every control bit except ACK, which is implied by
/// `ack_number` being `Some` (so the two can never disagree). Options the
/// parser does not know are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq_number: u32,
    pub ack_number: Option<u32>,
    pub flags: TcpFlags,
    pub window_len: u16,
    pub urgent_at: u16,
    pub max_seg_size: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub sack_ranges: SackRanges,
    pub timestamp: Option<(u32, u32)>,
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// Validates a segment: length, checksum, ports not 0 (`Malformed`),
    /// options well formed (`BadOption`).
    pub fn parse<T: AsRef<[u8]>, A: PseudoHeader>(
        packet: &'a TcpPacket<T>,
        src: A,
        dst: A,
    ) -> Result<Self> {
        packet.check_len()?;
        if packet.src_port() == 0 || packet.dst_port() == 0 {
            return Err(Error::Malformed);
        }
        if !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        let flags = packet.flags();
        let mut repr = TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: flags.contains(TcpFlags::ACK).then(|| packet.ack_number()),
            flags: flags.without(TcpFlags::ACK),
            window_len: packet.window_len(),
            urgent_at: packet.urgent_at(),
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            sack_ranges: [None; 4],
            timestamp: None,
            payload: packet.payload(),
        };
        for opt in packet.option_iter() {
            match opt? {
                TcpOption::MaxSegmentSize(v) => repr.max_seg_size = Some(v),
                TcpOption::WindowScale(v) => repr.window_scale = Some(v),
                TcpOption::SackPermitted => repr.sack_permitted = true,
                TcpOption::SackRange(r) => repr.sack_ranges = r,
                TcpOption::Timestamp { tsval, tsecr } => repr.timestamp = Some((tsval, tsecr)),
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
            }
        }
        Ok(repr)
    }

    /// Option bytes `emit` writes, before padding. The layout is Linux's,
    /// with NOPs aligning each option: MSS; SACK-permitted (or NOP NOP) +
    /// timestamps; NOP + window scale; NOP NOP + SACK-permitted without
    /// timestamps; NOP NOP + SACK blocks. When that exceeds the 40-byte option
    /// area, the options are packed without NOPs instead (so any repr parsed
    /// from a real segment can be emitted again).
    pub fn options_len(&self) -> usize {
        let aligned = self.aligned_options_len();
        if aligned <= MAX_OPTIONS_LEN {
            aligned
        } else {
            self.packed_options_len()
        }
    }

    fn sack_blocks(&self) -> usize {
        self.sack_ranges.iter().flatten().count()
    }

    fn aligned_options_len(&self) -> usize {
        let mut n = 0;
        if self.max_seg_size.is_some() {
            n += 4;
        }
        if self.timestamp.is_some() {
            n += 12;
        } else if self.sack_permitted {
            n += 4;
        }
        if self.window_scale.is_some() {
            n += 4;
        }
        if self.sack_blocks() > 0 {
            n += 4 + 8 * self.sack_blocks();
        }
        n
    }

    fn packed_options_len(&self) -> usize {
        let mut n = 0;
        if self.max_seg_size.is_some() {
            n += 4;
        }
        if self.window_scale.is_some() {
            n += 3;
        }
        if self.sack_permitted {
            n += 2;
        }
        if self.timestamp.is_some() {
            n += 10;
        }
        if self.sack_blocks() > 0 {
            n += 2 + 8 * self.sack_blocks();
        }
        n
    }

    /// Header length `emit` writes (options padded to 4 bytes).
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options_len().div_ceil(4) * 4
    }

    /// Bytes `emit` writes: header, options, payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Sequence space the segment occupies.
    pub fn segment_len(&self) -> usize {
        self.payload.len()
            + usize::from(self.flags.contains(TcpFlags::SYN))
            + usize::from(self.flags.contains(TcpFlags::FIN))
    }

    /// Writes the segment at the start of the packet buffer, then the
    /// checksum; the view must end where the segment ends (use
    /// `&mut buf[..repr.buffer_len()]`). `BadOption` if the options exceed 40
    /// bytes, `Truncated` if the buffer is too small.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>, A: PseudoHeader>(
        &self,
        packet: &mut TcpPacket<T>,
        src: A,
        dst: A,
    ) -> Result<()> {
        let hl = self.header_len();
        if hl > MAX_HEADER_LEN {
            return Err(Error::BadOption);
        }
        if packet.buffer.as_ref().len() != self.buffer_len() {
            return Err(if packet.buffer.as_ref().len() < self.buffer_len() {
                Error::Truncated
            } else {
                Error::BadLength
            });
        }
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number.unwrap_or(0));
        packet.buffer.as_mut()[field::FLAGS.start] = 0;
        packet.set_header_len(hl as u8);
        let flags = match self.ack_number {
            Some(_) => self.flags | TcpFlags::ACK,
            None => self.flags.without(TcpFlags::ACK),
        };
        packet.set_flags(flags);
        packet.set_window_len(self.window_len);
        packet.set_urgent_at(self.urgent_at);
        self.emit_options(packet.options_mut())?;
        packet.payload_mut().copy_from_slice(self.payload);
        packet.fill_checksum(src, dst);
        Ok(())
    }

    fn emit_options(&self, mut buf: &mut [u8]) -> Result<()> {
        use TcpOption::*;
        if self.aligned_options_len() > MAX_OPTIONS_LEN {
            return self.emit_packed_options(buf);
        }
        if let Some(mss) = self.max_seg_size {
            buf = MaxSegmentSize(mss).emit(buf)?;
        }
        if let Some((tsval, tsecr)) = self.timestamp {
            if self.sack_permitted {
                buf = SackPermitted.emit(buf)?;
            } else {
                buf = NoOperation.emit(NoOperation.emit(buf)?)?;
            }
            buf = Timestamp { tsval, tsecr }.emit(buf)?;
        }
        if let Some(ws) = self.window_scale {
            buf = WindowScale(ws).emit(NoOperation.emit(buf)?)?;
        }
        if self.sack_permitted && self.timestamp.is_none() {
            buf = SackPermitted.emit(NoOperation.emit(NoOperation.emit(buf)?)?)?;
        }
        if self.sack_ranges.iter().any(Option::is_some) {
            buf = NoOperation.emit(NoOperation.emit(buf)?)?;
            buf = SackRange(self.sack_ranges).emit(buf)?;
        }
        buf.fill(field::OPT_END);
        Ok(())
    }

    fn emit_packed_options(&self, mut buf: &mut [u8]) -> Result<()> {
        use TcpOption::*;
        if let Some(mss) = self.max_seg_size {
            buf = MaxSegmentSize(mss).emit(buf)?;
        }
        if let Some(ws) = self.window_scale {
            buf = WindowScale(ws).emit(buf)?;
        }
        if self.sack_permitted {
            buf = SackPermitted.emit(buf)?;
        }
        if let Some((tsval, tsecr)) = self.timestamp {
            buf = Timestamp { tsval, tsecr }.emit(buf)?;
        }
        if self.sack_blocks() > 0 {
            buf = SackRange(self.sack_ranges).emit(buf)?;
        }
        buf.fill(field::OPT_END);
        Ok(())
    }
}

impl fmt::Display for TcpRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TCP src={} dst={} seq={}",
            self.src_port, self.dst_port, self.seq_number
        )?;
        if let Some(ack) = self.ack_number {
            write!(f, " ack={ack}")?;
        }
        write!(f, " win={} flags={}", self.window_len, self.flags)?;
        if let Some(v) = self.max_seg_size {
            write!(f, " mss={v}")?;
        }
        if let Some(v) = self.window_scale {
            write!(f, " wscale={v}")?;
        }
        if self.sack_permitted {
            f.write_str(" sackOK")?;
        }
        if self.sack_ranges.iter().any(Option::is_some) {
            write!(f, " {}", TcpOption::SackRange(self.sack_ranges))?;
        }
        if let Some((v, e)) = self.timestamp {
            write!(f, " ts={v}/{e}")?;
        }
        write!(f, " len={}", self.payload.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    const A4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const B4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const A6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
    const B6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);

    // Captured on a veth pair (tx checksum offload off): `curl` to a closed
    // port 9 and the kernel's RST,ACK answer, over IPv4 and IPv6. IP headers kept.
    #[rustfmt::skip]
    const TCP4_SYN: [u8; 60] = [
        0x45, 0x00, 0x00, 0x3c, 0xa3, 0x1e, 0x40, 0x00, 0x40, 0x06, 0x0b, 0x76, 0xc6, 0x12, 0x00, 0x01,
        0xc6, 0x12, 0x00, 0x02, 0xbf, 0x04, 0x00, 0x09, 0x55, 0x7a, 0xd0, 0x54, 0x00, 0x00, 0x00, 0x00,
        0xa0, 0x02, 0xfa, 0xf0, 0x17, 0x19, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
        0x1c, 0x88, 0xa8, 0x66, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
    ];

    #[rustfmt::skip]
    const TCP4_RST: [u8; 40] = [
        0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0xae, 0xa8, 0xc6, 0x12, 0x00, 0x02,
        0xc6, 0x12, 0x00, 0x01, 0x00, 0x09, 0xbf, 0x04, 0x00, 0x00, 0x00, 0x00, 0x55, 0x7a, 0xd0, 0x55,
        0x50, 0x14, 0x00, 0x00, 0x3e, 0xcb, 0x00, 0x00,
    ];

    #[rustfmt::skip]
    const TCP6_SYN: [u8; 80] = [
        0x60, 0x08, 0xea, 0x88, 0x00, 0x28, 0x06, 0x40, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xda, 0x4e, 0x00, 0x09, 0x30, 0xc5, 0xd2, 0xc1,
        0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfd, 0x20, 0x17, 0xdc, 0x00, 0x00, 0x02, 0x04, 0x05, 0xa0,
        0x04, 0x02, 0x08, 0x0a, 0x55, 0xd1, 0xbf, 0x5b, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
    ];

    #[rustfmt::skip]
    const TCP6_RST: [u8; 60] = [
        0x60, 0x0d, 0x67, 0xae, 0x00, 0x14, 0x06, 0x40, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x09, 0xda, 0x4e, 0x00, 0x00, 0x00, 0x00,
        0x30, 0xc5, 0xd2, 0xc2, 0x50, 0x14, 0x00, 0x00, 0x91, 0xe8, 0x00, 0x00,
    ];

    fn syn_repr(mss: u16, seq: u32, ts: u32, win: u16, sport: u16) -> TcpRepr<'static> {
        TcpRepr {
            src_port: sport,
            dst_port: 9,
            seq_number: seq,
            ack_number: None,
            flags: TcpFlags::SYN,
            window_len: win,
            urgent_at: 0,
            max_seg_size: Some(mss),
            window_scale: Some(10),
            sack_permitted: true,
            sack_ranges: [None; 4],
            timestamp: Some((ts, 0)),
            payload: &[],
        }
    }

    fn rst_repr(ack: u32, dport: u16) -> TcpRepr<'static> {
        TcpRepr {
            src_port: 9,
            dst_port: dport,
            seq_number: 0,
            ack_number: Some(ack),
            flags: TcpFlags::RST,
            window_len: 0,
            urgent_at: 0,
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            sack_ranges: [None; 4],
            timestamp: None,
            payload: &[],
        }
    }

    #[test]
    fn deconstruct_syn() {
        let p = TcpPacket::new_checked(&TCP4_SYN[20..]).unwrap();
        assert_eq!(p.src_port(), 48900);
        assert_eq!(p.dst_port(), 9);
        assert_eq!(p.seq_number(), 1434112084);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), TcpFlags::SYN);
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst() && !p.psh());
        assert!(!p.urg() && !p.ece() && !p.cwr() && !p.ns());
        assert_eq!(p.window_len(), 64240);
        assert_eq!(p.checksum(), 0x1719);
        assert_eq!(p.urgent_at(), 0);
        assert_eq!(p.options().len(), 20);
        assert!(p.payload().is_empty());
        assert_eq!(p.segment_len(), 1);
        assert!(p.verify_checksum(A4, B4));
        assert!(!p.verify_checksum(B4, B4));
        let opts: Vec<_> = p.option_iter().map(|o| o.unwrap()).collect();
        assert_eq!(
            opts,
            [
                TcpOption::MaxSegmentSize(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamp {
                    tsval: 478718054,
                    tsecr: 0
                },
                TcpOption::NoOperation,
                TcpOption::WindowScale(10),
            ]
        );
        assert_eq!(
            p.to_string(),
            "TCP src=48900 dst=9 seq=1434112084 ack=0 win=64240 flags=SYN len=0 \
             mss=1460 sackOK ts=478718054/0 wscale=10"
        );
    }

    #[test]
    fn deconstruct_rst_ack() {
        let p = TcpPacket::new_checked(&TCP6_RST[40..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (9, 55886));
        assert_eq!(p.ack_number(), 818270914);
        assert_eq!(p.flags(), TcpFlags::RST | TcpFlags::ACK);
        assert_eq!(p.header_len(), 20);
        assert!(p.option_iter().next().is_none());
        assert!(p.verify_checksum(B6, A6));
        assert_eq!(p.flags().to_string(), "RST,ACK");
    }

    #[test]
    fn parse_and_emit_real_segments() {
        let cases: [(&[u8], usize, TcpRepr, bool); 4] = [
            (
                &TCP4_SYN,
                20,
                syn_repr(1460, 1434112084, 478718054, 64240, 48900),
                false,
            ),
            (&TCP4_RST, 20, rst_repr(1434112085, 48900), true),
            (
                &TCP6_SYN,
                40,
                syn_repr(1440, 818270913, 1439809371, 64800, 55886),
                false,
            ),
            (&TCP6_RST, 40, rst_repr(818270914, 55886), true),
        ];
        for (bytes, ip, want, reply) in cases {
            let seg = &bytes[ip..];
            let p = TcpPacket::new_checked(seg).unwrap();
            let mut out = vec![0xeeu8; want.buffer_len()];
            let got = if ip == 20 {
                let (s, d) = if reply { (B4, A4) } else { (A4, B4) };
                let r = TcpRepr::parse(&p, s, d).unwrap();
                r.emit(&mut TcpPacket::new_unchecked(&mut out[..]), s, d)
                    .unwrap();
                r
            } else {
                let (s, d) = if reply { (B6, A6) } else { (A6, B6) };
                let r = TcpRepr::parse(&p, s, d).unwrap();
                r.emit(&mut TcpPacket::new_unchecked(&mut out[..]), s, d)
                    .unwrap();
                r
            };
            assert_eq!(got, want);
            assert_eq!(&out[..], seg, "emit reproduces the kernel's bytes");
        }
        assert_eq!(
            rst_repr(5, 48900).to_string(),
            "TCP src=9 dst=48900 seq=0 ack=5 win=0 flags=RST len=0"
        );
    }

    #[test]
    fn construct_with_setters() {
        let mut buf = [0u8; 40];
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(48900);
        p.set_dst_port(9);
        p.set_seq_number(1434112084);
        p.set_ack_number(0);
        p.set_header_len(40);
        p.set_flags(TcpFlags::SYN);
        p.set_window_len(64240);
        p.set_urgent_at(0);
        p.options_mut().copy_from_slice(&TCP4_SYN[40..60]);
        p.fill_checksum(A4, B4);
        assert_eq!(&buf[..], &TCP4_SYN[20..]);
        // Every flag bit is reachable and the data offset survives set_flags.
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        let all = TcpFlags::from_bits(0x1ff);
        p.set_flags(all);
        assert_eq!(p.flags(), all);
        assert!(p.ns() && p.cwr() && p.ece() && p.urg() && p.psh());
        assert_eq!(p.header_len(), 40);
        assert_eq!(all.to_string(), "FIN,SYN,RST,PSH,ACK,URG,ECE,CWR,NS");
    }

    #[test]
    fn data_offset_checks() {
        let mut d = TCP4_SYN;
        for off in 0u8..5 {
            d[32] = off << 4;
            assert_eq!(
                TcpPacket::new_checked(&d[20..]).unwrap_err(),
                Error::BadLength
            );
        }
        d[32] = 11 << 4; // 44 bytes > 40-byte segment
        assert_eq!(
            TcpPacket::new_checked(&d[20..]).unwrap_err(),
            Error::BadLength
        );
        d[32] = 15 << 4;
        assert_eq!(
            TcpPacket::new_checked(&d[20..]).unwrap_err(),
            Error::BadLength
        );
        d[32] = 10 << 4;
        assert!(TcpPacket::new_checked(&d[20..]).is_ok());
    }

    #[test]
    fn truncated_at_every_length() {
        let seg = &TCP4_SYN[20..];
        for n in 0..seg.len() {
            let want = if n < HEADER_LEN {
                Error::Truncated
            } else {
                Error::BadLength
            };
            assert_eq!(
                TcpPacket::new_checked(&seg[..n]).unwrap_err(),
                want,
                "len {n}"
            );
        }
    }

    #[test]
    fn bad_checksum_and_ports() {
        let mut d = TCP4_SYN;
        d[45] ^= 0x80;
        let p = TcpPacket::new_checked(&d[20..]).unwrap();
        assert_eq!(TcpRepr::parse(&p, A4, B4), Err(Error::BadChecksum));
        let mut d = TCP4_SYN;
        d[22] = 0;
        d[23] = 0;
        let mut p = TcpPacket::new_checked(&mut d[20..]).unwrap();
        p.fill_checksum(A4, B4);
        let p = TcpPacket::new_checked(&d[20..]).unwrap();
        assert_eq!(TcpRepr::parse(&p, A4, B4), Err(Error::Malformed));
    }

    #[test]
    fn malformed_option_in_segment_is_bad_option() {
        let mut d = TCP4_SYN;
        d[41] = 0; // MSS length 0
        let mut p = TcpPacket::new_checked(&mut d[20..]).unwrap();
        p.fill_checksum(A4, B4);
        let p = TcpPacket::new_checked(&d[20..]).unwrap();
        assert_eq!(TcpRepr::parse(&p, A4, B4), Err(Error::BadOption));
        assert!(p.to_string().ends_with("(bad options)"));
    }

    fn parse_all(bytes: &[u8]) -> Result<Vec<TcpOption<'_>>> {
        TcpOptions::new(bytes).collect()
    }

    #[test]
    fn option_lengths() {
        // Length 0 and 1, for a known and an unknown kind.
        for kind in [2u8, 3, 4, 5, 8, 30, 254] {
            assert_eq!(
                parse_all(&[kind, 0, 0, 0]),
                Err(Error::BadOption),
                "kind {kind} len 0"
            );
            assert_eq!(
                parse_all(&[kind, 1, 0, 0]),
                Err(Error::BadOption),
                "kind {kind} len 1"
            );
            assert_eq!(
                parse_all(&[kind]),
                Err(Error::BadOption),
                "kind {kind} no len"
            );
            assert_eq!(
                parse_all(&[kind, 5, 0, 0]),
                Err(Error::BadOption),
                "kind {kind} overlong"
            );
        }
        // Wrong fixed lengths.
        assert_eq!(parse_all(&[2, 3, 5]), Err(Error::BadOption));
        assert_eq!(parse_all(&[2, 5, 5, 0xb4, 0]), Err(Error::BadOption));
        assert_eq!(parse_all(&[3, 4, 7, 0]), Err(Error::BadOption));
        assert_eq!(parse_all(&[3, 2]), Err(Error::BadOption));
        assert_eq!(parse_all(&[4, 3, 0]), Err(Error::BadOption));
        assert_eq!(
            parse_all(&[8, 9, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::BadOption)
        );
        for len in [2u8, 6, 9, 11, 12, 17, 19, 42] {
            let mut v = vec![5, len];
            v.resize(usize::from(len.max(2)), 0);
            assert_eq!(parse_all(&v), Err(Error::BadOption), "sack len {len}");
        }
        // The error is yielded once, then the iterator stops.
        let mut it = TcpOptions::new(&[1, 2, 0, 1, 1]);
        assert_eq!(it.next(), Some(Ok(TcpOption::NoOperation)));
        assert_eq!(it.next(), Some(Err(Error::BadOption)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn option_kinds() {
        assert_eq!(
            parse_all(&[2, 4, 0x05, 0xb4]).unwrap(),
            [TcpOption::MaxSegmentSize(1460)]
        );
        assert_eq!(
            parse_all(&[3, 3, 14]).unwrap(),
            [TcpOption::WindowScale(14)]
        );
        assert_eq!(parse_all(&[4, 2]).unwrap(), [TcpOption::SackPermitted]);
        assert_eq!(
            parse_all(&[8, 10, 0, 0, 0, 1, 0, 0, 0, 2]).unwrap(),
            [TcpOption::Timestamp { tsval: 1, tsecr: 2 }]
        );
        let mut sack = vec![5u8, 34];
        for i in 1u32..=8 {
            sack.extend_from_slice(&(i * 1000).to_be_bytes());
        }
        for blocks in 1..=4usize {
            let mut s = sack[..2 + 8 * blocks].to_vec();
            s[1] = (2 + 8 * blocks) as u8;
            let mut want = [None; 4];
            for (b, slot) in want.iter_mut().enumerate().take(blocks) {
                *slot = Some(((2 * b as u32 + 1) * 1000, (2 * b as u32 + 2) * 1000));
            }
            assert_eq!(parse_all(&s).unwrap(), [TcpOption::SackRange(want)]);
        }
        // Unknown kinds keep kind and data; EOL ends the list, padding ignored.
        assert_eq!(
            parse_all(&[30, 4, 0xaa, 0xbb, 1, 0, 0xff, 0xff]).unwrap(),
            [
                TcpOption::Unknown {
                    kind: 30,
                    data: &[0xaa, 0xbb]
                },
                TcpOption::NoOperation,
                TcpOption::EndOfList,
            ]
        );
        assert_eq!(
            parse_all(&[34, 2]).unwrap(),
            [TcpOption::Unknown {
                kind: 34,
                data: &[]
            }]
        );
        assert_eq!(TcpOption::parse(&[]), Err(Error::Truncated));
    }

    #[test]
    fn repr_with_sack_blocks_and_payload() {
        let repr = TcpRepr {
            sack_ranges: [Some((100, 200)), Some((300, 400)), Some((500, 600)), None],
            timestamp: Some((7, 8)),
            sack_permitted: false,
            max_seg_size: None,
            window_scale: None,
            flags: TcpFlags::PSH,
            payload: b"GET / HTTP/1.0\r\n\r\n",
            ..rst_repr(42, 80)
        };
        // NOP NOP TS (12) + NOP NOP SACK*3 (28) = 40: the largest legal area.
        assert_eq!(repr.options_len(), 40);
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), A6, B6)
            .unwrap();
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.header_len(), 60);
        assert_eq!(TcpRepr::parse(&p, A6, B6).unwrap(), repr);
        // MSS + TS + 3 SACK blocks is 40 bytes packed, 44 aligned: packed wins.
        let packed = TcpRepr {
            max_seg_size: Some(1400),
            ..repr
        };
        assert_eq!(packed.options_len(), 40);
        let mut buf = vec![0u8; packed.buffer_len()];
        packed
            .emit(&mut TcpPacket::new_unchecked(&mut buf[..]), A6, B6)
            .unwrap();
        assert_eq!(&buf[20..26], &[2, 4, 0x05, 0x78, 8, 10]);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(TcpRepr::parse(&p, A6, B6).unwrap(), packed);
        // Four blocks and timestamps fit neither way.
        let too_big = TcpRepr {
            sack_ranges: [Some((1, 2)); 4],
            ..repr
        };
        let mut buf = vec![0u8; too_big.buffer_len()];
        assert_eq!(
            too_big.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), A6, B6),
            Err(Error::BadOption)
        );
        let mut small = vec![0u8; repr.buffer_len() - 1];
        assert_eq!(
            repr.emit(&mut TcpPacket::new_unchecked(&mut small[..]), A6, B6),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn incremental_rewrites() {
        let mut d = TCP4_SYN;
        let mut p = TcpPacket::new_checked(&mut d[20..]).unwrap();
        let nat = Ipv4Addr::new(198, 19, 1, 1);
        p.set_src_port_incremental(1024);
        p.set_dst_port_incremental(8080);
        p.set_seq_number_incremental(0xdead_beef);
        p.set_ack_number_incremental(0x0102_0304);
        p.update_checksum_for_addr(A4, nat);
        assert!(p.verify_checksum(nat, B4));
        let mut d = TCP6_RST;
        let mut p = TcpPacket::new_checked(&mut d[40..]).unwrap();
        let nat6 = Ipv6Addr::new(0x2001, 2, 0, 0xffff, 0, 0, 0, 1);
        p.set_dst_port_incremental(1);
        p.update_checksum_for_addr(A6, nat6);
        assert!(p.verify_checksum(B6, nat6));
    }

    #[derive(Debug, Clone)]
    enum Opt {
        Nop,
        Mss(u16),
        Ws(u8),
        SackPerm,
        Sack(Vec<(u32, u32)>),
        Ts(u32, u32),
        Unknown(u8, Vec<u8>),
    }

    impl Opt {
        fn as_option(&self) -> TcpOption<'_> {
            match self {
                Opt::Nop => TcpOption::NoOperation,
                Opt::Mss(v) => TcpOption::MaxSegmentSize(*v),
                Opt::Ws(v) => TcpOption::WindowScale(*v),
                Opt::SackPerm => TcpOption::SackPermitted,
                Opt::Sack(b) => {
                    let mut r = [None; 4];
                    for (slot, x) in r.iter_mut().zip(b) {
                        *slot = Some(*x);
                    }
                    TcpOption::SackRange(r)
                }
                Opt::Ts(a, b) => TcpOption::Timestamp {
                    tsval: *a,
                    tsecr: *b,
                },
                Opt::Unknown(k, d) => TcpOption::Unknown { kind: *k, data: d },
            }
        }
    }

    fn opt() -> impl Strategy<Value = Opt> {
        prop_oneof![
            Just(Opt::Nop),
            any::<u16>().prop_map(Opt::Mss),
            any::<u8>().prop_map(Opt::Ws),
            Just(Opt::SackPerm),
            proptest::collection::vec(any::<(u32, u32)>(), 1..=4).prop_map(Opt::Sack),
            any::<(u32, u32)>().prop_map(|(a, b)| Opt::Ts(a, b)),
            (9u8.., proptest::collection::vec(any::<u8>(), 0..12))
                .prop_map(|(k, d)| Opt::Unknown(k, d)),
        ]
    }

    fn sack() -> impl Strategy<Value = SackRanges> {
        proptest::collection::vec(any::<(u32, u32)>(), 0..=4).prop_map(|v| {
            let mut r = [None; 4];
            for (slot, x) in r.iter_mut().zip(v) {
                *slot = Some(x);
            }
            r
        })
    }

    prop_compose! {
        fn repr_parts()(
            src_port in 1u16.., dst_port in 1u16.., seq in any::<u32>(), ack in any::<Option<u32>>(),
            flags in any::<u16>(), win in any::<u16>(), urg in any::<u16>(),
            mss in any::<Option<u16>>(), ws in any::<Option<u8>>(), sp in any::<bool>(),
            sack in sack(), ts in any::<Option<(u32, u32)>>(),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
        ) -> (TcpRepr<'static>, Vec<u8>) {
            (TcpRepr {
                src_port, dst_port, seq_number: seq, ack_number: ack,
                flags: TcpFlags::from_bits(flags).without(TcpFlags::ACK),
                window_len: win, urgent_at: urg, max_seg_size: mss, window_scale: ws,
                sack_permitted: sp, sack_ranges: sack, timestamp: ts, payload: &[],
            }, payload)
        }
    }

    proptest! {
        #[test]
        fn parsed_options_always_re_emit(opts in proptest::collection::vec(opt(), 0..10)) {
            // Any option list that fits 40 bytes, in any order and with
            // duplicates, parses to a repr that emits within 40 bytes.
            let mut list: Vec<TcpOption> = opts.iter().map(Opt::as_option).collect();
            while list.iter().map(TcpOption::buffer_len).sum::<usize>() > MAX_OPTIONS_LEN {
                list.pop();
            }
            let total: usize = list.iter().map(TcpOption::buffer_len).sum();
            let hl = HEADER_LEN + total.div_ceil(4) * 4;
            let mut seg = vec![0u8; hl];
            seg[0] = 1;
            seg[3] = 1;
            seg[12] = ((hl / 4) as u8) << 4;
            let mut rest = &mut seg[HEADER_LEN..];
            for o in &list {
                rest = o.emit(rest).unwrap();
            }
            let mut p = TcpPacket::new_checked(&mut seg[..]).unwrap();
            p.fill_checksum(A4, B4);
            let p = TcpPacket::new_checked(&seg[..]).unwrap();
            let r = TcpRepr::parse(&p, A4, B4).unwrap();
            prop_assert!(r.header_len() <= MAX_HEADER_LEN);
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut TcpPacket::new_unchecked(&mut out[..]), A4, B4).unwrap();
            let q = TcpPacket::new_checked(&out[..]).unwrap();
            prop_assert_eq!(TcpRepr::parse(&q, A4, B4).unwrap(), r);
        }

        #[test]
        fn random_option_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
            let mut n = 0;
            for o in TcpOptions::new(&bytes) {
                n += 1;
                if let Ok(o) = o {
                    let _ = o.to_string();
                }
            }
            prop_assert!(n <= bytes.len());
        }

        #[test]
        fn well_formed_options_round_trip(opts in proptest::collection::vec(opt(), 0..8)) {
            let list: Vec<TcpOption> = opts.iter().map(Opt::as_option).collect();
            let total: usize = list.iter().map(TcpOption::buffer_len).sum();
            let mut buf = vec![0u8; total];
            let mut rest = &mut buf[..];
            for o in &list {
                rest = o.emit(rest).unwrap();
            }
            prop_assert!(rest.is_empty());
            let back: Vec<TcpOption> = TcpOptions::new(&buf).collect::<Result<_>>().unwrap();
            prop_assert_eq!(back, list);
        }

        #[test]
        fn repr_emit_parse_identity((mut repr, payload) in repr_parts(), v6 in any::<bool>()) {
            repr.payload = &payload;
            // Drop SACK blocks that cannot fit next to the other options.
            for slot in (0..4).rev() {
                if repr.header_len() > MAX_HEADER_LEN {
                    repr.sack_ranges[slot] = None;
                }
            }
            let mut buf = vec![0u8; repr.buffer_len()];
            if v6 {
                repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), A6, B6).unwrap();
                let p = TcpPacket::new_checked(&buf[..]).unwrap();
                prop_assert!(p.verify_checksum(A6, B6));
                prop_assert_eq!(TcpRepr::parse(&p, A6, B6).unwrap(), repr);
            } else {
                repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), A4, B4).unwrap();
                let p = TcpPacket::new_checked(&buf[..]).unwrap();
                prop_assert!(p.verify_checksum(A4, B4));
                prop_assert_eq!(p.segment_len(), repr.segment_len());
                prop_assert_eq!(TcpRepr::parse(&p, A4, B4).unwrap(), repr);
            }
        }

        #[test]
        fn never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..80), fix in any::<bool>()) {
            if fix && bytes.len() >= HEADER_LEN {
                // Make the checksum right so parsing goes past it.
                let mut p = TcpPacket::new_unchecked(&mut bytes[..]);
                p.fill_checksum(A4, B4);
            }
            let _ = TcpPacket::new_unchecked(&bytes[..]).to_string();
            if let Ok(p) = TcpPacket::new_checked(&bytes[..]) {
                if let Ok(r) = TcpRepr::parse(&p, A4, B4) {
                    let _ = r.to_string();
                    // Whatever parses re-emits and parses the same.
                    let mut out = vec![0u8; r.buffer_len()];
                    r.emit(&mut TcpPacket::new_unchecked(&mut out[..]), A4, B4).unwrap();
                    let q = TcpPacket::new_checked(&out[..]).unwrap();
                    prop_assert_eq!(TcpRepr::parse(&q, A4, B4).unwrap(), r);
                }
            }
        }

        #[test]
        fn incremental_equals_recompute(port in any::<u16>(), seq in any::<u32>(), a in any::<[u8; 16]>()) {
            let mut d = TCP6_SYN;
            let a = Ipv6Addr::from(a);
            let mut p = TcpPacket::new_checked(&mut d[40..]).unwrap();
            p.set_dst_port_incremental(port);
            p.set_seq_number_incremental(seq);
            p.update_checksum_for_addr(B6, a);
            prop_assert!(p.verify_checksum(A6, a));
        }
    }
}
