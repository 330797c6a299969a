//! `vigil serve`: router tests (auth, tenant isolation, limits, problem details, OpenAPI), bot
//! simulators that upload a real recording in chunks and stream one live over TCP, bad input
//! mid-stream, disconnects, admission, and a restart that resumes a half-received session.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::{Duration, Instant};
use tower::ServiceExt;
use vigil::report::dsse::{self, Envelope};
use vigil::report::{Report, keys};
use vigil::server::{self, AppState, config::ServeConfig};

const TOKEN_A: &str = "vgl_test-token-for-acme-bot-0123456789abcdef";
const TOKEN_B: &str = "vgl_test-token-for-globex-bot-0123456789abcd";

fn testdata(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

struct Env {
    dir: tempfile::TempDir,
    state: AppState,
}

fn write_config(dir: &Path, max_sessions: usize, extra: &str) -> ServeConfig {
    use std::os::unix::fs::PermissionsExt;
    let ats = dir.join("ats.toml");
    std::fs::write(
        &ats,
        format!(
            "[store]\npath = \"vigil.db\"\n\n[[tenants]]\nid = \"acme\"\n[tenants.webhook]\nurl = \"http://127.0.0.1:9/hooks\"\nsecret = \"{}\"\n\n[[tenants]]\nid = \"globex\"\n[tenants.webhook]\nurl = \"http://127.0.0.1:9/hooks\"\nsecret = \"{}\"\n",
            vigil::ats::sandbox::WEBHOOK_SECRET,
            vigil::ats::sandbox::WEBHOOK_SECRET
        ),
    )
    .unwrap();
    std::fs::set_permissions(&ats, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key = dir.join("key.pem");
    if !key.exists() {
        keys::generate(&key, false).unwrap();
    }
    let h = |t: &str| hex::encode(Sha256::digest(t.as_bytes()));
    let text = format!(
        "ats = \"ats.toml\"\nsigning_key = \"key.pem\"\nmax_sessions = {max_sessions}\nmax_chunk_bytes = 262144\nmax_media_bytes = 8000000\ndeliver = false\n{extra}\n\
         [[tokens]]\nname = \"bot-a\"\ntenant = \"acme\"\nsha256 = \"{}\"\n\n[[tokens]]\nname = \"bot-b\"\ntenant = \"globex\"\nsha256 = \"{}\"\n",
        h(TOKEN_A),
        h(TOKEN_B)
    );
    std::fs::write(dir.join("serve.toml"), &text).unwrap();
    ServeConfig::parse(&text, &dir.join("serve.toml"), Vec::new()).unwrap()
}

fn env(max_sessions: usize) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), max_sessions, "");
    let state = server::prepare(cfg).unwrap();
    Env { dir, state }
}

fn consent() -> Value {
    json!({"recorded_at": "2026-11-23T10:00:00Z", "method": "meeting_bot_prompt", "text_version": "v3"})
}

fn create_body(source: &str) -> Value {
    json!({
        "application_id": "app-1", "candidate_id": "cand-1", "interview_id": "int-1",
        "department": "Engineering", "consent": consent(),
        "media": {"source": source, "filename": "interview.mp4"}
    })
}

