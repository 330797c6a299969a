//! The ATS writer: every signed report lands in the candidate record exactly once.
//!
//! ```text
//! vigil ats enqueue REPORT ─► store::Store::register (report + one delivery row per connector,
//!                                                      one transaction)
//! vigil ats deliver ─► worker: claim due rows (lease) ─► connector ─► Delivered / retry / dead
//!                       greenhouse.rs (Harvest v3) · lever.rs (v1) · webhook.rs (Standard Webhooks)
//! ```
//!
//! Exactly once without idempotency keys: each connector records completed steps in the
//! delivery's `progress`, and on any attempt after the first (when an earlier attempt may have
//! reached the ATS before the process died or the response was lost) it first looks for its
//! own report among the record's files before posting again. Outbound webhooks carry a stable
//! `webhook-id` / `Idempotency-Key` so the receiver can de-duplicate.

pub mod config;
pub mod gate;
pub mod greenhouse;
pub mod inbound;
pub mod lever;
pub mod metrics;
pub mod retry;
pub mod sandbox;
pub mod token;
pub mod webhook;
pub mod worker;

/// What the ATS said when asked to confirm a deletion (recorded in the audit log).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Confirmation {
    /// Method and path asked (no query, no credentials).
    pub request: String,
    pub status: u16,
    pub deleted: bool,
}

use crate::store::NewReport;
use retry::SendError;
use std::time::Duration;

pub const GREENHOUSE: &str = "greenhouse";
pub const LEVER: &str = "lever";
pub const WEBHOOK: &str = "webhook";

/// Steps a connector has completed for one delivery (persisted between attempts).
pub type Progress = serde_json::Map<String, serde_json::Value>;

/// Proof of delivery: the ATS's id for what was written (attachment, file or message id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub remote_ref: String,
}

/// One configured connector of one tenant.
pub enum Connector {
    Greenhouse(Box<greenhouse::Greenhouse>),
    Lever(lever::Lever),
    Webhook(webhook::Webhook),
}

impl Connector {
    pub fn name(&self) -> &'static str {
        match self {
            Connector::Greenhouse(_) => GREENHOUSE,
            Connector::Lever(_) => LEVER,
            Connector::Webhook(_) => WEBHOOK,
        }
    }

    /// Runs one delivery attempt. `prior_attempts > 0` means an earlier attempt may have
    /// reached the ATS. Completed steps are written to `progress` even when a later step fails.
    pub async fn deliver(
        &self,
        report: &NewReport,
        prior_attempts: u32,
        progress: &mut Progress,
    ) -> Result<Receipt, SendError> {
        match self {
            Connector::Greenhouse(c) => c.deliver(report, prior_attempts, progress).await,
            Connector::Lever(c) => c.deliver(report, prior_attempts, progress).await,
            Connector::Webhook(c) => c.deliver(report, prior_attempts, progress).await,
        }
    }
}

/// Builds every tenant's connectors (one HTTP client each, so one tenant's connection pool or
/// token never serves another).
pub fn connectors(cfg: &config::AtsConfig) -> Result<Vec<(String, Connector)>, reqwest::Error> {
    let mut out = Vec::new();
    for t in &cfg.tenants {
        if let Some(g) = &t.greenhouse {
            out.push((
                t.id.clone(),
                Connector::Greenhouse(Box::new(greenhouse::Greenhouse::new(
                    g.clone(),
                    http_client(cfg.delivery.request_timeout)?,
                ))),
            ));
        }
        if let Some(l) = &t.lever {
            out.push((
                t.id.clone(),
                Connector::Lever(lever::Lever::new(
                    l.clone(),
                    http_client(cfg.delivery.request_timeout)?,
                )),
            ));
        }
        if let Some(w) = &t.webhook {
            out.push((
                t.id.clone(),
                Connector::Webhook(webhook::Webhook::new(
                    w.clone(),
                    http_client(cfg.delivery.request_timeout)?,
                )),
            ));
        }
    }
    Ok(out)
}

/// An HTTP client with a total timeout per request, no redirects to other hosts' credentials.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// File name of the signed report in the ATS; contains the report id, which is how a later
/// attempt recognises its own upload.
pub fn report_filename(report_id: &str) -> String {
    format!("vigil-integrity-{report_id}.json")
}

/// File name of the HTML rendering.
pub fn html_filename(report_id: &str) -> String {
    format!("vigil-integrity-{report_id}.html")
}

/// The plain-text summary written as a note (Lever) and logged; no biometric data.
pub fn summary_text(r: &NewReport) -> String {
    format!(
        "Vigil interview-integrity report {}: integrity {:.0}/100, risk tier {}, status {}. \
         The signed report is attached as {} (verify offline with `vigil verify`).",
        r.report_id,
        r.integrity,
        r.risk_tier,
        r.verification_status,
        report_filename(&r.report_id)
    )
}

/// Runs one write step of a delivery at most once: skipped when `progress` already records it;
/// otherwise, when an earlier attempt may have reached the ATS (`look_first`), `find` looks for
/// the result of that attempt before `create` writes again. The ATS's id for the result is
/// recorded under `key`. This is the whole exactly-once rule for ATSs without idempotency keys.
pub(crate) async fn once<F, C>(
    progress: &mut Progress,
    key: &str,
    look_first: bool,
    find: impl FnOnce() -> F,
    create: impl FnOnce() -> C,
) -> Result<String, SendError>
where
    F: std::future::Future<Output = Result<Option<String>, SendError>>,
    C: std::future::Future<Output = Result<String, SendError>>,
{
    if let Some(id) = progress.get(key).and_then(|v| v.as_str()) {
        return Ok(id.to_owned());
    }
    let existing = if look_first { find().await? } else { None };
    let id = match existing {
        Some(id) => id,
        None => create().await?,
    };
    progress.insert(key.into(), id.clone().into());
    Ok(id)
}

/// Maps a non-success response to [`SendError::Http`] (reading at most 4 KiB of its body) and
/// passes a success through.
pub(crate) async fn check(
    call: &'static str,
    resp: reqwest::Response,
) -> Result<reqwest::Response, SendError> {
    let status = resp.status();
    if let Some(id) = ["x-request-id", "request-id", "x-amzn-requestid"]
        .iter()
        .find_map(|h| resp.headers().get(*h).and_then(|v| v.to_str().ok()))
    {
        tracing::Span::current().record("ats.request_id", id);
        tracing::debug!(
            call,
            ats.request_id = id,
            status = status.as_u16(),
            "ATS answered"
        );
    }
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry::parse_retry_after(v, std::time::SystemTime::now()));
    let mut body = Vec::new();
    let mut resp = resp;
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= 4096 {
            break;
        }
    }
    Err(SendError::Http {
        call,
        status: status.as_u16(),
        retry_after,
        body: String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned(),
    })
}

/// Reads a success response as JSON, classifying transport and shape errors.
pub(crate) async fn json_body<T: serde::de::DeserializeOwned>(
    call: &'static str,
    resp: reqwest::Response,
) -> Result<T, SendError> {
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| SendError::transport(call, &e))?;
    serde_json::from_slice(&bytes).map_err(|e| SendError::Protocol {
        call,
        detail: e.to_string(),
    })
}
