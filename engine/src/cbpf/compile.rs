//! Compiling a `tcpdump` expression with libpcap (`pcap_compile` on a dead
//! Ethernet handle, optimised), for the `pktengine ctl` client only: the
//! engine never calls this, so libpcap's parser never sees a client's text
//! inside the privileged process. What it returns goes through
//! [`super::Program::new`] on the engine side like any other program.

use super::Insn;

/// The instructions libpcap compiles `expr` to, or libpcap's own message
/// (`syntax error in filter expression`, `unknown host 'x'`, ...).
pub fn compile(expr: &str) -> Result<Vec<Insn>, String> {
    let strip = |e: pcap::Error| {
        e.to_string()
            .trim_start_matches("libpcap error: ")
            .to_string()
    };
    let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).map_err(strip)?;
    let prog = dead.compile(expr, true).map_err(strip)?;
    // The crate shows an instruction only as `code jt jf k` (its fields are private).
    prog.get_instructions()
        .iter()
        .map(|i| parse(&i.to_string()).ok_or_else(|| format!("libpcap gave `{i}`")))
        .collect()
}

fn parse(s: &str) -> Option<Insn> {
    let mut f = s.split_whitespace();
    let insn = Insn {
        code: f.next()?.parse().ok()?,
        jt: f.next()?.parse().ok()?,
        jf: f.next()?.parse().ok()?,
        k: f.next()?.parse().ok()?,
    };
    f.next().is_none().then_some(insn)
}

#[cfg(test)]
mod tests {
    //! Our interpreter against libpcap's own `bpf_filter` (through
    //! `pcap_offline_filter`): the same program, the same frames, the same
    //! verdict.
    use super::super::Program;
    use super::*;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    /// Typical expressions: addresses, nets, ports, protocols, flags,
    /// VLANs, IPv6, lengths, MACs, arithmetic, indirect loads, scratch memory.
    const EXPRS: &[&str] = &[
        "tcp port 80 and host 198.18.1.2",
        "host 198.18.1.2",
        "src host 198.18.1.2 and dst net 198.19.0.0/16",
        "net 198.18.0.0/15",
        "port 80",
        "dst port 53",
        "udp and not port 53",
        "tcp and (port 80 or port 443)",
        "portrange 1000-2000",
        "tcp[13] & 2 != 0",
        "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
        "tcp[tcpflags] & tcp-rst != 0",
        "icmp",
        "icmp[icmptype] == icmp-echo",
        "icmp6",
        "ip6",
        "ip6 and tcp dst port 443",
        "ip6 host 2001:2::1",
        "ip6 net 2001:2::/48",
        "vlan",
        "vlan 100",
        "vlan and tcp port 80",
        "vlan 100 and vlan 200 and udp",
        "len > 100",
        "less 64",
        "greater 200",
        "ether host 02:00:00:00:00:01",
        "ether broadcast",
        "ether multicast",
        "ether proto 0x88cc",
        "arp",
        "arp and host 198.18.1.1",
        "ip proto 17",
        "ip[6:2] & 0x1fff != 0",
        "ip[0] & 0xf0 = 0x40 and ip[8] > 5",
        "ip[2:2] / 4 > 10",
        "ip[2:2] % 7 = 3",
        "ip[8] << 2 > 100",
        "ip[8] >> 1 = 32",
        "ip[1] ^ 0xff = 0xff",
        "ip[2:2] - 20 > 40 and ip[2:2] * 2 < 3000",
        "udp[12:4] & 0xff00ffff = 0x5000ffff",
        "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
        "ip multicast",
        "ip6 multicast",
        "not ip and not ip6",
        "",
    ];

    const V4: [[u8; 4]; 4] = [
        [198, 18, 1, 2],
        [198, 18, 1, 1],
        [198, 19, 1, 2],
        [224, 0, 0, 1],
    ];
    const PORTS: [u16; 5] = [80, 443, 53, 1500, 0x0800];

