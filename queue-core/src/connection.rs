//! The Redis connection: one auto-reconnecting multiplexed connection for commands and
//! scripts, plus dedicated connections for blocking reads (which must not share a pipe with
//! other traffic and must not time out).
//!
//! A Redis Cluster is found at connect, with no change but the URL: a URL naming several
//! seed hosts (`redis://h1:7000,h2:7001`), or one node whose `INFO` says
//! `cluster_enabled:1`. Then [`Conn`] is a cluster connection: it routes each command and
//! script by its first key (every key of a queue shares one hash tag, so a script or a
//! pipeline of one queue is always single-slot), follows MOVED/ASK, and finds a promoted
//! replica after a failover. What has to look at every node (SCAN) asks `Redis::scan_targets`.

use std::sync::Once;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::config::{seed_urls, Config};
use crate::error::{Error, Result};
use crate::keys::key_slot;

/// How long a normal command may take before the client gives up on it.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long establishing a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a cluster command may spend in all, redirections and the retries of a failover
/// (a replica takes over within a few node timeouts) included.
const CLUSTER_OVERALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to Redis, standalone or cluster: what every command and script runs on.
/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub enum Conn {
    /// One server, through an auto-reconnecting multiplexed connection.
    Single(ConnectionManager),
    /// A Redis Cluster: one multiplexed connection per node, routed by key.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Where one SCAN walk runs: the keyspace of a standalone server, or one cluster master.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ScanTarget {
    /// The one server.
    Server,
    /// The master serving this slot (found through the client's slot map, so a master is
    /// reached however it announces itself).
    Slot(u16),
}

/// How to make more connections: a client of one server, or of a cluster (the latter
/// with no response timeout: it makes only connections for blocking commands).
#[derive(Clone)]
enum Clients {
    Single(Box<redis::Client>),
    Cluster(Box<ClusterClient>),
}

/// A connected Redis: cheap to clone, shared by queues and workers.
#[derive(Clone)]
pub struct Redis {
    clients: Clients,
    conn: Conn,
    addr: String,
    caps: crate::config::JobCaps,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("addr", &self.addr).finish()
    }
}

/// The settings of a connection to one server: `response_timeout` (None for blocking
/// reads), and `retries` per reconnect, with backoff up to 2 s.
fn manager_config(response_timeout: Option<Duration>, retries: usize) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(response_timeout)
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_number_of_retries(retries)
        .set_max_delay(Duration::from_secs(2))
}

