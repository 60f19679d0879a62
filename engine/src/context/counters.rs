//! Per-worker counters: packets per stage, drops by typed reason, per-port
//! traffic.
//!
//! The worker counts into plain integers (no atomics, no sharing on the hot
//! path) and copies them into a cache-line-padded block of atomics once per
//! loop iteration that did any work ([`LocalCounters::publish`]). The control
//! thread reads the atomics at any time without a lock; a reading is at most
//! one loop iteration old. Each worker's block is its own allocation, aligned
//! to 128 bytes (two cache lines, the adjacent-line prefetcher's unit), so
//! workers never write to the same cache line.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! reasons {
    ($( $(#[$doc:meta])* $name:ident = $text:literal, $stage:literal; )*) => {
        /// Why a packet was dropped (VPP-style per-node error counters).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Drop {
            $( $(#[$doc])* $name, )*
        }

        impl Drop {
            /// Every reason, in counter order.
            pub const ALL: &'static [Drop] = &[$(Drop::$name),*];

            /// The counter name (`ip4-ttl-expired`).
            pub fn name(self) -> &'static str {
                match self { $(Drop::$name => $text,)* }
            }

            /// The stage that drops for this reason.
            pub fn stage(self) -> &'static str {
                match self { $(Drop::$name => $stage,)* }
            }
        }
    };
}

