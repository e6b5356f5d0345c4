//! Delivering children's outcomes to their parents. A child that finishes (or is removed)
//! writes its outcome to its own queue's outbox in the script that records it; the parent
//! may live in another queue, on another Cluster node, so no script can touch both. The
//! outbox is then delivered here: each entry goes to its parent's queue by `settle.lua`,
//! which counts a child once however often it is told, and the entries are trimmed after.
//! A worker that dies between the two leaves the entry for the next pump, by any worker of
//! the queue: delivery is at least once, and counting exactly once.

use std::collections::BTreeMap;

use crate::connection::Redis;
use crate::error::Result;
use crate::job::JobRef;
use crate::scripts::outbox::{self, Entry};
use crate::scripts::settle::{settle, Notice};
use crate::store::QueueStore;
use crate::validate::validate_queue_name;

/// Outbox entries read per round.
const PUMP_BATCH: usize = 200;
/// About the most bytes of outcomes one `settle` call carries (a larger one goes alone):
/// children's return values can be large, and one call must stay short.
const SETTLE_BYTES: usize = 1 << 20;
/// Most rounds of one pump: a queue whose outbox keeps filling is left for the next.
const MAX_ROUNDS: usize = 50;

/// Delivers the outbox of `queue` (and of the parents' queues it writes to, when a failed
/// parent tells its own parent); returns how many entries were delivered.
pub(crate) async fn pump(redis: &Redis, prefix: &str, queue: &str) -> Result<usize> {
    let mut todo = vec![queue.to_string()];
    let mut delivered = 0;
    let mut rounds = 0;
    while let Some(name) = todo.pop() {
        let q = QueueStore::new(redis, prefix, &name);
        loop {
            rounds += 1;
            let entries = outbox::read(&q, PUMP_BATCH).await?;
            let full = entries.len() == PUMP_BATCH;
            for parent_queue in deliver(redis, prefix, &name, &entries).await? {
                if !todo.contains(&parent_queue) {
                    todo.push(parent_queue);
                }
            }
            if let Some(last) = entries.last() {
                outbox::delete_through(&q, &last.entry).await?;
            }
            delivered += entries.len();
            if !full || rounds >= MAX_ROUNDS {
                break;
            }
        }
        if rounds >= MAX_ROUNDS {
            break;
        }
    }
    Ok(delivered)
}

/// Settles `entries` of `queue`'s outbox in their parents' queues; returns the parents'
/// queues whose own outboxes were written. A corrupt entry (no child, a parent that is not
/// `<queue>/<id>`, an unknown outcome) is dropped with a warning: it can never be delivered.
async fn deliver(
    redis: &Redis,
    prefix: &str,
    queue: &str,
    entries: &[Entry],
) -> Result<Vec<String>> {
    let mut by_queue: BTreeMap<String, Vec<Notice>> = BTreeMap::new();
    for e in entries {
        let parent = JobRef::from_text(&e.parent).filter(|p| validate_queue_name(&p.queue).is_ok());
        match parent {
            Some(p) if !e.child.is_empty() && matches!(e.state.as_str(), "c" | "f" | "r" | "x") => {
                by_queue.entry(p.queue).or_default().push(Notice {
                    parent: p.id,
                    child: format!("{queue}/{}", e.child),
                    state: e.state.clone(),
                    value: e.value.clone(),
                })
            }
            _ => tracing::warn!(
                queue = %queue,
                entry = %e.entry,
                "dropping a corrupt flow outbox entry: {}",
                // (its parent and value are whatever the corrupt record holds: 1 MiB of
                // them must not make a 1 MiB log line)
                crate::text::clip(&crate::text::printable(&format!("{e:?}")), 300)
            ),
        }
    }
    let mut wrote = Vec::new();
    for (name, notices) in by_queue {
        if settle_all(&QueueStore::new(redis, prefix, &name), &notices).await? {
            wrote.push(name);
        }
    }
    Ok(wrote)
}

/// Settles `notices` in their parents' queue `q`, in calls of at most [`PUMP_BATCH`]
/// children and about [`SETTLE_BYTES`] (a larger outcome goes alone); whether `q`'s outbox
/// was written.
pub(crate) async fn settle_all(q: &QueueStore, notices: &[Notice]) -> Result<bool> {
    let mut wrote = false;
    let mut rest = notices;
    while !rest.is_empty() {
        let n = crate::coalesce::batch_len_within(
            rest.iter()
                .map(|n| n.value.len() + n.child.len() + n.parent.len()),
            PUMP_BATCH,
            SETTLE_BYTES,
        );
        wrote |= settle(q, &rest[..n]).await?.1;
        rest = &rest[n..];
    }
    Ok(wrote)
}
