//! Wire-layer benches: checksum throughput and header parsing.
//! Names are the ones the README's performance table uses.
use core::net::Ipv4Addr;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use engine::wire::ipv4::Ipv4Options;
use engine::wire::{
    checksum, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Packet,
    Ipv4Repr, TcpFlags, TcpPacket, TcpRepr, VlanStack,
};

/// A TCP SYN with the options Linux sends (MSS, SACK-permitted, timestamps,
/// window scale) in an IPv4 packet in an Ethernet frame: 74 bytes.
fn tcp_syn_frame() -> Vec<u8> {
    let src = Ipv4Addr::new(198, 18, 0, 1);
    let dst = Ipv4Addr::new(198, 18, 1, 2);
    let tcp = TcpRepr {
        src_port: 40000,
        dst_port: 80,
        seq_number: 0x1234_5678,
        ack_number: None,
        flags: TcpFlags::SYN,
        window_len: 64240,
        urgent_at: 0,
        max_seg_size: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        sack_ranges: [None; 4],
        timestamp: Some((1, 0)),
        payload: &[],
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        ttl: 64,
        dscp: 0,
        ecn: 0,
        ident: 7,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        options: Ipv4Options::EMPTY,
    };
    let eth = EthernetRepr {
        dst_addr: EthernetAddress([0x02, 0, 0, 0, 0, 2]),
        src_addr: EthernetAddress([0x02, 0, 0, 0, 0, 1]),
        vlans: VlanStack::new(),
        ethertype: EtherType::Ipv4,
    };
    let mut buf = vec![0u8; 14 + 20 + tcp.buffer_len()];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[14..]));
    tcp.emit(&mut TcpPacket::new_unchecked(&mut buf[34..]), src, dst)
        .unwrap();
    buf
}

/// The fast path's walk: checked views of each layer and the fields a
/// forwarding decision reads (no L4 checksum: a router does not verify it).
fn parse_views(frame: &[u8]) -> Option<(Ipv4Addr, u16, u16)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if !ip.verify_checksum() || ip.protocol() != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    Some((ip.dst_addr(), tcp.src_port(), tcp.dst_port()))
}

/// A full validation: every `Repr`, IPv4 header and TCP checksums, TCP options.
fn parse_reprs(frame: &[u8]) -> Option<u16> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let _ = EthernetRepr::parse(&eth).ok()?;
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let ipr = Ipv4Repr::parse(&ip).ok()?;
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let t = TcpRepr::parse(&tcp, ipr.src_addr, ipr.dst_addr).ok()?;
    t.max_seg_size
}

fn parse_bench(c: &mut Criterion) {
    let frame = tcp_syn_frame();
    assert!(parse_views(&frame).is_some() && parse_reprs(&frame) == Some(1460));
    let mut g = c.benchmark_group("wire_parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("eth_ipv4_tcp/views", |b| {
        b.iter(|| parse_views(black_box(&frame)))
    });
    g.bench_function("eth_ipv4_tcp/reprs", |b| {
        b.iter(|| parse_reprs(black_box(&frame)))
    });
    g.finish();
}

fn checksum_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum");
    for size in [64usize, 1500] {
        let buf: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("rfc1071/{size}B"), |b| {
            b.iter(|| checksum::data(black_box(&buf)))
        });
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("rfc1624/ttl_update", |b| {
        b.iter(|| checksum::update16(black_box(0x61f7), black_box(0x4001), black_box(0x3f01)))
    });
    g.finish();
}

criterion_group!(benches, checksum_bench, parse_bench);
criterion_main!(benches);
