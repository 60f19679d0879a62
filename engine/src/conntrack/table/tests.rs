//! The NAT table against its RFC behaviours, and against a plain model.
use super::*;
use crate::conntrack::track::TrackConfig;
use proptest::prelude::*;

const X: u32 = 0xc613_0101; // 198.19.1.1
const Y: u32 = 0xc613_0164; // 198.19.1.100
const A: u32 = 0xc612_0102; // 198.18.1.2
const C: u32 = 0xc612_0103; // 198.18.1.3
const R: u32 = 0xc613_0102; // 198.19.1.2
const S: u32 = 0xc613_0103; // 198.19.1.3
const SYN_F: u8 = 0x02;
const SYNACK: u8 = 0x12;
const ACK_F: u8 = 0x10;
const FINACK: u8 = 0x11;
const RST_F: u8 = 0x04;

fn table(f: impl FnOnce(&mut TableConfig)) -> NatTable {
    let mut c = TableConfig::simple(vec![X], 1024);
    f(&mut c);
    NatTable::new(c)
}

#[test]
fn endpoint_independent_mapping_keeps_the_port() {
    let mut t = table(|_| {});
    let e1 = t
        .outbound(PROTO_UDP, Ep::new(A, 40000), Ep::new(R, 53), 0, 0)
        .unwrap();
    assert_eq!(e1, Ep::new(X, 40000), "port preserved");
    // Another remote: the same mapping (RFC 4787 REQ-1).
    let e2 = t
        .outbound(PROTO_UDP, Ep::new(A, 40000), Ep::new(S, 7), 0, 0)
        .unwrap();
    assert_eq!(e2, e1);
    // Another inside host with the same port: a different external port.
    let e3 = t
        .outbound(PROTO_UDP, Ep::new(C, 40000), Ep::new(R, 53), 0, 0)
        .unwrap();
    assert_eq!(e3.addr, X);
    assert_ne!(e3.port, 40000);
    // Ports below the range are not kept.
    let e4 = t
        .outbound(PROTO_UDP, Ep::new(A, 53), Ep::new(R, 53), 0, 0)
        .unwrap();
    assert!(e4.port >= 1024);
    assert_eq!(t.counts(), (4, 3));
    // TCP and UDP have separate port spaces.
    let e5 = t
        .outbound(PROTO_TCP, Ep::new(A, 40000), Ep::new(R, 80), SYN_F, 0)
        .unwrap();
    assert_eq!(e5, Ep::new(X, 40000));
}

#[test]
fn filtering_behaviours() {
    for (f, same_port, other_port, other_addr) in [
        (Filtering::AddressAndPortDependent, true, false, false),
        (Filtering::AddressDependent, true, true, false),
        (Filtering::EndpointIndependent, true, true, true),
    ] {
        let mut t = table(|c| c.filtering = f);
        let e = t
            .outbound(PROTO_UDP, Ep::new(A, 40000), Ep::new(R, 7000), 0, 0)
            .unwrap();
        let r = |t: &mut NatTable, from: Ep| t.inbound(PROTO_UDP, from, e, 0, 1);
        assert_eq!(r(&mut t, Ep::new(R, 7000)).is_ok(), same_port, "{f:?}");
        assert_eq!(r(&mut t, Ep::new(R, 7001)).is_ok(), other_port, "{f:?}");
        let want = if other_addr {
            Ok(Ep::new(A, 40000))
        } else {
            Err(NatError::Filtered)
        };
        assert_eq!(r(&mut t, Ep::new(S, 7000)), want, "{f:?}");
        // Nothing at all for an outside port without a mapping.
        assert_eq!(
            t.inbound(PROTO_UDP, Ep::new(R, 7000), Ep::new(X, 5), 0, 1),
            Err(NatError::NoMapping)
        );
    }
}

