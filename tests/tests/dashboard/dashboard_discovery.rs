//! Discovery on the dashboard: `GET /api/workers` and the Workers page list two `jobq-worker`
//! processes with their pids; a running job's API answer and page name its worker; corrupt
//! worker records are listed as such, escaped; `GET /api/redis` and the Redis page report
//! the server and flag AOF off and an evicting `maxmemory-policy`.

use std::time::Duration;

use crate::dashboard_support::*;
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_page_list_two_workers_and_a_running_job_names_its_worker() {
    let env = TestEnv::new().await;
    let (url, prefix) = (env.config.redis_url().unwrap(), env.config.prefix());
    let a = WorkerProcess::start(url, prefix, &["--queues", "diag", "--heartbeat", "200ms"]);
    let b = WorkerProcess::start(url, prefix, &["--queues", "other", "--heartbeat", "200ms"]);
    let d = Dashboard::start(&env, &[]).await;
    let mut want = vec![u64::from(a.child.id()), u64::from(b.child.id())];
    want.sort();
    let list = eventually(Duration::from_secs(20), "two workers listed", || async {
        let (status, v) = get_json(&d.url("/api/workers")).await;
        assert_eq!(status, 200, "{v}");
        let mut pids: Vec<u64> = v
            .as_array()?
            .iter()
            .filter_map(|w| w["pid"].as_u64())
            .collect();
        pids.sort();
        (pids == want).then_some(v)
    })
    .await;
    let a_id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["pid"] == a.child.id())
        .map(|w| w["id"].as_str().unwrap().to_string())
        .unwrap();
    let (status, page) = get_text(&d.url("/workers")).await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("data-worker=\"{a_id}\"")), "{page}");
    assert!(page.contains(&format!("<td class=\"num\">{}</td>", b.child.id())));
    assert!(
        page.contains("<a href=\"/workers\">Workers</a>"),
        "nav link"
    );

    // a long job names its worker, in the API and on its page
    let q = env.queue("diag").await;
    let job = q
        .add("diag.sleep", &json!({"ms": 20_000}), JobOptions::new())
        .await
        .unwrap();
    wait_active(&q, 1, Duration::from_secs(15)).await;
    let (_, shown) = get_json(&d.url(&format!("/api/queues/diag/jobs/{}", job.id))).await;
    assert_eq!(
        (shown["state"].as_str(), shown["worker"].as_str()),
        (Some("active"), Some(&a_id[..]))
    );
    let (_, page) = get_text(&d.url(&format!("/queues/diag/jobs/{}", job.id))).await;
    assert!(page.contains("id=\"worker\" href=\"/workers#w-"), "{page}");
    assert!(page.contains(&format!(">{a_id}</a>")), "{page}");
    // and the worker's row links the job it holds
    let page = eventually(
        Duration::from_secs(5),
        "the job on the workers page",
        || async {
            let (_, page) = get_text(&d.url("/workers")).await;
            page.contains(&format!("/queues/diag/jobs/{}", job.id))
                .then_some(page)
        },
    )
    .await;
    assert!(
        page.contains("<span data-field=\"running\">1</span> of 16"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_worker_records_never_break_the_api_or_the_page() {
    let env = TestEnv::new().await;
    plant_corrupt_workers(&env).await;
    let d = Dashboard::start(&env, &[]).await;
    let (status, v) = get_json(&d.url("/api/workers")).await;
    assert_eq!(status, 200, "{v}");
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 5, "{v}");
    assert!(list.iter().all(|w| w["corrupt"].is_string()), "{v}");
    let (status, page) = get_text(&d.url("/workers")).await;
    assert_eq!(status, 200);
    assert_eq!(page.matches("corrupt record:").count(), 5, "{page}");
    assert!(!page.contains("<script>{"), "{page}");
    assert!(page.contains("&lt;script&gt;{"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_redis_reports_the_server_and_flags_aof_off() {
    let env = TestEnv::new().await;
    env.queue("one")
        .await
        .add("diag.noop", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let d = Dashboard::start(&env, &[]).await;
    let (status, v) = get_json(&d.url("/api/redis")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["cluster"], false);
    let node = &v["nodes"][0];
    assert!(node["version"]
        .as_str()
        .unwrap()
        .starts_with(|c: char| c.is_ascii_digit()));
    assert!(node["uptime_secs"].as_u64().is_some(), "{node}");
    let m = &node["memory"];
    assert!(m["used_bytes"].as_u64().unwrap() > 0, "{m}");
    assert!(m["peak_bytes"].as_u64().unwrap() >= m["used_bytes"].as_u64().unwrap() / 2);
    assert!(m["fragmentation_ratio"].as_f64().is_some() && m["max_bytes"].is_u64());
    assert_eq!(m["policy"], "noeviction");
    assert!(node["ops_per_sec"].is_u64() && node["connected_clients"].as_u64() >= Some(1));
    assert!(node["blocked_clients"].is_u64());
    assert!(node["keyspace"][0]["keys"].as_u64() >= Some(1), "{node}");
    assert_eq!(node["aof"]["enabled"], false);
    assert!(node["aof"]["last_rewrite_status"].is_string());
    let warnings: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(warnings.len(), 1, "{v}");
    assert!(warnings[0].starts_with("AOF is off"), "{v}");
    let (status, page) = get_text(&d.url("/redis")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<span class=\"badge failed flag\">off</span>"),
        "{page}"
    );
    assert!(page.contains("<li>AOF is off"));
    assert!(page.contains("<span class=\"badge running\">noeviction</span>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicting_policy_is_flagged_and_aof_on_is_not() {
    let server = RedisServer::start(&["--maxmemory-policy", "allkeys-lru", "--appendonly", "yes"]);
    let env = TestEnv::on(&server.url()).await;
    let d = Dashboard::start(&env, &[]).await;
    let (status, v) = get_json(&d.url("/api/redis")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["nodes"][0]["aof"]["enabled"], true);
    assert_eq!(v["nodes"][0]["memory"]["policy"], "allkeys-lru");
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{v}");
    assert!(warnings[0].as_str().unwrap().contains("allkeys-lru"), "{v}");
    let (_, page) = get_text(&d.url("/redis")).await;
    assert!(
        page.contains("<span class=\"badge failed flag\">allkeys-lru</span>"),
        "{page}"
    );
    assert!(!page.contains("<span class=\"badge failed flag\">off</span>"));
}
