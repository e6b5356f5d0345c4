//! `Queue`: the producer API (add, add_bulk, get_job, counts, pause/resume, metrics).

use std::sync::Arc;

use futures_util::stream::{FuturesOrdered, StreamExt};
use serde::Serialize;

use crate::coalesce::{self, Coalescer, Sink};
use crate::config::Config;
use crate::connection::Redis;
use crate::error::{Error, Result};
use crate::job::{Added, JobInfo, JobOptions, NewJob};
use crate::scripts::{self};
use crate::store::QueueStore;
use crate::validate::validate_queue_name;

pub use crate::coalesce::BULK_CHUNK;

/// Chunks of one [`Queue::add_bulk`] in flight at once on one Redis (see there).
const BULK_IN_FLIGHT: usize = 2;

pub use crate::stats::{Counts, QueueStats};

/// A handle on one queue. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    pub(crate) inner: Arc<QueueStore>,
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
        Ok(Queue {
            inner: Arc::new(QueueStore::new(redis, prefix, name)),
        })
    }

    /// Puts the queue's name in the registry (once per handle), so `stats` and the
    /// dashboard list it without SCAN. Done by adds and by workers, not by reads: looking
    /// at a queue that does not exist must not make it appear.
    pub async fn register(&self) -> Result<()> {
        scripts::registry::register(&self.inner).await
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
    /// stored stores nothing and returns `duplicate: true`. With `opts.debounce`, an add
    /// whose debounce id holds a job that has not started replaces that job's name and data
    /// and due time instead, and returns it with `debounced: true` ([`JobOptions::debounce`]).
    ///
    /// Adds to this queue made at the same time (from many tasks) share script calls: a
    /// lone add is sent at once, and the adds that arrive while calls are in flight go
    /// together in the next one (see `coalesce.rs`). Adds awaited one after another are
    /// stored in that order.
    pub async fn add<T: Serialize + ?Sized>(
        &self,
        name: &str,
        data: &T,
        mut opts: JobOptions,
    ) -> Result<Added> {
        // here, in the caller's task: the coalescer may send it from another
        crate::trace::inherit([&mut opts.traceparent]);
        let job = NewJob {
            name: name.to_string(),
            data: serde_json::to_value(data)?,
            opts,
        };
        let data = checked_data(&job, self.inner.redis.caps())?;
        coalesce::add(self, job, data).await
    }

    /// Adds many jobs: validated first (nothing is stored if one is invalid), then sent in
    /// chunks of [`BULK_CHUNK`], one script call each, stored in order. On one Redis the
    /// first chunk goes alone (it loads the script if Redis lacks it), then the next chunk is
    /// sent while Redis stores the one before. When a chunk fails, the chunks before it are
    /// stored, and the one after it may be.
    pub async fn add_bulk(&self, mut jobs: Vec<NewJob>) -> Result<Vec<Added>> {
        crate::trace::inherit(jobs.iter_mut().map(|j| &mut j.opts.traceparent));
        let caps = self.inner.redis.caps();
        let data = jobs
            .iter()
            .map(|job| checked_data(job, caps))
            .collect::<Result<Vec<_>>>()?;
        self.register().await?;
        let mut out = Vec::with_capacity(jobs.len());
        let mut chunks = byte_chunks(&data).into_iter();
        // Alone, because two calls in flight stay in order only while neither is sent again:
        // redis-rs resends a call Redis answered NOSCRIPT after loading the script, and the
        // next call, sent meanwhile, would then be stored first. Once this one is stored the
        // script is loaded. (On a cluster, one at a time throughout: `ordered_in_flight`.)
        if let Some(first) = chunks.next() {
            out.extend(
                scripts::add_job::prepare(&self.inner, &jobs[first.clone()], &data[first])?
                    .send(&self.inner)
                    .await?,
            );
        }
        let in_flight = self.inner.redis.ordered_in_flight(BULK_IN_FLIGHT);
        let mut sent = FuturesOrdered::new();
        loop {
            while sent.len() < in_flight {
                let Some(chunk) = chunks.next() else { break };
                sent.push_back(
                    scripts::add_job::prepare(&self.inner, &jobs[chunk.clone()], &data[chunk])?
                        .send(&self.inner),
                );
            }
            match sent.next().await {
                Some(added) => out.extend(added?),
                None => return Ok(out),
            }
        }
    }

    /// Stores already validated jobs in one `add_job` call (at most [`BULK_CHUNK`] of them),
    /// each job's data already encoded as JSON (`data[i]` of `jobs[i]`): as the coalescer
    /// has it from measuring its batches, and the spool's replay from checking its caps.
    pub(crate) async fn add_encoded(&self, jobs: &[NewJob], data: &[String]) -> Result<Vec<Added>> {
        self.register().await?;
        scripts::add_job::prepare(&self.inner, jobs, data)?
            .send(&self.inner)
            .await
    }

    /// Reads a job (data, options, state, attempts, progress, logs, result or error),
    /// atomically.
    pub async fn get_job(&self, id: &str) -> Result<Option<JobInfo>> {
        scripts::get_job::get_job(&self.inner, id).await
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
        scripts::counts::counts(&self.inner).await
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
        scripts::set_paused::set_paused(&self.inner, paused).await
    }

    /// Jobs completed (or failed, with `failed = true`) per minute over the last `minutes`
    /// minutes, newest first, by the Redis clock.
    pub async fn metrics(&self, failed: bool, minutes: usize) -> Result<Vec<u64>> {
        scripts::metrics::metrics(&self.inner, failed, minutes).await
    }

    /// Reports progress of a running job (stored and announced as an event), checked by
    /// the caller ([`check_progress`]).
    pub(crate) async fn set_progress(&self, id: &str, progress: &str) -> Result<bool> {
        scripts::update_progress::update_progress(&self.inner, id, progress).await
    }

    /// Appends a line to a job's log (cut by the caller: [`log_line`]).
    pub(crate) async fn add_log(&self, id: &str, line: &str) -> Result<bool> {
        scripts::add_log::add_log(&self.inner, id, line).await
    }
}

