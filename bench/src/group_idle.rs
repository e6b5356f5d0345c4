//! Workload `groupidle`: what idle groups cost the claims of busy ones.
//!
//! 50,000 no-op jobs (as `c50`) spread round-robin over 10 busy groups (`busy-0` …
//! `busy-9`), run by one worker at concurrency 50 until Redis has recorded all 50,000
//! completions, on a queue whose group default is a rate of 1 start per hour and whose busy
//! groups each override it with 1,000,000,000 per second (so they are never held back). Two
//! setups, each on a queue of its own, alternating which goes first from run to run:
//!
//! - A (`noIdle`): that config and the busy groups alone;
//! - B (`idle`): the same, plus N idle groups (default 100,000, `--idle N`) that each hold
//!   a waiting job but are parked by their rate limit. Made through the public API only:
//!   one job to each of `idle-0` … `idle-<N − 1>`, a worker until all N are completed (each
//!   group spends its one start of the hour), then one more job to each and a worker (no
//!   busy jobs yet) until `Queue::groups(0).limited` reaches N (every idle group was parked
//!   at its turn). Only then are the busy jobs added. The parking runs 50 workers at once:
//!   a claim parks at most 200 groups, and an idle worker claims once a second, so one
//!   worker would take ~500 s for 100,000 groups.
//!
//! `groupidleprof`: A, B, then A again after B, each busy run with every call logged (as
//! `groupprof`): Redis time per job by script.
//!
//! Only the busy run is timed (from the worker's start to the last completion, as `c50`);
//! the setup is not. Figures: jobs per second and Redis CPU (`INFO cpu` user + sys) per job
//! of each setup, and the ratios B / A of each run. The acceptance figure: B's Redis CPU
//! per job within 1.5x of A's.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use queue_core::{GroupLimitChange, JobOptions, NewJob, Queue};

use crate::flow_profile::{profiled, report, Sample, PER_JOB};
use crate::flows::{figure, open, CONCURRENCY};
use crate::redis_server::{RunEnv, Target};
use crate::stats::Metric;
use crate::workloads::{noop_worker, payload, run_worker, Phase};

/// Busy jobs per setup, as `c50`.
pub const JOBS: usize = 50_000;
/// The groups the busy jobs go round.
pub const BUSY_GROUPS: usize = 10;
/// Idle groups in setup B unless `--idle` says otherwise.
pub const DEFAULT_IDLE: usize = 100_000;
/// The most idle groups `--idle` takes.
pub const MAX_IDLE: usize = 1_000_000;
/// Jobs per `add_bulk` call while making the idle groups.
const ADD_CHUNK: usize = 10_000;
/// Workers parking the idle groups at once. A claim parks at most 200 groups (its
/// `GROUP_MISSES`), and a worker that found nothing claims again only after its idle wait
/// (1 s: nothing is due for an hour): one worker would take ~500 s for 100,000 groups.
const PARKERS: usize = 50;
/// How long a setup step may take before the workload gives up.
const SETUP_LIMIT: Duration = Duration::from_secs(900);

pub fn describe() -> &'static str {
    "50,000 no-op jobs over 10 busy groups at concurrency 50, without vs with N idle \
     (rate-parked) groups"
}

/// The group default (1 start per hour) and the busy groups' overrides (1e9 per second).
async fn configure(q: &Queue) -> Result<()> {
    let hour = Duration::from_secs(3600);
    q.set_group_limit(
        None,
        GroupLimitChange::Rate {
            max: 1,
            window: hour,
        },
    )
    .await?;
    for g in 0..BUSY_GROUPS {
        let change = GroupLimitChange::Rate {
            max: 1_000_000_000,
            window: Duration::from_secs(1),
        };
        q.set_group_limit(Some(&format!("busy-{g}")), change)
            .await?;
    }
    Ok(())
}

