//! Groups: the claim serves a queue's groups in turn (the jobs without a group are one more
//! group), so a big tenant never makes the others wait behind it; per-group concurrency and
//! rate limits hold over all workers; retries, removals, drains and given-back claims keep
//! the groups' counts exact, and an emptied group leaves nothing behind in Redis.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

fn job(group: Option<&str>, i: usize) -> NewJob {
    let mut opts = JobOptions::new();
    if let Some(g) = group {
        opts = opts.group(g);
    }
    NewJob::new("work", &json!({ "g": group.unwrap_or("-"), "i": i }), opts).unwrap()
}

/// Per group: handlers running now, the most at once, and the finish order of all jobs.
#[derive(Default)]
struct Seen {
    running: HashMap<String, usize>,
    most: HashMap<String, usize>,
    order: Vec<String>,
    starts: Vec<(String, Instant)>,
    total: usize,
    most_total: usize,
}

fn recording_worker(
    env: &TestEnv,
    queue: &str,
    concurrency: usize,
    ms: u64,
    seen: Arc<Mutex<Seen>>,
) -> Worker {
    env.worker()
        .queues([queue])
        .concurrency(concurrency)
        .handler("work", move |job: Job<Value>, _ctx: Ctx| {
            let seen = seen.clone();
            async move {
                let g = job.data["g"].as_str().unwrap_or("?").to_string();
                {
                    let mut s = seen.lock().unwrap();
                    let n = {
                        let r = s.running.entry(g.clone()).or_default();
                        *r += 1;
                        *r
                    };
                    let m = s.most.entry(g.clone()).or_default();
                    *m = (*m).max(n);
                    s.total += 1;
                    s.most_total = s.most_total.max(s.total);
                    s.starts.push((g.clone(), Instant::now()));
                }
                if ms > 0 {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                let mut s = seen.lock().unwrap();
                *s.running.get_mut(&g).unwrap() -= 1;
                s.total -= 1;
                s.order.push(g);
                Ok::<_, JobError>(())
            }
        })
        .build()
        .unwrap()
}

/// What Redis holds for a queue's groups (every key of the queue but the permanent ones).
async fn group_keys(env: &TestEnv, q: &str) -> Vec<String> {
    let mut conn = env.raw().await;
    let pattern = format!("{{{}:{q}}}:g*", env.config.prefix());
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_group_does_not_make_small_groups_wait_behind_it() {
    let env = TestEnv::new().await;
    let q = env.queue("fair").await;
    q.add_bulk((0..2_000).map(|i| job(Some("big"), i)).collect())
        .await
        .unwrap();
    let mut small = Vec::new();
    for g in ["s1", "s2", "s3", "s4", "s5"] {
        small.extend((0..20).map(|i| job(Some(g), i)));
    }
    q.add_bulk(small).await.unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let worker = spawn_worker(recording_worker(&env, "fair", 4, 0, seen.clone()));
    wait_finished(&q, 2_100, Duration::from_secs(60)).await;
    worker.stop().await.unwrap();
    {
        let s = seen.lock().unwrap();
        let last_small = s.order.iter().rposition(|g| g != "big").unwrap();
        let big_before = s.order[..last_small].iter().filter(|g| *g == "big").count();
        eprintln!("the last small-group job finished after {big_before} of big's");
        assert!(
            big_before < 300,
            "{big_before} jobs of big finished before the small groups' last"
        );
        assert_eq!(s.order.len(), 2_100);
    }
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.waiting, c.active, c.completed_total),
        (0, 0, 2_100),
        "{c:?}"
    );
    assert_eq!(
        group_keys(&env, "fair").await,
        Vec::<String>::new(),
        "emptied groups leave keys"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_without_a_group_take_turns_with_the_groups() {
    let env = TestEnv::new().await;
    let q = env.queue("mixed").await;
    q.add_bulk((0..300).map(|i| job(None, i)).collect())
        .await
        .unwrap();
    q.add_bulk((0..300).map(|i| job(Some("t1"), i)).collect())
        .await
        .unwrap();
    q.add_bulk((0..10).map(|i| job(Some("t2"), i)).collect())
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let worker = spawn_worker(recording_worker(&env, "mixed", 2, 0, seen.clone()));
    wait_finished(&q, 610, Duration::from_secs(30)).await;
    worker.stop().await.unwrap();
    let s = seen.lock().unwrap();
    // in the first 30 finished: each of the three takes about a third
    let first: Vec<&String> = s.order.iter().take(30).collect();
    for g in ["-", "t1", "t2"] {
        let n = first.iter().filter(|x| x.as_str() == g).count();
        assert!((7..=13).contains(&n), "{g}: {n} of the first 30: {first:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_orders_jobs_within_a_group() {
    let env = TestEnv::new().await;
    let q = env.queue("gprio").await;
    for (i, p) in [0, 5, -5, 5, 10].into_iter().enumerate() {
        q.add(
            "work",
            &json!({"g": "a", "i": i}),
            JobOptions::new().group("a").priority(p),
        )
        .await
        .unwrap();
    }
    let order = Arc::new(Mutex::new(Vec::new()));
    let o = order.clone();
    let worker = env
        .worker()
        .queues(["gprio"])
        .concurrency(1)
        .handler("work", move |job: Job<Value>, _ctx: Ctx| {
            let o = o.clone();
            async move {
                o.lock().unwrap().push(job.data["i"].as_u64().unwrap());
                Ok::<_, JobError>(())
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_finished(&q, 5, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert_eq!(*order.lock().unwrap(), vec![4, 1, 3, 0, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_concurrency_holds_over_three_workers_under_the_queue_cap_and_every_group_progresses()
{
    let env = TestEnv::new().await;
    let q = env.queue("gconc").await;
    q.set_group_limit(None, GroupLimitChange::Concurrency(2))
        .await
        .unwrap();
    // the queue's own cap applies on top: 3 groups at 2 would make 6
    q.set_global_concurrency(5).await.unwrap();
    let mut jobs = Vec::new();
    for i in 0..30 {
        for g in ["a", "b", "c"] {
            jobs.push(job(Some(g), i));
        }
    }
    q.add_bulk(jobs).await.unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let workers: Vec<_> = (0..3)
        .map(|_| spawn_worker(recording_worker(&env, "gconc", 4, 30, seen.clone())))
        .collect();
    // sample the stored counts too while it runs
    let mut most_stored = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while q.counts().await.unwrap().completed_total < 90 {
        assert!(Instant::now() < deadline, "the jobs did not finish");
        for g in q.groups(10).await.unwrap().groups {
            most_stored = most_stored.max(g.active);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for w in workers {
        w.stop().await.unwrap();
    }
    {
        let s = seen.lock().unwrap();
        for g in ["a", "b", "c"] {
            assert_eq!(s.most.get(g), Some(&2), "group {g}: {:?}", s.most);
        }
        assert_eq!(s.most_total, 5, "the queue's global concurrency");
        assert!(most_stored <= 2, "a group had {most_stored} active");
    }
    assert_eq!(
        group_keys(&env, "gconc").await,
        vec![format!("{{{}:gconc}}:glimits", env.config.prefix())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_rate_limit_slows_that_group_only() {
    let env = TestEnv::new().await;
    let q = env.queue("grate").await;
    q.set_group_limit(
        Some("slow"),
        GroupLimitChange::Rate {
            max: 10,
            window: Duration::from_secs(1),
        },
    )
    .await
    .unwrap();
    q.add_bulk((0..50).map(|i| job(Some("slow"), i)).collect())
        .await
        .unwrap();
    q.add_bulk((0..50).map(|i| job(Some("fast"), i)).collect())
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let began = Instant::now();
    let worker = spawn_worker(recording_worker(&env, "grate", 8, 0, seen.clone()));
    let fast_done = eventually(Duration::from_secs(10), "the fast group", || {
        let seen = seen.clone();
        async move {
            let n = seen
                .lock()
                .unwrap()
                .order
                .iter()
                .filter(|g| *g == "fast")
                .count();
            (n == 50).then(|| began.elapsed())
        }
    })
    .await;
    let limited = q.groups(10).await.unwrap();
    wait_finished(&q, 100, Duration::from_secs(20)).await;
    let all_done = began.elapsed();
    worker.stop().await.unwrap();
    eprintln!("fast group done after {fast_done:?}, all after {all_done:?}");
    // (the slow group's 50 starts need over 4 s: the fast one never waits for them)
    assert!(
        fast_done < Duration::from_secs(3),
        "the fast group waited: {fast_done:?}"
    );
    assert!(
        all_done >= Duration::from_secs(4),
        "50 starts at 10/s took {all_done:?}"
    );
    let slow = limited
        .groups
        .iter()
        .find(|g| g.group == "slow")
        .expect("slow listed");
    assert!(
        matches!(slow.limited, Some(GroupLimited::Rate { .. })),
        "{limited:?}"
    );
    // the starts of the slow group: never more than 10 in any second
    let s = seen.lock().unwrap();
    let starts: Vec<Instant> = s
        .starts
        .iter()
        .filter(|(g, _)| g == "slow")
        .map(|(_, t)| *t)
        .collect();
    for (i, t) in starts.iter().enumerate() {
        let in_window = starts[i..]
            .iter()
            .take_while(|u| u.duration_since(*t) < Duration::from_millis(900))
            .count();
        assert!(in_window <= 10, "{in_window} starts within 900 ms");
    }
}

/// Was: shortening the default group rate left the windows already running as long as
/// they were (a group parked for the hour of a `1/1h` default stayed parked after the
/// default became `1/1s`); an override's change cut them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_default_group_rate_cuts_the_windows_already_running() {
    let env = TestEnv::new().await;
    let q = env.queue("grate-short").await;
    let rate = |window| GroupLimitChange::Rate { max: 1, window };
    q.set_group_limit(None, rate(Duration::from_secs(3600)))
        .await
        .unwrap();
    q.add_bulk((0..3).map(|i| job(Some("a"), i)).collect())
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let worker = spawn_worker(recording_worker(&env, "grate-short", 4, 0, seen.clone()));
    wait_finished(&q, 1, Duration::from_secs(5)).await;
    // the group is parked for the rest of its hour
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(q.counts().await.unwrap().completed_total, 1);
    q.set_group_limit(None, rate(Duration::from_millis(500)))
        .await
        .unwrap();
    wait_finished(&q, 3, Duration::from_secs(5)).await;
    worker.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_job_returns_to_its_group_and_removals_keep_counts_exact() {
    let env = TestEnv::new().await;
    let q = env.queue("gretry").await;
    let opts = JobOptions::new()
        .group("t")
        .attempts(2)
        .backoff(Backoff::fixed(Duration::from_millis(10)));
    let id = q.add("flaky", &json!({}), opts).await.unwrap().id;
    let gone = q
        .add("work", &json!({"g": "t"}), JobOptions::new().group("t"))
        .await
        .unwrap()
        .id;
    let other = q
        .add("work", &json!({"g": "u"}), JobOptions::new().group("u"))
        .await
        .unwrap()
        .id;
    let view = q.groups(10).await.unwrap();
    assert_eq!(view.with_waiting, 2, "{view:?}");
    assert_eq!(view.groups[0].group, "t");
    assert_eq!(view.groups[0].waiting, 2);
    let waiting = q.list_jobs(JobState::Waiting, 0, 10).await.unwrap();
    assert_eq!(waiting.len(), 3, "grouped waiting jobs are listed");
    q.remove_job(&gone).await.unwrap();
    assert_eq!(q.counts().await.unwrap().waiting, 2);
    let tries = Arc::new(Mutex::new(0));
    let t = tries.clone();
    let worker = env
        .worker()
        .queues(["gretry"])
        .handler("flaky", move |_job: Job<Value>, _ctx: Ctx| {
            let t = t.clone();
            async move {
                *t.lock().unwrap() += 1;
                if *t.lock().unwrap() == 1 {
                    Err(JobError::new("once"))
                } else {
                    Ok(())
                }
            }
        })
        .handler("work", |_job: Job<Value>, _ctx: Ctx| async {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let done = wait_job_done(&q, &id, Duration::from_secs(10)).await;
    wait_job_done(&q, &other, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(*tries.lock().unwrap(), 2);
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.active), (0, 0), "{c:?}");
    assert_eq!(group_keys(&env, "gretry").await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_deletes_the_jobs_waiting_in_groups() {
    let env = TestEnv::new().await;
    let q = env.queue("gdrain").await;
    q.add_bulk(
        (0..30)
            .map(|i| job(Some(["a", "b", "c"][i % 3]), i))
            .collect(),
    )
    .await
    .unwrap();
    q.add_bulk((0..5).map(|i| job(None, i)).collect())
        .await
        .unwrap();
    assert_eq!(q.drain().await.unwrap(), 35);
    let c = q.counts().await.unwrap();
    assert_eq!(c.waiting, 0, "{c:?}");
    assert_eq!(group_keys(&env, "gdrain").await, Vec::<String>::new());
    // the queue still works
    q.add("work", &json!({"g": "a"}), JobOptions::new().group("a"))
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let worker = spawn_worker(recording_worker(&env, "gdrain", 2, 0, seen));
    wait_finished(&q, 1, Duration::from_secs(10)).await;
    worker.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_group_keys_are_refused_naming_the_value() {
    let env = TestEnv::new().await;
    let q = env.queue("gbad").await;
    for bad in ["", "a b", "x/y", &"g".repeat(129)] {
        let e = q
            .add("work", &json!({}), JobOptions::new().group(bad))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("group") && e.contains(&format!("{bad:?}")),
            "{e}"
        );
        let e = q
            .set_group_limit(Some(bad), GroupLimitChange::Concurrency(1))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("group"), "{e}");
    }
    let e = q
        .set_group_limit(None, GroupLimitChange::Concurrency(0))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("group concurrency: 0"), "{e}");
    assert_eq!(q.counts().await.unwrap().waiting, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_groups_of_one_job_are_all_processed_and_leave_nothing() {
    let env = TestEnv::new().await;
    let q = env.queue("many").await;
    let n = 100_000;
    q.add_bulk(
        (0..n)
            .map(|i| job(Some(&format!("tenant-{i}")), i))
            .collect(),
    )
    .await
    .unwrap();
    assert_eq!(q.groups(5).await.unwrap().with_waiting, n as u64);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let worker = spawn_worker(recording_worker(&env, "many", 50, 0, seen));
    wait_finished(&q, n as u64, Duration::from_secs(120)).await;
    worker.stop().await.unwrap();
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.waiting, c.active, c.completed_total),
        (0, 0, n as u64),
        "{c:?}"
    );
    assert_eq!(group_keys(&env, "many").await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_jobs_wait_in_their_groups() {
    let env = TestEnv::new().await;
    let q = env.queue("gflow").await;
    q.set_group_limit(None, GroupLimitChange::Concurrency(1))
        .await
        .unwrap();
    let flows = FlowProducer::new(&env.redis, env.config.prefix());
    let child = |g: &str, i: usize| {
        FlowJob::new("gflow", "work", &json!({ "g": g, "i": i }))
            .unwrap()
            .opts(JobOptions::new().group(g))
    };
    let tree = flows
        .add(
            FlowJob::new("gflow", "work", &json!({"g": "top"}))
                .unwrap()
                .opts(JobOptions::new().group("top"))
                .children((0..6).map(|i| child(["a", "b"][i % 2], i))),
        )
        .await
        .unwrap();
    let view = q.groups(10).await.unwrap();
    assert_eq!(
        view.with_waiting, 2,
        "the children wait in groups a and b: {view:?}"
    );
    let seen = Arc::new(Mutex::new(Seen::default()));
    let worker = spawn_worker(recording_worker(&env, "gflow", 8, 20, seen.clone()));
    let parent = wait_job_done(&q, &tree.id, Duration::from_secs(10)).await;
    worker.stop().await.unwrap();
    assert_eq!(parent.state, JobState::Completed);
    {
        let s = seen.lock().unwrap();
        assert_eq!(s.order.last().map(String::as_str), Some("top"));
        for g in ["a", "b", "top"] {
            assert_eq!(s.most.get(g), Some(&1), "{g}: {:?}", s.most);
        }
    }
    assert_eq!(
        group_keys(&env, "gflow").await,
        vec![format!("{{{}:gflow}}:glimits", env.config.prefix())]
    );
}
