//! What a Redis server says about itself, read from `INFO` and `CONFIG GET
//! maxmemory-policy` (INFO's own `maxmemory_policy` when CONFIG is disabled, as on managed
//! services): [`ServerInfo`], which a worker logs at start and `jobq health` reports, and
//! [`RedisOverview`], what an operator checks first (the dashboard's Redis page and
//! `GET /api/redis`). Both parse the same replies and share the same warnings.
//!
//! On a Redis Cluster, [`Redis::server_info`] asks one master (they are configured alike)
//! and [`Redis::overview`] every master, one entry per node.

use std::collections::HashMap;

use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo};
use redis::Value;
use serde::Serialize;

use crate::connection::{Conn, Redis};
use crate::error::{Error, Result};

/// What a worker prints at start and `jobq health` reports.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    /// `redis_version` from INFO.
    pub version: String,
    /// `maxmemory-policy`; anything but `noeviction` can silently lose jobs.
    pub maxmemory_policy: String,
    /// Whether AOF persistence is on.
    pub aof_enabled: bool,
    /// Whether the server runs in cluster mode.
    pub cluster_enabled: bool,
    /// Whether it is still loading its data set (after a restart): it answers `LOADING`
    /// to every command but INFO until done, and its persistence settings are not final.
    pub loading: bool,
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
        // while loading, INFO reports AOF as off even when it is on: say nothing yet
        if !self.aof_enabled && !self.loading {
            w.push(
                "AOF is off: jobs added since the last snapshot are lost if Redis restarts; \
                 set appendonly yes"
                    .into(),
            );
        }
        w
    }

    fn parse(info: &Info, policy: Option<String>) -> Self {
        ServerInfo {
            version: info.text("redis_version"),
            maxmemory_policy: policy.unwrap_or_else(|| info.text("maxmemory_policy")),
            aof_enabled: info.flag("aof_enabled"),
            cluster_enabled: info.flag("cluster_enabled"),
            loading: info.flag("loading"),
        }
    }
}

/// Redis at a glance: every node (one, or each master of a cluster) and what needs fixing.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RedisOverview {
    /// Whether this is a Redis Cluster.
    pub cluster: bool,
    /// One entry per node, sorted by address.
    pub nodes: Vec<NodeOverview>,
    /// Every node's warnings (on a cluster, each prefixed with the node's address).
    pub warnings: Vec<String>,
}

/// One node at a glance. A number INFO does not give (a managed service may hide some) is
/// `None`.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeOverview {
    /// The node: the masked URL of a single server, `host:port` of a cluster master.
    pub node: String,
    /// `redis_version`.
    pub version: String,
    /// Seconds since the server started.
    pub uptime_secs: Option<u64>,
    /// Memory use and limit.
    pub memory: Memory,
    /// Commands per second now (`instantaneous_ops_per_sec`).
    pub ops_per_sec: Option<u64>,
    /// Connected clients.
    pub connected_clients: Option<u64>,
    /// Clients blocked in a blocking command (idle workers wait in `BZPOPMIN`).
    pub blocked_clients: Option<u64>,
    /// Keys per database.
    pub keyspace: Vec<Keyspace>,
    /// Append-only file persistence.
    pub aof: Aof,
    /// Whether it is still loading its data set.
    pub loading: bool,
    /// This node's warnings: an evicting `maxmemory-policy`, AOF off, AOF failing.
    pub warnings: Vec<String>,
    /// Set when the node did not answer INFO: why (the other fields are then empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Memory use of a node.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Memory {
    /// `used_memory`, bytes.
    pub used_bytes: Option<u64>,
    /// `used_memory_peak`, bytes.
    pub peak_bytes: Option<u64>,
    /// `mem_fragmentation_ratio`: memory the OS gave Redis over what it uses.
    pub fragmentation_ratio: Option<f64>,
    /// `maxmemory`, bytes (0: no limit).
    pub max_bytes: Option<u64>,
    /// `maxmemory-policy`; anything but `noeviction` is flagged.
    pub policy: String,
}

/// One database's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Keyspace {
    /// `db0`, `db1` …
    pub db: String,
    /// Keys in it.
    pub keys: u64,
    /// Of those, keys with a TTL.
    pub expires: u64,
}

/// Append-only file persistence of a node.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Aof {
    /// Whether it is on (`aof_enabled`); off is flagged.
    pub enabled: bool,
    /// Whether a rewrite runs now.
    pub rewrite_in_progress: bool,
    /// How the last rewrite ended (`aof_last_bgrewrite_status`: `ok` or `err`).
    pub last_rewrite_status: String,
    /// How the last write ended (`aof_last_write_status`: `ok` or `err`).
    pub last_write_status: String,
}

