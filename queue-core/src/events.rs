//! Following the event streams of many queues at once (the dashboard's live updates).
//!
//! Every script that changes a queue appends an entry to the queue's event stream
//! ([`QueueKeys::events`]): `event` names what happened (`added`, `delayed`, `active`,
//! `completed`, `retrying`, `failed`, `waiting`, `stalled`, `removed`, `progress`, `updated`,
//! `cleaned`, `drained`, `paused`, `resumed`, `limits`) and `ids` lists the job ids it
//! concerns (up to 20 per entry); some events carry more (`error`, `due`, `progress`,
//! `count`). The stream is trimmed to about [`EVENTS_MAXLEN`](crate::EVENTS_MAXLEN) entries,
//! so a follower that falls far behind skips what was trimmed: events say *that* something
//! changed; counts and jobs are read back from the queue.
//!
//! An [`EventFollower`] reads with one blocking `XREAD` over all the streams it follows, on a
//! connection of its own ([`Redis::blocking_connection`]), so it never holds up other
//! traffic. On a Redis Cluster the queues' streams live in different slots, which one
//! `XREAD` cannot name together: there it reads each stream on its own, without blocking,
//! every [`CLUSTER_POLL`] until something comes or the wait is over.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures_util::future::try_join_all;
use redis::streams::StreamReadReply;
use serde::Serialize;

use crate::connection::{Conn, Redis};
use crate::error::Result;
use crate::keys::QueueKeys;
use crate::validate::validate_queue_name;

/// How often a follower on a Redis Cluster looks at its streams while nothing comes.
pub const CLUSTER_POLL: Duration = Duration::from_millis(100);

/// One entry of a queue's event stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueEvent {
    /// Queue name.
    pub queue: String,
    /// The entry's stream id (`<ms>-<seq>`, Redis clock): ordered within a queue.
    pub stream_id: String,
    /// What happened, e.g. `added`, `completed`, `failed`.
    pub event: String,
    /// The jobs concerned (empty for queue-wide events such as `paused`).
    pub job_ids: Vec<String>,
    /// Any further fields of the entry (`error`, `due`, `progress`, `count`).
    pub fields: BTreeMap<String, String>,
}

/// Where following a queue starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// After the newest entry now in the stream: only what happens from now on.
    End,
    /// At the oldest entry still kept: for a queue that appeared after following began,
    /// whose first events must not be missed.
    Beginning,
}

/// Reads the event streams of a set of queues, each from where it left off.
pub struct EventFollower {
    redis: Redis,
    conn: Option<Conn>,
    prefix: String,
    /// queue → id of the last entry read (`0-0`: none yet)
    cursors: BTreeMap<String, String>,
}

impl std::fmt::Debug for EventFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventFollower")
            .field("prefix", &self.prefix)
            .field("queues", &self.cursors.len())
            .finish()
    }
}

impl EventFollower {
    /// A follower of queues under `prefix`, following none yet.
    pub fn new(redis: &Redis, prefix: &str) -> Self {
        EventFollower {
            redis: redis.clone(),
            conn: None,
            prefix: prefix.to_string(),
            cursors: BTreeMap::new(),
        }
    }

    /// The queues followed now, sorted.
    pub fn queues(&self) -> impl Iterator<Item = &str> {
        self.cursors.keys().map(String::as_str)
    }

