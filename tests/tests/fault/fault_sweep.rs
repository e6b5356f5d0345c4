//! Guarantee 1, consistency sweep: a waiting job whose lane entry was lost (here deleted
//! with XDEL behind jobq's back) is found by the worker's sweep, re-enqueued and run.
//!
//! Starts its own `redis-server`.

use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::internal::keys::QueueKeys;
use queue_core::*;
use serde_json::{json, Value};

/// Adds a job to `queue`, then deletes its lane entry with XDEL (no worker is running yet,
/// so the entry was never delivered). Returns the job id. The job is given an id, so it
/// keeps a record (a hash) the sweep re-enqueues it from: a plain job would be lean, its
/// lane entry alone, and deleting that entry deletes the job.
async fn add_and_lose_entry(env: &TestEnv, q: &Queue, queue: &str) -> String {
    let added = q
        .add(
            "echo",
            &json!({"lost": true}),
            JobOptions::new().job_id("lost"),
        )
        .await
        .unwrap();
    let keys = QueueKeys::new(env.config.prefix(), queue);
    let mut raw = env.raw().await;
    let sid: String = redis::cmd("HGET")
        .arg(keys.job(&added.id))
        .arg("sid")
        .query_async(&mut raw)
        .await
        .expect("job hash has a lane entry id");
    let deleted: i64 = redis::cmd("XDEL")
        .arg(keys.lane(0))
        .arg(&sid)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(deleted, 1, "lane entry {sid} was not there");
    let left: i64 = redis::cmd("XLEN")
        .arg(keys.lane(0))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(left, 0);
    added.id
}

fn echo_worker(env: &TestEnv, queue: &str) -> Worker {
    env.worker()
        .queues([queue])
        .sweep_interval(Duration::from_millis(100))
        .handler("echo", |job: Job<Value>, _ctx: Ctx| async move {
            Ok::<_, JobError>(job.data)
        })
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_1_waiting_job_whose_lane_entry_was_deleted_is_reenqueued_by_the_sweep() {
    const Q: &str = "sweep";
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue(Q).await;
    let id = add_and_lose_entry(&env, &q, Q).await;
    assert_eq!(q.job(&id).await.unwrap().state, JobState::Waiting);

    let started = Instant::now();
    let guard = spawn_worker(echo_worker(&env, Q));
    let c = wait_finished(&q, 1, Duration::from_secs(5)).await;
    eprintln!(
        "job with a deleted lane entry completed {:?} after the worker started",
        started.elapsed()
    );
    assert_eq!((c.completed_total, c.failed_total), (1, 0), "{c:?}");
    let info = q.job(&id).await.unwrap();
    assert_eq!(info.state, JobState::Completed);
    assert_eq!(info.attempts_made, 1);
    assert_eq!(info.return_value, Some(json!({"lost": true})));

    // and later jobs still flow normally
    let next = q.add("echo", &json!(2), JobOptions::new()).await.unwrap();
    wait_finished(&q, 2, Duration::from_secs(5)).await;
    assert_eq!(q.job(&next.id).await.unwrap().state, JobState::Completed);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_1_sweep_repair_leaves_the_waiting_count_exact() {
    const Q: &str = "sweepcount";
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue(Q).await;
    let id = add_and_lose_entry(&env, &q, Q).await;
    let guard = spawn_worker(echo_worker(&env, Q));
    wait_finished(&q, 1, Duration::from_secs(5)).await;
    assert_eq!(q.job(&id).await.unwrap().state, JobState::Completed);
    // nothing is waiting any more, so the count must say 0. Give the sweep a few more
    // passes to show the count does not drift either.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.waiting, c.active, c.completed),
        (0, 0, 1),
        "counts after the repaired job completed: {c:?}"
    );
    guard.stop().await.unwrap();
}
