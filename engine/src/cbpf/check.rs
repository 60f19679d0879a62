//! The checker: the rules of the kernel's `bpf_check_classic` (and
//! `check_load_and_stores`), applied to a program a client sent, before any
//! worker sees it. A program passes when it has 1..=4096 instructions, each
//! a known operation (the kernel's list, exact codes), every jump lands
//! forward inside the program, scratch indexes are below 16 and no scratch
//! word is read on a path that has not written it, constant divisors are not
//! 0 and constant shifts below 32, no load uses the kernel's ancillary
//! offsets (`SKF_AD_OFF`: libpcap emits them only for live Linux captures),
//! and the last instruction is a return.

use core::fmt;

use super::op::*;
use super::run::Step;
use super::{Insn, MAX_INSNS, MEM_WORDS};

/// The kernel's ancillary-data offset (`SKF_AD_OFF`): loads at or above it
/// read socket metadata, not the frame. Not supported here.
pub const ANCILLARY_OFF: u32 = 0xffff_f000;

/// Every opcode a program may use: the kernel's `chk_code_allowed` list.
#[rustfmt::skip]
pub const CODES: [u16; 49] = [
    ALU | ADD | K, ALU | ADD | X, ALU | SUB | K, ALU | SUB | X, ALU | MUL | K, ALU | MUL | X, ALU | DIV | K, ALU | DIV | X,
    ALU | MOD | K, ALU | MOD | X, ALU | AND | K, ALU | AND | X, ALU | OR | K, ALU | OR | X, ALU | XOR | K, ALU | XOR | X,
    ALU | LSH | K, ALU | LSH | X, ALU | RSH | K, ALU | RSH | X, ALU | NEG,
    LD | W | ABS, LD | H | ABS, LD | B | ABS, LD | W | LEN, LD | W | IND, LD | H | IND, LD | B | IND, LD | IMM, LD | MEM,
    LDX | W | LEN, LDX | B | MSH, LDX | IMM, LDX | MEM,
    ST, STX,
    MISC | TAX, MISC | TXA,
    RET | K, RET | RET_A,
    JMP | JA, JMP | JEQ | K, JMP | JEQ | X, JMP | JGE | K, JMP | JGE | X, JMP | JGT | K, JMP | JGT | X, JMP | JSET | K, JMP | JSET | X,
];

/// Why a program was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// No instructions.
    Empty,
    /// More than [`MAX_INSNS`] instructions.
    TooLong(usize),
    /// The compact text is not valid (base64, whole instructions).
    Encoding,
    /// An opcode the kernel's list does not have.
    UnknownOpcode(u16),
    /// A jump target at or past the end, or (a k that wraps) backwards.
    JumpOutOfRange,
    /// A scratch index of 16 or more.
    MemIndex(u32),
    /// A scratch word read where no write reaches it.
    MemUninitialized(u32),
    /// Division or modulo by the constant 0.
    DivideByZero,
    /// A constant shift of 32 bits or more.
    ShiftTooLong(u32),
    /// A load at the kernel's ancillary offsets.
    Ancillary(u32),
    /// The last instruction is not a return.
    NoFinalReturn,
}

/// A refusal: why, and at which instruction (none for the program as a whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    pub at: Option<usize>,
    pub why: Why,
}

impl Reject {
    fn at(pc: usize, why: Why) -> Reject {
        Reject { at: Some(pc), why }
    }

    fn whole(why: Why) -> Reject {
        Reject { at: None, why }
    }

    pub(super) fn encoding() -> Reject {
        Reject::whole(Why::Encoding)
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(pc) = self.at {
            write!(f, "instruction {pc}: ")?;
        }
        match self.why {
            Why::Empty => write!(f, "the program is empty"),
            Why::TooLong(n) => write!(f, "{n} instructions, more than {MAX_INSNS}"),
            Why::Encoding => write!(f, "not a program (base64 of 8-byte instructions expected)"),
            Why::UnknownOpcode(c) => write!(f, "unknown opcode {c:#06x}"),
            Why::JumpOutOfRange => {
                write!(f, "jump backwards or past the end (a program may not loop)")
            }
            Why::MemIndex(k) => write!(f, "scratch index {k} (0..{MEM_WORDS})"),
            Why::MemUninitialized(k) => write!(f, "scratch word {k} read before it is written"),
            Why::DivideByZero => write!(f, "division by the constant 0"),
            Why::ShiftTooLong(k) => write!(f, "shift by {k} bits"),
            Why::Ancillary(k) => write!(f, "ancillary load at {k:#x} (not supported)"),
            Why::NoFinalReturn => write!(f, "the last instruction is not a return"),
        }
    }
}

