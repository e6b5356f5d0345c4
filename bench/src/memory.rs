//! Workload `e`: Redis bytes per waiting job. On a clean slate (flushed private server, or
//! a fresh prefix on `REDIS_URL`), INFO used_memory before and after adding 50,000 jobs with
//! the peer's payload by add_bulk (chunks of 1,000), no worker: (after − before) / 50,000.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use queue_core::{JobOptions, NewJob};

use crate::redis_server::RunEnv;
use crate::stats::Metric;
use crate::workloads::{payload, queue};

const JOBS: usize = 50_000;

async fn used_memory(env: &RunEnv) -> Result<u64> {
    let mut c = env.redis.conn();
    let info: String = redis::cmd("INFO").arg("memory").query_async(&mut c).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .context("INFO memory has no used_memory")
}

pub async fn run(env: &RunEnv) -> Result<Vec<Metric>> {
    let q = queue(env).await?;
    // the queue's own keys (registry entry) exist before the first reading, as the peer's
    // queue is ready before its first reading
    q.register().await?;
    let jobs = (0..JOBS)
        .map(|i| Ok(NewJob::new("diag.noop", &payload(i), JobOptions::new())?))
        .collect::<Result<Vec<_>>>()?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = used_memory(env).await?;
    q.add_bulk(jobs).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = used_memory(env).await?;
    let waiting = q.counts().await?.waiting;
    if waiting as usize != JOBS {
        bail!("expected {JOBS} waiting, got {waiting}");
    }
    let delta = after as f64 - before as f64;
    Ok(vec![
        Metric {
            key: "bytesPerJob",
            label: "",
            unit: "B/job",
            decimals: 0,
            value: delta / JOBS as f64,
        },
        Metric {
            key: "deltaMB",
            label: "delta",
            unit: "MB",
            decimals: 2,
            value: delta / 1_048_576.0,
        },
    ])
}
