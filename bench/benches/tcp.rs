//! The TCP state machine's per-segment fast path (`engine::tcp::tcb::Tcb`),
//! one core, ns per segment, no I/O: segments are built in memory as the
//! endpoint builds them from the wire (`Segment::from_repr`), and what `poll`
//! emits is handed to `black_box` instead of being written into a frame.
//!
//! - `tcp/segment_receive`: an established connection takes an in-order
//!   full-MSS (1460 bytes) data segment (`on_segment`), the application reads
//!   it (`recv`), then `poll` runs as the endpoint runs it after every
//!   segment: it emits the delayed ACK on every second segment (checked
//!   before timing: 50 ACKs for 100 segments, each read whole).
//! - `tcp/segment_send`: the application writes one MSS (`send`), `poll`
//!   emits it as one segment, then the peer's ACK of it is processed
//!   (`on_segment`): the endpoint's cycle ACK → app → poll. The peer ACKs
//!   every segment (the sender's worst case); the flight stays at one segment.
//! - `tcp/accept_handshake`: a connection's setup: `Tcb::accept` from a SYN
//!   (allocates the two 64 KiB rings), `poll` emits the SYN-ACK, the peer's
//!   ACK makes it ESTABLISHED; then it is dropped (freed).
//!
//! Steady state: the receive ring is emptied by every `recv`, the send ring
//! by every ACK, sequence numbers wrap modulo 2^32 as on the wire, and the
//! clock stands still (no timer fires: the delayed-ACK timer is re-armed,
//! the retransmission timer cancelled, by the segments themselves).
//! The endpoint's own work (4-tuple lookup, timer wheel, frame build with
//! checksums) is not included: it needs the pipeline (`Ctx`, UMEM).
use std::net::SocketAddr;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use engine::tcp::seq::Seq;
use engine::tcp::tcb::{Config, Segment, State, Tcb};
use engine::wire::tcp::TcpFlags;

const MSS: usize = 1460;
/// Our ISS and the peer's.
const ISS: u32 = 5000;
const PEER: u32 = 1000;
/// The frozen clock, ms.
const NOW: u64 = 1_000;
/// The peer's window field: 64 KiB with its shift of 7 (Linux's default).
const PEER_WIN: u16 = 512;

fn addrs() -> (SocketAddr, SocketAddr) {
    (
        SocketAddr::from(([198, 18, 0, 1], 80)),
        SocketAddr::from(([198, 18, 0, 2], 40_000)),
    )
}

/// The peer's SYN as a Linux client sends it: MSS 1460, window scale 7.
fn syn() -> Segment<'static> {
    Segment {
        seq: Seq(PEER),
        flags: TcpFlags::SYN,
        window: 64_240,
        mss: Some(1460),
        window_scale: Some(7),
        ..Segment::default()
    }
}

/// The handshake's last step: the peer's ACK of our SYN-ACK.
fn handshake_ack() -> Segment<'static> {
    Segment {
        seq: Seq(PEER + 1),
        ack: Seq(ISS + 1),
        flags: TcpFlags::ACK,
        window: PEER_WIN,
        ..Segment::default()
    }
}

/// A server connection after SYN, SYN-ACK and ACK (the endpoint's default
/// configuration: 64 KiB rings, Nagle on, delayed ACKs).
fn established() -> Tcb {
    let (local, remote) = addrs();
    let mut t = Tcb::accept(&syn(), local, remote, Seq(ISS), Config::default(), 0).expect("accept");
    let mut n = 0;
    t.poll(0, &mut |_| n += 1);
    assert_eq!(n, 1, "SYN-ACK");
    t.on_segment(0, &handshake_ack());
    t.poll(0, &mut |_| n += 1);
    assert_eq!((t.state(), n), (State::Established, 1));
    t
}

/// One received segment the way the endpoint handles it; returns the
/// bytes read and the segments `poll` emitted.
#[inline]
fn receive_one(t: &mut Tcb, seq: &mut u32, data: &[u8], buf: &mut [u8]) -> (usize, u32) {
    let seg = Segment {
        seq: Seq(*seq),
        ack: Seq(ISS + 1),
        flags: TcpFlags::ACK.union(TcpFlags::PSH),
        window: PEER_WIN,
        payload: data,
        ..Segment::default()
    };
    t.on_segment(NOW, black_box(&seg));
    let n = t.recv(buf);
    let mut acks = 0;
    t.poll(NOW, &mut |s| {
        black_box(s);
        acks += 1;
    });
    *seq = seq.wrapping_add(data.len() as u32);
    (n, acks)
}

/// One sent segment and its ACK; returns the bytes emitted.
#[inline]
fn send_one(t: &mut Tcb, data: &[u8]) -> usize {
    let queued = t.send(data);
    let mut end = None;
    let mut sent = 0;
    t.poll(NOW, &mut |s| {
        black_box(s);
        sent += s.payload_len();
        end = Some(s.seq + s.payload_len() as u32);
    });
    if let Some(ack) = end {
        let seg = Segment {
            seq: Seq(PEER + 1),
            ack,
            flags: TcpFlags::ACK,
            window: PEER_WIN,
            ..Segment::default()
        };
        t.on_segment(NOW, black_box(&seg));
    }
    debug_assert_eq!(queued, sent);
    sent
}

fn tcp(c: &mut Criterion) {
    let data: Vec<u8> = (0..MSS).map(|i| (i % 251) as u8).collect();
    let mut buf = vec![0u8; 64 * 1024];
    let mut g = c.benchmark_group("tcp");
    g.throughput(Throughput::Bytes(MSS as u64));

    // Receive: check the path first (every segment read whole, an ACK per two).
    let mut t = established();
    let mut seq = PEER + 1;
    let (mut read, mut acks) = (0, 0);
    for _ in 0..100 {
        let (n, a) = receive_one(&mut t, &mut seq, &data, &mut buf);
        assert_eq!(n, MSS, "every segment is read whole");
        read += n;
        acks += a;
    }
    assert_eq!(
        (read, acks),
        (100 * MSS, 50),
        "one ACK per two full segments"
    );
    g.bench_function("segment_receive", |b| {
        b.iter(|| receive_one(&mut t, &mut seq, &data, &mut buf))
    });
    assert_eq!(t.state(), State::Established);

    // Send: one MSS per segment, all of it acknowledged.
    let mut t = established();
    for _ in 0..100 {
        assert_eq!(send_one(&mut t, &data), MSS, "one full segment per send");
        assert_eq!(t.send_queue(), 0, "acknowledged");
    }
    g.bench_function("segment_send", |b| b.iter(|| send_one(&mut t, &data)));
    assert_eq!((t.state(), t.send_queue()), (State::Established, 0));

    // Setup of one connection (rings allocated and freed).
    g.throughput(Throughput::Elements(1));
    g.bench_function("accept_handshake", |b| {
        b.iter(|| {
            let (local, remote) = addrs();
            let mut t = Tcb::accept(
                black_box(&syn()),
                local,
                remote,
                Seq(ISS),
                Config::default(),
                NOW,
            )
            .expect("accept");
            t.poll(NOW, &mut |s| {
                black_box(s);
            });
            t.on_segment(NOW, black_box(&handshake_ack()));
            black_box(t.state())
        })
    });
    g.finish();
}

criterion_group!(benches, tcp);
criterion_main!(benches);
