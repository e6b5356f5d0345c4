//! What the dashboard tests share: a `jobq-dashboard` process on a free port, an HTTP client
//! that does not follow redirects, a reader of its Server-Sent Events, and the `jobq` CLI.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use jobq_tests::{bin_path, free_port, LoggedProcess, TempDir, TestEnv};
use serde_json::Value;

/// A running `jobq-dashboard` (a [`LoggedProcess`]: its own log and spool dir, killed
/// when dropped).
pub struct Dashboard {
    process: LoggedProcess,
    /// Port it listens on (on 127.0.0.1).
    pub port: u16,
}

/// Variables the dashboard would read that a test must not inherit.
const SCRUBBED: [&str; 7] = [
    "REDIS_URL",
    "REDIS_HOST",
    "JOBQ_PREFIX",
    "JOBQ_DASHBOARD_TOKEN",
    "JOBQ_DASHBOARD_BASIC_AUTH",
    "JOBQ_FALLBACK",
    "JOBQ_SPOOL_DIR",
];

impl Dashboard {
    /// Starts a dashboard on `127.0.0.1:<free port>` for the test's Redis and prefix, with
    /// `extra` flags, and waits until it answers.
    pub async fn start(env: &TestEnv, extra: &[&str]) -> Dashboard {
        Self::start_for(env.config.redis_url(), env.config.prefix(), extra).await
    }

    /// Like [`Dashboard::start`] for any Redis URL (None: not configured) and prefix.
    pub async fn start_for(url: Option<&str>, prefix: &str, extra: &[&str]) -> Dashboard {
        Self::start_env(url, prefix, extra, &[]).await
    }

    /// Like [`Dashboard::start_for`], with environment variables (e.g. `JOBQ_FALLBACK`,
    /// `JOBQ_SPOOL_DIR`).
    pub async fn start_env(
        url: Option<&str>,
        prefix: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Dashboard {
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let mut args = vec!["--bind", bind.as_str(), "--prefix", prefix];
        if let Some(url) = url {
            args.extend(["--redis-url", url]);
        }
        args.extend_from_slice(extra);
        let d = Dashboard::spawn_env(&args, port, env);
        d.wait_ready().await;
        d
    }

    /// Starts the binary with exactly `args` (the caller picks the bind), not waiting.
    pub fn spawn(args: &[&str], port: u16) -> Dashboard {
        Self::spawn_env(args, port, &[])
    }

    /// Like [`Dashboard::spawn`], with environment variables.
    pub fn spawn_env(args: &[&str], port: u16, env: &[(&str, &str)]) -> Dashboard {
        let mut cmd = Command::new(bin_path("jobq-dashboard"));
        for var in SCRUBBED {
            cmd.env_remove(var);
        }
        cmd.args(args);
        Dashboard {
            process: LoggedProcess::spawn(cmd, "dashboard", env),
            port,
        }
    }

    /// Polls until the dashboard answers HTTP (whatever the status), or panics with its log.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let c = client();
        loop {
            if c.get(self.url("/api/health")).send().await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "jobq-dashboard did not answer on port {} within 30s; log:\n{}",
                self.port,
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The dashboard's own origin, as a browser sends it in `Origin`.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything it has logged so far.
    pub fn stderr(&self) -> String {
        self.process.stderr()
    }

    /// Waits up to `timeout` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        self.process.wait_exit(timeout)
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }
}

/// An HTTP client that shows redirects instead of following them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// GET `url` → (status, JSON body).
pub async fn get_json(url: &str) -> (u16, Value) {
    let r = client().get(url).send().await.expect("GET");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The `error` of a JSON error reply.
pub async fn error_of(r: reqwest::Response) -> String {
    let body: Value = r.json().await.expect("a JSON error body");
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field in {body}"))
        .to_string()
}

/// GET `url` → (status, text body).
pub async fn get_text(url: &str) -> (u16, String) {
    let r = client().get(url).send().await.expect("GET");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// Server time of a response, from its `Server-Timing: app;dur=<ms>` header.
pub fn server_ms(r: &reqwest::Response) -> f64 {
    let header = r
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .expect("Server-Timing header");
    header
        .split("dur=")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Server-Timing {header:?} has no dur"))
}

/// Runs `jobq` against the test's Redis and prefix, with an empty spool of its own: `jobq`
/// replays its spool (`JOBQ_SPOOL_DIR`, default `./.jobq-spool`) before a command, and
/// tests running at once must not replay each other's jobs. (Nothing is spooled here: the
/// fallback is left at its default, inline.)
pub fn jobq(env: &TestEnv, args: &[&str]) -> Output {
    let spool = TempDir::new("dashboard-spool");
    let mut cmd = Command::new(bin_path("jobq"));
    for var in SCRUBBED {
        cmd.env_remove(var);
    }
    let out = cmd
        .env("JOBQ_SPOOL_DIR", spool.as_str())
        .args(["--redis-url", env.config.redis_url().unwrap()])
        .args(["--prefix", env.config.prefix()])
        .args(args)
        .output()
        .expect("run jobq");
    assert!(
        out.status.success(),
        "jobq {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One Server-Sent Event: its name and data.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

impl SseEvent {
    /// The data as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{}: {e}", self.data))
    }
}

/// Reads a `text/event-stream` response event by event.
pub struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    /// Opens `url` as an event stream.
    pub async fn open(url: &str) -> SseReader {
        let resp = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(url)
            .send()
            .await
            .expect("open SSE");
        assert_eq!(resp.status().as_u16(), 200, "SSE {url}");
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        SseReader {
            resp,
            buf: String::new(),
        }
    }

    /// The next event (comments and keep-alives skipped), or None once `deadline` passes.
    pub async fn next(&mut self, deadline: Instant) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some(SseEvent {
                    event,
                    data: data.join("\n"),
                });
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// The first event for which `pick` returns Some, before `deadline`.
    pub async fn wait_for<T>(
        &mut self,
        deadline: Instant,
        mut pick: impl FnMut(&SseEvent) -> Option<T>,
    ) -> Option<T> {
        while let Some(e) = self.next(deadline).await {
            if let Some(v) = pick(&e) {
                return Some(v);
            }
        }
        None
    }
}

/// Writes a lean job (stored as its lane entry alone, no hash: README *Lean jobs*) into
/// lane 0 of `queue` by hand, as `add_job` writes one (its entry, the waiting counter), with
/// entry `fields` (`n` name, `d` data, then `o` options, `t` trace context) as raw bytes: a
/// hostile value as something other than jobq might store it. Lane 0 must be open (a job
/// added to it already). Returns its id, `~0.<entry id>`.
pub async fn add_lean_to(env: &TestEnv, queue: &str, fields: &[(&str, &[u8])]) -> String {
    let keys = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), queue);
    jobq_tests::add_lean_by_hand(env, &keys, 0, fields).await
}
