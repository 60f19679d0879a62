//! docs/JSON.md and the record types stay equal: for every schema, the
//! fields the doc lists (with their JSON types) are the fields a record and a
//! summary serialize to, its version is the code's, and its example parses
//! into the types and back unchanged.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use super::*;
use crate::context::counters::Drop;
use crate::context::events::{TraceEnd, TraceRecord};
use crate::control::ctl::Counter;

/// A value with every optional field set and every list non-empty, so its
/// JSON shows every field the type has.
pub(crate) trait Example {
    fn example() -> Self;
}

impl Example for StatRecord {
    fn example() -> Self {
        StatRecord {
            port: Some("lan".into()),
            worker: Some(0),
            reason: Some("ip4-no-route".into()),
            ..Self::from_counter(&Counter {
                scope: "drop ip4-forward".into(),
                name: "ip4-no-route".into(),
                value: 5,
            })
        }
    }
}

impl Example for StatsSummary {
    fn example() -> Self {
        StatsSummary {
            uptime_ns: 5_000_000_000,
            time_unix_ms: 1_764_000_000_000,
        }
    }
}

impl Example for RouteRecord {
    fn example() -> Self {
        let r =
            crate::l3::routes_file::parse_line("198.19.100.0/24 via 198.19.1.2 dev wan metric 10")
                .unwrap()
                .unwrap();
        RouteRecord::new(
            r.prefix,
            r.metric,
            &crate::l3::nexthop::NextHopEntry::from_hops(r.hops).unwrap(),
        )
    }
}

impl Example for RouteSummary {
    fn example() -> Self {
        RouteSummary { routes: 1 }
    }
}

impl Example for NeighborRecord {
    fn example() -> Self {
        NeighborRecord {
            address: "198.19.1.2".parse().unwrap(),
            port: "wan".into(),
            mac: Some([2, 0, 0, 0, 0, 2]),
            state: crate::neighbor::NeighState::Reachable,
            age_ms: 1250,
        }
    }
}

impl Example for NeighborSummary {
    fn example() -> Self {
        NeighborSummary { neighbors: 1 }
    }
}

impl Example for MacRecord {
    fn example() -> Self {
        MacRecord {
            bridge: "br0".into(),
            mac: [2, 0, 0, 0, 0, 1],
            vlan: 10,
            port: "p1".into(),
            is_static: false,
            age_ms: Some(1250),
        }
    }
}

impl Example for MacSummary {
    fn example() -> Self {
        MacSummary {
            entries: 1,
            bridges: 1,
        }
    }
}

impl Example for NatSessionRecord {
    fn example() -> Self {
        use crate::conntrack::Ep;
        let s = crate::conntrack::table::SessionInfo {
            proto: crate::conntrack::rewrite::PROTO_TCP,
            inside: Ep::new(0xc612_0102, 40000),
            outside: Ep::new(0xc613_0101, 40000),
            remote: Ep::new(0xc613_0102, 80),
            state: "established",
            age_ms: 1250,
            idle_ms: 100,
            expires_ms: 7_439_900,
            pkts_out: 3,
            pkts_in: 2,
            fixed: false,
        };
        NatSessionRecord::new(0, &s)
    }
}

impl Example for NatSummary {
    fn example() -> Self {
        NatSummary {
            sessions_listed: 1,
            mappings: 1,
            silent_workers: vec![1],
        }
    }
}

impl Example for TcpConnRecord {
    fn example() -> Self {
        TcpConnRecord::new(
            0,
            &crate::tcp::endpoint::ConnInfo {
                local: "198.18.1.1:7".parse().unwrap(),
                remote: "198.18.1.2:40000".parse().unwrap(),
                state: crate::tcp::tcb::State::Established,
                bytes_in: 1000,
                bytes_out: 1000,
                age_ms: 1250,
                srtt_us: Some(85),
                rto_ms: 200,
                cwnd: 14600,
                send_queue: 0,
            },
        )
    }
}

impl Example for TcpSummary {
    fn example() -> Self {
        TcpSummary {
            connections_listed: 1,
            connections: 1,
            silent_workers: vec![1],
        }
    }
}

