//! The connection state machine (RFC 9293 §3.3.2, §3.10): one [`Tcb`] per
//! connection, pure logic over the building blocks of this module, with no
//! I/O, no system call, no lock and no allocation after it is created
//! ([`Tcb::accept`] and [`Tcb::connect`] allocate the two rings).
//!
//! The caller (the worker's connection table) drives it with three calls:
//! - [`Tcb::on_segment`] for each segment of the connection (the caller
//!   fills a [`Segment`] from the wire, e.g. with [`Segment::from_repr`]);
//! - [`Tcb::poll`] afterwards, and whenever the application did something:
//!   it runs the expired timers and hands every segment to send to a
//!   closure, as a borrowed [`Segment`] whose payload is two slices straight
//!   into the send ring (the ring may wrap), so nothing is copied until the
//!   caller writes the frame;
//! - [`Tcb::next_deadline`] to arm the worker's timer wheel, and
//!   [`Tcb::on_time`] (or simply `poll`) when it fires.
//!
//! Time is passed in, in milliseconds (`now_ms`), so the machine is
//! deterministic; RTT samples are taken at that granularity.
//!
//! What it does (RFC 9293 unless said otherwise):
//! - States SYN-SENT to TIME-WAIT, simultaneous open and close. LISTEN is the
//!   caller's: [`Tcb::accept`] makes a SYN-RECEIVED connection from a SYN.
//! - Segment arrival in the order of §3.10.7.4: acceptability (the four
//!   cases), RST with RFC 5961 §3.2 (reset only at exactly RCV.NXT, challenge
//!   ACK otherwise in the window), SYN in a synchronized state gets a
//!   challenge ACK (RFC 5961 §4), ACK acceptability of RFC 5961 §5, the
//!   SND.WL1/WL2 window update, text through [`Reassembly`] into the
//!   receive ring, FIN. Challenge ACKs are limited per connection
//!   ([`Config::challenge_acks_per_sec`]).
//! - Options: MSS (default 536 when the peer sends none), window scaling
//!   only when both SYNs carry it (RFC 7323 §2), our shift the smallest that
//!   lets the largest receive ring (`recv_buffer`) be advertised.
//!   SACK-permitted is never sent and SACK options are ignored.
//! - Timestamps (RFC 7323, [`Config::timestamps`], on by default) when both
//!   SYNs carry them: every segment but a RST carries TSval (the ms clock
//!   plus a per-connection offset) and TSecr = TS.Recent; TS.Recent is taken
//!   only from a segment with SEG.SEQ <= Last.ACK.sent (§4.3), so the echo
//!   of a retransmission that fills a hole is the retransmission's; RTTM
//!   takes a sample from TSecr on every ACK of new data, retransmitted or
//!   not, during recovery too, which ends an RTO backoff at once; PAWS
//!   (§5) drops a segment whose TSval is older than TS.Recent (24 days of
//!   idleness excepted) and, once negotiated, one without a timestamp
//!   (§3.2), a RST excepted. The text per segment is the MSS less the 12
//!   bytes of the option.
//! - Spurious retransmissions (Eifel detection, RFC 3522, with timestamps):
//!   the first ACK of new data after a timeout or fast retransmit that
//!   echoes a TSval older than the retransmission's was sent for the
//!   original; the response (RFC 4015) restores cwnd/ssthresh and, after a
//!   timeout, sends new data from SND.MAX instead of going back N.
//! - Tail loss probes (RFC 8985 §7, [`Config::tlp`]): with data in flight
//!   and no recovery under way, a probe timeout of 2·SRTT + 40 ms (+ 200 ms
//!   with one segment out; only when shorter than the RTO) sends one new
//!   segment if the peer's window takes it, else the last segment again.
//!   Without SACK the ACK it draws is read so: a duplicate ACK (the peer
//!   holds data beyond SND.UNA but not SND.UNA) starts fast recovery at
//!   once; an ACK covering a re-sent probe whose echo is the probe's own
//!   TSval means the probe repaired a loss, and cwnd is halved.
//! - Receive buffer autotuning ([`Config::recv_buffer_initial`]): the ring
//!   starts small and grows once per receiver RTT to twice what the
//!   application read in that RTT, up to `recv_buffer` (Linux's DRS).
//! - Sending: MSS-sized segments within min(cwnd, peer window) ([`Cc`]),
//!   Nagle (§3.7.4, off with [`Config::nodelay`]), sender SWS avoidance
//!   (§3.8.6.2.1, the override timeout being the persist timer), receiver
//!   SWS avoidance (§3.8.6.2.2), window updates when reads open the window
//!   substantially (at least doubled and by min(MSS, buffer/2)).
//! - ACKs: delayed (at least every second full-sized segment, else after
//!   [`Config::delayed_ack_ms`]), immediate for out-of-order data, a filled
//!   hole, duplicates and FIN (RFC 5681 §4.2); piggybacked on data.
//! - Timers: retransmission (RFC 6298 via [`RttEstimator`], Karn's rule,
//!   backoff, giving up after [`Config::max_retries`] expiries or
//!   [`Config::max_retry_ms`] with [`Error::TimedOut`] and a RST), delayed
//!   ACK, persist with one-byte zero-window probes and backoff, TIME-WAIT
//!   ([`Config::time_wait_ms`], 2·MSL), FIN-WAIT-2 of a closed connection
//!   (Linux's `tcp_fin_timeout`), optional keepalive.
//! - Loss recovery: fast retransmit on the third duplicate ACK and NewReno
//!   (RFC 6582) as [`Cc`] says; on a timeout, go-back-N from SND.UNA.
//!
//! Choices:
//! - **Closing with unread data** ([`Tcb::close`]) sends a RST and drops the
//!   connection, as Linux does (RFC 9293 §3.10.4 and RFC 2525 §2.17 allow
//!   it); so does data arriving after `close`. [`Tcb::shutdown_write`] is
//!   the graceful half-close.
//! - A SYN or SYN-ACK carrying data is not acknowledged beyond the SYN: the
//!   text is dropped and the peer sends it again (no TCP Fast Open).
//! - A zero-window probe is one new byte at SND.NXT that does not advance
//!   SND.NXT (only the highest sequence sent), so the retransmission timer
//!   stays off while the window is zero and the persist timer owns the
//!   backoff; a peer that keeps answering keeps the connection alive.
//! - A FIN that arrives before a hole is remembered and taken when the hole
//!   fills.
//! - Pure ACKs carry SND.MAX as their sequence number, not SND.NXT: after a
//!   timeout SND.NXT goes back to SND.UNA, and a peer that already has
//!   those bytes would find the ACK old and drop it (two such peers would
//!   stall each other).
//! - Not implemented: SACK, urgent data (URG is ignored), ECN, path MTU
//!   discovery, RFC 1337 TIME-WAIT protection (a RST at RCV.NXT ends
//!   TIME-WAIT, as on Linux), F-RTO (Eifel needs timestamps; a peer
//!   without them gets no spurious-timeout detection).

use std::net::SocketAddr;

use super::buffer::RingBuf;
use super::cc::{self, AckAction, Cc};
use super::reasm::{self, Insert, Reassembly};
use super::rtt::{RttConfig, RttEstimator, US_PER_MS};
use super::seq::Seq;
use crate::wire::tcp::{TcpFlags, TcpRepr};

/// MSS assumed when the peer's SYN carries none (RFC 9293 §3.7.1).
pub const DEFAULT_MSS: u16 = 536;
/// Largest window shift (RFC 7323 §2.3).
pub const MAX_WINDOW_SHIFT: u8 = 14;

/// The connection states of RFC 9293 §3.3.2 (LISTEN is the caller's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
    Closed,
}

impl State {
    /// Both SYNs have been exchanged (RFC 9293's "synchronized states").
    pub fn is_synchronized(self) -> bool {
        !matches!(self, State::SynSent | State::SynReceived | State::Closed)
    }
}

/// Why a connection ended other than by a clean close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The peer answered our SYN with a RST.
    Refused,
    /// The peer reset the connection.
    Reset,
    /// Retransmissions (or keepalive probes) went unanswered.
    TimedOut,
}

/// Keepalive (RFC 9293 §3.8.4, off by default; Linux's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe.
    pub idle_ms: u64,
    /// Time between unanswered probes.
    pub interval_ms: u64,
    /// Unanswered probes before giving up.
    pub probes: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            idle_ms: 7_200_000,
            interval_ms: 75_000,
            probes: 9,
        }
    }
}

/// A connection's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The MSS we announce and the largest segment we send.
    pub mss: u16,
    /// Send ring capacity in bytes.
    pub send_buffer: usize,
    /// Receive ring capacity in bytes at most (at most 2^30 is
    /// advertised): the limit of autotuning, like Linux's `tcp_rmem[2]`.
    pub recv_buffer: usize,
    /// The receive ring a connection starts with (like `tcp_rmem[1]`);
    /// autotuning grows it towards `recv_buffer` when the application
    /// reads more per round trip than the window lets through. Equal to
    /// `recv_buffer` (or above): no autotuning.
    pub recv_buffer_initial: usize,
    /// Offer window scaling in our SYN (used only if the peer's has it too).
    pub window_scale: bool,
    /// Turn off Nagle's algorithm (like `TCP_NODELAY`).
    pub nodelay: bool,
    /// Longest delay of an ACK; 0 acknowledges every segment at once.
    pub delayed_ack_ms: u64,
    /// The retransmission timer's bounds.
    pub rtt: RttConfig,
    /// Retransmission timeouts of one segment before giving up (R2, Linux's
    /// `tcp_retries2`).
    pub max_retries: u32,
    /// Also give up once this long has passed since the first of those
    /// retransmissions.
    pub max_retry_ms: u64,
    /// Retransmissions of our SYN or SYN-ACK before giving up.
    pub max_syn_retries: u32,
    /// TIME-WAIT duration, 2·MSL.
    pub time_wait_ms: u64,
    /// FIN-WAIT-2 limit after `close` (Linux's `tcp_fin_timeout`).
    pub fin_wait2_ms: u64,
    /// Challenge ACKs per second at most (RFC 5961 §7).
    pub challenge_acks_per_sec: u32,
    pub keepalive: Option<Keepalive>,
    /// Offer RFC 7323 timestamps in our SYN (used only if the peer's SYN
    /// has them too): RTT samples on every ACK, PAWS, spurious
    /// retransmission detection (Eifel).
    pub timestamps: bool,
    /// Tail loss probes (RFC 8985 §7).
    pub tlp: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mss: 1460,
            send_buffer: 64 * 1024,
            recv_buffer: 64 * 1024,
            recv_buffer_initial: 64 * 1024,
            window_scale: true,
            nodelay: false,
            delayed_ack_ms: 40,
            rtt: RttConfig::default(),
            max_retries: 15,
            max_retry_ms: 900_000,
            max_syn_retries: 6,
            time_wait_ms: 60_000,
            fin_wait2_ms: 60_000,
            challenge_acks_per_sec: 10,
            keepalive: None,
            timestamps: true,
            tlp: true,
        }
    }
}

/// A segment, in or out, without the ports and addresses (the connection
/// knows them). `flags` includes ACK (unlike [`TcpRepr`]); `window` is the
/// raw 16-bit field. The text is `payload` followed by `payload_tail`: an
/// outgoing segment's text may wrap around the end of the send ring; an
/// incoming one normally has an empty tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment<'a> {
    pub seq: Seq,
    pub ack: Seq,
    pub flags: TcpFlags,
    pub window: u16,
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    /// Read but ignored on input; never set on output.
    pub sack_permitted: bool,
    /// The RFC 7323 timestamp option: (TSval, TSecr).
    pub timestamp: Option<(u32, u32)>,
    pub payload: &'a [u8],
    pub payload_tail: &'a [u8],
}

impl<'a> Segment<'a> {
    /// From a parsed segment (SACK blocks are dropped).
    pub fn from_repr(r: &TcpRepr<'a>) -> Self {
        let mut flags = r.flags;
        if r.ack_number.is_some() {
            flags = flags.union(TcpFlags::ACK);
        }
        Segment {
            seq: Seq(r.seq_number),
            ack: Seq(r.ack_number.unwrap_or(0)),
            flags,
            window: r.window_len,
            mss: r.max_seg_size,
            window_scale: r.window_scale,
            sack_permitted: r.sack_permitted,
            timestamp: r.timestamp,
            payload: r.payload,
            payload_tail: &[],
        }
    }

    /// Bytes of text.
    pub fn payload_len(&self) -> usize {
        self.payload.len().saturating_add(self.payload_tail.len())
    }

    /// SEG.LEN: the text plus one for SYN and one for FIN.
    pub fn seg_len(&self) -> u32 {
        let mut n = u32::try_from(self.payload_len()).unwrap_or(u32::MAX);
        if self.has(TcpFlags::SYN) {
            n = n.saturating_add(1);
        }
        if self.has(TcpFlags::FIN) {
            n = n.saturating_add(1);
        }
        n
    }

    /// Whether every bit of `f` is set.
    pub fn has(&self, f: TcpFlags) -> bool {
        self.flags.contains(f)
    }
}

/// A segment to send, decided while the connection is borrowed mutably;
/// the text is taken from the send ring afterwards.
#[derive(Debug, Clone, Copy)]
struct Out {
    seq: Seq,
    ack: Seq,
    flags: TcpFlags,
    window: u16,
    mss: Option<u16>,
    window_scale: Option<u8>,
    timestamp: Option<(u32, u32)>,
    /// Offset of the text in the send ring, and its length.
    data_off: usize,
    data_len: usize,
}

/// One connection (see the module doc).
#[derive(Debug)]
pub struct Tcb {
    cfg: Config,
    state: State,
    error: Option<Error>,
    local: SocketAddr,
    remote: SocketAddr,
    /// Came from `connect` (a RST in SYN-RECEIVED is then a refusal).
    active: bool,

    // Send side.
    iss: Seq,
    snd_una: Seq,
    /// Next sequence number to send (moves back to SND.UNA on a timeout).
    snd_nxt: Seq,
    /// One past the highest sequence number sent (a zero-window probe
    /// aside).
    snd_max: Seq,
    /// A zero-window probe of the byte at SND.NXT is out.
    probe_sent: bool,
    snd_wnd: u32,
    max_snd_wnd: u32,
    snd_wl1: Seq,
    snd_wl2: Seq,
    snd_mss: u32,
    /// The peer's window shift (applied to its window field).
    snd_shift: u8,
    /// Sequence number of our FIN once the application shut down writing.
    fin_seq: Option<Seq>,
    tx: RingBuf,
    cc: Cc,
    rtt: RttEstimator,
    /// The segment being timed: its end and when it was sent (Karn).
    rtt_timing: Option<(Seq, u64)>,
    syn_retransmits: u32,
    retries: u32,
    first_retx_ms: Option<u64>,
    persist_backoff: u32,
    last_send_ms: u64,

    // Receive side.
    irs: Seq,
    rcv_nxt: Seq,
    /// Right edge of the window last advertised (never moved back).
    rcv_adv: Seq,
    /// Our window shift (applied to the windows we send).
    rcv_shift: u8,
    /// Both SYNs carried window scale.
    ws_ok: bool,
    rx: RingBuf,
    reasm: Reassembly,
    fin_received: bool,
    /// A FIN seen beyond a hole, at this sequence number.
    fin_ooo: Option<Seq>,
    /// Full-sized segments received since our last ACK.
    unacked_segs: u32,
    /// The application called `close`: further data is answered by a RST.
    app_closed: bool,

    // Timers (absolute ms).
    rto_at: Option<u64>,
    delack_at: Option<u64>,
    persist_at: Option<u64>,
    /// TIME-WAIT or FIN-WAIT-2 limit.
    close_at: Option<u64>,
    keepalive_at: Option<u64>,
    keepalive_sent: u32,

    // Pending output.
    ack_now: bool,
    retransmit_una: bool,
    probe_now: bool,
    keepalive_probe: bool,
    pending_rst: Option<(Seq, Option<Seq>)>,
    challenge_window_ms: u64,
    challenge_count: u32,

    // RFC 7323 timestamps.
    /// Both SYNs carried the timestamp option.
    ts_ok: bool,
    /// Added to the millisecond clock in our TSval (per connection, so
    /// TSvals say nothing of the host's uptime; RFC 7323 §7.1).
    ts_offset: u32,
    /// TS.Recent: the peer's TSval to echo, and when it was taken.
    ts_recent: u32,
    ts_recent_ms: u64,
    /// RCV.NXT in the last ACK we sent (Last.ACK.sent, RFC 7323 §4.3).
    last_ack_sent: Seq,
    /// The first retransmission of the current loss episode, for spurious
    /// retransmission detection (Eifel, RFC 3522).
    eifel: Option<Eifel>,
    /// The retransmission timer runs as a tail loss probe timeout.
    pto_armed: bool,
    /// The probe timeout fired: the next poll sends the probe.
    tlp_now: bool,
    /// The tail loss probe out, until an ACK covers it or a timeout.
    tlp: Option<Tlp>,
    /// In recovery, after a retransmission of SND.UNA: duplicate ACKs
    /// since, and how many the segments sent before it can account for.
    retx_watch: Option<(u32, u32)>,
    /// Out-of-order data arrived: its duplicate ACK goes out on its own.
    pure_ack_now: bool,
    stats: TcbStats,

    // Receive buffer autotuning (Linux's dynamic right-sizing).
    /// Bytes the application has read, ever.
    app_read: u64,
    /// Start of the current measurement: time and `app_read` then.
    rcv_mark_ms: u64,
    rcv_mark_read: u64,
    /// Bytes read in the last measured round trip that grew the ring.
    rcv_space: u32,
    /// The receiver's RTT estimate (µs, 0 unknown), from the echo of our
    /// TSval in full-sized segments.
    rcv_rtt_us: u32,
}

/// Counters of one connection's loss recovery (summed by the endpoint).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcbStats {
    /// Segments sent again (timeouts, fast retransmits, probes of old data).
    pub retransmits: u64,
    /// Retransmission timeouts.
    pub timeouts: u64,
    /// Fast retransmits (third duplicate ACK, or the first after a probe).
    pub fast_retransmits: u64,
    /// Tail loss probes sent.
    pub tlp_probes: u64,
    /// Probes that repaired a loss (the congestion window was reduced).
    pub tlp_recoveries: u64,
    /// Retransmissions found spurious by their timestamps and undone.
    pub spurious_undos: u64,
    /// Segments dropped by PAWS (or without a timestamp once negotiated).
    pub paws_drops: u64,
    /// Times receive autotuning enlarged the receive ring.
    pub rcv_buffer_grows: u64,
    /// Retransmissions found lost in recovery (by the duplicate ACKs that
    /// followed them) and sent again before the RTO.
    pub lost_retransmits: u64,
}

impl TcbStats {
    /// Adds `o`'s counts to these.
    pub fn add(&mut self, o: &TcbStats) {
        self.retransmits += o.retransmits;
        self.timeouts += o.timeouts;
        self.fast_retransmits += o.fast_retransmits;
        self.tlp_probes += o.tlp_probes;
        self.tlp_recoveries += o.tlp_recoveries;
        self.spurious_undos += o.spurious_undos;
        self.paws_drops += o.paws_drops;
        self.rcv_buffer_grows += o.rcv_buffer_grows;
        self.lost_retransmits += o.lost_retransmits;
    }
}

