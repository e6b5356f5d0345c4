//! Steering a queue: pause/resume, per-job retry, promote, remove, priority and data
//! changes, clean, drain, obliterate, and deduplication.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

/// A worker on `queue` whose handler `work` records the data of each job it runs, and
/// fails when the data says `{"fail": true}`.
fn recording_worker(env: &TestEnv, queue: &str) -> (Worker, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let worker = env
        .worker()
        .queues([queue])
        .concurrency(1)
        .handler("work", move |j: Job<Value>, _c: Ctx| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push(j.data.clone());
                if j.data.get("fail") == Some(&json!(true)) {
                    return Err(JobError::new("asked to fail"));
                }
                Ok::<_, JobError>(j.data)
            }
        })
        .build()
        .unwrap();
    (worker, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_queue_starts_nothing_for_1_5_s_and_resume_runs_everything() {
    let env = TestEnv::new().await;
    let q = env.queue("pause").await;
    q.pause().await.unwrap();
    for i in 0..5 {
        q.add("work", &json!({ "i": i }), JobOptions::new())
            .await
            .unwrap();
    }
    let (worker, seen) = recording_worker(&env, "pause");
    let guard = spawn_worker(worker);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        seen.lock().unwrap().is_empty(),
        "a job started while paused"
    );
    let c = q.counts().await.unwrap();
    assert_eq!((c.paused, c.paused_jobs, c.waiting), (true, 5, 0), "{c:?}");
    q.resume().await.unwrap();
    let c = wait_finished(&q, 5, Duration::from_secs(5)).await;
    assert_eq!(c.completed, 5);
    assert!(!c.paused);
    guard.stop().await.unwrap();
}

#[tokio::test]
async fn retry_moves_a_failed_job_back_with_attempts_cleared() {
    let env = TestEnv::new().await;
    let q = env.queue("retry").await;
    let added = q
        .add("work", &json!({"fail": true}), JobOptions::new())
        .await
        .unwrap();
    let (worker, _) = recording_worker(&env, "retry");
    let guard = spawn_worker(worker);
    wait_finished(&q, 1, Duration::from_secs(5)).await;
    let job = q.job(&added.id).await.unwrap();
    assert_eq!((job.state, job.attempts_made), (JobState::Failed, 1));

    // retrying something that is not failed names the job and its state
    let other = q
        .add(
            "nothing",
            &json!({}),
            JobOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let err = q.retry_job(&other.id).await.unwrap_err().to_string();
    assert!(err.contains(&other.id) && err.contains("delayed"), "{err}");

    // data fixed, then retried: it runs again and completes
    q.update_data(&added.id, &json!({"fixed": true}))
        .await
        .unwrap();
    q.retry_job(&added.id).await.unwrap();
    let c = wait_finished(&q, 2, Duration::from_secs(5)).await;
    assert_eq!(
        (c.completed_total, c.failed_total, c.failed),
        (1, 1, 0),
        "{c:?}"
    );
    let job = q.job(&added.id).await.unwrap();
    assert_eq!(job.state, JobState::Completed);
    assert_eq!(job.attempts_made, 1, "attempts start over on retry");
    assert_eq!(job.return_value, Some(json!({"fixed": true})));
    assert_eq!(job.failed_reason, None);
    guard.stop().await.unwrap();
}

#[tokio::test]
async fn promote_starts_a_delayed_job_now() {
    let env = TestEnv::new().await;
    let q = env.queue("promote").await;
    let later = q
        .add(
            "work",
            &json!({"x": 1}),
            JobOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let now = q
        .add("work", &json!({"x": 2}), JobOptions::new())
        .await
        .unwrap();
    let err = q.promote_job(&now.id).await.unwrap_err().to_string();
    assert!(err.contains("promote") && err.contains("waiting"), "{err}");
    let (worker, _) = recording_worker(&env, "promote");
    let guard = spawn_worker(worker);
    wait_finished(&q, 1, Duration::from_secs(5)).await;
    assert_eq!(q.job(&later.id).await.unwrap().state, JobState::Delayed);
    let t = Instant::now();
    q.promote_job(&later.id).await.unwrap();
    wait_finished(&q, 2, Duration::from_secs(5)).await;
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(q.job(&later.id).await.unwrap().state, JobState::Completed);
    assert_eq!(q.counts().await.unwrap().delayed, 0);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_deletes_waiting_delayed_and_finished_jobs_but_refuses_active_ones() {
    let env = TestEnv::new().await;
    let q = env.queue("remove").await;
    let waiting = q.add("work", &json!({}), JobOptions::new()).await.unwrap();
    let delayed = q
        .add(
            "work",
            &json!({}),
            JobOptions::new().delay(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    q.remove_job(&waiting.id).await.unwrap();
    q.remove_job(&delayed.id).await.unwrap();
    assert!(q.get_job(&waiting.id).await.unwrap().is_none());
    assert!(q.get_job(&delayed.id).await.unwrap().is_none());
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.delayed), (0, 0), "{c:?}");
    let err = q.remove_job("no-such-job").await.unwrap_err();
    assert!(matches!(err, Error::JobNotFound { .. }), "{err}");

    // an active job is refused; once finished it can go
    let long = q.add("slow", &json!({}), JobOptions::new()).await.unwrap();
    let worker = env
        .worker()
        .queues(["remove"])
        .handler("slow", |_j: Job<Value>, _c: Ctx| async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_active(&q, 1, Duration::from_secs(5)).await;
    let err = q.remove_job(&long.id).await.unwrap_err().to_string();
    assert!(err.contains("active"), "{err}");
    wait_finished(&q, 1, Duration::from_secs(5)).await;
    q.remove_job(&long.id).await.unwrap();
    let c = q.counts().await.unwrap();
    assert_eq!((c.completed, c.completed_total), (0, 1), "{c:?}");
    guard.stop().await.unwrap();
}

#[tokio::test]
async fn change_priority_moves_a_waiting_job_ahead() {
    let env = TestEnv::new().await;
    let q = env.queue("reprio").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            q.add("work", &json!({ "i": i }), JobOptions::new())
                .await
                .unwrap()
                .id,
        );
    }
    q.change_priority(&ids[3], 10).await.unwrap();
    let err = q
        .change_priority(&ids[0], 5000)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("5000"), "{err}");
    assert_eq!(q.job(&ids[3]).await.unwrap().priority, 10);
    assert_eq!(q.counts().await.unwrap().waiting, 4);
    let (worker, seen) = recording_worker(&env, "reprio");
    let guard = spawn_worker(worker);
    wait_finished(&q, 4, Duration::from_secs(5)).await;
    let order: Vec<Value> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|d| d["i"].clone())
        .collect();
    assert_eq!(order, vec![json!(3), json!(0), json!(1), json!(2)]);
    guard.stop().await.unwrap();
}

