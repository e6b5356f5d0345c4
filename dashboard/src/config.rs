//! The command line and what it becomes: where to listen, how requests are authenticated,
//! whether changes are allowed, and which Redis and prefix to show.
//!
//! The exposure rule: reads are open only on a loopback bind. Binding anywhere else needs
//! `--auth-token` or `--basic-auth` (and then reads need it too), or an explicit
//! `--insecure`; otherwise the dashboard refuses to start.

use std::net::{SocketAddr, ToSocketAddrs};

use clap::Parser;
use queue_core::Config;

const AFTER_HELP: &str = "\
Redis comes from --redis-url, else REDIS_URL, else REDIS_HOST/REDIS_PORT/REDIS_USERNAME/
REDIS_PASSWORD/REDIS_TLS; keys live under --prefix (JOBQ_PREFIX, default \"jobq\"). Without
Redis the dashboard still starts, says so, and keeps retrying.

Enqueues (POST /api/queues/<q>/jobs, the add-job form) while Redis is down follow
JOBQ_FALLBACK: `spool` appends them to JOBQ_SPOOL_DIR (default ./.jobq-spool) and answers
202; they are stored, under the same ids, once Redis is back (the dashboard replays that dir,
as workers do). `error` and `inline` (the default: the dashboard runs no handlers) answer
503 naming the Redis address.

Security: on a loopback bind (the default) anyone on this machine can read; with a token or
basic auth, every change needs it (Authorization: Bearer <token>, or a session from the
/login page). Binding to another address requires --auth-token or --basic-auth (reads then
need it too) unless --insecure. Prefer the JOBQ_DASHBOARD_TOKEN / JOBQ_DASHBOARD_BASIC_AUTH
variables to flags: command lines are visible to other users in `ps`.

Pages: /  /queues/<queue>  /queues/<queue>/jobs/<id>   API: /api/...   Health: /api/health
Metrics: /metrics   Live updates: /events (Server-Sent Events)";

/// Web dashboard, JSON API, health check and Prometheus metrics for jobq queues.
#[derive(Debug, Parser)]
#[command(name = "jobq-dashboard", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Address to listen on (host:port). Anything but loopback needs auth or --insecure.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub bind: String,
    /// Require this bearer token for changes (and for reads on a non-loopback bind).
    #[arg(
        long,
        env = "JOBQ_DASHBOARD_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        conflicts_with = "basic_auth"
    )]
    pub auth_token: Option<String>,
    /// Require HTTP basic auth with these credentials instead of a token.
    #[arg(
        long,
        env = "JOBQ_DASHBOARD_BASIC_AUTH",
        hide_env_values = true,
        value_name = "USER:PASS"
    )]
    pub basic_auth: Option<String>,
    /// Refuse every change (403): a dashboard for looking only.
    #[arg(long)]
    pub read_only: bool,
    /// Allow a non-loopback bind without auth: anyone who can reach it can read and change
    /// every queue.
    #[arg(long)]
    pub insecure: bool,
    /// Redis URL (redis://[user:pass@]host:port[/db], rediss:// for TLS).
    #[arg(long, env = "REDIS_URL", hide_env_values = true, value_name = "URL")]
    pub redis_url: Option<String>,
    /// Key prefix: every key of a queue is {<prefix>:<queue>}:…
    #[arg(long, env = "JOBQ_PREFIX", value_name = "PREFIX")]
    pub prefix: Option<String>,
}

/// How requests prove who they are.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// Nobody has to: only allowed on loopback, or with `--insecure`.
    Open,
    /// `Authorization: Bearer <token>`, or a session cookie from the login form.
    Token(String),
    /// HTTP basic auth with these credentials.
    Basic {
        /// user name
        user: String,
        /// password
        password: String,
    },
}

impl std::fmt::Debug for AuthMode {
    // never print a secret
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

impl AuthMode {
    /// A few words for the start-up line.
    pub fn describe(&self) -> &'static str {
        match self {
            AuthMode::Open => "no auth",
            AuthMode::Token(_) => "token auth",
            AuthMode::Basic { .. } => "basic auth",
        }
    }

    /// Whether any credentials are required at all.
    pub fn is_open(&self) -> bool {
        matches!(self, AuthMode::Open)
    }
}

/// Everything the dashboard runs with.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Where to listen.
    pub bind: SocketAddr,
    /// Whether `bind` is a loopback address (reads are open only there).
    pub loopback: bool,
    /// How requests authenticate.
    pub auth: AuthMode,
    /// Refuse every change.
    pub read_only: bool,
    /// Redis connection, key prefix, and what an enqueue does while Redis is down
    /// (`JOBQ_FALLBACK`, `JOBQ_SPOOL_DIR`).
    pub redis: Config,
}

