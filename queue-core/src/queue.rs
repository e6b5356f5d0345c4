//! `Queue`: the producer API (add, add_bulk, get_job, counts, pause/resume, metrics).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures_util::stream::{FuturesOrdered, StreamExt};
use serde::{Deserialize, Serialize};

use crate::coalesce::{self, Coalescer};
use crate::config::Config;
use crate::connection::Redis;
use crate::error::{Error, Result};
use crate::job::{new_job_id, push_long, Added, JobInfo, JobOptions, NewJob};
use crate::keys::{queue_registry, QueueKeys, GROUP};
use crate::lanes::{LaneCache, Lanes};
use crate::scripts::{self, Reply, EVENTS_MAXLEN, MAX_LOG_LINES};
use crate::validate::validate_queue_name;

/// Jobs per `add_job` script call in [`Queue::add_bulk`]: one round trip per chunk.
pub const BULK_CHUNK: usize = 1_000;

/// Chunks of one [`Queue::add_bulk`] in flight at once on one Redis (see there).
const BULK_IN_FLIGHT: usize = 2;

/// Each job's data as JSON text, as `add_job` stores it.
fn encode_data(jobs: &[NewJob]) -> Result<Vec<String>> {
    jobs.iter()
        .map(|j| Ok(serde_json::to_string(&j.data)?))
        .collect()
}

/// One chunk's `add_job` call, ready to send ([`Queue::add_bulk`]).
struct PreparedChunk {
    inv: redis::ScriptInvocation<'static>,
    /// The jobs' ids, in order.
    ids: Vec<String>,
}

impl PreparedChunk {
    /// Sends the call; per job, stored or the id of the job it duplicates.
    async fn send(self, queue: &Queue) -> Result<Vec<Added>> {
        let redis = &queue.inner.redis;
        let holders: Vec<String> = self
            .inv
            .invoke_async(&mut redis.conn())
            .await
            .map_err(|e| redis.err(e))?;
        if holders.len() != self.ids.len() {
            return Err(Error::Protocol(format!(
                "add_job answered {} results for {} jobs",
                holders.len(),
                self.ids.len()
            )));
        }
        Ok(self
            .ids
            .into_iter()
            .zip(holders)
            .map(|(id, holder)| {
                if holder.is_empty() {
                    Added {
                        id,
                        duplicate: false,
                    }
                } else {
                    Added {
                        id: holder,
                        duplicate: true,
                    }
                }
            })
            .collect())
    }
}

/// How many jobs a queue holds in each state, plus monotonic totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Queue name.
    pub queue: String,
    /// Ready to run (0 while paused: they count as `paused_jobs`).
    pub waiting: u64,
    /// Held by workers.
    pub active: u64,
    /// Due later (delays and retries).
    pub delayed: u64,
    /// Completed jobs still kept by retention.
    pub completed: u64,
    /// Failed jobs still kept by retention.
    pub failed: u64,
    /// Waiting jobs of a paused queue.
    pub paused_jobs: u64,
    /// Whether the queue is paused.
    pub paused: bool,
    /// Jobs ever completed (not reduced by retention).
    pub completed_total: u64,
    /// Jobs ever failed for good (not reduced by retention).
    pub failed_total: u64,
}

/// One queue's line of `jobq stats` (SPEC §6), also what the dashboard's `/api/queues`
/// returns: [`Counts`] with the waiting jobs of a paused queue counted as waiting. One type
/// for both, so the CLI and the dashboard always agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// Queue name.
    pub queue: String,
    /// Jobs not started yet, whether or not the queue is paused.
    pub waiting: u64,
    /// Jobs workers hold now.
    pub active: u64,
    /// Jobs due later (delays and retries).
    pub delayed: u64,
    /// Completed jobs kept by retention.
    pub completed: u64,
    /// Failed jobs kept by retention.
    pub failed: u64,
    /// Whether the queue is paused.
    pub paused: bool,
    /// Jobs ever completed.
    pub completed_total: u64,
    /// Jobs ever failed for good.
    pub failed_total: u64,
}

