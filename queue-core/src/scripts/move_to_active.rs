//! `move_to_active.lua`: the claim. Promotes due delayed jobs, then claims up to a count of
//! ready jobs for a consumer, checking every field of each; a job whose record is corrupt
//! comes back with a `bad:` note (failed alone by the worker), one whose values are too long
//! for one call to read with a `read:` note (read here, a bounded call at a time).

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};

use super::{invoke_with_lanes, LeanEntry, Reply, EVENTS_MAXLEN, PROMOTE_BATCH};
use crate::error::{Error, Result};
use crate::job::{lean_id, JobOptions};
use crate::keys::{FRONT_LANE, GROUP, GROUP_LANE};
use crate::store::QueueStore;

script!(SCRIPT, "move_to_active.lua");

/// What one claim gave.
pub(crate) struct Claim {
    pub jobs: Vec<ClaimedJob>,
    /// When the earliest delayed job is due, from the claim (None: none delayed).
    pub next_due_in: Option<Duration>,
    pub paused: bool,
    /// A queue limit allows no more starts now: look again after this long at the latest.
    pub limited: Option<Duration>,
    /// The lane (its priority) the next claim may read with `claim_fast` when this one was
    /// full: nothing but lane entries stood in this claim's way.
    pub fast: Option<i32>,
}

/// One claimed job, as stored.
pub(crate) struct ClaimedJob {
    pub id: String,
    pub name: String,
    pub data: String,
    pub attempt: u32,
    pub opts: JobOptions,
    /// Its lane's priority.
    pub prio: i32,
    /// Its lane entry.
    pub sid: String,
    /// When the claim started it, by the Redis clock (ms).
    pub started_ms: i64,
    /// Why its record is corrupt, if it is: the job fails alone with this.
    pub corrupt: Option<String>,
    /// Its flow parent, `<queue>/<id>`.
    pub parent: Option<String>,
    /// Its group.
    pub group: Option<String>,
    /// A lean job without a record (its lane entry is all of it: `job.rs` `lean_id`):
    /// what its record needs beside the rest.
    pub lean: Option<LeanEntry>,
}

/// One `move_to_active` call: promote due jobs, then claim up to `count` ready ones.
pub(crate) async fn claim(
    queue: &QueueStore,
    consumer: &str,
    count: usize,
    concurrency_poll: Duration,
) -> Result<Claim> {
    let inner = queue;
    let keys = &inner.keys;
    let job_prefix = keys.job_prefix();
    let caps = inner.redis.caps();
    let (v, lanes) = invoke_with_lanes(queue, &SCRIPT, "fetching", |inv, lanes| {
        inv.key(keys.meta())
            .key(keys.lanes())
            .key(keys.delayed())
            .key(keys.marker())
            .key(keys.events())
            .key(keys.rate_limiter())
            .key(keys.failed())
            .key(keys.metrics_failed());
        for k in lanes.keys(keys) {
            inv.key(k);
        }
        inv.arg(GROUP)
            .arg(consumer)
            .arg(count)
            .arg(&lanes.version)
            .arg(EVENTS_MAXLEN)
            .arg(&job_prefix)
            .arg(PROMOTE_BATCH)
            .arg(concurrency_poll.as_millis() as u64)
            .arg(caps.max_data_bytes)
            .arg(caps.max_opts_bytes);
        for p in &lanes.prios {
            inv.arg(*p);
        }
    })
    .await?;
    let mut r = Reply::owned(v)?;
    let _ok = r.string()?;
    let next_due = r.int()?;
    let paused = r.int()? == 1;
    let now = r.int()?;
    let limited = r.int()?;
    let fast = r.int()? == 1;
    let lane_prio = |lane: i64| {
        lanes
            .prios
            .get((lane as usize).wrapping_sub(1))
            .copied()
            .ok_or_else(|| Error::Protocol(format!("lane number {lane} out of range")))
    };
    let mut taken = Vec::with_capacity(r.remaining() / LEAN_FIELDS);
    while r.remaining() > 0 {
        if let Some(lane) = r.peek_int().filter(|l| *l < 0) {
            // a lean job: minus its lane number, entry id, name, data, opts, trace context,
            // note
            r.int()?;
            let prio = lane_prio(-lane)?;
            let sid = r.string()?;
            let name = r.string()?;
            let data = r.utf8()?;
            let opts_text = r.string()?;
            let traceparent = r.string()?;
            let note = r.string()?;
            taken.push(Taken::lean(
                prio,
                sid,
                name,
                data,
                opts_text,
                traceparent,
                &note,
                now,
            ));
            continue;
        }
        taken.push(Taken::stored(&mut r, &lane_prio, now)?);
    }
    // the lane the jobs came from last (the lowest priority read): a priority lane's
    let fast = match taken.last() {
        Some(t) if fast && t.job.prio != FRONT_LANE && t.job.prio != GROUP_LANE => Some(t.job.prio),
        _ => None,
    };
    Ok(Claim {
        jobs: finish(queue, taken).await?,
        next_due_in: due_in(next_due, now),
        paused,
        limited: (limited >= 0).then(|| Duration::from_millis(limited.max(1) as u64)),
        fast,
    })
}

