//! `vigil worker --queue nats://HOST:PORT [--jobs N] [--key FILE]`: a fleet worker
//! ([`crate::fleet::worker`]); exits 0 after SIGINT/SIGTERM once the jobs in hand are done, 2 when
//! the queue cannot be reached or refuses the credentials.

use super::{Exit, Failure, load_or_create_key};
use crate::fleet::worker::{self, WorkerOptions};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// NATS server with JetStream (`nats://` or `tls://`; credentials in the URL or in
    /// VIGIL_NATS_USER/VIGIL_NATS_PASSWORD, VIGIL_NATS_TOKEN or VIGIL_NATS_NKEY).
    #[arg(long, value_name = "URL", env = "VIGIL_QUEUE")]
    pub queue: String,
    /// Jobs scored at once [default: as `vigil rescore --jobs`].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
    /// Ed25519 private key to sign reports with [default: as `vigil score`].
    #[arg(long, value_name = "FILE")]
    pub key: Option<std::path::PathBuf>,
    /// This worker's name in logs and results [default: vigil-worker-<host>-<pid>].
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run(a: WorkerArgs) -> Result<ExitCode, Failure> {
    let key = load_or_create_key(a.key.as_deref())?;
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let opts = WorkerOptions {
        url: a.queue,
        jobs: a
            .jobs
            .map_or_else(crate::rescore::default_jobs, usize::from),
        key,
        name: a
            .name
            .unwrap_or_else(|| format!("vigil-worker-{host}-{}", std::process::id())),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(Exit::Config, format!("cannot start the async runtime: {e}")))?;
    let done = rt
        .block_on(worker::run(opts, super::ats::shutdown_signal()))
        .map_err(|e| Failure::new(Exit::Config, e))?;
    eprintln!("vigil worker: stopped after {done} report(s)");
    Ok(ExitCode::SUCCESS)
}
