//! Queue-wide limits, stored in Redis and shared by every worker of a queue: a rate limit
//! on job starts per window and a global concurrency cap. Both hold across several workers,
//! read back as set, refuse invalid values by name, and once cleared let work flow at full
//! speed again at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::internal::keys::QueueKeys;
use queue_core::*;
use serde_json::{json, Value};

/// Handlers running now, and the most ever seen at once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    fn enter(&self) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
    fn now(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }
    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

/// A worker on `queue` whose `job` handler sleeps the job's `ms` while counted in `gauge`
/// and records when it started in `starts`.
fn worker(
    env: &TestEnv,
    queue: &str,
    concurrency: usize,
    gauge: Arc<Gauge>,
    starts: Arc<Mutex<Vec<Instant>>>,
) -> Worker {
    env.worker()
        .queues([queue])
        .concurrency(concurrency)
        .handler("job", move |job: Job<Value>, _ctx: Ctx| {
            let (gauge, starts) = (gauge.clone(), starts.clone());
            async move {
                starts.lock().unwrap().push(Instant::now());
                gauge.enter();
                let ms = job.data["ms"].as_u64().unwrap_or(0);
                if ms > 0 {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                gauge.leave();
                Ok::<_, JobError>(())
            }
        })
        .build()
        .unwrap()
}

/// `n` jobs whose handler sleeps `ms`.
fn jobs(n: usize, ms: u64) -> Vec<NewJob> {
    (0..n)
        .map(|i| NewJob::new("job", &json!({"i": i, "ms": ms}), JobOptions::new()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_10_per_second_spreads_50_jobs_over_4_seconds_across_two_workers() {
    let env = TestEnv::new().await;
    let q = env.queue("rated").await;
    q.set_rate_limit(10, Duration::from_secs(1)).await.unwrap();
    q.add_bulk(jobs(50, 0)).await.unwrap();
    let gauge = Arc::new(Gauge::default());
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let began = Instant::now();
    // two workers with 10 free slots between them: only the shared limit holds them back
    let guards = [
        spawn_worker(worker(&env, "rated", 5, gauge.clone(), starts.clone())),
        spawn_worker(worker(&env, "rated", 5, gauge.clone(), starts.clone())),
    ];
    wait_finished(&q, 50, Duration::from_secs(7)).await;
    let took = began.elapsed();
    for g in guards {
        g.stop().await.unwrap();
    }
    let mut starts = starts.lock().unwrap().clone();
    starts.sort();
    let span = starts[49] - starts[0];
    eprintln!("50 jobs at 10/s over two workers: {took:?} (first to last start {span:?})");
    assert_eq!(starts.len(), 50);
    // five windows of ten: the fifth opens a full four windows after the first
    assert!(took >= Duration::from_secs(4), "{took:?}");
    assert!(took < Duration::from_secs(7), "{took:?}");
    // starts `i` and `i + 20` lie two windows apart, so a whole window lies between them
    // (a little slack: start times are taken here, not in Redis)
    for i in 0..30 {
        let gap = starts[i + 20] - starts[i];
        assert!(
            gap >= Duration::from_millis(950),
            "starts {i} and {} only {gap:?} apart",
            i + 20
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_rate_windows_are_used_as_soon_as_they_reset() {
    let env = TestEnv::new().await;
    let q = env.queue("short").await;
    q.set_rate_limit(5, Duration::from_millis(200))
        .await
        .unwrap();
    q.add_bulk(jobs(25, 0)).await.unwrap();
    let gauge = Arc::new(Gauge::default());
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let began = Instant::now();
    let guard = spawn_worker(worker(&env, "short", 10, gauge, starts));
    wait_finished(&q, 25, Duration::from_secs(4)).await;
    let took = began.elapsed();
    guard.stop().await.unwrap();
    eprintln!("25 jobs at 5 per 200 ms: {took:?}");
    // five windows: the fifth opens 800 ms after the first; a worker that slept through
    // resets (its idle wait is 1 s) would take several seconds
    assert!(took >= Duration::from_millis(800), "{took:?}");
    assert!(took < Duration::from_millis(1_600), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_concurrency_2_over_three_workers_is_never_exceeded() {
    let env = TestEnv::new().await;
    let q = env.queue("capped").await;
    q.set_global_concurrency(2).await.unwrap();
    q.add_bulk(jobs(16, 80)).await.unwrap();
    let gauge = Arc::new(Gauge::default());
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let began = Instant::now();
    let guards: Vec<WorkerGuard> = (0..3)
        .map(|_| spawn_worker(worker(&env, "capped", 5, gauge.clone(), starts.clone())))
        .collect();
    // Redis's own count of active jobs (pending entries) must hold the cap too
    let max_active = Arc::new(AtomicUsize::new(0));
    eventually(Duration::from_secs(6), "16 jobs", || {
        let (q, max_active) = (q.clone(), max_active.clone());
        async move {
            let c = q.counts().await.ok()?;
            max_active.fetch_max(c.active as usize, Ordering::SeqCst);
            (c.completed_total >= 16).then_some(())
        }
    })
    .await;
    let took = began.elapsed();
    for g in guards {
        g.stop().await.unwrap();
    }
    let max_active = max_active.load(Ordering::SeqCst);
    eprintln!(
        "16 x 80 ms, global concurrency 2 over 3 workers of 5: {took:?}, \
         max handlers at once {}, max active in Redis {max_active}",
        gauge.max()
    );
    assert!(gauge.max() <= 2, "{} handlers ran at once", gauge.max());
    assert_eq!(gauge.max(), 2, "never used both global slots");
    assert!(max_active <= 2, "Redis counted {max_active} active");
    // 8 rounds of 80 ms, plus at most a poll per round
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_a_limit_lets_work_flow_at_full_speed_at_once() {
    let env = TestEnv::new().await;
    let q = env.queue("cleared").await;
    let gauge = Arc::new(Gauge::default());
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();

    // rate: one start per minute lets one job through, then holds the rest
    q.set_rate_limit(1, Duration::from_secs(60)).await.unwrap();
    q.add_bulk(jobs(20, 0)).await.unwrap();
    let guard = spawn_worker(worker(&env, "cleared", 5, gauge.clone(), starts.clone()));
    wait_finished(&q, 1, Duration::from_secs(3)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        starts.lock().unwrap().len(),
        1,
        "the rate limit let more through"
    );
    let cleared = Instant::now();
    q.clear_rate_limit().await.unwrap();
    // the worker is woken, not left to its idle timeout (1 s)
    wait_finished(&q, 20, Duration::from_millis(600)).await;
    eprintln!("rate limit cleared: 19 jobs in {:?}", cleared.elapsed());

    // global concurrency: one at a time, then all five of the worker's slots
    q.set_global_concurrency(1).await.unwrap();
    q.add_bulk(jobs(10, 2_000)).await.unwrap();
    let g = gauge.clone();
    eventually(Duration::from_secs(3), "a job running", || {
        let g = g.clone();
        async move { (g.now() == 1).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(gauge.now(), 1, "global concurrency 1 let more run");
    q.clear_global_concurrency().await.unwrap();
    // the sleeps take 2 s each, so the next ones can only start because of the clear
    let g = gauge.clone();
    eventually(Duration::from_millis(600), "5 jobs running", || {
        let g = g.clone();
        async move { (g.now() == 5).then_some(()) }
    })
    .await;
    assert_eq!(q.limits().await.unwrap(), Limits::default());
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_global_concurrency_lets_more_run_at_once() {
    let env = TestEnv::new().await;
    let q = env.queue("raised").await;
    q.set_global_concurrency(1).await.unwrap();
    q.add_bulk(jobs(12, 2_000)).await.unwrap();
    let gauge = Arc::new(Gauge::default());
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let guard = spawn_worker(worker(&env, "raised", 8, gauge.clone(), starts));
    let g = gauge.clone();
    eventually(Duration::from_secs(3), "a job running", || {
        let g = g.clone();
        async move { (g.now() == 1).then_some(()) }
    })
    .await;
    q.set_global_concurrency(3).await.unwrap();
    let g = gauge.clone();
    eventually(Duration::from_millis(600), "3 jobs running", || {
        let g = g.clone();
        async move { (g.now() == 3).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(gauge.max(), 3, "ran more than the raised cap");
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_read_back_as_set_and_live_in_the_meta_hash() {
    let env = TestEnv::new().await;
    let q = env.queue("settings").await;
    let none = q.limits().await.unwrap();
    assert_eq!(none, Limits::default());
    assert!(none.is_unlimited());

    q.set_rate_limit(10, Duration::from_secs(1)).await.unwrap();
    q.set_global_concurrency(3).await.unwrap();
    let l = q.limits().await.unwrap();
    assert_eq!(
        l,
        Limits {
            rate_max: Some(10),
            rate_window_ms: Some(1_000),
            concurrency: Some(3),
            corrupt: None,
        }
    );
    assert_eq!(l.rate_window(), Some(Duration::from_secs(1)));
    assert_eq!(
        serde_json::to_value(&l).unwrap(),
        json!({"rate_max": 10, "rate_window_ms": 1000, "concurrency": 3})
    );
    // stored in Redis, where every worker reads them
    let meta = QueueKeys::new(env.config.prefix(), "settings").meta();
    let mut raw = env.raw().await;
    let stored: (String, String, String) = redis::cmd("HMGET")
        .arg(&meta)
        .arg("rate_max")
        .arg("rate_ms")
        .arg("conc")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(stored, ("10".into(), "1000".into(), "3".into()));
    // another handle on the queue sees the same
    let other = Redis::connect(&env.config).await.unwrap();
    let other = Queue::open(&other, env.config.prefix(), "settings")
        .await
        .unwrap();
    assert_eq!(other.limits().await.unwrap(), l);

    // setting again replaces; clearing one leaves the other
    q.set_rate_limit(500, Duration::from_millis(250))
        .await
        .unwrap();
    q.clear_global_concurrency().await.unwrap();
    assert_eq!(
        q.limits().await.unwrap(),
        Limits {
            rate_max: Some(500),
            rate_window_ms: Some(250),
            concurrency: None,
            corrupt: None,
        }
    );
    q.clear_rate_limit().await.unwrap();
    assert_eq!(q.limits().await.unwrap(), Limits::default());
    // clearing what is not set is fine
    q.clear_rate_limit().await.unwrap();
    q.clear_global_concurrency().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_limits_are_refused_naming_the_value() {
    let env = TestEnv::new().await;
    let q = env.queue("invalid").await;
    let cases = [
        (
            q.set_rate_limit(0, Duration::from_secs(1)).await,
            "rate limit max: 0",
        ),
        (q.set_rate_limit(10, Duration::ZERO).await, "window: 0ms"),
        (
            q.set_rate_limit(10, Duration::from_micros(500)).await,
            "window: 500µs",
        ),
        (q.set_global_concurrency(0).await, "concurrency: 0"),
    ];
    for (result, names) in cases {
        let e = result.expect_err(names);
        assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
        assert!(e.to_string().contains(names), "{e} should name {names:?}");
    }
    // nothing was stored
    assert_eq!(q.limits().await.unwrap(), Limits::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_worker_waits_for_the_window_instead_of_spinning() {
    // a private server, so its command counts are this test's alone
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("spin").await;
    q.set_rate_limit(2, Duration::from_secs(30)).await.unwrap();
    q.add_bulk(jobs(10, 0)).await.unwrap();
    let gauge = Arc::new(Gauge::default());
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let guard = spawn_worker(worker(&env, "spin", 5, gauge, starts.clone()));
    wait_finished(&q, 2, Duration::from_secs(3)).await;
    let mut raw = env.raw().await;
    let before = script_calls(&mut raw).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let calls = script_calls(&mut raw).await - before;
    guard.stop().await.unwrap();
    eprintln!("script calls in 1 s while rate-limited: {calls}");
    assert_eq!(starts.lock().unwrap().len(), 2);
    // waiting means about one fetch per idle period; spinning would be thousands
    assert!(calls < 30, "{calls} script calls in 1 s while rate-limited");
}

/// Stored limits that are not whole numbers from 1 (a corrupt record) are read as the
/// claim reads them, ignored (a window read as 1 s), and the read says which field and
/// what it holds: `jobq limits`, the API and the page used to fail ("unexpected reply").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_stored_limits_are_shown_as_the_claim_reads_them_never_fail_the_read() {
    let env = TestEnv::new().await;
    let q = env.queue("bad-limits").await;
    q.set_rate_limit(10, Duration::from_secs(5)).await.unwrap();
    q.set_global_concurrency(3).await.unwrap();
    let keys = QueueKeys::new(env.config.prefix(), "bad-limits");
    let mut raw = env.raw().await;
    let _: () = redis::cmd("HSET")
        .arg(keys.meta())
        .arg("rate_ms")
        .arg("-5")
        .arg("conc")
        .arg("abc")
        .query_async(&mut raw)
        .await
        .unwrap();
    let l = q.limits().await.unwrap();
    assert_eq!(
        (l.rate_max, l.rate_window_ms, l.concurrency),
        (Some(10), Some(1_000), None)
    );
    let corrupt = l.corrupt.unwrap_or_default();
    assert!(
        corrupt.contains("field rate_ms is \"-5\"") && corrupt.contains("field conc is \"abc\""),
        "{corrupt}"
    );
    // setting the limit writes it again
    q.set_global_concurrency(4).await.unwrap();
    q.set_rate_limit(10, Duration::from_secs(5)).await.unwrap();
    let l = q.limits().await.unwrap();
    assert_eq!((l.rate_window_ms, l.concurrency), (Some(5_000), Some(4)));
    assert!(l.corrupt.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_group_override_is_named_and_leaves_its_group_the_default() {
    let env = TestEnv::new().await;
    let q = env.queue("bad-glimits").await;
    q.set_group_limit(None, GroupLimitChange::Concurrency(1))
        .await
        .unwrap();
    q.set_group_limit(Some("vip"), GroupLimitChange::Concurrency(5))
        .await
        .unwrap();
    let keys = QueueKeys::new(env.config.prefix(), "bad-glimits");
    let mut raw = env.raw().await;
    // the override of one kind corrupt, of the other one a half-written rate
    let _: () = redis::cmd("HSET")
        .arg(keys.group_limits())
        .arg("c:vip")
        .arg("abc")
        .arg("r:vip")
        .arg("10/")
        .query_async(&mut raw)
        .await
        .unwrap();
    let view = q.group_limits().await.unwrap();
    assert_eq!(view.effective("vip").concurrency, Some(1), "{view:?}");
    assert!(view.overrides.is_empty(), "{view:?}");
    let said = view.corrupt.join("; ");
    assert!(
        said.contains("field \"c:vip\" is \"abc\", not a limit: ignored, the default applies")
            && said.contains("field \"r:vip\" is \"10/\""),
        "{said}"
    );
    // the claim reads it the same way: vip's jobs run one at a time, as the default says
    let jobs = (0..4)
        .map(|i| {
            NewJob::new(
                "job",
                &json!({"i": i, "ms": 150}),
                JobOptions::new().group("vip"),
            )
            .unwrap()
        })
        .collect();
    add_all(&q, jobs).await;
    let gauge = Arc::new(Gauge::default());
    let w = spawn_worker(worker(
        &env,
        "bad-glimits",
        4,
        gauge.clone(),
        Arc::default(),
    ));
    wait_finished(&q, 4, Duration::from_secs(10)).await;
    w.stop().await.unwrap();
    assert_eq!(
        gauge.max(),
        1,
        "the corrupt override lifted the default cap"
    );
    // setting the override writes it again
    q.set_group_limit(Some("vip"), GroupLimitChange::Concurrency(5))
        .await
        .unwrap();
    let view = q.group_limits().await.unwrap();
    assert_eq!(view.effective("vip").concurrency, Some(5));
    assert_eq!(view.corrupt.len(), 1, "the rate is still corrupt: {view:?}");
}
