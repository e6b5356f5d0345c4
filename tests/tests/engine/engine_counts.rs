//! Counts, pause/resume, retention and stream hygiene: the numbers `counts` reports stay
//! consistent through a mixed run, a paused queue starts nothing, finished jobs are kept
//! only as their retention says, and lane streams do not keep finished entries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobq_tests::*;
use queue_core::internal::keys::QueueKeys;
use queue_core::*;
use serde_json::{json, Value};

/// Whether a key exists.
/// Number of job hashes (not log lists) of `queue` in Redis, by SCAN.
async fn job_hash_count(env: &TestEnv, queue: &str) -> usize {
    let keys = QueueKeys::new(env.config.prefix(), queue);
    let pattern = format!(
        "{}*",
        keys.job_prefix().replace('{', "\\{").replace('}', "\\}")
    );
    let mut raw = env.raw().await;
    let mut cursor: u64 = 0;
    let mut n = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut raw)
            .await
            .unwrap();
        n += batch.iter().filter(|k| !k.ends_with(":logs")).count();
        if next == 0 {
            return n;
        }
        cursor = next;
    }
}

/// (XLEN, pending count in the jobq group) of every lane stream of `queue`.
async fn lane_stats(env: &TestEnv, queue: &str) -> Vec<(String, u64, u64)> {
    let keys = QueueKeys::new(env.config.prefix(), queue);
    let mut raw = env.raw().await;
    let prios: Vec<i32> = lane_prios(&mut raw, &keys).await;
    let mut out = Vec::new();
    for p in prios {
        let lane = keys.lane(p);
        let len: u64 = redis::cmd("XLEN")
            .arg(&lane)
            .query_async(&mut raw)
            .await
            .unwrap();
        let pending: redis::Value = redis::cmd("XPENDING")
            .arg(&lane)
            .arg(queue_core::internal::keys::GROUP)
            .query_async(&mut raw)
            .await
            .unwrap();
        let pending = match pending {
            redis::Value::Array(items) => match items.first() {
                Some(redis::Value::Int(n)) => *n as u64,
                other => panic!("XPENDING summary: {other:?}"),
            },
            other => panic!("XPENDING reply: {other:?}"),
        };
        out.push((lane, len, pending));
    }
    out
}

