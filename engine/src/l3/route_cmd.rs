//! `pktengine route lookup --routes FILE`: load routes in `ip route` syntax, then answer one
//! address per line of standard input with `ADDRESS PREFIX NEXTHOP` or `ADDRESS unreachable`.
//!
//! NEXTHOP is the gateway, the gateways joined by `,` for an ECMP route, or `dev:NAME` for a
//! connected route. The next hop comes from the data-path FIB; the matched prefix is the RIB's
//! (the FIB stores next hops only). Bad route lines and bad addresses are reported on standard
//! error with their line numbers, and the exit status is then 1.

use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::path::Path;

use super::nexthop::NextHopEntry;
use super::route_table::RouteTable;
use super::routes_file::parse_routes;

/// Loads a routes file into a new table; errors are one message per bad line.
pub fn load(path: &Path) -> Result<RouteTable, Vec<String>> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{name}: {e}")])?;
    let routes = parse_routes(&text).map_err(|errs| {
        errs.iter()
            .map(|e| format!("{name}: {e}"))
            .collect::<Vec<_>>()
    })?;
    let mut table = RouteTable::new();
    let mut errs = Vec::new();
    for (line, r) in routes {
        if let Err(e) = table.stage_add(r) {
            errs.push(format!("{name}: line {line}: {e}"));
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    table.publish();
    Ok(table)
}

/// The NEXTHOP column.
pub fn nexthop_token(e: &NextHopEntry) -> String {
    let parts: Vec<String> = e
        .hops()
        .iter()
        .map(|h| match (&h.gateway, &h.dev) {
            (Some(g), _) => g.to_string(),
            (None, Some(d)) => format!("dev:{d}"),
            (None, None) => "blackhole".to_string(),
        })
        .collect();
    parts.join(",")
}

/// Runs the command; returns the exit status.
pub fn lookup(routes: &Path, input: impl BufRead, mut out: impl Write, mut err: impl Write) -> i32 {
    let table = match load(routes) {
        Ok(t) => t,
        Err(msgs) => {
            for m in msgs {
                let _ = writeln!(err, "{m}");
            }
            return 1;
        }
    };
    let fib = table.reader().snapshot();
    let mut status = 0;
    for (i, line) in input.lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                let _ = writeln!(err, "stdin: {e}");
                return 1;
            }
        };
        let word = line.split('#').next().unwrap_or("").trim();
        if word.is_empty() {
            continue;
        }
        let Ok(addr) = word.parse::<IpAddr>() else {
            let _ = writeln!(err, "stdin: line {}: bad address `{word}`", i + 1);
            status = 1;
            continue;
        };
        let res = match (fib.lookup(addr), table.longest_match(addr)) {
            (Some(id), Some((prefix, rib_id))) if id == rib_id => match fib.nexthop(id) {
                Some(e) => writeln!(out, "{addr} {prefix} {}", nexthop_token(e)),
                None => writeln!(out, "{addr} unreachable"),
            },
            (None, None) => writeln!(out, "{addr} unreachable"),
            (f, r) => {
                // FIB and RIB disagree: a bug, never an answer.
                let _ = writeln!(
                    err,
                    "stdin: line {}: internal error: fib {f:?} rib {r:?}",
                    i + 1
                );
                status = 1;
                Ok(())
            }
        };
        if res.is_err() {
            return 1;
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(routes: &str, input: &str) -> (i32, String, String) {
        let dir =
            std::env::temp_dir().join(format!("route_cmd_{}_{}", std::process::id(), routes.len()));
        std::fs::write(&dir, routes).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = lookup(&dir, input.as_bytes(), &mut out, &mut err);
        std::fs::remove_file(&dir).ok();
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn answers() {
        let routes = "default via 198.18.0.1\n198.18.64.0/18 via 198.18.0.2 metric 20\n\
                      198.18.64.0/18 via 198.18.0.3 metric 5\n198.18.128.0/17 via 198.18.0.4 via 198.18.0.5\n\
                      2001:2::/48 via 2001:2::1 dev p1\n198.18.1.0/24 dev p2\n";
        let (code, out, err) = run(
            routes,
            "198.18.64.1\n203.0.113.1\n198.18.200.1\n2001:2::9\n2001:3::1\n198.18.1.1\n",
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            out,
            "198.18.64.1 198.18.64.0/18 198.18.0.3\n203.0.113.1 0.0.0.0/0 198.18.0.1\n\
             198.18.200.1 198.18.128.0/17 198.18.0.4,198.18.0.5\n2001:2::9 2001:2::/48 2001:2::1\n\
             2001:3::1 unreachable\n198.18.1.1 198.18.1.0/24 dev:p2\n"
        );
    }

    #[test]
    fn bad_route_line_fails() {
        let (code, out, err) = run(
            "default via 198.18.0.1\n198.18.0.0/15 via nowhere\n",
            "198.18.0.1\n",
        );
        assert_eq!(code, 1);
        assert!(out.is_empty());
        assert!(
            err.contains("line 2: bad gateway address `nowhere`"),
            "{err}"
        );
    }

    #[test]
    fn bad_address_is_reported_and_the_rest_answered() {
        let (code, out, err) = run("default via 198.18.0.1\n", "198.18.0.7\nfoo\n198.18.0.8\n");
        assert_eq!(code, 1);
        assert_eq!(out.lines().count(), 2);
        assert!(err.contains("line 2: bad address `foo`"), "{err}");
    }
}
