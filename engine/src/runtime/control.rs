//! The control thread's state and its answers to `pktengine ctl`.
//!
//! It owns the route table (RIB), the neighbor table and the configuration;
//! it publishes snapshots the workers read, and it is the only writer of
//! either. Worker events (neighbors seen/missed, captured frames, traces)
//! arrive on one bounded channel.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};

use crate::cbpf::Program;
use crate::context::capture::Tap;
use crate::context::counters::{Drop, SharedCounters, Stage};
use crate::context::dump::{Collector, Mode, POLL_ROWS};
use crate::context::events::{Event, TraceRecord};
use crate::context::tables::Routes;
use crate::control::ctl::{CaptureFilter, Counter, Request, Response};
use crate::control::front::{FrontCounters, Job, Reply};
use crate::control::metrics::{self, Label, Metrics, Sheet};
use crate::control::records::{self, Format, Record, Summary};
use crate::dataplane::tables::Tables;
use crate::filter::rule::{Action, Rule};
use crate::filter::Filter;
use crate::l3::prefix::IpPrefix;
use crate::l3::route_table::RouteTable;
use crate::l3::routes_file;
use crate::neighbor::{NeighborKey, NeighborTable, REACHABLE_MS, STALE_GC_MS};
use crate::steer::{Steering, Verdict};

/// The longest the control thread spends per round on kernel route changes
/// (a full table arriving), so ctl requests and neighbor events keep their pace.
const MIRROR_BUDGET: Duration = Duration::from_millis(50);

/// During a burst of kernel route changes, how often the staged ones are published.
const MIRROR_PUBLISH: Duration = Duration::from_millis(250);

/// Traced packets kept for `ctl trace`.
const TRACE_KEEP: usize = 1024;

pub struct Control {
    pub tables: Arc<Tables>,
    pub rt: RouteTable,
    pub neigh: NeighborTable,
    pub workers: Vec<Arc<SharedCounters>>,
    pub events: Receiver<Event>,
    /// Neighbors to refresh, for the worker that transmits on every port.
    pub probes: Sender<NeighborKey>,
    pub steering: Vec<(String, Steering)>,
    pub start: Instant,
    trace: VecDeque<TraceRecord>,
    neigh_dirty: bool,
    /// The filter as configured: rules, default policy, per-port policies.
    pub filter_rules: Vec<Rule>,
    pub filter_default: Action,
    pub filter_policy: Vec<Action>,
    /// Source prefixes currently pushed into the XDP programs.
    xdp_drops: Vec<IpPrefix>,
    /// Accept ARP replies / NAs nobody asked for (off: they are ignored).
    pub accept_unsolicited: bool,
    pub unsolicited_ignored: u64,
    /// The configuration file, its running content, and the routes it installed.
    pub config_path: Option<std::path::PathBuf>,
    pub running: Option<crate::control::config::Config>,
    pub config_routes: Vec<crate::l3::route_table::Route>,
    /// Stale neighbors probed recently, with when.
    probed: std::collections::HashMap<NeighborKey, u64>,
    last_tick: Instant,
    /// Requests from the front thread (ctl socket, metrics scrapes).
    pub jobs: Option<Receiver<Job>>,
    /// The front thread's own counters, shown with the others.
    pub front: Option<Arc<FrontCounters>>,
    /// Captures streaming to their clients.
    captures: Vec<Capture>,
    /// Worker dumps streaming to their clients.
    dumps: Vec<Box<dyn PendingDump>>,
    /// The service manager (systemd's NOTIFY_SOCKET), told of reloads.
    pub service: Option<super::notify::Notifier>,
    /// The live mirror of a kernel routing table (`[routing] mirror`), whether it
    /// has staged changes not yet published, and when it last published.
    pub mirror: Option<super::mirror::Mirror>,
    mirror_pending: bool,
    mirror_published: Instant,
    /// Copies of the ARP/ND frames the kernel receives (`kernel_control`
    /// with `arp_nd`), learned from as the workers' events.
    pub kernel_neigh: super::kernel_neighbors::KernelNeighbors,
    /// The VIP announcer (`[routing] announce_table`).
    pub announce: Option<super::announce::Announcements>,
}

/// A `ctl capture` in progress: frames of port `idx` that its filter accepts
/// go to `reply` until `want` are sent, the client goes, or a minute passes
/// without a frame. The workers see it as `tap`.
#[derive(Debug)]
struct Capture {
    idx: usize,
    name: String,
    want: u32,
    got: u32,
    last: Instant,
    reply: Reply,
    tap: Arc<Tap>,
}

/// Captures running at once (each a tap the workers offer its port's frames to).
const MAX_CAPTURES: usize = 8;

/// How long a capture waits for a frame before it ends.
const CAPTURE_IDLE: Duration = Duration::from_secs(60);

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("routes", &self.rt.len())
            .finish()
    }
}

