//! The NAT's two places in the IPv4 pipeline.
//!
//! ```text
//! ip4-input ── dst is an outside address? ──► prerouting ─┬─ from an outside port: inbound (DNAT) ─► route the inside address
//!                                                         ├─ from an inside port: hairpin (SNAT, then inbound)
//!                                                         └─ no mapping: the engine's own address → local delivery, else drop
//! ip4-forward ── inside port → outside port ──► postrouting (SNAT) ─► MTU, TTL, neighbor, TX
//! ```
//!
//! Each hook first finds the flow's owner (`NatShared::owner_*`); a packet
//! that arrived on another worker is handed to the owner, which runs it
//! through the pipeline from the start. Drops are counted under the
//! `nat-*` reasons; every frame still ends in exactly one place.

use std::net::Ipv4Addr;

use super::frag::Follow;
use super::{NatShared, NatWorker, Role};
use crate::conntrack::rewrite::{self as translate, Kind, Side};
use crate::conntrack::table::{NatError, ECHO_REQUEST};
use crate::context::counters::{Drop, Stage};
use crate::context::handoff::AS_OUTSIDE;
use crate::context::icmp_error::Icmp4Error;
use crate::context::{untranslated, Ctx, Pre};
use crate::xsk::Desc;

/// The frame was handed over for the hairpin's SNAT half (internal flag).
const HAIRPIN_SNAT: u8 = 2;

/// Hands `d` to worker `to` ([`Ctx::hand_to`]); a first fragment's later
/// fragments carry no port, so where it went is remembered for them.
fn hand_to(ctx: &mut Ctx, w: &mut NatWorker, to: u16, port: u16, flags: u8, d: Desc) -> Pre {
    let ip = ctx.ip_of(&d);
    let (id, more, offset) = translate::frag_info(ip);
    if more && offset == 0 && ip.len() >= 20 {
        let (proto, src, dst) = (ip[9], be32(ip, 12), be32(ip, 16));
        let now = ctx.now_ms();
        w.frags
            .remember(proto, src, dst, id, Follow::Owner(to), now);
    }
    ctx.hand_to(to, port, flags, d);
    Pre::Done
}

#[inline]
fn be32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// ip4-input, for every packet to one of the NAT's outside addresses
/// (`dst`, host order).
pub fn prerouting(
    ctx: &mut Ctx,
    nat: &NatShared,
    w: &mut NatWorker,
    port: u16,
    d: Desc,
    dst: u32,
) -> Pre {
    let role = if ctx.handoff & AS_OUTSIDE != 0 {
        Role::Outside
    } else {
        nat.role(port)
    };
    let kind = translate::classify(ctx.ip_of(&d));
    if role == Role::Inside {
        return hairpin(ctx, nat, w, port, d, dst, kind);
    }
    inbound(ctx, nat, w, port, d, dst, kind)
}

