//! The `vigil` binary: parse, dispatch, map errors to exit codes. Everything else is in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    // ONNX Runtime ≥ 1.31 on Linux keeps a device id, an event database and a session file for
    // telemetry unless ORT_DISABLE_TELEMETRY=1 is set before it initialises. Nothing about an
    // interview may be kept or sent that Vigil does not need, so it is always off.
    // SAFETY: first statement of `main`, before any thread exists, so nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var("ORT_DISABLE_TELEMETRY", "1") };
    vigil::cli::main()
}
