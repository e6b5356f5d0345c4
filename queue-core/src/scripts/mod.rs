//! The Lua scripts, one per state transition, each with its Rust half beside it:
//! `<name>.lua` is the transition (atomic inside Redis), `<name>.rs` packs its keys and
//! arguments, makes the call and decodes the reply. Queue scripts are loaded with
//! `include_str!` behind a shared prelude of helpers (`prelude.lua`); the handler
//! primitives' scripts (`lock_*`, `rate_check`) and the worker registry's (`worker_*`,
//! `workers_*`) stand alone.
//!
//! Every Redis call a queue makes goes through a module here: the scripts, and beside them
//! the plain reads that need no script (listings, snapshots for bulk operations, the
//! registry, metrics, schedule reads, the wake-up markers, the sweep's SCAN). The rest of
//! the crate calls these functions with a [`QueueStore`] and never touches a queue's keys
//! or builds a call itself. (The lane cache, `lanes.rs`, and the event follower,
//! `events.rs`, read a queue's lanes and event stream on their own, below this.)

use redis::{FromRedisValue, ScriptInvocation, Value};

use crate::connection::Redis;
use crate::error::{Error, Result};
use crate::lanes::Lanes;
use crate::store::QueueStore;

macro_rules! script {
    ($name:ident, $file:literal) => {
        pub(crate) static $name: std::sync::LazyLock<redis::Script> =
            std::sync::LazyLock::new(|| {
                redis::Script::new(concat!(include_str!("prelude.lua"), include_str!($file)))
            });
    };
}

/// A script that needs none of the queue helpers (the handler primitives').
macro_rules! standalone_script {
    ($name:ident, $file:literal) => {
        pub(crate) static $name: std::sync::LazyLock<redis::Script> =
            std::sync::LazyLock::new(|| redis::Script::new(include_str!($file)));
    };
}

pub(crate) mod add_job;
pub(crate) mod add_log;
pub(crate) mod budget;
pub(crate) mod cancel;
pub(crate) mod claim_entries;
pub(crate) mod claim_fast;
pub(crate) mod clean;
pub(crate) mod complete;
pub(crate) mod counts;
pub(crate) mod drain;
pub(crate) mod extend_lease;
pub(crate) mod fail_or_retry;
pub(crate) mod flow;
pub(crate) mod flow_commit;
pub(crate) mod flow_stage;
pub(crate) mod get_job;
pub(crate) mod groups;
pub(crate) mod hscan;
pub(crate) mod kids;
pub(crate) mod listing;
pub(crate) mod lock_extend;
pub(crate) mod lock_release;
pub(crate) mod meta;
pub(crate) mod metrics;
pub(crate) mod move_jobs;
pub(crate) mod move_to_active;
pub(crate) mod node_time;
pub(crate) mod obliterate;
pub(crate) mod outbox;
pub(crate) mod packed;
pub(crate) mod rate_check;
pub(crate) mod reclaim;
pub(crate) mod registry;
pub(crate) mod release;
pub(crate) mod remove_jobs;
pub(crate) mod repair;
pub(crate) mod repair_groups;
pub(crate) mod retention;
pub(crate) mod schedule_fire;
pub(crate) mod schedule_remove;
pub(crate) mod schedule_upsert;
pub(crate) mod schedules;
pub(crate) mod search;
pub(crate) mod set_group_limits;
pub(crate) mod set_limits;
pub(crate) mod set_paused;
pub(crate) mod settle;
pub(crate) mod snapshot;
pub(crate) mod update_job;
pub(crate) mod update_progress;
pub(crate) mod wake;
pub(crate) mod worker_beat;
pub(crate) mod worker_leave;
pub(crate) mod workers_list;
pub(crate) mod workers_read;

/// A claimed attempt, as the scripts that record its outcome name it.
pub(crate) struct Attempt<'a> {
    pub id: &'a str,
    /// Its lane's priority.
    pub prio: i32,
    /// Its lane entry.
    pub sid: &'a str,
    pub attempt: u32,
    /// When it started, by the Redis clock (ms).
    pub started_ms: i64,
    /// Its flow parent, `<queue>/<id>` ("" for none).
    pub parent: &'a str,
    /// Its group ("" for none).
    pub group: &'a str,
    /// A lean job without a record when claimed (`job.rs` `lean_id`): its name, data
    /// and entry, for its record.
    pub lean: Option<LeanAttempt<'a>>,
}

