//! Ethernet II frames (IEEE 802.3 with an EtherType), untagged or carrying one
//! or two IEEE 802.1Q / 802.1ad (QinQ) VLAN tags.
//!
//! A tag is four bytes inserted after the source address: a TPID (0x8100 for
//! 802.1Q, 0x88a8 for an 802.1ad service tag) and a TCI (PCP:3, DEI:1, VID:12).
//! The view finds up to two tags; a third TPID in a row is refused
//! (`Unrecognized`), so the payload offset is always 14, 18 or 22.
//!
//! EtherType values below 0x0600 are 802.3 length fields (LLC/SNAP frames);
//! they parse as `EtherType::Unknown` and the pipeline drops them.

use core::fmt;

use super::{Error, Field, Result};

/// An Ethernet MAC address as raw bytes: what tables and stages store
/// (the [`EthernetAddress`] newtype is the wire view's).
pub type Mac = [u8; 6];

/// Parses a MAC written `02:00:5e:10:00:01` (six two-digit hex groups).
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in m.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

/// A 48-bit IEEE MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// The address from its six bytes; `None` if `bytes` is not six long.
    pub fn from_bytes(bytes: &[u8]) -> Option<EthernetAddress> {
        let a: [u8; 6] = bytes.try_into().ok()?;
        Some(EthernetAddress(a))
    }

    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }

    /// Group bit (I/G) set; broadcast is a multicast too.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// Locally administered bit (U/L) set.
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// An EtherType (or a VLAN TPID, which lives in the same position).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EtherType {
    Ipv4,
    Arp,
    Ipv6,
    /// IEEE 802.1Q customer tag, 0x8100.
    Vlan,
    /// IEEE 802.1ad service tag, 0x88a8.
    QinQ,
    Unknown(u16),
}

impl EtherType {
    /// True for the TPIDs that announce a VLAN tag.
    pub const fn is_vlan_tpid(self) -> bool {
        matches!(self, EtherType::Vlan | EtherType::QinQ)
    }
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            0x8100 => EtherType::Vlan,
            0x88a8 => EtherType::QinQ,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(t: EtherType) -> u16 {
        match t {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Vlan => 0x8100,
            EtherType::QinQ => 0x88a8,
            EtherType::Unknown(v) => v,
        }
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtherType::Ipv4 => f.write_str("ipv4"),
            EtherType::Arp => f.write_str("arp"),
            EtherType::Ipv6 => f.write_str("ipv6"),
            EtherType::Vlan => f.write_str("802.1q"),
            EtherType::QinQ => f.write_str("802.1ad"),
            EtherType::Unknown(v) => write!(f, "0x{v:04x}"),
        }
    }
}

mod field {
    use super::Field;

    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    /// EtherType of an untagged frame, or TPID of the outer tag.
    pub const ETHERTYPE: Field = 12..14;
    /// Header length without tags.
    pub const HEADER_LEN: usize = 14;
    /// Length of one VLAN tag (TPID + TCI).
    pub const TAG_LEN: usize = 4;
    /// Tags the view understands.
    pub const MAX_TAGS: usize = 2;
    /// Offset of tag `i`'s TPID; its TCI follows it.
    pub const fn tag_tpid(i: usize) -> Field {
        12 + i * TAG_LEN..14 + i * TAG_LEN
    }
    pub const fn tag_tci(i: usize) -> Field {
        14 + i * TAG_LEN..16 + i * TAG_LEN
    }
}

/// Header length of an untagged frame.
pub const HEADER_LEN: usize = field::HEADER_LEN;
/// Length of one VLAN tag.
pub const VLAN_TAG_LEN: usize = field::TAG_LEN;
/// The most VLAN tags a frame may carry here.
pub const MAX_VLAN_TAGS: usize = field::MAX_TAGS;

/// One VLAN tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// `Vlan` (0x8100) or `QinQ` (0x88a8).
    pub tpid: EtherType,
    /// Priority code point, 0..=7.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN id, 0..=4095 (0 = priority tag only, 4095 reserved).
    pub vid: u16,
}

