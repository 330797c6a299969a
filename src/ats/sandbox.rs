//! A local ATS that follows the documented Greenhouse Harvest v3 and Lever v1 request and
//! response shapes, plus a Standard Webhooks receiver, and injects faults on demand.
//!
//! It stands in for the hosted ATSs, which cannot be reached from tests. It is deliberately
//! *strict*: unknown request fields, a missing `perform_as`, a cursor combined with other query
//! parameters or the map form of custom fields are rejected, so the writer cannot drift from
//! the documented shapes. Where a vendor shape is not documented (README
//! § Delivering reports to the ATS), the sandbox's choice is the one named in the module
//! docs of `greenhouse.rs` / `lever.rs`.
//!
//! Faults (`FaultConfig`): each API request draws from a seeded RNG; with probability `rate`
//! one of the enabled kinds is applied. `commit_then_*` kinds perform the write and then lose
//! the answer — the case that makes naive retries post twice. Like the real Greenhouse, the
//! sandbox accepts duplicate attachments by default and counts them, so a test can assert
//! there are none.

// Handlers return `Result<_, Response>` for early exits, axum's idiom; the size of the error
// variant does not matter on this path.
#![allow(clippy::result_large_err)]

use super::config::SecretBytes;
use super::webhook;
use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const GREENHOUSE_CLIENT_ID: &str = "vigil-sandbox";
pub const GREENHOUSE_CLIENT_SECRET: &str = "sandbox-client-secret";
pub const LEVER_API_KEY: &str = "sandbox-lever-key";
/// The receiver's Standard Webhooks secret.
pub const WEBHOOK_SECRET: &str = "whsec_c2FuZGJveC13ZWJob29rLXNlY3JldC0wMTIzNDU2Nzg5";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 500 before doing anything.
    ServerError,
    /// 503 with `Retry-After: 1`.
    Unavailable,
    /// 429 with `Retry-After: 1`.
    RateLimited,
    /// Hang for `hang_ms`, then 504 (the client should time out first).
    Timeout,
    /// Headers sent, then the connection is cut mid-body.
    Reset,
    /// Answer normally after `slow_ms`.
    Slow,
    /// Perform the write, then answer 500.
    CommitThenError,
    /// Perform the write, then hang like `Timeout`.
    CommitThenTimeout,
    /// Perform the write, then cut the connection.
    CommitThenReset,
}

impl FaultKind {
    pub const ALL: [FaultKind; 9] = [
        FaultKind::ServerError,
        FaultKind::Unavailable,
        FaultKind::RateLimited,
        FaultKind::Timeout,
        FaultKind::Reset,
        FaultKind::Slow,
        FaultKind::CommitThenError,
        FaultKind::CommitThenTimeout,
        FaultKind::CommitThenReset,
    ];
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// Probability that an API request gets a fault (0 = none).
    #[serde(default)]
    pub rate: f64,
    #[serde(default = "all_kinds")]
    pub kinds: Vec<FaultKind>,
    #[serde(default)]
    pub seed: u64,
    /// How long a `timeout` fault hangs.
    #[serde(default = "default_hang")]
    pub hang_ms: u64,
    /// How long a `slow` fault delays.
    #[serde(default = "default_slow")]
    pub slow_ms: u64,
}

