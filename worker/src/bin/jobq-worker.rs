//! `jobq-worker`: runs every built-in handler on the named queues until SIGINT/SIGTERM.
//!
//! Exit codes: 0 after a graceful stop, 2 for bad input or configuration (a flag, a queue
//! name, Redis not configured: a worker can do nothing without it), 1 for a failure at run
//! time (e.g. the metrics address cannot be bound). An error is one line on stderr,
//! `error: …`, naming the bad value.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use jobq_handlers::metrics_server;
use jobq_handlers::otel::Otlp;
use queue_core::internal::args::{duration, duration_at_least, ranged};
use queue_core::{Config, Worker};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Most jobs running at once, over all queues (1-10000).
    #[arg(long, default_value_t = 16, value_parser = concurrency, allow_negative_numbers = true)]
    concurrency: usize,
    /// Time active jobs get to finish after a shutdown signal (e.g. 30s, 500ms); jobs
    /// still running then are left for another worker to reclaim.
    #[arg(long, default_value = "30s", value_parser = duration, allow_hyphen_values = true)]
    grace: Duration,
    /// Lease of a running job (at least 100ms): renewed every third of it while the job
    /// runs; a job whose worker died is reclaimed by any worker once its lease expires.
    #[arg(long, default_value = "30s", value_parser = lease, allow_hyphen_values = true)]
    lease: Duration,
    /// Times a job may stall (its worker die while running it) before it fails for good
    /// (0-1000).
    #[arg(long, default_value_t = 1, value_parser = max_stalls, allow_negative_numbers = true)]
    max_stalls: u32,
    /// Time between heartbeats (100ms-1h): the worker's record, listed by `jobq workers`
    /// and the dashboard, lives for three of them, so a killed worker drops out of the
    /// listings that long after its last heartbeat.
    #[arg(long, env = "JOBQ_HEARTBEAT", default_value = "5s", value_parser = heartbeat,
          allow_hyphen_values = true, value_name = "DURATION")]
    heartbeat: Duration,
    /// Redis URL (redis:// or rediss://); overrides REDIS_URL.
    #[arg(long)]
    redis_url: Option<String>,
    /// Key prefix; overrides JOBQ_PREFIX.
    #[arg(long)]
    prefix: Option<String>,
    /// Runtime threads running the handlers and the worker's own loops (1-1024). The
    /// built-in handlers wait on Redis, ffmpeg and HTTP rather than compute: one thread
    /// serves them best (on a 2-core host, no-op jobs ran 15-30% faster than on two, whose
    /// wake-ups of each other cost more than the second core gave). Raise it for handlers
    /// that compute.
    #[arg(long, env = "JOBQ_WORKER_THREADS", default_value_t = 1, value_parser = threads,
          allow_negative_numbers = true, value_name = "N")]
    threads: usize,
    /// Serve Prometheus metrics at http://<addr>/metrics (e.g. 127.0.0.1:9091): attempts
    /// by queue, handler and outcome, handler time histogram, running jobs, cache hits.
    #[arg(long, value_name = "ADDR", value_parser = socket_address)]
    metrics_bind: Option<String>,
}

/// A `host:port` the metrics endpoint can bind: checked with the other flags, so a bad one
/// is bad input (exit 2) named with its value, not a failure at run time.
fn socket_address(s: &str) -> Result<String, String> {
    use std::net::ToSocketAddrs;
    match s.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(_)) => Ok(s.to_string()),
        Ok(None) => Err(format!("{s:?} resolves to no address")),
        Err(e) => Err(format!("{s:?} is not a host:port address: {e}")),
    }
}

fn lease(s: &str) -> Result<Duration, String> {
    duration_at_least(s, Duration::from_millis(100))
}

fn heartbeat(s: &str) -> Result<Duration, String> {
    let every = duration_at_least(s, Duration::from_millis(100))?;
    if every > Duration::from_secs(3600) {
        return Err(format!("{s:?}: use at most 1h"));
    }
    Ok(every)
}

fn concurrency(s: &str) -> Result<usize, String> {
    ranged(s, 1..=10_000)
}

fn threads(s: &str) -> Result<usize, String> {
    ranged(s, 1..=1_024)
}

fn max_stalls(s: &str) -> Result<u32, String> {
    ranged(s, 0..=1_000)
}

