//! The `vigil` binary: parse, dispatch, map errors to exit codes. Everything else is in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    // ONNX Runtime ≥ 1.31 on Linux keeps a device id, an event database and a session file for
    // telemetry unless ORT_DISABLE_TELEMETRY=1 is set before it initialises. Nothing about an
    // interview may be kept or sent that Vigil does not need, so it is always off.
    // SAFETY: first statement of `main`, before any thread exists, so nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var("ORT_DISABLE_TELEMETRY", "1") };
    fix_mmap_threshold();
    vigil::cli::main()
}

/// Allocations of 256 KiB or more are mapped on their own and unmapped when freed, for the whole
/// run. glibc's default raises this threshold to the size of every large block freed (up to
/// 32 MiB), so the transient blocks of loading the ONNX models end up in per-thread arenas that
/// keep them: ≈ 90 MiB of a run's peak RSS that no analyser was using (BENCHMARKS.md, "Peak
/// memory: load-time blocks given back"). The cost is one page fault per page of each such block,
/// ≈ 0.2 s of system CPU per run.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fix_mmap_threshold() {
    // SAFETY: called before any thread exists; mallopt only sets an allocator parameter (its
    // result, 0 on an invalid value, cannot fail for this constant).
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fix_mmap_threshold() {}
