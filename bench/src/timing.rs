//! Shared pieces of the timed workloads (d, f, fspread): one clock for sender and handler,
//! the peer's open-loop steady-rate sender, and a worker that records one sample per job.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use queue_core::worker::CancellationToken;
use queue_core::{Ctx, Job, JobError, Worker};
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::redis_server::RunEnv;

/// Job name the timed workloads add and handle.
pub const JOB: &str = "bench.timed";
/// The peer's worker concurrency for d, f and fspread.
const CONCURRENCY: usize = 50;

/// Sender and handler run in one process: both read ms since one shared `Instant`.
#[derive(Clone)]
pub struct Clock(Arc<Instant>);

impl Clock {
    pub fn new() -> Clock {
        Clock(Arc::new(Instant::now()))
    }
    /// Milliseconds since the clock was made (fractional, like `performance.now()`).
    pub fn ms(&self) -> f64 {
        self.0.elapsed().as_secs_f64() * 1000.0
    }
}

/// Samples (ms) recorded by handlers.
#[derive(Clone, Default)]
pub struct Samples(Arc<Mutex<Vec<f64>>>);

impl Samples {
    pub fn push(&self, x: f64) {
        self.0.lock().expect("samples lock").push(x);
    }
    pub fn len(&self) -> usize {
        self.0.lock().expect("samples lock").len()
    }
    pub fn clear(&self) {
        self.0.lock().expect("samples lock").clear();
    }
    /// Sorted copy.
    pub fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.lock().expect("samples lock").clone();
        v.sort_by(|a, b| a.total_cmp(b));
        v
    }
    /// Polls every 5 ms until `n` samples are in.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        while self.len() < n {
            if start.elapsed() > timeout {
                bail!("timed out waiting for {n} jobs: {} ran", self.len());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }
}

/// A running worker on the `bench` queue at concurrency 50 whose handler, as it starts,
/// pushes `sample(&job.data)` into `samples`.
pub struct RecordingWorker {
    stop: CancellationToken,
    handle: JoinHandle<queue_core::Result<()>>,
}

impl RecordingWorker {
    pub fn start<F>(env: &RunEnv, samples: Samples, sample: F) -> Result<RecordingWorker>
    where
        F: Fn(&Value) -> f64 + Send + Sync + 'static,
    {
        let sample = Arc::new(sample);
        let worker = Worker::builder(env.config.clone())
            .redis(env.redis.clone())
            .queues(["bench"])
            .concurrency(CONCURRENCY)
            .handler(JOB, move |j: Job<Value>, _c: Ctx| {
                samples.push(sample(&j.data));
                async { Ok::<_, JobError>(()) }
            })
            .build()?;
        let stop = worker.shutdown_token();
        let handle = tokio::spawn(worker.run());
        Ok(RecordingWorker { stop, handle })
    }

    pub async fn stop(self) -> Result<()> {
        self.stop.cancel();
        self.handle.await??;
        Ok(())
    }
}

/// The peer's open-loop sender: starts `send(i)` for i in 0..n at `rate` per second without
/// waiting for earlier sends, catching up every ~1 ms tick. Returns the spawned sends and the
/// seconds the sending took.
pub async fn steady<F, Fut>(n: usize, rate: f64, mut send: F) -> (Vec<JoinHandle<Result<()>>>, f64)
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let interval_ms = 1000.0 / rate;
    let start = Instant::now();
    let mut sent = 0;
    let mut tasks = Vec::with_capacity(n);
    loop {
        let elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
        let due = n.min((elapsed_ms / interval_ms).floor() as usize + 1);
        while sent < due {
            tasks.push(tokio::spawn(send(sent)));
            sent += 1;
        }
        if sent >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (tasks, start.elapsed().as_secs_f64())
}

/// Awaits the spawned sends, failing on the first error.
pub async fn join_all(tasks: Vec<JoinHandle<Result<()>>>) -> Result<()> {
    for t in tasks {
        t.await??;
    }
    Ok(())
}
