//! A private Redis Cluster on loopback: `redis-server --cluster-enabled yes` per node, joined
//! by `redis-cli --cluster create`, stopped with the test process like [`RedisServer`].

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::RedisServer;

/// How long a master may be unreachable before its replica is promoted (ms).
const NODE_TIMEOUT_MS: u64 = 1_000;

/// A running cluster of `masters` masters, each with `replicas` replicas.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

/// A free loopback port whose cluster bus port (+10000) is free too.
fn free_cluster_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = l.local_addr().expect("local addr").port();
        if port > 55_000 {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// `redis-cli -p <port> <args…>`, its standard output.
fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A node ready to join a cluster.
fn start_node() -> RedisServer {
    let timeout = NODE_TIMEOUT_MS.to_string();
    RedisServer::start_on(
        free_cluster_port(),
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            &timeout,
        ],
    )
}

impl RedisCluster {
    /// Starts the nodes and forms the cluster; returns once every node says
    /// `cluster_state:ok`.
    pub fn start(masters: usize, replicas: usize) -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..masters * (1 + replicas))
            .map(|_| start_node())
            .collect();
        let addrs: Vec<String> = nodes.iter().map(RedisServer::addr).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_ok(Duration::from_secs(30));
        cluster
    }

    /// Adds a master that serves no slot (as `redis-cli --cluster add-node` leaves it before
    /// a reshard), and waits until every node knows it; returns its port.
    pub fn add_empty_master(&mut self) -> u16 {
        let node = start_node();
        let port = node.port;
        let out = Command::new("redis-cli")
            .args(["--cluster", "add-node", &node.addr(), &self.nodes[0].addr()])
            .output()
            .expect("run redis-cli --cluster add-node");
        assert!(
            out.status.success(),
            "add-node failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        self.nodes.push(node);
        let deadline = Instant::now() + Duration::from_secs(30);
        let id = cli(port, &["cluster", "myid"]).trim().to_string();
        while !self
            .live_ports()
            .iter()
            .all(|p| cli(*p, &["cluster", "nodes"]).contains(&id))
        {
            assert!(Instant::now() < deadline, "the new master did not join");
            std::thread::sleep(Duration::from_millis(100));
        }
        self.wait_ok(Duration::from_secs(30));
        port
    }

    /// `redis://127.0.0.1:<port>` of node `i` (any node will do as the one URL).
    pub fn url(&self, i: usize) -> String {
        self.nodes[i].url()
    }

    /// Waits until every live node reports `cluster_state:ok` and agrees that every slot has
    /// a reachable master.
    pub fn wait_ok(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let ok = self.live_ports().iter().all(|p| {
                let info = cli(*p, &["cluster", "info"]);
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
            });
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not reach cluster_state:ok within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| cli(n.port, &["ping"]).starts_with("PONG"))
            .map(|n| n.port)
            .collect()
    }

    /// The port of the master serving the slot of `key`, as a live node sees it.
    pub fn master_of(&self, key: &str) -> u16 {
        self.try_master_of(key)
            .unwrap_or_else(|| panic!("no master serves the slot of {key:?}"))
    }

    /// Like [`RedisCluster::master_of`]; None while no live master serves it (mid-failover).
    fn try_master_of(&self, key: &str) -> Option<u16> {
        let port = self.live_ports()[0];
        let slot: u16 = cli(port, &["cluster", "keyslot", key])
            .trim()
            .parse()
            .expect("CLUSTER KEYSLOT answers a number");
        for line in cli(port, &["cluster", "nodes"]).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            let serves = f[8..].iter().any(|range| {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if (lo..=hi).contains(&slot))
            });
            if serves {
                let hostport = f[1].split('@').next().expect("host:port@bus");
                return hostport.rsplit_once(':').and_then(|(_, p)| p.parse().ok());
            }
        }
        None
    }

    /// Waits until a master other than `old` serves the slot of `key` (its replica was
    /// promoted) and the cluster is `ok` again; returns the new master's port.
    pub fn wait_failover(&self, key: &str, old: u16, timeout: Duration) -> u16 {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.try_master_of(key);
            if let Some(now) = now.filter(|p| *p != old) {
                self.wait_ok(deadline.saturating_duration_since(Instant::now()));
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "no replica took over from {old} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every replica of the master on `port` has applied all the master had
    /// written when this was called: replication is asynchronous, so a master killed
    /// earlier would take those writes with it. (`WAIT` cannot tell: it only waits for
    /// the writes of the connection that sends it.)
    pub fn wait_replicated(&self, port: u16, timeout: Duration) {
        let offset = |port: u16, field: &str| -> u64 {
            cli(port, &["info", "replication"])
                .lines()
                .find_map(|l| l.trim().strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("INFO replication of {port} has no {field}"))
        };
        let target = offset(port, "master_repl_offset");
        let id = cli(port, &["cluster", "myid"]).trim().to_string();
        let replicas: Vec<u16> = cli(port, &["cluster", "replicas", &id])
            .lines()
            .filter_map(|l| {
                let hostport = l.split_whitespace().nth(1)?.split('@').next()?;
                hostport.rsplit_once(':')?.1.parse().ok()
            })
            .collect();
        assert!(!replicas.is_empty(), "the master on {port} has no replica");
        let deadline = Instant::now() + timeout;
        while !replicas
            .iter()
            .all(|r| offset(*r, "slave_repl_offset") >= target)
        {
            assert!(
                Instant::now() < deadline,
                "the replicas {replicas:?} of {port} did not reach offset {target} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Moves the slot of `key` to the master on `to`, as `redis-cli --cluster reshard`
    /// would, while clients keep using it: the slot is marked migrating and importing, its
    /// keys are MIGRATEd in batches (clients meanwhile get ASK and TRYAGAIN), then every
    /// master is told the new owner.
    pub fn move_slot(&self, key: &str, to: u16) {
        let from = self.master_of(key);
        let slot = cli(from, &["cluster", "keyslot", key]).trim().to_string();
        let id = |port: u16| cli(port, &["cluster", "myid"]).trim().to_string();
        let (from_id, to_id) = (id(from), id(to));
        let ok = |port: u16, args: &[&str]| {
            let out = cli(port, args);
            assert!(out.trim() == "OK", "redis-cli -p {port} {args:?}: {out}");
        };
        ok(to, &["cluster", "setslot", &slot, "importing", &from_id]);
        ok(from, &["cluster", "setslot", &slot, "migrating", &to_id]);
        loop {
            let keys = cli(from, &["cluster", "getkeysinslot", &slot, "50"]);
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let to_port = to.to_string();
            let mut args = vec!["migrate", "127.0.0.1", &to_port, "", "0", "5000", "keys"];
            args.extend(keys);
            let out = cli(from, &args);
            assert!(out.trim() == "OK", "MIGRATE: {out}");
        }
        for port in self.live_ports() {
            if cli(port, &["role"]).starts_with("master") {
                ok(port, &["cluster", "setslot", &slot, "node", &to_id]);
            }
        }
    }

    /// The node on `port`.
    pub fn node(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster")
    }
}
