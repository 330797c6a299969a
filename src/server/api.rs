//! The bot-facing HTTP API (`/v1/…`). Every handler authenticates the bot, scopes every lookup
//! to the bot's tenant (another tenant's session is "not found"), and answers errors as problem
//! details. File and database work runs on the blocking pool; analysis runs on session threads.
//!
//! Why one file of this length: one handler per route of the bot API, each short, sharing the request
//! validation and response helpers at the top.

use super::AppState;
use super::auth::{self, Bot};
use super::config::ServeConfig;
use super::problem::Problem;
use super::session::{Active, SessionError};
use crate::report::{Consent, SessionInfo, rfc3339};
use crate::store::live::{LiveSession, Source, State};
use crate::store::now_ms;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, State as AxState};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Largest `POST /v1/sessions` body (ids, consent and optional reference photo/voice, base64).
pub const MAX_CREATE_BODY: usize = 12 << 20;
/// A live stream is made durable (fsync + offset recorded) at least this often.
const STREAM_SYNC_BYTES: usize = 256 * 1024;
const STREAM_SYNC_EVERY: Duration = Duration::from_millis(500);
/// A live stream with no data for this long (or half the idle timeout, if shorter) is closed
/// (408): the other half is the bot's time to reconnect before the session is interrupted.
const STREAM_INACTIVITY: Duration = Duration::from_secs(60);
/// Header carrying a session's durable media length (as in the tus resumable-upload protocol).
pub const UPLOAD_OFFSET: &str = "upload-offset";

impl FromRequestParts<AppState> for Bot {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Bot, Problem> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let bot = auth::authenticate(&st.sessions.cfg.tokens, header).ok_or_else(|| {
            // Failed authentications share one bucket: guessing is slowed to the bot rate and
            // a flood of bad tokens cannot flood the log (only admitted refusals are logged).
            if let Err(wait) = st.limiter.check(" failed-authentication") {
                return Problem::too_many(
                    "too many requests without a valid token; retry after the given time",
                    wait,
                );
            }
            tracing::warn!(path = %parts.uri.path(), "refused a request without a valid bot token");
            Problem::unauthorized()
        })?;
        if let Err(wait) = st.limiter.check(&format!("{}/{}", bot.tenant, bot.name)) {
            st.sessions.stats.rate_limited.inc();
            return Err(Problem::too_many(
                "this bot's request rate is above its limit; retry after the given time",
                wait,
            ));
        }
        Ok(bot)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    pub application_id: String,
    #[serde(default)]
    pub interview_id: Option<String>,
    #[serde(default)]
    pub candidate_id: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub requisition_id: Option<String>,
    #[serde(default)]
    pub ats: Option<String>,
    pub consent: Consent,
    pub media: MediaSpec,
    /// Base64 of a photo of the candidate (e.g. from ID verification).
    #[serde(default)]
    pub reference_face: Option<String>,
    /// Base64 of a recording of the candidate's voice (at least 8 s of speech).
    #[serde(default)]
    pub reference_voice: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSpec {
    pub source: Source,
    /// For `url`: an `https://` (or allow-listed `http://`) address Vigil pulls.
    #[serde(default)]
    pub url: Option<String>,
    /// The recording's file name, for the report (`upload`).
    #[serde(default)]
    pub filename: Option<String>,
}

impl CreateSession {
    fn validate_ids(&self) -> Result<(), Problem> {
        valid_id("application_id", &self.application_id)?;
        for (what, v) in [
            ("interview_id", &self.interview_id),
            ("candidate_id", &self.candidate_id),
            ("department", &self.department),
            ("requisition_id", &self.requisition_id),
            ("ats", &self.ats),
        ] {
            if let Some(v) = v {
                valid_id(what, v)?;
            }
        }
        Ok(())
    }