impl std::error::Error for Reject {}

/// Checks `insns` and decodes them into steps with absolute jump targets.
pub fn check(insns: &[Insn]) -> Result<Vec<Step>, Reject> {
    if insns.is_empty() {
        return Err(Reject::whole(Why::Empty));
    }
    if insns.len() > MAX_INSNS {
        return Err(Reject::whole(Why::TooLong(insns.len())));
    }
    let steps = insns
        .iter()
        .enumerate()
        .map(|(pc, i)| decode(pc, i, insns.len()))
        .collect::<Result<Vec<_>, _>>()?;
    if !matches!(steps.last(), Some(Step::RetK(_) | Step::RetA)) {
        return Err(Reject::at(insns.len() - 1, Why::NoFinalReturn));
    }
    scratch_written_before_read(&steps)?;
    Ok(steps)
}

/// One instruction: known code, operands in range, jump targets made absolute.
fn decode(pc: usize, i: &Insn, len: usize) -> Result<Step, Reject> {
    let k = i.k;
    let err = |why| Err(Reject::at(pc, why));
    let mem = |k: u32| {
        if (k as usize) < MEM_WORDS {
            Ok(k as u8)
        } else {
            Err(Reject::at(pc, Why::MemIndex(k)))
        }
    };
    let abs = |k: u32| {
        if k >= ANCILLARY_OFF {
            Err(Reject::at(pc, Why::Ancillary(k)))
        } else {
            Ok(k)
        }
    };
    // Targets are past pc by construction; in range is what needs checking.
    let target = |off: u32| -> Result<u16, Reject> {
        let t = pc as u64 + 1 + u64::from(off);
        if t < len as u64 {
            Ok(t as u16)
        } else {
            Err(Reject::at(pc, Why::JumpOutOfRange))
        }
    };
    let cond = || -> Result<(u16, u16), Reject> {
        Ok((target(u32::from(i.jt))?, target(u32::from(i.jf))?))
    };
    let divisor = |k: u32| {
        if k == 0 {
            Err(Reject::at(pc, Why::DivideByZero))
        } else {
            Ok(k)
        }
    };
    let shift = |k: u32| {
        if k >= 32 {
            Err(Reject::at(pc, Why::ShiftTooLong(k)))
        } else {
            Ok(k)
        }
    };
    const LD_W_ABS: u16 = LD | W | ABS;
    const LD_H_ABS: u16 = LD | H | ABS;
    const LD_B_ABS: u16 = LD | B | ABS;
    const LD_W_IND: u16 = LD | W | IND;
    const LD_H_IND: u16 = LD | H | IND;
    const LD_B_IND: u16 = LD | B | IND;
    const LD_W_LEN: u16 = LD | W | LEN;
    const LD_IMM: u16 = LD | IMM;
    const LD_MEM: u16 = LD | MEM;
    const LDX_W_LEN: u16 = LDX | W | LEN;
    const LDX_B_MSH: u16 = LDX | B | MSH;
    const LDX_IMM: u16 = LDX | IMM;
    const LDX_MEM: u16 = LDX | MEM;
    const ADD_K: u16 = ALU | ADD | K;
    const SUB_K: u16 = ALU | SUB | K;
    const MUL_K: u16 = ALU | MUL | K;
    const DIV_K: u16 = ALU | DIV | K;
    const MOD_K: u16 = ALU | MOD | K;
    const OR_K: u16 = ALU | OR | K;
    const AND_K: u16 = ALU | AND | K;
    const XOR_K: u16 = ALU | XOR | K;
    const LSH_K: u16 = ALU | LSH | K;
    const RSH_K: u16 = ALU | RSH | K;
    const ADD_X: u16 = ALU | ADD | X;
    const SUB_X: u16 = ALU | SUB | X;
    const MUL_X: u16 = ALU | MUL | X;
    const DIV_X: u16 = ALU | DIV | X;
    const MOD_X: u16 = ALU | MOD | X;
    const OR_X: u16 = ALU | OR | X;
    const AND_X: u16 = ALU | AND | X;
    const XOR_X: u16 = ALU | XOR | X;
    const LSH_X: u16 = ALU | LSH | X;
    const RSH_X: u16 = ALU | RSH | X;
    const NEG_: u16 = ALU | NEG;
    const JA_: u16 = JMP | JA;
    const JEQ_K: u16 = JMP | JEQ | K;
    const JGT_K: u16 = JMP | JGT | K;
    const JGE_K: u16 = JMP | JGE | K;
    const JSET_K: u16 = JMP | JSET | K;
    const JEQ_X: u16 = JMP | JEQ | X;
    const JGT_X: u16 = JMP | JGT | X;
    const JGE_X: u16 = JMP | JGE | X;
    const JSET_X: u16 = JMP | JSET | X;
    const RET_K: u16 = RET | K;
    const RET_A_: u16 = RET | RET_A;
    const TAX_: u16 = MISC | TAX;
    const TXA_: u16 = MISC | TXA;
    Ok(match i.code {
        LD_W_ABS => Step::LdAbsW(abs(k)?),
        LD_H_ABS => Step::LdAbsH(abs(k)?),
        LD_B_ABS => Step::LdAbsB(abs(k)?),
        LD_W_IND => Step::LdIndW(k),
        LD_H_IND => Step::LdIndH(k),
        LD_B_IND => Step::LdIndB(k),
        LD_W_LEN => Step::LdLen,
        LD_IMM => Step::LdImm(k),
        LD_MEM => Step::LdMem(mem(k)?),
        LDX_W_LEN => Step::LdxLen,
        LDX_B_MSH => Step::LdxMsh(k),
        LDX_IMM => Step::LdxImm(k),
        LDX_MEM => Step::LdxMem(mem(k)?),
        ST => Step::St(mem(k)?),
        STX => Step::Stx(mem(k)?),
        ADD_K => Step::AddK(k),
        SUB_K => Step::SubK(k),
        MUL_K => Step::MulK(k),
        DIV_K => Step::DivK(divisor(k)?),
        MOD_K => Step::ModK(divisor(k)?),
        OR_K => Step::OrK(k),
        AND_K => Step::AndK(k),
        XOR_K => Step::XorK(k),
        LSH_K => Step::LshK(shift(k)?),
        RSH_K => Step::RshK(shift(k)?),
        ADD_X => Step::AddX,
        SUB_X => Step::SubX,
        MUL_X => Step::MulX,
        DIV_X => Step::DivX,
        MOD_X => Step::ModX,
        OR_X => Step::OrX,
        AND_X => Step::AndX,
        XOR_X => Step::XorX,
        LSH_X => Step::LshX,
        RSH_X => Step::RshX,
        NEG_ => Step::Neg,
        JA_ => Step::Ja(target(k)?),
        JEQ_K => cond().map(|(t, f)| Step::JeqK(k, t, f))?,
        JGT_K => cond().map(|(t, f)| Step::JgtK(k, t, f))?,
        JGE_K => cond().map(|(t, f)| Step::JgeK(k, t, f))?,
        JSET_K => cond().map(|(t, f)| Step::JsetK(k, t, f))?,
        JEQ_X => cond().map(|(t, f)| Step::JeqX(t, f))?,
        JGT_X => cond().map(|(t, f)| Step::JgtX(t, f))?,
        JGE_X => cond().map(|(t, f)| Step::JgeX(t, f))?,
        JSET_X => cond().map(|(t, f)| Step::JsetX(t, f))?,
        RET_K => Step::RetK(k),
        RET_A_ => Step::RetA,
        TAX_ => Step::Tax,
        TXA_ => Step::Txa,
        other => return err(Why::UnknownOpcode(other)),
    })
}

