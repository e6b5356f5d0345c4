//! `add_job.lua`: stores a chunk of jobs (each in its lane or the delayed set, deduplicated
//! or debounced, announced) in one call. The client lays out each job's hash fields; the script stores them
//! as they come.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::{invoke_on, EVENTS_MAXLEN};
use crate::error::{Error, Result};
use crate::job::{is_lean, lean_id, lean_place, new_job_id, push_long, Added, NewJob};
use crate::keys::GROUP;
use crate::store::QueueStore;

script!(SCRIPT, "add_job.lua");

/// One chunk's `add_job` call, ready to send ([`Queue::add_bulk`]).
pub(crate) struct PreparedChunk {
    inv: redis::ScriptInvocation<'static>,
    /// The jobs' ids, in order; a lean job's is its lane's priority, its id coming with
    /// the reply.
    ids: Vec<Id>,
}

/// A job's id as the add knows it before the reply.
enum Id {
    Drawn(String),
    /// A lean job's: it is made of its lane entry, `lean_id`.
    Lean(i32),
}

impl PreparedChunk {
    /// Sends the call; per job, stored, the id of the job it duplicates, or the id of the
    /// job it was debounced into (now or, when sent again, before).
    pub(crate) async fn send(self, queue: &QueueStore) -> Result<Vec<Added>> {
        let holders: Vec<String> = invoke_on(queue, &self.inv).await?;
        if holders.len() != self.ids.len() {
            return Err(Error::Protocol(format!(
                "add_job answered {} results for {} jobs",
                holders.len(),
                self.ids.len()
            )));
        }
        self.ids
            .into_iter()
            .zip(holders)
            .map(|(id, holder)| {
                let id = match id {
                    Id::Drawn(id) => id,
                    // a lean job's reply is its lane entry
                    Id::Lean(prio) => {
                        let id = lean_id(prio, &holder);
                        if lean_place(&id).is_none() {
                            return Err(Error::Protocol(format!(
                                "add_job answered {holder:?} for a lean job, not a lane entry"
                            )));
                        }
                        return Ok(Added {
                            id,
                            duplicate: false,
                            debounced: false,
                        });
                    }
                };
                Ok(if holder.is_empty() {
                    Added {
                        id,
                        duplicate: false,
                        debounced: false,
                    }
                } else if let Some(kept) = holder.strip_prefix("  ") {
                    // this very add, sent again, was debounced into `kept` before
                    Added {
                        id: kept.to_string(),
                        duplicate: true,
                        debounced: true,
                    }
                } else if let Some(kept) = holder.strip_prefix(' ') {
                    Added {
                        id: kept.to_string(),
                        duplicate: false,
                        debounced: true,
                    }
                } else {
                    Added {
                        id: holder,
                        duplicate: true,
                        debounced: false,
                    }
                })
            })
            .collect()
    }
}

