//! Groups on a Redis Cluster: every key of a queue's groups is under the queue's hash tag,
//! so grouped queues on three masters run with fair turns and per-group limits, and leave
//! no group key behind; a debounce moves a waiting job out of its lane or group there too.

use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_queues_on_three_masters_run_every_job_within_their_group_limits() {
    let cluster = RedisCluster::start(3, 0);
    let prefix = fresh_prefix();
    let env = TestEnv::on_prefix(&cluster.url(0), &prefix).await;
    let mut queues = Vec::new();
    let mut masters = std::collections::BTreeSet::new();
    for i in 0.. {
        let name = format!("g{i}");
        if masters.insert(cluster.master_of(&format!("{{{prefix}:{name}}}"))) {
            queues.push(name);
        }
        if queues.len() == 3 {
            break;
        }
    }
    for name in &queues {
        let q = env.queue(name).await;
        q.set_group_limit(None, GroupLimitChange::Concurrency(2))
            .await
            .unwrap();
        let jobs = (0..60)
            .map(|i| {
                let g = format!("t{}", i % 4);
                NewJob::new("work", &json!({}), JobOptions::new().group(g)).unwrap()
            })
            .collect();
        q.add_bulk(jobs).await.unwrap();
    }
    let worker = env
        .worker()
        .queues(queues.iter().map(String::as_str))
        .concurrency(16)
        .handler("work", |_job: Job<Value>, _ctx: Ctx| async {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    for name in &queues {
        let q = env.queue(name).await;
        let c = wait_finished(&q, 60, Duration::from_secs(30)).await;
        assert_eq!(
            (c.completed_total, c.waiting, c.active),
            (60, 0, 0),
            "{name}: {c:?}"
        );
        let view = q.groups(10).await.unwrap();
        assert_eq!(
            (view.with_waiting, view.with_active),
            (0, 0),
            "{name}: {view:?}"
        );
    }
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debounced_adds_move_waiting_jobs_out_of_their_lane_and_group_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0);
    let env = TestEnv::on_prefix(&cluster.url(0), &fresh_prefix()).await;
    let q = env.queue("deb").await;
    let mut kept = Vec::new();
    for (i, opts) in [JobOptions::new(), JobOptions::new().group("t1")]
        .into_iter()
        .enumerate()
    {
        let id = format!("d{i}");
        let opts = opts.debounce(&id, Duration::from_secs(60));
        let first = q.add("work", &json!(1), opts.clone()).await.unwrap();
        // waiting, then moved to the delayed set (its lane entry or group place gone)
        let again = q
            .add("work", &json!(2), opts.delay(Duration::from_millis(200)))
            .await
            .unwrap();
        assert!(again.debounced && again.id == first.id, "{again:?}");
        kept.push(first.id);
    }
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.delayed), (0, 2), "{c:?}");
    let worker = env
        .worker()
        .queues(["deb"])
        .handler("work", |job: Job<Value>, _ctx: Ctx| async move {
            Ok::<_, JobError>(job.data)
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    for id in &kept {
        let done = wait_job_done(&q, id, Duration::from_secs(10)).await;
        assert_eq!(done.return_value, Some(json!(2)));
    }
    guard.stop().await.unwrap();
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.waiting, c.delayed, c.completed_total),
        (0, 0, 2),
        "{c:?}"
    );
}
