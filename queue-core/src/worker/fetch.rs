//! The fetch loop of one queue: wait for room in the queue (jobs held until their outcomes
//! are recorded: `run.rs` `Shares`) and in the claim budget (free handler slots plus what
//! `pace.rs` claims ahead), claim that many ready jobs in one `move_to_active` call,
//! hand them to the queue's dispatcher (which starts each when a handler slot frees), and
//! when the queue is empty block on the queue's wake-up marker until work arrives or a
//! delayed job falls due. When a queue limit (rate or global concurrency, see `limits.rs`) holds starts
//! back, it waits the same way, bounded by when the limit could let work through again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::dispatch::Claimed;
use super::held::Held;
use super::outage::Outage;
use super::run::{Active, Shares, Stops};
use super::shared::Shared;
use crate::connection::Conn;
use crate::error::Result;
use crate::handler::RawJob;
use crate::queue::Queue;
use crate::scripts::claim_fast::{self, Fast};
use crate::scripts::wake::Waiter;
use crate::scripts::{move_to_active, release};
use crate::store::QueueStore;

/// Longest a fetcher blocks before looking again (also bounds reaction to a lost marker).
const MAX_IDLE: Duration = Duration::from_secs(1);
/// Most jobs claimed by one fetch call.
const MAX_BATCH: usize = 500;
/// How often a fetcher held back by the queue's global concurrency looks again: capacity
/// frees when any worker finishes a job, and finishing does not wake the marker.
const CONCURRENCY_POLL: Duration = Duration::from_millis(50);

/// A delayed job due within this long makes the next claim the usual one
/// (`move_to_active`, which promotes it), not a fast one.
const DUE_SOON: Duration = Duration::from_millis(20);
/// Claims made the usual way after a fast claim was vetoed, before trying one again.
const VETO_HOLD: u32 = 16;

/// The connections a fetch loop has to itself: its claims' (the queue's store on it) and its
/// blocking wait's.
pub(crate) struct OwnConnections {
    pub claims: QueueStore,
    pub blocking: Conn,
}

pub(crate) struct Fetched {
    pub jobs: Vec<Active>,
    /// When the earliest delayed job is due, in ms from the fetch (None: none delayed).
    pub next_due_in: Option<Duration>,
    pub paused: bool,
    /// A queue limit allows no more starts now: look again after this long at the latest
    /// (the rate window resets, or the concurrency poll).
    pub limited: Option<Duration>,
    /// The lane the next claim may read fast, if it was full (`move_to_active.rs`
    /// `Claim::fast`).
    pub fast: Option<i32>,
    /// How the jobs were claimed.
    pub how: How,
}

/// How a fetch claimed.
#[derive(Debug)]
pub(crate) enum How {
    /// `move_to_active`.
    Usual,
    /// `claim_fast`.
    Fast,
    /// `claim_fast` vetoed, then `move_to_active`.
    Vetoed,
    /// `claim_fast` read these entries (lane priority, entry id) and could not count them
    /// out of `waiting`; nothing claimed: they are to be given back, as uncounted.
    Uncounted(Vec<(i32, String)>),
}

