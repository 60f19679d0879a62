//! What workers copy for `ctl capture`: per port, a tap for each capture
//! running there, with its filter (a checked [`Program`], or none) and the
//! number of frames it still wants.
//!
//! A port without a capture costs a frame nothing new: the worker reads the
//! port's `armed` flag once per burst (one relaxed load, a branch that is
//! always taken the same way). On a captured port it loads the tap list
//! (arc-swap, once per burst) and [`offer`]s each frame to it before
//! anything else touches the frame; only a frame some tap's filter accepts
//! is copied (the copy is the one allocation, made only while an operator
//! asked for it). The control thread gives each copy to every capture whose
//! filter accepts it, so a frame that matches two captures is copied once.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::counters::{LocalCounters, Stage};
use super::events::{Event, EventSink};
use crate::cbpf::Program;

/// One capture's view from the workers.
#[derive(Debug)]
pub struct Tap {
    filter: Option<Program>,
    /// Frames still to copy for this capture (taken by the workers).
    left: AtomicU32,
}

impl Tap {
    pub fn new(filter: Option<Program>, count: u32) -> Tap {
        Tap {
            filter,
            left: AtomicU32::new(count),
        }
    }

    /// Whether the filter accepts `frame` (no filter: every frame).
    #[inline]
    pub fn accepts(&self, frame: &[u8]) -> bool {
        self.filter.as_ref().is_none_or(|p| p.matches(frame))
    }

    /// Frames the workers may still copy for it.
    pub fn left(&self) -> u32 {
        self.left.load(Ordering::Relaxed)
    }

    /// Takes one frame off `left`; false when none is left.
    #[inline]
    fn take(&self) -> bool {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
            .is_ok()
    }
}

/// A port's taps, as the control thread publishes them.
#[derive(Debug, Default)]
pub struct PortTaps {
    armed: AtomicBool,
    taps: ArcSwap<Vec<Arc<Tap>>>,
}

/// What became of a frame offered to a port's taps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// A tap's filter accepted it: copy it for the control thread.
    Copy,
    /// Taps want frames, but no filter accepted this one (counted as
    /// `capture-filtered`).
    Filtered,
    /// No tap wants anything more (the captures are ending).
    Idle,
}

impl PortTaps {
    /// Whether any capture runs on the port: the per-burst check.
    #[inline]
    pub fn armed(&self) -> bool {
        self.armed.load(Ordering::Relaxed)
    }

    /// The current taps (one arc-swap load; once per burst of a captured port).
    #[inline]
    pub fn load(&self) -> arc_swap::Guard<Arc<Vec<Arc<Tap>>>> {
        self.taps.load()
    }

    /// Replaces the port's taps (the control thread; empty disarms the port).
    pub fn publish(&self, taps: Vec<Arc<Tap>>) {
        let armed = !taps.is_empty();
        if !armed {
            self.armed.store(false, Ordering::Relaxed);
        }
        self.taps.store(Arc::new(taps));
        if armed {
            self.armed.store(true, Ordering::Relaxed);
        }
    }
}

/// Offers `frame` to `taps`: every tap that still wants frames and whose
/// filter accepts it takes one. The filters run here, on the worker, before
/// the frame is copied; a tap whose count is used up is skipped without
/// running its filter.
#[inline]
pub fn offer(taps: &[Arc<Tap>], frame: &[u8]) -> Offer {
    let mut copy = false;
    let mut wanting = false;
    for t in taps {
        if t.left() == 0 {
            continue;
        }
        wanting = true;
        if t.accepts(frame) && t.take() {
            copy = true;
        }
    }
    match (copy, wanting) {
        (true, _) => Offer::Copy,
        (false, true) => Offer::Filtered,
        (false, false) => Offer::Idle,
    }
}

/// Offers a frame of `port` to its taps; copies it to the control thread
/// (`Event::Captured`) when one accepts it, counts it as `capture-filtered`
/// when none does. The worker calls this only for ports that are armed.
#[inline(never)]
pub fn tap_frame(
    taps: &[Arc<Tap>],
    port: u16,
    frame: &[u8],
    events: &EventSink,
    counters: &mut LocalCounters,
) {
    match offer(taps, frame) {
        Offer::Copy => events.send(Event::Captured {
            port,
            time_ns: super::wall_ns(),
            data: frame.to_vec(),
        }),
        Offer::Filtered => counters.stage(Stage::CaptureFiltered, 1),
        Offer::Idle => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cbpf::{op::*, Insn};

    /// Accepts frames whose first byte is `b`.
    fn first_byte(b: u8) -> Program {
        Program::new(&[
            Insn::new(LD | B | ABS, 0, 0, 0),
            Insn::new(JMP | JEQ | K, 0, 1, u32::from(b)),
            Insn::new(RET | K, 0, 0, 0xffff),
            Insn::new(RET | K, 0, 0, 0),
        ])
        .unwrap()
    }

    #[test]
    fn filters_decide_and_counts_run_down() {
        let a = Arc::new(Tap::new(Some(first_byte(1)), 2));
        let b = Arc::new(Tap::new(Some(first_byte(2)), 1));
        let taps = vec![a.clone(), b.clone()];
        assert_eq!(offer(&taps, &[3]), Offer::Filtered);
        assert_eq!(offer(&taps, &[]), Offer::Filtered);
        assert_eq!(offer(&taps, &[2]), Offer::Copy);
        assert_eq!(b.left(), 0);
        // b is done: its frames are now filtered out by a's filter.
        assert_eq!(offer(&taps, &[2]), Offer::Filtered);
        assert_eq!(offer(&taps, &[1, 9]), Offer::Copy);
        assert_eq!(offer(&taps, &[1]), Offer::Copy);
        assert_eq!((a.left(), b.left()), (0, 0));
        assert_eq!(offer(&taps, &[1]), Offer::Idle);
    }

    #[test]
    fn no_filter_takes_everything_and_one_copy_serves_two() {
        let all = Arc::new(Tap::new(None, 5));
        let ones = Arc::new(Tap::new(Some(first_byte(1)), 5));
        let taps = vec![all.clone(), ones.clone()];
        assert_eq!(offer(&taps, &[7]), Offer::Copy);
        assert_eq!(offer(&taps, &[1]), Offer::Copy);
        assert_eq!((all.left(), ones.left()), (3, 4));
        assert!(ones.accepts(&[1]) && !ones.accepts(&[7]) && all.accepts(&[]));
    }

    #[test]
    fn publishing_arms_and_disarms() {
        let p = PortTaps::default();
        assert!(!p.armed() && p.load().is_empty());
        p.publish(vec![Arc::new(Tap::new(None, 1))]);
        assert!(p.armed());
        assert_eq!(p.load().len(), 1);
        p.publish(Vec::new());
        assert!(!p.armed() && p.load().is_empty());
    }
}
