//! Inbound ATS webhooks and the stage-gate endpoint (`vigil ats listen`; the router is meant to
//! be merged into `vigil serve`).
//!
//! - Greenhouse: `Signature: sha256 <hex>` = HMAC-SHA256(secret, raw body), checked over the
//!   exact bytes received. An event is new only if both its `Greenhouse-Event-ID` and the SHA-256
//!   of its signed body are: the id header is not signed, so the same signed body re-sent under
//!   another id is a replay, not a second event.
//! - Lever: `signature` = hex HMAC-SHA256(signatureToken, token + triggeredAt) inside the body.
//!   Lever does not sign the body itself, so what is signed decides: `triggeredAt` must be within
//!   `webhook_max_age_s` (default 1 h) of now (5 min of clock skew ahead), a signed
//!   (token, triggeredAt, signature) is used once whatever body comes with it, and a
//!   `candidateDeleted` is acted on only once Lever's API confirms it (the opportunity answers
//!   404, or the contact has no opportunity left); the answer is kept in the audit entry. An
//!   unconfirmed deletion gets 409 and deletes nothing; Lever unreachable gets 503 (retry).
//!
//! Signatures are compared in constant time (`Mac::verify_slice`). A bad or missing signature
//! gets 401 and a warning log, and nothing is processed. Deletions (`delete_candidate`,
//! `candidate_anonymized`, `candidateDeleted`) remove the candidate's stored reports and outbox
//! rows in one transaction with their audit entry; a redelivered event does nothing.

use super::config::{AtsConfig, Secret};
use super::gate;
use crate::store::governance::DeletionRequest;
use crate::store::{Shared, Store, StoreError, now_ms};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// A webhook request (head, body and handling, including a confirmation call to the ATS) must
/// complete within this; a trickled body is cut off with 408.
pub const WEBHOOK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Largest webhook body accepted (Greenhouse payloads are a few KiB).
pub const MAX_BODY: usize = 1024 * 1024;

/// Lever's `triggeredAt` may be this far ahead of our clock.
const LEVER_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

#[derive(Clone)]
pub struct InboundState {
    pub store: Shared,
    pub config: Arc<AtsConfig>,
    /// For confirming deletions with the ATS's API.
    pub http: reqwest::Client,
}

/// Checks Greenhouse's `Signature: sha256 <hex>` over the raw body.
pub fn verify_greenhouse(
    secret: &Secret,
    header: Option<&str>,
    body: &[u8],
) -> Result<(), &'static str> {
    let h = header.ok_or("missing Signature header")?;
    let hex_sig = h
        .trim()
        .strip_prefix("sha256 ")
        .ok_or("Signature is not 'sha256 <hex>'")?;
    let sig = hex::decode(hex_sig.trim()).map_err(|_| "Signature is not hex")?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    mac.verify_slice(&sig).map_err(|_| "signature mismatch")
}

/// What a Lever webhook's signature covers.
#[derive(Debug, Clone, PartialEq)]
pub struct LeverSigned {
    /// `triggeredAt`, milliseconds since the epoch.
    pub triggered_ms: i64,
    /// SHA-256 of token, triggeredAt and signature: one id per signed pair, whatever body
    /// came with it.
    pub signed_id: String,
}

/// Checks a Lever webhook: hex HMAC-SHA256(signatureToken, token + triggeredAt).
pub fn verify_lever(token_secret: &Secret, body: &Value) -> Result<LeverSigned, &'static str> {
    let token = body["token"].as_str().ok_or("missing token")?;
    let triggered = match &body["triggeredAt"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err("missing triggeredAt"),
    };
    let sig = body["signature"].as_str().ok_or("missing signature")?;
    let sig = hex::decode(sig).map_err(|_| "signature is not hex")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(token_secret.expose().as_bytes())
        .expect("HMAC takes any key");
    mac.update(token.as_bytes());
    mac.update(triggered.as_bytes());
    mac.verify_slice(&sig).map_err(|_| "signature mismatch")?;
    let triggered_ms = triggered
        .parse::<i64>()
        .map_err(|_| "triggeredAt is not a millisecond timestamp")?;
    let mut id = Sha256::new();
    for part in [token.as_bytes(), b"\0", triggered.as_bytes(), b"\0", &sig] {
        id.update(part);
    }
    Ok(LeverSigned {
        triggered_ms,
        signed_id: format!("signed:{}", hex::encode(id.finalize())),
    })
}

