//! Reading lean jobs (stored as their lane entry alone, no hash; `prelude.lua` *Lean
//! jobs*): `get_job`, the waiting and active listings and the search show one while its
//! entry is undelivered (waiting, or paused) or pending (active), by its lean id
//! `~<prio>.<entry id>`, and never once its entry is acknowledged; a lean job given a record
//! is shown as its record says. The lean jobs are written by hand, as add_job writes them.

use std::collections::BTreeSet;

use jobq_tests::*;
use queue_core::internal::keys::QueueKeys;
use queue_core::*;
use serde_json::json;

/// Opens lane `prio` of queue `name` (its stream, consumer group and place in the lanes
/// set) the way the queue does: a job with a given id (never lean) added, then removed.
async fn open_lane(q: &Queue, prio: i32) {
    let opener = format!("opener{prio}");
    let opts = JobOptions::new().job_id(opener.as_str()).priority(prio);
    q.add("diag.noop", &json!({}), opts).await.unwrap();
    q.remove_job(&opener).await.unwrap();
}

/// Adds a lean job to lane `prio` by hand, as add_job does (its entry, the waiting
/// counter); its id.
async fn add_lean(env: &TestEnv, keys: &QueueKeys, prio: i32, fields: &[(&str, &str)]) -> String {
    let fields: Vec<(&str, &[u8])> = fields.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    add_lean_by_hand(env, keys, prio, &fields).await
}

/// Claims every undelivered entry of lane `prio` for consumer `c`, as a worker's fetch does.
async fn claim_all(env: &TestEnv, keys: &QueueKeys, prio: i32) {
    claim_by_hand(env, keys, prio, "c", 100).await;
}

async fn listed(q: &Queue, state: JobState) -> Vec<JobInfo> {
    let mut all = q.list_jobs(state, 0, 100).await.unwrap();
    if matches!(state, JobState::Waiting | JobState::Paused) {
        let newest = q
            .list_jobs_in(state, ListOrder::Newest, 0, 100)
            .await
            .unwrap();
        let ids = |v: &[JobInfo]| v.iter().map(|j| j.id.clone()).collect::<BTreeSet<_>>();
        assert_eq!(ids(&all), ids(&newest), "both orders list the same jobs");
    }
    all.retain(|j| j.id.starts_with('~'));
    all
}

async fn found(q: &Queue, filter: SearchFilter) -> Vec<JobInfo> {
    q.search(&filter.limit(100)).await.unwrap().jobs
}

