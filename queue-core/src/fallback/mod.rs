//! Graceful degradation: what a producer does when Redis is down (`JOBQ_FALLBACK`, SPEC §2).
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
//! breaker (`breaker.rs`): later adds fall back at once, without waiting on Redis, until
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
//! With `spool`, the job's id is drawn before the first try and stored as `job_id`: an add
//! that timed out after Redis stored it, then spooled, is not stored twice by the replay.
//! With `inline`, such a job may run twice (once inline, once from Redis): at least once.
//!
//! ```no_run
//! # use queue_core::*;
//! # use queue_core::fallback::*;
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
mod inline;
mod replay;
mod spool;
#[cfg(test)]
pub(crate) use replay::decode as decode_spool_line;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, RwLock, Weak};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

pub use breaker::{BreakerState, DEFAULT_COOLDOWN};
pub use replay::{
    replay_dir, replay_loop, ReplayOptions, ReplayReport, DEFAULT_REPLAY_CHUNK, REPLAY_EVERY,
};
pub use spool::{has_pending, rejected_files, spool_files, RejectedFile, SpoolFile};

use crate::config::{Config, Fallback};
use crate::connection::Redis;
use crate::duration::format_duration;
use crate::error::{Error, Result};
use crate::job::{new_job_id, Added, JobOptions, NewJob};
use crate::queue::{byte_chunks, check_caps, validate_new_job, Queue};
use crate::validate::validate_queue_name;
use crate::worker::Handlers;
use breaker::{Breaker, Pass};
use spool::{target_of, SpoolLineRef, SpoolWriter};

/// Default time Redis gets to accept a connection or answer one round trip before it
/// counts as down.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// What became of a job given to [`Producer::add`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Produced {
    /// Stored in Redis (the normal case).
    Stored(Added),
    /// Redis was down and the fallback is `inline`: the handler ran in-process.
    Inline {
        /// The job's id (given, or generated).
        id: String,
        /// The handler's return value.
        result: Value,
        /// Why Redis was not used, e.g. `Redis at redis://127.0.0.1:6379 is unreachable
        /// (Connection refused)`.
        reason: String,
    },
    /// Redis was down and the fallback is `spool`: the job is in a local file, to be
    /// stored under this id once Redis is back.
    Spooled {
        /// The job's id (given, or generated), kept by the replay.
        id: String,
        /// The spool file it was appended to.
        file: PathBuf,
        /// Why Redis was not used.
        reason: String,
    },
}

impl Produced {
    /// The job's id.
    pub fn id(&self) -> &str {
        match self {
            Produced::Stored(a) => &a.id,
            Produced::Inline { id, .. } | Produced::Spooled { id, .. } => id,
        }
    }

    /// `stored`, `inline` or `spooled`.
    pub fn mode(&self) -> &'static str {
        match self {
            Produced::Stored(_) => "stored",
            Produced::Inline { .. } => "inline",
            Produced::Spooled { .. } => "spooled",
        }
    }
}

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

struct Inner {
    config: Config,
    handlers: Option<Handlers>,
    timeout: Duration,
    breaker: Breaker,
    replay: ReplayOptions,
    auto_replay: bool,
    /// One connect at a time; the others wait for its outcome.
    connecting: tokio::sync::Mutex<()>,
    /// The current connection and its generation.
    redis: RwLock<Option<(Redis, u64)>>,
    /// Bumped by each new connection and each drop of one (under the `queues` lock), so
    /// a queue opened on a connection since dropped is not cached.
    generation: AtomicU64,
    /// Queue handles on the current connection, by name.
    queues: Mutex<HashMap<String, Queue>>,
    spool: Arc<SpoolWriter>,
    /// Set while a background replay runs (one at a time).
    replaying: AtomicBool,
    /// A replay was asked for while one ran: it runs once more.
    replay_again: AtomicBool,
    /// Set while the recovery task probes Redis for a held spool file.
    watching: AtomicBool,
    told_not_configured: Once,
}

