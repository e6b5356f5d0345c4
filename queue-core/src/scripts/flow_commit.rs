//! `flow_commit.lua`: commits staged flow jobs (they wait for children, or run), or takes
//! them back.

use super::flow::{flow_call, flow_script};
use super::{invoke_on, Reply};
use crate::error::Result;
use crate::store::QueueStore;

flow_script!(SCRIPT, "flow_commit.lua");

/// What to do with staged jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    /// Make them what their flow says.
    Commit,
    /// Delete them (their flow's add failed).
    Drop,
}

/// Commits (or drops) the staged jobs `ids` of `q` that the add of `token` staged (any
/// staged job for `None`); returns how many were touched, and whether the queue's outbox
/// was written (a parent failed by a child it had met while staged).
pub(crate) async fn commit(
    q: &QueueStore,
    ids: &[&str],
    what: Commit,
    token: Option<&str>,
) -> Result<(u64, bool)> {
    let mut inv = flow_call(&SCRIPT, &q.keys);
    inv.arg(match what {
        Commit::Commit => "commit",
        Commit::Drop => "drop",
    })
    .arg(token.unwrap_or(""));
    for id in ids {
        inv.arg(*id);
    }
    let v: redis::Value = invoke_on(q, &inv).await?;
    let mut r = Reply::new(&v)?;
    Ok((r.int()?.max(0) as u64, r.int()? == 1))
}