impl Control {
    pub fn new(
        tables: Arc<Tables>,
        rt: RouteTable,
        workers: Vec<Arc<SharedCounters>>,
        events: Receiver<Event>,
        probes: Sender<NeighborKey>,
    ) -> Control {
        Control {
            tables,
            rt,
            neigh: NeighborTable::new(REACHABLE_MS, STALE_GC_MS),
            workers,
            events,
            probes,
            steering: Vec::new(),
            start: Instant::now(),
            trace: VecDeque::new(),
            neigh_dirty: false,
            filter_rules: Vec::new(),
            filter_default: Action::Accept,
            filter_policy: Vec::new(),
            xdp_drops: Vec::new(),
            accept_unsolicited: false,
            unsolicited_ignored: 0,
            probed: std::collections::HashMap::new(),
            config_path: None,
            running: None,
            config_routes: Vec::new(),
            last_tick: Instant::now(),
            jobs: None,
            front: None,
            captures: Vec::new(),
            dumps: Vec::new(),
            service: None,
            mirror: None,
            mirror_pending: false,
            mirror_published: Instant::now(),
            kernel_neigh: Default::default(),
            announce: None,
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Handles worker events and ctl requests for up to `wait`, then the
    /// periodic work. Never blocks on a client: requests arrive parsed, and
    /// answers leave through their [`Reply`].
    pub fn pump(&mut self, wait: Duration) {
        // While a dump runs, its rows are fetched every millisecond.
        let wait = if self.dumps.is_empty() {
            wait
        } else {
            wait.min(Duration::from_millis(1))
        };
        let jobs = self.jobs.clone().unwrap_or_else(crossbeam::channel::never);
        crossbeam::channel::select! {
            recv(self.events) -> e => if let Ok(e) = e { self.event(e) },
            recv(jobs) -> j => if let Ok(j) = j { self.job(j) },
            default(wait) => {}
        }
        while let Ok(e) = self.events.try_recv() {
            self.event(e);
        }
        // A bounded number per round, so timers and events keep their pace.
        for _ in 0..64 {
            let Ok(j) = jobs.try_recv() else { break };
            self.job(j);
        }
        self.periodic();
    }

    /// Answers one request of the front thread.
    pub fn job(&mut self, j: Job) {
        match j {
            Job::Ctl { req, reply } => self.request(req, reply),
            Job::Metrics { mut reply } => {
                reply.send_metrics(self.metrics());
            }
        }
    }

    /// Ends every capture (the engine is stopping).
    pub fn end_captures(&mut self) {
        for mut c in self.captures.drain(..) {
            c.reply.send(Response::Done {
                message: format!("{} frames (the engine is stopping)", c.got),
            });
        }
        for taps in &self.tables.capture {
            taps.publish(Vec::new());
        }
    }

    /// Captures whose client left, that have their frames or that waited too
    /// long end, and their taps go.
    fn service_captures(&mut self) {
        let before = self.captures.len();
        self.captures.retain_mut(|c| {
            if c.reply.is_closed() {
                return false;
            }
            if c.got >= c.want || c.last.elapsed() > CAPTURE_IDLE {
                c.reply.send(Response::Done {
                    message: format!("{} frames", c.got),
                });
                return false;
            }
            true
        });
        if self.captures.len() != before {
            self.publish_taps();
        }
    }

    /// Gives every port the taps of the captures running on it.
    fn publish_taps(&self) {
        for (i, taps) in self.tables.capture.iter().enumerate() {
            taps.publish(
                self.captures
                    .iter()
                    .filter(|c| c.idx == i)
                    .map(|c| c.tap.clone())
                    .collect(),
            );
        }
    }

    fn periodic(&mut self) {
        if let Some(m) = &mut self.mirror {
            // One batch per round: what the kernel changed since the last one, published at
            // once. While a burst outlasts the round's budget (a full table arriving), the
            // batches are published every MIRROR_PUBLISH instead: each publication of a large
            // batch rebuilds the lookup structures.
            let r = m.poll(&mut self.rt, MIRROR_BUDGET);
            self.mirror_pending |= r.changes > 0;
            if self.mirror_pending && (!r.more || self.mirror_published.elapsed() >= MIRROR_PUBLISH)
            {
                self.mirror_pending = false;
                self.mirror_published = Instant::now();
                self.rt.publish();
                self.publish_routes();
            }
        }
        if !self.kernel_neigh.is_empty() {
            let mut kn = std::mem::take(&mut self.kernel_neigh);
            kn.poll(&self.tables.ifs.clone(), |e| self.event(e));
            self.kernel_neigh = kn;
        }
        if !self.captures.is_empty() {
            self.service_captures();
        }
        if !self.dumps.is_empty() {
            self.dumps.retain_mut(|d| !d.poll());
        }
        if self.last_tick.elapsed() >= Duration::from_millis(500) {
            self.last_tick = Instant::now();
            let now = self.now_ms();
            for key in self.neigh.tick(now) {
                if self.probes.try_send(key).is_ok() {
                    self.probed.insert(key, now);
                }
            }
            self.probed.retain(|_, t| now.saturating_sub(*t) < 3000);
            self.age_macs();
        }
        if let Some(lb) = &self.tables.lb {
            lb.health_tick(self.now_ms());
            if let Some(a) = self.announce.as_mut() {
                a.tick(lb, &self.workers);
            }
        }
        // Learned, moved, aged out or failed: publish only when the set of usable entries changed.
        if self.neigh.take_changed() || self.neigh_dirty {
            self.neigh_dirty = false;
            self.tables.neigh.store(Arc::new(self.neigh.map()));
        }
    }

    pub fn event(&mut self, e: Event) {
        let now = self.now_ms();
        match e {
            Event::NeighSeen {
                key,
                mac,
                confirmed,
            } => {
                if confirmed && !self.accept_unsolicited && !self.neighbor_reply_expected(key, mac)
                {
                    // An ARP reply / solicited NA nobody asked for (an attempt to
                    // poison the cache): ignored, counted.
                    self.unsolicited_ignored += 1;
                    tracing::debug!(
                        "ignored an unsolicited neighbor answer for {} on port {}",
                        key.ip,
                        key.port
                    );
                    return;
                }
                if self.neigh.learn(key, mac, now, confirmed) {
                    self.neigh_dirty = true;
                }
            }
            Event::NeighMiss { key } => self.neigh.incomplete(key, now),
            Event::NeighFailed { key } => {
                if self.neigh.failed(key, now) {
                    self.neigh_dirty = true;
                }
            }
            Event::Captured {
                port,
                time_ns,
                data,
            } => {
                // The copy was made for at least one capture; each whose filter accepts it gets it.
                let mut done = false;
                for c in self.captures.iter_mut().filter(|c| {
                    c.idx == usize::from(port) && c.got < c.want && c.tap.accepts(&data)
                }) {
                    c.got += 1;
                    c.last = Instant::now();
                    c.reply.send(Response::Frame {
                        port: c.name.clone(),
                        time_ns,
                        data: data.clone(),
                    });
                    done |= c.got >= c.want;
                }
                if done {
                    self.service_captures();
                }
            }
            Event::MacMoved {
                bridge,
                key,
                from,
                to,
            } => {
                let b = self
                    .tables
                    .l2
                    .bridges
                    .get(usize::from(bridge))
                    .map_or("?", |b| b.name.as_str());
                tracing::info!(
                    "{b}: {key} moved from {} to {}",
                    self.port_name(usize::from(from)),
                    self.port_name(usize::from(to))
                );
            }
            Event::Trace(t) => {
                if self.trace.len() == TRACE_KEEP {
                    self.trace.pop_front();
                }
                self.trace.push_back(*t);
            }
        }
    }

    /// Compiles and publishes the filter, keeping hit counts, and syncs the
    /// source-prefix drops pushed into the XDP programs.
    pub fn publish_filter(&mut self) {
        let f = Filter::new(
            self.filter_rules.clone(),
            self.filter_default,
            self.filter_policy.clone(),
        );
        f.carry_hits(&self.tables.filter.load());
        let drops = f.xdp_drops();
        self.tables.filter.store(std::sync::Arc::new(f));
        for (name, s) in &mut self.steering {
            for p in self.xdp_drops.iter().filter(|p| !drops.contains(p)) {
                if let Err(e) = s.drop_src_prefix(p.addr(), p.len(), false) {
                    tracing::warn!("port {name}: removing XDP drop {p}: {e}");
                }
            }
            for p in drops.iter().filter(|p| !self.xdp_drops.contains(p)) {
                if let Err(e) = s.drop_src_prefix(p.addr(), p.len(), true) {
                    tracing::warn!("port {name}: XDP drop {p}: {e}");
                }
            }
        }
        self.xdp_drops = drops;
    }

    /// Re-reads the configuration file. A file that does not validate changes
    /// nothing (the errors are returned, with file:line). A valid one replaces
    /// the configured routes and the filter (rules added with ctl since are
    /// replaced too) and the neighbor policy; changes to `[engine]` or the
    /// ports need a restart and are reported, not applied. The service
    /// manager hears RELOADING=1 before, READY=1 after, with the outcome.
    pub fn reload(&mut self) -> Result<String, String> {
        if let Some(n) = &self.service {
            n.reloading();
        }
        let r = self.reload_config();
        if let Some(n) = &self.service {
            n.reloaded(&r);
        }
        r
    }

    fn reload_config(&mut self) -> Result<String, String> {
        let Some(path) = self.config_path.clone() else {
            return Err("no configuration file to reload".into());
        };
        let new = crate::control::config::Config::load(&path)
            .map_err(|e| format!("reload refused, the running configuration stays:\n{e}"))?;
        let mut notes = Vec::new();
        if let Some(old) = &self.running {
            if old.engine != new.engine
                || old.ports != new.ports
                || old.bridges != new.bridges
                || old.nat != new.nat
                || old.lb != new.lb
                || old.tcp != new.tcp
                || old.tcp_stack != new.tcp_stack
                || old.udp_echo != new.udp_echo
                || old.impair != new.impair
            {
                notes.push("changes to [engine], ports, bridges, [nat], [[lb]], [[tcp]], [tcp_stack], [[udp]] or [impair] need a restart: not applied (lb pools: ctl lb backend)".to_string());
            }
            if old.routing.kernel_control != new.routing.kernel_control {
                notes.push("changes to kernel_control need a restart: not applied".to_string());
            }
            if old.conntrack.is_some() && new.conntrack.is_some() && old.conntrack != new.conntrack
            {
                notes.push("changes to [conntrack] need a restart: not applied".to_string());
            }
        }
        // Validate everything before changing anything.
        let port = |n: &str| self.tables.ifs.by_name(n).map(|p| p.index);
        let mut rules = Vec::new();
        for r in &new.filter.rules {
            let rule = Rule::parse(&r.text, &port)
                .map_err(|e| format!("reload refused: filter rule on line {}: {e}", r.line))?;
            if rule.m.ct_state.is_some() && self.tables.ct.is_none() {
                return Err(format!(
                    "reload refused: filter rule on line {}: {NO_CONNTRACK}",
                    r.line
                ));
            }
            rules.push(rule);
        }
        let routes = super::setup::config_routes(&new);
        for r in &self.config_routes {
            let _ = self.rt.stage_remove(r.prefix, Some(r.metric));
        }
        for r in &routes {
            if let Err(e) = self.rt.stage_add(r.clone()) {
                notes.push(format!("route {r}: {e}"));
            }
        }
        self.rt.publish();
        self.publish_routes();
        let act = |drop: bool| if drop { Action::Drop } else { Action::Accept };
        self.filter_default = act(new.filter.default_drop);
        self.filter_policy = self
            .tables
            .ifs
            .ports
            .iter()
            .map(|p| {
                new.filter
                    .policy
                    .iter()
                    .find(|(n, _)| *n == p.name || *n == p.interface)
                    .map_or(self.filter_default, |(_, d)| act(*d))
            })
            .collect();
        self.filter_rules = rules;
        self.publish_filter();
        self.accept_unsolicited = new.routing.accept_unsolicited_arp;
        let msg = format!(
            "reloaded {}: {} configured routes, {} filter rules{}",
            path.display(),
            routes.len(),
            self.filter_rules.len(),
            if notes.is_empty() {
                String::new()
            } else {
                format!("; {}", notes.join("; "))
            }
        );
        self.config_routes = routes;
        self.running = Some(new);
        Ok(msg)
    }

    fn port_index(&self, name: &str) -> Option<u16> {
        self.tables.ifs.by_name(name).map(|p| p.index)
    }

    /// Whether an answer (ARP reply, solicited NA) for `key` is one the engine
    /// asked for: the neighbor is being resolved (INCOMPLETE, or FAILED and
    /// retried), or its entry is STALE (the engine probes those), or the
    /// answer only confirms the MAC already known. A REACHABLE entry is not
    /// overwritten by an answer with another MAC, and no entry is created
    /// by one.
    fn neighbor_reply_expected(&self, key: NeighborKey, mac: crate::wire::Mac) -> bool {
        use crate::neighbor::NeighState;
        match self.neigh.state(key) {
            Some(NeighState::Incomplete | NeighState::Failed) => true,
            // Stale entries are probed by the control thread: an answer within 3 s of a probe was asked for.
            Some(NeighState::Stale) => {
                self.neigh.mac(key) == Some(mac)
                    || self
                        .probed
                        .get(&key)
                        .is_some_and(|&t| self.now_ms().saturating_sub(t) < 3000)
            }
            Some(NeighState::Reachable) => self.neigh.mac(key) == Some(mac),
            Some(NeighState::Permanent) | None => false,
        }
    }

    /// Publishes the route table's current FIB with its hops resolved.
    pub fn publish_routes(&mut self) {
        let fib = self.rt.reader().snapshot().clone();
        let routes = Routes::resolve(fib, &self.tables.ifs);
        self.tables.routes.store(Arc::new(routes));
    }

    /// Ages every bridge's MAC table; rebuilds one whose deleted slots piled up.
    pub fn age_macs(&mut self) {
        let now = self.tables.now_ms();
        for b in &self.tables.l2.bridges {
            let t = b.table.load();
            let n = t.age(now);
            if n > 0 {
                tracing::debug!("{}: {n} MAC entries aged out", b.name);
            }
            if t.needs_rebuild() {
                b.table.store(Arc::new(t.rebuild()));
            }
        }
    }

    /// `ctl mac show`: one record per entry of every bridge domain.
    pub fn mac_show(&self) -> Shown<records::MacRecord> {
        let now = self.tables.now_ms();
        let mut recs = Vec::new();
        for b in &self.tables.l2.bridges {
            for e in b.table.load().entries(now) {
                recs.push(records::MacRecord {
                    bridge: b.name.clone(),
                    mac: e.key.mac,
                    vlan: e.key.vlan,
                    port: b.port(e.member).map_or_else(
                        || format!("#{}", e.member),
                        |p| self.port_name(usize::from(p)),
                    ),
                    is_static: e.age_ms.is_none(),
                    age_ms: e.age_ms.map(u64::from),
                });
            }
        }
        let bridges = self.tables.l2.bridges.len();
        let message = if bridges == 0 {
            "no bridge domain is configured".to_string()
        } else {
            format!("{} entries", recs.len())
        };
        let summary = Summary::MacShow(records::MacSummary {
            entries: recs.len(),
            bridges,
        });
        Shown::new("mac table", recs, summary, message)
    }

    /// `ctl route show`: every route of the RIB, by prefix and metric. The
    /// records are made as they are taken: a full table is a million routes,
    /// kept meanwhile as (prefix, metric, index) and the few distinct next-hop entries.
    pub fn route_show(&self) -> Shown<records::RouteRecord> {
        let all = self.rt.all_with_origin();
        let mut entries: Vec<crate::l3::nexthop::NextHopEntry> = Vec::new();
        let mut seen: std::collections::HashMap<*const crate::l3::nexthop::NextHopEntry, usize> =
            std::collections::HashMap::new();
        let routes: Vec<(IpPrefix, u32, crate::l3::route_table::Origin, usize)> = all
            .into_iter()
            .map(|(p, m, o, e)| {
                let i = *seen.entry(std::ptr::from_ref(e)).or_insert_with(|| {
                    entries.push(e.clone());
                    entries.len() - 1
                });
                (p, m, o, i)
            })
            .collect();
        let summary = Summary::RouteShow(records::RouteSummary {
            routes: routes.len(),
        });
        let records = routes
            .into_iter()
            .map(move |(p, m, o, i)| records::RouteRecord::new(p, m, &entries[i]).with_origin(o));
        Shown::from_iter("routes", Box::new(records), summary, String::new())
    }

    /// `ctl arp show`: every neighbor, by key.
    pub fn arp_show(&self) -> Shown<records::NeighborRecord> {
        let recs: Vec<records::NeighborRecord> = self
            .neigh
            .rows()
            .into_iter()
            .map(|(k, mac, state, age_ms)| records::NeighborRecord {
                address: k.ip,
                port: self.port_name(usize::from(k.port)),
                mac,
                state,
                age_ms,
            })
            .collect();
        let summary = Summary::ArpShow(records::NeighborSummary {
            neighbors: recs.len(),
        });
        Shown::new("neighbors", recs, summary, String::new())
    }

    /// `ctl lb show`: every service with its backends.
    pub fn lb_show(&self) -> Shown<records::LbServiceRecord> {
        let Some(lb) = &self.tables.lb else {
            let summary = Summary::LbShow(records::LbSummary { services: 0 });
            return Shown {
                header: None,
                ..Shown::new(
                    "lb services",
                    Vec::new(),
                    summary,
                    "no load-balancer service is configured".into(),
                )
            };
        };
        let recs = records::LbServiceRecord::all(lb);
        let summary = Summary::LbShow(records::LbSummary {
            services: recs.len(),
        });
        Shown {
            lines: |r, rows| rows.extend(r.rows()),
            ..Shown::new("lb services", recs, summary, String::new())
        }
    }

    /// `ctl filter show`: the rules with their hits, the policies as a last line.
    pub fn filter_show(&self) -> Shown<records::FilterRuleRecord> {
        let (recs, mut summary) =
            records::FilterRuleRecord::all(&self.tables.filter.load(), |i| self.port_name(i));
        if let Some(ct) = &self.tables.ct {
            // The stateful filter's packets by state (all workers).
            let [new, established, related, invalid] = ct.packet_totals();
            summary.conntrack = Some(records::filter::CtStateHits {
                new,
                established,
                related,
                invalid,
                tracked: ct.entries(),
            });
        }
        let mut tail = vec![summary.to_string()];
        tail.extend(summary.conntrack.as_ref().map(ToString::to_string));
        Shown {
            tail,
            ..Shown::new("filter", recs, Summary::FilterShow(summary), String::new())
        }
    }

    /// `ctl stats` as records: each counter with its labels, and when it was read.
    pub fn stats_show(&self) -> Shown<records::StatRecord> {
        let recs: Vec<records::StatRecord> = self
            .counters()
            .iter()
            .map(records::StatRecord::from_counter)
            .collect();
        let time_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let summary = Summary::Stats(records::StatsSummary {
            uptime_ns: self.start.elapsed().as_nanos() as u64,
            time_unix_ms,
        });
        // No text rows: `ctl stats` in text is its own view of the counters (`control::cli`).
        Shown {
            header: None,
            records: Box::new(recs.into_iter()),
            lines: |_, _| {},
            tail: Vec::new(),
            summary,
            message: String::new(),
        }
    }

    fn port_name(&self, i: usize) -> String {
        self.tables
            .ifs
            .ports
            .get(i)
            .map_or_else(|| format!("#{i}"), |p| p.name.clone())
    }

    /// Every counter, for `ctl stats`.
    pub fn counters(&self) -> Vec<Counter> {
        let mut s = Sheet::for_ctl();
        self.collect(&mut s);
        s.into_ctl()
    }

    /// Every metric, for a scrape (the front thread renders them).
    pub fn metrics(&self) -> Metrics {
        let mut s = Sheet::for_metrics();
        self.collect(&mut s);
        s.into_metrics()
    }

    /// One walk over the engine's state that makes both the `ctl stats` rows
    /// and the metrics (docs/METRICS.md), side by side, so that a counter
    /// added to one is added to the other where it is read. The rows keep
    /// their scopes, names and order (`control::cli` and JSON clients read them).
    fn collect(&self, s: &mut Sheet) {
        let want = s.wants_metrics();
        let worker = |w: usize| -> Label { Label::Owned(w.to_string()) };
        for (i, p) in self.tables.ifs.ports.iter().enumerate() {
            let scope = format!("port {}", self.port_name(i));
            let mut t = crate::context::counters::PortTraffic::default();
            for w in &self.workers {
                let p = w.port(i);
                t.rx_packets += p.rx_packets;
                t.rx_bytes += p.rx_bytes;
                t.tx_packets += p.tx_packets;
                t.tx_bytes += p.tx_bytes;
            }
            for (name, def, v) in [
                ("rx_packets", &metrics::PORT_RX_PACKETS, t.rx_packets),
                ("rx_bytes", &metrics::PORT_RX_BYTES, t.rx_bytes),
                ("tx_packets", &metrics::PORT_TX_PACKETS, t.tx_packets),
                ("tx_bytes", &metrics::PORT_TX_BYTES, t.tx_bytes),
            ] {
                s.ctl(&scope, name, v);
                s.metric(def, [Label::Owned(p.name.clone())], v);
            }
            if self.tables.ifs.is_bvi(i as u16) {
                // A bridge's routed interface has no socket.
                continue;
            }
            // The kernel's drops before the engine saw the frame (each worker
            // reads its sockets' every 100 ms).
            let mut xdp = crate::xsk::XdpStatistics::default().fields();
            for w in &self.workers {
                for (acc, (_, v)) in xdp.iter_mut().zip(w.xdp(i)) {
                    acc.1 += v;
                }
            }
            let scope = format!("xsk {}", self.port_name(i));
            for (name, v) in xdp {
                s.ctl(&scope, name, v);
                if let Some(def) = metrics::xsk_family(name) {
                    s.metric(def, [Label::Owned(p.name.clone())], v);
                }
            }
        }
        for (name, st) in &self.steering {
            if let Ok(v) = st.counters() {
                let scope = format!("xdp {name}");
                for verdict in Verdict::ALL {
                    s.ctl(&scope, verdict.as_str(), v.packets(verdict));
                    s.metric(
                        &metrics::XDP_PACKETS,
                        [Label::Owned(name.clone()), verdict.as_str().into()],
                        v.packets(verdict),
                    );
                    s.metric(
                        &metrics::XDP_BYTES,
                        [Label::Owned(name.clone()), verdict.as_str().into()],
                        v.bytes[verdict as usize],
                    );
                }
            }
        }
        for (wi, w) in self.workers.iter().enumerate() {
            let scope = format!("worker {wi}");
            let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            for (name, def, v) in [
                ("loops", &metrics::WORKER_LOOPS, load(&w.loops)),
                (
                    "idle_loops",
                    &metrics::WORKER_IDLE_LOOPS,
                    load(&w.idle_loops),
                ),
                ("sleeps", &metrics::WORKER_SLEEPS, load(&w.sleeps)),
            ] {
                s.ctl(&scope, name, v);
                s.metric(def, [worker(wi)], v);
            }
            let cpu_ms = thread_cpu_ms(load(&w.tid));
            s.ctl(&scope, "cpu_ms", cpu_ms);
            s.metric(&metrics::WORKER_CPU, [worker(wi)], cpu_ms as f64 / 1e3);
            s.metric(
                &metrics::WORKER_BUSY,
                [worker(wi)],
                load(&w.busy_ns) as f64 / 1e9,
            );
            for ((name, place), a) in [
                ("frames_free", "free"),
                ("frames_rx", "rx"),
                ("frames_held", "held"),
                ("frames_tx", "tx"),
            ]
            .iter()
            .zip(&w.frames)
            {
                s.ctl(&scope, name, load(a));
                s.metric(
                    &metrics::UMEM_FRAMES,
                    [worker(wi), Label::Borrowed(place)],
                    load(a),
                );
            }
            s.ctl(&scope, "ledger_errors", load(&w.ledger_errors));
            s.metric(
                &metrics::UMEM_LEDGER_ERRORS,
                [worker(wi)],
                load(&w.ledger_errors),
            );
            for st in Stage::ALL {
                let v = w.stage_count(st);
                s.ctl(&scope, &format!("stage {}", st.name()), v);
                s.metric(&metrics::STAGE_PACKETS, [worker(wi), st.name().into()], v);
            }
            // Appended last (the rows above keep their order): the time of the loop iterations
            // that found work, in ns (the metric above in seconds). What a busy-polling worker
            // spends on packets, where its cpu_ms is all of its core (scripts/bench.sh, cost mode).
            s.ctl(&scope, "busy_ns", load(&w.busy_ns));
        }
        s.ctl(
            "neighbor",
            "unsolicited_answers_ignored",
            self.unsolicited_ignored,
        );
        s.metric(&metrics::NEIGHBOR_UNSOLICITED, [], self.unsolicited_ignored);
        let kn = &self.kernel_neigh;
        for (name, outcome, v) in [
            ("kernel_frames_read", "read", kn.read),
            ("kernel_frames_malformed", "malformed", kn.malformed),
        ] {
            s.ctl("neighbor", name, v);
            s.metric(&metrics::NEIGHBOR_KERNEL_FRAMES, [outcome.into()], v);
        }
        if want {
            // Table sizes: O(1) each but the neighbors (one pass over the control thread's table).
            let (v4, v6) = self.rt.prefixes();
            s.metric(&metrics::ROUTES, ["ipv4".into()], v4);
            s.metric(&metrics::ROUTES, ["ipv6".into()], v6);
            for (state, n) in crate::neighbor::NeighState::ALL
                .iter()
                .zip(self.neigh.state_counts())
            {
                s.metric(&metrics::NEIGHBORS, [state.name().into()], n);
            }
            for b in &self.tables.l2.bridges {
                let t = b.table.load();
                s.metric(
                    &metrics::MAC_ENTRIES,
                    [Label::Owned(b.name.clone())],
                    t.len(),
                );
                s.metric(
                    &metrics::MAC_ENTRIES_LIMIT,
                    [Label::Owned(b.name.clone())],
                    t.max_entries(),
                );
            }
        }
        if let Some(nat) = &self.tables.nat {
            for (wi, g) in nat.gauges.iter().enumerate() {
                let scope = format!("nat worker {wi}");
                let (sessions, mappings) = (
                    g.sessions.load(Ordering::Relaxed),
                    g.mappings.load(Ordering::Relaxed),
                );
                s.ctl(&scope, "sessions", u64::from(sessions));
                s.ctl(&scope, "mappings", u64::from(mappings));
                s.metric(&metrics::NAT_SESSIONS, [worker(wi)], sessions);
                s.metric(&metrics::NAT_MAPPINGS, [worker(wi)], mappings);
                s.metric(
                    &metrics::NAT_SESSIONS_LIMIT,
                    [worker(wi)],
                    nat.cfg.max_sessions,
                );
            }
        }
        if let Some(ct) = &self.tables.ct {
            for (wi, g) in ct.gauges.iter().enumerate() {
                let scope = format!("conntrack worker {wi}");
                let l64 = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
                let entries = u64::from(g.entries.load(Ordering::Relaxed));
                s.ctl(&scope, "entries", entries);
                s.metric(&metrics::CONNTRACK_ENTRIES, [worker(wi)], entries);
                s.metric(
                    &metrics::CONNTRACK_ENTRIES_LIMIT,
                    [worker(wi)],
                    ct.cfg.max_entries,
                );
                for (state, a) in crate::filter::conn::STATES.iter().zip(&g.packets) {
                    s.ctl(&scope, state, l64(a));
                    s.metric(
                        &metrics::CONNTRACK_PACKETS,
                        [worker(wi), Label::Borrowed(state)],
                        l64(a),
                    );
                }
                let (created, expired, evicted, full) = (
                    l64(&g.created),
                    l64(&g.expired),
                    l64(&g.evicted),
                    l64(&g.full),
                );
                for (name, v) in [
                    ("created", created),
                    ("expired", expired),
                    ("evicted", evicted),
                    ("table_full", full),
                ] {
                    s.ctl(&scope, name, v);
                }
                s.metric(&metrics::CONNTRACK_CREATED, [worker(wi)], created);
                s.metric(
                    &metrics::CONNTRACK_REMOVED,
                    [worker(wi), "expired".into()],
                    expired,
                );
                s.metric(
                    &metrics::CONNTRACK_REMOVED,
                    [worker(wi), "evicted".into()],
                    evicted,
                );
                s.metric(&metrics::CONNTRACK_TABLE_FULL, [worker(wi)], full);
            }
        }
        if let Some(tcp) = &self.tables.tcp {
            for (wi, g) in tcp.gauges.iter().enumerate() {
                let scope = format!("tcp worker {wi}");
                let g32 = |a: &std::sync::atomic::AtomicU32| u64::from(a.load(Ordering::Relaxed));
                let g64 = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
                let (conns, est, half, tw) = (
                    g32(&g.conns),
                    g32(&g.established),
                    g32(&g.half_open),
                    g32(&g.time_wait),
                );
                let (accepted, connected, closed) =
                    (g64(&g.accepted), g64(&g.connected), g64(&g.closed));
                let (reset, timed_out, refused) =
                    (g64(&g.reset), g64(&g.timed_out), g64(&g.refused));
                let (bytes_in, bytes_out) = (g64(&g.bytes_in), g64(&g.bytes_out));
                let loss = [
                    ("retransmits", g64(&g.retransmits)),
                    ("timeouts", g64(&g.timeouts)),
                    ("fast_retransmits", g64(&g.fast_retransmits)),
                    ("tlp_probes", g64(&g.tlp_probes)),
                    ("tlp_recoveries", g64(&g.tlp_recoveries)),
                    ("spurious_undos", g64(&g.spurious_undos)),
                    ("paws_drops", g64(&g.paws_drops)),
                    ("rcv_buffer_grows", g64(&g.rcv_buffer_grows)),
                    ("lost_retransmits", g64(&g.lost_retransmits)),
                ];
                for (name, v) in [
                    ("conns", conns),
                    ("established", est),
                    ("half_open", half),
                    ("time_wait", tw),
                    ("accepted", accepted),
                    ("connected", connected),
                    ("closed", closed),
                    ("reset", reset),
                    ("timed_out", timed_out),
                    ("refused", refused),
                    ("bytes_in", bytes_in),
                    ("bytes_out", bytes_out),
                ] {
                    s.ctl(&scope, name, v);
                }
                for (name, v) in loss {
                    s.ctl(&scope, name, v);
                    s.metric(&metrics::TCP_LOSS, [worker(wi), name.into()], v);
                }
                let other = conns.saturating_sub(est + half + tw);
                for (state, v) in [
                    ("established", est),
                    ("half_open", half),
                    ("time_wait", tw),
                    ("other", other),
                ] {
                    s.metric(&metrics::TCP_CONNECTIONS, [worker(wi), state.into()], v);
                }
                s.metric(
                    &metrics::TCP_OPENED,
                    [worker(wi), "accepted".into()],
                    accepted,
                );
                s.metric(
                    &metrics::TCP_OPENED,
                    [worker(wi), "connected".into()],
                    connected,
                );
                // `closed` counts every end; reset, timed_out and refused are some of them.
                let normal = closed.saturating_sub(reset + timed_out + refused);
                for (how, v) in [
                    ("normal", normal),
                    ("reset", reset),
                    ("timed_out", timed_out),
                    ("refused", refused),
                ] {
                    s.metric(&metrics::TCP_CLOSED, [worker(wi), how.into()], v);
                }
                s.metric(&metrics::TCP_RX_BYTES, [worker(wi)], bytes_in);
                s.metric(&metrics::TCP_TX_BYTES, [worker(wi)], bytes_out);
            }
        }
        if let (true, Some(lb)) = (want, &self.tables.lb) {
            let services = lb.services.load();
            for svc in &services.list {
                let name = || Label::Owned(svc.cfg.name.clone());
                let up = svc.backends.iter().filter(|b| b.up).count();
                s.metric(&metrics::LB_BACKENDS, [name(), "up".into()], up);
                if let Some(on) = lb.announced(&svc.cfg) {
                    s.metric(&metrics::LB_VIP_ANNOUNCED, [name()], u64::from(on));
                }
                s.metric(
                    &metrics::LB_BACKENDS,
                    [name(), "down".into()],
                    svc.backends.len() - up,
                );
                for b in &svc.backends {
                    let ep = || Label::Owned(b.ep.to_string());
                    let (conns, active, bytes) = b.stats.totals();
                    s.metric(&metrics::LB_BACKEND_UP, [name(), ep()], u64::from(b.up));
                    s.metric(&metrics::LB_BACKEND_CONNECTIONS, [name(), ep()], conns);
                    s.metric(&metrics::LB_BACKEND_ACTIVE, [name(), ep()], active);
                    s.metric(&metrics::LB_BACKEND_BYTES, [name(), ep()], bytes);
                }
            }
        }
        for d in Drop::ALL {
            let mut sum = 0;
            for (wi, w) in self.workers.iter().enumerate() {
                let v = w.drop_count(*d);
                sum += v;
                s.metric(
                    &metrics::DROPS,
                    [worker(wi), d.stage().into(), d.name().into()],
                    v,
                );
            }
            s.ctl(&format!("drop {}", d.stage()), d.name(), sum);
        }
        if let Some(m) = &self.mirror {
            let st = &m.stats;
            for (name, v) in [
                ("routes", m.routes as u64),
                ("upserts", st.upserts),
                ("removes", st.removes),
                ("refused", st.refused),
                ("overruns", st.overruns),
                ("resyncs", st.resyncs),
                ("malformed", st.malformed),
                ("batches", st.batches),
                ("largest_batch", st.largest_batch),
            ] {
                s.ctl("route mirror", name, v);
            }
            for (why, v) in crate::runtime::mirror::Ignored::ALL.iter().zip(st.ignored) {
                s.ctl("route mirror", &format!("ignored {}", why.name()), v);
                s.metric(&metrics::MIRROR_IGNORED, [why.name().into()], v);
            }
            s.metric(&metrics::MIRROR_ROUTES, [], m.routes as u64);
            s.metric(&metrics::MIRROR_CHANGES, ["upsert".into()], st.upserts);
            s.metric(&metrics::MIRROR_CHANGES, ["remove".into()], st.removes);
            s.metric(&metrics::MIRROR_CHANGES, ["refused".into()], st.refused);
            s.metric(&metrics::MIRROR_RESYNCS, [], st.resyncs);
        }
        if let Some(f) = &self.front {
            for (name, v) in f.rows() {
                s.ctl("ctl front", name, v);
                match name {
                    "accepted" => s.metric(&metrics::CTL_CONNECTIONS, [], v),
                    _ => s.metric(
                        &metrics::CTL_ERRORS,
                        [name
                            .trim_start_matches("refused_")
                            .trim_start_matches("request_")
                            .into()],
                        v,
                    ),
                }
            }
        }
        if want {
            s.metric(
                &metrics::BUILD_INFO,
                [env!("CARGO_PKG_VERSION").into()],
                1u64,
            );
            if let Some(p) = process_stats() {
                s.metric(&metrics::PROCESS_START, [], p.start_time_s);
                s.metric(&metrics::PROCESS_CPU, [], p.cpu_s);
                s.metric(&metrics::PROCESS_RSS, [], p.rss_bytes);
            }
        }
    }

    /// Answers one ctl request through `reply`. A capture keeps it and
    /// streams frames as they arrive; everything else answers at once.
    pub fn request(&mut self, req: Request, mut reply: Reply) {
        if let Request::Capture {
            port,
            count,
            filter,
        } = req
        {
            return self.start_capture(&port, count, filter, reply);
        }
        if matches!(
            req,
            Request::NatShow | Request::NatFlush | Request::TcpShow | Request::ConnShow { .. }
        ) {
            return self.start_dump(&req, reply);
        }
        if reply.format() == Format::Json {
            // Typed records, sent a chunk at a time as the client takes them.
            match req {
                Request::Stats => return self.stream(self.stats_show(), reply),
                Request::RouteShow => return self.stream(self.route_show(), reply),
                Request::ArpShow => return self.stream(self.arp_show(), reply),
                Request::MacShow => return self.stream(self.mac_show(), reply),
                Request::LbShow => return self.stream(self.lb_show(), reply),
                Request::FilterShow => return self.stream(self.filter_show(), reply),
                Request::Trace { set } => {
                    let shown = self.trace_show(set);
                    return self.stream(shown, reply);
                }
                _ => {}
            }
        }
        let mut out = |r: Response| -> io::Result<()> {
            if reply.send(r) {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the client is gone",
                ))
            }
        };
        if let Err(e) = self.answer(req, &mut out) {
            tracing::debug!("ctl: {e}");
        }
    }

