//! The client side of `ctl capture`: the filter compiled for the request,
//! and the captured frames written as a classic pcap file (Ethernet link
//! type, nanosecond timestamps), the format `tcpdump -r` and Wireshark read.

use std::io;
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

use super::ctl::CaptureFilter;
use crate::cbpf::{self, Program};

/// Largest frame kept per record (the file's snaplen).
pub const SNAPLEN: u32 = 65535;

/// The most bytes of the expression a request carries (it is only shown;
/// the program is what counts). With it, the largest program still fits a
/// request (`control::ctl::MAX_REQUEST`), whatever the characters.
pub const MAX_EXPR: usize = 1024;

/// `expr` compiled by libpcap and checked as the engine will check it, ready
/// for a capture request; or why not, in words for the operator.
pub fn capture_filter(expr: &str) -> Result<CaptureFilter, String> {
    let insns = cbpf::compile::compile(expr)?;
    Program::new(&insns)
        .map_err(|e| format!("libpcap's program for it cannot run in the engine: {e}"))?;
    Ok(CaptureFilter {
        expr: shorten(expr).to_string(),
        program: cbpf::encode::encode(&insns),
    })
}

/// At most [`MAX_EXPR`] bytes of `expr`, cut on a character boundary.
fn shorten(expr: &str) -> &str {
    let mut n = expr.len().min(MAX_EXPR);
    while !expr.is_char_boundary(n) {
        n -= 1;
    }
    &expr[..n]
}

/// Writes `frames` (time in ns since the Unix epoch, bytes) to a new pcap file
/// at `path`, replacing it. Returns the number of frames written.
pub fn write_pcap<'a>(
    path: &Path,
    frames: impl IntoIterator<Item = (u64, &'a [u8])>,
) -> io::Result<usize> {
    let file = io::BufWriter::new(std::fs::File::create(path)?);
    let header = PcapHeader {
        version_major: 2,
        version_minor: 4,
        ts_correction: 0,
        ts_accuracy: 0,
        snaplen: SNAPLEN,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        endianness: Endianness::native(),
    };
    let mut w = PcapWriter::with_header(file, header).map_err(io::Error::other)?;
    let mut n = 0;
    for (time_ns, data) in frames {
        let kept = &data[..data.len().min(SNAPLEN as usize)];
        let orig_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        w.write_packet(&PcapPacket::new(
            Duration::from_nanos(time_ns),
            orig_len,
            kept,
        ))
        .map_err(io::Error::other)?;
        n += 1;
    }
    let mut inner = w.into_writer();
    io::Write::flush(&mut inner)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;

    #[test]
    fn filters_compile_check_and_encode() {
        let f = capture_filter("tcp port 80 and host 198.18.1.2").unwrap();
        assert_eq!(f.expr, "tcp port 80 and host 198.18.1.2");
        let p = Program::decode(&f.program).unwrap();
        assert!(p.len() > 10);
        // libpcap's errors come through; so do programs the engine would refuse.
        assert!(capture_filter("tcp port 80 and")
            .unwrap_err()
            .contains("syntax error"));
        assert!(capture_filter("ip6 protochain 6")
            .unwrap_err()
            .contains("cannot run in the engine"));
        // A long expression is shortened for the request, on a character boundary.
        let long = format!("{}host 198.18.1.2", "ip and ".repeat(200));
        let f = capture_filter(&long).unwrap();
        assert_eq!(f.expr, long[..MAX_EXPR]);
        assert_eq!(shorten(&"é".repeat(600)), "é".repeat(512));
        assert_eq!(shorten("ab"), "ab");
    }

    #[test]
    fn written_file_reads_back() {
        let path =
            std::env::temp_dir().join(format!("pktengine-capture-{}.pcap", std::process::id()));
        // An ARP request for 198.18.0.2 from 02:00:00:00:00:01.
        let arp: Vec<u8> = [
            &[0xff; 6][..],
            &[0x02, 0, 0, 0, 0, 0x01],
            &[0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01],
            &[0x02, 0, 0, 0, 0, 0x01, 198, 18, 0, 1],
            &[0; 6],
            &[198, 18, 0, 2],
        ]
        .concat();
        let frames = [
            (1_700_000_000_123_456_789u64, arp.as_slice()),
            (1_700_000_001_000_000_000, &arp[..20]),
        ];
        assert_eq!(write_pcap(&path, frames).unwrap(), 2);

        let mut r = PcapReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(r.header().datalink, DataLink::ETHERNET);
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!(p.data.as_ref(), arp.as_slice());
        assert_eq!(p.timestamp, Duration::from_nanos(1_700_000_000_123_456_789));
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!(p.data.len(), 20);
        assert!(r.next_packet().is_none());

        // tcpdump, when present, must read it too: that is what users run.
        if let Ok(out) = std::process::Command::new("tcpdump")
            .args(["-nn", "-r"])
            .arg(&path)
            .output()
        {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                text.contains("Request who-has 198.18.0.2 tell 198.18.0.1"),
                "{text}"
            );
        }
        std::fs::remove_file(&path).unwrap();
    }
}