#[test]
fn icmp_echo_ids_are_translated_and_only_requests_open_state() {
    let mut t = table(|_| {});
    assert_eq!(
        t.outbound(PROTO_ICMP, Ep::new(A, 7), Ep::new(R, 7), 0, 0),
        Err(NatError::NotNew),
        "an echo reply opens nothing"
    );
    let e = t
        .outbound(PROTO_ICMP, Ep::new(A, 7), Ep::new(R, 7), ECHO_REQUEST, 0)
        .unwrap();
    assert!(e.port >= 1024, "ids below the range are moved into it");
    // The reply carries the translated id on both sides.
    assert_eq!(
        t.inbound(PROTO_ICMP, Ep::new(R, e.port), e, 0, 1),
        Ok(Ep::new(A, 7))
    );
    // Another host's reply to the same id does not match (address-dependent on the remote).
    assert_eq!(
        t.inbound(PROTO_ICMP, Ep::new(S, e.port), e, 0, 1),
        Err(NatError::Filtered)
    );
}

#[test]
fn per_host_limit_and_exhaustion() {
    let mut t = table(|c| {
        c.max_per_host = 2;
        c.port_lo = 5000;
        c.port_hi = 5002;
    });
    assert!(t
        .outbound(PROTO_UDP, Ep::new(A, 1), Ep::new(R, 1), 0, 0)
        .is_ok());
    assert!(t
        .outbound(PROTO_UDP, Ep::new(A, 2), Ep::new(R, 1), 0, 0)
        .is_ok());
    assert_eq!(
        t.outbound(PROTO_UDP, Ep::new(A, 3), Ep::new(R, 1), 0, 0),
        Err(NatError::HostLimit)
    );
    // An existing mapping still takes new sessions at the limit.
    assert!(t
        .outbound(PROTO_UDP, Ep::new(A, 1), Ep::new(S, 1), 0, 0)
        .is_ok());
    assert!(t
        .outbound(PROTO_UDP, Ep::new(C, 1), Ep::new(R, 1), 0, 0)
        .is_ok());
    // Three ports in the range: the fourth mapping finds none.
    assert_eq!(
        t.outbound(PROTO_UDP, Ep::new(C, 2), Ep::new(R, 1), 0, 0),
        Err(NatError::Exhausted)
    );
}

#[test]
fn session_capacity_is_a_hard_limit() {
    let mut t = table(|c| c.max_sessions = 3);
    for p in 0..3 {
        assert!(t
            .outbound(PROTO_UDP, Ep::new(A, 2000 + p), Ep::new(R, 1), 0, 0)
            .is_ok());
    }
    assert_eq!(
        t.outbound(PROTO_UDP, Ep::new(A, 3000), Ep::new(R, 1), 0, 0),
        Err(NatError::Exhausted)
    );
    t.expire(400_000, 10);
    assert_eq!(t.counts(), (0, 0));
    assert!(t
        .outbound(PROTO_UDP, Ep::new(A, 3000), Ep::new(R, 1), 0, 400_000)
        .is_ok());
}