    /// The reference photo and voice, decoded from base64 (empty or undecodable: 422).
    fn references(&self) -> Result<Vec<(&'static str, Vec<u8>)>, Problem> {
        let mut references = Vec::new();
        for (name, b64) in [
            ("reference_face", &self.reference_face),
            ("reference_voice", &self.reference_voice),
        ] {
            if let Some(b) = b64 {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .map_err(|e| Problem::unprocessable(format!("{name} is not base64: {e}")))?;
                if bytes.is_empty() {
                    return Err(Problem::unprocessable(format!("{name} is empty")));
                }
                references.push((name, bytes));
            }
        }
        Ok(references)
    }
}

impl MediaSpec {
    /// Where the media comes from (the URL to pull, if any) and its name in the report.
    fn resolve(&self, cfg: &ServeConfig) -> Result<(Option<String>, String), Problem> {
        match self.source {
            Source::Url => {
                let url = self.allowed_url(cfg)?;
                let name = crate::ingest::MediaInput::Uri(url.clone()).report_name();
                Ok((Some(url.to_string()), name))
            }
            Source::Upload => {
                if self.url.is_some() {
                    return Err(Problem::unprocessable("media.url is only for source 'url'"));
                }
                let name = self
                    .filename
                    .as_deref()
                    .map(|f| f.rsplit(['/', '\\']).next().unwrap_or(f).to_string())
                    .filter(|f| {
                        !f.is_empty()
                            && f.len() <= 200
                            && !f.chars().any(crate::ingest::unsafe_char)
                    })
                    .unwrap_or_else(|| "upload".into());
                Ok((None, name))
            }
            Source::Live => Ok((None, "live stream".to_string())),
        }
    }

    /// `media.url`, parsed and checked against the server's allow-list.
    fn allowed_url(&self, cfg: &ServeConfig) -> Result<url::Url, Problem> {
        let raw = self
            .url
            .as_deref()
            .ok_or_else(|| Problem::unprocessable("media.url is required for source 'url'"))?;
        let url =
            url::Url::parse(raw).map_err(|e| Problem::unprocessable(format!("media.url: {e}")))?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if cfg.url_hosts.is_empty() {
            return Err(Problem::unprocessable(
                "pulling media from a URL is disabled on this server (no url_hosts configured)",
            ));
        }
        // An entry `host` allows the scheme's default port only; `host:port` that port.
        let target = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        if !matches!(url.scheme(), "https" | "http") || !cfg.url_hosts.contains(&target) {
            return Err(Problem::unprocessable(format!(
                "media.url: '{target}' is not on this server's allow-list (http/https only; an entry without a port allows the default port only)"
            )));
        }
        Ok(url)
    }
}

fn valid_id(what: &str, v: &str) -> Result<(), Problem> {
    if v.is_empty() || v.len() > 128 || v.chars().any(|c| c.is_control()) {
        return Err(Problem::unprocessable(format!(
            "{what} must be 1–128 printable characters"
        )));
    }
    Ok(())
}

async fn read_body(body: Body, limit: usize, what: &str) -> Result<Bytes, Problem> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            Problem::too_large(format!("{what} is larger than {limit} bytes"))
        } else {
            Problem::bad_request(format!("the request body could not be read: {e}"))
        }
    })
}

/// Runs blocking work (files, SQLite) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(Problem::internal)?
}