/// The most bytes of JSON a job's progress may have.
pub const MAX_PROGRESS_BYTES: usize = 64 * 1024;

/// The most bytes of one log line kept (a longer one is cut, saying so).
pub const MAX_LOG_LINE_BYTES: usize = 64 * 1024;

/// Progress as JSON text `progress`, if it is at most [`MAX_PROGRESS_BYTES`]: progress
/// travels in every event to every live page.
pub(crate) fn check_progress(progress: &str) -> Result<()> {
    if progress.len() > MAX_PROGRESS_BYTES {
        return Err(Error::Invalid {
            what: "progress",
            detail: format!(
                "{} bytes of JSON, over the {MAX_PROGRESS_BYTES} bytes progress may have \
                 (report a summary; put results in the return value)",
                progress.len()
            ),
        });
    }
    Ok(())
}

/// `line` as stored: cut at [`MAX_LOG_LINE_BYTES`] (on a character boundary) when longer,
/// saying how long it was.
pub(crate) fn log_line(line: &str) -> std::borrow::Cow<'_, str> {
    if line.len() <= MAX_LOG_LINE_BYTES {
        return line.into();
    }
    let mut end = MAX_LOG_LINE_BYTES - 64;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [cut: the line was {} bytes]", &line[..end], line.len()).into()
}

/// The stats of each of `queues` (`jobq stats`' rows, the dashboard's `/api/queues`), read
/// concurrently, in the order given. A queue whose records cannot be read (a corrupt
/// record) gets a row saying why ([`QueueStats::unreadable`]) instead of failing the
/// others; Redis itself failing fails the call.
pub async fn stats_of(queues: &[Queue]) -> Result<Vec<QueueStats>> {
    futures_util::future::try_join_all(queues.iter().map(|q| async move {
        match q.counts().await {
            Ok(c) => Ok(c.into()),
            Err(e) if e.is_connection() => Err(e),
            Err(e) => Ok(QueueStats::unreadable(q.name(), e.to_string())),
        }
    }))
    .await
}

/// The stats of every queue registered under `prefix`, sorted by name.
pub async fn all_queue_stats(redis: &Redis, prefix: &str) -> Result<Vec<QueueStats>> {
    let mut queues = Vec::new();
    for name in list_queues(redis, prefix).await? {
        queues.push(Queue::open(redis, prefix, &name).await?);
    }
    stats_of(&queues).await
}

/// Every queue registered under `prefix`, sorted.
pub async fn list_queues(redis: &Redis, prefix: &str) -> Result<Vec<String>> {
    scripts::registry::list_queues(redis, prefix).await
}

/// Checks a job's name and options. A name is 1–256 bytes without control or invisible
/// reordering characters (newline, ESC, NUL, bidirectional overrides …: names reach logs
/// and terminals).
pub(crate) fn validate_new_job(job: &NewJob) -> Result<()> {
    if job.name.is_empty()
        || job.name.len() > crate::job::MAX_NAME_BYTES
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

/// Checks a job (name, options, size caps) before anything is stored, and returns its data
/// as the JSON text `add_job` stores: encoded once, for the check and the call.
pub(crate) fn checked_data(job: &NewJob, caps: crate::config::JobCaps) -> Result<String> {
    validate_new_job(job)?;
    let data = caps.encode_data(&job.data)?;
    caps.check_opts(job.opts.stored()?.len())?;
    Ok(data)
}

/// The jobs whose encoded data is `data` cut into the chunks of one `add_job` call each (as
/// index ranges): at most [`BULK_CHUNK`] jobs and about 1 MiB of data (a larger job goes
/// alone), so no call makes Redis store much at once.
pub(crate) fn byte_chunks(data: &[String]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let n = coalesce::batch_len(data[start..].iter().map(String::len));
        out.push(start..start + n);
        start += n;
    }
    out
}

impl Sink for Queue {
    fn coalescer(&self) -> &Coalescer {
        &self.inner.adds
    }

    fn in_flight(&self, most: usize) -> usize {
        self.inner.redis.ordered_in_flight(most)
    }

    async fn store(&self, jobs: Vec<NewJob>, data: Vec<String>) -> Result<Vec<Added>> {
        self.add_encoded(&jobs, &data).await
    }
}