#[test]
fn timeouts_follow_tcp_state() {
    let tm = Timeouts {
        udp_ms: 300,
        icmp_ms: 60,
        tcp_established_ms: 7440,
        tcp_transitory_ms: 240,
    };
    let mut t = table(|c| c.timeouts = tm);
    let e = t
        .outbound(PROTO_TCP, Ep::new(A, 40000), Ep::new(R, 80), SYN_F, 0)
        .unwrap();
    // SYN only: transitory.
    assert_eq!(t.dump(0)[0].state, "syn-seen");
    assert_eq!(t.dump(0)[0].expires_ms, 240);
    t.inbound(PROTO_TCP, Ep::new(R, 80), e, SYNACK, 10).unwrap();
    t.outbound(PROTO_TCP, Ep::new(A, 40000), Ep::new(R, 80), ACK_F, 20)
        .unwrap();
    assert_eq!(t.dump(20)[0].state, "established");
    t.expire(20 + 7000, 100);
    assert_eq!(t.counts().0, 1, "established lives 7440 ms here");
    t.outbound(PROTO_TCP, Ep::new(A, 40000), Ep::new(R, 80), FINACK, 7100)
        .unwrap();
    assert_eq!(t.dump(7100)[0].state, "fin-seen");
    t.inbound(PROTO_TCP, Ep::new(R, 80), e, FINACK, 7110)
        .unwrap();
    assert_eq!(t.dump(7110)[0].state, "closing");
    t.expire(7110 + 239, 100);
    assert_eq!(t.counts().0, 1);
    t.expire(7110 + 240, 100);
    assert_eq!(t.counts(), (0, 0), "the mapping goes with its last session");
    // A RST opens nothing; on a live session it makes it transitory.
    assert_eq!(
        t.outbound(PROTO_TCP, Ep::new(A, 40001), Ep::new(R, 80), RST_F, 0),
        Err(NatError::NotNew)
    );
    let e = t
        .outbound(PROTO_TCP, Ep::new(A, 40001), Ep::new(R, 80), SYN_F, 0)
        .unwrap();
    t.inbound(PROTO_TCP, Ep::new(R, 80), e, RST_F, 1).unwrap();
    assert_eq!(t.dump(1)[0].state, "reset");
    // UDP and ICMP.
    t.outbound(PROTO_UDP, Ep::new(A, 1), Ep::new(R, 1), 0, 0)
        .unwrap();
    t.outbound(PROTO_ICMP, Ep::new(A, 9), Ep::new(R, 9), ECHO_REQUEST, 0)
        .unwrap();
    t.expire(60, 100);
    assert!(t.dump(60).iter().all(|s| s.proto != PROTO_ICMP));
    t.expire(300, 100);
    assert!(t.dump(300).is_empty());
}

#[test]
fn static_forwards_accept_any_remote_and_never_expire() {
    let fwd = (PROTO_TCP, Ep::new(X, 8080), Ep::new(A, 80));
    let mut t = table(|c| c.statics = vec![fwd]);
    assert_eq!(
        t.inbound(PROTO_TCP, Ep::new(R, 5555), Ep::new(X, 8080), SYN_F, 0),
        Ok(Ep::new(A, 80))
    );
    // The reply leaves through the same mapping.
    assert_eq!(
        t.outbound(PROTO_TCP, Ep::new(A, 80), Ep::new(R, 5555), SYNACK, 1),
        Ok(Ep::new(X, 8080))
    );
    // A dynamic mapping never takes the forwarded port.
    let e = t
        .outbound(PROTO_TCP, Ep::new(C, 8080), Ep::new(R, 80), SYN_F, 0)
        .unwrap();
    assert_ne!(e.port, 8080);
    t.expire(u64::MAX / 2, 100);
    assert_eq!(t.counts(), (0, 0));
    assert_eq!(
        t.inbound(PROTO_TCP, Ep::new(S, 1), Ep::new(X, 8080), SYN_F, 0),
        Ok(Ep::new(A, 80))
    );
}

#[test]
fn workers_allocate_disjoint_ports() {
    let mk = |w| {
        table(|c| {
            c.worker = w;
            c.workers = 2;
            c.port_lo = 6000;
            c.port_hi = 6009;
        })
    };
    let (mut t0, mut t1) = (mk(0), mk(1));
    let mut seen = std::collections::BTreeSet::new();
    for p in 0..5 {
        let a = t0
            .outbound(PROTO_UDP, Ep::new(A, 100 + p), Ep::new(R, 1), 0, 0)
            .unwrap();
        let b = t1
            .outbound(PROTO_UDP, Ep::new(A, 200 + p), Ep::new(R, 1), 0, 0)
            .unwrap();
        assert_eq!(crate::nat::port_owner(a.port, 2), 0);
        assert_eq!(crate::nat::port_owner(b.port, 2), 1);
        assert!(seen.insert(a.port) && seen.insert(b.port));
    }
    assert_eq!(
        t0.outbound(PROTO_UDP, Ep::new(A, 999), Ep::new(R, 1), 0, 0),
        Err(NatError::Exhausted)
    );
    // A kept port must be in the worker's partition.
    let mut t1 = mk(1);
    assert_eq!(
        t1.outbound(PROTO_UDP, Ep::new(A, 6001), Ep::new(R, 1), 0, 0)
            .unwrap()
            .port,
        6001
    );
}

