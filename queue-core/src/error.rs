//! Errors of queue-core. Every message names the value that was wrong.

use std::fmt;

/// What can go wrong in queue-core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value (environment variable or flag) is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Neither `REDIS_URL` nor `REDIS_HOST` is set.
    #[error("Redis is not configured: set REDIS_URL (or REDIS_HOST)")]
    NotConfigured,
    /// A queue name outside 1–128 chars of `[A-Za-z0-9._-]`, or `.` or `..`.
    #[error("invalid queue name {:?}: use 1-128 characters of A-Z a-z 0-9 . _ - (not . or ..)", crate::text::clip(.0, 200))]
    InvalidQueueName(String),
    /// A job option or argument is out of range.
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// which value
        what: &'static str,
        /// what is wrong with it
        detail: String,
    },
    /// A duration string that does not parse (`10s`, `500ms`, `1h` …).
    #[error("invalid duration {:?}: use a number with a unit, e.g. 500ms, 10s, 5m, 1h, 2d", crate::text::clip(.0, 60))]
    InvalidDuration(String),
    /// A duration past the longest a user may give (3650 days).
    #[error("invalid duration {:?}: too long, at most 3650d (10 years)", crate::text::clip(.0, 60))]
    DurationTooLong(String),
    /// Job data or options over the configured size cap (`JOBQ_MAX_DATA_BYTES`,
    /// `JOBQ_MAX_OPTS_BYTES`; 1 MiB each by default).
    #[error(
        "job {what} is {size} bytes, over the limit of {limit} bytes (set {env} to change it)"
    )]
    TooLarge {
        /// "data" or "options"
        what: &'static str,
        /// its size in bytes (JSON)
        size: usize,
        /// the cap in force
        limit: usize,
        /// the variable that sets the cap
        env: &'static str,
    },
    /// Job data could not be serialized to JSON.
    #[error("job data is not serializable to JSON: {0}")]
    Serialize(#[from] serde_json::Error),
    /// Redis answered with an error, or could not be reached.
    #[error("redis error at {addr}: {source}")]
    Redis {
        /// masked address of the server
        addr: String,
        /// the client's error
        #[source]
        source: redis::RedisError,
    },
    /// Redis sent back something a script should never return.
    #[error("unexpected reply from Redis: {0}")]
    Protocol(String),
    /// No job with that id in that queue.
    // (ids and names clipped: one sent with 100 KB would be echoed whole)
    #[error(
        "job {:?} not found in queue {:?}",
        crate::text::clip(id, 300),
        crate::text::clip(queue, 200)
    )]
    JobNotFound {
        /// queue name
        queue: String,
        /// job id
        id: String,
    },
    /// The job is not in a state the operation applies to.
    #[error(
        "cannot {action} job {:?} in queue {:?}: it is {state}",
        crate::text::clip(id, 300),
        crate::text::clip(queue, 200)
    )]
    JobState {
        /// queue name
        queue: String,
        /// job id
        id: String,
        /// what was asked (e.g. "retry")
        action: &'static str,
        /// the state it is in
        state: String,
    },
    /// A queue operation refused to run (e.g. obliterating a queue with active jobs).
    #[error("{0}")]
    Refused(String),
    /// A worker was built without a usable setting.
    #[error("worker: {0}")]
    Worker(String),
    /// A handler lock is held by someone else and did not come free in time.
    #[error("lock {name:?} was not acquired within {waited}: another owner holds it")]
    LockNotAcquired {
        /// lock name
        name: String,
        /// how long we waited for it, as a duration (`5s`, `1m30s`)
        waited: String,
    },
    /// Redis could not be reached (refused, timed out, or the producer's circuit breaker is
    /// open after such a failure) and the producer's fallback is `error`.
    #[error("Redis at {addr} is unreachable: {reason}")]
    RedisDown {
        /// masked address of the server
        addr: String,
        /// why it counts as down (the connect error, or the timeout)
        reason: String,
    },
    /// A spool file (`JOBQ_SPOOL_DIR`) could not be created, written, read or removed.
    #[error("spool {}: {source}", path.display())]
    Spool {
        /// the file or directory
        path: std::path::PathBuf,
        /// the I/O error
        #[source]
        source: std::io::Error,
    },
    /// A job run in-process because Redis was down (`JOBQ_FALLBACK=inline`) failed: its
    /// handler returned an error, panicked, timed out, or none is registered for its name.
    #[error("job {id} ({name}) failed inline: {message}")]
    Inline {
        /// the job's id
        id: String,
        /// the job's name
        name: String,
        /// the failure, as a worker would record it
        message: String,
    },
    /// One node of a flow is wrong (or its id is taken): `path` names the node in the tree
    /// (`root`, `root.children[2]`, `root.children[2].children[0]` …).
    #[error("flow node {path}: {source}")]
    Flow {
        /// where the node is in the tree
        path: String,
        /// what is wrong with it
        #[source]
        source: Box<Error>,
    },
    /// One of a queue's own keys holds a value of the wrong type (a corrupt record, e.g. a
    /// string where its meta hash belongs): the queue cannot be used until it is deleted or
    /// set right by hand. (The queue's indexes of jobs — its delayed, completed and failed
    /// sets and its lane streams — are made again by the scripts that meet them instead.)
    #[error("queue {queue:?} is corrupt: key {key} is a {found}, not a {want}; delete it or set it right by hand")]
    CorruptKey {
        /// queue name
        queue: String,
        /// the key
        key: String,
        /// the type it holds
        found: String,
        /// the type it should hold
        want: &'static str,
    },
    /// A cached value could not be encoded to JSON, or the stored JSON does not decode as
    /// the type asked for (e.g. the type changed since it was written).
    #[error("cache value {key:?} in namespace {namespace:?} could not be {action} JSON: {source}")]
    CacheValue {
        /// cache namespace
        namespace: String,
        /// key within the namespace
        key: String,
        /// "encoded as" or "decoded from"
        action: &'static str,
        /// serde's error
        #[source]
        source: serde_json::Error,
    },
}

