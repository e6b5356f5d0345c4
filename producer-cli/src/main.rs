//! `jobq`: enqueue jobs, inspect and steer queues from a shell.
//!
//! This file only parses the command line, runs the command and turns its outcome into an
//! exit code. The commands live in `commands/` (one file per group), their flags in
//! `cli.rs`, printing in `output.rs` and bulk-file parsing in `jsonl.rs`. Every command goes
//! through queue-core, never Redis directly.

mod cli;
mod commands;
mod exit;
mod jsonl;
mod output;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    // a handler run inline (JOBQ_FALLBACK=inline) that panics fails its job, reported once
    queue_core::install_panic_hook();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not failures; every usage error exits 2
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jobq: {}", exit::message(&e));
            ExitCode::from(exit::code(&e))
        }
    }
}