    /// Answers a request that is not a capture.
    pub fn answer(
        &mut self,
        req: Request,
        out: &mut dyn FnMut(Response) -> io::Result<()>,
    ) -> io::Result<()> {
        match req {
            Request::Stats => {
                out(Response::Stats {
                    time_ns: self.start.elapsed().as_nanos() as u64,
                    counters: self.counters(),
                })?;
                out(Response::Done {
                    message: String::new(),
                })
            }
            Request::RouteShow => self.route_show().text(out),
            Request::RouteAdd { route } => {
                let r = match routes_file::parse_line(&route) {
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        return out(Response::Error {
                            message: "empty route".into(),
                        })
                    }
                    Err(e) => return out(Response::Error { message: e }),
                };
                for h in &r.hops {
                    if let Some(d) = &h.dev {
                        if self.tables.ifs.by_name(d).is_none() {
                            return out(Response::Error {
                                message: format!("no port `{d}`"),
                            });
                        }
                    }
                }
                let shown = r.to_string();
                match self.rt.add(r) {
                    Ok(()) => {
                        self.publish_routes();
                        out(Response::Done {
                            message: format!("added {shown}"),
                        })
                    }
                    Err(e) => out(Response::Error {
                        message: e.to_string(),
                    }),
                }
            }
            Request::RouteDel { route } => {
                // `PREFIX [metric N]`, or a whole route line (its prefix and metric count).
                let words: Vec<&str> = route.split_whitespace().collect();
                let Some(pfx) = words
                    .first()
                    .and_then(|w| {
                        if *w == "default" {
                            None
                        } else {
                            w.parse::<crate::l3::prefix::IpPrefix>().ok()
                        }
                    })
                    .or_else(|| {
                        routes_file::parse_line(&route)
                            .ok()
                            .flatten()
                            .map(|r| r.prefix)
                    })
                else {
                    return out(Response::Error {
                        message: format!("`{route}`: no prefix"),
                    });
                };
                let metric = words
                    .iter()
                    .position(|w| *w == "metric")
                    .and_then(|i| words.get(i + 1))
                    .and_then(|m| m.parse().ok());
                match self.rt.remove(pfx, metric) {
                    Ok(()) => {
                        self.publish_routes();
                        out(Response::Done {
                            message: format!("deleted {pfx}"),
                        })
                    }
                    Err(e) => out(Response::Error {
                        message: format!("{pfx}: {e}"),
                    }),
                }
            }
            Request::ArpShow => self.arp_show().text(out),
            Request::MacShow => self.mac_show().text(out),
            Request::MacFlush => {
                let mut n = 0;
                for b in &self.tables.l2.bridges {
                    n += b.table.load().flush();
                    // A fresh table: the deleted slots go too.
                    b.table.store(Arc::new(b.fresh_table()));
                }
                out(Response::Done {
                    message: format!("flushed {n} dynamic entries"),
                })
            }
            Request::NatShow | Request::NatFlush | Request::TcpShow | Request::ConnShow { .. } => {
                out(Response::Error {
                    message: "a worker dump needs a streaming reply".into(),
                })
            }
            Request::LbShow => self.lb_show().text(out),
            Request::LbBackend {
                service,
                backend,
                action,
                weight,
            } => {
                let Some(lb) = self.tables.lb.clone() else {
                    return out(Response::Error {
                        message: "no load-balancer service is configured".into(),
                    });
                };
                let ep = match crate::lb::parse_backend(&backend) {
                    Ok(b) => b.ep,
                    Err(e) => return out(Response::Error { message: e }),
                };
                if weight.is_some_and(|w| !(1..=1000).contains(&w)) {
                    return out(Response::Error {
                        message: "weight must be 1..1000".into(),
                    });
                }
                match lb.change_backend(&service, ep, &action, weight) {
                    Ok(m) => {
                        tracing::info!("{m}");
                        out(Response::Done { message: m })
                    }
                    Err(e) => out(Response::Error { message: e }),
                }
            }
            Request::Capture { .. } => out(Response::Error {
                message: "a capture needs a streaming reply".into(),
            }),
            Request::FilterAdd { rule, at } => {
                let r = match Rule::parse(&rule, &|n| self.port_index(n)) {
                    Ok(r) => r,
                    Err(e) => return out(Response::Error { message: e }),
                };
                if r.m.ct_state.is_some() && self.tables.ct.is_none() {
                    return out(Response::Error {
                        message: NO_CONNTRACK.into(),
                    });
                }
                let at = at
                    .unwrap_or(self.filter_rules.len())
                    .min(self.filter_rules.len());
                let shown = r.text.clone();
                self.filter_rules.insert(at, r);
                self.publish_filter();
                out(Response::Done {
                    message: format!("rule {at}: {shown}"),
                })
            }
            Request::FilterDel { index } => {
                if index >= self.filter_rules.len() {
                    return out(Response::Error {
                        message: format!("no rule {index} (there are {})", self.filter_rules.len()),
                    });
                }
                let r = self.filter_rules.remove(index);
                self.publish_filter();
                out(Response::Done {
                    message: format!("deleted rule {index}: {}", r.text),
                })
            }
            Request::Reload => match self.reload() {
                Ok(m) => out(Response::Done { message: m }),
                Err(e) => out(Response::Error { message: e }),
            },
            Request::FilterShow => self.filter_show().text(out),
            Request::Trace { set } => self.trace_show(set).text(out),
        }
    }

    /// `ctl nat show` (every worker's sessions, one per line:
    /// `udp 198.18.1.2:40000 198.19.1.1:40000 198.19.1.2:7 - age 1.250s idle 0.100s expires 299s pkts 1/1 worker 0`),
    /// `ctl nat flush` (every worker removes its dynamic sessions, no rows),
    /// `ctl tcp show` (`198.18.1.1:7 198.18.1.2:40000 Established in 1000 out 1000 age 1.250s srtt 85us rto 200ms cwnd 14600 queued 0 worker 0`).
    fn start_dump(&mut self, req: &Request, mut reply: Reply) {
        let busy = |mut reply: Reply, b: crate::context::dump::Busy| {
            reply.send(Response::Error {
                message: format!("{b}; try again"),
            });
        };
        let json = reply.format() == Format::Json;
        let mut d: Box<dyn PendingDump> = match req {
            Request::NatShow | Request::NatFlush => {
                let flush = matches!(req, Request::NatFlush);
                let Some(nat) = self.tables.nat.clone() else {
                    if json && !flush {
                        let summary = records::NatSummary {
                            sessions_listed: 0,
                            mappings: 0,
                            silent_workers: Vec::new(),
                        };
                        reply.send(Response::Summary {
                            summary: Summary::NatShow(summary),
                        });
                    }
                    reply.send(Response::Done {
                        message: "NAT is not configured".into(),
                    });
                    return;
                };
                let collector = match Collector::start(
                    &nat.dumps,
                    if flush { Mode::Flush } else { Mode::Show },
                ) {
                    Ok(c) => c,
                    Err(b) => return busy(reply, b),
                };
                let finish = move |n: usize, silent_workers: Vec<u16>| {
                    let (s, m) = nat.totals();
                    if flush {
                        return (
                            None,
                            format!(
                                "flushed; {s} sessions, {m} mappings left (static forwards stay)"
                            ),
                        );
                    }
                    // The sessions listed (a dump is no snapshot: the gauges may have moved on).
                    let summary = records::NatSummary {
                        sessions_listed: n,
                        mappings: m,
                        silent_workers,
                    };
                    (
                        Some(Summary::NatShow(summary)),
                        format!("{n} sessions, {m} mappings"),
                    )
                };
                Box::new(TableDump {
                    collector,
                    reply,
                    header: "nat sessions",
                    show: !flush,
                    rows: 0,
                    sent_table: false,
                    silent: Vec::new(),
                    record: records::NatSessionRecord::new,
                    keep: None,
                    finish: Some(Box::new(finish)),
                })
            }
            Request::ConnShow { filter } => {
                let Some(ct) = self.tables.ct.clone() else {
                    if json {
                        let summary = records::ConnSummary {
                            connections_listed: 0,
                            connections: 0,
                            silent_workers: Vec::new(),
                        };
                        reply.send(Response::Summary {
                            summary: Summary::ConnShow(summary),
                        });
                    }
                    reply.send(Response::Done {
                        message:
                            "connection tracking is off (no [conntrack] and no `ct state` rule)"
                                .into(),
                    });
                    return;
                };
                let keep = match conn_filter(filter.clone()) {
                    Ok(k) => k,
                    Err(e) => {
                        reply.send(Response::Error { message: e });
                        return;
                    }
                };
                let collector = match Collector::start(&ct.dumps, Mode::Show) {
                    Ok(c) => c,
                    Err(b) => return busy(reply, b),
                };
                Box::new(TableDump {
                    collector,
                    reply,
                    header: "connections",
                    show: true,
                    rows: 0,
                    sent_table: false,
                    silent: Vec::new(),
                    record: records::ConnRecord::new,
                    keep: Some(keep),
                    finish: Some(Box::new(move |n: usize, silent_workers: Vec<u16>| {
                        let summary = records::ConnSummary {
                            connections_listed: n,
                            connections: ct.entries(),
                            silent_workers,
                        };
                        (Some(Summary::ConnShow(summary)), format!("{n} connections"))
                    })),
                })
            }
            _ => {
                let Some(tcp) = self.tables.tcp.clone() else {
                    if json {
                        let summary = records::TcpSummary {
                            connections_listed: 0,
                            connections: 0,
                            silent_workers: Vec::new(),
                        };
                        reply.send(Response::Summary {
                            summary: Summary::TcpShow(summary),
                        });
                    }
                    reply.send(Response::Done {
                        message: "no [[tcp]] application is configured".into(),
                    });
                    return;
                };
                let collector = match Collector::start(&tcp.dumps, Mode::Show) {
                    Ok(c) => c,
                    Err(b) => return busy(reply, b),
                };
                let finish = move |n: usize, silent_workers: Vec<u16>| {
                    let connections = tcp.total_conns();
                    let summary = records::TcpSummary {
                        connections_listed: n,
                        connections,
                        silent_workers,
                    };
                    (
                        Some(Summary::TcpShow(summary)),
                        format!("{connections} connections"),
                    )
                };
                Box::new(TableDump {
                    collector,
                    reply,
                    header: "tcp connections",
                    show: true,
                    rows: 0,
                    sent_table: false,
                    silent: Vec::new(),
                    record: records::TcpConnRecord::new,
                    keep: None,
                    finish: Some(Box::new(finish)),
                })
            }
        };
        if !d.poll() {
            self.dumps.push(d);
        }
    }

    /// Starts a capture: the filter's program is checked here (as the
    /// kernel checks a socket filter) before any worker sees it; a refused
    /// one is answered with the reason and nothing is armed.
    fn start_capture(
        &mut self,
        port: &str,
        count: u32,
        filter: Option<CaptureFilter>,
        mut reply: Reply,
    ) {
        let Some(p) = self.tables.ifs.by_name(port) else {
            reply.send(Response::Error {
                message: format!("no port `{port}`"),
            });
            return;
        };
        let (idx, name) = (usize::from(p.index), p.name.clone());
        if idx >= self.tables.capture.len() {
            reply.send(Response::Error {
                message: format!("no port `{port}`"),
            });
            return;
        }
        if count == 0 {
            reply.send(Response::Done {
                message: "0 frames".into(),
            });
            return;
        }
        if self.captures.len() >= MAX_CAPTURES {
            reply.send(Response::Error {
                message: format!("{MAX_CAPTURES} captures are running already"),
            });
            return;
        }
        let program = match filter
            .as_ref()
            .map(|f| Program::decode(&f.program))
            .transpose()
        {
            Ok(p) => p,
            Err(e) => {
                reply.send(Response::Error {
                    message: format!("capture filter refused: {e}"),
                });
                return;
            }
        };
        match (&filter, &program) {
            (Some(f), Some(p)) => tracing::info!(
                "capture on {name}: {count} frames that `{}` accepts ({} instructions)",
                f.expr,
                p.len()
            ),
            _ => tracing::info!("capture on {name}: {count} frames"),
        }
        let tap = Arc::new(Tap::new(program, count));
        self.captures.push(Capture {
            idx,
            name,
            want: count,
            got: 0,
            last: Instant::now(),
            reply,
            tap,
        });
        self.publish_taps();
    }

    /// `ctl trace [on|off]`: switches the trace (`set`), then the traced
    /// packets kept (newest last).
    pub fn trace_show(&mut self, set: Option<bool>) -> Shown<records::TracedPacket> {
        if let Some(on) = set {
            self.tables.trace.store(on, Ordering::Relaxed);
        }
        // Take what the workers traced so far.
        while let Ok(e) = self.events.try_recv() {
            self.event(e);
        }
        let on = self.tables.trace.load(Ordering::Relaxed);
        let recs: Vec<records::TracedPacket> = self
            .trace
            .iter()
            .map(|t| records::TracedPacket::new(t, |i| self.port_name(i)))
            .collect();
        let summary = Summary::Trace(records::TraceSummary {
            enabled: on,
            packets: recs.len(),
        });
        Shown::new(
            "trace",
            recs,
            summary,
            format!("trace is {}", if on { "on" } else { "off" }),
        )
    }

    /// Answers a JSON request with `shown`'s records: at once when the client
    /// takes them as fast, else a chunk at a time from the loop (a full
    /// routing table is a million records), as a dump is.
    fn stream<R: Record>(&mut self, shown: Shown<R>, reply: Reply) {
        let mut d = Box::new(RecordStream {
            records: shown.records.peekable(),
            reply,
            summary: Some(shown.summary),
            message: shown.message,
        });
        if !d.poll() {
            self.dumps.push(d);
        }
    }
}

