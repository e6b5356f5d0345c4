//! Debounce (`JobOptions::debounce`, "extend + replace"): while the job last added with a
//! debounce id has not started and the id was used within its ttl, an add with the id adds
//! no job; the kept job takes the add's name and data and is due after the add's delay.
//! Checked with workers running the jobs, for waiting, delayed and grouped jobs, single and
//! bulk adds, long data stored in pieces, with the queue's counts exact throughout.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

/// The jobs the `rec` handler ran: (id, name, data), in start order.
type Runs = Arc<Mutex<Vec<(String, String, Value)>>>;

/// A worker whose `rec` and `other` handlers record each job they run, and whose `hold`
/// handler records it then runs until `release` is notified.
fn recording_worker(
    env: &TestEnv,
    queue: &str,
    release: Arc<tokio::sync::Notify>,
) -> (Worker, Runs) {
    let runs: Runs = Arc::default();
    let record = |runs: Runs| {
        move |job: Job<Value>, _ctx: Ctx| {
            let runs = runs.clone();
            async move {
                runs.lock().unwrap().push((job.id, job.name, job.data));
                Ok::<_, JobError>(())
            }
        }
    };
    let r = runs.clone();
    let worker = env
        .worker()
        .queues([queue])
        .concurrency(4)
        .handler("rec", record(runs.clone()))
        .handler("other", record(runs.clone()))
        .handler("hold", move |job: Job<Value>, _ctx: Ctx| {
            let (r, release) = (r.clone(), release.clone());
            async move {
                r.lock().unwrap().push((job.id, job.name, job.data));
                release.notified().await;
                Ok::<_, JobError>(())
            }
        })
        .build()
        .unwrap();
    (worker, runs)
}

/// Entries in stream `key`.
async fn xlen(raw: &mut Conn, key: &str) -> u64 {
    redis::cmd("XLEN").arg(key).query_async(raw).await.unwrap()
}

/// Adds a `rec` job to `q`.
async fn add(q: &Queue, data: Value, opts: JobOptions) -> Added {
    q.add("rec", &data, opts).await.unwrap()
}

fn debounced(id: &str, ttl_ms: u64) -> JobOptions {
    JobOptions::new().debounce(id, Duration::from_millis(ttl_ms))
}

/// Debounced, and due in a minute.
fn later(id: &str, ttl_ms: u64) -> JobOptions {
    debounced(id, ttl_ms).delay(Duration::from_secs(60))
}

