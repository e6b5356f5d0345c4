//! Retention keeps Redis memory flat under steady traffic: with the default policy, 20,000
//! completed no-op jobs leave at most 1,000 completed job hashes; Redis memory after 200,000
//! jobs is within 10 % of that after 20,000 (and so are the queue's own keys); and it stays
//! flat to 400,000 jobs.
//!
//! Total memory is read at rest, without Redis's slowlog: right after a burst Redis still
//! holds transient allocations that go within a second, so each reading waits until two
//! samples 300 ms apart agree within 0.5 %; and the slowlog (a ring of at most 128 entries,
//! each keeping copies of a slow command's arguments) fills up over the first ~100,000 jobs
//! with jobq's 1,000-job batch calls that take over 10 ms, which is Redis's own bounded
//! diagnostic memory (~230 KB here), not the queue's. It is reset before each reading and its
//! size printed. For the same reason the readings leave out two things Redis allocates once,
//! on first use, and never per job: a script's place in its script cache (~65 KB a script,
//! the prelude included; a worker calls some only when the need arises, such as renewing a
//! lease, which may come after the first reading), and the latency histogram of each command
//! (Redis 7's `latency-tracking`, off on this test's private server: a command first run
//! between the readings, inside such a script, added ~160 KB, 5 % of the total).

use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

/// Redis's `used_memory` without its script cache (`used_memory_scripts`; see above).
async fn used_memory(raw: &mut Conn) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(raw)
        .await
        .unwrap();
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in INFO"))
    };
    field("used_memory") - field("used_memory_scripts")
}

/// Where Redis's memory goes: dataset, overhead and client buffers (INFO memory fields).
async fn memory_breakdown(raw: &mut Conn) -> String {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(raw)
        .await
        .unwrap();
    [
        "used_memory_dataset",
        "used_memory_overhead",
        "mem_clients_normal",
        "used_memory_scripts",
    ]
    .iter()
    .filter_map(|f| {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{f}:")))
            .map(|v| format!("{f}={}", v.trim()))
    })
    .collect::<Vec<_>>()
    .join(" ")
}

/// `used_memory` once it has settled after a burst, without the slowlog (see the module doc).
async fn settled_memory(raw: &mut Conn) -> u64 {
    let entries: i64 = redis::cmd("SLOWLOG")
        .arg("LEN")
        .query_async(raw)
        .await
        .unwrap();
    let with_slowlog = used_memory(raw).await;
    reset_slowlog(raw).await;
    eprintln!(
        "  slowlog: {entries} entries, {} B",
        with_slowlog.saturating_sub(used_memory(raw).await)
    );
    let mut last = used_memory(raw).await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = used_memory(raw).await;
        if (now as f64 - last as f64).abs() <= last as f64 * 0.005 {
            return now;
        }
        last = now;
    }
    last
}

/// MEMORY USAGE of one key, in bytes.
async fn key_memory(raw: &mut Conn, key: &str) -> u64 {
    let n: Option<u64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .arg("SAMPLES")
        .arg(0)
        .query_async(raw)
        .await
        .unwrap();
    n.unwrap_or(0)
}

/// Sum of MEMORY USAGE over every key of the queue (its jobs, lanes, sets, events, meta…).
async fn queue_key_memory(raw: &mut Conn, prefix: &str) -> u64 {
    let mut cursor = 0u64;
    let mut total = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{{{prefix}:steady}}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(raw)
            .await
            .unwrap();
        for k in keys {
            total += key_memory(raw, &k).await;
        }
        cursor = next;
        if cursor == 0 {
            return total;
        }
    }
}

async fn job_hashes(raw: &mut Conn, prefix: &str) -> usize {
    let mut cursor = 0u64;
    let mut n = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{{{prefix}:steady}}:j:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(raw)
            .await
            .unwrap();
        n += keys.len();
        cursor = next;
        if cursor == 0 {
            return n;
        }
    }
}

