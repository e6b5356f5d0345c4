//! Producer side of the engine against a real Redis: `add`, `get_job`, `job`, `counts`,
//! `add_bulk` (size, validation, atomicity) and `job_id` idempotency.

use std::collections::HashSet;
use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

/// Whether the hash of job `id` in `queue` exists in Redis.
async fn job_hash_exists(env: &TestEnv, queue: &str, id: &str) -> bool {
    let keys = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), queue);
    key_exists(env, &keys.job(id)).await
}

#[tokio::test]
async fn add_stores_name_data_opts_state_zero_attempts_and_created_at() {
    let env = TestEnv::new().await;
    let q = env.queue("add").await;
    let opts = JobOptions::new()
        .attempts(3)
        .backoff(Backoff::exponential(Duration::from_millis(250)))
        .timeout(Duration::from_secs(7))
        .remove_on_complete(Retention::keep_last(12))
        .remove_on_fail(Retention::keep_for(Duration::from_secs(60)));
    let before = now_ms();
    let added = q
        .add(
            "video.transcode",
            &json!({"src": "a.mp4", "n": [1, 2], "title": "Café ✓ 日本語", "q": "\"x\""}),
            opts.clone(),
        )
        .await
        .unwrap();
    let after = now_ms();
    assert!(!added.duplicate);
    assert!(!added.id.is_empty());

    let info = q.get_job(&added.id).await.unwrap().expect("job stored");
    assert_eq!(info.id, added.id);
    assert_eq!(info.queue, "add");
    assert_eq!(info.name, "video.transcode");
    assert_eq!(
        info.data,
        json!({"src": "a.mp4", "n": [1, 2], "title": "Café ✓ 日本語", "q": "\"x\""})
    );
    assert_eq!(info.state, JobState::Waiting);
    assert_eq!(info.attempts_made, 0);
    assert_eq!(info.priority, 0);
    assert_eq!(info.opts.attempts, Some(3));
    assert_eq!(info.opts.max_attempts(), 3);
    assert_eq!(
        info.opts.backoff,
        Some(Backoff::exponential(Duration::from_millis(250)))
    );
    assert_eq!(info.opts.timeout_ms, Some(7_000));
    assert_eq!(info.opts.remove_on_complete, Some(Retention::keep_last(12)));
    assert_eq!(
        info.opts.remove_on_fail,
        Some(Retention::keep_for(Duration::from_secs(60)))
    );
    // created_at is by the Redis clock, which runs on this machine too
    assert!(
        info.created_at + 5 >= before && info.created_at <= after + 5,
        "created_at {} not within [{before}, {after}]",
        info.created_at
    );
    assert_eq!(info.started_at, None);
    assert_eq!(info.finished_at, None);
    assert_eq!(info.failed_reason, None);
    assert_eq!(info.return_value, None);
    assert_eq!(info.progress, None);
    assert!(info.logs.is_empty());

    let c = q.counts().await.unwrap();
    assert_eq!(c.queue, "add");
    assert_eq!(
        (c.waiting, c.active, c.delayed, c.completed, c.failed),
        (1, 0, 0, 0, 0)
    );
    assert_eq!((c.paused, c.paused_jobs), (false, 0));
    assert_eq!((c.completed_total, c.failed_total), (0, 0));
}

#[tokio::test]
async fn add_with_default_options_reads_back_defaults() {
    let env = TestEnv::new().await;
    let q = env.queue("defaults").await;
    let added = q
        .add("noop", &json!(null), JobOptions::new())
        .await
        .unwrap();
    let info = q.job(&added.id).await.unwrap();
    assert_eq!(info.opts, JobOptions::default());
    assert_eq!(info.opts.max_attempts(), 1);
    assert_eq!(info.data, Value::Null);
    assert_eq!(info.state, JobState::Waiting);
}

#[tokio::test]
async fn add_delayed_and_prioritised_jobs_report_state_due_and_priority() {
    let env = TestEnv::new().await;
    let q = env.queue("states").await;
    let before = now_ms();
    let delayed = q
        .add(
            "later",
            &json!(1),
            JobOptions::new().delay(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let high = q
        .add("urgent", &json!(2), JobOptions::new().priority(7))
        .await
        .unwrap();
    let d = q.job(&delayed.id).await.unwrap();
    assert_eq!(d.state, JobState::Delayed);
    let due = d.due_at.expect("a delayed job has due_at");
    assert_eq!(due, d.created_at + 60_000);
    assert!(due + 5 >= before + 60_000, "due {due} before {before}+60s");
    let h = q.job(&high.id).await.unwrap();
    assert_eq!(h.state, JobState::Waiting);
    assert_eq!(h.priority, 7);
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.delayed, c.active), (1, 1, 0));
}

