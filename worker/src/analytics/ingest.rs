//! `analytics.ingest`: a batch of events into per-day counters, unique users and top items.

use std::collections::{BTreeMap, HashMap, HashSet};

use queue_core::keys::AnalyticsKeys;
use queue_core::{Ctx, Job, JobError};
use serde::{Deserialize, Serialize};

use super::day::{day_of, now_ms};
use super::{rollup_cache_key, CACHE_NAMESPACE, RETENTION_SECS};

/// How long the marker of an ingested batch is kept: a retry or a rerun of the same job
/// within this time is recognised and not counted again.
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
    /// The batch had already been ingested (a retry after a lost reply): nothing counted.
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
/// event (HyperLogLogs) and items per event (a sorted set, for top-N). The batch is written
/// in one `MULTI` together with a marker of the job id, so a retried job counts once. Day
/// keys expire [`RETENTION_SECS`] after their last write.
pub async fn ingest(job: Job<Ingest>, ctx: Ctx) -> Result<Ingested, JobError> {
    validate(&job.data.events)?;
    let keys = AnalyticsKeys::new(ctx.queue().prefix());
    let mut conn = ctx.queue().redis().conn();
    let marker = keys.batch(&job.id);
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

    let seen: bool = redis::cmd("EXISTS")
        .arg(&marker)
        .query_async(&mut conn)
        .await?;
    if seen {
        return Ok(Ingested {
            duplicate: true,
            ..summary
        });
    }
    let mut pipe = redis::pipe();
    pipe.atomic();
    for (day, batch) in &days {
        let counts = keys.counts(day);
        for (event, n) in &batch.counts {
            pipe.hincr(&counts, *event, *n).ignore();
        }
        pipe.expire(&counts, RETENTION_SECS).ignore();
        if !batch.users.is_empty() {
            let users = keys.users(day);
            pipe.pfadd(&users, batch.users.iter().collect::<Vec<_>>())
                .ignore();
            pipe.expire(&users, RETENTION_SECS).ignore();
        }
        for (event, users) in &batch.event_users {
            let key = keys.event_users(day, event);
            pipe.pfadd(&key, users.iter().collect::<Vec<_>>()).ignore();
            pipe.expire(&key, RETENTION_SECS).ignore();
        }
        let mut tops = HashSet::new();
        for ((event, item), n) in &batch.items {
            let key = keys.top(day, event);
            pipe.zincr(&key, *item, *n).ignore();
            if tops.insert(key.clone()) {
                pipe.expire(&key, RETENTION_SECS).ignore();
            }
        }
    }
    pipe.set_ex(&marker, 1, BATCH_MARKER_SECS).ignore();
    pipe.query_async::<()>(&mut conn).await?;

    // a cached rollup of a day this batch touched is out of date now
    let cache = ctx.cache(CACHE_NAMESPACE);
    for day in days.keys() {
        cache.delete(&rollup_cache_key(day)).await?;
    }
    Ok(summary)
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
