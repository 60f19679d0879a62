//! `ctl … show` and `ctl nat flush`, answered by the workers a slice at a
//! time.
//!
//! A worker's table (NAT sessions, TCP connections) lives in a
//! [`crate::slab::Slab`] only that worker touches. To list it, the control
//! thread starts a [`Collector`]; each worker, once per loop iteration (never
//! per packet), visits the next [`SLICE`] slots of its slab from a cursor (a
//! slot index), copies the live entries into a buffer the control thread
//! lent it, and hands the buffer back as one chunk. A slice of 256 full
//! slots costs 6.3 µs in a release build (about 24 ns a session, most of it
//! the session's mapping, a cache miss; `dump_slice/*` in
//! `bench/benches/nat.rs`; 1,024 slots would be 23 µs, several bursts' worth),
//! so a dump of the largest table (262,144 sessions: 1,024 slices) never
//! holds a burst back longer than that; the whole table used to be copied in
//! one iteration (6.1 ms in a release build, 40-100 ms in a debug one). With
//! nothing asked the step costs 1.9 ns (an atomic load).
//!
//! What a dump guarantees (as `conntrack -L`, it is not a snapshot):
//! - the walk visits every slot index from 0 up to the slab's high-water mark
//!   (read again at each slice, so slots first used during the dump are
//!   visited too) exactly once, and an entry never moves between slots;
//! - so an entry alive from the start of the dump to its end appears exactly
//!   once, and no entry appears twice;
//! - an entry created during the dump appears if its slot is still ahead of
//!   the cursor, one removed during the dump appears if its slot was visited
//!   before; a flow removed and created again during the dump is two entries
//!   and may appear twice (its old and its new slot).
//!
//! The hand-over is lock-free and allocation-free on the worker: two bounded
//! queues per worker ([`crossbeam::queue::ArrayQueue`]), buffers one way and
//! chunks the other. The control thread provides the buffers ([`IN_FLIGHT`]
//! per worker, each with room for a whole slice, kept in the slot between
//! dumps), so the worker never allocates; when none is free it waits (the
//! control thread is behind) and continues at the next iteration.
//!
//! The control side never waits for a worker: [`Collector::poll`] returns
//! what has arrived (at most [`POLL_ROWS`] rows, one `ctl` table message),
//! names a worker that sent nothing for [`SILENCE`], and says when every
//! worker is finished. [`collect`] is a blocking loop over it.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;

/// Slots a worker visits per loop iteration; so also the most rows in a chunk.
pub const SLICE: usize = 256;
/// Buffers per worker: how many slices it may run ahead of the control
/// thread (16 × 256 rows of about 100 bytes: 400 KB per worker and table
/// kind, allocated at the first dump).
pub const IN_FLIGHT: usize = 16;
/// Rows one [`Collector::poll`] returns at most (a multiple of [`SLICE`]):
/// one `ctl` table message of about 0.6 MB of text.
pub const POLL_ROWS: usize = 16 * SLICE;
/// A worker that sends nothing for this long is named and left out.
pub const SILENCE: Duration = Duration::from_secs(1);

/// What a request asks of the worker's slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Copy the entries.
    #[default]
    Show,
    /// Remove the dynamic entries (`ctl nat flush`); the chunks carry no rows.
    Flush,
}

/// One slice a worker hands over.
#[derive(Debug)]
struct Chunk<T> {
    /// The request it answers.
    req: u64,
    rows: Vec<T>,
    /// The walk reached the high-water mark: the worker's answer is complete.
    last: bool,
}

/// One worker's slot.
#[derive(Debug)]
pub struct DumpSlot<T> {
    /// The latest request: its number (from 1) shifted left by one, the low
    /// bit set for [`Mode::Flush`]. Written by the control thread only.
    asked: AtomicU64,
    /// The highest request number the control thread gave up on.
    cancelled: AtomicU64,
    /// Worker → control: filled slices.
    full: ArrayQueue<Chunk<T>>,
    /// Control → worker: empty buffers with room for [`SLICE`] rows.
    free: ArrayQueue<Vec<T>>,
}

impl<T> Default for DumpSlot<T> {
    fn default() -> Self {
        DumpSlot {
            asked: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            full: ArrayQueue::new(IN_FLIGHT),
            free: ArrayQueue::new(IN_FLIGHT),
        }
    }
}

