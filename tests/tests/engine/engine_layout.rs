//! The stored layout of a job with a record (a job with a given id here; a plain job is
//! lean, its lane entry alone: engine_lean.rs): a waiting job's hash leaves its state out
//! (it is implied by its lane entry), and still reads as waiting, then active, then
//! completed; an outcome never recreates a job hash deleted while the job ran.

use std::time::Duration;

use jobq_tests::*;
use queue_core::internal::keys::QueueKeys;
use queue_core::*;
use serde_json::{json, Value};

async fn hash_fields(env: &TestEnv, key: &str) -> Vec<String> {
    let mut raw = env.raw().await;
    redis::cmd("HKEYS")
        .arg(key)
        .query_async(&mut raw)
        .await
        .unwrap()
}

fn slow_worker(env: &TestEnv, queue: &str) -> Worker {
    env.worker()
        .queues([queue])
        .handler("slow", |_j: Job<Value>, _c: Ctx| async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_job_stores_no_state_field_and_reads_as_waiting_active_completed() {
    let env = TestEnv::new().await;
    let q = env.queue("layout").await;
    let keys = QueueKeys::new(env.config.prefix(), "layout");
    // a given id: a record from the add (a plain job would be lean, with no hash)
    let added = q
        .add("slow", &json!({"n": 1}), JobOptions::new().job_id("layout"))
        .await
        .unwrap();
    let key = keys.job(&added.id);
    let fields = hash_fields(&env, &key).await;
    assert!(!fields.contains(&"state".to_string()), "{fields:?}");
    assert!(fields.contains(&"sid".to_string()), "{fields:?}");
    assert_eq!(q.job(&added.id).await.unwrap().state, JobState::Waiting);
    let listed = q.list_jobs(JobState::Waiting, 0, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, added.id);

    let guard = spawn_worker(slow_worker(&env, "layout"));
    wait_active(&q, 1, Duration::from_secs(5)).await;
    assert_eq!(q.job(&added.id).await.unwrap().state, JobState::Active);
    wait_finished(&q, 1, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    let done = q.job(&added.id).await.unwrap();
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.data, json!({"n": 1}));
    let fields = hash_fields(&env, &key).await;
    assert!(fields.contains(&"state".to_string()), "{fields:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_hash_deleted_while_its_job_runs_is_not_recreated_by_the_outcome() {
    let env = TestEnv::new().await;
    let q = env.queue("vanish").await;
    let keys = QueueKeys::new(env.config.prefix(), "vanish");
    // a given id: a record from the add, deleted below (a plain job would be lean, with no
    // hash to delete; a lean entry deleted while it runs: engine_lean_hostile.rs)
    let added = q
        .add("slow", &json!({}), JobOptions::new().job_id("vanish"))
        .await
        .unwrap();
    let guard = spawn_worker(slow_worker(&env, "vanish"));
    wait_active(&q, 1, Duration::from_secs(5)).await;
    let mut raw = env.raw().await;
    let deleted: i64 = redis::cmd("DEL")
        .arg(keys.job(&added.id))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    wait_finished(&q, 1, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    let exists: i64 = redis::cmd("EXISTS")
        .arg(keys.job(&added.id))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(exists, 0, "the outcome recreated a deleted job");
    assert!(q.job(&added.id).await.is_err());
    assert_eq!(q.counts().await.unwrap().completed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_of_multibyte_data_is_stored_run_and_updated_whole() {
    let env = TestEnv::new().await;
    let q = env.queue("big").await;
    // 1 MB of 3-byte characters (just under the 1 MiB cap): small pieces then 64 KiB ones,
    // every cut near a character boundary
    let text: String = "€".repeat(349_000);
    let added = q
        .add("echo", &json!({ "text": text }), JobOptions::new())
        .await
        .unwrap();
    assert_eq!(q.job(&added.id).await.unwrap().data["text"], json!(text));
    let updated: String = "ü".repeat(300_000);
    q.update_data(&added.id, &json!({ "text": updated }))
        .await
        .unwrap();
    let worker = env
        .worker()
        .queues(["big"])
        .handler("echo", |j: Job<Value>, _c: Ctx| async move {
            Ok::<_, JobError>(j.data["text"].as_str().map(str::len))
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_finished(&q, 1, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    let done = q.job(&added.id).await.unwrap();
    assert_eq!(done.state, JobState::Completed, "{done:?}");
    assert_eq!(done.return_value, Some(json!(updated.len())));
}
