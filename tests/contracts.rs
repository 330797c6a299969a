//! Consumer-driven contract tests (Pact): the real connectors run against Pact mock servers
//! that expect exactly the documented request shapes, one interaction per outbound call; and the
//! inbound webhook shapes Vigil consumes are message interactions fed to the real handlers. On
//! success the pact files are written to `contracts/` (vigil-<provider>.json) for a provider,
//! or the sandbox, to verify. A renamed or dropped field fails the mock server's validation
//! and therefore the test.

use pact_consumer::prelude::*;
use pact_consumer::{json_pattern, like, term};
use std::path::PathBuf;
use std::time::Duration;
use vigil::ats::config::{
    FieldRef, GreenhouseConfig, LeverConfig, Secret, Visibility, WebhookConfig, decode_whsec,
};
use vigil::ats::{Progress, greenhouse::Greenhouse, http_client, lever::Lever, webhook::Webhook};
use vigil::store::NewReport;

const REPORT_ID: &str = "vr_0123456789abcdef01234567";

fn contracts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contracts")
}

fn report() -> NewReport {
    let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let payload =
        serde_json::json!({"schema": "vigil.integrity-report/v1", "report_id": REPORT_ID});
    let env = vigil::report::dsse::sign(&serde_json::to_vec(&payload).unwrap(), &key);
    NewReport {
        report_id: REPORT_ID.into(),
        tenant: "acme".into(),
        application_id: "31415".into(),
        candidate_id: Some("GH-TEST-1002".into()),
        department: None,
        session_id: None,
        integrity: 96.6,
        risk_tier: "low".into(),
        verification_status: "verified".into(),
        envelope: serde_json::to_vec(&env).unwrap(),
        html: None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

const RFC3339: &str = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$";
const BASE64: &str = r"^[A-Za-z0-9+/]+={0,2}$";
const REPORT_FILE: &str = r"^vigil-integrity-vr_[0-9a-f]{24}\.json$";

#[test]
fn greenhouse_harvest_v3() {
    let server = PactBuilder::new_v4("vigil", "greenhouse-harvest-v3")
        .with_output_dir(contracts_dir())
        .interaction("a client-credentials token request", "", |mut i| {
            i.request
                .post()
                .path("/token")
                .header("authorization", term!("^Basic [A-Za-z0-9+/=]+$", "Basic dmlnaWw6c2VjcmV0"))
                .body2("grant_type=client_credentials&sub=4080", "application/x-www-form-urlencoded");
            i.response.ok().json_utf8().json_body(json_pattern!({
                "token_type": "Bearer",
                "access_token": like!("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
                "expires_at": term!(RFC3339, "2026-11-23T22:26:15Z"),
            }));
            i
        })
        .interaction("list the application's attachments of type other", "", |mut i| {
            i.given("application 31415 has no Vigil report yet");
            i.request
                .get()
                .path("/v3/attachments")
                .query_param("application_ids", "31415")
                .query_param("type", "other")
                .query_param("per_page", "500")
                .header("authorization", term!("^Bearer .+$", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"));
            i.response.ok().json_utf8().json_body(json_pattern!([]));
            i
        })
        .interaction("attach the signed report to the application", "", |mut i| {
            i.request
                .post()
                .path("/v3/attachments")
                .header("authorization", term!("^Bearer .+$", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"))
                .content_type("application/json")
                .json_body(json_pattern!({
                    "application_id": like!(31415),
                    "filename": term!(REPORT_FILE, "vigil-integrity-vr_0123456789abcdef01234567.json"),
                    "type": "other",
                    "content": term!(BASE64, "eyJwYXlsb2FkIjoiIn0="),
                    "visibility": "admin_only",
                }));
            i.response.created().json_utf8().json_body(json_pattern!({
                "id": like!(987654),
                "application_id": like!(31415),
                "filename": like!("vigil-integrity-vr_0123456789abcdef01234567.json"),
                "type": "other",
            }));
            i
        })
        .interaction("write integrity score, risk tier and status to custom fields", "", |mut i| {
            i.request
                .method("PATCH")
                .path("/v3/applications/31415")
                .header("authorization", term!("^Bearer .+$", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"))
                .content_type("application/json")
                .json_body(json_pattern!({
                    "custom_fields": [
                        {"name_key": "vigil_integrity", "value": like!(97)},
                        {"name_key": "vigil_risk_tier", "value": term!("^(low|medium|high)$", "low")},
                        {"name_key": "vigil_status", "value": term!("^(verified|needs_review|rejected)$", "verified")},
                    ]
                }));
            i.response.ok().json_utf8().json_body(json_pattern!({"id": like!(31415)}));
            i
        })
        .start_mock_server(None, None);

    let base = server.url();
    let gh = Greenhouse::new(
        GreenhouseConfig {
            base_url: base.clone(),
            token_url: base.join("/token").unwrap(),
            client_id: "vigil".into(),
            client_secret: Secret::new("secret"),
            user_id: 4080,
            visibility: Visibility::AdminOnly,
            integrity_field: Some(FieldRef::NameKey("vigil_integrity".into())),
            risk_tier_field: Some(FieldRef::NameKey("vigil_risk_tier".into())),
            status_field: Some(FieldRef::NameKey("vigil_status".into())),
            webhook_secret: None,
        },
        http_client(Duration::from_secs(10)).unwrap(),
    );
    let mut progress = Progress::new();
    // prior_attempts = 1: an earlier attempt may have reached the ATS, so the writer looks
    // for its report first (the list call is part of the contract).
    let receipt = runtime()
        .block_on(gh.deliver(&report(), 1, &mut progress))
        .unwrap();
    assert_eq!(receipt.remote_ref, "987654");
}

#[test]
fn lever_v1() {
    let opp = "250d8f03-738a-4bba-a671-8a3d73477145";
    let perform_as = "8d49b010-cc6a-4f40-ace5-e86061c677ed";
    let auth = || term!("^Basic [A-Za-z0-9+/=]+$", "Basic a2V5Og==");
    let server = PactBuilder::new_v4("vigil", "lever-v1")
        .with_output_dir(contracts_dir())
        .interaction("list the opportunity's files", "", |mut i| {
            i.given("the opportunity has no Vigil report yet");
            i.request
                .get()
                .path(format!("/v1/opportunities/{opp}/files"))
                .query_param("limit", "100")
                .header("authorization", auth());
            i.response
                .ok()
                .json_utf8()
                .json_body(json_pattern!({"data": [], "hasNext": false}));
            i
        })
        .interaction("upload the signed report as a file", "", |mut i| {
            // The multipart body carries one part named `file`; its boundary is random, so the
            // content type is matched by pattern and the part by the sandbox tests.
            i.request
                .post()
                .path(format!("/v1/opportunities/{opp}/files"))
                .query_param("perform_as", perform_as)
                .header("authorization", auth())
                .header(
                    "content-type",
                    term!("^multipart/form-data; boundary=.+$", "multipart/form-data; boundary=x"),
                );
            i.response.ok().json_utf8().json_body(json_pattern!({
                "data": {"id": like!("4a7f3c2e-file"), "name": like!("vigil-integrity-vr_0123456789abcdef01234567.json")}
            }));
            i
        })
        .interaction("list the opportunity's notes", "", |mut i| {
            i.request
                .get()
                .path(format!("/v1/opportunities/{opp}/notes"))
                .query_param("limit", "100")
                .header("authorization", auth());
            i.response
                .ok()
                .json_utf8()
                .json_body(json_pattern!({"data": [], "hasNext": false}));
            i
        })
        .interaction("add a note with the integrity summary", "", |mut i| {
            i.request
                .post()
                .path(format!("/v1/opportunities/{opp}/notes"))
                .query_param("perform_as", perform_as)
                .header("authorization", auth())
                .content_type("application/json")
                .json_body(json_pattern!({
                    "value": term!("^.*vr_[0-9a-f]{24}.*$", "Vigil interview-integrity report vr_0123456789abcdef01234567: integrity 97/100"),
                    "secret": false,
                }));
            i.response
                .ok()
                .json_utf8()
                .json_body(json_pattern!({"data": {"id": like!("9b1e-note")}}));
            i
        })
        .start_mock_server(None, None);

    let lever = Lever::new(
        LeverConfig {
            base_url: server.url(),
            api_key: Secret::new("key"),
            perform_as: perform_as.into(),
            webhook_signature_token: None,
            webhook_max_age: Duration::from_secs(3600),
        },
        http_client(Duration::from_secs(10)).unwrap(),
    );
    let mut r = report();
    r.application_id = opp.into();
    let mut progress = Progress::new();
    let receipt = runtime()
        .block_on(lever.deliver(&r, 1, &mut progress))
        .unwrap();
    assert_eq!(receipt.remote_ref, "4a7f3c2e-file");
    assert_eq!(progress["note_id"], "9b1e-note");
}

#[test]
fn standard_webhook() {
    let server = PactBuilder::new_v4("vigil", "vigil-webhook-receiver")
        .with_output_dir(contracts_dir())
        .interaction("an integrity report is ready", "", |mut i| {
            i.request
                .post()
                .path("/hooks/vigil")
                .header("webhook-id", term!("^msg_vr_[0-9a-f]{24}$", "msg_vr_0123456789abcdef01234567"))
                .header("webhook-timestamp", term!(r"^\d{10}$", "1795471200"))
                .header("webhook-signature", term!(r"^v1,[A-Za-z0-9+/]+={0,2}$", "v1,c2ln"))
                .header("idempotency-key", term!("^msg_vr_[0-9a-f]{24}$", "msg_vr_0123456789abcdef01234567"))
                .content_type("application/json")
                .json_body(json_pattern!({
                    "type": "integrity_report.ready",
                    "timestamp": term!(RFC3339, "2026-11-23T21:00:00Z"),
                    "data": {
                        "report_id": term!("^vr_[0-9a-f]{24}$", "vr_0123456789abcdef01234567"),
                        "tenant": like!("acme"),
                        "application_id": like!("31415"),
                        "candidate_id": like!("GH-TEST-1002"),
                        "integrity": like!(96.6),
                        "risk_tier": term!("^(low|medium|high)$", "low"),
                        "verification_status": term!("^(verified|needs_review|rejected)$", "verified"),
                        "envelope": {
                            "payloadType": "application/vnd.vigil.integrity-report.v1+json",
                            "payload": term!(BASE64, "eyJ9"),
                            "signatures": [{"keyid": like!("ed25519:0123456789abcdef"), "sig": term!(BASE64, "c2ln")}],
                        },
                    },
                }));
            i.response.status(204);
            i
        })
        .start_mock_server(None, None);

    let hook = Webhook::new(
        WebhookConfig {
            url: server.path("/hooks/vigil"),
            key: decode_whsec(vigil::ats::sandbox::WEBHOOK_SECRET).unwrap(),
        },
        http_client(Duration::from_secs(10)).unwrap(),
    );
    let receipt = runtime()
        .block_on(hook.deliver(&report(), 0, &mut Progress::new()))
        .unwrap();
    assert_eq!(receipt.remote_ref, format!("msg_{REPORT_ID}"));
}

// ------------------------------------------------------------------ inbound webhook shapes ----

/// A config with one tenant receiving Greenhouse and Lever webhooks, and its inbound router;
/// Lever's API (which confirms deletions) is the sandbox at `lever_url`.
fn inbound(dir: &std::path::Path, lever_url: &str) -> vigil::ats::inbound::InboundState {
    let text = r#"
[store]
path = "vigil.db"
[[tenants]]
id = "acme"
[tenants.greenhouse]
base_url = "LEVER_URL"
token_url = "LEVER_URL/token"
client_id = "vigil-sandbox"
client_secret = "sandbox-client-secret"
user_id = 1
webhook_secret = "gh-secret"
[tenants.lever]
base_url = "LEVER_URL"
api_key = "sandbox-lever-key"
perform_as = "u"
webhook_signature_token = "lever-token"
"#
    .replace("LEVER_URL", lever_url);
    let cfg = vigil::ats::config::AtsConfig::parse(&text, &dir.join("ats.toml"), true).unwrap();
    let store = vigil::store::Store::open(&cfg.store_path).unwrap();
    vigil::ats::inbound::InboundState {
        store: vigil::store::Shared::new(store),
        config: std::sync::Arc::new(cfg),
        http: http_client(Duration::from_secs(10)).unwrap(),
    }
}

/// The sandbox ATS on the test's runtime; returns its base URL.
async fn sandbox() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sandbox = vigil::ats::sandbox::Sandbox::new(Default::default());
    tokio::spawn(vigil::ats::sandbox::serve(
        sandbox,
        listener,
        std::future::pending(),
    ));
    url
}

fn hmac_hex(key: &str, msg: &[u8]) -> String {
    use hmac::Mac;
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    m.update(msg);
    hex::encode(m.finalize().into_bytes())
}

async fn post(
    state: &vigil::ats::inbound::InboundState,
    path: &str,
    signature: Option<String>,
    body: Vec<u8>,
) -> serde_json::Value {
    use tower::ServiceExt;
    let mut b = axum::http::Request::post(path).header("content-type", "application/json");
    if let Some(s) = signature {
        b = b.header("signature", s);
    }
    let resp = vigil::ats::inbound::router(state.clone())
        .oneshot(b.body(axum::body::Body::from(body)).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), axum::http::StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The inbound webhook shapes Vigil consumes (Pact message interactions): each example message
/// is fed, correctly signed, to the real handler, which must process it. A renamed field (e.g.
/// `deleted_application_ids`) makes the handler process nothing and the test fail.
#[tokio::test]
async fn greenhouse_webhooks_vigil_consumes() {
    let dir = tempfile::tempdir().unwrap();
    let lever = sandbox().await;
    let state = inbound(dir.path(), &lever);
    let mut pact = PactBuilder::new_v4("vigil", "greenhouse-webhooks");
    pact.with_output_dir(contracts_dir())
        .message_interaction("a candidate is deleted", |mut i| {
            i.json_body(json_pattern!({
                "action": "delete_candidate",
                "payload": {"person": {
                    "id": like!(37031511),
                    "deleted_application_ids": [like!(46196263)],
                }}
            }));
            i
        })
        .message_interaction("a candidate is anonymized", |mut i| {
            i.json_body(json_pattern!({
                "action": "candidate_anonymized",
                "payload": {"candidate_id": like!(37031511), "anonymized_fields": ["attachments"]}
            }));
            i
        });
    for (n, m) in pact.messages().enumerate() {
        let body = m.contents.contents.value().unwrap().to_vec();
        {
            let mut s = state.store.lock().unwrap();
            let mut r = report();
            r.report_id = format!("vr_{n:024}");
            r.application_id = "46196263".into();
            r.candidate_id = Some("37031511".into());
            s.register(&r, &["greenhouse"], "test", 0).unwrap();
        }
        // Greenhouse confirms the deletion: the candidate is no longer listed.
        reqwest::Client::new()
            .delete(format!("{lever}/_sandbox/greenhouse/candidates/37031511"))
            .send()
            .await
            .unwrap();
        let sig = format!("sha256 {}", hmac_hex("gh-secret", &body));
        let v = post(&state, "/ats/acme/greenhouse/webhook", Some(sig), body).await;
        assert_eq!(v["status"], "processed", "{}: {v}", m.description);
        assert_eq!(v["reports_deleted"], 1, "{}: {v}", m.description);
    }
}

#[tokio::test]
async fn lever_webhooks_vigil_consumes() {
    let dir = tempfile::tempdir().unwrap();
    let lever = sandbox().await;
    let state = inbound(dir.path(), &lever);
    let signature = hmac_hex("lever-token", b"3f1c2a1732395600000");
    let mut pact = PactBuilder::new_v4("vigil", "lever-webhooks");
    pact.with_output_dir(contracts_dir())
        .message_interaction("a candidate is deleted", |mut i| {
            i.json_body(json_pattern!({
                "triggeredAt": 1732395600000u64,
                "event": "candidateDeleted",
                "token": "3f1c2a",
                "signature": signature.as_str(),
                "data": {"candidateId": like!("c-1"), "opportunityId": like!("250d8f03")},
            }));
            i
        });
    for m in pact.messages() {
        let body = m.contents.contents.value().unwrap().to_vec();
        {
            let mut s = state.store.lock().unwrap();
            let mut r = report();
            r.tenant = "acme".into();
            r.application_id = "250d8f03".into();
            r.candidate_id = Some("c-1".into());
            s.register(&r, &["lever"], "test", 0).unwrap();
        }
        // The example's triggeredAt is long past: delivered now, Lever signs the current time.
        let mut event: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let now = vigil::store::now_ms();
        event["triggeredAt"] = now.into();
        event["signature"] = hmac_hex("lever-token", format!("3f1c2a{now}").as_bytes()).into();
        // Lever confirms the deletion: the opportunity is gone from its API.
        reqwest::Client::new()
            .delete(format!("{lever}/_sandbox/lever/opportunities/250d8f03"))
            .send()
            .await
            .unwrap();
        let body = serde_json::to_vec(&event).unwrap();
        let v = post(&state, "/ats/acme/lever/webhook", None, body).await;
        assert_eq!(v["status"], "processed", "{v}");
        assert_eq!(v["reports_deleted"], 1, "{v}");
    }
}
