//! For unit tests that need the kernel's privileged side (loading BPF programs, AF_XDP
//! sockets): [`require_root`] lets them skip, saying why, when `cargo test` runs as a normal
//! user, instead of failing with EPERM.

use std::io::Write;

use caps::{CapSet, Capability};

/// What the root-only tests use: CAP_BPF and CAP_NET_ADMIN to load the XDP steering program,
/// CAP_NET_RAW to create AF_XDP sockets.
const NEEDED: [Capability; 3] = [
    Capability::CAP_NET_ADMIN,
    Capability::CAP_BPF,
    Capability::CAP_NET_RAW,
];

/// The capabilities of [`NEEDED`] missing from the calling thread's effective set (all of them
/// for a normal user).
pub fn missing_capabilities() -> Vec<Capability> {
    NEEDED
        .into_iter()
        .filter(|&c| !caps::has_cap(None, CapSet::Effective, c).unwrap_or(false))
        .collect()
}

/// True if the calling thread may run a root-only test. Otherwise writes
/// "skipped: `test` needs root ..." to stderr and returns false; the test then returns early
/// (and is reported as passed: libtest has no run-time skip).
///
/// The note is written to the process's stderr directly, not with `eprintln!`: libtest
/// captures `eprintln!` output of passing tests, and the note would never be seen.
pub fn require_root(test: &str) -> bool {
    match skip_note(test) {
        None => true,
        Some(note) => {
            let _ = writeln!(std::io::stderr(), "{note}");
            false
        }
    }
}

/// Why `test` cannot run on the calling thread, or `None` if it can.
fn skip_note(test: &str) -> Option<String> {
    let missing = missing_capabilities();
    if missing.is_empty() {
        return None;
    }
    let partly = if missing.len() < NEEDED.len() {
        let names: Vec<String> = missing.iter().map(|c| c.to_string()).collect();
        format!("; missing {}", names.join(", "))
    } else {
        String::new()
    };
    Some(format!(
        "skipped: {test} needs root (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW{partly}): \
         run the tests as root to include it"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without the capabilities the test is skipped, and the note says why. Capabilities are
    /// per thread: the test drops its effective set in a thread of its own (possible without
    /// privilege), so as root too it checks the path a normal user takes.
    #[test]
    fn without_capabilities_tests_are_skipped() {
        std::thread::spawn(|| {
            caps::clear(None, CapSet::Effective).unwrap();
            assert_eq!(missing_capabilities(), NEEDED.to_vec());
            let note = skip_note("steer::tests::x").expect("no capabilities: skipped");
            let want = "skipped: steer::tests::x needs root (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW)";
            assert!(note.starts_with(want), "{note}");
        })
        .join()
        .unwrap();
    }

    /// A normal user (effective uid not 0, no file capabilities) is skipped; root with the
    /// capabilities is not.
    #[test]
    fn skips_follow_the_effective_set() {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        let effective = caps::read(None, CapSet::Effective).unwrap();
        if euid != 0 && effective.is_empty() {
            assert!(skip_note("x").is_some());
        }
        if NEEDED.iter().all(|c| effective.contains(c)) {
            assert!(skip_note("x").is_none());
        }
    }
}