/// What a lean job's entry holds beside its name and data: what the record it gets when
/// kept (`complete.lua`) needs.
#[derive(Debug, Clone)]
pub(crate) struct LeanEntry {
    /// Its options as stored ("" for none).
    pub opts: String,
    /// Its trace context.
    pub traceparent: Option<String>,
}

/// What the record of a lean job is made of ([`Attempt::lean`]).
pub(crate) struct LeanAttempt<'a> {
    pub name: &'a str,
    pub data: &'a str,
    pub entry: &'a LeanEntry,
}

/// The lane keys of a batch (its jobs' priorities `prios`, in order) and each job's
/// 1-based lane number among them.
pub(crate) fn lanes_of(
    keys: &crate::keys::QueueKeys,
    prios: impl Iterator<Item = i32> + Clone,
) -> (Vec<String>, Vec<usize>) {
    let lanes: Vec<i32> = prios
        .clone()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let numbers = prios
        .map(|p| lanes.iter().position(|l| *l == p).unwrap_or(0) + 1)
        .collect();
    (lanes.iter().map(|p| keys.lane(*p)).collect(), numbers)
}

/// The call of `fail_or_retry` (`complete` writes its own, its jobs packed): the script's
/// own `keys`, then the batch's lane keys; the group, stream bound, job prefix, batch size,
/// retention and trim budget; then per job its id, lane number and entry id, what `outcome`
/// adds (the failure), its attempt, its start, its flow parent and its group.
pub(crate) fn outcome_call<'a, T>(
    script: &'a redis::Script,
    q: &QueueStore,
    keys: &[String],
    jobs: &[(Attempt<'_>, T)],
    policy: crate::job::Retention,
    again: bool,
    outcome: impl Fn(&mut ScriptInvocation<'a>, &T),
) -> ScriptInvocation<'a> {
    let (lane_keys, numbers) = lanes_of(&q.keys, jobs.iter().map(|(a, _)| a.prio));
    let (keep, age) = policy.as_args();
    let mut inv = script.prepare_invoke();
    for k in keys.iter().chain(&lane_keys) {
        inv.key(k);
    }
    inv.arg(crate::keys::GROUP)
        .arg(EVENTS_MAXLEN)
        .arg(q.keys.job_prefix())
        .arg(jobs.len())
        .arg(keep)
        .arg(age)
        .arg(TRIM_BUDGET)
        .arg(if again { "1" } else { "0" });
    for ((job, x), lane) in jobs.iter().zip(numbers) {
        inv.arg(job.id).arg(lane).arg(job.sid);
        outcome(&mut inv, x);
        inv.arg(job.attempt)
            .arg(job.started_ms)
            .arg(job.parent)
            .arg(job.group)
            .arg(if job.lean.is_some() { "1" } else { "0" });
    }
    inv
}

/// Sends a script call on `redis`' shared connection; an error names the server.
pub(crate) async fn invoke<T: FromRedisValue>(
    redis: &Redis,
    inv: &ScriptInvocation<'_>,
) -> Result<T> {
    inv.invoke_async(&mut redis.conn())
        .await
        .map_err(|e| redis.err(e))
}

/// A script call written straight into its one `EVALSHA` command, for the calls of the hot
/// path that carry arguments per job: a [`ScriptInvocation`] holds each argument in an
/// allocation of its own and copies them all into the command when sent.
pub(crate) struct Call<'a> {
    script: &'a redis::Script,
    cmd: redis::Cmd,
}

impl<'a> Call<'a> {
    /// A call of `script` with `keys` keys, to be given first ([`Call::arg`] takes both).
    pub(crate) fn new(script: &'a redis::Script, keys: usize) -> Self {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(script.get_hash()).arg(keys);
        Call { script, cmd }
    }

