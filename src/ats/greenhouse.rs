//! Greenhouse Harvest v3 (v1/v2 are retired since 2026-08-31).
//!
//! Calls, as documented (harvestdocs.greenhouse.io):
//! - `POST {token_url}` — Basic `client_id:client_secret`, form `grant_type=client_credentials`,
//!   `sub=<user id>` → `{access_token, token_type, expires_at}`; cached until a minute before
//!   expiry and refreshed once on a 401.
//! - `GET /v3/attachments?application_ids=ID&type=other&per_page=500` — bare JSON array,
//!   cursor pagination through `Link: <…?cursor=…>; rel="next"` (the cursor URL is followed as
//!   given: with a cursor, no other parameter is allowed).
//! - `POST /v3/attachments` — `{application_id, filename, type: "other", content (base64),
//!   visibility}`; type `other` because `resume`/`cover_letter` would re-classify the
//!   candidate's previous file.
//! - `PATCH /v3/applications/{id}` — `{custom_fields: [{name_key | id, value}]}`.
//! - `GET /v3/candidates?ids=ID` / `GET /v3/applications?ids=A,B` — bare JSON arrays; empty once
//!   deleted: how a `delete_candidate` webhook is confirmed before anything is deleted (the
//!   `ids` filter is documented for v3 list endpoints; that a deleted record drops out of the
//!   list could not be tried against a real account here).
//!
//! Greenhouse has no idempotency keys. Each completed step is recorded in the delivery's
//! progress; after a first attempt, the report's file name (which contains the report id) is
//! looked up among the application's attachments before posting.

use super::config::{FieldRef, GreenhouseConfig};
use super::retry::SendError;
use super::{Progress, Receipt, check, html_filename, json_body, report_filename};
use crate::store::NewReport;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Refresh this long before the token's stated expiry.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

pub struct Greenhouse {
    cfg: GreenhouseConfig,
    http: reqwest::Client,
    token: Mutex<Option<(String, Instant)>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A scheduled interview as listed by `GET /v3/interviews`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Interview {
    pub id: serde_json::Value,
    pub application_id: serde_json::Value,
    #[serde(default)]
    pub start: Option<serde_json::Value>,
    #[serde(default)]
    pub video_conferencing_url: Option<String>,
}

#[derive(Deserialize)]
struct Attachment {
    id: serde_json::Value,
    #[serde(default)]
    filename: Option<String>,
}

impl Greenhouse {
    pub fn new(cfg: GreenhouseConfig, http: reqwest::Client) -> Greenhouse {
        Greenhouse {
            cfg,
            http,
            token: Mutex::new(None),
        }
    }

    async fn token(&self, force: bool) -> Result<String, SendError> {
        let mut slot = self.token.lock().await;
        if !force
            && let Some((t, exp)) = slot.as_ref()
            && Instant::now() + TOKEN_MARGIN < *exp
        {
            return Ok(t.clone());
        }
        const CALL: &str = "greenhouse token";
        let resp = self
            .http
            .post(self.cfg.token_url.clone())
            .basic_auth(&self.cfg.client_id, Some(self.cfg.client_secret.expose()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("sub", &self.cfg.user_id.to_string()),
            ])
            .send()
            .await
            .map_err(|e| SendError::transport(CALL, &e))?;
        let t: TokenResponse = json_body(CALL, check(CALL, resp).await?).await?;
        let lifetime = match (t.expires_in, t.expires_at.as_deref()) {
            (Some(s), _) => Duration::from_secs(s),
            (None, Some(at)) => {
                let at =
                    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                        .map_err(|e| SendError::Protocol {
                            call: CALL,
                            detail: format!("expires_at '{at}': {e}"),
                        })?;
                let left = at - time::OffsetDateTime::now_utc();
                Duration::try_from(left).unwrap_or(Duration::ZERO)
            }
            (None, None) => Duration::from_secs(3600),
        };
        let token = t.access_token;
        *slot = Some((token.clone(), Instant::now() + lifetime));
        Ok(token)
    }