/// One claim of up to `count` ready jobs: from lane `fast` by `claim_fast` when given
/// (a claim it vetoes is made again the usual way), else a `move_to_active` call, which
/// first promotes due jobs. With `traced`, also reads their trace context.
pub(crate) async fn fetch(
    queue: &Queue,
    claims: &QueueStore,
    consumer: &str,
    count: usize,
    traced: bool,
    fast: Option<i32>,
) -> Result<Fetched> {
    let (fast, how) = match fast {
        Some(prio) => match claim_fast::claim(claims, consumer, count, prio).await? {
            Fast::Claimed(claim) => (Some(claim), How::Fast),
            Fast::Veto(why) => {
                tracing::debug!(queue = %queue.name(), why = %why, "claiming the usual way");
                (None, How::Vetoed)
            }
            Fast::Uncounted(read) => {
                return Ok(Fetched {
                    jobs: Vec::new(),
                    next_due_in: None,
                    paused: false,
                    limited: None,
                    fast: None,
                    how: How::Uncounted(read.into_iter().map(|sid| (prio, sid)).collect()),
                })
            }
        },
        None => (None, How::Usual),
    };
    let claim = match fast {
        Some(claim) => claim,
        None => move_to_active::claim(claims, consumer, count, CONCURRENCY_POLL).await?,
    };
    let claimed = Instant::now();
    // (a lean job's came with the claim; a worker that does not trace lists none)
    let stored: Vec<&str> = match traced {
        true => claim
            .jobs
            .iter()
            .filter(|j| j.lean.is_none())
            .map(|j| j.id.as_str())
            .collect(),
        false => Vec::new(),
    };
    let mut traceparents = if !stored.is_empty() {
        read_traceparents(queue, &stored).await.into_iter()
    } else {
        Vec::new().into_iter()
    };
    let jobs = claim
        .jobs
        .into_iter()
        .map(|j| Active {
            raw: RawJob {
                id: j.id,
                name: j.name,
                queue: queue.name().to_string(),
                data: j.data,
                attempt: j.attempt,
                opts: j.opts,
            },
            prio: j.prio,
            sid: j.sid,
            started_ms: j.started_ms,
            claimed,
            corrupt: j.corrupt,
            parent: j.parent,
            group: j.group,
            traceparent: match &j.lean {
                Some(lean) => lean.traceparent.clone().filter(|_| traced),
                None => traceparents.next().flatten(),
            },
            lean: j.lean,
        })
        .collect();
    Ok(Fetched {
        jobs,
        next_due_in: claim.next_due_in,
        paused: claim.paused,
        limited: claim.limited,
        fast: claim.fast,
        how,
    })
}

/// The trace context of each claimed job (`tp`, see `trace.rs`), in one round trip, only
/// while attempts get spans: kept out of the claim, so a worker that does not trace pays
/// nothing for it. A failed read costs the attempts their parent, never the claim.
async fn read_traceparents(queue: &Queue, ids: &[&str]) -> Vec<Option<String>> {
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.hget(queue.inner.keys.job(id), "tp");
    }
    let mut conn = queue.inner.redis.conn();
    // as bytes: one job's tp that is not UTF-8 must not fail the whole read (and cost the
    // other jobs of the claim their parent); it alone is dropped
    match pipe.query_async::<Vec<Option<Vec<u8>>>>(&mut conn).await {
        Ok(tps) => tps
            .into_iter()
            .map(|tp| tp.and_then(|b| String::from_utf8(b).ok()))
            .collect(),
        Err(e) => {
            tracing::debug!(queue = %queue.name(), error = %e, "trace context not read");
            Vec::new()
        }
    }
}

/// Takes one permit of `sem` (waiting for it), then every other free one up to `max`.
async fn take_permits(sem: &Arc<Semaphore>, max: usize) -> Option<Vec<OwnedSemaphorePermit>> {
    let first = sem.clone().acquire_owned().await.ok()?;
    let mut permits = vec![first];
    while permits.len() < max {
        match sem.clone().try_acquire_owned() {
            Ok(p) => permits.push(p),
            Err(_) => break,
        }
    }
    Some(permits)
}

/// Places in the queue's `room` and as many permits of the claim budget `claims` (at least
/// one of each, waiting for them; at most MAX_BATCH), the places first.
async fn take_shares(
    room: &Arc<Semaphore>,
    claims: &Arc<Semaphore>,
) -> Option<(Vec<OwnedSemaphorePermit>, Vec<OwnedSemaphorePermit>)> {
    let mut rooms = take_permits(room, MAX_BATCH).await?;
    let permits = take_permits(claims, rooms.len()).await?;
    rooms.truncate(permits.len());
    Some((rooms, permits))
}

