//! Bulk operations on 10,000 jobs run as bounded script calls: none blocks Redis for more
//! than ~50 ms. Measured with Redis's own slowlog (every call logged, with its duration).
//! And each acts on the jobs that were in its set when it started, never on ones that
//! arrive while it runs (retry all, promote all, drain, clean with a worker running).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

const N: usize = 10_000;

/// Resets the slowlog to record every command.
async fn start_measuring(raw: &mut Conn) {
    // logging off while the log is emptied: freeing a log of 100,000 entries takes a while,
    // and RESET's own entry would then be counted as the operation's longest call
    slowlog_threshold(raw, -1).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-max-len")
        .arg(100_000)
        .query_async(raw)
        .await
        .unwrap();
    reset_slowlog(raw).await;
    slowlog_threshold(raw, 0).await;
}

/// Logs every command slower than `us` microseconds (-1: none).
async fn slowlog_threshold(raw: &mut Conn, us: i64) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(us)
        .query_async(raw)
        .await
        .unwrap();
}

/// Longest single command (script call) since `start_measuring`, in microseconds.
async fn longest_call_us(raw: &mut Conn) -> (i64, usize) {
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(100_000)
        .query_async(raw)
        .await
        .unwrap();
    // back to Redis' default (10 ms) until the next measurement
    slowlog_threshold(raw, 10_000).await;
    let mut max = 0;
    for e in &entries {
        if let redis::Value::Array(fields) = e {
            if let Some(redis::Value::Int(us)) = fields.get(2) {
                max = max.max(*us);
            }
        }
    }
    (max, entries.len())
}

