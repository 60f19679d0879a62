//! `pktengine route lookup`: the built binary with a routes file and addresses on stdin.

use std::io::Write;
use std::process::{Command, Stdio};

struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        std::fs::remove_file(&self.0).ok();
    }
}

fn routes_file(name: &str, text: &str) -> TempFile {
    let p = std::env::temp_dir().join(format!("pktengine-routes-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    TempFile(p)
}

fn run(routes: &TempFile, stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pktengine"))
        .args(["route", "lookup", "--routes"])
        .arg(&routes.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may exit before reading stdin (bad routes file): a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const ROUTES: &str = "\
# test routes
default via 198.18.0.1 dev p0
198.18.64.0/18 via 198.18.0.2 metric 20
198.18.64.0/18 via 198.18.0.3 dev p1 metric 5   # lower metric wins
198.18.128.0/17 via 198.18.0.4 via 198.18.0.5
198.18.200.7/32 via 198.18.0.6
2001:2::/48 via 2001:2::1 dev p1
2001:2:0:ff::/64 via 2001:2::2
";

#[test]
fn answers_per_line() {
    let f = routes_file("ok", ROUTES);
    let input =
        "198.18.64.9\n203.0.113.1\n198.18.200.7\n198.18.200.8\n2001:2:0:ff::1\n2001:2:1::1\n\n";
    let (code, out, err) = run(&f, input);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(
        out,
        "198.18.64.9 198.18.64.0/18 198.18.0.3\n\
         203.0.113.1 0.0.0.0/0 198.18.0.1\n\
         198.18.200.7 198.18.200.7/32 198.18.0.6\n\
         198.18.200.8 198.18.128.0/17 198.18.0.4,198.18.0.5\n\
         2001:2:0:ff::1 2001:2:0:ff::/64 2001:2::2\n\
         2001:2:1::1 unreachable\n"
    );
}

#[test]
fn bad_route_line_exits_nonzero_with_line_number() {
    let f = routes_file(
        "bad",
        "default via 198.18.0.1\n\n198.18.0.0/15 via 198.18.0.2 metric lots\n",
    );
    let (code, out, err) = run(&f, "198.18.0.1\n");
    assert_ne!(code, 0);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("line 3: bad metric `lots`"), "{err}");
}

#[test]
fn bad_address_exits_nonzero_after_answering_the_rest() {
    let f = routes_file("addr", ROUTES);
    let (code, out, err) = run(&f, "198.18.64.9\n198.18.64\n203.0.113.1\n");
    assert_ne!(code, 0);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(err.contains("line 2: bad address `198.18.64`"), "{err}");
}
