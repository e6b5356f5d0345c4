//! Lean jobs: a ready job added with none of the options that need its record is stored as
//! its lane entry alone, its id made of its lane and entry. It runs, completes (kept or
//! removed), fails and retries, and is reclaimed from a dead worker as any other; a corrupt
//! lean entry fails alone; ids of that shape are jobq's own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobq_tests::*;
use queue_core::internal::keys::QueueKeys;
use queue_core::*;
use serde_json::{json, Value};

/// The fields of lane 0's entries, in order.
async fn lane_entries(env: &TestEnv, keys: &QueueKeys) -> Vec<(String, Vec<String>)> {
    let mut raw = env.raw().await;
    let v: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(keys.lane(0))
        .arg("-")
        .arg("+")
        .query_async(&mut raw)
        .await
        .unwrap();
    v
}

/// A worker running `rec` (records each run's data by id) and `flaky` (fails its first
/// attempt).
fn recording_worker(
    env: &TestEnv,
    queue: &str,
    seen: Arc<Mutex<HashMap<String, Vec<Value>>>>,
) -> Worker {
    env.worker()
        .queues([queue])
        .concurrency(4)
        .lease(Duration::from_secs(1))
        .handler("rec", move |job: Job<Value>, _c: Ctx| {
            seen.lock()
                .unwrap()
                .entry(job.id.clone())
                .or_default()
                .push(job.data.clone());
            async move { Ok::<_, JobError>(json!({"ok": job.id})) }
        })
        .handler("flaky", |job: Job<Value>, _c: Ctx| async move {
            if job.attempt == 1 {
                return Err(JobError::new("first attempt fails"));
            }
            Ok(json!("second"))
        })
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_job_is_its_lane_entry_alone_and_is_kept_whole_once_completed() {
    let env = TestEnv::new().await;
    let q = env.queue("lean").await;
    let keys = QueueKeys::new(env.config.prefix(), "lean");
    let data = json!({"n": 1, "text": "ünïcödé ".repeat(20)});
    let added = q.add("rec", &data, JobOptions::new()).await.unwrap();
    assert!(added.id.starts_with("~0."), "{}", added.id);
    // no hash: the entry holds the name and the data
    assert!(!key_exists(&env, &keys.job(&added.id)).await);
    let entries = lane_entries(&env, &keys).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(format!("~0.{}", entries[0].0), added.id);
    assert_eq!(entries[0].1[0..3], ["n", "rec", "d"]);
    assert_eq!(q.counts().await.unwrap().waiting, 1);

    let seen: Arc<Mutex<HashMap<String, Vec<Value>>>> = Arc::default();
    let guard = spawn_worker(recording_worker(&env, "lean", seen.clone()));
    let done = wait_job_done(&q, &added.id, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    assert_eq!(seen.lock().unwrap()[&added.id], vec![data.clone()]);
    // kept (the default retention): its record, made from the entry, holds all of it
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.name, "rec");
    assert_eq!(done.data, data);
    assert_eq!(done.attempts_made, 1);
    assert_eq!(done.return_value, Some(json!({"ok": added.id})));
    assert!(done.created_at > 0 && done.finished_at.is_some());
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.active, c.completed), (0, 0, 1));
}

