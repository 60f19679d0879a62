//! The tracker against nf_conntrack's documented behaviour (hand cases) and
//! against a reference model of a TCP conversation (property tests): every
//! segment of a correct conversation passes, its packet states follow "new
//! until the other side spoke", the connection states follow the handshake
//! and the close, and segments far outside the windows are invalid and
//! change nothing.
use super::*;
use proptest::prelude::*;

fn cfg() -> TrackConfig {
    TrackConfig::default()
}

fn seg(flags: u8, seq: u32, ack: u32, win: u16, len: u32) -> Seg {
    Seg {
        flags,
        seq,
        ack,
        win,
        len,
        ..Seg::default()
    }
}

fn syn(seq: u32, win: u16, wscale: Option<u8>) -> Seg {
    Seg {
        flags: SYN,
        seq,
        win,
        has_opts: true,
        wscale,
        sack_perm: true,
        ..Seg::default()
    }
}

/// A tracked three-way handshake: client ISN 1000, server ISN 5000, no scaling.
fn handshake() -> Track {
    let c = cfg();
    let s = syn(1000, 64240, None);
    let mut t = Track::tcp_new(&s, &c).unwrap();
    assert_eq!(t.tcp_packet(0, &s, &c), Verdict::Accept { refresh: true });
    assert_eq!(t.state(), TcpState::SynSent);
    let sa = Seg {
        flags: SYN | ACK,
        seq: 5000,
        ack: 1001,
        win: 65160,
        has_opts: true,
        sack_perm: true,
        ..Seg::default()
    };
    assert_eq!(t.packet_state(1), ct_state::ESTABLISHED);
    assert_eq!(t.tcp_packet(1, &sa, &c), Verdict::Accept { refresh: true });
    t.seen(1);
    assert_eq!(t.state(), TcpState::SynRecv);
    assert_eq!(
        t.tcp_packet(0, &seg(ACK, 1001, 5001, 502, 0), &c),
        Verdict::Accept { refresh: true }
    );
    assert_eq!(t.state(), TcpState::Established);
    t
}

#[test]
fn a_handshake_and_a_close_follow_the_states() {
    let c = cfg();
    let mut t = handshake();
    assert_eq!(
        t.packet_state(0),
        ct_state::ESTABLISHED,
        "after a reply everything is established"
    );
    assert_eq!(t.class, class::TCP_ESTABLISHED);
    // Data both ways, then the client closes.
    assert!(matches!(
        t.tcp_packet(0, &seg(ACK | PSH, 1001, 5001, 502, 100), &c),
        Verdict::Accept { .. }
    ));
    assert_eq!(
        t.class,
        class::TCP_UNACK,
        "data outstanding: the 5-day time-out is capped"
    );
    assert!(matches!(
        t.tcp_packet(1, &seg(ACK | PSH, 5001, 1101, 509, 2000), &c),
        Verdict::Accept { .. }
    ));
    assert!(matches!(
        t.tcp_packet(0, &seg(ACK, 1101, 7001, 502, 0), &c),
        Verdict::Accept { .. }
    ));
    assert_eq!(t.class, class::TCP_ESTABLISHED, "everything acknowledged");
    assert!(t.status & ASSURED != 0);
    assert!(matches!(
        t.tcp_packet(0, &seg(FIN | ACK, 1101, 7001, 502, 0), &c),
        Verdict::Accept { .. }
    ));
    assert_eq!(t.state(), TcpState::FinWait);
    assert!(matches!(
        t.tcp_packet(1, &seg(ACK, 7001, 1102, 509, 0), &c),
        Verdict::Accept { .. }
    ));
    assert_eq!(t.state(), TcpState::CloseWait);
    assert!(matches!(
        t.tcp_packet(1, &seg(FIN | ACK, 7001, 1102, 509, 0), &c),
        Verdict::Accept { .. }
    ));
    assert_eq!(t.state(), TcpState::LastAck);
    assert!(matches!(
        t.tcp_packet(0, &seg(ACK, 1102, 7002, 502, 0), &c),
        Verdict::Accept { .. }
    ));
    assert_eq!(t.state(), TcpState::TimeWait);
    assert_eq!(t.class, class::TCP_TIME_WAIT);
    // A new SYN on the same tuple reopens it.
    assert_eq!(
        t.tcp_packet(0, &syn(90_000, 64240, None), &c),
        Verdict::Reopen
    );
}