fn all_kinds() -> Vec<FaultKind> {
    FaultKind::ALL.to_vec()
}
fn default_hang() -> u64 {
    5_000
}
fn default_slow() -> u64 {
    300
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            rate: 0.0,
            kinds: all_kinds(),
            seed: 0,
            hang_ms: default_hang(),
            slow_ms: default_slow(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Duplicates {
    /// Store a second copy, as Greenhouse and Lever do (and count it).
    Accept,
    /// Refuse with 422.
    Reject,
}

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub faults: FaultConfig,
    pub duplicates: Duplicates,
    pub token_ttl: Duration,
    /// File extensions the "organisation" blocks (Greenhouse feature), answered with 422.
    pub blocked_extensions: Vec<String>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            faults: FaultConfig::default(),
            duplicates: Duplicates::Accept,
            token_ttl: Duration::from_secs(3600),
            blocked_extensions: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GhAttachment {
    pub id: u64,
    pub application_id: u64,
    pub filename: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub visibility: String,
    pub size: usize,
    pub sha256: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GhApplication {
    pub attachments: Vec<GhAttachment>,
    pub custom_fields: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeverFile {
    pub id: String,
    pub name: String,
    pub size: usize,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeverNote {
    pub id: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LeverOpportunity {
    pub files: Vec<LeverFile>,
    pub notes: Vec<LeverNote>,
    /// The contact (person) the opportunity belongs to, when a test registered one.
    pub contact: Option<String>,
    /// Deleted by a Lever user (`DELETE /_sandbox/lever/opportunities/{id}`): the API answers
    /// 404 for it from then on.
    pub deleted: bool,
}

/// Everything the sandbox holds; `GET /_sandbox/state` returns it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    pub greenhouse: BTreeMap<u64, GhApplication>,
    /// Greenhouse candidates and applications a user deleted
    /// (`DELETE /_sandbox/greenhouse/{candidates|applications}/{id}`): no longer listed.
    pub greenhouse_deleted: BTreeSet<String>,
    pub lever: BTreeMap<String, LeverOpportunity>,
    /// Unique webhook messages by `webhook-id` → report id.
    pub webhooks: BTreeMap<String, String>,
    pub duplicate_writes: u64,
    pub webhook_redeliveries: u64,
    pub webhooks_rejected: u64,
    pub requests: u64,
    pub faults: BTreeMap<FaultKind, u64>,
    pub tokens_issued: u64,
}

struct Inner {
    cfg: SandboxConfig,
    rng: StdRng,
    data: Snapshot,
    tokens: HashMap<String, Instant>,
    next_id: u64,
    interviews: Vec<Value>,
}

#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Mutex<Inner>>,
    webhook_key: Arc<SecretBytes>,
}

impl Sandbox {
    pub fn new(cfg: SandboxConfig) -> Sandbox {
        let rng = StdRng::seed_from_u64(cfg.faults.seed);
        Sandbox {
            inner: Arc::new(Mutex::new(Inner {
                cfg,
                rng,
                data: Snapshot::default(),
                tokens: HashMap::new(),
                next_id: 1000,
                interviews: Vec::new(),
            })),
            webhook_key: Arc::new(
                super::config::decode_whsec(WEBHOOK_SECRET).expect("valid sandbox secret"),
            ),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshot(&self) -> Snapshot {
        self.lock().data.clone()
    }

    /// Schedules an interview in the sandbox Greenhouse (for `GET /v3/interviews`).
    pub fn add_interview(&self, id: u64, application_id: u64, start: &str, video_url: &str) {
        self.lock().interviews.push(json!({
            "id": id,
            "application_id": application_id,
            "start": {"date_time": start},
            "end": {"date_time": start},
            "status": "scheduled",
            "video_conferencing_url": video_url,
        }));
    }

    pub fn set_faults(&self, f: FaultConfig) {
        let mut g = self.lock();
        g.rng = StdRng::seed_from_u64(f.seed);
        g.cfg.faults = f;
    }

    /// Changes the blocked file extensions (e.g. to end a simulated policy block).
    pub fn set_blocked_extensions(&self, ext: Vec<String>) {
        self.lock().cfg.blocked_extensions = ext;
    }

    /// The HTTP routes. API routes sit behind the fault layer; `/_sandbox/*` never faults.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/token", post(gh_token))
            .route("/v3/attachments", get(gh_list).post(gh_create))
            .route("/v3/candidates", get(gh_list_candidates))
            .route("/v3/applications", get(gh_list_applications))
            .route("/v3/applications/{id}", patch(gh_patch))
            .route("/v3/interviews", get(gh_interviews))
            .route("/v1/opportunities", get(lever_list_opportunities))
            .route("/v1/opportunities/{id}", get(lever_get_opportunity))
            .route(
                "/v1/opportunities/{id}/files",
                get(lever_list_files).post(lever_upload),
            )
            .route(
                "/v1/opportunities/{id}/notes",
                get(lever_list_notes).post(lever_note),
            )
            .route("/webhooks/vigil", post(webhook_receive))
            .layer(axum::extract::DefaultBodyLimit::max(31 * 1024 * 1024))
            .layer(middleware::from_fn_with_state(self.clone(), faults));
        Router::new()
            .route("/_sandbox/state", get(state))
            .route("/_sandbox/faults", put(put_faults))
            .route(
                "/_sandbox/greenhouse/{kind}/{id}",
                axum::routing::delete(gh_user_deletes),
            )
            .route(
                "/_sandbox/lever/opportunities/{id}",
                put(lever_register).delete(lever_user_deletes),
            )
            .merge(api)
            .with_state(self.clone())
    }
}

/// Serves the sandbox on `listener` until `shutdown` completes.
pub async fn serve(
    sandbox: Sandbox,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, sandbox.router())
        .with_graceful_shutdown(shutdown)
        .await
}

async fn state(State(s): State<Sandbox>) -> Json<Snapshot> {
    Json(s.snapshot())
}

async fn put_faults(State(s): State<Sandbox>, Json(f): Json<FaultConfig>) -> StatusCode {
    s.set_faults(f);
    StatusCode::NO_CONTENT
}

fn reset_response() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox: injected reset",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .expect("static response")
}

fn retry_after(status: StatusCode) -> Response {
    let mut r = (status, Json(json!({"message": "Please retry later"}))).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

async fn faults(State(s): State<Sandbox>, req: Request, next: Next) -> Response {
    let (fault, hang, slow) = {
        let mut g = s.lock();
        g.data.requests += 1;
        let f = g.cfg.faults.clone();
        let fault = if f.rate > 0.0 && !f.kinds.is_empty() && g.rng.gen_bool(f.rate.min(1.0)) {
            let k = f.kinds[g.rng.gen_range(0..f.kinds.len())];
            *g.data.faults.entry(k).or_default() += 1;
            Some(k)
        } else {
            None
        };
        (
            fault,
            Duration::from_millis(f.hang_ms),
            Duration::from_millis(f.slow_ms),
        )
    };
    let hang_then_504 = || async move {
        tokio::time::sleep(hang).await;
        StatusCode::GATEWAY_TIMEOUT.into_response()
    };
    let request_id = format!("sbx-{:08}", s.lock().data.requests);
    let mut resp = match fault {
        None => next.run(req).await,
        Some(FaultKind::ServerError) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Some(FaultKind::Unavailable) => retry_after(StatusCode::SERVICE_UNAVAILABLE),
        Some(FaultKind::RateLimited) => retry_after(StatusCode::TOO_MANY_REQUESTS),
        Some(FaultKind::Timeout) => hang_then_504().await,
        Some(FaultKind::Reset) => reset_response(),
        Some(FaultKind::Slow) => {
            tokio::time::sleep(slow).await;
            next.run(req).await
        }
        Some(FaultKind::CommitThenError) => {
            let _ = next.run(req).await;
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Some(FaultKind::CommitThenTimeout) => {
            let _ = next.run(req).await;
            hang_then_504().await
        }
        Some(FaultKind::CommitThenReset) => {
            let _ = next.run(req).await;
            reset_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

// ------------------------------------------------------------------ Greenhouse ----

fn gh_error(status: StatusCode, message: &str, field: Option<&str>) -> Response {
    let body = match field {
        Some(f) => {
            json!({"message": "Validation error", "errors": [{"message": message, "field": f}]})
        }
        None => json!({"message": message}),
    };
    (status, Json(body)).into_response()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

async fn gh_token(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    body: axum::extract::Form<BTreeMap<String, String>>,
) -> Response {
    match basic_credentials(&headers) {
        Some((u, p)) if u == GREENHOUSE_CLIENT_ID && p == GREENHOUSE_CLIENT_SECRET => {}
        _ => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "invalid_client"})),
            )
                .into_response();
        }
    }
    if body.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    if body.get("sub").is_some_and(|s| s.parse::<u64>().is_err()) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "error_description": "sub must be a user id"})),
        )
            .into_response();
    }
    let mut g = s.lock();
    let ttl = g.cfg.token_ttl;
    let token = format!("gh_{:032x}", g.rng.r#gen::<u128>());
    g.tokens.insert(token.clone(), Instant::now() + ttl);
    g.data.tokens_issued += 1;
    let expires_at = crate::report::rfc3339(time::OffsetDateTime::now_utc() + ttl);
    Json(json!({"token_type": "Bearer", "access_token": token, "expires_at": expires_at}))
        .into_response()
}

