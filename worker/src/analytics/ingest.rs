//! `analytics.ingest`: a batch of events into per-day counters, unique users and top items.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use super::AnalyticsKeys;
use queue_core::{Ctx, Job, JobError};
use serde::{Deserialize, Serialize};

use super::day::{day_of, now_ms};
use super::RETENTION_SECS;
use crate::digest::sha256_hex;

/// How long the marker of an ingested batch is kept: a rerun of the same job within this
/// time is recognised and not counted again.
const BATCH_MARKER_SECS: u64 = 7 * 24 * 3600;

/// `{"events": [{"event": "view", "user": "u1", "item": "/home", "ts": 1732233600000}, ..]}`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ingest {
    /// The batch.
    pub events: Vec<Event>,
}

/// One analytics event.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Event name, e.g. `view`: 1–64 characters of `[A-Za-z0-9._:-]`.
    pub event: String,
    /// Who did it; counted in the day's unique users (HyperLogLog).
    #[serde(default)]
    pub user: Option<String>,
    /// What it was about (a page, a video id); counted in the day's top items.
    #[serde(default)]
    pub item: Option<String>,
    /// When, in Unix milliseconds (UTC); the time of ingestion when absent.
    #[serde(default)]
    pub ts: Option<i64>,
}

/// What an ingest did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ingested {
    /// Events in the batch.
    pub events: usize,
    /// Events per UTC day.
    pub days: BTreeMap<String, u64>,
    /// The batch had already been ingested (a rerun after a lost reply or a reclaimed
    /// lease): nothing counted.
    pub duplicate: bool,
}

/// One day's share of a batch, aggregated before it is sent (sorted: the same writes in the
/// same order in every run).
#[derive(Default)]
struct DayBatch<'a> {
    counts: BTreeMap<&'a str, u64>,
    users: BTreeSet<&'a str>,
    event_users: BTreeMap<&'a str, BTreeSet<&'a str>>,
    items: BTreeMap<(&'a str, &'a str), u64>,
}

/// Counts a batch of events: per day, event counts (a hash), distinct users overall and per
/// event (HyperLogLogs) and items per event (a sorted set, for top-N). The batch is
/// aggregated here and written by a script (`ingest.lua`) together with a marker of the
/// queue, job id and a digest of the events, so a rerun of the job counts nothing twice. A
/// big batch is written in parts of at most [`PART_UNITS`] writes and [`PART_KEYS`] keys,
/// each a call with its own marker (one call of 14,000 events over as many days held Redis
/// 373 ms): a rerun writes only the parts not written yet. The parts are the same in every
/// run: the writes are sorted, and events without a time count at the time of the first
/// run (kept under [`AnalyticsKeys::batch_time`]). Day keys expire [`RETENTION_SECS`] after
/// their last write.
pub async fn ingest(job: Job<Ingest>, ctx: Ctx) -> Result<Ingested, JobError> {
    validate(&job.data.events)?;
    let keys = AnalyticsKeys::new(ctx.queue().prefix());
    let mut conn = ctx.queue().redis().conn();
    let mut now = now_ms();
    let (mut days, mut writes) = aggregate(&job.data.events, &keys, now);
    let mut parts = writes.parts();
    if parts.len() > 1 && job.data.events.iter().any(|e| e.ts.is_none()) {
        // the first run's time, for every run
        let key = keys.batch_time(&job.queue, &job.id);
        let (first,): (i64,) = redis::pipe()
            .cmd("SET")
            .arg(&key)
            .arg(now)
            .arg("NX")
            .arg("EX")
            .arg(BATCH_MARKER_SECS)
            .ignore()
            .get(&key)
            .query_async(&mut conn)
            .await?;
        if first != now {
            now = first;
            (days, writes) = aggregate(&job.data.events, &keys, now);
            parts = writes.parts();
        }
    }
    // the events without their ingestion-time defaults: a rerun digests the same
    let digest = sha256_hex(&serde_json::to_vec(&job.data.events)?);
    // (every part written before: a rerun of a whole batch)
    let mut duplicate = true;
    for (n, part) in parts.iter().enumerate() {
        let marker = match n {
            0 => keys.batch(&job.queue, &job.id),
            n => keys.batch_part(n, &job.queue, &job.id),
        };
        let mut invocation = INGEST.prepare_invoke();
        invocation
            .key(marker)
            .arg(&digest)
            .arg(BATCH_MARKER_SECS)
            .arg(RETENTION_SECS);
        for k in &part.keys {
            invocation.key(k);
        }
        for a in &part.args {
            invocation.arg(a);
        }
        let outcome: u8 = invocation.invoke_async(&mut conn).await?;
        if outcome == 2 {
            return Err(JobError::fatal(format!(
                "job {} of queue {} was ingested before with other events; \
                 give a new batch a new job id",
                job.id, job.queue
            )));
        }
        duplicate &= outcome == 1;
    }
    Ok(Ingested {
        events: job.data.events.len(),
        days,
        duplicate,
    })
}

/// The last millisecond of 9999-12-31 UTC: the last day a rollup reads (YYYY-MM-DD).
const LAST_MS: i64 = 253_402_300_799_999;