/// `POST /v1/sessions`
pub async fn create(
    bot: Bot,
    AxState(st): AxState<AppState>,
    body: Body,
) -> Result<Response, Problem> {
    let bytes = read_body(body, MAX_CREATE_BODY, "the session request").await?;
    let req: CreateSession = serde_json::from_slice(&bytes)
        .map_err(|e| Problem::unprocessable(format!("invalid session request: {e}")))?;
    req.validate_ids()?;
    let session_id = format!("vs_{}", hex::encode(rand::random::<[u8; 12]>()));
    let info = SessionInfo {
        session_id: Some(session_id.clone()),
        interview_id: req.interview_id.clone(),
        application_id: Some(req.application_id.clone()),
        candidate_external_id: req.candidate_id.clone(),
        ats: req.ats.clone(),
        requisition_id: req.requisition_id.clone(),
        department: req.department.clone(),
        consent: Some(req.consent.clone()),
    };
    info.check_consent()
        .map_err(|e| Problem::unprocessable(format!("consent: {e}")))?;
    let (source_url, media_name) = req.media.resolve(&st.sessions.cfg)?;
    let references = req.references()?;
    let row = LiveSession {
        id: session_id.clone(),
        tenant: bot.tenant.clone(),
        bot: bot.name.clone(),
        application_id: req.application_id,
        candidate_id: req.candidate_id,
        session_json: serde_json::to_string(&info).expect("session serialises"),
        source: req.media.source,
        source_url,
        media_name,
        state: State::Receiving,
        received_bytes: 0,
        created_at_ms: now_ms(),
        ended_at_ms: None,
        finished_at_ms: None,
        report_id: None,
        error: None,
    };
    let sessions = st.sessions.clone();
    let created = row.clone();
    blocking(move || {
        sessions.admit(created, references).map_err(|e| match e {
            SessionError::Full { .. } | SessionError::ShuttingDown => {
                Problem::unavailable(e.to_string(), Duration::from_secs(30))
            }
            SessionError::TenantFull { .. } => {
                Problem::too_many(e.to_string(), Duration::from_secs(30))
            }
            other => Problem::internal(other),
        })
    })
    .await?;
    tracing::info!(session = %session_id, tenant = %bot.tenant, bot = %bot.name, candidate = row.candidate_id.as_deref().unwrap_or("-"), source = ?row.source, "session created");
    let mut resp = (StatusCode::CREATED, axum::Json(status_json(&st, &row))).into_response();
    resp.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/v1/sessions/{session_id}")).expect("ascii id"),
    );
    Ok(resp)
}

fn ms_to_rfc3339(ms: Option<i64>) -> Value {
    ms.and_then(|m| time::OffsetDateTime::from_unix_timestamp_nanos(m as i128 * 1_000_000).ok())
        .map(|t| Value::String(rfc3339(t)))
        .unwrap_or(Value::Null)
}

fn status_json(st: &AppState, row: &LiveSession) -> Value {
    let active = st.sessions.active(&row.id);
    let base = format!("/v1/sessions/{}", row.id);
    json!({
        "id": row.id,
        "state": row.state.as_str(),
        "source": row.source,
        "application_id": row.application_id,
        "received_bytes": active.as_ref().map_or(row.received_bytes, |a| a.spool.durable_len()),
        "media_analysed_s": active.as_ref().map(|a| crate::report::round(a.progress.media_s(), 3)),
        "analysis_lag_s": active.as_ref().and_then(|a| a.lag_s()).map(|l| crate::report::round(l, 3)),
        "created_at": ms_to_rfc3339(Some(row.created_at_ms)),
        "ended_at": ms_to_rfc3339(row.ended_at_ms),
        "finished_at": ms_to_rfc3339(row.finished_at_ms),
        "report_id": row.report_id,
        "error": row.error,
        "links": {
            "self": base,
            "media": format!("{base}/media"),
            "stream": format!("{base}/stream"),
            "end": format!("{base}/end"),
            "report": format!("{base}/report"),
            "report_html": format!("{base}/report.html"),
        }
    })
}

async fn load(st: &AppState, bot: &Bot, id: String) -> Result<LiveSession, Problem> {
    let store = st.sessions.store.clone();
    let tenant = bot.tenant.clone();
    blocking(move || {
        store
            .lock()?
            .live_session(&tenant, &id)?
            .ok_or_else(|| Problem::not_found("session"))
    })
    .await
}

/// `GET /v1/sessions/{id}`
pub async fn status(
    bot: Bot,
    AxState(st): AxState<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let row = load(&st, &bot, id).await?;
    Ok(axum::Json(status_json(&st, &row)).into_response())
}

/// The session must be receiving media from this kind of source.
async fn receiving(
    st: &AppState,
    bot: &Bot,
    id: String,
    source: Source,
) -> Result<Arc<Active>, Problem> {
    let row = load(st, bot, id).await?;
    if row.source != source {
        return Err(Problem::conflict(format!(
            "this session's media source is '{}'; use its own endpoint",
            row.source.as_str()
        )));
    }
    if row.state != State::Receiving {
        let why = row.error.map(|e| format!(": {e}")).unwrap_or_default();
        return Err(Problem::conflict(format!(
            "the session is {} and takes no more media{why}",
            row.state.as_str()
        ))
        .with_offset(row.received_bytes));
    }
    st.sessions
        .active(&row.id)
        .ok_or_else(|| Problem::unavailable("the session is being resumed", Duration::from_secs(2)))
}

