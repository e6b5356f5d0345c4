//! Exit codes: 0 ok, 1 runtime failure, 2 usage or bad input.

use std::fmt;

use queue_core::ErrorKind;

/// A runtime failure: job not found, Redis unreachable, an operation refused.
pub const RUNTIME: u8 = 1;
/// Bad usage or bad input: invalid JSON, duration, queue name, bulk line.
pub const USAGE: u8 = 2;

/// Bad input the CLI itself found (a bulk line, a data file): exit 2.
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// Shorthand for a [`BadInput`] error.
pub fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    BadInput(msg.into()).into()
}

/// A queue-core error put in the CLI's own words: one message (`{:#}` adds no causes to
/// it, which the message already says) and the exit code of the error's kind.
#[derive(Debug)]
pub struct Reworded {
    message: String,
    kind: ErrorKind,
}

impl fmt::Display for Reworded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Reworded {}

/// `e` as `<what>: <e>`, on one line, with `e`'s exit code. For errors whose message
/// already includes their cause (a flow node's), which `{:#}` would print twice.
pub fn reworded(what: &str, e: &queue_core::Error) -> anyhow::Error {
    Reworded {
        message: format!("{what}: {e}"),
        kind: e.kind(),
    }
    .into()
}

/// An add's error, where the `spool` fallback could not keep the jobs (Redis unreachable,
/// and the spool directory unwritable or full) said as such: nothing was added.
pub fn add_error(e: queue_core::Error) -> anyhow::Error {
    match e {
        queue_core::Error::Spool { .. } => reworded(
            "Redis is unreachable and the spool fallback failed, so nothing was added",
            &e,
        ),
        e => e.into(),
    }
}

/// The exit code of a queue-core error kind.
fn of_kind(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::BadInput | ErrorKind::TooLarge => USAGE,
        _ => RUNTIME,
    }
}

/// The exit code an error deserves.
pub fn code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.is::<BadInput>() {
            return USAGE;
        }
        if let Some(r) = cause.downcast_ref::<Reworded>() {
            return of_kind(r.kind);
        }
        if let Some(q) = cause.downcast_ref::<queue_core::Error>() {
            return of_kind(q.kind());
        }
    }
    RUNTIME
}

/// One line for the user. An unreachable Redis is said plainly, with its (masked) address.
pub fn message(e: &anyhow::Error) -> String {
    if let Some(q @ queue_core::Error::Redis { addr, source }) = e.downcast_ref() {
        if q.is_connection() {
            return format!("cannot reach Redis at {addr}: {source}");
        }
    }
    format!("{e:#}")
}
