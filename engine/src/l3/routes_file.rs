//! Routes in `ip route` syntax, one per line:
//!
//! ```text
//! # comment
//! default via 198.18.0.1
//! 198.18.64.0/18 via 198.18.0.2 dev p1 metric 10
//! 198.18.128.0/17 via 198.18.0.3 via 198.18.0.4          # ECMP
//! 198.18.192.0/18 nexthop via 198.18.0.3 dev p0 nexthop via 198.18.0.4 dev p1
//! 198.18.1.0/24 dev p2                                     # connected, no gateway
//! 2001:2::/48 via 2001:2::1 dev p1
//! ```
//!
//! `default` is `0.0.0.0/0`, or `::/0` when the gateway is IPv6. A `dev` belongs to the `via`
//! before it (or to the route, without a `via`). Metric defaults to 0.

use core::fmt;
use std::net::IpAddr;

use super::nexthop::NextHop;
use super::prefix::{IpPrefix, Ipv4Prefix, Ipv6Prefix};
use super::route_table::Route;

/// A line that is not a route, with its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for LineError {}

/// Parses a whole file: every route, or every bad line.
pub fn parse_routes(text: &str) -> Result<Vec<(usize, Route)>, Vec<LineError>> {
    let mut routes = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match parse_line(line) {
            Ok(Some(r)) => routes.push((i + 1, r)),
            Ok(None) => {}
            Err(reason) => errors.push(LineError {
                line: i + 1,
                reason,
            }),
        }
    }
    if errors.is_empty() {
        Ok(routes)
    } else {
        Err(errors)
    }
}

