//! `pktengine run`: from a configuration to running workers and back.
//!
//! ```text
//! main thread                                  worker threads (one per core, pinned)
//! ───────────                                  ─────────────────────────────────────
//! validate config (nothing attached yet)
//! ports (sysfs MACs), route table, tables
//! spawn workers ─────────────────────────────► build UMEM, bind sockets (their queues)
//!               ◄──────────── socket fds ───── (or the error)
//! load + attach XDP per port, XSKMAP ← fds
//! ctl socket, metrics, signals
//! switch to the engine's user ───── go ───────► confine (seccomp, no caps)
//! front thread (pktengine-ctl): confine; ctl + metrics clients, deadlines, caps
//! confine; wait for every thread's report      gratuitous ARP / unsolicited NA (worker 0)
//! READY=1 to the service manager (notify)
//! control loop: parsed requests, events, timers   run-to-completion loop
//! SIGINT/SIGTERM: stop flag ─────────────────► stop RX, drain TX, return
//! detach XDP (drop links) while workers close sockets, join, remove socket, exit 0
//! ```
//!
//! Privileges (`privileges`): the user is looked up first; workers clear
//! their bounding sets once bound; after set-up the whole process switches
//! to the engine's user and every thread confines itself to its role.
//!
//! Sockets and UMEMs are created on the worker thread that uses them (they
//! are not `Send`, and their memory is first touched on the worker's core).

pub mod announce;
pub mod control;
pub mod kernel_control;
pub mod kernel_neighbors;
pub mod log;
pub mod mirror;
pub mod notify;
pub mod privileges;
pub mod setup;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel;

use crate::context::counters::SharedCounters;
use crate::context::events;
use crate::context::tables::Routes;
use crate::control::config::{Config, PollMode, XdpMode as CfgXdpMode};
use crate::control::ctl::{Access, CtlListener};
use crate::control::front::{Front, FrontConfig, Limits};
use crate::control::metrics;
use crate::dataplane::tables::Tables;
use crate::dataplane::worker::{Socket, Worker, WorkerConfig};
use crate::neighbor::{NeighborKey, NeighborTable, REACHABLE_MS, STALE_GC_MS};
use crate::steer::{AttachMode, Steering};
use crate::xsk::{BindMode, BoundMode, Umem, UmemConfig, XskConfig, XskPort};
use privileges::{Privileges, Role};

/// Options from the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Import the kernel's main routing table once at start.
    pub import_kernel_routes: bool,
    /// Stop after this long (tests, benchmarks).
    pub duration: Option<Duration>,
    /// Force copy mode (zero-copy is tried first otherwise).
    pub copy_mode: bool,
    /// The configuration file, re-read on SIGHUP or `ctl reload`.
    pub config_path: Option<std::path::PathBuf>,
    /// Run even where privileges cannot be dropped (warnings instead of a refusal).
    pub allow_privileged: bool,
}

/// What a worker reports after binding.
struct Bound {
    worker: usize,
    /// (port, queue, fd, mode)
    sockets: Vec<(u16, u32, i32, BoundMode)>,
}

