//! `jobq spool status|replay`, and the replay `add` and `add-bulk` do first: jobs spooled
//! while Redis was down (`JOBQ_FALLBACK=spool`) are stored before the new ones (so they
//! keep their place ahead of them). The check is one directory read; only when spool
//! files exist is anything replayed, and only files spooled for the Redis this command
//! uses. Other commands never replay: a read pointed at another Redis must not move
//! jobs into it.

use anyhow::Result;
use queue_core::producer::{has_pending, rejected_files, spool_files, ReplayOptions, ReplayReport};
use queue_core::{Config, Producer};
use serde_json::json;

use crate::cli::SpoolCommand;
use crate::output::{self, Table};

/// Runs a `jobq spool …` command.
pub async fn spool(config: &Config, json: bool, cmd: SpoolCommand) -> Result<()> {
    match cmd {
        SpoolCommand::Status => status(config, json),
        SpoolCommand::Replay { chunk, pause } => {
            let producer = Producer::builder(config.clone())
                .auto_replay(false)
                .replay_options(ReplayOptions {
                    chunk: usize::from(chunk),
                    pause,
                })
                .build();
            let report = producer.replay_spool().await?;
            warn_orphans(&report);
            if json {
                output::json_line(&json!({
                    "dir": config.spool_dir,
                    "files": report.files,
                    "stored": report.stored,
                    "duplicates": report.duplicates,
                    "skipped": report.skipped,
                    "busy": report.busy,
                    "other_redis": report.other_redis,
                    "orphaned": report.orphaned,
                    "unfinished": report.unfinished,
                }));
            } else {
                println!("{}", summary(&report, config));
            }
            if !report.unfinished.is_empty() {
                anyhow::bail!(
                    "{} spool file(s) not replayed to their end, kept for the next replay: {}",
                    report.unfinished.len(),
                    report
                        .unfinished
                        .iter()
                        .map(|p| output::plain(&p.display().to_string()).into_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Ok(())
        }
    }
}

/// The spool files waiting (jobs: the lines that decode as jobs; bad lines: the others,
/// which a replay moves to `.rejected`), then the files set aside — rejected lines, and
/// orphans (spool files without a usable header) — which nothing replays: they stay until
/// an operator has read and removed them.
fn status(config: &Config, json: bool) -> Result<()> {
    let files = spool_files(&config.spool_dir)?;
    let rejected = rejected_files(&config.spool_dir)?;
    if json {
        for f in &files {
            output::json_line(&json!({
                "kind": "spool",
                "path": f.path,
                "jobs": f.jobs,
                "bad_lines": f.garbage,
                "held": f.held,
                "orphan": f.orphan,
            }));
        }
        for r in &rejected {
            let kind = if r.orphan { "orphan" } else { "rejected" };
            output::json_line(&json!({"kind": kind, "path": r.path, "lines": r.lines}));
        }
        return Ok(());
    }
    if files.is_empty() {
        println!("no spooled jobs in {}", config.spool_dir.display());
    } else {
        let mut t = Table::new(&["FILE", ">JOBS", ">BAD LINES", "HELD", "NOTE"]);
        for f in &files {
            t.row(vec![
                f.path.display().to_string(),
                f.jobs.to_string(),
                f.garbage.to_string(),
                if f.held { "yes (live process)" } else { "no" }.into(),
                if f.orphan {
                    "header missing or corrupt: not replayed, set aside by the next replay"
                } else if f.garbage > 0 {
                    "bad lines go to <file>.rejected on replay"
                } else {
                    ""
                }
                .into(),
            ]);
        }
        t.print();
    }
    if !rejected.is_empty() {
        println!();
        println!(
            "set aside, not replayed (read, then remove the file): lines the replay could not \
             store (.rejected), spool files without a usable header (.orphan)"
        );
        let mut t = Table::new(&["SET-ASIDE FILE", ">LINES"]);
        for r in &rejected {
            t.row(vec![r.path.display().to_string(), r.lines.to_string()]);
        }
        t.print();
    }
    Ok(())
}

/// One warning line per spool file a replay set aside for its missing or corrupt header.
fn warn_orphans(r: &ReplayReport) {
    for path in &r.orphaned {
        eprintln!(
            "jobq: warning: spool file {} has a missing or corrupt header (which Redis its \
             jobs are for is unknown): not replayed, set aside as {}",
            output::plain(&path.with_extension("").display().to_string()),
            output::plain(&path.display().to_string())
        );
    }
}

fn summary(r: &ReplayReport, config: &Config) -> String {
    let mut s = format!(
        "replayed {} spooled job(s) from {} into Redis",
        r.stored,
        config.spool_dir.display()
    );
    if r.duplicates > 0 {
        s.push_str(&format!(" ({} were already stored)", r.duplicates));
    }
    if r.skipped > 0 {
        s.push_str(&format!(
            "; {} line(s) that could not be stored moved to <file>.rejected",
            r.skipped
        ));
    }
    if r.busy > 0 {
        s.push_str(&format!(
            "; {} file(s) held by live processes left to them",
            r.busy
        ));
    }
    if r.other_redis > 0 {
        s.push_str(&format!(
            "; {} file(s) spooled for another Redis left alone",
            r.other_redis
        ));
    }
    if !r.orphaned.is_empty() {
        s.push_str(&format!(
            "; {} file(s) with a missing or corrupt header set aside as <file>.orphan",
            r.orphaned.len()
        ));
    }
    if !r.unfinished.is_empty() {
        s.push_str(&format!(
            "; {} file(s) stopped by an error, kept for the next replay",
            r.unfinished.len()
        ));
    }
    s
}

/// Before an add: replays pending spool files through `producer`. When Redis is down this
/// costs the one connect attempt the add would make anyway (the breaker then sends the add
/// straight to its fallback); that outcome is for the add to report.
pub async fn replay_before_add(producer: &Producer) {
    if !has_pending(producer.spool_dir()) {
        return;
    }
    match producer.replay_spool().await {
        Ok(r) if r.sent() + r.skipped > 0 || !r.orphaned.is_empty() => {
            warn_orphans(&r);
            eprintln!("jobq: {}", summary(&r, producer.config()))
        }
        Ok(_) => {}
        Err(e) if e.is_connection() => {}
        Err(e) => eprintln!("jobq: spooled jobs not replayed yet: {e}"),
    }
}