/// Translates a packet from outside to an outside address back to the inside.
fn inbound(
    ctx: &mut Ctx,
    nat: &NatShared,
    w: &mut NatWorker,
    port: u16,
    d: Desc,
    dst: u32,
    kind: Kind,
) -> Pre {
    let now = ctx.now_ms();
    let flags = ctx.handoff & AS_OUTSIDE;
    let (proto, remote, outside, tcp_flags, echo) = match kind {
        Kind::Ports {
            proto,
            src,
            dst,
            tcp_flags,
        } => (proto, src, dst, tcp_flags, false),
        Kind::Echo {
            src,
            dst,
            request: false,
        } => (translate::PROTO_ICMP, src, dst, 0, true),
        Kind::IcmpError {
            proto,
            inner_src,
            inner_dst,
            ..
        } => {
            // An error about a packet the NAT sent: the quoted source is our
            // outside endpoint, the quoted destination the remote one. It may
            // come from any router on the path, so the outer source is not
            // checked against the session.
            if let Some(to) = ctx.elsewhere(nat.owner_inbound(proto, inner_src)) {
                return hand_to(ctx, w, to, port, flags, d);
            }
            let found = w.table.find_inbound_slot(proto, inner_src, inner_dst);
            let Some(slot) = found else {
                return untranslated(ctx, port, d, dst, Drop::NatNoMapping);
            };
            w.seen = Some(super::Seen {
                slot,
                created: false,
                related: true,
            });
            let Some(inside) = w.table.inside_of(slot) else {
                return untranslated(ctx, port, d, dst, Drop::NatNoMapping);
            };
            if !translate::rewrite_icmp_error(ctx.ip_mut(&d), Side::Dst, inside.addr, inside) {
                return untranslated(ctx, port, d, dst, Drop::NatNoMapping);
            }
            ctx.st.counters.stage(Stage::NatIn, 1);
            return Pre::Forward(Ipv4Addr::from(inside.addr));
        }
        Kind::LaterFragment {
            proto,
            src,
            dst: fdst,
            id,
        } => {
            let follow = w.frags.follow(proto, src, fdst, id, now);
            return match follow {
                Some(Follow::Owner(to)) if to != ctx.st.worker => {
                    hand_to(ctx, w, to, port, flags, d)
                }
                Some(Follow::Rewrite {
                    side: Side::Dst,
                    addr,
                }) => {
                    translate::rewrite_addr(ctx.ip_mut(&d), Side::Dst, addr);
                    ctx.st.counters.stage(Stage::NatIn, 1);
                    Pre::Forward(Ipv4Addr::from(addr))
                }
                _ => untranslated(ctx, port, d, dst, Drop::NatFragNoState),
            };
        }
        // Echo requests to an outside address are the engine's to answer;
        // other protocols have no mapping.
        Kind::Echo { .. } | Kind::Other => {
            return untranslated(ctx, port, d, dst, Drop::NatNoMapping)
        }
    };
    if let Some(to) = ctx.elsewhere(nat.owner_inbound(proto, outside)) {
        return hand_to(ctx, w, to, port, flags, d);
    }
    let inside = match w.table.inbound(proto, remote, outside, tcp_flags, now) {
        Ok(i) => i,
        Err(NatError::Filtered) => {
            // A mapping exists but refuses this remote: silence, also on the
            // engine's own address (RFC 5382 REQ-4: no answer to an unsolicited SYN).
            ctx.drop(port, d, Drop::NatFiltered);
            return Pre::Done;
        }
        Err(NatError::Exhausted) => return untranslated(ctx, port, d, dst, Drop::NatExhausted),
        Err(_) => return untranslated(ctx, port, d, dst, Drop::NatNoMapping),
    };
    if let Some(slot) = w.table.last_slot() {
        w.seen = Some(super::Seen {
            slot,
            created: w.table.last_created(),
            related: false,
        });
    }
    let ip = ctx.ip_of(&d);
    let (id, more, _) = translate::frag_info(ip);
    if ip.get(8).is_some_and(|&ttl| ttl <= 1) {
        // Dies here: the error quotes the packet as its sender sent it.
        ctx.icmp4_error(port, &d, Icmp4Error::TimeExceeded);
        ctx.drop(port, d, Drop::Ip4TtlExpired);
        return Pre::Done;
    }
    if more {
        w.frags.remember(
            proto,
            remote.addr,
            outside.addr,
            id,
            Follow::Rewrite {
                side: Side::Dst,
                addr: inside.addr,
            },
            now,
        );
    }
    let ip = ctx.ip_mut(&d);
    let ok = if echo {
        translate::rewrite_echo(ip, Side::Dst, inside)
    } else {
        translate::rewrite_ports(ip, Side::Dst, inside)
    };
    if !ok {
        return untranslated(ctx, port, d, dst, Drop::NatNoMapping);
    }
    ctx.st.counters.stage(Stage::NatIn, 1);
    Pre::Forward(Ipv4Addr::from(inside.addr))
}

