//! Least privilege after set-up (issue #20).
//!
//! Set-up needs root: AF_XDP sockets, UMEM registration (CAP_IPC_LOCK), BPF
//! programs and maps, XDP links, the ctl socket. Afterwards nothing does, so
//! the engine gives it all up before it takes its first packet:
//!
//! ```text
//! main thread                                      each worker
//! ───────────                                      ───────────
//! Privileges::new: look the user up (refuse early)
//! start_custodian (a root child: it must inherit CAP_DAC_OVERRIDE)
//!                                                  bind sockets; prepare(Worker):
//!                                                    bounding set cleared (CAP_SETPCAP still held),
//!                                                    keeps CAP_SETUID/CAP_SETGID only
//! XDP, ctl socket, metrics, filter
//! switch_user: the socket's inode to the custodian,
//!              prepare(Control), setgroups/setresgid/setresuid
//!   glibc runs these on every thread (SIGSETXID): ───► the same calls here, hence CAP_SETUID/SETGID;
//!                                                    uid ≠ 0 and no KEEPCAPS: permitted set emptied
//! go ─────────────────────────────────────────────► confine(Worker): caps, no_new_privs, seccomp; report
//! confine(Control); wait for every report
//! ```
//!
//! Credentials, capabilities, KEEPCAPS, the bounding set, no_new_privs and
//! seccomp filters are all per thread in Linux, so every thread does its own
//! part. Order matters twice: the bounding set can only be cleared while the
//! thread still holds CAP_SETPCAP (before the switch), and no thread may be
//! under seccomp when the switch happens (the broadcast setresuid would kill
//! it), so a thread confines itself only after the switch: [`Privileges::confine`]
//! refuses earlier.
//!
//! A thread started after the switch (the ctl front thread) inherits the
//! cleared sets of its creator and only calls [`Privileges::confine`] with
//! [`Role::Front`]; one started before it calls [`Privileges::prepare`] first.
//! A thread must be started before the control thread confines itself
//! (that filter has no `clone`), and filters stack onto children.
//!
//! Failures (no such user, seccomp refused, ...) stop the engine with the
//! reason, unless `pktengine run --allow-privileged`: then each is a warning
//! and the engine runs with what it could drop.

pub mod custodian;
pub mod seccomp;

use core::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use caps::{CapSet, Capability, CapsHashSet};
use crossbeam::channel::{self, Receiver, Sender};

/// What a thread does after set-up, and so what it may still do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The main thread: ctl requests, reload, neighbor and route tables, BPF map updates, joins.
    Control,
    /// A data-path worker: its rings, wakeups, poll, XDP_STATISTICS.
    Worker,
    /// `pktengine-ctl`: serves the ctl socket and the metrics listener (epoll).
    Front,
    /// The ctl socket's custodian process ([`custodian`]).
    Custodian,
    /// The VIP announcer process (`runtime::announce`): kernel routes of the LB's VIPs.
    Announcer,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Control => "control",
            Role::Worker => "worker",
            Role::Front => "front",
            Role::Custodian => "custodian",
            Role::Announcer => "announcer",
        }
    }

    /// The capabilities a thread of this role keeps once confined. No engine
    /// thread keeps any: map updates and reads go through descriptors opened
    /// during set-up (the bpf() commands on an fd check the fd, not the
    /// caller), /proc/self is readable by its own process, and closing a
    /// bpf_link needs nothing. Only the custodian keeps CAP_DAC_OVERRIDE, to
    /// remove the socket from a directory the engine's user cannot write,
    /// and the announcer CAP_NET_ADMIN, to add and remove its VIP routes.
    pub fn keeps(self) -> &'static [Capability] {
        match self {
            Role::Custodian => &[Capability::CAP_DAC_OVERRIDE],
            Role::Announcer => &[Capability::CAP_NET_ADMIN],
            Role::Control | Role::Worker | Role::Front => &[],
        }
    }
}