reasons! {
    /// Shorter than an Ethernet header, or a VLAN tag cut short.
    EthTruncated = "eth-truncated", "classify";
    /// Ethertype the engine does not handle on this port.
    EthUnknownType = "eth-unknown-type", "classify";
    /// Unicast to another MAC on a routed port.
    EthNotForUs = "eth-not-for-us", "classify";
    /// A VLAN-tagged frame on a routed (untagged) port.
    EthTaggedOnRoutedPort = "eth-tagged-on-routed-port", "classify";
    /// Multicast group the port has not joined.
    EthMulticastNotJoined = "eth-multicast-not-joined", "classify";
    /// Malformed ARP.
    ArpMalformed = "arp-malformed", "arp";
    /// ARP request for an address that is not ours (consumed after learning).
    ArpNotForUs = "arp-not-for-us", "arp";
    /// ARP handled (reply sent or learned): consumed, not an error.
    ArpConsumed = "arp-consumed", "arp";
    /// IPv4 header malformed (version, IHL, lengths).
    Ip4Malformed = "ip4-malformed", "ip4-input";
    /// IPv4 header checksum wrong.
    Ip4BadChecksum = "ip4-bad-checksum", "ip4-input";
    /// Martian source (0/8, 127/8, multicast, broadcast, class E).
    Ip4MartianSrc = "ip4-martian-src", "ip4-input";
    /// Martian destination (0/8, 127/8, class E).
    Ip4MartianDst = "ip4-martian-dst", "ip4-input";
    /// Multicast destination: no multicast routing.
    Ip4Multicast = "ip4-multicast", "ip4-input";
    /// Source fails the reverse-path check (rp_filter strict or loose).
    RpfFailed = "rpf-failed", "ip-input";
    /// TTL expired in transit (Time Exceeded sent unless suppressed).
    Ip4TtlExpired = "ip4-ttl-expired", "ip4-forward";
    /// No route (Destination Unreachable sent unless suppressed).
    Ip4NoRoute = "ip4-no-route", "ip4-forward";
    /// Too big for the egress MTU with DF set (Fragmentation Needed sent).
    Ip4FragNeeded = "ip4-frag-needed", "ip4-forward";
    /// Fragmentation failed (no frames, malformed options).
    Ip4FragFailed = "ip4-frag-failed", "ip4-forward";
    /// Fragmented: the original is replaced by its fragments (not an error).
    Ip4Fragmented = "ip4-fragmented", "ip4-forward";
    /// IPv6 header malformed.
    Ip6Malformed = "ip6-malformed", "ip6-input";
    /// Martian IPv6 source or destination (unspecified, loopback, multicast source).
    Ip6Martian = "ip6-martian", "ip6-input";
    /// Link-local source or destination: never forwarded (RFC 4291 §2.5.6).
    Ip6LinkLocal = "ip6-link-local", "ip6-input";
    /// Multicast not for the engine: no multicast routing.
    Ip6Multicast = "ip6-multicast", "ip6-input";
    /// Hop limit exceeded in transit.
    Ip6HopLimit = "ip6-hop-limit", "ip6-forward";
    /// No route.
    Ip6NoRoute = "ip6-no-route", "ip6-forward";
    /// Too big for the egress MTU (Packet Too Big sent).
    Ip6TooBig = "ip6-too-big", "ip6-forward";
    /// Neighbor discovery message malformed or invalid (RFC 4861 §7.1).
    NdMalformed = "nd-malformed", "ip6-nd";
    /// ND message handled: consumed.
    NdConsumed = "nd-consumed", "ip6-nd";
    /// Waiting for ARP/ND: the queue for that neighbor was full, oldest dropped.
    NeighQueueFull = "neigh-queue-full", "neighbor";
    /// Neighbor never answered (Host Unreachable sent).
    NeighFailed = "neigh-failed", "neighbor";
    /// No slot for another unresolved neighbor.
    NeighNoSlot = "neigh-no-slot", "neighbor";
    /// Local delivery: a protocol the engine does not serve (Protocol Unreachable sent).
    LocalProtoUnreachable = "local-proto-unreachable", "local";
    /// Local delivery: UDP to a closed port (Port Unreachable sent).
    LocalPortUnreachable = "local-port-unreachable", "local";
    /// Local delivery: malformed or bad checksum.
    LocalMalformed = "local-malformed", "local";
    /// Local delivery: an ICMP message the engine does not answer (e.g. an error to us).
    LocalIcmpIgnored = "local-icmp-ignored", "local";
    /// Local delivery: a broadcast or fragment the engine does not serve.
    LocalIgnored = "local-ignored", "local";
    /// An ICMP error was due but suppressed (about an error, a fragment, a broadcast).
    IcmpSuppressed = "icmp-error-suppressed", "icmp-error";
    /// An ICMP error was due but rate-limited.
    IcmpRateLimited = "icmp-error-rate-limited", "icmp-error";
    /// No free frame to build a packet in.
    NoFrame = "no-frame", "tx";
    /// No room for the frame on its egress port: that loop's TX queue or
    /// the port's backlog was full (`context::txq`). A full TX ring itself
    /// holds frames back, it does not drop.
    TxRingFull = "tx-ring-full", "tx";
    /// The egress port cannot drain: its TX ring took nothing for 100 ms
    /// while frames waited (dead link, stopped queue), or this worker has no
    /// socket on it. What it held, and what comes for it until its ring takes
    /// a frame again, is dropped instead of held.
    TxPortStuck = "tx-port-stuck", "tx";
    /// Egress port is the ingress port of a switch frame (filtered), or the
    /// VLAN has no other member to flood to.
    L2Filtered = "l2-filtered", "l2";
    /// Dropped by a filter rule or policy.
    FilterDrop = "filter-drop", "filter";
    /// Rejected by a filter rule (ICMP prohibited or TCP RST sent).
    FilterReject = "filter-reject", "filter";
    /// A new connection the stateful filter accepted, but the connection table was full.
    CtTableFull = "ct-table-full", "filter";
    /// Tagged with a VLAN the ingress switch port does not carry.
    L2VlanNotAllowed = "l2-vlan-not-allowed", "l2";
    /// Untagged or priority-tagged frame on a trunk port (no native VLAN).
    L2UntaggedOnTrunk = "l2-untagged-on-trunk", "l2";
    /// Group (multicast) source address: invalid, never learned or relayed.
    L2BadSource = "l2-bad-source", "l2";
    /// To an IEEE 802.1D link-local group (01-80-C2-00-00-0x: STP, LACP, LLDP): never relayed.
    L2ReservedGroup = "l2-reserved-group", "l2";
    /// To an outside address with no mapping and not the engine's own (unsolicited inbound).
    NatNoMapping = "nat-no-mapping", "nat-in";
    /// A mapping exists, but its filtering refuses this remote endpoint (RFC 4787 §5).
    NatFiltered = "nat-filtered", "nat-in";
    /// Outbound packet that may not open state and has none (a TCP RST, an ICMP error about nothing).
    NatOutNoState = "nat-out-no-state", "nat-out";
    /// The inside host has its maximum of mappings.
    NatHostLimit = "nat-host-limit", "nat-out";
    /// No free external port, or the session table is full.
    NatExhausted = "nat-exhausted", "nat-out";
    /// A later fragment whose first fragment was not seen (or was forgotten).
    NatFragNoState = "nat-frag-no-state", "nat";
    /// A protocol the NAT does not translate (not TCP, UDP or ICMP query/error).
    NatUnsupported = "nat-unsupported", "nat-out";
    /// The owning worker's handoff inbox was full.
    HandoffFull = "handoff-full", "handoff";
    /// To a load-balancer VIP on a protocol/port without a service.
    LbNoService = "lb-no-service", "lb";
    /// A new connection to a service whose backends are all down.
    LbNoBackend = "lb-no-backend", "lb";
    /// A TCP packet of no known connection that may not open one (not a SYN).
    LbNoConn = "lb-no-conn", "lb";
    /// A packet of a connection whose backend went down, with down_policy reset.
    LbBackendDown = "lb-backend-down", "lb";
    /// No free source port for a full-NAT connection, or the connection table is full.
    LbExhausted = "lb-exhausted", "lb";
    /// A TCP segment to the engine of no connection that may not open one (RST sent unless it was one).
    TcpNoConn = "tcp-no-conn", "tcp";
    /// The queue between bridges and their routed interfaces was full.
    BviQueueFull = "bvi-queue-full", "bvi";
    /// Dropped by the `[impair]` test stage (or held for reorder when the worker stopped).
    Impaired = "impair-drop", "impair";
    /// A `blackhole` route: dropped silently.
    RouteBlackhole = "route-blackhole", "ip-forward";
    /// An `unreachable` route (ICMP Host Unreachable / IPv6 No Route sent).
    RouteUnreachable = "route-unreachable", "ip-forward";
    /// A `prohibit` route (ICMP Administratively Prohibited sent).
    RouteProhibit = "route-prohibit", "ip-forward";
}

