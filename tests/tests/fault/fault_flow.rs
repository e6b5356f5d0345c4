//! Flows under faults: workers killed with SIGKILL and Redis killed and restarted (AOF)
//! while a wide flow runs; an add cut off half-way; jobs an add left staged.

use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1000_child_flow_survives_a_worker_sigkill_and_a_redis_restart() {
    const N: usize = 1_000;
    let mut server = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let env = TestEnv::on(&server.url()).await;
    let prefix = env.config.prefix().to_string();
    let flows = FlowProducer::new(&env.redis, &prefix);
    let tree = flows
        .add(
            FlowJob::new("top", "diag.echo", &json!({"parent": true}))
                .unwrap()
                .children((0..N).map(|i| {
                    FlowJob::new(
                        ["kids-a", "kids-b"][i % 2],
                        "diag.sleep",
                        &json!({"ms": 20}),
                    )
                    .unwrap()
                })),
        )
        .await
        .unwrap();
    let (a, b, top) = (
        env.queue("kids-a").await,
        env.queue("kids-b").await,
        env.queue("top").await,
    );
    let args = [
        "--queues",
        "kids-a,kids-b,top",
        "--concurrency",
        "10",
        "--lease",
        "3s",
    ];
    let start = |name: &str| {
        let w = WorkerProcess::start(&server.url(), &prefix, &args);
        eprintln!("started worker {name}");
        w
    };
    let mut first = start("1");
    let _second = start("2");
    let done = || async {
        let (ca, cb) = (a.counts().await.ok()?, b.counts().await.ok()?);
        Some(ca.completed_total + cb.completed_total)
    };
    let at = |n: u64| {
        let done = &done;
        async move {
            eventually(
                Duration::from_secs(30),
                &format!("{n} children done"),
                || async { done().await.filter(|&d| d >= n) },
            )
            .await
        }
    };
    let before_kill = at(200).await;
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(5));
    let _third = start("3");
    let before_restart = at(before_kill + 200).await;
    assert!(
        before_restart < N as u64,
        "every child finished before the restart: it would test nothing"
    );
    server.kill();
    server.restart();
    eprintln!("killed worker 1 at {before_kill} children done, Redis at {before_restart}");

    let t = Instant::now();
    let parent = eventually(Duration::from_secs(90), "the parent to finish", || async {
        let job = top.get_job(&tree.id).await.ok()??;
        (job.state == JobState::Completed || job.state == JobState::Failed).then_some(job)
    })
    .await;
    eprintln!("parent finished {:?} after the restart", t.elapsed());
    assert_eq!(parent.state, JobState::Completed, "{parent:?}");
    assert_eq!(parent.attempts_made, 1, "the parent ran more than once");
    // a second release would have made a second run, or a second entry still waiting
    tokio::time::sleep(Duration::from_secs(3)).await;
    let c = top.counts().await.unwrap();
    assert_eq!((c.completed_total, c.waiting, c.active), (1, 0, 0), "{c:?}");
    let kids = top.children(&tree.id).await.unwrap();
    assert_eq!(kids.len(), N);
    let mut last_finish = 0;
    for k in &kids {
        assert_eq!(k.state, ChildState::Completed, "{k:?}");
        let q = if k.queue == "kids-a" { &a } else { &b };
        let job = q.job(&k.id).await.unwrap();
        last_finish = last_finish.max(job.finished_at.unwrap());
    }
    assert!(
        parent.started_at.unwrap() >= last_finish,
        "the parent started before its last child finished"
    );
}

