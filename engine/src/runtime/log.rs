//! Log lines on stderr, and in the form journald sorts when it reads them.
//!
//! Started by systemd, the engine's stderr is a stream to journald and
//! `JOURNAL_STREAM` names it (`DEVICE:INODE`). Then every line starts with
//! the sd-daemon(3) priority prefix `<N>` (journald takes it as the entry's
//! PRIORITY and strips it) followed by the level and the module
//! (`<4>WARN engine::runtime::privileges: ...`), without colours and without
//! a timestamp (journald has one). A message of several lines gets the prefix
//! on each, so no line of a refused reload is filed as `info`. Then
//! `journalctl -u pktengine -p warning` shows warnings and worse, and
//! `journalctl -u pktengine --grep ' engine::runtime::control: '` one module.
//!
//! Why stderr and not the native journal protocol (`tracing-journald`):
//! every thread logs, and a worker's or the front thread's seccomp filter
//! allows `write` but not the `sendmsg` with a memfd that the native
//! protocol uses for large entries; a line on stderr is one `write` from
//! any thread. Anywhere else (a terminal, a file, a test harness) the lines
//! are tracing-subscriber's usual ones.

use std::fmt;
use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Whether stderr is journald's stream (set once by [`init`]).
static JOURNAL: OnceLock<bool> = OnceLock::new();

/// Installs the global subscriber: `RUST_LOG` if set, else `default`
/// (`info`, `debug`, `trace`); journald's format when stderr is its stream.
pub fn init(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let journal =
        *JOURNAL.get_or_init(|| stderr_is(std::env::var("JOURNAL_STREAM").ok().as_deref()));
    // Colours only for a terminal: a file, a pipe or journald gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if journal {
        builder.event_format(JournalFormat).init();
    } else {
        builder.init();
    }
}

/// Whether stderr is the file `journal_stream` (`DEVICE:INODE`) names. The
/// variable is inherited, so it is checked against stderr itself: an engine
/// started from a shell inside a service logs plainly to wherever its
/// stderr goes.
pub fn stderr_is(journal_stream: Option<&str>) -> bool {
    use std::os::fd::AsFd;
    let Some((dev, ino)) = journal_stream.and_then(|s| s.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    match nix::sys::stat::fstat(std::io::stderr().as_fd()) {
        #[allow(clippy::unnecessary_cast)] // dev_t and ino_t differ between targets
        Ok(st) => st.st_dev as u64 == dev && st.st_ino as u64 == ino,
        Err(_) => false,
    }
}

/// The syslog priority of a level, as sd-daemon(3) numbers them.
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// A message the engine ends with (printed, not logged: the subscriber may
/// not be up), at priority `err` under journald.
pub fn fatal(msg: &str) {
    if JOURNAL.get().copied().unwrap_or(false) {
        eprint!("{}", prefixed(3, msg));
    } else {
        eprintln!("{msg}");
    }
}

/// `text` with `<prio>` before each of its lines, newline-terminated.
fn prefixed(prio: u8, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.lines() {
        out.push_str(&format!("<{prio}>{line}\n"));
    }
    if out.is_empty() {
        out.push_str(&format!("<{prio}>\n"));
    }
    out
}

/// `<N>LEVEL target: message fields` on every line of the event.
#[derive(Debug, Clone, Copy, Default)]
pub struct JournalFormat;

impl<S, N> FormatEvent<S, N> for JournalFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut text = format!("{} {}: ", meta.level(), meta.target());
        ctx.format_fields(Writer::new(&mut text), event)?;
        writer.write_str(&prefixed(priority(meta.level()), &text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_carries_its_priority_level_and_module() {
        let buf = Buf::default();
        let b = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .event_format(JournalFormat)
            .with_writer(move || b.clone())
            .finish();
        tracing::subscriber::with_default(sub, || {
            tracing::error!(target: "engine::runtime", "SIGHUP: reload refused:\nline 3: bad value");
            tracing::warn!("privileges: staying root");
            tracing::info!(port = "lan", "XDP attached");
            tracing::debug!("d");
            tracing::trace!("t");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            [
                "<3>ERROR engine::runtime: SIGHUP: reload refused:",
                "<3>line 3: bad value",
                "<4>WARN engine::runtime::log::tests: privileges: staying root",
                "<6>INFO engine::runtime::log::tests: XDP attached port=\"lan\"",
                "<7>DEBUG engine::runtime::log::tests: d",
                "<7>TRACE engine::runtime::log::tests: t",
            ]
        );
    }

    #[test]
    fn the_stream_must_be_stderr_itself() {
        use std::os::fd::AsFd;
        let st = nix::sys::stat::fstat(std::io::stderr().as_fd()).unwrap();
        assert!(stderr_is(Some(&format!("{}:{}", st.st_dev, st.st_ino))));
        assert!(!stderr_is(Some(&format!(
            "{}:{}",
            st.st_dev,
            st.st_ino + 1
        ))));
        assert!(!stderr_is(Some("garbage")));
        assert!(!stderr_is(None));
    }

    #[test]
    fn fatal_lines_are_errors_on_every_line() {
        assert_eq!(prefixed(3, "pktengine: a\nb"), "<3>pktengine: a\n<3>b\n");
        assert_eq!(prefixed(3, ""), "<3>\n");
    }
}