/// A show command's answer before it takes a shape: its records, what the
/// text adds (the table's header, a last row), its summary and final words.
/// Text and JSON come from the same records.
pub struct Shown<R> {
    /// The text table's header; none: the text is the message alone.
    pub header: Option<&'static str>,
    /// The records, in order, made as they are taken.
    pub records: Box<dyn Iterator<Item = R>>,
    /// A record's lines of text (one, its `Display`, but for `lb show`).
    pub lines: fn(&R, &mut Vec<String>),
    /// Last lines of the text table (the filter's policies and ct state hits).
    pub tail: Vec<String>,
    pub summary: Summary,
    pub message: String,
}

impl<R> std::fmt::Debug for Shown<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shown")
            .field("header", &self.header)
            .field("summary", &self.summary)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl<R: std::fmt::Display + 'static> Shown<R> {
    fn new(header: &'static str, records: Vec<R>, summary: Summary, message: String) -> Shown<R> {
        Shown::from_iter(header, Box::new(records.into_iter()), summary, message)
    }

    fn from_iter(
        header: &'static str,
        records: Box<dyn Iterator<Item = R>>,
        summary: Summary,
        message: String,
    ) -> Shown<R> {
        Shown {
            header: Some(header),
            records,
            lines: |r, rows| rows.push(r.to_string()),
            tail: Vec::new(),
            summary,
            message,
        }
    }

    /// The text answer: a table (one message, as before records) and the final words.
    pub fn text(self, out: &mut dyn FnMut(Response) -> io::Result<()>) -> io::Result<()> {
        if let Some(header) = self.header {
            let mut rows = Vec::with_capacity(self.records.size_hint().0);
            for r in self.records {
                (self.lines)(&r, &mut rows);
            }
            rows.extend(self.tail);
            out(Response::Table {
                header: header.into(),
                rows,
            })?;
        }
        out(Response::Done {
            message: self.message,
        })
    }
}