#[test]
fn what_cannot_belong_to_a_connection_is_invalid() {
    let c = cfg();
    // A lone ACK, a SYN-ACK, a FIN, a RST open nothing (tcp_loose off).
    for f in [ACK, SYN | ACK, FIN | ACK, RST, RST | ACK, 0] {
        assert!(
            Track::tcp_new(&seg(f, 1, 2, 100, 0), &c).is_none(),
            "flags {f:#x}"
        );
    }
    // Nonsense flag combinations are invalid anywhere.
    for f in [SYN | FIN, SYN | RST, FIN, FIN | PSH, SYN | FIN | ACK] {
        assert!(!seg(f, 0, 0, 0, 0).flags_valid(), "flags {f:#x}");
        let mut t = handshake();
        assert_eq!(
            t.tcp_packet(0, &seg(f, 1001, 5001, 502, 0), &c),
            Verdict::Invalid,
            "flags {f:#x}"
        );
    }
    // With tcp_loose the ACK picks the connection up, checked liberally.
    let loose = TrackConfig {
        tcp_loose: true,
        ..cfg()
    };
    let mut t = Track::tcp_new(&seg(ACK, 1, 2, 100, 0), &loose).unwrap();
    assert!(matches!(
        t.tcp_packet(0, &seg(ACK, 1, 2, 100, 0), &loose),
        Verdict::Accept { .. }
    ));
    assert_eq!(t.state(), TcpState::Established);
    assert_eq!(
        t.class,
        class::TCP_UNACK,
        "never answered: the short time-out"
    );
    // A SYN-ACK from the client, an ACK before the SYN-ACK: invalid.
    let s = syn(1000, 64240, None);
    let mut t = Track::tcp_new(&s, &c).unwrap();
    t.tcp_packet(0, &s, &c);
    assert_eq!(
        t.tcp_packet(0, &seg(SYN | ACK, 1000, 1, 100, 0), &c),
        Verdict::Invalid
    );
    assert_eq!(
        t.tcp_packet(0, &seg(ACK, 1001, 1, 100, 0), &c),
        Verdict::Invalid
    );
    assert_eq!(
        t.state(),
        TcpState::SynSent,
        "invalid segments change nothing"
    );
}

#[test]
fn segments_outside_the_window_are_invalid() {
    let c = cfg();
    let t0 = handshake();
    // I: sequence far beyond what the server allowed.
    let mut t = t0;
    assert_eq!(
        t.tcp_packet(0, &seg(ACK, 1001 + 1_000_000, 5001, 502, 10), &c),
        Verdict::Invalid
    );
    assert_eq!(t, t0, "an invalid segment changes nothing");
    // III: acknowledges data the server never sent.
    assert_eq!(
        t.tcp_packet(0, &seg(ACK, 1001, 5001 + 500_000, 502, 0), &c),
        Verdict::Invalid
    );
    // A forged ACK with a random sequence number (the netns test's).
    assert_eq!(
        t.tcp_packet(1, &seg(ACK, 0x8000_0000, 1001, 509, 0), &c),
        Verdict::Invalid
    );
    // II: old data (already acknowledged long ago) is ignored, not invalid.
    let mut t = t0;
    let mut seq = 1001u32;
    let mut ack = 5001u32;
    for _ in 0..200 {
        assert!(matches!(
            t.tcp_packet(0, &seg(ACK, seq, ack, 502, 1000), &c),
            Verdict::Accept { .. }
        ));
        seq += 1000;
        assert!(matches!(
            t.tcp_packet(1, &seg(ACK, ack, seq, 509, 0), &c),
            Verdict::Accept { .. }
        ));
        ack += 0;
    }
    let snap = t;
    assert_eq!(
        t.tcp_packet(0, &seg(ACK, 1001, 5001, 502, 1000), &c),
        Verdict::Ignore,
        "a retransmission from far back"
    );
    assert_eq!(t, snap);
    // With tcp_be_liberal nothing is invalid for its window.
    let lib = TrackConfig {
        tcp_be_liberal: true,
        ..cfg()
    };
    let mut t = t0;
    assert!(matches!(
        t.tcp_packet(0, &seg(ACK, 1001 + 1_000_000, 5001, 502, 10), &lib),
        Verdict::Accept { .. }
    ));
}

