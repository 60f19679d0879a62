//! The UMEM: one memory area cut into equal frames, shared by every socket
//! (and every port) of one worker, with the free list and the frame ledger.
//!
//! Frames are named by their offset in the area (`addr`). Every frame is in
//! exactly one place at any time, tracked by [`Ledger`]:
//!
//! | state  | where the frame is                                          |
//! |--------|-------------------------------------------------------------|
//! | `Free` | on the free list                                            |
//! | `Rx`   | given to the kernel for receive: fill ring, NIC, RX ring   |
//! | `Held` | in the worker (received, or allocated for a local packet)  |
//! | `Tx`   | given to the kernel for transmit: TX ring, wire, completion |
//!
//! The ports move frames between states in batches and report each move;
//! the ledger keeps one state byte per frame and the four counts. In debug
//! builds an impossible move (freeing a free frame, sending a frame not held,
//! a completion for a frame never sent) panics; in release builds it is
//! counted in [`FrameCounts::errors`]. [`Umem::check`] proves the counts sum
//! to the frame total and match the per-frame states.
//!
//! # Why the byte accessors are sound
//!
//! The kernel writes frames in the `Rx` state (a received packet may land
//! in any frame on the fill ring, at any time) and reads frames in the `Tx`
//! state. A `&mut [u8]` over a frame the kernel reads or writes, or a
//! `&[u8]` over one it writes, would be a data race: undefined behaviour.
//! So the safe accessors check the ledger in every build, not only in debug:
//!
//! - [`Umem::data`] (read) refuses a frame in the `Rx` state;
//! - [`Umem::data_mut`], [`Umem::buf_mut`], [`Umem::frame_mut`] and
//!   [`Umem::pair_mut`] (write) refuse any frame not `Held`.
//!
//! A refused access is a programming error (a descriptor used after it was
//! sent or freed), never the effect of wire input: the frame states change
//! only when a port moves a frame. It panics in debug builds; in release
//! builds it returns an empty slice (`None` for `pair_mut`), the same answer
//! as for a descriptor outside the UMEM, and is counted in
//! [`FrameCounts::errors`], so the worker's packet path never panics on it.
//!
//! The check relies on one invariant, kept by this module and the two ports:
//! a frame reaches the kernel only through a ledger move that succeeded
//! (`Free -> Rx` in `Umem::take_for_fill`, `Held -> Tx` in `port::queue_tx`), and
//! leaves it only when the kernel hands it back (RX ring, completion ring) or
//! no socket is bound any more ([`Umem::recover`]). Every move and every
//! access needs the `Umem` (`&mut` to move, `&` or `&mut` to access), so no
//! frame changes state while a slice of it is borrowed. Reading a `Tx` frame
//! (the worker's packet capture does, after `send`) is fine: the kernel only
//! reads it, as the UMEM is registered without TX metadata
//! (`tx_metadata_len` 0, which the kernel would write on completion). The
//! in-memory port's wire side, which plays the kernel, reads and writes
//! frames under the same borrows (`wire_read` takes `&Umem`, `wire_write`
//! `&mut Umem`), so it cannot race with the worker either.
//!
//! Cost: the state array has one byte per frame (4 KiB for 4096 frames, hot
//! in the cache), and its bounds check doubles as the "inside the UMEM" test
//! the accessors made anyway, so an access costs one byte load, a compare
//! and a never-taken branch more: about 4 instructions. The cold path is a
//! free function that sees no `Umem`, so the compiler keeps the `Umem`
//! fields in registers across a loop of accesses. The forward bench
//! (bench/benches/forward.rs, counted with cachegrind) runs 0.9% (IPv4) and
//! 2.3% (IPv6) more instructions per burst; its wall time moves less than
//! its noise.
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use memmap2::{MmapOptions, MmapRaw};

use super::ring::Desc;
use super::XskError;

/// How to build a UMEM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UmemConfig {
    /// Frame size: 2048 or 4096.
    pub frame_size: u32,
    /// Number of frames.
    pub frame_count: u32,
    /// Try 2 MiB huge pages first (falls back to normal pages).
    pub huge_pages: bool,
    /// Bytes the kernel leaves free in front of each received packet.
    pub headroom: u32,
}

impl Default for UmemConfig {
    fn default() -> Self {
        UmemConfig {
            frame_size: 2048,
            frame_count: 4096,
            huge_pages: true,
            headroom: 0,
        }
    }
}