/// A JSON answer of records the control thread already has, in chunks of at
/// most `POLL_ROWS` as the client reads them, then the summary and `Done`.
struct RecordStream<R> {
    records: std::iter::Peekable<Box<dyn Iterator<Item = R>>>,
    reply: Reply,
    summary: Option<Summary>,
    message: String,
}

impl<R: Record> PendingDump for RecordStream<R> {
    fn poll(&mut self) -> bool {
        while !self.reply.is_closed() && !self.reply.backlogged() {
            if self.records.peek().is_none() {
                if let Some(summary) = self.summary.take() {
                    self.reply.send(Response::Summary { summary });
                }
                self.reply.send(Response::Done {
                    message: std::mem::take(&mut self.message),
                });
                return true;
            }
            let chunk: Vec<R> = self.records.by_ref().take(POLL_ROWS).collect();
            self.reply.send(Response::Records {
                records: R::wrap(chunk),
            });
        }
        self.reply.is_closed()
    }
}

/// A worker dump in progress (`ctl nat show/flush`, `ctl tcp show`): the
/// control thread polls it between its other work, never waiting for the
/// workers, and forwards rows as they arrive in `Table` messages of at most
/// `dump::POLL_ROWS` rows; a worker that sends nothing for a second gets a
/// line saying so. The client leaving cancels the workers' walks.
trait PendingDump {
    /// Moves what arrived to the client; true when the dump is over.
    fn poll(&mut self) -> bool;
}

