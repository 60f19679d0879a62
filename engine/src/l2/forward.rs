//! The switch stage: 802.1Q ingress (VLAN admission), learning, the
//! forwarding decision, flooding, and the egress tag.
//!
//! ```text
//! ingress ─► VLAN (access: PVID, priority tag ok; trunk: allowed tag) ─► learn (VLAN, src)
//!         ─► dst: 01-80-C2-00-00-0x  ─► drop (802.1D link-local, never relayed)
//!                 group / unknown    ─► flood to the VLAN's members but the ingress
//!                 known, same port   ─► drop (filtered)
//!                 known              ─► that member
//! egress ─► access: untagged; trunk: tagged (tag pushed or its VID rewritten)
//!           BVI member (the bridge's routed interface): untagged, to the router
//! ```
//!
//! Flooding copies the frame into fresh UMEM frames for all egress members
//! but the last, which gets the original: one copy per extra port, built
//! in its egress form in the same pass (no copy-then-shift).
use super::bridge::{Bridge, PortVlan, SwitchPort};
use crate::context::counters::{Drop, Stage};
use crate::context::events::Event;
use crate::context::Ctx;
use crate::mac_table::{Learn, MacKey, MacTable};
use crate::wire::ethernet::{push_vlan_tag, VlanTag};
use crate::wire::Mac;
use crate::xsk::{Desc, Umem};

const TPID_8021Q: u16 = 0x8100;
const TAG: usize = 4;

/// What the stage needs about the ingress port, looked up once per burst.
#[derive(Debug)]
pub struct Ingress<'a> {
    pub sp: SwitchPort,
    pub bridge: &'a Bridge,
    pub table: &'a MacTable,
}

/// A frame's VLAN as received: the VLAN it is switched in and whether it
/// arrived with an 802.1Q tag (at offset 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Classified {
    vlan: u16,
    tagged: bool,
    dst: Mac,
    src: Mac,
}

/// Parses and admits a frame: Err is the drop reason.
#[inline]
fn classify(f: &[u8], sp: SwitchPort, bridge: &Bridge) -> Result<Classified, Drop> {
    if f.len() < 14 {
        return Err(Drop::EthTruncated);
    }
    let dst = [f[0], f[1], f[2], f[3], f[4], f[5]];
    let src = [f[6], f[7], f[8], f[9], f[10], f[11]];
    let tagged = u16::from_be_bytes([f[12], f[13]]) == TPID_8021Q;
    let vid = if tagged {
        if f.len() < 18 {
            return Err(Drop::EthTruncated);
        }
        u16::from_be_bytes([f[14], f[15]]) & 0x0fff
    } else {
        0
    };
    let vlan = match sp.vlan {
        // Untagged and priority-tagged frames belong to the PVID; a tag of
        // the port's own VLAN is admitted too (802.1Q admit-all).
        PortVlan::Access(pvid) if !tagged || vid == 0 || vid == pvid => pvid,
        PortVlan::Access(_) => return Err(Drop::L2VlanNotAllowed),
        PortVlan::Trunk if !tagged || vid == 0 => return Err(Drop::L2UntaggedOnTrunk),
        PortVlan::Trunk if bridge.vlan_members(vid) & (1 << sp.member) == 0 => {
            return Err(Drop::L2VlanNotAllowed)
        }
        PortVlan::Trunk => vid,
    };
    if src[0] & 1 == 1 {
        return Err(Drop::L2BadSource);
    }
    Ok(Classified {
        vlan,
        tagged,
        dst,
        src,
    })
}

