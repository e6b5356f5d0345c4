//! `jobq search` through the binary: a table with the next page's cursor, `--json` as one
//! object, and bad input (an unknown state, a bad `--since`, a `--limit` out of range, a
//! cursor that is not one) refused with exit 2 naming the value.

use crate::{jobq_in, one_json, stderr, stdout};
use jobq_tests::*;
use queue_core::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_prints_a_table_then_the_cursor_of_the_next_page() {
    let env = TestEnv::new().await;
    let q = env.queue("cs").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let data = json!({"user": format!("u{i}@example.com")});
        ids.push(
            q.add("mail.send", &data, JobOptions::new())
                .await
                .unwrap()
                .id,
        );
    }
    q.add(
        "mail.sendx",
        &json!({"user": "u0@example.com"}),
        JobOptions::new(),
    )
    .await
    .unwrap();

    let out = jobq_in(
        &env,
        &["search", "cs", "--name", "mail.send", "--limit", "2"],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATE"),
        "{text}"
    );
    // newest first: the last two added
    assert!(
        lines[1].starts_with(&ids[2]) && lines[2].starts_with(&ids[1]),
        "{text}"
    );
    let cursor = lines[3]
        .strip_prefix("more may match: add --cursor ")
        .unwrap_or_else(|| panic!("{text}"));
    let out = jobq_in(
        &env,
        &[
            "search",
            "cs",
            "--name",
            "mail.send",
            "--limit",
            "2",
            "--cursor",
            cursor,
        ],
        b"",
    );
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.lines().nth(1).unwrap().starts_with(&ids[0]), "{text}");

    // --json: one object, the jobs as `show --json` prints them
    let v = one_json(&env, &["search", "cs", "--data", "u0@"]);
    let jobs = v["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{v}");
    assert_eq!(jobs[1]["id"], ids[0].as_str());
    assert_eq!(jobs[1]["max_attempts"], 1);
    assert_eq!(v["next"], serde_json::Value::Null);

    let out = jobq_in(&env, &["search", "cs", "--data", "nobody"], b"");
    assert_eq!(stdout(&out).trim(), "no matching jobs in cs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_refuses_bad_input_with_exit_2_naming_the_value() {
    let env = TestEnv::new().await;
    let q = env.queue("cb").await;
    q.add("t", &json!({}), JobOptions::new()).await.unwrap();
    let long = "x".repeat(2_000);
    for (args, named) in [
        (vec!["--state", "done"], "done"),
        (vec!["--since", "200000000000d"], "200000000000d"),
        (vec!["--since", "abc"], "abc"),
        (vec!["--since", "-1h"], "-1h"),
        (vec!["--limit", "0"], "0"),
        (vec!["--limit", "1001"], "1001"),
        (vec!["--cursor", "not-a-cursor"], "not-a-cursor"),
        (vec!["--data", long.as_str()], "data"),
        // an empty filter would match every job, as if left out
        (vec!["--name", ""], "name: empty"),
        (vec!["--error", ""], "error: empty"),
    ] {
        let all = [&["search", "cb"][..], &args].concat();
        let out = jobq_in(&env, &all, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let e = stderr(&out);
        assert!(
            e.lines().next().unwrap_or("").contains(named),
            "{args:?}: {e}"
        );
    }
    // a cursor of another state's search
    let v = one_json(
        &env,
        &["search", "cb", "--state", "waiting", "--limit", "1"],
    );
    let cursor = v["next"].as_str().expect("a cursor");
    let out = jobq_in(
        &env,
        &["search", "cb", "--state", "failed", "--cursor", cursor],
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("waiting"), "{}", stderr(&out));
    let out = jobq_in(&env, &["search", "nope", "--data", "x"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("nope"));
}
