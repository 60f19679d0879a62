//! `ctl lb show`: one record per load-balancer service, its backends inside.
//! In text, a line per service and one per backend below it.

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::values::Endpoint;
use crate::conntrack::rewrite::{PROTO_TCP, PROTO_UDP};
use crate::lb::{LbShared, Mode, Scheduler};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbServiceRecord {
    pub name: String,
    /// The virtual address and port.
    pub vip: Endpoint,
    /// `tcp` or `udp`.
    pub proto: Cow<'static, str>,
    #[serde(with = "super::values::scheduler")]
    pub scheduler: Scheduler,
    #[serde(with = "super::values::lb_mode")]
    pub mode: Mode,
    /// Full NAT's source address toward the backends; null with `dnat`.
    pub snat: Option<Ipv4Addr>,
    /// Backends taking new connections (up and with a weight).
    pub backends_up: usize,
    pub backends: Vec<LbBackendRecord>,
    /// Whether its VIP route is announced now (`[routing] announce_table`);
    /// absent when the service is not announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbBackendRecord {
    pub endpoint: Endpoint,
    pub weight: u32,
    /// `up` (takes new connections) or `down` (by the operator or its health check).
    pub state: Cow<'static, str>,
    /// Down because its health check failed (not by the operator).
    pub health_check_failed: bool,
    /// Connections it was given, in all.
    pub connections: u64,
    /// Connections open now.
    pub active: u64,
    /// Bytes of its connections, both ways.
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbSummary {
    pub services: usize,
}

impl LbServiceRecord {
    /// Every service of the published snapshot, with its backends' counters.
    pub fn all(lb: &LbShared) -> Vec<LbServiceRecord> {
        let snap = lb.services.load();
        snap.list
            .iter()
            .map(|s| {
                let c = &s.cfg;
                let proto = if c.proto == PROTO_TCP {
                    "tcp"
                } else if c.proto == PROTO_UDP {
                    "udp"
                } else {
                    "?"
                };
                LbServiceRecord {
                    name: c.name.clone(),
                    vip: c.vip.into(),
                    proto: Cow::Borrowed(proto),
                    scheduler: c.scheduler,
                    mode: c.mode,
                    snat: (c.mode == Mode::FullNat).then(|| Ipv4Addr::from(c.snat)),
                    backends_up: s.up.len(),
                    backends: s
                        .backends
                        .iter()
                        .map(|b| {
                            let (connections, active, bytes) = b.stats.totals();
                            LbBackendRecord {
                                endpoint: b.ep.into(),
                                weight: b.weight,
                                state: Cow::Borrowed(if b.up { "up" } else { "down" }),
                                health_check_failed: b.unhealthy,
                                connections,
                                active,
                                bytes,
                            }
                        })
                        .collect(),
                    announced: lb.announced(c),
                }
            })
            .collect()
    }

    /// The text rows: the service's line, then a line per backend, then
    /// (announced services only) `  vip 198.19.1.100 announced|withdrawn`.
    pub fn rows(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(self.to_string())
            .chain(self.backends.iter().map(|b| b.to_string()))
            .chain(self.announced.map(|on| {
                format!(
                    "  vip {} {}",
                    self.vip.addr,
                    if on { "announced" } else { "withdrawn" }
                )
            }))
    }
}

/// `web 198.19.1.100:80 tcp Weighted fullnat snat 198.19.2.1 backends 3 3 up`.
impl fmt::Display for LbServiceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {:?} ",
            self.name, self.vip, self.proto, self.scheduler
        )?;
        match self.mode {
            Mode::FullNat => write!(
                f,
                "fullnat snat {}",
                self.snat.unwrap_or(Ipv4Addr::UNSPECIFIED)
            )?,
            Mode::Dnat => f.write_str("dnat")?,
        }
        write!(
            f,
            " backends {} {} up",
            self.backends.len(),
            self.backends_up
        )
    }
}

