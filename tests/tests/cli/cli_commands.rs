//! `jobq` end to end, through the built binary only: a round trip over every steering
//! command, add-bulk from stdin, listings in worker order, `stats --json` fields and
//! `--watch`, and schedules.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::jobq_in;
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

/// Runs `jobq --json <args>`, asserts exit 0, and returns each stdout line as JSON.
fn ok_json(env: &TestEnv, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = jobq_in(env, &all, b"");
    assert!(
        out.status.success(),
        "jobq {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn one(env: &TestEnv, args: &[&str]) -> Value {
    let mut v = ok_json(env, args);
    assert_eq!(v.len(), 1, "{args:?}: {v:?}");
    v.pop().unwrap()
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect()
}

fn stats(env: &TestEnv, queue: &str) -> Value {
    one(env, &["stats", queue])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_add_list_show_retry_promote_remove_clean_drain_obliterate() {
    let env = TestEnv::new().await;
    // add: --json prints the stored job with its id
    let a = one(
        &env,
        &[
            "add",
            "rt",
            "work",
            "--data",
            r#"{"n":1}"#,
            "--attempts",
            "2",
        ],
    );
    assert_eq!(a["state"], "waiting");
    assert_eq!(a["data"], json!({"n": 1}));
    assert_eq!(a["max_attempts"], 2);
    let a_id = a["id"].as_str().unwrap().to_string();
    let bad = one(&env, &["add", "rt", "work", "--data", r#"{"fail":true}"#]);
    let bad_id = bad["id"].as_str().unwrap().to_string();
    let d = one(
        &env,
        &["add", "rt", "work", "--delay", "1h", "--job-id", "later"],
    );
    assert_eq!(
        (d["id"].as_str(), d["state"].as_str()),
        (Some("later"), Some("delayed"))
    );
    let dup = one(&env, &["add", "rt", "work", "--job-id", "later"]);
    assert_eq!(dup["duplicate"], true);

    // stats --json: the fields of the stats line
    let s = stats(&env, "rt");
    for field in [
        "queue",
        "waiting",
        "active",
        "delayed",
        "completed",
        "failed",
        "paused",
        "completed_total",
        "failed_total",
    ] {
        assert!(s.get(field).is_some(), "stats lacks {field}: {s}");
    }
    assert_eq!(
        (s["waiting"].as_u64(), s["delayed"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(s["paused"], false);

    // list and show
    assert_eq!(
        ids(&ok_json(&env, &["list", "rt", "--state", "waiting"])),
        [a_id.as_str(), bad_id.as_str()]
    );
    assert_eq!(
        ids(&ok_json(&env, &["list", "rt", "--state", "delayed"])),
        ["later"]
    );
    let shown = one(&env, &["show", "rt", &a_id]);
    for field in ["state", "data", "opts", "attempts", "progress", "logs"] {
        assert!(shown.get(field).is_some(), "show lacks {field}: {shown}");
    }

    // promote one delayed job, remove one waiting job
    assert_eq!(one(&env, &["promote", "rt", "later"])["promoted"], 1);
    assert_eq!(one(&env, &["show", "rt", "later"])["state"], "waiting");
    assert_eq!(one(&env, &["remove", "rt", "later"])["removed"], 1);
    let out = jobq_in(&env, &["show", "rt", "later"], b"");
    assert_eq!(out.status.code(), Some(1));

    // a worker runs them: one completes, one fails
    let q = env.queue("rt").await;
    let worker = env
        .worker()
        .queues(["rt"])
        .handler("work", |j: Job<Value>, _c: Ctx| async move {
            if j.data.get("fail") == Some(&json!(true)) {
                return Err(JobError::new("asked to fail"));
            }
            Ok::<_, JobError>(j.data)
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_finished(&q, 2, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();

    let failed = ok_json(&env, &["list", "rt", "--state", "failed"]);
    assert_eq!(ids(&failed), [bad_id.as_str()]);
    let shown = one(&env, &["show", "rt", &bad_id]);
    assert_eq!(shown["state"], "failed");
    assert_eq!(shown["failed_reason"], "asked to fail");
    let done = one(&env, &["show", "rt", &a_id]);
    assert_eq!(
        (done["state"].as_str(), done["return_value"].clone()),
        (Some("completed"), json!({"n": 1}))
    );

    // retry the failed job by id, then --all-failed finds none left
    assert_eq!(one(&env, &["retry", "rt", &bad_id])["retried"], 1);
    assert_eq!(one(&env, &["show", "rt", &bad_id])["state"], "waiting");
    assert_eq!(one(&env, &["retry", "rt", "--all-failed"])["retried"], 0);

    // clean the completed job: retention counts drop, totals stay
    assert_eq!(
        one(&env, &["clean", "rt", "--state", "completed"])["removed"],
        1
    );
    let s = stats(&env, "rt");
    assert_eq!(
        (s["completed"].as_u64(), s["completed_total"].as_u64()),
        (Some(0), Some(1))
    );

    // pause: waiting still counts the jobs, and lists them as paused
    assert_eq!(one(&env, &["pause", "rt"])["paused"], true);
    let s = stats(&env, "rt");
    assert_eq!(
        (s["paused"].as_bool(), s["waiting"].as_u64()),
        (Some(true), Some(1))
    );
    let paused = ok_json(&env, &["list", "rt", "--state", "waiting"]);
    assert_eq!(ids(&paused), [bad_id.as_str()]);
    assert_eq!(paused[0]["state"], "paused");
    assert_eq!(one(&env, &["resume", "rt"])["paused"], false);

    // drain takes waiting and delayed jobs
    one(&env, &["add", "rt", "work", "--delay", "1h"]);
    assert_eq!(one(&env, &["drain", "rt"])["removed"], 2);
    let s = stats(&env, "rt");
    assert_eq!(
        (s["waiting"].as_u64(), s["delayed"].as_u64()),
        (Some(0), Some(0))
    );

    // obliterate: the queue is gone from stats
    assert_eq!(
        one(&env, &["obliterate", "rt", "--force"])["obliterated"],
        true
    );
    assert!(ok_json(&env, &["stats"]).is_empty());
}

#[tokio::test]
async fn add_bulk_from_stdin_stores_every_line_in_file_order_without_a_bar_when_piped() {
    let env = TestEnv::new().await;
    let mut text = String::new();
    for i in 0..2_500 {
        text.push_str(&format!("{{\"name\":\"work\",\"data\":{{\"i\":{i}}}}}\n"));
    }
    text.push_str(
        r#"{"name":"work","data":{"i":"p"},"opts":{"priority":5,"attempts":3,"backoff":"exp:1s"}}"#,
    );
    text.push('\n');
    text.push_str(r#"{"name":"work","opts":{"delay":"1h","jobId":"d1"}}"#);
    let out = jobq_in(&env, &["--json", "add-bulk", "bulk", "-"], text.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "a progress bar was drawn on a pipe");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["added"], 2_502);
    let bulk_ids: Vec<String> = serde_json::from_value(report["ids"].clone()).unwrap();
    assert_eq!(bulk_ids.len(), 2_502);

    let s = stats(&env, "bulk");
    assert_eq!(
        (s["waiting"].as_u64(), s["delayed"].as_u64()),
        (Some(2_501), Some(1))
    );
    // the priority-5 job first, then FIFO in file order
    let page = ok_json(
        &env,
        &["list", "bulk", "--state", "waiting", "--limit", "3"],
    );
    assert_eq!(
        ids(&page),
        vec![
            bulk_ids[2_500].clone(),
            bulk_ids[0].clone(),
            bulk_ids[1].clone()
        ]
    );
    assert_eq!(page[0]["opts"]["attempts"], 3);
    let page = ok_json(
        &env,
        &[
            "list", "bulk", "--state", "waiting", "--offset", "2000", "--limit", "2",
        ],
    );
    assert_eq!(ids(&page), bulk_ids[1_999..2_001].to_vec());
    assert_eq!(
        ids(&ok_json(&env, &["list", "bulk", "--state", "delayed"])),
        ["d1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_active_jobs_and_human_tables_name_them() {
    let env = TestEnv::new().await;
    let slow = one(&env, &["add", "act", "slow"]);
    let worker = env
        .worker()
        .queues(["act"])
        .handler("slow", |_j: Job<Value>, c: Ctx| async move {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = c.cancellation_token().cancelled() => {}
            }
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let q = env.queue("act").await;
    wait_active(&q, 1, Duration::from_secs(5)).await;
    let active = ok_json(&env, &["list", "act", "--state", "active"]);
    assert_eq!(ids(&active), [slow["id"].as_str().unwrap()]);
    assert_eq!(active[0]["state"], "active");
    assert_eq!(active[0]["attempts"], 1);
    assert!(active[0]["started_at"].as_u64().is_some());

    let out = jobq_in(&env, &["list", "act", "--state", "active"], b"");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.starts_with("ID") && table.contains(slow["id"].as_str().unwrap()),
        "{table}"
    );
    let out = jobq_in(&env, &["stats"], b"");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("WAITING") && table.contains("act"),
        "{table}"
    );
    drop(guard);
}

#[tokio::test]
async fn stats_watch_refreshes_until_ctrl_c_and_exits_0() {
    let env = TestEnv::new().await;
    one(&env, &["add", "w", "work"]);
    let child = Command::new(bin_path("jobq"))
        .args(["--redis-url", env.config.redis_url().unwrap()])
        .args(["--prefix", env.config.prefix()])
        .args(["--json", "stats", "--watch", "--interval", "100ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refreshes = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(r#""queue":"w""#))
        .count();
    assert!(refreshes >= 3, "only {refreshes} refreshes");
}

#[tokio::test]
async fn schedules_are_added_listed_and_removed() {
    let env = TestEnv::new().await;
    let s = one(
        &env,
        &[
            "schedule",
            "add",
            "sq",
            "tick",
            "diag.noop",
            "--every",
            "1s",
            "--data",
            r#"{"x":1}"#,
        ],
    );
    assert_eq!(
        (s["id"].as_str(), s["repeat"]["every_ms"].as_u64()),
        (Some("tick"), Some(1000))
    );
    assert!(s["next_run_ms"].as_u64().is_some());
    one(
        &env,
        &[
            "schedule",
            "add",
            "sq",
            "five",
            "diag.noop",
            "--cron",
            "0 */5 * * * *",
        ],
    );
    let all = ok_json(&env, &["schedule", "list"]);
    assert_eq!(ids(&all), ["five", "tick"]);
    assert_eq!(all[1]["data"], json!({"x": 1}));

    let out = jobq_in(
        &env,
        &["schedule", "add", "sq", "x", "n", "--cron", "not a cron"],
        b"",
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a cron"));
    let out = jobq_in(&env, &["schedule", "add", "sq", "x", "n"], b"");
    assert_eq!(out.status.code(), Some(2), "--every or --cron is required");

    assert_eq!(
        one(&env, &["schedule", "remove", "sq", "tick"])["removed"],
        true
    );
    assert_eq!(ids(&ok_json(&env, &["schedule", "list", "sq"])), ["five"]);
    let out = jobq_in(&env, &["schedule", "remove", "sq", "tick"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tick"));

    // definitions written behind jobq's back that do not read back are listed as corrupt,
    // never hidden, and can be removed
    let key = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "sq").schedules();
    let mut raw = env.raw().await;
    let _: i64 = redis::cmd("HSET")
        .arg(&key)
        .arg("c5")
        .arg("garbage")
        .arg("c6")
        .arg(r#"{"name":"diag.noop","data":null,"repeat":{"every_ms":1}}"#)
        .query_async(&mut raw)
        .await
        .unwrap();
    let all = ok_json(&env, &["schedule", "list", "sq"]);
    assert_eq!(ids(&all), ["five", "c5", "c6"]);
    assert!(all[0].get("corrupt").is_none(), "{all:?}");
    for c in &all[1..] {
        assert!(
            c["corrupt"]
                .as_str()
                .unwrap_or_default()
                .contains(c["id"].as_str().unwrap()),
            "{c}"
        );
    }
    let out = jobq_in(&env, &["schedule", "list", "sq"], b"");
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        table
            .lines()
            .any(|l| l.contains("c6") && l.contains("corrupt")),
        "{table}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("never fire"));
    one(&env, &["schedule", "remove", "sq", "c5"]);
    assert_eq!(
        ids(&ok_json(&env, &["schedule", "list", "sq"])),
        ["five", "c6"]
    );
}
