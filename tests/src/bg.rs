//! Background processes of a test: a `python3 -u ARGS` server in a
//! namespace that says it is ready on its first stdout line, with its stderr
//! in a log file, killed when dropped (also on panic).
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::Netns;

/// A background `python3 -u ARGS` in a namespace, killed on drop; its stderr goes to `log`.
pub struct Bg {
    child: Child,
    log: PathBuf,
}

impl Bg {
    /// Starts it and waits (at most 10 s) for its first line on stdout, which says it is ready.
    pub fn spawn(ns: &Netns, log: PathBuf, args: &[&str]) -> Bg {
        let err = std::fs::File::create(&log).expect("server log");
        let mut child = ns
            .command("python3")
            .arg("-u")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("python3");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            // Keep the pipe open (and drained) until the process ends.
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        });
        let bg = Bg { child, log };
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(l) if !l.is_empty() => bg,
            r => panic!("{args:?} did not start ({r:?}):\n{}", bg.log()),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The client address of every request in an http.server access log, in order.
    pub fn http_clients(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET "))
            .filter_map(|l| l.split_whitespace().next())
            .map(String::from)
            .collect()
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
