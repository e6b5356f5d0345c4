//! jobq benchmarks, the same workloads as the BullMQ benchmark in `bench/bullmq/` (run it
//! with `bench/bullmq/run`), so the two can run back to back on one machine.
//!
//! `cargo run --release -p jobq-bench -- [workloads…] [--runs N] [--children N] [--groups N]
//! [--idle N]`
//!
//! Workloads: `a` (50,000 single adds, 1,000 in flight), `b` (50,000 by add_bulk in chunks
//! of 1,000), `c50` / `c1` (50,000 pre-added no-op jobs processed at concurrency 50 / 1), `c50rm` (as `c50`, the jobs added with removeOnComplete, as the peer's),
//! `floorb` / `floorc50` (the same adds and processing through bare stream commands, no
//! job hash and no Lua: the floor of a fast lane, `floor.rs`),
//! `d` (add→handler-start latency, 2,000 jobs at 500/s, concurrency 50), `e` (Redis bytes
//! per waiting job, 50,000 jobs), `f` / `fspread` (lateness of 1,000 jobs delayed 2 s, added
//! in one burst / at 500/s), `q4` (50,000 no-op jobs over 4 queues at concurrency 50: run it
//! with `REDIS_URL` on a Redis Cluster node and on one Redis to compare the two), and the
//! flow workloads `flow`, `flow2q`, `flowadd` (`flows.rs`) and `flowprof`
//! (`flow_profile.rs`), over N children (`--children N`, default 10,000), and the group
//! workloads `grouped` (`groups.rs`: 50,000 no-op jobs at concurrency 50, ungrouped against
//! spread round-robin over N groups, `--groups N`, default 50) and `groupprof` (the same,
//! Redis time by script, as `flowprof`), and `groupidle` (`group_idle.rs`: 50,000 no-op jobs
//! over 10 busy groups, without against with N rate-parked idle groups, `--idle N`, default
//! 100,000) and `groupidleprof` (the same, Redis time by script). Default: all but `fspread`, `q4`, the flow ones
//! and the group ones, as `bench/bullmq/run`. Uses `REDIS_URL` when set (each
//! run under a fresh key prefix), otherwise starts a private `redis-server` (no persistence,
//! noeviction) on a free port and flushes it between runs. Each workload prints one human
//! line and one JSON line.

mod delayed;
mod floor;
mod flow_profile;
mod flows;
mod group_idle;
mod groups;
mod latency;
mod memory;
mod redis_info;
mod redis_server;
mod stats;
mod timing;
mod workloads;

use anyhow::{bail, Result};

use crate::redis_server::RunEnv;
use crate::stats::{round_to, Metric, Summary};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ALL: [&str; 20] = [
    "a",
    "b",
    "c50",
    "c50rm",
    "c1",
    "floorb",
    "floorc50",
    "d",
    "e",
    "f",
    "fspread",
    "q4",
    "flow",
    "flow2q",
    "flowadd",
    "flowprof",
    "grouped",
    "groupprof",
    "groupidle",
    "groupidleprof",
];
const DEFAULT: [&str; 7] = ["a", "b", "c50", "c1", "d", "e", "f"];
/// Workloads measured in jobs per second; the others report named figures ([`Metric`]).
const RATES: [&str; 8] = ["a", "b", "c50", "c50rm", "c1", "q4", "floorb", "floorc50"];

fn describe(w: &str) -> &'static str {
    match w {
        "d" => "add→handler-start latency, 2,000 jobs at 500/s, concurrency 50",
        "e" => "Redis bytes per waiting job, 50,000 jobs by add_bulk",
        "f" => "lateness of 1,000 jobs delayed 2 s, added in one burst",
        "fspread" => "lateness of 1,000 jobs delayed 2 s, added at 500/s",
        w if w.starts_with("floor") => floor::describe(w),
        w if w.starts_with("flow") => flows::describe(w),
        "groupidle" => group_idle::describe(),
        "groupidleprof" => "Redis time per job by script, without vs with N idle groups",
        w if w.starts_with("group") => groups::describe(w),
        w => workloads::describe(w),
    }
}

/// The sizes the workloads take from the command line.
#[derive(Clone, Copy)]
struct Sizes {
    children: usize,
    groups: usize,
    idle: usize,
}

async fn run_metrics(w: &str, env: &RunEnv, sizes: Sizes) -> Result<Vec<Metric>> {
    let children = sizes.children;
    match w {
        "grouped" => groups::overhead(env, sizes.groups).await,
        "groupidle" => group_idle::overhead(env, sizes.idle).await,
        "flow" => flows::overhead(env, children, false).await,
        "flow2q" => flows::overhead(env, children, true).await,
        "flowadd" => flows::add(env, children).await,
        "d" => latency::run(env).await,
        "e" => memory::run(env).await,
        "f" => delayed::run(env, delayed::Mode::Burst).await,
        "fspread" => delayed::run(env, delayed::Mode::Spread).await,
        other => bail!("unknown workload {other}"),
    }
}

fn fmt(x: f64, decimals: usize) -> String {
    format!("{x:.decimals$}")
}

