//! `jobq add`: one job, with its options; prints the id (with `--json`, the stored job).
//!
//! When Redis is down (or not configured) the producer applies `JOBQ_FALLBACK`: `inline`
//! prints the handler's result, `spool` the spooled job's id, `error` fails (exit 1); a
//! one-line notice on stderr says what happened and why. `--json` adds `"mode"`:
//! `stored`, `inline` or `spooled`.

use anyhow::Result;
use queue_core::{JobOptions, Produced, Producer};
use serde_json::{json, Value};

use crate::cli::{AddArgs, JobOptArgs};
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

/// Adds the job and reports it.
pub async fn add(producer: &Producer, json: bool, args: AddArgs) -> Result<()> {
    let data = match (&args.data, &args.data_file) {
        (Some(d), _) => d.clone(),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| bad_input(format!("--data-file {}: {e}", path.display())))?;
            serde_json::from_str(&text).map_err(|e| {
                bad_input(format!(
                    "--data-file {}: not valid JSON: {e}",
                    path.display()
                ))
            })?
        }
        (None, None) => Value::Null,
    };
    let mut opts = apply_opts(JobOptions::new(), &args.opts);
    if let Some(d) = args.delay {
        opts = opts.delay(d);
    }
    if let Some(id) = &args.job_id {
        opts = opts.job_id(id.clone());
    }
    super::spool::replay_before_add(producer).await;
    let produced = producer.add(&args.queue, &args.name, &data, opts).await?;
    match produced {
        Produced::Stored(added) => {
            if json {
                // the stored job, unless a worker already finished and removed it
                let q = producer.queue(&args.queue).await?;
                let mut out = match q.get_job(&added.id).await? {
                    Some(job) => output::job_json(&job),
                    None => json!({"queue": args.queue, "id": added.id, "name": args.name}),
                };
                out["duplicate"] = added.duplicate.into();
                out["mode"] = "stored".into();
                output::json_line(&out);
            } else if added.duplicate {
                println!(
                    "{} (already stored: nothing added to {})",
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
