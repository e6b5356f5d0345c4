//! Single adds to one queue, coalesced: [`crate::Queue::add`] calls made at the same time
//! share `add_job` script calls instead of making one each.
//!
//! An add joins the queue's pending list and waits for its own result. One flusher task
//! per queue takes everything pending (at most [`BULK_CHUNK`] jobs and about
//! [`MAX_BATCH_BYTES`] of data) as one batch, stores it with one `add_job` call, hands each
//! caller its result, and goes on until nothing is pending. No add ever waits for a timer:
//! a lone add is sent at once, alone; adds that arrive while calls are in flight go
//! together in a later one, so batches grow with the load. Per batch, the script's fixed
//! work (the lane check, the `waiting` counter, the `added` event, the workers' wake-up) is
//! done once.
//!
//! Order: adds are stored in the order they joined the list. The flusher sends its calls in
//! order on the one connection and keeps up to [`MAX_IN_FLIGHT`] in flight only once a call
//! has succeeded: until then one at a time, because redis-rs sends a call again after a
//! NOSCRIPT answer (loading the script first), and a call sent meanwhile would be stored
//! before it. (A `SCRIPT FLUSH` while calls are in flight could still let one batch pass
//! another; a restarted Redis fails the calls in flight, which resets this.) On a Redis
//! Cluster, whose client may send any call again, always one. Each
//! job's result is its own (stored, or the id it duplicates). A batch that fails as a whole
//! (Redis unreachable, say) fails each of its adds with that error.

use std::sync::Mutex;

use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::job::{Added, NewJob};

/// Jobs per `add_job` script call in [`crate::Queue::add_bulk`], and most jobs of one
/// coalesced batch: one round trip per chunk.
pub const BULK_CHUNK: usize = 1_000;

/// Where a coalescer's batches go: the queue whose single adds it gathers (implemented by
/// [`crate::Queue`]). Kept abstract so this module needs nothing of the queue's.
pub(crate) trait Sink: Clone + Send + Sync + 'static {
    /// The queue's coalescer.
    fn coalescer(&self) -> &Coalescer;
    /// How many calls may be in flight at once on the queue's Redis, at most `most`.
    fn in_flight(&self, most: usize) -> usize;
    /// Stores one batch: per job, stored or the id of the job it duplicates.
    fn store(
        &self,
        jobs: Vec<NewJob>,
        data: Vec<String>,
    ) -> impl std::future::Future<Output = Result<Vec<Added>>> + Send;
}

/// Calls of one queue's single adds in flight at once on one Redis (one on a cluster, whose
/// client may send a call again after a redirection).
const MAX_IN_FLIGHT: usize = 4;
/// Most bytes of job data one batch carries (a job bigger than that goes alone): one caller's
/// large jobs must not make a call that Redis refuses or takes long over for everyone.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// A pending add: the job, its data as JSON (encoded once: its length bounds the batches,
/// and the call stores it), and where its result goes.
type Pending = (NewJob, String, oneshot::Sender<Result<Added>>);
type Reply = oneshot::Sender<Result<Added>>;

/// The pending single adds of one queue, and how many flushers run.
#[derive(Default)]
pub(crate) struct Coalescer {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    pending: Vec<Pending>,
    /// Whether a flusher runs.
    flushing: bool,
    /// Whether the last call succeeded, so Redis has the script: several calls may then be
    /// in flight without one being sent again (after NOSCRIPT) behind the next.
    script_ready: bool,
}

