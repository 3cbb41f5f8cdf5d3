//! The `attendd` binary: parses the command line and hands it to
//! [`attendd::cli::run`].

use clap::Parser;
use clap::error::ErrorKind;

fn main() -> std::process::ExitCode {
    match attendd::cli::Cli::try_parse() {
        Ok(cli) => attendd::cli::run(cli),
        Err(e) => {
            let _ = e.print();
            // A flag's value that does not parse (a date out of range, a
            // month that is not YYYY-MM) is bad input: exit 1, with clap's
            // message naming the flag. Other usage errors keep clap's code.
            let code = match e.kind() {
                ErrorKind::ValueValidation | ErrorKind::InvalidValue => 1,
                _ => e.exit_code(),
            };
            std::process::ExitCode::from(u8::try_from(code).unwrap_or(2))
        }
    }
}
