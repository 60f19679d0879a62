//! `[[tcp]]` and `[tcp_stack]`: the TCP endpoint's configuration sections,
//! as written and validated.

use super::endpoint::{App, AppConfig, StackConfig};
use crate::validate::{in_range, Checker, Spanned};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// `[[tcp]]`: a built-in TCP application on a port of the engine's addresses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTcp {
    /// `echo`, `discard`, `http` or `bulk`.
    pub app: Spanned<String>,
    /// A server's port (on every engine address).
    #[serde(default)]
    pub port: Option<Spanned<u16>>,
    /// A client's server, `ADDR:PORT` (IPv4) or `[ADDR]:PORT` (IPv6).
    #[serde(default)]
    pub connect: Option<Spanned<String>>,
    /// A client's connections (default 1).
    #[serde(default)]
    pub connections: Option<Spanned<u64>>,
    /// `http`: the body of every answer.
    #[serde(default)]
    pub body: Option<String>,
    /// `bulk`: bytes sent on each connection.
    #[serde(default)]
    pub bytes: Option<u64>,
    /// Nagle off.
    #[serde(default)]
    pub nodelay: bool,
}

/// `[tcp_stack]`: the engine TCP's limits and timers (every value optional).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTcpStack {
    pub max_conns: Option<Spanned<u64>>,
    pub backlog: Option<Spanned<u64>>,
    /// 0 (default): the smallest port MTU less 40.
    pub mss: Option<Spanned<u64>>,
    pub send_buffer: Option<Spanned<u64>>,
    pub recv_buffer: Option<Spanned<u64>>,
    /// The receive ring a connection starts with; autotuning grows it up
    /// to `recv_buffer`.
    pub recv_buffer_initial: Option<Spanned<u64>>,
    pub window_scale: Option<bool>,
    /// RFC 7323 timestamps (default on).
    pub timestamps: Option<bool>,
    /// Tail loss probes (default on).
    pub tlp: Option<bool>,
    pub delayed_ack_ms: Option<Spanned<u64>>,
    pub min_rto_ms: Option<Spanned<u64>>,
    pub max_rto_ms: Option<Spanned<u64>>,
    pub max_retries: Option<Spanned<u64>>,
    pub max_retry_ms: Option<Spanned<u64>>,
    pub max_syn_retries: Option<Spanned<u64>>,
    pub time_wait_ms: Option<Spanned<u64>>,
    pub fin_wait2_ms: Option<Spanned<u64>>,
    /// Keepalive idle time; absent or 0: no keepalive.
    pub keepalive_ms: Option<Spanned<u64>>,
}

/// Validates the `[[tcp]]` applications.
pub fn validate_apps(ck: &mut Checker<'_>, raw: Vec<Spanned<RawTcp>>) -> Vec<AppConfig> {
    let mut out: Vec<AppConfig> = Vec::new();
    for r in raw {
        let span = r.span();
        let r = r.into_inner();
        let port = r.port.as_ref().map_or(0, |p| *p.get_ref());
        if let Some(p) = &r.port {
            if port == 0 || out.iter().any(|a| a.connect.is_none() && a.port == port) {
                ck.at(p.span(), format!("[[tcp]] port {port}: 0 or used twice"));
            }
        }
        let connect = match &r.connect {
            Some(c) => match parse_connect(c.get_ref()) {
                Ok(sa) => Some(sa),
                Err(why) => {
                    ck.at(c.span(), format!("connect `{}`: {why}", c.get_ref()));
                    None
                }
            },
            None => None,
        };
        match (&r.port, &r.connect) {
            (Some(_), Some(_)) => ck.at(
                span.clone(),
                "[[tcp]]: a server (port) or a client (connect), not both",
            ),
            (None, None) => ck.at(
                span.clone(),
                "[[tcp]]: needs port (a server) or connect (a client)",
            ),
            _ => {}
        }
        if r.connections.is_some() && r.connect.is_none() {
            ck.at(
                span.clone(),
                "[[tcp]]: connections is for a client (connect)",
            );
        }
        let connections = in_range(ck, &r.connections, "connections", 1, 65536, 1) as u32;
        if r.connect.is_some() && r.app.get_ref() == "http" {
            ck.at(
                r.app.span(),
                "[[tcp]]: a client runs echo, discard or bulk (http is a server)",
            );
        }
        let app = match r.app.get_ref().as_str() {
            "echo" => App::Echo,
            "discard" => App::Discard,
            "http" => App::Http {
                body: r.body.unwrap_or_else(|| "pktengine\n".into()).into_bytes(),
            },
            "bulk" => App::Bulk {
                bytes: r.bytes.unwrap_or(1 << 20),
            },
            other => {
                ck.at(
                    r.app.span(),
                    format!("app `{other}`: expected echo, discard, http or bulk"),
                );
                continue;
            }
        };
        out.push(AppConfig {
            port,
            connect,
            connections,
            app,
            nodelay: r.nodelay,
        });
    }
    out
}

/// A client's server: `198.19.1.2:5001` or `[2001:2:0:2::2]:5001`; a
/// unicast address the engine can route to (no link-local IPv6: a
/// connection must not depend on which port a scope names), port not 0.
fn parse_connect(s: &str) -> Result<SocketAddr, &'static str> {
    let sa: SocketAddr = s
        .parse()
        .map_err(|_| "expected ADDR:PORT (IPv4) or [ADDR]:PORT (IPv6)")?;
    let ip = sa.ip();
    if sa.port() == 0 {
        return Err("port 0");
    }
    if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
        return Err("expected a unicast address");
    }
    if let SocketAddr::V6(v6) = sa {
        if v6.scope_id() != 0 {
            return Err("a scope (%) is for link-local addresses, which are not taken");
        }
    }
    if let IpAddr::V6(a) = ip {
        if a.is_unicast_link_local() {
            return Err("a link-local address (expected a global one)");
        }
        if a.to_ipv4_mapped().is_some() {
            return Err("an IPv4-mapped address (write the IPv4 address)");
        }
    }
    Ok(sa)
}

