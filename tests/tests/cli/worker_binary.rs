//! The `jobq-worker` binary: a panicking job fails and the same process runs the next one;
//! one log line per failure; the start-up summary; Prometheus metrics on `--metrics-bind`.

use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const Q: &str = "diag";

async fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_job_fails_and_the_same_worker_runs_the_next_with_metrics_to_show() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut worker = WorkerProcess::start(
        env.config.redis_url().unwrap(),
        env.config.prefix(),
        &[
            "--queues",
            "diag,moderation",
            "--concurrency",
            "1",
            "--metrics-bind",
            &metrics,
            // (every other test runs the default, one runtime thread)
            "--threads",
            "3",
        ],
    );

    let panicked = q
        .add("diag.panic", &json!({}), JobOptions::new().attempts(1))
        .await
        .unwrap();
    let next = q
        .add("diag.noop", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let unknown = q
        .add("no.such.handler", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let echo = q
        .add("diag.echo", &json!({"hello": "world"}), JobOptions::new())
        .await
        .unwrap();

    let failed = wait_job_done(&q, &panicked.id, Duration::from_secs(15)).await;
    wait_job_done(&q, &unknown.id, Duration::from_secs(10)).await;
    assert_eq!(failed.state, JobState::Failed);
    assert!(
        failed
            .failed_reason
            .as_deref()
            .unwrap()
            .contains("diag.panic: deliberate panic"),
        "{failed:?}"
    );
    let ok = wait_job_done(&q, &next.id, Duration::from_secs(10)).await;
    assert_eq!(ok.state, JobState::Completed);
    let echoed = wait_job_done(&q, &echo.id, Duration::from_secs(10)).await;
    assert_eq!(echoed.return_value, Some(json!({"hello": "world"})));
    assert!(worker.is_running(), "the worker survived the panic");
    // the same text twice: the second verdict is a cache hit
    let m = env.queue("moderation").await;
    for _ in 0..2 {
        let added = m
            .add(
                "moderation.text",
                &json!({"text": "hello there"}),
                JobOptions::new(),
            )
            .await
            .unwrap();
        let v = wait_job_done(&m, &added.id, Duration::from_secs(10)).await;
        assert_eq!(v.state, JobState::Completed, "{v:?}");
    }

    let (status, body) = http_get(&metrics, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    for line in [
        "jobq_worker_attempts_total{queue=\"diag\",name=\"diag.panic\",outcome=\"failed\"} 1",
        "jobq_worker_attempts_total{queue=\"diag\",name=\"diag.noop\",outcome=\"completed\"} 1",
        "jobq_worker_attempts_total{queue=\"diag\",name=\"diag.echo\",outcome=\"completed\"} 1",
        "jobq_worker_handler_seconds_count{queue=\"diag\",name=\"diag.noop\"} 1",
        "jobq_worker_attempts_total{queue=\"diag\",name=\"<unregistered>\",outcome=\"failed\"} 1",
        "jobq_worker_concurrency 1",
        "jobq_worker_running_jobs 0",
        "jobq_cache_hits_total{namespace=\"moderation\"} 1",
    ] {
        assert!(body.contains(line), "missing {line:?} in\n{body}");
    }
    assert_eq!(
        http_get(&metrics, "/nope").await.0,
        "HTTP/1.1 404 Not Found"
    );

    let log = worker.stderr();
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("job attempt failed"))
        .collect();
    assert_eq!(failures.len(), 2, "one line per failure:\n{log}");
    assert!(failures[0].contains(&panicked.id), "{}", failures[0]);
    assert!(failures[0].contains("deliberate panic"), "{}", failures[0]);
    assert!(failures[1].contains(&unknown.id), "{}", failures[1]);
    // the panic is reported as the job's failure only, not also by Rust's panic hook
    assert!(!log.contains("panicked at"), "{log}");
    // start-up summary: where, which server, which handlers
    assert!(log.contains("connected to Redis"), "{log}");
    assert!(log.contains("version="), "{log}");
    assert!(log.contains("maxmemory_policy="), "{log}");
    assert!(
        log.contains("video.transcode") && log.contains("moderation.text"),
        "{log}"
    );
    assert!(log.contains(&format!("http://{metrics}/metrics")), "{log}");
}

#[tokio::test]
async fn a_metrics_address_that_cannot_be_bound_is_a_clear_error() {
    let env = TestEnv::new().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut worker = WorkerProcess::start(
        env.config.redis_url().unwrap(),
        env.config.prefix(),
        &["--queues", Q, "--metrics-bind", &addr],
    );
    let code = worker.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(1), "{}", worker.stderr());
    assert!(
        worker.stderr().contains(&format!("--metrics-bind {addr}")),
        "{}",
        worker.stderr()
    );
}

