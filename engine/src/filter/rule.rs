//! Filter rules: what they match, what they do, and their text form.
//!
//! The syntax follows nftables so that a rule reads at a glance:
//!
//! ```text
//! iif servers ip saddr 198.18.2.0/24 tcp flags syn / syn,ack drop
//! ip daddr 198.19.0.0/16 tcp dport 8000-8999 reject with tcp reset
//! ip6 saddr 2001:2:0:1::/64 icmpv6 type echo-request accept
//! ether saddr 02:00:00:00:00:01 drop
//! oif wan udp dport 53 reject
//! ct state established,related accept
//! iif lan ct state new accept
//! ```
//!
//! Selectors: `iif PORT`, `oif PORT`, `ether saddr|daddr MAC`, `ether type ip|ip6|arp|0xNNNN`,
//! `vlan id N`, `ip saddr|daddr PREFIX`, `ip6 saddr|daddr PREFIX`, `meta l4proto tcp|udp|icmp|icmpv6|N`,
//! `tcp|udp sport|dport N[-M]`, `tcp flags F[,F] [/ F[,F]]` (flags that must be set, under a mask:
//! `syn / syn,ack` is "SYN set and ACK clear"), `icmp|icmpv6 type NAME|N [code N]`,
//! `ct state STATE[,STATE]` or `ct state { STATE, STATE }` with STATE one of `new`,
//! `established`, `related`, `invalid` (connection tracking: `conntrack::track`; a rule set
//! with a `ct` rule makes the filter stateful).
//! Actions: `accept`, `drop`, `reject` (ICMP administratively prohibited),
//! `reject with tcp reset`, `reject with icmp admin-prohibited`.

use core::fmt;

use crate::l3::prefix::IpPrefix;
use crate::wire::Mac;

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Action {
    #[default]
    Accept,
    Drop,
    /// Drop and answer with ICMP (or ICMPv6) administratively prohibited.
    RejectIcmp,
    /// Drop and answer a TCP segment with RST (others as `RejectIcmp`).
    RejectTcpReset,
}

/// TCP flag bits as in the header's low byte.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn contains(&self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }
}

/// The conditions of a rule; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Match {
    pub iif: Option<u16>,
    pub oif: Option<u16>,
    pub src_mac: Option<Mac>,
    pub dst_mac: Option<Mac>,
    pub vlan: Option<u16>,
    pub ethertype: Option<u16>,
    pub src: Option<IpPrefix>,
    pub dst: Option<IpPrefix>,
    pub proto: Option<u8>,
    pub sport: Option<PortRange>,
    pub dport: Option<PortRange>,
    /// (value, mask): `flags & mask == value`.
    pub tcp_flags: Option<(u8, u8)>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    /// `ct state`: the packet's connection-tracking state is one of these bits.
    pub ct_state: Option<u8>,
}

/// A rule: conditions, action, and the text it was written as (for `show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub m: Match,
    pub action: Action,
    pub text: String,
}

/// The header fields a rule can look at, extracted once per packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Fields {
    pub iif: u16,
    pub oif: u16,
    pub src_mac: u64,
    pub dst_mac: u64,
    /// 0: untagged.
    pub vlan: u16,
    pub ethertype: u16,
    /// 4, 6, or 0 (not IP).
    pub family: u8,
    /// IPv4 addresses in the low 32 bits.
    pub src: u128,
    pub dst: u128,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// The packet's connection-tracking state (`conntrack::track::ct_state`
    /// bit; 0 when the filter is stateless).
    pub ct_state: u8,
}

pub fn mac_u64(m: &Mac) -> u64 {
    u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
}

fn prefix_bits(p: &IpPrefix) -> (u8, u128, u8) {
    match p {
        IpPrefix::V4(q) => (4, u128::from(q.bits()), q.len()),
        IpPrefix::V6(q) => (6, q.bits(), q.len()),
    }
}

/// Whether `a` (family `fam`, IPv4 in the low bits) lies in `p`.
pub fn prefix_contains(p: &IpPrefix, fam: u8, a: u128) -> bool {
    let (pf, bits, len) = prefix_bits(p);
    if pf != fam {
        return false;
    }
    let width = if fam == 4 { 32 } else { 128 };
    len == 0 || (a ^ bits) >> (width - u32::from(len)) == 0
}

