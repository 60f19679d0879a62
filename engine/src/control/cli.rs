//! The client side of `pktengine ctl`: sends a request, prints the answer as
//! text, or with `--json` as one JSON document (`records::document`).

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use super::capture::{capture_filter, write_pcap};
use super::ctl::{request, request_as, Counter, Request, Response};
use super::records::document::Document;
use super::records::{self, Format, Schema};

/// Runs one ctl request and prints its answer in `format`; returns the exit code.
pub fn run(socket: &Path, format: Format, req: Request, out: &mut dyn Write) -> i32 {
    if format == Format::Json {
        return run_json(socket, &req, out);
    }
    let mut printed = Ok(());
    let last = request(socket, &req, |r| {
        if printed.is_ok() {
            printed = print_response(r, out);
        }
    });
    finish(last, out)
}

fn finish(last: std::io::Result<Response>, out: &mut dyn Write) -> i32 {
    match last {
        Ok(Response::Done { message }) => {
            if !message.is_empty() {
                let _ = writeln!(out, "{message}");
            }
            0
        }
        Ok(Response::Error { message }) => {
            eprintln!("pktengine ctl: {message}");
            1
        }
        Ok(r) => {
            let _ = print_response(&r, out);
            0
        }
        Err(e) => {
            eprintln!("pktengine ctl: {e}");
            2
        }
    }
}

fn print_response(r: &Response, out: &mut dyn Write) -> std::io::Result<()> {
    match r {
        Response::Table { rows, .. } => {
            for row in rows {
                writeln!(out, "{row}")?;
            }
            Ok(())
        }
        Response::Stats { counters, .. } => write!(out, "{}", render_stats(counters, None)),
        Response::Frame { port, data, .. } => writeln!(out, "{port}: {} bytes", data.len()),
        Response::Done { message } | Response::Error { message } => writeln!(out, "{message}"),
        // Only asked for with `--json`.
        Response::Records { .. } | Response::Summary { .. } => Ok(()),
    }
}

/// The schema of a request's answer, if the request shows something.
pub fn schema_of(req: &Request) -> Option<Schema> {
    use records::*;
    Some(match req {
        Request::Stats => StatRecord::SCHEMA,
        Request::RouteShow => RouteRecord::SCHEMA,
        Request::ArpShow => NeighborRecord::SCHEMA,
        Request::MacShow => MacRecord::SCHEMA,
        Request::NatShow => NatSessionRecord::SCHEMA,
        Request::TcpShow => TcpConnRecord::SCHEMA,
        Request::ConnShow { .. } => ConnRecord::SCHEMA,
        Request::LbShow => LbServiceRecord::SCHEMA,
        Request::FilterShow => FilterRuleRecord::SCHEMA,
        Request::Trace { .. } => TracedPacket::SCHEMA,
        _ => return None,
    })
}

/// The document a request's answer goes into: its schema's, or a result
/// named as the protocol names the command (`route-add`).
fn document_for(req: &Request) -> Document {
    match schema_of(req) {
        Some(s) => Document::show(s),
        None => {
            let v = serde_json::to_value(req).unwrap_or_default();
            Document::result(v["cmd"].as_str().unwrap_or("ctl"))
        }
    }
}

/// `--json`: one document on `out`, written as the answers arrive (a chunk
/// at a time, never the whole table in memory).
fn run_json(socket: &Path, req: &Request, out: &mut dyn Write) -> i32 {
    let mut w = BufWriter::with_capacity(64 << 10, out);
    let mut doc = document_for(req);
    // A problem on the client's side: an answer it cannot use, or stdout gone.
    let mut problem: Option<io::Error> = None;
    let last = request_as(socket, req, Format::Json, |r| {
        if problem.is_some() {
            return;
        }
        let done = match r {
            Response::Records { records } => doc.rows(&mut w, records),
            Response::Summary { summary } => doc.summary(summary.clone()),
            Response::Table { .. } | Response::Stats { .. } => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the engine answered in text: it is older than `--json`",
            )),
            Response::Frame { .. } | Response::Done { .. } | Response::Error { .. } => Ok(()),
        };
        problem = done.err();
    });
    finish_json(doc, &mut w, last, problem)
}

