//! `workers_read.lua`: some workers' records, each checked before it is read.

use super::{invoke, Reply};
use crate::connection::Redis;
use crate::error::Result;
use crate::keys::WorkerKeys;

standalone_script!(SCRIPT, "workers_read.lua");

/// One worker's record as read.
pub(crate) enum Record {
    /// Its last heartbeat (as stored) and its info (JSON, as stored).
    Found { seen: String, info: String },
    /// No record: the worker is gone (its registry entry was removed).
    Gone,
    /// A record that cannot be read: why.
    Bad(String),
}

/// The records of workers `ids` (one call: the caller keeps the batch small), with infos
/// over `longest_info` bytes reported, not read.
pub(crate) async fn workers_read(
    redis: &Redis,
    keys: &WorkerKeys,
    ids: &[&str],
    longest_info: usize,
) -> Result<Vec<Record>> {
    let mut inv = SCRIPT.prepare_invoke();
    inv.key(keys.registry()).arg(longest_info);
    for id in ids {
        inv.key(keys.record(id)).arg(*id);
    }
    let v: redis::Value = invoke(redis, &inv).await?;
    let mut r = Reply::new(&v)?;
    let mut out = Vec::with_capacity(ids.len());
    for _ in ids {
        let status = r.string()?;
        let seen = r.string()?;
        let info = r.string()?;
        out.push(match status.as_str() {
            "ok" => Record::Found { seen, info },
            "gone" => Record::Gone,
            _ => Record::Bad(info),
        });
    }
    Ok(out)
}