impl Match {
    /// The reference semantics: does this rule match these fields?
    pub fn matches(&self, f: &Fields) -> bool {
        self.iif.is_none_or(|v| v == f.iif)
            && self.oif.is_none_or(|v| v == f.oif)
            && self.src_mac.is_none_or(|m| mac_u64(&m) == f.src_mac)
            && self.dst_mac.is_none_or(|m| mac_u64(&m) == f.dst_mac)
            && self.vlan.is_none_or(|v| v == f.vlan)
            && self.ethertype.is_none_or(|v| v == f.ethertype)
            && self
                .src
                .as_ref()
                .is_none_or(|p| prefix_contains(p, f.family, f.src))
            && self
                .dst
                .as_ref()
                .is_none_or(|p| prefix_contains(p, f.family, f.dst))
            && self.proto.is_none_or(|v| v == f.proto)
            && self.sport.is_none_or(|r| r.contains(f.sport))
            && self.dport.is_none_or(|r| r.contains(f.dport))
            && self.tcp_flags.is_none_or(|(v, m)| f.tcp_flags & m == v)
            && self.icmp_type.is_none_or(|v| v == f.icmp_type)
            && self.icmp_code.is_none_or(|v| v == f.icmp_code)
            && self.ct_state.is_none_or(|v| v & f.ct_state != 0)
    }

    /// Only a source prefix (and nothing else): such a drop rule can be
    /// pushed into the XDP program.
    pub fn is_src_prefix_only(&self) -> bool {
        self.src.is_some()
            && Match {
                src: None,
                ..self.clone()
            } == Match::default()
    }
}

const FLAG_NAMES: [(&str, u8); 8] = [
    ("fin", tcp_flags::FIN),
    ("syn", tcp_flags::SYN),
    ("rst", tcp_flags::RST),
    ("psh", tcp_flags::PSH),
    ("ack", tcp_flags::ACK),
    ("urg", tcp_flags::URG),
    ("ecn", tcp_flags::ECE),
    ("cwr", tcp_flags::CWR),
];

fn parse_flags(s: &str) -> Result<u8, String> {
    let mut v = 0;
    for name in s.split(',').filter(|x| !x.is_empty()) {
        let (_, bit) = FLAG_NAMES.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            format!("unknown TCP flag `{name}` (fin syn rst psh ack urg ecn cwr)")
        })?;
        v |= bit;
    }
    Ok(v)
}

fn parse_ports(s: &str) -> Result<PortRange, String> {
    let p = |x: &str| x.parse::<u16>().map_err(|_| format!("bad port `{x}`"));
    let r = match s.split_once('-') {
        Some((a, b)) => PortRange {
            lo: p(a)?,
            hi: p(b)?,
        },
        None => {
            let v = p(s)?;
            PortRange { lo: v, hi: v }
        }
    };
    if r.lo > r.hi {
        return Err(format!("empty port range `{s}`"));
    }
    Ok(r)
}

/// `ADDR[/LEN]`; host bits are cleared (`198.18.1.7/24` is `198.18.1.0/24`).
fn parse_prefix(s: &str) -> Result<IpPrefix, String> {
    let bad = || format!("bad prefix `{s}`");
    let (a, l) = s.split_once('/').unwrap_or((s, ""));
    let addr: std::net::IpAddr = a.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len: u8 = if l.is_empty() {
        max
    } else {
        l.parse().map_err(|_| bad())?
    };
    if len > max {
        return Err(bad());
    }
    Ok(match addr {
        std::net::IpAddr::V4(x) => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpPrefix::V4(
                crate::l3::prefix::Ipv4Prefix::from_bits(u32::from(x) & m, len).ok_or_else(bad)?,
            )
        }
        std::net::IpAddr::V6(x) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            IpPrefix::V6(
                crate::l3::prefix::Ipv6Prefix::from_bits(u128::from(x) & m, len).ok_or_else(bad)?,
            )
        }
    })
}

fn parse_mac(s: &str) -> Result<Mac, String> {
    crate::wire::parse_mac(s).ok_or_else(|| format!("bad MAC `{s}`"))
}

