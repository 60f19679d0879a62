//! Real routing daemons in test namespaces: BIRD 2 and FRR (zebra, ospfd,
//! bgpd), each instance with its own configuration, control socket, pid file
//! and log in a directory of its own, so instances in parallel tests never
//! share a path. Killed when dropped (SIGTERM, then SIGKILL), also on panic.
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::Netns;

/// A daemon process in the foreground, stopped on drop.
#[derive(Debug)]
struct Proc {
    child: Child,
}

impl Proc {
    fn spawn(ns: &Netns, bin: &str, args: &[&str], log: &Path) -> io::Result<Proc> {
        let out = std::fs::File::create(log)?;
        // `ip netns exec` execs the daemon: the child's pid is the daemon's.
        let child = ns
            .command(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        Ok(Proc { child })
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A BIRD 2 instance: `bird -f -c CONF -s SOCK -P PID` inside a namespace.
#[derive(Debug)]
pub struct Bird {
    proc: Proc,
    pub dir: PathBuf,
    pub sock: PathBuf,
    ns: String,
}

impl Bird {
    /// Writes `conf` to `<dir>/<name>/bird.conf`, starts BIRD in `ns` and
    /// waits (at most 10 s) until birdc answers.
    pub fn start(ns: &Netns, dir: &Path, name: &str, conf: &str) -> io::Result<Bird> {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir)?;
        let cfg = dir.join("bird.conf");
        std::fs::write(&cfg, conf)?;
        let sock = dir.join("bird.ctl");
        let pid = dir.join("bird.pid");
        let proc = Proc::spawn(
            ns,
            "bird",
            &[
                "-f",
                "-c",
                cfg.to_str().unwrap_or(""),
                "-s",
                sock.to_str().unwrap_or(""),
                "-P",
                pid.to_str().unwrap_or(""),
            ],
            &dir.join("bird.log"),
        )?;
        let mut b = Bird {
            proc,
            dir,
            sock,
            ns: ns.name().to_string(),
        };
        let t = Instant::now();
        loop {
            if let Some(st) = b.proc.exited() {
                return Err(io::Error::other(format!(
                    "bird {name} exited with {st}:\n{}",
                    b.log()
                )));
            }
            if b.sock.exists() && b.birdc_raw(&["show", "status"]).status.success() {
                return Ok(b);
            }
            if t.elapsed() > Duration::from_secs(10) {
                return Err(io::Error::other(format!(
                    "bird {name} did not start:\n{}",
                    b.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bird.log")).unwrap_or_default()
    }

    fn birdc_raw(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns, "birdc", "-s"])
            .arg(&self.sock)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("birdc")
    }

    /// `birdc -s SOCK ARGS`: its output (stdout and stderr).
    pub fn birdc(&self, args: &[&str]) -> String {
        text(&self.birdc_raw(args))
    }

    /// The state of protocol `proto` in `show protocols` (`Established`, `Active`, `up`...).
    pub fn proto_info(&self, proto: &str) -> String {
        let out = self.birdc(&["show", "protocols", proto]);
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(proto))
            .map(|l| l.split_whitespace().skip(5).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    }

    /// Waits until every BGP protocol of `protos` is Established; returns how long it took.
    pub fn wait_established(&self, protos: &[&str], within: Duration) -> io::Result<Duration> {
        let t = Instant::now();
        loop {
            if protos
                .iter()
                .all(|p| self.proto_info(p).starts_with("Established"))
            {
                return Ok(t.elapsed());
            }
            if t.elapsed() > within {
                return Err(io::Error::other(format!(
                    "BGP sessions {protos:?} not established within {within:?}:\n{}\n{}",
                    self.birdc(&["show", "protocols", "all"]),
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// FRR daemons (zebra and the protocol daemons) of one namespace, all
/// reading one integrated `frr.conf`, their vty sockets, zserv socket and
/// pid files in a directory of their own.
#[derive(Debug)]
pub struct Frr {
    /// The protocol daemons first and zebra last, so they stop in that order.
    procs: Vec<Proc>,
    pub dir: PathBuf,
    ns: String,
}

impl Frr {
    /// Writes `conf` to `<dir>/<name>/frr.conf` and starts zebra and then
    /// each of `daemons` (`ospfd`, `bgpd`, ...) in `ns`; waits (at most
    /// 10 s) until vtysh reaches all of them. A daemon ignores (and logs) the
    /// lines of the file that belong to the others.
    pub fn start(
        ns: &Netns,
        dir: &Path,
        name: &str,
        conf: &str,
        daemons: &[&str],
    ) -> io::Result<Frr> {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir)?;
        // The daemons drop to the user frr: their sockets and pid files go here.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
        let cfg = dir.join("frr.conf");
        std::fs::write(&cfg, conf)?;
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644))?;
        let zserv = dir.join("zserv.api");
        let mut frr = Frr {
            procs: Vec::new(),
            dir: dir.clone(),
            ns: ns.name().to_string(),
        };
        for d in std::iter::once("zebra").chain(daemons.iter().copied()) {
            let pid = dir.join(format!("{d}.pid"));
            let log = format!("file:{}", dir.join(format!("{d}.log")).display());
            let args = [
                "-f",
                cfg.to_str().unwrap_or(""),
                "-i",
                pid.to_str().unwrap_or(""),
                "-z",
                zserv.to_str().unwrap_or(""),
                "--vty_socket",
                dir.to_str().unwrap_or(""),
                "-P",
                "0",
                "-u",
                "frr",
                "-g",
                "frr",
                "--log",
                &log,
            ];
            let p = Proc::spawn(
                ns,
                &format!("/usr/lib/frr/{d}"),
                &args,
                &dir.join(format!("{d}.out")),
            )?;
            frr.procs.insert(0, p);
            // The protocol daemons connect to zebra's socket: wait for it.
            if d == "zebra" {
                let t = Instant::now();
                while !zserv.exists() && t.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        let t = Instant::now();
        loop {
            let vty_ready = std::iter::once("zebra")
                .chain(daemons.iter().copied())
                .all(|d| dir.join(format!("{d}.vty")).exists());
            if vty_ready && frr.vtysh_raw("show version").status.success() {
                return Ok(frr);
            }
            if let Some(st) = frr.procs.iter_mut().find_map(|p| p.exited()) {
                return Err(io::Error::other(format!(
                    "an FRR daemon of {name} exited with {st}:\n{}",
                    frr.logs()
                )));
            }
            if t.elapsed() > Duration::from_secs(10) {
                return Err(io::Error::other(format!(
                    "FRR {name} did not start:\n{}",
                    frr.logs()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every log file of the instance, concatenated.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let p = e.path();
                if matches!(p.extension().and_then(|x| x.to_str()), Some("log" | "out")) {
                    s += &format!(
                        "--- {}\n{}",
                        p.display(),
                        std::fs::read_to_string(&p).unwrap_or_default()
                    );
                }
            }
        }
        s
    }

    fn vtysh_raw(&self, cmd: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns, "vtysh", "--vty_socket"])
            .arg(&self.dir)
            .args(["-c", cmd])
            .stdin(Stdio::null())
            .output()
            .expect("vtysh")
    }

    /// `vtysh -c CMD` against this instance: its output.
    pub fn vtysh(&self, cmd: &str) -> String {
        text(&self.vtysh_raw(cmd))
    }
}

/// Waits until `f` returns Some, polling every `step`; Err after `within`.
pub fn wait_for<T>(
    within: Duration,
    step: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Result<(T, Duration), Duration> {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok((v, t.elapsed()));
        }
        if t.elapsed() > within {
            return Err(t.elapsed());
        }
        std::thread::sleep(step);
    }
}
