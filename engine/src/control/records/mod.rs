//! Typed records of the `ctl` commands that show something: one struct per
//! command's row. They are the JSON schema of `pktengine ctl --json`
//! (docs/JSON.md, which a test keeps equal to these types) and, through their
//! `Display`, the source of the text rows, so text and JSON cannot disagree.
//!
//! The control thread builds the records where it built text rows before
//! (for NAT sessions and TCP connections: from the rows the workers' dumps
//! copy, so nothing changes on a worker). A request says which shape it wants
//! ([`Format`]); with JSON the engine answers `Records` chunks (as many as a
//! text table has `Table` chunks, at most `context::dump::POLL_ROWS` records
//! each) and one `Summary` before its final `Done`. The client
//! ([`document`]) prints one JSON document per command as the chunks arrive.
//!
//! Adding a command that shows something: a record type (and its summary) in a file of this folder, one line in
//! the `schemas!` list below, one section in docs/JSON.md.
//!
//! Versioning: each schema has its own version. Adding a field keeps it;
//! removing or renaming a field, changing its type or meaning, or a new value
//! of an enumerated field that old readers cannot take bumps it.

pub mod conn;
pub mod document;
pub mod filter;
pub mod lb;
pub mod mac;
pub mod nat;
pub mod neighbor;
pub mod route;
pub mod stats;
pub mod tcp;
pub mod trace;
pub mod values;

#[cfg(test)]
mod doc_tests;

use std::io::{self, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use conn::{ConnRecord, ConnSummary};
pub use filter::{FilterRuleRecord, FilterSummary};
pub use lb::{LbServiceRecord, LbSummary};
pub use mac::{MacRecord, MacSummary};
pub use nat::{NatSessionRecord, NatSummary};
pub use neighbor::{NeighborRecord, NeighborSummary};
pub use route::{RouteRecord, RouteSummary};
pub use stats::{StatRecord, StatsSummary};
pub use tcp::{TcpConnRecord, TcpSummary};
pub use trace::{TraceSummary, TracedPacket};

/// How a client wants its answers: text for people (the default, and all an
/// older client knows), or typed records for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Text,
    Json,
}

impl Format {
    pub fn is_text(&self) -> bool {
        *self == Format::Text
    }
}

/// What a document's `schema` names, before this prefix.
pub const SCHEMA_PREFIX: &str = "pktengine/";

/// A schema: its name (a document says `pktengine/<name>`) and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    pub name: &'static str,
    pub version: u32,
}

/// A row type of a command that shows something.
pub trait Record: Serialize + DeserializeOwned + Sized + 'static {
    const SCHEMA: Schema;
    /// Rows as one message carries them.
    fn wrap(rows: Vec<Self>) -> Records;
}

/// Writes rows as lines of compact JSON, each but the very first of the
/// document preceded by a comma.
fn write_rows<T: Serialize>(rows: &[T], w: &mut dyn Write, first: &mut bool) -> io::Result<()> {
    for r in rows {
        w.write_all(if *first { b"\n" } else { b",\n" })?;
        *first = false;
        serde_json::to_writer(&mut *w, r).map_err(io::Error::other)?;
    }
    Ok(())
}

macro_rules! schemas {
    ($($variant:ident($record:ty, $summary:ty) = $name:literal version $version:literal),+ $(,)?) => {
        /// Rows of one schema, as one ctl message carries them.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "schema", content = "rows")]
        pub enum Records {
            $(#[serde(rename = $name)] $variant(Vec<$record>)),+
        }

        /// What a command says about its rows as a whole (counts, policies,
        /// the time of a reading); one per answer, after the last rows.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "schema", content = "summary")]
        pub enum Summary {
            $(#[serde(rename = $name)] $variant($summary)),+
        }

        $(impl Record for $record {
            const SCHEMA: Schema = Schema { name: $name, version: $version };
            fn wrap(rows: Vec<Self>) -> Records {
                Records::$variant(rows)
            }
        })+

        /// Every schema, in the order of docs/JSON.md.
        pub const SCHEMAS: &[Schema] = &[$(Schema { name: $name, version: $version }),+];

        impl Records {
            pub fn schema(&self) -> Schema {
                match self {
                    $(Records::$variant(_) => <$record as Record>::SCHEMA),+
                }
            }

            pub fn len(&self) -> usize {
                match self {
                    $(Records::$variant(v) => v.len()),+
                }
            }

            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// The rows as lines of compact JSON (`first`: none written yet).
            pub fn write_rows(&self, w: &mut dyn Write, first: &mut bool) -> io::Result<()> {
                match self {
                    $(Records::$variant(v) => write_rows(v, w, first)),+
                }
            }
        }

        impl Summary {
            pub fn schema(&self) -> Schema {
                match self {
                    $(Summary::$variant(_) => <$record as Record>::SCHEMA),+
                }
            }

            /// The summary's object alone (without the wire's schema tag), fields in their order.
            pub fn write_body(&self, w: &mut dyn Write) -> io::Result<()> {
                match self {
                    $(Summary::$variant(s) => serde_json::to_writer(w, s).map_err(io::Error::other)),+
                }
            }
        }

        /// One record and one summary of every schema, each with every
        /// optional field set and every list non-empty (the docs test reads
        /// the field list off them).
        #[cfg(test)]
        pub(crate) fn examples() -> Vec<(Records, Summary)> {
            vec![$((
                Records::$variant(vec![<$record as doc_tests::Example>::example()]),
                Summary::$variant(<$summary as doc_tests::Example>::example()),
            )),+]
        }
    };
}

schemas! {
    Stats(StatRecord, StatsSummary) = "stats" version 1,
    RouteShow(RouteRecord, RouteSummary) = "route-show" version 1,
    ArpShow(NeighborRecord, NeighborSummary) = "arp-show" version 1,
    MacShow(MacRecord, MacSummary) = "mac-show" version 1,
    NatShow(NatSessionRecord, NatSummary) = "nat-show" version 1,
    TcpShow(TcpConnRecord, TcpSummary) = "tcp-show" version 1,
    ConnShow(ConnRecord, ConnSummary) = "conn-show" version 1,
    LbShow(LbServiceRecord, LbSummary) = "lb-show" version 1,
    FilterShow(FilterRuleRecord, FilterSummary) = "filter-show" version 1,
    Trace(TracedPacket, TraceSummary) = "trace" version 1,
}
