//! What the bulk operations act on, read before they start (a snapshot): the delayed set's
//! members, and each lane's last entry id.

use std::collections::HashSet;

use redis::streams::StreamRangeReply;

use super::BATCH;
use crate::error::Result;
use crate::lanes::Lanes;
use crate::store::QueueStore;

/// The members of the delayed set now (see [`members`]).
pub(crate) async fn delayed(q: &QueueStore) -> Result<Vec<String>> {
    members(q, &q.keys.delayed()).await
}

/// The jobs waiting in groups now: each group's queue, group after group (a drain deletes
/// these as it deletes the delayed set's snapshot).
pub(crate) async fn grouped(q: &QueueStore) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for g in members(q, &q.keys.group_waiting()).await? {
        out.extend(members(q, &q.keys.group_queue(&g)).await?);
    }
    Ok(out)
}

/// The lanes now, their keys, and each lane's last entry id (`0-0` for an empty lane): an
/// entry added later has a greater id.
pub(crate) async fn lane_bounds(q: &QueueStore) -> Result<(Lanes, Vec<String>, Vec<String>)> {
    let inner = q;
    let keys = &inner.keys;
    let lanes = super::refresh_lanes(inner).await?;
    let lane_keys = lanes.keys(keys);
    // each lane's last entry id now: an entry added later has a greater one
    let mut pipe = redis::pipe();
    pipe.atomic();
    for k in &lane_keys {
        pipe.cmd("XREVRANGE")
            .arg(k)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
    }
    let last: Vec<StreamRangeReply> = if lane_keys.is_empty() {
        Vec::new()
    } else {
        pipe.query_async(&mut inner.redis.conn())
            .await
            .map_err(|e| inner.redis.err(e))?
    };
    let bounds: Vec<String> = last
        .iter()
        .map(|r| r.ids.first().map_or_else(|| "0-0".into(), |e| e.id.clone()))
        .collect();
    Ok((lanes, lane_keys, bounds))
}

/// The members of sorted set `key`, read in bounded ZSCAN pages, each once, ordered by
/// score. ZSCAN returns every member present for the whole scan whatever else changes
/// meanwhile; rank pages (ZRANGE) would skip members when others leave the set between
/// two pages, as delayed jobs do when workers promote them.
async fn members(q: &QueueStore, key: &str) -> Result<Vec<String>> {
    let mut conn = q.redis.conn();
    let mut seen = HashSet::new();
    let mut members: Vec<(f64, String)> = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, page): (String, Vec<(String, f64)>) = redis::cmd("ZSCAN")
            .arg(key)
            .arg(&cursor)
            .arg("COUNT")
            .arg(BATCH)
            .query_async(&mut conn)
            .await
            .map_err(|e| q.redis.err(e))?;
        for (member, score) in page {
            if seen.insert(member.clone()) {
                members.push((score, member));
            }
        }
        if next == "0" {
            break;
        }
        cursor = next;
    }
    members.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    Ok(members.into_iter().map(|(_, m)| m).collect())
}