fn icmp_type(v6: bool, s: &str) -> Result<u8, String> {
    let named: &[(&str, u8)] = if v6 {
        &[
            ("destination-unreachable", 1),
            ("packet-too-big", 2),
            ("time-exceeded", 3),
            ("echo-request", 128),
            ("echo-reply", 129),
            ("nd-neighbor-solicit", 135),
            ("nd-neighbor-advert", 136),
        ]
    } else {
        &[
            ("echo-reply", 0),
            ("destination-unreachable", 3),
            ("redirect", 5),
            ("echo-request", 8),
            ("time-exceeded", 11),
            ("parameter-problem", 12),
        ]
    };
    if let Some((_, v)) = named.iter().find(|(n, _)| *n == s) {
        return Ok(*v);
    }
    s.parse().map_err(|_| format!("unknown ICMP type `{s}`"))
}

impl Rule {
    /// Parses a rule; `port` resolves port names for `iif`/`oif`.
    pub fn parse(text: &str, port: &dyn Fn(&str) -> Option<u16>) -> Result<Rule, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let mut m = Match::default();
        let mut i = 0;
        let mut action = None;
        let next = |i: &mut usize, what: &str| -> Result<&str, String> {
            *i += 1;
            words
                .get(*i)
                .copied()
                .ok_or_else(|| format!("`{what}` needs a value"))
        };
        let set_proto = |m: &mut Match, p: u8| -> Result<(), String> {
            match m.proto {
                Some(q) if q != p => Err("two different protocols".into()),
                _ => {
                    m.proto = Some(p);
                    Ok(())
                }
            }
        };
        while i < words.len() {
            let w = words[i];
            match w {
                "iif" | "oif" => {
                    let name = next(&mut i, w)?;
                    let idx = port(name).ok_or_else(|| format!("no port `{name}`"))?;
                    if w == "iif" {
                        m.iif = Some(idx);
                    } else {
                        m.oif = Some(idx);
                    }
                }
                "ether" => match next(&mut i, w)? {
                    "saddr" => m.src_mac = Some(parse_mac(next(&mut i, "ether saddr")?)?),
                    "daddr" => m.dst_mac = Some(parse_mac(next(&mut i, "ether daddr")?)?),
                    "type" => {
                        let t = next(&mut i, "ether type")?;
                        m.ethertype = Some(match t {
                            "ip" => 0x0800,
                            "ip6" => 0x86dd,
                            "arp" => 0x0806,
                            x => u16::from_str_radix(x.trim_start_matches("0x"), 16)
                                .map_err(|_| format!("bad ethertype `{x}`"))?,
                        });
                    }
                    x => return Err(format!("`ether {x}`: expected saddr, daddr or type")),
                },
                "vlan" => {
                    if next(&mut i, w)? != "id" {
                        return Err("expected `vlan id N`".into());
                    }
                    let v = next(&mut i, "vlan id")?;
                    m.vlan = Some(
                        v.parse()
                            .ok()
                            .filter(|v| (1..4095).contains(v))
                            .ok_or_else(|| format!("bad VLAN `{v}`"))?,
                    );
                }
                "ip" | "ip6" => {
                    let which = next(&mut i, w)?;
                    let p = parse_prefix(next(&mut i, which)?)?;
                    if matches!(p, IpPrefix::V4(_)) != (w == "ip") {
                        return Err(format!("`{w}` with a prefix of the other family"));
                    }
                    match which {
                        "saddr" => m.src = Some(p),
                        "daddr" => m.dst = Some(p),
                        x => return Err(format!("`{w} {x}`: expected saddr or daddr")),
                    }
                }
                "meta" => {
                    if next(&mut i, w)? != "l4proto" {
                        return Err("expected `meta l4proto P`".into());
                    }
                    let p = next(&mut i, "l4proto")?;
                    let v = match p {
                        "tcp" => 6,
                        "udp" => 17,
                        "icmp" => 1,
                        "icmpv6" => 58,
                        x => x
                            .parse::<u8>()
                            .ok()
                            .filter(|p| *p != 0)
                            .ok_or_else(|| format!("bad protocol `{x}`"))?,
                    };
                    set_proto(&mut m, v)?;
                }
                "tcp" | "udp" => {
                    set_proto(&mut m, if w == "tcp" { 6 } else { 17 })?;
                    let what = next(&mut i, w)?;
                    match what {
                        "sport" => m.sport = Some(parse_ports(next(&mut i, "sport")?)?),
                        "dport" => m.dport = Some(parse_ports(next(&mut i, "dport")?)?),
                        "flags" if w == "tcp" => {
                            let v = next(&mut i, "flags")?;
                            if v == "==" {
                                m.tcp_flags = Some((parse_flags(next(&mut i, "flags ==")?)?, 0xff));
                            } else {
                                let value = parse_flags(v)?;
                                let mut mask = value;
                                if words.get(i + 1) == Some(&"/") {
                                    i += 1;
                                    mask = parse_flags(next(&mut i, "flags /")?)?;
                                }
                                if value & !mask != 0 {
                                    return Err("flags outside their mask can never match".into());
                                }
                                m.tcp_flags = Some((value, mask));
                            }
                        }
                        x => {
                            return Err(format!(
                                "`{w} {x}`: expected sport, dport{}",
                                if w == "tcp" { " or flags" } else { "" }
                            ))
                        }
                    }
                }
                "icmp" | "icmpv6" => {
                    let v6 = w == "icmpv6";
                    set_proto(&mut m, if v6 { 58 } else { 1 })?;
                    if next(&mut i, w)? != "type" {
                        return Err(format!("expected `{w} type T`"));
                    }
                    m.icmp_type = Some(icmp_type(v6, next(&mut i, "type")?)?);
                    if words.get(i + 1) == Some(&"code") {
                        i += 1;
                        let c = next(&mut i, "code")?;
                        m.icmp_code = Some(c.parse().map_err(|_| format!("bad ICMP code `{c}`"))?);
                    }
                }
                "ct" => {
                    if next(&mut i, w)? != "state" {
                        return Err("expected `ct state STATE[,STATE]`".into());
                    }
                    let mut list = next(&mut i, "ct state")?.to_string();
                    if list.starts_with('{') {
                        while !list.ends_with('}') {
                            list.push_str(next(&mut i, "ct state {")?);
                        }
                    }
                    let mut bits = 0u8;
                    for name in list
                        .trim_start_matches('{')
                        .trim_end_matches('}')
                        .split(',')
                        .map(str::trim)
                        .filter(|x| !x.is_empty())
                    {
                        bits |=
                            crate::conntrack::track::ct_state::parse(name).ok_or_else(|| {
                                format!(
                                    "unknown ct state `{name}` (new established related invalid)"
                                )
                            })?;
                    }
                    if bits == 0 {
                        return Err("`ct state` needs a state".into());
                    }
                    m.ct_state = Some(m.ct_state.unwrap_or(0xff) & bits);
                }
                "accept" | "drop" | "reject" => {
                    let a = match w {
                        "accept" => Action::Accept,
                        "drop" => Action::Drop,
                        _ => {
                            if words.get(i + 1) == Some(&"with") {
                                i += 1;
                                match (next(&mut i, "with")?, words.get(i + 1).copied()) {
                                    ("tcp", Some("reset")) => {
                                        i += 1;
                                        Action::RejectTcpReset
                                    }
                                    ("icmp" | "icmpv6", Some("admin-prohibited")) => {
                                        i += 1;
                                        Action::RejectIcmp
                                    }
                                    (x, _) => return Err(format!("`reject with {x}`: expected `tcp reset` or `icmp admin-prohibited`")),
                                }
                            } else {
                                Action::RejectIcmp
                            }
                        }
                    };
                    if i + 1 != words.len() {
                        return Err(format!("`{}` after the action", words[i + 1..].join(" ")));
                    }
                    action = Some(a);
                }
                x => return Err(format!("unknown selector `{x}`")),
            }
            i += 1;
        }
        if (m.sport.is_some() || m.dport.is_some() || m.tcp_flags.is_some())
            && !matches!(m.proto, Some(6 | 17))
        {
            return Err("ports and flags need tcp or udp".into());
        }
        let action = action.ok_or("a rule ends with accept, drop or reject")?;
        Ok(Rule {
            m,
            action,
            text: words.join(" "),
        })
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(n: &str) -> Option<u16> {
        ["lan", "wan", "servers"]
            .iter()
            .position(|p| *p == n)
            .map(|i| i as u16)
    }

