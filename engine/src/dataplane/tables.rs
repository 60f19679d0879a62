//! Everything the workers share with the control thread: the frame
//! context's tables ([`Shared`]: ports, routes, neighbors, capture, clock,
//! handoff inboxes) and each feature's shared part (the filter's rules, the
//! bridge domains, the NAT, the load balancer's services, the TCP endpoint's
//! applications, the impairment stage's settings). The pipeline hands each
//! feature its own part; the context never sees them.
//!
//! `Tables` dereferences to [`Shared`], so `tables.routes` and
//! `tables.ifs` read as before the split.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::context::tables::{Interfaces, Routes, Shared};
use crate::neighbor::NeighborMap;

#[derive(Debug)]
pub struct Tables {
    pub shared: Shared,
    /// The packet filter (empty: accept everything).
    pub filter: ArcSwap<crate::filter::Filter>,
    /// Bridge domains and their MAC tables (switch ports).
    pub l2: crate::l2::Switch,
    /// The NAT's shared part (None: no NAT configured).
    pub nat: Option<Arc<crate::nat::NatShared>>,
    /// The stateful filter's connection tracking (None: stateless).
    pub ct: Option<Arc<crate::filter::conn::CtShared>>,
    /// The load balancer's services (None: none configured).
    pub lb: Option<Arc<crate::lb::LbShared>>,
    /// The TCP endpoint's applications (None: none).
    pub tcp: Option<Arc<crate::tcp::endpoint::TcpShared>>,
    /// The test impairment stage (None: off, the usual case).
    pub impair: Option<crate::impair::ImpairConfig>,
}

impl std::ops::Deref for Tables {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl std::ops::DerefMut for Tables {
    fn deref_mut(&mut self) -> &mut Shared {
        &mut self.shared
    }
}

impl Tables {
    pub fn new(ifs: Interfaces, routes: Routes, neigh: NeighborMap) -> Tables {
        Tables {
            shared: Shared::new(ifs, routes, neigh),
            filter: ArcSwap::from_pointee(crate::filter::Filter::default()),
            l2: crate::l2::Switch::default(),
            nat: None,
            ct: None,
            lb: None,
            tcp: None,
            impair: None,
        }
    }

    /// The same tables with handoff inboxes for `workers` workers; `wakers`:
    /// each with an eventfd (real workers; tests drive workers by hand).
    pub fn with_handoff(mut self, workers: u16, wakers: bool) -> std::io::Result<Tables> {
        self.shared.handoff = Some(Arc::new(crate::context::handoff::Handoff::new(
            usize::from(workers.max(1)),
            wakers,
        )?));
        Ok(self)
    }

    /// The same tables with a load balancer.
    pub fn with_lb(mut self, lb: crate::lb::LbShared) -> Tables {
        self.lb = Some(Arc::new(lb));
        self
    }

    /// The same tables with the impairment stage on.
    pub fn with_impair(mut self, impair: crate::impair::ImpairConfig) -> Tables {
        self.impair = Some(impair);
        self
    }

    /// The same tables with connection tracking for the filter.
    pub fn with_ct(mut self, ct: crate::filter::conn::CtShared) -> Tables {
        self.ct = Some(Arc::new(ct));
        self
    }

    /// The same tables with a NAT.
    pub fn with_nat(mut self, nat: crate::nat::NatShared) -> Tables {
        self.nat = Some(Arc::new(nat));
        self
    }

    /// The same tables with these bridge domains.
    pub fn with_l2(mut self, l2: crate::l2::Switch) -> Tables {
        self.l2 = l2;
        self
    }
}
