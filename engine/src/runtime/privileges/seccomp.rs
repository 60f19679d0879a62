//! The system calls each thread role may make once it is confined, as
//! seccomp allow-lists (seccompiler builds the BPF program). Anything else
//! kills the whole process with SIGSYS: a thread that tries what its role
//! never does has been taken over, and the engine stops rather than lets it
//! go on. The lists were found by tracing every netns test
//! (`strace -f`, then the filters' log action over the whole suite) and are
//! kept as short as that allows; `docs/ROBUSTNESS.md` explains each role's.
//!
//! A few calls are allowed only with some arguments: no executable memory
//! (`mmap`/`mprotect` without PROT_EXEC), files opened read-only (`openat`
//! without write access, O_CREAT or O_TRUNC), `ioctl` only FIONBIO, `bpf`
//! only map element commands (no program or map creation), `getsockopt` only
//! at the SOL_XDP level on workers.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

use super::Role;

/// What a call's arguments must be, beyond its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Args {
    /// Any arguments.
    Any,
    /// `mmap`/`mprotect`: the protection (argument 2) without PROT_EXEC.
    NoExec,
    /// `openat`: flags (argument 2) read-only: no write access, no O_CREAT, no O_TRUNC.
    ReadOnly,
    /// `ioctl`: request (argument 1) FIONBIO only (std's `set_nonblocking`).
    Fionbio,
    /// `bpf`: command (argument 0) one of the map element commands.
    MapElements,
    /// `getsockopt`: level (argument 1) SOL_XDP (XDP_STATISTICS, XDP_OPTIONS).
    SolXdp,
    /// `fcntl`: command (argument 1) F_GETFD only (std checks a descriptor is
    /// open before closing it, in debug builds).
    GetFd,
    /// `fcntl`: F_GETFD, F_SETFD, F_GETFL, F_SETFL (descriptor and status flags).
    FdFlags,
}

/// One allowed system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub name: &'static str,
    pub nr: i64,
    pub args: Args,
}

macro_rules! calls {
    ($($name:ident $(: $args:ident)?),* $(,)?) => {
        &[$(Call { name: stringify!($name), nr: sysno::$name, args: calls!(@args $($args)?) }),*]
    };
    (@args) => { Args::Any };
    (@args $a:ident) => { Args::$a };
}

