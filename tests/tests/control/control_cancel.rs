//! Cancelling jobs (`Queue::cancel`): at once when not running, through the worker
//! running it otherwise (its handler's token fires, the attempt ends cancelled and is not
//! retried), after a reclaim when that worker died; flows; retry of a cancelled job;
//! handler-controlled retries (`retry_after`, `snooze`, a handler's backoff function).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde_json::json;

/// A worker on `queue` whose `sleep` handler waits `{"ms": N}` unless its token fires
/// (then it returns an error, as a handler that notices cancellation does), and whose
/// `work` handler completes at once.
fn sleepy_worker(env: &TestEnv, queue: &str, runs: Arc<AtomicU32>) -> Worker {
    env.worker()
        .queues([queue])
        .concurrency(4)
        .handler("sleep", move |j: Job<serde_json::Value>, ctx: Ctx| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                let ms = j.data["ms"].as_u64().unwrap_or(20_000);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => Ok(json!("slept")),
                    _ = ctx.cancellation_token().cancelled() => Err(JobError::new("stopped")),
                }
            }
        })
        .handler("work", |_j: Job<serde_json::Value>, _c: Ctx| async move {
            Ok::<_, JobError>(json!("done"))
        })
        .build()
        .unwrap()
}

/// A `work` job of queue `cancel-flow` with `data`, for flows.
fn node(data: &str) -> FlowJob {
    FlowJob::new("cancel-flow", "work", &data).unwrap()
}

