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
    // libtorch reports an impossible computation (say, an input too small for
    // the network's strides) by a panic in tch, and so does a closed stdout:
    // turn either into a one-line error. Results already written stay on disk.
    std::panic::set_hook(Box::new(|_| {}));
    let run = std::panic::AssertUnwindSafe(|| cli::run(cli));
    let result = std::panic::catch_unwind(run).unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("unknown failure");
        let first = msg.lines().find(|l| !l.trim().is_empty()).unwrap_or(msg);
        Err(anyhow::anyhow!(
            "the network could not run on this input: {first} (is the input the size the network expects?)"
        ))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
