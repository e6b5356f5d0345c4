//! What a handler's [`Ctx`](super::Ctx) reports in a `queue_core::testing` run, recorded for the test,
//! and how its Redis-backed parts refuse there.

use std::sync::Mutex;

use serde_json::Value;

/// What a test run's [`Ctx`](super::Ctx) recorded.
#[derive(Debug, Default)]
pub(crate) struct Trail {
    progress: Mutex<Vec<Value>>,
    logs: Mutex<Vec<String>>,
}

impl Trail {
    pub(crate) fn progress(&self, value: Value) {
        unpoisoned(&self.progress).push(value);
    }

    pub(crate) fn log(&self, line: &str) {
        unpoisoned(&self.logs).push(line.to_string());
    }

    pub(crate) fn take(&self) -> (Vec<Value>, Vec<String>) {
        (
            std::mem::take(&mut *unpoisoned(&self.progress)),
            std::mem::take(&mut *unpoisoned(&self.logs)),
        )
    }
}

/// A lock that a panicking handler left poisoned still holds good data (pushes only).
pub(crate) fn unpoisoned<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The panic payload of a Redis-backed part of [`Ctx`](super::Ctx) used in a test run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NoRedis(pub &'static str);

impl std::fmt::Display for NoRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is not available in a queue_core::testing run (it needs Redis): test this \
             handler against a real Redis",
            self.0
        )
    }
}
