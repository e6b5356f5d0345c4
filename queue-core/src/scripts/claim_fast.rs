//! `claim_fast.lua`: a claim of one lane's entries by a plain `XREADGROUP` between the
//! script's gate and seal, in one transaction, for a worker whose last claim was full and
//! met nothing but lane entries (`move_to_active.rs` `Claim::fast`). Redis sends the
//! entries straight here, and this side does what `move_to_active.lua` does to a lean
//! job's entry: checks its name and sizes (a corrupt one still comes back, with a note:
//! the worker fails it alone), and writes their `active` events. Entries that are not lean
//! jobs go to `claim_entries`, which claims them as `move_to_active` would. When the seal
//! finds the claim is not one `move_to_active` would have made (paused, a limit or a
//! group, a due job, a higher lane with entries, …) it gives the entries back and the
//! worker claims the usual way.

use std::collections::HashMap;

use redis::Value;

use super::move_to_active::{due_in, finish, Claim, Taken};
use super::{claim_entries, lossy_text, stored_text, Reply, EVENTS_MAXLEN};
use crate::error::{Error, Result};
use crate::job::MAX_NAME_BYTES;
use crate::keys::{GROUP, GROUP_LANE};
use crate::store::QueueStore;

/// The script, sent whole each time (`EVAL`): inside a transaction, a script Redis no
/// longer had would fail while the read beside it still ran.
const TEXT: &str = include_str!("claim_fast.lua");

/// What a fast claim did.
pub(crate) enum Fast {
    Claimed(Claim),
    /// Nothing was claimed, for this reason (the seal's): claim with `move_to_active`.
    Veto(String),
    /// The entries (their ids) were read but not counted out of `waiting`: Redis reached
    /// maxmemory between the transaction's queueing and its run, and refused the gate's
    /// note. They are to be given back as uncounted (`release`).
    Uncounted(Vec<String>),
}

/// Claims up to `count` entries of the lane of priority `prio` for `consumer`.
pub(crate) async fn claim(
    queue: &QueueStore,
    consumer: &str,
    count: usize,
    prio: i32,
) -> Result<Fast> {
    let keys = &queue.keys;
    let lanes = queue.lanes.get();
    let Some(at) = lanes.prios.iter().position(|p| *p == prio) else {
        return Ok(Fast::Veto(format!("no lane {prio}")));
    };
    let lane = keys.lane(prio);
    let scratch = keys.claim_scratch();
    let mut pipe = redis::pipe();
    pipe.atomic().ignore_errors();
    pipe.cmd("EVAL")
        .arg(TEXT)
        .arg(2)
        .arg(&lane)
        .arg(&scratch)
        .arg("gate")
        .arg(GROUP)
        .ignore();
    pipe.cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(&lane)
        .arg(">");
    pipe.cmd("EVAL").arg(TEXT);
    // (the group lane is read only when a group has a turn, which the seal checks apart)
    let higher: Vec<String> = lanes.prios[..at]
        .iter()
        .filter(|p| **p != GROUP_LANE)
        .map(|p| keys.lane(*p))
        .collect();
    pipe.arg(8 + higher.len())
        .arg(&lane)
        .arg(&scratch)
        .arg(keys.meta())
        .arg(keys.delayed())
        .arg(keys.marker())
        .arg(keys.lean_records())
        .arg(keys.group_ring())
        .arg(keys.group_parked())
        .arg(&higher)
        .arg("seal")
        .arg(GROUP)
        .arg(count)
        .arg(&lanes.version)
        .arg(consumer);
    let replies: Vec<Value> = pipe
        .query_async(&mut queue.redis.conn())
        .await
        .map_err(|e| queue.redis.err(e))?;
    let mut replies = replies.into_iter();
    let (read, seal) = (replies.next(), replies.next());
    let mut r = match seal {
        Some(Value::ServerError(e)) => return Err(queue.redis.err(e.into())),
        Some(v) => Reply::owned(v)?,
        None => return Err(Error::Protocol("a fast claim's reply is too short".into())),
    };
    match r.string()?.as_str() {
        "ok" => {}
        "veto" => return Ok(Fast::Veto(r.string()?)),
        "gate" => {
            let read = entries(read)?.into_iter().map(|(sid, _)| sid).collect();
            return Ok(Fast::Uncounted(read));
        }
        other => {
            return Err(Error::Protocol(format!(
                "a fast claim's seal answered {other:?}"
            )))
        }
    }
    let next_due = r.int()?;
    let now = r.int()?;
    let caps = queue.redis.caps();
    // the entries in their order: the lean jobs' taken here, the others' by claim_entries
    // (put in their places after: where each one's would be, in `places`)
    let read = entries(read)?;
    // (sized at once: a claim's jobs are large, and growing them step by step cost a
    // worker fresh memory, zeroed by the kernel, on every claim)
    let mut taken = Vec::with_capacity(read.len());
    let mut stored = Vec::new();
    let mut places = Vec::new();
    for (sid, mut fields) in read {
        let first = fields.first_mut().map(take_bytes);
        match first.as_deref() {
            Some(b"n") => {
                taken.push(lean_taken(prio, sid, fields, caps, now));
            }
            Some(b"i") => {
                let id = fields.get_mut(1).map(take_bytes).unwrap_or_default();
                places.push((sid.clone(), taken.len()));
                stored.push((sid, id));
            }
            // an entry of neither shape is no job's: claim_entries drops it
            _ => stored.push((sid, Vec::new())),
        }
    }
    // (the lean jobs' entries, for their events: `taken` holds only lean jobs so far)
    let lean_sids: Vec<&str> = taken.iter().map(|t| t.job.sid.as_str()).collect();
    announce(queue, prio, &lean_sids);
    if !stored.is_empty() {
        let got = claim_entries::claim(queue, prio, &stored, now).await?;
        if !got.is_empty() {
            taken = in_order(taken, got, &places);
        }
    }
    Ok(Fast::Claimed(Claim {
        jobs: finish(queue, taken).await?,
        next_due_in: due_in(next_due, now),
        paused: false,
        limited: None,
        fast: Some(prio),
    }))
}