/// Runs the engine until SIGINT/SIGTERM (or the duration); returns the exit code.
pub fn run(cfg: Config, opts: RunOptions) -> Result<(), String> {
    // First: a SIGTERM during set-up (building the tables takes tens of ms) must
    // set the flag, not kill the process with the default action.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("signal handler: {e}"))?;
    }
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .map_err(|e| format!("signal handler: {e}"))?;
    // The service manager's socket, connected while the process may still
    // connect anything (the control thread's filter has no socket or connect).
    let service = notify::Notifier::from_env();
    // Before anything is attached: a user that cannot be switched to stops here.
    let privs = Privileges::new(&cfg.engine.user, opts.allow_privileged)?;
    privs.start_custodian(&cfg.engine.ctl_socket)?;
    // The VIP announcer, also while the process is fully root (it keeps CAP_NET_ADMIN).
    let announcer = start_announcer(&cfg, privs.account())?;
    let ifs = setup::interfaces(&cfg, &setup::interface_mac)?;
    let mut rt = setup::route_table(&cfg)?;
    let router_ports = || {
        mirror::Mirror::ports_of(
            cfg.ports
                .iter()
                .filter(|p| p.mode == crate::control::config::PortMode::Router && p.bvi.is_none())
                .map(|p| (p.name.as_str(), p.interface.as_str())),
        )
    };
    if opts.import_kernel_routes || cfg.routing.import_kernel_routes {
        // The main table (254), once, through the mirror's translation.
        let n = mirror::import(254, router_ports(), &mut rt)?;
        tracing::info!("imported {n} routes from the kernel's main table");
    }
    // The mirror's sockets are opened now, as root (the control thread has no
    // `socket` call once confined), and the table loaded before any worker runs.
    let mirror = if cfg.routing.mirror {
        let mut m = mirror::Mirror::open(cfg.routing.mirror_table, router_ports())?;
        let start = Instant::now();
        let n = m.load(&mut rt)?;
        tracing::info!(
            "route mirror: kernel table {}: {n} routes in {} ms; following its changes",
            cfg.routing.mirror_table,
            start.elapsed().as_millis()
        );
        Some(m)
    } else {
        None
    };
    let fib = rt.reader().snapshot().clone();
    let routes = Routes::resolve(fib, &ifs);
    let mut tables = Tables::new(
        ifs,
        routes,
        NeighborTable::new(REACHABLE_MS, STALE_GC_MS).map(),
    )
    .with_l2(cfg.switch());
    if let Some(nat) = &cfg.nat {
        let roles = cfg.ports.iter().map(|p| p.nat).collect();
        let mut shared =
            crate::nat::NatShared::new(nat.clone(), roles, cfg.engine.cores.len() as u16);
        if cfg.lb.iter().any(|s| s.health.is_some()) {
            // Health probes leave from the engine's addresses on these ports.
            use crate::lb::health::{PROBES, PROBE_PORT_LO};
            shared.reserved = Some((PROBE_PORT_LO, PROBE_PORT_LO + PROBES as u16 - 1));
        }
        tables = tables.with_nat(shared.with_rss(rss_models(&cfg)));
    }
    if let Some(ct) = &cfg.conntrack {
        tables = tables.with_ct(crate::filter::conn::CtShared::new(
            *ct,
            cfg.engine.cores.len() as u16,
        ));
    }
    tables.udp_echo = cfg.udp_echo.clone();
    tables.icmp = cfg.engine.icmp;
    if !cfg.tcp.is_empty() {
        tables.tcp = Some(Arc::new(crate::tcp::endpoint::TcpShared::new(
            cfg.tcp.clone(),
            cfg.tcp_stack,
            cfg.engine.cores.len() as u16,
        )));
    }
    if let Some(imp) = &cfg.impair {
        tracing::warn!("[impair] is on: frames are dropped, duplicated and reordered on purpose ({imp}); a test feature, not for production");
        tables = tables.with_impair(imp.clone());
    }
    if !cfg.lb.is_empty() {
        tables = tables.with_lb(
            crate::lb::LbShared::new(&cfg.lb, cfg.engine.cores.len() as u16)
                .with_rss(rss_models(&cfg)),
        );
    }
    let several = cfg.engine.cores.len() > 1;
    if tables.nat.is_some()
        || tables.lb.is_some()
        || ((tables.tcp.is_some() || tables.ct.is_some()) && several)
    {
        tables = tables
            .with_handoff(cfg.engine.cores.len() as u16, true)
            .map_err(|e| format!("worker handoff: {e}"))?;
    }
    let tables = Arc::new(tables);
    tables.trace.store(cfg.engine.trace, Ordering::Relaxed);
    let (sink, events_rx) = events::channel(65536);
    let (probe_tx, probe_rx) = channel::bounded::<NeighborKey>(1024);
    let nworkers = cfg.engine.cores.len();
    let go = Arc::new(AtomicBool::new(false));
    let (bound_tx, bound_rx) = channel::bounded::<Result<Bound, String>>(nworkers);
    let mut handles = Vec::new();
    let mut shared = Vec::new();
    for (w, &core) in cfg.engine.cores.iter().enumerate() {
        let counters = Arc::new(SharedCounters::default());
        shared.push(counters.clone());
        let (cfg, tables, stop, go, sink, bound_tx, probes, privs) = (
            cfg.clone(),
            tables.clone(),
            stop.clone(),
            go.clone(),
            sink.clone(),
            bound_tx.clone(),
            probe_rx.clone(),
            privs.clone(),
        );
        let copy = opts.copy_mode;
        let h = std::thread::Builder::new()
            .name(format!("pktengine-w{w}"))
            .spawn(move || {
                if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                    tracing::warn!("worker {w}: could not pin to core {core}");
                }
                let worker = match build_worker(w, nworkers, &cfg, tables, counters, sink, copy) {
                    Ok((worker, b)) => {
                        // Sockets bound: the rings need no privilege at all.
                        if let Err(e) = privs.prepare(Role::Worker) {
                            let _ = bound_tx.send(Err(e));
                            return;
                        }
                        let _ = bound_tx.send(Ok(b));
                        worker
                    }
                    Err(e) => {
                        let _ = bound_tx.send(Err(e));
                        return;
                    }
                };
                let mut worker = worker;
                // Not on `stop`: the control thread may still be putting this worker's
                // socket fds into the XSKMAPs, and closing them now would make that fail
                // (a SIGTERM during set-up gave exit 1) or let the fd numbers be reused.
                // Every way out of set-up sets `go`; a stopped worker then only drains.
                while !go.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                // `go` comes after the user switch; the main thread hears of a refusal.
                if privs.confine(Role::Worker).is_err() {
                    return;
                }
                if w == 0 && !stop.load(Ordering::Relaxed) {
                    worker.set_probes(probes);
                    worker.announce();
                }
                worker.run(&stop);
                let t = Instant::now();
                drop(worker);
                tracing::debug!("worker {w}: sockets and UMEM released in {:?}", t.elapsed());
            })
            .map_err(|e| format!("spawning worker {w}: {e}"))?;
        handles.push(h);
    }
    drop(bound_tx);
    let abort = |msg: String, handles: Vec<std::thread::JoinHandle<()>>| -> Result<(), String> {
        stop.store(true, Ordering::Relaxed);
        // Releases the workers waiting for `go`: they see the stop and return.
        go.store(true, Ordering::Release);
        for h in handles {
            let _ = h.join();
        }
        Err(msg)
    };
    let mut bound = Vec::new();
    for _ in 0..nworkers {
        match bound_rx.recv() {
            Ok(Ok(b)) => bound.push(b),
            Ok(Err(e)) => return abort(e, handles),
            Err(_) => return abort("a worker died while binding".into(), handles),
        }
    }
    // XDP: one program per port; each queue's socket in its XSKMAP slot.
    let mut steering = Vec::new();
    // Router ports whose ARP/ND the kernel gets: (port, ifindex) for the copy sockets.
    let mut neigh_copy = Vec::new();
    for (pi, p) in cfg.ports.iter().enumerate() {
        if p.bvi.is_some() {
            // A bridge's routed interface: no Linux interface, nothing to attach.
            continue;
        }
        let mut s = match Steering::load() {
            Ok(s) => s,
            Err(e) => return abort(format!("port `{}`: {e}", p.name), handles),
        };
        for b in &bound {
            for &(port, queue, fd, mode) in &b.sockets {
                if usize::from(port) == pi {
                    if let Err(e) = s.set_queue_sockets(queue, &[fd]) {
                        return abort(format!("port `{}` queue {queue}: {e}", p.name), handles);
                    }
                    tracing::info!(
                        "port {} ({}) queue {queue}: worker {} socket, {mode} mode",
                        p.name,
                        p.interface,
                        b.worker
                    );
                }
            }
        }
        let ifindex = match crate::xsk::socket::ifindex(&p.interface) {
            Ok(i) => i,
            Err(e) => return abort(format!("port `{}`: {e}", p.name), handles),
        };
        let router = p.mode == crate::context::tables::PortMode::Router;
        if let (Some(kc), Some(info), true) = (
            &cfg.routing.kernel_control,
            tables.ifs.port(pi as u16),
            router,
        ) {
            // A router port (switch ports are bridge members): control traffic
            // for its addresses goes to the kernel, which must own them.
            let set_up = kernel_control::check_mac(info)
                .and_then(|_| kernel_control::ensure_addresses(info))
                .and_then(|added| {
                    kernel_control::program(&mut s, kc, info)
                        .map(|_| added)
                        .map_err(|e| e.to_string())
                });
            match set_up {
                Ok(added) => {
                    if !added.is_empty() {
                        tracing::info!(
                            "port {}: added to {} for the kernel's daemons: {}",
                            p.name,
                            p.interface,
                            added.join(", ")
                        );
                    }
                    if kc.arp_nd {
                        neigh_copy.push((pi as u16, ifindex));
                    }
                }
                Err(e) => return abort(format!("port `{}`: kernel_control: {e}", p.name), handles),
            }
        }
        let mode = match p.xdp_mode {
            CfgXdpMode::Auto => AttachMode::Auto,
            CfgXdpMode::Driver => AttachMode::Driver,
            CfgXdpMode::Generic => AttachMode::Generic,
        };
        match s.attach(ifindex, mode) {
            Ok(m) => tracing::info!("port {}: XDP attached in {m:?} mode", p.name),
            Err(e) => return abort(format!("port `{}`: attaching XDP: {e}", p.name), handles),
        }
        steering.push((p.name.clone(), s));
    }
    // The copy sockets need CAP_NET_RAW: opened now, read unprivileged later.
    let kernel_neigh = match kernel_neighbors::KernelNeighbors::open(&neigh_copy) {
        Ok(k) => k,
        Err(e) => return abort(format!("kernel_control: ARP/ND copy socket: {e}"), handles),
    };
    if let Some(kc) = &cfg.routing.kernel_control {
        tracing::info!(
            "kernel_control: to the kernel for the engine's addresses: ports {:?} (protocol, port; source or destination), protocols {:?}{}",
            kc.l4_ports,
            kc.protocols,
            if kc.arp_nd { ", ARP and ND (the engine learns from a copy)" } else { "" }
        );
    }
    let access = match Access::resolve(cfg.engine.ctl_group.as_deref()) {
        Ok(a) => a,
        Err(e) => return abort(e, handles),
    };
    let mut listener =
        match CtlListener::bind(&cfg.engine.ctl_socket, access.group.as_ref().map(|g| g.1)) {
            Ok(l) => l,
            Err(e) => {
                return abort(
                    format!("ctl socket {}: {e}", cfg.engine.ctl_socket.display()),
                    handles,
                )
            }
        };
    let metrics = match cfg.engine.metrics_listen.map(metrics::bind).transpose() {
        Ok(m) => m,
        Err(e) => return abort(format!("metrics endpoint: {e}"), handles),
    };
    let mut ctl = control::Control::new(tables.clone(), rt, shared, events_rx, probe_tx);
    ctl.mirror = mirror;
    ctl.steering = steering;
    ctl.kernel_neigh = kernel_neigh;
    ctl.accept_unsolicited = cfg.routing.accept_unsolicited_arp;
    ctl.config_path = opts.config_path.clone();
    ctl.config_routes = setup::config_routes(&cfg);
    ctl.running = Some(cfg.clone());
    if let (Some(a), Some(lb)) = (&announcer, &tables.lb) {
        a.init(lb);
    }
    ctl.announce = announcer;
    if let Err(e) = setup::filter(&cfg, &mut ctl) {
        drop(ctl);
        return abort(e, handles);
    }
    // ---- least privilege (privileges/): the user switch, then every thread
    // confines itself (workers after `go`).
    if let Err(e) = privs.switch_user(listener.path()) {
        drop(ctl);
        return abort(e, handles);
    }
    // The control thread (this one) off the workers' cores, as the examples
    // say: its bursts of work (a `ctl nat show` formats hundreds of
    // thousands of rows) must not take CPU time from a worker. The lowest
    // core no worker uses; none free: left to the scheduler. The front thread, started next,
    // inherits the same core.
    let free_core = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .find(|c| !cfg.engine.cores.contains(&c.id));
    match free_core {
        Some(c) if core_affinity::set_for_current(c) => {
            tracing::info!("control thread on core {}", c.id)
        }
        Some(c) => tracing::warn!("control thread: could not pin to core {}", c.id),
        None => tracing::info!("control thread: no core free of workers, not pinned"),
    }
    // The front thread starts after the switch (it never holds a privilege)
    // and before the control thread confines itself (its filter has no clone).
    let Some(ctl_sock) = listener.take() else {
        drop(ctl);
        return abort("ctl socket: not bound".into(), handles);
    };
    let front_privs = privs.clone();
    let front = Front::start(FrontConfig {
        ctl: ctl_sock,
        access,
        metrics,
        limits: Limits::default(),
        on_start: Box::new(move || {
            // Parses untrusted input: no capability, the narrowest filter but a worker's.
            let _ = front_privs.confine(Role::Front);
        }),
    });
    let (mut front, jobs) = match front {
        Ok(f) => f,
        Err(e) => {
            drop(ctl);
            return abort(format!("ctl front thread: {e}"), handles);
        }
    };
    ctl.jobs = Some(jobs);
    ctl.front = Some(front.counters.clone());
    go.store(true, Ordering::Release);
    if let Err(e) = privs
        .confine(Role::Control)
        .and_then(|_| privs.wait_confined(nworkers + 2, Duration::from_secs(5)))
    {
        drop(ctl);
        return abort(e, handles);
    }
    // ---- end of least privilege
    let running = format!(
        "{} ports, {} workers on cores {:?}, {} poll, ctl {}",
        cfg.ports.len(),
        nworkers,
        cfg.engine.cores,
        if cfg.engine.poll == PollMode::Busy {
            "busy"
        } else {
            "adaptive"
        },
        cfg.engine.ctl_socket.display()
    );
    tracing::info!("pktengine running: {running}");
    // Ready: every worker is confined and in its loop (or about to enter it,
    // with nothing left to fail), the ctl socket listens, the front thread serves.
    if let Some(n) = &service {
        n.ready(&format!("running: {running}"));
    }
    ctl.service = service;
    let started = Instant::now();
    let stopping = || stop.load(Ordering::Relaxed);
    while !stopping() {
        if opts.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        ctl.pump(Duration::from_millis(20));
        if let Some(n) = ctl.service.as_mut() {
            n.watchdog(Instant::now());
        }
        if hup.swap(false, Ordering::Relaxed) {
            match ctl.reload() {
                Ok(m) => tracing::info!("SIGHUP: {m}"),
                Err(e) => tracing::error!("SIGHUP: {e}"),
            }
        }
        if let Some(i) = handles.iter().position(|h| h.is_finished()) {
            // A worker returns on its own only when it saw the stop flag: a
            // signal that arrived after this loop's check. Only a panic is a failure.
            let panicked = handles.swap_remove(i).join().is_err();
            if panicked || !stopping() {
                tracing::error!(
                    "worker thread ended unexpectedly{}",
                    if panicked { " (panic)" } else { "" }
                );
                stop.store(true, Ordering::Relaxed);
                for h in handles {
                    let _ = h.join();
                }
                return Err("a worker thread ended unexpectedly".into());
            }
        }
    }
    // Withdraw the VIPs first: upstream routers move new connections to the
    // other engines while this one drains.
    if let (Some(a), Some(lb)) = (ctl.announce.take(), ctl.tables.lb.clone()) {
        a.finish(&lb);
    }
    tracing::info!("stopping: draining workers");
    if let Some(n) = &ctl.service {
        n.stopping("stopping: draining workers, detaching XDP");
    }
    stop.store(true, Ordering::Relaxed);
    // Each step's time at debug level: a slow stop names its step.
    let mut step = StepTimer::new();
    ctl.end_captures();
    front.stop();
    step.done("front thread joined");
    // XDP off first, while the workers drain and close their sockets: each
    // of the two waits in the kernel for an RCU grace period or more per
    // port and per socket (bpf_link release under the RTNL lock; xsk_release
    // -> synchronize_net()), tens of milliseconds each on an idle host and
    // hundreds on a busy one. One after the other (sockets, then links), a
    // one-worker engine with two two-queue ports measured up to 0.7 s under
    // load (1.2 s once in CI); overlapped, the grace periods are shared. The workers need no XDP to
    // drain (TX and completions go on without it).
    for (name, s) in std::mem::take(&mut ctl.steering) {
        drop(s);
        step.done(&format!("port {name}: XDP detached"));
    }
    // A panic while draining fails the run, as one seen in the loop above does
    // (which of the two sees it is a matter of timing).
    let panicked = handles
        .into_iter()
        .map(|h| h.join())
        .filter(Result::is_err)
        .count();
    step.done("workers joined");
    // Dropping the listener removes the socket where the engine's user may,
    // the custodian does elsewhere.
    drop(ctl);
    step.done("control state dropped");
    drop(listener);
    step.done("ctl listener closed");
    privs.finish();
    step.done("ctl socket custodian finished");
    if panicked > 0 {
        return Err(format!(
            "{panicked} worker thread(s) panicked while draining"
        ));
    }
    tracing::info!("stopped");
    Ok(())
}

