//! Retries (options `attempts` / `backoff`, guarantees 3 and 4): fixed, exponential
//! and jittered backoff between attempts, retry timing, final failure bookkeeping and
//! non-retryable errors. Handlers fail their first N attempts and record `job.attempt` with
//! the time of each call.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

/// Serialises the timing-sensitive tests of this binary.
async fn timing_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// One handler call: job id, attempt number, wall-clock ms and `Instant` at its start.
#[derive(Debug, Clone)]
struct Call {
    id: String,
    attempt: u32,
    wall_ms: u64,
    at: Instant,
}

type Calls = Arc<Mutex<Vec<Call>>>;

/// A worker on `queue` whose `flaky` handler fails attempts `1..=fail_first` (data
/// `{"fail_first": N}`) with "attempt N failed" and succeeds afterwards.
fn flaky_worker(env: &TestEnv, queue: &str) -> (Worker, Calls) {
    let calls: Calls = Arc::default();
    let c = calls.clone();
    let worker = env
        .worker()
        .queues([queue])
        .concurrency(8)
        .handler("flaky", move |job: Job<Value>, _ctx: Ctx| {
            let c = c.clone();
            async move {
                c.lock().unwrap().push(Call {
                    id: job.id.clone(),
                    attempt: job.attempt,
                    wall_ms: now_ms(),
                    at: Instant::now(),
                });
                let fail_first = job.data["fail_first"].as_u64().unwrap_or(0) as u32;
                if job.attempt <= fail_first {
                    return Err(JobError::new(format!("attempt {} failed", job.attempt)));
                }
                Ok(json!({"ok_on": job.attempt}))
            }
        })
        .build()
        .unwrap();
    (worker, calls)
}

/// Calls of job `id` in start order.
fn calls_of(calls: &Calls, id: &str) -> Vec<Call> {
    calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.id == id)
        .cloned()
        .collect()
}

