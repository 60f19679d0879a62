//! Telling the service manager how the engine is doing: the `sd_notify(3)`
//! protocol behind systemd's `Type=notify` (examples/pktengine.service).
//!
//! ```text
//! run(): Notifier::from_env      socket made and connected here, as root, before any seccomp filter
//! every worker running, ctl socket listening, all threads confined
//!        READY=1  MAINPID=  STATUS=running: ...
//! SIGHUP / ctl reload
//!        RELOADING=1  MONOTONIC_USEC=  STATUS=reloading ...
//!        READY=1  STATUS=running, reloaded: ... | reload refused, ...
//! WatchdogSec= set: WATCHDOG=1 every half period, from the control loop
//! SIGTERM / SIGINT / --duration
//!        STOPPING=1  STATUS=stopping: ...
//! ```
//!
//! The messages are `sd_notify`'s [`NotifyState`]s; the socket is not the
//! crate's. `sd_notify::notify` makes a new socket and connects it for every
//! message, and the control thread's seccomp filter has neither `socket` nor
//! `connect` (the process would die of SIGSYS at the first reload). So the
//! socket is made once at start and connected while the process is still
//! root: from then on a `send` (`sendto`, which the control filter allows)
//! reaches the manager whatever the user and the permissions of the socket's
//! directory. All messages come from the main thread, the control thread, so
//! a stalled control loop stops the watchdog pings and systemd sees it.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

pub use sd_notify::NotifyState;

/// A connected datagram socket to the service manager.
#[derive(Debug)]
pub struct Notifier {
    sock: UnixDatagram,
    /// MAINPID, read at start: getpid is not in the control thread's filter.
    pid: u32,
    /// The watchdog period (`WATCHDOG_USEC`, for this process) and the last ping.
    watchdog: Option<(Duration, Instant)>,
}

impl Notifier {
    /// The manager named by `NOTIFY_SOCKET`, if any (None: not started by
    /// one, nothing is sent). An address that cannot be reached is logged
    /// and the engine runs on without it, as sd_notify(3) does: a manager
    /// that waits for READY=1 stops the engine at its start timeout, and the
    /// warning says why.
    pub fn from_env() -> Option<Notifier> {
        let addr = std::env::var_os("NOTIFY_SOCKET")?;
        let addr = addr.to_string_lossy();
        match Notifier::connect(&addr) {
            Ok(mut n) => {
                n.watchdog = sd_notify::watchdog_enabled()
                    .filter(|d| !d.is_zero())
                    .map(|d| (d, Instant::now()));
                Some(n)
            }
            Err(e) => {
                tracing::warn!(
                    "NOTIFY_SOCKET={addr}: {e}; the service manager will not hear from the engine"
                );
                None
            }
        }
    }

    /// A socket connected to `addr`: a path, or `@name` for an abstract one.
    pub fn connect(addr: &str) -> io::Result<Notifier> {
        let sa = match addr.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes())?
            }
            None if addr.starts_with('/') => SocketAddr::from_pathname(addr)?,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "neither an absolute path nor @abstract",
                ))
            }
        };
        let sock = UnixDatagram::unbound()?;
        sock.connect_addr(&sa)?;
        // A manager that does not read must not stall the control loop.
        sock.set_nonblocking(true)?;
        Ok(Notifier {
            sock,
            pid: std::process::id(),
            watchdog: None,
        })
    }

    /// Sends one message of `states`, one `KEY=VALUE` a line.
    pub fn send(&self, states: &[NotifyState<'_>]) -> io::Result<()> {
        let mut msg = String::new();
        for s in states {
            msg.push_str(&s.to_string());
            msg.push('\n');
        }
        let n = self.sock.send(msg.as_bytes())?;
        if n != msg.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "notification cut short",
            ));
        }
        Ok(())
    }

    /// Sends, and logs a failure (the engine goes on: the manager may be gone).
    fn tell(&self, states: &[NotifyState<'_>]) {
        if let Err(e) = self.send(states) {
            tracing::warn!("service manager notification failed: {e}");
        }
    }

    /// Every worker runs and the ctl socket listens.
    pub fn ready(&self, status: &str) {
        let status = one_line(status);
        self.tell(&[
            NotifyState::Ready,
            NotifyState::MainPid(self.pid),
            NotifyState::Status(&status),
        ]);
    }

    /// A reload begins (systemd 253 and later require the monotonic time with it).
    pub fn reloading(&self) {
        let mut states = vec![
            NotifyState::Reloading,
            NotifyState::Status("reloading the configuration"),
        ];
        if let Ok(now) = NotifyState::monotonic_usec_now() {
            states.push(now);
        }
        self.tell(&states);
    }

    /// A reload ended, applied or refused: the engine runs either way.
    pub fn reloaded(&self, result: &Result<String, String>) {
        let status = match result {
            Ok(m) => one_line(&format!("running, reloaded: {m}")),
            Err(e) => one_line(&format!(
                "running, reload refused, the running configuration stays: {e}"
            )),
        };
        self.tell(&[NotifyState::Ready, NotifyState::Status(&status)]);
    }

    /// Shutdown begins.
    pub fn stopping(&self, status: &str) {
        self.tell(&[
            NotifyState::Stopping,
            NotifyState::Status(&one_line(status)),
        ]);
    }

    /// From the control loop: WATCHDOG=1 when half the period has passed
    /// since the last one (sd_watchdog_enabled(3) advises half).
    pub fn watchdog(&mut self, now: Instant) {
        let Some((period, last)) = self.watchdog else {
            return;
        };
        if now.duration_since(last) >= period / 2 {
            self.tell(&[NotifyState::Watchdog]);
            self.watchdog = Some((period, now));
        }
    }
}