/// `p50 median 1.20 ms (min 1.10, max 1.31)`; the label is left out when empty.
fn human(label: &str, unit: &str, decimals: usize, s: &Summary) -> String {
    let label = if label.is_empty() {
        String::new()
    } else {
        format!("{label} ")
    };
    format!(
        "{label}median {} {unit} (min {}, max {})",
        fmt(s.median, decimals),
        fmt(s.min, decimals),
        fmt(s.max, decimals)
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut runs = 3usize;
    let mut children = flows::DEFAULT_CHILDREN;
    let mut n_groups = groups::DEFAULT_GROUPS;
    let mut idle = group_idle::DEFAULT_IDLE;
    let mut chosen: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| anyhow::anyhow!("--runs needs a positive number"))?;
            }
            "--children" => {
                let max = queue_core::flow::MAX_CHILDREN;
                let given = args.next().unwrap_or_default();
                children = given
                    .parse()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        anyhow::anyhow!("--children {given:?}: give a number from 1 to {max}")
                    })?;
            }
            "--groups" => {
                let max = groups::MAX_GROUPS;
                let given = args.next().unwrap_or_default();
                n_groups = given
                    .parse()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        anyhow::anyhow!("--groups {given:?}: give a number from 1 to {max}")
                    })?;
            }
            "--idle" => {
                let max = group_idle::MAX_IDLE;
                let given = args.next().unwrap_or_default();
                idle = given
                    .parse()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        anyhow::anyhow!("--idle {given:?}: give a number from 1 to {max}")
                    })?;
            }
            "-h" | "--help" => {
                println!(
                    "usage: jobq-bench [a|b|c50|c50rm|c1|floorb|floorc50|d|e|f|fspread|q4|flow|flow2q|flowadd|flowprof|\
                     grouped|groupprof|groupidle|groupidleprof …] [--runs N] [--children N] [--groups N] [--idle N]"
                );
                return Ok(());
            }
            w if ALL.contains(&w) => chosen.push(w.to_string()),
            other => bail!("unknown workload {other:?}: use one of {ALL:?}"),
        }
    }
    if chosen.is_empty() {
        chosen = DEFAULT.iter().map(|s| s.to_string()).collect();
    }
    let server = redis_server::Target::from_env()?;
    eprintln!("redis: {} ({} runs per workload)", server.describe(), runs);
    for w in &chosen {
        if w == "flowprof" {
            flow_profile::run(&server, runs, children).await?;
            continue;
        }
        if w == "groupidleprof" {
            group_idle::profile(&server, runs, idle).await?;
            continue;
        }
        if w == "groupprof" {
            groups::profile(&server, runs, n_groups).await?;
            continue;
        }
        if !RATES.contains(&w.as_str()) {
            metric_workload(
                w,
                &server,
                runs,
                Sizes {
                    children,
                    groups: n_groups,
                    idle,
                },
            )
            .await?;
            continue;
        }
        let (mut samples, mut cpu) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
        for run in 0..runs {
            let env = server.fresh_run(run).await?;
            let r = if w.starts_with("floor") {
                floor::run(w, &env).await?
            } else {
                workloads::run(w, &env).await?
            };
            eprintln!(
                "  [{w}] run {}: {:.0} jobs/s, Redis {:.2} µs/job",
                run + 1,
                r.per_sec,
                r.redis_us
            );
            samples.push(r.per_sec);
            cpu.push(r.redis_us);
        }
        let (s, c) = (Summary::of(&samples), Summary::of(&cpu));
        println!(
            "[{w}] {}: median {:.0} jobs/s (min {:.0}, max {:.0}); Redis CPU median {:.2} µs/job (min {:.2}, max {:.2})",
            describe(w),
            s.median,
            s.min,
            s.max,
            c.median,
            c.min,
            c.max
        );
        println!(
            "{}",
            serde_json::json!({
                "workload": w,
                "jobsPerSec": {"median": s.median.round(), "min": s.min.round(), "max": s.max.round()},
                "redisUsPerJob": {"median": round_to(c.median, 2), "min": round_to(c.min, 2), "max": round_to(c.max, 2)},
                "runs": runs,
            })
        );
    }
    Ok(())
}

/// Runs a figure-reporting workload `runs` times and prints one human line (median, min and
/// max per figure) and one JSON line.
async fn metric_workload(
    w: &str,
    server: &redis_server::Target,
    runs: usize,
    sizes: Sizes,
) -> Result<()> {
    let mut per_run: Vec<Vec<Metric>> = Vec::with_capacity(runs);
    for run in 0..runs {
        let env = server.fresh_run(run).await?;
        let m = run_metrics(w, &env, sizes).await?;
        let line: Vec<String> = m
            .iter()
            .map(|m| {
                let label = if m.label.is_empty() { "" } else { m.label };
                format!("{label} {} {}", fmt(m.value, m.decimals), m.unit)
                    .trim()
                    .to_string()
            })
            .collect();
        eprintln!("  [{w}] run {}: {}", run + 1, line.join(", "));
        per_run.push(m);
    }
    let mut parts = Vec::new();
    let mut json = serde_json::Map::new();
    json.insert("workload".into(), w.into());
    for (k, first) in per_run[0].iter().enumerate() {
        let values: Vec<f64> = per_run.iter().map(|r| r[k].value).collect();
        let s = Summary::of(&values);
        parts.push(human(first.label, first.unit, first.decimals, &s));
        let d = first.decimals;
        json.insert(
            first.key.into(),
            serde_json::json!({
                "median": round_to(s.median, d),
                "min": round_to(s.min, d),
                "max": round_to(s.max, d),
            }),
        );
    }
    json.insert("runs".into(), runs.into());
    println!("[{w}] {}: {}", describe(w), parts.join("; "));
    println!("{}", serde_json::Value::Object(json));
    Ok(())
}
