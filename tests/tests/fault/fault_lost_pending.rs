//! Guarantee 1 when a running job's lane entry is lost too: its worker dies (SIGKILL) and
//! its pending stream entry is deleted (as a trim on Redis < 8.2 can do). The reclaimer finds
//! a pending id with no entry; the sweep re-enqueues the job from its hash, and it completes.

use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::internal::keys::QueueKeys;
use queue_core::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_1_job_whose_pending_entry_was_deleted_with_its_worker_dead_still_runs() {
    const Q: &str = "lostpending";
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue(Q).await;
    let prefix = env.config.prefix().to_string();

    let a = WorkerProcess::start(
        &server.url(),
        &prefix,
        &["--queues", Q, "--concurrency", "1", "--lease", "1s"],
    );
    let added = q
        .add("diag.sleep", &json!({"ms": 60_000}), JobOptions::new())
        .await
        .unwrap();
    // the job runs on worker A
    wait_active(&q, 1, Duration::from_secs(5)).await;
    a.signal("KILL");

    // delete the pending entry behind jobq's back
    let keys = QueueKeys::new(&prefix, Q);
    let mut raw = env.raw().await;
    let sid: String = redis::cmd("HGET")
        .arg(keys.job(&added.id))
        .arg("sid")
        .query_async(&mut raw)
        .await
        .unwrap();
    let deleted: i64 = redis::cmd("XDEL")
        .arg(keys.lane(0))
        .arg(&sid)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(deleted, 1);

    let started = Instant::now();
    let worker = env
        .worker()
        .queues([Q])
        .lease(Duration::from_secs(1))
        .sweep_interval(Duration::from_millis(100))
        .handler("diag.sleep", |_j: Job<Value>, _c: Ctx| async {
            Ok::<_, JobError>("second run")
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let c = wait_finished(&q, 1, Duration::from_secs(10)).await;
    eprintln!(
        "job with a lost pending entry completed {:?} after the second worker started",
        started.elapsed()
    );
    assert_eq!((c.completed_total, c.failed_total), (1, 0), "{c:?}");
    let job = q.job(&added.id).await.unwrap();
    assert_eq!(job.state, JobState::Completed);
    assert_eq!(job.return_value, Some(json!("second run")));
    // the counts settle exactly: nothing waiting, nothing active
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.active, c.completed), (0, 0, 1), "{c:?}");
    guard.stop().await.unwrap();
}
