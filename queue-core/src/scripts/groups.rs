//! Plain reads of a queue's groups (groups.rs): the limits hash, and the busiest groups with
//! their counts and parking, read in one pipeline each.

use redis::Value;

use super::piped;
use crate::error::{Error, Result};
use crate::groups::{GroupInfo, GroupLimited, GroupsView};
use crate::store::QueueStore;

/// Every field of the group limits hash (the defaults and the overrides); none when it is
/// not a hash (a corrupt record, which the claim reads as no limits too).
pub(crate) async fn limit_fields(q: &QueueStore) -> Result<Vec<(String, String)>> {
    Ok(super::hscan::read_hash(q, &q.keys.group_limits())
        .await?
        .unwrap_or_default())
}

/// The group counts and the `limit` busiest groups: most waiting first, then those with
/// active jobs only.
pub(crate) async fn read(q: &QueueStore, limit: usize) -> Result<GroupsView> {
    let keys = &q.keys;
    let mut conn = q.redis.conn();
    // (ZREVRANGE 0 -1 would be every group: a limit of 0 reads the counts alone)
    let top = limit as isize - 1;
    type Scored = Vec<(String, f64)>;
    // (each set alone: one of the wrong type, a corrupt record, reads as empty)
    let replies: Vec<Value> = redis::pipe()
        .ignore_errors()
        .zcard(keys.group_waiting())
        .zcard(keys.group_active())
        .zcard(keys.group_parked())
        .zrevrange_withscores(keys.group_waiting(), 0, top.max(0))
        .zrevrange_withscores(keys.group_active(), 0, top.max(0))
        .query_async(&mut conn)
        .await
        .map_err(|e| q.redis.err(e))?;
    let mut replies = replies.into_iter();
    let mut next = || replies.next().unwrap_or(Value::Nil);
    let err = |e| q.redis.err(e);
    let with_waiting: u64 = piped(next()).map_err(err)?;
    let with_active: u64 = piped(next()).map_err(err)?;
    let parked: u64 = piped(next()).map_err(err)?;
    let busy: Scored = piped(next()).map_err(err)?;
    let running: Scored = piped(next()).map_err(err)?;
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
        pipe.ignore_errors();
        for g in &groups {
            pipe.zscore(keys.group_active(), &g.group)
                .zscore(keys.group_parked(), &g.group);
        }
        let replies: Vec<Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| q.redis.err(e))?;
        if replies.len() != 2 * groups.len() {
            return Err(Error::Protocol("group scores: short reply".into()));
        }
        let mut replies = replies.into_iter();
        for g in groups.iter_mut() {
            let active: Option<f64> = piped(replies.next().unwrap_or(Value::Nil)).map_err(err)?;
            let parked: Option<f64> = piped(replies.next().unwrap_or(Value::Nil)).map_err(err)?;
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
