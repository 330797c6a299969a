//! `vigil ats gate | review | exception | kill-switch | purge` and `vigil audit`: the decisions
//! around a report (may the application advance, a reviewer's verdict, an audited exception,
//! degrade mode, retention) and the hash-chained audit log that records them.

use super::{ConfigArg, load, open_store, tenant_of};
use crate::cli::{Exit, Failure, checked};
use crate::store::audit::Verdict;
use crate::store::now_ms;
use std::process::ExitCode;

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

pub(super) fn gate(a: GateArgs) -> Result<ExitCode, Failure> {
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

pub(super) fn review(a: ReviewArgs) -> Result<ExitCode, Failure> {
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

pub(super) fn exception(a: ExceptionArgs) -> Result<ExitCode, Failure> {
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

pub(super) fn kill_switch(a: KillSwitchArgs) -> Result<ExitCode, Failure> {
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

pub(super) fn purge(c: ConfigArg) -> Result<ExitCode, Failure> {
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