/// Adds one no-op job to each of `idle-0` … `idle-<n − 1>`, by `add_bulk` in chunks.
async fn add_idle(q: &Queue, n: usize) -> Result<()> {
    let mut start = 0;
    while start < n {
        let end = (start + ADD_CHUNK).min(n);
        let jobs = (start..end)
            .map(|i| {
                let opts = JobOptions::new().group(format!("idle-{i}"));
                Ok(NewJob::new("diag.noop", &payload(i), opts)?)
            })
            .collect::<Result<Vec<_>>>()?;
        let added = q.add_bulk(jobs).await?;
        if added.len() != end - start {
            bail!("add_bulk stored {} jobs, not {}", added.len(), end - start);
        }
        start = end;
    }
    Ok(())
}

/// Adds the `JOBS` busy jobs, round-robin over `busy-0` … `busy-9`.
async fn add_busy(q: &Queue) -> Result<()> {
    let jobs = (0..JOBS)
        .map(|i| {
            let opts = JobOptions::new().group(format!("busy-{}", i % BUSY_GROUPS));
            Ok(NewJob::new("diag.noop", &payload(i), opts)?)
        })
        .collect::<Result<Vec<_>>>()?;
    let added = q.add_bulk(jobs).await?;
    if added.len() != JOBS {
        bail!("add_bulk stored {} jobs, not {JOBS}", added.len());
    }
    Ok(())
}

