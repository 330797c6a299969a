//! `vigil serve --config FILE` and `vigil serve token`.

use super::{Exit, Failure};
use crate::ats::config::AtsConfig;
use crate::ats::worker::{RunMode, Worker};
use crate::server::session::Sessions;
use crate::server::{self, config::ServeConfig};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    /// Server configuration (TOML; see `vigil serve --help` and README § Server mode).
    /// Top-level keys can be overridden with VIGIL_SERVE_<KEY> environment variables.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
}

#[derive(Debug, clap::Subcommand)]
pub enum ServeCommand {
    /// Create a bot token: prints the token (give it to the bot) and the [[tokens]] entry with
    /// its SHA-256 (put it in the server config; the token itself is never stored).
    Token {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
    },
}

pub fn run(a: ServeArgs) -> Result<ExitCode, Failure> {
    if let Some(ServeCommand::Token { tenant, name }) = a.command {
        let (token, hash) = server::auth::new_token();
        println!("token: {token}");
        println!();
        println!("[[tokens]]\nname = {name:?}\ntenant = {tenant:?}\nsha256 = \"{hash}\"");
        return Ok(ExitCode::SUCCESS);
    }
    let path = a
        .config
        .ok_or_else(|| Failure::new(Exit::Config, "vigil serve needs --config FILE"))?;
    let cfg = ServeConfig::load(&path).map_err(|e| Failure::new(Exit::Config, e))?;
    let listen = cfg.listen.clone();
    let grace = cfg.shutdown_grace;
    let deliver = cfg.deliver;
    let ats = cfg.ats.clone();
    let state = server::prepare(cfg).map_err(|e| Failure::new(Exit::Config, e))?;
    let sessions = state.sessions.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(Exit::Config, format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| Failure::new(Exit::Config, format!("cannot listen on {listen}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Failure::new(Exit::Config, e.to_string()))?;
        println!("vigil serve: listening on http://{addr} (API description at /openapi.json)");
        use std::io::Write;
        let _ = std::io::stdout().flush();

        let (stop_tx, stop_rx) = watch::channel(false);
        let reaper = spawn_reaper(sessions.clone(), stop_rx.clone());
        let worker = match deliver {
            true => Some(spawn_delivery(&ats, stop_rx.clone())?),
            false => None,
        };
        // On the signal: stop admitting and park receiving sessions at once, so open streams
        // end (503 with their offset) and axum's drain of in-flight requests completes.
        let signalled = {
            let sessions = sessions.clone();
            async move {
                super::ats::shutdown_signal().await;
                eprintln!(
                    "vigil serve: shutting down; finishing or parking active sessions (up to {} s)",
                    grace.as_secs()
                );
                let _ = tokio::task::spawn_blocking(move || sessions.begin_shutdown()).await;
            }
        };
        let served = server::listen::serve(
            listener,
            server::router(state),
            server::listen::Limits::default(),
            signalled,
        )
        .await;
        let s = sessions.clone();
        let _ = tokio::task::spawn_blocking(move || s.finish_shutdown(grace)).await;
        let _ = stop_tx.send(true);
        let _ = reaper.await;
        if let Some(w) = worker {
            let _ = w.await;
        }
        served.map_err(|e| Failure::new(Exit::Config, format!("server: {e}")))
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Every 5 s, sessions idle past their timeout are interrupted, until `stop` changes.
fn spawn_reaper(
    sessions: Arc<Sessions>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let s = sessions.clone();
                    let _ = tokio::task::spawn_blocking(move || s.reap_idle()).await;
                }
                _ = stop.changed() => return,
            }
        }
    })
}

/// The ATS delivery worker (`deliver = true`), running until `stop` changes.
fn spawn_delivery(
    ats: &AtsConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, Failure> {
    let store =
        crate::store::Store::open(&ats.store_path).map_err(|e| Failure::new(Exit::Config, e))?;
    let connectors = crate::ats::connectors(ats)
        .map_err(|e| Failure::new(Exit::Config, format!("cannot build the HTTP client: {e}")))?;
    let d = &ats.delivery;
    let worker = Worker::new(store, connectors, d.retry, d.concurrency, d.lease);
    Ok(tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.changed().await;
        };
        if let Err(e) = worker.run(RunMode::Forever, stopped).await {
            tracing::error!("the delivery worker stopped: {e}");
        }
    }))
}