/// An inside host to an outside address (RFC 4787 REQ-9, RFC 5382 REQ-8):
/// the packet goes out and comes back in as it would through an outside
/// router, so the target sees the sender's outside endpoint as its source.
/// Three owners may be involved: the target mapping's (is there one?), the
/// sender's (SNAT), the target's again (DNAT with filtering).
fn hairpin(
    ctx: &mut Ctx,
    nat: &NatShared,
    w: &mut NatWorker,
    port: u16,
    d: Desc,
    dst: u32,
    kind: Kind,
) -> Pre {
    let Kind::Ports {
        proto,
        src,
        dst: target,
        tcp_flags,
    } = kind
    else {
        // Echo to the outside address is the engine's; fragments of a
        // hairpinned datagram are not followed.
        return untranslated(ctx, port, d, dst, Drop::NatNoMapping);
    };
    if ctx.handoff & HAIRPIN_SNAT == 0 {
        if let Some(to) = ctx.elsewhere(nat.owner_inbound(proto, target)) {
            return hand_to(ctx, w, to, port, 0, d);
        }
        let exists = w.table.mapping_inside(proto, target).is_some();
        if !exists {
            return untranslated(ctx, port, d, dst, Drop::NatNoMapping);
        }
        if let Some(to) = ctx.elsewhere(nat.owner_outbound(port, proto, src, target)) {
            return hand_to(ctx, w, to, port, HAIRPIN_SNAT, d);
        }
    }
    let now = ctx.now_ms();
    let outside = match w.table.outbound(proto, src, target, tcp_flags, now) {
        Ok(e) => e,
        Err(e) => return refuse(ctx, nat, port, d, e),
    };
    if !translate::rewrite_ports(ctx.ip_mut(&d), Side::Src, outside) {
        ctx.drop(port, d, Drop::NatUnsupported);
        return Pre::Done;
    }
    ctx.st.counters.stage(Stage::NatOut, 1);
    if let Some(to) = ctx.elsewhere(nat.owner_inbound(proto, target)) {
        return hand_to(ctx, w, to, port, AS_OUTSIDE, d);
    }
    let kind = Kind::Ports {
        proto,
        src: outside,
        dst: target,
        tcp_flags,
    };
    let pre = inbound(ctx, nat, w, port, d, dst, kind);
    // Inside to inside: the filter tracks the translated packet as a flow of its own.
    w.seen = None;
    pre
}

/// An outbound packet the NAT cannot translate: dropped and counted, with
/// ICMP administratively prohibited when configured (RFC 4787 §4.5 leaves
/// the choice to the NAT).
fn refuse(ctx: &mut Ctx, nat: &NatShared, port: u16, d: Desc, e: NatError) -> Pre {
    let why = match e {
        NatError::HostLimit => Drop::NatHostLimit,
        NatError::Exhausted => Drop::NatExhausted,
        _ => Drop::NatOutNoState,
    };
    if nat.cfg.icmp_on_exhaustion && matches!(e, NatError::HostLimit | NatError::Exhausted) {
        ctx.icmp4_error(port, &d, Icmp4Error::AdminProhibited);
    }
    ctx.drop(port, d, why);
    Pre::Done
}

