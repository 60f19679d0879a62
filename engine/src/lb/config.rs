//! `[[lb]]`: the load balancer's services, as written and validated.

use std::net::{IpAddr, Ipv4Addr};

use super::{DownPolicy, Mode, Scheduler, ServiceConfig};
use crate::conntrack::rewrite::{PROTO_TCP, PROTO_UDP};
use crate::conntrack::{Ep, Timeouts};
use crate::validate::{in_range, Checker, Spanned};
use serde::Deserialize;

/// `[[lb]]`: one virtual service of the load balancer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLb {
    pub name: Spanned<String>,
    /// `ADDR:PORT`.
    pub vip: Spanned<String>,
    /// `tcp` (default) or `udp`.
    #[serde(default)]
    pub proto: Option<Spanned<String>>,
    /// `round-robin`, `weighted` (default), `random`, `maglev`.
    #[serde(default)]
    pub scheduler: Option<Spanned<String>>,
    /// `fullnat` (default) or `dnat`.
    #[serde(default)]
    pub mode: Option<Spanned<String>>,
    /// Full NAT's source address (default: the address of the port toward the first backend).
    #[serde(default)]
    pub snat: Option<Spanned<String>>,
    /// `keep` (default) or `reset`.
    #[serde(default)]
    pub down_policy: Option<Spanned<String>>,
    /// `ADDR:PORT [weight N]`.
    #[serde(default)]
    pub backends: Vec<Spanned<String>>,
    #[serde(default)]
    pub udp_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub tcp_established_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub tcp_transitory_timeout_s: Option<Spanned<u64>>,
    /// Active TCP connect check every N ms (absent or 0: none).
    #[serde(default)]
    pub health_check_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub health_check_timeout_ms: Option<Spanned<u64>>,
    /// Failures in a row before a backend is down (default 3).
    #[serde(default)]
    pub health_check_fails: Option<Spanned<u64>>,
    /// Announce the VIP while the service has a live backend (default true;
    /// only with `[routing] announce_table`).
    #[serde(default)]
    pub announce: Option<bool>,
}