/// STATUS= is one line: the rest would be read as more assignments.
fn one_line(s: &str) -> String {
    let s: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    s.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(tag: &str) -> (UnixDatagram, std::path::PathBuf) {
        let p = std::env::temp_dir().join(format!("pktengine-notify-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let l = UnixDatagram::bind(&p).unwrap();
        l.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        (l, p)
    }

    fn recv(l: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = l.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn messages_are_what_sd_notify_expects() {
        let (l, p) = listener("msgs");
        let n = Notifier::connect(p.to_str().unwrap()).unwrap();
        n.ready("running: 2 ports\n1 worker");
        let m = recv(&l);
        assert_eq!(
            m,
            format!(
                "READY=1\nMAINPID={}\nSTATUS=running: 2 ports; 1 worker\n",
                std::process::id()
            )
        );
        n.reloading();
        let m = recv(&l);
        assert!(
            m.starts_with("RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC="),
            "{m}"
        );
        let usec: u64 = m
            .lines()
            .last()
            .unwrap()
            .trim_start_matches("MONOTONIC_USEC=")
            .parse()
            .unwrap();
        assert!(usec > 0);
        n.reloaded(&Err("reload refused:\nline 3: bad".into()));
        assert_eq!(recv(&l), "READY=1\nSTATUS=running, reload refused, the running configuration stays: reload refused:; line 3: bad\n");
        n.stopping("stopping");
        assert_eq!(recv(&l), "STOPPING=1\nSTATUS=stopping\n");
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn the_watchdog_pings_at_half_the_period() {
        let (l, p) = listener("wd");
        let mut n = Notifier::connect(p.to_str().unwrap()).unwrap();
        let t0 = Instant::now();
        n.watchdog = Some((Duration::from_secs(10), t0));
        n.watchdog(t0 + Duration::from_secs(4));
        n.watchdog(t0 + Duration::from_secs(5));
        n.watchdog(t0 + Duration::from_secs(9));
        n.watchdog(t0 + Duration::from_secs(10));
        assert_eq!(recv(&l), "WATCHDOG=1\n");
        assert_eq!(recv(&l), "WATCHDOG=1\n");
        l.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        assert!(
            l.recv(&mut buf).is_err(),
            "only two pings in 10 s of a 10 s period"
        );
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn abstract_and_relative_addresses() {
        let name = format!("pktengine-notify-test-{}", std::process::id());
        use std::os::linux::net::SocketAddrExt;
        let l = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
            .unwrap();
        l.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        Notifier::connect(&format!("@{name}"))
            .unwrap()
            .stopping("x");
        assert_eq!(recv(&l), "STOPPING=1\nSTATUS=x\n");
        assert!(Notifier::connect("relative/path").is_err());
    }

    #[test]
    fn every_message_is_sent_under_the_control_filter() {
        // The order of `run`: connect first, then the control thread's seccomp
        // filter (with an errno instead of the kill, so the test sees a refusal:
        // getpid refused would show as MAINPID=4294967295).
        use crate::runtime::privileges::{seccomp, Role};
        let (l, p) = listener("seccomp");
        let path = p.clone();
        let (sent, late) = std::thread::spawn(move || {
            let mut n = Notifier::connect(path.to_str().unwrap()).unwrap();
            n.watchdog = Some((Duration::from_millis(2), Instant::now()));
            seccomp::install_with(
                Role::Control,
                seccompiler::SeccompAction::Errno(libc::EPERM as u32),
            )
            .unwrap();
            n.ready("running");
            n.reloading();
            n.reloaded(&Ok("ok".into()));
            std::thread::sleep(Duration::from_millis(2));
            n.watchdog(Instant::now());
            n.stopping("stopping");
            // What sd_notify::notify does per message: a new socket, connected now.
            let late = Notifier::connect(path.to_str().unwrap()).map(|_| ());
            (
                n.send(&[NotifyState::Ready]).map_err(|e| e.to_string()),
                late.map_err(|e| e.raw_os_error()),
            )
        })
        .join()
        .unwrap();
        assert_eq!(
            recv(&l),
            format!("READY=1\nMAINPID={}\nSTATUS=running\n", std::process::id())
        );
        assert!(recv(&l)
            .starts_with("RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC="));
        assert_eq!(recv(&l), "READY=1\nSTATUS=running, reloaded: ok\n");
        assert_eq!(recv(&l), "WATCHDOG=1\n");
        assert_eq!(recv(&l), "STOPPING=1\nSTATUS=stopping\n");
        assert_eq!(sent, Ok(()));
        assert_eq!(recv(&l), "READY=1\n");
        assert_eq!(
            late,
            Err(Some(libc::EPERM)),
            "the control filter refuses a socket made after confinement"
        );
        let _ = std::fs::remove_file(&p);
    }
}
