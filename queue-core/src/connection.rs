//! The Redis connection: one auto-reconnecting multiplexed connection for commands and
//! scripts, plus dedicated connections for blocking reads (which must not share a pipe with
//! other traffic and must not time out).

use std::sync::Once;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::Config;
use crate::error::{Error, Result};

/// How long a normal command may take before the client gives up on it.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long establishing a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A connected Redis: cheap to clone, shared by queues and workers.
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    conn: ConnectionManager,
    addr: String,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("addr", &self.addr).finish()
    }
}

/// What a worker prints at start and `jobq health` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerInfo {
    /// `redis_version` from INFO.
    pub version: String,
    /// `maxmemory-policy`; anything but `noeviction` can silently lose jobs.
    pub maxmemory_policy: String,
    /// Whether AOF persistence is on.
    pub aof_enabled: bool,
    /// Whether the server runs in cluster mode.
    pub cluster_enabled: bool,
}

impl ServerInfo {
    /// Warnings users must see: eviction can delete job keys; without AOF a restart loses jobs.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.maxmemory_policy != "noeviction" {
            w.push(format!(
                "maxmemory-policy is {:?}: Redis may evict job keys (lost jobs); set it to noeviction",
                self.maxmemory_policy
            ));
        }
        if !self.aof_enabled {
            w.push(
                "AOF is off: jobs added since the last snapshot are lost if Redis restarts; \
                 set appendonly yes"
                    .into(),
            );
        }
        w
    }
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
        let client = redis::Client::open(url).map_err(|e| Error::Config(format!("{addr}: {e}")))?;
        let cfg = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(retries)
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_with_config(client.clone(), cfg)
            .await
            .map_err(|source| Error::Redis {
                addr: addr.clone(),
                source,
            })?;
        Ok(Redis { client, conn, addr })
    }

    /// The shared multiplexed connection (clone it freely).
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A new connection of its own, with no response timeout, for blocking commands.
    pub async fn blocking_connection(&self) -> Result<ConnectionManager> {
        let cfg = ConnectionManagerConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        ConnectionManager::new_with_config(self.client.clone(), cfg)
            .await
            .map_err(|e| self.err(e))
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

    /// Version, eviction policy, persistence and cluster mode of the server.
    pub async fn server_info(&self) -> Result<ServerInfo> {
        let mut c = self.conn();
        let info: String = redis::cmd("INFO")
            .query_async(&mut c)
            .await
            .map_err(|e| self.err(e))?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        // CONFIG may be disabled on managed services; fall back to what INFO says.
        let policy: Option<Vec<String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut c)
            .await
            .ok();
        let maxmemory_policy = policy
            .and_then(|v| v.into_iter().nth(1))
            .unwrap_or_else(|| field("maxmemory_policy"));
        Ok(ServerInfo {
            version: field("redis_version"),
            maxmemory_policy,
            aof_enabled: field("aof_enabled") == "1",
            cluster_enabled: field("cluster_enabled") == "1",
        })
    }
}