/// Number of drop reasons.
pub const DROP_REASONS: usize = Drop::ALL.len();

/// Stages whose input packets are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    Classify,
    Arp,
    Ip4Input,
    Ip4Forward,
    Ip6Input,
    Ip6Forward,
    Ip6Nd,
    Local,
    IcmpError,
    Tx,
    /// Frames into the switch stage.
    L2Input,
    /// Frames flooded (unknown unicast, broadcast, multicast).
    L2Flood,
    /// Stations learned (new MAC table entries).
    L2Learned,
    /// Stations that moved to another port.
    L2Moved,
    /// Stations not learned because the MAC table was full.
    L2TableFull,
    /// Packets translated inbound (outside address → inside host).
    NatIn,
    /// Packets translated outbound (inside host → outside address).
    NatOut,
    /// Packets handed to the worker that owns their NAT or load-balancer state.
    Handoff,
    /// Packets another worker handed to this one (they were counted at RX there).
    HandoffIn,
    /// Packets to a VIP sent to a backend.
    LbIn,
    /// Backend replies sent back from the VIP.
    LbOut,
    /// SYNs answered with a SYN cookie (the backlog was full).
    TcpSynCookie,
    /// Segments into the engine's TCP endpoint.
    TcpIn,
    /// Segments the endpoint sent.
    TcpOut,
    /// UDP datagrams the UDP echo returned.
    UdpEcho,
    /// Frames the `[impair]` stage sent twice (copies made).
    ImpairDup,
    /// Frames the `[impair]` stage held back to be overtaken.
    ImpairReorder,
    /// Frames of a port with a running `ctl capture` that no capture's
    /// filter accepted (not copied).
    CaptureFiltered,
    /// Frames a bridge delivered to its routed interface (BVI): routed from there.
    BviIn,
    /// Frames the router sent out of a BVI into its bridge.
    BviOut,
    /// Frames a TX ring did not take, held in the port's backlog for the
    /// next loop (a frame held over several loops counts once per loop).
    TxHeld,
    /// Loop iterations that took no RX because a port's TX backlog was over
    /// its bound (loops, not packets).
    RxPaused,
}

