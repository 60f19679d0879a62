//! The client's side of `pktengine ctl --json`: one JSON document per
//! command on stdout, written as the engine's answers arrive, so a table of
//! 200,000 rows is never held whole in the client.
//!
//! ```text
//! {"schema":"pktengine/route-show","version":1,"records":[
//! {"prefix":"198.18.1.0/24",...},
//! {"prefix":"198.19.1.0/24",...}
//! ],"summary":{"routes":2}}
//! ```
//!
//! One record per line, so `grep` and `wc -l` still work on it; jq reads the
//! whole. A command that fails still ends its document: `"error":{"message":..}`
//! (and `records` only if some came before the error). A command that shows
//! nothing (`route add`, `reload`, ...) prints a result document:
//! `{"schema":"pktengine/route-add","version":1,"message":"added ..."}`.

use std::io::{self, Write};

use super::{Records, Schema, Summary, SCHEMA_PREFIX};

/// The version of result documents (schema, version, message, error).
pub const RESULT_VERSION: u32 = 1;

/// One document being written.
#[derive(Debug)]
pub struct Document {
    name: String,
    version: u32,
    /// A command that shows something: its document has `records`.
    shows: bool,
    /// The opening (up to `"records":[`) is out.
    begun: bool,
    /// No record is out yet.
    first: bool,
    summary: Option<Summary>,
}

impl Document {
    /// The document of a command that lists records of `schema`.
    pub fn show(schema: Schema) -> Document {
        Document {
            name: schema.name.to_string(),
            version: schema.version,
            shows: true,
            begun: false,
            first: true,
            summary: None,
        }
    }

    /// The document of a command that changes something (`cmd`: its name, `route-add`).
    pub fn result(cmd: &str) -> Document {
        Document {
            name: cmd.to_string(),
            version: RESULT_VERSION,
            shows: false,
            begun: false,
            first: true,
            summary: None,
        }
    }

    fn open(&mut self, out: &mut dyn Write, records: bool) -> io::Result<()> {
        if !self.begun {
            self.begun = true;
            write!(
                out,
                "{{\"schema\":\"{SCHEMA_PREFIX}{}\",\"version\":{}",
                self.name, self.version
            )?;
            if records {
                out.write_all(b",\"records\":[")?;
            }
        }
        Ok(())
    }

