//! A software model of a NIC's receive-side scaling (RSS): the Toeplitz
//! hash over a flow's tuple with the NIC's key, then the indirection table
//! that names the receive queue. The NAT and the load balancer use it to
//! know which queue (so which worker) a flow's frames arrive on, and to
//! choose a new mapping's outside port so that the return traffic arrives on
//! the owner's queue (`conntrack::table`, `ReturnSteer`). See
//! docs/ARCHITECTURE.md, "RSS-aware ownership".
//!
//! The hash is linear over the input bits, so it is computed with one
//! 256-entry table per input byte, built once: 12 lookups and XORs for an
//! IPv4 TCP/UDP tuple, no allocation per packet.

use std::fmt;

/// The key of Microsoft's RSS verification suite, also the default of many
/// drivers (ixgbe, i40e before 2016, DPDK's `rss_intel_key`).
pub const MS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// The symmetric key of Woo and Park ("Scalable TCP session monitoring with
/// symmetric receive-side scaling", 2012): 0x6d5a repeated. A flow and its
/// reverse (addresses and ports swapped) hash alike.
pub const SYMMETRIC_KEY: [u8; 40] = {
    let mut k = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// Bytes of an IPv4 TCP/UDP tuple: source and destination address, ports.
const V4_BYTES: usize = 12;

/// The Toeplitz hash for one key, over inputs of up to 12 bytes (IPv4).
#[derive(Clone)]
pub struct Toeplitz {
    /// `t[i][v]`: the hash contribution of byte value `v` at input offset `i`.
    t: Box<[[u32; 256]; V4_BYTES]>,
}

impl fmt::Debug for Toeplitz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Toeplitz")
    }
}

impl Toeplitz {
    /// Tables for `key` (at least 16 bytes: 12 input bytes need 12*8+32 bits).
    pub fn new(key: &[u8]) -> Option<Toeplitz> {
        if key.len() < V4_BYTES + 4 {
            return None;
        }
        // The 32-bit window of the key starting at bit `b` (MSB first).
        let window = |b: usize| -> u32 {
            let byte = b / 8;
            let w = u64::from(key[byte]) << 32
                | u64::from(key[byte + 1]) << 24
                | u64::from(key[byte + 2]) << 16
                | u64::from(key[byte + 3]) << 8
                | u64::from(*key.get(byte + 4).unwrap_or(&0));
            (w >> (8 - b % 8)) as u32
        };
        let mut t = Box::new([[0u32; 256]; V4_BYTES]);
        for (i, row) in t.iter_mut().enumerate() {
            for (v, slot) in row.iter_mut().enumerate() {
                let mut h = 0;
                for bit in 0..8 {
                    if v & (0x80 >> bit) != 0 {
                        h ^= window(i * 8 + bit);
                    }
                }
                *slot = h;
            }
        }
        Some(Toeplitz { t })
    }

    /// The hash of `input` (at most 12 bytes; longer input is cut).
    #[inline]
    pub fn hash(&self, input: &[u8]) -> u32 {
        input
            .iter()
            .zip(self.t.iter())
            .fold(0, |h, (&b, row)| h ^ row[usize::from(b)])
    }

    /// The hash of an IPv4 2-tuple (addresses in host order).
    #[inline]
    pub fn hash_v4(&self, src: u32, dst: u32) -> u32 {
        self.word(0, src) ^ self.word(4, dst)
    }

    /// The hash of an IPv4 TCP/UDP 4-tuple (host order).
    #[inline]
    pub fn hash_v4_ports(&self, src: u32, dst: u32, sport: u16, dport: u16) -> u32 {
        self.hash_v4(src, dst) ^ self.port(8, sport) ^ self.port(10, dport)
    }

    /// The part of the 4-tuple hash that the destination port contributes
    /// (the hash is linear: XOR it into the hash of the tuple with port 0).
    #[inline]
    pub fn dport_part(&self, dport: u16) -> u32 {
        self.port(10, dport)
    }

    #[inline]
    fn word(&self, at: usize, v: u32) -> u32 {
        let b = v.to_be_bytes();
        self.t[at][usize::from(b[0])]
            ^ self.t[at + 1][usize::from(b[1])]
            ^ self.t[at + 2][usize::from(b[2])]
            ^ self.t[at + 3][usize::from(b[3])]
    }

