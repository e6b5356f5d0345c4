//! Operator changes of lean jobs (stored as their lane entry alone, no hash; id
//! `~<prio>.<entry id>`): cancel, remove, data and priority changes of a waiting one, a
//! cancel request, progress and log lines for a running one, each given the job's record
//! first; counts stay right; a finished (acknowledged) entry is never brought back by any
//! of them; drain takes lean entries with their records, and the repair sweep leaves them
//! alone. The lean jobs are written by hand, as `add` writes them.

use std::time::Duration;

use jobq_tests::*;
use queue_core::internal::keys::{QueueKeys, GROUP};
use queue_core::*;
use serde_json::{json, Value};

/// Queue `name` with its lane 0 open (its stream and consumer group, as an add opens it),
/// and no job in it.
async fn lane_ready(env: &TestEnv, name: &str) -> (Queue, QueueKeys) {
    let q = env.queue(name).await;
    let opener = q
        .add("opener", &json!({}), JobOptions::new().job_id("opener"))
        .await
        .unwrap();
    q.remove_job(&opener.id).await.unwrap();
    let keys = QueueKeys::new(env.config.prefix(), name);
    assert_eq!(waiting_counter(env, &keys).await, 0);
    (q, keys)
}

/// A lean job in lane 0, written as `add` writes one; its id.
async fn add_lean(env: &TestEnv, keys: &QueueKeys, data: &str) -> String {
    add_lean_by_hand(env, keys, 0, &[("n", b"diag.noop"), ("d", data.as_bytes())]).await
}

/// The entry id a lean id `~0.<sid>` names.
fn sid_of(id: &str) -> &str {
    id.strip_prefix("~0.").unwrap()
}

/// Takes the next entry of lane 0 as a worker's claim does (it is pending then, and no
/// longer counted waiting): its id.
async fn claim_next(env: &TestEnv, keys: &QueueKeys) -> String {
    claim_by_hand(env, keys, 0, "c", 1).await.remove(0)
}

/// Acknowledges entry `sid` of lane 0, as the outcome of a lean job does: the job is
/// finished (its entry may linger until the lane is trimmed).
async fn ack(env: &TestEnv, keys: &QueueKeys, sid: &str) {
    let mut raw = env.raw().await;
    let n: i64 = redis::cmd("XACK")
        .arg(keys.lane(0))
        .arg(GROUP)
        .arg(sid)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

async fn waiting_counter(env: &TestEnv, keys: &QueueKeys) -> i64 {
    let mut raw = env.raw().await;
    let n: Option<i64> = redis::cmd("HGET")
        .arg(keys.meta())
        .arg("waiting")
        .query_async(&mut raw)
        .await
        .unwrap();
    n.unwrap_or(0)
}

async fn field(env: &TestEnv, key: &str, name: &str) -> Option<String> {
    let mut raw = env.raw().await;
    redis::cmd("HGET")
        .arg(key)
        .arg(name)
        .query_async(&mut raw)
        .await
        .unwrap()
}

/// Whether `id` is in the queue's set of lean jobs with a record.
async fn has_record_listed(env: &TestEnv, keys: &QueueKeys, id: &str) -> bool {
    let mut raw = env.raw().await;
    let n: i64 = redis::cmd("SISMEMBER")
        .arg(keys.lean_records())
        .arg(id)
        .query_async(&mut raw)
        .await
        .unwrap();
    n == 1
}

/// The fields of entry `sid` of `lane` (empty when it is gone).
async fn entry(env: &TestEnv, lane: &str, sid: &str) -> Vec<String> {
    let mut raw = env.raw().await;
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(lane)
        .arg(sid)
        .arg(sid)
        .query_async(&mut raw)
        .await
        .unwrap();
    let Some(e) = reply.ids.first() else {
        return Vec::new();
    };
    let mut names: Vec<String> = e.map.keys().cloned().collect();
    names.sort();
    names
}

async fn pending_count(env: &TestEnv, keys: &QueueKeys) -> i64 {
    let mut raw = env.raw().await;
    let v: redis::Value = redis::cmd("XPENDING")
        .arg(keys.lane(0))
        .arg(GROUP)
        .query_async(&mut raw)
        .await
        .unwrap();
    match v {
        redis::Value::Array(items) => match items.first() {
            Some(redis::Value::Int(n)) => *n,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

fn not_found(r: Result<impl std::fmt::Debug>) -> bool {
    matches!(r, Err(Error::JobNotFound { .. }))
}

// The worker's calls for the job it runs (`Ctx::progress`, `Ctx::log`) reach these
// scripts only from a running handler; they are called here as `update_progress.rs` and
// `add_log.rs` call them (same keys and arguments).
static PROGRESS: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(concat!(
        include_str!("../../../queue-core/src/scripts/prelude.lua"),
        include_str!("../../../queue-core/src/scripts/update_progress.lua")
    ))
});
static LOG: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(concat!(
        include_str!("../../../queue-core/src/scripts/prelude.lua"),
        include_str!("../../../queue-core/src/scripts/add_log.lua")
    ))
});