/// What Eifel needs to detect a spurious retransmission and undo it.
#[derive(Debug, Clone, Copy)]
struct Eifel {
    /// The TSval of the first retransmission: an ACK echoing an older one
    /// was sent for the original transmission.
    tsval: u32,
    /// A timeout (go-back-N) rather than a fast retransmit.
    timeout: bool,
    /// The congestion state before the episode.
    before: Cc,
    /// RFC 4015's pipe_prev: max(FlightSize, ssthresh) at the timeout.
    pipe_prev: u32,
}

/// A tail loss probe in flight (RFC 8985 §7).
#[derive(Debug, Clone, Copy)]
struct Tlp {
    /// SND.MAX after the probe: an ACK at or beyond it ends the episode.
    end: Seq,
    /// The probe sent old data again (no new data could go).
    retransmission: bool,
    tsval: u32,
}

/// PAWS forgets TS.Recent after this much idle time (RFC 7323 §5.5: 24 days).
const PAWS_IDLE_MS: u64 = 24 * 24 * 3600 * 1000;
/// Bytes of the timestamp option with its two NOPs (RFC 7323 Appendix A).
const TS_OPTION_LEN: u32 = 12;
/// The worst delayed ACK a single segment may wait for (RFC 8985 §7.2).
const TLP_WORST_DELACK_MS: u64 = 200;
/// Added to 2·SRTT when more than one segment is out: the peer may still
/// delay the ACK of an odd last segment (Linux's 40 ms minimum).
const TLP_DELACK_MS: u64 = 40;
/// Smallest probe timeout.
const TLP_MIN_MS: u64 = 10;

/// `a` is before `b` in the 32-bit circle of timestamps (RFC 7323 §5.2).
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// Smallest shift that lets `cap` bytes be advertised in 16 bits.
fn shift_for(cap: usize) -> u8 {
    let mut s = 0u8;
    while s < MAX_WINDOW_SHIFT && (cap >> s) > 0xffff {
        s += 1;
    }
    s
}

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A connection's send and receive rings, kept by the endpoint between
/// connections so that opening one allocates nothing.
#[derive(Debug)]
pub struct Buffers {
    tx: RingBuf,
    rx: RingBuf,
}

impl Buffers {
    /// Rings of the sizes `cfg` asks for (the receive ring at its initial size).
    pub fn new(cfg: &Config) -> Buffers {
        Buffers {
            tx: RingBuf::new(cfg.send_buffer),
            rx: RingBuf::new(initial_rx(cfg)),
        }
    }

    /// Whether these rings have the sizes `cfg` asks for (a receive ring
    /// that autotuning grew does not: it is not kept for another
    /// connection, whose flow may be small).
    pub fn fits(&self, cfg: &Config) -> bool {
        self.tx.capacity() == cfg.send_buffer && self.rx.capacity() == initial_rx(cfg)
    }
}

/// The largest receive ring (what can be advertised: 2^30).
fn max_rx(cfg: &Config) -> usize {
    cfg.recv_buffer.min(1 << 30)
}

/// The receive ring a connection starts with.
fn initial_rx(cfg: &Config) -> usize {
    cfg.recv_buffer_initial.min(max_rx(cfg))
}

impl Tcb {
    fn new(
        local: SocketAddr,
        remote: SocketAddr,
        iss: Seq,
        cfg: Config,
        now_ms: u64,
        bufs: Option<Buffers>,
    ) -> Tcb {
        let mss = cfg.mss.max(1);
        let cfg = Config { mss, ..cfg };
        let Buffers { mut tx, mut rx } = match bufs {
            Some(b) if b.fits(&cfg) => b,
            _ => Buffers::new(&cfg),
        };
        tx.clear();
        rx.clear();
        Tcb {
            cfg,
            state: State::Closed,
            error: None,
            local,
            remote,
            active: false,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            probe_sent: false,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: Seq(0),
            snd_wl2: iss,
            snd_mss: u32::from(DEFAULT_MSS.min(mss)),
            snd_shift: 0,
            fin_seq: None,
            tx,
            cc: Cc::new(u32::from(DEFAULT_MSS.min(mss)), iss),
            rtt: RttEstimator::new(cfg.rtt),
            rtt_timing: None,
            syn_retransmits: 0,
            retries: 0,
            first_retx_ms: None,
            persist_backoff: 0,
            last_send_ms: now_ms,
            irs: Seq(0),
            rcv_nxt: Seq(0),
            rcv_adv: Seq(0),
            rcv_shift: 0,
            ws_ok: false,
            rx,
            reasm: Reassembly::new(),
            fin_received: false,
            fin_ooo: None,
            unacked_segs: 0,
            app_closed: false,
            rto_at: None,
            delack_at: None,
            persist_at: None,
            close_at: None,
            keepalive_at: None,
            keepalive_sent: 0,
            ack_now: false,
            retransmit_una: false,
            probe_now: false,
            keepalive_probe: false,
            pending_rst: None,
            challenge_window_ms: now_ms,
            challenge_count: 0,
            ts_ok: false,
            ts_offset: iss.get().rotate_left(13).wrapping_mul(0x9e37_79b9),
            ts_recent: 0,
            ts_recent_ms: now_ms,
            last_ack_sent: Seq(0),
            eifel: None,
            pto_armed: false,
            tlp_now: false,
            tlp: None,
            retx_watch: None,
            pure_ack_now: false,
            stats: TcbStats::default(),
            app_read: 0,
            rcv_mark_ms: now_ms,
            rcv_mark_read: 0,
            rcv_space: cc::initial_window(u32::from(mss)),
            rcv_rtt_us: 0,
        }
    }

    /// Active open: a connection in SYN-SENT whose SYN the next
    /// [`poll`](Self::poll) sends.
    pub fn connect(
        local: SocketAddr,
        remote: SocketAddr,
        iss: Seq,
        cfg: Config,
        now_ms: u64,
    ) -> Tcb {
        Tcb::connect_with(local, remote, iss, cfg, now_ms, None)
    }

    /// [`connect`](Self::connect) on rings from an earlier connection.
    pub fn connect_with(
        local: SocketAddr,
        remote: SocketAddr,
        iss: Seq,
        cfg: Config,
        now_ms: u64,
        bufs: Option<Buffers>,
    ) -> Tcb {
        let mut t = Tcb::new(local, remote, iss, cfg, now_ms, bufs);
        t.state = State::SynSent;
        t.active = true;
        if cfg.window_scale {
            t.rcv_shift = shift_for(max_rx(&t.cfg));
        }
        t
    }

    /// Passive open from a listener's SYN: a connection in SYN-RECEIVED
    /// whose SYN-ACK the next [`poll`](Self::poll) sends. `None` unless
    /// `syn` is a SYN without ACK or RST.
    pub fn accept(
        syn: &Segment<'_>,
        local: SocketAddr,
        remote: SocketAddr,
        iss: Seq,
        cfg: Config,
        now_ms: u64,
    ) -> Option<Tcb> {
        Tcb::accept_with(syn, local, remote, iss, cfg, now_ms, None)
    }

    /// [`accept`](Self::accept) on rings from an earlier connection.
    pub fn accept_with(
        syn: &Segment<'_>,
        local: SocketAddr,
        remote: SocketAddr,
        iss: Seq,
        cfg: Config,
        now_ms: u64,
        bufs: Option<Buffers>,
    ) -> Option<Tcb> {
        if !syn.has(TcpFlags::SYN) || syn.flags.intersects(TcpFlags::ACK.union(TcpFlags::RST)) {
            return None;
        }
        let mut t = Tcb::new(local, remote, iss, cfg, now_ms, bufs);
        t.state = State::SynReceived;
        t.take_syn_options(syn, now_ms);
        t.irs = syn.seq;
        t.rcv_nxt = syn.seq + 1;
        t.rcv_adv = t.rcv_nxt;
        // A SYN's window is never scaled (RFC 7323 §2.2).
        t.snd_wnd = u32::from(syn.window);
        t.max_snd_wnd = t.snd_wnd;
        t.snd_wl1 = syn.seq;
        t.snd_wl2 = iss;
        Some(t)
    }

    /// MSS, window scale and timestamps from the peer's SYN (or SYN-ACK).
    /// With timestamps every segment carries 12 bytes of options, which
    /// the MSS does not count (RFC 6691): the text per segment is smaller.
    fn take_syn_options(&mut self, syn: &Segment<'_>, now_ms: u64) {
        self.ts_ok = self.cfg.timestamps && syn.timestamp.is_some();
        if let (true, Some((tsval, _))) = (self.ts_ok, syn.timestamp) {
            self.ts_recent = tsval;
            self.ts_recent_ms = now_ms;
        }
        let peer_mss = syn.mss.unwrap_or(DEFAULT_MSS).max(1);
        let opts = if self.ts_ok { TS_OPTION_LEN } else { 0 };
        self.snd_mss = u32::from(peer_mss.min(self.cfg.mss))
            .saturating_sub(opts)
            .max(1);
        self.cc = Cc::new(self.snd_mss, self.iss);
        match syn.window_scale {
            Some(s) if self.cfg.window_scale => {
                self.ws_ok = true;
                self.snd_shift = s.min(MAX_WINDOW_SHIFT);
                self.rcv_shift = shift_for(max_rx(&self.cfg));
            }
            _ => {
                self.ws_ok = false;
                self.snd_shift = 0;
                self.rcv_shift = 0;
            }
        }
    }

    // ----- Application API -----

    /// Queues what fits of `data` for sending; returns how many bytes.
    /// Nothing is taken after `shutdown_write`/`close` or once closed.
    pub fn send(&mut self, data: &[u8]) -> usize {
        let open = matches!(
            self.state,
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
        );
        if !open || self.fin_seq.is_some() {
            return 0;
        }
        self.tx.push(data)
    }

    /// Reads received bytes into `buf`; returns how many (0 when none are
    /// waiting; see [`at_eof`](Self::at_eof)). Sends a window update on
    /// the next `poll` when the read opened the window substantially.
    pub fn recv(&mut self, buf: &mut [u8]) -> usize {
        let n = self.rx.pop_into(buf);
        if n > 0 {
            self.app_read = self.app_read.wrapping_add(n as u64);
            self.maybe_window_update();
        }
        n
    }

    /// Bytes are waiting to be read.
    pub fn can_recv(&self) -> bool {
        !self.rx.is_empty()
    }

    /// The peer has closed its side and every byte has been read.
    pub fn at_eof(&self) -> bool {
        self.fin_received && self.rx.is_empty()
    }

    /// `send` would take at least one byte.
    pub fn can_send(&self) -> bool {
        matches!(self.state, State::Established | State::CloseWait)
            && self.fin_seq.is_none()
            && self.tx.free() > 0
    }

    /// Bytes queued and not yet acknowledged.
    pub fn send_queue(&self) -> usize {
        self.tx.len()
    }

    /// Sends a FIN after the queued data (half-close). In SYN-SENT or
    /// SYN-RECEIVED the FIN waits for the handshake.
    pub fn shutdown_write(&mut self) {
        if self.fin_seq.is_some() {
            return;
        }
        let next = match self.state {
            State::SynSent | State::SynReceived => self.state,
            State::Established => State::FinWait1,
            State::CloseWait => State::LastAck,
            _ => return,
        };
        self.fin_seq = Some(self.data_start() + clamp_u32(self.tx.len()));
        self.state = next;
    }

    /// Closes the connection: a FIN after the queued data; but a RST at
    /// once if received data is still unread (Linux's behaviour), and a RST
    /// later if data arrives after this call. In SYN-SENT the connection
    /// just ends.
    pub fn close(&mut self) {
        match self.state {
            State::Closed => {}
            State::SynSent => self.enter_closed(None),
            _ if !self.rx.is_empty() => self.abort(),
            _ => {
                self.app_closed = true;
                self.shutdown_write();
                if self.state == State::FinWait2 {
                    self.close_at = Some(self.last_send_ms.saturating_add(self.cfg.fin_wait2_ms));
                }
            }
        }
    }

    /// Resets the connection: a RST (when the peer knows of it) and CLOSED.
    pub fn abort(&mut self) {
        if matches!(self.state, State::Closed | State::SynSent) {
            self.enter_closed(None);
            return;
        }
        self.pending_rst = Some((self.snd_max, Some(self.rcv_nxt)));
        self.enter_closed(None);
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The connection's rings, for the next one (see [`Buffers`]).
    pub fn into_buffers(self) -> Buffers {
        Buffers {
            tx: self.tx,
            rx: self.rx,
        }
    }

    /// Why the connection ended, if it did not end cleanly.
    pub fn error(&self) -> Option<Error> {
        self.error
    }

    /// CLOSED with nothing left to send: the caller may drop it.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && self.pending_rst.is_none()
    }

    pub fn local(&self) -> SocketAddr {
        self.local
    }

    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// The MSS we send with (the peer's, capped by ours).
    pub fn snd_mss(&self) -> u32 {
        self.snd_mss
    }

    /// (peer's shift, our shift); both 0 without window scaling.
    pub fn window_shifts(&self) -> (u8, u8) {
        (self.snd_shift, self.rcv_shift)
    }

    /// The congestion state (for tests and statistics).
    pub fn cc(&self) -> &Cc {
        &self.cc
    }

    /// The retransmission timeout now, in ms.
    pub fn rto_ms(&self) -> u64 {
        u64::from(self.rtt.rto_us() / US_PER_MS)
    }

    /// The smoothed RTT in µs, once sampled.
    pub fn stats(&self) -> TcbStats {
        self.stats
    }

    /// The receive ring's capacity now (autotuning grows it).
    pub fn recv_buffer(&self) -> usize {
        self.rx.capacity()
    }

    /// Whether both SYNs carried timestamps.
    pub fn timestamps(&self) -> bool {
        self.ts_ok
    }

    pub fn srtt_us(&self) -> Option<u32> {
        self.rtt.srtt_us()
    }

    // ----- Internals -----

    /// Sequence number of the first byte of the send ring.
    fn data_start(&self) -> Seq {
        if self.snd_una == self.iss {
            self.iss + 1
        } else {
            self.snd_una
        }
    }

    fn fin_acked(&self) -> bool {
        self.fin_seq.is_some_and(|f| self.snd_una.gt(f))
    }

    fn enter_closed(&mut self, err: Option<Error>) {
        self.state = State::Closed;
        if err.is_some() {
            self.error = err;
        }
        self.rto_at = None;
        self.delack_at = None;
        self.persist_at = None;
        self.close_at = None;
        self.keepalive_at = None;
        self.ack_now = false;
        self.retransmit_una = false;
        self.probe_now = false;
        self.keepalive_probe = false;
    }

    fn enter_time_wait(&mut self, now_ms: u64) {
        self.state = State::TimeWait;
        self.rto_at = None;
        self.persist_at = None;
        self.keepalive_at = None;
        self.delack_at = None;
        self.close_at = Some(now_ms.saturating_add(self.cfg.time_wait_ms));
    }

    fn enter_established(&mut self, now_ms: u64) {
        self.state = if self.fin_seq.is_some() {
            State::FinWait1
        } else {
            State::Established
        };
        self.cc.on_handshake(self.syn_retransmits);
        if self.syn_retransmits > 0 {
            self.rtt.begin_data_after_syn_timeout();
        }
        self.syn_retransmits = 0;
        self.retries = 0;
        self.first_retx_ms = None;
        self.arm_keepalive(now_ms);
    }

    fn arm_keepalive(&mut self, now_ms: u64) {
        if let Some(k) = self.cfg.keepalive {
            if self.state.is_synchronized() && self.state != State::TimeWait {
                self.keepalive_at = Some(now_ms.saturating_add(k.idle_ms));
                self.keepalive_sent = 0;
            }
        }
    }

