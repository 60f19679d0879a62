//! Bridge domains as the data plane sees them: members, VLAN membership,
//! and each bridge's MAC table (published by arc-swap: the control thread
//! replaces it on a rebuild or a flush, workers load it once per burst).
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::mac_table::{MacKey, MacTable, MAX_MEMBERS};

/// How a switch port carries VLANs (IEEE 802.1Q).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VlanMode {
    /// Untagged member of one VLAN (`vlan = 10`; 1 by default).
    Access(u16),
    /// Tagged member of the listed VLANs (`trunk = [10, 20]`).
    Trunk(Vec<u16>),
}

/// A bridge domain: switch ports that name it share a MAC table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    pub name: String,
    /// Idle entries are removed after this long (802.1D ageing time).
    pub aging_s: u32,
    /// The MAC table's capacity; when full, new stations are not learned (their frames are flooded).
    pub max_entries: u32,
    pub statics: Vec<StaticMac>,
    /// Its routed interfaces (BVIs): none, one for the bridge, or one per VLAN.
    pub bvis: Vec<BviConfig>,
}

/// A bridge's routed interface as the switch sees it (its addresses and
/// routing settings are the port's, in the configuration's ports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BviConfig {
    /// The engine port it is (`lan`, `br0.10`).
    pub port: String,
    pub vlan: u16,
    pub mac: [u8; 6],
}

/// A static MAC table entry: never aged, moved or flushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticMac {
    pub mac: [u8; 6],
    /// The port's configuration name.
    pub port: String,
    pub vlan: u16,
}

/// A port as the switch sees it when it builds the bridges.
#[derive(Debug, Clone, Copy)]
pub struct Membership<'a> {
    /// The port's configuration name (static entries name it).
    pub name: &'a str,
    /// The bridge domain of a switch port (or of a BVI); None for a routed port.
    pub bridge: Option<&'a str>,
    pub vlans: &'a VlanMode,
    /// A bridge's routed interface (BVI) with its MAC: a member of the
    /// bridge in its VLAN (`Access`), reached through the router, not a socket.
    pub bvi: Option<[u8; 6]>,
}

/// VLAN ids 0..=4095.
const VLANS: usize = 4096;

/// How a member port carries VLANs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortVlan {
    /// Untagged member of this VLAN.
    Access(u16),
    /// Tagged member of the VLANs whose bit it has in the bridge's membership.
    Trunk,
}

/// A switch port's place in its bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchPort {
    pub bridge: u8,
    /// Index among the bridge's members (what the MAC table stores).
    pub member: u8,
    pub vlan: PortVlan,
}

/// One bridge domain.
#[derive(Debug)]
pub struct Bridge {
    pub name: String,
    /// Member index → engine port index.
    pub members: Vec<u16>,
    /// Members that send tagged (trunks), one bit per member.
    pub tagged: u32,
    /// Members that are the bridge's routed interfaces (BVIs), one bit per
    /// member: frames to them go to the router, not out of a port.
    pub bvi: u32,
    /// VLAN id → members carrying it, one bit per member.
    vlan_members: Box<[u32]>,
    pub aging_ms: u32,
    pub max_entries: u32,
    /// Static entries, re-added to every fresh table.
    pub statics: Vec<(MacKey, u8)>,
    pub table: ArcSwap<MacTable>,
}

impl Bridge {
    /// A bridge with these members (engine port index, VLAN mode, trunk VLANs).
    pub fn new(name: &str, members: &[(u16, VlanMode)], aging_ms: u32, max_entries: u32) -> Bridge {
        let mut vlan_members = vec![0u32; VLANS].into_boxed_slice();
        let mut tagged = 0;
        for (m, (_, mode)) in members.iter().enumerate().take(MAX_MEMBERS) {
            let bit = 1u32 << m;
            match mode {
                VlanMode::Access(v) => {
                    if let Some(x) = vlan_members.get_mut(usize::from(*v)) {
                        *x |= bit;
                    }
                }
                VlanMode::Trunk(list) => {
                    tagged |= bit;
                    for v in list {
                        if let Some(x) = vlan_members.get_mut(usize::from(*v)) {
                            *x |= bit;
                        }
                    }
                }
            }
        }
        Bridge {
            name: name.to_string(),
            members: members.iter().map(|(p, _)| *p).take(MAX_MEMBERS).collect(),
            tagged,
            bvi: 0,
            vlan_members,
            aging_ms,
            max_entries,
            statics: Vec::new(),
            table: ArcSwap::from_pointee(MacTable::new(max_entries, aging_ms)),
        }
    }

