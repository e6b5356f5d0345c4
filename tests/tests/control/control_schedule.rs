//! Repeatable jobs (schedules) against a real Redis: every-N and cron (with seconds) fire
//! one job per tick however many workers run, list shows the next run, upsert replaces,
//! remove stops, a schedule outlives its workers (after downtime only the latest missed
//! tick fires, once), while a worker runs no tick is skipped (an upsert wakes the loops; a
//! loop that comes late fires each tick it missed), and bad ids, intervals and cron
//! expressions are refused naming the value.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::schedule::tick_job_id;
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

/// The ticks of schedule `schedule` among `ids`, sorted.
fn ticks(ids: &[String], schedule: &str) -> Vec<u64> {
    let mut t: Vec<u64> = ids.iter().map(|id| tick_of(id, schedule)).collect();
    t.sort();
    t
}

/// Fails unless `ticks` are `step` apart, none skipped and none twice.
fn assert_consecutive(ticks: &[u64], step: u64) {
    for (i, pair) in ticks.windows(2).enumerate() {
        let around = &ticks[i.saturating_sub(3)..(i + 5).min(ticks.len())];
        assert_eq!(
            pair[1] - pair[0],
            step,
            "ticks skipped or repeated after the {i}th of {}: {around:?}",
            ticks.len()
        );
    }
}

