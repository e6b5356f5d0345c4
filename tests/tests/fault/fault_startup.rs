//! Guarantee 6 at start-up: a worker started while Redis is unreachable waits with backoff
//! instead of exiting, and starts work once Redis appears. At start-up the worker also
//! warns about Redis settings that can lose jobs (an evicting `maxmemory-policy`, AOF
//! off).
//!
//! Each test starts its own `redis-server`, and runs `jobq-worker` processes
//! (`cargo build --bins` first).

use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_6_worker_started_before_redis_waits_and_then_runs_jobs() {
    const Q: &str = "nored";
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let prefix = fresh_prefix();
    let mut worker = WorkerProcess::start(&url, &prefix, &["--queues", Q]);
    // nothing listens on the port: the worker must keep trying, not exit
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        worker.is_running(),
        "worker exited while Redis was down:\n{}",
        worker.stderr()
    );
    assert!(
        !worker.stderr().contains("worker started"),
        "worker claims to have started without Redis:\n{}",
        worker.stderr()
    );

    let _server = RedisServer::start_on(port, &[]);
    let up = Instant::now();
    let env = TestEnv::on_prefix(&url, &prefix).await;
    let q = env.queue(Q).await;
    let added = q
        .add("diag.echo", &json!({"hi": 1}), JobOptions::new())
        .await
        .unwrap();
    // the connect backoff is capped at 2 s
    let c = wait_finished(&q, 1, Duration::from_secs(10)).await;
    eprintln!(
        "worker started before Redis: first job completed {:?} after Redis came up",
        up.elapsed()
    );
    assert_eq!((c.completed_total, c.failed_total), (1, 0), "{c:?}");
    let info = q.job(&added.id).await.unwrap();
    assert_eq!(info.state, JobState::Completed);
    assert_eq!(info.return_value, Some(json!({"hi": 1})));
    assert!(worker.is_running(), "{}", worker.stderr());
}

/// Starts a worker against `server` and returns its log once it has started.
async fn startup_log(server: &RedisServer) -> String {
    let mut worker = WorkerProcess::start(&server.url(), &fresh_prefix(), &["--queues", "warn"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = worker.stderr();
        if log.contains("worker started") {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "worker did not start in 10 s (running: {}):\n{log}",
            worker.is_running()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The log's WARN lines.
fn warnings(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("WARN")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_6_worker_warns_at_startup_when_redis_may_evict_jobs() {
    let server = RedisServer::start(&["--maxmemory-policy", "allkeys-lru", "--appendonly", "yes"]);
    let log = startup_log(&server).await;
    let warns = warnings(&log);
    assert!(
        warns
            .iter()
            .any(|l| l.contains("maxmemory-policy") && l.contains("allkeys-lru")),
        "no maxmemory-policy warning:\n{log}"
    );
    // AOF is on here: no AOF warning
    assert!(
        !warns.iter().any(|l| l.contains("AOF")),
        "AOF warning with AOF on:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_6_worker_warns_at_startup_when_aof_is_off() {
    // the harness default: noeviction, AOF off
    let server = RedisServer::start(&[]);
    let log = startup_log(&server).await;
    let warns = warnings(&log);
    assert!(
        warns.iter().any(|l| l.contains("AOF")),
        "no AOF warning:\n{log}"
    );
    // noeviction is right: no eviction warning
    assert!(
        !warns.iter().any(|l| l.contains("maxmemory-policy")),
        "maxmemory-policy warning with noeviction:\n{log}"
    );
}

/// Guarantee 6 at start-up, the loading case: after a restart Redis answers INFO but every
/// other command with `LOADING` until its data set is back. A worker started then must wait
/// (not exit on its first write), must not warn that AOF is off (INFO reports AOF off while
/// loading), and must run jobs once Redis is ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_6_worker_started_while_redis_loads_waits_and_then_runs_jobs() {
    const Q: &str = "loading";
    let mut server = RedisServer::start_slow_loading(&["--appendonly", "yes"]);
    let prefix = fresh_prefix();
    let env = TestEnv::on_prefix(&server.url(), &prefix).await;
    let q = env.queue(Q).await;
    let before = q
        .add("diag.echo", &json!({"before": true}), JobOptions::new())
        .await
        .unwrap();
    drop(q);
    drop(env);
    server.restart_into_a_slow_load();
    let mut worker = WorkerProcess::start(&server.url(), &prefix, &["--queues", Q]);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        server.is_loading(),
        "Redis finished loading too soon for this test to mean anything"
    );
    assert!(
        worker.is_running(),
        "worker exited while Redis was loading:\n{}",
        worker.stderr()
    );
    // once loaded, the job stored before the restart runs, and so does a new one
    let env = TestEnv::on_prefix(&server.url(), &prefix).await;
    let q = env.queue(Q).await;
    let info = wait_job_done(&q, &before.id, Duration::from_secs(30)).await;
    assert_eq!(info.state, JobState::Completed, "{info:?}");
    let after = q
        .add("diag.echo", &json!({"after": true}), JobOptions::new())
        .await
        .unwrap();
    let info = wait_job_done(&q, &after.id, Duration::from_secs(10)).await;
    assert_eq!(info.state, JobState::Completed, "{info:?}");
    assert!(worker.is_running(), "{}", worker.stderr());
    let log = worker.stderr();
    assert!(
        !warnings(&log).iter().any(|l| l.contains("AOF")),
        "AOF warning although AOF is on (read while loading):\n{log}"
    );
}
