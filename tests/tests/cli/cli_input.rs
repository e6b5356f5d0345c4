//! `jobq` exit codes: bad input exits 2 naming the bad value and stores nothing;
//! runtime failures (a missing job, an unreachable Redis) exit 1 naming what failed.

use std::process::{Command, Output, Stdio};

use crate::jobq_env;
use crate::{jobq_in, keys_of, stderr};
use jobq_tests::*;
use queue_core::{list_queues, JobOptions};

fn jobq(env: &TestEnv, args: &[&str]) -> Output {
    jobq_in(env, args, b"")
}

#[tokio::test]
async fn bad_input_exits_2_names_the_value_and_stores_nothing() {
    let env = TestEnv::new().await;
    let cases: [(&[&str], &str); 10] = [
        (&["add", "q", "job", "--data", "{not json"], "{not json"),
        // an empty id names no job: a usage error, not "not found"
        (&["show", "q", ""], "empty"),
        (&["cancel", "q", ""], "empty"),
        (
            &["schedule", "add", "q", "..", "job", "--every", "1s"],
            "(not . or ..)",
        ),
        // (an integer JSON would read as a rounded float)
        (
            &[
                "add",
                "q",
                "job",
                "--data",
                r#"{"n":123456789012345678901234567890}"#,
            ],
            "123456789012345678901234567890",
        ),
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
    let out = jobq_in(&env, &["add-bulk", "q", "-"], text.as_bytes());
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

    // a line whose data would change (an integer past 64 bits), one that is not UTF-8
    for (line2, says) in [
        (
            &br#"{"name":"ok","data":{"n":18446744073709551616}}"#[..],
            "18446744073709551616",
        ),
        (&b"{\"name\":\"ok\xff\"}"[..], "byte 12 (0xff) is not UTF-8"),
    ] {
        let mut text = b"{\"name\":\"ok\"}\n".to_vec();
        text.extend_from_slice(line2);
        text.push(b'\n');
        let out = jobq_in(&env, &["add-bulk", "q", "-"], &text);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("line 2:") && err.contains(says), "{err}");
    }

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

/// Was: obliterating a queue that does not exist said it had (exit 0, "2 key(s) deleted":
/// the two keys its own pause had just made).
#[tokio::test]
async fn obliterate_of_a_missing_queue_exits_1_and_makes_no_key() {
    let env = TestEnv::new().await;
    let out = jobq(&env, &["obliterate", "no-such-queue", "--force"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such-queue"), "{}", stderr(&out));
    let mut raw = env.raw().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{}:no-such-queue*", env.config.prefix()))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

#[tokio::test]
async fn show_of_a_missing_id_exits_1_naming_the_id() {
    let env = TestEnv::new().await;
    // the queue exists: only the job is missing
    assert!(jobq(&env, &["add", "q", "job"]).status.success());
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
        "flow",
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

#[tokio::test]
async fn negative_huge_and_out_of_range_values_exit_2_naming_the_option_and_value() {
    let env = TestEnv::new().await;
    let cases: &[(&[&str], &str, &str)] = &[
        (&["add", "q", "job", "--delay", "-5s"], "--delay", "-5s"),
        (&["add", "q", "job", "--delay=-5s"], "--delay", "-5s"),
        (
            &["add", "q", "job", "--delay", "9223372036854775808ms"],
            "--delay",
            "9223372036854775808ms",
        ),
        (&["add", "q", "job", "--timeout", "-1s"], "--timeout", "-1s"),
        (
            &[
                "clean",
                "q",
                "--state",
                "failed",
                "--older-than",
                "200000000000d",
            ],
            "--older-than",
            "200000000000d",
        ),
        (
            &["clean", "q", "--state", "failed", "--limit", "-1"],
            "--limit",
            "-1",
        ),
        (
            &[
                "list",
                "q",
                "--state",
                "failed",
                "--limit",
                "99999999999999999999999",
            ],
            "--limit",
            "99999999999999999999999",
        ),
        (
            &[
                "list",
                "q",
                "--state",
                "failed",
                "--offset",
                "18446744073709551615",
            ],
            "--offset",
            "18446744073709551615",
        ),
        (
            &["add", "q", "job", "--attempts", "4294967296"],
            "--attempts",
            "4294967296",
        ),
        (
            &["add", "q", "job", "--priority", "1001"],
            "--priority",
            "1001",
        ),
        (
            &["stats", "--watch", "--interval", "0ms"],
            "--interval",
            "0ms",
        ),
        (&["spool", "replay", "--chunk", "0"], "--chunk", "0"),
    ];
    for (args, option, bad) in cases {
        let out = jobq(&env, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(option) && err.contains(bad), "{args:?}: {err}");
        // one line, as the README says: no usage block, no hint
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
    // a bulk line's numeric (ms) durations are range-checked too, naming the line
    let bulk = concat!(
        r#"{"name":"ok"}"#,
        "\n",
        r#"{"name":"ok","opts":{"delay":99999999999999999}}"#,
        "\n"
    );
    let out = jobq_in(&env, &["add-bulk", "q", "-"], bulk.as_bytes());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("line 2:") && err.contains("99999999999999999"),
        "{err}"
    );
    assert_eq!(
        keys_of(&env).await,
        Vec::<String>::new(),
        "something was stored"
    );
}

#[tokio::test]
async fn reading_or_steering_an_unknown_queue_exits_1_naming_it_and_creates_nothing() {
    let env = TestEnv::new().await;
    let cases: &[&[&str]] = &[
        &["stats", "nope"],
        &["list", "nope", "--state", "waiting"],
        &["show", "nope", "some-id"],
        &["retry", "nope", "--all-failed"],
        &["promote", "nope", "--all-delayed"],
        &["remove", "nope", "some-id"],
        &["pause", "nope"],
        &["resume", "nope"],
        &["clean", "nope", "--state", "completed"],
        &["drain", "nope"],
        &["schedule", "list", "nope"],
    ];
    for args in cases {
        let out = jobq(&env, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("queue \"nope\" not found"), "{args:?}: {err}");
        assert!(
            out.stdout.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert_eq!(
        keys_of(&env).await,
        Vec::<String>::new(),
        "looking at an unknown queue created something"
    );
    // once it exists, the same reads answer
    assert!(jobq(&env, &["add", "nope", "job"]).status.success());
    let out = jobq(&env, &["--json", "stats", "nope"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = jobq(&env, &["list", "nope", "--state", "failed"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Writes `bytes` to a fresh file named after the test's prefix; removed by the caller.
fn temp_file(env: &TestEnv, tag: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("jobq-{tag}-{}", env.config.prefix()));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[tokio::test]
async fn data_over_the_cap_exits_2_naming_the_sizes_and_stores_nothing() {
    let env = TestEnv::new().await;
    let cap = [("JOBQ_MAX_DATA_BYTES", "1000")];
    let big = format!("{{\"blob\":\"{}\"}}", "x".repeat(5_000));
    let file = temp_file(&env, "big.json", big.as_bytes());
    let out = jobq_env(
        &env,
        &cap,
        &["add", "q", "job", "--data-file", file.to_str().unwrap()],
        b"",
    );
    std::fs::remove_file(&file).ok();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(file.to_str().unwrap())
            && err.contains(&format!("{} bytes", big.len()))
            && err.contains("1000 bytes")
            && err.contains("JOBQ_MAX_DATA_BYTES"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    // add-bulk: the line over the cap is named, and no line before it is stored
    let bulk =
        format!("{{\"name\":\"ok\",\"data\":{{\"i\":1}}}}\n{{\"name\":\"big\",\"data\":{big}}}\n");
    let out = jobq_env(&env, &cap, &["add-bulk", "q", "-"], bulk.as_bytes());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("line 2:") && err.contains("1000 bytes"),
        "{err}"
    );
    assert_eq!(
        keys_of(&env).await,
        Vec::<String>::new(),
        "something was stored"
    );
}

#[tokio::test]
async fn a_utf8_byte_order_mark_at_the_start_of_a_data_or_bulk_file_is_skipped() {
    let env = TestEnv::new().await;
    let file = temp_file(&env, "bom.json", b"\xef\xbb\xbf{\"a\":1}\n");
    let out = jobq(
        &env,
        &[
            "--json",
            "add",
            "q",
            "job",
            "--data-file",
            file.to_str().unwrap(),
        ],
    );
    std::fs::remove_file(&file).ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["data"], serde_json::json!({"a": 1}));

    let bulk = b"\xef\xbb\xbf{\"name\":\"one\"}\n{\"name\":\"two\"}\n";
    let file = temp_file(&env, "bom.jsonl", bulk);
    let out = jobq(&env, &["add-bulk", "q", file.to_str().unwrap()]);
    std::fs::remove_file(&file).ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = jobq_in(&env, &["add-bulk", "q", "-"], bulk);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.queue("q").await.counts().await.unwrap().waiting, 5);
}

#[tokio::test]
async fn control_characters_in_stored_values_are_escaped_in_text_output() {
    let env = TestEnv::new().await;
    let q = env.queue("q").await;
    // C1 CSI and DEL pass through JSON unescaped; a raw name as an older writer stored it.
    // (Given an id, the job keeps a record, a hash, whose name is overwritten here; a plain
    // job would be stored lean, its lane entry alone: see the test below.)
    let added = q
        .add(
            "job",
            &serde_json::json!({"t": "\u{9b}31m\u{7f}"}),
            queue_core::JobOptions::new().job_id("ctl"),
        )
        .await
        .unwrap();
    let evil = "evil\u{1b}]0;pwned\u{7}\u{1b}[2J\nfake line";
    let mut raw = env.raw().await;
    let _: i64 = redis::cmd("HSET")
        .arg(queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "q").job(&added.id))
        .arg("name")
        .arg(evil)
        .query_async(&mut raw)
        .await
        .unwrap();
    for args in [
        &["show", "q", added.id.as_str()][..],
        &["list", "q", "--state", "waiting"],
    ] {
        let out = jobq(&env, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{args:?} printed a raw control character: {text:?}"
        );
        assert!(!text.contains("\nfake line"), "{args:?}: {text}");
        assert!(text.contains("evil\\u{1b}]0;pwned"), "{args:?}: {text}");
    }
}

/// The same hostile values in a lean job (its lane entry alone, no hash), as something
/// other than jobq might write it: escaped by `jobq show` and `jobq list` alike.
#[tokio::test]
async fn control_characters_in_a_lean_entry_are_escaped_in_text_output() {
    let env = TestEnv::new().await;
    let q = env.queue("q").await;
    // (a plain job, lean too, opens the lane)
    let plain = q
        .add(
            "plain",
            &serde_json::json!({}),
            queue_core::JobOptions::new(),
        )
        .await
        .unwrap();
    assert!(plain.id.starts_with('~'), "{plain:?}");
    let evil = "evil\u{1b}]0;pwned\u{7}\u{1b}[2J\nfake line";
    let id = crate::add_lean_to(
        &env,
        "q",
        &[
            ("n", evil.as_bytes()),
            ("d", "{\"t\":\"\u{9b}31m\u{7f}\"}".as_bytes()),
        ],
    )
    .await;
    for args in [
        &["show", "q", id.as_str()][..],
        &["list", "q", "--state", "waiting"],
    ] {
        let out = jobq(&env, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{args:?} printed a raw control character: {text:?}"
        );
        assert!(!text.contains("\nfake line"), "{args:?}: {text}");
        assert!(text.contains("evil\\u{1b}]0;pwned"), "{args:?}: {text}");
    }
}

/// A stored job whose options no longer decode is marked in `jobq list` and `jobq show`;
/// the queue's other jobs are listed as they are (one bad record never hides a queue).
#[tokio::test]
async fn a_job_with_garbage_options_is_marked_in_list_and_show_and_the_others_are_listed() {
    let env = TestEnv::new().await;
    let q = env.queue("bad-opts").await;
    let mut ids = Vec::new();
    // (given ids, the jobs keep records, hashes, whose `opts` field is overwritten here; a
    // plain job would be stored lean, its lane entry alone: see the test below)
    for i in 0..3 {
        let job = q
            .add(
                "work",
                &serde_json::json!({ "i": i }),
                JobOptions::new().attempts(2).job_id(format!("job{i}")),
            )
            .await
            .unwrap();
        ids.push(job.id);
    }
    let key =
        queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "bad-opts").job(&ids[1]);
    let mut raw = env.raw().await;
    let _: i64 = redis::cmd("HSET")
        .arg(&key)
        .arg("opts")
        .arg(&b"\x01garbage"[..])
        .query_async(&mut raw)
        .await
        .unwrap();
    only_the_second_marked_corrupt_opts(&env, &ids);
}

/// The same for a lean job (its lane entry alone, no hash) whose `o` options are garbage,
/// as something other than jobq might write it: marked in `jobq list` and `jobq show`, and
/// the others listed.
#[tokio::test]
async fn a_lean_job_with_garbage_options_is_marked_in_list_and_show_and_the_others_are_listed() {
    let env = TestEnv::new().await;
    let q = env.queue("bad-opts").await;
    let opts = JobOptions::new().attempts(2);
    let first = q
        .add("work", &serde_json::json!({ "i": 0 }), opts.clone())
        .await
        .unwrap()
        .id;
    let bad = crate::add_lean_to(
        &env,
        "bad-opts",
        &[("n", b"work"), ("d", b"{\"i\":1}"), ("o", b"\x01garbage")],
    )
    .await;
    let last = q
        .add("work", &serde_json::json!({ "i": 2 }), opts)
        .await
        .unwrap()
        .id;
    let ids = [first, bad, last];
    assert!(ids.iter().all(|id| id.starts_with('~')), "{ids:?}");
    only_the_second_marked_corrupt_opts(&env, &ids);
}

/// `add-bulk` refuses a line longer than any job at the caps can be as soon as it has read
/// that much: an endless line on stdin used to grow in memory until the machine ran out.
#[tokio::test]
async fn add_bulk_stops_reading_at_a_line_longer_than_any_job_can_be() {
    use std::io::Write;
    let env = TestEnv::new().await;
    let mut child = Command::new(bin_path("jobq"))
        .args(["--redis-url", env.config.redis_url().unwrap()])
        .args(["--prefix", env.config.prefix()])
        .args(["add-bulk", "q", "-"])
        .env("JOBQ_MAX_DATA_BYTES", "1000")
        .env("JOBQ_MAX_OPTS_BYTES", "1000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run jobq");
    let mut stdin = child.stdin.take().unwrap();
    // one line of up to 256 MiB, written until jobq stops reading
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'a'; 1 << 20];
        let mut written = 0usize;
        while written < 256 << 20 && stdin.write_all(&chunk).is_ok() {
            written += chunk.len();
        }
        written
    });
    let out = child.wait_with_output().unwrap();
    let written = writer.join().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("line 1 is over") && err.contains("JOBQ_MAX_DATA_BYTES"),
        "{err}"
    );
    assert!(
        written < 64 << 20,
        "jobq read {written} bytes of one line before refusing it"
    );
    assert_eq!(keys_of(&env).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_read_by_something_that_stops_reading_ends_quietly() {
    use std::io::Read;
    let env = TestEnv::new().await;
    let q = env.queue("piped").await;
    let jobs = (0..1_000)
        .map(|i| {
            queue_core::NewJob::new(
                "t",
                &serde_json::json!({"i": i, "pad": "x".repeat(100)}),
                JobOptions::new(),
            )
            .unwrap()
        })
        .collect();
    add_all(&q, jobs).await;
    // `jobq list … | head -c 100`: the reader leaves after 100 bytes of some 150 KB
    let mut child = Command::new(bin_path("jobq"))
        .args(["--redis-url", env.config.redis_url().unwrap()])
        .args(["--prefix", env.config.prefix()])
        .args(["list", "piped", "--state", "waiting", "--limit", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
}

/// Was: stdout on a full disk (`> /dev/full`) made `jobq` panic (exit 101) after its change
/// was stored: a script retrying on that exit added the job again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_stdout_is_one_line_and_exit_1_not_a_panic() {
    let env = TestEnv::new().await;
    let q = env.queue("full-out").await;
    for args in [
        &["add", "full-out", "t"][..],
        &["stats", "full-out", "--json"],
    ] {
        let out = Command::new(bin_path("jobq"))
            .args(["--redis-url", env.config.redis_url().unwrap()])
            .args(["--prefix", env.config.prefix()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
            )
            .output()
            .unwrap();
        let e = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {e}");
        assert!(!e.contains("panicked"), "{args:?}: {e}");
        assert!(
            e.contains("stdout") && e.lines().count() == 1,
            "{args:?}: {e}"
        );
    }
    // the add was done once
    assert_eq!(q.counts().await.unwrap().waiting, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_job_id_is_named_clipped_not_echoed_whole() {
    let env = TestEnv::new().await;
    let q = env.queue("huge-id").await;
    q.add("t", &serde_json::json!({}), JobOptions::new())
        .await
        .unwrap();
    let id = "x".repeat(100_000);
    for cmd in ["show", "remove", "cancel"] {
        let out = jobq(&env, &[cmd, "huge-id", &id]);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", stderr(&out));
        let e = stderr(&out);
        assert!(
            e.contains("not found") && e.len() < 1_000,
            "{cmd}: {} bytes",
            e.len()
        );
    }
}

/// `jobq list` of queue `bad-opts` (JSON and text) lists the three waiting jobs `ids`,
/// marking the second alone as having corrupt options, which `jobq show` names too.
fn only_the_second_marked_corrupt_opts(env: &TestEnv, ids: &[String]) {
    let out = jobq(env, &["list", "bad-opts", "--state", "waiting", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let marked = marked_corrupt(&lines, "opts");
    assert_eq!(marked, vec![ids[1].as_str()], "{lines:?}");
    let out = jobq(env, &["list", "bad-opts", "--state", "waiting"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for id in ids {
        assert!(text.contains(id.as_str()), "{id} missing from:\n{text}");
    }
    let out = jobq(env, &["show", "bad-opts", &ids[1]]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("field opts"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