/// Why the worker stopped early: bad input or configuration (exit 2) or a runtime failure
/// (exit 1), with its one-line message.
enum Failure {
    Usage(String),
    Runtime(String),
}

impl From<queue_core::Error> for Failure {
    fn from(e: queue_core::Error) -> Self {
        use queue_core::{Error as E, ErrorKind as K};
        // bad input, and a worker that cannot start as configured (no Redis, no handlers)
        match (e.kind(), &e) {
            (K::BadInput | K::TooLarge, _) | (_, E::NotConfigured | E::Worker(_)) => {
                Failure::Usage(e.to_string())
            }
            _ => Failure::Runtime(e.to_string()),
        }
    }
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        // a bad flag: one `error:` line naming it, exit 2
        Err(e) if e.use_stderr() => {
            let text = e.render().to_string();
            eprintln!(
                "{}",
                queue_core::internal::text::one_line_usage_error(&text)
            );
            return ExitCode::from(2);
        }
        // --help, --version
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(start(args)),
        Err(e) => {
            eprintln!("error: cannot start {} runtime threads: {e}", args.threads);
            ExitCode::from(1)
        }
    }
}

/// Logging, the worker until it stops, then the last spans out.
async fn start(args: Args) -> ExitCode {
    let otlp = match init_tracing() {
        Ok(otlp) => otlp,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    // a handler's panic is its job's failure, logged once as such
    queue_core::install_panic_hook();
    let outcome = run(args).await;
    // the spans of the last jobs go out before the process ends
    if let Some(otlp) = otlp {
        otlp.shutdown().await;
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> Result<(), Failure> {
    let mut config = Config::from_env()?;
    if let Some(url) = args.redis_url {
        config = config.with_redis_url(url)?;
    }
    if let Some(prefix) = args.prefix {
        config = config.with_prefix(prefix)?;
    }
    // every setting is checked first: bad input is reported as such, configured or not
    let configured = config.redis_url().is_some();
    let builder = Worker::builder(config.clone())
        .queues(args.queues.clone())
        .concurrency(args.concurrency)
        .grace(args.grace)
        .lease(args.lease)
        .max_stalls(args.max_stalls)
        .heartbeat(args.heartbeat);
    let worker = jobq_handlers::register_all(builder)
        .map_err(Failure::Usage)?
        .build()?;
    if !configured {
        return Err(queue_core::Error::NotConfigured.into());
    }
    tracing::info!(
        redis = %config.masked_url(),
        queues = %args.queues.join(","),
        concurrency = args.concurrency,
        threads = args.threads,
        lease = ?args.lease,
        grace = ?args.grace,
        prefix = %config.prefix(),
        "jobq-worker starting"
    );
    tracing::info!(handlers = %worker.handler_names().join(","), "handlers registered");
    if let Some(addr) = &args.metrics_bind {
        let metrics = worker.metrics();
        let bound = metrics_server::serve(addr, Arc::new(move || metrics.render()))
            .await
            .map_err(Failure::Runtime)?;
        tracing::info!(url = %format!("http://{bound}/metrics"), "serving Prometheus metrics");
    }
    // the worker connects itself, waiting out an unreachable Redis with backoff
    worker
        .run_until_signal()
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))
}

/// Logs to stderr as `RUST_LOG` says; with `OTEL_EXPORTER_OTLP_ENDPOINT` set, also spans to
/// an OTLP collector (`jobq_handlers::otel`), whose exporter is returned to be flushed at exit.
fn init_tracing() -> Result<Option<Otlp>, String> {
    use tracing_subscriber::filter::FilterExt;
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let Some(otlp) = Otlp::from_env("jobq-worker")? else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .init();
        return Ok(None);
    };
    // the log lines stay as they are without export: the attempt spans (all their
    // attributes) are for the collector, not prefixed to every line a handler logs
    let not_attempt_span =
        tracing_subscriber::filter::filter_fn(|m| !(m.is_span() && m.name() == "jobq.attempt"));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_filter(filter.and(not_attempt_span));
    tracing_subscriber::registry()
        .with(logs)
        .with(otlp.layer())
        .init();
    tracing::info!(endpoint = %otlp.endpoint(), "exporting spans over OTLP (http/protobuf)");
    Ok(Some(otlp))
}
