//! What to send: address and port ranges, protocol, frame sizes, and the
//! flow set they span.
//!
//! Ranges are inclusive (`198.18.0.1-198.18.0.4`, `1000-1003`, a single
//! value is a range of one). Flows are the cartesian product
//! src-ip x dst-ip x sport x dport, numbered with the destination port
//! varying fastest; the flow id is that number (at most [`MAX_FLOWS`]).
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Flow ids are 16 bits.
pub const MAX_FLOWS: usize = 65536;

/// Frame sizes of the IMIX used here: 7 x 64, 4 x 576, 1 x 1518 bytes (the
/// classic "simple IMIX", 7:4:1, average 355.83 bytes with FCS).
pub const IMIX_SIZES: [u16; 3] = [64, 576, 1518];
/// One IMIX cycle of 12 packets, as indices into [`IMIX_SIZES`], spread so
/// that the large frames do not come in a block.
pub const IMIX_CYCLE: [u8; 12] = [0, 1, 0, 0, 1, 0, 2, 0, 1, 0, 0, 1];

/// Ethernet FCS bytes: sizes count them (RFC 2544), the frame in memory does not.
pub const FCS: usize = 4;

/// Why a specification is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError(pub String);

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpecError {}

fn err<T>(msg: impl Into<String>) -> Result<T, SpecError> {
    Err(SpecError(msg.into()))
}

/// An inclusive range of IP addresses of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    /// First address.
    pub first: IpAddr,
    /// Number of addresses (at least 1).
    pub count: u32,
}

fn ip_to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u32::from(v) as u128,
        IpAddr::V6(v) => u128::from(v),
    }
}

impl IpRange {
    /// The `i`-th address (wrapping inside the range).
    pub fn nth(&self, i: u32) -> IpAddr {
        let off = (i % self.count) as u128;
        match self.first {
            IpAddr::V4(v) => IpAddr::V4((u32::from(v).wrapping_add(off as u32)).into()),
            IpAddr::V6(v) => IpAddr::V6((u128::from(v).wrapping_add(off)).into()),
        }
    }
}

impl FromStr for IpRange {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        // IPv6 addresses contain no '-', so the first '-' splits.
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let first: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| SpecError(format!("bad address {a:?}")))?;
        let last: IpAddr = b
            .trim()
            .parse()
            .map_err(|_| SpecError(format!("bad address {b:?}")))?;
        if first.is_ipv4() != last.is_ipv4() {
            return err(format!("{s}: mixed address families"));
        }
        let (f, l) = (ip_to_u128(first), ip_to_u128(last));
        if l < f {
            return err(format!("{s}: last address before the first"));
        }
        let count = l - f + 1;
        if count > MAX_FLOWS as u128 {
            return err(format!("{s}: {count} addresses (at most {MAX_FLOWS})"));
        }
        Ok(IpRange {
            first,
            count: count as u32,
        })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 1 {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.nth(self.count - 1))
        }
    }
}

/// An inclusive range of ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port.
    pub last: u16,
}

impl PortRange {
    /// Number of ports.
    pub fn count(&self) -> u32 {
        self.last as u32 - self.first as u32 + 1
    }
}

impl FromStr for PortRange {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let p = |x: &str| {
            x.trim()
                .parse::<u16>()
                .map_err(|_| SpecError(format!("bad port {x:?}")))
        };
        let (first, last) = (p(a)?, p(b)?);
        if last < first || first == 0 {
            return err(format!("{s}: empty range or port 0"));
        }
        Ok(PortRange { first, last })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// TCP or UDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// UDP.
    Udp,
    /// TCP (segments with ACK|PSH, no connection).
    Tcp,
}

impl FromStr for Proto {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s {
            "udp" => Ok(Proto::Udp),
            "tcp" => Ok(Proto::Tcp),
            _ => err(format!("protocol {s:?} (udp or tcp)")),
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        })
    }
}

/// Frame sizes, counting the 4-byte FCS as RFC 2544 does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeSpec {
    /// Every frame this size (64..=1518).
    Fixed(u16),
    /// 7:4:1 of 64/576/1518.
    Imix,
}