fn gh_authorised(s: &Sandbox, headers: &HeaderMap) -> Result<(), Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let g = s.lock();
    match token.and_then(|t| g.tokens.get(t)) {
        Some(exp) if *exp > Instant::now() => Ok(()),
        _ => Err(gh_error(StatusCode::UNAUTHORIZED, "Unauthorized", None)),
    }
}

/// Test set-up: a Greenhouse user deletes a candidate or an application.
async fn gh_user_deletes(
    State(s): State<Sandbox>,
    Path((kind, id)): Path<(String, String)>,
) -> StatusCode {
    s.lock()
        .data
        .greenhouse_deleted
        .insert(format!("{kind}/{id}"));
    StatusCode::NO_CONTENT
}

/// `GET /v3/{candidates|applications}?ids=A,B`: the listed records that exist (any id the
/// sandbox was not told was deleted), as a bare array.
fn gh_list_ids(
    s: &Sandbox,
    headers: &HeaderMap,
    q: &BTreeMap<String, String>,
    kind: &str,
) -> Response {
    if let Err(r) = gh_authorised(s, headers) {
        return r;
    }
    let Some(ids) = q.get("ids") else {
        return gh_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ids is required",
            Some("ids"),
        );
    };
    let g = s.lock();
    let listed: Vec<Value> = ids
        .split(',')
        .filter(|id| !id.is_empty() && !g.data.greenhouse_deleted.contains(&format!("{kind}/{id}")))
        .map(|id| json!({"id": id.parse::<u64>().map_or(json!(id), |n| json!(n))}))
        .collect();
    Json(listed).into_response()
}

