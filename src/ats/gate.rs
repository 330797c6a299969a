//! The stage gate: may this application advance to offer?
//!
//! `status_blocks_offer`: not unless a `verified` report is present or an audited exception
//! was granted. A reviewer's `approve` of a `needs_review` report opens the gate, `reject`
//! closes it, `appeal` keeps it in the review queue. The kill switch (degrade mode) stops every
//! automatic advance — a person decides — while reports keep being collected and delivered.
//! Candidates outside the tenant's canary scope are monitored only: the gate never blocks them.

use super::config::{GateToken, Tenant};
use crate::store::governance::Decision;
use crate::store::{Store, StoreError};
use serde::Serialize;

/// The gate's answer, with the reason a recruiter sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateAnswer {
    pub application_id: String,
    pub advance_allowed: bool,
    pub reason: String,
    pub report_id: Option<String>,
    pub verification_status: Option<String>,
    /// Set when a person has to act: `identity-review`.
    pub manual_queue: Option<&'static str>,
    pub in_canary: bool,
    pub kill_switch: bool,
}

/// The gate client whose bearer token is `header` (`Authorization` value), if any. Every
/// configured token is compared, in constant time, whatever matched.
pub fn client<'a>(tokens: &'a [GateToken], header: Option<&str>) -> Option<&'a str> {
    super::token::find(tokens, |t| &t.sha256, header).map(|t| t.name.as_str())
}

pub fn decide(
    store: &Store,
    tenant: &Tenant,
    application_id: &str,
) -> Result<GateAnswer, StoreError> {
    let report = store.latest_report(&tenant.id, application_id)?;
    let ks = store.kill_switch()?;
    let (decision, exception) = store.decisions_for(
        &tenant.id,
        application_id,
        report.as_ref().map(|r| r.report_id.as_str()),
    )?;
    let in_canary = match (&tenant.canary, &report) {
        (None, _) => true,
        (Some(c), Some(r)) => r
            .candidate_id
            .as_deref()
            .is_some_and(|cid| c.includes(cid, r.department.as_deref())),
        // No report yet: the candidate id is unknown here, so stay safe and gate.
        (Some(_), None) => true,
    };
    let mut a = GateAnswer {
        application_id: application_id.to_owned(),
        advance_allowed: false,
        reason: String::new(),
        report_id: report.as_ref().map(|r| r.report_id.clone()),
        verification_status: report.as_ref().map(|r| r.verification_status.clone()),
        manual_queue: None,
        in_canary,
        kill_switch: ks.on,
    };
    if ks.on {
        a.reason = format!(
            "Kill switch on (owner {}: {}): no automatic advance to offer; a person decides.",
            ks.owner, ks.reason
        );
        a.manual_queue = Some("identity-review");
        return Ok(a);
    }
    if exception {
        a.advance_allowed = true;
        a.reason = "An audited exception was granted for this application.".into();
        return Ok(a);
    }
    if !in_canary {
        a.advance_allowed = true;
        a.reason =
            "Outside the canary scope: Vigil monitors this candidate but does not gate the stage."
                .into();
        return Ok(a);
    }
    let Some(r) = report else {
        a.reason = "No Vigil report for this application: the offer stage stays closed until one is verified or an exception is granted.".into();
        return Ok(a);
    };
    match (r.verification_status.as_str(), decision) {
        (_, Some(Decision::Approve)) => {
            a.advance_allowed = true;
            a.reason = "A reviewer approved the report.".into();
        }
        (_, Some(Decision::Reject)) => {
            a.reason = "A reviewer rejected the report.".into();
        }
        ("verified", _) => {
            a.advance_allowed = true;
            a.reason = "The report is verified.".into();
        }
        ("rejected", _) => {
            a.reason = "The report is rejected by policy.".into();
        }
        (_, Some(Decision::Appeal)) => {
            a.reason = "The candidate appealed; the report is back in the review queue.".into();
            a.manual_queue = Some("identity-review");
        }
        _ => {
            a.reason = format!(
                "The report needs review (risk tier {}): waiting in the manual review queue.",
                r.risk_tier
            );
            a.manual_queue = Some("identity-review");
        }
    }
    Ok(a)
}
