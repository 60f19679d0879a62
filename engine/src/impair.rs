//! A seeded impairment stage for tests: drops, duplicates and reorders
//! frames with configured probabilities, per worker and reproducibly.
//!
//! ```toml
//! [impair]
//! drop = 0.01        # probability a frame is dropped
//! duplicate = 0.0    # probability a frame is sent twice
//! reorder = 0.01     # probability a frame is held back and released after the next frame(s)
//! seed = 42
//! ports = ["p0"]     # optional: only frames received on / sent to these ports (default all)
//! direction = "both" # rx | tx | both
//! ```
//!
//! Where it sits: on the RX side between a socket's receive burst and the
//! pipeline (`dataplane::pipeline::process_burst`, passed in as `next`: the
//! pipeline sees the impaired burst); on the
//! TX side between a port's TX queue and the socket's `send` in
//! `Worker::flush_tx` (the wire sees the impaired queue). Frames handed over
//! by another worker are not impaired again.
//!
//! Each frame costs one draw of a splitmix64 generator seeded from `seed`,
//! the worker id and the direction, compared with three cumulative
//! thresholds: the fates are exclusive (drop, duplicate, reorder, pass), so
//! their rates are the configured probabilities and the same seed gives the
//! same decisions for the same frame sequence on the same worker.
//!
//! State is bounded: each (port, direction) lane holds at most [`HOLD`]
//! frames for reorder. They go out right after the next frame that passes on
//! that lane (so that frame overtakes them), or, if none follows, at the first
//! loop iteration [`MAX_HOLD_NS`] after the oldest was held (the worker does
//! not sleep longer than that while frames are held). A reorder draw on a full
//! lane lets the frame pass (and release the others). At worker exit held
//! frames are freed and counted as drops (`impair-drop`), so the frame ledger
//! stays exact. A duplicate is a copy into a fresh frame of the worker's UMEM;
//! without a free frame the copy is skipped and counted (`no-frame`).
//!
//! Nothing here allocates per packet: the lanes and the output array are
//! allocated when the worker is built. Without `[impair]` the worker pays one
//! `Option` check per burst.

use serde::Deserialize;

use crate::context::counters::{Drop, LocalCounters, Stage};
use crate::context::tables::Interfaces;
use crate::context::{Ctx, TX_QUEUE};
use crate::validate::Spanned;
use crate::xsk::{Desc, Umem, BURST};

/// Frames one lane holds back at most.
pub const HOLD: usize = 4;
/// A held frame is released at the first loop iteration this long after it
/// was held, if no frame came to overtake it.
pub const MAX_HOLD_NS: u64 = 1_000_000;
/// The most frames one call produces: every input frame and its duplicate,
/// plus the frames held from before (inputs are at most a TX queue).
const OUT: usize = 2 * TX_QUEUE + HOLD;

/// Which frames are impaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Received frames, before the pipeline.
    Rx,
    /// Frames about to be transmitted.
    Tx,
    #[default]
    Both,
}

impl Direction {
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "rx" => Some(Direction::Rx),
            "tx" => Some(Direction::Tx),
            "both" => Some(Direction::Both),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Rx => "rx",
            Direction::Tx => "tx",
            Direction::Both => "both",
        }
    }

    fn rx(self) -> bool {
        self != Direction::Tx
    }

    fn tx(self) -> bool {
        self != Direction::Rx
    }
}

/// The validated `[impair]` section.
#[derive(Debug, Clone, Default)]
pub struct ImpairConfig {
    /// Probability a frame is dropped.
    pub drop: f64,
    /// Probability a frame is sent twice.
    pub duplicate: f64,
    /// Probability a frame is held back and released after the next one(s).
    pub reorder: f64,
    pub seed: u64,
    /// Port names (or interfaces); empty: every port.
    pub ports: Vec<String>,
    pub direction: Direction,
}

// Probabilities are validated (no NaN): compare them bit for bit, so the
// configuration stays `Eq` (the reload compares configurations).
impl PartialEq for ImpairConfig {
    fn eq(&self, o: &Self) -> bool {
        self.drop.to_bits() == o.drop.to_bits()
            && self.duplicate.to_bits() == o.duplicate.to_bits()
            && self.reorder.to_bits() == o.reorder.to_bits()
            && self.seed == o.seed
            && self.ports == o.ports
            && self.direction == o.direction
    }
}

impl Eq for ImpairConfig {}

impl std::fmt::Display for ImpairConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "drop {} duplicate {} reorder {} seed {} direction {} ports {}",
            self.drop,
            self.duplicate,
            self.reorder,
            self.seed,
            self.direction.as_str(),
            if self.ports.is_empty() {
                "all".to_string()
            } else {
                self.ports.join(",")
            }
        )
    }
}

