//! Guarantee 8: bad data never spreads. A job whose stored fields are corrupt or oversized
//! fails alone, with a reason naming the job and the field; the other jobs of its claim run,
//! listings show them all, counters stay exact, and no script call blocks Redis for 50 ms.
//! Adds over the size caps are refused, naming the size, and store nothing.

use std::time::Duration;

use jobq_tests::*;
use queue_core::internal::keys::QueueKeys;
use queue_core::*;
use serde_json::{json, Value};

/// A worker on `queue` that completes `work` jobs by echoing their data.
fn echo_worker(env: &TestEnv, queue: &str, concurrency: usize) -> Worker {
    env.worker()
        .queues([queue])
        .concurrency(concurrency)
        .handler("work", |j: Job<Value>, _c: Ctx| async move {
            Ok::<_, JobError>(j.data)
        })
        .build()
        .unwrap()
}

/// Sets (or with `None`, deletes) one field of a job's hash behind jobq's back.
async fn corrupt(env: &TestEnv, queue: &str, id: &str, field: &str, value: Option<&[u8]>) {
    let key = QueueKeys::new(env.config.prefix(), queue).job(id);
    let mut raw = env.raw().await;
    let cmd = match value {
        Some(v) => {
            let mut c = redis::cmd("HSET");
            c.arg(&key).arg(field).arg(v);
            c
        }
        None => {
            let mut c = redis::cmd("HDEL");
            c.arg(&key).arg(field);
            c
        }
    };
    let _: i64 = cmd.query_async(&mut raw).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_8_a_corrupt_field_fails_its_job_alone_naming_job_and_field() {
    // (field, value or None to delete it, what the failure must say); every job carries
    // 300 bytes of data, stored in pieces (`data:n` = 5)
    let cases: Cases = &[
        ("att", Some(b"abc"), "field att"),
        ("att", Some(b"-3"), "field att"),
        ("data:n", Some(b"abc"), "field data:n"),
        ("data:n", Some(b"99999999"), "data"),
        ("data:n", Some(b"40"), "field data:n"),
        // fewer pieces than stored, all in the claim's hands: the value read is cut short
        ("data:n", Some(b"2"), "data"),
        ("data:n", Some(b"3"), "data"),
        ("name", None, "field name"),
        // a name no add takes: failed naming its size, never carried whole into the reason
        ("name", Some(&[b'a'; 100_000]), "field name is 100000 bytes"),
        ("data", None, "field data"),
        ("opts", Some(b"{not json"), "field opts"),
        ("opts:n", Some(b"500"), "field opts:n"),
        ("sid", Some(b"junk"), "field sid"),
        ("sid", None, "field sid"),
        ("data:2", Some(b"\xff\xfe not UTF-8"), "data"),
    ];
    fails_alone("bad", cases, 300).await;
}

/// (field, value or None to delete it, what the failure must say)
type Cases<'a> = &'a [(&'a str, Option<&'a [u8]>, &'a str)];

/// Handled: the claim reads the usual job (first attempt, data whole or in two pieces,
/// options whole) without the checks' calls: a corrupt field of such a job is still found,
/// and fails it alone naming the job and the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_8_a_corrupt_field_of_a_short_job_fails_it_alone_too() {
    let big = vec![b'x'; 2 << 20];
    let cases: Cases = &[
        ("att", Some(b"abc"), "field att"),
        ("att", Some(b"7.5"), "field att"),
        ("name", None, "field name"),
        ("name", Some(b""), "field name"),
        ("name", Some(&[b'a'; 300]), "field name is 300 bytes"),
        ("data", None, "field data"),
        (
            "opts",
            Some(big.as_slice()),
            "field opts is 2097152 bytes, over the cap",
        ),
        ("opts", Some(b"{not json"), "field opts"),
        ("sid", Some(b"junk"), "field sid"),
    ];
    // 80 bytes of padding: data in two pieces (`data:n` = 2); 10: data whole
    fails_alone("bad2", cases, 80).await;
    fails_alone("bad1", cases, 10).await;
    let whole: Cases = &[(
        "data",
        Some(big.as_slice()),
        "field data is 2097152 bytes, over the cap",
    )];
    fails_alone("bad1w", whole, 10).await;
    let pieces: Cases = &[
        ("data:n", Some(b"abc"), "field data:n"),
        ("data:n", Some(b"40"), "field data:n"),
        ("data:2", None, "data"),
        ("data:2", Some(b"\xff\xfe not UTF-8"), "data"),
    ];
    fails_alone("bad2p", pieces, 80).await;
}

/// Ten jobs with `pad` bytes of padding in their data; the fifth gets each case's corrupt
/// field in turn (a queue each): it alone fails, fatally, naming itself and the field.
async fn fails_alone(prefix: &str, cases: Cases<'_>, pad: usize) {
    for (n, (field, value, says)) in cases.iter().enumerate() {
        let env = TestEnv::new().await;
        let queue = format!("{prefix}-{n}");
        let q = env.queue(&queue).await;
        let mut ids = Vec::new();
        for i in 0..10 {
            // given ids: each job keeps a record (a hash) from its add, the fields corrupted
            // here; a plain job would be lean, its lane entry alone (engine_lean_hostile.rs
            // corrupts those)
            let added = q
                .add(
                    "work",
                    &json!({"i": i, "pad": "x".repeat(pad)}),
                    JobOptions::new().attempts(3).job_id(format!("j{i}")),
                )
                .await
                .unwrap();
            ids.push(added.id);
        }
        let bad = ids[4].clone();
        corrupt(&env, &queue, &bad, field, *value).await;
        let guard = spawn_worker(echo_worker(&env, &queue, 4));
        let c = wait_finished(&q, 10, Duration::from_secs(10)).await;
        let what = format!(
            "{field} = {:?} (pad {pad})",
            value.map(|v| String::from_utf8_lossy(&v[..v.len().min(40)]).into_owned())
        );
        assert_eq!(
            (
                c.completed_total,
                c.failed_total,
                c.waiting,
                c.active,
                c.delayed
            ),
            (9, 1, 0, 0, 0),
            "{what}: {c:?}"
        );
        let failed = q.job(&bad).await.unwrap();
        assert_eq!(failed.state, JobState::Failed, "{what}: {failed:?}");
        let reason = failed.failed_reason.clone().unwrap_or_default();
        assert!(
            reason.contains(&bad) && reason.contains(says),
            "{what}: the reason must name the job and {says:?}: {reason}"
        );
        assert!(
            reason.len() < 1_000,
            "{field}: a reason of {} bytes",
            reason.len()
        );
        // fatal: not retried, though attempts were left
        assert_eq!(failed.attempts_made, 1, "{what}: {failed:?}");
        for id in ids.iter().filter(|id| **id != bad) {
            let info = q.job(id).await.unwrap();
            assert_eq!(
                (info.state, info.attempts_made),
                (JobState::Completed, 1),
                "{what}: {info:?}"
            );
        }
        // listings show every job, the bad one included
        let done = q.list_jobs(JobState::Completed, 0, 100).await.unwrap();
        let failed_list = q.list_jobs(JobState::Failed, 0, 100).await.unwrap();
        assert_eq!((done.len(), failed_list.len()), (9, 1), "{what}");
        guard.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_8_a_delayed_job_with_a_corrupt_priority_fails_alone_and_the_queue_runs() {
    let env = TestEnv::new().await;
    let q = env.queue("bad-prio").await;
    let delayed = q
        .add(
            "work",
            &json!({}),
            JobOptions::new().delay(Duration::from_millis(200)),
        )
        .await
        .unwrap();
    corrupt(&env, "bad-prio", &delayed.id, "prio", Some(b"1e9")).await;
    let mut others = Vec::new();
    for i in 0..5 {
        others.push(
            q.add("work", &json!({ "i": i }), JobOptions::new())
                .await
                .unwrap()
                .id,
        );
    }
    let guard = spawn_worker(echo_worker(&env, "bad-prio", 2));
    let c = wait_finished(&q, 6, Duration::from_secs(10)).await;
    assert_eq!((c.completed_total, c.failed_total), (5, 1), "{c:?}");
    let info = q.job(&delayed.id).await.unwrap();
    let reason = info.failed_reason.unwrap_or_default();
    assert!(
        reason.contains(&delayed.id) && reason.contains("field prio"),
        "{reason}"
    );
    // the queue keeps working after it
    let later = q
        .add("work", &json!({"later": 1}), JobOptions::new())
        .await
        .unwrap();
    let info = wait_job_done(&q, &later.id, Duration::from_secs(5)).await;
    assert_eq!(info.state, JobState::Completed);
    guard.stop().await.unwrap();
}

#[tokio::test]
async fn guarantee_8_listings_mark_a_job_with_garbage_options_and_show_the_others() {
    let env = TestEnv::new().await;
    let q = env.queue("bad-list").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        // given ids: records whose hash fields are corrupted below (a lean job's garbage
        // options: engine_lean_hostile.rs)
        let opts = JobOptions::new().attempts(2).job_id(format!("j{i}"));
        let added = q.add("work", &json!({ "i": i }), opts).await.unwrap();
        ids.push(added.id);
    }
    corrupt(&env, "bad-list", &ids[2], "opts", Some(b"\x01garbage")).await;
    corrupt(&env, "bad-list", &ids[3], "att", Some(b"many")).await;
    let listed = q.list_jobs(JobState::Waiting, 0, 10).await.unwrap();
    assert_eq!(listed.len(), 5, "{listed:?}");
    let marked: Vec<&str> = listed
        .iter()
        .filter(|j| j.corrupt.is_some())
        .map(|j| j.id.as_str())
        .collect();
    assert_eq!(marked, vec![ids[2].as_str(), ids[3].as_str()]);
    let one = q.job(&ids[2]).await.unwrap();
    assert!(
        one.corrupt.as_deref().unwrap_or("").contains("field opts"),
        "{one:?}"
    );
}

#[tokio::test]
async fn guarantee_8_adds_over_the_size_caps_are_refused_naming_the_size_and_store_nothing() {
    let env = TestEnv::new().await;
    let caps = JobCaps {
        max_data_bytes: 1_000,
        max_opts_bytes: 60,
    };
    let redis = env.redis.clone().with_caps(caps);
    let q = Queue::open(&redis, env.config.prefix(), "caps")
        .await
        .unwrap();
    let big = json!({ "pad": "x".repeat(1_000) });
    let err = q.add("work", &big, JobOptions::new()).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::TooLarge { what: "data", .. })
            && msg.contains("1010 bytes")
            && msg.contains("1000"),
        "{msg}"
    );
    let long_opts = JobOptions::new()
        .attempts(5)
        .backoff(Backoff::exponential(Duration::from_secs(1)))
        .timeout(Duration::from_secs(30));
    let err = q.add("work", &json!({}), long_opts).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                what: "options",
                ..
            }
        ),
        "{err}"
    );
    // one oversized job in a bulk add: nothing of the bulk is stored
    let jobs = vec![
        NewJob::new("work", &json!({"ok": 1}), JobOptions::new()).unwrap(),
        NewJob::new("work", &big, JobOptions::new()).unwrap(),
        NewJob::new("work", &json!({"ok": 3}), JobOptions::new()).unwrap(),
    ];
    assert!(matches!(
        q.add_bulk(jobs).await,
        Err(Error::TooLarge { .. })
    ));
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.delayed), (0, 0), "{c:?}");
    // at the cap is fine
    let at_cap = json!("y".repeat(998));
    q.add("work", &at_cap, JobOptions::new()).await.unwrap();
}