impl From<Counts> for QueueStats {
    fn from(c: Counts) -> Self {
        QueueStats {
            queue: c.queue,
            waiting: c.waiting + c.paused_jobs,
            active: c.active,
            delayed: c.delayed,
            completed: c.completed,
            failed: c.failed,
            paused: c.paused,
            completed_total: c.completed_total,
            failed_total: c.failed_total,
        }
    }
}

impl QueueStats {
    /// How many jobs are in `state` (waiting and paused both read `waiting`).
    pub fn of(&self, state: crate::job::JobState) -> u64 {
        use crate::job::JobState as S;
        match state {
            S::Waiting | S::Paused => self.waiting,
            S::Active => self.active,
            S::Delayed => self.delayed,
            S::Completed => self.completed,
            S::Failed => self.failed,
        }
    }
}

pub(crate) struct QueueInner {
    pub name: String,
    pub prefix: String,
    /// Whether this handle has put the queue's name in the registry.
    pub registered: std::sync::atomic::AtomicBool,
    pub keys: QueueKeys,
    pub redis: Redis,
    pub lanes: LaneCache,
    /// Single adds waiting to share an `add_job` call (see `coalesce.rs`).
    pub adds: Coalescer,
}

/// A handle on one queue. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    pub(crate) inner: Arc<QueueInner>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.inner.name)
            .field("redis", &self.inner.redis)
            .finish()
    }
}

impl Queue {
    /// Connects to the configured Redis and opens queue `name`.
    pub async fn connect(config: Config, name: &str) -> Result<Queue> {
        validate_queue_name(name)?;
        let redis = Redis::connect(&config).await?;
        Queue::open(&redis, config.prefix(), name).await
    }

    /// Opens queue `name` on an existing connection (shared by many queues).
    pub async fn open(redis: &Redis, prefix: &str, name: &str) -> Result<Queue> {
        validate_queue_name(name)?;
        let queue = Queue {
            inner: Arc::new(QueueInner {
                name: name.to_string(),
                prefix: prefix.to_string(),
                registered: std::sync::atomic::AtomicBool::new(false),
                keys: QueueKeys::new(prefix, name),
                redis: redis.clone(),
                lanes: LaneCache::default(),
                adds: Coalescer::default(),
            }),
        };
        Ok(queue)
    }