impl SizeSpec {
    /// The distinct sizes.
    pub fn sizes(&self) -> Vec<u16> {
        match self {
            SizeSpec::Fixed(s) => vec![*s],
            SizeSpec::Imix => IMIX_SIZES.to_vec(),
        }
    }

    /// Index into [`Self::sizes`] of the size of the `k`-th packet of a flow.
    #[inline]
    pub fn pick(&self, k: u64) -> usize {
        match self {
            SizeSpec::Fixed(_) => 0,
            SizeSpec::Imix => IMIX_CYCLE[(k % IMIX_CYCLE.len() as u64) as usize] as usize,
        }
    }

    /// Average size (with FCS).
    pub fn average(&self) -> f64 {
        match self {
            SizeSpec::Fixed(s) => *s as f64,
            SizeSpec::Imix => {
                IMIX_CYCLE
                    .iter()
                    .map(|i| IMIX_SIZES[*i as usize] as f64)
                    .sum::<f64>()
                    / 12.0
            }
        }
    }
}

impl FromStr for SizeSpec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        if s == "imix" {
            return Ok(SizeSpec::Imix);
        }
        let n: u16 = s
            .parse()
            .map_err(|_| SpecError(format!("size {s:?} (64..1518 or imix)")))?;
        if !(64..=1518).contains(&n) {
            return err(format!("size {n} outside 64..1518"));
        }
        Ok(SizeSpec::Fixed(n))
    }
}

impl fmt::Display for SizeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeSpec::Fixed(s) => write!(f, "{s}"),
            SizeSpec::Imix => f.write_str("imix"),
        }
    }
}

/// One flow's addresses and ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.src, self.dst) {
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                write!(f, "[{s}]:{} -> [{d}]:{}", self.sport, self.dport)
            }
            (s, d) => write!(f, "{s}:{} -> {d}:{}", self.sport, self.dport),
        }
    }
}

/// The traffic description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrafficSpec {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source addresses.
    pub src_ip: IpRange,
    /// Destination addresses.
    pub dst_ip: IpRange,
    /// Source ports.
    pub sport: PortRange,
    /// Destination ports.
    pub dport: PortRange,
    /// TCP or UDP.
    pub proto: Proto,
    /// Frame sizes.
    pub size: SizeSpec,
}

