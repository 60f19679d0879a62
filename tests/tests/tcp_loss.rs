//! TCP under loss (issue 21): 20 MB echoed both ways through 2% loss and
//! 1% reordering, once by the engine's echo app and once by a kernel echo
//! server behind the same engine, with 64 KiB and 1 MiB buffers; every byte
//! checked by hash, and the engine must finish within a bound set from the
//! kernel's time measured in the same test.
//!
//! ```text
//!  h1 client ── lan [pktengine: [impair] on lan, echo app on 198.18.1.1:7] wan ── h2 kernel echo 198.19.1.2:7
//! ```
//!
//! Why this is fair: the `[impair]` stage sits on the lan port's receive
//! burst and transmit flush (`Worker::poll_once`, `Worker::flush_tx`), so it
//! sees every frame of that port, the segments of the engine's own TCP and
//! the frames it routes to and from h2 alike: both servers get the same 2%
//! loss and 1% reordering in both directions, from the same client, over the
//! same links and the same worker. SACK is off in h1 and h2
//! (`net.ipv4.tcp_sack=0`, per namespace): the engine has none, and the
//! reference is the kernel without it. Timestamps stay at the default (on)
//! on both servers.
//! The kernel server gets the engine's buffers: SO_RCVBUF and SO_SNDBUF of
//! the buffer size (forced: root may pass net.core.rmem_max) and its window
//! clamped to it (TCP_WINDOW_CLAMP), so neither side offers a larger window.
//!
//! The bound with 1 MiB buffers: engine time <= max(2 x kernel time,
//! kernel time + 5 s); with 64 KiB, max(3 x kernel, kernel + 10 s) (see the
//! test). One
//! transfer through random loss varies from run to run by its retransmission
//! time-outs (each at least 200 ms, doubled when it repeats); the factor 2
//! absorbs that variation and the cost of a debug-built engine, the 5 s
//! floor keeps a fast kernel run (a few seconds, where two or three extra
//! time-outs make the difference) from setting a bound no run could keep.
//! A TCP whose retransmission timer backs off to tens of seconds (issue 21)
//! is far outside it. The engine's run is cut off at the bound, so a failing
//! run costs the bound, not minutes. Both times are printed.
use std::process::Stdio;

use pktengine_tests::bg::Bg;
use pktengine_tests::engine::{example, text, Engine, RouterTopo};

const N: usize = 20 * 1000 * 1000;

/// The echo client: `python3 -c ECHO HOST LIMIT_S`. Sends N bytes while a
/// thread reads the echo; prints `done SECONDS BYTES HASH_OK` or, cut off at
/// LIMIT_S, `cut SECONDS BYTES`.
const ECHO: &str = r#"
import hashlib, os, socket, sys, threading, time
host, limit = sys.argv[1], float(sys.argv[2])
N = 20 * 1000 * 1000
data = (os.urandom(1 << 20) * 20)[:N]
want = hashlib.sha256(data).digest()
s = socket.create_connection((host, 7), timeout=10)
h = hashlib.sha256(); got = 0
def reader():
    global got
    while got < N:
        try:
            b = s.recv(1 << 20)
        except OSError:
            break
        if not b: break
        h.update(b); got += len(b)
t0 = time.time()
s.settimeout(limit)
r = threading.Thread(target=reader, daemon=True); r.start()
try:
    s.sendall(data)
except OSError:
    pass
r.join(max(0.0, limit - (time.time() - t0)))
dt = time.time() - t0
if got == N:
    print("done %.3f %d %s" % (dt, got, h.digest() == want), flush=True)
else:
    print("cut %.3f %d" % (dt, got), flush=True)
os._exit(0)
"#;

/// The kernel's echo server in h2: one connection at a time, buffers and
/// window as the engine's.
const KERNEL_ECHO: &str = include_str!("../../scripts/kernel-echo.py");

#[derive(Debug, Clone, Copy)]
enum Run {
    /// Every byte back, hash checked; seconds.
    Done(f64),
    /// Cut off at the limit with this many bytes back.
    Cut(f64, u64),
}

fn echo(t: &RouterTopo, host: &str, limit_s: f64) -> Run {
    let o =
        t.h1.command("timeout")
            .args([
                &format!("{}", limit_s.ceil() as u64 + 30),
                "python3",
                "-c",
                ECHO,
                host,
                &format!("{limit_s:.1}"),
            ])
            .stdin(Stdio::null())
            .output()
            .expect("python3");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let f: Vec<&str> = out.split_whitespace().collect();
    match f.as_slice() {
        ["done", secs, bytes, ok] => {
            assert_eq!(*bytes, N.to_string(), "echo from {host}: {out}");
            assert_eq!(
                *ok, "True",
                "the echo from {host} is what was sent (SHA-256)"
            );
            Run::Done(secs.parse().expect("seconds"))
        }
        ["cut", secs, bytes] => Run::Cut(
            secs.parse().expect("seconds"),
            bytes.parse().expect("bytes"),
        ),
        _ => panic!("echo client to {host} failed:\n{}", text(&o)),
    }
}