    fn parse(s: &str) -> Result<Rule, String> {
        Rule::parse(s, &port)
    }

    #[test]
    fn parses_the_documented_forms() {
        let r = parse("iif servers ip saddr 198.18.2.0/24 tcp flags syn / syn,ack drop").unwrap();
        assert_eq!(r.m.iif, Some(2));
        assert_eq!(r.m.proto, Some(6));
        assert_eq!(
            r.m.tcp_flags,
            Some((tcp_flags::SYN, tcp_flags::SYN | tcp_flags::ACK))
        );
        assert_eq!(r.action, Action::Drop);
        let r = parse("ip daddr 198.19.0.0/16 tcp dport 8000-8999 reject with tcp reset").unwrap();
        assert_eq!(r.m.dport, Some(PortRange { lo: 8000, hi: 8999 }));
        assert_eq!(r.action, Action::RejectTcpReset);
        let r = parse("ip6 saddr 2001:2:0:1::/64 icmpv6 type echo-request accept").unwrap();
        assert_eq!((r.m.proto, r.m.icmp_type), (Some(58), Some(128)));
        let r = parse("ether saddr 02:00:00:00:00:01 vlan id 10 ether type ip drop").unwrap();
        assert_eq!(r.m.vlan, Some(10));
        assert_eq!(
            parse("oif wan udp dport 53 reject").unwrap().action,
            Action::RejectIcmp
        );
        assert_eq!(
            parse("icmp type 3 code 4 accept").unwrap().m.icmp_code,
            Some(4)
        );
        assert_eq!(
            parse("tcp flags == syn accept").unwrap().m.tcp_flags,
            Some((2, 0xff))
        );
        assert!(parse("ip saddr 198.18.0.0/15 drop")
            .unwrap()
            .m
            .is_src_prefix_only());
        use crate::conntrack::track::ct_state::{ESTABLISHED, NEW, RELATED};
        assert_eq!(
            parse("ct state established,related accept")
                .unwrap()
                .m
                .ct_state,
            Some(ESTABLISHED | RELATED)
        );
        assert_eq!(
            parse("ct state { established, related } accept")
                .unwrap()
                .m
                .ct_state,
            Some(ESTABLISHED | RELATED)
        );
        assert_eq!(
            parse("ct state {new} accept").unwrap().m.ct_state,
            Some(NEW)
        );
        let r = parse("iif lan ct state new tcp dport 22 accept").unwrap();
        assert_eq!(
            (r.m.iif, r.m.ct_state, r.m.proto),
            (Some(0), Some(NEW), Some(6))
        );
        assert!(
            !parse("ip saddr 198.18.0.0/15 ct state invalid drop")
                .unwrap()
                .m
                .is_src_prefix_only(),
            "not for XDP"
        );
        assert!(!parse("iif lan ip saddr 198.18.0.0/15 drop")
            .unwrap()
            .m
            .is_src_prefix_only());
    }