async fn gh_list_candidates(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    gh_list_ids(&s, &headers, &q, "candidates")
}

async fn gh_list_applications(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    gh_list_ids(&s, &headers, &q, "applications")
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    application_ids: Vec<u64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    per_page: usize,
    offset: usize,
}

fn attachment_json(a: &GhAttachment) -> Value {
    json!({
        "id": a.id,
        "application_id": a.application_id,
        "filename": a.filename,
        "type": a.kind,
        "visibility": a.visibility,
        "url": format!("https://sandbox.invalid/attachments/{}?expires=604800", a.id),
        "created_at": a.created_at,
    })
}

async fn gh_list(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = gh_authorised(&s, &headers) {
        return r;
    }
    let cursor = if let Some(c) = q.get("cursor") {
        if q.len() > 1 {
            return gh_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "cursor must be the only query parameter",
                Some("cursor"),
            );
        }
        match base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| serde_json::from_slice::<Cursor>(&b).ok())
        {
            Some(c) => c,
            None => {
                return gh_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid cursor",
                    Some("cursor"),
                );
            }
        }
    } else {
        for k in q.keys() {
            if ![
                "application_ids",
                "type",
                "per_page",
                "candidate_ids",
                "ids",
            ]
            .contains(&k.as_str())
            {
                return gh_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unknown query parameter",
                    Some(k),
                );
            }
        }
        let per_page = match q.get("per_page").map(|p| p.parse::<usize>()) {
            None => 100,
            Some(Ok(n)) if (1..=500).contains(&n) => n,
            _ => {
                return gh_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "per_page must be 1..500",
                    Some("per_page"),
                );
            }
        };
        let ids: Result<Vec<u64>, _> = q
            .get("application_ids")
            .map(|v| v.split(',').map(|x| x.trim().parse::<u64>()).collect())
            .unwrap_or(Ok(Vec::new()));
        let Ok(application_ids) = ids else {
            return gh_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "application_ids must be integers",
                Some("application_ids"),
            );
        };
        if application_ids.len() > 50 {
            return gh_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "at most 50 application_ids",
                Some("application_ids"),
            );
        }
        Cursor {
            application_ids,
            kind: q.get("type").cloned(),
            per_page,
            offset: 0,
        }
    };
    let g = s.lock();
    let all: Vec<&GhAttachment> = g
        .data
        .greenhouse
        .iter()
        .filter(|(id, _)| cursor.application_ids.is_empty() || cursor.application_ids.contains(id))
        .flat_map(|(_, a)| a.attachments.iter())
        .filter(|a| cursor.kind.as_ref().is_none_or(|k| &a.kind == k))
        .collect();
    let page: Vec<Value> = all
        .iter()
        .skip(cursor.offset)
        .take(cursor.per_page)
        .map(|a| attachment_json(a))
        .collect();
    let mut resp = Json(Value::Array(page)).into_response();
    if cursor.offset + cursor.per_page < all.len() {
        let next = Cursor {
            offset: cursor.offset + cursor.per_page,
            ..cursor
        };
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&next).expect("cursor serialises"));
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let link = format!("<http://{host}/v3/attachments?cursor={token}>; rel=\"next\"");
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    resp
}

