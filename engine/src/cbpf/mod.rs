//! Classic BPF (the `tcpdump` filter language's machine code): the checked
//! [`Program`] that `ctl capture --filter` hands the workers, and its
//! interpreter.
//!
//! The expression is compiled by libpcap in the `pktengine ctl` client
//! (`control::capture::compile_filter`), never in the engine: libpcap's
//! parser does not run in the privileged process on input a client chose.
//! The engine receives instructions ([`Insn`], in the compact text of
//! [`encode`]) and trusts none of them: [`Program::new`] checks them as the
//! kernel's `bpf_check_classic` does ([`check`]) and keeps a decoded form
//! whose jump targets are absolute and always forward, so [`Program::run`]
//! executes at most one step per instruction, never panics and never leaves
//! the frame ([`run`]). Its results equal libpcap's `bpf_filter` (a
//! property test compares them on many expressions and frames).
//!
//! Floor 1: no packet policy, imports nothing of the engine.

pub mod check;
pub mod compile;
pub mod encode;
pub mod run;

pub use check::Reject;

/// The most instructions a program may have (the kernel's and libpcap's
/// `BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// Scratch memory words (`BPF_MEMWORDS`).
pub const MEM_WORDS: usize = 16;

/// One classic BPF instruction as libpcap and the kernel lay it out
/// (`struct bpf_insn`, `struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Insn {
    pub const fn new(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }
}

/// Opcode fields (`<pcap/bpf.h>`, `<linux/filter.h>`).
pub mod op {
    // Classes.
    pub const LD: u16 = 0x00;
    pub const LDX: u16 = 0x01;
    pub const ST: u16 = 0x02;
    pub const STX: u16 = 0x03;
    pub const ALU: u16 = 0x04;
    pub const JMP: u16 = 0x05;
    pub const RET: u16 = 0x06;
    pub const MISC: u16 = 0x07;
    // Load sizes.
    pub const W: u16 = 0x00;
    pub const H: u16 = 0x08;
    pub const B: u16 = 0x10;
    // Load modes.
    pub const IMM: u16 = 0x00;
    pub const ABS: u16 = 0x20;
    pub const IND: u16 = 0x40;
    pub const MEM: u16 = 0x60;
    pub const LEN: u16 = 0x80;
    pub const MSH: u16 = 0xa0;
    // ALU operations.
    pub const ADD: u16 = 0x00;
    pub const SUB: u16 = 0x10;
    pub const MUL: u16 = 0x20;
    pub const DIV: u16 = 0x30;
    pub const OR: u16 = 0x40;
    pub const AND: u16 = 0x50;
    pub const LSH: u16 = 0x60;
    pub const RSH: u16 = 0x70;
    pub const NEG: u16 = 0x80;
    pub const MOD: u16 = 0x90;
    pub const XOR: u16 = 0xa0;
    // Jumps.
    pub const JA: u16 = 0x00;
    pub const JEQ: u16 = 0x10;
    pub const JGT: u16 = 0x20;
    pub const JGE: u16 = 0x30;
    pub const JSET: u16 = 0x40;
    // Operand source: the constant k or the X register.
    pub const K: u16 = 0x00;
    pub const X: u16 = 0x08;
    // Return value: k or the A register.
    pub const RET_A: u16 = 0x10;
    // Register moves.
    pub const TAX: u16 = 0x00;
    pub const TXA: u16 = 0x80;
}

/// A checked program, decoded for the interpreter. Only [`Program::new`]
/// makes one, so every `Program` has 1..=[`MAX_INSNS`] steps, known
/// operations, forward in-range jumps, scratch indexes below 16, no read of
/// a scratch word before a write, no constant division by zero and a final
/// return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    steps: Box<[run::Step]>,
    /// Whether any step stores to scratch memory.
    scratch: bool,
}

impl Program {
    /// Checks `insns` (as the kernel's `bpf_check_classic`) and decodes them.
    pub fn new(insns: &[Insn]) -> Result<Program, Reject> {
        let steps = check::check(insns)?;
        let scratch = steps
            .iter()
            .any(|s| matches!(s, run::Step::St(_) | run::Step::Stx(_)));
        Ok(Program {
            steps: steps.into_boxed_slice(),
            scratch,
        })
    }

    /// Decodes [`encode::encode`]'s text and checks the program.
    pub fn decode(text: &str) -> Result<Program, Reject> {
        Program::new(&encode::decode(text)?)
    }

    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Never true (a program has at least one instruction); for clippy.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether the program accepts `frame` (returns non-zero), as libpcap's
    /// `pcap_offline_filter` decides.
    #[inline]
    pub fn matches(&self, frame: &[u8]) -> bool {
        self.run(frame) != 0
    }

    /// Runs the program on `frame` (its length is the wire length) and
    /// returns what it returns: the number of bytes to keep, 0 for no match.
    #[inline]
    pub fn run(&self, frame: &[u8]) -> u32 {
        run::run(&self.steps, frame, self.scratch)
    }
}
