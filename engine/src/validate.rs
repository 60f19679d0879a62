//! The configuration's error reporting, shared by every feature that
//! validates its own section (floor 1: no packet policy). `control::config`
//! reads the TOML and hands each feature its raw section; the feature checks
//! it and reports problems at the span of the offending value, so every
//! error names `file:line:column`.

use core::fmt;
use std::path::{Path, PathBuf};

pub use toml::Spanned;

/// One problem in a configuration file, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line; 0 when the problem has no position (e.g. a missing section).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// All the problems found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects the problems of one file, each at a span of its text.
#[derive(Debug)]
pub struct Checker<'a> {
    pub file: &'a Path,
    pub text: &'a str,
    pub errors: Vec<ConfigError>,
}

impl<'a> Checker<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Checker<'a> {
        Checker {
            file,
            text,
            errors: Vec::new(),
        }
    }

    /// The 1-based line a span starts on (0 for a span with no position).
    pub fn line(&self, span: &core::ops::Range<usize>) -> usize {
        line_col(self.text, span.start).0
    }

    pub fn at(&mut self, span: core::ops::Range<usize>, message: impl Into<String>) {
        let (line, column) = if span.start == 0 && span.end == 0 {
            (0, 0)
        } else {
            line_col(self.text, span.start)
        };
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            message: message.into(),
        });
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = offset
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}

/// An optional number within `lo..=hi` (reported with its place when not), else `dflt`.
pub fn in_range(
    ck: &mut Checker<'_>,
    v: &Option<Spanned<u64>>,
    what: &str,
    lo: u64,
    hi: u64,
    dflt: u64,
) -> u64 {
    match v {
        None => dflt,
        Some(v) if (lo..=hi).contains(v.get_ref()) => *v.get_ref(),
        Some(v) => {
            ck.at(
                v.span(),
                format!("{what} {}: expected {lo}..={hi}", v.get_ref()),
            );
            dflt
        }
    }
}

/// A line of the configuration kept as written (a route, a filter rule),
/// with the line it came from, for the parsers that run later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteLine {
    pub text: String,
    pub line: usize,
}

/// A port as a feature's validation sees it: the names it may be called by.
#[derive(Debug, Clone, Copy)]
pub struct PortName<'a> {
    /// The configuration's name (`lan`).
    pub name: &'a str,
    /// The Linux interface.
    pub interface: &'a str,
}

/// The index of the port called `n` (by name or interface).
pub fn port_index(ports: &[PortName<'_>], n: &str) -> Option<u16> {
    ports
        .iter()
        .position(|p| p.name == n || p.interface == n)
        .map(|i| i as u16)
}