impl Example for LbServiceRecord {
    fn example() -> Self {
        LbServiceRecord {
            name: "web".into(),
            vip: "198.19.1.100:80"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
            proto: Cow::Borrowed("tcp"),
            scheduler: crate::lb::Scheduler::Weighted,
            mode: crate::lb::Mode::FullNat,
            snat: Some("198.19.2.1".parse().unwrap()),
            backends_up: 1,
            backends: vec![lb::LbBackendRecord {
                endpoint: "198.19.2.11:8000"
                    .parse::<std::net::SocketAddr>()
                    .unwrap()
                    .into(),
                weight: 1,
                state: Cow::Borrowed("up"),
                health_check_failed: false,
                connections: 4,
                active: 1,
                bytes: 5000,
            }],
            announced: Some(true),
        }
    }
}

impl Example for LbSummary {
    fn example() -> Self {
        LbSummary { services: 1 }
    }
}

impl Example for ConnRecord {
    fn example() -> Self {
        let mut r = ConnRecord::new(
            0,
            &crate::conntrack::ConnInfo {
                orig: crate::conntrack::packet::Tuple {
                    family: 4,
                    proto: 6,
                    src: 0xc612_0102,
                    dst: 0xc613_0102,
                    sport: 40000,
                    dport: 80,
                },
                reply: crate::conntrack::packet::Tuple {
                    family: 4,
                    proto: 6,
                    src: 0xc613_0102,
                    dst: 0xc612_0102,
                    sport: 80,
                    dport: 40000,
                },
                tcp: "ESTABLISHED",
                status: crate::conntrack::track::SEEN_REPLY | crate::conntrack::track::ASSURED,
                expires_ms: 431_998_500,
                pkts_orig: 5,
                pkts_reply: 4,
                nat: false,
            },
        );
        // Every optional field set (a real row has ports or an identifier, not both).
        r.original.icmp_id = Some(7);
        r.reply.icmp_id = Some(7);
        r
    }
}

impl Example for ConnSummary {
    fn example() -> Self {
        ConnSummary {
            connections_listed: 1,
            connections: 2,
            silent_workers: vec![1],
        }
    }
}

impl Example for FilterRuleRecord {
    fn example() -> Self {
        FilterRuleRecord {
            index: 0,
            rule: "oif wan tcp dport 25 drop".into(),
            action: crate::filter::rule::Action::Drop,
            hits: 3,
        }
    }
}

impl Example for FilterSummary {
    fn example() -> Self {
        use crate::filter::rule::Action;
        FilterSummary {
            rules: 1,
            default_policy: Action::Accept,
            port_policies: vec![filter::PortPolicy {
                port: "lan".into(),
                policy: Action::Accept,
            }],
            default_hits: 12,
            conntrack: Some(filter::CtStateHits {
                new: 3,
                established: 120,
                related: 0,
                invalid: 1,
                tracked: 2,
            }),
        }
    }
}

impl Example for TracedPacket {
    fn example() -> Self {
        let mut head = [0u8; 64];
        head[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        let t = TraceRecord {
            worker: 0,
            port: 0,
            len: 6,
            time_ns: 5_000_000,
            end: TraceEnd::Tx(1),
            head,
        };
        let mut r = TracedPacket::new(&t, |i| ["lan", "wan"][i].to_string());
        let d = Drop::Ip4NoRoute;
        (r.drop_stage, r.drop_reason) = (
            Some(Cow::Borrowed(d.stage())),
            Some(Cow::Borrowed(d.name())),
        );
        r
    }
}

impl Example for TraceSummary {
    fn example() -> Self {
        TraceSummary {
            enabled: true,
            packets: 1,
        }
    }
}

/// A JSON value's type as the doc's `type` column names it.
fn type_word(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every leaf path of `v` (`records[].nexthops[].gateway`) with its type.
fn paths(prefix: &str, v: &Value, out: &mut BTreeMap<String, &'static str>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                paths(&format!("{prefix}.{k}"), v, out);
            }
        }
        Value::Array(a) => {
            let first = a.first().unwrap_or_else(|| {
                panic!("{prefix}: the example's list is empty: give it an element")
            });
            if first.is_object() {
                paths(&format!("{prefix}[]"), first, out);
            } else {
                out.insert(prefix.to_string(), "array");
            }
        }
        leaf => {
            out.insert(prefix.to_string(), type_word(leaf));
        }
    }
}

