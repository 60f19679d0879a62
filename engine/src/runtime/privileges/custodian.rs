//! The ctl socket's custodian: a small process that removes the socket file
//! once the engine is gone.
//!
//! The engine binds its ctl socket as root, often in a directory only root
//! may write (`/run/pktengine` made by an earlier run, a test's temporary
//! directory). Once it runs as its own user it cannot unlink there, and it
//! keeps no capability that would let it (CAP_DAC_OVERRIDE, even only in the
//! permitted set, would let a taken-over control thread raise it and write
//! any file). So before the switch the engine starts this process, which:
//!
//! - switches to the same user but keeps CAP_DAC_OVERRIDE (its only
//!   capability), clears its bounding set, sets no_new_privs and installs the
//!   `custodian` seccomp filter (read, stat, unlink, exit and memory calls);
//! - answers `ok` and its credentials on stdout;
//! - reads the socket's device and inode from stdin once the engine has
//!   bound it;
//! - waits for EOF on stdin, a pipe whose other end only the engine holds,
//!   so EOF comes when the engine closes it at a clean exit or when the
//!   engine dies in any way (SIGKILL, a seccomp kill, a panic);
//! - removes the socket if the path still names the engine's socket (same
//!   device and inode), and exits.
//!
//! Nothing reaches it but that EOF: it reads no data, opens no file and takes
//! no signal that was meant for the engine (its own process group; SIGINT,
//! SIGTERM and SIGHUP are caught and ignored), so the one capability it keeps
//! cannot be talked into anything. A side benefit: the socket is removed
//! after a crash too, where the engine itself could not.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use caps::{CapSet, Capability};

use super::{keep_only, seccomp, switch_to, Account, Report, Role};

/// The hidden `pktengine` subcommand that runs [`main`].
pub const SUBCOMMAND: &str = "ctl-socket-custodian";

/// The engine's handle on its custodian.
#[derive(Debug)]
pub struct Custodian {
    child: Child,
    report: String,
}

impl Custodian {
    /// Starts the custodian of the socket to be bound at `socket`, as
    /// `account` (None: it stays root), and waits for its `ok`. The engine
    /// does this first thing, while it is still fully root (the custodian
    /// inherits CAP_DAC_OVERRIDE only through the bounding set the engine
    /// then still has) and before anything is attached (starting a process
    /// takes a while; frames arriving before the workers run are lost).
    pub fn spawn(socket: &Path, account: Option<Account>) -> Result<Custodian, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("finding the pktengine binary: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.arg(SUBCOMMAND).arg("--socket").arg(socket);
        if let Some(a) = account {
            cmd.args(["--uid", &a.uid.to_string(), "--gid", &a.gid.to_string()]);
        }
        // Its own process group: a terminal's ^C goes to the engine, which then exits cleanly.
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0);
        let mut child = cmd.spawn().map_err(|e| format!("starting it: {e}"))?;
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|out| BufReader::new(out).read_line(&mut line));
        match (read, line.strip_prefix("ok ")) {
            (Some(Ok(_)), Some(report)) => Ok(Custodian {
                report: report.trim().to_string(),
                child,
            }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "it did not start: {}",
                    if line.is_empty() {
                        "no answer"
                    } else {
                        line.trim()
                    }
                ))
            }
        }
    }

    /// Once the socket is bound: tells the custodian which file it is
    /// (device and inode), so it removes that file and no other.
    pub fn watch(&mut self, socket: &Path) -> Result<(), String> {
        let meta =
            std::fs::symlink_metadata(socket).map_err(|e| format!("{}: {e}", socket.display()))?;
        let stdin = self.child.stdin.as_mut().ok_or("its pipe is closed")?;
        writeln!(stdin, "{} {}", meta.dev(), meta.ino())
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("telling it the socket: {e}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it kept, as it reported.
    pub fn report(&self) -> &str {
        &self.report
    }

    /// At a clean exit, after the listener is closed: lets it remove the
    /// socket and waits (up to a second) until it has.
    pub fn finish(mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        tracing::warn!(
            "ctl socket custodian (pid {}) did not finish within a second",
            self.child.id()
        );
    }
}

/// The custodian process (`pktengine ctl-socket-custodian`). Returns the exit code.
pub fn main(socket: &Path, account: Option<Account>) -> i32 {
    // Signals sent to the engine's whole group or session are not for it:
    // it ends when the engine has.
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        let _ = signal_hook::flag::register(
            sig,
            std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        );
    }
    let mut out = std::io::stdout();
    match confine_self(account) {
        Ok(report) => {
            let _ = writeln!(out, "ok {report}").and_then(|()| out.flush());
        }
        Err(e) => {
            let _ = writeln!(out, "{e}").and_then(|()| out.flush());
            return 1;
        }
    }
    // The socket's identity, once the engine has bound it; then EOF (or an
    // error) when the engine is gone.
    let mut stdin = BufReader::new(std::io::stdin().lock());
    let mut line = String::new();
    let identity: Option<(u64, u64)> = match stdin.read_line(&mut line) {
        Ok(n) if n > 0 => {
            let mut w = line.split_whitespace().map(|w| w.parse::<u64>().ok());
            w.next().flatten().zip(w.next().flatten())
        }
        _ => None,
    };
    let mut buf = [0u8; 64];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let Some((dev, ino)) = identity else { return 0 };
    match std::fs::symlink_metadata(socket) {
        Ok(m) if m.dev() == dev && m.ino() == ino => {
            if let Err(e) = std::fs::remove_file(socket) {
                eprintln!(
                    "pktengine ctl-socket-custodian: removing {}: {e}",
                    socket.display()
                );
                return 1;
            }
        }
        // Gone (the engine could remove it itself) or another engine's by now: not ours.
        _ => {}
    }
    0
}

/// Switches to `account` keeping CAP_DAC_OVERRIDE only, then the filter.
fn confine_self(account: Option<Account>) -> Result<String, String> {
    let keep = Role::Custodian.keeps();
    caps::clear(None, CapSet::Bounding).map_err(|e| format!("clearing the bounding set: {e}"))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| format!("clearing the ambient set: {e}"))?;
    if let Some(a) = account {
        let mut switch = keep.to_vec();
        switch.extend([Capability::CAP_SETUID, Capability::CAP_SETGID]);
        keep_only(&switch)?;
        caps::securebits::set_keepcaps(true).map_err(|e| format!("setting KEEPCAPS: {e}"))?;
        switch_to(a)?;
        caps::securebits::set_keepcaps(false).map_err(|e| format!("clearing KEEPCAPS: {e}"))?;
    }
    // The switch emptied the effective set; raise what is kept again.
    let kept = keep_only(keep)?;
    if kept.len() != keep.len() {
        return Err(format!("could not keep {keep:?} (kept {kept:?})"));
    }
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
    let mut report = Report::read()?;
    if let Some(wrong) = report.shortfall(Role::Custodian, account) {
        return Err(wrong);
    }
    report.seccomp = Some((Role::Custodian, seccomp::install(Role::Custodian)?));
    Ok(report.to_string())
}