/// Where a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameState {
    /// On the free list.
    Free = 0,
    /// Owned by the kernel for receive (fill ring, device, RX ring).
    Rx = 1,
    /// Owned by the worker.
    Held = 2,
    /// Owned by the kernel for transmit (TX ring, device, completion ring).
    Tx = 3,
}

impl fmt::Display for FrameState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrameState::Free => "free",
            FrameState::Rx => "rx",
            FrameState::Held => "held",
            FrameState::Tx => "tx",
        })
    }
}

/// How many frames are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// On the free list.
    pub free: u32,
    /// In the kernel for receive.
    pub rx: u32,
    /// In the worker.
    pub held: u32,
    /// In the kernel for transmit.
    pub tx: u32,
    /// Impossible moves seen, and byte accesses refused because the frame
    /// was not the worker's (release builds; debug builds panic instead).
    pub errors: u64,
}

impl FrameCounts {
    /// Sum over all states.
    pub fn total(&self) -> u64 {
        self.free as u64 + self.rx as u64 + self.held as u64 + self.tx as u64
    }
}

impl fmt::Display for FrameCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "frames free={} rx={} held={} tx={} errors={}",
            self.free, self.rx, self.held, self.tx, self.errors
        )
    }
}

/// Per-frame states and their counts.
#[derive(Debug)]
pub struct Ledger {
    states: Vec<FrameState>,
    counts: FrameCounts,
}

impl Ledger {
    fn new(frames: u32) -> Self {
        Ledger {
            states: vec![FrameState::Free; frames as usize],
            counts: FrameCounts {
                free: frames,
                ..FrameCounts::default()
            },
        }
    }

    fn count_mut(&mut self, s: FrameState) -> &mut u32 {
        match s {
            FrameState::Free => &mut self.counts.free,
            FrameState::Rx => &mut self.counts.rx,
            FrameState::Held => &mut self.counts.held,
            FrameState::Tx => &mut self.counts.tx,
        }
    }

    /// Moves frame `idx` from `from` to `to`. Returns false (and panics in
    /// debug builds) if the frame was not in `from`.
    #[inline]
    fn mv(&mut self, idx: usize, from: FrameState, to: FrameState) -> bool {
        let Some(state) = self.states.get_mut(idx) else {
            self.counts.errors += 1;
            debug_assert!(false, "frame index {idx} outside the UMEM");
            return false;
        };
        if *state != from {
            let found = *state;
            self.counts.errors += 1;
            debug_assert!(
                false,
                "frame {idx}: expected {from}, found {found} (moving to {to}): leak or double use"
            );
            return false;
        }
        *state = to;
        *self.count_mut(from) -= 1;
        *self.count_mut(to) += 1;
        true
    }

    /// The counts (`errors` here counts impossible moves only; see
    /// [`Umem::counts`] for the refused accesses too).
    pub fn counts(&self) -> FrameCounts {
        self.counts
    }

    /// State of frame `idx`.
    pub fn state(&self, idx: usize) -> Option<FrameState> {
        self.states.get(idx).copied()
    }
}

/// The mapped area.
pub(crate) struct Area {
    map: MmapRaw,
    huge: bool,
    /// Byte accesses refused because the frame was not the worker's: an
    /// atomic so that `data(&self)` can count; here, behind the `Arc`, so
    /// that [`Umem`] itself has no interior mutability.
    refused: AtomicU64,
}

static NEXT_UMEM_ID: AtomicU64 = AtomicU64::new(1);

/// A socket bound on this UMEM, as the UMEM remembers it (to pick the
/// descriptor to pass in `sxdp_shared_umem_fd`).
#[derive(Debug)]
pub(crate) struct Binding {
    pub(crate) ifindex: u32,
    pub(crate) queue: u32,
    pub(crate) fd: Weak<OwnedFd>,
}

/// The frame area of one worker, its free list and its ledger.
pub struct Umem {
    area: Arc<Area>,
    id: u64,
    frame_size: u32,
    frame_shift: u32,
    frame_count: u32,
    headroom: u32,
    free: Vec<u64>,
    ledger: Ledger,
    pub(crate) bindings: Vec<Binding>,
}

impl fmt::Debug for Umem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Umem")
            .field("id", &self.id)
            .field("frame_size", &self.frame_size)
            .field("frame_count", &self.frame_count)
            .field("huge_pages", &self.area.huge)
            .field("counts", &self.counts())
            .finish()
    }
}

