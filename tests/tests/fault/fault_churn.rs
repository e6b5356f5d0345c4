//! Issue 16: faults never spread. Redis restarts (AOF reload) while `jobq-worker`
//! processes are started and SIGKILLed at random moments; afterwards every job has
//! completed, each counted once, none failed, and nothing is left waiting, active or
//! delayed.
//!
//! Starts its own `redis-server` (AOF on, fsync always) and runs `jobq-worker` processes
//! (`cargo build --bins` first). `JOBQ_CHURN_SEED` replays a run's schedule of kills.

use std::time::{Duration, Instant};

use jobq_tests::*;
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};
use queue_core::*;
use serde_json::json;

const Q: &str = "churn";
const N: u64 = 2_000;

/// The last lines of a worker's log, for a failure message.
fn log_tail(w: &LoggedProcess, lines: usize) -> String {
    let log = w.stderr();
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_at_random_while_redis_restarts_twice_lose_and_double_count_no_job() {
    let seed: u64 = std::env::var("JOBQ_CHURN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(now_ms);
    eprintln!("churn schedule from seed {seed} (rerun: JOBQ_CHURN_SEED={seed})");
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);

    let mut server = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let url = server.url();
    let env = TestEnv::on(&url).await;
    let q = env.queue(Q).await;
    let prefix = env.config.prefix().to_string();
    // every completed job is kept, so each can be checked at the end
    let opts = JobOptions::new().remove_on_complete(Retention::keep_last(2 * N));
    let jobs: Vec<NewJob> = (0..N)
        .map(|_| NewJob::new("diag.sleep", &json!({"ms": 40}), opts.clone()).unwrap())
        .collect();
    let ids: Vec<String> = add_all(&q, jobs).await;

    // a short lease: jobs of killed workers are reclaimed within seconds; stalls are what
    // this test causes, so they never fail a job here
    let start = |concurrency: &str| {
        WorkerProcess::start(
            &url,
            &prefix,
            &[
                "--queues",
                Q,
                "--concurrency",
                concurrency,
                "--lease",
                "2s",
                "--max-stalls",
                "1000",
            ],
        )
    };
    let mut live: Vec<WorkerProcess> = (0..3).map(|_| start("4")).collect();
    let mut killed: Vec<WorkerProcess> = Vec::new();
    let mut kills = 0;
    let began = Instant::now();
    let restarts_at = [
        Duration::from_millis(rng.random_range(2_500..3_500)),
        Duration::from_millis(rng.random_range(6_000..7_000)),
    ];
    let mut restarts = 0;
    while began.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..900))).await;
        if restarts < restarts_at.len() && began.elapsed() >= restarts_at[restarts] {
            let done = q.counts().await.map(|c| c.completed_total.to_string());
            let t = Instant::now();
            tokio::task::block_in_place(|| server.restart());
            restarts += 1;
            eprintln!(
                "{:?}: Redis restarted ({} jobs done before), took {:?}",
                began.elapsed(),
                done.unwrap_or_else(|e| format!("? ({e})")),
                t.elapsed()
            );
            continue;
        }
        // kill one at random (now and then the last one), and start up to two
        if live.len() > 1 || (live.len() == 1 && rng.random_range(0..3) == 0) {
            let mut w = live.swap_remove(rng.random_range(0..live.len()));
            if !w.is_running() {
                panic!(
                    "worker exited by itself before its kill:\n{}",
                    log_tail(&w, 40)
                );
            }
            w.signal("KILL");
            w.wait_exit(Duration::from_secs(5));
            kills += 1;
            killed.push(w);
        }
        for _ in 0..rng.random_range(0..=2) {
            if live.len() < 4 {
                live.push(start("4"));
            }
        }
    }
    assert_eq!(restarts, 2, "the churn ended before both restarts");
    let churned = q.counts().await.map(|c| c.completed_total.to_string());
    eprintln!(
        "{:?}: churn over: {kills} workers killed, {} jobs done; one worker finishes",
        began.elapsed(),
        churned.unwrap_or_else(|e| format!("? ({e})")),
    );
    for mut w in live.drain(..) {
        assert!(
            w.is_running(),
            "a worker died by itself:\n{}",
            log_tail(&w, 40)
        );
        w.signal("KILL");
        w.wait_exit(Duration::from_secs(5));
        killed.push(w);
    }
    let mut last = start("16");

    let finished = tokio::time::timeout(Duration::from_secs(25), async {
        loop {
            if let Ok(c) = q.counts().await {
                if c.completed_total + c.failed_total >= N
                    && (c.waiting, c.active, c.delayed) == (0, 0, 0)
                {
                    return c;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let Ok(c) = finished else {
        let logs: Vec<String> = killed
            .iter()
            .map(|w| log_tail(w, 15))
            .chain([log_tail(&last, 60)])
            .collect();
        panic!(
            "{N} jobs did not finish within 25 s of the churn: {:?}\nworker logs (killed ones \
             first, the last worker at the end):\n{}",
            q.counts().await,
            logs.join("\n-----\n")
        );
    };
    eprintln!("{:?}: all done: {c:?}", began.elapsed());
    assert!(
        last.is_running(),
        "the last worker died:\n{}",
        log_tail(&last, 40)
    );
    // completions are recorded once per job: a job re-run after its worker was killed
    // counts once, and so does one recorded twice across a restart
    assert_eq!((c.completed_total, c.failed_total), (N, 0), "{c:?}");
    assert_eq!((c.waiting, c.active, c.delayed), (0, 0, 0), "{c:?}");
    let mut not_done = Vec::new();
    for id in &ids {
        match q.get_job(id).await {
            Ok(Some(j)) if j.state == JobState::Completed => {}
            other => not_done.push(format!("{id}: {other:?}")),
        }
    }
    assert!(
        not_done.is_empty(),
        "{} jobs not completed:\n{}",
        not_done.len(),
        not_done.join("\n")
    );
    last.signal("TERM");
    assert_eq!(
        last.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        log_tail(&last, 40)
    );
}
