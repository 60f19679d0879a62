//! The `pktengine ctl` protocol and socket: a Unix stream socket, mode 0600
//! (0660 with `ctl_group`), served by the front thread ([`super::front`]).
//!
//! Framing: every message is a 4-byte big-endian length followed by that many
//! bytes of JSON. A client sends one [`Request`] and reads [`Response`]s until
//! one of them is final (`Done` or `Error`); a capture streams `Frame`
//! responses before its `Done`. JSON keeps the protocol readable in a trace
//! and lets `--watch` compute rates from structured counters; the length
//! prefix lets binary capture data and large tables travel without escaping
//! problems. Nothing here runs on a worker.

use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::records::{Format, Records, Summary};

/// The largest message a client accepts (an answer: a full routing table fits).
pub const MAX_MESSAGE: usize = 64 << 20;

/// The largest request the engine reads. Requests are one command with a few
/// words (a route, a filter rule); a client that announces more is answered
/// with an error before the engine reads or allocates anything for its body.
pub const MAX_REQUEST: usize = 64 << 10;

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// Counters of every port and worker.
    Stats,
    RouteShow,
    /// A route in `ip route` syntax.
    RouteAdd {
        route: String,
    },
    RouteDel {
        route: String,
    },
    MacShow,
    MacFlush,
    ArpShow,
    NatShow,
    NatFlush,
    /// The engine's TCP connections.
    TcpShow,
    /// Tracked connections (the stateful filter's and the NAT's), those
    /// matching `filter`: words among an address, `port N`, a protocol.
    ConnShow {
        #[serde(default)]
        filter: String,
    },
    LbShow,
    /// Change a service's pool: `action` is up, down, add or del.
    LbBackend {
        service: String,
        backend: String,
        action: String,
        weight: Option<u32>,
    },
    /// Copy the next `count` frames seen on `port` (that `filter` accepts) back to the client.
    Capture {
        port: String,
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<CaptureFilter>,
    },
    /// Turn the per-packet trace on or off (`set`), and show the last traced packets.
    Trace {
        set: Option<bool>,
    },
    /// Insert a filter rule at position `at` (default: the end).
    FilterAdd {
        rule: String,
        at: Option<usize>,
    },
    /// Delete the filter rule at `index` (as `filter show` numbers them).
    FilterDel {
        index: usize,
    },
    FilterShow,
    /// Re-read the configuration file (as SIGHUP does).
    Reload,
}

/// A request as it travels: the command, and the shape the client wants the
/// answer in. Without `format` (every client before `--json`) it is text, and
/// a text request is written exactly as a bare [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(flatten)]
    pub request: Request,
    #[serde(default, skip_serializing_if = "Format::is_text")]
    pub format: Format,
}

/// A capture's filter: the expression as the operator wrote it (for the log
/// and the answer) and the classic BPF program the client had libpcap compile
/// it to, in `cbpf::encode`'s compact text (a program of the largest size
/// fits a request). The engine checks the program; it never parses `expr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureFilter {
    pub expr: String,
    pub program: String,
}

/// One row of counters, e.g. a port's `rx_packets` or a drop reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// Where it was counted: `port lan`, `worker 0`, `stage ip4-lookup`.
    pub scope: String,
    pub name: String,
    pub value: u64,
}

/// What the engine answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Response {
    /// Counters with the engine's monotonic time of the reading, in ns.
    Stats {
        time_ns: u64,
        counters: Vec<Counter>,
    },
    /// Lines of a table (routes, MACs, neighbours, NAT mappings). A long
    /// table comes as several `Table` messages in a row with the same header
    /// (the workers' dumps: at most `context::dump::POLL_ROWS` rows each, so
    /// a message stays far under [`MAX_MESSAGE`]); a client shows them as one
    /// table, its header once.
    Table { header: String, rows: Vec<String> },
    /// Typed rows of a command that shows something, for a request that asked
    /// for JSON; chunked as `Table` is (at most `context::dump::POLL_ROWS`
    /// rows each). The client writes them into one document.
    Records { records: Records },
    /// What a JSON answer says about its rows as a whole; one, after the last `Records`.
    Summary { summary: Summary },
    /// A captured frame: its port, when it was seen (ns since the Unix epoch), and its bytes.
    Frame {
        port: String,
        time_ns: u64,
        data: Vec<u8>,
    },
    /// The request was carried out; `message` says what happened, if anything.
    Done { message: String },
    /// The request was refused.
    Error { message: String },
}

