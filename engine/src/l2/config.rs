//! `[[bridge]]`: bridge domains as written and validated.

use std::ops::Range;

use super::bridge::{BridgeConfig, BviConfig, Membership, StaticMac, VlanMode};
use crate::context::tables::RpFilter;
use crate::validate::{Checker, Spanned};
use crate::wire::parse_mac;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBridge {
    pub name: Spanned<String>,
    #[serde(default = "default_aging_s")]
    pub aging_s: Spanned<u64>,
    #[serde(default = "default_max_entries")]
    pub max_entries: Spanned<u64>,
    /// `MAC port NAME [vlan N]`.
    #[serde(default, rename = "static")]
    pub statics: Vec<Spanned<String>>,
    /// The bridge's routed interface (BVI): its addresses make the bridge a
    /// routed port of the engine, named after the bridge, in VLAN `vlan`.
    #[serde(default)]
    pub addresses: Vec<Spanned<String>>,
    /// The BVI's MAC (default: derived from its name, locally administered).
    #[serde(default)]
    pub mac: Option<Spanned<String>>,
    /// The BVI's side of the NAT, as a router port's (`inside`, `outside`).
    #[serde(default)]
    pub nat: Option<Spanned<String>>,
    #[serde(default)]
    pub mtu: Option<Spanned<u16>>,
    #[serde(default)]
    pub rp_filter: Option<RpFilter>,
    /// `vlan = N`: the VLAN of the bridge-level BVI (default 1); or
    /// `[[bridge.vlan]]` tables: one BVI per VLAN, named `BRIDGE.ID`.
    #[serde(default)]
    pub vlan: Option<Spanned<toml::Value>>,
}

/// One `[[bridge.vlan]]` table: a VLAN's routed interface.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBridgeVlan {
    id: u16,
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    mac: Option<String>,
    #[serde(default)]
    nat: Option<String>,
    #[serde(default)]
    mtu: Option<u16>,
    #[serde(default)]
    rp_filter: Option<RpFilter>,
}

/// A BVI's routed-port settings as written, for the configuration's port
/// validation (addresses, NAT side, MTU are checked as a router port's).
#[derive(Debug)]
pub struct RawBvi {
    /// The port it becomes (`lan`, `br0.10`).
    pub port: String,
    pub bridge: String,
    pub vlan: u16,
    pub mac: [u8; 6],
    /// Where errors about it point.
    pub span: Range<usize>,
    pub addresses: Vec<Spanned<String>>,
    pub nat: Option<Spanned<String>>,
    pub mtu: Option<Spanned<u16>>,
    pub rp_filter: RpFilter,
}

/// A stable, locally administered unicast MAC for a BVI without one: `02:70:6b`
/// ("pk") and three bytes of an FNV-1a hash of its port name.
pub fn derived_mac(port: &str) -> [u8; 6] {
    let h = port.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let b = h.to_be_bytes();
    [0x02, 0x70, 0x6b, b[5] ^ b[0], b[6] ^ b[1], b[7] ^ b[2]]
}

/// A written BVI MAC: a unicast, non-zero station address.
fn bvi_mac(text: &str) -> Result<[u8; 6], String> {
    let m = parse_mac(text).ok_or_else(|| format!("`{text}` is not a MAC address"))?;
    if m[0] & 1 == 1 || m == [0; 6] {
        return Err(format!("{text} is not a unicast station address"));
    }
    Ok(m)
}