fn ids(jobs: &[JobInfo]) -> Vec<&str> {
    jobs.iter().map(|j| j.id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lean_job_reads_as_waiting_then_active_then_is_gone() {
    let env = TestEnv::new().await;
    let q = env.queue("lean-reads").await;
    let keys = QueueKeys::new(env.config.prefix(), "lean-reads");
    open_lane(&q, 0).await;
    let id = add_lean(&env, &keys, 0, &[("n", "diag.noop"), ("d", r#"{"x":1}"#)]).await;
    let sid = id.strip_prefix("~0.").unwrap().to_string();
    let ms: u64 = sid.split_once('-').unwrap().0.parse().unwrap();

    // waiting: shown from its entry
    let j = q
        .get_job(&id)
        .await
        .unwrap()
        .expect("the lean job is found");
    assert_eq!(j.id, id);
    assert_eq!(j.state, JobState::Waiting);
    assert_eq!(j.name, "diag.noop");
    assert_eq!(j.data, json!({"x": 1}));
    assert_eq!(j.priority, 0);
    assert_eq!(j.attempts_made, 0);
    assert_eq!(j.created_at, ms);
    assert_eq!(j.worker, None);
    assert_eq!(j.corrupt, None);
    let waiting = listed(&q, JobState::Waiting).await;
    assert_eq!(ids(&waiting), [id.as_str()]);
    assert_eq!(waiting[0].data, json!({"x": 1}));
    assert_eq!(waiting[0].state, JobState::Waiting);
    let by_data = SearchFilter::new().data(r#""x":1"#);
    let hits = found(&q, by_data.clone().state(JobState::Waiting)).await;
    assert_eq!(ids(&hits), [id.as_str()]);
    assert_eq!(hits[0].data, json!({"x": 1}));
    assert_eq!(ids(&found(&q, by_data.clone()).await), [id.as_str()]);
    let by_name = SearchFilter::new().name("diag.noop");
    assert_eq!(ids(&found(&q, by_name.clone()).await), [id.as_str()]);
    assert!(found(&q, SearchFilter::new().name("other"))
        .await
        .is_empty());
    assert!(found(&q, SearchFilter::new().data("nothing"))
        .await
        .is_empty());
    assert!(found(&q, SearchFilter::new().error("x")).await.is_empty());

    // paused with its queue
    q.pause().await.unwrap();
    let j = q.get_job(&id).await.unwrap().unwrap();
    assert_eq!(j.state, JobState::Paused);
    assert_eq!(ids(&listed(&q, JobState::Paused).await), [id.as_str()]);
    assert_eq!(
        ids(&found(&q, by_data.clone().state(JobState::Paused)).await),
        [id.as_str()]
    );
    q.resume().await.unwrap();

    // claimed: active, its entry pending to the consumer
    claim_all(&env, &keys, 0).await;
    let j = q.get_job(&id).await.unwrap().unwrap();
    assert_eq!(j.state, JobState::Active);
    assert_eq!(j.attempts_made, 1, "the running attempt");
    assert_eq!(j.worker.as_deref(), Some("c"));
    assert!(j.started_at.is_some());
    assert_eq!(j.data, json!({"x": 1}));
    assert!(listed(&q, JobState::Waiting).await.is_empty());
    let active = listed(&q, JobState::Active).await;
    assert_eq!(ids(&active), [id.as_str()]);
    assert_eq!(active[0].data, json!({"x": 1}));
    assert_eq!(active[0].worker.as_deref(), Some("c"));
    let hits = found(&q, by_data.clone().state(JobState::Active)).await;
    assert_eq!(ids(&hits), [id.as_str()]);
    assert_eq!(hits[0].state, JobState::Active);
    assert!(found(&q, by_data.clone().state(JobState::Waiting))
        .await
        .is_empty());

    // acknowledged (finished): gone, though its entry lingers in the lane
    let mut raw = env.raw().await;
    let acked: i64 = redis::cmd("XACK")
        .arg(keys.lane(0))
        .arg("jobq")
        .arg(&sid)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(acked, 1);
    let entries: i64 = redis::cmd("XLEN")
        .arg(keys.lane(0))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(entries >= 1, "the entry is still there");
    assert!(q.get_job(&id).await.unwrap().is_none());
    assert!(listed(&q, JobState::Active).await.is_empty());
    assert!(listed(&q, JobState::Waiting).await.is_empty());
    assert!(found(&q, by_data.clone()).await.is_empty());
    assert!(found(&q, by_name).await.is_empty());

    // ids that name no live lean job are no job
    for other in [
        format!("~0.{}-{}", ms, 999),
        format!("~3.{sid}"),
        "~0.x".to_string(),
    ] {
        assert!(q.get_job(&other).await.unwrap().is_none(), "{other}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lean_job_of_another_lane_shows_its_options_and_a_record_speaks_for_it() {
    let env = TestEnv::new().await;
    let q = env.queue("lean-record").await;
    let keys = QueueKeys::new(env.config.prefix(), "lean-record");
    open_lane(&q, 0).await;
    open_lane(&q, -5).await;

    // another lane, stored options, trace context, and data past one 64-byte piece (cut at
    // character boundaries when a record is made from it)
    let opts = serde_json::to_string(&JobOptions::new().attempts(3)).unwrap();
    let data = json!({"y": 2, "pad": "é".repeat(100)});
    let data_text = data.to_string();
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let low = add_lean(
        &env,
        &keys,
        -5,
        &[
            ("n", "diag.low"),
            ("d", &data_text),
            ("o", &opts),
            ("t", tp),
        ],
    )
    .await;
    assert!(low.starts_with("~-5."), "{low}");
    let j = q.get_job(&low).await.unwrap().unwrap();
    assert_eq!(
        (j.state, j.priority, j.name.as_str()),
        (JobState::Waiting, -5, "diag.low")
    );
    assert_eq!(j.opts.attempts, Some(3));
    assert_eq!(j.data, data);
    assert!(j.traceparent.is_some());
    let waiting = listed(&q, JobState::Waiting).await;
    assert_eq!(ids(&waiting), [low.as_str()]);
    assert_eq!(
        (waiting[0].priority, waiting[0].opts.attempts),
        (-5, Some(3))
    );
    assert_eq!(waiting[0].data, data);
    let hits = found(&q, SearchFilter::new().data(r#""y":2"#)).await;
    assert_eq!(ids(&hits), [low.as_str()]);
    assert_eq!(hits[0].data, data);

    // a lean job given a record: the record speaks, as for any job
    let id = add_lean(&env, &keys, 0, &[("n", "diag.noop"), ("d", r#"{"x":1}"#)]).await;
    let sid = id.strip_prefix("~0.").unwrap().to_string();
    let ts = sid.split_once('-').unwrap().0.to_string();
    let mut raw = env.raw().await;
    let _: () = redis::cmd("HSET")
        .arg(keys.job(&id))
        .arg(&[
            ("ts", ts.as_str()),
            ("sid", sid.as_str()),
            ("name", "diag.recorded"),
            ("data", r#"{"x":2}"#),
            ("att", "1"),
        ])
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: i64 = redis::cmd("SADD")
        .arg(keys.lean_records())
        .arg(&id)
        .query_async(&mut raw)
        .await
        .unwrap();
    let j = q.get_job(&id).await.unwrap().unwrap();
    assert_eq!(j.state, JobState::Waiting);
    assert_eq!((j.name.as_str(), j.attempts_made), ("diag.recorded", 1));
    assert_eq!(j.data, json!({"x": 2}));
    let waiting = listed(&q, JobState::Waiting).await;
    let recorded = waiting.iter().find(|j| j.id == id).expect("listed");
    assert_eq!(recorded.name, "diag.recorded");
    assert_eq!(recorded.data, json!({"x": 2}));
    let hits = found(&q, SearchFilter::new().data(r#""x":2"#)).await;
    assert_eq!(ids(&hits), [id.as_str()]);
    assert_eq!(hits[0].name, "diag.recorded");
    assert!(found(&q, SearchFilter::new().data(r#""x":1"#))
        .await
        .is_empty());
    assert!(found(&q, SearchFilter::new().name("diag.noop"))
        .await
        .is_empty());

    // claimed: the record's job is active, the entry's name still unseen
    claim_all(&env, &keys, 0).await;
    let j = q.get_job(&id).await.unwrap().unwrap();
    assert_eq!((j.state, j.attempts_made), (JobState::Active, 2));
    let active = listed(&q, JobState::Active).await;
    assert_eq!(ids(&active), [id.as_str()]);
    assert_eq!(active[0].name, "diag.recorded");
    let hits = found(&q, SearchFilter::new().state(JobState::Active)).await;
    assert_eq!(ids(&hits), [id.as_str()]);
    assert_eq!(hits[0].data, json!({"x": 2}));
    // the other lane's job still waits
    assert_eq!(ids(&listed(&q, JobState::Waiting).await), [low.as_str()]);
}
