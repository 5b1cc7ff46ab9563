//! The `teamgate` binary: parse the command line, run it, print the error chain on failure.

use std::process::ExitCode;

fn main() -> ExitCode {
    teamgate::cli::main()
}
