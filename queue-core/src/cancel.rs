//! Cancelling a job: [`Queue::cancel`].
//!
//! A job that is not running — waiting, paused, delayed (a retry pending too) or a flow
//! parent waiting for its children — is `cancelled` at once. A running job gets a cancel
//! request: every worker holding jobs of the queue watches the queue's requests (one read a
//! few times a second per worker and queue, none per job) and fires the token of the
//! handler it names, which stops (ffmpeg children are killed); the attempt then ends
//! `cancelled`, never retried whatever attempts remain. A request outlives its worker: a
//! job whose worker died is cancelled when it is reclaimed. A handler that completes
//! anyway, before it sees the token, completes.
//!
//! A cancelled flow child counts as finished for its parent; cancelling a flow parent
//! cancels its children that have not finished, and theirs. Cancelled jobs are kept like
//! failed ones and can be retried ([`Queue::retry_job`]).

use std::collections::HashSet;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::job::{JobRef, JobState};
use crate::queue::Queue;
use crate::scripts::cancel::{cancel, Cancel};
use crate::scripts::kids;
use crate::store::QueueStore;
use crate::validate::validate_queue_name;

/// What [`Queue::cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cancelled {
    /// The job was not running: it is cancelled (and so are its children, if it was a
    /// flow parent waiting for them: `children` of them).
    Now {
        /// Children (and their children) cancelled with it.
        children: u64,
    },
    /// The job is running: its worker stops the handler (within a second) and records
    /// the job cancelled.
    Requested,
}

/// Whether `e` is the refusal to cancel a job because it is cancelled already.
fn is_cancelled_already(e: &Error) -> bool {
    matches!(e, Error::JobState { state, .. } if state == JobState::Cancelled.as_str())
}

/// Most descendants one cancel walks (a flow is at most this big in practice; a bigger
/// one is cancelled this far, the rest left to run).
const MAX_DESCENDANTS: usize = 1_000_000;

impl Queue {
    /// Cancels job `id`. A finished job (completed, failed, cancelled) is refused
    /// ([`Error::JobState`], a conflict); an unknown id is [`Error::JobNotFound`]. A
    /// cancelled flow parent whose children were not all reached (the walk was cut short:
    /// the caller gave up, the connection dropped) is walked again: its unfinished children
    /// are cancelled and counted, instead of a refusal.
    pub async fn cancel(&self, id: &str) -> Result<Cancelled> {
        // the queues whose jobs the walk cancelled: their outboxes tell the parents
        let mut walked = HashSet::new();
        let outcome = match cancel(&self.inner, id).await {
            Ok(Cancel::Requested) => Cancelled::Requested,
            Ok(Cancel::Done { parent: false }) => Cancelled::Now { children: 0 },
            Ok(Cancel::Done { parent: true }) => Cancelled::Now {
                children: self.cancel_children(id, &mut walked).await?,
            },
            Err(e) if is_cancelled_already(&e) => {
                match self.cancel_children(id, &mut walked).await? {
                    0 => return Err(e),
                    children => Cancelled::Now { children },
                }
            }
            Err(e) => return Err(e),
        };
        self.deliver_flow_outcomes().await;
        // (a parent counts its children down when their outcomes reach it: with no worker
        // on a child's queue, a cancelled parent would show them pending for good)
        walked.remove(self.name());
        for queue in &walked {
            self.deliver_flow_outcomes_of(queue).await;
        }
        Ok(outcome)
    }

    /// Cancels the unfinished children of cancelled flow parent `id`, and theirs; returns
    /// how many were cancelled (or asked to stop), and adds the queues of those cancelled
    /// to `walked`. A child that finished meanwhile, or is gone, is left as it is. A
    /// parent's children are read as soon as it is cancelled: a cancelled parent (and its
    /// list of children) may go with the retention of cancelled jobs while a big flow is
    /// walked.
    async fn cancel_children(&self, id: &str, walked: &mut HashSet<String>) -> Result<u64> {
        let q = &self.inner;
        // (a children's record of the wrong type, a corrupt one, names no child to cancel)
        let mut lists: Vec<_> = kids::children_of(q, id).await?.into_iter().collect();
        let (mut cancelled, mut seen) = (0, 0);
        // parents whose children were read: a child walked again through its outcome
        // (below) is read once, however its records point
        let mut read = HashSet::from([format!("{}/{id}", self.name())]);
        while let Some(list) = lists.pop() {
            for (child, value) in list {
                // finished children are recorded with their outcome, pending ones with `p`.
                // A child recorded cancelled (`x`) may be a parent whose own walk was cut
                // short (an earlier walk of this tree cancelled it, then stopped): its
                // children are walked too, as are those of a pending child found cancelled
                // already (its outcome not delivered here yet)
                let pending = value.starts_with('p');
                if !(pending || value.starts_with('x')) || seen >= MAX_DESCENDANTS {
                    continue;
                }
                seen += 1;
                let Some(r) =
                    JobRef::from_text(&child).filter(|r| validate_queue_name(&r.queue).is_ok())
                else {
                    continue;
                };
                let cs = QueueStore::new(&q.redis, &q.prefix, &r.queue);
                if !pending {
                    if read.insert(child) {
                        lists.extend(kids::children_of(&cs, &r.id).await?);
                    }
                    continue;
                }
                match cancel(&cs, &r.id).await {
                    Ok(Cancel::Done { parent }) => {
                        cancelled += 1;
                        if !walked.contains(&r.queue) {
                            walked.insert(r.queue.clone());
                        }
                        if parent && read.insert(child) {
                            lists.extend(kids::children_of(&cs, &r.id).await?);
                        }
                    }
                    Ok(Cancel::Requested) => cancelled += 1,
                    Err(e) if is_cancelled_already(&e) => {
                        if read.insert(child) {
                            lists.extend(kids::children_of(&cs, &r.id).await?);
                        }
                    }
                    Err(Error::JobState { .. } | Error::JobNotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(cancelled)
    }
}
