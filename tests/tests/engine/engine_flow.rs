//! Flows: parents that wait for their children, across queues.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

/// A worker of `queues` whose `work` jobs sleep `data.ms` then return `data` (or fail with
/// `data.fail` when set), and whose `collect` jobs return their children's outcomes;
/// `collected` counts the runs of `collect`.
fn flow_worker(env: &TestEnv, queues: &[&str], collected: Arc<AtomicU32>) -> Worker {
    flow_worker_from(env.worker().queues(queues.iter().copied()), collected)
}

/// A `collect` parent on queue `fp`, to give children.
fn parent() -> FlowJob {
    FlowJob::new("fp", "collect", &json!({})).unwrap()
}

/// Adds `flow` under the test's prefix.
async fn add(env: &TestEnv, flow: FlowJob) -> FlowTree {
    FlowProducer::new(&env.redis, env.config.prefix())
        .add(flow)
        .await
        .unwrap()
}

fn work(queue: &str, data: Value) -> FlowJob {
    FlowJob::new(queue, "work", &data).unwrap()
}

#[tokio::test]
async fn a_parent_runs_after_its_last_child_across_three_queues() {
    let env = TestEnv::new().await;
    let tree = add(
        &env,
        parent()
            .child(work("fa", json!({"ms": 50, "n": 1})))
            .child(work("fb", json!({"ms": 150, "n": 2})))
            .child(work("fc", json!({"ms": 0, "n": 3}))),
    )
    .await;
    assert_eq!(tree.children.len(), 3);
    let parent_q = env.queue("fp").await;
    let parent = parent_q.job(&tree.id).await.unwrap();
    assert_eq!(parent.state, JobState::WaitingChildren);
    assert_eq!(parent.children_pending, Some(3));
    assert_eq!(parent_q.counts().await.unwrap().waiting_children, 1);
    let child = env
        .queue("fb")
        .await
        .job(&tree.children[1].id)
        .await
        .unwrap();
    assert_eq!(
        child.parent,
        Some(JobRef {
            queue: "fp".into(),
            id: tree.id.clone()
        })
    );

    let collected = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(flow_worker(
        &env,
        &["fp", "fa", "fb", "fc"],
        collected.clone(),
    ));
    let done = wait_job_done(&parent_q, &tree.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed, "{done:?}");
    assert_eq!(collected.load(Ordering::SeqCst), 1);
    let started = done.started_at.unwrap();
    for (i, c) in tree.children.iter().enumerate() {
        let child = env.queue(&c.queue).await.job(&c.id).await.unwrap();
        assert!(
            child.finished_at.unwrap() <= started,
            "child {i} finished at {:?}, after the parent started at {started}",
            child.finished_at
        );
    }
    let seen = &done.return_value.unwrap()["children"];
    let seen = seen.as_array().unwrap();
    assert_eq!(seen.len(), 3);
    for (i, c) in seen.iter().enumerate() {
        assert_eq!(c["queue"], tree.children[i].queue);
        assert_eq!(c["id"], tree.children[i].id);
        assert_eq!(c["name"], "work");
        assert_eq!(c["state"], "completed");
        assert_eq!(c["return_value"]["n"], i + 1);
    }
    assert_eq!(parent_q.counts().await.unwrap().waiting_children, 0);
    guard.stop().await.unwrap();
}