const GH_TYPES: [&str; 10] = [
    "resume",
    "cover_letter",
    "take_home_test",
    "offer_packet",
    "offer_letter",
    "signed_offer_letter",
    "midfunnel_agreement",
    "automated_agreement",
    "form_attachment",
    "other",
];

async fn gh_create(State(s): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = gh_authorised(&s, &headers) {
        return r;
    }
    let invalid = |m: &str, f: &str| gh_error(StatusCode::UNPROCESSABLE_ENTITY, m, Some(f));
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(&body) else {
        return gh_error(StatusCode::BAD_REQUEST, "body must be a JSON object", None);
    };
    for k in o.keys() {
        if ![
            "application_id",
            "filename",
            "type",
            "content",
            "url",
            "visibility",
        ]
        .contains(&k.as_str())
        {
            return invalid("unknown field", k);
        }
    }
    let Some(app) = o.get("application_id").and_then(Value::as_u64) else {
        return invalid("must be an integer", "application_id");
    };
    let Some(filename) = o.get("filename").and_then(Value::as_str) else {
        return invalid("is required", "filename");
    };
    let Some((_, ext)) = filename
        .rsplit_once('.')
        .filter(|(b, e)| !b.is_empty() && !e.is_empty())
    else {
        return invalid("must include an extension", "filename");
    };
    let kind = o.get("type").and_then(Value::as_str).unwrap_or("");
    if !GH_TYPES.contains(&kind) {
        return invalid("is not a valid attachment type", "type");
    }
    let content = match (o.get("content"), o.get("url")) {
        (Some(Value::String(c)), None) => {
            match base64::engine::general_purpose::STANDARD.decode(c) {
                Ok(b) => b,
                Err(_) => return invalid("must be base64", "content"),
            }
        }
        (None, Some(Value::String(_))) => Vec::new(),
        _ => return invalid("exactly one of content or url is required", "content"),
    };
    let visibility = match o.get("visibility").map(|v| v.as_str()) {
        None => "admin_only",
        Some(Some(v @ ("public" | "private" | "admin_only"))) => v,
        Some(_) => return invalid("must be public, private or admin_only", "visibility"),
    };
    let mut g = s.lock();
    if g.cfg
        .blocked_extensions
        .iter()
        .any(|b| b.eq_ignore_ascii_case(ext))
    {
        return invalid(
            "this file extension is blocked by your organization",
            "filename",
        );
    }
    let duplicate = g
        .data
        .greenhouse
        .get(&app)
        .is_some_and(|a| a.attachments.iter().any(|x| x.filename == filename));
    if duplicate {
        if g.cfg.duplicates == Duplicates::Reject {
            return invalid(
                "an attachment with this filename already exists",
                "filename",
            );
        }
        g.data.duplicate_writes += 1;
    }
    g.next_id += 1;
    let a = GhAttachment {
        id: g.next_id,
        application_id: app,
        filename: filename.to_owned(),
        kind: kind.to_owned(),
        visibility: visibility.to_owned(),
        size: content.len(),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&content)),
        created_at: crate::report::now_rfc3339(),
    };
    let out = attachment_json(&a);
    g.data
        .greenhouse
        .entry(app)
        .or_default()
        .attachments
        .push(a);
    (StatusCode::CREATED, Json(out)).into_response()
}

