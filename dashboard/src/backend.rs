//! The dashboard's side of Redis: one connection, made in the background (the dashboard
//! starts and answers whether or not Redis is up, and keeps retrying), and one cached
//! [`Queue`] handle per queue, so each keeps its lane cache warm and a count is one round
//! trip. Every call a request makes is bounded by [`REDIS_DEADLINE`]: a Redis that stopped
//! answering turns into a 503 with a message, never a hung page.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use queue_core::{list_queues, Config, FlowProducer, Queue, Redis};
use tokio::sync::{watch, OnceCell};

use crate::error::AppError;

/// Longest a request waits for Redis.
pub const REDIS_DEADLINE: Duration = Duration::from_secs(5);

/// The Redis connection (once made) and the queue handles.
pub struct Backend {
    config: Config,
    redis: OnceCell<Redis>,
    /// Whether the first connection attempt has ended (either way).
    tried: watch::Sender<bool>,
    queues: Mutex<HashMap<String, Queue>>,
    /// The cancels walking a flow in the background (see [`Backend::cancel_walking_on`]).
    walks: Walks,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("redis", &self.config.masked_url())
            .field("connected", &self.redis.initialized())
            .finish()
    }
}

impl Backend {
    /// A backend for `config`, not connected yet (see [`Backend::connect_until_up`]).
    pub fn new(config: Config) -> Self {
        Backend {
            config,
            redis: OnceCell::new(),
            tried: watch::Sender::new(false),
            queues: Mutex::default(),
            walks: Walks::default(),
        }
    }

    /// Waits until the first connection attempt has ended, connected or not (at once when
    /// Redis is not configured), so a dashboard that starts next to a running Redis never
    /// answers "not connected yet".
    pub async fn first_attempt(&self) {
        if !self.configured() {
            return;
        }
        let mut rx = self.tried.subscribe();
        let _ = rx.wait_for(|tried| *tried).await;
    }

    /// Whether a Redis is configured at all.
    pub fn configured(&self) -> bool {
        self.config.redis_url().is_some()
    }

    /// The key prefix shown.
    pub fn prefix(&self) -> &str {
        self.config.prefix()
    }

    /// The Redis URL with its password masked (or `not configured`).
    pub fn masked_url(&self) -> String {
        self.config.masked_url()
    }

    /// Connects, retrying with backoff while Redis is unreachable; returns once connected
    /// (never, when Redis is not configured). Once made, the connection reconnects by
    /// itself.
    pub async fn connect_until_up(&self) {
        if !self.configured() {
            return std::future::pending().await;
        }
        let mut delay = Duration::from_millis(200);
        let mut reported = false;
        loop {
            match Redis::connect(&self.config).await {
                Ok(redis) => {
                    tracing::info!("connected to Redis at {}", redis.addr());
                    let _ = self.redis.set(redis);
                    self.tried.send_replace(true);
                    return;
                }
                Err(e) => {
                    self.tried.send_replace(true);
                    if !reported {
                        tracing::warn!("Redis is unreachable ({e}); retrying in the background");
                        reported = true;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// The connection, or why there is none.
    pub fn redis(&self) -> Result<&Redis, AppError> {
        if !self.configured() {
            return Err(AppError::NotConfigured);
        }
        self.redis.get().ok_or_else(|| {
            AppError::Unavailable(format!(
                "not connected to Redis at {} yet: retrying",
                self.masked_url()
            ))
        })
    }

    /// A handle on queue `name` (the name is checked: a bad one is a 400 naming it).
    pub async fn queue(&self, name: &str) -> Result<Queue, AppError> {
        if let Some(q) = self
            .queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(q.clone());
        }
        let redis = self.redis()?;
        let q = Queue::open(redis, self.prefix(), name).await?;
        self.queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), q.clone());
        Ok(q)
    }

    /// A flow producer on the connection, under the dashboard's prefix. Flows are never
    /// spooled: while Redis is down this is the 503 of [`Backend::redis`].
    pub fn flows(&self) -> Result<FlowProducer, AppError> {
        Ok(FlowProducer::new(self.redis()?, self.prefix()))
    }

    /// A handle on a queue that exists (is registered): 404 otherwise, so that looking at or
    /// steering a mistyped queue does not create it.
    pub async fn existing_queue(&self, name: &str) -> Result<Queue, AppError> {
        queue_core::internal::validate::validate_queue_name(name)?;
        if !self.queue_names().await?.iter().any(|q| q == name) {
            return Err(AppError::NotFound(format!(
                "queue {name:?} not found under prefix {:?}",
                self.prefix()
            )));
        }
        self.queue(name).await
    }

    /// Every registered queue, sorted. Handles of queues that are gone are dropped.
    pub async fn queue_names(&self) -> Result<Vec<String>, AppError> {
        let redis = self.redis()?;
        let names = deadline(list_queues(redis, self.prefix())).await?;
        self.queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|q, _| names.binary_search(q).is_ok());
        Ok(names)
    }
}

/// Runs a queue-core call within [`REDIS_DEADLINE`].
pub async fn deadline<T>(fut: impl Future<Output = queue_core::Result<T>>) -> Result<T, AppError> {
    match tokio::time::timeout(REDIS_DEADLINE, fut).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(AppError::Unavailable(format!(
            "Redis did not answer within {}",
            queue_core::format_duration(REDIS_DEADLINE)
        ))),
    }
}

