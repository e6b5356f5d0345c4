//! Guarantee 8 for lean jobs (stored as their lane entry alone, no hash; id
//! `~<prio>.<entry id>`): a corrupt lean entry (garbage options, data that is not JSON or
//! not UTF-8, an empty name or one over 256 bytes) is listed (marked, but for its data,
//! shown as null as for any job), read and searched without a failure, and fails alone
//! when claimed, naming the job and the field; the other jobs run. A lean entry deleted
//! behind jobq's back while it runs ends that job alone.
//! Guarantees 1 and 2: a lean job recorded while its entry was undelivered (a failover lost
//! its claim) does not run again. The corrupt entries are written by hand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobq_tests::*;
use queue_core::internal::keys::QueueKeys;
use queue_core::*;
use serde_json::{json, Value};

/// A lane entry's field and value.
type Field<'a> = (&'a str, &'a [u8]);

/// A worker on `queue` completing `work` jobs, recording each run by job id.
fn recording_worker(env: &TestEnv, queue: &str, runs: Arc<Mutex<HashMap<String, u32>>>) -> Worker {
    env.worker()
        .queues([queue])
        .concurrency(4)
        .lease(Duration::from_secs(1))
        .handler("work", move |j: Job<Value>, _c: Ctx| {
            *runs.lock().unwrap().entry(j.id.clone()).or_default() += 1;
            async move { Ok::<_, JobError>(j.data) }
        })
        .build()
        .unwrap()
}

/// Each case's corrupt lean entry, among good lean jobs: listed (waiting) and read marked
/// as corrupt naming the field, never a failure; searched without a failure; claimed, it
/// fails alone, fatally, naming the job and the field; the good jobs all run once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_lean_entry_is_listed_marked_and_fails_alone_naming_the_field() {
    let long_name = vec![b'n'; 100_000];
    // (what, the entry's fields, what the mark and the failure must name)
    let cases: &[(&str, Vec<Field>, &str)] = &[
        (
            "garbage options",
            vec![("n", b"work"), ("d", b"{}"), ("o", b"\x01garbage")],
            "opts",
        ),
        (
            "options of the wrong type",
            vec![
                ("n", b"work"),
                ("d", b"{}"),
                ("o", b"{\"attempts\":\"many\"}"),
            ],
            "opts",
        ),
        (
            "data not JSON",
            vec![("n", b"work"), ("d", b"{not json")],
            "data",
        ),
        (
            "data not UTF-8",
            vec![("n", b"work"), ("d", b"\"\xff\xfe\"")],
            "data",
        ),
        ("no data", vec![("n", b"work")], "data"),
        ("empty name", vec![("n", b""), ("d", b"{}")], "name"),
        (
            "a 100 KB name",
            vec![("n", long_name.as_slice()), ("d", b"{}")],
            "name is 100000 bytes",
        ),
    ];
    for (n, (what, fields, says)) in cases.iter().enumerate() {
        let env = TestEnv::new().await;
        let queue = format!("lean-bad-{n}");
        let q = env.queue(&queue).await;
        let keys = QueueKeys::new(env.config.prefix(), &queue);
        let mut good = Vec::new();
        for i in 0..3 {
            good.push(
                q.add("work", &json!({ "i": i }), JobOptions::new())
                    .await
                    .unwrap()
                    .id,
            );
        }
        assert!(good[0].starts_with("~0."), "{what}: {}", good[0]);
        let bad = add_lean_by_hand(&env, &keys, 0, fields).await;
        for i in 3..6 {
            good.push(
                q.add("work", &json!({ "i": i }), JobOptions::new())
                    .await
                    .unwrap()
                    .id,
            );
        }

        // listed among the waiting, marked; the good ones whole
        let listed = q.list_jobs(JobState::Waiting, 0, 100).await.unwrap();
        assert_eq!(listed.len(), 7, "{what}: {listed:?}");
        for j in &listed {
            if j.id == bad {
                // (data that does not parse is shown as null, unmarked, for a job with a
                // record too: job.rs `from_hash`; the claim names it)
                let mark = j.corrupt.as_deref().unwrap_or_default();
                assert!(
                    mark.contains(says) || *says == "data",
                    "{what}: listed marked {mark:?}"
                );
                assert!(j.name.len() <= 256, "{what}: a name of {}", j.name.len());
            } else {
                assert!(j.corrupt.is_none() && j.name == "work", "{what}: {j:?}");
            }
        }
        let one = q.job(&bad).await.unwrap();
        let mark = one.corrupt.as_deref().unwrap_or_default();
        assert!(
            mark.contains(says) || *says == "data",
            "{what}: read marked {mark:?}"
        );
        assert!(
            one.name.len() <= 256,
            "{what}: a name of {}",
            one.name.len()
        );
        // a search never fails on it, and finds every good job
        let found = q.search(&SearchFilter::new().limit(100)).await.unwrap();
        for id in &good {
            assert!(
                found.jobs.iter().any(|j| j.id == *id),
                "{what}: search lost {id}"
            );
        }

        // claimed: it fails alone, fatally, naming itself and the field
        let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let guard = spawn_worker(recording_worker(&env, &queue, runs.clone()));
        let c = wait_finished(&q, 7, Duration::from_secs(10)).await;
        guard.stop().await.unwrap();
        assert_eq!(
            (c.completed_total, c.failed_total, c.waiting, c.active),
            (6, 1, 0, 0),
            "{what}: {c:?}"
        );
        let failed = q.job(&bad).await.unwrap();
        assert_eq!(failed.state, JobState::Failed, "{what}: {failed:?}");
        assert_eq!(failed.attempts_made, 1, "{what}: {failed:?}");
        let reason = failed.failed_reason.clone().unwrap_or_default();
        assert!(
            reason.contains(&bad) && reason.contains(says) && reason.len() < 1_000,
            "{what}: the reason must name the job and {says:?}: {reason}"
        );
        let runs = runs.lock().unwrap().clone();
        assert!(!runs.contains_key(&bad), "{what}: the bad job ran");
        for id in &good {
            assert_eq!(runs.get(id), Some(&1), "{what}: job {id} ran {runs:?}");
            let info = q.job(id).await.unwrap();
            assert_eq!(info.state, JobState::Completed, "{what}: {info:?}");
        }
    }
}

