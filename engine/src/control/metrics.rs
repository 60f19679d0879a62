//! Optional Prometheus metrics on a loopback port (`metrics_listen`).
//!
//! The model: a fixed list of metric families ([`FAMILIES`]), each with its
//! name, kind (counter or gauge), label names and help text; docs/METRICS.md
//! lists them (a test keeps the two equal). The control thread fills a
//! [`Sheet`] from the same walk over the engine's state that produces the
//! `ctl stats` rows ([`Counter`]), so a counter added there is added here in
//! the same place; the front thread ([`super::front`]) renders the
//! [`Metrics`] it gets back in the text exposition format (version 0.0.4):
//! `# HELP` and `# TYPE` once per family, then its samples. A scrape is a
//! short HTTP/1.0 exchange: no HTTP crate is needed.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;
use std::net::{SocketAddr, TcpListener};

use super::ctl::Counter;

/// What a family measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (from 0 at the start); the name ends in `_total`.
    Counter,
    /// A level: goes up and down.
    Gauge,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// A metric family: name, kind, label names and help text.
#[derive(Debug)]
pub struct Def {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

macro_rules! families {
    ($( $id:ident: $kind:ident $name:literal [$($label:literal),*] $help:literal; )*) => {
        $( pub static $id: Def = Def { name: $name, kind: Kind::$kind, labels: &[$($label),*], help: $help }; )*
        /// Every family, in the order a scrape shows them (and docs/METRICS.md lists them).
        pub static FAMILIES: &[&Def] = &[$(&$id),*];
    };
}

families! {
    PORT_RX_PACKETS: Counter "pktengine_port_rx_packets_total" ["port"]
        "Frames the engine received on the port (all its queues and workers).";
    PORT_RX_BYTES: Counter "pktengine_port_rx_bytes_total" ["port"]
        "Bytes of the frames the engine received on the port (from the Ethernet header, without FCS).";
    PORT_TX_PACKETS: Counter "pktengine_port_tx_packets_total" ["port"]
        "Frames the engine sent on the port (taken by a TX ring).";
    PORT_TX_BYTES: Counter "pktengine_port_tx_bytes_total" ["port"]
        "Bytes of the frames the engine sent on the port.";
    XSK_RX_DROPPED: Counter "pktengine_xsk_rx_dropped_total" ["port"]
        "Frames the kernel dropped at the port's AF_XDP sockets for other reasons than a full RX ring (XDP_STATISTICS rx_dropped).";
    XSK_RX_INVALID_DESCS: Counter "pktengine_xsk_rx_invalid_descs_total" ["port"]
        "Fill ring descriptors the kernel refused at the port's sockets (XDP_STATISTICS rx_invalid_descs).";
    XSK_RX_RING_FULL: Counter "pktengine_xsk_rx_ring_full_total" ["port"]
        "Frames the kernel dropped because a socket's RX ring was full (XDP_STATISTICS rx_ring_full).";
    XSK_RX_FILL_RING_EMPTY: Counter "pktengine_xsk_rx_fill_ring_empty_total" ["port"]
        "Times the kernel found a socket's fill ring empty (XDP_STATISTICS rx_fill_ring_empty_descs).";
    XSK_TX_INVALID_DESCS: Counter "pktengine_xsk_tx_invalid_descs_total" ["port"]
        "TX descriptors the kernel refused at the port's sockets (XDP_STATISTICS tx_invalid_descs).";
    XSK_TX_RING_EMPTY: Counter "pktengine_xsk_tx_ring_empty_total" ["port"]
        "Times the kernel found a socket's TX ring empty when woken (XDP_STATISTICS tx_ring_empty_descs).";
    XDP_PACKETS: Counter "pktengine_xdp_packets_total" ["port", "verdict"]
        "Frames the port's XDP steering program decided on, by verdict: to_engine (an engine socket), pass_no_socket, pass_ethertype, pass_dst_prefix, pass_l4_port (to the kernel), drop_src_prefix (dropped), pass_control (routing-protocol traffic, ARP and ND for the engine's own addresses, to the kernel: `[routing] kernel_control`).";
    XDP_BYTES: Counter "pktengine_xdp_bytes_total" ["port", "verdict"]
        "Bytes of the frames the port's XDP steering program decided on, by verdict.";
    WORKER_LOOPS: Counter "pktengine_worker_loops_total" ["worker"]
        "Iterations of the worker's loop.";
    WORKER_IDLE_LOOPS: Counter "pktengine_worker_idle_loops_total" ["worker"]
        "Iterations of the worker's loop that found no frame.";
    WORKER_SLEEPS: Counter "pktengine_worker_sleeps_total" ["worker"]
        "Times the worker slept in poll() (adaptive polling).";
    WORKER_BUSY: Counter "pktengine_worker_busy_seconds_total" ["worker"]
        "Time the worker spent in loop iterations that found frames; its rate is the worker's busy ratio (0 to 1).";
    WORKER_CPU: Counter "pktengine_worker_cpu_seconds_total" ["worker"]
        "CPU time of the worker thread, user and system (from /proc, in 10 ms steps).";
    STAGE_PACKETS: Counter "pktengine_stage_packets_total" ["worker", "stage"]
        "Packets into each pipeline stage (l2-learned, l2-moved, l2-table-full: stations; tcp-syn-cookie: SYNs answered with a cookie; handoff: packets handed to the owning worker, handoff-in: packets this worker took from another's handoff).";
    DROPS: Counter "pktengine_drops_total" ["worker", "stage", "reason"]
        "Frames the engine dropped or consumed, by the stage that did and why (arp-consumed, nd-consumed and ip4-fragmented are not errors).";
    UMEM_FRAMES: Gauge "pktengine_umem_frames" ["worker", "place"]
        "The worker's UMEM frames by place: free (free list), rx (fill and RX rings: the kernel's), held (in the engine: queues, waiting for a neighbor, TCP buffers), tx (TX and completion rings).";
    UMEM_LEDGER_ERRORS: Counter "pktengine_umem_ledger_errors_total" ["worker"]
        "Impossible frame moves the worker's frame ledger saw (a bug when not 0).";
    ROUTES: Gauge "pktengine_routes" ["family"]
        "Prefixes in the forwarding table, by address family (ipv4, ipv6).";
    NEIGHBORS: Gauge "pktengine_neighbors" ["state"]
        "Neighbor (ARP and ND) entries by state: incomplete, reachable, stale, failed, permanent.";
    NEIGHBOR_UNSOLICITED: Counter "pktengine_neighbor_unsolicited_ignored_total" []
        "ARP replies and neighbor advertisements nobody asked for, ignored (accept_unsolicited_arp off).";
    MIRROR_ROUTES: Gauge "pktengine_route_mirror_routes" []
        "Routes of the mirrored kernel table in the engine's FIB ([routing] mirror).";
    MIRROR_CHANGES: Counter "pktengine_route_mirror_changes_total" ["change"]
        "Kernel route changes the mirror applied: upsert (added or replaced), remove, refused (next-hop table full).";
    MIRROR_IGNORED: Counter "pktengine_route_mirror_ignored_total" ["reason"]
        "Kernel routes the mirror cannot represent, by reason (other-table, route-type, link-local, foreign-device, source-or-tos, via-other-family, no-next-hop, cloned, family).";
    MIRROR_RESYNCS: Counter "pktengine_route_mirror_resyncs_total" []
        "Dumps of the kernel table after lost notifications (ENOBUFS), each reconciling the FIB with it.";
    NEIGHBOR_KERNEL_FRAMES: Counter "pktengine_neighbor_kernel_frames_total" ["outcome"]
        "ARP and ND frames the kernel received (kernel_control with arp_nd), copied to the engine to learn its neighbors from, by outcome: read, malformed (not an ARP/NS/NA the engine parses).";
    MAC_ENTRIES: Gauge "pktengine_mac_entries" ["bridge"]
        "Entries in the bridge's MAC table, static ones included.";
    MAC_ENTRIES_LIMIT: Gauge "pktengine_mac_entries_limit" ["bridge"]
        "Entries the bridge's MAC table holds at most (max_entries).";
    NAT_SESSIONS: Gauge "pktengine_nat_sessions" ["worker"]
        "NAT sessions the worker holds.";
    NAT_MAPPINGS: Gauge "pktengine_nat_mappings" ["worker"]
        "NAT mappings (inside endpoint to outside endpoint) the worker holds.";
    NAT_SESSIONS_LIMIT: Gauge "pktengine_nat_sessions_limit" ["worker"]
        "Sessions the worker's NAT table holds at most (max_sessions).";
    CONNTRACK_ENTRIES: Gauge "pktengine_conntrack_entries" ["worker"]
        "Connections the worker's connection table tracks (NAT sessions and flows tracked for the stateful filter).";
    CONNTRACK_ENTRIES_LIMIT: Gauge "pktengine_conntrack_entries_limit" ["worker"]
        "Entries the worker's connection table holds at most ([conntrack] max_entries).";
    CONNTRACK_PACKETS: Counter "pktengine_conntrack_packets_total" ["worker", "state"]
        "Packets the stateful filter tracked, by their ct state: new, established, related, invalid.";
    CONNTRACK_CREATED: Counter "pktengine_conntrack_created_total" ["worker"]
        "Connections the tracker began to track (entries made for a packet the rules accepted).";
    CONNTRACK_REMOVED: Counter "pktengine_conntrack_removed_total" ["worker", "reason"]
        "Tracked flows removed from the table by the tracker, by reason: expired (idle past their state's time-out) or evicted (an unassured entry removed to make room for a new one).";
    CONNTRACK_TABLE_FULL: Counter "pktengine_conntrack_table_full_total" ["worker"]
        "New connections refused because the table was full and no entry could be evicted (their packets are dropped as ct-table-full).";
    TCP_CONNECTIONS: Gauge "pktengine_tcp_connections" ["worker", "state"]
        "The engine's own TCP connections by state: established, half_open (SYN received, not yet accepted), time_wait, other (opening or closing).";
    TCP_OPENED: Counter "pktengine_tcp_opened_total" ["worker", "how"]
        "The engine's TCP connections that were established: accepted (by a listening app) or connected (by a client app).";
    TCP_CLOSED: Counter "pktengine_tcp_closed_total" ["worker", "how"]
        "The engine's TCP connections that ended: normal, reset, timed_out, refused.";
    TCP_LOSS: Counter "pktengine_tcp_loss_recovery_total" ["worker", "event"]
        "Loss recovery of the engine's TCP connections, by event: retransmits (segments sent again), timeouts (RTO expiries), fast_retransmits, tlp_probes (tail loss probes sent), tlp_recoveries (probes that repaired a loss), spurious_undos (retransmissions found spurious by timestamps and undone), paws_drops (segments dropped by PAWS), rcv_buffer_grows (receive rings enlarged by autotuning), lost_retransmits (retransmissions found lost in recovery and sent again before the RTO).";
    TCP_RX_BYTES: Counter "pktengine_tcp_rx_bytes_total" ["worker"]
        "Payload bytes of the TCP segments the engine's endpoint received.";
    TCP_TX_BYTES: Counter "pktengine_tcp_tx_bytes_total" ["worker"]
        "Payload bytes the engine's TCP apps queued for sending.";
    LB_BACKENDS: Gauge "pktengine_lb_backends" ["service", "state"]
        "Backends of each load-balancer service: up (taking new connections) or down (by the operator or the health check).";
    LB_BACKEND_UP: Gauge "pktengine_lb_backend_up" ["service", "backend"]
        "1 when the backend takes new connections, 0 when it is down.";
    LB_BACKEND_CONNECTIONS: Counter "pktengine_lb_backend_connections_total" ["service", "backend"]
        "Connections the load balancer assigned to the backend.";
    LB_BACKEND_ACTIVE: Gauge "pktengine_lb_backend_active_connections" ["service", "backend"]
        "The backend's connections not yet closed or expired.";
    LB_BACKEND_BYTES: Counter "pktengine_lb_backend_bytes_total" ["service", "backend"]
        "Bytes of the backend's connections, both directions.";
    LB_VIP_ANNOUNCED: Gauge "pktengine_lb_vip_announced" ["service"]
        "1 while the service's VIP route is in `[routing] announce_table` (a routing daemon announces it), 0 while it is withdrawn; absent for services not announced.";
    CTL_CONNECTIONS: Counter "pktengine_ctl_connections_total" []
        "Connections the front thread accepted (ctl socket and metrics port).";
    CTL_ERRORS: Counter "pktengine_ctl_errors_total" ["reason"]
        "Clients the front thread turned away or cut, by reason: busy, peer (not permitted), deadline, oversized, malformed, slow_reader.";
    BUILD_INFO: Gauge "pktengine_build_info" ["version"]
        "Always 1; the engine's version is the label.";
    PROCESS_START: Gauge "process_start_time_seconds" []
        "When the engine process started, in seconds since the Unix epoch.";
    PROCESS_CPU: Counter "process_cpu_seconds_total" []
        "CPU time of the engine process, user and system.";
    PROCESS_RSS: Gauge "process_resident_memory_bytes" []
        "Resident memory of the engine process.";
}

/// The family of an XDP_STATISTICS field (`xsk::XdpStatistics::fields` names).
pub fn xsk_family(field: &str) -> Option<&'static Def> {
    Some(match field {
        "rx_dropped" => &XSK_RX_DROPPED,
        "rx_invalid_descs" => &XSK_RX_INVALID_DESCS,
        "rx_ring_full" => &XSK_RX_RING_FULL,
        "rx_fill_ring_empty_descs" => &XSK_RX_FILL_RING_EMPTY,
        "tx_invalid_descs" => &XSK_TX_INVALID_DESCS,
        "tx_ring_empty_descs" => &XSK_TX_RING_EMPTY,
        _ => return None,
    })
}