/// A kernel's retransmission time-outs and retransmitted segments so far,
/// from `nstat` in its namespace (absolute counters).
fn nstat(ns: &pktengine_tests::netns::Netns) -> (u64, u64) {
    let o = ns
        .command("nstat")
        .args(["-az", "TcpExtTCPTimeouts", "TcpRetransSegs"])
        .output()
        .expect("nstat");
    let out = String::from_utf8_lossy(&o.stdout);
    let get = |k: &str| {
        out.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("TcpExtTCPTimeouts"), get("TcpRetransSegs"))
}

/// One test: the kernel reference first (its time sets the bound), then the
/// engine, cut off at the bound.
/// `factor` and `floor_s` set the bound: max(factor x kernel, kernel + floor_s).
fn echo_through_loss(tag: &str, buffer: u32, factor: f64, floor_s: f64) {
    let t = RouterTopo::new(tag).unwrap();
    for ns in [&t.h1, &t.h2] {
        ns.sysctl("net.ipv4.tcp_sack", "0").unwrap();
    }
    let dir = Engine::dir(tag);
    let cfg = t.config(&example("router.toml"), &dir.join("ctl.sock"))
        + &format!(
            r#"
[[tcp]]
app = "echo"
port = 7

[tcp_stack]
send_buffer = {buffer}
recv_buffer = {buffer}

[impair]
drop = 0.02
reorder = 0.01
seed = 21
ports = ["lan"]
direction = "both"
"#
        );
    let e = Engine::start(&t.dut, &dir, &cfg, &[]).expect("engine start");
    let _srv = Bg::spawn(
        &t.h2,
        dir.join("kernel-echo.log"),
        &["-c", KERNEL_ECHO, &buffer.to_string()],
    );

    let (h2_to0, h2_rt0) = nstat(&t.h2);
    let (h1_to0, h1_rt0) = nstat(&t.h1);
    let kernel = match echo(&t, "198.19.1.2", 90.0) {
        Run::Done(s) => s,
        Run::Cut(s, got) => panic!(
            "the kernel reference did not finish: {got} of {N} bytes in {s:.1} s\n{}",
            e.ctl_ok(&["stats"])
        ),
    };
    let (h2_to1, h2_rt1) = nstat(&t.h2);
    let (h1_to1, h1_rt1) = nstat(&t.h1);
    let bound = (factor * kernel).max(kernel + floor_s);
    let rule = format!("max({factor} x kernel, kernel + {floor_s} s)");
    let engine = echo(&t, "198.18.1.1", bound + 0.5);
    let (h1_to2, h1_rt2) = nstat(&t.h1);
    eprintln!(
        "kernel server: timeouts {} retransmits {}; client toward it: timeouts {} retransmits {}; client toward the engine: timeouts {} retransmits {}",
        h2_to1 - h2_to0,
        h2_rt1 - h2_rt0,
        h1_to1 - h1_to0,
        h1_rt1 - h1_rt0,
        h1_to2 - h1_to1,
        h1_rt2 - h1_rt1
    );
    let dropped = e.drop_count("impair-drop");
    let stats = e.ctl_ok(&["stats"]);
    let recovery: Vec<&str> = stats
        .lines()
        .filter(|l| l.starts_with("tcp worker"))
        .collect();
    eprintln!("engine: {}", recovery.join(" | "));
    let kb = buffer / 1024;
    match engine {
        Run::Done(s) => eprintln!(
            "20 MB echo, {kb} KiB buffers, 2% loss + 1% reorder, no SACK: kernel {kernel:.2} s, engine {s:.2} s (bound {bound:.2} s; {dropped} frames dropped)"
        ),
        Run::Cut(s, got) => eprintln!(
            "20 MB echo, {kb} KiB buffers, 2% loss + 1% reorder, no SACK: kernel {kernel:.2} s, engine cut off at {s:.2} s with {got} bytes back (bound {bound:.2} s; {dropped} frames dropped)"
        ),
    }
    assert!(
        dropped > 1000,
        "the impair stage dropped frames: {dropped}\n{}",
        e.ctl_ok(&["stats"])
    );
    match engine {
        Run::Done(s) => assert!(
            s <= bound,
            "the engine took {s:.2} s, more than {rule} = {bound:.2} s (kernel {kernel:.2} s)"
        ),
        Run::Cut(s, got) => panic!(
            "the engine did not finish within {rule} = {bound:.2} s (kernel {kernel:.2} s): {got} of {N} bytes echoed after {s:.2} s\n{}",
            e.ctl_ok(&["tcp", "show"])
        ),
    }
}

#[test]
fn echo_20_megabytes_through_loss_and_reordering_64k_buffers() {
    // Looser than the 1 MiB bound: with 64 KiB rings the engine's echo is
    // still 1.5-3x the kernel's (the Linux client's time-outs toward it are
    // 3-7x those toward the kernel; docs/ARCHITECTURE.md, "Under loss
    // without SACK", open item). This bound still catches a collapse (an
    // RTO backing off to seconds, which issue 21 saw at 13-33 s).
    echo_through_loss("tl64", 64 * 1024, 3.0, 10.0);
}

#[test]
fn echo_20_megabytes_through_loss_and_reordering_1m_buffers() {
    echo_through_loss("tl1m", 1024 * 1024, 2.0, 5.0);
}
