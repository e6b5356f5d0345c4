//! `jobq` and groups, through the built binary: `add --group` (and a bulk line's
//! `opts.group`) puts a job in its group, a bad group key exits 2 naming it and stores
//! nothing, `jobq limits` sets, shows and clears the group limits (the default and an
//! override), and `jobq groups` counts the waiting jobs of each group.

use std::time::Duration;

use crate::{jobq_in, keys_of, one_json, stderr, stdout};
use jobq_tests::*;
use queue_core::{Ctx, GroupLimitChange, GroupLimits, Job, JobError, JobOptions, NewJob};
use serde_json::{json, Value};

/// Runs `jobq <args>` for its text, asserting exit 0.
fn ok_text(env: &TestEnv, args: &[&str]) -> String {
    let out = jobq_in(env, args, b"");
    assert!(out.status.success(), "jobq {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// `groups --json`'s groups as (group, waiting, active).
fn rows(view: &Value) -> Vec<(String, u64, u64)> {
    view["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("no groups: {view}"))
        .iter()
        .map(|g| {
            (
                g["group"].as_str().unwrap().to_string(),
                g["waiting"].as_u64().unwrap(),
                g["active"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn add_with_group_puts_the_job_in_its_group_as_groups_and_show_see_it() {
    let env = TestEnv::new().await;
    for (group, n) in [("tenant:a", 3), ("b.2", 1)] {
        for _ in 0..n {
            ok_text(&env, &["add", "gq", "diag.noop", "--group", group]);
        }
    }
    let plain = ok_text(&env, &["add", "gq", "diag.noop"]);
    let added = one_json(
        &env,
        &[
            "add",
            "gq",
            "diag.noop",
            "--group",
            "tenant:a",
            "--priority",
            "5",
        ],
    );
    assert_eq!(added["opts"]["group"], "tenant:a", "{added}");

    let view = one_json(&env, &["groups", "gq"]);
    assert_eq!(
        rows(&view),
        vec![("tenant:a".into(), 4, 0), ("b.2".into(), 1, 0)],
        "{view}"
    );
    assert_eq!(
        (
            &view["with_waiting"],
            &view["with_active"],
            &view["limited"]
        ),
        (&json!(2), &json!(0), &json!(0)),
        "{view}"
    );
    // a job without --group is in no group
    let shown = one_json(&env, &["show", "gq", plain.trim()]);
    assert!(shown["opts"].get("group").is_none(), "{shown}");
    let id = added["id"].as_str().unwrap();
    assert!(
        ok_text(&env, &["show", "gq", id]).contains("group tenant:a"),
        "show names the group"
    );
    // the stats count every waiting job, grouped or not
    assert_eq!(one_json(&env, &["stats", "gq"])["waiting"], 6);
}

#[tokio::test]
async fn a_bad_group_key_exits_2_naming_it_and_stores_nothing() {
    let env = TestEnv::new().await;
    let long = "x".repeat(129);
    for bad in ["", "a b", "a/b", "{tag}", "é", long.as_str()] {
        let out = jobq_in(&env, &["add", "gq", "diag.noop", "--group", bad], b"");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {err}");
        assert!(err.contains(&format!("{bad:?}")), "names {bad:?}: {err}");
        assert!(err.contains("--group"), "names the option: {err}");
        assert!(stdout(&out).is_empty());
    }
    // --group for limits too, before anything is read or changed
    let out = jobq_in(
        &env,
        &["limits", "gq", "--group-concurrency", "2", "--group", "a b"],
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("\"a b\""), "{}", stderr(&out));
    assert_eq!(keys_of(&env).await, Vec::<String>::new());
}

/// A bulk file's `opts.group`: a bad one names its line and value and stores nothing, good
/// lines land in their groups.
#[tokio::test]
async fn add_bulk_lines_take_a_group_and_a_bad_one_names_its_line() {
    let env = TestEnv::new().await;
    let bad = "{\"name\":\"diag.noop\",\"opts\":{\"group\":\"ok\"}}\n\
               {\"name\":\"diag.noop\",\"opts\":{\"group\":\"no spaces\"}}\n";
    let out = jobq_in(&env, &["add-bulk", "gq", "-"], bad.as_bytes());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("line 2") && err.contains("no spaces"), "{err}");
    assert_eq!(keys_of(&env).await, Vec::<String>::new());

    let good = "{\"name\":\"diag.noop\",\"opts\":{\"group\":\"t1\"}}\n\
                {\"name\":\"diag.noop\",\"opts\":{\"group\":\"t2\"}}\n\
                {\"name\":\"diag.noop\",\"opts\":{\"group\":\"t1\"}}\n";
    let out = jobq_in(&env, &["add-bulk", "gq", "-"], good.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    let view = one_json(&env, &["groups", "gq"]);
    assert_eq!(
        rows(&view),
        vec![("t1".into(), 2, 0), ("t2".into(), 1, 0)],
        "{view}"
    );
}

#[tokio::test]
async fn limits_set_show_and_clear_the_group_default_and_an_override() {
    let env = TestEnv::new().await;
    ok_text(&env, &["add", "lq", "diag.noop"]);
    let none = one_json(&env, &["limits", "lq"]);
    assert_eq!(
        none,
        json!({"queue": "lq", "rate_max": null, "rate_window_ms": null, "concurrency": null,
               "group": {"default": {}, "overrides": {}}})
    );

    // the default, and the queue's own limits beside it
    let set = one_json(
        &env,
        &[
            "limits",
            "lq",
            "--group-concurrency",
            "2",
            "--group-rate",
            "10/1s",
            "--rate",
            "100/1m",
            "--concurrency",
            "20",
        ],
    );
    let default = json!({"concurrency": 2, "rate_max": 10, "rate_window_ms": 1000});
    assert_eq!(set["group"], json!({"default": default, "overrides": {}}));
    assert_eq!(
        (
            &set["rate_max"],
            &set["rate_window_ms"],
            &set["concurrency"]
        ),
        (&json!(100), &json!(60_000), &json!(20)),
        "{set}"
    );
    // an override of one kind, for one group
    one_json(
        &env,
        &["limits", "lq", "--group", "vip", "--group-concurrency", "5"],
    );
    let shown = one_json(&env, &["limits", "lq"]);
    assert_eq!(
        shown["group"],
        json!({"default": default, "overrides": {"vip": {"concurrency": 5}}}),
        "{shown}"
    );
    // as the engine reads them
    let q = env.queue("lq").await;
    let view = q.group_limits().await.unwrap();
    assert_eq!(
        view.effective("vip"),
        GroupLimits {
            concurrency: Some(5),
            rate_max: Some(10),
            rate_window_ms: Some(1000)
        }
    );
    assert_eq!(view.effective("other").concurrency, Some(2));
    let text = ok_text(&env, &["limits", "lq"]);
    for needle in [
        "each group (default)",
        "group vip",
        "10/1s",
        "100/1m",
        "default",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }

    // clearing the override falls back to the default; clearing the default's rate
    let cleared = one_json(
        &env,
        &[
            "limits",
            "lq",
            "--group",
            "vip",
            "--clear-group-concurrency",
        ],
    );
    assert_eq!(
        cleared["group"],
        json!({"default": default, "overrides": {}}),
        "{cleared}"
    );
    let cleared = one_json(
        &env,
        &["limits", "lq", "--clear-group-rate", "--clear-rate"],
    );
    assert_eq!(
        cleared["group"],
        json!({"default": {"concurrency": 2}, "overrides": {}}),
        "{cleared}"
    );
    assert_eq!(cleared["rate_max"], Value::Null, "{cleared}");
    assert_eq!(cleared["concurrency"], 20, "{cleared}");
    assert_eq!(
        q.group_limits().await.unwrap().default,
        GroupLimits {
            concurrency: Some(2),
            ..GroupLimits::default()
        }
    );

    // bad values exit 2 naming them, and change nothing
    for (args, bad) in [
        (vec!["limits", "lq", "--group-rate", "0/1s"], "0/1s"),
        (vec!["limits", "lq", "--group-rate", "10"], "10"),
        (vec!["limits", "lq", "--group-concurrency", "0"], "0"),
        (vec!["limits", "lq", "--group", "vip"], "--group-"),
    ] {
        let out = jobq_in(&env, &args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(bad), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(one_json(&env, &["limits", "lq"]), cleared);
    // an unknown queue is a runtime failure naming it
    let out = jobq_in(&env, &["limits", "nosuchq"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("nosuchq"));
}

#[tokio::test]
async fn groups_counts_waiting_per_group_busiest_first_and_shows_the_limited() {
    let env = TestEnv::new().await;
    let q = env.queue("cq").await;
    let jobs: Vec<NewJob> = [("a", 5), ("b", 2), ("c", 1)]
        .into_iter()
        .flat_map(|(g, n)| {
            (0..n).map(move |_| {
                NewJob::new("slow", &json!(null), JobOptions::new().group(g)).unwrap()
            })
        })
        .collect();
    q.add_bulk(jobs).await.unwrap();
    q.add("slow", &json!(null), JobOptions::new())
        .await
        .unwrap();

    let view = one_json(&env, &["groups", "cq"]);
    assert_eq!(
        rows(&view),
        vec![("a".into(), 5, 0), ("b".into(), 2, 0), ("c".into(), 1, 0)],
        "{view}"
    );
    assert_eq!(view["with_waiting"], 3, "{view}");
    let top = one_json(&env, &["groups", "cq", "--limit", "2"]);
    assert_eq!(rows(&top).len(), 2, "{top}");
    assert_eq!(top["with_waiting"], 3, "counts every group: {top}");
    let text = ok_text(&env, &["groups", "cq"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["GROUP", "WAITING", "ACTIVE", "LIMITED"],
        "{text}"
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["a", "5", "0", "-"],
        "{text}"
    );
    assert!(
        lines[4].starts_with("3 group(s) with waiting jobs, 0 with active jobs, 0 limited"),
        "{text}"
    );

    // one active job per group at most: a group with more waiting is held back
    q.set_group_limit(None, GroupLimitChange::Concurrency(1))
        .await
        .unwrap();
    let worker = env
        .worker()
        .queues(["cq"])
        .concurrency(8)
        .handler("slow", |_job: Job<Value>, c: Ctx| async move {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                _ = c.cancellation_token().cancelled() => {}
            }
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let view = eventually(Duration::from_secs(10), "three groups active", || async {
        let v = one_json(&env, &["groups", "cq"]);
        (v["with_active"] == 3).then_some(v)
    })
    .await;
    assert_eq!(
        rows(&view),
        vec![("a".into(), 4, 1), ("b".into(), 1, 1), ("c".into(), 0, 1)],
        "{view}"
    );
    // a and b wait at their cap; c has nothing left to wait, so nothing holds it back
    assert_eq!(view["limited"], 2, "{view}");
    assert_eq!(view["groups"][0]["limited"], json!({"by": "concurrency"}));
    assert_eq!(view["groups"][1]["limited"], json!({"by": "concurrency"}));
    assert!(view["groups"][2].get("limited").is_none(), "{view}");
    let text = ok_text(&env, &["groups", "cq"]);
    assert!(
        text.lines().nth(1).unwrap().ends_with("concurrency"),
        "{text}"
    );
    drop(guard);
}
