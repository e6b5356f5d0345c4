//! The command-line binaries end to end: `jobq` commands, its input checks and exit codes,
//! `jobq flow add`, the `jobq-worker` binary (panics, logs, start-up summary, metrics), and
//! `rediss://` TLS.

mod cli_commands;
mod cli_flow;
mod cli_groups;
mod cli_input;
mod config_tls;
mod worker_binary;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use jobq_tests::{bin_path, TestEnv};

/// Runs `jobq` against the test's Redis and prefix with extra environment `vars` (and
/// none of the caller's jobq variables), `args`, and `stdin` on its standard input.
pub(crate) fn jobq_env(
    env: &TestEnv,
    vars: &[(&str, &str)],
    args: &[&str],
    stdin: &[u8],
) -> Output {
    let mut child = Command::new(bin_path("jobq"))
        .args(["--redis-url", env.config.redis_url().unwrap()])
        .args(["--prefix", env.config.prefix()])
        .args(args)
        .env_remove("REDIS_URL")
        .env_remove("JOBQ_PREFIX")
        .env_remove("JOBQ_MAX_DATA_BYTES")
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run jobq");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}