const HUGE_PAGE: usize = 2 << 20;

impl Umem {
    /// Maps the area (anonymous, populated; on 2 MiB huge pages if asked and
    /// available). Every frame starts on the free list.
    pub fn new(cfg: UmemConfig) -> Result<Umem, XskError> {
        if cfg.frame_size != 2048 && cfg.frame_size != 4096 {
            return Err(XskError::Config(format!(
                "frame size {} (must be 2048 or 4096)",
                cfg.frame_size
            )));
        }
        if cfg.frame_count == 0 {
            return Err(XskError::Config("a UMEM needs at least one frame".into()));
        }
        if cfg.headroom > cfg.frame_size / 2 {
            return Err(XskError::Config(format!(
                "headroom {} too large",
                cfg.headroom
            )));
        }
        let len = cfg.frame_size as usize * cfg.frame_count as usize;
        let mut huge = false;
        let map = if cfg.huge_pages && len >= HUGE_PAGE {
            let rounded = len.div_ceil(HUGE_PAGE) * HUGE_PAGE;
            match MmapOptions::new()
                .len(rounded)
                .huge(Some(21))
                .populate()
                .map_anon()
            {
                Ok(m) => {
                    huge = true;
                    Some(m)
                }
                Err(_) => None, // no huge pages reserved: normal pages
            }
        } else {
            None
        };
        let map = match map {
            Some(m) => m,
            None if cfg.huge_pages => {
                // No reserved huge pages: ask for transparent ones, then fault the
                // area in (after the advice, so the faults can take 2 MiB pages).
                let mut m = MmapOptions::new()
                    .len(len)
                    .map_anon()
                    .map_err(|e| XskError::Io("mapping the UMEM", e))?;
                let _ = m.advise(memmap2::Advice::HugePage); // best effort
                for page in m.chunks_mut(4096) {
                    page[0] = 0;
                }
                m
            }
            None => MmapOptions::new()
                .len(len)
                .populate()
                .map_anon()
                .map_err(|e| XskError::Io("mapping the UMEM", e))?,
        };
        let frame_count = cfg.frame_count;
        // Lowest addresses last, so allocation starts at frame 0 (easier to read in traces).
        let free = (0..frame_count as u64)
            .rev()
            .map(|i| i * cfg.frame_size as u64)
            .collect();
        Ok(Umem {
            area: Arc::new(Area {
                map: MmapRaw::from(map),
                huge,
                refused: AtomicU64::new(0),
            }),
            id: NEXT_UMEM_ID.fetch_add(1, Ordering::Relaxed),
            frame_size: cfg.frame_size,
            frame_shift: cfg.frame_size.trailing_zeros(),
            frame_count,
            headroom: cfg.headroom,
            free,
            ledger: Ledger::new(frame_count),
            bindings: Vec::new(),
        })
    }

    /// A process-unique id (ports check they are driven with their own UMEM).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Frame size in bytes.
    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// Number of frames.
    pub fn frame_count(&self) -> u32 {
        self.frame_count
    }

    /// Headroom the kernel leaves in front of received packets.
    pub fn headroom(&self) -> u32 {
        self.headroom
    }

    /// Whether the area sits on reserved 2 MiB huge pages (MAP_HUGETLB).
    /// Without reserved pages, a `huge_pages` UMEM is advised for
    /// transparent huge pages instead (MADV_HUGEPAGE), which this does not
    /// report.
    pub fn huge_pages(&self) -> bool {
        self.area.huge
    }

    /// Length of the area registered with the kernel.
    pub fn len(&self) -> usize {
        self.frame_size as usize * self.frame_count as usize
    }

