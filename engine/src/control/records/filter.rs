//! `ctl filter show`: one record per rule, in order, with its hit counter;
//! the default policies in the summary (in text, the last line).

use std::fmt;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use crate::filter::rule::Action;
use crate::filter::Filter;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRuleRecord {
    /// Its position: `ctl filter del INDEX`, `ctl filter add --at INDEX`.
    pub index: usize,
    /// The rule as written (`iif lan tcp dport 25 drop`).
    pub rule: String,
    #[serde(with = "super::values::action")]
    pub action: Action,
    /// Packets it decided, all workers.
    pub hits: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterSummary {
    pub rules: usize,
    /// For packets no rule matches, entering a port without a policy of its own.
    #[serde(with = "super::values::action")]
    pub default_policy: Action,
    /// Each port's policy for packets no rule matches.
    pub port_policies: Vec<PortPolicy>,
    /// Packets a policy decided (no rule matched).
    pub default_hits: u64,
    /// The stateful filter's packets by connection state and the
    /// connections tracked; null when the engine tracks no connections.
    pub conntrack: Option<CtStateHits>,
}

/// Packets the `ct state` stage classified, all workers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtStateHits {
    pub new: u64,
    pub established: u64,
    pub related: u64,
    pub invalid: u64,
    /// Entries of all workers' connection tables (NAT sessions included).
    pub tracked: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortPolicy {
    pub port: String,
    #[serde(with = "super::values::action")]
    pub policy: Action,
}

impl FilterRuleRecord {
    /// The rules of a published filter and its summary; `port_name` names port indices.
    pub fn all(
        f: &Filter,
        port_name: impl Fn(usize) -> String,
    ) -> (Vec<FilterRuleRecord>, FilterSummary) {
        let rules = f
            .rules
            .iter()
            .zip(&f.hits)
            .enumerate()
            .map(|(index, (r, h))| FilterRuleRecord {
                index,
                rule: r.text.clone(),
                action: r.action,
                hits: h.load(Ordering::Relaxed),
            })
            .collect::<Vec<_>>();
        let summary = FilterSummary {
            rules: rules.len(),
            default_policy: f.default,
            port_policies: f
                .policy
                .iter()
                .enumerate()
                .map(|(i, a)| PortPolicy {
                    port: port_name(i),
                    policy: *a,
                })
                .collect(),
            default_hits: f.default_hits.load(Ordering::Relaxed),
            conntrack: None,
        };
        (rules, summary)
    }
}

/// `   0  iif lan tcp dport 25 drop                                   hits 3`.
impl fmt::Display for FilterRuleRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>4}  {:<60} hits {}", self.index, self.rule, self.hits)
    }
}

/// `      ct state hits: new 3 established 120 related 0 invalid 1; 2 connections tracked`.
impl fmt::Display for CtStateHits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "      ct state hits: new {} established {} related {} invalid {}; {} connections tracked",
            self.new, self.established, self.related, self.invalid, self.tracked
        )
    }
}

/// `      default Accept, per-port [Accept, Drop]; hits 12` (the policy line; the
/// ct line is [`CtStateHits`]').
impl fmt::Display for FilterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_port: Vec<Action> = self.port_policies.iter().map(|p| p.policy).collect();
        write!(
            f,
            "      default {:?}, per-port {:?}; hits {}",
            self.default_policy, per_port, self.default_hits
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::rule::Rule;

    /// The rows as `ctl filter show` printed them before there were records.
    fn old_rows(f: &Filter) -> Vec<String> {
        let mut rows: Vec<String> = f
            .rules
            .iter()
            .zip(&f.hits)
            .enumerate()
            .map(|(i, (r, h))| format!("{i:>4}  {:<60} hits {}", r.text, h.load(Ordering::Relaxed)))
            .collect();
        rows.push(format!(
            "      default {:?}, per-port {:?}; hits {}",
            f.default,
            f.policy,
            f.default_hits.load(Ordering::Relaxed)
        ));
        rows
    }

    #[test]
    fn text_as_before_and_json_round_trip() {
        let port = |n: &str| {
            ["lan", "wan"]
                .iter()
                .position(|p| *p == n)
                .map(|i| i as u16)
        };
        let rules = [
            "iif lan ip saddr 198.18.2.0/24 drop",
            "oif wan tcp dport 25 reject with tcp reset",
            "ip6 saddr 2001:2::/48 accept",
        ]
        .iter()
        .map(|r| Rule::parse(r, &port).unwrap())
        .collect();
        let f = Filter::new(rules, Action::Accept, vec![Action::Accept, Action::Drop]);
        f.hits[1].store(3, Ordering::Relaxed);
        f.default_hits.store(12, Ordering::Relaxed);
        let (recs, summary) = FilterRuleRecord::all(&f, |i| ["lan", "wan"][i].to_string());
        let rows: Vec<String> = recs
            .iter()
            .map(ToString::to_string)
            .chain([summary.to_string()])
            .collect();
        assert_eq!(rows, old_rows(&f));
        assert_eq!(
            rows[3],
            "      default Accept, per-port [Accept, Drop]; hits 12"
        );
        for r in &recs {
            let json = serde_json::to_string(r).unwrap();
            assert_eq!(&serde_json::from_str::<FilterRuleRecord>(&json).unwrap(), r);
        }
        assert_eq!(
            serde_json::to_value(&recs[1]).unwrap()["action"],
            "reject-tcp-reset"
        );
        let json = serde_json::to_string(&summary).unwrap();
        assert_eq!(
            json,
            r#"{"rules":3,"default_policy":"accept","port_policies":[{"port":"lan","policy":"accept"},{"port":"wan","policy":"drop"}],"default_hits":12,"conntrack":null}"#
        );
        assert_eq!(
            serde_json::from_str::<FilterSummary>(&json).unwrap(),
            summary
        );
    }
}