impl Stage {
    pub const ALL: [Stage; 32] = [
        Stage::Classify,
        Stage::Arp,
        Stage::Ip4Input,
        Stage::Ip4Forward,
        Stage::Ip6Input,
        Stage::Ip6Forward,
        Stage::Ip6Nd,
        Stage::Local,
        Stage::IcmpError,
        Stage::Tx,
        Stage::L2Input,
        Stage::L2Flood,
        Stage::L2Learned,
        Stage::L2Moved,
        Stage::L2TableFull,
        Stage::NatIn,
        Stage::NatOut,
        Stage::Handoff,
        Stage::HandoffIn,
        Stage::LbIn,
        Stage::LbOut,
        Stage::TcpSynCookie,
        Stage::TcpIn,
        Stage::TcpOut,
        Stage::UdpEcho,
        Stage::ImpairDup,
        Stage::ImpairReorder,
        Stage::CaptureFiltered,
        Stage::BviIn,
        Stage::BviOut,
        Stage::TxHeld,
        Stage::RxPaused,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Classify => "classify",
            Stage::Arp => "arp",
            Stage::Ip4Input => "ip4-input",
            Stage::Ip4Forward => "ip4-forward",
            Stage::Ip6Input => "ip6-input",
            Stage::Ip6Forward => "ip6-forward",
            Stage::Ip6Nd => "ip6-nd",
            Stage::Local => "local",
            Stage::IcmpError => "icmp-error",
            Stage::Tx => "tx",
            Stage::L2Input => "l2-input",
            Stage::L2Flood => "l2-flood",
            Stage::L2Learned => "l2-learned",
            Stage::L2Moved => "l2-moved",
            Stage::L2TableFull => "l2-table-full",
            Stage::NatIn => "nat-in",
            Stage::NatOut => "nat-out",
            Stage::Handoff => "handoff",
            Stage::HandoffIn => "handoff-in",
            Stage::LbIn => "lb-in",
            Stage::LbOut => "lb-out",
            Stage::TcpSynCookie => "tcp-syn-cookie",
            Stage::TcpIn => "tcp-in",
            Stage::TcpOut => "tcp-out",
            Stage::UdpEcho => "udp-echo",
            Stage::ImpairDup => "impair-dup",
            Stage::ImpairReorder => "impair-reorder",
            Stage::CaptureFiltered => "capture-filtered",
            Stage::BviIn => "bvi-in",
            Stage::BviOut => "bvi-out",
            Stage::TxHeld => "tx-held",
            Stage::RxPaused => "rx-paused",
        }
    }
}

/// Per-port traffic a worker counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortTraffic {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

/// The most ports a worker counts separately.
pub const MAX_PORTS: usize = 16;

/// A worker's own counters (plain integers, hot path).
#[derive(Debug, Clone)]
pub struct LocalCounters {
    pub drops: [u64; DROP_REASONS],
    pub stages: [u64; Stage::ALL.len()],
    pub ports: [PortTraffic; MAX_PORTS],
    /// Loop iterations, and those that found no work.
    pub loops: u64,
    pub idle_loops: u64,
    /// Times the worker slept in poll().
    pub sleeps: u64,
    /// Time in loop iterations that found work, in ns (each iteration is
    /// timed from its start to the next one's, so no extra clock read).
    pub busy_ns: u64,
    dirty: bool,
}

