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

// ---------------------------------------------------------------------------------------
// Issue 16: a stored job hash with one field corrupted (by hand, a bad migration, a bug
// elsewhere) fails that job alone, with a reason naming it; every other job of the queue
// completes exactly once, and listings, get_job and counts keep working.

/// Fields of a stored job hash (job.rs `push_long`, add_job.lua, the claim, finish and
/// reclaim scripts).
const HASH_FIELDS: [&str; 13] = [
    "name", "data", "data:n", "data:2", "opts", "opts:n", "att", "prio", "ts", "sid", "state",
    "stalls", "due",
];

/// What a corrupted field holds: None deletes it.
const JUNK: [Option<&[u8]>; 14] = [
    None,
    Some(b""),
    Some(b"junk"),
    Some(b"-1"),
    Some(b"0"),
    Some(b"1.5"),
    Some(b"99999999999999999999"),
    Some(b"1000000"),
    Some(b"{"),
    Some(b"[1,2]"),
    Some(b"null"),
    Some(b"\0"),
    Some(b"\xff\xfe not UTF-8"),
    Some(b"9 7"),
];

const CORRUPT_JOBS: usize = 20;

fn junk_text(value: Option<&[u8]>) -> String {
    match value {
        None => "deleted".into(),
        Some(v) => format!("= {:?}", String::from_utf8_lossy(v)),
    }
}

