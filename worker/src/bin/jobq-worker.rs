//! `jobq-worker`: runs every built-in handler on the named queues until SIGINT/SIGTERM.

use std::time::Duration;

use std::sync::Arc;

use clap::Parser;
use jobq_handlers::metrics_server;
use queue_core::{parse_duration, Config, Worker};

/// Run jobq's built-in handlers (video, analytics, moderation, diag) on Redis-backed queues.
///
/// Configuration comes from the environment (REDIS_URL or REDIS_HOST/REDIS_PORT/…,
/// JOBQ_PREFIX, RUST_LOG); flags override it. Stops gracefully on SIGINT/SIGTERM: no new
/// jobs are fetched and active ones get the grace period to finish.
#[derive(Debug, Parser)]
#[command(name = "jobq-worker", version)]
struct Args {
    /// Comma-separated queues to take jobs from.
    #[arg(long, value_delimiter = ',', default_values_t = ["video".to_string(), "analytics".to_string(), "moderation".to_string(), "diag".to_string()])]
    queues: Vec<String>,
    /// Most jobs running at once, over all queues.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Time active jobs get to finish after a shutdown signal (e.g. 30s, 500ms); jobs
    /// still running then are left for another worker to reclaim.
    #[arg(long, default_value = "30s", value_parser = duration)]
    grace: Duration,
    /// Lease of a running job: renewed every third of it while the job runs; a job whose
    /// worker died is reclaimed by any worker once its lease expires.
    #[arg(long, default_value = "30s", value_parser = duration)]
    lease: Duration,
    /// Times a job may stall (its worker die while running it) before it fails for good.
    #[arg(long, default_value_t = 1)]
    max_stalls: u32,
    /// Redis URL (redis:// or rediss://); overrides REDIS_URL.
    #[arg(long)]
    redis_url: Option<String>,
    /// Key prefix; overrides JOBQ_PREFIX.
    #[arg(long)]
    prefix: Option<String>,
    /// Serve Prometheus metrics at http://<addr>/metrics (e.g. 127.0.0.1:9091): attempts
    /// by queue, handler and outcome, handler time histogram, running jobs, cache hits.
    #[arg(long, value_name = "ADDR")]
    metrics_bind: Option<String>,
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    // a handler's panic is its job's failure, logged once as such
    queue_core::install_panic_hook();
    let args = Args::parse();
    let mut config = Config::from_env()?;
    if let Some(url) = args.redis_url {
        config = config.with_redis_url(url)?;
    }
    if let Some(prefix) = args.prefix {
        config = config.with_prefix(prefix)?;
    }
    if config.redis_url().is_none() {
        tracing::warn!(
            "Redis is not configured (set REDIS_URL or REDIS_HOST): idle until SIGINT/SIGTERM"
        );
        queue_core::wait_for_signal().await;
        return Ok(());
    }
    tracing::info!(
        redis = %config.masked_url(),
        queues = %args.queues.join(","),
        concurrency = args.concurrency,
        lease = ?args.lease,
        grace = ?args.grace,
        prefix = %config.prefix(),
        "jobq-worker starting"
    );
    // the worker connects itself, waiting out an unreachable Redis with backoff
    let builder = Worker::builder(config)
        .queues(args.queues)
        .concurrency(args.concurrency)
        .grace(args.grace)
        .lease(args.lease)
        .max_stalls(args.max_stalls);
    let worker = jobq_handlers::register_all(builder)
        .map_err(anyhow::Error::msg)?
        .build()?;
    tracing::info!(handlers = %worker.handler_names().join(","), "handlers registered");
    if let Some(addr) = &args.metrics_bind {
        let metrics = worker.metrics();
        let bound = metrics_server::serve(addr, Arc::new(move || metrics.render()))
            .await
            .map_err(anyhow::Error::msg)?;
        tracing::info!(url = %format!("http://{bound}/metrics"), "serving Prometheus metrics");
    }
    worker.run_until_signal().await?;
    Ok(())
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
