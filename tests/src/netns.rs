//! Network namespaces and veth pairs for tests, removed on drop (also when
//! the test panics). Names carry the pid, a counter and a short random part,
//! so tests running in parallel (and in several processes) never collide;
//! leftovers of a killed test process are swept on the next run.
//!
//! Addresses used by the tests come only from 198.18.0.0/15 and 2001:2::/48.
use std::io;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

/// Prefix of every namespace the harness creates.
const NS_PREFIX: &str = "pkt-";

fn short_random() -> u32 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let local = 0u8;
    let mut h =
        t ^ (&local as *const u8 as usize as u32) ^ COUNTER.load(Ordering::Relaxed).rotate_left(16);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2c1b_3c6d);
    h ^= h >> 12;
    h & 0xfff
}

fn base36(mut n: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    loop {
        s.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// Runs a command; Err if it cannot start or exits non-zero (with its stderr).
pub fn run(cmd: &str, args: &[&str]) -> io::Result<Output> {
    let out = Command::new(cmd).args(args).stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cmd} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        )));
    }
    Ok(out)
}

/// Deletes namespaces left by test processes that no longer exist.
fn sweep_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace named `pkt-<pid>-<n>-<rand>-<tag>` with `lo` up.
    pub fn new(tag: &str) -> io::Result<Netns> {
        SWEEP.call_once(sweep_stale);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{NS_PREFIX}{}-{n}-{:03x}-{tag}",
            std::process::id(),
            short_random()
        );
        run("ip", &["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Path of the namespace file (for setns).
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) -> io::Result<Output> {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// Runs a command inside the namespace (`ip netns exec`), checking success.
    pub fn exec(&self, cmd: &str, args: &[&str]) -> io::Result<Output> {
        let mut a = vec!["netns", "exec", self.name.as_str(), cmd];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// A `Command` that runs `cmd` inside the namespace (to spawn it).
    pub fn command(&self, cmd: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.name.as_str(), cmd]);
        c
    }

    /// Runs `f` on a fresh thread that entered this namespace (setns), and
    /// returns its result; a panic in `f` propagates. Sockets and fds that
    /// `f` creates keep the namespace when returned to the caller.
    pub fn run<T: Send, F: FnOnce() -> T + Send>(&self, f: F) -> T {
        let path = self.path();
        std::thread::scope(|s| {
            let h = s.spawn(move || {
                engine::xsk::enter_netns(&path).expect("entering the network namespace");
                f()
            });
            match h.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            }
        })
    }

    /// Sets a sysctl inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        self.exec("sysctl", &["-qw", &format!("{key}={value}")])
            .map(|_| ())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace also deletes the interfaces inside it.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// One end of a veth pair.
#[derive(Debug, Clone)]
pub struct VethEnd {
    /// Interface name.
    pub name: String,
    /// Namespace name.
    pub ns: String,
}

/// A veth pair with one end in each of two namespaces, deleted on drop.
#[derive(Debug)]
pub struct VethPair {
    /// The first end.
    pub a: VethEnd,
    /// The second end.
    pub b: VethEnd,
}

