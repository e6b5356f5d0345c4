//! The schedule loop of one queue: fire the ticks of repeatable jobs that are due.
//!
//! Every worker runs it, and correctness does not depend on how many do: ticks are first
//! claimed by the `schedule_fire` script (a compare-and-set on the schedule's due score, so
//! one worker wins), and only the winner adds the ticks' jobs, whose ids are derived from the
//! schedule and the tick. Between ticks the loop sleeps until the earliest one is due, but
//! at most [`MAX_IDLE`]; an upsert wakes it through the schedules' wake-up marker, so a new
//! schedule's first tick is on time.
//!
//! A loop that reaches a schedule late (it was busy, or slow) fires every tick it missed, in
//! order, each its own job, up to [`MAX_TICKS`] per round; a schedule due longer ago than
//! [`CATCH_UP`] missed its ticks while no worker ran, and only the latest of them fires.

use futures_util::future::BoxFuture;

use super::duty::Duty;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::outage::Outage;
use crate::error::{Error, Result};
use crate::job::NewJob;
use crate::queue::{checked_data, Queue};
use crate::schedule::{Schedule, CATCH_UP};
use crate::scripts::wake::Waiter;
use crate::scripts::{schedule_fire, schedules};

/// Longest the loop sleeps before looking at the due set again (without a wake-up).
const MAX_IDLE: Duration = Duration::from_secs(1);
/// Most due schedules fired per round (more are fired in the next round, at once).
const BATCH: usize = 200;
/// Most pages of due ticks this worker refused (over its caps) that one round looks past.
const MAX_REFUSED_PAGES: usize = 50;
/// Most ticks (jobs) fired per round, over all schedules, so that the add of their jobs
/// stays one bounded script call; a schedule with more ticks due is due again at once.
const MAX_TICKS: usize = 1_000;
/// Pause after a round that claimed nothing.
const LOST_RACE_PAUSE: Duration = Duration::from_millis(10);

/// Starts this duty (see `duty.rs`).
pub(crate) fn start(d: Duty<'_>) -> BoxFuture<'static, ()> {
    Box::pin(schedule_loop(d.queue.clone(), d.stop.clone()))
}

async fn schedule_loop(queue: Queue, stop: CancellationToken) {
    let mut outage = Outage::new(format!("firing schedules of queue {}", queue.name()));
    // blocks on the wake-up marker between rounds; made again after a failure to connect
    let mut waiter: Option<Waiter> = None;
    while !stop.is_cancelled() {
        let wait = match fire_due(&queue).await {
            Ok(wait) => {
                outage.recovered();
                wait.min(MAX_IDLE)
            }
            Err(e) => outage.failed(&e),
        };
        if wait.is_zero() {
            continue;
        }
        if waiter.is_none() {
            if let Ok(conn) = queue.inner.redis.blocking_connection().await {
                waiter = Some(Waiter::schedules(conn, &queue.inner, MAX_IDLE));
            }
        }
        match waiter.as_mut() {
            Some(waiter) => waiter.wait(wait, &stop).await,
            None => {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => return,
                }
            }
        }
    }
}

/// A due schedule this worker wants to move from `tick` to `next`, and the jobs of the ticks
/// it fires once it has claimed them (`None`: drop a broken schedule from the due set).
struct Claim {
    id: String,
    tick: u64,
    next: Option<u64>,
    jobs: Option<Vec<NewJob>>,
}