impl NodeOverview {
    fn parse(node: String, info: &Info, policy: Option<String>) -> Self {
        let server = ServerInfo::parse(info, policy);
        let mut warnings = server.warnings();
        let aof = Aof {
            enabled: server.aof_enabled,
            rewrite_in_progress: info.flag("aof_rewrite_in_progress"),
            last_rewrite_status: info.text("aof_last_bgrewrite_status"),
            last_write_status: info.text("aof_last_write_status"),
        };
        if aof.enabled {
            for (what, status) in [
                ("rewrite", &aof.last_rewrite_status),
                ("write", &aof.last_write_status),
            ] {
                if status != "ok" && !status.is_empty() {
                    warnings.push(format!(
                        "the last AOF {what} failed ({status}): see the Redis log"
                    ));
                }
            }
        }
        NodeOverview {
            node,
            version: server.version,
            uptime_secs: info.number("uptime_in_seconds"),
            memory: Memory {
                used_bytes: info.number("used_memory"),
                peak_bytes: info.number("used_memory_peak"),
                fragmentation_ratio: info
                    .text("mem_fragmentation_ratio")
                    .parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite()),
                max_bytes: info.number("maxmemory"),
                policy: server.maxmemory_policy,
            },
            ops_per_sec: info.number("instantaneous_ops_per_sec"),
            connected_clients: info.number("connected_clients"),
            blocked_clients: info.number("blocked_clients"),
            keyspace: info.keyspace(),
            aof,
            loading: server.loading,
            warnings,
            error: None,
        }
    }
}

/// An INFO reply by field (`name:value` lines; `# Section` lines and blanks skipped).
struct Info(HashMap<String, String>);

impl Info {
    fn new(text: &str) -> Self {
        Info(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect(),
        )
    }

    /// The field's value (empty when absent).
    fn text(&self, name: &str) -> String {
        self.0.get(name).cloned().unwrap_or_default()
    }

    fn flag(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(|v| v == "1")
    }

    fn number(&self, name: &str) -> Option<u64> {
        self.0.get(name)?.parse().ok()
    }

    /// `db0:keys=1,expires=0,avg_ttl=0` lines, in database order.
    fn keyspace(&self) -> Vec<Keyspace> {
        let mut out: Vec<Keyspace> = self
            .0
            .iter()
            .filter(|(k, _)| {
                k.strip_prefix("db")
                    .is_some_and(|n| n.parse::<u32>().is_ok())
            })
            .map(|(db, v)| {
                let field = |name: &str| {
                    v.split(',')
                        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0)
                };
                Keyspace {
                    db: db.clone(),
                    keys: field("keys"),
                    expires: field("expires"),
                }
            })
            .collect();
        out.sort_by_key(|k| k.db[2..].parse::<u32>().unwrap_or(0));
        out
    }
}

/// One node's replies: its INFO (or why it gave none) and its `maxmemory-policy` when
/// CONFIG answered.
struct NodeReply {
    node: String,
    info: std::result::Result<String, String>,
    policy: Option<String>,
}

impl Redis {
    /// Version, eviction policy, persistence and cluster mode of the server (of one master
    /// of a cluster: they are configured alike).
    pub async fn server_info(&self) -> Result<ServerInfo> {
        let reply = self
            .node_replies(false)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Protocol("no node answered INFO".into()))?;
        let info = reply.info.map_err(Error::Protocol)?;
        Ok(ServerInfo::parse(&Info::new(&info), reply.policy))
    }

    /// What an operator checks first, per node (every master of a cluster): memory,
    /// ops/s, clients, keyspace, eviction policy, AOF, uptime and version, with warnings.
    /// A cluster master that does not answer is listed with its error.
    pub async fn overview(&self) -> Result<RedisOverview> {
        let mut nodes: Vec<NodeOverview> = self
            .node_replies(true)
            .await?
            .into_iter()
            .map(|r| match r.info {
                Ok(text) => NodeOverview::parse(r.node, &Info::new(&text), r.policy),
                Err(e) => NodeOverview {
                    node: r.node,
                    error: Some(e),
                    ..NodeOverview::default()
                },
            })
            .collect();
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        let cluster = self.is_cluster();
        let warnings = nodes
            .iter()
            .flat_map(|n| {
                let error = n.error.iter().map(|e| format!("INFO failed: {e}"));
                n.warnings.iter().cloned().chain(error).map(move |w| {
                    if cluster {
                        format!("{}: {w}", n.node)
                    } else {
                        w
                    }
                })
            })
            .collect();
        Ok(RedisOverview {
            cluster,
            nodes,
            warnings,
        })
    }

    /// INFO and `maxmemory-policy` of the server, or of one master (`every_master`
    /// false) or each master of a cluster.
    async fn node_replies(&self, every_master: bool) -> Result<Vec<NodeReply>> {
        let mut conn = self.conn();
        let cluster = match &mut conn {
            Conn::Cluster(c) => c,
            Conn::Single(single) => {
                let info: String = redis::cmd("INFO")
                    .query_async(single)
                    .await
                    .map_err(|e| self.err(e))?;
                // CONFIG may be disabled (managed services): INFO says the policy too
                let policy: Option<Vec<String>> = redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("maxmemory-policy")
                    .query_async(single)
                    .await
                    .ok();
                return Ok(vec![NodeReply {
                    node: self.addr().to_string(),
                    info: Ok(info),
                    policy: policy.and_then(|v| v.into_iter().nth(1)),
                }]);
            }
        };
        let route = if every_master {
            RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None))
        } else {
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary)
        };
        let infos = cluster
            .route_command(redis::cmd("INFO"), route.clone())
            .await
            .map_err(|e| self.err(e))?;
        let policy_cmd = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .clone();
        let policies = cluster.route_command(policy_cmd, route).await.ok();
        let policy_of = |v: &Value| match v {
            Value::Array(items) => match items.get(1) {
                Some(Value::BulkString(b)) => Some(String::from_utf8_lossy(b).into_owned()),
                Some(Value::SimpleString(s)) => Some(s.clone()),
                _ => None,
            },
            // RESP3 answers CONFIG GET with a map
            Value::Map(pairs) => pairs.first().and_then(|(_, v)| match v {
                Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                Value::SimpleString(s) => Some(s.clone()),
                _ => None,
            }),
            _ => None,
        };
        if !every_master {
            return Ok(vec![NodeReply {
                node: self.addr().to_string(),
                info: text_of(&infos),
                policy: policies.as_ref().and_then(policy_of),
            }]);
        }
        let by_node = |v: Option<Value>| -> Vec<(String, Value)> {
            match v {
                Some(Value::Map(pairs)) => pairs
                    .into_iter()
                    .map(|(k, v)| (text_of(&k).unwrap_or_default(), v))
                    .collect(),
                _ => Vec::new(),
            }
        };
        let policies = by_node(policies);
        let nodes = by_node(Some(infos))
            .into_iter()
            .map(|(node, info)| NodeReply {
                policy: policies
                    .iter()
                    .find(|(n, _)| *n == node)
                    .and_then(|(_, v)| policy_of(v)),
                info: text_of(&info),
                node,
            })
            .collect();
        Ok(nodes)
    }
}

