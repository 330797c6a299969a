//! `vigil ats …`: enqueue, deliver, status, retry, sandbox, audit, gate, review, exception,
//! kill-switch, purge, listen, sync-interviews, sessions.
//!
//! Why one file of this length: the first third is the subcommands' clap argument structs; each
//! subcommand's handler below is one short function sharing the config, store and runtime set-up
//! (`load`, `open_store`, `runtime`), which splitting would have to export across files.

use super::{Exit, Failure, checked};
use crate::ats::config::AtsConfig;
use crate::ats::sandbox::{self, Duplicates, FaultConfig, FaultKind, Sandbox, SandboxConfig};
use crate::ats::worker::{RunMode, Worker};
use crate::report::dsse::{self, Envelope};
use crate::report::{Report, keys};
use crate::store::audit::Verdict;
use crate::store::{Counts, DeliveryRow, DeliveryState, NewReport, Registered, Store, now_ms};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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

/// `ats review --decision`: what a reviewer may record (exceptions have their own command).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DecisionArg {
    Approve,
    Reject,
    Appeal,
}

impl From<DecisionArg> for crate::store::governance::Decision {
    fn from(d: DecisionArg) -> Self {
        use crate::store::governance::Decision;
        match d {
            DecisionArg::Approve => Decision::Approve,
            DecisionArg::Reject => Decision::Reject,
            DecisionArg::Appeal => Decision::Appeal,
        }
    }
}

/// `ats kill-switch`: switch it on or off, or show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SwitchArg {
    On,
    Off,
    Status,
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