async fn gh_patch(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = gh_authorised(&s, &headers) {
        return r;
    }
    let Ok(app) = id.parse::<u64>() else {
        return gh_error(StatusCode::NOT_FOUND, "Resource not found", None);
    };
    let invalid = |m: &str, f: &str| gh_error(StatusCode::UNPROCESSABLE_ENTITY, m, Some(f));
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(&body) else {
        return gh_error(StatusCode::BAD_REQUEST, "body must be a JSON object", None);
    };
    if let Some(k) = o.keys().find(|k| k.as_str() != "custom_fields") {
        return invalid("unknown or unsupported field in this sandbox", k);
    }
    let Some(Value::Array(fields)) = o.get("custom_fields") else {
        return invalid(
            "must be an array of {id | name_key, value}",
            "custom_fields",
        );
    };
    let mut updates = Vec::new();
    for f in fields {
        let Some(f) = f.as_object() else {
            return invalid("each entry must be an object", "custom_fields");
        };
        if f.keys()
            .any(|k| !["id", "name_key", "value", "delete_value"].contains(&k.as_str()))
        {
            return invalid("unknown key in a custom field entry", "custom_fields");
        }
        let key = match (f.get("id").and_then(Value::as_u64), f.get("name_key")) {
            (Some(id), None) => id.to_string(),
            (None, Some(Value::String(k))) => k.clone(),
            _ => {
                return invalid(
                    "each entry needs exactly one of id or name_key",
                    "custom_fields",
                );
            }
        };
        let Some(v) = f.get("value") else {
            return invalid("value is required", "custom_fields");
        };
        updates.push((key, v.clone()));
    }
    let mut g = s.lock();
    let a = g.data.greenhouse.entry(app).or_default();
    for (k, v) in updates {
        a.custom_fields.insert(k, v);
    }
    let cf = a.custom_fields.clone();
    Json(json!({"id": app, "custom_fields": cf})).into_response()
}

/// `GET /v3/interviews?starts_at=gte|T[&per_page=N]`: bare array (no pagination needed for the
/// sandbox's handful; a `cursor` is refused like Greenhouse does with other parameters).
async fn gh_interviews(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = gh_authorised(&s, &headers) {
        return r;
    }
    for k in q.keys() {
        if !["starts_at", "per_page", "application_ids"].contains(&k.as_str()) {
            return gh_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown query parameter",
                Some(k),
            );
        }
    }
    let since = match q.get("starts_at") {
        None => None,
        Some(v) => match v.split_once('|') {
            Some(("gte", t)) => Some(t.to_owned()),
            _ => {
                return gh_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "expected starts_at=gte|<RFC 3339>",
                    Some("starts_at"),
                );
            }
        },
    };
    let g = s.lock();
    let list: Vec<Value> = g
        .interviews
        .iter()
        .filter(|i| {
            since
                .as_deref()
                .is_none_or(|t| i["start"]["date_time"].as_str().is_some_and(|st| st >= t))
        })
        .cloned()
        .collect();
    Json(Value::Array(list)).into_response()
}

// ------------------------------------------------------------------ Lever ----

fn lever_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

fn lever_authorised(headers: &HeaderMap) -> Result<(), Response> {
    match basic_credentials(headers) {
        Some((u, _)) if u == LEVER_API_KEY => Ok(()),
        _ => Err(lever_error(
            StatusCode::UNAUTHORIZED,
            "UnauthorizedError",
            "Invalid API key",
        )),
    }
}