/// The routed interfaces a bridge asks for (`addresses` at the bridge,
/// `[[bridge.vlan]]` tables), checked for what the bridge decides: their
/// VLANs (valid, carried by a member port, one interface each), their MACs.
fn bvis(
    ck: &mut Checker<'_>,
    b: &mut RawBridge,
    name: &str,
    ports: &[Membership<'_>],
) -> Vec<RawBvi> {
    let mut out: Vec<RawBvi> = Vec::new();
    let span = b.name.span();
    let (level_vlan, tables) = match b.vlan.take() {
        None => (None, Vec::new()),
        Some(v) => {
            let vspan = v.span();
            match v.into_inner() {
                toml::Value::Integer(n) => match u16::try_from(n) {
                    Ok(n) => (Some((n, vspan)), Vec::new()),
                    Err(_) => {
                        ck.at(
                            vspan,
                            format!("bridge `{name}`: VLAN {n} is not between 1 and 4094"),
                        );
                        (None, Vec::new())
                    }
                },
                toml::Value::Array(a) => {
                    let mut t = Vec::new();
                    for v in a {
                        match RawBridgeVlan::deserialize(v) {
                            Ok(r) => t.push((r, vspan.clone())),
                            Err(e) => ck.at(
                                vspan.clone(),
                                format!("bridge `{name}`: [[bridge.vlan]]: {}", e.message()),
                            ),
                        }
                    }
                    (None, t)
                }
                _ => {
                    ck.at(vspan, format!("bridge `{name}`: `vlan` is the VLAN of its interface (a number) or [[bridge.vlan]] tables"));
                    (None, Vec::new())
                }
            }
        }
    };
    let carried = |v: u16| {
        ports
            .iter()
            .filter(|p| p.bridge == Some(name) && p.bvi.is_none())
            .any(|p| match p.vlans {
                VlanMode::Access(a) => *a == v,
                VlanMode::Trunk(l) => l.contains(&v),
            })
    };
    let check_vlan = |ck: &mut Checker<'_>, v: u16, at: Range<usize>, out: &[RawBvi]| {
        if !(1..=4094).contains(&v) {
            ck.at(
                at,
                format!("bridge `{name}`: VLAN {v} is not between 1 and 4094"),
            );
        } else if !carried(v) {
            ck.at(at, format!("bridge `{name}`: no port of the bridge carries VLAN {v}, so its interface there would reach no host"));
        } else if out.iter().any(|o| o.vlan == v) {
            ck.at(at, format!("bridge `{name}`: VLAN {v} has two interfaces"));
        }
    };
    let mac_of = |ck: &mut Checker<'_>, m: Option<(String, Range<usize>)>, port: &str| match m {
        None => derived_mac(port),
        Some((t, at)) => bvi_mac(&t).unwrap_or_else(|e| {
            ck.at(at, format!("bridge `{name}`: mac {e}"));
            derived_mac(port)
        }),
    };
    if !b.addresses.is_empty() {
        let (vlan, at) = level_vlan.clone().unwrap_or((1, span.clone()));
        check_vlan(ck, vlan, at, &out);
        let mac = mac_of(
            ck,
            b.mac.take().map(|m| (m.get_ref().clone(), m.span())),
            name,
        );
        out.push(RawBvi {
            port: name.to_string(),
            bridge: name.to_string(),
            vlan,
            mac,
            span: span.clone(),
            addresses: std::mem::take(&mut b.addresses),
            nat: b.nat.take(),
            mtu: b.mtu.take(),
            rp_filter: b.rp_filter.unwrap_or_default(),
        });
    } else {
        let stray = [
            level_vlan.map(|(_, s)| s),
            b.mac.as_ref().map(Spanned::span),
            b.nat.as_ref().map(Spanned::span),
            b.mtu.as_ref().map(Spanned::span),
        ];
        if let Some(at) = stray.into_iter().flatten().next() {
            ck.at(at, format!("bridge `{name}` has no `addresses`: `vlan`, `mac`, `nat` and `mtu` are its routed interface's"));
        }
    }
    for (t, at) in tables {
        let port = format!("{name}.{}", t.id);
        check_vlan(ck, t.id, at.clone(), &out);
        if t.addresses.is_empty() {
            ck.at(
                at.clone(),
                format!(
                    "bridge `{name}`: [[bridge.vlan]] id {} has no addresses",
                    t.id
                ),
            );
        }
        let mac = mac_of(ck, t.mac.map(|m| (m, at.clone())), &port);
        out.push(RawBvi {
            port,
            bridge: name.to_string(),
            vlan: t.id,
            mac,
            span: at.clone(),
            addresses: t
                .addresses
                .into_iter()
                .map(|a| Spanned::new(at.clone(), a))
                .collect(),
            nat: t.nat.map(|n| Spanned::new(at.clone(), n)),
            mtu: t.mtu.map(|m| Spanned::new(at.clone(), m)),
            rp_filter: t.rp_filter.unwrap_or_default(),
        });
    }
    out
}

fn default_aging_s() -> Spanned<u64> {
    Spanned::new(0..0, 300)
}

fn default_max_entries() -> Spanned<u64> {
    Spanned::new(0..0, 65536)
}

