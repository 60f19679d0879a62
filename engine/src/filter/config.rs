//! `[filter]`: the filter's rules and default policies, and `[conntrack]`,
//! its connection tracking, as written and validated.

use crate::validate::{port_index, Checker, PortName, RouteLine, Spanned};
use serde::Deserialize;

/// Filter settings: rules as written (validated), default policies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterConfig {
    pub rules: Vec<RouteLine>,
    /// `true`: drop what no rule matches.
    pub default_drop: bool,
    /// (port name, drop?) for ports with their own default.
    pub policy: Vec<(String, bool)>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawFilter {
    /// Rules in order, nftables-like syntax (see engine/src/filter/rule.rs).
    #[serde(default)]
    pub rules: Vec<Spanned<String>>,
    /// "accept" (default) or "drop": for packets no rule matches.
    #[serde(default)]
    pub default: Option<Spanned<String>>,
    /// Per ingress port default policy, e.g. `{ wan = "drop" }`.
    #[serde(default)]
    pub policy: std::collections::BTreeMap<String, Spanned<String>>,
}

fn policy_drop(ck: &mut Checker<'_>, v: &Spanned<String>) -> bool {
    match v.get_ref().as_str() {
        "accept" => false,
        "drop" => true,
        x => {
            ck.at(v.span(), format!("policy `{x}` is not accept or drop"));
            false
        }
    }
}

pub fn validate(ck: &mut Checker<'_>, raw: RawFilter, ports: &[PortName<'_>]) -> FilterConfig {
    let port = |n: &str| port_index(ports, n);
    let mut rules = Vec::new();
    for r in raw.rules {
        if let Err(e) = super::rule::Rule::parse(r.get_ref(), &port) {
            ck.at(r.span(), format!("filter rule `{}`: {e}", r.get_ref()));
        }
        let line = ck.line(&r.span());
        rules.push(RouteLine {
            text: r.into_inner(),
            line,
        });
    }
    let default_drop = raw.default.as_ref().is_some_and(|d| policy_drop(ck, d));
    let mut policy = Vec::new();
    for (name, v) in raw.policy {
        if port(&name).is_none() {
            ck.at(v.span(), format!("filter policy for unknown port `{name}`"));
        }
        let d = policy_drop(ck, &v);
        policy.push((name, d));
    }
    FilterConfig {
        rules,
        default_drop,
        policy,
    }
}

/// The validated `[conntrack]` section: the connection table's size and the
/// tracker's behaviour (`conntrack::track`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConntrackConfig {
    /// Entries per worker (NAT sessions and plain flows together, when both).
    pub max_entries: u32,
    pub track: crate::conntrack::track::TrackConfig,
}

impl Default for ConntrackConfig {
    fn default() -> Self {
        ConntrackConfig {
            max_entries: 262_144,
            track: crate::conntrack::track::TrackConfig::default(),
        }
    }
}

/// `[conntrack]`: the stateful filter's connection tracking.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConntrack {
    /// Entries per worker.
    #[serde(default)]
    pub max_entries: Option<Spanned<u64>>,
    /// Pick up TCP connections in the middle (default false: a non-SYN of no connection is invalid).
    #[serde(default)]
    pub tcp_loose: Option<bool>,
    /// Never mark a TCP segment invalid for its window.
    #[serde(default)]
    pub tcp_be_liberal: Option<bool>,
    #[serde(default)]
    pub tcp_syn_sent_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub tcp_syn_recv_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub tcp_established_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub tcp_fin_wait_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub tcp_close_wait_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub tcp_last_ack_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub tcp_time_wait_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub tcp_close_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub tcp_unacknowledged_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub udp_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub udp_stream_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub icmp_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub generic_timeout_s: Option<Spanned<u64>>,
}

/// Validates `[conntrack]`. None when the section is absent and no rule
/// matches `ct state` (no connection table is needed).
pub fn validate_conntrack(
    ck: &mut Checker<'_>,
    raw: Option<RawConntrack>,
    filter: &FilterConfig,
) -> Option<ConntrackConfig> {
    let port = |_: &str| Some(0u16);
    let stateful = filter
        .rules
        .iter()
        .any(|r| super::rule::Rule::parse(&r.text, &port).is_ok_and(|r| r.m.ct_state.is_some()));
    if raw.is_none() && !stateful {
        return None;
    }
    let raw = raw.unwrap_or_default();
    let mut cfg = ConntrackConfig::default();
    cfg.max_entries = crate::validate::in_range(
        ck,
        &raw.max_entries,
        "max_entries",
        1,
        16 << 20,
        u64::from(cfg.max_entries),
    ) as u32;
    cfg.track.tcp_loose = raw.tcp_loose.unwrap_or(false);
    cfg.track.tcp_be_liberal = raw.tcp_be_liberal.unwrap_or(false);
    use crate::conntrack::track::class;
    let year = 365 * 86_400;
    let t = &mut cfg.track.timeouts;
    for (v, what, c) in [
        (
            &raw.tcp_syn_sent_timeout_s,
            "tcp_syn_sent_timeout_s",
            class::TCP_SYN_SENT,
        ),
        (
            &raw.tcp_syn_recv_timeout_s,
            "tcp_syn_recv_timeout_s",
            class::TCP_SYN_RECV,
        ),
        (
            &raw.tcp_established_timeout_s,
            "tcp_established_timeout_s",
            class::TCP_ESTABLISHED,
        ),
        (
            &raw.tcp_fin_wait_timeout_s,
            "tcp_fin_wait_timeout_s",
            class::TCP_FIN_WAIT,
        ),
        (
            &raw.tcp_close_wait_timeout_s,
            "tcp_close_wait_timeout_s",
            class::TCP_CLOSE_WAIT,
        ),
        (
            &raw.tcp_last_ack_timeout_s,
            "tcp_last_ack_timeout_s",
            class::TCP_LAST_ACK,
        ),
        (
            &raw.tcp_time_wait_timeout_s,
            "tcp_time_wait_timeout_s",
            class::TCP_TIME_WAIT,
        ),
        (
            &raw.tcp_close_timeout_s,
            "tcp_close_timeout_s",
            class::TCP_CLOSE,
        ),
        (
            &raw.tcp_unacknowledged_timeout_s,
            "tcp_unacknowledged_timeout_s",
            class::TCP_UNACK,
        ),
        (&raw.udp_timeout_s, "udp_timeout_s", class::UDP),
        (
            &raw.udp_stream_timeout_s,
            "udp_stream_timeout_s",
            class::UDP_STREAM,
        ),
        (&raw.icmp_timeout_s, "icmp_timeout_s", class::ICMP),
        (&raw.generic_timeout_s, "generic_timeout_s", class::GENERIC),
    ] {
        let i = usize::from(c);
        t.ms[i] = crate::validate::in_range(ck, v, what, 1, year, t.ms[i] / 1000) * 1000;
    }
    // Simultaneous open's state lives as long as a SYN's.
    t.ms[usize::from(class::TCP_SYN_SENT2)] = t.ms[usize::from(class::TCP_SYN_SENT)];
    Some(cfg)
}
