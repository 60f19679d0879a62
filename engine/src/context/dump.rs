//! `ctl … show` requests answered by the workers (NAT sessions, TCP
//! connections): the control thread bumps a slot's `asked`; the worker sees
//! it in its housekeeping (once per loop, never per packet), fills the rows,
//! taking the slot's lock only then, and sets `answered` to the same number;
//! the control thread waits for that, a bounded time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One worker's slot.
#[derive(Debug)]
pub struct DumpSlot<T> {
    asked: AtomicU64,
    answered: AtomicU64,
    rows: Mutex<Vec<T>>,
}

impl<T> Default for DumpSlot<T> {
    fn default() -> Self {
        DumpSlot { asked: AtomicU64::new(0), answered: AtomicU64::new(0), rows: Mutex::new(Vec::new()) }
    }
}

impl<T: Clone> DumpSlot<T> {
    /// Control side: asks for a dump; returns the request's number.
    pub fn ask(&self) -> u64 {
        self.asked.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Worker side: the request to answer, if one came since `seen` (which it updates).
    #[inline]
    pub fn request(&self, seen: &mut u64) -> Option<u64> {
        let asked = self.asked.load(Ordering::Acquire);
        (asked != *seen).then(|| {
            *seen = asked;
            asked
        })
    }

    /// Worker side: the rows for request `asked`.
    pub fn answer(&self, asked: u64, rows: Vec<T>) {
        if let Ok(mut r) = self.rows.lock() {
            *r = rows;
        }
        self.answered.store(asked, Ordering::Release);
    }

    /// The rows of the last answer.
    pub fn rows(&self) -> Vec<T> {
        self.rows.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Control side: asks every worker, waits at most `wait` in all, and
/// formats each row with `f(worker, row)`; a worker that did not answer in
/// time gets a line saying so.
pub fn collect<T: Clone>(slots: &[DumpSlot<T>], wait: Duration, mut f: impl FnMut(usize, &T) -> String) -> Vec<String> {
    let asked: Vec<u64> = slots.iter().map(DumpSlot::ask).collect();
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    for (w, (slot, want)) in slots.iter().zip(asked).enumerate() {
        while slot.answered.load(Ordering::Acquire) < want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if slot.answered.load(Ordering::Acquire) < want {
            out.push(format!("worker {w} did not answer"));
            continue;
        }
        let Ok(list) = slot.rows.lock() else { continue };
        out.extend(list.iter().map(|r| f(w, r)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_answers_and_a_silent_one_is_named() {
        let slots: Vec<DumpSlot<u32>> = (0..2).map(|_| DumpSlot::default()).collect();
        let s = std::sync::Arc::new(slots);
        let s2 = s.clone();
        let t = std::thread::spawn(move || {
            let mut seen = 0;
            loop {
                if let Some(a) = s2[0].request(&mut seen) {
                    s2[0].answer(a, vec![7, 8]);
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let rows = collect(&s, Duration::from_millis(300), |w, r| format!("{w}:{r}"));
        t.join().unwrap();
        assert_eq!(rows, vec!["0:7", "0:8", "worker 1 did not answer"]);
        let mut seen = 1;
        assert_eq!(s[0].request(&mut seen), None, "answered requests are not seen again");
    }
}