impl<T> DumpSlot<T> {
    /// Hands a buffer back to the worker (dropped if enough are there).
    fn recycle(&self, mut rows: Vec<T>) {
        rows.clear();
        let _ = self.free.push(rows);
    }
}

/// Every worker's slot of one table kind, and whether a dump is under way.
#[derive(Debug)]
pub struct Dumps<T> {
    slots: Box<[DumpSlot<T>]>,
    /// A [`Collector`] holds these slots (one dump at a time).
    busy: AtomicBool,
}

impl<T> Dumps<T> {
    /// Slots for `workers` workers.
    pub fn new(workers: u16) -> Dumps<T> {
        Dumps {
            slots: (0..workers).map(|_| DumpSlot::default()).collect(),
            busy: AtomicBool::new(false),
        }
    }

    /// Worker `w`'s slot.
    #[inline]
    pub fn slot(&self, w: u16) -> Option<&DumpSlot<T>> {
        self.slots.get(usize::from(w))
    }

    pub fn workers(&self) -> usize {
        self.slots.len()
    }
}

// ---- the worker's side -------------------------------------------------------------------------

/// The slots one loop iteration visits, and what to do with their entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    pub mode: Mode,
    /// Slot indices, at most [`SLICE`] of them, below the high-water mark.
    pub range: Range<usize>,
    /// The range ends at the high-water mark: the last slice of this dump.
    pub last: bool,
}

/// What one [`Cursor::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// No dump under way.
    Idle,
    /// A dump is under way but no buffer is free: the control thread is behind.
    Waiting,
    /// A dump is under way, but the worker is behind on traffic and took a
    /// slice less than a millisecond ago.
    Deferred,
    /// One slice handed over; `last`: the dump is complete.
    Sent { last: bool },
}

/// A worker's place in the dump it is answering.
#[derive(Debug, Default)]
pub struct Cursor {
    /// The last `asked` value seen.
    seen: u64,
    req: u64,
    mode: Mode,
    /// The next slot index to visit.
    next: usize,
    active: bool,
    /// When the last slice was taken (ms).
    last_ms: u64,
}

impl Cursor {
    /// A dump is under way (the worker should not sleep long).
    #[inline]
    pub fn busy(&self) -> bool {
        self.active
    }

    /// The worker's part, once per loop iteration: picks up a new request
    /// (which starts the walk again at slot 0) and, when a buffer is free,
    /// lets `slice` visit the next slots below `hwm` (the slab's high-water
    /// mark now) and fill the buffer (at most one row per slot: it has room
    /// for [`SLICE`], so no allocation). Costs an atomic load when idle.
    ///
    /// Traffic comes first: when the worker is `behind` (this loop's RX
    /// burst was full: frames wait in the ring), it takes at most one slice
    /// per millisecond (`now_ms`), so a saturated worker gives a dump well
    /// under 1% of its time (a dump of 262,144 sessions then takes about a
    /// second) instead of a slice per loop.
    #[inline]
    pub fn step<T>(
        &mut self,
        slot: &DumpSlot<T>,
        hwm: usize,
        behind: bool,
        now_ms: u64,
        slice: impl FnOnce(&Slice, &mut Vec<T>),
    ) -> Step {
        let asked = slot.asked.load(Ordering::Acquire);
        if asked != self.seen {
            self.seen = asked;
            self.req = asked >> 1;
            self.mode = if asked & 1 == 1 {
                Mode::Flush
            } else {
                Mode::Show
            };
            self.next = 0;
            self.active = true;
        }
        if !self.active {
            return Step::Idle;
        }
        if slot.cancelled.load(Ordering::Acquire) >= self.req {
            self.active = false;
            return Step::Idle;
        }
        if behind && now_ms <= self.last_ms {
            return Step::Deferred;
        }
        // Only this worker pushes chunks: room now is room at the push.
        if slot.full.is_full() {
            return Step::Waiting;
        }
        let Some(mut rows) = slot.free.pop() else {
            return Step::Waiting;
        };
        rows.clear();
        let end = self.next.saturating_add(SLICE).min(hwm).max(self.next);
        let s = Slice {
            mode: self.mode,
            range: self.next..end,
            last: end >= hwm,
        };
        slice(&s, &mut rows);
        debug_assert!(
            rows.len() <= SLICE,
            "a slice yields at most one row per slot"
        );
        self.next = end;
        self.active = !s.last;
        self.last_ms = now_ms;
        if let Err(c) = slot.full.push(Chunk {
            req: self.req,
            rows,
            last: s.last,
        }) {
            // Unreachable (checked above); keep the buffer rather than drop it here.
            let _ = slot.free.push(c.rows);
            self.next = s.range.start;
            self.active = true;
            return Step::Waiting;
        }
        Step::Sent { last: s.last }
    }
}