/// Validates the `[[lb]]` services.
///
/// `addrs`: the engine's port addresses with their prefix lengths;
/// `nat_pool`: the NAT's outside addresses (a VIP or full-NAT source must not be one).
pub fn validate(
    ck: &mut Checker<'_>,
    raw: Vec<Spanned<RawLb>>,
    addrs: &[(IpAddr, u8)],
    nat_pool: &[Ipv4Addr],
) -> Vec<ServiceConfig> {
    let mut out: Vec<ServiceConfig> = Vec::new();
    let in_pool = |a: Ipv4Addr| nat_pool.contains(&a);
    for r in raw {
        let span = r.span();
        let r = r.into_inner();
        let name = r.name.get_ref().clone();
        if out.iter().any(|s| s.name == name) {
            ck.at(r.name.span(), format!("[[lb]] `{name}` is defined twice"));
        }
        let vip = match r.vip.get_ref().parse::<std::net::SocketAddrV4>() {
            Ok(sa) if sa.port() != 0 => Ep::new(u32::from(*sa.ip()), sa.port()),
            _ => {
                ck.at(
                    r.vip.span(),
                    format!("vip `{}`: expected IPv4 ADDR:PORT", r.vip.get_ref()),
                );
                continue;
            }
        };
        if in_pool(Ipv4Addr::from(vip.addr)) {
            ck.at(r.vip.span(), "vip is a NAT pool address");
        }
        let word = |v: &Option<Spanned<String>>, dflt: &str| {
            v.as_ref().map_or(dflt.to_string(), |s| s.get_ref().clone())
        };
        let span_of = |v: &Option<Spanned<String>>| v.as_ref().map_or(span.clone(), |s| s.span());
        let proto = match word(&r.proto, "tcp").as_str() {
            "tcp" => PROTO_TCP,
            "udp" => PROTO_UDP,
            other => {
                ck.at(
                    span_of(&r.proto),
                    format!("proto `{other}`: expected tcp or udp"),
                );
                PROTO_TCP
            }
        };
        if out.iter().any(|s| s.proto == proto && s.vip == vip) {
            ck.at(
                r.vip.span(),
                format!(
                    "another service has {} {}",
                    word(&r.proto, "tcp"),
                    r.vip.get_ref()
                ),
            );
        }
        let scheduler = match word(&r.scheduler, "weighted").as_str() {
            "round-robin" => Scheduler::RoundRobin,
            "weighted" => Scheduler::Weighted,
            "random" => Scheduler::Random,
            "maglev" => Scheduler::Maglev,
            other => {
                ck.at(
                    span_of(&r.scheduler),
                    format!(
                        "scheduler `{other}`: expected round-robin, weighted, random or maglev"
                    ),
                );
                Scheduler::Weighted
            }
        };
        let mode = match word(&r.mode, "fullnat").as_str() {
            "fullnat" => Mode::FullNat,
            "dnat" => Mode::Dnat,
            other => {
                ck.at(
                    span_of(&r.mode),
                    format!("mode `{other}`: expected fullnat or dnat"),
                );
                Mode::FullNat
            }
        };
        let down_policy = match word(&r.down_policy, "keep").as_str() {
            "keep" => DownPolicy::Keep,
            "reset" => DownPolicy::Reset,
            other => {
                ck.at(
                    span_of(&r.down_policy),
                    format!("down_policy `{other}`: expected keep or reset"),
                );
                DownPolicy::Keep
            }
        };
        let mut backends: Vec<crate::lb::BackendConfig> = Vec::new();
        for b in &r.backends {
            match super::parse_backend(b.get_ref()) {
                Ok(bc) if backends.iter().any(|o| o.ep == bc.ep) => {
                    ck.at(b.span(), "backend listed twice")
                }
                Ok(bc) => backends.push(bc),
                Err(e) => ck.at(b.span(), e),
            }
        }
        let port_addrs = || addrs.iter();
        let snat = match &r.snat {
            Some(s) => match s.get_ref().parse::<Ipv4Addr>() {
                Ok(a) if port_addrs().any(|x| x.0 == IpAddr::V4(a)) => u32::from(a),
                Ok(_) => {
                    ck.at(
                        s.span(),
                        "snat must be an address of one of the engine's ports",
                    );
                    0
                }
                Err(_) => {
                    ck.at(
                        s.span(),
                        format!("snat `{}`: not an IPv4 address", s.get_ref()),
                    );
                    0
                }
            },
            None => {
                let first = backends.first().map(|b| Ipv4Addr::from(b.ep.addr));
                let on_link = first.and_then(|b| {
                    port_addrs().find_map(|x| match x.0 {
                        IpAddr::V4(a) if crate::context::tables::same_net_v4(a, b, x.1) => Some(a),
                        _ => None,
                    })
                });
                match (mode, on_link) {
                    (_, Some(a)) => u32::from(a),
                    (Mode::Dnat, None) => 0,
                    (Mode::FullNat, None) => {
                        ck.at(span.clone(), format!("[[lb]] `{name}`: give `snat` (no port is on the first backend's subnet)"));
                        0
                    }
                }
            }
        };
        if mode == Mode::FullNat && in_pool(Ipv4Addr::from(snat)) {
            ck.at(
                span_of(&r.snat),
                "snat is a NAT pool address: the NAT and the load balancer would share its ports",
            );
        }
        let mut timeouts = Timeouts::default();
        let mut secs = |v: &Option<Spanned<u64>>, what: &str, dflt_ms: u64| {
            in_range(ck, v, what, 1, 604_800, dflt_ms / 1000) * 1000
        };
        timeouts.udp_ms = secs(&r.udp_timeout_s, "udp_timeout_s", timeouts.udp_ms);
        timeouts.tcp_established_ms = secs(
            &r.tcp_established_timeout_s,
            "tcp_established_timeout_s",
            timeouts.tcp_established_ms,
        );
        timeouts.tcp_transitory_ms = secs(
            &r.tcp_transitory_timeout_s,
            "tcp_transitory_timeout_s",
            timeouts.tcp_transitory_ms,
        );
        let mut num = |v: &Option<Spanned<u64>>, what: &str, lo: u64, hi: u64, dflt: u64| {
            in_range(ck, v, what, lo, hi, dflt)
        };
        let interval = num(&r.health_check_ms, "health_check_ms", 0, 3_600_000, 0);
        let health = (interval > 0).then(|| crate::lb::HealthCheck {
            interval_ms: interval.max(100),
            timeout_ms: num(
                &r.health_check_timeout_ms,
                "health_check_timeout_ms",
                10,
                60_000,
                1000,
            ),
            fails: num(&r.health_check_fails, "health_check_fails", 1, 100, 3) as u32,
        });
        if health.is_some() && proto != PROTO_TCP {
            ck.at(
                span.clone(),
                format!("[[lb]] `{name}`: health checks are TCP connects (a tcp service)"),
            );
        }
        out.push(ServiceConfig {
            name,
            proto,
            vip,
            scheduler,
            mode,
            snat,
            down_policy,
            backends,
            timeouts,
            health,
            announce: r.announce.unwrap_or(true),
        });
    }
    out
}

