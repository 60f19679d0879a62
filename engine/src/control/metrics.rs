//! Optional Prometheus text metrics on a loopback port (`metrics_listen`).
//!
//! The control thread polls [`MetricsServer::poll`] between its other duties;
//! each scrape renders the same counters `pktengine ctl stats` shows. A scrape
//! is a short HTTP/1.0 exchange, so a plain non-blocking `TcpListener` is enough:
//! no HTTP crate and no extra thread.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

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

/// A loopback-only HTTP endpoint serving `/metrics`.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
}

impl MetricsServer {
    /// Listens on `addr`, which must be a loopback address.
    pub fn bind(addr: SocketAddr) -> io::Result<MetricsServer> {
        if !addr.ip().is_loopback() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{addr} is not a loopback address")));
        }
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(MetricsServer { listener })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves every scrape waiting now; `counters` is called once per scrape.
    /// Returns how many were served. Never blocks on accept.
    pub fn poll(&self, counters: &mut dyn FnMut() -> Vec<Counter>) -> io::Result<usize> {
        let mut served = 0;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    // A misbehaving client costs at most the timeouts, never the engine.
                    let _ = serve_one(stream, counters);
                    served += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(served),
                Err(e) => return Err(e),
            }
        }
    }
}

fn serve_one(mut s: TcpStream, counters: &mut dyn FnMut() -> Vec<Counter>) -> io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    s.set_write_timeout(Some(Duration::from_millis(500)))?;
    let mut req = [0u8; 1024];
    let mut n = 0;
    // Read until the end of the request head (or the buffer is full).
    while n < req.len() {
        let m = s.read(&mut req[n..])?;
        if m == 0 {
            break;
        }
        n += m;
        if req[..n].windows(4).any(|w| w == b"\r\n\r\n") || req[..n].windows(2).any(|w| w == b"\n\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&req[..n]);
    let path = head.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = if head.starts_with("GET ") && (path == "/metrics" || path == "/") {
        ("200 OK", render(&counters()))
    } else {
        ("404 Not Found", String::from("only GET /metrics is served\n"))
    };
    write!(
        s,
        "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    s.flush()
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
        assert!(MetricsServer::bind("198.18.0.1:0".parse().unwrap()).is_err());
    }

    #[test]
    fn serves_a_scrape() {
        let srv = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = srv.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        });
        let mut served = 0;
        for _ in 0..400 {
            served += srv.poll(&mut || vec![c("port lan", "rx_packets", 42)]).unwrap();
            if served > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(served, 1);
        let out = client.join().unwrap();
        assert!(out.starts_with("HTTP/1.0 200 OK\r\n"), "{out}");
        assert!(out.ends_with("pktengine_rx_packets{port=\"lan\"} 42\n"), "{out}");
    }
}
