//! One file per command group; `run` routes a parsed command line to its command, the way
//! the commands can all be read at once.

mod add;
mod add_bulk;
mod ctx;
mod flow;
mod groups;
mod health;
mod inspect;
mod limits;
mod schedule;
mod search;
mod spool;
mod stats;
mod steer;
mod workers;

use anyhow::Result;

use self::ctx::{config, producer, Ctx};
use crate::cli::{Cli, Command};

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
        // a flow file is read and checked before connecting, as bulk files are
        Command::Flow(cmd) => return flow::flow(&config, cli.json, cmd).await,
        other => other,
    };
    let ctx = Ctx::connect(&config, cli.json).await?;
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
        Command::Search(args) => search::search(&ctx, &args.queue, &args.filter()).await,
        Command::Show { queue, id } => inspect::show(&ctx, &queue, &id).await,
        Command::Retry { queue, id, .. } => steer::retry(&ctx, &queue, id.as_deref()).await,
        Command::Promote { queue, id, .. } => steer::promote(&ctx, &queue, id.as_deref()).await,
        Command::Cancel { queue, id } => steer::cancel(&ctx, &queue, &id).await,
        Command::Priority {
            queue,
            id,
            priority,
        } => steer::priority(&ctx, &queue, &id, priority).await,
        Command::Update(args) => steer::update(&ctx, &config, &args).await,
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
        Command::Limits(args) => limits::limits(&ctx, &args).await,
        Command::Groups { queue, limit } => groups::groups(&ctx, &queue, limit).await,
        Command::Workers => workers::workers(&ctx).await,
        Command::Health
        | Command::Add(_)
        | Command::AddBulk { .. }
        | Command::Spool(_)
        | Command::Flow(_) => unreachable!("answered before connecting"),
    }
}