/// A sample's value: counts stay integers (a u64 beyond 2^53 keeps every digit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(u64::from(v))
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::Int(v as u64)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

/// A label value: names of stages and reasons are static, ports and services are not.
pub type Label = Cow<'static, str>;

/// One sample: its label values (in the order of its family's label names) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<Label>,
    pub value: Value,
}

/// A family and its samples.
#[derive(Debug, Clone)]
pub struct Family {
    pub def: &'static Def,
    pub samples: Vec<Sample>,
}

/// One reading of every metric, grouped by family (in the order the families
/// were first given a sample).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    families: Vec<Family>,
}

impl Metrics {
    /// Adds a sample of `def`; `labels` are its label values in the order of `def.labels`.
    pub fn add<const N: usize>(
        &mut self,
        def: &'static Def,
        labels: [Label; N],
        value: impl Into<Value>,
    ) {
        debug_assert_eq!(
            N,
            def.labels.len(),
            "{}: {N} label values for {:?}",
            def.name,
            def.labels
        );
        let sample = Sample {
            labels: labels.into(),
            value: value.into(),
        };
        // Samples of one family usually come one after the other: look from the end.
        match self
            .families
            .iter_mut()
            .rev()
            .find(|f| std::ptr::eq(f.def, def))
        {
            Some(f) => f.samples.push(sample),
            None => self.families.push(Family {
                def,
                samples: vec![sample],
            }),
        }
    }

    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// The samples of the family named `name`.
    pub fn get(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.def.name == name)
    }

    /// Samples in all.
    pub fn len(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }
}

