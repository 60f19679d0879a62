//! tcpstall: one TCP connection's stalls and retransmissions, read from a
//! pcap capture (the loss benchmark, scripts/lossbench.sh).
//!
//! ```text
//! tcpstall --pcap FILE --port P
//! ```
//!
//! Reads every IPv4 TCP segment to or from port `P` (Ethernet or Linux
//! cooked captures), takes the connection of the first SYN seen (later ones
//! are ignored), and the direction that carried more payload as the data
//! direction: its source is the sender, the other end the receiver. Prints
//! one JSON line:
//!
//! - `longest_stall_ms`: the longest interval in which the receiver's
//!   cumulative ACK did not advance while data was outstanding (the highest
//!   sequence the sender sent, SYN and FIN included, above the highest ACK):
//!   from the ACK that last advanced (or the segment that made data
//!   outstanding) to the next advancing ACK, or to the last packet of the
//!   capture if none came; `stalls_over_200ms` and `stalls_over_1s` count
//!   such intervals;
//! - `data_segments`, `retrans_segments`, `retrans_bytes`: the sender's
//!   segments with payload as captured, and those whose first byte lies below
//!   the highest sequence sent before (a retransmission, whole or partial);
//!   where the capture point is before a loss (the sender's side of the
//!   router) that is every retransmission the sender made;
//! - `sack`, `timestamps`, `wscale`: whether both SYNs carried SACK-permitted,
//!   timestamps and window scaling (what the connection negotiated);
//! - `payload_bytes`, `packets`, `duration_s` (first SYN to last packet).
#![deny(clippy::undocumented_unsafe_blocks)]

use std::process::ExitCode;

use clap::Parser;
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "tcpstall",
    about = "stalls and retransmissions of one TCP connection in a pcap"
)]
struct Cli {
    #[arg(long)]
    pcap: std::path::PathBuf,
    /// The server's port (either end of the connection).
    #[arg(long)]
    port: u16,
}

/// Link types (pcap LINKTYPE_*) this reader knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataLink {
    Ethernet,
    LinuxSll,
    LinuxSll2,
    Other,
}

/// The records of a capture: (timestamp in seconds, captured bytes).
type Records<'a> = Vec<(f64, &'a [u8])>;

/// A classic pcap file (microsecond or nanosecond, either byte order), read
/// whole: its link type and records. Its own reader, as pcap-file 2.0
/// rejects records whose original length exceeds the snap length, i.e.
/// every record of a short-snap capture.
fn read_pcap(data: &[u8]) -> Result<(DataLink, Records<'_>), String> {
    let hdr = data.get(..24).ok_or("shorter than a pcap header")?;
    let magic = [hdr[0], hdr[1], hdr[2], hdr[3]];
    let (le, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => return Err("not a pcap file (pcapng is not read)".into()),
    };
    let u32_at = |b: &[u8], o: usize| {
        let w = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    let link = match u32_at(hdr, 20) & 0x0fff_ffff {
        1 => DataLink::Ethernet,
        113 => DataLink::LinuxSll,
        276 => DataLink::LinuxSll2,
        _ => DataLink::Other,
    };
    let mut out = Vec::new();
    let mut o = 24;
    // A record cut short at the end (tcpdump killed mid-write) ends the file.
    while let Some(rec) = data.get(o..o + 16) {
        let (sec, frac, caplen) = (u32_at(rec, 0), u32_at(rec, 4), u32_at(rec, 8) as usize);
        let Some(body) = data.get(o + 16..o + 16 + caplen) else {
            break;
        };
        let t = f64::from(sec) + f64::from(frac) / if nanos { 1e9 } else { 1e6 };
        out.push((t, body));
        o += 16 + caplen;
    }
    Ok((link, out))
}

/// One captured segment of the connection.
#[derive(Debug, Clone, Copy)]
struct Seg {
    t: f64,
    /// From the SYN's sender (the client).
    from_client: bool,
    seq: u32,
    ack: u32,
    flags: u8,
    len: u32,
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

/// TCP options of a SYN: (SACK-permitted, timestamps, window scale).
fn syn_options(opts: &[u8]) -> (bool, bool, bool) {
    let (mut sack, mut ts, mut ws) = (false, false, false);
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let Some(&l) = opts.get(i + 1) else { break };
                if l < 2 {
                    break;
                }
                match kind {
                    3 => ws = true,
                    4 => sack = true,
                    8 => ts = true,
                    _ => {}
                }
                i += usize::from(l);
            }
        }
    }
    (sack, ts, ws)
}

