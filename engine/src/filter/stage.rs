//! The filter's place in the pipeline: the router's `forward` hook calls
//! [`forward`] for every packet it routes, once the egress port is known.

use super::rule::Action;
use super::Filter;
use crate::context::counters::Drop;
use crate::context::icmp_error::{Icmp4Error, Icmp6Error};
use crate::context::Ctx;
use crate::xsk::Desc;

/// Applies the packet filter to a packet about to be forwarded out of
/// `out_port`. Returns false when the packet was dropped (and answered,
/// for `reject`); the caller stops. Free when no rule is configured.
#[inline]
pub fn forward(ctx: &mut Ctx, filter: &Filter, in_port: u16, out_port: u16, d: Desc) -> bool {
    if filter.is_pass_all() {
        return true;
    }
    let f = super::fields(ctx.umem.data(&d), in_port, out_port);
    let v6 = f.family == 6;
    match filter.decide(&f) {
        Action::Accept => true,
        Action::Drop => {
            ctx.drop(in_port, d, Drop::FilterDrop);
            false
        }
        Action::RejectTcpReset if f.proto == 6 => {
            ctx.tcp_reset(in_port, &d);
            ctx.drop(in_port, d, Drop::FilterReject);
            false
        }
        Action::RejectIcmp | Action::RejectTcpReset => {
            if v6 {
                ctx.icmp6_error(in_port, &d, Icmp6Error::AdminProhibited);
            } else {
                ctx.icmp4_error(in_port, &d, Icmp4Error::AdminProhibited);
            }
            ctx.drop(in_port, d, Drop::FilterReject);
            false
        }
    }
}
