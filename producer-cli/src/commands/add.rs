//! `jobq add`: one job, with its options; prints the id (with `--json`, the stored job,
//! with `duplicate` and `debounced`).
//!
//! When Redis is down (or not configured) the producer applies `JOBQ_FALLBACK`: `inline`
//! prints the handler's result, `spool` the spooled job's id, `error` fails (exit 1); a
//! one-line notice on stderr says what happened and why. `--json` adds `"mode"`:
//! `stored`, `inline` or `spooled`.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::Result;
use queue_core::{JobOptions, Produced, Producer};
use serde_json::{json, Value};

use crate::cli::{AddArgs, DataArgs, JobOptArgs};
use crate::exit::bad_input;
use crate::output;

/// Applies the shared option flags to `opts`.
pub fn apply_opts(mut opts: JobOptions, args: &JobOptArgs) -> JobOptions {
    if let Some(p) = args.priority {
        opts = opts.priority(p);
    }
    if let Some(a) = args.attempts {
        opts = opts.attempts(a);
    }
    if let Some(b) = args.backoff {
        opts = opts.backoff(b);
    }
    if let Some(t) = args.timeout {
        opts = opts.timeout(t);
    }
    opts
}

/// The trace context `TRACEPARENT` gives the jobs (None when it is unset or blank),
/// checked: a malformed one is bad input naming the variable, never silently dropped.
pub(super) fn traceparent_from_env() -> Result<Option<String>> {
    let var = queue_core::trace::TRACEPARENT_ENV;
    match std::env::var(var) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => queue_core::trace::parse_traceparent(&v)
            .map(Some)
            .map_err(|e| bad_input(format!("{var}: {e}"))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => Err(bad_input(format!("{var}: {e}"))),
    }
}

/// The data given by `--data` or `--data-file` (None: neither), a file read as
/// [`read_data_file`] reads it.
pub(super) fn data_of(args: &DataArgs, limit: usize) -> Result<Option<Value>> {
    Ok(match (&args.data, &args.data_file) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(path)) => Some(read_data_file(path, limit)?),
        (None, None) => None,
    })
}

/// The job data in `path`: JSON, at most `limit` bytes (`JOBQ_MAX_DATA_BYTES`; a larger file
/// is refused before it is read, naming both sizes), a UTF-8 byte order mark at its start
/// skipped (editors on Windows write one; it is not JSON).
fn read_data_file(path: &Path, limit: usize) -> Result<Value> {
    let name = path.display();
    let file = File::open(path).map_err(|e| bad_input(format!("--data-file {name}: {e}")))?;
    let too_large = |size: String| {
        bad_input(format!(
            "--data-file {name}: {size} bytes, over the limit of {limit} bytes for job data \
             (set JOBQ_MAX_DATA_BYTES to change it)"
        ))
    };
    if let Ok(meta) = file.metadata() {
        if meta.is_file() && meta.len() > limit as u64 {
            return Err(too_large(meta.len().to_string()));
        }
    }
    // a pipe or device has no size up front: read one byte past the limit to find out
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad_input(format!("--data-file {name}: {e}")))?;
    if bytes.len() > limit {
        return Err(too_large(format!("more than {limit}")));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| bad_input(format!("--data-file {name}: not UTF-8 text: {e}")))?;
    queue_core::internal::json_numbers::parse(strip_bom(text))
        .map_err(|e| bad_input(format!("--data-file {name}: {e}")))
}

/// `text` without a UTF-8 byte order mark at its start.
fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Adds the job and reports it.
pub async fn add(producer: &Producer, json: bool, args: AddArgs) -> Result<()> {
    let traceparent = traceparent_from_env()?;
    let data = data_of(&args.data, producer.config().caps.max_data_bytes)?.unwrap_or(Value::Null);
    let mut opts = apply_opts(JobOptions::new(), &args.opts);
    if let Some(d) = args.delay {
        opts = opts.delay(d);
    }
    if let Some(id) = &args.job_id {
        opts = opts.job_id(id.clone());
    }
    if let Some(g) = &args.group {
        opts = opts.group(g.clone());
    }
    if let (Some(id), Some(ttl)) = (&args.dedup_id, args.dedup_ttl) {
        opts = opts.dedup(id.clone(), ttl);
    }
    if let (Some(id), Some(ttl)) = (&args.debounce_id, args.debounce_ttl) {
        opts = opts.debounce(id.clone(), ttl);
    }
    if let Some(tp) = traceparent {
        opts = opts.traceparent(tp);
    }
    super::spool::replay_before_add(producer).await;
    let produced = producer
        .add(&args.queue, &args.name, &data, opts)
        .await
        .map_err(crate::exit::add_error)?;
    match produced {
        Produced::Stored(added) => {
            if json {
                // the stored job, unless a worker already finished and removed it; the add
                // is done whatever this read-back meets (Redis lost right after it): exit 0
                // with the id, never a failure a caller would retry into a second job
                let read_back =
                    async { producer.queue(&args.queue).await?.get_job(&added.id).await };
                let read_back = read_back.await;
                let mut out = match read_back {
                    Ok(Some(job)) => output::job_json(&job),
                    Ok(None) => json!({"queue": args.queue, "id": added.id, "name": args.name}),
                    Err(e) => {
                        eprintln!("jobq: job {} stored; reading it back failed: {e}", added.id);
                        json!({"queue": args.queue, "id": added.id, "name": args.name})
                    }
                };
                out["duplicate"] = added.duplicate.into();
                out["debounced"] = added.debounced.into();
                out["mode"] = "stored".into();
                output::json_line(&out);
            } else if added.duplicate {
                println!(
                    "{} (already stored: nothing added to {})",
                    added.id, args.queue
                );
            } else if added.debounced {
                println!(
                    "{} (debounced: that job, not started yet, took this data; nothing added \
                     to {})",
                    added.id, args.queue
                );
            } else {
                println!("{}", added.id);
            }
        }
        Produced::Inline { id, result, reason } => {
            eprintln!(
                "jobq: {}; JOBQ_FALLBACK=inline: ran job {id} ({}) in this process",
                reason, args.name
            );
            if json {
                output::json_line(&json!({
                    "mode": "inline",
                    "queue": args.queue,
                    "id": id,
                    "name": args.name,
                    "result": result,
                }));
            } else {
                println!("{result}");
            }
        }
        Produced::Spooled { id, file, reason } => {
            eprintln!(
                "jobq: {}; JOBQ_FALLBACK=spool: spooled job {id} to {} (stored in Redis once \
                 it answers)",
                reason,
                file.display()
            );
            if json {
                output::json_line(&json!({
                    "mode": "spooled",
                    "queue": args.queue,
                    "id": id,
                    "name": args.name,
                    "file": file,
                }));
            } else {
                println!("{id}");
            }
        }
    }
    Ok(())
}