#[tokio::test]
async fn a_flow_add_cut_off_half_way_leaves_nothing_runnable() {
    let server = RedisServer::start(&[]);
    let proxy = Proxy::start(&server.addr()).await;
    let prefix = fresh_prefix();
    let through = TestEnv::on_prefix(&proxy.url(), &prefix).await;
    let direct = TestEnv::on_prefix(&server.url(), &prefix).await;
    let queues = ["cut-a", "cut-b", "cut-c", "cut-d"];
    let flow = FlowJob::new("cut-top", "diag.echo", &json!({}))
        .unwrap()
        .children((0..4).map(|m| {
            FlowJob::new(queues[m], "diag.echo", &json!({}))
                .unwrap()
                .children((0..5_000).map(|i| {
                    FlowJob::new(queues[(m + i) % 4], "diag.echo", &json!({ "i": i })).unwrap()
                }))
        }));
    let flows = FlowProducer::new(&through.redis, &prefix);
    let add = tokio::spawn(async move { flows.add(flow).await });
    // cut Redis off half-way through the staging (thousands staged, the flow not whole)
    let mut conn = direct.raw().await;
    eventually(Duration::from_secs(20), "4,000 jobs stored", || {
        let mut conn = conn.clone();
        let prefix = prefix.clone();
        async move {
            // stored so far: staged, or (were the add to commit as it goes) in a lane
            let mut stored = 0;
            for q in queues {
                let (staged, lane): (u64, u64) = redis::pipe()
                    .cmd("ZCARD")
                    .arg(format!("{{{prefix}:{q}}}:staged"))
                    .cmd("XLEN")
                    .arg(format!("{{{prefix}:{q}}}:ready:0"))
                    .query_async(&mut conn)
                    .await
                    .ok()?;
                stored += staged + lane;
            }
            (stored >= 4_000).then_some(())
        }
    })
    .await;
    proxy.partition(true);
    let cut = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(180), add)
        .await
        .expect("the add gives up")
        .unwrap();
    eprintln!(
        "the add gave up {:?} after the cut: {result:?}",
        cut.elapsed()
    );
    assert!(
        result.is_err(),
        "the add finished before the cut: {result:?}"
    );
    let mut all = queues.to_vec();
    all.push("cut-top");
    let mut staged_total = 0;
    for q in &all {
        let c = direct.queue(q).await.counts().await.unwrap();
        assert_eq!(
            (c.waiting, c.active, c.delayed, c.waiting_children),
            (0, 0, 0, 0),
            "{q}: {c:?}"
        );
        let n: u64 = redis::cmd("ZCARD")
            .arg(format!("{{{prefix}:{q}}}:staged"))
            .query_async(&mut conn)
            .await
            .unwrap();
        staged_total += n;
    }
    assert!(
        staged_total > 0,
        "the cut left nothing staged: it tested nothing"
    );
    // a staged job, shown, says it is staged (uncounted and unlisted, as above), where it
    // used to show as a plain `waiting_children` job the counts and listings did not have
    for q in &all {
        let one: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("{{{prefix}:{q}}}:staged"))
            .arg(0)
            .arg(0)
            .query_async(&mut conn)
            .await
            .unwrap();
        if let Some(id) = one.first() {
            let job = direct.queue(q).await.job(id).await.unwrap();
            assert!(job.staged, "{q}/{id}: {job:?}");
        }
    }
    // a worker runs nothing of it
    let worker = direct
        .worker()
        .queues(all.iter().copied())
        .handler(
            "diag.echo",
            |_job: Job<serde_json::Value>, _ctx: Ctx| async move { Ok::<_, JobError>(()) },
        )
        .flow_check_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for q in &all {
        let c = direct.queue(q).await.counts().await.unwrap();
        assert_eq!(c.completed_total + c.failed_total, 0, "{q} ran jobs: {c:?}");
    }
    // ten minutes later (made now), the workers take the staged jobs back
    for q in &all {
        let key = format!("{{{prefix}:{q}}}:staged");
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap();
        for id in ids {
            let _: i64 = redis::cmd("ZADD")
                .arg(&key)
                .arg(1)
                .arg(&id)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    }
    eventually(
        Duration::from_secs(60),
        "every staged job taken back",
        || {
            let mut conn = conn.clone();
            let prefix = prefix.clone();
            let all = all.clone();
            async move {
                for q in all {
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("{{{prefix}:{q}}}:*"))
                        .query_async(&mut conn)
                        .await
                        .ok()?;
                    let jobs = keys
                        .iter()
                        .filter(|k| k.contains(":j:") || k.contains(":kids:"))
                        .count();
                    if jobs > 0 {
                        return None;
                    }
                }
                Some(())
            }
        },
    )
    .await;
    guard.stop().await.unwrap();
}