async fn progress(env: &TestEnv, keys: &QueueKeys, id: &str, value: &str) -> i64 {
    PROGRESS
        .key(keys.job(id))
        .key(keys.events())
        .key(keys.lane(0))
        .arg(id)
        .arg(value)
        .arg(1000)
        .arg(GROUP)
        .invoke_async(&mut env.raw().await)
        .await
        .unwrap()
}

async fn log(env: &TestEnv, keys: &QueueKeys, id: &str, line: &str) -> i64 {
    LOG.key(keys.job(id))
        .key(keys.job_logs(id))
        .key(keys.lane(0))
        .key(keys.meta())
        .arg(line)
        .arg(1000)
        .arg(id)
        .arg(GROUP)
        .invoke_async(&mut env.raw().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn lean_waiting_job_is_cancelled() {
    let env = TestEnv::new().await;
    let (q, keys) = lane_ready(&env, "lean-cancel").await;
    let id = add_lean(&env, &keys, r#"{"x":1}"#).await;
    let other = add_lean(&env, &keys, r#"{"x":2}"#).await;
    assert_eq!(waiting_counter(&env, &keys).await, 2);

    assert_eq!(q.cancel(&id).await.unwrap(), Cancelled::Now { children: 0 });
    let job = keys.job(&id);
    assert_eq!(
        field(&env, &job, "state").await.as_deref(),
        Some("cancelled")
    );
    assert_eq!(
        field(&env, &job, "name").await.as_deref(),
        Some("diag.noop")
    );
    assert!(
        entry(&env, &keys.lane(0), sid_of(&id)).await.is_empty(),
        "its entry went"
    );
    assert!(
        !has_record_listed(&env, &keys, &id).await,
        "it ended: out of the set"
    );
    assert_eq!(waiting_counter(&env, &keys).await, 1);
    let counts = q.counts().await.unwrap();
    assert_eq!((counts.waiting, counts.cancelled, counts.active), (1, 1, 0));
    let info = q.job(&id).await.unwrap();
    assert_eq!(info.state, JobState::Cancelled);
    assert_eq!(info.data, json!({"x": 1}));
    // the other lean job is untouched, still without a record
    assert!(!key_exists(&env, &keys.job(&other)).await);
    assert_eq!(entry(&env, &keys.lane(0), sid_of(&other)).await, ["d", "n"]);
}

#[tokio::test]
async fn lean_running_job_gets_a_cancel_request() {
    let env = TestEnv::new().await;
    let (q, keys) = lane_ready(&env, "lean-cancel-running").await;
    let id = add_lean(&env, &keys, r#"{"x":1}"#).await;
    let sid = claim_next(&env, &keys).await;
    assert_eq!(sid, sid_of(&id));

    assert_eq!(q.cancel(&id).await.unwrap(), Cancelled::Requested);
    let job = keys.job(&id);
    assert_eq!(
        field(&env, &job, "cxl").await.as_deref(),
        Some(sid.as_str())
    );
    assert_eq!(
        field(&env, &job, "sid").await.as_deref(),
        Some(sid.as_str())
    );
    let mut raw = env.raw().await;
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg(keys.cancels())
        .arg(format!("{sid} {id}"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(score.is_some(), "a request for the attempt");
    // still running: its worker ends it; it has a record now, listed for the claims
    assert_eq!(pending_count(&env, &keys).await, 1);
    assert!(has_record_listed(&env, &keys, &id).await);
    let counts = q.counts().await.unwrap();
    assert_eq!((counts.waiting, counts.active, counts.cancelled), (0, 1, 0));
}

#[tokio::test]
async fn lean_waiting_job_is_removed_and_a_running_one_refused() {
    let env = TestEnv::new().await;
    let (q, keys) = lane_ready(&env, "lean-remove").await;
    let running = add_lean(&env, &keys, r#"{"x":1}"#).await;
    let id = add_lean(&env, &keys, r#"{"x":2}"#).await;
    let other = add_lean(&env, &keys, r#"{"x":3}"#).await;
    claim_next(&env, &keys).await;
    assert_eq!(waiting_counter(&env, &keys).await, 2);

    q.remove_job(&id).await.unwrap();
    assert!(!key_exists(&env, &keys.job(&id)).await);
    assert!(entry(&env, &keys.lane(0), sid_of(&id)).await.is_empty());
    assert!(!has_record_listed(&env, &keys, &id).await);
    assert_eq!(waiting_counter(&env, &keys).await, 1);
    assert!(not_found(q.remove_job(&id).await), "removed: no such job");

    let refused = q.remove_job(&running).await;
    assert!(
        matches!(&refused, Err(Error::JobState { state, .. }) if state.starts_with("active")),
        "{refused:?}"
    );
    assert!(
        !key_exists(&env, &keys.job(&running)).await,
        "a refusal makes no record"
    );
    assert_eq!(pending_count(&env, &keys).await, 1);
    assert_eq!(entry(&env, &keys.lane(0), sid_of(&other)).await, ["d", "n"]);
    assert_eq!(waiting_counter(&env, &keys).await, 1);
    let counts = q.counts().await.unwrap();
    assert_eq!((counts.waiting, counts.active), (1, 1));
}

#[tokio::test]
async fn lean_waiting_job_takes_new_data() {
    let env = TestEnv::new().await;
    let (q, keys) = lane_ready(&env, "lean-update").await;
    let id = add_lean(&env, &keys, r#"{"x":1}"#).await;

    q.update_data(&id, &json!({"x": 2})).await.unwrap();
    let job = keys.job(&id);
    assert_eq!(
        field(&env, &job, "data").await.as_deref(),
        Some(r#"{"x":2}"#)
    );
    assert_eq!(
        field(&env, &job, "name").await.as_deref(),
        Some("diag.noop")
    );
    assert_eq!(field(&env, &job, "sid").await.as_deref(), Some(sid_of(&id)));
    // still waiting on its entry, which its record now speaks for
    assert_eq!(entry(&env, &keys.lane(0), sid_of(&id)).await, ["d", "n"]);
    assert!(has_record_listed(&env, &keys, &id).await);
    assert_eq!(waiting_counter(&env, &keys).await, 1);
    let info = q.job(&id).await.unwrap();
    assert_eq!(info.state, JobState::Waiting);
    assert_eq!(info.data, json!({"x": 2}));
    assert_eq!(q.counts().await.unwrap().waiting, 1);
}

#[tokio::test]
async fn lean_waiting_job_changes_priority() {
    let env = TestEnv::new().await;
    let (q, keys) = lane_ready(&env, "lean-priority").await;
    let id = add_lean(&env, &keys, r#"{"x":1}"#).await;

    q.change_priority(&id, 5).await.unwrap();
    let job = keys.job(&id);
    assert_eq!(field(&env, &job, "prio").await.as_deref(), Some("5"));
    assert!(
        entry(&env, &keys.lane(0), sid_of(&id)).await.is_empty(),
        "left lane 0"
    );
    let sid = field(&env, &job, "sid").await.unwrap();
    assert_eq!(entry(&env, &keys.lane(5), &sid).await, ["i"]);
    assert_eq!(waiting_counter(&env, &keys).await, 1);
    let info = q.job(&id).await.unwrap();
    assert_eq!((info.state, info.priority), (JobState::Waiting, 5));
    assert_eq!(info.data, json!({"x": 1}));
    assert_eq!(q.counts().await.unwrap().waiting, 1);
}

#[tokio::test]
async fn lean_running_job_stores_progress_and_logs() {
    let env = TestEnv::new().await;
    let (q, keys) = lane_ready(&env, "lean-progress").await;
    let id = add_lean(&env, &keys, r#"{"x":1}"#).await;
    claim_next(&env, &keys).await;

    assert_eq!(progress(&env, &keys, &id, "50").await, 1);
    assert_eq!(log(&env, &keys, &id, "half way").await, 1);
    assert_eq!(log(&env, &keys, &id, "nearly").await, 2);
    let info = q.job(&id).await.unwrap();
    assert_eq!(info.state, JobState::Active);
    assert_eq!(info.progress, Some(json!(50)));
    assert_eq!(info.logs, ["half way", "nearly"]);
    assert_eq!(info.data, json!({"x": 1}));
    assert!(has_record_listed(&env, &keys, &id).await);
    let counts = q.counts().await.unwrap();
    assert_eq!((counts.waiting, counts.active), (0, 1));
}

#[tokio::test]
async fn finished_lean_job_is_never_brought_back() {
    let env = TestEnv::new().await;
    let (q, keys) = lane_ready(&env, "lean-finished").await;
    let id = add_lean(&env, &keys, r#"{"x":1}"#).await;
    let sid = claim_next(&env, &keys).await;
    ack(&env, &keys, &sid).await;
    // (its entry lingers in the lane until trimmed)
    assert_eq!(entry(&env, &keys.lane(0), &sid).await, ["d", "n"]);
    let before = q.counts().await.unwrap();

    assert!(not_found(q.cancel(&id).await));
    assert!(not_found(q.remove_job(&id).await));
    assert!(not_found(q.update_data(&id, &json!({"x": 2})).await));
    assert!(not_found(q.change_priority(&id, 5).await));
    assert_eq!(progress(&env, &keys, &id, "50").await, 0);
    assert_eq!(log(&env, &keys, &id, "late").await, 0);

    assert!(!key_exists(&env, &keys.job(&id)).await, "no record made");
    assert!(!key_exists(&env, &keys.job_logs(&id)).await);
    assert!(!has_record_listed(&env, &keys, &id).await);
    let after = q.counts().await.unwrap();
    assert_eq!(
        (after.waiting, after.active, after.cancelled),
        (before.waiting, before.active, before.cancelled)
    );
    assert_eq!(waiting_counter(&env, &keys).await, 0);
}

#[tokio::test]
async fn lean_entry_is_named_by_one_id_only() {
    let env = TestEnv::new().await;
    let (q, keys) = lane_ready(&env, "lean-spelling").await;
    let id = add_lean(&env, &keys, r#"{"x":1}"#).await;
    let (ms, seq) = sid_of(&id).split_once('-').unwrap();
    // to Redis these name the same entry; to jobq they are no job
    for other in [
        format!("~00.{ms}-{seq}"),
        format!("~-0.{ms}-{seq}"),
        format!("~0.0{ms}-{seq}"),
        format!("~0.{ms}-0{seq}"),
    ] {
        assert!(not_found(q.cancel(&other).await), "{other}");
        assert!(not_found(q.remove_job(&other).await), "{other}");
        assert!(not_found(q.update_data(&other, &json!(2)).await), "{other}");
        assert_eq!(progress(&env, &keys, &other, "1").await, 0, "{other}");
        assert!(!key_exists(&env, &keys.job(&other)).await, "{other}");
    }
    assert_eq!(entry(&env, &keys.lane(0), sid_of(&id)).await, ["d", "n"]);
    assert!(!key_exists(&env, &keys.job(&id)).await);
    assert_eq!(waiting_counter(&env, &keys).await, 1);
}

#[tokio::test]
async fn drain_takes_lean_jobs_with_their_records() {
    let env = TestEnv::new().await;
    let (q, keys) = lane_ready(&env, "lean-drain").await;
    let bare = add_lean(&env, &keys, r#"{"x":1}"#).await;
    let recorded = add_lean(&env, &keys, r#"{"x":2}"#).await;
    q.update_data(&recorded, &json!({"x": 3})).await.unwrap();
    assert!(has_record_listed(&env, &keys, &recorded).await);

    assert_eq!(q.drain().await.unwrap(), 2);
    assert!(
        !key_exists(&env, &keys.job(&recorded)).await,
        "its record went with it"
    );
    assert!(!key_exists(&env, &keys.job(&bare)).await);
    assert!(!has_record_listed(&env, &keys, &recorded).await);
    assert_eq!(waiting_counter(&env, &keys).await, 0);
    assert_eq!(q.counts().await.unwrap().waiting, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_sweep_leaves_lean_entries_alone() {
    let env = TestEnv::new().await;
    let (q, keys) = lane_ready(&env, "lean-repair").await;
    // paused: the worker runs its sweep and claims nothing
    q.pause().await.unwrap();
    let bare = add_lean(&env, &keys, r#"{"x":1}"#).await;
    let recorded = add_lean(&env, &keys, r#"{"x":2}"#).await;
    q.update_data(&recorded, &json!({"x": 3})).await.unwrap();

    let worker = env
        .worker()
        .queues(["lean-repair"])
        .sweep_interval(Duration::from_millis(20))
        .handler("diag.noop", |_j: Job<Value>, _c: Ctx| async {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    tokio::time::sleep(Duration::from_millis(600)).await;
    guard.stop().await.unwrap();

    let mut raw = env.raw().await;
    let len: i64 = redis::cmd("XLEN")
        .arg(keys.lane(0))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(len, 2, "no entry added or dropped");
    assert_eq!(entry(&env, &keys.lane(0), sid_of(&bare)).await, ["d", "n"]);
    assert_eq!(
        entry(&env, &keys.lane(0), sid_of(&recorded)).await,
        ["d", "n"]
    );
    assert!(!key_exists(&env, &keys.job(&bare)).await);
    assert_eq!(
        field(&env, &keys.job(&recorded), "sid").await.as_deref(),
        Some(sid_of(&recorded))
    );
    assert_eq!(waiting_counter(&env, &keys).await, 2);
    assert_eq!(pending_count(&env, &keys).await, 0);
}
