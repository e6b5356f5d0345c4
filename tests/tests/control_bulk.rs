//! Bulk operations on 10,000 jobs run as bounded script calls: none blocks Redis for more
//! than ~50 ms. Measured with Redis's own slowlog (every call logged, with its duration).

use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

const N: usize = 10_000;

/// Resets the slowlog to record every command.
async fn start_measuring(raw: &mut Conn) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(0)
        .query_async(raw)
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-max-len")
        .arg(100_000)
        .query_async(raw)
        .await
        .unwrap();
    let _: () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query_async(raw)
        .await
        .unwrap();
}

/// Longest single command (script call) since `start_measuring`, in microseconds.
async fn longest_call_us(raw: &mut Conn) -> (i64, usize) {
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(100_000)
        .query_async(raw)
        .await
        .unwrap();
    let mut max = 0;
    for e in &entries {
        if let redis::Value::Array(fields) = e {
            if let Some(redis::Value::Int(us)) = fields.get(2) {
                max = max.max(*us);
            }
        }
    }
    (max, entries.len())
}

fn jobs(name: &str, opts: JobOptions) -> Vec<NewJob> {
    (0..N)
        .map(|i| {
            NewJob::new(
                name,
                &json!({ "i": i, "pad": "x".repeat(40) }),
                opts.clone(),
            )
            .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_operations_on_10000_jobs_never_block_redis_for_more_than_50ms() {
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("bulk").await;
    let mut raw = env.raw().await;
    let mut report = Vec::new();
    let limit_us = 50_000;

    // add_bulk: one call per chunk of 1,000
    start_measuring(&mut raw).await;
    q.add_bulk(jobs(
        "fail",
        JobOptions::new().remove_on_fail(Retention::keep_last(100_000)),
    ))
    .await
    .unwrap();
    report.push(("add_bulk", longest_call_us(&mut raw).await));

    // 10,000 failed jobs, then retry them all
    let worker = env
        .worker()
        .queues(["bulk"])
        .concurrency(50)
        .handler("fail", |_j: Job<Value>, _c: Ctx| async {
            Err::<(), _>(JobError::new("no"))
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_finished(&q, N as u64, Duration::from_secs(60)).await;
    guard.stop().await.unwrap();
    assert_eq!(q.counts().await.unwrap().failed, N as u64);
    start_measuring(&mut raw).await;
    assert_eq!(q.retry_all_failed().await.unwrap(), N as u64);
    report.push(("retry_all_failed", longest_call_us(&mut raw).await));
    assert_eq!(q.counts().await.unwrap().waiting, N as u64);

    // drain them
    start_measuring(&mut raw).await;
    assert_eq!(q.drain().await.unwrap(), N as u64);
    report.push(("drain", longest_call_us(&mut raw).await));

    // 10,000 delayed jobs, promoted at once
    q.add_bulk(jobs(
        "ok",
        JobOptions::new()
            .delay(Duration::from_secs(3600))
            .remove_on_complete(Retention::keep_last(100_000)),
    ))
    .await
    .unwrap();
    start_measuring(&mut raw).await;
    assert_eq!(q.promote_all_delayed().await.unwrap(), N as u64);
    report.push(("promote_all_delayed", longest_call_us(&mut raw).await));

    // run them, then clean the 10,000 completed
    let worker = env
        .worker()
        .queues(["bulk"])
        .concurrency(50)
        .handler("ok", |_j: Job<Value>, _c: Ctx| async {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let c = wait_finished(&q, 2 * N as u64, Duration::from_secs(60)).await;
    guard.stop().await.unwrap();
    assert_eq!(c.completed, N as u64, "{c:?}");
    start_measuring(&mut raw).await;
    assert_eq!(
        q.clean(JobState::Completed, Duration::ZERO, None)
            .await
            .unwrap(),
        N as u64
    );
    report.push(("clean", longest_call_us(&mut raw).await));

    // obliterate a queue holding 10,000 waiting jobs
    q.add_bulk(jobs("ok", JobOptions::new())).await.unwrap();
    start_measuring(&mut raw).await;
    assert!(q.obliterate(false).await.unwrap() >= N as u64);
    report.push(("obliterate", longest_call_us(&mut raw).await));

    for (op, (max_us, calls)) in &report {
        eprintln!(
            "{op:>20} on {N} jobs: {calls} Redis calls, longest {:.1} ms",
            *max_us as f64 / 1000.0
        );
    }
    for (op, (max_us, _)) in &report {
        assert!(
            *max_us < limit_us,
            "{op}: one call blocked Redis for {max_us} us"
        );
    }
}