#[tokio::test]
async fn guarantee_8_durations_past_3650_days_are_refused_naming_them() {
    let env = TestEnv::new().await;
    let q = env.queue("long").await;
    let too_long = Duration::from_millis(duration::MAX_DURATION_MS + 1);
    for (what, opts) in [
        ("delay", JobOptions::new().delay(too_long)),
        (
            "delay",
            JobOptions::new().delay(Duration::from_millis(1 << 63)),
        ),
        ("timeout", JobOptions::new().timeout(too_long)),
        (
            "backoff delay",
            JobOptions::new()
                .attempts(2)
                .backoff(Backoff::fixed(too_long)),
        ),
        (
            "remove_on_complete age",
            JobOptions::new().remove_on_complete(Retention::keep_for(Duration::MAX)),
        ),
        ("dedup ttl", JobOptions::new().dedup("d", too_long)),
    ] {
        let err = q.add("work", &json!({}), opts).await.unwrap_err();
        assert!(
            err.to_string().contains(what) && err.to_string().contains("3650d"),
            "{what}: {err}"
        );
    }
    assert_eq!(q.counts().await.unwrap().delayed, 0);
    let err = parse_duration("200000000000d").unwrap_err().to_string();
    assert!(err.contains("200000000000d"), "{err}");
}

