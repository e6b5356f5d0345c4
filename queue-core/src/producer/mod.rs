//! The producer: adds jobs, and degrades gracefully when Redis is down (`JOBQ_FALLBACK`).
//!
//! A [`Producer`] adds jobs like [`Queue::add`], and when Redis cannot be reached applies
//! the configured [`Fallback`]:
//! - `inline`: runs the job's registered handler in-process now and returns its result
//!   ([`Produced::Inline`]; see `inline.rs`);
//! - `spool`: appends the job to a durable local file under `JOBQ_SPOOL_DIR`, synced before
//!   the add returns ([`Produced::Spooled`]; see `spool.rs`); any jobq process with the
//!   same spool dir connected to the same Redis replays it into Redis once Redis answers,
//!   under the job's id, so a replay that runs twice stores it once (see `replay.rs`);
//! - `error`: returns [`Error::RedisDown`], naming the Redis address.
//!
//! "Cannot be reached" means: not configured (neither `REDIS_URL` nor `REDIS_HOST`), a
//! refused or dropped connection, an I/O error, Redis still loading, or no answer within
//! the timeout (default 2 s, for the connect and for each round trip). Other errors (a bad
//! option, a full Redis) are returned as they are. The first failure opens a circuit
//! breaker (`breaker.rs`; its transitions and the connection are in `recovery.rs`): later adds fall back at once, without waiting on Redis, until
//! after a cool-down (default 5 s) one add probes Redis again; its success closes the
//! breaker.
//!
//! The connection is made lazily on the first add (one attempt, 2 s connect timeout), is
//! dropped when the breaker opens, and made anew by the probe. While this producer holds
//! a spool file, a background task probes Redis after each cool-down even if no add
//! comes, so an idle producer does not keep its jobs out of Redis. When the breaker closes
//! (Redis answers again) the producer seals its spool file — releasing its lock, so any
//! replayer (a worker) can take it; a later outage starts a new file — and replays the
//! spool dir in the background (this producer's file first). A new connection does the
//! same when the dir holds files. [`ProducerBuilder::auto_replay`] off (as in the CLI,
//! which replays in the foreground with [`Producer::replay_spool`]) keeps the sealing and
//! leaves the replay to others.
//!
//! With `spool` and `inline`, the job's id is drawn before the first try and stored as
//! `job_id`: an add that timed out after Redis stored it, then spooled, is not stored
//! twice by the replay (a debounced one neither: add_job.lua). With `inline`, such a job
//! runs twice, once inline and once from Redis, under that one id: at least once.
//!
//! ```no_run
//! # use queue_core::*;
//! # use queue_core::producer::*;
//! # async fn demo() -> Result<()> {
//! let config = Config::from_env()?;
//! let handlers = Worker::builder(config.clone())
//!     .handler("diag.echo", |job: Job<serde_json::Value>, _ctx: Ctx| async move {
//!         Ok::<_, JobError>(job.data)
//!     })
//!     .handlers();
//! let producer = Producer::builder(config).handlers(handlers).build();
//! match producer.add("diag", "diag.echo", &serde_json::json!({"hi": 1}), JobOptions::new()).await? {
//!     Produced::Stored(added) => println!("stored {}", added.id),
//!     Produced::Inline { result, .. } => println!("ran inline: {result}"),
//!     Produced::Spooled { id, file, .. } => println!("spooled {id} to {}", file.display()),
//! }
//! # Ok(()) }
//! ```

mod breaker;
mod handle;
mod inline;
mod recorder;
mod recovery;
mod replay;
mod spool;
#[cfg(test)]
pub(crate) use spool::decode as decode_spool_line;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, Once, RwLock};
use std::time::Duration;

use serde::Serialize;

pub use breaker::{BreakerState, DEFAULT_COOLDOWN};
pub use recorder::{Enqueued, Recorder};
pub use replay::{
    replay_dir, replay_loop, ReplayOptions, ReplayReport, DEFAULT_REPLAY_CHUNK, REPLAY_EVERY,
};
pub use spool::{has_pending, rejected_files, spool_files, RejectedFile, SpoolFile};

