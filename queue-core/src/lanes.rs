//! The priority lanes of a queue as a process last saw them. Scripts that touch lane streams
//! are given the lane keys in KEYS and the version they were built from; when a producer has
//! created a lane since, the script answers "stale" and the caller refreshes from Redis.

use std::sync::Mutex;

use crate::connection::Redis;
use crate::error::Result;
use crate::keys::QueueKeys;

/// One snapshot of the lanes: priorities from highest to lowest, and the version they carry.
#[derive(Debug, Clone)]
pub(crate) struct Lanes {
    pub version: String,
    pub prios: Vec<i32>,
}

impl Default for Lanes {
    fn default() -> Self {
        // "0" is what scripts read for a queue that has no lanes yet.
        Lanes {
            version: "0".into(),
            prios: Vec::new(),
        }
    }
}

impl Lanes {
    /// Stream keys, highest priority first.
    pub fn keys(&self, keys: &QueueKeys) -> Vec<String> {
        self.prios.iter().map(|p| keys.lane(*p)).collect()
    }
}

/// The cached snapshot, shared by a queue's producer and worker sides.
#[derive(Debug, Default)]
pub(crate) struct LaneCache(Mutex<Lanes>);

impl LaneCache {
    pub fn get(&self) -> Lanes {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the current lanes from Redis: the version, then the set. Lanes are only ever
    /// added, so the set read second holds at least the lanes of the version read first (a
    /// lane made in between comes with a newer version, which the next script call asks
    /// for). Not in a MULTI: Redis refuses every command of a transaction while it is out
    /// of memory, and a queue must stay readable then.
    pub async fn refresh(&self, redis: &Redis, keys: &QueueKeys) -> Result<Lanes> {
        let mut conn = redis.conn();
        // read as bytes: a member that is not a lane number (a corrupt record) is skipped,
        // never a failure of every call on the queue
        let read = redis::pipe()
            .hget(keys.meta(), "lanes_ver")
            .zrevrange(keys.lanes(), 0, -1)
            .to_owned();
        let (version, members): (Option<Vec<u8>>, Vec<Vec<u8>>) = match read
            .query_async(&mut conn)
            .await
        {
            Err(e) if e.code() == Some("WRONGTYPE") && lanes_set_lost(&mut conn, keys).await => {
                read.query_async(&mut conn).await
            }
            r => r,
        }
        .map_err(|e| redis.err(e))?;
        let prios = members
            .iter()
            .filter_map(|m| std::str::from_utf8(m).ok()?.parse::<i32>().ok())
            .filter(|p| {
                crate::job::PRIORITY_RANGE.contains(p)
                    || *p == crate::keys::FRONT_LANE
                    || *p == crate::keys::GROUP_LANE
            })
            .collect();
        let version = match version {
            None => "0".to_string(),
            Some(v) => match String::from_utf8(v) {
                Ok(v) if v.parse::<u64>().is_ok() => v,
                // the scripts compare the stored bytes with ours: a version that is not a
                // number (a corrupt record) would make every call stale forever. Start it
                // again; a script that bumps it meanwhile makes the next call refresh.
                _ => {
                    let _: () = redis::cmd("HSET")
                        .arg(keys.meta())
                        .arg("lanes_ver")
                        .arg("1")
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| redis.err(e))?;
                    "1".to_string()
                }
            },
        };
        let lanes = Lanes { version, prios };
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = lanes.clone();
        Ok(lanes)
    }
}

/// When the queue's lanes set holds another type (a corrupt record), deletes it and says so:
/// it lists no lane of ours. Adds put their lanes back in it, and the repair sweep those of
/// the jobs already waiting; the lanes version moves on, so every process reads it again.
async fn lanes_set_lost(conn: &mut crate::connection::Conn, keys: &QueueKeys) -> bool {
    let kind: redis::RedisResult<String> =
        redis::cmd("TYPE").arg(keys.lanes()).query_async(conn).await;
    if !matches!(kind.as_deref(), Ok(k) if k != "zset" && k != "none") {
        return false;
    }
    tracing::warn!(key = %keys.lanes(), "the lanes set is not a sorted set (a corrupt record): made again");
    let done: redis::RedisResult<()> = redis::pipe()
        .del(keys.lanes())
        .ignore()
        .hincr(keys.meta(), "lanes_ver", 1)
        .ignore()
        .query_async(conn)
        .await;
    done.is_ok()
}
