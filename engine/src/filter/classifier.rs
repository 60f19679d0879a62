//! The rule classifier: tuple space search (Srinivasan, Suri, Varghese 1999).
//!
//! Every rule becomes a (mask, value) pair over the packed header fields:
//! prefixes are masks, exact fields (an exact port included) are all-ones
//! masks, absent fields are zero masks. Port *ranges*, TCP flags and `ct
//! state` are not in the key: they are checked after the hash hit (expanding ranges into
//! aligned blocks multiplies the masks, and the masks are what a lookup
//! pays for). Rules with the same mask form a *tuple*, one hash table keyed
//! by the masked fields, holding the rules with that key in rule order. A lookup masks the packet's fields once per
//! tuple and probes that tuple's table; tuples are visited in the order of
//! the best rule they hold, so the walk stops as soon as no later tuple can
//! beat the match found. The cost depends on the number of distinct masks,
//! not on the number of rules: 10 or 10,000 rules of the same shapes cost the
//! same (bench `filter`).

use super::rule::{mac_u64, Fields, Match, PortRange, Rule};
use crate::hashing::FlowHashMap;
use crate::l3::prefix::IpPrefix;

/// The fields a tuple hashes, packed into 64 bytes; masked by AND.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
struct Key {
    src: u128,
    dst: u128,
    /// iif | oif << 16 | ethertype << 32 | vlan << 48
    ports_l2: u64,
    /// family | proto << 8 | icmp type << 16 | icmp code << 24 | sport << 32 | dport << 48
    l34: u64,
    smac: u64,
    dmac: u64,
}

impl Key {
    #[inline]
    fn of(f: &Fields) -> Key {
        Key {
            src: f.src,
            dst: f.dst,
            ports_l2: u64::from(f.iif)
                | u64::from(f.oif) << 16
                | u64::from(f.ethertype) << 32
                | u64::from(f.vlan) << 48,
            l34: u64::from(f.family)
                | u64::from(f.proto) << 8
                | u64::from(f.icmp_type) << 16
                | u64::from(f.icmp_code) << 24
                | u64::from(f.sport) << 32
                | u64::from(f.dport) << 48,
            smac: f.src_mac,
            dmac: f.dst_mac,
        }
    }

    #[inline]
    fn and(&self, m: &Key) -> Key {
        Key {
            src: self.src & m.src,
            dst: self.dst & m.dst,
            ports_l2: self.ports_l2 & m.ports_l2,
            l34: self.l34 & m.l34,
            smac: self.smac & m.smac,
            dmac: self.dmac & m.dmac,
        }
    }
}

/// What a rule checks after its tuple's hash hit: port ranges (an exact
/// port is part of the key instead) and TCP flags under their mask.
#[derive(Debug, Clone, Copy)]
struct Residual {
    rule: u32,
    sport: Option<PortRange>,
    dport: Option<PortRange>,
    flags: Option<(u8, u8)>,
    /// `ct state` bits (the packet's state must be one of them).
    ct: Option<u8>,
}

impl Residual {
    #[inline]
    fn matches(&self, f: &Fields) -> bool {
        self.sport.is_none_or(|r| r.contains(f.sport))
            && self.dport.is_none_or(|r| r.contains(f.dport))
            && self.flags.is_none_or(|(v, m)| f.tcp_flags & m == v)
            && self.ct.is_none_or(|c| c & f.ct_state != 0)
    }
}

fn prefix_mask(p: &Option<IpPrefix>) -> (u8, u128, u128) {
    match p {
        None => (0, 0, 0),
        Some(IpPrefix::V4(q)) => {
            let m = if q.len() == 0 {
                0
            } else {
                u128::from(u32::MAX << (32 - q.len()))
            };
            (4, u128::from(q.bits()) & m, m)
        }
        Some(IpPrefix::V6(q)) => {
            let m = if q.len() == 0 {
                0
            } else {
                u128::MAX << (128 - q.len())
            };
            (6, q.bits() & m, m)
        }
    }
}

fn opt<T: Copy + Default>(v: Option<T>, all: T) -> (T, T) {
    match v {
        Some(x) => (x, all),
        None => (T::default(), T::default()),
    }
}

/// A port range: an exact port goes into the key, a real range is residual.
fn split_ports(r: Option<PortRange>) -> (u16, u16, Option<PortRange>) {
    match r {
        Some(r) if r.lo == r.hi => (r.lo, u16::MAX, None),
        Some(r) if r.lo == 0 && r.hi == u16::MAX => (0, 0, None),
        other => (0, 0, other),
    }
}