/// The IPv4 and TCP header fields of a frame this reader uses.
struct Hdr<'a> {
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    /// Payload length (from the IPv4 total length: the capture may be cut short).
    len: u32,
    /// TCP options, as far as the snap length kept them.
    opts: &'a [u8],
}

/// The IPv4/TCP headers of a frame; `None` for anything else.
fn parse(frame: &[u8], link: DataLink) -> Option<Hdr<'_>> {
    let ip = match link {
        DataLink::Ethernet => {
            let mut o = 12;
            let mut et = u16::from_be_bytes([*frame.get(o)?, *frame.get(o + 1)?]);
            if et == 0x8100 {
                o += 4;
                et = u16::from_be_bytes([*frame.get(o)?, *frame.get(o + 1)?]);
            }
            if et != 0x0800 {
                return None;
            }
            frame.get(o + 2..)?
        }
        // Linux cooked v1: 16-byte header, protocol at 14.
        DataLink::LinuxSll => {
            if u16::from_be_bytes([*frame.get(14)?, *frame.get(15)?]) != 0x0800 {
                return None;
            }
            frame.get(16..)?
        }
        // Linux cooked v2: 20-byte header, protocol at 0.
        DataLink::LinuxSll2 => {
            if u16::from_be_bytes([*frame.first()?, *frame.get(1)?]) != 0x0800 {
                return None;
            }
            frame.get(20..)?
        }
        _ => return None,
    };
    if ip.first()? >> 4 != 4 || *ip.get(9)? != 6 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
    let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
    let tcp = ip.get(ihl..)?;
    let be16 = |o: usize| Some(u16::from_be_bytes([*tcp.get(o)?, *tcp.get(o + 1)?]));
    let be32 = |o: usize| Some(u32::from_be_bytes(tcp.get(o..o + 4)?.try_into().ok()?));
    let doff = usize::from(tcp.get(12)? >> 4) * 4;
    let len = total.checked_sub(ihl + doff)? as u32;
    // Options as far as the snap length kept them.
    let opts = tcp.get(20..doff.min(tcp.len()).max(20)).unwrap_or(&[]);
    Some(Hdr {
        src,
        dst,
        sport: be16(0)?,
        dport: be16(2)?,
        seq: be32(4)?,
        ack: be32(8)?,
        flags: *tcp.get(13)?,
        len,
        opts,
    })
}

fn run(cli: &Cli) -> Result<serde_json::Value, String> {
    let raw = std::fs::read(&cli.pcap).map_err(|e| format!("{}: {e}", cli.pcap.display()))?;
    analyze(&raw, cli.port).map_err(|e| format!("{}: {e}", cli.pcap.display()))
}