#[derive(Debug, clap::Args)]
pub struct GateArgs {
    /// Application (Greenhouse) or opportunity (Lever) id.
    pub application: String,
    #[command(flatten)]
    pub config: ConfigArg,
    #[arg(long)]
    pub tenant: String,
    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Report to decide on (omit to list the queue).
    pub report: Option<String>,
    #[arg(long, requires = "report", value_enum)]
    pub decision: Option<DecisionArg>,
    /// Who decides (recorded in the audit log).
    #[arg(long, requires = "decision")]
    pub by: Option<String>,
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Debug, clap::Args)]
pub struct ExceptionArgs {
    pub application: String,
    #[command(flatten)]
    pub config: ConfigArg,
    #[arg(long)]
    pub tenant: String,
    /// Who grants it (recorded in the audit log).
    #[arg(long)]
    pub by: String,
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, clap::Args)]
pub struct KillSwitchArgs {
    #[arg(value_enum)]
    pub state: SwitchArg,
    #[command(flatten)]
    pub config: ConfigArg,
    /// The owner switching it (required for on/off).
    #[arg(long)]
    pub owner: Option<String>,
    #[arg(long, default_value = "")]
    pub reason: String,
}

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

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Address to listen on (port 0 picks a free port; the URL is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: String,
    /// Probability of a fault per API request.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Fault kinds to draw from (comma-separated) [default: all].
    #[arg(long, value_delimiter = ',', value_parser = parse_fault)]
    pub faults: Vec<FaultKind>,
    /// Seed of the fault draws (same seed, same sequence).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How long a `timeout` fault hangs, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub hang_ms: u64,
    /// Delay of a `slow` fault, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub slow_ms: u64,
    /// What the sandbox does with a duplicate file.
    #[arg(long, value_enum, default_value_t = Duplicates::Accept)]
    pub duplicates: Duplicates,
    /// Lifetime of Greenhouse access tokens, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub token_ttl_s: u64,
    /// File extensions the sandbox organisation blocks (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub block_ext: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain: exit 0 and print the head hash when intact, 1 naming the
    /// first edited or missing entry otherwise.
    Verify(ConfigArg),
    /// Print entries (oldest first).
    Log {
        #[command(flatten)]
        config: ConfigArg,
        /// Only entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

pub fn audit(a: AuditArgs) -> Result<ExitCode, Failure> {
    match a.command {
        AuditCommand::Verify(c) => {
            let cfg = load(&c)?;
            let store = open_store(&cfg)?;
            match store
                .audit_verify()
                .map_err(|e| Failure::new(Exit::Config, e))?
            {
                Verdict::Intact { entries, head } => {
                    println!("audit log intact: {entries} entries, head {head}");
                    Ok(ExitCode::SUCCESS)
                }
                Verdict::Broken { seq, reason } => {
                    println!("audit log BROKEN at entry {seq}: {reason}");
                    Ok(Exit::CheckFailed.into())
                }
            }
        }
        AuditCommand::Log {
            config,
            after,
            limit,
            json,
        } => {
            let cfg = load(&config)?;
            let store = open_store(&cfg)?;
            for e in store
                .audit_entries(after, limit)
                .map_err(|e| Failure::new(Exit::Config, e))?
            {
                if json {
                    println!("{}", serde_json::to_string(&e).expect("entry serialises"));
                } else {
                    println!(
                        "{:>6}  {}  {:<24}  {:<20}  {}  {}",
                        e.seq, e.at_ms, e.action, e.actor, e.subject, e.details
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_fault(s: &str) -> Result<FaultKind, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
        let names: Vec<String> = FaultKind::ALL
            .iter()
            .map(|k| {
                serde_json::to_value(k)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        format!("unknown fault '{s}' (one of {})", names.join(", "))
    })
}

pub fn run(a: AtsArgs) -> Result<ExitCode, Failure> {
    match a.command {
        AtsCommand::Enqueue(a) => enqueue(a),
        AtsCommand::Deliver(a) => deliver(a),
        AtsCommand::Status(a) => status(a),
        AtsCommand::Retry(a) => retry(a),
        AtsCommand::Sandbox(a) => run_sandbox(a),
        AtsCommand::Gate(a) => gate(a),
        AtsCommand::Review(a) => review(a),
        AtsCommand::Exception(a) => exception(a),
        AtsCommand::KillSwitch(a) => kill_switch(a),
        AtsCommand::Purge(c) => purge(c),
        AtsCommand::SyncInterviews(a) => sync_interviews(a),
        AtsCommand::Sessions(a) => sessions(a),
        AtsCommand::Listen(a) => listen(a),
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

fn enqueue(a: EnqueueArgs) -> Result<ExitCode, Failure> {
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

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(Exit::Config, format!("cannot start the async runtime: {e}")))
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

fn deliver(a: DeliverArgs) -> Result<ExitCode, Failure> {
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

fn status(a: StatusArgs) -> Result<ExitCode, Failure> {
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
fn page_footer(
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

fn retry(a: RetryArgs) -> Result<ExitCode, Failure> {
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

fn run_sandbox(a: SandboxArgs) -> Result<ExitCode, Failure> {
    if !(0.0..=1.0).contains(&a.fault_rate) {
        return Err(Failure::new(
            Exit::Config,
            "--fault-rate must be within 0..1",
        ));
    }
    let cfg = SandboxConfig {
        faults: FaultConfig {
            rate: a.fault_rate,
            kinds: if a.faults.is_empty() {
                FaultKind::ALL.to_vec()
            } else {
                a.faults
            },
            seed: a.seed,
            hang_ms: a.hang_ms,
            slow_ms: a.slow_ms,
        },
        duplicates: a.duplicates,
        token_ttl: Duration::from_secs(a.token_ttl_s),
        blocked_extensions: a.block_ext,
    };
    let rt = runtime()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .map_err(|e| {
                Failure::new(Exit::Config, format!("cannot listen on {}: {e}", a.listen))
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Failure::new(Exit::Config, e.to_string()))?;
        println!("sandbox ATS listening on http://{addr}");
        println!(
            "  greenhouse client {} / secret {} · lever key {} · webhook secret {}",
            sandbox::GREENHOUSE_CLIENT_ID,
            sandbox::GREENHOUSE_CLIENT_SECRET,
            sandbox::LEVER_API_KEY,
            sandbox::WEBHOOK_SECRET
        );
        use std::io::Write;
        let _ = std::io::stdout().flush();
        sandbox::serve(Sandbox::new(cfg), listener, shutdown_signal())
            .await
            .map_err(|e| Failure::new(Exit::Config, format!("sandbox server: {e}")))
    })?;
    Ok(ExitCode::SUCCESS)
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

fn gate(a: GateArgs) -> Result<ExitCode, Failure> {
    let cfg = load(&a.config)?;
    let tenant = tenant_of(&cfg, &a.config, &a.tenant)?;
    let store = open_store(&cfg)?;
    let ans = crate::ats::gate::decide(&store, tenant, &a.application)
        .map_err(|e| Failure::new(Exit::Config, e))?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&ans).expect("answer serialises")
        );
    } else {
        println!(
            "{} {}: {}",
            if ans.advance_allowed {
                "ALLOWED"
            } else {
                "BLOCKED"
            },
            ans.application_id,
            ans.reason
        );
    }
    Ok(checked(ans.advance_allowed))
}

fn review(a: ReviewArgs) -> Result<ExitCode, Failure> {
    use crate::store::governance::Decision;
    let cfg = load(&a.config)?;
    let mut store = open_store(&cfg)?;
    match (a.report, a.decision, a.by) {
        (Some(report), Some(d), Some(by)) => {
            let decision = Decision::from(d);
            store
                .decide(&report, decision, &by, &a.reason, now_ms())
                .map_err(|e| Failure::new(Exit::Config, e))?;
            println!(
                "{report}: {} by {by} (recorded in the audit log)",
                decision.as_str()
            );
        }
        (None, None, None) => {
            for p in store
                .review_queue()
                .map_err(|e| Failure::new(Exit::Config, e))?
            {
                println!(
                    "{}  tenant {}  application {}  tier {}  integrity {:.0}{}",
                    p.report_id,
                    p.tenant,
                    p.application_id,
                    p.risk_tier,
                    p.integrity,
                    p.last_decision
                        .map(|d| format!("  ({d})"))
                        .unwrap_or_default()
                );
            }
        }
        _ => {
            return Err(Failure::new(
                Exit::Config,
                "a decision needs REPORT, --decision and --by",
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn exception(a: ExceptionArgs) -> Result<ExitCode, Failure> {
    let cfg = load(&a.config)?;
    tenant_of(&cfg, &a.config, &a.tenant)?;
    if a.reason.trim().is_empty() || a.by.trim().is_empty() {
        return Err(Failure::new(
            Exit::Config,
            "an exception needs --by and a --reason",
        ));
    }
    let mut store = open_store(&cfg)?;
    store
        .grant_exception(&a.tenant, &a.application, &a.by, &a.reason, now_ms())
        .map_err(|e| Failure::new(Exit::Config, e))?;
    println!(
        "exception granted for application {} by {} (recorded in the audit log)",
        a.application, a.by
    );
    Ok(ExitCode::SUCCESS)
}

fn kill_switch(a: KillSwitchArgs) -> Result<ExitCode, Failure> {
    let cfg = load(&a.config)?;
    let mut store = open_store(&cfg)?;
    if a.state != SwitchArg::Status {
        let owner = a
            .owner
            .filter(|o| !o.trim().is_empty())
            .ok_or_else(|| Failure::new(Exit::Config, "switching the kill switch needs --owner"))?;
        let on = a.state == SwitchArg::On;
        store
            .set_kill_switch(on, &owner, &a.reason, now_ms())
            .map_err(|e| Failure::new(Exit::Config, e))?;
        if on {
            tracing::error!(target: "vigil::alert", owner = %owner, reason = %a.reason,
                "kill switch ON: no automatic advance to offer; evidence is still collected");
        }
    }
    let ks = store
        .kill_switch()
        .map_err(|e| Failure::new(Exit::Config, e))?;
    println!(
        "kill switch {}{}",
        if ks.on { "ON" } else { "off" },
        if ks.owner.is_empty() {
            String::new()
        } else {
            format!(" (last set by {}: {})", ks.owner, ks.reason)
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn purge(c: ConfigArg) -> Result<ExitCode, Failure> {
    let cfg = load(&c)?;
    let mut store = open_store(&cfg)?;
    let now = now_ms();
    let cutoff = now - cfg.retention.as_millis() as i64;
    let d = store
        .purge_before(cutoff, "vigil ats purge", now)
        .map_err(|e| Failure::new(Exit::Config, e))?;
    println!(
        "purged {} report(s) and {} delivery row(s) older than {} days",
        d.reports,
        d.deliveries,
        cfg.retention.as_secs() / 86_400
    );
    Ok(ExitCode::SUCCESS)
}

fn listen(a: ListenArgs) -> Result<ExitCode, Failure> {
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

fn sync_interviews(a: SyncArgs) -> Result<ExitCode, Failure> {
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

fn sessions(a: SessionsArgs) -> Result<ExitCode, Failure> {
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
