//! Connection tracking's state machine: what nftables' `ct state` sees of a
//! connection, per entry of the connection table (`table`), for the
//! stateful packet filter.
//!
//! A [`Track`] lives in every entry (a NAT session or a plain tracked flow)
//! and follows nf_conntrack (Linux 6.x, `nf_conntrack_proto_tcp.c` and the
//! UDP, ICMP and generic trackers):
//!
//! - **TCP**: the same states (`SYN_SENT`, `SYN_RECV`, `ESTABLISHED`,
//!   `FIN_WAIT`, `CLOSE_WAIT`, `LAST_ACK`, `TIME_WAIT`, `CLOSE`,
//!   `SYN_SENT2`) and transition table per direction and segment kind
//!   (SYN, SYN-ACK, FIN, ACK, RST, none), "ignored" segments (a SYN in an
//!   established connection passes without changing the entry), reopening
//!   from `TIME_WAIT`/`CLOSE`, and the window check below. A segment the
//!   table or the window refuses is **invalid** and changes nothing.
//! - **UDP**: any datagram opens an entry; 30 s until a reply, 120 s
//!   ("stream") for a flow that saw a reply and is older than 2 s.
//! - **ICMP/ICMPv6 queries**: a request (echo, timestamp, information,
//!   address mask; ICMPv6 echo and node information) opens an entry keyed by
//!   its id; a reply without one is invalid. 30 s.
//! - **Other protocols**: by addresses and protocol, 600 s.
//!
//! The state of a packet (`ct_state` bits, what a rule matches): **new**
//! while the entry has seen traffic in its original direction only (the
//! first packet included), **established** for the reply direction and for
//! everything once a reply was seen, **related** for an ICMP error quoting
//! a tracked packet (decided by the caller, which looks up the quoted flow),
//! **invalid** for what no entry can take.
//!
//! ## The window check (loose, as nf_conntrack's `tcp_in_window`)
//!
//! Per direction the tracker keeps `end` (highest `seq + len` sent),
//! `maxend` (highest `ack + window` the other side advertised), `maxwin`
//! (largest window the sender was offered) and `maxack`. A segment with
//! `seq`, `end = seq + len (+1 for SYN, FIN)` and acknowledgment `ack`
//! (the highest SACK edge when the receiver allowed SACK) must satisfy
//!
//! ```text
//!  I    seq <= sender.maxend                               (else invalid)
//!  II   end >= sender.end - receiver.maxwin                (else ignored: a retransmission)
//!  III  ack <= receiver.end                                (else invalid: acks unsent data)
//!  IV   ack >= receiver.end - max(sender.maxwin, 66000)    (else ignored: a very late ACK)
//! ```
//!
//! with windows scaled as negotiated (RFC 7323: only when both SYNs carried
//! the option). A segment over I by no more than the receiver's window,
//! that passes the others, is ignored but moves `end` (stacks that send
//! beyond the window). "Ignored" means passed with the entry's state but
//! not used to update it, as nf_conntrack's `NFCT_TCP_IGNORE`. With
//! `tcp_be_liberal` every failed check passes (without an update), and a
//! connection picked up in the middle (`tcp_loose`) is checked liberally.
//!
//! Where this departs from nf_conntrack (all documented in
//! docs/ARCHITECTURE.md, "Stateful filtering"):
//! - `tcp_loose` defaults to **off** (Linux: on): a segment of no tracked
//!   connection that is not a SYN is invalid, not picked up as established.
//!   The netns reference test sets `nf_conntrack_tcp_loose = 0` on the
//!   kernel router to compare.
//! - No retransmission counting (`nf_conntrack_tcp_max_retrans` and its 300 s
//!   time-out) and no zero-window time-out; the unacknowledged-data time-out
//!   (300 s instead of 5 days while data is outstanding) is kept.
//! - An invalid FIN or RST does not shorten the entry's time-out
//!   (`nf_tcp_handle_invalid`).
//! - No checksum verification (the kernel skips it for offloaded packets,
//!   which is what veth delivers; the engine does not re-sum payloads).
//! - No helpers or expectations (FTP, SIP, ...): `related` covers ICMP
//!   errors only.
//!
//! Everything here is plain data and pure functions over it: no clock (the
//! caller passes `now`), no allocation, no panics on any input.