    #[inline]
    fn port(&self, at: usize, v: u16) -> u32 {
        let b = v.to_be_bytes();
        self.t[at][usize::from(b[0])] ^ self.t[at + 1][usize::from(b[1])]
    }
}

/// One port's RSS as the NIC does it: key, indirection table, and whether
/// TCP and UDP hash their ports (`ethtool -n DEV rx-flow-hash tcp4|udp4`:
/// "L4 bytes 0 & 1 [TCP/UDP src port]" and "2 & 3").
#[derive(Debug, Clone)]
pub struct Rss {
    pub key: Vec<u8>,
    /// Entry `hash % len` names the receive queue.
    pub table: Vec<u16>,
    pub tcp_ports: bool,
    pub udp_ports: bool,
    toeplitz: Toeplitz,
}

impl PartialEq for Rss {
    fn eq(&self, o: &Rss) -> bool {
        (&self.key, &self.table, self.tcp_ports, self.udp_ports)
            == (&o.key, &o.table, o.tcp_ports, o.udp_ports)
    }
}
impl Eq for Rss {}

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

impl Rss {
    /// The model of a NIC with `key` and indirection `table` (both non-empty;
    /// the key at least 16 bytes). TCP and UDP hash their ports.
    pub fn new(key: Vec<u8>, table: Vec<u16>) -> Result<Rss, String> {
        if table.is_empty() {
            return Err("empty RSS indirection table".into());
        }
        let toeplitz = Toeplitz::new(&key)
            .ok_or_else(|| format!("RSS key of {} bytes: at least 16 needed", key.len()))?;
        Ok(Rss {
            key,
            table,
            tcp_ports: true,
            udp_ports: true,
            toeplitz,
        })
    }

    pub fn toeplitz(&self) -> &Toeplitz {
        &self.toeplitz
    }

    /// Whether the NIC hashes the ports of `proto` (else only the addresses).
    #[inline]
    pub fn hashes_ports(&self, proto: u8) -> bool {
        match proto {
            PROTO_TCP => self.tcp_ports,
            PROTO_UDP => self.udp_ports,
            _ => false,
        }
    }

    /// The NIC's hash of an IPv4 packet (host order; ports ignored when the
    /// NIC does not hash them for `proto`).
    #[inline]
    pub fn hash_v4(&self, proto: u8, src: u32, dst: u32, sport: u16, dport: u16) -> u32 {
        if self.hashes_ports(proto) {
            self.toeplitz.hash_v4_ports(src, dst, sport, dport)
        } else {
            self.toeplitz.hash_v4(src, dst)
        }
    }

    /// The queue a hash names.
    #[inline]
    pub fn queue_of(&self, hash: u32) -> u16 {
        // Not empty: checked in `new`.
        self.table[hash as usize % self.table.len()]
    }

    /// The queue the NIC delivers an IPv4 packet to.
    #[inline]
    pub fn queue_v4(&self, proto: u8, src: u32, dst: u32, sport: u16, dport: u16) -> u16 {
        self.queue_of(self.hash_v4(proto, src, dst, sport, dport))
    }

    /// Parses a key written as ethtool prints it (`6d:5a:56:...`).
    pub fn parse_key(s: &str) -> Result<Vec<u8>, String> {
        s.split(':')
            .map(|b| {
                u8::from_str_radix(b.trim(), 16)
                    .map_err(|_| format!("RSS key `{s}`: not hex bytes separated by `:`"))
            })
            .collect()
    }
}