#[test]
fn paired_pooling_gives_a_host_one_address() {
    let mut t = NatTable::new(TableConfig::simple(vec![X, Y], 1024));
    let a1 = t
        .outbound(PROTO_UDP, Ep::new(A, 1000), Ep::new(R, 1), 0, 0)
        .unwrap();
    let a2 = t
        .outbound(PROTO_TCP, Ep::new(A, 2000), Ep::new(S, 1), SYN_F, 0)
        .unwrap();
    assert_eq!(a1.addr, a2.addr);
}

// ---- the model ------------------------------------------------------------------

/// The behaviour in its plainest form: a list of mappings and sessions.
#[derive(Default)]
struct Model {
    maps: Vec<(u8, Ep, Ep)>,      // proto, inside, outside
    sess: Vec<(u8, Ep, Ep, u64)>, // proto, inside, remote, last
}

impl Model {
    fn outside_of(&self, proto: u8, inside: Ep) -> Option<Ep> {
        self.maps
            .iter()
            .find(|m| m.0 == proto && m.1 == inside)
            .map(|m| m.2)
    }
    fn expire(&mut self, now: u64, timeout: u64) {
        self.sess.retain(|s| now - s.3 < timeout);
        let sess = &self.sess;
        self.maps
            .retain(|m| sess.iter().any(|s| s.0 == m.0 && s.1 == m.1));
    }
}

#[derive(Debug, Clone)]
enum Op {
    Out {
        inside: (u8, u16),
        remote: (u8, u16),
    },
    In {
        outside_port: u16,
        remote: (u8, u16),
    },
    Tick(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let ep = || (0u8..3, 0u16..4);
    prop_oneof![
        4 => (ep(), ep()).prop_map(|(inside, remote)| Op::Out { inside, remote }),
        2 => (1024u16..1032, ep()).prop_map(|(outside_port, remote)| Op::In { outside_port, remote }),
        1 => (0u64..200).prop_map(Op::Tick),
    ]
}

proptest! {
    /// UDP, address-and-port-dependent filtering, ports 1024..1031: the table
    /// and the model agree on every translation, refusal and expiry.
    #[test]
    fn table_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..200)) {
        let mut c = TableConfig::simple(vec![X], 64);
        c.port_lo = 1024;
        c.port_hi = 1031;
        c.timeouts.udp_ms = 300;
        let mut t = NatTable::new(c);
        let mut m = Model::default();
        let mut now = 0u64;
        let ins = |(h, p): (u8, u16)| Ep::new(A + u32::from(h), 1024 + p);
        let rem = |(h, p): (u8, u16)| Ep::new(R + u32::from(h), 7000 + p);
        for o in ops {
            match o {
                Op::Out { inside, remote } => {
                    let (i, r) = (ins(inside), rem(remote));
                    let got = t.outbound(PROTO_UDP, i, r, 0, now);
                    let want = match m.outside_of(PROTO_UDP, i) {
                        Some(e) => Some(e),
                        None => {
                            // The model allocates like the table: keep the port, else the lowest free one at or after the cursor.
                            let used: Vec<u16> = m.maps.iter().map(|m| m.2.port).collect();
                            if !used.contains(&i.port) { Some(Ep::new(X, i.port)) } else { (1024..1032).find(|p| !used.contains(p)).map(|p| Ep::new(X, p)) }
                        }
                    };
                    match (got, want) {
                        (Ok(g), Some(w)) => {
                            // The table's cursor may pick another free port than the model's lowest; both must be free and in range.
                            if m.outside_of(PROTO_UDP, i).is_some() { prop_assert_eq!(g, w); }
                            prop_assert!(g.addr == X && (1024..1032).contains(&g.port));
                            prop_assert!(!m.maps.iter().any(|mm| mm.2 == g && mm.1 != i), "outside endpoint given twice");
                            if m.outside_of(PROTO_UDP, i).is_none() { m.maps.push((PROTO_UDP, i, g)); }
                            match m.sess.iter_mut().find(|s| s.1 == i && s.2 == r) {
                                Some(s) => s.3 = now,
                                None => m.sess.push((PROTO_UDP, i, r, now)),
                            }
                        }
                        (Err(NatError::Exhausted), None) => {}
                        (g, w) => prop_assert!(false, "table {:?} model {:?}", g, w),
                    }
                }
                Op::In { outside_port, remote } => {
                    let (e, r) = (Ep::new(X, outside_port), rem(remote));
                    let got = t.inbound(PROTO_UDP, r, e, 0, now);
                    let map = m.maps.iter().find(|mm| mm.2 == e).copied();
                    match map {
                        None => prop_assert_eq!(got, Err(NatError::NoMapping)),
                        Some((_, i, _)) => match m.sess.iter_mut().find(|s| s.1 == i && s.2 == r) {
                            Some(s) => { s.3 = now; prop_assert_eq!(got, Ok(i)); }
                            None => prop_assert_eq!(got, Err(NatError::Filtered)),
                        },
                    }
                }
                Op::Tick(dt) => {
                    now += dt;
                    t.expire(now, 1000);
                    m.expire(now, 300);
                }
            }
            prop_assert_eq!(t.counts(), (m.sess.len() as u32, m.maps.len() as u32));
        }
    }
}

