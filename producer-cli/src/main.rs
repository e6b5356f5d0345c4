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
    // first, so the handlers' hook below wraps it: a handler run inline that panics, even
    // on a closed stdout, fails its job
    quiet_on_closed_stdout();
    // a handler run inline (JOBQ_FALLBACK=inline) that panics fails its job, reported once
    queue_core::install_panic_hook();
    init_logging();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // every usage error exits 2, with one line naming what was wrong
            let text = e.render().to_string();
            eprintln!(
                "{}",
                queue_core::internal::text::one_line_usage_error(&text)
            );
            return ExitCode::from(exit::USAGE);
        }
        Err(e) => {
            // --help and --version are not failures
            let _ = e.print();
            return ExitCode::SUCCESS;
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

/// Output read by something that stopped reading (`jobq show q 1 | head`): `print!` panics
/// on the closed pipe. Whatever the command did is done; it ends there, without a panic
/// message, as a Unix tool killed by SIGPIPE does (exit code 141). (SIGPIPE itself stays
/// ignored: a handler run inline may write to a child process that has exited.) Any other
/// failure to write stdout (a full disk) is a runtime failure: one line, exit 1.
fn quiet_on_closed_stdout() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if let Some(why) = text.strip_prefix("failed printing to stdout: ") {
            if why.contains("Broken pipe") {
                std::process::exit(141);
            }
            // e.g. a full disk: a runtime failure (exit 1) in one line, never a panic (nor a
            // second one, should stderr fail too)
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "jobq: cannot write the output to stdout ({why}); what the command did is \
                 done, only its output is lost"
            );
            std::process::exit(1);
        }
        previous(info);
    }));
}

/// Warnings (and what `RUST_LOG` asks for) on stderr: what a command did not do says why
/// there, e.g. each spooled line a replay set aside and its reason. Warnings only by
/// default: a command's output is its answer, not a log. The producer's own notices of an
/// outage are left out: the command says it in one line of its own.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "warn,queue_core::producer=error,queue_core::producer::replay=warn,\
             queue_core::producer::spool=warn",
        )
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .init();
}