#[tokio::test]
async fn get_job_of_missing_id_is_none_and_job_is_job_not_found_naming_the_id() {
    let env = TestEnv::new().await;
    let q = env.queue("missing").await;
    q.add("x", &json!({}), JobOptions::new()).await.unwrap();
    assert!(q.get_job("no-such-job-42").await.unwrap().is_none());
    let err = q.job("no-such-job-42").await.unwrap_err();
    match &err {
        Error::JobNotFound { queue, id } => {
            assert_eq!(queue, "missing");
            assert_eq!(id, "no-such-job-42");
        }
        other => panic!("expected JobNotFound, got {other:?}"),
    }
    assert!(err.to_string().contains("no-such-job-42"), "{err}");
}

#[tokio::test]
async fn add_bulk_of_10000_jobs_stores_all_with_unique_ids() {
    let env = TestEnv::new().await;
    let q = env.queue("bulk").await;
    let jobs: Vec<NewJob> = (0..10_000)
        .map(|i| NewJob::new("bulk.item", &json!({ "i": i }), JobOptions::new()).unwrap())
        .collect();
    let started = std::time::Instant::now();
    let added = q.add_bulk(jobs).await.unwrap();
    eprintln!("add_bulk of 10,000 jobs took {:?}", started.elapsed());
    assert_eq!(added.len(), 10_000);
    assert!(added.iter().all(|a| !a.duplicate));
    let ids: HashSet<&str> = added.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), 10_000, "ids are not unique");
    let c = q.counts().await.unwrap();
    assert_eq!(c.waiting, 10_000);
    assert_eq!((c.active, c.delayed, c.completed, c.failed), (0, 0, 0, 0));
    // results come back in input order: spot-check data at both ends and across chunks
    for i in [0usize, 999, 1_000, 5_432, 9_999] {
        let info = q.job(&added[i].id).await.unwrap();
        assert_eq!(info.name, "bulk.item");
        assert_eq!(info.data, json!({ "i": i }));
        assert_eq!(info.state, JobState::Waiting);
    }
}

#[tokio::test]
async fn add_bulk_with_one_invalid_priority_stores_nothing_and_names_the_value() {
    let env = TestEnv::new().await;
    let q = env.queue("bulkbad").await;
    // the bad job sits in the second chunk: the first chunk must not be stored either
    let mut jobs: Vec<NewJob> = (0..1_500)
        .map(|i| NewJob::new("ok", &json!(i), JobOptions::new()).unwrap())
        .collect();
    jobs[1_234].opts = JobOptions::new().priority(5000);
    let err = q.add_bulk(jobs).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("priority"), "{msg}");
    assert!(msg.contains("5000"), "{msg}");
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.delayed), (0, 0), "something was stored");
}

#[tokio::test]
async fn add_bulk_with_zero_attempts_stores_nothing_and_names_the_value() {
    let env = TestEnv::new().await;
    let q = env.queue("bulkatt").await;
    let mut jobs: Vec<NewJob> = (0..10)
        .map(|i| {
            NewJob::new(
                "ok",
                &json!(i),
                JobOptions::new().job_id(format!("fixed-{i}")),
            )
            .unwrap()
        })
        .collect();
    jobs[9].opts = JobOptions::new().attempts(0);
    let err = q.add_bulk(jobs).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("attempts"), "{msg}");
    assert!(msg.contains('0'), "{msg}");
    assert!(q.get_job("fixed-0").await.unwrap().is_none());
    assert_eq!(q.counts().await.unwrap().waiting, 0);
}

#[tokio::test]
async fn add_rejects_invalid_options_and_names_them() {
    let env = TestEnv::new().await;
    let q = env.queue("addbad").await;
    let cases: Vec<(JobOptions, &str)> = vec![
        (JobOptions::new().priority(-1001), "-1001"),
        (JobOptions::new().job_id("has space"), "has space"),
        (JobOptions::new().timeout(Duration::ZERO), "timeout"),
        (
            JobOptions::new().backoff(Backoff::fixed(Duration::from_secs(1)).with_jitter(2.0)),
            "jitter",
        ),
    ];
    for (opts, needle) in cases {
        let err = q.add("x", &json!({}), opts).await.unwrap_err().to_string();
        assert!(err.contains(needle), "{err:?} should name {needle:?}");
    }
    let err = q
        .add("", &json!({}), JobOptions::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("job name"), "{err}");
    assert_eq!(q.counts().await.unwrap().waiting, 0);
}

