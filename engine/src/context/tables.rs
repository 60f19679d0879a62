//! What workers read: the ports (fixed at start), the routes with their next
//! hops resolved to port indices, and the neighbor map. The control thread
//! publishes new route and neighbor snapshots with arc-swap; a worker loads
//! the current pointers once per burst (a few ns, no lock, never blocks the
//! writer and is never blocked by it).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Deserialize;

use crate::l3::nexthop::NextHopId;
use crate::l3::route_table::Fib;
use crate::neighbor::NeighborMap;
use crate::wire::Mac;

/// What a port does with the frames it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortMode {
    /// A routed port: accepts frames to its own MAC, routes by IP.
    Router,
    /// A member of a bridge domain (L2 learning switch).
    Switch,
}

/// Reverse-path filtering of a routed port (RFC 3704), like Linux's rp_filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RpFilter {
    /// No check (the default, as for a router in the middle of a network).
    #[default]
    Off,
    /// The source must be routable at all.
    Loose,
    /// The route back to the source must leave by the port the packet came in on.
    Strict,
}

/// A port as the data plane sees it.
#[derive(Debug, Clone)]
pub struct PortInfo {
    pub index: u16,
    /// The configuration's name (`lan`), used by `dev` in routes and by ctl.
    pub name: String,
    /// The Linux interface.
    pub interface: String,
    pub mac: Mac,
    /// IP MTU: the largest IP packet sent on this port.
    pub mtu: u16,
    pub mode: PortMode,
    pub v4: Vec<(Ipv4Addr, u8)>,
    pub v6: Vec<(Ipv6Addr, u8)>,
}

impl PortInfo {
    /// The link-local address derived from the MAC (modified EUI-64, RFC 4291
    /// appendix A): the source of ND messages and ICMPv6 errors when the port
    /// has no global address.
    pub fn link_local(&self) -> Ipv6Addr {
        let m = self.mac;
        Ipv6Addr::new(
            0xfe80,
            0,
            0,
            0,
            u16::from_be_bytes([m[0] ^ 0x02, m[1]]),
            u16::from_be_bytes([m[2], 0xff]),
            u16::from_be_bytes([0xfe, m[3]]),
            u16::from_be_bytes([m[4], m[5]]),
        )
    }

    /// Whether `a` is in one of this port's IPv4 subnets.
    pub fn on_link_v4(&self, a: Ipv4Addr) -> bool {
        self.v4.iter().any(|&(p, l)| same_net_v4(p, a, l))
    }

    pub fn on_link_v6(&self, a: Ipv6Addr) -> bool {
        a.segments()[0] & 0xffc0 == 0xfe80 || self.v6.iter().any(|&(p, l)| same_net_v6(p, a, l))
    }

    /// The address to send from toward `dst` on this port: one in dst's
    /// subnet if any, else the first.
    pub fn src_v4(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        self.v4
            .iter()
            .find(|&&(p, l)| same_net_v4(p, dst, l))
            .or(self.v4.first())
            .map(|&(a, _)| a)
    }

    pub fn src_v6(&self, dst: Ipv6Addr) -> Ipv6Addr {
        if dst.segments()[0] & 0xffc0 == 0xfe80 {
            return self.link_local();
        }
        self.v6
            .iter()
            .find(|&&(p, l)| same_net_v6(p, dst, l))
            .or(self.v6.first())
            .map_or_else(|| self.link_local(), |&(a, _)| a)
    }

    /// Whether the port owns this IPv6 address (its link-local one included).
    pub fn owns_v6(&self, a: Ipv6Addr) -> bool {
        a == self.link_local() || self.v6.iter().any(|&(p, _)| p == a)
    }

    pub fn owns_v4(&self, a: Ipv4Addr) -> bool {
        self.v4.iter().any(|&(p, _)| p == a)
    }

