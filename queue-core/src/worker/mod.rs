//! `Worker`: the consumer runtime. One fetch loop and one finisher per queue share a pool of
//! `concurrency` handler slots (and a claim budget that may run a little ahead of them, see
//! `pace.rs`); every claim and every result is one atomic script call.

mod ctx;
mod dispatch;
mod fetch;
mod finish;
mod handler;
mod held;
mod lease;
mod metrics;
mod outage;
mod pace;
mod panic;
mod reclaim;
mod release;
mod retention;
mod run;
pub(crate) use run::{guarded_call, panic_message, Stop};
mod schedule;
mod sweep;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, Semaphore};

pub use ctx::Ctx;
pub(crate) use ctx::InlineUnavailable;
pub(crate) use handler::RawJob;
pub use handler::{Handlers, Job, JobError};
pub use metrics::{AttemptOutcome, WorkerMetrics, DURATION_BUCKETS};
pub use panic::install_panic_hook;
pub use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::connection::Redis;
use crate::error::{Error, Result};
use crate::primitives::{CacheStats, Caches};
use crate::queue::Queue;
use crate::validate::validate_queue_name;
use handler::{erase, ErasedHandler};

/// Default time active jobs get to finish after a shutdown signal.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// How long past the grace period a stopping worker still tries to record outcomes.
const RECORD_AFTER_GRACE: Duration = Duration::from_secs(5);
/// Default lease: a job whose worker has not renewed it for this long is reclaimed.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// Default number of stalls (expired leases) after which a job fails instead of re-running.
pub const DEFAULT_MAX_STALLS: u32 = 1;
/// Default pause between two batches of the consistency sweep.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// Default pause between two passes of the retention janitor.
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(5);

/// What every task of a running worker shares.
pub(crate) struct Shared {
    /// Handler slots: `concurrency` permits, one per running handler.
    pub slots: Arc<Semaphore>,
    /// Claim budget: one permit per job held, from its claim to its outcome (`concurrency`
    /// plus what `pace` claims ahead).
    pub claims: Arc<Semaphore>,
    pub pace: pace::Pace,
    pub handlers: HashMap<String, ErasedHandler>,
    /// Stable consumer name: host, pid, start time.
    pub consumer: String,
    /// Cancelled when the grace period ends: running handlers are told to stop.
    pub cancel_jobs: CancellationToken,
    pub metrics: Arc<WorkerMetrics>,
    /// Handlers' caches by namespace (`Ctx::cache`).
    pub caches: Caches,
}

/// Configures a [`Worker`].
pub struct WorkerBuilder {
    config: Config,
    redis: Option<Redis>,
    queues: Vec<String>,
    concurrency: usize,
    grace: Duration,
    lease: Duration,
    max_stalls: u32,
    sweep_interval: Duration,
    retention_interval: Duration,
    handlers: HashMap<String, ErasedHandler>,
}

impl WorkerBuilder {
    /// The queues to take jobs from.
    pub fn queues<I, S>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// Most handlers running at once, over all queues (default 16).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Time active jobs get to finish after shutdown starts (default 30 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Lease of a running job (default 30 s): the worker renews it every third of the
    /// lease; a job whose lease expires (its worker died) is reclaimed by any worker.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How many times a job may stall (its lease expire) before it fails for good
    /// (default 1: a job that kills its worker twice is failed, not re-run forever).
    pub fn max_stalls(mut self, n: u32) -> Self {
        self.max_stalls = n;
        self
    }

    /// Pause between batches of the consistency sweep (default 10 s).
    pub fn sweep_interval(mut self, every: Duration) -> Self {
        self.sweep_interval = every;
        self
    }

