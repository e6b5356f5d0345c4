//! jobq on a Redis Cluster with no change but the URL: jobs of queues on different masters
//! (added with `jobq add-bulk`, run by `jobq-worker`, delayed and retried ones among them),
//! a master failover and a slot moving to another master in the middle of the work, and
//! the operations that look at every node (following events, obliterating a queue, invalidating a cache prefix).

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

fn jobq(url: &str, prefix: &str, args: &[&str]) -> Output {
    let out = Command::new(bin_path("jobq"))
        .args(["--redis-url", url, "--prefix", prefix])
        .args(args)
        .env("JOBQ_FALLBACK", "error")
        .stdin(Stdio::null())
        .output()
        .expect("run jobq");
    assert!(
        out.status.success(),
        "jobq {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `jobq stats --json`: one JSON line per queue.
fn stats(url: &str, prefix: &str) -> Vec<Value> {
    let out = jobq(url, prefix, &["stats", "--json"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("stats --json lines are JSON"))
        .collect()
}

fn completed_totals(url: &str, prefix: &str) -> u64 {
    stats(url, prefix)
        .iter()
        .map(|s| s["completed_total"].as_u64().unwrap_or(0))
        .sum()
}

/// `count` queue names whose slots are served by as many different masters as possible
/// (all of them when `count` ≥ masters).
fn spread_queues(cluster: &RedisCluster, prefix: &str, count: usize) -> Vec<String> {
    let mut by_master: Vec<(u16, String)> = Vec::new();
    let mut spare = Vec::new();
    for i in 0.. {
        let name = format!("q{i}");
        let master = cluster.master_of(&format!("{{{prefix}:{name}}}"));
        if by_master.iter().any(|(m, _)| *m == master) {
            spare.push(name);
        } else {
            by_master.push((master, name));
        }
        if by_master.len() + spare.len() >= count && by_master.len() >= count.min(3) {
            break;
        }
    }
    by_master
        .into_iter()
        .map(|(_, n)| n)
        .chain(spare)
        .take(count)
        .collect()
}

fn write_lines(dir: &TempDir, name: &str, lines: &[Value]) -> String {
    let path = dir.path().join(name);
    let mut f = std::fs::File::create(&path).expect("create jsonl");
    for l in lines {
        writeln!(f, "{l}").expect("write jsonl");
    }
    path.display().to_string()
}

async fn eventually_completed(url: &str, prefix: &str, want: u64, timeout: Duration) {
    let (url, prefix) = (url.to_string(), prefix.to_string());
    eventually(timeout, &format!("{want} jobs completed"), || {
        let (url, prefix) = (url.clone(), prefix.clone());
        async move {
            let done = tokio::task::spawn_blocking(move || completed_totals(&url, &prefix))
                .await
                .unwrap();
            (done >= want).then_some(done)
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_jobs_over_four_queues_on_three_masters_complete_through_the_cli_and_worker() {
    let cluster = RedisCluster::start(3, 0);
    let prefix = fresh_prefix();
    let queues = spread_queues(&cluster, &prefix, 4);
    let masters: BTreeSet<u16> = queues
        .iter()
        .map(|q| cluster.master_of(&format!("{{{prefix}:{q}}}")))
        .collect();
    assert_eq!(masters.len(), 3, "the four queues span every master");

    // per queue: 230 no-ops, 10 delayed, 10 that fail once and succeed on their retry
    let dir = TempDir::new("cluster-jobs");
    for q in &queues {
        let mut lines = Vec::new();
        for i in 0..230 {
            lines.push(json!({"name": "diag.noop", "data": {"i": i}}));
        }
        for i in 0..10 {
            lines.push(json!({"name": "diag.noop", "data": {"d": i}, "opts": {"delay": 300}}));
        }
        for _ in 0..10 {
            lines.push(json!({
                "name": "diag.fail",
                "data": {"times": 1},
                "opts": {"attempts": 3, "backoff": {"type": "fixed", "delay": 100}}
            }));
        }
        let file = write_lines(&dir, &format!("{q}.jsonl"), &lines);
        // every CLI call goes through node 1, whichever master holds the queue
        jobq(&cluster.url(1), &prefix, &["add-bulk", q, &file]);
    }
    let listed: Vec<String> = stats(&cluster.url(0), &prefix)
        .iter()
        .map(|s| s["queue"].as_str().unwrap_or_default().to_string())
        .collect();
    let mut want = queues.clone();
    want.sort();
    assert_eq!(listed, want, "stats lists the queues of every master");

    let mut worker = WorkerProcess::start(
        &cluster.url(2),
        &prefix,
        &["--queues", &queues.join(","), "--concurrency", "50"],
    );
    eventually_completed(&cluster.url(0), &prefix, 1_000, Duration::from_secs(60)).await;
    for s in stats(&cluster.url(0), &prefix) {
        assert_eq!(s["completed_total"], 250, "{s}");
        assert_eq!(s["failed_total"], 0, "{s}");
        assert_eq!(s["waiting"], 0, "{s}");
        assert_eq!(s["delayed"], 0, "{s}");
    }
    // the retried jobs ran twice: their first attempt failed
    let env = TestEnv::on_prefix(&cluster.url(0), &prefix).await;
    let q = env.queue(&queues[0]).await;
    let done = q.list_jobs(JobState::Completed, 0, 1_000).await.unwrap();
    let retried = done.iter().filter(|j| j.name == "diag.fail").count();
    assert_eq!(retried, 10);
    assert!(done
        .iter()
        .filter(|j| j.name == "diag.fail")
        .all(|j| j.attempts_made == 2));
    assert!(worker.is_running(), "{}", worker.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_failover_mid_work_loses_no_job() {
    let mut cluster = RedisCluster::start(3, 1);
    let prefix = fresh_prefix();
    let queue = spread_queues(&cluster, &prefix, 1).remove(0);
    let tag = format!("{{{prefix}:{queue}}}");
    let master = cluster.master_of(&tag);
    let entry = cluster
        .nodes
        .iter()
        .map(|n| n.port)
        .find(|p| *p != master)
        .unwrap();
    let url = format!("redis://127.0.0.1:{entry}");

    let dir = TempDir::new("cluster-failover");
    // (988 and the 12 added during the failover: the 1,000 completed jobs retention keeps)
    let lines: Vec<Value> = (0..988)
        .map(|i| json!({"name": "diag.sleep", "data": {"ms": 20, "i": i}}))
        .collect();
    let file = write_lines(&dir, "jobs.jsonl", &lines);
    jobq(&url, &prefix, &["add-bulk", &queue, &file]);
    // the adds are on the replica before the master goes (replication is asynchronous; a
    // WAIT from another connection would not wait for them)
    cluster.wait_replicated(master, Duration::from_secs(10));

    let mut worker =
        WorkerProcess::start(&url, &prefix, &["--queues", &queue, "--concurrency", "10"]);
    eventually_completed(&url, &prefix, 150, Duration::from_secs(30)).await;
    let killed = std::time::Instant::now();
    cluster.node(master).kill();
    // adds while the slot's master is dead and not failed over yet (the other nodes answer
    // MOVED to it): each is stored or spooled, never refused and lost
    let spool = dir.path().join("spool");
    let adds = {
        let (url, prefix, queue, spool) =
            (url.clone(), prefix.clone(), queue.clone(), spool.clone());
        tokio::task::spawn_blocking(move || {
            let mut ids = Vec::new();
            for i in 0..12 {
                let id = format!("during-failover-{i}");
                let out = Command::new(bin_path("jobq"))
                    .args(["--redis-url", &url, "--prefix", &prefix])
                    .args(["add", &queue, "diag.noop", "--job-id", &id])
                    .env("JOBQ_FALLBACK", "spool")
                    .env("JOBQ_SPOOL_DIR", &spool)
                    .stdin(Stdio::null())
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "add {id} during the failover: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                ids.push(id);
                std::thread::sleep(Duration::from_millis(200));
            }
            ids
        })
    };
    let _cluster = tokio::task::spawn_blocking(move || {
        cluster.wait_failover(&tag, master, Duration::from_secs(30));
        cluster
    })
    .await
    .unwrap();
    let promoted = killed.elapsed();
    let during = adds.await.unwrap();
    let replayed = Command::new(bin_path("jobq"))
        .args(["--redis-url", &url, "--prefix", &prefix, "spool", "replay"])
        .env("JOBQ_SPOOL_DIR", &spool)
        .output()
        .unwrap();
    assert!(replayed.status.success(), "{replayed:?}");

    eventually_completed(&url, &prefix, 1_000, Duration::from_secs(90)).await;
    eprintln!(
        "master killed; replica promoted after {promoted:?}; all jobs completed {:?} after the kill",
        killed.elapsed()
    );
    let s = stats(&url, &prefix);
    assert_eq!(s[0]["completed_total"], 1_000, "{s:?}");
    assert_eq!(s[0]["failed_total"], 0, "{s:?}");
    let env = TestEnv::on_prefix(&url, &prefix).await;
    let q = env.queue(&queue).await;
    let done = q.list_jobs(JobState::Completed, 0, 1_000).await.unwrap();
    let distinct: BTreeSet<i64> = done.iter().filter_map(|j| j.data["i"].as_i64()).collect();
    assert_eq!(distinct.len(), 988, "every job completed");
    for id in &during {
        assert_eq!(q.job(id).await.unwrap().state, JobState::Completed, "{id}");
    }
    assert!(worker.is_running(), "{}", worker.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_whose_slot_moves_to_another_master_mid_work_completes_every_job() {
    let cluster = RedisCluster::start(3, 0);
    let prefix = fresh_prefix();
    let queue = spread_queues(&cluster, &prefix, 1).remove(0);
    let tag = format!("{{{prefix}:{queue}}}");
    let from = cluster.master_of(&tag);
    let to = cluster
        .nodes
        .iter()
        .map(|n| n.port)
        .find(|p| *p != from)
        .unwrap();
    let url = cluster.url(0);

    let dir = TempDir::new("cluster-reshard");
    let lines: Vec<Value> = (0..1_000)
        .map(|i| json!({"name": "diag.sleep", "data": {"ms": 10, "i": i}}))
        .collect();
    let file = write_lines(&dir, "jobs.jsonl", &lines);
    jobq(&url, &prefix, &["add-bulk", &queue, &file]);
    let mut worker =
        WorkerProcess::start(&url, &prefix, &["--queues", &queue, "--concurrency", "10"]);
    eventually_completed(&url, &prefix, 100, Duration::from_secs(30)).await;
    let (moved_tag, cluster) = (tag.clone(), cluster);
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.move_slot(&moved_tag, to);
        cluster
    })
    .await
    .unwrap();
    assert_eq!(cluster.master_of(&tag), to, "the slot moved");
    // jobs added while and after it moved go to the new master
    jobq(
        &url,
        &prefix,
        &["add", &queue, "diag.noop", "--data", r#"{"i": 1000}"#],
    );

    eventually_completed(&url, &prefix, 1_001, Duration::from_secs(60)).await;
    let s = stats(&url, &prefix);
    assert_eq!(s[0]["completed_total"], 1_001, "{s:?}");
    assert_eq!(s[0]["failed_total"], 0, "{s:?}");
    assert!(worker.is_running(), "{}", worker.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_obliterate_and_cache_invalidation_reach_every_master() {
    let mut cluster = RedisCluster::start(3, 0);
    // a master with no slots yet: nothing to scan there, and no reason to fail
    let empty = cluster.add_empty_master();
    let prefix = fresh_prefix();
    let names = spread_queues(&cluster, &prefix, 3);
    let env = TestEnv::on_prefix(&cluster.url(0), &prefix).await;
    assert!(env.redis.is_cluster());

    let mut follower = EventFollower::new(&env.redis, &prefix);
    follower.follow(&names, StartAt::End).await.unwrap();
    for n in &names {
        env.queue(n)
            .await
            .add("diag.noop", &json!({}), JobOptions::new())
            .await
            .unwrap();
    }
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        for e in follower
            .next(Duration::from_millis(500), 100)
            .await
            .unwrap()
        {
            if e.event == "added" {
                seen.insert(e.queue);
            }
        }
        if seen.len() == names.len() {
            break;
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), names);

    // a cache's keys land on every master; invalidating a prefix finds them all
    let cache = Cache::new(env.redis.clone(), &prefix, "t");
    for i in 0..60 {
        cache
            .set(&format!("user:{i}"), &i, Duration::from_secs(60))
            .await
            .unwrap();
    }
    cache
        .set("other", &1, Duration::from_secs(60))
        .await
        .unwrap();
    let holders: BTreeSet<u16> = (0..60)
        .map(|i| cluster.master_of(&format!("{prefix}:cache:t:user:{i}")))
        .collect();
    assert_eq!(holders.len(), 3, "the cache keys are on every master");
    assert!(!holders.contains(&empty));
    assert_eq!(cache.invalidate_prefix("user:").await.unwrap(), 60);
    assert_eq!(cache.peek::<i32>("other").await.unwrap(), Some(1));

    let q = env.queue(&names[1]).await;
    assert!(q.obliterate(true).await.unwrap() > 0);
    let counts = q.counts().await.unwrap();
    assert_eq!((counts.waiting, counts.completed_total), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_info_is_used_as_a_standalone_one() {
    // managed services may restrict INFO; cluster detection must not stop jobq there
    let server = RedisServer::start(&["--rename-command", "INFO", ""]);
    let env = TestEnv::on_prefix(&server.url(), &fresh_prefix()).await;
    assert!(!env.redis.is_cluster());
    let q = env.queue("plain").await;
    let added = q.add("n", &json!({}), JobOptions::new()).await.unwrap();
    assert_eq!(q.job(&added.id).await.unwrap().state, JobState::Waiting);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_user_not_allowed_info_is_still_found_to_be_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0);
    for node in &cluster.nodes {
        let out = Command::new("redis-cli")
            .args(["-p", &node.port.to_string()])
            .args([
                "acl", "setuser", "app", "on", ">pw", "~*", "&*", "+@all", "-info",
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    }
    let url = format!("redis://app:pw@127.0.0.1:{}", cluster.nodes[0].port);
    let prefix = fresh_prefix();
    let env = TestEnv::on_prefix(&url, &prefix).await;
    assert!(
        env.redis.is_cluster(),
        "NOPERM on INFO must not mean standalone"
    );
    // queues on every master, each reached through the one URL
    for name in spread_queues(&cluster, &prefix, 3) {
        let q = env.queue(&name).await;
        let added = q.add("n", &json!({}), JobOptions::new()).await.unwrap();
        assert_eq!(q.job(&added.id).await.unwrap().state, JobState::Waiting);
    }
}