impl DashboardConfig {
    /// Checks the command line (and the environment under it); every error names the bad
    /// value, and an exposed bind without auth is refused unless `--insecure`.
    pub fn from_cli(cli: Cli) -> Result<Self, String> {
        // JOBQ_FALLBACK and JOBQ_SPOOL_DIR apply to enqueues as they are (`enqueue.rs`):
        // `spool` keeps jobs while Redis is down, `error` refuses them, and `inline`, which
        // needs handlers the dashboard does not run, refuses them too, saying so.
        let mut redis = Config::from_env().map_err(|e| e.to_string())?;
        if let Some(url) = cli.redis_url.as_deref().filter(|u| !u.is_empty()) {
            redis = redis.with_redis_url(url).map_err(|e| e.to_string())?;
        }
        if let Some(prefix) = cli.prefix.as_deref().filter(|p| !p.is_empty()) {
            redis = redis.with_prefix(prefix).map_err(|e| e.to_string())?;
        }
        let auth = match (cli.auth_token, cli.basic_auth) {
            (Some(t), _) if t.trim().is_empty() => {
                return Err("--auth-token is empty: use a long random token".into())
            }
            (Some(t), _) => AuthMode::Token(t),
            (None, Some(b)) => match b.split_once(':') {
                Some((user, password)) if !user.is_empty() && !password.is_empty() => {
                    AuthMode::Basic {
                        user: user.to_string(),
                        password: password.to_string(),
                    }
                }
                _ => {
                    return Err(
                        "--basic-auth must be USER:PASS with both parts non-empty (the value \
                         given is not shown)"
                            .into(),
                    )
                }
            },
            (None, None) => AuthMode::Open,
        };
        let bind = resolve_bind(&cli.bind)?;
        let loopback = bind.ip().is_loopback();
        check_exposure(bind, loopback, &auth, cli.insecure)?;
        Ok(DashboardConfig {
            bind,
            loopback,
            auth,
            read_only: cli.read_only,
            redis,
        })
    }
}

/// `host:port` (or `[v6]:port`) to one socket address.
fn resolve_bind(bind: &str) -> Result<SocketAddr, String> {
    let mut addrs = bind
        .to_socket_addrs()
        .map_err(|e| format!("--bind {bind:?} is not a host:port address: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("--bind {bind:?} resolves to no address"))
}

/// Refuses to serve readable, changeable queues to the network without credentials.
fn check_exposure(
    bind: SocketAddr,
    loopback: bool,
    auth: &AuthMode,
    insecure: bool,
) -> Result<(), String> {
    if loopback || !auth.is_open() || insecure {
        return Ok(());
    }
    Err(format!(
        "refusing to listen on {bind} without auth: that address is reachable from other \
         machines, and anyone reaching it could read and change every queue. Pass \
         --auth-token (or --basic-auth USER:PASS), bind to 127.0.0.1, or add --insecure to \
         do it anyway"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<DashboardConfig, String> {
        let mut all = vec!["jobq-dashboard", "--redis-url", "redis://127.0.0.1:1"];
        all.extend_from_slice(args);
        DashboardConfig::from_cli(Cli::try_parse_from(all).map_err(|e| e.to_string())?)
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn loopback_is_open_and_the_default() {
        let c = parse(&[]).unwrap();
        assert!(c.loopback);
        assert_eq!(c.auth, AuthMode::Open);
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert!(parse(&["--bind", "[::1]:9000"]).unwrap().loopback);
    }

    #[test]
    fn exposed_bind_needs_auth_or_insecure() {
        let e = parse(&["--bind", "0.0.0.0:8080"]).unwrap_err();
        assert!(e.contains("0.0.0.0:8080"), "{e}");
        assert!(parse(&["--bind", "0.0.0.0:8080", "--insecure"]).is_ok());
        let c = parse(&["--bind", "0.0.0.0:8080", "--auth-token", "s3cret"]).unwrap();
        assert!(!c.loopback);
        assert_eq!(c.auth, AuthMode::Token("s3cret".into()));
        assert!(parse(&["--bind", "0.0.0.0:8080", "--basic-auth", "a:b"]).is_ok());
    }

    #[test]
    fn bad_values_are_named_and_secrets_are_not() {
        let e = parse(&["--bind", "nowhere"]).unwrap_err();
        assert!(e.contains("nowhere"), "{e}");
        let e = parse(&["--basic-auth", "justuser"]).unwrap_err();
        assert!(e.contains("USER:PASS") && !e.contains("justuser"), "{e}");
        assert!(parse(&["--auth-token", " "]).is_err());
        assert!(parse(&["--auth-token", "a", "--basic-auth", "u:p"]).is_err());
        let shown = format!("{:?}", AuthMode::Token("s3cret".into()));
        assert!(!shown.contains("s3cret"));
    }
}
