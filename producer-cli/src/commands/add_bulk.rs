//! `jobq add-bulk`: many jobs from a JSONL file or stdin.
//!
//! The whole input is checked first, so a bad line stores nothing; then it is parsed again
//! chunk by chunk while earlier chunks are stored (keeping every parsed job of a large file
//! in memory costs more than parsing twice), and the jobs go in chunks of [`BULK_CHUNK`], one script call per chunk. Up to [`IN_FLIGHT`]
//! chunks are pipelined on the one connection so Redis never waits for the client; they are
//! sent in file order and Redis runs them in the order sent, so equal-priority jobs keep
//! their FIFO order (on a Redis Cluster, whose client may retry a call after a random wait,
//! one chunk at a time). A progress bar shows on a terminal.
//!
//! When Redis cannot be reached at the start, every job takes `JOBQ_FALLBACK` through the
//! producer (spooled with one sync for the whole file, or run inline one by one); a notice
//! on stderr says so. Redis failing midway is an error (exit 1): the chunks stored so far
//! stay stored.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use queue_core::config::JobCaps;
use queue_core::{Produced, Producer, BULK_CHUNK};
use serde_json::{json, Value};

use crate::exit::bad_input;
use crate::{jsonl, output};

/// Chunks sent before the first reply comes back.
const IN_FLIGHT: usize = 4;

/// Reads, checks and adds every job of `file` (`-` = stdin).
pub async fn add_bulk(producer: &Producer, json: bool, queue: &str, file: &Path) -> Result<()> {
    let traceparent = super::add::traceparent_from_env()?;
    let text = read_input(file, max_line_bytes(&producer.config().caps))?;
    let bad = |e: String| bad_input(format!("{}: {e}", show(file)));
    let total = jsonl::check(&text, &producer.config().caps).map_err(bad)? as u64;
    super::spool::replay_before_add(producer).await;
    let q = match producer.queue(queue).await {
        Ok(q) => q,
        Err(e) if e.is_connection() => {
            let mut jobs = jsonl::jobs(&text)
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?;
            traced(&mut jobs, traceparent.as_deref());
            return fall_back(producer, json, queue, jobs).await;
        }
        Err(e) => return Err(e.into()),
    };
    let bar = progress_bar(total);
    let started = Instant::now();
    let mut jobs = jsonl::jobs(&text);
    let mut chunks = std::iter::from_fn(|| {
        // every line was checked above: a failure here would be a bug, and is reported
        let chunk: Result<Vec<_>, _> = jobs.by_ref().take(BULK_CHUNK).collect();
        match chunk {
            Ok(c) if c.is_empty() => None,
            Ok(mut c) => {
                traced(&mut c, traceparent.as_deref());
                Some(Ok(c))
            }
            Err(e) => Some(Err(bad(e))),
        }
    });
    let mut ids = Vec::with_capacity(total as usize);
    let (mut duplicates, mut debounced) = (0u64, 0u64);
    let mut record = |added: Vec<queue_core::Added>| {
        if let Some(bar) = &bar {
            bar.inc(added.len() as u64);
        }
        for a in added {
            duplicates += u64::from(a.duplicate);
            debounced += u64::from(a.debounced);
            ids.push(a.id);
        }
    };
    // The first chunk goes alone: it loads the script into Redis, so no later chunk is
    // re-sent after a NOSCRIPT reply (which could reorder it behind the next one).
    if let Some(first) = chunks.next() {
        record(q.add_bulk(first?).await?);
    }
    // `buffered` polls (and so sends) the chunks in order and yields replies in order.
    let mut replies = stream::iter(chunks)
        .map(|chunk| async {
            match chunk {
                Ok(chunk) => Ok(q.add_bulk(chunk).await?),
                Err(e) => Err(e),
            }
        })
        .buffered(q.redis().ordered_in_flight(IN_FLIGHT));
    while let Some(added) = replies.try_next().await? {
        record(added);
    }
    drop(replies);
    let secs = started.elapsed().as_secs_f64();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let added = total - duplicates - debounced;
    let rate = if secs > 0.0 { total as f64 / secs } else { 0.0 };
    if json {
        output::json_line(&json!({
            "mode": "stored",
            "queue": queue,
            "added": added,
            "duplicates": duplicates,
            "debounced": debounced,
            "seconds": secs,
            "jobs_per_second": rate.round(),
            "ids": ids,
        }));
    } else {
        let mut notes = Vec::new();
        if duplicates > 0 {
            notes.push(format!("{duplicates} already stored"));
        }
        if debounced > 0 {
            notes.push(format!("{debounced} debounced into jobs not started yet"));
        }
        println!(
            "added {added} job(s) to {queue}{} in {secs:.2}s ({rate:.0} jobs/s)",
            if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            }
        );
    }
    Ok(())
}