/// Runs until `stop` is cancelled.
pub(crate) async fn fetch_loop(
    queue: Queue,
    own: OwnConnections,
    shared: Arc<Shared>,
    held: Arc<Held>,
    claimed: mpsc::UnboundedSender<Claimed>,
    lease: Duration,
    stop: CancellationToken,
) {
    let mut outage = Outage::within_lease(format!("fetching from queue {}", queue.name()), lease);
    let OwnConnections { claims, blocking } = own;
    let mut waiter = Waiter::marker(blocking, &queue.inner, MAX_IDLE);
    // a claim call failed: Redis may have run it anyway, leaving entries pending to this
    // worker that it does not hold; give them back once Redis answers again
    let mut unsure = false;
    // entries a fast claim read but could not count out of `waiting`: given back with the
    // others (release), as uncounted
    let mut uncounted = Vec::new();
    // the lane the next claim reads fast (claim_fast.rs): after a full claim that met nothing
    // but lane entries, on one Redis (a cluster's connection sends no transactions); after a
    // veto, not for the next VETO_HOLD claims (each veto costs a read given back)
    let mut fast = None;
    let fast_ok = !claims.redis.is_cluster();
    let mut hold = 0;
    loop {
        // room in the queue first (a queue whose recording stalls waits alone), then claim
        // budget for as many
        let permits = tokio::select! {
            p = take_shares(&held.room, &shared.claims) => p,
            _ = stop.cancelled() => None,
        };
        let Some((mut rooms, mut permits)) = permits else {
            break;
        };
        if stop.is_cancelled() {
            break;
        }
        let count = permits.len();
        let asked = Instant::now();
        let traced = shared.spans.wanted();
        let fetched = match fetch(&queue, &claims, &shared.consumer, count, traced, fast).await {
            Ok(f) => {
                outage.recovered();
                shared.pace.claim_took(asked.elapsed());
                shared.pace.adjust(&shared.claims);
                f
            }
            Err(e) => {
                drop((rooms, permits));
                unsure = true;
                fast = None;
                let wait = outage.failed(&e);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => break,
                }
                continue;
            }
        };
        let got = fetched.jobs.len();
        match &fetched.how {
            How::Vetoed => hold = VETO_HOLD,
            How::Uncounted(read) => {
                uncounted.extend(read.iter().cloned());
                unsure = true;
            }
            _ => hold = hold.saturating_sub(1),
        }
        // (a due job is promoted by move_to_active only: one falling due before the next
        // claim would have the fast claim give back what it read)
        let due = fetched.next_due_in.is_some_and(|d| d < DUE_SOON);
        fast = fetched
            .fast
            .filter(|_| fast_ok && hold == 0 && got == count && !due && !fetched.paused);
        for job in fetched.jobs {
            let shares = Shares {
                claim: permits.pop().expect("never more jobs than claims"),
                room: rooms.pop().expect("as many places as claims"),
            };
            let stops = Arc::new(Stops::default());
            held.insert(&job, stops.clone());
            let job = Box::new(job);
            // the dispatcher outlives this loop; it is only gone if its task panicked
            let _ = claimed.send(Claimed { job, shares, stops });
        }
        drop((rooms, permits));
        if unsure {
            match release::release(&queue.inner, &held.by_lane(), &uncounted, &shared.consumer)
                .await
            {
                Ok(n) => {
                    unsure = false;
                    uncounted.clear();
                    if n > 0 {
                        tracing::info!(
                            queue = %queue.name(),
                            jobs = n,
                            "gave back jobs claimed by a call whose reply was lost"
                        );
                    }
                }
                Err(e) => {
                    outage.failed(&e);
                }
            }
        }
        // (a fast claim read one lane only: a short one looks at the others the usual way)
        if got == count && !fetched.paused && fetched.limited.is_none()
            || matches!(fetched.how, How::Fast | How::Uncounted(_))
        {
            continue;
        }
        // Nothing more to take now: sleep until woken, a delayed job is due, a queue limit
        // could let more through, or MAX_IDLE.
        let wait = [fetched.next_due_in, fetched.limited]
            .into_iter()
            .flatten()
            .fold(MAX_IDLE, Duration::min);
        if wait.is_zero() {
            continue;
        }
        waiter.wait(wait, &stop).await;
    }
}
