//! Generic outbound webhook, signed per Standard Webhooks 1.0.
//!
//! Headers: `webhook-id` (stable across retries: `msg_<report id>`), `webhook-timestamp`
//! (Unix seconds of this attempt), `webhook-signature` = `v1,<base64 HMAC-SHA256(key,
//! "{id}.{timestamp}.{body}")>` where the key is the base64-decoded part of the `whsec_`
//! secret, and `Idempotency-Key` (= webhook-id) for receivers that follow the IETF draft.
//! Body: `{type: "integrity_report.ready", timestamp, data: {…summary, envelope}}`.

use super::config::{SecretBytes, WebhookConfig};
use super::retry::SendError;
use super::{Progress, Receipt, check};
use crate::store::NewReport;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

pub const EVENT_TYPE: &str = "integrity_report.ready";
/// Timestamps further than this from the receiver's clock are rejected (replay protection).
pub const TOLERANCE_S: i64 = 300;

pub struct Webhook {
    cfg: WebhookConfig,
    http: reqwest::Client,
}

/// The message id for a report: identical on every retry, so receivers de-duplicate on it.
pub fn message_id(report_id: &str) -> String {
    format!("msg_{report_id}")
}

/// `v1,<base64 signature>` over `{id}.{timestamp}.{body}`.
pub fn sign(key: &SecretBytes, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose()).expect("HMAC takes any key size");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("webhook-timestamp is not an integer")]
    BadTimestamp,
    #[error("webhook-timestamp is {0} s away from now (tolerance {TOLERANCE_S} s)")]
    Stale(i64),
    #[error("no webhook-signature matches")]
    BadSignature,
}

/// Verifies a Standard Webhooks request (constant-time comparison; any `v1,` entry of the
/// space-separated signature list may match, which allows key rotation).
pub fn verify(
    key: &SecretBytes,
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let id = id.ok_or(VerifyError::MissingHeader("webhook-id"))?;
    let ts = timestamp.ok_or(VerifyError::MissingHeader("webhook-timestamp"))?;
    let sigs = signature.ok_or(VerifyError::MissingHeader("webhook-signature"))?;
    let ts: i64 = ts.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    if (now - ts).abs() > TOLERANCE_S {
        return Err(VerifyError::Stale(now - ts));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose()).expect("HMAC takes any key size");
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    for s in sigs.split_whitespace() {
        let Some(b64) = s.strip_prefix("v1,") else {
            continue;
        };
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            continue;
        };
        if mac.clone().verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::BadSignature)
}

impl Webhook {
    pub fn new(cfg: WebhookConfig, http: reqwest::Client) -> Webhook {
        Webhook { cfg, http }
    }

    pub async fn deliver(
        &self,
        r: &NewReport,
        _prior_attempts: u32,
        _progress: &mut Progress,
    ) -> Result<Receipt, SendError> {
        const CALL: &str = "webhook post";
        let envelope: serde_json::Value = serde_json::from_slice(&r.envelope)
            .map_err(|e| SendError::Config(format!("stored envelope is not JSON: {e}")))?;
        let now = time::OffsetDateTime::now_utc();
        let id = message_id(&r.report_id);
        let body = serde_json::to_vec(&json!({
            "type": EVENT_TYPE,
            "timestamp": now
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            "data": {
                "report_id": r.report_id,
                "tenant": r.tenant,
                "application_id": r.application_id,
                "candidate_id": r.candidate_id,
                "integrity": r.integrity,
                "risk_tier": r.risk_tier,
                "verification_status": r.verification_status,
                "envelope": envelope,
            }
        }))
        .expect("JSON serialises");
        let ts = now.unix_timestamp();
        let resp = self
            .http
            .post(self.cfg.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sign(&self.cfg.key, &id, ts, &body))
            .header("idempotency-key", &id)
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::transport(CALL, &e))?;
        check(CALL, resp).await?;
        Ok(Receipt { remote_ref: id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ats::config::decode_whsec;

    /// The example from the Standard Webhooks reference test suite
    /// (standard-webhooks/libraries, `python/tests`): secret, id, timestamp and body below
    /// sign to `v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=`.
    #[test]
    fn matches_the_reference_vector() {
        let key = decode_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let ok = verify(
            &key,
            Some("msg_p5jXN8AQM9LWM0D4loKWxJek"),
            Some("1614265330"),
            Some(&format!("v1a,xxx {sig}")),
            body,
            1614265330 + 10,
        );
        assert_eq!(ok, Ok(()));
    }

    #[test]
    fn rejects_tampering_staleness_and_missing_headers() {
        let key = decode_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(&key, "msg_1", 1000, b"{}");
        assert_eq!(
            verify(&key, Some("msg_1"), Some("1000"), Some(&sig), b"{ }", 1000),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(&key, Some("msg_2"), Some("1000"), Some(&sig), b"{}", 1000),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(
                &key,
                Some("msg_1"),
                Some("1000"),
                Some(&sig),
                b"{}",
                1000 + 301
            ),
            Err(VerifyError::Stale(301))
        );
        assert_eq!(
            verify(&key, None, Some("1000"), Some(&sig), b"{}", 1000),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            verify(&key, Some("msg_1"), Some("x"), Some(&sig), b"{}", 1000),
            Err(VerifyError::BadTimestamp)
        );
    }
}