/// System call numbers by name (libc's `SYS_*`), so the lists read like strace.
#[allow(non_upper_case_globals)]
mod sysno {
    macro_rules! nrs {
        ($($name:ident = $sys:ident),* $(,)?) => { $(#[allow(dead_code)] pub const $name: i64 = libc::$sys as i64;)* };
    }
    nrs! {
        accept4 = SYS_accept4, bpf = SYS_bpf, brk = SYS_brk, clock_gettime = SYS_clock_gettime,
        clock_nanosleep = SYS_clock_nanosleep, close = SYS_close, epoll_create1 = SYS_epoll_create1,
        epoll_ctl = SYS_epoll_ctl, epoll_pwait = SYS_epoll_pwait, epoll_pwait2 = SYS_epoll_pwait2,
        eventfd2 = SYS_eventfd2, exit = SYS_exit, exit_group = SYS_exit_group, fcntl = SYS_fcntl,
        futex = SYS_futex, getrandom = SYS_getrandom,
        getsockopt = SYS_getsockopt, gettid = SYS_gettid, ioctl = SYS_ioctl,
        madvise = SYS_madvise, mmap = SYS_mmap, mprotect = SYS_mprotect, mremap = SYS_mremap,
        munmap = SYS_munmap, nanosleep = SYS_nanosleep, newfstatat = SYS_newfstatat,
        openat = SYS_openat, pipe2 = SYS_pipe2, ppoll = SYS_ppoll, read = SYS_read,
        recvfrom = SYS_recvfrom, recvmsg = SYS_recvmsg, rt_sigprocmask = SYS_rt_sigprocmask,
        rt_sigreturn = SYS_rt_sigreturn, sched_yield = SYS_sched_yield, sendmsg = SYS_sendmsg,
        restart_syscall = SYS_restart_syscall, sendto = SYS_sendto, setsockopt = SYS_setsockopt, shutdown = SYS_shutdown,
        sigaltstack = SYS_sigaltstack, statx = SYS_statx, unlinkat = SYS_unlinkat,
        wait4 = SYS_wait4, write = SYS_write, writev = SYS_writev,
    }
    // Calls that only the older ABIs have (aarch64 has the *at and p* forms only).
    #[cfg(target_arch = "x86_64")]
    nrs! { epoll_wait = SYS_epoll_wait, poll = SYS_poll, unlink = SYS_unlink }
}

/// Every role: memory, locks and sleeps, signal return and masks (a signal
/// handler can run on any thread; a sleep it interrupted resumes through
/// restart_syscall), thread exit, logs to stderr, the random source of std's
/// hash maps.
const BASE: &[Call] = calls![
    mmap: NoExec, mprotect: NoExec, munmap, mremap, brk, madvise,
    futex, sched_yield, clock_gettime, clock_nanosleep, nanosleep, restart_syscall,
    rt_sigreturn, rt_sigprocmask, sigaltstack,
    write, getrandom, gettid, exit, exit_group,
];

/// Workers: the AF_XDP doorbells (sendto for TX, recvfrom for RX), poll when
/// idle, XDP_STATISTICS, the handoff eventfds (read, write), closing their
/// sockets at the end.
const WORKER: &[Call] = calls![sendto, recvfrom, getsockopt: SolXdp, read, close, fcntl: GetFd];
#[cfg(target_arch = "x86_64")]
const WORKER_ARCH: &[Call] = calls![poll];
#[cfg(not(target_arch = "x86_64"))]
const WORKER_ARCH: &[Call] = calls![ppoll];

/// The control thread (until the ctl server moves to the `Front` thread it
/// also serves the ctl socket and the metrics listener): reload reads the
/// configuration, a routes file and /sys; `ctl stats` reads
/// /proc/self/task/*/stat; BPF map reads and updates through the
/// descriptors it holds; the ctl and metrics connections (std's blocking
/// sockets with timeouts); the ctl socket's removal at exit (allowed, even
/// where the directory refuses it); waiting for the custodian.
const CONTROL: &[Call] = calls![
    openat: ReadOnly, read, close, statx, newfstatat,
    bpf: MapElements,
    accept4, recvfrom, sendto, setsockopt, ioctl: Fionbio, fcntl: FdFlags,
    unlinkat, wait4,
];
#[cfg(target_arch = "x86_64")]
const CONTROL_ARCH: &[Call] = calls![unlink];
#[cfg(not(target_arch = "x86_64"))]
const CONTROL_ARCH: &[Call] = &[];

/// The `pktengine-ctl` thread: an epoll loop (mio) over the ctl socket and
/// the metrics listener, with mio's waker (eventfd or pipe), SO_PEERCRED.
const FRONT: &[Call] = calls![
    epoll_create1, epoll_ctl, epoll_pwait, epoll_pwait2,
    accept4, read, recvfrom, recvmsg, writev, sendto, sendmsg, close, shutdown,
    getsockopt, setsockopt, fcntl: FdFlags, ioctl: Fionbio, eventfd2, pipe2, unlinkat,
];
#[cfg(target_arch = "x86_64")]
const FRONT_ARCH: &[Call] = calls![epoll_wait, unlink];
#[cfg(not(target_arch = "x86_64"))]
const FRONT_ARCH: &[Call] = &[];

/// The socket custodian (a process of its own): waits for EOF on its stdin,
/// checks the socket is still the engine's, removes it.
const CUSTODIAN: &[Call] = calls![read, close, fcntl: GetFd, statx, newfstatat, unlinkat];
#[cfg(target_arch = "x86_64")]
const CUSTODIAN_ARCH: &[Call] = calls![unlink];
#[cfg(not(target_arch = "x86_64"))]
const CUSTODIAN_ARCH: &[Call] = &[];

/// The VIP announcer (a process of its own): reads the engine's commands,
/// sends route requests and reads the kernel's answers on the rtnetlink
/// socket it opened before confining itself, answers the engine.
const ANNOUNCER: &[Call] = calls![read, sendto, recvfrom, close, fcntl: GetFd];

/// The calls `role` may make, base calls first, each once.
pub fn calls(role: Role) -> Vec<Call> {
    let (own, arch): (&[Call], &[Call]) = match role {
        Role::Worker => (WORKER, WORKER_ARCH),
        Role::Control => (CONTROL, CONTROL_ARCH),
        Role::Front => (FRONT, FRONT_ARCH),
        Role::Custodian => (CUSTODIAN, CUSTODIAN_ARCH),
        Role::Announcer => (ANNOUNCER, &[]),
    };
    let mut v: Vec<Call> = Vec::new();
    for c in BASE.iter().chain(own).chain(arch) {
        if !v.iter().any(|o| o.nr == c.nr) {
            v.push(*c);
        }
    }
    v
}

/// The names of the calls `role` may make, sorted.
pub fn names(role: Role) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = calls(role).iter().map(|c| c.name).collect();
    v.sort_unstable();
    v
}

fn cond(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, len, op, value).map_err(|e| format!("seccomp condition: {e}"))
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
    SeccompRule::new(conditions).map_err(|e| format!("seccomp rule: {e}"))
}

