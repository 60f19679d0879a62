//! `ctl mac show`: one record per entry of every bridge domain's MAC table.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::wire::Mac;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacRecord {
    pub bridge: String,
    #[serde(with = "super::values::mac")]
    pub mac: Mac,
    pub vlan: u16,
    /// The port the address was learned on (or configured for).
    pub port: String,
    /// Configured: it never ages.
    #[serde(rename = "static")]
    pub is_static: bool,
    /// Since the address was last seen; null for a static entry.
    pub age_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacSummary {
    pub entries: usize,
    /// Bridge domains configured (0: the engine switches nothing).
    pub bridges: usize,
}

/// `br0 02:00:00:00:00:01 vlan 10 port p1 age 1.250s` (or `static`).
impl fmt::Display for MacRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} vlan {} port {} ",
            self.bridge,
            super::values::mac::format(&self.mac),
            self.vlan,
            self.port
        )?;
        match self.age_ms {
            Some(a) if !self.is_static => write!(f, "age {}.{:03}s", a / 1000, a % 1000),
            _ => f.write_str("static"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_as_before_and_json_round_trip() {
        let r = MacRecord {
            bridge: "br0".into(),
            mac: [2, 0, 0, 0, 0, 0x1f],
            vlan: 10,
            port: "p1".into(),
            is_static: false,
            age_ms: Some(61_250),
        };
        assert_eq!(
            r.to_string(),
            "br0 02:00:00:00:00:1f vlan 10 port p1 age 61.250s"
        );
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"bridge":"br0","mac":"02:00:00:00:00:1f","vlan":10,"port":"p1","static":false,"age_ms":61250}"#
        );
        assert_eq!(serde_json::from_str::<MacRecord>(&json).unwrap(), r);
        let s = MacRecord {
            is_static: true,
            age_ms: None,
            ..r
        };
        assert_eq!(
            s.to_string(),
            "br0 02:00:00:00:00:1f vlan 10 port p1 static"
        );
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.ends_with(r#""static":true,"age_ms":null}"#), "{json}");
        assert_eq!(serde_json::from_str::<MacRecord>(&json).unwrap(), s);
    }
}