    /// Whether `a` is the directed broadcast of one of the port's subnets (/30 and shorter).
    pub fn subnet_broadcast_v4(&self, a: Ipv4Addr) -> bool {
        self.v4.iter().any(|&(p, l)| {
            l <= 30 && same_net_v4(p, a, l) && (u32::from(a) | (u32::MAX << (32 - l))) == u32::MAX
        })
    }
}

pub fn same_net_v4(a: Ipv4Addr, b: Ipv4Addr, len: u8) -> bool {
    len == 0 || (u32::from(a) ^ u32::from(b)) >> (32 - u32::from(len.min(32))) == 0
}

pub fn same_net_v6(a: Ipv6Addr, b: Ipv6Addr, len: u8) -> bool {
    len == 0 || (u128::from(a) ^ u128::from(b)) >> (128 - u32::from(len.min(128))) == 0
}

/// The engine's ports and its own addresses. Fixed for the engine's life.
#[derive(Debug, Clone)]
pub struct Interfaces {
    pub ports: Vec<PortInfo>,
    /// Every IPv4 address of the engine, flat, for the per-packet "is it ours" test.
    local4: Vec<u32>,
    /// Directed broadcast addresses (subnets /30 and shorter) with their port.
    bcast4: Vec<(u16, u32)>,
    /// Every IPv6 address of the engine (link-local ones included).
    local6: Vec<u128>,
    /// Reverse-path filter per port (index = port).
    rpf: Vec<RpFilter>,
    /// Ports that are bridges' routed interfaces (BVIs), one bit per port:
    /// what is sent out of them goes into their bridge.
    bvi: u64,
}

impl Interfaces {
    pub fn new(ports: Vec<PortInfo>) -> Self {
        let local4 = ports
            .iter()
            .flat_map(|p| p.v4.iter().map(|&(a, _)| u32::from(a)))
            .collect();
        let bcast4 = ports
            .iter()
            .flat_map(|p| {
                p.v4.iter()
                    .filter(|&&(_, l)| l <= 30)
                    .map(move |&(a, l)| (p.index, u32::from(a) | (u32::MAX >> l)))
            })
            .collect();
        let local6 = ports
            .iter()
            .flat_map(|p| {
                p.v6.iter()
                    .map(|&(a, _)| u128::from(a))
                    .chain(std::iter::once(u128::from(p.link_local())))
            })
            .collect();
        let rpf = vec![RpFilter::Off; ports.len()];
        Interfaces {
            ports,
            local4,
            bcast4,
            local6,
            rpf,
            bvi: 0,
        }
    }

    /// Marks a port as a bridge's routed interface (at start).
    pub fn set_bvi(&mut self, port: u16) {
        if port < 64 {
            self.bvi |= 1 << port;
        }
    }

    /// Whether `port` is a bridge's routed interface (no socket: what it
    /// sends goes into the bridge).
    #[inline]
    pub fn is_bvi(&self, port: u16) -> bool {
        port < 64 && self.bvi & (1 << port) != 0
    }

    /// Sets a port's reverse-path filter mode (at start).
    pub fn set_rpf(&mut self, port: u16, mode: RpFilter) {
        if let Some(m) = self.rpf.get_mut(usize::from(port)) {
            *m = mode;
        }
    }

    #[inline]
    pub fn rpf(&self, port: u16) -> RpFilter {
        self.rpf.get(usize::from(port)).copied().unwrap_or_default()
    }

    /// Whether `a` (host order) is the directed broadcast of one of `port`'s subnets.
    #[inline]
    pub fn is_subnet_broadcast_v4(&self, port: u16, a: u32) -> bool {
        self.bcast4.iter().any(|&(p, b)| p == port && b == a)
    }

    #[inline]
    pub fn port(&self, i: u16) -> Option<&PortInfo> {
        self.ports.get(usize::from(i))
    }

    /// Whether the IPv4 address is one of the engine's (any port: a router
    /// answers for all its addresses on every port, RFC 1812 §2.2.5.1 weak host).
    #[inline]
    pub fn is_local_v4(&self, a: Ipv4Addr) -> bool {
        let a = u32::from(a);
        self.local4.contains(&a)
    }