#[test]
fn window_scaling_needs_both_sides() {
    let c = cfg();
    // Both offer scaling: the server may send a large window's worth.
    let s = syn(1000, 64240, Some(7));
    let mut t = Track::tcp_new(&s, &c).unwrap();
    t.tcp_packet(0, &s, &c);
    let sa = Seg {
        flags: SYN | ACK,
        seq: 5000,
        ack: 1001,
        win: 65160,
        has_opts: true,
        wscale: Some(7),
        sack_perm: true,
        ..Seg::default()
    };
    t.tcp_packet(1, &sa, &c);
    t.seen(1);
    // The client advertises 512 << 7 = 64 KiB... then 4096 << 7 = 512 KiB.
    assert!(matches!(
        t.tcp_packet(0, &seg(ACK, 1001, 5001, 4096, 0), &c),
        Verdict::Accept { .. }
    ));
    // 400 KB in flight from the server: inside the scaled window.
    let mut seq = 5001u32;
    for _ in 0..280 {
        assert!(
            matches!(
                t.tcp_packet(1, &seg(ACK, seq, 1001, 509, 1448), &c),
                Verdict::Accept { .. }
            ),
            "at {}",
            seq - 5001
        );
        seq += 1448;
    }
    // Unscaled (the SYN-ACK did not offer it), the same data is beyond the window.
    let mut t = Track::tcp_new(&s, &c).unwrap();
    t.tcp_packet(0, &s, &c);
    let sa = Seg { wscale: None, ..sa };
    t.tcp_packet(1, &sa, &c);
    t.seen(1);
    t.tcp_packet(0, &seg(ACK, 1001, 5001, 4096, 0), &c);
    let mut seq = 5001u32;
    let mut refused = false;
    for _ in 0..280 {
        if t.tcp_packet(1, &seg(ACK, seq, 1001, 509, 1448), &c) == Verdict::Invalid {
            refused = true;
            break;
        }
        seq += 1448;
    }
    assert!(refused, "4096 bytes of window cannot take 400 KB");
}

#[test]
fn resets_close_and_a_lone_reset_removes_the_entry() {
    let c = cfg();
    let mut t = handshake();
    // A RST far from the expected sequence is invalid.
    assert_eq!(
        t.tcp_packet(1, &seg(RST, 5001 + 3_000_000, 0, 0, 0), &c),
        Verdict::Invalid
    );
    assert_eq!(t.state(), TcpState::Established);
    assert!(matches!(
        t.tcp_packet(1, &seg(RST | ACK, 5001, 1001, 0, 0), &c),
        Verdict::Accept { .. }
    ));
    assert_eq!(t.state(), TcpState::Close);
    assert_eq!(t.class, class::TCP_CLOSE);
    // A SYN answered by RST: the entry goes.
    let s = syn(1000, 64240, None);
    let mut t = Track::tcp_new(&s, &c).unwrap();
    t.tcp_packet(0, &s, &c);
    assert_eq!(
        t.tcp_packet(1, &seg(RST | ACK, 0, 1001, 0, 0), &c),
        Verdict::Close
    );
    // SYN retransmissions do not refresh.
    let mut t = Track::tcp_new(&s, &c).unwrap();
    t.tcp_packet(0, &s, &c);
    assert_eq!(t.tcp_packet(0, &s, &c), Verdict::Accept { refresh: false });
}

