//! Flow workloads: what a flow costs over the same jobs added and run as plain jobs.
//!
//! - `flow` / `flow2q`: N no-op children (default 10,000, `--children N`) under one no-op
//!   parent, added as one flow (`FlowProducer::add`), then run by one worker at
//!   concurrency 50 until Redis has recorded the parent's completion; against the same N
//!   jobs added by `add_bulk` and run by the same kind of worker until all N are recorded.
//!   `flow2q` spreads the children (and the plain jobs) over two queues, the parent on the
//!   first. Only the run is timed (from the worker's start, as `c50`); figures per child:
//!   wall time, children per second, Redis CPU (`INFO cpu` user + sys) per child, and the
//!   ratios flow / plain of each run. The two alternate which goes first from run to run.
//! - `flowadd`: the time to add an N-child flow, and Redis CPU per child, against
//!   `add_bulk` of the same N jobs.
//! - `flowprof` (`flow_profile.rs`): where Redis's time goes per child, by script.

use std::time::Instant;

use anyhow::{bail, Result};
use queue_core::{FlowJob, FlowProducer, Queue};
use serde_json::json;

use crate::redis_info;
use crate::redis_server::RunEnv;
use crate::stats::Metric;
use crate::workloads::{bulk_jobs, payload, run_worker, Phase};

/// Children per flow unless `--children` says otherwise (the most one parent may have).
pub const DEFAULT_CHILDREN: usize = queue_core::flow::MAX_CHILDREN;
/// As the plain processing workload `c50`.
pub(crate) const CONCURRENCY: usize = 50;

pub fn describe(w: &str) -> &'static str {
    match w {
        "flow" => "N-child flow vs N plain jobs, run at concurrency 50, one queue",
        "flow2q" => "N-child flow vs N plain jobs, run at concurrency 50, children over 2 queues",
        "flowadd" => "adding an N-child flow vs add_bulk of N jobs",
        "flowprof" => "Redis time per child by script and command, plain vs flow",
        _ => "?",
    }
}

pub(crate) async fn open(env: &RunEnv, names: &[&str]) -> Result<Vec<Queue>> {
    let mut queues = Vec::with_capacity(names.len());
    for name in names {
        queues.push(Queue::open(&env.redis, env.config.prefix(), name).await?);
    }
    Ok(queues)
}

/// One no-op parent on `queues[0]` whose `n` no-op children go round the queues.
fn flow(queues: &[Queue], n: usize) -> Result<FlowJob> {
    let children = (0..n)
        .map(|i| FlowJob::new(queues[i % queues.len()].name(), "diag.noop", &payload(i)))
        .collect::<queue_core::Result<Vec<_>>>()?;
    Ok(FlowJob::new(queues[0].name(), "diag.noop", &json!({"children": n}))?.children(children))
}

/// Adds `n` plain jobs by `add_bulk`, split over `queues` as `q4` splits them.
pub(crate) async fn add_plain(env: &RunEnv, queues: &[Queue], n: usize) -> Result<Phase> {
    let mut jobs = bulk_jobs(n)?;
    let per_queue = n.div_ceil(queues.len());
    let cpu0 = redis_info::cpu_secs(env).await?;
    let start = Instant::now();
    for q in queues {
        let rest = jobs.split_off(jobs.len().saturating_sub(per_queue));
        q.add_bulk(rest).await?;
    }
    timed(env, start, cpu0).await
}

/// Adds an `n`-child flow over `queues` in one `FlowProducer::add`.
pub(crate) async fn add_flow(env: &RunEnv, queues: &[Queue], n: usize) -> Result<Phase> {
    let tree = flow(queues, n)?;
    let producer = FlowProducer::new(&env.redis, env.config.prefix());
    let cpu0 = redis_info::cpu_secs(env).await?;
    let start = Instant::now();
    let added = producer.add(tree).await?;
    if added.children.len() != n {
        bail!(
            "the flow was stored with {} children, not {n}",
            added.children.len()
        );
    }
    timed(env, start, cpu0).await
}

