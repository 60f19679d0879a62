//! Least privilege after set-up (issue #20), as the kernel sees it: every
//! thread of a running, forwarding engine runs as the engine's user with no
//! capability, an empty bounding set, no_new_privs and its role's seccomp
//! filter; a worker that steps outside its list kills the engine (SIGSYS)
//! and the kernel still detaches XDP; an unknown user is refused unless
//! `--allow-privileged`. The ctl socket lives in a root-owned directory the
//! engine's user cannot write: the custodian removes it.
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use pktengine_tests::engine::{example, pktengine_bin, text, Engine, RouterTopo};
use pktengine_tests::Netns;

/// uid and gid of a user, from the system's database.
fn account(name: &str) -> Option<(u32, u32)> {
    let o = std::process::Command::new("getent")
        .args(["passwd", name])
        .output()
        .ok()?;
    let line = String::from_utf8_lossy(&o.stdout).into_owned();
    let f: Vec<&str> = line.trim().split(':').collect();
    Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
}

/// One thread (or process) as /proc/PID/task/TID/status shows it.
#[derive(Debug)]
struct Creds {
    tid: u32,
    comm: String,
    uids: Vec<u32>,
    gids: Vec<u32>,
    groups: String,
    cap_prm: u64,
    cap_eff: u64,
    cap_bnd: u64,
    cap_amb: u64,
    no_new_privs: u32,
    seccomp: u32,
    filters: u32,
}

