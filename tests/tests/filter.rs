//! The packet filter on a running engine between real hosts (issue 10):
//! h1 is an outside client (port `outside`), h2 a server (port `servers`).
use std::process::{Child, Stdio};

use pktengine_tests::engine::{example, text, Engine, RouterTopo};
use pktengine_tests::Netns;

fn sh(ns: &Netns, cmd: &str) -> std::process::Output {
    ns.command("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .output()
        .expect("sh")
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http(ns: &Netns, addr: &str, port: u16) -> Kill {
    Kill(
        ns.command("python3")
            .args(["-m", "http.server", &port.to_string(), "--bind", addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn curl(ns: &Netns, url: &str) -> std::process::Output {
    sh(
        ns,
        &format!("curl -sS -m 3 --retry 10 --retry-connrefused --retry-delay 0 -o /dev/null {url}"),
    )
}

fn start(t: &RouterTopo, tag: &str) -> Engine {
    let dir = Engine::dir(tag);
    Engine::start(
        &t.dut,
        &dir,
        &t.config(&example("filter.toml"), &dir.join("ctl.sock")),
        &[],
    )
    .expect("engine")
}

#[test]
fn servers_cannot_open_connections_outward() {
    let t = RouterTopo::new("fsyn").unwrap();
    let e = start(&t, "fsyn");
    let _srv = http(&t.h2, "198.19.1.2", 8080);
    let _cli = http(&t.h1, "198.18.1.2", 8081);
    // Outside → server: allowed, and the server's answers (SYN-ACK, data) pass.
    let o = curl(&t.h1, "http://198.19.1.2:8080/");
    assert!(
        o.status.success(),
        "client to server: {}\n{}",
        text(&o),
        e.log()
    );
    // Server → outside: its SYN is dropped.
    let o = sh(&t.h2, "curl -sS -m 2 -o /dev/null http://198.18.1.2:8081/");
    assert!(
        !o.status.success(),
        "the server opened a connection outward"
    );
    let show = e.ctl_ok(&["filter", "show"]);
    let line = show
        .lines()
        .find(|l| l.contains("iif servers tcp flags syn / syn,ack drop"))
        .unwrap();
    let hits: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(hits >= 1, "{show}");
    assert!(e.ctl_ok(&["stats"]).contains("filter-drop"));
}

#[test]
fn port_rules_reset_drop_and_prohibit() {
    let t = RouterTopo::new("fport").unwrap();
    let e = start(&t, "fport");
    let _a = http(&t.h2, "198.19.1.2", 9000);
    let _b = http(&t.h2, "198.19.1.2", 9002);
    let _c = http(&t.h2, "198.19.1.2", 8080);
    assert!(
        curl(&t.h1, "http://198.19.1.2:8080/").status.success(),
        "{}",
        e.log()
    );
    // reset: refused at once.
    let o = sh(&t.h1, "curl -sS -m 3 -o /dev/null http://198.19.1.2:9000/");
    assert!(
        text(&o).contains("Connection refused") || text(&o).contains("Couldn't connect"),
        "{}",
        text(&o)
    );
    // drop: a timeout.
    let o = sh(&t.h1, "curl -sS -m 2 -o /dev/null http://198.19.1.2:9002/");
    assert!(
        text(&o).contains("timed out") || text(&o).contains("Timeout"),
        "{}",
        text(&o)
    );
    // ICMP prohibited, from the engine.
    let o = text(&sh(&t.h1, "ping -c 1 -W 2 198.19.1.2"));
    assert!(
        o.contains("From 198.18.1.1") && o.contains("Packet filtered"),
        "{o}"
    );
}

#[test]
fn rules_change_at_run_time_and_prefix_drops_go_to_xdp() {
    let t = RouterTopo::new("frt").unwrap();
    let e = start(&t, "frt");
    let _srv = http(&t.h2, "198.19.1.2", 8080);
    assert!(curl(&t.h1, "http://198.19.1.2:8080/").status.success());
    e.ctl_ok(&[
        "filter", "add", "oif", "servers", "tcp", "dport", "8080", "drop",
    ]);
    assert!(
        !sh(&t.h1, "curl -sS -m 2 -o /dev/null http://198.19.1.2:8080/")
            .status
            .success()
    );
    let show = e.ctl_ok(&["filter", "show"]);
    let idx = show
        .lines()
        .find(|l| l.contains("tcp dport 8080 drop"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    e.ctl_ok(&["filter", "del", &idx]);
    assert!(curl(&t.h1, "http://198.19.1.2:8080/").status.success());
    // A leading source-prefix drop is done by the XDP program.
    e.ctl_ok(&[
        "filter",
        "add",
        "--at",
        "0",
        "ip",
        "saddr",
        "198.18.1.0/24",
        "drop",
    ]);
    assert!(
        !sh(&t.h1, "ping -c 2 -i 0.2 -W 1 198.18.1.1")
            .status
            .success(),
        "blocked at XDP, also toward the engine"
    );
    let stats = e.ctl_ok(&["stats"]);
    assert!(stats.contains("drop_src_prefix="), "{stats}");
    e.ctl_ok(&["filter", "del", "0"]);
    assert!(sh(&t.h1, "ping -c 2 -i 0.2 -W 2 198.18.1.1")
        .status
        .success());
    let bad = e.ctl(&["filter", "add", "tcp", "dport", "99999", "drop"]);
    assert!(
        !bad.status.success() && text(&bad).contains("bad port"),
        "{}",
        text(&bad)
    );
}
