//! Group workloads: what fair shares between tenants cost over the same jobs without a group.
//!
//! - `grouped`: 50,000 no-op jobs (as `c50`) added by `add_bulk`, then run by one worker at
//!   concurrency 50 until Redis has recorded all 50,000 completions; once without a group
//!   and once spread round-robin over N groups (`JobOptions::group`, default 50,
//!   `--groups N`), no group limits set, so every claim walks the ring of groups. Each on a
//!   queue of its own; the two alternate which goes first from run to run. Only the run is
//!   timed (from the worker's start, as `c50`); figures: jobs per second, Redis CPU
//!   (`INFO cpu` user + sys) per job, and the ratios grouped / ungrouped of each run.
//! - `groupprof`: where Redis's time goes per job, ungrouped against grouped (every call
//!   logged, as `flowprof`; a private server only): per phase Redis CPU per job, then the
//!   clients' calls per job, a script by its file (`move_to_active`, `complete`, …) with
//!   the part of its time spent in the commands it ran, and the commands scripts ran.

use anyhow::{bail, Result};
use queue_core::{JobOptions, NewJob, Queue};

use crate::flow_profile::{profiled, report, Sample, PER_JOB};
use crate::flows::{figure, open, CONCURRENCY};
use crate::redis_server::{RunEnv, Target};
use crate::stats::Metric;
use crate::workloads::{payload, run_worker, Phase};

/// Jobs per phase, as `c50`.
pub const JOBS: usize = 50_000;
/// Groups unless `--groups` says otherwise.
pub const DEFAULT_GROUPS: usize = 50;
/// The most groups `--groups` takes (one job each at the least).
pub const MAX_GROUPS: usize = JOBS;

pub fn describe(w: &str) -> &'static str {
    match w {
        "grouped" => "50,000 no-op jobs at concurrency 50, ungrouped vs round-robin over N groups",
        "groupprof" => "Redis time per job by script and command, ungrouped vs N groups",
        _ => "?",
    }
}

/// The group of the `i`th job of `groups` (round-robin): `t0` … `t<groups − 1>`.
fn group_of(i: usize, groups: usize) -> String {
    format!("t{}", i % groups)
}

/// `n` no-op jobs with the peer's payload; with `groups` > 0, spread round-robin over that
/// many groups.
fn jobs(n: usize, groups: usize) -> Result<Vec<NewJob>> {
    (0..n)
        .map(|i| {
            let opts = if groups == 0 {
                JobOptions::new()
            } else {
                JobOptions::new().group(group_of(i, groups))
            };
            Ok(NewJob::new("diag.noop", &payload(i), opts)?)
        })
        .collect()
}

/// Adds `n` jobs to `q` by `add_bulk` (over `groups` groups, 0: none).
pub(crate) async fn add(q: &Queue, n: usize, groups: usize) -> Result<()> {
    let added = q.add_bulk(jobs(n, groups)?).await?;
    if added.len() != n {
        bail!("add_bulk stored {} jobs, not {n}", added.len());
    }
    Ok(())
}

/// A queue named `name` with `n` jobs over `groups` groups (0: none), run to the last
/// completion; returns the run phase.
async fn run(env: &RunEnv, name: &str, n: usize, groups: usize) -> Result<Phase> {
    let queues = open(env, &[name]).await?;
    add(&queues[0], n, groups).await?;
    run_worker(env, &queues, CONCURRENCY, n).await
}

/// Workload `grouped`: ungrouped and over `groups` groups, one run of each.
pub async fn overhead(env: &RunEnv, groups: usize) -> Result<Vec<Metric>> {
    let n = JOBS;
    let (plain, grouped) = env
        .both(run(env, "plain", n, 0), run(env, "grouped", n, groups))
        .await?;
    let per = |s: f64| s / n as f64 * 1e6;
    Ok(vec![
        figure(
            "plainJobsPerSec",
            "ungrouped",
            "jobs/s",
            n as f64 / plain.secs,
        ),
        figure(
            "plainRedisUs",
            "ungrouped Redis",
            "µs/job",
            per(plain.redis_cpu_secs),
        ),
        figure(
            "groupedJobsPerSec",
            "grouped",
            "jobs/s",
            n as f64 / grouped.secs,
        ),
        figure(
            "groupedRedisUs",
            "grouped Redis",
            "µs/job",
            per(grouped.redis_cpu_secs),
        ),
        figure(
            "ratioRate",
            "rate grouped/ungrouped",
            "x",
            plain.secs / grouped.secs,
        ),
        figure(
            "ratioRedis",
            "Redis CPU grouped/ungrouped",
            "x",
            grouped.redis_cpu_secs / plain.redis_cpu_secs,
        ),
    ])
}

/// Workload `groupprof`: `runs` times, `JOBS` jobs ungrouped then the same over `groups`
/// groups, each run with every call logged; prints the per-job medians and one JSON line.
pub async fn profile(server: &Target, runs: usize, groups: usize) -> Result<()> {
    let n = JOBS;
    // phases: ungrouped run, grouped run
    let mut phases: [Vec<Sample>; 2] = Default::default();
    for run in 0..runs {
        let env = server.fresh_run(run).await?;
        if !env.private {
            bail!("groupprof changes the server's slowlog settings: run it without REDIS_URL");
        }
        let plain = open(&env, &["plain"]).await?;
        let grouped = open(&env, &["grouped"]).await?;
        add(&plain[0], n, 0).await?;
        add(&grouped[0], n, groups).await?;
        let e = &env;
        phases[0].push(profiled(e, n, run_worker(e, &plain, CONCURRENCY, n)).await?);
        phases[1].push(profiled(e, n, run_worker(e, &grouped, CONCURRENCY, n)).await?);
        eprintln!(
            "  [groupprof] run {}: Redis CPU µs/job, logging every call: ungrouped {:.1}, \
             grouped {:.1}",
            run + 1,
            phases[0][run].cpu_us,
            phases[1][run].cpu_us
        );
    }
    println!(
        "[groupprof] {} ({n} jobs, {groups} groups, every call logged, medians of {runs} runs):",
        describe("groupprof")
    );
    let mut json = serde_json::Map::new();
    json.insert("workload".into(), "groupprof".into());
    json.insert("jobs".into(), n.into());
    json.insert("groups".into(), groups.into());
    json.insert("runs".into(), runs.into());
    let labels = [("plainRun", "ungrouped run"), ("groupedRun", "grouped run")];
    for ((key, label), samples) in labels.iter().zip(&phases) {
        json.insert((*key).into(), report(label, samples, PER_JOB));
    }
    println!("{}", serde_json::Value::Object(json));
    Ok(())
}
