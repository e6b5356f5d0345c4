//! The command line and what it becomes: where to listen, how requests are authenticated,
//! whether changes are allowed, and which Redis and prefix to show.
//!
//! The exposure rule: reads are open only on a loopback bind. Binding anywhere else needs
//! `--auth-token` or `--basic-auth` (and then reads need it too), or an explicit
//! `--insecure`; otherwise the dashboard refuses to start.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::Parser;
use queue_core::Config;

/// Shortest secret (`--auth-token`, the password of `--basic-auth`) accepted on a
/// non-loopback bind: shorter ones fall to guessing even with the failed-auth backoff.
pub const MIN_SECRET_CHARS: usize = 16;

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
variables to flags: command lines are visible to other users in `ps`. On a non-loopback
bind the token and the basic-auth password must be at least 16 characters (unless
--insecure). Failed attempts (a wrong token or password) are logged with the client address;
after 5 from one address, each further failure locks that address out for 2s, doubling up to
15 minutes: meanwhile its attempts are answered 429 with Retry-After, unchecked.

Connections: at most --max-connections at once (more are answered 503 and closed); a
client must send a request's headers within --header-timeout, counted from the connection's
start or the end of the previous response (so an idle kept-alive connection closes then
too); a connection on which no byte moves either way for --idle-timeout is closed (the
/events stream sends a keep-alive every 15s, or a third of a shorter --idle-timeout, so it
stays open).

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
    /// Most connections served at once; more are answered 503 and closed.
    #[arg(
        long,
        env = "JOBQ_DASHBOARD_MAX_CONNECTIONS",
        default_value_t = 512,
        value_name = "N"
    )]
    pub max_connections: usize,
    /// Longest a client may take to send a request's headers (also how long an idle
    /// kept-alive connection stays open).
    #[arg(
        long,
        env = "JOBQ_DASHBOARD_HEADER_TIMEOUT",
        default_value = "10s",
        value_name = "DURATION"
    )]
    pub header_timeout: String,
    /// A connection on which no byte moves either way for this long is closed.
    #[arg(
        long,
        env = "JOBQ_DASHBOARD_IDLE_TIMEOUT",
        default_value = "60s",
        value_name = "DURATION"
    )]
    pub idle_timeout: String,
}

/// Bounds on connections, so an exposed dashboard cannot be held open by clients that
/// connect and send nothing, or too little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Most connections at once.
    pub max_connections: usize,
    /// Longest wait for a request's headers.
    pub header_timeout: Duration,
    /// Longest a connection may go without a byte read or written.
    pub idle_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl ConnLimits {
    /// Checks the flags: every error names the flag and the value.
    fn from_cli(cli: &Cli) -> Result<Self, String> {
        if !(1..=1_000_000).contains(&cli.max_connections) {
            return Err(format!(
                "--max-connections {}: use a number from 1 to 1000000",
                cli.max_connections
            ));
        }
        let timeout = |flag: &str, value: &str| -> Result<Duration, String> {
            match queue_core::parse_duration(value) {
                Ok(d) if !d.is_zero() => Ok(d),
                Ok(_) => Err(format!("{flag} {value:?}: must be more than 0")),
                Err(e) => Err(format!("{flag}: {e}")),
            }
        };
        Ok(ConnLimits {
            max_connections: cli.max_connections,
            header_timeout: timeout("--header-timeout", &cli.header_timeout)?,
            idle_timeout: timeout("--idle-timeout", &cli.idle_timeout)?,
        })
    }
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
    /// Connection cap and timeouts.
    pub limits: ConnLimits,
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
        let limits = ConnLimits::from_cli(&cli)?;
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
        check_secret_length(bind, loopback, &auth, cli.insecure)?;
        Ok(DashboardConfig {
            bind,
            loopback,
            auth,
            read_only: cli.read_only,
            redis,
            limits,
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

/// Refuses a short secret where the network can guess at it: the failed-auth backoff slows
/// guessing down, but only a long secret makes it hopeless. (The secret is never shown.)
fn check_secret_length(
    bind: SocketAddr,
    loopback: bool,
    auth: &AuthMode,
    insecure: bool,
) -> Result<(), String> {
    if loopback || insecure {
        return Ok(());
    }
    let (what, secret) = match auth {
        AuthMode::Open => return Ok(()),
        AuthMode::Token(t) => ("--auth-token (JOBQ_DASHBOARD_TOKEN)", t),
        AuthMode::Basic { password, .. } => (
            "the password of --basic-auth (JOBQ_DASHBOARD_BASIC_AUTH)",
            password,
        ),
    };
    let len = secret.chars().count();
    if len >= MIN_SECRET_CHARS {
        return Ok(());
    }
    Err(format!(
        "{what} is {len} characters long: on {bind}, reachable from other machines, use at \
         least {MIN_SECRET_CHARS} (e.g. `openssl rand -hex 16`), bind to 127.0.0.1, or add \
         --insecure to do it anyway"
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
        let long = "s3cret-s3cret-s3cret";
        let c = parse(&["--bind", "0.0.0.0:8080", "--auth-token", long]).unwrap();
        assert!(!c.loopback);
        assert_eq!(c.auth, AuthMode::Token(long.into()));
        let basic = "a:0123456789abcdef";
        assert!(parse(&["--bind", "0.0.0.0:8080", "--basic-auth", basic]).is_ok());
    }

    #[test]
    fn short_secrets_are_refused_on_an_exposed_bind_only() {
        let e = parse(&["--bind", "0.0.0.0:8080", "--auth-token", "a"]).unwrap_err();
        assert!(
            e.contains("--auth-token") && e.contains("1 characters"),
            "{e}"
        );
        let e = parse(&["--bind", "0.0.0.0:8080", "--basic-auth", "ops:pa55"]).unwrap_err();
        assert!(
            e.contains("--basic-auth") && e.contains("4 characters"),
            "{e}"
        );
        assert!(!e.contains("pa55"), "the secret is not shown: {e}");
        let fifteen = "0123456789abcde";
        assert!(parse(&["--bind", "0.0.0.0:8080", "--auth-token", fifteen]).is_err());
        assert!(parse(&["--bind", "0.0.0.0:8080", "--auth-token", "0123456789abcdef"]).is_ok());
        // loopback: anything goes; --insecure: the operator said so
        assert!(parse(&["--auth-token", "a"]).is_ok());
        assert!(parse(&["--bind", "0.0.0.0:8080", "--auth-token", "a", "--insecure"]).is_ok());
    }

    #[test]
    fn connection_limits_are_checked() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.limits, ConnLimits::default());
        let c = parse(&["--max-connections", "3", "--header-timeout", "500ms"]).unwrap();
        assert_eq!(c.limits.max_connections, 3);
        assert_eq!(c.limits.header_timeout, Duration::from_millis(500));
        let e = parse(&["--max-connections", "0"]).unwrap_err();
        assert!(e.contains("--max-connections 0"), "{e}");
        let e = parse(&["--idle-timeout", "0s"]).unwrap_err();
        assert!(e.contains("--idle-timeout"), "{e}");
        let e = parse(&["--header-timeout", "soon"]).unwrap_err();
        assert!(e.contains("soon"), "{e}");
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
