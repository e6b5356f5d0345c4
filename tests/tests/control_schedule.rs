//! Repeatable jobs (schedules) against a real Redis: every-N and cron (with seconds) fire
//! one job per tick however many workers run, list shows the next run, upsert replaces,
//! remove stops, a schedule outlives its workers (a missed tick fires once, not in a
//! burst), and bad ids, intervals and cron expressions are refused naming the value.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

/// Job ids seen by handlers, in the order they ran (shared by every worker of a test).
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn ids(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// A worker on `queue` whose handler for `name` records each job id it runs.
fn recording_worker(env: &TestEnv, queue: &str, name: &str, seen: &Seen) -> Worker {
    let seen = seen.clone();
    env.worker()
        .queues([queue])
        .concurrency(4)
        .handler(name, move |job: Job<Value>, _ctx: Ctx| {
            let seen = seen.clone();
            async move {
                seen.0.lock().unwrap().push(job.id);
                Ok::<_, JobError>(())
            }
        })
        .build()
        .unwrap()
}

/// The tick (ms) of a job id `sched:<schedule>:<tick>`.
fn tick_of(job_id: &str, schedule: &str) -> u64 {
    job_id
        .strip_prefix(&format!("sched:{schedule}:"))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{job_id:?} is not a job of schedule {schedule:?}"))
}

fn every(d: Duration) -> Repeat {
    Repeat::every(d).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_second_with_three_workers_fires_each_tick_exactly_once() {
    let env = TestEnv::new().await;
    let q = env.queue("sched").await;
    let seen = Seen::default();
    let workers: Vec<_> = (0..3)
        .map(|_| spawn_worker(recording_worker(&env, "sched", "tick", &seen)))
        .collect();
    // jobs are deleted as soon as they complete: the job id alone could not keep a second
    // worker from adding the same tick again, only the claim can
    let schedule = Schedule::new("each-second", "tick", every(Duration::from_secs(1)))
        .opts(JobOptions::new().remove_on_complete(Retention::REMOVE));
    let started = Instant::now();
    q.upsert_schedule(schedule).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3_500).saturating_sub(started.elapsed())).await;
    let ids = seen.ids();
    for w in workers {
        w.stop().await.unwrap();
    }
    assert!(
        (2..=4).contains(&ids.len()),
        "expected 3 (±1) jobs in 3.5 s, got {}: {ids:?}",
        ids.len()
    );
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "a tick ran twice: {ids:?}");
    let mut ticks: Vec<u64> = ids.iter().map(|id| tick_of(id, "each-second")).collect();
    ticks.sort();
    for pair in ticks.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            1_000,
            "ticks skipped or repeated: {ticks:?}"
        );
    }
    assert!(ticks.iter().all(|t| t % 1_000 == 0), "{ticks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_workers_on_a_fast_schedule_never_fire_a_tick_twice() {
    let env = TestEnv::new().await;
    let q = env.queue("race").await;
    let seen = Seen::default();
    let workers: Vec<_> = (0..6)
        .map(|_| spawn_worker(recording_worker(&env, "race", "tick", &seen)))
        .collect();
    // many ticks, each raced by six workers, each job gone as soon as it completes
    let schedule = Schedule::new("fast", "tick", every(Duration::from_millis(50)))
        .opts(JobOptions::new().remove_on_complete(Retention::REMOVE));
    q.upsert_schedule(schedule).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    q.remove_schedule("fast").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for w in workers {
        w.stop().await.unwrap();
    }
    let ids = seen.ids();
    assert!(
        ids.len() >= 10,
        "only {} ticks in 1.5 s: {ids:?}",
        ids.len()
    );
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "a tick ran twice: {ids:?}");
    let counts = q.counts().await.unwrap();
    assert_eq!(counts.completed_total, ids.len() as u64, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_with_seconds_fires_jobs_with_the_schedules_data_and_options() {
    let env = TestEnv::new().await;
    let q = env.queue("cron").await;
    let seen = Seen::default();
    let worker = spawn_worker(recording_worker(&env, "cron", "report", &seen));
    let schedule = Schedule::new("every-sec", "report", Repeat::cron("* * * * * *").unwrap())
        .data(&json!({"kind": "daily", "n": 3}))
        .unwrap()
        .opts(JobOptions::new().priority(7).attempts(2));
    q.upsert_schedule(schedule).await.unwrap();
    eventually(Duration::from_secs(4), "two cron ticks", || {
        let seen = seen.clone();
        async move { (seen.len() >= 2).then_some(()) }
    })
    .await;
    worker.stop().await.unwrap();
    let ids = seen.ids();
    let ticks: Vec<u64> = ids.iter().map(|id| tick_of(id, "every-sec")).collect();
    assert!(ticks.iter().all(|t| t % 1_000 == 0), "{ticks:?}");
    assert_eq!(ticks.iter().collect::<HashSet<_>>().len(), ticks.len());
    let job = q.job(&ids[0]).await.unwrap();
    assert_eq!(job.name, "report");
    assert_eq!(job.data, json!({"kind": "daily", "n": 3}));
    assert_eq!(job.priority, 7);
    assert_eq!(job.opts.max_attempts(), 2);
    assert_eq!(job.state, JobState::Completed);
}

#[tokio::test]
async fn list_shows_each_schedule_with_its_next_run() {
    let env = TestEnv::new().await;
    let q = env.queue("list").await;
    let before = now_ms();
    q.upsert_schedule(
        Schedule::new(
            "b-five-min",
            "report",
            Repeat::cron("0 */5 * * * *").unwrap(),
        )
        .data(&json!({"x": 1}))
        .unwrap(),
    )
    .await
    .unwrap();
    let upserted = q
        .upsert_schedule(Schedule::new(
            "a-hourly",
            "cleanup",
            every(Duration::from_secs(3600)),
        ))
        .await
        .unwrap();
    let list = q.schedules().await.unwrap();
    assert_eq!(
        list.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["a-hourly", "b-five-min"]
    );
    let (hourly, five) = (&list[0], &list[1]);
    assert_eq!(hourly, &upserted);
    assert_eq!(hourly.queue, "list");
    assert_eq!(hourly.name, "cleanup");
    assert_eq!(hourly.repeat, Repeat::Every(Duration::from_secs(3600)));
    let next = hourly.next_run_ms.expect("next run");
    assert!(
        next > before && next <= before + 3_600_000 + 1_000,
        "{next}"
    );
    assert_eq!(next % 3_600_000, 0, "every 1h ticks on the hour");
    assert_eq!(five.name, "report");
    assert_eq!(five.data, json!({"x": 1}));
    assert_eq!(five.repeat, Repeat::Cron("0 */5 * * * *".into()));
    let next = five.next_run_ms.expect("next run");
    assert!(next > before && next <= before + 300_000 + 1_000, "{next}");
    assert_eq!(next % 300_000, 0);
    assert_eq!(q.schedule("a-hourly").await.unwrap().as_ref(), Some(hourly));
    assert_eq!(q.schedule("missing").await.unwrap(), None);
    // another queue's schedules are its own
    assert!(env
        .queue("other")
        .await
        .schedules()
        .await
        .unwrap()
        .is_empty());
    // machine-readable form, as `jobq schedule list --json` prints it
    let v = serde_json::to_value(hourly).unwrap();
    assert_eq!(v["repeat"], json!({"every_ms": 3_600_000}));
    assert_eq!(
        serde_json::to_value(five).unwrap()["repeat"],
        json!({"cron": "0 */5 * * * *"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_of_the_same_id_replaces_the_schedule() {
    let env = TestEnv::new().await;
    let q = env.queue("replace").await;
    let first = q
        .upsert_schedule(Schedule::new("s", "old", every(Duration::from_secs(3600))))
        .await
        .unwrap();
    let seen_old = Seen::default();
    let seen_new = Seen::default();
    let seen = Seen::default();
    let worker = env
        .worker()
        .queues(["replace"])
        .handler("old", {
            let s = seen_old.clone();
            move |job: Job<Value>, _ctx: Ctx| {
                let s = s.clone();
                async move {
                    s.0.lock().unwrap().push(job.id);
                    Ok::<_, JobError>(())
                }
            }
        })
        .handler("new", {
            let (s, all) = (seen_new.clone(), seen.clone());
            move |job: Job<Value>, _ctx: Ctx| {
                let (s, all) = (s.clone(), all.clone());
                async move {
                    s.0.lock().unwrap().push(job.id.clone());
                    all.0.lock().unwrap().push(job.id);
                    Ok::<_, JobError>(())
                }
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let second = q
        .upsert_schedule(
            Schedule::new("s", "new", every(Duration::from_millis(250)))
                .data(&json!({"v": 2}))
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(second.next_run_ms < first.next_run_ms, "the due tick moved");
    let list = q.schedules().await.unwrap();
    assert_eq!(list.len(), 1, "one schedule per id: {list:?}");
    assert_eq!(list[0].name, "new");
    assert_eq!(list[0].data, json!({"v": 2}));
    assert_eq!(list[0].repeat, Repeat::Every(Duration::from_millis(250)));
    eventually(
        Duration::from_secs(3),
        "the replaced schedule to fire",
        || {
            let s = seen_new.clone();
            async move { (s.len() >= 2).then_some(()) }
        },
    )
    .await;
    guard.stop().await.unwrap();
    assert!(seen_old.ids().is_empty(), "{:?}", seen_old.ids());
    let ids = seen.ids();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_stops_the_schedule() {
    let env = TestEnv::new().await;
    let q = env.queue("remove").await;
    let seen = Seen::default();
    let worker = spawn_worker(recording_worker(&env, "remove", "tick", &seen));
    q.upsert_schedule(Schedule::new(
        "fast",
        "tick",
        every(Duration::from_millis(200)),
    ))
    .await
    .unwrap();
    eventually(Duration::from_secs(3), "the schedule to fire twice", || {
        let seen = seen.clone();
        async move { (seen.len() >= 2).then_some(()) }
    })
    .await;
    assert!(q.remove_schedule("fast").await.unwrap());
    assert!(!q.remove_schedule("fast").await.unwrap(), "already gone");
    assert!(q.schedules().await.unwrap().is_empty());
    assert_eq!(q.schedule("fast").await.unwrap(), None);
    // a tick claimed just before the removal may still be added: let it land
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = q.counts().await.unwrap();
    let ran = seen.len();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let after = q.counts().await.unwrap();
    worker.stop().await.unwrap();
    assert_eq!(seen.len(), ran, "jobs ran after removal: {:?}", seen.ids());
    assert_eq!(
        after.completed_total + after.waiting + after.delayed,
        settled.completed_total + settled.waiting + settled.delayed,
        "jobs were added after removal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_survives_its_workers_and_fires_a_missed_tick_once() {
    let env = TestEnv::new().await;
    let q = env.queue("restart").await;
    let seen = Seen::default();
    let first = spawn_worker(recording_worker(&env, "restart", "tick", &seen));
    q.upsert_schedule(Schedule::new(
        "s",
        "tick",
        every(Duration::from_millis(500)),
    ))
    .await
    .unwrap();
    eventually(Duration::from_secs(3), "a first tick", || {
        let seen = seen.clone();
        async move { (seen.len() >= 1).then_some(()) }
    })
    .await;
    first.stop().await.unwrap();
    let stopped_at = now_ms();
    // no worker runs for 1.6 s: three or four ticks are missed
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    // a new process: its own connection, same prefix
    let env2 = TestEnv::on_prefix(env.config.redis_url().unwrap(), env.config.prefix()).await;
    let restarted_at = now_ms();
    let second = spawn_worker(recording_worker(&env2, "restart", "tick", &seen));
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    second.stop().await.unwrap();
    let ids = seen.ids();
    let mut ticks: Vec<u64> = ids.iter().map(|id| tick_of(id, "s")).collect();
    ticks.sort();
    // the ticks that fell due while no worker ran
    let missed = ticks
        .iter()
        .filter(|t| (stopped_at..restarted_at).contains(t))
        .count();
    assert_eq!(
        missed, 1,
        "missed ticks fire once, not in a burst: {ticks:?}"
    );
    assert!(
        ticks.iter().filter(|t| **t >= restarted_at).count() >= 2,
        "the schedule kept firing after the restart: {ticks:?}"
    );
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "{ids:?}"
    );
    assert_eq!(q.schedules().await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_ids_intervals_and_cron_expressions_are_refused_naming_the_value() {
    let env = TestEnv::new().await;
    let q = env.queue("bad").await;
    let e = Repeat::cron("every monday").unwrap_err().to_string();
    assert!(e.contains("\"every monday\""), "{e}");
    let e = Repeat::cron("0 0 0 31 2 *").unwrap_err().to_string();
    assert!(e.contains("\"0 0 0 31 2 *\""), "{e}");
    let e = Repeat::every(Duration::from_millis(1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("1ms"), "{e}");
    // a hand-built Repeat is checked at upsert too
    let e = q
        .upsert_schedule(Schedule::new(
            "s",
            "tick",
            Repeat::Cron("61 * * * * *".into()),
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"61 * * * * *\""), "{e}");
    let e = q
        .upsert_schedule(Schedule::new(
            "has space",
            "tick",
            every(Duration::from_secs(1)),
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("schedule id") && e.contains("\"has space\""),
        "{e}"
    );
    let e = q
        .upsert_schedule(
            Schedule::new("s", "tick", every(Duration::from_secs(1)))
                .opts(JobOptions::new().priority(5000)),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("5000"), "{e}");
    assert!(
        q.schedules().await.unwrap().is_empty(),
        "nothing was stored"
    );
}
