//! `[nat]`: the NAT's configuration section, as written and validated.

use super::{Filtering, Forward, NatConfig, Role};
use crate::validate::{in_range, Checker, Spanned};
use serde::Deserialize;

/// `[nat]`: NAT44 between the ports marked `nat = "inside"` and `"outside"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNat {
    /// Outside addresses: `198.19.1.1`, ranges `198.19.1.10-198.19.1.20`, prefixes `198.19.2.0/28`.
    pub pool: Vec<Spanned<String>>,
    /// External port (and ICMP id) range, `LO-HI`.
    #[serde(default)]
    pub ports: Option<Spanned<String>>,
    /// `endpoint-independent`, `address-dependent` or `address-and-port-dependent` (default).
    #[serde(default)]
    pub filtering: Option<Spanned<String>>,
    #[serde(default)]
    pub max_per_host: Option<Spanned<u64>>,
    /// Sessions per worker.
    #[serde(default)]
    pub max_sessions: Option<Spanned<u64>>,
    /// `drop` (default) or `icmp` (also ICMP administratively prohibited).
    #[serde(default)]
    pub on_exhaustion: Option<Spanned<String>>,
    #[serde(default)]
    pub udp_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub icmp_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub tcp_established_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub tcp_transitory_timeout_s: Option<Spanned<u64>>,
    /// Static port forwards: `PROTO OUTSIDE_ADDR:PORT INSIDE_ADDR:PORT`.
    #[serde(default)]
    pub forward: Vec<Spanned<String>>,
}

/// Validates `[nat]` and the ports' `nat` roles.
pub fn validate(
    ck: &mut Checker<'_>,
    raw: Option<Spanned<RawNat>>,
    roles: &[Role],
) -> Option<NatConfig> {
    let has = |r: Role| roles.contains(&r);
    let Some(raw) = raw else {
        if has(Role::Inside) || has(Role::Outside) {
            ck.at(0..0, "ports have `nat` roles but there is no [nat] section");
        }
        return None;
    };
    let span = raw.span();
    let raw = raw.into_inner();
    if !has(Role::Inside) || !has(Role::Outside) {
        ck.at(
            span.clone(),
            "[nat] needs at least one port with nat = \"inside\" and one with nat = \"outside\"",
        );
    }
    let mut cfg = NatConfig::default();
    if raw.pool.is_empty() {
        ck.at(
            span,
            "[nat] pool is empty: give at least one outside address",
        );
    }
    for e in &raw.pool {
        match super::parse_pool_entry(e.get_ref()) {
            Ok(addrs) => cfg.pool.extend(addrs),
            Err(m) => ck.at(e.span(), m),
        }
    }
    let mut sorted = cfg.pool.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != cfg.pool.len() {
        ck.at(
            raw.pool.first().map_or(0..0, |e| e.span()),
            "[nat] pool lists an address twice",
        );
    }
    if cfg.pool.len() > 4096 {
        ck.at(
            raw.pool.first().map_or(0..0, |e| e.span()),
            "[nat] pool has more than 4096 addresses",
        );
    }
    if let Some(r) = &raw.ports {
        let parsed = r.get_ref().split_once('-').and_then(|(a, b)| {
            Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
        });
        match parsed {
            Some((lo, hi)) if lo >= 1 && lo <= hi => (cfg.port_lo, cfg.port_hi) = (lo, hi),
            _ => ck.at(
                r.span(),
                format!(
                    "ports `{}`: expected LO-HI with 1 <= LO <= HI <= 65535",
                    r.get_ref()
                ),
            ),
        }
    }
    if let Some(f) = &raw.filtering {
        cfg.filtering = match f.get_ref().as_str() {
            "endpoint-independent" => Filtering::EndpointIndependent,
            "address-dependent" => Filtering::AddressDependent,
            "address-and-port-dependent" => Filtering::AddressAndPortDependent,
            other => {
                ck.at(f.span(), format!("filtering `{other}`: expected endpoint-independent, address-dependent or address-and-port-dependent"));
                cfg.filtering
            }
        };
    }
    if let Some(e) = &raw.on_exhaustion {
        match e.get_ref().as_str() {
            "drop" => cfg.icmp_on_exhaustion = false,
            "icmp" => cfg.icmp_on_exhaustion = true,
            other => ck.at(
                e.span(),
                format!("on_exhaustion `{other}`: expected drop or icmp"),
            ),
        }
    }
    let mut num = |v: &Option<Spanned<u64>>, what: &str, lo: u64, hi: u64, dflt: u64| {
        in_range(ck, v, what, lo, hi, dflt)
    };
    cfg.max_per_host = num(
        &raw.max_per_host,
        "max_per_host",
        1,
        65535,
        u64::from(cfg.max_per_host),
    ) as u32;
    cfg.max_sessions = num(
        &raw.max_sessions,
        "max_sessions",
        1,
        16 << 20,
        u64::from(cfg.max_sessions),
    ) as u32;
    let t = &mut cfg.timeouts;
    let day = 86_400 * 7;
    t.udp_ms = num(&raw.udp_timeout_s, "udp_timeout_s", 1, day, t.udp_ms / 1000) * 1000;
    t.icmp_ms = num(
        &raw.icmp_timeout_s,
        "icmp_timeout_s",
        1,
        day,
        t.icmp_ms / 1000,
    ) * 1000;
    t.tcp_established_ms = num(
        &raw.tcp_established_timeout_s,
        "tcp_established_timeout_s",
        1,
        day,
        t.tcp_established_ms / 1000,
    ) * 1000;
    t.tcp_transitory_ms = num(
        &raw.tcp_transitory_timeout_s,
        "tcp_transitory_timeout_s",
        1,
        day,
        t.tcp_transitory_ms / 1000,
    ) * 1000;
    for f in &raw.forward {
        match super::parse_forward(f.get_ref()) {
            Ok(fw) => {
                if cfg.forwards.iter().any(|o: &Forward| {
                    o.proto == fw.proto && (o.outside == fw.outside || o.inside == fw.inside)
                }) {
                    ck.at(
                        f.span(),
                        "forward: the outside or inside endpoint is already forwarded",
                    );
                }
                cfg.forwards.push(fw);
            }
            Err(m) => ck.at(f.span(), m),
        }
    }
    Some(cfg)
}
