//! The fast claim (`claim_fast.lua`: a plain `XREADGROUP` of one lane between a gate and a
//! seal, in one transaction): it claims what the usual claim (`move_to_active`) would, with
//! the same checks and counts (entries with a record claimed as the usual claim claims them,
//! orphan and stray entries dropped, corrupt lean entries failed alone naming the field,
//! `waiting` exact); when the usual claim would have done something else (the queue paused
//! or limited, a group, a due job, a lean job with a record, a higher lane with entries, a
//! new lane) it claims nothing and leaves every entry as it was; and a busy worker, which
//! claims fast, starts nothing once its queue is paused.

use std::collections::HashSet;
use std::time::Duration;

use jobq_tests::*;
use queue_core::internal::claims::{self, Claimed};
use queue_core::internal::keys::{QueueKeys, GROUP};
use queue_core::*;
use serde_json::{json, Value};

const CONSUMER: &str = "fast-claim-test";

/// The queue's `waiting` counter and the entries pending in its lane `prio`.
async fn waiting_and_pending(env: &TestEnv, keys: &QueueKeys, prio: i32) -> (i64, i64) {
    let mut raw = env.raw().await;
    let waiting: Option<i64> = redis::cmd("HGET")
        .arg(keys.meta())
        .arg("waiting")
        .query_async(&mut raw)
        .await
        .unwrap();
    let pending: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(keys.lane(prio))
        .arg(GROUP)
        .query_async(&mut raw)
        .await
        .unwrap();
    let pending = match pending.first() {
        Some(redis::Value::Int(n)) => *n,
        other => panic!("XPENDING answered {other:?}"),
    };
    (waiting.unwrap_or(0), pending)
}

/// Adds `n` plain (lean) jobs named `work`; their ids.
async fn add_work(q: &Queue, n: usize, opts: JobOptions) -> Vec<String> {
    let jobs = (0..n)
        .map(|i| NewJob::new("work", &json!({ "i": i }), opts.clone()).unwrap())
        .collect();
    add_all(q, jobs).await
}

fn ids(c: &Claimed) -> Vec<String> {
    c.jobs.iter().map(|j| j.id.clone()).collect()
}

/// Entries of every kind in one lane, claimed fast: lean jobs as they are, a job with a
/// record as the usual claim claims it, an entry whose job is gone and a stray entry dropped
/// (acknowledged and deleted), corrupt lean entries claimed with a note naming the field;
/// all in the order of their entries, and every entry read counted out of `waiting`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_claim_claims_every_kind_of_entry_as_the_usual_claim_would() {
    let env = TestEnv::new().await;
    let q = env.queue("fast-mix").await;
    let keys = QueueKeys::new(env.config.prefix(), "fast-mix");
    let first = add_work(&q, 2, JobOptions::new()).await;
    // the usual claim first: it opens the lane's group and says the next may be fast
    let usual = claims::usual(&q, CONSUMER, 1).await.unwrap();
    assert_eq!(ids(&usual), first[..1]);
    assert_eq!(
        usual.fast,
        Some(0),
        "nothing but lane entries stood in the way"
    );

    let stored = q
        .add(
            "work",
            &json!({"kind": "stored"}),
            JobOptions::new().job_id("with-a-record"),
        )
        .await
        .unwrap();
    // an entry naming a job that is gone, and an entry that is no job's (written and
    // counted as an add would)
    add_lean_by_hand(&env, &keys, 0, &[("i", b"gone")]).await;
    add_lean_by_hand(&env, &keys, 0, &[("x", b"y")]).await;
    let long_name = vec![b'n'; 300];
    let bad_name = add_lean_by_hand(&env, &keys, 0, &[("n", &long_name), ("d", b"{}")]).await;
    let no_data = add_lean_by_hand(&env, &keys, 0, &[("n", b"work")]).await;
    let last = add_work(&q, 1, JobOptions::new()).await;

    let c = claims::fast(&q, CONSUMER, 100, 0)
        .await
        .unwrap()
        .expect("claimed fast");
    let want: Vec<String> = [&first[1], &stored.id, &bad_name, &no_data, &last[0]]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(ids(&c), want, "the jobs, in the order of their entries");
    assert_eq!(c.fast, Some(0));
    let by_id = |id: &str| c.jobs.iter().find(|j| j.id == id).unwrap().clone();
    assert_eq!(by_id(&stored.id).data, r#"{"kind":"stored"}"#);
    assert_eq!(by_id(&stored.id).attempt, 1);
    assert!(by_id(&first[1]).corrupt.is_none());
    assert_eq!(
        by_id(&bad_name).corrupt.as_deref(),
        Some("field name is 300 bytes, not 1 to 256")
    );
    assert_eq!(
        by_id(&no_data).corrupt.as_deref(),
        Some("field data is missing")
    );
    // seven entries read: all counted out of waiting; the two that were no job's dropped
    assert_eq!(waiting_and_pending(&env, &keys, 0).await, (0, 6));
    let len: i64 = redis::cmd("XLEN")
        .arg(keys.lane(0))
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    assert_eq!(len, 6, "the orphan and stray entries are deleted");
    let counts = q.counts().await.unwrap();
    assert_eq!((counts.waiting, counts.active), (0, 6));
    // every job claimed has its `active` event, once (the lean ones' written by the worker)
    let mut want: Vec<String> = want.into_iter().chain([first[0].clone()]).collect();
    want.sort();
    let mut follower = EventFollower::new(&env.redis, env.config.prefix());
    follower
        .follow(&["fast-mix".to_string()], StartAt::Beginning)
        .await
        .unwrap();
    let mut active = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while active.len() < want.len() && tokio::time::Instant::now() < deadline {
        for e in follower
            .next(Duration::from_millis(50), 1000)
            .await
            .unwrap()
        {
            if e.event == "active" {
                active.extend(e.job_ids);
            }
        }
    }
    active.sort();
    assert_eq!(active, want);
}