/// The fields a schema's documents have: `records[].x` and `summary.y`.
fn code_fields(records: &Records, summary: &Summary) -> BTreeMap<String, &'static str> {
    let mut out = BTreeMap::new();
    let r = serde_json::to_value(records).unwrap();
    paths(".records", &r["rows"], &mut out);
    let s = serde_json::to_value(summary).unwrap();
    paths(".summary", &s["summary"], &mut out);
    out.into_iter()
        .map(|(k, v)| (k[1..].to_string(), v))
        .collect()
}

/// One section of docs/JSON.md: a schema's name, version, field table and example.
#[derive(Debug, Default)]
struct Section {
    schema: String,
    version: u32,
    /// Path → the type column.
    fields: BTreeMap<String, String>,
    /// Path → the meaning column.
    meanings: BTreeMap<String, String>,
    example: String,
}

/// Reads the sections that name a schema (`Schema \`pktengine/x\`, version N.`).
fn doc_sections(doc: &str) -> Vec<Section> {
    let mut out = Vec::new();
    for part in doc.split("\n## ").skip(1) {
        let Some(line) = part.lines().find(|l| l.starts_with("Schema `pktengine/")) else {
            continue;
        };
        let mut s = Section::default();
        let rest = &line["Schema `pktengine/".len()..];
        let (name, rest) = rest
            .split_once('`')
            .unwrap_or_else(|| panic!("bad schema line: {line}"));
        s.schema = name.to_string();
        s.version = rest
            .trim_start_matches(", version ")
            .trim_end_matches('.')
            .split_whitespace()
            .next()
            .and_then(|v| v.trim_end_matches(['.', ',', ':']).parse().ok())
            .unwrap_or_else(|| panic!("bad schema line: {line}"));
        for l in part.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let path = cells[0].trim_matches('`').to_string();
            assert!(
                cells.len() >= 3,
                "{name}: a field row needs field, type and meaning: {l}"
            );
            s.fields.insert(path.clone(), cells[1].to_string());
            s.meanings.insert(path, cells[2].to_string());
        }
        let ex = part
            .split("```json\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{name}: no ```json example"));
        s.example = ex.split("\n```").next().unwrap().to_string();
        out.push(s);
    }
    out
}