/// ip4-forward, for a packet from an inside port leaving by an outside
/// port: translates its source. Returns false when the packet was consumed
/// (dropped or handed to its owner). `known`: the session the stateful
/// filter found for it (no second lookup).
pub fn postrouting(
    ctx: &mut Ctx,
    nat: &NatShared,
    w: &mut NatWorker,
    port: u16,
    d: Desc,
    known: Option<u32>,
) -> bool {
    let now = ctx.now_ms();
    let kind = translate::classify(ctx.ip_of(&d));
    let (proto, inside, remote, flags, echo) = match kind {
        Kind::Ports {
            proto,
            src,
            dst,
            tcp_flags,
        } => (proto, src, dst, tcp_flags, false),
        Kind::Echo { src, dst, request } => (
            translate::PROTO_ICMP,
            src,
            dst,
            if request { ECHO_REQUEST } else { 0 },
            true,
        ),
        Kind::IcmpError {
            proto,
            inner_src,
            inner_dst,
            ..
        } => {
            // An inside host reports an error about a packet it received:
            // the quoted destination is its own endpoint.
            if let Some(to) = ctx.elsewhere(nat.owner_outbound(port, proto, inner_dst, inner_src)) {
                hand_to(ctx, w, to, port, 0, d);
                return false;
            }
            let found = w.table.find_outbound(proto, inner_dst, inner_src);
            let ok = found.is_some_and(|e| {
                translate::rewrite_icmp_error(ctx.ip_mut(&d), Side::Src, e.addr, e)
            });
            if !ok {
                ctx.drop(port, d, Drop::NatOutNoState);
                return false;
            }
            ctx.st.counters.stage(Stage::NatOut, 1);
            return true;
        }
        Kind::LaterFragment {
            proto,
            src,
            dst,
            id,
        } => {
            let follow = w.frags.follow(proto, src, dst, id, now);
            return match follow {
                Some(Follow::Owner(to)) if to != ctx.st.worker => {
                    hand_to(ctx, w, to, port, 0, d);
                    false
                }
                Some(Follow::Rewrite {
                    side: Side::Src,
                    addr,
                }) => {
                    translate::rewrite_addr(ctx.ip_mut(&d), Side::Src, addr);
                    ctx.st.counters.stage(Stage::NatOut, 1);
                    true
                }
                _ => {
                    ctx.drop(port, d, Drop::NatFragNoState);
                    false
                }
            };
        }
        Kind::Other => {
            ctx.drop(port, d, Drop::NatUnsupported);
            return false;
        }
    };
    if let Some(to) = ctx.elsewhere(nat.owner_outbound(port, proto, inside, remote)) {
        hand_to(ctx, w, to, port, 0, d);
        return false;
    }
    let outside = match known {
        Some(slot) => w.table.outbound_at(slot, proto, flags, now),
        None => match w.table.outbound(proto, inside, remote, flags, now) {
            Ok(e) => e,
            Err(e) => {
                refuse(ctx, nat, port, d, e);
                return false;
            }
        },
    };
    let ip = ctx.ip_of(&d);
    let (id, more, _) = translate::frag_info(ip);
    if more {
        w.frags.remember(
            proto,
            inside.addr,
            remote.addr,
            id,
            Follow::Rewrite {
                side: Side::Src,
                addr: outside.addr,
            },
            now,
        );
    }
    let ip = ctx.ip_mut(&d);
    let ok = if echo {
        translate::rewrite_echo(ip, Side::Src, outside)
    } else {
        translate::rewrite_ports(ip, Side::Src, outside)
    };
    if !ok {
        ctx.drop(port, d, Drop::NatUnsupported);
        return false;
    }
    ctx.st.counters.stage(Stage::NatOut, 1);
    true
}

/// The worker that owns the NAT session of an outbound packet as the
/// stateful filter parsed it (None: any worker, a static forward's, or a
/// packet the NAT does not translate). `port`: where it arrived.
pub fn ct_owner(
    nat: &NatShared,
    port: u16,
    pk: &crate::conntrack::packet::CtPacket,
) -> Option<u16> {
    use crate::conntrack::packet::L4;
    use crate::conntrack::Ep;
    let t = &pk.tuple;
    match pk.l4 {
        L4::Tcp(_) | L4::Udp => nat.owner_outbound(
            port,
            t.proto,
            Ep::new(t.src4(), t.sport),
            Ep::new(t.dst4(), t.dport),
        ),
        L4::Query { .. } => nat.owner_outbound(
            port,
            translate::PROTO_ICMP,
            Ep::new(t.src4(), t.sport),
            Ep::new(t.dst4(), t.dport),
        ),
        L4::Error { inner } => nat.owner_outbound(
            port,
            inner.proto,
            Ep::new(inner.dst4(), inner.dport),
            Ep::new(inner.src4(), inner.sport),
        ),
        _ => None,
    }
}

/// Whether a packet from `in_port` leaving by `out_port` is source-translated.
#[inline]
pub fn translates(nat: &NatShared, in_port: u16, out_port: u16) -> bool {
    nat.role(in_port) == Role::Inside && nat.role(out_port) == Role::Outside
}
