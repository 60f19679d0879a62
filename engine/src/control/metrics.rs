//! Optional Prometheus text metrics on a loopback port (`metrics_listen`).
//!
//! The front thread ([`super::front`]) serves scrapes with the same limits
//! as the ctl socket; each renders the counters `pktengine ctl stats` shows,
//! read by the control thread. A scrape is a short HTTP/1.0 exchange: no HTTP
//! crate is needed.

use std::fmt::Write as _;
use std::io;
use std::net::{SocketAddr, TcpListener};

use super::ctl::Counter;

/// Renders counters in the Prometheus text exposition format (version 0.0.4).
/// `scope` becomes a label: `port lan` -> `{port="lan"}`; names are prefixed `pktengine_`.
pub fn render(counters: &[Counter]) -> String {
    let mut out = String::new();
    let mut last_name = "";
    let mut sorted: Vec<&Counter> = counters.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name).then(a.scope.cmp(&b.scope)));
    for c in sorted {
        let name = sanitize(&c.name);
        if c.name != last_name {
            let _ = writeln!(out, "# TYPE pktengine_{name} counter");
            last_name = &c.name;
        }
        let labels = match c.scope.split_once(' ') {
            Some((k, v)) => format!("{{{}=\"{}\"}}", sanitize(k), v.replace('\\', "\\\\").replace('"', "\\\"")),
            None if c.scope.is_empty() => String::new(),
            None => format!("{{scope=\"{}\"}}", c.scope.replace('"', "\\\"")),
        };
        let _ = writeln!(out, "pktengine_{name}{labels} {}", c.value);
    }
    out
}

/// Metric and label names allow `[a-zA-Z0-9_]`.
fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// Binds the metrics listener on `addr`, which must be a loopback address:
/// the counters say much about the traffic, and the port has no
/// authentication. The front thread ([`super::front`]) serves it.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{addr} is not a loopback address")));
    }
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(scope: &str, name: &str, value: u64) -> Counter {
        Counter { scope: scope.into(), name: name.into(), value }
    }

    #[test]
    fn renders_exposition_format() {
        let text = render(&[c("port wan", "rx_packets", 7), c("port lan", "rx_packets", 5), c("worker 0", "drop.no-route", 2)]);
        assert_eq!(
            text,
            "# TYPE pktengine_drop_no_route counter\npktengine_drop_no_route{worker=\"0\"} 2\n\
             # TYPE pktengine_rx_packets counter\npktengine_rx_packets{port=\"lan\"} 5\npktengine_rx_packets{port=\"wan\"} 7\n"
        );
    }

    #[test]
    fn refuses_non_loopback() {
        assert!(bind("198.18.0.1:0".parse().unwrap()).is_err());
        assert!(bind("127.0.0.1:0".parse().unwrap()).is_ok());
    }
}