/// (waiting, delayed, active) as counted by the queue.
async fn counts(q: &Queue) -> (u64, u64, u64) {
    let c = q.counts().await.unwrap();
    (c.waiting, c.delayed, c.active)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_adds_within_half_a_second_run_one_job_with_the_last_data() {
    let env = TestEnv::new().await;
    let q = env.queue("deb4").await;
    let (worker, runs) = recording_worker(&env, "deb4", Default::default());
    let guard = spawn_worker(worker);
    let opts = || debounced("doc-7", 5_000).delay(Duration::from_secs(1));
    let mut added = Vec::new();
    let mut last_add = Instant::now();
    for v in 1..=4 {
        if v > 1 {
            tokio::time::sleep(Duration::from_millis(130)).await;
        }
        added.push(add(&q, json!({ "v": v }), opts()).await);
        last_add = Instant::now();
    }
    assert!(!added[0].debounced && !added[0].duplicate, "{added:?}");
    for a in &added[1..] {
        assert!(a.debounced && !a.duplicate, "{a:?}");
        assert_eq!(a.id, added[0].id, "a debounced add reports the kept job");
    }
    assert_eq!(counts(&q).await, (0, 1, 0));
    let done = wait_job_done(&q, &added[0].id, Duration::from_secs(5)).await;
    assert_eq!(done.state, JobState::Completed);
    let started = Instant::now();
    assert!(
        started.duration_since(last_add) >= Duration::from_millis(950),
        "the job ran {:?} after the last add, before that add's delay",
        started.duration_since(last_add)
    );
    // nothing else runs
    tokio::time::sleep(Duration::from_millis(500)).await;
    let runs = runs.lock().unwrap().clone();
    assert_eq!(
        runs,
        vec![(added[0].id.clone(), "rec".to_string(), json!({"v": 4}))]
    );
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.waiting, c.delayed, c.active, c.completed_total),
        (0, 0, 0, 1)
    );
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_after_the_ttl_or_once_the_job_went_active_creates_a_new_job() {
    let env = TestEnv::new().await;
    let q = env.queue("debnew").await;
    // the ttl passed: a new job (the first is still delayed)
    let first = add(&q, json!(1), later("t", 300)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = add(&q, json!(2), later("t", 300)).await;
    assert!(!second.debounced, "{second:?}");
    assert_ne!(second.id, first.id);
    assert_eq!(q.job(&first.id).await.unwrap().data, json!(1));
    // each debounced add starts the ttl again (extend): 3 adds 200 ms apart, ttl 300 ms
    for v in 3..=5 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let a = add(&q, json!(v), later("t", 300)).await;
        assert!(a.debounced && a.id == second.id, "add {v}: {a:?}");
    }
    assert_eq!(q.job(&second.id).await.unwrap().data, json!(5));
    assert_eq!(counts(&q).await, (0, 2, 0));

    // the job went active: the next add is a new job, which the key then names
    let release = Arc::new(tokio::sync::Notify::new());
    let (worker, runs) = recording_worker(&env, "debnew", release.clone());
    let guard = spawn_worker(worker);
    let held = q
        .add("hold", &json!("a"), debounced("h", 60_000))
        .await
        .unwrap();
    wait_active(&q, 1, Duration::from_secs(5)).await;
    let next = add(&q, json!("b"), later("h", 60_000)).await;
    assert!(!next.debounced, "an active job took the add: {next:?}");
    assert_ne!(next.id, held.id);
    let again = add(&q, json!("c"), later("h", 60_000)).await;
    assert!(again.debounced && again.id == next.id, "{again:?}");
    assert_eq!(q.job(&held.id).await.unwrap().data, json!("a"));
    assert_eq!(q.job(&next.id).await.unwrap().data, json!("c"));
    release.notify_one();
    wait_job_done(&q, &held.id, Duration::from_secs(5)).await;
    // finished: a new job again
    let _ = q.remove_job(&next.id).await;
    let after = add(&q, json!("d"), debounced("h2", 60_000)).await;
    wait_job_done(&q, &after.id, Duration::from_secs(5)).await;
    let late = add(&q, json!("e"), later("h2", 60_000)).await;
    assert!(!late.debounced && late.id != after.id, "{late:?}");
    assert_eq!(runs.lock().unwrap().len(), 2);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debounced_add_moves_a_waiting_or_delayed_job_and_the_counts_stay_exact() {
    let env = TestEnv::new().await;
    let q = env.queue("debmove").await;
    let mut raw = env.raw().await;
    let lane0 = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "debmove").lane(0);

    // waiting + no delay: stays waiting, in its place, with the new name and data
    let w = add(&q, json!("w1"), debounced("w", 60_000)).await;
    let other = add(&q, json!("o"), JobOptions::new()).await;
    let a = q
        .add("other", &json!("w2"), debounced("w", 60_000))
        .await
        .unwrap();
    assert!(a.debounced && a.id == w.id, "{a:?}");
    let job = q.job(&w.id).await.unwrap();
    assert_eq!(
        (job.state, job.name.as_str(), &job.data),
        (JobState::Waiting, "other", &json!("w2"))
    );
    assert_eq!(counts(&q).await, (2, 0, 0));
    assert_eq!(xlen(&mut raw, &lane0).await, 2);

    // waiting + a delay: leaves its lane for the delayed set, due after the delay
    let before = now_ms();
    let a = add(
        &q,
        json!("w3"),
        debounced("w", 60_000).delay(Duration::from_secs(30)),
    )
    .await;
    assert!(a.debounced && a.id == w.id, "{a:?}");
    let job = q.job(&w.id).await.unwrap();
    assert_eq!(
        (job.state, job.name.as_str(), &job.data),
        (JobState::Delayed, "rec", &json!("w3"))
    );
    let due = job.due_at.unwrap();
    assert!(
        due >= before + 30_000 && due <= now_ms() + 30_001,
        "due {due}"
    );
    assert_eq!(counts(&q).await, (1, 1, 0));
    assert_eq!(
        xlen(&mut raw, &lane0).await,
        1,
        "the kept job's lane entry is gone"
    );

    // delayed + a shorter delay: due earlier
    let a = add(
        &q,
        json!("w4"),
        debounced("w", 60_000).delay(Duration::from_secs(10)),
    )
    .await;
    assert!(a.debounced, "{a:?}");
    let due = q.job(&w.id).await.unwrap().due_at.unwrap();
    assert!(due <= now_ms() + 10_001, "due {due}");
    assert_eq!(counts(&q).await, (1, 1, 0));

    // delayed + no delay: due now, so the worker's next claim takes it
    let a = add(&q, json!("w5"), debounced("w", 60_000)).await;
    assert!(a.debounced, "{a:?}");
    assert!(q.job(&w.id).await.unwrap().due_at.unwrap() <= now_ms() + 1);
    let (worker, runs) = recording_worker(&env, "debmove", Default::default());
    let guard = spawn_worker(worker);
    wait_job_done(&q, &w.id, Duration::from_secs(5)).await;
    wait_job_done(&q, &other.id, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    let mut ran: Vec<Value> = runs.lock().unwrap().iter().map(|r| r.2.clone()).collect();
    ran.sort_by_key(|v| v.to_string());
    assert_eq!(ran, vec![json!("o"), json!("w5")]);
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.waiting, c.delayed, c.active, c.completed_total),
        (0, 0, 0, 2),
        "counts drifted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grouped_job_is_debounced_in_its_group_and_runs_once_with_the_last_data() {
    let env = TestEnv::new().await;
    let q = env.queue("debgrp").await;
    let opts = || debounced("g", 60_000).group("tenant:1");
    let g = add(&q, json!(1), opts()).await;
    add(&q, json!("x"), JobOptions::new().group("tenant:1")).await;
    // waiting in its group, no delay: stays
    let a = add(&q, json!(2), opts()).await;
    assert!(a.debounced && a.id == g.id, "{a:?}");
    assert_eq!(counts(&q).await, (2, 0, 0));
    assert_eq!(q.groups(10).await.unwrap().groups[0].waiting, 2);
    // with a delay: out of its group into the delayed set
    let a = add(&q, json!(3), opts().delay(Duration::from_millis(300))).await;
    assert!(a.debounced && a.id == g.id, "{a:?}");
    assert_eq!(q.job(&g.id).await.unwrap().state, JobState::Delayed);
    assert_eq!(counts(&q).await, (1, 1, 0));
    assert_eq!(q.groups(10).await.unwrap().groups[0].waiting, 1);
    let a = add(&q, json!(4), opts().delay(Duration::from_millis(300))).await;
    assert!(a.debounced && a.id == g.id, "{a:?}");

    let (worker, runs) = recording_worker(&env, "debgrp", Default::default());
    let guard = spawn_worker(worker);
    let done = wait_job_done(&q, &g.id, Duration::from_secs(5)).await;
    assert_eq!(done.opts.group.as_deref(), Some("tenant:1"));
    wait_finished(&q, 2, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    guard.stop().await.unwrap();
    let mut ran: Vec<Value> = runs.lock().unwrap().iter().map(|r| r.2.clone()).collect();
    ran.sort_by_key(|v| v.to_string());
    assert_eq!(ran, vec![json!("x"), json!(4)]);
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.waiting, c.delayed, c.active, c.completed_total),
        (0, 0, 0, 2)
    );
    let view = q.groups(10).await.unwrap();
    assert_eq!((view.with_waiting, view.with_active), (0, 0), "{view:?}");
}