    pub(crate) fn arg<T: redis::ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.cmd.arg(arg);
        self
    }

    /// Sends it on queue `q`'s shared connection, loading the script first where Redis does
    /// not have it (restarted, or flushed); a WRONGTYPE is explained as [`invoke_on`] does.
    pub(crate) async fn invoke_on<T: FromRedisValue>(&self, q: &QueueStore) -> Result<T> {
        let mut conn = q.redis.conn();
        let mut sent = self.cmd.query_async(&mut conn).await;
        if matches!(&sent, Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript))
        {
            sent = match self.script.load_async(&mut conn).await {
                Ok(_) => self.cmd.query_async(&mut conn).await,
                Err(e) => Err(e),
            };
        }
        match sent {
            Ok(v) => Ok(v),
            Err(e) => Err(explained(q, q.redis.err(e)).await),
        }
    }
}

/// Sends a call of one of queue `q`'s scripts; a failure that is Redis's WRONGTYPE is
/// explained ([`explained`]).
pub(crate) async fn invoke_on<T: FromRedisValue>(
    q: &QueueStore,
    inv: &ScriptInvocation<'_>,
) -> Result<T> {
    match invoke(&q.redis, inv).await {
        Ok(v) => Ok(v),
        Err(e) => Err(explained(q, e).await),
    }
}

/// `e`, or when it is Redis's WRONGTYPE (a script or read met a key of the wrong type), the
/// queue's own key that holds the wrong type, named: its meta hash, its lanes set, or one of
/// its indexes of jobs. (Job keys of the wrong type never get here: the job fails alone.) A
/// key that cannot be found, or a failed look, leaves `e` as it is.
pub(crate) async fn explained(q: &QueueStore, e: Error) -> Error {
    let Error::Redis { source, .. } = &e else {
        return e;
    };
    let wrongtype = source.code() == Some("WRONGTYPE") || source.to_string().contains("WRONGTYPE");
    if !wrongtype {
        return e;
    }
    let k = &q.keys;
    let mut want = vec![
        (k.meta(), "hash"),
        (k.lanes(), "zset"),
        (k.delayed(), "zset"),
        (k.completed(), "zset"),
        (k.failed(), "zset"),
    ];
    want.extend(q.lanes.get().keys(k).into_iter().map(|key| (key, "stream")));
    let mut pipe = redis::pipe();
    for (key, _) in &want {
        pipe.cmd("TYPE").arg(key);
    }
    let found: Vec<String> = match pipe.query_async(&mut q.redis.conn()).await {
        Ok(found) => found,
        Err(_) => return e,
    };
    for ((key, want), found) in want.into_iter().zip(found) {
        if found != "none" && found != want {
            return Error::CorruptKey {
                queue: q.name.clone(),
                key,
                found,
                want,
            };
        }
    }
    e
}

/// The reply of a read of one of a queue's indexes of jobs (a set, a lane, a group's key),
/// where a key of the wrong type (a corrupt record), or a lane without its consumer group
/// or gone (deleted by hand; `XINFO` answers "no such key"), reads as empty: it lists no
/// job of ours. The next script that meets
/// it makes it again, and the repair sweep puts back the jobs it listed, from their hashes;
/// meanwhile a listing shows the rest, never fails.
pub(crate) fn empty_if_corrupt<T: Default>(reply: redis::RedisResult<T>) -> redis::RedisResult<T> {
    match reply {
        Err(e) if matches!(e.code(), Some("WRONGTYPE" | "NOGROUP")) => Ok(T::default()),
        Err(e) if e.code() == Some("ERR") && e.detail() == Some("no such key") => Ok(T::default()),
        other => other,
    }
}

/// One reply of a pipeline sent with `ignore_errors`, read as `T`; an error reply of the
/// kind [`empty_if_corrupt`] reads as empty does the same here.
pub(crate) fn piped<T: FromRedisValue + Default>(v: Value) -> redis::RedisResult<T> {
    match v {
        Value::ServerError(e) => empty_if_corrupt(Err(e.into())),
        v => Ok(redis::from_redis_value(v)?),
    }
}

/// Reads queue `q`'s lanes again (see `lanes.rs`); a lanes set of the wrong type (a corrupt
/// record) is named in the error.
pub(crate) async fn refresh_lanes(q: &QueueStore) -> Result<Lanes> {
    match q.lanes.refresh(&q.redis, &q.keys).await {
        Ok(lanes) => Ok(lanes),
        Err(e) => Err(explained(q, e).await),
    }
}

