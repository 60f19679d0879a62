//! The payload stamp pktgen writes at the start of every L4 payload:
//!
//! ```text
//! offset  size  field
//!      0     2  magic 0x5047 ("PG"), big-endian
//!      2     2  flow id (index into the generator's flow set), big-endian
//!      4     4  sequence number within the flow, from 0, big-endian
//!      8     8  send time, CLOCK_MONOTONIC nanoseconds, big-endian
//! ```
//!
//! 16 bytes, so that an IPv4/UDP frame still fits 60 bytes (64 with FCS).
//! Templates carry sequence and time 0; per packet only bytes 4..16 change,
//! and the L4 checksum is patched with RFC 1624 over those 12 bytes.
use engine::wire::checksum;

/// Stamp length in bytes.
pub const LEN: usize = 16;
/// The magic.
pub const MAGIC: u16 = 0x5047;

/// A decoded stamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Flow id.
    pub flow: u16,
    /// Sequence number within the flow.
    pub seq: u32,
    /// Send time (CLOCK_MONOTONIC ns).
    pub time_ns: u64,
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "flow={} seq={} t={}ns",
            self.flow, self.seq, self.time_ns
        )
    }
}

/// Writes the template stamp (magic, flow, seq 0, time 0) into `buf`.
/// Returns false if `buf` is shorter than [`LEN`].
pub fn write_template(buf: &mut [u8], flow: u16) -> bool {
    let Some(b) = buf.get_mut(..LEN) else {
        return false;
    };
    b[0..2].copy_from_slice(&MAGIC.to_be_bytes());
    b[2..4].copy_from_slice(&flow.to_be_bytes());
    b[4..16].fill(0);
    true
}

/// Reads a stamp; None if too short or the magic is wrong.
pub fn read(buf: &[u8]) -> Option<Stamp> {
    let b: &[u8; LEN] = buf.get(..LEN)?.try_into().ok()?;
    if u16::from_be_bytes([b[0], b[1]]) != MAGIC {
        return None;
    }
    Some(Stamp {
        flow: u16::from_be_bytes([b[2], b[3]]),
        seq: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        time_ns: u64::from_be_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]),
    })
}

/// The variable 12 bytes (sequence and time).
#[inline]
pub fn variable(seq: u32, time_ns: u64) -> [u8; 12] {
    let mut v = [0u8; 12];
    v[0..4].copy_from_slice(&seq.to_be_bytes());
    v[4..12].copy_from_slice(&time_ns.to_be_bytes());
    v
}

/// How a frame's L4 checksum reacts to the stamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckFix {
    /// UDP over IPv4 sent without checksum (0): nothing to patch.
    None,
    /// UDP: patch, and a result of 0 is sent as 0xffff (RFC 768).
    Udp,
    /// TCP: patch.
    Tcp,
}

/// Writes sequence and time into the stamp at `frame[stamp_off..]` of a
/// template copy (whose variable bytes are 0) and patches the checksum at
/// `frame[check_off..check_off + 2]`, whose template value is `template_check`.
/// `stamp_off - l4_start` must be even (it is: UDP and TCP headers have even
/// length). Returns false if the offsets lie outside `frame`.
#[inline]
pub fn stamp_frame(
    frame: &mut [u8],
    stamp_off: usize,
    check_off: usize,
    fix: CheckFix,
    template_check: u16,
    seq: u32,
    time_ns: u64,
) -> bool {
    let v = variable(seq, time_ns);
    let Some(dst) = frame.get_mut(stamp_off + 4..stamp_off + LEN) else {
        return false;
    };
    dst.copy_from_slice(&v);
    let new = match fix {
        CheckFix::None => return true,
        CheckFix::Udp => {
            checksum::udp_nonzero(checksum::update_bytes(template_check, &[0; 12], &v))
        }
        CheckFix::Tcp => checksum::update_bytes(template_check, &[0; 12], &v),
    };
    let Some(c) = frame.get_mut(check_off..check_off + 2) else {
        return false;
    };
    c.copy_from_slice(&new.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_as_documented() {
        let mut b = [0xaau8; 20];
        assert!(write_template(&mut b, 0x0102));
        assert_eq!(
            &b[..16],
            &[0x50, 0x47, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(b[16], 0xaa, "writes only 16 bytes");
        let v = variable(0x0a0b_0c0d, 0x1122_3344_5566_7788);
        b[4..16].copy_from_slice(&v);
        assert_eq!(
            &b[4..16],
            &[0x0a, 0x0b, 0x0c, 0x0d, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]
        );
        assert_eq!(
            read(&b),
            Some(Stamp {
                flow: 0x0102,
                seq: 0x0a0b_0c0d,
                time_ns: 0x1122_3344_5566_7788
            })
        );
    }

    #[test]
    fn wrong_magic_or_short_is_none() {
        let mut b = [0u8; 16];
        assert!(write_template(&mut b, 7));
        assert!(read(&b[..15]).is_none());
        b[0] = 0x51;
        assert!(read(&b).is_none());
        assert!(!write_template(&mut [0u8; 15], 1));
    }

    #[test]
    fn out_of_range_offsets_are_refused() {
        let mut f = [0u8; 30];
        assert!(!stamp_frame(&mut f, 20, 0, CheckFix::Tcp, 0, 1, 2));
        assert!(!stamp_frame(&mut f, 0, 29, CheckFix::Tcp, 0, 1, 2));
        assert!(stamp_frame(&mut f, 0, 28, CheckFix::None, 0, 1, 2));
    }
}

/// What the sink reads from a frame: the stamp and the IP TTL / hop limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The stamp.
    pub stamp: Stamp,
    /// IPv4 TTL or IPv6 hop limit on arrival.
    pub ttl: u8,
    /// The IPv4 header checksum verifies (always true for IPv6, which has
    /// none): catches a forwarder's wrong TTL patch.
    pub ip_ok: bool,
}

/// Finds the stamp of an Ethernet frame (untagged or one 802.1Q tag) with
/// IPv4 (no fragment) or IPv6 (UDP/TCP directly after the fixed header)
/// and UDP or TCP. None for anything else: never panics.
pub fn locate(frame: &[u8]) -> Option<Seen> {
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    off += 2;
    if ethertype == 0x8100 {
        ethertype = u16::from_be_bytes([*frame.get(off + 2)?, *frame.get(off + 3)?]);
        off += 4;
    }
    let (proto, ttl, l4, ip_ok) = match ethertype {
        0x0800 => {
            let ip = frame.get(off..off + 20)?;
            let ihl = (ip[0] & 0x0f) as usize * 4;
            let ip_ok = frame
                .get(off..off + ihl)
                .is_some_and(|h| ihl >= 20 && checksum::data(h) == 0xffff);
            if ip[0] >> 4 != 4 {
                return None;
            }
            // Any fragment but the first has no L4 header; a first fragment still has the stamp.
            if u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0 {
                return None;
            }
            (ip[9], ip[8], off + ihl, ip_ok)
        }
        0x86dd => {
            let ip = frame.get(off..off + 40)?;
            if ip[0] >> 4 != 6 {
                return None;
            }
            (ip[6], ip[7], off + 40, true)
        }
        _ => return None,
    };
    let l4_len = match proto {
        17 => 8,
        6 => (*frame.get(l4 + 12)? >> 4) as usize * 4,
        _ => return None,
    };
    if l4_len < 8 {
        return None;
    }
    let stamp = read(frame.get(l4 + l4_len..)?)?;
    Some(Seen { stamp, ttl, ip_ok })
}
