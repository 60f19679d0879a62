//! The engine as a process under test: a router topology of namespaces
//!
//! ```text
//!  h1 (198.18.1.2/24, 2001:2:0:1::2/64) ── veth ── dut: pktengine (lan | wan) ── veth ── h2 (198.19.1.2/24, 2001:2:0:2::2/64)
//! ```
//!
//! and a guard that starts `pktengine run` inside the DUT namespace and
//! stops it (SIGTERM, then SIGKILL) when dropped, also on panic.
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::netns::{Netns, VethPair};

/// The `pktengine` binary next to the test binary (target/<profile>/).
pub fn pktengine_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("pktengine");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        bin.display()
    );
    bin
}

/// The example configuration shipped in `examples/`.
pub fn example(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Three namespaces: two hosts and the engine between them.
#[derive(Debug)]
pub struct RouterTopo {
    pub h1: Netns,
    pub dut: Netns,
    pub h2: Netns,
    /// h1 (a) ── dut (b): the engine's `lan` port.
    pub left: VethPair,
    /// dut (a) ── h2 (b): the engine's `wan` port.
    pub right: VethPair,
}

impl RouterTopo {
    /// Builds the topology; the hosts route everything through the engine.
    pub fn new(tag: &str) -> io::Result<RouterTopo> {
        Self::with_queues(tag, 1)
    }

    /// The same with `queues` RX/TX queues on every veth.
    pub fn with_queues(tag: &str, queues: u32) -> io::Result<RouterTopo> {
        let h1 = Netns::new(&format!("{tag}h1"))?;
        let dut = Netns::new(&format!("{tag}d"))?;
        let h2 = Netns::new(&format!("{tag}h2"))?;
        let left = VethPair::new(&h1, &dut, queues)?;
        let right = VethPair::new(&dut, &h2, queues)?;
        // The engine owns the DUT's interfaces: keep the DUT kernel's IPv6 quiet on them.
        for end in [&left.b, &right.a] {
            dut.sysctl(&format!("net.ipv6.conf.{}.disable_ipv6", end.name), "1")?;
        }
        left.addr(&h1, &left.a, "198.18.1.2/24")?;
        left.addr(&h1, &left.a, "2001:2:0:1::2/64")?;
        right.addr(&h2, &right.b, "198.19.1.2/24")?;
        right.addr(&h2, &right.b, "2001:2:0:2::2/64")?;
        h1.ip(&["route", "add", "default", "via", "198.18.1.1"])?;
        h1.ip(&["-6", "route", "add", "default", "via", "2001:2:0:1::1"])?;
        h2.ip(&["route", "add", "default", "via", "198.19.1.1"])?;
        h2.ip(&["-6", "route", "add", "default", "via", "2001:2:0:2::1"])?;
        Ok(RouterTopo {
            h1,
            dut,
            h2,
            left,
            right,
        })
    }

    /// A configuration text for this topology: the template's interface
    /// names `pe-lan`/`pe-wan` replaced by the real ones, the ctl socket
    /// made unique. The metrics endpoint stays: 127.0.0.1 is the DUT namespace's own.
    pub fn config(&self, template: &str, ctl: &Path) -> String {
        let mut out = String::new();
        for line in template.lines() {
            let t = line.trim_start();
            if t.starts_with("ctl_socket") {
                out += &format!("ctl_socket = \"{}\"\n", ctl.display());
            } else {
                out += &line
                    .replace("\"pe-lan\"", &format!("\"{}\"", self.left.b.name))
                    .replace("\"pe-wan\"", &format!("\"{}\"", self.right.a.name));
                out.push('\n');
            }
        }
        out
    }
}

/// A running `pktengine run`, stopped on drop.
#[derive(Debug)]
pub struct Engine {
    child: Option<Child>,
    pub ctl: PathBuf,
    pub dir: PathBuf,
}

impl Engine {
    /// A fresh directory for one engine's files (config, socket, log).
    pub fn dir(tag: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d =
            std::env::temp_dir().join(format!("pktengine-test-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("test dir");
        d
    }

    /// Starts the engine in `ns` with `config` (text) and waits for its ctl
    /// socket. `extra` are more `run` arguments.
    pub fn start(ns: &Netns, dir: &Path, config: &str, extra: &[&str]) -> io::Result<Engine> {
        let mut e = Engine::spawn(ns, dir, config, extra, &[])?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !e.ctl.exists() {
            if let Some(c) = e.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    return Err(io::Error::other(format!(
                        "pktengine exited with {st}: {}",
                        e.log()
                    )));
                }
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "pktengine did not start: {}",
                    e.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(e)
    }

    /// Starts the engine in `ns` with `config` and environment variables
    /// `env`, without waiting for anything.
    pub fn spawn(
        ns: &Netns,
        dir: &Path,
        config: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> io::Result<Engine> {
        let cfg = dir.join("engine.toml");
        std::fs::write(&cfg, config)?;
        let log = std::fs::File::create(dir.join("engine.log"))?;
        let bin = pktengine_bin();
        let mut cmd = ns.command(bin.to_str().unwrap_or("pktengine"));
        cmd.args(["run", "--config", cfg.to_str().unwrap_or("")])
            .args(extra)
            .envs(env.iter().copied());
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd.spawn()?;
        let ctl = ctl_path(config).unwrap_or_else(|| dir.join("ctl.sock"));
        Ok(Engine {
            child: Some(child),
            ctl,
            dir: dir.to_path_buf(),
        })
    }

    /// Waits up to `within` for the engine to exit on its own.
    pub fn wait(&mut self, within: Duration) -> Option<ExitStatus> {
        let t = Instant::now();
        while t.elapsed() < within {
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("engine.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `pktengine ctl --socket <ctl> <args>`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut a = vec!["ctl", "--socket", self.ctl.to_str().unwrap_or("")];
        a.extend_from_slice(args);
        Command::new(pktengine_bin())
            .args(&a)
            .stdin(Stdio::null())
            .output()
            .expect("pktengine ctl")
    }

    /// `ctl` that must succeed; returns stdout.
    /// Packets dropped for `reason` (`nat-no-mapping`, ...) in `ctl stats`, summed over stages.
    pub fn drop_count(&self, reason: &str) -> u64 {
        self.ctl_ok(&["stats"])
            .lines()
            .filter(|l| l.split_whitespace().any(|w| w == reason))
            .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
            .sum()
    }

    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let o = self.ctl(args);
        assert!(
            o.status.success(),
            "ctl {args:?} failed: {}{}\nengine log:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Sends SIGTERM and waits up to `within`; returns the exit status and
    /// how long the engine took.
    pub fn stop(mut self, within: Duration) -> io::Result<(ExitStatus, Duration)> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| io::Error::other("not running"))?;
        // `ip netns exec` execs the binary: the child's pid is the engine's.
        let t = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        loop {
            if let Some(st) = child.try_wait()? {
                return Ok((st, t.elapsed()));
            }
            if t.elapsed() > within {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other(format!(
                    "pktengine did not exit within {within:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(2) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn ctl_path(config: &str) -> Option<PathBuf> {
    config.lines().find_map(|l| {
        let l = l.trim();
        let v = l
            .strip_prefix("ctl_socket")?
            .trim_start()
            .strip_prefix('=')?
            .trim();
        Some(PathBuf::from(v.trim_matches('"')))
    })
}

/// Output of a command as text (stdout then stderr).
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A switch topology: four hosts and a trunk host on one engine.
///
/// ```text
///  h1 198.18.10.1/24 ── pe-p1 (VLAN 10) ┐   (and 2001:2:0:10::N/64 on hN)
///  h2 198.18.10.2/24 ── pe-p2 (VLAN 10) │
///  h3 198.18.10.3/24 ── pe-p3 (VLAN 10) ├── dut: pktengine, bridge br0
///  h4 198.18.10.4/24 ── pe-p4 (VLAN 20) │
///  t  (raw, tagged)  ── pe-tr (trunk 10, 20) ┘
/// ```
///
/// h4 shares h1..h3's subnet on purpose: only the VLAN keeps them apart.
#[derive(Debug)]
pub struct SwitchTopo {
    pub dut: Netns,
    /// h1, h2, h3, h4, t.
    pub hosts: Vec<Netns>,
    /// Host end `a`, engine end `b`, in the order of `hosts`.
    pub links: Vec<VethPair>,
}

/// The example's interface names, in the order of `SwitchTopo::hosts`.
pub const SWITCH_PORTS: [&str; 5] = ["pe-p1", "pe-p2", "pe-p3", "pe-p4", "pe-tr"];

impl SwitchTopo {
    pub fn new(tag: &str) -> io::Result<SwitchTopo> {
        SwitchTopo::with_queues(tag, 1)
    }

    /// The same with `queues` RX/TX queues on every veth (one engine worker per queue).
    pub fn with_queues(tag: &str, queues: u32) -> io::Result<SwitchTopo> {
        let dut = Netns::new(&format!("{tag}d"))?;
        let mut hosts = Vec::new();
        let mut links = Vec::new();
        for (i, name) in ["h1", "h2", "h3", "h4", "t"].iter().enumerate() {
            let h = Netns::new(&format!("{tag}{name}"))?;
            let l = VethPair::new(&h, &dut, queues)?;
            dut.sysctl(&format!("net.ipv6.conf.{}.disable_ipv6", l.b.name), "1")?;
            if i < 4 {
                l.addr(&h, &l.a, &format!("198.18.10.{}/24", i + 1))?;
                l.addr(&h, &l.a, &format!("2001:2:0:10::{}/64", i + 1))?;
            } else {
                // The trunk host only sends and reads raw frames: keep its kernel quiet.
                h.sysctl(&format!("net.ipv6.conf.{}.disable_ipv6", l.a.name), "1")?;
            }
            hosts.push(h);
            links.push(l);
        }
        Ok(SwitchTopo { dut, hosts, links })
    }

    /// The host-side interface of host `i`.
    pub fn host_if(&self, i: usize) -> &str {
        &self.links[i].a.name
    }

    /// The MAC of host `i`'s interface.
    pub fn host_mac(&self, i: usize) -> [u8; 6] {
        self.links[i]
            .mac(&self.hosts[i], &self.links[i].a)
            .expect("host MAC")
    }

    /// The template with the real interface names and a unique ctl socket.
    pub fn config(&self, template: &str, ctl: &Path) -> String {
        let mut out = String::new();
        for line in template.lines() {
            if line.trim_start().starts_with("ctl_socket") {
                out += &format!("ctl_socket = \"{}\"\n", ctl.display());
                continue;
            }
            let mut l = line.to_string();
            for (i, p) in SWITCH_PORTS.iter().enumerate() {
                l = l.replace(
                    &format!("\"{p}\""),
                    &format!("\"{}\"", self.links[i].b.name),
                );
            }
            out += &l;
            out.push('\n');
        }
        out
    }
}

/// A gateway topology: hosts on the switch ports of a bridge whose BVI is
/// their default gateway, and an outside host on a routed port.
///
/// ```text
///  h1 198.18.1.2/24 ── pe-p1 ┐                        (and 2001:2:0:1::N/64 on hN)
///  h2 198.18.1.3/24 ── pe-p2 ├── dut: pktengine, bridge lan, BVI 198.18.1.1, 2001:2:0:1::1
///  h3 198.18.1.4/24 ── pe-p3 ┘        │
///  outside 198.19.1.2/24 ── pe-wan ───┘  (2001:2:0:2::2/64, gateway 198.19.1.1, 2001:2:0:2::1)
/// ```
#[derive(Debug)]
pub struct GatewayTopo {
    pub dut: Netns,
    /// The hosts, in the order they were given (`new`: h1, h2, h3, outside).
    pub hosts: Vec<Netns>,
    /// Host end `a`, engine end `b`, in the order of `hosts`.
    pub links: Vec<VethPair>,
}

/// A host of a `GatewayTopo`: its addresses (CIDR) and default gateways.
#[derive(Debug, Clone, Copy)]
pub struct GatewayHost<'a> {
    pub v4: &'a str,
    pub v6: &'a str,
    pub gw4: &'a str,
    pub gw6: &'a str,
}

/// The interface names of examples/gateway.toml, in the order of `GatewayTopo::new`'s hosts.
pub const GATEWAY_PORTS: [&str; 4] = ["pe-p1", "pe-p2", "pe-p3", "pe-wan"];

impl GatewayTopo {
    /// Three bridge hosts and the outside host, addressed as examples/gateway.toml expects.
    pub fn new(tag: &str) -> io::Result<GatewayTopo> {
        let lan = |v4, v6| GatewayHost {
            v4,
            v6,
            gw4: "198.18.1.1",
            gw6: "2001:2:0:1::1",
        };
        GatewayTopo::with_hosts(
            tag,
            &[
                lan("198.18.1.2/24", "2001:2:0:1::2/64"),
                lan("198.18.1.3/24", "2001:2:0:1::3/64"),
                lan("198.18.1.4/24", "2001:2:0:1::4/64"),
                GatewayHost {
                    v4: "198.19.1.2/24",
                    v6: "2001:2:0:2::2/64",
                    gw4: "198.19.1.1",
                    gw6: "2001:2:0:2::1",
                },
            ],
        )
    }

    /// One host per entry of `hosts`, each on a veth to the DUT (at most four:
    /// their engine ends replace `GATEWAY_PORTS` in order).
    pub fn with_hosts(tag: &str, hosts: &[GatewayHost]) -> io::Result<GatewayTopo> {
        assert!(hosts.len() <= GATEWAY_PORTS.len());
        let dut = Netns::new(&format!("{tag}d"))?;
        let mut namespaces = Vec::new();
        let mut links = Vec::new();
        for (i, h) in hosts.iter().enumerate() {
            let ns = Netns::new(&format!("{tag}h{}", i + 1))?;
            let l = VethPair::new(&ns, &dut, 1)?;
            // The engine owns the DUT's interfaces: keep the DUT kernel's IPv6 quiet on them.
            dut.sysctl(&format!("net.ipv6.conf.{}.disable_ipv6", l.b.name), "1")?;
            l.addr(&ns, &l.a, h.v4)?;
            l.addr(&ns, &l.a, h.v6)?;
            ns.ip(&["route", "add", "default", "via", h.gw4])?;
            ns.ip(&["-6", "route", "add", "default", "via", h.gw6])?;
            namespaces.push(ns);
            links.push(l);
        }
        Ok(GatewayTopo {
            dut,
            hosts: namespaces,
            links,
        })
    }

    /// The host-side interface of host `i`.
    pub fn host_if(&self, i: usize) -> &str {
        &self.links[i].a.name
    }

    /// The MAC of host `i`'s interface.
    pub fn host_mac(&self, i: usize) -> [u8; 6] {
        self.links[i]
            .mac(&self.hosts[i], &self.links[i].a)
            .expect("host MAC")
    }

    /// The template with the real interface names and a unique ctl socket.
    pub fn config(&self, template: &str, ctl: &Path) -> String {
        let mut out = String::new();
        for line in template.lines() {
            if line.trim_start().starts_with("ctl_socket") {
                out += &format!("ctl_socket = \"{}\"\n", ctl.display());
                continue;
            }
            let mut l = line.to_string();
            for (p, link) in GATEWAY_PORTS.iter().zip(&self.links) {
                l = l.replace(&format!("\"{p}\""), &format!("\"{}\"", link.b.name));
            }
            out += &l;
            out.push('\n');
        }
        out
    }
}