impl VethPair {
    /// Creates a pair `a` in `ns_a`, `b` in `ns_b`, both up, with `queues`
    /// RX and TX queues on each end and TX checksum offload off on both
    /// (so the frames the engine receives carry complete checksums).
    pub fn new(ns_a: &Netns, ns_b: &Netns, queues: u32) -> io::Result<VethPair> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let stem = format!(
            "v{}{}{:03x}",
            base36(std::process::id()),
            base36(n),
            short_random()
        );
        let (a, b) = (format!("{stem}a"), format!("{stem}b"));
        debug_assert!(a.len() <= 15);
        let q = queues.to_string();
        run(
            "ip",
            &[
                "link",
                "add",
                &a,
                "netns",
                ns_a.name(),
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "type",
                "veth",
                "peer",
                "name",
                &b,
                "netns",
                ns_b.name(),
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
            ],
        )?;
        let pair = VethPair {
            a: VethEnd {
                name: a.clone(),
                ns: ns_a.name().to_string(),
            },
            b: VethEnd {
                name: b.clone(),
                ns: ns_b.name().to_string(),
            },
        };
        for (ns, dev) in [(ns_a, &a), (ns_b, &b)] {
            ns.exec("ethtool", &["-K", dev, "tx", "off"])?;
            ns.ip(&["link", "set", dev, "up"])?;
        }
        Ok(pair)
    }

    /// Adds an address (CIDR) to end `a` or `b`, checking it is in the test ranges.
    pub fn addr(&self, ns: &Netns, end: &VethEnd, cidr: &str) -> io::Result<()> {
        assert!(
            cidr.starts_with("198.18.")
                || cidr.starts_with("198.19.")
                || cidr.starts_with("2001:2:"),
            "test addresses must come from 198.18.0.0/15 or 2001:2::/48, not {cidr}"
        );
        ns.ip(&["addr", "add", cidr, "dev", &end.name, "nodad"]
            .into_iter()
            .filter(|a| cidr.contains(':') || *a != "nodad")
            .collect::<Vec<_>>())
            .map(|_| ())
    }

    /// The MAC address of an end.
    pub fn mac(&self, ns: &Netns, end: &VethEnd) -> io::Result<[u8; 6]> {
        let out = ns.ip(&["-o", "link", "show", "dev", &end.name])?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mac = text
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .ok_or_else(|| io::Error::other("no link/ether"))?;
        let mut m = [0u8; 6];
        for (i, part) in mac.split(':').enumerate().take(6) {
            m[i] = u8::from_str_radix(part, 16).map_err(io::Error::other)?;
        }
        Ok(m)
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["-n", &self.a.ns, "link", "del", &self.a.name])
            .output();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_short() {
        let a = Netns::new("t").unwrap();
        let b = Netns::new("t").unwrap();
        assert_ne!(a.name(), b.name());
        let v = VethPair::new(&a, &b, 1).unwrap();
        assert!(v.a.name.len() <= 15 && v.b.name.len() <= 15);
        v.addr(&a, &v.a, "198.18.0.1/24").unwrap();
        let path = a.path();
        let name = a.name().to_string();
        drop(v);
        drop(a);
        drop(b);
        assert!(!path.exists(), "{name} left behind");
    }

    #[test]
    fn cleanup_after_panic() {
        let names = std::sync::Mutex::new(Vec::new());
        let r = std::panic::catch_unwind(|| {
            let a = Netns::new("p").unwrap();
            let b = Netns::new("p").unwrap();
            let _v = VethPair::new(&a, &b, 2).unwrap();
            names.lock().unwrap().extend([a.path(), b.path()]);
            panic!("test failure");
        });
        assert!(r.is_err());
        for p in names.lock().unwrap().iter() {
            assert!(!p.exists(), "{} left behind after a panic", p.display());
        }
    }

    #[test]
    #[should_panic(expected = "test addresses")]
    fn refuses_foreign_addresses() {
        let a = Netns::new("f").unwrap();
        let b = Netns::new("f").unwrap();
        let v = VethPair::new(&a, &b, 1).unwrap();
        let _ = v.addr(&a, &v.a, "10.0.0.1/24");
    }

    #[test]
    fn run_enters_the_namespace() {
        let a = Netns::new("r").unwrap();
        let b = Netns::new("r").unwrap();
        let v = VethPair::new(&a, &b, 1).unwrap();
        let idx = a.run({
            let n = v.a.name.clone();
            move || engine::xsk::socket::ifindex(&n).is_ok()
        });
        assert!(idx, "interface visible inside the namespace");
        let n = v.a.name.clone();
        assert!(engine::xsk::socket::ifindex(&n).is_err(), "and not outside");
    }
}
