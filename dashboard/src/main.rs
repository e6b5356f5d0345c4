//! `jobq-dashboard`: web UI, JSON/HTTP API, health and Prometheus metrics.
//!
//! This file parses the command line, refuses an exposed bind without auth (exit 2), sets up
//! logging, says what it runs with (and that `JOBQ_FALLBACK=inline` cannot be honoured here)
//! and serves until SIGINT/SIGTERM. The dashboard itself is the `jobq_dashboard`
//! library.

use std::process::ExitCode;

use clap::Parser;
use jobq_dashboard::config::{Cli, DashboardConfig};
use queue_core::worker::CancellationToken;

/// Bad usage or an unsafe setup.
const USAGE: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { USAGE } else { 0 });
        }
    };
    let config = match DashboardConfig::from_cli(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jobq-dashboard: {e}");
            return ExitCode::from(USAGE);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // colours only on a terminal: a log file (scripts/demo's) gets plain text
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let listener = match tokio::net::TcpListener::bind(config.bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("jobq-dashboard: cannot listen on {}: {e}", config.bind);
            return ExitCode::from(1);
        }
    };
    if config.redis.redis_url().is_none() {
        eprintln!(
            "jobq-dashboard: Redis is not configured (set REDIS_URL or REDIS_HOST, or pass \
             --redis-url): serving in degraded mode"
        );
    }
    if let Some(note) = jobq_dashboard::enqueue::startup_note(config.redis.fallback) {
        tracing::info!("{note}");
    }
    let addr = listener.local_addr().unwrap_or(config.bind);
    let redis = match config.redis.redis_url() {
        Some(_) => format!("Redis {}, ", config.redis.masked_url()),
        None => String::new(),
    };
    tracing::info!(
        "jobq-dashboard listening on http://{addr} ({redis}prefix {:?}, {}{})",
        config.redis.prefix(),
        config.auth.describe(),
        if config.read_only { ", read-only" } else { "" }
    );
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        queue_core::wait_for_signal().await;
        tracing::info!("shutting down");
        stop.cancel();
    });
    match jobq_dashboard::serve(config, listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jobq-dashboard: {e}");
            ExitCode::from(1)
        }
    }
}
