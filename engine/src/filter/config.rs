//! `[filter]`: the filter's rules and default policies, as written and validated.


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
        rules.push(RouteLine { text: r.into_inner(), line });
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
    FilterConfig { rules, default_drop, policy }
}