#[test]
fn a_syn_in_an_established_connection_is_ignored_then_resynchronised() {
    let c = cfg();
    let mut t = handshake();
    // The client restarted and reuses the port: the entry ignores its SYN...
    let s2 = syn(77_000, 64240, Some(2));
    assert_eq!(t.tcp_packet(0, &s2, &c), Verdict::Ignore);
    assert_eq!(t.state(), TcpState::Established);
    // ... and follows when the server answers it.
    let sa = Seg {
        flags: SYN | ACK,
        seq: 9000,
        ack: 77_001,
        win: 100,
        has_opts: true,
        wscale: Some(3),
        ..Seg::default()
    };
    assert!(matches!(t.tcp_packet(1, &sa, &c), Verdict::Accept { .. }));
    assert_eq!(t.state(), TcpState::SynRecv);
    assert!(matches!(
        t.tcp_packet(0, &seg(ACK, 77_001, 9001, 100, 0), &c),
        Verdict::Accept { .. }
    ));
    assert_eq!(t.state(), TcpState::Established);
}

#[test]
fn simultaneous_open() {
    let c = cfg();
    let s = syn(1000, 1000, None);
    let mut t = Track::tcp_new(&s, &c).unwrap();
    t.tcp_packet(0, &s, &c);
    assert!(matches!(
        t.tcp_packet(1, &syn(5000, 1000, None), &c),
        Verdict::Accept { .. }
    ));
    assert_eq!(t.state(), TcpState::SynSent2);
    t.seen(1);
    assert!(matches!(
        t.tcp_packet(
            0,
            &Seg {
                flags: SYN | ACK,
                seq: 1000,
                ack: 5001,
                win: 1000,
                ..Seg::default()
            },
            &c
        ),
        Verdict::Accept { .. }
    ));
    assert_eq!(t.state(), TcpState::SynRecv);
    assert!(matches!(
        t.tcp_packet(1, &seg(ACK, 5001, 1001, 1000, 0), &c),
        Verdict::Accept { .. }
    ));
    assert_eq!(t.state(), TcpState::Established);
}

#[test]
fn udp_streams_and_defaults() {
    let mut t = Track::other_new(class::UDP);
    assert_eq!(t.packet_state(0), ct_state::NEW);
    t.other_packet(class::UDP, 0);
    t.seen(0);
    assert_eq!(t.packet_state(0), ct_state::NEW, "no reply yet");
    assert_eq!(t.packet_state(1), ct_state::ESTABLISHED);
    t.other_packet(class::UDP, 100);
    t.seen(1);
    assert_eq!(t.packet_state(0), ct_state::ESTABLISHED);
    t.other_packet(class::UDP, 500);
    assert_eq!(t.class, class::UDP, "a stream only after 2 s");
    t.other_packet(class::UDP, 2500);
    assert_eq!(t.class, class::UDP_STREAM);
    assert!(t.status & ASSURED != 0);
    let d = Timeouts::default();
    assert_eq!(
        (
            d.get(class::UDP),
            d.get(class::UDP_STREAM),
            d.get(class::ICMP)
        ),
        (30_000, 120_000, 30_000)
    );
    assert_eq!(d.get(class::TCP_ESTABLISHED), 432_000_000);
    assert_eq!(
        [
            class::TCP_SYN_SENT,
            class::TCP_SYN_RECV,
            class::TCP_FIN_WAIT,
            class::TCP_CLOSE_WAIT,
            class::TCP_LAST_ACK,
            class::TCP_TIME_WAIT,
            class::TCP_CLOSE
        ]
        .map(|c| d.get(c) / 1000),
        [120, 60, 120, 60, 30, 120, 10]
    );
    assert_eq!(
        ct_state::names(ct_state::NEW | ct_state::INVALID),
        "new,invalid"
    );
    assert_eq!(ct_state::parse("related"), Some(ct_state::RELATED));
}

// ---- the reference model --------------------------------------------------------

