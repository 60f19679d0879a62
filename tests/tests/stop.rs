//! Stopping under load (issue #20): 100 SIGTERMs to an engine that routes and NATs TCP and UDP
//! and terminates TCP itself; every one must end in exit status 0 within a second, with XDP
//! detached from both ports, the ctl socket removed and no engine process left.
//!
//! ```text
//!  h1 198.18.1.2 ── lan [engine: NAT 198.19.1.1, TCP echo :7] wan ── h2 198.19.1.2
//!  load client: TCP echo through the NAT (kernel ↔ kernel), TCP echo to the engine's own
//!  endpoint (198.18.1.1:7), UDP through the NAT (a steady flow, and a new flow every few ms)
//! ```
//!
//! The namespaces and the load run for the whole test; only the engine restarts. The load client
//! reconnects whenever a connection stalls (the NAT's mappings die with each engine), and
//! `pktengine ctl stats` runs every 100 ms as a monitoring agent would. Cycles alternate between
//! one worker serving both queues of each port and two workers, and the SIGTERM lands at
//! different moments: during set-up (after the engine installed its handler, before its ctl socket
//! exists), right after `go` (within 5 ms of the ctl socket appearing), during traffic (50 to
//! 900 ms later), and, in one cycle of 20, while the control thread waits on a ctl client that
//! connected and sends nothing: every worker has ended by the time the control loop looks again
//! (the race fixed in 7ba4ea5, which this makes deterministic).
//! `PKTENGINE_STOP_CYCLES=N` changes the number of cycles.
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pktengine_tests::bg::Bg;
use pktengine_tests::engine::{example, pktengine_bin, Engine, RouterTopo};
use pktengine_tests::Netns;

/// h2: a TCP echo server on :9000 and a UDP echo server on :9001. Server sockets give up after
/// 3 s without progress (the peer's NAT mapping is gone once the engine restarts).
const SERVER: &str = r#"
import socket, threading
def tcp_conn(c):
    c.settimeout(3)
    try:
        while True:
            b = c.recv(65536)
            if not b: break
            c.sendall(b)
    except OSError:
        pass
    c.close()
def tcp():
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("198.19.1.2", 9000)); l.listen(128)
    while True:
        c, _ = l.accept()
        threading.Thread(target=tcp_conn, args=(c,), daemon=True).start()
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("198.19.1.2", 9001))
    while True:
        b, a = u.recvfrom(2048)
        u.sendto(b, a)
threading.Thread(target=tcp, daemon=True).start()
threading.Thread(target=udp, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"#;

/// h1: the load, forever; every 20 ms it writes its cumulative counters to argv[1]
/// (`nat_tcp_bytes endpoint_tcp_bytes udp_answers connections`).
const CLIENT: &str = r#"
import os, socket, sys, threading, time
out = sys.argv[1]
c = {"nat": 0, "ep": 0, "udp": 0, "conns": 0}
def tcp(key, addr, port):
    data = os.urandom(32768)
    while True:
        s = None
        try:
            s = socket.create_connection((addr, port), timeout=0.2)
            s.settimeout(0.3)
            c["conns"] += 1
            while True:
                s.sendall(data)
                n = 0
                while n < len(data):
                    b = s.recv(65536)
                    if not b: raise OSError("closed")
                    n += len(b)
                c[key] += n
        except OSError:
            time.sleep(0.005)
        finally:
            if s: s.close()
def udp_steady():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.05)
    while True:
        s.sendto(b"x" * 512, ("198.19.1.2", 9001))
        try:
            s.recv(2048); c["udp"] += 1
        except OSError:
            pass
def udp_new_flows():
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.03)
        s.sendto(b"new flow", ("198.19.1.2", 9001))
        try:
            s.recv(2048); c["udp"] += 1
        except OSError:
            pass
        s.close()
        time.sleep(0.003)