/// How long from `now` until `next_due` (ms by the Redis clock; -1: nothing due).
pub(crate) fn due_in(next_due: i64, now: i64) -> Option<Duration> {
    (next_due >= 0).then(|| Duration::from_millis((next_due - now).max(0) as u64))
}

impl Taken {
    /// A lean job as its entry holds it (`sid` of the lane of priority `prio`), with the
    /// claim's `note` on it ('' or 'bad:<reason>'); started at `now`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn lean(
        prio: i32,
        sid: String,
        name: String,
        data: std::result::Result<String, String>,
        opts_text: String,
        traceparent: String,
        note: &str,
        now: i64,
    ) -> Taken {
        let (data, corrupt) = checked_data(data, note);
        Taken {
            job: ClaimedJob {
                id: lean_id(prio, &sid),
                name,
                data,
                attempt: 1,
                opts: JobOptions::default(),
                prio,
                sid,
                started_ms: now,
                corrupt,
                parent: None,
                group: None,
                lean: Some(LeanEntry {
                    opts: opts_text.clone(),
                    traceparent: (!traceparent.is_empty()).then_some(traceparent),
                }),
            },
            opts_text,
            unread: None,
        }
    }

    /// A job with a record, from the 10 fields of its claim in `r` (`move_to_active.lua`'s
    /// header; `claim_entries.lua` gives the same); `lane_prio` maps a lane number to its
    /// priority.
    pub(crate) fn stored(
        r: &mut Reply<'_>,
        lane_prio: &dyn Fn(i64) -> Result<i32>,
        now: i64,
    ) -> Result<Taken> {
        let id = r.string()?;
        let lane = r.int()?;
        let sid = r.string()?;
        let name = r.string()?;
        let data = r.utf8()?;
        let opts_text = r.string()?;
        let attempt = u32::try_from(r.int()?).unwrap_or(u32::MAX);
        let note = r.string()?;
        let parent = r.string()?;
        let group = r.string()?;
        let prio = lane_prio(lane)?;
        let (data, corrupt) = checked_data(data, &note);
        // values the claim left to the worker (too long, or past its budget for the call):
        // their piece counts, 0 for one read already
        let unread = note.strip_prefix("read:").map(|counts| {
            let (dn, on) = counts.split_once(':').unwrap_or((counts, "0"));
            (dn.parse().unwrap_or(0), on.parse().unwrap_or(0))
        });
        Ok(Taken {
            job: ClaimedJob {
                id,
                name,
                data,
                attempt,
                opts: JobOptions::default(),
                prio,
                sid,
                started_ms: now,
                corrupt,
                parent: (!parent.is_empty()).then_some(parent),
                group: (!group.is_empty()).then_some(group),
                lean: None,
            },
            opts_text,
            unread,
        })
    }
}