/// Most writes one `ingest.lua` call makes (a `PFADD` member counts one): a few ms.
const PART_UNITS: usize = 2_000;
/// Most keys one call writes (each gets its expiry too).
const PART_KEYS: usize = 500;

/// The events aggregated by day at time `now` (for those without one): events per day,
/// and the writes, sorted, so two runs over the same events make the same parts.
fn aggregate(events: &[Event], keys: &AnalyticsKeys, now: i64) -> (BTreeMap<String, u64>, Writes) {
    let mut days: BTreeMap<String, DayBatch> = BTreeMap::new();
    for e in events {
        let day = days.entry(day_of(e.ts.unwrap_or(now))).or_default();
        *day.counts.entry(&e.event).or_default() += 1;
        if let Some(user) = &e.user {
            day.users.insert(user);
            day.event_users.entry(&e.event).or_default().insert(user);
        }
        if let Some(item) = &e.item {
            *day.items.entry((&e.event, item)).or_default() += 1;
        }
    }
    let mut w = Writes::default();
    for (day, batch) in &days {
        let counts = keys.counts(day);
        w.op(&counts, &["h", AnalyticsKeys::VERSION_FIELD, "1"]);
        for (event, n) in &batch.counts {
            w.op(&counts, &["h", event, &n.to_string()]);
        }
        if !batch.users.is_empty() {
            w.pfadd(&keys.users(day), &batch.users);
        }
        for (event, users) in &batch.event_users {
            w.pfadd(&keys.event_users(day, event), users);
        }
        for ((event, item), n) in &batch.items {
            w.op(&keys.top(day, event), &["z", item, &n.to_string()]);
        }
    }
    let per_day = days
        .iter()
        .map(|(d, b)| (d.clone(), b.counts.values().sum()))
        .collect();
    (per_day, w)
}

static INGEST: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("ingest.lua")));

/// The writes of a batch, in order: each a key and its op (`h field n`, `z member n` or
/// `p member..`, at most 1,000 members: within Lua's unpack limit).
#[derive(Default)]
struct Writes {
    ops: Vec<(String, Vec<String>)>,
}

/// The KEYS and ops of one `ingest.lua` call.
#[derive(Default)]
struct Part {
    keys: Vec<String>,
    args: Vec<String>,
    units: usize,
}

impl Writes {
    fn op(&mut self, key: &str, parts: &[&str]) {
        let parts = parts.iter().map(|p| p.to_string()).collect();
        self.ops.push((key.to_string(), parts));
    }

    /// PFADDs of `members`, in order, in slices of 1,000.
    fn pfadd(&mut self, key: &str, members: &BTreeSet<&str>) {
        let members: Vec<&str> = members.iter().copied().collect();
        for slice in members.chunks(1_000) {
            let mut op = vec!["p".to_string()];
            op.extend(slice.iter().map(|m| m.to_string()));
            self.ops.push((key.to_string(), op));
        }
    }

    /// The calls that make these writes: in order, a new one once a call holds
    /// [`PART_UNITS`] writes or [`PART_KEYS`] keys.
    fn parts(&self) -> Vec<Part> {
        let mut parts = vec![Part::default()];
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (key, op) in &self.ops {
            let units = if op[0] == "p" { op.len() - 1 } else { 1 };
            let part = parts.last_mut().expect("one part at least");
            let new_key = !index.contains_key(key.as_str());
            if part.units > 0
                && (part.units + units > PART_UNITS || (new_key && part.keys.len() >= PART_KEYS))
            {
                parts.push(Part::default());
                index.clear();
            }
            let part = parts.last_mut().expect("one part at least");
            let k = *index.entry(key.as_str()).or_insert_with(|| {
                part.keys.push(key.clone());
                part.keys.len() + 1
            });
            part.args.push(op[0].clone());
            part.args.push(k.to_string());
            if op[0] == "p" {
                part.args.push((op.len() - 1).to_string());
            }
            part.args.extend(op[1..].iter().cloned());
            part.units += units;
        }
        parts
    }
}

fn validate(events: &[Event]) -> Result<(), JobError> {
    for (i, e) in events.iter().enumerate() {
        let name_ok = (1..=64).contains(&e.event.len())
            && e.event
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._:-".contains(&c));
        if !name_ok {
            return Err(JobError::fatal(format!(
                "events[{i}].event {:?}: use 1-64 characters of [A-Za-z0-9._:-]",
                e.event
            )));
        }
        if let Some(ts) = e.ts {
            if ts < 0 {
                return Err(JobError::fatal(format!(
                    "events[{i}].ts {ts}: a Unix time in milliseconds cannot be negative"
                )));
            }
            // (a later day is no YYYY-MM-DD: no rollup could read what it counted)
            if ts > LAST_MS {
                return Err(JobError::fatal(format!(
                    "events[{i}].ts {ts}: past the year 9999 (at most {LAST_MS})"
                )));
            }
        }
        for (field, value) in [("user", &e.user), ("item", &e.item)] {
            if value
                .as_ref()
                .is_some_and(|v| v.is_empty() || v.len() > 512)
            {
                return Err(JobError::fatal(format!(
                    "events[{i}].{field}: use 1-512 bytes"
                )));
            }
        }
    }
    Ok(())
}