    /// Starts following `queues` (those already followed keep their place), each from
    /// `start`. One round trip for all of them.
    pub async fn follow(&mut self, queues: &[String], start: StartAt) -> Result<()> {
        let new: Vec<&String> = queues
            .iter()
            .filter(|q| !self.cursors.contains_key(q.as_str()))
            .collect();
        for q in &new {
            validate_queue_name(q)?;
        }
        if new.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = match start {
            StartAt::Beginning => vec!["0-0".to_string(); new.len()],
            // one call per stream (in a cluster each may be on another node), all at once
            StartAt::End => {
                try_join_all(new.iter().map(|q| {
                    let redis = &self.redis;
                    let mut conn = redis.conn();
                    let mut cmd = redis::cmd("XREVRANGE");
                    cmd.arg(self.events_key(q))
                        .arg("+")
                        .arg("-")
                        .arg("COUNT")
                        .arg(1);
                    async move {
                        let newest: Vec<(String, Vec<String>)> =
                            cmd.query_async(&mut conn).await.map_err(|e| redis.err(e))?;
                        Ok::<_, crate::Error>(
                            newest
                                .into_iter()
                                .next()
                                .map_or_else(|| "0-0".to_string(), |(id, _)| id),
                        )
                    }
                }))
                .await?
            }
        };
        for (q, id) in new.into_iter().zip(ids) {
            self.cursors.insert(q.clone(), id);
        }
        Ok(())
    }

    /// Stops following `queue`.
    pub fn unfollow(&mut self, queue: &str) {
        self.cursors.remove(queue);
    }

    /// The next events of the followed queues, waiting up to `block` for the first one; at
    /// most `count` per queue. Empty when nothing happened in time (or nothing is followed).
    pub async fn next(&mut self, block: Duration, count: usize) -> Result<Vec<QueueEvent>> {
        if self.cursors.is_empty() {
            tokio::time::sleep(block).await;
            return Ok(Vec::new());
        }
        let keys: Vec<String> = self.cursors.keys().map(|q| self.events_key(q)).collect();
        if self.redis.is_cluster() {
            return self.poll_each(&keys, block, count).await;
        }
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(count.max(1))
            .arg("BLOCK")
            .arg(block.as_millis().max(1) as u64)
            .arg("STREAMS")
            .arg(&keys)
            .arg(self.cursors.values().collect::<Vec<_>>());
        let conn = match &mut self.conn {
            Some(c) => c,
            None => self.conn.insert(self.redis.blocking_connection().await?),
        };
        let reply: Option<StreamReadReply> = match cmd.query_async(conn).await {
            Ok(r) => r,
            Err(e) => {
                // a fresh connection next time: this one may be half-way through a reply
                self.conn = None;
                return Err(self.redis.err(e));
            }
        };
        Ok(self.take(&keys, reply.map(|r| r.keys).unwrap_or_default()))
    }

    /// [`EventFollower::next`] on a cluster: a non-blocking `XREAD` of each stream (all at
    /// once, each routed to its node), again every [`CLUSTER_POLL`] while none has news.
    async fn poll_each(
        &mut self,
        keys: &[String],
        block: Duration,
        count: usize,
    ) -> Result<Vec<QueueEvent>> {
        let deadline = tokio::time::Instant::now() + block;
        loop {
            let redis = &self.redis;
            let reads = keys.iter().zip(self.cursors.values()).map(|(key, after)| {
                let mut conn = redis.conn();
                let mut cmd = redis::cmd("XREAD");
                cmd.arg("COUNT")
                    .arg(count.max(1))
                    .arg("STREAMS")
                    .arg(key)
                    .arg(after);
                async move {
                    cmd.query_async::<Option<StreamReadReply>>(&mut conn)
                        .await
                        .map_err(|e| redis.err(e))
                }
            });
            let streams: Vec<_> = try_join_all(reads)
                .await?
                .into_iter()
                .flatten()
                .flat_map(|r| r.keys)
                .collect();
            let now = tokio::time::Instant::now();
            if !streams.is_empty() || now >= deadline {
                return Ok(self.take(keys, streams));
            }
            tokio::time::sleep_until(deadline.min(now + CLUSTER_POLL)).await;
        }
    }

