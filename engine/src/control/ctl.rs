//! The `pktengine ctl` socket: a Unix stream socket, mode 0600, owned by the
//! control thread.
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
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The largest message a client accepts (an answer: a full routing table fits).
pub const MAX_MESSAGE: usize = 64 << 20;

/// The largest request the engine reads. Requests are one command with a few
/// words (a route, a filter rule); a client that announces more is answered
/// with an error before the engine reads or allocates anything for its body.
pub const MAX_REQUEST: usize = 64 << 10;

/// Answers one request through the response sink it is given.
pub type Handler<'a> = dyn FnMut(Request, &mut dyn FnMut(Response) -> io::Result<()>) -> io::Result<()> + 'a;

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// Counters of every port and worker.
    Stats,
    RouteShow,
    /// A route in `ip route` syntax.
    RouteAdd { route: String },
    RouteDel { route: String },
    MacShow,
    MacFlush,
    ArpShow,
    NatShow,
    NatFlush,
    /// The engine's TCP connections.
    TcpShow,
    LbShow,
    /// Change a service's pool: `action` is up, down, add or del.
    LbBackend { service: String, backend: String, action: String, weight: Option<u32> },
    /// Copy the next `count` frames seen on `port` back to the client.
    Capture { port: String, count: u32 },
    /// Turn the per-packet trace on or off (`set`), and show the last traced packets.
    Trace { set: Option<bool> },
    /// Insert a filter rule at position `at` (default: the end).
    FilterAdd { rule: String, at: Option<usize> },
    /// Delete the filter rule at `index` (as `filter show` numbers them).
    FilterDel { index: usize },
    FilterShow,
    /// Re-read the configuration file (as SIGHUP does).
    Reload,
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
    Stats { time_ns: u64, counters: Vec<Counter> },
    /// Lines of a table (routes, MACs, neighbours, NAT mappings). A long
    /// table comes as several `Table` messages in a row with the same header
    /// (the workers' dumps: at most `context::dump::POLL_ROWS` rows each, so
    /// a message stays far under [`MAX_MESSAGE`]); a client shows them as one
    /// table, its header once.
    Table { header: String, rows: Vec<String> },
    /// A captured frame: its port, when it was seen (ns since the Unix epoch), and its bytes.
    Frame { port: String, time_ns: u64, data: Vec<u8> },
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
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "ctl message too large"));
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
pub fn read_message_max<T: for<'de> Deserialize<'de>>(r: &mut impl Read, max: usize) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("ctl message of {len} bytes is larger than {max}")));
    }
    let mut body = Vec::with_capacity(len.min(64 << 10));
    r.take(len as u64).read_to_end(&mut body)?;
    if body.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("ctl message truncated: {} of {len} bytes", body.len()),
        ));
    }
    serde_json::from_slice(&body).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The listening side, owned by the control thread.
#[derive(Debug)]
pub struct CtlListener {
    listener: UnixListener,
    path: PathBuf,
}

impl CtlListener {
    /// Binds the socket at `path` with mode 0600. A stale socket file (nobody
    /// listening) is replaced; a live one is an error, so two engines never
    /// share a control socket. A missing parent directory is created with mode 0700.
    pub fn bind(path: &Path) -> io::Result<CtlListener> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
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
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(CtlListener { listener, path: path.to_path_buf() })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts a waiting client, if any (never blocks).
    pub fn accept(&self) -> io::Result<Option<UnixStream>> {
        match self.listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)?;
                // A stuck client must not hold the control thread for long.
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                s.set_write_timeout(Some(Duration::from_secs(2)))?;
                Ok(Some(s))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Serves one request on `stream`: reads it, lets `handle` answer through
    /// the sink it is given, and ends with an error response if `handle` did
    /// not send a final one.
    pub fn serve(
        stream: &mut UnixStream,
        handle: &mut Handler<'_>,
    ) -> io::Result<()> {
        let req: Request = match read_message_max(stream, MAX_REQUEST) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) => {
                let _ = write_message(stream, &Response::Error { message: format!("bad request: {e}") });
                return Err(e);
            }
        };
        let mut finished = false;
        let mut sink = |resp: Response| -> io::Result<()> {
            finished |= resp.is_final();
            write_message(stream, &resp)
        };
        handle(req, &mut sink)?;
        if !finished {
            write_message(stream, &Response::Error { message: "the engine sent no final answer".into() })?;
        }
        Ok(())
    }
}

