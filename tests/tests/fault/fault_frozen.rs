//! Guarantee 1, the other side: a worker that froze past its lease (SIGSTOP) loses its job to
//! a reclaimer; when it wakes up and finishes, its outcome is not recorded a second time.

use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_1_a_frozen_worker_that_lost_its_job_does_not_record_it_again() {
    const Q: &str = "frozen";
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue(Q).await;
    let prefix = env.config.prefix().to_string();
    // A renews rarely (every 10 s), so when it wakes its handler finishes first and the
    // outcome reaches the complete script, whose ownership check must refuse it; B reclaims
    // entries idle for 1 s.
    let a = WorkerProcess::start(
        &server.url(),
        &prefix,
        &["--queues", Q, "--concurrency", "1", "--lease", "30s"],
    );
    let added = q
        .add("diag.sleep", &json!({"ms": 1500}), JobOptions::new())
        .await
        .unwrap();
    // the job runs on worker A
    wait_active(&q, 1, Duration::from_secs(5)).await;
    // A stops renewing its lease while its handler still "runs"
    a.signal("STOP");

    let b = WorkerProcess::start(
        &server.url(),
        &prefix,
        &["--queues", Q, "--concurrency", "1", "--lease", "1s"],
    );
    let c = wait_finished(&q, 1, Duration::from_secs(10)).await;
    assert_eq!((c.completed_total, c.failed_total), (1, 0), "{c:?}");
    let job = q.job(&added.id).await.unwrap();
    assert_eq!(job.state, JobState::Completed);
    assert_eq!(job.stacktrace, None);

    // A wakes up: its handler's sleep is long over, it tries to record the outcome
    a.signal("CONT");
    eventually(
        Duration::from_secs(5),
        "worker A's outcome to be refused",
        || {
            let log = a.stderr();
            async move { log.contains("outcomes not recorded").then_some(()) }
        },
    )
    .await;
    let c = q.counts().await.unwrap();
    assert_eq!(c.completed_total, 1, "recorded twice: {c:?}");
    assert_eq!(c.completed, 1, "{c:?}");
    assert_eq!(c.active, 0, "{c:?}");
    assert!(
        b.stderr().contains("reclaimed jobs whose lease expired"),
        "{}",
        b.stderr()
    );
}