/// Which worker serves a receive queue: worker `w` of `n` serves queue `q`
/// when `q % n == w` (`runtime::build_worker`).
#[inline]
pub fn queue_worker(queue: u16, workers: u16) -> u16 {
    queue % workers.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(a: [u8; 4]) -> u32 {
        u32::from_be_bytes(a)
    }

    /// Microsoft's "Verifying the RSS Hash Calculation" (IPv4 rows):
    /// (source, source port, destination, destination port, hash of the
    /// addresses, hash with the TCP ports).
    /// (source, source port, destination, destination port, 2-tuple hash, 4-tuple hash).
    type Vector = ([u8; 4], u16, [u8; 4], u16, u32, u32);
    const MS_V4: [Vector; 5] = [
        (
            [66, 9, 149, 187],
            2794,
            [161, 142, 100, 80],
            1766,
            0x323e_8fc2,
            0x51cc_c178,
        ),
        (
            [199, 92, 111, 2],
            14230,
            [65, 69, 140, 83],
            4739,
            0xd718_262a,
            0xc626_b0ea,
        ),
        (
            [24, 19, 198, 95],
            12898,
            [12, 22, 207, 184],
            38024,
            0xd2d0_a5de,
            0x5c2b_394a,
        ),
        (
            [38, 27, 205, 30],
            48228,
            [209, 142, 163, 6],
            2217,
            0x8298_9176,
            0xafc7_327f,
        ),
        (
            [153, 39, 163, 191],
            44251,
            [202, 188, 127, 2],
            1303,
            0x5d18_09c5,
            0x10e8_28a2,
        ),
    ];

    #[test]
    fn microsoft_verification_vectors() {
        let t = Toeplitz::new(&MS_KEY).unwrap();
        for (s, sp, d, dp, h2, h4) in MS_V4 {
            assert_eq!(t.hash_v4(ip(s), ip(d)), h2, "{s:?} -> {d:?}");
            assert_eq!(
                t.hash_v4_ports(ip(s), ip(d), sp, dp),
                h4,
                "{s:?}:{sp} -> {d:?}:{dp}"
            );
            // The byte-wise entry point agrees with the word-wise one.
            let mut input = [0u8; 12];
            input[..4].copy_from_slice(&s);
            input[4..8].copy_from_slice(&d);
            input[8..10].copy_from_slice(&sp.to_be_bytes());
            input[10..].copy_from_slice(&dp.to_be_bytes());
            assert_eq!(t.hash(&input), h4);
        }
    }

    /// The textbook definition, bit by bit, for the property tests.
    fn reference(key: &[u8], input: &[u8]) -> u32 {
        let bit = |i: usize| key.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0);
        let mut h = 0u32;
        for (i, b) in input.iter().enumerate() {
            for j in 0..8 {
                if b & (0x80 >> j) != 0 {
                    let at = i * 8 + j;
                    let w = (0..32).fold(0u32, |w, k| w << 1 | u32::from(bit(at + k)));
                    h ^= w;
                }
            }
        }
        h
    }

    #[test]
    fn the_symmetric_key_hashes_both_directions_alike() {
        let t = Toeplitz::new(&SYMMETRIC_KEY).unwrap();
        let (a, b) = (ip([198, 18, 1, 2]), ip([198, 19, 1, 1]));
        assert_eq!(
            t.hash_v4_ports(a, b, 40000, 80),
            t.hash_v4_ports(b, a, 80, 40000)
        );
        let ms = Toeplitz::new(&MS_KEY).unwrap();
        assert_ne!(
            ms.hash_v4_ports(a, b, 40000, 80),
            ms.hash_v4_ports(b, a, 80, 40000)
        );
    }

    #[test]
    fn keys_and_tables_are_checked() {
        assert!(Rss::new(vec![1; 15], vec![0]).is_err());
        assert!(Rss::new(MS_KEY.to_vec(), vec![]).is_err());
        assert_eq!(Rss::parse_key("6d:5A:00").unwrap(), vec![0x6d, 0x5a, 0]);
        assert!(Rss::parse_key("6d:zz").is_err());
        let r = Rss::new(MS_KEY.to_vec(), vec![0, 1, 2]).unwrap();
        assert_eq!(r.queue_of(5), 2);
        assert_eq!(queue_worker(3, 2), 1);
        assert_eq!(
            r.hash_v4(1, 7, 9, 1000, 2000),
            r.toeplitz().hash_v4(7, 9),
            "ICMP: the addresses only"
        );
    }

    proptest! {
        #[test]
        fn tables_equal_the_definition(key in proptest::collection::vec(any::<u8>(), 16..52),
                                        input in proptest::array::uniform12(any::<u8>())) {
            let t = Toeplitz::new(&key).unwrap();
            prop_assert_eq!(t.hash(&input), reference(&key, &input));
        }

        #[test]
        fn the_hash_is_linear_in_the_port(key in proptest::collection::vec(any::<u8>(), 40..41),
                                           s in any::<u32>(), d in any::<u32>(), sp in any::<u16>(), dp in any::<u16>()) {
            let t = Toeplitz::new(&key).unwrap();
            prop_assert_eq!(t.hash_v4_ports(s, d, sp, dp), t.hash_v4_ports(s, d, sp, 0) ^ t.dport_part(dp));
        }
    }
}
