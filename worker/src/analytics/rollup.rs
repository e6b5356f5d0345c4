//! `analytics.rollup`: one day's summary, computed from the ingest keys and cached.

use std::collections::BTreeMap;
use std::time::Duration;

use super::AnalyticsKeys;
use queue_core::{Ctx, Job, JobError};
use serde::{Deserialize, Serialize};

use super::day::{now_ms, parse_day};
use super::{rollup_cache_key, CACHE_NAMESPACE};
use queue_core::Cache;

/// How long a computed rollup is kept in the cache (an ingest into the day makes it
/// unreachable sooner: the key holds the day's version).
const ROLLUP_TTL: Duration = Duration::from_secs(300);

/// `{"day": "2026-11-22", "top": 10}`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RollupRequest {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// How many top items per event (1–100, default 10).
    #[serde(default = "default_top")]
    pub top: usize,
}

fn default_top() -> usize {
    10
}

/// One day's summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rollup {
    /// The UTC day.
    pub day: String,
    /// Events of the day, all names together.
    pub total: u64,
    /// Events per name.
    pub counts: BTreeMap<String, u64>,
    /// Distinct users over all events (HyperLogLog estimate, ~0.8 % standard error).
    pub unique_users: u64,
    /// Distinct users per event name (estimates).
    pub unique_users_by_event: BTreeMap<String, u64>,
    /// The most frequent items per event name, most frequent first.
    pub top: BTreeMap<String, Vec<TopItem>>,
    /// How many top items per event were asked for.
    pub top_n: usize,
    /// The day's version when it was computed: how many ingests had touched the day.
    pub version: u64,
    /// When it was computed (Unix ms).
    pub computed_at: i64,
    /// Served from the cache rather than computed for this job.
    #[serde(default)]
    pub cached: bool,
}

/// An item and its count.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopItem {
    /// The item.
    pub item: String,
    /// Events about it.
    pub count: u64,
}

/// Summarises a day: counts, unique users, top items. Every ingest into a day bumps the
/// day's version (a field of its counts hash), and summaries are cached under the day,
/// version and `top` for five minutes, so a cached summary is never older than the data.
/// `cached` in the result tells where it came from.
pub async fn rollup(job: Job<RollupRequest>, ctx: Ctx) -> Result<Rollup, JobError> {
    let req = job.data;
    if parse_day(&req.day).is_none() {
        return Err(JobError::fatal(format!(
            "day {:?}: expected a date as YYYY-MM-DD",
            req.day
        )));
    }
    if !(1..=100).contains(&req.top) {
        return Err(JobError::fatal(format!("top {}: use 1-100", req.top)));
    }
    let keys = AnalyticsKeys::new(ctx.queue().prefix());
    let mut conn = ctx.queue().redis().conn();
    let (mut counts, unique_users): (BTreeMap<String, u64>, u64) = redis::pipe()
        .hgetall(keys.counts(&req.day))
        .pfcount(keys.users(&req.day))
        .query_async(&mut conn)
        .await?;
    let version = counts.remove(AnalyticsKeys::VERSION_FIELD).unwrap_or(0);
    let cache = ctx.cache(CACHE_NAMESPACE);
    let cache_key = rollup_cache_key(&req.day, version, req.top);
    if let Some(hit) = cached(&cache, &cache_key).await? {
        return Ok(Rollup {
            cached: true,
            ..hit
        });
    }
    let summary = Rollup {
        version,
        ..compute(&keys, &mut conn, &req.day, req.top, counts, unique_users).await?
    };
    cache.set(&cache_key, &summary, ROLLUP_TTL).await?;
    Ok(summary)
}

/// A cached summary; one that no longer decodes (stored by another version of jobq) is a
/// miss, to be recomputed and overwritten.
async fn cached(cache: &Cache, key: &str) -> Result<Option<Rollup>, JobError> {
    match cache.get::<Rollup>(key).await {
        Ok(hit) => Ok(hit),
        Err(e @ queue_core::Error::CacheValue { .. }) => {
            tracing::warn!(error = %e, "ignoring a cached rollup that does not decode");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

async fn compute(
    keys: &AnalyticsKeys,
    conn: &mut queue_core::Conn,
    day: &str,
    top: usize,
    counts: BTreeMap<String, u64>,
    unique_users: u64,
) -> Result<Rollup, JobError> {
    let mut pipe = redis::pipe();
    for event in counts.keys() {
        pipe.pfcount(keys.event_users(day, event));
        pipe.zrevrange_withscores(keys.top(day, event), 0, top as isize - 1);
    }
    let per_event: Vec<redis::Value> = if counts.is_empty() {
        Vec::new()
    } else {
        pipe.query_async(conn).await?
    };
    let mut unique_users_by_event = BTreeMap::new();
    let mut tops = BTreeMap::new();
    for (event, pair) in counts.keys().zip(per_event.chunks(2)) {
        let users: u64 = redis::from_redis_value_ref(&pair[0])?;
        let items: Vec<(String, f64)> = redis::from_redis_value_ref(&pair[1])?;
        unique_users_by_event.insert(event.clone(), users);
        if !items.is_empty() {
            let items = items
                .into_iter()
                .map(|(item, score)| TopItem {
                    item,
                    count: score as u64,
                })
                .collect();
            tops.insert(event.clone(), items);
        }
    }
    Ok(Rollup {
        day: day.to_string(),
        total: counts.values().sum(),
        counts,
        unique_users,
        unique_users_by_event,
        top: tops,
        top_n: top,
        version: 0,
        computed_at: now_ms(),
        cached: false,
    })
}