/// Whether a Lever `triggeredAt` is recent enough to act on.
pub fn lever_fresh(triggered_ms: i64, now_ms: i64, max_age: std::time::Duration) -> bool {
    let max_age_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
    triggered_ms <= now_ms.saturating_add(LEVER_CLOCK_SKEW_MS)
        && triggered_ms >= now_ms.saturating_sub(max_age_ms)
}

/// `vigil ats listen`: the ATS routes plus `/healthz` and `/metrics`.
pub fn router(state: InboundState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .merge(ats_routes(state.clone()))
        .with_state(state)
}

/// The ATS-facing routes alone (webhooks in, stage gate out), also mounted by `vigil serve`.
pub fn ats_routes<S>(state: InboundState) -> Router<S> {
    Router::new()
        .route("/ats/{tenant}/greenhouse/webhook", post(greenhouse))
        .route("/ats/{tenant}/lever/webhook", post(lever))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            WEBHOOK_DEADLINE,
        ))
        .route("/ats/{tenant}/gate/{application}", get(gate_endpoint))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn problem(status: StatusCode, detail: &str) -> Response {
    (
        status,
        [("content-type", "application/problem+json")],
        Json(json!({"title": status.canonical_reason().unwrap_or(""), "status": status.as_u16(), "detail": detail})),
    )
        .into_response()
}

async fn with_store<T: Send + 'static>(
    st: &InboundState,
    f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    st.store
        .call(f)
        .await
        .map_err(|_| problem(StatusCode::INTERNAL_SERVER_ERROR, "store task failed"))?
        .map_err(|e| {
            tracing::error!(error = %e, "store error handling an inbound webhook");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage unavailable; retry later",
            )
        })
}

/// 401 for a webhook whose signature does not check; the refusal is logged and recorded.
async fn rejected(
    st: &InboundState,
    tenant: String,
    vendor: &'static str,
    why: &'static str,
) -> Response {
    tracing::warn!(tenant = %tenant, vendor, reason = why, "inbound webhook rejected");
    match with_store(st, move |s| {
        s.record_rejection(&tenant, vendor, why, now_ms())
    })
    .await
    {
        Ok(()) => problem(StatusCode::UNAUTHORIZED, "invalid or missing signature"),
        Err(r) => r,
    }
}