impl VlanTag {
    /// A plain 802.1Q tag with priority 0.
    pub const fn dot1q(vid: u16) -> VlanTag {
        VlanTag {
            tpid: EtherType::Vlan,
            pcp: 0,
            dei: false,
            vid: vid & 0x0fff,
        }
    }

    /// The 16-bit tag control information.
    pub const fn tci(&self) -> u16 {
        ((self.pcp as u16 & 0x7) << 13) | ((self.dei as u16) << 12) | (self.vid & 0x0fff)
    }

    fn from_parts(tpid: u16, tci: u16) -> VlanTag {
        VlanTag {
            tpid: EtherType::from(tpid),
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        }
    }
}

impl Default for VlanTag {
    fn default() -> Self {
        VlanTag::dot1q(0)
    }
}

impl fmt::Display for VlanTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} vid={} pcp={}", self.tpid, self.vid, self.pcp)?;
        if self.dei {
            f.write_str(" dei")?;
        }
        Ok(())
    }
}

/// Zero, one or two VLAN tags, outermost first. Fixed size: no allocation.
/// Unused slots are always `VlanTag::default()`, so derived equality holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VlanStack {
    tags: [VlanTag; MAX_VLAN_TAGS],
    len: u8,
}

impl VlanStack {
    /// No tags.
    pub const fn new() -> VlanStack {
        VlanStack {
            tags: [VlanTag::dot1q(0); MAX_VLAN_TAGS],
            len: 0,
        }
    }

    pub const fn one(tag: VlanTag) -> VlanStack {
        VlanStack {
            tags: [tag, VlanTag::dot1q(0)],
            len: 1,
        }
    }

    pub const fn two(outer: VlanTag, inner: VlanTag) -> VlanStack {
        VlanStack {
            tags: [outer, inner],
            len: 2,
        }
    }

    /// Adds an inner tag; `Err(Unrecognized)` if two are already there.
    pub fn push(&mut self, tag: VlanTag) -> Result<()> {
        let slot = self
            .tags
            .get_mut(self.len as usize)
            .ok_or(Error::Unrecognized)?;
        *slot = tag;
        self.len += 1;
        Ok(())
    }

    pub fn as_slice(&self) -> &[VlanTag] {
        &self.tags[..self.len as usize]
    }

    pub const fn len(&self) -> usize {
        self.len as usize
    }

    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The outermost tag, if any.
    pub fn outer(&self) -> Option<&VlanTag> {
        self.as_slice().first()
    }

    /// The innermost tag, if any (the customer VLAN in QinQ).
    pub fn inner(&self) -> Option<&VlanTag> {
        self.as_slice().last()
    }
}

