//! The storage side of a queue (see [`QueueStore`]).

use crate::coalesce::Coalescer;
use crate::connection::Redis;
use crate::keys::QueueKeys;
use crate::lanes::LaneCache;

/// One queue as its scripts see it: its name, keys, connection and lane cache, and the single
/// adds waiting to share a call. [`crate::Queue`] is a cheap handle on one of these; the
/// scripts (`scripts/`) take it, so they sit below the queue API that calls them.
pub(crate) struct QueueStore {
    pub name: String,
    pub prefix: String,
    /// Whether this handle has put the queue's name in the registry.
    pub registered: std::sync::atomic::AtomicBool,
    pub keys: QueueKeys,
    pub redis: Redis,
    pub lanes: LaneCache,
    /// Single adds waiting to share an `add_job` call (see `coalesce.rs`).
    pub adds: Coalescer,
    /// Woken when this process wrote to the queue's flow outbox (a child finished): the
    /// worker's flow duty delivers it (`worker/flows.rs`).
    pub flows: tokio::sync::Notify,
}

impl QueueStore {
    /// The store of queue `name` (already validated) under `prefix`.
    pub(crate) fn new(redis: &Redis, prefix: &str, name: &str) -> QueueStore {
        QueueStore {
            name: name.to_string(),
            prefix: prefix.to_string(),
            registered: std::sync::atomic::AtomicBool::new(false),
            keys: QueueKeys::new(prefix, name),
            redis: redis.clone(),
            lanes: LaneCache::default(),
            adds: Coalescer::default(),
            flows: tokio::sync::Notify::new(),
        }
    }
}
