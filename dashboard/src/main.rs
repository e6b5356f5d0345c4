//! `jobq-dashboard`: web UI, JSON/HTTP API, health and Prometheus metrics (SPEC §7).
//!
//! Not built yet: the dashboard lands with its own issue. Until then this binary says so
//! and exits with status 2 rather than pretending to serve anything.

fn main() -> std::process::ExitCode {
    eprintln!(
        "jobq-dashboard: not available in this build yet; use `jobq stats` and `jobq show` \
         to inspect queues"
    );
    std::process::ExitCode::from(2)
}
