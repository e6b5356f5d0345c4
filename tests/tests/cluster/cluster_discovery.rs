//! Workers and Redis at a glance on a Redis Cluster: the worker registry is one slot, so a
//! worker is listed and leaves as on one server, and a running job names it; the overview
//! reports every master, each with its own warnings.

use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_are_listed_and_every_master_is_reported_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0);
    let prefix = fresh_prefix();
    let url = cluster.url(0);
    let env = TestEnv::on_prefix(&url, &prefix).await;

    // one entry per master, each with its numbers and its own warnings
    let view = env.redis.overview().await.unwrap();
    assert!(view.cluster);
    let mut ports: Vec<u16> = view
        .nodes
        .iter()
        .map(|n| n.node.rsplit(':').next().unwrap().parse().unwrap())
        .collect();
    ports.sort();
    let mut want: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    want.sort();
    assert_eq!(ports, want, "{view:?}");
    for n in &view.nodes {
        assert_eq!(n.error, None, "{n:?}");
        assert!(
            !n.version.is_empty() && n.memory.used_bytes > Some(0),
            "{n:?}"
        );
        assert_eq!(n.memory.policy, "noeviction");
        assert!(!n.aof.enabled && n.warnings.len() == 1, "{n:?}");
    }
    assert_eq!(view.warnings.len(), 3, "{:?}", view.warnings);
    for (w, n) in view.warnings.iter().zip(&view.nodes) {
        assert!(w.starts_with(&format!("{}: AOF is off", n.node)), "{w}");
    }
    assert!(env.redis.server_info().await.unwrap().cluster_enabled);

    // a worker process is listed, names the job it runs, and leaves when stopped
    let mut worker =
        WorkerProcess::start(&url, &prefix, &["--queues", "diag", "--heartbeat", "200ms"]);
    let pid = worker.child.id();
    let id = eventually(Duration::from_secs(20), "the worker listed", || async {
        let list = list_workers(&env.redis, &prefix).await.ok()?;
        (list.len() == 1 && list[0].pid == pid).then(|| list[0].id.clone())
    })
    .await;
    let q = env.queue("diag").await;
    let job = q
        .add("diag.sleep", &json!({"ms": 20_000}), JobOptions::new())
        .await
        .unwrap();
    wait_active(&q, 1, Duration::from_secs(15)).await;
    assert_eq!(q.job(&job.id).await.unwrap().worker, Some(id));
    q.cancel(&job.id).await.unwrap();
    worker.signal("TERM");
    assert_eq!(worker.wait_exit(Duration::from_secs(15)), Some(0));
    assert_eq!(list_workers(&env.redis, &prefix).await.unwrap(), vec![]);
}
