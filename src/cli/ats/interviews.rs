//! `vigil ats listen | sync-interviews | sessions`: the inbound webhooks and the sessions
//! registered from an ATS's interview schedule.

use super::{ConfigArg, load, open_store, runtime, shutdown_signal, tenant_of};
use crate::cli::{Exit, Failure};
use crate::store::now_ms;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[arg(long)]
    pub tenant: String,
    /// Interviews starting at or after this time (RFC 3339) [default: now].
    #[arg(long)]
    pub since: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SessionsArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[arg(long)]
    pub tenant: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListenArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[arg(long, default_value = "127.0.0.1:8788")]
    pub listen: String,
}

pub(super) fn listen(a: ListenArgs) -> Result<ExitCode, Failure> {
    let cfg = load(&a.config)?;
    let store = open_store(&cfg)?;
    let http = crate::ats::http_client(cfg.delivery.request_timeout)
        .map_err(|e| Failure::new(Exit::Config, e.to_string()))?;
    let state = crate::ats::inbound::InboundState {
        store: crate::store::Shared::new(store),
        config: std::sync::Arc::new(cfg),
        http,
    };
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .map_err(|e| Failure::new(Exit::Config, format!("cannot listen on {}: {e}", a.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Failure::new(Exit::Config, e.to_string()))?;
        println!("listening on http://{addr} (POST /ats/{{tenant}}/greenhouse/webhook, /ats/{{tenant}}/lever/webhook; GET /ats/{{tenant}}/gate/{{application}})");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        crate::server::listen::serve(
            listener,
            crate::ats::inbound::router(state),
            crate::server::listen::Limits::default(),
            shutdown_signal(),
        )
        .await
        .map_err(|e| Failure::new(Exit::Config, format!("server: {e}")))
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn sync_interviews(a: SyncArgs) -> Result<ExitCode, Failure> {
    use crate::ats::greenhouse::{Greenhouse, id_string};
    use crate::store::governance::ScheduledSession;
    let cfg = load(&a.config)?;
    let tenant = tenant_of(&cfg, &a.config, &a.tenant)?;
    let g = tenant.greenhouse.clone().ok_or_else(|| {
        Failure::new(
            Exit::Config,
            format!("tenant '{}' has no Greenhouse connector", a.tenant),
        )
    })?;
    let since = match a.since {
        Some(s) => {
            time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                .map_err(|e| Failure::new(Exit::Config, format!("--since '{s}': {e}")))?;
            s
        }
        None => crate::report::now_rfc3339(),
    };
    let http = crate::ats::http_client(cfg.delivery.request_timeout)
        .map_err(|e| Failure::new(Exit::Config, e.to_string()))?;
    let client = Greenhouse::new(g, http);
    let interviews = runtime()?
        .block_on(client.list_interviews(&since))
        .map_err(|e| Failure::new(Exit::CheckFailed, format!("Greenhouse: {e}")))?;
    let mut store = open_store(&cfg)?;
    let mut new = 0;
    for i in &interviews {
        let s = ScheduledSession {
            tenant: tenant.id.clone(),
            interview_id: id_string(&i.id),
            application_id: id_string(&i.application_id),
            candidate_id: None,
            starts_at: i
                .start
                .as_ref()
                .and_then(|v| v.get("date_time").or(Some(v)))
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            video_url: i.video_conferencing_url.clone(),
            source: "greenhouse_schedule".into(),
        };
        new += store
            .register_session(&s, now_ms())
            .map_err(|e| Failure::new(Exit::Config, e))? as usize;
    }
    println!(
        "{} interview(s) scheduled since {since}: {new} new session(s) registered for {}",
        interviews.len(),
        tenant.id
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn sessions(a: SessionsArgs) -> Result<ExitCode, Failure> {
    let cfg = load(&a.config)?;
    tenant_of(&cfg, &a.config, &a.tenant)?;
    let store = open_store(&cfg)?;
    let list = store
        .sessions(&a.tenant)
        .map_err(|e| Failure::new(Exit::Config, e))?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&list).expect("sessions serialise")
        );
    } else {
        for s in list {
            println!(
                "{}  interview {}  application {}  {}  {}",
                s.starts_at.unwrap_or_default(),
                s.interview_id,
                s.application_id,
                s.video_url.unwrap_or_default(),
                s.source
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
