//! `ctl route show`: one record per route of the RIB (a prefix with a metric;
//! a prefix may have several routes, the lowest metric wins).

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::l3::nexthop::{NextHop, NextHopEntry};
use crate::l3::prefix::IpPrefix;
use crate::l3::route_table::Origin;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRecord {
    #[serde(with = "super::values::text")]
    pub prefix: IpPrefix,
    /// `ipv4` or `ipv6`.
    pub family: Cow<'static, str>,
    pub metric: u32,
    /// One next hop, or the members of an ECMP group (more than one); none
    /// for a reject route.
    pub nexthops: Vec<NextHopRecord>,
    /// `unicast`, or the reject types `blackhole`, `unreachable`, `prohibit`.
    #[serde(rename = "type")]
    pub kind: Cow<'static, str>,
    /// `static` (configuration, ctl, routes file) or `kernel` (the live mirror).
    pub origin: Cow<'static, str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextHopRecord {
    /// Null for a connected route (`dev` only).
    pub gateway: Option<IpAddr>,
    /// The egress port, when the route names one.
    pub dev: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSummary {
    pub routes: usize,
}

impl RouteRecord {
    pub fn new(prefix: IpPrefix, metric: u32, e: &NextHopEntry) -> RouteRecord {
        let family = if prefix.addr().is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        };
        let nexthops = e
            .hops()
            .iter()
            .map(|h| NextHopRecord {
                gateway: h.gateway,
                dev: h.dev.clone(),
            })
            .collect();
        RouteRecord {
            prefix,
            family: Cow::Borrowed(family),
            metric,
            nexthops,
            kind: Cow::Borrowed(e.reject().map_or("unicast", |r| r.keyword())),
            origin: Cow::Borrowed(Origin::Static.name()),
        }
    }

    /// The same, put there by `origin`.
    pub fn with_origin(mut self, origin: Origin) -> RouteRecord {
        self.origin = Cow::Borrowed(origin.name());
        self
    }
}

/// `198.19.100.0/24 via 198.19.1.2 metric 10`, an ECMP group as
/// `nexthop via A nexthop via B` (as `NextHopEntry` shows it).
impl fmt::Display for RouteRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind != "unicast" {
            write!(f, "{} {} metric {}", self.kind, self.prefix, self.metric)?;
        } else {
            self.fmt_unicast(f)?;
        }
        if self.origin != "static" {
            write!(f, " proto {}", self.origin)?;
        }
        Ok(())
    }
}

impl RouteRecord {
    fn fmt_unicast(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.prefix)?;
        for (i, h) in self.nexthops.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if self.nexthops.len() > 1 {
                f.write_str("nexthop ")?;
            }
            fmt::Display::fmt(
                &NextHop {
                    gateway: h.gateway,
                    dev: h.dev.clone(),
                },
                f,
            )?;
        }
        write!(f, " metric {}", self.metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l3::routes_file::parse_line;

    #[test]
    fn text_as_before_and_json_round_trip() {
        for line in [
            "198.19.100.0/24 via 198.19.1.2 metric 10",
            "198.18.1.0/24 dev lan",
            "198.19.7.0/24 via 198.19.1.2 dev wan metric 3",
            "2001:2:0:9::/64 via 2001:2:0:2::2",
            "default via 198.19.1.2",
            "198.19.8.0/24 nexthop via 198.19.1.2 nexthop via 198.19.1.3 dev wan metric 7",
        ] {
            let r = parse_line(line).unwrap().unwrap();
            let e = NextHopEntry::from_hops(r.hops.clone()).unwrap();
            let rec = RouteRecord::new(r.prefix, r.metric, &e);
            // The row `ctl route show` printed before there were records.
            assert_eq!(
                rec.to_string(),
                format!("{} {e} metric {}", r.prefix, r.metric),
                "{line}"
            );
            let json = serde_json::to_string(&rec).unwrap();
            assert_eq!(
                serde_json::from_str::<RouteRecord>(&json).unwrap(),
                rec,
                "{json}"
            );
        }
        let r = parse_line(
            "198.19.8.0/24 nexthop via 198.19.1.2 nexthop via 198.19.1.3 dev wan metric 7",
        )
        .unwrap()
        .unwrap();
        let rec = RouteRecord::new(
            r.prefix,
            r.metric,
            &NextHopEntry::from_hops(r.hops).unwrap(),
        );
        assert_eq!(
            serde_json::to_string(&rec).unwrap(),
            r#"{"prefix":"198.19.8.0/24","family":"ipv4","metric":7,"nexthops":[{"gateway":"198.19.1.2","dev":null},{"gateway":"198.19.1.3","dev":"wan"}],"type":"unicast","origin":"static"}"#
        );
        let r = parse_line("2001:2:0:9::/64 via 2001:2:0:2::2")
            .unwrap()
            .unwrap();
        let rec = RouteRecord::new(
            r.prefix,
            r.metric,
            &NextHopEntry::from_hops(r.hops).unwrap(),
        );
        assert_eq!(
            (rec.family.as_ref(), rec.prefix.to_string().as_str()),
            ("ipv6", "2001:2:0:9::/64")
        );
        // A reject route as `ip route` writes it; a mirrored route says so.
        let r = parse_line("blackhole 198.19.9.0/24 metric 32")
            .unwrap()
            .unwrap();
        let e = NextHopEntry::Reject(r.reject.unwrap());
        let rec = RouteRecord::new(r.prefix, r.metric, &e).with_origin(Origin::Kernel);
        assert_eq!(
            rec.to_string(),
            "blackhole 198.19.9.0/24 metric 32 proto kernel"
        );
        assert!(rec.nexthops.is_empty());
        assert_eq!(rec.kind, "blackhole");
    }
}
