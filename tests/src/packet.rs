//! Raw frames in and out of a namespace, through an AF_PACKET socket driven
//! by a small Python program (python3 is a project dependency), so the test
//! side needs no `unsafe`.
use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Stdio};
use std::time::Duration;

use crate::netns::Netns;

const SCRIPT: &str = r#"
import socket, sys, select, time
mode, ifname = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifname, 0))
# A burst of frames must not overflow the receive buffer (SO_RCVBUFFORCE: root).
s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)
if mode == "send":
    for line in sys.stdin:
        line = line.strip()
        if line:
            s.send(bytes.fromhex(line))
    print("sent", flush=True)
else:
    want, timeout, src = int(sys.argv[3]), float(sys.argv[4]), bytes.fromhex(sys.argv[5])
    s.setsockopt(263, 8, 1)  # SOL_PACKET, PACKET_AUXDATA: the VLAN tag the kernel took out
    print("ready", flush=True)
    end = time.time() + timeout
    n = 0
    while n < want:
        left = end - time.time()
        if left <= 0:
            break
        r, _, _ = select.select([s], [], [], left)
        if not r:
            break
        data, anc, _, addr = s.recvmsg(65535, socket.CMSG_SPACE(32))
        if addr[2] == socket.PACKET_OUTGOING or data[6:12] != src:
            continue
        # The receiving kernel moves an 802.1Q tag out of the frame into
        # metadata (there are no VLAN devices here): put it back.
        for level, ty, aux in anc:
            if level == 263 and ty == 8 and len(aux) >= 20:
                status = int.from_bytes(aux[0:4], "little")
                tci = int.from_bytes(aux[16:18], "little")
                tpid = int.from_bytes(aux[18:20], "little") or 0x8100
                if status & 16:
                    data = data[:12] + tpid.to_bytes(2, "big") + tci.to_bytes(2, "big") + data[12:]
        print(data.hex(), flush=True)
        n += 1
"#;

/// Sends `frames` as they are out of `ifname` in `ns`.
pub fn send_frames(ns: &Netns, ifname: &str, frames: &[Vec<u8>]) -> io::Result<()> {
    let mut child = ns
        .command("python3")
        .args(["-c", SCRIPT, "send", ifname])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    {
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("no stdin"))?;
        for f in frames {
            writeln!(stdin, "{}", hex(f))?;
        }
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "send: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// A running capture; collects frames whose source MAC matches.
#[derive(Debug)]
pub struct Capture {
    child: Child,
    out: BufReader<ChildStdout>,
}

/// Starts capturing frames that arrive on `ifname` in `ns` with source MAC
/// `src`, until `count` are seen or `timeout` passes. Returns once the
/// socket is open.
pub fn capture(
    ns: &Netns,
    ifname: &str,
    src: [u8; 6],
    count: usize,
    timeout: Duration,
) -> io::Result<Capture> {
    let mut child = ns
        .command("python3")
        .args([
            "-c",
            SCRIPT,
            "capture",
            ifname,
            &count.to_string(),
            &format!("{:.1}", timeout.as_secs_f64()),
            &hex(&src),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout"))?;
    let mut out = BufReader::new(stdout);
    let mut line = String::new();
    out.read_line(&mut line)?;
    if line.trim() != "ready" {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::other(format!("capture did not start: {line:?}")));
    }
    Ok(Capture { child, out })
}

impl Capture {
    /// Waits for the capture to end and returns the frames seen, in order.
    pub fn finish(mut self) -> io::Result<Vec<Vec<u8>>> {
        let mut frames = Vec::new();
        let mut line = String::new();
        while self.out.read_line(&mut line)? > 0 {
            frames.push(
                unhex(line.trim()).ok_or_else(|| io::Error::other(format!("bad line {line:?}")))?,
            );
            line.clear();
        }
        self.child.wait()?;
        Ok(frames)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        // Only our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
