//! Delayed jobs (guarantee 3): never early, at most 50 ms late at low load, started in due
//! order. Timing tests in this file run one at a time (see [`timing_lock`]) and wait on
//! in-memory state, not by polling Redis, so Redis sees only the worker's own traffic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

/// Serialises the timing-sensitive tests of this binary (tests run in parallel otherwise).
async fn timing_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Wall-clock ms (same clock as Redis TIME: the test Redis runs on this machine) and
/// `Instant` at which each job's handler started, by job id.
type Starts = Arc<Mutex<HashMap<String, (u64, Instant)>>>;

/// A worker whose `rec` handler records its start time per job id.
fn recording_worker(env: &TestEnv, queue: &str, concurrency: usize) -> (Worker, Starts) {
    let starts: Starts = Arc::default();
    let s = starts.clone();
    let worker = env
        .worker()
        .queues([queue])
        .concurrency(concurrency)
        .handler("rec", move |job: Job<Value>, _ctx: Ctx| {
            let s = s.clone();
            async move {
                let at = (now_ms(), Instant::now());
                s.lock().unwrap().insert(job.id, at);
                Ok::<_, JobError>(())
            }
        })
        .build()
        .unwrap();
    (worker, starts)
}

/// Waits (without touching Redis) until `n` handlers have started.
async fn wait_started(starts: &Starts, n: usize, timeout: Duration) {
    eventually(timeout, &format!("{n} handlers to start"), || async {
        (starts.lock().unwrap().len() >= n).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_3_a_delayed_job_does_not_start_before_its_due_time() {
    let _timing = timing_lock().await;
    let env = TestEnv::new().await;
    let q = env.queue("notearly").await;
    let (worker, starts) = recording_worker(&env, "notearly", 4);
    let guard = spawn_worker(worker);
    // let the worker reach its idle wait first
    tokio::time::sleep(Duration::from_millis(100)).await;

    let before_add = Instant::now();
    let added = q
        .add(
            "rec",
            &json!({}),
            JobOptions::new().delay(Duration::from_millis(500)),
        )
        .await
        .unwrap();
    // half-way: still delayed, nothing started
    tokio::time::sleep(Duration::from_millis(250)).await;
    let mid = q.job(&added.id).await.unwrap();
    assert_eq!(mid.state, JobState::Delayed);
    assert!(starts.lock().unwrap().is_empty(), "started 250 ms early");
    let c = q.counts().await.unwrap();
    assert_eq!((c.delayed, c.waiting, c.active), (1, 0, 0));

    wait_started(&starts, 1, Duration::from_secs(3)).await;
    let (start_ms, start_at) = starts.lock().unwrap()[&added.id];
    let elapsed = start_at.duration_since(before_add);
    let info = q.job(&added.id).await.unwrap();
    let due = info.created_at + 500;
    let lateness = start_ms as i64 - due as i64;
    eprintln!(
        "delay 500ms: handler started {elapsed:?} after add, {lateness} ms after due (Redis clock)"
    );
    assert!(
        elapsed >= Duration::from_millis(495),
        "started {elapsed:?} after the add of a 500 ms delay"
    );
    assert!(lateness >= -5, "started {} ms early", -lateness);
    // how late is the business of the lateness tests; here it only has to have run
    assert!(lateness <= 1_000, "started {lateness} ms late");
    wait_finished(&q, 1, Duration::from_secs(2)).await;
    assert_eq!(q.job(&added.id).await.unwrap().state, JobState::Completed);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_3_delayed_jobs_start_at_most_50ms_late_at_low_load() {
    let _timing = timing_lock().await;
    let env = TestEnv::new().await;
    let q = env.queue("lateness").await;
    let (worker, starts) = recording_worker(&env, "lateness", 8);
    let guard = spawn_worker(worker);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // 20 jobs, due 100..765 ms from now, added in a shuffled order
    let mut delays: Vec<u64> = (0..20).map(|i| 100 + 35 * i).collect();
    delays.sort_by_key(|d| (d * 7919) % 97);
    let mut ids = Vec::new();
    for d in &delays {
        let a = q
            .add(
                "rec",
                &json!({}),
                JobOptions::new().delay(Duration::from_millis(*d)),
            )
            .await
            .unwrap();
        ids.push((a.id, *d));
    }
    wait_started(&starts, 20, Duration::from_secs(4)).await;
    let starts = starts.lock().unwrap().clone();
    let mut late = Vec::new();
    for (id, d) in &ids {
        let info = q.job(id).await.unwrap();
        let (start_ms, _) = starts[id];
        late.push(start_ms as i64 - (info.created_at + d) as i64);
    }
    let max = *late.iter().max().unwrap();
    let min = *late.iter().min().unwrap();
    let mean = late.iter().sum::<i64>() as f64 / late.len() as f64;
    eprintln!(
        "delay lateness over 20 jobs (ms): min {min}, mean {mean:.1}, max {max}; all {late:?}"
    );
    assert!(min >= -5, "a job started {} ms before its due time", -min);
    assert!(
        max <= 50,
        "a delayed job started {max} ms late (limit 50 ms): {late:?}"
    );
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_3_a_delayed_job_is_on_time_when_the_worker_starts_after_the_add() {
    let _timing = timing_lock().await;
    let env = TestEnv::new().await;
    let q = env.queue("latestart").await;
    let added = q
        .add(
            "rec",
            &json!({}),
            JobOptions::new().delay(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    let (worker, starts) = recording_worker(&env, "latestart", 2);
    let guard = spawn_worker(worker);
    wait_started(&starts, 1, Duration::from_secs(3)).await;
    let (start_ms, _) = starts.lock().unwrap()[&added.id];
    let info = q.job(&added.id).await.unwrap();
    let lateness = start_ms as i64 - (info.created_at + 300) as i64;
    eprintln!("delay 300ms, worker started after the add: {lateness} ms late");
    assert!((-5..=50).contains(&lateness), "lateness {lateness} ms");
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_jobs_with_different_delays_start_in_due_order() {
    let _timing = timing_lock().await;
    let env = TestEnv::new().await;
    let q = env.queue("dueorder").await;
    let order: Arc<Mutex<Vec<u64>>> = Arc::default();
    let o = order.clone();
    let worker = env
        .worker()
        .queues(["dueorder"])
        .concurrency(1)
        .handler("rec", move |job: Job<u64>, _ctx: Ctx| {
            let o = o.clone();
            async move {
                o.lock().unwrap().push(job.data);
                Ok::<_, JobError>(())
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    // added latest-due first; 60 ms apart, so due order is unambiguous
    let delays: Vec<u64> = (0..8).rev().map(|i| 100 + 60 * i).collect();
    for d in &delays {
        q.add("rec", d, JobOptions::new().delay(Duration::from_millis(*d)))
            .await
            .unwrap();
    }
    eventually(
        Duration::from_secs(3),
        "8 delayed jobs to start",
        || async { (order.lock().unwrap().len() >= 8).then_some(()) },
    )
    .await;
    let got = order.lock().unwrap().clone();
    let mut want = delays.clone();
    want.sort();
    assert_eq!(got, want, "delayed jobs started out of due order");
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_delayed_jobs_join_the_back_of_their_lane() {
    let _timing = timing_lock().await;
    let env = TestEnv::new().await;
    let q = env.queue("dueback").await;
    // a delayed job that is already due when the worker starts, behind waiting ones added
    // before it: it is promoted on the first fetch, after the waiting ones
    for i in 0..3 {
        q.add("rec", &format!("w{i}"), JobOptions::new())
            .await
            .unwrap();
    }
    q.add(
        "rec",
        &"d",
        JobOptions::new().delay(Duration::from_millis(20)),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(40)).await;
    let order: Arc<Mutex<Vec<String>>> = Arc::default();
    let o = order.clone();
    let worker = env
        .worker()
        .queues(["dueback"])
        .concurrency(1)
        .handler("rec", move |job: Job<String>, _ctx: Ctx| {
            let o = o.clone();
            async move {
                o.lock().unwrap().push(job.data);
                Ok::<_, JobError>(())
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_finished(&q, 4, Duration::from_secs(3)).await;
    let got = order.lock().unwrap().clone();
    assert_eq!(got, vec!["w0", "w1", "w2", "d"]);
    let c = q.counts().await.unwrap();
    assert_eq!((c.delayed, c.completed), (0, 4));
    guard.stop().await.unwrap();
}