/// The final answer of a dump, from the rows listed and the workers that
/// did not answer: a summary (JSON shows) and the final words.
type Finish = Box<dyn FnOnce(usize, Vec<u16>) -> (Option<Summary>, String)>;

/// Which rows a dump lists (`ctl conn show`'s words).
type Keep<T> = Box<dyn Fn(&T) -> bool>;

/// Which connections `ctl conn show` lists.
type ConnKeep = Keep<crate::conntrack::ConnInfo>;

struct TableDump<T, R> {
    collector: Collector<T>,
    reply: Reply,
    header: &'static str,
    /// Rows are listed (show) or only counted (flush).
    show: bool,
    rows: usize,
    sent_table: bool,
    /// Workers that did not answer.
    silent: Vec<u16>,
    /// A worker's row as a record (whose `Display` is its text row).
    record: fn(u16, &T) -> R,
    /// The rows the request asks for (None: all).
    keep: Option<Keep<T>>,
    finish: Option<Finish>,
}

impl<T, R: Record + std::fmt::Display> PendingDump for TableDump<T, R> {
    fn poll(&mut self) -> bool {
        if self.reply.is_closed() {
            return true;
        }
        // The client reads slower than the workers walk: they wait (their
        // slices queue in the slots, bounded), nothing piles up here.
        if self.reply.backlogged() {
            return false;
        }
        let json = self.reply.format() == Format::Json;
        // One poll (at most POLL_ROWS rows) per round: the loop's other work keeps its pace.
        for _ in 0..1 {
            let p = self.collector.poll();
            self.silent.extend(&p.silent);
            let keep = |r: &T| self.keep.as_ref().is_none_or(|k| k(r));
            if !self.show {
                self.rows += p.rows.len();
            } else if json {
                let recs: Vec<R> = p
                    .rows
                    .iter()
                    .filter(|(_, r)| keep(r))
                    .map(|(w, r)| (self.record)(*w, r))
                    .collect();
                self.rows += recs.len();
                if !recs.is_empty() {
                    self.reply.send(Response::Records {
                        records: R::wrap(recs),
                    });
                }
            } else {
                let mut lines: Vec<String> = p
                    .rows
                    .iter()
                    .filter(|(_, r)| keep(r))
                    .map(|(w, r)| (self.record)(*w, r).to_string())
                    .collect();
                self.rows += lines.len();
                lines.extend(
                    p.silent
                        .iter()
                        .map(|w| format!("worker {w} did not answer")),
                );
                if !lines.is_empty() {
                    self.sent_table = true;
                    self.reply.send(Response::Table {
                        header: self.header.into(),
                        rows: lines,
                    });
                }
            }
            if p.done {
                if self.show && !json && !self.sent_table {
                    self.reply.send(Response::Table {
                        header: self.header.into(),
                        rows: Vec::new(),
                    });
                }
                if let Some(f) = self.finish.take() {
                    let (summary, message) = f(self.rows, std::mem::take(&mut self.silent));
                    if let (true, Some(summary)) = (json, summary) {
                        self.reply.send(Response::Summary { summary });
                    }
                    self.reply.send(Response::Done { message });
                }
                return true;
            }
            if p.rows.is_empty() {
                break;
            }
        }
        false
    }
}

/// What `ctl filter add` says of a `ct state` rule when the engine has no connection table.
const NO_CONNTRACK: &str =
    "`ct state` needs connection tracking, and the connection table is made at start: \
     add a [conntrack] section (or the rule) to the configuration and restart";

/// The rows `ctl conn show WORDS` keeps: every word must match (an
/// address one of the tuples' addresses, `port N` one of their ports, a
/// protocol name the protocol).
fn conn_filter(words: String) -> Result<ConnKeep, String> {
    let mut addrs: Vec<std::net::IpAddr> = Vec::new();
    let mut ports: Vec<u16> = Vec::new();
    let mut proto: Option<u8> = None;
    let mut it = words.split_whitespace();
    while let Some(w) = it.next() {
        match w {
            "port" | "sport" | "dport" => {
                let p = it
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or_else(|| format!("`{w}` needs a port number"))?;
                ports.push(p);
            }
            "tcp" => proto = Some(6),
            "udp" => proto = Some(17),
            "icmp" => proto = Some(1),
            "icmpv6" => proto = Some(58),
            "src" | "dst" | "addr" => {}
            x => addrs.push(x.parse().map_err(|_| {
                format!("`{x}`: expected an address, `port N` or tcp|udp|icmp|icmpv6")
            })?),
        }
    }
    Ok(Box::new(move |c| {
        let t = [&c.orig, &c.reply];
        proto.is_none_or(|p| c.orig.proto == p)
            && addrs
                .iter()
                .all(|a| t.iter().any(|t| t.src_ip() == *a || t.dst_ip() == *a))
            && ports
                .iter()
                .all(|p| t.iter().any(|t| t.sport == *p || t.dport == *p))
    }))
}

/// CPU time (user + system) of thread `tid` of this process, in ms; 0 when unknown.
/// /proc reports it in clock ticks of USER_HZ, 100 per second on Linux.
fn thread_cpu_ms(tid: u64) -> u64 {
    if tid == 0 {
        return 0;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return 0;
    };
    // Fields after the command (which may contain spaces) in parentheses.
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command.
    (tick(11) + tick(12)) * 10
}

/// The engine process as Prometheus's process collector shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ProcessStats {
    start_time_s: f64,
    cpu_s: f64,
    rss_bytes: u64,
}

