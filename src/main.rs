//! The `vigil` binary: parse, dispatch, map errors to exit codes. Everything else is in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    vigil::cli::main()
}