/// Runs `jobq-worker <args>` with `env` (RUST_BACKTRACE=1: a backtrace must not show up
/// anyway), no Redis in the environment unless given; waits for it to exit.
fn worker_exit(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = std::process::Command::new(bin_path("jobq-worker"));
    cmd.args(args)
        .env_remove("REDIS_URL")
        .env_remove("REDIS_HOST")
        .env("RUST_BACKTRACE", "1");
    let mut p = LoggedProcess::spawn(cmd, "worker-exit", env);
    let code = p.wait_exit(Duration::from_secs(10));
    (code, p.stderr())
}

#[tokio::test]
async fn bad_input_or_no_redis_configured_exits_2_with_one_error_line() {
    let env = TestEnv::new().await;
    let url = env.config.redis_url().unwrap();
    for (args, needle) in [
        // nothing configured: it could only idle
        (&[][..], "error: Redis is not configured"),
        (&["--queues", "diag"][..], "error: Redis is not configured"),
        // a bad queue is reported before that, and with a Redis configured too
        (
            &["--queues", "diag,bad q!"][..],
            "error: invalid queue name \"bad q!\"",
        ),
        (
            &["--queues", "bad q!", "--redis-url", url][..],
            "error: invalid queue name \"bad q!\"",
        ),
        (
            &["--redis-url", "http://nope"][..],
            "error: invalid configuration",
        ),
    ] {
        let (code, err) = worker_exit(args, &[]);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert_eq!(
            err.trim(),
            err.lines().next().unwrap_or(""),
            "{args:?}: one line: {err}"
        );
        assert!(err.starts_with(needle), "{args:?}: {err}");
    }
    // flags out of range are named with their value
    for (args, bad) in [
        (&["--lease", "-1s"][..], "-1s"),
        (&["--grace", "200000000000d"][..], "200000000000d"),
        (
            &["--concurrency", "99999999999999999999"][..],
            "99999999999999999999",
        ),
        (&["--max-stalls", "-1"][..], "-1"),
        (&["--threads", "0"][..], "\"0\""),
        (&["--threads", "1025"][..], "1025"),
        (&["--metrics-bind", "bogus"][..], "bogus"),
        (
            &["--metrics-bind", "127.0.0.1:99999"][..],
            "127.0.0.1:99999",
        ),
    ] {
        let (code, err) = worker_exit(args, &[]);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.contains(args[0]) && err.contains(bad),
            "{args:?}: {err}"
        );
    }
    // and a bad value from the environment
    let (code, err) = worker_exit(&[], &[("JOBQ_WORKER_THREADS", "lots")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--threads") && err.contains("lots"), "{err}");
}

/// A job name that reached Redis with control characters (written there by something other
/// than jobq: adds refuse them) is logged escaped by the worker: no forged log line, no raw
/// terminal escape.
#[tokio::test]
async fn a_stored_job_name_with_control_characters_is_logged_escaped() {
    let env = TestEnv::new().await;
    let q = env.queue("forge").await;
    // (given an id, the job keeps a record, a hash, whose name is overwritten here; a plain
    // job would be stored lean, its lane entry alone: see the test below)
    let job = q
        .add(
            "diag.fail",
            &json!({ "times": 5 }),
            JobOptions::new().attempts(1).job_id("forged"),
        )
        .await
        .unwrap();
    let key = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "forge").job(&job.id);
    let mut raw = env.raw().await;
    let forged = "diag.fail\nFORGED level=ERROR \u{1b}[31mred\u{7}";
    let _: i64 = redis::cmd("HSET")
        .arg(&key)
        .arg("name")
        .arg(forged)
        .query_async(&mut raw)
        .await
        .unwrap();
    fails_with_its_forged_name_logged_escaped(&env, &q, &job.id).await;
}

/// The same forged name in a lean job (its lane entry alone, no hash), as something other
/// than jobq might write it: logged escaped too.
#[tokio::test]
async fn a_lean_entry_job_name_with_control_characters_is_logged_escaped() {
    let env = TestEnv::new().await;
    let q = env.queue("forge").await;
    // (a plain job, lean too, opens the lane)
    let plain = q
        .add("diag.noop", &json!({}), JobOptions::new())
        .await
        .unwrap();
    assert!(plain.id.starts_with('~'), "{plain:?}");
    let forged = "diag.fail\nFORGED level=ERROR \u{1b}[31mred\u{7}";
    let id = crate::add_lean_to(
        &env,
        "forge",
        &[("n", forged.as_bytes()), ("d", b"{\"times\":5}")],
    )
    .await;
    fails_with_its_forged_name_logged_escaped(&env, &q, &id).await;
}

