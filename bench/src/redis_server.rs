//! Where the benchmark runs: a Redis given by `REDIS_URL`, or a private one started here.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use queue_core::{Config, Redis};

pub enum Target {
    Given(String),
    Private {
        child: Child,
        port: u16,
        dir: std::path::PathBuf,
    },
}

/// One run's connection and key prefix.
pub struct RunEnv {
    pub config: Config,
    pub redis: Redis,
    /// Which run of the workload this is (0-based).
    pub run: usize,
    /// On a private server of ours (not `REDIS_URL`): its settings may be changed.
    pub private: bool,
}

impl RunEnv {
    /// Runs phases `a` and `b` of one run of a workload, alternating which goes first from
    /// run to run (so neither always meets the other's leftovers); their results, `a`'s first.
    pub async fn both<T>(
        &self,
        a: impl std::future::Future<Output = Result<T>>,
        b: impl std::future::Future<Output = Result<T>>,
    ) -> Result<(T, T)> {
        if self.run % 2 == 0 {
            let a = a.await?;
            Ok((a, b.await?))
        } else {
            let b = b.await?;
            Ok((a.await?, b))
        }
    }
}

impl Target {
    pub fn from_env() -> Result<Target> {
        if let Some(url) = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()) {
            return Ok(Target::Given(url));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = std::env::temp_dir().join(format!("jobq-bench-{port}"));
        std::fs::create_dir_all(&dir)?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--maxmemory-policy", "noeviction"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .context("starting redis-server (install it, or set REDIS_URL)")?;
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(Target::Private { child, port, dir })
    }

    fn url(&self) -> String {
        match self {
            Target::Given(u) => u.clone(),
            Target::Private { port, .. } => format!("redis://127.0.0.1:{port}"),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Target::Given(_) => format!("REDIS_URL {}", queue_core::config::mask_url(&self.url())),
            Target::Private { port, .. } => {
                format!("private redis-server on port {port} (no persistence, noeviction)")
            }
        }
    }

    /// A clean slate for one run: a flushed private server, or a fresh prefix on a given one.
    pub async fn fresh_run(&self, run: usize) -> Result<RunEnv> {
        let prefix = format!("bench{}r{run}", std::process::id());
        let config = Config::new(self.url())?.with_prefix(prefix)?;
        let redis = Redis::connect(&config).await?;
        let private = matches!(self, Target::Private { .. });
        if private {
            let mut c = redis.conn();
            let _: () = redis::cmd("FLUSHALL").query_async(&mut c).await?;
        }
        Ok(RunEnv {
            config,
            redis,
            run,
            private,
        })
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Target::Private { child, dir, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