    #[test]
    fn refuses_bad_rules_with_a_reason() {
        for (bad, why) in [
            ("iif nope drop", "no port"),
            ("ip saddr 2001:2::/48 drop", "other family"),
            ("tcp dport 9-1 drop", "empty port range"),
            ("tcp flags syn / ack drop", "never match"),
            ("tcp dport 80", "ends with"),
            ("tcp dport 80 drop now", "after the action"),
            ("udp flags syn drop", "expected sport"),
            ("frob drop", "unknown selector"),
            ("tcp dport 80 udp sport 1 drop", "two different protocols"),
            ("vlan id 5000 drop", "bad VLAN"),
            ("ct state bogus drop", "unknown ct state"),
            ("ct status new drop", "ct state"),
            ("ct state drop", "unknown ct state"),
            ("ct state { new accept", "needs a value"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn reference_semantics() {
        let r = parse("ip saddr 198.18.2.0/24 tcp flags syn / syn,ack drop").unwrap();
        let mut f = Fields {
            family: 4,
            src: u128::from(0xc612_0205u32),
            proto: 6,
            tcp_flags: tcp_flags::SYN,
            ..Fields::default()
        };
        assert!(r.m.matches(&f));
        f.tcp_flags = tcp_flags::SYN | tcp_flags::ACK;
        assert!(!r.m.matches(&f), "SYN-ACK passes");
        f.tcp_flags = tcp_flags::SYN;
        f.src = u128::from(0xc612_0305u32);
        assert!(!r.m.matches(&f));
        f.family = 6;
        f.src = u128::from(0xc612_0205u32);
        assert!(!r.m.matches(&f), "an IPv4 prefix never matches IPv6");
    }
}