    /// Pause between passes of the retention janitor (default 5 s).
    pub fn retention_interval(mut self, every: Duration) -> Self {
        self.retention_interval = every;
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

    /// The handlers registered so far, to run the same jobs in-process elsewhere: e.g. a
    /// [`crate::fallback::Producer`] whose fallback is `inline`
    /// (`jobq_handlers::register_all(Worker::builder(config))?.handlers()`).
    pub fn handlers(&self) -> Handlers {
        Handlers(Arc::new(self.handlers.clone()))
    }

    /// Checks the settings.
    pub fn build(self) -> Result<Worker> {
        if self.queues.is_empty() {
            return Err(Error::Worker("no queues given".into()));
        }
        for q in &self.queues {
            validate_queue_name(q)?;
        }
        if self.concurrency == 0 {
            return Err(Error::invalid("concurrency", "0: must be at least 1"));
        }
        if self.lease < Duration::from_millis(100) {
            return Err(Error::invalid(
                "lease",
                format!("{:?}: must be at least 100ms", self.lease),
            ));
        }
        let mut queues = self.queues;
        queues.dedup();
        let caches = Caches::default();
        Ok(Worker {
            config: self.config,
            redis: self.redis,
            queues,
            concurrency: self.concurrency,
            grace: self.grace,
            lease: self.lease,
            max_stalls: self.max_stalls,
            sweep_interval: self.sweep_interval,
            retention_interval: self.retention_interval,
            handlers: self.handlers,
            shutdown: CancellationToken::new(),
            metrics: Arc::new(WorkerMetrics::new(caches.clone())),
            caches,
        })
    }
}

/// A configured worker; [`Worker::run`] or [`Worker::run_until_signal`] start it.
pub struct Worker {
    config: Config,
    redis: Option<Redis>,
    queues: Vec<String>,
    concurrency: usize,
    grace: Duration,
    lease: Duration,
    max_stalls: u32,
    sweep_interval: Duration,
    retention_interval: Duration,
    handlers: HashMap<String, ErasedHandler>,
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
            queues: Vec::new(),
            concurrency: 16,
            grace: DEFAULT_GRACE,
            lease: DEFAULT_LEASE,
            max_stalls: DEFAULT_MAX_STALLS,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            retention_interval: DEFAULT_RETENTION_INTERVAL,
            handlers: HashMap::new(),
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
        let redis = match self.redis {
            Some(r) => r,
            None => match connect_with_backoff(&self.config, &self.shutdown).await? {
                Some(r) => r,
                None => return Ok(()),
            },
        };
        // a restarted Redis answers LOADING to everything but INFO until its data is back
        let info = match until_ready(
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
        .await
        {
            Ok(Some(info)) => Some(info),
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the Redis server's settings");
                None
            }
        };
        if let Some(info) = info {
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
        let shared = Arc::new(Shared {
            slots: Arc::new(Semaphore::new(self.concurrency)),
            claims: Arc::new(Semaphore::new(self.concurrency)),
            pace: pace::Pace::new(self.concurrency),
            handlers: self.handlers,
            consumer: consumer_name(),
            cancel_jobs: CancellationToken::new(),
            metrics: self.metrics.clone(),
            caches: self.caches.clone(),
        });
        self.metrics.set_concurrency(self.concurrency);
        // fetch, reclaim and sweep stop at the signal; leases are renewed until every
        // outcome is recorded
        let stop_leases = CancellationToken::new();
        let mut fetchers = Vec::new();
        let mut finishers = Vec::new();
        let mut background = Vec::new();
        for name in &self.queues {
            let queue = Queue::open(&redis, self.config.prefix(), name).await?;
            // every start-up step waits out a Redis that is down or loading, as the loops do
            let what = format!("starting on queue {name}");
            let Some(()) = until_ready(what.clone(), &self.shutdown, || queue.register()).await?
            else {
                return Ok(());
            };
            let Some(blocking) =
                until_ready(what, &self.shutdown, || redis.blocking_connection()).await?
            else {
                return Ok(());
            };
            let held = Arc::new(held::Held::default());
            let (tx, rx) = mpsc::unbounded_channel();
            finishers.push(tokio::spawn(finish::finish_loop(
                queue.clone(),
                held.clone(),
                rx,
            )));
            let (claimed_tx, claimed_rx) = mpsc::unbounded_channel();
            // ends once the fetch loop has stopped and every claimed job has started
            background.push(tokio::spawn(dispatch::dispatch_loop(
                queue.clone(),
                shared.clone(),
                claimed_rx,
                tx,
            )));
            background.push(tokio::spawn(lease::lease_loop(
                queue.clone(),
                held.clone(),
                shared.consumer.clone(),
                self.lease,
                stop_leases.clone(),
            )));
            background.push(tokio::spawn(reclaim::reclaim_loop(
                queue.clone(),
                self.lease,
                self.max_stalls,
                self.shutdown.clone(),
            )));
            background.push(tokio::spawn(schedule::schedule_loop(
                queue.clone(),
                self.shutdown.clone(),
            )));
            background.push(tokio::spawn(retention::retention_loop(
                queue.clone(),
                self.retention_interval,
                self.shutdown.clone(),
            )));
            background.push(tokio::spawn(sweep::sweep_loop(
                queue.clone(),
                self.sweep_interval,
                self.shutdown.clone(),
            )));
            fetchers.push(tokio::spawn(fetch::fetch_loop(
                queue,
                shared.clone(),
                held,
                blocking,
                claimed_tx,
                self.shutdown.clone(),
            )));
        }
        // jobs producers spooled while Redis was down (JOBQ_FALLBACK=spool)
        background.push(tokio::spawn(crate::fallback::replay_loop(
            redis.clone(),
            self.config.spool_dir.clone(),
            crate::fallback::REPLAY_EVERY,
            self.shutdown.clone(),
        )));
        tracing::info!(
            queues = ?self.queues,
            concurrency = self.concurrency,
            lease = ?self.lease,
            consumer = %shared.consumer,
            "worker started"
        );
        self.shutdown.cancelled().await;
        let stopping = std::time::Instant::now();
        for f in fetchers {
            let _ = f.await;
        }
        // every slot back means every handler has finished
        let all = self.concurrency as u32;
        if tokio::time::timeout(self.grace, shared.slots.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(
                grace = ?self.grace,
                "grace period over: jobs still running are left for reclaim"
            );
            shared.cancel_jobs.cancel();
            let _ = shared.slots.acquire_many(all).await;
        }
        // handlers are done and their senders dropped: finishers drain and stop. Recording
        // waits for Redis, but not past the grace period (and a little more to record what
        // finished at its end): an unreachable Redis must not keep a stopping worker alive.
        let record_until = stopping + self.grace + RECORD_AFTER_GRACE;
        for mut f in finishers {
            let left = record_until.saturating_duration_since(std::time::Instant::now());
            if tokio::time::timeout(left, &mut f).await.is_err() {
                f.abort();
                tracing::warn!(
                    "Redis is unreachable: outcomes not recorded by the end of the grace \
                     period are left, with their jobs, for reclaim"
                );
            }
        }
        stop_leases.cancel();
        for b in background {
            let _ = b.await;
        }
        tracing::info!("worker stopped");
        Ok(())
    }
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

fn consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
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