/// What the control thread fills in one walk over the engine's state: the
/// `ctl stats` rows, the metrics, or both.
#[derive(Debug, Default)]
pub struct Sheet {
    ctl: Option<Vec<Counter>>,
    metrics: Option<Metrics>,
}

impl Sheet {
    /// A sheet for `ctl stats`.
    pub fn for_ctl() -> Sheet {
        Sheet {
            ctl: Some(Vec::new()),
            metrics: None,
        }
    }

    /// A sheet for a scrape.
    pub fn for_metrics() -> Sheet {
        Sheet {
            ctl: None,
            metrics: Some(Metrics::default()),
        }
    }

    /// Both (tests).
    pub fn both() -> Sheet {
        Sheet {
            ctl: Some(Vec::new()),
            metrics: Some(Metrics::default()),
        }
    }

    /// Whether the metrics are wanted (the walk skips what only they show).
    pub fn wants_metrics(&self) -> bool {
        self.metrics.is_some()
    }

    /// A `ctl stats` row.
    pub fn ctl(&mut self, scope: &str, name: &str, value: u64) {
        if let Some(c) = &mut self.ctl {
            c.push(Counter {
                scope: scope.to_string(),
                name: name.to_string(),
                value,
            });
        }
    }

    /// A metric sample.
    pub fn metric<const N: usize>(
        &mut self,
        def: &'static Def,
        labels: [Label; N],
        value: impl Into<Value>,
    ) {
        if let Some(m) = &mut self.metrics {
            m.add(def, labels, value);
        }
    }

