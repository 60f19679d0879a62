//! `ctl trace`: one record per traced packet the control thread keeps (the
//! last 1,024), oldest first.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::context::events::{TraceEnd, TraceRecord};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracedPacket {
    pub worker: u16,
    /// The port it came in on.
    pub port: String,
    pub frame_bytes: u32,
    /// The worker's clock when it finished, ns since the worker started.
    pub time_ns: u64,
    /// `tx` (queued on `out_port`), `drop` (for `drop_reason`), `wait-neighbor`
    /// (parked until ARP/ND answers on `out_port`) or `local` (answered or
    /// consumed by the engine).
    pub outcome: Cow<'static, str>,
    pub out_port: Option<String>,
    /// The stage that dropped it and why; null unless dropped.
    pub drop_stage: Option<Cow<'static, str>>,
    pub drop_reason: Option<Cow<'static, str>>,
    /// Its first bytes (up to 64), from the Ethernet header on, in hex.
    pub head_hex: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceSummary {
    /// Whether the workers trace now.
    pub enabled: bool,
    pub packets: usize,
}

impl TracedPacket {
    /// `port_name` names port indices.
    pub fn new(t: &TraceRecord, port_name: impl Fn(usize) -> String) -> TracedPacket {
        let (outcome, out_port, drop) = match t.end {
            TraceEnd::Tx(p) => ("tx", Some(port_name(usize::from(p))), None),
            TraceEnd::Drop(d) => ("drop", None, Some(d)),
            TraceEnd::Parked(p) => ("wait-neighbor", Some(port_name(usize::from(p))), None),
            TraceEnd::Local => ("local", None, None),
        };
        let n = usize::try_from(t.len)
            .unwrap_or(usize::MAX)
            .min(t.head.len());
        let head_hex = t.head[..n].iter().map(|b| format!("{b:02x}")).collect();
        TracedPacket {
            worker: t.worker,
            port: port_name(usize::from(t.port)),
            frame_bytes: t.len,
            time_ns: t.time_ns,
            outcome: Cow::Borrowed(outcome),
            out_port,
            drop_stage: drop.map(|d| Cow::Borrowed(d.stage())),
            drop_reason: drop.map(|d| Cow::Borrowed(d.name())),
            head_hex,
        }
    }
}

/// `w0 lan len 98 -> tx wan`, `-> drop ip4-no-route`, `-> wait-neighbor wan`, `-> local`.
impl fmt::Display for TracedPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "w{} {} len {} -> {}",
            self.worker, self.port, self.frame_bytes, self.outcome
        )?;
        if let Some(p) = &self.out_port {
            write!(f, " {p}")?;
        }
        if let Some(r) = &self.drop_reason {
            write!(f, " {r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::counters::Drop;

    #[test]
    fn text_as_before_and_json_round_trip() {
        let names = |i: usize| {
            ["lan", "wan"]
                .get(i)
                .map_or_else(|| format!("#{i}"), |n| n.to_string())
        };
        let mut head = [0u8; 64];
        head[..4].copy_from_slice(&[0x02, 0, 0x5e, 0xff]);
        let t = |end, len| TraceRecord {
            worker: 1,
            port: 0,
            len,
            time_ns: 5_000_000,
            end,
            head,
        };
        for (end, len, want) in [
            (TraceEnd::Tx(1), 98, "w1 lan len 98 -> tx wan"),
            (
                TraceEnd::Drop(Drop::Ip4NoRoute),
                60,
                "w1 lan len 60 -> drop ip4-no-route",
            ),
            (TraceEnd::Parked(7), 60, "w1 lan len 60 -> wait-neighbor #7"),
            (TraceEnd::Local, 3, "w1 lan len 3 -> local"),
        ] {
            let r = TracedPacket::new(&t(end, len), names);
            assert_eq!(r.to_string(), want);
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<TracedPacket>(&json).unwrap(), r);
        }
        let r = TracedPacket::new(&t(TraceEnd::Drop(Drop::Ip4NoRoute), 3), names);
        assert_eq!(
            (
                r.drop_stage.as_deref(),
                r.drop_reason.as_deref(),
                r.head_hex.as_str()
            ),
            (Some("ip4-forward"), Some("ip4-no-route"), "02005e")
        );
        assert_eq!(
            TracedPacket::new(&t(TraceEnd::Local, 1500), names)
                .head_hex
                .len(),
            128
        );
    }
}