for args in (("nat", "198.19.1.2", 9000), ("nat", "198.19.1.2", 9000), ("ep", "198.18.1.1", 7), ("ep", "198.18.1.1", 7)):
    threading.Thread(target=tcp, args=args, daemon=True).start()
threading.Thread(target=udp_steady, daemon=True).start()
threading.Thread(target=udp_new_flows, daemon=True).start()
print("ready", flush=True)
while True:
    with open(out + ".tmp", "w") as f:
        f.write("%d %d %d %d\n" % (c["nat"], c["ep"], c["udp"], c["conns"]))
    os.replace(out + ".tmp", out)
    time.sleep(0.02)
"#;

/// The load client's counters: bytes echoed through the NAT, bytes echoed by the engine's TCP
/// endpoint, UDP answers, connections opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Load([u64; 4]);

impl Load {
    fn read(path: &Path) -> Load {
        let s = std::fs::read_to_string(path).unwrap_or_default();
        let mut v = [0u64; 4];
        for (i, w) in s.split_whitespace().take(4).enumerate() {
            v[i] = w.parse().unwrap_or(0);
        }
        Load(v)
    }

    fn since(self, before: Load) -> Load {
        let mut v = [0u64; 4];
        for (i, x) in v.iter_mut().enumerate() {
            *x = self.0[i].saturating_sub(before.0[i]);
        }
        Load(v)
    }
}

/// examples/nat.toml on two-queue ports, with the engine's TCP echo on 198.18.1.1:7; `workers`
/// 1 (core 1, both queues) or 2 (cores 0 and 1, a queue each).
fn config(t: &RouterTopo, ctl: &Path, workers: usize) -> String {
    let cores = if workers == 1 {
        "cores = [1]"
    } else {
        "cores = [0, 1]"
    };
    let cfg = t
        .config(&example("nat.toml"), ctl)
        .replace("cores = [1]", cores)
        .replace("mode = \"router\"", "mode = \"router\"\nqueues = 2");
    assert!(
        cfg.contains(cores) && cfg.matches("queues = 2").count() == 2,
        "examples/nat.toml changed:\n{cfg}"
    );
    cfg + "\n[[tcp]]\napp = \"echo\"\nport = 7\n"
}

/// How long a stop may take.
const STOP_BOUND: Duration = Duration::from_secs(1);
/// The same with a silent ctl client connected: the front thread holds it, not the control
/// thread, so the stop is as quick (before the front thread, the control thread read its
/// request for up to 2 s before it looked at the stop flag).
const STOP_BOUND_CTL_STUCK: Duration = STOP_BOUND;

/// When the SIGTERM is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// This long after the engine installed its SIGTERM handler (set-up: binding, attaching).
    SetUp(Duration),
    /// This long after the ctl socket appeared (it is created just before `go`).
    AfterGo(Duration),
    /// This long after the ctl socket appeared, with the load running.
    Traffic(Duration),
    /// This long after the ctl socket appeared, a ctl client connects and sends nothing; the
    /// SIGTERM follows 50 ms later, while the control thread waits for its request.
    CtlStuck(Duration),
}

impl When {
    /// Cycle `i`'s moment: 20% set-up, 20% right after go, 55% during traffic, 5% with a
    /// silent ctl client; delays spread.
    fn of(i: usize) -> When {
        let ms = Duration::from_millis;
        let us = Duration::from_micros;
        match i % 20 {
            0 | 5 | 10 | 15 => When::SetUp(ms([0, 1, 2, 4, 7, 10, 15, 25, 40, 60][(i / 5) % 10])),
            1 | 6 | 11 | 16 => {
                When::AfterGo(us(
                    [0, 100, 250, 500, 1000, 1500, 2000, 3000, 4000, 5000][(i / 5) % 10]
                ))
            }
            19 => When::CtlStuck(ms(100 + ((i * 37) % 300) as u64)),
            _ => When::Traffic(ms(50 + ((i * 137) % 850) as u64)),
        }
    }