/// The JSON line of a capture (the whole file in memory).
fn analyze(raw: &[u8], port: u16) -> Result<serde_json::Value, String> {
    let (link, records) = read_pcap(raw)?;
    // The connection: (client addr, client port, server addr) once its SYN is seen.
    let mut conn: Option<([u8; 4], u16, [u8; 4])> = None;
    let mut segs: Vec<Seg> = Vec::new();
    let (mut syn_c, mut syn_s) = (None, None);
    let mut packets = 0u64;
    for (t, frame) in records {
        let Some(Hdr {
            src,
            dst,
            sport: sp,
            dport: dp,
            seq,
            ack,
            flags,
            len,
            opts,
        }) = parse(frame, link)
        else {
            continue;
        };
        if sp != port && dp != port {
            continue;
        }
        let from_client = match conn {
            None if flags & SYN != 0 && flags & ACK == 0 && dp == port => {
                conn = Some((src, sp, dst));
                true
            }
            None => continue,
            Some((ca, cp, sa)) => {
                if src == ca && sp == cp && dst == sa && dp == port {
                    true
                } else if src == sa && sp == port && dst == ca && dp == cp {
                    false
                } else {
                    continue;
                }
            }
        };
        if flags & SYN != 0 {
            let o = Some(syn_options(opts));
            if from_client {
                syn_c = syn_c.or(o);
            } else {
                syn_s = syn_s.or(o);
            }
        }
        packets += 1;
        segs.push(Seg {
            t,
            from_client,
            seq,
            ack,
            flags,
            len,
        });
    }
    if segs.is_empty() {
        return Err(format!("no SYN to port {} in the capture", port));
    }
    let bytes = |c: bool| -> u64 {
        segs.iter()
            .filter(|s| s.from_client == c)
            .map(|s| u64::from(s.len))
            .sum()
    };
    let client_sends = bytes(true) >= bytes(false);
    // The sender's initial sequence number (its SYN's); sequence numbers
    // relative to it, unwrapped as u64 (transfers shorter than 4 GiB).
    let isn = segs
        .iter()
        .find(|s| s.from_client == client_sends && s.flags & SYN != 0)
        .map(|s| s.seq)
        .ok_or("the sender's SYN is not in the capture")?;
    let rel = |x: u32| u64::from(x.wrapping_sub(isn));
    let (mut snd_max, mut snd_una) = (0u64, 0u64);
    let mut since: Option<f64> = None;
    let (mut longest, mut over_200, mut over_1s) = (0f64, 0u64, 0u64);
    let (mut data, mut retrans, mut retrans_bytes) = (0u64, 0u64, 0u64);
    let mut stall = |d: f64| {
        longest = longest.max(d);
        over_200 += u64::from(d >= 0.2);
        over_1s += u64::from(d >= 1.0);
    };
    let t0 = segs[0].t;
    let t_last = segs.last().map_or(t0, |s| s.t);
    for s in &segs {
        if s.from_client == client_sends {
            let start = rel(s.seq);
            let end = start + u64::from(s.len) + u64::from(s.flags & (SYN | FIN) != 0);
            if s.len > 0 {
                data += 1;
                if start < snd_max {
                    retrans += 1;
                    retrans_bytes += u64::from(s.len);
                }
            }
            if end > snd_max {
                snd_max = end;
                if since.is_none() && snd_max > snd_una {
                    since = Some(s.t);
                }
            }
        } else if s.flags & ACK != 0 {
            let a = rel(s.ack);
            // An ACK beyond what was captured of the sender (a capture drop): taken as sent.
            if a > snd_una && a <= snd_max + (1 << 30) {
                if let Some(t) = since {
                    stall(s.t - t);
                }
                snd_una = a;
                snd_max = snd_max.max(a);
                since = (snd_max > snd_una).then_some(s.t);
            }
        }
    }
    if let Some(t) = since {
        stall(t_last - t);
    }
    let both = |f: fn(&(bool, bool, bool)) -> bool| {
        syn_c.as_ref().is_some_and(f) && syn_s.as_ref().is_some_and(f)
    };
    Ok(json!({
        "sender": if client_sends { "client" } else { "server" },
        "packets": packets,
        "payload_bytes": bytes(client_sends),
        "duration_s": ((t_last - t0) * 1e6).round() / 1e6,
        "longest_stall_ms": (longest * 1e4).round() / 10.0,
        "stalls_over_200ms": over_200,
        "stalls_over_1s": over_1s,
        "data_segments": data,
        "retrans_segments": retrans,
        "retrans_bytes": retrans_bytes,
        "sack": both(|o| o.0),
        "timestamps": both(|o| o.1),
        "wscale": both(|o| o.2),
    }))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tcpstall: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet/IPv4/TCP frame (checksums left zero: not read).
    fn frame(from_client: bool, seq: u32, ack: u32, flags: u8, len: u16, opts: &[u8]) -> Vec<u8> {
        let (src, dst, sp, dp) = if from_client {
            ([198, 18, 0, 2], [198, 19, 0, 2], 40000u16, 5001u16)
        } else {
            ([198, 19, 0, 2], [198, 18, 0, 2], 5001, 40000)
        };
        let doff = 20 + opts.len();
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        f.extend_from_slice(&(20 + doff as u16 + len).to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&sp.to_be_bytes());
        f.extend_from_slice(&dp.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&ack.to_be_bytes());
        f.extend_from_slice(&[((doff / 4) as u8) << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(opts);
        // The payload is cut off, as by a short snap length.
        f
    }

    fn pcap(recs: &[(f64, Vec<u8>)]) -> Vec<u8> {
        let mut p = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&128u32.to_le_bytes());
        p.extend_from_slice(&1u32.to_le_bytes());
        for (t, f) in recs {
            p.extend_from_slice(&(*t as u32).to_le_bytes());
            p.extend_from_slice(&(((t.fract()) * 1e6).round() as u32).to_le_bytes());
            p.extend_from_slice(&(f.len() as u32).to_le_bytes());
            p.extend_from_slice(&(f.len() as u32 + 1000).to_le_bytes());
            p.extend_from_slice(f);
        }
        p
    }

    #[test]
    fn stall_and_retransmission_of_a_download() {
        // SACK-permitted + timestamps on the client's SYN only: not negotiated.
        let syn_opts = [4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1];
        let (c, s) = (1000u32, 5000u32);
        let mut r = vec![
            (10.0, frame(true, c, 0, SYN, 0, &syn_opts)),
            (10.001, frame(false, s, c + 1, SYN | ACK, 0, &[1, 1, 1, 1])),
            (10.002, frame(true, c + 1, s + 1, ACK, 0, &[])),
        ];
        // The server sends 4 segments of 1000 bytes; the second is lost (not acked).
        for i in 0..4u32 {
            r.push((
                10.003,
                frame(false, s + 1 + i * 1000, c + 1, ACK, 1000, &[]),
            ));
        }
        r.push((10.004, frame(true, c + 1, s + 1001, ACK, 0, &[])));
        r.push((10.005, frame(true, c + 1, s + 1001, ACK, 0, &[])));
        // 300 ms later the retransmission, then everything is acknowledged; FIN.
        r.push((10.305, frame(false, s + 1001, c + 1, ACK, 1000, &[])));
        r.push((10.306, frame(true, c + 1, s + 4001, ACK, 0, &[])));
        r.push((10.307, frame(false, s + 4001, c + 1, ACK | FIN, 0, &[])));
        r.push((10.308, frame(true, c + 1, s + 4002, ACK | FIN, 0, &[])));
        let v = analyze(&pcap(&r), 5001).unwrap();
        assert_eq!(v["sender"], "server");
        assert_eq!(v["data_segments"], 5);
        assert_eq!(v["retrans_segments"], 1);
        assert_eq!(v["retrans_bytes"], 1000);
        assert_eq!(v["payload_bytes"], 5000);
        // From the ACK of 10.004 (the last advance) to 10.306.
        let st = v["longest_stall_ms"].as_f64().unwrap();
        assert!((st - 302.0).abs() < 0.2, "{st}");
        assert_eq!(v["stalls_over_200ms"], 1);
        assert_eq!(v["stalls_over_1s"], 0);
        assert_eq!(v["sack"], false);
        assert_eq!(v["timestamps"], false);
    }

    #[test]
    fn an_unanswered_tail_stalls_to_the_end_of_the_capture() {
        let (c, s) = (7u32, u32::MAX - 10); // the sender's sequence numbers wrap
        let r = vec![
            (1.0, frame(true, c, 0, SYN, 0, &[])),
            (1.0, frame(false, s, c + 1, SYN | ACK, 0, &[])),
            (1.0, frame(true, c + 1, s.wrapping_add(1), ACK, 0, &[])),
            (1.1, frame(false, s.wrapping_add(1), c + 1, ACK, 1000, &[])),
            (2.6, frame(false, s.wrapping_add(1), c + 1, ACK, 1000, &[])),
        ];
        let v = analyze(&pcap(&r), 5001).unwrap();
        assert_eq!(v["retrans_segments"], 1);
        assert_eq!(v["longest_stall_ms"].as_f64().unwrap(), 1500.0);
        assert_eq!(v["stalls_over_1s"], 1);
    }

    #[test]
    fn rejects_what_is_not_pcap() {
        assert!(analyze(b"not a capture at all, not even close", 1).is_err());
        assert!(analyze(&pcap(&[]), 5001).is_err());
    }
}
