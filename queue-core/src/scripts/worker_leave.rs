//! `worker_leave.lua`: a worker stopping gracefully takes itself out of the registry.

use super::invoke;
use crate::connection::Redis;
use crate::error::Result;
use crate::keys::WorkerKeys;

standalone_script!(SCRIPT, "worker_leave.lua");

/// Removes worker `id`'s registry entry and record.
pub(crate) async fn worker_leave(redis: &Redis, keys: &WorkerKeys, id: &str) -> Result<()> {
    let mut inv = SCRIPT.prepare_invoke();
    inv.key(keys.registry()).key(keys.record(id)).arg(id);
    let _: i64 = invoke(redis, &inv).await?;
    Ok(())
}