// ---- plain entries (the stateful filter's flows) ------------------------------------------

fn ct_table(cap: u32) -> NatTable {
    table(|c| {
        c.max_sessions = cap;
        c.ct = Some(CtTableConfig {
            max_entries: cap,
            track: TrackConfig::default(),
        });
    })
}

fn tuple4(proto: u8, src: u32, sport: u16, dst: u32, dport: u16) -> Tuple {
    Tuple {
        family: 4,
        proto,
        src: u128::from(src),
        dst: u128::from(dst),
        sport,
        dport,
    }
}

fn udp_track() -> Track {
    Track::other_new(crate::conntrack::track::class::UDP)
}

#[test]
fn plain_entries_are_found_both_ways_and_apart_from_nat_sessions() {
    let mut t = ct_table(16);
    let f = tuple4(PROTO_UDP, A, 40000, R, 53);
    assert_eq!(t.ct_find(&f), None);
    let s = t.ct_insert(&f, udp_track(), 0).unwrap();
    assert_eq!(t.ct_find(&f), Some(Found { slot: s, dir: 0 }));
    assert_eq!(t.ct_find(&f.reversed()), Some(Found { slot: s, dir: 1 }));
    assert_eq!(t.ct_find(&tuple4(PROTO_UDP, A, 40001, R, 53)), None);
    assert_eq!(
        t.ct_find(&tuple4(PROTO_TCP, A, 40000, R, 53)),
        None,
        "the protocol is part of the key"
    );
    // A NAT session of the same endpoints is another entry.
    let e = t
        .outbound(PROTO_UDP, Ep::new(A, 40000), Ep::new(R, 53), 0, 0)
        .unwrap();
    let ns = t.last_slot().unwrap();
    assert_ne!(ns, s);
    assert_eq!(
        t.out_slot(PROTO_UDP, Ep::new(A, 40000), Ep::new(R, 53)),
        Some(ns)
    );
    assert_eq!(t.find_inbound_slot(PROTO_UDP, e, Ep::new(R, 53)), Some(ns));
    assert!(t.is_nat(ns) && !t.is_nat(s));
    assert_eq!(t.ct_find(&f), Some(Found { slot: s, dir: 0 }));
    // `nat show` counts and lists sessions only; `conn show` lists both.
    assert_eq!(t.counts(), (1, 1));
    assert_eq!(t.entries(), 2);
    assert_eq!(t.dump(0).len(), 1);
    let rows = t.conn_dump(0);
    assert_eq!(rows.len(), 2);
    let plain = rows.iter().find(|r| !r.nat).unwrap();
    assert_eq!((plain.orig, plain.reply), (f, f.reversed()));
    let nat = rows.iter().find(|r| r.nat).unwrap();
    assert_eq!(
        (nat.reply.dst, nat.reply.dport),
        (u128::from(e.addr), e.port),
        "the reply goes to the outside endpoint"
    );
    // A NAT flush leaves the plain entry.
    t.flush();
    assert_eq!((t.counts(), t.entries()), ((0, 0), 1));
    assert_eq!(t.ct_find(&f.reversed()), Some(Found { slot: s, dir: 1 }));
}