fn jobs(name: &str, opts: JobOptions) -> Vec<NewJob> {
    (0..N)
        .map(|i| {
            NewJob::new(
                name,
                &json!({ "i": i, "pad": "x".repeat(40) }),
                opts.clone(),
            )
            .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_operations_on_10000_jobs_never_block_redis_for_more_than_50ms() {
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("bulk").await;
    let mut raw = env.raw().await;
    let mut report = Vec::new();
    let limit_us = 50_000;

    // add_bulk: one call per chunk of 1,000
    start_measuring(&mut raw).await;
    q.add_bulk(jobs(
        "fail",
        JobOptions::new().remove_on_fail(Retention::keep_last(100_000)),
    ))
    .await
    .unwrap();
    report.push(("add_bulk", longest_call_us(&mut raw).await));

    // 10,000 failed jobs, then retry them all
    let worker = env
        .worker()
        .queues(["bulk"])
        .concurrency(50)
        .handler("fail", |_j: Job<Value>, _c: Ctx| async {
            Err::<(), _>(JobError::new("no"))
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_finished(&q, N as u64, Duration::from_secs(60)).await;
    guard.stop().await.unwrap();
    assert_eq!(q.counts().await.unwrap().failed, N as u64);
    start_measuring(&mut raw).await;
    assert_eq!(q.retry_all_failed().await.unwrap(), N as u64);
    report.push(("retry_all_failed", longest_call_us(&mut raw).await));
    assert_eq!(q.counts().await.unwrap().waiting, N as u64);

    // drain them
    start_measuring(&mut raw).await;
    assert_eq!(q.drain().await.unwrap(), N as u64);
    report.push(("drain", longest_call_us(&mut raw).await));

    // 10,000 delayed jobs, promoted at once
    q.add_bulk(jobs(
        "ok",
        JobOptions::new()
            .delay(Duration::from_secs(3600))
            .remove_on_complete(Retention::keep_last(100_000)),
    ))
    .await
    .unwrap();
    start_measuring(&mut raw).await;
    assert_eq!(q.promote_all_delayed().await.unwrap(), N as u64);
    report.push(("promote_all_delayed", longest_call_us(&mut raw).await));

    // run them, then clean the 10,000 completed
    let worker = env
        .worker()
        .queues(["bulk"])
        .concurrency(50)
        .handler("ok", |_j: Job<Value>, _c: Ctx| async {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let c = wait_finished(&q, 2 * N as u64, Duration::from_secs(60)).await;
    guard.stop().await.unwrap();
    assert_eq!(c.completed, N as u64, "{c:?}");
    start_measuring(&mut raw).await;
    assert_eq!(
        q.clean(JobState::Completed, Duration::ZERO, None)
            .await
            .unwrap(),
        N as u64
    );
    report.push(("clean", longest_call_us(&mut raw).await));

    // obliterate a queue holding 20,000 waiting jobs: 10,000 with records (given ids: a
    // hash each, so as many keys to delete) and 10,000 lean ones (their lane entries alone)
    let recorded = (0..N)
        .map(|i| {
            let opts = JobOptions::new().job_id(format!("kept{i}"));
            NewJob::new("ok", &json!({ "i": i, "pad": "x".repeat(40) }), opts).unwrap()
        })
        .collect();
    q.add_bulk(recorded).await.unwrap();
    q.add_bulk(jobs("ok", JobOptions::new())).await.unwrap();
    assert_eq!(q.counts().await.unwrap().waiting, 2 * N as u64);
    start_measuring(&mut raw).await;
    // (`obliterate` counts keys: one per record, while the lean jobs share one lane stream)
    assert!(q.obliterate(false).await.unwrap() >= N as u64);
    report.push(("obliterate", longest_call_us(&mut raw).await));
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{{}:bulk}}*", env.config.prefix()))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(left.is_empty(), "left after obliterate: {left:?}");

    for (op, (max_us, calls)) in &report {
        eprintln!(
            "{op:>20} on {N} jobs: {calls} Redis calls, longest {:.1} ms",
            *max_us as f64 / 1000.0
        );
    }
    for (op, (max_us, _)) in &report {
        assert!(
            *max_us < limit_us,
            "{op}: one call blocked Redis for {max_us} us"
        );
    }
}

/// Runs per job (`<queue>/<job id>`), counted by a handler.
type Runs = Arc<Mutex<HashMap<String, u32>>>;

/// A handler that counts its runs per job and always fails. (Keyed by queue and id: a lean
/// job's id, `~<prio>.<entry id>`, is unique only within its queue, and plain jobs added
/// to several queues in the same millisecond get the same one.)
fn failing(
    runs: &Runs,
) -> impl Fn(Job<Value>, Ctx) -> std::future::Ready<Result<(), JobError>> + Send + Sync + 'static {
    let runs = runs.clone();
    move |j: Job<Value>, _c: Ctx| {
        let job = format!("{}/{}", j.queue, j.id);
        *runs.lock().unwrap().entry(job).or_default() += 1;
        std::future::ready(Err(JobError::new("always fails")))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_all_failed_runs_each_job_once_more_while_a_worker_runs() {
    let env = TestEnv::new().await;
    let names: Vec<String> = (0..20).map(|i| format!("again{i}")).collect();
    let mut queues = Vec::new();
    for name in &names {
        let q = env.queue(name).await;
        q.add("flaky", &json!({}), JobOptions::new()).await.unwrap();
        queues.push(q);
    }
    let runs = Runs::default();
    let worker = env
        .worker()
        .queues(names.clone())
        .concurrency(4)
        .handler("flaky", failing(&runs))
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    for q in &queues {
        wait_finished(q, 1, Duration::from_secs(10)).await;
    }
    // the worker keeps running: a retried job fails again at once, often while the retry
    // still runs (three rounds, so the race is all but certain to happen somewhere)
    for round in 1..=3u64 {
        for q in &queues {
            assert_eq!(q.retry_all_failed().await.unwrap(), 1, "{}", q.name());
        }
        for q in &queues {
            wait_finished(q, round + 1, Duration::from_secs(10)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    guard.stop().await.unwrap();
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 20, "{runs:?}");
    assert!(runs.values().all(|n| *n == 4), "runs per job: {runs:?}");
    for q in &queues {
        let c = q.counts().await.unwrap();
        assert_eq!((c.failed_total, c.failed), (4, 1), "{}: {c:?}", q.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_all_delayed_promotes_a_job_retried_meanwhile_only_once() {
    let env = TestEnv::new().await;
    let q = env.queue("promote-once").await;
    // 20 jobs that fail and retry 10 minutes later, ahead of 10,000 jobs due in an hour
    let retrying = JobOptions::new()
        .priority(10)
        .attempts(1_000)
        .backoff(Backoff::fixed(Duration::from_secs(600)));
    for i in 0..20 {
        q.add("flaky", &json!({ "i": i }), retrying.clone())
            .await
            .unwrap();
    }
    let runs = Runs::default();
    let worker = env
        .worker()
        .queues(["promote-once"])
        .concurrency(20)
        .handler("flaky", failing(&runs))
        .handler("ok", |_j: Job<Value>, _c: Ctx| async {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    eventually(Duration::from_secs(10), "20 retrying jobs", || async {
        (q.counts().await.ok()?.delayed == 20).then_some(())
    })
    .await;
    let later: Vec<NewJob> = (0..10_000)
        .map(|i| {
            NewJob::new(
                "ok",
                &json!({ "i": i }),
                JobOptions::new()
                    .delay(Duration::from_secs(3600))
                    .remove_on_complete(Retention::REMOVE),
            )
            .unwrap()
        })
        .collect();
    q.add_bulk(later).await.unwrap();

    // the worker runs and fails the first promoted batch while later batches are promoted
    assert_eq!(q.promote_all_delayed().await.unwrap(), 10_020);
    eventually(Duration::from_secs(20), "every job run", || async {
        let c = q.counts().await.ok()?;
        (c.completed_total == 10_000 && c.delayed == 20 && c.waiting == 0 && c.active == 0)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    guard.stop().await.unwrap();
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 20, "{runs:?}");
    assert!(runs.values().all(|n| *n == 2), "runs per job: {runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_keeps_jobs_added_while_it_runs() {
    let env = TestEnv::new().await;
    let q = env.queue("drain-live").await;
    let batch = |delay: Option<Duration>, n: usize| -> Vec<NewJob> {
        (0..n)
            .map(|i| {
                let mut opts = JobOptions::new().priority((i % 3) as i32);
                if let Some(d) = delay {
                    opts = opts.delay(d);
                }
                NewJob::new("x", &json!({ "i": i }), opts).unwrap()
            })
            .collect()
    };
    q.add_bulk(batch(None, 10_000)).await.unwrap();
    q.add_bulk(batch(Some(Duration::from_secs(3600)), 2_000))
        .await
        .unwrap();

    let draining = {
        let q = q.clone();
        tokio::spawn(async move { q.drain().await })
    };
    // once the drain is seen deleting, everything added must stay
    eventually(Duration::from_secs(10), "the drain to start", || async {
        let c = q.counts().await.ok()?;
        (c.waiting + c.delayed < 12_000).then_some(())
    })
    .await;
    let (mut waiting, mut delayed, mut during) = (Vec::new(), Vec::new(), 0);
    let mut i = 0u32;
    while !draining.is_finished() {
        let delay = i % 2 == 1;
        let opts = JobOptions::new().priority((i % 3) as i32);
        let opts = if delay {
            opts.delay(Duration::from_secs(3600))
        } else {
            opts
        };
        let id = q.add("x", &json!({ "late": i }), opts).await.unwrap().id;
        if delay {
            delayed.push(id);
        } else {
            waiting.push(id);
        }
        if !draining.is_finished() {
            during += 1;
        }
        i += 1;
    }
    assert_eq!(draining.await.unwrap().unwrap(), 12_000);
    assert!(during > 0, "no job was added while the drain ran");
    for id in waiting.iter().chain(&delayed) {
        assert!(
            q.get_job(id).await.unwrap().is_some(),
            "job {id}, added while the drain ran, was deleted ({} added)",
            i
        );
    }
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.waiting, c.delayed),
        (waiting.len() as u64, delayed.len() as u64),
        "{c:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_keeps_jobs_that_finish_while_it_runs() {
    let env = TestEnv::new().await;
    let q = env.queue("clean-live").await;
    let keep = || JobOptions::new().remove_on_complete(Retention::keep_last(100_000));
    for i in 0..20 {
        q.add("held", &json!({ "i": i }), keep().priority(10))
            .await
            .unwrap();
    }
    q.add_bulk(
        (0..5_000)
            .map(|i| NewJob::new("ok", &json!({ "i": i }), keep()).unwrap())
            .collect(),
    )
    .await
    .unwrap();
    let (open, gate) = tokio::sync::watch::channel(false);
    let worker = env
        .worker()
        .queues(["clean-live"])
        .concurrency(40)
        .handler("held", move |_j: Job<Value>, _c: Ctx| {
            let mut gate = gate.clone();
            async move {
                let _ = gate.wait_for(|open| *open).await;
                Ok::<_, JobError>(())
            }
        })
        .handler("ok", |_j: Job<Value>, _c: Ctx| async {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    eventually(
        Duration::from_secs(30),
        "5,000 completed, 20 held",
        || async {
            let c = q.counts().await.ok()?;
            (c.completed == 5_000 && c.active == 20).then_some(())
        },
    )
    .await;

    let cleaning = {
        let q = q.clone();
        tokio::spawn(async move { q.clean(JobState::Completed, Duration::ZERO, None).await })
    };
    // polled without pause: the whole clean takes a few milliseconds
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while q.counts().await.unwrap().completed == 5_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the clean never started"
        );
    }
    // the held jobs finish while the clean runs, after it started: they stay
    open.send(true).unwrap();
    while q.counts().await.unwrap().completed_total < 5_020 {
        assert!(
            std::time::Instant::now() < deadline,
            "the held jobs never finished"
        );
    }
    if cleaning.is_finished() {
        eprintln!("note: the clean ended before the held jobs finished");
    }
    assert_eq!(cleaning.await.unwrap().unwrap(), 5_000);
    guard.stop().await.unwrap();
    let c = q.counts().await.unwrap();
    assert_eq!((c.completed, c.completed_total), (20, 5_020), "{c:?}");
}
