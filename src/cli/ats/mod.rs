//! `vigil ats …`: enqueue, deliver, status, retry, sandbox, audit, gate, review, exception,
//! kill-switch, purge, listen, sync-interviews, sessions — one file per group of subcommands,
//! sharing the config, store and runtime set-up here (`load`, `open_store`, `runtime`,
//! `tenant_of`).

mod delivery;
mod governance;
mod interviews;
mod sandbox;

pub use delivery::{DeliverArgs, EnqueueArgs, RetryArgs, StatusArgs};
pub use governance::{AuditArgs, ExceptionArgs, GateArgs, KillSwitchArgs, ReviewArgs, audit};
pub use interviews::{ListenArgs, SessionsArgs, SyncArgs};
pub use sandbox::SandboxArgs;

use super::{Exit, Failure};
use crate::ats::config::AtsConfig;
use crate::store::Store;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct AtsArgs {
    #[command(subcommand)]
    pub command: AtsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AtsCommand {
    /// Verify a signed report and queue it for every ATS connector of its tenant (one
    /// transaction; queuing the same report again does nothing).
    Enqueue(EnqueueArgs),
    /// Run the delivery worker: send due deliveries, retry with backoff, dead-letter.
    Deliver(DeliverArgs),
    /// List deliveries and their state.
    Status(StatusArgs),
    /// Requeue dead-lettered deliveries with a fresh attempt budget.
    Retry(RetryArgs),
    /// May this application advance to offer? (exit 0 yes, 1 no; the reason is printed)
    Gate(GateArgs),
    /// The manual review queue: list reports needing review, or record a decision.
    Review(ReviewArgs),
    /// Grant an audited exception: the application may advance without a verified report.
    Exception(ExceptionArgs),
    /// Degrade mode: stop automatic advances to offer (reports keep flowing), with its owner.
    KillSwitch(KillSwitchArgs),
    /// Register a Vigil session for every interview scheduled in Greenhouse from now (or
    /// --since): connect once, no per-interview set-up.
    SyncInterviews(SyncArgs),
    /// List registered sessions of a tenant.
    Sessions(SessionsArgs),
    /// Delete reports older than the retention period (`[retention] days`).
    Purge(ConfigArg),
    /// Serve the inbound ATS webhooks (Greenhouse, Lever deletions) and the stage-gate endpoint.
    Listen(ListenArgs),
    /// Create a stage-gate client token: prints the token (give it to the client) and the
    /// `[[tenants.gate_tokens]]` entry with its SHA-256 (put it under the tenant in the ATS
    /// config; the token itself is never stored).
    GateToken(GateTokenArgs),
    /// Run the local sandbox ATS (Greenhouse v3, Lever v1, webhook receiver) with fault
    /// injection, for demos and tests.
    Sandbox(SandboxArgs),
}

#[derive(Debug, clap::Args)]
pub struct GateTokenArgs {
    /// A name for the client (shown in logs), e.g. `greenhouse-stage-gate`.
    #[arg(long)]
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// ATS configuration (TOML; see `ats::config` docs / README § ATS).
    #[arg(long, value_name = "FILE", env = "VIGIL_ATS_CONFIG")]
    pub config: PathBuf,
}

pub fn run(a: AtsArgs) -> Result<ExitCode, Failure> {
    match a.command {
        AtsCommand::Enqueue(a) => delivery::enqueue(a),
        AtsCommand::Deliver(a) => delivery::deliver(a),
        AtsCommand::Status(a) => delivery::status(a),
        AtsCommand::Retry(a) => delivery::retry(a),
        AtsCommand::Sandbox(a) => sandbox::run_sandbox(a),
        AtsCommand::Gate(a) => governance::gate(a),
        AtsCommand::Review(a) => governance::review(a),
        AtsCommand::Exception(a) => governance::exception(a),
        AtsCommand::KillSwitch(a) => governance::kill_switch(a),
        AtsCommand::Purge(c) => governance::purge(c),
        AtsCommand::SyncInterviews(a) => interviews::sync_interviews(a),
        AtsCommand::Sessions(a) => interviews::sessions(a),
        AtsCommand::Listen(a) => interviews::listen(a),
        AtsCommand::GateToken(a) => {
            let (token, hash) = crate::server::auth::new_token();
            println!("token: {token}");
            println!();
            println!(
                "[[tenants.gate_tokens]]\nname = {:?}\nsha256 = \"{hash}\"",
                a.name
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load(c: &ConfigArg) -> Result<AtsConfig, Failure> {
    AtsConfig::load(&c.config).map_err(|e| Failure::new(Exit::Config, e))
}

fn open_store(cfg: &AtsConfig) -> Result<Store, Failure> {
    Store::open(&cfg.store_path).map_err(|e| Failure::new(Exit::Config, e))
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(Exit::Config, format!("cannot start the async runtime: {e}")))
}

fn tenant_of<'a>(
    cfg: &'a AtsConfig,
    c: &ConfigArg,
    id: &str,
) -> Result<&'a crate::ats::config::Tenant, Failure> {
    cfg.tenant(id).ok_or_else(|| {
        Failure::new(
            Exit::Config,
            format!("{}: no tenant '{id}' is configured", c.config.display()),
        )
    })
}

/// Completes on SIGINT or SIGTERM.
pub(super) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = ctrl_c => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