fn offset_header(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    headers
        .get(UPLOAD_OFFSET)
        .map(|v| {
            v.to_str()
                .ok()
                .map(str::trim)
                // Digits only: `+0`, `0x10` or ` 1 2` are not byte counts.
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| Problem::bad_request("Upload-Offset must be a byte count"))
        })
        .transpose()
}

/// Writes `bytes` at `offset` of the session's spool, makes them durable, records the new
/// length, then lets the decoder read them. Returns the new durable length.
async fn append(
    st: &AppState,
    active: &Arc<Active>,
    offset: u64,
    bytes: Bytes,
) -> Result<u64, Problem> {
    let gone = move || {
        Problem::conflict(
            "the session stopped taking media (it failed or was interrupted); see its status",
        )
        .with_offset(offset)
    };
    if st.sessions.active(&active.id).is_none() || active.closed() {
        return Err(if st.sessions.is_shutting_down() {
            shutting_down(offset)
        } else {
            gone()
        });
    }
    let sessions = st.sessions.clone();
    let a = active.clone();
    let end = blocking(move || {
        use std::os::unix::fs::FileExt;
        let f = match std::fs::OpenOptions::new().write(true).open(a.spool.path()) {
            Ok(f) => f,
            // The analysis ended the session and deleted its media meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(gone()),
            Err(e) => return Err(Problem::internal(e)),
        };
        f.write_all_at(&bytes, offset).map_err(Problem::internal)?;
        f.sync_data().map_err(Problem::internal)?;
        let end = offset + bytes.len() as u64;
        let still_receiving = sessions.store.lock()?.set_received(&a.id, end)?;
        // Ended, failed or interrupted meanwhile: these bytes are not part of the session.
        if !still_receiving {
            return Err(gone());
        }
        Ok(end)
    })
    .await?;
    active.received(end);
    Ok(end)
}

/// Media continues exactly where the durable bytes end (a retried or stale write is refused
/// with the offset to resume from).
fn expect_offset(offset: u64, durable: u64) -> Result<(), Problem> {
    if offset == durable {
        return Ok(());
    }
    Err(Problem::conflict(format!(
        "Upload-Offset {offset} does not match the received length {durable}; resume from {durable}"
    ))
    .with_offset(durable))
}

fn shutting_down(offset: u64) -> Problem {
    Problem::unavailable(
        "the server is shutting down; resume from Upload-Offset once it is back",
        Duration::from_secs(10),
    )
    .with_offset(offset)
}

fn too_much(st: &AppState, offset: u64, more: u64) -> Option<Problem> {
    let max = st.sessions.cfg.max_media_bytes;
    (offset.saturating_add(more) > max).then(|| {
        Problem::too_large(format!(
            "the session's media would exceed {max} bytes, this server's limit"
        ))
        .with_offset(offset)
    })
}