/// splitmix64 (Steele, Lea, Flood 2014): one add and a mix per draw.
#[derive(Debug, Clone)]
pub struct Rng(u64);

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// The stream of worker `worker` in direction `stream` for `seed`.
    pub fn new(seed: u64, worker: u16, stream: u8) -> Rng {
        let salt = ((u64::from(worker) << 8) | u64::from(stream)).wrapping_add(1);
        Rng(mix(seed ^ mix(salt.wrapping_mul(GOLDEN))))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }
}

/// What happens to one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Pass,
    Drop,
    Duplicate,
    Reorder,
}

/// The generator and the fates' cumulative thresholds on a 32-bit draw.
#[derive(Debug, Clone)]
pub struct Dice {
    rng: Rng,
    drop: u64,
    dup: u64,
    reorder: u64,
}

impl Dice {
    pub fn new(cfg: &ImpairConfig, worker: u16, stream: u8) -> Dice {
        const ONE: f64 = (1u64 << 32) as f64;
        let t = |p: f64| (p.clamp(0.0, 1.0) * ONE).round() as u64;
        let drop = t(cfg.drop);
        let dup = (drop + t(cfg.duplicate)).min(1 << 32);
        let reorder = (dup + t(cfg.reorder)).min(1 << 32);
        Dice {
            rng: Rng::new(cfg.seed, worker, stream),
            drop,
            dup,
            reorder,
        }
    }

    /// One draw per frame, whatever the outcome.
    #[inline]
    pub fn roll(&mut self) -> Fate {
        let r = self.rng.next_u64() >> 32;
        if r < self.drop {
            Fate::Drop
        } else if r < self.dup {
            Fate::Duplicate
        } else if r < self.reorder {
            Fate::Reorder
        } else {
            Fate::Pass
        }
    }
}

/// Frames held back on one (port, direction).
#[derive(Debug, Clone, Copy, Default)]
struct Lane {
    held: [Desc; HOLD],
    n: usize,
    /// When the oldest held frame was held.
    since_ns: u64,
}

impl Lane {
    /// Appends the held frames to `out` (room checked by the caller); returns how many.
    fn release(&mut self, out: &mut [Desc]) -> usize {
        let n = self.n;
        out[..n].copy_from_slice(&self.held[..n]);
        self.n = 0;
        n
    }

    fn due(&self, now_ns: u64) -> bool {
        self.n > 0 && now_ns.saturating_sub(self.since_ns) >= MAX_HOLD_NS
    }
}

/// What a lane does with frames it drops or duplicates.
trait Frames {
    /// Drops a frame (counted, freed).
    fn drop(&mut self, d: Desc);
    /// A copy of the frame in a fresh frame; None (counted) if there is none.
    fn copy(&mut self, d: &Desc) -> Option<Desc>;
}

/// Copies and reorders counted during one call.
#[derive(Debug, Default)]
struct Tally {
    dup: u64,
    reorder: u64,
}

impl Tally {
    fn apply(&self, c: &mut LocalCounters) {
        if self.dup > 0 {
            c.stage(Stage::ImpairDup, self.dup);
        }
        if self.reorder > 0 {
            c.stage(Stage::ImpairReorder, self.reorder);
        }
    }
}

/// Runs `input` through one lane into `out`; returns how many frames `out`
/// holds. Every input frame ends in exactly one place: `out`, the lane, or
/// dropped through `frames`.
fn run_lane(
    dice: &mut Dice,
    lane: &mut Lane,
    input: &[Desc],
    out: &mut [Desc],
    now_ns: u64,
    frames: &mut impl Frames,
    tally: &mut Tally,
) -> usize {
    let mut k = 0;
    for &d in input {
        let fate = dice.roll();
        if k + 2 + HOLD > out.len() {
            // Only if a caller passed more than it may: never lose a frame.
            frames.drop(d);
            continue;
        }
        match fate {
            Fate::Drop => frames.drop(d),
            Fate::Reorder if lane.n < HOLD => {
                if lane.n == 0 {
                    lane.since_ns = now_ns;
                }
                lane.held[lane.n] = d;
                lane.n += 1;
                tally.reorder += 1;
            }
            _ => {
                out[k] = d;
                k += 1;
                if fate == Fate::Duplicate {
                    if let Some(c) = frames.copy(&d) {
                        out[k] = c;
                        k += 1;
                        tally.dup += 1;
                    }
                }
                // The held frames follow the frame that overtook them.
                k += lane.release(&mut out[k..]);
            }
        }
    }
    if lane.due(now_ns) && k + HOLD <= out.len() {
        k += lane.release(&mut out[k..]);
    }
    k
}

