//! Workload `flowprof`: where Redis's time goes per child, plain jobs against one flow.
//!
//! Each run adds N plain jobs (add_bulk) and runs them, then adds an N-child flow and runs
//! it (as `flow`), with every Redis call logged (slowlog at threshold 0, so a private
//! server only). Per phase it reports Redis CPU per child (`INFO cpu`), then the clients'
//! calls per child, a script by its file (`complete`, `settle`, …) with the part of its time
//! spent in the commands it ran (the rest is Lua), and the commands scripts ran; medians
//! over the runs. Logging every call costs Redis time too (most where scripts run many
//! commands), so the CPU here is above the `flow` workload's: compare the groups with each
//! other, not with it.

use std::collections::{BTreeSet, HashMap};

use anyhow::{bail, Result};

use crate::flows::{add_flow, add_plain, open, CONCURRENCY};
use crate::redis_info::{self, CallLog, Cost};
use crate::redis_server::{RunEnv, Target};
use crate::stats::Summary;
use crate::workloads::{run_worker, Phase};

/// Groups printed per phase.
const TOP_CALLS: usize = 8;
const TOP_COMMANDS: usize = 6;
/// Room in the slowlog: a 10,000-child flow's add logs ~130,000 entries.
const LOG_ENTRIES: u64 = 2_000_000;

/// What the figures are per: a flow's child, or a job (`groupprof`, `groups.rs`).
#[derive(Clone, Copy)]
pub(crate) struct Per {
    /// In the human lines: `µs/child`.
    word: &'static str,
    /// In the JSON keys: `usPerChild`.
    key: &'static str,
}

pub(crate) const PER_CHILD: Per = Per {
    word: "child",
    key: "Child",
};
pub(crate) const PER_JOB: Per = Per {
    word: "job",
    key: "Job",
};

/// One group's figures per child in one run.
#[derive(Clone, Copy, Default)]
struct Group {
    us: f64,
    calls: f64,
    /// For a script: µs in the commands it ran.
    commands_us: f64,
}

/// One phase of one run, per child.
pub(crate) struct Sample {
    ms: f64,
    pub(crate) cpu_us: f64,
    calls: HashMap<String, Group>,
    in_scripts: HashMap<String, Group>,
    commandstats: HashMap<String, Group>,
}

fn per_child(groups: &HashMap<String, Cost>, n: usize) -> HashMap<String, Group> {
    groups
        .iter()
        .map(|(k, c)| {
            let g = Group {
                us: c.usec as f64 / n as f64,
                calls: c.calls as f64 / n as f64,
                commands_us: 0.0,
            };
            (k.clone(), g)
        })
        .collect()
}

/// Runs `what` with every call logged; its figures per each of its `n` children (or jobs).
pub(crate) async fn profiled<F>(env: &RunEnv, n: usize, what: F) -> Result<Sample>
where
    F: std::future::Future<Output = Result<Phase>>,
{
    let log = CallLog::start(env, LOG_ENTRIES).await?;
    let before = redis_info::commandstats(env).await?;
    let phase = what.await?;
    let after = redis_info::commandstats(env).await?;
    let logged = log.finish(env).await?;
    let mut calls = per_child(&logged.top, n);
    for (k, g) in calls.iter_mut() {
        g.commands_us = logged.inner.get(k).copied().unwrap_or(0) as f64 / n as f64;
    }
    Ok(Sample {
        ms: phase.secs * 1e3,
        cpu_us: phase.redis_cpu_secs * 1e6 / n as f64,
        calls,
        in_scripts: per_child(&logged.in_scripts, n),
        commandstats: per_child(&redis_info::delta(&before, &after), n),
    })
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    Summary::of(&values.collect::<Vec<_>>()).median
}

