use super::*;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::unix::net::UnixStream as StdUnix;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use crate::control::ctl::{read_message, request, write_message, CtlListener};

struct Setup {
    front: Front,
    jobs: Receiver<Job>,
    path: PathBuf,
    metrics: SocketAddr,
    _listener: CtlListener,
}

fn start(tag: &str, limits: Limits) -> Setup {
    let path = std::env::temp_dir().join(format!(
        "pktengine-front-{}-{tag}/ctl.sock",
        std::process::id()
    ));
    let mut listener = CtlListener::bind(&path, None).unwrap();
    let m = metrics::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = m.local_addr().unwrap();
    let (front, jobs) = Front::start(FrontConfig {
        ctl: listener.take().unwrap(),
        access: Access::default(),
        metrics: Some(m),
        limits,
        on_start: Box::new(|| {}),
    })
    .unwrap();
    Setup {
        front,
        jobs,
        path,
        metrics: addr,
        _listener: listener,
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.front.stop();
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(self.path.parent().unwrap());
    }
}

/// Serves jobs on a thread like the control thread would: stats answered at
/// once, a capture gets two frames; returns the replies of captures so a test
/// can watch them.
fn control(jobs: Receiver<Job>) -> std::thread::JoinHandle<Vec<Reply>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        while let Ok(j) = jobs.recv() {
            match j {
                Job::Ctl {
                    req: Request::Capture { count, .. },
                    mut reply,
                } => {
                    for i in 0..count.min(2) {
                        reply.send(Response::Frame {
                            port: "lan".into(),
                            time_ns: u64::from(i),
                            data: vec![i as u8; 60],
                        });
                    }
                    if count <= 2 {
                        reply.send(Response::Done {
                            message: format!("{count} frames"),
                        });
                    } else {
                        kept.push(reply);
                    }
                }
                Job::Ctl {
                    req: Request::RouteShow,
                    reply,
                } => drop(reply),
                Job::Ctl { mut reply, .. } => {
                    reply.send(Response::Done {
                        message: "ok".into(),
                    });
                }
                Job::Metrics { mut reply } => {
                    let mut m = metrics::Metrics::default();
                    m.add(&metrics::PORT_RX_PACKETS, ["lan".into()], 42u64);
                    reply.send_metrics(m);
                }
            }
        }
        kept
    })
}

fn ctl_raw(path: &Path, bytes: &[u8], shutdown: bool) -> Option<Response> {
    let mut s = StdUnix::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(bytes).unwrap();
    if shutdown {
        s.shutdown(Shutdown::Write).unwrap();
    }
    read_message::<Response>(&mut s).unwrap()
}

