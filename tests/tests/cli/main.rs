//! The command-line binaries end to end: `jobq` commands, its input checks and exit codes,
//! `jobq flow add`, the `jobq-worker` binary (panics, logs, start-up summary, metrics), and
//! `rediss://` TLS.

mod cli_commands;
mod cli_flow;
mod cli_input;
mod config_tls;
mod worker_binary;