/// A copy of `d` in a fresh frame, at the same offset in its frame (the
/// headroom in front stays the same).
fn copy_frame(umem: &mut Umem, d: &Desc) -> Option<Desc> {
    let fresh = umem.alloc()?;
    let c = Desc {
        addr: umem.frame_base(fresh.addr) + umem.room_before(d),
        len: d.len,
        options: d.options,
    };
    match umem.pair_mut(d, &c) {
        Some((src, dst)) if dst.len() >= src.len() => {
            dst[..src.len()].copy_from_slice(src);
            Some(c)
        }
        _ => {
            umem.free(fresh);
            None
        }
    }
}

/// Received frames: drops are counted as received (the port saw them) and
/// traced like any drop.
struct RxFrames<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    port: u16,
}

impl Frames for RxFrames<'_, '_> {
    fn drop(&mut self, d: Desc) {
        self.ctx
            .st
            .counters
            .rx(usize::from(self.port), u64::from(d.len));
        self.ctx.drop(self.port, d, Drop::Impaired);
    }

    fn copy(&mut self, d: &Desc) -> Option<Desc> {
        let c = copy_frame(self.ctx.umem, d);
        if c.is_none() {
            self.ctx.st.counters.drop(Drop::NoFrame);
        }
        c
    }
}

struct TxFrames<'a> {
    umem: &'a mut Umem,
    counters: &'a mut LocalCounters,
}

impl Frames for TxFrames<'_> {
    fn drop(&mut self, d: Desc) {
        self.counters.drop(Drop::Impaired);
        self.umem.free(d);
    }

    fn copy(&mut self, d: &Desc) -> Option<Desc> {
        let c = copy_frame(self.umem, d);
        if c.is_none() {
            self.counters.drop(Drop::NoFrame);
        }
        c
    }
}

/// One worker's impairment: its dice, lanes and output array.
#[derive(Debug)]
pub struct ImpairWorker {
    rx_dice: Dice,
    tx_dice: Dice,
    /// Per port: impaired on receive / on transmit.
    rx_on: Vec<bool>,
    tx_on: Vec<bool>,
    rx_lanes: Vec<Lane>,
    tx_lanes: Vec<Lane>,
    out: Box<[Desc; OUT]>,
    /// Frames held in all lanes.
    held: usize,
}

impl ImpairWorker {
    pub fn new(cfg: &ImpairConfig, ifs: &Interfaces, worker: u16) -> ImpairWorker {
        let n = ifs.ports.len();
        let mut on = vec![cfg.ports.is_empty(); n];
        for name in &cfg.ports {
            if let Some(p) = ifs.by_name(name) {
                if let Some(o) = on.get_mut(usize::from(p.index)) {
                    *o = true;
                }
            }
        }
        let only = |yes: bool| on.iter().map(|&o| o && yes).collect::<Vec<bool>>();
        ImpairWorker {
            rx_dice: Dice::new(cfg, worker, 0),
            tx_dice: Dice::new(cfg, worker, 1),
            rx_on: only(cfg.direction.rx()),
            tx_on: only(cfg.direction.tx()),
            rx_lanes: vec![Lane::default(); n],
            tx_lanes: vec![Lane::default(); n],
            out: Box::new([Desc::default(); OUT]),
            held: 0,
        }
    }

    /// Whether frames are held back (the worker then sleeps at most [`MAX_HOLD_NS`]).
    pub fn holding(&self) -> bool {
        self.held > 0
    }

    /// Impairs a received burst from `port`, then hands what is left to
    /// `next` (the pipeline), at most a burst at a time.
    pub fn rx(
        &mut self,
        ctx: &mut Ctx,
        port: u16,
        descs: &[Desc],
        next: &mut impl FnMut(&mut Ctx, u16, &[Desc]),
    ) {
        let p = usize::from(port);
        let Some(lane) = self.rx_lanes.get_mut(p).filter(|_| self.rx_on[p]) else {
            next(ctx, port, descs);
            return;
        };
        let before = lane.n;
        let mut tally = Tally::default();
        let now = ctx.now_ns;
        // For the trace of frames dropped here.
        ctx.rx_port = port;
        let k = run_lane(
            &mut self.rx_dice,
            lane,
            descs,
            &mut self.out[..],
            now,
            &mut RxFrames { ctx, port },
            &mut tally,
        );
        self.held = self.held + lane.n - before;
        tally.apply(&mut ctx.st.counters);
        for chunk in self.out[..k].chunks(BURST) {
            next(ctx, port, chunk);
        }
    }

    /// Received frames held long enough with nothing to overtake them go
    /// through the pipeline now (once per loop iteration).
    pub fn rx_due(&mut self, ctx: &mut Ctx, next: &mut impl FnMut(&mut Ctx, u16, &[Desc])) {
        if self.held == 0 {
            return;
        }
        for (p, lane) in self.rx_lanes.iter_mut().enumerate() {
            if lane.due(ctx.now_ns) {
                let n = lane.release(&mut self.out[..]);
                self.held -= n;
                next(ctx, p as u16, &self.out[..n]);
            }
        }
    }