#[tokio::test]
async fn job_id_second_add_is_duplicate_with_same_id_and_first_data_kept() {
    let env = TestEnv::new().await;
    let q = env.queue("idem").await;
    let first = q
        .add(
            "order.charge",
            &json!({"amount": 1}),
            JobOptions::new().job_id("order-42"),
        )
        .await
        .unwrap();
    assert_eq!(first.id, "order-42");
    assert!(!first.duplicate);
    let second = q
        .add(
            "order.charge",
            &json!({"amount": 999}),
            JobOptions::new().job_id("order-42").priority(5),
        )
        .await
        .unwrap();
    assert_eq!(second.id, "order-42");
    assert!(second.duplicate);
    let info = q.job("order-42").await.unwrap();
    assert_eq!(info.data, json!({"amount": 1}));
    assert_eq!(info.priority, 0);
    let c = q.counts().await.unwrap();
    assert_eq!(c.waiting, 1, "the duplicate was stored as a second job");
}

#[tokio::test]
async fn job_id_duplicates_inside_one_bulk_chunk_store_one_job() {
    let env = TestEnv::new().await;
    let q = env.queue("idembulk").await;
    let jobs = vec![
        NewJob::new("a", &json!({"v": "first"}), JobOptions::new().job_id("dup")).unwrap(),
        NewJob::new("a", &json!({"v": "other"}), JobOptions::new()).unwrap(),
        NewJob::new(
            "a",
            &json!({"v": "second"}),
            JobOptions::new().job_id("dup"),
        )
        .unwrap(),
    ];
    let added = q.add_bulk(jobs).await.unwrap();
    assert_eq!(added.len(), 3);
    assert_eq!((added[0].id.as_str(), added[0].duplicate), ("dup", false));
    assert!(!added[1].duplicate);
    assert_eq!((added[2].id.as_str(), added[2].duplicate), ("dup", true));
    assert_eq!(q.job("dup").await.unwrap().data, json!({"v": "first"}));
    assert_eq!(q.counts().await.unwrap().waiting, 2);
}

#[tokio::test]
async fn job_id_duplicates_across_bulk_chunks_and_calls_store_one_job() {
    let env = TestEnv::new().await;
    let q = env.queue("idemchunks").await;
    let n = BULK_CHUNK + 500;
    let mut jobs: Vec<NewJob> = (0..n)
        .map(|i| NewJob::new("a", &json!(i), JobOptions::new()).unwrap())
        .collect();
    jobs[3].opts = JobOptions::new().job_id("span");
    jobs[BULK_CHUNK + 7].opts = JobOptions::new().job_id("span");
    let added = q.add_bulk(jobs).await.unwrap();
    assert_eq!(added[3].id, "span");
    assert!(!added[3].duplicate);
    assert_eq!(added[BULK_CHUNK + 7].id, "span");
    assert!(added[BULK_CHUNK + 7].duplicate);
    assert_eq!(added.iter().filter(|a| a.duplicate).count(), 1);
    assert_eq!(q.job("span").await.unwrap().data, json!(3));
    assert_eq!(q.counts().await.unwrap().waiting, n as u64 - 1);

    // a later bulk that repeats the id is a no-op for that job too
    let again = q
        .add_bulk(vec![NewJob::new(
            "a",
            &json!("late"),
            JobOptions::new().job_id("span"),
        )
        .unwrap()])
        .await
        .unwrap();
    assert_eq!(again[0].id, "span");
    assert!(again[0].duplicate);
    assert_eq!(q.job("span").await.unwrap().data, json!(3));
    assert_eq!(q.counts().await.unwrap().waiting, n as u64 - 1);
}

