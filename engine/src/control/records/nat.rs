//! `ctl nat show`: one record per NAT session, built on the control thread
//! from the rows the workers' dumps copy ([`SessionInfo`]).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::values::Endpoint;
use crate::conntrack::table::{proto_name, SessionInfo};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatSessionRecord {
    /// `tcp`, `udp` or `icmp`.
    pub proto: Cow<'static, str>,
    /// The inside host's address and port (ICMP: query identifier).
    pub inside: Endpoint,
    /// The translated address and port the outside sees.
    pub outside: Endpoint,
    /// The outside peer.
    pub remote: Endpoint,
    /// TCP only (`syn-seen`, `established`, `fin-seen`, `closing`, `reset`); null otherwise.
    pub state: Option<Cow<'static, str>>,
    /// A static port forward's session.
    pub forward: bool,
    pub age_ms: u64,
    pub idle_ms: u64,
    /// Until the session expires if no packet comes.
    pub expires_ms: u64,
    /// Packets inside → outside.
    pub packets_out: u64,
    /// Packets outside → inside.
    pub packets_in: u64,
    /// The worker that owns the session.
    pub worker: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatSummary {
    /// Sessions listed (a dump is no snapshot: the tables may have moved on).
    pub sessions_listed: usize,
    /// Mappings of all workers at the end of the listing.
    pub mappings: u64,
    /// Workers that did not answer within a second: their sessions are missing.
    pub silent_workers: Vec<u16>,
}

impl NatSessionRecord {
    pub fn new(worker: u16, s: &SessionInfo) -> NatSessionRecord {
        NatSessionRecord {
            proto: Cow::Borrowed(proto_name(s.proto)),
            inside: s.inside.into(),
            outside: s.outside.into(),
            remote: s.remote.into(),
            state: (s.state != "-").then_some(Cow::Borrowed(s.state)),
            forward: s.fixed,
            age_ms: s.age_ms,
            idle_ms: s.idle_ms,
            expires_ms: s.expires_ms,
            packets_out: s.pkts_out,
            packets_in: s.pkts_in,
            worker,
        }
    }
}

/// `udp 198.18.1.2:40000 198.19.1.1:40000 198.19.1.2:7 - age 1.250s idle 0.100s expires 299s pkts 3/3 worker 0`.
impl fmt::Display for NatSessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written straight into the row (a dump formats 200,000 of them on the control thread).
        write!(
            f,
            "{} {} {} {} {}{} age {}.{:03}s idle {}.{:03}s expires {}s pkts {}/{} worker {}",
            self.proto,
            self.inside,
            self.outside,
            self.remote,
            self.state.as_deref().unwrap_or("-"),
            if self.forward { " forward" } else { "" },
            self.age_ms / 1000,
            self.age_ms % 1000,
            self.idle_ms / 1000,
            self.idle_ms % 1000,
            self.expires_ms.div_ceil(1000),
            self.packets_out,
            self.packets_in,
            self.worker,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::rewrite::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};
    use crate::conntrack::Ep;
    use proptest::prelude::*;

    /// The row as `ctl nat show` printed it before there were records.
    fn old_row(w: u16, s: &SessionInfo) -> String {
        let ms = |v: u64| format!("{}.{:03}s", v / 1000, v % 1000);
        format!(
            "{} {} {} {} {}{} age {} idle {} expires {}s pkts {}/{} worker {w}",
            proto_name(s.proto),
            s.inside,
            s.outside,
            s.remote,
            s.state,
            if s.fixed { " forward" } else { "" },
            ms(s.age_ms),
            ms(s.idle_ms),
            s.expires_ms.div_ceil(1000),
            s.pkts_out,
            s.pkts_in,
        )
    }

    proptest! {
        #[test]
        fn text_as_before_and_json_round_trip(
            proto in prop::sample::select(vec![PROTO_TCP, PROTO_UDP, PROTO_ICMP]),
            addrs in any::<[u32; 3]>(), ports in any::<[u16; 3]>(),
            state in prop::sample::select(vec!["-", "syn-seen", "established", "fin-seen", "closing", "reset"]),
            times in any::<[u32; 3]>(), pkts in any::<[u64; 2]>(), fixed in any::<bool>(), w in any::<u16>(),
        ) {
            let s = SessionInfo {
                proto,
                inside: Ep::new(addrs[0], ports[0]),
                outside: Ep::new(addrs[1], ports[1]),
                remote: Ep::new(addrs[2], ports[2]),
                state,
                age_ms: u64::from(times[0]),
                idle_ms: u64::from(times[1]),
                expires_ms: u64::from(times[2]),
                pkts_out: pkts[0],
                pkts_in: pkts[1],
                fixed,
            };
            let r = NatSessionRecord::new(w, &s);
            prop_assert_eq!(r.to_string(), old_row(w, &s));
            let json = serde_json::to_string(&r).unwrap();
            prop_assert_eq!(serde_json::from_str::<NatSessionRecord>(&json).unwrap(), r);
        }
    }

    #[test]
    fn json_of_a_udp_session() {
        let s = SessionInfo {
            proto: PROTO_UDP,
            inside: Ep::new(0xc612_0102, 40000),
            outside: Ep::new(0xc613_0101, 40000),
            remote: Ep::new(0xc613_0102, 7),
            state: "-",
            age_ms: 1250,
            idle_ms: 100,
            expires_ms: 298_900,
            pkts_out: 3,
            pkts_in: 3,
            fixed: false,
        };
        let r = NatSessionRecord::new(0, &s);
        assert_eq!(r.to_string(), "udp 198.18.1.2:40000 198.19.1.1:40000 198.19.1.2:7 - age 1.250s idle 0.100s expires 299s pkts 3/3 worker 0");
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            concat!(
                r#"{"proto":"udp","inside":{"addr":"198.18.1.2","port":40000},"outside":{"addr":"198.19.1.1","port":40000},"#,
                r#""remote":{"addr":"198.19.1.2","port":7},"state":null,"forward":false,"age_ms":1250,"idle_ms":100,"#,
                r#""expires_ms":298900,"packets_out":3,"packets_in":3,"worker":0}"#
            )
        );
    }
}