    /// Impairs the frames queued for `port` (possibly none: held frames may be
    /// due) and returns the frames to send.
    pub fn tx<'a>(
        &'a mut self,
        port: usize,
        q: &'a [Desc],
        now_ns: u64,
        umem: &mut Umem,
        counters: &mut LocalCounters,
    ) -> &'a [Desc] {
        let Some(lane) = self.tx_lanes.get_mut(port).filter(|_| self.tx_on[port]) else {
            return q;
        };
        if q.is_empty() && !lane.due(now_ns) {
            return q;
        }
        let before = lane.n;
        let mut tally = Tally::default();
        let k = run_lane(
            &mut self.tx_dice,
            lane,
            q,
            &mut self.out[..],
            now_ns,
            &mut TxFrames {
                umem,
                counters: &mut *counters,
            },
            &mut tally,
        );
        self.held = self.held + lane.n - before;
        tally.apply(counters);
        &self.out[..k]
    }

    /// Frees every held frame (worker exit), counted as impairment drops.
    /// Received ones are counted as received too, like every impairment drop.
    pub fn free_held(&mut self, umem: &mut Umem, counters: &mut LocalCounters) {
        for (p, lane) in self.rx_lanes.iter_mut().enumerate() {
            for &d in &lane.held[..lane.n] {
                counters.rx(p, u64::from(d.len));
            }
        }
        for lane in self.rx_lanes.iter_mut().chain(self.tx_lanes.iter_mut()) {
            for &d in &lane.held[..lane.n] {
                counters.drop(Drop::Impaired);
                umem.free(d);
            }
            lane.n = 0;
        }
        self.held = 0;
    }
}

// ---- `[impair]` as written, and its validation ------------------------------

/// `[impair]`: the seeded drop/duplicate/reorder stage (tests only).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImpair {
    /// Probabilities in [0, 1]; their sum at most 1.
    #[serde(default)]
    pub drop: Option<Spanned<f64>>,
    #[serde(default)]
    pub duplicate: Option<Spanned<f64>>,
    #[serde(default)]
    pub reorder: Option<Spanned<f64>>,
    #[serde(default)]
    pub seed: u64,
    /// Port names (or interfaces); absent or empty: every port.
    #[serde(default)]
    pub ports: Vec<Spanned<String>>,
    /// `rx`, `tx` or `both` (default).
    #[serde(default)]
    pub direction: Option<Spanned<String>>,
}

