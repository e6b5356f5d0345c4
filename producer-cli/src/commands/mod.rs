//! One file per command group; `run` routes a parsed command line to its command, the way
//! the commands can all be read at once.

mod add;
mod add_bulk;
mod health;
mod inspect;
mod schedule;
mod spool;
mod stats;
mod steer;

use anyhow::{anyhow, Result};
use queue_core::{list_queues, Config, Fallback, Producer, Queue, Redis, Worker};

use crate::cli::{Cli, Command};

/// What every command gets: the connection, the key prefix, and whether to print JSON.
pub struct Ctx {
    pub redis: Redis,
    pub prefix: String,
    pub json: bool,
}

impl Ctx {
    /// Opens queue `name` under the prefix, whether or not it exists (adds create it).
    pub async fn queue(&self, name: &str) -> Result<Queue> {
        Ok(Queue::open(&self.redis, &self.prefix, name).await?)
    }

    /// Opens queue `name` if it exists (is in the queue registry, as the dashboard's API
    /// decides its 404): reading or steering a mistyped queue is a runtime failure naming
    /// it (exit 1), not an empty answer.
    pub async fn existing_queue(&self, name: &str) -> Result<Queue> {
        if !list_queues(&self.redis, &self.prefix)
            .await?
            .iter()
            .any(|q| q == name)
        {
            return Err(anyhow!(
                "queue {name:?} not found under prefix {:?}",
                self.prefix
            ));
        }
        self.queue(name).await
    }
}

/// The configuration: environment first, flags over it.
fn config(cli: &Cli) -> Result<Config> {
    let mut config = Config::from_env()?;
    if let Some(url) = cli.redis_url.as_deref().filter(|u| !u.is_empty()) {
        config = config.with_redis_url(url)?;
    }
    if let Some(prefix) = cli.prefix.as_deref().filter(|p| !p.is_empty()) {
        config = config.with_prefix(prefix)?;
    }
    Ok(config)
}

/// Runs one command line.
pub async fn run(cli: Cli) -> Result<()> {
    let config = config(&cli)?;
    // Checked before connecting: bad input is reported as such even when Redis is down.
    if let Command::Obliterate {
        force: false,
        queue,
    } = &cli.command
    {
        return Err(crate::exit::bad_input(format!(
            "obliterate deletes every job, schedule and counter of queue {queue:?}: \
             pass --force to confirm"
        )));
    }
    // Commands that work (or report) without Redis: adds apply JOBQ_FALLBACK. Only adds
    // and `spool replay` replay spooled jobs: the others (reads above all) must not move
    // jobs into whatever Redis --redis-url points them at.
    let command = match cli.command {
        Command::Health => return health::health(&config, cli.json).await,
        Command::Add(args) => return add::add(&producer(&config)?, cli.json, args).await,
        Command::AddBulk { queue, file } => {
            return add_bulk::add_bulk(&producer(&config)?, cli.json, &queue, &file).await
        }
        Command::Spool(cmd) => return spool::spool(&config, cli.json, cmd).await,
        other => other,
    };
    let ctx = Ctx {
        redis: Redis::connect(&config).await?,
        prefix: config.prefix().to_string(),
        json: cli.json,
    };
    match command {
        Command::Stats {
            queue,
            watch,
            interval,
        } => stats::stats(&ctx, queue.as_deref(), watch, interval).await,
        Command::List {
            queue,
            state,
            limit,
            offset,
        } => inspect::list(&ctx, &queue, state, limit, offset).await,
        Command::Show { queue, id } => inspect::show(&ctx, &queue, &id).await,
        Command::Retry { queue, id, .. } => steer::retry(&ctx, &queue, id.as_deref()).await,
        Command::Promote { queue, id, .. } => steer::promote(&ctx, &queue, id.as_deref()).await,
        Command::Remove { queue, id } => steer::remove(&ctx, &queue, &id).await,
        Command::Pause { queue } => steer::set_paused(&ctx, &queue, true).await,
        Command::Resume { queue } => steer::set_paused(&ctx, &queue, false).await,
        Command::Clean {
            queue,
            state,
            older_than,
            limit,
        } => steer::clean(&ctx, &queue, state, older_than, limit).await,
        Command::Drain { queue } => steer::drain(&ctx, &queue).await,
        Command::Obliterate { queue, .. } => steer::obliterate(&ctx, &queue).await,
        Command::Schedule(cmd) => schedule::schedule(&ctx, cmd).await,
        Command::Health | Command::Add(_) | Command::AddBulk { .. } | Command::Spool(_) => {
            unreachable!("answered before connecting")
        }
    }
}

/// The producer of `add` and `add-bulk`: the built-in handlers for the inline fallback,
/// and no background replay (the command replays in the foreground, see `spool.rs`).
fn producer(config: &Config) -> Result<Producer> {
    let mut builder = Producer::builder(config.clone()).auto_replay(false);
    if config.fallback == Fallback::Inline {
        let handlers = jobq_handlers::register_all(Worker::builder(config.clone()))
            .map_err(anyhow::Error::msg)?
            .handlers();
        builder = builder.handlers(handlers);
    }
    Ok(builder.build())
}