use crate::clock::now_ms;
use crate::config::{Config, Fallback};
use crate::error::{Error, Result};
use crate::handler::Handlers;
use crate::job::{new_job_id, JobOptions, NewJob};
use crate::queue::{byte_chunks, checked_data, Queue};
use crate::validate::validate_queue_name;
use breaker::{Breaker, Pass};
use handle::Inner;
pub use handle::{Produced, Producer};
use recovery::cause_of;
use spool::{target_of, SpoolLineRef, SpoolWriter};

/// Default time Redis gets to accept a connection or answer one round trip before it
/// counts as down.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a job was not stored in Redis.
#[derive(Debug, Clone)]
enum Down {
    NotConfigured,
    Unreachable { addr: String, cause: String },
}

impl fmt::Display for Down {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Down::NotConfigured => {
                f.write_str("Redis is not configured (set REDIS_URL or REDIS_HOST)")
            }
            Down::Unreachable { addr, cause } => {
                write!(f, "Redis at {addr} is unreachable ({cause})")
            }
        }
    }
}

/// Configures a [`Producer`].
#[derive(Debug)]
pub struct ProducerBuilder {
    config: Config,
    handlers: Option<Handlers>,
    timeout: Duration,
    cooldown: Duration,
    replay: ReplayOptions,
    auto_replay: bool,
    recording: Option<Recorder>,
}

impl ProducerBuilder {
    /// The handlers the `inline` fallback runs (from [`crate::WorkerBuilder::handlers`]).
    /// Without them an inline fallback fails, saying so.
    pub fn handlers(mut self, handlers: Handlers) -> Self {
        self.handlers = Some(handlers);
        self
    }

    /// How long a connect or a round trip may take before Redis counts as down
    /// (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long the breaker stays open before one add probes Redis again (default 5 s).
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Chunk size and pacing of replays.
    pub fn replay_options(mut self, opts: ReplayOptions) -> Self {
        self.replay = opts;
        self
    }

    /// Whether each new connection starts a background replay of the spool dir (default
    /// on). Short-lived processes turn it off and call [`Producer::replay_spool`].
    pub fn auto_replay(mut self, on: bool) -> Self {
        self.auto_replay = on;
        self
    }

    /// Records adds instead of storing them ([`crate::testing::recording_producer`]).
    pub(crate) fn recording(mut self, recorder: Recorder) -> Self {
        self.recording = Some(recorder);
        self
    }

    /// The producer. Nothing is connected or created until the first add.
    pub fn build(self) -> Producer {
        let what = format!("Redis at {}", self.config.masked_url());
        Producer {
            inner: Arc::new(Inner {
                breaker: Breaker::new(what, self.cooldown),
                spool: Arc::new(SpoolWriter::new(
                    self.config.spool_dir.clone(),
                    self.config.redis_url().map(target_of),
                )),
                config: self.config,
                handlers: self.handlers,
                timeout: self.timeout,
                replay: self.replay,
                auto_replay: self.auto_replay,
                recording: self.recording,
                connecting: tokio::sync::Mutex::new(()),
                redis: RwLock::new(None),
                generation: AtomicU64::new(0),
                queues: Mutex::new(HashMap::new()),
                replaying: AtomicBool::new(false),
                replay_again: AtomicBool::new(false),
                watching: AtomicBool::new(false),
                told_not_configured: Once::new(),
            }),
        }
    }
}

impl Producer {
    /// A producer with the default settings and no inline handlers.
    pub fn new(config: Config) -> Producer {
        Producer::builder(config).build()
    }

