use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

#[tokio::test]
async fn a_job_runs_and_completes() {
    let env = TestEnv::new().await;
    let q = env.queue("smoke").await;
    let added = q
        .add("echo", &json!({"x": 1}), JobOptions::new())
        .await
        .unwrap();
    let worker = env
        .worker()
        .queues(["smoke"])
        .handler("echo", |job: Job<Value>, _ctx: Ctx| async move {
            Ok::<_, JobError>(job.data)
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let counts = wait_finished(&q, 1, Duration::from_secs(5)).await;
    assert_eq!(counts.completed, 1);
    let info = q.job(&added.id).await.unwrap();
    assert_eq!(info.state, JobState::Completed);
    assert_eq!(info.return_value, Some(json!({"x": 1})));
    guard.stop().await.unwrap();
}
