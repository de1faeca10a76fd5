//! The `rbflex` command line: parses the arguments and runs the command
//! (see `rbflex::cli`).

use clap::Parser;
use rbflex::cli::{self, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One intra-op thread: networks run in parallel instead, and parity with
    // the reference's single-threaded kernels is kept.
    tch::set_num_threads(1);
    rbflex::memory::keep_freed_memory();
    // Every user error is an `Err` with its own message; a panic is a bug
    // (or a closed stdout): one line, non-zero exit, no backtrace. Results
    // already written stay on disk.
    std::panic::set_hook(Box::new(|_| {}));
    let run = std::panic::AssertUnwindSafe(|| cli::run(cli));
    let result = std::panic::catch_unwind(run).unwrap_or_else(|payload| {
        let first = rbflex::files::panic_message(payload.as_ref());
        if first.starts_with("failed printing to stdout") {
            return Err(anyhow::anyhow!("cannot write the output: {first}"));
        }
        Err(anyhow::anyhow!("internal error (a bug in rbflex, please report it): {first}"))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