impl Coalescer {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Adds one validated job to `queue` through its coalescer; `data` is its data as JSON.
pub(crate) async fn add<S: Sink>(queue: &S, job: NewJob, data: String) -> Result<Added> {
    let (tx, rx) = oneshot::channel();
    let start = {
        let mut s = queue.coalescer().state();
        s.pending.push((job, data, tx));
        let start = !s.flushing;
        s.flushing = true;
        start
    };
    if start {
        // the guard exists before the task does: a task dropped unpolled (a runtime shutting
        // down) or a spawn that fails still gives the flusher's place back
        let guard = Flusher {
            queue: queue.clone(),
            done: false,
        };
        tokio::spawn(flush(guard));
    }
    rx.await.unwrap_or_else(|_| {
        Err(Error::Protocol(
            "the add's batch ended without a reply".into(),
        ))
    })
}

/// Stores batches of pending adds until none is left, keeping up to [`MAX_IN_FLIGHT`]
/// calls in flight (one until a call has succeeded: see the module doc).
async fn flush<S: Sink>(mut guard: Flusher<S>) {
    let queue = guard.queue.clone();
    // whether Redis still has the script is not known after a quiet spell (it may have
    // restarted, and a reconnect in the background hides that): one call first
    queue.coalescer().state().script_ready = false;
    let mut sent = FuturesOrdered::new();
    loop {
        // take what is pending, a batch per free place; leave when nothing is left at all
        loop {
            let mut s = queue.coalescer().state();
            let most = if s.script_ready {
                queue.in_flight(MAX_IN_FLIGHT)
            } else {
                1
            };
            if sent.len() >= most {
                break;
            }
            if s.pending.is_empty() {
                if sent.is_empty() {
                    // seen empty and leaving under one lock: a later add starts a flusher
                    s.flushing = false;
                    guard.done = true;
                    return;
                }
                break;
            }
            let n = batch_len(s.pending.iter().map(|(_, data, _)| data.len()));
            let mut jobs = Vec::with_capacity(n);
            let mut data = Vec::with_capacity(n);
            let mut replies: Vec<Reply> = Vec::with_capacity(n);
            for (job, json, reply) in s.pending.drain(..n) {
                jobs.push(job);
                data.push(json);
                replies.push(reply);
            }
            drop(s);
            let q = queue.clone();
            sent.push_back(async move { (q.store(jobs, data).await, replies) });
        }
        let Some((result, replies)) = sent.next().await else {
            continue;
        };
        queue.coalescer().state().script_ready = result.is_ok();
        match result {
            Ok(added) => {
                for (reply, a) in replies.into_iter().zip(added) {
                    let _ = reply.send(Ok(a));
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
pub(crate) fn batch_len(sizes: impl Iterator<Item = usize>) -> usize {
    batch_len_within(sizes, BULK_CHUNK, MAX_BATCH_BYTES)
}

/// How many of the next items (of `sizes` bytes) go in one call of at most `most` items
/// and about `bytes` bytes: always at least one (a larger item goes alone).
pub(crate) fn batch_len_within(
    sizes: impl Iterator<Item = usize>,
    most: usize,
    bytes: usize,
) -> usize {
    let mut n = 0;
    let mut total = 0;
    for size in sizes {
        if n == most || (n > 0 && total + size > bytes) {
            break;
        }
        total += size;
        n += 1;
    }
    n
}

/// Leaves the flusher count right if a flusher ends abnormally (a panic, or its runtime
/// shutting down): its slot is given back, and the adds pending are failed rather than
/// left waiting for a flusher that may never come (a new task could not run on a runtime
/// that is going away). The next add starts a flusher again.
struct Flusher<S: Sink> {
    queue: S,
    done: bool,
}

impl<S: Sink> Drop for Flusher<S> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let pending = {
            let mut s = self.queue.coalescer().state();
            s.flushing = false;
            std::mem::take(&mut s.pending)
        };
        for (_, _, reply) in pending {
            let _ = reply.send(Err(Error::Protocol(
                "the add's batch was abandoned (its task ended early); add it again".into(),
            )));
        }
    }
}

/// The error of a batch, for each of its adds: Redis errors and a corrupt queue key keep
/// their kind (a caller may check [`Error::is_connection`], the API answers a 409); others
/// keep their message.
fn shared(e: &Error) -> Error {
    match e {
        Error::Redis { addr, source } => Error::Redis {
            addr: addr.clone(),
            source: source.clone(),
        },
        Error::CorruptKey {
            queue,
            key,
            found,
            want,
        } => Error::CorruptKey {
            queue: queue.clone(),
            key: key.clone(),
            found: found.clone(),
            want,
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