/// One end of a conversation: what it sent, what the other acknowledged,
/// what it advertises.
#[derive(Debug, Clone, Copy)]
struct Peer {
    /// Next sequence number to send.
    nxt: u32,
    /// Acknowledged by the other end.
    una: u32,
    /// Advertised window (unscaled) and shift.
    win: u16,
    shift: u8,
    /// The window this end last advertised, in bytes (a SYN's is never scaled).
    adv: u32,
    /// The other end has all of this end's data up to `nxt` (it acknowledges what it received).
    fin: bool,
    fin_acked: bool,
}

/// What the model expects of the connection as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    SynSent,
    SynRecv,
    Open,
    /// One FIN seen (nf: FIN_WAIT), then answered by the other side (CLOSE_WAIT).
    OneFin {
        answered: bool,
    },
    /// Both FINs seen (LAST_ACK), then the last one acknowledged (TIME_WAIT).
    TwoFins {
        last_acked: bool,
    },
    Reset,
}

impl Phase {
    fn tcp(self) -> TcpState {
        match self {
            Phase::SynSent => TcpState::SynSent,
            Phase::SynRecv => TcpState::SynRecv,
            Phase::Open => TcpState::Established,
            Phase::OneFin { answered: false } => TcpState::FinWait,
            Phase::OneFin { answered: true } => TcpState::CloseWait,
            Phase::TwoFins { last_acked: false } => TcpState::LastAck,
            Phase::TwoFins { last_acked: true } => TcpState::TimeWait,
            Phase::Reset => TcpState::Close,
        }
    }
}

struct Conv {
    p: [Peer; 2],
    phase: Phase,
    replied: bool,
    scaled: bool,
    t: Track,
    c: TrackConfig,
}

impl Conv {
    fn new(isn: [u32; 2], win: [u16; 2], shift: [Option<u8>; 2]) -> (Conv, Verdict) {
        let c = cfg();
        let scaled = shift[0].is_some() && shift[1].is_some();
        let mk = |i: usize| Peer {
            nxt: isn[i],
            una: isn[i],
            win: win[i].max(1),
            shift: if scaled { shift[i].unwrap_or(0) } else { 0 },
            adv: u32::from(win[i].max(1)),
            fin: false,
            fin_acked: false,
        };
        let p = [mk(0), mk(1)];
        let s = Seg {
            flags: SYN,
            seq: isn[0],
            win: win[0],
            has_opts: true,
            wscale: shift[0],
            sack_perm: false,
            ..Seg::default()
        };
        let mut t = Track::tcp_new(&s, &c).expect("a SYN opens");
        let v = t.tcp_packet(0, &s, &c);
        let mut conv = Conv {
            p,
            phase: Phase::SynSent,
            replied: false,
            scaled,
            t,
            c,
        };
        conv.p[0].nxt = isn[0].wrapping_add(1);
        conv.p[1].una = isn[1];
        (conv, v)
    }

    /// Sends a segment from `d`; checks the model's packet state and that it passes.
    fn send(&mut self, d: usize, flags: u8, seq: u32, len: u32, shift_syn: Option<u8>) -> Verdict {
        let o = 1 - d;
        let win = self.p[d].win;
        let s = Seg {
            flags,
            seq,
            ack: if flags & ACK != 0 { self.p[o].nxt } else { 0 },
            win,
            len,
            has_opts: flags & SYN != 0,
            wscale: shift_syn,
            ..Seg::default()
        };
        let want = if d == 1 || self.replied {
            ct_state::ESTABLISHED
        } else {
            ct_state::NEW
        };
        assert_eq!(self.t.packet_state(d), want, "packet state from {d}");
        let v = self.t.tcp_packet(d, &s, &self.c);
        self.p[d].adv = if flags & SYN != 0 {
            u32::from(win)
        } else {
            u32::from(win) << self.p[d].shift
        };
        if !matches!(v, Verdict::Invalid) {
            self.t.seen(d);
            if d == 1 {
                self.replied = true;
            }
        }
        if flags & ACK != 0 {
            // The other end's data up to nxt is acknowledged now.
            self.p[o].una = self.p[o].nxt;
            if self.p[o].fin {
                self.p[o].fin_acked = true;
            }
        }
        v
    }

