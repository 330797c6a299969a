//! `vigil serve`: the HTTP server meeting-platform bots drive. A bot creates a session, sends its
//! media (a recorded file in resumable chunks, a live WebM/Matroska stream, or a URL Vigil
//! pulls), and ends it; the analysis runs while the media arrives, so the signed report is in the
//! outbox moments after the end. The ATS webhook and stage-gate routes of `vigil ats listen`
//! are served too, and the outbox worker delivers reports (ATS and signed webhooks).
//!
//! ```text
//! bot ──HTTP──▶ api (auth, limits) ──fsync──▶ spool file ──appsrc──▶ session thread: pipeline::score
//!                                   └──────▶ SQLite (sessions, offsets)          │ sign, render
//!                                                          outbox ◀──────────────┘ → ATS worker
//! ```

pub mod api;
pub mod auth;
pub mod config;
pub mod listen;
pub mod problem;
pub mod session;

use crate::ats::inbound::{self, InboundState};
use crate::ats::metrics;
use axum::Router;
use axum::extract::State as AxState;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use config::ServeConfig;
use problem::Problem;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use session::Sessions;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// The OpenAPI 3.1 description of this server's routes (served at `/openapi.json`).
pub const OPENAPI: &str = include_str!("openapi.json");

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub sessions: Arc<Sessions>,
    pub limiter: Arc<auth::RateLimiter>,
    pub inbound: InboundState,
}

impl AppState {
    /// `http` is the client used to confirm ATS deletions with the vendor's API.
    pub fn new(sessions: Arc<Sessions>, http: reqwest::Client) -> AppState {
        let cfg = sessions.cfg.clone();
        AppState {
            limiter: Arc::new(auth::RateLimiter::new(cfg.requests_per_minute)),
            inbound: InboundState {
                store: sessions.store.clone(),
                config: Arc::new(cfg.ats.clone()),
                http,
            },
            sessions,
        }
    }
}

/// Every route, as (method, path) — the OpenAPI document must describe exactly these.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/sessions"),
    ("get", "/v1/sessions/{id}"),
    ("head", "/v1/sessions/{id}/media"),
    ("patch", "/v1/sessions/{id}/media"),
    ("put", "/v1/sessions/{id}/stream"),
    ("post", "/v1/sessions/{id}/end"),
    ("get", "/v1/sessions/{id}/report"),
    ("get", "/v1/sessions/{id}/report.html"),
    ("get", "/openapi.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/ats/{tenant}/greenhouse/webhook"),
    ("post", "/ats/{tenant}/lever/webhook"),
    ("get", "/ats/{tenant}/gate/{application}"),
];

/// Deadline of a whole request on the routes with small bodies (session creation, end, the ATS
/// webhooks).
pub const SMALL_REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

pub fn router(state: AppState) -> Router {
    let inbound = state.inbound.clone();
    // Routes with small JSON bodies must arrive whole within the deadline (a trickled body
    // holds a task otherwise); uploads and streams are bounded by the session's idle timeout.
    let small = || listen::body_timeout(SMALL_REQUEST_DEADLINE);
    Router::new()
        .route("/v1/sessions", post(api::create).layer(small()))
        .route("/v1/sessions/{id}", get(api::status))
        .route(
            "/v1/sessions/{id}/media",
            axum::routing::patch(api::upload_chunk).head(api::media_offset),
        )
        .route("/v1/sessions/{id}/stream", put(api::stream))
        .route("/v1/sessions/{id}/end", post(api::end).layer(small()))
        .route("/v1/sessions/{id}/report", get(api::report))
        .route("/v1/sessions/{id}/report.html", get(api::report_html))
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            Problem::new(StatusCode::NOT_FOUND, "no such route", "see /openapi.json")
        })
        .with_state(state)
        .merge(inbound::ats_routes(inbound))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Ready when not shutting down, the store answers and a session slot is free.
async fn readyz(AxState(st): AxState<AppState>) -> Response {
    if st.sessions.is_shutting_down() {
        return Problem::unavailable("shutting down", std::time::Duration::from_secs(5))
            .into_response();
    }
    let ok = st
        .sessions
        .store
        .run(|s| s.live_session_counts())
        .await
        .is_ok();
    if !ok {
        return Problem::unavailable(
            "the store is not answering",
            std::time::Duration::from_secs(5),
        )
        .into_response();
    }
    let active = st.sessions.active_all().len();
    if active >= st.sessions.cfg.max_sessions {
        return Problem::unavailable(
            format!("{active} sessions active, the maximum"),
            std::time::Duration::from_secs(30),
        )
        .into_response();
    }
    "ready".into_response()
}

