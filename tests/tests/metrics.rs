//! The metrics endpoint as Prometheus sees it (issue 25): `promtool check
//! metrics` on a real scrape of a running engine, and a real Prometheus
//! server in the engine's namespace that scrapes it and answers a query with
//! the traffic the test sent through the engine. Needs the Debian
//! `prometheus` package (`scripts/deps.sh` installs it).
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pktengine_tests::engine::{example, text, Engine, RouterTopo};
use pktengine_tests::Netns;

/// The engine's metrics port in the DUT namespace (examples/router.toml).
const METRICS: &str = "127.0.0.1:9108";

/// `GET path` on `addr` from inside `ns`: (status line, body).
fn http_get(ns: &Netns, addr: &str, path: &str) -> (String, String) {
    let (addr, path) = (addr.to_string(), path.to_string());
    ns.run(move || {
        let mut s = TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        (
            head.lines().next().unwrap_or("").to_string(),
            body.to_string(),
        )
    })
}

fn scrape(ns: &Netns) -> String {
    let (status, body) = http_get(ns, METRICS, "/metrics");
    assert_eq!(status, "HTTP/1.0 200 OK", "{body}");
    body
}

/// The value of the series `series` (name and labels exactly as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The sum of the samples of `name` whose labels contain every one of `labels` (`key="value"`).
fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn sh(ns: &Netns, cmd: &str) -> std::process::Output {
    ns.command("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .output()
        .expect("sh")
}

/// Pings h2 from h1 `n` times; returns the replies received.
fn ping(t: &RouterTopo, n: u32, dst: &str) -> u32 {
    let o = sh(&t.h1, &format!("ping -c {n} -i 0.05 -W 2 {dst}"));
    let out = text(&o);
    out.split(", ")
        .find_map(|w| w.strip_suffix(" received")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{out}"))
}

#[test]
fn promtool_accepts_a_scrape_of_a_running_engine() {
    let t = RouterTopo::new("pt").unwrap();
    let dir = Engine::dir("pt");
    let e = Engine::start(
        &t.dut,
        &dir,
        &t.config(&example("router.toml"), &dir.join("ctl.sock")),
        &[],
    )
    .unwrap();
    assert_eq!(ping(&t, 5, "198.19.1.2"), 5, "{}", e.log());
    assert_eq!(ping(&t, 3, "2001:2:0:2::2"), 3, "{}", e.log());
    let body = scrape(&t.dut);
    let file = dir.join("scrape.txt");
    std::fs::write(&file, &body).unwrap();
    let o = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool: {e} (the Debian package `prometheus` has it: scripts/deps.sh)")
        });
    assert!(
        o.status.success() && o.stdout.is_empty() && o.stderr.is_empty(),
        "promtool check metrics: {}\n{body}",
        text(&o)
    );

    // One HELP and one TYPE per family, and the values agree with what was sent and with ctl.
    let helps = body.lines().filter(|l| l.starts_with("# HELP ")).count();
    let types = body.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(helps, types);
    let families: std::collections::HashSet<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    assert_eq!(families.len(), types, "a family twice");
    // 5 echo requests and 5 replies crossed ip4-forward, nothing else did.
    assert_eq!(
        sum(
            &body,
            "pktengine_stage_packets_total",
            &["stage=\"ip4-forward\""]
        ),
        10.0,
        "{body}"
    );
    assert_eq!(
        sum(
            &body,
            "pktengine_stage_packets_total",
            &["stage=\"ip6-forward\""]
        ),
        6.0,
        "{body}"
    );
    assert!(
        sample(&body, "pktengine_port_rx_packets_total{port=\"lan\"}").unwrap() >= 8.0,
        "{body}"
    );
    assert!(
        sample(&body, "pktengine_port_tx_packets_total{port=\"wan\"}").unwrap() >= 8.0,
        "{body}"
    );
    assert!(
        sample(
            &body,
            "pktengine_xdp_packets_total{port=\"lan\",verdict=\"to_engine\"}"
        )
        .unwrap()
            >= 8.0,
        "{body}"
    );
    let routes = e.ctl_ok(&["route", "show"]);
    let v4 = routes.lines().filter(|l| !l.contains(':')).count() as f64;
    let v6 = routes.lines().filter(|l| l.contains(':')).count() as f64;
    assert_eq!(
        sample(&body, "pktengine_routes{family=\"ipv4\"}"),
        Some(v4),
        "{routes}"
    );
    assert_eq!(
        sample(&body, "pktengine_routes{family=\"ipv6\"}"),
        Some(v6),
        "{routes}"
    );
    // A neighbour table and a scrape that saw the same table: the hosts' own IPv6 traffic (a
    // link-local neighbour) may add an entry between two readings.
    let (mut arp, mut now) = (String::new(), body.clone());
    for _ in 0..5 {
        arp = e.ctl_ok(&["arp", "show"]);
        if sum(&now, "pktengine_neighbors", &[]) == arp.lines().count() as f64 {
            break;
        }
        now = scrape(&t.dut);
    }
    assert_eq!(
        sum(&now, "pktengine_neighbors", &[]),
        arp.lines().count() as f64,
        "{arp}"
    );
    assert!(
        sample(&body, "pktengine_worker_busy_seconds_total{worker=\"0\"}").unwrap() > 0.0,
        "{body}"
    );
    assert!(
        sample(&body, "pktengine_umem_frames{worker=\"0\",place=\"free\"}").unwrap() > 0.0,
        "{body}"
    );
    assert!(
        sample(&body, "process_resident_memory_bytes").unwrap() > 1e6,
        "{body}"
    );

    // Figures: a scrape of this engine (one worker, two ports), its size and time.
    let mut times = Vec::new();
    for _ in 0..20 {
        let t0 = Instant::now();
        let b = scrape(&t.dut);
        times.push(t0.elapsed());
        assert!(b.len() > 1000);
    }
    times.sort();
    eprintln!(
        "scrape: {} bytes, {} samples, {} families; time p50 {:?}, max {:?}",
        body.len(),
        body.lines().filter(|l| !l.starts_with('#')).count(),
        families.len(),
        times[times.len() / 2],
        times[times.len() - 1]
    );
    assert!(
        times[times.len() / 2] < Duration::from_millis(100),
        "{times:?}"
    );
}

