//! The packet filter: an ordered rule list, first match wins, with a default
//! policy per ingress port, applied to every packet the router forwards
//! (after the route lookup, so `oif` is known, before the TTL changes).
//!
//! - [`rule`]: what a rule matches and does; its nftables-like syntax.
//! - [`classifier`]: tuple space search over the rules (cost flat in the rule count).
//! - [`stage`]: the forward hook (accept, drop, reject with ICMP or a TCP RST
//!   built by `context::reject`).
//! - [`conn`]: the stateful filter: connection tracking for `ct state` rules
//!   on the NAT's connection table (`conntrack`).
//!
//! The control thread owns the rule list; it compiles a [`Filter`] and
//! publishes it (arc-swap) on every change. Hit counters are relaxed atomics
//! in the published filter, carried over to the next one by rule text.
//! Leading rules that match only a source prefix and drop are also written
//! into the XDP program's blocklist, so those packets never reach a worker.

pub mod classifier;
pub mod config;
pub mod conn;
pub mod rule;
pub mod stage;

#[cfg(test)]
mod pipeline_tests;

use std::sync::atomic::{AtomicU64, Ordering};

use classifier::Classifier;
use rule::{mac_u64, Action, Fields, Rule};

use crate::l3::prefix::IpPrefix;

/// A compiled rule set, as the workers see it.
#[derive(Debug, Default)]
pub struct Filter {
    pub rules: Vec<Rule>,
    classifier: Classifier,
    /// Packets that matched each rule (all workers).
    pub hits: Vec<AtomicU64>,
    /// Default policy for packets entering each port (index = port); ports
    /// beyond the list use `default`.
    pub policy: Vec<Action>,
    pub default: Action,
    /// Packets the default policy decided.
    pub default_hits: AtomicU64,
    /// Some rule matches `ct state`: packets are tracked (`conn`).
    stateful: bool,
}

impl Filter {
    pub fn new(rules: Vec<Rule>, default: Action, policy: Vec<Action>) -> Filter {
        let classifier = Classifier::build(&rules);
        let hits = rules.iter().map(|_| AtomicU64::new(0)).collect();
        let stateful = rules.iter().any(|r| r.m.ct_state.is_some());
        Filter {
            rules,
            classifier,
            hits,
            policy,
            default,
            default_hits: AtomicU64::new(0),
            stateful,
        }
    }

    /// Some rule matches `ct state`: every forwarded packet is tracked.
    #[inline]
    pub fn is_stateful(&self) -> bool {
        self.stateful
    }