    /// Writes a chunk of rows (and the document's opening before the first).
    pub fn rows(&mut self, out: &mut dyn Write, r: &Records) -> io::Result<()> {
        if !self.shows || r.schema().name != self.name {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the engine answered `{}` records to a `{}` request",
                    r.schema().name,
                    self.name
                ),
            ));
        }
        self.open(out, true)?;
        r.write_rows(out, &mut self.first)?;
        out.flush()
    }

    /// Keeps the summary for the end of the document.
    pub fn summary(&mut self, s: Summary) -> io::Result<()> {
        if !self.shows || s.schema().name != self.name {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the engine answered a `{}` summary to a `{}` request",
                    s.schema().name,
                    self.name
                ),
            ));
        }
        self.summary = Some(s);
        Ok(())
    }

    /// Ends the document: the summary, the engine's `message` (if not empty),
    /// the `error` (if the command failed).
    pub fn finish(
        mut self,
        out: &mut dyn Write,
        message: &str,
        error: Option<&str>,
    ) -> io::Result<()> {
        if self.shows && !(self.begun || error.is_some()) {
            self.open(out, true)?;
        }
        let records = self.begun;
        self.open(out, false)?;
        if self.shows && records {
            out.write_all(if self.first { b"]" } else { b"\n]" })?;
        }
        if let Some(s) = &self.summary {
            out.write_all(b",\"summary\":")?;
            s.write_body(out)?;
        }
        let text = |s: &str| serde_json::to_string(s).map_err(io::Error::other);
        if !message.is_empty() {
            write!(out, ",\"message\":{}", text(message)?)?;
        }
        if let Some(e) = error {
            write!(out, ",\"error\":{{\"message\":{}}}", text(e)?)?;
        }
        out.write_all(b"}\n")?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::records::{RouteRecord, RouteSummary};

    fn route(p: &str) -> RouteRecord {
        let r = crate::l3::routes_file::parse_line(&format!("{p} via 198.19.1.2"))
            .unwrap()
            .unwrap();
        RouteRecord::new(
            r.prefix,
            r.metric,
            &crate::l3::nexthop::NextHopEntry::from_hops(r.hops).unwrap(),
        )
    }

    fn schema() -> Schema {
        <RouteRecord as crate::control::records::Record>::SCHEMA
    }

    #[test]
    fn chunks_make_one_document() {
        let mut out = Vec::new();
        let mut d = Document::show(schema());
        d.rows(
            &mut out,
            &Records::RouteShow(vec![route("198.19.1.0/24"), route("198.19.2.0/24")]),
        )
        .unwrap();
        // What is out so far is the start of the document: it streams.
        assert!(String::from_utf8_lossy(&out).starts_with("{\"schema\":\"pktengine/route-show\",\"version\":1,\"records\":[\n{\"prefix\":\"198.19.1.0/24\""));
        d.rows(&mut out, &Records::RouteShow(vec![])).unwrap();
        d.rows(&mut out, &Records::RouteShow(vec![route("198.19.3.0/24")]))
            .unwrap();
        d.summary(Summary::RouteShow(RouteSummary { routes: 3 }))
            .unwrap();
        d.finish(&mut out, "", None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 5, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schema"], "pktengine/route-show");
        assert_eq!(v["version"], 1);
        assert_eq!(v["records"].as_array().unwrap().len(), 3);
        assert_eq!(v["records"][2]["prefix"], "198.19.3.0/24");
        assert_eq!(v["summary"]["routes"], 3);
        assert!(v.get("error").is_none() && v.get("message").is_none());
        // The summary's fields in their order.
        assert!(
            text.ends_with("\n],\"summary\":{\"routes\":3}}\n"),
            "{text}"
        );
    }

    #[test]
    fn empty_failed_and_result_documents_are_valid_json() {
        let parse = |b: Vec<u8>| serde_json::from_slice::<serde_json::Value>(&b).unwrap();
        // Nothing listed: an empty array, the engine's words.
        let mut out = Vec::new();
        let mut d = Document::show(schema());
        d.summary(Summary::RouteShow(RouteSummary { routes: 0 }))
            .unwrap();
        d.finish(&mut out, "no \"routes\"", None).unwrap();
        let v = parse(out);
        assert_eq!(v["records"], serde_json::json!([]));
        assert_eq!(v["message"], "no \"routes\"");
        // Failed before any record: no `records`, an error.
        let mut out = Vec::new();
        Document::show(schema())
            .finish(&mut out, "", Some("cannot reach the engine"))
            .unwrap();
        let v = parse(out);
        assert!(v.get("records").is_none());
        assert_eq!(v["error"]["message"], "cannot reach the engine");
        // Failed in the middle: what came, and the error.
        let mut out = Vec::new();
        let mut d = Document::show(schema());
        d.rows(&mut out, &Records::RouteShow(vec![route("198.19.1.0/24")]))
            .unwrap();
        d.finish(&mut out, "", Some("the engine closed the connection"))
            .unwrap();
        let v = parse(out);
        assert_eq!(v["records"].as_array().unwrap().len(), 1);
        assert_eq!(v["error"]["message"], "the engine closed the connection");
        // A result.
        let mut out = Vec::new();
        Document::result("route-add")
            .finish(
                &mut out,
                "added 198.19.5.0/24 via 198.19.1.2 metric 0",
                None,
            )
            .unwrap();
        let v = parse(out);
        assert_eq!(
            v,
            serde_json::json!({"schema": "pktengine/route-add", "version": 1, "message": "added 198.19.5.0/24 via 198.19.1.2 metric 0"})
        );
        // Rows of another schema are refused, not mixed in.
        let mut d = Document::show(schema());
        assert!(d.rows(&mut Vec::new(), &Records::ArpShow(vec![])).is_err());
        assert!(Document::result("reload")
            .rows(&mut Vec::new(), &Records::RouteShow(vec![]))
            .is_err());
    }
}
