//! Guarantee 1 under SIGKILL: a worker process killed with jobs in flight loses none of
//! them. Another worker reclaims every job once its lease expires and runs it to
//! completion. Nothing is marked failed, and no attempt of the dead worker is counted.
//!
//! Each test starts its own `redis-server`, and runs `jobq-worker` processes
//! (`cargo build --bins` first).

use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_1_kill_9_with_50_jobs_in_flight_loses_nothing() {
    const Q: &str = "faultkill";
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue(Q).await;
    let prefix = env.config.prefix().to_string();
    let args = ["--queues", Q, "--concurrency", "50", "--lease", "2s"];

    let mut first = WorkerProcess::start(&server.url(), &prefix, &args);
    let jobs: Vec<NewJob> = (0..50)
        .map(|_| NewJob::new("diag.sleep", &json!({"ms": 3000}), JobOptions::new()).unwrap())
        .collect();
    let ids: Vec<String> = add_all(&q, jobs).await;
    assert_eq!(ids.len(), 50);

    // every job is running on the first worker
    wait_active(&q, 50, Duration::from_secs(10)).await;
    first.signal("KILL");
    let killed = Instant::now();
    eventually(Duration::from_secs(5), "the killed worker to exit", || {
        let gone = !first.is_running();
        async move { gone.then_some(()) }
    })
    .await;
    // nothing finished before the kill: the jobs run 3 s
    let c = q.counts().await.unwrap();
    assert_eq!((c.completed_total, c.failed_total), (0, 0), "{c:?}");

    let mut second = WorkerProcess::start(&server.url(), &prefix, &args);
    // lease 2 s + one reclaim tick + a 3 s re-run, with room to spare
    let c = wait_finished(&q, 50, Duration::from_secs(20)).await;
    let recovery = killed.elapsed();
    eprintln!("kill -9 with 50 jobs in flight: all 50 completed {recovery:?} after the kill");

    assert_eq!(c.failed_total, 0, "a job was marked failed: {c:?}");
    assert_eq!(c.completed_total, 50, "{c:?}");
    assert_eq!(c.completed, 50, "{c:?}");
    assert_eq!(
        (c.waiting, c.active, c.delayed, c.failed),
        (0, 0, 0, 0),
        "{c:?}"
    );
    for id in &ids {
        let info = q.job(id).await.unwrap();
        assert_eq!(info.state, JobState::Completed, "job {id}");
        // the killed worker's attempt never ended, so it is not counted
        assert_eq!(info.attempts_made, 1, "job {id}");
        assert_eq!(info.return_value, Some(json!(3000)), "job {id}");
    }
    // the reclaim needs the lease to expire first; a faster recovery means the jobs were
    // not really recovered by lease expiry
    assert!(
        recovery >= Duration::from_secs(4),
        "recovered faster than lease + job time: {recovery:?}"
    );
    assert!(second.is_running(), "{}", second.stderr());
}

/// A job reclaimed from a dead worker keeps its place at the front: it started before the
/// jobs still waiting, so it runs before them (the queue's front lane), not after the
/// whole backlog as it would at the back of its lane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_1_a_reclaimed_job_runs_before_the_jobs_still_waiting() {
    const Q: &str = "front";
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue(Q).await;
    let prefix = env.config.prefix().to_string();
    let args = ["--queues", Q, "--concurrency", "1", "--lease", "1s"];
    let mut first = WorkerProcess::start(&server.url(), &prefix, &args);
    let started = q
        .add("diag.sleep", &json!({"ms": 200}), JobOptions::new())
        .await
        .unwrap();
    wait_active(&q, 1, Duration::from_secs(10)).await;
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(5));
    // a backlog added after it started: 30 jobs of 150 ms each, run one at a time
    let backlog: Vec<NewJob> = (0..30)
        .map(|i| NewJob::new("diag.sleep", &json!({"ms": 150, "n": i}), JobOptions::new()).unwrap())
        .collect();
    let backlog: Vec<String> = add_all(&q, backlog).await;
    let second = WorkerProcess::start(&server.url(), &prefix, &args);
    let c = wait_finished(&q, 31, Duration::from_secs(30)).await;
    assert_eq!((c.completed_total, c.failed_total), (31, 0), "{c:?}");
    let reclaimed = q.job(&started.id).await.unwrap();
    let ran_at = reclaimed.started_at.unwrap();
    let mut before = 0;
    for id in &backlog {
        if q.job(id).await.unwrap().started_at.unwrap() < ran_at {
            before += 1;
        }
    }
    // reclaimed about a lease (1 s) after the kill: some of the backlog ran meanwhile, but
    // not the whole of it (4.5 s)
    assert!(
        before < 20,
        "{before} of 30 jobs added after it ran before the reclaimed job:\n{}",
        second.stderr()
    );
    second.signal("TERM");
}