#[tokio::test]
async fn bulk_adds_debounce_within_a_chunk_across_chunks_and_store_long_data_in_pieces() {
    let env = TestEnv::new().await;
    let q = env.queue("debbulk").await;
    let job = |data: Value, opts: JobOptions| NewJob::new("rec", &data, opts).unwrap();
    let added = q
        .add_bulk(vec![
            job(json!(1), later("b", 60_000)),
            job(json!("plain"), JobOptions::new()),
            job(json!(2), later("b", 60_000)),
            job(json!(3), debounced("c", 60_000)),
            job(json!(4), later("b", 60_000)),
        ])
        .await
        .unwrap();
    let kinds: Vec<(bool, bool)> = added.iter().map(|a| (a.duplicate, a.debounced)).collect();
    assert_eq!(
        kinds,
        vec![
            (false, false),
            (false, false),
            (false, true),
            (false, false),
            (false, true)
        ]
    );
    assert_eq!(
        (added[2].id.as_str(), added[4].id.as_str()),
        (added[0].id.as_str(), added[0].id.as_str())
    );
    assert_eq!(q.job(&added[0].id).await.unwrap().data, json!(4));
    assert_eq!(counts(&q).await, (2, 1, 0));

    // across chunks of one bulk: one job, with the last data
    let n = BULK_CHUNK + 10;
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| job(json!(i), debounced("many", 60_000)))
        .collect();
    let added = q.add_bulk(jobs).await.unwrap();
    assert_eq!(added.iter().filter(|a| a.debounced).count(), n - 1);
    assert!(added.iter().all(|a| a.id == added[0].id));
    assert_eq!(q.job(&added[0].id).await.unwrap().data, json!(n - 1));
    assert_eq!(counts(&q).await, (3, 1, 0));

    // data stored in pieces (over 64 bytes, over 4 KiB), replaced by short data and back
    let kept = added[0].id.clone();
    let mut raw = env.raw().await;
    let key = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "debbulk").job(&kept);
    for data in [
        json!("x".repeat(200)),
        json!("y".repeat(70_000)),
        json!("short"),
        json!("é".repeat(3_000)),
    ] {
        let a = q
            .add("rec", &data, debounced("many", 60_000))
            .await
            .unwrap();
        assert!(a.debounced && a.id == kept, "{a:?}");
        assert_eq!(q.job(&kept).await.unwrap().data, data);
        let fields: Vec<String> = redis::cmd("HKEYS")
            .arg(&key)
            .query_async(&mut raw)
            .await
            .unwrap();
        // the pieces are exactly data:2 … data:n plus data:n (none when short): no piece
        // of a longer value before it is left behind
        let mut pieces: Vec<String> = fields
            .into_iter()
            .filter(|f| f.starts_with("data:"))
            .collect();
        pieces.sort();
        let n: Option<usize> = redis::cmd("HGET")
            .arg(&key)
            .arg("data:n")
            .query_async(&mut raw)
            .await
            .unwrap();
        let mut want: Vec<String> = match n {
            None => Vec::new(),
            Some(n) => (2..=n)
                .map(|k| format!("data:{k}"))
                .chain(["data:n".to_string()])
                .collect(),
        };
        want.sort();
        assert_eq!(pieces, want, "{} bytes", data.to_string().len());
        assert_eq!(n.is_some(), data.to_string().len() > 64);
    }
    // over the data cap: refused, the kept job keeps its data
    let cap = env.config.caps.max_data_bytes;
    let err = q
        .add(
            "rec",
            &json!("z".repeat(cap + 1)),
            debounced("many", 60_000),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
    assert_eq!(q.job(&kept).await.unwrap().data, json!("é".repeat(3_000)));
    assert_eq!(counts(&q).await, (3, 1, 0));
}

