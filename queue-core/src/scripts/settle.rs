//! `settle.lua`: records finished children in their parents, all of one queue.

use super::flow::{flow_call, flow_script};
use super::{invoke_on, Reply};
use crate::error::Result;
use crate::store::QueueStore;

flow_script!(SCRIPT, "settle.lua");

/// A child's outcome on its way to its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notice {
    /// The parent's id (in the queue the call is made on).
    pub parent: String,
    /// The child, `<queue>/<id>`.
    pub child: String,
    /// `c` completed, `f` failed for good, `r` removed.
    pub state: String,
    /// The return value or the reason.
    pub value: String,
}

/// Records `notices` in their parents in `q`; returns how many children were counted
/// (the others were counted before), and whether `q`'s outbox was written (a parent failed
/// and has a parent of its own).
pub(crate) async fn settle(q: &QueueStore, notices: &[Notice]) -> Result<(u64, bool)> {
    let mut inv = flow_call(&SCRIPT, &q.keys);
    inv.arg(notices.len());
    for n in notices {
        inv.arg(&n.parent).arg(&n.child).arg(&n.state).arg(&n.value);
    }
    let v: redis::Value = invoke_on(q, &inv).await?;
    let mut r = Reply::new(&v)?;
    Ok((r.int()?.max(0) as u64, r.int()? == 1))
}