/// The entries of an `XREADGROUP` reply of one stream: each entry id with its fields (names
/// and values in turn). Nil: none.
fn entries(read: Option<Value>) -> Result<Vec<(String, Vec<Value>)>> {
    let streams = match read {
        Some(Value::Array(streams)) => streams,
        // (RESP3: a map of the stream's key to its entries)
        Some(Value::Map(streams)) => streams
            .into_iter()
            .map(|(key, entries)| Value::Array(vec![key, entries]))
            .collect(),
        Some(Value::Nil) => return Ok(Vec::new()),
        Some(Value::ServerError(e)) => {
            // (the seal said the read went through: an error here is Redis's)
            return Err(Error::Protocol(format!(
                "a fast claim's read failed: {e:?}"
            )));
        }
        other => {
            return Err(Error::Protocol(format!(
                "a fast claim's read answered {other:?}"
            )))
        }
    };
    let mut out = Vec::new();
    for stream in streams {
        let Value::Array(mut pair) = stream else {
            return Err(Error::Protocol("a stream of a fast claim's read".into()));
        };
        let Some(Value::Array(list)) = pair.pop() else {
            return Err(Error::Protocol("the entries of a fast claim's read".into()));
        };
        out.reserve(list.len());
        for entry in list {
            let Value::Array(mut e) = entry else {
                return Err(Error::Protocol("an entry of a fast claim's read".into()));
            };
            let fields = match e.pop() {
                Some(Value::Array(fields)) => fields,
                _ => Vec::new(),
            };
            let sid = e.pop().map(|mut v| take_bytes(&mut v)).unwrap_or_default();
            out.push((lossy_text(sid), fields));
        }
    }
    Ok(out)
}

/// The lean jobs `lean` and the jobs with a record `stored` in the order of their entries:
/// `places` gives, for each entry with a record (by its entry id), how many lean jobs came
/// before it. (Orphans, which claim_entries dropped, have a place but no job.)
fn in_order(lean: Vec<Taken>, stored: Vec<Taken>, places: &[(String, usize)]) -> Vec<Taken> {
    let before: HashMap<&str, usize> = places.iter().map(|(sid, n)| (sid.as_str(), *n)).collect();
    let mut out = Vec::with_capacity(lean.len() + stored.len());
    let mut lean = lean.into_iter();
    let mut done = 0;
    for t in stored {
        let n = before.get(t.job.sid.as_str()).copied().unwrap_or(done);
        while done < n {
            match lean.next() {
                Some(l) => out.push(l),
                None => break,
            }
            done += 1;
        }
        out.push(t);
    }
    out.extend(lean);
    out
}

