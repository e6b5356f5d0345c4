//! `jobq flow add` end to end: a bad flow file exits 2 with one line naming the node and
//! stores nothing; a good one prints its tree with the ids (text and `--json`), and `show`,
//! `stats` and `list` see the parent waiting for its children and how each child ended.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{jobq_env, jobq_in, keys_of, one_json, stderr, stdout};
use jobq_tests::*;
use queue_core::{list_queues, Ctx, Job, JobError, JobState};
use serde_json::{json, Value};

/// Asserts that `flow` (sent on stdin, and as a file) exits 2 with one line naming `path`
/// and `problem`.
fn refused(env: &TestEnv, vars: &[(&str, &str)], flow: &str, path: &str, problem: &str) {
    let file = std::env::temp_dir().join(format!("jobq-flow-{}.json", fresh_prefix()));
    std::fs::write(&file, flow).unwrap();
    let from_file = jobq_env(env, vars, &["flow", "add", file.to_str().unwrap()], b"");
    std::fs::remove_file(&file).ok();
    let from_stdin = jobq_env(env, vars, &["flow", "add", "-"], flow.as_bytes());
    for (out, input) in [
        (from_file, file.display().to_string()),
        (from_stdin, "stdin".into()),
    ] {
        let err = stderr(&out);
        let shown = &flow[..flow.len().min(80)];
        assert_eq!(out.status.code(), Some(2), "{shown}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(&input), "names the input {input}: {err}");
        assert!(err.contains(path), "names {path}: {err}");
        assert!(err.contains(problem), "says {problem}: {err}");
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    }
}

/// A node of a flow file.
fn node(queue: &str, name: &str, extra: Value) -> Value {
    let mut n = json!({"queue": queue, "name": name});
    if let (Value::Object(n), Value::Object(extra)) = (&mut n, extra) {
        n.extend(extra);
    }
    n
}

#[tokio::test]
async fn a_malformed_flow_file_exits_2_naming_the_node_and_stores_nothing() {
    let env = TestEnv::new().await;
    let missing_name = node(
        "fp",
        "parent",
        json!({"children": [node("fc", "ok", json!({})), {"queue": "fc", "data": 1}]}),
    );
    refused(
        &env,
        &[],
        &missing_name.to_string(),
        "flow node root.children[1]",
        "\"name\" is missing",
    );
    let wide = node(
        "fp",
        "parent",
        json!({"children": [node("fc", "mid", json!({
            "children": vec![node("fc", "leaf", json!({})); 10_001]
        }))]}),
    );
    refused(
        &env,
        &[],
        &wide.to_string(),
        "flow node root.children[0]",
        "10001 children",
    );
    // no node to name: the input is
    refused(&env, &[], "{\"queue\": \"fp\", ", "", "not valid JSON");
    let not_a_node = node("fp", "parent", json!({"children": [[1, 2]]}));
    refused(
        &env,
        &[],
        &not_a_node.to_string(),
        "flow node root.children[0]",
        "expected an object",
    );
    // a missing file names it
    let out = jobq_in(&env, &["flow", "add", "/nonexistent/flow.json"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("/nonexistent/flow.json"));
    assert_eq!(
        keys_of(&env).await,
        Vec::<String>::new(),
        "something was stored"
    );

    // checked before connecting: still bad input when Redis is down
    let port = free_port().to_string();
    let url = format!("redis://127.0.0.1:{port}");
    let out = Command::new(bin_path("jobq"))
        .args(["--redis-url", &url, "flow", "add", "-"])
        .env_remove("REDIS_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(missing_name.to_string().as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("root.children[1]"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_flow_file_over_the_size_limit_exits_2_naming_both_sizes() {
    let env = TestEnv::new().await;
    // padding after the JSON: only the size is wrong
    let mut big = node("fp", "parent", json!({})).to_string().into_bytes();
    big.resize(64 * 1024 * 1024 + 1, b' ');
    let out = jobq_in(&env, &["flow", "add", "-"], &big);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("stdin") && err.contains("67108864 bytes"),
        "{err}"
    );
    assert_eq!(
        keys_of(&env).await,
        Vec::<String>::new(),
        "something was stored"
    );
}

#[tokio::test]
async fn a_flow_the_producer_refuses_exits_2_naming_the_node_and_stores_nothing() {
    let env = TestEnv::new().await;
    let id = |id: &str| json!({"opts": {"jobId": id}});
    let cases = [
        (
            node(
                "fp",
                "parent",
                json!({"children": [node("fc", "ok", json!({})), node("bad queue!", "x", json!({}))]}),
            ),
            "flow node root.children[1]",
            "bad queue!",
        ),
        (
            node(
                "fp",
                "parent",
                json!({"opts": {"jobId": "p1"}, "children": [node("fc", "mid", json!({
                    "children": [node("fp", "again", id("p1"))]
                }))]}),
            ),
            "flow node root.children[0].children[0]",
            "cycle",
        ),
        (
            node(
                "fp",
                "parent",
                json!({"children": [node("fc", "a", id("same")), node("fc", "b", id("same"))]}),
            ),
            "flow node root.children[1]",
            "duplicate id",
        ),
    ];
    for (flow, path, problem) in cases {
        refused(&env, &[], &flow.to_string(), path, problem);
    }
    // a child's data over JOBQ_MAX_DATA_BYTES, named with both sizes
    let big = node(
        "fp",
        "parent",
        json!({"children": [
            node("fc", "ok", json!({})),
            node("fc", "big", json!({"data": "x".repeat(2_000)})),
        ]}),
    );
    refused(
        &env,
        &[("JOBQ_MAX_DATA_BYTES", "1000")],
        &big.to_string(),
        "flow node root.children[1]",
        "1000 bytes",
    );
    assert_eq!(
        keys_of(&env).await,
        Vec::<String>::new(),
        "something was stored"
    );
    assert!(list_queues(&env.redis, env.config.prefix())
        .await
        .unwrap()
        .is_empty());
}

/// The flow of the success tests: a parent that ignores failed children, two leaves, and a
/// middle job with a leaf of its own.
fn publish_flow() -> Value {
    node(
        "fl-pub",
        "publish",
        json!({"data": {"video": "v1"}, "opts": {"onChildFailure": "ignore"}, "children": [
            node("fl-work", "ok", json!({"data": {"n": 1}})),
            node("fl-work", "boom", json!({})),
            node("fl-mid", "mid", json!({"children": [
                node("fl-work", "ok", json!({"data": {"n": 2}})),
            ]})),
        ]}),
    )
}

#[tokio::test]
async fn flow_add_prints_the_tree_with_ids_indented_one_line_per_job() {
    let env = TestEnv::new().await;
    let out = jobq_in(
        &env,
        &["flow", "add", "-"],
        publish_flow().to_string().as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    let expected = [
        (0, "fl-pub", "publish"),
        (2, "fl-work", "ok"),
        (2, "fl-work", "boom"),
        (2, "fl-mid", "mid"),
        (4, "fl-work", "ok"),
    ];
    for (line, (indent, queue, name)) in lines.iter().zip(expected) {
        let body = line.trim_start();
        assert_eq!(line.len() - body.len(), indent, "{text}");
        let (job, job_name) = body.split_once(' ').unwrap();
        let (q, id) = job.split_once('/').unwrap();
        assert_eq!((q, job_name), (queue, name), "{text}");
        // every printed id is a stored job of that queue
        let info = env.queue(q).await.job(id).await.unwrap();
        assert_eq!(info.name, name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_add_json_then_show_stats_and_list_follow_the_parent_and_its_children() {
    let env = TestEnv::new().await;
    let file = std::env::temp_dir().join(format!("jobq-flow-{}.json", env.config.prefix()));
    std::fs::write(&file, publish_flow().to_string()).unwrap();
    let tree = one_json(&env, &["flow", "add", file.to_str().unwrap()]);
    std::fs::remove_file(&file).ok();
    // the shape of the flow, every node with an id
    assert_eq!(
        (tree["queue"].as_str(), tree["name"].as_str()),
        (Some("fl-pub"), Some("publish"))
    );
    let kids = tree["children"].as_array().unwrap();
    let names: Vec<&str> = kids.iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ok", "boom", "mid"]);
    assert_eq!(kids[2]["children"][0]["queue"], "fl-work");
    assert_eq!(kids[0]["children"], json!([]));
    let parent = tree["id"].as_str().unwrap().to_string();
    let id_of = |k: &Value| k["id"].as_str().unwrap().to_string();
    let (ok, boom, mid) = (id_of(&kids[0]), id_of(&kids[1]), id_of(&kids[2]));
    assert!(!parent.is_empty() && !ok.is_empty() && ok != boom);

    // the parent waits for its children
    let stats = one_json(&env, &["stats", "fl-pub"]);
    assert_eq!(stats["waiting_children"], 1, "{stats}");
    assert_eq!(stats["waiting"], 0, "{stats}");
    let out = jobq_in(&env, &["stats"], b"");
    assert!(
        stdout(&out).contains("WAITING_CHILDREN"),
        "{}",
        stdout(&out)
    );
    let out = jobq_in(
        &env,
        &["--json", "list", "fl-pub", "--state", "waiting_children"],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], parent.as_str());
    assert_eq!(listed[0]["state"], "waiting_children");

    // a child names its parent
    let child = one_json(&env, &["show", "fl-work", &ok]);
    assert_eq!(child["parent"], json!({"queue": "fl-pub", "id": parent}));
    assert_eq!(child["children"], json!([]));
    let out = jobq_in(&env, &["show", "fl-work", &ok], b"");
    assert!(
        stdout(&out).contains(&format!("parent:    fl-pub/{parent}")),
        "{}",
        stdout(&out)
    );

    // the leaves of fl-work run: one completes, one fails; mid waits for its own child
    let worker = env
        .worker()
        .queues(["fl-work"])
        .handler("ok", |job: Job<Value>, _ctx: Ctx| async move {
            Ok::<_, JobError>(json!({"got": job.data["n"]}))
        })
        .handler("boom", |_job: Job<Value>, _ctx: Ctx| async move {
            Err::<Value, _>(JobError::new("boom: no such codec"))
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let work = env.queue("fl-work").await;
    wait_finished(&work, 3, Duration::from_secs(10)).await;
    let mid_queue = env.queue("fl-mid").await;
    eventually(Duration::from_secs(10), "mid to wait", || async {
        (mid_queue.job(&mid).await.ok()?.state == JobState::Waiting).then_some(())
    })
    .await;
    guard.stop().await.unwrap();

    let shown = one_json(&env, &["show", "fl-pub", &parent]);
    assert_eq!(shown["state"], "waiting_children");
    let children = shown["children"].as_array().unwrap();
    assert_eq!(children.len(), 3, "{shown}");
    assert_eq!(
        children[0],
        json!({"queue": "fl-work", "id": ok, "name": "ok", "state": "completed",
               "return_value": {"got": 1}})
    );
    assert_eq!(children[1]["state"], "failed");
    assert!(
        children[1]["failed_reason"]
            .as_str()
            .unwrap()
            .contains("no such codec"),
        "{shown}"
    );
    assert_eq!(
        children[2],
        json!({"queue": "fl-mid", "id": mid, "name": "mid", "state": "waiting"})
    );

    let out = jobq_in(&env, &["show", "fl-pub", &parent], b"");
    let text = stdout(&out);
    assert!(text.contains("children:  3 (1 to finish)"), "{text}");
    let row = |id: &str| {
        text.lines()
            .find(|l| l.contains(&format!("/{id} ")))
            .unwrap_or_else(|| panic!("no row for {id}: {text}"))
            .to_string()
    };
    let ok_row = row(&ok);
    assert!(
        ok_row.contains("fl-work/") && ok_row.contains("completed"),
        "{text}"
    );
    assert!(ok_row.contains(r#"{"got":1}"#), "{text}");
    let boom_row = row(&boom);
    assert!(
        boom_row.contains("failed") && boom_row.contains("no such codec"),
        "{text}"
    );
    assert!(row(&mid).contains("waiting"), "{text}");
}
