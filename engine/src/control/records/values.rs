//! The value types records share and their JSON form: endpoints, MAC
//! addresses, prefixes, and the engine's enums as lower-case names.
//!
//! Addresses are `std::net` types, which serde writes in their canonical
//! text (IPv4 dotted, IPv6 as RFC 5952, IPv4 not mapped), so a record holds
//! no address as a string it formatted itself.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An address and a port (for ICMP flows, the query identifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

impl From<crate::conntrack::Ep> for Endpoint {
    fn from(e: crate::conntrack::Ep) -> Endpoint {
        Endpoint {
            addr: IpAddr::V4(e.addr.into()),
            port: e.port,
        }
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(s: SocketAddr) -> Endpoint {
        Endpoint {
            addr: s.ip(),
            port: s.port(),
        }
    }
}

/// As `SocketAddr` shows it: `198.18.1.2:40000`, `[2001:2::1]:80`.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// A value written as its `Display` text and read back with `FromStr`
/// (prefixes: `198.18.0.0/15`).
pub mod text {
    use super::*;

    pub fn serialize<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: std::str::FromStr,
        T::Err: fmt::Display,
        D: Deserializer<'de>,
    {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A MAC address: lower-case hex, colon-separated (`02:00:5e:10:00:01`).
pub mod mac {
    use super::*;
    use crate::wire::Mac;

    pub fn format(m: &Mac) -> String {
        format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }

    pub fn parse(s: &str) -> Option<Mac> {
        let mut m = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut m {
            let p = parts.next()?;
            if p.len() != 2 {
                return None;
            }
            *b = u8::from_str_radix(p, 16).ok()?;
        }
        parts.next().is_none().then_some(m)
    }

    pub fn serialize<S: Serializer>(m: &Mac, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(m))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a MAC address")))
    }

    /// The same for an optional MAC (`null` when there is none).
    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(m: &Option<Mac>, s: S) -> Result<S::Ok, S::Error> {
            match m {
                Some(m) => s.serialize_some(&format(m)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Mac>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => parse(&s)
                    .map(Some)
                    .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a MAC address"))),
            }
        }
    }
}

/// An enum of the engine written as one of a fixed list of lower-case names.
/// `names!(module, Type, [Variant => "name", ...])` makes `module::ALL`,
/// `module::name`, and the serde functions for `#[serde(with = "module")]`.
/// `name` is an exhaustive match: a new variant does not compile until it has
/// a name here, so a record never shows a variant the schema does not list.
macro_rules! names {
    ($module:ident, $ty:ty, [$($variant:path => $name:literal),+ $(,)?]) => {
        pub mod $module {
            use super::*;

            /// Every value, in the order the docs list them.
            pub const ALL: &[($ty, &str)] = &[$(($variant, $name)),+];

            pub fn name(v: &$ty) -> &'static str {
                match v {
                    $($variant => $name),+
                }
            }

            pub fn serialize<S: Serializer>(v: &$ty, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(name(v))
            }

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let s = String::deserialize(d)?;
                ALL.iter().find(|(_, n)| *n == s).map(|(v, _)| *v).ok_or_else(|| {
                    serde::de::Error::custom(format!("`{s}` is not one of {:?}", ALL.iter().map(|(_, n)| *n).collect::<Vec<_>>()))
                })
            }
        }
    };
}

names!(neigh_state, crate::neighbor::NeighState, [
    crate::neighbor::NeighState::Incomplete => "incomplete",
    crate::neighbor::NeighState::Reachable => "reachable",
    crate::neighbor::NeighState::Stale => "stale",
    crate::neighbor::NeighState::Failed => "failed",
    crate::neighbor::NeighState::Permanent => "permanent",
]);

// RFC 9293's names, lower case.
names!(tcp_state, crate::tcp::tcb::State, [
    crate::tcp::tcb::State::SynSent => "syn-sent",
    crate::tcp::tcb::State::SynReceived => "syn-received",
    crate::tcp::tcb::State::Established => "established",
    crate::tcp::tcb::State::FinWait1 => "fin-wait-1",
    crate::tcp::tcb::State::FinWait2 => "fin-wait-2",
    crate::tcp::tcb::State::CloseWait => "close-wait",
    crate::tcp::tcb::State::Closing => "closing",
    crate::tcp::tcb::State::LastAck => "last-ack",
    crate::tcp::tcb::State::TimeWait => "time-wait",
    crate::tcp::tcb::State::Closed => "closed",
]);

// The filter's words (`ctl filter add ... reject with tcp reset`).
names!(action, crate::filter::rule::Action, [
    crate::filter::rule::Action::Accept => "accept",
    crate::filter::rule::Action::Drop => "drop",
    crate::filter::rule::Action::RejectIcmp => "reject-icmp",
    crate::filter::rule::Action::RejectTcpReset => "reject-tcp-reset",
]);

// As `[[lb]] scheduler` is written.
names!(scheduler, crate::lb::Scheduler, [
    crate::lb::Scheduler::RoundRobin => "round-robin",
    crate::lb::Scheduler::Weighted => "weighted",
    crate::lb::Scheduler::Random => "random",
    crate::lb::Scheduler::Maglev => "maglev",
]);

// As `[[lb]] mode` is written.
names!(lb_mode, crate::lb::Mode, [
    crate::lb::Mode::FullNat => "fullnat",
    crate::lb::Mode::Dnat => "dnat",
]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_and_endpoints_in_canonical_form() {
        assert_eq!(
            mac::format(&[0x02, 0xAB, 0, 0x5e, 0x10, 0xff]),
            "02:ab:00:5e:10:ff"
        );
        assert_eq!(
            mac::parse("02:ab:00:5e:10:ff"),
            Some([0x02, 0xab, 0, 0x5e, 0x10, 0xff])
        );
        for bad in [
            "02:ab:00:5e:10",
            "02:ab:00:5e:10:ff:00",
            "2:ab:00:5e:10:ff",
            "zz:ab:00:5e:10:ff",
            "",
        ] {
            assert_eq!(mac::parse(bad), None, "{bad}");
        }
        let e = Endpoint::from(crate::conntrack::Ep::new(0xc612_0102, 40000));
        assert_eq!(e.to_string(), "198.18.1.2:40000");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"addr":"198.18.1.2","port":40000}"#
        );
        // RFC 5952: the longest run of zeros compressed, lower case.
        let e = Endpoint::from("[2001:2:0:0:0:0:0:1]:80".parse::<SocketAddr>().unwrap());
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"addr":"2001:2::1","port":80}"#
        );
        assert_eq!(e.to_string(), "[2001:2::1]:80");
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct S {
            #[serde(with = "tcp_state")]
            s: crate::tcp::tcb::State,
        }
        for (v, n) in tcp_state::ALL {
            let json = serde_json::to_string(&S { s: *v }).unwrap();
            assert_eq!(json, format!(r#"{{"s":"{n}"}}"#));
            assert_eq!(serde_json::from_str::<S>(&json).unwrap(), S { s: *v });
        }
        assert!(serde_json::from_str::<S>(r#"{"s":"Established"}"#).is_err());
        // Every neighbor state has its metric label's name.
        for (v, n) in neigh_state::ALL {
            assert_eq!(v.name(), *n);
        }
        assert_eq!(
            neigh_state::ALL.len(),
            crate::neighbor::NeighState::ALL.len()
        );
    }
}