/// Stored values a corrupt record makes huge (a 100 KB job name, flow parent and trace
/// context) never reach the worker's log whole: the name fails its job naming its size, the
/// parent's notice is dropped with a clipped line, and every line stays short.
#[tokio::test]
async fn huge_corrupt_values_never_make_a_huge_log_line() {
    let env = TestEnv::new().await;
    let q = env.queue("huge").await;
    let keys = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "huge");
    let mut raw = env.raw().await;
    let huge = "a".repeat(100_000);
    let mut ids = Vec::new();
    // (given ids, the jobs keep records, hashes, whose fields are overwritten here; plain
    // jobs would be stored lean, their lane entries alone: see the test below)
    for field in ["name", "par", "tp"] {
        let job = q
            .add("diag.noop", &json!({}), JobOptions::new().job_id(field))
            .await
            .unwrap();
        let _: i64 = redis::cmd("HSET")
            .arg(keys.job(&job.id))
            .arg(field)
            .arg(&huge)
            .query_async(&mut raw)
            .await
            .unwrap();
        ids.push(job.id);
    }
    let mut worker = WorkerProcess::start_env(
        env.config.redis_url().unwrap(),
        env.config.prefix(),
        &["--queues", "huge", "--concurrency", "1"],
        &[("RUST_LOG", "debug")],
    );
    let named = wait_job_done(&q, &ids[0], Duration::from_secs(15)).await;
    let reason = named.failed_reason.clone().unwrap_or_default();
    assert!(
        named.state == JobState::Failed && reason.contains("field name is 100000 bytes"),
        "{reason:.300}"
    );
    for id in &ids[1..] {
        let done = wait_job_done(&q, id, Duration::from_secs(15)).await;
        assert_eq!(done.state, JobState::Completed, "{id}");
    }
    // the dropped notice is logged by the outbox's pump, which follows the completion
    eventually(
        Duration::from_secs(10),
        "the dropped notice logged",
        || async {
            worker
                .stderr()
                .contains("dropping a corrupt flow outbox entry")
                .then_some(())
        },
    )
    .await;
    worker.signal("TERM");
    worker.wait_exit(Duration::from_secs(10));
    let log = worker.stderr();
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 2_000, "a log line of {longest} bytes");
}

/// The same huge values in lean jobs (their lane entries alone, no hash), as something
/// other than jobq might write them: a 100 KB name (`n`) fails its job naming its size, a
/// 100 KB trace context (`t`) is dropped and the job completes, and every log line stays
/// short. (A lean entry has no flow parent.)
#[tokio::test]
async fn huge_values_in_lean_entries_never_make_a_huge_log_line() {
    let env = TestEnv::new().await;
    let q = env.queue("huge").await;
    // (a plain job, lean too, opens the lane)
    let plain = q
        .add("diag.noop", &json!({}), JobOptions::new())
        .await
        .unwrap();
    assert!(plain.id.starts_with('~'), "{plain:?}");
    let huge = "a".repeat(100_000);
    let named = crate::add_lean_to(&env, "huge", &[("n", huge.as_bytes()), ("d", b"{}")]).await;
    let traced = crate::add_lean_to(
        &env,
        "huge",
        &[("n", b"diag.noop"), ("d", b"{}"), ("t", huge.as_bytes())],
    )
    .await;
    let mut worker = WorkerProcess::start_env(
        env.config.redis_url().unwrap(),
        env.config.prefix(),
        &["--queues", "huge", "--concurrency", "1"],
        &[("RUST_LOG", "debug")],
    );
    let done = wait_job_done(&q, &named, Duration::from_secs(15)).await;
    let reason = done.failed_reason.clone().unwrap_or_default();
    assert!(
        done.state == JobState::Failed && reason.contains("field name is 100000 bytes"),
        "{reason:.300}"
    );
    for id in [&plain.id, &traced] {
        let done = wait_job_done(&q, id, Duration::from_secs(15)).await;
        assert_eq!(done.state, JobState::Completed, "{id}");
    }
    worker.signal("TERM");
    worker.wait_exit(Duration::from_secs(10));
    let log = worker.stderr();
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 2_000, "a log line of {longest} bytes");
}

/// Job `id` of queue `forge`, whose name holds a forged log line and control characters,
/// run by a `jobq-worker`: it fails, and its name reaches the log escaped, never as a line
/// of its own nor as raw control characters.
async fn fails_with_its_forged_name_logged_escaped(env: &TestEnv, q: &Queue, id: &str) {
    let mut worker = WorkerProcess::start(
        env.config.redis_url().unwrap(),
        env.config.prefix(),
        &["--queues", "forge", "--concurrency", "1"],
    );
    let done = wait_job_done(q, id, Duration::from_secs(15)).await;
    assert_eq!(done.state, JobState::Failed, "{done:?}");
    worker.signal("TERM");
    worker.wait_exit(Duration::from_secs(10));
    let log = worker.stderr();
    assert!(log.contains("FORGED"), "the name is logged:\n{log}");
    assert!(
        !log.lines().any(|l| l.trim_start().starts_with("FORGED")),
        "a forged line:\n{log}"
    );
    assert!(
        !log.contains('\u{1b}') && !log.contains('\u{7}'),
        "a raw control character reached the log:\n{log:?}"
    );
}