/// What a dashboard cancel did: [`Queue::cancel`], or, when walking a big flow's children
/// outlasts [`REDIS_DEADLINE`], the job cancelled with the walk going on in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelDone {
    /// The cancel finished within the deadline.
    Finished(queue_core::Cancelled),
    /// The job is cancelled; its flow's children are still being cancelled.
    Walking,
}

impl Backend {
    /// Cancels job `id` of `q`. The cancel runs in a task of its own, so a flow whose children
    /// take longer than a request may wait to walk is still walked to its end, in the
    /// background, instead of being cut off at the deadline with its unreached children left
    /// to run. Within the deadline it answers as [`Queue::cancel`] does. While a walk of the
    /// job's flow goes on, cancelling the cancelled job again answers that it is walking, at
    /// once: a second walk would redo the first one's work, one call per child.
    pub async fn cancel_walking_on(&self, q: &Queue, id: &str) -> Result<CancelDone, AppError> {
        let key = (q.name().to_string(), id.to_string());
        if self.walks.counts().contains_key(&key) && cancelled(q, id).await {
            return Ok(CancelDone::Walking);
        }
        let (q2, id2) = (q.clone(), id.to_string());
        let walking = Walking::new(&self.walks, key);
        let mut walk = tokio::spawn(async move {
            // (listed while the walk runs: dropped at its end, or when it is aborted)
            let _walking = walking;
            let done = q2.cancel(&id2).await;
            // (read by the request while it waits; logged here for a walk it left running)
            match &done {
                Ok(c) => {
                    tracing::debug!(queue = %q2.name(), id = %id2, outcome = ?c, "cancel done")
                }
                Err(e) => tracing::warn!(queue = %q2.name(), id = %id2, error = %e,
                    "cancelling a job's flow stopped before its last child: cancel it again"),
            }
            done
        });
        match tokio::time::timeout(REDIS_DEADLINE, &mut walk).await {
            Ok(Ok(done)) => Ok(CancelDone::Finished(done?)),
            Ok(Err(e)) => Err(AppError::Internal(format!("the cancel failed: {e}"))),
            // the walk goes on; the job itself is cancelled if Redis answered its first call
            Err(_) => {
                if cancelled(q, id).await {
                    return Ok(CancelDone::Walking);
                }
                // told it failed: it must not take effect later
                walk.abort();
                Err(AppError::Unavailable(format!(
                    "Redis did not answer within {}",
                    queue_core::format_duration(REDIS_DEADLINE)
                )))
            }
        }
    }
}

/// Whether job `id` of `q` is cancelled, as Redis answers within the deadline.
async fn cancelled(q: &Queue, id: &str) -> bool {
    matches!(
        deadline(q.get_job(id)).await,
        Ok(Some(j)) if j.state == queue_core::JobState::Cancelled
    )
}

/// The cancels running, by (queue, job): how many of each.
#[derive(Debug, Clone, Default)]
struct Walks(Arc<Mutex<HashMap<(String, String), usize>>>);

impl Walks {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), usize>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One cancel listed in [`Walks`] while it lives.
struct Walking {
    walks: Walks,
    key: (String, String),
}

impl Walking {
    fn new(walks: &Walks, key: (String, String)) -> Self {
        *walks.counts().entry(key.clone()).or_default() += 1;
        Walking {
            walks: walks.clone(),
            key,
        }
    }
}

impl Drop for Walking {
    fn drop(&mut self) {
        let mut counts = self.walks.counts();
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Shared handle.
pub type SharedBackend = Arc<Backend>;
