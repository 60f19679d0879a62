//! pktengine as an L2 learning switch between real Linux hosts (issue 8):
//! ARP and ping among hosts, learning (flood first, one port after),
//! aging, station moves, VLAN isolation and trunk tags, a TCP transfer.
//! Every test builds its own namespaces (198.18.0.0/15 only) and engine.
//! Frames with invented station MACs are sent and read with raw sockets,
//! so what each host sees is exact.
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pktengine_tests::engine::{example, text, Engine, SwitchTopo};
use pktengine_tests::frames::udp_frame;
use pktengine_tests::packet::{capture, send_frames};
use pktengine_tests::Netns;

const H1: usize = 0;
const H2: usize = 1;
const H3: usize = 2;
const H4: usize = 3;
const TRUNK: usize = 4;
const SEEN: Duration = Duration::from_secs(3);
const NOT_SEEN: Duration = Duration::from_millis(1200);

fn start(t: &SwitchTopo, tag: &str, edit: impl FnOnce(String) -> String) -> Engine {
    let dir = Engine::dir(tag);
    let cfg = edit(t.config(&example("switch.toml"), &dir.join("ctl.sock")));
    let e = Engine::start(&t.dut, &dir, &cfg, &[]).expect("engine start");
    // Wait until frames cross (the workers start right after the ctl socket appears).
    let o = sh(&t.hosts[H1], "for i in 1 2 3 4 5 6 7 8 9 10; do ping -c 1 -W 1 198.18.10.2 >/dev/null && exit 0; done; exit 1");
    assert!(
        o.status.success(),
        "the switch never forwarded:\n{}",
        e.log()
    );
    e
}

fn sh(ns: &Netns, cmd: &str) -> std::process::Output {
    ns.command("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .output()
        .expect("sh")
}

fn ok(ns: &Netns, cmd: &str, e: &Engine) -> String {
    let o = sh(ns, cmd);
    assert!(
        o.status.success(),
        "`{cmd}` failed:\n{}\nengine log:\n{}\nstats:\n{}",
        text(&o),
        e.log(),
        text(&e.ctl(&["stats"]))
    );
    text(&o)
}

/// An invented station MAC (locally administered).
fn station(i: u8) -> [u8; 6] {
    [0x02, 0x5e, 0x10, 0x00, 0x00, i]
}

fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    udp_frame(
        dst,
        src,
        "198.18.10.101".parse().unwrap(),
        "198.18.10.102".parse().unwrap(),
        4000,
        4001,
        b"pktengine switch test",
    )
}

fn tag(f: &[u8], tci: u16) -> Vec<u8> {
    let mut t = f[..12].to_vec();
    t.extend_from_slice(&[0x81, 0x00]);
    t.extend_from_slice(&tci.to_be_bytes());
    t.extend_from_slice(&f[12..]);
    t
}

