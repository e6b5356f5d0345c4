//! Which workers are alive, and what each is doing: every running [`Worker`](crate::Worker)
//! heartbeats a record of itself (`worker/heartbeat.rs`), which lives for three heartbeats;
//! [`list_workers`] reads them. A worker killed without leaving drops out of the listing
//! once its record's TTL runs out; one that stops gracefully leaves at once.
//!
//! Records are whatever is stored under the prefix, so they are read as untrusted: a record
//! of the wrong type, one over [`MAX_INFO_BYTES`] or one that does not decode is listed with
//! its id and [`WorkerInfo::corrupt`] saying why, and never fails the listing.

use serde::{Deserialize, Serialize};

use crate::connection::Redis;
use crate::error::Result;
use crate::keys::WorkerKeys;
use crate::scripts::workers_list::workers_list;
use crate::scripts::workers_read::{workers_read, Record};

/// Most workers [`list_workers`] returns.
pub const MAX_WORKERS_LISTED: usize = 1_000;
/// Largest record info a listing reads (a worker writes at most about half of it).
pub const MAX_INFO_BYTES: usize = 16 * 1024;
/// Longest worker id a listing reads a record for (a worker's own is host, pid, start time).
const MAX_ID_BYTES: usize = 512;
/// Records read per script call.
const READ_BATCH: usize = 50;
/// Running jobs a record names (the rest are counted in `running_count`).
pub(crate) const RUNNING_LISTED: usize = 100;
/// Most bytes of job ids and of queue names a record names (each), so a record stays
/// under [`MAX_INFO_BYTES`] whatever the ids and names.
pub(crate) const LIST_BYTES: usize = 6 * 1024;

/// A live worker, as its last heartbeat described it. Stored as JSON in the worker's record
/// (`last_seen` and `expires_at` come from the registry when it is read); every field has a
/// default, so an older or partial record still reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerInfo {
    /// Its id: the consumer name it claims jobs with (`<host>:<pid>:<start ms>:<random>`),
    /// which a running job's [`JobInfo::worker`](crate::JobInfo::worker) names.
    pub id: String,
    /// Host name of its machine.
    pub host: String,
    /// Its process id on that host.
    pub pid: u32,
    /// The jobq version it runs.
    pub version: String,
    /// The queues it takes jobs from (the first ones, when their names are long).
    pub queues: Vec<String>,
    /// How many queues it takes jobs from.
    pub queue_count: usize,
    /// Most handlers it runs at once.
    pub concurrency: usize,
    /// Jobs it holds (claimed or running): the first [`RUNNING_LISTED`] at most.
    pub running: Vec<RunningJob>,
    /// How many jobs it holds in all.
    pub running_count: usize,
    /// When it started (ms since the epoch, its own clock).
    pub started_at: u64,
    /// Its last heartbeat (ms since the epoch, Redis clock).
    pub last_seen: u64,
    /// When it drops out of listings unless it heartbeats again (ms, Redis clock).
    pub expires_at: u64,
    /// Time between its heartbeats (ms).
    pub heartbeat_ms: u64,
    /// Set when its record cannot be read: why. The other fields are then empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<String>,
}

/// A job a worker holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunningJob {
    /// Its queue.
    pub queue: String,
    /// Its id.
    pub id: String,
}

impl WorkerInfo {
    fn corrupt(id: String, expires_at: u64, why: String) -> Self {
        WorkerInfo {
            id,
            expires_at,
            corrupt: Some(why),
            ..WorkerInfo::default()
        }
    }

    /// A record as read; a corrupt one is listed with its id and why.
    fn from_record(id: String, expires_at: u64, seen: &str, info: &str) -> Self {
        let Ok(last_seen) = seen.parse::<u64>() else {
            let why = format!("its last-seen time {:?} is not a number", seen);
            return WorkerInfo::corrupt(id, expires_at, why);
        };
        match serde_json::from_str::<WorkerInfo>(info) {
            Ok(w) => WorkerInfo {
                id,
                last_seen,
                expires_at,
                corrupt: None,
                ..w
            },
            Err(e) => {
                let why = format!(
                    "its info does not decode ({e}): {}",
                    crate::text::clip(info, 80)
                );
                WorkerInfo::corrupt(id, expires_at, why)
            }
        }
    }
}

/// The live workers under `prefix` (at most [`MAX_WORKERS_LISTED`]), sorted by host, pid
/// and id. Entries past their expiry are pruned on the way; a corrupt record is listed with
/// [`WorkerInfo::corrupt`] set, never an error.
pub async fn list_workers(redis: &Redis, prefix: &str) -> Result<Vec<WorkerInfo>> {
    let keys = WorkerKeys::new(prefix);
    let entries = workers_list(redis, &keys, MAX_WORKERS_LISTED, MAX_ID_BYTES).await?;
    let mut out = Vec::with_capacity(entries.len());
    let (readable, too_long): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e.id_ok);
    for e in too_long {
        let why = format!("its id is over {MAX_ID_BYTES} bytes");
        out.push(WorkerInfo::corrupt(e.id, e.expires_at, why));
    }
    for batch in readable.chunks(READ_BATCH) {
        let ids: Vec<&str> = batch.iter().map(|e| e.id.as_str()).collect();
        let records = workers_read(redis, &keys, &ids, MAX_INFO_BYTES).await?;
        for (e, record) in batch.iter().zip(records) {
            match record {
                Record::Found { seen, info } => out.push(WorkerInfo::from_record(
                    e.id.clone(),
                    e.expires_at,
                    &seen,
                    &info,
                )),
                Record::Gone => {}
                Record::Bad(why) => out.push(WorkerInfo::corrupt(e.id.clone(), e.expires_at, why)),
            }
        }
    }
    out.sort_by(|a, b| (&a.host, a.pid, &a.id).cmp(&(&b.host, b.pid, &b.id)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_or_is_listed_as_corrupt() {
        let ok = WorkerInfo::from_record(
            "h:1:2:ab".into(),
            20,
            "10",
            r#"{"host":"h","pid":1,"queues":["q"],"running":[{"queue":"q","id":"j"}],
                "running_count":1,"extra":true}"#,
        );
        assert_eq!(ok.corrupt, None);
        assert_eq!((ok.host.as_str(), ok.pid, ok.last_seen), ("h", 1, 10));
        assert_eq!(ok.running[0].id, "j");

        for (seen, info, why) in [
            ("x", "{}", "last-seen time \"x\""),
            ("1", "not json", "does not decode"),
            ("1", r#"{"pid":"many"}"#, "does not decode"),
            ("1", r#"{"pid":99999999999}"#, "does not decode"),
            ("1", r#"{"queues":"q"}"#, "does not decode"),
        ] {
            let w = WorkerInfo::from_record("w".into(), 5, seen, info);
            let c = w.corrupt.as_deref().unwrap_or_default();
            assert!(c.contains(why), "{seen} {info}: {c}");
            assert_eq!((w.id.as_str(), w.expires_at, w.pid), ("w", 5, 0));
        }
    }
}
