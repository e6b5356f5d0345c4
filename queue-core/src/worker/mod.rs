//! `Worker`: the consumer runtime. One fetch loop and one finisher per queue share a pool of
//! `concurrency` handler slots (and a claim budget that may run a little ahead of them, see
//! `pace.rs`); every claim and every result is one atomic script call.

mod cancels;
mod dispatch;
mod duty;
mod fetch;
mod finish;
mod flows;
mod heartbeat;
mod held;
mod lease;
mod metrics;
mod outage;
mod pace;
mod reclaim;
mod retention;
mod run;
mod schedule;
mod settings;
mod shared;
mod sweep;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, Semaphore};

pub use crate::handler::{install_panic_hook, BackoffFn, Ctx, Handlers, Job, JobError};
pub use metrics::{AttemptOutcome, WorkerMetrics, DURATION_BUCKETS};
pub use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::connection::Redis;
use crate::error::{Error, Result};
use crate::handler::{erase, ErasedHandler};
use crate::primitives::{CacheStats, Caches};
use crate::queue::Queue;
use crate::validate::validate_queue_name;
use shared::Shared;

pub use heartbeat::TTL_BEATS;
use settings::{Settings, RECORD_AFTER_GRACE};
pub use settings::{
    DEFAULT_FLOW_CHECK_INTERVAL, DEFAULT_GRACE, DEFAULT_HEARTBEAT, DEFAULT_LEASE,
    DEFAULT_MAX_STALLS, DEFAULT_RETENTION_INTERVAL, DEFAULT_SWEEP_INTERVAL,
};

/// Configures a [`Worker`]. Settings are checked by [`WorkerBuilder::build`], before
/// anything connects, so a bad value fails at start-up rather than under load.
///
/// ```
/// use std::time::Duration;
/// use queue_core::{Config, Worker};
///
/// let worker = Worker::builder(Config::default())
///     .queues(["video", "images"])
///     .concurrency(4) // ffmpeg is CPU-bound: about one job per core
///     .lease(Duration::from_secs(60))
///     .grace(Duration::from_secs(120)) // a deploy lets running transcodes finish
///     .build()?;
/// // cancel it to stop `run` gracefully from your own code (a deploy hook, a test)
/// let stop = worker.shutdown_token();
/// # drop(stop);
///
/// assert!(Worker::builder(Config::default()).build().is_err()); // no queues
/// # Ok::<(), queue_core::Error>(())
/// ```
pub struct WorkerBuilder {
    config: Config,
    redis: Option<Redis>,
    settings: Settings,
    handlers: HashMap<String, ErasedHandler>,
    backoffs: HashMap<String, BackoffFn>,
}

