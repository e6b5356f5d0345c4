//! The producer fallback (`JOBQ_FALLBACK`) through the `jobq` binary, against a
//! Redis each test stops (and starts again): `inline` runs the handler and prints its
//! result, `error` exits 1 naming the address, `spool` writes durable files that a worker
//! replays once Redis is back — each job exactly once, under its spooled id — and with no
//! Redis configured at all, one line says so.
//!
//! Runs the `jobq` and `jobq-worker` binaries (`cargo build --bins` first).

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

/// Runs `jobq <args>` with `env`, nothing else of ours inherited.
fn jobq(env: &[(&str, &str)], args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(bin_path("jobq"))
        .args(args)
        .env_remove("REDIS_URL")
        .env_remove("REDIS_HOST")
        .env_remove("JOBQ_PREFIX")
        .env_remove("JOBQ_FALLBACK")
        .env_remove("JOBQ_SPOOL_DIR")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run jobq");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A Redis that was started and is stopped now (nothing listens on its port).
fn stopped_redis() -> RedisServer {
    let mut server = RedisServer::start(&[]);
    server.stop();
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_inline_add_runs_the_handler_and_prints_its_result() {
    let server = stopped_redis();
    let spool = TempDir::new("spool-inline");
    let url = server.url();
    let env = [
        ("REDIS_URL", url.as_str()),
        ("JOBQ_FALLBACK", "inline"),
        ("JOBQ_SPOOL_DIR", spool.as_str()),
    ];
    let out = jobq(
        &env,
        &["add", "q", "diag.echo", "--data", r#"{"hello":"inline"}"#],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(printed, json!({"hello": "inline"}));
    // one notice line naming the address and the mode
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&server.addr()) && err.contains("inline"),
        "{err}"
    );

    // --json says how the job was handled
    let out = jobq(
        &env,
        &["--json", "add", "q", "diag.echo", "--data", r#"{"n":7}"#],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(v["mode"], "inline");
    assert_eq!(v["result"], json!({"n": 7}));

    // a failing handler is the command's failure (exit 1), not a crash
    let out = jobq(&env, &["add", "q", "diag.panic"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("handler panicked: diag.panic: deliberate panic"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        spool.files_ending(".jsonl").is_empty(),
        "inline spooled something"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_error_add_exits_1_naming_the_address_and_spools_nothing() {
    let server = stopped_redis();
    let spool = TempDir::new("spool-error");
    let url = server.url();
    let prefix = fresh_prefix();
    let env = [
        ("REDIS_URL", url.as_str()),
        ("JOBQ_PREFIX", prefix.as_str()),
        ("JOBQ_FALLBACK", "error"),
        ("JOBQ_SPOOL_DIR", spool.as_str()),
    ];
    let out = jobq(
        &env,
        &["add", "q", "diag.echo", "--data", r#"{"hello":"error"}"#],
        b"",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(&server.addr()), "{err}");
    assert!(err.contains("JOBQ_FALLBACK=error"), "{err}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(
        spool.files_ending(".jsonl").is_empty(),
        "error mode spooled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_with_a_spool_dir_that_cannot_be_written_says_nothing_was_added_once() {
    let server = stopped_redis();
    let spool = TempDir::new("spool-unwritable");
    let url = server.url();
    // a regular file where the spool directory should be
    let dir = spool.path().join("not-a-dir");
    std::fs::write(&dir, "").unwrap();
    let dir = dir.to_str().unwrap();
    let env = [
        ("REDIS_URL", url.as_str()),
        ("JOBQ_FALLBACK", "spool"),
        ("JOBQ_SPOOL_DIR", dir),
    ];
    for args in [&["add", "q", "diag.echo"][..], &["add-bulk", "q", "-"][..]] {
        let out = jobq(&env, args, b"{\"name\":\"diag.echo\"}\n");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("nothing was added"), "{args:?}: {err}");
        assert!(err.contains(dir), "{args:?}: {err}");
        // the cause said once, on one line
        assert_eq!(err.matches("(os error").count(), 1, "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_spool_adds_are_completed_exactly_once_by_a_worker_once_redis_is_back() {
    const Q: &str = "spooled";
    let mut server = stopped_redis();
    let spool = TempDir::new("spool-worker");
    let url = server.url();
    let prefix = fresh_prefix();
    let env = [
        ("REDIS_URL", url.as_str()),
        ("JOBQ_PREFIX", prefix.as_str()),
        ("JOBQ_FALLBACK", "spool"),
        ("JOBQ_SPOOL_DIR", spool.as_str()),
    ];
    let mut spooled = Vec::new();
    for n in 0..3 {
        let data = json!({ "n": n }).to_string();
        let out = jobq(
            &env,
            &["--json", "add", Q, "diag.echo", "--data", &data],
            b"",
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let v: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
        assert_eq!(v["mode"], "spooled", "{v}");
        let file = v["file"].as_str().unwrap();
        assert!(std::path::Path::new(file).exists(), "{file} missing");
        let err = text(&out.stderr);
        assert!(
            err.contains(&server.addr()) && err.contains("spool"),
            "{err}"
        );
        spooled.push((v["id"].as_str().unwrap().to_string(), n));
    }
    // one file per producer process, each synced with its job
    assert_eq!(spool.files_ending(".jsonl").len(), 3);

    server.restart();
    let worker = WorkerProcess::start_env(
        &url,
        &prefix,
        &["--queues", Q],
        &[("JOBQ_SPOOL_DIR", spool.as_str())],
    );
    let test_env = TestEnv::on_prefix(&url, &prefix).await;
    let q = test_env.queue(Q).await;
    wait_finished(&q, 3, Duration::from_secs(30)).await;
    for (id, n) in &spooled {
        let job = q.job(id).await.unwrap();
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        assert_eq!(job.return_value, Some(json!({ "n": n })));
    }
    eventually(
        Duration::from_secs(10),
        "the spool files to be gone",
        || {
            let left = spool.files_ending(".jsonl");
            async move { left.is_empty().then_some(()) }
        },
    )
    .await;
    // and nothing runs twice: a replay round after the worker's finds nothing to send, and
    // once the worker's next round (every 5 s) has passed, still 3 runs in all
    let out = jobq(&env, &["--json", "spool", "replay"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(
        (report["stored"].as_u64(), report["duplicates"].as_u64()),
        (Some(0), Some(0)),
        "{report}"
    );
    tokio::time::sleep(queue_core::producer::REPLAY_EVERY + Duration::from_secs(1)).await;
    let c = q.counts().await.unwrap();
    assert_eq!((c.completed_total, c.failed_total), (3, 0), "{c:?}");
    assert_eq!(c.waiting + c.active + c.delayed, 0, "{c:?}");
    let left: Vec<_> = std::fs::read_dir(spool.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "spool dir not empty: {left:?}");
    assert!(
        worker.stderr().contains("replayed"),
        "the worker did not replay:\n{}",
        worker.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_add_bulk_spools_every_line_and_spool_replay_stores_them() {
    const Q: &str = "bulk";
    let mut server = stopped_redis();
    let spool = TempDir::new("spool-bulk");
    let url = server.url();
    let prefix = fresh_prefix();
    let env = [
        ("REDIS_URL", url.as_str()),
        ("JOBQ_PREFIX", prefix.as_str()),
        ("JOBQ_FALLBACK", "spool"),
        ("JOBQ_SPOOL_DIR", spool.as_str()),
    ];
    let lines: String = (0..5)
        .map(|n| format!("{{\"name\":\"diag.echo\",\"data\":{{\"n\":{n}}}}}\n"))
        .collect();
    let out = jobq(&env, &["--json", "add-bulk", Q, "-"], lines.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(v["mode"], "spooled", "{v}");
    let ids: BTreeSet<String> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 5);

    let out = jobq(&env, &["--json", "spool", "status"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let status: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(status["jobs"], 5, "{status}");
    assert_eq!(status["held"], false, "{status}");

    // still down: replay fails naming the address, and keeps the file
    let out = jobq(&env, &["spool", "replay"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&server.addr()));
    assert_eq!(spool.files_ending(".jsonl").len(), 1);

    server.restart();
    let out = jobq(&env, &["--json", "spool", "replay"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(report["stored"], 5, "{report}");
    assert!(spool.files_ending(".jsonl").is_empty());
    let test_env = TestEnv::on_prefix(&url, &prefix).await;
    let q = test_env.queue(Q).await;
    let waiting: BTreeSet<String> = q
        .list_jobs(JobState::Waiting, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(waiting, ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_jobs_go_only_to_their_own_redis_and_reads_replay_nothing() {
    let mut server = stopped_redis();
    let spool = TempDir::new("spool-target");
    let url = server.url();
    let prefix = fresh_prefix();
    let env = [
        ("REDIS_URL", url.as_str()),
        ("JOBQ_PREFIX", prefix.as_str()),
        ("JOBQ_FALLBACK", "spool"),
        ("JOBQ_SPOOL_DIR", spool.as_str()),
    ];
    let out = jobq(&env, &["--json", "add", "q", "diag.echo"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(v["mode"], "spooled", "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    server.restart();

    // another Redis (db 1 here, staging in real life) from the same directory: left alone
    let other = format!("{url}/1");
    let out = jobq(
        &env,
        &["--json", "--redis-url", &other, "spool", "replay"],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(
        (report["other_redis"].as_u64(), report["stored"].as_u64()),
        (Some(1), Some(0)),
        "{report}"
    );
    assert_eq!(spool.files_ending(".jsonl").len(), 1);
    // reads replay nothing, whichever Redis they look at
    for args in [
        &["stats"][..],
        &["list", "q"],
        &["show", "q", &id],
        &["health"],
        &["spool", "status"],
    ] {
        let out = jobq(&env, args, b"");
        assert!(
            !text(&out.stderr).contains("replayed"),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(spool.files_ending(".jsonl").len(), 1, "{args:?} replayed");
    }
    let test_env = TestEnv::on_prefix(&url, &prefix).await;
    let q = test_env.queue("q").await;
    assert!(q.job(&id).await.is_err());
    // its own Redis takes it
    let out = jobq(&env, &["--json", "spool", "replay"], b"");
    let report: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(report["stored"], 1, "{report}");
    assert_eq!(q.job(&id).await.unwrap().state, JobState::Waiting);
}

#[tokio::test]
async fn not_configured_add_says_so_in_one_line_and_health_says_not_configured() {
    let spool = TempDir::new("spool-unconfigured");
    let env = [("JOBQ_SPOOL_DIR", spool.as_str())];
    let out = jobq(&env, &["add", "q", "diag.echo", "--data", "[1,2]"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "[1,2]");
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("Redis is not configured") && err.contains("JOBQ_FALLBACK=inline"),
        "{err}"
    );

    // health reports, and fails: nothing can reach a Redis (exit 1)
    let out = jobq(&env, &["health"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("not_configured"));
    assert!(text(&out.stderr).contains("Redis is not configured"));
    let out = jobq(&env, &["--json", "health"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(v["status"], "not_configured");
    assert_eq!(v["fallback"], "inline");

    // spool without Redis: kept for whoever has Redis and the same spool dir
    let env = [
        ("JOBQ_SPOOL_DIR", spool.as_str()),
        ("JOBQ_FALLBACK", "spool"),
    ];
    let out = jobq(&env, &["add", "q", "diag.echo"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Redis is not configured"));
    assert_eq!(spool.files_ending(".jsonl").len(), 1);
    let out = jobq(&env, &["--json", "health"], b"");
    let v: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(v["spool"]["jobs"], 1, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_status_counts_only_jobs_shows_bad_lines_and_orphans_and_replay_names_what_it_sets_aside(
) {
    let mut server = stopped_redis();
    let spool = TempDir::new("spool-status");
    let url = server.url();
    let prefix = fresh_prefix();
    let env = [
        ("REDIS_URL", url.as_str()),
        ("JOBQ_PREFIX", prefix.as_str()),
        ("JOBQ_FALLBACK", "spool"),
        ("JOBQ_SPOOL_DIR", spool.as_str()),
    ];
    let lines = "{\"name\":\"diag.echo\"}\n{\"name\":\"diag.echo\"}\n";
    let out = jobq(&env, &["--json", "add-bulk", "q", "-"], lines.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let spooled = spool.files_ending(".jsonl");
    assert_eq!(spooled.len(), 1);
    // garbage after the jobs: not JSON, JSON but not a job, and a torn tail
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&spooled[0])
        .unwrap();
    f.write_all(b"not json\n{\"prefix\":1}\n{\"prefix\":\"p\",\"qu")
        .unwrap();
    // and a file without a header, whose Redis nobody knows
    let job = json!({"prefix": prefix, "queue": "q", "id": "orphan-1", "name": "diag.echo",
                     "data": null, "opts": {}, "at": now_ms()});
    let orphan = spool.path().join("0000000000000-1-00000000.jsonl");
    std::fs::write(&orphan, format!("{job}\n")).unwrap();

    let out = jobq(&env, &["--json", "spool", "status"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let status: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |path: &std::path::Path| {
        status
            .iter()
            .find(|s| s["path"] == json!(path))
            .unwrap_or_else(|| panic!("{} not listed: {status:?}", path.display()))
            .clone()
    };
    let good = of(&spooled[0]);
    assert_eq!(
        (&good["jobs"], &good["bad_lines"]),
        (&json!(2), &json!(3)),
        "{good}"
    );
    assert_eq!(good["orphan"], false);
    assert_eq!(of(&orphan)["orphan"], true);
    let out = jobq(&env, &["spool", "status"], b"");
    let table = text(&out.stdout);
    assert!(
        table.contains("BAD LINES") && table.contains("header missing or corrupt"),
        "{table}"
    );

    server.restart();
    let out = jobq(&env, &["--json", "spool", "replay"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(
        (&report["stored"], &report["skipped"]),
        (&json!(2), &json!(3)),
        "{report}"
    );
    let set_aside = format!("{}.orphan", orphan.display());
    assert_eq!(report["orphaned"], json!([set_aside]), "{report}");
    // a warning naming the file
    let err = text(&out.stderr);
    assert!(
        err.contains(orphan.to_str().unwrap()) && err.contains("header"),
        "{err}"
    );
    // and each line set aside, with why
    assert_eq!(err.matches("unusable spool line").count(), 3, "{err}");
    assert!(err.contains("not a spooled job"), "{err}");
    let test_env = TestEnv::on_prefix(&url, &prefix).await;
    assert!(test_env.queue("q").await.job("orphan-1").await.is_err());
    // what is left for a human: the rejected lines and the orphan
    let out = jobq(&env, &["--json", "spool", "status"], b"");
    let kinds: BTreeSet<(String, u64)> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| {
            (
                v["kind"].as_str().unwrap().to_string(),
                v["lines"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([("rejected".to_string(), 3), ("orphan".to_string(), 1)])
    );
}
