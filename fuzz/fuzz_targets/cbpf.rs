//! Capture filters (`ctl capture --filter`): any program a client could send
//! is refused by the checker or runs on any frame without a panic, to a
//! return value that depends only on the frame; the compact text decoder
//! refuses bad text or decodes what re-encodes to the same text.
//!
//! Input: one byte n, then n instructions of 8 bytes, then the frame. An
//! instruction's code is mostly taken from the kernel's list (the byte picks
//! one) so that many programs pass the checker; with its second byte 0xff
//! the raw 16-bit code is used, to test refusals too.
#![no_main]

use engine::cbpf::check::CODES;
use engine::cbpf::{encode, Insn, Program};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(insns) = encode::decode(text) {
            assert_eq!(encode::encode(&insns), text);
        }
    }
    let Some((&n, rest)) = data.split_first() else { return };
    let n = (usize::from(n) * 8).min(rest.len() / 8 * 8);
    let (prog, frame) = rest.split_at(n);
    let insns: Vec<Insn> = prog
        .chunks_exact(8)
        .map(|b| {
            let code = if b[1] == 0xff { u16::from_le_bytes([b[0], b[1]]) } else { CODES[usize::from(b[0]) % CODES.len()] };
            // Small operands most of the time, so loads land in the frame and scratch indexes are valid.
            let k = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            let k = if b[7] & 0x80 == 0 { k % 64 } else { k };
            Insn::new(code, b[2] % 8, b[3] % 8, k)
        })
        .collect();
    match Program::new(&insns) {
        Ok(p) => {
            assert_eq!(p.len(), insns.len());
            let v = p.run(frame);
            assert_eq!(v, p.run(frame));
            assert_eq!(p.matches(frame), v != 0);
            // The text the client sends decodes to the same program.
            assert_eq!(Program::decode(&encode::encode(&insns)).as_ref(), Ok(&p));
        }
        Err(e) => {
            assert!(e.at.is_none_or(|at| at < insns.len()), "{e}");
            let _ = e.to_string();
        }
    }
});