impl WorkerBuilder {
    /// The queues to take jobs from.
    pub fn queues<I, S>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// Most handlers running at once, over all queues (default 16).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.settings.concurrency = n;
        self
    }

    /// Time active jobs get to finish after shutdown starts (default 30 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.settings.grace = grace;
        self
    }

    /// Lease of a running job (default 30 s): the worker renews it every third of the
    /// lease; a job whose lease expires (its worker died) is reclaimed by any worker.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.settings.lease = lease;
        self
    }

    /// How many times a job may stall (its lease expire) before it fails for good
    /// (default 1: a job that kills its worker twice is failed, not re-run forever).
    pub fn max_stalls(mut self, n: u32) -> Self {
        self.settings.max_stalls = n;
        self
    }

    /// Pause between batches of the consistency sweep (default 10 s).
    pub fn sweep_interval(mut self, every: Duration) -> Self {
        self.settings.sweep_interval = every;
        self
    }

    /// Pause between passes of the retention janitor (default 5 s).
    pub fn retention_interval(mut self, every: Duration) -> Self {
        self.settings.retention_interval = every;
        self
    }

    /// Pause between passes of the flows' safety net (default 10 s): looking up the
    /// children of parents that have waited a minute since the last look, and committing
    /// or taking back flow jobs left staged by an add that died.
    pub fn flow_check_interval(mut self, every: Duration) -> Self {
        self.settings.flow_check_interval = every;
        self
    }

    /// Time between heartbeats (default 5 s, 100 ms to 1 h): the worker's record, which
    /// `jobq workers` and the dashboard list, lives for [`TTL_BEATS`] of them, so a worker
    /// killed without leaving drops out of listings that long after its last heartbeat.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.settings.heartbeat = every;
        self
    }

    /// Reuses an existing connection instead of connecting at `run`.
    pub fn redis(mut self, redis: Redis) -> Self {
        self.redis = Some(redis);
        self
    }

    /// Registers `f` for jobs named `name`. Job data is decoded into `T`; the returned `R`
    /// is stored as the job's return value.
    pub fn handler<T, R, F, Fut>(mut self, name: impl Into<String>, f: F) -> Self
    where
        T: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(Job<T>, Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, JobError>> + Send + 'static,
    {
        self.handlers.insert(name.into(), erase(f));
        self
    }

    /// Retries failed jobs named `name` after `f(attempt, &error)` instead of their
    /// `backoff` option (`attempt`: the number of the attempt that failed, from 1). A handler
    /// that knows better for one failure still says so with [`JobError::retry_after`],
    /// which wins; attempts are counted as always. A delay over 3650 days fails the job.
    ///
    /// ```
    /// use std::time::Duration;
    /// use queue_core::{Config, Worker};
    ///
    /// // quota errors wait for the next minute, others back off linearly
    /// let builder = Worker::builder(Config::default()).backoff("moderation.text", |attempt, err| {
    ///     if err.message().contains("quota") {
    ///         Duration::from_secs(60)
    ///     } else {
    ///         Duration::from_secs(5 * u64::from(attempt))
    ///     }
    /// });
    /// # drop(builder);
    /// ```
    pub fn backoff<F>(mut self, name: impl Into<String>, f: F) -> Self
    where
        F: Fn(u32, &JobError) -> Duration + Send + Sync + 'static,
    {
        self.backoffs.insert(name.into(), Arc::new(f));
        self
    }

    /// The handlers registered so far, to run the same jobs in-process elsewhere: e.g. a
    /// [`crate::producer::Producer`] whose fallback is `inline`
    /// (`jobq_handlers::register_all(Worker::builder(config))?.handlers()`).
    pub fn handlers(&self) -> Handlers {
        Handlers(Arc::new(self.handlers.clone()))
    }

    /// Checks the settings.
    pub fn build(self) -> Result<Worker> {
        if self.settings.queues.is_empty() {
            return Err(Error::Worker("no queues given".into()));
        }
        for q in &self.settings.queues {
            validate_queue_name(q)?;
        }
        if self.settings.concurrency == 0 {
            return Err(Error::invalid("concurrency", "0: must be at least 1"));
        }
        if self.settings.lease < Duration::from_millis(100) {
            return Err(Error::invalid(
                "lease",
                format!("{:?}: must be at least 100ms", self.settings.lease),
            ));
        }
        let beat = self.settings.heartbeat;
        if beat < Duration::from_millis(100) || beat > Duration::from_secs(3600) {
            return Err(Error::invalid(
                "heartbeat",
                format!("{beat:?}: must be 100ms to 1h"),
            ));
        }
        let mut settings = self.settings;
        settings.queues.dedup();
        let caches = Caches::default();
        Ok(Worker {
            config: self.config,
            redis: self.redis,
            settings,
            handlers: self.handlers,
            backoffs: self.backoffs,
            shutdown: CancellationToken::new(),
            metrics: Arc::new(WorkerMetrics::new(caches.clone())),
            caches,
        })
    }
}