#[tokio::test]
async fn a_failed_child_fails_its_parent_unrun_by_default() {
    let env = TestEnv::new().await;
    let tree = add(
        &env,
        parent()
            .child(work("fa", json!({"ms": 300})))
            .child(work("fb", json!({"fail": "boom"}))),
    )
    .await;
    let collected = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(flow_worker(&env, &["fp", "fa", "fb"], collected.clone()));
    let parent_q = env.queue("fp").await;
    let done = wait_job_done(&parent_q, &tree.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Failed);
    assert_eq!(
        done.failed_reason.as_deref(),
        Some(format!("child fb/{} failed: boom", tree.children[1].id).as_str())
    );
    // the other child still runs; the parent never does
    wait_job_done(
        &env.queue("fa").await,
        &tree.children[0].id,
        Duration::from_secs(10),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(collected.load(Ordering::SeqCst), 0);
    let kids = parent_q.children(&tree.id).await.unwrap();
    assert_eq!(kids[0].state, ChildState::Completed);
    assert_eq!(kids[1].state, ChildState::Failed);
    assert_eq!(kids[1].failed_reason.as_deref(), Some("boom"));
    guard.stop().await.unwrap();
}

#[tokio::test]
async fn an_ignoring_parent_runs_and_sees_the_failure_after_retries() {
    let env = TestEnv::new().await;
    let tree = add(
        &env,
        parent()
            .opts(JobOptions::new().on_child_failure(OnChildFailure::Ignore))
            .child(work("fa", json!({"ms": 10})))
            .child(work("fb", json!({"fail": "still broken"})).opts(JobOptions::new().attempts(3))),
    )
    .await;
    let collected = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(flow_worker(&env, &["fp", "fa", "fb"], collected.clone()));
    let parent_q = env.queue("fp").await;
    let done = wait_job_done(&parent_q, &tree.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed, "{done:?}");
    assert_eq!(collected.load(Ordering::SeqCst), 1);
    let failed = env
        .queue("fb")
        .await
        .job(&tree.children[1].id)
        .await
        .unwrap();
    assert_eq!(
        failed.attempts_made, 3,
        "retries come before the child counts"
    );
    let seen = &done.return_value.unwrap()["children"];
    assert_eq!(seen[0]["state"], "completed");
    assert_eq!(seen[1]["state"], "failed");
    assert_eq!(seen[1]["failed_reason"], "still broken");
    guard.stop().await.unwrap();
}

#[tokio::test]
async fn grandchildren_finish_before_children_start() {
    let env = TestEnv::new().await;
    let tree = add(
        &env,
        parent()
            .child(
                FlowJob::new("fa", "collect", &json!({}))
                    .unwrap()
                    .child(work("fb", json!({"ms": 100})))
                    .child(work("fc", json!({"ms": 20}))),
            )
            .child(work("fa", json!({"ms": 10}))),
    )
    .await;
    let collected = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(flow_worker(
        &env,
        &["fp", "fa", "fb", "fc"],
        collected.clone(),
    ));
    let root = wait_job_done(&env.queue("fp").await, &tree.id, Duration::from_secs(10)).await;
    assert_eq!(root.state, JobState::Completed, "{root:?}");
    let mid = &tree.children[0];
    let mid_job = env.queue("fa").await.job(&mid.id).await.unwrap();
    for leaf in &mid.children {
        let leaf_job = env.queue(&leaf.queue).await.job(&leaf.id).await.unwrap();
        assert!(leaf_job.finished_at.unwrap() <= mid_job.started_at.unwrap());
    }
    assert!(mid_job.finished_at.unwrap() <= root.started_at.unwrap());
    // the middle parent's outcome (its own children's outcomes) reaches the root
    let seen = &root.return_value.unwrap()["children"];
    assert_eq!(seen[0]["return_value"]["children"][1]["state"], "completed");
    assert_eq!(collected.load(Ordering::SeqCst), 2);
    guard.stop().await.unwrap();
}

#[tokio::test]
async fn a_removed_child_counts_as_finished_and_retention_keeps_outcomes() {
    let env = TestEnv::new().await;
    let tree = add(
        &env,
        parent()
            // nobody works queue "idle": this child would wait for ever
            .child(work("idle", json!({})))
            .child(
                work("fa", json!({"n": 7}))
                    .opts(JobOptions::new().remove_on_complete(Retention::REMOVE)),
            ),
    )
    .await;
    let collected = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(flow_worker(&env, &["fp", "fa"], collected.clone()));
    let fa = env.queue("fa").await;
    eventually(
        Duration::from_secs(5),
        "the kept child to finish",
        || async { (fa.counts().await.ok()?.completed_total == 1).then_some(()) },
    )
    .await;
    // removed at once by its retention, but its parent has its outcome
    assert!(fa.get_job(&tree.children[1].id).await.unwrap().is_none());
    let parent_q = env.queue("fp").await;
    assert_eq!(
        parent_q.job(&tree.id).await.unwrap().state,
        JobState::WaitingChildren
    );
    env.queue("idle")
        .await
        .remove_job(&tree.children[0].id)
        .await
        .unwrap();
    let done = wait_job_done(&parent_q, &tree.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed, "{done:?}");
    let seen = &done.return_value.unwrap()["children"];
    assert_eq!(seen[0]["state"], "removed");
    assert_eq!(seen[1]["state"], "completed");
    assert_eq!(seen[1]["return_value"]["n"], 7);
    guard.stop().await.unwrap();
}

#[tokio::test]
async fn a_taken_id_stores_nothing_of_the_flow() {
    let env = TestEnv::new().await;
    let fa = env.queue("fa").await;
    fa.add("work", &json!({}), JobOptions::new().job_id("mine"))
        .await
        .unwrap();
    let flows = FlowProducer::new(&env.redis, env.config.prefix());
    let err = flows
        .add(
            FlowJob::new("fp", "collect", &json!({}))
                .unwrap()
                .children((0..2500).map(|i| work("fb", json!({ "i": i }))))
                .child(work("fa", json!({})).opts(JobOptions::new().job_id("mine"))),
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("flow node root.children[2500]") && text.contains("\"mine\" is taken"),
        "{text}"
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let mut conn = env.raw().await;
    for q in ["fp", "fb"] {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{{{}:{q}}}:*", env.config.prefix()))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(keys.is_empty(), "left behind in {q}: {keys:?}");
    }
    // the job that held the id is untouched
    assert_eq!(fa.job("mine").await.unwrap().state, JobState::Waiting);
}

#[tokio::test]
async fn ten_thousand_children_fan_in() {
    let env = TestEnv::new().await;
    let flows = FlowProducer::new(&env.redis, env.config.prefix());
    let started = std::time::Instant::now();
    let tree = flows
        .add(
            FlowJob::new("fp", "collect", &json!({}))
                .unwrap()
                .children((0..10_000).map(|i| work(["fa", "fb"][i % 2], json!({ "i": i })))),
        )
        .await
        .unwrap();
    let took = started.elapsed();
    eprintln!("10,000-child flow added in {took:?} (debug build)");
    assert!(took < Duration::from_secs(20), "{took:?}");
    let parent_q = env.queue("fp").await;
    assert_eq!(
        parent_q.job(&tree.id).await.unwrap().children_pending,
        Some(10_000)
    );
    let collected = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(flow_worker(&env, &["fp", "fa", "fb"], collected.clone()));
    let done = wait_job_done(&parent_q, &tree.id, Duration::from_secs(60)).await;
    assert_eq!(done.state, JobState::Completed);
    let seen = done.return_value.unwrap()["children"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(seen.len(), 10_000);
    for (i, c) in seen.iter().enumerate() {
        assert_eq!(
            c["return_value"]["i"], i,
            "children come in the flow's order"
        );
    }
    assert_eq!(collected.load(Ordering::SeqCst), 1);
    guard.stop().await.unwrap();
}

#[tokio::test]
async fn a_lost_notification_is_mended_by_looking_up_the_children() {
    let env = TestEnv::new().await;
    let tree = add(
        &env,
        parent()
            .child(work("fa", json!({"n": 1})))
            .child(work("fa", json!({"n": 2}))),
    )
    .await;
    let prefix = env.config.prefix().to_string();
    let mut conn = env.raw().await;
    // a child deleted by hand (as if its queue were obliterated) never notifies
    let _: i64 = redis::cmd("DEL")
        .arg(format!("{{{prefix}:fa}}:j:{}", tree.children[0].id))
        .query_async(&mut conn)
        .await
        .unwrap();
    let fa = env.queue("fa").await;
    let collected = Arc::new(AtomicU32::new(0));
    let worker = env
        .worker()
        .queues(["fa", "fp"])
        .flow_check_interval(Duration::from_millis(100));
    let guard = spawn_worker(flow_worker_from(worker, collected.clone()));
    wait_finished(&fa, 1, Duration::from_secs(5)).await;
    let parent_q = env.queue("fp").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        parent_q.job(&tree.id).await.unwrap().state,
        JobState::WaitingChildren,
        "the parent waits until someone looks"
    );
    // a minute later (made now), the safety net looks the children up
    let _: i64 = redis::cmd("ZADD")
        .arg(format!("{{{prefix}:fp}}:wc"))
        .arg(0)
        .arg(&tree.id)
        .query_async(&mut conn)
        .await
        .unwrap();
    let done = wait_job_done(&parent_q, &tree.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed);
    let seen = &done.return_value.unwrap()["children"];
    assert_eq!(seen[0]["state"], "removed");
    assert_eq!(seen[1]["state"], "completed");
    assert_eq!(collected.load(Ordering::SeqCst), 1);
    guard.stop().await.unwrap();
}

/// [`flow_worker`]'s handlers on a given builder.
fn flow_worker_from(builder: WorkerBuilder, collected: Arc<AtomicU32>) -> Worker {
    builder
        .concurrency(20)
        .handler("work", |job: Job<Value>, _ctx: Ctx| async move {
            let ms = job.data["ms"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            if let Some(e) = job.data["fail"].as_str() {
                return Err(JobError::new(e));
            }
            Ok::<_, JobError>(job.data)
        })
        .handler("collect", move |_job: Job<Value>, ctx: Ctx| {
            let collected = collected.clone();
            async move {
                collected.fetch_add(1, Ordering::SeqCst);
                Ok::<_, JobError>(json!({ "children": ctx.children().await? }))
            }
        })
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_outcome_delivered_twice_counts_once() {
    let env = TestEnv::new().await;
    let tree = add(
        &env,
        parent()
            .child(work("fa", json!({"n": 1})))
            // nobody works queue "idle" until the end
            .child(work("idle", json!({"n": 2}))),
    )
    .await;
    let collected = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(flow_worker(&env, &["fp", "fa"], collected.clone()));
    let parent_q = env.queue("fp").await;
    eventually(
        Duration::from_secs(5),
        "the first child counted",
        || async {
            let p = parent_q.job(&tree.id).await.ok()?;
            (p.children_pending == Some(1)).then_some(())
        },
    )
    .await;
    // the same outcome again, as a worker killed between delivering it and deleting it
    // from the outbox leaves it
    let mut conn = env.raw().await;
    for _ in 0..3 {
        let _: String = redis::cmd("XADD")
            .arg(format!("{{{}:fa}}:outbox", env.config.prefix()))
            .arg("*")
            .arg("c")
            .arg(&tree.children[0].id)
            .arg("p")
            .arg(format!("fp/{}", tree.id))
            .arg("s")
            .arg("c")
            .arg("v")
            .arg("{}")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    eventually(Duration::from_secs(10), "the copies delivered", || async {
        let n: u64 = redis::cmd("XLEN")
            .arg(format!("{{{}:fa}}:outbox", env.config.prefix()))
            .query_async(&mut env.raw().await)
            .await
            .ok()?;
        (n == 0).then_some(())
    })
    .await;
    let p = parent_q.job(&tree.id).await.unwrap();
    assert_eq!(p.state, JobState::WaitingChildren, "released early: {p:?}");
    assert_eq!(p.children_pending, Some(1));
    // the real last child releases it, once
    let guard2 = spawn_worker(flow_worker(&env, &["idle"], collected.clone()));
    let done = wait_job_done(&parent_q, &tree.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(collected.load(Ordering::SeqCst), 1);
    assert_eq!(parent_q.counts().await.unwrap().completed_total, 1);
    guard.stop().await.unwrap();
    guard2.stop().await.unwrap();
}

/// The widest flow there may be, with sizeable data: 10,000 children of 2 KiB each added,
/// run, delivered to their parent and read back by it, with no script call or command
/// blocking Redis for 50 ms (measured by Redis, with the slowlog). Runs alone (see
/// .config/nextest.toml).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowlog_a_10000_child_flow_never_blocks_redis_for_50ms() {
    let server = RedisServer::start_logging_slow_calls();
    let env = TestEnv::on(&server.url()).await;
    let flows = FlowProducer::new(&env.redis, env.config.prefix());
    let text = "x".repeat(2048);
    let tree = flows
        .add(FlowJob::new("fp", "collect", &json!({})).unwrap().children(
            (0..10_000).map(|i| work(["fa", "fb"][i % 2], json!({ "i": i, "text": text }))),
        ))
        .await
        .unwrap();
    // the parent reads every outcome (20 MB) and returns a summary
    let worker = env
        .worker()
        .queues(["fp", "fa", "fb"])
        .concurrency(20)
        .handler("work", |job: Job<Value>, _ctx: Ctx| async move {
            Ok::<_, JobError>(job.data)
        })
        .handler("collect", |_job: Job<Value>, ctx: Ctx| async move {
            let children = ctx.children().await?;
            let done = children
                .iter()
                .filter(|c| c.state == ChildState::Completed)
                .count();
            Ok::<_, JobError>(json!({ "completed": done }))
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let parent_q = env.queue("fp").await;
    let done = wait_job_done(&parent_q, &tree.id, Duration::from_secs(120)).await;
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.return_value, Some(json!({"completed": 10_000})));
    guard.stop().await.unwrap();
    let (calls, worst) = slowest_call(&mut env.raw().await).await;
    eprintln!(
        "10,000-child flow: {calls} calls over 5 ms, the longest {} µs ({})",
        worst.0, worst.1
    );
    assert!(
        worst.0 < 50_000,
        "a call blocked Redis for {} µs: {}",
        worst.0,
        worst.1
    );
}

/// Writes outbox entry `c <child> p <parent> s <state> v <value>` in `queue` by hand.
async fn outbox_entry(env: &TestEnv, queue: &str, child: &str, parent: &str, s: &str, v: &str) {
    let _: String = redis::cmd("XADD")
        .arg(format!("{{{}:{queue}}}:outbox", env.config.prefix()))
        .arg("*")
        .arg("c")
        .arg(child)
        .arg("p")
        .arg(parent)
        .arg("s")
        .arg(s)
        .arg("v")
        .arg(v)
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_corrupt_parent_never_holds_back_the_parents_settled_with_it() {
    let env = TestEnv::new().await;
    let flows = FlowProducer::new(&env.redis, env.config.prefix());
    let delayed = JobOptions::new().delay(Duration::from_secs(3600));
    let mut trees = Vec::new();
    for _ in 0..2 {
        trees.push(
            flows
                .add(
                    FlowJob::new("fp", "collect", &json!({}))
                        .unwrap()
                        .child(work("fa", json!({})).opts(delayed.clone())),
                )
                .await
                .unwrap(),
        );
    }
    let (bad, good) = (&trees[0], &trees[1]);
    // the first parent's record is not a hash any more
    let _: () = redis::cmd("SET")
        .arg(format!("{{{}:fp}}:j:{}", env.config.prefix(), bad.id))
        .arg("garbage")
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    // both children's outcomes, delivered in one call, the corrupt parent's first
    for t in [bad, good] {
        let parent = format!("fp/{}", t.id);
        outbox_entry(&env, "fa", &t.children[0].id, &parent, "c", "{}").await;
    }
    let guard = spawn_worker(flow_worker(
        &env,
        &["fp", "fa"],
        Arc::new(AtomicU32::new(0)),
    ));
    let done = wait_job_done(&env.queue("fp").await, &good.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed);
    guard.stop().await.unwrap();
}

/// A child's entry in its parent's children hash that is neither pending (`p…`) nor an
/// outcome (a corrupt record) still counts the child when it finishes: it used to be
/// skipped, and the parent waited for its last child for ever.
#[tokio::test]
async fn a_corrupt_child_entry_still_counts_its_child_and_the_parent_runs() {
    let env = TestEnv::new().await;
    let tree = add(
        &env,
        parent()
            .child(work("fa", json!({"n": 1})))
            .child(work("fa", json!({"n": 2}))),
    )
    .await;
    let kids =
        queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "fp").job_kids(&tree.id);
    let _: i64 = redis::cmd("HSET")
        .arg(&kids)
        .arg(format!("fa/{}", tree.children[1].id))
        .arg("zzz")
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    let collected = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(flow_worker(&env, &["fp", "fa"], collected.clone()));
    let done = wait_job_done(&env.queue("fp").await, &tree.id, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert_eq!(done.state, JobState::Completed, "{done:?}");
    assert_eq!(done.children_pending, Some(0), "{done:?}");
    assert_eq!(collected.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_outbox_key_that_is_not_a_stream_stops_no_outcome_and_is_started_again() {
    let env = TestEnv::new().await;
    let flows = FlowProducer::new(&env.redis, env.config.prefix());
    let tree = flows
        .add(
            FlowJob::new("fp", "collect", &json!({})).unwrap().child(
                work("fa", json!({"n": 5}))
                    .opts(JobOptions::new().remove_on_complete(Retention::REMOVE)),
            ),
        )
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{{{}:fa}}:outbox", env.config.prefix()))
        .arg("garbage")
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    let fa = env.queue("fa").await;
    for i in 0..5 {
        fa.add("work", &json!({ "i": i }), JobOptions::new())
            .await
            .unwrap();
    }
    let guard = spawn_worker(flow_worker(
        &env,
        &["fp", "fa"],
        Arc::new(AtomicU32::new(0)),
    ));
    let c = wait_finished(&fa, 6, Duration::from_secs(10)).await;
    assert_eq!((c.completed_total, c.active), (6, 0), "{c:?}");
    let parent_q = env.queue("fp").await;
    let done = wait_job_done(&parent_q, &tree.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(
        done.return_value.unwrap()["children"][0]["return_value"]["n"],
        5
    );
    guard.stop().await.unwrap();
}

#[tokio::test]
async fn a_look_at_a_parents_children_delivers_their_outboxes_first() {
    let env = TestEnv::new().await;
    let tree = add(&env, parent().child(work("fa", json!({})))).await;
    // as a worker of `fa` killed right after recording the child leaves it: failed for
    // good and removed by its retention in that call, its outcome only in the outbox
    let child = &tree.children[0].id;
    let _: i64 = redis::cmd("DEL")
        .arg(format!("{{{}:fa}}:j:{child}", env.config.prefix()))
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    outbox_entry(&env, "fa", child, &format!("fp/{}", tree.id), "f", "boom").await;
    let _: i64 = redis::cmd("ZADD")
        .arg(format!("{{{}:fp}}:wc", env.config.prefix()))
        .arg(0)
        .arg(&tree.id)
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    // only the parent's queue is worked: its look at the children finds the outcome
    let worker = env
        .worker()
        .queues(["fp"])
        .flow_check_interval(Duration::from_millis(100));
    let guard = spawn_worker(flow_worker_from(worker, Arc::new(AtomicU32::new(0))));
    let parent_q = env.queue("fp").await;
    let done = wait_job_done(&parent_q, &tree.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Failed, "{done:?}");
    assert_eq!(
        done.failed_reason.as_deref(),
        Some(format!("child fa/{child} failed: boom").as_str())
    );
    guard.stop().await.unwrap();
}

/// A parent whose children's record is of the wrong type (a corrupt record: a string where
/// the hash of its children's outcomes belongs) can never count its children down: it
/// fails alone when the first of them finishes, naming the record, and `show` / the job
/// page still read it (no children listed). It used to wait for ever, and the safety net
/// retried it every 10 s as if Redis were down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_whose_childrens_record_is_corrupt_fails_alone_naming_it() {
    let env = TestEnv::new().await;
    let tree = add(
        &env,
        parent()
            .child(work("fa", json!({"ms": 0, "n": 1})))
            .child(work("fa", json!({"ms": 0, "n": 2}))),
    )
    .await;
    let other = add(&env, parent().child(work("fa", json!({"ms": 0, "n": 3})))).await;
    let kids =
        queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "fp").job_kids(&tree.id);
    let mut raw = env.raw().await;
    let _: () = redis::cmd("DEL")
        .arg(&kids)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(&kids)
        .arg("junk")
        .query_async(&mut raw)
        .await
        .unwrap();
    let fp = env.queue("fp").await;
    assert!(fp.children(&tree.id).await.unwrap().is_empty());
    let collected = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(flow_worker(&env, &["fp", "fa"], collected.clone()));
    let failed = wait_job_done(&fp, &tree.id, Duration::from_secs(10)).await;
    let fine = wait_job_done(&fp, &other.id, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert_eq!(failed.state, JobState::Failed);
    let reason = failed.failed_reason.unwrap_or_default();
    assert!(
        reason.contains(&kids) && reason.contains("is a string, not a hash"),
        "{reason}"
    );
    assert_eq!(fine.state, JobState::Completed);
    assert_eq!(
        collected.load(Ordering::SeqCst),
        1,
        "only the sound parent ran"
    );
}

/// A flow parent's children hash goes with it: when the parent is removed by an operator
/// (`delete_job`) and when its retention deletes it as it completes (`delete_jobs`). (Lean
/// jobs, whose ids start with `~`, never have one: deleting their records skips it.)
#[tokio::test]
async fn a_parents_children_hash_goes_with_it_removed_or_trimmed() {
    let env = TestEnv::new().await;
    let kids_of = |id: &str| {
        queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "fp").job_kids(id)
    };
    let removed = add(&env, parent().child(work("fa", json!({"n": 1})))).await;
    let trimmed = add(
        &env,
        parent()
            .opts(JobOptions::new().remove_on_complete(Retention::REMOVE))
            .child(work("fa", json!({"n": 2}))),
    )
    .await;
    for tree in [&removed, &trimmed] {
        assert!(
            key_exists(&env, &kids_of(&tree.id)).await,
            "no children hash to test"
        );
    }
    let collected = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(flow_worker(&env, &["fp", "fa"], collected.clone()));
    let fp = env.queue("fp").await;
    wait_job_done(&fp, &removed.id, Duration::from_secs(10)).await;
    eventually(
        Duration::from_secs(10),
        "the trimmed parent deleted",
        || async { fp.get_job(&trimmed.id).await.ok()?.is_none().then_some(()) },
    )
    .await;
    guard.stop().await.unwrap();
    fp.remove_job(&removed.id).await.unwrap();
    for tree in [&removed, &trimmed] {
        let kids = kids_of(&tree.id);
        assert!(!key_exists(&env, &kids).await, "{kids} left behind");
    }
}
