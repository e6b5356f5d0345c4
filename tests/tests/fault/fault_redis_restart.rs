//! Guarantee 6: Redis restarting under a busy worker loses no job when Redis persists
//! with AOF. The worker reconnects with backoff and carries on without crashing. Results
//! computed while Redis was away are recorded once it is back.
//!
//! Starts its own `redis-server` (AOF on, fsync always), and runs a `jobq-worker` process
//! (`cargo build --bins` first).

use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_6_redis_restarted_twice_under_300_jobs_loses_none_and_worker_stays_up() {
    const Q: &str = "restart";
    const N: u64 = 300;
    let mut server = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue(Q).await;
    let prefix = env.config.prefix().to_string();
    let jobs: Vec<NewJob> = (0..N)
        .map(|_| NewJob::new("diag.sleep", &json!({"ms": 30}), JobOptions::new()).unwrap())
        .collect();
    q.add_bulk(jobs).await.unwrap();
    // A restart can swallow the reply of a claim Redis has already run (and persisted): the
    // claimed jobs stay pending under this worker until their lease runs out and the
    // reclaimer hands them out again. A 3 s lease keeps that recovery within the test's wait.
    let mut worker = WorkerProcess::start(
        &server.url(),
        &prefix,
        &["--queues", Q, "--concurrency", "10", "--lease", "3s"],
    );
    let completed = || async { q.counts().await.ok().map(|c| c.completed_total) };

    // restart once a few jobs are done, and again once the worker has done more since
    let mut done_before = 0;
    for (round, at_least) in [(1, 40u64), (2, 0)] {
        let threshold = at_least.max(done_before + 40);
        let done = eventually(
            Duration::from_secs(15),
            &format!("{threshold} jobs completed before restart {round}"),
            || async { completed().await.filter(|&n| n >= threshold) },
        )
        .await;
        assert!(
            done < N,
            "all jobs finished before restart {round}: it would test nothing"
        );
        let t = Instant::now();
        server.restart();
        let restart_took = t.elapsed();
        let back = Instant::now();
        let after = eventually(
            Duration::from_secs(5),
            "counts from the restarted Redis",
            completed,
        )
        .await;
        assert!(
            after >= done,
            "completed_total went back from {done} to {after}: AOF lost writes"
        );
        let resumed_at = eventually(
            Duration::from_secs(10),
            &format!("the worker to complete jobs again after restart {round}"),
            || async { completed().await.filter(|&n| n > after || n >= N) },
        )
        .await;
        eprintln!(
            "restart {round}: {done} jobs done before, Redis down+up took {restart_took:?}, \
             worker completed jobs again {:?} after Redis was back ({after} -> {resumed_at})",
            back.elapsed()
        );
        assert!(
            worker.is_running(),
            "worker died at restart {round}:\n{}",
            worker.stderr()
        );
        done_before = resumed_at;
    }

    let finished = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(c) = q.counts().await {
                if c.completed_total + c.failed_total >= N {
                    return c;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let Ok(c) = finished else {
        panic!(
            "{N} jobs did not finish within 20s of the last restart: {:?}\nworker log:\n{}",
            q.counts().await,
            worker.stderr()
        );
    };
    assert_eq!((c.completed_total, c.failed_total), (N, 0), "{c:?}");
    assert_eq!(c.completed, N, "{c:?}");
    assert_eq!((c.waiting, c.active, c.delayed), (0, 0, 0), "{c:?}");
    assert!(
        worker.is_running(),
        "worker is not running:\n{}",
        worker.stderr()
    );
}