    /// Puts the queue's name in the registry (once per handle), so `stats` and the
    /// dashboard list it without SCAN. Done by adds and by workers, not by reads: looking
    /// at a queue that does not exist must not make it appear.
    pub async fn register(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        if self.inner.registered.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut c = self.inner.redis.conn();
        let _: i64 = redis::cmd("SADD")
            .arg(queue_registry(&self.inner.prefix))
            .arg(&self.inner.name)
            .query_async(&mut c)
            .await
            .map_err(|e| self.inner.redis.err(e))?;
        self.inner.registered.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Runs a script that touches the queue's lane streams: `build` adds its KEYS and ARGV
    /// around the lanes this process knows. A script answers `{'lanes', …}` when a producer
    /// has created a lane since; then the lanes are read again and the call repeated. The
    /// reply is returned as is (its first element is the script's status word), with the
    /// lanes the call was made with.
    pub(crate) async fn invoke_with_lanes(
        &self,
        script: &redis::Script,
        what: &str,
        build: impl Fn(&mut redis::ScriptInvocation<'_>, &Lanes),
    ) -> Result<(redis::Value, Lanes)> {
        let inner = &self.inner;
        for _ in 0..5 {
            let lanes = inner.lanes.get();
            let mut inv = script.prepare_invoke();
            build(&mut inv, &lanes);
            let v: redis::Value = inv
                .invoke_async(&mut inner.redis.conn())
                .await
                .map_err(|e| inner.redis.err(e))?;
            if Reply::new(&v)?.string()? == "lanes" {
                inner.lanes.refresh(&inner.redis, &inner.keys).await?;
                continue;
            }
            return Ok((v, lanes));
        }
        Err(Error::Protocol(format!("lanes kept changing while {what}")))
    }

    /// Queue name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The connection this queue uses.
    pub fn redis(&self) -> &Redis {
        &self.inner.redis
    }

    /// The key prefix this queue lives under.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Adds one job. With `opts.job_id` set, a second add of the same id while the first is
    /// stored stores nothing and returns `duplicate: true`.
    ///
    /// Adds to this queue made at the same time (from many tasks) share script calls: a
    /// lone add is sent at once, and the adds that arrive while calls are in flight go
    /// together in the next one (see `coalesce.rs`). Adds awaited one after another are
    /// stored in that order.
    pub async fn add<T: Serialize + ?Sized>(
        &self,
        name: &str,
        data: &T,
        opts: JobOptions,
    ) -> Result<Added> {
        let job = NewJob {
            name: name.to_string(),
            data: serde_json::to_value(data)?,
            opts,
        };
        validate_new_job(&job)?;
        check_caps(&job, self.inner.redis.caps())?;
        coalesce::add(self, job).await
    }

    /// Adds many jobs: validated first (nothing is stored if one is invalid), then sent in
    /// chunks of [`BULK_CHUNK`], one script call each, stored in order. On one Redis the
    /// first chunk goes alone (it loads the script if Redis lacks it), then the next chunk is
    /// sent while Redis stores the one before. When a chunk fails, the chunks before it are
    /// stored, and the one after it may be.
    pub async fn add_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<Added>> {
        let caps = self.inner.redis.caps();
        let mut sizes = Vec::with_capacity(jobs.len());
        for job in &jobs {
            validate_new_job(job)?;
            sizes.push(check_caps(job, caps)?);
        }
        self.register().await?;
        let mut out = Vec::with_capacity(jobs.len());
        let mut chunks = byte_chunks(&jobs, &sizes).into_iter();
        // Alone, because two calls in flight stay in order only while neither is sent again:
        // redis-rs resends a call Redis answered NOSCRIPT after loading the script, and the
        // next call, sent meanwhile, would then be stored first. Once this one is stored the
        // script is loaded. (On a cluster, one at a time throughout: `ordered_in_flight`.)
        if let Some(first) = chunks.next() {
            out.extend(
                self.prepare_chunk(first, &encode_data(first)?)?
                    .send(self)
                    .await?,
            );
        }
        let in_flight = self.inner.redis.ordered_in_flight(BULK_IN_FLIGHT);
        let mut sent = FuturesOrdered::new();
        loop {
            while sent.len() < in_flight {
                let Some(chunk) = chunks.next() else { break };
                sent.push_back(self.prepare_chunk(chunk, &encode_data(chunk)?)?.send(self));
            }
            match sent.next().await {
                Some(added) => out.extend(added?),
                None => return Ok(out),
            }
        }
    }

    /// Stores already validated jobs in one `add_job` call (at most [`BULK_CHUNK`] of them:
    /// the producer's fallback times each chunk's round trip on its own).
    pub(crate) async fn add_chunk(&self, jobs: &[NewJob]) -> Result<Vec<Added>> {
        self.add_encoded(jobs, &encode_data(jobs)?).await
    }

    /// [`Queue::add_chunk`] with each job's data already encoded as JSON (`data[i]` of
    /// `jobs[i]`), as the coalescer has it from measuring its batches.
    pub(crate) async fn add_encoded(&self, jobs: &[NewJob], data: &[String]) -> Result<Vec<Added>> {
        self.register().await?;
        self.prepare_chunk(jobs, data)?.send(self).await
    }

    /// The `add_job` call of already validated `jobs`, ready to send (ids drawn, hash
    /// fields laid out): the client's share of an add, done apart from the round trip so
    /// `add_bulk` can do it for the next chunk while Redis stores the one before.
    fn prepare_chunk(&self, jobs: &[NewJob], data: &[String]) -> Result<PreparedChunk> {
        let keys = &self.inner.keys;
        let mut prios = BTreeSet::new();
        let mut prepared = Vec::with_capacity(jobs.len());
        for (job, data) in jobs.iter().zip(data) {
            prios.insert(job.opts.priority);
            let id = job.opts.job_id.clone().unwrap_or_else(new_job_id);
            prepared.push((id, data.as_str(), job.opts.stored()?));
        }
        let prios: Vec<i32> = prios.into_iter().collect();
        let mut inv = scripts::ADD_JOB.prepare_invoke();
        inv.key(keys.meta())
            .key(keys.lanes())
            .key(keys.delayed())
            .key(keys.marker())
            .key(keys.events());
        for p in &prios {
            inv.key(keys.lane(*p));
        }
        for (id, _, _) in &prepared {
            inv.key(keys.job(id));
        }
        // dedup keys in use, each declared once
        let mut dedup_ids: Vec<&str> = Vec::new();
        for job in jobs {
            if let Some(d) = &job.opts.dedup {
                if !dedup_ids.contains(&d.id.as_str()) {
                    dedup_ids.push(&d.id);
                }
            }
        }
        for d in &dedup_ids {
            inv.key(keys.dedup(d));
        }
        inv.arg(prios.len())
            .arg(jobs.len())
            .arg(GROUP)
            .arg(EVENTS_MAXLEN);
        for p in &prios {
            inv.arg(*p);
        }
        for (job, (id, data, opts)) in jobs.iter().zip(&prepared) {
            let lane = prios
                .iter()
                .position(|p| *p == job.opts.priority)
                .unwrap_or(0)
                + 1;
            let (dedup_no, dedup_ttl) = match &job.opts.dedup {
                Some(d) => (
                    dedup_ids.iter().position(|x| *x == d.id).unwrap_or(0) + 1,
                    d.ttl_ms,
                ),
                None => (0, 0),
            };
            // the hash's fields come ready to store: the script passes them to HSET as they
            // are (cutting long values in Lua cost more than all of the job's Redis commands)
            let delay = job.opts.delay_ms.unwrap_or(0);
            // the script fills in the empty values: when added, the lane entry, when due
            let stamps: &[&str] = if delay > 0 {
                &["ts", "", "state", "delayed", "due", ""]
            } else {
                &["ts", "", "sid", ""]
            };
            let mut fields: Vec<Cow<str>> = stamps.iter().map(|s| Cow::Borrowed(*s)).collect();
            fields.push(Cow::Borrowed("name"));
            fields.push(Cow::Borrowed(&job.name));
            push_long(&mut fields, "data", data);
            if !opts.is_empty() {
                push_long(&mut fields, "opts", opts);
            }
            if job.opts.priority != 0 {
                fields.push(Cow::Borrowed("prio"));
                fields.push(Cow::Owned(job.opts.priority.to_string()));
            }
            inv.arg(id)
                .arg(delay)
                .arg(lane)
                .arg(if job.opts.job_id.is_some() { "1" } else { "0" })
                .arg(dedup_no)
                .arg(dedup_ttl)
                .arg(fields.len())
                .arg(&fields[..]);
        }
        Ok(PreparedChunk {
            inv,
            ids: prepared.into_iter().map(|(id, _, _)| id).collect(),
        })
    }

    /// Reads a job (data, options, state, attempts, progress, logs, result or error),
    /// atomically.
    pub async fn get_job(&self, id: &str) -> Result<Option<JobInfo>> {
        let keys = &self.inner.keys;
        let (v, _) = self
            .invoke_with_lanes(&scripts::GET_JOB, "reading a job", |inv, lanes| {
                inv.key(keys.job(id))
                    .key(keys.job_logs(id))
                    .key(keys.meta());
                for k in lanes.keys(keys) {
                    inv.key(k);
                }
                inv.arg(GROUP).arg(&lanes.version);
                for p in &lanes.prios {
                    inv.arg(*p);
                }
            })
            .await?;
        let mut r = Reply::new(&v)?;
        if r.string()? == "none" {
            return Ok(None);
        }
        let active = r.int()? == 1;
        let paused = r.int()? == 1;
        let idle = r.int()?;
        let now = r.int()?;
        let n = r.int()? as usize;
        let mut hash = HashMap::with_capacity(n / 2);
        for _ in 0..n / 2 {
            let k = r.string()?;
            hash.insert(k, r.string()?);
        }
        let mut logs = Vec::with_capacity(r.remaining());
        while r.remaining() > 0 {
            logs.push(r.string()?);
        }
        let run = hash.get("run").cloned();
        let mut info = JobInfo::from_hash(&self.inner.name, id, hash, logs, paused)?;
        if active {
            // the hash is written when an attempt ends: report the running one
            info.state = crate::job::JobState::Active;
            info.attempts_made += 1;
            info.started_at = Some(running_since(run.as_deref(), info.attempts_made, now, idle));
        }
        Ok(Some(info))
    }

    /// Like [`Queue::get_job`], but a missing job is [`Error::JobNotFound`].
    pub async fn job(&self, id: &str) -> Result<JobInfo> {
        self.get_job(id).await?.ok_or_else(|| Error::JobNotFound {
            queue: self.inner.name.clone(),
            id: id.to_string(),
        })
    }

    /// Counts per state, read atomically.
    pub async fn counts(&self) -> Result<Counts> {
        let keys = &self.inner.keys;
        let (v, _) = self
            .invoke_with_lanes(&scripts::COUNTS, "counting", |inv, lanes| {
                inv.key(keys.meta())
                    .key(keys.delayed())
                    .key(keys.completed())
                    .key(keys.failed());
                for k in lanes.keys(keys) {
                    inv.key(k);
                }
                inv.arg(GROUP).arg(&lanes.version);
            })
            .await?;
        let mut r = Reply::new(&v)?;
        let _ok = r.string()?;
        let mut n = || r.int().map(|v| v.max(0) as u64);
        let (waiting, active, delayed, completed, failed) = (n()?, n()?, n()?, n()?, n()?);
        let paused = n()? == 1;
        let (completed_total, failed_total) = (n()?, n()?);
        Ok(Counts {
            queue: self.inner.name.clone(),
            waiting: if paused { 0 } else { waiting },
            paused_jobs: if paused { waiting } else { 0 },
            active,
            delayed,
            completed,
            failed,
            paused,
            completed_total,
            failed_total,
        })
    }

    /// Pauses the queue: workers start none of its jobs until [`Queue::resume`].
    pub async fn pause(&self) -> Result<()> {
        self.set_paused(true).await
    }

    /// Resumes a paused queue and wakes its workers.
    pub async fn resume(&self) -> Result<()> {
        self.set_paused(false).await
    }

    async fn set_paused(&self, paused: bool) -> Result<()> {
        let keys = &self.inner.keys;
        let mut conn = self.inner.redis.conn();
        let _: i64 = scripts::SET_PAUSED
            .key(keys.meta())
            .key(keys.marker())
            .key(keys.events())
            .arg(if paused { "1" } else { "0" })
            .arg(EVENTS_MAXLEN)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.inner.redis.err(e))?;
        Ok(())
    }

    /// Jobs completed (or failed, with `failed = true`) per minute over the last `minutes`
    /// minutes, newest first, by the Redis clock.
    pub async fn metrics(&self, failed: bool, minutes: usize) -> Result<Vec<u64>> {
        let keys = &self.inner.keys;
        let (list, tag) = if failed {
            (keys.metrics_failed(), "f")
        } else {
            (keys.metrics_completed(), "c")
        };
        let mut conn = self.inner.redis.conn();
        let (minute, current, older, time): (Option<i64>, Option<u64>, Vec<u64>, (i64, i64)) =
            redis::pipe()
                .hget(keys.meta(), format!("{tag}m"))
                .hget(keys.meta(), format!("{tag}c"))
                .lrange(&list, 0, minutes as isize)
                .cmd("TIME")
                .query_async(&mut conn)
                .await
                .map_err(|e| self.inner.redis.err(e))?;
        let now_minute = time.0 / 60;
        let mut out = vec![0u64; minutes];
        if let Some(m) = minute {
            // the bucket of minute `m` sits `now_minute - m` places back, older ones after it
            let back = (now_minute - m).max(0) as usize;
            if back < minutes {
                out[back] = current.unwrap_or(0);
            }
            for (i, v) in older.into_iter().enumerate() {
                if back + 1 + i < minutes {
                    out[back + 1 + i] = v;
                }
            }
        }
        Ok(out)
    }

    /// Reports progress of a running job (stored and announced as an event).
    pub(crate) async fn set_progress(&self, id: &str, progress: &str) -> Result<bool> {
        let keys = &self.inner.keys;
        let mut conn = self.inner.redis.conn();
        let n: i64 = scripts::UPDATE_PROGRESS
            .key(keys.job(id))
            .key(keys.events())
            .arg(id)
            .arg(progress)
            .arg(EVENTS_MAXLEN)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.inner.redis.err(e))?;
        Ok(n == 1)
    }

