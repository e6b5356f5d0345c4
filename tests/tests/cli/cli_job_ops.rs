//! `jobq` for the `Queue` operations on one job: `add --dedup-id/--dedup-ttl`,
//! `add --debounce-id/--debounce-ttl` (and debounce in add-bulk lines), `priority` and
//! `update`; their exit codes (unknown job 1, bad value 2) and `--json` output.

use crate::{jobq_env, jobq_in, one_json, stderr, stdout};
use jobq_tests::*;
use serde_json::{json, Value};

/// Runs `jobq <args>` and asserts its exit code; returns stderr.
fn fails(env: &TestEnv, args: &[&str], code: i32) -> String {
    let out = jobq_in(env, args, b"");
    assert_eq!(
        out.status.code(),
        Some(code),
        "jobq {args:?}: {}",
        stderr(&out)
    );
    stderr(&out)
}

fn show(env: &TestEnv, queue: &str, id: &str) -> Value {
    one_json(env, &["show", queue, id])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_with_a_dedup_id_stores_once_within_its_ttl() {
    let env = TestEnv::new().await;
    let dedup = ["--dedup-id", "mail:42", "--dedup-ttl", "1m"];
    let first = one_json(
        &env,
        &[&["add", "dd", "mail", "--data", "1"][..], &dedup].concat(),
    );
    assert_eq!(
        (&first["duplicate"], &first["debounced"]),
        (&json!(false), &json!(false))
    );
    let id = first["id"].as_str().unwrap();
    let again = one_json(
        &env,
        &[&["add", "dd", "mail", "--data", "2"][..], &dedup].concat(),
    );
    assert_eq!(
        (&again["id"], &again["duplicate"]),
        (&json!(id), &json!(true))
    );
    assert_eq!(
        again["data"],
        json!(1),
        "the first add's job is kept as it was"
    );
    let out = jobq_in(&env, &[&["add", "dd", "mail"][..], &dedup].concat(), b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!("{id} (already stored")),
        "{}",
        stdout(&out)
    );
    assert_eq!(one_json(&env, &["stats", "dd"])["waiting"], 1);
    // another dedup id is another job
    let other = one_json(
        &env,
        &[
            "add",
            "dd",
            "mail",
            "--dedup-id",
            "mail:43",
            "--dedup-ttl",
            "1m",
        ],
    );
    assert_ne!(other["id"], json!(id));

    for (args, needle) in [
        (vec!["--dedup-id", "x", "--dedup-ttl", "0s"], "0s"),
        (
            vec!["--dedup-id", "x", "--dedup-ttl", "200000000000d"],
            "200000000000d",
        ),
        (vec!["--dedup-id", "x", "--dedup-ttl", "-5s"], "-5s"),
        (vec!["--dedup-id", "a b", "--dedup-ttl", "5s"], "a b"),
        (vec!["--dedup-id", "x"], "--dedup-ttl"),
        (vec!["--dedup-ttl", "5s"], "--dedup-id"),
    ] {
        let e = fails(&env, &[&["add", "dd", "mail"][..], &args].concat(), 2);
        assert!(e.contains(needle), "{args:?}: {e}");
    }
    assert_eq!(one_json(&env, &["stats", "dd"])["waiting"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_with_a_debounce_id_replaces_the_waiting_job_and_bad_values_exit_2() {
    let env = TestEnv::new().await;
    let deb = [
        "--debounce-id",
        "doc:7",
        "--debounce-ttl",
        "5s",
        "--delay",
        "1h",
    ];
    let first = one_json(
        &env,
        &[&["add", "db", "index", "--data", r#"{"v":1}"#][..], &deb].concat(),
    );
    assert_eq!(
        (&first["debounced"], &first["state"]),
        (&json!(false), &json!("delayed"))
    );
    let id = first["id"].as_str().unwrap().to_string();
    let second = one_json(
        &env,
        &[&["add", "db", "reindex", "--data", r#"{"v":2}"#][..], &deb].concat(),
    );
    assert_eq!(
        (&second["id"], &second["debounced"], &second["duplicate"]),
        (&json!(id), &json!(true), &json!(false))
    );
    assert_eq!(
        (&second["name"], &second["data"]),
        (&json!("reindex"), &json!({"v": 2}))
    );
    let out = jobq_in(
        &env,
        &[&["add", "db", "index", "--data", "3"][..], &deb].concat(),
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!("{id} (debounced")),
        "{}",
        stdout(&out)
    );
    assert_eq!(show(&env, "db", &id)["data"], json!(3));
    let s = one_json(&env, &["stats", "db"]);
    assert_eq!((&s["waiting"], &s["delayed"]), (&json!(0), &json!(1)));

    // add-bulk lines: debounced into the same job, counted apart
    let lines = r#"{"name":"index","data":4,"opts":{"debounce":{"id":"doc:7","ttl":"5s"},"delay":"1h"}}
{"name":"index","data":"new","opts":{"debounce":{"id":"doc:8","ttl":5000}}}
{"name":"index","data":5,"opts":{"debounce":{"id":"doc:7","ttl":"5s"},"delay":"1h"}}
"#;
    let out = jobq_in(&env, &["--json", "add-bulk", "db", "-"], lines.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    let bulk: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (&bulk["added"], &bulk["debounced"], &bulk["duplicates"]),
        (&json!(1), &json!(2), &json!(0)),
        "{bulk}"
    );
    assert_eq!((&bulk["ids"][0], &bulk["ids"][2]), (&json!(id), &json!(id)));
    assert_eq!(show(&env, "db", &id)["data"], json!(5));

    for (args, code, needle) in [
        (vec!["--debounce-id", "x", "--debounce-ttl", "0s"], 2, "0s"),
        (
            vec!["--debounce-id", "x", "--debounce-ttl", "200000000000d"],
            2,
            "200000000000d",
        ),
        (
            vec!["--debounce-id", "x y", "--debounce-ttl", "5s"],
            2,
            "x y",
        ),
        (vec!["--debounce-id", "x"], 2, "--debounce-ttl"),
        (
            vec![
                "--debounce-id",
                "x",
                "--debounce-ttl",
                "1s",
                "--dedup-id",
                "y",
                "--dedup-ttl",
                "1s",
            ],
            2,
            "--dedup-id",
        ),
    ] {
        let e = fails(&env, &[&["add", "db", "index"][..], &args].concat(), code);
        assert!(e.contains(needle), "{args:?}: {e}");
    }
    let line = r#"{"name":"index","opts":{"debounce":{"id":"doc:7","ttl":"0s"}}}"#;
    let out = jobq_in(&env, &["add-bulk", "db", "-"], line.as_bytes());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("line 1") && stderr(&out).contains("debounce ttl"),
        "{}",
        stderr(&out)
    );
    let s = one_json(&env, &["stats", "db"]);
    assert_eq!((&s["waiting"], &s["delayed"]), (&json!(1), &json!(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_changes_a_waiting_job_and_refuses_unknown_ids_and_bad_values() {
    let env = TestEnv::new().await;
    let a = one_json(&env, &["add", "pr", "work"]);
    let id = a["id"].as_str().unwrap().to_string();
    let out = one_json(&env, &["priority", "pr", &id, "7"]);
    assert_eq!(out, json!({"queue": "pr", "id": id, "priority": 7}));
    assert_eq!(show(&env, "pr", &id)["priority"], 7);
    let out = jobq_in(&env, &["priority", "pr", &id, "-5"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("priority -5"), "{}", stdout(&out));
    assert_eq!(show(&env, "pr", &id)["priority"], -5);

    let e = fails(&env, &["priority", "pr", "nope", "3"], 1);
    assert!(e.contains("nope"), "{e}");
    let e = fails(&env, &["--json", "priority", "ghostq", &id, "3"], 1);
    assert!(e.contains("ghostq"), "{e}");
    for bad in ["1001", "-1001", "high", "1.5"] {
        let e = fails(&env, &["priority", "pr", &id, bad], 2);
        assert!(e.contains(bad), "{bad}: {e}");
    }
    // a finished job's priority no longer matters: refused
    let q = env.queue("pr").await;
    q.remove_job(&id).await.unwrap();
    let done = one_json(&env, &["add", "pr", "work", "--job-id", "done-1"]);
    let guard = spawn_worker(
        env.worker()
            .queues(["pr"])
            .handler(
                "work",
                |_j: queue_core::Job<Value>, _c: queue_core::Ctx| async {
                    Ok::<_, queue_core::JobError>(())
                },
            )
            .build()
            .unwrap(),
    );
    wait_job_done(
        &q,
        done["id"].as_str().unwrap(),
        std::time::Duration::from_secs(5),
    )
    .await;
    guard.stop().await.unwrap();
    let e = fails(&env, &["priority", "pr", "done-1", "3"], 1);
    assert!(e.contains("completed"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_replaces_a_jobs_data_from_json_or_a_file_and_refuses_bad_input() {
    let env = TestEnv::new().await;
    let a = one_json(&env, &["add", "up", "work", "--data", r#"{"v":1}"#]);
    let id = a["id"].as_str().unwrap().to_string();
    let out = one_json(&env, &["update", "up", &id, "--data", r#"{"v":2}"#]);
    assert_eq!(out, json!({"queue": "up", "id": id, "data": {"v": 2}}));
    assert_eq!(show(&env, "up", &id)["data"], json!({"v": 2}));

    let dir = TempDir::new("cli-update");
    let file = dir.path().join("data.json");
    let long = "x".repeat(5_000);
    std::fs::write(&file, format!("\u{feff}{{\"long\": \"{long}\"}}")).unwrap();
    let out = jobq_in(
        &env,
        &["update", "up", &id, "--data-file", file.to_str().unwrap()],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("job {id}")),
        "{}",
        stdout(&out)
    );
    assert_eq!(show(&env, "up", &id)["data"], json!({"long": long}));

    let e = fails(&env, &["update", "up", "nope", "--data", "1"], 1);
    assert!(e.contains("nope"), "{e}");
    let e = fails(&env, &["update", "ghostq", &id, "--data", "1"], 1);
    assert!(e.contains("ghostq"), "{e}");
    let e = fails(&env, &["update", "up", &id, "--data", "{oops"], 2);
    assert!(e.contains("{oops"), "{e}");
    let e = fails(&env, &["update", "up", &id], 2);
    assert!(e.contains("--data"), "{e}");
    let e = fails(
        &env,
        &["update", "up", &id, "--data-file", "/no/such/file.json"],
        2,
    );
    assert!(e.contains("/no/such/file.json"), "{e}");
    let big = format!("\"{}\"", "y".repeat(2_000));
    let out = jobq_env(
        &env,
        &[("JOBQ_MAX_DATA_BYTES", "1000")],
        &["update", "up", &id, "--data", &big],
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("1000"), "{}", stderr(&out));
    assert_eq!(show(&env, "up", &id)["data"], json!({"long": long}));
}
