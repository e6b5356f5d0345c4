//! The overview at scale: 100 queues holding 1,000,000 jobs must render within 200 ms of
//! server time (median of several loads, read from the `Server-Timing` header). Counts are
//! O(1) per queue and read concurrently, so the figure should not depend on the job count.
//! Runs on a private Redis so a million jobs never weigh on other tests.

use std::time::Instant;

use crate::dashboard_support::*;
use futures_util::stream::{self, StreamExt};
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

const QUEUES: usize = 100;
const JOBS_PER_QUEUE: usize = 10_000;
const BUDGET_MS: f64 = 200.0;

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Server time of `loads` GETs of `path` (after one warm-up), and the last body.
async fn time_page(d: &Dashboard, path: &str, loads: usize) -> (Vec<f64>, String) {
    let c = client();
    let warm = c.get(d.url(path)).send().await.unwrap();
    assert_eq!(warm.status().as_u16(), 200, "{path}");
    let _ = warm.text().await;
    let mut times = Vec::new();
    let mut body = String::new();
    for _ in 0..loads {
        let t = Instant::now();
        let r = c.get(d.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let server = server_ms(&r);
        body = r.text().await.unwrap();
        eprintln!(
            "  GET {path}: server {server:.1} ms, round trip {:.1} ms, {} bytes",
            t.elapsed().as_secs_f64() * 1e3,
            body.len()
        );
        times.push(server);
    }
    (times, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_of_100_queues_and_a_million_jobs_renders_within_200ms() {
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let names: Vec<String> = (0..QUEUES).map(|i| format!("q{i:03}")).collect();
    let fill = Instant::now();
    stream::iter(names.iter())
        .map(|name| {
            let env = &env;
            async move {
                let q = env.queue(name).await;
                let jobs: Vec<NewJob> = (0..JOBS_PER_QUEUE)
                    .map(|i| NewJob::new("diag.noop", &json!({"i": i}), JobOptions::new()).unwrap())
                    .collect();
                q.add_bulk(jobs).await.unwrap();
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<()>>()
        .await;
    eprintln!(
        "stored {} jobs in {QUEUES} queues in {:?}",
        QUEUES * JOBS_PER_QUEUE,
        fill.elapsed()
    );

    let d = Dashboard::start(&env, &[]).await;
    let (times, body) = time_page(&d, "/", 7).await;
    assert!(body.contains("data-queue=\"q000\"") && body.contains("data-queue=\"q099\""));
    assert!(
        body.contains(&format!(">{JOBS_PER_QUEUE}</a>")),
        "counts shown"
    );
    let m = median(&times);
    eprintln!(
        "overview of {QUEUES} queues / {} jobs: median server time {m:.1} ms",
        QUEUES * JOBS_PER_QUEUE
    );
    assert!(m <= BUDGET_MS, "overview median {m:.1} ms > {BUDGET_MS} ms");

    // the API's counts add up, and stay quick
    let (api_times, body) = time_page(&d, "/api/queues", 3).await;
    let rows: Value = serde_json::from_str(&body).unwrap();
    let total: u64 = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["waiting"].as_u64().unwrap())
        .sum();
    assert_eq!(total, (QUEUES * JOBS_PER_QUEUE) as u64);
    eprintln!("/api/queues median {:.1} ms", median(&api_times));

    // a queue page is paginated: the first and the last page of 10,000 waiting jobs
    let (first, _) = time_page(&d, "/queues/q050", 3).await;
    let last_page = JOBS_PER_QUEUE.div_ceil(20);
    let (last, body) = time_page(
        &d,
        &format!("/queues/q050?state=waiting&page={last_page}"),
        3,
    )
    .await;
    assert!(body.contains(&format!("page {last_page} of {last_page}")));
    eprintln!(
        "queue page: first {:.1} ms, last (offset {}) {:.1} ms",
        median(&first),
        JOBS_PER_QUEUE - 20,
        median(&last)
    );
    assert!(median(&last) < 2_000.0, "deep pages stay usable");
    drop(d);
    drop(server);
}