/// The `add_job` call of already validated `jobs`, ready to send (ids drawn, hash
/// fields laid out): the client's share of an add, done apart from the round trip so
/// `add_bulk` can do it for the next chunk while Redis stores the one before.
pub(crate) fn prepare(q: &QueueStore, jobs: &[NewJob], data: &[String]) -> Result<PreparedChunk> {
    let keys = &q.keys;
    let mut prios = BTreeSet::new();
    let mut prepared = Vec::with_capacity(jobs.len());
    for (job, data) in jobs.iter().zip(data) {
        // a grouped job waits in its group, not in a lane
        if job.opts.group.is_none() {
            prios.insert(job.opts.priority);
        }
        let opts = job.opts.stored()?;
        let id = if is_lean(job, data, &opts) {
            Id::Lean(job.opts.priority)
        } else {
            Id::Drawn(job.opts.job_id.clone().unwrap_or_else(new_job_id))
        };
        prepared.push((id, data.as_str(), opts));
    }
    let prios: Vec<i32> = prios.into_iter().collect();
    let mut inv = SCRIPT.prepare_invoke();
    inv.key(keys.meta())
        .key(keys.lanes())
        .key(keys.delayed())
        .key(keys.marker())
        .key(keys.events());
    for p in &prios {
        inv.key(keys.lane(*p));
    }
    for (id, _, _) in &prepared {
        // (a lean job has no hash: the key is declared but never written)
        match id {
            Id::Drawn(id) => inv.key(keys.job(id)),
            Id::Lean(_) => inv.key(keys.job("~")),
        };
    }
    // dedup keys in use, then debounce keys in use, each declared once
    let dedup_ids = keyed_ids(jobs.iter().map(|j| j.opts.dedup.as_ref().map(|d| &d.id)));
    let debounce_ids = keyed_ids(jobs.iter().map(|j| j.opts.debounce.as_ref().map(|d| &d.id)));
    for d in &dedup_ids {
        inv.key(keys.dedup(d));
    }
    for d in &debounce_ids {
        inv.key(keys.debounce(d));
    }
    for d in &debounce_ids {
        inv.key(keys.debounce_merged(d));
    }
    inv.arg(prios.len())
        .arg(jobs.len())
        .arg(GROUP)
        .arg(EVENTS_MAXLEN)
        .arg(dedup_ids.len());
    for p in &prios {
        inv.arg(*p);
    }
    for (job, (id, data, opts)) in jobs.iter().zip(&prepared) {
        let lane = match job.opts.group {
            Some(_) => 0,
            None => {
                prios
                    .iter()
                    .position(|p| *p == job.opts.priority)
                    .unwrap_or(0)
                    + 1
            }
        };
        // the key's number among the dedup then the debounce KEYS (0: none)
        let (key_no, key_ttl) = match (&job.opts.dedup, &job.opts.debounce) {
            (Some(d), _) => (position(&dedup_ids, &d.id) + 1, d.ttl_ms),
            (None, Some(d)) => (
                dedup_ids.len() + position(&debounce_ids, &d.id) + 1,
                d.ttl_ms,
            ),
            (None, None) => (0, 0),
        };
        if let Id::Lean(_) = id {
            // its lane entry's fields, stored as they come (prelude.lua *Lean jobs*)
            let mut fields: Vec<&str> = vec!["n", &job.name, "d", data];
            if !opts.is_empty() {
                fields.extend(["o", opts.as_str()]);
            }
            let tp = job
                .opts
                .traceparent
                .as_deref()
                .map(crate::trace::stored_form);
            if let Some(tp) = &tp {
                fields.extend(["t", tp.as_ref()]);
            }
            inv.arg("").arg(lane).arg(fields.len()).arg(&fields[..]);
            continue;
        }
        let Id::Drawn(id) = id else { continue };
        // the hash's fields come ready to store: the script passes them to HSET as they
        // are (cutting long values in Lua cost more than all of the job's Redis commands)
        let delay = job.opts.delay_ms.unwrap_or(0);
        // the script fills in the empty values: when added, the lane entry, when due
        let stamps: &[&str] = if delay > 0 {
            &["ts", "", "state", "delayed", "due", ""]
        } else {
            // (a grouped job's `sid` says it waits in its group: see group_wait in the prelude)
            &["ts", "", "sid", ""]
        };
        let mut fields: Vec<Cow<str>> = stamps.iter().map(|s| Cow::Borrowed(*s)).collect();
        fields.push(Cow::Borrowed("name"));
        fields.push(Cow::Borrowed(&job.name));
        push_long(&mut fields, "data", data);
        if !opts.is_empty() {
            push_long(&mut fields, "opts", opts);
        }
        if job.opts.priority != 0 {
            fields.push(Cow::Borrowed("prio"));
            fields.push(Cow::Owned(job.opts.priority.to_string()));
        }
        let group = job.opts.group.as_deref().unwrap_or("");
        if !group.is_empty() {
            fields.push(Cow::Borrowed("grp"));
            fields.push(Cow::Borrowed(group));
        }
        if let Some(tp) = &job.opts.traceparent {
            // (55 bytes: the hash stays a listpack)
            fields.push(Cow::Borrowed("tp"));
            fields.push(crate::trace::stored_form(tp));
        }
        inv.arg(id)
            .arg(delay)
            .arg(lane)
            .arg(if job.opts.job_id.is_some() { "1" } else { "0" })
            .arg(key_no)
            .arg(key_ttl)
            .arg(job.opts.group.as_deref().unwrap_or(""))
            .arg(fields.len())
            .arg(&fields[..]);
    }
    Ok(PreparedChunk {
        inv,
        ids: prepared.into_iter().map(|(id, _, _)| id).collect(),
    })
}

/// The distinct dedup (or debounce) ids of a chunk's jobs, in order of first use.
fn keyed_ids<'a>(ids: impl Iterator<Item = Option<&'a String>>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for id in ids.flatten() {
        if !out.contains(&id.as_str()) {
            out.push(id);
        }
    }
    out
}

/// Where `id` is in `ids` (which holds it).
fn position(ids: &[&str], id: &str) -> usize {
    ids.iter().position(|x| *x == id).unwrap_or(0)
}