#[test]
fn ipv6_plain_entries() {
    let mut t = ct_table(16);
    let a: u128 = 0x2001_0002_0000_0001_0000_0000_0000_0002;
    let b: u128 = 0x2001_0002_0000_0002_0000_0000_0000_0002;
    let f = Tuple {
        family: 6,
        proto: PROTO_TCP,
        src: a,
        dst: b,
        sport: 40000,
        dport: 80,
    };
    let s = t.ct_insert(&f, Track::default(), 0).unwrap();
    assert_eq!(t.ct_find(&f.reversed()), Some(Found { slot: s, dir: 1 }));
    assert_eq!(t.ct_find(&Tuple { dst: b + 1, ..f }), None);
    // The same numbers as IPv4 are another flow.
    assert_eq!(
        t.ct_find(&Tuple {
            family: 4,
            ..tuple4(PROTO_TCP, a as u32, 40000, b as u32, 80)
        }),
        None
    );
    assert_eq!(t.conn_dump(0)[0].orig, f);
    t.remove_slot(s);
    assert_eq!((t.ct_find(&f), t.entries()), (None, 0));
}

#[test]
fn plain_entries_expire_by_their_class_and_a_full_table_evicts() {
    let mut t = ct_table(4);
    let mut slots = Vec::new();
    for i in 0..4u16 {
        slots.push(
            t.ct_insert(&tuple4(PROTO_UDP, A, 1000 + i, R, 53), udp_track(), 0)
                .unwrap(),
        );
    }
    // Assure all but one: only that one may be evicted.
    for &s in &slots[1..] {
        t.track_mut(s).unwrap().status |= crate::conntrack::track::ASSURED;
    }
    let n = t
        .ct_insert(&tuple4(PROTO_UDP, A, 2000, R, 53), udp_track(), 0)
        .unwrap();
    assert_eq!(t.ct_counts.evicted, 1);
    assert_eq!(
        t.ct_find(&tuple4(PROTO_UDP, A, 1000, R, 53)),
        None,
        "the unassured entry went"
    );
    assert_eq!(
        t.ct_find(&tuple4(PROTO_UDP, A, 2000, R, 53))
            .map(|f| f.slot),
        Some(n)
    );
    t.track_mut(n).unwrap().status |= crate::conntrack::track::ASSURED;
    assert_eq!(
        t.ct_insert(&tuple4(PROTO_UDP, A, 3000, R, 53), udp_track(), 0),
        Err(CtFull::Full)
    );
    assert_eq!(t.ct_counts.full, 1);
    // UDP: 30 s by default.
    t.entry_ct(n).unwrap().touch(1, 10_000, true);
    assert_eq!(t.expire(29_999, 100), 0);
    assert_eq!(t.expire(39_999, 100), 3, "the three untouched since 0");
    assert_eq!(t.expire(40_000, 100), 1);
    assert_eq!(t.ct_counts.expired, 4);
    assert_eq!(t.entries(), 0);
}

mod steered {
    use super::*;
    use crate::conntrack::port_owner;
    use crate::rss::{queue_worker, Rss};
    use std::sync::Arc;

