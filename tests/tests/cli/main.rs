//! The command-line binaries end to end: `jobq` commands, its input checks and exit codes,
//! the `jobq-worker` binary (panics, logs, start-up summary, metrics), and `rediss://` TLS.

mod cli_commands;
mod cli_input;
mod config_tls;
mod worker_binary;