    /// Appends a line to a job's log.
    pub(crate) async fn add_log(&self, id: &str, line: &str) -> Result<bool> {
        let keys = &self.inner.keys;
        let mut conn = self.inner.redis.conn();
        let n: i64 = scripts::ADD_LOG
            .key(keys.job(id))
            .key(keys.job_logs(id))
            .arg(line)
            .arg(MAX_LOG_LINES)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.inner.redis.err(e))?;
        Ok(n > 0)
    }
}

/// When the running attempt started: recorded by the lease renewal (`run` =
/// "<attempt>:<ms>") once the attempt has been renewed, else the entry's idle time, which
/// is exact until the first renewal.
fn running_since(run: Option<&str>, attempt: u32, now: i64, idle: i64) -> u64 {
    let recorded = run
        .and_then(|r| r.split_once(':'))
        .filter(|(a, _)| a.parse() == Ok(attempt))
        .and_then(|(_, ms)| ms.parse().ok());
    recorded.unwrap_or_else(|| (now - idle.max(0)).max(0) as u64)
}

/// Every queue registered under `prefix`, sorted.
pub async fn list_queues(redis: &Redis, prefix: &str) -> Result<Vec<String>> {
    let mut conn = redis.conn();
    let mut names: Vec<String> = redis::cmd("SMEMBERS")
        .arg(queue_registry(prefix))
        .query_async(&mut conn)
        .await
        .map_err(|e| redis.err(e))?;
    names.sort();
    Ok(names)
}

