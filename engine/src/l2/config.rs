//! `[[bridge]]`: bridge domains as written and validated.

use super::bridge::{BridgeConfig, Membership, StaticMac, VlanMode};
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
) -> Vec<BridgeConfig> {
    let mut out: Vec<BridgeConfig> = Vec::new();
    for b in raw {
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
        let members = ports
            .iter()
            .filter(|p| p.bridge == Some(name.as_str()))
            .count();
        if members > crate::mac_table::MAX_MEMBERS {
            ck.at(
                b.name.span(),
                format!(
                    "bridge `{name}` has {members} ports; at most {} are supported",
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
        out.push(BridgeConfig {
            name,
            aging_s: aging.min(1_000_000) as u32,
            max_entries: max.min(1 << 24) as u32,
            statics,
        });
    }
    out
}
