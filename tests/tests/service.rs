//! The engine as a systemd service (issue #25): the notify protocol against
//! a listener of the test (READY=1 only once the workers forward and ctl
//! answers, RELOADING=1 then READY=1 around a reload, STOPPING=1 at SIGTERM)
//! from an engine that has switched to its user and runs under its seccomp
//! filters; journald's priority prefixes on its log lines;
//! examples/pktengine.service checked by `systemd-analyze verify` and, as far
//! as this machine allows without systemd as PID 1, by running the engine
//! under exactly the unit's capability bounding set (each capability shown
//! needed by a run without it), address families and system-call filter
//! (strace of a whole run: set-up, traffic, reload, stop). With systemd
//! running, the unit itself is started, reloaded and stopped.
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use pktengine_tests::engine::{example, pktengine_bin, text, Engine, RouterTopo};
use pktengine_tests::Netns;

fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pktengine.service")
}

/// `Key=value` lines of the unit, in order (comments and sections left out).
fn directives() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(unit_path()).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

fn directive(key: &str) -> String {
    directives()
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{key}= missing from the unit"))
}

fn sh(ns: &Netns, cmd: &str) -> std::process::Output {
    ns.command("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .output()
        .expect("sh")
}

/// One notification as received, with what the engine's log said by then.
#[derive(Debug)]
struct Note {
    text: String,
    /// Worker 0 had confined itself (its report is the last thing it logs
    /// before its loop) when the message arrived.
    worker_confined: bool,
}

/// A datagram listener in `dir` (root's, mode 0755: the engine's user could
/// not connect to it after the switch) feeding a channel; watchdog pings
/// are only counted.
fn listener(dir: &Path, log: PathBuf) -> (PathBuf, mpsc::Receiver<Note>, Arc<AtomicUsize>) {
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let (tx, rx) = mpsc::channel();
    let pings = Arc::new(AtomicUsize::new(0));
    let counter = pings.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = sock.recv(&mut buf) {
            if &buf[..n] == b"WATCHDOG=1\n" {
                counter.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            let note = Note {
                text: String::from_utf8_lossy(&buf[..n]).into_owned(),
                worker_confined: log.contains("privileges: thread pktengine-w0:"),
            };
            if tx.send(note).is_err() {
                break;
            }
        }
    });
    (path, rx, pings)
}

fn next(rx: &mpsc::Receiver<Note>, within: Duration, e: &Engine) -> Note {
    rx.recv_timeout(within).unwrap_or_else(|_| {
        panic!(
            "no notification within {within:?}; engine log:\n{}",
            e.log()
        )
    })
}