/// A configured worker; [`Worker::run`] or [`Worker::run_until_signal`] start it.
///
/// A worker for the `images` queue with one typed handler: each job's data is decoded into
/// `Resize`, and what the handler returns is stored as the job's result.
///
/// ```no_run
/// use queue_core::{Config, Ctx, Job, JobError, Worker};
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Resize {
///     src: String,
///     width: u32,
/// }
///
/// # async fn demo() -> queue_core::Result<()> {
/// # let config = Config::from_env()?;
/// Worker::builder(config)
///     .queues(["images"])
///     .concurrency(8)
///     .handler("image.resize", |job: Job<Resize>, ctx: Ctx| async move {
///         let Resize { src, width } = job.data;
///         ctx.log(format!("resizing {src} to {width}px")).await?;
///         Ok::<_, JobError>(format!("{src}.{width}w.webp"))
///     })
///     .build()?
///     .run_until_signal() // until SIGINT or SIGTERM, then running jobs get the grace period
///     .await
/// # }
/// ```
pub struct Worker {
    config: Config,
    redis: Option<Redis>,
    settings: Settings,
    handlers: HashMap<String, ErasedHandler>,
    backoffs: HashMap<String, BackoffFn>,
    shutdown: CancellationToken,
    metrics: Arc<WorkerMetrics>,
    caches: Caches,
}

impl Worker {
    /// Starts configuring a worker.
    pub fn builder(config: Config) -> WorkerBuilder {
        WorkerBuilder {
            config,
            redis: None,
            settings: Settings::default(),
            handlers: HashMap::new(),
            backoffs: HashMap::new(),
        }
    }

    /// This worker's metrics (attempts, handler time, running jobs); render them for a
    /// Prometheus endpoint with [`WorkerMetrics::render`].
    pub fn metrics(&self) -> Arc<WorkerMetrics> {
        self.metrics.clone()
    }

    /// The names of the registered handlers, sorted.
    pub fn handler_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.handlers.keys().cloned().collect();
        names.sort();
        names
    }

    /// Cancel this token to shut the worker down gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Hit/miss counters of every cache namespace its handlers have used so far
    /// (`Ctx::cache`), sorted by namespace.
    pub fn cache_stats(&self) -> Vec<(String, CacheStats)> {
        self.caches.stats()
    }

    /// A handle on the handlers' caches that outlives the worker's `run`: take it before
    /// starting the worker to read [`Caches::stats`] (e.g. on a metrics endpoint) while
    /// it runs.
    pub fn caches(&self) -> Caches {
        self.caches.clone()
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) -> Result<()> {
        let token = self.shutdown_token();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received: finishing active jobs");
            token.cancel();
        });
        self.run().await
    }

    /// Runs until the shutdown token is cancelled: stops fetching, lets active jobs finish
    /// within the grace period, records their results, and returns. Jobs still running at
    /// the deadline are left pending, to be reclaimed by a worker once their lease expires.
    /// Redis being unreachable (at start or later) is waited out with backoff, never fatal.
    pub async fn run(self) -> Result<()> {
        // a handler's panic is its attempt's failure, with its backtrace as the stack trace
        install_panic_hook();
        let Some(redis) = self.connect().await? else {
            return Ok(());
        };
        let Some(()) = self.wait_until_loaded(&redis).await else {
            return Ok(());
        };
        let host = hostname();
        let started_at = crate::clock::now_ms();
        let shared = Arc::new(Shared {
            slots: Arc::new(Semaphore::new(self.settings.concurrency)),
            claims: Arc::new(Semaphore::new(self.settings.concurrency)),
            pace: pace::Pace::new(self.settings.concurrency),
            handlers: self.handlers.clone(),
            backoffs: self.backoffs.clone(),
            consumer: consumer_name(&host, started_at),
            metrics: self.metrics.clone(),
            caches: self.caches.clone(),
            spans: Default::default(),
        });
        self.metrics.set_concurrency(self.settings.concurrency);
        let mut tasks = Tasks::default();
        let mut held = Vec::with_capacity(self.settings.queues.len());
        for name in &self.settings.queues {
            let Some(h) = self.start_queue(&redis, name, &shared, &mut tasks).await? else {
                return Ok(());
            };
            held.push((name.clone(), h));
        }
        // beats until every outcome is recorded, then leaves the registry
        let stop_beating = CancellationToken::new();
        let beat = heartbeat::Beat {
            redis: redis.clone(),
            keys: crate::keys::WorkerKeys::new(self.config.prefix()),
            info: heartbeat::identity(
                &shared.consumer,
                &host,
                &self.settings.queues,
                self.settings.concurrency,
                started_at,
                self.settings.heartbeat,
            ),
            held,
            every: self.settings.heartbeat,
        };
        let beating = tokio::spawn(heartbeat::heartbeat_loop(beat, stop_beating.clone()));
        // jobs producers spooled while Redis was down (JOBQ_FALLBACK=spool)
        tasks
            .background
            .push(tokio::spawn(crate::producer::replay_loop(
                redis.clone(),
                self.config.spool_dir.clone(),
                crate::producer::REPLAY_EVERY,
                self.shutdown.clone(),
            )));
        tracing::info!(
            queues = ?self.settings.queues,
            concurrency = self.settings.concurrency,
            lease = ?self.settings.lease,
            consumer = %shared.consumer,
            "worker started"
        );
        self.shutdown.cancelled().await;
        self.stop(&shared, tasks).await;
        stop_beating.cancel();
        let _ = beating.await;
        tracing::info!("worker stopped");
        Ok(())
    }

    /// The connection given to the builder, or a new one (waiting out a Redis that is
    /// down); `None` when shut down meanwhile.
    async fn connect(&self) -> Result<Option<Redis>> {
        match &self.redis {
            Some(r) => Ok(Some(r.clone())),
            None => connect_with_backoff(&self.config, &self.shutdown).await,
        }
    }

    /// Waits while Redis loads its data set (a restarted Redis answers LOADING to all but
    /// INFO), then logs the server and warns about unsafe settings; `None` when shut down
    /// meanwhile. A server whose settings cannot be read is used anyway.
    async fn wait_until_loaded(&self, redis: &Redis) -> Option<()> {
        let info = until_ready(
            format!("waiting for Redis at {} to load its data", redis.addr()),
            &self.shutdown,
            || async {
                let info = redis.server_info().await?;
                if info.loading {
                    return Err(Error::Redis {
                        addr: redis.addr().to_string(),
                        source: redis::RedisError::from((
                            redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading),
                            "Redis is loading the dataset in memory",
                        )),
                    });
                }
                Ok(info)
            },
        )
        .await;
        match info {
            Ok(Some(info)) => {
                tracing::info!(
                    redis = %redis.addr(),
                    version = %info.version,
                    maxmemory_policy = %info.maxmemory_policy,
                    aof = info.aof_enabled,
                    cluster = redis.is_cluster(),
                    "connected to Redis"
                );
                for warning in info.warnings() {
                    tracing::warn!("{warning}");
                }
            }
            Ok(None) => return None,
            Err(e) => tracing::warn!(error = %e, "could not read the Redis server's settings"),
        }
        Some(())
    }

    /// Starts everything of queue `name`: its pipeline (fetch, dispatch, finish, lease
    /// renewal) and its duties. Every start-up step waits out a Redis that is down or
    /// loading, as the loops do. The jobs it holds (for the heartbeat); `None` when shut
    /// down meanwhile.
    async fn start_queue(
        &self,
        redis: &Redis,
        name: &str,
        shared: &Arc<Shared>,
        tasks: &mut Tasks,
    ) -> Result<Option<Arc<held::Held>>> {
        let queue = Queue::open(redis, self.config.prefix(), name).await?;
        let what = format!("starting on queue {name}");
        let Some(()) = until_ready(what.clone(), &self.shutdown, || queue.register()).await? else {
            return Ok(None);
        };
        let Some(blocking) =
            until_ready(what.clone(), &self.shutdown, || redis.blocking_connection()).await?
        else {
            return Ok(None);
        };
        // the claims' own connection: a claim's reply is the largest a worker reads, and the
        // outcomes' calls on the shared connection are not held up while it is parsed
        let Some(claims) =
            until_ready(what, &self.shutdown, || redis.with_own_connection()).await?
        else {
            return Ok(None);
        };
        let claims = crate::store::QueueStore::new(&claims, self.config.prefix(), name);
        let held = Arc::new(held::Held::new(self.settings.concurrency));
        tasks.held.push(held.clone());
        let (tx, rx) = mpsc::unbounded_channel();
        tasks.finishers.push(tokio::spawn(finish::finish_loop(
            queue.clone(),
            held.clone(),
            rx,
            self.settings.lease,
        )));
        let (claimed_tx, claimed_rx) = mpsc::unbounded_channel();
        // ends once the fetch loop has stopped and every claimed job has started
        tasks.background.push(tokio::spawn(dispatch::dispatch_loop(
            queue.clone(),
            shared.clone(),
            claimed_rx,
            tx,
        )));
        // renewed until every outcome is recorded, not just until the signal
        tasks.background.push(tokio::spawn(lease::lease_loop(
            queue.clone(),
            held.clone(),
            shared.consumer.clone(),
            self.settings.lease,
            tasks.stop_leases.clone(),
        )));
        // watched while jobs run, through the grace period too
        tasks.background.push(tokio::spawn(cancels::cancel_loop(
            queue.clone(),
            held.clone(),
            tasks.stop_leases.clone(),
        )));
        for start in DUTIES {
            tasks.background.push(tokio::spawn(start(duty::Duty {
                queue: &queue,
                settings: &self.settings,
                stop: &self.shutdown,
            })));
        }
        tasks.fetchers.push(tokio::spawn(fetch::fetch_loop(
            queue,
            fetch::OwnConnections { claims, blocking },
            shared.clone(),
            held.clone(),
            claimed_tx,
            self.settings.lease,
            self.shutdown.clone(),
        )));
        Ok(Some(held))
    }

    /// The shutdown, after the signal: fetching has stopped; active jobs get the grace
    /// period, then are cancelled (and left for reclaim); outcomes are recorded while Redis
    /// answers, up to a little past the grace period; then leases and duties stop.
    async fn stop(&self, shared: &Shared, tasks: Tasks) {
        let stopping = std::time::Instant::now();
        for f in tasks.fetchers {
            let _ = f.await;
        }
        // every slot back means every handler has finished
        let all = self.settings.concurrency as u32;
        if tokio::time::timeout(self.settings.grace, shared.slots.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(
                grace = ?self.settings.grace,
                "grace period over: jobs still running are left for reclaim"
            );
            for held in &tasks.held {
                held.stop_all();
            }
            let _ = shared.slots.acquire_many(all).await;
        }
        // handlers are done and their senders dropped: finishers drain and stop. Recording
        // waits for Redis, but not past the grace period (and a little more to record what
        // finished at its end): an unreachable Redis must not keep a stopping worker alive.
        let record_until = stopping + self.settings.grace + RECORD_AFTER_GRACE;
        for mut f in tasks.finishers {
            let left = record_until.saturating_duration_since(std::time::Instant::now());
            if tokio::time::timeout(left, &mut f).await.is_err() {
                f.abort();
                tracing::warn!(
                    "Redis is unreachable: outcomes not recorded by the end of the grace \
                     period are left, with their jobs, for reclaim"
                );
            }
        }
        tasks.stop_leases.cancel();
        for b in tasks.background {
            let _ = b.await;
        }
    }
}

