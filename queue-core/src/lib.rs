//! # queue-core
//!
//! jobq's engine: a background job queue over Redis. Producers add jobs with a [`Queue`];
//! a [`Worker`] runs them with retries, delays and priorities. Every state change is one
//! atomic Lua script; all keys of a queue share one hash tag (`{prefix:queue}`). Handlers
//! also get a [`Cache`], a [`Lock`] and a [`RateLimiter`] over the same connection.
//! A [`Producer`] adds jobs and keeps working when Redis is down: it runs them inline,
//! spools them to disk for replay, or fails, as `JOBQ_FALLBACK` says ([`producer`]).
//!
//! ```no_run
//! # use queue_core::*;
//! # async fn demo() -> Result<()> {
//! let q = Queue::connect(Config::from_env()?, "video").await?;
//! q.add("video.transcode", &serde_json::json!({"src": "a.mp4"}), JobOptions::new().attempts(3))
//!     .await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod backoff;
pub mod cancel;
mod coalesce;
pub mod config;
pub mod connection;
pub mod control;
pub mod duration;
pub mod error;
pub mod events;
pub mod flow;
pub mod groups;
pub mod handler;
pub mod job;
mod lanes;
pub mod limits;
pub mod listing;
pub mod primitives;
pub mod processing;
pub mod producer;
#[cfg(test)]
mod proptests;
pub mod queue;
mod scan;
pub mod schedule;
mod scripts;
pub mod search;
pub mod server;
mod stats;
mod store;
pub mod testing;
pub mod trace;
mod typed;
pub mod worker;
pub mod workers;

#[doc(hidden)]
pub mod internal;
pub(crate) use internal::{clock, keys, text, validate};

pub use cancel::Cancelled;
pub use config::{Config, Fallback, JobCaps};
pub use connection::{Conn, Redis};
pub use duration::{format_duration, parse_duration};
pub use error::{Error, ErrorKind, Result};
pub use events::{EventFollower, QueueEvent, StartAt};
pub use flow::{ChildOutcome, ChildState, FlowJob, FlowProducer, FlowTree};
pub use groups::{
    GroupInfo, GroupLimitChange, GroupLimited, GroupLimits, GroupLimitsView, GroupsView,
};
pub use job::{
    Added, Backoff, BackoffKind, Debounce, Dedup, JobInfo, JobOptions, JobRef, JobState, NewJob,
    OnChildFailure, Retention,
};
pub use limits::Limits;
pub use listing::ListOrder;
pub use primitives::{Cache, CacheStats, Cached, Lock, LockGuard, RateDecision, RateLimiter};
pub use processing::{ProcessingTime, PROCESSING_BUCKETS_MS};
pub use producer::{Produced, Producer, ProducerBuilder};
pub use queue::{all_queue_stats, list_queues, stats_of, Counts, Queue, QueueStats, BULK_CHUNK};
pub use schedule::{CorruptSchedule, Repeat, Schedule, ScheduleInfo, ScheduleListing};
pub use scripts::EVENTS_MAXLEN;
pub use search::{SearchFilter, SearchPage};
pub use server::{Aof, Keyspace, Memory, NodeOverview, RedisOverview, ServerInfo};
pub use typed::TypedJob;
pub use worker::{
    install_panic_hook, wait_for_signal, BackoffFn, Ctx, Handlers, Job, JobError, Worker,
    WorkerBuilder, WorkerMetrics,
};
pub use workers::{list_workers, RunningJob, WorkerInfo};

/// The README's Rust examples, compiled as doc tests of this crate so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
