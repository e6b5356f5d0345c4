//! The dashboard's HTML pages and health: user data is always escaped; the forms steer
//! queues and add jobs; health says connected, disconnected (the pages show a banner and
//! nothing crashes) and not configured.

use std::time::{Duration, Instant};

use crate::dashboard_support::*;
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_in_job_data_names_and_errors_renders_as_text() {
    let env = TestEnv::new().await;
    let q = env.queue("xss").await;
    let evil = "<script>alert('x')</script>";
    let data = json!({"html": evil});
    let added = q
        .add("<b>bold</b>", &data, JobOptions::new())
        .await
        .unwrap();
    let failing = q
        .add("boom", &json!({}), JobOptions::new().job_id("id/<i>?#"))
        .await
        .unwrap();
    let guard = spawn_worker(
        env.worker()
            .queues(["xss"])
            .handler("boom", |_j: Job<Value>, _c: Ctx| async move {
                Err::<Value, _>(JobError::new("<img src=x onerror=alert(1)>"))
            })
            .build()
            .unwrap(),
    );
    wait_job_done(&q, &failing.id, Duration::from_secs(15)).await;
    guard.stop().await.unwrap();
    let d = Dashboard::start(&env, &[]).await;

    let (s, page) = get_text(&d.url(&format!("/queues/xss/jobs/{}", added.id))).await;
    assert_eq!(s, 200);
    assert!(
        !page.contains("<script>alert"),
        "raw script in the job page"
    );
    assert!(
        page.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
        "data shown as text"
    );
    assert!(!page.contains("<b>bold</b>") && page.contains("&lt;b&gt;bold&lt;/b&gt;"));

    // an id with reserved characters: linked encoded, shown escaped
    let (_, list) = get_text(&d.url("/queues/xss?state=failed")).await;
    assert!(
        list.contains("/queues/xss/jobs/id%2F%3Ci%3E%3F%23"),
        "encoded link"
    );
    assert!(!list.contains("<img src=x"), "raw error in the listing");
    let (s, page) = get_text(&d.url("/queues/xss/jobs/id%2F%3Ci%3E%3F%23")).await;
    assert_eq!(s, 200);
    assert!(page.contains("id/&lt;i&gt;?#"));
    assert!(!page.contains("<img src=x") && page.contains("&lt;img src=x onerror=alert(1)&gt;"));

    let (_, waiting) = get_text(&d.url("/queues/xss")).await;
    assert!(!waiting.contains("<script>alert") && !waiting.contains("<b>bold"));
    // a notice echoed from the URL is text too
    let (_, noticed) = get_text(&d.url("/?notice=%3Cscript%3Ealert(2)%3C/script%3E")).await;
    assert!(!noticed.contains("<script>alert(2)") && noticed.contains("&lt;script&gt;alert(2)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_forms_add_steer_and_report_errors() {
    let env = TestEnv::new().await;
    let q = env.queue("forms").await;
    let d = Dashboard::start(&env, &[]).await;
    let c = client();
    let origin = d.origin();
    let post = |path: &str, form: &[(&str, &str)]| {
        c.post(d.url(path))
            .header("origin", &origin)
            .form(form)
            .send()
    };

    // add a job with the form: to its page, with a notice
    let r = post(
        "/queues/forms/jobs",
        &[
            ("name", "diag.echo"),
            ("data", "{\"n\": 7}"),
            ("opts", "{\"attempts\": 2, \"jobId\": \"f-1\"}"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/queues/forms/jobs/f-1?notice="), "{to}");
    let job = q.job("f-1").await.unwrap();
    assert_eq!((job.data, job.opts.attempts), (json!({"n": 7}), Some(2)));
    let (s, page) = get_text(&d.url(&to)).await;
    assert_eq!(s, 200);
    assert!(page.contains("added job f-1"));

    // bad JSON in the form: 400 page naming it, nothing stored
    let r = post("/queues/forms/jobs", &[("name", "x"), ("data", "{oops")])
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("data is not valid JSON"));
    assert_eq!(q.counts().await.unwrap().waiting, 1);

    // pause, resume, remove
    let r = post("/queues/forms/pause", &[("state", "waiting")])
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(q.counts().await.unwrap().paused);
    let (_, page) = get_text(&d.url("/queues/forms")).await;
    assert!(
        page.contains(">paused</span>") && page.contains("f-1"),
        "a paused queue lists its waiting jobs"
    );
    post("/queues/forms/resume", &[("state", "waiting")])
        .await
        .unwrap();
    assert!(!q.counts().await.unwrap().paused);
    let r = post("/queues/forms/jobs/f-1/retry", &[]).await.unwrap();
    assert_eq!(
        r.status().as_u16(),
        409,
        "retrying a waiting job is refused"
    );
    assert!(r.text().await.unwrap().contains("waiting"));
    let r = post(
        "/queues/forms/jobs/f-1/remove",
        &[("return_to", "/queues/forms?state=waiting&page=1")],
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/queues/forms?state=waiting&page=1&notice="));
    assert!(q.get_job("f-1").await.unwrap().is_none());
    // an outside return_to is ignored
    q.add("x", &json!({}), JobOptions::new().job_id("f-2"))
        .await
        .unwrap();
    let r = post(
        "/queues/forms/jobs/f-2/remove",
        &[("return_to", "//evil.example/")],
    )
    .await
    .unwrap();
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/queues/forms?notice="));

    // unknown queue and job pages are 404 pages
    let (s, page) = get_text(&d.url("/queues/nothing-here")).await;
    assert_eq!(s, 404);
    assert!(page.contains("nothing-here"));
    let (s, _) = get_text(&d.url("/queues/forms/jobs/nope")).await;
    assert_eq!(s, 404);
    let (s, _) = get_text(&d.url("/queues/forms?state=bogus")).await;
    assert_eq!(s, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_redis_down_and_back_and_pages_never_crash() {
    let mut server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    env.queue("h")
        .await
        .add("x", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let mut d = Dashboard::start(&env, &[]).await;

    let (s, h) = get_json(&d.url("/api/health")).await;
    assert_eq!(s, 200, "{h}");
    assert_eq!(
        (h["status"].as_str(), h["redis"]["status"].as_str()),
        (Some("healthy"), Some("connected"))
    );
    assert!(h["redis"]["latency_ms"].as_f64().unwrap() >= 0.0);

    server.stop();
    let down = eventually(
        Duration::from_secs(15),
        "health to say disconnected",
        || async {
            let (s, h) = get_json(&d.url("/api/health")).await;
            (s == 503 && h["redis"]["status"] == "disconnected").then_some(h)
        },
    )
    .await;
    assert_eq!(down["status"], "degraded");
    let started = Instant::now();
    let (s, page) = get_text(&d.url("/")).await;
    assert_eq!(s, 503);
    assert!(page.contains("banner error"), "an error banner");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the page did not hang"
    );
    let (s, _) = get_json(&d.url("/api/queues")).await;
    assert_eq!(s, 503);
    let (s, metrics) = get_text(&d.url("/metrics")).await;
    assert_eq!(s, 200);
    assert!(metrics.contains("jobq_redis_up 0"));
    assert!(d.is_running(), "the dashboard survived Redis going away");

    // back: it reconnects by itself
    server.restart();
    eventually(Duration::from_secs(20), "health to recover", || async {
        let (s, h) = get_json(&d.url("/api/health")).await;
        (s == 200 && h["redis"]["status"] == "connected").then_some(())
    })
    .await;
    let (s, _) = get_text(&d.url("/")).await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_before_redis_it_serves_degraded_then_connects() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let d = Dashboard::start_for(Some(&url), "late", &[]).await;
    let (s, h) = get_json(&d.url("/api/health")).await;
    assert_eq!(s, 503);
    assert_eq!(h["redis"]["status"], "disconnected", "{h}");
    let (s, page) = get_text(&d.url("/")).await;
    assert_eq!(s, 503);
    assert!(page.contains("banner error"));

    let _server = RedisServer::start_on(port, &[]);
    eventually(
        Duration::from_secs(20),
        "the dashboard to connect",
        || async {
            let (s, h) = get_json(&d.url("/api/health")).await;
            (s == 200 && h["redis"]["status"] == "connected").then_some(())
        },
    )
    .await;
    let env = TestEnv::on_prefix(&url, "late").await;
    env.queue("q")
        .await
        .add("x", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let (s, api) = get_json(&d.url("/api/queues")).await;
    assert_eq!((s, api[0]["waiting"].as_u64()), (200, Some(1)), "{api}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_configured_it_says_so_and_serves_degraded() {
    let d = Dashboard::start_for(None, "jobq", &[]).await;
    let (s, h) = get_json(&d.url("/api/health")).await;
    assert_eq!(s, 503);
    assert_eq!(
        h,
        json!({"status": "degraded", "redis": {"status": "not_configured", "latency_ms": null}})
    );
    let (s, page) = get_text(&d.url("/")).await;
    assert_eq!(s, 503);
    assert!(page.contains("Redis is not configured"), "{page}");
    let (s, e) = get_json(&d.url("/api/queues")).await;
    assert_eq!(s, 503);
    assert!(e["error"].as_str().unwrap().contains("not configured"));
    let said = d
        .stderr()
        .lines()
        .filter(|l| l.contains("not configured"))
        .count();
    assert_eq!(said, 1, "one line says so:\n{}", d.stderr());
}