/// The account the engine runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

impl Account {
    /// Looks `name` up in the system's user database.
    pub fn lookup(name: &str) -> Result<Account, String> {
        match nix::unistd::User::from_name(name) {
            Ok(Some(u)) => Ok(Account {
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
            }),
            Ok(None) => Err(format!(
                "user `{name}` does not exist (create it with `useradd --system --no-create-home \
                 --shell /usr/sbin/nologin {name}`; scripts/deps.sh creates `pktengine`)"
            )),
            Err(e) => Err(format!("looking up user `{name}`: {e}")),
        }
    }
}

/// What one thread kept, read back from the kernel (`/proc/thread-self/status`).
/// Shown as `uid 998 gid 998, caps {}, bounding set {}, no_new_privs, seccomp worker (31 syscalls)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The thread's name (its `comm`).
    pub thread: String,
    /// Real, effective, saved and filesystem ids.
    pub uids: [u32; 4],
    pub gids: [u32; 4],
    /// Permitted, effective and bounding sets as masks.
    pub permitted: u64,
    pub effective: u64,
    pub bounding: u64,
    pub no_new_privs: bool,
    /// The role whose filter is installed and its number of calls.
    pub seccomp: Option<(Role, usize)>,
}

impl Report {
    /// Reads the calling thread's credentials.
    pub fn read() -> Result<Report, String> {
        let status = std::fs::read_to_string("/proc/thread-self/status")
            .map_err(|e| format!("/proc/thread-self/status: {e}"))?;
        let comm = std::fs::read_to_string("/proc/thread-self/comm").unwrap_or_default();
        Report::parse(comm.trim(), &status)
    }

    /// Parses a `/proc/.../status` text.
    pub fn parse(thread: &str, status: &str) -> Result<Report, String> {
        let field = |name: &str| -> Result<&str, String> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
                .ok_or_else(|| format!("no {name} in the thread's status"))
        };
        let ids = |name: &str| -> Result<[u32; 4], String> {
            let v: Vec<u32> = field(name)?
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            v.try_into().map_err(|_| format!("{name}: not four ids"))
        };
        let mask = |name: &str| -> Result<u64, String> {
            u64::from_str_radix(field(name)?, 16).map_err(|e| format!("{name}: {e}"))
        };
        Ok(Report {
            thread: thread.to_string(),
            uids: ids("Uid")?,
            gids: ids("Gid")?,
            permitted: mask("CapPrm")?,
            effective: mask("CapEff")?,
            bounding: mask("CapBnd")?,
            no_new_privs: field("NoNewPrivs")? == "1",
            seccomp: None,
        })
    }

    /// What is wrong with this thread for `role` as `account` (None: nothing).
    pub(crate) fn shortfall(&self, role: Role, account: Option<Account>) -> Option<String> {
        let allowed = role.keeps().iter().fold(0u64, |m, c| m | c.bitmask());
        let mut wrong = Vec::new();
        if self.permitted & !allowed != 0 || self.effective & !allowed != 0 {
            wrong.push(format!(
                "capabilities {} kept",
                cap_names(self.permitted | self.effective)
            ));
        }
        if self.bounding != 0 {
            wrong.push(format!(
                "bounding set {} not cleared",
                cap_names(self.bounding)
            ));
        }
        if let Some(a) = account {
            if self.uids.iter().any(|&u| u != a.uid) || self.gids.iter().any(|&g| g != a.gid) {
                wrong.push(format!(
                    "ids uid {:?} gid {:?}, not {}:{}",
                    self.uids, self.gids, a.uid, a.gid
                ));
            }
        }
        if !self.no_new_privs {
            wrong.push("no_new_privs not set".into());
        }
        (!wrong.is_empty()).then(|| wrong.join(", "))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = |v: &[u32; 4]| {
            if v.iter().all(|&x| x == v[0]) {
                v[0].to_string()
            } else {
                format!("{}/{}/{}/{}", v[0], v[1], v[2], v[3])
            }
        };
        write!(
            f,
            "uid {} gid {}, caps {}",
            ids(&self.uids),
            ids(&self.gids),
            cap_names(self.permitted)
        )?;
        if self.effective != self.permitted {
            write!(f, " (effective {})", cap_names(self.effective))?;
        }
        write!(f, ", bounding set {}", cap_names(self.bounding))?;
        f.write_str(if self.no_new_privs {
            ", no_new_privs"
        } else {
            ", new privileges possible"
        })?;
        match self.seccomp {
            Some((role, n)) => {
                write!(f, ", seccomp {} ({n} syscalls", role.name())?;
                for c in seccomp::refused(role) {
                    write!(f, ", {} refused", c.name)?;
                }
                f.write_str(")")
            }
            None => f.write_str(", no seccomp filter"),
        }
    }
}

