//! The dashboard's enqueue endpoint applies the producer fallback (`JOBQ_FALLBACK`)
//! against a Redis each test stops and starts again, through the built `jobq-dashboard`:
//! with `spool` an enqueue while Redis is down is accepted (202) and kept on disk — the
//! breaker makes the adds after the first one fast — and the dashboard itself stores the
//! jobs in Redis once it is back, each once under its id, with no worker or CLI running;
//! it also replays the spool files other processes left in its dir. With `error`, and with
//! `inline` (which the dashboard cannot honour), it is a 503 naming the Redis address.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::dashboard_support::*;
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

const Q: &str = "spooled";
const BULK: &str = "spooled-bulk";
const FORM: &str = "spooled-form";

/// POSTs `body` to `/api/queues/{queue}/jobs` → (status, JSON, how long it took).
async fn enqueue(
    c: &reqwest::Client,
    d: &Dashboard,
    queue: &str,
    body: &Value,
) -> (u16, Value, Duration) {
    let started = Instant::now();
    let r = c
        .post(d.url(&format!("/api/queues/{queue}/jobs")))
        .json(body)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    let v = r.json().await.unwrap_or(Value::Null);
    (status, v, started.elapsed())
}

/// The ids of the waiting jobs of `queue`.
async fn waiting_ids(q: &Queue) -> BTreeSet<String> {
    q.list_jobs(JobState::Waiting, 0, 100)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|j| j.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fallback_spool_enqueues_while_redis_is_down_are_accepted_and_stored_once_when_it_is_back(
) {
    let mut server = RedisServer::start(&[]);
    let url = server.url();
    let prefix = fresh_prefix();
    let spool = TempDir::new("dashboard-fallback");
    let d = Dashboard::start_env(
        Some(&url),
        &prefix,
        &[],
        &[
            ("JOBQ_FALLBACK", "spool"),
            ("JOBQ_SPOOL_DIR", spool.as_str()),
        ],
    )
    .await;
    let c = client();

    // Redis up: the answers are the usual ones
    let (s, v, _) = enqueue(&c, &d, "up", &json!({"name": "x", "opts": {"jobId": "u1"}})).await;
    assert_eq!(
        (s, v),
        (
            201,
            json!({"queue": "up", "id": "u1", "duplicate": false, "debounced": false})
        )
    );
    let (s, v, _) = enqueue(&c, &d, "up", &json!({"name": "x", "opts": {"jobId": "u1"}})).await;
    assert_eq!((s, &v["duplicate"]), (200, &json!(true)), "{v}");

    server.stop();

    // bad input is still a 400, and nothing is kept
    let (s, v, _) = enqueue(&c, &d, Q, &json!({"nam": "x"})).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("name"), "{v}");
    let (s, v, _) = enqueue(&c, &d, "bad%20queue", &json!({"name": "x"})).await;
    assert_eq!(s, 400, "{v}");
    assert!(spool.files_ending(".jsonl").is_empty(), "bad input spooled");

    // three jobs, one with its own id: each accepted, spooled
    let mut ids = BTreeSet::new();
    for n in 0..3 {
        let mut job = json!({"name": "diag.echo", "data": {"n": n}});
        if n == 2 {
            job["opts"] = json!({"jobId": "mine-2"});
        }
        let (s, v, took) = enqueue(&c, &d, Q, &job).await;
        assert_eq!(s, 202, "job {n}: {v}\n{}", d.stderr());
        assert_eq!(
            (&v["queue"], &v["spooled"]),
            (&json!(Q), &json!(true)),
            "{v}"
        );
        assert!(
            v["reason"].as_str().unwrap().contains(&server.addr()),
            "the reason names the address: {v}"
        );
        let id = v["id"].as_str().expect("an id").to_string();
        if n == 2 {
            assert_eq!(id, "mine-2", "a given id is kept");
        }
        if n == 1 {
            // the first failure opened the breaker: no waiting on Redis any more
            assert!(
                took < Duration::from_millis(50),
                "the second spooled enqueue took {took:?}"
            );
        }
        ids.insert(id);
    }
    assert_eq!(ids.len(), 3);

    // an array: a count, and an entry per job
    let (s, v, _) = enqueue(
        &c,
        &d,
        BULK,
        &json!([{"name": "diag.echo", "data": 1}, {"name": "diag.echo", "data": 2}]),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!((&v["added"], &v["spooled"]), (&json!(0), &json!(2)), "{v}");
    let bulk_ids: BTreeSet<String> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            assert_eq!(j["spooled"], true, "{j}");
            j["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(bulk_ids.len(), 2);

    // the page's "add a job" form: back to the overview, saying the job was spooled
    let r = c
        .post(d.url(&format!("/queues/{FORM}/jobs")))
        .header("origin", d.origin())
        .form(&[("name", "diag.echo"), ("opts", "{\"jobId\": \"form-1\"}")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/?notice="), "{to}");
    let (_, page) = get_text(&d.url(&to)).await;
    assert!(
        page.contains("job form-1 is spooled"),
        "the overview says so"
    );

    // on disk, synced, every id in it
    let files = spool.files_ending(".jsonl");
    assert!(!files.is_empty(), "no spool file in {}", spool.as_str());
    let spooled: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let form_ids = BTreeSet::from(["form-1".to_string()]);
    for id in ids.iter().chain(&bulk_ids).chain(&form_ids) {
        assert!(spooled.contains(id.as_str()), "{id} not in the spool");
    }

    // Redis back: the dashboard (nothing else runs) stores them
    server.restart();
    let env = TestEnv::on_prefix(&url, &prefix).await;
    let q = env.queue(Q).await;
    let bulk = env.queue(BULK).await;
    let form = env.queue(FORM).await;
    eventually(
        Duration::from_secs(30),
        "the spooled jobs in Redis",
        || async {
            (waiting_ids(&q).await == ids
                && waiting_ids(&bulk).await == bulk_ids
                && waiting_ids(&form).await == form_ids)
                .then_some(())
        },
    )
    .await;
    let job = q.job("mine-2").await.unwrap();
    assert_eq!(
        (job.name.as_str(), job.data.clone()),
        ("diag.echo", json!({"n": 2}))
    );
    eventually(
        Duration::from_secs(15),
        "the spool files to be gone",
        || {
            let left = spool.files_ending(".jsonl");
            async move { left.is_empty().then_some(()) }
        },
    )
    .await;
    // once each: another replay round later, still exactly these jobs
    tokio::time::sleep(queue_core::producer::REPLAY_EVERY + Duration::from_secs(1)).await;
    let counts = q.counts().await.unwrap();
    assert_eq!(
        (counts.waiting, counts.active, counts.delayed),
        (3, 0, 0),
        "{counts:?}"
    );
    assert_eq!(waiting_ids(&q).await, ids);
    assert_eq!(bulk.counts().await.unwrap().waiting, 2);
    assert_eq!(form.counts().await.unwrap().waiting, 1);
    assert!(
        d.stderr().contains("replayed"),
        "the dashboard did not replay:\n{}",
        d.stderr()
    );

    // and enqueues are stored again
    let (s, v, _) = enqueue(&c, &d, Q, &json!({"name": "diag.echo"})).await;
    assert_eq!((s, &v["duplicate"]), (201, &json!(false)), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_replays_spool_files_other_processes_left_in_its_dir_once_redis_is_back() {
    let mut server = RedisServer::start(&[]);
    let url = server.url();
    let prefix = fresh_prefix();
    let spool = TempDir::new("dashboard-fallback-other");
    // connected, with the default fallback: it never spools anything itself
    let _d = Dashboard::start_env(
        Some(&url),
        &prefix,
        &[],
        &[("JOBQ_SPOOL_DIR", spool.as_str())],
    )
    .await;

    server.stop();
    // another producer, sharing the dir, spools two jobs and goes away
    let mut config = Config::new(&url).unwrap().with_prefix(&prefix).unwrap();
    config.fallback = Fallback::Spool;
    config.spool_dir = spool.path().to_path_buf();
    let producer = Producer::builder(config).auto_replay(false).build();
    let mut ids = BTreeSet::new();
    for n in 0..2 {
        let p = producer
            .add("other", "diag.echo", &json!({ "n": n }), JobOptions::new())
            .await
            .unwrap();
        assert_eq!(p.mode(), "spooled", "{p:?}");
        ids.insert(p.id().to_string());
    }
    drop(producer);
    assert_eq!(spool.files_ending(".jsonl").len(), 1);

    server.restart();
    let env = TestEnv::on_prefix(&url, &prefix).await;
    let q = env.queue("other").await;
    eventually(
        Duration::from_secs(30),
        "the other process's jobs in Redis",
        || async { (waiting_ids(&q).await == ids).then_some(()) },
    )
    .await;
    eventually(Duration::from_secs(15), "the spool file to be gone", || {
        let left = spool.files_ending(".jsonl");
        async move { left.is_empty().then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fallback_error_an_enqueue_while_redis_is_down_is_a_503_naming_the_address() {
    let mut server = RedisServer::start(&[]);
    let spool = TempDir::new("dashboard-fallback-error");
    let d = Dashboard::start_env(
        Some(&server.url()),
        &fresh_prefix(),
        &[],
        &[
            ("JOBQ_FALLBACK", "error"),
            ("JOBQ_SPOOL_DIR", spool.as_str()),
        ],
    )
    .await;
    let c = client();
    server.stop();
    for _ in 0..2 {
        let (s, v, _) = enqueue(&c, &d, Q, &json!({"name": "diag.echo"})).await;
        assert_eq!(s, 503, "{v}");
        let e = v["error"].as_str().expect("a JSON error");
        assert!(e.contains(&server.addr()), "{e}");
        assert!(e.contains("JOBQ_FALLBACK=error"), "{e}");
    }
    assert!(
        spool.files_ending(".jsonl").is_empty(),
        "error mode spooled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fallback_inline_an_enqueue_while_redis_is_down_is_a_503_saying_to_spool() {
    let mut server = RedisServer::start(&[]);
    let spool = TempDir::new("dashboard-fallback-inline");
    let d = Dashboard::start_env(
        Some(&server.url()),
        &fresh_prefix(),
        &[],
        &[
            ("JOBQ_FALLBACK", "inline"),
            ("JOBQ_SPOOL_DIR", spool.as_str()),
        ],
    )
    .await;
    let said = d
        .stderr()
        .lines()
        .filter(|l| l.contains("JOBQ_FALLBACK=inline"))
        .count();
    assert_eq!(said, 1, "one startup line says so:\n{}", d.stderr());
    let c = client();
    server.stop();
    let (s, v, _) = enqueue(&c, &d, Q, &json!({"name": "diag.echo"})).await;
    assert_eq!(s, 503, "{v}");
    let e = v["error"].as_str().expect("a JSON error");
    assert!(e.contains(&server.addr()), "{e}");
    assert!(
        e.contains("inline") && e.contains("JOBQ_FALLBACK=spool"),
        "{e}"
    );
    assert!(
        spool.files_ending(".jsonl").is_empty(),
        "inline mode spooled"
    );
}