fn perform_as(q: &BTreeMap<String, String>) -> Result<(), Response> {
    match q.get("perform_as") {
        Some(u) if !u.is_empty() => Ok(()),
        _ => Err(lever_error(
            StatusCode::BAD_REQUEST,
            "BadRequestError",
            "perform_as is required for this request",
        )),
    }
}

fn lever_page<T: Serialize>(items: &[T], q: &BTreeMap<String, String>) -> Response {
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 100);
    let offset = q
        .get("offset")
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    let page: Vec<&T> = items.iter().skip(offset).take(limit).collect();
    let has_next = offset + limit < items.len();
    let mut body = json!({"data": page, "hasNext": has_next});
    if has_next {
        body["next"] = Value::String((offset + limit).to_string());
    }
    Json(body).into_response()
}

async fn lever_upload(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Path(opp): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    mut multipart: Multipart,
) -> Response {
    if let Err(r) = lever_authorised(&headers).and_then(|_| perform_as(&q)) {
        return r;
    }
    let mut file = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(f)) => {
                if f.name() != Some("file") {
                    continue;
                }
                let name = f.file_name().unwrap_or("").to_owned();
                match f.bytes().await {
                    Ok(b) => file = Some((name, b)),
                    Err(_) => {
                        return lever_error(
                            StatusCode::BAD_REQUEST,
                            "BadRequestError",
                            "unreadable multipart body",
                        );
                    }
                }
            }
            Ok(None) => break,
            Err(_) => {
                return lever_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequestError",
                    "unreadable multipart body",
                );
            }
        }
    }
    let Some((name, bytes)) = file.filter(|(n, _)| !n.is_empty()) else {
        return lever_error(
            StatusCode::BAD_REQUEST,
            "BadRequestError",
            "a multipart part named 'file' with a filename is required",
        );
    };
    if bytes.len() > super::lever::MAX_FILE_BYTES {
        return lever_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "files are limited to 30 MB",
        );
    }
    let mut g = s.lock();
    if g.data
        .lever
        .get(&opp)
        .is_some_and(|o| o.files.iter().any(|f| f.name == name))
    {
        if g.cfg.duplicates == Duplicates::Reject {
            return lever_error(
                StatusCode::CONFLICT,
                "ConflictError",
                "a file with this name exists",
            );
        }
        g.data.duplicate_writes += 1;
    }
    g.next_id += 1;
    let f = LeverFile {
        id: format!("{:08x}-sandbox-file", g.next_id),
        name: name.clone(),
        size: bytes.len(),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
    };
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let out = json!({"data": {
        "id": f.id, "name": f.name, "ext": ext, "size": f.size, "status": "processed",
        "uploadedAt": time::OffsetDateTime::now_utc().unix_timestamp() * 1000,
        "downloadUrl": format!("/v1/opportunities/{opp}/files/{}/download", f.id),
    }});
    g.data.lever.entry(opp).or_default().files.push(f);
    Json(out).into_response()
}

/// Test set-up: an opportunity of a contact (body `{"contact": "C"}`).
async fn lever_register(
    State(s): State<Sandbox>,
    Path(opp): Path<String>,
    Json(body): Json<Value>,
) -> StatusCode {
    let contact = body["contact"].as_str().map(str::to_owned);
    s.lock().data.lever.entry(opp).or_default().contact = contact;
    StatusCode::NO_CONTENT
}

/// Test set-up: a Lever user deletes the opportunity (its files and notes go with it).
async fn lever_user_deletes(State(s): State<Sandbox>, Path(opp): Path<String>) -> StatusCode {
    let mut g = s.lock();
    let o = g.data.lever.entry(opp).or_default();
    o.files.clear();
    o.notes.clear();
    o.deleted = true;
    StatusCode::NO_CONTENT
}

/// `GET /v1/opportunities/{id}`: `{data: {id, contact}}`, or 404 once deleted. Ids the sandbox
/// has not seen exist (opportunities are created by the tests' uploads as they go).
async fn lever_get_opportunity(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Path(opp): Path<String>,
) -> Response {
    if let Err(r) = lever_authorised(&headers) {
        return r;
    }
    let g = s.lock();
    match g.data.lever.get(&opp) {
        Some(o) if o.deleted => lever_error(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            "Opportunity not found",
        ),
        o => Json(json!({"data": {"id": opp, "contact": o.and_then(|o| o.contact.clone())}}))
            .into_response(),
    }
}