fn creds(dir: &Path) -> Creds {
    let status = std::fs::read_to_string(dir.join("status"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let field = |n: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(n)?.strip_prefix(':'))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let ids = |n: &str| {
        field(n)
            .split_whitespace()
            .map(|w| w.parse().unwrap())
            .collect::<Vec<u32>>()
    };
    let mask = |n: &str| u64::from_str_radix(&field(n), 16).unwrap();
    let num = |n: &str| field(n).parse::<u32>().unwrap();
    Creds {
        tid: dir
            .file_name()
            .and_then(|n| n.to_str()?.parse().ok())
            .unwrap_or(0),
        comm: std::fs::read_to_string(dir.join("comm"))
            .unwrap_or_default()
            .trim()
            .to_string(),
        uids: ids("Uid"),
        gids: ids("Gid"),
        groups: field("Groups"),
        cap_prm: mask("CapPrm"),
        cap_eff: mask("CapEff"),
        cap_bnd: mask("CapBnd"),
        cap_amb: mask("CapAmb"),
        no_new_privs: num("NoNewPrivs"),
        seccomp: num("Seccomp"),
        filters: num("Seccomp_filters"),
    }
}

fn threads(pid: u32) -> Vec<Creds> {
    let mut v: Vec<Creds> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .map(|t| creds(&t.path()))
        .collect();
    v.sort_by_key(|c| c.tid);
    v
}

/// The engine's children (the ctl socket custodian).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

fn has_xdp(ns: &Netns, dev: &str) -> bool {
    let o = ns.ip(&["-d", "link", "show", "dev", dev]).unwrap();
    String::from_utf8_lossy(&o.stdout).contains("xdp")
}

fn sh(ns: &Netns, cmd: &str) -> std::process::Output {
    ns.command("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .output()
        .expect("sh")
}

fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < within {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

const CAP_DAC_OVERRIDE: u64 = 1 << 1;

#[test]
fn every_thread_runs_as_the_engine_user_without_capabilities_under_its_seccomp_filter() {
    let (uid, gid) =
        account("pktengine").expect("user pktengine is missing: scripts/deps.sh creates it");
    let t = RouterTopo::with_queues("priv", 2).unwrap();
    let dir = Engine::dir("priv");
    // The socket's directory is root's and closed to the engine's user: only the custodian can unlink there.
    let meta = std::fs::metadata(&dir).unwrap();
    assert!(
        meta.uid() == 0 && meta.mode() & 0o002 == 0,
        "{}: {meta:?}",
        dir.display()
    );
    let cfg = t
        .config(&example("router.toml"), &dir.join("ctl.sock"))
        .replace("cores = [1]", "cores = [0, 1]")
        .replace("mode = \"router\"", "mode = \"router\"\nqueues = 2");
    let e = Engine::start(&t.dut, &dir, &cfg, &[]).unwrap();
    let o = sh(
        &t.h1,
        "ping -c 3 -i 0.2 -W 2 198.19.1.2 && ping -6 -c 3 -i 0.2 -W 2 2001:2:0:2::2",
    );
    assert!(o.status.success(), "{}\n{}", text(&o), e.log());

    let pid = e.pid().unwrap();
    let all = threads(pid);
    let (mut control, mut workers, mut front) = (0, 0, 0);
    for th in &all {
        let role = match th.comm.as_str() {
            _ if th.tid == pid => {
                control += 1;
                "control"
            }
            c if c.starts_with("pktengine-w") && c[11..].parse::<u32>().is_ok() => {
                workers += 1;
                "worker"
            }
            "pktengine-ctl" => {
                front += 1;
                "front"
            }
            other => panic!("unexpected thread {other} ({}): {all:#?}", th.tid),
        };
        let who = format!("{role} thread {} ({})", th.comm, th.tid);
        assert_eq!(th.uids, vec![uid; 4], "{who}: {th:?}");
        assert_eq!(th.gids, vec![gid; 4], "{who}: {th:?}");
        assert_eq!(th.groups, "", "{who}: supplementary groups kept: {th:?}");
        assert_eq!(
            (th.cap_prm, th.cap_eff, th.cap_amb),
            (0, 0, 0),
            "{who} kept capabilities: {th:?}"
        );
        assert_eq!(th.cap_bnd, 0, "{who}: bounding set not cleared: {th:?}");
        assert_eq!(th.no_new_privs, 1, "{who}: {th:?}");
        // Mode 2 (filter): its own role's allow-list, nothing stacked from its
        // creator; workers and the front thread have a second one that refuses
        // openat with EACCES (glibc's malloc may try it) instead of killing.
        let filters = if role == "control" { 1 } else { 2 };
        assert_eq!((th.seccomp, th.filters), (2, filters), "{who}: {th:?}");
    }
    assert_eq!((control, workers, front), (1, 2, 1), "{all:#?}");

    // The log says what each thread kept and which list it runs under.
    let log = e.log();
    let kept = format!("uid {uid} gid {gid}, caps {{}}, bounding set {{}}, no_new_privs, seccomp");
    for (thread, role) in [
        ("pktengine", "control"),
        ("pktengine-w0", "worker"),
        ("pktengine-w1", "worker"),
        ("pktengine-ctl", "front"),
    ] {
        let want = format!("privileges: thread {thread}: {kept} {role} (");
        let line = log
            .lines()
            .find(|l| l.contains(&want))
            .unwrap_or_else(|| panic!("no `{want}` in\n{log}"));
        assert_eq!(
            line.ends_with(", openat refused)"),
            role != "control",
            "{line}"
        );
    }

    // The custodian: the engine's user with CAP_DAC_OVERRIDE alone, confined too.
    let kids = children(pid);
    assert_eq!(kids.len(), 1, "children of the engine: {kids:?}");
    let cu = creds(Path::new(&format!("/proc/{}", kids[0])));
    let cmdline = std::fs::read_to_string(format!("/proc/{}/cmdline", kids[0])).unwrap_or_default();
    assert!(cmdline.contains("ctl-socket-custodian"), "{cmdline:?}");
    assert_eq!(
        (cu.uids.clone(), cu.gids.clone()),
        (vec![uid; 4], vec![gid; 4]),
        "{cu:?}"
    );
    assert_eq!(
        (
            cu.cap_prm,
            cu.cap_eff,
            cu.cap_bnd,
            cu.no_new_privs,
            cu.seccomp
        ),
        (CAP_DAC_OVERRIDE, CAP_DAC_OVERRIDE, 0, 1, 2),
        "{cu:?}"
    );

    // Everything still works without privilege: stats (reads /proc/self/task/*/stat),
    // a source prefix pushed into the XDP programs (a BPF map write through the
    // descriptor) that stops h1's pings, its removal, a reload (reads the file).
    assert!(e.ctl_ok(&["stats"]).contains("worker 1"));
    e.ctl_ok(&["filter", "add", "ip", "saddr", "198.18.1.0/24", "drop"]);
    let o = sh(&t.h1, "ping -c 2 -i 0.2 -W 1 198.19.1.2");
    assert!(
        !o.status.success(),
        "the XDP drop did not stop h1: {}",
        text(&o)
    );
    let xdp = e.ctl_ok(&["stats"]);
    assert!(
        xdp.lines()
            .any(|l| l.starts_with("xdp lan") && l.contains("drop_src_prefix=")),
        "{xdp}"
    );
    e.ctl_ok(&["filter", "del", "0"]);
    let o = sh(&t.h1, "ping -c 2 -i 0.2 -W 2 198.19.1.2");
    assert!(o.status.success(), "{}\n{}", text(&o), e.log());
    assert!(e.ctl_ok(&["reload"]).contains("reloaded"));
    assert!(!e.log().contains("WARN"), "{}", e.log());

    // A clean exit: status 0, XDP detached, the socket removed from root's directory.
    let ctl = e.ctl.clone();
    let log = e.dir.join("engine.log");
    let (status, _) = e.stop(Duration::from_secs(5)).unwrap();
    let log = std::fs::read_to_string(log).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(!ctl.exists(), "ctl socket left behind\n{log}");
    assert!(
        !has_xdp(&t.dut, &t.left.b.name) && !has_xdp(&t.dut, &t.right.a.name),
        "XDP still attached"
    );
    assert!(
        !Path::new(&format!("/proc/{}", kids[0])).exists(),
        "the custodian outlived the engine"
    );
}

#[test]
fn a_worker_making_a_forbidden_system_call_is_killed_and_xdp_is_detached() {
    let t = RouterTopo::new("sys").unwrap();
    let dir = Engine::dir("sys");
    let cfg = t.config(&example("router.toml"), &dir.join("ctl.sock"));
    let mut e = Engine::spawn(
        &t.dut,
        &dir,
        &cfg,
        &[],
        &[("PKTENGINE_FAULT", "seccomp-w0")],
    )
    .unwrap();
    let status = e.wait(Duration::from_secs(20));
    let log = e.log();
    assert!(
        log.contains("fault injection: pktengine-w0 calls getppid() after confinement"),
        "the engine was built without the `fault-injection` feature (build the workspace: the tests crate turns it on)\n{log}"
    );
    let status = status.unwrap_or_else(|| panic!("the engine is still running\n{log}"));
    assert_eq!(status.signal(), Some(libc::SIGSYS), "{status:?}\n{log}");
    assert!(
        log.contains("privileges: thread pktengine-w0:") && log.contains("seccomp worker ("),
        "{log}"
    );
    // The kernel closed the bpf_links with the process; the custodian removed the socket.
    assert!(
        wait_until(Duration::from_secs(5), || !has_xdp(&t.dut, &t.left.b.name)
            && !has_xdp(&t.dut, &t.right.a.name)),
        "XDP left attached after the seccomp kill"
    );
    assert!(
        wait_until(Duration::from_secs(5), || !e.ctl.exists()),
        "ctl socket left behind after the seccomp kill"
    );
    // The DUT's kernel has its interface back.
    t.dut
        .ip(&["addr", "add", "198.18.1.1/24", "dev", &t.left.b.name])
        .unwrap();
    let o = sh(&t.h1, "ping -c 2 -i 0.2 -W 2 198.18.1.1");
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn an_unknown_user_is_refused_and_allow_privileged_runs_with_a_warning() {
    let t = RouterTopo::new("usr").unwrap();
    let dir = Engine::dir("usr");
    let cfg = t
        .config(&example("router.toml"), &dir.join("ctl.sock"))
        .replace("cores = [1]", "cores = [1]\nuser = \"nosuchuser\"");
    let path = dir.join("engine.toml");
    std::fs::write(&path, &cfg).unwrap();
    let o = t
        .dut
        .command(pktengine_bin().to_str().unwrap())
        .args(["run", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let err = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("user `nosuchuser` does not exist") && err.contains("--allow-privileged"),
        "{err}"
    );
    assert!(
        !has_xdp(&t.dut, &t.left.b.name),
        "XDP attached although the engine refused to start"
    );
    assert!(!dir.join("ctl.sock").exists());

    // With --allow-privileged it runs as root, says so, and confines the rest.
    let e = Engine::start(&t.dut, &dir, &cfg, &["--allow-privileged"]).unwrap();
    let o = sh(&t.h1, "ping -c 2 -i 0.2 -W 2 198.19.1.2");
    assert!(o.status.success(), "{}\n{}", text(&o), e.log());
    let log = e.log();
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("user `nosuchuser` does not exist"));
    assert!(
        warning.is_some_and(|l| l.contains("staying root (--allow-privileged)")),
        "{log}"
    );
    for th in threads(e.pid().unwrap()) {
        assert_eq!(th.uids, vec![0; 4], "{th:?}");
        assert_eq!(
            (
                th.cap_prm,
                th.cap_eff,
                th.cap_bnd,
                th.no_new_privs,
                th.seccomp
            ),
            (0, 0, 0, 1, 2),
            "{th:?}"
        );
    }
    let ctl = e.ctl.clone();
    let (status, _) = e.stop(Duration::from_secs(5)).unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!ctl.exists());
}
