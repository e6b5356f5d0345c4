//! Concurrency: a worker never runs more handlers at once than its `concurrency` (over all
//! its queues) and does reach it; several workers on one queue run every job exactly once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

/// Handlers running now, and the most ever seen at once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    fn enter(&self) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

/// A worker on `queues` whose `sleep` handler sleeps `ms` while counted in `gauge`.
fn sleeping_worker(
    env: &TestEnv,
    queues: &[&str],
    concurrency: usize,
    ms: u64,
    gauge: Arc<Gauge>,
) -> Worker {
    env.worker()
        .queues(queues.iter().copied())
        .concurrency(concurrency)
        .handler("sleep", move |_job: Job<Value>, _ctx: Ctx| {
            let gauge = gauge.clone();
            async move {
                gauge.enter();
                tokio::time::sleep(Duration::from_millis(ms)).await;
                gauge.leave();
                Ok::<_, JobError>(())
            }
        })
        .build()
        .unwrap()
}

fn sleep_jobs(n: usize) -> Vec<NewJob> {
    (0..n)
        .map(|i| NewJob::new("sleep", &json!(i), JobOptions::new()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_is_reached_and_never_exceeded() {
    let env = TestEnv::new().await;
    let q = env.queue("conc").await;
    q.add_bulk(sleep_jobs(40)).await.unwrap();
    let gauge = Arc::new(Gauge::default());
    let started = Instant::now();
    let guard = spawn_worker(sleeping_worker(&env, &["conc"], 4, 50, gauge.clone()));
    // sample `active` while it runs (informational: Redis may briefly count a finished
    // job whose outcome is not recorded yet, so it can exceed the limit for a moment)
    let max_active = Arc::new(AtomicUsize::new(0));
    let c = eventually(Duration::from_secs(5), "40 jobs", || {
        let (q, max_active) = (q.clone(), max_active.clone());
        async move {
            let c = q.counts().await.ok()?;
            max_active.fetch_max(c.active as usize, Ordering::SeqCst);
            (c.completed_total >= 40).then_some(c)
        }
    })
    .await;
    let max_active = max_active.load(Ordering::SeqCst);
    let took = started.elapsed();
    guard.stop().await.unwrap();
    eprintln!(
        "40 x 50 ms at concurrency 4: {took:?}, max handlers at once {}, max active in Redis {max_active}",
        gauge.max()
    );
    assert_eq!(c.completed_total, 40);
    assert_eq!(gauge.max(), 4, "max handlers running at once");
    // 10 rounds of 50 ms: parallel, not serial (2 s) — generous upper bound
    assert!(took < Duration::from_millis(1_500), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_one_runs_jobs_strictly_one_at_a_time() {
    let env = TestEnv::new().await;
    let q = env.queue("serial").await;
    q.add_bulk(sleep_jobs(10)).await.unwrap();
    let gauge = Arc::new(Gauge::default());
    let guard = spawn_worker(sleeping_worker(&env, &["serial"], 1, 20, gauge.clone()));
    wait_finished(&q, 10, Duration::from_secs(3)).await;
    guard.stop().await.unwrap();
    assert_eq!(gauge.max(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_is_shared_by_all_queues_of_one_worker() {
    let env = TestEnv::new().await;
    let a = env.queue("conc-a").await;
    let b = env.queue("conc-b").await;
    a.add_bulk(sleep_jobs(20)).await.unwrap();
    b.add_bulk(sleep_jobs(20)).await.unwrap();
    let gauge = Arc::new(Gauge::default());
    let guard = spawn_worker(sleeping_worker(
        &env,
        &["conc-a", "conc-b"],
        4,
        50,
        gauge.clone(),
    ));
    wait_finished(&a, 20, Duration::from_secs(5)).await;
    wait_finished(&b, 20, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    eprintln!("two queues, concurrency 4: max at once {}", gauge.max());
    assert_eq!(gauge.max(), 4, "max handlers at once over both queues");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_holds_while_jobs_keep_arriving() {
    let env = TestEnv::new().await;
    let q = env.queue("trickle").await;
    let gauge = Arc::new(Gauge::default());
    let guard = spawn_worker(sleeping_worker(&env, &["trickle"], 3, 15, gauge.clone()));
    for i in 0..60 {
        q.add("sleep", &json!(i), JobOptions::new()).await.unwrap();
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    wait_finished(&q, 60, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    assert!(
        gauge.max() <= 3,
        "ran {} at once with concurrency 3",
        gauge.max()
    );
    assert_eq!(gauge.max(), 3, "never used all 3 slots");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_on_one_queue_run_2000_jobs_each_exactly_once() {
    let env = TestEnv::new().await;
    let q = env.queue("multi").await;
    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let dups: Arc<Mutex<Vec<String>>> = Arc::default();
    let per_worker: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
    let mut guards = Vec::new();
    for w in 0..3 {
        let (seen, dups, per_worker) = (seen.clone(), dups.clone(), per_worker.clone());
        let worker = env
            .worker()
            .queues(["multi"])
            .concurrency(8)
            .handler("job", move |job: Job<Value>, _ctx: Ctx| {
                let (seen, dups, per_worker) = (seen.clone(), dups.clone(), per_worker.clone());
                async move {
                    if !seen.lock().unwrap().insert(job.id.clone()) {
                        dups.lock().unwrap().push(job.id.clone());
                    }
                    per_worker[w].fetch_add(1, Ordering::SeqCst);
                    // a little work so that all three workers get a share
                    if job.data.as_u64().unwrap_or(0) % 50 == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Ok::<_, JobError>(())
                }
            })
            .build()
            .unwrap();
        guards.push(spawn_worker(worker));
    }
    // added while the workers already run, in bulk chunks and single adds
    let started = Instant::now();
    let jobs: Vec<NewJob> = (0..1_900)
        .map(|i| NewJob::new("job", &json!(i), JobOptions::new()).unwrap())
        .collect();
    let mut ids: HashSet<String> = add_all(&q, jobs).await.into_iter().collect();
    for i in 1_900..2_000 {
        ids.insert(q.add("job", &json!(i), JobOptions::new()).await.unwrap().id);
    }
    assert_eq!(ids.len(), 2_000);
    let c = wait_finished(&q, 2_000, Duration::from_secs(20)).await;
    let took = started.elapsed();
    for g in guards {
        g.stop().await.unwrap();
    }
    let shares: Vec<usize> = per_worker
        .iter()
        .map(|n| n.load(Ordering::SeqCst))
        .collect();
    eprintln!("2,000 jobs on 3 workers: {took:?}; per worker {shares:?}");
    assert!(
        dups.lock().unwrap().is_empty(),
        "run twice: {:?}",
        dups.lock().unwrap()
    );
    assert_eq!(*seen.lock().unwrap(), ids, "lost or foreign jobs");
    let c2 = q.counts().await.unwrap();
    assert_eq!(
        (c.completed_total, c2.completed_total, c2.failed_total),
        (2_000, 2_000, 0)
    );
    assert_eq!((c2.waiting, c2.active, c2.delayed), (0, 0, 0));
    assert_eq!(shares.iter().sum::<usize>(), 2_000);
    assert!(
        shares.iter().filter(|n| **n > 0).count() >= 2,
        "only one worker did anything: {shares:?}"
    );
}