/// Removes schedule `id` and waits until the jobs it added have all run, so that what the
/// handlers saw is every tick fired.
async fn remove_and_settle(q: &Queue, id: &str) {
    q.remove_schedule(id).await.unwrap();
    eventually(Duration::from_secs(5), "the fired ticks to run", || async {
        let c = q.counts().await.ok()?;
        (c.waiting + c.active + c.delayed == 0).then_some(())
    })
    .await;
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
    let first = q
        .upsert_schedule(schedule)
        .await
        .unwrap()
        .next_run_ms
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    remove_and_settle(&q, "fast").await;
    for w in workers {
        w.stop().await.unwrap();
    }
    let ids = seen.ids();
    assert!(
        ids.len() >= 25,
        "only {} ticks in 1.5 s: {ids:?}",
        ids.len()
    );
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "a tick ran twice: {ids:?}");
    let counts = q.counts().await.unwrap();
    assert_eq!(counts.completed_total, ids.len() as u64, "{counts:?}");
    let ticks = ticks(&ids, "fast");
    assert_eq!(ticks[0], first, "the first tick was skipped");
    assert_consecutive(&ticks, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_catching_up_never_fire_a_tick_twice() {
    let env = TestEnv::new().await;
    let q = env.queue("race2").await;
    let seen = Seen::default();
    let workers: Vec<_> = (0..2)
        .map(|_| spawn_worker(recording_worker(&env, "race2", "tick", &seen)))
        .collect();
    // let the loops fall asleep (nothing is due): the upsert has to wake them
    tokio::time::sleep(Duration::from_millis(300)).await;
    // at 10 ms the loops often come a tick or more late and fire several ticks in one
    // claim: the two workers' batches must never overlap
    let schedule = Schedule::new("fast", "tick", every(Duration::from_millis(10)))
        .opts(JobOptions::new().remove_on_complete(Retention::REMOVE));
    let first = q
        .upsert_schedule(schedule)
        .await
        .unwrap()
        .next_run_ms
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    remove_and_settle(&q, "fast").await;
    for w in workers {
        w.stop().await.unwrap();
    }
    let ids = seen.ids();
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "a tick ran twice: {ids:?}");
    let counts = q.counts().await.unwrap();
    assert_eq!(counts.completed_total, ids.len() as u64, "{counts:?}");
    let ticks = ticks(&ids, "fast");
    assert!(ticks.len() >= 150, "only {} ticks in 2 s", ticks.len());
    assert_eq!(ticks[0], first, "the first tick was skipped");
    assert_consecutive(&ticks, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upserted_schedule_fires_its_first_tick_on_time_and_skips_none() {
    let env = TestEnv::new().await;
    let q = env.queue("wake").await;
    let seen = Seen::default();
    let worker = spawn_worker(recording_worker(&env, "wake", "tick", &seen));
    // let the worker's schedule loop fall asleep: nothing is due, so it sleeps its longest
    tokio::time::sleep(Duration::from_millis(300)).await;
    let info = q
        .upsert_schedule(Schedule::new(
            "s",
            "tick",
            every(Duration::from_millis(100)),
        ))
        .await
        .unwrap();
    let first = info.next_run_ms.unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    remove_and_settle(&q, "s").await;
    worker.stop().await.unwrap();
    let ticks = ticks(&seen.ids(), "s");
    assert_eq!(
        ticks.first(),
        Some(&first),
        "the first tick was skipped: {ticks:?}"
    );
    // the upsert woke the loop: the first tick's job was added on time, not up to a
    // second later
    let job = q.job(&tick_job_id("s", first)).await.unwrap();
    assert!(
        job.created_at <= first + 150,
        "the first tick fired {} ms late",
        job.created_at - first
    );
    assert_consecutive(&ticks, 100);
    assert!(ticks.len() >= 20, "{ticks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_10ms_fires_every_tick_while_a_worker_runs() {
    let env = TestEnv::new().await;
    let q = env.queue("ten").await;
    let seen = Seen::default();
    let worker = spawn_worker(recording_worker(&env, "ten", "tick", &seen));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let schedule = Schedule::new("s", "tick", every(Duration::from_millis(10)))
        .opts(JobOptions::new().remove_on_complete(Retention::REMOVE));
    let first = q
        .upsert_schedule(schedule)
        .await
        .unwrap()
        .next_run_ms
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let removed_at = now_ms();
    remove_and_settle(&q, "s").await;
    worker.stop().await.unwrap();
    let ticks = ticks(&seen.ids(), "s");
    let expected = (removed_at - first) / 10;
    assert!(
        ticks.len() as u64 * 100 >= expected * 95,
        "{} of {expected} ticks fired",
        ticks.len()
    );
    assert_eq!(ticks[0], first, "the first tick was skipped");
    assert_consecutive(&ticks, 10);
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

/// A due tick no clock reaches (a corrupt record: `-inf`, a negative or `nan` score) is taken
/// off the due set at once; it used to match no claim and stay due, so every worker asked
/// for it again and again (~190 calls a second each). A sound schedule beside it still fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_due_tick_leaves_the_due_set_instead_of_spinning_the_workers() {
    let env = TestEnv::new().await;
    let q = env.queue("bad-tick").await;
    let keys = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "bad-tick");
    for id in ["neg-inf", "negative"] {
        q.upsert_schedule(Schedule::new(id, "tick", every(Duration::from_secs(3600))))
            .await
            .unwrap();
    }
    let mut raw = env.raw().await;
    for (id, score) in [("neg-inf", "-inf"), ("negative", "-5"), ("orphan", "-inf")] {
        let _: i64 = redis::cmd("ZADD")
            .arg(keys.schedules_due())
            .arg(score)
            .arg(id)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let seen = Seen::default();
    let worker = spawn_worker(recording_worker(&env, "bad-tick", "tick", &seen));
    q.upsert_schedule(Schedule::new(
        "ok",
        "tick",
        every(Duration::from_millis(200)),
    ))
    .await
    .unwrap();
    eventually(Duration::from_secs(5), "the corrupt ticks to leave", || {
        let mut raw = raw.clone();
        let due = keys.schedules_due();
        async move {
            let left: Vec<String> = redis::cmd("ZRANGE")
                .arg(&due)
                .arg(0)
                .arg(-1)
                .query_async(&mut raw)
                .await
                .ok()?;
            (left == ["ok"]).then_some(())
        }
    })
    .await;
    eventually(Duration::from_secs(3), "the sound schedule to fire", || {
        let seen = seen.clone();
        async move { (seen.len() >= 2).then_some(()) }
    })
    .await;
    worker.stop().await.unwrap();
    assert!(
        seen.ids().iter().all(|id| id.starts_with("sched:ok:")),
        "{:?}",
        seen.ids()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_downtime_only_the_latest_missed_tick_fires() {
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
    // no worker runs for 3.5 s: about seven ticks are missed, far more than a running loop
    // could be late
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    // a new process: its own connection, same prefix
    let env2 = TestEnv::on_prefix(env.config.redis_url().unwrap(), env.config.prefix()).await;
    let restarted_at = now_ms();
    let second = spawn_worker(recording_worker(&env2, "restart", "tick", &seen));
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    remove_and_settle(&q, "s").await;
    second.stop().await.unwrap();
    let ids = seen.ids();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "{ids:?}"
    );
    let after: Vec<u64> = ticks(&ids, "s")
        .into_iter()
        .filter(|t| *t > stopped_at)
        .collect();
    // the one job for the missed period is its latest tick (the last multiple of 500 ms
    // before the restart, or one after it if the worker took that long to start), not the
    // oldest one just after the stop
    let latest_missed = restarted_at / 500 * 500;
    assert!(
        after.first().is_some_and(|t| *t >= latest_missed),
        "the latest missed tick ({latest_missed}) should fire first after the restart at \
         {restarted_at} (stopped at {stopped_at}): {after:?}"
    );
    let missed = q.job(&tick_job_id("s", after[0])).await.unwrap();
    assert!(missed.created_at >= restarted_at, "{missed:?}");
    // then it goes on as usual, with no other tick of the gap replayed
    assert_consecutive(&after, 500);
    assert!(after.len() >= 3, "the schedule kept firing: {after:?}");
    assert!(q.schedule("s").await.unwrap().is_none());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upserting_an_unchanged_schedule_keeps_its_pending_tick() {
    let env = TestEnv::new().await;
    let q = env.queue("re-upsert").await;
    let s = || Schedule::new("s", "noop", every(Duration::from_secs(1)));
    let first = q.upsert_schedule(s()).await.unwrap().next_run_ms.unwrap();
    // no worker: the tick comes due and waits, as at a deploy landing on a tick
    while now_ms() < first + 150 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = q.upsert_schedule(s()).await.unwrap();
    assert_eq!(again.next_run_ms, Some(first), "the due tick was skipped");
    assert_eq!(
        q.schedule("s").await.unwrap().unwrap().next_run_ms,
        Some(first)
    );
    // a changed definition starts again from its next tick
    let changed = q
        .upsert_schedule(s().data(&json!({"v": 2})).unwrap())
        .await
        .unwrap();
    assert!(changed.next_run_ms.unwrap() > first, "{changed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_over_the_workers_caps_skips_its_own_ticks_only() {
    // a server of its own: its command counts are this test's
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("caps-sched").await;
    q.upsert_schedule(Schedule::new(
        "hb",
        "noop",
        every(Duration::from_millis(200)),
    ))
    .await
    .unwrap();
    q.upsert_schedule(
        Schedule::new("fat", "noop", every(Duration::from_millis(200)))
            .data(&json!("x".repeat(2_000)))
            .unwrap(),
    )
    .await
    .unwrap();
    let seen = small_caps_worker_until(&env, "caps-sched", 6).await;
    // the refused schedule's definition (up to the caps) is not read again every round:
    // one `HSTRLEN` per definition read, a round every 10 ms when it was
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    let sized: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_hstrlen:calls="))
        .and_then(|l| l.split(',').next()?.parse().ok())
        .unwrap_or(0);
    assert!(sized <= 30, "{sized} definitions sized in about a second");
    let ids = seen.ids();
    assert!(ids.iter().all(|id| id.starts_with("sched:hb:")), "{ids:?}");
    // the over-cap schedule keeps its due tick, for workers that take it
    let fat = q.schedule("fat").await.unwrap().unwrap();
    assert!(
        fat.next_run_ms.unwrap() + 400 < now_ms(),
        "this worker used up its ticks: {fat:?}"
    );
}

/// Was: a worker looked at the 200 earliest due ticks only; with 200 or more schedules over
/// its caps due first (their ticks left due for workers that take them), it never saw the
/// schedules behind them, which never fired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_behind_a_page_of_refused_ones_still_fire() {
    let env = TestEnv::new().await;
    let q = env.queue("caps-many").await;
    let fat = json!("x".repeat(2_000));
    for i in 0..250 {
        q.upsert_schedule(
            Schedule::new(
                format!("fat{i:03}"),
                "noop",
                every(Duration::from_millis(200)),
            )
            .data(&fat)
            .unwrap(),
        )
        .await
        .unwrap();
    }
    // last: its ticks sort after theirs
    q.upsert_schedule(Schedule::new(
        "hb",
        "noop",
        every(Duration::from_millis(200)),
    ))
    .await
    .unwrap();
    let seen = small_caps_worker_until(&env, "caps-many", 3).await;
    let ids = seen.ids();
    assert!(ids.iter().all(|id| id.starts_with("sched:hb:")), "{ids:?}");
}

/// Runs a worker of `queue` whose data cap (1,000 bytes) is lower than that of the process
/// that stored its schedules, until it has run `n` jobs (within 5 s); what it ran.
async fn small_caps_worker_until(env: &TestEnv, queue: &str, n: usize) -> Seen {
    let mut config = env.config.clone();
    config.caps.max_data_bytes = 1_000;
    let small = TestEnv {
        redis: Redis::connect(&config).await.unwrap(),
        config,
    };
    let seen = Seen::default();
    let guard = spawn_worker(recording_worker(&small, queue, "noop", &seen));
    eventually(Duration::from_secs(5), "hb to fire", || {
        let s = seen.clone();
        async move { (s.len() >= n).then_some(()) }
    })
    .await;
    guard.stop().await.unwrap();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_upserted_after_its_queue_was_obliterated_elsewhere_is_listed() {
    let env = TestEnv::new().await;
    // a long-lived handle (the dashboard's) and another process's
    let q = env.queue("ob-sched").await;
    let other = env.queue("ob-sched").await;
    q.upsert_schedule(Schedule::new("a", "noop", every(Duration::from_secs(3600))))
        .await
        .unwrap();
    other.obliterate(true).await.unwrap();
    let listed = |env: &TestEnv| {
        let (redis, prefix) = (env.redis.clone(), env.config.prefix().to_string());
        async move { list_queues(&redis, &prefix).await.unwrap() }
    };
    assert!(!listed(&env).await.contains(&"ob-sched".to_string()));
    q.upsert_schedule(Schedule::new("b", "noop", every(Duration::from_secs(3600))))
        .await
        .unwrap();
    assert!(
        listed(&env).await.contains(&"ob-sched".to_string()),
        "a stored schedule whose queue no listing shows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_schedules_of_megabytes_each_never_blocks_redis_for_50ms() {
    let server = RedisServer::start_logging_slow_calls();
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("big-sched").await;
    // definitions at the data cap: 120 MiB in one hash
    let data = json!("x".repeat(1_048_000));
    for i in 0..120 {
        q.upsert_schedule(
            Schedule::new(format!("s{i:03}"), "noop", every(Duration::from_secs(3600)))
                .data(&data)
                .unwrap(),
        )
        .await
        .unwrap();
    }
    let mut conn = env.raw().await;
    reset_slowlog(&mut conn).await;
    let list = q.schedules().await.unwrap();
    assert_eq!(list.len(), 120);
    assert_eq!(list[119].data, data);
    let (_, (us, cmd)) = slowest_call(&mut conn).await;
    assert!(us < 50_000, "a call of {us} µs: {cmd}");
}

/// Was: the listing read every id (`HKEYS`) and the whole due set (`ZRANGE 0 -1`) in one
/// transaction, then the definitions in 4 MiB reads: with 300,000 schedules calls of
/// 119 ms, 111 ms and 60 ms. (A slowlog test: it runs alone, see .config/nextest.toml.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowlog_listing_300000_schedules_never_blocks_redis_for_50ms() {
    let server = RedisServer::start_logging_slow_calls();
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("many-sched").await;
    q.upsert_schedule(Schedule::new("s", "noop", every(Duration::from_secs(3600))))
        .await
        .unwrap();
    // written as upserts store them; the last few with no due tick (ended), so the ids are
    // not all in the due set
    let keys = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "many-sched");
    let def = r#"{"name":"noop","data":null,"repeat":{"every_ms":31536000000}}"#;
    let mut conn = env.raw().await;
    const N: usize = 300_000;
    for part in (0..N).collect::<Vec<_>>().chunks(10_000) {
        let mut pipe = redis::pipe();
        for i in part {
            let id = format!("s{i:06}");
            pipe.cmd("HSET").arg(keys.schedules()).arg(&id).arg(def);
            if *i < N - 5 {
                pipe.cmd("ZADD")
                    .arg(keys.schedules_due())
                    .arg(4_000_000_000_000u64 + *i as u64)
                    .arg(&id);
            }
        }
        let () = pipe.query_async(&mut conn).await.unwrap();
    }
    reset_slowlog(&mut conn).await;
    let list = q.schedules().await.unwrap();
    assert_eq!(list.len(), N + 1);
    // ("s" sorts first)
    assert_eq!(list[1].next_run_ms, Some(4_000_000_000_000));
    assert_eq!(list[N].next_run_ms, None);
    let (_, (us, cmd)) = slowest_call(&mut conn).await;
    assert!(us < 50_000, "a call of {us} µs: {cmd}");
}