/// `[routing] announce_table`: the kernel table the announced VIP routes go
/// into. Not 0 (unspecified), 254 (main) or 255 (local): a table of their
/// own, which the kernel does not use for forwarding unless a rule says so,
/// and which the routing daemon exports. At most [`super::announce::MAX_VIPS`]
/// VIP addresses are announced.
/// `mirrored`: the table the engine mirrors into its FIB (`[routing] mirror`),
/// which must be another (the engine would read its own VIP routes back).
pub fn validate_announce(
    ck: &mut Checker<'_>,
    table: Option<Spanned<u32>>,
    services: &[ServiceConfig],
    mirrored: Option<u32>,
) -> Option<u32> {
    let t = table?;
    let n = *t.get_ref();
    if mirrored == Some(n) {
        ck.at(
            t.span(),
            format!("announce_table {n} is the mirrored table (mirror_table): give each its own"),
        );
    }
    if matches!(n, 0 | 253..=255) {
        ck.at(
            t.span(),
            format!("announce_table {n}: a table of its own, not 0 (unspecified), 253 (default), 254 (main) or 255 (local)"),
        );
    }
    let vips = super::announce::vips(services).len();
    if vips > super::announce::MAX_VIPS {
        ck.at(
            t.span(),
            format!(
                "{vips} VIP addresses to announce: at most {}",
                super::announce::MAX_VIPS
            ),
        );
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::control::config::{Config, Environment};

    struct Env;
    impl Environment for Env {
        fn interface_exists(&self, name: &str) -> bool {
            name.starts_with("veth")
        }
        fn core_count(&self) -> usize {
            2
        }
    }

    fn config(routing: &str, lb_extra: &str) -> Result<Config, String> {
        let text = format!(
            "[engine]\ncores = [0]\n\n[[port]]\nname = \"up\"\ninterface = \"veth0\"\nmode = \"router\"\n\
             addresses = [\"198.18.2.2/24\"]\n\n[routing]\n{routing}\n\n[[lb]]\nname = \"web\"\n\
             vip = \"198.18.100.1:80\"\nbackends = [\"198.18.2.11:80\"]\n{lb_extra}\n\n[[lb]]\n\
             name = \"dns\"\nvip = \"198.18.100.2:53\"\nproto = \"udp\"\nbackends = [\"198.18.2.11:53\"]\n"
        );
        Config::parse(Path::new("t.toml"), &text, &Env).map_err(|e| {
            e.0.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    #[test]
    fn announcing_is_off_by_default_and_per_service_with_a_table() {
        let c = config("", "").unwrap();
        assert_eq!(c.routing.announce_table, None);
        let c = config("announce_table = 100", "announce = false").unwrap();
        assert_eq!(c.routing.announce_table, Some(100));
        assert!(!c.lb[0].announce && c.lb[1].announce);
        assert_eq!(
            crate::lb::announce::vips(&c.lb),
            vec![u32::from(std::net::Ipv4Addr::new(198, 18, 100, 2))]
        );
    }

    #[test]
    fn the_kernels_own_tables_are_refused() {
        for t in [0, 253, 254, 255] {
            let e = config(&format!("announce_table = {t}"), "").unwrap_err();
            assert!(
                e.contains(&format!("announce_table {t}: a table of its own")),
                "{e}"
            );
        }
        assert!(config("announce_table = 1000", "").is_ok());
        let e = config(
            "mirror = true\nmirror_table = 100\nannounce_table = 100",
            "",
        )
        .unwrap_err();
        assert!(e.contains("is the mirrored table"), "{e}");
        assert!(config(
            "mirror = true\nmirror_table = 101\nannounce_table = 100",
            ""
        )
        .is_ok());
        let e = config("", "announce = \"yes\"").unwrap_err();
        assert!(e.contains("expected a boolean"), "{e}");
    }
}