/// A lean entry of far more fields than a job has (a corrupt record: 200,000, which read
/// whole would stall Redis) never makes a call of 50 ms: listed, read, searched or
/// claimed. It is marked and fails alone; the jobs beside it run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_lean_job_whose_entry_is_deleted_ends_it_alone() {
    let env = TestEnv::new().await;
    let q = env.queue("lean-gone").await;
    let keys = QueueKeys::new(env.config.prefix(), "lean-gone");
    let lost = q
        .add("work", &json!({"lost": 1}), JobOptions::new())
        .await
        .unwrap()
        .id;
    // a worker claims it and dies
    claim_by_hand(&env, &keys, 0, "dead-worker", 1).await;
    let mut raw = env.raw().await;
    assert_eq!(q.job(&lost).await.unwrap().state, JobState::Active);
    let sid = lost.strip_prefix("~0.").unwrap();
    let deleted: i64 = redis::cmd("XDEL")
        .arg(keys.lane(0))
        .arg(sid)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let mut others = Vec::new();
    for i in 0..5 {
        others.push(
            q.add("work", &json!({ "i": i }), JobOptions::new())
                .await
                .unwrap()
                .id,
        );
    }
    let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let guard = spawn_worker(recording_worker(&env, "lean-gone", runs.clone()));
    wait_finished(&q, 5, Duration::from_secs(10)).await;
    eventually(Duration::from_secs(5), "nothing active", || async {
        (q.counts().await.ok()?.active == 0).then_some(())
    })
    .await;
    guard.stop().await.unwrap();
    let runs = runs.lock().unwrap().clone();
    for id in &others {
        assert_eq!(runs.get(id), Some(&1), "job {id}: {runs:?}");
    }
    assert!(!runs.contains_key(&lost), "{runs:?}");
    assert!(q.get_job(&lost).await.unwrap().is_none());
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.waiting, c.active, c.completed_total, c.failed_total),
        (0, 0, 5, 0),
        "{c:?}"
    );
}

/// Guarantees 1 and 2 after a failover lost a lean job's claim (as
/// fault_lost_pending.rs's test of a job with a record). Redis replicates asynchronously:
/// the promoted replica may hold the entry undelivered, while the worker runs the job and
/// records its outcome there. Here the claim is undone by hand while the job runs (its
/// entry acknowledged and the group's last delivered id set back, the waiting counter as
/// the replica has it), the queue paused so that nothing claims it before the outcome is
/// recorded. Then the entry, undelivered again, must not run a second time. A job with a
/// record (a given id) goes first, the same way: it shows the drill is fair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lean_job_recorded_while_its_entry_was_undelivered_does_not_run_again() {
    for (what, opts) in [
        ("a job with a record", JobOptions::new().job_id("rec")),
        ("a lean job", JobOptions::new()),
    ] {
        recorded_while_undelivered_runs_once(what, opts).await;
    }
}

