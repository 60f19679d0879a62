//! Which VIPs the engine announces to a routing daemon (`[routing]
//! announce_table`), decided here; `runtime::announce` carries the decision
//! out through a small privileged process that owns the kernel routes.
//!
//! The unit announced is a VIP *address* (a /32 route): several services
//! may share one address on different ports or protocols. The address is
//! announced while the engine is healthy and at least one of its services
//! with `announce = true` has a live backend (up by the operator, passing
//! its health check, with a weight): a route only attracts traffic the
//! engine can serve. Withdrawing it because one of two services on the
//! address lost its backends would cut the other one off as well.

use super::{ServiceConfig, Services};

/// Announced VIPs at most: the announcer's commands are one byte, the
/// VIP's index in the low seven bits.
pub const MAX_VIPS: usize = 128;

/// The fixed list of announced VIP addresses (from the configuration, in
/// ascending order): a VIP's position is its index in the announcer's
/// commands.
pub fn vips(services: &[ServiceConfig]) -> Vec<u32> {
    let mut v: Vec<u32> = services
        .iter()
        .filter(|s| s.announce)
        .map(|s| s.vip.addr)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The engine's side of the rule, as the control thread sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineState {
    /// Every worker's loop is turning (its loop counter moved lately).
    pub workers_running: bool,
    /// The engine is stopping (a signal, a failed worker, the end of `--duration`).
    pub stopping: bool,
}

impl EngineState {
    pub fn healthy(self) -> bool {
        self.workers_running && !self.stopping
    }
}

/// Whether a service has a backend that takes new connections.
pub fn has_live_backend(s: &super::Service) -> bool {
    !s.up.is_empty()
}

/// For each address of `vips`: whether it should be announced now.
pub fn wanted(vips: &[u32], services: &Services, engine: EngineState) -> Vec<bool> {
    vips.iter()
        .map(|&a| {
            engine.healthy()
                && services
                    .list
                    .iter()
                    .any(|s| s.cfg.announce && s.cfg.vip.addr == a && has_live_backend(s))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::Ep;
    use crate::lb::tests::service;
    use crate::lb::{LbShared, Mode, Scheduler};
    use std::net::Ipv4Addr;

    const OK: EngineState = EngineState {
        workers_running: true,
        stopping: false,
    };

    fn ep(s: &str) -> Ep {
        crate::lb::parse_backend(s).unwrap().ep
    }

    fn vip_addr() -> u32 {
        u32::from(Ipv4Addr::new(198, 19, 1, 100))
    }

    #[test]
    fn a_vip_is_announced_while_a_backend_is_live() {
        let cfg = vec![service(
            "web",
            Scheduler::Maglev,
            Mode::FullNat,
            &[("198.19.2.11:80", 1), ("198.19.2.12:80", 1)],
        )];
        let v = vips(&cfg);
        assert_eq!(v, vec![vip_addr()]);
        let lb = LbShared::new(&cfg, 1);
        assert_eq!(wanted(&v, &lb.services.load(), OK), vec![true]);
        // One backend down by the operator: still one live.
        lb.change_backend("web", ep("198.19.2.11:80"), "down", None)
            .unwrap();
        assert_eq!(wanted(&v, &lb.services.load(), OK), vec![true]);
        // Both down: withdrawn.
        lb.change_backend("web", ep("198.19.2.12:80"), "down", None)
            .unwrap();
        assert_eq!(wanted(&v, &lb.services.load(), OK), vec![false]);
        // Up again: announced again.
        lb.change_backend("web", ep("198.19.2.12:80"), "up", None)
            .unwrap();
        assert_eq!(wanted(&v, &lb.services.load(), OK), vec![true]);
        // Removed from the pool: none left.
        lb.change_backend("web", ep("198.19.2.11:80"), "del", None)
            .unwrap();
        lb.change_backend("web", ep("198.19.2.12:80"), "del", None)
            .unwrap();
        assert_eq!(wanted(&v, &lb.services.load(), OK), vec![false]);
    }

    #[test]
    fn failed_health_checks_and_zero_weights_withdraw() {
        let mut cfg = vec![service(
            "web",
            Scheduler::Weighted,
            Mode::FullNat,
            &[("198.19.2.11:80", 1), ("198.19.2.12:80", 0)],
        )];
        cfg[0].backends[0].healthy = false;
        let v = vips(&cfg);
        let lb = LbShared::new(&cfg, 1);
        // .11 failed its check, .12 has no weight: nothing takes connections.
        assert_eq!(wanted(&v, &lb.services.load(), OK), vec![false]);
        cfg[0].backends[0].healthy = true;
        let lb = LbShared::new(&cfg, 1);
        assert_eq!(wanted(&v, &lb.services.load(), OK), vec![true]);
    }

    #[test]
    fn a_stopping_or_stalled_engine_withdraws_everything() {
        let cfg = vec![service(
            "web",
            Scheduler::Maglev,
            Mode::FullNat,
            &[("198.19.2.11:80", 1)],
        )];
        let v = vips(&cfg);
        let lb = LbShared::new(&cfg, 1);
        let snap = lb.services.load();
        for e in [
            EngineState {
                workers_running: true,
                stopping: true,
            },
            EngineState {
                workers_running: false,
                stopping: false,
            },
        ] {
            assert_eq!(wanted(&v, &snap, e), vec![false], "{e:?}");
        }
    }

    #[test]
    fn services_sharing_an_address_announce_it_together_and_opted_out_ones_do_not() {
        let mut web = service(
            "web",
            Scheduler::Maglev,
            Mode::FullNat,
            &[("198.19.2.11:80", 1)],
        );
        let mut tls = service(
            "tls",
            Scheduler::Maglev,
            Mode::FullNat,
            &[("198.19.2.11:443", 1)],
        );
        tls.vip.port = 443;
        let mut other = service(
            "dns",
            Scheduler::Maglev,
            Mode::FullNat,
            &[("198.19.2.11:53", 1)],
        );
        other.vip = Ep::new(u32::from(Ipv4Addr::new(198, 19, 1, 101)), 53);
        other.announce = false;
        web.backends[0].up = false;
        let cfg = vec![web, tls.clone(), other];
        let v = vips(&cfg);
        // One address (web and tls share it); dns opted out.
        assert_eq!(v, vec![vip_addr()]);
        let lb = LbShared::new(&cfg, 1);
        // web has no live backend but tls has: the address stays announced.
        assert_eq!(wanted(&v, &lb.services.load(), OK), vec![true]);
        lb.change_backend("tls", ep("198.19.2.11:443"), "down", None)
            .unwrap();
        assert_eq!(wanted(&v, &lb.services.load(), OK), vec![false]);
        // Opting out of the only service of an address leaves nothing to announce.
        tls.announce = false;
        assert!(vips(&[tls]).is_empty());
    }
}