/// One rule as (mask, masked value, residual checks); None if it can never match.
fn entry(m: &Match, rule: u32) -> Option<(Key, Key, Residual)> {
    let (sf, sv, sm) = prefix_mask(&m.src);
    let (df, dv, dm) = prefix_mask(&m.dst);
    if sf != 0 && df != 0 && sf != df {
        return None; // an IPv4 and an IPv6 prefix: matches nothing
    }
    let fam = sf.max(df);
    let (iif, iif_m) = opt(m.iif, u16::MAX);
    let (oif, oif_m) = opt(m.oif, u16::MAX);
    let (smac, smac_m) = opt(m.src_mac.map(|x| mac_u64(&x)), u64::MAX);
    let (dmac, dmac_m) = opt(m.dst_mac.map(|x| mac_u64(&x)), u64::MAX);
    let (vlan, vlan_m) = opt(m.vlan, u16::MAX);
    let (et, et_m) = opt(m.ethertype, u16::MAX);
    let (proto, proto_m) = opt(m.proto, u8::MAX);
    let (it, it_m) = opt(m.icmp_type, u8::MAX);
    let (ic, ic_m) = opt(m.icmp_code, u8::MAX);
    let (sp, sp_m, sres) = split_ports(m.sport);
    let (dp, dp_m, dres) = split_ports(m.dport);
    let value = Fields {
        iif,
        oif,
        src_mac: smac,
        dst_mac: dmac,
        vlan,
        ethertype: et,
        family: fam,
        src: sv,
        dst: dv,
        proto,
        sport: sp,
        dport: dp,
        tcp_flags: 0,
        icmp_type: it,
        icmp_code: ic,
        ct_state: 0,
    };
    let mask = Fields {
        iif: iif_m,
        oif: oif_m,
        src_mac: smac_m,
        dst_mac: dmac_m,
        vlan: vlan_m,
        ethertype: et_m,
        family: if fam != 0 { u8::MAX } else { 0 },
        src: sm,
        dst: dm,
        proto: proto_m,
        sport: sp_m,
        dport: dp_m,
        tcp_flags: 0,
        icmp_type: it_m,
        icmp_code: ic_m,
        ct_state: 0,
    };
    let mask = Key::of(&mask);
    Some((
        mask,
        Key::of(&value).and(&mask),
        Residual {
            rule,
            sport: sres,
            dport: dres,
            flags: m.tcp_flags,
            ct: m.ct_state,
        },
    ))
}

#[derive(Debug)]
struct Tuple {
    mask: Key,
    /// Rules of this shape by masked key, in rule order. Built from
    /// configuration but probed with keys from packets: keyed (a fresh
    /// seed per build, see [`crate::hashing`]), so lookups cannot be aimed
    /// at one long probe chain.
    table: FlowHashMap<Key, Vec<Residual>>,
    /// The lowest rule index in the table.
    best: u32,
}

/// Rules compiled for lookup. Immutable; rebuilt and republished on change.
#[derive(Debug, Default)]
pub struct Classifier {
    tuples: Vec<Tuple>,
    rules: usize,
}

impl Classifier {
    /// Compiles rules (first match wins: rule 0 beats rule 1).
    pub fn build(rules: &[Rule]) -> Classifier {
        let seed = crate::hashing::seeded();
        let mut by_mask: FlowHashMap<Key, Tuple> = FlowHashMap::with_hasher(seed);
        for (i, r) in rules.iter().enumerate() {
            let i = i as u32;
            if let Some((mask, value, res)) = entry(&r.m, i) {
                let t = by_mask.entry(mask).or_insert_with(|| Tuple {
                    mask,
                    table: FlowHashMap::with_hasher(seed),
                    best: u32::MAX,
                });
                // Rules arrive in order: each list stays sorted by rule index.
                t.table.entry(value).or_default().push(res);
                t.best = t.best.min(i);
            }
        }
        let mut tuples: Vec<Tuple> = by_mask.into_values().collect();
        tuples.sort_by_key(|t| t.best);
        Classifier {
            tuples,
            rules: rules.len(),
        }
    }

    /// The index of the first rule matching `f`.
    #[inline]
    pub fn lookup(&self, f: &Fields) -> Option<u32> {
        let mut best = u32::MAX;
        let key = Key::of(f);
        for t in &self.tuples {
            if t.best >= best {
                break;
            }
            if let Some(list) = t.table.get(&key.and(&t.mask)) {
                for r in list {
                    if r.rule >= best {
                        break;
                    }
                    if r.matches(f) {
                        best = r.rule;
                        break;
                    }
                }
            }
        }
        (best != u32::MAX).then_some(best)
    }

    pub fn is_empty(&self) -> bool {
        self.rules == 0
    }

    /// Distinct masks: what a lookup's cost grows with.
    pub fn tuples(&self) -> usize {
        self.tuples.len()
    }
}