/// A read/write view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checks; accessors may panic if it is too short.
    pub const fn new_unchecked(buffer: T) -> EthernetFrame<T> {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer after checking that it holds the full header,
    /// including every VLAN tag it announces.
    pub fn new_checked(buffer: T) -> Result<EthernetFrame<T>> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// `Truncated` if the header (with its tags) does not fit; `Unrecognized`
    /// for more than two stacked tags.
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        let mut tags = 0;
        loop {
            let ty = data.get(field::tag_tpid(tags)).ok_or(Error::Truncated)?;
            if !EtherType::from(u16::from_be_bytes([ty[0], ty[1]])).is_vlan_tpid() {
                return Ok(());
            }
            if tags == field::MAX_TAGS {
                return Err(Error::Unrecognized);
            }
            tags += 1;
        }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn read_u16(&self, f: Field) -> u16 {
        let d = &self.buffer.as_ref()[f];
        u16::from_be_bytes([d[0], d[1]])
    }

    pub fn dst_addr(&self) -> EthernetAddress {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        EthernetAddress(a)
    }

    pub fn src_addr(&self) -> EthernetAddress {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        EthernetAddress(a)
    }

    /// The EtherType at offset 12: the payload type of an untagged frame, the
    /// outer TPID of a tagged one.
    pub fn outer_ethertype(&self) -> EtherType {
        EtherType::from(self.read_u16(field::ETHERTYPE))
    }

    /// Number of VLAN tags (0, 1 or 2).
    pub fn tag_count(&self) -> usize {
        let mut n = 0;
        let len = self.buffer.as_ref().len();
        // An unchecked view may be shorter than the tags its bytes announce:
        // never read past the buffer (the next field must fit too).
        while n < field::MAX_TAGS
            && field::tag_tpid(n + 1).end <= len
            && EtherType::from(self.read_u16(field::tag_tpid(n))).is_vlan_tpid()
        {
            n += 1;
        }
        n
    }

    /// Tag `i` (0 = outermost), if present.
    pub fn vlan_tag(&self, i: usize) -> Option<VlanTag> {
        if i >= self.tag_count() {
            return None;
        }
        Some(VlanTag::from_parts(
            self.read_u16(field::tag_tpid(i)),
            self.read_u16(field::tag_tci(i)),
        ))
    }

    /// All tags as a stack.
    pub fn vlans(&self) -> VlanStack {
        let mut s = VlanStack::new();
        for i in 0..self.tag_count() {
            let tag = VlanTag::from_parts(
                self.read_u16(field::tag_tpid(i)),
                self.read_u16(field::tag_tci(i)),
            );
            // At most MAX_TAGS iterations, so push cannot fail.
            let _ = s.push(tag);
        }
        s
    }

    /// The EtherType of the payload, after any tags.
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(self.read_u16(field::tag_tpid(self.tag_count())))
    }

    /// Header length including tags: 14, 18 or 22.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN + field::TAG_LEN * self.tag_count()
    }

    /// The bytes after the header (including any trailing padding or FCS the
    /// NIC left; the inner protocol's length field says where it ends).
    pub fn payload(&self) -> &[u8] {
        let hl = self.header_len();
        &self.buffer.as_ref()[hl..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    fn write_u16(&mut self, f: Field, v: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_dst_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&a.0);
    }

    pub fn set_src_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&a.0);
    }

    /// Writes the EtherType at offset 12 (use for untagged frames, or to
    /// write the outer TPID).
    pub fn set_outer_ethertype(&mut self, t: EtherType) {
        self.write_u16(field::ETHERTYPE, t.into());
    }

    /// Writes the payload EtherType after the tags currently in the frame.
    pub fn set_ethertype(&mut self, t: EtherType) {
        let n = self.tag_count();
        self.write_u16(field::tag_tpid(n), t.into());
    }

    /// Rewrites tag `i` in place (its TPID and TCI). The frame must already
    /// carry at least `i + 1` tags; otherwise `Err(Malformed)`.
    pub fn set_vlan_tag(&mut self, i: usize, tag: VlanTag) -> Result<()> {
        if i >= self.tag_count() || !tag.tpid.is_vlan_tpid() {
            return Err(Error::Malformed);
        }
        self.write_u16(field::tag_tpid(i), tag.tpid.into());
        self.write_u16(field::tag_tci(i), tag.tci());
        Ok(())
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
}

impl<T: AsRef<[u8]>> fmt::Display for EthernetFrame<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match EthernetRepr::parse(self) {
            Ok(r) => write!(f, "{r}"),
            Err(e) => write!(f, "Ethernet ({e})"),
        }
    }
}

/// Inserts `tag` as the new outermost tag of the frame occupying
/// `buf[..frame_len]`, moving everything after the source address right by
/// four bytes. Returns the new frame length. `Truncated` if `buf` has no room
/// or the frame is shorter than a header; `Unrecognized` if it already has two
/// tags; `Malformed` if `tag.tpid` is not a VLAN TPID.
pub fn push_vlan_tag(buf: &mut [u8], frame_len: usize, tag: VlanTag) -> Result<usize> {
    if !tag.tpid.is_vlan_tpid() {
        return Err(Error::Malformed);
    }
    let frame = buf.get(..frame_len).ok_or(Error::Truncated)?;
    let n = EthernetFrame::new_checked(frame)?.tag_count();
    if n == MAX_VLAN_TAGS {
        return Err(Error::Unrecognized);
    }
    let new_len = frame_len + VLAN_TAG_LEN;
    if new_len > buf.len() {
        return Err(Error::Truncated);
    }
    buf.copy_within(12..frame_len, 12 + VLAN_TAG_LEN);
    buf[field::tag_tpid(0)].copy_from_slice(&u16::from(tag.tpid).to_be_bytes());
    buf[field::tag_tci(0)].copy_from_slice(&tag.tci().to_be_bytes());
    Ok(new_len)
}