async fn recorded_while_undelivered_runs_once(what: &str, opts: JobOptions) {
    let env = TestEnv::new().await;
    let q = env.queue("lostclaim").await;
    let keys = QueueKeys::new(env.config.prefix(), "lostclaim");
    let id = q.add("work", &json!({"once": 1}), opts).await.unwrap().id;
    let runs: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = runs.clone();
    let (qh, keys2) = (q.clone(), keys.clone());
    let conn = env.raw().await;
    let worker = env
        .worker()
        .queues(["lostclaim"])
        .concurrency(1)
        .handler("work", move |j: Job<Value>, _c: Ctx| {
            let first = {
                let mut r = seen.lock().unwrap();
                r.push(j.id.clone());
                r.len() == 1
            };
            let (qh, keys, mut raw) = (qh.clone(), keys2.clone(), conn.clone());
            async move {
                if first {
                    qh.pause().await.unwrap();
                    let sid = match j.id.strip_prefix("~0.") {
                        Some(sid) => sid.to_string(),
                        None => redis::cmd("HGET")
                            .arg(keys.job(&j.id))
                            .arg("sid")
                            .query_async(&mut raw)
                            .await
                            .unwrap(),
                    };
                    let () = redis::pipe()
                        .cmd("XACK")
                        .arg(keys.lane(0))
                        .arg("jobq")
                        .arg(&sid)
                        .ignore()
                        .cmd("XGROUP")
                        .arg("SETID")
                        .arg(keys.lane(0))
                        .arg("jobq")
                        .arg("0-0")
                        .ignore()
                        .cmd("HINCRBY")
                        .arg(keys.meta())
                        .arg("waiting")
                        .arg(1)
                        .ignore()
                        .query_async(&mut raw)
                        .await
                        .unwrap();
                }
                Ok::<_, JobError>(json!("done"))
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let done = wait_job_done(&q, &id, Duration::from_secs(5)).await;
    assert_eq!(done.state, JobState::Completed, "{what}: {done:?}");
    q.resume().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    guard.stop().await.unwrap();
    let ran = runs.lock().unwrap().clone();
    assert_eq!(ran, vec![id.clone()], "{what}: the recorded job ran again");
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.completed_total, c.completed, c.waiting, c.active),
        (1, 1, 0, 0),
        "{what}: {c:?}"
    );
}

/// A lean entry of 600 KB of data (within the data cap, but never written so by jobq),
/// failed in the same batch as healthy jobs that fail once: it fails alone, its record kept
/// whole; the others are retried and complete. (Its record was cut into ~9,600 pieces in one
/// list, too many to unpack: the batch failed half-way, its entries acknowledged, and the
/// batch sent again dropped the healthy jobs as recorded already.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_lean_entry_failing_beside_healthy_jobs_fails_alone_and_loses_none() {
    let env = TestEnv::new().await;
    let q = env.queue("leanhuge").await;
    let keys = QueueKeys::new(env.config.prefix(), "leanhuge");
    let opts = JobOptions::new().attempts(3);
    let mut healthy = Vec::new();
    for i in 0..3 {
        healthy.push(
            q.add("once", &json!({ "i": i }), opts.clone())
                .await
                .unwrap()
                .id,
        );
    }
    let pad = format!("{{\"pad\":\"{}\"}}", "x".repeat(600_000));
    let huge = add_lean_by_hand(&env, &keys, 0, &[("n", b"once"), ("d", pad.as_bytes())]).await;
    for i in 3..6 {
        healthy.push(
            q.add("once", &json!({ "i": i }), opts.clone())
                .await
                .unwrap()
                .id,
        );
    }
    let worker = env
        .worker()
        .queues(["leanhuge"])
        .concurrency(8)
        .handler("once", |j: Job<Value>, _c: Ctx| async move {
            if j.attempt == 1 {
                return Err(JobError::new("first attempt fails"));
            }
            Ok::<_, JobError>(json!("ok"))
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    for id in &healthy {
        let done = wait_job_done(&q, id, Duration::from_secs(10)).await;
        assert_eq!(
            (done.state, done.attempts_made),
            (JobState::Completed, 2),
            "{id}"
        );
    }
    let failed = wait_job_done(&q, &huge, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.data["pad"].as_str().map(str::len), Some(600_000));
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.active, c.completed, c.failed), (0, 0, 6, 1));
}