// ---- the control thread's side -----------------------------------------------------------------

/// Another [`Collector`] holds the slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("another dump of this table is under way")
    }
}

/// What one [`Collector::poll`] brought.
#[derive(Debug)]
pub struct Progress<T> {
    /// Rows that arrived, each with its worker, at most [`POLL_ROWS`]; a
    /// worker's rows in slot order.
    pub rows: Vec<(u16, T)>,
    /// Workers that sent nothing for the collector's timeout: named once,
    /// their rows (from then on) left out.
    pub silent: Vec<u16>,
    /// Every worker finished or was named silent: nothing more comes.
    pub done: bool,
}

#[derive(Debug, Clone, Copy)]
enum Answer {
    /// Still walking; last heard from at this time.
    Open(Instant),
    Complete,
    Silent,
}

/// The control thread's view of one dump over every worker. Dropping it
/// before it is done cancels the workers' walks.
#[derive(Debug)]
pub struct Collector<T> {
    dumps: Arc<Dumps<T>>,
    /// Per worker: the request number it answers.
    req: Vec<u64>,
    answers: Vec<Answer>,
    timeout: Duration,
    max_rows: usize,
    /// The worker the next poll starts with (round robin).
    first: usize,
    released: bool,
}

impl<T> Collector<T> {
    /// Asks every worker for a dump in `mode`, lending each the buffers it
    /// needs (allocated once, then kept in the slot). Busy while another
    /// collector on the same slots is not done.
    pub fn start(dumps: &Arc<Dumps<T>>, mode: Mode) -> Result<Collector<T>, Busy> {
        Self::start_at(dumps, mode, Instant::now())
    }

    /// [`Collector::start`] with the time it starts.
    pub fn start_at(dumps: &Arc<Dumps<T>>, mode: Mode, now: Instant) -> Result<Collector<T>, Busy> {
        if dumps.busy.swap(true, Ordering::AcqRel) {
            return Err(Busy);
        }
        let mut req = Vec::with_capacity(dumps.slots.len());
        for slot in dumps.slots.iter() {
            // Chunks of a dump given up earlier: their buffers come back.
            while let Some(c) = slot.full.pop() {
                slot.recycle(c.rows);
            }
            // The worker may hold one buffer at this moment: then one too
            // many is made, and dropped when it finds the queue full.
            while slot.free.len() + slot.full.len() < IN_FLIGHT {
                if slot.free.push(Vec::with_capacity(SLICE)).is_err() {
                    break;
                }
            }
            // One collector at a time (busy): nobody else writes `asked`.
            let n = (slot.asked.load(Ordering::Acquire) >> 1) + 1;
            slot.asked
                .store(n << 1 | u64::from(mode == Mode::Flush), Ordering::Release);
            req.push(n);
        }
        let answers = vec![Answer::Open(now); req.len()];
        Ok(Collector {
            dumps: dumps.clone(),
            req,
            answers,
            timeout: SILENCE,
            max_rows: POLL_ROWS,
            first: 0,
            released: false,
        })
    }

    /// How long a worker may send nothing before it is named silent (default [`SILENCE`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Rows per poll at most (rounded down to whole slices, at least one).
    pub fn with_max_rows(mut self, rows: usize) -> Self {
        self.max_rows = (rows / SLICE).max(1) * SLICE;
        self
    }

    /// Every worker finished or was named silent.
    pub fn is_done(&self) -> bool {
        self.answers.iter().all(|a| !matches!(a, Answer::Open(_)))
    }