/// `HEAD /v1/sessions/{id}/media`: the durable length to resume from.
pub async fn media_offset(
    bot: Bot,
    AxState(st): AxState<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let row = load(&st, &bot, id).await?;
    let offset = st
        .sessions
        .active(&row.id)
        .map_or(row.received_bytes, |a| a.spool.durable_len());
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(UPLOAD_OFFSET, HeaderValue::from(offset));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `PATCH /v1/sessions/{id}/media`: one chunk of a recorded file at `Upload-Offset`.
pub async fn upload_chunk(
    bot: Bot,
    AxState(st): AxState<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let active = receiving(&st, &bot, id, Source::Upload).await?;
    let offset = offset_header(&headers)?
        .ok_or_else(|| Problem::bad_request("Upload-Offset header is required"))?;
    let _writer = active
        .writer
        .try_lock()
        .map_err(|_| Problem::conflict("another upload to this session is in progress"))?;
    let durable = active.spool.durable_len();
    expect_offset(offset, durable)?;
    let limit = st.sessions.cfg.max_chunk_bytes as usize;
    let bytes = read_body(body, limit, "an upload chunk").await?;
    if let Some(p) = too_much(&st, offset, bytes.len() as u64) {
        return Err(p);
    }
    let end = append(&st, &active, offset, bytes).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(UPLOAD_OFFSET, HeaderValue::from(end));
    Ok(resp)
}

/// `PUT /v1/sessions/{id}/stream`: a live stream as one streaming request body (chunked
/// transfer), made durable every 256 KiB or 0.5 s. A reconnecting bot sends `Upload-Offset`.
pub async fn stream(
    bot: Bot,
    AxState(st): AxState<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let active = receiving(&st, &bot, id, Source::Live).await?;
    // A bot reconnecting after a cut can arrive while the old request is still open (being
    // flushed, or a half-open connection nobody will ever close): it takes over, and the old
    // request stops at its next tick.
    let generation = active.stream_gen.fetch_add(1, Ordering::SeqCst) + 1;
    let _writer = tokio::time::timeout(Duration::from_secs(5), active.writer.lock())
        .await
        .map_err(|_| Problem::conflict("another stream to this session is open"))?;
    let durable = active.spool.durable_len();
    expect_offset(offset_header(&headers)?.unwrap_or(0), durable)?;
    let mut at = durable;
    let mut pending: Vec<u8> = Vec::with_capacity(STREAM_SYNC_BYTES);
    let mut last_sync = Instant::now();
    let mut frames = body.into_data_stream();
    let mut cut: Option<String> = None;
    let mut last_data = Instant::now();
    let stop = loop {
        let next = tokio::time::timeout(STREAM_SYNC_EVERY, frames.next()).await;
        if let Some(p) = stream_stop(&st, &active, generation, last_data.elapsed(), at) {
            break Some(p);
        }
        let done = match next {
            Ok(Some(Ok(chunk))) => {
                if let Some(p) = too_much(&st, at + pending.len() as u64, chunk.len() as u64) {
                    if !pending.is_empty() {
                        at = append(&st, &active, at, Bytes::from(std::mem::take(&mut pending)))
                            .await?;
                    }
                    return Err(p.with_offset(at));
                }
                pending.extend_from_slice(&chunk);
                last_data = Instant::now();
                false
            }
            Ok(Some(Err(e))) => {
                cut = Some(e.to_string());
                true
            }
            Ok(None) => true,
            Err(_) => false, // quiet for a moment: sync what we have
        };
        if !pending.is_empty()
            && (done
                || pending.len() >= STREAM_SYNC_BYTES
                || last_sync.elapsed() >= STREAM_SYNC_EVERY)
        {
            at = append(&st, &active, at, Bytes::from(std::mem::take(&mut pending))).await?;
            last_sync = Instant::now();
        }
        if done {
            break None;
        }
    };
    if let Some(p) = stop {
        // Everything received before the stop is durable unless the session itself closed.
        if !pending.is_empty() && !active.closed() {
            at = append(&st, &active, at, Bytes::from(std::mem::take(&mut pending))).await?;
        }
        tracing::info!(session = %active.id, bytes = at, "live stream request stopped: {}", p.detail);
        return Err(p.with_offset(at));
    }
    if let Some(why) = cut {
        // The bot went away mid-stream: everything received is durable; it may reconnect.
        tracing::warn!(session = %active.id, tenant = %active.tenant, bytes = at, "live stream cut: {why}");
        return Err(Problem::bad_request(format!("the stream was cut: {why}")).with_offset(at));
    }
    let mut resp = (StatusCode::OK, axum::Json(json!({"received_bytes": at}))).into_response();
    resp.headers_mut()
        .insert(UPLOAD_OFFSET, HeaderValue::from(at));
    Ok(resp)
}

/// Why a live stream request must stop now, if it must: a newer request took over, the server
/// is shutting down, the session closed, or the bot sent nothing for too long (`quiet`).
fn stream_stop(
    st: &AppState,
    active: &Active,
    generation: u64,
    quiet: Duration,
    at: u64,
) -> Option<Problem> {
    let idle = st.sessions.cfg.idle_timeout;
    let inactivity = (idle / 2).min(STREAM_INACTIVITY);
    if active.stream_gen.load(Ordering::SeqCst) != generation {
        Some(Problem::conflict(
            "a newer stream to this session took over",
        ))
    } else if st.sessions.is_shutting_down() {
        Some(shutting_down(at))
    } else if active.closed() {
        Some(Problem::conflict(
            "the session stopped taking media; see its status",
        ))
    } else if quiet > inactivity {
        Some(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "request timeout",
            format!(
                "no data on the stream for {} s; reconnect with Upload-Offset: {at} within {} s, or the session is interrupted",
                inactivity.as_secs(),
                idle.saturating_sub(inactivity).as_secs()
            ),
        ))
    } else {
        None
    }
}