/// Packet state bits as `ct state` rules match them.
pub mod ct_state {
    pub const NEW: u8 = 1;
    pub const ESTABLISHED: u8 = 2;
    pub const RELATED: u8 = 4;
    pub const INVALID: u8 = 8;

    /// The bit of `name` (`new`, `established`, `related`, `invalid`).
    pub fn parse(name: &str) -> Option<u8> {
        Some(match name {
            "new" => NEW,
            "established" => ESTABLISHED,
            "related" => RELATED,
            "invalid" => INVALID,
            _ => return None,
        })
    }

    /// The names of the bits in `v`, comma-separated.
    pub fn names(v: u8) -> String {
        let mut out = Vec::new();
        for (b, n) in [
            (NEW, "new"),
            (ESTABLISHED, "established"),
            (RELATED, "related"),
            (INVALID, "invalid"),
        ] {
            if v & b != 0 {
                out.push(n);
            }
        }
        out.join(",")
    }
}

/// TCP connection states, nf_conntrack's (`TCP_CONNTRACK_*`), in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum TcpState {
    #[default]
    None = 0,
    SynSent = 1,
    SynRecv = 2,
    Established = 3,
    FinWait = 4,
    CloseWait = 5,
    LastAck = 6,
    TimeWait = 7,
    Close = 8,
    SynSent2 = 9,
}

impl TcpState {
    pub const ALL: [TcpState; 10] = [
        TcpState::None,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::Established,
        TcpState::FinWait,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::SynSent2,
    ];

    fn from_u8(v: u8) -> TcpState {
        TcpState::ALL
            .get(usize::from(v))
            .copied()
            .unwrap_or_default()
    }

    /// The name `conntrack -L` prints.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::SynSent2 => "SYN_SENT2",
        }
    }
}

/// Time-out classes: an entry's class picks its idle time-out from
/// [`Timeouts`]. The TCP classes are the states' numbers.
pub mod class {
    pub const TCP_SYN_SENT: u8 = 1;
    pub const TCP_SYN_RECV: u8 = 2;
    pub const TCP_ESTABLISHED: u8 = 3;
    pub const TCP_FIN_WAIT: u8 = 4;
    pub const TCP_CLOSE_WAIT: u8 = 5;
    pub const TCP_LAST_ACK: u8 = 6;
    pub const TCP_TIME_WAIT: u8 = 7;
    pub const TCP_CLOSE: u8 = 8;
    pub const TCP_SYN_SENT2: u8 = 9;
    /// Data outstanding in either direction (caps the established time-out).
    pub const TCP_UNACK: u8 = 10;
    pub const UDP: u8 = 11;
    pub const UDP_STREAM: u8 = 12;
    pub const ICMP: u8 = 13;
    pub const GENERIC: u8 = 14;
    pub const COUNT: usize = 15;
}

/// Idle time-outs per class, in ms; the defaults are nf_conntrack's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub ms: [u64; class::COUNT],
}

