//! The floor: what the same jobs cost Redis through bare stream commands, with none of
//! jobq's bookkeeping (no job hash, no Lua, no state, counters, events, retention, limits
//! or groups). The lower bound of a "fast lane" that would carry the payload in the lane
//! entry and acknowledge in batches, and so the measure of what bounds our own figures:
//! the gap between `b` and `floorb`, and between `c50rm` and `floorc50`, is the price of the
//! features, paid in Redis CPU per job.
//!
//! - `floorb`: 50,000 `XADD`s of the peer's payload (field `d`, as JSON) in pipelines of
//!   1,000, as `b` sends `add_bulk` chunks of 1,000.
//! - `floorc50`: the same 50,000 entries (added first, not timed) read by a consumer group
//!   and acknowledged: one reader, reading up to 250 entries at a time (`XREADGROUP`;
//!   jobq's worker claims ahead in batches of that size at concurrency 50), decoding their
//!   payloads, then in one pipeline acknowledging them (`XACK`), trimming the stream up to
//!   them (`XTRIM MINID ~`) and counting them (`HINCRBY`). Timed from the first read to the
//!   last acknowledgement.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;

use crate::redis_info;
use crate::redis_server::RunEnv;
use crate::workloads::{payload, Rate, JOBS};

const PIPELINE: usize = 1_000;
/// Entries per read, as many as a claim of jobq's worker takes at concurrency 50.
const READ: usize = 250;
const GROUP: &str = "floor";

pub fn describe(w: &str) -> &'static str {
    match w {
        "floorb" => "floor: 50,000 bare XADDs of the payload, pipelined by 1,000",
        "floorc50" => {
            "floor: 50,000 entries read by XREADGROUP 250 at a time, acked and trimmed in batches"
        }
        _ => "?",
    }
}

/// The stream and counter of one run (under its fresh prefix, in one cluster slot).
fn keys(env: &RunEnv) -> (String, String) {
    let base = format!("{}:{{floor}}", env.config.prefix());
    (format!("{base}:s"), format!("{base}:m"))
}

async fn add_all(env: &RunEnv, stream: &str) -> Result<()> {
    let mut c = env.redis.conn();
    for chunk in (0..JOBS).collect::<Vec<_>>().chunks(PIPELINE) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.cmd("XADD")
                .arg(stream)
                .arg("*")
                .arg("d")
                .arg(payload(*i).to_string())
                .ignore();
        }
        let () = pipe.query_async(&mut c).await?;
    }
    Ok(())
}

pub async fn run(w: &str, env: &RunEnv) -> Result<Rate> {
    let (stream, counter) = keys(env);
    match w {
        "floorb" => {
            let cpu0 = redis_info::cpu_secs(env).await?;
            let start = Instant::now();
            add_all(env, &stream).await?;
            let secs = start.elapsed().as_secs_f64();
            Ok(Rate::of(secs, redis_info::cpu_secs(env).await? - cpu0))
        }
        "floorc50" => {
            add_all(env, &stream).await?;
            let mut c = env.redis.conn();
            let () = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&stream)
                .arg(GROUP)
                .arg("0")
                .query_async(&mut c)
                .await?;
            let cpu0 = redis_info::cpu_secs(env).await?;
            let start = Instant::now();
            read_and_ack(env.redis.conn(), &stream, &counter).await?;
            let secs = start.elapsed().as_secs_f64();
            let cpu = redis_info::cpu_secs(env).await? - cpu0;
            let counted: usize = c.hget(&counter, "done").await?;
            if counted != JOBS {
                bail!("floorc50 acknowledged {counted} entries, not {JOBS}");
            }
            Ok(Rate::of(secs, cpu))
        }
        other => bail!("unknown workload {other}"),
    }
}

/// The one reader: reads up to [`READ`] entries, decodes each payload (as a handler would
/// get it), then acknowledges, trims and counts the batch in one round trip, until all
/// [`JOBS`] are done.
async fn read_and_ack(mut c: queue_core::Conn, stream: &str, counter: &str) -> Result<()> {
    let opts = StreamReadOptions::default().group(GROUP, "r").count(READ);
    let mut done = 0;
    while done < JOBS {
        let reply: Option<StreamReadReply> = c.xread_options(&[stream], &[">"], &opts).await?;
        let entries = reply
            .and_then(|r| r.keys.into_iter().next())
            .map(|k| k.ids)
            .unwrap_or_default();
        if entries.is_empty() {
            bail!("the stream ran dry before all {JOBS} entries were read");
        }
        let mut ids = Vec::with_capacity(entries.len());
        for e in &entries {
            let data: String = e.get("d").context("an entry without its payload")?;
            let _: serde_json::Value = serde_json::from_str(&data)?;
            ids.push(e.id.as_str());
        }
        let mut pipe = redis::pipe();
        pipe.cmd("XACK").arg(stream).arg(GROUP).arg(&ids).ignore();
        // (one reader: every entry before its batch's last is acknowledged, so the stream is
        // trimmed up to it, whole nodes at a time, as jobq's lanes are; XDEL per entry costs
        // more than everything else here together)
        let last = ids[ids.len() - 1];
        pipe.cmd("XTRIM")
            .arg(stream)
            .arg("MINID")
            .arg("~")
            .arg(last)
            .ignore();
        pipe.cmd("HINCRBY")
            .arg(counter)
            .arg("done")
            .arg(ids.len())
            .ignore();
        let () = pipe.query_async(&mut c).await?;
        done += ids.len();
    }
    Ok(())
}