    /// Sends a request built by `build` with a bearer token; on 401 refreshes the token once.
    async fn send(
        &self,
        call: &'static str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SendError> {
        let mut force = false;
        loop {
            let token = self.token(force).await?;
            let resp = build(&self.http)
                .bearer_auth(&token)
                .send()
                .await
                .map_err(|e| SendError::transport(call, &e))?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED && !force {
                force = true;
                continue;
            }
            return check(call, resp).await;
        }
    }

    /// Asks Greenhouse whether a deletion is true: the candidate (or, without one, every listed
    /// application) is no longer listed.
    pub async fn confirm_deleted(
        &self,
        candidate: Option<&str>,
        applications: &[String],
    ) -> Result<super::Confirmation, SendError> {
        const CALL: &str = "greenhouse confirm deletion";
        let (path, ids) = match candidate {
            Some(c) => ("/v3/candidates", c.to_string()),
            None if !applications.is_empty() => ("/v3/applications", applications.join(",")),
            None => {
                return Err(SendError::Config(
                    "a deletion names neither a candidate nor an application".into(),
                ));
            }
        };
        let mut u = self.url(path);
        u.query_pairs_mut().append_pair("ids", &ids);
        let resp = self.send(CALL, |h| h.get(u.clone())).await?;
        let status = resp.status().as_u16();
        let listed: Vec<serde_json::Value> = json_body(CALL, resp).await?;
        Ok(super::Confirmation {
            request: format!("GET {path}"),
            status,
            deleted: listed.is_empty(),
        })
    }

    fn url(&self, path: &str) -> url::Url {
        let mut u = self.cfg.base_url.clone();
        u.set_path(path);
        u
    }

    /// Finds an attachment of the application by file name, following cursor pages.
    async fn find_attachment(
        &self,
        application_id: u64,
        filename: &str,
    ) -> Result<Option<String>, SendError> {
        const CALL: &str = "greenhouse list attachments";
        let mut next = {
            let mut u = self.url("/v3/attachments");
            u.query_pairs_mut()
                .append_pair("application_ids", &application_id.to_string())
                .append_pair("type", "other")
                .append_pair("per_page", "500");
            Some(u)
        };
        let mut pages = 0;
        while let Some(u) = next.take() {
            pages += 1;
            if pages > 1000 {
                return Err(SendError::Protocol {
                    call: CALL,
                    detail: "more than 1000 pages of attachments".into(),
                });
            }
            let resp = self.send(CALL, |h| h.get(u.clone())).await?;
            next = next_link(resp.headers(), &self.cfg.base_url);
            let items: Vec<Attachment> = json_body(CALL, resp).await?;
            if let Some(a) = items
                .into_iter()
                .find(|a| a.filename.as_deref() == Some(filename))
            {
                return Ok(Some(id_string(&a.id)));
            }
        }
        Ok(None)
    }

    /// Interviews starting at or after `since` (RFC 3339), following cursor pages.
    /// `GET /v3/interviews?starts_at=gte|<since>&per_page=500`.
    pub async fn list_interviews(&self, since: &str) -> Result<Vec<Interview>, SendError> {
        const CALL: &str = "greenhouse list interviews";
        let mut next = {
            let mut u = self.url("/v3/interviews");
            u.query_pairs_mut()
                .append_pair("starts_at", &format!("gte|{since}"))
                .append_pair("per_page", "500");
            Some(u)
        };
        let mut out = Vec::new();
        let mut pages = 0;
        while let Some(u) = next.take() {
            pages += 1;
            if pages > 1000 {
                break;
            }
            let resp = self.send(CALL, |h| h.get(u.clone())).await?;
            next = next_link(resp.headers(), &self.cfg.base_url);
            let items: Vec<Interview> = json_body(CALL, resp).await?;
            out.extend(items);
        }
        Ok(out)
    }

    async fn post_attachment(
        &self,
        application_id: u64,
        filename: &str,
        bytes: &[u8],
    ) -> Result<String, SendError> {
        const CALL: &str = "greenhouse create attachment";
        let body = json!({
            "application_id": application_id,
            "filename": filename,
            "type": "other",
            "content": base64::engine::general_purpose::STANDARD.encode(bytes),
            "visibility": self.cfg.visibility.as_str(),
        });
        let resp = self
            .send(CALL, |h| h.post(self.url("/v3/attachments")).json(&body))
            .await?;
        let a: Attachment = json_body(CALL, resp).await?;
        Ok(id_string(&a.id))
    }

