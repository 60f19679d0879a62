//! Least privilege after set-up. Linux capabilities are per thread: each
//! worker drops every capability once its sockets are bound (the rings need
//! none), and the control thread keeps only CAP_BPF (writing the steering
//! program's maps: filter pushdown, counters) and CAP_NET_ADMIN.

use caps::{CapSet, Capability, CapsHashSet};

/// What the control thread keeps.
pub const CONTROL: &[Capability] = &[Capability::CAP_BPF, Capability::CAP_NET_ADMIN];

/// Reduces the calling thread's permitted and effective sets to `keep` (those
/// of them it has) and clears its inheritable set. Returns the kept names.
pub fn keep_only(keep: &[Capability]) -> Result<Vec<String>, String> {
    let permitted = caps::read(None, CapSet::Permitted).map_err(|e| format!("reading capabilities: {e}"))?;
    let kept: CapsHashSet = keep.iter().copied().filter(|c| permitted.contains(c)).collect();
    caps::set(None, CapSet::Effective, &kept).map_err(|e| format!("setting effective capabilities: {e}"))?;
    caps::set(None, CapSet::Permitted, &kept).map_err(|e| format!("setting permitted capabilities: {e}"))?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| format!("clearing inheritable capabilities: {e}"))?;
    let mut names: Vec<String> = kept.iter().map(|c| c.to_string().to_lowercase()).collect();
    names.sort();
    Ok(names)
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
            assert_eq!(after.contains(&Capability::CAP_NET_ADMIN), before.contains(&Capability::CAP_NET_ADMIN));
            assert_eq!(kept.len(), after.len());
            assert!(caps::read(None, CapSet::Effective).unwrap().is_subset(&after));
        })
        .join()
        .unwrap();
    }
}
