//! A burst bigger than the TX ring through the engine: no frame is dropped
//! for lack of TX room (`tx-ring-full` stays 0). The engine's TX ring is made
//! small (frames_per_port = 512: rings of 256) and its `lan` port has eight
//! queues served by one worker (wan too, for the replies), so one loop can take eight RX bursts (512
//! frames) that all leave by `wan`: more than the ring and more than the TX
//! queue held before 2026-12-03 (256 frames, where these were dropped as
//! `tx-ring-full`). What the ring does not take is held for the next loop
//! (`context::txq`); what the engine cannot take waits in (or is dropped by)
//! its RX rings, counted by the kernel, never silently on the way out.
use std::time::Duration;

use pktengine_tests::engine::{example, text, Engine, RouterTopo};

const QUEUES: u32 = 8;
const FRAMES: u32 = 40_000;

/// Sends FRAMES UDP datagrams h1 -> h2 as fast as Python goes, from 64
/// source ports (so the veth spreads them over its queues).
const SENDER: &str = r#"
import socket, sys
n = int(sys.argv[1])
socks = []
for i in range(64):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    s.bind(("198.18.1.2", 20000 + i))
    socks.append(s)
payload = b"x" * 64
sent = 0
for i in range(n):
    try:
        socks[i & 63].sendto(payload, ("198.19.1.2", 9))
        sent += 1
    except OSError:
        pass
print(sent)
"#;

fn port_counter(stats: &str, port: &str, col: usize) -> u64 {
    stats
        .lines()
        .find(|l| l.split_whitespace().next() == Some(port))
        .and_then(|l| l.split_whitespace().nth(col)?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_burst_bigger_than_the_tx_ring_is_held_not_dropped() {
    let t = RouterTopo::with_queues("txb", QUEUES).unwrap();
    let dir = Engine::dir("txb");
    let cfg = t
        .config(&example("router.toml"), &dir.join("ctl.sock"))
        .replace("cores = [1]", "cores = [1]\nframes_per_port = 512")
        .replace(
            "mode = \"router\"",
            &format!("mode = \"router\"\nqueues = {QUEUES}"),
        );
    assert!(
        cfg.contains("frames_per_port = 512")
            && cfg.matches(&format!("queues = {QUEUES}")).count() == 2,
        "examples/router.toml changed:\n{cfg}"
    );
    let e = Engine::start(&t.dut, &dir, &cfg, &[]).unwrap();
    // Resolve h2 first, so the burst is forwarded, not parked for ARP.
    let o =
        t.h1.command("ping")
            .args(["-c", "3", "-i", "0.2", "-W", "2", "198.19.1.2"])
            .output()
            .unwrap();
    assert!(o.status.success(), "{}\n{}", text(&o), e.log());
    let o =
        t.h1.command("python3")
            .args(["-c", SENDER, &FRAMES.to_string()])
            .output()
            .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let sent: u64 = text(&o).trim().parse().unwrap_or(0);
    assert!(sent > u64::from(FRAMES) / 2, "sender: {}", text(&o));
    std::thread::sleep(Duration::from_millis(500));
    let stats = e.ctl_ok(&["stats"]);
    let lan_rx = port_counter(&stats, "lan", 1);
    let wan_tx = port_counter(&stats, "wan", 5);
    let ring_full = e.drop_count("tx-ring-full");
    let stuck = e.drop_count("tx-port-stuck");
    eprintln!("sent {sent}, lan rx {lan_rx}, wan tx {wan_tx}, tx-ring-full {ring_full}\n{stats}");
    assert_eq!(ring_full, 0, "frames dropped for lack of TX room:\n{stats}");
    assert_eq!(stuck, 0, "a live port given up:\n{stats}");
    // Every datagram the engine received went out (the pings' 2 + 2 too).
    assert!(lan_rx >= u64::from(FRAMES) / 2, "lan rx {lan_rx}:\n{stats}");
    assert!(
        wan_tx + 8 >= lan_rx,
        "received {lan_rx}, sent {wan_tx}:\n{stats}"
    );
    e.stop(Duration::from_secs(5)).unwrap();
}
