//! Claiming ahead. When handlers are much faster than a claim round trip, a worker that only
//! claims for its free slots spends most of its time waiting on Redis: at concurrency 1 a
//! no-op job takes microseconds and the claim that follows it tens of them. So a worker claims
//! a few jobs beyond its free slots, sized from what it measures: enough to cover two claim
//! round trips, never more than about 2 ms of handler work, never more than [`MAX_AHEAD`].
//! Slow handlers (anything near the round trip or slower) get no claim-ahead at all, so a
//! busy worker never sits on work an idle one could run.
//!
//! Jobs claimed ahead are held like running ones (leases renewed, reclaimed if the worker
//! dies) and wait for a handler slot in claim order; their attempt starts when the slot does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Semaphore;

/// Most jobs claimed beyond the handler slots. With fast handlers this is what binds: at
/// 2,000 a worker of concurrency 50 finds a full claim (fetch.rs `MAX_BATCH`, 500) free at
/// each fetch, so a claim's fixed work, and the work it does once per group served, is
/// shared by more jobs (at 500, claims of ~270 jobs left grouped processing at 0.66x of
/// ungrouped, against 0.73x at 1,000; README, *Groups*); and Redis's turns and the
/// worker's overlap more (at 1,000, no-op jobs with `removeOnComplete` ran 158,000–176,000
/// jobs/s, at 2,000 186,000–215,000). A queue's room (`held.rs`) holds as many only while
/// its jobs and outcomes are small.
pub(crate) const MAX_AHEAD: u64 = 2000;
/// Most handler work (per slot) claimed ahead.
const HORIZON_NS: u64 = 2_000_000;
/// Handler times are taken as at least this (the per-job cost around the handler).
const MIN_HANDLER_NS: u64 = 10_000;

/// Measured handler and claim times, and the claim budget they size.
pub(crate) struct Pace {
    concurrency: u64,
    /// Moving averages, in ns (0: nothing measured yet).
    handler_ns: AtomicU64,
    claim_ns: AtomicU64,
    /// Claim permits added beyond `concurrency`.
    ahead: Mutex<usize>,
}

impl Pace {
    pub fn new(concurrency: usize) -> Self {
        Pace {
            concurrency: concurrency as u64,
            handler_ns: AtomicU64::new(0),
            claim_ns: AtomicU64::new(0),
            ahead: Mutex::new(0),
        }
    }

    /// A handler ran for `d`.
    pub fn handler_took(&self, d: Duration) {
        average_in(&self.handler_ns, nanos(d));
    }

    /// A claim call took `d`.
    pub fn claim_took(&self, d: Duration) {
        average_in(&self.claim_ns, nanos(d));
    }

    /// How many jobs to claim beyond the handler slots, from the measurements so far.
    pub fn target(&self) -> usize {
        let handler = self.handler_ns.load(Ordering::Relaxed);
        let claim = self.claim_ns.load(Ordering::Relaxed);
        if handler == 0 || claim == 0 {
            return 0;
        }
        let handler = handler.max(MIN_HANDLER_NS);
        let c = self.concurrency;
        let cover = 2 * c * claim / handler;
        let horizon = HORIZON_NS * c / handler;
        cover.min(horizon).min(MAX_AHEAD) as usize
    }

    /// Resizes the claim budget `claims` (created with `concurrency` permits) to the target.
    pub fn adjust(&self, claims: &Semaphore) {
        let mut ahead = self.ahead.lock().unwrap_or_else(|e| e.into_inner());
        resize(claims, &mut ahead, self.target());
    }
}

/// Moves the permits `sem` has beyond its base from `*extra` toward `target`. Permits in use
/// are never taken back: the semaphore shrinks as they come home (at a later call).
pub(crate) fn resize(sem: &Semaphore, extra: &mut usize, target: usize) {
    if target > *extra {
        sem.add_permits(target - *extra);
        *extra = target;
    } else if target < *extra {
        *extra -= sem.forget_permits(*extra - target);
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// Folds `x` into the moving average in `avg` (weight 1/8; the first sample is taken whole).
/// Concurrent updates may lose a sample, which an average can afford.
pub(crate) fn average_in(avg: &AtomicU64, x: u64) {
    let old = avg.load(Ordering::Relaxed);
    let new = if old == 0 {
        x.max(1)
    } else {
        (old - old / 8 + x / 8).max(1)
    };
    avg.store(new, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace(concurrency: usize, handler: Duration, claim: Duration) -> Pace {
        let p = Pace::new(concurrency);
        p.handler_took(handler);
        p.claim_took(claim);
        p
    }

    #[test]
    fn nothing_ahead_before_anything_is_measured() {
        let p = Pace::new(4);
        assert_eq!(p.target(), 0);
        p.claim_took(Duration::from_micros(100));
        assert_eq!(p.target(), 0);
    }

    #[test]
    fn fast_handlers_cover_two_round_trips() {
        // 10 µs handlers, 100 µs claims, one slot: 20 jobs cover two claims
        let p = pace(1, Duration::from_micros(10), Duration::from_micros(100));
        assert_eq!(p.target(), 20);
        // capped for many slots and slower claims
        let p = pace(50, Duration::from_micros(10), Duration::from_millis(1));
        assert_eq!(p.target(), MAX_AHEAD as usize);
    }

    #[test]
    fn slow_handlers_get_nothing_ahead() {
        let p = pace(1, Duration::from_millis(5), Duration::from_micros(100));
        assert_eq!(p.target(), 0);
        let p = pace(50, Duration::from_secs(60), Duration::from_millis(2));
        assert_eq!(p.target(), 0);
    }

    #[test]
    fn work_ahead_is_bounded_by_the_horizon() {
        // 500 µs handlers, 10 ms claims: covering would take 40, the horizon allows 4
        let p = pace(1, Duration::from_micros(500), Duration::from_millis(10));
        assert_eq!(p.target(), 4);
    }

    #[test]
    fn budget_grows_and_shrinks_with_the_target() {
        let claims = Semaphore::new(1);
        let p = pace(1, Duration::from_micros(10), Duration::from_micros(100));
        p.adjust(&claims);
        assert_eq!(claims.available_permits(), 21);
        // handlers turn slow: the average moves, the budget follows
        for _ in 0..100 {
            p.handler_took(Duration::from_millis(50));
        }
        p.adjust(&claims);
        assert_eq!(claims.available_permits(), 1);
    }
}
