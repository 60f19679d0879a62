//! `[[udp]]`: the router's UDP services on the engine's addresses (echo),
//! as written and validated.

use crate::validate::{Checker, Spanned};
use serde::Deserialize;

/// `[[udp]]`: a UDP service on the engine's addresses (only `echo`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUdp {
    pub app: Spanned<String>,
    pub port: Spanned<u16>,
}

/// Validates the `[[udp]]` services.
pub fn validate_udp(ck: &mut Checker<'_>, raw: Vec<Spanned<RawUdp>>) -> Vec<u16> {
    let mut out: Vec<u16> = Vec::new();
    for r in raw {
        let r = r.into_inner();
        let port = *r.port.get_ref();
        if port == 0 || out.contains(&port) {
            ck.at(
                r.port.span(),
                format!("[[udp]] port {port}: 0 or used twice"),
            );
        }
        if r.app.get_ref() != "echo" {
            ck.at(
                r.app.span(),
                format!("[[udp]] app `{}`: expected echo", r.app.get_ref()),
            );
        }
        out.push(port);
    }
    out
}