#[tokio::test]
async fn debounce_with_a_job_id_and_bad_debounce_values_are_defined() {
    let env = TestEnv::new().await;
    let q = env.queue("debbad").await;
    // with a job id: the first add stores that id; a debounced add reports the kept job
    let first = add(&q, json!(1), debounced("j", 60_000).job_id("mine")).await;
    assert_eq!((first.id.as_str(), first.debounced), ("mine", false));
    let second = add(&q, json!(2), debounced("j", 60_000).job_id("other")).await;
    assert_eq!((second.id.as_str(), second.debounced), ("mine", true));
    assert!(q.get_job("other").await.unwrap().is_none());
    assert_eq!(q.job("mine").await.unwrap().data, json!(2));

    let too_long = Duration::from_secs(3651 * 86_400);
    for (opts, needle) in [
        (
            JobOptions::new().debounce("d", Duration::ZERO),
            "debounce ttl",
        ),
        (JobOptions::new().debounce("d", too_long), "debounce ttl"),
        (
            JobOptions::new().debounce("a b", Duration::from_secs(1)),
            "\"a b\"",
        ),
        (
            JobOptions::new().debounce("x".repeat(257), Duration::from_secs(1)),
            "debounce id",
        ),
        (
            debounced("d", 1_000).dedup("d", Duration::from_secs(1)),
            "dedup and debounce",
        ),
    ] {
        let e = q.add("rec", &json!(0), opts).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadInput, "{e}");
        assert!(e.to_string().contains(needle), "{needle}: {e}");
    }
    let bulk = vec![NewJob::new(
        "rec",
        &json!(0),
        JobOptions::new().debounce("d", Duration::ZERO),
    )
    .unwrap()];
    assert!(q
        .add_bulk(bulk)
        .await
        .unwrap_err()
        .to_string()
        .contains("debounce ttl"));
    assert_eq!(counts(&q).await, (1, 0, 0));
}

