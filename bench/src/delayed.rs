//! Workloads `f` and `fspread`: lateness of 1,000 jobs delayed 2 s, added in one burst
//! (add_bulk) or one at a time at 500/s, to a worker at concurrency 50 already running. The
//! handler records start time − (add time + 2,000 ms), add time taken just before the add
//! (the peer's `job.timestamp`, set client-side as the add is made).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use queue_core::{JobOptions, NewJob, Retention};

use crate::redis_server::RunEnv;
use crate::stats::{percentile, Metric};
use crate::timing::{join_all, steady, Clock, RecordingWorker, Samples, JOB};
use crate::workloads::{payload, queue};

const JOBS: usize = 1_000;
const DELAY_MS: u64 = 2_000;
const SPREAD_RATE: f64 = 500.0;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Burst,
    Spread,
}

fn opts(delay_ms: u64) -> JobOptions {
    JobOptions::new()
        .delay(Duration::from_millis(delay_ms))
        .remove_on_complete(Retention::REMOVE)
}

/// Add times (ms on the shared clock, as f64 bits) by payload `i`; index JOBS is the warm-up.
#[derive(Clone)]
struct AddTimes(Arc<Vec<AtomicU64>>);

impl AddTimes {
    fn new() -> AddTimes {
        AddTimes(Arc::new((0..=JOBS).map(|_| AtomicU64::new(0)).collect()))
    }
    fn set(&self, i: usize, ms: f64) {
        self.0[i].store(ms.to_bits(), Ordering::SeqCst);
    }
    fn get(&self, i: usize) -> f64 {
        f64::from_bits(self.0[i].load(Ordering::SeqCst))
    }
}

pub async fn run(env: &RunEnv, mode: Mode) -> Result<Vec<Metric>> {
    let q = queue(env).await?;
    let clock = Clock::new();
    let added = AddTimes::new();
    let delay_of = |i: usize| if i == JOBS { 100.0 } else { DELAY_MS as f64 };
    let late = Samples::default();
    let (c, a) = (clock.clone(), added.clone());
    let worker = RecordingWorker::start(env, late.clone(), move |data| {
        let now = c.ms();
        match data["i"].as_u64() {
            Some(i) if (i as usize) <= JOBS => now - (a.get(i as usize) + delay_of(i as usize)),
            _ => f64::NAN,
        }
    })?;
    // warm-up: one job delayed 100 ms through the running worker, then let it settle
    added.set(JOBS, clock.ms());
    q.add(JOB, &payload(JOBS), opts(100)).await?;
    late.wait_for(1, Duration::from_secs(120)).await?;
    late.clear();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut add_ms = None;
    match mode {
        Mode::Burst => {
            let jobs = (0..JOBS)
                .map(|i| Ok(NewJob::new(JOB, &payload(i), opts(DELAY_MS))?))
                .collect::<Result<Vec<_>>>()?;
            let t = clock.ms();
            for i in 0..JOBS {
                added.set(i, t);
            }
            q.add_bulk(jobs).await?;
            add_ms = Some(clock.ms() - t);
        }
        Mode::Spread => {
            let (tasks, _) = steady(JOBS, SPREAD_RATE, |i| {
                let (q, clock, added) = (q.clone(), clock.clone(), added.clone());
                async move {
                    let data = payload(i);
                    added.set(i, clock.ms());
                    q.add(JOB, &data, opts(DELAY_MS)).await?;
                    Ok(())
                }
            })
            .await;
            join_all(tasks).await?;
        }
    }
    late.wait_for(JOBS, Duration::from_secs(30)).await?;
    worker.stop().await?;

    let v = late.sorted();
    let ms = Metric::ms;
    let mut out = vec![
        ms("p50Ms", "p50", percentile(&v, 50.0)),
        ms("p99Ms", "p99", percentile(&v, 99.0)),
        ms("maxMs", "max", v[v.len() - 1]),
        ms("minMs", "min", v[0]),
    ];
    // the burst's due times are set as Redis runs the add, so its round trip is in every
    // job's lateness
    if let Some(a) = add_ms {
        out.push(ms("addBulkMs", "add_bulk took", a));
    }
    Ok(out)
}
