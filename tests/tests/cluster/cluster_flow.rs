//! A flow across Redis Cluster masters: its parent's queue on one master, its 1,000
//! children's queues on the two others, and the parent's master killed mid-flow (its
//! replica promoted). The children's outcomes reach the parent on the new master; the
//! parent runs once, after the last child, and sees every child completed.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

const CHILDREN: usize = 1_000;
/// How long a child runs: at concurrency 20 the children take about 4 s, longer than the
/// replica takes to be promoted, so their outcomes reach the parent before the kill, while
/// its master is down, and after the promotion.
const CHILD_MS: u64 = 80;

/// The first of `<stem>0`, `<stem>1`… whose slot is served by a master not in `taken`;
/// the name and that master.
fn queue_off(cluster: &RedisCluster, prefix: &str, stem: &str, taken: &[u16]) -> (String, u16) {
    (0..)
        .map(|i| format!("{stem}{i}"))
        .map(|name| {
            let master = cluster.master_of(&format!("{{{prefix}:{name}}}"));
            (name, master)
        })
        .find(|(_, master)| !taken.contains(master))
        .expect("a queue name on another master")
}

/// Completed children so far over the children's queues; None while a read fails.
async fn completed(queues: &[Queue]) -> Option<u64> {
    let mut n = 0;
    for q in queues {
        n += q.counts().await.ok()?.completed_total;
    }
    Some(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_survives_the_failover_of_its_parents_master_and_runs_the_parent_once() {
    let began = Instant::now();
    let mut cluster = RedisCluster::start(3, 1);
    let prefix = fresh_prefix();
    let (parent_name, parent_master) = queue_off(&cluster, &prefix, "fp", &[]);
    let (kid_a, master_a) = queue_off(&cluster, &prefix, "fa", &[parent_master]);
    let (kid_b, _) = queue_off(&cluster, &prefix, "fb", &[parent_master, master_a]);
    let tag = format!("{{{prefix}:{parent_name}}}");
    // every call goes through a node that stays up
    let entry = cluster
        .nodes
        .iter()
        .map(|n| n.port)
        .find(|p| *p != parent_master)
        .unwrap();
    let env = TestEnv::on_prefix(&format!("redis://127.0.0.1:{entry}"), &prefix).await;
    assert!(env.redis.is_cluster());

    let flows = FlowProducer::new(&env.redis, &prefix);
    let tree = flows
        .add(
            FlowJob::new(&parent_name, "collect", &json!({}))
                .unwrap()
                .children((0..CHILDREN).map(|i| {
                    let queue = [&kid_a, &kid_b][i % 2];
                    FlowJob::new(queue.as_str(), "work", &json!({"i": i, "ms": CHILD_MS})).unwrap()
                })),
        )
        .await
        .unwrap();
    let parent_q = env.queue(&parent_name).await;
    let kid_qs = [env.queue(&kid_a).await, env.queue(&kid_b).await];
    assert_eq!(
        parent_q.job(&tree.id).await.unwrap().children_pending,
        Some(CHILDREN as u64)
    );
    // the flow is on the replica before its master goes: this test is about the outcomes
    // delivered around the failover, not about an add the failover took back
    cluster.wait_replicated(parent_master, Duration::from_secs(10));
    let added = Instant::now();

    let runs = Arc::new(AtomicU32::new(0));
    let parent_runs = runs.clone();
    let worker = env
        .worker()
        .queues([&parent_name, &kid_a, &kid_b])
        .concurrency(20)
        // a notification lost with the killed master is only looked for once the parent
        // has waited a minute (its score in the waiting-children set); a short interval
        // makes that look come as soon as it is due
        .flow_check_interval(Duration::from_secs(1))
        .handler("work", |job: Job<Value>, _ctx: Ctx| async move {
            let ms = job.data["ms"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, JobError>(job.data["i"].clone())
        })
        .handler("collect", move |_job: Job<Value>, ctx: Ctx| {
            let runs = parent_runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                let children = ctx.children().await?;
                let completed = children
                    .iter()
                    .filter(|c| c.state == ChildState::Completed)
                    .count();
                Ok::<_, JobError>(json!({"children": children.len(), "completed": completed}))
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);

    eventually(
        Duration::from_secs(30),
        "100 children completed",
        || async { completed(&kid_qs).await.filter(|n| *n >= 100) },
    )
    .await;
    // how many outcomes the parent had counted on the master about to go
    let pending_at_kill = parent_q.job(&tree.id).await.unwrap().children_pending;
    let killed = Instant::now();
    cluster.node(parent_master).kill();
    let at_kill = completed(&kid_qs)
        .await
        .expect("the children's masters are up");
    assert!(
        at_kill < CHILDREN as u64,
        "the master went mid-flow: {at_kill} children had completed"
    );
    let wait_tag = tag.clone();
    let (_cluster, new_master) = tokio::task::spawn_blocking(move || {
        let new = cluster.wait_failover(&wait_tag, parent_master, Duration::from_secs(30));
        (cluster, new)
    })
    .await
    .unwrap();
    let promoted = killed.elapsed();
    let at_promotion = completed(&kid_qs).await.unwrap_or(0);

    let done = wait_job_done(&parent_q, &tree.id, Duration::from_secs(90)).await;
    let parent_done = killed.elapsed();
    assert_eq!(done.state, JobState::Completed, "{done:?}");
    // the safety net looks at a waiting parent only a minute after its flow was added: a
    // parent done sooner had every outcome delivered
    let mended_by = if added.elapsed() < Duration::from_secs(60) {
        "delivery"
    } else {
        "delivery or the safety net"
    };
    eprintln!(
        "parent's master {parent_master} killed with at most {at_kill} of {CHILDREN} children \
         completed ({pending_at_kill:?} pending in the parent); {new_master} promoted \
         after {promoted:?} ({at_promotion} completed); parent done by {mended_by} \
         {parent_done:?} after the kill, {:?} after the add; {:?} in all",
        added.elapsed(),
        began.elapsed()
    );

    // every child completed, once each
    let mut finished = Vec::new();
    let mut seen = BTreeSet::new();
    for q in &kid_qs {
        let c = q.counts().await.unwrap();
        assert_eq!(
            c.completed_total,
            (CHILDREN / 2) as u64,
            "{}: {c:?}",
            q.name()
        );
        assert_eq!(c.failed_total, 0, "{}: {c:?}", q.name());
        for job in q.list_jobs(JobState::Completed, 0, 1_000).await.unwrap() {
            assert_eq!(job.attempts_made, 1, "{job:?}");
            seen.insert(job.data["i"].as_u64().unwrap());
            finished.push(job.finished_at.expect("a completed child has finished"));
        }
    }
    assert_eq!(seen.len(), CHILDREN, "every child completed");

    // the parent ran once, after the last child, and saw every child completed
    let started = done.started_at.expect("the parent started");
    let last = finished.iter().copied().max().unwrap();
    assert!(
        started >= last,
        "the parent started at {started}, before the last child finished at {last}"
    );
    assert_eq!(done.attempts_made, 1, "{done:?}");
    assert_eq!(
        done.return_value,
        Some(json!({"children": CHILDREN, "completed": CHILDREN}))
    );
    let kids = parent_q.children(&tree.id).await.unwrap();
    assert_eq!(kids.len(), CHILDREN);
    assert!(kids.iter().all(|k| k.state == ChildState::Completed));
    // outcomes delivered again (an outbox entry the kill kept from being deleted) change nothing
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the parent ran once");
    let c = parent_q.counts().await.unwrap();
    assert_eq!(
        (c.completed_total, c.failed_total, c.waiting_children),
        (1, 0, 0),
        "{c:?}"
    );

    // the worker goes on working the parent's queue on its new master
    let more = parent_q
        .add("work", &json!({"i": -1}), JobOptions::new())
        .await
        .unwrap();
    let job = wait_job_done(&parent_q, &more.id, Duration::from_secs(10)).await;
    assert_eq!(job.state, JobState::Completed);
    guard.stop().await.unwrap();
}