/// Redis is down: all jobs through the producer's fallback.
async fn fall_back(
    producer: &Producer,
    json: bool,
    queue: &str,
    jobs: Vec<queue_core::NewJob>,
) -> Result<()> {
    let produced = producer
        .add_bulk(queue, jobs)
        .await
        .map_err(crate::exit::add_error)?;
    let mut ids = Vec::with_capacity(produced.len());
    let mut results = Vec::new();
    let (mut stored, mut file, mut reason) = (0u64, None, None);
    for p in produced {
        ids.push(p.id().to_string());
        match p {
            Produced::Stored(_) => stored += 1,
            Produced::Inline {
                result, reason: r, ..
            } => {
                results.push(result);
                reason = Some(r);
            }
            Produced::Spooled {
                file: f, reason: r, ..
            } => {
                file = Some(f);
                reason = Some(r);
            }
        }
    }
    let reason = reason.unwrap_or_default();
    let (mode, what) = match &file {
        Some(f) => (
            "spooled",
            format!(
                "JOBQ_FALLBACK=spool: spooled {} job(s) to {} (stored in Redis once it answers)",
                ids.len() as u64 - stored,
                f.display()
            ),
        ),
        None => (
            "inline",
            format!(
                "JOBQ_FALLBACK=inline: ran {} job(s) in this process",
                results.len()
            ),
        ),
    };
    if !reason.is_empty() {
        eprintln!("jobq: {reason}; {what}");
    }
    if json {
        let mut out = json!({
            "mode": mode,
            "queue": queue,
            "added": stored,
            "ids": ids,
        });
        match file {
            Some(f) => out["file"] = json!(f),
            None => out["results"] = Value::Array(results),
        }
        output::json_line(&out);
    } else if file.is_some() {
        println!("spooled {} job(s) for {queue}", ids.len() as u64 - stored);
    } else {
        for r in results {
            println!("{r}");
        }
    }
    Ok(())
}

/// Gives every job the trace context of `TRACEPARENT`, when it is set.
fn traced(jobs: &mut [queue_core::NewJob], traceparent: Option<&str>) {
    let Some(tp) = traceparent else { return };
    for job in jobs {
        job.opts.traceparent.get_or_insert_with(|| tp.to_string());
    }
}

fn show(file: &Path) -> String {
    if file == Path::new("-") {
        "stdin".into()
    } else {
        file.display().to_string()
    }
}

/// The longest line any job at `caps` can take: its data and options, twice over for
/// escapes and spaces, and 1 MiB for the rest. A longer line (an endless one on stdin) is
/// refused as soon as it is that long, before it fills the memory.
fn max_line_bytes(caps: &JobCaps) -> usize {
    2usize
        .saturating_mul(caps.max_data_bytes.saturating_add(caps.max_opts_bytes))
        .saturating_add(1 << 20)
}

/// The whole input as text, a UTF-8 byte order mark at its start dropped (it is not JSON;
/// editors on Windows write one). Line numbers are unchanged. A line over `max_line` bytes
/// stops the read with an error naming it.
fn read_input(file: &Path, max_line: usize) -> Result<String> {
    let fail = |e: String| bad_input(format!("{}: {e}", show(file)));
    let source: Box<dyn Read> = if file == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(file).map_err(|e| fail(e.to_string()))?)
    };
    let mut reader = BufReader::new(source);
    let mut bytes = Vec::new();
    let (mut line, mut line_len) = (1usize, 0usize);
    loop {
        let buf = reader.fill_buf().map_err(|e| fail(e.to_string()))?;
        if buf.is_empty() {
            break;
        }
        for piece in buf.split_inclusive(|b| *b == b'\n') {
            line_len += piece.len();
            if line_len > max_line + 1 {
                return Err(fail(format!(
                    "line {line} is over {max_line} bytes, longer than any job at the size \
                     caps can be (JOBQ_MAX_DATA_BYTES, JOBQ_MAX_OPTS_BYTES)"
                )));
            }
            if piece.ends_with(b"\n") {
                line += 1;
                line_len = 0;
            }
        }
        let n = buf.len();
        bytes.extend_from_slice(buf);
        reader.consume(n);
    }
    let mut text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = 1 + bytes[..at].iter().filter(|b| **b == b'\n').count();
        let column = at
            - bytes[..at]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1);
        fail(format!(
            "line {line}: byte {} (0x{:02x}) is not UTF-8 text",
            column + 1,
            bytes[at]
        ))
    })?;
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    Ok(text)
}

/// A bar on stderr when it is a terminal; none when piped or redirected.
fn progress_bar(total: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() || total < BULK_CHUNK as u64 {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {human_pos}/{human_len} jobs  eta {eta}")
    {
        bar.set_style(style);
    }
    Some(bar)
}
