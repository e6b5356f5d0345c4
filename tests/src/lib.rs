//! Shared harness for jobq's integration tests: a real Redis, and a fresh key prefix per
//! test so tests never see each other's queues.
//!
//! `scripts/test` starts one private Redis and passes it as `JOBQ_TEST_REDIS_URL`. Without
//! it (a bare `cargo test`), the first test of a process starts a private `redis-server`
//! on a free port, which lives as long as the process.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use queue_core::{Config, Queue, Redis, Worker, WorkerBuilder};

mod cluster;
mod proxy;
pub mod search;
pub use cluster::RedisCluster;
pub use proxy::Proxy;
pub use search::SearchFixture;

/// A private `redis-server` this process started; stopped when dropped, and also when the
/// test process dies (a watchdog shell ends it), so no server outlives its tests.
pub struct RedisServer {
    watchdog: Option<Child>,
    pub port: u16,
    pub dir: std::path::PathBuf,
    args: Vec<String>,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port with the extra `args`
    /// (e.g. `["--appendonly", "yes"]`).
    pub fn start(args: &[&str]) -> RedisServer {
        RedisServer::start_on(free_port(), args)
    }

    /// A server whose slowlog keeps every call of over 5 ms (up to 10,000 of them), for
    /// [`slowest_call`].
    pub fn start_logging_slow_calls() -> RedisServer {
        RedisServer::start_with_slowlog(5_000, 10_000)
    }

    /// A server whose slowlog keeps every call of at least `slower_than_us` (0: every call),
    /// up to `max_len` of them.
    pub fn start_with_slowlog(slower_than_us: u64, max_len: u64) -> RedisServer {
        let (over, len) = (slower_than_us.to_string(), max_len.to_string());
        RedisServer::start(&[
            "--slowlog-log-slower-than",
            &over,
            "--slowlog-max-len",
            &len,
        ])
    }