impl Drop for CtlListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Client side: sends `req` to the engine at `path` and calls `each` for every
/// response until the final one, which is returned.
pub fn request(path: &Path, req: &Request, mut each: impl FnMut(&Response)) -> io::Result<Response> {
    let mut s = UnixStream::connect(path).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot reach the engine at {}: {e}", path.display()))
    })?;
    write_message(&mut s, req)?;
    loop {
        match read_message::<Response>(&mut s)? {
            Some(r) if r.is_final() => return Ok(r),
            Some(r) => each(&r),
            None => {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the engine closed the connection"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn temp_socket(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("pktengine-ctl-test-{}-{tag}/ctl.sock", std::process::id()))
    }

    #[test]
    fn round_trip_and_mode_0600() {
        let path = temp_socket("rt");
        let listener = CtlListener::bind(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777, 0o700);

        let p = path.clone();
        let client = std::thread::spawn(move || {
            let mut frames = Vec::new();
            let last = request(&p, &Request::Capture { port: "lan".into(), count: 2 }, |r| frames.push(r.clone())).unwrap();
            (frames, last)
        });
        let mut stream = loop {
            if let Some(s) = listener.accept().unwrap() {
                break s;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        CtlListener::serve(&mut stream, &mut |req, out| {
            assert_eq!(req, Request::Capture { port: "lan".into(), count: 2 });
            for i in 0..2u8 {
                out(Response::Frame { port: "lan".into(), time_ns: u64::from(i), data: vec![i; 60] })?;
            }
            out(Response::Done { message: "2 frames".into() })
        })
        .unwrap();
        let (frames, last) = client.join().unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1], Response::Frame { port: "lan".into(), time_ns: 1, data: vec![1; 60] });
        assert_eq!(last, Response::Done { message: "2 frames".into() });

        // A second engine cannot take a live socket.
        assert_eq!(CtlListener::bind(&path).unwrap_err().kind(), io::ErrorKind::AddrInUse);
        drop(listener);
        assert!(!path.exists());
        // A stale file is replaced.
        std::fs::write(&path, b"").unwrap();
        let l2 = CtlListener::bind(&path).unwrap();
        drop(l2);
        let _ = std::fs::remove_dir(path.parent().unwrap());
    }

    #[test]
    fn handler_without_final_answer_yields_error() {
        let path = temp_socket("nofinal");
        let listener = CtlListener::bind(&path).unwrap();
        let p = path.clone();
        let client = std::thread::spawn(move || request(&p, &Request::Stats, |_| {}).unwrap());
        let mut stream = loop {
            if let Some(s) = listener.accept().unwrap() {
                break s;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        CtlListener::serve(&mut stream, &mut |_, _| Ok(())).unwrap();
        assert!(matches!(client.join().unwrap(), Response::Error { .. }));
        drop(listener);
        let _ = std::fs::remove_dir(path.parent().unwrap());
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
        assert_eq!(read_message_max::<Request>(&mut buf.as_slice(), MAX_REQUEST).unwrap(), Some(Request::Stats));
    }

    #[test]
    fn the_server_answers_an_oversized_request_with_an_error() {
        let (mut client, mut server) = UnixStream::pair().unwrap();
        client.write_all(&(1u32 << 30).to_be_bytes()).unwrap();
        let mut called = false;
        let r = CtlListener::serve(&mut server, &mut |_, _| {
            called = true;
            Ok(())
        });
        assert!(r.is_err() && !called);
        drop(server);
        match read_message::<Response>(&mut client).unwrap() {
            Some(Response::Error { message }) => assert!(message.contains("larger than 65536"), "{message}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oversized_and_garbage_messages_refused() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&(MAX_MESSAGE as u32 + 1).to_be_bytes());
        assert_eq!(read_message::<Request>(&mut buf.as_slice()).unwrap_err().kind(), io::ErrorKind::InvalidData);
        let mut buf = Vec::new();
        buf.extend_from_slice(&3u32.to_be_bytes());
        buf.extend_from_slice(b"{x}");
        assert_eq!(read_message::<Request>(&mut buf.as_slice()).unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert!(read_message::<Request>(&mut [].as_slice()).unwrap().is_none());
    }

    #[test]
    fn requests_serialize_readably() {
        let json = serde_json::to_string(&Request::RouteAdd { route: "198.18.5.0/24 via 198.18.1.2".into() }).unwrap();
        assert_eq!(json, r#"{"cmd":"route-add","route":"198.18.5.0/24 via 198.18.1.2"}"#);
    }
}