fn http_get(addr: SocketAddr, req: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(req).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

use std::path::Path;

#[test]
fn requests_reach_the_control_thread_and_answers_come_back() {
    let mut st = start("rt", Limits::default());
    let ctl = control(st.jobs.clone());
    let mut frames = Vec::new();
    let last = request(
        &st.path,
        &Request::Capture {
            port: "lan".into(),
            count: 2,
            filter: None,
        },
        |r| frames.push(r.clone()),
    )
    .unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(
        frames[1],
        Response::Frame {
            port: "lan".into(),
            time_ns: 1,
            data: vec![1; 60]
        }
    );
    assert_eq!(
        last,
        Response::Done {
            message: "2 frames".into()
        }
    );
    assert_eq!(
        request(&st.path, &Request::Stats, |_| {}).unwrap(),
        Response::Done {
            message: "ok".into()
        }
    );
    // An answer dropped without a final response: the client hears so.
    match request(&st.path, &Request::RouteShow, |_| {}).unwrap() {
        Response::Error { message } => assert!(message.contains("no final answer"), "{message}"),
        other => panic!("{other:?}"),
    }
    // The metrics port: a scrape, a wrong path, a wrong method.
    let out = http_get(st.metrics, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(out.starts_with("HTTP/1.0 200 OK\r\n"), "{out}");
    assert!(
        out.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{out}"
    );
    assert!(
        out.contains("\r\n\r\n# HELP pktengine_port_rx_packets_total "),
        "{out}"
    );
    assert!(out.ends_with("# TYPE pktengine_port_rx_packets_total counter\npktengine_port_rx_packets_total{port=\"lan\"} 42\n"), "{out}");
    assert!(http_get(st.metrics, b"GET /secret HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 404"));
    assert!(http_get(st.metrics, b"POST /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 405"));
    // Stopping the front drops its job sender: the control thread's loop ends.
    st.front.stop();
    ctl.join().unwrap();
}

#[test]
fn oversized_truncated_and_garbage_requests_are_answered_with_errors() {
    let st = start("bad", Limits::default());
    // A header announcing 1 GiB: refused before any body is read.
    match ctl_raw(&st.path, &(1u32 << 30).to_be_bytes(), false) {
        Some(Response::Error { message }) => {
            assert!(message.contains("larger than 65536"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // Half a request, then the client closes its side.
    let mut req = Vec::new();
    write_message(&mut req, &Request::Stats).unwrap();
    match ctl_raw(&st.path, &req[..req.len() - 3], true) {
        Some(Response::Error { message }) => {
            assert!(message.contains("truncated request"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    match ctl_raw(&st.path, &[0, 0], true) {
        Some(Response::Error { message }) => {
            assert!(message.contains("truncated request: 2 bytes"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // Not JSON, and JSON that is no request.
    for body in [&b"{nope"[..], br#"{"cmd":"format-disk"}"#] {
        let mut m = (body.len() as u32).to_be_bytes().to_vec();
        m.extend_from_slice(body);
        match ctl_raw(&st.path, &m, false) {
            Some(Response::Error { message }) => {
                assert!(message.starts_with("bad request"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(st.jobs.is_empty(), "nothing reached the control thread");
    let c = st.front.counters.rows();
    assert_eq!(c[4], ("request_oversized", 1));
    assert_eq!(c[5], ("request_malformed", 4));
    // An oversized HTTP head.
    let head = format!("GET /metrics HTTP/1.0\r\nX: {}\r\n\r\n", "a".repeat(10_000));
    assert!(http_get(st.metrics, head.as_bytes()).starts_with("HTTP/1.0 431"));
}

#[test]
fn a_trickling_client_is_cut_at_the_deadline_while_others_are_served() {
    let limits = Limits {
        request_deadline: Duration::from_millis(400),
        ..Limits::default()
    };
    let st = start("slow", limits);
    let ctl = control(st.jobs.clone());
    let mut req = Vec::new();
    write_message(&mut req, &Request::Stats).unwrap();
    // Slowloris: one byte every 50 ms, each read timeout would be satisfied.
    let p = st.path.clone();
    let slow = std::thread::spawn(move || {
        let mut s = StdUnix::connect(&p).unwrap();
        let t = Instant::now();
        for b in req.iter().take(req.len() - 1) {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            if t.elapsed() > Duration::from_secs(3) {
                break;
            }
        }
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (read_message::<Response>(&mut s), t.elapsed())
    });
    let addr = st.metrics;
    let slow_http = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let t = Instant::now();
        for b in b"GET /metrics HTTP/1.0\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa" {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        (out, t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(
            request(&st.path, &Request::Stats, |_| {}).unwrap(),
            Response::Done {
                message: "ok".into()
            }
        );
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "{:?}",
            t.elapsed()
        );
    }
    let (r, took) = slow.join().unwrap();
    match r {
        Ok(Some(Response::Error { message })) => {
            assert!(message.contains("not complete within"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(took < Duration::from_millis(2000), "{took:?}");
    let (out, took) = slow_http.join().unwrap();
    assert!(out.starts_with("HTTP/1.0 408"), "{out}");
    assert!(took < Duration::from_millis(2000), "{took:?}");
    assert_eq!(st.front.counters.rows()[3], ("request_deadline", 2));
    drop(st);
    ctl.join().unwrap();
}

#[test]
fn connections_beyond_the_cap_are_told_busy() {
    let st = start(
        "cap",
        Limits {
            max_conns: 3,
            ..Limits::default()
        },
    );
    let idle: Vec<StdUnix> = (0..3)
        .map(|_| StdUnix::connect(&st.path).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    match request(&st.path, &Request::Stats, |_| {}) {
        Ok(Response::Error { message }) => assert!(message.contains("busy"), "{message}"),
        other => panic!("{other:?}"),
    }
    drop(idle);
    // The slots free when the idle clients go.
    let ctl = control(st.jobs.clone());
    let t = Instant::now();
    loop {
        match request(&st.path, &Request::Stats, |_| {}) {
            Ok(Response::Done { .. }) => break,
            _ if t.elapsed() < Duration::from_secs(2) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            other => panic!("{other:?}"),
        }
    }
    drop(st);
    ctl.join().unwrap();
}

#[test]
fn a_client_that_leaves_or_does_not_read_closes_its_reply() {
    let limits = Limits {
        max_out: 1 << 20,
        write_stall: Duration::from_millis(300),
        ..Limits::default()
    };
    let st = start("gone", limits);
    // A capture whose client hangs up: the reply says so.
    let mut req = Vec::new();
    write_message(
        &mut req,
        &Request::Capture {
            port: "lan".into(),
            count: 100,
            filter: None,
        },
    )
    .unwrap();
    let mut s = StdUnix::connect(&st.path).unwrap();
    s.write_all(&req).unwrap();
    let j = st.jobs.recv_timeout(Duration::from_secs(2)).unwrap();
    let Job::Ctl { mut reply, .. } = j else {
        panic!()
    };
    assert!(reply.send(Response::Frame {
        port: "lan".into(),
        time_ns: 0,
        data: vec![0; 60]
    }));
    drop(s);
    let t = Instant::now();
    while !reply.is_closed() && t.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(reply.is_closed());
    assert!(!reply.send(Response::Done {
        message: String::new()
    }));

    // A capture whose client never reads: cut at the output cap or the stall.
    let mut s = StdUnix::connect(&st.path).unwrap();
    s.write_all(&req).unwrap();
    let Job::Ctl { mut reply, .. } = st.jobs.recv_timeout(Duration::from_secs(2)).unwrap() else {
        panic!()
    };
    let t = Instant::now();
    let mut sent = 0;
    while reply.send(Response::Frame {
        port: "lan".into(),
        time_ns: 0,
        data: vec![0; 1500],
    }) && t.elapsed() < Duration::from_secs(5)
    {
        sent += 1;
        if sent % 64 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(
        reply.is_closed(),
        "the reply stays open after {sent} frames"
    );
    assert!(st.front.counters.rows()[6].1 >= 1);
    drop(s);
}

#[test]
fn a_client_streaming_bytes_does_not_keep_the_loop() {
    let st = start("flood", Limits::default());
    let ctl = control(st.jobs.clone());
    // A request followed by an endless stream of bytes, and one that never ends its header.
    let mut req = Vec::new();
    write_message(&mut req, &Request::Stats).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let floods: Vec<_> = [req, Vec::new()]
        .into_iter()
        .map(|first| {
            let (p, stop) = (st.path.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut s = StdUnix::connect(&p).unwrap();
                s.set_write_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let _ = s.write_all(&first);
                let junk = vec![b'{'; 64 << 10];
                let mut sent = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    match s.write(&junk) {
                        Ok(n) => sent += n,
                        Err(e)
                            if e.kind() == io::ErrorKind::WouldBlock
                                || e.kind() == io::ErrorKind::TimedOut => {}
                        Err(_) => break,
                    }
                }
                sent
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(
            request(&st.path, &Request::Stats, |_| {}).unwrap(),
            Response::Done {
                message: "ok".into()
            }
        );
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "{:?}",
            t.elapsed()
        );
    }
    stop.store(true, Ordering::Relaxed);
    for f in floods {
        f.join().unwrap();
    }
    drop(st);
    ctl.join().unwrap();
}

/// The format a request asks for reaches the control thread with its reply;
/// a request without one (every client before `--json`) is text.
#[test]
fn the_reply_knows_the_format_the_client_asked_for() {
    let st = start("format", Limits::default());
    let jobs = st.jobs.clone();
    let ctl = std::thread::spawn(move || {
        while let Ok(j) = jobs.recv() {
            if let Job::Ctl { req, mut reply } = j {
                let message = format!("{req:?} {:?}", reply.format());
                reply.send(Response::Done { message });
            }
        }
    });
    use crate::control::ctl::request_as;
    use crate::control::records::Format;
    let done = |r: Response| match r {
        Response::Done { message } => message,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        done(request_as(&st.path, &Request::RouteShow, Format::Json, |_| {}).unwrap()),
        "RouteShow Json"
    );
    assert_eq!(
        done(request_as(&st.path, &Request::Stats, Format::Text, |_| {}).unwrap()),
        "Stats Text"
    );
    assert_eq!(
        done(request(&st.path, &Request::NatShow, |_| {}).unwrap()),
        "NatShow Text"
    );
    drop(st);
    ctl.join().unwrap();
}