impl Default for LocalCounters {
    fn default() -> Self {
        LocalCounters {
            drops: [0; DROP_REASONS],
            stages: [0; Stage::ALL.len()],
            ports: [PortTraffic::default(); MAX_PORTS],
            loops: 0,
            idle_loops: 0,
            sleeps: 0,
            busy_ns: 0,
            dirty: false,
        }
    }
}

impl LocalCounters {
    #[inline]
    pub fn drop(&mut self, why: Drop) {
        self.drops[why as usize] += 1;
        self.dirty = true;
    }

    #[inline]
    pub fn stage(&mut self, s: Stage, n: u64) {
        self.stages[s as usize] += n;
        self.dirty = true;
    }

    #[inline]
    pub fn rx(&mut self, port: usize, bytes: u64) {
        if let Some(p) = self.ports.get_mut(port) {
            p.rx_packets += 1;
            p.rx_bytes += bytes;
            self.dirty = true;
        }
    }

    #[inline]
    pub fn tx(&mut self, port: usize, packets: u64, bytes: u64) {
        if let Some(p) = self.ports.get_mut(port) {
            p.tx_packets += packets;
            p.tx_bytes += bytes;
            self.dirty = true;
        }
    }

    /// Adds `ns` of busy time (an iteration that found work).
    #[inline]
    pub fn busy(&mut self, ns: u64) {
        self.busy_ns += ns;
        self.dirty = true;
    }

    /// Copies into the shared block if anything changed since the last call.
    #[inline]
    pub fn publish(&mut self, to: &SharedCounters) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let st = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        for (a, &v) in to.drops.iter().zip(&self.drops) {
            st(a, v);
        }
        for (a, &v) in to.stages.iter().zip(&self.stages) {
            st(a, v);
        }
        for (a, v) in to.ports.iter().zip(&self.ports) {
            st(&a[0], v.rx_packets);
            st(&a[1], v.rx_bytes);
            st(&a[2], v.tx_packets);
            st(&a[3], v.tx_bytes);
        }
        st(&to.loops, self.loops);
        st(&to.idle_loops, self.idle_loops);
        st(&to.sleeps, self.sleeps);
        st(&to.busy_ns, self.busy_ns);
    }

    /// Whether anything changed since the last publish.
    #[inline]
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Marks the loop counters changed (they change on every iteration; they
    /// are published with the next change of anything else, or by the idle path).
    #[inline]
    pub fn touch(&mut self) {
        self.dirty = true;
    }
}

/// A worker's counters as the control thread reads them. Single writer (the
/// worker, relaxed stores), any number of readers.
#[derive(Debug)]
#[repr(align(128))]
pub struct SharedCounters {
    pub drops: [AtomicU64; DROP_REASONS],
    pub stages: [AtomicU64; Stage::ALL.len()],
    pub ports: [[AtomicU64; 4]; MAX_PORTS],
    /// Per port, the kernel's XDP_STATISTICS over the worker's sockets (in
    /// `XdpStatistics::fields` order), read by the worker every 100 ms.
    pub xdp: [[AtomicU64; 6]; MAX_PORTS],
    pub loops: AtomicU64,
    pub idle_loops: AtomicU64,
    pub sleeps: AtomicU64,
    /// Time in iterations that found work, ns.
    pub busy_ns: AtomicU64,
    /// The UMEM's frame census (free, rx, held, tx) and the ledger's impossible moves.
    pub frames: [AtomicU64; 4],
    pub ledger_errors: AtomicU64,
    /// The worker thread's id (0 until it runs): the control thread reads its
    /// CPU time from /proc, so the hot path pays nothing for it.
    pub tid: AtomicU64,
}

