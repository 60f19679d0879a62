//! From a validated configuration to what the data plane reads: the ports
//! as they are on this machine (MAC), the route table with the connected
//! routes of the port addresses and the configured routes.

use std::net::IpAddr;
use std::path::Path;

use crate::context::tables::{Interfaces, PortInfo};
use crate::control::config::{Config, InterfaceAddress};
use crate::l3::nexthop::NextHop;
use crate::l3::prefix::IpPrefix;
use crate::l3::route_table::{Route, RouteTable};
use crate::l3::routes_file;
use crate::wire::Mac;

/// The routes of the configuration's `routes` list (not the connected ones,
/// not the routes file): what a reload replaces.
pub fn config_routes(cfg: &Config) -> Vec<Route> {
    cfg.routing
        .routes
        .iter()
        .filter_map(|l| routes_file::parse_line(&l.text).ok().flatten())
        .collect()
}

/// The configured filter rules and policies, installed (and published) in the control thread.
pub fn filter(cfg: &Config, ctl: &mut super::control::Control) -> Result<(), String> {
    use crate::filter::rule::{Action, Rule};
    let port = |n: &str| {
        cfg.ports
            .iter()
            .position(|p| p.name == n || p.interface == n)
            .map(|i| i as u16)
    };
    let mut rules = Vec::new();
    for r in &cfg.filter.rules {
        rules.push(
            Rule::parse(&r.text, &port)
                .map_err(|e| format!("filter rule on line {}: {e}", r.line))?,
        );
    }
    let act = |drop: bool| if drop { Action::Drop } else { Action::Accept };
    ctl.filter_default = act(cfg.filter.default_drop);
    ctl.filter_policy = cfg
        .ports
        .iter()
        .map(|p| {
            cfg.filter
                .policy
                .iter()
                .find(|(n, _)| *n == p.name || *n == p.interface)
                .map_or(ctl.filter_default, |(_, d)| act(*d))
        })
        .collect();
    ctl.filter_rules = rules;
    ctl.publish_filter();
    Ok(())
}

/// Reads an interface's MAC from sysfs.
pub fn interface_mac(ifname: &str) -> Result<Mac, String> {
    let path = Path::new("/sys/class/net").join(ifname).join("address");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_mac(text.trim())
        .ok_or_else(|| format!("{}: `{}` is not a MAC address", path.display(), text.trim()))
}

pub use crate::wire::parse_mac;

pub fn format_mac(m: &Mac) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// The ports as the data plane sees them; `mac_of` reads a MAC (sysfs in
/// the engine, a table in tests).
pub fn interfaces(
    cfg: &Config,
    mac_of: &dyn Fn(&str) -> Result<Mac, String>,
) -> Result<Interfaces, String> {
    let mut ports = Vec::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        let mac = match p.bvi {
            // A bridge's routed interface: no Linux interface, its own MAC.
            Some(mac) => mac,
            None => mac_of(&p.interface).map_err(|e| format!("port `{}`: {e}", p.name))?,
        };
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for a in &p.addresses {
            match a.addr {
                IpAddr::V4(x) => v4.push((x, a.prefix_len)),
                IpAddr::V6(x) => v6.push((x, a.prefix_len)),
            }
        }
        ports.push(PortInfo {
            index: i as u16,
            name: p.name.clone(),
            interface: p.interface.clone(),
            mac,
            mtu: p.mtu,
            mode: p.mode,
            v4,
            v6,
        });
    }
    let mut ifs = Interfaces::new(ports);
    for (i, p) in cfg.ports.iter().enumerate() {
        ifs.set_rpf(i as u16, p.rp_filter);
        if p.bvi.is_some() {
            ifs.set_bvi(i as u16);
        }
    }
    Ok(ifs)
}

/// The connected route of an interface address: its subnet, out of its port.
pub fn connected_route(port: &str, a: &InterfaceAddress) -> Option<Route> {
    let prefix = match a.addr {
        IpAddr::V4(x) => {
            let bits = if a.prefix_len == 0 {
                0
            } else {
                u32::from(x) & (u32::MAX << (32 - a.prefix_len))
            };
            IpPrefix::V4(crate::l3::prefix::Ipv4Prefix::from_bits(
                bits,
                a.prefix_len,
            )?)
        }
        IpAddr::V6(x) => {
            let bits = if a.prefix_len == 0 {
                0
            } else {
                u128::from(x) & (u128::MAX << (128 - a.prefix_len))
            };
            IpPrefix::V6(crate::l3::prefix::Ipv6Prefix::from_bits(
                bits,
                a.prefix_len,
            )?)
        }
    };
    Some(Route {
        reject: None,
        prefix,
        hops: vec![NextHop {
            gateway: None,
            dev: Some(port.to_string()),
        }],
        metric: 0,
    })
}

/// The route table at start: connected routes, then the configured routes
/// (already validated by the configuration parser).
pub fn route_table(cfg: &Config) -> Result<RouteTable, String> {
    let mut rt = RouteTable::new();
    for p in &cfg.ports {
        for a in &p.addresses {
            if let Some(r) = connected_route(&p.name, a) {
                rt.stage_add(r)
                    .map_err(|e| format!("connected route of {a}: {e}"))?;
            }
        }
    }
    for line in &cfg.routing.routes {
        match routes_file::parse_line(&line.text) {
            Ok(Some(r)) => rt
                .stage_add(r)
                .map_err(|e| format!("line {}: {e}", line.line))?,
            Ok(None) => {}
            Err(e) => return Err(format!("line {}: {e}", line.line)),
        }
    }
    if let Some(f) = &cfg.routing.routes_file {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        match routes_file::parse_routes(&text) {
            Ok(routes) => {
                for (line, r) in routes {
                    rt.stage_add(r)
                        .map_err(|e| format!("{}:{line}: {e}", f.display()))?;
                }
            }
            Err(errors) => {
                let shown: Vec<String> = errors
                    .iter()
                    .take(20)
                    .map(|e| format!("{}:{}: {}", f.display(), e.line, e.reason))
                    .collect();
                return Err(format!(
                    "{} bad route lines:\n{}",
                    errors.len(),
                    shown.join("\n")
                ));
            }
        }
    }
    rt.publish();
    Ok(rt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trip() {
        let m = parse_mac("02:ab:00:ff:10:01").unwrap();
        assert_eq!(m, [0x02, 0xab, 0, 0xff, 0x10, 0x01]);
        assert_eq!(format_mac(&m), "02:ab:00:ff:10:01");
        assert_eq!(parse_mac("02:ab:00:ff:10"), None);
        assert_eq!(parse_mac("02:ab:00:ff:10:01:02"), None);
        assert_eq!(parse_mac("zz:ab:00:ff:10:01"), None);
    }

    #[test]
    fn connected_routes_mask_host_bits() {
        let a: InterfaceAddress = "198.18.1.1/24".parse().unwrap();
        let r = connected_route("lan", &a).unwrap();
        assert_eq!(r.prefix.to_string(), "198.18.1.0/24");
        assert_eq!(r.hops[0].dev.as_deref(), Some("lan"));
        let a: InterfaceAddress = "2001:2:0:1::1/64".parse().unwrap();
        assert_eq!(
            connected_route("lan", &a).unwrap().prefix.to_string(),
            "2001:2:0:1::/64"
        );
    }
}