    /// Attaches `bytes` as `filename` unless progress or the ATS shows it is already there.
    async fn ensure_attachment(
        &self,
        key: &str,
        application_id: u64,
        filename: &str,
        bytes: &[u8],
        look_first: bool,
        progress: &mut Progress,
    ) -> Result<String, SendError> {
        super::once(
            progress,
            key,
            look_first,
            || self.find_attachment(application_id, filename),
            || self.post_attachment(application_id, filename, bytes),
        )
        .await
    }

    pub async fn deliver(
        &self,
        r: &NewReport,
        prior_attempts: u32,
        progress: &mut Progress,
    ) -> Result<Receipt, SendError> {
        let app: u64 = r.application_id.parse().map_err(|_| {
            SendError::Config(format!(
                "Greenhouse application ids are integers; '{}' is not",
                r.application_id
            ))
        })?;
        let look_first = prior_attempts > 0;
        let id = self
            .ensure_attachment(
                "attachment_id",
                app,
                &report_filename(&r.report_id),
                &r.envelope,
                look_first,
                progress,
            )
            .await?;
        if let Some(html) = &r.html {
            self.ensure_attachment(
                "html_attachment_id",
                app,
                &html_filename(&r.report_id),
                html,
                look_first,
                progress,
            )
            .await?;
        }
        if progress.get("custom_fields").is_none() {
            let fields = self.custom_fields(r);
            if !fields.is_empty() {
                const CALL: &str = "greenhouse update application";
                let body = json!({ "custom_fields": fields });
                let path = format!("/v3/applications/{app}");
                self.send(CALL, |h| h.patch(self.url(&path)).json(&body))
                    .await?;
            }
            progress.insert("custom_fields".into(), true.into());
        }
        Ok(Receipt { remote_ref: id })
    }

    fn custom_fields(&self, r: &NewReport) -> Vec<serde_json::Value> {
        let mut v = Vec::new();
        let mut push = |f: &Option<FieldRef>, value: serde_json::Value| {
            match f {
                Some(FieldRef::Id(id)) => v.push(json!({"id": id, "value": value})),
                Some(FieldRef::NameKey(k)) => v.push(json!({"name_key": k, "value": value})),
                None => {}
            };
        };
        push(&self.cfg.integrity_field, json!(r.integrity.round() as i64));
        push(&self.cfg.risk_tier_field, json!(r.risk_tier));
        push(&self.cfg.status_field, json!(r.verification_status));
        v
    }
}

pub fn id_string(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The `rel="next"` target of a `Link` header, only when it points at the configured host
/// (a bearer token must never follow a link elsewhere).
fn next_link(h: &reqwest::header::HeaderMap, base: &url::Url) -> Option<url::Url> {
    for v in h.get_all(reqwest::header::LINK) {
        let Ok(v) = v.to_str() else { continue };
        for part in v.split(',') {
            let mut segs = part.split(';');
            let target = segs.next()?.trim();
            let is_next = segs.any(|s| {
                let s = s.trim().replace(' ', "");
                s == "rel=\"next\"" || s == "rel=next"
            });
            if !is_next {
                continue;
            }
            let u = target.strip_prefix('<')?.strip_suffix('>')?;
            let u = base.join(u).ok()?;
            if u.origin() == base.origin() {
                return Some(u);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_parses_rfc5988_and_refuses_other_hosts() {
        let base = url::Url::parse("https://harvest.greenhouse.io").unwrap();
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            "<https://harvest.greenhouse.io/v3/attachments?cursor=abc>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h, &base).unwrap().as_str(),
            "https://harvest.greenhouse.io/v3/attachments?cursor=abc"
        );
        h.insert(
            reqwest::header::LINK,
            "<https://evil.example/v3/attachments?cursor=abc>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_link(&h, &base), None);
        h.insert(
            reqwest::header::LINK,
            "<https://harvest.greenhouse.io/x>; rel=\"prev\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_link(&h, &base), None);
    }
}