    /// Starts `redis-server` on the given loopback `port` with the extra `args`: for tests
    /// that point a client at a port before anything listens there.
    pub fn start_on(port: u16, args: &[&str]) -> RedisServer {
        let dir =
            std::env::temp_dir().join(format!("jobq-test-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create redis dir");
        let mut server = RedisServer {
            watchdog: None,
            port,
            dir,
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        self.spawn_server();
        self.wait_ready();
    }

    /// Stops the server (SHUTDOWN) and starts it again on the same port and data directory
    /// without waiting for it to be ready: with a large data set (and `--key-load-delay`)
    /// it answers `LOADING` for a while.
    pub fn restart_loading(&mut self) {
        self.stop();
        self.spawn_server();
    }

    /// Starts a server whose data set will take seconds to load after
    /// [`RedisServer::restart_into_a_slow_load`] (200 µs per key, answering clients all
    /// through the load), with the extra `args`.
    pub fn start_slow_loading(args: &[&str]) -> RedisServer {
        let mut all = vec![
            "--enable-debug-command",
            "local",
            "--key-load-delay",
            "200",
            // answer clients (LOADING) all through the load, not every 2 MB read
            "--loading-process-events-interval-bytes",
            "1024",
        ];
        all.extend_from_slice(args);
        RedisServer::start(&all)
    }

    /// Adds 20,000 filler keys, persists everything (RDB, and the AOF when it is on),
    /// restarts the server, and returns once it answers `LOADING`: about 4 s of loading
    /// follow (a server from [`RedisServer::start_slow_loading`]).
    pub fn restart_into_a_slow_load(&mut self) {
        self.cli(&["DEBUG", "POPULATE", "20000", "filler"]);
        self.cli(&["SAVE"]);
        if self.cli(&["CONFIG", "GET", "appendonly"]).contains("yes") {
            // DEBUG POPULATE is not logged to the AOF: rewrite it
            self.cli(&["BGREWRITEAOF"]);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self
                .cli(&["INFO", "persistence"])
                .contains("aof_rewrite_in_progress:0")
            {
                assert!(Instant::now() < deadline, "the AOF rewrite did not end");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.restart_loading();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.is_loading() {
            assert!(Instant::now() < deadline, "redis never answered LOADING");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the server answers `LOADING` (still loading its data set).
    pub fn is_loading(&self) -> bool {
        self.cli(&["PING"]).contains("LOADING")
    }

    /// `redis-cli` against this server; its output.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli must be installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn spawn_server(&mut self) {
        // The shell runs redis-server and ends it when this test process is gone.
        let script = format!(
            "redis-server \"$@\" & rp=$!; \
             while kill -0 {pid} 2>/dev/null && kill -0 $rp 2>/dev/null; do sleep 0.3; done; \
             kill -9 $rp 2>/dev/null; wait $rp 2>/dev/null",
            pid = std::process::id()
        );
        let port = self.port.to_string();
        let mut args: Vec<String> = [
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory-policy",
            "noeviction",
            "--daemonize",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push("--dir".into());
        args.push(self.dir.display().to_string());
        args.push("--pidfile".into());
        args.push(self.dir.join("redis.pid").display().to_string());
        args.extend(self.args.iter().cloned());
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("redis-watchdog")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        self.watchdog = Some(child);
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let ping = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "ping"])
                .output();
            if matches!(ping, Ok(o) if o.stdout.starts_with(b"PONG")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    /// Stops the server as an operator would (SHUTDOWN: AOF is flushed), and waits for it.
    pub fn stop(&mut self) {
        let _ = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "shutdown"])
            .output();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.wait();
        }
    }

    /// Kills the server with SIGKILL (a crash: nothing is flushed), and waits for it.
    pub fn kill(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("redis.pid")) {
            let _ = Command::new("kill").args(["-9", pid.trim()]).output();
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.wait();
        }
    }

    /// Starts the server again on the same port and data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "shutdown", "nosave"])
            .output();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Path of a workspace binary (`jobq-worker`, `jobq`) built beside the test executable.
/// `scripts/test` builds them first; a bare `cargo test` needs `cargo build --bins`.
pub fn bin_path(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --bins` (scripts/test does)",
        path.display()
    );
    path
}

/// A jobq binary a test runs: its stderr goes to a log file of its own, and it gets an
/// empty `JOBQ_SPOOL_DIR` of its own unless the test gives one (workers and dashboards
/// replay the spool, and the default `./.jobq-spool` is shared by every test running at
/// once). Killed (SIGKILL), and its log removed, when dropped.
pub struct LoggedProcess {
    pub child: Child,
    log: std::path::PathBuf,
    _spool: Option<TempDir>,
}

impl LoggedProcess {
    /// Spawns `cmd` (with `RUST_LOG=info`, `NO_COLOR`, then `env`), logging to a file
    /// named after `name`.
    pub fn spawn(mut cmd: Command, name: &str, env: &[(&str, &str)]) -> LoggedProcess {
        let log = std::env::temp_dir().join(format!("jobq-{name}-{}.log", rand_u64()));
        let file = std::fs::File::create(&log).expect("process log file");
        let spool = (!env.iter().any(|(k, _)| *k == "JOBQ_SPOOL_DIR"))
            .then(|| TempDir::new(&format!("{name}-spool")));
        let child = cmd
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(spool.iter().map(|d| ("JOBQ_SPOOL_DIR", d.as_str())))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        LoggedProcess {
            child,
            log,
            _spool: spool,
        }
    }

    /// Sends a signal by name (`KILL`, `TERM`, `INT`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits up to `timeout` for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything it has written to stderr (its log) so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LoggedProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A running `jobq-worker` process (a [`LoggedProcess`]).
pub struct WorkerProcess(LoggedProcess);

impl WorkerProcess {
    /// Starts `jobq-worker` against `url` and `prefix` with extra `args`.
    pub fn start(url: &str, prefix: &str, args: &[&str]) -> WorkerProcess {
        WorkerProcess::start_env(url, prefix, args, &[])
    }

    /// Like [`WorkerProcess::start`], with extra environment variables (e.g.
    /// `JOBQ_SPOOL_DIR`).
    pub fn start_env(
        url: &str,
        prefix: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> WorkerProcess {
        let mut cmd = Command::new(bin_path("jobq-worker"));
        cmd.args(["--redis-url", url, "--prefix", prefix])
            .args(args);
        WorkerProcess(LoggedProcess::spawn(cmd, "worker", env))
    }
}

impl std::ops::Deref for WorkerProcess {
    type Target = LoggedProcess;
    fn deref(&self) -> &LoggedProcess {
        &self.0
    }
}

impl std::ops::DerefMut for WorkerProcess {
    fn deref_mut(&mut self) -> &mut LoggedProcess {
        &mut self.0
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn shared_url() -> String {
    if let Some(url) = std::env::var("JOBQ_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        return url;
    }
    static SERVER: OnceLock<Mutex<RedisServer>> = OnceLock::new();
    let server = SERVER.get_or_init(|| Mutex::new(RedisServer::start(&[])));
    server.lock().unwrap_or_else(|e| e.into_inner()).url()
}

/// One test's view of Redis: its own prefix, a config and a connection.
pub struct TestEnv {
    pub config: Config,
    pub redis: Redis,
}

impl TestEnv {
    /// A fresh prefix on the shared test Redis.
    pub async fn new() -> TestEnv {
        TestEnv::on(&shared_url()).await
    }

    /// A fresh prefix on the Redis at `url`.
    pub async fn on(url: &str) -> TestEnv {
        TestEnv::on_prefix(url, &fresh_prefix()).await
    }

    /// The Redis at `url` under a given `prefix` (e.g. one a worker process was started
    /// with before Redis was up).
    pub async fn on_prefix(url: &str, prefix: &str) -> TestEnv {
        let config = Config::new(url)
            .and_then(|c| c.with_prefix(prefix))
            .expect("test config");
        let redis = Redis::connect(&config)
            .await
            .expect("connect to test redis");
        TestEnv { config, redis }
    }

    /// Opens `name` under this test's prefix.
    pub async fn queue(&self, name: &str) -> Queue {
        Queue::open(&self.redis, self.config.prefix(), name)
            .await
            .expect("open queue")
    }

    /// A worker builder on this test's connection.
    pub fn worker(&self) -> WorkerBuilder {
        Worker::builder(self.config.clone()).redis(self.redis.clone())
    }

    /// A raw connection for assertions on keys.
    pub async fn raw(&self) -> queue_core::Conn {
        self.redis.conn()
    }
}

/// Runs `worker` in the background; the returned guard shuts it down (gracefully) on drop.
pub fn spawn_worker(worker: Worker) -> WorkerGuard {
    let token = worker.shutdown_token();
    let handle = tokio::spawn(async move { worker.run().await });
    WorkerGuard {
        token,
        handle: Some(handle),
    }
}

/// Shuts a background worker down when dropped (or explicitly with [`WorkerGuard::stop`]).
pub struct WorkerGuard {
    token: tokio_util_token::CancellationToken,
    handle: Option<tokio::task::JoinHandle<queue_core::Result<()>>>,
}

/// Re-export so tests need not depend on tokio-util themselves.
pub mod tokio_util_token {
    pub use queue_core::worker::CancellationToken;
}

impl WorkerGuard {
    /// Signals shutdown and waits for the worker to return.
    pub async fn stop(mut self) -> queue_core::Result<()> {
        self.token.cancel();
        match self.handle.take() {
            Some(h) => h.await.expect("worker task panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Polls `check` every 10 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until exactly `n` jobs of `queue` are active (held by workers).
pub async fn wait_active(queue: &Queue, n: u64, timeout: Duration) {
    eventually(
        timeout,
        &format!("{n} active jobs in {}", queue.name()),
        || async { (queue.counts().await.ok()?.active == n).then_some(()) },
    )
    .await
}

/// Waits until `queue` has recorded `n` completed plus failed jobs in total.
pub async fn wait_finished(queue: &Queue, n: u64, timeout: Duration) -> queue_core::Counts {
    eventually(
        timeout,
        &format!("{n} jobs to finish in {}", queue.name()),
        || async {
            let c = queue.counts().await.ok()?;
            (c.completed_total + c.failed_total >= n).then_some(c)
        },
    )
    .await
}

/// A fresh, random key prefix (what [`TestEnv::on`] uses).
pub fn fresh_prefix() -> String {
    format!("t{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Milliseconds since the epoch by this machine's clock (the test Redis runs here too).
pub use queue_core::internal::clock::now_ms;

/// Waits until job `id` of `queue` has finished — completed, failed for good, or
/// cancelled — and returns it.
pub async fn wait_job_done(queue: &Queue, id: &str, timeout: Duration) -> queue_core::JobInfo {
    eventually(timeout, &format!("job {id} to finish"), || async {
        let job = queue.get_job(id).await.ok()??;
        job.state.is_finished().then_some(job)
    })
    .await
}

/// Adds a job `name` to `queue` with data `{"ms": 20000}` (a 20 s sleep: `diag.sleep`, or a
/// test's own handler reading `ms`) and `opts`, waits up to `timeout` until it is the one
/// active job, and returns its id: a running job to stop.
pub async fn start_long_job(
    queue: &Queue,
    name: &str,
    opts: queue_core::JobOptions,
    timeout: Duration,
) -> String {
    let added = queue
        .add(name, &serde_json::json!({"ms": 20_000}), opts)
        .await
        .expect("add a long job");
    wait_active(queue, 1, timeout).await;
    added.id
}

/// Waits until job `id` of `queue` has ended cancelled, asserting that it did within 1.5 s
/// of `asked` (when its cancel was asked for), and returns it.
pub async fn wait_cancelled(queue: &Queue, id: &str, asked: Instant) -> queue_core::JobInfo {
    let job = eventually(
        Duration::from_secs(3),
        "the job to end cancelled",
        || async {
            let j = queue.job(id).await.ok()?;
            (j.state == queue_core::JobState::Cancelled).then_some(j)
        },
    )
    .await;
    let took = asked.elapsed();
    assert!(
        took < Duration::from_millis(1_500),
        "cancelled after {took:?}"
    );
    job
}

/// A fresh directory under the system temp dir, removed (with its contents) when dropped:
/// e.g. a `JOBQ_SPOOL_DIR` of one test.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// Creates `jobq-<tag>-<random>` in the temp dir.
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("jobq-{tag}-{:016x}", rand_u64()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// The directory as text (for environment variables).
    pub fn as_str(&self) -> &str {
        self.0.to_str().expect("temp dir is UTF-8")
    }

    /// The files in it whose name ends with `suffix`, sorted.
    pub fn files_ending(&self, suffix: &str) -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(&self.0)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.ends_with(suffix))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Lua script calls (`EVAL` and `EVALSHA`) the server has run so far, from
/// `INFO commandstats`: a test that counts them needs a server of its own.
pub async fn script_calls(conn: &mut queue_core::Conn) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO commandstats");
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Adds `jobs` in bulk; their ids, in order.
pub async fn add_all(queue: &Queue, jobs: Vec<queue_core::NewJob>) -> Vec<String> {
    queue
        .add_bulk(jobs)
        .await
        .expect("add_bulk")
        .into_iter()
        .map(|a| a.id)
        .collect()
}

/// Empties the slowlog, for [`slowest_call`] to see only what follows.
pub async fn reset_slowlog(conn: &mut queue_core::Conn) {
    let _: () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query_async(conn)
        .await
        .expect("SLOWLOG RESET");
}

/// The ids of the listed jobs `jobs` (JSON objects, as `jobq list --json` and the
/// dashboard's API give them) marked corrupt for field `field`, in listing order.
pub fn marked_corrupt<'a>(jobs: &'a [serde_json::Value], field: &str) -> Vec<&'a str> {
    let note = format!("field {field}");
    jobs.iter()
        .filter(|j| j["corrupt"].as_str().is_some_and(|c| c.contains(&note)))
        .map(|j| j["id"].as_str().unwrap())
        .collect()
}

/// What the slowlog holds: how many entries, and the longest one (µs, and its first two
/// arguments, clipped). The server must log what matters (`--slowlog-log-slower-than`).
pub async fn slowest_call(conn: &mut queue_core::Conn) -> (usize, (i64, String)) {
    let slow: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query_async(conn)
        .await
        .expect("SLOWLOG GET");
    let mut worst = (0i64, String::new());
    for entry in &slow {
        let redis::Value::Array(f) = entry else {
            continue;
        };
        let us = match f.get(2) {
            Some(redis::Value::Int(us)) => *us,
            _ => 0,
        };
        if us > worst.0 {
            let cmd = match f.get(3) {
                Some(redis::Value::Array(args)) => args
                    .iter()
                    .take(2)
                    .map(|a| match a {
                        redis::Value::BulkString(b) => {
                            String::from_utf8_lossy(&b[..b.len().min(40)]).into_owned()
                        }
                        other => format!("{other:?}"),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => String::new(),
            };
            worst = (us, cmd);
        }
    }
    (slow.len(), worst)
}

/// Hostile worker records under the test's prefix, beside whatever lives (five listed as
/// corrupt): a record of the wrong type (`list`), info that is not JSON (`garbage`), info
/// over the cap (`huge`), a last-seen time that is not one (`seen`), an id over 512 bytes;
/// and an entry whose record is gone (`gone`: pruned by the listing).
pub async fn plant_corrupt_workers(env: &TestEnv) {
    let keys = queue_core::internal::keys::WorkerKeys::new(env.config.prefix());
    let mut c = env.raw().await;
    let far = now_ms() + 3_600_000;
    let long_id = "L".repeat(600);
    for id in ["list", "garbage", "huge", "seen", "gone", long_id.as_str()] {
        let _: i64 = redis::cmd("ZADD")
            .arg(keys.registry())
            .arg(far)
            .arg(id)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    let _: () = redis::pipe()
        .cmd("RPUSH")
        .arg(keys.record("list"))
        .arg("x")
        .ignore()
        .cmd("HSET")
        .arg(keys.record("garbage"))
        .arg("info")
        .arg("<script>{")
        .arg("seen")
        .arg(1)
        .ignore()
        .cmd("HSET")
        .arg(keys.record("huge"))
        .arg("info")
        .arg("x".repeat(1 << 20))
        .arg("seen")
        .arg(1)
        .ignore()
        .cmd("HSET")
        .arg(keys.record("seen"))
        .arg("info")
        .arg("{}")
        .arg("seen")
        .arg("y".repeat(100))
        .ignore()
        .query_async(&mut c)
        .await
        .unwrap();
}

/// Writes a lean job (stored as its lane entry alone, no hash: README *Lean jobs*) into
/// lane `prio` of the queue of `keys` by hand, as `add_job` writes one (its entry, the
/// waiting counter), with entry `fields` (`n` name, `d` data, then `o` options, `t` trace
/// context) as raw bytes: a hostile value as something other than jobq might store it. The
/// lane must be open (a job added to it already). Returns its id, `~<prio>.<entry id>`.
pub async fn add_lean_by_hand(
    env: &TestEnv,
    keys: &queue_core::internal::keys::QueueKeys,
    prio: i32,
    fields: &[(&str, &[u8])],
) -> String {
    let mut raw = env.raw().await;
    let mut cmd = redis::cmd("XADD");
    cmd.arg(keys.lane(prio)).arg("*");
    for (k, v) in fields {
        cmd.arg(*k).arg(*v);
    }
    let sid: String = cmd.query_async(&mut raw).await.unwrap();
    let _: i64 = redis::cmd("HINCRBY")
        .arg(keys.meta())
        .arg("waiting")
        .arg(1)
        .query_async(&mut raw)
        .await
        .unwrap();
    format!("~{prio}.{sid}")
}

/// Claims up to `count` undelivered entries of lane `prio` of the queue of `keys` for
/// `consumer` by hand, as a worker's claim does (pending to it, no longer counted waiting):
/// a worker that claims and then dies, or stands still. Returns the entry ids claimed.
pub async fn claim_by_hand(
    env: &TestEnv,
    keys: &queue_core::internal::keys::QueueKeys,
    prio: i32,
    consumer: &str,
    count: usize,
) -> Vec<String> {
    let mut raw = env.raw().await;
    let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(queue_core::internal::keys::GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(keys.lane(prio))
        .arg(">")
        .query_async(&mut raw)
        .await
        .unwrap();
    let sids: Vec<String> = reply
        .keys
        .into_iter()
        .flat_map(|k| k.ids)
        .map(|e| e.id)
        .collect();
    let _: i64 = redis::cmd("HINCRBY")
        .arg(keys.meta())
        .arg("waiting")
        .arg(-(sids.len() as i64))
        .query_async(&mut raw)
        .await
        .unwrap();
    sids
}

/// The priorities of queue `keys`' lanes (its lanes set, as Redis lists it).
pub async fn lane_prios<T: redis::FromRedisValue>(
    conn: &mut queue_core::Conn,
    keys: &queue_core::internal::keys::QueueKeys,
) -> Vec<T> {
    redis::cmd("ZRANGE")
        .arg(keys.lanes())
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await
        .expect("ZRANGE of the lanes set")
}

/// Whether `key` exists in the test's Redis.
pub async fn key_exists(env: &TestEnv, key: &str) -> bool {
    let n: i64 = redis::cmd("EXISTS")
        .arg(key)
        .query_async(&mut env.raw().await)
        .await
        .expect("EXISTS");
    n == 1
}