/// `{cap_a, cap_b}` of a capability mask (unknown bits as `cap_N`).
pub fn cap_names(mask: u64) -> String {
    let mut names: Vec<(u8, String)> = Vec::new();
    for i in 0..64u8 {
        if mask & (1 << i) != 0 {
            let name = caps::all()
                .into_iter()
                .find(|c| c.index() == i)
                .map_or(format!("cap_{i}"), |c| c.to_string().to_lowercase());
            names.push((i, name));
        }
    }
    names.sort();
    format!(
        "{{{}}}",
        names
            .into_iter()
            .map(|(_, n)| n)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The engine's privilege plan, shared by every thread (clone it into each).
#[derive(Debug, Clone)]
pub struct Privileges(Arc<Plan>);

#[derive(Debug)]
struct Plan {
    user: String,
    /// None: nobody to switch to (only with `--allow-privileged`).
    account: Option<Account>,
    allow_privileged: bool,
    switched: AtomicBool,
    reports: Sender<Result<Report, String>>,
    received: Receiver<Result<Report, String>>,
    custodian: Mutex<Option<custodian::Custodian>>,
}

/// The message the engine stops with.
fn refusal(e: &str) -> String {
    format!("privileges: {e}; refusing to run with more privilege than the data path needs (`pktengine run --allow-privileged` runs anyway, with a warning)")
}

impl Privileges {
    /// Looks the engine's user up and builds every role's filter, before
    /// anything is attached. A user that does not exist or is root is
    /// refused unless `allow_privileged` (then the engine stays root, with
    /// the rest of the confinement).
    pub fn new(user: &str, allow_privileged: bool) -> Result<Privileges, String> {
        let account = Account::lookup(user).and_then(|a| {
            if a.uid == 0 || a.gid == 0 {
                Err(format!(
                    "user `{user}` is root (uid {} gid {})",
                    a.uid, a.gid
                ))
            } else {
                Ok(a)
            }
        });
        let account = match account {
            Ok(a) => Some(a),
            Err(e) if allow_privileged => {
                tracing::warn!("privileges: {e}; staying root (--allow-privileged)");
                None
            }
            Err(e) => return Err(refusal(&e)),
        };
        for role in [Role::Control, Role::Worker, Role::Front] {
            seccomp::program(role, seccompiler::SeccompAction::KillProcess)
                .map_err(|e| refusal(&e))?;
        }
        let (reports, received) = channel::unbounded();
        Ok(Privileges(Arc::new(Plan {
            user: user.to_string(),
            account,
            allow_privileged,
            switched: AtomicBool::new(false),
            reports,
            received,
            custodian: Mutex::new(None),
        })))
    }

    /// The account threads switch to (None: staying root).
    pub fn account(&self) -> Option<Account> {
        self.0.account
    }

    /// Ok, or a warning with `--allow-privileged`; else the refusal.
    fn check(&self, what: &str, r: Result<(), String>) -> Result<(), String> {
        match r {
            Ok(()) => Ok(()),
            Err(e) if self.0.allow_privileged => {
                tracing::warn!("privileges: {what}: {e} (running anyway: --allow-privileged)");
                Ok(())
            }
            Err(e) => Err(refusal(&format!("{what}: {e}"))),
        }
    }

    /// On a thread started before the switch, once it needs root no more:
    /// clears its bounding set (which needs CAP_SETPCAP, so now) and keeps only
    /// what the switch needs (glibc makes every thread call setgroups,
    /// setresgid and setresuid itself).
    pub fn prepare(&self, role: Role) -> Result<(), String> {
        let r = prepare_thread(role, self.0.account.is_some());
        self.check(&format!("thread {}", thread_name()), r)
    }

    /// First thing in `run`, while the process is still fully root: starts
    /// the custodian of the ctl socket to be bound at `socket` ([`custodian`]).
    pub fn start_custodian(&self, socket: &Path) -> Result<(), String> {
        match custodian::Custodian::spawn(socket, self.0.account) {
            Ok(c) => {
                tracing::info!(
                    "privileges: ctl socket custodian (pid {}): {}",
                    c.pid(),
                    c.report()
                );
                *self.0.custodian.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
                Ok(())
            }
            Err(e) => self.check("ctl socket custodian", Err(e)),
        }
    }

    /// On the main thread, when set-up is done (the ctl socket bound at
    /// `ctl_socket`) and every thread started before has called
    /// [`Privileges::prepare`]: tells the custodian which file to remove,
    /// then switches the whole process to the engine's user.
    pub fn switch_user(&self, ctl_socket: &Path) -> Result<(), String> {
        if let Some(c) = self
            .0
            .custodian
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            self.check("ctl socket custodian", c.watch(ctl_socket))?;
        }
        self.prepare(Role::Control)?;
        if let Some(a) = self.0.account {
            let r = switch_to(a);
            self.check(
                &format!(
                    "switching to user `{}` (uid {} gid {})",
                    self.0.user, a.uid, a.gid
                ),
                r,
            )?;
        }
        self.0.switched.store(true, Ordering::Release);
        Ok(())
    }

    /// At a clean exit, once the ctl listener is closed: the custodian
    /// removes the socket file; returns when it has (at most a second).
    pub fn finish(&self) {
        if let Some(c) = self
            .0
            .custodian
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            c.finish();
        }
    }

    /// On the thread itself, after [`Privileges::switch_user`]: drops every
    /// capability the role does not keep, sets no_new_privs, installs the
    /// role's seccomp filter, logs what the thread kept and reports it to
    /// [`Privileges::wait_confined`].
    pub fn confine(&self, role: Role) -> Result<Report, String> {
        let r = self.confine_thread(role);
        if let Err(e) = &r {
            tracing::error!("{e}");
        }
        let _ = self.0.reports.send(r.clone());
        r
    }

    fn confine_thread(&self, role: Role) -> Result<Report, String> {
        let thread = thread_name();
        let what = format!("thread {thread}");
        if !self.0.switched.load(Ordering::Acquire) {
            // Not even with --allow-privileged: a filter installed now would
            // kill the process when the switch reaches this thread.
            return Err(refusal(&format!("{what}: confined before the user switch")));
        }
        self.check(&what, keep_only(role.keeps()).map(|_| ()))?;
        self.check(
            &what,
            caps::securebits::set_keepcaps(false).map_err(|e| format!("clearing KEEPCAPS: {e}")),
        )?;
        self.check(
            &what,
            nix::sys::prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}")),
        )?;
        let mut report = Report::read().map_err(|e| refusal(&format!("{what}: {e}")))?;
        if let Some(wrong) = report.shortfall(role, self.0.account) {
            self.check(&what, Err(wrong))?;
        }
        match seccomp::install(role) {
            Ok(n) => report.seccomp = Some((role, n)),
            Err(e) => self.check(&what, Err(e))?,
        }
        tracing::info!("privileges: thread {}: {report}", report.thread);
        #[cfg(feature = "fault-injection")]
        fault_after_confinement(&report.thread);
        Ok(report)
    }

    /// On the main thread once it is confined: waits for `threads` reports
    /// (its own included); the first refusal is returned.
    pub fn wait_confined(&self, threads: usize, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        for i in 0..threads {
            match self.0.received.recv_deadline(deadline) {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(refusal(&format!(
                        "{} of {threads} threads did not confine themselves within {within:?}",
                        threads - i
                    )))
                }
            }
        }
        Ok(())
    }
}

