use super::*;

/// A parsed sample: family name, labels, value.
pub(crate) type Parsed = (String, Vec<(String, String)>, f64);

/// Reads an exposition as Prometheus would, and checks this engine's
/// conventions on the way: `# HELP` then `# TYPE` once per family, before its
/// samples, which follow one another; counters named `..._total`; valid
/// metric and label names; escapes that read back; no series twice.
pub(crate) fn lint(text: &str) -> Result<Vec<Parsed>, String> {
    let mut out = Vec::new();
    let mut seen_family = std::collections::HashSet::new();
    let mut seen_series = std::collections::HashSet::new();
    let mut current: Option<(String, Option<String>)> = None;
    for (n, line) in text.lines().enumerate() {
        let err = |why: &str| Err(format!("line {}: {why}: {line}", n + 1));
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            if !seen_family.insert(name.to_string()) {
                return err("a second HELP for a family");
            }
            if help.is_empty() {
                return err("empty help");
            }
            current = Some((name.to_string(), None));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            match &mut current {
                Some((f, k @ None)) if f == name => *k = Some(kind.to_string()),
                _ => return err("TYPE not right after its family's HELP"),
            }
            if kind != "counter" && kind != "gauge" {
                return err("unknown type");
            }
            if (kind == "counter") != name.ends_with("_total") {
                return err("a counter's name (and only a counter's) ends in _total");
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            return err("unexpected comment or empty line");
        }
        let Some((family, Some(_))) = &current else {
            return err("a sample before its family's HELP and TYPE");
        };
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        if name != family {
            return err("a sample outside its family's block");
        }
        if !valid_name(name, true) {
            return err("invalid metric name");
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            rest = r;
            loop {
                let Some((k, r)) = rest.split_once("=\"") else {
                    return err("label without =\"");
                };
                if !valid_name(k, false) || k.starts_with("__") {
                    return err("invalid label name");
                }
                let mut v = String::new();
                let mut chars = r.char_indices();
                let end = loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '\\')) => v.push('\\'),
                            Some((_, '"')) => v.push('"'),
                            Some((_, 'n')) => v.push('\n'),
                            _ => return err("bad escape in a label value"),
                        },
                        Some((i, '"')) => break i,
                        Some((_, c)) => v.push(c),
                        None => return err("unterminated label value"),
                    }
                };
                labels.push((k.to_string(), v));
                rest = &r[end + 1..];
                if let Some(r) = rest.strip_prefix(',') {
                    rest = r;
                } else if let Some(r) = rest.strip_prefix('}') {
                    rest = r;
                    break;
                } else {
                    return err("expected , or } after a label");
                }
            }
        }
        let Some(value) = rest.strip_prefix(' ') else {
            return err("no space before the value");
        };
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => match v.parse() {
                Ok(x) => x,
                Err(_) => return err("value is not a number"),
            },
        };
        let mut key = labels.clone();
        key.sort();
        if !seen_series.insert(format!("{name}{key:?}")) {
            return err("a series twice");
        }
        out.push((name.to_string(), labels, value));
    }
    Ok(out)
}

fn valid_name(s: &str, metric: bool) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic()
            || c == '_'
            || (metric && c == ':')
            || (!first && c.is_ascii_digit())
    };
    let mut cs = s.chars();
    cs.next().is_some_and(|c| ok(c, true)) && cs.all(|c| ok(c, false))
}

/// The value of the sample of `name` with exactly these labels.
pub(crate) fn value(parsed: &[Parsed], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    parsed
        .iter()
        .find(|(n, l, _)| {
            n == name
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(a, b)| a == k && b == v))
        })
        .map(|p| p.2)
}

#[test]
fn help_and_type_once_per_family_samples_grouped() {
    let mut m = Metrics::default();
    m.add(&PORT_RX_PACKETS, ["wan".into()], 7u64);
    m.add(&NAT_SESSIONS, ["0".into()], 3u64);
    // Another sample of the first family, added later: rendered in its block.
    m.add(&PORT_RX_PACKETS, ["lan".into()], 5u64);
    m.add(&NEIGHBOR_UNSOLICITED, [], 0u64);
    let text = render(&m);
    assert_eq!(
        text,
        "# HELP pktengine_port_rx_packets_total Frames the engine received on the port (all its queues and workers).\n\
         # TYPE pktengine_port_rx_packets_total counter\n\
         pktengine_port_rx_packets_total{port=\"wan\"} 7\n\
         pktengine_port_rx_packets_total{port=\"lan\"} 5\n\
         # HELP pktengine_nat_sessions NAT sessions the worker holds.\n\
         # TYPE pktengine_nat_sessions gauge\n\
         pktengine_nat_sessions{worker=\"0\"} 3\n\
         # HELP pktengine_neighbor_unsolicited_ignored_total ARP replies and neighbor advertisements nobody asked for, ignored (accept_unsolicited_arp off).\n\
         # TYPE pktengine_neighbor_unsolicited_ignored_total counter\n\
         pktengine_neighbor_unsolicited_ignored_total 0\n"
    );
    let parsed = lint(&text).unwrap();
    assert_eq!(parsed.len(), 4);
    assert_eq!(
        text.matches("# HELP pktengine_port_rx_packets_total")
            .count(),
        1
    );
    assert_eq!(
        text.matches("# TYPE pktengine_port_rx_packets_total")
            .count(),
        1
    );
}