/// A change the usual claim would have acted on, made after a full claim: the fast claim
/// then claims nothing, and the lane's entries are as they were (none pending but the one
/// claimed before, `waiting` unchanged); the usual claim then takes them, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_claim_the_usual_claim_would_not_make_gives_back_all_it_read() {
    let env = TestEnv::new().await;
    type Change = fn(Queue) -> futures_util::future::BoxFuture<'static, ()>;
    // (what, the change, the veto's reason)
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "paused",
            |q| Box::pin(async move { q.pause().await.unwrap() }),
            "paused",
        ),
        (
            "rate limited",
            |q| {
                Box::pin(async move {
                    q.set_rate_limit(1000, Duration::from_secs(1))
                        .await
                        .unwrap()
                })
            },
            "limits",
        ),
        (
            "a new lane",
            |q| {
                Box::pin(async move {
                    add_work(&q, 1, JobOptions::new().priority(7)).await;
                })
            },
            "lanes",
        ),
        (
            "a grouped job",
            |q| {
                Box::pin(async move {
                    add_work(&q, 1, JobOptions::new().group("tenant-a")).await;
                })
            },
            "groups",
        ),
        (
            "a due delayed job",
            |q| {
                Box::pin(async move {
                    add_work(&q, 1, JobOptions::new().delay(Duration::from_millis(1))).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                })
            },
            "due",
        ),
        (
            "a lean job given a record",
            |q| {
                Box::pin(async move {
                    let id = q.list_jobs(JobState::Waiting, 0, 1).await.unwrap()[0]
                        .id
                        .clone();
                    q.update_data(&id, &json!({"updated": true})).await.unwrap();
                })
            },
            "lean records",
        ),
    ];
    for (what, change, reason) in cases {
        let name = format!("fast-veto-{}", what.replace(' ', "-"));
        let q = env.queue(&name).await;
        let keys = QueueKeys::new(env.config.prefix(), &name);
        let added = add_work(&q, 5, JobOptions::new()).await;
        let usual = claims::usual(&q, CONSUMER, 1).await.unwrap();
        assert_eq!(usual.fast, Some(0), "{what}");
        change(q.clone()).await;
        let before = waiting_and_pending(&env, &keys, 0).await;
        let c = claims::fast(&q, CONSUMER, 100, 0).await.unwrap();
        assert_eq!(c.as_ref().err().map(String::as_str), Some(reason), "{what}");
        assert_eq!(
            waiting_and_pending(&env, &keys, 0).await,
            before,
            "{what}: every entry read was given back"
        );
        assert_eq!(
            before.1, 1,
            "{what}: only the job claimed before is pending"
        );
        if what == "paused" {
            q.resume().await.unwrap();
        }
        // the usual claim takes them, each once (a due or grouped job's too)
        let rest = claims::usual(&q, CONSUMER, 100).await.unwrap();
        let mut got: HashSet<String> = ids(&rest).into_iter().collect();
        let again = claims::usual(&q, CONSUMER, 100).await.unwrap();
        got.extend(ids(&again));
        for id in &added[1..] {
            assert!(got.contains(id), "{what}: {id} claimed after the veto");
        }
        assert_eq!(
            q.counts().await.unwrap().waiting,
            0,
            "{what}: all claimed, counted once"
        );
    }
}

