//! `analytics.ingest`: a batch of events into per-day counters, unique users and top items.

use std::collections::{BTreeMap, HashMap, HashSet};
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

/// One day's share of a batch, aggregated before it is sent.
#[derive(Default)]
struct DayBatch<'a> {
    counts: HashMap<&'a str, u64>,
    users: HashSet<&'a str>,
    event_users: HashMap<&'a str, HashSet<&'a str>>,
    items: HashMap<(&'a str, &'a str), u64>,
}

/// Counts a batch of events: per day, event counts (a hash), distinct users overall and per
/// event (HyperLogLogs) and items per event (a sorted set, for top-N). The batch is
/// aggregated here and written by one script (`ingest.lua`) together with a marker of the
/// queue, job id and a digest of the events, so a rerun of the job counts nothing twice.
/// Day keys expire [`RETENTION_SECS`] after their last write.
pub async fn ingest(job: Job<Ingest>, ctx: Ctx) -> Result<Ingested, JobError> {
    validate(&job.data.events)?;
    let keys = AnalyticsKeys::new(ctx.queue().prefix());
    let now = now_ms();
    let mut days: BTreeMap<String, DayBatch> = BTreeMap::new();
    for e in &job.data.events {
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
    let summary = Ingested {
        events: job.data.events.len(),
        days: days
            .iter()
            .map(|(d, b)| (d.clone(), b.counts.values().sum()))
            .collect(),
        duplicate: false,
    };
    // the events without their ingestion-time defaults: a rerun digests the same
    let digest = sha256_hex(&serde_json::to_vec(&job.data.events)?);

    let mut call = Writes::default();
    for (day, batch) in &days {
        let counts = call.key(keys.counts(day));
        call.op(&["h", &counts, AnalyticsKeys::VERSION_FIELD, "1"]);
        for (event, n) in &batch.counts {
            call.op(&["h", &counts, event, &n.to_string()]);
        }
        if !batch.users.is_empty() {
            let users = call.key(keys.users(day));
            call.pfadd(&users, &batch.users);
        }
        for (event, users) in &batch.event_users {
            let key = call.key(keys.event_users(day, event));
            call.pfadd(&key, users);
        }
        let mut tops: HashMap<&str, String> = HashMap::new();
        for ((event, item), n) in &batch.items {
            let key = match tops.get(event) {
                Some(k) => k.clone(),
                None => {
                    let k = call.key(keys.top(day, event));
                    tops.insert(event, k.clone());
                    k
                }
            };
            call.op(&["z", &key, item, &n.to_string()]);
        }
    }
    let mut invocation = INGEST.prepare_invoke();
    invocation
        .key(keys.batch(&job.queue, &job.id))
        .arg(&digest)
        .arg(BATCH_MARKER_SECS)
        .arg(RETENTION_SECS);
    for k in &call.keys {
        invocation.key(k);
    }
    for a in &call.args {
        invocation.arg(a);
    }
    let mut conn = ctx.queue().redis().conn();
    let outcome: u8 = invocation.invoke_async(&mut conn).await?;
    match outcome {
        0 => Ok(summary),
        1 => Ok(Ingested {
            duplicate: true,
            ..summary
        }),
        _ => Err(JobError::fatal(format!(
            "job {} of queue {} was ingested before with other events; \
             give a new batch a new job id",
            job.id, job.queue
        ))),
    }
}

static INGEST: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("ingest.lua")));

/// KEYS and ops of one `ingest.lua` call.
#[derive(Default)]
struct Writes {
    keys: Vec<String>,
    args: Vec<String>,
}

impl Writes {
    /// Adds a key; returns its KEYS index (the marker is KEYS[1]).
    fn key(&mut self, key: String) -> String {
        self.keys.push(key);
        (self.keys.len() + 1).to_string()
    }

    fn op(&mut self, parts: &[&str]) {
        self.args.extend(parts.iter().map(|p| p.to_string()));
    }

    /// PFADDs in slices of 1,000, within Lua's unpack limit.
    fn pfadd(&mut self, key: &str, members: &HashSet<&str>) {
        let members: Vec<&str> = members.iter().copied().collect();
        for slice in members.chunks(1_000) {
            self.args.push("p".into());
            self.args.push(key.to_string());
            self.args.push(slice.len().to_string());
            self.args.extend(slice.iter().map(|m| m.to_string()));
        }
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
