//! The workloads, each returning jobs per second and Redis's CPU time per job.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use queue_core::{Ctx, Job, JobError, JobOptions, NewJob, Queue, Retention, Worker};
use serde_json::{json, Value};

use crate::redis_info;
use crate::redis_server::RunEnv;

pub(crate) const JOBS: usize = 50_000;
const IN_FLIGHT: usize = 1_000;

pub fn describe(w: &str) -> &'static str {
    match w {
        "a" => "50,000 single adds, 1,000 in flight",
        "b" => "50,000 jobs by add_bulk in chunks of 1,000",
        "c50" => "50,000 no-op jobs processed at concurrency 50",
        "c1" => "50,000 no-op jobs processed at concurrency 1",
        "c50rm" => "50,000 no-op jobs added with removeOnComplete, processed at concurrency 50",
        "q4" => {
            "50,000 no-op jobs over 4 queues processed at concurrency 50 (cluster vs one Redis)"
        }
        _ => "?",
    }
}

/// The peer benchmark's ~100-byte JSON payload, field for field.
pub(crate) fn payload(i: usize) -> Value {
    json!({"i": i, "user": format!("user_{}", i % 10_000), "action": "send_email", "body": "x".repeat(40)})
}

/// What a rate workload measured.
pub struct Rate {
    /// Jobs per second.
    pub per_sec: f64,
    /// Redis's CPU time (`INFO cpu`, user + sys) over the timed phase, µs per job: the
    /// figure that bounds throughput on a shared Redis. The whole server's, so on
    /// `REDIS_URL` it includes other clients' work.
    pub redis_us: f64,
}

pub async fn run(w: &str, env: &RunEnv) -> Result<Rate> {
    match w {
        "a" => single_adds(env).await,
        "b" => bulk_adds(env).await,
        "c50" => process(env, 50, JobOptions::new()).await,
        "c50rm" => {
            process(
                env,
                50,
                JobOptions::new().remove_on_complete(Retention::REMOVE),
            )
            .await
        }
        "c1" => process(env, 1, JobOptions::new()).await,
        "q4" => {
            let names = ["bench0", "bench1", "bench2", "bench3"];
            process_queues(env, &names, 50, JobOptions::new()).await
        }
        other => bail!("unknown workload {other}"),
    }
}

impl Rate {
    /// `secs` and Redis CPU seconds over [`JOBS`] jobs as a [`Rate`].
    pub(crate) fn of(secs: f64, redis_cpu_secs: f64) -> Rate {
        Rate {
            per_sec: JOBS as f64 / secs,
            redis_us: redis_cpu_secs * 1e6 / JOBS as f64,
        }
    }
}

pub(crate) async fn queue(env: &RunEnv) -> Result<Queue> {
    Ok(Queue::open(&env.redis, env.config.prefix(), "bench").await?)
}

async fn single_adds(env: &RunEnv) -> Result<Rate> {
    let q = queue(env).await?;
    let next = Arc::new(AtomicU64::new(0));
    let cpu0 = redis_info::cpu_secs(env).await?;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        let q = q.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= JOBS {
                    return Ok::<_, queue_core::Error>(());
                }
                q.add("diag.noop", &payload(i), JobOptions::new()).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(Rate::of(secs, redis_info::cpu_secs(env).await? - cpu0))
}

pub(crate) fn bulk_jobs(n: usize) -> Result<Vec<NewJob>> {
    bulk_jobs_with(n, &JobOptions::new())
}

fn bulk_jobs_with(n: usize, opts: &JobOptions) -> Result<Vec<NewJob>> {
    (0..n)
        .map(|i| Ok(NewJob::new("diag.noop", &payload(i), opts.clone())?))
        .collect()
}

async fn bulk_adds(env: &RunEnv) -> Result<Rate> {
    let q = queue(env).await?;
    let jobs = bulk_jobs(JOBS)?;
    let cpu0 = redis_info::cpu_secs(env).await?;
    let start = Instant::now();
    q.add_bulk(jobs).await?;
    let secs = start.elapsed().as_secs_f64();
    Ok(Rate::of(secs, redis_info::cpu_secs(env).await? - cpu0))
}

async fn process(env: &RunEnv, concurrency: usize, opts: JobOptions) -> Result<Rate> {
    process_queues(env, &["bench"], concurrency, opts).await
}

/// [`JOBS`] no-op jobs shared out over `names` (added first), then processed by one worker
/// taking from all of them at `concurrency`; jobs per second from its start until Redis
/// has recorded the last completion.
async fn process_queues(
    env: &RunEnv,
    names: &[&str],
    concurrency: usize,
    opts: JobOptions,
) -> Result<Rate> {
    let mut queues = Vec::with_capacity(names.len());
    for name in names {
        queues.push(Queue::open(&env.redis, env.config.prefix(), name).await?);
    }
    let mut jobs = bulk_jobs_with(JOBS, &opts)?;
    let per_queue = JOBS.div_ceil(names.len());
    for q in &queues {
        let rest = jobs.split_off(jobs.len().saturating_sub(per_queue));
        q.add_bulk(rest).await?;
    }
    let phase = run_worker(env, &queues, concurrency, JOBS).await?;
    Ok(Rate::of(phase.secs, phase.redis_cpu_secs))
}

/// One timed phase: wall seconds and Redis's CPU seconds over it.
pub(crate) struct Phase {
    pub secs: f64,
    pub redis_cpu_secs: f64,
}

/// One worker over `queues` at `concurrency`, every job a no-op `diag.noop`; not started.
pub(crate) fn noop_worker(env: &RunEnv, queues: &[Queue], concurrency: usize) -> Result<Worker> {
    Ok(Worker::builder(env.config.clone())
        .redis(env.redis.clone())
        .queues(queues.iter().map(|q| q.name().to_string()))
        .concurrency(concurrency)
        .handler("diag.noop", |_j: Job<Value>, _c: Ctx| async {
            Ok::<_, JobError>(())
        })
        .build()?)
}

/// Runs one worker over `queues` at `concurrency`, every job a no-op `diag.noop`, until
/// Redis has recorded `expected` completions over them; then stops it. Timed from its start.
pub(crate) async fn run_worker(
    env: &RunEnv,
    queues: &[Queue],
    concurrency: usize,
    expected: usize,
) -> Result<Phase> {
    let worker = noop_worker(env, queues, concurrency)?;
    let stop = worker.shutdown_token();
    let cpu0 = redis_info::cpu_secs(env).await?;
    let start = Instant::now();
    let handle = tokio::spawn(worker.run());
    // finished means recorded in Redis, not just run
    loop {
        let mut done = 0;
        for q in queues {
            done += q.counts().await?.completed_total as usize;
        }
        if done >= expected {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            bail!("processing did not finish: {done} of {expected} completed");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let redis_cpu_secs = redis_info::cpu_secs(env).await? - cpu0;
    stop.cancel();
    handle.await??;
    Ok(Phase {
        secs,
        redis_cpu_secs,
    })
}