/// The due time (ms) of delayed job `id`.
async fn due_of(env: &TestEnv, q: &Queue, id: &str) -> String {
    let mut raw = env.raw().await;
    redis::cmd("HGET")
        .arg(queue_core::internal::keys::QueueKeys::new(q.prefix(), q.name()).job(id))
        .arg("due")
        .query_async(&mut raw)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debounced_add_sent_again_is_applied_once() {
    let env = TestEnv::new().await;
    let q = env.queue("debagain").await;
    // an add with its id given (as a producer sends it, and sends it again when its reply
    // was lost: then from the spool)
    let send = |id: &str, v: i64| {
        let q = q.clone();
        let id = id.to_string();
        async move { add(&q, json!(v), later("d", 60_000).job_id(id)).await }
    };
    let kept = send("k", 1).await;
    assert!(!kept.debounced && !kept.duplicate, "{kept:?}");
    let x = send("x", 2).await;
    assert_eq!(
        (x.id.as_str(), x.debounced, x.duplicate),
        ("k", true, false)
    );
    let due = due_of(&env, &q, "k").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    // sent again while `k` waits: the same answer, as a duplicate, and `k` is due as before
    for id in ["x", "k"] {
        let again = send(id, 2).await;
        assert_eq!(
            (again.id.as_str(), again.duplicate),
            ("k", true),
            "{id}: {again:?}"
        );
        assert_eq!(due_of(&env, &q, "k").await, due, "{id} moved the kept job");
    }
    // once `k` has run, `x` sent again adds no job of its own
    let (worker, runs) = recording_worker(&env, "debagain", Default::default());
    let guard = spawn_worker(worker);
    q.promote_job("k").await.unwrap();
    wait_job_done(&q, "k", Duration::from_secs(5)).await;
    let again = send("x", 2).await;
    assert_eq!(
        (again.id.as_str(), again.debounced, again.duplicate),
        ("k", true, true)
    );
    assert!(q.get_job("x").await.unwrap().is_none(), "x was stored");
    // a new add with the debounce id makes a job of its own, as before
    let y = send("y", 3).await;
    assert_eq!(
        (y.id.as_str(), y.debounced, y.duplicate),
        ("y", false, false)
    );
    assert_eq!(runs.lock().unwrap().len(), 1);
    assert_eq!(q.job("k").await.unwrap().data, json!(2));
    guard.stop().await.unwrap();
}