impl Default for Timeouts {
    fn default() -> Self {
        let s = |v: u64| v * 1000;
        let mut ms = [0; class::COUNT];
        ms[usize::from(class::TCP_SYN_SENT)] = s(120);
        ms[usize::from(class::TCP_SYN_RECV)] = s(60);
        ms[usize::from(class::TCP_ESTABLISHED)] = s(5 * 24 * 3600);
        ms[usize::from(class::TCP_FIN_WAIT)] = s(120);
        ms[usize::from(class::TCP_CLOSE_WAIT)] = s(60);
        ms[usize::from(class::TCP_LAST_ACK)] = s(30);
        ms[usize::from(class::TCP_TIME_WAIT)] = s(120);
        ms[usize::from(class::TCP_CLOSE)] = s(10);
        ms[usize::from(class::TCP_SYN_SENT2)] = s(120);
        ms[usize::from(class::TCP_UNACK)] = s(300);
        ms[usize::from(class::UDP)] = s(30);
        ms[usize::from(class::UDP_STREAM)] = s(120);
        ms[usize::from(class::ICMP)] = s(30);
        ms[usize::from(class::GENERIC)] = s(600);
        // Class 0 (an entry never tracked) lives as long as the generic one.
        ms[0] = s(600);
        Timeouts { ms }
    }
}

impl Timeouts {
    #[inline]
    pub fn get(&self, c: u8) -> u64 {
        self.ms.get(usize::from(c)).copied().unwrap_or(self.ms[0])
    }
}

/// How the tracker behaves (`[conntrack]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrackConfig {
    pub timeouts: Timeouts,
    /// Pick up TCP connections in the middle (a non-SYN of no entry opens one, checked liberally).
    pub tcp_loose: bool,
    /// Never call a TCP segment invalid for its window.
    pub tcp_be_liberal: bool,
}

// ---- TCP segments --------------------------------------------------------------

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;

/// What the tracker needs of a TCP segment (parsed by `conntrack::packet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seg {
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub win: u16,
    /// Payload bytes.
    pub len: u32,
    /// The header has options (`tcp_options` resets a side's scale only then).
    pub has_opts: bool,
    /// The window scale option's shift, if present.
    pub wscale: Option<u8>,
    pub sack_perm: bool,
    /// The highest right edge of the SACK blocks, if any.
    pub sack: Option<u32>,
}

impl Seg {
    /// `seq + len`, plus one for SYN and one for FIN.
    #[inline]
    pub fn end(&self) -> u32 {
        self.seq
            .wrapping_add(self.len)
            .wrapping_add(u32::from(self.flags & SYN != 0))
            .wrapping_add(u32::from(self.flags & FIN != 0))
    }

    /// A flag combination a TCP may send (nf_conntrack's `tcp_valid_flags`:
    /// PSH, ECE and CWR are always allowed).
    pub fn flags_valid(&self) -> bool {
        let f = self.flags & (FIN | SYN | RST | ACK | URG);
        matches!(
            f,
            x if x == SYN
                || x == SYN | URG
                || x == SYN | ACK
                || x == RST
                || x == RST | ACK
                || x == FIN | ACK
                || x == FIN | ACK | URG
                || x == ACK
                || x == ACK | URG
        )
    }
}

/// The segment kinds of the transition table.
const I_SYN: u8 = 0;
const I_SYNACK: u8 = 1;
const I_FIN: u8 = 2;
const I_ACK: u8 = 3;
const I_RST: u8 = 4;
const I_NONE: u8 = 5;

#[inline]
fn index(flags: u8) -> u8 {
    if flags & RST != 0 {
        I_RST
    } else if flags & SYN != 0 {
        if flags & ACK != 0 {
            I_SYNACK
        } else {
            I_SYN
        }
    } else if flags & FIN != 0 {
        I_FIN
    } else if flags & ACK != 0 {
        I_ACK
    } else {
        I_NONE
    }
}

const NO: u8 = 0;
const SS: u8 = 1;
const SR: u8 = 2;
const ES: u8 = 3;
const FW: u8 = 4;
const CW: u8 = 5;
const LA: u8 = 6;
const TW: u8 = 7;
const CL: u8 = 8;
const S2: u8 = 9;
/// Invalid.
const IV: u8 = 10;
/// Ignored: passes, changes nothing.
const IG: u8 = 11;

