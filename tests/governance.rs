//! ATS governance: inbound deletion webhooks (signatures, de-duplication, retention), the
//! stage gate with reviews, exceptions, kill switch and canary, and zero-retention biometrics.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use tower::ServiceExt;
use vigil::ats::config::AtsConfig;
use vigil::ats::inbound::{InboundState, router};
use vigil::store::governance::Decision;
use vigil::store::{NewReport, Store};

const GH_SECRET: &str = "gh-webhook-secret";
const LEVER_TOKEN: &str = "lever-signature-token";
/// A stage-gate client's token, and its SHA-256 as the config holds it.
const GATE_TOKEN: &str = "vgl_gate-client-token";
const LEVER_KEY: &str = vigil::ats::sandbox::LEVER_API_KEY;

fn config(dir: &Path, canary: &str, lever_url: &str) -> AtsConfig {
    let gate_hash = hex::encode(Sha256::digest(GATE_TOKEN.as_bytes()));
    let (gh_id, gh_client_secret) = (
        vigil::ats::sandbox::GREENHOUSE_CLIENT_ID,
        vigil::ats::sandbox::GREENHOUSE_CLIENT_SECRET,
    );
    let text = format!(
        r#"
[store]
path = "vigil.db"

[[tenants]]
id = "acme"
{canary}
[tenants.greenhouse]
base_url = "{lever_url}"
token_url = "{lever_url}/token"
client_id = "{gh_id}"
client_secret = "{gh_client_secret}"
user_id = 1
webhook_secret = "{GH_SECRET}"
[[tenants.gate_tokens]]
name = "stage-gate"
sha256 = "{gate_hash}"

[[tenants]]
id = "lv"
[tenants.lever]
base_url = "{lever_url}"
api_key = "{LEVER_KEY}"
perform_as = "u"
webhook_signature_token = "{LEVER_TOKEN}"
"#
    );
    AtsConfig::parse(&text, &dir.join("ats.toml"), true).unwrap()
}

fn report(id: &str, tenant: &str, app: &str, cand: &str, status: &str) -> NewReport {
    NewReport {
        report_id: id.into(),
        tenant: tenant.into(),
        application_id: app.into(),
        candidate_id: Some(cand.into()),
        department: Some("Engineering".into()),
        session_id: None,
        integrity: if status == "verified" { 97.0 } else { 62.0 },
        risk_tier: if status == "verified" {
            "low"
        } else {
            "medium"
        }
        .into(),
        verification_status: status.into(),
        envelope: b"{}".to_vec(),
        html: None,
    }
}

fn gh_sign(body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(GH_SECRET.as_bytes()).unwrap();
    m.update(body);
    format!("sha256 {}", hex::encode(m.finalize().into_bytes()))
}

struct Env {
    _dir: tempfile::TempDir,
    state: InboundState,
    /// The sandbox ATS (Greenhouse and Lever APIs) that confirms (or not) deletions.
    lever: String,
}

/// The inbound state, with the `lv` tenant's Lever API served by the sandbox on the test's
/// runtime (call from inside a tokio test).
fn env(canary: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let lever = format!("http://{}", std_listener.local_addr().unwrap());
    let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
    let sandbox = vigil::ats::sandbox::Sandbox::new(Default::default());
    tokio::spawn(vigil::ats::sandbox::serve(
        sandbox,
        listener,
        std::future::pending(),
    ));
    let cfg = config(dir.path(), canary, &lever);
    let store = Store::open(&cfg.store_path).unwrap();
    Env {
        state: InboundState {
            store: vigil::store::Shared::new(store),
            config: Arc::new(cfg),
            http: vigil::ats::http_client(std::time::Duration::from_secs(10)).unwrap(),
        },
        _dir: dir,
        lever,
    }
}

