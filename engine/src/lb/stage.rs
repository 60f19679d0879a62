//! The load balancer's places in the IPv4 pipeline.
//!
//! ```text
//! ip4-input ─ dst is a VIP ──────► to_vip:  service? ─ owner? ─ connection or scheduler ─► dst := backend
//!           │                                                          (full NAT: src := snat) ─► route
//!           └ dst is a snat addr ─► to_snat: a backend's full-NAT reply ─► src := VIP, dst := client ─► route
//! ip4-forward ─ src is a dnat backend ─► dnat_reply: src := VIP
//! ```
//!
//! A connection's owner is `conntrack::port_owner(client port, workers)`, or for full NAT on a
//! port whose RSS is known the worker of the queue the NIC gives it
//! (`LbShared::owner_to_vip`). Full-NAT replies find it by the source port the owner allocated,
//! which lies in its partition; a packet that arrived elsewhere is handed over
//! (`context::handoff`).

use std::net::Ipv4Addr;

use super::conn::LbError;
use super::{LbShared, LbWorker};
use crate::conntrack::rewrite::{self as translate, Kind, Side};
use crate::conntrack::Ep;
use crate::context::counters::{Drop, Stage};
use crate::context::{untranslated, Ctx, Pre};
use crate::xsk::Desc;

/// A packet to a VIP (`dst`, host order).
pub fn to_vip(ctx: &mut Ctx, lb: &LbShared, w: &mut LbWorker, port: u16, d: Desc, dst: u32) -> Pre {
    let Kind::Ports {
        proto,
        src,
        dst: vip,
        tcp_flags,
    } = translate::classify(ctx.ip_of(&d))
    else {
        // ICMP and fragments to a VIP: no service (the VIP is no host).
        return untranslated(ctx, port, d, dst, Drop::LbNoService);
    };
    let snap = lb.services.load();
    let Some((si, svc)) = snap.find(proto, vip) else {
        return untranslated(ctx, port, d, dst, Drop::LbNoService);
    };
    let owner = lb.owner_to_vip(port, proto, src, vip, svc.cfg.mode);
    if let Some(to) = ctx.elsewhere(Some(owner)) {
        ctx.hand_to(to, port, 0, d);
        return Pre::Done;
    }
    if ctx.ip_of(&d).get(8).is_some_and(|&ttl| ttl <= 1) {
        // The error quotes the packet as the client sent it (no backend address leaks).
        ctx.icmp4_error(
            port,
            &d,
            crate::context::icmp_error::Icmp4Error::TimeExceeded,
        );
        ctx.drop(port, d, Drop::Ip4TtlExpired);
        return Pre::Done;
    }
    let hash = crate::steer::flow_hash_v4(
        Ipv4Addr::from(src.addr),
        Ipv4Addr::from(vip.addr),
        src.port,
        vip.port,
        proto,
    );
    let now = ctx.now_ms();
    let len = u64::from(d.len);
    let a = match w.to_backend(&snap, si, src, vip, tcp_flags, hash, len, now) {
        Ok(a) => a,
        Err(e) => {
            let why = match e {
                LbError::NoBackend => Drop::LbNoBackend,
                LbError::NoConn => Drop::LbNoConn,
                LbError::Exhausted => Drop::LbExhausted,
                LbError::BackendDown => Drop::LbBackendDown,
            };
            ctx.drop(port, d, why);
            return Pre::Done;
        }
    };
    let ip = ctx.ip_mut(&d);
    let mut ok = translate::rewrite_ports(ip, Side::Dst, a.backend);
    if a.source != src {
        ok &= translate::rewrite_ports(ip, Side::Src, a.source);
    }
    if !ok {
        ctx.drop(port, d, Drop::LbNoService);
        return Pre::Done;
    }
    ctx.st.counters.stage(Stage::LbIn, 1);
    Pre::Forward(Ipv4Addr::from(a.backend.addr))
}

