//! Guarantee 4, timeouts: a handler that runs past its job's timeout is cancelled at the
//! timeout. That attempt fails with "timed out after …" and the job is retried while it
//! has attempts left.
//!
//! Starts its own `redis-server`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_4_five_second_job_with_1s_timeout_fails_the_attempt_at_1s_and_retries() {
    const Q: &str = "timeout";
    const BACKOFF_MS: u64 = 300;
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue(Q).await;
    // (attempt, when it started) of every run of the handler
    let starts: Arc<Mutex<Vec<(u32, Instant)>>> = Arc::default();
    let seen = starts.clone();
    let worker = env
        .worker()
        .queues([Q])
        .concurrency(2)
        .handler("slow", move |job: Job<Value>, _ctx: Ctx| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push((job.attempt, Instant::now()));
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok::<_, JobError>("finished")
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
                .timeout(Duration::from_secs(1))
                .attempts(2)
                .backoff(Backoff::fixed(Duration::from_millis(BACKOFF_MS))),
        )
        .await
        .unwrap();

    // the first attempt's failure, as recorded: delayed for its retry
    let info = eventually(
        Duration::from_secs(4),
        "the first attempt to fail",
        || async {
            let info = q.job(&added.id).await.ok()?;
            (info.state == JobState::Delayed).then_some(info)
        },
    )
    .await;
    let observed = Instant::now();
    let first_start = starts.lock().unwrap()[0].1;
    assert_eq!(info.attempts_made, 1);
    let reason = info.failed_reason.clone().expect("failed_reason");
    assert!(reason.starts_with("timed out after 1s"), "{reason}");
    // Redis's clock: the attempt started at `started_at`; the failure was recorded at
    // `due_at - backoff`
    let started = info.started_at.expect("started_at");
    let failed_at = info.due_at.expect("due_at") - BACKOFF_MS;
    let attempt_ms = failed_at - started;
    eprintln!(
        "timeout 1s: attempt failed {attempt_ms} ms after it started (seen by the test after {:?})",
        observed - first_start
    );
    assert!(
        (900..=1600).contains(&attempt_ms),
        "first attempt failed {attempt_ms} ms after it started"
    );

    // a second attempt starts after the backoff
    eventually(Duration::from_secs(3), "a second attempt", || async {
        (starts.lock().unwrap().len() >= 2).then_some(())
    })
    .await;
    let runs = starts.lock().unwrap().clone();
    assert_eq!(runs[0].0, 1);
    assert_eq!(runs[1].0, 2);
    let gap = runs[1].1 - runs[0].1;
    eprintln!("second attempt started {gap:?} after the first");
    assert!(
        gap >= Duration::from_millis(1_200) && gap < Duration::from_millis(2_500),
        "second attempt started {gap:?} after the first (timeout 1 s + backoff 300 ms)"
    );

    // it times out too, and with no attempts left the job fails for good
    let c = wait_finished(&q, 1, Duration::from_secs(4)).await;
    assert_eq!((c.failed_total, c.completed_total), (1, 0), "{c:?}");
    let info = q.job(&added.id).await.unwrap();
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.attempts_made, 2);
    let reason = info.failed_reason.expect("failed_reason");
    assert!(reason.starts_with("timed out after 1s"), "{reason}");
    assert_eq!(starts.lock().unwrap().len(), 2, "ran more than twice");
    guard.stop().await.unwrap();
}