    #[inline]
    pub fn is_local_v6(&self, a: Ipv6Addr) -> bool {
        let a = u128::from(a);
        self.local6.contains(&a)
    }

    pub fn by_name(&self, name: &str) -> Option<&PortInfo> {
        self.ports
            .iter()
            .find(|p| p.name == name || p.interface == name)
    }
}

/// One way out, resolved: the egress port and the gateway (None: the
/// destination is on the link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedHop {
    pub port: u16,
    pub gateway: Option<IpAddr>,
}

/// A next-hop entry resolved: its first (often only) hop inline, so the
/// common single-path lookup is one load; ECMP members live in a flat array.
#[derive(Debug, Clone, Copy)]
struct Entry {
    first: ResolvedHop,
    /// Members: `members[start..start + n]`; 0 for an entry that does not resolve.
    start: u32,
    n: u16,
    /// A route that forwards nothing (n is 0).
    reject: Option<crate::l3::nexthop::Reject>,
}

/// The FIB and, for each next-hop id, its hops resolved to ports.
#[derive(Debug)]
pub struct Routes {
    pub fib: Arc<Fib>,
    /// Indexed by [`NextHopId`]. An entry that does not resolve (unknown
    /// device, gateway on no port's subnet) is treated as no route.
    entries: Vec<Entry>,
    members: Vec<ResolvedHop>,
}

impl Routes {
    /// Resolves every next-hop entry of `fib` against the ports.
    pub fn resolve(fib: Arc<Fib>, ifs: &Interfaces) -> Routes {
        // Every id up to the highest in use: after deletes the ids have holes,
        // and an entry added since can sit above the count of live entries.
        let n = fib.nexthops.id_bound();
        let mut entries = Vec::with_capacity(n);
        let mut members = Vec::new();
        let none = ResolvedHop {
            port: u16::MAX,
            gateway: None,
        };
        for id in 0..n {
            let resolved: Vec<ResolvedHop> = match fib.nexthops.get(id as NextHopId) {
                Some(e) => e
                    .hops()
                    .iter()
                    .filter_map(|h| resolve_hop(h, ifs))
                    .collect(),
                None => Vec::new(),
            };
            let start = members.len() as u32;
            let n = resolved.len().min(usize::from(u16::MAX)) as u16;
            let first = resolved.first().copied().unwrap_or(none);
            if n > 1 {
                members.extend_from_slice(&resolved);
            }
            let reject = fib.nexthops.get(id as NextHopId).and_then(|e| e.reject());
            entries.push(Entry {
                first,
                start,
                n,
                reject,
            });
        }
        Routes {
            fib,
            entries,
            members,
        }
    }

    /// The hop carrying a flow, for a lookup result.
    #[inline]
    pub fn select(&self, id: NextHopId, flow_hash: u32) -> Option<ResolvedHop> {
        let e = self.entries.get(usize::from(id))?;
        match e.n {
            0 => None,
            1 => Some(e.first),
            n => {
                // Multiply-shift onto [0, n): the same member for the same flow.
                let i = (u64::from(flow_hash) * u64::from(n)) >> 32;
                self.members.get(e.start as usize + i as usize).copied()
            }
        }
    }

    /// The reject type of a route that forwards nothing (`blackhole`,
    /// `unreachable`, `prohibit`), asked after [`Routes::select`] found no hop.
    #[inline]
    pub fn reject(&self, id: NextHopId) -> Option<crate::l3::nexthop::Reject> {
        self.entries.get(usize::from(id)).and_then(|e| e.reject)
    }

    /// Whether the entry is an ECMP group (the flow hash is needed).
    #[inline]
    pub fn is_group(&self, id: NextHopId) -> bool {
        self.entries.get(usize::from(id)).is_some_and(|e| e.n > 1)
    }
}

