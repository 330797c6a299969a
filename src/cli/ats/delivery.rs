//! `vigil ats enqueue | deliver | status | retry`: queue a signed report for its tenant's
//! connectors, run the delivery worker, page through deliveries, requeue dead letters.

use super::{ConfigArg, load, open_store, runtime, shutdown_signal};
use crate::ats::worker::{RunMode, Worker};
use crate::cli::{Exit, Failure};
use crate::report::dsse::{self, Envelope};
use crate::report::{Report, keys};
use crate::store::{Counts, DeliveryRow, DeliveryState, NewReport, Registered, now_ms};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct EnqueueArgs {
    /// Signed report (DSSE envelope written by `vigil score`).
    pub report: PathBuf,
    #[command(flatten)]
    pub config: ConfigArg,
    /// Tenant whose connectors receive the report.
    #[arg(long)]
    pub tenant: String,
    /// ATS application (Greenhouse) or opportunity (Lever) id [default: the report's
    /// session.application_id].
    #[arg(long)]
    pub application: Option<String>,
    /// Candidate id in the ATS [default: the report's session.candidate_external_id].
    #[arg(long)]
    pub candidate: Option<String>,
    /// HTML rendering to attach next to the signed report.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Public key that must have signed the report [default: the default signing key's].
    #[arg(long, value_name = "FILE")]
    pub pubkey: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct DeliverArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Exit once nothing is pending (otherwise run until SIGINT/SIGTERM).
    #[arg(long)]
    pub until_idle: bool,
}

/// `ats status --state`: the delivery states an operator can filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateArg {
    Pending,
    Delivered,
    Dead,
}

impl From<StateArg> for DeliveryState {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Pending => DeliveryState::Pending,
            StateArg::Delivered => DeliveryState::Delivered,
            StateArg::Dead => DeliveryState::Dead,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only deliveries in this state.
    #[arg(long, value_enum)]
    pub state: Option<StateArg>,
    /// Deliveries per page, newest first.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
    /// The next (older) page: only deliveries whose id is below this one (the last id shown;
    /// the line after the page names it).
    #[arg(long, value_name = "ID")]
    pub before: Option<i64>,
    /// Print JSON instead of a table (the page on stdout, the totals line on stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Delivery ids (from `vigil ats status`).
    pub ids: Vec<i64>,
    /// Requeue every dead-lettered delivery.
    #[arg(long, conflicts_with = "ids")]
    pub all_dead: bool,
}