fn field<'a>(note: &'a Note, key: &str) -> Option<&'a str> {
    note.text
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn notify_protocol_from_a_confined_engine_and_journald_priorities() {
    let t = RouterTopo::new("sdn").unwrap();
    let dir = Engine::dir("sdn");
    let log = dir.join("engine.log");
    let (notify, rx, pings) = listener(&dir, log.clone());
    // stderr is journald's stream when JOURNAL_STREAM names its device and inode.
    std::fs::File::create(&log).unwrap();
    let m = std::fs::metadata(&log).unwrap();
    let stream = format!("{}:{}", m.dev(), m.ino());
    let cfg = t.config(&example("router.toml"), &dir.join("ctl.sock"));
    // WatchdogSec=0.2s: a ping every 0.1 s from the control loop.
    let env = [
        ("NOTIFY_SOCKET", notify.to_str().unwrap()),
        ("JOURNAL_STREAM", stream.as_str()),
        ("WATCHDOG_USEC", "200000"),
    ];
    let e = Engine::spawn(&t.dut, &dir, &cfg, &[], &env).unwrap();
    let pid = e.pid().unwrap();

    // READY=1, once: the workers run, ctl answers, packets cross.
    let ready = next(&rx, Duration::from_secs(20), &e);
    assert_eq!(
        field(&ready, "READY"),
        Some("1"),
        "first message: {ready:?}"
    );
    assert_eq!(
        field(&ready, "MAINPID"),
        Some(pid.to_string().as_str()),
        "{ready:?}"
    );
    assert!(
        field(&ready, "STATUS").is_some_and(|s| s.starts_with("running: 2 ports, 1 workers")),
        "{ready:?}"
    );
    assert!(
        ready.worker_confined,
        "READY=1 before the worker was confined and running: {ready:?}\n{}",
        e.log()
    );
    assert!(e.ctl.exists(), "READY=1 before the ctl socket exists");
    let stats = e.ctl_ok(&["stats"]);
    assert!(stats.contains("lan") && stats.contains("wan"), "{stats}");
    let o = sh(&t.h1, "ping -c 2 -i 0.2 -W 2 198.19.1.2");
    assert!(o.status.success(), "{}\n{}", text(&o), e.log());

    // SIGHUP with a good file: RELOADING=1 (with the monotonic clock), then READY=1.
    let kill = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success())
    };
    kill("-HUP");
    let reloading = next(&rx, Duration::from_secs(5), &e);
    assert_eq!(field(&reloading, "RELOADING"), Some("1"), "{reloading:?}");
    let usec: u64 = field(&reloading, "MONOTONIC_USEC")
        .expect("MONOTONIC_USEC")
        .parse()
        .unwrap();
    assert!(usec > 0);
    let done = next(&rx, Duration::from_secs(5), &e);
    assert_eq!(field(&done, "READY"), Some("1"), "{done:?}");
    assert!(
        field(&done, "STATUS").is_some_and(|s| s.starts_with("running, reloaded")),
        "{done:?}"
    );

    // A bad file: the reload is refused, the engine still runs and says so.
    let cfg_path = dir.join("engine.toml");
    std::fs::write(&cfg_path, format!("{cfg}\n[engine\n")).unwrap();
    kill("-HUP");
    assert_eq!(
        field(&next(&rx, Duration::from_secs(5), &e), "RELOADING"),
        Some("1")
    );
    let refused = next(&rx, Duration::from_secs(5), &e);
    assert_eq!(field(&refused, "READY"), Some("1"), "{refused:?}");
    assert!(
        field(&refused, "STATUS").is_some_and(|s| s.contains("reload refused")),
        "{refused:?}"
    );
    assert_eq!(
        refused.text.lines().count(),
        2,
        "STATUS on one line: {refused:?}"
    );

    // `ctl reload` speaks the same protocol.
    std::fs::write(&cfg_path, &cfg).unwrap();
    e.ctl_ok(&["reload"]);
    assert_eq!(
        field(&next(&rx, Duration::from_secs(5), &e), "RELOADING"),
        Some("1")
    );
    assert_eq!(
        field(&next(&rx, Duration::from_secs(5), &e), "READY"),
        Some("1")
    );
    assert!(rx.try_recv().is_err(), "nothing else was sent");
    let t0 = Instant::now();
    let before = pings.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(600));
    let during = pings.load(Ordering::Relaxed) - before;
    let most = t0.elapsed().as_millis() as usize / 100 + 2;
    assert!(
        (3..=most).contains(&during),
        "{during} watchdog pings in {:?} of a 0.2 s period",
        t0.elapsed()
    );

    let logged = e.log();
    let (st, _) = e.stop(Duration::from_secs(10)).unwrap();
    assert!(st.success(), "{st}\n{logged}");
    let stopping = rx.recv_timeout(Duration::from_secs(2)).expect("STOPPING=1");
    assert_eq!(field(&stopping, "STOPPING"), Some("1"), "{stopping:?}");

    // journald: every line carries its priority, the level and the module stay in the text.
    let lines = std::fs::read_to_string(&log).unwrap();
    for l in lines.lines() {
        let p = l
            .strip_prefix('<')
            .and_then(|r| r.split_once('>'))
            .map(|(p, _)| p);
        assert!(
            matches!(p, Some("3" | "4" | "6" | "7")),
            "line without a priority: {l:?}\n{lines}"
        );
    }
    assert!(
        lines.contains("<6>INFO engine::runtime: pktengine running: 2 ports"),
        "{lines}"
    );
    assert!(
        lines.contains("<6>INFO engine::runtime::privileges: privileges: thread pktengine-w0:"),
        "{lines}"
    );
    let err = lines
        .lines()
        .position(|l| l.starts_with("<3>ERROR engine::runtime: SIGHUP: reload refused"))
        .expect("refused reload at err");
    assert!(
        lines
            .lines()
            .nth(err + 1)
            .is_some_and(|l| l.starts_with("<3>")),
        "the refusal's next line keeps err: {lines}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_unit_verifies_and_its_security_exposure_is_low() {
    // The unit as installed names /usr/bin/pktengine and its man pages: point
    // both at this build (verify checks the binary is executable and runs `man`).
    let dir = Engine::dir("unit");
    let man = dir.join("man");
    let o = Command::new(pktengine_bin())
        .args(["man", man.join("man1").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let unit = dir.join("pktengine.service");
    let body = std::fs::read_to_string(unit_path())
        .unwrap()
        .replace("/usr/bin/pktengine", pktengine_bin().to_str().unwrap());
    std::fs::write(&unit, body).unwrap();
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .env("MANPATH", &man)
        .output()
        .expect("systemd-analyze (scripts/deps.sh installs systemd)");
    assert!(
        o.status.success() && o.stderr.is_empty() && o.stdout.is_empty(),
        "systemd-analyze verify: {}",
        text(&o)
    );
    // A unit that names a missing man page fails the same check.
    let broken = dir.join("broken.service");
    std::fs::write(
        &broken,
        std::fs::read_to_string(&unit)
            .unwrap()
            .replace("man:pktengine-run(1)", "man:pktengine-nosuch(1)"),
    )
    .unwrap();
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&broken)
        .env("MANPATH", &man)
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "verify accepted a missing man page: {}",
        text(&o)
    );

    let o = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&unit)
        .output()
        .unwrap();
    let out = text(&o);
    let level: f64 = out
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for pktengine.service: ")
                .nth(1)
        })
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level: {out}"));
    // docs/OPERATING.md quotes the figure; a root service that attaches XDP cannot go much lower.
    assert!(level <= 3.0, "exposure {level}:\n{out}");
    eprintln!("systemd-analyze security: exposure {level}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every system call in the named `systemd-analyze syscall-filter` sets (groups expanded).
fn syscall_set(names: &[&str]) -> BTreeSet<String> {
    let out = Command::new("systemd-analyze")
        .arg("syscall-filter")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for l in text.lines() {
        if l.starts_with('@') {
            groups.push((l.trim().to_string(), Vec::new()));
        } else if let Some(g) = groups.last_mut() {
            let w = l.trim();
            if !w.is_empty() && !w.starts_with('#') {
                g.1.push(w.to_string());
            }
        }
    }
    fn expand(
        n: &str,
        groups: &[(String, Vec<String>)],
        out: &mut BTreeSet<String>,
        seen: &mut BTreeSet<String>,
    ) {
        if !n.starts_with('@') {
            out.insert(n.to_string());
            return;
        }
        if !seen.insert(n.to_string()) {
            return;
        }
        let members = groups
            .iter()
            .find(|(g, _)| g == n)
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| panic!("unknown group {n}"));
        for m in members {
            expand(&m, groups, out, seen);
        }
    }
    let (mut out, mut seen) = (BTreeSet::new(), BTreeSet::new());
    for n in names {
        expand(n, &groups, &mut out, &mut seen);
    }
    out
}