/// A text reply, or the server's error (or the shape it had instead) as text.
fn text_of(v: &Value) -> std::result::Result<String, String> {
    match v {
        Value::BulkString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Ok(s.clone()),
        Value::VerbatimString { text, .. } => Ok(text.clone()),
        Value::ServerError(e) => Err(format!("{e:?}")),
        other => Err(format!("unexpected reply {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:42\r\n\
        # Clients\r\nconnected_clients:3\r\nblocked_clients:1\r\n\
        # Memory\r\nused_memory:1048576\r\nused_memory_peak:2097152\r\nmaxmemory:0\r\n\
        maxmemory_policy:allkeys-lru\r\nmem_fragmentation_ratio:1.25\r\n\
        # Persistence\r\nloading:0\r\naof_enabled:1\r\naof_rewrite_in_progress:0\r\n\
        aof_last_bgrewrite_status:err\r\naof_last_write_status:ok\r\n\
        # Stats\r\ninstantaneous_ops_per_sec:1234\r\n\
        # Keyspace\r\ndb10:keys=1,expires=0,avg_ttl=0\r\ndb0:keys=25,expires=3,avg_ttl=100\r\n";

    #[test]
    fn a_node_is_read_from_info_with_its_warnings() {
        let n = NodeOverview::parse("n".into(), &Info::new(INFO), None);
        assert_eq!(n.version, "7.0.15");
        assert_eq!(n.uptime_secs, Some(42));
        assert_eq!(
            (n.memory.used_bytes, n.memory.peak_bytes, n.memory.max_bytes),
            (Some(1_048_576), Some(2_097_152), Some(0))
        );
        assert_eq!(n.memory.fragmentation_ratio, Some(1.25));
        assert_eq!(n.memory.policy, "allkeys-lru");
        assert_eq!(n.ops_per_sec, Some(1234));
        assert_eq!((n.connected_clients, n.blocked_clients), (Some(3), Some(1)));
        let dbs: Vec<_> = n
            .keyspace
            .iter()
            .map(|k| (&k.db[..], k.keys, k.expires))
            .collect();
        assert_eq!(dbs, [("db0", 25, 3), ("db10", 1, 0)]);
        assert!(n.aof.enabled && n.aof.last_rewrite_status == "err");
        assert_eq!(n.warnings.len(), 2, "{:?}", n.warnings);
        assert!(n.warnings[0].contains("allkeys-lru"));
        assert!(n.warnings[1].contains("last AOF rewrite failed"));

        // CONFIG's answer wins; no AOF is a warning of its own
        let plain = "redis_version:6.2.0\nmaxmemory_policy:allkeys-lru\naof_enabled:0\n";
        let n = NodeOverview::parse("n".into(), &Info::new(plain), Some("noeviction".into()));
        assert_eq!(n.memory.policy, "noeviction");
        assert_eq!(n.warnings.len(), 1);
        assert!(n.warnings[0].starts_with("AOF is off"));
        assert_eq!((n.uptime_secs, n.ops_per_sec), (None, None));
    }
}
