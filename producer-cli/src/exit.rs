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

/// The exit code an error deserves.
pub fn code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.is::<BadInput>() {
            return USAGE;
        }
        if let Some(q) = cause.downcast_ref::<queue_core::Error>() {
            return match q.kind() {
                ErrorKind::BadInput | ErrorKind::TooLarge => USAGE,
                _ => RUNTIME,
            };
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