/// The seccomp rules for one call: empty when any arguments do, else rules
/// of which one must match.
fn rules(args: Args) -> Result<Vec<SeccompRule>, String> {
    use SeccompCmpArgLen::{Dword, Qword};
    Ok(match args {
        Args::Any => Vec::new(),
        Args::NoExec => vec![rule(vec![cond(
            2,
            Dword,
            SeccompCmpOp::MaskedEq(libc::PROT_EXEC as u64),
            0,
        )?])?],
        Args::ReadOnly => {
            let forbidden = (libc::O_ACCMODE | libc::O_CREAT | libc::O_TRUNC) as u64;
            vec![rule(vec![cond(
                2,
                Dword,
                SeccompCmpOp::MaskedEq(forbidden),
                0,
            )?])?]
        }
        // FIONBIO's type differs between libcs (c_ulong, c_int).
        #[allow(clippy::unnecessary_cast)]
        Args::Fionbio => vec![rule(vec![cond(
            1,
            Dword,
            SeccompCmpOp::Eq,
            libc::FIONBIO as u64,
        )?])?],
        Args::MapElements => {
            // BPF_MAP_LOOKUP_ELEM, _UPDATE_ELEM, _DELETE_ELEM, _GET_NEXT_KEY: the
            // maps' contents only; no program, map, link or BTF is created.
            let mut v = Vec::new();
            for cmd in [1u64, 2, 3, 4] {
                v.push(rule(vec![cond(0, Qword, SeccompCmpOp::Eq, cmd)?])?);
            }
            v
        }
        Args::SolXdp => vec![rule(vec![cond(
            1,
            Dword,
            SeccompCmpOp::Eq,
            libc::SOL_XDP as u64,
        )?])?],
        Args::GetFd => vec![rule(vec![cond(
            1,
            Dword,
            SeccompCmpOp::Eq,
            libc::F_GETFD as u64,
        )?])?],
        Args::FdFlags => {
            let mut v = Vec::new();
            for cmd in [libc::F_GETFD, libc::F_SETFD, libc::F_GETFL, libc::F_SETFL] {
                v.push(rule(vec![cond(1, Dword, SeccompCmpOp::Eq, cmd as u64)?])?);
            }
            v
        }
    })
}

/// Calls a role never makes itself but glibc may make for it, and copes
/// when refused: they fail with EACCES instead of killing. Workers and the
/// front thread: `openat`, because the first time free() shrinks a thread's
/// malloc arena glibc reads /proc/sys/vm/overcommit_memory (once per
/// process; unreadable means "do not assume overcommit"), and a thread
/// cannot know whether another thread read it before.
pub fn refused(role: Role) -> &'static [Call] {
    const OPEN: &[Call] = calls![openat];
    match role {
        Role::Worker | Role::Front => OPEN,
        Role::Control | Role::Custodian | Role::Announcer => &[],
    }
}

fn arch() -> Result<seccompiler::TargetArch, String> {
    std::env::consts::ARCH
        .try_into()
        .map_err(|e| format!("seccomp on {}: {e}", std::env::consts::ARCH))
}

/// The BPF program of `role`'s allow-list (its refused calls pass this one
/// to be refused by [`refusal_program`]); any other call gets `otherwise`
/// (the engine: kill the process; the unit tests: an errno).
pub fn program(role: Role, otherwise: SeccompAction) -> Result<BpfProgram, String> {
    let mut map: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for c in calls(role).iter().chain(refused(role)) {
        map.insert(c.nr, rules(c.args)?);
    }
    let filter = SeccompFilter::new(map, otherwise, SeccompAction::Allow, arch()?)
        .map_err(|e| format!("seccomp filter: {e}"))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| format!("seccomp filter: {e}"))
}