/// A static entry: `MAC port NAME [vlan N]`; the VLAN defaults to the
/// access port's own.
fn parse_static(text: &str, bridge: &str, ports: &[Membership<'_>]) -> Result<StaticMac, String> {
    let w: Vec<&str> = text.split_whitespace().collect();
    let (mac, port, vlan) = match w.as_slice() {
        [mac, "port", port] => (*mac, *port, None),
        [mac, "port", port, "vlan", v] => (*mac, *port, Some(*v)),
        _ => {
            return Err(format!(
                "static entry `{text}` is not `MAC port NAME [vlan N]`"
            ))
        }
    };
    let m = parse_mac(mac)
        .ok_or_else(|| format!("static entry `{text}`: `{mac}` is not a MAC address"))?;
    if m[0] & 1 == 1 || m == [0; 6] {
        return Err(format!(
            "static entry `{text}`: {mac} is not a unicast station address"
        ));
    }
    let p = ports
        .iter()
        .find(|p| p.name == port)
        .ok_or_else(|| format!("static entry `{text}`: no port `{port}`"))?;
    if p.bridge != Some(bridge) {
        return Err(format!(
            "static entry `{text}`: port `{port}` is not in bridge `{bridge}`"
        ));
    }
    let vlan = match (vlan, p.vlans) {
        (Some(v), _) => v
            .parse::<u16>()
            .map_err(|_| format!("static entry `{text}`: `{v}` is not a VLAN"))?,
        (None, VlanMode::Access(v)) => *v,
        (None, VlanMode::Trunk(_)) => {
            return Err(format!(
                "static entry `{text}`: port `{port}` is a trunk; say which `vlan`"
            ))
        }
    };
    let carries = match p.vlans {
        VlanMode::Access(v) => *v == vlan,
        VlanMode::Trunk(l) => l.contains(&vlan),
    };
    if !carries {
        return Err(format!(
            "static entry `{text}`: port `{port}` does not carry VLAN {vlan}"
        ));
    }
    Ok(StaticMac {
        mac: m,
        port: port.to_string(),
        vlan,
    })
}

/// Validates the bridge domains; `ports` are the engine's ports with the
/// bridge each names (switch ports only).
pub fn validate(
    ck: &mut Checker<'_>,
    raw: Vec<RawBridge>,
    ports: &[Membership<'_>],
) -> (Vec<BridgeConfig>, Vec<RawBvi>) {
    let mut out: Vec<BridgeConfig> = Vec::new();
    let mut routed: Vec<RawBvi> = Vec::new();
    for mut b in raw {
        let name = b.name.get_ref().clone();
        if name.is_empty()
            || name.len() > 15
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            ck.at(
                b.name.span(),
                format!("bridge name `{name}` must be 1-15 characters of [A-Za-z0-9_-]"),
            );
        }
        if out.iter().any(|o| o.name == name) {
            ck.at(b.name.span(), format!("bridge name `{name}` is used twice"));
        }
        let bv = bvis(ck, &mut b, &name, ports);
        let members = ports
            .iter()
            .filter(|p| p.bridge == Some(name.as_str()))
            .count()
            + bv.len();
        if members > crate::mac_table::MAX_MEMBERS {
            ck.at(
                b.name.span(),
                format!(
                    "bridge `{name}` has {members} ports (interfaces included); at most {} are supported",
                    crate::mac_table::MAX_MEMBERS
                ),
            );
        }
        let aging = *b.aging_s.get_ref();
        if !(1..=1_000_000).contains(&aging) {
            ck.at(
                b.aging_s.span(),
                format!("aging_s {aging} is not between 1 and 1000000"),
            );
        }
        let max = *b.max_entries.get_ref();
        if !(1..=1 << 24).contains(&max) {
            ck.at(
                b.max_entries.span(),
                format!("max_entries {max} is not between 1 and 16777216"),
            );
        }
        let mut statics: Vec<StaticMac> = Vec::new();
        for s in &b.statics {
            match parse_static(s.get_ref(), &name, ports) {
                Ok(e) => {
                    if statics.iter().any(|o| o.mac == e.mac && o.vlan == e.vlan) {
                        ck.at(
                            s.span(),
                            format!("static entry `{}` repeats a MAC and VLAN", s.get_ref()),
                        );
                    }
                    statics.push(e);
                }
                Err(msg) => ck.at(s.span(), msg),
            }
        }
        if statics.len() as u64 > max {
            ck.at(
                b.max_entries.span(),
                format!(
                    "bridge `{name}`: {} static entries do not fit in max_entries {max}",
                    statics.len()
                ),
            );
        }
        if (statics.len() + bv.len()) as u64 > max {
            ck.at(
                b.max_entries.span(),
                format!("bridge `{name}`: its interfaces' MACs do not fit in max_entries {max}"),
            );
        }
        out.push(BridgeConfig {
            name,
            aging_s: aging.min(1_000_000) as u32,
            max_entries: max.min(1 << 24) as u32,
            statics,
            bvis: bv
                .iter()
                .map(|r| BviConfig {
                    port: r.port.clone(),
                    vlan: r.vlan,
                    mac: r.mac,
                })
                .collect(),
        });
        routed.extend(bv);
    }
    (out, routed)
}