/// Switches one frame received on switch port `port`.
#[inline]
pub fn input(ctx: &mut Ctx, port: u16, d: Desc, ing: &Ingress) {
    ctx.st.counters.stage(Stage::L2Input, 1);
    let c = match classify(ctx.umem.data(&d), ing.sp, ing.bridge) {
        Ok(c) => c,
        Err(why) => return ctx.drop(port, d, why),
    };
    let member = ing.sp.member;
    if c.src != [0; 6] {
        match ing
            .table
            .learn(MacKey::new(c.vlan, c.src), member, ctx.now_ms())
        {
            Learn::Known | Learn::Raced | Learn::Static => {}
            Learn::Learned => ctx.st.counters.stage(Stage::L2Learned, 1),
            Learn::Moved { from } => {
                ctx.st.counters.stage(Stage::L2Moved, 1);
                let from = ing.bridge.port(from).unwrap_or(u16::MAX);
                ctx.st.events.send(Event::MacMoved {
                    bridge: ing.sp.bridge,
                    key: MacKey::new(c.vlan, c.src),
                    from,
                    to: port,
                });
            }
            Learn::Full => ctx.st.counters.stage(Stage::L2TableFull, 1),
        }
    }
    if c.dst[..5] == [0x01, 0x80, 0xc2, 0x00, 0x00] && c.dst[5] <= 0x0f {
        // STP, LACP, LLDP, pause...: link-local to the port, never relayed.
        return ctx.drop(port, d, Drop::L2ReservedGroup);
    }
    let domain = ing.bridge.vlan_members(c.vlan);
    if c.dst[0] & 1 == 0 {
        if let Some(to) = ing.table.lookup(MacKey::new(c.vlan, c.dst)) {
            if to == member {
                return ctx.drop(port, d, Drop::L2Filtered);
            }
            if domain & (1 << to) != 0 {
                return forward(ctx, port, d, ing.bridge, to, c);
            }
        }
    }
    flood(ctx, port, d, ing.bridge, domain & !(1 << member), c);
}

/// Sends the frame itself to one member, in that member's form.
#[inline]
fn forward(ctx: &mut Ctx, in_port: u16, mut d: Desc, bridge: &Bridge, to: u8, c: Classified) {
    let Some(out) = bridge.port(to) else {
        return ctx.drop(in_port, d, Drop::L2Filtered);
    };
    let tag_out = bridge.tagged & (1 << to) != 0;
    if retag(ctx.umem, &mut d, c.tagged, tag_out, c.vlan) {
        deliver(ctx, bridge, to, out, d);
    } else {
        ctx.drop(in_port, d, Drop::NoFrame);
    }
}

/// Floods to every member in `mask`: copies for all but the last.
fn flood(ctx: &mut Ctx, in_port: u16, d: Desc, bridge: &Bridge, mask: u32, c: Classified) {
    if mask == 0 {
        return ctx.drop(in_port, d, Drop::L2Filtered);
    }
    ctx.st.counters.stage(Stage::L2Flood, 1);
    let last = 31 - mask.leading_zeros() as u8;
    let mut rest = mask & !(1 << last);
    while rest != 0 {
        let m = rest.trailing_zeros() as u8;
        rest &= rest - 1;
        let Some(out) = bridge.port(m) else { continue };
        let tag_out = bridge.tagged & (1 << m) != 0;
        let Some(mut copy) = ctx.umem.alloc() else {
            ctx.st.counters.drop(Drop::NoFrame);
            continue;
        };
        match ctx
            .umem
            .pair_mut(&d, &copy)
            .and_then(|(src, dst)| copy_as(src, dst, c.tagged, tag_out, c.vlan))
        {
            Some(n) => {
                copy.len = n as u32;
                deliver(ctx, bridge, m, out, copy);
            }
            None => ctx.drop(in_port, copy, Drop::NoFrame),
        }
    }
    forward(ctx, in_port, d, bridge, last, c);
}

/// Hands a frame in its egress form to member `m` (engine port `out`): out
/// of its port, or to the router when the member is the bridge's BVI.
#[inline]
fn deliver(ctx: &mut Ctx, bridge: &Bridge, m: u8, out: u16, d: Desc) {
    if bridge.bvi & (1 << m) != 0 {
        ctx.to_router(out, d);
    } else {
        ctx.send(out, d);
    }
}

/// Writes `src` (tagged at 12 or not) into `dst` in the egress form; returns its length.
#[inline]
fn copy_as(src: &[u8], dst: &mut [u8], tag_in: bool, tag_out: bool, vlan: u16) -> Option<usize> {
    let n = match (tag_in, tag_out) {
        (false, true) => src.len() + TAG,
        (true, false) => src.len().checked_sub(TAG)?,
        _ => src.len(),
    };
    if n > dst.len() || src.len() < 14 + if tag_in { TAG } else { 0 } {
        return None;
    }
    dst[..12].copy_from_slice(&src[..12]);
    match (tag_in, tag_out) {
        (false, false) | (true, true) => dst[12..n].copy_from_slice(&src[12..]),
        (false, true) => {
            dst[12..14].copy_from_slice(&TPID_8021Q.to_be_bytes());
            dst[14..16].copy_from_slice(&vlan.to_be_bytes());
            dst[16..n].copy_from_slice(&src[12..]);
        }
        (true, false) => dst[12..n].copy_from_slice(&src[16..]),
    }
    if tag_in && tag_out {
        set_vid(&mut dst[14..16], vlan);
    }
    Some(n)
}

