//! What this build implements: one table, printed by `pktengine status` and copied verbatim
//! into the README's "## Status" table. A unit test below reads README.md and fails if the two
//! differ, so they cannot drift apart.

use core::fmt;

/// One row of the status table: a capability and how far it is done (and tested).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    /// The README's "capability" column.
    pub capability: &'static str,
    /// The README's "state" column.
    pub state: &'static str,
}

/// What this build implements, in the README's order. Edit here, then copy the rows into the
/// README (the test `readme_table_matches_features` prints the table to paste).
pub const FEATURES: &[Feature] = &[
    Feature {
        capability: "Wire formats: Ethernet II with up to two 802.1Q/802.1ad tags, ARP, IPv4 \
            (options kept opaque), IPv6 with extension-header walk, ICMPv4, ICMPv6 incl. NS/NA, \
            UDP, TCP with options",
        state: "implemented, property-tested, fuzz targets",
    },
    Feature {
        capability: "Checksums: fast RFC 1071 sum, pseudo-headers, RFC 1624 incremental updates",
        state: "implemented",
    },
    Feature {
        capability: "AF_XDP ports: own UMEM/ring layer on libc + memmap2, copy/zero-copy bind \
            with fallback, need_wakeup, shared UMEM, frame ledger, XDP_STATISTICS, in-memory port",
        state: "implemented, netns-tested",
    },
    Feature {
        capability: "XDP steering program (C): blocklist by source prefix, pass to kernel by \
            ethertype / destination prefix / L4 port, control traffic to the engine's own \
            addresses for routing daemons (BGP, BFD, OSPF, ARP/ND: `kernel_control`, the engine \
            learning its neighbors from copies), symmetric flow hash over sockets of a \
            queue, per-CPU verdict counters, bpf_link attach (driver, generic fallback)",
        state: "implemented, netns-tested",
    },
    Feature {
        capability: "Per-core workers (pinned, run to completion, busy or adaptive polling), \
            control thread with lock-free publication (arc-swap), `pktengine run` (TOML config \
            refused with file:line errors before anything is attached), `pktengine ctl` (stats \
            with `--watch`, route add/del/show, arp show, capture to pcap with tcpdump filters, trace; \
            `--json` on every command: a versioned schema per command, docs/JSON.md), Prometheus \
            metrics (counters and gauges with HELP, per port, worker and drop reason, table \
            sizes, busy time; docs/METRICS.md), graceful shutdown, least privilege after set-up \
            (an unprivileged user, no capabilities, a seccomp allow-list per thread role)",
        state: "implemented, netns-tested, metrics checked by promtool and a Prometheus server",
    },
    Feature {
        capability: "LPM route tables (IPv4, IPv6): Poptrie with an 18-bit direct array, batch \
            lookup, lock-free publication (arc-swap) of rebuilt or patched tables, `ip route` \
            file syntax with metrics, `pktengine route lookup`",
        state: "implemented, tested against a linear-scan model and the full Internet table",
    },
    Feature {
        capability: "Router: IPv4 (RFC 1812) and IPv6 (RFC 8200/4443/4861) forwarding, ICMP \
            errors (rate-limited), fragmentation / Packet Too Big, martians, ECMP and metrics, \
            ARP and ND with bounded waiting queues and retries, ping and traceroute to and \
            through the engine, kernel route import, strict/loose reverse-path filter, no cache \
            poisoning by unsolicited ARP, blackhole/unreachable/prohibit routes, a live mirror of a \
            kernel routing table (rtnetlink: ECMP, metrics, resync after lost notifications) so \
            BIRD or FRR drive the FIB",
        state: "implemented, netns-tested against Linux hosts and real BIRD/FRR daemons (BGP, OSPF, \
            ECMP, the full table), fuzzed",
    },
    Feature {
        capability: "Traffic generator and sink (AF_XDP: UDP/TCP templates, flows, IMIX, pacing, \
            loss/reorder, latency percentiles) and the system benchmark vs the kernel (router, \
            full table, XDP redirect, NAT vs nftables, switch vs Linux bridge; RFC 2544 search; \
            Markdown, CSV, PNG)",
        state: "implemented, with the TCP comparison (bulk both ways, connections/s)",
    },
    Feature {
        capability: "L2 learning switch (802.1D learning, aging, static entries, capacity limit) \
            with 802.1Q access and trunk ports; lock-free MAC table shared by all workers; `ctl \
            mac show/flush`; bridge virtual interfaces (routed bridges, one per VLAN)",
        state: "implemented, netns-tested",
    },
    Feature {
        capability: "NAT44 (NAPT, RFC 4787/5382/5508/7857): endpoint-independent mapping, port \
            preservation, three filtering behaviours, paired pools, per-host limit, TCP state \
            timers, ICMP query and error translation, hairpinning, static forwards, fragments \
            without reassembly, per-worker ownership with handoff, `ctl nat show/flush`",
        state: "implemented, netns-tested against Linux hosts, fuzzed",
    },
    Feature {
        capability: "Packet filter: ordered nftables-like rules (ports, MACs, VLAN, prefixes, \
            protocol, port ranges, TCP flags, ICMP type/code, `ct state`), accept/drop/reject \
            (ICMP prohibited or TCP RST), per-port default policy, tuple-space classifier, hit \
            counters, `ctl filter add/del/show`, leading source-prefix drops pushed into XDP; \
            stateful mode: connection tracking as nf_conntrack (TCP states and loose window \
            check, UDP, ICMP/ICMPv6 queries and related errors, IPv4 and IPv6) on the NAT's \
            per-worker connection table (a NATed flow's entry is its NAT session), per-state \
            time-outs, table limit with eviction, `ctl conn show`",
        state: "implemented, netns-tested against the same policy in nftables, property-tested \
            (classifier against a linear walk, tracker against a conversation model), fuzzed",
    },
    Feature {
        capability: "TCP endpoint (no SACK)",
        state: "implemented: the RFC 9293 state machine (RFC 5961 checks, MSS/window scale, \
            NewReno, RTO per RFC 6298, persist, delayed ACKs, Nagle, SWS avoidance, TIME-WAIT), \
            RFC 7323 timestamps (RTTM, PAWS), Eifel spurious-retransmission undo (RFC 3522/4015), \
            tail loss probes (RFC 8985), lost-retransmission detection, receive-buffer \
            autotuning, timer wheel, RFC 6528 ISNs, bounded reassembly; built-in `[[tcp]]` apps on the \
            engine's addresses (echo, discard, HTTP/1.1 keep-alive, bulk), RST for ports without \
            one; the same apps as clients over IPv4 or IPv6 (`connect = ADDR:PORT` or \
            `[ADDR]:PORT`); a per-worker application API \
            (listen, accept, connect, read, write, shutdown, close, readiness events); connection \
            ownership by hash with handoff between workers; `[tcp_stack]` limits and timers; \
            `[[udp]]` echo; `ctl tcp show`; SYN cookies beyond a backlog of 128 half-open \
            connections. Netns-tested against the kernel's TCP: 100 MB echo both ways by hash, \
            clean and through 1% loss + 1% reordering (`[impair]`), 1,000 concurrent connections, \
            curl and http.client keep-alive, the engine as client over IPv4 and IPv6 (upload and \
            download verified), \
            two workers, a 2,000-SYN spoofed flood; fuzzed (`tcp_endpoint`). IPv4 and IPv6, \
            limited transmit (RFC 3042); 20 MB echo through 2% loss + 1% reordering against the \
            kernel without SACK behind the same loss. No SACK, no F-RTO, no ECN",
    },
    Feature {
        capability: "L4 load balancer: VIP services (TCP/UDP), round-robin, smooth weighted, \
            random and Maglev scheduling, full NAT and dnat modes, connection tracking shared \
            with the NAT, `ctl lb show`, `ctl lb backend set/add/del`, down policy keep/reset, \
            optional active TCP health check",
        state: "implemented, netns-tested",
    },
    Feature {
        capability: "Operating: systemd unit (`Type=notify`: READY=1 once the workers run, \
            RELOADING=1/READY=1 around SIGHUP, STOPPING=1, watchdog; capabilities, address \
            families and system calls limited to what the engine uses), log lines journald \
            files by priority with the module, man pages and bash/zsh/fish completions from the \
            CLI, Debian package (cargo-deb: unit, man pages, completions, examples, the user)",
        state: "implemented; the unit checked by systemd-analyze and by running the engine under \
            its limits (strace), the notify protocol against a listener, the package installed \
            with dpkg in an overlay root",
    },
];