/// Runs a script that touches the queue's lane streams: `build` adds its KEYS and ARGV
/// around the lanes this process knows. A script answers `{'lanes', …}` when a producer
/// has created a lane since; then the lanes are read again and the call repeated. The
/// reply is returned as is (its first element is the script's status word), with the
/// lanes the call was made with.
pub(crate) async fn invoke_with_lanes(
    q: &QueueStore,
    script: &redis::Script,
    what: &str,
    build: impl Fn(&mut redis::ScriptInvocation<'_>, &Lanes),
) -> Result<(redis::Value, Lanes)> {
    let inner = q;
    for _ in 0..5 {
        let lanes = inner.lanes.get();
        let mut inv = script.prepare_invoke();
        build(&mut inv, &lanes);
        let v: redis::Value = invoke_on(inner, &inv).await?;
        if Reply::new(&v)?.string()? == "lanes" {
            refresh_lanes(inner).await?;
            continue;
        }
        return Ok((v, lanes));
    }
    Err(Error::Protocol(format!("lanes kept changing while {what}")))
}

/// Jobs handled per script call by the bulk operations (control.rs): 200, so even a call
/// that deletes jobs at the 1 MiB data cap (with results as large) stays well under 50 ms.
pub const BATCH: usize = 200;
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
    items: Items<'a>,
}

/// A reply's items, read in place or taken (a taken string keeps its bytes, uncopied).
enum Items<'a> {
    Borrowed(std::slice::Iter<'a, Value>),
    Owned(std::vec::IntoIter<Value>),
}

impl<'a> Reply<'a> {
    pub(crate) fn new(v: &'a Value) -> Result<Self> {
        match v {
            Value::Array(items) => Ok(Reply {
                items: Items::Borrowed(items.iter()),
            }),
            other => Err(Error::Protocol(format!("expected an array, got {other:?}"))),
        }
    }

    /// A reply whose strings are taken rather than copied (the claim's: a few per job).
    pub(crate) fn owned(v: Value) -> Result<Reply<'static>> {
        match v {
            Value::Array(items) => Ok(Reply {
                items: Items::Owned(items.into_iter()),
            }),
            other => Err(Error::Protocol(format!("expected an array, got {other:?}"))),
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        match &self.items {
            Items::Borrowed(i) => i.len(),
            Items::Owned(i) => i.len(),
        }
    }

    /// The next item when it is an integer (a string is never read as one), left in place.
    pub(crate) fn peek_int(&self) -> Option<i64> {
        let next = match &self.items {
            Items::Borrowed(i) => i.as_slice().first(),
            Items::Owned(i) => i.as_slice().first(),
        };
        match next {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }

    fn next_value(&mut self) -> Result<std::borrow::Cow<'a, Value>> {
        let next = match &mut self.items {
            Items::Borrowed(i) => i.next().map(std::borrow::Cow::Borrowed),
            Items::Owned(i) => i.next().map(std::borrow::Cow::Owned),
        };
        next.ok_or_else(|| Error::Protocol("script reply is too short".into()))
    }

    pub(crate) fn string(&mut self) -> Result<String> {
        let v = match self.next_value()? {
            std::borrow::Cow::Owned(Value::BulkString(b)) => return Ok(lossy_text(b)),
            v => v,
        };
        match v.as_ref() {
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
        let bytes = match self.next_value()? {
            std::borrow::Cow::Owned(Value::BulkString(b)) => b,
            std::borrow::Cow::Borrowed(Value::BulkString(b)) => b.clone(),
            v if matches!(v.as_ref(), Value::Nil) => return Ok(Ok(String::new())),
            other => return Err(Error::Protocol(format!("expected a string, got {other:?}"))),
        };
        Ok(stored_text(bytes))
    }

    pub(crate) fn int(&mut self) -> Result<i64> {
        match self.next_value()?.as_ref() {
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

/// Stored bytes as text, invalid UTF-8 replaced (as a script's reply is read).
pub(crate) fn lossy_text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Stored bytes as text: `Err` with the text (invalid parts replaced) when they are not
/// UTF-8, for callers that must tell corrupt data from data.
pub(crate) fn stored_text(b: Vec<u8>) -> std::result::Result<String, String> {
    String::from_utf8(b).map_err(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