/// Rewrites the VID of a TCI, keeping priority and DEI (a priority-tagged
/// frame leaves a trunk with its VLAN's id).
#[inline]
fn set_vid(tci: &mut [u8], vlan: u16) {
    if let [hi, lo] = tci {
        let v = (u16::from_be_bytes([*hi, *lo]) & 0xf000) | (vlan & 0x0fff);
        [*hi, *lo] = v.to_be_bytes();
    }
}

/// Puts a held frame in its egress form in place: pushes a tag (into the
/// headroom in front of the frame when there is room, moving only the 12
/// address bytes; else shifting the frame), pops one (moving the
/// addresses forward), or rewrites the VID. False if it cannot.
#[inline]
pub fn retag(umem: &mut Umem, d: &mut Desc, tag_in: bool, tag_out: bool, vlan: u16) -> bool {
    match (tag_in, tag_out) {
        (false, false) => true,
        (true, true) => match umem.data_mut(d).get_mut(14..16) {
            Some(tci) => {
                set_vid(tci, vlan);
                true
            }
            None => false,
        },
        (false, true) => {
            if umem.room_before(d) >= TAG as u64 {
                let len = d.len as usize;
                let (frame, off) = umem.frame_mut(d);
                if off < TAG || off + len > frame.len() || len < 12 {
                    return false;
                }
                frame.copy_within(off..off + 12, off - TAG);
                frame[off + 8..off + 10].copy_from_slice(&TPID_8021Q.to_be_bytes());
                frame[off + 10..off + 12].copy_from_slice(&vlan.to_be_bytes());
                d.addr -= TAG as u64;
                d.len += TAG as u32;
                true
            } else {
                let len = d.len as usize;
                match push_vlan_tag(umem.buf_mut(d), len, VlanTag::dot1q(vlan)) {
                    Ok(n) => {
                        d.len = n as u32;
                        true
                    }
                    Err(_) => false,
                }
            }
        }
        (true, false) => {
            let len = d.len as usize;
            let (frame, off) = umem.frame_mut(d);
            if len < 14 + TAG || off + len > frame.len() {
                return false;
            }
            frame.copy_within(off..off + 12, off + TAG);
            d.addr += TAG as u64;
            d.len -= TAG as u32;
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_as_pushes_pops_and_rewrites_tags() {
        let untagged: Vec<u8> = (0..12u8).chain([0x08, 0x00]).chain([0xaa; 20]).collect();
        let mut out = [0u8; 64];
        let n = copy_as(&untagged, &mut out, false, true, 10).unwrap();
        assert_eq!(n, untagged.len() + 4);
        assert_eq!(&out[..12], &untagged[..12]);
        assert_eq!(&out[12..16], &[0x81, 0x00, 0x00, 10]);
        assert_eq!(&out[16..n], &untagged[12..]);
        let tagged = out[..n].to_vec();
        let n2 = copy_as(&tagged, &mut out, true, false, 10).unwrap();
        assert_eq!(&out[..n2], &untagged[..]);
        // A priority tag (VID 0, PCP 5) leaves a trunk with the VLAN's id, PCP kept.
        let mut prio = tagged.clone();
        prio[14..16].copy_from_slice(&[0xa0, 0x00]);
        let n3 = copy_as(&prio, &mut out, true, true, 20).unwrap();
        assert_eq!(&out[12..16], &[0x81, 0x00, 0xa0, 20]);
        assert_eq!(&out[16..n3], &untagged[12..]);
        // Too small a destination, or a tagged frame cut short: no copy.
        assert_eq!(copy_as(&untagged, &mut [0u8; 20], false, true, 1), None);
        assert_eq!(copy_as(&tagged[..15], &mut out, true, false, 1), None);
    }
}