#[test]
fn every_family_follows_the_naming_conventions() {
    let mut names = std::collections::HashSet::new();
    for d in FAMILIES {
        assert!(names.insert(d.name), "{} twice", d.name);
        assert!(valid_name(d.name, true), "{}", d.name);
        assert!(
            d.name.starts_with("pktengine_") || d.name.starts_with("process_"),
            "{}",
            d.name
        );
        match d.kind {
            Kind::Counter => assert!(
                d.name.ends_with("_total"),
                "counter {} must end in _total",
                d.name
            ),
            Kind::Gauge => assert!(
                !d.name.ends_with("_total"),
                "gauge {} must not end in _total",
                d.name
            ),
        }
        // Units are spelled out, base units only.
        for bad in ["_ms", "_ns", "_kb", "_mb", "_percent"] {
            assert!(
                !d.name.contains(bad),
                "{}: use seconds, bytes, ratios",
                d.name
            );
        }
        let mut labels = std::collections::HashSet::new();
        for l in d.labels {
            assert!(
                valid_name(l, false) && !l.starts_with("__"),
                "{}: label {l}",
                d.name
            );
            assert!(labels.insert(l), "{}: label {l} twice", d.name);
        }
        assert!(
            !d.help.is_empty() && !d.help.contains('\n') && !d.help.contains('|'),
            "{}: help",
            d.name
        );
    }
    for field in [
        "rx_dropped",
        "rx_invalid_descs",
        "rx_ring_full",
        "rx_fill_ring_empty_descs",
        "tx_invalid_descs",
        "tx_ring_empty_descs",
    ] {
        assert!(xsk_family(field).is_some(), "{field}");
    }
    let mut fields: Vec<&str> = crate::xsk::XdpStatistics::default()
        .fields()
        .iter()
        .map(|f| f.0)
        .collect();
    fields.retain(|f| xsk_family(f).is_none());
    assert!(
        fields.is_empty(),
        "XDP_STATISTICS fields without a family: {fields:?}"
    );
}

#[test]
fn label_values_and_help_are_escaped() {
    let mut m = Metrics::default();
    let evil = "a\"b\\c\nd é";
    m.add(
        &LB_BACKEND_UP,
        [evil.to_string().into(), "198.19.2.11:80".into()],
        1u64,
    );
    let text = render(&m);
    assert!(
        text.contains(
            "pktengine_lb_backend_up{service=\"a\\\"b\\\\c\\nd é\",backend=\"198.19.2.11:80\"} 1\n"
        ),
        "{text}"
    );
    let parsed = lint(&text).unwrap();
    assert_eq!(
        parsed[0].1[0],
        ("service".to_string(), evil.to_string()),
        "reads back to the original"
    );
    let mut help = String::new();
    escape_help(&mut help, "a\\b\nc \"q\"");
    assert_eq!(help, "a\\\\b\\nc \"q\"");
}

#[test]
fn values_are_written_as_prometheus_reads_them() {
    let mut s = String::new();
    for v in [
        Value::Int(u64::MAX),
        Value::Float(0.25),
        Value::Float(12.0),
        Value::Float(f64::NAN),
        Value::Float(f64::INFINITY),
        Value::Float(f64::NEG_INFINITY),
        Value::Float(1e-7),
    ] {
        write_value(&mut s, v);
        s.push(' ');
    }
    assert_eq!(s, "18446744073709551615 0.25 12 NaN +Inf -Inf 0.0000001 ");
}

#[test]
fn a_sheet_fills_what_it_was_asked_for() {
    let fill = |s: &mut Sheet| {
        s.ctl("port lan", "rx_packets", 5);
        s.metric(&PORT_RX_PACKETS, ["lan".into()], 5u64);
    };
    let mut ctl = Sheet::for_ctl();
    fill(&mut ctl);
    assert!(!ctl.wants_metrics());
    let (rows, m) = ctl.into_parts();
    assert_eq!((rows.len(), m.len()), (1, 0));
    let mut met = Sheet::for_metrics();
    fill(&mut met);
    let (rows, m) = met.into_parts();
    assert_eq!((rows.len(), m.len()), (0, 1));
    assert_eq!(
        m.get("pktengine_port_rx_packets_total").unwrap().samples[0].value,
        Value::Int(5)
    );
}

const METRICS_MD: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/METRICS.md"));

#[test]
fn docs_list_every_family() {
    let section = METRICS_MD
        .split_once("\n## Families\n")
        .expect("docs/METRICS.md has no \"## Families\" section")
        .1;
    let doc: Vec<&str> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect();
    let ours = markdown_table();
    let ours: Vec<&str> = ours.lines().collect();
    let fix = format!(
        "engine/src/control/metrics.rs FAMILIES is the source of truth (names, types, labels, \
         HELP text): fix it there if the code changed, then replace the table under \"## Families\" \
         in docs/METRICS.md with:\n\n{}",
        markdown_table()
    );
    for (i, (d, o)) in doc.iter().zip(&ours).enumerate() {
        assert_eq!(d, o, "docs/METRICS.md row {i} differs.\n{fix}");
    }
    assert_eq!(
        doc.len(),
        ours.len(),
        "docs/METRICS.md has {} table lines, FAMILIES {}.\n{fix}",
        doc.len(),
        ours.len()
    );
}

#[test]
fn refuses_non_loopback() {
    assert!(bind("198.18.0.1:0".parse().unwrap()).is_err());
    assert!(bind("127.0.0.1:0".parse().unwrap()).is_ok());
}