impl Env {
    fn store(&self) -> vigil::store::Conn<'_> {
        self.state.store.lock().unwrap()
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let resp = router(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

fn gh_request(body: &[u8], signature: Option<String>, event_id: &str) -> Request<Body> {
    let mut b = Request::post("/ats/acme/greenhouse/webhook")
        .header("content-type", "application/json")
        .header("greenhouse-event-id", event_id);
    if let Some(s) = signature {
        b = b.header("signature", s);
    }
    b.body(Body::from(body.to_vec())).unwrap()
}

#[tokio::test]
async fn greenhouse_deletion_is_verified_deduplicated_and_deletes_only_that_candidate() {
    let e = env("");
    {
        let mut s = e.store();
        for r in [
            report("vr_a", "acme", "46196263", "37031511", "verified"),
            report("vr_b", "acme", "46196258", "37031511", "needs_review"),
            report("vr_c", "acme", "999", "42", "verified"),
        ] {
            s.register(&r, &["greenhouse"], "test", 0).unwrap();
        }
    }
    // Greenhouse's documented delete_candidate shape.
    let body = serde_json::to_vec(&json!({
        "action": "delete_candidate",
        "payload": {"person": {"id": 37031511, "first_name": "Jack", "last_name": "Sparrow",
            "deleted_application_ids": [46196263, 46196258]}}
    }))
    .unwrap();

    // Missing, wrong and other-body signatures: 401, nothing deleted.
    for sig in [None, Some("sha256 00".to_owned()), Some(gh_sign(b"{}"))] {
        let (status, v) = e.send(gh_request(&body, sig, "ev-1")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
        assert!(
            e.store()
                .latest_report("acme", "46196263")
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(e.store().rejections().unwrap(), 3, "refusals are recorded");

    // Correctly signed, but Greenhouse still lists the candidate: nothing is deleted.
    let (status, v) = e
        .send(gh_request(&body, Some(gh_sign(&body)), "ev-1"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(
        e.store()
            .latest_report("acme", "46196263")
            .unwrap()
            .is_some()
    );
    e.greenhouse_user_deletes("37031511").await;
    let (status, v) = e
        .send(gh_request(&body, Some(gh_sign(&body)), "ev-1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "processed");
    assert_eq!(v["reports_deleted"], 2);
    assert_eq!(v["deliveries_deleted"], 2);
    assert!(
        e.store()
            .latest_report("acme", "46196263")
            .unwrap()
            .is_none()
    );
    assert!(
        e.store()
            .latest_report("acme", "46196258")
            .unwrap()
            .is_none()
    );
    assert!(
        e.store().latest_report("acme", "999").unwrap().is_some(),
        "other candidate kept"
    );

    // Greenhouse retries: the same event id is recognised and does nothing.
    let (status, v) = e
        .send(gh_request(&body, Some(gh_sign(&body)), "ev-1"))
        .await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::OK, Some("duplicate"))
    );

    // Issue 19, item 3: the same signed body re-sent under another (unsigned) event id is a
    // replay: a newer report of that candidate survives it.
    e.store()
        .register(
            &report("vr_new", "acme", "46196263", "37031511", "verified"),
            &["greenhouse"],
            "test",
            0,
        )
        .unwrap();
    let (status, v) = e
        .send(gh_request(&body, Some(gh_sign(&body)), "ev-replayed"))
        .await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::OK, Some("duplicate")),
        "{v}"
    );
    assert!(
        e.store()
            .latest_report("acme", "46196263")
            .unwrap()
            .is_some(),
        "the newer report is kept"
    );

    // Anonymisation removes the rest of a candidate's data too.
    let anon = serde_json::to_vec(&json!({
        "action": "candidate_anonymized",
        "payload": {"candidate_id": 42, "anonymized_fields": ["full_name", "attachments"]}
    }))
    .unwrap();
    let (status, v) = e
        .send(gh_request(&anon, Some(gh_sign(&anon)), "ev-2"))
        .await;
    assert_eq!(
        (status, v["reports_deleted"].as_u64()),
        (StatusCode::OK, Some(1))
    );

    // Other events are acknowledged and ignored.
    let other = br#"{"action": "candidate_stage_change", "payload": {}}"#;
    let (status, v) = e
        .send(gh_request(other, Some(gh_sign(other)), "ev-3"))
        .await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::OK, Some("ignored"))
    );

    // The audit log records the deletions and its chain holds.
    let s = e.store();
    let actions: Vec<String> = s
        .audit_entries(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "candidate_data_deleted")
            .count(),
        2
    );
    assert!(matches!(
        s.audit_verify().unwrap(),
        vigil::store::audit::Verdict::Intact { .. }
    ));
}

fn lever_sign(token: &str, at: i64) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(LEVER_TOKEN.as_bytes()).unwrap();
    m.update(format!("{token}{at}").as_bytes());
    hex::encode(m.finalize().into_bytes())
}

fn lever_request(body: &Value) -> Request<Body> {
    Request::post("/ats/lv/lever/webhook")
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// A correctly signed Lever event, triggered `age_ms` ago.
fn lever_event(token: &str, age_ms: i64, event: &str, data: Value) -> Value {
    let at = vigil::store::now_ms() - age_ms;
    json!({"triggeredAt": at, "event": event, "token": token,
        "signature": lever_sign(token, at), "data": data})
}

impl Env {
    /// A Greenhouse user deletes the candidate: `GET /v3/candidates?ids=` no longer lists it.
    async fn greenhouse_user_deletes(&self, candidate: &str) {
        let r = reqwest::Client::new()
            .delete(format!(
                "{}/_sandbox/greenhouse/candidates/{candidate}",
                self.lever
            ))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// A Lever user deletes the opportunity: Lever's API answers 404 for it from now on.
    async fn lever_user_deletes(&self, opportunity: &str) {
        let r = reqwest::Client::new()
            .delete(format!(
                "{}/_sandbox/lever/opportunities/{opportunity}",
                self.lever
            ))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    async fn lever_contact_owns(&self, opportunity: &str, contact: &str) {
        let r = reqwest::Client::new()
            .put(format!(
                "{}/_sandbox/lever/opportunities/{opportunity}",
                self.lever
            ))
            .json(&json!({"contact": contact}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    fn has_report(&self, tenant: &str, application: &str) -> bool {
        self.store()
            .latest_report(tenant, application)
            .unwrap()
            .is_some()
    }
}

#[tokio::test]
async fn lever_candidate_deleted_checks_the_token_signature() {
    let e = env("");
    e.store()
        .register(
            &report("vr_l", "lv", "opp-1", "cand-1", "verified"),
            &["lever"],
            "test",
            0,
        )
        .unwrap();
    let data = json!({"candidateId": "cand-1", "opportunityId": "opp-1"});
    let mut forged = lever_event("tok-1", 1000, "candidateDeleted", data.clone());
    forged["signature"] = json!(lever_sign("tok-2", 0));
    let (status, _) = e.send(lever_request(&forged)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(e.has_report("lv", "opp-1"));

    e.lever_user_deletes("opp-1").await;
    let event = lever_event("tok-1", 1000, "candidateDeleted", data);
    let (status, v) = e.send(lever_request(&event)).await;
    assert_eq!(
        (status, v["reports_deleted"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{v}"
    );
    let (status, v) = e.send(lever_request(&event)).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::OK, Some("duplicate")),
        "a redelivery is a no-op"
    );
    // The deletion's audit entry keeps what Lever's API answered.
    let entry = e
        .store()
        .audit_entries(0, 100)
        .unwrap()
        .into_iter()
        .find(|a| a.action == "candidate_data_deleted")
        .unwrap();
    assert_eq!(entry.details["confirmed_by"]["status"], 404, "{entry:?}");
    assert_eq!(
        entry.details["confirmed_by"]["request"],
        "GET /v1/opportunities/opp-1"
    );
    // Unknown tenant or a vendor not configured for the tenant: the same 401 as a bad
    // signature (no tenant enumeration).
    for path in [
        "/ats/nobody/lever/webhook",
        "/ats/acme/lever/webhook",
        "/ats/nobody/greenhouse/webhook",
    ] {
        let req = Request::post(path).body(Body::from("{}")).unwrap();
        assert_eq!(e.send(req).await.0, StatusCode::UNAUTHORIZED, "{path}");
    }
    // A body over the limit: 413 as problem+json, like every other refusal.
    let big = Request::post("/ats/lv/lever/webhook")
        .header("content-type", "application/json")
        .body(Body::from(vec![b' '; 2 << 20]))
        .unwrap();
    let resp = router(e.state.clone()).oneshot(big).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
}

/// Issue 19, item 1: Lever signs only token + triggeredAt, so a captured signed event must not
/// become a deletion of anyone's evidence.
#[tokio::test]
async fn a_rewritten_or_stale_lever_event_deletes_nothing() {
    let e = env("");
    for (id, opp, cand) in [("vr_a", "opp-a", "victim"), ("vr_b", "opp-b", "cand-b")] {
        e.store()
            .register(
                &report(id, "lv", opp, cand, "verified"),
                &["lever"],
                "test",
                0,
            )
            .unwrap();
    }
    // A captured, correctly signed applicationCreated ...
    let created = lever_event(
        "tok-9",
        1000,
        "applicationCreated",
        json!({"opportunityId": "x"}),
    );
    let (status, v) = e.send(lever_request(&created)).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::OK, Some("ignored"))
    );
    // ... re-posted with the same token, triggeredAt and signature as a deletion of a victim:
    // the signed pair was used once already.
    let mut rewritten = created.clone();
    rewritten["event"] = json!("candidateDeleted");
    rewritten["data"] = json!({"candidateId": "victim", "opportunityId": "opp-a"});
    e.lever_user_deletes("opp-a").await; // even were Lever to confirm it
    let (status, v) = e.send(lever_request(&rewritten)).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::OK, Some("duplicate")),
        "{v}"
    );
    assert!(e.has_report("lv", "opp-a"), "the victim's evidence is kept");

    // A signed deletion triggered long ago (2020, or just past the window) is refused.
    for age_ms in [i64::from(i32::MAX) * 1000 / 2, 3_601_000] {
        let stale = lever_event(
            "tok-old",
            age_ms,
            "candidateDeleted",
            json!({"opportunityId": "opp-a"}),
        );
        let (status, _) = e.send(lever_request(&stale)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "age {age_ms} ms");
    }
    // ... and so is one from the future beyond the clock skew.
    let future = lever_event(
        "tok-f",
        -600_000,
        "candidateDeleted",
        json!({"opportunityId": "opp-a"}),
    );
    assert_eq!(
        e.send(lever_request(&future)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(e.has_report("lv", "opp-a"));

    // A fresh, correctly signed deletion of an opportunity Lever still has: 409, nothing gone.
    let unconfirmed = lever_event(
        "tok-b",
        1000,
        "candidateDeleted",
        json!({"opportunityId": "opp-b"}),
    );
    let (status, v) = e.send(lever_request(&unconfirmed)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(e.has_report("lv", "opp-b"));
    // By contact: refused while the contact has an opportunity, done once it has none.
    e.lever_contact_owns("opp-b", "cand-b").await;
    let by_contact = lever_event(
        "tok-c",
        1000,
        "candidateDeleted",
        json!({"candidateId": "cand-b"}),
    );
    assert_eq!(
        e.send(lever_request(&by_contact)).await.0,
        StatusCode::CONFLICT
    );
    assert!(e.has_report("lv", "opp-b"));
    e.lever_user_deletes("opp-b").await;
    // Lever retries the same delivery: refused before, it was not recorded, so it is processed.
    let (status, v) = e.send(lever_request(&by_contact)).await;
    assert_eq!(
        (status, v["reports_deleted"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{v}"
    );

    // The same signed pair with a body that differs only in whitespace: a duplicate.
    let mut bytes = serde_json::to_vec_pretty(&by_contact).unwrap();
    bytes.extend_from_slice(b"\n\n");
    let req = Request::post("/ats/lv/lever/webhook")
        .header("content-type", "application/json")
        .body(Body::from(bytes))
        .unwrap();
    let (status, v) = e.send(req).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::OK, Some("duplicate"))
    );
    assert!(e.has_report("lv", "opp-a"), "still kept");
    assert_eq!(e.store().rejections().unwrap(), 5, "refusals are recorded");
}

#[tokio::test]
async fn stage_gate_follows_reports_reviews_exceptions_and_the_kill_switch() {
    let e = env("");
    let cfg = e.state.config.clone();
    let t = cfg.tenant("acme").unwrap();
    let gate = |app: &str| vigil::ats::gate::decide(&e.store(), t, app).unwrap();

    // No report: blocked (status_blocks_offer).
    let a = gate("1");
    assert!(!a.advance_allowed, "{a:?}");
    e.store()
        .register(
            &report("vr_1", "acme", "1", "c1", "verified"),
            &[],
            "test",
            0,
        )
        .unwrap();
    assert!(gate("1").advance_allowed);

    // needs_review waits in the manual queue until a reviewer approves.
    e.store()
        .register(
            &report("vr_2", "acme", "2", "c2", "needs_review"),
            &[],
            "test",
            0,
        )
        .unwrap();
    let a = gate("2");
    assert!(!a.advance_allowed);
    assert_eq!(a.manual_queue, Some("identity-review"));
    assert_eq!(e.store().review_queue().unwrap().len(), 1);
    e.store()
        .decide("vr_2", Decision::Appeal, "ops", "candidate appealed", 1)
        .unwrap();
    assert_eq!(
        e.store().review_queue().unwrap().len(),
        1,
        "an appeal stays queued"
    );
    e.store()
        .decide("vr_2", Decision::Approve, "reviewer-1", "ID re-checked", 2)
        .unwrap();
    assert!(gate("2").advance_allowed);
    assert!(e.store().review_queue().unwrap().is_empty());

    // An audited exception opens the gate without a report.
    e.store()
        .grant_exception("acme", "3", "head-of-ta", "offline ID check", 3)
        .unwrap();
    let a = gate("3");
    assert!(a.advance_allowed && a.reason.contains("exception"), "{a:?}");

    // Kill switch: nothing advances automatically, even verified candidates.
    e.store()
        .set_kill_switch(true, "recruiting-ops-oncall", "ATS incident", 4)
        .unwrap();
    let a = gate("1");
    assert!(!a.advance_allowed && a.kill_switch, "{a:?}");
    e.store()
        .set_kill_switch(false, "recruiting-ops-oncall", "resolved", 5)
        .unwrap();
    assert!(gate("1").advance_allowed);

    let actions: Vec<String> = e
        .store()
        .audit_entries(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in [
        "review_decision",
        "exception_granted",
        "kill_switch_changed",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }
}

#[tokio::test]
async fn canary_scope_is_deterministic_and_outside_it_vigil_only_monitors() {
    let none = env("[tenants.canary]\ndepartments = [\"Engineering\"]\npercent = 0\n");
    none.store()
        .register(
            &report("vr_n", "acme", "9", "c9", "needs_review"),
            &[],
            "test",
            0,
        )
        .unwrap();
    let cfg = none.state.config.clone();
    let a = vigil::ats::gate::decide(&none.store(), cfg.tenant("acme").unwrap(), "9").unwrap();
    assert!(a.advance_allowed && !a.in_canary, "{a:?}");

    let all = env("[tenants.canary]\ndepartments = [\"engineering\"]\npercent = 100\n");
    all.store()
        .register(
            &report("vr_n", "acme", "9", "c9", "needs_review"),
            &[],
            "test",
            0,
        )
        .unwrap();
    let cfg = all.state.config.clone();
    let a = vigil::ats::gate::decide(&all.store(), cfg.tenant("acme").unwrap(), "9").unwrap();
    assert!(!a.advance_allowed && a.in_canary, "{a:?}");

    // 10 %: about a tenth of candidates, always the same ones.
    let c = vigil::ats::config::Canary {
        departments: vec![],
        percent: 10.0,
    };
    let picked: Vec<bool> = (0..10_000)
        .map(|i| c.includes(&format!("cand-{i}"), None))
        .collect();
    let n = picked.iter().filter(|x| **x).count();
    assert!((800..1200).contains(&n), "{n} of 10000 in a 10 % canary");
    let again: Vec<bool> = (0..10_000)
        .map(|i| c.includes(&format!("cand-{i}"), None))
        .collect();
    assert_eq!(picked, again);
    let sales = vigil::ats::config::Canary {
        departments: vec!["Engineering".into()],
        percent: 100.0,
    };
    assert!(!sales.includes("cand-1", Some("Sales")));
}

#[tokio::test]
async fn gate_endpoint_needs_the_tenant_token() {
    let e = env("");
    e.store()
        .register(
            &report("vr_1", "acme", "1", "c1", "verified"),
            &[],
            "test",
            0,
        )
        .unwrap();
    let req = |auth: Option<&str>| {
        let mut b = Request::get("/ats/acme/gate/1");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(Body::empty()).unwrap()
    };
    assert_eq!(e.send(req(None)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        e.send(req(Some("Bearer nope"))).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Issue 19, item 8: the webhook secret (the key that signs deletions) is not a gate token.
    assert_eq!(
        e.send(req(Some(&format!("Bearer {GH_SECRET}")))).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Nor is a token of the tenant good for another (unknown) tenant: the same 401 as a
    // wrong token, so tenants cannot be enumerated.
    let other = Request::get("/ats/globex/gate/1")
        .header("authorization", format!("Bearer {GATE_TOKEN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(e.send(other).await.0, StatusCode::UNAUTHORIZED);
    let (status, v) = e.send(req(Some(&format!("Bearer {GATE_TOKEN}")))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["advance_allowed"], true);
    assert_eq!(v["report_id"], "vr_1");
}

#[tokio::test]
async fn metrics_expose_outbox_review_queue_and_kill_switch() {
    let e = env("");
    e.store()
        .register(
            &report("vr_1", "acme", "1", "c1", "needs_review"),
            &["greenhouse"],
            "test",
            0,
        )
        .unwrap();
    e.store().set_kill_switch(true, "ops", "drill", 1).unwrap();
    let resp = router(e.state.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = String::from_utf8(
        axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    for line in [
        "vigil_deliveries{state=\"pending\"} 1",
        "vigil_review_queue_depth 1",
        "vigil_kill_switch 1",
        "vigil_dead_letters 0",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
}

/// Zero-retention biometrics: after a run with a reference photo and voice, the only files
/// Vigil wrote are the signed report and the signing key — no embedding, crop or audio.
#[test]
fn no_face_or_voice_data_is_left_on_disk_after_a_run() {
    let home = tempfile::tempdir().unwrap();
    let tmp = home.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = home.path().join("r.vigil.json");
    let o = common::vigil(home.path())
        .env("TMPDIR", &tmp)
        .env("HOME", home.path())
        .current_dir(home.path())
        .arg("score")
        .arg(common::testdata("face_same_person.mp4"))
        .arg("--reference-face")
        .arg(common::testdata("faces/grace_hopper.jpg"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let mut files = Vec::new();
    let mut stack = vec![home.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p.strip_prefix(home.path()).unwrap().display().to_string());
            }
        }
    }
    files.sort();
    // GStreamer's plug-in registry cache is the only other file (no media in it). ONNX Runtime's
    // telemetry files (device id, event database, session file) must not appear: `vigil`
    // disables telemetry before the runtime loads.
    files.retain(|f| !f.starts_with(".cache/gstreamer-1.0/registry."));
    assert_eq!(
        files,
        [
            "r.vigil.json",
            "vigil/signing-key.pem",
            "vigil/signing-key.pub.pem"
        ],
        "unexpected files on disk"
    );
    // And the report carries no vector of embedding length (128 face, 256 voice).
    let (_, payload) = common::read_report(&out);
    fn scan(v: &Value) {
        match v {
            Value::Array(a) => {
                assert!(
                    !(a.len() == 128 || a.len() == 256) || !a.iter().all(Value::is_number),
                    "an embedding-sized vector is in the report"
                );
                a.iter().for_each(scan);
            }
            Value::Object(o) => o.values().for_each(scan),
            _ => {}
        }
    }
    scan(&payload);
}