#[test]
fn promtool_accepts_a_scrape_of_an_engine_with_nat_tcp_conntrack_and_two_workers() {
    let t = RouterTopo::with_queues("pn", 2).unwrap();
    let dir = Engine::dir("pn");
    // metrics_listen belongs to [engine]: before the first [[port]].
    let cfg = t
        .config(&example("nat.toml"), &dir.join("ctl.sock"))
        .replace("cores = [1]", "cores = [0, 1]")
        .replace("mode = \"router\"", "mode = \"router\"\nqueues = 2")
        .replacen("[[port]]", &format!("metrics_listen = \"{METRICS}\"\n\n[[port]]"), 1)
        + "\n[[tcp]]\napp = \"echo\"\nport = 7\n"
        // The stateful filter too, on the NAT's table (the pings' session is their tracked connection).
        + "\n[filter]\nrules = [\"ct state established,related accept\", \"ct state invalid drop\", \"iif lan ct state new accept\"]\npolicy = { wan = \"drop\" }\n";
    assert!(
        cfg.matches("queues = 2").count() == 2 && cfg.matches("metrics_listen").count() == 1,
        "examples/nat.toml changed:\n{cfg}"
    );
    let e = Engine::start(&t.dut, &dir, &cfg, &[]).unwrap();
    assert_eq!(ping(&t, 5, "198.19.1.2"), 5, "{}", e.log());
    let echo = "import socket; s = socket.create_connection(('198.18.1.1', 7), timeout=5); s.sendall(b'hello'); \
                assert s.recv(5) == b'hello'; s.close()";
    let o = t.h1.command("python3").args(["-c", echo]).output().unwrap();
    assert!(o.status.success(), "{}\n{}", text(&o), e.log());
    // The TCP endpoint publishes its gauges every 10 ms of its worker's loop.
    let t0 = Instant::now();
    let body = loop {
        let b = scrape(&t.dut);
        let tracked = sum(&b, "pktengine_conntrack_packets_total", &[]) >= 10.0;
        if (tracked && sum(&b, "pktengine_tcp_opened_total", &["how=\"accepted\""]) >= 1.0)
            || t0.elapsed() > Duration::from_secs(5)
        {
            break b;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let file = dir.join("scrape.txt");
    std::fs::write(&file, &body).unwrap();
    let o = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .expect("promtool");
    assert!(
        o.status.success() && o.stdout.is_empty() && o.stderr.is_empty(),
        "promtool check metrics: {}\n{body}",
        text(&o)
    );
    assert_eq!(
        sum(&body, "pktengine_tcp_opened_total", &["how=\"accepted\""]),
        1.0,
        "{body}"
    );
    assert!(
        sum(&body, "pktengine_tcp_rx_bytes_total", &[]) >= 5.0,
        "{body}"
    );
    // The pings' ICMP session, on whichever worker owns it; the limit on both.
    assert_eq!(sum(&body, "pktengine_nat_sessions", &[]), 1.0, "{body}");
    assert!(
        sample(&body, "pktengine_nat_sessions_limit{worker=\"1\"}").unwrap() > 0.0,
        "{body}"
    );
    assert_eq!(
        sum(
            &body,
            "pktengine_stage_packets_total",
            &["stage=\"nat-out\""]
        ),
        5.0,
        "{body}"
    );
    // One tracked connection, the NAT session itself; the first request new, the rest established.
    assert_eq!(
        sum(&body, "pktengine_conntrack_entries", &[]),
        1.0,
        "{body}"
    );
    assert!(
        sample(&body, "pktengine_conntrack_entries_limit{worker=\"1\"}").unwrap() > 0.0,
        "{body}"
    );
    assert_eq!(
        sum(
            &body,
            "pktengine_conntrack_packets_total",
            &["state=\"new\""]
        ),
        1.0,
        "{body}"
    );
    assert_eq!(
        sum(
            &body,
            "pktengine_conntrack_packets_total",
            &["state=\"established\""]
        ),
        9.0,
        "{body}"
    );
    assert_eq!(
        sum(
            &body,
            "pktengine_conntrack_packets_total",
            &["state=\"invalid\""]
        ),
        0.0,
        "{body}"
    );
    assert_eq!(
        sum(
            &body,
            "pktengine_stage_packets_total",
            &["stage=\"nat-in\""]
        ),
        5.0,
        "{body}"
    );
    for w in ["0", "1"] {
        assert!(
            sample(
                &body,
                &format!("pktengine_worker_loops_total{{worker=\"{w}\"}}")
            )
            .unwrap()
                > 0.0,
            "{body}"
        );
    }
    let families = body.lines().filter(|l| l.starts_with("# TYPE ")).count();
    eprintln!(
        "scrape (NAT, TCP, stateful filter, 2 workers): {} bytes, {} samples, {families} families",
        body.len(),
        body.lines().filter(|l| !l.starts_with('#')).count()
    );
}

/// A Prometheus server in a namespace, killed (and its storage removed) on drop, also on panic.
struct Prometheus {
    child: Option<Child>,
    dir: PathBuf,
    addr: String,
}

impl Prometheus {
    /// Starts `prometheus` in `ns` on a free port of the namespace's 127.0.0.1,
    /// scraping `target` every `interval`, with its own configuration and storage under `dir`.
    fn start(ns: &Netns, dir: &Path, target: &str, interval: &str) -> Prometheus {
        let dir = dir.join("prometheus");
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("prometheus.yml");
        std::fs::write(
            &cfg,
            format!(
                "global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n\
                 scrape_configs:\n  - job_name: pktengine\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        // A free port of the namespace (a race with nothing: the namespace is the test's).
        let port = ns.run(|| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        });
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = ns
            .command("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus (the Debian package `prometheus`: scripts/deps.sh)");
        let mut p = Prometheus {
            child: Some(child),
            dir,
            addr,
        };
        let t0 = Instant::now();
        loop {
            if let Some(Ok(Some(st))) = p.child.as_mut().map(Child::try_wait) {
                panic!("prometheus exited with {st}: {}", p.log());
            }
            let ready = ns.run({
                let a = p.addr.clone();
                move || TcpStream::connect(&a).is_ok()
            }) && http_get(ns, &p.addr, "/-/ready").0.contains(" 200 ");
            if ready {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "prometheus not ready after 60 s: {}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("prometheus ready on {} after {:?}", p.addr, t0.elapsed());
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query: the result vector as (labels, value).
    fn query(&self, ns: &Netns, q: &str) -> Vec<(serde_json::Value, f64)> {
        let (status, body) = http_get(
            ns,
            &self.addr,
            &format!("/api/v1/query?query={}", urlencode(q)),
        );
        assert!(status.contains(" 200 "), "{q}: {status}\n{body}");
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(v["status"], "success", "{body}");
        v["data"]["result"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|r| {
                (
                    r["metric"].clone(),
                    r["value"][1]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(f64::NAN),
                )
            })
            .collect()
    }

    /// The one value of `q`, or None while the result is empty.
    fn scalar(&self, ns: &Netns, q: &str) -> Option<f64> {
        let r = self.query(ns, q);
        assert!(r.len() <= 1, "{q}: {r:?}");
        r.first().map(|x| x.1)
    }

    /// Waits (up to `within`) until `q` has the value `want`; returns the last value seen.
    fn wait_for(&self, ns: &Netns, q: &str, want: f64, within: Duration) -> Option<f64> {
        let t0 = Instant::now();
        loop {
            let v = self.scalar(ns, q);
            if v == Some(want) || t0.elapsed() > within {
                return v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_prometheus_server_scrapes_the_engine_and_sees_the_pings() {
    let t = RouterTopo::new("ps").unwrap();
    let dir = Engine::dir("ps");
    let e = Engine::start(
        &t.dut,
        &dir,
        &t.config(&example("router.toml"), &dir.join("ctl.sock")),
        &[],
    )
    .unwrap();
    let prom = Prometheus::start(&t.dut, &dir, METRICS, "1s");
    // The first scrape: the target is up, every sample taken.
    let up = prom.wait_for(
        &t.dut,
        "up{job=\"pktengine\"}",
        1.0,
        Duration::from_secs(20),
    );
    assert_eq!(up, Some(1.0), "target not up: {}\n{}", prom.log(), e.log());
    let forwarded = "sum(pktengine_stage_packets_total{job=\"pktengine\",stage=\"ip4-forward\"})";
    assert_eq!(
        prom.scalar(&t.dut, forwarded),
        Some(0.0),
        "nothing crossed the engine yet"
    );
    let samples = prom
        .scalar(&t.dut, "scrape_samples_scraped{job=\"pktengine\"}")
        .unwrap();
    let families = prom
        .query(
            &t.dut,
            "count by (__name__) ({job=\"pktengine\",__name__=~\"pktengine_.*|process_.*\"})",
        )
        .len();
    assert!(
        samples > 100.0 && families > 20,
        "{samples} samples, {families} families"
    );

    // 20 pings through the engine: 20 requests and 20 replies forwarded, as Prometheus sees them.
    let n = 20;
    assert_eq!(ping(&t, n, "198.19.1.2"), n, "{}", e.log());
    let want = f64::from(2 * n);
    let got = prom.wait_for(&t.dut, forwarded, want, Duration::from_secs(20));
    assert_eq!(
        got,
        Some(want),
        "Prometheus's view of ip4-forward\n{}",
        e.ctl_ok(&["stats"])
    );
    let lan = prom
        .scalar(&t.dut, "pktengine_port_rx_packets_total{port=\"lan\"}")
        .unwrap();
    let wan = prom
        .scalar(&t.dut, "pktengine_port_tx_packets_total{port=\"wan\"}")
        .unwrap();
    assert!(
        lan >= f64::from(n) && wan >= f64::from(n),
        "lan rx {lan}, wan tx {wan}"
    );
    // A query over time works on the engine's counters (a rate over the pings' seconds).
    let rate = prom
        .scalar(
            &t.dut,
            "sum(increase(pktengine_stage_packets_total{stage=\"ip4-forward\"}[1m]))",
        )
        .unwrap();
    assert!(rate > 0.0, "increase {rate}");
    let busy = prom
        .scalar(
            &t.dut,
            "rate(pktengine_worker_busy_seconds_total{worker=\"0\"}[1m])",
        )
        .unwrap();
    assert!((0.0..=1.0).contains(&busy), "busy ratio {busy}");
    // And Prometheus had nothing to complain about.
    let (_, targets) = http_get(&t.dut, &prom.addr, "/api/v1/targets");
    let v: serde_json::Value = serde_json::from_str(&targets).unwrap();
    let target = &v["data"]["activeTargets"][0];
    assert_eq!(target["health"], "up", "{targets}");
    assert_eq!(target["lastError"], "", "{targets}");
    eprintln!(
        "prometheus: {samples} samples per scrape, {families} families, last scrape {}s",
        target["lastScrapeDuration"]
    );
}
