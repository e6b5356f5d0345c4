//! jobq on a Redis Cluster with no change but the URL, including a failover and a slot
//! moving in the middle of the work, a flow whose parent's master fails over, and workers and
//! Redis at a glance.

mod cluster;
mod cluster_discovery;
mod cluster_flow;
mod cluster_groups;