fn resolve_hop(h: &crate::l3::nexthop::NextHop, ifs: &Interfaces) -> Option<ResolvedHop> {
    match (&h.dev, h.gateway) {
        (Some(d), gw) => ifs.by_name(d).map(|p| ResolvedHop {
            port: p.index,
            gateway: gw,
        }),
        (None, Some(gw)) => {
            let p = ifs.ports.iter().find(|p| match gw {
                IpAddr::V4(a) => p.on_link_v4(a),
                IpAddr::V6(a) => !a.is_unicast_link_local() && p.on_link_v6(a),
            })?;
            Some(ResolvedHop {
                port: p.index,
                gateway: Some(gw),
            })
        }
        (None, None) => None,
    }
}

/// What every stage reads besides the frame, shared by the workers and the
/// control thread: the ports, routes and neighbors (published by arc-swap),
/// capture and trace switches, the shared clock and the handoff inboxes.
/// Features' own tables live beside it, in `dataplane::tables::Tables`.
#[derive(Debug)]
pub struct Shared {
    pub ifs: Arc<Interfaces>,
    pub routes: ArcSwap<Routes>,
    pub neigh: ArcSwap<NeighborMap>,
    /// The running captures' taps, per port (`ctl capture`).
    pub capture: Vec<super::capture::PortTaps>,
    /// Per-packet trace on/off.
    pub trace: std::sync::atomic::AtomicBool,
    /// The clock every worker and the control thread share (MAC table times).
    pub epoch: std::time::Instant,
    /// Inboxes for frames handed between workers (NAT, load balancer and
    /// TCP flows belong to one worker each).
    pub handoff: Option<Arc<super::handoff::Handoff>>,
    /// UDP echo ports on the engine's addresses (`[[udp]]`).
    pub udp_echo: Vec<u16>,
    /// Each worker's ICMP error limits (per destination and in all).
    pub icmp: super::ratelimit::IcmpLimits,
}

impl Shared {
    pub fn new(ifs: Interfaces, routes: Routes, neigh: NeighborMap) -> Shared {
        let n = ifs.ports.len();
        Shared {
            ifs: Arc::new(ifs),
            routes: ArcSwap::from_pointee(routes),
            neigh: ArcSwap::from_pointee(neigh),
            capture: (0..n)
                .map(|_| super::capture::PortTaps::default())
                .collect(),
            trace: std::sync::atomic::AtomicBool::new(false),
            epoch: std::time::Instant::now(),
            handoff: None,
            udp_echo: Vec::new(),
            icmp: super::ratelimit::IcmpLimits::default(),
        }
    }