impl TrafficSpec {
    /// Checks families agree and the flow count fits 16 bits.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.src_ip.first.is_ipv4() != self.dst_ip.first.is_ipv4() {
            return err("source and destination addresses of different families");
        }
        let n = self.flow_count_u64();
        if n > MAX_FLOWS as u64 {
            return err(format!("{n} flows (at most {MAX_FLOWS})"));
        }
        Ok(())
    }

    fn flow_count_u64(&self) -> u64 {
        self.src_ip.count as u64
            * self.dst_ip.count as u64
            * self.sport.count() as u64
            * self.dport.count() as u64
    }

    /// Number of flows.
    pub fn flow_count(&self) -> usize {
        self.flow_count_u64() as usize
    }

    /// Flow number `id` (destination port varies fastest, then source port,
    /// destination address, source address).
    pub fn flow(&self, id: usize) -> Flow {
        let mut i = id as u64;
        let dp = (i % self.dport.count() as u64) as u16;
        i /= self.dport.count() as u64;
        let sp = (i % self.sport.count() as u64) as u16;
        i /= self.sport.count() as u64;
        let d = (i % self.dst_ip.count as u64) as u32;
        i /= self.dst_ip.count as u64;
        let s = (i % self.src_ip.count as u64) as u32;
        Flow {
            src: self.src_ip.nth(s),
            dst: self.dst_ip.nth(d),
            sport: self.sport.first + sp,
            dport: self.dport.first + dp,
        }
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], SpecError> {
    let mut m = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return err(format!("MAC address {s:?}"));
    }
    for (o, p) in m.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16).map_err(|_| SpecError(format!("MAC address {s:?}")))?;
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(src: &str, dst: &str, sp: &str, dp: &str) -> TrafficSpec {
        TrafficSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: src.parse().unwrap(),
            dst_ip: dst.parse().unwrap(),
            sport: sp.parse().unwrap(),
            dport: dp.parse().unwrap(),
            proto: Proto::Udp,
            size: SizeSpec::Fixed(64),
        }
    }

    #[test]
    fn ranges_parse() {
        let r: IpRange = "198.18.0.1-198.18.0.4".parse().unwrap();
        assert_eq!(r.count, 4);
        assert_eq!(r.nth(3).to_string(), "198.18.0.4");
        assert_eq!(r.nth(4).to_string(), "198.18.0.1", "wraps");
        assert_eq!(r.to_string(), "198.18.0.1-198.18.0.4");
        let r: IpRange = "2001:2::ff-2001:2::101".parse().unwrap();
        assert_eq!(r.count, 3);
        assert_eq!(r.nth(1).to_string(), "2001:2::100");
        let r: IpRange = "198.18.255.255-198.19.0.1".parse().unwrap();
        assert_eq!(
            (r.count, r.nth(1).to_string()),
            (3, "198.19.0.0".into()),
            "crosses octets"
        );
        assert!("198.18.0.4-198.18.0.1".parse::<IpRange>().is_err());
        assert!("198.18.0.1-2001:2::1".parse::<IpRange>().is_err());
        assert!(
            "198.18.0.0-198.19.255.255".parse::<IpRange>().is_err(),
            "more than 65536"
        );
        let p: PortRange = "1000-1003".parse().unwrap();
        assert_eq!((p.first, p.last, p.count()), (1000, 1003, 4));
        assert_eq!("7".parse::<PortRange>().unwrap().count(), 1);
        assert!("0".parse::<PortRange>().is_err());
        assert!("5-4".parse::<PortRange>().is_err());
        assert_eq!(
            parse_mac("02:aa:00:00:00:0f").unwrap(),
            [2, 0xaa, 0, 0, 0, 15]
        );
        assert!(parse_mac("02:aa:00:00:00").is_err());
    }

    #[test]
    fn flows_enumerate_the_product() {
        let s = spec(
            "198.18.0.1-198.18.0.2",
            "198.19.0.1-198.19.0.3",
            "1000-1001",
            "2000-2001",
        );
        s.validate().unwrap();
        assert_eq!(s.flow_count(), 2 * 3 * 2 * 2);
        let all: std::collections::HashSet<Flow> = (0..s.flow_count()).map(|i| s.flow(i)).collect();
        assert_eq!(all.len(), 24, "every flow distinct");
        assert_eq!(s.flow(0).to_string(), "198.18.0.1:1000 -> 198.19.0.1:2000");
        assert_eq!(s.flow(1).dport, 2001, "destination port fastest");
        assert_eq!(s.flow(23).to_string(), "198.18.0.2:1001 -> 198.19.0.3:2001");
        let big = spec(
            "198.18.0.0-198.18.1.255",
            "198.19.0.0-198.19.0.255",
            "1",
            "1",
        );
        assert!(big.validate().is_err(), "512 * 256 flows exceed 16 bits");
        let mixed = spec("198.18.0.1", "2001:2::1", "1", "1");
        assert!(mixed.validate().is_err());
    }

    #[test]
    fn imix_is_7_4_1() {
        let mut n = [0; 3];
        for k in 0..1200 {
            n[SizeSpec::Imix.pick(k)] += 1;
        }
        assert_eq!(n, [700, 400, 100]);
        assert!((SizeSpec::Imix.average() - 355.833).abs() < 0.01);
        assert_eq!("imix".parse::<SizeSpec>().unwrap(), SizeSpec::Imix);
        assert!("63".parse::<SizeSpec>().is_err() && "1519".parse::<SizeSpec>().is_err());
        assert_eq!("512".parse::<SizeSpec>().unwrap().sizes(), vec![512]);
    }
}