/// Validates `[impair]`: probabilities in [0, 1] summing to at most 1,
/// existing ports, a direction word.
pub fn validate(
    ck: &mut crate::validate::Checker<'_>,
    raw: Option<Spanned<RawImpair>>,
    ports: &[crate::validate::PortName<'_>],
) -> Option<ImpairConfig> {
    let raw = raw?;
    let span = raw.span();
    let raw = raw.into_inner();
    let mut prob = |v: &Option<Spanned<f64>>, what: &str| match v {
        None => 0.0,
        Some(p) if (0.0..=1.0).contains(p.get_ref()) => *p.get_ref(),
        Some(p) => {
            ck.at(
                p.span(),
                format!(
                    "[impair] {what} {}: expected a probability between 0 and 1",
                    p.get_ref()
                ),
            );
            0.0
        }
    };
    let (drop, duplicate, reorder) = (
        prob(&raw.drop, "drop"),
        prob(&raw.duplicate, "duplicate"),
        prob(&raw.reorder, "reorder"),
    );
    let sum = drop + duplicate + reorder;
    // A little slack for decimal fractions that do not add up exactly in binary.
    if sum > 1.0 + 1e-9 {
        ck.at(span.clone(), format!("[impair] drop + duplicate + reorder is {sum}: at most 1 (each frame meets one fate)"));
    }
    let mut names: Vec<String> = Vec::new();
    for p in &raw.ports {
        let n = p.get_ref();
        if crate::validate::port_index(ports, n).is_none() {
            ck.at(p.span(), format!("[impair] ports: no port `{n}`"));
        } else if names.contains(n) {
            ck.at(p.span(), format!("[impair] ports: `{n}` is listed twice"));
        }
        names.push(n.clone());
    }
    let direction = match &raw.direction {
        None => Direction::Both,
        Some(d) => Direction::parse(d.get_ref()).unwrap_or_else(|| {
            ck.at(
                d.span(),
                format!(
                    "[impair] direction `{}`: expected rx, tx or both",
                    d.get_ref()
                ),
            );
            Direction::Both
        }),
    };
    Some(ImpairConfig {
        drop,
        duplicate,
        reorder,
        seed: raw.seed,
        ports: names,
        direction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(drop: f64, duplicate: f64, reorder: f64, seed: u64) -> ImpairConfig {
        ImpairConfig {
            drop,
            duplicate,
            reorder,
            seed,
            ..ImpairConfig::default()
        }
    }

    /// Frames are numbers in `addr`; copies get bit 40 set.
    #[derive(Default)]
    struct Fake {
        dropped: Vec<u64>,
        copies: u64,
        no_copy: bool,
    }

    impl Frames for Fake {
        fn drop(&mut self, d: Desc) {
            self.dropped.push(d.addr);
        }
        fn copy(&mut self, d: &Desc) -> Option<Desc> {
            if self.no_copy {
                return None;
            }
            self.copies += 1;
            Some(Desc {
                addr: d.addr | 1 << 40,
                ..*d
            })
        }
    }

    fn desc(i: u64) -> Desc {
        Desc {
            addr: i,
            len: 64,
            options: 0,
        }
    }

    /// Runs `total` frames through one lane in bursts of `burst`; returns the
    /// output, the fake, the tally and the lane.
    fn run(c: &ImpairConfig, total: u64, burst: u64) -> (Vec<u64>, Fake, Tally, Lane) {
        let mut dice = Dice::new(c, 0, 0);
        let mut lane = Lane::default();
        let mut f = Fake::default();
        let mut t = Tally::default();
        let mut out = vec![Desc::default(); OUT];
        let mut seen = Vec::new();
        let mut i = 0;
        while i < total {
            let input: Vec<Desc> = (i..(i + burst).min(total)).map(desc).collect();
            i += input.len() as u64;
            let k = run_lane(&mut dice, &mut lane, &input, &mut out, 0, &mut f, &mut t);
            seen.extend(out[..k].iter().map(|d| d.addr));
        }
        (seen, f, t, lane)
    }

    #[test]
    fn same_seed_same_decisions() {
        let c = cfg(0.1, 0.1, 0.1, 42);
        let fates = |c: &ImpairConfig, w: u16, s: u8| {
            let mut d = Dice::new(c, w, s);
            (0..10_000).map(|_| d.roll()).collect::<Vec<_>>()
        };
        assert_eq!(fates(&c, 0, 0), fates(&c, 0, 0));
        assert_eq!(fates(&c, 3, 1), fates(&c, 3, 1));
        // Other workers, directions and seeds draw other streams.
        assert_ne!(fates(&c, 0, 0), fates(&c, 1, 0));
        assert_ne!(fates(&c, 0, 0), fates(&c, 0, 1));
        assert_ne!(fates(&c, 0, 0), fates(&cfg(0.1, 0.1, 0.1, 43), 0, 0));
        // And the whole lane reproduces: output, drops and copies.
        let (a, fa, _, _) = run(&c, 5000, 64);
        let (b, fb, _, _) = run(&c, 5000, 64);
        assert_eq!(a, b);
        assert_eq!(fa.dropped, fb.dropped);
    }

    #[test]
    fn rates_match_the_probabilities() {
        const N: u64 = 100_000;
        let c = cfg(0.05, 0.03, 0.1, 7);
        let (out, f, t, lane) = run(&c, N, 64);
        let rate = |x: u64| x as f64 / N as f64;
        // Binomial standard deviations at N = 100k are under 0.001: 0.005 is over 5 sigma.
        let near = |got: f64, want: f64, what: &str| {
            assert!((got - want).abs() < 0.005, "{what}: {got} vs {want}")
        };
        near(rate(f.dropped.len() as u64), c.drop, "drop");
        near(rate(t.dup), c.duplicate, "duplicate");
        near(rate(f.copies), c.duplicate, "copies");
        // A reorder draw on a full lane passes: the rate falls short by a hair.
        near(rate(t.reorder), c.reorder, "reorder");
        // Every frame accounted for: output + dropped + still held = input + copies.
        assert_eq!(
            out.len() as u64 + f.dropped.len() as u64 + lane.n as u64,
            N + f.copies
        );
        // Reordered frames really are overtaken: count frames that leave
        // after a frame that came in later.
        let originals: Vec<u64> = out.iter().copied().filter(|a| a >> 40 == 0).collect();
        let mut max = 0;
        let mut overtaken = 0;
        for &a in &originals {
            if a < max {
                overtaken += 1;
            }
            max = max.max(a);
        }
        near(rate(overtaken), c.reorder, "overtaken");
        // Copies follow their original at once.
        for w in out.windows(2) {
            if w[1] >> 40 == 1 {
                assert_eq!(w[0], w[1] & !(1 << 40));
            }
        }
    }

    #[test]
    fn reorder_swaps_and_releases_everything() {
        // Every frame is drawn for reorder: the lane fills (HOLD frames), the
        // next passes and overtakes them all.
        let c = cfg(0.0, 0.0, 1.0, 1);
        let (out, _, t, lane) = run(&c, 10, 10);
        assert_eq!(out, vec![4, 0, 1, 2, 3, 9, 5, 6, 7, 8]);
        assert_eq!(t.reorder, 8);
        assert_eq!(lane.n, 0);
        // Held frames with nothing to follow them: out after MAX_HOLD_NS, not before.
        let mut dice = Dice::new(&c, 0, 0);
        let mut lane = Lane::default();
        let mut out = vec![Desc::default(); OUT];
        let (mut f, mut t) = (Fake::default(), Tally::default());
        assert_eq!(
            run_lane(
                &mut dice,
                &mut lane,
                &[desc(1), desc(2)],
                &mut out,
                1000,
                &mut f,
                &mut t
            ),
            0
        );
        assert_eq!(
            run_lane(
                &mut dice,
                &mut lane,
                &[],
                &mut out,
                1000 + MAX_HOLD_NS - 1,
                &mut f,
                &mut t
            ),
            0
        );
        assert_eq!(
            run_lane(
                &mut dice,
                &mut lane,
                &[],
                &mut out,
                1000 + MAX_HOLD_NS,
                &mut f,
                &mut t
            ),
            2
        );
        assert_eq!((out[0].addr, out[1].addr, lane.n), (1, 2, 0));
        // Half the frames reordered: each held one leaves right after the next passing frame.
        let (out, _, _, lane) = run(&cfg(0.0, 0.0, 0.5, 9), 1000, 64);
        assert_eq!(out.len() + lane.n, 1000);
        let mut sorted = out.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), out.len(), "no frame twice");
        assert_ne!(out, sorted, "some frames swapped");
    }

    #[test]
    fn extremes_and_missing_frames() {
        let (out, f, _, _) = run(&cfg(1.0, 0.0, 0.0, 1), 1000, 64);
        assert_eq!((out.len(), f.dropped.len()), (0, 1000));
        let (out, f, t, _) = run(&cfg(0.0, 1.0, 0.0, 1), 100, 64);
        assert_eq!((out.len(), f.copies, t.dup), (200, 100, 100));
        let (out, _, _, _) = run(&cfg(0.0, 0.0, 0.0, 1), 1000, 64);
        assert_eq!(out, (0..1000).collect::<Vec<_>>());
        // No frame for a copy: the original still goes, uncounted as a copy.
        let mut dice = Dice::new(&cfg(0.0, 1.0, 0.0, 1), 0, 0);
        let (mut lane, mut f, mut t) = (
            Lane::default(),
            Fake {
                no_copy: true,
                ..Fake::default()
            },
            Tally::default(),
        );
        let mut out = vec![Desc::default(); OUT];
        assert_eq!(
            run_lane(
                &mut dice,
                &mut lane,
                &[desc(1)],
                &mut out,
                0,
                &mut f,
                &mut t
            ),
            1
        );
        assert_eq!(t.dup, 0);
        // More input than the output can take: the excess is dropped, never lost.
        let mut dice = Dice::new(&cfg(0.0, 1.0, 0.0, 1), 0, 0);
        let input: Vec<Desc> = (0..OUT as u64).map(desc).collect();
        let mut f = Fake::default();
        let k = run_lane(&mut dice, &mut lane, &input, &mut out, 0, &mut f, &mut t);
        assert_eq!(k as u64 + f.dropped.len() as u64, OUT as u64 + f.copies);
    }

    mod worker {
        use std::net::{IpAddr, Ipv4Addr};
        use std::sync::Arc;

        use super::super::*;
        use crate::context::counters::{Drop, SharedCounters, Stage};
        use crate::context::events;
        use crate::context::tables::{PortInfo, Routes};
        use crate::control::config::{InterfaceAddress, PollMode, PortMode};
        use crate::dataplane::tables::Tables;
        use crate::dataplane::worker::{Socket, Worker, WorkerConfig};
        use crate::l3::route_table::RouteTable;
        use crate::neighbor::{NeighborKey, NeighborTable};
        use crate::runtime::setup::connected_route;
        use crate::wire::checksum;
        use crate::xsk::{MemPort, MemPortConfig, Umem, UmemConfig};

        const LAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
        const H1: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
        const H2: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 2);

        struct Rig {
            w: Worker<MemPort>,
            shared: Arc<SharedCounters>,
            _events: crossbeam::channel::Receiver<events::Event>,
        }

        fn port(i: u16, name: &str, v4: &str) -> PortInfo {
            PortInfo {
                index: i,
                name: name.into(),
                interface: format!("mem{i}"),
                mac: [0x02, 0, 0, 0, 0, i as u8 + 1],
                mtu: 1500,
                mode: PortMode::Router,
                v4: vec![(v4.parse().unwrap(), 24)],
                v6: vec![],
            }
        }

        /// lan (198.18.1.1/24) and wan (198.19.1.1/24), H2 resolved on wan.
        fn rig(imp: ImpairConfig) -> Rig {
            let ifs = Interfaces::new(vec![
                port(0, "lan", "198.18.1.1"),
                port(1, "wan", "198.19.1.1"),
            ]);
            let mut rt = RouteTable::new();
            for p in &ifs.ports {
                for &(a, l) in &p.v4 {
                    rt.stage_add(
                        connected_route(
                            &p.name,
                            &InterfaceAddress {
                                addr: IpAddr::V4(a),
                                prefix_len: l,
                            },
                        )
                        .unwrap(),
                    )
                    .unwrap();
                }
            }
            rt.publish();
            let routes = Routes::resolve(rt.reader().snapshot().clone(), &ifs);
            let mut neigh = NeighborTable::new(30_000, 120_000);
            neigh.learn(
                NeighborKey {
                    port: 1,
                    ip: IpAddr::V4(H2),
                },
                [0x02, 0x22, 0, 0, 0, 2],
                0,
                true,
            );
            neigh.learn(
                NeighborKey {
                    port: 0,
                    ip: IpAddr::V4(H1),
                },
                [0x02, 0x11, 0, 0, 0, 1],
                0,
                true,
            );
            let tables = Arc::new(Tables::new(ifs, routes, neigh.map()).with_impair(imp));
            let umem = Umem::new(UmemConfig {
                frame_size: 2048,
                frame_count: 1024,
                huge_pages: false,
                headroom: 0,
            })
            .unwrap();
            let sockets = (0..2)
                .map(|i| Socket {
                    port: i,
                    io: MemPort::new(&format!("p{i}"), &umem, MemPortConfig::default()),
                })
                .collect();
            let shared = Arc::new(SharedCounters::default());
            let (sink, events) = events::channel(1024);
            let wc = WorkerConfig {
                id: 0,
                poll: PollMode::Busy,
                idle_timeout: std::time::Duration::from_millis(1),
            };
            let mut w = Worker::new(wc, umem, sockets, tables, shared.clone(), sink);
            w.prime();
            Rig {
                w,
                shared,
                _events: events,
            }
        }

        /// A UDP datagram from H1 to H2 carrying `seq`.
        fn udp(seq: u32) -> Vec<u8> {
            let mut f = LAN_MAC.to_vec();
            f.extend_from_slice(&[0x02, 0x11, 0, 0, 0, 1, 0x08, 0x00]);
            let mut ip = vec![0x45, 0, 0, 32, 0, 0, 0, 0, 64, 17, 0, 0];
            ip.extend_from_slice(&H1.octets());
            ip.extend_from_slice(&H2.octets());
            let c = checksum::checksum(&ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
            f.extend_from_slice(&[0x04, 0x00, 0x08, 0x00, 0, 12, 0, 0]);
            f.extend_from_slice(&seq.to_be_bytes());
            f
        }

        fn seq(f: &[u8]) -> u32 {
            u32::from_be_bytes([f[42], f[43], f[44], f[45]])
        }

        impl Rig {
            fn inject(&mut self, p: usize, frame: &[u8]) {
                let (umem, socks) = self.w.split();
                assert!(socks[p].io.inject(umem, frame), "inject refused");
            }

            fn sent(&mut self, p: usize) -> Vec<u32> {
                let (umem, socks) = self.w.split();
                let mut v = Vec::new();
                socks[p].io.take_sent(umem, usize::MAX, |b| v.push(seq(b)));
                v
            }

            /// Sends `n` datagrams lan -> wan in bursts of 32; returns the sequence numbers seen on wan.
            fn stream(&mut self, n: u32) -> Vec<u32> {
                let mut got = Vec::new();
                for start in (0..n).step_by(32) {
                    for s in start..(start + 32).min(n) {
                        self.inject(0, &udp(s));
                    }
                    self.w.poll_once();
                    got.extend(self.sent(1));
                }
                // Whatever is still held leaves within MAX_HOLD_NS.
                std::thread::sleep(std::time::Duration::from_nanos(2 * MAX_HOLD_NS));
                for _ in 0..3 {
                    self.w.poll_once();
                    got.extend(self.sent(1));
                }
                got
            }

            fn drops(&self, d: Drop) -> u64 {
                self.shared.drop_count(d)
            }

            /// The ledger is exact and the worker holds no frame.
            fn ledger_exact(&mut self) {
                self.sent(0);
                self.sent(1);
                self.w.poll_once();
                let c = self.w.umem().check().unwrap();
                assert_eq!(c.held, 0, "{c}");
            }
        }

        #[test]
        fn frame_ledger_exact_through_both_directions() {
            const N: u32 = 4000;
            let mut r = rig(ImpairConfig {
                drop: 0.05,
                duplicate: 0.05,
                reorder: 0.1,
                seed: 42,
                ..ImpairConfig::default()
            });
            let got = r.stream(N);
            let dropped = r.drops(Drop::Impaired);
            let dups = r.shared.stage_count(Stage::ImpairDup);
            assert_eq!(r.drops(Drop::NoFrame), 0);
            assert_eq!(
                got.len() as u64,
                u64::from(N) - dropped + dups,
                "sent = in - impaired drops + copies"
            );
            // Both directions drew, each on about N frames (RX drops and copies cancel out):
            // about 2 * 5% dropped and duplicated, 2 * 10% held.
            let n = f64::from(N);
            assert!((dropped as f64 / n - 0.1).abs() < 0.02, "dropped {dropped}");
            assert!((dups as f64 / n - 0.1).abs() < 0.02, "dups {dups}");
            let reorders = r.shared.stage_count(Stage::ImpairReorder);
            assert!(
                (reorders as f64 / n - 0.2).abs() < 0.025,
                "reorders {reorders}"
            );
            assert!(got.windows(2).any(|w| w[1] < w[0]), "some frames overtaken");
            // The port counters see the simulated wire: rx counts impaired drops and copies.
            assert!(r.shared.port(0).rx_packets >= u64::from(N));
            r.ledger_exact();
        }

        #[test]
        fn same_seed_same_stream() {
            let c = ImpairConfig {
                drop: 0.1,
                duplicate: 0.1,
                reorder: 0.2,
                seed: 5,
                ..ImpairConfig::default()
            };
            let run = |c: ImpairConfig| {
                let mut r = rig(c);
                let mut got = r.stream(1000);
                let n = [
                    r.drops(Drop::Impaired),
                    r.shared.stage_count(Stage::ImpairDup),
                    r.shared.stage_count(Stage::ImpairReorder),
                ];
                // Which frames go and how often is fixed by the seed; where a held frame lands
                // also depends on whether MAX_HOLD_NS passed before the next frame came (timing).
                got.sort_unstable();
                (got, n)
            };
            assert_eq!(run(c.clone()), run(c.clone()));
            assert_ne!(run(c.clone()), run(ImpairConfig { seed: 6, ..c }));
        }

        #[test]
        fn only_the_listed_ports_and_direction() {
            // Drop everything received on wan: lan -> wan traffic is untouched.
            let mut r = rig(ImpairConfig {
                drop: 1.0,
                ports: vec!["wan".into()],
                direction: Direction::Rx,
                ..ImpairConfig::default()
            });
            assert_eq!(r.stream(100), (0..100).collect::<Vec<_>>());
            assert_eq!(r.drops(Drop::Impaired), 0);
            r.ledger_exact();
            // Drop everything sent on wan (by interface name).
            let mut r = rig(ImpairConfig {
                drop: 1.0,
                ports: vec!["mem1".into()],
                direction: Direction::Tx,
                ..ImpairConfig::default()
            });
            assert!(r.stream(100).is_empty());
            assert_eq!(r.drops(Drop::Impaired), 100);
            r.ledger_exact();
            // Received on lan: dropped before the pipeline, still counted as received.
            let mut r = rig(ImpairConfig {
                drop: 1.0,
                ports: vec!["lan".into()],
                direction: Direction::Rx,
                ..ImpairConfig::default()
            });
            assert!(r.stream(100).is_empty());
            assert_eq!(
                (r.drops(Drop::Impaired), r.shared.port(0).rx_packets),
                (100, 100)
            );
            assert_eq!(
                r.shared.stage_count(Stage::Classify),
                0,
                "the pipeline saw nothing"
            );
            r.ledger_exact();
        }

        #[test]
        fn held_frames_are_freed_at_exit() {
            let mut r = rig(ImpairConfig {
                reorder: 1.0,
                direction: Direction::Rx,
                ..ImpairConfig::default()
            });
            for s in 0..3 {
                r.inject(0, &udp(s));
            }
            r.w.poll_once();
            assert!(r.sent(1).is_empty(), "all three held");
            assert_eq!(r.w.umem().check().unwrap().held, 3);
            r.w.drain();
            let c = r.w.umem().check().unwrap();
            assert_eq!(c.held, 0, "{c}");
            assert_eq!(r.drops(Drop::Impaired), 3);
            assert_eq!(r.shared.port(0).rx_packets, 3, "counted as received");
        }

        #[test]
        fn duplicates_are_byte_identical_copies() {
            let mut r = rig(ImpairConfig {
                duplicate: 1.0,
                direction: Direction::Tx,
                ..ImpairConfig::default()
            });
            r.inject(0, &udp(7));
            r.w.poll_once();
            let (umem, socks) = r.w.split();
            let mut v = Vec::new();
            socks[1]
                .io
                .take_sent(umem, usize::MAX, |b| v.push(b.to_vec()));
            assert_eq!(v.len(), 2);
            assert_eq!(v[0], v[1]);
            assert_eq!(seq(&v[0]), 7);
            r.ledger_exact();
        }
    }
}