    /// A frame that often looks like what the expressions test: Ethernet,
    /// 0-2 VLAN tags, IPv4/IPv6/ARP or anything, TCP/UDP/ICMP with chosen
    /// addresses and ports, then a few bytes changed and maybe cut short.
    fn frame() -> impl Strategy<Value = Vec<u8>> {
        (
            (
                any::<u8>(),
                any::<[u8; 6]>(),
                0usize..3,
                prop_oneof![
                    Just(0x0800u16),
                    Just(0x86dd),
                    Just(0x0806),
                    Just(0x88cc),
                    any::<u16>()
                ],
            ),
            (
                0usize..4,
                0usize..4,
                5u8..16,
                prop_oneof![Just(6u8), Just(17), Just(1), Just(58), any::<u8>()],
                any::<bool>(),
            ),
            (
                0usize..6,
                0usize..6,
                any::<u16>(),
                any::<u8>(),
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), 0..200),
            ),
            (
                proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
                proptest::option::of(any::<usize>()),
            ),
        )
            .prop_map(
                |(
                    (dst_kind, src, tags, ethertype),
                    (s, d, ihl, proto, frag),
                    (sp, dp, rport, flags, get, mut payload),
                    (edits, cut),
                )| {
                    if get {
                        payload.splice(0..0, *b"GET ");
                    }
                    let mut f = Vec::with_capacity(256);
                    let dst: [u8; 6] = match dst_kind % 4 {
                        0 => [0xff; 6],
                        1 => [0x02, 0, 0, 0, 0, 0x01],
                        2 => [0x01, 0x00, 0x5e, 0, 0, 1],
                        _ => src,
                    };
                    f.extend_from_slice(&dst);
                    f.extend_from_slice(&src);
                    for t in 0..tags {
                        f.extend_from_slice(&[0x81, 0x00]);
                        f.extend_from_slice(&(if t == 0 { 100u16 } else { 200 }).to_be_bytes());
                    }
                    f.extend_from_slice(&ethertype.to_be_bytes());
                    let port = |i: usize| if i < PORTS.len() { PORTS[i] } else { rport };
                    let l4 = |f: &mut Vec<u8>| {
                        f.extend_from_slice(&port(sp).to_be_bytes());
                        f.extend_from_slice(&port(dp).to_be_bytes());
                        // TCP: seq, ack, data offset 5, flags; UDP: length, checksum, then the rest.
                        f.extend_from_slice(&[
                            0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0,
                        ]);
                        f.extend_from_slice(&payload);
                    };
                    match ethertype {
                        0x0800 => {
                            let total = (usize::from(ihl) * 4 + 20 + payload.len()) as u16;
                            f.push(0x40 | ihl);
                            f.push(0);
                            f.extend_from_slice(&total.to_be_bytes());
                            f.extend_from_slice(&[
                                0,
                                1,
                                if frag { 0x20 } else { 0x40 },
                                if frag { 8 } else { 0 },
                                64,
                                proto,
                                0,
                                0,
                            ]);
                            f.extend_from_slice(&V4[s]);
                            f.extend_from_slice(&V4[d]);
                            f.resize(f.len() + (usize::from(ihl) - 5) * 4, 1);
                            l4(&mut f);
                        }
                        0x86dd => {
                            f.extend_from_slice(&[0x60, 0, 0, 0]);
                            f.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
                            f.extend_from_slice(&[proto, 64]);
                            for a in [s, d] {
                                let mut addr = [
                                    0x20, 0x01, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, a as u8,
                                ];
                                if a == 3 {
                                    addr[0] = 0xff;
                                }
                                f.extend_from_slice(&addr);
                            }
                            l4(&mut f);
                        }
                        0x0806 => {
                            f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
                            f.extend_from_slice(&src);
                            f.extend_from_slice(&V4[s]);
                            f.extend_from_slice(&[0; 6]);
                            f.extend_from_slice(&V4[d]);
                        }
                        _ => f.extend_from_slice(&payload),
                    }
                    for (at, v) in edits {
                        let n = f.len();
                        f[at % n] = v;
                    }
                    if let Some(c) = cut {
                        f.truncate(c % (f.len() + 1));
                    }
                    f
                },
            )
    }

    /// Every expression compiled once, both ways.
    fn programs() -> Vec<(&'static str, pcap::BpfProgram, Program)> {
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        EXPRS
            .iter()
            .map(|e| {
                let theirs = dead
                    .compile(e, true)
                    .unwrap_or_else(|err| panic!("{e}: {err}"));
                let ours =
                    Program::new(&compile(e).unwrap()).unwrap_or_else(|err| panic!("{e}: {err}"));
                (*e, theirs, ours)
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        #[test]
        fn same_verdict_as_libpcap(frames in proptest::collection::vec(frame(), 8)) {
            thread_local!(static PROGRAMS: Vec<(&'static str, pcap::BpfProgram, Program)> = programs());
            PROGRAMS.with(|ps| -> Result<(), TestCaseError> {
                for f in &frames {
                    for (e, theirs, ours) in ps {
                        prop_assert_eq!(ours.matches(f), theirs.filter(f), "`{}` on {:02x?}", e, f);
                    }
                }
                Ok(())
            })?;
        }
    }

    #[test]
    fn the_frames_reach_both_verdicts() {
        // The generator is good for something only if most expressions see matches and misses.
        let ps = programs();
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let frames: Vec<Vec<u8>> = (0..4000)
            .map(|_| frame().new_tree(&mut runner).unwrap().current())
            .collect();
        let one_sided: Vec<&str> = ps
            .iter()
            .filter(|(_, _, p)| {
                let hits = frames.iter().filter(|f| p.matches(f)).count();
                hits == 0 || hits == frames.len()
            })
            .map(|(e, _, _)| *e)
            .collect();
        // The empty expression matches everything.
        assert_eq!(one_sided, [""], "expressions that never or always matched");
    }

    #[test]
    fn compiles_the_issues_filter() {
        let insns = compile("tcp port 80 and host 198.18.1.2").unwrap();
        assert_eq!(insns[0], Insn::new(0x28, 0, 0, 12)); // ldh [12]
        assert!(insns.len() > 10 && insns.len() < 30, "{insns:?}");
        let p = Program::new(&insns).unwrap();
        assert_eq!(p.len(), insns.len());
    }

    #[test]
    fn bad_expressions_say_why() {
        let e = compile("tcp port eighty").unwrap_err();
        assert!(e.contains("eighty"), "{e}");
        let e = compile("tcp and (").unwrap_err();
        assert!(e.contains("syntax error"), "{e}");
        assert!(compile("host\0x").is_err());
    }

    #[test]
    fn protochain_loops_and_is_refused() {
        // libpcap walks the IPv6 extension headers with a backward jump; the kernel refuses it too.
        let insns = compile("ip6 protochain 6").unwrap();
        let e = Program::new(&insns).unwrap_err();
        assert_eq!(e.why, super::super::check::Why::JumpOutOfRange, "{e}");
        assert!(
            e.to_string().contains("jump backwards or past the end"),
            "{e}"
        );
    }

    #[test]
    fn parses_the_crates_text() {
        assert_eq!(parse("40 0 0 12"), Some(Insn::new(40, 0, 0, 12)));
        assert_eq!(
            parse("6 0 0 4294967295"),
            Some(Insn::new(6, 0, 0, u32::MAX))
        );
        assert_eq!(parse("40 0 0"), None);
        assert_eq!(parse("40 0 0 12 1"), None);
        assert_eq!(parse("40 0 256 12"), None);
    }
}