/// The claimed jobs, whole: the values their claim left to the worker read, their options
/// decoded (one job's corrupt options fail that job alone, never the whole claim).
pub(crate) async fn finish(queue: &QueueStore, mut taken: Vec<Taken>) -> Result<Vec<ClaimedJob>> {
    // read them here, each value a bounded call at a time and several jobs at once (one job
    // after another would add a round trip per job to the claim)
    let mut reads = Vec::new();
    for (i, t) in taken.iter().enumerate() {
        if let Some((dn, on)) = t.unread {
            reads.push(read_unread(queue, i, t.job.id.clone(), dn, on));
        }
    }
    let read: Vec<_> = futures_util::stream::iter(reads)
        .buffer_unordered(LONG_READS)
        .try_collect()
        .await?;
    for (i, data, opts) in read {
        let t = &mut taken[i];
        for (field, got, value) in [
            ("data", data, &mut t.job.data),
            ("opts", opts, &mut t.opts_text),
        ] {
            match got {
                Some(Some(text)) => *value = text,
                Some(None) => {
                    t.job
                        .corrupt
                        .get_or_insert_with(|| format!("field {field} is not UTF-8"));
                }
                None => {}
            }
        }
    }
    Ok(taken
        .into_iter()
        .map(|mut t| {
            match JobOptions::from_stored(&t.opts_text) {
                Ok(o) => t.job.opts = o,
                Err(e) => {
                    t.job
                        .corrupt
                        .get_or_insert_with(|| format!("field opts does not decode: {e}"));
                }
            }
            t.job
        })
        .collect())
}

/// A claimed job's data and why its record is corrupt, if it is: its claim's `note`
/// (`bad:<reason>`), else its data not being UTF-8 (JSON is: stored bytes that are not are
/// corrupt, never silently mended).
fn checked_data(data: std::result::Result<String, String>, note: &str) -> (String, Option<String>) {
    let bad = note.strip_prefix("bad:").map(str::to_string);
    match data {
        Ok(text) => (text, bad),
        Err(lossy) => (
            lossy,
            bad.or_else(|| Some("field data is not UTF-8".into())),
        ),
    }
}

/// Fields of a lean job in the claim's reply (`move_to_active.lua`; the others have 10).
const LEAN_FIELDS: usize = 7;

/// A claimed job as the reply gave it, before the values the claim left to the worker are
/// read and its options decoded.
pub(crate) struct Taken {
    pub job: ClaimedJob,
    opts_text: String,
    /// The piece counts of `data` and `opts` when the claim left them to the worker
    /// (0: read already).
    unread: Option<(usize, usize)>,
}

/// Jobs whose long values a worker reads at once after a claim.
const LONG_READS: usize = 16;

/// The values of the `i`th claimed job (`id`) that the claim left unread, `data` in `dn`
/// pieces and `opts` in `on` (0: read by the claim already), each as [`read_long`] reads
/// it: None when not read here, Some(None) when it is not UTF-8.
async fn read_unread(
    queue: &QueueStore,
    i: usize,
    id: String,
    dn: usize,
    on: usize,
) -> Result<(usize, Option<Option<String>>, Option<Option<String>>)> {
    let data = match dn {
        0 => None,
        n => Some(read_long(queue, &id, "data", n).await?),
    };
    let opts = match on {
        0 => None,
        n => Some(read_long(queue, &id, "opts", n).await?),
    };
    Ok((i, data, opts))
}

/// Pieces read per call when a worker reads a long value itself: at most 4 MiB of 64 KiB
/// pieces (job.rs `pieces`), so even a value at the largest cap is read in short calls.
const READ_PIECES: usize = 64;

/// Reads a value stored in `n` pieces (`field`, `field:2` … `field:n`, see job.rs
/// `push_long`) of a job this worker holds, in HMGET calls of [`READ_PIECES`] fields: the
/// claim leaves values this long to the worker so that no one call reads much.
async fn read_long(queue: &QueueStore, id: &str, field: &str, n: usize) -> Result<Option<String>> {
    let inner = queue;
    let key = inner.keys.job(id);
    let mut out = Vec::new();
    let mut conn = inner.redis.conn();
    for first in (1..=n).step_by(READ_PIECES) {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&key);
        for k in first..=(first + READ_PIECES - 1).min(n) {
            if k == 1 {
                cmd.arg(field);
            } else {
                cmd.arg(format!("{field}:{k}"));
            }
        }
        let pieces: Vec<Option<Vec<u8>>> = cmd
            .query_async(&mut conn)
            .await
            .map_err(|e| inner.redis.err(e))?;
        for p in pieces.into_iter().flatten() {
            out.extend_from_slice(&p);
        }
    }
    // `None`: not UTF-8, so corrupt
    Ok(String::from_utf8(out).ok())
}
