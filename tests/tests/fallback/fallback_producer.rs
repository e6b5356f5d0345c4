//! The producer fallback through the library (`queue_core::Producer`): the circuit breaker
//! (one timeout per outage, then adds fall back at once; closed again when Redis answers),
//! a producer replaying its own spool file when Redis is back, an idle producer freeing
//! its spool file for other replayers once Redis is back, and inline runs (results,
//! errors, panics, timeouts, the Redis-backed parts of `Ctx`).
//!
//! Each test starts its own `redis-server` and stops or freezes it.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::producer::BreakerState;
use queue_core::*;
use serde_json::{json, Value};

/// A redis-server frozen with SIGSTOP: connections are accepted by the kernel but never
/// answered (a hung server, the case only a timeout detects). Thawed when dropped.
struct Frozen(String);

impl Frozen {
    fn freeze(server: &RedisServer) -> Frozen {
        let pid = std::fs::read_to_string(server.dir.join("redis.pid"))
            .expect("redis pid file")
            .trim()
            .to_string();
        signal(&pid, "STOP");
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(&self.0, "CONT");
    }
}

fn signal(pid: &str, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid} failed");
}

fn config(url: &str, fallback: Fallback, spool: &TempDir) -> Config {
    let mut c = Config::new(url)
        .and_then(|c| c.with_prefix(fresh_prefix()))
        .unwrap();
    c.fallback = fallback;
    c.spool_dir = spool.path().to_path_buf();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_second_add_to_a_hung_redis_returns_within_50ms_and_closes_when_it_answers() {
    let server = RedisServer::start(&[]);
    let spool = TempDir::new("breaker");
    let producer = Producer::builder(config(&server.url(), Fallback::Error, &spool))
        .cooldown(Duration::from_millis(500))
        .build();
    let frozen = Frozen::freeze(&server);

    // the first add waits for the timeout (2 s): a hung server only shows by its silence
    let t = Instant::now();
    let err = producer
        .add("q", "diag.echo", &json!({"n": 1}), JobOptions::new())
        .await
        .unwrap_err();
    let first = t.elapsed();
    assert!(matches!(err, Error::RedisDown { .. }), "{err:?}");
    assert!(err.to_string().contains(&server.addr()), "{err}");
    assert!(
        first >= Duration::from_millis(1_500) && first < Duration::from_secs(5),
        "first add took {first:?}: expected about the 2 s timeout"
    );
    assert!(matches!(producer.breaker(), BreakerState::Open { .. }));

    // the breaker is open: the next add does not wait on Redis
    let t = Instant::now();
    let err = producer
        .add("q", "diag.echo", &json!({"n": 2}), JobOptions::new())
        .await
        .unwrap_err();
    let second = t.elapsed();
    eprintln!("hung Redis: first add {first:?}, second add {second:?}");
    assert!(matches!(err, Error::RedisDown { .. }), "{err:?}");
    assert!(err.to_string().contains(&server.addr()), "{err}");
    assert!(
        second < Duration::from_millis(50),
        "second add took {second:?}: the breaker did not open"
    );

    // Redis answers again: after the cool-down a probe gets through and closes the breaker
    drop(frozen);
    let back = Instant::now();
    let added = eventually(Duration::from_secs(15), "an add to be stored again", || {
        let p = producer.clone();
        async move {
            match p
                .add("q", "diag.echo", &json!({"n": 3}), JobOptions::new())
                .await
            {
                Ok(Produced::Stored(a)) => Some(a),
                _ => None,
            }
        }
    })
    .await;
    eprintln!("stored again {:?} after Redis thawed", back.elapsed());
    assert_eq!(producer.breaker(), BreakerState::Closed);
    let q = producer.queue("q").await.unwrap();
    let job = q.job(&added.id).await.unwrap();
    assert_eq!(job.data, json!({"n": 3}));
    // errors of the `error` fallback stored nothing
    assert_eq!(q.counts().await.unwrap().waiting, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_producer_holds_its_file_and_replays_it_itself_once_redis_is_back() {
    let mut server = RedisServer::start(&[]);
    let spool = TempDir::new("own-spool");
    let producer = Producer::builder(config(&server.url(), Fallback::Spool, &spool))
        .cooldown(Duration::from_millis(300))
        .build();
    server.stop();

    let mut spooled = BTreeSet::new();
    let mut file = None;
    for n in 0..5 {
        let t = Instant::now();
        let p = producer
            .add("q", "diag.echo", &json!({ "n": n }), JobOptions::new())
            .await
            .unwrap();
        let took = t.elapsed();
        let Produced::Spooled {
            id,
            file: f,
            reason,
        } = p
        else {
            panic!("not spooled: {p:?}");
        };
        assert!(reason.contains(&server.addr()), "{reason}");
        if n > 0 {
            // breaker open: no connect attempt (2 s), only the spool's write and sync,
            // which a busy disk may make slow
            assert!(took < Duration::from_secs(2), "add {n} took {took:?}");
        }
        assert!(
            file.is_none() || file.as_ref() == Some(&f),
            "one file per producer"
        );
        file = Some(f);
        spooled.insert(id);
    }
    let file = file.unwrap();
    let lines = std::fs::read_to_string(&file).unwrap();
    // the header line (which Redis the jobs are for), then the jobs
    assert_eq!(lines.lines().count(), 1 + 5);
    // a live producer's file is locked: replayers leave it alone
    let other = std::fs::File::open(&file).unwrap();
    assert!(matches!(
        other.try_lock(),
        Err(std::fs::TryLockError::WouldBlock)
    ));
    drop(other);

    server.restart();
    // after the cool-down the breaker lets a probe through: it reconnects, which starts
    // the replay of the producer's own file (adds meanwhile would be spooled: wait with
    // a read)
    let q = eventually(
        Duration::from_secs(15),
        "Redis to be reachable again",
        || {
            let p = producer.clone();
            async move { p.queue("q").await.ok() }
        },
    )
    .await;
    assert_eq!(producer.breaker(), BreakerState::Closed);
    let added = producer
        .add("q", "diag.echo", &json!({"n": 99}), JobOptions::new())
        .await
        .unwrap();
    assert_eq!(added.mode(), "stored");
    eventually(
        Duration::from_secs(15),
        "the spooled jobs to be replayed",
        || {
            let q = q.clone();
            async move { (q.counts().await.ok()?.waiting == 6).then_some(()) }
        },
    )
    .await;
    let waiting: BTreeSet<String> = q
        .list_jobs(JobState::Waiting, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .filter(|id| id != added.id())
        .collect();
    assert_eq!(waiting, spooled);
    eventually(Duration::from_secs(5), "the spool file to be gone", || {
        let gone = !file.exists();
        async move { gone.then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_idle_producer_frees_its_file_once_redis_is_back_for_another_replayer() {
    let mut server = RedisServer::start(&[]);
    let spool = TempDir::new("idle-spool");
    let config = config(&server.url(), Fallback::Spool, &spool);
    // no replay of its own: only another replayer can store the jobs
    let producer = Producer::builder(config.clone())
        .cooldown(Duration::from_millis(300))
        .auto_replay(false)
        .build();
    server.stop();
    let mut spooled = BTreeSet::new();
    for n in 0..3 {
        let p = producer
            .add("q", "diag.echo", &json!({ "n": n }), JobOptions::new())
            .await
            .unwrap();
        assert_eq!(p.mode(), "spooled", "{p:?}");
        spooled.insert(p.id().to_string());
    }
    let file = spool.files_ending(".jsonl").pop().unwrap();

    // Redis is back; the producer does nothing more, yet a replayer (here the one a
    // worker runs every few seconds) gets its file within a few seconds
    server.restart();
    let back = Instant::now();
    let redis = Redis::connect(&config).await.unwrap();
    let report = eventually(
        Duration::from_secs(5),
        "the idle producer's spool file to be replayed",
        || {
            let (redis, dir) = (redis.clone(), spool.path().to_path_buf());
            async move {
                let r = producer::replay_dir(&redis, &dir, &Default::default(), None)
                    .await
                    .ok()?;
                (r.files == 1).then_some(r)
            }
        },
    )
    .await;
    eprintln!(
        "replayed {:?} after Redis came back: {report:?}",
        back.elapsed()
    );
    assert_eq!(report.stored, 3, "{report:?}");
    assert!(!file.exists());
    assert_eq!(producer.breaker(), BreakerState::Closed);
    let q = Queue::open(&redis, config.prefix(), "q").await.unwrap();
    let waiting: BTreeSet<String> = q
        .list_jobs(JobState::Waiting, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(waiting, spooled);

    // the next outage starts a new file
    server.stop();
    let p = producer
        .add("q", "diag.echo", &json!({"n": 9}), JobOptions::new())
        .await
        .unwrap();
    let Produced::Spooled { file: next, .. } = p else {
        panic!("{p:?}")
    };
    assert_ne!(next, file);
}

/// Handlers for the inline tests: the built-in diag ones plus a few that use `Ctx`.
fn handlers() -> Handlers {
    Worker::builder(Config::default())
        .handler("diag.echo", |job: Job<Value>, _ctx: Ctx| async move {
            Ok::<_, JobError>(job.data)
        })
        .handler("ctx.report", |job: Job<Value>, ctx: Ctx| async move {
            // progress and logs need no Redis inline
            ctx.progress(50).await?;
            ctx.log("halfway").await?;
            Ok::<_, JobError>(
                json!({"id": ctx.job_id(), "attempt": ctx.attempt(), "data": job.data}),
            )
        })
        .handler("ctx.cache", |_job: Job<Value>, ctx: Ctx| async move {
            let cache = ctx.cache("ns");
            cache.set("k", &1, Duration::from_secs(1)).await?;
            Ok::<_, JobError>(())
        })
        .handler("ctx.lock", |_job: Job<Value>, ctx: Ctx| async move {
            let _ = ctx.lock();
            Ok::<_, JobError>(())
        })
        .handler("fails", |_job: Job<Value>, _ctx: Ctx| async move {
            Err::<(), _>(JobError::fatal("no such account 42"))
        })
        .handler("panics", |_job: Job<Value>, _ctx: Ctx| async move {
            if true {
                panic!("boom at 7");
            }
            Ok::<_, JobError>(())
        })
        .handler("sleeps", |_job: Job<Value>, _ctx: Ctx| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, JobError>(())
        })
        .handler("typed", |job: Job<Vec<u32>>, _ctx: Ctx| async move {
            Ok::<_, JobError>(job.data.iter().sum::<u32>())
        })
        .handlers()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_fallback_runs_handlers_in_process_and_turns_failures_into_errors() {
    install_panic_hook();
    // Redis not configured: every add runs inline, with no server anywhere
    let spool = TempDir::new("inline");
    let mut config = Config::default();
    config.spool_dir = spool.path().to_path_buf();
    assert_eq!(config.fallback, Fallback::Inline);
    let producer = Producer::builder(config).handlers(handlers()).build();
    let add = |name: &'static str, data: Value, opts: JobOptions| {
        let p = producer.clone();
        async move { p.add("q", name, &data, opts).await }
    };

    let p = add("diag.echo", json!({"hello": "inline"}), JobOptions::new())
        .await
        .unwrap();
    let Produced::Inline { result, reason, .. } = &p else {
        panic!("{p:?}")
    };
    assert_eq!(result, &json!({"hello": "inline"}));
    assert!(reason.contains("not configured"), "{reason}");
    assert_eq!(p.mode(), "inline");

    let p = add(
        "ctx.report",
        json!([1]),
        JobOptions::new().job_id("given-id"),
    )
    .await
    .unwrap();
    let Produced::Inline { id, result, .. } = p else {
        panic!()
    };
    assert_eq!(id, "given-id");
    assert_eq!(result, json!({"id": "given-id", "attempt": 1, "data": [1]}));
    let p = add("typed", json!([1, 2, 3]), JobOptions::new())
        .await
        .unwrap();
    assert!(matches!(p, Produced::Inline { result, .. } if result == json!(6)));

    let message = |e: Error| match e {
        Error::Inline { message, .. } => message,
        other => panic!("not an inline failure: {other:?}"),
    };
    let e = add("ctx.cache", json!(null), JobOptions::new())
        .await
        .unwrap_err();
    assert_eq!(message(e), "Redis is down: cache is not available inline");
    let e = add("ctx.lock", json!(null), JobOptions::new())
        .await
        .unwrap_err();
    assert_eq!(message(e), "Redis is down: lock is not available inline");
    let e = add("fails", json!(null), JobOptions::new())
        .await
        .unwrap_err();
    assert_eq!(message(e), "no such account 42");
    let e = add("panics", json!(null), JobOptions::new())
        .await
        .unwrap_err();
    assert_eq!(message(e), "handler panicked: boom at 7");
    let t = Instant::now();
    let e = add(
        "sleeps",
        json!(null),
        JobOptions::new().timeout(Duration::from_millis(200)),
    )
    .await
    .unwrap_err();
    assert_eq!(message(e), "timed out after 200ms");
    assert!(t.elapsed() < Duration::from_secs(5));
    let e = add("typed", json!("not a list"), JobOptions::new())
        .await
        .unwrap_err();
    assert!(message(e).contains("cannot be decoded"));
    let e = add("nobody.handles", json!(null), JobOptions::new())
        .await
        .unwrap_err();
    assert_eq!(message(e), "no handler registered for 'nobody.handles'");
    // bad input is refused whatever Redis does
    let e = producer
        .add("bad queue!", "diag.echo", &json!(null), JobOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidQueueName(_)), "{e:?}");
    assert!(spool.files_ending(".jsonl").is_empty());

    // without handlers, inline says what is missing
    let mut config = Config::default();
    config.spool_dir = spool.path().to_path_buf();
    let bare = Producer::new(config);
    let e = bare
        .add("q", "diag.echo", &json!(null), JobOptions::new())
        .await
        .unwrap_err();
    assert!(message(e).contains("no handlers"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_run_after_a_lost_reply_has_the_id_redis_stored_the_job_under() {
    let server = RedisServer::start(&[]);
    let proxy = Proxy::start(&server.addr()).await;
    let spool = TempDir::new("inline-lost-reply");
    let mut config = Config::new(proxy.url())
        .and_then(|c| c.with_prefix(fresh_prefix()))
        .unwrap();
    config.spool_dir = spool.path().to_path_buf();
    assert_eq!(config.fallback, Fallback::Inline);
    let prefix = config.prefix().to_string();
    let producer = Producer::builder(config).handlers(handlers()).build();
    // (the add's script loaded first: a lost NOSCRIPT reply would not reach Redis at all)
    let first = producer
        .add("q", "diag.echo", &json!(0), JobOptions::new())
        .await
        .unwrap();
    assert_eq!(first.mode(), "stored");
    // Redis stores the job, its reply is lost: the add times out and runs the job inline
    proxy.drop_replies(true);
    let p = producer
        .add("q", "ctx.report", &json!([1]), JobOptions::new())
        .await
        .unwrap();
    proxy.drop_replies(false);
    let Produced::Inline { id, result, .. } = &p else {
        panic!("{p:?}")
    };
    assert_eq!(result["id"], json!(id));
    // the job Redis holds is that one: the same id, for a handler to tell it ran already
    let env = TestEnv::on_prefix(&server.url(), &prefix).await;
    let stored = env.queue("q").await.job(id).await.unwrap();
    assert_eq!(
        (stored.name.as_str(), &stored.data),
        ("ctx.report", &json!([1]))
    );
}
