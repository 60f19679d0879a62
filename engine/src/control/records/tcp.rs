//! `ctl tcp show`: one record per connection of the engine's TCP endpoint,
//! built on the control thread from the rows the workers' dumps copy
//! ([`ConnInfo`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::values::Endpoint;
use crate::tcp::endpoint::ConnInfo;
use crate::tcp::tcb::State;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpConnRecord {
    /// The engine's end.
    pub local: Endpoint,
    pub remote: Endpoint,
    #[serde(with = "super::values::tcp_state")]
    pub state: State,
    /// Payload bytes received and sent.
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub age_ms: u64,
    /// Smoothed round-trip time; null before the first sample.
    pub srtt_us: Option<u32>,
    pub rto_ms: u64,
    /// Congestion window.
    pub cwnd_bytes: u32,
    /// Bytes written by the application and not yet acknowledged.
    pub queued_bytes: u64,
    /// The worker that owns the connection.
    pub worker: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpSummary {
    pub connections_listed: usize,
    /// Connections of all workers at the end of the listing.
    pub connections: u64,
    /// Workers that did not answer within a second: their connections are missing.
    pub silent_workers: Vec<u16>,
}

impl TcpConnRecord {
    pub fn new(worker: u16, c: &ConnInfo) -> TcpConnRecord {
        TcpConnRecord {
            local: c.local.into(),
            remote: c.remote.into(),
            state: c.state,
            bytes_in: c.bytes_in,
            bytes_out: c.bytes_out,
            age_ms: c.age_ms,
            srtt_us: c.srtt_us,
            rto_ms: c.rto_ms,
            cwnd_bytes: c.cwnd,
            queued_bytes: c.send_queue as u64,
            worker,
        }
    }
}

/// `198.18.1.1:7 198.18.1.2:40000 Established in 1000 out 1000 age 1.250s srtt 85us rto 200ms cwnd 14600 queued 0 worker 0`.
impl fmt::Display for TcpConnRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {:?} in {} out {} age {}.{:03}s srtt {} rto {}ms cwnd {} queued {} worker {}",
            self.local,
            self.remote,
            self.state,
            self.bytes_in,
            self.bytes_out,
            self.age_ms / 1000,
            self.age_ms % 1000,
            self.srtt_us.map_or("-".to_string(), |v| format!("{v}us")),
            self.rto_ms,
            self.cwnd_bytes,
            self.queued_bytes,
            self.worker,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The row as `ctl tcp show` printed it before there were records.
    fn old_row(w: u16, c: &ConnInfo) -> String {
        format!(
            "{} {} {:?} in {} out {} age {}.{:03}s srtt {} rto {}ms cwnd {} queued {} worker {w}",
            c.local,
            c.remote,
            c.state,
            c.bytes_in,
            c.bytes_out,
            c.age_ms / 1000,
            c.age_ms % 1000,
            c.srtt_us.map_or("-".to_string(), |v| format!("{v}us")),
            c.rto_ms,
            c.cwnd,
            c.send_queue,
        )
    }

    proptest! {
        #[test]
        fn text_as_before_and_json_round_trip(
            v6 in any::<bool>(), a in any::<[u8; 16]>(), ports in any::<[u16; 2]>(),
            state in 0..super::super::values::tcp_state::ALL.len(),
            bytes in any::<[u64; 2]>(), age in any::<u32>(), srtt in any::<Option<u32>>(),
            rto in any::<u32>(), cwnd in any::<u32>(), queue in any::<u32>(), w in any::<u16>(),
        ) {
            let ip = |i: usize| -> std::net::IpAddr {
                if v6 { std::net::Ipv6Addr::from(a).into() } else { std::net::Ipv4Addr::new(a[i], a[1], a[2], a[3]).into() }
            };
            let c = ConnInfo {
                local: std::net::SocketAddr::new(ip(0), ports[0]),
                remote: std::net::SocketAddr::new(ip(4), ports[1]),
                state: super::super::values::tcp_state::ALL[state].0,
                bytes_in: bytes[0],
                bytes_out: bytes[1],
                age_ms: u64::from(age),
                srtt_us: srtt,
                rto_ms: u64::from(rto),
                cwnd,
                send_queue: queue as usize,
            };
            let r = TcpConnRecord::new(w, &c);
            prop_assert_eq!(r.to_string(), old_row(w, &c));
            let json = serde_json::to_string(&r).unwrap();
            prop_assert_eq!(serde_json::from_str::<TcpConnRecord>(&json).unwrap(), r);
        }
    }
}