/// Per group, the medians over the runs (a group missing from a run counts 0 there),
/// costliest first.
fn medians(
    samples: &[Sample],
    groups: impl Fn(&Sample) -> &HashMap<String, Group>,
) -> Vec<(String, Group)> {
    let names: BTreeSet<&String> = samples.iter().flat_map(|s| groups(s).keys()).collect();
    let mut out: Vec<(String, Group)> = names
        .into_iter()
        .map(|name| {
            let of = |f: fn(&Group) -> f64| {
                median(samples.iter().map(|s| groups(s).get(name).map_or(0.0, f)))
            };
            let g = Group {
                us: of(|g| g.us),
                calls: of(|g| g.calls),
                commands_us: of(|g| g.commands_us),
            };
            (name.clone(), g)
        })
        .collect();
    out.sort_by(|a, b| b.1.us.total_cmp(&a.1.us).then(a.0.cmp(&b.0)));
    out
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

fn as_json(groups: &[(String, Group)], per: Per) -> serde_json::Value {
    let mut json = serde_json::Map::new();
    for (name, g) in groups {
        let mut v = serde_json::Map::new();
        v.insert(format!("usPer{}", per.key), round(g.us, 2).into());
        v.insert(format!("callsPer{}", per.key), round(g.calls, 4).into());
        if g.commands_us > 0.0 {
            v.insert(
                format!("commandsUsPer{}", per.key),
                round(g.commands_us, 2).into(),
            );
        }
        json.insert(name.clone(), v.into());
    }
    json.into()
}

/// Prints one phase's lines (medians over `samples`); returns its JSON.
pub(crate) fn report(label: &str, samples: &[Sample], per: Per) -> serde_json::Value {
    let w = per.word;
    let ms = median(samples.iter().map(|s| s.ms));
    let cpu = median(samples.iter().map(|s| s.cpu_us));
    let total = median(samples.iter().map(|s| s.calls.values().map(|g| g.us).sum()));
    let inner = median(
        samples
            .iter()
            .map(|s| s.calls.values().map(|g| g.commands_us).sum()),
    );
    println!(
        "  {label}: {ms:.0} ms; Redis CPU {cpu:.1} µs/{w} (INFO cpu); in calls {total:.1} \
         µs/{w} (slowlog), of which {inner:.1} in the commands scripts ran"
    );
    let calls = medians(samples, |s| &s.calls);
    println!("    by call, µs/{w} (a script by its file):");
    for (name, g) in calls.iter().take(TOP_CALLS) {
        let commands = if g.commands_us > 0.0 {
            format!(", its commands {:.2}", g.commands_us)
        } else {
            String::new()
        };
        let per_call = if g.calls > 0.0 { g.us / g.calls } else { 0.0 };
        println!(
            "      {name} {:.2} ({:.4} calls/{w}, {per_call:.0} µs/call{commands})",
            g.us, g.calls
        );
    }
    let in_scripts = medians(samples, |s| &s.in_scripts);
    if !in_scripts.is_empty() {
        let line: Vec<String> = in_scripts
            .iter()
            .take(TOP_COMMANDS)
            .map(|(name, g)| format!("{name} {:.2} ({:.2} calls)", g.us, g.calls))
            .collect();
        println!("    inside scripts, µs/{w}: {}", line.join(", "));
    }
    let k = per.key;
    let mut json = serde_json::Map::new();
    json.insert("ms".into(), round(ms, 0).into());
    json.insert(format!("redisCpuUsPer{k}"), round(cpu, 2).into());
    json.insert(format!("callsUsPer{k}"), round(total, 2).into());
    json.insert(format!("scriptCommandsUsPer{k}"), round(inner, 2).into());
    json.insert("byCall".into(), as_json(&calls, per));
    json.insert("insideScripts".into(), as_json(&in_scripts, per));
    let stats = medians(samples, |s| &s.commandstats);
    json.insert("commandstats".into(), as_json(&stats, per));
    json.into()
}

/// Runs the profile `runs` times over `n` children; prints its lines and one JSON line.
pub async fn run(server: &Target, runs: usize, n: usize) -> Result<()> {
    // phases: plain add, plain run, flow add, flow run
    let mut phases: [Vec<Sample>; 4] = Default::default();
    for run in 0..runs {
        let env = server.fresh_run(run).await?;
        if !env.private {
            bail!("flowprof changes the server's slowlog settings: run it without REDIS_URL");
        }
        let plain = open(&env, &["plain0"]).await?;
        let flow = open(&env, &["flow0"]).await?;
        let e = &env;
        phases[0].push(profiled(e, n, add_plain(e, &plain, n)).await?);
        phases[1].push(profiled(e, n, run_worker(e, &plain, CONCURRENCY, n)).await?);
        phases[2].push(profiled(e, n, add_flow(e, &flow, n)).await?);
        phases[3].push(profiled(e, n, run_worker(e, &flow, CONCURRENCY, n + 1)).await?);
        let cpu: Vec<String> = phases
            .iter()
            .map(|p| format!("{:.1}", p[run].cpu_us))
            .collect();
        eprintln!(
            "  [flowprof] run {}: Redis CPU µs/child, logging every call: plain add {}, \
             plain run {}, flow add {}, flow run {}",
            run + 1,
            cpu[0],
            cpu[1],
            cpu[2],
            cpu[3]
        );
    }
    println!(
        "[flowprof] {} ({n} children, every call logged, medians of {runs} runs):",
        crate::flows::describe("flowprof")
    );
    let mut json = serde_json::Map::new();
    json.insert("workload".into(), "flowprof".into());
    json.insert("children".into(), n.into());
    json.insert("runs".into(), runs.into());
    let labels = [
        ("plainAdd", "plain add (add_bulk)"),
        ("plainRun", "plain run"),
        ("flowAdd", "flow add (FlowProducer::add)"),
        ("flowRun", "flow run"),
    ];
    for ((key, label), samples) in labels.iter().zip(&phases) {
        json.insert((*key).into(), report(label, samples, PER_CHILD));
    }
    println!("{}", serde_json::Value::Object(json));
    Ok(())
}