    /// Members carrying `vlan`.
    #[inline]
    pub fn vlan_members(&self, vlan: u16) -> u32 {
        self.vlan_members
            .get(usize::from(vlan))
            .copied()
            .unwrap_or(0)
    }

    /// The engine port of a member.
    #[inline]
    pub fn port(&self, member: u8) -> Option<u16> {
        self.members.get(usize::from(member)).copied()
    }

    /// A table with only the static entries (a flush publishes one).
    pub fn fresh_table(&self) -> MacTable {
        let t = MacTable::new(self.max_entries, self.aging_ms);
        for &(k, m) in &self.statics {
            t.insert_static(k, m);
        }
        t
    }
}

/// Every bridge and, per engine port, its switch membership.
#[derive(Debug, Default)]
pub struct Switch {
    pub bridges: Vec<Bridge>,
    /// Indexed by engine port; None for routed ports.
    pub ports: Vec<Option<SwitchPort>>,
}

impl Switch {
    /// Builds validated bridge domains over the engine's ports (`ports[i]`
    /// is engine port `i`).
    pub fn build(bridges: &[BridgeConfig], ports: &[Membership<'_>]) -> Switch {
        let mut sw = Switch {
            bridges: Vec::new(),
            ports: vec![None; ports.len()],
        };
        for (bi, b) in bridges.iter().enumerate() {
            let members: Vec<(u16, VlanMode)> = ports
                .iter()
                .enumerate()
                .filter(|(_, p)| p.bridge == Some(b.name.as_str()))
                .map(|(i, p)| (i as u16, p.vlans.clone()))
                .collect();
            let mut bridge = Bridge::new(
                &b.name,
                &members,
                b.aging_s.saturating_mul(1000),
                b.max_entries,
            );
            for (m, (port, mode)) in members.iter().enumerate().take(MAX_MEMBERS) {
                let vlan = match mode {
                    VlanMode::Access(v) => PortVlan::Access(*v),
                    VlanMode::Trunk(_) => PortVlan::Trunk,
                };
                if let Some(slot) = sw.ports.get_mut(usize::from(*port)) {
                    *slot = Some(SwitchPort {
                        bridge: bi as u8,
                        member: m as u8,
                        vlan,
                    });
                }
            }
            for s in &b.statics {
                let member = members.iter().position(|(p, _)| {
                    ports.get(usize::from(*p)).is_some_and(|c| c.name == s.port)
                });
                if let Some(m) = member {
                    bridge.statics.push((MacKey::new(s.vlan, s.mac), m as u8));
                }
            }
            // A BVI's MAC is a static entry of its VLAN: frames to it go to its member.
            for (m, (port, mode)) in members.iter().enumerate().take(MAX_MEMBERS) {
                let p = ports.get(usize::from(*port));
                if let (Some(mac), VlanMode::Access(v)) = (p.and_then(|p| p.bvi), mode) {
                    bridge.bvi |= 1 << m;
                    bridge.statics.push((MacKey::new(*v, mac), m as u8));
                }
            }
            bridge.table.store(Arc::new(bridge.fresh_table()));
            sw.bridges.push(bridge);
        }
        sw
    }

    #[inline]
    pub fn port(&self, port: u16) -> Option<(SwitchPort, &Bridge)> {
        let sp = (*self.ports.get(usize::from(port))?)?;
        Some((sp, self.bridges.get(usize::from(sp.bridge))?))
    }
}