/// Starts the VIP announcer when `[routing] announce_table` is set and a
/// service announces its VIP (`runtime::announce`).
fn start_announcer(
    cfg: &Config,
    account: Option<privileges::Account>,
) -> Result<Option<announce::Announcements>, String> {
    let Some(table) = cfg.routing.announce_table else {
        return Ok(None);
    };
    let vips = crate::lb::announce::vips(&cfg.lb);
    if vips.is_empty() {
        tracing::info!("announce_table {table}: no [[lb]] service announces its VIP");
        return Ok(None);
    }
    let a = announce::Announcements::spawn(table, vips, account)
        .map_err(|e| format!("VIP announcer: {e}"))?;
    tracing::info!(
        "privileges: VIP announcer (pid {}, table {}): {}",
        a.pid(),
        a.table(),
        a.report()
    );
    Ok(Some(a))
}

/// Times the steps of the stop, each logged at debug level.
struct StepTimer(Instant);

impl StepTimer {
    fn new() -> StepTimer {
        StepTimer(Instant::now())
    }

    fn done(&mut self, what: &str) {
        let now = Instant::now();
        tracing::debug!("stopping: {what} in {:?}", now - self.0);
        self.0 = now;
    }
}

/// Each port's RSS model (`[[port]] rss`, docs/ARCHITECTURE.md "RSS-aware
/// ownership"): the explicit key and table, or the NIC's read with
/// ETHTOOL_GRSSH; none for `off`, BVIs and devices without RSS (veth).
fn rss_models(cfg: &Config) -> Vec<Option<Arc<crate::rss::Rss>>> {
    use crate::control::config::RssSetting;
    cfg.ports
        .iter()
        .map(|p| {
            let m = match &p.rss {
                RssSetting::Off => None,
                _ if p.interface.is_empty() => None,
                RssSetting::Explicit { key, table } => {
                    crate::rss::Rss::new(key.clone(), table.clone()).ok()
                }
                RssSetting::Auto => match crate::steer::ethtool::read_rss(&p.interface) {
                    Ok(Some(c)) => crate::rss::Rss::new(c.key, c.table).ok().map(|mut r| {
                        r.tcp_ports = c.tcp_ports;
                        r.udp_ports = c.udp_ports;
                        r
                    }),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!("port {}: reading RSS of {}: {e}", p.name, p.interface);
                        None
                    }
                },
            };
            match &m {
                Some(r) => tracing::info!(
                    "port {}: RSS known ({}-byte key, {} table entries, ports hashed: tcp {} udp {}): NAT/LB flows steered to their worker's queue",
                    p.name, r.key.len(), r.table.len(), r.tcp_ports, r.udp_ports
                ),
                None if !p.interface.is_empty() => tracing::info!(
                    "port {}: no RSS model (rss {:?}): NAT/LB owners by port hash",
                    p.name,
                    p.rss
                ),
                None => {}
            }
            m.map(Arc::new)
        })
        .collect()
}

