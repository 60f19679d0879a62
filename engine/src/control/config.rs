//! The engine's TOML configuration: parsing and validation.
//!
//! A bad configuration is refused before anything is attached, with every
//! problem reported as `FILE:LINE:COLUMN: reason` (all of them, not only the
//! first), so an operator fixes the file in one pass. Positions come from
//! `toml::Spanned` on the fields that can be wrong for semantic reasons; syntax
//! and type errors carry the parser's own position.
//!
//! Example (`examples/router.toml` has a full one):
//!
//! ```toml
//! [engine]
//! cores = [1]
//! poll = "adaptive"
//!
//! [[port]]
//! name = "lan"
//! interface = "veth-lan"
//! mode = "router"
//! addresses = ["198.18.1.1/24", "2001:2:0:1::1/64"]
//! ```

use core::fmt;
use core::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub use crate::context::tables::{PortMode, RpFilter};
pub use crate::dataplane::worker::PollMode;
pub use crate::filter::config::FilterConfig;
pub use crate::l2::bridge::{BridgeConfig, StaticMac, VlanMode};
#[cfg(test)]
use crate::validate::line_col;
use crate::validate::{in_range, Checker, PortName};
pub use crate::validate::{ConfigError, ConfigErrors, RouteLine};

/// How the XDP program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum XdpMode {
    /// Driver mode, falling back to generic mode (reported in the log).
    #[default]
    Auto,
    Driver,
    Generic,
}

/// An address on an interface with its subnet length, e.g. `198.18.1.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InterfaceAddress {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl InterfaceAddress {
    /// The network part of the address (host bits cleared), as bits of the
    /// full address width.
    fn network_bits(&self) -> u128 {
        match self.addr {
            IpAddr::V4(a) => {
                let v = u128::from(u32::from(a));
                let mask = if self.prefix_len == 0 {
                    0
                } else {
                    u128::from(u32::MAX << (32 - self.prefix_len))
                };
                v & mask
            }
            IpAddr::V6(a) => {
                let v = u128::from(a);
                let mask = if self.prefix_len == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix_len)
                };
                v & mask
            }
        }
    }

    /// Whether the subnets of `self` and `other` share any address.
    pub fn overlaps(&self, other: &InterfaceAddress) -> bool {
        if self.addr.is_ipv4() != other.addr.is_ipv4() {
            return false;
        }
        // Two prefixes overlap iff the shorter one contains the longer one's network.
        let shorter = if self.prefix_len <= other.prefix_len {
            self
        } else {
            other
        };
        let width = if self.addr.is_ipv4() { 32 } else { 128 };
        let shift = width - u32::from(shorter.prefix_len);
        let net = |x: &InterfaceAddress| -> u128 {
            if shift >= 128 {
                0
            } else {
                x.network_bits() >> shift
            }
        };
        net(self) == net(other)
    }
}