    /// Room `d` has to send: the other end's window from what it acknowledged.
    fn room(&self, d: usize) -> u32 {
        let o = 1 - d;
        let w = self.p[o].adv;
        self.p[d]
            .una
            .wrapping_add(w)
            .wrapping_sub(self.p[d].nxt)
            .min(1 << 20)
    }

    fn ok(&self, v: Verdict, what: &str) {
        assert!(
            matches!(v, Verdict::Accept { .. } | Verdict::Ignore),
            "{what}: {v:?} in {:?} (track {:?})",
            self.phase,
            self.t
        );
    }

    /// One step of the conversation, chosen by `a`; returns false when nothing applies.
    fn step(&mut self, a: u8, n: u32) -> bool {
        let d = usize::from(a & 1);
        let o = 1 - d;
        match (self.phase, a >> 1) {
            (Phase::SynSent, 0) => {
                // A retransmitted SYN.
                let isn = self.p[0].nxt.wrapping_sub(1);
                let v = self.send(0, SYN, isn, 0, None);
                self.ok(v, "SYN again");
            }
            (Phase::SynSent, _) => {
                let isn = self.p[1].nxt;
                let sh = if self.scaled {
                    Some(self.p[1].shift)
                } else {
                    None
                };
                let v = self.send(1, SYN | ACK, isn, 0, sh);
                self.ok(v, "SYN-ACK");
                self.p[1].nxt = isn.wrapping_add(1);
                self.phase = Phase::SynRecv;
            }
            (Phase::SynRecv, _) => {
                let seq = self.p[0].nxt;
                let v = self.send(0, ACK, seq, 0, None);
                self.ok(v, "the handshake's ACK");
                self.phase = Phase::Open;
            }
            (Phase::Open | Phase::OneFin { .. }, 0..=3) => {
                // Data from d, at most what the other end's window allows.
                if self.p[d].fin {
                    return false;
                }
                let len = n % 3000 % self.room(d).max(1);
                let seq = self.p[d].nxt;
                let v = self.send(d, ACK | PSH, seq, len, None);
                self.ok(v, "data");
                self.p[d].nxt = seq.wrapping_add(len);
                if let Phase::OneFin { .. } = self.phase {
                    // nf_conntrack: any ACK after the first FIN is CLOSE_WAIT.
                    self.phase = Phase::OneFin { answered: true };
                }
            }
            (Phase::Open | Phase::OneFin { .. }, 4) => {
                // A pure ACK from d.
                let seq = self.p[d].nxt;
                let v = self.send(d, ACK, seq, 0, None);
                self.ok(v, "ACK");
                if let Phase::OneFin { .. } = self.phase {
                    self.phase = Phase::OneFin { answered: true };
                }
            }
            (Phase::Open | Phase::OneFin { .. }, 5) => {
                if self.p[d].fin {
                    return false;
                }
                let seq = self.p[d].nxt;
                let v = self.send(d, FIN | ACK, seq, 0, None);
                self.ok(v, "FIN");
                self.p[d].nxt = seq.wrapping_add(1);
                self.p[d].fin = true;
                self.phase = match self.phase {
                    Phase::Open => Phase::OneFin { answered: false },
                    _ => Phase::TwoFins { last_acked: false },
                };
            }
            (Phase::TwoFins { last_acked }, 4) => {
                let seq = self.p[d].nxt;
                let v = self.send(d, ACK, seq, 0, None);
                self.ok(v, "the last ACK");
                let _ = last_acked;
                self.phase = Phase::TwoFins { last_acked: true };
            }
            (Phase::Open | Phase::OneFin { .. }, 6) => {
                // A retransmission of d's last bytes (in window, already seen).
                if self.p[d].nxt == self.p[d].una {
                    return false;
                }
                let back = (n % 1000 + 1).min(self.p[d].nxt.wrapping_sub(self.p[d].una));
                let seq = self.p[d].nxt.wrapping_sub(back);
                let v = self.send(d, ACK | PSH, seq, back, None);
                self.ok(v, "retransmission");
                if let (Phase::OneFin { .. }, Verdict::Accept { .. }) = (self.phase, v) {
                    self.phase = Phase::OneFin { answered: true };
                }
            }
            (Phase::Open | Phase::OneFin { .. } | Phase::TwoFins { .. }, 7) => {
                // Junk far beyond d's window (a forged segment, 1.5 to 1.75 GB
                // ahead; windows are at most 1 GB): invalid, nothing changes.
                let seq = self.p[d]
                    .nxt
                    .wrapping_add(0x6000_0000)
                    .wrapping_add(n % 0x1000_0000);
                let snap = self.t;
                let s = Seg {
                    flags: ACK,
                    seq,
                    ack: self.p[o].nxt,
                    win: 100,
                    len: 10,
                    ..Seg::default()
                };
                assert_eq!(
                    self.t.tcp_packet(d, &s, &self.c),
                    Verdict::Invalid,
                    "forged segment in {:?}",
                    self.phase
                );
                assert_eq!(self.t, snap, "an invalid segment changed the entry");
            }
            (Phase::Open, _) if n % 7 == 0 => {
                let seq = self.p[d].nxt;
                let v = self.send(d, RST | ACK, seq, 0, None);
                assert!(matches!(v, Verdict::Accept { .. }), "RST: {v:?}");
                self.phase = Phase::Reset;
            }
            _ => return false,
        }
        assert_eq!(
            self.t.state(),
            self.phase.tcp(),
            "after step {a} in {:?}",
            self.phase
        );
        true
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// A correct conversation is never invalid, its states are the model's,
    /// forged segments are invalid and change nothing.
    #[test]
    fn conversations_follow_the_model(
        isn in any::<[u32; 2]>(),
        win in prop::array::uniform2(1u16..=65535),
        shift in prop::array::uniform2(prop::option::of(0u8..=14)),
        steps in prop::collection::vec((any::<u8>(), any::<u32>()), 1..200),
    ) {
        let (mut conv, v) = Conv::new(isn, win, shift);
        prop_assert_eq!(v, Verdict::Accept { refresh: true });
        prop_assert_eq!(conv.t.state(), TcpState::SynSent);
        for (a, n) in steps {
            conv.step(a % 16, n);
            if conv.phase == Phase::Reset {
                break;
            }
        }
    }

    /// Arbitrary segments never panic, and an invalid segment leaves the
    /// connection's state as it was (its window data may have been
    /// initialised first, as nf_conntrack's `tcp_in_window` does).
    #[test]
    fn arbitrary_segments_are_handled(
        first in (any::<u8>(), any::<u32>(), any::<u32>(), any::<u16>(), 0u32..70000),
        rest in prop::collection::vec((any::<bool>(), any::<u8>(), any::<u32>(), any::<u32>(), any::<u16>(), 0u32..70000, prop::option::of(0u8..20)), 0..60),
        loose in any::<bool>(),
        liberal in any::<bool>(),
    ) {
        let c = TrackConfig { tcp_loose: loose, tcp_be_liberal: liberal, ..cfg() };
        let (f, seq, ack, win, len) = first;
        let s = seg(f, seq, ack, win, len);
        let Some(mut t) = Track::tcp_new(&s, &c) else { return Ok(()) };
        t.tcp_packet(0, &s, &c);
        for (dir, f, seq, ack, win, len, ws) in rest {
            let s = Seg { flags: f, seq, ack, win, len, has_opts: ws.is_some(), wscale: ws, ..Seg::default() };
            let before = t;
            let v = t.tcp_packet(usize::from(dir), &s, &c);
            if v == Verdict::Invalid {
                prop_assert_eq!((t.tcp, t.status, t.class), (before.tcp, before.status, before.class));
            }
            prop_assert!(t.tcp <= 9);
        }
    }
}
