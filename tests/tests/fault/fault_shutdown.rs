//! Guarantee 5, graceful shutdown: on SIGTERM a worker stops fetching, lets its active jobs
//! finish within the grace period, records their results and exits 0. A job still running
//! when the grace period ends is not failed. It is left to be reclaimed (guarantee 1) and
//! completes on another worker.
//!
//! Each test starts its own `redis-server`, and runs `jobq-worker` processes
//! (`cargo build --bins` first).

use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_5_sigterm_with_10_active_jobs_finishes_them_all_and_exits_0() {
    const Q: &str = "sigterm";
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue(Q).await;
    let prefix = env.config.prefix().to_string();
    let mut worker = WorkerProcess::start(
        &server.url(),
        &prefix,
        &["--queues", Q, "--concurrency", "10"],
    );

    let jobs: Vec<NewJob> = (0..10)
        .map(|_| NewJob::new("diag.sleep", &json!({"ms": 1000}), JobOptions::new()).unwrap())
        .collect();
    let ids: Vec<String> = add_all(&q, jobs).await;
    wait_active(&q, 10, Duration::from_secs(10)).await;
    // more work waits behind the full slots: after the signal it must not be fetched
    let later: Vec<NewJob> = (0..5)
        .map(|_| NewJob::new("diag.noop", &json!({}), JobOptions::new()).unwrap())
        .collect();
    q.add_bulk(later).await.unwrap();

    worker.signal("TERM");
    let termed = Instant::now();
    let code = worker.wait_exit(Duration::from_secs(10));
    let took = termed.elapsed();
    eprintln!("SIGTERM with 10 active 1 s jobs: exited with {code:?} after {took:?}");
    assert_eq!(code, Some(0), "{}", worker.stderr());
    // the results were recorded before the exit, not later by somebody else
    let c = q.counts().await.unwrap();
    assert_eq!((c.completed_total, c.failed_total), (10, 0), "{c:?}");
    assert_eq!(c.completed, 10, "{c:?}");
    assert_eq!(c.active, 0, "{c:?}");
    assert_eq!(c.waiting, 5, "jobs were fetched after the signal: {c:?}");
    for id in &ids {
        let info = q.job(id).await.unwrap();
        assert_eq!(info.state, JobState::Completed, "job {id}");
        assert_eq!(info.return_value, Some(json!(1000)), "job {id}");
    }
    // the default grace (30 s) was not used up: the worker left once its jobs were done
    assert!(took < Duration::from_secs(3), "took {took:?} to exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_5_jobs_outliving_the_grace_period_are_left_for_reclaim_not_failed() {
    const Q: &str = "graceover";
    // several jobs, so that a race between "the handler saw the cancellation" and "the
    // worker abandoned the job" cannot pass by luck
    const N: usize = 8;
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue(Q).await;
    let prefix = env.config.prefix().to_string();
    let mut first = WorkerProcess::start(
        &server.url(),
        &prefix,
        &["--queues", Q, "--grace", "500ms", "--lease", "1s"],
    );
    let jobs: Vec<NewJob> = (0..N)
        .map(|_| NewJob::new("diag.sleep", &json!({"ms": 3000}), JobOptions::new()).unwrap())
        .collect();
    let ids: Vec<String> = add_all(&q, jobs).await;
    wait_active(&q, N as u64, Duration::from_secs(10)).await;

    first.signal("TERM");
    let termed = Instant::now();
    let code = first.wait_exit(Duration::from_secs(10));
    let took = termed.elapsed();
    eprintln!("SIGTERM with --grace 500ms and {N} 3 s jobs: exited with {code:?} after {took:?}");
    assert_eq!(code, Some(0), "{}", first.stderr());
    // the jobs still had ~3 s to go: the worker left at the end of the grace period
    assert!(took < Duration::from_millis(2_500), "took {took:?} to exit");
    assert!(
        took >= Duration::from_millis(400),
        "exited before the grace period: {took:?}"
    );
    for id in &ids {
        let info = q.job(id).await.unwrap();
        assert_eq!(
            (info.state, info.failed_reason.as_deref()),
            (JobState::Active, None),
            "a job left at the grace deadline was given an outcome: {info:?}"
        );
    }
    let c = q.counts().await.unwrap();
    assert_eq!((c.completed_total, c.failed_total), (0, 0), "{c:?}");

    // a second worker reclaims them once their lease expires, and completes them
    let mut second =
        WorkerProcess::start(&server.url(), &prefix, &["--queues", Q, "--lease", "1s"]);
    let c = wait_finished(&q, N as u64, Duration::from_secs(10)).await;
    eprintln!(
        "jobs abandoned at grace completed on the second worker {:?} after SIGTERM",
        termed.elapsed()
    );
    assert_eq!((c.completed_total, c.failed_total), (N as u64, 0), "{c:?}");
    for id in &ids {
        let info = q.job(id).await.unwrap();
        assert_eq!(info.state, JobState::Completed, "job {id}");
        assert_eq!(
            info.attempts_made, 1,
            "the abandoned attempt was counted: {id}"
        );
        assert_eq!(info.return_value, Some(json!(3000)), "job {id}");
    }
    assert!(second.is_running(), "{}", second.stderr());
}

/// Guarantees 5 and 6 together: a worker told to stop while Redis is down exits within
/// its grace period (plus the few seconds it gives recording), instead of waiting for
/// Redis to record outcomes; the job whose outcome it could not record is run again by
/// another worker once Redis is back (at-least-once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_5_a_worker_stopped_while_redis_is_down_exits_within_its_grace() {
    const Q: &str = "downstop";
    let mut server = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let env = TestEnv::on(&server.url()).await;
    let prefix = env.config.prefix().to_string();
    let q = env.queue(Q).await;
    let added = q
        .add("diag.sleep", &json!({"ms": 500}), JobOptions::new())
        .await
        .unwrap();
    let args = ["--queues", Q, "--grace", "2s", "--lease", "1s"];
    let mut w = WorkerProcess::start(&server.url(), &prefix, &args);
    wait_active(&q, 1, Duration::from_secs(10)).await;
    server.stop();
    w.signal("TERM");
    let asked = Instant::now();
    let code = w.wait_exit(Duration::from_secs(15));
    assert_eq!(
        code,
        Some(0),
        "still running {:?} after SIGTERM:\n{}",
        asked.elapsed(),
        w.stderr()
    );
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    server.restart();
    let env = TestEnv::on_prefix(&server.url(), &prefix).await;
    let q = env.queue(Q).await;
    let _next = WorkerProcess::start(&server.url(), &prefix, &args);
    let info = wait_job_done(&q, &added.id, Duration::from_secs(20)).await;
    assert_eq!(info.state, JobState::Completed, "{info:?}");
}
