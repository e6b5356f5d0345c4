//! The command-line binaries end to end: `jobq` commands, its input checks and exit codes,
//! the one-job operations (dedup, debounce, priority, update), `jobq flow add`, `jobq
//! workers`, the `jobq-worker` binary (panics, logs, start-up summary, metrics), and
//! `rediss://` TLS.

mod cli_cancel;
mod cli_commands;
mod cli_flow;
mod cli_groups;
mod cli_input;
mod cli_job_ops;
mod cli_search;
mod cli_workers;
mod config_tls;
mod worker_binary;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use jobq_tests::{bin_path, TestEnv};
use serde_json::Value;

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

/// Runs `jobq <args>` with `stdin` against the test's Redis and prefix.
pub(crate) fn jobq_in(env: &TestEnv, args: &[&str], stdin: &[u8]) -> Output {
    jobq_env(env, &[], args, stdin)
}

/// A command's standard error, as text.
pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A command's standard output, as text.
pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `jobq --json <args>`, asserts exit 0, and returns its one line of JSON.
pub(crate) fn one_json(env: &TestEnv, args: &[&str]) -> Value {
    let out = jobq_in(env, &[&["--json"][..], args].concat(), b"");
    assert!(out.status.success(), "jobq {args:?}: {}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "jobq {args:?}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Every key under the test's prefix (the registry and any queue's keys).
pub(crate) async fn keys_of(env: &TestEnv) -> Vec<String> {
    let mut conn = env.raw().await;
    redis::cmd("KEYS")
        .arg(format!("*{}*", env.config.prefix()))
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// Writes a lean job (stored as its lane entry alone, no hash: README *Lean jobs*) into
/// lane 0 of `queue` by hand, as `add_job` writes one (its entry, the waiting counter), with
/// entry `fields` (`n` name, `d` data, then `o` options, `t` trace context) as raw bytes: a
/// hostile value as something other than jobq might store it. Lane 0 must be open (a job
/// added to it already). Returns its id, `~0.<entry id>`.
pub(crate) async fn add_lean_to(env: &TestEnv, queue: &str, fields: &[(&str, &[u8])]) -> String {
    let keys = queue_core::internal::keys::QueueKeys::new(env.config.prefix(), queue);
    jobq_tests::add_lean_by_hand(env, &keys, 0, fields).await
}
