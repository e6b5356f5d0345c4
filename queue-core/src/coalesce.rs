//! Single adds to one queue, coalesced: [`crate::Queue::add`] calls made at the same time
//! share `add_job` script calls instead of making one each.
//!
//! An add joins the queue's pending list and waits for its own result. Up to
//! [`MAX_IN_FLIGHT`] flusher tasks each take everything pending (at most [`BULK_CHUNK`]
//! jobs and about [`MAX_BATCH_BYTES`] of data), store it with one `add_job` call, hand each caller its result, and take the next
//! batch until nothing is pending. No add ever waits for a timer: a lone add is sent at
//! once, alone, as before; only adds that arrive while calls are in flight are batched, so
//! batches grow with the load. Per batch, the script's fixed work (the lane check, the
//! `waiting` counter, the `added` event, the workers' wake-up) is done once.
//!
//! Each job's result is its own (stored, or the id it duplicates). A batch that fails as a
//! whole (Redis unreachable, say) fails each of its adds with that error.

use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::job::{Added, NewJob};
use crate::queue::{Queue, BULK_CHUNK};

/// How many `add_job` calls of one queue's single adds may be in flight at once.
pub(crate) const MAX_IN_FLIGHT: usize = 4;
/// Most bytes of job data one batch carries (a job bigger than that goes alone): one caller's
/// large jobs must not make a call that Redis refuses or takes long over for everyone.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// A pending add: the job, its data's size, and where its result goes.
type Pending = (NewJob, usize, oneshot::Sender<Result<Added>>);
type Reply = oneshot::Sender<Result<Added>>;

/// The pending single adds of one queue, and how many flushers run.
#[derive(Default)]
pub(crate) struct Coalescer {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    pending: Vec<Pending>,
    flushers: usize,
}

impl Coalescer {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Adds one validated job to `queue` through its coalescer.
pub(crate) async fn add(queue: &Queue, job: NewJob) -> Result<Added> {
    let (tx, rx) = oneshot::channel();
    let size = serde_json::to_vec(&job.data).map_or(0, |d| d.len());
    let start = {
        let mut s = queue.inner.adds.state();
        s.pending.push((job, size, tx));
        let start = s.flushers < MAX_IN_FLIGHT;
        if start {
            s.flushers += 1;
        }
        start
    };
    if start {
        tokio::spawn(flush(queue.clone()));
    }
    rx.await.unwrap_or_else(|_| {
        Err(Error::Protocol(
            "the add's batch ended without a reply".into(),
        ))
    })
}

/// Stores batches of pending adds until none is left.
async fn flush(queue: Queue) {
    let mut guard = Flusher {
        queue: &queue,
        done: false,
    };
    loop {
        let batch: Vec<Pending> = {
            let mut s = queue.inner.adds.state();
            if s.pending.is_empty() {
                // seen empty and leaving under one lock: a later add starts a new flusher
                s.flushers -= 1;
                guard.done = true;
                return;
            }
            let n = batch_len(s.pending.iter().map(|(_, size, _)| *size));
            s.pending.drain(..n).collect()
        };
        let (jobs, replies): (Vec<NewJob>, Vec<Reply>) = batch
            .into_iter()
            .map(|(job, _, reply)| (job, reply))
            .unzip();
        match queue.add_chunk(&jobs).await {
            Ok(added) if added.len() == replies.len() => {
                for (reply, a) in replies.into_iter().zip(added) {
                    let _ = reply.send(Ok(a));
                }
            }
            Ok(added) => {
                let e = Error::Protocol(format!(
                    "add_job answered {} results for {} jobs",
                    added.len(),
                    replies.len()
                ));
                for reply in replies {
                    let _ = reply.send(Err(shared(&e)));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(shared(&e)));
                }
            }
        }
    }
}

/// How many of the pending adds (their data sizes, oldest first) the next call takes: up
/// to [`BULK_CHUNK`] jobs and [`MAX_BATCH_BYTES`] of data, and always at least one.
fn batch_len(sizes: impl Iterator<Item = usize>) -> usize {
    let mut n = 0;
    let mut bytes = 0;
    for size in sizes {
        if n == BULK_CHUNK || (n > 0 && bytes + size > MAX_BATCH_BYTES) {
            break;
        }
        bytes += size;
        n += 1;
    }
    n
}

/// Leaves the flusher count right if a flusher ends abnormally (a panic, or its runtime
/// shutting down): its slot is given back, and the adds pending are failed rather than
/// left waiting for a flusher that may never come (a new task could not run on a runtime
/// that is going away). The next add starts a flusher again.
struct Flusher<'a> {
    queue: &'a Queue,
    done: bool,
}

impl Drop for Flusher<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let pending = {
            let mut s = self.queue.inner.adds.state();
            s.flushers -= 1;
            std::mem::take(&mut s.pending)
        };
        for (_, _, reply) in pending {
            let _ = reply.send(Err(Error::Protocol(
                "the add's batch was abandoned (its task ended early); add it again".into(),
            )));
        }
    }
}

/// The error of a batch, for each of its adds: Redis errors keep their kind (a caller may
/// check [`Error::is_connection`]); others keep their message.
fn shared(e: &Error) -> Error {
    match e {
        Error::Redis { addr, source } => Error::Redis {
            addr: addr.clone(),
            source: source.clone(),
        },
        other => Error::Protocol(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_bounded_by_count_and_bytes_and_never_empty() {
        assert_eq!(batch_len(std::iter::repeat_n(100, 5_000)), BULK_CHUNK);
        assert_eq!(batch_len([100; 7].into_iter()), 7);
        // 600 KB jobs: each alone, as two would pass the byte bound
        assert_eq!(batch_len([600_000; 4].into_iter()), 1);
        // one job over the bound still goes, alone
        assert_eq!(batch_len([5 << 20, 10].into_iter()), 1);
        assert_eq!(batch_len([10, 5 << 20].into_iter()), 1);
        assert_eq!(batch_len(std::iter::empty()), 0);
    }
}