    /// The events of `streams` (read with the followed queues' `keys`), each queue's cursor
    /// moved past what was read.
    fn take(
        &mut self,
        keys: &[String],
        streams: Vec<redis::streams::StreamKey>,
    ) -> Vec<QueueEvent> {
        let by_key: HashMap<&str, &str> = keys
            .iter()
            .map(String::as_str)
            .zip(self.cursors.keys().map(String::as_str))
            .collect();
        let mut out = Vec::new();
        let mut moved = Vec::new();
        for stream in streams {
            let Some(queue) = by_key.get(stream.key.as_str()) else {
                continue;
            };
            for entry in stream.ids {
                moved.push((queue.to_string(), entry.id.clone()));
                out.push(event_of(queue, entry.id, entry.map));
            }
        }
        for (queue, id) in moved {
            self.cursors.insert(queue, id);
        }
        out
    }

    fn events_key(&self, queue: &str) -> String {
        QueueKeys::new(&self.prefix, queue).events()
    }
}

/// An entry's fields as a [`QueueEvent`].
fn event_of(queue: &str, stream_id: String, map: HashMap<String, redis::Value>) -> QueueEvent {
    let mut fields: BTreeMap<String, String> = map
        .into_iter()
        .filter_map(|(k, v)| redis::from_redis_value::<String>(v).ok().map(|v| (k, v)))
        .collect();
    let event = fields.remove("event").unwrap_or_default();
    // lean jobs' events name their lane and entries, of which their ids are made (one that
    // does not make an id as jobq spells them, a corrupt entry, names no job)
    let lean = fields.remove("lean");
    let job_ids = fields
        .remove("ids")
        .map(|ids| {
            ids.split(' ')
                .filter(|s| !s.is_empty())
                .filter_map(|s| match &lean {
                    Some(prio) => {
                        let id = format!("{}{prio}.{s}", crate::job::LEAN_MARK);
                        crate::job::lean_place(&id).is_some().then_some(id)
                    }
                    None => Some(s.to_string()),
                })
                .collect()
        })
        .unwrap_or_default();
    QueueEvent {
        queue: queue.to_string(),
        stream_id,
        event,
        job_ids,
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_become_events_with_their_ids_and_extra_fields() {
        let map = HashMap::from([
            (
                "event".to_string(),
                redis::Value::BulkString(b"failed".to_vec()),
            ),
            ("ids".to_string(), redis::Value::BulkString(b"a b".to_vec())),
            (
                "error".to_string(),
                redis::Value::BulkString(b"boom".to_vec()),
            ),
        ]);
        let e = event_of("q", "1-0".into(), map);
        assert_eq!(e.event, "failed");
        assert_eq!(e.job_ids, ["a", "b"]);
        assert_eq!(e.fields.get("error").map(String::as_str), Some("boom"));
        assert!(!e.fields.contains_key("ids"));
        // a lean job's id is made of its lane and entry
        let lean = HashMap::from([
            (
                "event".to_string(),
                redis::Value::BulkString(b"added".to_vec()),
            ),
            ("lean".to_string(), redis::Value::BulkString(b"-5".to_vec())),
            (
                "ids".to_string(),
                redis::Value::BulkString(b"1-0 1-1".to_vec()),
            ),
        ]);
        let e = event_of("q", "2-0".into(), lean);
        assert_eq!(e.job_ids, ["~-5.1-0", "~-5.1-1"]);
        assert!(!e.fields.contains_key("lean"));
        // a corrupt one names no job
        for (lean, ids) in [
            ("99999999999999999999", "1-0"),
            ("-0", "01-00"),
            ("x", "1-0"),
        ] {
            let bad = HashMap::from([
                (
                    "event".to_string(),
                    redis::Value::BulkString(b"added".to_vec()),
                ),
                ("lean".to_string(), redis::Value::BulkString(lean.into())),
                ("ids".to_string(), redis::Value::BulkString(ids.into())),
            ]);
            assert!(
                event_of("q", "3-0".into(), bad).job_ids.is_empty(),
                "{lean} {ids}"
            );
        }
    }
}