    /// When a worker still walking would be named silent if nothing comes
    /// (for a caller that sleeps between polls); None when done.
    pub fn deadline(&self) -> Option<Instant> {
        self.answers
            .iter()
            .filter_map(|a| match a {
                Answer::Open(t) => Some(*t + self.timeout),
                _ => None,
            })
            .min()
    }

    /// Takes what the workers have sent, without waiting.
    pub fn poll(&mut self) -> Progress<T> {
        self.poll_at(Instant::now())
    }

    /// [`Collector::poll`] at time `now`.
    pub fn poll_at(&mut self, now: Instant) -> Progress<T> {
        let n = self.req.len();
        let mut p = Progress {
            rows: Vec::new(),
            silent: Vec::new(),
            done: false,
        };
        // One chunk per worker per round, so every worker's queue drains
        // and none waits long for buffers while another is read.
        'rounds: loop {
            let mut any = false;
            for k in 0..n {
                let w = (self.first + k) % n;
                if !matches!(self.answers[w], Answer::Open(_)) {
                    continue;
                }
                if p.rows.len() + SLICE > self.max_rows {
                    self.first = w;
                    break 'rounds;
                }
                let slot = &self.dumps.slots[w];
                let Some(mut c) = slot.full.pop() else {
                    continue;
                };
                any = true;
                if c.req == self.req[w] {
                    p.rows.extend(c.rows.drain(..).map(|r| (w as u16, r)));
                    self.answers[w] = if c.last {
                        Answer::Complete
                    } else {
                        Answer::Open(now)
                    };
                }
                slot.recycle(c.rows);
            }
            if !any {
                break;
            }
        }
        for (w, a) in self.answers.iter_mut().enumerate() {
            let slot = &self.dumps.slots[w];
            // A worker whose chunks wait here is not silent: this poll was full.
            if let Answer::Open(t) = *a {
                if slot.full.is_empty() && now.saturating_duration_since(t) >= self.timeout {
                    *a = Answer::Silent;
                    slot.cancelled.fetch_max(self.req[w], Ordering::AcqRel);
                    p.silent.push(w as u16);
                }
            }
        }
        p.done = self.is_done();
        if p.done {
            self.release();
        }
        p
    }

    fn release(&mut self) {
        if !self.released {
            self.released = true;
            self.dumps.busy.store(false, Ordering::Release);
        }
    }
}

impl<T> Drop for Collector<T> {
    fn drop(&mut self) {
        for (w, a) in self.answers.iter().enumerate() {
            if matches!(a, Answer::Open(_)) {
                self.dumps.slots[w]
                    .cancelled
                    .fetch_max(self.req[w], Ordering::AcqRel);
            }
        }
        self.release();
    }
}