fn doc() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/JSON.md");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every schema has its section, with the code's version and exactly the
/// code's fields, each of the JSON type the code writes; no section names a
/// schema the code does not have.
#[test]
fn docs_list_every_field_of_every_schema() {
    let sections = doc_sections(&doc());
    let mut problems = Vec::new();
    for (records, summary) in examples() {
        let schema = records.schema();
        let Some(sec) = sections.iter().find(|s| s.schema == schema.name) else {
            problems.push(format!(
                "docs/JSON.md has no section for `pktengine/{}`",
                schema.name
            ));
            continue;
        };
        if sec.version != schema.version {
            problems.push(format!(
                "{}: the doc says version {}, the code {}",
                schema.name, sec.version, schema.version
            ));
        }
        let code = code_fields(&records, &summary);
        for (path, ty) in &code {
            match sec.fields.get(path) {
                None => problems.push(format!(
                    "{}: `{path}` ({ty}) is not in the doc",
                    schema.name
                )),
                Some(doc_ty) if !doc_ty.contains(ty) => problems.push(format!(
                    "{}: `{path}` is a {ty} in the code, `{doc_ty}` in the doc",
                    schema.name
                )),
                Some(_) => {}
            }
        }
        for path in sec.fields.keys().filter(|p| !code.contains_key(*p)) {
            problems.push(format!(
                "{}: the doc lists `{path}`, the code has no such field",
                schema.name
            ));
        }
    }
    for s in &sections {
        if !SCHEMAS.iter().any(|c| c.name == s.schema) {
            problems.push(format!(
                "docs/JSON.md has a section for `pktengine/{}`, which the code does not make",
                s.schema
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/JSON.md and control::records differ:\n  {}",
        problems.join("\n  ")
    );
}

/// Each section's example is a document of its schema whose records and
/// summary read into the types and write back the same.
#[test]
fn docs_examples_are_documents_the_types_read() {
    for sec in doc_sections(&doc()) {
        let v: Value = serde_json::from_str(&sec.example).unwrap_or_else(|e| {
            panic!(
                "{}: the example is not JSON: {e}\n{}",
                sec.schema, sec.example
            )
        });
        assert_eq!(
            v["schema"],
            format!("{SCHEMA_PREFIX}{}", sec.schema),
            "{}",
            sec.schema
        );
        assert_eq!(v["version"], sec.version, "{}", sec.schema);
        let wire = serde_json::json!({"schema": sec.schema, "rows": v["records"]});
        let records: Records = serde_json::from_value(wire.clone())
            .unwrap_or_else(|e| panic!("{}: records: {e}", sec.schema));
        assert!(
            !records.is_empty(),
            "{}: the example lists no record",
            sec.schema
        );
        assert_eq!(
            serde_json::to_value(&records).unwrap(),
            wire,
            "{}: the records do not write back the same",
            sec.schema
        );
        let wire = serde_json::json!({"schema": sec.schema, "summary": v["summary"]});
        let summary: Summary = serde_json::from_value(wire.clone())
            .unwrap_or_else(|e| panic!("{}: summary: {e}", sec.schema));
        assert_eq!(
            serde_json::to_value(&summary).unwrap(),
            wire,
            "{}: the summary does not write back the same",
            sec.schema
        );
    }
}

/// Fields whose values are names from a fixed list: the doc names each one.
#[test]
fn docs_name_every_value_of_enumerated_fields() {
    let sections = doc_sections(&doc());
    let meaning = |schema: &str, path: &str| -> String {
        let s = sections
            .iter()
            .find(|s| s.schema == schema)
            .unwrap_or_else(|| panic!("no section {schema}"));
        s.meanings
            .get(path)
            .cloned()
            .unwrap_or_else(|| panic!("{schema}: no `{path}`"))
    };
    let check = |schema: &str, path: &str, names: &[&str]| {
        let m = meaning(schema, path);
        for n in names {
            assert!(
                m.contains(&format!("`{n}`")),
                "{schema}: `{path}`'s meaning does not name `{n}`: {m}"
            );
        }
    };
    fn names<T>(all: &[(T, &'static str)]) -> Vec<&'static str> {
        all.iter().map(|(_, n)| *n).collect()
    }
    check(
        "arp-show",
        "records[].state",
        &names(values::neigh_state::ALL),
    );
    check(
        "tcp-show",
        "records[].state",
        &names(values::tcp_state::ALL),
    );
    check(
        "filter-show",
        "records[].action",
        &names(values::action::ALL),
    );
    check(
        "filter-show",
        "summary.default_policy",
        &names(values::action::ALL),
    );
    check(
        "lb-show",
        "records[].scheduler",
        &names(values::scheduler::ALL),
    );
    check("lb-show", "records[].mode", &names(values::lb_mode::ALL));
    check("stats", "records[].group", stats::GROUPS);
    check(
        "trace",
        "records[].outcome",
        &["tx", "drop", "wait-neighbor", "local"],
    );
    check(
        "nat-show",
        "records[].state",
        &["syn-seen", "established", "fin-seen", "closing", "reset"],
    );
    check(
        "conn-show",
        "records[].state",
        &crate::conntrack::track::TcpState::ALL.map(|s| s.name()),
    );
    check(
        "conn-show",
        "records[].proto",
        &["tcp", "udp", "icmp", "icmpv6"],
    );
}

/// The checks see a field added to the code and not to the doc (and the
/// reverse): their comparison, run on a doc with one field missing and one too many.
#[test]
fn a_field_missing_from_the_doc_is_caught() {
    let doc = doc();
    let (records, summary) = examples()
        .into_iter()
        .find(|(r, _)| r.schema().name == "route-show")
        .unwrap();
    let code = code_fields(&records, &summary);
    let sec = doc_sections(&doc)
        .into_iter()
        .find(|s| s.schema == "route-show")
        .unwrap();
    assert!(
        code.keys().eq(sec.fields.keys()),
        "{code:?} vs {:?}",
        sec.fields
    );
    let cut = doc.replacen("| `records[].metric` |", "| `records[].weight` |", 1);
    let sec = doc_sections(&cut)
        .into_iter()
        .find(|s| s.schema == "route-show")
        .unwrap();
    assert!(!code.contains_key("records[].weight") && !sec.fields.contains_key("records[].metric"));
}