    /// Never true: a UMEM has at least one frame.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub(crate) fn base_ptr(&self) -> *mut u8 {
        self.area.map.as_mut_ptr()
    }

    /// Index of the frame that holds `addr` (any offset inside it).
    #[inline]
    pub fn frame_index(&self, addr: u64) -> usize {
        (addr >> self.frame_shift) as usize
    }

    /// Start of the frame that holds `addr`.
    #[inline]
    pub fn frame_base(&self, addr: u64) -> u64 {
        addr & !(self.frame_size as u64 - 1)
    }

    /// Frames on the free list.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Counts per state; `errors` adds the refused byte accesses to the
    /// ledger's impossible moves.
    pub fn counts(&self) -> FrameCounts {
        let mut c = self.ledger.counts;
        c.errors += self.area.refused.load(Ordering::Relaxed);
        c
    }

    /// Checks the ledger: the counts sum to the frame total, match the
    /// per-frame states and the free list, and no impossible move happened.
    pub fn check(&self) -> Result<FrameCounts, String> {
        let c = self.counts();
        let mut by_state = [0u32; 4];
        for s in &self.ledger.states {
            by_state[*s as usize] += 1;
        }
        let mut problems = Vec::new();
        if c.total() != self.frame_count as u64 {
            problems.push(format!(
                "counts sum to {} of {} frames",
                c.total(),
                self.frame_count
            ));
        }
        if by_state != [c.free, c.rx, c.held, c.tx] {
            problems.push(format!("per-frame states {by_state:?} disagree with {c}"));
        }
        if self.free.len() != c.free as usize {
            problems.push(format!(
                "free list holds {} but ledger says {}",
                self.free.len(),
                c.free
            ));
        }
        if c.errors != 0 {
            problems.push(format!(
                "{} impossible frame moves or refused accesses",
                c.errors
            ));
        }
        if problems.is_empty() {
            Ok(c)
        } else {
            Err(format!("UMEM {}: {}", self.id, problems.join("; ")))
        }
    }

    /// Takes a free frame for a locally generated packet (`len` 0, `addr`
    /// after the headroom). None when the free list is empty.
    #[inline]
    pub fn alloc(&mut self) -> Option<Desc> {
        let base = self.free.pop()?;
        self.ledger
            .mv(self.frame_index(base), FrameState::Free, FrameState::Held);
        Some(Desc {
            addr: base + self.headroom as u64,
            len: 0,
            options: 0,
        })
    }

    /// Allocates up to `out.len()` frames; returns how many.
    pub fn alloc_burst(&mut self, out: &mut [Desc]) -> usize {
        let mut n = 0;
        for d in out.iter_mut() {
            match self.alloc() {
                Some(x) => *d = x,
                None => break,
            }
            n += 1;
        }
        n
    }

    /// Returns a frame the worker holds to the free list (a dropped packet).
    #[inline]
    pub fn free(&mut self, desc: Desc) {
        let base = self.frame_base(desc.addr);
        if self
            .ledger
            .mv(self.frame_index(base), FrameState::Held, FrameState::Free)
        {
            self.free.push(base);
        }
    }

    /// Frees every descriptor in `descs`.
    pub fn free_burst(&mut self, descs: &[Desc]) {
        for d in descs {
            self.free(*d);
        }
    }

    /// Takes up to `out.len()` free frame addresses for a fill ring (Free -> Rx).
    #[inline]
    pub(crate) fn take_for_fill(&mut self, max: usize, mut put: impl FnMut(usize, u64)) -> usize {
        let mut n = 0;
        while n < max {
            let Some(base) = self.free.pop() else { break };
            // Only a frame the ledger now has in Rx may reach the kernel (the
            // accessors' soundness rests on it). Every frame on the free list is
            // Free, so this always holds; a frame that is not is dropped from the list.
            if self
                .ledger
                .mv(self.frame_index(base), FrameState::Free, FrameState::Rx)
            {
                put(n, base);
                n += 1;
            }
        }
        n
    }

    /// Ports report frame moves here.
    #[inline]
    pub(crate) fn moved(&mut self, addr: u64, from: FrameState, to: FrameState) -> bool {
        let idx = self.frame_index(addr);
        self.ledger.mv(idx, from, to)
    }

    /// A frame came back from the kernel unused or completed (Rx/Tx -> Free).
    #[inline]
    pub(crate) fn returned(&mut self, addr: u64, from: FrameState) {
        let base = self.frame_base(addr);
        if self
            .ledger
            .mv(self.frame_index(base), from, FrameState::Free)
        {
            self.free.push(base);
        }
    }

    /// Checks a descriptor lies inside one frame of this UMEM.
    #[inline]
    pub fn desc_ok(&self, d: &Desc) -> bool {
        let end = d.addr.checked_add(d.len as u64);
        match end {
            Some(end) => {
                (d.addr as usize) < self.len()
                    && end <= self.frame_base(d.addr) + self.frame_size as u64
            }
            None => false,
        }
    }

    /// The state of the frame that holds all of `d`; None if `d` does not lie
    /// inside one frame of the UMEM (the test of [`Umem::desc_ok`]). The state
    /// array has one entry per frame, so its bounds check is the "inside the
    /// area" test: the accessors' ownership check costs one byte load more.
    #[inline]
    fn state_of(&self, d: &Desc) -> Option<FrameState> {
        let state = *self.ledger.states.get(self.frame_index(d.addr))?;
        let end = d.addr.checked_add(d.len as u64)?;
        (end <= self.frame_base(d.addr) + self.frame_size as u64).then_some(state)
    }

    /// A byte access the ledger does not allow: a programming error. Panics
    /// in debug builds; counted in release builds, where the caller answers
    /// with an empty slice.
    #[inline]
    fn refuse(&self, d: &Desc, access: &'static str) {
        refused(
            &self.area.refused,
            *d,
            self.ledger.state(self.frame_index(d.addr)),
            access,
        );
    }

    /// The packet bytes of a descriptor. Empty if it does not fit in one
    /// frame, or if its frame is in the kernel for receive (`Rx`: counted
    /// as an error, see the module docs).
    #[inline]
    pub fn data(&self, d: &Desc) -> &[u8] {
        let Some(state) = self.state_of(d) else {
            debug_assert!(false, "{d} outside the UMEM");
            return &[];
        };
        if state == FrameState::Rx {
            self.refuse(d, "reading");
            return &[];
        }
        // SAFETY: the range lies inside one frame of the mapping (state_of), which lives as long
        // as `self`. The frame is not in the Rx state (checked above), so the
        // kernel does not write it (module docs: a frame reaches the kernel for
        // receive only through the Free -> Rx move); moving it back to Rx needs
        // `&mut self`, excluded while the slice borrows `self`. u8 has no invalid values.
        unsafe { std::slice::from_raw_parts(self.base_ptr().add(d.addr as usize), d.len as usize) }
    }

    /// The packet bytes of a descriptor, writable. Empty if it does not fit
    /// in one frame, or if the worker does not hold its frame (counted as
    /// an error, see the module docs).
    #[inline]
    pub fn data_mut(&mut self, d: &Desc) -> &mut [u8] {
        let Some(state) = self.state_of(d) else {
            debug_assert!(false, "{d} outside the UMEM");
            return &mut [];
        };
        if state != FrameState::Held {
            self.refuse(d, "writing");
            return &mut [];
        }
        // SAFETY: in bounds as above; the frame is Held (checked above), so the
        // kernel neither reads nor writes it, and it stays Held while `&mut self`
        // is borrowed; `&mut self` also excludes other user-space views.
        unsafe {
            std::slice::from_raw_parts_mut(self.base_ptr().add(d.addr as usize), d.len as usize)
        }
    }

    /// The room from `d.addr` to the end of its frame, writable: build a
    /// packet there, then set `d.len`. Empty as for [`Umem::data_mut`].
    #[inline]
    pub fn buf_mut(&mut self, d: &Desc) -> &mut [u8] {
        let room = (self.frame_base(d.addr) + self.frame_size as u64).saturating_sub(d.addr);
        let full = Desc {
            addr: d.addr,
            len: room as u32,
            options: 0,
        };
        self.data_mut(&full)
    }

    /// A held packet's bytes and another held frame's room, at once: build a
    /// packet in `dst` from the contents of `src` (an ICMP error quoting the
    /// offending packet, a fragment). None if they are the same frame,
    /// either descriptor is outside the UMEM, or the worker does not hold
    /// both frames (counted as an error, see the module docs).
    #[inline]
    pub fn pair_mut(&mut self, src: &Desc, dst: &Desc) -> Option<(&[u8], &mut [u8])> {
        let (sb, db) = (self.frame_base(src.addr), self.frame_base(dst.addr));
        let states = (
            self.state_of(src),
            self.state_of(&Desc {
                addr: dst.addr,
                len: 0,
                options: 0,
            }),
        );
        let (Some(ss), Some(ds)) = states else {
            return None;
        };
        if sb == db {
            return None;
        }
        for (d, state) in [(src, ss), (dst, ds)] {
            if state != FrameState::Held {
                self.refuse(d, "pairing");
                return None;
            }
        }
        let room = (db + self.frame_size as u64).saturating_sub(dst.addr) as usize;
        // SAFETY: both ranges lie inside the mapping (state_of; `room` ends at the
        // end of dst's frame) and in two different frames, so they do not overlap;
        // both frames are Held (checked above), so the kernel does not touch them;
        // `&mut self` excludes every other view and every state change for the
        // borrows' lifetime.
        unsafe {
            let a = std::slice::from_raw_parts(
                self.base_ptr().add(src.addr as usize),
                src.len as usize,
            );
            let b = std::slice::from_raw_parts_mut(self.base_ptr().add(dst.addr as usize), room);
            Some((a, b))
        }
    }

    /// Bytes free in front of a descriptor's packet inside its frame
    /// (where a VLAN tag or an encapsulation can be pushed).
    #[inline]
    pub fn room_before(&self, d: &Desc) -> u64 {
        d.addr - self.frame_base(d.addr)
    }

    /// The whole frame of a descriptor, writable, with the packet's offset in
    /// it: for moving the packet's start (pushing or popping a header).
    /// Empty as for [`Umem::data_mut`].
    #[inline]
    pub fn frame_mut(&mut self, d: &Desc) -> (&mut [u8], usize) {
        let base = self.frame_base(d.addr);
        let full = Desc {
            addr: base,
            len: self.frame_size,
            options: 0,
        };
        let off = (d.addr - base) as usize;
        (self.data_mut(&full), off)
    }

    /// Copies `bytes` into a fresh frame; None if no frame is free or the
    /// bytes do not fit.
    pub fn alloc_with(&mut self, bytes: &[u8]) -> Option<Desc> {
        let mut d = self.alloc()?;
        let buf = self.buf_mut(&d);
        if bytes.len() > buf.len() {
            self.free(d);
            return None;
        }
        buf[..bytes.len()].copy_from_slice(bytes);
        d.len = bytes.len() as u32;
        Some(d)
    }

    /// The wire side of the in-memory port writes a received packet into a
    /// frame it holds for receive (state Rx), after the headroom. Returns the
    /// descriptor, or None if the bytes do not fit.
    pub(crate) fn wire_write(&mut self, addr: u64, bytes: &[u8]) -> Option<Desc> {
        let base = self.frame_base(addr);
        debug_assert_eq!(
            self.ledger.state(self.frame_index(base)),
            Some(FrameState::Rx)
        );
        let d = Desc {
            addr: base + self.headroom as u64,
            len: bytes.len() as u32,
            options: 0,
        };
        if bytes.len() > u32::MAX as usize || !self.desc_ok(&d) {
            return None;
        }
        // SAFETY: in bounds (desc_ok); the frame is in the receive state, which on the
        // in-memory port means the wire side (the caller, holding `&mut self`) owns it.
        let dst = unsafe {
            std::slice::from_raw_parts_mut(self.base_ptr().add(d.addr as usize), bytes.len())
        };
        dst.copy_from_slice(bytes);
        Some(d)
    }

    /// The wire side of the in-memory port reads a frame being transmitted.
    pub(crate) fn wire_read(&self, d: &Desc) -> &[u8] {
        if !self.desc_ok(d) {
            return &[];
        }
        // SAFETY: in bounds (desc_ok); the frame is in the transmit state, owned by
        // the wire side, and nobody writes it while `&self` is borrowed.
        unsafe { std::slice::from_raw_parts(self.base_ptr().add(d.addr as usize), d.len as usize) }
    }

    /// Returns every frame the kernel held to the free list. Only sound once
    /// no socket uses the UMEM any more (the kernel released them all).
    /// Returns how many came back, or an error if a socket is still bound.
    pub fn recover(&mut self) -> Result<u32, XskError> {
        if self.bindings.iter().any(|b| b.fd.strong_count() > 0) {
            return Err(XskError::Config(
                "a socket is still bound to this UMEM".into(),
            ));
        }
        self.bindings.clear();
        let mut n = 0;
        for idx in 0..self.frame_count as usize {
            let from = self.ledger.states[idx];
            if from == FrameState::Rx || from == FrameState::Tx {
                self.ledger.mv(idx, from, FrameState::Free);
                self.free.push((idx as u64) << self.frame_shift);
                n += 1;
            }
        }
        Ok(n)
    }

    /// A live socket fd to share the UMEM with: one bound on the same
    /// (ifindex, queue) if any (the kernel then shares its fill and
    /// completion rings), else any live socket.
    pub(crate) fn share_with(&mut self, ifindex: u32, queue: u32) -> Option<(Arc<OwnedFd>, bool)> {
        self.bindings.retain(|b| b.fd.strong_count() > 0);
        if let Some(fd) = self
            .bindings
            .iter()
            .filter(|b| b.ifindex == ifindex && b.queue == queue)
            .find_map(|b| b.fd.upgrade())
        {
            return Some((fd, true));
        }
        self.bindings
            .iter()
            .find_map(|b| b.fd.upgrade())
            .map(|fd| (fd, false))
    }

    /// Registers the area with an AF_XDP socket (XDP_UMEM_REG).
    pub(crate) fn register(&self, fd: &OwnedFd) -> Result<(), XskError> {
        let reg = libc::xdp_umem_reg {
            addr: self.base_ptr() as u64,
            len: self.len() as u64,
            chunk_size: self.frame_size,
            headroom: self.headroom,
            flags: 0,
            tx_metadata_len: 0,
        };
        // SAFETY: `reg` is a valid xdp_umem_reg for the duration of the call and the
        // length passed is its size; the area it names stays mapped while `self` lives
        // (and the kernel pins the pages for as long as it uses them).
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_UMEM_REG,
                &reg as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::xdp_umem_reg>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        let code = err.raw_os_error().unwrap_or(0);
        if (code == libc::ENOBUFS || code == libc::ENOMEM || code == libc::EPERM)
            && !has_cap_ipc_lock()
        {
            return Err(XskError::MemLock {
                bytes: self.len(),
                limit: memlock_limit(),
                source: err,
            });
        }
        Err(XskError::Io("registering the UMEM (XDP_UMEM_REG)", err))
    }
}

