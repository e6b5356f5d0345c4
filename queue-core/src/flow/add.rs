//! `FlowProducer`: adds a flow all or nothing.

use crate::config::Config;
use crate::connection::Redis;
use crate::error::Result;

use super::{FlowJob, FlowTree};

/// Adds flows (trees of jobs across queues) to one Redis under one key prefix.
#[derive(Clone, Debug)]
pub struct FlowProducer {
    redis: Redis,
    prefix: String,
}

impl FlowProducer {
    /// Connects to the configured Redis.
    pub async fn connect(config: Config) -> Result<FlowProducer> {
        let redis = Redis::connect(&config).await?;
        Ok(FlowProducer::new(&redis, config.prefix()))
    }

    /// Adds flows on an existing connection, under `prefix`.
    pub fn new(redis: &Redis, prefix: &str) -> FlowProducer {
        FlowProducer {
            redis: redis.clone(),
            prefix: prefix.to_string(),
        }
    }

    /// Adds `flow`: every node is checked first (nothing is stored if one is wrong; the
    /// error names the node by its path, `root.children[2]`), then stored. All or nothing:
    /// no job of the flow can start before the whole tree is stored, and a flow that fails
    /// half-way is taken back. Returns the tree with every node's id.
    pub async fn add(&self, flow: FlowJob) -> Result<FlowTree> {
        let _ = (&self.redis, &self.prefix, flow);
        todo!("flow add")
    }
}