/// A packet to a full-NAT source address: a backend's reply, or traffic
/// for the engine itself (the snat address is the engine's).
pub fn to_snat(ctx: &mut Ctx, lb: &LbShared, w: &mut LbWorker, port: u16, d: Desc) -> Pre {
    let Kind::Ports {
        proto,
        src,
        dst,
        tcp_flags,
    } = translate::classify(ctx.ip_of(&d))
    else {
        return Pre::Continue;
    };
    if let Some(to) = ctx.elsewhere(Some(lb.owner_of(dst.port))) {
        // Only a connection's reply is handed over; the owner finds out.
        ctx.hand_to(to, port, 0, d);
        return Pre::Done;
    }
    let now = ctx.now_ms();
    let len = u64::from(d.len);
    let Some((client, vip)) = w.from_backend(proto, src, dst, tcp_flags, len, now) else {
        return Pre::Continue;
    };
    let ip = ctx.ip_mut(&d);
    if !(translate::rewrite_ports(ip, Side::Src, vip)
        && translate::rewrite_ports(ip, Side::Dst, client))
    {
        ctx.drop(port, d, Drop::LbNoService);
        return Pre::Done;
    }
    ctx.st.counters.stage(Stage::LbOut, 1);
    Pre::Forward(Ipv4Addr::from(client.addr))
}

/// ip4-forward: a dnat-mode backend's reply to a client leaves from the
/// VIP. Returns false when the packet was consumed (handed to its owner).
pub fn dnat_reply(ctx: &mut Ctx, lb: &LbShared, w: &mut LbWorker, port: u16, d: Desc) -> bool {
    let Kind::Ports {
        proto,
        src,
        dst,
        tcp_flags,
    } = translate::classify(ctx.ip_of(&d))
    else {
        return true;
    };
    if !lb.services.load().is_dnat_backend(src.addr) {
        return true;
    }
    if let Some(to) = ctx.elsewhere(Some(lb.owner_of(dst.port))) {
        ctx.hand_to(to, port, 0, d);
        return false;
    }
    let now = ctx.now_ms();
    let len = u64::from(d.len);
    if let Some((_, vip)) = w.from_backend(proto, src, dst, tcp_flags, len, now) {
        translate::rewrite_ports(ctx.ip_mut(&d), Side::Src, vip);
        ctx.st.counters.stage(Stage::LbOut, 1);
    }
    true
}

/// Worker 0: sends a health-check SYN to `target` from the engine's address
/// on the port toward it (routed like any packet the engine originates).
pub fn send_probe(ctx: &mut Ctx, target: Ep, sport: u16, seq: u32) {
    let dst = Ipv4Addr::from(target.addr);
    let hop = ctx
        .routes
        .fib
        .lookup_v4(dst)
        .and_then(|id| ctx.routes.select(id, 0));
    let Some(src) = hop
        .and_then(|h| ctx.ifs.port(h.port))
        .and_then(|p| p.src_v4(dst))
    else {
        return;
    };
    let Some(mut f) = ctx.umem.alloc() else {
        ctx.st.counters.drop(Drop::NoFrame);
        return;
    };
    let buf = ctx.umem.buf_mut(&f);
    let n = buf
        .get_mut(crate::context::ETH_HDR..)
        .and_then(|b| super::health::build_syn(b, src, sport, target, seq));
    match n {
        Some(n) => {
            buf[12..14].copy_from_slice(&crate::context::ETHERTYPE_IPV4.to_be_bytes());
            f.len = (crate::context::ETH_HDR + n) as u32;
            ctx.originate4(hop.map_or(0, |h| h.port), dst, f);
        }
        None => ctx.umem.free(f),
    }
}

/// Local delivery of a TCP segment to the engine: is it a backend's answer
/// to a health probe? Then it is taken (a SYN-ACK is reset at once, closing
/// the backend's half-open connection) and true is returned.
pub fn probe_answer(ctx: &mut Ctx, lb: &LbShared, port: u16, d: Desc) -> bool {
    let ip = ctx.ip_of(&d);
    let hl = usize::from(ip.first().map_or(0, |b| b & 0x0f)) * 4;
    let (Some(a), Some(t)) = (ip.get(12..16), ip.get(hl..hl + 14)) else {
        return false;
    };
    let from = Ep::new(
        u32::from_be_bytes([a[0], a[1], a[2], a[3]]),
        u16::from_be_bytes([t[0], t[1]]),
    );
    let ack = u32::from_be_bytes([t[8], t[9], t[10], t[11]]);
    match lb
        .health
        .answer(from, u16::from_be_bytes([t[2], t[3]]), t[13], ack)
    {
        Some(syn_ack) => {
            if syn_ack {
                ctx.tcp_reset(port, &d);
            }
            ctx.consumed(port, d);
            true
        }
        None => false,
    }
}
