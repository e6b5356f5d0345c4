//! The fetch loop of one queue: wait for room in the claim budget (free handler slots plus
//! what `pace.rs` claims ahead), claim that many ready jobs in one `move_to_active` call,
//! hand them to the queue's dispatcher (which starts each when a handler slot frees), and
//! when the queue is empty block on the queue's wake-up marker until work arrives or a
//! delayed job falls due. When a queue limit (rate or global concurrency, see `limits.rs`) holds starts
//! back, it waits the same way, bounded by when the limit could let work through again.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::dispatch::Claimed;
use super::handler::RawJob;
use super::held::Held;
use super::outage::Outage;
use super::run::Active;
use super::Shared;
use crate::connection::Conn;
use crate::error::{Error, Result};
use crate::job::JobOptions;
use crate::keys::GROUP;
use crate::queue::Queue;
use crate::scripts::{self, Reply, EVENTS_MAXLEN, PROMOTE_BATCH};

/// Longest a fetcher blocks before looking again (also bounds reaction to a lost marker).
const MAX_IDLE: Duration = Duration::from_secs(1);
/// Most jobs claimed by one fetch call.
const MAX_BATCH: usize = 500;
/// How often a fetcher held back by the queue's global concurrency looks again: capacity
/// frees when any worker finishes a job, and finishing does not wake the marker.
const CONCURRENCY_POLL: Duration = Duration::from_millis(50);

pub(crate) struct Fetched {
    pub jobs: Vec<Active>,
    /// When the earliest delayed job is due, in ms from the fetch (None: none delayed).
    pub next_due_in: Option<Duration>,
    pub paused: bool,
    /// A queue limit allows no more starts now: look again after this long at the latest
    /// (the rate window resets, or the concurrency poll).
    pub limited: Option<Duration>,
}

/// One `move_to_active` call: promote due jobs, then claim up to `count` ready ones.
pub(crate) async fn fetch(queue: &Queue, consumer: &str, count: usize) -> Result<Fetched> {
    let inner = &queue.inner;
    let keys = &inner.keys;
    let job_prefix = keys.job_prefix();
    let caps = inner.redis.caps();
    let (v, lanes) = queue
        .invoke_with_lanes(&scripts::MOVE_TO_ACTIVE, "fetching", |inv, lanes| {
            inv.key(keys.meta())
                .key(keys.lanes())
                .key(keys.delayed())
                .key(keys.marker())
                .key(keys.events())
                .key(keys.rate_limiter())
                .key(keys.failed())
                .key(keys.metrics_failed());
            for k in lanes.keys(keys) {
                inv.key(k);
            }
            inv.arg(GROUP)
                .arg(consumer)
                .arg(count)
                .arg(&lanes.version)
                .arg(EVENTS_MAXLEN)
                .arg(&job_prefix)
                .arg(PROMOTE_BATCH)
                .arg(CONCURRENCY_POLL.as_millis() as u64)
                .arg(caps.max_data_bytes)
                .arg(caps.max_opts_bytes);
            for p in &lanes.prios {
                inv.arg(*p);
            }
        })
        .await?;
    let mut r = Reply::new(&v)?;
    let _ok = r.string()?;
    let next_due = r.int()?;
    let paused = r.int()? == 1;
    let now = r.int()?;
    let limited = r.int()?;
    let mut jobs = Vec::with_capacity(r.remaining() / 8);
    while r.remaining() >= 8 {
        let id = r.string()?;
        let lane = r.int()? as usize;
        let sid = r.string()?;
        let name = r.string()?;
        // JSON is UTF-8: stored bytes that are not are corrupt, never silently mended
        let (mut data, bad_data) = match r.utf8()? {
            Ok(text) => (text, false),
            Err(lossy) => (lossy, true),
        };
        let mut opts_text = r.string()?;
        let attempt = u32::try_from(r.int()?).unwrap_or(u32::MAX);
        let note = r.string()?;
        let prio = *lanes
            .prios
            .get(lane.wrapping_sub(1))
            .ok_or_else(|| Error::Protocol(format!("lane number {lane} out of range")))?;
        let mut corrupt = note.strip_prefix("bad:").map(str::to_string);
        if bad_data {
            corrupt.get_or_insert_with(|| "field data is not UTF-8".into());
        }
        if let Some(counts) = note.strip_prefix("read:") {
            // values too long for the claim to read: read them here, a bounded call at a time
            let (dn, on) = counts.split_once(':').unwrap_or((counts, "0"));
            let (dn, on) = (dn.parse().unwrap_or(0), on.parse().unwrap_or(0));
            for (field, n, value) in [("data", dn, &mut data), ("opts", on, &mut opts_text)] {
                if n == 0 {
                    continue;
                }
                match read_long(queue, &id, field, n).await? {
                    Some(text) => *value = text,
                    None => {
                        corrupt.get_or_insert_with(|| format!("field {field} is not UTF-8"));
                    }
                }
            }
        }
        // one job's corrupt options fail that job alone, never the whole claim
        let opts = match JobOptions::from_stored(&opts_text) {
            Ok(o) => o,
            Err(e) => {
                corrupt.get_or_insert_with(|| format!("field opts does not decode: {e}"));
                JobOptions::default()
            }
        };
        jobs.push(Active {
            raw: RawJob {
                id,
                name,
                queue: inner.name.clone(),
                data,
                attempt,
                opts,
            },
            prio,
            sid,
            started_ms: now,
            claimed: Instant::now(),
            corrupt,
        });
    }
    Ok(Fetched {
        jobs,
        next_due_in: (next_due >= 0).then(|| Duration::from_millis((next_due - now).max(0) as u64)),
        paused,
        limited: (limited >= 0).then(|| Duration::from_millis(limited.max(1) as u64)),
    })
}