pub(super) fn enqueue(a: EnqueueArgs) -> Result<ExitCode, Failure> {
    let cfg = load(&a.config)?;
    let tenant = cfg.tenant(&a.tenant).ok_or_else(|| {
        Failure::new(
            Exit::Config,
            format!(
                "{}: no tenant '{}' is configured",
                a.config.config.display(),
                a.tenant
            ),
        )
    })?;
    let bytes = std::fs::read(&a.report)
        .map_err(|e| Failure::new(Exit::Config, format!("{}: {e}", a.report.display())))?;
    let pub_path = match &a.pubkey {
        Some(p) => p.clone(),
        None => keys::public_path_for(
            &keys::default_key_path().map_err(|e| Failure::new(Exit::Config, e))?,
        ),
    };
    let key = keys::read_verifying_key(&pub_path).map_err(|e| Failure::new(Exit::Config, e))?;
    let invalid =
        |why: String| Failure::new(Exit::CheckFailed, format!("{}: {why}", a.report.display()));
    let env: Envelope =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("not a DSSE envelope: {e}")))?;
    let payload = dsse::verify(&env, &key).map_err(|e| invalid(e.to_string()))?;
    let report = Report::from_payload(&payload).map_err(invalid)?;
    let application = a
        .application
        .or(report.session.application_id.clone())
        .ok_or_else(|| {
            Failure::new(
                Exit::Config,
                format!(
                    "{}: the report has no session.application_id; pass --application",
                    a.report.display()
                ),
            )
        })?;
    let html = match &a.html {
        Some(p) => Some(
            std::fs::read(p)
                .map_err(|e| Failure::new(Exit::Config, format!("{}: {e}", p.display())))?,
        ),
        None => None,
    };
    let new = NewReport {
        candidate_id: a.candidate.or(report.session.candidate_external_id.clone()),
        ..NewReport::of(&report, &tenant.id, application, bytes, html)
    };
    let mut store = open_store(&cfg)?;
    let connectors = tenant.connectors();
    match store
        .register(&new, &connectors, "vigil ats enqueue", now_ms())
        .map_err(|e| Failure::new(Exit::Config, e))?
    {
        Registered::Queued { deliveries } => println!(
            "queued report {} for {} ({deliveries} deliveries: {})",
            new.report_id,
            tenant.id,
            connectors.join(", ")
        ),
        Registered::AlreadyKnown => println!(
            "report {} is already queued or delivered; nothing to do",
            new.report_id
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn deliver(a: DeliverArgs) -> Result<ExitCode, Failure> {
    let cfg = load(&a.config)?;
    let store = open_store(&cfg)?;
    let connectors = crate::ats::connectors(&cfg)
        .map_err(|e| Failure::new(Exit::Config, format!("cannot build the HTTP client: {e}")))?;
    let d = cfg.delivery;
    let worker = Worker::new(store, connectors, d.retry, d.concurrency, d.lease);
    let mode = if a.until_idle {
        RunMode::UntilIdle
    } else {
        RunMode::Forever
    };
    let stats = runtime()?
        .block_on(worker.run(mode, shutdown_signal()))
        .map_err(|e| Failure::new(Exit::Config, e))?;
    let counts = open_store(&cfg)?
        .counts()
        .map_err(|e| Failure::new(Exit::Config, e))?;
    println!(
        "attempts {} · delivered {} · retried {} · dead-lettered {} | outbox: {} pending, {} delivered, {} dead",
        stats.attempts,
        stats.delivered,
        stats.retried,
        stats.dead_lettered,
        counts.pending,
        counts.delivered,
        counts.dead
    );
    if counts.dead > 0 {
        eprintln!(
            "vigil: {} dead-lettered deliveries: see `vigil ats status --state dead`, requeue with `vigil ats retry`",
            counts.dead
        );
        return Ok(Exit::CheckFailed.into());
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn status(a: StatusArgs) -> Result<ExitCode, Failure> {
    let cfg = load(&a.config)?;
    let store = open_store(&cfg)?;
    let state = a.state.map(DeliveryState::from);
    // One row more than the page tells whether an older page exists.
    let mut rows = store
        .deliveries(state, a.before, a.limit as usize + 1)
        .map_err(|e| Failure::new(Exit::Config, e))?;
    let more = rows.len() > a.limit as usize;
    rows.truncate(a.limit as usize);
    let counts = store.counts().map_err(|e| Failure::new(Exit::Config, e))?;
    let footer = page_footer(&counts, state, &rows, more);
    if a.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id, "report_id": r.report_id, "tenant": r.tenant,
                    "application_id": r.application_id, "connector": r.connector,
                    "state": r.state.as_str(), "attempts": r.attempts,
                    "last_error": r.last_error, "remote_ref": r.remote_ref,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
    } else {
        println!(
            "{:>6}  {:<10}  {:<10}  {:<32}  {:>8}  detail",
            "id", "state", "connector", "report", "attempts"
        );
        for r in rows {
            let detail = match r.state {
                DeliveryState::Delivered => r.remote_ref.unwrap_or_default(),
                _ => r.last_error.unwrap_or_default(),
            };
            println!(
                "{:>6}  {:<10}  {:<10}  {:<32}  {:>8}  {}",
                r.id,
                r.state.as_str(),
                r.connector,
                r.report_id,
                r.attempts,
                detail
            );
        }
    }
    // With --json the page alone is on stdout, so scripts parse it unchanged.
    if a.json {
        eprintln!("{footer}");
    } else {
        println!("{footer}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The totals under a page of `vigil ats status`, and how to ask for the next one.
pub(super) fn page_footer(
    counts: &Counts,
    state: Option<DeliveryState>,
    rows: &[DeliveryRow],
    more: bool,
) -> String {
    let total = match state {
        None => counts.pending + counts.delivered + counts.dead,
        Some(DeliveryState::Pending) => counts.pending,
        Some(DeliveryState::Delivered) => counts.delivered,
        Some(DeliveryState::Dead) => counts.dead,
    };
    let mut line = format!(
        "{} shown; {total} in all ({} pending, {} delivered, {} dead)",
        rows.len(),
        counts.pending,
        counts.delivered,
        counts.dead
    );
    if let (true, Some(last)) = (more, rows.last()) {
        line.push_str(&format!("; older: --before {}", last.id));
    }
    line
}

pub(super) fn retry(a: RetryArgs) -> Result<ExitCode, Failure> {
    let cfg = load(&a.config)?;
    let mut store = open_store(&cfg)?;
    let ids = if a.all_dead {
        store
            .dead_ids()
            .map_err(|e| Failure::new(Exit::Config, e))?
    } else if a.ids.is_empty() {
        return Err(Failure::new(
            Exit::Config,
            "give delivery ids or --all-dead",
        ));
    } else {
        a.ids
    };
    for id in ids {
        match store.requeue(id, "vigil ats retry", now_ms()) {
            Ok(DeliveryState::Delivered) => println!("delivery {id} is already delivered"),
            Ok(_) => println!("delivery {id} requeued"),
            Err(e) => return Err(Failure::new(Exit::Config, e)),
        }
    }
    Ok(ExitCode::SUCCESS)
}
