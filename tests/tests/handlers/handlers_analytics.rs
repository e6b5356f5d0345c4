//! `analytics.ingest` and `analytics.rollup` against a real Redis: counts, unique users,
//! top items, the cached rollup, idempotent re-ingest and bounded key lifetimes.

use std::time::Duration;

use jobq_handlers::analytics::AnalyticsKeys;
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

const Q: &str = "analytics";
/// 2026-11-22T10:00:00Z
const DAY_MS: i64 = 1_795_341_600_000;
const DAY: &str = "2026-11-22";

fn worker(env: &TestEnv) -> Worker {
    jobq_handlers::analytics::register(env.worker().queues([Q]).concurrency(4))
        .build()
        .unwrap()
}

async fn run(q: &Queue, name: &str, data: Value, opts: JobOptions) -> JobInfo {
    let added = q.add(name, &data, opts).await.unwrap();
    wait_job_done(q, &added.id, Duration::from_secs(10)).await
}

fn view(user: &str, item: &str, at: i64) -> Value {
    json!({"event": "view", "user": user, "item": item, "ts": at})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_views_by_two_users_roll_up_to_three_and_two_unique() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let _w = spawn_worker(worker(&env));

    let ingested = run(
        &q,
        "analytics.ingest",
        json!({"events": [
            view("alice", "/home", DAY_MS),
            view("bob", "/home", DAY_MS + 1_000),
            view("alice", "/pricing", DAY_MS + 2_000),
            {"event": "signup", "user": "bob", "ts": DAY_MS + 3_000},
        ]}),
        JobOptions::new(),
    )
    .await;
    assert_eq!(ingested.state, JobState::Completed, "{ingested:?}");
    let rv = ingested.return_value.unwrap();
    assert_eq!(rv["events"], 4);
    assert_eq!(rv["days"][DAY], 4);
    assert_eq!(rv["duplicate"], false);

    let rollup = run(
        &q,
        "analytics.rollup",
        json!({"day": DAY}),
        JobOptions::new(),
    )
    .await;
    assert_eq!(rollup.state, JobState::Completed, "{rollup:?}");
    let r = rollup.return_value.unwrap();
    assert_eq!(r["counts"]["view"], 3);
    assert_eq!(r["counts"]["signup"], 1);
    assert_eq!(r["total"], 4);
    assert_eq!(r["unique_users"], 2);
    assert_eq!(r["unique_users_by_event"]["view"], 2);
    assert_eq!(r["unique_users_by_event"]["signup"], 1);
    assert_eq!(r["top"]["view"][0], json!({"item": "/home", "count": 2}));
    assert_eq!(r["top"]["view"][1], json!({"item": "/pricing", "count": 1}));
    assert_eq!(r["cached"], false);

    // the second rollup is served from the cache
    let again = run(
        &q,
        "analytics.rollup",
        json!({"day": DAY}),
        JobOptions::new(),
    )
    .await;
    let again = again.return_value.unwrap();
    assert_eq!(again["cached"], true);
    assert_eq!(again["counts"], r["counts"]);

    // an ingest into the day drops the cached rollup: the next one is fresh
    run(
        &q,
        "analytics.ingest",
        json!({"events": [view("carol", "/home", DAY_MS + 60_000)]}),
        JobOptions::new(),
    )
    .await;
    let fresh = run(
        &q,
        "analytics.rollup",
        json!({"day": DAY}),
        JobOptions::new(),
    )
    .await;
    let fresh = fresh.return_value.unwrap();
    assert_eq!(fresh["cached"], false);
    assert_eq!(fresh["counts"]["view"], 4);
    assert_eq!(fresh["unique_users"], 3);
    assert_eq!(
        fresh["top"]["view"][0],
        json!({"item": "/home", "count": 3})
    );

    // a day with nothing is an empty summary, not an error
    let empty = run(
        &q,
        "analytics.rollup",
        json!({"day": "2026-11-21"}),
        JobOptions::new(),
    )
    .await;
    assert_eq!(empty.state, JobState::Completed, "{empty:?}");
    let empty = empty.return_value.unwrap();
    assert_eq!(empty["total"], 0);
    assert_eq!(empty["unique_users"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_of_the_same_batch_is_not_counted_twice_and_day_keys_expire() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let _w = spawn_worker(worker(&env));
    let batch = json!({"events": [view("alice", "/a", DAY_MS), view("bob", "/a", DAY_MS)]});

    let first = run(
        &q,
        "analytics.ingest",
        batch.clone(),
        JobOptions::new().job_id("batch-1"),
    )
    .await;
    assert_eq!(first.return_value.unwrap()["duplicate"], false);
    // the same job again (as after a lost reply and a rerun)
    q.remove_job("batch-1").await.unwrap();
    let second = run(
        &q,
        "analytics.ingest",
        batch,
        JobOptions::new().job_id("batch-1"),
    )
    .await;
    assert_eq!(second.state, JobState::Completed);
    assert_eq!(second.return_value.unwrap()["duplicate"], true);

    let keys = AnalyticsKeys::new(env.config.prefix());
    let mut raw = env.raw().await;
    // the same job id with other events is refused, not silently skipped
    q.remove_job("batch-1").await.unwrap();
    let other = json!({"events": [view("carol", "/b", DAY_MS)]});
    let reused = run(
        &q,
        "analytics.ingest",
        other,
        JobOptions::new().job_id("batch-1").attempts(3),
    )
    .await;
    assert_eq!(reused.state, JobState::Failed);
    assert_eq!(reused.attempts_made, 1);
    let reason = reused.failed_reason.unwrap();
    assert!(
        reason.contains("batch-1") && reason.contains("other events"),
        "{reason}"
    );

    let views: u64 = redis::cmd("HGET")
        .arg(keys.counts(DAY))
        .arg("view")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(views, 2);
    for key in [
        keys.counts(DAY),
        keys.users(DAY),
        keys.event_users(DAY, "view"),
        keys.top(DAY, "view"),
        keys.batch(Q, "batch-1"),
    ] {
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(ttl > 0, "{key} has no expiry (ttl {ttl})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obliterating_the_analytics_queue_keeps_the_analytics() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let w = spawn_worker(worker(&env));
    run(
        &q,
        "analytics.ingest",
        json!({"events": [view("a", "/", DAY_MS)]}),
        JobOptions::new(),
    )
    .await;
    w.stop().await.unwrap();
    q.obliterate(true).await.unwrap();
    let keys = AnalyticsKeys::new(env.config.prefix());
    let views: u64 = redis::cmd("HGET")
        .arg(keys.counts(DAY))
        .arg("view")
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    assert_eq!(
        views, 1,
        "the queue's keys and the analytics keys are apart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_and_days_fail_at_once_naming_the_value() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let _w = spawn_worker(worker(&env));
    let three = || JobOptions::new().attempts(3);

    let bad_name = run(
        &q,
        "analytics.ingest",
        json!({"events": [view("a", "/", DAY_MS), {"event": "no spaces allowed"}]}),
        three(),
    )
    .await;
    assert_eq!(bad_name.state, JobState::Failed);
    assert_eq!(bad_name.attempts_made, 1, "a bad batch is not retried");
    let reason = bad_name.failed_reason.unwrap();
    assert!(
        reason.contains("events[1].event") && reason.contains("no spaces allowed"),
        "{reason}"
    );

    let unknown = run(
        &q,
        "analytics.ingest",
        json!({"events": [], "extra": 1}),
        three(),
    )
    .await;
    assert_eq!(unknown.state, JobState::Failed);
    assert!(unknown.failed_reason.unwrap().contains("extra"));

    // a time past the year 9999: its day would be no YYYY-MM-DD any rollup reads
    let far = run(
        &q,
        "analytics.ingest",
        json!({"events": [view("a", "/", 253_402_300_800_000)]}),
        three(),
    )
    .await;
    assert_eq!((far.state, far.attempts_made), (JobState::Failed, 1));
    let reason = far.failed_reason.unwrap();
    assert!(reason.contains("253402300800000"), "{reason}");

    let bad_day = run(
        &q,
        "analytics.rollup",
        json!({"day": "2026-02-30"}),
        three(),
    )
    .await;
    assert_eq!(bad_day.state, JobState::Failed);
    assert_eq!(bad_day.attempts_made, 1);
    assert!(bad_day.failed_reason.unwrap().contains("2026-02-30"));

    // nothing was counted for the refused batch
    let keys = AnalyticsKeys::new(env.config.prefix());
    let exists: bool = redis::cmd("EXISTS")
        .arg(keys.counts(DAY))
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    assert!(!exists);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowlog_a_batch_over_thousands_of_days_is_written_in_short_parts_counted_once() {
    let server = RedisServer::start_logging_slow_calls();
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue(Q).await;
    let _w = spawn_worker(worker(&env));
    // 12,000 events, each its own day, event, user and item (one call for all of them held
    // Redis 373 ms), and 3,000 more on one day, without a time: counted today
    const DAYS: i64 = 12_000;
    let mut events: Vec<Value> = (0..DAYS)
        .map(|n| json!({"event": format!("e{n}"), "user": format!("u{n}"), "item": format!("i{n}"), "ts": n * 86_400_000}))
        .collect();
    events.extend(
        (0..3_000).map(|n| json!({"event": "view", "user": format!("w{n}"), "item": "/home"})),
    );
    let batch = json!({ "events": events });
    let opts = || JobOptions::new().job_id("big-batch");
    let first = run(&q, "analytics.ingest", batch.clone(), opts()).await;
    assert_eq!(
        first.state,
        JobState::Completed,
        "{:?}",
        first.failed_reason
    );
    let done = first.return_value.unwrap();
    assert_eq!(done["duplicate"], false, "{done}");
    assert_eq!(
        done["days"].as_object().map(|d| d.len()),
        Some(DAYS as usize + 1)
    );
    let (calls, worst) = slowest_call(&mut env.raw().await).await;
    assert!(
        worst.0 < 50_000,
        "a call blocked Redis for {} µs ({calls} calls over 5 ms): {}",
        worst.0,
        worst.1
    );
    // a rerun (a lost reply, a reclaimed lease) counts nothing twice
    q.remove_job("big-batch").await.unwrap();
    let again = run(&q, "analytics.ingest", batch, opts()).await;
    assert_eq!(again.return_value.unwrap()["duplicate"], true);
    let keys = AnalyticsKeys::new(env.config.prefix());
    let mut raw = env.raw().await;
    let last_day = jobq_handlers::analytics::day::day_of((DAYS - 1) * 86_400_000);
    let n: u64 = redis::cmd("HGET")
        .arg(keys.counts(&last_day))
        .arg(format!("e{}", DAYS - 1))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(n, 1);
    // (the day the events without a time counted on: 3,000 events)
    let today = done["days"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, n)| **n == 3_000)
        .map(|(d, _)| d.clone())
        .unwrap();
    let views: u64 = redis::cmd("HGET")
        .arg(keys.counts(&today))
        .arg("view")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(views, 3_000);
}
