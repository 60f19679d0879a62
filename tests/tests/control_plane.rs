//! The control plane cannot be held up or talked into anything (issue 20):
//! slow and hostile clients on the ctl socket and the metrics port while
//! traffic flows and an operator works; who may use the ctl socket.
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::control::ctl::{read_message, request, write_message, Request, Response};
use pktengine_tests::engine::{example, pktengine_bin, text, Engine, RouterTopo};

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A client that sends `bytes` one byte every `every`, reconnecting when cut,
/// until `stop`. Returns how many times the engine cut it with an answer.
fn trickle<S: Read + Write>(
    connect: impl Fn() -> Option<S>,
    bytes: Vec<u8>,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> u32 {
    let mut cut = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(mut s) = connect() else {
            std::thread::sleep(every);
            continue;
        };
        for b in &bytes {
            if stop.load(Ordering::Relaxed) || s.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(every);
        }
        let mut buf = [0u8; 512];
        if matches!(s.read(&mut buf), Ok(n) if n > 0) {
            cut += 1;
        }
    }
    cut
}

#[test]
fn slow_and_hostile_clients_do_not_hold_up_the_engine() {
    let t = RouterTopo::new("slow").unwrap();
    let dir = Engine::dir("slow");
    let sock = dir.join("ctl.sock");
    let e = Engine::start(&t.dut, &dir, &t.config(&example("router.toml"), &sock), &[]).unwrap();
    let pid = e.pid().unwrap();
    // Traffic through the engine the whole time.
    let ping =
        t.h1.command("ping")
            .args(["-c", "300", "-i", "0.01", "-W", "1", "-q", "198.19.1.2"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let rss0 = rss_kib(pid);

    // 50 ctl clients and 50 metrics clients, each trickling a byte every 400 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let mut req = Vec::new();
    write_message(&mut req, &Request::Stats).unwrap();
    let mut slow = Vec::new();
    for _ in 0..50 {
        let (p, r, s) = (sock.clone(), req.clone(), stop.clone());
        slow.push(std::thread::spawn(move || {
            trickle(
                || UnixStream::connect(&p).ok(),
                r,
                Duration::from_millis(400),
                s,
            )
        }));
    }
    // TCP sockets made in the DUT's namespace, used from here.
    for _ in 0..50 {
        let s = stop.clone();
        let dut = t.dut.path();
        slow.push(std::thread::spawn(move || {
            let connect = || {
                std::thread::scope(|sc| {
                    sc.spawn(|| {
                        engine::xsk::enter_netns(&dut).ok()?;
                        std::net::TcpStream::connect("127.0.0.1:9108").ok()
                    })
                    .join()
                    .ok()
                    .flatten()
                })
            };
            trickle(
                connect,
                b"GET /metrics HTTP/1.1\r\nHost: slow\r\n\r\n".to_vec(),
                Duration::from_millis(400),
                s,
            )
        }));
    }
    std::thread::sleep(Duration::from_millis(500));

    // The operator: route adds, each answered in under 100 ms.
    let mut took = Vec::new();
    for i in 0..20 {
        let t0 = Instant::now();
        let r = request(
            &sock,
            &Request::RouteAdd {
                route: format!("198.19.{}.0/24 via 198.19.1.2", 10 + i),
            },
            |_| {},
        )
        .unwrap();
        took.push(t0.elapsed());
        assert!(matches!(r, Response::Done { .. }), "{r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    took.sort();
    eprintln!(
        "route add under slowloris: median {:?}, max {:?}",
        took[took.len() / 2],
        took[took.len() - 1]
    );
    assert!(
        took.iter().all(|d| *d < Duration::from_millis(100)),
        "{took:?}"
    );
    assert!(e
        .ctl_ok(&["route", "show"])
        .contains("198.19.29.0/24 via 198.19.1.2"));

    // Oversized and truncated requests: errors, nothing allocated for them.
    for _ in 0..20 {
        let mut s = UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(&(1u32 << 30).to_be_bytes()).unwrap();
        match read_message::<Response>(&mut s) {
            Ok(Some(Response::Error { message })) => {
                assert!(message.contains("larger than"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        let mut s = UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(&req[..req.len() - 2]).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        match read_message::<Response>(&mut s) {
            Ok(Some(Response::Error { message })) => {
                assert!(message.contains("truncated"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
    // A reload applies while they trickle.
    let r = e.ctl_ok(&["reload"]);
    assert!(r.contains("reloaded"), "{r}");
    let cut = {
        std::thread::sleep(Duration::from_millis(2500));
        let rss1 = rss_kib(pid);
        eprintln!("engine RSS {rss0} KiB before, {rss1} KiB under 100 slow clients");
        assert!(rss1 < rss0 + 8 * 1024, "RSS grew from {rss0} to {rss1} KiB");
        // Stats still say what the front door did.
        let stats = e.ctl_ok(&["stats"]);
        assert!(stats.contains("request_deadline"), "{stats}");
        // The traffic went through all along.
        let o = ping.wait_with_output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let received: u32 = out
            .split(',')
            .find_map(|f| f.trim().strip_suffix(" received")?.parse().ok())
            .unwrap_or(0);
        eprintln!(
            "{}",
            out.lines()
                .find(|l| l.contains("packet loss"))
                .unwrap_or("")
        );
        assert!(received >= 297, "{out}");
        // SIGTERM with the slow clients still connected: out in under a second.
        let (st, dt) = e.stop(Duration::from_secs(3)).unwrap();
        assert!(st.success(), "exit {st}");
        assert!(dt < Duration::from_secs(1), "stopping took {dt:?}");
        stop.store(true, Ordering::Relaxed);
        slow.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    };
    // Every slow client was cut with an answer (2 s deadline, not per read).
    assert!(cut.iter().all(|&c| c >= 1), "{cut:?}");
    assert!(!sock.exists(), "the ctl socket was not removed");
}

/// A group made for one test, with `nobody` as its member; deleted on drop.
struct TempGroup {
    name: String,
    gid: u32,
}

impl TempGroup {
    fn new(tag: &str) -> TempGroup {
        let name = format!("pkte{}{tag}", std::process::id());
        let o = std::process::Command::new("groupadd")
            .args(["-U", "nobody", &name])
            .output()
            .unwrap();
        assert!(o.status.success(), "groupadd: {}", text(&o));
        let o = std::process::Command::new("getent")
            .args(["group", &name])
            .output()
            .unwrap();
        let gid = String::from_utf8_lossy(&o.stdout)
            .split(':')
            .nth(2)
            .unwrap()
            .parse()
            .unwrap();
        TempGroup { name, gid }
    }
}

impl Drop for TempGroup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("groupdel")
            .arg(&self.name)
            .status();
    }
}

#[test]
fn only_root_and_ctl_group_members_may_use_the_ctl_socket() {
    let g = TempGroup::new("ctl");
    let t = RouterTopo::new("grp").unwrap();
    let dir = Engine::dir("grp");
    let sock = dir.join("ctl.sock");
    let cfg = t.config(&example("router.toml"), &sock).replacen(
        "[engine]\n",
        &format!("[engine]\nctl_group = \"{}\"\n", g.name),
        1,
    );
    assert!(cfg.contains("ctl_group"), "{cfg}");
    let e = Engine::start(&t.dut, &dir, &cfg, &[]).unwrap();
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(&sock).unwrap();
    assert_eq!((m.mode() & 0o777, m.gid()), (0o660, g.gid));
    let bin = pktengine_bin();
    let ctl_as = |setpriv: &[&str]| {
        std::process::Command::new("setpriv")
            .args(setpriv)
            .arg(&bin)
            .args(["ctl", "--socket", sock.to_str().unwrap(), "route", "show"])
            .output()
            .unwrap()
    };
    // A member (nobody, listed in the group): served.
    let o = ctl_as(&["--reuid=nobody", "--regid=nogroup", "--init-groups"]);
    assert!(
        o.status.success() && text(&o).contains("198.18.1.0/24"),
        "{}",
        text(&o)
    );
    // Someone outside it: the socket file's mode stops them at connect.
    let o = ctl_as(&["--reuid=4242", "--regid=4242", "--clear-groups"]);
    assert!(
        !o.status.success() && text(&o).contains("ermission denied"),
        "{}",
        text(&o)
    );
    // Someone who passes the file's mode without being a member (a group
    // taken by other means): the engine's SO_PEERCRED check refuses them.
    let o = ctl_as(&[
        "--reuid=4242",
        "--regid=4242",
        &format!("--groups={}", g.gid),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("not in ctl_group"),
        "{}",
        text(&o)
    );
    assert!(e.log().contains("refused a client"), "{}", e.log());
    // Root, always.
    assert!(e.ctl_ok(&["stats"]).contains("refused_peer"));
}