#[tokio::test]
async fn job_id_of_a_delayed_job_is_idempotent_too() {
    let env = TestEnv::new().await;
    let q = env.queue("idemdelay").await;
    let opts = JobOptions::new()
        .job_id("later-1")
        .delay(Duration::from_secs(30));
    let a = q.add("x", &json!("a"), opts.clone()).await.unwrap();
    let b = q
        .add("x", &json!("b"), JobOptions::new().job_id("later-1"))
        .await
        .unwrap();
    assert!(!a.duplicate);
    assert!(b.duplicate);
    let info = q.job("later-1").await.unwrap();
    assert_eq!(info.state, JobState::Delayed);
    assert_eq!(info.data, json!("a"));
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.delayed), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_id_can_be_added_again_once_the_first_job_is_removed() {
    let env = TestEnv::new().await;
    let q = env.queue("idemreuse").await;
    let opts = JobOptions::new()
        .job_id("once")
        .remove_on_complete(Retention::REMOVE);
    let first = q.add("echo", &json!(1), opts.clone()).await.unwrap();
    assert!(!first.duplicate);
    let worker = env
        .worker()
        .queues(["idemreuse"])
        .handler("echo", |job: Job<Value>, _ctx: Ctx| async move {
            Ok::<_, JobError>(job.data)
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_finished(&q, 1, Duration::from_secs(5)).await;
    assert!(!job_hash_exists(&env, "idemreuse", "once").await);
    let again = q.add("echo", &json!(2), opts).await.unwrap();
    assert_eq!(again.id, "once");
    assert!(!again.duplicate, "a removed job's id must be usable again");
    wait_finished(&q, 2, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
}

#[tokio::test]
async fn payloads_round_trip_byte_for_byte_through_add_handler_and_result() {
    let env = TestEnv::new().await;
    let q = env.queue("unicode").await;
    let long: String = "héllo wörld — 日本語 🚀 ".repeat(400); // ~12 KB, multibyte throughout
    let data = json!({
        "text": "naïve café ✓ 😀 \u{1F600} 𝄞",
        "html": "<script>alert('x')</script> & \"quotes\" \\ back\\slash",
        "control": "tab\tnewline\nnull\u{0}end",
        "long": long,
        "nested": {"arr": [1, 2.5, -3, true, null, "ß"]},
    });
    let added = q.add("echo", &data, JobOptions::new()).await.unwrap();
    assert_eq!(q.job(&added.id).await.unwrap().data, data);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let s = seen.clone();
    let worker = env
        .worker()
        .queues(["unicode"])
        .handler("echo", move |j: Job<Value>, _c: Ctx| {
            let s = s.clone();
            async move {
                *s.lock().unwrap() = Some(j.data.clone());
                Ok::<_, JobError>(j.data)
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_finished(&q, 1, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    assert_eq!(
        seen.lock().unwrap().as_ref(),
        Some(&data),
        "the handler got other data"
    );
    let job = q.job(&added.id).await.unwrap();
    assert_eq!(job.state, JobState::Completed);
    assert_eq!(job.return_value, Some(data), "the stored result differs");
}

#[tokio::test]
async fn a_waiting_job_with_a_100_byte_payload_stays_a_compact_listpack_hash() {
    let env = TestEnv::new().await;
    let q = env.queue("compact").await;
    let data =
        json!({"i": 12345, "user": "user_2345", "action": "send_email", "body": "x".repeat(40)});
    let opts = JobOptions::new()
        .attempts(5)
        .backoff(Backoff::exponential(Duration::from_secs(1)).with_jitter(0.5))
        .timeout(Duration::from_secs(30));
    assert!(serde_json::to_string(&data).unwrap().len() > 64);
    // a given id: the job keeps a record (a plain one is lean, its lane entry alone)
    let added = q
        .add("send", &data, opts.clone().job_id("compact"))
        .await
        .unwrap();
    let keys = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "compact");
    let mut raw = env.raw().await;
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(keys.job(&added.id))
        .query_async(&mut raw)
        .await
        .unwrap();
    // a hashtable costs about twice the memory per job
    assert_eq!(encoding, "listpack");
    let job = q.job(&added.id).await.unwrap();
    assert_eq!(job.data, data);
    assert_eq!(job.opts.max_attempts(), 5);
    assert_eq!(job.opts.timeout_ms, Some(30_000));
}

/// A claim reads at most a budget of long-value pieces for all its jobs (2,048, about
/// 128 KiB) and leaves the rest to the worker: 120 jobs of ~3.6 KiB (~60 pieces each) and long
/// options, claimed 60 at a time, each get their own data and options back whole, whether the
/// claim read them or the worker did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_values_past_a_claims_piece_budget_reach_their_handlers_whole() {
    let env = TestEnv::new().await;
    let q = env.queue("budget").await;
    let text = |i: u64| format!("{i:04}-{}", "é0123456789abcdef".repeat(200));
    let jobs = (0..120u64)
        .map(|i| {
            let opts = JobOptions::new()
                .attempts(2)
                .timeout(Duration::from_secs(30 + i))
                .backoff(Backoff::exponential(Duration::from_millis(1000 + i)));
            NewJob::new("check", &json!({"i": i, "text": text(i)}), opts).unwrap()
        })
        .collect();
    q.add_bulk(jobs).await.unwrap();
    let worker = env
        .worker()
        .queues(["budget"])
        .concurrency(60)
        .handler("check", move |job: Job<Value>, _ctx: Ctx| async move {
            let i = job.data["i"].as_u64().unwrap();
            let whole =
                job.data["text"] == json!(text(i)) && job.opts.timeout_ms == Some((30 + i) * 1000);
            if whole {
                Ok(())
            } else {
                Err(JobError::fatal(format!(
                    "job {i} came back cut or mixed up"
                )))
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let c = wait_finished(&q, 120, Duration::from_secs(30)).await;
    guard.stop().await.unwrap();
    assert_eq!((c.completed_total, c.failed_total), (120, 0), "{c:?}");
}