/// The kernel's `check_load_and_stores`: one pass in program order (jumps
/// only go forward), the set of written scratch words carried along and
/// narrowed at every jump target to what every jump into it brings.
fn scratch_written_before_read(steps: &[Step]) -> Result<(), Reject> {
    let mut into = vec![u16::MAX; steps.len()];
    let mut valid: u16 = 0;
    for (pc, step) in steps.iter().enumerate() {
        valid &= into[pc];
        let mut narrow = |t: u16, valid: u16| {
            if let Some(m) = into.get_mut(usize::from(t)) {
                *m &= valid;
            }
        };
        match *step {
            Step::St(k) | Step::Stx(k) => valid |= 1 << k,
            Step::LdMem(k) | Step::LdxMem(k) if valid & (1 << k) == 0 => {
                return Err(Reject::at(pc, Why::MemUninitialized(u32::from(k))));
            }
            Step::Ja(t) => {
                narrow(t, valid);
                valid = u16::MAX;
            }
            Step::JeqK(_, t, f)
            | Step::JgtK(_, t, f)
            | Step::JgeK(_, t, f)
            | Step::JsetK(_, t, f)
            | Step::JeqX(t, f)
            | Step::JgtX(t, f)
            | Step::JgeX(t, f)
            | Step::JsetX(t, f) => {
                narrow(t, valid);
                narrow(f, valid);
                valid = u16::MAX;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{op, Insn, Program};
    use super::*;

    const RET0: Insn = Insn::new(RET | K, 0, 0, 0);

    fn refused(insns: &[Insn]) -> Reject {
        Program::new(insns).expect_err("accepted")
    }

    #[test]
    fn accepts_what_libpcap_writes() {
        // `tcpdump -d 'tcp port 80 and host 198.18.1.2'`, first and last steps.
        let p = Program::new(&[
            Insn::new(0x28, 0, 0, 12),
            Insn::new(0x15, 1, 0, 0x0800),
            Insn::new(0x06, 0, 0, 0),
            Insn::new(0x06, 0, 0, 0x40000),
        ])
        .unwrap();
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn length_is_one_to_4096() {
        assert_eq!(
            refused(&[]),
            Reject {
                at: None,
                why: Why::Empty
            }
        );
        let long = vec![RET0; MAX_INSNS + 1];
        assert_eq!(refused(&long).why, Why::TooLong(MAX_INSNS + 1));
        assert!(Program::new(&vec![RET0; MAX_INSNS]).is_ok());
        assert!(Program::new(&[RET0]).is_ok());
    }

    #[test]
    fn exactly_the_kernels_opcodes() {
        // Every 16-bit code: accepted (with operands that pass) exactly when it is in the list.
        for code in 0..=u16::MAX {
            let is_jump = code & 0x07 == JMP;
            let k = if is_jump { 0 } else { 1 };
            let known = Program::new(&[Insn::new(ST, 0, 0, 1), Insn::new(code, 0, 0, k), RET0])
                .map_or_else(|e| e.why != Why::UnknownOpcode(code), |_| true);
            assert_eq!(known, CODES.contains(&code), "{code:#06x}");
        }
    }

    #[test]
    fn unknown_opcodes() {
        // Codes the kernel's list lacks: a halfword immediate, RET X, a 64-bit class, BPF_MSH on LD.
        for code in [
            LD | H | IMM,
            RET | op::X,
            0x17,
            LD | B | MSH,
            ALU | NEG | X,
            JMP | JA | X,
            0xffff,
            MISC | 0x40,
        ] {
            assert_eq!(
                refused(&[Insn::new(code, 0, 0, 0), RET0]),
                Reject {
                    at: Some(0),
                    why: Why::UnknownOpcode(code)
                },
                "{code:#x}"
            );
        }
    }

    #[test]
    fn jumps_forward_and_inside() {
        // Conditional: either branch past the end.
        assert_eq!(
            refused(&[Insn::new(JMP | JEQ | K, 1, 0, 0), RET0]).why,
            Why::JumpOutOfRange
        );
        assert_eq!(
            refused(&[Insn::new(JMP | JEQ | K, 0, 1, 0), RET0]).why,
            Why::JumpOutOfRange
        );
        assert_eq!(
            refused(&[RET0, Insn::new(JMP | JSET | X, 255, 0, 0), RET0]).at,
            Some(1)
        );
        // Unconditional: k counts instructions, so a huge one would jump backwards if it wrapped.
        assert_eq!(
            refused(&[Insn::new(JMP | JA, 0, 0, 1), RET0]).why,
            Why::JumpOutOfRange
        );
        assert_eq!(
            refused(&[Insn::new(JMP | JA, 0, 0, u32::MAX), RET0]).why,
            Why::JumpOutOfRange
        );
        // The last in-range target is fine.
        assert!(Program::new(&[Insn::new(JMP | JA, 0, 0, 1), RET0, RET0]).is_ok());
        assert!(Program::new(&[Insn::new(JMP | JGE | K, 1, 0, 0), RET0, RET0]).is_ok());
    }

    #[test]
    fn scratch_index_below_16() {
        for code in [ST, STX, LD | MEM, LDX | MEM] {
            assert_eq!(
                refused(&[Insn::new(code, 0, 0, 16), RET0]),
                Reject {
                    at: Some(0),
                    why: Why::MemIndex(16)
                },
                "{code:#x}"
            );
        }
        assert!(
            Program::new(&[Insn::new(ST, 0, 0, 15), Insn::new(LD | MEM, 0, 0, 15), RET0]).is_ok()
        );
    }

    #[test]
    fn scratch_read_needs_a_write_on_every_path() {
        assert_eq!(
            refused(&[Insn::new(LD | MEM, 0, 0, 3), RET0]).why,
            Why::MemUninitialized(3)
        );
        // Written on one branch only: refused where the paths meet.
        let one_branch = [
            Insn::new(JMP | JEQ | K, 0, 1, 0),
            Insn::new(ST, 0, 0, 2),
            Insn::new(LDX | MEM, 0, 0, 2),
            RET0,
        ];
        assert_eq!(
            refused(&one_branch),
            Reject {
                at: Some(2),
                why: Why::MemUninitialized(2)
            }
        );
        // Written before the branch: fine.
        let before = [
            Insn::new(ST, 0, 0, 2),
            Insn::new(JMP | JEQ | K, 0, 0, 0),
            Insn::new(LDX | MEM, 0, 0, 2),
            RET0,
        ];
        assert!(Program::new(&before).is_ok());
    }

    #[test]
    fn constant_division_and_shift() {
        assert_eq!(
            refused(&[Insn::new(ALU | DIV | K, 0, 0, 0), RET0]).why,
            Why::DivideByZero
        );
        assert_eq!(
            refused(&[Insn::new(ALU | MOD | K, 0, 0, 0), RET0]).why,
            Why::DivideByZero
        );
        assert_eq!(
            refused(&[Insn::new(ALU | LSH | K, 0, 0, 32), RET0]).why,
            Why::ShiftTooLong(32)
        );
        assert_eq!(
            refused(&[Insn::new(ALU | RSH | K, 0, 0, 99), RET0]).why,
            Why::ShiftTooLong(99)
        );
        // By X is checked at run time (0 ends the run), so it passes here.
        assert!(Program::new(&[
            Insn::new(ALU | DIV | X, 0, 0, 0),
            Insn::new(ALU | LSH | K, 0, 0, 31),
            RET0
        ])
        .is_ok());
    }

    #[test]
    fn ancillary_loads() {
        let k = ANCILLARY_OFF + 4; // SKF_AD_PROTOCOL
        assert_eq!(
            refused(&[Insn::new(LD | B | ABS, 0, 0, k), RET0]).why,
            Why::Ancillary(k)
        );
        assert_eq!(
            refused(&[Insn::new(LD | W | ABS, 0, 0, u32::MAX), RET0]).why,
            Why::Ancillary(u32::MAX)
        );
    }

    #[test]
    fn ends_with_a_return() {
        assert_eq!(
            refused(&[Insn::new(LD | IMM, 0, 0, 1)]),
            Reject {
                at: Some(0),
                why: Why::NoFinalReturn
            }
        );
        assert_eq!(
            refused(&[RET0, Insn::new(MISC | TAX, 0, 0, 0)]).why,
            Why::NoFinalReturn
        );
        assert!(Program::new(&[Insn::new(RET | op::RET_A, 0, 0, 0)]).is_ok());
    }

    #[test]
    fn messages_say_where_and_why() {
        let e = refused(&[RET0, Insn::new(ALU | DIV | K, 0, 0, 0), RET0]);
        assert_eq!(e.to_string(), "instruction 1: division by the constant 0");
        assert_eq!(refused(&[]).to_string(), "the program is empty");
    }
}
