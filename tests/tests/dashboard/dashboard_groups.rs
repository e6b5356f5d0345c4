//! Groups (a queue's tenants) through the dashboard: `GET /api/queues/{q}/groups?limit=`
//! returns the counts and the busiest groups with what holds each back (a bad limit is a
//! 400 naming it), the queue page shows the Groups table only for a queue with groups, and
//! `/metrics` has the group counts and the jobs of the 20 busiest groups of each queue only.

use std::time::Duration;

use crate::dashboard_support::*;
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};
use tokio::sync::watch;

/// A worker on `queue` whose `hold` handler runs until `release` turns true.
fn holding_worker(env: &TestEnv, queue: &str, release: watch::Receiver<bool>) -> Worker {
    env.worker()
        .queues([queue])
        .concurrency(10)
        .handler("hold", move |_j: Job<Value>, _c: Ctx| {
            let mut release = release.clone();
            async move {
                let _ = release.wait_for(|go| *go).await;
                Ok::<_, JobError>(json!(null))
            }
        })
        .build()
        .unwrap()
}

/// Queue `tenants` with jobs held running: `acme` (3 jobs, at most 1 at once: 2 waiting,
/// 1 active, limited by concurrency), `gamma` (2 jobs, 1 start an hour: 1 waiting, 1
/// active, limited by rate), `beta` (1 job: active, not limited) and one job without a
/// group. Returns the worker and what releases its jobs, once the API shows all that.
async fn held_tenants(env: &TestEnv, d: &Dashboard) -> (WorkerGuard, watch::Sender<bool>) {
    let q = env.queue("tenants").await;
    q.set_group_limit(Some("acme"), GroupLimitChange::Concurrency(1))
        .await
        .unwrap();
    q.set_group_limit(
        Some("gamma"),
        GroupLimitChange::Rate {
            max: 1,
            window: Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    let job = |group: Option<&str>| {
        let opts = match group {
            Some(g) => JobOptions::new().group(g),
            None => JobOptions::new(),
        };
        NewJob::new("hold", &json!({}), opts).unwrap()
    };
    let mut jobs: Vec<NewJob> = (0..3).map(|_| job(Some("acme"))).collect();
    jobs.extend((0..2).map(|_| job(Some("gamma"))));
    jobs.push(job(Some("beta")));
    jobs.push(job(None));
    add_all(&q, jobs).await;
    let (release, rx) = watch::channel(false);
    let guard = spawn_worker(holding_worker(env, "tenants", rx));
    wait_active(&q, 4, Duration::from_secs(15)).await;
    let url = d.url("/api/queues/tenants/groups");
    eventually(
        Duration::from_secs(15),
        "acme and gamma limited",
        || async {
            let (_, v) = get_json(&url).await;
            (v["limited"] == json!(2)).then_some(())
        },
    )
    .await;
    (guard, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_lists_the_groups_with_their_counts_and_what_holds_them_back() {
    let env = TestEnv::new().await;
    let d = Dashboard::start(&env, &[]).await;
    let (guard, release) = held_tenants(&env, &d).await;

    let (s, v) = get_json(&d.url("/api/queues/tenants/groups")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (&v["with_waiting"], &v["with_active"], &v["limited"]),
        (&json!(2), &json!(3), &json!(2)),
        "{v}"
    );
    let groups = v["groups"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(groups.len(), 3, "{v}");
    // most waiting first, then the groups with active jobs only
    assert_eq!(
        groups[0],
        json!({"group": "acme", "waiting": 2, "active": 1, "limited": {"by": "concurrency"}})
    );
    assert_eq!(
        (
            &groups[1]["group"],
            &groups[1]["waiting"],
            &groups[1]["active"]
        ),
        (&json!("gamma"), &json!(1), &json!(1)),
        "{v}"
    );
    assert_eq!(groups[1]["limited"]["by"], json!("rate"), "{v}");
    let until = groups[1]["limited"]["until_ms"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(until > now && until <= now + 3_600_000, "{until} vs {now}");
    assert_eq!(
        groups[2],
        json!({"group": "beta", "waiting": 0, "active": 1})
    );

    // the limit cuts the list, never the counts
    let (s, v) = get_json(&d.url("/api/queues/tenants/groups?limit=1")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["with_active"], json!(3), "{v}");
    let names: Vec<&Value> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| &g["group"])
        .collect();
    assert_eq!(names, [&json!("acme")], "{v}");
    let (s, v) = get_json(&d.url("/api/queues/tenants/groups?limit=0")).await;
    assert_eq!(
        (s, &v["groups"], &v["with_waiting"]),
        (200, &json!([]), &json!(2))
    );

    // the gauges of the groups held
    let (_, metrics) = get_text(&d.url("/metrics")).await;
    for line in [
        "jobq_groups{queue=\"tenants\",state=\"waiting\"} 2",
        "jobq_groups{queue=\"tenants\",state=\"active\"} 3",
        "jobq_groups{queue=\"tenants\",state=\"limited\"} 2",
        "jobq_group_waiting{queue=\"tenants\",group=\"acme\"} 2",
        "jobq_group_active{queue=\"tenants\",group=\"acme\"} 1",
        "jobq_group_active{queue=\"tenants\",group=\"beta\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line}:\n{metrics}"
        );
    }

    release.send_replace(true);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_groups_limit_is_a_400_naming_it_and_an_unknown_queue_a_404() {
    let env = TestEnv::new().await;
    env.queue("plain")
        .await
        .add("work", &json!({}), JobOptions::new().group("acme"))
        .await
        .unwrap();
    let d = Dashboard::start(&env, &[]).await;
    for (limit, needle) in [
        ("abc", "limit \"abc\""),
        ("-1", "limit \"-1\""),
        ("1.5", "limit \"1.5\""),
        ("1001", "limit 1001"),
        ("99999999999999999999999", "limit 99999999999999999999999"),
    ] {
        let r = client()
            .get(d.url(&format!("/api/queues/plain/groups?limit={limit}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "limit {limit}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("application/json"), "{ct}");
        let v: Value = r.json().await.unwrap();
        let e = v["error"].as_str().unwrap_or_else(|| panic!("{v}"));
        assert!(e.contains(needle), "{needle}: {e}");
    }
    let (s, v) = get_json(&d.url("/api/queues/plain/groups?limit=1000")).await;
    assert_eq!((s, &v["with_waiting"]), (200, &json!(1)), "{v}");
    let (s, v) = get_json(&d.url("/api/queues/nosuch/groups")).await;
    assert_eq!(s, 404, "{v}");
    assert!(v["error"].as_str().unwrap().contains("nosuch"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_page_shows_the_groups_table_only_for_a_queue_with_groups() {
    let env = TestEnv::new().await;
    env.queue("solo")
        .await
        .add("work", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let d = Dashboard::start(&env, &[]).await;
    let (guard, release) = held_tenants(&env, &d).await;

    let (s, page) = get_text(&d.url("/queues/tenants")).await;
    assert_eq!(s, 200);
    assert!(page.contains("<h2 id=\"groups\">Groups</h2>"), "{page}");
    assert!(page.contains("<table id=\"groups-table\">"), "{page}");
    for (name, count) in [("with_waiting", 2), ("with_active", 3), ("limited", 2)] {
        let shown = format!("<span data-groups=\"{name}\">{count}</span>");
        assert!(page.contains(&shown), "{shown}: {page}");
    }
    let row = |group: &str| {
        let start = page
            .find(&format!("<tr data-group=\"{group}\">"))
            .unwrap_or_else(|| panic!("no row for {group}: {page}"));
        let end = start + page[start..].find("</tr>").unwrap();
        page[start..end].to_string()
    };
    let acme = row("acme");
    assert!(
        acme.contains("<td class=\"num\">2</td><td class=\"num\">1</td>")
            && acme.contains(">concurrency<"),
        "{acme}"
    );
    let gamma = row("gamma");
    assert!(
        gamma.contains("<td class=\"num\">1</td><td class=\"num\">1</td>")
            && gamma.contains(">rate</span> until ")
            && gamma.contains(" UTC<"),
        "{gamma}"
    );
    let beta = row("beta");
    assert!(
        beta.contains("<td class=\"num\">0</td><td class=\"num\">1</td>") && beta.contains(">-<"),
        "{beta}"
    );

    // a queue without groups: no section at all
    let (s, page) = get_text(&d.url("/queues/solo")).await;
    assert_eq!(s, 200);
    assert!(
        !page.contains("id=\"groups") && !page.contains("data-group"),
        "{page}"
    );

    release.send_replace(true);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_the_20_busiest_of_30_groups_only() {
    let env = TestEnv::new().await;
    let q = env.queue("many").await;
    // group gNN has NN + 1 jobs: the busiest 20 are g10..=g29
    let jobs = (0..30)
        .flat_map(|i| {
            (0..=i).map(move |_| {
                NewJob::new(
                    "work",
                    &json!({}),
                    JobOptions::new().group(format!("g{i:02}")),
                )
                .unwrap()
            })
        })
        .collect();
    add_all(&q, jobs).await;
    let d = Dashboard::start(&env, &[]).await;

    let (s, metrics) = get_text(&d.url("/metrics")).await;
    assert_eq!(s, 200);
    for line in [
        "# TYPE jobq_groups gauge",
        "# TYPE jobq_group_waiting gauge",
        "# TYPE jobq_group_active gauge",
        "jobq_groups{queue=\"many\",state=\"waiting\"} 30",
        "jobq_groups{queue=\"many\",state=\"active\"} 0",
        "jobq_groups{queue=\"many\",state=\"limited\"} 0",
        "jobq_group_waiting{queue=\"many\",group=\"g29\"} 30",
        "jobq_group_waiting{queue=\"many\",group=\"g10\"} 11",
        "jobq_group_active{queue=\"many\",group=\"g29\"} 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line}:\n{metrics}"
        );
    }
    for series in ["jobq_group_waiting{", "jobq_group_active{"] {
        let n = metrics.lines().filter(|l| l.starts_with(series)).count();
        assert_eq!(n, 20, "{series} series:\n{metrics}");
    }
    assert!(!metrics.contains("group=\"g09\""), "{metrics}");
}