/// Pieces read per call when a worker reads a long value itself: at most 4 MiB of 64 KiB
/// pieces (job.rs `pieces`), so even a value at the largest cap is read in short calls.
const READ_PIECES: usize = 64;

/// Reads a value stored in `n` pieces (`field`, `field:2` … `field:n`, see job.rs
/// `push_long`) of a job this worker holds, in HMGET calls of [`READ_PIECES`] fields: the
/// claim leaves values this long to the worker so that no one call reads much.
async fn read_long(queue: &Queue, id: &str, field: &str, n: usize) -> Result<Option<String>> {
    let inner = &queue.inner;
    let key = inner.keys.job(id);
    let mut out = Vec::new();
    let mut conn = inner.redis.conn();
    for first in (1..=n).step_by(READ_PIECES) {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&key);
        for k in first..=(first + READ_PIECES - 1).min(n) {
            if k == 1 {
                cmd.arg(field);
            } else {
                cmd.arg(format!("{field}:{k}"));
            }
        }
        let pieces: Vec<Option<Vec<u8>>> = cmd
            .query_async(&mut conn)
            .await
            .map_err(|e| inner.redis.err(e))?;
        for p in pieces.into_iter().flatten() {
            out.extend_from_slice(&p);
        }
    }
    // `None`: not UTF-8, so corrupt
    Ok(String::from_utf8(out).ok())
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

/// Runs until `stop` is cancelled.
pub(crate) async fn fetch_loop(
    queue: Queue,
    shared: Arc<Shared>,
    held: Arc<Held>,
    blocking: Conn,
    claimed: mpsc::UnboundedSender<Claimed>,
    stop: CancellationToken,
) {
    let mut outage = Outage::new(format!("fetching from queue {}", queue.name()));
    let mut waiter = Waiter::new(blocking, queue.inner.keys.marker());
    // a claim call failed: Redis may have run it anyway, leaving entries pending to this
    // worker that it does not hold; give them back once Redis answers again
    let mut unsure = false;
    loop {
        let permits = tokio::select! {
            p = take_permits(&shared.claims, MAX_BATCH) => p,
            _ = stop.cancelled() => None,
        };
        let Some(mut permits) = permits else { break };
        if stop.is_cancelled() {
            break;
        }
        let count = permits.len();
        let asked = Instant::now();
        let fetched = match fetch(&queue, &shared.consumer, count).await {
            Ok(f) => {
                outage.recovered();
                shared.pace.claim_took(asked.elapsed());
                shared.pace.adjust(&shared.claims);
                f
            }
            Err(e) => {
                drop(permits);
                unsure = true;
                let wait = outage.failed(&e);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => break,
                }
                continue;
            }
        };
        let got = fetched.jobs.len();
        for job in fetched.jobs {
            let claim = permits.pop().expect("never more jobs than claims");
            let cancel = shared.cancel_jobs.child_token();
            held.insert(&job, cancel.clone());
            // the dispatcher outlives this loop; it is only gone if its task panicked
            let _ = claimed.send(Claimed { job, claim, cancel });
        }
        drop(permits);
        if unsure {
            match super::release::release(&queue, &held, &shared.consumer).await {
                Ok(n) => {
                    unsure = false;
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
        if got == count && !fetched.paused && fetched.limited.is_none() {
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

type Popped = redis::RedisResult<Option<(String, String, f64)>>;

/// Waits for work on the queue's wake-up marker. One BZPOPMIN is kept in flight across
/// waits: its server-side timeout only fires on Redis's `hz` tick (up to 100 ms late), so
/// due times are timed here, and a BZPOPMIN still pending when a due time passes is simply
/// picked up again by the next wait (a new one would queue behind it on the connection).
pub(crate) struct Waiter {
    conn: Conn,
    marker: String,
    pending: Option<Pin<Box<dyn Future<Output = Popped> + Send>>>,
}

impl Waiter {
    pub fn new(conn: Conn, marker: String) -> Self {
        Waiter {
            conn,
            marker,
            pending: None,
        }
    }

    /// Returns when woken (work added, queue resumed), after `wait`, or at `stop`. A marker
    /// scored in the future means "a delayed job falls due then": keep waiting until then.
    pub async fn wait(&mut self, wait: Duration, stop: &CancellationToken) {
        let mut deadline = Instant::now() + wait;
        loop {
            let pop = self.pending.get_or_insert_with(|| {
                let mut conn = self.conn.clone();
                let mut cmd = redis::cmd("BZPOPMIN");
                cmd.arg(&self.marker).arg(MAX_IDLE.as_secs_f64());
                Box::pin(async move { cmd.query_async(&mut conn).await })
            });
            let popped = tokio::select! {
                r = pop => r,
                _ = tokio::time::sleep_until(deadline.into()) => return,
                _ = stop.cancelled() => return,
            };
            self.pending = None;
            match popped {
                Ok(Some((_, _, score))) => {
                    let now_ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as f64)
                        .unwrap_or(0.0);
                    if score <= now_ms {
                        return;
                    }
                    let due = Instant::now() + Duration::from_millis((score - now_ms) as u64);
                    deadline = deadline.min(due);
                }
                // the server-side timeout: block again until our own deadline
                Ok(None) => {}
                Err(_) => {
                    // the next fetch call notices and reports the outage; do not spin here
                    let left = deadline.saturating_duration_since(Instant::now());
                    tokio::select! {
                        _ = tokio::time::sleep(left.min(Duration::from_millis(200))) => {}
                        _ = stop.cancelled() => {}
                    }
                    return;
                }
            }
        }
    }
}