#[tokio::test]
async fn clean_removes_old_finished_jobs_up_to_a_limit() {
    let env = TestEnv::new().await;
    let q = env.queue("clean").await;
    for i in 0..8 {
        q.add("work", &json!({ "i": i }), JobOptions::new())
            .await
            .unwrap();
    }
    for _ in 0..3 {
        q.add("work", &json!({"fail": true}), JobOptions::new())
            .await
            .unwrap();
    }
    let (worker, _) = recording_worker(&env, "clean");
    let guard = spawn_worker(worker);
    wait_finished(&q, 11, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    // nothing is older than an hour
    assert_eq!(
        q.clean(JobState::Completed, Duration::from_secs(3600), None)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        q.clean(JobState::Completed, Duration::ZERO, Some(5))
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        q.clean(JobState::Failed, Duration::ZERO, None)
            .await
            .unwrap(),
        3
    );
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.completed, c.failed, c.completed_total, c.failed_total),
        (3, 0, 8, 3)
    );
    let err = q
        .clean(JobState::Waiting, Duration::ZERO, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("waiting"), "{err}");
}

#[tokio::test]
async fn clean_refuses_an_age_past_3650_days_and_deletes_nothing() {
    let env = TestEnv::new().await;
    let q = env.queue("clean-range").await;
    for _ in 0..3 {
        q.add("work", &json!({}), JobOptions::new()).await.unwrap();
    }
    let (worker, _) = recording_worker(&env, "clean-range");
    let guard = spawn_worker(worker);
    wait_finished(&q, 3, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    // u64::MAX - 999 ms used to wrap to -1000 ms: a cutoff in the future, "everything"
    for ms in [
        u64::MAX - 999,
        u64::MAX,
        1 << 63,
        duration::MAX_DURATION_MS + 1,
    ] {
        let err = q
            .clean(JobState::Completed, Duration::from_millis(ms), None)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, Error::Invalid { .. }) && text.contains(&format!("{ms}ms")),
            "{text}"
        );
    }
    let err = q
        .clean(JobState::Completed, Duration::MAX, Some(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("older_than"), "{err}");
    assert_eq!(
        q.counts().await.unwrap().completed,
        3,
        "a refused clean deleted jobs"
    );
    // the longest age allowed is fine (nothing is that old)
    assert_eq!(
        q.clean(JobState::Completed, duration::MAX_DURATION, None)
            .await
            .unwrap(),
        0
    );
    assert_eq!(q.counts().await.unwrap().completed, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_removes_waiting_and_delayed_jobs_and_leaves_running_ones() {
    let env = TestEnv::new().await;
    let q = env.queue("drain").await;
    let running = q.add("slow", &json!({}), JobOptions::new()).await.unwrap();
    let worker = env
        .worker()
        .queues(["drain"])
        .concurrency(1)
        .handler("slow", |_j: Job<Value>, _c: Ctx| async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_active(&q, 1, Duration::from_secs(5)).await;
    for i in 0..30 {
        q.add(
            "slow",
            &json!({ "i": i }),
            JobOptions::new().priority(i % 3),
        )
        .await
        .unwrap();
    }
    for _ in 0..20 {
        q.add(
            "slow",
            &json!({}),
            JobOptions::new().delay(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    }
    assert_eq!(q.drain().await.unwrap(), 50);
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.delayed, c.active), (0, 0, 1), "{c:?}");
    let c = wait_finished(&q, 1, Duration::from_secs(5)).await;
    assert_eq!(c.completed_total, 1);
    assert_eq!(q.job(&running.id).await.unwrap().state, JobState::Completed);
    guard.stop().await.unwrap();
}

/// Was: a drain that met a job key that is not a hash (a corrupt record) failed half-way
/// (WRONGTYPE from its flow-parent lookup), after deleting the lane entries or delayed
/// places of the batch: the other jobs were left stranded, counted waiting and never run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_goes_past_a_corrupt_job_record() {
    let env = TestEnv::new().await;
    let q = env.queue("drain-corrupt").await;
    let keys = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "drain-corrupt");
    let later = JobOptions::new().delay(Duration::from_secs(60));
    let mut corrupt = Vec::new();
    for i in 0..5 {
        let w = q
            .add("work", &json!({ "i": i }), JobOptions::new())
            .await
            .unwrap();
        let d = q
            .add("work", &json!({ "i": i }), later.clone())
            .await
            .unwrap();
        if i == 2 {
            corrupt.extend([w.id, d.id]);
        }
    }
    let mut raw = env.raw().await;
    for id in &corrupt {
        redis::pipe()
            .del(keys.job(id))
            .set(keys.job(id), "garbage")
            .query_async::<()>(&mut raw)
            .await
            .unwrap();
    }
    assert_eq!(q.drain().await.unwrap(), 10);
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.delayed), (0, 0), "{c:?}");
    for id in &corrupt {
        let left: bool = redis::cmd("EXISTS")
            .arg(keys.job(id))
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(!left, "the corrupt record of {id} was left");
    }
    // the queue still works
    let (worker, seen) = recording_worker(&env, "drain-corrupt");
    let guard = spawn_worker(worker);
    q.add("work", &json!({ "after": true }), JobOptions::new())
        .await
        .unwrap();
    wait_finished(&q, 1, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![json!({ "after": true })]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obliterate_refuses_active_jobs_unless_forced_and_removes_everything() {
    let env = TestEnv::new().await;
    let q = env.queue("gone").await;
    q.add("slow", &json!({}), JobOptions::new()).await.unwrap();
    for _ in 0..10 {
        q.add(
            "slow",
            &json!({}),
            JobOptions::new().delay(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    }
    let worker = env
        .worker()
        .queues(["gone"])
        .handler("slow", |_j: Job<Value>, _c: Ctx| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_active(&q, 1, Duration::from_secs(5)).await;
    let err = q.obliterate(false).await.unwrap_err().to_string();
    assert!(err.contains("active"), "{err}");
    assert_eq!(
        q.counts().await.unwrap().delayed,
        10,
        "a refused obliterate removed something"
    );
    wait_finished(&q, 1, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();

    assert!(q.obliterate(false).await.unwrap() > 10);
    let mut raw = env.raw().await;
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{{}:gone}}*", env.config.prefix()))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(left.is_empty(), "keys left: {left:?}");
    let queues = list_queues(&env.redis, env.config.prefix()).await.unwrap();
    assert!(!queues.contains(&"gone".to_string()), "{queues:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_obliterate_under_a_running_worker_leaves_no_key_behind() {
    let env = TestEnv::new().await;
    let q = env.queue("gone-busy").await;
    for _ in 0..4 {
        q.add("slow", &json!({}), JobOptions::new()).await.unwrap();
    }
    let ended = Arc::new(Mutex::new(0));
    let e = ended.clone();
    let worker = env
        .worker()
        .queues(["gone-busy"])
        .concurrency(4)
        .handler("slow", move |_j: Job<Value>, _c: Ctx| {
            let e = e.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                *e.lock().unwrap() += 1;
                Ok::<_, JobError>(())
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_active(&q, 4, Duration::from_secs(5)).await;
    q.obliterate(true).await.unwrap();
    // the handlers end after the queue is gone; their outcomes are not recorded
    eventually(Duration::from_secs(5), "the handlers to end", || {
        let e = ended.clone();
        async move { (*e.lock().unwrap() == 4).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    guard.stop().await.unwrap();
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{{}:gone-busy}}*", env.config.prefix()))
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    assert!(left.is_empty(), "keys left: {left:?}");
}

#[tokio::test]
async fn a_throttled_duplicate_is_dropped_and_reported_until_its_ttl_passes() {
    let env = TestEnv::new().await;
    let q = env.queue("dedup").await;
    let opts = || JobOptions::new().dedup("user-42-welcome", Duration::from_millis(400));
    let first = q.add("work", &json!({"n": 1}), opts()).await.unwrap();
    assert!(!first.duplicate);
    let second = q.add("work", &json!({"n": 2}), opts()).await.unwrap();
    assert!(second.duplicate, "{second:?}");
    assert_eq!(
        second.id, first.id,
        "the duplicate reports the job that holds the key"
    );
    // also inside one bulk
    let bulk = q
        .add_bulk(vec![
            NewJob::new("work", &json!({"n": 3}), opts()).unwrap(),
            NewJob::new("work", &json!({"n": 4}), JobOptions::new()).unwrap(),
        ])
        .await
        .unwrap();
    assert!(bulk[0].duplicate && !bulk[1].duplicate, "{bulk:?}");
    assert_eq!(q.counts().await.unwrap().waiting, 2);
    assert_eq!(q.job(&first.id).await.unwrap().data, json!({"n": 1}));

    tokio::time::sleep(Duration::from_millis(500)).await;
    let third = q.add("work", &json!({"n": 5}), opts()).await.unwrap();
    assert!(!third.duplicate, "the throttle window is over");
    assert_ne!(third.id, first.id);
    assert_eq!(q.counts().await.unwrap().waiting, 3);

    let err = q
        .add(
            "work",
            &json!({}),
            JobOptions::new().dedup("bad id", Duration::from_secs(1)),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad id"), "{err}");
}

#[tokio::test]
async fn retention_is_applied_while_no_job_finishes() {
    let env = TestEnv::new().await;
    let q = env.queue("janitor").await;
    for i in 0..5 {
        q.add(
            "work",
            &json!({ "i": i }),
            JobOptions::new().remove_on_complete(Retention::keep_for(Duration::from_millis(300))),
        )
        .await
        .unwrap();
    }
    let (worker, _) = recording_worker(&env, "janitor");
    let worker = worker;
    let guard = spawn_worker(worker);
    let c = wait_finished(&q, 5, Duration::from_secs(5)).await;
    assert_eq!(c.completed, 5);
    guard.stop().await.unwrap();
    // a new worker with a fast janitor, and no job finishing any more
    let w = env
        .worker()
        .queues(["janitor"])
        .retention_interval(Duration::from_millis(100))
        .handler("work", |_j: Job<Value>, _c: Ctx| async {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(w);
    eventually(
        Duration::from_secs(3),
        "expired completed jobs to go",
        || async { (q.counts().await.ok()?.completed == 0).then_some(()) },
    )
    .await;
    assert_eq!(q.counts().await.unwrap().completed_total, 5);
    guard.stop().await.unwrap();
}

#[tokio::test]
async fn looking_at_a_queue_does_not_make_it_exist_but_adding_to_it_does() {
    let env = TestEnv::new().await;
    let ghost = env.queue("ghost").await;
    assert!(ghost.get_job("nope").await.unwrap().is_none());
    assert_eq!(ghost.counts().await.unwrap().waiting, 0);
    let names = list_queues(&env.redis, env.config.prefix()).await.unwrap();
    assert!(names.is_empty(), "a read registered a queue: {names:?}");
    let real = env.queue("real").await;
    real.add("x", &json!({}), JobOptions::new()).await.unwrap();
    let names = list_queues(&env.redis, env.config.prefix()).await.unwrap();
    assert_eq!(names, vec!["real".to_string()]);
}

#[tokio::test]
async fn update_data_from_long_to_short_leaves_no_trace_of_the_old_data() {
    let env = TestEnv::new().await;
    let q = env.queue("update").await;
    let long = json!({"text": "ü".repeat(300)});
    let added = q.add("work", &long, JobOptions::new()).await.unwrap();
    assert_eq!(q.job(&added.id).await.unwrap().data, long);
    let longer = json!({"text": "é".repeat(500), "n": 1});
    q.update_data(&added.id, &longer).await.unwrap();
    assert_eq!(q.job(&added.id).await.unwrap().data, longer);
    let short = json!({"n": 2});
    q.update_data(&added.id, &short).await.unwrap();
    assert_eq!(q.job(&added.id).await.unwrap().data, short);
    let (worker, seen) = recording_worker(&env, "update");
    let guard = spawn_worker(worker);
    wait_finished(&q, 1, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    assert_eq!(seen.lock().unwrap().as_slice(), [short]);
}