/// The calling thread's name as the kernel has it (`comm`), e.g. `pktengine-w0`.
fn thread_name() -> String {
    std::fs::read_to_string("/proc/thread-self/comm")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| std::thread::current().name().unwrap_or("?").to_string())
}

/// Clears the calling thread's bounding and ambient sets and keeps `role`'s
/// capabilities, plus CAP_SETUID and CAP_SETGID when a switch follows.
fn prepare_thread(role: Role, switching: bool) -> Result<(), String> {
    caps::clear(None, CapSet::Bounding).map_err(|e| format!("clearing the bounding set: {e}"))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| format!("clearing the ambient set: {e}"))?;
    let mut keep = role.keeps().to_vec();
    if switching {
        keep.extend([Capability::CAP_SETUID, Capability::CAP_SETGID]);
    }
    if !role.keeps().is_empty() {
        // Without KEEPCAPS the switch away from uid 0 empties the permitted set.
        caps::securebits::set_keepcaps(true).map_err(|e| format!("setting KEEPCAPS: {e}"))?;
    }
    keep_only(&keep).map(|_| ())
}

/// setgroups, setresgid, setresuid, in that order (groups and gid need
/// CAP_SETGID, which the uid change takes away).
pub(crate) fn switch_to(a: Account) -> Result<(), String> {
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
    let g = Gid::from_raw(a.gid);
    setresgid(g, g, g).map_err(|e| format!("setresgid: {e}"))?;
    let u = Uid::from_raw(a.uid);
    setresuid(u, u, u).map_err(|e| format!("setresuid: {e}"))
}