/// A worker whose `mixed` handler behaves by `data.kind`: "ok", "flaky" (fails attempt 1),
/// "bad" (always fails), "fatal" (fatal error). Each call sleeps `data.ms` first.
fn mixed_worker(env: &TestEnv, queue: &str, concurrency: usize) -> Worker {
    env.worker()
        .queues([queue])
        .concurrency(concurrency)
        .handler("mixed", |job: Job<Value>, ctx: Ctx| async move {
            let ms = job.data["ms"].as_u64().unwrap_or(0);
            if ms > 0 {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            ctx.log(format!("attempt {}", job.attempt)).await?;
            match job.data["kind"].as_str().unwrap_or("ok") {
                "flaky" if job.attempt == 1 => Err(JobError::new("flaky once")),
                "bad" => Err(JobError::new("always bad")),
                "fatal" => Err(JobError::fatal("fatal")),
                _ => Ok(job.attempt),
            }
        })
        .build()
        .unwrap()
}

fn mixed(kind: &str, ms: u64, opts: JobOptions) -> NewJob {
    NewJob::new("mixed", &json!({"kind": kind, "ms": ms}), opts).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_invariants_hold_through_a_mixed_run_and_totals_match() {
    let env = TestEnv::new().await;
    let q = env.queue("mixed").await;
    let retry = || {
        JobOptions::new()
            .attempts(2)
            .backoff(Backoff::fixed(Duration::from_millis(40)))
    };
    let mut jobs = Vec::new();
    for i in 0..30 {
        jobs.push(mixed("ok", 5, JobOptions::new().priority(i % 3)));
    }
    for _ in 0..10 {
        jobs.push(mixed("flaky", 5, retry()));
    }
    for _ in 0..10 {
        jobs.push(mixed("bad", 5, retry()));
    }
    for i in 0..10 {
        jobs.push(mixed(
            "ok",
            5,
            JobOptions::new().delay(Duration::from_millis(100 + 20 * i)),
        ));
    }
    for _ in 0..5 {
        jobs.push(mixed("fatal", 5, JobOptions::new().attempts(3)));
    }
    let total = jobs.len() as u64;
    q.add_bulk(jobs).await.unwrap();
    let c0 = q.counts().await.unwrap();
    assert_eq!((c0.waiting, c0.delayed), (55, 10));

    let guard = spawn_worker(mixed_worker(&env, "mixed", 4));
    let snapshots = Arc::new(Mutex::new(Vec::<Counts>::new()));
    let final_counts = eventually(Duration::from_secs(5), "mixed run to finish", || {
        let (q, snapshots) = (q.clone(), snapshots.clone());
        async move {
            let c = q.counts().await.ok()?;
            snapshots.lock().unwrap().push(c.clone());
            (c.completed_total + c.failed_total >= total).then_some(c)
        }
    })
    .await;
    guard.stop().await.unwrap();

    let snaps = snapshots.lock().unwrap().clone();
    assert!(snaps.len() >= 5, "too few snapshots to mean anything");
    let mut prev: Option<&Counts> = None;
    let mut saw_active = false;
    let mut saw_delayed_midway = false;
    for c in &snaps {
        let sum = c.waiting + c.paused_jobs + c.active + c.delayed + c.completed + c.failed;
        assert_eq!(sum, total, "states do not add up to the jobs added: {c:?}");
        // (`active` may briefly exceed the concurrency: a slot frees as soon as its handler
        // returns, before the finisher has recorded the outcome in Redis)
        // retention is not trimming: what is kept equals what ever finished
        assert_eq!(c.completed, c.completed_total, "{c:?}");
        assert_eq!(c.failed, c.failed_total, "{c:?}");
        assert!(!c.paused && c.paused_jobs == 0);
        if let Some(p) = prev {
            assert!(c.completed_total >= p.completed_total, "{p:?} -> {c:?}");
            assert!(c.failed_total >= p.failed_total, "{p:?} -> {c:?}");
        }
        saw_active |= c.active > 0;
        saw_delayed_midway |= c.delayed > 0 && c.completed_total > 0;
        prev = Some(c);
    }
    assert!(saw_active, "no snapshot caught a job running");
    assert!(
        saw_delayed_midway,
        "no snapshot caught delayed jobs mid-run"
    );
    let c = final_counts;
    // ok 30 + flaky 10 + delayed 10 complete; bad 10 + fatal 5 fail
    assert_eq!((c.completed_total, c.failed_total), (50, 15), "{c:?}");
    assert_eq!((c.completed, c.failed), (50, 15), "{c:?}");
    assert_eq!((c.waiting, c.active, c.delayed), (0, 0, 0), "{c:?}");
    // and the lanes hold nothing any more
    for (lane, len, pending) in lane_stats(&env, "mixed").await {
        assert_eq!((len, pending), (0, 0), "{lane} keeps entries");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_queue_reports_paused_jobs_and_starts_nothing_until_resumed() {
    let env = TestEnv::new().await;
    let q = env.queue("pause").await;
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let worker = env
        .worker()
        .queues(["pause"])
        .handler("p", move |_job: Job<Value>, _ctx: Ctx| {
            let r = r.clone();
            async move {
                r.fetch_add(1, Ordering::SeqCst);
                Ok::<_, JobError>(())
            }
        })
        .build()
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(q.add("p", &json!(i), JobOptions::new()).await.unwrap().id);
    }
    q.pause().await.unwrap();
    let guard = spawn_worker(worker);
    // more work arrives while paused, with the worker running
    for i in 5..10 {
        ids.push(q.add("p", &json!(i), JobOptions::new()).await.unwrap().id);
    }
    let c = q.counts().await.unwrap();
    assert!(c.paused);
    assert_eq!((c.waiting, c.paused_jobs, c.active), (0, 10, 0), "{c:?}");
    assert_eq!(q.job(&ids[0]).await.unwrap().state, JobState::Paused);

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 0, "a job started while paused");
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.paused_jobs, c.active, c.completed_total),
        (10, 0, 0),
        "{c:?}"
    );

    q.resume().await.unwrap();
    let c = wait_finished(&q, 10, Duration::from_secs(3)).await;
    assert!(!c.paused);
    assert_eq!((c.completed_total, c.paused_jobs, c.waiting), (10, 0, 0));
    assert_eq!(runs.load(Ordering::SeqCst), 10);
    assert_eq!(q.job(&ids[9]).await.unwrap().state, JobState::Completed);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_a_busy_queue_lets_running_jobs_finish_and_holds_the_rest() {
    let env = TestEnv::new().await;
    let q = env.queue("pausebusy").await;
    let jobs: Vec<NewJob> = (0..40)
        .map(|_| mixed("ok", 30, JobOptions::new()))
        .collect();
    q.add_bulk(jobs).await.unwrap();
    let guard = spawn_worker(mixed_worker(&env, "pausebusy", 2));
    eventually(Duration::from_secs(3), "some jobs to finish", || async {
        let c = q.counts().await.ok()?;
        (c.completed_total >= 4).then_some(())
    })
    .await;
    q.pause().await.unwrap();
    // running ones finish, then nothing new starts
    let settled = eventually(Duration::from_secs(2), "active to drain", || async {
        let c = q.counts().await.ok()?;
        (c.active == 0).then_some(c)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let later = q.counts().await.unwrap();
    assert_eq!(
        later.completed_total, settled.completed_total,
        "ran while paused"
    );
    assert!(later.paused_jobs > 0 && later.waiting == 0, "{later:?}");
    assert_eq!(later.paused_jobs + later.completed_total, 40, "{later:?}");
    q.resume().await.unwrap();
    let c = wait_finished(&q, 40, Duration::from_secs(4)).await;
    assert_eq!(c.completed_total, 40);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_one_queue_does_not_hold_up_another_queue_of_the_same_worker() {
    let env = TestEnv::new().await;
    let held = env.queue("held").await;
    let free = env.queue("free").await;
    held.pause().await.unwrap();
    for i in 0..5 {
        held.add("mixed", &json!({"kind": "ok", "i": i}), JobOptions::new())
            .await
            .unwrap();
        free.add("mixed", &json!({"kind": "ok", "i": i}), JobOptions::new())
            .await
            .unwrap();
    }
    let worker = env
        .worker()
        .queues(["held", "free"])
        .concurrency(2)
        .handler("mixed", |job: Job<Value>, _ctx: Ctx| async move {
            Ok::<_, JobError>(job.data)
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let c = wait_finished(&free, 5, Duration::from_secs(3)).await;
    assert_eq!(c.completed_total, 5);
    let h = held.counts().await.unwrap();
    assert_eq!(
        (h.paused_jobs, h.completed_total, h.active),
        (5, 0, 0),
        "{h:?}"
    );
    held.resume().await.unwrap();
    let h = wait_finished(&held, 5, Duration::from_secs(3)).await;
    assert_eq!(h.completed_total, 5);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_remove_on_complete_leaves_no_job_hash_or_logs() {
    let env = TestEnv::new().await;
    let q = env.queue("rmc").await;
    let keys = QueueKeys::new(env.config.prefix(), "rmc");
    let mut ids = Vec::new();
    for _ in 0..10 {
        let a = q
            .add(
                "mixed",
                &json!({"kind": "ok"}),
                JobOptions::new().remove_on_complete(Retention::REMOVE),
            )
            .await
            .unwrap();
        ids.push(a.id);
    }
    let guard = spawn_worker(mixed_worker(&env, "rmc", 4));
    let c = wait_finished(&q, 10, Duration::from_secs(3)).await;
    guard.stop().await.unwrap();
    assert_eq!((c.completed_total, c.completed), (10, 0), "{c:?}");
    for id in &ids {
        assert!(
            q.get_job(id).await.unwrap().is_none(),
            "job {id} still stored"
        );
        assert!(!key_exists(&env, &keys.job(id)).await);
        assert!(
            !key_exists(&env, &keys.job_logs(id)).await,
            "logs of {id} kept"
        );
    }
    assert_eq!(job_hash_count(&env, "rmc").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_remove_on_fail_leaves_no_job_hash_but_counts_the_failure() {
    let env = TestEnv::new().await;
    let q = env.queue("rmf").await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        let a = q
            .add(
                "mixed",
                &json!({"kind": "bad"}),
                JobOptions::new()
                    .attempts(2)
                    .remove_on_fail(Retention::REMOVE),
            )
            .await
            .unwrap();
        ids.push(a.id);
    }
    let guard = spawn_worker(mixed_worker(&env, "rmf", 4));
    let c = wait_finished(&q, 6, Duration::from_secs(3)).await;
    guard.stop().await.unwrap();
    assert_eq!((c.failed_total, c.failed, c.delayed), (6, 0, 0), "{c:?}");
    for id in &ids {
        assert!(
            q.get_job(id).await.unwrap().is_none(),
            "job {id} still stored"
        );
    }
    assert_eq!(job_hash_count(&env, "rmf").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keep_last_5_of_20_keeps_exactly_the_newest_5() {
    let env = TestEnv::new().await;
    let q = env.queue("keep5").await;
    let keys = QueueKeys::new(env.config.prefix(), "keep5");
    let mut ids = Vec::new();
    for _ in 0..20 {
        let a = q
            .add(
                "mixed",
                &json!({"kind": "ok", "ms": 3}),
                JobOptions::new().remove_on_complete(Retention::keep_last(5)),
            )
            .await
            .unwrap();
        ids.push(a.id);
    }
    // concurrency 1 and 3 ms jobs: each finishes alone, in add order, at its own ms
    let guard = spawn_worker(mixed_worker(&env, "keep5", 1));
    let c = wait_finished(&q, 20, Duration::from_secs(3)).await;
    guard.stop().await.unwrap();
    assert_eq!((c.completed_total, c.completed), (20, 5), "{c:?}");
    let mut kept = Vec::new();
    for id in &ids {
        match q.get_job(id).await.unwrap() {
            Some(info) => {
                assert_eq!(info.state, JobState::Completed);
                assert!(key_exists(&env, &keys.job_logs(id)).await);
                kept.push(id.clone());
            }
            None => {
                assert!(!key_exists(&env, &keys.job(id)).await);
                assert!(
                    !key_exists(&env, &keys.job_logs(id)).await,
                    "logs of trimmed {id}"
                );
            }
        }
    }
    assert_eq!(kept, ids[15..].to_vec(), "kept jobs are not the newest 5");
    assert_eq!(job_hash_count(&env, "keep5").await, 5);
}

/// A trim skips its jobs' log keys only in a queue that has never had a log: the first lane
/// of a new queue marks its logs as tracked (`lt` in its meta) and its first log marks it
/// (`lg`). A queue made before logs were tracked (no `lt`) has the logs it holds deleted
/// with their jobs, though none was marked, and so does one whose meta was lost (deleted by
/// hand, then a new lane opened: not a new queue, its lanes are there); in a tracked queue
/// without a log the trim never looks for one (a log list written behind jobq's back, a
/// corrupt record, is left). One log, and trimmed jobs' logs are deleted again (the
/// keep-last-5 test above: every job logs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trim_skips_log_keys_only_in_a_queue_that_never_had_a_log() {
    let env = TestEnv::new().await;
    let mut raw = env.raw().await;
    let worker = |queue: &str| {
        env.worker()
            .queues([queue])
            .concurrency(1)
            .handler("plain", |_j: Job<Value>, _c: Ctx| async move {
                Ok::<_, JobError>(())
            })
            .build()
            .unwrap()
    };
    let keep2 = || JobOptions::new().remove_on_complete(Retention::keep_last(2));
    // (queue, how its meta is made to look, whether trimmed jobs' logs are left)
    for (queue, meta, left) in [
        ("logs-new", "as made", true),
        ("logs-old", "made before logs were tracked", false),
        ("logs-lost", "lost", false),
    ] {
        let q = env.queue(queue).await;
        let keys = QueueKeys::new(env.config.prefix(), queue);
        let mut ids = Vec::new();
        for i in 0..6 {
            ids.push(
                q.add("plain", &json!({ "i": i }), keep2())
                    .await
                    .unwrap()
                    .id,
            );
        }
        let marks: (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(keys.meta())
            .arg("lt")
            .arg("lg")
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(
            marks,
            (Some("1".into()), None),
            "a new queue: logs tracked, none"
        );
        match meta {
            "made before logs were tracked" => {
                let _: i64 = redis::cmd("HDEL")
                    .arg(keys.meta())
                    .arg("lt")
                    .query_async(&mut raw)
                    .await
                    .unwrap();
            }
            "lost" => {
                let _: i64 = redis::cmd("DEL")
                    .arg(keys.meta())
                    .query_async(&mut raw)
                    .await
                    .unwrap();
                // a new lane on a queue that has lanes: not a new queue
                let opts = keep2().priority(5);
                ids.push(q.add("plain", &json!({ "i": 6 }), opts).await.unwrap().id);
                let lt: Option<String> = redis::cmd("HGET")
                    .arg(keys.meta())
                    .arg("lt")
                    .query_async(&mut raw)
                    .await
                    .unwrap();
                assert_eq!(lt, None, "a queue that lost its meta is not new");
            }
            _ => {}
        }
        for id in &ids {
            let _: i64 = redis::cmd("RPUSH")
                .arg(keys.job_logs(id))
                .arg("written by hand")
                .query_async(&mut raw)
                .await
                .unwrap();
        }
        let n = ids.len() as u64;
        let guard = spawn_worker(worker(queue));
        let c = wait_finished(&q, n, Duration::from_secs(5)).await;
        guard.stop().await.unwrap();
        assert_eq!((c.completed_total, c.completed), (n, 2), "{queue}: {c:?}");
        let mut trimmed = 0;
        for id in &ids {
            if key_exists(&env, &keys.job(id)).await {
                continue;
            }
            trimmed += 1;
            assert_eq!(
                key_exists(&env, &keys.job_logs(id)).await,
                left,
                "{queue}: the log of trimmed {id}"
            );
        }
        assert_eq!(trimmed, n - 2, "{queue}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keep_for_removes_jobs_older_than_the_age() {
    let env = TestEnv::new().await;
    let q = env.queue("keepfor").await;
    let opts =
        JobOptions::new().remove_on_complete(Retention::keep_for(Duration::from_millis(200)));
    let guard = spawn_worker(mixed_worker(&env, "keepfor", 2));
    let mut old = Vec::new();
    for _ in 0..5 {
        old.push(
            q.add("mixed", &json!({"kind": "ok"}), opts.clone())
                .await
                .unwrap()
                .id,
        );
    }
    wait_finished(&q, 5, Duration::from_secs(3)).await;
    assert_eq!(q.counts().await.unwrap().completed, 5);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = q
        .add("mixed", &json!({"kind": "ok"}), opts)
        .await
        .unwrap()
        .id;
    let c = wait_finished(&q, 6, Duration::from_secs(3)).await;
    guard.stop().await.unwrap();
    assert_eq!((c.completed_total, c.completed), (6, 1), "{c:?}");
    for id in &old {
        assert!(q.get_job(id).await.unwrap().is_none(), "old job {id} kept");
    }
    assert!(q.get_job(&fresh).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_default_bounds_completed_jobs_to_1000() {
    let env = TestEnv::new().await;
    let q = env.queue("default-ret").await;
    let jobs: Vec<NewJob> = (0..1_200)
        .map(|_| mixed("ok", 0, JobOptions::new()))
        .collect();
    q.add_bulk(jobs).await.unwrap();
    let guard = spawn_worker(mixed_worker(&env, "default-ret", 32));
    let c = wait_finished(&q, 1_200, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert_eq!(c.completed_total, 1_200);
    assert_eq!(c.completed, 1_000, "{c:?}");
    assert_eq!(job_hash_count(&env, "default-ret").await, 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_hygiene_lanes_are_empty_with_nothing_pending_after_all_jobs_finish() {
    let env = TestEnv::new().await;
    let q = env.queue("hygiene").await;
    let retry = JobOptions::new()
        .attempts(2)
        .backoff(Backoff::fixed(Duration::from_millis(20)));
    let mut jobs = Vec::new();
    for i in 0..200 {
        let prio = [0, 5, -3][i % 3];
        let (kind, opts) = match i % 4 {
            0 => ("flaky", retry.clone().priority(prio)),
            1 => ("bad", retry.clone().priority(prio)),
            2 => (
                "ok",
                JobOptions::new()
                    .priority(prio)
                    .delay(Duration::from_millis(30)),
            ),
            _ => ("ok", JobOptions::new().priority(prio)),
        };
        jobs.push(mixed(kind, 0, opts));
    }
    q.add_bulk(jobs).await.unwrap();
    let before = lane_stats(&env, "hygiene").await;
    assert_eq!(before.len(), 3, "one lane per priority: {before:?}");
    assert!(before.iter().map(|(_, len, _)| len).sum::<u64>() > 0);

    let guard = spawn_worker(mixed_worker(&env, "hygiene", 8));
    let c = wait_finished(&q, 200, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    assert_eq!((c.completed_total, c.failed_total), (150, 50), "{c:?}");
    for (lane, len, pending) in lane_stats(&env, "hygiene").await {
        assert_eq!(
            len, 0,
            "{lane} still holds {len} entries after all jobs finished"
        );
        assert_eq!(pending, 0, "{lane} has {pending} pending entries");
    }
    let keys = QueueKeys::new(env.config.prefix(), "hygiene");
    let mut raw = env.raw().await;
    let delayed: u64 = redis::cmd("ZCARD")
        .arg(keys.delayed())
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(delayed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_hygiene_lane_is_emptied_once_a_long_job_that_held_back_trimming_ends() {
    let env = TestEnv::new().await;
    let q = env.queue("longjob").await;
    // the long job is the oldest entry: every other job completes while it is pending
    q.add(
        "mixed",
        &json!({"kind": "ok", "ms": 800}),
        JobOptions::new(),
    )
    .await
    .unwrap();
    let jobs: Vec<NewJob> = (0..300)
        .map(|_| mixed("ok", 0, JobOptions::new()))
        .collect();
    q.add_bulk(jobs).await.unwrap();
    let guard = spawn_worker(mixed_worker(&env, "longjob", 4));
    let c = wait_finished(&q, 301, Duration::from_secs(4)).await;
    guard.stop().await.unwrap();
    assert_eq!((c.completed_total, c.waiting, c.active), (301, 0, 0));
    for (lane, len, pending) in lane_stats(&env, "longjob").await {
        assert_eq!((len, pending), (0, 0), "{lane} keeps entries");
    }
}

/// Every entry of a stream as (entry id, flat field/value list).
async fn stream_entries(env: &TestEnv, key: &str) -> Vec<(String, Vec<String>)> {
    let mut raw = env.raw().await;
    redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(&mut raw)
        .await
        .unwrap()
}

/// Names of the events (field `event`) that mention job `id` in any field, in order. An
/// event of lean jobs (stored as their lane entry alone) names their lane's priority in
/// `lean` and their entries in `ids`: job id `~<lean>.<entry id>`.
fn events_of(entries: &[(String, Vec<String>)], id: &str) -> Vec<String> {
    let field = |f: &[String], name: &str| {
        f.chunks(2)
            .find(|kv| kv[0] == name)
            .and_then(|kv| kv.get(1).cloned())
    };
    entries
        .iter()
        .filter(|(_, f)| {
            let lean = field(f, "lean");
            f.chunks(2).any(|kv| {
                kv.get(1).is_some_and(|v| {
                    v.split_whitespace().any(|t| match &lean {
                        Some(prio) if kv[0] == "ids" => format!("~{prio}.{t}") == id,
                        _ => t == id,
                    })
                })
            })
        })
        .filter_map(|(_, f)| field(f, "event"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_exists_and_records_each_job_lifecycle() {
    let env = TestEnv::new().await;
    let q = env.queue("events").await;
    let keys = QueueKeys::new(env.config.prefix(), "events");
    let ok = q
        .add("mixed", &json!({"kind": "ok"}), JobOptions::new())
        .await
        .unwrap();
    let bad = q
        .add("mixed", &json!({"kind": "bad"}), JobOptions::new())
        .await
        .unwrap();
    let guard = spawn_worker(mixed_worker(&env, "events", 2));
    wait_finished(&q, 2, Duration::from_secs(3)).await;
    guard.stop().await.unwrap();
    let mut raw = env.raw().await;
    let kind: String = redis::cmd("TYPE")
        .arg(keys.events())
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(kind, "stream");
    let entries = stream_entries(&env, &keys.events()).await;
    assert_eq!(
        events_of(&entries, &ok.id),
        ["added", "active", "completed"]
    );
    assert_eq!(events_of(&entries, &bad.id), ["added", "active", "failed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_stays_bounded() {
    let env = TestEnv::new().await;
    let q = env.queue("bounded").await;
    let keys = QueueKeys::new(env.config.prefix(), "bounded");
    // 2.4 x EVENTS_MAXLEN single adds, one after another (adds made at the same time share
    // a call, and so an event entry): one entry each, beyond what is kept
    let per_round = (queue_core::EVENTS_MAXLEN / 10) as i64;
    for i in 0..24 * per_round {
        q.add("x", &json!(i), JobOptions::new()).await.unwrap();
    }
    assert_eq!(q.counts().await.unwrap().waiting, 24 * per_round as u64);
    let mut raw = env.raw().await;
    let len: u64 = redis::cmd("XLEN")
        .arg(keys.events())
        .query_async(&mut raw)
        .await
        .unwrap();
    eprintln!("events stream after {} adds: XLEN {len}", 24 * per_round);
    // approximate trimming (MAXLEN ~) keeps at least the cap, and at most about one stream
    // node (100 entries) more
    let kept = queue_core::EVENTS_MAXLEN;
    assert!(len >= kept, "events stream lost recent events: {len}");
    assert!(len <= kept + 200, "events stream is not bounded: {len}");
}
