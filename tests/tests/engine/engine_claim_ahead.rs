//! Claiming ahead (worker/pace.rs): a worker with fast handlers claims some jobs beyond its
//! free slots, to hide the claim round trip; with slow handlers it claims none, so it never
//! sits on work another worker could run. Jobs claimed ahead are never left behind at
//! shutdown, and never run more handlers at once than the concurrency.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

fn jobs(name: &str, n: usize) -> Vec<NewJob> {
    (0..n)
        .map(|i| NewJob::new(name, &json!(i), JobOptions::new()).unwrap())
        .collect()
}

/// The most jobs `q` had active at once (sampled) until `done` of them completed.
async fn most_active_until(q: &Queue, done: u64, timeout: Duration) -> u64 {
    let most = Arc::new(AtomicU64::new(0));
    eventually(timeout, &format!("{done} jobs done"), || {
        let (q, most) = (q.clone(), most.clone());
        async move {
            let c = q.counts().await.ok()?;
            most.fetch_max(c.active, Ordering::SeqCst);
            (c.completed_total >= done).then_some(())
        }
    })
    .await;
    most.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_jobs_are_shared_between_workers_not_hoarded() {
    const N: usize = 24;
    let env = TestEnv::new().await;
    let q = env.queue("share").await;
    let ran: Arc<Mutex<HashMap<&'static str, usize>>> = Arc::default();
    let worker = |who: &'static str| {
        let ran = ran.clone();
        env.worker()
            .queues(["share"])
            .concurrency(1)
            .handler("slow", move |_j: Job<Value>, _c: Ctx| {
                let ran = ran.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    *ran.lock().unwrap().entry(who).or_default() += 1;
                    Ok::<_, JobError>(())
                }
            })
            .build()
            .unwrap()
    };
    let a = spawn_worker(worker("a"));
    let b = spawn_worker(worker("b"));
    // both workers are idle and blocked on the queue before any job arrives
    tokio::time::sleep(Duration::from_millis(300)).await;
    q.add_bulk(jobs("slow", N)).await.unwrap();
    let c = wait_finished(&q, N as u64, Duration::from_secs(10)).await;
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    let ran = ran.lock().unwrap().clone();
    eprintln!("{N} slow jobs on two workers of concurrency 1: {ran:?}");
    assert_eq!(c.completed_total, N as u64);
    // an even share is 12 each; hoarding would leave one worker with a handful or none
    for who in ["a", "b"] {
        let n = ran.get(who).copied().unwrap_or(0);
        assert!(n >= N / 4, "worker {who} ran {n} of {N}: {ran:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_jobs_claimed_ahead_still_run_one_at_a_time_and_none_are_left_at_shutdown() {
    const N: usize = 20_000;
    let env = TestEnv::new().await;
    let q = env.queue("ahead").await;
    q.add_bulk(jobs("fast", N)).await.unwrap();
    let (running, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let worker = env
        .worker()
        .queues(["ahead"])
        .concurrency(1)
        .handler("fast", {
            let (running, max) = (running.clone(), max.clone());
            move |_j: Job<Value>, _c: Ctx| {
                let (running, max) = (running.clone(), max.clone());
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, JobError>(())
                }
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    // stop it part way, with jobs claimed ahead of its one slot
    let most_active = most_active_until(&q, 3_000, Duration::from_secs(20)).await;
    guard.stop().await.unwrap();
    let c = q.counts().await.unwrap();
    eprintln!(
        "stopped after {} of {N}; most active seen {most_active}: {c:?}",
        c.completed_total
    );
    assert_eq!(max.load(Ordering::SeqCst), 1, "handlers ran at once");
    assert_eq!(c.active, 0, "claimed jobs left behind at shutdown: {c:?}");
    assert_eq!(c.completed_total + c.waiting, N as u64, "{c:?}");
    assert!(
        c.waiting > 0,
        "every job ran before the stop: it tested nothing"
    );
    assert!(
        most_active > 1,
        "no job was ever claimed ahead of the one slot: the test shows nothing"
    );
}

/// The claim budget covers a job until its outcome is recorded, not only until its handler
/// returns: when recording is the slow part (here each result is 64 KiB, so a `complete`
/// call takes a handful), a worker holds at most its concurrency plus what its queue's room
/// holds of such outcomes, instead of claiming the whole queue while its results wait in
/// memory. The room is sized by bytes: 2,000 small jobs ahead, but only ~1,000 of these.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_results_wait_to_be_recorded_claims_no_more() {
    const N: usize = 3_000;
    const CONCURRENCY: usize = 50;
    // held.rs: ROOM_BYTES (64 MiB) of 64 KiB results (1,000 before the first is recorded),
    // under pace.rs MAX_AHEAD (2,000)
    const MOST_AHEAD: u64 = 1_024;
    let env = TestEnv::new().await;
    let q = env.queue("backlog").await;
    q.add_bulk(jobs("big", N)).await.unwrap();
    let worker = env
        .worker()
        .queues(["backlog"])
        .concurrency(CONCURRENCY)
        .handler("big", |_j: Job<Value>, _c: Ctx| async move {
            Ok::<_, JobError>("x".repeat(64 << 10))
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let most_active = most_active_until(&q, N as u64, Duration::from_secs(60)).await;
    guard.stop().await.unwrap();
    eprintln!("most active seen: {most_active}");
    assert!(
        most_active <= CONCURRENCY as u64 + MOST_AHEAD,
        "{most_active} jobs held at once by a worker of concurrency {CONCURRENCY}"
    );
}
