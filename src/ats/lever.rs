//! Lever API v1: the API key as the Basic-auth user name (blank password), `perform_as` in
//! the query string of every write.
//!
//! - `POST /v1/opportunities/{id}/files?perform_as=U` — multipart, part `file`, ≤ 30 MB →
//!   `{data: {id, name, …}}`.
//! - `GET /v1/opportunities/{id}/files?limit=100[&offset=T]` → `{data: […], hasNext, next}`.
//! - `POST /v1/opportunities/{id}/notes?perform_as=U` — `{value, secret}` → `{data: {id}}`.
//! - `GET /v1/opportunities/{id}/notes?limit=100[&offset=T]` for the duplicate check.
//! - `GET /v1/opportunities/{id}` → `{data: {id, …}}`, 404 once deleted; and
//!   `GET /v1/opportunities?contact_id=C&limit=1` → `{data: […]}`: how a `candidateDeleted`
//!   webhook (whose body Lever does not sign) is confirmed before anything is deleted. That a
//!   deleted opportunity answers 404 follows Lever's documented error behaviour for unknown ids;
//!   it could not be tried against a real account here.
//!
//! Lever has no idempotency keys either: as with Greenhouse, completed steps are recorded and
//! retries look for the report's file name (and the note that names the report id) first.

use super::config::LeverConfig;
use super::retry::SendError;
use super::{
    Confirmation, Progress, Receipt, check, html_filename, json_body, report_filename, summary_text,
};
use crate::store::NewReport;
use serde::Deserialize;
use serde_json::json;

/// Lever's documented upload limit.
pub const MAX_FILE_BYTES: usize = 30 * 1024 * 1024;

pub struct Lever {
    cfg: LeverConfig,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct One {
    data: Item,
}

#[derive(Deserialize)]
struct Page {
    data: Vec<Item>,
    #[serde(default, rename = "hasNext")]
    has_next: bool,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    id: String,
    #[serde(default)]
    name: Option<String>,
    /// A note's text, as Lever lists notes: `text`, and `fields[].value` (a top-level `value`
    /// is what a note is *created* with, not how it is listed).
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    fields: Vec<NoteField>,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct NoteField {
    #[serde(default)]
    value: Option<serde_json::Value>,
}

impl Item {
    /// Whether this note's text (wherever Lever carries it) contains `needle`.
    fn note_contains(&self, needle: &str) -> bool {
        let field = |f: &NoteField| {
            f.value
                .as_ref()
                .and_then(serde_json::Value::as_str)
                .is_some_and(|v| v.contains(needle))
        };
        [&self.text, &self.value]
            .into_iter()
            .flatten()
            .any(|t| t.contains(needle))
            || self.fields.iter().any(field)
    }
}

impl Lever {
    pub fn new(cfg: LeverConfig, http: reqwest::Client) -> Lever {
        Lever { cfg, http }
    }

    fn url(&self, opportunity: &str, tail: &str, write: bool) -> url::Url {
        let mut u = self.cfg.base_url.clone();
        u.path_segments_mut().expect("http(s) URL").clear().extend([
            "v1",
            "opportunities",
            opportunity,
            tail,
        ]);
        if write {
            u.query_pairs_mut()
                .append_pair("perform_as", &self.cfg.perform_as);
        }
        u
    }

    fn auth(&self, b: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        b.basic_auth(self.cfg.api_key.expose(), Some(""))
    }

    /// Looks through the opportunity's files (`tail` = "files", matched by name) or notes
    /// (`tail` = "notes", matched by a substring of the text) for an existing item.
    async fn find(
        &self,
        call: &'static str,
        opportunity: &str,
        tail: &str,
        matches: impl Fn(&Item) -> bool,
    ) -> Result<Option<String>, SendError> {
        let mut offset: Option<String> = None;
        for _ in 0..1000 {
            let mut u = self.url(opportunity, tail, false);
            u.query_pairs_mut().append_pair("limit", "100");
            if let Some(o) = &offset {
                u.query_pairs_mut().append_pair("offset", o);
            }
            let resp = self
                .auth(self.http.get(u))
                .send()
                .await
                .map_err(|e| SendError::transport(call, &e))?;
            let page: Page = json_body(call, check(call, resp).await?).await?;
            if let Some(item) = page.data.iter().find(|i| matches(i)) {
                return Ok(Some(item.id.clone()));
            }
            match (page.has_next, page.next) {
                (true, Some(n)) => offset = Some(n),
                _ => return Ok(None),
            }
        }
        Err(SendError::Protocol {
            call,
            detail: "more than 1000 pages".into(),
        })
    }

