//! `jobq workers` against real `jobq-worker` processes: two workers listed with their pids;
//! a SIGKILLed one drops out within its record's TTL (three heartbeats) while the other stays;
//! a graceful stop leaves at once; a running job names its worker (`jobq show`, `list`);
//! corrupt worker records never break the listing.

use std::time::{Duration, Instant};

use crate::{jobq_in, one_json, stderr, stdout};
use jobq_tests::*;
use queue_core::internal::keys::WorkerKeys;
use queue_core::*;
use serde_json::{json, Value};

/// `jobq workers --json`: one object per worker.
fn workers_json(env: &TestEnv) -> Vec<Value> {
    let out = jobq_in(env, &["--json", "workers"], b"");
    assert!(out.status.success(), "jobq workers: {}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn pids(list: &[Value]) -> Vec<u64> {
    let mut p: Vec<u64> = list.iter().filter_map(|w| w["pid"].as_u64()).collect();
    p.sort();
    p
}

/// Waits until `jobq workers --json` lists exactly the workers of `want` (their pids).
async fn wait_listed(env: &TestEnv, want: &[u32], timeout: Duration) -> Vec<Value> {
    let mut want: Vec<u64> = want.iter().map(|p| u64::from(*p)).collect();
    want.sort();
    eventually(timeout, &format!("workers {want:?} listed"), || async {
        let list = workers_json(env);
        (pids(&list) == want).then_some(list)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_are_listed_a_killed_one_drops_out_within_its_ttl_a_stopped_one_at_once() {
    let env = TestEnv::new().await;
    let (url, prefix) = (env.config.redis_url().unwrap(), env.config.prefix());
    // heartbeat 300ms (TTL 900ms) through the environment; the other keeps the default 5s
    let mut killed = WorkerProcess::start_env(
        url,
        prefix,
        &["--queues", "wa,diag", "--concurrency", "3"],
        &[("JOBQ_HEARTBEAT", "300ms")],
    );
    let mut stopped = WorkerProcess::start(url, prefix, &["--queues", "wb"]);
    let (k_pid, s_pid) = (killed.child.id(), stopped.child.id());
    let list = wait_listed(&env, &[k_pid, s_pid], Duration::from_secs(20)).await;
    let k = list.iter().find(|w| w["pid"] == k_pid).unwrap();
    assert_eq!(k["queues"], json!(["wa", "diag"]));
    assert_eq!(
        (k["queue_count"].as_u64(), k["concurrency"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(k["heartbeat_ms"], 300);
    assert_eq!(k["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(k["running_count"], 0);
    let id = k["id"].as_str().unwrap();
    assert!(id.contains(&format!(":{k_pid}:")), "{id}");
    assert!(!k["host"].as_str().unwrap().is_empty());
    let s = list.iter().find(|w| w["pid"] == s_pid).unwrap();
    assert_eq!(s["heartbeat_ms"], 5000);
    assert!(s["last_seen"].as_u64().unwrap() <= s["expires_at"].as_u64().unwrap());
    // the text form: a row per worker and the count
    let text = stdout(&jobq_in(&env, &["workers"], b""));
    assert!(text.contains(&format!(" {k_pid} ")) && text.contains(&format!(" {s_pid} ")));
    assert!(text.contains("2 worker(s) holding 0 job(s)"), "{text}");

    // a heartbeating worker outlives its TTL many times over
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pids(&workers_json(&env)).len(), 2);

    // SIGKILL: no goodbye; gone once its record expires, within the TTL of 900ms
    killed.signal("KILL");
    // (its exit code is None: killed by a signal)
    let _ = killed.wait_exit(Duration::from_secs(5));
    assert!(!killed.is_running());
    let since = Instant::now();
    wait_listed(&env, &[s_pid], Duration::from_secs(5)).await;
    let took = since.elapsed();
    eprintln!("a SIGKILLed worker dropped out {took:?} after the kill (TTL 900ms)");
    assert!(took <= Duration::from_millis(900 + 600), "took {took:?}");

    // SIGTERM: it leaves the registry as it exits, long before its 15 s TTL
    stopped.signal("TERM");
    assert_eq!(stopped.wait_exit(Duration::from_secs(10)), Some(0));
    assert_eq!(workers_json(&env), Vec::<Value>::new());
    let text = stdout(&jobq_in(&env, &["workers"], b""));
    assert!(text.starts_with("no live worker under prefix"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_names_its_worker_and_the_worker_lists_the_job() {
    let env = TestEnv::new().await;
    let q = env.queue("diag").await;
    let worker = WorkerProcess::start(
        env.config.redis_url().unwrap(),
        env.config.prefix(),
        &["--queues", "diag", "--heartbeat", "200ms"],
    );
    let job = q
        .add("diag.sleep", &json!({"ms": 20_000}), JobOptions::new())
        .await
        .unwrap();
    wait_active(&q, 1, Duration::from_secs(15)).await;
    let listed = eventually(Duration::from_secs(5), "the job in the record", || async {
        let list = workers_json(&env);
        (list.len() == 1 && list[0]["running_count"] == 1).then(|| list[0].clone())
    })
    .await;
    assert_eq!(listed["pid"], worker.child.id());
    assert_eq!(listed["running"], json!([{"queue": "diag", "id": job.id}]));
    let id = listed["id"].as_str().unwrap();

    let shown = one_json(&env, &["show", "diag", &job.id]);
    assert_eq!(
        (shown["state"].as_str(), shown["worker"].as_str()),
        (Some("active"), Some(id))
    );
    let active = one_json(&env, &["list", "diag", "--state", "active"]);
    assert_eq!(active["worker"], id);
    let text = stdout(&jobq_in(&env, &["show", "diag", &job.id], b""));
    assert!(text.contains(&format!("worker:    {id}\n")), "{text}");
    // the library says the same; a job not running names no worker
    assert_eq!(q.job(&job.id).await.unwrap().worker.as_deref(), Some(id));
    let waiting = q
        .add(
            "diag.noop",
            &json!({}),
            JobOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let shown = one_json(&env, &["show", "diag", &waiting.id]);
    assert!(shown.get("worker").is_none(), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_worker_records_are_listed_as_such_and_never_break_jobq_workers() {
    let env = TestEnv::new().await;
    let keys = WorkerKeys::new(env.config.prefix());
    let mut c = env.raw().await;
    // a registry of the wrong type lists nothing, and a worker's heartbeat replaces it
    let _: () = redis::cmd("SET")
        .arg(keys.registry())
        .arg("not a zset")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(workers_json(&env), Vec::<Value>::new());
    let worker = WorkerProcess::start(
        env.config.redis_url().unwrap(),
        env.config.prefix(),
        &["--queues", "diag", "--heartbeat", "200ms"],
    );
    wait_listed(&env, &[worker.child.id()], Duration::from_secs(20)).await;

    plant_corrupt_workers(&env).await;
    let list = workers_json(&env);
    let corrupt: Vec<(&str, &str)> = list
        .iter()
        .filter_map(|w| Some((w["id"].as_str()?, w["corrupt"].as_str()?)))
        .collect();
    let why = |id: &str| {
        corrupt
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, w)| w.to_string())
            .unwrap_or_else(|| panic!("{id} not listed as corrupt: {list:?}"))
    };
    assert!(why("list").contains("is a list"), "{}", why("list"));
    assert!(why("garbage").contains("does not decode"));
    assert!(why("huge").contains("over the cap"));
    assert!(why("seen").contains("not a time"));
    assert!(why(&"L".repeat(512)).contains("over 512 bytes"));
    assert_eq!(corrupt.len(), 5, "{list:?}");
    // the live worker is listed whole; the entry without a record was pruned
    assert_eq!(
        list.iter()
            .filter(|w| w["pid"] == worker.child.id())
            .count(),
        1
    );
    assert_eq!(list.len(), 6);
    let gone: Option<f64> = redis::cmd("ZSCORE")
        .arg(keys.registry())
        .arg("gone")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(gone, None);

    let out = jobq_in(&env, &["workers"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.matches("CORRUPT:").count(), 5, "{text}");
    assert!(text.contains("6 worker(s)"), "{text}");
}
