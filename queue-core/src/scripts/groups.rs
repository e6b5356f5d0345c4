//! Plain reads of a queue's groups (groups.rs): the limits hash, and the busiest groups with
//! their counts and parking, read in one pipeline each.

use crate::error::{Error, Result};
use crate::groups::{GroupInfo, GroupLimited, GroupsView};
use crate::store::QueueStore;

/// Every field of the group limits hash (the defaults and the overrides).
pub(crate) async fn limit_fields(q: &QueueStore) -> Result<Vec<(String, String)>> {
    super::hscan::read_hash(q, &q.keys.group_limits()).await
}

/// The group counts and the `limit` busiest groups: most waiting first, then those with
/// active jobs only.
pub(crate) async fn read(q: &QueueStore, limit: usize) -> Result<GroupsView> {
    let keys = &q.keys;
    let mut conn = q.redis.conn();
    // (ZREVRANGE 0 -1 would be every group: a limit of 0 reads the counts alone)
    let top = limit as isize - 1;
    type Scored = Vec<(String, f64)>;
    let (with_waiting, with_active, parked, busy, running): (u64, u64, u64, Scored, Scored) =
        redis::pipe()
            .zcard(keys.group_waiting())
            .zcard(keys.group_active())
            .zcard(keys.group_parked())
            .zrevrange_withscores(keys.group_waiting(), 0, top.max(0))
            .zrevrange_withscores(keys.group_active(), 0, top.max(0))
            .query_async(&mut conn)
            .await
            .map_err(|e| q.redis.err(e))?;
    let mut groups: Vec<GroupInfo> = busy
        .into_iter()
        .take(limit)
        .map(|(group, w)| GroupInfo {
            group,
            waiting: w.max(0.0) as u64,
            active: 0,
            limited: None,
        })
        .collect();
    for (group, _) in running {
        if groups.len() >= limit {
            break;
        }
        if !groups.iter().any(|g| g.group == group) {
            groups.push(GroupInfo {
                group,
                waiting: 0,
                active: 0,
                limited: None,
            });
        }
    }
    if !groups.is_empty() {
        let mut pipe = redis::pipe();
        for g in &groups {
            pipe.zscore(keys.group_active(), &g.group)
                .zscore(keys.group_parked(), &g.group);
        }
        let scores: Vec<(Option<f64>, Option<f64>)> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| q.redis.err(e))?;
        if scores.len() != groups.len() {
            return Err(Error::Protocol("group scores: short reply".into()));
        }
        for (g, (active, parked)) in groups.iter_mut().zip(scores) {
            g.active = active.unwrap_or(0.0).max(0.0) as u64;
            g.limited = parked.map(|at| {
                if at.is_infinite() {
                    GroupLimited::Concurrency
                } else {
                    GroupLimited::Rate {
                        until_ms: at.max(0.0) as u64,
                    }
                }
            });
        }
    }
    Ok(GroupsView {
        with_waiting,
        with_active,
        limited: parked,
        groups,
    })
}