    /// Copies hit counts of rules with the same text from `old`.
    pub fn carry_hits(&self, old: &Filter) {
        for (r, h) in self.rules.iter().zip(&self.hits) {
            if let Some(i) = old.rules.iter().position(|o| o.text == r.text) {
                h.store(old.hits[i].load(Ordering::Relaxed), Ordering::Relaxed);
            }
        }
        self.default_hits
            .store(old.default_hits.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Nothing to check: no rules and accept by default everywhere.
    #[inline]
    pub fn is_pass_all(&self) -> bool {
        self.classifier.is_empty()
            && self.default == Action::Accept
            && self.policy.iter().all(|a| *a == Action::Accept)
    }

    /// The verdict for a packet's fields, counting the hit.
    #[inline]
    pub fn decide(&self, f: &Fields) -> Action {
        match self.classifier.lookup(f) {
            Some(i) => {
                if let Some(h) = self.hits.get(i as usize) {
                    h.fetch_add(1, Ordering::Relaxed);
                }
                self.rules
                    .get(i as usize)
                    .map_or(Action::Accept, |r| r.action)
            }
            None => {
                self.default_hits.fetch_add(1, Ordering::Relaxed);
                self.policy
                    .get(usize::from(f.iif))
                    .copied()
                    .unwrap_or(self.default)
            }
        }
    }

    /// Source prefixes the XDP program can drop for us: the leading run of
    /// rules that match only a source prefix and drop (a later such rule
    /// could be shadowed by an earlier accept, so the run stops at the first
    /// other rule).
    pub fn xdp_drops(&self) -> Vec<IpPrefix> {
        self.rules
            .iter()
            .take_while(|r| r.action == Action::Drop && r.m.is_src_prefix_only())
            .filter_map(|r| r.m.src)
            .collect()
    }
}

/// Reads the fields a rule can test from an Ethernet frame (IPv4 or IPv6 at
/// offset 14, no VLAN on routed ports). Never panics; missing layers read as 0.
#[inline]
pub fn fields(frame: &[u8], iif: u16, oif: u16) -> Fields {
    let mut f = Fields {
        iif,
        oif,
        ..Fields::default()
    };
    if frame.len() < 14 {
        return f;
    }
    f.dst_mac = mac_u64(&[frame[0], frame[1], frame[2], frame[3], frame[4], frame[5]]);
    f.src_mac = mac_u64(&[frame[6], frame[7], frame[8], frame[9], frame[10], frame[11]]);
    f.ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let ip = &frame[14..];
    let l4: &[u8] = match f.ethertype {
        0x0800 if ip.len() >= 20 => {
            f.family = 4;
            f.src = u128::from(u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]));
            f.dst = u128::from(u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]));
            f.proto = ip[9];
            let hl = usize::from(ip[0] & 0x0f) * 4;
            let first = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff == 0;
            if first {
                ip.get(hl..).unwrap_or(&[])
            } else {
                &[]
            }
        }
        0x86dd if ip.len() >= 40 => {
            f.family = 6;
            let mut a = [0u8; 16];
            a.copy_from_slice(&ip[8..24]);
            f.src = u128::from_be_bytes(a);
            a.copy_from_slice(&ip[24..40]);
            f.dst = u128::from_be_bytes(a);
            match crate::wire::ipv6::Ipv6Packet::new_checked(ip).and_then(|p| p.ext_headers()) {
                Ok(e) if !e.is_non_first_fragment() => {
                    f.proto = u8::from(e.upper_protocol);
                    ip.get(e.upper_offset..).unwrap_or(&[])
                }
                Ok(e) => {
                    f.proto = u8::from(e.upper_protocol);
                    &[]
                }
                Err(_) => &[],
            }
        }
        _ => &[],
    };
    match f.proto {
        6 | 17 if l4.len() >= 4 => {
            f.sport = u16::from_be_bytes([l4[0], l4[1]]);
            f.dport = u16::from_be_bytes([l4[2], l4[3]]);
            if f.proto == 6 {
                f.tcp_flags = l4.get(13).copied().unwrap_or(0);
            }
        }
        1 | 58 if l4.len() >= 2 => {
            f.icmp_type = l4[0];
            f.icmp_code = l4[1];
        }
        _ => {}
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_a_tcp_syn() {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&[8, 0]);
        f[14] = 0x45;
        f[14 + 9] = 6;
        f[14 + 12..14 + 16].copy_from_slice(&[198, 18, 2, 5]);
        f[14 + 16..14 + 20].copy_from_slice(&[198, 19, 1, 2]);
        f[34..36].copy_from_slice(&40000u16.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        f[34 + 13] = 0x02;
        let x = fields(&f, 2, 1);
        assert_eq!(
            (x.family, x.proto, x.sport, x.dport, x.tcp_flags),
            (4, 6, 40000, 80, 2)
        );
        assert_eq!(x.src, u128::from(0xc612_0205u32));
        assert_eq!(x.src_mac, 0x0200_0000_0002);
        // Later fragments carry no ports.
        f[14 + 6] = 0x00;
        f[14 + 7] = 0x10;
        assert_eq!(fields(&f, 2, 1).dport, 0);
        // Never panics on short input.
        for n in 0..f.len() {
            let _ = fields(&f[..n], 0, 0);
        }
    }

    #[test]
    fn decide_counts_and_falls_back_to_the_port_policy() {
        let port = |n: &str| {
            ["lan", "wan"]
                .iter()
                .position(|p| *p == n)
                .map(|i| i as u16)
        };
        let rules = vec![
            Rule::parse("tcp dport 22 drop", &port).unwrap(),
            Rule::parse("ip saddr 198.18.0.0/16 drop", &port).unwrap(),
        ];
        let flt = Filter::new(rules, Action::Accept, vec![Action::Accept, Action::Drop]);
        let f = Fields {
            family: 4,
            proto: 6,
            dport: 22,
            ..Fields::default()
        };
        assert_eq!(flt.decide(&f), Action::Drop);
        assert_eq!(flt.hits[0].load(Ordering::Relaxed), 1);
        let g = Fields {
            family: 4,
            proto: 6,
            dport: 80,
            iif: 1,
            src: u128::from(0xc613_0001u32),
            ..Fields::default()
        };
        assert_eq!(flt.decide(&g), Action::Drop, "wan's policy");
        let h = Fields { iif: 0, ..g };
        assert_eq!(flt.decide(&h), Action::Accept);
        assert_eq!(flt.default_hits.load(Ordering::Relaxed), 2);
        // Only the second rule is a source-prefix drop, but the first is not: nothing is pushed down.
        assert!(flt.xdp_drops().is_empty());
        let f2 = Filter::new(
            vec![Rule::parse("ip saddr 198.18.0.0/16 drop", &port).unwrap()],
            Action::Accept,
            vec![],
        );
        assert_eq!(f2.xdp_drops().len(), 1);
    }
}
