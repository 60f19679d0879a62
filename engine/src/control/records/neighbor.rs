//! `ctl arp show`: one record per neighbor (ARP and ND) of the control
//! thread's table.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::neighbor::NeighState;
use crate::wire::Mac;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighborRecord {
    pub address: IpAddr,
    /// The port it was seen on.
    pub port: String,
    /// Null while unresolved.
    #[serde(with = "super::values::mac::option")]
    pub mac: Option<Mac>,
    #[serde(with = "super::values::neigh_state")]
    pub state: NeighState,
    /// Since the entry entered its state or was last confirmed.
    pub age_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighborSummary {
    pub neighbors: usize,
}

/// `198.19.1.2 dev wan lladdr 02:00:00:00:00:02 REACHABLE age 1.250s`.
impl fmt::Display for NeighborRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} dev {}", self.address, self.port)?;
        if let Some(m) = &self.mac {
            write!(f, " lladdr {}", super::values::mac::format(m))?;
        }
        write!(
            f,
            " {} age {}.{:03}s",
            self.state,
            self.age_ms / 1000,
            self.age_ms % 1000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_as_before_and_json_round_trip() {
        let r = NeighborRecord {
            address: "198.19.1.2".parse().unwrap(),
            port: "wan".into(),
            mac: Some([0x02, 0, 0x5e, 0, 0, 0xab]),
            state: NeighState::Reachable,
            age_ms: 1250,
        };
        assert_eq!(
            r.to_string(),
            "198.19.1.2 dev wan lladdr 02:00:5e:00:00:ab REACHABLE age 1.250s"
        );
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"address":"198.19.1.2","port":"wan","mac":"02:00:5e:00:00:ab","state":"reachable","age_ms":1250}"#
        );
        assert_eq!(serde_json::from_str::<NeighborRecord>(&json).unwrap(), r);
        let r = NeighborRecord {
            address: "2001:2:0:2::2".parse().unwrap(),
            mac: None,
            state: NeighState::Incomplete,
            age_ms: 5,
            ..r
        };
        assert_eq!(r.to_string(), "2001:2:0:2::2 dev wan INCOMPLETE age 0.005s");
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.contains(r#""mac":null,"state":"incomplete""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<NeighborRecord>(&json).unwrap(), r);
    }
}