/// Checks a job's name and options. A name is 1–256 bytes without control or invisible
/// reordering characters (newline, ESC, NUL, bidirectional overrides …: names reach logs
/// and terminals).
pub(crate) fn validate_new_job(job: &NewJob) -> Result<()> {
    if job.name.is_empty()
        || job.name.len() > 256
        || job.name.chars().any(crate::text::is_unprintable)
        || job.name.trim().is_empty()
    {
        return Err(Error::invalid(
            "job name",
            format!(
                "{:?}: use 1-256 characters, not only spaces, no control characters",
                job.name.chars().take(80).collect::<String>()
            ),
        ));
    }
    job.opts.validate()
}

/// Checks a job's data and options against the size caps, before anything is stored;
/// returns the size of its data as JSON.
pub(crate) fn check_caps(job: &NewJob, caps: crate::config::JobCaps) -> Result<usize> {
    let size = caps.check_data_value(&job.data)?;
    caps.check_opts(job.opts.stored()?.len())?;
    Ok(size)
}

/// `jobs` cut into the chunks of one `add_job` call each: at most [`BULK_CHUNK`] jobs and
/// about 1 MiB of data (a larger job goes alone), so no call makes Redis store much at once.
/// `sizes[i]` is the data size of `jobs[i]`.
pub(crate) fn byte_chunks<'a>(jobs: &'a [NewJob], sizes: &[usize]) -> Vec<&'a [NewJob]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < jobs.len() {
        let n = coalesce::batch_len(sizes[start..].iter().copied());
        out.push(&jobs[start..start + n]);
        start += n;
    }
    out
}