/// The cold half of [`Umem::refuse`]: a free function that sees no `Umem`,
/// so that the compiler keeps its facts about the `Umem` across the
/// accessors (the hot loops keep its fields in registers).
#[cold]
#[inline(never)]
fn refused(count: &AtomicU64, d: Desc, state: Option<FrameState>, access: &'static str) {
    count.fetch_add(1, Ordering::Relaxed);
    debug_assert!(false, "{access} {d}: frame is {state:?}, not the worker's");
    let _ = (d, state, access);
}

/// Whether the calling thread has CAP_IPC_LOCK in its effective set.
pub fn has_cap_ipc_lock() -> bool {
    const CAP_IPC_LOCK: u32 = 14;
    // /proc/thread-self: capabilities are per thread.
    let Ok(status) = std::fs::read_to_string("/proc/thread-self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
}

/// RLIMIT_MEMLOCK (soft), in bytes.
pub fn memlock_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return 0;
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Umem {
        Umem::new(UmemConfig {
            frame_size: 2048,
            frame_count: 16,
            huge_pages: false,
            headroom: 0,
        })
        .unwrap()
    }

    #[test]
    fn rejects_bad_geometry() {
        for fs in [0, 1000, 2047, 8192] {
            assert!(Umem::new(UmemConfig {
                frame_size: fs,
                ..UmemConfig::default()
            })
            .is_err());
        }
        assert!(Umem::new(UmemConfig {
            frame_count: 0,
            ..UmemConfig::default()
        })
        .is_err());
    }

    #[test]
    fn alloc_free_keeps_the_ledger() {
        let mut u = small();
        let mut held = Vec::new();
        while let Some(d) = u.alloc() {
            assert_eq!(d.addr % 2048, 0);
            held.push(d);
        }
        assert_eq!(held.len(), 16);
        assert_eq!(u.counts().held, 16);
        u.check().unwrap();
        // All addresses distinct and inside the area.
        let mut addrs: Vec<u64> = held.iter().map(|d| d.addr).collect();
        addrs.sort();
        addrs.dedup();
        assert_eq!(addrs.len(), 16);
        assert!(addrs.iter().all(|a| *a < 16 * 2048));
        u.free_burst(&held);
        assert_eq!(u.check().unwrap().free, 16);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "double use")]
    fn double_free_panics() {
        let mut u = small();
        let d = u.alloc().unwrap();
        u.free(d);
        u.free(d);
    }

    #[test]
    fn frames_hold_bytes() {
        let mut u = small();
        let d = u.alloc_with(&[1, 2, 3, 4]).unwrap();
        assert_eq!(u.data(&d), &[1, 2, 3, 4]);
        u.data_mut(&d)[0] = 9;
        assert_eq!(u.data(&d), &[9, 2, 3, 4]);
        assert_eq!(u.buf_mut(&d).len(), 2048);
        assert!(u.alloc_with(&[0u8; 2049]).is_none());
        u.free(d);
        u.check().unwrap();
    }

    /// The accessors check frame ownership in every build (module docs).
    /// Release builds answer a refused access with an empty slice (None for
    /// `pair_mut`) and count it.
    #[test]
    #[cfg(not(debug_assertions))]
    fn accessors_refuse_frames_the_worker_does_not_hold() {
        let mut u = small();
        let d = u.alloc_with(&[1, 2, 3, 4]).unwrap();
        let other = u.alloc_with(&[5; 8]).unwrap();
        // A freed frame may be read (nobody writes it) but not written.
        u.free(d);
        assert_eq!(u.data(&d), &[1, 2, 3, 4]);
        assert!(u.data_mut(&d).is_empty());
        assert!(u.buf_mut(&d).is_empty());
        assert!(u.frame_mut(&d).0.is_empty());
        assert!(u.pair_mut(&other, &d).is_none());
        assert!(u.pair_mut(&d, &other).is_none());
        assert_eq!(u.counts().errors, 5);
        // A frame given to the kernel for receive may not even be read.
        let mut rx = Vec::new();
        assert_eq!(u.take_for_fill(16, |_, a| rx.push(a)), 15);
        let r = Desc {
            addr: rx[0],
            len: 60,
            options: 0,
        };
        assert_eq!(
            u.ledger().state(u.frame_index(r.addr)),
            Some(FrameState::Rx)
        );
        assert!(u.data(&r).is_empty());
        assert!(u.data_mut(&r).is_empty());
        assert_eq!(u.counts().errors, 7);
        assert!(u
            .check()
            .unwrap_err()
            .contains("7 impossible frame moves or refused accesses"));
        // The frame the worker holds is untouched.
        assert_eq!(u.data(&other), &[5; 8]);
        u.data_mut(&other)[0] = 6;
        assert_eq!(u.counts().errors, 7);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not the worker's")]
    fn writing_a_freed_frame_panics_in_debug() {
        let mut u = small();
        let d = u.alloc_with(&[1, 2, 3, 4]).unwrap();
        u.free(d);
        u.data_mut(&d)[0] = 9;
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not the worker's")]
    fn reading_a_receive_frame_panics_in_debug() {
        let mut u = small();
        let mut rx = Vec::new();
        u.take_for_fill(1, |_, a| rx.push(a));
        let _ = u.data(&Desc {
            addr: rx[0],
            len: 60,
            options: 0,
        });
    }

    #[test]
    fn desc_bounds() {
        let u = small();
        assert!(u.desc_ok(&Desc {
            addr: 0,
            len: 2048,
            options: 0
        }));
        assert!(!u.desc_ok(&Desc {
            addr: 100,
            len: 2000,
            options: 0
        }));
        assert!(!u.desc_ok(&Desc {
            addr: 16 * 2048,
            len: 1,
            options: 0
        }));
        assert!(!u.desc_ok(&Desc {
            addr: u64::MAX,
            len: 2,
            options: 0
        }));
    }

    /// The accessors' combined bounds-and-state lookup accepts exactly the
    /// descriptors `desc_ok` accepts.
    #[test]
    fn state_of_agrees_with_desc_ok() {
        let u = small();
        let end = 16 * 2048u64;
        for addr in [
            0,
            1,
            100,
            2047,
            2048,
            4000,
            end - 2048,
            end - 1,
            end,
            end + 1,
            u64::MAX / 2,
            u64::MAX - 1,
            u64::MAX,
        ] {
            for len in [0u32, 1, 48, 2047, 2048, 2049, u32::MAX] {
                let d = Desc {
                    addr,
                    len,
                    options: 0,
                };
                assert_eq!(u.state_of(&d).is_some(), u.desc_ok(&d), "{d}");
            }
        }
        assert_eq!(
            u.state_of(&Desc {
                addr: 2048,
                len: 60,
                options: 0
            }),
            Some(FrameState::Free)
        );
    }

    #[test]
    fn huge_page_request_falls_back() {
        // Works whether or not huge pages are reserved on this machine.
        let u = Umem::new(UmemConfig {
            frame_size: 4096,
            frame_count: 1024,
            huge_pages: true,
            headroom: 0,
        })
        .unwrap();
        assert_eq!(u.len(), 4 << 20);
        u.check().unwrap();
    }
}