    /// Starts configuring a producer.
    pub fn builder(config: Config) -> ProducerBuilder {
        ProducerBuilder {
            config,
            handlers: None,
            timeout: DEFAULT_TIMEOUT,
            cooldown: DEFAULT_COOLDOWN,
            replay: ReplayOptions::default(),
            auto_replay: true,
            recording: None,
        }
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// What it does when Redis is down.
    pub fn fallback(&self) -> Fallback {
        self.inner.config.fallback
    }

    /// Where it spools.
    pub fn spool_dir(&self) -> &Path {
        self.inner.spool.dir()
    }

    /// The circuit breaker's state.
    pub fn breaker(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    /// Adds one job to `queue`; when Redis is down, applies the fallback. Bad input (queue
    /// name, job name, options) is an error whatever the state of Redis.
    pub async fn add<T: Serialize + ?Sized>(
        &self,
        queue: &str,
        name: &str,
        data: &T,
        opts: JobOptions,
    ) -> Result<Produced> {
        let job = NewJob {
            name: name.to_string(),
            data: serde_json::to_value(data)?,
            opts,
        };
        let mut out = self.add_bulk(queue, vec![job]).await?;
        out.pop()
            .ok_or_else(|| Error::Protocol("add returned nothing".into()))
    }

    /// Adds many jobs to `queue`, in chunks of [`crate::BULK_CHUNK`] jobs or about 1 MiB of data
    /// (each timed on its own). If
    /// Redis goes down midway, the jobs not stored yet take the fallback: spooled with one
    /// sync for all, or run inline one after the other (stopping at the first failure).
    pub async fn add_bulk(&self, queue: &str, mut jobs: Vec<NewJob>) -> Result<Vec<Produced>> {
        validate_queue_name(queue)?;
        // here, in the caller's task, so a spooled job keeps it too
        crate::trace::inherit(jobs.iter_mut().map(|j| &mut j.opts.traceparent));
        let data = jobs
            .iter()
            .map(|job| checked_data(job, self.config().caps))
            .collect::<Result<Vec<_>>>()?;
        if let Some(recorder) = &self.inner.recording {
            return Ok(recorder
                .record(queue, jobs)
                .into_iter()
                .map(Produced::Stored)
                .collect());
        }
        if self.fallback() != Fallback::Error {
            for job in &mut jobs {
                job.opts.job_id.get_or_insert_with(new_job_id);
            }
        }
        let mut out = Vec::with_capacity(jobs.len());
        let down = match self.store(queue, &jobs, &data, &mut out).await? {
            None => return Ok(out),
            Some(down) => down,
        };
        let rest = &jobs[out.len()..];
        match self.fallback() {
            Fallback::Error => Err(match down {
                Down::NotConfigured => Error::NotConfigured,
                Down::Unreachable { addr, cause } => Error::RedisDown {
                    addr,
                    reason: format!(
                        "{cause}; JOBQ_FALLBACK=error, so {} job(s) were not added{}",
                        rest.len(),
                        if out.is_empty() {
                            String::new()
                        } else {
                            format!(" ({} before them were stored)", out.len())
                        }
                    ),
                },
            }),
            Fallback::Inline => {
                let reason = down.to_string();
                for job in rest {
                    out.push(self.run_inline(queue, job, &reason).await?);
                }
                Ok(out)
            }
            Fallback::Spool => {
                out.extend(self.spool(queue, rest, &down.to_string()).await?);
                Ok(out)
            }
        }
    }

    /// A handle on `queue` over this producer's connection, for reads (e.g. the job just
    /// added). Connects if needed; fails at once with [`Error::RedisDown`] while the breaker
    /// is open.
    pub async fn queue(&self, name: &str) -> Result<Queue> {
        validate_queue_name(name)?;
        self.through_breaker(self.open_queue(name)).await
    }

    /// Replays the spool dir into Redis now, this producer's own file first (later
    /// spooled jobs then go to a new file). Files other processes hold are left to them.
    /// Fails when Redis cannot be reached; what was replayed until then stays replayed.
    pub async fn replay_spool(&self) -> Result<ReplayReport> {
        let dir = self.spool_dir().to_path_buf();
        if !has_pending(&dir) {
            return Ok(ReplayReport::default());
        }
        let redis = match self.current_redis() {
            // e.g. the background replay a probe's new connection started
            Some(r) => r,
            None => self.connect_for_replay().await?,
        };
        let mut report = ReplayReport::default();
        let spool = self.inner.spool.clone();
        let own = tokio::task::spawn_blocking(move || spool.seal())
            .await
            .unwrap_or(None);
        if let Some(own) = own {
            replay::replay_file(&redis, own, &self.inner.replay, None, &mut report).await?;
        }
        let rest = replay_dir(&redis, &dir, &self.inner.replay, None).await?;
        report.add(&rest);
        Ok(report)
    }

    /// Tries to store `jobs` chunk by chunk, pushing what was stored to `out`. None when
    /// all were stored; why Redis is down otherwise (the jobs from `out.len()` on were not
    /// stored).
    async fn store(
        &self,
        queue: &str,
        jobs: &[NewJob],
        data: &[String],
        out: &mut Vec<Produced>,
    ) -> Result<Option<Down>> {
        let inner = &self.inner;
        if inner.config.redis_url().is_none() {
            inner.told_not_configured.call_once(|| {
                tracing::warn!(
                    "Redis is not configured (set REDIS_URL or REDIS_HOST): jobs use the \
                     {} fallback",
                    inner.config.fallback
                );
            });
            return Ok(Some(Down::NotConfigured));
        }
        let unreachable = |cause: String| {
            Ok(Some(Down::Unreachable {
                addr: inner.config.masked_url(),
                cause,
            }))
        };
        if let Pass::Blocked(cause) = inner.breaker.check() {
            return unreachable(cause);
        }
        for chunk in byte_chunks(data) {
            let attempt = async {
                let q = self.open_queue(queue).await?;
                q.add_encoded(&jobs[chunk.clone()], &data[chunk]).await
            };
            match tokio::time::timeout(inner.timeout, attempt).await {
                Ok(Ok(added)) => {
                    self.succeeded();
                    out.extend(added.into_iter().map(Produced::Stored));
                }
                Ok(Err(e)) if e.is_connection() => {
                    let cause = cause_of(&e);
                    self.went_down(&cause);
                    return unreachable(cause);
                }
                Ok(Err(e)) => {
                    // Redis answered, with an error of its own: it is up
                    self.succeeded();
                    return Err(e);
                }
                Err(_) => {
                    let cause = self.timeout_cause();
                    self.went_down(&cause);
                    return unreachable(cause);
                }
            }
        }
        Ok(None)
    }
}

/// The `spool` fallback.
impl Producer {
    /// Appends `jobs` to this producer's spool file, synced, with one write.
    async fn spool(&self, queue: &str, jobs: &[NewJob], reason: &str) -> Result<Vec<Produced>> {
        let prefix = self.inner.config.prefix();
        let at = now_ms();
        let mut buf = Vec::with_capacity(jobs.len() * 128);
        let mut ids = Vec::with_capacity(jobs.len());
        for job in jobs {
            let id = job.opts.job_id.clone().unwrap_or_else(new_job_id);
            let mut opts = job.opts.clone();
            opts.job_id = Some(id.clone());
            serde_json::to_writer(
                &mut buf,
                &SpoolLineRef {
                    prefix,
                    queue,
                    id: &id,
                    name: &job.name,
                    data: &job.data,
                    opts: &opts,
                    at,
                },
            )?;
            buf.push(b'\n');
            ids.push(id);
        }
        let writer = self.inner.spool.clone();
        let file = tokio::task::spawn_blocking(move || writer.append(&buf))
            .await
            .map_err(|e| Error::Spool {
                path: self.spool_dir().to_path_buf(),
                source: std::io::Error::other(format!("spool task failed: {e}")),
            })??;
        self.watch_recovery();
        Ok(ids
            .into_iter()
            .map(|id| Produced::Spooled {
                id,
                file: file.clone(),
                reason: reason.to_string(),
            })
            .collect())
    }
}