    fn bound(self) -> Duration {
        if matches!(self, When::CtlStuck(_)) {
            STOP_BOUND_CTL_STUCK
        } else {
            STOP_BOUND
        }
    }

    fn label(self) -> &'static str {
        match self {
            When::SetUp(_) => "set-up",
            When::AfterGo(_) => "after go",
            When::Traffic(_) => "traffic",
            When::CtlStuck(_) => "ctl stuck",
        }
    }
}

/// An engine process, killed (SIGKILL) and reaped if still there when dropped (a panic).
struct Proc(Option<Child>);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `SigCgt` of `pid` has SIGTERM, and `pid` is the engine (not `ip netns exec` before its exec).
fn catches_sigterm(pid: u32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() != "pktengine" {
        return false;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|m| m & (1 << (libc::SIGTERM - 1)) != 0)
}

fn has_xdp(ns: &Netns, dev: &str) -> bool {
    let o = ns
        .ip(&["-d", "link", "show", "dev", dev])
        .expect("ip link show");
    String::from_utf8_lossy(&o.stdout).contains("xdp")
}

/// Processes whose command line names `config` (an engine of this test still alive).
fn engines_running(config: &Path) -> Vec<u32> {
    let want = config.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if cmd.split(|&b| b == 0).any(|a| a == want.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

/// `pktengine ctl stats` every 100 ms, whether or not an engine is up (answers are counted);
/// stopped and joined on drop (also on panic).
struct Poller {
    run: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Poller {
    fn start(bin: &Path, ctl: &Path) -> Poller {
        let (run, answered) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicU64::new(0)));
        let (r, a, bin, ctl) = (
            run.clone(),
            answered.clone(),
            bin.to_path_buf(),
            ctl.to_path_buf(),
        );
        let thread = std::thread::spawn(move || {
            while r.load(Ordering::Relaxed) {
                let st = Command::new(&bin)
                    .args([
                        Path::new("ctl"),
                        Path::new("--socket"),
                        &ctl,
                        Path::new("stats"),
                    ])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                if st.is_ok_and(|s| s.success()) {
                    a.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Poller {
            run,
            answered,
            thread: Some(thread),
        }
    }

    /// Stops it; the number of answered requests.
    fn stop(mut self) -> u64 {
        self.halt();
        self.answered.load(Ordering::Relaxed)
    }

    fn halt(&mut self) {
        self.run.store(false, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.halt();
    }
}

/// What one cycle saw.
#[derive(Debug)]
struct Cycle {
    i: usize,
    workers: usize,
    when: When,
    status: Option<ExitStatus>,
    took: Duration,
    /// The ctl socket existed when the SIGTERM was sent.
    ctl_up: bool,
    /// Load moved while the engine ran (from its ctl socket to the SIGTERM).
    load: Load,
    /// From the spawn to what the cycle waited for (SIGTERM handler, or ctl socket).
    start: Duration,
    problems: Vec<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn sigterm_under_tcp_and_nat_load_always_exits_zero() {
    let cycles: usize = std::env::var("PKTENGINE_STOP_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let t = RouterTopo::with_queues("stop", 2).expect("topology");
    // h2 only knows its own subnet: answers can only come back through the NAT.
    t.h2.ip(&["route", "del", "default"])
        .expect("h2 default route");
    let dir = Engine::dir("stop");
    let ctl = dir.join("ctl.sock");
    let cfgs: Vec<PathBuf> = (1..=2)
        .map(|w| {
            let p = dir.join(format!("engine-{w}w.toml"));
            std::fs::write(&p, config(&t, &ctl, w)).expect("config");
            p
        })
        .collect();
    let counters = dir.join("load");
    let _server = Bg::spawn(&t.h2, dir.join("server.log"), &["-c", SERVER]);
    let _client = Bg::spawn(
        &t.h1,
        dir.join("client.log"),
        &["-c", CLIENT, counters.to_str().expect("path")],
    );
    let bin = pktengine_bin();
    let poller = Poller::start(&bin, &ctl);
    let (lan, wan) = (t.left.b.name.clone(), t.right.a.name.clone());
    let began = Instant::now();
    let mut seen = Vec::new();

    for i in 0..cycles {
        let workers = 1 + i % 2;
        let when = When::of(i);
        let cfg = &cfgs[workers - 1];
        let log = dir.join(format!("engine-{i:03}.log"));
        let out = std::fs::File::create(&log).expect("engine log");
        let child = t
            .dut
            .command(bin.to_str().expect("path"))
            .args(["run", "--config", cfg.to_str().expect("path")])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("pktengine");
        // `ip netns exec` execs the engine: the child's pid is the engine's.
        let pid = child.id();
        let mut p = Proc(Some(child));
        let mut problems = Vec::new();
        let spawned = Instant::now();
        let mut early_exit = None;
        let mut load_from = None;
        let mut silent: Option<UnixStream> = None;
        // Wait for the moment this cycle's SIGTERM is for.
        let ready = |p: &mut Proc, early_exit: &mut Option<ExitStatus>, f: &dyn Fn() -> bool| loop {
            if f() {
                return true;
            }
            if let Ok(Some(st)) = p.0.as_mut().expect("child").try_wait() {
                *early_exit = Some(st);
                return false;
            }
            if spawned.elapsed() > Duration::from_secs(20) {
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        let (armed, start) = match when {
            When::SetUp(d) => {
                let ok = ready(&mut p, &mut early_exit, &|| catches_sigterm(pid));
                let start = spawned.elapsed();
                std::thread::sleep(d);
                (ok, start)
            }
            When::AfterGo(d) | When::Traffic(d) | When::CtlStuck(d) => {
                let ok = ready(&mut p, &mut early_exit, &|| ctl.exists());
                let start = spawned.elapsed();
                load_from = Some(Load::read(&counters));
                std::thread::sleep(d);
                if matches!(when, When::CtlStuck(_)) {
                    // Accepted at the end of a control loop turn (20 ms at most).
                    silent = UnixStream::connect(&ctl).ok();
                    if silent.is_none() {
                        problems.push("could not connect to the ctl socket".into());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                (ok, start)
            }
        };
        let ctl_up = ctl.exists();
        let load = load_from
            .map(|l| Load::read(&counters).since(l))
            .unwrap_or_default();
        let mut status = early_exit;
        let mut took = Duration::ZERO;
        if !armed {
            problems.push(match early_exit {
                Some(st) => format!("the engine exited with {st} before the SIGTERM"),
                None => "the engine did not get ready within 20 s".into(),
            });
        } else {
            let sent = Instant::now();
            // SAFETY: kill(2) on our own child, which has not been reaped yet.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            let child = p.0.as_mut().expect("child");
            loop {
                if let Ok(Some(st)) = child.try_wait() {
                    took = sent.elapsed();
                    status = Some(st);
                    break;
                }
                if sent.elapsed() > Duration::from_secs(5) {
                    took = sent.elapsed();
                    problems.push("still running 5 s after the SIGTERM (killed)".into());
                    break;
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            if took > when.bound() {
                problems.push(format!("took {took:?} to exit"));
            }
        }
        drop(silent);
        drop(p);
        match status {
            Some(st) if st.code() == Some(0) => {}
            Some(st) => problems.push(format!("exit status {st}")),
            None => {}
        }
        for dev in [&lan, &wan] {
            if has_xdp(&t.dut, dev) {
                problems.push(format!("XDP still attached to {dev}"));
            }
        }
        if ctl.exists() {
            problems.push("ctl socket left behind".into());
            let _ = std::fs::remove_file(&ctl);
        }
        if Path::new(&format!("/proc/{pid}")).exists() {
            problems.push(format!("process {pid} still exists"));
        }
        let left = engines_running(cfg);
        if !left.is_empty() {
            problems.push(format!("engine processes left: {left:?}"));
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("panicked") {
            problems.push("a thread panicked".into());
        }
        if problems.is_empty() {
            let _ = std::fs::remove_file(&log);
        } else {
            let tail: Vec<&str> = text.lines().rev().take(12).collect();
            eprintln!(
                "cycle {i} ({workers} workers, {when:?}): {}\n  log {}:\n    {}",
                problems.join("; "),
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n    ")
            );
        }
        seen.push(Cycle {
            i,
            workers,
            when,
            status,
            took,
            ctl_up,
            load,
            start,
            problems,
        });
    }

    // Summary.
    let total = began.elapsed();
    let failed: Vec<&Cycle> = seen.iter().filter(|c| !c.problems.is_empty()).collect();
    let exit0 = seen
        .iter()
        .filter(|c| c.status.and_then(|s| s.code()) == Some(0))
        .count();
    let exit1 = seen
        .iter()
        .filter(|c| c.status.and_then(|s| s.code()) == Some(1))
        .count();
    let signalled = seen
        .iter()
        .filter(|c| c.status.is_some_and(|s| s.code().is_none()))
        .count();
    // The silent-ctl-client cycles have their own bound: not in the overall figures.
    let mut took: Vec<Duration> = seen
        .iter()
        .filter(|c| c.status.is_some() && !matches!(c.when, When::CtlStuck(_)))
        .map(|c| c.took)
        .collect();
    took.sort();
    let fmt = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    for kind in ["set-up", "after go", "traffic", "ctl stuck"] {
        let of: Vec<&Cycle> = seen.iter().filter(|c| c.when.label() == kind).collect();
        let mut d: Vec<Duration> = of
            .iter()
            .filter(|c| c.status.is_some())
            .map(|c| c.took)
            .collect();
        d.sort();
        eprintln!(
            "  {kind:>8}: {} stops, {} exit 0, {} failed, ctl socket up at SIGTERM in {}, stop p50 {} max {}",
            of.len(),
            of.iter().filter(|c| c.status.and_then(|s| s.code()) == Some(0)).count(),
            of.iter().filter(|c| !c.problems.is_empty()).count(),
            of.iter().filter(|c| c.ctl_up).count(),
            fmt(percentile(&d, 0.5)),
            fmt(d.last().copied().unwrap_or_default())
        );
    }
    let starts = |set_up: bool| {
        let mut d: Vec<Duration> = seen
            .iter()
            .filter(|c| matches!(c.when, When::SetUp(_)) == set_up)
            .map(|c| c.start)
            .collect();
        d.sort();
        format!(
            "p50 {} max {}",
            fmt(percentile(&d, 0.5)),
            fmt(d.last().copied().unwrap_or_default())
        )
    };
    eprintln!(
        "  from the spawn: SIGTERM handler installed {}, ctl socket up {}",
        starts(true),
        starts(false)
    );
    eprintln!("  ctl stats answered {} times", poller.stop());
    // Traffic cycles long enough for the load to reconnect: how many saw each kind of load move.
    let long: Vec<&Cycle> = seen
        .iter()
        .filter(|c| matches!(c.when, When::Traffic(d) if d >= Duration::from_millis(400)))
        .collect();
    let moved = |k: usize| long.iter().filter(|c| c.load.0[k] > 0).count();
    let sum = |k: usize| long.iter().map(|c| c.load.0[k]).sum::<u64>();
    eprintln!(
        "  load in the {} traffic cycles of 400 ms or more: TCP through the NAT in {} ({} KiB), \
         the engine's TCP in {} ({} KiB), UDP through the NAT in {} ({} answers), {} connections",
        long.len(),
        moved(0),
        sum(0) / 1024,
        moved(1),
        sum(1) / 1024,
        moved(2),
        sum(2),
        sum(3)
    );
    eprintln!(
        "stop summary: {} SIGTERMs, exit 0: {exit0}, exit 1: {exit1}, killed by a signal: {signalled}, \
         failures with exit 0: {}; stop took p50 {} p90 {} max {} (without the ctl-stuck cycles); {:.1} s in all",
        seen.len(),
        failed.iter().filter(|c| c.status.and_then(|s| s.code()) == Some(0)).count(),
        fmt(percentile(&took, 0.5)),
        fmt(percentile(&took, 0.9)),
        fmt(took.last().copied().unwrap_or_default()),
        total.as_secs_f64()
    );
    assert!(
        failed.is_empty(),
        "{} of {} stops failed:\n{}",
        failed.len(),
        seen.len(),
        failed
            .iter()
            .map(|c| format!(
                "  cycle {} ({} workers, {:?}): {}",
                c.i,
                c.workers,
                c.when,
                c.problems.join("; ")
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The load really ran: most long traffic cycles moved every kind of it.
    for (k, what) in [
        (0, "TCP through the NAT"),
        (1, "the engine's TCP"),
        (2, "UDP through the NAT"),
    ] {
        assert!(
            moved(k) * 2 >= long.len(),
            "{what} moved in only {} of {} long traffic cycles",
            moved(k),
            long.len()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A second engine started while the first still holds the queues (the kernel releases an
/// AF_XDP socket's queue after the process is gone, asynchronously): its bind sees EBUSY, waits
/// for the queue (engine/src/xsk/socket.rs `BusyRetry`) and comes up once the first is killed.
#[test]
fn engine_started_while_the_queues_are_held_waits_for_them() {
    let t = RouterTopo::with_queues("stopq", 2).expect("topology");
    let dir = Engine::dir("stopq");
    let bin = pktengine_bin();
    let start = |n: usize| {
        let ctl = dir.join(format!("ctl-{n}.sock"));
        let cfg = dir.join(format!("engine-{n}.toml"));
        std::fs::write(&cfg, config(&t, &ctl, 1)).expect("config");
        let log = dir.join(format!("engine-{n}.log"));
        let out = std::fs::File::create(&log).expect("engine log");
        let child = t
            .dut
            .command(bin.to_str().expect("path"))
            .args(["run", "--config", cfg.to_str().expect("path")])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("pktengine");
        (Proc(Some(child)), ctl, log)
    };
    let wait_for = |p: &mut Proc, ctl: &Path, log: &Path, within: Duration| {
        let t0 = Instant::now();
        while !ctl.exists() {
            if let Ok(Some(st)) = p.0.as_mut().expect("child").try_wait() {
                panic!(
                    "engine exited with {st}:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            assert!(t0.elapsed() < within, "engine not up within {within:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        t0.elapsed()
    };
    let (mut first, ctl1, log1) = start(1);
    wait_for(&mut first, &ctl1, &log1, Duration::from_secs(20));
    let (mut second, ctl2, log2) = start(2);
    // The second engine's workers reach bind(2) while the first holds every queue.
    std::thread::sleep(Duration::from_millis(400));
    let killed = Instant::now();
    drop(first); // SIGKILL and reap
    let up = wait_for(&mut second, &ctl2, &log2, Duration::from_secs(5));
    let text = std::fs::read_to_string(&log2).unwrap_or_default();
    eprintln!(
        "second engine up {:?} after the first was killed",
        killed.elapsed().min(up)
    );
    assert!(
        text.contains("for the queue to be released"),
        "the second engine did not wait for a queue:\n{text}"
    );
    // SAFETY: kill(2) on our own child, not reaped yet.
    unsafe { libc::kill(second.0.as_ref().expect("child").id() as i32, libc::SIGTERM) };
    let st = second.0.as_mut().expect("child").wait().expect("wait");
    second.0 = None;
    assert_eq!(st.code(), Some(0), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