/// The reference: a linear first-match walk.
pub fn linear(rules: &[Rule], f: &Fields) -> Option<u32> {
    rules.iter().position(|r| r.m.matches(f)).map(|i| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::rule::{tcp_flags, Action};
    use proptest::prelude::*;

    fn rule(text: &str) -> Rule {
        Rule::parse(text, &|n| {
            ["lan", "wan", "dmz"]
                .iter()
                .position(|p| *p == n)
                .map(|i| i as u16)
        })
        .unwrap()
    }

    #[test]
    fn first_match_wins_across_tuples() {
        let rules = vec![
            rule("ip saddr 198.18.2.0/24 tcp flags syn / syn,ack drop"),
            rule("ip saddr 198.18.0.0/15 accept"),
            rule("tcp dport 80 drop"),
        ];
        let c = Classifier::build(&rules);
        let f = |src: u32, dport: u16, flags: u8| Fields {
            family: 4,
            src: u128::from(src),
            proto: 6,
            dport,
            tcp_flags: flags,
            ..Fields::default()
        };
        assert_eq!(c.lookup(&f(0xc612_0201, 80, tcp_flags::SYN)), Some(0));
        assert_eq!(
            c.lookup(&f(0xc612_0201, 80, tcp_flags::SYN | tcp_flags::ACK)),
            Some(1)
        );
        assert_eq!(c.lookup(&f(0x0a00_0001, 80, 0)), Some(2));
        assert_eq!(c.lookup(&f(0x0a00_0001, 81, 0)), None);
        assert_eq!(rules[0].action, Action::Drop);
    }

    fn arb_rule() -> impl Strategy<Value = String> {
        let src = prop_oneof![
            Just(String::new()),
            (0u8..4, 0u8..=32).prop_map(|(a, l)| format!("ip saddr 198.{}.{a}.0/{l} ", 18 + a % 2))
        ];
        let dst = prop_oneof![
            Just(String::new()),
            (0u8..4, 8u8..=32).prop_map(|(a, l)| format!("ip daddr 198.19.{a}.1/{l} "))
        ];
        let l4 = prop_oneof![
            Just(String::new()),
            (0u16..8, 0u16..8).prop_map(|(a, b)| format!(
                "tcp dport {}-{} ",
                78 + a.min(b),
                78 + a.max(b)
            )),
            (0u16..4).prop_map(|a| format!("udp sport {} ", 50 + a)),
            Just("tcp flags syn / syn,ack ".to_string()),
            Just("icmp type echo-request ".to_string()),
        ];
        let port = prop_oneof![
            Just(String::new()),
            Just("iif lan ".to_string()),
            Just("oif wan ".to_string())
        ];
        let ct = prop_oneof![
            3 => Just(String::new()),
            1 => Just("ct state new ".to_string()),
            1 => Just("ct state established,related ".to_string()),
            1 => Just("ct state invalid ".to_string()),
        ];
        let act = prop_oneof![Just("accept"), Just("drop")];
        (port, ct, src, dst, l4, act).prop_map(|(p, c, s, d, l, a)| format!("{p}{c}{s}{d}{l}{a}"))
    }

    fn arb_fields() -> impl Strategy<Value = Fields> {
        let ct = prop_oneof![Just(1u8), Just(2), Just(4), Just(8)];
        (
            (
                0u16..3,
                0u16..3,
                0u32..8,
                0u32..512,
                prop_oneof![Just(1u8), Just(6), Just(17)],
                76u16..90,
                48u16..56,
                any::<u8>(),
                prop_oneof![Just(0u8), Just(8)],
            ),
            ct,
        )
            .prop_map(
                |((iif, oif, s, d, proto, dport, sport, flags, it), ct_state)| Fields {
                    iif,
                    oif,
                    family: 4,
                    ethertype: 0x0800,
                    src: u128::from(0xc612_0000u32 | (s << 16) | s),
                    dst: u128::from(0xc613_0000u32 | d),
                    proto,
                    sport: if proto == 1 { 0 } else { sport },
                    dport: if proto == 1 { 0 } else { dport },
                    tcp_flags: if proto == 6 { flags } else { 0 },
                    icmp_type: if proto == 1 { it } else { 0 },
                    ct_state,
                    ..Fields::default()
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        /// The classifier gives the linear walk's answer on random rule sets and packets.
        #[test]
        fn same_verdict_as_linear_first_match(texts in proptest::collection::vec(arb_rule(), 1..60), pkts in proptest::collection::vec(arb_fields(), 1..50)) {
            let rules: Vec<Rule> = texts.iter().map(|t| rule(t)).collect();
            let c = Classifier::build(&rules);
            for f in &pkts {
                prop_assert_eq!(c.lookup(f), linear(&rules, f), "packet {:?}", f);
            }
        }
    }
}
