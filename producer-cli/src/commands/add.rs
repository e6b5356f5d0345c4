//! `jobq add`: one job, with its options; prints the id (with `--json`, the stored job).

use anyhow::Result;
use queue_core::JobOptions;
use serde_json::{json, Value};

use super::Ctx;
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
pub async fn add(ctx: &Ctx, args: AddArgs) -> Result<()> {
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
    let q = ctx.queue(&args.queue).await?;
    let added = q.add(&args.name, &data, opts).await?;
    if ctx.json {
        // the stored job, unless a worker already finished and removed it
        let mut out = match q.get_job(&added.id).await? {
            Some(job) => output::job_json(&job),
            None => json!({"queue": args.queue, "id": added.id, "name": args.name}),
        };
        out["duplicate"] = added.duplicate.into();
        output::json_line(&out);
    } else if added.duplicate {
        println!(
            "{} (already stored: nothing added to {})",
            added.id, args.queue
        );
    } else {
        println!("{}", added.id);
    }
    Ok(())
}
