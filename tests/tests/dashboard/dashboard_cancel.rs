//! `POST /api/queues/{q}/jobs/{id}/cancel` through the built `jobq-dashboard`: a running
//! 20 s job ends cancelled within 1.5 s and is not retried, the worker keeps running; a
//! waiting one is cancelled at once; finished is a 409, unknown a 404, both JSON.

use std::time::{Duration, Instant};

use crate::dashboard_support::*;
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_cancels_a_running_job_within_1_5_s_and_refuses_finished_and_unknown_ones() {
    let env = TestEnv::new().await;
    let q = env.queue("http-cancel").await;
    let d = Dashboard::start(&env, &[]).await;
    let c = client();
    let api = |p: &str| d.url(&format!("/api/queues/http-cancel{p}"));
    let worker = diag_worker(&env, "http-cancel");
    let guard = spawn_worker(worker);
    let long = start_long_job(
        &q,
        "diag.sleep",
        JobOptions::new().attempts(3),
        Duration::from_secs(10),
    )
    .await;
    let asked = Instant::now();
    let r = c
        .post(api(&format!("/jobs/{}/cancel", long)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["cancelled"], "requested");
    wait_cancelled(&q, &long, asked).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (s, body) = get_json(&api("")).await;
    assert_eq!(s, 200);
    assert_eq!(
        (body["active"].as_u64(), body["cancelled"].as_u64()),
        (Some(0), Some(1)),
        "{body}"
    );
    let (s, page) = get_json(&api("/jobs?state=cancelled")).await;
    assert_eq!(s, 200, "{page}");
    assert!(page.to_string().contains(&long), "{page}");

    // finished: 409; unknown: 404; both JSON errors
    let r = c
        .post(api(&format!("/jobs/{}/cancel", long)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("cancelled"),
        "{body}"
    );
    let r = c.post(api("/jobs/ghost/cancel")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());

    // a delayed job is cancelled at once; retry brings it back and it runs
    let later = q
        .add(
            "diag.noop",
            &json!({}),
            JobOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let r = c
        .post(api(&format!("/jobs/{}/cancel", later.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["cancelled"], "now");
    let r = c
        .post(api(&format!("/jobs/{}/retry", later.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let done = wait_job_done(&q, &later.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed);
    guard.stop().await.unwrap();
}

/// A worker on `queue` with the `diag.*` handlers.
pub fn diag_worker(env: &TestEnv, queue: &str) -> Worker {
    jobq_handlers::diag::register(env.worker().queues([queue]).concurrency(2))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_cancel_that_outlasts_the_request_goes_on_to_the_last_child() {
    let server = RedisServer::start(&["--enable-debug-command", "yes"]);
    let env = TestEnv::on(&server.url()).await;
    let parents = env.queue("walk-p").await;
    let kids = env.queue("walk-c").await;
    let d = Dashboard::start(&env, &[]).await;
    let n = 3_000;
    let flows = FlowProducer::new(&env.redis, env.config.prefix());
    let tree = flows
        .add(
            FlowJob::new("walk-p", "diag.collect", &json!({}))
                .unwrap()
                .children(
                    (0..n)
                        .map(|i| FlowJob::new("walk-c", "diag.noop", &json!({ "i": i })).unwrap()),
                ),
        )
        .await
        .unwrap();
    let url = d.url(&format!("/api/queues/walk-p/jobs/{}/cancel", tree.id));
    let mut raw = env.raw().await;
    // (the script calls from here on: the walk's, one per child, and the polls below)
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut raw)
        .await
        .unwrap();
    let first = url.clone();
    let asked = tokio::spawn(async move { client().post(first).send().await.unwrap() });
    // once the parent is cancelled (its children's walk begun), Redis stops answering for
    // longer than the request waits
    eventually(Duration::from_secs(10), "the parent cancelled", || {
        let p = parents.clone();
        let id = tree.id.clone();
        async move { (p.job(&id).await.unwrap().state == JobState::Cancelled).then_some(()) }
    })
    .await;
    let _: () = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg(6)
        .query_async(&mut raw)
        .await
        .unwrap();
    let r = asked.await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (&body["cancelled"], &body["walking"]),
        (&json!("now"), &json!(true)),
        "{body}"
    );
    // cancelled again while the walk goes on: it says so, and starts no second walk
    let r = client().post(url).send().await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (&body["cancelled"], &body["walking"]),
        (&json!("now"), &json!(true)),
        "{body}"
    );
    // no call from the test: the walk carries on in the background to the last child
    // (looked at every 200 ms: the count of script calls below takes the looks too)
    let t0 = std::time::Instant::now();
    while kids.counts().await.unwrap().cancelled < n as u64 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the walk did not reach every child"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(kids.counts().await.unwrap().waiting, 0);
    // one walk: two calls per child (its cancel, then its outcome delivered to the parent)
    // and the polls, not twice that
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut raw)
        .await
        .unwrap();
    let calls: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|l| l.split(',').next())
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    assert!(
        calls < n as u64 * 5 / 2,
        "{calls} script calls for {n} children: walked twice"
    );
}
