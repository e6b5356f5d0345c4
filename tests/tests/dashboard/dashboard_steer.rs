//! A queue's schedules and limits through the dashboard: added, listed (with next and last
//! runs) and removed, set, shown and cleared over the API, agreeing with `jobq schedule list
//! --json` and `jobq limits --json`; bad input a 400 naming the value with nothing stored;
//! the token, read-only mode and the same-origin check guarding every change; the pages
//! showing hostile stored values as text and a refused form as an error on the page.

use std::time::Duration;

use crate::dashboard_support::*;
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

const TOKEN: &str = "t0ken-for-tests-0123456789";

/// POST `body` (raw JSON text) to `url` → (status, JSON reply).
async fn post(url: &str, body: &str) -> (u16, Value) {
    let r = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn json_lines(out: std::process::Output) -> Vec<Value> {
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Posts a page's form from the dashboard's own origin.
async fn form_post<T: serde::Serialize + ?Sized>(
    d: &Dashboard,
    path: &str,
    form: &T,
) -> reqwest::Response {
    client()
        .post(d.url(path))
        .header("origin", d.origin())
        .form(form)
        .send()
        .await
        .unwrap()
}

/// POST `body` to `path`, with a bearer token or none → the status.
async fn post_as(d: &Dashboard, path: &str, token: Option<&str>, body: &Value) -> u16 {
    let mut req = client().post(d.url(path)).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().status().as_u16()
}

/// The ids of `q`'s schedules, sorted.
async fn schedule_ids(q: &Queue) -> Vec<String> {
    let all = q.schedules().await.unwrap();
    all.into_iter().map(|s| s.id).collect()
}

/// The queues registered under the test's prefix.
async fn queues(env: &TestEnv) -> Vec<String> {
    list_queues(&env.redis, env.config.prefix()).await.unwrap()
}

/// A queue with one schedule, `id`: a job `report` every minute.
async fn with_schedule(env: &TestEnv, name: &str, id: &str) -> Queue {
    let q = env.queue(name).await;
    let every = Repeat::every(Duration::from_secs(60)).unwrap();
    q.upsert_schedule(Schedule::new(id, "report", every))
        .await
        .unwrap();
    q
}

/// A queue that exists (is registered), with nothing in it.
async fn existing(env: &TestEnv, name: &str) -> Queue {
    let q = env.queue(name).await;
    q.register().await.unwrap();
    q
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_added_listed_with_their_runs_and_removed_through_the_api() {
    let env = TestEnv::new().await;
    let d = Dashboard::start(&env, &[]).await;
    let url = d.url("/api/queues/reports/schedules");

    // a new queue: the add creates it, as an enqueue does
    let (s, added) = post(
        &url,
        r#"{"id": "hourly", "name": "report", "every": "1h", "data": {"k": "<b>v</b>"},
            "opts": {"attempts": 2, "backoff": "exp:1s"}}"#,
    )
    .await;
    assert_eq!(s, 201, "{added}");
    let q = env.queue("reports").await;
    let stored = q.schedule("hourly").await.unwrap().expect("stored");
    assert_eq!(added, json!(stored));
    assert_eq!(stored.repeat, Repeat::Every(Duration::from_secs(3600)));
    assert_eq!(
        (stored.opts.attempts, &stored.data),
        (Some(2), &json!({"k": "<b>v</b>"}))
    );
    let next = stored.next_run_ms.unwrap();
    assert!(next > queue_core::internal::clock::now_ms() && next % 3_600_000 == 0);
    let (s, cron) = post(&url, r#"{"id": "a/b", "name": "r", "cron": "0 0 3 * * *"}"#).await;
    assert_eq!((s, &cron["repeat"]), (201, &json!({"cron": "0 0 3 * * *"})));
    // the same id again replaces it
    let (s, _) = post(
        &url,
        r#"{"id": "hourly", "name": "report", "every": 3600000}"#,
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(
        q.schedule("hourly").await.unwrap().unwrap().data,
        Value::Null
    );

    // listed as `jobq schedule list --json` prints them, plus their last run
    let (s, listed) = get_json(&url).await;
    assert_eq!(s, 200, "{listed}");
    let mut api = listed["schedules"].as_array().unwrap().clone();
    assert_eq!(api.len(), 2);
    for one in &mut api {
        assert_eq!(one["last_run"], Value::Null, "nothing fired yet: {one}");
        one.as_object_mut().unwrap().remove("last_run");
    }
    assert_eq!(
        api,
        json_lines(jobq(&env, &["--json", "schedule", "list", "reports"]))
    );
    assert_eq!(listed["queue"], "reports");

    // a fast schedule run by a worker: its last run is the job of its latest tick
    let (s, _) = post(
        &url,
        r#"{"id": "fast", "name": "diag.noop", "every": "200ms"}"#,
    )
    .await;
    assert_eq!(s, 201);
    let worker = env
        .worker()
        .queues(["reports"])
        .handler("diag.noop", |_j: Job<Value>, _c: Ctx| async move {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    eventually(
        Duration::from_secs(10),
        "a last run of the fast schedule",
        || async {
            let (_, v) = get_json(&url).await;
            let fast = v["schedules"]
                .as_array()?
                .iter()
                .find(|s| s["id"] == "fast")?
                .clone();
            (fast["last_run"]["state"] == "completed").then_some(())
        },
    )
    .await;
    guard.stop().await.unwrap();
    let (_, v) = get_json(&url).await;
    let fast = v["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "fast")
        .unwrap();
    let tick = fast["next_run_ms"].as_u64().unwrap() - 200;
    let job_id = format!("sched:fast:{tick}");
    assert_eq!(
        fast["last_run"],
        json!({"tick_ms": tick, "job_id": job_id,
               "state": q.job(&job_id).await.unwrap().state})
    );

    // removed: gone, then a 404 naming it; ids with a slash are one path segment
    let c = client();
    let r = c
        .delete(d.url("/api/queues/reports/schedules/hourly"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"queue": "reports", "id": "hourly", "removed": true})
    );
    assert!(q.schedule("hourly").await.unwrap().is_none());
    let r = c
        .delete(d.url("/api/queues/reports/schedules/a%2Fb"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(q.schedule("a/b").await.unwrap().is_none());
    let r = c
        .delete(d.url("/api/queues/reports/schedules/hourly"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(error_of(r).await.contains("\"hourly\""));
    assert_eq!(schedule_ids(&q).await, ["fast"]);

    // unknown queues: 404, and looking does not create them
    let (s, e) = get_json(&d.url("/api/queues/nope/schedules")).await;
    assert_eq!(s, 404);
    assert!(e["error"].as_str().unwrap().contains("\"nope\""));
    let r = c
        .delete(d.url("/api/queues/nope/schedules/fast"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(queues(&env).await, ["reports"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_schedule_is_a_400_naming_the_value_and_stores_nothing() {
    let env = TestEnv::new().await;
    let q = with_schedule(&env, "sched", "kept").await;
    let before = q.schedules().await.unwrap();
    let d = Dashboard::start_env(
        env.config.redis_url(),
        env.config.prefix(),
        &[],
        &[("JOBQ_MAX_DATA_BYTES", "1024")],
    )
    .await;
    let url = d.url("/api/queues/sched/schedules");
    for (body, status, needle) in [
        (
            r#"{"id": "x", "name": "r", "cron": "61 * * * * *"}"#,
            400,
            "\"61 * * * * *\"",
        ),
        (
            r#"{"id": "x", "name": "r", "cron": "0 0 0 31 2 *"}"#,
            400,
            "never fires",
        ),
        (
            r#"{"id": "x", "name": "r", "cron": "every day"}"#,
            400,
            "\"every day\"",
        ),
        (r#"{"id": "x", "name": "r", "every": "0s"}"#, 400, "0ms"),
        (r#"{"id": "x", "name": "r", "every": 0}"#, 400, "0ms"),
        (r#"{"id": "x", "name": "r", "every": "5ms"}"#, 400, "5ms"),
        (
            r#"{"id": "x", "name": "r", "every": "-1s"}"#,
            400,
            "\"-1s\"",
        ),
        (
            r#"{"id": "x", "name": "r", "every": -1000}"#,
            400,
            "every -1000",
        ),
        (
            r#"{"id": "x", "name": "r", "every": "99999999d"}"#,
            400,
            "99999999d",
        ),
        (
            r#"{"id": "x", "name": "r", "every": 1e300}"#,
            400,
            "every 1e+300",
        ),
        (
            r#"{"id": "x", "name": "r", "every": "1s", "cron": "* * * * * *"}"#,
            400,
            "not both",
        ),
        (
            r#"{"id": "x", "name": "r"}"#,
            400,
            "\"every\" or \"cron\" is missing",
        ),
        (r#"{"name": "r", "every": "1s"}"#, 400, "\"id\" is missing"),
        (
            r#"{"id": "two words", "name": "r", "every": "1s"}"#,
            400,
            "\"two words\"",
        ),
        (r#"{"id": "x", "name": "", "every": "1s"}"#, 400, "job name"),
        (
            r#"{"id": "x", "name": "\u001b[31mred", "every": "1s"}"#,
            400,
            "job name",
        ),
        (
            r#"{"id": "x", "name": "r", "every": "1s", "opts": {"jobId": "fixed"}}"#,
            400,
            "\"fixed\"",
        ),
        (
            r#"{"id": "x", "name": "r", "every": "1s", "opts": {"priority": 5000}}"#,
            400,
            "5000",
        ),
        (
            r#"{"id": "x", "name": "r", "every": "1s", "opts": 3}"#,
            400,
            "opts 3",
        ),
        (
            r#"{"id": "x", "name": "r", "every": "1s", "when": "now"}"#,
            400,
            "\"when\"",
        ),
        (
            r#"{"id": "x", "name": "r", "every": "1s", "data": {"big": "<2000 bytes>"}}"#,
            413,
            "1024",
        ),
        ("{\"id\": ", 400, "not valid JSON"),
        ("", 400, "empty"),
    ] {
        let body = body.replace("<2000 bytes>", &"x".repeat(2000));
        let (s, e) = post(&url, &body).await;
        assert_eq!(s, status, "{body}: {e}");
        let e = e["error"].as_str().unwrap_or_else(|| panic!("{body}: {e}"));
        assert!(e.contains(needle), "{body}: {needle}: {e}");
    }
    assert_eq!(q.schedules().await.unwrap(), before, "nothing stored");
    // a bad queue name: 400 naming it, and no queue made for a refused schedule
    let (s, e) = post(
        &d.url("/api/queues/bad%20q!/schedules"),
        r#"{"id":"x","name":"r","every":"1s"}"#,
    )
    .await;
    assert_eq!(s, 400);
    assert!(e["error"].as_str().unwrap().contains("bad q!"));
    let (s, _) = post(
        &d.url("/api/queues/fresh/schedules"),
        r#"{"id":"x","name":"r","every":"1"}"#,
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(queues(&env).await, ["sched"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_set_shown_and_cleared_through_the_api_as_jobq_limits_shows_them() {
    let env = TestEnv::new().await;
    let q = existing(&env, "lim").await;
    let d = Dashboard::start(&env, &[]).await;
    let url = d.url("/api/queues/lim/limits");
    let cli = || json_lines(jobq(&env, &["--json", "limits", "lim"])).remove(0);

    let (s, none) = get_json(&url).await;
    assert_eq!(s, 200);
    assert_eq!(
        none,
        json!({"queue": "lim", "rate_max": null, "rate_window_ms": null, "concurrency": null,
               "group": {"default": {}, "overrides": {}}})
    );
    assert_eq!(none, cli());

    let (s, v) = post(&url, r#"{"rate": "100/1s", "concurrency": 5}"#).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (&v["rate_max"], &v["rate_window_ms"], &v["concurrency"]),
        (&json!(100), &json!(1000), &json!(5))
    );
    assert_eq!(
        q.limits().await.unwrap(),
        Limits {
            rate_max: Some(100),
            rate_window_ms: Some(1000),
            concurrency: Some(5),
            corrupt: None,
        }
    );
    let (s, _) = post(&url, r#"{"group_concurrency": 2, "group_rate": "10/1m"}"#).await;
    assert_eq!(s, 200);
    let (s, v) = post(&url, r#"{"group": "vip", "group_concurrency": "7"}"#).await;
    assert_eq!(s, 200);
    assert_eq!(
        v["group"],
        json!({"default": {"concurrency": 2, "rate_max": 10, "rate_window_ms": 60000},
               "overrides": {"vip": {"concurrency": 7}}})
    );
    assert_eq!(v, cli());
    assert_eq!(get_json(&url).await.1, v);

    // bad input: a 400 naming the value, and nothing changes (a body is checked whole)
    let set = (q.limits().await.unwrap(), q.group_limits().await.unwrap());
    for (body, needle) in [
        (r#"{"rate": "0/1s"}"#, "\"0/1s\""),
        (r#"{"rate": "-5/1s"}"#, "\"-5/1s\""),
        (
            r#"{"rate": "99999999999999999999/1s"}"#,
            "99999999999999999999",
        ),
        (r#"{"rate": "10/0s"}"#, "\"10/0s\""),
        (r#"{"rate": "10/400d"}"#, "\"10/400d\""),
        (r#"{"rate": "lots"}"#, "\"lots\""),
        (r#"{"rate": 10}"#, "rate 10"),
        (r#"{"rate": "1/1s", "concurrency": 0}"#, "concurrency \"0\""),
        (r#"{"concurrency": -3}"#, "\"-3\""),
        (r#"{"concurrency": 4294967296}"#, "\"4294967296\""),
        (r#"{"concurrency": 1e30}"#, "concurrency \"1e+30\""),
        (
            r#"{"group_concurrency": 0, "rate": "1/1s"}"#,
            "group_concurrency \"0\"",
        ),
        (r#"{"group_rate": "1/1s/1s"}"#, "\"1/1s/1s\""),
        (r#"{"group": "a b", "group_concurrency": 1}"#, "\"a b\""),
        (r#"{"group": "vip"}"#, "group \"vip\""),
        (r#"{"rate": "1/1s", "clear_rate": true}"#, "not both"),
        (r#"{"rate": null}"#, "clear_rate"),
        (r#"{"clear_rate": 1}"#, "clear_rate 1"),
        (r#"{"rates": "1/1s"}"#, "\"rates\""),
        (r#"{}"#, "nothing to change"),
        ("[]", "expected an object"),
        ("", "empty"),
    ] {
        let (s, e) = post(&url, body).await;
        assert_eq!(s, 400, "{body}: {e}");
        let e = e["error"].as_str().unwrap();
        assert!(e.contains(needle), "{body}: {needle}: {e}");
        assert_eq!(
            (q.limits().await.unwrap(), q.group_limits().await.unwrap()),
            set,
            "{body}"
        );
    }

    // cleared
    let (s, v) = post(
        &url,
        r#"{"clear_rate": true, "clear_concurrency": true,
                                "group": "vip", "clear_group_concurrency": true}"#,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (&v["rate_max"], &v["concurrency"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(v["group"]["overrides"], json!({}));
    let (s, v) = post(
        &url,
        r#"{"clear_group_concurrency": true, "clear_group_rate": true}"#,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v, none);
    assert!(q.limits().await.unwrap().is_unlimited());

    // unknown and bad queue names
    let (s, e) = get_json(&d.url("/api/queues/nope/limits")).await;
    assert_eq!(s, 404, "{e}");
    let (s, _) = post(&d.url("/api/queues/nope/limits"), r#"{"concurrency": 1}"#).await;
    assert_eq!(s, 404);
    let (s, e) = post(
        &d.url("/api/queues/no%20pe/limits"),
        r#"{"concurrency": 1}"#,
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(queues(&env).await, ["lim"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_and_limit_changes_need_the_token_and_come_from_the_dashboards_own_pages() {
    let env = TestEnv::new().await;
    let q = existing(&env, "guarded").await;
    let d = Dashboard::start(&env, &["--auth-token", TOKEN]).await;
    let c = client();
    let schedule = json!({"id": "s", "name": "r", "every": "1m"});
    let limits = json!({"concurrency": 3});

    assert_eq!(
        post_as(&d, "/api/queues/guarded/schedules", None, &schedule).await,
        401
    );
    assert_eq!(
        post_as(&d, "/api/queues/guarded/limits", None, &limits).await,
        401
    );
    assert_eq!(
        post_as(&d, "/api/queues/guarded/limits", Some("wrong"), &limits).await,
        401
    );
    // a page's form without a session: sent to the login page, nothing stored
    let r = form_post(
        &d,
        "/queues/guarded/limits",
        &[("scope", "queue"), ("concurrency", "3")],
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);
    assert!(q.schedules().await.unwrap().is_empty());
    assert!(q.limits().await.unwrap().is_unlimited());

    assert_eq!(
        post_as(&d, "/api/queues/guarded/schedules", Some(TOKEN), &schedule).await,
        201
    );
    assert_eq!(
        post_as(&d, "/api/queues/guarded/limits", Some(TOKEN), &limits).await,
        200
    );
    assert_eq!(q.limits().await.unwrap().concurrency, Some(3));
    let r = c
        .delete(d.url("/api/queues/guarded/schedules/s"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(q.schedules().await.unwrap().len(), 1);

    // a logged-in browser, but a form posted from another site: refused
    let r = form_post(&d, "/login", &[("token", TOKEN), ("next", "/")]).await;
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    for (path, form) in [
        (
            "/queues/guarded/limits",
            vec![("scope", "queue"), ("concurrency", "9")],
        ),
        ("/queues/guarded/schedules/s/remove", vec![]),
        (
            "/queues/guarded/schedules",
            vec![("id", "t"), ("name", "r"), ("every", "1s")],
        ),
    ] {
        let r = c
            .post(d.url(path))
            .header("cookie", &cookie)
            .header("origin", "http://evil.example")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{path}");
    }
    assert_eq!(q.limits().await.unwrap().concurrency, Some(3));
    assert_eq!(schedule_ids(&q).await, ["s"]);
    // the same forms from the dashboard's own page work
    let r = c
        .post(d.url("/queues/guarded/schedules/s/remove"))
        .header("cookie", &cookie)
        .header("origin", d.origin())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(q.schedules().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_refuses_schedule_and_limit_changes_and_shows_no_forms() {
    let env = TestEnv::new().await;
    let q = with_schedule(&env, "ro", "s").await;
    q.set_global_concurrency(4).await.unwrap();
    let d = Dashboard::start(&env, &["--read-only"]).await;
    let c = client();
    let refused = [
        c.post(d.url("/api/queues/ro/schedules"))
            .json(&json!({"id": "t", "name": "r", "every": "1s"})),
        c.delete(d.url("/api/queues/ro/schedules/s")),
        c.post(d.url("/api/queues/ro/limits"))
            .json(&json!({"clear_concurrency": true})),
    ];
    for req in refused {
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403);
        assert!(error_of(r).await.contains("read-only"));
    }
    for (path, form) in [
        (
            "/queues/ro/schedules",
            vec![("id", "t"), ("name", "r"), ("every", "1s")],
        ),
        ("/queues/ro/schedules/s/remove", vec![]),
        (
            "/queues/ro/limits",
            vec![("scope", "queue"), ("concurrency", "")],
        ),
    ] {
        let r = form_post(&d, path, &form).await;
        assert_eq!(r.status().as_u16(), 403, "{path}");
        assert!(r.text().await.unwrap().contains("read-only"));
    }
    assert_eq!(schedule_ids(&q).await, ["s"]);
    assert_eq!(q.limits().await.unwrap().concurrency, Some(4));
    // reads work; the pages offer no forms
    let (s, v) = get_json(&d.url("/api/queues/ro/schedules")).await;
    assert_eq!((s, v["schedules"][0]["id"].as_str()), (200, Some("s")));
    let (s, v) = get_json(&d.url("/api/queues/ro/limits")).await;
    assert_eq!((s, &v["concurrency"]), (200, &json!(4)));
    for path in ["/queues/ro/schedules", "/queues/ro/limits"] {
        let (s, html) = get_text(&d.url(path)).await;
        assert_eq!(s, 200, "{path}");
        assert!(
            !html.contains("<form") && !html.contains("<button"),
            "{path}: {html}"
        );
    }
    let (_, html) = get_text(&d.url("/queues/ro/schedules")).await;
    assert!(html.contains("<tr data-schedule=\"s\">"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_show_hostile_schedules_as_text_and_refused_forms_as_errors() {
    let env = TestEnv::new().await;
    let q = existing(&env, "pages").await;
    let hostile_id = "<script>alert(1)</script>";
    q.upsert_schedule(
        Schedule::new(
            hostile_id,
            "<img src=x onerror=alert(2)>",
            Repeat::cron("0 0 3 * * *").unwrap(),
        )
        .data(&json!({"x": "</td><script>alert(3)</script>"}))
        .unwrap(),
    )
    .await
    .unwrap();
    let d = Dashboard::start(&env, &[]).await;

    // the queue page links to both pages
    let (_, html) = get_text(&d.url("/queues/pages")).await;
    assert!(
        html.contains("href=\"/queues/pages/schedules\"")
            && html.contains("href=\"/queues/pages/limits\"")
    );

    let (s, html) = get_text(&d.url("/queues/pages/schedules")).await;
    assert_eq!(s, 200);
    assert!(
        !html.contains("<script>alert") && !html.contains("<img src=x"),
        "{html}"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert!(html.contains("&lt;/td&gt;&lt;script&gt;alert(3)"));
    assert!(html.contains(
        "action=\"/queues/pages/schedules/%3Cscript%3Ealert%281%29%3C%2Fscript%3E/remove\""
    ));
    let next = q
        .schedule(hostile_id)
        .await
        .unwrap()
        .unwrap()
        .next_run_ms
        .unwrap();
    assert!(next % 86_400_000 == 3 * 3_600_000, "03:00 UTC: {next}");
    assert!(
        html.contains(" 03:00:00.000 UTC</span>"),
        "the next run is shown"
    );

    // a refused add: the page again, 400, the error naming the value, the values kept
    let r = form_post(
        &d,
        "/queues/pages/schedules",
        &[
            ("id", "nightly\"><b>"),
            ("name", "report"),
            ("cron", "0 0 25 * * *"),
            ("data", "{}"),
        ],
    )
    .await;
    assert_eq!(r.status().as_u16(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("class=\"banner error\"") && html.contains("&quot;0 0 25 * * *&quot;"),
        "{html}"
    );
    assert!(
        html.contains("value=\"0 0 25 * * *\"")
            && html.contains("value=\"nightly&quot;&gt;&lt;b&gt;\"")
    );
    assert!(!html.contains("nightly\"><b>"));
    for form in [
        vec![("id", "x"), ("name", "r")],
        vec![
            ("id", "x"),
            ("name", "r"),
            ("every", "1s"),
            ("data", "{oops"),
        ],
        vec![
            ("id", "x"),
            ("name", "r"),
            ("every", "1s"),
            ("opts", "{\"jobId\": \"j\"}"),
        ],
    ] {
        let r = form_post(&d, "/queues/pages/schedules", &form).await;
        assert_eq!(r.status().as_u16(), 400, "{form:?}");
        assert!(r.text().await.unwrap().contains("banner error"));
    }
    assert_eq!(q.schedules().await.unwrap().len(), 1, "nothing stored");

    // a good add goes back to the page with a notice naming the next run
    let r = form_post(
        &d,
        "/queues/pages/schedules",
        &[
            ("id", "tick"),
            ("name", "report"),
            ("every", "1h"),
            ("data", "{\"a\": 1}"),
        ],
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to.starts_with("/queues/pages/schedules?notice=added%20schedule%20tick"),
        "{to}"
    );
    assert_eq!(
        q.schedule("tick").await.unwrap().unwrap().data,
        json!({"a": 1})
    );

    // limits: a refused form changes nothing and says why; a good one is stored
    q.set_rate_limit(7, Duration::from_secs(1)).await.unwrap();
    for (form, needle) in [
        (
            vec![("scope", "queue"), ("rate", "7/1s"), ("concurrency", "0")],
            "concurrency &quot;0&quot;",
        ),
        (
            vec![("scope", "queue"), ("rate", "0/1s"), ("concurrency", "")],
            "rate &quot;0/1s&quot;",
        ),
        (
            vec![("scope", "group"), ("group", ""), ("rate", "1/1s")],
            "group is missing",
        ),
        (
            vec![("scope", "groups"), ("concurrency", "99999999999")],
            "99999999999",
        ),
    ] {
        let r = form_post(&d, "/queues/pages/limits", &form).await;
        assert_eq!(r.status().as_u16(), 400, "{form:?}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains("banner error") && html.contains(needle),
            "{needle}: {html}"
        );
    }
    assert_eq!(
        (q.limits().await.unwrap(), q.group_limits().await.unwrap()),
        (
            Limits {
                rate_max: Some(7),
                rate_window_ms: Some(1000),
                concurrency: None,
                corrupt: None,
            },
            GroupLimitsView::default()
        )
    );
    let r = form_post(
        &d,
        "/queues/pages/limits",
        &[
            ("scope", "group"),
            ("group", "acme"),
            ("rate", "5/1m"),
            ("concurrency", ""),
        ],
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);
    let (_, html) = get_text(&d.url("/queues/pages/limits")).await;
    assert!(html.contains("<tr data-scope=\"acme\">"), "{html}");
    assert!(html.contains("<td data-limit=\"rate\">5/1m</td>"), "{html}");
    assert!(html.contains("<td data-limit=\"rate\">7/1s</td>"));
    // its Remove override button clears it
    let r = form_post(
        &d,
        "/queues/pages/limits",
        &[("scope", "group"), ("group", "acme")],
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(q.group_limits().await.unwrap(), GroupLimitsView::default());
}
