//! `workers_list.lua`: the ids of the live workers, after pruning expired entries.

use super::{invoke, Reply};
use crate::connection::Redis;
use crate::error::Result;
use crate::keys::WorkerKeys;

standalone_script!(SCRIPT, "workers_list.lua");

/// Expired registry entries pruned per listing.
const PRUNE: usize = 100;

/// One live registry entry.
pub(crate) struct Entry {
    pub id: String,
    /// When its record expires (ms), as stored (a corrupt score reads as 0).
    pub expires_at: u64,
    /// False when the id is over the longest allowed (`id` is clipped then).
    pub id_ok: bool,
}

/// At most `max` live entries (ids over `longest_id` bytes come back clipped and flagged).
pub(crate) async fn workers_list(
    redis: &Redis,
    keys: &WorkerKeys,
    max: usize,
    longest_id: usize,
) -> Result<Vec<Entry>> {
    let mut inv = SCRIPT.prepare_invoke();
    inv.key(keys.registry()).arg(max).arg(PRUNE).arg(longest_id);
    let v: redis::Value = invoke(redis, &inv).await?;
    let mut r = Reply::new(&v)?;
    let mut entries = Vec::with_capacity(r.remaining() / 3);
    while r.remaining() >= 3 {
        let id = r.string()?;
        // a score is any double: inf, a fraction, a negative
        let score = r.string()?.parse::<f64>().unwrap_or(0.0);
        let expires_at = if score.is_finite() && score > 0.0 {
            score.min(u64::MAX as f64) as u64
        } else if score == f64::INFINITY {
            u64::MAX
        } else {
            0
        };
        let id_ok = r.int()? == 1;
        entries.push(Entry {
            id,
            expires_at,
            id_ok,
        });
    }
    Ok(entries)
}
