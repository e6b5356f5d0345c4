//! `counts.lua`: a queue's counts per state, read atomically.

use super::{invoke_with_lanes, Reply};
use crate::error::Result;
use crate::keys::GROUP;
use crate::stats::Counts;
use crate::store::QueueStore;

script!(SCRIPT, "counts.lua");

/// Counts per state, read atomically.
pub(crate) async fn counts(q: &QueueStore) -> Result<Counts> {
    let keys = &q.keys;
    let (v, _) = invoke_with_lanes(q, &SCRIPT, "counting", |inv, lanes| {
        inv.key(keys.meta())
            .key(keys.delayed())
            .key(keys.completed())
            .key(keys.failed())
            .key(keys.waiting_children())
            .key(keys.cancelled());
        for k in lanes.keys(keys) {
            inv.key(k);
        }
        inv.arg(GROUP).arg(&lanes.version);
    })
    .await?;
    let mut r = Reply::new(&v)?;
    let _ok = r.string()?;
    let mut n = || r.int().map(|v| v.max(0) as u64);
    let (waiting, active, delayed, completed, failed) = (n()?, n()?, n()?, n()?, n()?);
    let paused = n()? == 1;
    let (completed_total, failed_total, waiting_children) = (n()?, n()?, n()?);
    let cancelled = n()?;
    Ok(Counts {
        queue: q.name.clone(),
        waiting: if paused { 0 } else { waiting },
        paused_jobs: if paused { waiting } else { 0 },
        waiting_children,
        active,
        delayed,
        completed,
        failed,
        cancelled,
        paused,
        completed_total,
        failed_total,
    })
}