/// One case: 20 jobs (some with data in pieces, some with stored options, some delayed),
/// `field` of job number `victim` corrupted to `value`, then a worker (lease 1 s). Err says
/// what went wrong.
async fn corrupted_job_case(
    env: &TestEnv,
    queue: &str,
    victim: usize,
    field: &str,
    value: Option<&[u8]>,
) -> std::result::Result<(), String> {
    let q = env.queue(queue).await;
    let jobs: Vec<NewJob> = (0..CORRUPT_JOBS)
        .map(|k| {
            // data past 64 bytes is stored in pieces (data:2, data:n)
            let pad = if k % 3 == 0 {
                "x".repeat(150)
            } else {
                String::new()
            };
            let mut opts = JobOptions::new();
            if k % 2 == 0 {
                opts = opts
                    .attempts(2)
                    .backoff(Backoff::fixed(Duration::from_millis(20)))
                    .timeout(Duration::from_secs(5));
            }
            if k % 5 == 0 {
                opts = opts.delay(Duration::from_millis(300));
            }
            if k % 4 == 1 {
                opts = opts.priority(5);
            }
            NewJob::new("rec", &json!({"k": k, "pad": pad}), opts).unwrap()
        })
        .collect();
    let ids: Vec<String> = q
        .add_bulk(jobs)
        .await
        .map_err(|e| format!("add_bulk: {e}"))?
        .into_iter()
        .map(|a| a.id)
        .collect();
    let bad = ids[victim].clone();
    let key = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), queue).job(&bad);
    let mut conn = env.raw().await;
    let _: () = match value {
        None => {
            redis::cmd("HDEL")
                .arg(&key)
                .arg(field)
                .query_async(&mut conn)
                .await
        }
        Some(v) => {
            redis::cmd("HSET")
                .arg(&key)
                .arg(field)
                .arg(v)
                .query_async(&mut conn)
                .await
        }
    }
    .map(|_: i64| ())
    .map_err(|e| format!("corrupting {key}: {e}"))?;

    let runs: Arc<Mutex<std::collections::HashMap<String, u32>>> = Arc::default();
    let seen = runs.clone();
    let worker = env
        .worker()
        .queues([queue])
        .concurrency(4)
        .lease(Duration::from_secs(1))
        .handler("rec", move |job: Job<Value>, _ctx: Ctx| {
            *seen.lock().unwrap().entry(job.id.clone()).or_default() += 1;
            async move { Ok::<_, JobError>(()) }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);

    // everything settles: the others completed, the victim completed or failed, nothing
    // waiting, active or delayed
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut problems;
    loop {
        problems = Vec::new();
        for (k, id) in ids.iter().enumerate() {
            let got = tokio::time::timeout(Duration::from_secs(2), q.get_job(id)).await;
            match got {
                Err(_) => problems.push(format!("get_job({id}) hung")),
                Ok(Err(e)) => problems.push(format!("get_job({id}) failed: {e}")),
                Ok(Ok(None)) => problems.push(format!("job {id} is gone")),
                Ok(Ok(Some(info))) if k == victim => {
                    if !matches!(info.state, JobState::Completed | JobState::Failed) {
                        problems.push(format!("the corrupted job is {}", info.state));
                    }
                }
                Ok(Ok(Some(info))) => {
                    if info.state != JobState::Completed {
                        problems.push(format!("job {k} ({id}) is {}", info.state));
                    }
                }
            }
        }
        match tokio::time::timeout(Duration::from_secs(2), q.counts()).await {
            Ok(Ok(c)) if (c.waiting, c.active, c.delayed) == (0, 0, 0) => {}
            Ok(Ok(c)) => problems.push(format!(
                "counts waiting/active/delayed {}/{}/{}",
                c.waiting, c.active, c.delayed
            )),
            Ok(Err(e)) => problems.push(format!("counts failed: {e}")),
            Err(_) => problems.push("counts hung".into()),
        }
        if problems.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), guard.stop()).await;

    // every other job ran exactly once
    let runs = runs.lock().unwrap().clone();
    for (k, id) in ids.iter().enumerate() {
        let n = runs.get(id).copied().unwrap_or(0);
        if k != victim && n != 1 {
            problems.push(format!("job {k} ({id}) ran {n} times"));
        }
    }
    // a failed victim says why, naming the job, the field or its bad value
    if let Ok(Ok(Some(info))) = tokio::time::timeout(Duration::from_secs(2), q.get_job(&bad)).await
    {
        if info.state == JobState::Failed {
            let reason = info.failed_reason.unwrap_or_default();
            let base = field.split(':').next().unwrap_or(field);
            let junk = value
                .map(String::from_utf8_lossy)
                .filter(|v| !v.is_empty())
                .unwrap_or_default();
            if !(reason.contains(&bad)
                || reason.contains(base)
                || (!junk.is_empty() && reason.contains(&*junk)))
            {
                problems.push(format!(
                    "the corrupted job failed with a reason naming neither it nor {field}: \
                     {reason:?}"
                ));
            }
        }
    }
    // listings of every state work, and between them show every job
    let mut listed = std::collections::HashSet::new();
    for state in JobState::ALL {
        match tokio::time::timeout(Duration::from_secs(2), q.list_jobs(state, 0, 100)).await {
            Ok(Ok(jobs)) => listed.extend(jobs.into_iter().map(|j| j.id)),
            Ok(Err(e)) => problems.push(format!("list_jobs({state}) failed: {e}")),
            Err(_) => problems.push(format!("list_jobs({state}) hung")),
        }
    }
    let unlisted = ids.iter().filter(|id| !listed.contains(*id)).count();
    if unlisted > 0 {
        problems.push(format!("{unlisted} jobs in no listing"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_hash_with_a_field_corrupted_at_random_fails_alone() {
    use proptest::prelude::RngExt;
    use proptest::test_runner::{RngAlgorithm, TestRng};
    // JOBQ_CORRUPT_SEED replays a run; JOBQ_CORRUPT_CASES=all tries every field and value
    let seed: u64 = std::env::var("JOBQ_CORRUPT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(now_ms);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let cases: Vec<(usize, &str, Option<&[u8]>)> =
        match std::env::var("JOBQ_CORRUPT_CASES").as_deref() {
            Ok("all") => HASH_FIELDS
                .iter()
                .flat_map(|f| JUNK.iter().map(move |v| (*f, *v)))
                .enumerate()
                .map(|(i, (f, v))| (i % CORRUPT_JOBS, f, v))
                .collect(),
            n => (0..n.ok().and_then(|n| n.parse().ok()).unwrap_or(8))
                .map(|_| {
                    (
                        rng.random_range(0..CORRUPT_JOBS),
                        HASH_FIELDS[rng.random_range(0..HASH_FIELDS.len())],
                        JUNK[rng.random_range(0..JUNK.len())],
                    )
                })
                .collect(),
        };
    eprintln!(
        "{} corruption cases from seed {seed} (rerun: JOBQ_CORRUPT_SEED={seed})",
        cases.len()
    );
    // a Redis of its own: a corrupted piece count may keep a script busy
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let mut failures = Vec::new();
    for (n, (victim, field, value)) in cases.into_iter().enumerate() {
        let what = format!("job {victim}: {field} {}", junk_text(value));
        let outcome = corrupted_job_case(&env, &format!("corrupt{n}"), victim, field, value).await;
        eprintln!("case {n}, {what}: {outcome:?}");
        if let Err(why) = outcome {
            failures.push(format!("case {n}, {what}: {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "seed {seed}: {} corruptions spread or stuck:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