/// A lean job given a record (new data) then moved to another priority (an entry of a job
/// with a record) is no longer in the set of lean records; drained, it leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lean_job_moved_to_another_priority_leaves_the_set_of_lean_records() {
    let env = TestEnv::new().await;
    let q = env.queue("leanmove").await;
    let keys = QueueKeys::new(env.config.prefix(), "leanmove");
    let id = q
        .add("work", &json!({"a": 1}), JobOptions::new())
        .await
        .unwrap()
        .id;
    q.update_data(&id, &json!({"a": 2})).await.unwrap();
    assert_eq!(lean_records(&env, &keys).await, 1);
    q.change_priority(&id, 5).await.unwrap();
    assert_eq!(lean_records(&env, &keys).await, 0);
    let job = q.job(&id).await.unwrap();
    assert_eq!((job.state, job.priority), (JobState::Waiting, 5));
    assert_eq!(job.data, json!({"a": 2}));
    assert_eq!(q.drain().await.unwrap(), 1);
    assert!(q.get_job(&id).await.unwrap().is_none());
    assert_eq!(lean_records(&env, &keys).await, 0);
}

/// How many lean jobs the queue's set of lean records holds.
async fn lean_records(env: &TestEnv, keys: &QueueKeys) -> i64 {
    let mut raw = env.raw().await;
    redis::cmd("SCARD")
        .arg(keys.lean_records())
        .query_async(&mut raw)
        .await
        .unwrap()
}

/// An entry shaped as a lean job's in the front lane (where only reclaimed jobs with a
/// record wait) is no job's: it is dropped, never run as a job of priority 1001, and the
/// jobs behind it run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lean_shaped_entry_in_the_front_lane_is_dropped_and_runs_nothing() {
    let env = TestEnv::new().await;
    let q = env.queue("leanfront").await;
    let keys = QueueKeys::new(env.config.prefix(), "leanfront");
    let good = q
        .add("work", &json!({"g": 1}), JobOptions::new())
        .await
        .unwrap()
        .id;
    // the front lane, opened as a reclaim opens it, holding an entry written by hand
    let mut raw = env.raw().await;
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(keys.front_lane())
        .arg("jobq")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: i64 = redis::cmd("ZADD")
        .arg(keys.lanes())
        .arg(1001)
        .arg(1001)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: i64 = redis::cmd("HINCRBY")
        .arg(keys.meta())
        .arg("lanes_ver")
        .arg(1)
        .query_async(&mut raw)
        .await
        .unwrap();
    let forged = add_lean_by_hand(&env, &keys, 1001, &[("n", b"work"), ("d", b"{}")]).await;
    let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let guard = spawn_worker(recording_worker(&env, "leanfront", runs.clone()));
    wait_job_done(&q, &good, Duration::from_secs(5)).await;
    eventually(
        Duration::from_secs(5),
        "the forged entry dropped",
        || async {
            let c = q.counts().await.unwrap();
            ((c.waiting, c.active) == (0, 0)).then_some(())
        },
    )
    .await;
    guard.stop().await.unwrap();
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.get(&good), Some(&1));
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(q.get_job(&forged).await.unwrap_or(None).is_none());
}

/// The set of lean records replaced by a key of another type (a corrupt record) stalls no
/// claim and no outcome: the lean jobs waiting behind it, one of them given a record (a
/// log) while it ran, all run once and are recorded at once, not after a sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_set_of_lean_records_stalls_no_claim_and_no_outcome() {
    let env = TestEnv::new().await;
    let q = env.queue("leanlr").await;
    let keys = QueueKeys::new(env.config.prefix(), "leanlr");
    let mut raw = env.raw().await;
    let _: () = redis::cmd("SET")
        .arg(keys.lean_records())
        .arg("garbage")
        .query_async(&mut raw)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            q.add("work", &json!({"i": i}), JobOptions::new())
                .await
                .unwrap()
                .id,
        );
    }
    let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let seen = runs.clone();
    let worker = env
        .worker()
        .queues(["leanlr"])
        .concurrency(4)
        .handler("work", move |j: Job<Value>, ctx: Ctx| {
            *seen.lock().unwrap().entry(j.id.clone()).or_default() += 1;
            async move {
                if j.data["i"] == 3 {
                    ctx.log("a line").await?;
                }
                Ok::<_, JobError>(j.data)
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    // (the sweep, which would mend the set, is seconds away: the jobs must not wait for it)
    eventually(Duration::from_secs(3), "all the jobs completed", || async {
        let c = q.counts().await.unwrap();
        (c.completed == 20).then_some(())
    })
    .await;
    guard.stop().await.unwrap();
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 20, "{runs:?}");
    assert!(runs.values().all(|&n| n == 1), "{runs:?}");
    let logged = q.job(&ids[3]).await.unwrap();
    assert_eq!(logged.state, JobState::Completed);
    assert_eq!(logged.logs, vec!["a line".to_string()]);
}