#[tokio::test]
async fn guarantee_8_job_names_with_control_characters_are_refused() {
    let env = TestEnv::new().await;
    let q = env.queue("names").await;
    for name in [
        "evil\nINFO forged line",
        "esc\u{1b}[31m",
        "nul\0",
        "tab\t",
        "ab\u{202e}cd",
        "   ",
    ] {
        let err = q
            .add(name, &json!({}), JobOptions::new())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Invalid {
                    what: "job name",
                    ..
                }
            ),
            "{name:?}: {err}"
        );
        // the message quotes the name escaped: no raw control character
        assert!(
            !err.to_string()
                .chars()
                .any(queue_core::internal::text::is_unprintable),
            "{err:?}"
        );
    }
    q.add("video.transcode", &json!({}), JobOptions::new())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_starts_after_its_add_ends_after_its_start_and_a_panic_keeps_its_backtrace() {
    let env = TestEnv::new().await;
    let q = env.queue("clocks").await;
    let worker = env
        .worker()
        .queues(["clocks"])
        .concurrency(8)
        .handler("work", |_j: Job<Value>, _c: Ctx| async {
            Ok::<_, JobError>(())
        })
        .handler("boom", |_j: Job<Value>, _c: Ctx| async {
            if true {
                panic!("exploded on purpose");
            }
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    // added one by one while the worker claims them at once: many share a millisecond
    let mut ids = Vec::new();
    for i in 0..300 {
        ids.push(
            q.add("work", &json!({ "i": i }), JobOptions::new())
                .await
                .unwrap()
                .id,
        );
    }
    let boom = q.add("boom", &json!({}), JobOptions::new()).await.unwrap();
    wait_finished(&q, 301, Duration::from_secs(20)).await;
    for id in &ids {
        let info = q.job(id).await.unwrap();
        let started = info.started_at.unwrap();
        assert!(
            started >= info.created_at,
            "job {id} started at {started}, before it was created at {}",
            info.created_at
        );
        let finished = info.finished_at.unwrap();
        assert!(
            finished >= started,
            "job {id} finished at {finished}, before it started at {started}"
        );
    }
    let info = q.job(&boom.id).await.unwrap();
    assert_eq!(info.state, JobState::Failed);
    assert!(
        info.failed_reason
            .as_deref()
            .unwrap_or("")
            .contains("exploded on purpose"),
        "{info:?}"
    );
    let stack = info.stacktrace.unwrap_or_default();
    assert!(
        stack.contains("engine_bad_data.rs"),
        "the stack trace must say where the handler panicked: {stack}"
    );
    guard.stop().await.unwrap();
}

/// Guarantee 8's time bound for the largest jobs there may be: jobs at the 1 MiB data cap
/// added alone and in bulk, claimed 24 at a time (24 MiB if a claim read them), completed
/// with results as large, read back and listed: no script call or command takes 50 ms
/// (measured by Redis itself, with the slowlog). Runs alone (see .config/nextest.toml).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_8_slowlog_jobs_at_the_data_cap_never_block_redis_for_50ms() {
    let server = RedisServer::start_logging_slow_calls();
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("at-cap").await;
    // at the cap: the JSON string's quotes count
    let text = "x".repeat(JobCaps::default().max_data_bytes - 2);
    let mut jobs = Vec::new();
    for _ in 0..20 {
        jobs.push(NewJob::new("work", &text, JobOptions::new()).unwrap());
    }
    let mut ids: Vec<String> = add_all(&q, jobs).await;
    for _ in 0..4 {
        ids.push(q.add("work", &text, JobOptions::new()).await.unwrap().id);
    }
    let guard = spawn_worker(echo_worker(&env, "at-cap", 24));
    let c = wait_finished(&q, 24, Duration::from_secs(60)).await;
    assert_eq!((c.completed_total, c.failed_total), (24, 0), "{c:?}");
    let info = q.job(&ids[0]).await.unwrap();
    assert_eq!(info.data, json!(text));
    assert_eq!(info.return_value, Some(json!(text)));
    let listed = q.list_jobs(JobState::Completed, 0, 30).await.unwrap();
    assert_eq!(listed.len(), 24);
    guard.stop().await.unwrap();
    let (calls, worst) = slowest_call(&mut env.raw().await).await;
    eprintln!(
        "jobs at the cap: {calls} calls over 5 ms, the longest {} µs ({})",
        worst.0, worst.1
    );
    assert!(
        worst.0 < 50_000,
        "a call blocked Redis for {} µs: {}",
        worst.0,
        worst.1
    );
}

#[tokio::test]
async fn huge_listing_offsets_give_an_empty_page_never_a_panic() {
    let env = TestEnv::new().await;
    let q = env.queue("offsets").await;
    q.add("work", &json!({}), JobOptions::new()).await.unwrap();
    for state in JobState::ALL {
        for offset in [u64::MAX, u64::MAX / 2, 1 << 62] {
            let page = q.list_jobs(state, offset, 10_000).await.unwrap();
            assert!(page.is_empty(), "{state:?} at {offset}: {page:?}");
        }
    }
}

/// One corrupt record of a queue's own (its meta hash, rate-limit counter, events stream or
/// lanes set) never stops the queue, fails its jobs or breaks its counts: the jobs run, each
/// once, and `counts` and listings keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_8_a_corrupt_queue_record_never_stops_the_queue() {
    // (what, commands run on the raw connection; `{k}` is the queue's key base)
    let cases: &[(&str, &[&[&str]])] = &[
        (
            "waiting counter",
            &[&["HSET", "{k}:meta", "waiting", "abc"]],
        ),
        (
            "completed_total",
            &[&["HSET", "{k}:meta", "completed_total", "1e308"]],
        ),
        ("per-minute bucket", &[&["HSET", "{k}:meta", "cm", "abc"]]),
        (
            "processing-time sum",
            &[&["HSET", "{k}:meta", "pts", "nan"]],
        ),
        (
            "rate window",
            &[&["HSET", "{k}:meta", "rate_max", "10", "rate_ms", "0"]],
        ),
        ("concurrency", &[&["HSET", "{k}:meta", "conc", "1.5"]]),
        (
            "rate counter",
            &[
                &["HSET", "{k}:meta", "rate_max", "100", "rate_ms", "1000"],
                &["SET", "{k}:limiter", "abc"],
            ],
        ),
        (
            "events stream",
            &[&["DEL", "{k}:events"], &["SET", "{k}:events", "abc"]],
        ),
        ("lanes member", &[&["ZADD", "{k}:lanes", "7", "abc"]]),
        (
            "lanes version",
            &[&["HSET", "{k}:meta", "lanes_ver", "\u{fffd}x"]],
        ),
        ("lanes set", &[&["DEL", "{k}:lanes"]]),
    ];
    // a server of its own: a lost lanes set is found again by the sweep, whose SCAN walks
    // the whole keyspace a page per tick (on a server the other tests fill, too slowly)
    let server = RedisServer::start(&[]);
    for (n, (what, commands)) in cases.iter().enumerate() {
        let env = TestEnv::on(&server.url()).await;
        let queue = format!("rec-{n}");
        let q = env.queue(&queue).await;
        let base = QueueKeys::new(env.config.prefix(), &queue)
            .base()
            .to_string();
        let mut ids = Vec::new();
        for i in 0..10 {
            let opts = JobOptions::new().priority(if i % 2 == 0 { 3 } else { 0 });
            ids.push(q.add("work", &json!({ "i": i }), opts).await.unwrap().id);
        }
        let mut raw = env.raw().await;
        for c in commands.iter() {
            let mut cmd = redis::cmd(c[0]);
            for a in &c[1..] {
                cmd.arg(a.replace("{k}", &base));
            }
            let _: redis::Value = cmd.query_async(&mut raw).await.unwrap();
        }
        let worker = env
            .worker()
            .queues([queue.as_str()])
            .concurrency(4)
            .lease(Duration::from_secs(1))
            .sweep_interval(Duration::from_millis(100))
            .handler("work", |_j: Job<Value>, _c: Ctx| async {
                Ok::<_, JobError>(())
            })
            .build()
            .unwrap();
        let guard = spawn_worker(worker);
        eventually(Duration::from_secs(15), what, || async {
            let mut done = 0;
            for id in &ids {
                if q.job(id).await.ok()?.state == JobState::Completed {
                    done += 1;
                }
            }
            (done == ids.len()).then_some(())
        })
        .await;
        for id in &ids {
            let info = q.job(id).await.unwrap();
            assert_eq!(info.attempts_made, 1, "{what}: {info:?}");
        }
        let c = q
            .counts()
            .await
            .unwrap_or_else(|e| panic!("{what}: counts: {e}"));
        assert_eq!((c.active, c.failed), (0, 0), "{what}: {c:?}");
        let listed = q.list_jobs(JobState::Completed, 0, 100).await.unwrap();
        assert_eq!(listed.len(), 10, "{what}");
        guard.stop().await.unwrap();
    }
}