/// Gaps in ms between consecutive calls.
fn gaps_ms(calls: &[Call]) -> Vec<f64> {
    calls
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at).as_secs_f64() * 1000.0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_3_fixed_backoff_waits_the_delay_before_each_retry() {
    let _timing = timing_lock().await;
    let env = TestEnv::new().await;
    let q = env.queue("fixed").await;
    let (worker, calls) = flaky_worker(&env, "fixed");
    let guard = spawn_worker(worker);
    let added = q
        .add(
            "flaky",
            &json!({"fail_first": 2}),
            JobOptions::new()
                .attempts(3)
                .backoff(Backoff::fixed(Duration::from_millis(200))),
        )
        .await
        .unwrap();
    wait_finished(&q, 1, Duration::from_secs(4)).await;
    let mine = calls_of(&calls, &added.id);
    let attempts: Vec<u32> = mine.iter().map(|c| c.attempt).collect();
    assert_eq!(attempts, vec![1, 2, 3]);
    let gaps = gaps_ms(&mine);
    eprintln!("fixed 200ms backoff: gaps between attempt starts {gaps:.1?} ms");
    for g in &gaps {
        assert!(
            *g >= 195.0,
            "retry started after {g:.1} ms (< 200 ms backoff)"
        );
        assert!(*g < 350.0, "retry started after {g:.1} ms (backoff 200 ms)");
    }
    let info = q.job(&added.id).await.unwrap();
    assert_eq!(info.state, JobState::Completed);
    assert_eq!(info.attempts_made, 3);
    assert_eq!(info.return_value, Some(json!({"ok_on": 3})));
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_3_exponential_backoff_doubles_the_delay_each_retry() {
    let _timing = timing_lock().await;
    let env = TestEnv::new().await;
    let q = env.queue("expo").await;
    let (worker, calls) = flaky_worker(&env, "expo");
    let guard = spawn_worker(worker);
    let added = q
        .add(
            "flaky",
            &json!({"fail_first": 3}),
            JobOptions::new()
                .attempts(4)
                .backoff(Backoff::exponential(Duration::from_millis(100))),
        )
        .await
        .unwrap();
    wait_finished(&q, 1, Duration::from_secs(4)).await;
    let mine = calls_of(&calls, &added.id);
    assert_eq!(
        mine.iter().map(|c| c.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let gaps = gaps_ms(&mine);
    eprintln!("exponential 100ms backoff: gaps {gaps:.1?} ms (nominal 100, 200, 400)");
    for (g, nominal) in gaps.iter().zip([100.0, 200.0, 400.0]) {
        assert!(*g >= nominal - 5.0, "gap {g:.1} ms < nominal {nominal} ms");
        assert!(*g < nominal + 150.0, "gap {g:.1} ms, nominal {nominal} ms");
    }
    // the curve really grows: each gap clearly longer than the one before
    assert!(
        gaps[1] > gaps[0] + 50.0 && gaps[2] > gaps[1] + 100.0,
        "{gaps:?}"
    );
    let info = q.job(&added.id).await.unwrap();
    assert_eq!((info.state, info.attempts_made), (JobState::Completed, 4));
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_3_jittered_backoff_stays_within_its_range() {
    let _timing = timing_lock().await;
    let env = TestEnv::new().await;
    let q = env.queue("jitter").await;
    let (worker, calls) = flaky_worker(&env, "jitter");
    let guard = spawn_worker(worker);
    let mut ids = Vec::new();
    for _ in 0..6 {
        let a = q
            .add(
                "flaky",
                &json!({"fail_first": 1}),
                JobOptions::new()
                    .attempts(2)
                    .backoff(Backoff::fixed(Duration::from_millis(300)).with_jitter(0.5)),
            )
            .await
            .unwrap();
        ids.push(a.id);
    }
    wait_finished(&q, 6, Duration::from_secs(4)).await;
    let mut gaps = Vec::new();
    for id in &ids {
        let mine = calls_of(&calls, id);
        assert_eq!(mine.len(), 2);
        gaps.push(gaps_ms(&mine)[0]);
    }
    eprintln!("fixed 300ms backoff with jitter 0.5: gaps {gaps:.1?} ms (range 150..300)");
    for g in &gaps {
        assert!(
            *g >= 145.0 && *g < 450.0,
            "gap {g:.1} ms outside 150..300 ms (+slack)"
        );
    }
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_3_retried_jobs_start_at_most_50ms_after_their_due_time() {
    let _timing = timing_lock().await;
    let env = TestEnv::new().await;
    let q = env.queue("retrylate").await;
    let (worker, calls) = flaky_worker(&env, "retrylate");
    let guard = spawn_worker(worker);
    // 12 jobs fail once, retry due 150..700 ms after their failure
    let mut ids = Vec::new();
    for i in 0..12u64 {
        let a = q
            .add(
                "flaky",
                &json!({"fail_first": 1}),
                JobOptions::new()
                    .attempts(2)
                    .backoff(Backoff::fixed(Duration::from_millis(150 + 50 * i))),
            )
            .await
            .unwrap();
        ids.push(a.id);
    }
    // wait on in-memory state only: polling Redis would hide a sleepy server
    eventually(Duration::from_secs(4), "24 handler calls", || async {
        (calls.lock().unwrap().len() >= 24).then_some(())
    })
    .await;
    // each retry's due time is announced in the queue's event stream
    let keys = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "retrylate");
    let mut raw = env.raw().await;
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(keys.events())
        .arg("-")
        .arg("+")
        .query_async(&mut raw)
        .await
        .unwrap();
    let mut late = Vec::new();
    for id in &ids {
        let due: u64 = entries
            .iter()
            .map(|(_, f)| f)
            .find(|f| {
                f.windows(2).any(|w| w == ["event", "retrying"])
                    && f.iter().any(|v| v.split_whitespace().any(|t| t == id))
            })
            .and_then(|f| {
                let i = f.iter().position(|x| x == "due")?;
                f.get(i + 1)?.parse().ok()
            })
            .unwrap_or_else(|| panic!("no retrying event with due for {id}"));
        let second = calls_of(&calls, id)
            .into_iter()
            .find(|c| c.attempt == 2)
            .expect("second attempt ran");
        late.push(second.wall_ms as i64 - due as i64);
    }
    let max = *late.iter().max().unwrap();
    let min = *late.iter().min().unwrap();
    eprintln!("retry lateness over 12 jobs (ms): min {min}, max {max}; all {late:?}");
    assert!(min >= -5, "a retry started {} ms early", -min);
    assert!(
        max <= 50,
        "a retry started {max} ms after its due time (limit 50): {late:?}"
    );
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_without_backoff_runs_again_at_once() {
    let env = TestEnv::new().await;
    let q = env.queue("nobackoff").await;
    let (worker, calls) = flaky_worker(&env, "nobackoff");
    let guard = spawn_worker(worker);
    let added = q
        .add(
            "flaky",
            &json!({"fail_first": 2}),
            JobOptions::new().attempts(3),
        )
        .await
        .unwrap();
    wait_finished(&q, 1, Duration::from_secs(4)).await;
    let mine = calls_of(&calls, &added.id);
    assert_eq!(mine.len(), 3);
    let gaps = gaps_ms(&mine);
    eprintln!("retry without backoff: gaps {gaps:.1?} ms");
    // generous: "at once" is a fetch round trip, far below any backoff
    assert!(gaps.iter().all(|g| *g < 150.0), "{gaps:?}");
    assert_eq!(q.job(&added.id).await.unwrap().state, JobState::Completed);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_waiting_for_its_retry_is_delayed_with_the_last_error() {
    let env = TestEnv::new().await;
    let q = env.queue("pending").await;
    let (worker, calls) = flaky_worker(&env, "pending");
    let guard = spawn_worker(worker);
    let added = q
        .add(
            "flaky",
            &json!({"fail_first": 1}),
            JobOptions::new()
                .attempts(2)
                .backoff(Backoff::fixed(Duration::from_secs(30))),
        )
        .await
        .unwrap();
    let info = eventually(
        Duration::from_secs(3),
        "the retry to be scheduled",
        || async {
            let i = q.job(&added.id).await.ok()?;
            (i.state == JobState::Delayed).then_some(i)
        },
    )
    .await;
    assert_eq!(info.attempts_made, 1);
    assert_eq!(info.failed_reason.as_deref(), Some("attempt 1 failed"));
    let due = info.due_at.expect("retry has a due time");
    assert!(
        due >= now_ms() + 25_000,
        "retry due {due} is not ~30 s away"
    );
    let c = q.counts().await.unwrap();
    assert_eq!((c.delayed, c.failed, c.active, c.waiting), (1, 0, 0, 0));
    assert_eq!((c.failed_total, c.completed_total), (0, 0));
    assert_eq!(calls.lock().unwrap().len(), 1);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_failure_records_error_attempts_and_failed_total() {
    let env = TestEnv::new().await;
    let q = env.queue("final").await;
    let (worker, calls) = flaky_worker(&env, "final");
    let guard = spawn_worker(worker);
    let added = q
        .add(
            "flaky",
            &json!({"fail_first": 99}),
            JobOptions::new()
                .attempts(3)
                .backoff(Backoff::fixed(Duration::from_millis(20))),
        )
        .await
        .unwrap();
    let c = wait_finished(&q, 1, Duration::from_secs(4)).await;
    assert_eq!((c.failed_total, c.completed_total), (1, 0));
    assert_eq!((c.failed, c.completed, c.delayed, c.active), (1, 0, 0, 0));
    let info = q.job(&added.id).await.unwrap();
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.attempts_made, 3);
    assert_eq!(info.failed_reason.as_deref(), Some("attempt 3 failed"));
    assert_eq!(info.return_value, None);
    let finished = info.finished_at.expect("finished_at set on final failure");
    assert!(finished >= info.created_at);
    let attempts: Vec<u32> = calls_of(&calls, &added.id)
        .iter()
        .map(|c| c.attempt)
        .collect();
    assert_eq!(
        attempts,
        vec![1, 2, 3],
        "handler must run exactly `attempts` times"
    );
    // nothing runs again afterwards
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(calls.lock().unwrap().len(), 3);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_4_fatal_error_skips_remaining_attempts() {
    let env = TestEnv::new().await;
    let q = env.queue("fatal").await;
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = runs.clone();
    let worker = env
        .worker()
        .queues(["fatal"])
        .handler("doomed", move |_job: Job<Value>, _ctx: Ctx| {
            let r = r.clone();
            async move {
                r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err::<(), _>(JobError::fatal("input is corrupt").with_detail("at byte 7"))
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let added = q
        .add(
            "doomed",
            &json!({}),
            JobOptions::new()
                .attempts(5)
                .backoff(Backoff::fixed(Duration::from_millis(10))),
        )
        .await
        .unwrap();
    let c = wait_finished(&q, 1, Duration::from_secs(3)).await;
    assert_eq!((c.failed_total, c.delayed), (1, 0));
    let info = q.job(&added.id).await.unwrap();
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.attempts_made, 1, "a fatal error must not be retried");
    assert_eq!(info.failed_reason.as_deref(), Some("input is corrupt"));
    assert_eq!(info.stacktrace.as_deref(), Some("at byte 7"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_job_that_succeeds_counts_once_as_completed() {
    let env = TestEnv::new().await;
    let q = env.queue("recover").await;
    let (worker, _calls) = flaky_worker(&env, "recover");
    let guard = spawn_worker(worker);
    let mut ids = Vec::new();
    for n in 0..5 {
        let a = q
            .add(
                "flaky",
                &json!({ "fail_first": n }),
                JobOptions::new().attempts(5),
            )
            .await
            .unwrap();
        ids.push(a.id);
    }
    let c = wait_finished(&q, 5, Duration::from_secs(4)).await;
    assert_eq!((c.completed_total, c.failed_total), (5, 0));
    assert_eq!((c.completed, c.failed, c.delayed), (5, 0, 0));
    for (n, id) in ids.iter().enumerate() {
        let info = q.job(id).await.unwrap();
        assert_eq!(info.state, JobState::Completed);
        assert_eq!(info.attempts_made, n as u32 + 1);
        assert_eq!(info.return_value, Some(json!({"ok_on": n + 1})));
    }
    guard.stop().await.unwrap();
}