/// `pktengine status`: [`FEATURES`] as text for a terminal. `Display`, so that it is a constant
/// ([`crate::STATUS`]) and printing it allocates nothing.
#[derive(Debug, Clone, Copy)]
pub struct Report(pub &'static [Feature]);

/// Width the report wraps its lines to.
const WIDTH: usize = 100;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        writeln!(f, "pktengine status")?;
        for feature in self.0 {
            wrap(f, feature.capability, "- ", "  ")?;
            wrap(f, feature.state, "    => ", "       ")?;
        }
        Ok(())
    }
}

/// Writes `text` split at spaces into lines of at most [`WIDTH`] characters (a longer word gets
/// a line of its own), the first line after `first`, the others after `rest`.
fn wrap(f: &mut fmt::Formatter, text: &str, first: &str, rest: &str) -> fmt::Result {
    let mut col = 0;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let n = word.chars().count();
        if col == 0 {
            f.write_str(first)?;
            col = first.len();
        } else if col + 1 + n > WIDTH {
            f.write_str("\n")?;
            f.write_str(rest)?;
            col = rest.len();
        } else {
            f.write_str(" ")?;
            col += 1;
        }
        f.write_str(word)?;
        col += n;
    }
    f.write_str("\n")
}

/// The README's status table (header included) as Markdown, for the drift test's message.
pub fn markdown_table(features: &[Feature]) -> String {
    let mut s = String::from("| capability | state |\n|---|---|\n");
    for feature in features {
        s.push_str(&format!("| {} | {} |\n", feature.capability, feature.state));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));

    /// The rows of the first table under "## Status": `(capability, state)`.
    fn readme_rows(readme: &str) -> Vec<(String, String)> {
        let section = readme
            .split_once("\n## Status\n")
            .expect("README.md has no \"## Status\" section")
            .1;
        section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2) // "| capability | state |" and "|---|---|"
            .map(|l| {
                let cells = l.trim().trim_start_matches('|').trim_end_matches('|');
                let (capability, state) = cells
                    .split_once(" | ")
                    .unwrap_or_else(|| panic!("README status row without two cells: {l}"));
                assert!(
                    !state.contains(" | "),
                    "README status row with more than two cells: {l}"
                );
                (capability.trim().to_string(), state.trim().to_string())
            })
            .collect()
    }

    #[test]
    fn readme_table_matches_features() {
        let readme = readme_rows(README);
        let ours: Vec<(String, String)> = FEATURES
            .iter()
            .map(|f| (f.capability.to_string(), f.state.to_string()))
            .collect();
        let fix = format!(
            "engine/src/status.rs FEATURES (what `pktengine status` prints) is the source of \
             truth: fix it there if the code changed, then replace the table under \"## Status\" \
             in README.md with:\n\n{}",
            markdown_table(FEATURES)
        );
        for (i, (r, o)) in readme.iter().zip(&ours).enumerate() {
            assert_eq!(
                r,
                o,
                "README status row {} differs from FEATURES[{i}].\n{fix}",
                i + 1
            );
        }
        assert_eq!(
            readme.len(),
            ours.len(),
            "README status table has {} rows, FEATURES {}.\n{fix}",
            readme.len(),
            ours.len()
        );
    }

    #[test]
    fn report_lists_every_feature_within_the_width() {
        let text = Report(FEATURES).to_string();
        assert!(text.starts_with("pktengine status\n"));
        assert_eq!(
            text.lines().filter(|l| l.starts_with("- ")).count(),
            FEATURES.len()
        );
        for line in text.lines() {
            assert!(line.chars().count() <= WIDTH, "{line}");
        }
        // Every word of the table is printed, in order.
        let printed: Vec<&str> = text
            .lines()
            .skip(1)
            .flat_map(|l| l.split(' '))
            .filter(|w| !w.is_empty() && *w != "-" && *w != "=>")
            .collect();
        let words: Vec<&str> = FEATURES
            .iter()
            .flat_map(|f| f.capability.split(' ').chain(f.state.split(' ')))
            .filter(|w| !w.is_empty())
            .collect();
        assert_eq!(printed, words);
    }

    #[test]
    fn drift_is_detected() {
        let edited = README.replacen("| implemented, netns-tested |", "| in progress |", 1);
        assert_ne!(readme_rows(&edited), readme_rows(README));
    }
}