/// A higher lane with an entry its group has not delivered: the fast claim of a lower lane
/// claims nothing (the usual claim would take the higher job first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_claim_below_a_lane_with_waiting_jobs_claims_nothing() {
    let env = TestEnv::new().await;
    let q = env.queue("fast-higher").await;
    let keys = QueueKeys::new(env.config.prefix(), "fast-higher");
    add_work(&q, 1, JobOptions::new().priority(5)).await;
    add_work(&q, 3, JobOptions::new()).await;
    // both lanes known; the one job of lane 5 claimed, then another added there
    let usual = claims::usual(&q, CONSUMER, 2).await.unwrap();
    assert_eq!(usual.fast, Some(0));
    let high = add_work(&q, 1, JobOptions::new().priority(5)).await;
    let c = claims::fast(&q, CONSUMER, 100, 0).await.unwrap();
    assert_eq!(c.err().as_deref(), Some("higher lane"));
    assert_eq!(waiting_and_pending(&env, &keys, 0).await, (3, 1));
    let next = claims::usual(&q, CONSUMER, 1).await.unwrap();
    assert_eq!(ids(&next), high, "the higher job goes first");
}

/// A worker with more jobs than its batches claims fast, and once the queue is paused it starts nothing more: `waiting` stays
/// where the pause found it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_claiming_fast_starts_nothing_once_its_queue_is_paused() {
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("fast-pause").await;
    add_work(
        &q,
        30_000,
        JobOptions::new().remove_on_complete(Retention::REMOVE),
    )
    .await;
    let worker = env
        .worker()
        .queues(["fast-pause"])
        .concurrency(50)
        .handler("work", |_j: Job<Value>, _c: Ctx| async move {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_finished(&q, 3_000, Duration::from_secs(30)).await;
    q.pause().await.unwrap();
    // (the queue's counter: a paused queue lists its waiting jobs as paused)
    let keys = QueueKeys::new(env.config.prefix(), "fast-pause");
    let (at_pause, _) = waiting_and_pending(&env, &keys, 0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (later, _) = waiting_and_pending(&env, &keys, 0).await;
    guard.stop().await.unwrap();
    assert!(at_pause > 0, "jobs left to claim at the pause");
    assert_eq!(later, at_pause, "nothing claimed after the pause");
    let mut raw = env.raw().await;
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut raw)
        .await
        .unwrap();
    // (the fast claim's scripts are the only ones sent whole, by EVAL: two a claim)
    let fast_claims = stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_eval:calls="))
        .and_then(|rest| rest.split(',').next()?.parse::<u64>().ok())
        .unwrap_or(0)
        / 2;
    assert!(
        fast_claims >= 3,
        "the worker claimed fast: {fast_claims} fast claims"
    );
}

/// A lean job's trace context comes with a fast claim as with the usual one, with options
/// or without (its entry then holds `t` where `o` would be).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_claim_keeps_each_lean_jobs_trace_context() {
    let env = TestEnv::new().await;
    let q = env.queue("fast-trace").await;
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    add_work(&q, 1, JobOptions::new()).await;
    claims::usual(&q, CONSUMER, 1).await.unwrap();
    let plain = add_work(&q, 1, JobOptions::new().traceparent(tp)).await;
    let with_opts = add_work(
        &q,
        1,
        JobOptions::new()
            .traceparent(tp)
            .remove_on_complete(Retention::REMOVE),
    )
    .await;
    let c = claims::fast(&q, CONSUMER, 10, 0).await.unwrap().unwrap();
    assert_eq!(ids(&c), [plain[0].clone(), with_opts[0].clone()]);
    for j in &c.jobs {
        assert_eq!(j.traceparent.as_deref(), Some(tp), "{}", j.id);
    }
}