/// Replacing a job's data is held to the data cap as adding it is: over the cap it is
/// refused, naming the size, and the job keeps its data and still runs.
#[tokio::test]
async fn guarantee_8_update_data_over_the_cap_is_refused_and_the_job_keeps_its_data() {
    let env = TestEnv::new().await;
    let caps = JobCaps {
        max_data_bytes: 1_000,
        max_opts_bytes: 1_000,
    };
    let redis = env.redis.clone().with_caps(caps);
    let q = Queue::open(&redis, env.config.prefix(), "caps-update")
        .await
        .unwrap();
    let added = q
        .add("work", &json!({ "small": 1 }), JobOptions::new())
        .await
        .unwrap();
    let err = q
        .update_data(&added.id, &json!({ "pad": "x".repeat(1_000) }))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                what: "data",
                size: 1010,
                limit: 1_000,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(q.job(&added.id).await.unwrap().data, json!({ "small": 1 }));
    q.update_data(&added.id, &json!({ "pad": "x".repeat(980) }))
        .await
        .unwrap();
    assert_eq!(
        q.job(&added.id).await.unwrap().data,
        json!({ "pad": "x".repeat(980) })
    );
}

/// A job key of the wrong type (a corrupt record: a delayed job's hash turned into a list, a
/// waiting one's into a string, in its lane and in its group, a running one's into a string
/// while it runs) fails or ends that job alone; it used to fail every claim (or every
/// record of outcomes) of the queue, for good. Every other job runs, counters stay exact,
/// and the bad jobs are listed as unreadable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_8_a_job_key_of_the_wrong_type_ends_that_job_alone() {
    let env = TestEnv::new().await;
    let q = env.queue("wrong-type").await;
    let keys = QueueKeys::new(env.config.prefix(), "wrong-type");
    let add = |id: &'static str, opts: JobOptions| {
        let q = q.clone();
        async move {
            q.add("work", &json!({ "id": id }), opts.job_id(id))
                .await
                .unwrap()
        }
    };
    for id in ["ok1", "ok2", "ok3"] {
        add(id, JobOptions::new()).await;
    }
    for id in ["okg1", "okg2"] {
        add(id, JobOptions::new().group("g")).await;
    }
    add(
        "ok-late",
        JobOptions::new().delay(Duration::from_millis(300)),
    )
    .await;
    add(
        "bad-delayed",
        JobOptions::new().delay(Duration::from_millis(300)),
    )
    .await;
    add("bad-lane", JobOptions::new()).await;
    add("bad-group", JobOptions::new().group("g")).await;
    q.add("slow", &json!({}), JobOptions::new().job_id("bad-running"))
        .await
        .unwrap();
    let mut raw = env.raw().await;
    for (id, kind) in [
        ("bad-delayed", "RPUSH"),
        ("bad-lane", "SET"),
        ("bad-group", "SET"),
    ] {
        let key = keys.job(id);
        let _: i64 = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut raw)
            .await
            .unwrap();
        let _: redis::Value = redis::cmd(kind)
            .arg(&key)
            .arg("x")
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let started = std::sync::Arc::new(tokio::sync::Notify::new());
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let (s, r) = (started.clone(), release.clone());
    let worker = env
        .worker()
        .queues(["wrong-type"])
        .concurrency(4)
        .handler("work", |j: Job<Value>, _c: Ctx| async move {
            Ok::<_, JobError>(j.data)
        })
        .handler("slow", move |_j: Job<Value>, _c: Ctx| {
            let (s, r) = (s.clone(), r.clone());
            async move {
                s.notify_one();
                r.notified().await;
                Ok::<_, JobError>(json!("done"))
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    started.notified().await;
    let key = keys.job("bad-running");
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("x")
        .query_async(&mut raw)
        .await
        .unwrap();
    release.notify_one();
    let c = wait_finished(&q, 10, Duration::from_secs(10)).await;
    // a later job of the same queue still runs
    add("after", JobOptions::new()).await;
    let c2 = wait_finished(&q, 11, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert_eq!(
        (c.completed_total, c.failed_total, c.waiting, c.delayed),
        (7, 3, 0, 0),
        "{c:?}"
    );
    assert_eq!((c2.completed_total, c2.active), (8, 0), "{c2:?}");
    for id in ["ok1", "ok2", "ok3", "okg1", "okg2", "ok-late", "after"] {
        assert_eq!(q.job(id).await.unwrap().state, JobState::Completed, "{id}");
    }
    let failed = q.list_jobs(JobState::Failed, 0, 10).await.unwrap();
    let mut names: Vec<&str> = failed.iter().map(|j| j.id.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["bad-delayed", "bad-group", "bad-lane"],
        "{failed:?}"
    );
    assert!(
        failed.iter().all(|j| j
            .corrupt
            .as_deref()
            .is_some_and(|c| c.contains("cannot be read"))),
        "{failed:?}"
    );
    let done = q.list_jobs(JobState::Completed, 0, 20).await.unwrap();
    assert!(
        done.iter()
            .any(|j| j.id == "bad-running" && j.corrupt.is_some()),
        "{done:?}"
    );
}

/// The queue's wake-up marker of the wrong type (a corrupt record: it holds nothing but the
/// wake-up) is made again by the next call that wakes the workers; it used to fail every
/// add, resume and retry of the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wake_up_marker_of_the_wrong_type_is_made_again() {
    let env = TestEnv::new().await;
    let q = env.queue("bad-marker").await;
    q.add("work", &json!({}), JobOptions::new()).await.unwrap();
    q.pause().await.unwrap();
    let marker = QueueKeys::new(env.config.prefix(), "bad-marker").marker();
    let mut raw = env.raw().await;
    let _: i64 = redis::cmd("DEL")
        .arg(&marker)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg(&marker)
        .arg("a")
        .arg("b")
        .query_async(&mut raw)
        .await
        .unwrap();
    q.resume().await.unwrap();
    q.add("work", &json!({}), JobOptions::new()).await.unwrap();
    let kind: String = redis::cmd("TYPE")
        .arg(&marker)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(kind, "zset");
    let guard = spawn_worker(echo_worker(&env, "bad-marker", 2));
    let c = wait_finished(&q, 2, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert_eq!((c.completed_total, c.failed_total), (2, 0), "{c:?}");
}

/// The queue registry of the wrong type (a corrupt record) refuses no add and stops no
/// worker: it only keeps queues out of the listing, whose error names it. It used to fail
/// every add and every worker start, of every queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_registry_of_the_wrong_type_refuses_no_add() {
    let env = TestEnv::new().await;
    let registry = queue_core::internal::keys::queue_registry(env.config.prefix());
    let mut raw = env.raw().await;
    let _: () = redis::cmd("SET")
        .arg(&registry)
        .arg("x")
        .query_async(&mut raw)
        .await
        .unwrap();
    let q = env.queue("bad-registry").await;
    q.add("work", &json!({}), JobOptions::new()).await.unwrap();
    let guard = spawn_worker(echo_worker(&env, "bad-registry", 2));
    let c = wait_finished(&q, 1, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert_eq!(c.completed_total, 1, "{c:?}");
    let err = list_queues(&env.redis, env.config.prefix())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&registry) && err.contains("not a set"),
        "{err}"
    );
}

/// A corrupt piece count never drives a loop when a job's data is replaced (`update_data`,
/// or an add debounced into it): `data:n` of 3,000,000 took ~8 s of Redis in one call, and
/// `inf` never ended. The update is applied, the call is short, and the job runs with it.
#[tokio::test]
async fn guarantee_8_a_corrupt_piece_count_never_drives_an_update_or_a_debounce() {
    let env = TestEnv::new().await;
    let q = env.queue("pieces-update").await;
    let mut raw = env.raw().await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(50_000)
        .query_async(&mut raw)
        .await
        .unwrap();
    reset_slowlog(&mut raw).await;
    let prefix = env.config.prefix().to_string();
    let keys = queue_core::internal::keys::QueueKeys::new(&prefix, "pieces-update");
    for (i, count) in ["3000000", "inf", "nan", "-5", "1e308"]
        .into_iter()
        .enumerate()
    {
        let id = format!("u{i}");
        q.add("work", &json!({ "a": 1 }), JobOptions::new().job_id(&id))
            .await
            .unwrap();
        let _: i64 = redis::cmd("HSET")
            .arg(keys.job(&id))
            .arg("data:n")
            .arg(count)
            .query_async(&mut raw)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        q.update_data(&id, &json!({ "b": i })).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(1), "data:n {count}");
        let job = q.job(&id).await.unwrap();
        assert_eq!(
            (job.data, job.corrupt),
            (json!({ "b": i }), None),
            "data:n {count}"
        );
    }
    // an add debounced into a delayed job whose count is corrupt
    let debounced = JobOptions::new()
        .delay(Duration::from_secs(3600))
        .debounce("d", Duration::from_secs(3600));
    let kept = q
        .add("work", &json!({ "v": 1 }), debounced.clone())
        .await
        .unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg(keys.job(&kept.id))
        .arg("data:n")
        .arg("inf")
        .query_async(&mut raw)
        .await
        .unwrap();
    let again = q.add("work", &json!({ "v": 2 }), debounced).await.unwrap();
    assert!(again.debounced, "{again:?}");
    assert_eq!(q.job(&kept.id).await.unwrap().data, json!({ "v": 2 }));
    let slow: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(slow.is_empty(), "calls over 50 ms: {slow:?}");
}

