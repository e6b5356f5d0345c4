//! Guarantee 4: a handler that errors, panics or exceeds its timeout fails only that
//! attempt and the worker keeps running; undecodable data and unknown job names fail with
//! clear reasons. Also what handlers see through `Ctx` (progress, logs, attempt number).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
struct Counter {
    n: u32,
}

/// A worker on `queue` with handlers:
/// - `panic`: panics with "kaboom <data.tag>" while `attempt <= data.panic_first`, else
///   returns the attempt number;
/// - `ok`: returns its data;
/// - `count`: typed `Counter`, returns `n + 1`;
/// - `sleep`: sleeps `data.ms` milliseconds.
fn worker_with_handlers(env: &TestEnv, queue: &str, concurrency: usize) -> Worker {
    env.worker()
        .queues([queue])
        .concurrency(concurrency)
        .handler("panic", |job: Job<Value>, _ctx: Ctx| async move {
            let first = job.data["panic_first"].as_u64().unwrap_or(u64::MAX);
            if u64::from(job.attempt) <= first {
                panic!("kaboom {}", job.data["tag"]);
            }
            Ok::<_, JobError>(job.attempt)
        })
        .handler("ok", |job: Job<Value>, _ctx: Ctx| async move {
            Ok::<_, JobError>(job.data)
        })
        .handler("count", |job: Job<Counter>, _ctx: Ctx| async move {
            Ok::<_, JobError>(job.data.n + 1)
        })
        .handler("sleep", |job: Job<Value>, _ctx: Ctx| async move {
            let ms = job.data["ms"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, JobError>(ms)
        })
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_4_handler_panic_fails_only_that_attempt_with_the_panic_message() {
    let env = TestEnv::new().await;
    let q = env.queue("panic").await;
    let guard = spawn_worker(worker_with_handlers(&env, "panic", 1));
    let bad = q
        .add("panic", &json!({"tag": "first"}), JobOptions::new())
        .await
        .unwrap();
    let c = wait_finished(&q, 1, Duration::from_secs(3)).await;
    assert_eq!((c.failed_total, c.completed_total), (1, 0));
    let info = q.job(&bad.id).await.unwrap();
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.attempts_made, 1);
    let reason = info.failed_reason.expect("failed_reason");
    assert!(reason.contains("panicked"), "{reason}");
    assert!(reason.contains("kaboom \"first\""), "{reason}");

    // the same worker (concurrency 1: the slot came back) completes later jobs
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(q.add("ok", &json!(i), JobOptions::new()).await.unwrap().id);
    }
    let c = wait_finished(&q, 6, Duration::from_secs(3)).await;
    assert_eq!((c.completed_total, c.failed_total), (5, 1));
    for (i, id) in ids.iter().enumerate() {
        let info = q.job(id).await.unwrap();
        assert_eq!(info.state, JobState::Completed);
        assert_eq!(info.return_value, Some(json!(i)));
    }
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_4_many_panics_do_not_leak_slots_or_stop_the_worker() {
    let env = TestEnv::new().await;
    let q = env.queue("panics").await;
    let guard = spawn_worker(worker_with_handlers(&env, "panics", 2));
    // more panics than slots, interleaved with good jobs
    let jobs: Vec<NewJob> = (0..40)
        .map(|i| {
            if i % 2 == 0 {
                NewJob::new("panic", &json!({ "tag": i }), JobOptions::new()).unwrap()
            } else {
                NewJob::new("ok", &json!(i), JobOptions::new()).unwrap()
            }
        })
        .collect();
    q.add_bulk(jobs).await.unwrap();
    let c = wait_finished(&q, 40, Duration::from_secs(4)).await;
    assert_eq!((c.completed_total, c.failed_total), (20, 20));
    assert_eq!((c.active, c.waiting, c.delayed), (0, 0, 0));
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_4_retries_still_apply_after_a_panic() {
    let env = TestEnv::new().await;
    let q = env.queue("panicretry").await;
    let guard = spawn_worker(worker_with_handlers(&env, "panicretry", 2));
    let added = q
        .add(
            "panic",
            &json!({"tag": "retry", "panic_first": 2}),
            JobOptions::new()
                .attempts(3)
                .backoff(Backoff::fixed(Duration::from_millis(20))),
        )
        .await
        .unwrap();
    let c = wait_finished(&q, 1, Duration::from_secs(3)).await;
    assert_eq!((c.completed_total, c.failed_total), (1, 0));
    let info = q.job(&added.id).await.unwrap();
    assert_eq!(info.state, JobState::Completed);
    assert_eq!(info.attempts_made, 3);
    assert_eq!(info.return_value, Some(json!(3)));
    // the error of the last failed attempt stays visible
    let reason = info.failed_reason.unwrap_or_default();
    assert!(
        reason.contains("panicked") && reason.contains("kaboom"),
        "{reason:?}"
    );
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_4_undecodable_data_fails_naming_the_job_and_the_decode_problem() {
    let env = TestEnv::new().await;
    let q = env.queue("decode").await;
    let guard = spawn_worker(worker_with_handlers(&env, "decode", 2));
    let bad = q
        .add("count", &json!({"n": "x"}), JobOptions::new().attempts(3))
        .await
        .unwrap();
    let good = q
        .add("count", &json!({"n": 41}), JobOptions::new())
        .await
        .unwrap();
    let c = wait_finished(&q, 2, Duration::from_secs(3)).await;
    assert_eq!((c.completed_total, c.failed_total), (1, 1));
    let info = q.job(&bad.id).await.unwrap();
    assert_eq!(info.state, JobState::Failed);
    let reason = info.failed_reason.expect("failed_reason");
    assert!(
        reason.contains(&bad.id),
        "reason does not name the job: {reason}"
    );
    assert!(
        reason.contains("invalid type") && reason.contains("u32"),
        "reason does not name the decode problem: {reason}"
    );
    // retrying cannot fix the data: remaining attempts are skipped
    assert_eq!(info.attempts_made, 1);
    assert_eq!(q.job(&good.id).await.unwrap().return_value, Some(json!(42)));
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_4_unregistered_job_name_fails_with_no_handler_registered() {
    let env = TestEnv::new().await;
    let q = env.queue("nohandler").await;
    let guard = spawn_worker(worker_with_handlers(&env, "nohandler", 2));
    let added = q
        .add("video.nope", &json!({}), JobOptions::new())
        .await
        .unwrap();
    q.add("ok", &json!("after"), JobOptions::new())
        .await
        .unwrap();
    let c = wait_finished(&q, 2, Duration::from_secs(3)).await;
    assert_eq!((c.completed_total, c.failed_total), (1, 1));
    let info = q.job(&added.id).await.unwrap();
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(
        info.failed_reason.as_deref(),
        Some("no handler registered for 'video.nope'")
    );
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_4_timeout_cancels_the_handler_and_fails_the_attempt() {
    let env = TestEnv::new().await;
    let q = env.queue("timeout").await;
    let guard = spawn_worker(worker_with_handlers(&env, "timeout", 2));
    let started = Instant::now();
    let slow = q
        .add(
            "sleep",
            &json!({"ms": 2000}),
            JobOptions::new().timeout(Duration::from_millis(200)),
        )
        .await
        .unwrap();
    let c = wait_finished(&q, 1, Duration::from_secs(3)).await;
    let took = started.elapsed();
    assert_eq!((c.failed_total, c.completed_total), (1, 0));
    assert!(
        took < Duration::from_millis(1_500),
        "the attempt was not cut short: {took:?}"
    );
    let info = q.job(&slow.id).await.unwrap();
    assert_eq!(info.state, JobState::Failed);
    let reason = info.failed_reason.expect("failed_reason");
    assert!(reason.starts_with("timed out after"), "{reason}");
    assert!(reason.contains("200ms"), "{reason}");

    // a job within its timeout completes normally
    let quick = q
        .add(
            "sleep",
            &json!({"ms": 10}),
            JobOptions::new().timeout(Duration::from_millis(500)),
        )
        .await
        .unwrap();
    wait_finished(&q, 2, Duration::from_secs(3)).await;
    assert_eq!(q.job(&quick.id).await.unwrap().state, JobState::Completed);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_4_timed_out_attempts_are_retried_and_the_token_is_cancelled() {
    let env = TestEnv::new().await;
    let q = env.queue("timeoutretry").await;
    let seen_cancel = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let (sc, cl) = (seen_cancel.clone(), calls.clone());
    let worker = env
        .worker()
        .queues(["timeoutretry"])
        .handler("slow", move |job: Job<Value>, ctx: Ctx| {
            let (sc, cl) = (sc.clone(), cl.clone());
            async move {
                cl.fetch_add(1, Ordering::SeqCst);
                // a child task that watches the token, as a child process runner would
                let token = ctx.cancellation_token().clone();
                tokio::spawn(async move {
                    token.cancelled().await;
                    sc.fetch_add(1, Ordering::SeqCst);
                });
                if job.attempt < 2 {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Ok::<_, JobError>(job.attempt)
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let added = q
        .add(
            "slow",
            &json!({}),
            JobOptions::new()
                .attempts(2)
                .timeout(Duration::from_millis(150)),
        )
        .await
        .unwrap();
    let c = wait_finished(&q, 1, Duration::from_secs(3)).await;
    assert_eq!((c.completed_total, c.failed_total), (1, 0));
    let info = q.job(&added.id).await.unwrap();
    assert_eq!((info.state, info.attempts_made), (JobState::Completed, 2));
    assert_eq!(info.return_value, Some(json!(2)));
    assert!(info
        .failed_reason
        .unwrap_or_default()
        .starts_with("timed out after"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // the timed-out attempt's token was cancelled (the finished one's too: it is over)
    eventually(Duration::from_secs(1), "cancellation seen", || async {
        (seen_cancel.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctx_progress_and_logs_appear_in_get_job() {
    let env = TestEnv::new().await;
    let q = env.queue("ctx").await;
    let worker = env
        .worker()
        .queues(["ctx"])
        .handler("report", |job: Job<Value>, ctx: Ctx| async move {
            assert_eq!(ctx.job_id(), job.id);
            assert_eq!(ctx.queue().name(), "ctx");
            ctx.log("starting").await?;
            ctx.progress(30).await?;
            ctx.log(format!("half of {}", job.data["what"])).await?;
            ctx.progress(json!({"stage": "encode", "pct": 75})).await?;
            ctx.log("done").await?;
            Ok::<_, JobError>("ok")
        })
        .handler("numeric", |_job: Job<Value>, ctx: Ctx| async move {
            ctx.progress(100).await?;
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let a = q
        .add("report", &json!({"what": "clip"}), JobOptions::new())
        .await
        .unwrap();
    let b = q
        .add("numeric", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let c = wait_finished(&q, 2, Duration::from_secs(3)).await;
    assert_eq!(c.completed_total, 2, "{c:?}");
    let info = q.job(&a.id).await.unwrap();
    assert_eq!(info.state, JobState::Completed);
    assert_eq!(info.logs, vec!["starting", "half of \"clip\"", "done"]);
    assert_eq!(info.progress, Some(json!({"stage": "encode", "pct": 75})));
    assert_eq!(info.return_value, Some(json!("ok")));
    assert_eq!(q.job(&b.id).await.unwrap().progress, Some(json!(100)));
    guard.stop().await.unwrap();
}

/// What a handler saw per call: its attempt number and the job as `get_job` read it.
type Seen = Arc<Mutex<Vec<(u32, JobInfo)>>>;

/// A worker on `queue` whose `count` handler fails attempts 1 and 2 and succeeds on 3;
/// each call records `ctx.attempt()` and the job as `get_job` shows it at that moment.
fn attempt_worker(env: &TestEnv, queue: &str) -> (Worker, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let worker = env
        .worker()
        .queues([queue])
        .handler("count", move |job: Job<Value>, ctx: Ctx| {
            let s = s.clone();
            async move {
                assert_eq!(job.attempt, ctx.attempt());
                let stored = ctx
                    .queue()
                    .job(ctx.job_id())
                    .await
                    .map_err(|e| JobError::new(e.to_string()))?;
                s.lock().unwrap().push((ctx.attempt(), stored));
                if ctx.attempt() < 3 {
                    return Err(JobError::new("again"));
                }
                Ok(ctx.attempt())
            }
        })
        .build()
        .unwrap();
    (worker, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctx_attempt_counts_up_and_matches_attempts_made_when_finished() {
    let env = TestEnv::new().await;
    let q = env.queue("attempt").await;
    let (worker, seen) = attempt_worker(&env, "attempt");
    let guard = spawn_worker(worker);
    let before = now_ms();
    let added = q
        .add("count", &json!({}), JobOptions::new().attempts(4))
        .await
        .unwrap();
    wait_finished(&q, 1, Duration::from_secs(3)).await;
    let after = now_ms();
    guard.stop().await.unwrap();
    let attempts: Vec<u32> = seen.lock().unwrap().iter().map(|(a, _)| *a).collect();
    assert_eq!(attempts, vec![1, 2, 3]);
    let info = q.job(&added.id).await.unwrap();
    assert_eq!((info.state, info.attempts_made), (JobState::Completed, 3));
    assert_eq!(info.return_value, Some(json!(3)));
    let started = info.started_at.expect("started_at");
    let finished = info.finished_at.expect("finished_at");
    assert!(before <= info.created_at + 5, "{info:?}");
    assert!(
        info.created_at <= started && started <= finished,
        "{info:?}"
    );
    assert!(finished <= after + 5, "{info:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_shows_active_with_its_current_attempt_counted() {
    let env = TestEnv::new().await;
    let q = env.queue("running").await;
    let (worker, seen) = attempt_worker(&env, "running");
    let guard = spawn_worker(worker);
    let opts = JobOptions::new()
        .attempts(4)
        .backoff(Backoff::fixed(Duration::from_millis(20)));
    let added = q.add("count", &json!({}), opts).await.unwrap();
    wait_finished(&q, 1, Duration::from_secs(3)).await;
    guard.stop().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let mut last_start = 0;
    for (attempt, stored) in &seen {
        assert_eq!(stored.id, added.id);
        assert_eq!(stored.state, JobState::Active, "attempt {attempt}");
        // `attempts_made` is "attempts started so far": the running one included
        assert_eq!(
            stored.attempts_made, *attempt,
            "get_job during attempt {attempt} reports attempts_made {}",
            stored.attempts_made
        );
        let started = stored
            .started_at
            .unwrap_or_else(|| panic!("no started_at during attempt {attempt}"));
        // attempts are >= 20 ms apart (backoff): each has its own start time
        assert!(started > last_start, "stale started_at: {stored:?}");
        last_start = started;
    }
}