/// `POST /v1/sessions/{id}/end`: no more media; the report follows.
pub async fn end(
    bot: Bot,
    AxState(st): AxState<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let row = load(&st, &bot, id).await?;
    match row.state {
        State::Receiving => {}
        State::Finalizing | State::Done => {
            // Ending twice is not an error (a retried request).
            return Ok((StatusCode::ACCEPTED, axum::Json(status_json(&st, &row))).into_response());
        }
        s => {
            return Err(Problem::conflict(format!(
                "the session is {}{}",
                s.as_str(),
                row.error.map(|e| format!(": {e}")).unwrap_or_default()
            )));
        }
    }
    let active = st.sessions.active(&row.id).ok_or_else(|| {
        Problem::unavailable("the session is being resumed", Duration::from_secs(2))
    })?;
    if row.source != Source::Url && active.spool.durable_len() == 0 {
        return Err(Problem::conflict(
            "no media was received; send media before ending the session",
        ));
    }
    // No chunk or stream write may land after the end: wait for an open one to finish.
    let _writer = tokio::time::timeout(Duration::from_secs(10), active.writer.lock())
        .await
        .map_err(|_| {
            Problem::conflict("an upload or stream to this session is still open; close it first")
        })?;
    let sessions = st.sessions.clone();
    let a = active.clone();
    let ended = blocking(move || sessions.end(&a).map_err(Problem::internal)).await?;
    let row = load(&st, &bot, row.id).await?;
    if !ended && !matches!(row.state, State::Finalizing | State::Done) {
        return Err(Problem::conflict(format!(
            "the session is {}{}",
            row.state.as_str(),
            row.error.map(|e| format!(": {e}")).unwrap_or_default()
        )));
    }
    tracing::info!(session = %row.id, tenant = %row.tenant, "session ended by the bot");
    Ok((StatusCode::ACCEPTED, axum::Json(status_json(&st, &row))).into_response())
}

async fn artifacts(
    st: &AppState,
    bot: &Bot,
    id: String,
) -> Result<(Vec<u8>, Option<Vec<u8>>), Problem> {
    let row = load(st, bot, id).await?;
    let report_id = match (row.state, row.report_id) {
        (State::Done, Some(r)) => r,
        (s, _) => {
            let why = row.error.map(|e| format!(": {e}")).unwrap_or_default();
            return Err(Problem::conflict(format!(
                "no report: the session is {}{why}",
                s.as_str()
            )));
        }
    };
    let store = st.sessions.store.clone();
    let tenant = bot.tenant.clone();
    blocking(move || {
        store
            .lock()?
            .report_artifacts(&tenant, &report_id)?
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::GONE,
                    "gone",
                    "the report was deleted (retention or a candidate deletion request)",
                )
            })
    })
    .await
}

/// `GET /v1/sessions/{id}/report`: the signed DSSE envelope.
pub async fn report(
    bot: Bot,
    AxState(st): AxState<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let (envelope, _) = artifacts(&st, &bot, id).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], envelope).into_response())
}

/// `GET /v1/sessions/{id}/report.html`: the report rendered for people.
pub async fn report_html(
    bot: Bot,
    AxState(st): AxState<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let (_, html) = artifacts(&st, &bot, id).await?;
    let html = html.ok_or_else(|| Problem::not_found("HTML rendering for this report"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
            ),
        ],
        html,
    )
        .into_response())
}