    /// A challenge ACK (RFC 5961), at most `challenge_acks_per_sec`.
    fn challenge_ack(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.challenge_window_ms) >= 1000 {
            self.challenge_window_ms = now_ms;
            self.challenge_count = 0;
        }
        if self.challenge_count < self.cfg.challenge_acks_per_sec {
            self.challenge_count += 1;
            self.ack_now = true;
        }
    }

    /// RCV.WND as last advertised.
    fn rcv_wnd(&self) -> u32 {
        let d = self.rcv_adv.dist(self.rcv_nxt);
        if d > 0 {
            d as u32
        } else {
            0
        }
    }

    fn max_rcv_wnd(&self) -> u32 {
        0xffffu32 << self.rcv_shift
    }

    /// The window the receive ring could offer now, rounded to the scale.
    fn rcv_wnd_possible(&self) -> u32 {
        let free = clamp_u32(self.rx.free()).min(self.max_rcv_wnd());
        (free >> self.rcv_shift) << self.rcv_shift
    }

    /// Receiver SWS threshold (RFC 9293 §3.8.6.2.2): min(MSS, buffer/2).
    fn sws_threshold(&self) -> u32 {
        u32::from(self.cfg.mss)
            .min(clamp_u32(self.rx.capacity() / 2))
            .max(1)
    }

    /// The window to put in a segment now; moves the advertised right edge
    /// forward only by at least the SWS threshold, never back.
    fn advertise(&mut self) -> u16 {
        let possible = self.rcv_wnd_possible();
        let edge = self.rcv_nxt + possible;
        let grow = edge.dist(self.rcv_adv);
        // An empty ring may always be offered whole.
        if grow > 0 && (grow as u32 >= self.sws_threshold() || self.rx.is_empty()) {
            self.rcv_adv = edge;
        }
        let wnd = self.rcv_wnd();
        u16::try_from(wnd >> self.rcv_shift).unwrap_or(u16::MAX)
    }

    /// After a read: ACK at once if the window can at least double and
    /// grow by the SWS threshold (a window update).
    fn maybe_window_update(&mut self) {
        if !matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) {
            return;
        }
        let possible = self.rcv_wnd_possible();
        let cur = self.rcv_wnd();
        let grow = (self.rcv_nxt + possible).dist(self.rcv_adv);
        if grow > 0 && grow as u32 >= self.sws_threshold() && possible >= cur.saturating_mul(2) {
            self.ack_now = true;
        }
    }

    // ----- Segment arrival -----

    /// Processes one segment from the peer (RFC 9293 §3.10.7). Whatever it
    /// calls for (ACKs, RST, data) goes out on the next [`poll`](Self::poll).
    pub fn on_segment(&mut self, now_ms: u64, seg: &Segment<'_>) {
        match self.state {
            State::Closed => {}
            State::SynSent => self.on_segment_syn_sent(now_ms, seg),
            _ => self.on_segment_other(now_ms, seg),
        }
    }

    fn on_segment_syn_sent(&mut self, now_ms: u64, seg: &Segment<'_>) {
        let has_ack = seg.has(TcpFlags::ACK);
        if has_ack && (seg.ack.le(self.iss) || seg.ack.gt(self.snd_max)) {
            if !seg.has(TcpFlags::RST) {
                self.pending_rst = Some((seg.ack, None));
            }
            return;
        }
        if seg.has(TcpFlags::RST) {
            if has_ack {
                self.enter_closed(Some(Error::Refused));
            }
            return;
        }
        if !seg.has(TcpFlags::SYN) {
            return;
        }
        self.take_syn_options(seg, now_ms);
        self.irs = seg.seq;
        self.rcv_nxt = seg.seq + 1;
        self.rcv_adv = self.rcv_nxt;
        if has_ack {
            self.snd_una = seg.ack;
            if self.snd_nxt.lt(self.snd_una) {
                self.snd_nxt = self.snd_una;
            }
            self.rtt_sample(now_ms, seg.ack, seg);
            self.rto_at = None;
            self.snd_wnd = u32::from(seg.window);
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = seg.ack;
            self.enter_established(now_ms);
            self.ack_now = true;
        } else {
            // Simultaneous open: SYN-ACK with our ISS again.
            self.state = State::SynReceived;
            self.snd_wnd = u32::from(seg.window);
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = seg.seq;
            self.snd_nxt = self.iss;
            self.rtt_timing = None;
        }
    }

    /// RFC 9293 §3.10.7.4, first check: is the segment acceptable?
    fn acceptable(&self, seg: &Segment<'_>) -> bool {
        let len = seg.seg_len();
        let wnd = self.rcv_wnd();
        match (len, wnd) {
            (0, 0) => seg.seq == self.rcv_nxt,
            (0, _) => seg.seq.in_window(self.rcv_nxt, wnd),
            (_, 0) => false,
            _ => {
                seg.seq.in_window(self.rcv_nxt, wnd)
                    || (seg.seq + (len - 1)).in_window(self.rcv_nxt, wnd)
            }
        }
    }

    fn on_segment_other(&mut self, now_ms: u64, seg: &Segment<'_>) {
        self.arm_keepalive(now_ms);
        // A retransmitted SYN in SYN-RECEIVED: our SYN-ACK was lost.
        if self.state == State::SynReceived
            && seg.has(TcpFlags::SYN)
            && !seg.flags.intersects(TcpFlags::ACK.union(TcpFlags::RST))
            && seg.seq == self.irs
        {
            self.ack_now = true;
            return;
        }
        // Simultaneous open: the peer's SYN-ACK acknowledges our SYN (Linux
        // lets it pass the sequence test the same way).
        if self.state == State::SynReceived
            && seg.has(TcpFlags::SYN.union(TcpFlags::ACK))
            && !seg.has(TcpFlags::RST)
            && seg.seq == self.irs
            && seg.ack.gt(self.snd_una)
            && seg.ack.le(self.snd_max)
        {
            self.snd_una = seg.ack;
            self.snd_nxt = self.snd_nxt.max(seg.ack);
            self.rto_at = None;
            self.snd_wnd = u32::from(seg.window);
            self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = seg.ack;
            self.rtt_sample(now_ms, seg.ack, seg);
            self.enter_established(now_ms);
            return;
        }
        let rst = seg.has(TcpFlags::RST);
        // RFC 5961 §4: a SYN in a synchronized state gets a challenge ACK.
        if seg.has(TcpFlags::SYN) && !rst && self.state.is_synchronized() {
            self.challenge_ack(now_ms);
            return;
        }
        // RFC 7323 §5.3 R1 (PAWS), before the sequence check: a timestamp
        // older than TS.Recent is an old duplicate, answered by an ACK (at
        // the challenge ACK rate) and dropped. Once negotiated, a segment
        // without one is dropped too (§3.2); a RST is not (§5.3).
        let ts = if self.ts_ok { seg.timestamp } else { None };
        if self.ts_ok && !rst {
            match ts {
                None => {
                    self.stats.paws_drops += 1;
                    return;
                }
                Some((tsval, _)) => {
                    let idle = now_ms.saturating_sub(self.ts_recent_ms) >= PAWS_IDLE_MS;
                    if seq_lt(tsval, self.ts_recent) && !idle {
                        self.stats.paws_drops += 1;
                        self.challenge_ack(now_ms);
                        return;
                    }
                }
            }
        }
        // First: sequence acceptability. With a zero window a segment at
        // RCV.NXT still has its ACK processed (a zero-window probe).
        let mut ack_only = false;
        if !self.acceptable(seg) {
            if rst {
                return;
            }
            if self.rcv_wnd() == 0 && seg.seq == self.rcv_nxt {
                ack_only = true;
                self.ack_now = true;
            } else {
                self.ack_now = true;
                if self.state == State::TimeWait && seg.has(TcpFlags::FIN) {
                    self.enter_time_wait(now_ms);
                }
                return;
            }
        }
        // RFC 7323 §4.3 (R3): the TSval to echo is that of the segment
        // that advanced the left edge, so the echo of a retransmission
        // that fills a hole is the retransmission's (an RTT sample for the
        // peer), and that of out-of-order segments is never taken.
        if let Some((tsval, _)) = ts {
            if !rst && seg.seq.le(self.last_ack_sent) && !seq_lt(tsval, self.ts_recent) {
                self.ts_recent = tsval;
                self.ts_recent_ms = now_ms;
            }
        }
        // Second: RST (RFC 5961 §3.2).
        if rst {
            if seg.seq != self.rcv_nxt {
                self.challenge_ack(now_ms);
                return;
            }
            let err = match self.state {
                State::SynReceived if self.active => Some(Error::Refused),
                State::Closing | State::LastAck | State::TimeWait => None,
                _ => Some(Error::Reset),
            };
            self.enter_closed(err);
            return;
        }
        // A SYN in SYN-RECEIVED that is not the retransmission: challenge.
        if seg.has(TcpFlags::SYN) {
            self.challenge_ack(now_ms);
            return;
        }
        // Fifth: ACK.
        if !seg.has(TcpFlags::ACK) {
            return;
        }
        if self.state == State::SynReceived {
            if seg.ack.gt(self.snd_una) && seg.ack.le(self.snd_max) {
                self.snd_wnd = u32::from(seg.window) << self.snd_shift;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = seg.seq;
                self.snd_wl2 = seg.ack;
                self.enter_established(now_ms);
            } else {
                self.pending_rst = Some((seg.ack, None));
                return;
            }
        }
        if !self.process_ack(now_ms, seg) {
            return;
        }
        match self.state {
            State::FinWait1 if self.fin_acked() => {
                self.state = State::FinWait2;
                if self.app_closed {
                    self.close_at = Some(now_ms.saturating_add(self.cfg.fin_wait2_ms));
                }
            }
            State::Closing if self.fin_acked() => self.enter_time_wait(now_ms),
            State::LastAck if self.fin_acked() => {
                self.enter_closed(None);
                return;
            }
            _ => {}
        }
        // Seventh: text.
        let plen = clamp_u32(seg.payload_len());
        if plen > 0 && !ack_only {
            if matches!(
                self.state,
                State::Established | State::FinWait1 | State::FinWait2
            ) {
                if self.app_closed {
                    // Data after close: nobody will read it (Linux resets).
                    self.pending_rst = Some((self.snd_max, Some(self.rcv_nxt)));
                    self.enter_closed(None);
                    return;
                }
                self.take_text(now_ms, seg, plen);
            } else {
                self.ack_now = true;
            }
        }
        // Eighth: FIN.
        if seg.has(TcpFlags::FIN) && !ack_only && !self.fin_received {
            let fin_at = seg.seq + plen;
            if fin_at == self.rcv_nxt {
                self.take_fin(now_ms);
            } else if fin_at.gt(self.rcv_nxt) {
                self.fin_ooo = Some(fin_at);
                self.ack_now = true;
            }
        } else if seg.has(TcpFlags::FIN) && self.state == State::TimeWait {
            self.ack_now = true;
            self.enter_time_wait(now_ms);
        }
    }

    /// RFC 9293 §3.10.7.4, fifth check, in a synchronized state. Returns
    /// whether the segment goes on to its text and FIN.
    fn process_ack(&mut self, now_ms: u64, seg: &Segment<'_>) -> bool {
        let ack = seg.ack;
        // RFC 5961 §5: acceptable is SND.UNA - MAX.SND.WND <= ACK <= SND.MAX.
        let oldest = self.snd_una - self.max_snd_wnd;
        let newest = if self.probe_sent {
            self.snd_max.max(self.snd_nxt + 1)
        } else {
            self.snd_max
        };
        if ack.gt(newest) || ack.lt(oldest) {
            self.challenge_ack(now_ms);
            return false;
        }
        let seg_wnd = u32::from(seg.window) << self.snd_shift;
        if ack.gt(self.snd_una) {
            let flight_before = self.snd_max.offset_from(self.snd_una);
            let acked = ack.offset_from(self.snd_una);
            // Our SYN, when this ACK is the one that completes the handshake.
            let syn = u32::from(self.snd_una == self.iss);
            let data_acked = acked.saturating_sub(syn);
            self.tx.consume(data_acked as usize);
            self.snd_una = ack;
            if self.snd_nxt.lt(ack) {
                self.snd_nxt = ack;
            }
            // Only a probe is out when the ACK goes beyond SND.MAX.
            self.snd_max = self.snd_max.max(ack);
            self.probe_sent = false;
            self.rtt_sample(now_ms, ack, seg);
            self.retries = 0;
            self.first_retx_ms = None;
            self.detect_spurious(seg, flight_before, data_acked);
            self.tlp_acked(seg, ack, flight_before);
            self.retx_watch = None;
            if self.cc.on_ack(ack, data_acked, flight_before) == AckAction::RetransmitNext {
                self.retransmit_una = true;
                self.watch_retransmission();
            }
            // RFC 6298 §5.2, §5.3 (nothing in flight after a lone probe byte).
            if self.snd_nxt == self.snd_una && self.snd_max == self.snd_una {
                self.rto_at = None;
                self.pto_armed = false;
            } else {
                self.arm_retransmit_timer(now_ms);
            }
        } else if ack == self.snd_una
            && seg.payload_len() == 0
            && !seg.flags.intersects(TcpFlags::SYN.union(TcpFlags::FIN))
            && self.snd_max != self.snd_una
            && seg_wnd == self.snd_wnd
        {
            // A duplicate ACK (RFC 5681 §2).
            let flight = self.snd_max.offset_from(self.snd_una);
            let before = self.cc;
            let mut action = self.cc.on_dup_ack(ack, flight, self.snd_max);
            if action == AckAction::None && self.tlp.is_some() && !self.cc.in_recovery() {
                // After a probe, one duplicate says the peer holds data
                // beyond SND.UNA but not SND.UNA: after a PTO of silence,
                // that is a loss, not reordering (as RFC 5827's early
                // retransmit lowers the threshold for small flights).
                action = self.cc.enter_recovery(flight, self.snd_max);
                self.tlp = None;
            }
            if action == AckAction::FastRetransmit {
                self.retransmit_una = true;
                self.stats.fast_retransmits += 1;
                self.begin_episode(now_ms, false, before, flight);
                self.watch_retransmission();
            } else if let Some((seen, limit)) = &mut self.retx_watch {
                // Lost retransmission: more duplicates than the segments
                // sent before the retransmission can cause, so some come
                // from segments sent after it, which arrived while it did
                // not (a FIFO path; the margin of three absorbs some
                // reordering). Without SACK this is the only early sign;
                // otherwise only the RTO repairs it.
                *seen += 1;
                if *seen > *limit && self.cc.in_recovery() {
                    self.retransmit_una = true;
                    self.stats.lost_retransmits += 1;
                    self.watch_retransmission();
                }
            }
        }
        // The send window (SND.WL1/SND.WL2), from ACKs not older than SND.UNA.
        if ack.ge(self.snd_una)
            && (self.snd_wl1.lt(seg.seq) || self.snd_wl1 == seg.seq && self.snd_wl2.le(ack))
        {
            let was_zero = self.snd_wnd == 0;
            self.snd_wnd = seg_wnd;
            self.max_snd_wnd = self.max_snd_wnd.max(seg_wnd);
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = ack;
            if seg_wnd > 0 && (was_zero || self.persist_at.is_some()) {
                self.persist_at = None;
                self.persist_backoff = 0;
            }
        }
        true
    }

    /// An RTT sample from an ACK of new data: with timestamps, from its
    /// TSecr (RFC 7323 §4: every such ACK, also of retransmitted data and
    /// during recovery); without, if `ack` covers the timed segment
    /// (Karn's rule: only segments never retransmitted are timed).
    fn rtt_sample(&mut self, now_ms: u64, ack: Seq, seg: &Segment<'_>) {
        if let (true, Some((_, tsecr))) = (self.ts_ok, seg.timestamp) {
            let ms = self.tsval(now_ms).wrapping_sub(tsecr);
            // TSecr 0 is "no echo" (a SYN's); a future echo is bogus.
            if tsecr != 0 && ms < 1 << 30 {
                let us = u64::from(ms).saturating_mul(u64::from(US_PER_MS));
                self.rtt.sample(u32::try_from(us).unwrap_or(u32::MAX));
                self.rtt_timing = None;
                return;
            }
        }
        if let Some((end, sent)) = self.rtt_timing {
            if ack.ge(end) {
                let ms = now_ms.saturating_sub(sent);
                let us = ms.saturating_mul(u64::from(US_PER_MS));
                self.rtt.sample(u32::try_from(us).unwrap_or(u32::MAX));
                self.rtt_timing = None;
            }
        }
    }

    /// Starts counting the duplicate ACKs that follow a retransmission of
    /// SND.UNA in recovery: the segments then in flight can cause at most
    /// one each.
    fn watch_retransmission(&mut self) {
        let segs = self.snd_max.offset_from(self.snd_una) / self.snd_mss.max(1);
        self.retx_watch = Some((0, segs.saturating_add(cc::DUP_ACK_THRESHOLD)));
    }

    /// The first retransmission of a loss episode (a timeout, or a fast
    /// retransmit): remember its TSval and the congestion state before
    /// it, for Eifel. A later retransmission of the same episode keeps
    /// the first record (a timeout after a fast retransmit turns it into
    /// a timeout).
    fn begin_episode(&mut self, now_ms: u64, timeout: bool, before: Cc, flight: u32) {
        if !self.ts_ok {
            return;
        }
        match &mut self.eifel {
            Some(e) => e.timeout |= timeout,
            None => {
                self.eifel = Some(Eifel {
                    tsval: self.tsval(now_ms),
                    timeout,
                    before,
                    pipe_prev: flight.max(before.ssthresh()),
                })
            }
        }
    }

    /// Eifel detection (RFC 3522 §3.2) on the first ACK of new data after
    /// a retransmission: a TSecr older than the retransmission's TSval was
    /// sent for the original, which therefore was not lost. The response
    /// (RFC 4015): after a timeout, cwnd = FlightSize + min(acked, IW),
    /// ssthresh = pipe_prev and new data resumes at SND.MAX instead of
    /// going back N; after a fast retransmit, the state before it.
    fn detect_spurious(&mut self, seg: &Segment<'_>, flight_before: u32, acked: u32) {
        let Some(e) = self.eifel.take() else {
            return;
        };
        let Some((_, tsecr)) = seg.timestamp else {
            return;
        };
        if tsecr == 0 || !seq_lt(tsecr, e.tsval) {
            return;
        }
        self.stats.spurious_undos += 1;
        let flight = flight_before.saturating_sub(acked);
        if e.timeout {
            self.cc.undo_timeout(e.pipe_prev, flight, acked);
            if self.snd_nxt.lt(self.snd_max) {
                self.snd_nxt = self.snd_max;
            }
        } else {
            self.cc.undo_recovery(e.before);
        }
        self.retransmit_una = false;
    }

    /// An ACK of new data while a tail loss probe is out: once it covers
    /// the probe the episode ends. A probe that sent old data again and
    /// is acknowledged by an ACK echoing the probe's own TSval (or with no
    /// timestamps to tell) repaired a loss: the congestion window is
    /// reduced as by a fast recovery (RFC 8985 §7.4.2).
    fn tlp_acked(&mut self, seg: &Segment<'_>, ack: Seq, flight_before: u32) {
        let Some(t) = self.tlp else {
            return;
        };
        if ack.lt(t.end) {
            return;
        }
        self.tlp = None;
        if !t.retransmission {
            return;
        }
        let original_arrived = self.ts_ok
            && seg
                .timestamp
                .is_some_and(|(_, tsecr)| tsecr != 0 && seq_lt(tsecr, t.tsval));
        if !original_arrived {
            self.stats.tlp_recoveries += 1;
            self.cc.reduce(flight_before);
        }
    }

    /// (Re)arms the retransmission timer: as a tail loss probe timeout
    /// when [`pto_ms`](Self::pto_ms) allows one shorter than the RTO.
    fn arm_retransmit_timer(&mut self, now_ms: u64) {
        let rto = self.rto_ms();
        match self.pto_ms() {
            Some(pto) if pto < rto => {
                self.pto_armed = true;
                self.rto_at = Some(now_ms.saturating_add(pto));
            }
            _ => {
                self.pto_armed = false;
                self.rto_at = Some(now_ms.saturating_add(rto));
            }
        }
    }

    /// The probe timeout (RFC 8985 §7.2) when a probe may be scheduled:
    /// data in flight, an RTT measured, not in recovery or after a
    /// timeout, no probe out. 2·SRTT, plus the worst delayed ACK when one
    /// segment is out, plus Linux's smallest delayed ACK otherwise (the
    /// ACK of an odd last segment may wait that long).
    fn pto_ms(&self) -> Option<u64> {
        let open = matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        );
        if !self.cfg.tlp
            || !open
            || self.tlp.is_some()
            || self.cc.in_recovery()
            || self.retries > 0
            || self.snd_nxt != self.snd_max
            || self.snd_max == self.snd_una
        {
            return None;
        }
        let srtt_ms = u64::from(self.rtt.srtt_us()?).div_ceil(u64::from(US_PER_MS));
        let flight = self.snd_max.offset_from(self.snd_una);
        let extra = if flight <= self.snd_mss {
            TLP_WORST_DELACK_MS
        } else {
            TLP_DELACK_MS
        };
        Some((2 * srtt_ms + extra).max(TLP_MIN_MS))
    }

    /// Seventh step: the text goes into the receive ring at its offset.
    fn take_text(&mut self, now_ms: u64, seg: &Segment<'_>, plen: u32) {
        let window = clamp_u32(self.rx.free());
        let had_holes = self.reasm.intervals() > 0;
        let Some(p) = reasm::in_window(seg.seq.get(), plen, self.rcv_nxt.get(), window) else {
            // Old or beyond the buffer: acknowledge what we have.
            self.ack_now = true;
            return;
        };
        match self.reasm.insert(p.offset, p.len) {
            Insert::Full => {
                // No room beyond every held interval: dropped without a
                // duplicate ACK (as Linux's tcp_data_queue_ofo), which
                // would only let a Reno sender send more of the same.
                return;
            }
            Insert::Duplicate => self.ack_now = true,
            Insert::New(_) => {
                self.write_text(seg, p.skip as usize, p.offset as usize, p.len as usize)
            }
        }
        let n = self.reasm.advance();
        self.rx.commit(n as usize);
        self.rcv_nxt += n;
        self.autotune(now_ms, seg, plen);
        if p.offset > 0 || had_holes || p.skip > 0 {
            // Out of order, or filling a hole: ACK at once (RFC 5681 §4.2).
            self.ack_now = true;
            // Beyond a hole: a duplicate ACK of its own, without data, even
            // when data waits to go: the sender counts only ACKs without
            // data as duplicates (RFC 5681 §2), so a duplicate riding on
            // data would cost it its fast retransmit (an echo under loss).
            if p.offset > 0 {
                self.pure_ack_now = true;
            }
        } else {
            if plen >= self.snd_mss {
                self.unacked_segs = self.unacked_segs.saturating_add(1);
            }
            if self.unacked_segs >= 2 || self.cfg.delayed_ack_ms == 0 {
                self.ack_now = true;
            } else if self.delack_at.is_none() {
                self.delack_at = Some(now_ms.saturating_add(self.cfg.delayed_ack_ms));
            }
        }
        if let Some(f) = self.fin_ooo {
            if f == self.rcv_nxt {
                self.take_fin(now_ms);
            }
        }
    }

    /// Receive buffer autotuning (after Linux's `tcp_rcv_space_adjust`):
    /// once per receiver RTT, if the application read more than in the
    /// last measured round trip, the ring grows to twice that (more while
    /// the sender is still ramping up: it doubles per RTT in slow start),
    /// up to `recv_buffer`. A small flow keeps its small ring and window.
    /// The RTT is the receiver's own estimate from the echo of our TSval
    /// in full-sized segments (`tcp_rcv_rtt_measure_ts`), else SRTT, at
    /// least 1 ms.
    fn autotune(&mut self, now_ms: u64, seg: &Segment<'_>, plen: u32) {
        let max = max_rx(&self.cfg);
        // Not while a hole is open: the duplicate ACKs it draws must carry
        // one window, or the sender does not count them (RFC 5681 §2).
        if self.rx.capacity() >= max || self.reasm.intervals() > 0 {
            return;
        }
        if let (true, Some((_, tsecr))) = (self.ts_ok, seg.timestamp) {
            let ms = self.tsval(now_ms).wrapping_sub(tsecr);
            if tsecr != 0 && plen >= self.snd_mss && ms < 1 << 20 {
                let us = ms.saturating_mul(US_PER_MS).max(1);
                // Keep the smaller of old and new quickly, grow slowly.
                self.rcv_rtt_us = if self.rcv_rtt_us == 0 || us < self.rcv_rtt_us {
                    us
                } else {
                    self.rcv_rtt_us + (us - self.rcv_rtt_us) / 8
                };
            }
        }
        let rtt_us = match self.rcv_rtt_us {
            0 => self.rtt.srtt_us().unwrap_or(0),
            r => r,
        };
        let rtt_ms = u64::from(rtt_us.div_ceil(US_PER_MS)).max(1);
        if now_ms.saturating_sub(self.rcv_mark_ms) < rtt_ms {
            return;
        }
        let copied = clamp_u32(self.app_read.wrapping_sub(self.rcv_mark_read) as usize);
        self.rcv_mark_ms = now_ms;
        self.rcv_mark_read = self.app_read;
        let space = self.rcv_space.max(1);
        if copied <= space {
            return;
        }
        let mss = u32::from(self.cfg.mss);
        let mut win = u64::from(copied) * 2 + 16 * u64::from(mss);
        win += 2 * win * u64::from(copied - space) / u64::from(space);
        self.rcv_space = copied;
        let target = usize::try_from(win).unwrap_or(usize::MAX).min(max);
        if target > self.rx.capacity() {
            // Whole pages of 4 KiB, not a byte count the allocator rounds.
            let target = target.div_ceil(4096).saturating_mul(4096).min(max);
            self.rx.grow(target);
            self.stats.rcv_buffer_grows += 1;
        }
    }

    /// Copies `len` bytes of the segment's text from `skip` into the ring
    /// at `offset` past the readable bytes (the text is two slices).
    fn write_text(&mut self, seg: &Segment<'_>, skip: usize, offset: usize, len: usize) {
        let a = seg.payload;
        let b = seg.payload_tail;
        let end = skip.saturating_add(len);
        if skip < a.len() {
            let part = a.get(skip..end.min(a.len())).unwrap_or(&[]);
            self.rx.write_at(offset, part);
            let rest = len - part.len();
            if rest > 0 {
                let part2 = b.get(..rest).unwrap_or(&[]);
                self.rx.write_at(offset + part.len(), part2);
            }
        } else {
            let s = skip - a.len();
            let part = b.get(s..s.saturating_add(len).min(b.len())).unwrap_or(&[]);
            self.rx.write_at(offset, part);
        }
    }

    /// Eighth step: the peer's FIN at RCV.NXT.
    fn take_fin(&mut self, now_ms: u64) {
        self.fin_received = true;
        self.fin_ooo = None;
        self.rcv_nxt += 1;
        self.ack_now = true;
        match self.state {
            State::SynReceived | State::Established => self.state = State::CloseWait,
            State::FinWait1 => {
                if self.fin_acked() {
                    self.enter_time_wait(now_ms);
                } else {
                    self.state = State::Closing;
                }
            }
            State::FinWait2 => self.enter_time_wait(now_ms),
            _ => {}
        }
    }

    // ----- Timers -----

    /// The earliest time [`on_time`](Self::on_time) has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        [
            self.rto_at,
            self.delack_at,
            self.persist_at,
            self.close_at,
            self.keepalive_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the timers due by `now_ms`; what they send goes out on the next
    /// [`poll`](Self::poll) (which calls this itself).
    pub fn on_time(&mut self, now_ms: u64) {
        if self.close_at.is_some_and(|t| now_ms >= t) {
            self.close_at = None;
            if matches!(self.state, State::TimeWait | State::FinWait2) {
                self.enter_closed(None);
                return;
            }
        }
        if self.rto_at.is_some_and(|t| now_ms >= t) {
            if self.pto_armed {
                // The probe goes out on the next poll, which arms the RTO.
                self.rto_at = None;
                self.pto_armed = false;
                self.tlp_now = true;
            } else {
                self.on_rto(now_ms);
                if self.state == State::Closed {
                    return;
                }
            }
        }
        if self.delack_at.is_some_and(|t| now_ms >= t) {
            self.delack_at = None;
            self.ack_now = true;
        }
        if self.persist_at.is_some_and(|t| now_ms >= t) {
            self.persist_at = None;
            self.probe_now = true;
        }
        if let (Some(t), Some(k)) = (self.keepalive_at, self.cfg.keepalive) {
            if now_ms >= t {
                if self.keepalive_sent >= k.probes {
                    self.give_up();
                    return;
                }
                self.keepalive_sent += 1;
                self.keepalive_probe = true;
                self.keepalive_at = Some(now_ms.saturating_add(k.interval_ms));
            }
        }
    }

    fn give_up(&mut self) {
        if self.state != State::SynSent {
            self.pending_rst = Some((self.snd_max, Some(self.rcv_nxt)));
        }
        self.enter_closed(Some(Error::TimedOut));
    }

    fn on_rto(&mut self, now_ms: u64) {
        self.rto_at = None;
        let first = *self.first_retx_ms.get_or_insert(now_ms);
        if matches!(self.state, State::SynSent | State::SynReceived) {
            if self.syn_retransmits >= self.cfg.max_syn_retries {
                self.give_up();
                return;
            }
            self.syn_retransmits += 1;
        } else {
            if self.retries >= self.cfg.max_retries
                || now_ms.saturating_sub(first) >= self.cfg.max_retry_ms
            {
                self.give_up();
                return;
            }
            self.retries += 1;
            self.stats.timeouts += 1;
            let flight = self.snd_max.offset_from(self.snd_una);
            let before = self.cc;
            self.cc.on_rto(flight, self.snd_max);
            self.begin_episode(now_ms, true, before, flight);
            self.tlp = None;
            self.tlp_now = false;
            self.retx_watch = None;
        }
        self.rtt.backoff();
        // Go back N: everything from SND.UNA is sent again.
        self.snd_nxt = self.snd_una;
        self.rtt_timing = None;
        self.retransmit_una = false;
    }

    // ----- Output -----

    /// Runs the expired timers and hands each segment to send to `emit`,
    /// in order. The segment borrows the send ring; the caller copies it
    /// into a frame (adding ports, addresses and the checksum).
    pub fn poll(&mut self, now_ms: u64, emit: &mut dyn FnMut(&Segment<'_>)) {
        self.on_time(now_ms);
        if let Some((seq, ack)) = self.pending_rst.take() {
            let flags = if ack.is_some() {
                TcpFlags::RST.union(TcpFlags::ACK)
            } else {
                TcpFlags::RST
            };
            emit(&Segment {
                seq,
                ack: ack.unwrap_or(Seq(0)),
                flags,
                ..Segment::default()
            });
        }
        match self.state {
            State::Closed => {}
            State::SynSent | State::SynReceived => self.poll_handshake(now_ms, emit),
            _ => self.poll_synchronized(now_ms, emit),
        }
    }

    fn emit_out(&self, o: &Out, emit: &mut dyn FnMut(&Segment<'_>)) {
        let (a, b) = self.tx.as_slices();
        let (payload, payload_tail) = if o.data_off < a.len() {
            let end = o.data_off.saturating_add(o.data_len).min(a.len());
            let first = a.get(o.data_off..end).unwrap_or(&[]);
            let rest = o.data_len - first.len();
            (first, b.get(..rest).unwrap_or(&[]))
        } else {
            let s = o.data_off - a.len();
            (
                b.get(s..s.saturating_add(o.data_len)).unwrap_or(&[]),
                &[][..],
            )
        };
        emit(&Segment {
            seq: o.seq,
            ack: o.ack,
            flags: o.flags,
            window: o.window,
            mss: o.mss,
            window_scale: o.window_scale,
            sack_permitted: false,
            timestamp: o.timestamp,
            payload,
            payload_tail,
        });
    }

    fn poll_handshake(&mut self, now_ms: u64, emit: &mut dyn FnMut(&Segment<'_>)) {
        let resend = self.ack_now && self.state == State::SynReceived;
        if self.snd_nxt != self.iss && !resend {
            return;
        }
        self.ack_now = false;
        let window = u16::try_from(clamp_u32(self.rx.free()).min(0xffff)).unwrap_or(u16::MAX);
        let tsval = self.tsval(now_ms);
        let (flags, ack, ws, ts) = if self.state == State::SynSent {
            let ws = self.cfg.window_scale.then_some(self.rcv_shift);
            let ts = self.cfg.timestamps.then_some((tsval, 0));
            (TcpFlags::SYN, Seq(0), ws, ts)
        } else {
            // Our window scale and timestamps in a SYN-ACK only if the
            // peer's SYN had them.
            let ws = self.ws_ok.then_some(self.rcv_shift);
            let ts = self.ts_ok.then_some((tsval, self.ts_recent));
            (TcpFlags::SYN.union(TcpFlags::ACK), self.rcv_nxt, ws, ts)
        };
        if self.state == State::SynReceived {
            self.rcv_adv = self.rcv_nxt + u32::from(window);
            self.last_ack_sent = self.rcv_nxt;
        }
        let o = Out {
            seq: self.iss,
            ack,
            flags,
            window,
            mss: Some(self.cfg.mss),
            window_scale: ws,
            timestamp: ts,
            data_off: 0,
            data_len: 0,
        };
        if self.snd_nxt == self.iss {
            self.snd_nxt = self.iss + 1;
            self.snd_max = self.snd_max.max(self.snd_nxt);
            if self.syn_retransmits == 0 {
                self.rtt_timing = Some((self.snd_nxt, now_ms));
            }
            if self.rto_at.is_none() {
                self.rto_at = Some(now_ms.saturating_add(self.rto_ms()));
            }
        }
        self.last_send_ms = now_ms;
        self.emit_out(&o, emit);
    }

    fn header(
        &mut self,
        now_ms: u64,
        seq: Seq,
        flags: TcpFlags,
        data_off: usize,
        data_len: usize,
    ) -> Out {
        let window = self.advertise();
        // Any segment we send carries the ACK.
        self.ack_now = false;
        self.delack_at = None;
        self.unacked_segs = 0;
        self.last_ack_sent = self.rcv_nxt;
        Out {
            seq,
            ack: self.rcv_nxt,
            flags: flags.union(TcpFlags::ACK),
            window,
            mss: None,
            window_scale: None,
            timestamp: self.ts_ok.then(|| (self.tsval(now_ms), self.ts_recent)),
            data_off,
            data_len,
        }
    }

    /// Our TSval now: the millisecond clock plus the connection's offset.
    fn tsval(&self, now_ms: u64) -> u32 {
        (now_ms as u32).wrapping_add(self.ts_offset)
    }

    /// Notes a segment occupying `[seq, end)` as sent. New data restarts
    /// a probe timeout (RFC 8985 §7.2); the RTO runs from the oldest
    /// segment out (RFC 6298 §5.1).
    fn sent(&mut self, now_ms: u64, end: Seq, new: bool) {
        let grew = end.gt(self.snd_max);
        if grew {
            if new && self.rtt_timing.is_none() {
                self.rtt_timing = Some((end, now_ms));
            }
            self.snd_max = end;
        } else {
            self.stats.retransmits += 1;
        }
        if self.rto_at.is_none() || (self.pto_armed && grew) {
            self.arm_retransmit_timer(now_ms);
        }
        self.persist_at = None;
        self.probe_sent = false;
        self.last_send_ms = now_ms;
    }

    fn poll_synchronized(&mut self, now_ms: u64, emit: &mut dyn FnMut(&Segment<'_>)) {
        if self.pure_ack_now {
            self.pure_ack_now = false;
            let o = self.header(now_ms, self.snd_max, TcpFlags::empty(), 0, 0);
            self.emit_out(&o, emit);
        }
        if self.state != State::TimeWait {
            self.poll_send(now_ms, emit);
        } else {
            self.retransmit_una = false;
            self.probe_now = false;
        }
        if self.keepalive_probe {
            self.keepalive_probe = false;
            // Linux's probe: an old sequence number the peer must ACK.
            let o = self.header(now_ms, self.snd_una - 1, TcpFlags::empty(), 0, 0);
            self.emit_out(&o, emit);
        }
        if self.ack_now {
            // SND.MAX, not a rewound SND.NXT, which the peer may find old
            // and drop (with the ACK it carries).
            let o = self.header(now_ms, self.snd_max, TcpFlags::empty(), 0, 0);
            self.emit_out(&o, emit);
        }
    }

    /// The tail loss probe (RFC 8985 §7.3): one new segment if the peer's
    /// window takes it (whatever cwnd says), else the last segment again.
    /// The RTO is armed behind it.
    fn send_probe(&mut self, now_ms: u64, emit: &mut dyn FnMut(&Segment<'_>)) {
        let flight = self.snd_max.offset_from(self.snd_una);
        if flight == 0 || self.snd_nxt != self.snd_max {
            return;
        }
        let mss = self.snd_mss as usize;
        let start = self.data_start();
        let off = self.snd_nxt.offset_from(start) as usize;
        let avail = self.tx.len().saturating_sub(off);
        let room = self.snd_wnd.saturating_sub(flight) as usize;
        let fin_out = self.fin_seq.filter(|f| self.snd_max.gt(*f));
        let (seq, len, mut flags, retransmission) = match fin_out {
            None if avail > 0 && room > 0 => {
                let len = avail.min(mss).min(room);
                let mut flags = TcpFlags::empty();
                if len == avail {
                    flags = TcpFlags::PSH;
                    if self.fin_seq == Some(self.snd_nxt + clamp_u32(len)) {
                        flags = flags.union(TcpFlags::FIN);
                    }
                }
                (self.snd_nxt, len, flags, false)
            }
            _ => {
                let data_end = fin_out.unwrap_or(self.snd_max);
                let len = (data_end.offset_from(self.snd_una) as usize).min(mss);
                let flags = if fin_out.is_some() {
                    TcpFlags::FIN
                } else {
                    TcpFlags::empty()
                };
                (data_end - clamp_u32(len), len, flags, true)
            }
        };
        if len > 0 && retransmission {
            flags = flags.union(TcpFlags::PSH);
        }
        let data_off = seq.offset_from(start) as usize;
        let o = self.header(now_ms, seq, flags, data_off, len);
        let mut end = seq + clamp_u32(len);
        if flags.contains(TcpFlags::FIN) {
            end += 1;
        }
        self.tlp = Some(Tlp {
            end: end.max(self.snd_max),
            retransmission,
            tsval: self.tsval(now_ms),
        });
        if !retransmission {
            self.snd_nxt = end;
        }
        self.stats.tlp_probes += 1;
        self.sent(now_ms, end, !retransmission);
        self.emit_out(&o, emit);
    }

    fn poll_send(&mut self, now_ms: u64, emit: &mut dyn FnMut(&Segment<'_>)) {
        let mss = self.snd_mss as usize;
        if self.retransmit_una {
            self.retransmit_una = false;
            self.rtt_timing = None;
            let len = self.tx.len().min(mss);
            let end = self.snd_una + clamp_u32(len);
            let mut flags = TcpFlags::empty();
            let mut seg_end = end;
            if self.fin_seq == Some(end) && self.snd_max.gt(end) {
                flags = TcpFlags::FIN;
                seg_end = end + 1;
            }
            if len > 0 || flags == TcpFlags::FIN {
                if len > 0 && len == self.tx.len() {
                    flags = flags.union(TcpFlags::PSH);
                }
                let o = self.header(now_ms, self.snd_una, flags, 0, len);
                if self.snd_nxt.lt(seg_end) {
                    self.snd_nxt = seg_end;
                }
                self.sent(now_ms, seg_end, false);
                self.emit_out(&o, emit);
            }
        }
        if self.tlp_now {
            self.tlp_now = false;
            self.send_probe(now_ms, emit);
        }
        let idle = self.snd_una == self.snd_max
            && now_ms.saturating_sub(self.last_send_ms) > self.rto_ms();
        if idle {
            self.cc.restart_after_idle();
        }
        let mut forced = false;
        loop {
            let start = self.data_start();
            let off = self.snd_nxt.offset_from(start) as usize;
            let avail = self.tx.len().saturating_sub(off);
            let flight = self.snd_nxt.offset_from(self.snd_una);
            // New data may use limited transmit (RFC 3042); a retransmission may not.
            let usable = if self.snd_nxt == self.snd_max {
                self.cc.usable_limited(flight, self.snd_wnd)
            } else {
                self.cc.usable(flight, self.snd_wnd)
            } as usize;
            let len = avail.min(usable).min(mss);
            let fin_here = self
                .fin_seq
                .is_some_and(|f| f == self.snd_nxt + clamp_u32(len));
            let nagle_ok = self.cfg.nodelay || flight == 0;
            let force = self.probe_now && !forced && flight == 0 && len > 0;
            let send_data = len > 0
                && (len == mss
                    || (len == avail && nagle_ok)
                    || (nagle_ok && len as u32 >= self.max_snd_wnd / 2)
                    || force);
            if !(send_data || (fin_here && len == avail)) {
                break;
            }
            if force {
                forced = true;
                self.probe_now = false;
                self.persist_backoff = self.persist_backoff.saturating_add(1);
            }
            let mut flags = TcpFlags::empty();
            let mut end = self.snd_nxt + clamp_u32(len);
            if fin_here && len == avail {
                flags = TcpFlags::FIN;
            }
            if len > 0 && len == avail {
                flags = flags.union(TcpFlags::PSH);
            }
            let seq = self.snd_nxt;
            let o = self.header(now_ms, seq, flags, off, len);
            if flags.contains(TcpFlags::FIN) {
                end += 1;
            }
            let new = self.snd_nxt == self.snd_max;
            self.snd_nxt = end;
            self.sent(now_ms, end, new);
            self.emit_out(&o, emit);
            if flags.contains(TcpFlags::FIN) || len == 0 {
                break;
            }
        }
        // Persist: data waits, nothing is in flight, the window is shut
        // (or too small for the SWS rules).
        let off = self.snd_nxt.offset_from(self.data_start()) as usize;
        let waiting = self.tx.len() > off;
        let in_flight = self.snd_nxt != self.snd_una;
        if waiting && !in_flight && self.rto_at.is_none() {
            if self.probe_now && self.snd_wnd == 0 {
                // Zero-window probe: one byte beyond the window.
                self.probe_now = false;
                self.persist_backoff = self.persist_backoff.saturating_add(1);
                let o = self.header(now_ms, self.snd_nxt, TcpFlags::empty(), off, 1);
                self.probe_sent = true;
                self.last_send_ms = now_ms;
                self.emit_out(&o, emit);
            }
            if self.persist_at.is_none() {
                let max = u64::from(self.rtt.config().max_rto_us / US_PER_MS);
                let base = self.rto_ms().max(1);
                let shift = self.persist_backoff.min(16);
                let delay = base.saturating_mul(1 << shift).min(max.max(base));
                self.persist_at = Some(now_ms.saturating_add(delay));
            }
        } else {
            self.probe_now = false;
            if !waiting {
                self.persist_at = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Our ISS and the peer's, as in packetdrill scripts.
    const ISS: u32 = 5000;
    const PEER: u32 = 1000;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    /// Small rings with shift 0, so windows read as plain numbers; no
    /// tail loss probes (the tests of timeouts would see them first; the
    /// probe's own tests turn them on).
    fn cfg() -> Config {
        Config {
            send_buffer: 65_535,
            recv_buffer: 65_535,
            tlp: false,
            ..Config::default()
        }
    }

    /// An owned segment, as captured from `poll` or injected.
    #[derive(Clone, PartialEq, Eq, Default)]
    struct Seg {
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        win: u16,
        mss: Option<u16>,
        ws: Option<u8>,
        sackp: bool,
        ts: Option<(u32, u32)>,
        data: Vec<u8>,
    }

    impl std::fmt::Debug for Seg {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(
                f,
                "{:?} seq {} ack {} win {} len {}",
                self.flags,
                self.seq,
                self.ack,
                self.win,
                self.data.len()
            )?;
            if let Some(m) = self.mss {
                write!(f, " mss {m}")?;
            }
            if let Some(w) = self.ws {
                write!(f, " ws {w}")?;
            }
            if let Some((v, e)) = self.ts {
                write!(f, " ts {v}/{e}")?;
            }
            Ok(())
        }
    }

    impl Seg {
        fn view(&self) -> Segment<'_> {
            Segment {
                seq: Seq(self.seq),
                ack: Seq(self.ack),
                flags: self.flags,
                window: self.win,
                mss: self.mss,
                window_scale: self.ws,
                sack_permitted: self.sackp,
                timestamp: self.ts,
                payload: &self.data,
                payload_tail: &[],
            }
        }
        fn with_mss(mut self, mss: u16) -> Seg {
            self.mss = Some(mss);
            self
        }
        fn with_ws(mut self, ws: u8) -> Seg {
            self.ws = Some(ws);
            self
        }
        fn with_ts(mut self, tsval: u32, tsecr: u32) -> Seg {
            self.ts = Some((tsval, tsecr));
            self
        }
        fn tap(mut self, f: impl FnOnce(&mut Seg)) -> Seg {
            f(&mut self);
            self
        }
    }

    /// packetdrill's flag letters: S F R P, and '.' for ACK.
    fn flags(s: &str) -> TcpFlags {
        let mut f = TcpFlags::empty();
        for c in s.chars() {
            f = f.union(match c {
                'S' => TcpFlags::SYN,
                'F' => TcpFlags::FIN,
                'R' => TcpFlags::RST,
                'P' => TcpFlags::PSH,
                '.' => TcpFlags::ACK,
                _ => panic!("flag {c}"),
            });
        }
        f
    }

    fn seg(f: &str, seq: u32, ack: u32, win: u16, data: &[u8]) -> Seg {
        Seg {
            seq,
            ack,
            flags: flags(f),
            win,
            data: data.to_vec(),
            ..Seg::default()
        }
    }

    fn own(s: &Segment<'_>) -> Seg {
        assert!(!s.sack_permitted, "we never send SACK-permitted");
        Seg {
            seq: s.seq.get(),
            ack: s.ack.get(),
            flags: s.flags,
            win: s.window,
            mss: s.mss,
            ws: s.window_scale,
            sackp: s.sack_permitted,
            ts: s.timestamp,
            data: [s.payload, s.payload_tail].concat(),
        }
    }

    fn out(t: &mut Tcb, now: u64) -> Vec<Seg> {
        let mut v = Vec::new();
        t.poll(now, &mut |s| v.push(own(s)));
        v
    }

    fn inject(t: &mut Tcb, now: u64, s: &Seg) -> Vec<Seg> {
        t.on_segment(now, &s.view());
        out(t, now)
    }

    /// Asserts exactly one segment with these flags, seq, ack and window
    /// (`win` None: not checked); returns it.
    #[track_caller]
    fn one(v: &[Seg], f: &str, seq: u32, ack: u32, win: Option<u16>) -> Seg {
        assert_eq!(v.len(), 1, "{v:#?}");
        let s = &v[0];
        assert_eq!(s.flags, flags(f), "{s:?}");
        assert_eq!((s.seq, s.ack), (seq, ack), "{s:?}");
        if let Some(w) = win {
            assert_eq!(s.win, w, "{s:?}");
        }
        s.clone()
    }

    /// A server connection after SYN (MSS 1460, no window scale), SYN-ACK
    /// and ACK at t = 0, with a window of `win` from the peer.
    fn server(c: Config, win: u16) -> Tcb {
        let syn = seg("S", PEER, 0, 65_535, &[]).with_mss(1460);
        let mut t = Tcb::accept(&syn.view(), addr(80), addr(4000), Seq(ISS), c, 0).unwrap();
        one(&out(&mut t, 0), "S.", ISS, PEER + 1, None);
        assert!(inject(&mut t, 0, &seg(".", PEER + 1, ISS + 1, win, &[])).is_empty());
        assert_eq!(t.state(), State::Established);
        t
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    // ----- Handshakes and options -----

    #[test]
    fn passive_open_negotiates_mss_and_window_scale_and_ignores_sack() {
        let mut syn = seg("S", PEER, 0, 29_200, &[]).with_mss(1400).with_ws(7);
        syn.sackp = true;
        let mut t = Tcb::accept(&syn.view(), addr(80), addr(4000), Seq(ISS), cfg(), 0).unwrap();
        assert_eq!(t.state(), State::SynReceived);
        let sa = one(&out(&mut t, 0), "S.", ISS, PEER + 1, Some(65_535));
        assert_eq!((sa.mss, sa.ws, sa.sackp), (Some(1460), Some(0), false));
        // Nothing more until the timer.
        assert!(out(&mut t, 10).is_empty());
        assert!(inject(&mut t, 10, &seg(".", PEER + 1, ISS + 1, 100, &[])).is_empty());
        assert_eq!(t.state(), State::Established);
        assert_eq!(t.snd_mss(), 1400);
        assert_eq!(t.window_shifts(), (7, 0));
        // The peer's window is scaled from now on: 100 << 7.
        assert_eq!(t.snd_wnd, 12_800);
        assert_eq!(t.srtt_us(), Some(10_000));
        assert!(t.next_deadline().is_none());
    }

    #[test]
    fn accept_refuses_what_is_not_a_syn() {
        for f in ["S.", "SR", ".", "R"] {
            let s = seg(f, PEER, 0, 100, &[]);
            assert!(Tcb::accept(&s.view(), addr(1), addr(2), Seq(ISS), cfg(), 0).is_none());
        }
    }

    #[test]
    fn window_scale_only_when_both_sides_send_it() {
        let big = Config {
            recv_buffer: 1 << 20,
            recv_buffer_initial: 1 << 20,
            ..cfg()
        };
        // Peer offers 2; our shift for 1 MiB is 5.
        let syn = seg("S", PEER, 0, 1000, &[]).with_ws(2);
        let mut t = Tcb::accept(&syn.view(), addr(80), addr(4000), Seq(ISS), big, 0).unwrap();
        let sa = one(&out(&mut t, 0), "S.", ISS, PEER + 1, Some(65_535));
        assert_eq!(sa.ws, Some(5));
        inject(&mut t, 0, &seg(".", PEER + 1, ISS + 1, 100, &[]));
        assert_eq!(t.snd_wnd, 400);
        t.send(b"x");
        let d = one(&out(&mut t, 0), "P.", ISS + 1, PEER + 1, None);
        assert_eq!(d.win, ((1u32 << 20) >> 5) as u16);
        // Peer without window scale: none in our SYN-ACK, no scaling.
        let syn = seg("S", PEER, 0, 1000, &[]);
        let mut t = Tcb::accept(&syn.view(), addr(80), addr(4000), Seq(ISS), big, 0).unwrap();
        let sa = one(&out(&mut t, 0), "S.", ISS, PEER + 1, Some(65_535));
        assert_eq!((sa.ws, sa.mss), (None, Some(1460)));
        assert_eq!(t.window_shifts(), (0, 0));
        // Peer's shift above 14 is read as 14 (RFC 7323 §2.3).
        let syn = seg("S", PEER, 0, 1000, &[]).with_ws(20);
        let t = Tcb::accept(&syn.view(), addr(80), addr(4000), Seq(ISS), big, 0).unwrap();
        assert_eq!(t.window_shifts(), (14, 5));
    }

    #[test]
    fn active_open() {
        let c = Config {
            recv_buffer: 1 << 18,
            recv_buffer_initial: 1 << 18,
            ..cfg()
        };
        let mut t = Tcb::connect(addr(4000), addr(80), Seq(ISS), c, 0);
        assert_eq!(t.state(), State::SynSent);
        let syn = one(&out(&mut t, 0), "S", ISS, 0, Some(65_535));
        assert_eq!((syn.mss, syn.ws, syn.sackp), (Some(1460), Some(3), false));
        assert_eq!(t.next_deadline(), Some(1000));
        // SYN-ACK with MSS 1000, SACK-permitted, window scale 1.
        let mut sa = seg("S.", PEER, ISS + 1, 5000, &[])
            .with_mss(1000)
            .with_ws(1);
        sa.sackp = true;
        let v = inject(&mut t, 20, &sa);
        let ack = one(&v, ".", ISS + 1, PEER + 1, None);
        assert_eq!(ack.win, ((1u32 << 18) >> 3) as u16);
        assert_eq!(t.state(), State::Established);
        assert_eq!(t.snd_mss(), 1000);
        assert_eq!(t.window_shifts(), (1, 3));
        assert_eq!(t.snd_wnd, 5000, "a SYN-ACK's window is not scaled");
        assert_eq!(t.srtt_us(), Some(20_000));
        assert!(t.next_deadline().is_none());
    }

    #[test]
    fn peer_without_mss_gets_536() {
        let mut t = Tcb::connect(addr(4000), addr(80), Seq(ISS), cfg(), 0);
        out(&mut t, 0);
        inject(&mut t, 1, &seg("S.", PEER, ISS + 1, 65_535, &[]));
        assert_eq!(t.snd_mss(), 536);
        assert_eq!(t.window_shifts(), (0, 0));
        t.send(&data(1000));
        let v = out(&mut t, 1);
        assert_eq!(v.len(), 1, "Nagle holds the small rest");
        assert_eq!(v[0].data.len(), 536);
        let v = inject(&mut t, 2, &seg(".", PEER + 1, ISS + 537, 65_535, &[]));
        assert_eq!(v[0].data.len(), 464);
    }

    #[test]
    fn syn_sent_answers_a_bad_ack_with_rst_and_ignores_bad_rst() {
        let mut t = Tcb::connect(addr(4000), addr(80), Seq(ISS), cfg(), 0);
        out(&mut t, 0);
        one(
            &inject(&mut t, 1, &seg("S.", PEER, ISS + 7, 100, &[])),
            "R",
            ISS + 7,
            0,
            None,
        );
        assert_eq!(t.state(), State::SynSent);
        // A RST without ACK, or with a bad one, is ignored.
        assert!(inject(&mut t, 1, &seg("R", 0, 0, 0, &[])).is_empty());
        assert!(inject(&mut t, 1, &seg("R.", 0, ISS, 0, &[])).is_empty());
        assert_eq!(t.state(), State::SynSent);
        // An acceptable RST: refused.
        inject(&mut t, 2, &seg("R.", 0, ISS + 1, 0, &[]));
        assert_eq!(
            (t.state(), t.error()),
            (State::Closed, Some(Error::Refused))
        );
        assert!(t.is_closed());
    }

    #[test]
    fn simultaneous_open() {
        let mut t = Tcb::connect(addr(4000), addr(80), Seq(ISS), cfg(), 0);
        one(&out(&mut t, 0), "S", ISS, 0, None);
        // The peer's SYN crosses ours.
        let v = inject(
            &mut t,
            5,
            &seg("S", PEER, 0, 65_535, &[]).with_mss(1460).with_ws(0),
        );
        let sa = one(&v, "S.", ISS, PEER + 1, None);
        assert_eq!(sa.ws, Some(0));
        assert_eq!(t.state(), State::SynReceived);
        // Its SYN-ACK acknowledges our SYN.
        let v = inject(&mut t, 6, &seg("S.", PEER, ISS + 1, 65_535, &[]));
        assert!(v.is_empty(), "{v:?}");
        assert_eq!(t.state(), State::Established);
        // Two real Tcbs opening towards each other.
        let mut a = Tcb::connect(addr(1), addr(2), Seq(ISS), cfg(), 0);
        let mut b = Tcb::connect(addr(2), addr(1), Seq(PEER), cfg(), 0);
        let sa = out(&mut a, 0);
        let sb = out(&mut b, 0);
        let ra = inject(&mut a, 1, &sb[0]);
        let rb = inject(&mut b, 1, &sa[0]);
        assert!(inject(&mut a, 2, &rb[0]).is_empty());
        assert!(inject(&mut b, 2, &ra[0]).is_empty());
        assert_eq!(
            (a.state(), b.state()),
            (State::Established, State::Established)
        );
    }

    #[test]
    fn syn_retransmitted_then_syn_ack_retransmitted() {
        let mut t = Tcb::connect(addr(4000), addr(80), Seq(ISS), cfg(), 0);
        out(&mut t, 0);
        one(&out(&mut t, 1000), "S", ISS, 0, None);
        assert_eq!(t.next_deadline(), Some(3000));
        // Karn: no sample from the retransmitted SYN; RTO 3 s after (RFC 6298 §5.7).
        inject(&mut t, 1500, &seg("S.", PEER, ISS + 1, 65_535, &[]));
        assert_eq!(t.srtt_us(), None);
        assert_eq!(t.rto_ms(), 3000);
        // Passive side: a retransmitted SYN gets the SYN-ACK again.
        let syn = seg("S", PEER, 0, 65_535, &[]);
        let mut t = Tcb::accept(&syn.view(), addr(80), addr(4000), Seq(ISS), cfg(), 0).unwrap();
        out(&mut t, 0);
        one(&inject(&mut t, 300, &syn), "S.", ISS, PEER + 1, None);
        one(&out(&mut t, 1000), "S.", ISS, PEER + 1, None);
    }

    #[test]
    fn syn_gives_up_after_max_syn_retries() {
        let c = Config {
            max_syn_retries: 2,
            ..cfg()
        };
        let mut t = Tcb::connect(addr(4000), addr(80), Seq(ISS), c, 0);
        out(&mut t, 0);
        let mut n = 0;
        while let Some(d) = t.next_deadline() {
            n += out(&mut t, d).len();
            assert!(n < 10);
        }
        assert_eq!(n, 2, "two retransmissions, no RST");
        assert_eq!(
            (t.state(), t.error()),
            (State::Closed, Some(Error::TimedOut))
        );
    }

    // ----- Data -----

    #[test]
    fn data_both_ways_with_piggybacked_ack() {
        let mut t = server(cfg(), 65_535);
        let v = inject(&mut t, 10, &seg("P.", PEER + 1, ISS + 1, 65_535, b"hello"));
        assert!(v.is_empty(), "ACK delayed");
        assert!(t.can_recv());
        let mut buf = [0u8; 16];
        assert_eq!(t.recv(&mut buf), 5);
        assert_eq!(&buf[..5], b"hello");
        assert!(t.can_send());
        assert_eq!(t.send(b"world!"), 6);
        let d = one(&out(&mut t, 11), "P.", ISS + 1, PEER + 6, Some(65_535));
        assert_eq!(d.data, b"world!");
        assert!(t.delack_at.is_none(), "the ACK rode on the data");
        assert_eq!(t.next_deadline(), Some(11 + t.rto_ms()));
        assert!(inject(&mut t, 20, &seg(".", PEER + 6, ISS + 7, 65_535, &[])).is_empty());
        assert_eq!(t.send_queue(), 0);
        assert!(t.next_deadline().is_none());
    }

    #[test]
    fn send_takes_what_fits() {
        let c = Config {
            send_buffer: 1000,
            ..cfg()
        };
        let mut t = server(c, 0);
        assert_eq!(t.send(&data(1500)), 1000);
        assert!(!t.can_send());
        assert_eq!(t.send(b"x"), 0);
    }

    #[test]
    fn delayed_ack_timing() {
        let mut t = server(cfg(), 65_535);
        let full = data(1460);
        assert!(inject(&mut t, 100, &seg(".", PEER + 1, ISS + 1, 65_535, &full)).is_empty());
        assert_eq!(t.next_deadline(), Some(140));
        assert!(out(&mut t, 139).is_empty());
        one(&out(&mut t, 140), ".", ISS + 1, PEER + 1461, None);
        // Two full-sized segments: the second is acknowledged at once.
        assert!(inject(&mut t, 200, &seg(".", PEER + 1461, ISS + 1, 65_535, &full)).is_empty());
        let v = inject(&mut t, 201, &seg(".", PEER + 2921, ISS + 1, 65_535, &full));
        one(&v, ".", ISS + 1, PEER + 4381, None);
        assert!(t.next_deadline().is_none());
        // A small segment waits for the timer too.
        assert!(inject(&mut t, 300, &seg("P.", PEER + 4381, ISS + 1, 65_535, b"ab")).is_empty());
        one(&out(&mut t, 340), ".", ISS + 1, PEER + 4383, None);
        // delayed_ack_ms = 0 acknowledges every segment.
        let mut t = server(
            Config {
                delayed_ack_ms: 0,
                ..cfg()
            },
            65_535,
        );
        one(
            &inject(&mut t, 5, &seg("P.", PEER + 1, ISS + 1, 65_535, b"ab")),
            ".",
            ISS + 1,
            PEER + 3,
            None,
        );
    }

    #[test]
    fn nagle_coalesces_small_writes() {
        let mut t = server(cfg(), 65_535);
        t.send(b"a");
        one(&out(&mut t, 1), "P.", ISS + 1, PEER + 1, None);
        t.send(b"b");
        assert!(out(&mut t, 2).is_empty());
        t.send(b"c");
        assert!(out(&mut t, 3).is_empty());
        let v = inject(&mut t, 10, &seg(".", PEER + 1, ISS + 2, 65_535, &[]));
        let d = one(&v, "P.", ISS + 2, PEER + 1, None);
        assert_eq!(d.data, b"bc");
        // A full segment goes out even with data in flight.
        t.send(&data(1460));
        let d = one(&out(&mut t, 11), "P.", ISS + 4, PEER + 1, None);
        assert_eq!(d.data.len(), 1460);
    }

    #[test]
    fn nodelay_sends_at_once() {
        let mut t = server(
            Config {
                nodelay: true,
                ..cfg()
            },
            65_535,
        );
        t.send(b"a");
        one(&out(&mut t, 1), "P.", ISS + 1, PEER + 1, None);
        t.send(b"b");
        one(&out(&mut t, 2), "P.", ISS + 2, PEER + 1, None);
    }

    #[test]
    fn sends_mss_segments_within_cwnd_and_peer_window() {
        let mut t = server(cfg(), 65_535);
        t.send(&data(20 * 1460));
        let v = out(&mut t, 1);
        // IW10.
        assert_eq!(v.len(), 10);
        assert!(v.iter().all(|s| s.data.len() == 1460));
        assert_eq!(v[9].seq, ISS + 1 + 9 * 1460);
        // The peer's window limits too.
        let mut t = server(cfg(), 3000);
        t.send(&data(20 * 1460));
        let v = out(&mut t, 1);
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[1].data.len(), 1460);
    }

    #[test]
    fn out_of_order_data_is_delivered_after_the_hole_fills() {
        let mut t = server(cfg(), 65_535);
        let v = inject(&mut t, 1, &seg("P.", PEER + 4, ISS + 1, 65_535, b"def"));
        one(&v, ".", ISS + 1, PEER + 1, None);
        assert!(!t.can_recv());
        let v = inject(&mut t, 2, &seg("P.", PEER + 10, ISS + 1, 65_535, b"jk"));
        one(&v, ".", ISS + 1, PEER + 1, None);
        let v = inject(&mut t, 3, &seg("P.", PEER + 1, ISS + 1, 65_535, b"abc"));
        one(&v, ".", ISS + 1, PEER + 7, None);
        let v = inject(&mut t, 4, &seg("P.", PEER + 7, ISS + 1, 65_535, b"ghi"));
        one(&v, ".", ISS + 1, PEER + 12, None);
        let mut buf = [0u8; 32];
        assert_eq!(t.recv(&mut buf), 11);
        assert_eq!(&buf[..11], b"abcdefghijk");
        // A duplicate is acknowledged at once.
        let v = inject(&mut t, 5, &seg("P.", PEER + 1, ISS + 1, 65_535, b"abc"));
        one(&v, ".", ISS + 1, PEER + 12, None);
    }

    #[test]
    fn fin_beyond_a_hole_is_taken_when_it_fills() {
        let mut t = server(cfg(), 65_535);
        inject(&mut t, 1, &seg("F.", PEER + 3, ISS + 1, 65_535, b"cd"));
        assert_eq!(t.state(), State::Established);
        let v = inject(&mut t, 2, &seg(".", PEER + 1, ISS + 1, 65_535, b"ab"));
        one(&v, ".", ISS + 1, PEER + 6, None);
        assert_eq!(t.state(), State::CloseWait);
    }

    // ----- Loss recovery -----

    #[test]
    fn rto_retransmits_with_backoff_and_karn() {
        let mut t = server(cfg(), 65_535);
        // The handshake's sample was 0 ms: RTO is the 200 ms floor.
        assert_eq!(t.rto_ms(), 200);
        t.send(b"abc");
        one(&out(&mut t, 0), "P.", ISS + 1, PEER + 1, None);
        assert_eq!(t.next_deadline(), Some(200));
        let r = one(&out(&mut t, 200), "P.", ISS + 1, PEER + 1, None);
        assert_eq!(r.data, b"abc");
        assert_eq!(t.next_deadline(), Some(600));
        assert!(out(&mut t, 599).is_empty());
        one(&out(&mut t, 600), "P.", ISS + 1, PEER + 1, None);
        assert_eq!(t.next_deadline(), Some(1400));
        assert_eq!(t.cc().cwnd(), 1460);
        // The ACK of a retransmitted segment gives no sample (Karn).
        let before = t.srtt_us();
        inject(&mut t, 1000, &seg(".", PEER + 1, ISS + 4, 65_535, &[]));
        assert_eq!(t.srtt_us(), before);
        assert!(t.next_deadline().is_none());
        // New data is timed again.
        t.send(b"d");
        out(&mut t, 1000);
        inject(&mut t, 1050, &seg(".", PEER + 1, ISS + 5, 65_535, &[]));
        assert_ne!(t.srtt_us(), before);
    }

    #[test]
    fn rto_goes_back_to_snd_una() {
        let mut t = server(cfg(), 65_535);
        t.send(&data(4 * 1460));
        assert_eq!(out(&mut t, 0).len(), 4);
        // The first two arrive.
        inject(
            &mut t,
            50,
            &seg(".", PEER + 1, ISS + 1 + 2 * 1460, 65_535, &[]),
        );
        let v = out(&mut t, 250);
        let r = one(&v, ".", ISS + 1 + 2 * 1460, PEER + 1, None);
        assert_eq!(r.data.len(), 1460);
        // Its ACK opens cwnd to 2 segments: the next one follows.
        let v = inject(
            &mut t,
            260,
            &seg(".", PEER + 1, ISS + 1 + 3 * 1460, 65_535, &[]),
        );
        one(&v, "P.", ISS + 1 + 3 * 1460, PEER + 1, None);
    }

    #[test]
    fn pure_acks_carry_snd_max_after_a_timeout() {
        let mut t = server(cfg(), 65_535);
        t.send(&data(3 * 1460));
        assert_eq!(out(&mut t, 0).len(), 3);
        // The timeout rewinds SND.NXT; cwnd 1 lets one segment go again.
        one(&out(&mut t, 200), ".", ISS + 1, PEER + 1, None);
        let v = inject(&mut t, 210, &seg("P.", PEER + 1, ISS + 1, 65_535, b"x"));
        assert!(v.is_empty());
        one(&out(&mut t, 250), ".", ISS + 1 + 3 * 1460, PEER + 2, None);
    }

    #[test]
    fn fast_retransmit_and_newreno() {
        let mut t = server(cfg(), 65_535);
        let base = ISS + 1;
        t.send(&data(10 * 1460));
        assert_eq!(out(&mut t, 0).len(), 10);
        // Segment 0 lost: three duplicate ACKs.
        let dup = seg(".", PEER + 1, base, 65_535, &[]);
        assert!(inject(&mut t, 10, &dup).is_empty());
        assert!(inject(&mut t, 11, &dup).is_empty());
        let v = inject(&mut t, 12, &dup);
        let r = one(&v, ".", base, PEER + 1, None);
        assert_eq!(r.data.len(), 1460);
        assert!(t.cc().in_recovery());
        assert_eq!(t.cc().ssthresh(), 5 * 1460);
        // A window change is not a duplicate.
        assert!(inject(&mut t, 13, &seg(".", PEER + 1, base, 60_000, &[])).is_empty());
        // Partial ACK up to segment 3 (also lost): it is retransmitted.
        let v = inject(
            &mut t,
            20,
            &seg(".", PEER + 1, base + 3 * 1460, 60_000, &[]),
        );
        let r = one(&v, ".", base + 3 * 1460, PEER + 1, None);
        assert_eq!(r.data.len(), 1460);
        assert!(t.cc().in_recovery());
        // Full ACK: recovery ends.
        inject(
            &mut t,
            30,
            &seg(".", PEER + 1, base + 10 * 1460, 60_000, &[]),
        );
        assert!(!t.cc().in_recovery());
        assert!(t.cc().cwnd() <= 5 * 1460);
        assert!(t.next_deadline().is_none());
    }

    /// RFC 3042: the first two duplicate ACKs each release one new segment
    /// (cwnd unchanged); the third starts fast retransmit.
    #[test]
    fn limited_transmit_on_the_first_two_duplicates() {
        let mut t = server(cfg(), 65_535);
        let base = ISS + 1;
        t.send(&data(20 * 1460));
        assert_eq!(out(&mut t, 0).len(), 10, "IW10");
        let cwnd = t.cc().cwnd();
        let dup = seg(".", PEER + 1, base, 65_535, &[]);
        let v = inject(&mut t, 10, &dup);
        let r = one(&v, ".", base + 10 * 1460, PEER + 1, None);
        assert_eq!(r.data.len(), 1460, "new data on the first duplicate");
        let v = inject(&mut t, 11, &dup);
        one(&v, ".", base + 11 * 1460, PEER + 1, None);
        assert_eq!(t.cc().cwnd(), cwnd, "cwnd itself is unchanged");
        let v = inject(&mut t, 12, &dup);
        let r = v
            .iter()
            .find(|s| s.seq == base)
            .expect("the third duplicate retransmits SND.UNA");
        assert_eq!(r.data.len(), 1460);
        assert!(t.cc().in_recovery());
    }

    #[test]
    fn gives_up_after_max_retries_with_rst() {
        let c = Config {
            max_retries: 3,
            ..cfg()
        };
        let mut t = server(c, 65_535);
        t.send(b"abc");
        out(&mut t, 0);
        let mut sent = Vec::new();
        while let Some(d) = t.next_deadline() {
            sent.extend(out(&mut t, d));
            assert!(sent.len() < 10);
        }
        assert_eq!(sent.len(), 4, "{sent:?}");
        assert!(sent[..3].iter().all(|s| s.data == b"abc"));
        assert_eq!(sent[3].flags, flags("R."));
        assert_eq!(sent[3].seq, ISS + 4);
        assert_eq!(
            (t.state(), t.error()),
            (State::Closed, Some(Error::TimedOut))
        );
        assert!(t.is_closed());
        // max_retry_ms gives up earlier.
        let c = Config {
            max_retry_ms: 500,
            ..cfg()
        };
        let mut t = server(c, 65_535);
        t.send(b"abc");
        out(&mut t, 0);
        let mut n = 0;
        while let Some(d) = t.next_deadline() {
            n += 1;
            out(&mut t, d);
        }
        assert_eq!(n, 3); // at 200 and 600 retransmits, at 1400 gives up
        assert_eq!(t.error(), Some(Error::TimedOut));
    }

    // ----- Windows -----

    #[test]
    fn zero_window_persist_probes_and_reopening() {
        let mut t = server(cfg(), 0);
        t.send(b"hello");
        assert!(out(&mut t, 0).is_empty());
        assert_eq!(t.next_deadline(), Some(200));
        let p = one(&out(&mut t, 200), ".", ISS + 1, PEER + 1, None);
        assert_eq!(p.data, b"h", "one byte beyond the window");
        assert_eq!(t.next_deadline(), Some(600), "backoff");
        // The peer still says 0.
        assert!(inject(&mut t, 201, &seg(".", PEER + 1, ISS + 1, 0, &[])).is_empty());
        one(&out(&mut t, 600), ".", ISS + 1, PEER + 1, None);
        assert_eq!(t.next_deadline(), Some(1400));
        // The window opens: everything goes out, the persist timer stops.
        let v = inject(&mut t, 700, &seg(".", PEER + 1, ISS + 1, 1000, &[]));
        let d = one(&v, "P.", ISS + 1, PEER + 1, None);
        assert_eq!(d.data, b"hello");
        assert_eq!(t.next_deadline(), Some(700 + 200));
        // Probe byte accepted by a peer whose window opened: ACK covers it.
        let mut t = server(cfg(), 0);
        t.send(b"hello");
        out(&mut t, 0);
        out(&mut t, 200);
        let v = inject(&mut t, 210, &seg(".", PEER + 1, ISS + 2, 1000, &[]));
        let d = one(&v, "P.", ISS + 2, PEER + 1, None);
        assert_eq!(d.data, b"ello");
    }

    #[test]
    fn small_window_is_used_by_the_persist_override() {
        // The window is below an MSS and half the largest seen: SWS
        // avoidance waits, the persist timer sends what fits.
        let mut t = server(cfg(), 65_535);
        inject(&mut t, 0, &seg(".", PEER + 1, ISS + 1, 100, &[]));
        t.send(&data(3000));
        assert!(out(&mut t, 1).is_empty());
        let d = one(&out(&mut t, 201), ".", ISS + 1, PEER + 1, None);
        assert_eq!(d.data.len(), 100);
    }

    #[test]
    fn receiver_window_and_sws_avoidance() {
        let c = Config {
            recv_buffer: 4096,
            ..cfg()
        };
        let mut t = server(c, 65_535);
        let mut seq = PEER + 1;
        let mut last = Vec::new();
        for n in [1460, 1460, 1176] {
            last = inject(&mut t, 1, &seg(".", seq, ISS + 1, 65_535, &data(n)));
            seq += n as u32;
        }
        // The second segment was acknowledged at once; the third's ACK is
        // delayed and would say 0.
        assert!(last.is_empty());
        one(&out(&mut t, 41), ".", ISS + 1, seq, Some(0));
        // Data beyond a zero window is not accepted, but is ACKed.
        one(
            &inject(&mut t, 42, &seg(".", seq, ISS + 1, 65_535, b"x")),
            ".",
            ISS + 1,
            seq,
            Some(0),
        );
        // Reading less than an MSS: no window update (SWS).
        let mut buf = [0u8; 1000];
        assert_eq!(t.recv(&mut buf), 1000);
        assert!(out(&mut t, 50).is_empty());
        // A pure ACK of ours now would still say 0.
        t.ack_now = true;
        one(&out(&mut t, 51), ".", ISS + 1, seq, Some(0));
        // Reading past min(MSS, buffer/2): a window update.
        assert_eq!(t.recv(&mut buf), 1000);
        one(&out(&mut t, 60), ".", ISS + 1, seq, Some(2000));
    }

    // ----- Close paths -----

    #[test]
    fn active_close_through_fin_wait_and_time_wait() {
        let mut t = server(cfg(), 65_535);
        t.send(b"bye");
        t.close();
        assert_eq!(t.state(), State::FinWait1);
        assert!(!t.can_send());
        assert_eq!(t.send(b"more"), 0);
        let v = out(&mut t, 1);
        let f = one(&v, "FP.", ISS + 1, PEER + 1, None);
        assert_eq!(f.data, b"bye");
        inject(&mut t, 2, &seg(".", PEER + 1, ISS + 5, 65_535, &[]));
        assert_eq!(t.state(), State::FinWait2);
        assert_eq!(
            t.next_deadline(),
            Some(2 + 60_000),
            "fin_wait2 limit after close"
        );
        let v = inject(&mut t, 3, &seg("F.", PEER + 1, ISS + 5, 65_535, &[]));
        one(&v, ".", ISS + 5, PEER + 2, None);
        assert_eq!(t.state(), State::TimeWait);
        assert_eq!(t.next_deadline(), Some(3 + 60_000));
        // A retransmitted FIN is ACKed again and restarts the timer.
        let v = inject(&mut t, 1000, &seg("F.", PEER + 1, ISS + 5, 65_535, &[]));
        one(&v, ".", ISS + 5, PEER + 2, None);
        assert_eq!(t.next_deadline(), Some(61_000));
        assert!(out(&mut t, 60_999).is_empty());
        assert!(out(&mut t, 61_000).is_empty());
        assert!(t.is_closed());
        assert_eq!(t.error(), None);
    }

    #[test]
    fn fin_retransmitted_on_timeout() {
        let mut t = server(cfg(), 65_535);
        t.shutdown_write();
        one(&out(&mut t, 0), "F.", ISS + 1, PEER + 1, None);
        one(&out(&mut t, 200), "F.", ISS + 1, PEER + 1, None);
        // Receiving still works after a half-close.
        inject(&mut t, 210, &seg("P.", PEER + 1, ISS + 1, 65_535, b"late"));
        assert!(t.can_recv());
        // FIN+ACK of our FIN at once: straight to TIME-WAIT.
        let v = inject(&mut t, 220, &seg("F.", PEER + 5, ISS + 2, 65_535, &[]));
        one(&v, ".", ISS + 2, PEER + 6, None);
        assert_eq!(t.state(), State::TimeWait);
    }

    #[test]
    fn passive_close_through_close_wait_and_last_ack() {
        let mut t = server(cfg(), 65_535);
        let v = inject(&mut t, 1, &seg("F.", PEER + 1, ISS + 1, 65_535, &[]));
        one(&v, ".", ISS + 1, PEER + 2, None);
        assert_eq!(t.state(), State::CloseWait);
        assert!(t.at_eof());
        // Still sending in CLOSE-WAIT.
        t.send(b"last");
        one(&out(&mut t, 2), "P.", ISS + 1, PEER + 2, None);
        t.close();
        assert_eq!(t.state(), State::LastAck);
        // FIN after the data, which Nagle holds back no longer.
        one(&out(&mut t, 3), "F.", ISS + 5, PEER + 2, None);
        inject(&mut t, 4, &seg(".", PEER + 2, ISS + 5, 65_535, &[]));
        assert_eq!(t.state(), State::LastAck);
        inject(&mut t, 5, &seg(".", PEER + 2, ISS + 6, 65_535, &[]));
        assert!(t.is_closed());
        assert_eq!(t.error(), None);
    }

    #[test]
    fn simultaneous_close_through_closing() {
        let mut t = server(cfg(), 65_535);
        t.close();
        one(&out(&mut t, 1), "F.", ISS + 1, PEER + 1, None);
        // The peer's FIN crosses ours.
        let v = inject(&mut t, 2, &seg("F.", PEER + 1, ISS + 1, 65_535, &[]));
        one(&v, ".", ISS + 2, PEER + 2, None);
        assert_eq!(t.state(), State::Closing);
        inject(&mut t, 3, &seg(".", PEER + 2, ISS + 2, 65_535, &[]));
        assert_eq!(t.state(), State::TimeWait);
    }

    #[test]
    fn close_with_unread_data_resets() {
        let mut t = server(cfg(), 65_535);
        inject(&mut t, 1, &seg("P.", PEER + 1, ISS + 1, 65_535, b"unread"));
        t.close();
        one(&out(&mut t, 2), "R.", ISS + 1, PEER + 7, None);
        assert!(t.is_closed());
        // Data arriving after close: RST too.
        let mut t = server(cfg(), 65_535);
        t.close();
        out(&mut t, 1);
        let v = inject(&mut t, 2, &seg("P.", PEER + 1, ISS + 2, 65_535, b"x"));
        one(&v, "R.", ISS + 2, PEER + 1, None);
        assert!(t.is_closed());
    }

    #[test]
    fn abort_sends_rst() {
        let mut t = server(cfg(), 65_535);
        t.abort();
        one(&out(&mut t, 1), "R.", ISS + 1, PEER + 1, None);
        assert!(t.is_closed());
        assert!(out(&mut t, 2).is_empty());
        // In SYN-SENT nothing is sent.
        let mut t = Tcb::connect(addr(1), addr(2), Seq(ISS), cfg(), 0);
        t.abort();
        assert!(out(&mut t, 0).is_empty());
        assert!(t.is_closed());
    }

    // ----- RFC 5961 -----

    /// A connection in `state`, reached through the usual segments.
    fn in_state(state: State) -> Tcb {
        let mut t = server(cfg(), 65_535);
        match state {
            State::Established => {}
            State::CloseWait => {
                inject(&mut t, 1, &seg("F.", PEER + 1, ISS + 1, 65_535, &[]));
            }
            State::FinWait1 => {
                t.shutdown_write();
                out(&mut t, 1);
            }
            State::FinWait2 => {
                t.shutdown_write();
                out(&mut t, 1);
                inject(&mut t, 1, &seg(".", PEER + 1, ISS + 2, 65_535, &[]));
            }
            State::LastAck => {
                inject(&mut t, 1, &seg("F.", PEER + 1, ISS + 1, 65_535, &[]));
                t.close();
                out(&mut t, 1);
            }
            State::Closing => {
                t.shutdown_write();
                out(&mut t, 1);
                inject(&mut t, 1, &seg("F.", PEER + 1, ISS + 1, 65_535, &[]));
            }
            State::TimeWait => {
                t.shutdown_write();
                out(&mut t, 1);
                inject(&mut t, 1, &seg("F.", PEER + 1, ISS + 2, 65_535, &[]));
            }
            _ => unreachable!(),
        }
        out(&mut t, 1);
        assert_eq!(t.state(), state);
        t
    }

    const RST_STATES: [State; 7] = [
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::Closing,
        State::LastAck,
        State::TimeWait,
    ];

    #[test]
    fn rst_at_rcv_nxt_resets_in_every_state() {
        for st in RST_STATES {
            let mut t = in_state(st);
            let rcv_nxt = t.rcv_nxt.get();
            assert!(inject(&mut t, 2, &seg("R", rcv_nxt, 0, 0, &[])).is_empty());
            assert!(t.is_closed(), "{st:?}");
            let want = match st {
                State::Closing | State::LastAck | State::TimeWait => None,
                _ => Some(Error::Reset),
            };
            assert_eq!(t.error(), want, "{st:?}");
        }
        // SYN-RECEIVED too.
        let syn = seg("S", PEER, 0, 65_535, &[]);
        let mut t = Tcb::accept(&syn.view(), addr(80), addr(4000), Seq(ISS), cfg(), 0).unwrap();
        out(&mut t, 0);
        inject(&mut t, 1, &seg("R", PEER + 1, 0, 0, &[]));
        assert!(t.is_closed());
    }

    #[test]
    fn rst_in_window_but_not_exact_gets_a_challenge_ack() {
        for st in RST_STATES {
            let mut t = in_state(st);
            let (rcv_nxt, snd_nxt) = (t.rcv_nxt.get(), t.snd_nxt.get());
            let v = inject(&mut t, 2, &seg("R", rcv_nxt + 100, 0, 0, &[]));
            one(&v, ".", snd_nxt, rcv_nxt, None);
            assert_eq!(t.state(), st);
        }
    }

    #[test]
    fn rst_out_of_window_is_ignored() {
        for st in RST_STATES {
            let mut t = in_state(st);
            let rcv_nxt = t.rcv_nxt.get();
            for seq in [rcv_nxt - 1, rcv_nxt + 70_000, rcv_nxt.wrapping_add(1 << 31)] {
                assert!(inject(&mut t, 2, &seg("R.", seq, ISS + 1, 0, &[])).is_empty());
            }
            assert_eq!(t.state(), st);
        }
    }

    #[test]
    fn syn_in_synchronized_state_gets_a_challenge_ack() {
        for st in RST_STATES {
            let mut t = in_state(st);
            let (rcv_nxt, snd_nxt) = (t.rcv_nxt.get(), t.snd_nxt.get());
            let v = inject(&mut t, 2, &seg("S", 77, 0, 65_535, &[]));
            one(&v, ".", snd_nxt, rcv_nxt, None);
            let v = inject(&mut t, 2, &seg("S", rcv_nxt, 0, 65_535, &[]));
            one(&v, ".", snd_nxt, rcv_nxt, None);
            assert_eq!(t.state(), st);
        }
    }

    #[test]
    fn challenge_acks_are_rate_limited() {
        let mut t = server(cfg(), 65_535);
        let mut n = 0;
        for _ in 0..30 {
            n += inject(&mut t, 5, &seg("R", PEER + 10, 0, 0, &[])).len();
        }
        assert_eq!(n, 10);
        assert_eq!(
            inject(&mut t, 1005, &seg("R", PEER + 10, 0, 0, &[])).len(),
            1
        );
    }

    #[test]
    fn ack_acceptability() {
        let mut t = server(cfg(), 65_535);
        // An ACK of data never sent: challenge ACK, the text dropped.
        let v = inject(&mut t, 1, &seg("P.", PEER + 1, ISS + 100, 65_535, b"abc"));
        one(&v, ".", ISS + 1, PEER + 1, None);
        assert!(!t.can_recv());
        // Too old (more than MAX.SND.WND before SND.UNA): the same.
        let v = inject(
            &mut t,
            2,
            &seg("P.", PEER + 1, ISS.wrapping_sub(70_000), 65_535, b"abc"),
        );
        one(&v, ".", ISS + 1, PEER + 1, None);
        assert!(!t.can_recv());
        // Old but within the window: the text is taken.
        inject(&mut t, 3, &seg("P.", PEER + 1, ISS - 10, 65_535, b"abc"));
        assert!(t.can_recv());
        // No ACK bit: dropped.
        let mut t = server(cfg(), 65_535);
        assert!(inject(&mut t, 1, &seg("P", PEER + 1, 0, 65_535, b"abc")).is_empty());
        assert!(!t.can_recv());
        // SYN-RECEIVED: a bad ACK is answered by a RST.
        let syn = seg("S", PEER, 0, 65_535, &[]);
        let mut t = Tcb::accept(&syn.view(), addr(80), addr(4000), Seq(ISS), cfg(), 0).unwrap();
        out(&mut t, 0);
        let v = inject(&mut t, 1, &seg(".", PEER + 1, ISS + 9, 65_535, &[]));
        one(&v, "R", ISS + 9, 0, None);
        assert_eq!(t.state(), State::SynReceived);
    }

    #[test]
    fn unacceptable_segments_are_acked_and_dropped() {
        let mut t = server(cfg(), 65_535);
        // Entirely old data.
        let v = inject(&mut t, 1, &seg("P.", PEER - 10, ISS + 1, 65_535, b"old"));
        one(&v, ".", ISS + 1, PEER + 1, None);
        // Beyond the window.
        let v = inject(
            &mut t,
            2,
            &seg("P.", PEER + 70_000, ISS + 1, 65_535, b"far"),
        );
        one(&v, ".", ISS + 1, PEER + 1, None);
        assert!(!t.can_recv());
        // Overlapping RCV.NXT: the new part is taken.
        inject(&mut t, 3, &seg("P.", PEER - 1, ISS + 1, 65_535, b"xyz"));
        let mut buf = [0u8; 8];
        assert_eq!(t.recv(&mut buf), 1);
        assert_eq!(buf[0], b'z');
    }

    #[test]
    fn keepalive_probes_then_gives_up() {
        let c = Config {
            keepalive: Some(Keepalive {
                idle_ms: 1000,
                interval_ms: 100,
                probes: 2,
            }),
            ..cfg()
        };
        let mut t = server(c, 65_535);
        assert_eq!(t.next_deadline(), Some(1000));
        one(&out(&mut t, 1000), ".", ISS, PEER + 1, None);
        // An answer resets the count.
        inject(&mut t, 1050, &seg(".", PEER + 1, ISS + 1, 65_535, &[]));
        assert_eq!(t.next_deadline(), Some(2050));
        one(&out(&mut t, 2050), ".", ISS, PEER + 1, None);
        one(&out(&mut t, 2150), ".", ISS, PEER + 1, None);
        one(&out(&mut t, 2250), "R.", ISS + 1, PEER + 1, None);
        assert_eq!(t.error(), Some(Error::TimedOut));
    }

    #[test]
    fn payload_tail_is_read_as_text() {
        let mut t = server(cfg(), 65_535);
        let s = Segment {
            seq: Seq(PEER + 1),
            ack: Seq(ISS + 1),
            flags: flags("P."),
            window: 65_535,
            payload: b"abc",
            payload_tail: b"def",
            ..Segment::default()
        };
        t.on_segment(1, &s);
        let mut buf = [0u8; 8];
        assert_eq!(t.recv(&mut buf), 6);
        assert_eq!(&buf[..6], b"abcdef");
    }

    // ----- Timestamps (RFC 7323), Eifel (RFC 3522/4015), TLP (RFC 8985) -----

    /// The peer's first TSval.
    const PTS: u32 = 700_000;

    /// `cfg()` with tail loss probes as `tlp` says.
    fn cfg_tlp(tlp: bool) -> Config {
        Config { tlp, ..cfg() }
    }

    /// A server connection whose SYN, SYN-ACK and ACK carried timestamps
    /// (at t = 0, peer TSval PTS); returns it and our TS offset (our TSval
    /// at time t is offset + t).
    fn server_ts(c: Config, win: u16) -> (Tcb, u32) {
        let syn = seg("S", PEER, 0, 65_535, &[])
            .with_mss(1460)
            .with_ts(PTS, 0);
        let mut t = Tcb::accept(&syn.view(), addr(80), addr(4000), Seq(ISS), c, 0).unwrap();
        let sa = one(&out(&mut t, 0), "S.", ISS, PEER + 1, None);
        let (off, ecr) = sa.ts.expect("SYN-ACK has timestamps");
        assert_eq!(ecr, PTS, "the SYN-ACK echoes the SYN's TSval");
        let ack = seg(".", PEER + 1, ISS + 1, win, &[]).with_ts(PTS, off);
        assert!(inject(&mut t, 0, &ack).is_empty());
        assert_eq!(t.state(), State::Established);
        assert!(t.timestamps());
        (t, off)
    }

    /// A pure ACK from the peer with timestamps.
    fn ack_ts(ack: u32, tsval: u32, tsecr: u32) -> Seg {
        seg(".", PEER + 1, ack, 65_535, &[]).with_ts(tsval, tsecr)
    }

    #[test]
    fn timestamps_are_negotiated_and_shrink_the_text_per_segment() {
        let (mut t, off) = server_ts(cfg(), 65_535);
        // 12 bytes of options: MSS 1460 carries 1448 bytes of text.
        assert_eq!(t.snd_mss(), 1448);
        t.send(&data(3 * 1448));
        let v = out(&mut t, 5);
        assert_eq!(v.len(), 3, "{v:?}");
        assert_eq!(v[0].data.len(), 1448);
        for s in &v {
            assert_eq!(
                s.ts,
                Some((off + 5, PTS)),
                "every segment: TSval now, TSecr TS.Recent"
            );
        }
        // Active open: our SYN offers them (TSecr 0); a SYN-ACK without
        // them means none on this connection.
        let mut c = Tcb::connect(addr(4000), addr(80), Seq(ISS), cfg(), 0);
        let syn = one(&out(&mut c, 0), "S", ISS, 0, None);
        assert!(matches!(syn.ts, Some((_, 0))), "{syn:?}");
        let sa = seg("S.", PEER, ISS + 1, 65_535, &[]).with_mss(1460);
        let v = inject(&mut c, 1, &sa);
        assert_eq!(one(&v, ".", ISS + 1, PEER + 1, None).ts, None);
        assert!(!c.timestamps());
        assert_eq!(c.snd_mss(), 1460);
        // Turned off: not offered, and not answered.
        let no = Config {
            timestamps: false,
            ..cfg()
        };
        let mut c = Tcb::connect(addr(4000), addr(80), Seq(ISS), no, 0);
        assert_eq!(one(&out(&mut c, 0), "S", ISS, 0, None).ts, None);
        let syn = seg("S", PEER, 0, 65_535, &[])
            .with_mss(1460)
            .with_ts(PTS, 0);
        let mut s = Tcb::accept(&syn.view(), addr(80), addr(4000), Seq(ISS), no, 0).unwrap();
        assert_eq!(one(&out(&mut s, 0), "S.", ISS, PEER + 1, None).ts, None);
    }

    #[test]
    fn paws_drops_old_timestamps_and_segments_without_one() {
        let (mut t, off) = server_ts(cfg(), 65_535);
        let d = seg("P.", PEER + 1, ISS + 1, 65_535, b"new").with_ts(PTS + 10, off);
        inject(&mut t, 10, &d);
        assert_eq!(t.rcv_nxt, Seq(PEER + 4));
        // An older TSval: an old duplicate, answered by an ACK, dropped.
        let old = seg("P.", PEER + 4, ISS + 1, 65_535, b"old").with_ts(PTS + 5, off);
        let v = inject(&mut t, 20, &old);
        let a = one(&v, ".", ISS + 1, PEER + 4, None);
        assert_eq!(a.ts, Some((off + 20, PTS + 10)));
        assert_eq!(t.rcv_nxt, Seq(PEER + 4), "not taken");
        assert_eq!(t.stats().paws_drops, 1);
        // No timestamp at all once negotiated: dropped silently (§3.2).
        let bare = seg("P.", PEER + 4, ISS + 1, 65_535, b"bare");
        assert!(inject(&mut t, 21, &bare).is_empty());
        assert_eq!(t.rcv_nxt, Seq(PEER + 4));
        assert_eq!(t.stats().paws_drops, 2);
        // The same TSval again is fine (several segments per tick).
        let same = seg("P.", PEER + 4, ISS + 1, 65_535, b"ok").with_ts(PTS + 10, off);
        inject(&mut t, 22, &same);
        assert_eq!(t.rcv_nxt, Seq(PEER + 6));
        // A RST needs no timestamp (§5.3: PAWS does not apply to it).
        let rst = seg("R", PEER + 6, 0, 0, &[]);
        inject(&mut t, 23, &rst);
        assert_eq!(t.state(), State::Closed);
        assert_eq!(t.error(), Some(Error::Reset));
        // After 24 days of silence TS.Recent is no longer trusted (§5.5).
        let (mut t, off) = server_ts(cfg(), 65_535);
        let late = PAWS_IDLE_MS + 1;
        let d = seg("P.", PEER + 1, ISS + 1, 65_535, b"x").with_ts(PTS - 1000, off);
        inject(&mut t, late, &d);
        assert_eq!(t.rcv_nxt, Seq(PEER + 2));
    }

    /// RFC 7323 §4.3: the echo is the TSval of the segment that advanced
    /// the left edge: not an out-of-order segment's, but that of the
    /// retransmission that fills the hole, so the peer can time it.
    #[test]
    fn the_echo_of_a_filled_hole_is_the_retransmission() {
        let (mut t, off) = server_ts(cfg(), 65_535);
        let a = seg("P.", PEER + 1, ISS + 1, 65_535, &[1; 100]).with_ts(PTS + 1, off);
        let b = seg("P.", PEER + 201, ISS + 1, 65_535, &[3; 100]).with_ts(PTS + 3, off);
        let hole = seg("P.", PEER + 101, ISS + 1, 65_535, &[2; 100]).with_ts(PTS + 9, off);
        inject(&mut t, 1, &a);
        // Out of order: ACKed at once, echoing the in-order segment's TSval.
        let v = inject(&mut t, 3, &b);
        assert_eq!(
            one(&v, ".", ISS + 1, PEER + 101, None).ts,
            Some((off + 3, PTS + 1))
        );
        // The retransmission fills the hole: its TSval is echoed.
        let v = inject(&mut t, 9, &hole);
        assert_eq!(
            one(&v, ".", ISS + 1, PEER + 301, None).ts,
            Some((off + 9, PTS + 9))
        );
    }

    /// With timestamps every ACK of new data is an RTT sample, also of
    /// retransmitted data (no Karn ambiguity), so a sample after a timeout
    /// ends the backoff at once; without them it does not.
    #[test]
    fn rtt_samples_from_the_echo_during_recovery_end_the_backoff() {
        let (mut t, off) = server_ts(cfg(), 65_535);
        t.send(b"abc");
        one(&out(&mut t, 0), "P.", ISS + 1, PEER + 1, None);
        one(&out(&mut t, 200), "P.", ISS + 1, PEER + 1, None);
        one(&out(&mut t, 600), "P.", ISS + 1, PEER + 1, None);
        assert_eq!(t.next_deadline(), Some(1400), "backed off twice");
        // The ACK of the second retransmission (sent at 600) echoes it.
        inject(&mut t, 630, &ack_ts(ISS + 4, PTS + 630, off + 600));
        // SRTT: 7/8 of the handshake's 0 ms and 1/8 of this 30 ms.
        assert_eq!(t.srtt_us(), Some(30_000 / 8));
        assert_eq!(t.rto_ms(), 200, "backoff over");
        // Without timestamps the same ACK leaves the backoff (Karn).
        let mut n = server(cfg(), 65_535);
        n.send(b"abc");
        out(&mut n, 0);
        out(&mut n, 200);
        out(&mut n, 600);
        inject(&mut n, 630, &seg(".", PEER + 1, ISS + 4, 65_535, &[]));
        assert_eq!(n.rto_ms(), 800);
    }

    /// A timeout whose original segments were only delayed: the ACK echoes
    /// the original's TSval, so the timeout is undone (RFC 4015): the
    /// window comes back and new data follows SND.MAX instead of going
    /// back N. The same ACK echoing the retransmission undoes nothing.
    #[test]
    fn a_spurious_timeout_is_undone() {
        for spurious in [true, false] {
            let (mut t, off) = server_ts(cfg(), 65_535);
            let base = ISS + 1;
            t.send(&data(20 * 1448));
            assert_eq!(out(&mut t, 0).len(), 10, "IW 10");
            let cwnd = t.cc().cwnd();
            // Timeout: one segment again, cwnd 1.
            let v = out(&mut t, 200);
            one(&v, ".", base, PEER + 1, None);
            assert_eq!(t.cc().cwnd(), 1448);
            assert_eq!(t.stats().timeouts, 1);
            let ecr = if spurious { off } else { off + 200 };
            let v = inject(&mut t, 210, &ack_ts(base + 1448, PTS + 210, ecr));
            if spurious {
                assert_eq!(t.stats().spurious_undos, 1);
                assert!(
                    t.cc().cwnd() >= 9 * 1448,
                    "cwnd {} (was {cwnd})",
                    t.cc().cwnd()
                );
                assert!(t.cc().ssthresh() >= cwnd);
                // New data at SND.MAX, not segment 1 again.
                assert!(!v.is_empty());
                assert_eq!(v[0].seq, base + 10 * 1448, "{v:?}");
            } else {
                assert_eq!(t.stats().spurious_undos, 0);
                assert!(t.cc().cwnd() <= 2 * 1448);
                assert_eq!(v[0].seq, base + 1448, "go back N: {v:?}");
            }
        }
    }

    /// A fast retransmit for a reordered segment: the ACK that covers it
    /// echoes the original's TSval, and the window reduction is undone.
    #[test]
    fn a_spurious_fast_retransmit_is_undone() {
        for spurious in [true, false] {
            let (mut t, off) = server_ts(cfg(), 65_535);
            let base = ISS + 1;
            t.send(&data(10 * 1448));
            assert_eq!(out(&mut t, 0).len(), 10);
            let cwnd = t.cc().cwnd();
            let dup = ack_ts(base, PTS + 10, off);
            inject(&mut t, 10, &dup);
            inject(&mut t, 11, &dup);
            let v = inject(&mut t, 12, &dup);
            assert_eq!(v[0].seq, base, "fast retransmit: {v:?}");
            assert!(t.cc().in_recovery());
            assert_eq!(t.stats().fast_retransmits, 1);
            let ecr = if spurious { off } else { off + 12 };
            inject(&mut t, 13, &ack_ts(base + 10 * 1448, PTS + 13, ecr));
            assert!(!t.cc().in_recovery());
            if spurious {
                assert_eq!(t.stats().spurious_undos, 1);
                assert!(t.cc().cwnd() >= cwnd, "{} < {cwnd}", t.cc().cwnd());
            } else {
                assert_eq!(t.stats().spurious_undos, 0);
                assert!(t.cc().cwnd() <= cwnd / 2 + 1448);
            }
        }
    }

    /// The last segment of a flight is lost: instead of the 200 ms RTO a
    /// probe re-sends it at 2·SRTT + 40 ms (two segments out), and its ACK
    /// repairs the loss. (With one segment out the probe would wait
    /// 2·SRTT + 200 ms, never before the RTO's 200 ms floor.)
    #[test]
    fn tail_loss_probe_resends_the_last_segment() {
        let (mut t, off) = server_ts(cfg_tlp(true), 65_535);
        let base = ISS + 1;
        t.send(&data(3 * 1448));
        assert_eq!(out(&mut t, 0).len(), 3);
        // The first is ACKed after 4 ms; the second arrives (its ACK
        // waits), the third is lost.
        inject(&mut t, 4, &ack_ts(base + 1448, PTS + 4, off));
        let srtt_ms = u64::from(t.srtt_us().unwrap()).div_ceil(1000);
        let pto = 4 + 2 * srtt_ms + TLP_DELACK_MS;
        assert_eq!(t.next_deadline(), Some(pto));
        assert!(pto < 4 + t.rto_ms());
        assert!(out(&mut t, pto - 1).is_empty());
        let v = out(&mut t, pto);
        let p = one(&v, "P.", base + 2 * 1448, PEER + 1, None);
        assert_eq!(p.data.len(), 1448);
        assert_eq!(t.stats().tlp_probes, 1);
        // The RTO runs behind the probe.
        assert_eq!(t.next_deadline(), Some(pto + t.rto_ms()));
        // Its ACK echoes the probe: it repaired a loss, cwnd is reduced.
        let cwnd = t.cc().cwnd();
        inject(
            &mut t,
            pto + 4,
            &ack_ts(base + 3 * 1448, PTS + 30, off + pto as u32),
        );
        assert_eq!(t.stats().tlp_recoveries, 1);
        assert!(t.cc().cwnd() < cwnd);
        assert_eq!(t.stats().timeouts, 0);
        assert!(t.next_deadline().is_none());
    }

    /// With more data waiting, the probe is a new segment; the duplicate
    /// ACK it draws says SND.UNA is missing, and it is retransmitted at
    /// once (fast recovery) rather than after the RTO.
    #[test]
    fn tail_loss_probe_sends_new_data_and_its_duplicate_starts_recovery() {
        let (mut t, off) = server_ts(cfg_tlp(true), 65_535);
        let base = ISS + 1;
        t.send(&data(4 * 1448));
        // A window of 3 segments from the peer: the 4th waits.
        t.snd_wnd = 3 * 1448;
        assert_eq!(out(&mut t, 0).len(), 3);
        inject(
            &mut t,
            4,
            &ack_ts(base + 1448, PTS + 4, off).tap(|s| s.win = 3 * 1448),
        );
        // Segments 2 and 3 lost. One new segment fits the window.
        let pto = t.next_deadline().unwrap();
        let v = out(&mut t, pto);
        let p = one(&v, "P.", base + 3 * 1448, PEER + 1, None);
        assert_eq!(p.data.len(), 1448);
        // Its duplicate ACK: segment 2 is sent again at once.
        let dup = ack_ts(base + 1448, PTS + 40, off + pto as u32).tap(|s| s.win = 3 * 1448);
        let v = inject(&mut t, pto + 4, &dup);
        assert_eq!(v[0].seq, base + 1448, "{v:?}");
        assert!(t.cc().in_recovery());
        assert_eq!(t.stats().fast_retransmits, 1);
    }

    /// No probe when the ACKs keep coming, in recovery, after a timeout,
    /// or when the probe timeout would not come before the RTO.
    #[test]
    fn tail_loss_probe_does_not_fire_when_it_should_not() {
        // ACKed in time: the timer is cancelled.
        let (mut t, off) = server_ts(cfg_tlp(true), 65_535);
        let base = ISS + 1;
        t.send(&data(2 * 1448));
        out(&mut t, 0);
        inject(&mut t, 3, &ack_ts(base + 2 * 1448, PTS + 3, off));
        assert!(t.next_deadline().is_none());
        assert!(out(&mut t, 1000).is_empty());
        assert_eq!(t.stats().tlp_probes, 0);
        // In recovery: the retransmission timer is the RTO.
        t.send(&data(10 * 1448));
        assert_eq!(out(&mut t, 1000).len(), 10);
        let base = base + 2 * 1448;
        for i in 0..3 {
            inject(&mut t, 1001 + i, &ack_ts(base, PTS + 1001, off + 1000));
        }
        assert!(t.cc().in_recovery());
        assert!(!t.pto_armed);
        // After a timeout: none either.
        let (mut t, _) = server_ts(cfg_tlp(true), 65_535);
        t.send(&data(1448));
        out(&mut t, 0);
        // No RTT sample yet beyond the handshake's 0 ms: PTO 200 ms for
        // one segment is not before the RTO (200 ms): no probe, an RTO.
        assert!(!t.pto_armed);
        out(&mut t, 200);
        assert_eq!(t.stats().timeouts, 1);
        assert_eq!(t.stats().tlp_probes, 0);
        // Turned off: the RTO only.
        let (mut t, off) = server_ts(cfg_tlp(false), 65_535);
        t.send(&data(3 * 1448));
        out(&mut t, 0);
        inject(&mut t, 4, &ack_ts(ISS + 1 + 1448, PTS + 4, off));
        assert!(!t.pto_armed);
    }

    /// A fast retransmission that is lost too: once more duplicate ACKs
    /// arrive than the segments in flight before it could cause, it is
    /// sent again, without waiting for the RTO.
    #[test]
    fn a_lost_retransmission_is_sent_again_before_the_rto() {
        let (mut t, off) = server_ts(cfg(), 65_535);
        let base = ISS + 1;
        t.send(&data(30 * 1448));
        assert_eq!(out(&mut t, 0).len(), 10);
        let dup = ack_ts(base, PTS + 10, off);
        for i in 0..3 {
            inject(&mut t, 10 + i, &dup);
        }
        assert_eq!(t.stats().fast_retransmits, 1);
        // 12 segments were out (10, and two of limited transmit): up to
        // 15 duplicates are theirs.
        let limit = t.retx_watch.unwrap().1;
        assert_eq!(limit, 12 + 3);
        let mut again = 0;
        for i in 0..=u64::from(limit) {
            let v = inject(&mut t, 20 + i, &dup);
            again += v
                .iter()
                .filter(|s| s.seq == base && !s.data.is_empty())
                .count();
            if i < u64::from(limit) {
                assert_eq!(again, 0, "duplicate {i}: {v:?}");
            }
        }
        assert_eq!(again, 1);
        assert_eq!(t.stats().lost_retransmits, 1);
        assert_eq!(t.stats().timeouts, 0);
        // A partial ACK starts a new count.
        inject(&mut t, 40, &ack_ts(base + 1448, PTS + 40, off + 33));
        assert!(t.cc().in_recovery());
        assert_eq!(t.retx_watch.map(|w| w.0), Some(0));
    }

    /// Out-of-order data while our own data waits to go: the duplicate
    /// ACK leaves on its own, without data (a sender counts only those,
    /// RFC 5681 §2), and the data follows.
    #[test]
    fn out_of_order_data_gets_a_pure_duplicate_ack_even_with_data_to_send() {
        let (mut t, off) = server_ts(cfg(), 65_535);
        t.send(&data(2 * 1448));
        let ooo = seg("P.", PEER + 101, ISS + 1, 65_535, &[1; 100]).with_ts(PTS + 1, off);
        let v = inject(&mut t, 1, &ooo);
        assert!(v.len() >= 2, "{v:?}");
        assert!(v[0].data.is_empty(), "a pure duplicate first: {v:?}");
        assert_eq!((v[0].seq, v[0].ack), (ISS + 1, PEER + 1));
        assert!(!v[1].data.is_empty());
        // In order: the ACK rides on the data, as before.
        let t2 = &mut server_ts(cfg(), 65_535).0;
        t2.send(&data(1448));
        let d = seg("P.", PEER + 1, ISS + 1, 65_535, &[1; 100]).with_ts(PTS + 1, off);
        let v = inject(t2, 1, &d);
        assert!(v.iter().all(|s| !s.data.is_empty()), "{v:?}");
    }

    // ----- Receive buffer autotuning -----

    /// A bulk flow whose reader keeps up grows the ring (and the window)
    /// from the initial 64 KiB towards `recv_buffer`; a small flow keeps
    /// 64 KiB; the window scale is chosen for the largest ring.
    #[test]
    fn receive_buffer_autotuning() {
        let c = Config {
            recv_buffer: 1 << 20,
            recv_buffer_initial: 64 << 10,
            ..cfg()
        };
        let syn = seg("S", PEER, 0, 65_535, &[])
            .with_mss(1460)
            .with_ws(7)
            .with_ts(PTS, 0);
        let mut t = Tcb::accept(&syn.view(), addr(80), addr(4000), Seq(ISS), c, 0).unwrap();
        let sa = one(&out(&mut t, 0), "S.", ISS, PEER + 1, None);
        assert_eq!(sa.ws, Some(5), "shift for 1 MiB, not for 64 KiB");
        let off = sa.ts.unwrap().0;
        inject(
            &mut t,
            0,
            &seg(".", PEER + 1, ISS + 1, 512, &[]).with_ts(PTS, off),
        );
        assert_eq!(t.recv_buffer(), 64 << 10);
        // 2 ms per "round trip": the peer sends what the window allows,
        // the application reads it all at once.
        let chunk = vec![7u8; 1448];
        let mut seq = PEER + 1;
        let mut buf = vec![0u8; 4 << 20];
        let mut now = 0;
        for round in 0..12 {
            now += 2;
            let wnd = t.rcv_wnd();
            let mut sent = 0;
            while sent + 1448 <= wnd {
                let d =
                    seg(".", seq, ISS + 1, 512, &chunk).with_ts(PTS + round, off + now as u32 - 1);
                t.on_segment(now, &d.view());
                seq += 1448;
                sent += 1448;
            }
            t.recv(&mut buf);
            out(&mut t, now);
        }
        assert_eq!(t.recv_buffer(), 1 << 20, "grown to recv_buffer");
        assert!(t.stats().rcv_buffer_grows >= 1);
        assert!(t.rcv_wnd() > 512 << 10, "window {}", t.rcv_wnd());
        // A small flow: a few kilobytes, read at once: no growth.
        let (mut s, off) = server_ts(c, 65_535);
        for i in 0..20u32 {
            let d =
                seg("P.", PEER + 1 + i * 100, ISS + 1, 65_535, &[1; 100]).with_ts(PTS + i, off + i);
            s.on_segment(u64::from(i) * 5, &d.view());
            s.recv(&mut buf);
            out(&mut s, u64::from(i) * 5);
        }
        assert_eq!(s.recv_buffer(), 64 << 10);
        // Turned off (initial = recv_buffer): the whole ring from the start.
        let full = Config {
            recv_buffer_initial: 1 << 20,
            ..c
        };
        let (s, _) = server_ts(full, 65_535);
        assert_eq!(s.recv_buffer(), 1 << 20);
        // A grown ring does not go back to the pool's size class.
        assert!(!t.into_buffers().fits(&c));
    }

    // ----- Two connections over a lossy channel -----

    /// xorshift64*: the channel's and the data's randomness.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn chance(&mut self, p: f64) -> bool {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
        }
    }

    struct Side {
        t: Tcb,
        out: Vec<u8>,
        sent: usize,
        got: Vec<u8>,
        shut: bool,
        /// Bytes read per turn at most (a slow reader shuts the window).
        read_max: usize,
    }

    impl Side {
        /// The application: write what fits, read everything, close at the end.
        fn app(&mut self) {
            if self.sent < self.out.len() {
                self.sent += self.t.send(&self.out[self.sent..]);
            } else if !self.shut && self.t.state().is_synchronized() {
                self.t.shutdown_write();
                self.shut = true;
            }
            let mut buf = [0u8; 4096];
            let mut left = self.read_max;
            while left > 0 {
                let n = self.t.recv(&mut buf[..left.min(4096)]);
                if n == 0 {
                    break;
                }
                left -= n;
                self.got.extend_from_slice(&buf[..n]);
            }
        }
    }

    /// Runs both directions to the end; returns the simulated time taken.
    fn transfer(seed: u64, drop: f64, dup: f64, reorder: f64, len: usize) -> u64 {
        let c = Config {
            send_buffer: 32 * 1024,
            recv_buffer: 48 * 1024,
            ..Config::default()
        };
        transfer_with(seed, (drop, dup, reorder), c, usize::MAX, len)
    }

    /// `net`: probabilities of drop, duplicate, reorder.
    fn transfer_with(
        seed: u64,
        net: (f64, f64, f64),
        c: Config,
        read_max: usize,
        len: usize,
    ) -> u64 {
        let (drop, dup, reorder) = net;
        let mut rng = Rng(seed | 1);
        let mk = |rng: &mut Rng| (0..len).map(|_| rng.next() as u8).collect::<Vec<u8>>();
        let (da, db) = (mk(&mut rng), mk(&mut rng));
        let a = Tcb::connect(addr(1), addr(2), Seq(rng.next() as u32), c, 0);
        let mut sides = [
            Side {
                t: a,
                out: da.clone(),
                sent: 0,
                got: Vec::new(),
                shut: false,
                read_max,
            },
            Side {
                t: Tcb::connect(addr(2), addr(1), Seq(0), c, 0), // replaced on the SYN
                out: db.clone(),
                sent: 0,
                got: Vec::new(),
                shut: false,
                read_max,
            },
        ];
        // B's ISS close to the wrap of the sequence space.
        let iss_b = u32::MAX - (rng.next() % 100_000) as u32;
        let mut b_open = false;
        // In flight: (delivery time, order, destination, segment).
        let mut wire: Vec<(u64, u64, usize, Seg)> = Vec::new();
        let mut order = 0u64;
        let mut now = 0u64;
        for _step in 0..400_000 {
            for (i, side) in sides.iter_mut().enumerate() {
                if i == 1 && !b_open {
                    continue;
                }
                side.app();
                let mut produced = Vec::new();
                side.t.poll(now, &mut |s| produced.push(own(s)));
                for s in produced {
                    if rng.chance(drop) {
                        continue;
                    }
                    let copies = if rng.chance(dup) { 2 } else { 1 };
                    for _ in 0..copies {
                        let delay = if rng.chance(reorder) {
                            1 + rng.next() % 20
                        } else {
                            5
                        };
                        order += 1;
                        wire.push((now + delay, order, 1 - i, s.clone()));
                    }
                }
            }
            let done = sides.iter().all(|s| s.t.is_closed()) && b_open;
            if done {
                break;
            }
            let next_wire = wire.iter().map(|w| (w.0, w.1)).min();
            let deadlines = sides
                .iter()
                .enumerate()
                .filter(|(i, _)| *i == 0 || b_open)
                .filter_map(|(_, s)| s.t.next_deadline())
                .min();
            let next = match (next_wire.map(|w| w.0), deadlines) {
                (Some(w), Some(d)) => w.min(d),
                (Some(w), None) => w,
                (None, Some(d)) => d,
                (None, None) => break,
            };
            now = now.max(next);
            // Deliver one due segment (the earliest), in delivery order.
            if let Some((t, o)) = next_wire {
                if t <= now {
                    let k = wire.iter().position(|w| w.0 == t && w.1 == o).unwrap();
                    let (_, _, to, s) = wire.swap_remove(k);
                    if to == 1 && !b_open {
                        if let Some(t) =
                            Tcb::accept(&s.view(), addr(2), addr(1), Seq(iss_b), c, now)
                        {
                            sides[1].t = t;
                            b_open = true;
                        }
                    } else {
                        sides[to].t.on_segment(now, &s.view());
                    }
                }
            }
        }
        // What is still unread can be read after the end.
        for s in &mut sides {
            s.read_max = usize::MAX;
            s.app();
        }
        for s in &sides {
            assert!(s.t.is_closed(), "not closed: {:?} at {now}", s.t.state());
            assert_eq!(s.t.error(), None, "{:?} at {now}", s.t);
        }
        assert!(sides[1].got == da, "a -> b differs");
        assert!(sides[0].got == db, "b -> a differs");
        now
    }

    /// Found by the property test: after timeouts on both sides, pure ACKs
    /// sent at a rewound SND.NXT were old to the peer and dropped, and the
    /// two connections stalled until they gave up.
    #[test]
    fn both_sides_retransmitting_do_not_stall() {
        transfer(
            7_017_903_653_328_362_210,
            0.061_766_511_478_358_18,
            0.023_406_897_725_858_463,
            0.097_890_228_894_151_78,
            256 * 1024,
        );
    }

    #[test]
    fn clean_channel_transfer() {
        // About 110 ms of transfer, then TIME-WAIT.
        let t = transfer(1, 0.0, 0.0, 0.0, 256 * 1024);
        assert!((60_000..61_000).contains(&t), "{t}");
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Flags, seq and ack relative to RCV.NXT and SND.UNA, window, text length.
        Seg(u16, i32, i32, u16, usize),
        Send(usize),
        Recv(usize),
        Shutdown,
        Close,
        Abort,
        Wait(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let rel = prop_oneof![4 => -3000i32..3000, 1 => any::<i32>()];
        prop_oneof![
            6 => (0u16..64, rel.clone(), rel, any::<u16>(), 0usize..3000)
                .prop_map(|(f, s, a, w, n)| Op::Seg(f, s, a, w, n)),
            2 => (0usize..5000).prop_map(Op::Send),
            2 => (0usize..5000).prop_map(Op::Recv),
            1 => Just(Op::Shutdown),
            1 => Just(Op::Close),
            1 => Just(Op::Abort),
            2 => prop_oneof![0u64..100, 0u64..100_000].prop_map(Op::Wait),
        ]
    }

    /// Invariants after any sequence of inputs.
    fn check(t: &Tcb, segs: &[Seg]) -> Result<(), TestCaseError> {
        prop_assert!(t.snd_una.le(t.snd_nxt), "{t:?}");
        prop_assert!(t.snd_nxt.le(t.snd_max) || t.probe_sent, "{t:?}");
        prop_assert!(t.tx.len() <= t.tx.capacity() && t.rx.len() <= t.rx.capacity());
        for s in segs {
            prop_assert!(s.data.len() <= t.snd_mss as usize, "{s:?}");
            prop_assert!(!s.sackp);
        }
        if t.state() == State::Closed {
            prop_assert!(t.next_deadline().is_none());
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever arrives, in whatever state: no panic, invariants hold.
        #[test]
        fn arbitrary_inputs_never_break_it(
            start in 0u8..3,
            ops in proptest::collection::vec(op(), 0..150),
        ) {
            let mut now = 0u64;
            let mut t = if start == 2 {
                server(cfg(), 65_535)
            } else if start == 1 {
                let mut t = Tcb::connect(addr(1), addr(2), Seq(u32::MAX - 10), cfg(), 0);
                out(&mut t, 0);
                t
            } else {
                let syn = seg("S", u32::MAX - 20, 0, 1000, &[]).with_mss(500).with_ws(3);
                Tcb::accept(&syn.view(), addr(1), addr(2), Seq(u32::MAX - 10), cfg(), 0).unwrap()
            };
            let text = data(3000);
            let mut buf = vec![0u8; 5000];
            for o in ops {
                match o {
                    Op::Seg(f, s, a, w, n) => {
                        let mut x = seg("", 0, 0, w, &text[..n]);
                        x.flags = TcpFlags::from_bits(f);
                        x.seq = (t.rcv_nxt + s as u32).get();
                        x.ack = (t.snd_una + a as u32).get();
                        t.on_segment(now, &x.view());
                    }
                    Op::Send(n) => {
                        t.send(&buf[..n]);
                    }
                    Op::Recv(n) => {
                        t.recv(&mut buf[..n]);
                    }
                    Op::Shutdown => t.shutdown_write(),
                    Op::Close => t.close(),
                    Op::Abort => t.abort(),
                    Op::Wait(ms) => now += ms,
                }
                let segs = out(&mut t, now);
                check(&t, &segs)?;
            }
        }


        #[test]
        fn lossy_channel_transfer(
            seed: u64,
            drop in 0.0f64..0.08,
            dup in 0.0f64..0.05,
            reorder in 0.0f64..0.2,
        ) {
            transfer(seed, drop, dup, reorder, 256 * 1024);
        }

        #[test]
        fn lossy_transfer_small_buffers_slow_reader(
            seed: u64,
            drop in 0.0f64..0.05,
            mss in 100u16..1460,
            recv_buffer in 1000usize..20_000,
            send_buffer in 1000usize..20_000,
            nodelay: bool,
            read_max in prop_oneof![Just(usize::MAX), 1usize..3000],
        ) {
            let c = Config { mss, recv_buffer, send_buffer, nodelay, ..Config::default() };
            transfer_with(seed, (drop, 0.01, 0.05), c, read_max, 64 * 1024);
        }
    }
}