async fn call(
    state: &AppState,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let resp = server::router(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

fn json_of(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or(Value::Null)
}

fn post_json(path: &str, token: Option<&str>, body: &Value) -> Request<Body> {
    let mut r = Request::post(path).header("content-type", "application/json");
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(Body::from(body.to_string())).unwrap()
}

fn get(path: &str, token: &str) -> Request<Body> {
    Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

fn patch(path: &str, token: &str, offset: u64, bytes: Vec<u8>) -> Request<Body> {
    Request::patch(path)
        .header("authorization", format!("Bearer {token}"))
        .header("upload-offset", offset.to_string())
        .header("content-type", "application/octet-stream")
        .body(Body::from(bytes))
        .unwrap()
}

async fn create(state: &AppState, token: &str, body: &Value) -> String {
    let (s, h, b) = call(state, post_json("/v1/sessions", Some(token), body)).await;
    assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
    let v = json_of(&b);
    assert_eq!(
        h["location"],
        format!("/v1/sessions/{}", v["id"].as_str().unwrap()).as_str()
    );
    assert_eq!(v["state"], "receiving");
    v["id"].as_str().unwrap().to_string()
}

async fn wait_final(state: &AppState, token: &str, id: &str) -> Value {
    let t0 = Instant::now();
    loop {
        let (s, _, b) = call(state, get(&format!("/v1/sessions/{id}"), token)).await;
        assert_eq!(s, StatusCode::OK);
        let v = json_of(&b);
        if !["receiving", "finalizing"].contains(&v["state"].as_str().unwrap()) {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "session never finished: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `path` disappears: the session thread deletes a session's media just after it
/// records the final state the API reports, so a test that saw that state waits for it (up to
/// 30 s; a deadline for slow machines, not a measured time).
async fn gone(path: &std::path::Path) -> bool {
    for _ in 0..300 {
        if !path.exists() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn assert_problem(
    status: StatusCode,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    want: StatusCode,
) -> Value {
    assert_eq!(status, want, "{}", String::from_utf8_lossy(body));
    assert_eq!(headers["content-type"], "application/problem+json");
    let v = json_of(body);
    assert_eq!(v["status"], want.as_u16());
    assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()));
    v
}

/// Verifies a report envelope with the server key in `dir` and parses its payload.
fn verified(dir: &Path, envelope: &[u8]) -> Report {
    let env: Envelope = serde_json::from_slice(envelope).unwrap();
    let pubkey = keys::read_verifying_key(&keys::public_path_for(&dir.join("key.pem"))).unwrap();
    let payload = dsse::verify(&env, &pubkey).expect("the server's report verifies offline");
    Report::from_payload(&payload).unwrap()
}

/// Creates a session over HTTP as a bot does; returns its id.
async fn create_over_http(http: &reqwest::Client, base: &str, source: &str) -> String {
    let created: Value = http
        .post(format!("{base}/v1/sessions"))
        .header("authorization", format!("Bearer {TOKEN_A}"))
        .json(&create_body(source))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"].as_str().unwrap().to_string()
}

/// The report a session produced, verified with the server's public key.
async fn fetch_report(e: &Env, token: &str, id: &str) -> Report {
    let (s, _, b) = call(&e.state, get(&format!("/v1/sessions/{id}/report"), token)).await;
    assert_eq!(s, StatusCode::OK);
    verified(e.dir.path(), &b)
}

#[tokio::test]
async fn auth_is_required_and_tokens_never_cross_tenants() {
    let e = env(4);
    let st = &e.state;
    // No token, a wrong token, a token without the scheme: 401 problem details.
    for auth in [None, Some("vgl_wrong"), Some("")] {
        let (s, h, b) = call(st, post_json("/v1/sessions", auth, &create_body("upload"))).await;
        assert_problem(s, &h, &b, StatusCode::UNAUTHORIZED);
    }
    let id = create(st, TOKEN_A, &create_body("upload")).await;
    // The other tenant's bot sees nothing: not its status, media offset, report or end.
    for req in [
        get(&format!("/v1/sessions/{id}"), TOKEN_B),
        get(&format!("/v1/sessions/{id}/report"), TOKEN_B),
        post_json(&format!("/v1/sessions/{id}/end"), Some(TOKEN_B), &json!({})),
        patch(&format!("/v1/sessions/{id}/media"), TOKEN_B, 0, vec![0; 10]),
    ] {
        let (s, h, b) = call(st, req).await;
        let p = assert_problem(s, &h, &b, StatusCode::NOT_FOUND);
        assert!(!p.to_string().contains("acme"), "{p}");
    }
    let (s, _, b) = call(st, get(&format!("/v1/sessions/{id}"), TOKEN_A)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json_of(&b)["id"], id.as_str());
}

#[tokio::test]
async fn bad_requests_get_precise_problems() {
    let e = env(4);
    let st = &e.state;
    let mut no_consent = create_body("upload");
    no_consent.as_object_mut().unwrap().remove("consent");
    let mut bad_consent = create_body("upload");
    bad_consent["consent"]["recorded_at"] = json!("yesterday");
    let mut unknown = create_body("upload");
    unknown["surprise"] = json!(1);
    let url_disabled = json!({"application_id": "a", "consent": consent(), "media": {"source": "url", "url": "https://media.example.com/x.mp4"}});
    for (body, needle) in [
        (no_consent, "consent"),
        (bad_consent, "consent"),
        (unknown, "surprise"),
        (url_disabled, "disabled"),
    ] {
        let (s, h, b) = call(st, post_json("/v1/sessions", Some(TOKEN_A), &body)).await;
        let p = assert_problem(s, &h, &b, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(p["detail"].as_str().unwrap().contains(needle), "{p}");
    }
    let (s, h, b) = call(
        st,
        Request::post("/v1/sessions")
            .header("authorization", format!("Bearer {TOKEN_A}"))
            .body(Body::from("{not json"))
            .unwrap(),
    )
    .await;
    assert_problem(s, &h, &b, StatusCode::UNPROCESSABLE_ENTITY);

    let id = create(st, TOKEN_A, &create_body("upload")).await;
    let media = format!("/v1/sessions/{id}/media");
    // A chunk over max_chunk_bytes (256 KiB here): 413, nothing stored.
    let (s, h, b) = call(st, patch(&media, TOKEN_A, 0, vec![0; 300_000])).await;
    assert_problem(s, &h, &b, StatusCode::PAYLOAD_TOO_LARGE);
    // A chunk at the wrong offset: 409 with the offset to resume from.
    let (s, h, b) = call(st, patch(&media, TOKEN_A, 5, vec![0; 10])).await;
    assert_problem(s, &h, &b, StatusCode::CONFLICT);
    assert_eq!(h["upload-offset"], "0");
    // Missing offset header, live endpoint on an upload session, ending with no media.
    let (s, h, b) = call(
        st,
        Request::patch(&media)
            .header("authorization", format!("Bearer {TOKEN_A}"))
            .body(Body::from(vec![1u8; 4]))
            .unwrap(),
    )
    .await;
    assert_problem(s, &h, &b, StatusCode::BAD_REQUEST);
    let (s, h, b) = call(
        st,
        Request::put(format!("/v1/sessions/{id}/stream"))
            .header("authorization", format!("Bearer {TOKEN_A}"))
            .body(Body::from(vec![1u8; 4]))
            .unwrap(),
    )
    .await;
    assert_problem(s, &h, &b, StatusCode::CONFLICT);
    let (s, h, b) = call(
        st,
        post_json(&format!("/v1/sessions/{id}/end"), Some(TOKEN_A), &json!({})),
    )
    .await;
    assert_problem(s, &h, &b, StatusCode::CONFLICT);
    // No report before the session is done.
    let (s, h, b) = call(st, get(&format!("/v1/sessions/{id}/report"), TOKEN_A)).await;
    assert_problem(s, &h, &b, StatusCode::CONFLICT);
    // Unknown route: a problem too.
    let (s, h, b) = call(st, get("/v2/nothing", TOKEN_A)).await;
    assert_problem(s, &h, &b, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admission_is_bounded_with_retry_after() {
    let e = env(1);
    let st = &e.state;
    let _first = create(st, TOKEN_A, &create_body("live")).await;
    let (s, h, b) = call(
        st,
        post_json("/v1/sessions", Some(TOKEN_B), &create_body("live")),
    )
    .await;
    assert_problem(s, &h, &b, StatusCode::SERVICE_UNAVAILABLE);
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let (s, _, _) = call(st, get("/readyz", TOKEN_A)).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "not ready while full");
    let (s, _, b) = call(st, get("/metrics", TOKEN_A)).await;
    assert_eq!(s, StatusCode::OK);
    let m = String::from_utf8(b).unwrap();
    assert!(m.contains("vigil_serve_admission_refused_total 1"), "{m}");
    assert!(
        m.contains("vigil_serve_sessions{state=\"receiving\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), 4, "requests_per_minute = 60");
    let st = server::prepare(cfg).unwrap();
    let mut limited = None;
    for _ in 0..30 {
        let (s, h, b) = call(&st, get("/v1/sessions/vs_none", TOKEN_A)).await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((h, b));
            break;
        }
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    let (h, b) = limited.expect("the 11th request in a burst is refused");
    assert_problem(
        StatusCode::TOO_MANY_REQUESTS,
        &h,
        &b,
        StatusCode::TOO_MANY_REQUESTS,
    );
    assert!(h.contains_key("retry-after"));
    // Another bot has its own bucket.
    let (s, _, _) = call(&st, get("/v1/sessions/vs_none", TOKEN_B)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, h, b) = call(&st, get("/metrics", TOKEN_B)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let m = String::from_utf8(b).unwrap();
    for line in [
        "# TYPE vigil_serve_rate_limited counter",
        "vigil_serve_rate_limited_total 1",
        "vigil_serve_admission_refused_total 0",
        "vigil_serve_report_latency_seconds_bucket{le=\"0.5\"} 0",
        "vigil_serve_max_sessions 4",
        "vigil_serve_ingest_lag_seconds 0.0",
    ] {
        assert!(m.lines().any(|l| l == line), "{line:?} missing from:\n{m}");
    }
}

#[tokio::test]
async fn openapi_describes_exactly_the_routes() {
    let e = env(4);
    let (s, _, b) = call(&e.state, get("/openapi.json", TOKEN_A)).await;
    assert_eq!(s, StatusCode::OK);
    let doc = json_of(&b);
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in ["get", "post", "put", "patch", "delete", "head"] {
            if item.get(m).is_some() {
                documented.push((m.to_string(), path.clone()));
            }
        }
    }
    let mut routes: Vec<(String, String)> = server::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    routes.sort();
    assert_eq!(documented, routes, "OpenAPI and the route table differ");
    // Every documented operation is routed: the router answers something other than its
    // 'no such route' fallback or 405.
    for (m, p) in &routes {
        let path = p
            .replace("{id}", "vs_missing")
            .replace("{tenant}", "acme")
            .replace("{application}", "app");
        let req = Request::builder()
            .method(m.to_uppercase().as_str())
            .uri(&path)
            .header("authorization", format!("Bearer {TOKEN_A}"))
            .body(Body::empty())
            .unwrap();
        let (s, _, b) = call(&e.state, req).await;
        assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{m} {path}");
        assert_ne!(
            json_of(&b)["title"],
            "no such route",
            "{m} {path} is not routed"
        );
    }
}

/// A real TCP server on a free port, for the bot simulators.
async fn listen(state: AppState) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, server::router(state)).await.unwrap() });
    format!("http://{addr}")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// What the CLI's pipeline reports for the same file, to compare the server's analysis with.
fn reference_score(file: &str) -> Report {
    vigil::pipeline::score(
        &vigil::ingest::MediaInput::File(testdata(file)),
        &vigil::pipeline::ScoreOptions::default(),
    )
    .unwrap()
}

fn same_analysis(a: &Report, b: &Report) {
    assert_eq!(a.media.sha256, b.media.sha256);
    assert_eq!(a.score, b.score);
    assert_eq!(a.events, b.events);
    assert_eq!(a.timeline, b.timeline);
    assert_eq!(a.coverage, b.coverage);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_uploads_a_recording_in_chunks_and_gets_a_signed_report() {
    let e = env(4);
    let base = listen(e.state.clone()).await;
    let http = client();
    let auth = format!("Bearer {TOKEN_A}");
    let id = create_over_http(&http, &base, "upload").await;
    let media = std::fs::read(testdata("interview.mp4")).unwrap();
    let mut offset = 0usize;
    for chunk in media.chunks(200_000) {
        let r = http
            .patch(format!("{base}/v1/sessions/{id}/media"))
            .header("authorization", &auth)
            .header("upload-offset", offset.to_string())
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        offset += chunk.len();
        assert_eq!(r.headers()["upload-offset"], offset.to_string().as_str());
        // A retried chunk (the bot lost the answer) is refused with the offset to resume from.
        if offset == 200_000 {
            let again = http
                .patch(format!("{base}/v1/sessions/{id}/media"))
                .header("authorization", &auth)
                .header("upload-offset", "0")
                .body(chunk.to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 409);
            assert_eq!(again.headers()["upload-offset"], "200000");
        }
    }
    let head = http
        .head(format!("{base}/v1/sessions/{id}/media"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.headers()["upload-offset"],
        media.len().to_string().as_str()
    );
    let report = end_and_fetch(&e, &http, &base, &id).await;
    assert_eq!(report.session.session_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        report.session.candidate_external_id.as_deref(),
        Some("cand-1")
    );
    assert_eq!(report.media.source, "interview.mp4");
    same_analysis(&report, &reference_score("interview.mp4"));
    // The report is in the outbox for the tenant's connectors, and the HTML is served.
    let rows = e
        .state
        .sessions
        .store
        .lock()
        .unwrap()
        .deliveries(None, None, 100)
        .unwrap();
    assert!(
        rows.iter().any(|d| d.report_id == report.report_id),
        "{rows:?}"
    );
    let (s, h, b) = call(
        &e.state,
        get(&format!("/v1/sessions/{id}/report.html"), TOKEN_A),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert!(String::from_utf8_lossy(&b).contains(&report.report_id));
    // Raw media is gone once the report exists.
    assert!(gone(&e.dir.path().join("spool").join(&id)).await);
}

/// Ends a session over HTTP as a bot does, waits for it to finish and returns its verified report.
async fn end_and_fetch(e: &Env, http: &reqwest::Client, base: &str, id: &str) -> Report {
    let ended = http
        .post(format!("{base}/v1/sessions/{id}/end"))
        .header("authorization", format!("Bearer {TOKEN_A}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 202);
    let done = wait_final(&e.state, TOKEN_A, id).await;
    assert_eq!(done["state"], "done", "{done}");
    fetch_report(e, TOKEN_A, id).await
}

/// Streams `bytes` as one chunked request body, `piece` bytes at a time.
fn chunked(bytes: Vec<u8>, piece: usize, pause: Duration, fail_at: Option<usize>) -> reqwest::Body {
    let stream = futures_util::stream::unfold(0usize, move |at| {
        let bytes = bytes.clone();
        async move {
            if at >= bytes.len() {
                return None;
            }
            if fail_at.is_some_and(|f| at >= f) {
                return Some((Err(std::io::Error::other("bot crashed")), bytes.len()));
            }
            tokio::time::sleep(pause).await;
            let end = (at + piece).min(bytes.len());
            Some((Ok::<_, std::io::Error>(bytes[at..end].to_vec()), end))
        }
    });
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_streams_live_reconnects_after_a_cut_and_the_report_matches_the_file() {
    let e = env(4);
    let base = listen(e.state.clone()).await;
    let http = client();
    let auth = format!("Bearer {TOKEN_A}");
    let id = create(&e.state, TOKEN_A, &create_body("live")).await;
    let media = std::fs::read(testdata("interview_live.webm")).unwrap();
    // First connection dies after ~600 kB (the bot's process crashed).
    let r = http
        .put(format!("{base}/v1/sessions/{id}/stream"))
        .header("authorization", &auth)
        .header("content-type", "video/webm")
        .body(chunked(
            media.clone(),
            32 * 1024,
            Duration::from_millis(5),
            Some(600_000),
        ))
        .send()
        .await;
    if let Ok(r) = r {
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    // The server kept every byte it received; the bot asks where to resume.
    let mut offset = 0u64;
    for _ in 0..50 {
        let head = http
            .head(format!("{base}/v1/sessions/{id}/media"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        offset = head.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        if offset > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(offset > 0 && offset <= 600_000, "{offset}");
    let status: Value = http
        .get(format!("{base}/v1/sessions/{id}"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        status["state"], "receiving",
        "a cut stream leaves the session open: {status}"
    );
    // Resume from the offset; a 409 carries the offset to use instead (the old request may
    // still have been flushing when we asked).
    let r = loop {
        let rest = media[offset as usize..].to_vec();
        let r = http
            .put(format!("{base}/v1/sessions/{id}/stream"))
            .header("authorization", &auth)
            .header("upload-offset", offset.to_string())
            .body(chunked(rest, 16 * 1024, Duration::from_millis(2), None))
            .send()
            .await
            .unwrap();
        if r.status() != 409 {
            break r;
        }
        offset = r.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
    };
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["upload-offset"],
        media.len().to_string().as_str()
    );
    let report = end_and_fetch(&e, &http, &base, &id).await;
    assert_eq!(report.media.source, "live stream");
    same_analysis(&report, &reference_score("interview_live.webm"));
    let (_, _, b) = call(&e.state, get("/metrics", TOKEN_A)).await;
    let m = String::from_utf8(b).unwrap();
    assert!(
        m.contains("vigil_serve_report_latency_seconds_count 1"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_that_turns_to_garbage_fails_the_session_cleanly() {
    let e = env(4);
    let id = create(&e.state, TOKEN_A, &create_body("upload")).await;
    let mut media = std::fs::read(testdata("interview_live.webm")).unwrap();
    media.truncate(400_000);
    // Deterministic noise instead of the rest of the stream.
    let mut x = 0x2545F4914F6CDD1Du64;
    media.extend((0..400_000).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    let media_path = format!("/v1/sessions/{id}/media");
    let mut offset = 0;
    for chunk in media.chunks(200_000) {
        let (s, h, b) = call(
            &e.state,
            patch(&media_path, TOKEN_A, offset, chunk.to_vec()),
        )
        .await;
        if s == StatusCode::CONFLICT {
            // The decoder already failed on the garbage: the session takes no more media.
            assert_problem(s, &h, &b, StatusCode::CONFLICT);
            break;
        }
        assert_eq!(s, StatusCode::NO_CONTENT);
        offset += chunk.len() as u64;
    }
    let _ = call(
        &e.state,
        post_json(&format!("/v1/sessions/{id}/end"), Some(TOKEN_A), &json!({})),
    )
    .await;
    let v = wait_final(&e.state, TOKEN_A, &id).await;
    match v["state"].as_str().unwrap() {
        "failed" => {
            let err = v["error"].as_str().unwrap();
            assert!(
                !err.contains(&e.dir.path().display().to_string()),
                "no server paths: {err}"
            );
        }
        // Matroska resynchronises on the next cluster: then the valid part is analysed.
        "done" => {
            let r = fetch_report(&e, TOKEN_A, &id).await;
            assert!(r.media.duration_s < 20.0);
        }
        other => panic!("unexpected state {other}: {v}"),
    }
    // The server is still healthy.
    let (s, _, _) = call(&e.state, get("/healthz", TOKEN_A)).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_a_half_received_session_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), 4, "");
    let st = server::prepare(cfg).unwrap();
    let id = create(&st, TOKEN_A, &create_body("live")).await;
    let media = std::fs::read(testdata("interview_live.webm")).unwrap();
    let half = 700_000;
    let path = format!("/v1/sessions/{id}/stream");
    let (s, _, _) = call(
        &st,
        Request::put(&path)
            .header("authorization", format!("Bearer {TOKEN_A}"))
            .body(Body::from(media[..half].to_vec()))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // Stop the server (sessions parked), then leave bytes past the acknowledged length, as a
    // crash between write and commit would.
    let sessions = st.sessions.clone();
    tokio::task::spawn_blocking(move || sessions.shutdown(Duration::from_secs(5)))
        .await
        .unwrap();
    drop(st);
    let spool = dir.path().join("spool").join(&id).join("media");
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&spool)
            .unwrap();
        f.write_all(b"torn write that was never acknowledged")
            .unwrap();
    }
    let cfg = write_config(dir.path(), 4, "");
    let st = server::prepare(cfg).unwrap();
    let (s, _, b) = call(&st, get(&format!("/v1/sessions/{id}"), TOKEN_A)).await;
    assert_eq!(s, StatusCode::OK);
    let v = json_of(&b);
    assert_eq!(v["state"], "receiving");
    assert_eq!(v["received_bytes"], half as u64);
    assert_eq!(
        std::fs::metadata(&spool).unwrap().len(),
        half as u64,
        "torn tail cut"
    );
    let (s, _, _) = call(
        &st,
        Request::put(&path)
            .header("authorization", format!("Bearer {TOKEN_A}"))
            .header("upload-offset", half.to_string())
            .body(Body::from(media[half..].to_vec()))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = call(
        &st,
        post_json(&format!("/v1/sessions/{id}/end"), Some(TOKEN_A), &json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let v = wait_final(&st, TOKEN_A, &id).await;
    assert_eq!(v["state"], "done", "{v}");
    let (s, _, b) = call(&st, get(&format!("/v1/sessions/{id}/report"), TOKEN_A)).await;
    assert_eq!(s, StatusCode::OK);
    let report = verified(dir.path(), &b);
    same_analysis(&report, &reference_score("interview_live.webm"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_photo_sent_with_the_session_is_compared() {
    let e = env(4);
    let mut body = create_body("live");
    body["reference_face"] = json!("***");
    let (s, h, b) = call(&e.state, post_json("/v1/sessions", Some(TOKEN_A), &body)).await;
    assert_problem(s, &h, &b, StatusCode::UNPROCESSABLE_ENTITY);
    // Someone else's photo than the person on camera.
    let photo = std::fs::read(testdata("faces/obama.jpg")).unwrap();
    body["reference_face"] = json!(base64::engine::general_purpose::STANDARD.encode(&photo));
    let id = create(&e.state, TOKEN_A, &body).await;
    assert!(
        e.dir
            .path()
            .join("spool")
            .join(&id)
            .join("reference_face")
            .exists()
    );
    let media = std::fs::read(testdata("interview_live.webm")).unwrap();
    let (s, _, _) = call(
        &e.state,
        Request::put(format!("/v1/sessions/{id}/stream"))
            .header("authorization", format!("Bearer {TOKEN_A}"))
            .body(Body::from(media))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    call(
        &e.state,
        post_json(&format!("/v1/sessions/{id}/end"), Some(TOKEN_A), &json!({})),
    )
    .await;
    let v = wait_final(&e.state, TOKEN_A, &id).await;
    assert_eq!(v["state"], "done", "{v}");
    let report = fetch_report(&e, TOKEN_A, &id).await;
    assert!(
        report
            .events
            .iter()
            .any(|ev| ev.kind == vigil::scoring::EventKind::ReferenceFaceMismatch),
        "{:?}",
        report.events
    );
    // The reference photo is deleted with the session's media.
    assert!(gone(&e.dir.path().join("spool").join(&id)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_is_pulled_from_an_allow_listed_url() {
    let dir = tempfile::tempdir().unwrap();
    let base = common_http(std::fs::read(testdata("clip_vp8_opus.webm")).unwrap());
    let port = base.rsplit(':').next().unwrap().to_string();
    let cfg = write_config(
        dir.path(),
        4,
        &format!("url_hosts = [\"127.0.0.1:{port}\", \"localhost\"]"),
    );
    let st = server::prepare(cfg).unwrap();
    let mut body = create_body("url");
    // Another host, or an allowed host on a port the allow-list does not name: refused.
    let other_port = format!("http://localhost:{port}/media.webm");
    for url in [
        "https://elsewhere.example.com/media.webm",
        other_port.as_str(),
    ] {
        body["media"] = json!({"source": "url", "url": url});
        let (s, h, b) = call(&st, post_json("/v1/sessions", Some(TOKEN_A), &body)).await;
        let p = assert_problem(s, &h, &b, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(p["detail"].as_str().unwrap().contains("allow-list"), "{p}");
    }
    body["media"] = json!({"source": "url", "url": format!("{base}/media.webm?sig=secret")});
    let id = create(&st, TOKEN_A, &body).await;
    // Vigil pulls and analyses it by itself; ending is allowed but not needed.
    let v = wait_final(&st, TOKEN_A, &id).await;
    assert_eq!(v["state"], "done", "{v}");
    let (s, _, b) = call(&st, get(&format!("/v1/sessions/{id}/report"), TOKEN_A)).await;
    assert_eq!(s, StatusCode::OK);
    let env: Envelope = serde_json::from_slice(&b).unwrap();
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(env.payload.as_bytes())
            .unwrap(),
    )
    .unwrap();
    let source = payload["media"]["source"].as_str().unwrap();
    assert!(
        !source.contains("secret"),
        "signed query never reaches the report: {source}"
    );
    assert!(payload["coverage"]["frames_analysed"].as_u64().unwrap() >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_that_vanishes_leaves_an_interrupted_session_not_a_silent_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), 4, "idle_timeout_s = 5");
    let st = server::prepare(cfg).unwrap();
    let id = create(&st, TOKEN_A, &create_body("live")).await;
    let media = std::fs::read(testdata("interview_live.webm")).unwrap();
    let (s, _, _) = call(
        &st,
        Request::put(format!("/v1/sessions/{id}/stream"))
            .header("authorization", format!("Bearer {TOKEN_A}"))
            .body(Body::from(media[..300_000].to_vec()))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(5200)).await;
    let sessions = st.sessions.clone();
    tokio::task::spawn_blocking(move || sessions.reap_idle())
        .await
        .unwrap();
    let v = wait_final(&st, TOKEN_A, &id).await;
    assert_eq!(v["state"], "interrupted", "{v}");
    assert!(v["error"].as_str().unwrap().contains("never ended"), "{v}");
    // More media now is refused with a reason; the media is deleted.
    let (s, h, b) = call(
        &st,
        patch(
            &format!("/v1/sessions/{id}/media"),
            TOKEN_A,
            300_000,
            vec![0; 10],
        ),
    )
    .await;
    assert_problem(s, &h, &b, StatusCode::CONFLICT);
    assert!(gone(&dir.path().join("spool").join(&id)).await);
    let (_, _, b) = call(&st, get("/metrics", TOKEN_A)).await;
    assert!(
        String::from_utf8(b)
            .unwrap()
            .contains("vigil_serve_sessions{state=\"interrupted\"} 1")
    );
}

/// Serves `body` at `/media…` over HTTP on 127.0.0.1 (Range supported); returns the base URL.
fn common_http(body: Vec<u8>) -> String {
    common::http_server(body, common::Serve::File)
}

/// Starts the real `vigil serve` binary on a free port; returns the child and its base URL.
fn spawn_server(dir: &Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("vigil"))
        .args(["serve", "--config"])
        .arg(dir.join("serve.toml"))
        .env("VIGIL_SERVE_LISTEN", "127.0.0.1:0")
        .env_remove("VIGIL_SIGNING_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("vigil serve did not start: {line}"));
    (child, format!("http://{url}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_received_media_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), 4, "");
    let http = client();
    let auth = format!("Bearer {TOKEN_A}");
    let media = std::fs::read(testdata("interview_live.webm")).unwrap();
    let half = 800_000;

    let (mut first, base) = spawn_server(dir.path());
    let id = create_over_http(&http, &base, "live").await;
    let r = http
        .put(format!("{base}/v1/sessions/{id}/stream"))
        .header("authorization", &auth)
        .body(media[..half].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    first.kill().unwrap(); // SIGKILL: no chance to park anything
    first.wait().unwrap();

    let (mut second, base) = spawn_server(dir.path());
    let head = http
        .head(format!("{base}/v1/sessions/{id}/media"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.headers()["upload-offset"],
        half.to_string().as_str(),
        "every acknowledged byte survived"
    );
    let r = http
        .put(format!("{base}/v1/sessions/{id}/stream"))
        .header("authorization", &auth)
        .header("upload-offset", half.to_string())
        .body(media[half..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{base}/v1/sessions/{id}/end"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let t0 = Instant::now();
    let status = loop {
        let v: Value = http
            .get(format!("{base}/v1/sessions/{id}"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["state"] != "finalizing" {
            break v;
        }
        assert!(t0.elapsed() < Duration::from_secs(120));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["state"], "done", "{status}");
    let envelope = http
        .get(format!("{base}/v1/sessions/{id}/report"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let report = verified(dir.path(), &envelope);
    same_analysis(&report, &reference_score("interview_live.webm"));

    // A session still receiving when SIGTERM arrives is parked; the server exits cleanly.
    let parked = create_over_http(&http, &base, "live").await;
    nix_term(second.id());
    let code = tokio::task::spawn_blocking(move || second.wait().unwrap())
        .await
        .unwrap();
    assert!(code.success(), "{code:?}");
    let store = vigil::store::Store::open(&dir.path().join("vigil.db")).unwrap();
    let row = store.live_session("acme", &parked).unwrap().unwrap();
    assert_eq!(
        row.state,
        vigil::store::live::State::Receiving,
        "parked, to resume on restart"
    );
}

fn nix_term(pid: u32) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// A request body that sends `bytes` and then stays open without sending anything more (a
/// half-open connection, as after a network change).
fn hanging_body(bytes: Vec<u8>) -> Body {
    let first = futures_util::stream::once(async move { Ok::<_, std::io::Error>(bytes) });
    Body::from_stream(futures_util::StreamExt::chain(
        first,
        futures_util::stream::pending(),
    ))
}

fn put_stream(id: &str, offset: Option<u64>, body: Body) -> Request<Body> {
    let mut r = Request::put(format!("/v1/sessions/{id}/stream"))
        .header("authorization", format!("Bearer {TOKEN_A}"));
    if let Some(o) = offset {
        r = r.header("upload-offset", o.to_string());
    }
    r.body(body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_stream_takes_over_a_half_open_one_and_shutdown_ends_streams() {
    let e = env(4);
    let id = create(&e.state, TOKEN_A, &create_body("live")).await;
    let media = std::fs::read(testdata("interview_live.webm")).unwrap();
    let first = tokio::spawn({
        let st = e.state.clone();
        let req = put_stream(&id, None, hanging_body(media[..300_000].to_vec()));
        async move { call(&st, req).await }
    });
    // Wait until the first request's bytes are durable.
    let mut offset = 0;
    for _ in 0..100 {
        let (_, h, _) = call(
            &e.state,
            Request::head(format!("/v1/sessions/{id}/media"))
                .header("authorization", format!("Bearer {TOKEN_A}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        offset = h["upload-offset"].to_str().unwrap().parse::<u64>().unwrap();
        if offset == 300_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(offset, 300_000);
    // The bot reconnects; its new stream takes over and the old request is answered 409.
    let second = tokio::spawn({
        let st = e.state.clone();
        let req = put_stream(
            &id,
            Some(300_000),
            hanging_body(media[300_000..600_000].to_vec()),
        );
        async move { call(&st, req).await }
    });
    let (s, h, b) = tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .expect("the superseded request ends")
        .unwrap();
    let p = assert_problem(s, &h, &b, StatusCode::CONFLICT);
    assert!(p["detail"].as_str().unwrap().contains("took over"), "{p}");
    // Shutdown: the open stream ends with 503 and the offset to resume from; nothing is lost.
    for _ in 0..100 {
        if e.state.sessions.active(&id).unwrap().spool.durable_len() == 600_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sessions = e.state.sessions.clone();
    tokio::task::spawn_blocking(move || sessions.begin_shutdown())
        .await
        .unwrap();
    let (s, h, b) = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("an open stream ends on shutdown")
        .unwrap();
    assert_problem(s, &h, &b, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h["upload-offset"], "600000");
    assert!(h.contains_key("retry-after"));
    let (s, h, b) = call(
        &e.state,
        post_json("/v1/sessions", Some(TOKEN_A), &create_body("live")),
    )
    .await;
    assert_problem(s, &h, &b, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_reference_fails_the_session_without_leaking_server_paths() {
    let e = env(4);
    let mut body = create_body("live");
    body["reference_voice"] =
        json!(base64::engine::general_purpose::STANDARD.encode(b"not audio at all"));
    let id = create(&e.state, TOKEN_A, &body).await;
    let v = wait_final(&e.state, TOKEN_A, &id).await;
    assert_eq!(v["state"], "failed", "{v}");
    let err = v["error"].as_str().unwrap();
    assert!(err.contains("reference_voice"), "{err}");
    assert!(!err.contains(&e.dir.path().display().to_string()), "{err}");
    assert!(!err.contains("/spool/"), "{err}");
}

/// Issue 19, item 6: one tenant cannot take every slot.
#[tokio::test]
async fn a_tenant_gets_its_share_of_the_sessions_not_all_of_them() {
    // Two tenants have tokens: each may hold half of the 4 slots.
    let e = env(4);
    let st = &e.state;
    for _ in 0..2 {
        create(st, TOKEN_A, &create_body("live")).await;
    }
    let (s, h, b) = call(
        st,
        post_json("/v1/sessions", Some(TOKEN_A), &create_body("live")),
    )
    .await;
    assert_problem(s, &h, &b, StatusCode::TOO_MANY_REQUESTS);
    assert!(h.contains_key("retry-after"));
    // The other tenant is still admitted, and the server is still ready.
    create(st, TOKEN_B, &create_body("live")).await;
    let (s, _, _) = call(st, get("/readyz", TOKEN_B)).await;
    assert_eq!(s, StatusCode::OK);

    // A bot token can be held to less than its tenant's share.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), 4, "max_sessions_per_token = 1");
    let st = server::prepare(cfg).unwrap();
    create(&st, TOKEN_A, &create_body("live")).await;
    let (s, h, b) = call(
        &st,
        post_json("/v1/sessions", Some(TOKEN_A), &create_body("live")),
    )
    .await;
    assert_problem(s, &h, &b, StatusCode::TOO_MANY_REQUESTS);
}

/// Issue 19, item 6: a byte now and then does not keep a session alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drip_fed_upload_is_interrupted_as_idle() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), 4, "idle_timeout_s = 5");
    let st = server::prepare(cfg).unwrap();
    let id = create(&st, TOKEN_A, &create_body("upload")).await;
    let media = std::fs::read(testdata("interview_live.webm")).unwrap();
    for (offset, byte) in media.iter().take(7).enumerate() {
        let (s, _, b) = call(
            &st,
            patch(
                &format!("/v1/sessions/{id}/media"),
                TOKEN_A,
                offset as u64,
                vec![*byte],
            ),
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{}", String::from_utf8_lossy(&b));
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    let sessions = st.sessions.clone();
    tokio::task::spawn_blocking(move || sessions.reap_idle())
        .await
        .unwrap();
    let v = wait_final(&st, TOKEN_A, &id).await;
    assert_eq!(v["state"], "interrupted", "{v}");
}

/// Issue 19 (low): consent from the future, a right-to-left override in a file name and a
/// signed Upload-Offset are refused or neutralised.
#[tokio::test]
async fn odd_session_fields_are_refused_or_neutralised() {
    let e = env(4);
    let st = &e.state;
    let mut body = create_body("upload");
    body["consent"]["recorded_at"] = json!("2999-01-01T00:00:00Z");
    let (s, h, b) = call(st, post_json("/v1/sessions", Some(TOKEN_A), &body)).await;
    let p = assert_problem(s, &h, &b, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p["detail"].as_str().unwrap().contains("future"), "{p}");

    let mut body = create_body("upload");
    body["media"]["filename"] = json!("evil\u{202E}4pm.exe");
    let id = create(st, TOKEN_A, &body).await;
    let row = st
        .sessions
        .store
        .lock()
        .unwrap()
        .live_session("acme", &id)
        .unwrap()
        .unwrap();
    assert_eq!(
        row.media_name, "upload",
        "a name with a bidi override is not kept"
    );

    let (s, h, b) = call(
        st,
        Request::patch(format!("/v1/sessions/{id}/media"))
            .header("authorization", format!("Bearer {TOKEN_A}"))
            .header("upload-offset", "+0")
            .header("content-type", "application/octet-stream")
            .body(Body::from(vec![0u8; 10]))
            .unwrap(),
    )
    .await;
    assert_problem(s, &h, &b, StatusCode::BAD_REQUEST);
}

/// Issue 19 (low): a flood of bad tokens is slowed like a bot (429 after the burst), so it
/// neither guesses at full speed nor floods the log.
#[tokio::test]
async fn failed_authentications_are_rate_limited() {
    let e = env(4);
    let mut limited = 0;
    for _ in 0..200 {
        let (s, _, _) = call(&e.state, get("/v1/sessions/vs_none", "wrong-token")).await;
        assert!(
            s == StatusCode::UNAUTHORIZED || s == StatusCode::TOO_MANY_REQUESTS,
            "{s}"
        );
        limited += usize::from(s == StatusCode::TOO_MANY_REQUESTS);
    }
    assert!(limited > 100, "{limited}");
    // A valid bot is not affected.
    let (s, _, _) = call(&e.state, get("/v1/sessions/vs_none", TOKEN_A)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Issue 19 (low): `/metrics` can require a token of its own.
#[tokio::test]
async fn metrics_can_require_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let hash = hex::encode(Sha256::digest(b"scrape-token"));
    let cfg = write_config(dir.path(), 4, &format!("metrics_token_sha256 = \"{hash}\""));
    let st = server::prepare(cfg).unwrap();
    let open = Request::get("/metrics").body(Body::empty()).unwrap();
    assert_eq!(call(&st, open).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&st, get("/metrics", "wrong")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, _, b) = call(&st, get("/metrics", "scrape-token")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        String::from_utf8(b)
            .unwrap()
            .contains("vigil_serve_sessions")
    );
}