/// One line: `Ok(None)` for a blank or comment line.
pub fn parse_line(line: &str) -> Result<Option<Route>, String> {
    let line = line.split('#').next().unwrap_or("");
    let mut words = line.split_whitespace();
    let Some(mut first) = words.next() else {
        return Ok(None);
    };
    // `blackhole|unreachable|prohibit PREFIX [metric N]`, as `ip route`.
    let reject = super::nexthop::Reject::parse(first);
    if reject.is_some() {
        first = words
            .next()
            .ok_or_else(|| format!("`{first}` needs a prefix"))?;
    }
    let mut hops: Vec<NextHop> = Vec::new();
    let mut route_dev: Option<String> = None;
    let mut metric: Option<u32> = None;
    while let Some(w) = words.next() {
        let mut arg = |what: &str| {
            words
                .next()
                .ok_or_else(|| format!("`{what}` needs a value"))
        };
        match w {
            "nexthop" => {}
            "via" => {
                let v = arg("via")?;
                let gw: IpAddr = v
                    .parse()
                    .map_err(|_| format!("bad gateway address `{v}`"))?;
                hops.push(NextHop {
                    gateway: Some(gw),
                    dev: None,
                });
            }
            "dev" => {
                let d = arg("dev")?.to_string();
                match hops.last_mut() {
                    Some(h) if h.dev.is_none() => h.dev = Some(d),
                    Some(_) => return Err("two `dev` for one `via`".into()),
                    None if route_dev.is_none() => route_dev = Some(d),
                    None => return Err("two `dev`".into()),
                }
            }
            "metric" | "preference" | "priority" => {
                let m = arg(w)?;
                if metric.is_some() {
                    return Err("two metrics".into());
                }
                metric = Some(m.parse().map_err(|_| format!("bad metric `{m}`"))?);
            }
            other => return Err(format!("unexpected `{other}`")),
        }
    }
    if let Some(d) = route_dev {
        if hops.is_empty() {
            hops.push(NextHop {
                gateway: None,
                dev: Some(d),
            });
        } else {
            return Err("`dev` before `via`".into());
        }
    }
    if reject.is_some() && !hops.is_empty() {
        return Err(format!("a `{}` route has no `via` or `dev`", first));
    }
    if hops.is_empty() && reject.is_none() {
        return Err("no `via` or `dev`".into());
    }
    let prefix = if first == "default" && reject.is_some() {
        return Err("`default` is ambiguous for a reject route: write 0.0.0.0/0 or ::/0".into());
    } else if first == "default" {
        match hops.iter().find_map(|h| h.gateway) {
            Some(IpAddr::V6(_)) => IpPrefix::V6(Ipv6Prefix::DEFAULT),
            _ => IpPrefix::V4(Ipv4Prefix::DEFAULT),
        }
    } else {
        first
            .parse::<IpPrefix>()
            .map_err(|e| format!("bad prefix `{first}`: {e}"))?
    };
    let v4 = matches!(prefix, IpPrefix::V4(_));
    if hops
        .iter()
        .any(|h| h.gateway.is_some_and(|g| g.is_ipv4() != v4))
    {
        return Err("gateway and prefix are of different address families".into());
    }
    Ok(Some(Route {
        reject,
        prefix,
        hops,
        metric: metric.unwrap_or(0),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_routes_parse_as_ip_route_writes_them() {
        use crate::l3::nexthop::Reject;
        for (line, kind) in [
            ("blackhole 198.18.10.0/24", Reject::Blackhole),
            ("unreachable 2001:2:10::/48 metric 5", Reject::Unreachable),
            ("prohibit 198.19.0.0/16", Reject::Prohibit),
        ] {
            let r = parse_line(line).unwrap().unwrap();
            assert_eq!(r.reject, Some(kind), "{line}");
            assert!(r.hops.is_empty());
            // Display writes what parse reads.
            assert_eq!(parse_line(&r.to_string()).unwrap().unwrap(), r);
        }
        assert!(parse_line("blackhole").is_err());
        assert!(parse_line("blackhole 198.18.0.0/24 via 198.18.0.1").is_err());
        assert!(parse_line("blackhole default").is_err());
    }

    fn hop(gw: &str, dev: Option<&str>) -> NextHop {
        NextHop {
            gateway: Some(gw.parse().unwrap()),
            dev: dev.map(str::to_string),
        }
    }

    #[test]
    fn forms() {
        let r = parse_line("198.18.64.0/18 via 198.18.0.2 dev p1 metric 10")
            .unwrap()
            .unwrap();
        assert_eq!(r.prefix.to_string(), "198.18.64.0/18");
        assert_eq!(r.hops, vec![hop("198.18.0.2", Some("p1"))]);
        assert_eq!(r.metric, 10);
        let r = parse_line("  default via 198.18.0.1  # the way out")
            .unwrap()
            .unwrap();
        assert_eq!(r.prefix.to_string(), "0.0.0.0/0");
        assert_eq!(r.metric, 0);
        let r = parse_line("default via 2001:2::1 dev p0").unwrap().unwrap();
        assert_eq!(r.prefix.to_string(), "::/0");
        let r = parse_line("198.18.128.0/17 via 198.18.0.3 dev p0 via 198.18.0.4")
            .unwrap()
            .unwrap();
        assert_eq!(
            r.hops,
            vec![hop("198.18.0.3", Some("p0")), hop("198.18.0.4", None)]
        );
        let r = parse_line("198.18.0.0/15 nexthop via 198.18.0.3 nexthop via 198.18.0.4 dev p1")
            .unwrap()
            .unwrap();
        assert_eq!(r.hops.len(), 2);
        let r = parse_line("198.18.1.0/24 dev p2").unwrap().unwrap();
        assert_eq!(
            r.hops,
            vec![NextHop {
                gateway: None,
                dev: Some("p2".into())
            }]
        );
        assert_eq!(parse_line("   # only a comment").unwrap(), None);
        assert_eq!(parse_line("").unwrap(), None);
    }

    #[test]
    fn errors() {
        for bad in [
            "198.18.0.0/15",
            "198.18.0.1/15 via 198.18.0.2",
            "198.18.0.0/15 via",
            "198.18.0.0/15 via 198.18.0.300",
            "198.18.0.0/15 via 198.18.0.2 metric x",
            "198.18.0.0/15 via 198.18.0.2 metric 1 metric 2",
            "198.18.0.0/15 via 2001:2::1",
            "198.18.0.0/15 via 198.18.0.2 proto static",
            "198.18.0.0/15 dev p0 via 198.18.0.2",
            "default",
            "bogus via 198.18.0.2",
        ] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn line_numbers() {
        let text = "# routes\ndefault via 198.18.0.1\n\n198.18.0.0/33 via 198.18.0.1\n198.18.0.0/15 viaa x\n";
        let errs = parse_routes(text).unwrap_err();
        assert_eq!(errs.iter().map(|e| e.line).collect::<Vec<_>>(), vec![4, 5]);
        assert!(
            errs[0].to_string().starts_with("line 4: bad prefix"),
            "{}",
            errs[0]
        );
        let ok = parse_routes("# x\ndefault via 198.18.0.1\n").unwrap();
        assert_eq!(ok[0].0, 2);
    }
}
