//! The producer handle ([`Producer`], cheap to clone), the state its clones share, and what
//! becomes of an added job ([`Produced`]). Its methods live with what they do: adding in
//! `mod.rs`, the connection and breaker in `recovery.rs`, the fallbacks in `inline.rs` and
//! `spool.rs`.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, Once, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::breaker::Breaker;
use super::replay::ReplayOptions;
use super::spool::SpoolWriter;
use crate::config::Config;
use crate::connection::Redis;
use crate::handler::Handlers;
use crate::job::Added;
use crate::queue::Queue;

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

pub(super) struct Inner {
    pub(super) config: Config,
    pub(super) handlers: Option<Handlers>,
    pub(super) timeout: Duration,
    pub(super) breaker: Breaker,
    pub(super) replay: ReplayOptions,
    pub(super) auto_replay: bool,
    /// A test's recording producer: adds are recorded, never stored.
    pub(super) recording: Option<super::recorder::Recorder>,
    /// One connect at a time; the others wait for its outcome.
    pub(super) connecting: tokio::sync::Mutex<()>,
    /// The current connection and its generation.
    pub(super) redis: RwLock<Option<(Redis, u64)>>,
    /// Bumped by each new connection and each drop of one (under the `queues` lock), so
    /// a queue opened on a connection since dropped is not cached.
    pub(super) generation: AtomicU64,
    /// Queue handles on the current connection, by name.
    pub(super) queues: Mutex<HashMap<String, Queue>>,
    pub(super) spool: Arc<SpoolWriter>,
    /// Set while a background replay runs (one at a time).
    pub(super) replaying: AtomicBool,
    /// A replay was asked for while one ran: it runs once more.
    pub(super) replay_again: AtomicBool,
    /// Set while the recovery task probes Redis for a held spool file.
    pub(super) watching: AtomicBool,
    pub(super) told_not_configured: Once,
}

/// Adds jobs to Redis, and applies the configured [`Fallback`](crate::Fallback) when Redis
/// is down (see the module doc). Cheap to clone (one `Arc`): keep one per process, e.g. in
/// an axum state.
///
/// An upload endpoint asking for a thumbnail: with a job id, a retried request adds the
/// job once; what the client is told depends on where the job went.
///
/// ```no_run
/// use queue_core::{Config, Ctx, Job, JobError, JobOptions, Produced, Producer, Worker};
/// # async fn demo() -> queue_core::Result<()> {
/// # let config = Config::from_env()?;
///
/// // the workers' handlers, for the `inline` fallback
/// let handlers = Worker::builder(config.clone())
///     .handler("image.thumbnail", |job: Job<String>, _ctx: Ctx| async move {
///         Ok::<_, JobError>(format!("{}.thumb.jpg", job.data))
///     })
///     .handlers();
/// let producer = Producer::builder(config).handlers(handlers).build();
///
/// let opts = JobOptions::new().attempts(3).job_id("thumb:upload-881");
/// let reply = match producer.add("images", "image.thumbnail", "uploads/881.png", opts).await? {
///     Produced::Stored(added) if added.duplicate => format!("already queued: {}", added.id),
///     Produced::Stored(added) => format!("queued: {}", added.id),
///     Produced::Inline { result, .. } => format!("done: {result}"),
///     Produced::Spooled { id, .. } => format!("queued (once Redis is back): {id}"),
/// };
/// # let _ = reply;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Producer {
    pub(super) inner: Arc<Inner>,
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
