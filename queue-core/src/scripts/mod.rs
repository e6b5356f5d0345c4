//! Typed wrappers around the Lua scripts: one script per state transition, each loaded with
//! `include_str!` behind a shared prelude of helpers. The Rust side only marshals arguments
//! and replies; the transition itself is atomic inside Redis.

use std::sync::LazyLock;

use redis::{Script, Value};

use crate::error::{Error, Result};

macro_rules! script {
    ($name:ident, $file:literal) => {
        pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(include_str!("prelude.lua"), include_str!($file)))
        });
    };
}

/// A script that needs none of the queue helpers (the handler primitives').
macro_rules! standalone_script {
    ($name:ident, $file:literal) => {
        pub(crate) static $name: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!($file)));
    };
}

script!(ADD_JOB, "add_job.lua");
script!(MOVE_TO_ACTIVE, "move_to_active.lua");
script!(COMPLETE, "complete.lua");
script!(FAIL_OR_RETRY, "fail_or_retry.lua");
script!(UPDATE_PROGRESS, "update_progress.lua");
script!(ADD_LOG, "add_log.lua");
script!(COUNTS, "counts.lua");
script!(GET_JOB, "get_job.lua");
script!(EXTEND_LEASE, "extend_lease.lua");
script!(RECLAIM, "reclaim.lua");
script!(RELEASE, "release.lua");
script!(REPAIR, "repair.lua");
// queue control (control.rs)
script!(MOVE_JOBS, "move_jobs.lua");
script!(REMOVE_JOBS, "remove_jobs.lua");
script!(UPDATE_JOB, "update_job.lua");
script!(CLEAN, "clean.lua");
script!(DRAIN, "drain.lua");
script!(RETENTION, "retention.lua");
// schedules (schedule.rs, worker/schedule.rs)
script!(SCHEDULE_UPSERT, "schedule_upsert.lua");
script!(SCHEDULE_REMOVE, "schedule_remove.lua");
script!(SCHEDULE_FIRE, "schedule_fire.lua");
// queue limits (limits.rs)
script!(SET_LIMITS, "set_limits.lua");
script!(SET_PAUSED, "set_paused.lua");
// handler primitives (primitives/)
standalone_script!(LOCK_RELEASE, "lock_release.lua");
standalone_script!(LOCK_EXTEND, "lock_extend.lua");
standalone_script!(RATE_CHECK, "rate_check.lua");

/// Entries kept in a queue's event stream (approximate trim). An entry covers a batch of up
/// to 20 jobs (its `ids` list), so this holds up to ~20,000 jobs' events in bounded memory.
pub const EVENTS_MAXLEN: u64 = 1_000;
/// Delayed jobs promoted per fetch call, so one call stays short.
pub(crate) const PROMOTE_BATCH: u64 = 500;
/// Finished jobs deleted by retention per call, so one call stays short.
pub(crate) const TRIM_BUDGET: u64 = 1_000;
/// Log lines kept per job.
pub(crate) const MAX_LOG_LINES: u64 = 1_000;

/// Reads script replies.
pub(crate) struct Reply<'a> {
    items: std::slice::Iter<'a, Value>,
}

impl<'a> Reply<'a> {
    pub(crate) fn new(v: &'a Value) -> Result<Self> {
        match v {
            Value::Array(items) => Ok(Reply {
                items: items.iter(),
            }),
            other => Err(Error::Protocol(format!("expected an array, got {other:?}"))),
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.items.len()
    }

    fn next_value(&mut self) -> Result<&'a Value> {
        self.items
            .next()
            .ok_or_else(|| Error::Protocol("script reply is too short".into()))
    }

    pub(crate) fn string(&mut self) -> Result<String> {
        match self.next_value()? {
            Value::BulkString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
            Value::SimpleString(s) => Ok(s.clone()),
            Value::Int(i) => Ok(i.to_string()),
            Value::Nil => Ok(String::new()),
            other => Err(Error::Protocol(format!("expected a string, got {other:?}"))),
        }
    }

    /// A string as it is stored: `Err` with the text (invalid parts replaced) when it is not
    /// UTF-8, for callers that must tell corrupt data from data.
    pub(crate) fn utf8(&mut self) -> Result<std::result::Result<String, String>> {
        match self.next_value()? {
            Value::BulkString(b) => Ok(String::from_utf8(b.clone())
                .map_err(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())),
            Value::Nil => Ok(Ok(String::new())),
            other => Err(Error::Protocol(format!("expected a string, got {other:?}"))),
        }
    }

    pub(crate) fn int(&mut self) -> Result<i64> {
        match self.next_value()? {
            Value::Int(i) => Ok(*i),
            Value::BulkString(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Error::Protocol(format!("expected an integer, got {b:?}"))),
            other => Err(Error::Protocol(format!(
                "expected an integer, got {other:?}"
            ))),
        }
    }
}
