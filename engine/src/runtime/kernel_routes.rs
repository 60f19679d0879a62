//! `--import-kernel-routes`: copies the kernel's main routing table (IPv4
//! and IPv6) into the engine once at start.
//!
//! The table is read over rtnetlink by iproute2 (`ip -json route show table
//! main`), whose JSON is stable and documented; writing our own rtnetlink
//! dump parser would add code without adding capability. Routes whose
//! device is not one of the engine's ports are resolved by gateway (the
//! port whose subnet holds it); kernel-only routes (local, broadcast,
//! link-local, routes through devices the engine does not own and without a
//! gateway) are skipped and counted in the log.

use std::process::Command;

use crate::control::config::Config;
use crate::l3::route_table::RouteTable;
use crate::l3::routes_file;

/// Imports the kernel's main table; returns how many routes were added.
pub fn import(rt: &mut RouteTable, cfg: &Config) -> Result<usize, String> {
    let mut added = 0;
    let mut skipped = 0;
    for family in ["-4", "-6"] {
        let out = Command::new("ip")
            .args([family, "-json", "route", "show", "table", "main"])
            .output()
            .map_err(|e| format!("running `ip route`: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`ip {family} route show` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let routes: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("`ip -json route` output: {e}"))?;
        for r in routes {
            match to_line(&r, cfg) {
                Some(line) => match routes_file::parse_line(&line) {
                    Ok(Some(route)) => {
                        if rt.stage_add(route).is_ok() {
                            added += 1;
                        } else {
                            skipped += 1;
                        }
                    }
                    _ => skipped += 1,
                },
                None => skipped += 1,
            }
        }
    }
    rt.publish();
    if skipped > 0 {
        tracing::info!("kernel routes: {skipped} skipped (local, link-local, or through devices the engine does not own)");
    }
    Ok(added)
}

/// One `ip -json route` object as a routes-file line, or None to skip it.
fn to_line(r: &serde_json::Value, cfg: &Config) -> Option<String> {
    let dst = r.get("dst")?.as_str()?;
    if r.get("type")
        .and_then(|t| t.as_str())
        .is_some_and(|t| t != "unicast")
    {
        return None;
    }
    if dst.starts_with("fe80:") || dst.starts_with("ff00:") || dst == "multicast" {
        return None;
    }
    let gw = r.get("gateway").and_then(|g| g.as_str());
    let dev = r.get("dev").and_then(|d| d.as_str());
    let port = dev.and_then(|d| {
        cfg.ports
            .iter()
            .find(|p| p.interface == d)
            .map(|p| p.name.clone())
    });
    let metric = r.get("metric").and_then(|m| m.as_u64()).unwrap_or(0);
    let mut line = dst.to_string();
    match (gw, port) {
        (Some(g), Some(p)) => line += &format!(" via {g} dev {p}"),
        (Some(g), None) => line += &format!(" via {g}"),
        (None, Some(p)) => line += &format!(" dev {p}"),
        (None, None) => return None,
    }
    line += &format!(" metric {metric}");
    Some(line)
}