/// `  backend 198.19.2.11:8000 weight 1 up conns 4 active 1 bytes 5000`.
impl fmt::Display for LbBackendRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "  backend {} weight {} {} conns {} active {} bytes {}{}",
            self.endpoint,
            self.weight,
            self.state,
            self.connections,
            self.active,
            self.bytes,
            if self.health_check_failed {
                " health-check-failed"
            } else {
                ""
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::Ep;
    use crate::lb::{parse_backend, DownPolicy, ServiceConfig};

    fn svc(name: &str, proto: u8, scheduler: Scheduler, mode: Mode) -> ServiceConfig {
        let mut down = parse_backend("198.19.2.12:8000 weight 2").unwrap();
        down.up = false;
        ServiceConfig {
            name: name.into(),
            proto,
            vip: Ep::new(u32::from(Ipv4Addr::new(198, 19, 1, 100)), 80),
            scheduler,
            mode,
            snat: u32::from(Ipv4Addr::new(198, 19, 2, 1)),
            down_policy: DownPolicy::Keep,
            backends: vec![parse_backend("198.19.2.11:8000").unwrap(), down],
            timeouts: Default::default(),
            health: None,
            announce: false,
        }
    }

    #[test]
    fn text_as_before_and_json_round_trip() {
        let lb = LbShared::new(
            &[
                svc("web", PROTO_TCP, Scheduler::Weighted, Mode::FullNat),
                svc("dns", PROTO_UDP, Scheduler::Maglev, Mode::Dnat),
            ],
            2,
        );
        let recs = LbServiceRecord::all(&lb);
        let rows: Vec<String> = recs.iter().flat_map(|r| r.rows()).collect();
        // The rows `ctl lb show` printed before there were records.
        assert_eq!(
            rows,
            [
                "web 198.19.1.100:80 tcp Weighted fullnat snat 198.19.2.1 backends 2 1 up",
                "  backend 198.19.2.11:8000 weight 1 up conns 0 active 0 bytes 0",
                "  backend 198.19.2.12:8000 weight 2 down conns 0 active 0 bytes 0",
                "dns 198.19.1.100:80 udp Maglev dnat backends 2 1 up",
                "  backend 198.19.2.11:8000 weight 1 up conns 0 active 0 bytes 0",
                "  backend 198.19.2.12:8000 weight 2 down conns 0 active 0 bytes 0",
            ]
        );
        assert_eq!(recs[1].snat, None);
        for r in &recs {
            let json = serde_json::to_string(r).unwrap();
            assert_eq!(
                &serde_json::from_str::<LbServiceRecord>(&json).unwrap(),
                r,
                "{json}"
            );
        }
        let json = serde_json::to_value(&recs[0]).unwrap();
        assert_eq!(json["scheduler"], "weighted");
        assert_eq!(json["mode"], "fullnat");
        assert_eq!(json["snat"], "198.19.2.1");
        assert_eq!(json["backends"][1]["state"], "down");
        assert_eq!(json["backends"][1]["endpoint"]["port"], 8000);
        assert!(!json.as_object().unwrap().contains_key("announced"));
        // An announced service: one more line after its backends, one more JSON field.
        let mut cfg = svc("web", PROTO_TCP, Scheduler::Maglev, Mode::FullNat);
        cfg.announce = true;
        let lb2 = LbShared::new(std::slice::from_ref(&cfg), 1);
        lb2.set_announced(cfg.vip.addr, true);
        let r = &LbServiceRecord::all(&lb2)[0];
        let rows: Vec<String> = r.rows().collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(
            rows[0],
            "web 198.19.1.100:80 tcp Maglev fullnat snat 198.19.2.1 backends 2 1 up"
        );
        assert_eq!(rows[3], "  vip 198.19.1.100 announced");
        let json = serde_json::to_string(r).unwrap();
        assert!(json.contains("\"announced\":true"), "{json}");
        assert_eq!(&serde_json::from_str::<LbServiceRecord>(&json).unwrap(), r);
        lb2.set_announced(cfg.vip.addr, false);
        let rows: Vec<String> = LbServiceRecord::all(&lb2)[0].rows().collect();
        assert_eq!(rows[3], "  vip 198.19.1.100 withdrawn");
        let b = LbBackendRecord {
            health_check_failed: true,
            ..recs[0].backends[1].clone()
        };
        assert_eq!(
            b.to_string(),
            "  backend 198.19.2.12:8000 weight 2 down conns 0 active 0 bytes 0 health-check-failed"
        );
    }
}