/// The config for the sandbox runs: metrics on loopback (AF_INET), a ctl
/// group (chown), the kernel's routes imported (`ip`: AF_NETLINK).
fn sandbox_config(t: &RouterTopo, dir: &Path) -> String {
    t.config(&example("router.toml"), &dir.join("ctl.sock"))
        .replace(
            "# ctl_group = \"pktengine-ops\"",
            "ctl_group = \"pktengine\"",
        )
}

/// `setpriv` arguments that leave exactly `caps` in the bounding set, as
/// CapabilityBoundingSet= does for a service started as root.
fn bounding(caps: &[String]) -> String {
    let mut s = "-all".to_string();
    for c in caps {
        s += &format!(",+{}", c.trim_start_matches("CAP_").to_lowercase());
    }
    s
}

#[test]
fn the_engine_runs_under_exactly_the_units_capabilities_families_and_system_calls() {
    let caps: Vec<String> = directive("CapabilityBoundingSet")
        .split_whitespace()
        .map(String::from)
        .collect();
    let families: BTreeSet<String> = directive("RestrictAddressFamilies")
        .split_whitespace()
        .map(String::from)
        .collect();
    let filter = directive("SystemCallFilter");
    let allowed = syscall_set(&filter.split_whitespace().collect::<Vec<_>>());
    assert!(
        allowed.contains("read") && allowed.contains("bpf") && !allowed.contains("kexec_load"),
        "{allowed:?}"
    );
    assert_eq!(directive("MemoryDenyWriteExecute"), "yes");

    let t = RouterTopo::new("sdbox").unwrap();
    let dir = Engine::dir("sdbox");
    let cfg = sandbox_config(&t, &dir);
    let cfg_path = dir.join("engine.toml");
    std::fs::write(&cfg_path, &cfg).unwrap();
    let run = |caps: &[String], trace: Option<&Path>, wait_stop: bool| -> (bool, String) {
        let log = dir.join("run.log");
        let mut cmd = match trace {
            Some(prefix) => {
                let mut c = t.dut.command("strace");
                c.args([
                    "-f",
                    "-ff",
                    "-qq",
                    "-e",
                    "signal=none",
                    "-o",
                    prefix.to_str().unwrap(),
                    "setpriv",
                ]);
                c
            }
            None => t.dut.command("setpriv"),
        };
        cmd.args([
            &format!("--bounding-set={}", bounding(caps)),
            "--inh-caps=-all",
            "--",
            pktengine_bin().to_str().unwrap(),
        ])
        .args([
            "run",
            "--import-kernel-routes",
            "--config",
            cfg_path.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().unwrap();
        let ctl = dir.join("ctl.sock");
        let t0 = Instant::now();
        let mut up = false;
        while t0.elapsed() < Duration::from_secs(20) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("pktengine running")
            {
                up = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if up && wait_stop {
            // Traffic, ctl, a metrics scrape, a reload: everything the unit must allow.
            let o = sh(&t.h1, "ping -c 2 -i 0.2 -W 2 198.19.1.2");
            assert!(
                o.status.success(),
                "{}\n{}",
                text(&o),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            let o = Command::new(pktengine_bin())
                .args(["ctl", "--socket", ctl.to_str().unwrap(), "stats"])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", text(&o));
            let o = sh(
                &t.dut,
                "curl -sf http://127.0.0.1:9108/metrics | head -c 100",
            );
            assert!(o.status.success(), "metrics: {}", text(&o));
            let o = Command::new(pktengine_bin())
                .args(["ctl", "--socket", ctl.to_str().unwrap(), "reload"])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", text(&o));
        }
        // `ip netns exec` and setpriv exec: the child is the engine, or strace with the engine its child.
        let engine = match trace {
            Some(_) => std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id()))
                .unwrap_or_default(),
            None => child.id().to_string(),
        };
        if child.try_wait().unwrap().is_none() {
            for p in engine.split_whitespace() {
                let _ = Command::new("kill")
                    .args(["-TERM", p])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let t1 = Instant::now();
        let mut status = None;
        while t1.elapsed() < Duration::from_secs(10) {
            if let Some(st) = child.try_wait().unwrap() {
                status = Some(st);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        (up && status.is_some_and(|s| s.success()), log)
    };

    // The whole life of the engine under strace, with exactly the unit's capabilities.
    let prefix = dir.join("st");
    let (ok, log) = run(&caps, Some(&prefix), true);
    assert!(
        ok,
        "the engine did not run under CapabilityBoundingSet={}:\n{log}",
        caps.join(" ")
    );
    let mut calls = BTreeSet::new();
    let mut used_families = BTreeSet::new();
    let mut wx = Vec::new();
    for f in std::fs::read_dir(&dir).unwrap().flatten() {
        if !f.file_name().to_string_lossy().starts_with("st.") {
            continue;
        }
        for l in std::fs::read_to_string(f.path()).unwrap().lines() {
            let Some(name) = l.split('(').next().filter(|n| {
                !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            }) else {
                continue;
            };
            calls.insert(name.to_string());
            if name == "socket" {
                if let Some(fam) = l.strip_prefix("socket(").and_then(|r| r.split(',').next()) {
                    used_families.insert(fam.to_string());
                }
            }
            let exec = l.contains("PROT_EXEC");
            if (name == "mprotect" && exec) || (name == "mmap" && exec && l.contains("PROT_WRITE"))
            {
                wx.push(l.to_string());
            }
        }
    }
    assert!(
        calls.contains("bpf") && calls.contains("setresuid") && calls.contains("seccomp"),
        "strace saw too little: {calls:?}"
    );
    let outside: Vec<&String> = calls.iter().filter(|c| !allowed.contains(*c)).collect();
    assert!(
        outside.is_empty(),
        "system calls outside SystemCallFilter={filter}: {outside:?}"
    );
    assert!(
        used_families.contains("AF_XDP") && used_families.contains("AF_NETLINK"),
        "{used_families:?}"
    );
    let foreign: Vec<&String> = used_families.difference(&families).collect();
    assert!(
        foreign.is_empty(),
        "socket families outside RestrictAddressFamilies: {foreign:?}"
    );
    assert!(wx.is_empty(), "MemoryDenyWriteExecute would refuse: {wx:?}");
    for c in ["unshare", "setns", "sched_setscheduler", "personality"] {
        assert!(
            !calls.contains(c),
            "{c} (RestrictNamespaces, RestrictRealtime, LockPersonality)"
        );
    }

    // Each capability of the set is needed: without it the engine does not come up.
    for drop in &caps {
        let fewer: Vec<String> = caps.iter().filter(|c| *c != drop).cloned().collect();
        let (ok, log) = run(&fewer, None, false);
        assert!(
            !ok,
            "the engine ran without {drop}: CapabilityBoundingSet= names more than it needs\n{log}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Under a running systemd (not this project's machines, whose PID 1 is not
/// systemd): the unit itself, pointed at this build and the test topology.
#[test]
fn the_unit_runs_under_systemd_when_there_is_one() {
    if !Path::new("/run/systemd/system").is_dir() {
        eprintln!("systemd is not PID 1 here: the unit is checked by systemd-analyze verify and the sandbox test instead");
        return;
    }
    let t = RouterTopo::new("sdsys").unwrap();
    let dir = Engine::dir("sdsys");
    // The engine's user reads its configuration (reload); the directory must let it.
    let _ = Command::new("chmod")
        .args(["0755", dir.to_str().unwrap()])
        .status();
    let cfg = t.config(
        &example("router.toml"),
        Path::new("/run/pktengine/ctl.sock"),
    );
    let cfg_path = dir.join("engine.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let name = format!("pktengine-test-{}.service", std::process::id());
    let unit = Path::new("/run/systemd/system").join(&name);
    let body = std::fs::read_to_string(unit_path())
        .unwrap()
        .replace("/usr/bin/pktengine", pktengine_bin().to_str().unwrap())
        .replace("/etc/pktengine/pktengine.toml", cfg_path.to_str().unwrap())
        .replace(
            "RuntimeDirectory=pktengine",
            &format!(
                "RuntimeDirectory=pktengine\nNetworkNamespacePath={}\nProtectHome=read-only",
                t.dut.path().display()
            ),
        )
        .replace("ProtectHome=yes\n", "")
        .replace("PrivateTmp=yes\n", "");
    std::fs::write(&unit, body).unwrap();
    struct Cleanup(PathBuf, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("systemctl").args(["stop", &self.1]).status();
            let _ = std::fs::remove_file(&self.0);
            let _ = Command::new("systemctl").arg("daemon-reload").status();
        }
    }
    let _cleanup = Cleanup(unit.clone(), name.clone());
    let sc = |args: &[&str]| Command::new("systemctl").args(args).output().unwrap();
    assert!(sc(&["daemon-reload"]).status.success());
    let o = sc(&["start", &name]);
    assert!(
        o.status.success(),
        "systemctl start: {}\n{}",
        text(&o),
        text(&sc(&["status", &name]))
    );
    assert_eq!(text(&sc(&["is-active", &name])).trim(), "active");
    let o = sh(&t.h1, "ping -c 2 -i 0.2 -W 2 198.19.1.2");
    assert!(o.status.success(), "{}", text(&o));
    assert!(sc(&["reload", &name]).status.success());
    assert_eq!(text(&sc(&["is-active", &name])).trim(), "active");
    assert!(sc(&["stop", &name]).status.success());
    let o = Command::new("journalctl")
        .args(["-u", &name, "-p", "info", "--no-pager", "-o", "cat"])
        .output()
        .unwrap();
    assert!(text(&o).contains("pktengine running"), "{}", text(&o));
}