fn body_id(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

fn id_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The problem+json answer for a body that is too large (or unreadable).
fn body_problem(e: BytesRejection) -> Response {
    problem(e.status(), &e.body_text())
}

async fn greenhouse(
    State(st): State<InboundState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_problem(e),
    };
    let Some(secret) = st
        .config
        .tenant(&tenant)
        .and_then(|t| t.greenhouse.as_ref())
        .and_then(|g| g.webhook_secret.clone())
    else {
        // The same answer as a bad signature: which tenants exist is not for strangers to learn.
        return rejected(
            &st,
            tenant,
            "greenhouse",
            "no Greenhouse webhook configured",
        )
        .await;
    };
    let sig = headers.get("signature").and_then(|v| v.to_str().ok());
    if let Err(why) = verify_greenhouse(&secret, sig, &body) {
        return rejected(&st, tenant, "greenhouse", why).await;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return problem(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    // The id header is not signed: the signed body's hash is an id of the event too.
    let event_ids: Vec<String> = headers
        .get("greenhouse-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .into_iter()
        .chain([format!("body:{}", body_id(&body))])
        .collect();
    let action = v["action"].as_str().unwrap_or("").to_owned();
    let (candidate, apps): (Option<String>, Vec<String>) = match action.as_str() {
        "delete_candidate" => (
            id_str(&v["payload"]["person"]["id"]),
            v["payload"]["person"]["deleted_application_ids"]
                .as_array()
                .map(|a| a.iter().filter_map(id_str).collect())
                .unwrap_or_default(),
        ),
        "candidate_anonymized" => (id_str(&v["payload"]["candidate_id"]), Vec::new()),
        _ => {
            let (t, e, a) = (tenant.clone(), event_ids.clone(), action.clone());
            return match with_store(&st, move |s| {
                s.note_inbound(&t, "greenhouse", &e, &a, now_ms())
            })
            .await
            {
                Ok(_) => Json(json!({"status": "ignored", "action": action})).into_response(),
                Err(r) => r,
            };
        }
    };
    if candidate.is_none() && apps.is_empty() {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "deletion event without candidate or application ids",
        );
    }
    // A deletion is confirmed with Greenhouse before anything goes (an anonymised candidate
    // still exists, so only `delete_candidate` can be). A redelivery is recognised first.
    let mut confirmation = None;
    if action == "delete_candidate" {
        if let Some(r) = already_seen(&st, &tenant, "greenhouse", &event_ids, &action).await {
            return r;
        }
        let Some(cfg) = st.config.tenant(&tenant).and_then(|t| t.greenhouse.clone()) else {
            return problem(StatusCode::INTERNAL_SERVER_ERROR, "tenant lost its config");
        };
        let asked = super::greenhouse::Greenhouse::new(cfg, st.http.clone())
            .confirm_deleted(candidate.as_deref(), &apps)
            .await;
        match confirmed(&st, &tenant, "greenhouse", asked).await {
            Ok(c) => confirmation = Some(c),
            Err(r) => return r,
        }
    }
    let request = DeletionRequest {
        tenant,
        vendor: "greenhouse".into(),
        event_ids,
        action,
        candidate_id: candidate,
        application_ids: apps,
        confirmation,
    };
    deletion(&st, request).await
}

async fn lever(
    State(st): State<InboundState>,
    Path(tenant): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_problem(e),
    };
    // An unknown tenant gets the same answer as a bad signature: which tenants exist is not
    // for strangers to learn.
    let Some((cfg, secret)) = st
        .config
        .tenant(&tenant)
        .and_then(|t| t.lever.clone())
        .and_then(|l| l.webhook_signature_token.clone().map(|s| (l, s)))
    else {
        return rejected(&st, tenant, "lever", "no Lever webhook configured").await;
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return rejected(&st, tenant, "lever", "body is not JSON").await;
    };
    let signed = match verify_lever(&secret, &v) {
        Ok(s) => s,
        Err(why) => return rejected(&st, tenant, "lever", why).await,
    };
    if !lever_fresh(signed.triggered_ms, now_ms(), cfg.webhook_max_age) {
        return rejected(
            &st,
            tenant,
            "lever",
            "triggeredAt outside the freshness window",
        )
        .await;
    }
    let event_ids = vec![signed.signed_id];
    let action = v["event"].as_str().unwrap_or("").to_owned();
    if action != "candidateDeleted" {
        let (t, e, a) = (tenant.clone(), event_ids, action.clone());
        return match with_store(&st, move |s| s.note_inbound(&t, "lever", &e, &a, now_ms())).await {
            Ok(_) => Json(json!({"status": "ignored", "action": action})).into_response(),
            Err(r) => r,
        };
    }
    let d = &v["data"];
    let contact = id_str(&d["candidateId"]).or_else(|| id_str(&d["contactId"]));
    let opportunity = id_str(&d["opportunityId"]);
    if contact.is_none() && opportunity.is_none() {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "candidateDeleted without candidate or opportunity id",
        );
    }
    if let Some(r) = already_seen(&st, &tenant, "lever", &event_ids, &action).await {
        return r;
    }
    let asked = super::lever::Lever::new(cfg, st.http.clone())
        .confirm_deleted(opportunity.as_deref(), contact.as_deref())
        .await;
    let confirmation = match confirmed(&st, &tenant, "lever", asked).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let request = DeletionRequest {
        tenant,
        vendor: "lever".into(),
        event_ids,
        action,
        candidate_id: contact,
        application_ids: opportunity.into_iter().collect(),
        confirmation: Some(confirmation),
    };
    deletion(&st, request).await
}

