//! The dashboard's JSON API, live updates and metrics against a real Redis, through the
//! built `jobq-dashboard` binary: counts equal `jobq stats --json`; a job added by the CLI
//! shows in the API and the SSE stream within a second; listing, showing and steering jobs;
//! 404s; the Prometheus series; starting while Redis loads; client values escaped in the
//! log.

use std::time::{Duration, Instant};

use crate::dashboard_support::*;
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

/// A worker for `queue` whose `work` handler fails when the data says `{"fail": true}`.
fn work_worker(env: &TestEnv, queue: &str) -> Worker {
    env.worker()
        .queues([queue])
        .handler("work", |j: Job<Value>, _c: Ctx| async move {
            if j.data.get("fail") == Some(&json!(true)) {
                return Err(JobError::new("asked to fail"));
            }
            Ok::<_, JobError>(j.data)
        })
        .build()
        .unwrap()
}

fn stats_lines(env: &TestEnv) -> Vec<Value> {
    let out = jobq(env, &["--json", "stats"]);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_queue_counts_equal_jobq_stats_json() {
    let env = TestEnv::new().await;
    let alpha = env.queue("alpha").await;
    let beta = env.queue("beta").await;
    for i in 0..3 {
        alpha
            .add("work", &json!({"i": i}), JobOptions::new())
            .await
            .unwrap();
    }
    alpha
        .add(
            "work",
            &json!({}),
            JobOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    beta.add("work", &json!({}), JobOptions::new())
        .await
        .unwrap();
    beta.add("work", &json!({"fail": true}), JobOptions::new())
        .await
        .unwrap();
    let guard = spawn_worker(work_worker(&env, "beta"));
    wait_finished(&beta, 2, Duration::from_secs(15)).await;
    guard.stop().await.unwrap();
    beta.add("work", &json!({}), JobOptions::new())
        .await
        .unwrap();
    beta.pause().await.unwrap();

    let d = Dashboard::start(&env, &[]).await;
    let (status, api) = get_json(&d.url("/api/queues")).await;
    assert_eq!(status, 200, "{api}");
    let cli = stats_lines(&env);
    assert_eq!(
        api,
        Value::Array(cli.clone()),
        "dashboard vs jobq stats --json"
    );
    assert_eq!(cli.len(), 2);
    assert_eq!(
        api[1],
        json!({"queue": "beta", "waiting": 1, "waiting_children": 0, "active": 0, "delayed": 0,
               "completed": 1, "failed": 1, "cancelled": 0, "paused": true,
               "completed_total": 1, "failed_total": 1})
    );

    // one queue: the same counts plus its last hour per minute
    let (status, one) = get_json(&d.url("/api/queues/beta")).await;
    assert_eq!(status, 200);
    for (k, v) in cli[1].as_object().unwrap() {
        assert_eq!(&one[k], v, "{k}");
    }
    let completed = one["throughput"]["completed"].as_array().unwrap();
    assert_eq!(completed.len(), 60);
    assert_eq!(
        completed.iter().map(|v| v.as_u64().unwrap()).sum::<u64>(),
        1
    );
    assert_eq!(
        one["throughput"]["failed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_events_reach_only_clients_that_asked_and_job_narrows_them_to_one_job() {
    let env = TestEnv::new().await;
    let q = env.queue("narrow").await;
    q.add("diag.noop", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let d = Dashboard::start(&env, &[]).await;
    let mut counts_only = SseReader::open(&d.url("/events")).await;
    let mut one_job = SseReader::open(&d.url("/events?queue=narrow&job=target")).await;
    let snapshot = Instant::now() + Duration::from_secs(10);
    assert_eq!(counts_only.next(snapshot).await.unwrap().event, "counts");
    assert_eq!(one_job.next(snapshot).await.unwrap().event, "counts");

    for id in ["other", "target"] {
        q.add("diag.noop", &json!({}), JobOptions::new().job_id(id))
            .await
            .unwrap();
    }
    let within = Instant::now() + Duration::from_secs(2);
    let event = one_job
        .wait_for(within, |e| (e.event == "job").then(|| e.json()))
        .await
        .expect("the event of the job asked for");
    assert_eq!(event["job_ids"], json!(["target"]), "{event}");
    assert_eq!(event["event"], "added");
    let mut job_events = 0;
    let counted = counts_only
        .wait_for(within, |e| {
            job_events += usize::from(e.event == "job");
            (e.event == "counts"
                && e.json()
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["queue"] == "narrow" && r["waiting"] == 3))
            .then_some(())
        })
        .await;
    assert!(counted.is_some(), "no counts with 3 waiting within 2s");
    assert_eq!(job_events, 0, "a client without ?jobs=1 got job events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_added_by_the_cli_shows_in_the_api_and_the_sse_stream_within_a_second() {
    let env = TestEnv::new().await;
    env.queue("live")
        .await
        .add("diag.noop", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let d = Dashboard::start(&env, &[]).await;
    let mut sse = SseReader::open(&d.url("/events?jobs=1")).await;
    // the first event is a snapshot of every queue
    let first = sse
        .next(Instant::now() + Duration::from_secs(10))
        .await
        .expect("a first event");
    assert_eq!(first.event, "counts");
    assert_eq!(first.json()[0]["queue"], "live");
    assert_eq!(first.json()[0]["waiting"], 1);

    // an existing queue
    let out = jobq(&env, &["add", "live", "diag.noop"]);
    let added_at = Instant::now();
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let within = added_at + Duration::from_secs(1);
    let seen = sse
        .wait_for(within, |e| {
            (e.event == "job"
                && e.json()["event"] == "added"
                && e.json()["job_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|j| j == id.as_str()))
            .then_some(())
        })
        .await;
    assert!(
        seen.is_some(),
        "no `added` event for {id} within 1s of the CLI"
    );
    let counted = sse
        .wait_for(within, |e| {
            (e.event == "counts"
                && e.json()
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["queue"] == "live" && r["waiting"] == 2))
            .then_some(())
        })
        .await;
    assert!(
        counted.is_some(),
        "no counts with 2 waiting within 1s of the CLI"
    );
    let (_, api) = get_json(&d.url("/api/queues")).await;
    assert_eq!(api[0]["waiting"], 2, "{api}");
    assert!(
        Instant::now() < added_at + Duration::from_secs(1),
        "took {:?}",
        added_at.elapsed()
    );

    // a queue that did not exist when the stream opened
    let out = jobq(&env, &["add", "brand-new", "diag.noop"]);
    let added_at = Instant::now();
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let seen = sse
        .wait_for(added_at + Duration::from_secs(1), |e| {
            (e.event == "job"
                && e.json()["queue"] == "brand-new"
                && e.json()["job_ids"][0] == id.as_str())
            .then_some(())
        })
        .await;
    assert!(seen.is_some(), "no event of the new queue within 1s");
    let counted = sse
        .wait_for(added_at + Duration::from_secs(1), |e| {
            (e.event == "counts"
                && e.json()
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["queue"] == "brand-new" && r["waiting"] == 1))
            .then_some(())
        })
        .await;
    assert!(
        counted.is_some(),
        "the new queue's counts did not come within 1s"
    );
    let (_, api) = get_json(&d.url("/api/queues")).await;
    assert!(
        api.as_array()
            .unwrap()
            .iter()
            .any(|r| r["queue"] == "brand-new"),
        "{api}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueue_with_a_debounce_id_replaces_the_job_not_started_and_bad_ttls_are_400() {
    let env = TestEnv::new().await;
    let q = env.queue("deb").await;
    let d = Dashboard::start(&env, &[]).await;
    let c = client();
    let post = |body: Value| {
        let r = c.post(d.url("/api/queues/deb/jobs")).json(&body).send();
        async move {
            let r = r.await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let opts = json!({"debounce": {"id": "doc:1", "ttl": "1m"}, "delay": "1h"});
    let (s, first) = post(json!({"name": "index", "data": 1, "opts": opts})).await;
    assert_eq!(s, 201, "{first}");
    let id = first["id"].as_str().unwrap().to_string();
    assert_eq!(first["debounced"], false);
    let (s, second) = post(json!({"name": "index", "data": 2, "opts": opts})).await;
    assert_eq!(s, 200, "a debounced add stores no job: {second}");
    assert_eq!(
        second,
        json!({"queue": "deb", "id": id, "duplicate": false, "debounced": true})
    );
    let (s, bulk) = post(json!([
        {"name": "index", "data": 3, "opts": opts},
        {"name": "index", "data": "other"}
    ]))
    .await;
    assert_eq!(s, 201, "{bulk}");
    assert_eq!(bulk["added"], 1, "{bulk}");
    assert_eq!(
        bulk["jobs"][0],
        json!({"id": id, "duplicate": false, "debounced": true})
    );
    assert_eq!(q.job(&id).await.unwrap().data, json!(3));
    for (bad, needle) in [
        (json!({"id": "doc:1", "ttl": "0s"}), "debounce ttl"),
        (
            json!({"id": "doc:1", "ttl": "200000000000d"}),
            "200000000000d",
        ),
        (json!({"id": "a b", "ttl": "1s"}), "a b"),
        (json!({"id": "doc:1"}), "ttl"),
        (json!("doc:1"), "debounce"),
    ] {
        let (s, e) = post(json!({"name": "index", "opts": {"debounce": bad}})).await;
        assert_eq!(s, 400, "{bad}: {e}");
        assert!(e["error"].as_str().unwrap().contains(needle), "{bad}: {e}");
    }
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.delayed), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_listed_shown_and_steered_through_the_api() {
    let env = TestEnv::new().await;
    let q = env.queue("steer").await;
    let d = Dashboard::start(&env, &[]).await;
    let c = client();
    let api = |p: &str| d.url(&format!("/api/queues/steer{p}"));

    // enqueue: one job with options, then an array
    let r = c
        .post(api("/jobs"))
        .json(&json!({"name": "work", "data": {"fail": true}, "opts": {"attempts": 1, "jobId": "f1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"queue": "steer", "id": "f1", "duplicate": false, "debounced": false})
    );
    let r = c
        .post(api("/jobs"))
        .json(&json!({"name": "work", "opts": {"jobId": "f1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "a duplicate job id stores nothing"
    );
    assert_eq!(r.json::<Value>().await.unwrap()["duplicate"], true);
    let r = c
        .post(api("/jobs"))
        .json(&json!([{"name": "work", "data": {"n": 1}}, {"name": "work", "opts": {"delay": "1h", "jobId": "later"}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["added"], 2);
    let n1 = body["jobs"][0]["id"].as_str().unwrap().to_string();

    // a queue that is not paused has no paused jobs, in its total too
    let (s, page) = get_json(&api("/jobs?state=paused")).await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(
        (
            page["total"].as_u64(),
            page["jobs"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0)),
        "{page}"
    );

    // list with totals and paging
    let (s, page) = get_json(&api("/jobs?state=waiting&limit=1&offset=1")).await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(
        (
            page["total"].as_u64(),
            page["limit"].as_u64(),
            page["offset"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
    // newest first: the job added last leads, the first one added is second
    assert_eq!(page["jobs"][0]["id"], "f1");
    let (_, page) = get_json(&api("/jobs?state=waiting&limit=1")).await;
    assert_eq!(page["jobs"][0]["id"], n1.as_str());
    let (_, page) = get_json(&api("/jobs?state=delayed")).await;
    assert_eq!(page["jobs"][0]["id"], "later");
    for (query, needle) in [
        ("?state=done", "done"),
        ("?limit=abc", "abc"),
        ("?limit=5000", "5000"),
    ] {
        let (s, e) = get_json(&api(&format!("/jobs{query}"))).await;
        assert_eq!(s, 400, "{query}");
        assert!(
            e["error"].as_str().unwrap().contains(needle),
            "{query}: {e}"
        );
    }

    // run them: f1 fails, n1 completes
    let guard = spawn_worker(work_worker(&env, "steer"));
    wait_job_done(&q, "f1", Duration::from_secs(15)).await;
    wait_job_done(&q, &n1, Duration::from_secs(15)).await;
    guard.stop().await.unwrap();
    let (s, job) = get_json(&api("/jobs/f1")).await;
    assert_eq!(s, 200);
    assert_eq!(
        (job["state"].as_str(), job["failed_reason"].as_str()),
        (Some("failed"), Some("asked to fail"))
    );
    assert_eq!(
        (job["attempts"].as_u64(), job["max_attempts"].as_u64()),
        (Some(1), Some(1))
    );

    // per-job actions
    let r = c.post(api("/jobs/f1/retry")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(q.job("f1").await.unwrap().state, JobState::Waiting);
    let r = c.post(api("/jobs/f1/retry")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 409, "retrying a waiting job");
    assert!(r.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("waiting"));
    let r = c.post(api("/jobs/later/promote")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(q.job("later").await.unwrap().state, JobState::Waiting);
    let r = c.delete(api("/jobs/later")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(q.get_job("later").await.unwrap().is_none());

    // 404s name what is missing
    let (s, e) = get_json(&api("/jobs/nope")).await;
    assert_eq!(s, 404);
    assert!(e["error"].as_str().unwrap().contains("nope"), "{e}");
    let (s, e) = get_json(&d.url("/api/queues/ghost/jobs")).await;
    assert_eq!(s, 404);
    assert!(e["error"].as_str().unwrap().contains("ghost"), "{e}");
    let (s, _) = get_json(&d.url("/api/queues/ghost")).await;
    assert_eq!(s, 404);
    let r = c
        .post(d.url("/api/queues/ghost/pause"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        404,
        "steering a missing queue does not create it"
    );
    assert!(!list_queues(&env.redis, env.config.prefix())
        .await
        .unwrap()
        .contains(&"ghost".to_string()));
    let (s, _) = get_json(&d.url("/api/nothing/here")).await;
    assert_eq!(s, 404);

    // queue actions
    let r = c.post(api("/pause")).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["paused"], true);
    assert!(q.counts().await.unwrap().paused);
    let r = c.post(api("/resume")).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["paused"], false);
    assert!(!q.counts().await.unwrap().paused);
    let r = c
        .post(api("/clean"))
        .json(&json!({"state": "completed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["removed"], 1);
    assert_eq!(q.counts().await.unwrap().completed, 0);
    let r = c
        .post(api("/clean"))
        .json(&json!({"state": "active"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    q.add(
        "work",
        &json!({}),
        JobOptions::new().delay(Duration::from_secs(60)),
    )
    .await
    .unwrap();
    let r = c.post(api("/promote")).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["promoted"], 1);
    let r = c.post(api("/drain")).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["removed"], 2);
    assert_eq!(q.counts().await.unwrap().waiting, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_have_gauges_counters_and_a_processing_histogram() {
    let env = TestEnv::new().await;
    let q = env.queue("m.q").await;
    for i in 0..4 {
        q.add("work", &json!({"fail": i == 0}), JobOptions::new())
            .await
            .unwrap();
    }
    let guard = spawn_worker(work_worker(&env, "m.q"));
    wait_finished(&q, 4, Duration::from_secs(15)).await;
    guard.stop().await.unwrap();
    q.add("work", &json!({}), JobOptions::new()).await.unwrap();
    q.add(
        "work",
        &json!({}),
        JobOptions::new().delay(Duration::from_secs(60)),
    )
    .await
    .unwrap();

    let d = Dashboard::start(&env, &[]).await;
    let r = client().get(d.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert_eq!(value("jobq_redis_up"), 1.0);
    assert_eq!(value(r#"jobq_jobs{queue="m.q",state="waiting"}"#), 1.0);
    assert_eq!(value(r#"jobq_jobs{queue="m.q",state="delayed"}"#), 1.0);
    assert_eq!(value(r#"jobq_jobs{queue="m.q",state="completed"}"#), 3.0);
    assert_eq!(value(r#"jobq_jobs{queue="m.q",state="failed"}"#), 1.0);
    assert_eq!(value(r#"jobq_jobs{queue="m.q",state="active"}"#), 0.0);
    assert_eq!(value(r#"jobq_queue_paused{queue="m.q"}"#), 0.0);
    assert_eq!(value(r#"jobq_completed_total{queue="m.q"}"#), 3.0);
    assert_eq!(value(r#"jobq_failed_total{queue="m.q"}"#), 1.0);
    for kind in ["gauge", "counter", "histogram"] {
        assert!(text.contains(&format!(" {kind}\n")), "no {kind} TYPE line");
    }
    // four attempts recorded: cumulative buckets, ending at the count
    assert_eq!(value(r#"jobq_processing_seconds_count{queue="m.q"}"#), 4.0);
    assert_eq!(
        value(r#"jobq_processing_seconds_bucket{queue="m.q",le="+Inf"}"#),
        4.0
    );
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(r#"jobq_processing_seconds_bucket{queue="m.q""#))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), PROCESSING_BUCKETS_MS.len() + 1);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(
        value(r#"jobq_processing_seconds_bucket{queue="m.q",le="300"}"#),
        4.0
    );
    assert!(value(r#"jobq_processing_seconds_sum{queue="m.q"}"#) < 60.0);
}

/// Issue 16: a dashboard started while Redis loads its data set (answering INFO, and every
/// other command with LOADING) keeps running, reports `disconnected` meanwhile, and is
/// healthy, with the queues readable, once the load ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_started_while_redis_loads_waits_and_then_serves() {
    let mut server = RedisServer::start_slow_loading(&[]);
    let prefix = fresh_prefix();
    let env = TestEnv::on_prefix(&server.url(), &prefix).await;
    env.queue("kept")
        .await
        .add("x", &json!({}), JobOptions::new())
        .await
        .unwrap();
    drop(env);
    server.restart_into_a_slow_load();
    let mut d = Dashboard::start_for(Some(&server.url()), &prefix, &[]).await;
    let (s, h) = get_json(&d.url("/api/health")).await;
    assert!(
        server.is_loading(),
        "Redis finished loading too soon for this test to mean anything"
    );
    assert_eq!(s, 503, "{h}");
    assert_eq!(h["redis"]["status"], "disconnected", "{h}");
    eventually(
        Duration::from_secs(30),
        "the dashboard to be healthy",
        || async {
            let (s, _) = get_json(&d.url("/api/health")).await;
            (s == 200).then_some(())
        },
    )
    .await;
    let (s, api) = get_json(&d.url("/api/queues")).await;
    assert_eq!((s, api[0]["waiting"].as_u64()), (200, Some(1)), "{api}");
    assert!(d.is_running(), "{}", d.stderr());
}

/// Issue 16: values a client sends (queue names and job ids in the path, query values, form
/// fields) never reach the log raw: a newline in them cannot start a forged log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_values_are_logged_escaped() {
    let env = TestEnv::new().await;
    env.queue("logq")
        .await
        .add("x", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let d = Dashboard::start_env(
        env.config.redis_url(),
        env.config.prefix(),
        &["--auth-token", "t0ken-for-tests-0123456789"],
        &[("RUST_LOG", "debug")],
    )
    .await;
    let c = client();
    let forged = "%0AFORGED%20line%0D%0AFORGED";
    let token = "t0ken-for-tests-0123456789";
    for path in [
        format!("/api/queues/a{forged}/jobs"),
        format!("/api/queues/logq/jobs/x{forged}"),
        format!("/api/queues/logq/jobs?state=x{forged}"),
        format!("/queues/logq/jobs/x{forged}"),
    ] {
        let _ = c.get(d.url(&path)).bearer_auth(token).send().await.unwrap();
        let _ = c
            .get(d.url(&path))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
    }
    let _ = c
        .post(d.url("/api/queues/logq/jobs"))
        .bearer_auth(token)
        .json(&json!({"name": "a\nFORGED line", "opts": {"delay": "x\nFORGED"}}))
        .send()
        .await
        .unwrap();
    let _ = c
        .post(d.url("/login"))
        .form(&[("token", "nope\nFORGED"), ("next", "/\nFORGED")])
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = d.stderr();
    assert!(
        log.contains("FORGED"),
        "the values were logged at all:\n{log}"
    );
    assert!(
        !log.lines().any(|l| l.trim_start().starts_with("FORGED")),
        "a client value started a log line:\n{log}"
    );
}

/// A stored job whose options no longer decode is marked in the API's listing and on the
/// queue and job pages; the queue's other jobs are listed as they are.
#[tokio::test]
async fn a_job_with_garbage_options_is_marked_and_the_others_are_listed() {
    let env = TestEnv::new().await;
    let q = env.queue("bad-opts").await;
    let mut ids = Vec::new();
    // (given ids, the jobs keep records, hashes, whose `opts` field is overwritten here; a
    // plain job would be stored lean, its lane entry alone: see the test below)
    for i in 0..3 {
        ids.push(
            q.add(
                "work",
                &json!({ "i": i }),
                JobOptions::new().job_id(format!("job{i}")),
            )
            .await
            .unwrap()
            .id,
        );
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
    let d = only_the_second_listed_as_corrupt_opts(&env, &ids).await;
    let (status, html) = get_text(&d.url(&format!("/queues/bad-opts/jobs/{}", ids[1]))).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("field opts"), "{html}");
}

/// The same for a lean job (its lane entry alone, no hash) whose `o` options are garbage,
/// as something other than jobq might write it: marked in the API and on the pages, and
/// the others listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lean_job_with_garbage_options_is_marked_and_the_others_are_listed() {
    let env = TestEnv::new().await;
    let q = env.queue("bad-opts").await;
    let first = q
        .add("work", &json!({ "i": 0 }), JobOptions::new())
        .await
        .unwrap()
        .id;
    let bad = add_lean_to(
        &env,
        "bad-opts",
        &[("n", b"work"), ("d", b"{\"i\":1}"), ("o", b"\x01garbage")],
    )
    .await;
    let last = q
        .add("work", &json!({ "i": 2 }), JobOptions::new())
        .await
        .unwrap()
        .id;
    let ids = [first, bad, last];
    assert!(ids.iter().all(|id| id.starts_with('~')), "{ids:?}");
    let d = only_the_second_listed_as_corrupt_opts(&env, &ids).await;
    let (status, job) = get_json(&d.url(&format!("/api/queues/bad-opts/jobs/{}", ids[1]))).await;
    assert_eq!(status, 200, "{job}");
    assert!(
        job["corrupt"]
            .as_str()
            .is_some_and(|c| c.contains("field opts")),
        "{job}"
    );
    let (status, html) = get_text(&d.url(&format!("/queues/bad-opts/jobs/{}", ids[1]))).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("field opts"), "{html}");
}

/// Guarantee 8 across queues and jobs: a key of the wrong type in one queue (its meta hash
/// a string, a job's hash a string, its log a hash, a per-minute counter not a number) or a
/// registry member that is no queue name makes that queue or job show as unreadable, named;
/// every other queue and job is listed, counted and scraped as usual, and nothing reads as
/// "Redis down".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_key_marks_its_queue_or_job_and_every_other_stays_listed() {
    use queue_core::internal::keys::{queue_registry, QueueKeys};
    let env = TestEnv::new().await;
    let prefix = env.config.prefix().to_string();
    let good = env.queue("good").await;
    for i in 0..2 {
        good.add("work", &json!({ "i": i }), JobOptions::new())
            .await
            .unwrap();
    }
    env.queue("broken")
        .await
        .add("work", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let jobs = env.queue("jobs").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            jobs.add("work", &json!({ "i": i }), JobOptions::new())
                .await
                .unwrap()
                .id,
        );
    }
    good.upsert_schedule(Schedule::new(
        "hourly",
        "work",
        Repeat::every(Duration::from_secs(3600)).unwrap(),
    ))
    .await
    .unwrap();
    let mut raw = env.raw().await;
    let cmd = |args: &[&str]| {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c
    };
    let broken = QueueKeys::new(&prefix, "broken");
    let jk = QueueKeys::new(&prefix, "jobs");
    let good_keys = QueueKeys::new(&prefix, "good");
    let registry = queue_registry(&prefix);
    let bad_job = jk.job(&ids[1]);
    let logs = jk.job_logs(&ids[2]);
    let per_minute = good_keys.metrics_completed();
    let schedules = good_keys.schedules();
    for args in [
        vec!["HSET", schedules.as_str(), "garbled", "{not json"],
        vec!["DEL", broken.meta().as_str()],
        vec!["SET", broken.meta().as_str(), "x"],
        vec!["DEL", bad_job.as_str()],
        vec!["SET", bad_job.as_str(), "x"],
        vec!["HSET", logs.as_str(), "a", "b"],
        vec!["RPUSH", per_minute.as_str(), "abc"],
        vec!["SADD", registry.as_str(), "", "bad name!", ".."],
    ] {
        let _: redis::Value = cmd(&args).query_async(&mut raw).await.unwrap();
    }
    let d = Dashboard::start(&env, &[]).await;

    let (status, rows) = get_json(&d.url("/api/queues")).await;
    assert_eq!(status, 200, "{rows}");
    let rows = rows.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["queue"].as_str().unwrap()).collect();
    assert_eq!(names, ["broken", "good", "jobs"], "{rows:?}");
    assert!(
        rows[0]["error"]
            .as_str()
            .unwrap()
            .contains("meta is a string, not a hash"),
        "{rows:?}"
    );
    assert_eq!(
        (rows[1]["waiting"].as_u64(), rows[1].get("error")),
        (Some(2), None)
    );
    assert_eq!(rows[2]["waiting"], 3, "{rows:?}");
    let (status, html) = get_text(&d.url("/")).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("unreadable") && html.contains("good"),
        "{html}"
    );

    let (status, text) = get_text(&d.url("/metrics")).await;
    assert_eq!(status, 200);
    for line in [
        "jobq_redis_up 1",
        "jobq_queue_unreadable{queue=\"broken\"} 1",
        "jobq_queue_unreadable{queue=\"good\"} 0",
        "jobq_jobs{queue=\"good\",state=\"waiting\"} 2",
        "jobq_jobs{queue=\"jobs\",state=\"waiting\"} 3",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }

    let (status, page) = get_json(&d.url("/api/queues/jobs/jobs?state=waiting")).await;
    assert_eq!(status, 200, "{page}");
    let listed = page["jobs"].as_array().or(page.as_array()).unwrap();
    let listed: Vec<(&str, Option<&str>)> = listed
        .iter()
        .map(|j| (j["id"].as_str().unwrap(), j["corrupt"].as_str()))
        .collect();
    assert_eq!(listed.len(), 3, "{page}");
    for (id, corrupt) in listed {
        if id == ids[1] {
            assert!(corrupt.unwrap().contains("cannot be read"), "{page}");
        } else {
            assert_eq!(corrupt, None, "{page}");
        }
    }
    let (status, job) = get_json(&d.url(&format!("/api/queues/jobs/jobs/{}", ids[1]))).await;
    assert_eq!(status, 200, "{job}");
    assert!(
        job["corrupt"]
            .as_str()
            .unwrap()
            .contains("is a string, not a hash"),
        "{job}"
    );
    let (status, job) = get_json(&d.url(&format!("/api/queues/jobs/jobs/{}", ids[2]))).await;
    assert_eq!(status, 200, "{job}");
    assert!(
        job["corrupt"]
            .as_str()
            .unwrap()
            .contains("its log is a hash"),
        "{job}"
    );
    assert_eq!(job["name"], "work", "{job}");
    let (status, html) = get_text(&d.url("/queues/jobs?state=waiting")).await;
    assert_eq!(status, 200, "{html}");
    let (status, _) = get_text(&d.url(&format!("/queues/jobs/jobs/{}", ids[1]))).await;
    assert_eq!(status, 200);

    let (status, listed) = get_json(&d.url("/api/queues/good/schedules")).await;
    assert_eq!(status, 200, "{listed}");
    assert!(listed.to_string().contains("hourly"), "{listed}");
    // a schedule definition that does not read back is listed as corrupt, on its page too
    let schedules = QueueKeys::new(env.config.prefix(), "good").schedules();
    let _: i64 = redis::cmd("HSET")
        .arg(&schedules)
        .arg("broken-def")
        .arg("garbage")
        .query_async(&mut raw)
        .await
        .unwrap();
    let (status, listed) = get_json(&d.url("/api/queues/good/schedules")).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["corrupt"][0]["id"], "broken-def", "{listed}");
    assert_eq!(
        listed["schedules"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    let (status, html) = get_text(&d.url("/queues/good/schedules")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("corrupt-schedules") && html.contains("broken-def"),
        "{html}"
    );

    // the CLI's listing of every queue too: the broken one named, on stderr
    let out = jobq(&env, &["stats"]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("queue broken: its records cannot be read"),
        "{err}"
    );
    let lines = stats_lines(&env);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0]["error"].is_string() && lines[1]["error"].is_null(),
        "{lines:?}"
    );
    // its counts are unknown, never zeros a script would take for counts
    assert!(
        lines[0]["waiting"].is_null()
            && lines[0]["paused"].is_null()
            && lines[0]["failed_total"].is_null(),
        "{lines:?}"
    );
    assert!(lines[1]["waiting"].is_u64(), "{lines:?}");
    let (status, all) = get_json(&d.url("/api/queues")).await;
    assert_eq!(status, 200, "{all}");
    let broken = all
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "broken")
        .unwrap();
    assert!(broken["waiting"].is_null(), "{all}");
}

/// The metric families (name and type) and the series (sample name and label names) of an
/// exposition, sorted.
fn exposition_names(text: &str) -> (Vec<String>, Vec<String>) {
    let mut families: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(str::to_string)
        .collect();
    let mut series: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let name_end = l.find(['{', ' ']).unwrap_or(l.len());
            let mut labels = label_names(&l[name_end..]);
            labels.sort();
            format!("{}{{{}}}", &l[..name_end], labels.join(","))
        })
        .collect();
    families.sort();
    families.dedup();
    series.sort();
    series.dedup();
    (families, series)
}

/// The label names of a sample's rest (`{a="x",b="y\\"z"} 1`, or ` 1` without labels).
fn label_names(rest: &str) -> Vec<String> {
    let Some(mut rest) = rest.strip_prefix('{') else {
        return Vec::new();
    };
    let mut names = Vec::new();
    while let Some((name, after)) = rest.split_once("=\"") {
        names.push(name.trim_start_matches(',').to_string());
        // the value ends at the first quote not escaped by a backslash
        let mut escaped = false;
        let end = after
            .char_indices()
            .find(|&(_, c)| {
                let end = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                end
            })
            .map(|(i, _)| i)
            .expect("a closed label value");
        rest = &after[end + 1..];
        if rest.starts_with('}') {
            break;
        }
    }
    names
}

/// Users' dashboards and alerts query these names: a rename of a series or a label of
/// either `/metrics` endpoint (the dashboard's and the worker's) fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_series_and_label_names_stay_the_ones_users_query() {
    let env = TestEnv::new().await;
    let diag = env.queue("diag").await;
    let moderation = env.queue("moderation").await;
    let addr = format!("127.0.0.1:{}", free_port());
    let _worker = WorkerProcess::start(
        env.config.redis_url().unwrap(),
        env.config.prefix(),
        &["--queues", "diag,moderation", "--metrics-bind", &addr],
    );
    let job = diag
        .add("diag.noop", &json!({}), JobOptions::new())
        .await
        .unwrap();
    wait_job_done(&diag, &job.id, Duration::from_secs(15)).await;
    // the same text twice: a cache miss, then a hit
    for _ in 0..2 {
        let job = moderation
            .add("moderation.text", &json!({"text": "hi"}), JobOptions::new())
            .await
            .unwrap();
        wait_job_done(&moderation, &job.id, Duration::from_secs(15)).await;
    }
    // a queue no worker takes: a group with a waiting job
    env.queue("tenants")
        .await
        .add("t", &json!({}), JobOptions::new().group("acme"))
        .await
        .unwrap();

    let (status, worker_text) = get_text(&format!("http://{addr}/metrics")).await;
    assert_eq!(status, 200);
    let (families, series) = exposition_names(&worker_text);
    assert_eq!(
        families,
        [
            "jobq_cache_hits_total counter",
            "jobq_cache_misses_total counter",
            "jobq_worker_attempts_total counter",
            "jobq_worker_concurrency gauge",
            "jobq_worker_handler_seconds histogram",
            "jobq_worker_running_jobs gauge",
        ],
        "{worker_text}"
    );
    assert_eq!(
        series,
        [
            "jobq_cache_hits_total{namespace}",
            "jobq_cache_misses_total{namespace}",
            "jobq_worker_attempts_total{name,outcome,queue}",
            "jobq_worker_concurrency{}",
            "jobq_worker_handler_seconds_bucket{le,name,queue}",
            "jobq_worker_handler_seconds_count{name,queue}",
            "jobq_worker_handler_seconds_sum{name,queue}",
            "jobq_worker_running_jobs{}",
        ],
        "{worker_text}"
    );

    let d = Dashboard::start(&env, &[]).await;
    let (status, dashboard_text) = get_text(&d.url("/metrics")).await;
    assert_eq!(status, 200);
    let (families, series) = exposition_names(&dashboard_text);
    assert_eq!(
        families,
        [
            "jobq_completed_total counter",
            "jobq_failed_total counter",
            "jobq_group_active gauge",
            "jobq_group_waiting gauge",
            "jobq_groups gauge",
            "jobq_jobs gauge",
            "jobq_processing_seconds histogram",
            "jobq_queue_paused gauge",
            "jobq_queue_unreadable gauge",
            "jobq_redis_up gauge",
        ],
        "{dashboard_text}"
    );
    assert_eq!(
        series,
        [
            "jobq_completed_total{queue}",
            "jobq_failed_total{queue}",
            "jobq_group_active{group,queue}",
            "jobq_group_waiting{group,queue}",
            "jobq_groups{queue,state}",
            "jobq_jobs{queue,state}",
            "jobq_processing_seconds_bucket{le,queue}",
            "jobq_processing_seconds_count{queue}",
            "jobq_processing_seconds_sum{queue}",
            "jobq_queue_paused{queue}",
            "jobq_queue_unreadable{queue}",
            "jobq_redis_up{}",
        ],
        "{dashboard_text}"
    );
}

/// POST `body` (raw text, `None`: no body) to `url` → (status, JSON reply).
async fn post_raw(url: &str, body: Option<&str>) -> (u16, Value) {
    let mut req = client().post(url);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// POST `path` with a chunked body of `chunks` pieces of 64 KiB (no `Content-Length`), by
/// hand → the status line's code.
async fn post_chunked(d: &Dashboard, path: &str, chunks: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = d.origin().trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let piece = vec![b'x'; 64 * 1024];
    for _ in 0..chunks {
        let sent = async {
            s.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                .await?;
            s.write_all(&piece).await?;
            s.write_all(b"\r\n").await
        };
        // (the server may answer and close before the body ends)
        if sent.await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply).await;
    let text = String::from_utf8_lossy(&reply);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Input the API used to take silently, doing the default with a 200, is a 400 naming it:
/// a parameter it does not take (`stat=failed` listed waiting jobs), a value that is not
/// UTF-8 once decoded (`name=%FF` searched for U+FFFD), a live-updates query naming a
/// queue or job none can have or a `jobs` that is neither yes nor no, and a body sent to
/// an action that takes none (drain with `{"state":"delayed"}` drained every waiting job;
/// a chunked 1 MB body to pause paused the queue past the 413). Nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_what_it_used_to_ignore_naming_it() {
    let env = TestEnv::new().await;
    let q = env.queue("strict").await;
    q.add("work", &json!({}), JobOptions::new()).await.unwrap();
    let later = JobOptions::new().delay(Duration::from_secs(3600));
    q.add("work", &json!({}), later).await.unwrap();
    let d = Dashboard::start(&env, &[]).await;
    for (path, named) in [
        ("/api/queues/strict/jobs?stat=failed", "\"stat\""),
        ("/api/queues/strict/jobs?state=waiting&name=%FF", "name"),
        ("/api/queues/strict/groups?limt=5", "\"limt\""),
        ("/events?queue=bad%20name", "bad name"),
        ("/events?jobs=banana", "banana"),
        ("/events?stream=1", "\"stream\""),
        ("/api/queues?verbose=1", "takes none"),
        ("/api/queues/strict/limits?x", "\"x\""),
    ] {
        let (status, body) = get_json(&d.url(path)).await;
        assert_eq!(status, 400, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(named), "{path}: {error}");
    }
    let (status, body) = get_json(&d.url("/api/queues/strict/jobs?state=delayed&limit=5")).await;
    assert_eq!(status, 200, "{body}");
    // data JSON would change (an integer past 64 bits, read as a rounded float)
    let (status, body) = post_raw(
        &d.url("/api/queues/strict/jobs"),
        Some(r#"{"name":"work","data":{"n":123456789012345678901234567890}}"#),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("123456789012345678901234567890"),
        "{body}"
    );

    // a change takes no query parameter: one given is refused before anything is done
    let kept = q
        .add(
            "work",
            &json!({}),
            JobOptions::new()
                .job_id("keep")
                .delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let r = client()
        .delete(d.url("/api/queues/strict/jobs/keep?dry_run=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("\"dry_run\""),
        "{body}"
    );
    q.job(&kept.id).await.unwrap();
    for (path, body, named) in [
        ("/api/queues/strict/drain?dry_run=true", None, "\"dry_run\""),
        ("/api/queues/strict/drain?x=%FF", None, "x"),
        ("/api/queues/strict/pause?x=1", None, "\"x\""),
        (
            "/api/queues/strict/jobs?delay=1h",
            Some(r#"{"name":"work"}"#),
            "\"delay\"",
        ),
    ] {
        let (status, reply) = post_raw(&d.url(path), body).await;
        assert_eq!(status, 400, "{path}: {reply}");
        let error = reply["error"].as_str().unwrap_or_default();
        assert!(error.contains(named), "{path}: {error}");
    }
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.delayed, c.paused), (1, 2, false), "{c:?}");
    q.remove_job(&kept.id).await.unwrap();
    // a method the path does not have is a 405 whatever its query (was: a 400 saying the
    // endpoint takes no parameter)
    for (method, path) in [
        ("PUT", "/api/queues/strict/jobs?state=failed"),
        ("TRACE", "/api/queues/strict/groups?limit=1"),
        ("PATCH", "/api/health?x=1"),
    ] {
        let r = client()
            .request(method.parse().unwrap(), d.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 405, "{method} {path}");
    }

    let drain = d.url("/api/queues/strict/drain");
    let (status, body) = post_raw(&drain, Some(r#"{"state":"delayed"}"#)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("takes no body"),
        "{body}"
    );
    assert_eq!(post_chunked(&d, "/api/queues/strict/pause", 16).await, 413);
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.delayed, c.paused), (1, 1, false), "{c:?}");
    // no body, or the `{}` / `null` clients send for none, is fine
    let (status, _) = post_raw(&d.url("/api/queues/strict/pause"), None).await;
    assert_eq!(status, 200);
    let (status, _) = post_raw(&d.url("/api/queues/strict/resume"), Some("{}")).await;
    assert_eq!(status, 200);
    let (status, body) = post_raw(&drain, Some(" null ")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(q.counts().await.unwrap().waiting, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_with_a_key_given_twice_is_refused_naming_it_and_changes_nothing() {
    let env = TestEnv::new().await;
    let q = env.queue("twice").await;
    q.add("t", &json!({}), JobOptions::new()).await.unwrap();
    let d = Dashboard::start(&env, &[]).await;
    let c = client();
    for (path, body) in [
        // the last one would win: failed jobs cleaned where completed ones were named
        (
            "/api/queues/twice/clean",
            r#"{"state":"completed","state":"waiting","older_than":"0s"}"#,
        ),
        (
            "/api/queues/twice/jobs",
            r#"{"name":"a","name":"b","data":{}}"#,
        ),
        (
            "/api/queues/twice/limits",
            r#"{"group_concurrency":2,"group_concurrency":5}"#,
        ),
    ] {
        let r = c
            .post(d.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{path}");
        let e: Value = r.json().await.unwrap();
        assert!(
            e["error"].as_str().unwrap().contains("given twice"),
            "{path}: {e}"
        );
    }
    let counts = q.counts().await.unwrap();
    assert_eq!(counts.waiting, 1, "{counts:?}");
    assert!(q.group_limits().await.unwrap().default.is_unlimited());
}

/// The API's and the queue page's listing of waiting jobs in `bad-opts` show the three jobs
/// `ids`, the second alone marked as having corrupt options; returns the dashboard.
async fn only_the_second_listed_as_corrupt_opts(env: &TestEnv, ids: &[String]) -> Dashboard {
    let d = Dashboard::start(env, &[]).await;
    let (status, page) = get_json(&d.url("/api/queues/bad-opts/jobs?state=waiting")).await;
    assert_eq!(status, 200, "{page}");
    let jobs = page["jobs"].as_array().or(page.as_array()).unwrap();
    assert_eq!(jobs.len(), 3, "{page}");
    let marked = marked_corrupt(jobs, "opts");
    assert_eq!(marked, vec![ids[1].as_str()], "{page}");
    let (status, html) = get_text(&d.url("/queues/bad-opts?state=waiting")).await;
    assert_eq!(status, 200, "{html}");
    for id in ids {
        assert!(
            html.contains(id.as_str()),
            "{id} missing from the queue page"
        );
    }
    assert!(
        html.contains("corrupt"),
        "the bad job is not marked:\n{html}"
    );
    d
}
