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

mod greenhouse;
mod lever;

use greenhouse::*;
use lever::*;

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