async fn metrics(AxState(st): AxState<AppState>, headers: axum::http::HeaderMap) -> Response {
    // With `metrics_token_sha256` set, the scraper must present that token.
    if let Some(hash) = &st.sessions.cfg.metrics_token_sha256 {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if crate::ats::token::find(std::slice::from_ref(hash), |h| h, presented).is_none() {
            return Problem::unauthorized().into_response();
        }
    }
    let found = st
        .sessions
        .store
        .call(|s| Ok::<_, crate::store::StoreError>((s.metrics()?, s.live_session_counts()?)))
        .await;
    let (ats, counts) = match found {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return Problem::from(e).into_response(),
        Err(e) => return Problem::internal(e).into_response(),
    };
    let mut reg = Registry::default();
    metrics::register_store(&mut reg, &ats);
    let sessions = metrics::by_label("state", counts.iter().map(|(s, n)| (s.as_str(), *n)));
    reg.register("vigil_serve_sessions", "Sessions by state", sessions);
    let active = st.sessions.active_all();
    let lag = active
        .iter()
        .filter_map(|a| a.lag_s())
        .fold(0.0f64, f64::max);
    let backlog: u64 = active.iter().map(|a| a.spool.backlog()).sum();
    let finalizing = active.iter().filter(|a| a.spool.is_ended()).count();
    for (name, help, v) in [
        (
            "vigil_serve_active_sessions",
            "Admitted sessions (receiving or finalizing)",
            active.len() as i64,
        ),
        (
            "vigil_serve_max_sessions",
            "Admission limit",
            st.sessions.cfg.max_sessions as i64,
        ),
        (
            "vigil_serve_analysis_backlog_bytes",
            "Received media not yet taken by the decoders",
            backlog as i64,
        ),
        (
            "vigil_serve_analysis_finalizing",
            "Sessions ended and being finalised",
            finalizing as i64,
        ),
    ] {
        reg.register(name, help, metrics::gauge(v));
    }
    let lag_gauge = Gauge::<f64, AtomicU64>::default();
    lag_gauge.set(lag);
    reg.register(
        "vigil_serve_ingest_lag_seconds",
        "Largest lag of a live session's analysis behind real time",
        lag_gauge,
    );
    let stats = &st.sessions.stats;
    reg.register(
        "vigil_serve_admission_refused",
        "Session requests refused with 503 (limit or shutdown)",
        stats.admission_refused.clone(),
    );
    reg.register(
        "vigil_serve_rate_limited",
        "Requests refused with 429",
        stats.rate_limited.clone(),
    );
    reg.register(
        "vigil_serve_report_latency_seconds",
        "From the end of a session to its signed report in the outbox",
        stats.latency.clone(),
    );
    match metrics::encode(&reg) {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => Problem::internal(e).into_response(),
    }
}

/// Why `vigil serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] crate::ats::config::ConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("signing key: {0} (create one with `vigil keygen`)")]
    Key(#[from] crate::report::keys::KeyError),
    #[error("policy: {0}")]
    Policy(#[from] crate::scoring::policy::PolicyError),
    #[error("cannot create the spool directory {path}: {source}")]
    Spool {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("resuming interrupted sessions: {0}")]
    Recover(#[from] session::SessionError),
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Opens the store, loads the key and policy, resumes interrupted sessions: everything a
/// server (or a test) needs before it listens.
pub fn prepare(cfg: ServeConfig) -> Result<AppState, ServeError> {
    let key_path = match &cfg.signing_key {
        Some(p) => p.clone(),
        None => crate::report::keys::default_key_path()?,
    };
    let key = crate::report::keys::read_signing_key(&key_path)?;
    let policy = match &cfg.policy {
        Some(p) => crate::scoring::Policy::load(p)?,
        None => crate::scoring::Policy::default(),
    };
    std::fs::create_dir_all(&cfg.spool_dir).map_err(|source| ServeError::Spool {
        path: cfg.spool_dir.clone(),
        source,
    })?;
    let store = crate::store::Shared::open(&cfg.ats.store_path)?;
    let http = crate::ats::http_client(cfg.ats.delivery.request_timeout)?;
    let sessions = Sessions::new(Arc::new(cfg), store, key, policy);
    let (resumed, lost) = sessions.recover()?;
    if resumed + lost > 0 {
        tracing::warn!(
            resumed,
            interrupted = lost,
            "sessions left by the previous run"
        );
    }
    Ok(AppState::new(sessions, http))
}
