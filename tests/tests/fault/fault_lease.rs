//! Guarantee 1, leases: a live worker renews the lease of a long job, so the job is never
//! reclaimed and never runs twice. A job whose worker keeps dying is not re-run forever:
//! after `max_stalls` reclaims it fails, with a reason that says it stalled.
//!
//! Each test starts its own `redis-server`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::internal::keys::QueueKeys;
use queue_core::*;
use serde_json::{json, Value};

/// The job hash's `stalls` field (how many times the job was reclaimed), if any.
async fn stalls(env: &TestEnv, queue: &str, id: &str) -> Option<u64> {
    let key = QueueKeys::new(env.config.prefix(), queue).job(id);
    let mut raw = env.raw().await;
    redis::cmd("HGET")
        .arg(key)
        .arg("stalls")
        .query_async(&mut raw)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_1_job_running_3x_its_lease_on_a_live_worker_runs_exactly_once() {
    const Q: &str = "longlease";
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue(Q).await;
    let runs = Arc::new(AtomicUsize::new(0));
    // two workers on the queue, both reclaiming: either could take the job if its lease
    // lapsed
    let worker = |runs: Arc<AtomicUsize>| {
        env.worker()
            .queues([Q])
            .concurrency(2)
            .lease(Duration::from_secs(1))
            .handler("long", move |_job: Job<Value>, _ctx: Ctx| {
                let runs = runs.clone();
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(3_500)).await;
                    Ok::<_, JobError>("done")
                }
            })
            .build()
            .unwrap()
    };
    let a = spawn_worker(worker(runs.clone()));
    let b = spawn_worker(worker(runs.clone()));

    let started = Instant::now();
    let added = q.add("long", &json!({}), JobOptions::new()).await.unwrap();
    let c = wait_finished(&q, 1, Duration::from_secs(10)).await;
    let took = started.elapsed();
    eprintln!("3.5 s job under a 1 s lease finished after {took:?}");

    // a reclaim after 1 s would have started a second run by now (and a lost first
    // outcome would push completion past 4.5 s)
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the job ran more than once");
    assert_eq!((c.completed_total, c.failed_total), (1, 0), "{c:?}");
    let info = q.job(&added.id).await.unwrap();
    assert_eq!(info.state, JobState::Completed);
    assert_eq!(info.attempts_made, 1);
    assert_eq!(info.return_value, Some(json!("done")));
    assert_eq!(
        stalls(&env, Q, &added.id).await,
        None,
        "a stall was recorded for a healthy job"
    );
    assert!(
        took < Duration::from_millis(4_500),
        "the job did not complete on its first run: {took:?}"
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_1_job_that_kills_its_worker_more_than_max_stalls_times_fails_as_stalled() {
    const Q: &str = "stalls";
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue(Q).await;
    let prefix = env.config.prefix().to_string();
    let args = [
        "--queues",
        Q,
        "--concurrency",
        "1",
        "--lease",
        "1s",
        "--max-stalls",
        "1",
    ];

    let a = WorkerProcess::start(&server.url(), &prefix, &args);
    let added = q
        .add("diag.sleep", &json!({"ms": 60_000}), JobOptions::new())
        .await
        .unwrap();
    wait_active(&q, 1, Duration::from_secs(10)).await;
    a.signal("KILL");
    let killed_a = Instant::now();

    // B reclaims it (stall 1, within the limit) and runs it again
    let b = WorkerProcess::start(&server.url(), &prefix, &args);
    eventually(
        Duration::from_secs(10),
        "worker B to reclaim and run the job",
        || async {
            let s = stalls(&env, Q, &added.id).await;
            let c = q.counts().await.ok()?;
            (s == Some(1) && c.active == 1).then_some(())
        },
    )
    .await;
    eprintln!(
        "stall 1: job reclaimed and running again {:?} after worker A was killed",
        killed_a.elapsed()
    );
    let c = q.counts().await.unwrap();
    assert_eq!((c.completed_total, c.failed_total), (0, 0), "{c:?}");
    b.signal("KILL");
    let killed_b = Instant::now();

    // C finds it stalled a second time: more than --max-stalls 1, so it fails
    let mut c_worker = WorkerProcess::start(&server.url(), &prefix, &args);
    let c = wait_finished(&q, 1, Duration::from_secs(10)).await;
    eprintln!(
        "stall 2: job failed as stalled {:?} after worker B was killed",
        killed_b.elapsed()
    );
    assert_eq!((c.failed_total, c.completed_total), (1, 0), "{c:?}");
    assert_eq!((c.failed, c.active, c.waiting), (1, 0, 0), "{c:?}");
    let info = q.job(&added.id).await.unwrap();
    assert_eq!(info.state, JobState::Failed);
    let reason = info.failed_reason.expect("failed_reason");
    assert!(reason.contains("stalled"), "{reason}");
    assert_eq!(stalls(&env, Q, &added.id).await, Some(2));
    assert!(c_worker.is_running(), "{}", c_worker.stderr());
}

/// No false alarm: a lease renewal that races the finisher (which has just acknowledged
/// the entries it renews) must not report those jobs as reclaimed. Thousands of short jobs
/// under a 300 ms lease (renewed every 100 ms) make the race happen many times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_renewal_racing_the_finisher_reports_no_lost_lease() {
    const Q: &str = "racelease";
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let jobs: Vec<NewJob> = (0..6_000)
        .map(|i| {
            NewJob::new(
                "diag.sleep",
                &json!({ "ms": 5 + i % 20 }),
                JobOptions::new(),
            )
            .unwrap()
        })
        .collect();
    q.add_bulk(jobs).await.unwrap();
    let mut w = WorkerProcess::start(
        env.config.redis_url().unwrap(),
        env.config.prefix(),
        &["--queues", Q, "--lease", "300ms", "--concurrency", "64"],
    );
    let c = wait_finished(&q, 6_000, Duration::from_secs(60)).await;
    assert_eq!((c.completed_total, c.failed_total), (6_000, 0), "{c:?}");
    let log = w.stderr();
    assert!(w.is_running(), "{log}");
    eprintln!(
        "{} warnings",
        log.lines().filter(|l| l.contains("WARN")).count()
    );
    assert!(
        !log.contains("lease lost") && !log.contains("not recorded"),
        "a false alarm:\n{}",
        log.lines()
            .filter(|l| l.contains("WARN"))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// How Redis becomes unreachable for the workers in [`live_workers_ride_out`].
enum Cut<'a> {
    /// Redis itself stops (SHUTDOWN, AOF kept) and starts again.
    Restart(&'a mut RedisServer),
    /// Redis stays up; a proxy between it and the workers moves no byte either way.
    Partition(&'a Proxy),
}

/// Guarantee 6 with guarantee 1: Redis unreachable for 4 leases while two live workers
/// (lease 1 s) run 8 jobs of 2.5 s. The leases age without renewal meanwhile, yet no
/// worker may take that for a crash: each renews when Redis is back, the outcomes finished
/// during the outage are recorded, and no job is stalled or run twice.
async fn live_workers_ride_out(env: &TestEnv, worker_url: &str, cut: Cut<'_>) {
    let q_name = "outage";
    let prefix = env.config.prefix().to_string();
    let q = env.queue(q_name).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        let added = q
            .add(
                "diag.sleep",
                &json!({"ms": 2_500, "n": i}),
                JobOptions::new(),
            )
            .await
            .unwrap();
        ids.push(added.id);
    }
    let args = ["--queues", q_name, "--lease", "1s", "--concurrency", "4"];
    let mut a = WorkerProcess::start(worker_url, &prefix, &args);
    let mut b = WorkerProcess::start(worker_url, &prefix, &args);
    wait_active(&q, 8, Duration::from_secs(10)).await;
    let env = match cut {
        Cut::Restart(server) => {
            server.stop();
            tokio::time::sleep(Duration::from_secs(4)).await;
            server.restart();
            TestEnv::on_prefix(&server.url(), &prefix).await
        }
        Cut::Partition(proxy) => {
            proxy.partition(true);
            tokio::time::sleep(Duration::from_secs(4)).await;
            proxy.partition(false);
            TestEnv::on_prefix(env.config.redis_url().unwrap(), &prefix).await
        }
    };
    let q = env.queue(q_name).await;
    let c = wait_finished(&q, 8, Duration::from_secs(30)).await;
    // a little longer: a late reclaim would show up as a second run
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c2 = q.counts().await.unwrap();
    assert_eq!(
        (
            c.completed_total,
            c.failed_total,
            c2.completed_total,
            c2.active,
            c2.waiting
        ),
        (8, 0, 8, 0, 0),
        "{c2:?}\nworker a:\n{}\nworker b:\n{}",
        a.stderr(),
        b.stderr()
    );
    for id in &ids {
        let info = q.job(id).await.unwrap();
        assert_eq!(
            (info.state, info.attempts_made),
            (JobState::Completed, 1),
            "{info:?}"
        );
        assert_eq!(
            stalls(&env, q_name, id).await,
            None,
            "job {id} was counted as stalled"
        );
    }
    for (name, w) in [("a", &mut a), ("b", &mut b)] {
        let log = w.stderr();
        assert!(w.is_running(), "worker {name} exited:\n{log}");
        for bad in ["reclaimed", "not recorded", "lease lost"] {
            assert!(!log.contains(bad), "worker {name} logged {bad:?}:\n{log}");
        }
    }
}

/// A restart of 4 leases. (Before the lease clock restarted after an outage, every job
/// here was reclaimed by the other worker, run again, and failed as "stalled more than 1
/// time(s)".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_6_redis_down_for_4_leases_with_live_workers_makes_no_stall_and_no_rerun() {
    let mut server = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let env = TestEnv::on(&server.url()).await;
    let url = server.url();
    live_workers_ride_out(&env, &url, Cut::Restart(&mut server)).await;
}

/// A network partition of 4 leases (TCP holds what is sent until it heals).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_6_network_cut_for_4_leases_with_live_workers_makes_no_stall_and_no_rerun() {
    let server = RedisServer::start(&[]);
    let proxy = Proxy::start(&server.addr()).await;
    let env = TestEnv::on(&server.url()).await;
    live_workers_ride_out(&env, &proxy.url(), Cut::Partition(&proxy)).await;
}

