//! jobq on a Redis Cluster with no change but the URL, including a failover and a slot
//! moving in the middle of the work, and a flow whose parent's master fails over.

mod cluster;
mod cluster_flow;
mod cluster_groups;