/// Reduces the calling thread's permitted and effective sets to `keep` (those
/// of them it has) and clears its inheritable set. Returns the kept names.
pub fn keep_only(keep: &[Capability]) -> Result<Vec<String>, String> {
    let permitted =
        caps::read(None, CapSet::Permitted).map_err(|e| format!("reading capabilities: {e}"))?;
    let kept: CapsHashSet = keep
        .iter()
        .copied()
        .filter(|c| permitted.contains(c))
        .collect();
    caps::set(None, CapSet::Effective, &kept)
        .map_err(|e| format!("setting effective capabilities: {e}"))?;
    caps::set(None, CapSet::Permitted, &kept)
        .map_err(|e| format!("setting permitted capabilities: {e}"))?;
    caps::clear(None, CapSet::Inheritable)
        .map_err(|e| format!("clearing inheritable capabilities: {e}"))?;
    let mut names: Vec<String> = kept.iter().map(|c| c.to_string().to_lowercase()).collect();
    names.sort();
    Ok(names)
}

/// Test builds only: `PKTENGINE_FAULT=seccomp-w0` makes worker 0 call
/// getppid(), which no role allows, right after it is confined.
#[cfg(feature = "fault-injection")]
fn fault_after_confinement(thread: &str) {
    if thread == "pktengine-w0" && std::env::var("PKTENGINE_FAULT").as_deref() == Ok("seccomp-w0") {
        tracing::warn!("fault injection: {thread} calls getppid() after confinement");
        let _ = nix::unistd::getppid();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_drops_what_it_does_not_keep() {
        // On a thread of its own: capabilities are per thread.
        std::thread::spawn(|| {
            let before = caps::read(None, CapSet::Permitted).unwrap();
            let kept = keep_only(&[Capability::CAP_NET_ADMIN]).unwrap();
            let after = caps::read(None, CapSet::Permitted).unwrap();
            assert!(after.len() <= 1);
            assert_eq!(
                after.contains(&Capability::CAP_NET_ADMIN),
                before.contains(&Capability::CAP_NET_ADMIN)
            );
            assert_eq!(kept.len(), after.len());
            assert!(caps::read(None, CapSet::Effective)
                .unwrap()
                .is_subset(&after));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn preparing_clears_the_bounding_set_and_keeps_what_the_switch_needs() {
        if !caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false) {
            eprintln!("skipped: needs CAP_SETPCAP (run as root)");
            return;
        }
        let r = std::thread::spawn(|| {
            prepare_thread(Role::Worker, true).unwrap();
            Report::read().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(r.bounding, 0, "{r}");
        let switch = Capability::CAP_SETUID.bitmask() | Capability::CAP_SETGID.bitmask();
        assert_eq!(r.permitted, switch, "{r}");
        // This thread (another one) still has its own sets.
        assert_ne!(Report::read().unwrap().bounding, 0);
    }

    #[test]
    fn report_reads_the_status_file() {
        let status = "Name:\tpktengine-w0\nUid:\t998\t998\t998\t998\nGid:\t997\t997\t997\t997\n\
                      CapInh:\t0000000000000000\nCapPrm:\t0000000000000002\nCapEff:\t0000000000000002\n\
                      CapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n";
        let mut r = Report::parse("pktengine-w0", status).unwrap();
        assert_eq!(r.uids, [998; 4]);
        assert_eq!(r.gids, [997; 4]);
        assert!(r.no_new_privs);
        r.seccomp = Some((Role::Custodian, 9));
        assert_eq!(
            r.to_string(),
            "uid 998 gid 997, caps {cap_dac_override}, bounding set {}, no_new_privs, seccomp custodian (9 syscalls)"
        );
        let me = Some(Account { uid: 998, gid: 997 });
        assert_eq!(r.shortfall(Role::Custodian, me), None);
        let wrong = r
            .shortfall(Role::Worker, Some(Account { uid: 998, gid: 1 }))
            .unwrap();
        assert!(
            wrong.contains("capabilities {cap_dac_override} kept") && wrong.contains("not 998:1"),
            "{wrong}"
        );
        let full = Report::parse(
            "x",
            &status
                .replace("CapBnd:\t0000000000000000", "CapBnd:\t000001ffffffffff")
                .replace("NoNewPrivs:\t1", "NoNewPrivs:\t0"),
        )
        .unwrap();
        let wrong = full.shortfall(Role::Custodian, me).unwrap();
        assert!(
            wrong.contains("bounding set {cap_chown, ") && wrong.contains("no_new_privs not set"),
            "{wrong}"
        );
    }

    #[test]
    fn a_missing_user_is_refused_unless_privileged_is_allowed() {
        let e = Privileges::new("pktengine-nosuchuser", false).unwrap_err();
        assert!(
            e.contains("user `pktengine-nosuchuser` does not exist")
                && e.contains("--allow-privileged"),
            "{e}"
        );
        let p = Privileges::new("pktengine-nosuchuser", true).unwrap();
        assert_eq!(p.account(), None);
        let e = Privileges::new("root", false).unwrap_err();
        assert!(e.contains("is root"), "{e}");
    }

    #[test]
    fn confining_before_the_switch_is_refused_even_when_privileged() {
        let p = Privileges::new("pktengine-nosuchuser", true).unwrap();
        let e = std::thread::spawn(move || p.confine(Role::Worker))
            .join()
            .unwrap()
            .unwrap_err();
        assert!(e.contains("confined before the user switch"), "{e}");
    }
}