/// Reads /proc/self/stat and /proc/self/status (both world-readable, so still
/// readable once the engine has switched to its user and is not dumpable;
/// auxv and fd are not, and listing fd would take a system call the control
/// thread's seccomp filter refuses). The start time is read once.
fn process_stats() -> Option<ProcessStats> {
    static START: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();
    // Clock ticks (USER_HZ) are 100 per second on Linux.
    let ticks = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Field n of stat (1-based; the command, field 2, is cut off with what precedes it).
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let start_time_s = (*START.get_or_init(|| {
        let btime: u64 = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())?;
        Some(btime as f64 + field(22)? as f64 / ticks)
    }))?;
    // Resident memory in kB (stat has it in pages, and the page size would need sysconf).
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kb: u64 = status.lines().find_map(|l| {
        l.strip_prefix("VmRSS:")?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })?;
    Some(ProcessStats {
        start_time_s,
        cpu_s: (field(14)? + field(15)?) as f64 / ticks,
        rss_bytes: rss_kb * 1024,
    })
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::context::counters::LocalCounters;
    use crate::context::tables::{Interfaces, PortInfo};
    use crate::control::config::PortMode;
    use crate::control::front::FrontCounters;
    use crate::l2::bridge::{Bridge, Switch, VlanMode};
    use crate::lb::{parse_backend, DownPolicy, LbShared, Mode, Scheduler, ServiceConfig};
    use crate::mac_table::MacKey;
    use crate::nat::{NatConfig, NatShared, Role};

    fn port(i: u16, name: &str, v4: &str, mode: PortMode) -> PortInfo {
        PortInfo {
            index: i,
            name: name.into(),
            interface: format!("mem{i}"),
            mac: [0x02, 0, 0, 0, 0, i as u8 + 1],
            mtu: 1500,
            mode,
            v4: vec![(v4.parse().unwrap(), 24)],
            v6: vec![],
        }
    }

    /// A control thread over three ports (two routed, one switched), two
    /// workers, a NAT, connection tracking, a TCP endpoint, a load balancer
    /// and a bridge, with some traffic counted; no sockets, no BPF.
    fn rig() -> Control {
        rig_with(true)
    }

    /// [`rig`], with or without connection tracking.
    fn rig_with(conntrack: bool) -> Control {
        let ifs = Interfaces::new(vec![
            port(0, "lan", "198.18.1.1", PortMode::Router),
            port(1, "wan", "198.19.1.1", PortMode::Router),
            port(2, "sw0", "198.18.9.1", PortMode::Router),
        ]);
        let mut rt = RouteTable::new();
        for line in [
            "198.18.1.0/24 dev lan",
            "198.19.1.0/24 dev wan",
            "198.19.7.0/24 via 198.19.1.2",
            "2001:2:0:9::/64 via 2001:2:0:2::2",
        ] {
            rt.stage_add(routes_file::parse_line(line).unwrap().unwrap())
                .unwrap();
        }
        rt.publish();
        let routes = Routes::resolve(rt.reader().snapshot().clone(), &ifs);
        let nat = NatShared::new(
            NatConfig {
                pool: vec![Ipv4Addr::new(198, 19, 1, 1)],
                ..Default::default()
            },
            vec![Role::Inside, Role::Outside, Role::Inside],
            2,
        );
        nat.gauges[1].sessions.store(3, Ordering::Relaxed);
        nat.gauges[1].mappings.store(2, Ordering::Relaxed);
        let tcp = crate::tcp::endpoint::TcpShared::new(Vec::new(), Default::default(), 2);
        tcp.gauges[0].conns.store(5, Ordering::Relaxed);
        tcp.gauges[0].established.store(2, Ordering::Relaxed);
        tcp.gauges[0].half_open.store(1, Ordering::Relaxed);
        tcp.gauges[0].time_wait.store(1, Ordering::Relaxed);
        tcp.gauges[0].accepted.store(9, Ordering::Relaxed);
        let mut down = parse_backend("198.19.2.12:80").unwrap();
        down.up = false;
        let svc = ServiceConfig {
            name: "web \"front\"".into(),
            proto: crate::conntrack::rewrite::PROTO_TCP,
            vip: crate::conntrack::Ep::new(u32::from(Ipv4Addr::new(198, 19, 1, 100)), 80),
            scheduler: Scheduler::RoundRobin,
            mode: Mode::Dnat,
            snat: 0,
            down_policy: DownPolicy::Keep,
            backends: vec![parse_backend("198.19.2.11:80").unwrap(), down],
            timeouts: Default::default(),
            health: None,
            announce: true,
        };
        let lb = LbShared::new(&[svc], 2);
        lb.set_announced(u32::from(Ipv4Addr::new(198, 19, 1, 100)), true);
        let bridge = Bridge::new("br0", &[(2, VlanMode::Access(1))], 300_000, 1024);
        bridge.table.load().insert_static(
            MacKey {
                vlan: 1,
                mac: [0x02, 9, 9, 9, 9, 9],
            },
            0,
        );
        let l2 = Switch {
            bridges: vec![bridge],
            ports: vec![None, None, None],
        };
        let ct = crate::filter::conn::CtShared::new(
            crate::filter::config::ConntrackConfig::default(),
            2,
        );
        ct.gauges[1].entries.store(5, Ordering::Relaxed);
        ct.gauges[0].packets[3].store(7, Ordering::Relaxed);
        ct.gauges[0].evicted.store(2, Ordering::Relaxed);
        let mut tables = Tables::new(ifs, routes, crate::neighbor::NeighborMap::default())
            .with_nat(nat)
            .with_lb(lb)
            .with_l2(l2);
        if conntrack {
            tables = tables.with_ct(ct);
        }
        let mut tables = tables;
        tables.tcp = Some(Arc::new(tcp));
        let workers: Vec<Arc<SharedCounters>> = (0..2)
            .map(|_| Arc::new(SharedCounters::default()))
            .collect();
        let mut local = LocalCounters::default();
        local.rx(0, 100);
        local.rx(0, 100);
        local.tx(1, 2, 200);
        local.drop(Drop::Ip4NoRoute);
        local.stage(Stage::Ip4Input, 2);
        local.loops = 10;
        local.idle_loops = 4;
        local.publish(&workers[0]);
        workers[0].frames[0].store(1000, Ordering::Relaxed);
        let (_etx, erx) = crossbeam::channel::bounded(1);
        let (ptx, _prx) = crossbeam::channel::bounded(1);
        let mut ctl = Control::new(Arc::new(tables), rt, workers, erx, ptx);
        for (ip, state_ok) in [
            ("198.18.1.2", true),
            ("198.18.1.3", true),
            ("198.18.1.4", false),
        ] {
            let key = NeighborKey {
                port: 0,
                ip: ip.parse::<IpAddr>().unwrap(),
            };
            if state_ok {
                ctl.neigh.learn(key, [0x02, 1, 1, 1, 1, 1], 0, true);
            } else {
                ctl.neigh.incomplete(key, 0);
            }
        }
        let front = Arc::new(FrontCounters::default());
        front.accepted.store(4, Ordering::Relaxed);
        ctl.front = Some(front);
        ctl.unsolicited_ignored = 1;
        ctl
    }

    #[test]
    fn process_stats_read_proc() {
        let p = process_stats().unwrap();
        assert!(p.rss_bytes > 1 << 20 && p.cpu_s >= 0.0, "{p:?}");
        assert_eq!(process_stats().unwrap().start_time_s, p.start_time_s);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            p.start_time_s <= now + 1.0 && p.start_time_s > now - 86_400.0 * 365.0,
            "{p:?}"
        );
    }

    /// `ctl stats` reads these rows by scope and name (`control::cli`), and
    /// clients of the JSON protocol may too: their scopes, names and order stay.
    #[test]
    fn ctl_rows_keep_their_scopes_names_and_order() {
        let ctl = rig();
        let rows: Vec<(String, String, u64)> = ctl
            .counters()
            .into_iter()
            .map(|c| (c.scope, c.name, c.value))
            .collect();
        let mut want: Vec<(String, String)> = Vec::new();
        let mut push = |s: &str, n: &str| want.push((s.to_string(), n.to_string()));
        for p in ["lan", "wan", "sw0"] {
            for n in ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes"] {
                push(&format!("port {p}"), n);
            }
            for (n, _) in crate::xsk::XdpStatistics::default().fields() {
                push(&format!("xsk {p}"), n);
            }
        }
        for w in 0..2 {
            let s = format!("worker {w}");
            for n in [
                "loops",
                "idle_loops",
                "sleeps",
                "cpu_ms",
                "frames_free",
                "frames_rx",
                "frames_held",
                "frames_tx",
                "ledger_errors",
            ] {
                push(&s, n);
            }
            for st in Stage::ALL {
                push(&s, &format!("stage {}", st.name()));
            }
            push(&s, "busy_ns");
        }
        push("neighbor", "unsolicited_answers_ignored");
        push("neighbor", "kernel_frames_read");
        push("neighbor", "kernel_frames_malformed");
        for w in 0..2 {
            push(&format!("nat worker {w}"), "sessions");
            push(&format!("nat worker {w}"), "mappings");
        }
        for w in 0..2 {
            for n in [
                "entries",
                "new",
                "established",
                "related",
                "invalid",
                "created",
                "expired",
                "evicted",
                "table_full",
            ] {
                push(&format!("conntrack worker {w}"), n);
            }
        }
        for w in 0..2 {
            for n in [
                "conns",
                "established",
                "half_open",
                "time_wait",
                "accepted",
                "connected",
                "closed",
                "reset",
                "timed_out",
                "refused",
                "bytes_in",
                "bytes_out",
                "retransmits",
                "timeouts",
                "fast_retransmits",
                "tlp_probes",
                "tlp_recoveries",
                "spurious_undos",
                "paws_drops",
                "rcv_buffer_grows",
                "lost_retransmits",
            ] {
                push(&format!("tcp worker {w}"), n);
            }
        }
        for d in Drop::ALL {
            push(&format!("drop {}", d.stage()), d.name());
        }
        for n in [
            "accepted",
            "refused_busy",
            "refused_peer",
            "request_deadline",
            "request_oversized",
            "request_malformed",
            "slow_reader",
        ] {
            push("ctl front", n);
        }
        let got: Vec<(String, String)> = rows
            .iter()
            .map(|(s, n, _)| (s.clone(), n.clone()))
            .collect();
        assert_eq!(got, want);
        let value = |s: &str, n: &str| rows.iter().find(|r| r.0 == s && r.1 == n).map(|r| r.2);
        assert_eq!(value("port lan", "rx_packets"), Some(2));
        assert_eq!(value("port wan", "tx_bytes"), Some(200));
        assert_eq!(value("worker 0", "idle_loops"), Some(4));
        assert_eq!(value("worker 0", "frames_free"), Some(1000));
        assert_eq!(value("worker 0", "stage ip4-input"), Some(2));
        assert_eq!(value("drop ip4-forward", "ip4-no-route"), Some(1));
        assert_eq!(value("nat worker 1", "sessions"), Some(3));
        assert_eq!(value("conntrack worker 0", "invalid"), Some(7));
        assert_eq!(value("conntrack worker 1", "entries"), Some(5));
        assert_eq!(value("tcp worker 0", "accepted"), Some(9));
        assert_eq!(value("ctl front", "accepted"), Some(4));
        assert_eq!(value("neighbor", "unsolicited_answers_ignored"), Some(1));
    }

    /// `ctl --json stats` reads every row's scope into labels: a scope added
    /// to the walk without a rule in `records::stats` fails here.
    #[test]
    fn every_ctl_row_has_its_json_labels() {
        let ctl = rig();
        let shown = ctl.stats_show();
        let recs: Vec<records::StatRecord> = shown.records.collect();
        assert_eq!(recs.len(), ctl.counters().len());
        for r in &recs {
            assert!(r.is_known(), "{r:?}");
            let labelled = match r.group.as_ref() {
                "port" | "xsk" | "xdp" => r.port.is_some(),
                "worker" | "nat" | "conntrack" | "tcp" => r.worker.is_some(),
                "stage" => r.worker.is_some() && r.stage.is_some(),
                "drop" => r.stage.is_some() && r.reason.is_some(),
                _ => true,
            };
            assert!(labelled, "{r:?}");
        }
        let find = |g: &str, name: &str, f: &dyn Fn(&records::StatRecord) -> bool| {
            recs.iter()
                .find(|r| r.group == g && r.name == name && f(r))
                .map(|r| r.value)
        };
        assert_eq!(
            find("port", "rx_packets", &|r| r.port.as_deref() == Some("lan")),
            Some(2)
        );
        assert_eq!(
            find("stage", "packets", &|r| r.worker == Some(0)
                && r.stage.as_deref() == Some("ip4-input")),
            Some(2)
        );
        assert_eq!(
            find("drop", "packets", &|r| r.reason.as_deref()
                == Some("ip4-no-route")),
            Some(1)
        );
        assert_eq!(find("nat", "sessions", &|r| r.worker == Some(1)), Some(3));
        assert!(
            matches!(shown.summary, Summary::Stats(ref s) if s.uptime_ns > 0 && s.time_unix_ms > 1_700_000_000_000)
        );
    }

    /// The text of every show command comes from its records, and their JSON
    /// reads back into the same records.
    #[test]
    fn shows_give_text_from_the_records_they_send_as_json() {
        let mut ctl = rig();
        fn text<R: std::fmt::Display + 'static>(s: Shown<R>) -> Vec<Response> {
            let mut out = Vec::new();
            s.text(&mut |r| {
                out.push(r);
                Ok(())
            })
            .unwrap();
            out
        }
        /// The records, after a check that they read back from their JSON.
        fn round_trip<R: Record + PartialEq + std::fmt::Debug + Clone>(s: Shown<R>) -> Vec<R> {
            let recs: Vec<R> = s.records.collect();
            let wire = serde_json::to_string(&R::wrap(recs.clone())).unwrap();
            assert_eq!(
                serde_json::from_str::<records::Records>(&wire).unwrap(),
                R::wrap(recs.clone())
            );
            recs
        }
        let routes = round_trip(ctl.route_show());
        assert_eq!(routes.len(), 4);
        assert_eq!(
            routes[3].prefix.to_string(),
            "2001:2:0:9::/64",
            "IPv6 after IPv4, by prefix"
        );
        let t = text(ctl.route_show());
        let Response::Table { rows, .. } = &t[0] else {
            panic!("{t:?}")
        };
        assert!(
            rows.contains(&"198.19.7.0/24 via 198.19.1.2 metric 0".to_string()),
            "{rows:?}"
        );
        let arp = round_trip(ctl.arp_show());
        assert_eq!(
            arp[0].to_string(),
            "198.18.1.2 dev lan lladdr 02:01:01:01:01:01 REACHABLE age 0.000s"
        );
        assert_eq!(round_trip(ctl.mac_show()).len(), 1);
        assert_eq!(
            text(ctl.mac_show()).last(),
            Some(&Response::Done {
                message: "1 entries".into()
            })
        );
        assert_eq!(round_trip(ctl.lb_show())[0].backends.len(), 2);
        let t = text(ctl.lb_show());
        let Response::Table { rows, .. } = &t[0] else {
            panic!("{t:?}")
        };
        assert_eq!(
            rows.len(),
            4,
            "a service, its two backends, its announced VIP: {rows:?}"
        );
        assert_eq!(rows[3], "  vip 198.19.1.100 announced");
        assert_eq!(
            rows[2],
            "  backend 198.19.2.12:80 weight 1 down conns 0 active 0 bytes 0"
        );
        assert!(round_trip(ctl.filter_show()).is_empty());
        let t = text(ctl.filter_show());
        let Response::Table { rows, .. } = &t[0] else {
            panic!("{t:?}")
        };
        assert_eq!(
            rows[rows.len() - 2],
            "      default Accept, per-port []; hits 0"
        );
        assert_eq!(
            rows.last().unwrap(),
            "      ct state hits: new 0 established 0 related 0 invalid 7; 5 connections tracked"
        );
        let Summary::FilterShow(f) = ctl.filter_show().summary else {
            panic!()
        };
        assert_eq!(f.conntrack.map(|c| (c.invalid, c.tracked)), Some((7, 5)));
        let trace = ctl.trace_show(Some(true));
        assert!(matches!(
            trace.summary,
            Summary::Trace(records::TraceSummary {
                enabled: true,
                packets: 0
            })
        ));
        assert_eq!(
            text(trace),
            [
                Response::Table {
                    header: "trace".into(),
                    rows: vec![]
                },
                Response::Done {
                    message: "trace is on".into()
                }
            ]
        );
        // No load balancer: the text is the message alone, the JSON an empty list.
        let ifs = (*ctl.tables.ifs).clone();
        let routes = Routes::resolve(ctl.rt.reader().snapshot().clone(), &ifs);
        ctl.tables = Arc::new(Tables::new(
            ifs,
            routes,
            crate::neighbor::NeighborMap::default(),
        ));
        assert!(round_trip(ctl.lb_show()).is_empty());
        assert_eq!(
            text(ctl.lb_show()),
            [Response::Done {
                message: "no load-balancer service is configured".into()
            }]
        );
    }

    #[test]
    fn metrics_show_every_table_and_read_back() {
        use crate::control::metrics::tests::{lint, value};
        let ctl = rig();
        let m = ctl.metrics();
        let text = metrics::render(&m);
        let p = lint(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(p.len(), m.len());
        let v = |name: &str, labels: &[(&str, &str)]| {
            value(&p, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
        };
        assert_eq!(
            v("pktengine_port_rx_packets_total", &[("port", "lan")]),
            2.0
        );
        assert_eq!(
            v("pktengine_port_rx_bytes_total", &[("port", "lan")]),
            200.0
        );
        assert_eq!(
            v("pktengine_port_tx_bytes_total", &[("port", "wan")]),
            200.0
        );
        assert_eq!(v("pktengine_routes", &[("family", "ipv4")]), 3.0);
        assert_eq!(v("pktengine_routes", &[("family", "ipv6")]), 1.0);
        assert_eq!(v("pktengine_neighbors", &[("state", "reachable")]), 2.0);
        assert_eq!(v("pktengine_neighbors", &[("state", "incomplete")]), 1.0);
        assert_eq!(v("pktengine_neighbors", &[("state", "permanent")]), 0.0);
        assert_eq!(v("pktengine_mac_entries", &[("bridge", "br0")]), 1.0);
        assert_eq!(
            v("pktengine_mac_entries_limit", &[("bridge", "br0")]),
            1024.0
        );
        assert_eq!(v("pktengine_nat_sessions", &[("worker", "1")]), 3.0);
        assert_eq!(v("pktengine_nat_mappings", &[("worker", "1")]), 2.0);
        assert_eq!(v("pktengine_nat_sessions", &[("worker", "0")]), 0.0);
        assert!(v("pktengine_nat_sessions_limit", &[("worker", "0")]) >= 1.0);
        for (state, n) in [
            ("established", 2.0),
            ("half_open", 1.0),
            ("time_wait", 1.0),
            ("other", 1.0),
        ] {
            assert_eq!(
                v(
                    "pktengine_tcp_connections",
                    &[("worker", "0"), ("state", state)]
                ),
                n,
                "{state}"
            );
        }
        assert_eq!(
            v(
                "pktengine_tcp_opened_total",
                &[("worker", "0"), ("how", "accepted")]
            ),
            9.0
        );
        assert_eq!(v("pktengine_conntrack_entries", &[("worker", "1")]), 5.0);
        assert_eq!(
            v(
                "pktengine_conntrack_packets_total",
                &[("worker", "0"), ("state", "invalid")]
            ),
            7.0
        );
        assert_eq!(
            v(
                "pktengine_conntrack_removed_total",
                &[("worker", "0"), ("reason", "evicted")]
            ),
            2.0
        );
        assert_eq!(
            v("pktengine_conntrack_entries_limit", &[("worker", "0")]),
            262_144.0
        );
        let svc = "web \"front\"";
        assert_eq!(
            v(
                "pktengine_lb_backends",
                &[("service", svc), ("state", "up")]
            ),
            1.0
        );
        assert_eq!(
            v(
                "pktengine_lb_backends",
                &[("service", svc), ("state", "down")]
            ),
            1.0
        );
        assert_eq!(
            v(
                "pktengine_lb_backend_up",
                &[("service", svc), ("backend", "198.19.2.11:80")]
            ),
            1.0
        );
        assert_eq!(
            v(
                "pktengine_lb_backend_up",
                &[("service", svc), ("backend", "198.19.2.12:80")]
            ),
            0.0
        );
        assert_eq!(
            v(
                "pktengine_drops_total",
                &[
                    ("worker", "0"),
                    ("stage", "ip4-forward"),
                    ("reason", "ip4-no-route")
                ]
            ),
            1.0
        );
        assert_eq!(
            v(
                "pktengine_drops_total",
                &[
                    ("worker", "1"),
                    ("stage", "ip4-forward"),
                    ("reason", "ip4-no-route")
                ]
            ),
            0.0
        );
        assert_eq!(
            v(
                "pktengine_stage_packets_total",
                &[("worker", "0"), ("stage", "ip4-input")]
            ),
            2.0
        );
        assert_eq!(
            v(
                "pktengine_umem_frames",
                &[("worker", "0"), ("place", "free")]
            ),
            1000.0
        );
        assert_eq!(v("pktengine_worker_loops_total", &[("worker", "0")]), 10.0);
        assert_eq!(
            v("pktengine_worker_idle_loops_total", &[("worker", "0")]),
            4.0
        );
        assert_eq!(
            v("pktengine_worker_busy_seconds_total", &[("worker", "0")]),
            0.0
        );
        assert_eq!(v("pktengine_ctl_connections_total", &[]), 4.0);
        assert_eq!(v("pktengine_ctl_errors_total", &[("reason", "busy")]), 0.0);
        assert_eq!(v("pktengine_neighbor_unsolicited_ignored_total", &[]), 1.0);
        assert_eq!(
            v(
                "pktengine_build_info",
                &[("version", env!("CARGO_PKG_VERSION"))]
            ),
            1.0
        );
        assert!(v("process_resident_memory_bytes", &[]) > 1e6);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = v("process_start_time_seconds", &[]);
        assert!(
            started <= now + 1.0 && started > now - 86_400.0 * 365.0,
            "{started} vs {now}"
        );
        // Every family is there but those of the XDP programs and the route
        // mirror this rig has not (the sockets' XDP_STATISTICS come from the
        // workers, zero here).
        assert_eq!(
            v("pktengine_xsk_rx_ring_full_total", &[("port", "wan")]),
            0.0
        );
        for d in metrics::FAMILIES {
            let absent = d.name.starts_with("pktengine_xdp_")
                || d.name.starts_with("pktengine_route_mirror_");
            assert_eq!(m.get(d.name).is_none(), absent, "{}", d.name);
        }
        // Drops: every reason for every worker, so rate() has a series from the start.
        assert_eq!(
            m.get("pktengine_drops_total").unwrap().samples.len(),
            Drop::ALL.len() * 2
        );
    }

    #[test]
    fn ct_rules_need_the_connection_table() {
        let answer = |c: &mut Control, req: Request| {
            let mut out = Vec::new();
            c.answer(req, &mut |r| {
                out.push(r);
                Ok(())
            })
            .unwrap();
            out
        };
        let add = || Request::FilterAdd {
            rule: "ct state established,related accept".into(),
            at: None,
        };
        let mut c = rig_with(false);
        let out = answer(&mut c, add());
        assert!(
            matches!(&out[0], Response::Error { message } if message.contains("connection tracking")),
            "{out:?}"
        );
        assert!(c.filter_rules.is_empty());
        let mut c = rig();
        let out = answer(&mut c, add());
        assert!(matches!(&out[0], Response::Done { .. }), "{out:?}");
        assert!(c.tables.filter.load().is_stateful());
        let out = answer(&mut c, Request::FilterShow);
        let Response::Table { rows, .. } = &out[0] else {
            panic!("{out:?}")
        };
        assert!(
            rows.iter()
                .any(|r| r.contains("ct state hits: new 0 established 0")),
            "{rows:?}"
        );
    }
}
