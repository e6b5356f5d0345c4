//! `jobq` exit codes (SPEC §6): bad input exits 2 naming the bad value and stores nothing;
//! runtime failures (a missing job, an unreachable Redis) exit 1 naming what failed.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use jobq_tests::*;
use queue_core::list_queues;

fn jobq_with_stdin(env: &TestEnv, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(bin_path("jobq"))
        .args(["--redis-url", env.config.redis_url().unwrap()])
        .args(["--prefix", env.config.prefix()])
        .args(args)
        .env_remove("REDIS_URL")
        .env_remove("JOBQ_PREFIX")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run jobq");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn jobq(env: &TestEnv, args: &[&str]) -> Output {
    jobq_with_stdin(env, args, b"")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every key under the test's prefix (the registry and any queue's keys).
async fn keys_of(env: &TestEnv) -> Vec<String> {
    let mut conn = env.raw().await;
    redis::cmd("KEYS")
        .arg(format!("*{}*", env.config.prefix()))
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_input_exits_2_names_the_value_and_stores_nothing() {
    let env = TestEnv::new().await;
    let cases: [(&[&str], &str); 6] = [
        (&["add", "q", "job", "--data", "{not json"], "{not json"),
        (&["add", "q", "job", "--delay", "10parsecs"], "10parsecs"),
        (&["add", "bad name!", "job"], "bad name!"),
        (&["add", "q", "job", "--attempts", "-3"], "-3"),
        (&["add", "q", "job", "--backoff", "linear:1s"], "linear:1s"),
        (&["list", "q", "--state", "done"], "done"),
    ];
    for (args, bad) in cases {
        let out = jobq(&env, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(bad), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(
        keys_of(&env).await,
        Vec::<String>::new(),
        "something was stored"
    );
}

#[tokio::test]
async fn bulk_file_with_a_bad_line_2_exits_2_naming_the_line_and_stores_nothing() {
    let env = TestEnv::new().await;
    let text = concat!(
        r#"{"name":"ok","data":{"i":1}}"#,
        "\n",
        r#"{"name":"ok","opts":{"attempts":-3}}"#,
        "\n",
        r#"{"name":"ok","data":{"i":3}}"#,
        "\n"
    );
    let out = jobq_with_stdin(&env, &["add-bulk", "q", "-"], text.as_bytes());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("line 2:") && err.contains("-3"), "{err}");
    assert_eq!(err.lines().count(), 1, "one-line message: {err}");

    let file = std::env::temp_dir().join(format!("jobq-bad-{}.jsonl", env.config.prefix()));
    std::fs::write(&file, "{\"name\":\"ok\"}\n{\"name\": \n").unwrap();
    let out = jobq(&env, &["add-bulk", "q", file.to_str().unwrap()]);
    std::fs::remove_file(&file).ok();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("line 2:"), "{}", stderr(&out));

    let out = jobq(&env, &["add-bulk", "q", "/nonexistent/jobs.jsonl"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("/nonexistent/jobs.jsonl"));

    assert_eq!(
        keys_of(&env).await,
        Vec::<String>::new(),
        "something was stored"
    );
}

#[tokio::test]
async fn obliterate_without_force_is_a_usage_error_and_deletes_nothing() {
    let env = TestEnv::new().await;
    let out = jobq(&env, &["add", "q", "job"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = jobq(&env, &["obliterate", "q"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    let c = env.queue("q").await.counts().await.unwrap();
    assert_eq!(c.waiting, 1);
}

#[tokio::test]
async fn show_of_a_missing_id_exits_1_naming_the_id() {
    let env = TestEnv::new().await;
    let out = jobq(&env, &["show", "q", "no-such-job-42"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such-job-42"), "{}", stderr(&out));
    let out = jobq(&env, &["retry", "q", "no-such-job-43"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such-job-43"), "{}", stderr(&out));
}

#[tokio::test]
async fn unreachable_redis_exits_1_naming_the_address() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    for args in [&["add", "q", "job"][..], &["stats"], &["health"]] {
        let out = Command::new(bin_path("jobq"))
            .args(["--redis-url", &url])
            .args(args)
            .env("JOBQ_FALLBACK", "error")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("127.0.0.1:{port}")),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[tokio::test]
async fn help_explains_and_exits_0() {
    let out = Command::new(bin_path("jobq"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "add",
        "add-bulk",
        "stats",
        "list",
        "show",
        "retry",
        "remove",
        "promote",
        "pause",
        "resume",
        "clean",
        "drain",
        "obliterate",
        "schedule",
        "health",
        "Exit codes",
    ] {
        assert!(text.contains(cmd), "--help lacks {cmd}: {text}");
    }
    let out = Command::new(bin_path("jobq"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // a registered queue is not needed to see nothing stored by a failed parse
    let env = TestEnv::new().await;
    assert!(list_queues(&env.redis, env.config.prefix())
        .await
        .unwrap()
        .is_empty());
}
