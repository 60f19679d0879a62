//! `ctl capture --filter` on a running engine (issue 25): the client compiles
//! a tcpdump expression with libpcap, the engine checks the program and the
//! worker runs it on the port's frames before copying; the file is read by
//! the real tcpdump, which applies the same expression again.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use engine::cbpf::{encode, op, Insn};
use engine::control::ctl::{request, CaptureFilter, Request, Response};
use pktengine_tests::bg::Bg;
use pktengine_tests::engine::{example, pktengine_bin, text, Engine, RouterTopo};
use pktengine_tests::Netns;

const EXPR: &str = "tcp port 80 and host 198.18.1.2";

fn sh(ns: &Netns, cmd: &str) -> std::process::Output {
    ns.command("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .output()
        .expect("sh")
}

/// The sum over workers of the stage `name` in `ctl stats` ("stages (packets in):").
fn stage(e: &Engine, name: &str) -> u64 {
    let s = e.ctl_ok(&["stats"]);
    s.lines()
        .filter(|l| l.split_whitespace().next() == Some(name))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

fn tcpdump(file: &std::path::Path, expr: Option<&str>) -> (String, String) {
    let mut c = Command::new("tcpdump");
    c.args(["-nn", "-r"]).arg(file);
    if let Some(e) = expr {
        c.arg(e);
    }
    let o = c.output().expect("tcpdump");
    assert!(o.status.success(), "tcpdump: {}", text(&o));
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn filtered_capture_holds_only_matching_frames() {
    let t = RouterTopo::new("capf").unwrap();
    let dir = Engine::dir("capf");
    let e = Engine::start(
        &t.dut,
        &dir,
        &t.config(&example("router.toml"), &dir.join("ctl.sock")),
        &[],
    )
    .unwrap();
    let web = Bg::spawn(
        &t.h2,
        dir.join("http.log"),
        &["-m", "http.server", "80", "--bind", "198.19.1.2"],
    );
    // Resolve the neighbors first, so every kind of traffic below flows at once.
    let o = sh(&t.h1, "ping -c 2 -i 0.2 -W 2 198.19.1.2");
    assert!(o.status.success(), "{}\n{}", text(&o), e.log());
    assert_eq!(stage(&e, "capture-filtered"), 0);

    let pcap = dir.join("web.pcap");
    let mut cap = Command::new(pktengine_bin())
        .args([
            "ctl",
            "--socket",
            e.ctl.to_str().unwrap(),
            "capture",
            "lan",
            "--count",
            "30",
            "--filter",
            EXPR,
            "-w",
        ])
        .arg(&pcap)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Mixed traffic through lan until the capture has its frames: ping, UDP to a closed port
    // (ICMP port unreachable comes back), HTTP on port 80.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut curls = 0;
    while cap.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the capture did not end\n{}",
            e.log()
        );
        let _ = sh(&t.h1, "ping -c 3 -i 0.01 -W 1 198.19.1.2");
        let _ = sh(&t.h1, "python3 -c \"import socket;s=socket.socket(2,2);[s.sendto(b'x'*60,('198.19.1.2',5353)) for _ in range(5)]\"");
        let o = sh(&t.h1, "curl -sS -m 3 -o /dev/null http://198.19.1.2:80/");
        assert!(o.status.success(), "curl: {}\n{}", text(&o), e.log());
        curls += 1;
    }
    let out = cap.wait_with_output().unwrap();
    assert!(out.status.success(), "capture: {}\n{}", text(&out), e.log());
    assert!(text(&out).contains("30 frames written"), "{}", text(&out));
    assert!(
        !web.http_clients().is_empty(),
        "no request reached the server"
    );

    // The real tcpdump reads it: 30 frames, all of them HTTP of 198.18.1.2, both directions.
    let (all, _) = tcpdump(&pcap, None);
    assert_eq!(all.lines().count(), 30, "{all}");
    assert!(
        all.lines().all(|l| l.contains(" IP ") && l.contains(".80")),
        "{all}"
    );
    assert!(
        all.contains("198.18.1.2.") && all.contains("> 198.18.1.2."),
        "not both directions:\n{all}"
    );
    assert!(!all.contains("ICMP") && !all.contains("UDP"), "{all}");
    // tcpdump's own reading of the expression finds nothing outside it.
    let (outside, err) = tcpdump(&pcap, Some(&format!("not ({EXPR})")));
    assert_eq!(
        outside, "",
        "frames the filter should have kept out:\n{outside}"
    );
    assert!(err.contains("reading from file"), "{err}");
    // The workers ran the filter: pings, UDP, ICMP errors and ARP were filtered out, not copied.
    let filtered = stage(&e, "capture-filtered");
    assert!(
        filtered >= 10,
        "capture-filtered {filtered} after {curls} rounds"
    );
}

#[test]
fn bad_filters_are_refused_and_arm_nothing() {
    let t = RouterTopo::new("capb").unwrap();
    let dir = Engine::dir("capb");
    let e = Engine::start(
        &t.dut,
        &dir,
        &t.config(&example("router.toml"), &dir.join("ctl.sock")),
        &[],
    )
    .unwrap();

    // A bad expression: libpcap's message, a non-zero exit, no file, nothing asked of the engine.
    let pcap = dir.join("bad.pcap");
    let o = e.ctl(&[
        "capture",
        "lan",
        "--filter",
        "tcp port 80 and (",
        "-w",
        pcap.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let msg = text(&o);
    assert!(
        msg.contains("capture filter `tcp port 80 and (`") && msg.contains("syntax error"),
        "{msg}"
    );
    assert!(!pcap.exists());
    // One libpcap writes but the engine could not run (it loops): refused before sending.
    let o = e.ctl(&[
        "capture",
        "lan",
        "--filter",
        "ip6 protochain 6",
        "-w",
        pcap.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("jump backwards"), "{}", text(&o));

    // Programs sent past the client (another client, or a hostile one): the engine checks them.
    let jump_out = [
        Insn::new(op::JMP | op::JA, 0, 0, 5),
        Insn::new(op::RET, 0, 0, 0),
    ];
    let div0 = [
        Insn::new(op::ALU | op::DIV | op::K, 0, 0, 0),
        Insn::new(op::RET, 0, 0, 0),
    ];
    let cases: [(String, &str); 4] = [
        (
            encode::encode(&jump_out),
            "instruction 0: jump backwards or past the end",
        ),
        (
            encode::encode(&div0),
            "instruction 0: division by the constant 0",
        ),
        (encode::encode(&[]), "the program is empty"),
        ("not base64!".into(), "not a program"),
    ];
    // More refusals than captures may run: none of them is kept.
    for round in 0..3 {
        for (program, why) in &cases {
            let req = Request::Capture {
                port: "lan".into(),
                count: 5,
                filter: Some(CaptureFilter {
                    expr: "x".into(),
                    program: program.clone(),
                }),
            };
            match request(&e.ctl, &req, |_| {}) {
                Ok(Response::Error { message }) => {
                    assert!(
                        message.starts_with("capture filter refused: ") && message.contains(why),
                        "round {round}: {message}"
                    )
                }
                other => panic!("round {round}: {other:?} for {why}"),
            }
        }
    }
    // So a good capture still runs, and ends with its frame.
    let good = dir.join("good.pcap");
    let pinger =
        t.h1.command("ping")
            .args(["-c", "20", "-i", "0.05", "198.19.1.2"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
    let out = e.ctl_ok(&[
        "capture",
        "lan",
        "--count",
        "2",
        "--filter",
        "icmp[icmptype] == icmp-echo",
        "-w",
        good.to_str().unwrap(),
    ]);
    let _ = pinger.wait_with_output();
    assert!(out.contains("2 frames written"), "{out}");
    let (dump, _) = tcpdump(&good, None);
    assert_eq!(
        dump.lines()
            .filter(|l| l.contains("ICMP echo request"))
            .count(),
        2,
        "{dump}"
    );
}