    async fn create_note(&self, opportunity: &str, text: String) -> Result<String, SendError> {
        const CALL: &str = "lever create note";
        let resp = self
            .auth(self.http.post(self.url(opportunity, "notes", true)))
            .json(&json!({ "value": text, "secret": false }))
            .send()
            .await
            .map_err(|e| SendError::transport(CALL, &e))?;
        let one: One = json_body(CALL, check(CALL, resp).await?).await?;
        Ok(one.data.id)
    }

    async fn upload(
        &self,
        opportunity: &str,
        filename: &str,
        mime: &str,
        bytes: &[u8],
    ) -> Result<String, SendError> {
        const CALL: &str = "lever upload file";
        if bytes.len() > MAX_FILE_BYTES {
            return Err(SendError::Config(format!(
                "{filename} is {} bytes; Lever accepts at most {MAX_FILE_BYTES}",
                bytes.len()
            )));
        }
        let part = reqwest::multipart::Part::bytes(bytes.to_vec())
            .file_name(filename.to_owned())
            .mime_str(mime)
            .map_err(|e| SendError::Config(e.to_string()))?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let resp = self
            .auth(self.http.post(self.url(opportunity, "files", true)))
            .multipart(form)
            .send()
            .await
            .map_err(|e| SendError::transport(CALL, &e))?;
        let one: One = json_body(CALL, check(CALL, resp).await?).await?;
        Ok(one.data.id)
    }

    async fn ensure_file(
        &self,
        key: &str,
        opportunity: &str,
        (filename, mime, bytes): (&str, &str, &[u8]),
        look_first: bool,
        progress: &mut Progress,
    ) -> Result<String, SendError> {
        super::once(
            progress,
            key,
            look_first,
            || {
                self.find("lever list files", opportunity, "files", |i| {
                    i.name.as_deref() == Some(filename)
                })
            },
            || self.upload(opportunity, filename, mime, bytes),
        )
        .await
    }

    /// Asks Lever whether a `candidateDeleted` event is true: the opportunity answers 404, or
    /// the contact has no opportunity left. `Ok(false)` when Lever still has it.
    pub async fn confirm_deleted(
        &self,
        opportunity: Option<&str>,
        contact: Option<&str>,
    ) -> Result<Confirmation, SendError> {
        const CALL: &str = "lever confirm deletion";
        let mut u = self.cfg.base_url.clone();
        {
            let mut path = u.path_segments_mut().expect("http(s) URL");
            path.clear().extend(["v1", "opportunities"]);
            if let Some(o) = opportunity {
                path.push(o);
            }
        }
        match (opportunity, contact) {
            (Some(_), _) => {}
            (None, Some(c)) => {
                u.query_pairs_mut()
                    .append_pair("contact_id", c)
                    .append_pair("limit", "1");
            }
            (None, None) => {
                return Err(SendError::Config(
                    "a deletion names neither an opportunity nor a contact".into(),
                ));
            }
        }
        let request = format!("GET {}", u.path());
        let resp = self
            .auth(self.http.get(u))
            .send()
            .await
            .map_err(|e| SendError::transport(CALL, &e))?;
        let status = resp.status().as_u16();
        let deleted = if opportunity.is_some() {
            if status == 404 {
                true
            } else {
                let _: One = json_body(CALL, check(CALL, resp).await?).await?;
                false
            }
        } else {
            let page: Page = json_body(CALL, check(CALL, resp).await?).await?;
            page.data.is_empty()
        };
        Ok(Confirmation {
            request,
            status,
            deleted,
        })
    }

    pub async fn deliver(
        &self,
        r: &NewReport,
        prior_attempts: u32,
        progress: &mut Progress,
    ) -> Result<Receipt, SendError> {
        let opp = r.application_id.as_str();
        let look_first = prior_attempts > 0;
        let id = self
            .ensure_file(
                "file_id",
                opp,
                (
                    &report_filename(&r.report_id),
                    "application/json",
                    &r.envelope,
                ),
                look_first,
                progress,
            )
            .await?;
        if let Some(html) = &r.html {
            self.ensure_file(
                "html_file_id",
                opp,
                (&html_filename(&r.report_id), "text/html", html),
                look_first,
                progress,
            )
            .await?;
        }
        let report_id = r.report_id.as_str();
        super::once(
            progress,
            "note_id",
            look_first,
            || {
                self.find("lever list notes", opp, "notes", |i| {
                    i.note_contains(report_id)
                })
            },
            || self.create_note(opp, summary_text(r)),
        )
        .await?;
        Ok(Receipt { remote_ref: id })
    }
}