    /// Milliseconds on the shared clock.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(i: u16, v4: &[(&str, u8)], v6: &[(&str, u8)]) -> PortInfo {
        PortInfo {
            index: i,
            name: format!("p{i}"),
            interface: format!("veth{i}"),
            mac: [0x02, 0, 0, 0, 0, i as u8],
            mtu: 1500,
            mode: PortMode::Router,
            v4: v4.iter().map(|(a, l)| (a.parse().unwrap(), *l)).collect(),
            v6: v6.iter().map(|(a, l)| (a.parse().unwrap(), *l)).collect(),
        }
    }

    #[test]
    fn link_local_is_modified_eui64() {
        let mut p = port(0, &[], &[]);
        p.mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
        assert_eq!(
            p.link_local(),
            "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn subnets_and_sources() {
        let p = port(
            1,
            &[("198.18.1.1", 24), ("198.19.5.1", 30)],
            &[("2001:2:0:1::1", 64)],
        );
        assert!(p.on_link_v4("198.18.1.200".parse().unwrap()));
        assert!(!p.on_link_v4("198.18.2.1".parse().unwrap()));
        assert_eq!(
            p.src_v4("198.19.5.2".parse().unwrap()),
            Some("198.19.5.1".parse().unwrap())
        );
        assert_eq!(
            p.src_v4("198.20.0.1".parse().unwrap()),
            Some("198.18.1.1".parse().unwrap())
        );
        assert!(p.subnet_broadcast_v4("198.18.1.255".parse().unwrap()));
        assert!(p.subnet_broadcast_v4("198.19.5.3".parse().unwrap()));
        assert!(!p.subnet_broadcast_v4("198.18.1.254".parse().unwrap()));
        assert!(p.on_link_v6("2001:2:0:1::99".parse().unwrap()));
        assert!(p.on_link_v6("fe80::1".parse().unwrap()));
        assert_eq!(p.src_v6("fe80::9".parse().unwrap()), p.link_local());
        assert_eq!(
            p.src_v6("2001:2:0:9::9".parse().unwrap()),
            "2001:2:0:1::1".parse::<Ipv6Addr>().unwrap()
        );
        assert!(same_net_v4(
            "1.2.3.4".parse().unwrap(),
            "9.9.9.9".parse().unwrap(),
            0
        ));
    }

    #[test]
    fn resolves_ids_above_the_live_count_after_churn() {
        use crate::l3::route_table::{Route, RouteTable};
        let ifs = Interfaces::new(vec![port(0, &[("198.18.1.1", 24)], &[])]);
        let mut rt = RouteTable::new();
        let route = |p: &str, gw: &str| Route {
            reject: None,
            prefix: p.parse().unwrap(),
            hops: vec![crate::l3::nexthop::NextHop::via(gw.parse().unwrap())],
            metric: 0,
        };
        rt.add(route("198.19.64.0/24", "198.18.1.2")).unwrap();
        rt.add(route("198.19.65.0/24", "198.18.1.3")).unwrap();
        // Replacing the first route's hop frees its id after the new one is
        // taken: the new id is above the number of live entries.
        rt.add(route("198.19.64.0/24", "198.18.1.4")).unwrap();
        let r = Routes::resolve(rt.reader().snapshot().clone(), &ifs);
        let id = r.fib.lookup_v4("198.19.64.1".parse().unwrap()).unwrap();
        assert!(usize::from(id) >= r.fib.nexthops.len());
        assert_eq!(
            r.select(id, 0).and_then(|h| h.gateway),
            Some("198.18.1.4".parse().unwrap())
        );
    }

    #[test]
    fn resolves_by_device_and_by_gateway_subnet() {
        use crate::l3::nexthop::NextHop;
        use crate::l3::prefix::IpPrefix;
        use crate::l3::route_table::{Route, RouteTable};
        let ifs = Interfaces::new(vec![
            port(0, &[("198.18.0.1", 24)], &[]),
            port(1, &[("198.19.0.1", 24)], &[("2001:2:0:1::1", 64)]),
        ]);
        let mut rt = RouteTable::new();
        let pfx = |s: &str| s.parse::<IpPrefix>().unwrap();
        rt.add(Route {
            reject: None,
            prefix: pfx("198.18.100.0/24"),
            hops: vec![NextHop::via("198.19.0.9".parse().unwrap())],
            metric: 0,
        })
        .unwrap();
        rt.add(Route {
            reject: None,
            prefix: pfx("198.18.0.0/24"),
            hops: vec![NextHop {
                gateway: None,
                dev: Some("p0".into()),
            }],
            metric: 0,
        })
        .unwrap();
        rt.add(Route {
            reject: None,
            prefix: pfx("198.18.200.0/24"),
            hops: vec![NextHop::via("198.20.0.1".parse().unwrap())],
            metric: 0,
        })
        .unwrap();
        let fib = rt.reader().snapshot().clone();
        let r = Routes::resolve(fib, &ifs);
        let hop = |a: &str| {
            r.fib
                .lookup(a.parse().unwrap())
                .and_then(|id| r.select(id, 0))
        };
        assert_eq!(
            hop("198.18.100.7"),
            Some(ResolvedHop {
                port: 1,
                gateway: Some("198.19.0.9".parse().unwrap())
            })
        );
        assert_eq!(
            hop("198.18.0.7"),
            Some(ResolvedHop {
                port: 0,
                gateway: None
            })
        );
        // The gateway is on no port's subnet: unresolvable, so no route.
        assert_eq!(hop("198.18.200.7"), None);
    }
}