/// On a RESP3 connection (`?protocol=resp3`, where Redis answers a read of streams with a
/// map) a fast claim claims as on RESP2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_claim_on_a_resp3_connection_claims_as_on_resp2() {
    let url = format!("{}?protocol=resp3", shared_url());
    let env = TestEnv::on(&url).await;
    let q = env.queue("fast-resp3").await;
    let added = add_work(&q, 4, JobOptions::new()).await;
    claims::usual(&q, CONSUMER, 1).await.unwrap();
    let c = claims::fast(&q, CONSUMER, 10, 0).await.unwrap().unwrap();
    assert_eq!(ids(&c), added[1..]);
}

/// A stray entry in the group lane (which the usual claim reads only when a group has a
/// turn) does not stop fast claims: the group lane is no higher lane to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stray_entry_in_the_group_lane_does_not_veto_fast_claims() {
    let env = TestEnv::new().await;
    let q = env.queue("fast-grouplane").await;
    let keys = QueueKeys::new(env.config.prefix(), "fast-grouplane");
    // a grouped job claimed (the group lane opened), then a stray entry there
    add_work(&q, 1, JobOptions::new().group("tenant-a")).await;
    assert_eq!(claims::usual(&q, CONSUMER, 1).await.unwrap().jobs.len(), 1);
    let _: String = redis::cmd("XADD")
        .arg(keys.lane(queue_core::internal::keys::GROUP_LANE))
        .arg("*")
        .arg("i")
        .arg("stray")
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    let added = add_work(&q, 3, JobOptions::new()).await;
    let usual = claims::usual(&q, CONSUMER, 1).await.unwrap();
    assert_eq!(usual.fast, Some(0));
    let c = claims::fast(&q, CONSUMER, 2, 0).await.unwrap();
    assert_eq!(c.map(|c| ids(&c)), Ok(added[1..].to_vec()));
}

/// Entries a fast claim read without counting them out of `waiting` (Redis refused the
/// gate's note: maxmemory reached between the transaction's queueing and its run) go back
/// without being counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_read_but_not_counted_go_back_counted_once() {
    let env = TestEnv::new().await;
    let q = env.queue("fast-uncounted").await;
    let keys = QueueKeys::new(env.config.prefix(), "fast-uncounted");
    add_work(&q, 3, JobOptions::new()).await;
    // the group opened; then all three read as the fast claim's transaction reads them,
    // with nothing counted
    claims::usual(&q, CONSUMER, 0).await.unwrap();
    let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg(CONSUMER)
        .arg("COUNT")
        .arg(10)
        .arg("STREAMS")
        .arg(keys.lane(0))
        .arg(">")
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    let read: Vec<(i32, String)> = reply.keys[0]
        .ids
        .iter()
        .map(|e| (0, e.id.clone()))
        .collect();
    assert_eq!(waiting_and_pending(&env, &keys, 0).await, (3, 3));
    let back = claims::give_back(&q, CONSUMER, &read).await.unwrap();
    assert_eq!(back, 3);
    assert_eq!(q.counts().await.unwrap().waiting, 3, "each counted once");
    let again = claims::usual(&q, CONSUMER, 10).await.unwrap();
    assert_eq!(again.jobs.len(), 3);
    assert_eq!(q.counts().await.unwrap().waiting, 0);
}