impl Default for SharedCounters {
    fn default() -> Self {
        SharedCounters {
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
            stages: std::array::from_fn(|_| AtomicU64::new(0)),
            ports: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            xdp: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            loops: AtomicU64::new(0),
            idle_loops: AtomicU64::new(0),
            sleeps: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            frames: std::array::from_fn(|_| AtomicU64::new(0)),
            ledger_errors: AtomicU64::new(0),
            tid: AtomicU64::new(0),
        }
    }
}

impl SharedCounters {
    /// Publishes the UMEM's frame census (relaxed stores; the worker's own block).
    pub fn set_frames(&self, c: &crate::xsk::FrameCounts) {
        for (a, v) in self.frames.iter().zip([c.free, c.rx, c.held, c.tx]) {
            a.store(u64::from(v), Ordering::Relaxed);
        }
        self.ledger_errors.store(c.errors, Ordering::Relaxed);
    }

    /// Publishes port `port`'s XDP_STATISTICS (summed over the worker's sockets on it).
    pub fn set_xdp(&self, port: usize, x: &crate::xsk::XdpStatistics) {
        if let Some(a) = self.xdp.get(port) {
            for (a, (_, v)) in a.iter().zip(x.fields()) {
                a.store(v, Ordering::Relaxed);
            }
        }
    }

    /// Port `port`'s XDP_STATISTICS as last published, named.
    pub fn xdp(&self, port: usize) -> [(&'static str, u64); 6] {
        let mut f = crate::xsk::XdpStatistics::default().fields();
        if let Some(a) = self.xdp.get(port) {
            for (f, a) in f.iter_mut().zip(a) {
                f.1 = a.load(Ordering::Relaxed);
            }
        }
        f
    }

    pub fn drop_count(&self, why: Drop) -> u64 {
        self.drops[why as usize].load(Ordering::Relaxed)
    }

    pub fn stage_count(&self, s: Stage) -> u64 {
        self.stages[s as usize].load(Ordering::Relaxed)
    }

    pub fn port(&self, port: usize) -> PortTraffic {
        match self.ports.get(port) {
            Some(a) => PortTraffic {
                rx_packets: a[0].load(Ordering::Relaxed),
                rx_bytes: a[1].load(Ordering::Relaxed),
                tx_packets: a[2].load(Ordering::Relaxed),
                tx_bytes: a[3].load(Ordering::Relaxed),
            },
            None => PortTraffic::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_kebab() {
        let mut seen = std::collections::HashSet::new();
        for d in Drop::ALL {
            assert!(seen.insert(d.name()), "duplicate {}", d.name());
            assert!(d
                .name()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-' || b.is_ascii_digit()));
        }
        assert_eq!(Drop::ALL.len(), DROP_REASONS);
        for (i, d) in Drop::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i);
        }
    }

    #[test]
    fn publish_copies_only_when_dirty() {
        let shared = SharedCounters::default();
        let mut c = LocalCounters::default();
        c.drop(Drop::Ip4NoRoute);
        c.rx(2, 100);
        c.tx(3, 2, 128);
        c.publish(&shared);
        assert_eq!(shared.drop_count(Drop::Ip4NoRoute), 1);
        assert_eq!(shared.port(2).rx_bytes, 100);
        assert_eq!(shared.port(3).tx_packets, 2);
        // Not dirty: a change made behind its back is not published.
        c.drops[Drop::Ip4NoRoute as usize] = 7;
        c.publish(&shared);
        assert_eq!(shared.drop_count(Drop::Ip4NoRoute), 1);
        c.touch();
        c.publish(&shared);
        assert_eq!(shared.drop_count(Drop::Ip4NoRoute), 7);
    }

    #[test]
    fn shared_block_is_cache_line_aligned() {
        assert_eq!(std::mem::align_of::<SharedCounters>() % 64, 0);
    }
}