#[tokio::test]
async fn jobs_left_staged_are_committed_under_their_own_committed_root_and_dropped_otherwise() {
    let env = TestEnv::new().await;
    let prefix = env.config.prefix().to_string();
    let mut conn = env.raw().await;
    // a committed root (waiting for one child), and a staged child of it, as an add that
    // died between the root's commit and its children's would leave them
    let flows = FlowProducer::new(&env.redis, &prefix);
    let tree = flows
        .add(
            FlowJob::new("st-top", "echo", &json!({}))
                .unwrap()
                .child(FlowJob::new("st", "echo", &json!({"n": 1})).unwrap()),
        )
        .await
        .unwrap();
    let child = &tree.children[0].id;
    let st = env.queue("st").await;
    // take the child's commit back by hand: no lane entry, staged again (by the add that
    // staged its root, whose token the root keeps), long ago
    let job_key = format!("{{{prefix}:st}}:j:{child}");
    let token: String = redis::cmd("HGET")
        .arg(format!("{{{prefix}:st-top}}:j:{}", tree.id))
        .arg("tok")
        .query_async(&mut conn)
        .await
        .unwrap();
    let sid: String = redis::cmd("HGET")
        .arg(&job_key)
        .arg("sid")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::pipe()
        .cmd("XDEL")
        .arg(format!("{{{prefix}:st}}:ready:0"))
        .arg(&sid)
        .ignore()
        .cmd("HINCRBY")
        .arg(format!("{{{prefix}:st}}:meta"))
        .arg("waiting")
        .arg(-1)
        .ignore()
        .cmd("HSET")
        .arg(&job_key)
        .arg("state")
        .arg("waiting_children")
        .arg("stg")
        .arg(&token)
        .ignore()
        .cmd("HDEL")
        .arg(&job_key)
        .arg("sid")
        .ignore()
        .cmd("ZADD")
        .arg(format!("{{{prefix}:st}}:staged"))
        .arg(1)
        .arg(child)
        .ignore()
        // and an orphan: staged under a root that was never committed (gone)
        .cmd("HSET")
        .arg(format!("{{{prefix}:st}}:j:orphan"))
        .arg("name")
        .arg("echo")
        .arg("data")
        .arg("{}")
        .arg("state")
        .arg("waiting_children")
        .arg("stg")
        .arg("dead-add")
        .arg("par")
        .arg("st-top/never")
        .arg("rt")
        .arg("st-top/never")
        .ignore()
        .cmd("ZADD")
        .arg(format!("{{{prefix}:st}}:staged"))
        .arg(1)
        .arg("orphan")
        .ignore()
        // and a leftover of an earlier, failed add that used the same root id: staged by
        // another token under the committed root
        .cmd("HSET")
        .arg(format!("{{{prefix}:st}}:j:stale"))
        .arg("name")
        .arg("echo")
        .arg("data")
        .arg("{}")
        .arg("state")
        .arg("waiting_children")
        .arg("stg")
        .arg("an-earlier-add")
        .arg("par")
        .arg(format!("st-top/{}", tree.id))
        .arg("rt")
        .arg(format!("st-top/{}", tree.id))
        .ignore()
        .cmd("ZADD")
        .arg(format!("{{{prefix}:st}}:staged"))
        .arg(1)
        .arg("stale")
        .ignore()
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        st.job(child).await.unwrap().state,
        JobState::WaitingChildren
    );
    let worker = env
        .worker()
        .queues(["st", "st-top"])
        .handler(
            "echo",
            |job: Job<serde_json::Value>, _ctx: Ctx| async move { Ok::<_, JobError>(job.data) },
        )
        .flow_check_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let parent = wait_job_done(
        &env.queue("st-top").await,
        &tree.id,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(parent.state, JobState::Completed);
    assert_eq!(st.job(child).await.unwrap().state, JobState::Completed);
    eventually(
        Duration::from_secs(5),
        "the orphan and the stale job taken back",
        || async {
            let orphan = st.get_job("orphan").await.ok()?;
            let stale = st.get_job("stale").await.ok()?;
            (orphan.is_none() && stale.is_none()).then_some(())
        },
    )
    .await;
    assert_eq!(
        st.counts().await.unwrap().completed_total,
        1,
        "a leftover ran"
    );
    guard.stop().await.unwrap();
}

