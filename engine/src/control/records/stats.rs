//! `ctl stats`: one record per counter, its labels read out of the scope the
//! control thread files it under (`port lan`, `worker 0`, `drop ip4-forward`).
//!
//! The text of `ctl stats` is a view computed from the counters (sums, rates,
//! a table per port); these records are the counters themselves.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::control::ctl::Counter;

/// One counter or gauge. Which labels are set depends on `group`; the others are null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatRecord {
    /// What is counted: `port`, `xsk`, `xdp`, `worker`, `stage`, `drop`,
    /// `neighbor`, `nat`, `tcp`, `ctl` (an unknown scope, from a newer
    /// engine: the scope as it is, labels null).
    pub group: Cow<'static, str>,
    pub name: String,
    pub value: u64,
    pub port: Option<String>,
    pub worker: Option<u16>,
    pub stage: Option<String>,
    pub reason: Option<String>,
}

/// When the counters were read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSummary {
    /// The engine's monotonic clock at the reading, ns since it started:
    /// rates are differences of two readings over the difference of this.
    pub uptime_ns: u64,
    /// The wall clock at the reading, ms since the Unix epoch.
    pub time_unix_ms: u64,
}

impl StatRecord {
    /// The record of a `ctl stats` row: the scope's words become labels.
    pub fn from_counter(c: &Counter) -> StatRecord {
        let mut r = StatRecord {
            group: Cow::Owned(c.scope.clone()),
            name: c.name.clone(),
            value: c.value,
            port: None,
            worker: None,
            stage: None,
            reason: None,
        };
        let (head, rest) = c.scope.split_once(' ').unwrap_or((c.scope.as_str(), ""));
        let worker = |w: &str| w.parse::<u16>().ok();
        match (head, rest) {
            ("port" | "xsk" | "xdp", p) if !p.is_empty() => {
                r.group = Cow::Borrowed(group_name(head));
                r.port = Some(p.to_string());
            }
            ("worker", w) if worker(w).is_some() => {
                r.worker = worker(w);
                if let Some(st) = c.name.strip_prefix("stage ") {
                    // Packets into a stage: `stage ip4-input` of `worker 0`.
                    r.group = Cow::Borrowed("stage");
                    r.stage = Some(st.to_string());
                    r.name = "packets".to_string();
                } else {
                    r.group = Cow::Borrowed("worker");
                }
            }
            ("nat" | "conntrack" | "tcp", w)
                if w.strip_prefix("worker ").and_then(worker).is_some() =>
            {
                r.group = Cow::Borrowed(group_name(head));
                r.worker = w.strip_prefix("worker ").and_then(worker);
            }
            ("drop", st) if !st.is_empty() => {
                // Packets dropped for a reason, summed over the workers.
                r.group = Cow::Borrowed("drop");
                r.stage = Some(st.to_string());
                r.reason = Some(c.name.clone());
                r.name = "packets".to_string();
            }
            ("neighbor", "") => r.group = Cow::Borrowed("neighbor"),
            ("ctl", "front") => r.group = Cow::Borrowed("ctl"),
            _ => {}
        }
        r
    }

    /// Whether the scope was one this version knows.
    pub fn is_known(&self) -> bool {
        GROUPS.contains(&self.group.as_ref())
    }
}

/// Every group this version makes.
pub const GROUPS: &[&str] = &[
    "port",
    "xsk",
    "xdp",
    "worker",
    "stage",
    "drop",
    "neighbor",
    "nat",
    "conntrack",
    "tcp",
    "ctl",
];

fn group_name(head: &str) -> &'static str {
    GROUPS.iter().find(|g| **g == head).copied().unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(scope: &str, name: &str) -> StatRecord {
        StatRecord::from_counter(&Counter {
            scope: scope.into(),
            name: name.into(),
            value: 7,
        })
    }

    #[test]
    fn scopes_become_labels() {
        let r = rec("port lan", "rx_packets");
        assert_eq!(
            (
                r.group.as_ref(),
                r.port.as_deref(),
                r.name.as_str(),
                r.value
            ),
            ("port", Some("lan"), "rx_packets", 7)
        );
        let r = rec("xsk wan", "rx_ring_full");
        assert_eq!((r.group.as_ref(), r.port.as_deref()), ("xsk", Some("wan")));
        let r = rec("xdp lan", "to_engine");
        assert_eq!(
            (r.group.as_ref(), r.port.as_deref(), r.name.as_str()),
            ("xdp", Some("lan"), "to_engine")
        );
        let r = rec("worker 1", "loops");
        assert_eq!(
            (r.group.as_ref(), r.worker, r.stage.as_deref()),
            ("worker", Some(1), None)
        );
        let r = rec("worker 0", "stage ip4-input");
        assert_eq!(
            (
                r.group.as_ref(),
                r.worker,
                r.stage.as_deref(),
                r.name.as_str()
            ),
            ("stage", Some(0), Some("ip4-input"), "packets")
        );
        let r = rec("drop ip4-forward", "ip4-no-route");
        assert_eq!(
            (
                r.group.as_ref(),
                r.worker,
                r.stage.as_deref(),
                r.reason.as_deref(),
                r.name.as_str()
            ),
            (
                "drop",
                None,
                Some("ip4-forward"),
                Some("ip4-no-route"),
                "packets"
            )
        );
        let r = rec("nat worker 3", "sessions");
        assert_eq!((r.group.as_ref(), r.worker), ("nat", Some(3)));
        let r = rec("tcp worker 0", "established");
        assert_eq!((r.group.as_ref(), r.worker), ("tcp", Some(0)));
        assert_eq!(
            rec("neighbor", "unsolicited_answers_ignored").group,
            "neighbor"
        );
        assert_eq!(rec("ctl front", "accepted").group, "ctl");
        // A scope this version does not know stays as it is, with no labels.
        let r = rec("shiny new", "thing");
        assert_eq!(
            (r.group.as_ref(), r.port.as_deref(), r.is_known()),
            ("shiny new", None, false)
        );
        assert!(!rec("worker x", "loops").is_known());
    }

    #[test]
    fn records_round_trip_with_null_labels() {
        let r = rec("port lan", "rx_packets");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"group":"port","name":"rx_packets","value":7,"port":"lan","worker":null,"stage":null,"reason":null}"#
        );
        assert_eq!(serde_json::from_str::<StatRecord>(&json).unwrap(), r);
    }
}