/// Validates `[tcp_stack]`.
pub fn validate_stack(ck: &mut Checker<'_>, r: RawTcpStack) -> StackConfig {
    let mut s = StackConfig::default();
    let t = &mut s.tcb;
    s.max_conns = in_range(ck, &r.max_conns, "max_conns", 1, 65536, s.max_conns as u64) as usize;
    s.backlog = in_range(ck, &r.backlog, "backlog", 1, 65536, s.backlog as u64) as usize;
    t.mss = in_range(ck, &r.mss, "mss", 0, 9000, u64::from(t.mss)) as u16;
    if (1..88).contains(&t.mss) {
        ck.at(
            r.mss.as_ref().map(|v| v.span()).unwrap_or_default(),
            format!("mss {}: expected 0 (from the MTU) or 88..=9000", t.mss),
        );
    }
    t.send_buffer = in_range(
        ck,
        &r.send_buffer,
        "send_buffer",
        4096,
        64 << 20,
        t.send_buffer as u64,
    ) as usize;
    t.recv_buffer = in_range(
        ck,
        &r.recv_buffer,
        "recv_buffer",
        4096,
        64 << 20,
        t.recv_buffer as u64,
    ) as usize;
    t.recv_buffer_initial = in_range(
        ck,
        &r.recv_buffer_initial,
        "recv_buffer_initial",
        4096,
        64 << 20,
        (t.recv_buffer_initial as u64).min(t.recv_buffer as u64),
    ) as usize;
    if let Some(w) = r.window_scale {
        t.window_scale = w;
    }
    if let Some(v) = r.timestamps {
        t.timestamps = v;
    }
    if let Some(v) = r.tlp {
        t.tlp = v;
    }
    t.delayed_ack_ms = in_range(
        ck,
        &r.delayed_ack_ms,
        "delayed_ack_ms",
        0,
        500,
        t.delayed_ack_ms,
    );
    let ms_us = |v: u32| u64::from(v / 1000);
    t.rtt.min_rto_us = (in_range(
        ck,
        &r.min_rto_ms,
        "min_rto_ms",
        1,
        60_000,
        ms_us(t.rtt.min_rto_us),
    ) * 1000) as u32;
    t.rtt.max_rto_us = (in_range(
        ck,
        &r.max_rto_ms,
        "max_rto_ms",
        1,
        600_000,
        ms_us(t.rtt.max_rto_us),
    ) * 1000) as u32;
    if t.rtt.max_rto_us < t.rtt.min_rto_us {
        ck.at(
            r.max_rto_ms.as_ref().map(|v| v.span()).unwrap_or_default(),
            "max_rto_ms is below min_rto_ms",
        );
    }
    t.max_retries = in_range(
        ck,
        &r.max_retries,
        "max_retries",
        1,
        255,
        u64::from(t.max_retries),
    ) as u32;
    t.max_retry_ms = in_range(
        ck,
        &r.max_retry_ms,
        "max_retry_ms",
        1,
        86_400_000,
        t.max_retry_ms,
    );
    t.max_syn_retries = in_range(
        ck,
        &r.max_syn_retries,
        "max_syn_retries",
        1,
        255,
        u64::from(t.max_syn_retries),
    ) as u32;
    t.time_wait_ms = in_range(
        ck,
        &r.time_wait_ms,
        "time_wait_ms",
        0,
        600_000,
        t.time_wait_ms,
    );
    t.fin_wait2_ms = in_range(
        ck,
        &r.fin_wait2_ms,
        "fin_wait2_ms",
        1,
        600_000,
        t.fin_wait2_ms,
    );
    let ka = in_range(ck, &r.keepalive_ms, "keepalive_ms", 0, 86_400_000, 0);
    if ka > 0 {
        t.keepalive = Some(super::tcb::Keepalive {
            idle_ms: ka,
            ..Default::default()
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::parse_connect;

    #[test]
    fn connect_takes_ipv4_and_ipv6_servers() {
        for s in ["198.19.1.2:5001", "[2001:2:0:2::2]:5001", "[2001:2::1]:1"] {
            assert_eq!(parse_connect(s), Ok(s.parse().unwrap()), "{s}");
        }
    }

    #[test]
    fn connect_rejects_what_cannot_be_a_server() {
        for (s, why) in [
            ("198.19.1.2", "expected ADDR:PORT"),
            ("2001:2::1:80", "expected ADDR:PORT"),
            ("[2001:2::1]", "expected ADDR:PORT"),
            ("198.19.1.2:0", "port 0"),
            ("[2001:2::1]:0", "port 0"),
            ("0.0.0.0:80", "unicast"),
            ("[::]:80", "unicast"),
            ("224.0.0.1:80", "unicast"),
            ("255.255.255.255:80", "unicast"),
            ("[ff02::1]:80", "unicast"),
            ("[fe80::1]:80", "link-local"),
            ("[fe80::1%2]:80", "scope"),
            ("[::ffff:198.19.1.2]:80", "IPv4-mapped"),
        ] {
            let e = parse_connect(s).unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }
}
