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
use crate::job::{JobRef, JobState};
use crate::scripts::flow_commit::{commit, Commit};
use crate::scripts::kids;
use crate::scripts::node_time::now_ms;
use crate::scripts::settle::Notice;
use crate::store::QueueStore;
use crate::validate::validate_queue_name;

use super::children::child_state;
use super::deliver;
use super::types::ChildState;

/// How often a waiting parent's children are looked up (`RECHECK_MS` in `flow.lua`).
pub(crate) const RECHECK: Duration = Duration::from_secs(60);
/// How long a job may stay staged before a worker commits it or takes it back: twice the
/// longest an add spends staging ([`super::add::COMMIT_DEADLINE`]).
pub(crate) const STAGE_TIMEOUT: Duration = Duration::from_secs(600);
/// Parents looked at per pass.
const PER_PASS: usize = 20;
/// Staged jobs looked at per pass.
const STAGED_PER_PASS: usize = 500;

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
    let Some(stored) = kids::children_of(q, parent).await? else {
        // its children's record is not a hash (a corrupt record): no outcome can be kept
        // there, and settling any notice for this parent fails it, naming the record
        let notice = Notice {
            parent: parent.to_string(),
            child: String::new(),
            state: "r".to_string(),
            value: String::new(),
        };
        if deliver::settle_all(q, &[notice]).await? {
            // its failure is on its way to its own parent
            deliver::pump(&q.redis, &q.prefix, &q.name).await?;
        }
        return Ok(0);
    };
    for (child, value) in stored {
        // an outcome is recorded; any other entry (`p`, or a corrupt one) is pending
        if value.starts_with(['c', 'f', 'r', 'x']) {
            continue;
        }
        if let Some(r) = JobRef::from_text(&child).filter(|r| validate_queue_name(&r.queue).is_ok())
        {
            pending.entry(r.queue).or_default().push(r.id);
        }
    }
    let tok = kids::job_fields(q, parent, &["tok"]).await?.remove(0);
    let mut notices = Vec::new();
    for (queue, ids) in pending {
        let cq = QueueStore::new(&q.redis, &q.prefix, &queue);
        // first what the child queue's outbox holds: a child removed by its retention in
        // the call that recorded it has its real outcome there, not a missing job
        deliver::pump(&q.redis, &q.prefix, &queue).await?;
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
                if row
                    .as_ref()
                    .is_some_and(|f| f.get("par").map(String::as_str) != Some(me.as_str()))
                {
                    // another job took the id: this child is gone
                    notices.push(notice("r", ""));
                    continue;
                }
                match child_state(&row) {
                    Some((ChildState::Completed, value)) => notices.push(notice("c", value)),
                    Some((ChildState::Failed, value)) => notices.push(notice("f", value)),
                    Some((ChildState::Removed, _)) => notices.push(notice("r", "")),
                    Some((ChildState::Cancelled, _)) => notices.push(notice("x", "")),
                    // staged by this parent's own add (another add's leftover under the
                    // same ids is taken back by the staged sweep)
                    Some((ChildState::Unfinished(JobState::WaitingChildren), _))
                        if tok.is_some()
                            && row.as_ref().and_then(|f| f.get("stg")) == tok.as_ref() =>
                    {
                        staged.push(*id)
                    }
                    _ => {}
                }
            }
            if !staged.is_empty() {
                commit(&cq, &staged, Commit::Commit, None).await?;
            }
        }
    }
    let n = notices.len() as u64;
    deliver::settle_all(q, &notices).await?;
    if n > 0 {
        tracing::info!(
            queue = %q.name, parent, children = n,
            "settled flow children whose outcomes had not reached their parent"
        );
    }
    Ok(n)
}

/// Commits or takes back the jobs of `q` staged for longer than [`STAGE_TIMEOUT`] (up to
/// [`STAGED_PER_PASS`]); returns how many.
pub(crate) async fn sweep_staged(q: &QueueStore) -> Result<u64> {
    let now = now_ms(q).await?;
    let cutoff = now.saturating_sub(STAGE_TIMEOUT.as_millis() as u64);
    let old = kids::due(q, &q.keys.staged(), cutoff, STAGED_PER_PASS).await?;
    if old.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = old.iter().map(String::as_str).collect();
    let rows = kids::child_fields(q, &ids).await?;
    // each job's root, `<queue>/<id>` (None: it is a root itself, or its `rt` is corrupt)
    // root → the token of the add that committed it (None: not committed, or gone)
    let mut roots: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut staged: Vec<(&str, Option<String>, Option<String>)> = Vec::new();
    for (id, row) in ids.iter().zip(rows) {
        match row {
            Some(f) if f.contains_key("stg") => {
                let root = f.get("rt").cloned();
                if let Some(r) = &root {
                    roots.insert(r.clone(), None);
                }
                staged.push((id, root, f.get("stg").cloned()));
            }
            // committed or gone: only its place in the staged set was left
            _ => kids::forget(q, &q.keys.staged(), id).await?,
        }
    }
    for (root, committed) in roots.iter_mut() {
        *committed = match JobRef::from_text(root) {
            Some(r) if validate_queue_name(&r.queue).is_ok() => {
                let rq = QueueStore::new(&q.redis, &q.prefix, &r.queue);
                let rf = kids::job_fields(&rq, &r.id, &["name", "stg", "tok"]).await?;
                // committed (stored, no `stg` left): the token of the add that staged it
                if rf[0].is_some() && rf[1].is_none() {
                    rf[2].clone()
                } else {
                    None
                }
            }
            _ => None,
        };
    }
    let (mut commits, mut drops) = (Vec::new(), Vec::new());
    for (id, root, token) in staged {
        // committed only under the root its own add committed: a leftover of a failed add
        // under a root id that a later add reused is taken back
        let committed = root.and_then(|r| roots.get(&r).cloned().flatten());
        if committed.is_some() && committed == token {
            commits.push(id);
        } else {
            drops.push(id);
        }
    }
    let (mut committed, mut dropped) = (0, 0);
    if !commits.is_empty() {
        committed = commit(q, &commits, Commit::Commit, None).await?.0;
        deliver::pump(&q.redis, &q.prefix, &q.name).await?;
    }
    if !drops.is_empty() {
        dropped = commit(q, &drops, Commit::Drop, None).await?.0;
    }
    if committed + dropped > 0 {
        tracing::info!(
            queue = %q.name, committed, took_back = dropped,
            "flow jobs were left staged by an add that did not finish"
        );
    }
    Ok(committed + dropped)
}