/// A parent that left the waiting-children set (deleted by hand) and whose child is gone
/// without a word would wait for ever: the consistency sweep puts it back, and the safety
/// net then finds the child gone. Own Redis: the sweep SCANs the whole key space.
#[tokio::test]
async fn a_parent_lost_from_the_waiting_children_set_is_put_back_by_the_sweep() {
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let prefix = env.config.prefix().to_string();
    let tree = FlowProducer::new(&env.redis, &prefix)
        .add(
            FlowJob::new("sw-top", "echo", &json!({}))
                .unwrap()
                .child(FlowJob::new("sw", "echo", &json!({})).unwrap()),
        )
        .await
        .unwrap();
    let mut conn = env.raw().await;
    let _: () = redis::pipe()
        .cmd("ZREM")
        .arg(format!("{{{prefix}:sw-top}}:wc"))
        .arg(&tree.id)
        .ignore()
        .cmd("DEL")
        .arg(format!("{{{prefix}:sw}}:j:{}", tree.children[0].id))
        .ignore()
        .query_async(&mut conn)
        .await
        .unwrap();
    let worker = env
        .worker()
        .queues(["sw-top"])
        .sweep_interval(Duration::from_millis(100))
        .flow_check_interval(Duration::from_millis(100))
        .handler(
            "echo",
            |job: Job<serde_json::Value>, _ctx: Ctx| async move { Ok::<_, JobError>(job.data) },
        )
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let top = env.queue("sw-top").await;
    let done = wait_job_done(&top, &tree.id, Duration::from_secs(20)).await;
    assert_eq!(done.state, JobState::Completed);
    let kids = top.children(&tree.id).await.unwrap();
    assert_eq!(kids[0].state, ChildState::Removed);
    guard.stop().await.unwrap();
}

/// A cancel walk of a nested flow cut short (the client gone, Redis restarted) after it
/// cancelled a child that is itself a parent, before that child's own children: cancelling
/// the top parent again must reach them, whether the cancelled child's outcome was already
/// delivered to the top parent (its entry there no longer pending) or not yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_again_reaches_the_grandchildren_of_a_nested_walk_cut_short() {
    const Q: &str = "cut-walk";
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let flows = FlowProducer::new(&env.redis, env.config.prefix());
    let sub = |tag: &str| {
        FlowJob::new(Q, "work", &json!(tag))
            .unwrap()
            .children((0..2).map(|i| FlowJob::new(Q, "work", &json!(i)).unwrap()))
    };
    let tree = flows
        .add(
            FlowJob::new(Q, "work", &json!("top"))
                .unwrap()
                .child(sub("delivered"))
                .child(sub("undelivered")),
        )
        .await
        .unwrap();
    let (top, delivered, undelivered) = (&tree.id, &tree.children[0], &tree.children[1]);
    // as a walk leaves them when cut short after the two sub-parents: top and both
    // sub-parents cancelled, none of their children reached; the first sub-parent's
    // outcome delivered to top (its entry 'x'), the second's not yet (still 'p')
    let keys = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), Q);
    let mut raw = env.raw().await;
    for id in [top, &delivered.id, &undelivered.id] {
        let _: () = redis::pipe()
            .hset(keys.job(id), "state", "cancelled")
            .zrem(keys.waiting_children(), id)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let field = format!("{Q}/{}", delivered.id);
    let entry: String = redis::cmd("HGET")
        .arg(keys.job_kids(top))
        .arg(&field)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(entry.starts_with('p'), "{entry:?}");
    let _: () = redis::cmd("HSET")
        .arg(keys.job_kids(top))
        .arg(&field)
        .arg(format!("x{}\nit was cancelled", &entry[1..]))
        .query_async(&mut raw)
        .await
        .unwrap();

    assert_eq!(q.cancel(top).await.unwrap(), Cancelled::Now { children: 4 });
    for kid in delivered.children.iter().chain(&undelivered.children) {
        assert_eq!(
            q.job(&kid.id).await.unwrap().state,
            JobState::Cancelled,
            "grandchild {} left to run",
            kid.id
        );
    }
    // nothing left to walk: a plain refusal again
    let again = q.cancel(top).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict, "{again:?}");
}