impl core::str::FromStr for InterfaceAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, l) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not ADDRESS/LENGTH (e.g. 198.18.1.1/24)"))?;
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{a}` is not an IP address"))?;
        let prefix_len: u8 = l
            .parse()
            .map_err(|_| format!("`{l}` is not a prefix length"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(format!("prefix length {prefix_len} is longer than {max}"));
        }
        if addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() {
            return Err(format!(
                "{addr} cannot be an interface address (unspecified, loopback or multicast)"
            ));
        }
        if let IpAddr::V4(v4) = addr {
            if v4.is_broadcast() {
                return Err("255.255.255.255 cannot be an interface address".into());
            }
            // On /0../30 the all-zeros and all-ones host parts are the subnet's
            // network and broadcast addresses (RFC 1812 §5.3.5); /31 has neither (RFC 3021).
            if prefix_len <= 30 {
                let host_mask = u32::MAX >> prefix_len;
                let host = u32::from(v4) & host_mask;
                if host == 0 || host == host_mask {
                    return Err(format!(
                        "{addr}/{prefix_len} is the subnet's network or broadcast address"
                    ));
                }
            }
        }
        Ok(InterfaceAddress { addr, prefix_len })
    }
}

impl fmt::Display for InterfaceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

// ---- the file as written (serde) -------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    engine: RawEngine,
    #[serde(default, rename = "port")]
    ports: Vec<RawPort>,
    #[serde(default)]
    routing: RawRouting,
    #[serde(default)]
    filter: crate::filter::config::RawFilter,
    #[serde(default)]
    conntrack: Option<crate::filter::config::RawConntrack>,
    #[serde(default, rename = "bridge")]
    bridges: Vec<crate::l2::config::RawBridge>,
    #[serde(default)]
    nat: Option<Spanned<crate::nat::config::RawNat>>,
    #[serde(default, rename = "lb")]
    lbs: Vec<Spanned<crate::lb::config::RawLb>>,
    #[serde(default, rename = "tcp")]
    tcps: Vec<Spanned<crate::tcp::config::RawTcp>>,
    #[serde(default)]
    tcp_stack: Option<crate::tcp::config::RawTcpStack>,
    #[serde(default, rename = "udp")]
    udps: Vec<Spanned<crate::router::config::RawUdp>>,
    #[serde(default)]
    impair: Option<Spanned<crate::impair::RawImpair>>,
}

/// A port's NAT role as written.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawNatRole {
    Inside,
    Outside,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    #[serde(default = "default_cores")]
    cores: Spanned<Vec<usize>>,
    #[serde(default)]
    poll: PollMode,
    #[serde(default = "default_idle_timeout_ms")]
    idle_timeout_ms: u32,
    #[serde(default = "default_ctl_socket")]
    ctl_socket: PathBuf,
    #[serde(default)]
    metrics_listen: Option<Spanned<String>>,
    /// A group whose members may use the ctl socket (besides root).
    #[serde(default)]
    ctl_group: Option<Spanned<String>>,
    #[serde(default = "default_frame_size")]
    frame_size: Spanned<u32>,
    #[serde(default = "default_frames_per_port")]
    frames_per_port: Spanned<u32>,
    #[serde(default)]
    trace: bool,
    /// ICMP errors per second and burst, per destination and per worker in all.
    #[serde(default)]
    icmp_rate_per_dest: Option<Spanned<u64>>,
    #[serde(default)]
    icmp_burst_per_dest: Option<Spanned<u64>>,
    #[serde(default)]
    icmp_msgs_per_sec: Option<Spanned<u64>>,
    #[serde(default)]
    icmp_msgs_burst: Option<Spanned<u64>>,
    /// The unprivileged user the engine switches to after set-up.
    #[serde(default)]
    user: Option<Spanned<String>>,
}

impl Default for RawEngine {
    fn default() -> Self {
        RawEngine {
            cores: default_cores(),
            poll: PollMode::default(),
            idle_timeout_ms: default_idle_timeout_ms(),
            ctl_socket: default_ctl_socket(),
            metrics_listen: None,
            ctl_group: None,
            frame_size: default_frame_size(),
            frames_per_port: default_frames_per_port(),
            trace: false,
            icmp_rate_per_dest: None,
            icmp_burst_per_dest: None,
            icmp_msgs_per_sec: None,
            icmp_msgs_burst: None,
            user: None,
        }
    }
}

fn default_cores() -> Spanned<Vec<usize>> {
    Spanned::new(0..0, vec![0])
}
fn default_idle_timeout_ms() -> u32 {
    10
}
fn default_ctl_socket() -> PathBuf {
    PathBuf::from("/run/pktengine/ctl.sock")
}
fn default_frame_size() -> Spanned<u32> {
    Spanned::new(0..0, 2048)
}
fn default_frames_per_port() -> Spanned<u32> {
    Spanned::new(0..0, 4096)
}
fn default_mtu() -> Spanned<u16> {
    Spanned::new(0..0, 1500)
}
/// A port's `rss`, `rss_key` and `rss_table`, checked.
fn rss_setting(ck: &mut Checker<'_>, p: &RawPort, queues: u32) -> RssSetting {
    let mode = p.rss.as_ref().map(|m| (m.get_ref().as_str(), m.span()));
    match (&p.rss_key, &p.rss_table) {
        (None, None) => match mode {
            None | Some(("auto", _)) => RssSetting::Auto,
            Some(("off", _)) => RssSetting::Off,
            Some((other, span)) => {
                ck.at(span, format!("rss `{other}`: expected \"auto\" or \"off\""));
                RssSetting::Off
            }
        },
        (Some(k), Some(t)) => {
            if let Some((m, span)) = mode {
                ck.at(
                    span,
                    format!("rss `{m}` with rss_key and rss_table: give one or the other"),
                );
            }
            let key = match crate::rss::Rss::parse_key(k.get_ref()) {
                Ok(key) => key,
                Err(e) => {
                    ck.at(k.span(), e);
                    return RssSetting::Off;
                }
            };
            let table = t.get_ref().clone();
            if let Err(e) = crate::rss::Rss::new(key.clone(), table.clone()) {
                ck.at(k.span(), e);
            }
            if let Some(q) = table.iter().find(|&&q| u32::from(q) >= queues) {
                ck.at(
                    t.span(),
                    format!("rss_table names queue {q}; the port has {queues} queues"),
                );
            }
            RssSetting::Explicit { key, table }
        }
        (Some(k), None) => {
            ck.at(k.span(), "rss_key needs rss_table".to_string());
            RssSetting::Off
        }
        (None, Some(t)) => {
            ck.at(t.span(), "rss_table needs rss_key".to_string());
            RssSetting::Off
        }
    }
}

fn default_queues() -> Spanned<u32> {
    Spanned::new(0..0, 1)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    name: Spanned<String>,
    interface: Spanned<String>,
    mode: PortMode,
    #[serde(default = "default_queues")]
    queues: Spanned<u32>,
    #[serde(default)]
    addresses: Vec<Spanned<String>>,
    #[serde(default = "default_mtu")]
    mtu: Spanned<u16>,
    #[serde(default)]
    xdp_mode: XdpMode,
    /// Reverse-path check of forwarded packets' sources (like Linux rp_filter).
    #[serde(default)]
    rp_filter: RpFilter,
    #[serde(default)]
    bridge: Option<Spanned<String>>,
    /// Access VLAN of a switch port (untagged; default 1).
    #[serde(default)]
    vlan: Option<Spanned<u16>>,
    /// VLANs a trunk switch port carries tagged.
    #[serde(default)]
    trunk: Option<Spanned<Vec<u16>>>,
    /// `inside` or `outside`: the port's side of the NAT (router ports).
    #[serde(default)]
    nat: Option<Spanned<RawNatRole>>,
    /// `auto` (read the NIC's RSS key and table at start) or `off`.
    #[serde(default)]
    rss: Option<Spanned<String>>,
    /// An explicit RSS key (`6d:5a:...`, as `ethtool -x` prints it) and
    /// indirection table, instead of the NIC's (tests, NICs ethtool cannot read).
    #[serde(default)]
    rss_key: Option<Spanned<String>>,
    #[serde(default)]
    rss_table: Option<Spanned<Vec<u16>>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRouting {
    /// Routes in `ip route` syntax.
    #[serde(default)]
    routes: Vec<Spanned<String>>,
    /// A file of routes in the same syntax (one per line), e.g. a full table.
    #[serde(default)]
    routes_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    import_kernel_routes: bool,
    /// Let ARP replies / NAs nobody asked for create or overwrite neighbor entries.
    #[serde(default)]
    accept_unsolicited_arp: bool,
    /// Follow the kernel's routing table over rtnetlink (`--mirror-kernel`).
    #[serde(default)]
    mirror: bool,
    /// The kernel table mirrored (254, main, by default).
    #[serde(default)]
    mirror_table: Option<Spanned<u32>>,
    /// Pass routing-protocol traffic to the kernel (default: on with `mirror`).
    #[serde(default)]
    kernel_control: Option<bool>,
    /// More control traffic for the kernel: "tcp/PORT", "udp/PORT", "proto/N".
    #[serde(default)]
    kernel_control_extra: Vec<Spanned<String>>,
    /// The kernel table of announced LB VIP routes (off by default).
    #[serde(default)]
    announce_table: Option<Spanned<u32>>,
}

// ---- the validated configuration --------------------------------------------

/// Engine-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// One worker per listed core.
    pub cores: Vec<usize>,
    pub poll: PollMode,
    /// How long an idle worker in adaptive mode sleeps in `poll()`.
    pub idle_timeout_ms: u32,
    pub ctl_socket: PathBuf,
    /// Prometheus text metrics, loopback only.
    pub metrics_listen: Option<SocketAddr>,
    /// Members of this group may use the ctl socket (mode 0660), besides root.
    pub ctl_group: Option<String>,
    /// UMEM frame size: 2048 or 4096.
    pub frame_size: u32,
    /// UMEM frames per port and queue (a power of two).
    pub frames_per_port: u32,
    /// Per-packet trace (off by default; free when off).
    pub trace: bool,
    /// ICMP error rate limits of each worker: per destination and in all.
    pub icmp: crate::context::ratelimit::IcmpLimits,
    /// The user the engine runs as after set-up (`pktengine` by default).
    pub user: String,
}

/// One port: an interface the engine takes over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    pub name: String,
    pub interface: String,
    pub mode: PortMode,
    pub queues: u32,
    pub addresses: Vec<InterfaceAddress>,
    pub mtu: u16,
    pub xdp_mode: XdpMode,
    pub rp_filter: RpFilter,
    pub bridge: Option<String>,
    /// The port's side of the NAT.
    pub nat: crate::nat::Role,
    /// 802.1Q membership of a switch port (router ports: `Access(1)`, unused;
    /// a BVI: `Access` of its VLAN).
    pub vlans: VlanMode,
    /// A bridge's routed interface (BVI): its MAC. It has no Linux interface
    /// (`interface` is empty) and no socket; `bridge` names its bridge.
    pub bvi: Option<[u8; 6]>,
    /// How the engine learns the port's RSS (NAT and LB ownership).
    pub rss: RssSetting,
}

/// A port's `rss`: where the model of its NIC's RSS comes from (`crate::rss`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RssSetting {
    /// Read at start (ETHTOOL_GRSSH); none when the device has no RSS (veth).
    #[default]
    Auto,
    Off,
    /// `rss_key` and `rss_table`.
    Explicit {
        key: Vec<u8>,
        table: Vec<u16>,
    },
}

/// Routing settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoutingConfig {
    pub routes: Vec<RouteLine>,
    /// Routes file, relative paths resolved against the configuration's directory.
    pub routes_file: Option<PathBuf>,
    pub accept_unsolicited_arp: bool,
    pub import_kernel_routes: bool,
    /// Mirror the kernel's routing table `mirror_table` into the FIB, live.
    pub mirror: bool,
    pub mirror_table: u32,
    /// What the steering programs pass to the kernel for the engine's own
    /// addresses (None: nothing, the engine answers ARP/ND itself).
    pub kernel_control: Option<KernelControl>,
    /// Kernel table of the announced load-balancer VIPs (`lb::announce`).
    pub announce_table: Option<u32>,
}

/// Control traffic the kernel gets instead of the engine, when it is
/// addressed to one of the engine's addresses (or a link-local multicast
/// group): routing daemons on the host talk through the engine's ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelControl {
    /// (IP protocol, port): matched against the source or the destination port.
    pub l4_ports: Vec<(u8, u16)>,
    /// Whole IP protocols (OSPF is 89).
    pub protocols: Vec<u8>,
    /// ARP and IPv6 neighbor discovery (RS, RA, NS, NA, redirect) go to the
    /// kernel; the engine learns its neighbors from a copy.
    pub arp_nd: bool,
}

impl KernelControl {
    /// BGP (TCP 179), OSPF (IP protocol 89), BFD (UDP 3784 single hop,
    /// 3785 echo, 4784 multihop), ARP and ND.
    pub fn defaults() -> KernelControl {
        KernelControl {
            l4_ports: vec![(6, 179), (17, 3784), (17, 3785), (17, 4784)],
            protocols: vec![89],
            arp_nd: true,
        }
    }

    /// Parses "tcp/PORT", "udp/PORT" or "proto/N".
    pub fn parse_extra(s: &str) -> Result<Extra, String> {
        let (kind, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected tcp/PORT, udp/PORT or proto/N"))?;
        match kind {
            "tcp" | "udp" => {
                let port: u16 = n
                    .parse()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| format!("{s:?}: port must be 1-65535"))?;
                Ok(Extra::Port(if kind == "tcp" { 6 } else { 17 }, port))
            }
            "proto" => n
                .parse::<u8>()
                .map(Extra::Protocol)
                .map_err(|_| format!("{s:?}: protocol must be 0-255")),
            _ => Err(format!("{s:?}: expected tcp/PORT, udp/PORT or proto/N")),
        }
    }
}

/// One `kernel_control_extra` item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    Port(u8, u16),
    Protocol(u8),
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub engine: EngineConfig,
    pub ports: Vec<PortConfig>,
    pub routing: RoutingConfig,
    pub filter: FilterConfig,
    /// Connection tracking for the stateful filter: `[conntrack]`, or
    /// defaults when a rule matches `ct state` (None: stateless).
    pub conntrack: Option<crate::filter::config::ConntrackConfig>,
    pub bridges: Vec<BridgeConfig>,
    /// NAT44, when `[nat]` is configured.
    pub nat: Option<crate::nat::NatConfig>,
    /// Load-balancer services (`[[lb]]`).
    pub lb: Vec<crate::lb::ServiceConfig>,
    /// TCP applications (`[[tcp]]`).
    pub tcp: Vec<crate::tcp::endpoint::AppConfig>,
    /// The engine TCP's limits and timers (`[tcp_stack]`).
    pub tcp_stack: crate::tcp::endpoint::StackConfig,
    /// UDP echo ports (`[[udp]]`).
    pub udp_echo: Vec<u16>,
    /// The test impairment stage, when `[impair]` is configured.
    pub impair: Option<crate::impair::ImpairConfig>,
}

/// What validation may ask of the machine. Tests substitute their own.
pub trait Environment {
    /// Whether a network interface of this name exists.
    fn interface_exists(&self, name: &str) -> bool;
    /// The number of CPU cores workers may be pinned to.
    fn core_count(&self) -> usize;
}

/// The machine the engine runs on.
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl Environment for System {
    fn interface_exists(&self, name: &str) -> bool {
        !name.is_empty() && !name.contains('/') && Path::new("/sys/class/net").join(name).exists()
    }
    fn core_count(&self) -> usize {
        // Online CPUs, not this process's affinity mask (`taskset` would shrink
        // available_parallelism and refuse cores the workers may pin to).
        std::fs::read_to_string("/sys/devices/system/cpu/online")
            .ok()
            .and_then(|s| {
                s.trim()
                    .split(',')
                    .filter_map(|r| r.rsplit('-').next()?.parse::<usize>().ok())
                    .max()
            })
            .map(|m| m + 1)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            })
    }
}

/// Headroom the kernel keeps in front of each frame in copy mode (XDP_PACKET_HEADROOM).
const XDP_HEADROOM: u32 = 256;
/// Ethernet header with two VLAN tags.
const MAX_L2_HEADER: u32 = 14 + 8;

impl Config {
    /// The bridge domains of this configuration, as the switch stage runs
    /// them (port indices are the configuration's port order, as everywhere
    /// in the engine).
    pub fn switch(&self) -> crate::l2::Switch {
        let members: Vec<crate::l2::bridge::Membership<'_>> = self
            .ports
            .iter()
            .map(|p| crate::l2::bridge::Membership {
                name: &p.name,
                bridge: if p.mode == PortMode::Switch || p.bvi.is_some() {
                    p.bridge.as_deref()
                } else {
                    None
                },
                vlans: &p.vlans,
                bvi: p.bvi,
            })
            .collect();
        crate::l2::Switch::build(&self.bridges, &members)
    }

    /// Reads and validates a configuration file against this machine.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                message: format!("cannot read: {e}"),
            }])
        })?;
        Config::parse(path, &text, &System)
    }

    /// Parses and validates configuration text. `file` only names the source in errors.
    pub fn parse(file: &Path, text: &str, env: &dyn Environment) -> Result<Config, ConfigErrors> {
        let mut ck = Checker::new(file, text);
        let raw: RawConfig = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let msg = e.message().to_string();
                ck.at(e.span().unwrap_or(0..0), msg);
                return Err(ConfigErrors(ck.errors));
            }
        };
        let engine = validate_engine(&mut ck, raw.engine, env);
        let bridge_names: Vec<String> = raw
            .bridges
            .iter()
            .map(|b| b.name.get_ref().clone())
            .collect();
        let mut ports = validate_ports(&mut ck, raw.ports, &engine, env, &bridge_names);
        let members: Vec<crate::l2::bridge::Membership<'_>> = ports
            .iter()
            .map(|p| crate::l2::bridge::Membership {
                name: &p.name,
                bridge: p.bridge.as_deref(),
                vlans: &p.vlans,
                bvi: None,
            })
            .collect();
        let (bridges, bvis) = crate::l2::config::validate(&mut ck, raw.bridges, &members);
        validate_bvis(&mut ck, bvis, &engine, &mut ports);
        let mut routes = Vec::new();
        // Gateway reachability is only meaningful once the ports themselves are valid.
        let ports_ok = ck.errors.is_empty();
        for r in raw.routing.routes {
            validate_route(&mut ck, &r, &ports, ports_ok);
            let line = ck.line(&r.span());
            routes.push(RouteLine {
                text: r.into_inner(),
                line,
            });
        }
        let routes_file = raw.routing.routes_file.map(|f| {
            let span = f.span();
            let p = f.into_inner();
            let p = if p.is_relative() {
                file.parent().unwrap_or(Path::new(".")).join(p)
            } else {
                p
            };
            if !p.is_file() {
                ck.at(span, format!("routes_file {} does not exist", p.display()));
            }
            p
        });
        let mirror_table = match raw.routing.mirror_table {
            Some(t) => {
                // 0 is "unspecified" and 255 the local table: neither holds forwarding routes.
                if *t.get_ref() == 0 || *t.get_ref() == 255 {
                    ck.at(
                        t.span(),
                        "mirror_table must be a kernel routing table other than 0 and 255 (local)",
                    );
                }
                *t.get_ref()
            }
            None => 254,
        };
        let kernel_control = if raw.routing.kernel_control.unwrap_or(raw.routing.mirror) {
            let mut kc = KernelControl::defaults();
            for e in &raw.routing.kernel_control_extra {
                match KernelControl::parse_extra(e.get_ref()) {
                    Ok(Extra::Port(p, n)) => {
                        if !kc.l4_ports.contains(&(p, n)) {
                            kc.l4_ports.push((p, n));
                        }
                    }
                    Ok(Extra::Protocol(n)) => {
                        if !kc.protocols.contains(&n) {
                            kc.protocols.push(n);
                        }
                    }
                    Err(m) => ck.at(e.span(), format!("kernel_control_extra: {m}")),
                }
            }
            Some(kc)
        } else {
            if !raw.routing.kernel_control_extra.is_empty() {
                ck.at(
                    raw.routing.kernel_control_extra[0].span(),
                    "kernel_control_extra needs kernel_control (or mirror) on",
                );
            }
            None
        };
        let routing = RoutingConfig {
            routes,
            routes_file,
            import_kernel_routes: raw.routing.import_kernel_routes,
            accept_unsolicited_arp: raw.routing.accept_unsolicited_arp,
            mirror: raw.routing.mirror,
            mirror_table,
            kernel_control,
            announce_table: None,
        };
        // Each feature validates its own section; it sees the ports only as
        // names, roles or addresses.
        let names: Vec<PortName<'_>> = ports
            .iter()
            .map(|p| PortName {
                name: &p.name,
                interface: &p.interface,
            })
            .collect();
        let filter = crate::filter::config::validate(&mut ck, raw.filter, &names);
        let conntrack = crate::filter::config::validate_conntrack(&mut ck, raw.conntrack, &filter);
        let roles: Vec<crate::nat::Role> = ports.iter().map(|p| p.nat).collect();
        let nat = crate::nat::config::validate(&mut ck, raw.nat, &roles);
        let addrs: Vec<(IpAddr, u8)> = ports
            .iter()
            .flat_map(|p| p.addresses.iter().map(|a| (a.addr, a.prefix_len)))
            .collect();
        let pool = nat.as_ref().map_or(&[][..], |n| &n.pool[..]);
        let lb = crate::lb::config::validate(&mut ck, raw.lbs, &addrs, pool);
        let mut routing = routing;
        routing.announce_table =
            crate::lb::config::validate_announce(&mut ck, raw.routing.announce_table, &lb, {
                routing.mirror.then_some(routing.mirror_table)
            });
        let tcp = crate::tcp::config::validate_apps(&mut ck, raw.tcps);
        let tcp_stack =
            crate::tcp::config::validate_stack(&mut ck, raw.tcp_stack.unwrap_or_default());
        let udp_echo = crate::router::config::validate_udp(&mut ck, raw.udps);
        let impair = crate::impair::validate(&mut ck, raw.impair, &names);
        if ck.errors.is_empty() {
            Ok(Config {
                engine,
                ports,
                routing,
                filter,
                conntrack,
                bridges,
                nat,
                lb,
                tcp,
                tcp_stack,
                udp_echo,
                impair,
            })
        } else {
            Err(ConfigErrors(ck.errors))
        }
    }
}

/// A route must parse, name existing ports, and have gateways the engine can
/// reach: on a port's subnet, or with an explicit `dev`.
fn validate_route(
    ck: &mut Checker<'_>,
    r: &Spanned<String>,
    ports: &[PortConfig],
    check_gateways: bool,
) {
    let route = match crate::l3::routes_file::parse_line(r.get_ref()) {
        Ok(Some(route)) => route,
        Ok(None) => return,
        Err(e) => return ck.at(r.span(), format!("route `{}`: {e}", r.get_ref())),
    };
    for h in &route.hops {
        if let Some(d) = &h.dev {
            if !ports.iter().any(|p| &p.name == d || &p.interface == d) {
                ck.at(r.span(), format!("route `{}`: no port `{d}`", r.get_ref()));
            }
        } else if let Some(gw) = h.gateway.filter(|_| check_gateways) {
            let on_link = ports.iter().any(|p| {
                p.addresses.iter().any(|a| {
                    let host = InterfaceAddress {
                        addr: gw,
                        prefix_len: a.prefix_len,
                    };
                    a.addr.is_ipv4() == gw.is_ipv4() && a.overlaps(&host)
                })
            });
            if !on_link {
                ck.at(
                    r.span(),
                    format!(
                        "route `{}`: gateway {gw} is on no port's subnet (add `dev PORT`)",
                        r.get_ref()
                    ),
                );
            }
        }
    }
}

fn validate_engine(ck: &mut Checker<'_>, raw: RawEngine, env: &dyn Environment) -> EngineConfig {
    let cores_span = raw.cores.span();
    let cores = raw.cores.into_inner();
    if cores.is_empty() {
        ck.at(
            cores_span.clone(),
            "`cores` is empty: at least one worker core is needed",
        );
    }
    let n = env.core_count();
    for (i, c) in cores.iter().enumerate() {
        if *c >= n {
            ck.at(
                cores_span.clone(),
                format!(
                    "core {c} does not exist (this machine has cores 0..{})",
                    n - 1
                ),
            );
        }
        if cores[..i].contains(c) {
            ck.at(cores_span.clone(), format!("core {c} is listed twice"));
        }
    }
    let metrics_listen = raw.metrics_listen.and_then(|m| {
        let span = m.span();
        match m.get_ref().parse::<SocketAddr>() {
            Ok(a) if a.ip().is_loopback() => Some(a),
            Ok(a) => {
                ck.at(span, format!("metrics_listen {a} is not a loopback address (metrics are served on localhost only)"));
                None
            }
            Err(_) => {
                ck.at(span, format!("metrics_listen `{}` is not ADDRESS:PORT", m.get_ref()));
                None
            }
        }
    });
    let frame_size = *raw.frame_size.get_ref();
    if frame_size != 2048 && frame_size != 4096 {
        ck.at(
            raw.frame_size.span(),
            format!("frame_size {frame_size} is not 2048 or 4096"),
        );
    }
    let frames = *raw.frames_per_port.get_ref();
    if !frames.is_power_of_two() || !(512..=1 << 20).contains(&frames) {
        ck.at(
            raw.frames_per_port.span(),
            format!("frames_per_port {frames} is not a power of two between 512 and 1048576"),
        );
    }
    if raw.idle_timeout_ms == 0 && raw.poll == PollMode::Adaptive {
        ck.at(
            0..0,
            "idle_timeout_ms must be at least 1 in adaptive poll mode",
        );
    }
    let d = crate::context::ratelimit::IcmpLimits::default();
    let icmp = crate::context::ratelimit::IcmpLimits {
        per_dest_rate: in_range(
            ck,
            &raw.icmp_rate_per_dest,
            "icmp_rate_per_dest",
            0,
            1_000_000,
            u64::from(d.per_dest_rate),
        ) as u32,
        per_dest_burst: in_range(
            ck,
            &raw.icmp_burst_per_dest,
            "icmp_burst_per_dest",
            0,
            1_000_000,
            u64::from(d.per_dest_burst),
        ) as u32,
        global_rate: in_range(
            ck,
            &raw.icmp_msgs_per_sec,
            "icmp_msgs_per_sec",
            0,
            10_000_000,
            u64::from(d.global_rate),
        ) as u32,
        global_burst: in_range(
            ck,
            &raw.icmp_msgs_burst,
            "icmp_msgs_burst",
            0,
            1_000_000,
            u64::from(d.global_burst),
        ) as u32,
    };
    let ctl_group = raw.ctl_group.and_then(|g| {
        let span = g.span();
        let name = g.into_inner();
        // POSIX portable names: letters, digits, `.`, `_`, `-`, not starting with `-`.
        let ok = !name.is_empty()
            && name.len() <= 32
            && !name.starts_with('-')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !ok {
            ck.at(span, format!("ctl_group `{name}` is not a group name (letters, digits, `.`, `_`, `-`; at most 32)"));
        }
        ok.then_some(name)
    });
    let user = match raw.user {
        None => DEFAULT_USER.to_string(),
        Some(u) => {
            if !valid_user_name(u.get_ref()) {
                ck.at(
                    u.span(),
                    format!("user `{}` is not a user name (1-32 letters, digits, `_`, `-`, `.`; not starting with `-` or a digit only)", u.get_ref()),
                );
            }
            u.into_inner()
        }
    };
    EngineConfig {
        user,
        icmp,
        ctl_group,
        cores,
        poll: raw.poll,
        idle_timeout_ms: raw.idle_timeout_ms,
        ctl_socket: raw.ctl_socket,
        metrics_listen,
        frame_size,
        frames_per_port: frames,
        trace: raw.trace,
    }
}

/// The default `[engine] user`.
pub const DEFAULT_USER: &str = "pktengine";

/// A portable user name (POSIX's portable filename characters, as
/// useradd accepts them): not empty, at most 32 bytes, no leading `-`, not
/// all digits (it would read as a uid).
fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && !name.bytes().all(|b| b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

fn validate_ports(
    ck: &mut Checker<'_>,
    raw: Vec<RawPort>,
    engine: &EngineConfig,
    env: &dyn Environment,
    bridges: &[String],
) -> Vec<PortConfig> {
    if raw.is_empty() {
        ck.at(0..0, "no [[port]] is configured");
    }
    let max_mtu = engine
        .frame_size
        .saturating_sub(XDP_HEADROOM + MAX_L2_HEADER);
    let mut ports: Vec<PortConfig> = Vec::with_capacity(raw.len());
    // (port index, address, span) of every address seen so far, for the overlap check.
    let mut seen: Vec<(usize, InterfaceAddress)> = Vec::new();
    for p in raw {
        let name = p.name.get_ref().clone();
        if name.is_empty()
            || name.len() > 15
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            ck.at(
                p.name.span(),
                format!("port name `{name}` must be 1-15 characters of [A-Za-z0-9_-]"),
            );
        }
        if ports.iter().any(|q| q.name == name) {
            ck.at(p.name.span(), format!("port name `{name}` is used twice"));
        }
        let interface = p.interface.get_ref().clone();
        if !env.interface_exists(&interface) {
            ck.at(
                p.interface.span(),
                format!("unknown interface `{interface}`"),
            );
        }
        if let Some(q) = ports.iter().find(|q| q.interface == interface) {
            ck.at(
                p.interface.span(),
                format!(
                    "interface `{interface}` is already used by port `{}`",
                    q.name
                ),
            );
        }
        let queues = *p.queues.get_ref();
        if queues == 0 || queues > 64 {
            ck.at(
                p.queues.span(),
                format!("queues {queues} is not between 1 and 64"),
            );
        }
        let rss = rss_setting(ck, &p, queues);
        let mtu = *p.mtu.get_ref();
        if u32::from(mtu) < 68 || u32::from(mtu) > max_mtu {
            ck.at(
                p.mtu.span(),
                format!(
                    "mtu {mtu} is not between 68 and {max_mtu} (frame_size {} less headroom)",
                    engine.frame_size
                ),
            );
        }
        let mut addresses = Vec::new();
        for a in &p.addresses {
            match a.get_ref().parse::<InterfaceAddress>() {
                Ok(addr) => {
                    if addr.addr.is_ipv6() && mtu < 1280 {
                        ck.at(
                            p.mtu.span(),
                            format!(
                                "mtu {mtu} is below the IPv6 minimum of 1280 on a port with {addr}"
                            ),
                        );
                    }
                    if let Some((other, prev)) = seen.iter().find(|(_, s)| s.overlaps(&addr)) {
                        let owner = ports.get(*other).map_or(name.as_str(), |q| q.name.as_str());
                        ck.at(
                            a.span(),
                            format!("{addr} overlaps {prev} on port `{owner}`"),
                        );
                    }
                    seen.push((ports.len(), addr));
                    addresses.push(addr);
                }
                Err(msg) => ck.at(a.span(), msg),
            }
        }
        match (p.mode, &p.bridge) {
            (PortMode::Switch, None) => ck.at(
                p.name.span(),
                format!("port `{name}` is in switch mode but names no `bridge`"),
            ),
            (PortMode::Router, Some(b)) => ck.at(
                b.span(),
                format!("port `{name}` is a router port; `bridge` is for switch ports"),
            ),
            (PortMode::Switch, Some(b)) if !bridges.contains(b.get_ref()) => ck.at(
                b.span(),
                format!("port `{name}`: no [[bridge]] named `{}`", b.get_ref()),
            ),
            _ => {}
        }
        if p.mode == PortMode::Switch && !addresses.is_empty() {
            if let Some(a) = p.addresses.first() {
                ck.at(a.span(), format!("port `{name}` is a switch port: it has no addresses (a bridge interface will carry them)"));
            }
        }
        let vid_ok = |v: u16| (1..=4094).contains(&v);
        let vlans = match (&p.vlan, &p.trunk) {
            (Some(_), Some(t)) => {
                ck.at(
                    t.span(),
                    format!("port `{name}`: `vlan` (access) and `trunk` are exclusive"),
                );
                VlanMode::Access(1)
            }
            (Some(v), None) => {
                if !vid_ok(*v.get_ref()) {
                    ck.at(
                        v.span(),
                        format!(
                            "port `{name}`: VLAN {} is not between 1 and 4094",
                            v.get_ref()
                        ),
                    );
                }
                VlanMode::Access(*v.get_ref())
            }
            (None, Some(t)) => {
                let list = t.get_ref();
                if list.is_empty() {
                    ck.at(t.span(), format!("port `{name}`: `trunk` lists no VLAN"));
                }
                for (i, v) in list.iter().enumerate() {
                    if !vid_ok(*v) {
                        ck.at(
                            t.span(),
                            format!("port `{name}`: VLAN {v} is not between 1 and 4094"),
                        );
                    }
                    if list[..i].contains(v) {
                        ck.at(t.span(), format!("port `{name}`: VLAN {v} is listed twice"));
                    }
                }
                VlanMode::Trunk(list.clone())
            }
            (None, None) => VlanMode::Access(1),
        };
        if p.mode == PortMode::Router {
            if let Some(v) = &p.vlan {
                ck.at(
                    v.span(),
                    format!("port `{name}` is a router port; `vlan` is for switch ports"),
                );
            }
            if let Some(t) = &p.trunk {
                ck.at(
                    t.span(),
                    format!("port `{name}` is a router port; `trunk` is for switch ports"),
                );
            }
        }
        ports.push(PortConfig {
            rss,
            name,
            interface,
            mode: p.mode,
            queues,
            addresses,
            mtu,
            xdp_mode: p.xdp_mode,
            rp_filter: p.rp_filter,
            bridge: p.bridge.map(Spanned::into_inner),
            nat: match p.nat.as_ref().map(|r| *r.get_ref()) {
                Some(RawNatRole::Inside) => crate::nat::Role::Inside,
                Some(RawNatRole::Outside) => crate::nat::Role::Outside,
                None => crate::nat::Role::None,
            },
            vlans,
            bvi: None,
        });
        if let (Some(r), PortMode::Switch) = (&p.nat, p.mode) {
            ck.at(
                r.span(),
                format!(
                    "port `{}` is a switch port; `nat` is for router ports",
                    ports.last().map_or("", |p| p.name.as_str())
                ),
            );
        }
    }
    ports
}

/// Bridges' routed interfaces (BVIs) become router ports after the
/// configured ones, checked as a router port is (name, addresses and their
/// overlaps, MTU, NAT side); they have no interface and no queue.
fn validate_bvis(
    ck: &mut Checker<'_>,
    raw: Vec<crate::l2::config::RawBvi>,
    engine: &EngineConfig,
    ports: &mut Vec<PortConfig>,
) {
    let max_mtu = engine
        .frame_size
        .saturating_sub(XDP_HEADROOM + MAX_L2_HEADER);
    for b in raw {
        if let Some(q) = ports.iter().find(|q| q.name == b.port) {
            let what = if q.bvi.is_some() {
                "another bridge's interface"
            } else {
                "a [[port]]"
            };
            ck.at(
                b.span.clone(),
                format!(
                    "bridge `{}`: its interface is the port `{}`, a name {what} has already",
                    b.bridge, b.port
                ),
            );
        }
        let mtu = b.mtu.as_ref().map_or(1500, |m| *m.get_ref());
        if u32::from(mtu) < 68 || u32::from(mtu) > max_mtu {
            let at = b.mtu.as_ref().map_or(b.span.clone(), Spanned::span);
            ck.at(at, format!("bridge `{}`: mtu {mtu} is not between 68 and {max_mtu} (frame_size {} less headroom)", b.bridge, engine.frame_size));
        }
        let mut addresses = Vec::new();
        for a in &b.addresses {
            match a.get_ref().parse::<InterfaceAddress>() {
                Ok(addr) => {
                    if addr.addr.is_ipv6() && mtu < 1280 {
                        ck.at(a.span(), format!("bridge `{}`: mtu {mtu} is below the IPv6 minimum of 1280 with {addr}", b.bridge));
                    }
                    let prev = ports.iter().find_map(|q| {
                        q.addresses
                            .iter()
                            .find(|x| x.overlaps(&addr))
                            .map(|x| (q.name.clone(), *x))
                    });
                    let prev = prev.or_else(|| {
                        addresses
                            .iter()
                            .find(|x: &&InterfaceAddress| x.overlaps(&addr))
                            .map(|x| (b.port.clone(), *x))
                    });
                    if let Some((owner, prev)) = prev {
                        ck.at(
                            a.span(),
                            format!("{addr} overlaps {prev} on port `{owner}`"),
                        );
                    }
                    addresses.push(addr);
                }
                Err(msg) => ck.at(a.span(), format!("bridge `{}`: {msg}", b.bridge)),
            }
        }
        let nat = match b.nat.as_ref().map(|n| n.get_ref().as_str()) {
            None => crate::nat::Role::None,
            Some("inside") => crate::nat::Role::Inside,
            Some("outside") => crate::nat::Role::Outside,
            Some(other) => {
                let at = b.nat.as_ref().map_or(b.span.clone(), Spanned::span);
                ck.at(
                    at,
                    format!(
                        "bridge `{}`: nat `{other}` is not `inside` or `outside`",
                        b.bridge
                    ),
                );
                crate::nat::Role::None
            }
        };
        ports.push(PortConfig {
            rss: RssSetting::Off,
            name: b.port,
            interface: String::new(),
            mode: PortMode::Router,
            queues: 0,
            addresses,
            mtu,
            xdp_mode: XdpMode::default(),
            rp_filter: b.rp_filter,
            bridge: Some(b.bridge),
            nat,
            vlans: VlanMode::Access(b.vlan),
            bvi: Some(b.mac),
        });
    }
}

pub use crate::wire::parse_mac;

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeEnv;
    impl Environment for FakeEnv {
        fn interface_exists(&self, name: &str) -> bool {
            name.starts_with("veth")
        }
        fn core_count(&self) -> usize {
            2
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(Path::new("t.toml"), text, &FakeEnv)
    }

    fn errors(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_err()
            .0
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    const GOOD: &str = r#"
[engine]
cores = [1]
poll = "busy"

[[port]]
name = "lan"
interface = "veth-a"
mode = "router"
addresses = ["198.18.1.1/24", "2001:2:0:1::1/64"]

[[port]]
name = "wan"
interface = "veth-b"
mode = "router"
addresses = ["198.18.2.1/24"]
mtu = 1400

[routing]
routes = ["198.18.100.0/24 via 198.18.2.2", "default via 198.18.2.2"]
"#;

    #[test]
    fn good_config_parses() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.engine.cores, vec![1]);
        assert_eq!(c.engine.poll, PollMode::Busy);
        assert_eq!(c.ports.len(), 2);
        assert_eq!(c.ports[0].addresses[1].to_string(), "2001:2:0:1::1/64");
        assert_eq!(c.ports[1].mtu, 1400);
        assert_eq!(c.ports[0].mtu, 1500);
        assert_eq!(c.routing.routes[1].text, "default via 198.18.2.2");
        assert_eq!(c.routing.routes[1].line, 20);
    }

    #[test]
    fn rss_settings_per_port() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.ports[0].rss, RssSetting::Auto, "the default");
        let lan = "mtu = 1400";
        let c = parse(&GOOD.replace(lan, &format!("{lan}\nqueues = 2\nrss = \"off\""))).unwrap();
        assert_eq!(c.ports[1].rss, RssSetting::Off);
        let explicit = format!(
            "{lan}\nqueues = 2\nrss_key = \"{}\"\nrss_table = [0, 1, 1, 0]",
            ["6d", "5a"].repeat(20).join(":")
        );
        let c = parse(&GOOD.replace(lan, &explicit)).unwrap();
        let RssSetting::Explicit { key, table } = &c.ports[1].rss else {
            panic!("{:?}", c.ports[1].rss)
        };
        assert_eq!(
            (key.len(), key[0], key[1], &table[..]),
            (40, 0x6d, 0x5a, &[0, 1, 1, 0][..])
        );
        for (bad, why) in [
            ("rss = \"fast\"", "expected \"auto\" or \"off\""),
            ("rss_key = \"6d:5a\"\nrss_table = [0]", "at least 16"),
            ("rss_key = \"6d:zz\"\nrss_table = [0]", "not hex"),
            ("rss_table = [0]", "rss_table needs rss_key"),
            (
                &explicit.replace("[0, 1, 1, 0]", "[0, 2]")[lan.len() + 1..],
                "names queue 2",
            ),
            (
                "rss = \"auto\"\nrss_key = \"6d:5a\"\nrss_table = [0]",
                "one or the other",
            ),
        ] {
            let e = errors(&GOOD.replace(lan, &format!("{lan}\n{bad}")));
            assert!(e.iter().any(|m| m.contains(why)), "{bad}: {e:?}");
        }
    }

    #[test]
    fn unknown_key_has_line() {
        let e = errors(&GOOD.replace("poll = \"busy\"", "poll = \"busy\"\nturbo = true"));
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("t.toml:5:1: "), "{e:?}");
        assert!(e[0].contains("turbo"), "{e:?}");
    }

    #[test]
    fn unknown_interface_and_bad_prefix_reported_together() {
        let text = GOOD
            .replace("veth-b", "eth-nope")
            .replace("198.18.2.1/24", "198.18.2.1/33");
        let e = errors(&text);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("t.toml:14:13: unknown interface `eth-nope`"),
            "{e:?}"
        );
        assert!(e[1].starts_with("t.toml:16:14: prefix length 33"), "{e:?}");
    }

    #[test]
    fn overlapping_addresses_refused() {
        let e = errors(&GOOD.replace("198.18.2.1/24", "198.18.1.200/16"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("198.18.1.200/16 overlaps 198.18.1.1/24 on port `lan`"),
            "{e:?}"
        );
        // Different families never overlap; disjoint subnets are fine.
        assert!(parse(&GOOD.replace("198.18.2.", "198.18.3.")).is_ok());
    }

    #[test]
    fn icmp_limits_parse_with_linux_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(
            c.engine.icmp,
            crate::context::ratelimit::IcmpLimits::default()
        );
        assert_eq!(
            (c.engine.icmp.global_rate, c.engine.icmp.global_burst),
            (1000, 50)
        );
        let c = parse(&GOOD.replace(
            "cores = [1]",
            "cores = [1]\nicmp_msgs_per_sec = 200\nicmp_msgs_burst = 10\nicmp_rate_per_dest = 5",
        ))
        .unwrap();
        assert_eq!(
            (
                c.engine.icmp.global_rate,
                c.engine.icmp.global_burst,
                c.engine.icmp.per_dest_rate
            ),
            (200, 10, 5)
        );
        let e = errors(&GOOD.replace("cores = [1]", "cores = [1]\nicmp_msgs_per_sec = 20000000"));
        assert!(
            e[0].contains("icmp_msgs_per_sec 20000000: expected 0..=10000000"),
            "{e:?}"
        );
    }

    #[test]
    fn user_defaults_to_pktengine_and_must_be_a_user_name() {
        assert_eq!(parse(GOOD).unwrap().engine.user, "pktengine");
        let c = parse(&GOOD.replace("cores = [1]", "cores = [1]\nuser = \"pkt-e_1.x\"")).unwrap();
        assert_eq!(c.engine.user, "pkt-e_1.x");
        for bad in [
            "",
            "-x",
            "1000",
            "root:x",
            "a b",
            "a/b",
            "x234567890123456789012345678901234",
        ] {
            let e = errors(&GOOD.replace("cores = [1]", &format!("cores = [1]\nuser = \"{bad}\"")));
            assert_eq!(e.len(), 1, "{bad}: {e:?}");
            assert!(
                e[0].starts_with("t.toml:4:8: user `") && e[0].contains("is not a user name"),
                "{bad}: {e:?}"
            );
        }
        // Whether the user exists is the run's question (`--allow-privileged` may run without it).
        assert!(parse(&GOOD.replace("cores = [1]", "cores = [1]\nuser = \"nosuchuser\"")).is_ok());
    }

    #[test]
    fn other_semantic_errors() {
        assert!(errors(&GOOD.replace("cores = [1]", "cores = [7]"))[0]
            .contains("core 7 does not exist"));
        assert!(errors(&GOOD.replace("cores = [1]", "cores = []"))[0].contains("`cores` is empty"));
        assert!(errors(&GOOD.replace("name = \"wan\"", "name = \"lan\""))[0].contains("used twice"));
        assert!(errors(&GOOD.replace("veth-b", "veth-a"))[0].contains("already used by port `lan`"));
        assert!(errors(&GOOD.replace("mtu = 1400", "mtu = 9000"))[0].contains("mtu 9000"));
        assert!(errors(&GOOD.replace("198.18.2.1/24", "198.18.2.0/24"))[0]
            .contains("network or broadcast"));
        assert!(errors(&GOOD.replace("198.18.2.1/24", "127.0.0.1/8"))[0].contains("loopback"));
        assert!(errors(&GOOD.replace(
            "mode = \"router\"\naddresses = [\"198.18.2.1/24\"]",
            "mode = \"switch\""
        ))
        .iter()
        .any(|e| e.contains("names no `bridge`")));
        let e = errors(&GOOD.replace(
            "198.18.100.0/24 via 198.18.2.2",
            "198.18.100.0/33 via 198.18.2.2",
        ));
        assert!(
            e[0].starts_with("t.toml:20:") && e[0].contains("198.18.100.0/33"),
            "{e:?}"
        );
        let e = errors(&GOOD.replace(
            "198.18.100.0/24 via 198.18.2.2",
            "198.18.100.0/24 via 198.19.9.9",
        ));
        assert!(e[0].contains("on no port's subnet"), "{e:?}");
        let e = errors(&GOOD.replace(
            "198.18.100.0/24 via 198.18.2.2",
            "198.18.100.0/24 via 198.19.9.9 dev nope",
        ));
        assert!(e[0].contains("no port `nope`"), "{e:?}");
        assert!(parse(&GOOD.replace(
            "198.18.100.0/24 via 198.18.2.2",
            "198.18.100.0/24 via 198.19.9.9 dev wan"
        ))
        .is_ok());
        let e = errors(&GOOD.replace(
            "poll = \"busy\"",
            "poll = \"busy\"\nmetrics_listen = \"198.18.0.1:9000\"",
        ));
        assert!(e[0].contains("not a loopback"), "{e:?}");
        let e = errors(&GOOD.replace(
            "poll = \"busy\"",
            "poll = \"busy\"\nctl_group = \"ops team\"",
        ));
        assert!(
            e[0].contains("ctl_group `ops team` is not a group name"),
            "{e:?}"
        );
        let ok = parse(&GOOD.replace(
            "poll = \"busy\"",
            "poll = \"busy\"\nctl_group = \"pktengine-ops\"",
        ))
        .unwrap();
        assert_eq!(ok.engine.ctl_group.as_deref(), Some("pktengine-ops"));
        assert!(errors(&GOOD.replace(
            "mode = \"router\"\naddresses = [\"198.18.1.1/24\", \"2001:2:0:1::1/64\"]",
            "mode = \"router\"\nmtu = 1200\naddresses = [\"2001:2:0:1::1/64\"]"
        ))[0]
            .contains("IPv6 minimum"));
        assert!(errors("")[0].contains("no [[port]]"));
        assert!(errors("[[port]]\nname = 1")[0].starts_with("t.toml:2:"));
    }

    const SWITCH: &str = r#"
