//! `ctl conn show`: one record per tracked connection (plain entries of the
//! stateful filter and NAT sessions alike), built on the control thread from
//! the rows the workers' dumps copy ([`ConnInfo`]). The text row reads as
//! `conntrack -L` prints one.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::conntrack::packet::Tuple;
use crate::conntrack::track::{ASSURED, SEEN_REPLY};
use crate::conntrack::ConnInfo;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnRecord {
    /// `tcp`, `udp`, `icmp`, `icmpv6`, or `proto-N` for another protocol.
    pub proto: Cow<'static, str>,
    /// The tracker's TCP state as nf_conntrack names it (`SYN_SENT`,
    /// `ESTABLISHED`, `TIME_WAIT`, ...); null for other protocols.
    pub state: Option<Cow<'static, str>>,
    /// Until the entry expires if no packet comes.
    pub expires_ms: u64,
    /// The direction of the first packet.
    pub original: Direction,
    /// The answer's direction (for a NATed flow: to the translated address and port).
    pub reply: Direction,
    /// A packet came back (conntrack's `[UNREPLIED]` when false).
    pub seen_reply: bool,
    /// Seen both ways past set-up (conntrack's `[ASSURED]`): eviction spares it.
    pub assured: bool,
    /// The entry is a NAT session.
    pub nat: bool,
    /// The worker that owns the entry.
    pub worker: u16,
}

/// One direction of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Direction {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TCP and UDP; null otherwise.
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    /// ICMP and ICMPv6 queries: the identifier; null otherwise.
    pub icmp_id: Option<u16>,
    /// Packets seen in this direction.
    pub packets: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnSummary {
    /// Connections listed (those the request's words kept; a dump is no snapshot).
    pub connections_listed: usize,
    /// Entries of all workers' tables, as last published.
    pub connections: u64,
    /// Workers that did not answer within a second: their connections are missing.
    pub silent_workers: Vec<u16>,
}

impl Direction {
    fn new(t: &Tuple, packets: u64) -> Direction {
        let (ports, id) = match t.proto {
            6 | 17 => (true, false),
            1 | 58 => (false, true),
            _ => (false, false),
        };
        Direction {
            src: t.src_ip(),
            dst: t.dst_ip(),
            sport: ports.then_some(t.sport),
            dport: ports.then_some(t.dport),
            icmp_id: id.then_some(t.sport),
            packets,
        }
    }
}

impl ConnRecord {
    pub fn new(worker: u16, c: &ConnInfo) -> ConnRecord {
        let proto = match c.orig.proto {
            6 => Cow::Borrowed("tcp"),
            17 => Cow::Borrowed("udp"),
            1 => Cow::Borrowed("icmp"),
            58 => Cow::Borrowed("icmpv6"),
            p => Cow::Owned(format!("proto-{p}")),
        };
        ConnRecord {
            proto,
            state: (!c.tcp.is_empty()).then_some(Cow::Borrowed(c.tcp)),
            expires_ms: c.expires_ms,
            original: Direction::new(&c.orig, c.pkts_orig),
            reply: Direction::new(&c.reply, c.pkts_reply),
            seen_reply: c.status & SEEN_REPLY != 0,
            assured: c.status & ASSURED != 0,
            nat: c.nat,
            worker,
        }
    }
}

/// `src=198.18.1.2 dst=198.19.1.2 sport=40000 dport=80 packets=5`.
impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "src={} dst={}", self.src, self.dst)?;
        if let Some(id) = self.icmp_id {
            write!(f, " id={id}")?;
        } else if let (Some(s), Some(d)) = (self.sport, self.dport) {
            write!(f, " sport={s} dport={d}")?;
        }
        write!(f, " packets={}", self.packets)
    }
}

