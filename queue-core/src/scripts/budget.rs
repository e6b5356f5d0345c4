//! `record_sizes.lua`: reads of many job records a bounded number of bytes per round trip.
//! Redis builds the replies of a pipeline all at once, while every other client waits, and
//! holds them all for the one client until it has read them: 200 jobs of 1 MiB read in one
//! pipeline held 200 MiB and stalled Redis for 166 ms (1,000 of them, a page the API
//! allows, would hold 1 GiB). So a read of many records first asks their sizes, in short
//! calls ([`FIELDS_PER_CALL`]), then reads them in runs of at most [`READ_BUDGET`] bytes.

use std::ops::Range;

use super::invoke_on;
use crate::error::{Error, Result};
use crate::store::QueueStore;

script!(SCRIPT, "record_sizes.lua");

/// Bytes of job records one round trip asks for at most (a record larger than this is read
/// alone): a few milliseconds of Redis's time.
pub(crate) const READ_BUDGET: u64 = 4 * 1024 * 1024;

/// Fields of job hashes one `record_sizes` call walks at most (30–90 ns each here, so a
/// call takes under 10 ms): a page of 1,000 jobs at the largest caps (~2,100 fields each) is
/// sized in about twenty short calls, a page of ordinary jobs in one.
const FIELDS_PER_CALL: u64 = 100_000;

/// What a read of many job records does with each, in order.
pub(crate) enum Run {
    /// Reads the records at these positions, in one round trip.
    Read(Range<usize>),
    /// Leaves the record at this position unread: it cannot be a job's (more fields than
    /// any job has: `MOST_JOB_FIELDS` in the scripts' prelude); why, to show.
    Skip(usize, String),
}

/// The records of jobs `ids` of `q`, in order, cut into runs holding at most
/// [`READ_BUDGET`] bytes together (a record over it in a run of its own).
pub(crate) async fn runs<S: AsRef<str>>(q: &QueueStore, ids: &[S]) -> Result<Vec<Run>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sizes: Vec<i64> = Vec::with_capacity(ids.len());
    while sizes.len() < ids.len() {
        let mut inv = SCRIPT.prepare_invoke();
        inv.key(q.keys.meta())
            .arg(q.keys.job_prefix())
            .arg(FIELDS_PER_CALL);
        for id in &ids[sizes.len()..] {
            inv.arg(id.as_ref());
        }
        let some: Vec<i64> = invoke_on(q, &inv).await?;
        if some.is_empty() {
            // (never: a call answers for one id at least)
            return Err(Error::Protocol("record_sizes answered for no job".into()));
        }
        sizes.extend(some);
    }
    let readable: Vec<Option<u64>> = sizes.iter().map(|s| u64::try_from(*s).ok()).collect();
    Ok(pack(&readable, |i| {
        format!(
            "its record has {} fields, more than any job has: not read",
            sizes[i].unsigned_abs()
        )
    }))
}

/// Records of `sizes` bytes, in order, cut into runs holding at most [`READ_BUDGET`] bytes
/// together (a record over it in a run of its own); a record without a size (`None`: not
/// to be read) is skipped, saying `why(position)`.
pub(crate) fn pack(sizes: &[Option<u64>], why: impl Fn(usize) -> String) -> Vec<Run> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < sizes.len() {
        let Some(first) = sizes[start] else {
            out.push(Run::Skip(start, why(start)));
            start += 1;
            continue;
        };
        let (mut end, mut bytes) = (start + 1, first);
        while let Some(Some(size)) = sizes.get(end) {
            if bytes.saturating_add(*size) > READ_BUDGET {
                break;
            }
            bytes += size;
            end += 1;
        }
        out.push(Run::Read(start..end));
        start = end;
    }
    out
}