/// The second filter of a role with refused calls: those fail with EACCES,
/// anything else is left to the allow-list (of two filters the kernel takes
/// the stricter answer, so a kill still wins).
pub fn refusal_program(role: Role) -> Result<Option<BpfProgram>, String> {
    if refused(role).is_empty() {
        return Ok(None);
    }
    let map: BTreeMap<i64, Vec<SeccompRule>> =
        refused(role).iter().map(|c| (c.nr, Vec::new())).collect();
    let eacces = SeccompAction::Errno(libc::EACCES as u32);
    let filter = SeccompFilter::new(map, SeccompAction::Allow, eacces, arch()?)
        .map_err(|e| format!("seccomp filter: {e}"))?;
    filter
        .try_into()
        .map(Some)
        .map_err(|e: seccompiler::BackendError| format!("seccomp filter: {e}"))
}

/// Installs `role`'s filters on the calling thread (and sets its
/// no_new_privs, which an unprivileged filter needs) with `otherwise` for
/// calls outside the list. Returns the number of calls allowed.
pub fn install_with(role: Role, otherwise: SeccompAction) -> Result<usize, String> {
    let prog = program(role, otherwise)?;
    if let Some(refusals) = refusal_program(role)? {
        seccompiler::apply_filter(&refusals)
            .map_err(|e| format!("installing the seccomp filter: {e}"))?;
    }
    seccompiler::apply_filter(&prog).map_err(|e| format!("installing the seccomp filter: {e}"))?;
    Ok(calls(role).len())
}