/// Blocking: runs a dump in `mode` to its end, formatting each row with
/// `f(worker, row)` and handing the lines to `sink` as they arrive, at most
/// [`POLL_ROWS`] per call; a worker that stopped answering gets a line
/// saying so. Sleeps between polls (for a control thread that has nothing
/// else to do meanwhile; one that has uses [`Collector`]). Returns the
/// number of rows the workers sent.
pub fn collect<T, E>(
    dumps: &Arc<Dumps<T>>,
    mode: Mode,
    timeout: Duration,
    mut f: impl FnMut(u16, &T) -> String,
    mut sink: impl FnMut(Vec<String>) -> Result<(), E>,
) -> Result<usize, E> {
    let mut c = match Collector::start(dumps, mode) {
        Ok(c) => c.with_timeout(timeout),
        Err(b) => return sink(vec![b.to_string()]).map(|()| 0),
    };
    let mut rows = 0;
    loop {
        let p = c.poll();
        rows += p.rows.len();
        let mut lines: Vec<String> = p.rows.iter().map(|(w, r)| f(*w, r)).collect();
        lines.extend(
            p.silent
                .iter()
                .map(|w| format!("worker {w} did not answer")),
        );
        let idle = lines.is_empty();
        if !idle {
            sink(lines)?;
        }
        if p.done {
            return Ok(rows);
        }
        if idle {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// A stand-in for a worker's slab: slot i holds `Some(key)` or nothing.
    #[derive(Debug, Default)]
    struct Table {
        slots: Vec<Option<u32>>,
        cursor: Cursor,
    }

    impl Table {
        fn with(n: u32) -> Table {
            Table {
                slots: (0..n).map(Some).collect(),
                cursor: Cursor::default(),
            }
        }

        /// One loop iteration's housekeeping; the rows the slice produced.
        fn service(&mut self, slot: &DumpSlot<u32>) -> (Step, Option<Slice>) {
            let hwm = self.slots.len();
            let slots = &mut self.slots;
            let mut seen = None;
            let step = self.cursor.step(slot, hwm, false, 0, |s, rows| {
                for i in s.range.clone() {
                    match s.mode {
                        Mode::Show => rows.extend(slots[i]),
                        Mode::Flush => slots[i] = None,
                    }
                }
                seen = Some(s.clone());
            });
            (step, seen)
        }
    }

    fn dumps(n: u16) -> Arc<Dumps<u32>> {
        Arc::new(Dumps::new(n))
    }

    #[test]
    fn a_slice_is_at_most_slice_slots_per_iteration_and_the_dump_is_complete() {
        const { assert!(SLICE <= 1024, "the bound the engine promises") };
        let d = dumps(1);
        let mut t = Table::with(5000);
        let mut c = Collector::start(&d, Mode::Show).unwrap();
        let mut got = Vec::new();
        let mut iterations = 0;
        loop {
            let (step, s) = t.service(d.slot(0).unwrap());
            iterations += 1;
            if let Some(s) = &s {
                assert!(s.range.len() <= SLICE, "{s:?}");
            }
            let p = c.poll();
            assert!(p.rows.len() <= POLL_ROWS);
            got.extend(p.rows.into_iter().map(|(_, r)| r));
            if p.done {
                assert_eq!(step, Step::Sent { last: true });
                break;
            }
        }
        assert_eq!(
            iterations,
            5000usize.div_ceil(SLICE),
            "5000 slots: full slices and a last short one"
        );
        assert_eq!(got, (0..5000).collect::<Vec<_>>());
        // Idle afterwards: nothing more, and a new collector may start.
        assert_eq!(t.service(d.slot(0).unwrap()).0, Step::Idle);
        assert!(Collector::start(&d, Mode::Show).is_ok());
    }

    #[test]
    fn the_worker_waits_when_the_control_thread_is_behind() {
        let d = dumps(1);
        let mut t = Table::with(100 * SLICE as u32);
        let mut c = Collector::start(&d, Mode::Show).unwrap();
        for _ in 0..IN_FLIGHT {
            assert_eq!(t.service(d.slot(0).unwrap()).0, Step::Sent { last: false });
        }
        assert_eq!(
            t.service(d.slot(0).unwrap()).0,
            Step::Waiting,
            "all buffers lent out"
        );
        // One poll takes at most POLL_ROWS rows and gives their buffers back.
        let p = c.poll();
        assert_eq!(p.rows.len(), POLL_ROWS);
        assert!(!p.done && p.silent.is_empty());
        assert_eq!(t.service(d.slot(0).unwrap()).0, Step::Sent { last: false });
        let mut rows = p.rows.len();
        while !c.is_done() {
            t.service(d.slot(0).unwrap());
            rows += c.poll().rows.len();
        }
        assert_eq!(rows, 100 * SLICE);
    }

    #[test]
    fn the_worker_fills_only_buffers_the_control_thread_lent() {
        // Three dumps of 50 slices: the same IN_FLIGHT buffers every time,
        // each with room for a slice (no allocation on the worker).
        let d = dumps(1);
        let slot = d.slot(0).unwrap();
        let mut cursor = Cursor::default();
        let mut buffers = BTreeSet::new();
        for _ in 0..3 {
            let mut c = Collector::start(&d, Mode::Show).unwrap();
            while !c.is_done() {
                cursor.step(slot, 50 * SLICE, false, 0, |s, rows| {
                    assert!(rows.is_empty() && rows.capacity() >= SLICE);
                    buffers.insert(rows.as_ptr() as usize);
                    rows.extend(s.range.clone().map(|i| i as u32));
                });
                c.poll();
            }
        }
        assert_eq!(buffers.len(), IN_FLIGHT);
    }

    /// Entries created and removed while the dump runs: no entry twice, every
    /// entry alive from start to end once, and nothing that never existed.
    #[test]
    fn a_table_changing_during_the_dump_gives_no_duplicates_and_every_stable_entry() {
        let d = dumps(1);
        let n = 40 * SLICE as u32;
        let mut t = Table::with(n);
        let mut next_key = n;
        let mut free: Vec<usize> = Vec::new();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move |m: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % m as u64) as usize
        };
        // Every key that lived at some point during the dump, and those touched.
        let mut ever: BTreeSet<u32> = (0..n).collect();
        let mut touched: BTreeSet<u32> = BTreeSet::new();
        let mut c = Collector::start(&d, Mode::Show).unwrap();
        let mut got = Vec::new();
        while !c.is_done() {
            // Between slices: remove some entries, insert others (a freed slot
            // first, as the slab does, else a new one past the high-water mark).
            for _ in 0..SLICE / 8 {
                let i = rand(t.slots.len());
                if let Some(k) = t.slots[i].take() {
                    touched.insert(k);
                    free.push(i);
                }
                let k = next_key;
                next_key += 1;
                ever.insert(k);
                touched.insert(k);
                match free.pop() {
                    Some(i) => t.slots[i] = Some(k),
                    None => t.slots.push(Some(k)),
                }
            }
            t.service(d.slot(0).unwrap());
            got.extend(c.poll().rows.into_iter().map(|(_, r)| r));
        }
        let mut count: BTreeMap<u32, usize> = BTreeMap::new();
        for k in &got {
            *count.entry(*k).or_default() += 1;
        }
        assert!(count.values().all(|&c| c == 1), "an entry appeared twice");
        assert!(
            count.keys().all(|k| ever.contains(k)),
            "an entry that never existed"
        );
        let stable: BTreeSet<u32> = (0..n).filter(|k| !touched.contains(k)).collect();
        assert!(
            stable.len() > (n as usize) / 2,
            "the test removes too much: {}",
            stable.len()
        );
        for k in &stable {
            assert!(
                count.contains_key(k),
                "entry {k}, alive throughout, is missing"
            );
        }
    }

    #[test]
    fn a_worker_behind_on_traffic_takes_one_slice_per_millisecond() {
        let d = dumps(1);
        let slot = d.slot(0).unwrap();
        let mut cursor = Cursor::default();
        let _c = Collector::start(&d, Mode::Show).unwrap();
        let mut step = |behind, ms| {
            cursor.step(slot, 10 * SLICE, behind, ms, |s, rows| {
                rows.extend(s.range.clone().map(|i| i as u32))
            })
        };
        assert_eq!(step(true, 5), Step::Sent { last: false });
        assert_eq!(step(true, 5), Step::Deferred, "behind: not twice in one ms");
        assert_eq!(
            step(false, 5),
            Step::Sent { last: false },
            "not behind: every loop"
        );
        assert_eq!(step(true, 5), Step::Deferred);
        assert_eq!(step(true, 6), Step::Sent { last: false }, "the next ms");
    }

    #[test]
    fn a_silent_worker_is_named_and_the_others_answer() {
        let d = dumps(3);
        let mut w0 = Table::with(3000);
        let mut w2 = Table::with(10);
        let t0 = Instant::now();
        let mut c = Collector::start_at(&d, Mode::Show, t0)
            .unwrap()
            .with_timeout(Duration::from_millis(100));
        let mut rows: BTreeMap<u16, usize> = BTreeMap::new();
        let mut silent = Vec::new();
        let mut now = t0;
        while !c.is_done() {
            w0.service(d.slot(0).unwrap());
            w2.service(d.slot(2).unwrap());
            now += Duration::from_millis(30);
            let p = c.poll_at(now);
            for (w, _) in p.rows {
                *rows.entry(w).or_default() += 1;
            }
            silent.extend(p.silent);
        }
        assert_eq!(silent, vec![1], "worker 1 never answers");
        assert_eq!(rows, BTreeMap::from([(0, 3000), (2, 10)]));
        assert!(
            now < t0 + Duration::from_millis(400),
            "named after the timeout, not later"
        );
        // Worker 1 wakes up late: the cancelled dump costs it nothing.
        let mut w1 = Table::with(10);
        assert_eq!(w1.service(d.slot(1).unwrap()).0, Step::Idle);
    }

    #[test]
    fn a_worker_keeps_answering_as_long_as_it_makes_progress() {
        // Slow, but never silent for the timeout: not named.
        let d = dumps(1);
        let mut t = Table::with(10 * SLICE as u32);
        let t0 = Instant::now();
        let mut c = Collector::start_at(&d, Mode::Show, t0)
            .unwrap()
            .with_timeout(Duration::from_millis(100));
        let mut now = t0;
        let mut rows = 0;
        while !c.is_done() {
            t.service(d.slot(0).unwrap());
            now += Duration::from_millis(90);
            let p = c.poll_at(now);
            assert!(p.silent.is_empty());
            rows += p.rows.len();
        }
        assert_eq!(rows, 10 * SLICE);
    }

    #[test]
    fn one_dump_at_a_time_and_a_dropped_collector_stops_the_walk() {
        let d = dumps(1);
        let mut t = Table::with(10 * SLICE as u32);
        let c = Collector::start(&d, Mode::Show).unwrap();
        assert_eq!(Collector::start(&d, Mode::Show).err(), Some(Busy));
        assert_eq!(t.service(d.slot(0).unwrap()).0, Step::Sent { last: false });
        drop(c);
        assert_eq!(t.service(d.slot(0).unwrap()).0, Step::Idle, "cancelled");
        // The next dump starts from slot 0 and gets none of the stale chunk.
        let mut c = Collector::start(&d, Mode::Show).unwrap();
        let mut got = Vec::new();
        while !c.is_done() {
            t.service(d.slot(0).unwrap());
            got.extend(c.poll().rows.into_iter().map(|(_, r)| r));
        }
        assert_eq!(got, (0..10 * SLICE as u32).collect::<Vec<_>>());
    }

    #[test]
    fn a_new_request_restarts_a_walk_under_way() {
        let d = dumps(1);
        let mut t = Table::with(4 * SLICE as u32);
        let c = Collector::start(&d, Mode::Show).unwrap();
        t.service(d.slot(0).unwrap());
        t.service(d.slot(0).unwrap());
        // The control thread gave up (dropped) and asks again before the worker noticed.
        drop(c);
        let mut c = Collector::start(&d, Mode::Flush).unwrap();
        let (_, s) = t.service(d.slot(0).unwrap());
        assert_eq!(s.map(|s| (s.mode, s.range)), Some((Mode::Flush, 0..SLICE)));
        while !c.is_done() {
            t.service(d.slot(0).unwrap());
            assert!(c.poll().rows.is_empty(), "a flush lists nothing");
        }
        assert!(t.slots.iter().all(Option::is_none));
    }

    #[test]
    fn an_empty_table_answers_at_once() {
        let d = dumps(2);
        let mut t = Table::default();
        let mut c = Collector::start(&d, Mode::Show).unwrap();
        assert_eq!(
            t.service(d.slot(0).unwrap()).1.map(|s| (s.range, s.last)),
            Some((0..0, true))
        );
        t.cursor = Cursor::default();
        t.service(d.slot(1).unwrap());
        let p = c.poll();
        assert!(p.done && p.rows.is_empty() && p.silent.is_empty());
    }

    #[test]
    fn collect_blocks_until_the_workers_answer_and_names_a_silent_one() {
        let d = dumps(2);
        let d2 = d.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let t = std::thread::spawn(move || {
            let mut table = Table::with(9000);
            while !stop2.load(Ordering::Relaxed) {
                table.service(d2.slot(0).unwrap());
                std::thread::sleep(Duration::from_micros(50));
            }
        });
        let mut chunks = Vec::new();
        let n = collect(
            &d,
            Mode::Show,
            Duration::from_secs(1),
            |w, r| format!("{w}:{r}"),
            |lines| {
                chunks.push(lines);
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        assert_eq!(n, 9000);
        assert!(chunks.iter().all(|c| c.len() <= POLL_ROWS));
        let lines: Vec<String> = chunks.concat();
        assert_eq!(lines.len(), 9001);
        assert_eq!(lines[0], "0:0");
        assert_eq!(lines[8999], "0:8999");
        assert_eq!(lines[9000], "worker 1 did not answer");
    }
}
