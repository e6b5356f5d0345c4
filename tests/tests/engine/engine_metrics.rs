//! Per-minute metrics: completed and failed jobs are counted in the current minute's bucket.

use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

#[tokio::test]
async fn per_minute_metrics_count_completed_and_failed_jobs() {
    let env = TestEnv::new().await;
    let q = env.queue("metrics").await;
    for i in 0..7 {
        q.add("ok", &json!({ "i": i }), JobOptions::new())
            .await
            .unwrap();
    }
    for i in 0..3 {
        q.add("bad", &json!({ "i": i }), JobOptions::new())
            .await
            .unwrap();
    }
    let worker = env
        .worker()
        .queues(["metrics"])
        .handler("ok", |_j: Job<Value>, _c: Ctx| async {
            Ok::<_, JobError>(())
        })
        .handler("bad", |_j: Job<Value>, _c: Ctx| async {
            Err::<(), _>(JobError::new("always fails"))
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_finished(&q, 10, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();

    let done = q.metrics(false, 60).await.unwrap();
    let failed = q.metrics(true, 60).await.unwrap();
    assert_eq!(done.len(), 60);
    // a minute boundary may fall inside the run: the last two buckets hold everything
    assert_eq!(done[0] + done[1], 7, "{:?}", &done[..3]);
    assert_eq!(failed[0] + failed[1], 3, "{:?}", &failed[..3]);
    assert_eq!(done.iter().sum::<u64>(), 7);
    assert_eq!(failed.iter().sum::<u64>(), 3);
}

#[tokio::test]
async fn metrics_of_an_unused_queue_are_all_zero() {
    let env = TestEnv::new().await;
    let q = env.queue("quiet").await;
    let m = q.metrics(false, 5).await.unwrap();
    assert_eq!(m, vec![0; 5]);
}