/// `Some(answer)` when the event was processed before (a redelivery, or a replay under another
/// id): nothing is asked or done again.
async fn already_seen(
    st: &InboundState,
    tenant: &str,
    vendor: &'static str,
    event_ids: &[String],
    action: &str,
) -> Option<Response> {
    let (t, e) = (tenant.to_owned(), event_ids.to_vec());
    match with_store(st, move |s| s.inbound_seen(&t, vendor, &e)).await {
        Ok(true) => Some(Json(json!({"status": "duplicate", "action": action})).into_response()),
        Ok(false) => None,
        Err(r) => Some(r),
    }
}

/// Acts on what the vendor's API said about a deletion: 503 when it could not be asked
/// (nothing is recorded, so the vendor's retry is processed), 409 recorded as a rejection when
/// it still has the record, else the answer to keep in the deletion's audit entry.
async fn confirmed(
    st: &InboundState,
    tenant: &str,
    vendor: &'static str,
    asked: Result<super::Confirmation, super::retry::SendError>,
) -> Result<serde_json::Value, Response> {
    let c = asked.map_err(|e| {
        tracing::error!(vendor, error = %e, "cannot confirm a deletion with the ATS");
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "cannot confirm the deletion with the ATS; retry later",
        )
    })?;
    if c.deleted {
        return Ok(serde_json::to_value(&c).unwrap_or_default());
    }
    tracing::warn!(tenant, vendor, request = %c.request, "deletion not confirmed by the ATS's API: nothing deleted");
    let t = tenant.to_owned();
    let why = "deletion not confirmed by the ATS's API";
    Err(
        match with_store(st, move |s| s.record_rejection(&t, vendor, why, now_ms())).await {
            Ok(()) => problem(
                StatusCode::CONFLICT,
                "the ATS still has this candidate: nothing was deleted",
            ),
            Err(r) => r,
        },
    )
}

async fn deletion(st: &InboundState, request: DeletionRequest) -> Response {
    let action = request.action.clone();
    match with_store(st, move |s| s.delete_candidate(&request, now_ms())).await {
        Ok(Some(d)) => Json(json!({
            "status": "processed", "action": action,
            "reports_deleted": d.reports, "deliveries_deleted": d.deliveries,
        }))
        .into_response(),
        Ok(None) => Json(json!({"status": "duplicate", "action": action})).into_response(),
        Err(r) => r,
    }
}

async fn gate_endpoint(
    State(st): State<InboundState>,
    Path((tenant, application)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    // The gate answers the ATS (or a recruiter tool) with its own hashed tokens, scoped to the
    // tenant. An unknown tenant gets the same 401 as a wrong token: no tenant enumeration.
    let t = st.config.tenant(&tenant).cloned();
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    let Some(t) = t.filter(|t| gate::client(&t.gate_tokens, given).is_some()) else {
        return problem(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    };
    match with_store(&st, move |s| gate::decide(s, &t, &application)).await {
        Ok(a) => Json(a).into_response(),
        Err(r) => r,
    }
}

async fn metrics(State(st): State<InboundState>) -> Response {
    match with_store(&st, |s| s.metrics()).await {
        Ok(m) => {
            let mut reg = prometheus_client::registry::Registry::default();
            super::metrics::register_store(&mut reg, &m);
            match super::metrics::encode(&reg) {
                Ok(text) => {
                    ([("content-type", super::metrics::CONTENT_TYPE)], text).into_response()
                }
                Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed"),
            }
        }
        Err(r) => r,
    }
}
