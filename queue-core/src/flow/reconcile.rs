//! The workers' safety net for flows, for what delivery alone cannot mend:
//!
//! - **Parents that wait too long.** A parent is looked up every [`RECHECK`] while it waits
//!   (its score in the waiting-children set): each child still pending in its children
//!   hash is read in its own queue, and one that finished (or is gone) is settled from
//!   what its job says. This mends a notification lost with a Cluster master that failed
//!   over before its replica had it, a queue obliterated under a waiting parent, a job
//!   deleted by hand. A child still staged under a committed parent is committed (its add
//!   died half-way through the commits).
//! - **Jobs staged too long.** A job staged for longer than [`STAGE_TIMEOUT`] belongs to an
//!   add that died or failed: if its flow's root was committed it is committed, else it is
//!   taken back (and so, one level at a time, are the jobs under it).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::Result;
use crate::job::JobRef;
use crate::scripts::flow_commit::{commit, Commit};
use crate::scripts::kids;
use crate::scripts::node_time::now_ms;
use crate::scripts::settle::{settle, Notice};
use crate::store::QueueStore;
use crate::validate::validate_queue_name;

use super::deliver;

/// How often a waiting parent's children are looked up (`RECHECK_MS` in `flow.lua`).
pub(crate) const RECHECK: Duration = Duration::from_secs(60);
/// How long a job may stay staged before a worker commits it or takes it back: twice the
/// longest an add spends staging ([`super::add::COMMIT_DEADLINE`]).
pub(crate) const STAGE_TIMEOUT: Duration = Duration::from_secs(600);
/// Parents (or staged jobs) looked at per pass.
const PER_PASS: usize = 20;

/// Looks up the children of parents of `q` due for it; returns how many children were
/// settled from their jobs.
pub(crate) async fn recheck_parents(q: &QueueStore) -> Result<u64> {
    let now = now_ms(q).await?;
    let due = kids::due(q, &q.keys.waiting_children(), now, PER_PASS).await?;
    let mut settled = 0;
    for parent in due {
        settled += recheck(q, &parent).await?;
        kids::reschedule(
            q,
            &q.keys.waiting_children(),
            &parent,
            now + RECHECK.as_millis() as u64,
        )
        .await?;
    }
    if settled > 0 {
        deliver::pump(&q.redis, &q.prefix, &q.name).await?;
    }
    Ok(settled)
}

/// Settles the finished children of `parent` that it still counts as pending.
async fn recheck(q: &QueueStore, parent: &str) -> Result<u64> {
    let me = format!("{}/{parent}", q.name);
    let mut pending: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (child, value) in kids::children_of(q, parent).await? {
        if !value.starts_with('p') {
            continue;
        }
        if let Some(r) = JobRef::from_text(&child).filter(|r| validate_queue_name(&r.queue).is_ok())
        {
            pending.entry(r.queue).or_default().push(r.id);
        }
    }
    let mut notices = Vec::new();
    for (queue, ids) in pending {
        let cq = QueueStore::new(&q.redis, &q.prefix, &queue);
        for chunk in ids.chunks(1_000) {
            let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let rows = kids::child_fields(&cq, &ids).await?;
            let mut staged = Vec::new();
            for (id, row) in ids.iter().zip(rows) {
                let child = format!("{queue}/{id}");
                let notice = |state: &str, value: &str| Notice {
                    parent: parent.to_string(),
                    child: child.clone(),
                    state: state.to_string(),
                    value: value.to_string(),
                };
                let Some(f) = row else {
                    notices.push(notice("r", ""));
                    continue;
                };
                if f.get("par").map(String::as_str) != Some(me.as_str()) {
                    // another job took the id: this child is gone
                    notices.push(notice("r", ""));
                    continue;
                }
                match f.get("state").map(String::as_str) {
                    Some("completed") => {
                        notices.push(notice("c", f.get("result").map_or("null", String::as_str)))
                    }
                    Some("failed") => {
                        notices.push(notice("f", f.get("error").map_or("", String::as_str)))
                    }
                    Some("waiting_children") if f.contains_key("stg") => staged.push(*id),
                    _ => {}
                }
            }
            if !staged.is_empty() {
                commit(&cq, &staged, Commit::Commit, None).await?;
            }
        }
    }
    let n = notices.len() as u64;
    let refs: Vec<&Notice> = notices.iter().collect();
    for chunk in refs.chunks(200) {
        settle(q, chunk).await?;
    }
    if n > 0 {
        tracing::info!(
            queue = %q.name, parent, children = n,
            "settled flow children whose outcomes had not reached their parent"
        );
    }
    Ok(n)
}

/// Commits or takes back the jobs of `q` staged for longer than [`STAGE_TIMEOUT`]; returns
/// how many.
pub(crate) async fn sweep_staged(q: &QueueStore) -> Result<u64> {
    let now = now_ms(q).await?;
    let cutoff = now.saturating_sub(STAGE_TIMEOUT.as_millis() as u64);
    let old = kids::due(q, &q.keys.staged(), cutoff, PER_PASS).await?;
    let mut done = 0;
    for id in old {
        let f = kids::job_fields(q, &id, &["stg", "rt"]).await?;
        if f[0].is_none() {
            // committed or gone: only its place in the staged set was left
            kids::forget(q, &q.keys.staged(), &id).await?;
            continue;
        }
        let committed = match f[1].as_deref().and_then(JobRef::from_text) {
            // the root itself, staged this long: its add never committed it
            None => false,
            Some(root) if validate_queue_name(&root.queue).is_err() => false,
            Some(root) => {
                let rq = QueueStore::new(&q.redis, &q.prefix, &root.queue);
                let rf = kids::job_fields(&rq, &root.id, &["state", "stg"]).await?;
                rf[0].is_some() && rf[1].is_none()
            }
        };
        let what = if committed {
            Commit::Commit
        } else {
            Commit::Drop
        };
        let (n, wrote) = commit(q, &[&id], what, None).await?;
        done += n;
        if wrote {
            deliver::pump(&q.redis, &q.prefix, &q.name).await?;
        }
        tracing::info!(
            queue = %q.name, job = %id, committed,
            "a flow job was left staged by its add: {}",
            if committed { "committed it" } else { "took it back" }
        );
    }
    Ok(done)
}