/// Entry ids are unique only within a lane: jobs added in one millisecond to two lanes get
/// the same one. A worker holding both renews both leases (it keys what it holds by lane
/// and entry), so neither is reclaimed from under it nor run twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_1_jobs_with_the_same_entry_id_in_two_lanes_both_keep_their_lease() {
    const Q: &str = "twins";
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    // one call, one millisecond: the same entry id in lanes 1 and 2
    let jobs: Vec<NewJob> = [1, 2]
        .into_iter()
        .map(|p| {
            NewJob::new(
                "diag.sleep",
                &json!({ "ms": 3_000 }),
                JobOptions::new().priority(p),
            )
            .unwrap()
        })
        .collect();
    let ids = add_all(&q, jobs).await;
    let w = WorkerProcess::start(
        env.config.redis_url().unwrap(),
        env.config.prefix(),
        &["--queues", Q, "--lease", "1s", "--concurrency", "2"],
    );
    let c = wait_finished(&q, 2, Duration::from_secs(20)).await;
    assert_eq!((c.completed_total, c.failed_total), (2, 0), "{c:?}");
    for id in &ids {
        assert_eq!(
            stalls(&env, Q, id).await,
            None,
            "job {id} was reclaimed:\n{}",
            w.stderr()
        );
        assert_eq!(q.job(id).await.unwrap().attempts_made, 1);
    }
    let log = w.stderr();
    assert!(
        !log.contains("reclaimed") && !log.contains("not recorded"),
        "{log}"
    );
    w.signal("TERM");
}