/// What kind of failure an [`Error`] is: the one classification behind the CLI's exit codes
/// and the dashboard's HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller's input is wrong (a name, a duration, a size, a setting): fix it and retry.
    BadInput,
    /// Job data or options over the size caps (bad input of its own, HTTP 413).
    TooLarge,
    /// The job (or queue) asked for does not exist.
    NotFound,
    /// The request is valid but the job or queue is not in a state it applies to.
    Conflict,
    /// Redis is not configured, not reachable, or not ready: try again later.
    Unavailable,
    /// Anything else: an unexpected reply, a spool or handler failure.
    Internal,
}

impl Error {
    /// The kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_)
            | Error::InvalidQueueName(_)
            | Error::Invalid { .. }
            | Error::InvalidDuration(_)
            | Error::DurationTooLong(_)
            | Error::Serialize(_) => ErrorKind::BadInput,
            Error::TooLarge { .. } => ErrorKind::TooLarge,
            Error::JobNotFound { .. } => ErrorKind::NotFound,
            // (a queue key of the wrong type: the queue's stored state is in the way, as
            // a job's state is for a 409)
            Error::JobState { .. } | Error::Refused(_) | Error::CorruptKey { .. } => {
                ErrorKind::Conflict
            }
            Error::Flow { source, .. } => source.kind(),
            _ if self.is_connection() => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }

    pub(crate) fn invalid(what: &'static str, detail: impl fmt::Display) -> Self {
        Error::Invalid {
            what,
            detail: detail.to_string(),
        }
    }

    /// True when the error means Redis could not be reached (refused, dropped, timed out),
    /// or cannot serve yet (loading its data set after a restart, no master), or, on a
    /// Redis Cluster, not here and now: a redirection the client could not follow (`MOVED`
    /// to a master that died, before the cluster has failed it over; `ASK`), a slot being
    /// migrated (`TRYAGAIN`, a script meeting a key already moved). All pass: the caller
    /// retries or falls back as for any outage, never failing the job or the user's add.
    pub fn is_connection(&self) -> bool {
        use redis::{ErrorKind, ServerErrorKind};
        match self {
            Error::Redis { source, .. } => {
                source.is_io_error()
                    || source.is_connection_refusal()
                    || source.is_connection_dropped()
                    || source.is_timeout()
                    || source.is_unrecoverable_error()
                    || matches!(
                        source.kind(),
                        ErrorKind::Server(
                            ServerErrorKind::BusyLoading
                                | ServerErrorKind::MasterDown
                                | ServerErrorKind::ClusterDown
                                | ServerErrorKind::Moved
                                | ServerErrorKind::Ask
                                | ServerErrorKind::TryAgain
                        )
                    )
                    || source
                        .detail()
                        .is_some_and(|d| d.contains("attempted to access a non local key"))
            }
            Error::NotConfigured | Error::RedisDown { .. } => true,
            _ => false,
        }
    }

    /// Whether Redis refused a write for a condition of the whole server, not of the
    /// request: out of memory under `noeviction` (`OOM`), a read-only replica
    /// (`READONLY`), snapshots failing (`MISCONF`), too few replicas (`NOREPLICAS`).
    pub fn is_write_refusal(&self) -> bool {
        let Error::Redis { source, .. } = self else {
            return false;
        };
        // (`READONLY` is also a kind of its own, whose code is the same word)
        matches!(
            source.code(),
            Some("OOM" | "READONLY" | "MISCONF" | "NOREPLICAS")
        )
    }
}

/// Result alias of queue-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use redis::{ErrorKind, RedisError, ServerErrorKind};

    fn redis_error(kind: ErrorKind, desc: &'static str, detail: &str) -> Error {
        Error::Redis {
            addr: "redis://127.0.0.1:31001".into(),
            source: RedisError::from((kind, desc, detail.to_string())),
        }
    }

    #[test]
    fn cluster_redirections_and_migrations_pass_as_outages() {
        let server = ErrorKind::Server;
        for e in [
            redis_error(
                server(ServerErrorKind::Moved),
                "Moved",
                "5656 127.0.0.1:31002",
            ),
            redis_error(server(ServerErrorKind::Ask), "Ask", "12268 127.0.0.1:31001"),
            redis_error(
                server(ServerErrorKind::TryAgain),
                "TryAgain",
                "Multiple keys request during rehashing of slot",
            ),
            redis_error(
                server(ServerErrorKind::ResponseError),
                "ERR",
                "Script attempted to access a non local key in a cluster node script: x",
            ),
        ] {
            assert!(e.is_connection(), "{e}");
            assert_eq!(e.kind(), super::ErrorKind::Unavailable, "{e}");
        }
        let wrong = redis_error(
            server(ServerErrorKind::ResponseError),
            "WRONGTYPE",
            "Operation against a key holding the wrong kind of value",
        );
        assert!(!wrong.is_connection(), "{wrong}");
    }
}
