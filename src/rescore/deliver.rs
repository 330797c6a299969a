//! `--deliver`: queue the changed verdicts — and only those — to the tenant's ATS connectors
//! through the outbox, exactly as `vigil ats enqueue` would. The outbox de-duplicates on the
//! report id, which the policy is part of, so re-running a rescore never queues twice, and the
//! audit entry records that it came from a rescore, the policy and the report it supersedes.
//!
//! What the ATS record shows afterwards (the connectors in `ats/`): Greenhouse gets the new
//! signed report and its HTML as two more attachments (`vigil-integrity-<new id>.json|.html`;
//! the old ones stay as history) and its custom fields are overwritten with the new integrity,
//! tier and status; Lever gets the new files and a new note with the new verdict next to the
//! old note.

use super::summary::Changed;
use crate::ats::config::Tenant;
use crate::report::dsse::{self, Envelope};
use crate::report::{PolicyRef, Report};
use crate::store::{NewReport, Registered, Store, now_ms};
use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use std::path::Path;

/// What `--deliver` did.
#[derive(Debug, Default, Serialize)]
pub struct Delivery {
    pub tenant: String,
    pub queued: Vec<Queued>,
    /// Report ids the outbox already had (an earlier run queued them).
    pub already_queued: Vec<String>,
    pub failed: Vec<super::summary::Failed>,
}

#[derive(Debug, Serialize)]
pub struct Queued {
    pub media: String,
    pub report_id: String,
    pub supersedes: String,
    pub deliveries: usize,
}

/// Queues every changed verdict's new report for `tenant`.
pub fn queue(
    store: &mut Store,
    tenant: &Tenant,
    out: &Path,
    own_key: &VerifyingKey,
    policy: &PolicyRef,
    changed: &[Changed],
) -> Delivery {
    let mut d = Delivery {
        tenant: tenant.id.clone(),
        ..Delivery::default()
    };
    let connectors = tenant.connectors();
    for c in changed {
        let context = serde_json::json!({
            "rescore": { "policy": policy, "supersedes": c.change.report_id.old },
        });
        let result = new_report(out, c, &tenant.id, own_key).and_then(|r| {
            store
                .register_with(&r, &connectors, "vigil rescore", Some(context), now_ms())
                .map_err(|e| e.to_string())
                .map(|reg| (r.report_id, reg))
        });
        match result {
            Ok((report_id, Registered::Queued { deliveries })) => d.queued.push(Queued {
                media: c.media.clone(),
                report_id,
                supersedes: c.change.report_id.old.clone(),
                deliveries,
            }),
            Ok((report_id, Registered::AlreadyKnown)) => d.already_queued.push(report_id),
            Err(error) => d.failed.push(super::summary::Failed {
                media: c.media.clone(),
                error,
            }),
        }
    }
    d
}

fn new_report(
    out: &Path,
    c: &Changed,
    tenant: &str,
    own_key: &VerifyingKey,
) -> Result<NewReport, String> {
    let path = out.join(&c.report);
    let envelope = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let env: Envelope = serde_json::from_slice(&envelope)
        .map_err(|e| format!("{}: not a DSSE envelope: {e}", path.display()))?;
    let payload = dsse::verify(&env, own_key).map_err(|e| format!("{}: {e}", path.display()))?;
    let report = Report::from_payload(&payload)?;
    let application_id = report.session.application_id.clone().ok_or_else(|| {
        "the session has no application_id (give it in X.session.json or the manifest)".to_string()
    })?;
    let html = std::fs::read(out.join(&c.html)).ok();
    Ok(NewReport::of(
        &report,
        tenant,
        application_id,
        envelope,
        html,
    ))
}