    fn steered_table(rss: &Arc<Rss>, w: u16, n: u16) -> NatTable {
        let mut c = TableConfig::simple(vec![X, Y], 4096);
        c.worker = w;
        c.workers = n;
        c.steer = Some(ReturnSteer { rss: rss.clone() });
        NatTable::new(c)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Every port a steered table chooses lies in its partition and the
        /// NIC's RSS (random key and table) delivers the return tuple of the
        /// flow that made the mapping to a queue this worker serves.
        #[test]
        fn every_port_chosen_brings_the_return_traffic_to_the_owner(
            key in proptest::collection::vec(any::<u8>(), 40..=40),
            table in proptest::collection::vec(0u16..4, 1..=128),
            n in 2u16..=4,
            w in 0u16..4,
            flows in proptest::collection::vec((any::<u32>(), 1024u16.., any::<u32>(), 1u16.., any::<bool>()), 1..64),
        ) {
            let w = w % n;
            let rss = Arc::new(Rss::new(key, table).unwrap());
            let steer = ReturnSteer { rss: rss.clone() };
            prop_assume!(steer.serves(w, n));
            let mut t = steered_table(&rss, w, n);
            for (i, (ia, ip, ra, rp, tcp)) in flows.into_iter().enumerate() {
                let proto = if tcp { PROTO_TCP } else { PROTO_UDP };
                let inside = Ep::new(ia, ip);
                let remote = Ep::new(ra, rp);
                let o = t.outbound(proto, inside, remote, SYN_F, i as u64).unwrap();
                if !t.last_created() {
                    continue;
                }
                prop_assert_eq!(port_owner(o.port, n), w, "partition");
                // A mapping made for an earlier remote keeps its port (EIM).
                let m = t.by_int[&EpKey::new(proto, inside)];
                let fresh = t.mappings[m as usize].sessions == 1;
                if fresh {
                    let q = rss.queue_v4(proto, remote.addr, o.addr, remote.port, o.port);
                    prop_assert_eq!(queue_worker(q, n), w, "return tuple {:?} -> {:?}", remote, o);
                }
            }
        }
    }

    #[test]
    fn without_a_queue_of_its_own_a_worker_still_gets_ports() {
        // Every entry names queue 0: worker 1 of 2 is served by none.
        let rss = Arc::new(Rss::new(crate::rss::MS_KEY.to_vec(), vec![0; 8]).unwrap());
        let mut t = steered_table(&rss, 1, 2);
        let o = t
            .outbound(PROTO_UDP, Ep::new(A, 40000), Ep::new(R, 53), 0, 0)
            .unwrap();
        assert_eq!(port_owner(o.port, 2), 1, "the partition still holds");
    }

    #[test]
    fn steering_changes_the_port_choice() {
        // Checked against the same flows without steering: most ports differ
        // from the preserved inside port (the test fails if steering is ignored).
        let rss = Arc::new(Rss::new(crate::rss::SYMMETRIC_KEY.to_vec(), vec![0, 1]).unwrap());
        let mut misaligned = 0;
        let mut plain = {
            let mut c = TableConfig::simple(vec![X], 4096);
            c.worker = 0;
            c.workers = 2;
            NatTable::new(c)
        };
        let mut t = steered_table(&rss, 0, 2);
        for i in 0..200u16 {
            let (inside, remote) = (Ep::new(A, 20000 + i), Ep::new(R + u32::from(i), 443));
            let o = plain.outbound(PROTO_TCP, inside, remote, SYN_F, 0).unwrap();
            let q = rss.queue_v4(PROTO_TCP, remote.addr, o.addr, remote.port, o.port);
            misaligned += usize::from(queue_worker(q, 2) != 0);
            let o = t.outbound(PROTO_TCP, inside, remote, SYN_F, 0).unwrap();
            let q = rss.queue_v4(PROTO_TCP, remote.addr, o.addr, remote.port, o.port);
            assert_eq!(queue_worker(q, 2), 0);
        }
        assert!(
            misaligned > 50,
            "unsteered: about half misaligned, got {misaligned}"
        );
    }
}