/// Ends a JSON document with the final answer; the exit code as in text
/// mode (0 done, 1 refused, 2 not reached or not understood). An error also
/// goes to stderr as a line, as in text mode.
fn finish_json(
    doc: Document,
    out: &mut dyn Write,
    last: io::Result<Response>,
    problem: Option<io::Error>,
) -> i32 {
    let (code, message, error) = match (last, problem) {
        (_, Some(p)) if p.kind() == io::ErrorKind::InvalidData => {
            (2, String::new(), Some(p.to_string()))
        }
        (Ok(Response::Done { message }), _) => (0, message, None),
        (Ok(Response::Error { message }), _) => (1, String::new(), Some(message)),
        (Ok(_), _) => (
            2,
            String::new(),
            Some("the engine ended with an answer that is not final".to_string()),
        ),
        (Err(e), _) => (2, String::new(), Some(e.to_string())),
    };
    if let Some(e) = &error {
        eprintln!("pktengine ctl: {e}");
    }
    // Output that cannot be written (a closed pipe) is dropped, as in text mode.
    let _ = doc.finish(out, &message, error.as_deref());
    code
}

/// `ctl stats`: a counters request; with `watch`, repeated every second with
/// rates computed from consecutive readings, until interrupted. With JSON, a
/// document per reading (the counters; rates are the reader's to compute).
pub fn stats(socket: &Path, watch: bool, format: Format, out: &mut dyn Write) -> i32 {
    if format == Format::Json {
        loop {
            let code = run_json(socket, &Request::Stats, out);
            if !watch || code != 0 {
                return code;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let mut prev: Option<(u64, Vec<Counter>)> = None;
    loop {
        let mut got = None;
        let last = request(socket, &Request::Stats, |r| {
            if let Response::Stats { time_ns, counters } = r {
                got = Some((*time_ns, counters.clone()));
            }
        });
        let r = match (last, got) {
            (Ok(Response::Done { .. }), Some(r)) => r,
            (other, _) => return finish(other, out),
        };
        let rates = prev
            .as_ref()
            .map(|(t, c)| (r.0.saturating_sub(*t), c.as_slice()));
        let text = render_stats(&r.1, rates);
        if watch {
            // Clear the screen and home the cursor, like top.
            let _ = write!(out, "\x1b[2J\x1b[H{text}");
            let _ = out.flush();
        } else {
            let _ = write!(out, "{text}");
            return 0;
        }
        prev = Some(r);
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Counters as a table per port (packets, bytes and, with a previous
/// reading, pps and bits/s), then non-zero drops by reason, then workers.
pub fn render_stats(counters: &[Counter], prev: Option<(u64, &[Counter])>) -> String {
    let get = |cs: &[Counter], scope: &str, name: &str| -> u64 {
        cs.iter()
            .find(|c| c.scope == scope && c.name == name)
            .map_or(0, |c| c.value)
    };
    let mut s = String::new();
    let mut ports: Vec<&str> = Vec::new();
    for c in counters {
        if let Some(p) = c.scope.strip_prefix("port ") {
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
    }
    s += &format!(
        "{:<10} {:>14} {:>14} {:>12} {:>12} {:>14} {:>14} {:>12} {:>12}\n",
        "port",
        "rx packets",
        "rx bytes",
        "rx pps",
        "rx bps",
        "tx packets",
        "tx bytes",
        "tx pps",
        "tx bps"
    );
    for p in &ports {
        let scope = format!("port {p}");
        let v = |n: &str| get(counters, &scope, n);
        let rate = |n: &str, bits: bool| -> String {
            match prev {
                Some((dt, old)) if dt > 0 => {
                    let d = v(n).saturating_sub(get(old, &scope, n)) as f64 * 1e9 / dt as f64;
                    human(if bits { d * 8.0 } else { d })
                }
                _ => "-".into(),
            }
        };
        s += &format!(
            "{:<10} {:>14} {:>14} {:>12} {:>12} {:>14} {:>14} {:>12} {:>12}\n",
            p,
            v("rx_packets"),
            v("rx_bytes"),
            rate("rx_packets", false),
            rate("rx_bytes", true),
            v("tx_packets"),
            v("tx_bytes"),
            rate("tx_packets", false),
            rate("tx_bytes", true)
        );
    }
    // The kernel's drops at each port's AF_XDP sockets (XDP_STATISTICS), one line per port.
    let mut xsk: Vec<(&str, Vec<String>)> = Vec::new();
    for c in counters.iter().filter(|c| c.scope.starts_with("xsk ")) {
        let p = &c.scope["xsk ".len()..];
        match xsk.iter_mut().find(|(q, _)| *q == p) {
            Some((_, v)) => v.push(format!("{} {}", c.name, c.value)),
            None => xsk.push((p, vec![format!("{} {}", c.name, c.value)])),
        }
    }
    for (p, v) in &xsk {
        s += &format!("xsk {p}: {}\n", v.join(" "));
    }
    let mut drops: BTreeMap<(String, String), u64> = BTreeMap::new();
    for c in counters
        .iter()
        .filter(|c| c.scope.starts_with("drop ") && c.value > 0)
    {
        drops.insert(
            (c.scope["drop ".len()..].to_string(), c.name.clone()),
            c.value,
        );
    }
    // Packets into each stage, summed over the workers.
    let mut stages: BTreeMap<&str, u64> = BTreeMap::new();
    for c in counters
        .iter()
        .filter(|c| c.scope.starts_with("worker ") && c.value > 0)
    {
        if let Some(st) = c.name.strip_prefix("stage ") {
            *stages.entry(st).or_default() += c.value;
        }
    }
    if !stages.is_empty() {
        s += "\nstages (packets in):\n";
        for (st, v) in &stages {
            s += &format!("  {st:<16} {v}\n");
        }
    }
    let nat: Vec<&Counter> = counters
        .iter()
        .filter(|c| c.scope.starts_with("nat worker "))
        .collect();
    if !nat.is_empty() {
        let sum = |n: &str| {
            nat.iter()
                .filter(|c| c.name == n)
                .map(|c| c.value)
                .sum::<u64>()
        };
        s += &format!(
            "nat: {} sessions, {} mappings\n",
            sum("sessions"),
            sum("mappings")
        );
    }
    // The TCP endpoint and the connection tracker, a line per worker:
    // `tcp worker 0: conns 2 established 1 ...`, `conntrack worker 0: entries 3 new 1 ...`.
    let mut tcp: BTreeMap<&str, Vec<&Counter>> = BTreeMap::new();
    for c in counters
        .iter()
        .filter(|c| c.scope.starts_with("tcp worker ") || c.scope.starts_with("conntrack worker "))
    {
        tcp.entry(c.scope.as_str()).or_default().push(c);
    }
    for (scope, cs) in &tcp {
        let fields: Vec<String> = cs
            .iter()
            .map(|c| format!("{} {}", c.name, c.value))
            .collect();
        s += &format!("{scope}: {}\n", fields.join(" "));
    }
    s += "\ndrops (stage, reason, packets):\n";
    if drops.is_empty() {
        s += "  none\n";
    }
    for ((stage, reason), v) in drops {
        s += &format!("  {stage:<12} {reason:<28} {v}\n");
    }
    let mut xdp: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in counters
        .iter()
        .filter(|c| c.scope.starts_with("xdp ") && c.value > 0)
    {
        xdp.entry(c.scope.clone())
            .or_default()
            .push(format!("{}={}", c.name, c.value));
    }
    for (scope, v) in xdp {
        s += &format!("{scope}: {}\n", v.join(" "));
    }
    // The ctl socket and metrics port: clients served, refused and cut.
    let front: Vec<String> = counters
        .iter()
        .filter(|c| c.scope == "ctl front")
        .map(|c| format!("{}={}", c.name, c.value))
        .collect();
    if !front.is_empty() {
        s += &format!("ctl front: {}\n", front.join(" "));
    }
    let mut workers: Vec<&str> = Vec::new();
    for c in counters {
        if c.scope.starts_with("worker ") && !workers.contains(&c.scope.as_str()) {
            workers.push(&c.scope);
        }
    }
    for w in workers {
        let loops = get(counters, w, "loops");
        let idle = get(counters, w, "idle_loops");
        let busy = if loops > 0 {
            100.0 * (loops - idle) as f64 / loops as f64
        } else {
            0.0
        };
        let cpu = get(counters, w, "cpu_ms");
        // With a previous reading (`stats --watch`): the share of one core the worker used.
        let cpu_rate = match prev {
            Some((dt, old)) if dt > 0 => format!(
                " ({:.0}% of a core)",
                cpu.saturating_sub(get(old, w, "cpu_ms")) as f64 * 1e8 / dt as f64
            ),
            _ => String::new(),
        };
        s += &format!(
            "{w}: loops {loops}, with work {busy:.1}%, sleeps {}, cpu {}.{:02}s{cpu_rate}\n",
            get(counters, w, "sleeps"),
            cpu / 1000,
            cpu % 1000 / 10
        );
        s += &format!(
            "{w}: frames free {} rx {} held {} tx {}, ledger errors {}\n",
            get(counters, w, "frames_free"),
            get(counters, w, "frames_rx"),
            get(counters, w, "frames_held"),
            get(counters, w, "frames_tx"),
            get(counters, w, "ledger_errors")
        );
        // An engine older than the busy_ns row has none: no line.
        if let Some(c) = counters
            .iter()
            .find(|c| c.scope == w && c.name == "busy_ns")
        {
            s += &format!(
                "{w}: busy {}.{:06}s (loop iterations that found work)\n",
                c.value / 1_000_000_000,
                c.value % 1_000_000_000 / 1000
            );
        }
    }
    s
}

fn human(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// `ctl capture PORT --count N [--filter EXPR] --out FILE`: streams frames
/// (those the tcpdump expression accepts) into a pcap file. The expression
/// is compiled here, by libpcap; a bad one is refused before anything is
/// sent (exit code 2).
pub fn capture(
    socket: &Path,
    port: &str,
    count: u32,
    filter: Option<&str>,
    file: &Path,
    format: Format,
    out: &mut dyn Write,
) -> i32 {
    let filter = match filter.map(capture_filter).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "pktengine ctl: capture filter `{}`: {e}",
                filter.unwrap_or_default()
            );
            return 2;
        }
    };
    let mut frames: Vec<(u64, Vec<u8>)> = Vec::new();
    let last = request(
        socket,
        &Request::Capture {
            port: port.to_string(),
            count,
            filter,
        },
        |r| {
            if let Response::Frame { time_ns, data, .. } = r {
                frames.push((*time_ns, data.clone()));
            }
        },
    );
    let last = match last {
        Ok(Response::Done { .. }) => {
            match write_pcap(file, frames.iter().map(|(t, d)| (*t, d.as_slice()))) {
                Ok(n) => Ok(Response::Done {
                    message: format!("{n} frames written to {}", file.display()),
                }),
                Err(e) => Ok(Response::Error {
                    message: format!("writing {}: {e}", file.display()),
                }),
            }
        }
        other => other,
    };
    match format {
        Format::Text => finish(last, out),
        Format::Json => finish_json(Document::result("capture"), out, last, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every schema is some request's answer: a show command added to the
    /// engine without its line in `schema_of` gets its records refused by
    /// the client.
    #[test]
    fn every_schema_has_its_request() {
        let shows = [
            Request::Stats,
            Request::RouteShow,
            Request::ArpShow,
            Request::MacShow,
            Request::NatShow,
            Request::TcpShow,
            Request::ConnShow {
                filter: String::new(),
            },
            Request::LbShow,
            Request::FilterShow,
            Request::Trace { set: None },
        ];
        let answered: Vec<&str> = shows.iter().filter_map(schema_of).map(|s| s.name).collect();
        let all: Vec<&str> = records::SCHEMAS.iter().map(|s| s.name).collect();
        assert_eq!(answered, all, "in docs/JSON.md's order");
    }

    fn c(scope: &str, name: &str, value: u64) -> Counter {
        Counter {
            scope: scope.into(),
            name: name.into(),
            value,
        }
    }

    #[test]
    fn rates_from_two_readings() {
        let old = vec![
            c("port lan", "rx_packets", 1000),
            c("port lan", "rx_bytes", 64_000),
        ];
        let new = vec![
            c("port lan", "rx_packets", 3000),
            c("port lan", "rx_bytes", 192_000),
            c("drop ip4-forward", "ip4-no-route", 5),
            c("drop ip4-forward", "ip4-ttl-expired", 0),
        ];
        let s = render_stats(&new, Some((2_000_000_000, &old)));
        let lan = s.lines().find(|l| l.starts_with("lan")).unwrap();
        assert!(lan.contains("1.0k"), "{lan}"); // 2000 packets in 2 s
        assert!(lan.contains("512.0k"), "{lan}"); // 128000 bytes in 2 s = 512 kbit/s
        assert!(s.contains("ip4-no-route"));
        assert!(!s.contains("ip4-ttl-expired"), "zero drops are not listed");
    }

    #[test]
    fn xsk_counters_get_a_line_per_port() {
        let cs = vec![
            c("xsk lan", "rx_dropped", 0),
            c("xsk lan", "rx_ring_full", 7),
            c("xsk wan", "rx_dropped", 1),
        ];
        let s = render_stats(&cs, None);
        assert!(s.contains("xsk lan: rx_dropped 0 rx_ring_full 7\n"), "{s}");
        assert!(s.contains("xsk wan: rx_dropped 1\n"), "{s}");
    }

    /// The worker's busy time (`busy_ns`, the busy-polling worker's cost base in
    /// scripts/bench.sh's cost mode) gets a line of its own after the worker's others.
    #[test]
    fn worker_busy_time_gets_its_line() {
        let cs = vec![
            c("worker 0", "loops", 10),
            c("worker 0", "idle_loops", 4),
            c("worker 0", "busy_ns", 2_500_123_456),
        ];
        let s = render_stats(&cs, None);
        assert!(
            s.ends_with("worker 0: busy 2.500123s (loop iterations that found work)\n"),
            "{s}"
        );
        // An older engine without the row: no line.
        let s = render_stats(&cs[..2], None);
        assert!(!s.contains("busy "), "{s}");
    }

    /// A table in three `Table` messages (a worker dump) prints as one:
    /// every row once, in order, nothing between the chunks.
    #[test]
    fn a_table_in_several_messages_prints_as_one() {
        use super::super::ctl::{read_message, write_message};
        let dir = std::env::temp_dir().join(format!("pktengine-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let p = path.clone();
        let client = std::thread::spawn(move || {
            let mut out = Vec::new();
            let rc = run(&p, Format::Text, Request::NatShow, &mut out);
            (rc, String::from_utf8(out).unwrap())
        });
        let (mut stream, _) = listener.accept().unwrap();
        assert_eq!(
            read_message::<Request>(&mut stream).unwrap(),
            Some(Request::NatShow)
        );
        for chunk in 0..3 {
            let rows = (0..4).map(|i| format!("row {}", chunk * 4 + i)).collect();
            write_message(
                &mut stream,
                &Response::Table {
                    header: "nat sessions".into(),
                    rows,
                },
            )
            .unwrap();
        }
        write_message(
            &mut stream,
            &Response::Done {
                message: "12 sessions, 1 mappings".into(),
            },
        )
        .unwrap();
        let (rc, text) = client.join().unwrap();
        assert_eq!(rc, 0);
        let want: Vec<String> = (0..12)
            .map(|i| format!("row {i}"))
            .chain(["12 sessions, 1 mappings".to_string()])
            .collect();
        assert_eq!(text.lines().collect::<Vec<_>>(), want);
        drop(listener);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
