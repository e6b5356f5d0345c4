//! Self-repair when a queue's bookkeeping keys are deleted behind jobq's back.

use std::time::Duration;

use jobq_tests::*;
use queue_core::internal::keys::QueueKeys;
use queue_core::*;
use serde_json::{json, Value};

#[tokio::test]
async fn a_due_job_whose_lane_set_was_deleted_still_runs() {
    let env = TestEnv::new().await;
    let q = env.queue("lost-lanes").await;
    let added = q
        .add(
            "work",
            &json!({}),
            JobOptions::new()
                .priority(7)
                .delay(Duration::from_millis(100)),
        )
        .await
        .unwrap();
    let keys = QueueKeys::new(env.config.prefix(), "lost-lanes");
    let mut raw = env.raw().await;
    let deleted: i64 = redis::cmd("DEL")
        .arg(keys.lanes())
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(deleted, 1, "the lanes set existed before");
    let worker = env
        .worker()
        .queues(["lost-lanes"])
        .handler("work", |_j: Job<Value>, _c: Ctx| async {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_finished(&q, 1, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    let job = q.job(&added.id).await.unwrap();
    assert_eq!(job.state, JobState::Completed);
    assert_eq!(job.priority, 7);
    let lanes: Vec<String> = lane_prios(&mut raw, &keys).await;
    assert_eq!(lanes, vec!["7".to_string()], "the lane was put back");
}
