//! Workload `d`: add→handler-start latency. 2,000 jobs sent at 500/s (open loop) to a worker
//! at concurrency 50 that is already running; each job carries its send time, taken just
//! before `add`, and the handler records now − send time.

use std::time::Duration;

use anyhow::Result;
use queue_core::{JobOptions, Retention};
use serde_json::Value;

use crate::redis_server::RunEnv;
use crate::stats::{percentile, Metric};
use crate::timing::{join_all, steady, Clock, RecordingWorker, Samples, JOB};
use crate::workloads::{payload, queue};

const JOBS: usize = 2_000;
const RATE: f64 = 500.0;

fn stamped(i: usize, t: f64) -> Value {
    let mut v = payload(i);
    v["t"] = t.into();
    v
}

fn opts() -> JobOptions {
    // as the peer: removeOnComplete: true
    JobOptions::new().remove_on_complete(Retention::REMOVE)
}

pub async fn run(env: &RunEnv) -> Result<Vec<Metric>> {
    let q = queue(env).await?;
    let clock = Clock::new();
    let lat = Samples::default();
    let handler_clock = clock.clone();
    let worker = RecordingWorker::start(env, lat.clone(), move |data| {
        handler_clock.ms() - data["t"].as_f64().unwrap_or(f64::NAN)
    })?;
    // warm-up: one job through the running worker, then let it settle
    q.add(JOB, &stamped(JOBS, clock.ms()), opts()).await?;
    lat.wait_for(1, Duration::from_secs(120)).await?;
    lat.clear();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (tasks, send_secs) = steady(JOBS, RATE, |i| {
        let q = q.clone();
        let clock = clock.clone();
        async move {
            let data = stamped(i, clock.ms());
            q.add(JOB, &data, opts()).await?;
            Ok(())
        }
    })
    .await;
    join_all(tasks).await?;
    lat.wait_for(JOBS, Duration::from_secs(120)).await?;
    worker.stop().await?;

    let v = lat.sorted();
    let ms = Metric::ms;
    Ok(vec![
        ms("p50Ms", "p50", percentile(&v, 50.0)),
        ms("p99Ms", "p99", percentile(&v, 99.0)),
        ms("maxMs", "max", v[v.len() - 1]),
        Metric {
            key: "sentPerSec",
            label: "sent",
            unit: "jobs/s",
            decimals: 0,
            value: JOBS as f64 / send_secs,
        },
    ])
}