/// Runs [`PARKERS`] no-op workers on `q` until `q.groups(0).limited` reaches `n`; stops
/// them then.
async fn park(env: &RunEnv, q: &Queue, n: usize) -> Result<()> {
    let mut running = Vec::with_capacity(PARKERS);
    for _ in 0..PARKERS {
        let worker = noop_worker(env, std::slice::from_ref(q), CONCURRENCY)?;
        running.push((worker.shutdown_token(), tokio::spawn(worker.run())));
    }
    let start = Instant::now();
    let mut parked = Ok(());
    loop {
        let limited = q.groups(0).await?.limited as usize;
        if limited >= n {
            break;
        }
        if start.elapsed() > SETUP_LIMIT {
            parked = Err(anyhow::anyhow!(
                "parking the idle groups did not finish: {limited} of {n} parked"
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (stop, _) in &running {
        stop.cancel();
    }
    for (_, handle) in running {
        handle.await??;
    }
    parked
}

/// Makes `n` idle groups on `q`: each with one waiting job, parked by its rate limit.
async fn make_idle(env: &RunEnv, q: &Queue, n: usize) -> Result<()> {
    let t = Instant::now();
    add_idle(q, n).await?;
    // each group spends its one start of the hour
    run_worker(env, std::slice::from_ref(q), CONCURRENCY, n).await?;
    let spent = t.elapsed().as_secs_f64();
    add_idle(q, n).await?;
    park(env, q, n).await?;
    let view = q.groups(0).await?;
    if (view.limited as usize) < n || (view.with_waiting as usize) < n {
        bail!(
            "the idle groups are not all parked with a waiting job: {} parked, {} with waiting",
            view.limited,
            view.with_waiting
        );
    }
    eprintln!(
        "  [groupidle] setup: {n} idle groups ({spent:.1} s to spend their starts, {:.1} s \
         in all)",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One setup on a queue of its own (`idle` idle groups, 0 for A): the config, the idle
/// groups, then the busy jobs, not run yet.
async fn prepare(env: &RunEnv, name: &str, idle: usize) -> Result<Vec<Queue>> {
    let queues = open(env, &[name]).await?;
    let q = &queues[0];
    configure(q).await?;
    if idle > 0 {
        make_idle(env, q, idle).await?;
    }
    add_busy(q).await?;
    Ok(queues)
}

/// The busy run of a prepared setup: to the last completion (the idle groups' first jobs
/// are completed already, so at `idle` + JOBS), then checks the idle groups stayed parked.
async fn busy_run(env: &RunEnv, queues: &[Queue], idle: usize) -> Result<Phase> {
    let phase = run_worker(env, queues, CONCURRENCY, idle + JOBS).await?;
    let q = &queues[0];
    let view = q.groups(0).await?;
    if (view.limited as usize) < idle {
        bail!(
            "idle groups were unparked during the run: {} of {idle} still parked",
            view.limited
        );
    }
    let completed = q.counts().await?.completed_total as usize;
    if completed != idle + JOBS {
        bail!("{completed} jobs completed, not {}", idle + JOBS);
    }
    Ok(phase)
}

async fn setup_and_run(env: &RunEnv, name: &str, idle: usize) -> Result<Phase> {
    let queues = prepare(env, name, idle).await?;
    busy_run(env, &queues, idle).await
}

/// Workload `groupidle`: A (busy groups alone) and B (plus `idle` idle groups), one run
/// of each, alternating which goes first.
pub async fn overhead(env: &RunEnv, idle: usize) -> Result<Vec<Metric>> {
    let n = JOBS;
    let (a, b) = env
        .both(
            setup_and_run(env, "noidle", 0),
            setup_and_run(env, "idle", idle),
        )
        .await?;
    let per = |s: f64| s / n as f64 * 1e6;
    Ok(vec![
        figure("noIdleJobsPerSec", "A no idle", "jobs/s", n as f64 / a.secs),
        figure("noIdleRedisUs", "A Redis", "µs/job", per(a.redis_cpu_secs)),
        figure("idleJobsPerSec", "B idle", "jobs/s", n as f64 / b.secs),
        figure("idleRedisUs", "B Redis", "µs/job", per(b.redis_cpu_secs)),
        figure("ratioRate", "rate B/A", "x", a.secs / b.secs),
        figure(
            "ratioRedis",
            "Redis CPU B/A",
            "x",
            b.redis_cpu_secs / a.redis_cpu_secs,
        ),
    ])
}

/// Workload `groupidleprof`: `runs` times A, then B, then A again on a third queue (to
/// tell B's idle groups from the bigger server B leaves behind), each busy run with every
/// call logged (as `groupprof`; a private server only); prints the per-job medians and one
/// JSON line.
pub async fn profile(server: &Target, runs: usize, idle: usize) -> Result<()> {
    let n = JOBS;
    // phases: A, B, A after B
    let mut phases: [Vec<Sample>; 3] = Default::default();
    for run in 0..runs {
        let env = server.fresh_run(run).await?;
        if !env.private {
            bail!("groupidleprof changes the server's slowlog settings: run it without REDIS_URL");
        }
        let e = &env;
        for (k, (name, idle)) in [("noidle", 0), ("idle", idle), ("noidle2", 0)]
            .into_iter()
            .enumerate()
        {
            let queues = prepare(e, name, idle).await?;
            phases[k].push(profiled(e, n, busy_run(e, &queues, idle)).await?);
        }
        eprintln!(
            "  [groupidleprof] run {}: Redis CPU µs/job, logging every call: A {:.1}, B {:.1}, \
             A after B {:.1}",
            run + 1,
            phases[0][run].cpu_us,
            phases[1][run].cpu_us,
            phases[2][run].cpu_us
        );
    }
    println!(
        "[groupidleprof] Redis time per job by script, 10 busy groups without / with {idle} \
         idle groups ({n} jobs, every call logged, medians of {runs} runs):"
    );
    let mut json = serde_json::Map::new();
    json.insert("workload".into(), "groupidleprof".into());
    json.insert("jobs".into(), n.into());
    json.insert("idle".into(), idle.into());
    json.insert("runs".into(), runs.into());
    let labels = [
        ("noIdleRun", "A run"),
        ("idleRun", "B run"),
        ("noIdleAfterRun", "A run after B"),
    ];
    for ((key, label), samples) in labels.iter().zip(&phases) {
        json.insert((*key).into(), report(label, samples, PER_JOB));
    }
    println!("{}", serde_json::Value::Object(json));
    Ok(())
}