async fn timed(env: &RunEnv, start: Instant, cpu0: f64) -> Result<Phase> {
    let secs = start.elapsed().as_secs_f64();
    Ok(Phase {
        secs,
        redis_cpu_secs: redis_info::cpu_secs(env).await? - cpu0,
    })
}

/// Plain: `n` jobs added then run. Flow: an `n`-child flow added then run to its parent's
/// completion (`n` + 1 jobs). Returns the run phase.
async fn run_plain(env: &RunEnv, names: &[&str], n: usize) -> Result<Phase> {
    let queues = open(env, names).await?;
    add_plain(env, &queues, n).await?;
    run_worker(env, &queues, CONCURRENCY, n).await
}

async fn run_flow(env: &RunEnv, names: &[&str], n: usize) -> Result<Phase> {
    let queues = open(env, names).await?;
    add_flow(env, &queues, n).await?;
    run_worker(env, &queues, CONCURRENCY, n + 1).await
}

pub(crate) fn figure(
    key: &'static str,
    label: &'static str,
    unit: &'static str,
    value: f64,
) -> Metric {
    let decimals = match unit {
        "x" => 2,
        "µs/child" | "µs/job" | "ms" => 1,
        _ => 0,
    };
    Metric {
        key,
        label,
        unit,
        decimals,
        value,
    }
}

/// Workload `flow` (`two_queues` false) or `flow2q`.
pub async fn overhead(env: &RunEnv, n: usize, two_queues: bool) -> Result<Vec<Metric>> {
    let (plain_q, flow_q): (&[&str], &[&str]) = if two_queues {
        (&["plain0", "plain1"], &["flow0", "flow1"])
    } else {
        (&["plain0"], &["flow0"])
    };
    let (plain, flow) = env
        .both(run_plain(env, plain_q, n), run_flow(env, flow_q, n))
        .await?;
    let per = |s: f64| s / n as f64 * 1e6;
    Ok(vec![
        figure("plainMs", "plain run", "ms", plain.secs * 1e3),
        figure("plainJobsPerSec", "plain", "jobs/s", n as f64 / plain.secs),
        figure(
            "plainRedisUs",
            "plain Redis",
            "µs/job",
            per(plain.redis_cpu_secs),
        ),
        figure("flowMs", "flow run", "ms", flow.secs * 1e3),
        figure(
            "flowChildrenPerSec",
            "flow",
            "children/s",
            n as f64 / flow.secs,
        ),
        figure(
            "flowRedisUs",
            "flow Redis",
            "µs/child",
            per(flow.redis_cpu_secs),
        ),
        figure("ratioTime", "time flow/plain", "x", flow.secs / plain.secs),
        figure(
            "ratioRedis",
            "Redis CPU flow/plain",
            "x",
            flow.redis_cpu_secs / plain.redis_cpu_secs,
        ),
    ])
}

/// Workload `flowadd`.
pub async fn add(env: &RunEnv, n: usize) -> Result<Vec<Metric>> {
    let plain_q = open(env, &["plain0"]).await?;
    let flow_q = open(env, &["flow0"]).await?;
    let (plain, flow) = env
        .both(add_plain(env, &plain_q, n), add_flow(env, &flow_q, n))
        .await?;
    let per = |s: f64| s / n as f64 * 1e6;
    Ok(vec![
        figure("flowAddMs", "flow add", "ms", flow.secs * 1e3),
        figure(
            "flowAddChildrenPerSec",
            "flow add",
            "children/s",
            n as f64 / flow.secs,
        ),
        figure(
            "flowAddRedisUs",
            "flow add Redis",
            "µs/child",
            per(flow.redis_cpu_secs),
        ),
        figure("bulkAddMs", "add_bulk", "ms", plain.secs * 1e3),
        figure(
            "bulkAddRedisUs",
            "add_bulk Redis",
            "µs/job",
            per(plain.redis_cpu_secs),
        ),
        figure(
            "ratioTime",
            "time flow/add_bulk",
            "x",
            flow.secs / plain.secs,
        ),
        figure(
            "ratioRedis",
            "Redis CPU flow/add_bulk",
            "x",
            flow.redis_cpu_secs / plain.redis_cpu_secs,
        ),
    ])
}