impl Response {
    /// Whether this response ends the exchange.
    pub fn is_final(&self) -> bool {
        matches!(self, Response::Done { .. } | Response::Error { .. })
    }
}

/// Writes one length-prefixed JSON message.
pub fn write_message<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if body.len() > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "ctl message too large",
        ));
    }
    let len = u32::try_from(body.len()).map_err(io::Error::other)?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(&body)?;
    w.flush()
}

/// Reads one length-prefixed JSON message of at most [`MAX_MESSAGE`] bytes
/// (the client side: answers). `Ok(None)` at a clean end of stream.
pub fn read_message<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> io::Result<Option<T>> {
    read_message_max(r, MAX_MESSAGE)
}

/// Reads one length-prefixed JSON message of at most `max` bytes. The length
/// is checked before anything is read of the body, and the body buffer grows
/// with the bytes that arrive, so a header that announces much and sends
/// little costs no memory.
pub fn read_message_max<T: for<'de> Deserialize<'de>>(
    r: &mut impl Read,
    max: usize,
) -> io::Result<Option<T>> {
    let Some(body) = read_body(r, max)? else {
        return Ok(None);
    };
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads one [`Response`] (the client side). A chunk of records is read
/// straight into its types: serde reads an internally tagged enum such as
/// `Response` into a generic tree first, which for 4,096 records costs
/// megabytes and most of the client's time.
pub fn read_response(r: &mut impl Read) -> io::Result<Option<Response>> {
    #[derive(Deserialize)]
    struct RecordsMessage {
        records: Records,
    }
    let Some(body) = read_body(r, MAX_MESSAGE)? else {
        return Ok(None);
    };
    let parsed = if body.starts_with(br#"{"kind":"records","#) {
        serde_json::from_slice::<RecordsMessage>(&body)
            .map(|m| Response::Records { records: m.records })
    } else {
        serde_json::from_slice(&body)
    };
    parsed
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The body of one length-prefixed message of at most `max` bytes.
fn read_body(r: &mut impl Read, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("ctl message of {len} bytes is larger than {max}"),
        ));
    }
    let mut body = Vec::with_capacity(len.min(64 << 10));
    r.take(len as u64).read_to_end(&mut body)?;
    if body.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("ctl message truncated: {} of {len} bytes", body.len()),
        ));
    }
    Ok(Some(body))
}

/// Who may use the ctl socket: root, the engine's own user, and the members
/// of the group named by `ctl_group`, checked with SO_PEERCRED on every
/// connection (on top of the socket file's mode, which the kernel checks at
/// connect). Members are resolved from the group database when the engine
/// starts: a change of membership takes effect at the next start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// The group, by name and id.
    pub group: Option<(String, u32)>,
    /// Users listed as members of the group.
    pub members: Vec<u32>,
    /// The engine's own user (set by the thread that serves the socket,
    /// after the switch to it; root until then).
    pub own_uid: u32,
}

impl Access {
    /// Resolves `ctl_group` (none: root and the engine's user only).
    pub fn resolve(group: Option<&str>) -> Result<Access, String> {
        let Some(name) = group else {
            return Ok(Access::default());
        };
        let g = nix::unistd::Group::from_name(name)
            .map_err(|e| format!("ctl_group `{name}`: {e}"))?
            .ok_or_else(|| format!("ctl_group `{name}`: no such group"))?;
        let mut members = Vec::new();
        for m in &g.mem {
            if let Ok(Some(u)) = nix::unistd::User::from_name(m) {
                members.push(u.uid.as_raw());
            }
        }
        Ok(Access {
            group: Some((name.to_string(), g.gid.as_raw())),
            members,
            own_uid: 0,
        })
    }

