//! `jobq cancel` against a `jobq-worker` process: a running job is stopped within 1.5 s and
//! not retried, the worker keeps running; finished and unknown jobs exit 1.

use std::time::{Duration, Instant};

use jobq_tests::{start_long_job, wait_cancelled, wait_job_done, TestEnv, WorkerProcess};
use queue_core::{JobOptions, JobState};
use serde_json::json;

use super::{jobq_in, one_json, stderr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobq_cancel_stops_a_running_job_within_1_5_s_and_the_worker_keeps_running() {
    let env = TestEnv::new().await;
    let q = env.queue("cli-cancel").await;
    let url = env.config.redis_url().unwrap().to_string();
    let mut worker = WorkerProcess::start(&url, env.config.prefix(), &["--queues", "cli-cancel"]);
    let long = start_long_job(
        &q,
        "diag.sleep",
        JobOptions::new().attempts(3),
        Duration::from_secs(20),
    )
    .await;
    let asked = Instant::now();
    let out = one_json(&env, &["cancel", "cli-cancel", &long]);
    assert_eq!(out["cancelled"], "requested", "{out}");
    wait_cancelled(&q, &long, asked).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.active, c.delayed, c.waiting, c.cancelled),
        (0, 0, 0, 1),
        "{c:?}"
    );

    // finished: exit 1 naming the state; unknown: exit 1 naming the id
    let again = jobq_in(&env, &["cancel", "cli-cancel", &long], b"");
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(stderr(&again).contains("cancelled"), "{}", stderr(&again));
    let missing = jobq_in(&env, &["cancel", "cli-cancel", "nope"], b"");
    assert_eq!(missing.status.code(), Some(1), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("nope"), "{}", stderr(&missing));

    // a waiting job is cancelled at once; the worker still runs what comes next
    q.pause().await.unwrap();
    let waiting = q
        .add("diag.noop", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let out = one_json(&env, &["cancel", "cli-cancel", &waiting.id]);
    assert_eq!(out["cancelled"], "now", "{out}");
    q.resume().await.unwrap();
    let next = q
        .add("diag.noop", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let done = wait_job_done(&q, &next.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed);
    assert!(worker.is_running(), "{}", worker.stderr());
    let listed = jobq_in(
        &env,
        &["--json", "list", "cli-cancel", "--state", "cancelled"],
        b"",
    );
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 2);
}
