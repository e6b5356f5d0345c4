//! What the commands are given: the connection context, the configuration, the adds' producer.

use anyhow::{anyhow, Result};
use queue_core::{list_queues, Config, Fallback, Producer, Queue, Redis, Worker};

use crate::cli::Cli;

/// What every command gets: the connection, the key prefix, and whether to print JSON.
pub struct Ctx {
    pub redis: Redis,
    pub prefix: String,
    pub json: bool,
}

impl Ctx {
    /// Connects to the configured Redis.
    pub async fn connect(config: &Config, json: bool) -> Result<Ctx> {
        Ok(Ctx {
            redis: Redis::connect(config).await?,
            prefix: config.prefix().to_string(),
            json,
        })
    }

    /// Opens queue `name` under the prefix, whether or not it exists (adds create it).
    pub async fn queue(&self, name: &str) -> Result<Queue> {
        Ok(Queue::open(&self.redis, &self.prefix, name).await?)
    }

    /// Whether queue `name` is in the queue registry.
    pub async fn is_registered(&self, name: &str) -> Result<bool> {
        Ok(list_queues(&self.redis, &self.prefix)
            .await?
            .iter()
            .any(|q| q == name))
    }

    /// Opens queue `name` if it exists (is in the queue registry, as the dashboard's API
    /// decides its 404): reading or steering a mistyped queue is a runtime failure naming
    /// it (exit 1), not an empty answer.
    pub async fn existing_queue(&self, name: &str) -> Result<Queue> {
        if !self.is_registered(name).await? {
            return Err(anyhow!(
                "queue {name:?} not found under prefix {:?}",
                self.prefix
            ));
        }
        self.queue(name).await
    }
}

/// The configuration: environment first, flags over it.
pub(super) fn config(cli: &Cli) -> Result<Config> {
    let mut config = Config::from_env()?;
    if let Some(url) = cli.redis_url.as_deref().filter(|u| !u.is_empty()) {
        config = config.with_redis_url(url)?;
    }
    if let Some(prefix) = cli.prefix.as_deref().filter(|p| !p.is_empty()) {
        config = config.with_prefix(prefix)?;
    }
    Ok(config)
}

/// The producer of `add` and `add-bulk`: the built-in handlers for the inline fallback,
/// and no background replay (the command replays in the foreground, see `spool.rs`).
pub(super) fn producer(config: &Config) -> Result<Producer> {
    let mut builder = Producer::builder(config.clone()).auto_replay(false);
    if config.fallback == Fallback::Inline {
        let handlers = jobq_handlers::register_all(Worker::builder(config.clone()))
            .map_err(anyhow::Error::msg)?
            .handlers();
        builder = builder.handlers(handlers);
    }
    Ok(builder.build())
}