/// A return value over the data cap would make the call recording it, and every read of it
/// (a flow parent reading its children's outcomes among them), block Redis: the attempt
/// fails for good, naming the size, and the next job runs.
#[tokio::test]
async fn guarantee_8_a_return_value_over_the_data_cap_fails_the_job_naming_the_size() {
    let env = TestEnv::new().await;
    let caps = JobCaps {
        max_data_bytes: 1_000,
        ..JobCaps::default()
    };
    let redis = env.redis.clone().with_caps(caps);
    let q = Queue::open(&redis, env.config.prefix(), "big-result")
        .await
        .unwrap();
    let big = q
        .add("grow", &json!({"n": 2_000}), JobOptions::new().attempts(3))
        .await
        .unwrap();
    let small = q
        .add("grow", &json!({"n": 10}), JobOptions::new())
        .await
        .unwrap();
    let worker = env
        .worker()
        .redis(redis.clone())
        .queues(["big-result"])
        .handler("grow", |job: Job<Value>, _ctx: Ctx| async move {
            let n = job.data["n"].as_u64().unwrap_or(0) as usize;
            Ok::<_, JobError>("x".repeat(n))
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let failed = wait_job_done(&q, &big.id, Duration::from_secs(10)).await;
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(
        failed.attempts_made, 1,
        "not retried: it would return as much again"
    );
    let reason = failed.failed_reason.unwrap_or_default();
    assert!(
        reason.contains("2002 bytes") && reason.contains("1000 bytes"),
        "{reason}"
    );
    let ok = wait_job_done(&q, &small.id, Duration::from_secs(10)).await;
    assert_eq!(ok.state, JobState::Completed);
    guard.stop().await.unwrap();
}

/// A queue's indexes of jobs of the wrong type (corrupt records: a string where its delayed,
/// completed or failed set, its lane stream or its lanes set belongs) stop nothing: the scripts that meet
/// one make it again, new jobs run, wait and fail as usual, and the repair sweep puts back
/// the jobs the lost indexes listed. They used to fail every add, claim and outcome of the
/// queue, for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_index_of_the_wrong_type_is_made_again_and_its_jobs_put_back() {
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("bad-index").await;
    let worker = || {
        env.worker()
            .queues(["bad-index"])
            .concurrency(2)
            .sweep_interval(Duration::from_millis(100))
            .handler("work", |_j: Job<Value>, _c: Ctx| async {
                Ok::<_, JobError>(())
            })
            .handler("fail", |_j: Job<Value>, _c: Ctx| async {
                Err::<(), _>(JobError::new("no"))
            })
            .build()
            .unwrap()
    };
    let once = JobOptions::new().attempts(1);
    // jobs in each index: completed, failed, delayed (for a minute), waiting
    let done = q.add("work", &json!({}), JobOptions::new()).await.unwrap();
    let failed = q.add("fail", &json!({}), once.clone()).await.unwrap();
    let guard = spawn_worker(worker());
    wait_finished(&q, 2, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    let later = JobOptions::new().delay(Duration::from_secs(60));
    let delayed = q.add("work", &json!({}), later).await.unwrap();
    // a given id: a record, which the sweep puts back in the lane made again. A lean job
    // is its lane entry alone: the lane overwritten below takes it with it, nothing left to
    // put back.
    let waiting = q
        .add("work", &json!({}), JobOptions::new().job_id("waiting"))
        .await
        .unwrap();

    let keys = QueueKeys::new(env.config.prefix(), "bad-index");
    let indexes = [
        keys.delayed(),
        keys.completed(),
        keys.failed(),
        keys.lane(0),
        keys.lanes(),
    ];
    let mut raw = env.raw().await;
    for key in &indexes {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg("garbage")
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    // new jobs of every kind are taken, run and recorded
    let soon = JobOptions::new().delay(Duration::from_millis(200));
    let due = q.add("work", &json!({}), soon).await.unwrap();
    let fresh = q.add("work", &json!({}), JobOptions::new()).await.unwrap();
    let failing = q.add("fail", &json!({}), once).await.unwrap();
    let guard = spawn_worker(worker());
    let c = wait_finished(&q, 6, Duration::from_secs(15)).await;
    assert_eq!((c.completed_total, c.failed_total), (4, 2), "{c:?}");
    // the sweep puts the jobs of the lost indexes back in them
    eventually(
        Duration::from_secs(15),
        "the lost indexes refilled",
        || async {
            let c = q.counts().await.unwrap();
            (c.completed == 4 && c.failed == 2 && c.delayed == 1).then_some(())
        },
    )
    .await;
    guard.stop().await.unwrap();
    for (id, state) in [
        (&done.id, JobState::Completed),
        (&waiting.id, JobState::Completed),
        (&due.id, JobState::Completed),
        (&fresh.id, JobState::Completed),
        (&failed.id, JobState::Failed),
        (&failing.id, JobState::Failed),
        (&delayed.id, JobState::Delayed),
    ] {
        assert_eq!(q.job(id).await.unwrap().state, state, "job {id}");
    }
    for (key, want) in indexes
        .iter()
        .zip(["zset", "zset", "zset", "stream", "zset"])
    {
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(kind, want, "{key}");
    }
}

/// A queue's meta hash of the wrong type cannot be made again (it holds the queue's
/// counters and settings): every call on the queue fails with an error naming the key and
/// its type, not Redis's bare WRONGTYPE, as a conflict (the API's 409); other queues go on.
/// An add is refused before anything is written. Was: it stored its job in its lane, then
/// failed (the dashboard answered 500 for a job a worker would run, and a client retrying
/// the add stored it twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_meta_of_the_wrong_type_is_named_in_the_error() {
    let env = TestEnv::new().await;
    let q = env.queue("bad-meta").await;
    let other = env.queue("good-meta").await;
    q.add("work", &json!({}), JobOptions::new()).await.unwrap();
    let keys = QueueKeys::new(env.config.prefix(), "bad-meta");
    let meta = keys.meta();
    let mut raw = env.raw().await;
    let _: () = redis::cmd("SET")
        .arg(&meta)
        .arg("garbage")
        .query_async(&mut raw)
        .await
        .unwrap();
    let stored = || async {
        let mut raw = env.raw().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!(
                "{}*",
                QueueKeys::new(env.config.prefix(), "bad-meta").base()
            ))
            .query_async(&mut raw)
            .await
            .unwrap();
        keys.len()
    };
    let before = stored().await;
    for err in [
        q.add("work", &json!({}), JobOptions::new())
            .await
            .map(|_| ()),
        q.add_bulk(vec![
            NewJob::new("work", &json!({}), JobOptions::new()).unwrap()
        ])
        .await
        .map(|_| ()),
    ] {
        let err = err.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&meta) && text.contains("is a string, not a hash"),
            "{text}"
        );
        assert_eq!(err.kind(), ErrorKind::Conflict, "{text}");
    }
    assert_eq!(stored().await, before, "an add refused stored nothing");
    let lane: usize = redis::cmd("XLEN")
        .arg(keys.lane(0))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(lane, 1, "only the first job's entry");
    other
        .add("work", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let guard = spawn_worker(echo_worker(&env, "good-meta", 1));
    let c = wait_finished(&other, 1, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert_eq!(c.completed_total, 1);
}

/// A queue's key of the wrong type (a corrupt record: a string where one of its indexes of
/// jobs, a group's queue or one of the groups' sets belongs) fails no listing of any state
/// and not the groups view: it lists none of our jobs, so it reads as empty, and the jobs
/// listed elsewhere are shown. Listings used to fail with Redis's bare WRONGTYPE (`jobq
/// list` exit 1, the API a 500), and so did `jobq groups`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_key_of_the_wrong_type_fails_no_listing_and_not_the_groups_view() {
    let env = TestEnv::new().await;
    let states = [
        JobState::Waiting,
        JobState::Active,
        JobState::Delayed,
        JobState::Completed,
        JobState::Failed,
        JobState::Cancelled,
        JobState::WaitingChildren,
    ];
    // (what, its key, waiting jobs listed with it corrupt)
    type Case = (&'static str, fn(&QueueKeys) -> String, usize);
    let cases: [Case; 10] = [
        ("completed", |k| k.completed(), 5),
        ("failed", |k| k.failed(), 5),
        ("delayed", |k| k.delayed(), 5),
        ("cancelled", |k| k.cancelled(), 5),
        ("waiting children", |k| k.waiting_children(), 5),
        ("lane 0", |k| k.lane(0), 3),
        ("group queue g1", |k| k.group_queue("g1"), 3),
        ("groups' waiting counts", |k| k.group_waiting(), 2),
        ("groups' active counts", |k| k.group_active(), 5),
        ("parked groups", |k| k.group_parked(), 5),
    ];
    for (n, (what, key, listed)) in cases.into_iter().enumerate() {
        let name = format!("bad-read-{n}");
        let q = env.queue(&name).await;
        let plain = JobOptions::new();
        for opts in [
            plain.clone(),
            plain.clone(),
            plain.clone().group("g1"),
            plain.clone().group("g1"),
            plain.group("g2"),
        ] {
            q.add("work", &json!({}), opts).await.unwrap();
        }
        let keys = QueueKeys::new(env.config.prefix(), &name);
        let mut raw = env.raw().await;
        let _: () = redis::cmd("DEL")
            .arg(key(&keys))
            .query_async(&mut raw)
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg(key(&keys))
            .arg("junk")
            .query_async(&mut raw)
            .await
            .unwrap();
        for state in states {
            let page = q.list_jobs(state, 0, 100).await;
            let page = page.unwrap_or_else(|e| panic!("{what}: listing {state:?} failed: {e}"));
            if state == JobState::Waiting {
                assert_eq!(page.len(), listed, "{what}: waiting jobs listed");
            }
        }
        let groups = q.groups(50).await;
        groups.unwrap_or_else(|e| panic!("{what}: the groups view failed: {e}"));
    }
    // a lane deleted by hand (still in the lanes set): its jobs are not listed, the rest are
    let q = env.queue("bad-read-gone").await;
    q.add("work", &json!({}), JobOptions::new()).await.unwrap();
    let grouped = JobOptions::new().group("g1");
    q.add("work", &json!({}), grouped).await.unwrap();
    let keys = QueueKeys::new(env.config.prefix(), "bad-read-gone");
    let mut raw = env.raw().await;
    let _: () = redis::cmd("DEL")
        .arg(keys.lane(0))
        .query_async(&mut raw)
        .await
        .unwrap();
    for state in states {
        let page = q.list_jobs(state, 0, 100).await;
        let page = page.unwrap_or_else(|e| panic!("lane gone: listing {state:?} failed: {e}"));
        if state == JobState::Waiting {
            assert_eq!(page.len(), 1, "lane gone: waiting jobs listed");
        }
    }
}

/// What a handler writes about a job is bounded too: progress travels whole in an event
/// to every live page (200 events of 1 MB held Redis ~120 ms per read of the stream), so
/// progress over 64 KiB of JSON is refused naming its size, and a log line over 64 KiB is
/// kept cut there, saying how long it was. Neither fails the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_log_lines_over_64_kib_are_refused_or_cut_naming_the_size() {
    let env = TestEnv::new().await;
    let q = env.queue("big-trail").await;
    let worker = env
        .worker()
        .queues(["big-trail"])
        .handler("work", |_j: Job<Value>, c: Ctx| async move {
            let big = c.progress(json!("p".repeat(100_000))).await;
            let refused = big.err().map(|e| e.to_string()).unwrap_or_default();
            c.progress(json!({ "done": 50 })).await?;
            c.log("l".repeat(100_000)).await?;
            c.log("short").await?;
            Ok::<_, JobError>(json!({ "refused": refused }))
        })
        .build()
        .unwrap();
    let id = q
        .add("work", &json!({}), JobOptions::new())
        .await
        .unwrap()
        .id;
    let guard = spawn_worker(worker);
    let job = wait_job_done(&q, &id, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert_eq!(job.state, JobState::Completed);
    let refused = job.return_value.unwrap_or_default()["refused"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        refused.contains("100002 bytes") && refused.contains("65536"),
        "{refused}"
    );
    assert_eq!(job.progress, Some(json!({ "done": 50 })));
    assert_eq!(job.logs.len(), 2);
    assert!(job.logs[0].len() <= 64 * 1024, "{}", job.logs[0].len());
    assert!(
        job.logs[0].ends_with("[cut: the line was 100000 bytes]"),
        "{}",
        &job.logs[0][job.logs[0].len() - 60..]
    );
    assert_eq!(job.logs[1], "short");
}

/// A stored name longer than an add takes (a corrupt record) is marked in listings and on
/// the job's page as the claim names it, and shown clipped: a 100 KB name was listed whole,
/// unmarked, and made every row of `jobq list` 100 KB wide.
#[tokio::test]
async fn a_stored_name_over_256_bytes_is_listed_marked_and_clipped() {
    let env = TestEnv::new().await;
    let q = env.queue("long-name").await;
    // given ids: records, whose stored name is corrupted below (a lean entry's long name:
    // engine_lean_hostile.rs)
    let id = q
        .add("work", &json!({}), JobOptions::new().job_id("long"))
        .await
        .unwrap()
        .id;
    let ok = q
        .add("work", &json!({}), JobOptions::new().job_id("ok"))
        .await
        .unwrap()
        .id;
    corrupt(
        &env,
        "long-name",
        &id,
        "name",
        Some("n".repeat(100_000).as_bytes()),
    )
    .await;
    let page = q.list_jobs(JobState::Waiting, 0, 10).await.unwrap();
    assert_eq!(page.len(), 2);
    for job in page.iter().chain([&q.job(&id).await.unwrap()]) {
        if job.id == ok {
            assert!(job.corrupt.is_none() && job.name == "work");
            continue;
        }
        let c = job.corrupt.as_deref().unwrap_or_default();
        assert!(c.contains("field name is 100000 bytes"), "{c}");
        assert!(job.name.len() <= 256, "{}", job.name.len());
    }
}
