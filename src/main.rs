//! The `attendd` binary: parses the command line and hands it to
//! [`attendd::cli::run`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    attendd::cli::run(attendd::cli::Cli::parse())
}