    /// Whether a peer with these credentials may talk to the engine.
    pub fn allows(&self, uid: u32, gid: u32) -> Result<(), String> {
        if uid == 0 || uid == self.own_uid {
            return Ok(());
        }
        match &self.group {
            Some((_, g)) if gid == *g || self.members.contains(&uid) => Ok(()),
            Some((name, _)) => Err(format!(
                "uid {uid} (gid {gid}) is not root and not in ctl_group `{name}`"
            )),
            None => Err(format!(
                "uid {uid} is not root (no ctl_group is configured)"
            )),
        }
    }

    /// Checks the peer of a connected Unix socket.
    pub fn check(&self, fd: std::os::fd::BorrowedFd<'_>) -> Result<(), String> {
        let cred = nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::PeerCredentials)
            .map_err(|e| format!("SO_PEERCRED: {e}"))?;
        self.allows(cred.uid(), cred.gid())
    }
}

/// The bound ctl socket; dropping it removes the file.
#[derive(Debug)]
pub struct CtlListener {
    listener: Option<UnixListener>,
    path: PathBuf,
}

impl CtlListener {
    /// Binds the socket at `path`. It is created under a umask of 0177, so it
    /// is never even briefly accessible to anyone but its owner; with a
    /// `group` it is then given to that group with mode 0660. A stale socket
    /// file (nobody listening) is replaced; a live one is an error, so two
    /// engines never share a control socket. A missing parent directory is
    /// created with mode 0700 (0750 and the group's, with a group).
    pub fn bind(path: &Path, group: Option<u32>) -> io::Result<CtlListener> {
        use nix::sys::stat::{umask, Mode};
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
                if let Some(g) = group {
                    std::os::unix::fs::chown(dir, None, Some(g))?;
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))?;
                }
            }
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running engine", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        // The umask is the process's: set-up runs on one thread, and no other creates files meanwhile.
        let old = umask(Mode::from_bits_truncate(0o177));
        let bound = UnixListener::bind(path);
        umask(old);
        let listener = bound?;
        if let Some(g) = group {
            std::os::unix::fs::chown(path, None, Some(g))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
        }
        listener.set_nonblocking(true)?;
        Ok(CtlListener {
            listener: Some(listener),
            path: path.to_path_buf(),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The listening socket, for the thread that serves it (the file stays
    /// this value's: it is removed when this is dropped).
    pub fn take(&mut self) -> Option<UnixListener> {
        self.listener.take()
    }
}

impl Drop for CtlListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Client side: sends `req` to the engine at `path` and calls `each` for every
/// response until the final one, which is returned.
pub fn request(path: &Path, req: &Request, each: impl FnMut(&Response)) -> io::Result<Response> {
    request_as(path, req, Format::Text, each)
}

/// [`request`], asking for answers in `format`.
pub fn request_as(
    path: &Path,
    req: &Request,
    format: Format,
    mut each: impl FnMut(&Response),
) -> io::Result<Response> {
    let mut s = UnixStream::connect(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot reach the engine at {}: {e}", path.display()),
        )
    })?;
    if let Err(e) = write_message(
        &mut s,
        &Envelope {
            request: req.clone(),
            format,
        },
    ) {
        // Refused at once (busy, not permitted): the engine's answer is already waiting.
        return match read_response(&mut s) {
            Ok(Some(r)) if r.is_final() => Ok(r),
            _ => Err(e),
        };
    }
    loop {
        match read_response(&mut s)? {
            Some(r) if r.is_final() => return Ok(r),
            Some(r) => each(&r),
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the engine closed the connection",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn temp_socket(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "pktengine-ctl-test-{}-{tag}/ctl.sock",
            std::process::id()
        ))
    }

    #[test]
    fn socket_born_0600_dir_0700_and_removed_on_drop() {
        let path = temp_socket("mode");
        let listener = CtlListener::bind(&path, None).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        // A second engine cannot take a live socket.
        assert_eq!(
            CtlListener::bind(&path, None).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        drop(listener);
        assert!(!path.exists());
        // A stale file is replaced.
        std::fs::write(&path, b"").unwrap();
        let l2 = CtlListener::bind(&path, None).unwrap();
        drop(l2);
        let _ = std::fs::remove_dir(path.parent().unwrap());
    }

    #[test]
    fn with_a_group_the_socket_is_0660_and_the_groups() {
        let path = temp_socket("group");
        // gid 65534 (nogroup) exists on Debian; any gid works for chown as root.
        let listener = CtlListener::bind(&path, Some(65534)).unwrap();
        let m = std::fs::metadata(&path).unwrap();
        assert_eq!(m.mode() & 0o777, 0o660);
        assert_eq!(m.gid(), 65534);
        let d = std::fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!((d.mode() & 0o777, d.gid()), (0o750, 65534));
        drop(listener);
        let _ = std::fs::remove_dir(path.parent().unwrap());
    }

    #[test]
    fn access_root_self_and_group_only() {
        let none = Access::default();
        assert!(none.allows(0, 0).is_ok());
        let me = Access {
            own_uid: 999,
            ..Access::default()
        };
        assert!(me.allows(999, 1).is_ok());
        assert!(none
            .allows(65534, 65534)
            .unwrap_err()
            .contains("no ctl_group"));
        let g = Access {
            group: Some(("ops".into(), 4242)),
            members: vec![1001],
            own_uid: 0,
        };
        assert!(g.allows(65534, 4242).is_ok(), "primary group");
        assert!(g.allows(1001, 100).is_ok(), "listed member");
        let e = g.allows(65534, 65534).unwrap_err();
        assert!(e.contains("not in ctl_group `ops`"), "{e}");
        assert!(Access::resolve(Some("no-such-group-pktengine"))
            .unwrap_err()
            .contains("no such group"));
        let root = Access::resolve(Some("root")).unwrap();
        assert_eq!(root.group, Some(("root".to_string(), 0)));
    }

    #[test]
    fn requests_are_capped_before_their_body_is_read() {
        // A header announcing more than MAX_REQUEST: refused at once (no body follows).
        let mut buf = Vec::new();
        buf.extend_from_slice(&(MAX_REQUEST as u32 + 1).to_be_bytes());
        let e = read_message_max::<Request>(&mut buf.as_slice(), MAX_REQUEST).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("larger than 65536"), "{e}");
        // Announcing 60 MiB and sending 10 bytes: truncated, and nothing near 60 MiB is allocated
        // (the read would otherwise have needed the whole buffer first).
        let mut buf = Vec::new();
        buf.extend_from_slice(&(60u32 << 20).to_be_bytes());
        buf.extend_from_slice(b"{\"cmd\":\"st");
        let e = read_message::<Request>(&mut buf.as_slice()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("10 of 62914560"), "{e}");
        // A request just under the cap still reads.
        let mut buf = Vec::new();
        write_message(&mut buf, &Request::Stats).unwrap();
        assert_eq!(
            read_message_max::<Request>(&mut buf.as_slice(), MAX_REQUEST).unwrap(),
            Some(Request::Stats)
        );
    }

    #[test]
    fn oversized_and_garbage_messages_refused() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&(MAX_MESSAGE as u32 + 1).to_be_bytes());
        assert_eq!(
            read_message::<Request>(&mut buf.as_slice())
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidData
        );
        let mut buf = Vec::new();
        buf.extend_from_slice(&3u32.to_be_bytes());
        buf.extend_from_slice(b"{x}");
        assert_eq!(
            read_message::<Request>(&mut buf.as_slice())
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidData
        );
        assert!(read_message::<Request>(&mut [].as_slice())
            .unwrap()
            .is_none());
    }

    #[test]
    fn requests_serialize_readably() {
        let json = serde_json::to_string(&Request::RouteAdd {
            route: "198.18.5.0/24 via 198.18.1.2".into(),
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"cmd":"route-add","route":"198.18.5.0/24 via 198.18.1.2"}"#
        );
    }

    /// Text requests are written as before `--json` existed (an older engine
    /// reads them), and a request without `format` (an older client) is text.
    #[test]
    fn the_format_travels_with_the_request_and_defaults_to_text() {
        let reqs = [
            Request::Stats,
            Request::RouteShow,
            Request::RouteAdd {
                route: "198.18.5.0/24 via 198.18.1.2".into(),
            },
            Request::Trace { set: Some(true) },
            Request::Trace { set: None },
            Request::FilterAdd {
                rule: "oif wan drop".into(),
                at: Some(2),
            },
            Request::LbBackend {
                service: "web".into(),
                backend: "198.19.2.11:80".into(),
                action: "add".into(),
                weight: Some(3),
            },
        ];
        for r in reqs {
            let bare = serde_json::to_string(&r).unwrap();
            let text = Envelope {
                request: r.clone(),
                format: Format::Text,
            };
            assert_eq!(serde_json::to_string(&text).unwrap(), bare);
            assert_eq!(serde_json::from_str::<Envelope>(&bare).unwrap(), text);
            let json = Envelope {
                request: r.clone(),
                format: Format::Json,
            };
            let wire = serde_json::to_string(&json).unwrap();
            assert!(wire.ends_with(r#","format":"json"}"#), "{wire}");
            assert_eq!(serde_json::from_str::<Envelope>(&wire).unwrap(), json);
            // An engine that predates the format reads the request and ignores it.
            assert_eq!(serde_json::from_str::<Request>(&wire).unwrap(), r);
        }
        assert!(serde_json::from_str::<Envelope>(r#"{"cmd":"stats","format":"yaml"}"#).is_err());
    }

    /// Records are read straight into their types, and every other answer as before.
    #[test]
    fn responses_read_the_same_either_way() {
        use crate::control::records::{RouteRecord, RouteSummary, Summary};
        let r = crate::l3::routes_file::parse_line("198.19.5.0/24 via 198.18.1.2 metric 3")
            .unwrap()
            .unwrap();
        let rec = RouteRecord::new(
            r.prefix,
            r.metric,
            &crate::l3::nexthop::NextHopEntry::from_hops(r.hops).unwrap(),
        );
        for resp in [
            Response::Records {
                records: Records::RouteShow(vec![rec.clone(), rec]),
            },
            Response::Records {
                records: Records::RouteShow(vec![]),
            },
            Response::Summary {
                summary: Summary::RouteShow(RouteSummary { routes: 2 }),
            },
            Response::Table {
                header: "routes".into(),
                rows: vec!["a".into()],
            },
            Response::Done {
                message: "ok".into(),
            },
        ] {
            let mut buf = Vec::new();
            write_message(&mut buf, &resp).unwrap();
            assert_eq!(
                read_response(&mut buf.as_slice()).unwrap(),
                Some(resp.clone())
            );
            assert_eq!(
                read_message::<Response>(&mut buf.as_slice()).unwrap(),
                Some(resp)
            );
        }
        let mut buf = Vec::new();
        write_message(&mut buf, &serde_json::json!({"kind": "records", "records": {"schema": "route-show", "rows": [{"prefix": 1}]}})).unwrap();
        assert_eq!(
            read_response(&mut buf.as_slice()).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        assert!(read_response(&mut [].as_slice()).unwrap().is_none());
    }

    #[test]
    fn capture_filter_is_optional_and_the_largest_fits_a_request() {
        // Without a filter the request reads and writes as before.
        let old = r#"{"cmd":"capture","port":"lan","count":5}"#;
        let req: Request = serde_json::from_str(old).unwrap();
        assert_eq!(
            req,
            Request::Capture {
                port: "lan".into(),
                count: 5,
                filter: None
            }
        );
        assert_eq!(serde_json::to_string(&req).unwrap(), old);
        // 4,096 instructions and the longest expression the client sends.
        let program =
            crate::cbpf::encode::encode(&vec![
                crate::cbpf::Insn::new(0xffff, 255, 255, u32::MAX);
                crate::cbpf::MAX_INSNS
            ]);
        let expr = "\u{1}".repeat(crate::control::capture::MAX_EXPR);
        let req = Request::Capture {
            port: "a-long-port-name".into(),
            count: u32::MAX,
            filter: Some(CaptureFilter { expr, program }),
        };
        let mut buf = Vec::new();
        write_message(&mut buf, &req).unwrap();
        assert!(buf.len() - 4 <= MAX_REQUEST, "{} bytes", buf.len() - 4);
        assert_eq!(
            read_message_max::<Request>(&mut buf.as_slice(), MAX_REQUEST).unwrap(),
            Some(req)
        );
    }
}