/// Builds one worker's UMEM and sockets: worker `w` of `n` serves queue q of
/// each port when q % n == w.
fn build_worker(
    w: usize,
    n: usize,
    cfg: &Config,
    tables: Arc<Tables>,
    counters: Arc<SharedCounters>,
    sink: events::EventSink,
    copy: bool,
) -> Result<(Worker<XskPort>, Bound), String> {
    let mut wanted = Vec::new();
    for (pi, p) in cfg.ports.iter().enumerate() {
        for q in 0..p.queues {
            if q as usize % n == w {
                wanted.push((pi as u16, q, p.interface.clone()));
            }
        }
    }
    let frames = cfg
        .engine
        .frames_per_port
        .saturating_mul(wanted.len().max(1) as u32);
    let mut umem = Umem::new(UmemConfig {
        frame_size: cfg.engine.frame_size,
        frame_count: frames,
        huge_pages: true,
        headroom: 0,
    })
    .map_err(|e| format!("worker {w}: UMEM of {frames} frames: {e}"))?;
    let ring = (cfg.engine.frames_per_port / 2).clamp(256, 4096);
    let xcfg = XskConfig {
        rx_size: ring,
        tx_size: ring,
        fill_size: ring,
        comp_size: ring,
        mode: if copy { BindMode::Copy } else { BindMode::Auto },
        need_wakeup: true,
    };
    let mut sockets = Vec::new();
    let mut b = Bound {
        worker: w,
        sockets: Vec::new(),
    };
    for (port, q, ifname) in wanted {
        let s = XskPort::bind(&mut umem, &ifname, q, &xcfg)
            .map_err(|e| format!("worker {w}: {ifname} queue {q}: {e}"))?;
        b.sockets.push((port, q, s.raw_fd(), s.mode()));
        sockets.push(Socket { port, io: s });
    }
    let wc = WorkerConfig {
        id: w as u16,
        poll: cfg.engine.poll,
        idle_timeout: Duration::from_millis(u64::from(cfg.engine.idle_timeout_ms)),
    };
    Ok((Worker::new(wc, umem, sockets, tables, counters, sink), b))
}