/// Adds jobs to Redis, and applies the configured [`Fallback`] when Redis is down (see the
/// module doc). Cheap to clone (one `Arc`): keep one per process, e.g. in an axum state.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("redis", &self.inner.config.masked_url())
            .field("fallback", &self.inner.config.fallback)
            .field("breaker", &self.inner.breaker.state())
            .finish()
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
        let mut sizes = Vec::with_capacity(jobs.len());
        for job in &jobs {
            validate_new_job(job)?;
            sizes.push(check_caps(job, self.config().caps)?);
        }
        if self.fallback() == Fallback::Spool {
            for job in &mut jobs {
                job.opts.job_id.get_or_insert_with(new_job_id);
            }
        }
        let mut out = Vec::with_capacity(jobs.len());
        let down = match self.store(queue, &jobs, &sizes, &mut out).await? {
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
        if let Pass::Blocked(cause) = self.inner.breaker.check() {
            return Err(Error::RedisDown {
                addr: self.inner.config.masked_url(),
                reason: cause,
            });
        }
        match tokio::time::timeout(self.inner.timeout, self.open_queue(name)).await {
            Ok(Ok(q)) => {
                self.succeeded();
                Ok(q)
            }
            Ok(Err(e)) => {
                if e.is_connection() && !matches!(e, Error::NotConfigured) {
                    self.went_down(&cause_of(&e));
                }
                Err(e)
            }
            Err(_) => {
                let cause = self.timeout_cause();
                self.went_down(&cause);
                Err(Error::RedisDown {
                    addr: self.inner.config.masked_url(),
                    reason: cause,
                })
            }
        }
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

    /// Connects through the breaker; a failure opens it, so the add that follows (the
    /// CLI replays before adding) does not wait on Redis again.
    async fn connect_for_replay(&self) -> Result<Redis> {
        let down = |reason: String| Error::RedisDown {
            addr: self.inner.config.masked_url(),
            reason,
        };
        if let Pass::Blocked(cause) = self.inner.breaker.check() {
            return Err(down(cause));
        }
        match tokio::time::timeout(self.inner.timeout, self.redis()).await {
            Ok(Ok(r)) => {
                self.succeeded();
                Ok(r)
            }
            Ok(Err(e)) => {
                if e.is_connection() && !matches!(e, Error::NotConfigured) {
                    self.went_down(&cause_of(&e));
                }
                Err(e)
            }
            Err(_) => {
                let cause = self.timeout_cause();
                self.went_down(&cause);
                Err(down(cause))
            }
        }
    }

    /// Tries to store `jobs` chunk by chunk, pushing what was stored to `out`. None when
    /// all were stored; why Redis is down otherwise (the jobs from `out.len()` on were not
    /// stored).
    async fn store(
        &self,
        queue: &str,
        jobs: &[NewJob],
        sizes: &[usize],
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
        for chunk in byte_chunks(jobs, sizes) {
            let attempt = async {
                let q = self.open_queue(queue).await?;
                q.add_chunk(chunk).await
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

    fn timeout_cause(&self) -> String {
        format!("no answer within {}", format_duration(self.inner.timeout))
    }

    /// Opens the breaker and drops the connection: the next probe connects anew.
    fn went_down(&self, cause: &str) {
        self.inner.breaker.failed(cause);
        let mut queues = self.inner.queues.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        *self.inner.redis.write().unwrap_or_else(|e| e.into_inner()) = None;
        queues.clear();
    }

    /// Redis answered: closes the breaker, and when that ends an outage, frees this
    /// producer's spool file for replay (see the module doc).
    fn succeeded(&self) {
        if self.inner.breaker.succeeded() {
            self.recovered();
        }
    }

    /// Seals this producer's spool file (a later outage starts a new one), releasing its
    /// lock for any replayer, and replays it here too unless auto-replay is off.
    fn recovered(&self) {
        if self.inner.auto_replay {
            // the replay seals the file first
            self.spawn_replay();
        } else {
            let spool = self.inner.spool.clone();
            tokio::task::spawn_blocking(move || drop(spool.seal()));
        }
    }

    /// While this producer holds a spool file, probes Redis after each cool-down, adds or
    /// not: an idle producer must not keep its spooled jobs out of Redis. Holds the
    /// producer weakly, so dropping it ends the task (and releases the file).
    fn watch_recovery(&self) {
        if self.inner.config.redis_url().is_none()
            || self.inner.watching.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = self.inner.breaker.cooldown().max(Duration::from_millis(10));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else { return };
                let producer = Producer { inner };
                if !producer.inner.spool.is_open() {
                    producer.inner.watching.store(false, Ordering::Release);
                    // a file opened just now would find `watching` still set: look again
                    if !producer.inner.spool.is_open()
                        || producer.inner.watching.swap(true, Ordering::AcqRel)
                    {
                        return;
                    }
                }
                producer.probe_for_spool().await;
            }
        });
    }

    /// One step of the recovery task: probes Redis when the breaker lets it.
    async fn probe_for_spool(&self) {
        match self.inner.breaker.check() {
            Pass::Blocked(_) => {}
            // closed while a late add still spooled: free that file too
            Pass::Go => self.recovered(),
            Pass::Probe => {
                let ping = async { self.redis().await?.ping().await };
                match tokio::time::timeout(self.inner.timeout, ping).await {
                    Ok(Ok(_)) => self.succeeded(),
                    Ok(Err(e)) if e.is_connection() => self.went_down(&cause_of(&e)),
                    // Redis answered, with an error of its own: it is up
                    Ok(Err(_)) => self.succeeded(),
                    Err(_) => {
                        let cause = self.timeout_cause();
                        self.went_down(&cause);
                    }
                }
            }
        }
    }

    async fn open_queue(&self, name: &str) -> Result<Queue> {
        let cached = self
            .inner
            .queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned();
        if let Some(q) = cached {
            return Ok(q);
        }
        let (redis, generation) = self.connection().await?;
        let q = Queue::open(&redis, self.inner.config.prefix(), name).await?;
        let mut queues = self.inner.queues.lock().unwrap_or_else(|e| e.into_inner());
        // the connection was dropped (or replaced) meanwhile: use it once, do not keep it
        if self.inner.generation.load(Ordering::Acquire) != generation {
            return Ok(q);
        }
        Ok(queues.entry(name.to_string()).or_insert(q).clone())
    }

    /// The current connection, or a new one (one attempt). A new connection starts a
    /// background replay of the spool dir when it holds files (see the module doc).
    async fn redis(&self) -> Result<Redis> {
        Ok(self.connection().await?.0)
    }

    /// [`Producer::redis`] with the connection's generation.
    async fn connection(&self) -> Result<(Redis, u64)> {
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let _one = self.inner.connecting.lock().await;
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let redis = Redis::connect_once(&self.inner.config).await?;
        let generation = {
            let _queues = self.inner.queues.lock().unwrap_or_else(|e| e.into_inner());
            let g = self.inner.generation.fetch_add(1, Ordering::AcqRel) + 1;
            *self.inner.redis.write().unwrap_or_else(|e| e.into_inner()) = Some((redis.clone(), g));
            g
        };
        if self.inner.auto_replay && has_pending(self.spool_dir()) {
            self.spawn_replay();
        }
        Ok((redis, generation))
    }

    fn current(&self) -> Option<(Redis, u64)> {
        self.inner
            .redis
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn current_redis(&self) -> Option<Redis> {
        self.current().map(|(r, _)| r)
    }

    /// Replays the spool dir in the background, one replay at a time per producer; one
    /// asked for while another runs follows it (the file it is for may be newly sealed).
    fn spawn_replay(&self) {
        let inner = &self.inner;
        inner.replay_again.store(true, Ordering::Release);
        if inner.replaying.swap(true, Ordering::AcqRel) {
            return;
        }
        let producer = self.clone();
        tokio::spawn(async move {
            let inner = &producer.inner;
            loop {
                while inner.replay_again.swap(false, Ordering::AcqRel) {
                    match producer.replay_spool().await {
                        Ok(r) if r.sent() + r.skipped > 0 => tracing::info!(
                            dir = %producer.spool_dir().display(),
                            files = r.files,
                            stored = r.stored,
                            duplicates = r.duplicates,
                            skipped = r.skipped,
                            "replayed spooled jobs into Redis"
                        ),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "spool replay stopped; retried later")
                        }
                    }
                }
                inner.replaying.store(false, Ordering::Release);
                // asked again between the last check and the store above
                if !inner.replay_again.load(Ordering::Acquire)
                    || inner.replaying.swap(true, Ordering::AcqRel)
                {
                    return;
                }
            }
        });
    }

    async fn run_inline(&self, queue: &str, job: &NewJob, reason: &str) -> Result<Produced> {
        let id = job.opts.job_id.clone().unwrap_or_else(new_job_id);
        let Some(handlers) = &self.inner.handlers else {
            return Err(Error::Inline {
                id,
                name: job.name.clone(),
                message: format!(
                    "{reason} and JOBQ_FALLBACK=inline, but this producer has no handlers \
                     to run jobs with"
                ),
            });
        };
        let result =
            inline::run_inline(handlers, queue, &id, &job.name, &job.data, &job.opts).await?;
        Ok(Produced::Inline {
            id,
            result,
            reason: reason.to_string(),
        })
    }

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

/// The cause of a connection error, without the address (said once by the caller).
fn cause_of(e: &Error) -> String {
    match e {
        Error::Redis { source, .. } => source.to_string(),
        Error::RedisDown { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

pub(crate) use crate::clock::now_ms;