fn install_tls_provider() {
    static ONCE: Once = Once::new();
    // rustls needs one process-wide crypto provider; another crate may already have set it.
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Redis {
    /// Connects to the Redis of `config` (fails at once with [`Error::NotConfigured`] when
    /// none is configured).
    pub async fn connect(config: &Config) -> Result<Self> {
        Redis::connect_with_retries(config, 2).await
    }

    /// Like [`Redis::connect`] with a single connection attempt (and a single one per
    /// reconnect later): for producers, whose circuit breaker decides when to try again, so
    /// a refused connection is reported at once instead of after the client's retries.
    pub(crate) async fn connect_once(config: &Config) -> Result<Self> {
        Redis::connect_with_retries(config, 0).await
    }

    async fn connect_with_retries(config: &Config, retries: usize) -> Result<Self> {
        let url = config.redis_url().ok_or(Error::NotConfigured)?;
        if url.starts_with("rediss://") {
            install_tls_provider();
        }
        let addr = config.masked_url();
        let config_err = |e: redis::RedisError| Error::Config(format!("{addr}: {e}"));
        let seeds = seed_urls(url);
        if seeds.len() > 1 {
            return Redis::connect_cluster(seeds, retries, addr.clone())
                .await
                .map(|r| r.with_caps(config.caps));
        }
        // one seed: the URL itself, without a stray comma
        let client = redis::Client::open(seeds[0].as_str()).map_err(config_err)?;
        let cfg = manager_config(Some(RESPONSE_TIMEOUT), retries);
        let mut conn = ConnectionManager::new_with_config(client.clone(), cfg)
            .await
            .map_err(|source| Error::Redis {
                addr: addr.clone(),
                source,
            })?;
        if is_cluster_node(&mut conn)
            .await
            .map_err(|source| Error::Redis {
                addr: addr.clone(),
                source,
            })?
        {
            return Redis::connect_cluster(seeds, retries, addr)
                .await
                .map(|r| r.with_caps(config.caps));
        }
        Ok(Redis {
            clients: Clients::Single(Box::new(client)),
            conn: Conn::Single(conn),
            addr,
            caps: config.caps,
        })
    }

    async fn connect_cluster(seeds: Vec<String>, retries: usize, addr: String) -> Result<Self> {
        let builder = |response_timeout: Option<Duration>| {
            let b = ClusterClientBuilder::new(seeds.clone())
                .connection_timeout(CONNECT_TIMEOUT)
                .retries(retries.max(1) as u32 * 4)
                .min_retry_wait(50)
                .max_retry_wait(1_000);
            match response_timeout {
                Some(t) => b
                    .response_timeout(t)
                    .overall_response_timeout(Some(CLUSTER_OVERALL_TIMEOUT)),
                // a blocking read may wait as long as it asked to
                None => b.overall_response_timeout(None),
            }
            .build()
            .map_err(|e| Error::Config(format!("{addr}: {e}")))
        };
        let shared = builder(Some(RESPONSE_TIMEOUT))?;
        let blocking = builder(None)?;
        let conn = shared
            .get_async_connection()
            .await
            .map_err(|source| Error::Redis {
                addr: addr.clone(),
                source,
            })?;
        Ok(Redis {
            clients: Clients::Cluster(Box::new(blocking)),
            conn: Conn::Cluster(conn),
            addr,
            caps: crate::config::JobCaps::default(),
        })
    }

    /// The shared connection (clone it freely).
    pub fn conn(&self) -> Conn {
        self.conn.clone()
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    /// How many calls that must be stored in the order they are sent may be in flight at
    /// once: `want` on one Redis; 1 on a cluster, whose client may send a call again after
    /// a redirection or a failover, when a later call could overtake it.
    pub fn ordered_in_flight(&self, want: usize) -> usize {
        if self.is_cluster() {
            1
        } else {
            want
        }
    }

    /// The same Redis with a connection of its own in place of the shared one (same
    /// timeouts), for a loop whose large replies must not hold up the other calls: one
    /// connection reads and parses its replies in turn, and writes nothing meanwhile. On a
    /// cluster, the shared connection (one per node already).
    pub async fn with_own_connection(&self) -> Result<Redis> {
        let Clients::Single(client) = &self.clients else {
            return Ok(self.clone());
        };
        let cfg = manager_config(Some(RESPONSE_TIMEOUT), 2);
        let conn = ConnectionManager::new_with_config((**client).clone(), cfg)
            .await
            .map_err(|e| self.err(e))?;
        Ok(Redis {
            conn: Conn::Single(conn),
            ..self.clone()
        })
    }

    /// A new connection of its own, with no response timeout, for blocking commands.
    pub async fn blocking_connection(&self) -> Result<Conn> {
        match &self.clients {
            Clients::Single(client) => {
                let cfg = manager_config(None, 2);
                ConnectionManager::new_with_config((**client).clone(), cfg)
                    .await
                    .map(Conn::Single)
                    .map_err(|e| self.err(e))
            }
            Clients::Cluster(blocking) => blocking
                .get_async_connection()
                .await
                .map(Conn::Cluster)
                .map_err(|e| self.err(e)),
        }
    }

    /// Where a SCAN for `pattern` has to look: the server; in a cluster, the master of the
    /// pattern's hash tag when it starts with a literal one (a queue's keys), else every
    /// master.
    pub(crate) async fn scan_targets(&self, pattern: &str) -> Result<Vec<ScanTarget>> {
        let Conn::Cluster(conn) = &self.conn else {
            return Ok(vec![ScanTarget::Server]);
        };
        if let Some(tag) = literal_hash_tag(pattern) {
            return Ok(vec![self.slot_target(tag)]);
        }
        let mut conn = conn.clone();
        let nodes = conn
            .route_command(
                redis::cmd("CLUSTER").arg("NODES").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await
            .map_err(|e| self.err(e))?;
        let nodes: String = self.decode(nodes)?;
        Ok(slot_per_master(&nodes)
            .into_iter()
            .map(ScanTarget::Slot)
            .collect())
    }

    /// Where the keys in the slot of `key` are scanned: the server, or the cluster master
    /// serving that slot.
    pub(crate) fn slot_target(&self, key: &str) -> ScanTarget {
        match self.conn {
            Conn::Single(_) => ScanTarget::Server,
            Conn::Cluster(_) => ScanTarget::Slot(key_slot(key.as_bytes())),
        }
    }

    /// One SCAN call on `target`: the next cursor and the keys found.
    pub(crate) async fn scan_page(
        &self,
        target: &ScanTarget,
        cursor: u64,
        pattern: &str,
        count: u64,
    ) -> Result<(u64, Vec<Vec<u8>>)> {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count);
        let reply = match (&self.conn, target) {
            (Conn::Cluster(conn), ScanTarget::Slot(slot)) => {
                let route = Route::new(*slot, SlotAddr::Master);
                conn.clone()
                    .route_command(
                        cmd,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await
            }
            (conn, _) => cmd.query_async(&mut conn.clone()).await,
        };
        let reply = reply.map_err(|e| self.err(e))?;
        self.decode(reply)
    }

    /// A reply as `T`; a reply of another shape is a client error naming the server.
    fn decode<T: redis::FromRedisValue>(&self, v: Value) -> Result<T> {
        redis::from_redis_value(v).map_err(|e| self.err(e.into()))
    }

    /// The size caps of jobs added through this connection (from its [`Config`]).
    pub fn caps(&self) -> crate::config::JobCaps {
        self.caps
    }

    /// The same connection with other size caps.
    pub fn with_caps(mut self, caps: crate::config::JobCaps) -> Self {
        self.caps = caps;
        self
    }

    /// The server's address with the password masked.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Wraps a client error with the (masked) server address.
    pub(crate) fn err(&self, source: redis::RedisError) -> Error {
        Error::Redis {
            addr: self.addr.clone(),
            source,
        }
    }

    /// Round-trip time of a PING.
    pub async fn ping(&self) -> Result<Duration> {
        let start = std::time::Instant::now();
        let mut c = self.conn();
        let _: String = redis::cmd("PING")
            .query_async(&mut c)
            .await
            .map_err(|e| self.err(e))?;
        Ok(start.elapsed())
    }
}

/// Whether the server `conn` reaches is a cluster node: `INFO cluster` says so; a server
/// that refuses INFO (a managed service, an ACL user without `+info`) is asked
/// `CLUSTER INFO`, which a standalone server answers with an error. Errors other than
/// the server's refusals (the connection's) are returned.
async fn is_cluster_node(conn: &mut ConnectionManager) -> redis::RedisResult<bool> {
    let refused = |e: &redis::RedisError| {
        !(e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout())
    };
    match redis::cmd("INFO")
        .arg("cluster")
        .query_async::<String>(conn)
        .await
    {
        Ok(info) => return Ok(info_field(&info, "cluster_enabled") == "1"),
        Err(e) if !refused(&e) => return Err(e),
        Err(_) => {}
    }
    match redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async::<String>(conn)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if refused(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The value of `name` in an INFO reply (empty when absent).
fn info_field(info: &str, name: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// The hash tag a glob pattern starts with, when it is literal (`{jobq:video}:*` gives
/// `{jobq:video}`): every key the pattern matches is in that tag's slot.
fn literal_hash_tag(pattern: &str) -> Option<&str> {
    let rest = pattern.strip_prefix('{')?;
    let end = rest.find('}')?;
    let tag = &rest[..end];
    let literal = !tag.is_empty() && !tag.contains(['*', '?', '[', ']', '\\']);
    literal.then(|| &pattern[..end + 2])
}

/// One slot of every master that serves any and is not failed, from a `CLUSTER NODES`
/// reply (a master with no slots holds no keys). Scanning through one of its slots reaches
/// the master whichever address it announces.
fn slot_per_master(nodes: &str) -> Vec<u16> {
    nodes
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let flags: Vec<&str> = f.get(2)?.split(',').collect();
            if !flags.contains(&"master") || flags.iter().any(|f| f.starts_with("fail")) {
                return None;
            }
            // `start-end` or `slot`; `[slot->-node]` entries are migrations in progress
            f.get(8..)?
                .iter()
                .find(|r| !r.starts_with('['))
                .and_then(|r| r.split('-').next()?.parse().ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_with_a_literal_tag_stays_in_its_slot() {
        assert_eq!(literal_hash_tag("{jobq:video}:*"), Some("{jobq:video}"));
        assert_eq!(literal_hash_tag("{jobq:v*}:*"), None);
        assert_eq!(literal_hash_tag("jobq:cache:*"), None);
        assert_eq!(literal_hash_tag("{}x*"), None);
    }

    #[test]
    fn one_slot_of_each_master_serving_any_is_read_from_cluster_nodes() {
        let nodes = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7001@17001 master - 0 0 2 connected [5461->-e5] 5461-10922
c3 127.0.0.1:7002@17002 slave b2 0 0 2 connected
d4 127.0.0.1:7003@17003 master,fail - 0 0 3 connected
f6 127.0.0.1:7005@17005 master - 0 0 5 connected
e5 node-e:7004@17004,node-e master - 0 0 4 connected 10923 10924-16383
";
        assert_eq!(slot_per_master(nodes), [0, 5461, 10923]);
    }
}
