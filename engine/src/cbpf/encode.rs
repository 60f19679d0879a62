//! The compact text a program travels in over the ctl socket: each
//! instruction as 8 bytes (code as 16-bit little-endian, jt, jf, k as 32-bit
//! little-endian), the whole in standard base64 with padding. A program of
//! the largest size (4,096 instructions, 32 KiB) is 43,692 characters, so a
//! capture request with one stays under the engine's 64 KiB request limit
//! (`control::ctl::MAX_REQUEST`); decimal `code jt jf k` lines, as
//! `tcpdump -ddd` prints them, would need up to 100 KiB.

use super::{Insn, Reject, MAX_INSNS};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Bytes per instruction.
const INSN_BYTES: usize = 8;

/// The longest text [`decode`] reads (a program of [`MAX_INSNS`]).
pub const MAX_TEXT: usize = (MAX_INSNS * INSN_BYTES).div_ceil(3) * 4;

/// `insns` as compact text.
pub fn encode(insns: &[Insn]) -> String {
    let mut bytes = Vec::with_capacity(insns.len() * INSN_BYTES);
    for i in insns {
        bytes.extend_from_slice(&i.code.to_le_bytes());
        bytes.push(i.jt);
        bytes.push(i.jf);
        bytes.extend_from_slice(&i.k.to_le_bytes());
    }
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn sextet(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

/// Instructions from compact text. Refuses text longer than a program of
/// [`MAX_INSNS`] before decoding anything, anything but canonical padded
/// base64, and byte counts that are not whole instructions. The program is
/// not checked here: [`super::Program::new`] does that.
pub fn decode(text: &str) -> Result<Vec<Insn>, Reject> {
    let t = text.as_bytes();
    if t.len() > MAX_TEXT {
        return Err(Reject {
            at: None,
            why: super::check::Why::TooLong(t.len().div_ceil(4) * 3 / INSN_BYTES),
        });
    }
    if t.len() % 4 != 0 {
        return Err(Reject::encoding());
    }
    let mut bytes = Vec::with_capacity(t.len() / 4 * 3);
    for (q, quad) in t.chunks(4).enumerate() {
        let last = q + 1 == t.len() / 4;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return Err(Reject::encoding());
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = n << 6 | sextet(c).ok_or_else(Reject::encoding)?;
        }
        n <<= 6 * pad as u32;
        let got = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // Canonical: the bits the padding stands for are zero.
        if got[3 - pad..].iter().any(|&b| b != 0) {
            return Err(Reject::encoding());
        }
        bytes.extend_from_slice(&got[..3 - pad]);
    }
    if bytes.len() % INSN_BYTES != 0 {
        return Err(Reject::encoding());
    }
    Ok(bytes
        .chunks_exact(INSN_BYTES)
        .map(|b| Insn {
            code: u16::from_le_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_text() {
        // ldh [12]; ret #0 (as tcpdump -dd: { 0x28, 0, 0, 0x0000000c }, { 0x6, 0, 0, 0x00000000 }).
        let insns = [Insn::new(0x28, 0, 0, 12), Insn::new(0x06, 0, 0, 0)];
        let text = encode(&insns);
        assert_eq!(text, "KAAAAAwAAAAGAAAAAAAAAA==");
        assert_eq!(decode(&text).unwrap(), insns);
    }

    #[test]
    fn the_largest_program_fits_a_request() {
        let text = encode(&vec![Insn::new(0xffff, 255, 255, u32::MAX); MAX_INSNS]);
        assert_eq!(text.len(), MAX_TEXT);
        assert_eq!(MAX_TEXT, 43_692);
        assert_eq!(decode(&text).unwrap().len(), MAX_INSNS);
    }

    #[test]
    fn refuses_bad_text() {
        for bad in [
            "KAAAAAwAAAAGAAAAAAAAAA=",
            "KAAAAAwAAAAGAAAAAAAAAA=A",
            "KAAA!AwAAAAGAAAAAAAAAA==",
            "KAAAAAwAAAAGAAAAAAAAAB==",
            "KAAA",
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
        assert!(decode("").unwrap().is_empty());
        let long = "A".repeat(MAX_TEXT + 4);
        assert!(matches!(
            decode(&long),
            Err(Reject {
                why: crate::cbpf::check::Why::TooLong(_),
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(raw in proptest::collection::vec((any::<u16>(), any::<u8>(), any::<u8>(), any::<u32>()), 0..64)) {
            let insns: Vec<Insn> = raw.into_iter().map(|(c, t, f, k)| Insn::new(c, t, f, k)).collect();
            prop_assert_eq!(decode(&encode(&insns)).unwrap(), insns);
        }

        #[test]
        fn decode_never_panics(s in "[A-Za-z0-9+/=!]{0,80}") {
            let _ = decode(&s);
        }
    }
}