/// Removes the outermost tag of the frame in `buf[..frame_len]`, moving the
/// rest left by four bytes. Returns the tag and the new frame length.
/// `Unrecognized` if the frame is untagged.
pub fn pop_vlan_tag(buf: &mut [u8], frame_len: usize) -> Result<(VlanTag, usize)> {
    let frame = buf.get(..frame_len).ok_or(Error::Truncated)?;
    let tag = EthernetFrame::new_checked(frame)?
        .vlan_tag(0)
        .ok_or(Error::Unrecognized)?;
    buf.copy_within(12 + VLAN_TAG_LEN..frame_len, 12);
    Ok((tag, frame_len - VLAN_TAG_LEN))
}

/// The validated, by-value Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    pub dst_addr: EthernetAddress,
    pub src_addr: EthernetAddress,
    /// Tags, outermost first.
    pub vlans: VlanStack,
    /// EtherType of the payload (after the tags).
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Reads the header. Every 14/18/22-byte header that passed `new_checked`
    /// is a valid Ethernet header, so this only fails on an unchecked view.
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<EthernetRepr> {
        frame.check_len()?;
        Ok(EthernetRepr {
            dst_addr: frame.dst_addr(),
            src_addr: frame.src_addr(),
            vlans: frame.vlans(),
            ethertype: frame.ethertype(),
        })
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN + VLAN_TAG_LEN * self.vlans.len()
    }

    /// Bytes `emit` writes (the header; the payload is the caller's).
    pub const fn buffer_len(&self) -> usize {
        self.header_len()
    }

    /// Writes the header, tags included, at the start of `frame`, which must
    /// be at least `buffer_len()` long. Each tag's `tpid` must be `Vlan` or
    /// `QinQ` and `ethertype` must not be one, or the frame reads back with a
    /// different tag count.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        let buf = frame.buffer.as_mut();
        for (i, tag) in self.vlans.as_slice().iter().enumerate() {
            buf[field::tag_tpid(i)].copy_from_slice(&u16::from(tag.tpid).to_be_bytes());
            buf[field::tag_tci(i)].copy_from_slice(&tag.tci().to_be_bytes());
        }
        buf[field::tag_tpid(self.vlans.len())]
            .copy_from_slice(&u16::from(self.ethertype).to_be_bytes());
    }
}