/// `GET /v1/opportunities?contact_id=C`: the contact's opportunities that are not deleted.
async fn lever_list_opportunities(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = lever_authorised(&headers) {
        return r;
    }
    let g = s.lock();
    let contact = q.get("contact_id");
    let items: Vec<Value> = g
        .data
        .lever
        .iter()
        .filter(|(_, o)| !o.deleted && contact.is_none_or(|c| o.contact.as_ref() == Some(c)))
        .map(|(id, o)| json!({"id": id, "contact": o.contact}))
        .collect();
    lever_page(&items, &q)
}

/// Lists one kind of item of an opportunity (Lever's `{data, hasNext, next}` pages).
fn lever_list<T: Serialize>(
    s: &Sandbox,
    headers: &HeaderMap,
    opp: &str,
    q: &BTreeMap<String, String>,
    items: fn(&LeverOpportunity) -> &[T],
) -> Response {
    if let Err(r) = lever_authorised(headers) {
        return r;
    }
    let g = s.lock();
    lever_page(g.data.lever.get(opp).map(items).unwrap_or(&[]), q)
}

async fn lever_list_files(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Path(opp): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    lever_list(&s, &headers, &opp, &q, |o| &o.files)
}

async fn lever_note(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Path(opp): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Err(r) = lever_authorised(&headers).and_then(|_| perform_as(&q)) {
        return r;
    }
    let bad = |m: &str| lever_error(StatusCode::BAD_REQUEST, "BadRequestError", m);
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(&body) else {
        return bad("body must be a JSON object");
    };
    if o.keys().any(|k| {
        !["value", "secret", "score", "notifyFollowers", "createdAt"].contains(&k.as_str())
    }) {
        return bad("unknown field");
    }
    let Some(value) = o
        .get("value")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
    else {
        return bad("value is required");
    };
    let mut g = s.lock();
    g.next_id += 1;
    let n = LeverNote {
        id: format!("{:08x}-sandbox-note", g.next_id),
        value: value.to_owned(),
    };
    let out = json!({"data": {"id": n.id}});
    g.data.lever.entry(opp).or_default().notes.push(n);
    Json(out).into_response()
}

/// Notes as Lever lists them: the text in `text` and in `fields[].value`, never at the top
/// level (a client that looks for a top-level `value` finds nothing and posts twice).
async fn lever_list_notes(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Path(opp): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = lever_authorised(&headers) {
        return r;
    }
    let g = s.lock();
    let notes: Vec<Value> = g
        .data
        .lever
        .get(&opp)
        .map(|o| o.notes.as_slice())
        .unwrap_or(&[])
        .iter()
        .map(|n| {
            json!({"id": n.id, "text": n.value, "secret": false,
                "fields": [{"type": "note", "text": "", "value": n.value}]})
        })
        .collect();
    lever_page(&notes, &q)
}

// ------------------------------------------------------------------ webhook receiver ----

async fn webhook_receive(State(s): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Err(e) = webhook::verify(
        &s.webhook_key,
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
        &body,
        now,
    ) {
        s.lock().data.webhooks_rejected += 1;
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": e.to_string()})),
        )
            .into_response();
    }
    let id = h("webhook-id").unwrap_or_default().to_owned();
    if h("idempotency-key") != Some(id.as_str()) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "Idempotency-Key must be present and equal webhook-id"})),
        )
            .into_response();
    }
    let report = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["data"]["report_id"].as_str().map(str::to_owned));
    let Some(report) = report else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "data.report_id missing"})),
        )
            .into_response();
    };
    let mut g = s.lock();
    match g.data.webhooks.entry(id) {
        std::collections::btree_map::Entry::Vacant(e) => {
            e.insert(report);
        }
        std::collections::btree_map::Entry::Occupied(_) => g.data.webhook_redeliveries += 1,
    }
    StatusCode::NO_CONTENT.into_response()
}