/// Sends `f` from host `from` and returns, for each host in `watch`, the
/// frames with `f`'s source MAC it received (waiting up to `wait`).
fn deliver(
    t: &SwitchTopo,
    from: usize,
    f: &[u8],
    watch: &[usize],
    wait: Duration,
) -> Vec<Vec<Vec<u8>>> {
    let src: [u8; 6] = f[6..12].try_into().unwrap();
    let caps: Vec<_> = watch
        .iter()
        .map(|&i| capture(&t.hosts[i], t.host_if(i), src, 1, wait).expect("capture"))
        .collect();
    send_frames(&t.hosts[from], t.host_if(from), &[f.to_vec()]).expect("send");
    caps.into_iter()
        .map(|c| c.finish().expect("capture"))
        .collect()
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The `ctl mac show` line of a MAC, if any.
fn mac_line(e: &Engine, m: [u8; 6]) -> Option<String> {
    let out = e.ctl_ok(&["mac", "show"]);
    out.lines()
        .find(|l| l.contains(&mac_text(m)))
        .map(str::to_string)
}

#[test]
fn arp_and_ping_among_all_hosts_and_the_table_shows_them() {
    let t = SwitchTopo::new("swp").unwrap();
    let e = start(&t, "swp", |c| c);
    for i in [H1, H2, H3] {
        for j in [H1, H2, H3] {
            if i != j {
                ok(
                    &t.hosts[i],
                    &format!("ping -c 2 -i 0.2 -W 2 198.18.10.{}", j + 1),
                    &e,
                );
                // IPv6: neighbor discovery's solicited-node multicast is flooded in the VLAN.
                ok(
                    &t.hosts[i],
                    &format!("ping -6 -c 2 -i 0.2 -W 2 2001:2:0:10::{}", j + 1),
                    &e,
                );
            }
        }
    }
    // ARP resolved through the switch: each host knows the others' MACs.
    let neigh = ok(&t.hosts[H1], "ip neigh show", &e);
    for j in [H2, H3] {
        assert!(
            neigh.contains(&mac_text(t.host_mac(j))),
            "h1 did not resolve h{}:\n{neigh}",
            j + 1
        );
    }
    for (i, port) in [(H1, "p1"), (H2, "p2"), (H3, "p3")] {
        let line = mac_line(&e, t.host_mac(i))
            .unwrap_or_else(|| panic!("h{} not in the MAC table", i + 1));
        assert!(line.contains(&format!("vlan 10 port {port} age")), "{line}");
    }
}

#[test]
fn first_frame_floods_then_learned_stations_get_one_port() {
    let t = SwitchTopo::new("swl").unwrap();
    let e = start(&t, "swl", |c| {
        c.replace("static = []", "static = [\"02:5e:10:00:00:28 port p3\"]")
    });
    let (x, y) = (station(1), station(2));
    // Y is unknown: X's frame is flooded to every VLAN 10 port (the trunk tagged), not VLAN 20.
    let xy = frame(y, x);
    let seen = deliver(&t, H1, &xy, &[H2, H3, TRUNK, H4], SEEN);
    assert_eq!(seen[0], vec![xy.clone()], "h2");
    assert_eq!(seen[1], vec![xy.clone()], "h3");
    assert_eq!(seen[2], vec![tag(&xy, 10)], "the trunk gets it tagged 10");
    assert!(seen[3].is_empty(), "h4 is in VLAN 20");
    // Y answers from h2: X is known on p1, so only h1 gets it.
    let yx = frame(x, y);
    let seen = deliver(&t, H2, &yx, &[H1, H3, TRUNK], NOT_SEEN);
    assert_eq!(seen[0], vec![yx], "h1");
    assert!(
        seen[1].is_empty() && seen[2].is_empty(),
        "the reply was flooded: {seen:?}"
    );
    // And now X to Y goes to h2 only.
    let seen = deliver(&t, H1, &xy, &[H2, H3, TRUNK], NOT_SEEN);
    assert_eq!(seen[0], vec![xy]);
    assert!(seen[1].is_empty() && seen[2].is_empty(), "{seen:?}");
    assert!(mac_line(&e, x).unwrap().contains("vlan 10 port p1"));
    assert!(mac_line(&e, y).unwrap().contains("vlan 10 port p2"));
    // A static entry: never flooded, listed as static, kept by a flush.
    let to_static = frame(station(40), x);
    let seen = deliver(&t, H1, &to_static, &[H3, H2, TRUNK], NOT_SEEN);
    assert_eq!(seen[0], vec![to_static]);
    assert!(seen[1].is_empty() && seen[2].is_empty(), "{seen:?}");
    assert!(mac_line(&e, station(40))
        .unwrap()
        .contains("vlan 10 port p3 static"));
    // A flush forgets the learned ones: flooding again.
    assert!(e.ctl_ok(&["mac", "flush"]).contains("flushed"));
    assert!(mac_line(&e, y).is_none());
    assert!(
        mac_line(&e, station(40)).is_some(),
        "static entries survive a flush"
    );
    let seen = deliver(&t, H1, &frame(y, station(3)), &[H3], SEEN);
    assert_eq!(seen[0].len(), 1, "flooded after the flush");
}

#[test]
fn idle_entries_age_out_and_flooding_resumes() {
    let t = SwitchTopo::new("swa").unwrap();
    let e = start(&t, "swa", |c| c.replace("aging_s = 300", "aging_s = 2"));
    let (x, y) = (station(11), station(12));
    deliver(&t, H1, &frame([0xff; 6], x), &[H2], SEEN);
    assert!(mac_line(&e, x).is_some());
    let seen = deliver(&t, H2, &frame(x, y), &[H1, H3], NOT_SEEN);
    assert_eq!((seen[0].len(), seen[1].len()), (1, 0), "known: one port");
    // 2 s aging, swept every 0.5 s.
    std::thread::sleep(Duration::from_millis(3500));
    assert!(
        mac_line(&e, x).is_none(),
        "X did not age out:\n{}",
        e.ctl_ok(&["mac", "show"])
    );
    let seen = deliver(&t, H2, &frame(x, y), &[H1, H3], SEEN);
    assert_eq!(
        (seen[0].len(), seen[1].len()),
        (1, 1),
        "aged out: flooded again"
    );
}

#[test]
fn a_station_moving_to_another_port_is_followed_at_once() {
    let t = SwitchTopo::new("swm").unwrap();
    let e = start(&t, "swm", |c| c);
    let (x, y) = (station(21), station(22));
    deliver(&t, H1, &frame([0xff; 6], x), &[H2], SEEN);
    assert!(mac_line(&e, x).unwrap().contains("port p1"));
    // X now speaks from h3's port.
    deliver(&t, H3, &frame([0xff; 6], x), &[H2], SEEN);
    assert!(
        mac_line(&e, x).unwrap().contains("port p3"),
        "{:?}",
        mac_line(&e, x)
    );
    let seen = deliver(&t, H2, &frame(x, y), &[H1, H3], NOT_SEEN);
    assert_eq!(
        (seen[0].len(), seen[1].len()),
        (0, 1),
        "traffic follows the move"
    );
    // On the trunk too (VLAN 10, tagged).
    deliver(&t, TRUNK, &tag(&frame([0xff; 6], x), 10), &[H2], SEEN);
    assert!(mac_line(&e, x).unwrap().contains("port tr"));
    let seen = deliver(&t, H2, &frame(x, y), &[H3, TRUNK], SEEN);
    assert_eq!(seen[0].len(), 0);
    assert_eq!(seen[1], vec![tag(&frame(x, y), 10)]);
}

#[test]
fn vlans_isolate_and_the_trunk_carries_both_with_their_tags() {
    let t = SwitchTopo::new("swv").unwrap();
    let e = start(&t, "swv", |c| c);
    // Same subnet, other VLAN: ARP never reaches h4.
    let o = sh(&t.hosts[H1], "ping -c 2 -i 0.3 -W 1 198.18.10.4");
    assert!(
        !o.status.success(),
        "h1 reached h4 across VLANs:\n{}",
        text(&o)
    );
    let o = sh(&t.hosts[H1], "ping -6 -c 2 -i 0.3 -W 1 2001:2:0:10::4");
    assert!(
        !o.status.success(),
        "h1 reached h4 across VLANs over IPv6:\n{}",
        text(&o)
    );
    let (a, z, w) = (station(31), station(32), station(33));
    // VLAN 10 broadcast: trunk tagged 10, not h4.
    let b10 = frame([0xff; 6], a);
    let seen = deliver(&t, H1, &b10, &[TRUNK, H4], NOT_SEEN);
    assert_eq!(seen[0], vec![tag(&b10, 10)]);
    assert!(seen[1].is_empty());
    // VLAN 20 broadcast: trunk tagged 20, none of h1..h3.
    let b20 = frame([0xff; 6], z);
    let seen = deliver(&t, H4, &b20, &[TRUNK, H1, H2, H3], NOT_SEEN);
    assert_eq!(seen[0], vec![tag(&b20, 20)]);
    assert!(seen[1..].iter().all(Vec::is_empty), "{seen:?}");
    // From the trunk: tag 20 reaches h4 untagged (Z is known there), tag 10 reaches h1.
    let to_z = frame(z, w);
    let seen = deliver(&t, TRUNK, &tag(&to_z, 20), &[H4, H1], NOT_SEEN);
    assert_eq!(seen[0], vec![to_z], "tag popped");
    assert!(seen[1].is_empty());
    let to_a = frame(a, w);
    let seen = deliver(&t, TRUNK, &tag(&to_a, 10), &[H1, H4], NOT_SEEN);
    assert_eq!(seen[0], vec![to_a]);
    assert!(seen[1].is_empty());
    // The same station W is a different entry in each VLAN.
    let table = e.ctl_ok(&["mac", "show"]);
    let w_lines = table.lines().filter(|l| l.contains(&mac_text(w))).count();
    assert_eq!(w_lines, 2, "{table}");
    // VLAN 30 is not on the trunk; untagged frames have no VLAN there.
    let seen = deliver(
        &t,
        TRUNK,
        &tag(&frame([0xff; 6], station(34)), 30),
        &[H1, H4],
        NOT_SEEN,
    );
    assert!(seen.iter().all(Vec::is_empty));
    let seen = deliver(
        &t,
        TRUNK,
        &frame([0xff; 6], station(35)),
        &[H1, H4],
        NOT_SEEN,
    );
    assert!(seen.iter().all(Vec::is_empty));
    // A VLAN 20 tag on an access port of VLAN 10.
    let seen = deliver(
        &t,
        H1,
        &tag(&frame([0xff; 6], station(36)), 20),
        &[H4, TRUNK],
        NOT_SEEN,
    );
    assert!(seen.iter().all(Vec::is_empty));
    let stats = e.ctl_ok(&["stats"]);
    let count = |name: &str| -> u64 {
        stats
            .lines()
            .find(|l| l.contains(name))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(count("l2-vlan-not-allowed") >= 2, "{stats}");
    assert!(count("l2-untagged-on-trunk") >= 1, "{stats}");
}

/// A Python HTTP server serving `dir`.
struct Http(Child);
impl Drop for Http {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sha256(path: &std::path::Path) -> String {
    let o = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn tcp_transfer_across_the_switch() {
    let t = SwitchTopo::new("swt").unwrap();
    let e = start(&t, "swt", |c| c);
    let dir = e.dir.join("www");
    std::fs::create_dir_all(&dir).unwrap();
    let mut data = vec![0u8; 4 << 20];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut data)
        .unwrap();
    std::fs::write(dir.join("blob"), &data).unwrap();
    let srv = t.hosts[H2]
        .command("python3")
        .args([
            "-m",
            "http.server",
            "8080",
            "--bind",
            "198.18.10.2",
            "--directory",
            dir.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("http.server");
    let _srv = Http(srv);
    let out = e.dir.join("got");
    let cmd = format!("curl -sS --retry 20 --retry-connrefused --retry-delay 0 -m 60 -o {} http://198.18.10.2:8080/blob", out.display());
    ok(&t.hosts[H1], &cmd, &e);
    assert_eq!(sha256(&out), sha256(&dir.join("blob")), "content differs");
    // Once learned, the transfer did not flood: h3 saw (almost) none of it.
    let stats = e.ctl_ok(&["stats"]);
    let p3_tx: u64 = stats
        .lines()
        .find(|l| l.starts_with("p3 "))
        .and_then(|l| l.split_whitespace().nth(6))
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(
        p3_tx < 1_000_000,
        "p3 got {p3_tx} bytes of a 4 MB transfer between h1 and h2:\n{stats}"
    );
}

/// Counters of a running engine, through the ctl protocol: (scope, name) → value.
fn counters(e: &Engine) -> std::collections::HashMap<(String, String), u64> {
    let mut got = std::collections::HashMap::new();
    let last = engine::control::ctl::request(&e.ctl, &engine::control::ctl::Request::Stats, |r| {
        if let engine::control::ctl::Response::Stats { counters, .. } = r {
            for c in counters {
                got.insert((c.scope.clone(), c.name.clone()), c.value);
            }
        }
    });
    assert!(last.is_ok(), "{last:?}");
    got
}

/// Two workers, two queues per port: each worker switches the frames of
/// its queue on the one shared MAC table, so a station learned by one is
/// used by the other (no flooding of a stream that crosses both).
#[test]
fn two_workers_share_one_mac_table() {
    let t = SwitchTopo::with_queues("sw2", 2).unwrap();
    let e = start(&t, "sw2", |c| {
        c.replace("cores = [1]", "cores = [0, 1]")
            .replace("mode = \"switch\"", "mode = \"switch\"\nqueues = 2")
    });
    ok(&t.hosts[H2], "ping -c 1 -W 2 198.18.10.1", &e);
    let h1 = t.host_mac(H1);
    let cap = capture(
        &t.hosts[H3],
        t.host_if(H3),
        h1,
        1000,
        Duration::from_secs(4),
    )
    .expect("capture");
    let listener = t.hosts[H2]
        .command("python3")
        // SO_RCVBUFFORCE (33): a 4 MiB receive buffer, so a listener descheduled on a busy machine
        // does not lose datagrams the engine delivered (300 small skbs outgrow the default 208 KiB).
        .args(["-c", "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.setsockopt(socket.SOL_SOCKET,33,4<<20)\ns.bind(('198.18.10.2',9999))\ns.settimeout(3)\nn=0\nprint('ready',flush=True)\ntry:\n    while True:\n        s.recvfrom(100)\n        n+=1\nexcept socket.timeout:\n    pass\nprint(n)"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("listener");
    let mut listener = listener;
    let mut ready = [0u8; 6];
    listener
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut ready)
        .unwrap();
    // A new socket per datagram: a new TX hash, so both veth queues (both workers) carry them.
    ok(&t.hosts[H1], "python3 -c \"import socket\nfor i in range(300):\n  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n  s.sendto(b'x',('198.18.10.2',9999))\n  s.close()\"", &e);
    let out = listener.wait_with_output().unwrap();
    let got: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert_eq!(
        got,
        300,
        "datagrams lost; engine stats:\n{}",
        text(&e.ctl(&["stats"]))
    );
    let flooded = cap
        .finish()
        .unwrap()
        .iter()
        .filter(|f| pktengine_tests::frames::ipv4_flow(f).is_some_and(|x| x.3 == 9999))
        .count();
    assert_eq!(flooded, 0, "h3 saw {flooded} datagrams of the h1→h2 stream");
    let c = counters(&e);
    let input = |w: &str| {
        c.get(&(w.to_string(), "stage l2-input".to_string()))
            .copied()
            .unwrap_or(0)
    };
    assert!(
        input("worker 0") > 0 && input("worker 1") > 0,
        "both workers switch: {} {}",
        input("worker 0"),
        input("worker 1")
    );
    let learned: u64 = ["worker 0", "worker 1"]
        .iter()
        .map(|w| {
            c.get(&(w.to_string(), "stage l2-learned".to_string()))
                .copied()
                .unwrap_or(0)
        })
        .sum();
    let table = e.ctl_ok(&["mac", "show"]);
    let keys: Vec<String> = table
        .lines()
        .filter(|l| l.starts_with("br0 "))
        .map(|l| l.split(" port ").next().unwrap_or("").to_string())
        .collect();
    let unique: std::collections::BTreeSet<&String> = keys.iter().collect();
    assert_eq!(
        unique.len(),
        keys.len(),
        "a station is stored twice:\n{table}"
    );
    assert_eq!(
        learned,
        keys.len() as u64,
        "each station learned exactly once, by one of the workers:\n{table}"
    );
}