/// Installs `role`'s filters; a call outside the list kills the process (SIGSYS).
pub fn install(role: Role) -> Result<usize, String> {
    install_with(role, SeccompAction::KillProcess)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: [Role; 5] = [
        Role::Control,
        Role::Worker,
        Role::Front,
        Role::Custodian,
        Role::Announcer,
    ];

    #[test]
    fn every_role_compiles_to_a_filter() {
        for role in ROLES {
            assert_eq!(
                refusal_program(role).unwrap().is_some(),
                !refused(role).is_empty()
            );
            let p = program(role, SeccompAction::KillProcess).unwrap();
            assert!(
                p.len() > calls(role).len(),
                "{role:?}: {} instructions",
                p.len()
            );
            // The kernel takes at most 4096 instructions.
            assert!(p.len() < 4096);
        }
    }

    #[test]
    fn lists_hold_what_each_role_needs_and_nothing_dangerous() {
        let worker = names(Role::Worker);
        for n in [
            "sendto",
            "recvfrom",
            if cfg!(target_arch = "x86_64") {
                "poll"
            } else {
                "ppoll"
            },
            "getsockopt",
            "futex",
            "clock_nanosleep",
            "nanosleep",
            "sched_yield",
            "write",
            "mmap",
            "exit",
        ] {
            assert!(worker.contains(&n), "worker lacks {n}");
        }
        // A worker opens nothing, creates no socket, touches no BPF object or file name.
        for n in [
            "openat", "socket", "bpf", "accept4", "unlinkat", "ioctl", "connect",
        ] {
            assert!(!worker.contains(&n), "worker may {n}");
        }
        let control = names(Role::Control);
        for n in [
            "openat", "read", "bpf", "accept4", "unlinkat", "futex", "wait4",
        ] {
            assert!(control.contains(&n), "control lacks {n}");
        }
        let front = names(Role::Front);
        for n in [
            "epoll_pwait",
            "epoll_ctl",
            "accept4",
            "read",
            "write",
            "getsockopt",
            "setsockopt",
            "eventfd2",
            "pipe2",
            "ioctl",
        ] {
            assert!(front.contains(&n), "front lacks {n}");
        }
        assert!(!front.contains(&"bpf") && !front.contains(&"openat"));
        assert_eq!(
            names(Role::Custodian)
                .iter()
                .filter(|n| ["read", "unlinkat"].contains(n))
                .count(),
            2
        );
        // No role may start a program or a thread, change credentials,
        // trace, load BPF programs by another door, or mount.
        for role in ROLES {
            for n in [
                "execve",
                "execveat",
                "fork",
                "vfork",
                "clone",
                "clone3",
                "ptrace",
                "setuid",
                "setresuid",
                "setgid",
                "setresgid",
                "setgroups",
                "capset",
                "prctl",
                "seccomp",
                "mount",
                "socket",
                "connect",
                "kill",
                "tgkill",
                "process_vm_writev",
                "init_module",
                "open_by_handle_at",
                "chmod",
                "fchmod",
                "chown",
                "rename",
                "link",
                "symlink",
                "mknod",
                "uname",
                "getppid",
            ] {
                assert!(!names(role).contains(&n), "{role:?} may {n}");
            }
            // Each call once.
            let mut nrs: Vec<i64> = calls(role).iter().map(|c| c.nr).collect();
            nrs.sort_unstable();
            nrs.dedup();
            assert_eq!(nrs.len(), calls(role).len());
        }
    }

    /// docs/ROBUSTNESS.md's table of the lists says what the code does.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_docs_list_every_call() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/ROBUSTNESS.md"
        ))
        .unwrap();
        let row = |first: &str| -> String {
            let start = format!("| {first} |");
            let line = doc
                .lines()
                .find(|l| l.starts_with(&start))
                .unwrap_or_else(|| panic!("no row `{start}` in docs/ROBUSTNESS.md"));
            line[start.len()..].trim_end_matches('|').to_string()
        };
        let ticked = |text: &str| -> Vec<String> {
            text.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        let base = ticked(&row("every role"));
        let mut want: Vec<&str> = BASE.iter().map(|c| c.name).collect();
        want.sort_unstable();
        let mut got: Vec<&str> = base.iter().map(String::as_str).collect();
        got.sort_unstable();
        assert_eq!(got, want, "every role");
        for role in ROLES {
            let cells = row(&format!("`{}`", role.name()));
            let (allowed, refusals) = cells.split_once(';').unwrap_or((&cells, ""));
            let mut got: Vec<String> = base.iter().cloned().chain(ticked(allowed)).collect();
            got.sort();
            got.dedup();
            assert_eq!(got, names(role), "{role:?}");
            let refusals = ticked(refusals);
            let want: Vec<&str> = refused(role).iter().map(|c| c.name).collect();
            assert_eq!(refusals, want, "{role:?} refusals");
        }
    }

    /// Runs `f` on a thread of its own confined to `role`, where any other
    /// call fails with EPERM instead of killing the test process.
    fn on_confined_thread<T: Send + 'static>(
        role: Role,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        std::thread::spawn(move || {
            install_with(role, SeccompAction::Errno(libc::EPERM as u32)).unwrap();
            f()
        })
        .join()
        .unwrap()
    }

    #[test]
    fn a_confined_worker_cannot_open_files_or_make_sockets_or_executable_memory() {
        let (open, sock, rwx, rw, uname) = on_confined_thread(Role::Worker, || {
            let open = std::fs::File::open("/etc/hostname").map_err(|e| e.raw_os_error());
            let sock = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.raw_os_error());
            let rwx = memmap2::MmapOptions::new()
                .len(4096)
                .map_anon()
                .and_then(|m| m.make_exec())
                .map_err(|e| e.raw_os_error());
            let rw = memmap2::MmapMut::map_anon(4096).map(|mut m| {
                m[0] = 7;
                m[0]
            });
            let uname = nix::sys::utsname::uname().map_err(|e| e as i32);
            (
                open.map(|_| ()),
                sock.map(|_| ()),
                rwx.map(|_| ()),
                rw.ok(),
                uname.map(|_| ()),
            )
        });
        // Refused politely (glibc's malloc may try), not killed.
        assert_eq!(open, Err(Some(libc::EACCES)));
        assert_eq!(sock, Err(Some(libc::EPERM)));
        assert_eq!(rwx, Err(Some(libc::EPERM)));
        assert_eq!(rw, Some(7));
        assert_eq!(uname, Err(libc::EPERM));
    }

    #[test]
    fn the_control_thread_reads_files_but_writes_none() {
        let dir = std::env::temp_dir().join(format!("pktengine-seccomp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("cfg.toml");
        std::fs::write(&file, "x = 1\n").unwrap();
        let f2 = file.clone();
        let (read, write, create) = on_confined_thread(Role::Control, move || {
            let read = std::fs::read_to_string(&f2).map_err(|e| e.raw_os_error());
            let write = std::fs::OpenOptions::new()
                .write(true)
                .open(&f2)
                .map(|_| ())
                .map_err(|e| e.raw_os_error());
            let create = std::fs::File::create(f2.with_extension("new"))
                .map(|_| ())
                .map_err(|e| e.raw_os_error());
            (read, write, create)
        });
        assert_eq!(read.as_deref(), Ok("x = 1\n"));
        assert_eq!(write, Err(Some(libc::EPERM)));
        assert_eq!(create, Err(Some(libc::EPERM)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