/// The most job ids one event entry holds (prelude.lua `EVENT_IDS_MAX`).
const EVENT_IDS_MAX: usize = 20;

/// Writes the `active` events of the lean jobs (their entry ids `lean`) a fast claim read
/// from the lane of priority `prio`, as prelude.lua `emit_lean` writes them, with plain
/// `XADD`s: no script needs to see them (one cost Redis ~0.3 µs a job, most of it turning
/// ids into Lua strings and back). Sent without waiting for the answer, so the jobs start
/// at once; a failure (an events key that is not a stream, a corrupt record) costs the
/// events alone, logged.
fn announce(queue: &QueueStore, prio: i32, lean: &[&str]) {
    if lean.is_empty() {
        return;
    }
    let events = queue.keys.events();
    let mut pipe = redis::pipe();
    for ids in lean.chunks(EVENT_IDS_MAX) {
        pipe.cmd("XADD")
            .arg(&events)
            .arg("MAXLEN")
            .arg("~")
            .arg(EVENTS_MAXLEN)
            .arg("*")
            .arg("event")
            .arg("active")
            .arg("lean")
            .arg(prio)
            .arg("ids")
            .arg(ids.join(" "));
    }
    let mut conn = queue.redis.conn();
    tokio::spawn(async move {
        if let Err(e) = pipe.query_async::<redis::Value>(&mut conn).await {
            tracing::debug!(error = %e, "the active events of a fast claim were not written");
        }
    });
}

/// A reply value's bytes, taken (none for one that is not a string).
fn take_bytes(v: &mut Value) -> Vec<u8> {
    match std::mem::replace(v, Value::Nil) {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.into_bytes(),
        Value::Int(i) => i.to_string().into_bytes(),
        _ => Vec::new(),
    }
}

/// A lean job from its entry's fields (`n` and its name, `d` and its data, then `o` and its
/// options and `t` and its trace context when it has them), checked as `move_to_active.lua`
/// checks one: a name of 1 to 256 bytes, data present and within the caps, options within
/// theirs; else it comes back with a `bad:` note naming the field.
fn lean_taken(
    prio: i32,
    sid: String,
    mut f: Vec<Value>,
    caps: crate::config::JobCaps,
    now: i64,
) -> Taken {
    // (field names are looked at in place, values taken)
    let is = |f: &[Value], i: usize, name: &[u8]| matches!(f.get(i), Some(Value::BulkString(b)) if b == name);
    let take = |f: &mut [Value], i: usize| f.get_mut(i).map(take_bytes);
    let mut name = take(&mut f, 1).unwrap_or_default();
    let data = if is(&f, 2, b"d") {
        take(&mut f, 3)
    } else {
        None
    };
    let (mut opts, mut traceparent, mut k) = (Vec::new(), Vec::new(), 4);
    if is(&f, k, b"o") {
        opts = take(&mut f, k + 1).unwrap_or_default();
        k += 2;
    }
    if is(&f, k, b"t") {
        traceparent = take(&mut f, k + 1).unwrap_or_default();
    }
    let note = if name.is_empty() || name.len() > MAX_NAME_BYTES {
        let n = name.len();
        name.clear();
        format!("bad:field name is {n} bytes, not 1 to {MAX_NAME_BYTES}")
    } else {
        match &data {
            None => "bad:field data is missing".to_string(),
            Some(d) if d.len() > caps.max_data_bytes => format!(
                "bad:field data is {} bytes, over the cap of {}",
                d.len(),
                caps.max_data_bytes
            ),
            _ if opts.len() > caps.max_opts_bytes => format!(
                "bad:field opts is {} bytes, over the cap of {}",
                opts.len(),
                caps.max_opts_bytes
            ),
            _ => String::new(),
        }
    };
    let data = stored_text(data.unwrap_or_default());
    Taken::lean(
        prio,
        sid,
        lossy_text(name),
        data,
        lossy_text(opts),
        lossy_text(traceparent),
        &note,
        now,
    )
}