/// A kept lean job's record, written by its completion from what its worker read of its
/// entry (complete.lua takes the fields it knows unnamed), holds each field as add would
/// store it: its entry's id, its name, its data and options in pieces, its priority and its
/// trace context. What its id says is left out (its add time, its one attempt), and read
/// back from the id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_lean_job_record_holds_its_entry_field_for_field() {
    let env = TestEnv::new().await;
    let q = env.queue("leanrec").await;
    let keys = QueueKeys::new(env.config.prefix(), "leanrec");
    // three pieces of data; options long enough for two
    let data = json!({"text": "ünïcödé ".repeat(12)});
    let opts = JobOptions::new()
        .priority(7)
        .attempts(2)
        .backoff(Backoff::exponential(Duration::from_millis(123_456_789)))
        .timeout(Duration::from_secs(3_600))
        .traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    let added = q.add("rec", &data, opts).await.unwrap();
    let sid = added.id.strip_prefix("~7.").expect("a lean id").to_string();
    let seen: Arc<Mutex<HashMap<String, Vec<Value>>>> = Arc::default();
    let guard = spawn_worker(recording_worker(&env, "leanrec", seen.clone()));
    let done = wait_job_done(&q, &added.id, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    assert_eq!(done.state, JobState::Completed);
    let mut raw = env.raw().await;
    let h: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(keys.job(&added.id))
        .query_async(&mut raw)
        .await
        .unwrap();
    let mut names: Vec<&str> = h.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "data", "data:2", "data:3", "data:n", "finished", "name", "opts", "opts:2", "opts:n",
            "prio", "result", "sid", "started", "state", "tp"
        ],
        "{h:?}"
    );
    assert_eq!(h["sid"], sid);
    assert_eq!((h["name"].as_str(), h["prio"].as_str()), ("rec", "7"));
    assert_eq!((h["data:n"].as_str(), h["opts:n"].as_str()), ("3", "2"));
    assert_eq!(h["state"], "completed");
    assert_eq!(done.data, data);
    // its add time is its entry's, its attempt the one it had
    assert_eq!(done.created_at.to_string(), sid.split('-').next().unwrap());
    assert_eq!(done.attempts_made, 1);
    assert_eq!((done.priority, done.opts.attempts), (7, Some(2)));
    assert_eq!(done.return_value, Some(json!({"ok": added.id})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lean_job_removed_on_completion_leaves_nothing_behind() {
    let env = TestEnv::new().await;
    let q = env.queue("leanrm").await;
    let keys = QueueKeys::new(env.config.prefix(), "leanrm");
    let opts = JobOptions::new().remove_on_complete(Retention::REMOVE);
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            q.add("rec", &json!({ "i": i }), opts.clone())
                .await
                .unwrap()
                .id,
        );
    }
    let seen: Arc<Mutex<HashMap<String, Vec<Value>>>> = Arc::default();
    let guard = spawn_worker(recording_worker(&env, "leanrm", seen.clone()));
    wait_finished(&q, 20, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            seen.lock().unwrap()[id],
            vec![json!({ "i": i })],
            "job {id}"
        );
        assert!(
            !key_exists(&env, &keys.job(id)).await,
            "job {id} left a hash"
        );
        assert!(
            q.get_job(id).await.unwrap().is_none(),
            "job {id} still reads"
        );
    }
    let stats = stats_of(std::slice::from_ref(&q)).await.unwrap();
    assert_eq!(stats[0].completed_total, 20);
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.active, c.completed), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_lean_job_gets_its_record_and_its_retry_runs() {
    let env = TestEnv::new().await;
    let q = env.queue("leanfail").await;
    let added = q
        .add("flaky", &json!({"x": 1}), JobOptions::new().attempts(2))
        .await
        .unwrap();
    assert!(added.id.starts_with('~'));
    let seen: Arc<Mutex<HashMap<String, Vec<Value>>>> = Arc::default();
    let guard = spawn_worker(recording_worker(&env, "leanfail", seen));
    let done = wait_job_done(&q, &added.id, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.attempts_made, 2);
    assert_eq!(done.data, json!({"x": 1}));
    assert_eq!(done.opts.attempts, Some(2));
    assert_eq!(done.return_value, Some(json!("second")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lean_job_held_by_a_dead_worker_is_reclaimed_and_run_again() {
    let env = TestEnv::new().await;
    let q = env.queue("leandead").await;
    let keys = QueueKeys::new(env.config.prefix(), "leandead");
    let added = q
        .add("rec", &json!({"y": 2}), JobOptions::new())
        .await
        .unwrap();
    // a worker claims it and dies: its entry stays pending to a consumer nobody renews
    claim_by_hand(&env, &keys, 0, "dead-worker", 1).await;
    assert_eq!(q.job(&added.id).await.unwrap().state, JobState::Active);
    let seen: Arc<Mutex<HashMap<String, Vec<Value>>>> = Arc::default();
    let guard = spawn_worker(recording_worker(&env, "leandead", seen.clone()));
    let done = wait_job_done(&q, &added.id, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.data, json!({"y": 2}));
    assert_eq!(seen.lock().unwrap()[&added.id], vec![json!({"y": 2})]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_lean_entry_fails_alone_naming_the_field() {
    let env = TestEnv::new().await;
    let q = env.queue("leanbad").await;
    let keys = QueueKeys::new(env.config.prefix(), "leanbad");
    let good = q
        .add("rec", &json!({"ok": true}), JobOptions::new())
        .await
        .unwrap();
    // an entry of a lean job with a 300-byte name, written by hand
    let name = "x".repeat(300);
    let bad = add_lean_by_hand(&env, &keys, 0, &[("n", name.as_bytes()), ("d", b"{}")]).await;
    let after = q
        .add("rec", &json!({"ok": 2}), JobOptions::new())
        .await
        .unwrap();
    let seen: Arc<Mutex<HashMap<String, Vec<Value>>>> = Arc::default();
    let guard = spawn_worker(recording_worker(&env, "leanbad", seen.clone()));
    let failed = wait_job_done(&q, &bad, Duration::from_secs(5)).await;
    wait_job_done(&q, &good.id, Duration::from_secs(5)).await;
    wait_job_done(&q, &after.id, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    assert_eq!(failed.state, JobState::Failed);
    let reason = failed.failed_reason.unwrap_or_default();
    assert!(reason.contains(&bad) && reason.contains("name"), "{reason}");
    assert_eq!(seen.lock().unwrap().len(), 2, "the others ran");
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.active, c.completed, c.failed), (0, 0, 2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_shaped_as_lean_ids_are_refused_and_other_options_keep_a_record() {
    let env = TestEnv::new().await;
    let q = env.queue("leanids").await;
    let keys = QueueKeys::new(env.config.prefix(), "leanids");
    let err = q
        .add("rec", &json!({}), JobOptions::new().job_id("~0.1-0"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("~0.1-0"), "{err}");
    // a given id, a delay or a group: a record from the start
    for opts in [
        JobOptions::new().job_id("given"),
        JobOptions::new().delay(Duration::from_secs(60)),
        JobOptions::new().group("g1"),
    ] {
        let added = q.add("rec", &json!({}), opts).await.unwrap();
        assert!(!added.id.starts_with('~'), "{}", added.id);
        assert!(key_exists(&env, &keys.job(&added.id)).await);
    }
    // data past 4 KiB too
    let big = q
        .add("rec", &json!({"b": "x".repeat(5000)}), JobOptions::new())
        .await
        .unwrap();
    assert!(!big.id.starts_with('~'), "{}", big.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_logs_give_a_running_lean_job_its_record_which_its_end_keeps_or_removes() {
    let env = TestEnv::new().await;
    let q = env.queue("leanprog").await;
    let keys = QueueKeys::new(env.config.prefix(), "leanprog");
    let kept = q
        .add("talk", &json!({"k": 1}), JobOptions::new())
        .await
        .unwrap();
    let removed = q
        .add(
            "talk",
            &json!({"k": 2}),
            JobOptions::new().remove_on_complete(Retention::REMOVE),
        )
        .await
        .unwrap();
    let worker = env
        .worker()
        .queues(["leanprog"])
        .handler("talk", |_job: Job<Value>, ctx: Ctx| async move {
            ctx.progress(json!(50)).await?;
            ctx.log("half way").await?;
            Ok::<_, JobError>(json!("said"))
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let done = wait_job_done(&q, &kept.id, Duration::from_secs(5)).await;
    wait_finished(&q, 2, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.data, json!({"k": 1}));
    assert_eq!(done.progress, Some(json!(50)));
    assert_eq!(done.logs, vec!["half way".to_string()]);
    assert_eq!(done.return_value, Some(json!("said")));
    // the removed one left nothing: its record made for its progress went with it
    assert!(!key_exists(&env, &keys.job(&removed.id)).await);
    assert!(q.get_job(&removed.id).await.unwrap().is_none());
    // and no lean job is left in the set of lean records
    let mut raw = env.raw().await;
    let left: i64 = redis::cmd("SCARD")
        .arg(keys.lean_records())
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_add_mixing_lean_jobs_with_others_stores_and_runs_each_once() {
    let env = TestEnv::new().await;
    let q = env.queue("leanmix").await;
    let job = |i: u32, opts: JobOptions| NewJob::new("rec", &json!({ "i": i }), opts).unwrap();
    let jobs = vec![
        job(0, JobOptions::new()),
        job(1, JobOptions::new().job_id("given-1")),
        job(2, JobOptions::new().priority(7)),
        job(3, JobOptions::new().delay(Duration::from_millis(50))),
        job(4, JobOptions::new().group("g")),
        job(5, JobOptions::new().priority(-3).attempts(2)),
        job(6, JobOptions::new()),
    ];
    let added = q.add_bulk(jobs).await.unwrap();
    let ids: Vec<&str> = added.iter().map(|a| a.id.as_str()).collect();
    assert!(
        ids[0].starts_with("~0.") && ids[6].starts_with("~0."),
        "{ids:?}"
    );
    assert!(
        ids[2].starts_with("~7.") && ids[5].starts_with("~-3."),
        "{ids:?}"
    );
    assert_eq!(ids[1], "given-1");
    assert!(
        !ids[3].starts_with('~') && !ids[4].starts_with('~'),
        "{ids:?}"
    );
    assert_eq!(q.counts().await.unwrap().waiting, 6);
    let seen: Arc<Mutex<HashMap<String, Vec<Value>>>> = Arc::default();
    let guard = spawn_worker(recording_worker(&env, "leanmix", seen.clone()));
    wait_finished(&q, 7, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            seen.lock().unwrap()[*id],
            vec![json!({ "i": i })],
            "job {id}"
        );
        assert_eq!(
            q.job(id).await.unwrap().state,
            JobState::Completed,
            "job {id}"
        );
    }
}

/// Every `complete` call in the slowlog (threshold 0) of `conn`: its job count and its
/// retention count (`complete.lua` ARGV 4 and 5, after the script's 6 keys: one lane).
async fn complete_calls(conn: &mut queue_core::Conn) -> Vec<(usize, i64)> {
    let log: Vec<Vec<redis::Value>> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query_async(conn)
        .await
        .unwrap();
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    log.iter()
        .filter_map(|entry| match entry.get(3) {
            Some(redis::Value::Array(args)) => Some(args.iter().map(text).collect::<Vec<_>>()),
            _ => None,
        })
        .filter(|args| {
            args.first()
                .is_some_and(|c| c.eq_ignore_ascii_case("EVALSHA"))
                && args.get(4).is_some_and(|k| k.ends_with(":completed"))
        })
        .map(|args| (args[12].parse().unwrap(), args[13].parse().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_that_write_records_go_at_most_200_to_a_call() {
    // each kept completion writes a record and, at the retention's count, deletes one: 500
    // of them in one call took 25-30 ms of Redis on a slow day, up to 87 ms under load
    let server = RedisServer::start_with_slowlog(0, 100_000);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("bounded").await;
    const N: usize = 3_000;
    let jobs = |opts: JobOptions| {
        (0..N)
            .map(|i| NewJob::new("noop", &json!({ "i": i }), opts.clone()).unwrap())
            .collect::<Vec<_>>()
    };
    add_all(&q, jobs(JobOptions::new())).await;
    add_all(
        &q,
        jobs(JobOptions::new().remove_on_complete(Retention::REMOVE)),
    )
    .await;
    reset_slowlog(&mut env.raw().await).await;
    let worker = env
        .worker()
        .queues(["bounded"])
        .concurrency(50)
        .handler("noop", |_job: Job<Value>, _c: Ctx| async move {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_finished(&q, 2 * N as u64, Duration::from_secs(60)).await;
    guard.stop().await.unwrap();
    let calls = complete_calls(&mut env.raw().await).await;
    let kept: Vec<usize> = calls
        .iter()
        .filter(|(_, k)| *k != 0)
        .map(|(n, _)| *n)
        .collect();
    let removed: Vec<usize> = calls
        .iter()
        .filter(|(_, k)| *k == 0)
        .map(|(n, _)| *n)
        .collect();
    // (at least: the first call of each kind is logged twice, its NOSCRIPT and its run)
    assert!(
        kept.iter().sum::<usize>() >= N,
        "every kept completion is in the slowlog"
    );
    assert!(removed.iter().sum::<usize>() >= N);
    assert!(
        kept.iter().all(|n| *n <= 200),
        "a call of more than 200 completions that write records: {kept:?}"
    );
}