    pub fn into_ctl(self) -> Vec<Counter> {
        self.ctl.unwrap_or_default()
    }

    pub fn into_metrics(self) -> Metrics {
        self.metrics.unwrap_or_default()
    }

    pub fn into_parts(self) -> (Vec<Counter>, Metrics) {
        (
            self.ctl.unwrap_or_default(),
            self.metrics.unwrap_or_default(),
        )
    }
}

/// Renders metrics in the Prometheus text exposition format (version 0.0.4).
pub fn render(m: &Metrics) -> String {
    let mut out = String::with_capacity(m.len() * 64 + m.families.len() * 160);
    for f in &m.families {
        let d = f.def;
        out.push_str("# HELP ");
        out.push_str(d.name);
        out.push(' ');
        escape_help(&mut out, d.help);
        out.push_str("\n# TYPE ");
        out.push_str(d.name);
        out.push(' ');
        out.push_str(d.kind.as_str());
        out.push('\n');
        for s in &f.samples {
            out.push_str(d.name);
            if !d.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in d.labels.iter().zip(&s.labels).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(k);
                    out.push_str("=\"");
                    escape_label(&mut out, v);
                    out.push('"');
                }
                out.push('}');
            }
            out.push(' ');
            write_value(&mut out, s.value);
            out.push('\n');
        }
    }
    out
}

/// Label values escape backslash, double quote and line feed.
fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text escapes backslash and line feed.
fn escape_help(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_value(out: &mut String, v: Value) {
    match v {
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) if f.is_nan() => out.push_str("NaN"),
        Value::Float(f) if f == f64::INFINITY => out.push_str("+Inf"),
        Value::Float(f) if f == f64::NEG_INFINITY => out.push_str("-Inf"),
        Value::Float(f) => {
            let _ = write!(out, "{f}");
        }
    }
}

/// The table of docs/METRICS.md ("## Families"), header included.
pub fn markdown_table() -> String {
    let mut s = String::from("| family | type | labels | meaning |\n|---|---|---|---|\n");
    for d in FAMILIES {
        let labels = if d.labels.is_empty() {
            "-".to_string()
        } else {
            d.labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            s,
            "| `{}` | {} | {labels} | {} |",
            d.name,
            d.kind.as_str(),
            d.help
        );
    }
    s
}

/// Binds the metrics listener on `addr`, which must be a loopback address:
/// the counters say much about the traffic, and the port has no
/// authentication. The front thread ([`super::front`]) serves it.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr} is not a loopback address"),
        ));
    }
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

#[cfg(test)]
pub(crate) mod tests;