/// One round: fire every schedule due now; returns how long until the earliest next tick
/// (zero after firing: look again at once).
pub(crate) async fn fire_due(queue: &Queue) -> Result<Duration> {
    // (ticks this worker refused, left due for others, are not looked at again; a page of
    // them is looked past, or the schedules behind it would never fire here)
    let mut start = 0;
    let (now, earliest) = loop {
        let ((secs, micros), page) = schedules::due(&queue.inner, start, BATCH).await?;
        let full = page.len() == BATCH;
        let earliest: Vec<(String, u64)> = page
            .into_iter()
            .map(|(id, score)| (id, score.max(0.0) as u64))
            .filter(|(id, tick)| !refused::holds(queue, id, *tick))
            .collect();
        start += BATCH;
        if !earliest.is_empty() || !full || start >= MAX_REFUSED_PAGES * BATCH {
            break (secs * 1000 + micros / 1000, earliest);
        }
    };
    let due: Vec<(String, u64)> = earliest
        .iter()
        .filter(|(_, tick)| *tick <= now)
        .cloned()
        .collect();
    if due.is_empty() {
        return Ok(earliest
            .first()
            .map(|(_, tick)| Duration::from_millis(tick.saturating_sub(now)))
            .unwrap_or(MAX_IDLE));
    }
    let ids: Vec<&str> = due.iter().map(|(id, _)| id.as_str()).collect();
    let defs = schedules::definitions(&queue.inner, &ids).await?;
    let mut budget = MAX_TICKS;
    let mut claims = Vec::with_capacity(due.len());
    for ((id, tick), def) in due.into_iter().zip(defs) {
        if budget == 0 {
            // the rest are due still: the next round, at once, fires them
            break;
        }
        let Some(claim) = plan(queue, id, tick, def, now, budget) else {
            continue;
        };
        budget -= claim.jobs.as_ref().map_or(0, Vec::len);
        claims.push(claim);
    }
    let claimed = schedule_fire::move_ticks(
        &queue.inner,
        claims.iter().map(|c| (c.id.as_str(), c.tick, c.next)),
    )
    .await?;
    let fired: Vec<&Claim> = claims
        .iter()
        .zip(claimed)
        .filter(|(c, won)| *won && c.jobs.is_some())
        .map(|(c, _)| c)
        .collect();
    let jobs: Vec<NewJob> = fired
        .iter()
        .flat_map(|c| c.jobs.iter().flatten().cloned())
        .collect();
    if jobs.is_empty() {
        // other workers fired them (or a broken schedule was dropped): look again shortly,
        // never spin on a tick this worker cannot claim
        return Ok(LOST_RACE_PAUSE);
    }
    if let Err(e) = queue.add_bulk(jobs).await {
        // give the ticks back so that a worker fires them once Redis answers again (the
        // job ids make a second add of one that did get stored a no-op)
        let back = fired
            .iter()
            .filter_map(|c| c.next.map(|next| (c.id.as_str(), next, Some(c.tick))));
        if let Err(e2) = schedule_fire::move_ticks(&queue.inner, back).await {
            tracing::warn!(
                queue = %queue.name(),
                error = %e2,
                "could not give back schedule ticks whose jobs were not added: they are skipped"
            );
        }
        return Err(e);
    }
    for c in &fired {
        let n = c.jobs.as_ref().map_or(0, Vec::len);
        tracing::debug!(queue = %queue.name(), schedule = %c.id, tick = c.tick, ticks = n, "schedule fired");
    }
    Ok(Duration::ZERO)
}

/// What to do with schedule `id`, due at `tick`: fire the ticks from there to `now` (at
/// most `budget`), or only the latest one when they were missed while no worker ran (no
/// burst after downtime), and move on to the tick after them; `None`: leave it due (its
/// jobs are over this worker's caps).
fn plan(
    queue: &Queue,
    id: String,
    tick: u64,
    def: Option<String>,
    now: u64,
    budget: usize,
) -> Option<Claim> {
    let parsed = def
        .ok_or_else(|| Error::Protocol("it has a due tick but no definition".into()))
        .and_then(|json| Schedule::from_stored(&id, &json))
        .and_then(|s| {
            let window = CATCH_UP.as_millis() as u64;
            Ok((s.repeat.ticks_due(tick, now, window, budget)?, s))
        });
    match parsed {
        Ok(((ticks, next), schedule)) => {
            // a job this worker's add refuses (over its size caps, lower than those of the
            // process that stored the schedule) would fail the one add of every schedule
            // fired with it, round after round. Its ticks are not claimed (they stay due, for
            // a worker that takes them); the ticks carry the same data, so one is checked.
            let caps = queue.inner.redis.caps();
            if let Some(e) = ticks
                .first()
                .and_then(|t| checked_data(&schedule.job_for_tick(*t), caps).err())
            {
                refused::note(queue, &id, tick, &e);
                return None;
            }
            Some(Claim {
                jobs: Some(ticks.iter().map(|t| schedule.job_for_tick(*t)).collect()),
                id,
                tick,
                next,
            })
        }
        Err(e) => {
            tracing::error!(
                queue = %queue.name(),
                schedule = %id,
                error = %e,
                "schedule cannot be fired: it is taken off the due set (upsert it again to fix)"
            );
            Some(Claim {
                id,
                tick,
                next: None,
                jobs: None,
            })
        }
    }
}

/// The due ticks of schedules whose jobs this worker's caps refuse, left due for workers
/// that take them. Read before the definitions, so a refused schedule's definition (up to the
/// caps) is not read again every round, and never makes the loop look again at once; a tick
/// another worker moves on is checked afresh.
mod refused {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    use crate::error::Error;
    use crate::queue::Queue;

    /// (queue, schedule) → the due tick refused.
    fn held() -> std::sync::MutexGuard<'static, HashMap<(String, String), u64>> {
        static HELD: OnceLock<Mutex<HashMap<(String, String), u64>>> = OnceLock::new();
        HELD.get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Whether schedule `id`'s tick `tick` is one this worker refused.
    pub(super) fn holds(queue: &Queue, id: &str, tick: u64) -> bool {
        held().get(&(queue.name().to_string(), id.to_string())) == Some(&tick)
    }

    /// Notes that this worker refuses schedule `id`'s tick `tick` (`e`: why); logged the first
    /// time the schedule is refused.
    pub(super) fn note(queue: &Queue, id: &str, tick: u64, e: &Error) {
        let first = held()
            .insert((queue.name().to_string(), id.to_string()), tick)
            .is_none();
        if first {
            tracing::error!(
                queue = %queue.name(),
                schedule = %id,
                error = %e,
                "schedule's jobs refused by this worker: its ticks are left to workers that \
                 take them (the queue's other schedules fire)"
            );
        }
    }
}
