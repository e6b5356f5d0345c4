//! Start order (options): equal priority is FIFO, higher priority first, negative
//! priorities after the default 0. One worker at concurrency 1 records the order handlers
//! start in; all jobs are added before the worker starts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::Value;

/// Runs every job of `queue` on one worker at concurrency 1 and returns the `data` of each
/// job in the order its handler started.
async fn start_order(env: &TestEnv, queue: &str, expected: usize) -> Vec<Value> {
    let order: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = order.clone();
    let worker = env
        .worker()
        .queues([queue])
        .concurrency(1)
        .handler("rec", move |job: Job<Value>, _ctx: Ctx| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(job.data);
                Ok::<_, JobError>(())
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let q = env.queue(queue).await;
    let c = wait_finished(&q, expected as u64, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert_eq!(c.completed_total, expected as u64, "{c:?}");
    let got = order.lock().unwrap().clone();
    assert_eq!(got.len(), expected, "each job must start exactly once");
    got
}

fn labels(v: &[Value]) -> Vec<String> {
    v.iter()
        .map(|x| x.as_str().unwrap_or("?").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_priority_jobs_start_in_fifo_order() {
    let env = TestEnv::new().await;
    let q = env.queue("fifo").await;
    // single adds, then a bulk: both keep insertion order
    for i in 0..50 {
        q.add("rec", &format!("s{i:03}"), JobOptions::new())
            .await
            .unwrap();
    }
    // across a chunk boundary of add_bulk too
    let bulk: Vec<NewJob> = (0..BULK_CHUNK + 50)
        .map(|i| NewJob::new("rec", &format!("b{i:04}"), JobOptions::new()).unwrap())
        .collect();
    q.add_bulk(bulk).await.unwrap();
    let got = labels(&start_order(&env, "fifo", 50 + BULK_CHUNK + 50).await);
    let want: Vec<String> = (0..50)
        .map(|i| format!("s{i:03}"))
        .chain((0..BULK_CHUNK + 50).map(|i| format!("b{i:04}")))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_jobs_all_start_before_any_lower_one() {
    let env = TestEnv::new().await;
    let q = env.queue("prio").await;
    for i in 0..20 {
        q.add("rec", &format!("low{i:02}"), JobOptions::new().priority(1))
            .await
            .unwrap();
    }
    for i in 0..20 {
        q.add(
            "rec",
            &format!("high{i:02}"),
            JobOptions::new().priority(10),
        )
        .await
        .unwrap();
    }
    let got = labels(&start_order(&env, "prio", 40).await);
    let want: Vec<String> = (0..20)
        .map(|i| format!("high{i:02}"))
        .chain((0..20).map(|i| format!("low{i:02}")))
        .collect();
    assert_eq!(got, want, "high first, each priority FIFO");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_priorities_run_after_default_priority() {
    let env = TestEnv::new().await;
    let q = env.queue("neg").await;
    let jobs: Vec<NewJob> = (0..30)
        .map(|i| {
            let (label, prio) = match i % 3 {
                0 => (format!("m5-{i:02}"), -5),
                1 => (format!("m1000-{i:02}"), -1000),
                _ => (format!("zero-{i:02}"), 0),
            };
            NewJob::new("rec", &label, JobOptions::new().priority(prio)).unwrap()
        })
        .collect();
    q.add_bulk(jobs).await.unwrap();
    let got = labels(&start_order(&env, "neg", 30).await);
    let rank = |s: &str| {
        if s.starts_with("zero") {
            0
        } else if s.starts_with("m5") {
            1
        } else {
            2
        }
    };
    let ranks: Vec<i32> = got.iter().map(|s| rank(s)).collect();
    let mut sorted = ranks.clone();
    sorted.sort();
    assert_eq!(ranks, sorted, "start order by priority broken: {got:?}");
    // FIFO inside each priority
    for prefix in ["zero", "m5-", "m1000"] {
        let lane: Vec<&String> = got.iter().filter(|s| s.starts_with(prefix)).collect();
        let mut fifo = lane.clone();
        fifo.sort();
        assert_eq!(lane, fifo, "lane {prefix} not FIFO");
        assert_eq!(lane.len(), 10);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_priorities_interleaved_start_highest_first_fifo_within_each() {
    let env = TestEnv::new().await;
    let q = env.queue("many").await;
    let prios = [3, -2, 1000, 0, 42, -1000, 1];
    let mut expected: Vec<(i32, usize)> = Vec::new();
    for round in 0..5 {
        for p in prios {
            q.add(
                "rec",
                &format!("{p}/{round}"),
                JobOptions::new().priority(p),
            )
            .await
            .unwrap();
            expected.push((p, round));
        }
    }
    // highest priority first, then by add order
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let want: Vec<String> = expected.iter().map(|(p, r)| format!("{p}/{r}")).collect();
    let got = labels(&start_order(&env, "many", want.len()).await);
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_high_priority_job_keeps_its_priority_once_due() {
    let env = TestEnv::new().await;
    let q = env.queue("delprio").await;
    // due (almost) at once, but only promoted when the worker fetches; by then the low
    // jobs are waiting too, and the high one must still go first
    q.add(
        "rec",
        &"high",
        JobOptions::new()
            .priority(5)
            .delay(Duration::from_millis(1)),
    )
    .await
    .unwrap();
    for i in 0..5 {
        q.add("rec", &format!("low{i}"), JobOptions::new())
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let got = labels(&start_order(&env, "delprio", 6).await);
    assert_eq!(got[0], "high", "{got:?}");
    assert_eq!(&got[1..], &["low0", "low1", "low2", "low3", "low4"]);
}