/// Steady traffic: `n` no-op jobs in bulks of 10,000, each bulk added once the previous one
/// has been worked off (so the backlog, and Redis's peak memory, stay the same size
/// whatever `n` is).
async fn push_through(q: &Queue, n: usize, done_before: u64) {
    for chunk in 0..n / 10_000 {
        let jobs: Vec<NewJob> = (0..10_000)
            .map(|i| {
                NewJob::new(
                    "noop",
                    &json!({ "i": chunk * 10_000 + i, "body": "x".repeat(40) }),
                    JobOptions::new(),
                )
                .unwrap()
            })
            .collect();
        q.add_bulk(jobs).await.unwrap();
        let done = done_before + (chunk as u64 + 1) * 10_000;
        wait_finished(q, done, Duration::from_secs(120)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_retention_keeps_memory_flat_from_20000_to_200000_jobs() {
    let server = RedisServer::start(&["--latency-tracking", "no"]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("steady").await;
    let mut raw = env.raw().await;
    let worker = env
        .worker()
        .queues(["steady"])
        .concurrency(50)
        // every background loop runs (and loads its script) before the first reading
        .retention_interval(Duration::from_millis(200))
        .sweep_interval(Duration::from_millis(200))
        .lease(Duration::from_secs(2))
        .handler("noop", |_j: Job<Value>, _c: Ctx| async {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);

    let t = Instant::now();
    push_through(&q, 20_000, 0).await;
    let hashes = job_hashes(&mut raw, env.config.prefix()).await;
    let at_20k = settled_memory(&mut raw).await;
    let keys_20k = queue_key_memory(&mut raw, env.config.prefix()).await;
    let keys = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), "steady");
    eprintln!("  {}", memory_breakdown(&mut raw).await);
    eprintln!(
        "  events {} B, completed set {} B, meta {} B",
        key_memory(&mut raw, &keys.events()).await,
        key_memory(&mut raw, &keys.completed()).await,
        key_memory(&mut raw, &keys.meta()).await
    );
    let c = q.counts().await.unwrap();
    eprintln!(
        "after 20,000 jobs ({:?}): {hashes} job hashes, used_memory {at_20k} B, {c:?}",
        t.elapsed()
    );
    assert!(
        hashes <= 1_000,
        "{hashes} job hashes kept after 20,000 completions"
    );
    assert!(c.completed <= 1_000, "{c:?}");

    push_through(&q, 180_000, 20_000).await;
    let at_200k = settled_memory(&mut raw).await;
    let keys_200k = queue_key_memory(&mut raw, env.config.prefix()).await;
    eprintln!("  {}", memory_breakdown(&mut raw).await);
    eprintln!(
        "  events {} B, completed set {} B, meta {} B",
        key_memory(&mut raw, &keys.events()).await,
        key_memory(&mut raw, &keys.completed()).await,
        key_memory(&mut raw, &keys.meta()).await
    );
    let hashes = job_hashes(&mut raw, env.config.prefix()).await;
    let c = q.counts().await.unwrap();
    eprintln!(
        "after 200,000 jobs ({:?}): {hashes} job hashes, used_memory {at_200k} B, {c:?}",
        t.elapsed()
    );
    assert_eq!(c.completed_total, 200_000);
    assert!(
        hashes <= 1_000,
        "{hashes} job hashes kept after 200,000 completions"
    );
    let key_growth = keys_200k as f64 / keys_20k as f64 - 1.0;
    let total_growth = at_200k as f64 / at_20k as f64 - 1.0;
    eprintln!(
        "20,000 -> 200,000 jobs: queue keys {keys_20k} -> {keys_200k} B ({:+.1} %), \
         Redis used_memory {at_20k} -> {at_200k} B ({:+.1} %)",
        key_growth * 100.0,
        total_growth * 100.0
    );
    assert!(
        key_growth.abs() <= 0.10,
        "the queue's keys grew {:.1} % ({keys_20k} -> {keys_200k})",
        key_growth * 100.0
    );
    assert!(
        total_growth.abs() <= 0.10,
        "Redis memory grew {:.1} % ({at_20k} -> {at_200k})",
        total_growth * 100.0
    );

    push_through(&q, 200_000, 200_000).await;
    let at_400k = settled_memory(&mut raw).await;
    let hashes = job_hashes(&mut raw, env.config.prefix()).await;
    guard.stop().await.unwrap();
    let plateau = at_400k as f64 / at_200k as f64 - 1.0;
    eprintln!(
        "200,000 -> 400,000 jobs: used_memory {at_200k} -> {at_400k} B ({:+.1} %), {hashes} job hashes",
        plateau * 100.0
    );
    assert!(
        hashes <= 1_000,
        "{hashes} job hashes kept after 400,000 completions"
    );
    assert!(
        plateau.abs() <= 0.10,
        "Redis memory kept growing: {:.1} % from 200,000 to 400,000 jobs",
        plateau * 100.0
    );
}
