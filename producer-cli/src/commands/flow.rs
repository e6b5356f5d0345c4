//! `jobq flow add`: a flow (a tree of jobs, possibly across queues, where a parent waits for
//! its children) from a JSON file or stdin.
//!
//! The file is read and parsed before connecting (queue-core's `job_spec` reads the node
//! form), so a malformed flow is bad input even when Redis is down; `FlowProducer` checks the
//! rest (queue names, size caps, ids) before it stores anything. Either way the message names
//! the node by its path (`flow node root.children[2]: …`) and the command exits 2 with
//! nothing stored. A flow has no `JOBQ_FALLBACK`: its parent cannot run before its children,
//! so it is stored in Redis or not added at all.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use anyhow::Result;
use queue_core::config::JobCaps;
use queue_core::internal::job_spec::parse_flow_json;
use queue_core::{Config, FlowJob, FlowProducer, FlowTree};

use super::ctx::Ctx;
use crate::cli::FlowCommand;
use crate::exit::{bad_input, reworded};
use crate::output;

/// The largest flow file read, unless one job at the size caps needs more: a flow is held
/// whole in memory and added all or nothing, so a larger one is better split.
const MAX_FILE_BYTES: usize = 64 << 20;

/// Runs a `jobq flow …` command.
pub async fn flow(config: &Config, json: bool, cmd: FlowCommand) -> Result<()> {
    match cmd {
        FlowCommand::Add { file } => add(config, json, &file).await,
    }
}

/// Reads, checks and adds the flow in `file` (`-` = stdin); prints its tree with the ids.
async fn add(config: &Config, json: bool, file: &Path) -> Result<()> {
    let name = input_name(file);
    let traceparent = super::add::traceparent_from_env()?;
    let mut flow = read_flow(file, &name, file_limit(&config.caps))?;
    if let Some(tp) = traceparent {
        flow = flow.with_traceparent(&tp);
    }
    // the whole tree is checked before connecting: a bad flow is bad input, Redis up or not
    flow.validate(config.caps)
        .map_err(|e| reworded(&name, &e))?;
    let ctx = Ctx::connect(config, json).await?;
    let tree = FlowProducer::new(&ctx.redis, &ctx.prefix)
        .add(flow)
        .await
        .map_err(|e| match e {
            // the node's path and problem, once, after the file's name
            queue_core::Error::Flow { .. } => reworded(&name, &e),
            e => e.into(),
        })?;
    if json {
        output::json_line(&tree);
        return Ok(());
    }
    let mut out = BufWriter::new(std::io::stdout().lock());
    print_tree(&mut out, &tree, 0)?;
    out.flush()?;
    Ok(())
}

/// The most bytes a flow file may have with these caps.
fn file_limit(caps: &JobCaps) -> usize {
    // one job at the caps, with room for its name, options and the JSON around them
    let one_job = caps
        .max_data_bytes
        .saturating_add(caps.max_opts_bytes)
        .saturating_add(64 << 10);
    MAX_FILE_BYTES.max(one_job)
}

/// `stdin` for `-`, else the path: how messages name the input.
fn input_name(file: &Path) -> String {
    if file == Path::new("-") {
        "stdin".into()
    } else {
        file.display().to_string()
    }
}

/// The flow in `file`: at most `limit` bytes (a larger regular file is refused before it
/// is read, naming both sizes), UTF-8 JSON, a byte order mark at its start skipped (editors
/// on Windows write one; it is not JSON).
fn read_flow(file: &Path, name: &str, limit: usize) -> Result<FlowJob> {
    let failed = |e: std::io::Error| bad_input(format!("{name}: {e}"));
    let too_large = |size: String| {
        bad_input(format!(
            "{name}: {size} bytes, over the limit of {limit} bytes for a flow file (split the \
             flow into several)"
        ))
    };
    let input: Box<dyn Read> = if file == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        let f = File::open(file).map_err(failed)?;
        if let Ok(meta) = f.metadata() {
            if meta.is_file() && meta.len() > limit as u64 {
                return Err(too_large(meta.len().to_string()));
            }
        }
        Box::new(f)
    };
    // a pipe has no size up front: read one byte past the limit to find out
    let mut bytes = Vec::new();
    input
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    if bytes.len() > limit {
        return Err(too_large(format!("more than {limit}")));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| bad_input(format!("{name}: not UTF-8 text: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    parse_flow_json(text).map_err(|e| bad_input(format!("{name}: {e}")))
}

/// One line per job, `queue/id name`, each child indented under its parent.
fn print_tree(out: &mut impl Write, node: &FlowTree, depth: usize) -> std::io::Result<()> {
    writeln!(
        out,
        "{:indent$}{}/{} {}",
        "",
        output::plain(&node.queue),
        output::plain(&node.id),
        output::plain(&node.name),
        indent = depth * 2
    )?;
    for child in &node.children {
        print_tree(out, child, depth + 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(queue: &str, id: &str, name: &str, children: Vec<FlowTree>) -> FlowTree {
        FlowTree {
            queue: queue.into(),
            name: name.into(),
            id: id.into(),
            children,
        }
    }

    #[test]
    fn the_tree_prints_one_indented_line_per_job() {
        let tree = node(
            "publish",
            "7",
            "video.publish",
            vec![
                node(
                    "transcode",
                    "8",
                    "video.transcode",
                    vec![node("thumbs", "9", "video.thumbnail\n", vec![])],
                ),
                node("transcode", "10", "video.transcode", vec![]),
            ],
        );
        let mut out = Vec::new();
        print_tree(&mut out, &tree, 0).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "publish/7 video.publish\n  transcode/8 video.transcode\n    thumbs/9 \
             video.thumbnail\\n\n  transcode/10 video.transcode\n"
        );
    }

    #[test]
    fn the_file_limit_holds_one_job_at_the_caps() {
        assert_eq!(file_limit(&JobCaps::default()), MAX_FILE_BYTES);
        let big = JobCaps {
            max_data_bytes: JobCaps::MAX_BYTES,
            max_opts_bytes: 1 << 20,
        };
        assert!(file_limit(&big) > JobCaps::MAX_BYTES + (1 << 20));
    }
}