async fn state_of(q: &Queue, id: &str) -> JobState {
    q.job(id).await.unwrap().state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_waiting_delayed_paused_and_grouped_jobs_at_once() {
    let env = TestEnv::new().await;
    let q = env.queue("cancel").await;
    let waiting = q.add("work", &json!(1), JobOptions::new()).await.unwrap();
    let prio = q
        .add("work", &json!(2), JobOptions::new().priority(5))
        .await
        .unwrap();
    let delayed = q
        .add(
            "work",
            &json!(3),
            JobOptions::new().delay(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let grouped = q
        .add("work", &json!(4), JobOptions::new().group("tenant-a"))
        .await
        .unwrap();
    let kept = q.add("work", &json!(5), JobOptions::new()).await.unwrap();
    for id in [&waiting.id, &prio.id, &delayed.id, &grouped.id] {
        assert_eq!(
            q.cancel(id).await.unwrap(),
            Cancelled::Now { children: 0 },
            "{id}"
        );
        let job = q.job(id).await.unwrap();
        assert_eq!(job.state, JobState::Cancelled, "{job:?}");
        assert!(job.finished_at.is_some());
    }
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.waiting, c.delayed, c.cancelled, c.active),
        (1, 0, 4, 0),
        "{c:?}"
    );
    let groups = q.groups(10).await.unwrap();
    assert!(groups.groups.iter().all(|g| g.waiting == 0), "{groups:?}");
    let listed: Vec<String> = q
        .list_jobs(JobState::Cancelled, 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(listed.len(), 4, "{listed:?}");

    // a paused queue's waiting job too
    q.pause().await.unwrap();
    let paused = q.add("work", &json!(6), JobOptions::new()).await.unwrap();
    q.cancel(&paused.id).await.unwrap();
    q.resume().await.unwrap();

    // nothing cancelled ever runs; the one job left does
    let runs = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(sleepy_worker(&env, "cancel", runs));
    let done = wait_job_done(&q, &kept.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = q.counts().await.unwrap();
    assert_eq!((c.completed, c.cancelled, c.waiting), (1, 5, 0), "{c:?}");
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_refuses_finished_and_unknown_jobs_and_retry_brings_a_cancelled_job_back() {
    let env = TestEnv::new().await;
    let q = env.queue("cancel-refuse").await;
    let missing = q.cancel("no-such-job").await.unwrap_err();
    assert!(matches!(missing, Error::JobNotFound { .. }), "{missing:?}");
    assert_eq!(missing.kind(), ErrorKind::NotFound);

    let a = q.add("work", &json!("a"), JobOptions::new()).await.unwrap();
    q.cancel(&a.id).await.unwrap();
    // cancelled is finished: a second cancel is a conflict naming the state
    let again = q.cancel(&a.id).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict, "{again:?}");
    assert!(again.to_string().contains("cancelled"), "{again}");

    // retry brings it back, and it runs
    q.retry_job(&a.id).await.unwrap();
    assert_eq!(state_of(&q, &a.id).await, JobState::Waiting);
    let runs = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(sleepy_worker(&env, "cancel-refuse", runs));
    let done = wait_job_done(&q, &a.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed);
    // a completed job cannot be cancelled
    let err = q.cancel(&a.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err:?}");
    assert!(err.to_string().contains("completed"), "{err}");
    assert_eq!(q.counts().await.unwrap().cancelled, 0);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_job_fires_its_token_within_a_second_and_it_is_not_retried() {
    let env = TestEnv::new().await;
    let q = env.queue("cancel-running").await;
    let runs = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(sleepy_worker(&env, "cancel-running", runs.clone()));
    let long = start_long_job(
        &q,
        "sleep",
        JobOptions::new().attempts(3),
        Duration::from_secs(10),
    )
    .await;
    let asked = Instant::now();
    assert_eq!(q.cancel(&long).await.unwrap(), Cancelled::Requested);
    let job = wait_cancelled(&q, &long, asked).await;
    assert_eq!(job.attempts_made, 1, "{job:?}");
    // never retried, whatever attempts remain
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.active, c.delayed, c.waiting, c.cancelled, c.failed_total),
        (0, 0, 0, 1, 0),
        "{c:?}"
    );
    // no request left behind
    let mut raw = env.raw().await;
    let keys = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "cancel-running");
    let left: u64 = redis::cmd("ZCARD")
        .arg(keys.cancels())
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(left, 0);
    // the worker keeps running
    let next = q.add("work", &json!(1), JobOptions::new()).await.unwrap();
    let done = wait_job_done(&q, &next.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_request_outlives_a_dead_worker_the_job_ends_cancelled_at_reclaim() {
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("cancel-dead").await;
    // (given an id, the job keeps a record, a hash, where its lease renewals record the
    // attempt, awaited below; a plain job would be stored lean, its lane entry alone: see
    // the test below)
    let job = q
        .add(
            "diag.sleep",
            &json!({"ms": 30_000}),
            JobOptions::new().attempts(3).job_id("sleeper"),
        )
        .await
        .unwrap();
    let dead = WorkerProcess::start(
        &server.url(),
        env.config.prefix(),
        &["--queues", "cancel-dead", "--lease", "1s"],
    );
    wait_active(&q, 1, Duration::from_secs(20)).await;
    // once its lease was renewed (which records the attempt and its start)
    let key =
        queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "cancel-dead").job(&job.id);
    let raw = env.raw().await;
    eventually(Duration::from_secs(10), "a lease renewal", || {
        let (key, mut raw) = (key.clone(), raw.clone());
        async move {
            let run: Option<String> = redis::cmd("HGET")
                .arg(&key)
                .arg("run")
                .query_async(&mut raw)
                .await
                .unwrap();
            run
        }
    })
    .await;
    cancelled_at_reclaim(&server, &env, &q, &job.id, dead).await;
}

/// The same for a lean job (its lane entry alone, no hash until the cancel gives it one):
/// its cancel request outlives its dead worker too, and it ends cancelled at reclaim with
/// the attempt it ran counted, with its start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_request_for_a_lean_job_outlives_a_dead_worker_it_ends_cancelled_at_reclaim() {
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("cancel-dead").await;
    let job = q
        .add(
            "diag.sleep",
            &json!({"ms": 30_000}),
            JobOptions::new().attempts(3),
        )
        .await
        .unwrap();
    assert!(job.id.starts_with('~'), "a lean job: {job:?}");
    let dead = WorkerProcess::start(
        &server.url(),
        env.config.prefix(),
        &["--queues", "cancel-dead", "--lease", "1s"],
    );
    wait_active(&q, 1, Duration::from_secs(20)).await;
    // running (the only job of a worker with free slots: started at its claim), its lease
    // renewed a few times (every third of the lease)
    let running = q.job(&job.id).await.unwrap();
    assert_eq!(running.state, JobState::Active, "{running:?}");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let running = q.job(&job.id).await.unwrap();
    assert_eq!(
        (running.state, running.attempts_made),
        (JobState::Active, 1),
        "{running:?}"
    );
    cancelled_at_reclaim(&server, &env, &q, &job.id, dead).await;
}

/// A running lean job (its lane entry alone, no hash) is read with the start of its
/// attempt, which its lease renewals leave as it is (they record it, for a job with a
/// record, in its `run`): what a cancel at reclaim (above) and every reader rely on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_lean_job_keeps_its_start_across_lease_renewals() {
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("lean-start").await;
    let job = q
        .add("diag.sleep", &json!({"ms": 30_000}), JobOptions::new())
        .await
        .unwrap();
    assert!(job.id.starts_with('~'), "a lean job: {job:?}");
    let worker = WorkerProcess::start(
        &server.url(),
        env.config.prefix(),
        &["--queues", "lean-start", "--lease", "1s"],
    );
    wait_active(&q, 1, Duration::from_secs(20)).await;
    let first = q.job(&job.id).await.unwrap();
    assert_eq!(first.state, JobState::Active, "{first:?}");
    // three renewals later (every third of the lease)
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let later = q.job(&job.id).await.unwrap();
    assert_eq!(later.state, JobState::Active, "{later:?}");
    let (s0, s1) = (first.started_at.unwrap(), later.started_at.unwrap());
    assert!(
        s1.abs_diff(s0) < 100,
        "started at {s0}, then read as started at {s1}"
    );
    worker.signal("KILL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_flow_parent_cancels_its_children_and_a_cancelled_child_counts_as_finished() {
    let env = TestEnv::new().await;
    let q = env.queue("cancel-flow").await;
    let flows = FlowProducer::new(&env.redis, env.config.prefix());
    // a parent with three waiting children
    let tree = flows
        .add(node("parent").children(vec![node("c1"), node("c2"), node("c3")]))
        .await
        .unwrap();
    assert_eq!(state_of(&q, &tree.id).await, JobState::WaitingChildren);
    assert_eq!(
        q.cancel(&tree.id).await.unwrap(),
        Cancelled::Now { children: 3 }
    );
    for kid in &tree.children {
        assert_eq!(state_of(&q, &kid.id).await, JobState::Cancelled, "{kid:?}");
    }
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.waiting, c.waiting_children, c.cancelled),
        (0, 0, 4),
        "{c:?}"
    );
    // the cancelled parent waits for nothing: its children to finish count down to 0
    let parent = q.job(&tree.id).await.unwrap();
    assert_eq!(parent.children_pending, Some(0), "{parent:?}");

    // a cancelled child counts as finished: its parent runs once the others complete
    let tree = flows
        .add(node("p2").children(vec![node("d1"), node("d2")]))
        .await
        .unwrap();
    q.cancel(&tree.children[0].id).await.unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(sleepy_worker(&env, "cancel-flow", runs));
    let parent = wait_job_done(&q, &tree.id, Duration::from_secs(10)).await;
    assert_eq!(parent.state, JobState::Completed, "{parent:?}");
    let kids = q.children(&tree.id).await.unwrap();
    let states: Vec<ChildState> = kids.iter().map(|k| k.state).collect();
    assert_eq!(states, [ChildState::Cancelled, ChildState::Completed]);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_cancelled_with_children_in_another_queue_counts_them_and_comes_back_by_retry() {
    let env = TestEnv::new().await;
    // a queue holding flow parents only (so no lane of its own yet), and its children's
    // queue, where no worker runs
    let parents = env.queue("cancel-parents-only").await;
    let flows = FlowProducer::new(&env.redis, env.config.prefix());
    let kid = |delay_ms: u64| {
        FlowJob::new("cancel-kids", "work", &"kid")
            .unwrap()
            .opts(JobOptions::new().delay(Duration::from_millis(delay_ms)))
    };
    let tree = flows
        .add(
            FlowJob::new("cancel-parents-only", "work", &"parent")
                .unwrap()
                .opts(JobOptions::new().priority(7))
                .children(vec![kid(0), kid(3_600_000)]),
        )
        .await
        .unwrap();
    assert_eq!(
        parents.cancel(&tree.id).await.unwrap(),
        Cancelled::Now { children: 2 }
    );
    let parent = parents.job(&tree.id).await.unwrap();
    assert_eq!(parent.children_pending, Some(0), "{parent:?}");
    let kids = parents.children(&tree.id).await.unwrap();
    assert!(
        kids.iter().all(|k| k.state == ChildState::Cancelled),
        "{kids:?}"
    );
    // brought back by id, in a lane of its priority made for it, and run
    parents.retry_job(&tree.id).await.unwrap();
    assert_eq!(state_of(&parents, &tree.id).await, JobState::Waiting);
    let runs = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(sleepy_worker(&env, "cancel-parents-only", runs));
    let done = wait_job_done(&parents, &tree.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed, "{done:?}");
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_steer_their_retries_with_retry_after_snooze_and_a_backoff_function() {
    let env = TestEnv::new().await;
    let q = env.queue("steer-retry").await;
    let snoozed = Arc::new(AtomicU32::new(0));
    let s2 = snoozed.clone();
    let worker = env
        .worker()
        .queues(["steer-retry"])
        .concurrency(4)
        // fails once with a Retry-After of 1.2 s, then completes
        .handler("api", |j: Job<u32>, _c: Ctx| async move {
            if j.attempt == 1 {
                return Err(JobError::new("429").retry_after(Duration::from_millis(1_200)));
            }
            Ok(j.attempt)
        })
        // snoozes twice (no attempt used), then completes on its first counted attempt
        .handler("wait", move |j: Job<u32>, ctx: Ctx| {
            let s = s2.clone();
            async move {
                if s.fetch_add(1, Ordering::SeqCst) < 2 {
                    return Err(ctx.snooze(Duration::from_millis(300)));
                }
                // a snooze used no attempt
                Ok::<_, JobError>(j.attempt)
            }
        })
        // always fails; its backoff function says 700 ms
        .handler("flaky", |_j: Job<u32>, _c: Ctx| async move {
            Err::<u32, _>(JobError::new("flaky"))
        })
        .backoff("flaky", |attempt, err| {
            let ms = if err.message() == "flaky" {
                700
            } else {
                3_600_000
            };
            Duration::from_millis(ms * u64::from(attempt))
        })
        // asks for an absurd delay: fails for good, naming it
        .handler("absurd", |_j: Job<u32>, _c: Ctx| async move {
            Err::<u32, _>(JobError::new("later").retry_after(Duration::from_secs(400_000_000)))
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let t0 = Instant::now();
    let api = q
        .add("api", &1, JobOptions::new().attempts(2))
        .await
        .unwrap();
    let wait = q.add("wait", &1, JobOptions::new()).await.unwrap();
    let flaky = q
        .add(
            "flaky",
            &1,
            JobOptions::new()
                .attempts(2)
                .backoff(Backoff::fixed(Duration::from_secs(3600))),
        )
        .await
        .unwrap();
    let absurd = q
        .add("absurd", &1, JobOptions::new().attempts(5))
        .await
        .unwrap();

    let done = wait_job_done(&q, &api.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.attempts_made, 2);
    assert!(
        t0.elapsed() >= Duration::from_millis(1_200),
        "{:?}",
        t0.elapsed()
    );

    let done = wait_job_done(&q, &wait.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed);
    // two snoozes, one counted attempt, which saw itself as the first
    assert_eq!(snoozed.load(Ordering::SeqCst), 3);
    assert_eq!(done.attempts_made, 1, "{done:?}");
    assert_eq!(done.return_value, Some(json!(1)), "{done:?}");

    // the handler's backoff (700 ms) wins over the job's (an hour)
    let done = wait_job_done(&q, &flaky.id, Duration::from_secs(10)).await;
    assert_eq!((done.state, done.attempts_made), (JobState::Failed, 2));

    let done = wait_job_done(&q, &absurd.id, Duration::from_secs(10)).await;
    assert_eq!((done.state, done.attempts_made), (JobState::Failed, 1));
    let reason = done.failed_reason.unwrap_or_default();
    assert!(reason.contains("over the limit of 3650d"), "{reason}");
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_cancel_records_never_stop_a_cancel_or_the_queue() {
    let env = TestEnv::new().await;
    let q = env.queue("cancel-corrupt").await;
    let keys = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "cancel-corrupt");
    let mut raw = env.raw().await;
    // the requests and the cancelled set of the wrong type
    for key in [keys.cancels(), keys.cancelled()] {
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg("garbage")
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let runs = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(sleepy_worker(&env, "cancel-corrupt", runs));
    let long = start_long_job(&q, "sleep", JobOptions::new(), Duration::from_secs(10)).await;
    // (the counts read the corrupt set as empty)
    assert_eq!(q.counts().await.unwrap().cancelled, 0);
    assert_eq!(q.cancel(&long).await.unwrap(), Cancelled::Requested);
    let job = wait_job_done(&q, &long, Duration::from_secs(5)).await;
    assert_eq!(job.state, JobState::Cancelled);
    let waiting = q
        .add(
            "work",
            &json!(1),
            JobOptions::new().delay(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(keys.cancelled())
        .arg("garbage")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        q.cancel(&waiting.id).await.unwrap(),
        Cancelled::Now { children: 0 }
    );
    assert_eq!(state_of(&q, &waiting.id).await, JobState::Cancelled);
    // removing a job, and the sweep, still work beside a corrupt cancelled set
    let doomed = q
        .add(
            "work",
            &json!(3),
            JobOptions::new().delay(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    q.remove_job(&doomed.id).await.unwrap();
    // the queue goes on
    let next = q.add("work", &json!(2), JobOptions::new()).await.unwrap();
    let done = wait_job_done(&q, &next.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_request_left_by_an_attempt_that_completed_never_cancels_a_later_job_with_its_id()
{
    let env = TestEnv::new().await;
    let q = env.queue("cancel-late").await;
    let worker = env
        .worker()
        .queues(["cancel-late"])
        // the first run asks to cancel itself and completes before the watch looks; later
        // runs take a while
        .handler("self", |j: Job<u32>, ctx: Ctx| async move {
            if j.data == 1 {
                let asked = ctx
                    .queue()
                    .cancel(&j.id)
                    .await
                    .map_err(|e| JobError::new(e.to_string()))?;
                assert_eq!(asked, Cancelled::Requested);
                return Ok(1);
            }
            tokio::time::sleep(Duration::from_millis(800)).await;
            Ok::<_, JobError>(j.data)
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let opts = || {
        JobOptions::new()
            .job_id("nightly-user-42")
            .remove_on_complete(Retention::REMOVE)
    };
    q.add("self", &1, opts()).await.unwrap();
    eventually(
        Duration::from_secs(10),
        "the first job to complete",
        || async { (q.counts().await.ok()?.completed_total == 1).then_some(()) },
    )
    .await;
    // the same id again: nobody cancels it
    q.add(
        "self",
        &2,
        opts().remove_on_complete(Retention::keep_last(10)),
    )
    .await
    .unwrap();
    let done = wait_job_done(&q, "nightly-user-42", Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed, "{done:?}");
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_thousand_running_jobs_cancelled_at_once_all_end_cancelled() {
    let env = TestEnv::new().await;
    let q = env.queue("cancel-many").await;
    const N: usize = 1_100;
    let worker = env
        .worker()
        .queues(["cancel-many"])
        .concurrency(N)
        .handler("sleep", |_j: Job<u32>, ctx: Ctx| async move {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(8)) => Ok(0),
                _ = ctx.cancellation_token().cancelled() => Err(JobError::new("stopped")),
            }
        })
        .build()
        .unwrap();
    let jobs = (0..N)
        .map(|i| NewJob::new("sleep", &i, JobOptions::new()).unwrap())
        .collect();
    let ids = add_all(&q, jobs).await;
    let guard = spawn_worker(worker);
    wait_active(&q, N as u64, Duration::from_secs(20)).await;
    for id in &ids {
        assert_eq!(q.cancel(id).await.unwrap(), Cancelled::Requested);
    }
    let c = eventually(
        Duration::from_secs(6),
        "every job to end cancelled",
        || async {
            let c = q.counts().await.ok()?;
            (c.cancelled == N as u64).then_some(c)
        },
    )
    .await;
    assert_eq!((c.active, c.completed), (0, 0), "{c:?}");
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_flow_bigger_than_the_cancelled_retention_cancels_all_of_it() {
    let env = TestEnv::new().await;
    let q = env.queue("cancel-flow").await;
    let flows = FlowProducer::new(&env.redis, env.config.prefix());
    // 10 middles of 1,200 leaves: 12,011 jobs, over the 10,000 cancelled jobs kept
    let middles = (0..10)
        .map(|m| node(&format!("m{m}")).children((0..1_200).map(|l| node(&format!("l{m}.{l}")))));
    let tree = flows.add(node("root").children(middles)).await.unwrap();
    match q.cancel(&tree.id).await.unwrap() {
        Cancelled::Now { children } => assert_eq!(children, 12_010),
        other => panic!("{other:?}"),
    }
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.waiting, c.waiting_children, c.active),
        (0, 0, 0),
        "{c:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_cancelled_parent_again_finishes_a_walk_that_was_cut_short() {
    let env = TestEnv::new().await;
    let q = env.queue("cancel-resume").await;
    let flows = FlowProducer::new(&env.redis, env.config.prefix());
    let tree = flows
        .add(
            FlowJob::new("cancel-resume", "work", &"p")
                .unwrap()
                .children((0..3).map(|i| FlowJob::new("cancel-resume", "work", &i).unwrap())),
        )
        .await
        .unwrap();
    // the parent cancelled, its children not reached (a walk cut short, as by a client
    // that gave up): written as cancel.lua leaves it
    let keys = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "cancel-resume");
    let mut raw = env.raw().await;
    let _: () = redis::pipe()
        .hset(keys.job(&tree.id), "state", "cancelled")
        .zrem(keys.waiting_children(), &tree.id)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        q.cancel(&tree.id).await.unwrap(),
        Cancelled::Now { children: 3 }
    );
    for kid in &tree.children {
        assert_eq!(state_of(&q, &kid.id).await, JobState::Cancelled);
    }
    // nothing left to walk: a plain refusal again
    let again = q.cancel(&tree.id).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict, "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_key_is_not_a_hash_is_refused_by_name_and_can_be_removed() {
    let env = TestEnv::new().await;
    let q = env.queue("cancel-corrupt-key").await;
    let mut raw = env.raw().await;
    let keys = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), q.name());
    // a cancelled and a failed job, then their records overwritten with a string
    let a = q
        .add("work", &1, JobOptions::new().delay(Duration::from_secs(60)))
        .await
        .unwrap();
    q.cancel(&a.id).await.unwrap();
    let b = q
        .add("work", &2, JobOptions::new().attempts(1))
        .await
        .unwrap();
    let guard = spawn_worker(
        env.worker()
            .queues([q.name()])
            .handler("work", |_j: Job<serde_json::Value>, _c: Ctx| async move {
                Err::<(), _>(JobError::new("no"))
            })
            .build()
            .unwrap(),
    );
    wait_job_done(&q, &b.id, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    for (id, state) in [(&a.id, JobState::Cancelled), (&b.id, JobState::Failed)] {
        let _: () = redis::cmd("SET")
            .arg(keys.job(id))
            .arg("garbage")
            .query_async(&mut raw)
            .await
            .unwrap();
        let job = q.job(id).await.unwrap();
        assert_eq!(job.state, state, "{job:?}");
        assert!(job.corrupt.is_some(), "{job:?}");
        for e in [
            q.cancel(id).await.unwrap_err(),
            q.retry_job(id).await.unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
            let text = e.to_string();
            assert!(
                text.contains("corrupt") && text.contains("remove it"),
                "{text}"
            );
            assert!(!text.contains("WRONGTYPE"), "{text}");
        }
        q.remove_job(id).await.unwrap();
        assert!(q.get_job(id).await.unwrap().is_none());
    }
    let c = q.counts().await.unwrap();
    assert_eq!((c.cancelled, c.failed), (0, 0), "{c:?}");
}

/// Job `id`, running under worker `dead` of queue `cancel-dead` (lease 1 s): the worker is
/// killed, the job's cancel is requested, and another worker reclaims it once its lease ran
/// out: it ends cancelled, not run again, the attempt it ran counted with its start.
async fn cancelled_at_reclaim(
    server: &RedisServer,
    env: &TestEnv,
    q: &Queue,
    id: &str,
    dead: WorkerProcess,
) {
    dead.signal("KILL");
    assert_eq!(q.cancel(id).await.unwrap(), Cancelled::Requested);
    // another worker reclaims it once the lease ran out: cancelled, not run again
    let _next = WorkerProcess::start(
        &server.url(),
        env.config.prefix(),
        &["--queues", "cancel-dead", "--lease", "1s"],
    );
    let info = eventually(
        Duration::from_secs(20),
        "the job to end cancelled",
        || async {
            let j = q.job(id).await.ok()?;
            (j.state == JobState::Cancelled).then_some(j)
        },
    )
    .await;
    // (a reclaimed attempt records no outcome of its own)
    assert_eq!(info.failed_reason.as_deref(), Some("cancelled"), "{info:?}");
    // the attempt it ran counts, with its start, as when its worker cancels it
    assert_eq!(info.attempts_made, 1, "{info:?}");
    assert!(info.started_at.is_some(), "{info:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c = q.counts().await.unwrap();
    assert_eq!((c.active, c.waiting, c.cancelled), (0, 0, 1), "{c:?}");
}