/// The duties started for every queue (see `duty.rs`): one line each.
const DUTIES: [duty::Start; 5] = [
    reclaim::start,
    flows::start,
    schedule::start,
    retention::start,
    sweep::start,
];

/// The tasks of a running worker, in the groups its shutdown stops in turn.
#[derive(Default)]
struct Tasks {
    fetchers: Vec<tokio::task::JoinHandle<()>>,
    finishers: Vec<tokio::task::JoinHandle<()>>,
    background: Vec<tokio::task::JoinHandle<()>>,
    /// Cancelled once every outcome is recorded: leases are renewed until then.
    stop_leases: CancellationToken,
    /// The jobs held in each queue: stopped at the end of the grace period.
    held: Vec<Arc<held::Held>>,
}

/// Runs `step` until it succeeds, waiting out (with backoff, logged once) errors that mean
/// Redis is down or still loading; `None` when `stop` fires first. Other errors are
/// returned.
async fn until_ready<T, F, Fut>(
    what: String,
    stop: &CancellationToken,
    mut step: F,
) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut outage = outage::Outage::new(what);
    loop {
        match step().await {
            Ok(v) => {
                outage.recovered();
                return Ok(Some(v));
            }
            Err(e) if e.is_connection() => {
                let wait = outage.failed(&e);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => return Ok(None),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Connects, retrying with exponential backoff (logged once) until it works or `stop`
/// (`None`). No Redis configured is an error at once: there is nothing to wait for.
async fn connect_with_backoff(config: &Config, stop: &CancellationToken) -> Result<Option<Redis>> {
    config.redis_url().ok_or(Error::NotConfigured)?;
    let mut outage = outage::Outage::new(format!("connecting to {}", config.masked_url()));
    loop {
        match Redis::connect(config).await {
            Ok(r) => {
                outage.recovered();
                return Ok(Some(r));
            }
            Err(e) => {
                let wait = outage.failed(&e);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => return Ok(None),
                }
            }
        }
    }
}

/// This machine's host name (`host` when it cannot be read).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}

/// The stable consumer name of a worker started at `start` (ms): host, pid, start time; it
/// is also the worker's id in the registry.
fn consumer_name(host: &str, start: u64) -> String {
    // several workers may share one process (tests, embedded use): add a random tail
    format!(
        "{host}:{}:{start}:{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM: what binaries wait on to stop.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
