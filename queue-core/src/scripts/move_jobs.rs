//! `move_jobs.lua`: retries failed (or cancelled) jobs or promotes delayed ones into their
//! lanes, by id or
//! the next batch of the set under a score bound (bulk operations act on a snapshot).

use super::{invoke_with_lanes, Reply, BATCH, EVENTS_MAXLEN};
use crate::error::Result;
use crate::keys::GROUP;
use crate::store::QueueStore;

script!(SCRIPT, "move_jobs.lua");

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Move {
    /// Failed → waiting.
    Retry,
    /// Cancelled → waiting (a retry of a cancelled job).
    Revive,
    /// Delayed → waiting now.
    Promote,
}

/// Which jobs one `move_jobs` call looks at.
#[derive(Clone, Copy)]
pub(crate) enum Pick {
    /// The ids given.
    Ids,
    /// Up to [`BATCH`] members of the source set scored at most `bound`, after the first
    /// `offset` of them.
    Upto { bound: i64, offset: usize },
}

/// One `move_jobs` call: the given ids, or (`Pick::Upto`) the next batch of the source set.
pub(crate) async fn move_jobs(
    q: &QueueStore,
    mode: Move,
    pick: Pick,
    ids: &[String],
) -> Result<(u64, Vec<String>)> {
    let (bound, offset) = match pick {
        // (no id would make the script pick from the set)
        Pick::Ids if ids.is_empty() => return Ok((0, Vec::new())),
        Pick::Ids => (0, 0),
        Pick::Upto { bound, offset } => (bound, offset),
    };
    let keys = &q.keys;
    let (v, _) = invoke_with_lanes(q, &SCRIPT, "moving jobs", |inv, lanes| {
        inv.key(keys.meta())
            .key(keys.lanes())
            .key(match mode {
                Move::Retry => keys.failed(),
                Move::Revive => keys.cancelled(),
                Move::Promote => keys.delayed(),
            })
            .key(keys.marker())
            .key(keys.events());
        for k in lanes.keys(keys) {
            inv.key(k);
        }
        inv.arg(match mode {
            Move::Retry => "retry",
            Move::Revive => "revive",
            Move::Promote => "promote",
        })
        .arg(GROUP)
        .arg(EVENTS_MAXLEN)
        .arg(keys.job_prefix())
        .arg(&lanes.version)
        .arg(BATCH)
        .arg(bound)
        .arg(offset)
        .arg(lanes.prios.len());
        for p in &lanes.prios {
            inv.arg(*p);
        }
        for id in ids {
            inv.arg(id);
        }
    })
    .await?;
    let mut r = Reply::new(&v)?;
    let _ok = r.string()?;
    let moved = r.int()? as u64;
    let mut skipped = Vec::new();
    while r.remaining() > 0 {
        skipped.push(r.string()?);
    }
    Ok((moved, skipped))
}