[[bridge]]
name = "br0"
aging_s = 5
max_entries = 1000
static = ["02:00:00:00:00:01 port p1", "02:00:00:00:00:02 port t vlan 20"]

[[port]]
name = "p1"
interface = "veth-1"
mode = "switch"
bridge = "br0"
vlan = 10

[[port]]
name = "t"
interface = "veth-2"
mode = "switch"
bridge = "br0"
trunk = [10, 20]
"#;

    #[test]
    fn switch_config_parses() {
        let c = parse(SWITCH).unwrap();
        assert_eq!(c.bridges.len(), 1);
        let b = &c.bridges[0];
        assert_eq!(
            (b.name.as_str(), b.aging_s, b.max_entries),
            ("br0", 5, 1000)
        );
        assert_eq!(
            b.statics[0],
            StaticMac {
                mac: [2, 0, 0, 0, 0, 1],
                port: "p1".into(),
                vlan: 10
            }
        );
        assert_eq!(b.statics[1].vlan, 20);
        assert_eq!(c.ports[0].vlans, VlanMode::Access(10));
        assert_eq!(c.ports[1].vlans, VlanMode::Trunk(vec![10, 20]));
        // Defaults: aging 300 s, 65536 entries, access VLAN 1.
        let d = parse(
            &SWITCH
                .replace("aging_s = 5\nmax_entries = 1000\n", "")
                .replace("vlan = 10\n", "")
                .replace("\"02:00:00:00:00:01 port p1\", ", ""),
        )
        .unwrap();
        assert_eq!(
            (d.bridges[0].aging_s, d.bridges[0].max_entries),
            (300, 65536)
        );
        assert_eq!(d.ports[0].vlans, VlanMode::Access(1));
    }

    #[test]
    fn switch_config_errors_have_lines() {
        let e =
            errors(&SWITCH.replace("bridge = \"br0\"\nvlan = 10", "bridge = \"br9\"\nvlan = 10"));
        assert!(
            e.iter()
                .any(|x| x.starts_with("t.toml:12:10: port `p1`: no [[bridge]] named `br9`")),
            "{e:?}"
        );
        let e = errors(&SWITCH.replace("vlan = 10", "vlan = 4095"));
        assert!(
            e[0].starts_with("t.toml:13:8:") && e[0].contains("VLAN 4095"),
            "{e:?}"
        );
        let e = errors(&SWITCH.replace("trunk = [10, 20]", "trunk = [10, 10]"));
        assert!(e.iter().any(|x| x.contains("listed twice")), "{e:?}");
        let e = errors(&SWITCH.replace("port t vlan 20", "port t vlan 30"));
        assert!(
            e[0].starts_with("t.toml:6:") && e[0].contains("does not carry VLAN 30"),
            "{e:?}"
        );
        let e = errors(&SWITCH.replace("port t vlan 20", "port t"));
        assert!(e[0].contains("is a trunk; say which `vlan`"), "{e:?}");
        let e = errors(&SWITCH.replace("02:00:00:00:00:01", "01:00:00:00:00:01"));
        assert!(e[0].contains("not a unicast"), "{e:?}");
        let e = errors(&SWITCH.replace("port p1\"", "port nope\""));
        assert!(e[0].contains("no port `nope`"), "{e:?}");
        let e = errors(&SWITCH.replace("aging_s = 5", "aging_s = 0"));
        assert!(
            e[0].starts_with("t.toml:4:") && e[0].contains("aging_s 0"),
            "{e:?}"
        );
        let e = errors(&SWITCH.replace("max_entries = 1000", "max_entries = 1"));
        assert!(e[0].contains("do not fit"), "{e:?}");
        let e = errors(&SWITCH.replace("vlan = 10", "vlan = 10\ntrunk = [5]"));
        assert!(e[0].contains("exclusive"), "{e:?}");
        let e = errors(&SWITCH.replace("vlan = 10", "vlan = 10\naddresses = [\"198.18.1.1/24\"]"));
        assert!(e[0].contains("has no addresses"), "{e:?}");
        let e = errors(&GOOD.replace("mtu = 1400", "mtu = 1400\nvlan = 5"));
        assert!(e[0].contains("`vlan` is for switch ports"), "{e:?}");
        let e = errors(&format!("{SWITCH}\n[[bridge]]\nname = \"br0\"\n"));
        assert!(e[0].contains("used twice"), "{e:?}");
    }

    #[test]
    fn overlap_logic() {
        let a = |s: &str| s.parse::<InterfaceAddress>().unwrap();
        assert!(a("198.18.1.1/24").overlaps(&a("198.18.1.6/30")));
        assert!(!a("198.18.1.1/24").overlaps(&a("198.18.2.1/24")));
        assert!(a("198.18.1.1/31").overlaps(&a("198.18.1.0/31")));
        assert!(a("2001:2::1/48").overlaps(&a("2001:2:0:5::1/64")));
        assert!(!a("2001:2:0:1::1/64").overlaps(&a("2001:2:0:2::1/64")));
        assert!(!a("198.18.1.1/24").overlaps(&a("2001:2::1/48")));
    }

    #[test]
    fn impair_section_parses() {
        use crate::impair::Direction;
        assert_eq!(parse(GOOD).unwrap().impair, None);
        let text = format!("{GOOD}\n[impair]\ndrop = 0.01\nduplicate = 0\nreorder = 0.02\nseed = 42\nports = [\"lan\", \"veth-b\"]\ndirection = \"rx\"\n");
        let i = parse(&text).unwrap().impair.unwrap();
        assert_eq!(
            (i.drop, i.duplicate, i.reorder, i.seed),
            (0.01, 0.0, 0.02, 42)
        );
        assert_eq!(i.ports, vec!["lan".to_string(), "veth-b".to_string()]);
        assert_eq!(i.direction, Direction::Rx);
        // Defaults: nothing impaired, seed 0, every port, both directions.
        let d = parse(&format!("{GOOD}\n[impair]\n"))
            .unwrap()
            .impair
            .unwrap();
        assert_eq!(
            (
                d.drop,
                d.duplicate,
                d.reorder,
                d.seed,
                d.ports.len(),
                d.direction
            ),
            (0.0, 0.0, 0.0, 0, 0, Direction::Both)
        );
        // Probabilities that sum to 1 in decimal but not quite in binary.
        assert!(parse(&format!(
            "{GOOD}\n[impair]\ndrop = 0.1\nduplicate = 0.2\nreorder = 0.7\n"
        ))
        .is_ok());
        assert!(parse(&format!("{GOOD}\n[impair]\ndrop = 1\n")).is_ok());
    }

    #[test]
    fn impair_errors_have_lines() {
        // GOOD ends on line 21: "[impair]" is on line 22, its first key on 23.
        let bad = |body: &str| errors(&format!("{GOOD}\n[impair]\n{body}\n"));
        let e = bad("drop = 1.5");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(
                "t.toml:23:8: [impair] drop 1.5: expected a probability between 0 and 1"
            ),
            "{e:?}"
        );
        let e = bad("seed = 1\nreorder = -0.1");
        assert!(
            e[0].starts_with("t.toml:24:11: [impair] reorder -0.1"),
            "{e:?}"
        );
        let e = bad("duplicate = nan");
        assert!(e[0].contains("duplicate NaN"), "{e:?}");
        let e = bad("drop = 0.5\nduplicate = 0.3\nreorder = 0.3");
        assert!(
            e[0].starts_with("t.toml:22:1: [impair] drop + duplicate + reorder is 1.1"),
            "{e:?}"
        );
        let e = bad("ports = [\"lan\", \"dmz\"]");
        assert!(
            e[0].starts_with("t.toml:23:17: [impair] ports: no port `dmz`"),
            "{e:?}"
        );
        let e = bad("ports = [\"lan\", \"lan\"]");
        assert!(e[0].contains("`lan` is listed twice"), "{e:?}");
        let e = bad("direction = \"sideways\"");
        assert!(
            e[0].starts_with(
                "t.toml:23:13: [impair] direction `sideways`: expected rx, tx or both"
            ),
            "{e:?}"
        );
        let e = bad("delay = 5");
        assert!(
            e[0].starts_with("t.toml:23:1: ") && e[0].contains("delay"),
            "{e:?}"
        );
        let e = bad("seed = -1");
        assert!(e[0].starts_with("t.toml:23:"), "{e:?}");
        // Every problem at once.
        assert_eq!(
            bad("drop = 2\nports = [\"x\"]\ndirection = \"up\"").len(),
            3
        );
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn tcp_servers_clients_stack_and_udp_echo() {
        let text = format!(
            "{GOOD}\n[[tcp]]\napp = \"http\"\nport = 80\nbody = \"hi\"\n\n[[tcp]]\napp = \"bulk\"\nconnect = \"198.18.2.2:5001\"\nbytes = 1000\nconnections = 3\n\n[tcp_stack]\nmax_conns = 4096\nmin_rto_ms = 50\ntime_wait_ms = 1000\nkeepalive_ms = 30000\nmss = 1200\n\n[[udp]]\napp = \"echo\"\nport = 7\n"
        );
        let c = parse(&text).unwrap();
        use crate::tcp::endpoint::App;
        assert_eq!(c.tcp[0].port, 80);
        assert_eq!(
            c.tcp[0].app,
            App::Http {
                body: b"hi".to_vec()
            }
        );
        assert_eq!(c.tcp[1].connect, Some("198.18.2.2:5001".parse().unwrap()));
        // An IPv6 server.
        let v6 = parse(&format!(
            "{GOOD}\n[[tcp]]\napp = \"discard\"\nconnect = \"[2001:2:0:2::2]:5002\"\n"
        ))
        .unwrap();
        assert_eq!(
            v6.tcp[0].connect,
            Some("[2001:2:0:2::2]:5002".parse().unwrap())
        );
        assert_eq!(
            (c.tcp[1].connections, c.tcp[1].app.clone()),
            (3, App::Bulk { bytes: 1000 })
        );
        assert_eq!(c.tcp_stack.max_conns, 4096);
        assert_eq!(c.tcp_stack.tcb.rtt.min_rto_us, 50_000);
        assert_eq!(c.tcp_stack.tcb.time_wait_ms, 1000);
        assert_eq!(c.tcp_stack.tcb.mss, 1200);
        assert_eq!(c.tcp_stack.tcb.keepalive.map(|k| k.idle_ms), Some(30_000));
        assert_eq!(c.udp_echo, vec![7]);
        // Defaults: no keepalive, the MSS from the MTU.
        let d = parse(GOOD).unwrap();
        assert_eq!((d.tcp_stack.tcb.mss, d.tcp_stack.tcb.keepalive), (0, None));
    }

    #[test]
    fn tcp_errors_have_lines() {
        let e = errors(&format!(
            "{GOOD}\n[[tcp]]\napp = \"echo\"\nport = 7\nconnect = \"198.18.2.2:7\"\n"
        ));
        assert!(e.iter().any(|m| m.contains("not both")), "{e:?}");
        let e = errors(&format!(
            "{GOOD}\n[[tcp]]\napp = \"http\"\nconnect = \"198.18.2.2\"\n"
        ));
        assert!(
            e.iter()
                .any(|m| m.starts_with("t.toml:24:11: connect `198.18.2.2`")),
            "{e:?}"
        );
        assert!(e.iter().any(|m| m.contains("http is a server")), "{e:?}");
        let e = errors(&format!(
            "{GOOD}\n[[tcp]]\napp = \"bulk\"\nconnect = \"[fe80::1]:5001\"\n"
        ));
        assert!(
            e.iter()
                .any(|m| m
                    .starts_with("t.toml:24:11: connect `[fe80::1]:5001`: a link-local address")),
            "{e:?}"
        );
        let e = errors(&format!("{GOOD}\n[[tcp]]\napp = \"echo\"\n"));
        assert!(e.iter().any(|m| m.contains("needs port")), "{e:?}");
        let e = errors(&format!("{GOOD}\n[tcp_stack]\nmin_rto_ms = 0\nmss = 40\n"));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e.iter()
                .any(|m| m.starts_with("t.toml:23:14: min_rto_ms 0")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.starts_with("t.toml:24:7: mss 40")),
            "{e:?}"
        );
        let e = errors(&format!("{GOOD}\n[[udp]]\napp = \"chargen\"\nport = 19\n"));
        assert!(e.iter().any(|m| m.contains("expected echo")), "{e:?}");
    }

    #[test]
    fn conntrack_section_and_ct_rules() {
        use crate::conntrack::track::class;
        // No section and no `ct` rule: no connection table.
        assert_eq!(parse(GOOD).unwrap().conntrack, None);
        // A `ct` rule brings the defaults (nf_conntrack's time-outs).
        let c = parse(&format!(
            "{GOOD}\n[filter]\nrules = [\"ct state established accept\"]\n"
        ))
        .unwrap();
        let ct = c.conntrack.unwrap();
        assert_eq!((ct.max_entries, ct.track.tcp_loose), (262_144, false));
        assert_eq!(ct.track.timeouts.get(class::TCP_ESTABLISHED), 432_000_000);
        // The section sets size, behaviour and time-outs; bad values are reported with their line.
        let c = parse(&format!("{GOOD}\n[conntrack]\nmax_entries = 1000\ntcp_loose = true\nudp_timeout_s = 5\ntcp_syn_sent_timeout_s = 7\n")).unwrap();
        let ct = c.conntrack.unwrap();
        assert_eq!((ct.max_entries, ct.track.tcp_loose), (1000, true));
        assert_eq!(
            (
                ct.track.timeouts.get(class::UDP),
                ct.track.timeouts.get(class::TCP_SYN_SENT2)
            ),
            (5000, 7000)
        );
        let e = errors(&format!(
            "{GOOD}\n[conntrack]\nicmp_timeout_s = 0\nfrob = 1\n"
        ));
        assert!(!e.is_empty(), "{e:?}");
    }

    /// Two access ports in VLAN 10 and a trunk of 10 and 20 in bridge `lan`, and a routed `wan`.
    fn bridged(bridge_extra: &str) -> String {
        format!(
            r#"
[[bridge]]
name = "lan"
{bridge_extra}
[[port]]
name = "p1"
interface = "veth1"
mode = "switch"
bridge = "lan"
vlan = 10
[[port]]
name = "p2"
interface = "veth2"
mode = "switch"
bridge = "lan"
vlan = 10
[[port]]
name = "tr"
interface = "veth3"
mode = "switch"
bridge = "lan"
trunk = [10, 20]
[[port]]
name = "wan"
interface = "veth4"
mode = "router"
addresses = ["198.19.1.1/24"]
"#
        )
    }

    #[test]
    fn a_bridge_with_addresses_is_a_routed_port() {
        let text = bridged("addresses = [\"198.18.1.1/24\", \"2001:2:0:1::1/64\"]\nvlan = 10\nnat = \"inside\"\nmac = \"02:00:00:00:01:01\"\n")
            .replace("mode = \"router\"", "mode = \"router\"\nnat = \"outside\"")
            + "\n[nat]\npool = [\"198.19.1.1\"]\n";
        let c = parse(&text).unwrap();
        let names: Vec<&str> = c.ports.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["p1", "p2", "tr", "wan", "lan"],
            "the BVI after the configured ports"
        );
        let lan = &c.ports[4];
        assert_eq!(
            (lan.mode, lan.queues, lan.interface.as_str()),
            (PortMode::Router, 0, "")
        );
        assert_eq!(lan.bvi, Some([2, 0, 0, 0, 1, 1]));
        assert_eq!(
            (lan.nat, &lan.vlans, lan.mtu),
            (crate::nat::Role::Inside, &VlanMode::Access(10), 1500)
        );
        assert_eq!(lan.addresses.len(), 2);
        // One interface per VLAN: ports `lan.10`, `lan.20`.
        let c = parse(&bridged("[[bridge.vlan]]\nid = 10\naddresses = [\"198.18.10.1/24\"]\n[[bridge.vlan]]\nid = 20\naddresses = [\"198.18.20.1/24\"]\nrp_filter = \"strict\"\nmtu = 1400\n")).unwrap();
        let names: Vec<&str> = c.ports.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["p1", "p2", "tr", "wan", "lan.10", "lan.20"]);
        let v20 = &c.ports[5];
        assert_eq!(
            (&v20.vlans, v20.mtu, v20.rp_filter),
            (&VlanMode::Access(20), 1400, RpFilter::Strict)
        );
        assert_eq!(v20.bvi, Some(crate::l2::config::derived_mac("lan.20")));
        assert_eq!(c.bridges[0].bvis.len(), 2);
        // Routes may leave by a BVI; the filter names it.
        let c = parse(&format!("{}\n[routing]\nroutes = [\"198.18.100.0/24 via 198.18.1.9 dev lan\"]\n[filter]\nrules = [\"iif lan accept\"]\n", bridged("addresses = [\"198.18.1.1/24\"]\nvlan = 10\n"))).unwrap();
        assert_eq!(c.filter.rules.len(), 1);
        // The switch: each BVI a member of its bridge, its MAC a static entry of its VLAN.
        let sw = c.switch();
        let (sp, b) = sw.port(4).unwrap();
        assert_eq!(sp.vlan, crate::l2::PortVlan::Access(10));
        assert_eq!(b.bvi, 1 << sp.member);
        assert!(b.statics.iter().any(|(k, m)| *k
            == crate::l2::MacKey::new(10, c.ports[4].bvi.unwrap())
            && *m == sp.member));
    }

    #[test]
    fn bridge_interface_errors_are_reported() {
        let cases: &[(&str, &str)] = &[
            // VLAN 1 by default: no port carries it.
            ("addresses = [\"198.18.1.1/24\"]", "no port of the bridge carries VLAN 1"),
            ("addresses = [\"198.18.1.1/24\"]\nvlan = 30", "carries VLAN 30"),
            ("addresses = [\"198.18.1.1/24\"]\nvlan = 5000", "VLAN 5000 is not between 1 and 4094"),
            ("vlan = 10", "has no `addresses`"),
            ("mac = \"02:00:00:00:00:01\"", "has no `addresses`"),
            ("addresses = [\"198.18.1.1/24\"]\nvlan = 10\nmac = \"01:00:5e:00:00:01\"", "not a unicast station address"),
            ("addresses = [\"198.18.1.1/24\"]\nvlan = 10\nnat = \"middle\"", "nat `middle`"),
            ("addresses = [\"198.19.1.7/24\"]\nvlan = 10", "overlaps 198.19.1.1/24 on port `wan`"),
            ("addresses = [\"198.18.1.1/33\"]\nvlan = 10", "prefix length 33"),
            ("addresses = [\"198.18.1.1/24\"]\nvlan = 10\nmtu = 20", "mtu 20"),
            ("[[bridge.vlan]]\nid = 20", "id 20 has no addresses"),
            ("[[bridge.vlan]]\nid = 20\naddresses = [\"198.18.20.1/24\"]\n[[bridge.vlan]]\nid = 20\naddresses = [\"198.18.21.1/24\"]", "VLAN 20 has two interfaces"),
            ("[[bridge.vlan]]\nid = 20\naddresses = [\"198.18.20.1/24\"]\nfrob = 1", "unknown field `frob`"),
            ("vlan = \"ten\"", "`vlan` is the VLAN of its interface"),
        ];
        for (extra, want) in cases {
            let e = errors(&bridged(extra));
            assert!(
                e.iter().any(|m| m.contains(want)),
                "`{extra}`: wanted `{want}` in {e:?}"
            );
        }
        // The BVI's name is taken by a port.
        let text = bridged("addresses = [\"198.18.1.1/24\"]\nvlan = 10")
            .replace("name = \"wan\"", "name = \"lan\"");
        let e = errors(&text);
        assert!(
            e.iter()
                .any(|m| m
                    .contains("its interface is the port `lan`, a name a [[port]] has already")),
            "{e:?}"
        );
    }
}
