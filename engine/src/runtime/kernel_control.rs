//! `[routing] kernel_control`: routing daemons (BIRD, FRR) in the engine's
//! network namespace are its control plane, so control traffic for the
//! engine's own addresses must reach the kernel. At set-up, while still
//! root, for every router port (switch ports and bridge interfaces are left
//! alone):
//!
//! - the port's steering program gets its addresses (IPv6 link-local
//!   included) and the rules: BGP, BFD and the `kernel_control_extra` ports
//!   (source or destination), OSPF and the extra protocols, ARP and ND;
//! - the kernel interface gets every address of the port it lacks (IPv6
//!   without duplicate address detection: the engine already answers for
//!   it), so a daemon can speak from them; addresses already there stay, and
//!   nothing is removed at exit;
//! - the port's MAC must be the interface's (the engine reads it from
//!   sysfs), so the kernel and the engine answer with the same MAC.
//!
//! The addresses are added with iproute2, as `kernel_routes` reads routes
//! with it: its JSON and its command line are stable, and a hand-written
//! rtnetlink request would add code without adding capability.

use std::net::IpAddr;
use std::process::Command;

use crate::context::tables::PortInfo;
use crate::control::config::KernelControl;
use crate::steer::{SteerError, Steering};

/// Writes the kernel-control rules for port `p` into its steering program.
pub fn program(s: &mut Steering, kc: &KernelControl, p: &PortInfo) -> Result<(), SteerError> {
    for &(a, _) in &p.v4 {
        s.pass_local_addr(IpAddr::V4(a), true)?;
    }
    for &(a, _) in &p.v6 {
        s.pass_local_addr(IpAddr::V6(a), true)?;
    }
    s.pass_local_addr(IpAddr::V6(p.link_local()), true)?;
    for &proto in &kc.protocols {
        s.pass_local_proto(proto, true)?;
    }
    for &(proto, port) in &kc.l4_ports {
        s.pass_local_port(proto, port, true)?;
    }
    s.pass_nd(kc.arp_nd)?;
    s.pass_arp(kc.arp_nd)?;
    s.pass_control(true)
}

/// The addresses the kernel interface `ifname` carries, as `ip -json addr` lists them.
fn kernel_addresses(ifname: &str) -> Result<Vec<IpAddr>, String> {
    let out = Command::new("ip")
        .args(["-json", "addr", "show", "dev", ifname])
        .output()
        .map_err(|e| format!("running `ip addr show dev {ifname}`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`ip addr show dev {ifname}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let links: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("`ip -json addr` output: {e}"))?;
    Ok(links
        .iter()
        .filter_map(|l| l.get("addr_info")?.as_array())
        .flatten()
        .filter_map(|a| a.get("local")?.as_str()?.parse().ok())
        .collect())
}

/// Adds to the kernel interface of port `p` every address of the port it
/// lacks (the link-local one included); returns those added.
pub fn ensure_addresses(p: &PortInfo) -> Result<Vec<String>, String> {
    let have = kernel_addresses(&p.interface)?;
    let wanted =
        p.v4.iter()
            .map(|&(a, l)| (IpAddr::V4(a), l))
            .chain(p.v6.iter().map(|&(a, l)| (IpAddr::V6(a), l)))
            .chain(std::iter::once((IpAddr::V6(p.link_local()), 64)));
    let mut added = Vec::new();
    for (a, len) in wanted {
        if have.contains(&a) {
            continue;
        }
        let cidr = format!("{a}/{len}");
        let mut cmd = Command::new("ip");
        cmd.args(["addr", "add", &cidr, "dev", &p.interface]);
        if a.is_ipv6() {
            cmd.arg("nodad");
        }
        let out = cmd
            .output()
            .map_err(|e| format!("running `ip addr add {cidr} dev {}`: {e}", p.interface))?;
        if !out.status.success() {
            return Err(format!(
                "`ip addr add {cidr} dev {}` failed: {}{}",
                p.interface,
                String::from_utf8_lossy(&out.stderr).trim(),
                if a.is_ipv6() {
                    format!(
                        " (is IPv6 off on it? net.ipv6.conf.{}.disable_ipv6)",
                        p.interface
                    )
                } else {
                    String::new()
                }
            ));
        }
        added.push(cidr);
    }
    Ok(added)
}

/// Checks that the port's MAC is its interface's (the kernel answers ARP
/// and ND with the interface's MAC, the engine with the port's).
pub fn check_mac(p: &PortInfo) -> Result<(), String> {
    let m = super::setup::interface_mac(&p.interface)?;
    if m != p.mac {
        return Err(format!(
            "port `{}`: MAC {} differs from interface {}'s {}: the kernel and the engine would answer with different MACs",
            p.name,
            super::setup::format_mac(&p.mac),
            p.interface,
            super::setup::format_mac(&m)
        ));
    }
    Ok(())
}