/// nf_conntrack's `tcp_conntracks[direction][segment kind][state]`.
#[rustfmt::skip]
const TABLE: [[[u8; 10]; 6]; 2] = [
    [
        //          NO  SS  SR  ES  FW  CW  LA  TW  CL  S2
        /* syn    */ [SS, SS, IG, IG, IG, IG, IG, SS, SS, S2],
        /* synack */ [IV, IV, SR, IV, IV, IV, IV, IV, IV, SR],
        /* fin    */ [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV],
        /* ack    */ [ES, IV, ES, ES, CW, CW, TW, TW, CL, IV],
        /* rst    */ [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        /* none   */ [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
    ],
    [
        //          NO  SS  SR  ES  FW  CW  LA  TW  CL  S2
        /* syn    */ [IV, S2, IV, IV, IV, IV, IV, SS, IV, S2],
        /* synack */ [IV, SR, IG, IG, IG, IG, IG, IG, IG, SR],
        /* fin    */ [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV],
        /* ack    */ [IV, IG, SR, ES, CW, CW, TW, TW, CL, IG],
        /* rst    */ [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        /* none   */ [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
    ],
];

// Per-direction flags (nf_conntrack's IP_CT_TCP_FLAG_*).
const F_WSCALE: u8 = 0x01;
const F_SACK_PERM: u8 = 0x02;
const F_CLOSE_INIT: u8 = 0x04;
const F_BE_LIBERAL: u8 = 0x08;
const F_DATA_UNACK: u8 = 0x10;
const F_MAXACK_SET: u8 = 0x20;

// `last_flags` bits.
const L_CHALLENGE_ACK: u8 = 0x40;
const L_SIMULTANEOUS: u8 = 0x80;

/// One direction's sequence space as the tracker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Side {
    pub end: u32,
    pub maxend: u32,
    pub maxwin: u32,
    pub maxack: u32,
    pub scale: u8,
    pub flags: u8,
}

// Entry status bits.
/// A packet in the reply direction was seen.
pub const SEEN_REPLY: u8 = 1;
/// The connection is assured (TCP: established both ways; UDP: a stream):
/// never evicted to make room.
pub const ASSURED: u8 = 2;
/// The entry's original direction is the table entry's second side (a NAT
/// session opened from outside, or reopened by its remote end).
pub const FLIP: u8 = 4;
/// The tracker has seen a packet of this entry (a NAT session made before
/// the filter became stateful has not).
pub const TRACKED: u8 = 8;

/// The tracker's part of a connection table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Track {
    /// [`TcpState`] as a byte (0 for other protocols).
    pub tcp: u8,
    pub status: u8,
    /// The time-out [`class`].
    pub class: u8,
    /// Last segment kind (low 3 bits), its direction (bit 3), and the `L_*` flags.
    last: u8,
    last_end: u32,
    last_ack: u32,
    last_win: u16,
    last_wscale: u8,
    /// Options of an ignored SYN (`F_WSCALE`, `F_SACK_PERM`).
    last_opts: u8,
    pub seen: [Side; 2],
}

/// What the tracker made of a TCP segment of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// In window: the entry moved; `refresh` says whether its idle time restarts.
    Accept { refresh: bool },
    /// Passed with the entry's state, the entry unchanged.
    Ignore,
    /// Invalid: the entry is unchanged.
    Invalid,
    /// A SYN reopening a closed connection: remove the entry and track the
    /// segment as a new connection.
    Reopen,
    /// Passed; the entry goes now (a RST answered before any reply).
    Close,
}

#[inline]
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

#[inline]
fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

const MAXACKWINCONST: u32 = 66_000;

#[inline]
fn max_ack_window(s: &Side) -> u32 {
    s.maxwin.max(MAXACKWINCONST)
}

impl Track {
    pub fn state(&self) -> TcpState {
        TcpState::from_u8(self.tcp)
    }

    #[inline]
    fn last_index(&self) -> u8 {
        self.last & 0x07
    }

    #[inline]
    fn last_dir(&self) -> usize {
        usize::from(self.last >> 3 & 1)
    }

    #[inline]
    fn set_last(&mut self, index: u8, dir: usize) {
        self.last = (self.last & 0xf0) | index | (dir as u8 & 1) << 3;
    }

    /// The entry a TCP segment opens, or None when it may not open one (not
    /// a SYN, unless `tcp_loose`): nf_conntrack's `tcp_new`. The caller then
    /// runs [`Track::tcp_packet`] on the same segment in the original direction.
    pub fn tcp_new(seg: &Seg, cfg: &TrackConfig) -> Option<Track> {
        if !seg.flags_valid() {
            return None;
        }
        let new = TABLE[0][usize::from(index(seg.flags))][usize::from(NO)];
        let mut t = Track {
            status: TRACKED,
            last: I_NONE,
            ..Track::default()
        };
        let end = seg.end();
        let win = u32::from(seg.win).max(1);
        if new == SS {
            let s = &mut t.seen[0];
            s.end = end;
            s.maxwin = win;
            s.maxend = end;
            options(s, seg);
        } else if new == ES && cfg.tcp_loose {
            // A connection picked up in the middle: its scale is unknown, so check liberally.
            t.seen[0] = Side {
                end,
                maxend: end.wrapping_add(win),
                maxwin: win,
                flags: F_SACK_PERM | F_BE_LIBERAL,
                ..Side::default()
            };
            t.seen[1].flags = F_SACK_PERM | F_BE_LIBERAL;
        } else {
            return None;
        }
        Some(t)
    }

    /// A TCP connection the tracker meets in the middle (a NAT session made
    /// before the filter became stateful): established, checked liberally
    /// (its windows and scales are unknown); `status` bits kept.
    pub fn picked_up(status: u8) -> Track {
        let side = Side {
            flags: F_SACK_PERM | F_BE_LIBERAL,
            ..Side::default()
        };
        Track {
            tcp: ES,
            status: status | TRACKED,
            class: class::TCP_ESTABLISHED,
            last: I_NONE,
            seen: [side, side],
            ..Track::default()
        }
    }

    /// An entry of another protocol, from its first packet.
    pub fn other_new(class: u8) -> Track {
        Track {
            status: TRACKED,
            class,
            ..Track::default()
        }
    }

    /// The `ct_state` bit of a packet in direction `dir` (0: original)
    /// before it is tracked: reply packets and everything after a reply are
    /// established, the rest new.
    #[inline]
    pub fn packet_state(&self, dir: usize) -> u8 {
        if dir == 1 || self.status & SEEN_REPLY != 0 {
            ct_state::ESTABLISHED
        } else {
            ct_state::NEW
        }
    }

    /// After a packet in direction `dir` was accepted by the tracker.
    #[inline]
    pub fn seen(&mut self, dir: usize) {
        if dir == 1 {
            self.status |= SEEN_REPLY;
        }
    }

    /// A UDP datagram, ICMP query or other packet of this entry, in
    /// direction `dir`, `age_ms` after the entry was made: its time-out class.
    pub fn other_packet(&mut self, proto_class: u8, age_ms: u64) {
        self.class = match proto_class {
            class::UDP if self.status & SEEN_REPLY != 0 && age_ms > 2000 => {
                self.status |= ASSURED;
                class::UDP_STREAM
            }
            c => c,
        };
    }

    /// A TCP segment of this entry in direction `dir` (0: original):
    /// nf_conntrack's `tcp_packet` with its window check.
    pub fn tcp_packet(&mut self, dir: usize, seg: &Seg, cfg: &TrackConfig) -> Verdict {
        if !seg.flags_valid() {
            return Verdict::Invalid;
        }
        let dir = dir & 1;
        let mut old = self.tcp.min(S2);
        let idx = index(seg.flags);
        let mut new = TABLE[dir][usize::from(idx)][usize::from(old)];
        let mut check_window = true;
        match new {
            SS if old >= TW => {
                let closing = (self.seen[0].flags | self.seen[1].flags) & F_CLOSE_INIT != 0;
                if closing || (self.last_dir() == dir && self.last_index() == I_RST) {
                    return Verdict::Reopen;
                }
                return self.ignore(old, dir, idx, seg);
            }
            IG => {
                if idx == I_SYNACK
                    && self.last_index() == I_SYN
                    && self.last_dir() != dir
                    && seg.ack == self.last_end
                {
                    // This SYN-ACK answers a SYN we ignored: client and server
                    // are in sync, the entry is not. Take the SYN's values.
                    let ld = self.last_dir();
                    let s = &mut self.seen[ld];
                    s.end = self.last_end;
                    s.maxend = self.last_end;
                    s.maxwin = u32::from(self.last_win).max(1);
                    s.scale = self.last_wscale;
                    s.flags = self.last_opts;
                    self.last &= !L_CHALLENGE_ACK;
                    let o = &mut self.seen[dir];
                    *o = Side {
                        flags: o.flags & F_BE_LIBERAL,
                        ..Side::default()
                    };
                    old = SS;
                    new = SR;
                } else {
                    return self.ignore(old, dir, idx, seg);
                }
            }
            IV => return Verdict::Invalid,
            TW if old == LA
                && idx == I_ACK
                && self.last_dir() != dir
                && self.last_index() == I_SYN
                && self.last & L_CHALLENGE_ACK != 0 =>
            {
                // An RFC 5961 challenge ACK to a spurious SYN, not the last ACK.
                self.last &= !L_CHALLENGE_ACK;
                return Verdict::Ignore;
            }
            S2 => self.last |= L_SIMULTANEOUS,
            SR if dir == 1 && idx == I_ACK && self.last & L_SIMULTANEOUS != 0 => new = ES,
            CL if idx == I_RST => {
                if matches!(old, FW | LA | TW | CL | CW) {
                    check_window = false;
                } else {
                    let other = self.seen[1 - dir];
                    let established = old == ES;
                    let mut decided = false;
                    if other.flags & F_MAXACK_SET != 0 && self.last_index() != I_SYN {
                        let train = self.last_index() == I_ACK
                            && self.last_dir() == dir
                            && seg.seq == self.last_end;
                        if seg.seq == 0 && !established {
                            decided = true;
                        } else if before(seg.seq, other.maxack) {
                            return Verdict::Invalid;
                        } else if !established || seg.seq == other.maxack || train {
                            // Exactly where expected, or right after the sender's last segment.
                            decided = true;
                        } else {
                            // Not exactly at the expected sequence: keep the
                            // state, the peer may send a challenge ACK.
                            new = old;
                        }
                    }
                    if !decided {
                        let seen_reply = self.status & SEEN_REPLY != 0;
                        let assured = self.status & ASSURED != 0;
                        if ((seen_reply && self.last_index() == I_SYN)
                            || (!assured && self.last_index() == I_ACK))
                            && seg.ack == self.last_end
                        {
                            // A RST to a SYN or ACK we let through unchecked.
                            check_window = false;
                        } else if old == SS
                            && self.last_index() == I_ACK
                            && self.last_dir() == 1
                            && seg.seq == self.last_ack
                        {
                            // A RST to a challenge ACK we let through.
                            check_window = false;
                        }
                    }
                }
            }
            _ => {}
        }
        if check_window {
            match self.in_window(dir, idx, seg, cfg) {
                Window::Accept => {}
                Window::Ignore => return Verdict::Ignore,
                Window::Invalid => return Verdict::Invalid,
            }
        }
        self.set_last(idx, dir);
        self.tcp = new;
        if old != new && new == FW {
            self.seen[dir].flags |= F_CLOSE_INIT;
        }
        let t = &cfg.timeouts;
        let mut c = if idx == I_RST {
            class::TCP_CLOSE
        } else if (self.seen[0].flags | self.seen[1].flags) & F_DATA_UNACK != 0
            && t.get(new) > t.get(class::TCP_UNACK)
        {
            class::TCP_UNACK
        } else {
            new
        };
        if self.status & SEEN_REPLY == 0 {
            if idx == I_RST {
                // Only a RST came back: no connection to keep.
                return Verdict::Close;
            }
            if idx == I_SYN && old == SS {
                // A retransmitted SYN does not keep the entry alive.
                return Verdict::Accept { refresh: false };
            }
            if new == ES && t.get(c) > t.get(class::TCP_UNACK) {
                // Picked up in the middle, never answered.
                c = class::TCP_UNACK;
            }
        } else if self.status & ASSURED == 0 && (old == SR || old == ES) && new == ES {
            self.status |= ASSURED;
        }
        self.class = c;
        Verdict::Accept { refresh: true }
    }

    /// A segment the table marks "ignore": remembered, so that the entry
    /// can resynchronise when the other side answers it.
    fn ignore(&mut self, old: u8, dir: usize, idx: u8, seg: &Seg) -> Verdict {
        self.set_last(idx, dir);
        self.last_end = seg.end();
        self.last_win = seg.win;
        if idx == I_SYN && dir == 0 {
            self.last_opts = 0;
            self.last_wscale = 0;
            if let Some(s) = seg.wscale {
                self.last_opts |= F_WSCALE;
                self.last_wscale = s.min(14);
            }
            if seg.sack_perm {
                self.last_opts |= F_SACK_PERM;
            }
            if old == LA {
                self.last |= L_CHALLENGE_ACK;
            }
        }
        if old == SS && idx == I_ACK && dir == 1 {
            self.last_ack = seg.ack;
        }
        Verdict::Ignore
    }

    /// nf_conntrack's `tcp_in_window`.
    fn in_window(&mut self, dir: usize, idx: u8, seg: &Seg, cfg: &TrackConfig) -> Window {
        let state = self.tcp;
        let syn = seg.flags & SYN != 0;
        let has_ack = seg.flags & ACK != 0;
        let rst = seg.flags & RST != 0;
        let mut seq = seg.seq;
        let mut ack = seg.ack;
        let mut sack = seg.ack;
        let win = u32::from(seg.win);
        let mut end = seg.end();
        let (sender, receiver) = pair(&mut self.seen, dir);
        if receiver.flags & F_SACK_PERM != 0 {
            if let Some(s) = seg.sack {
                if after(s, sack) {
                    sack = s;
                }
            }
        }
        if sender.maxwin == 0 {
            if syn {
                init_sender(sender, receiver, seg, end, win, dir);
                if !has_ack {
                    // Simultaneous open.
                    return Window::Accept;
                }
            } else {
                // The first segment seen this way, in the middle of a connection.
                sender.end = end;
                let swin = win << sender.scale;
                sender.maxwin = swin.max(1);
                sender.maxend = end.wrapping_add(sender.maxwin);
                if receiver.maxwin == 0 {
                    receiver.end = sack;
                    receiver.maxend = sack;
                } else if sack == receiver.end.wrapping_add(1) {
                    // Likely a reply to a keepalive.
                    receiver.end = receiver.end.wrapping_add(1);
                }
            }
        } else if syn && after(end, sender.end) && (state == SS || state == SR) {
            // A SYN (or SYN-ACK) with a new sequence number: the sender restarted.
            init_sender(sender, receiver, seg, end, win, dir);
            if dir == 1 && !has_ack {
                return Window::Accept;
            }
        }
        if !has_ack || (rst && ack == 0) {
            // No ACK (or a broken RST with ACK 0): pretend it acknowledged everything.
            ack = receiver.end;
            sack = receiver.end;
        }
        if rst && seq == 0 && state == SS {
            // A RST answering a SYN.
            seq = sender.end;
            end = sender.end;
        }
        let liberal = cfg.tcp_be_liberal || sender.flags & F_BE_LIBERAL != 0;
        let fail = |w: Window| if liberal { Window::Accept } else { w };
        if !before(seq, sender.maxend.wrapping_add(1)) {
            let overshot = end.wrapping_sub(sender.maxend).wrapping_add(1);
            let ack_ok = after(
                sack,
                receiver
                    .end
                    .wrapping_sub(max_ack_window(sender))
                    .wrapping_sub(1),
            );
            let in_recv = receiver.maxwin != 0
                && after(
                    end,
                    sender.end.wrapping_sub(receiver.maxwin).wrapping_sub(1),
                );
            if in_recv
                && ack_ok
                && overshot <= receiver.maxwin
                && before(sack, receiver.end.wrapping_add(1))
            {
                // More than the window allowed, from a stack that does that:
                // remember the data so that its ACK is in window.
                sender.end = end;
                sender.flags |= F_DATA_UNACK;
                return fail(Window::Ignore);
            }
            return fail(Window::Invalid);
        }
        if !before(sack, receiver.end.wrapping_add(1)) {
            return fail(Window::Invalid);
        }
        let in_recv = receiver.maxwin == 0
            || after(
                end,
                sender.end.wrapping_sub(receiver.maxwin).wrapping_sub(1),
            );
        if !in_recv {
            return fail(Window::Ignore);
        }
        if !after(
            sack,
            receiver
                .end
                .wrapping_sub(max_ack_window(sender))
                .wrapping_sub(1),
        ) {
            return fail(Window::Ignore);
        }
        let win = if syn { win } else { win << sender.scale };
        let swin = win.wrapping_add(sack.wrapping_sub(ack));
        if sender.maxwin < swin {
            sender.maxwin = swin;
        }
        if after(end, sender.end) {
            sender.end = end;
            sender.flags |= F_DATA_UNACK;
        }
        if has_ack {
            if sender.flags & F_MAXACK_SET == 0 {
                sender.maxack = ack;
                sender.flags |= F_MAXACK_SET;
            } else if after(ack, sender.maxack) {
                sender.maxack = ack;
            }
        }
        if receiver.maxwin != 0 && after(end, sender.maxend) {
            receiver.maxwin = receiver
                .maxwin
                .wrapping_add(end.wrapping_sub(sender.maxend));
        }
        if after(sack.wrapping_add(win), receiver.maxend.wrapping_sub(1)) {
            receiver.maxend = sack.wrapping_add(win);
            if win == 0 {
                receiver.maxend = receiver.maxend.wrapping_add(1);
            }
        }
        if ack == receiver.end {
            receiver.flags &= !F_DATA_UNACK;
        }
        let _ = idx;
        Window::Accept
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    Accept,
    Ignore,
    Invalid,
}

/// (sender, receiver) for direction `dir`.
#[inline]
fn pair(seen: &mut [Side; 2], dir: usize) -> (&mut Side, &mut Side) {
    let (a, b) = seen.split_at_mut(1);
    if dir == 0 {
        (&mut a[0], &mut b[0])
    } else {
        (&mut b[0], &mut a[0])
    }
}

/// A side's window scale and SACK permission from a SYN's options.
fn options(s: &mut Side, seg: &Seg) {
    if !seg.has_opts {
        return;
    }
    s.scale = 0;
    s.flags &= F_BE_LIBERAL;
    if let Some(w) = seg.wscale {
        s.scale = w.min(14);
        s.flags |= F_WSCALE;
    }
    if seg.sack_perm {
        s.flags |= F_SACK_PERM;
    }
}

/// A SYN-ACK answering a SYN (or a SYN from the reply side, simultaneous open).
fn init_sender(sender: &mut Side, receiver: &mut Side, seg: &Seg, end: u32, win: u32, dir: usize) {
    sender.end = end;
    sender.maxend = end;
    sender.maxwin = win.max(1);
    options(sender, seg);
    // RFC 7323: scaling only when both sides offered it.
    if dir == 1 && !(sender.flags & F_WSCALE != 0 && receiver.flags & F_WSCALE != 0) {
        sender.scale = 0;
        receiver.scale = 0;
    }
}

#[cfg(test)]
mod tests;