impl fmt::Display for EthernetRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ethernet src={} dst={}", self.src_addr, self.dst_addr)?;
        for t in self.vlans.as_slice() {
            write!(f, " [{t}]")?;
        }
        write!(f, " type={}", self.ethertype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Captured with tcpdump -xx on a veth in a test netns:
    /// ARP, Request who-has 198.18.0.2 tell 198.18.0.1 (veth sends no padding).
    static ARP_REQUEST: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x2e, 0x78, 0xc6, 0x70, 0xf9, 0xa7, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x2e, 0x78, 0xc6, 0x70, 0xf9, 0xa7, 0xc6, 0x12,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc6, 0x12, 0x00, 0x02,
    ];

    /// The same ARP request, hand-tagged with 802.1Q VID 100, PCP 5
    /// (TPID 81 00, TCI a0 64) after the source address.
    static DOT1Q_ARP: [u8; 46] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x2e, 0x78, 0xc6, 0x70, 0xf9, 0xa7, 0x81, 0x00, 0xa0,
        0x64, 0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x2e, 0x78, 0xc6, 0x70,
        0xf9, 0xa7, 0xc6, 0x12, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc6, 0x12, 0x00,
        0x02,
    ];

    /// Hand-crafted QinQ: outer 802.1ad S-tag VID 300 DEI (88 a8, 11 2c),
    /// inner 802.1Q C-tag VID 100 PCP 5 (81 00, a0 64), then the ARP request.
    static QINQ_ARP: [u8; 50] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x2e, 0x78, 0xc6, 0x70, 0xf9, 0xa7, 0x88, 0xa8, 0x11,
        0x2c, 0x81, 0x00, 0xa0, 0x64, 0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
        0x2e, 0x78, 0xc6, 0x70, 0xf9, 0xa7, 0xc6, 0x12, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0xc6, 0x12, 0x00, 0x02,
    ];

    const SRC: EthernetAddress = EthernetAddress([0x2e, 0x78, 0xc6, 0x70, 0xf9, 0xa7]);
    const C_TAG: VlanTag = VlanTag {
        tpid: EtherType::Vlan,
        pcp: 5,
        dei: false,
        vid: 100,
    };
    const S_TAG: VlanTag = VlanTag {
        tpid: EtherType::QinQ,
        pcp: 0,
        dei: true,
        vid: 300,
    };

    #[test]
    fn addresses() {
        assert!(EthernetAddress::BROADCAST.is_broadcast());
        assert!(EthernetAddress::BROADCAST.is_multicast());
        let mc = EthernetAddress([0x33, 0x33, 0, 0, 0, 0x16]);
        assert!(mc.is_multicast() && !mc.is_broadcast() && !mc.is_unicast());
        assert!(SRC.is_unicast() && SRC.is_local());
        let oui = EthernetAddress([0x00, 0x1b, 0x21, 1, 2, 3]);
        assert!(oui.is_unicast() && !oui.is_local());
        assert_eq!(SRC.to_string(), "2e:78:c6:70:f9:a7");
        assert_eq!(EthernetAddress::from_bytes(&[1, 2, 3]), None);
    }

    #[test]
    fn ethertype_round_trips() {
        for v in 0..=u16::MAX {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
        assert_eq!(EtherType::from(0x86dd), EtherType::Ipv6);
    }

    #[test]
    fn deconstruct_untagged() {
        let f = EthernetFrame::new_checked(&ARP_REQUEST[..]).unwrap();
        assert_eq!(f.dst_addr(), EthernetAddress::BROADCAST);
        assert_eq!(f.src_addr(), SRC);
        assert_eq!(f.tag_count(), 0);
        assert_eq!(f.vlan_tag(0), None);
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(f.outer_ethertype(), EtherType::Arp);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &ARP_REQUEST[14..]);
    }

    #[test]
    fn deconstruct_dot1q() {
        let f = EthernetFrame::new_checked(&DOT1Q_ARP[..]).unwrap();
        assert_eq!(f.tag_count(), 1);
        assert_eq!(f.outer_ethertype(), EtherType::Vlan);
        assert_eq!(f.vlan_tag(0), Some(C_TAG));
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &ARP_REQUEST[14..]);
    }

    #[test]
    fn deconstruct_qinq() {
        let f = EthernetFrame::new_checked(&QINQ_ARP[..]).unwrap();
        assert_eq!(f.tag_count(), 2);
        assert_eq!(f.vlan_tag(0), Some(S_TAG));
        assert_eq!(f.vlan_tag(1), Some(C_TAG));
        assert_eq!(f.vlan_tag(2), None);
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(f.header_len(), 22);
        assert_eq!(f.payload(), &ARP_REQUEST[14..]);
        let v = f.vlans();
        assert_eq!(v.outer(), Some(&S_TAG));
        assert_eq!(v.inner(), Some(&C_TAG));
        assert_eq!(
            f.to_string(),
            "Ethernet src=2e:78:c6:70:f9:a7 dst=ff:ff:ff:ff:ff:ff \
             [802.1ad vid=300 pcp=0 dei] [802.1q vid=100 pcp=5] type=arp"
        );
    }

    #[test]
    fn construct_qinq() {
        let mut buf = [0u8; 50];
        buf[22..].copy_from_slice(&ARP_REQUEST[14..]);
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        f.set_dst_addr(EthernetAddress::BROADCAST);
        f.set_src_addr(SRC);
        f.set_outer_ethertype(EtherType::QinQ);
        // Inner TPID must be in place before tag 1 is addressable.
        f.buffer[16..18].copy_from_slice(&[0x81, 0x00]);
        f.set_vlan_tag(0, S_TAG).unwrap();
        f.set_vlan_tag(1, C_TAG).unwrap();
        f.set_ethertype(EtherType::Arp);
        assert_eq!(f.set_vlan_tag(2, C_TAG), Err(Error::Malformed));
        assert_eq!(&buf[..], &QINQ_ARP[..]);
    }

    #[test]
    fn parse_and_emit_every_tag_depth() {
        for (bytes, vlans) in [
            (&ARP_REQUEST[..], VlanStack::new()),
            (&DOT1Q_ARP[..], VlanStack::one(C_TAG)),
            (&QINQ_ARP[..], VlanStack::two(S_TAG, C_TAG)),
        ] {
            let f = EthernetFrame::new_checked(bytes).unwrap();
            let repr = EthernetRepr::parse(&f).unwrap();
            let want = EthernetRepr {
                dst_addr: EthernetAddress::BROADCAST,
                src_addr: SRC,
                vlans,
                ethertype: EtherType::Arp,
            };
            assert_eq!(repr, want);
            assert_eq!(repr.buffer_len(), f.header_len());
            let mut out = vec![0u8; bytes.len()];
            out[repr.header_len()..].copy_from_slice(f.payload());
            want.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
            assert_eq!(&out[..], bytes);
        }
    }

    #[test]
    fn push_and_pop_tags() {
        let mut buf = [0u8; 64];
        buf[..42].copy_from_slice(&ARP_REQUEST);
        let len = push_vlan_tag(&mut buf, 42, C_TAG).unwrap();
        assert_eq!(&buf[..len], &DOT1Q_ARP[..]);
        let len = push_vlan_tag(&mut buf, len, S_TAG).unwrap();
        assert_eq!(&buf[..len], &QINQ_ARP[..]);
        assert_eq!(
            push_vlan_tag(&mut buf, len, C_TAG),
            Err(Error::Unrecognized)
        );
        let (t, len) = pop_vlan_tag(&mut buf, len).unwrap();
        assert_eq!((t, len), (S_TAG, 46));
        assert_eq!(&buf[..len], &DOT1Q_ARP[..]);
        let (t, len) = pop_vlan_tag(&mut buf, len).unwrap();
        assert_eq!((t, len), (C_TAG, 42));
        assert_eq!(&buf[..len], &ARP_REQUEST[..]);
        assert_eq!(pop_vlan_tag(&mut buf, len), Err(Error::Unrecognized));
        // No room for a tag.
        let mut tight = ARP_REQUEST;
        assert_eq!(push_vlan_tag(&mut tight, 42, C_TAG), Err(Error::Truncated));
        assert_eq!(tight, ARP_REQUEST);
        let mut buf = [0u8; 64];
        assert_eq!(push_vlan_tag(&mut buf, 80, C_TAG), Err(Error::Truncated));
        let bad = VlanTag {
            tpid: EtherType::Ipv4,
            ..C_TAG
        };
        assert_eq!(push_vlan_tag(&mut buf, 42, bad), Err(Error::Malformed));
    }

    #[test]
    fn truncated_at_every_length() {
        for bytes in [&ARP_REQUEST[..], &DOT1Q_ARP[..], &QINQ_ARP[..]] {
            let hl = EthernetFrame::new_checked(bytes).unwrap().header_len();
            for len in 0..hl {
                assert_eq!(
                    EthernetFrame::new_checked(&bytes[..len]).err(),
                    Some(Error::Truncated),
                    "len {len}"
                );
            }
            assert!(EthernetFrame::new_checked(&bytes[..hl]).is_ok());
        }
    }

    #[test]
    fn three_tags_refused() {
        let mut buf = [0u8; 54];
        buf[..16].copy_from_slice(&QINQ_ARP[..16]);
        buf[16..20].copy_from_slice(&QINQ_ARP[16..20]);
        buf[20..24].copy_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        buf[24..].copy_from_slice(&QINQ_ARP[20..]);
        assert_eq!(
            EthernetFrame::new_checked(&buf[..]).err(),
            Some(Error::Unrecognized)
        );
    }

    fn arb_addr() -> impl Strategy<Value = EthernetAddress> {
        any::<[u8; 6]>().prop_map(EthernetAddress)
    }

    fn arb_tag() -> impl Strategy<Value = VlanTag> {
        (
            prop_oneof![Just(EtherType::Vlan), Just(EtherType::QinQ)],
            0u8..8,
            any::<bool>(),
            0u16..4096,
        )
            .prop_map(|(tpid, pcp, dei, vid)| VlanTag {
                tpid,
                pcp,
                dei,
                vid,
            })
    }

    fn arb_repr() -> impl Strategy<Value = EthernetRepr> {
        let stack = prop_oneof![
            Just(VlanStack::new()),
            arb_tag().prop_map(VlanStack::one),
            (arb_tag(), arb_tag()).prop_map(|(a, b)| VlanStack::two(a, b)),
        ];
        // The payload EtherType cannot itself be a TPID.
        let ty = any::<u16>()
            .prop_map(EtherType::from)
            .prop_filter("not a tpid", |t| !t.is_vlan_tpid());
        (arb_addr(), arb_addr(), stack, ty).prop_map(|(dst_addr, src_addr, vlans, ethertype)| {
            EthernetRepr {
                dst_addr,
                src_addr,
                vlans,
                ethertype,
            }
        })
    }

    proptest! {
        #[test]
        fn emit_then_parse_is_identity(repr in arb_repr(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
            buf[repr.header_len()..].copy_from_slice(&payload);
            repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
            let f = EthernetFrame::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(EthernetRepr::parse(&f).unwrap(), repr);
            prop_assert_eq!(f.payload(), &payload[..]);
        }

        #[test]
        fn push_then_pop_is_identity(repr in arb_repr(), tag in arb_tag(), payload in proptest::collection::vec(any::<u8>(), 0..32)) {
            prop_assume!(repr.vlans.len() < MAX_VLAN_TAGS);
            let len = repr.buffer_len() + payload.len();
            let mut buf = vec![0u8; len + VLAN_TAG_LEN];
            buf[repr.header_len()..len].copy_from_slice(&payload);
            repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
            let orig = buf[..len].to_vec();
            let pushed = push_vlan_tag(&mut buf, len, tag).unwrap();
            let f = EthernetFrame::new_checked(&buf[..pushed]).unwrap();
            prop_assert_eq!(f.vlan_tag(0), Some(tag));
            prop_assert_eq!(f.ethertype(), repr.ethertype);
            let (t, popped) = pop_vlan_tag(&mut buf, pushed).unwrap();
            prop_assert_eq!(t, tag);
            prop_assert_eq!(&buf[..popped], &orig[..]);
        }

        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(f) = EthernetFrame::new_checked(&bytes[..]) {
                let _ = EthernetRepr::parse(&f).unwrap();
                let _ = f.payload();
                let _ = f.to_string();
            }
            let mut buf = bytes.clone();
            buf.extend_from_slice(&[0; 8]);
            let _ = push_vlan_tag(&mut buf, bytes.len(), C_TAG);
            let mut buf = bytes.clone();
            let _ = pop_vlan_tag(&mut buf, bytes.len());
        }

        #[test]
        fn never_panics_on_prefixes(which in 0usize..3, len in 0usize..50) {
            let bytes = [&ARP_REQUEST[..], &DOT1Q_ARP[..], &QINQ_ARP[..]][which];
            let bytes = &bytes[..len.min(bytes.len())];
            if let Ok(f) = EthernetFrame::new_checked(bytes) {
                prop_assert!(EthernetRepr::parse(&f).is_ok());
            }
        }
    }
}