/// `tcp 431999 ESTABLISHED src=198.18.1.2 dst=198.19.1.2 sport=40000 dport=80 packets=5
/// src=198.19.1.2 dst=198.18.1.2 sport=80 dport=40000 packets=4 [ASSURED] worker 0`
/// (one line), as `conntrack -L` prints it, with the owning worker.
impl fmt::Display for ConnRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.proto, self.expires_ms.div_ceil(1000))?;
        if let Some(s) = &self.state {
            write!(f, "{s} ")?;
        }
        write!(f, "{}", self.original)?;
        if !self.seen_reply {
            f.write_str(" [UNREPLIED]")?;
        }
        write!(f, " {}", self.reply)?;
        if self.assured {
            f.write_str(" [ASSURED]")?;
        }
        if self.nat {
            f.write_str(" [NAT]")?;
        }
        write!(f, " worker {}", self.worker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The row as `ctl conn show` printed it before there were records.
    fn old_row(w: u16, c: &ConnInfo) -> String {
        let proto = match c.orig.proto {
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            1 => "icmp".to_string(),
            58 => "icmpv6".to_string(),
            p => format!("proto-{p}"),
        };
        let tuple = |t: &Tuple, pkts: u64| {
            let ends = format!("src={} dst={}", t.src_ip(), t.dst_ip());
            match t.proto {
                6 | 17 => format!("{ends} sport={} dport={} packets={pkts}", t.sport, t.dport),
                1 | 58 => format!("{ends} id={} packets={pkts}", t.sport),
                _ => format!("{ends} packets={pkts}"),
            }
        };
        let mut s = format!("{proto} {} ", c.expires_ms.div_ceil(1000));
        if !c.tcp.is_empty() {
            s += c.tcp;
            s.push(' ');
        }
        s += &tuple(&c.orig, c.pkts_orig);
        if c.status & SEEN_REPLY == 0 {
            s += " [UNREPLIED]";
        }
        s.push(' ');
        s += &tuple(&c.reply, c.pkts_reply);
        if c.status & ASSURED != 0 {
            s += " [ASSURED]";
        }
        if c.nat {
            s += " [NAT]";
        }
        s + &format!(" worker {w}")
    }

    fn tuple(family: u8, proto: u8, a: u128, b: u128, sp: u16, dp: u16) -> Tuple {
        let (src, dst) = if family == 4 {
            (a & 0xffff_ffff, b & 0xffff_ffff)
        } else {
            (a, b)
        };
        Tuple {
            family,
            proto,
            src,
            dst,
            sport: sp,
            dport: dp,
        }
    }

    proptest! {
        #[test]
        fn text_as_before_and_json_round_trip(
            family in prop::sample::select(vec![4u8, 6]),
            proto in prop::sample::select(vec![6u8, 17, 1, 58, 47]),
            addrs in any::<[u128; 2]>(), ports in any::<[u16; 2]>(),
            tcp in prop::sample::select(vec!["", "SYN_SENT", "ESTABLISHED", "TIME_WAIT"]),
            status in any::<u8>(), expires in any::<u32>(), pkts in any::<[u64; 2]>(), nat in any::<bool>(), w in any::<u16>(),
        ) {
            let orig = tuple(family, proto, addrs[0], addrs[1], ports[0], ports[1]);
            let c = ConnInfo { orig, reply: orig.reversed(), tcp, status, expires_ms: u64::from(expires), pkts_orig: pkts[0], pkts_reply: pkts[1], nat };
            let r = ConnRecord::new(w, &c);
            prop_assert_eq!(r.to_string(), old_row(w, &c));
            let json = serde_json::to_string(&r).unwrap();
            prop_assert_eq!(serde_json::from_str::<ConnRecord>(&json).unwrap(), r);
        }
    }

    #[test]
    fn json_of_an_established_tcp_connection() {
        let orig = tuple(4, 6, 0xc612_0102, 0xc613_0102, 40000, 80);
        let c = ConnInfo {
            orig,
            reply: orig.reversed(),
            tcp: "ESTABLISHED",
            status: SEEN_REPLY | ASSURED,
            expires_ms: 431_998_500,
            pkts_orig: 5,
            pkts_reply: 4,
            nat: false,
        };
        let r = ConnRecord::new(0, &c);
        assert_eq!(
            r.to_string(),
            "tcp 431999 ESTABLISHED src=198.18.1.2 dst=198.19.1.2 sport=40000 dport=80 packets=5 src=198.19.1.2 dst=198.18.1.2 sport=80 dport=40000 packets=4 [ASSURED] worker 0"
        );
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            concat!(
                r#"{"proto":"tcp","state":"ESTABLISHED","expires_ms":431998500,"#,
                r#""original":{"src":"198.18.1.2","dst":"198.19.1.2","sport":40000,"dport":80,"icmp_id":null,"packets":5},"#,
                r#""reply":{"src":"198.19.1.2","dst":"198.18.1.2","sport":80,"dport":40000,"icmp_id":null,"packets":4},"#,
                r#""seen_reply":true,"assured":true,"nat":false,"worker":0}"#
            )
        );
    }
}
