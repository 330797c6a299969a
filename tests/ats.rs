//! ATS delivery end to end: the real `vigil ats` commands against the sandbox ATS (run in this
//! test process so its state can be inspected), with faults injected and the worker killed.

mod common;

use common::{testdata, vigil};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use vigil::ats::sandbox::{Duplicates, FaultConfig, FaultKind, Sandbox, SandboxConfig};
use vigil::store::{NewReport, Store};

struct Server {
    _rt: tokio::runtime::Runtime,
    sandbox: Sandbox,
    url: String,
}

fn start(cfg: SandboxConfig) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sandbox = Sandbox::new(cfg);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(vigil::ats::sandbox::serve(
        sandbox.clone(),
        listener,
        std::future::pending(),
    ));
    Server {
        _rt: rt,
        sandbox,
        url,
    }
}

/// A config with three tenants, one per connector, all pointing at the sandbox.
fn write_config(dir: &Path, url: &str, delivery: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
[store]
path = "vigil.db"

[delivery]
{delivery}

[[tenants]]
id = "gh"
[tenants.greenhouse]
base_url = "{url}"
token_url = "{url}/token"
client_id = "{gid}"
client_secret = {{ env = "TEST_GH_SECRET" }}
user_id = 4080
custom_fields = {{ integrity = "vigil_integrity", risk_tier = "vigil_risk_tier", verification_status = "vigil_status" }}

[[tenants]]
id = "lv"
[tenants.lever]
base_url = "{url}"
api_key = {{ env = "TEST_LEVER_KEY" }}
perform_as = "8d49b010-cc6a-4f40-ace5-e86061c677ed"

[[tenants]]
id = "wh"
[tenants.webhook]
url = "{url}/webhooks/vigil"
secret = {{ env = "TEST_WEBHOOK_SECRET" }}

# One tenant with every connector (the report goes to each).
[[tenants]]
id = "acme"
[tenants.greenhouse]
base_url = "{url}"
token_url = "{url}/token"
client_id = "{gid}"
client_secret = {{ env = "TEST_GH_SECRET" }}
user_id = 4080
custom_fields = {{ integrity = "vigil_integrity", risk_tier = "vigil_risk_tier", verification_status = "vigil_status" }}
[tenants.lever]
base_url = "{url}"
api_key = {{ env = "TEST_LEVER_KEY" }}
perform_as = "8d49b010-cc6a-4f40-ace5-e86061c677ed"
[tenants.webhook]
url = "{url}/webhooks/vigil"
secret = {{ env = "TEST_WEBHOOK_SECRET" }}
"#,
        gid = vigil::ats::sandbox::GREENHOUSE_CLIENT_ID,
    );
    let p = dir.join("ats.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn run_ats(home: &Path, config: &Path, args: &[&str]) -> std::process::Output {
    let mut c = vigil(home);
    c.env(
        "TEST_GH_SECRET",
        vigil::ats::sandbox::GREENHOUSE_CLIENT_SECRET,
    )
    .env("TEST_LEVER_KEY", vigil::ats::sandbox::LEVER_API_KEY)
    .env("TEST_WEBHOOK_SECRET", vigil::ats::sandbox::WEBHOOK_SECRET)
    .arg("ats")
    .arg(args[0])
    .arg("--config")
    .arg(config)
    .args(&args[1..])
    .timeout(Duration::from_secs(600));
    c.output().unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Scores a short real recording with session ids and returns the report path.
fn scored_report(home: &Path) -> std::path::PathBuf {
    let session = home.join("session.json");
    std::fs::write(
        &session,
        r#"{"session_id": "sess-77", "application_id": "31415", "candidate_external_id": "GH-TEST-1002", "ats": "greenhouse", "consent": {"recorded_at": "2026-11-20T09:00:00Z", "method": "meeting_bot_prompt", "text_version": "v3"}}"#,
    )
    .unwrap();
    let out = home.join("report.vigil.json");
    common::score(
        home,
        testdata("audio_only.ogg").to_str().unwrap(),
        &out,
        &["--session", session.to_str().unwrap()],
    );
    out
}

#[test]
fn a_scored_report_lands_once_in_each_ats() {
    let home = tempfile::tempdir().unwrap();
    let srv = start(SandboxConfig::default());
    let cfg = write_config(
        home.path(),
        &srv.url,
        "request_timeout_ms = 5000\nlease_s = 60",
    );
    let report = scored_report(home.path());
    let r = report.to_str().unwrap();
    let o = run_ats(home.path(), &cfg, &["enqueue", r, "--tenant", "acme"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("3 deliveries: greenhouse, lever, webhook"),
        "{}",
        text(&o)
    );
    // Queuing again is a no-op, not a second delivery; another tenant cannot claim it.
    let o = run_ats(home.path(), &cfg, &["enqueue", r, "--tenant", "acme"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("already queued"),
        "{}",
        text(&o)
    );
    let o = run_ats(home.path(), &cfg, &["enqueue", r, "--tenant", "gh"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already registered for tenant 'acme'"));
    let o = {
        let mut c = vigil(home.path());
        c.env(
            "TEST_GH_SECRET",
            vigil::ats::sandbox::GREENHOUSE_CLIENT_SECRET,
        )
        .env("TEST_LEVER_KEY", vigil::ats::sandbox::LEVER_API_KEY)
        .env("TEST_WEBHOOK_SECRET", vigil::ats::sandbox::WEBHOOK_SECRET)
        .env("RUST_LOG", "vigil=info")
        .args(["ats", "deliver", "--until-idle", "--config"])
        .arg(&cfg);
        c.output().unwrap()
    };
    assert!(o.status.success(), "{}", text(&o));
    // Logs tie the delivery to the candidate, the Vigil session and the ATS request.
    let logs = String::from_utf8_lossy(&o.stderr);
    assert!(
        logs.contains("candidate.external_id=GH-TEST-1002"),
        "{logs}"
    );
    assert!(logs.contains("session=sess-77"), "{logs}");

    let envelope = std::fs::read(&report).unwrap();
    let (_, payload) = common::read_report(&report);
    let report_id = payload["report_id"].as_str().unwrap();
    let filename = format!("vigil-integrity-{report_id}.json");
    let snap = srv.sandbox.snapshot();
    let app = &snap.greenhouse[&31415];
    assert_eq!(app.attachments.len(), 1);
    let a = &app.attachments[0];
    assert_eq!(
        (a.filename.as_str(), a.kind.as_str(), a.visibility.as_str()),
        (filename.as_str(), "other", "admin_only")
    );
    assert_eq!(
        a.sha256,
        sha256_hex(&envelope),
        "the signed bytes arrive unchanged"
    );
    let cf: BTreeMap<&str, &Value> = app
        .custom_fields
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    assert_eq!(
        cf["vigil_integrity"].as_f64(),
        Some(payload["score"]["integrity"].as_f64().unwrap().round())
    );
    assert_eq!(cf["vigil_risk_tier"], &payload["score"]["risk_tier"]);
    assert_eq!(cf["vigil_status"], &payload["score"]["verification_status"]);

    let opp = &snap.lever["31415"];
    assert_eq!(opp.files.len(), 1);
    assert_eq!(opp.files[0].name, filename);
    assert_eq!(opp.files[0].sha256, sha256_hex(&envelope));
    assert_eq!(opp.notes.len(), 1);
    assert!(opp.notes[0].value.contains(report_id));

    assert_eq!(snap.webhooks.len(), 1);
    assert_eq!(snap.webhooks[&format!("msg_{report_id}")], report_id);
    assert_eq!(snap.duplicate_writes, 0);
    assert_eq!(snap.tokens_issued, 1, "the Greenhouse token is cached");

    let o = run_ats(home.path(), &cfg, &["status", "--json"]);
    let rows: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["state"] == "delivered"), "{rows:?}");

    // The audit log tells the story and its chain verifies.
    let audit = |args: &[&str]| {
        vigil(home.path())
            .env(
                "TEST_GH_SECRET",
                vigil::ats::sandbox::GREENHOUSE_CLIENT_SECRET,
            )
            .env("TEST_LEVER_KEY", vigil::ats::sandbox::LEVER_API_KEY)
            .env("TEST_WEBHOOK_SECRET", vigil::ats::sandbox::WEBHOOK_SECRET)
            .arg("audit")
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let o = audit(&["log", "--json"]);
    let actions: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        actions,
        [
            "report_registered",
            "report_delivered",
            "report_delivered",
            "report_delivered"
        ]
    );
    let o = audit(&["verify"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("intact: 4 entries"));
    // Someone edits an entry behind Vigil's back: verify names it and exits 1.
    let conn = rusqlite::Connection::open(home.path().join("vigil.db")).unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'someone-else' WHERE seq = 2;",
    )
    .unwrap();
    let o = audit(&["verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("BROKEN at entry 2"));
}

#[test]
fn enqueue_refuses_forged_reports_and_unknown_tenants() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), "http://127.0.0.1:9", "");
    let report = scored_report(home.path());
    // Change one byte of the payload: the signature no longer matches.
    let mut env: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let p = env["payload"].as_str().unwrap().to_owned();
    let flipped = if p.starts_with('e') { "f" } else { "e" };
    env["payload"] = Value::String(format!("{flipped}{}", &p[1..]));
    let forged = home.path().join("forged.json");
    std::fs::write(&forged, serde_json::to_vec(&env).unwrap()).unwrap();
    let o = run_ats(
        home.path(),
        &cfg,
        &["enqueue", forged.to_str().unwrap(), "--tenant", "gh"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = run_ats(
        home.path(),
        &cfg,
        &["enqueue", report.to_str().unwrap(), "--tenant", "nobody"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no tenant 'nobody'"));
    // Nothing was queued by either.
    let o = run_ats(home.path(), &cfg, &["status", "--json"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
}

#[test]
fn missing_secret_is_a_config_error_naming_the_variable() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), "http://127.0.0.1:9", "");
    let o = vigil(home.path())
        .env_remove("TEST_GH_SECRET")
        .args(["ats", "status", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("TEST_GH_SECRET"));
}

/// `ats status` pages through every delivery, newest first: the line after each page gives the
/// totals and the `--before` id of the next page, and the last page names none.
#[test]
fn status_pages_through_every_delivery_with_totals() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), "http://127.0.0.1:9", "");
    let registered = register_many(&home.path().join("vigil.db"), "gh", "greenhouse", 100, 7);
    let mut seen = Vec::new();
    let mut args = vec![
        "status".to_string(),
        "--json".into(),
        "--limit".into(),
        "3".into(),
    ];
    for page in 0.. {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run_ats(home.path(), &cfg, &argv);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let rows: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
        let footer = String::from_utf8_lossy(&o.stderr).trim().to_owned();
        assert!(
            footer.contains(&format!(
                "{} shown; 7 in all (7 pending, 0 delivered, 0 dead)",
                rows.len()
            )),
            "{footer}"
        );
        seen.extend(rows.iter().map(|r| r["id"].as_i64().unwrap()));
        match footer.split_once("older: --before ") {
            Some((_, id)) => {
                assert_eq!(rows.len(), 3, "page {page}");
                assert_eq!(id.parse::<i64>().unwrap(), *seen.last().unwrap());
                args.truncate(4);
                args.extend(["--before".into(), id.to_owned()]);
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), registered.len(), "{seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seen:?}"
    );
    let o = run_ats(home.path(), &cfg, &["status", "--state", "dead"]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("0 shown; 0 in all (7 pending"), "{table}");
    let o = run_ats(home.path(), &cfg, &["status", "--limit", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // A state this version does not know (the table's CHECK bypassed, as a hand edit or a
    // newer schema could) is an error, not read as "pending".
    let db = rusqlite::Connection::open(home.path().join("vigil.db")).unwrap();
    db.execute_batch("PRAGMA ignore_check_constraints = ON")
        .unwrap();
    db.execute(
        "UPDATE deliveries SET state = 'bogus' WHERE id = ?1",
        [seen[0]],
    )
    .unwrap();
    let o = run_ats(home.path(), &cfg, &["status"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("unknown DeliveryState 'bogus'"),
        "{}",
        text(&o)
    );
}

/// The kill switch and the review queue take their choices as closed sets: an unknown one is a
/// usage error (exit 2) that changes nothing; a known one is recorded with its owner.
#[test]
fn kill_switch_and_review_accept_only_their_choices() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), "http://127.0.0.1:9", "");
    let o = run_ats(
        home.path(),
        &cfg,
        &["kill-switch", "sideways", "--owner", "ops"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("possible values: on, off, status"),
        "{}",
        text(&o)
    );
    let o = run_ats(
        home.path(),
        &cfg,
        &["kill-switch", "on", "--owner", "ops", "--reason", "drill"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = run_ats(home.path(), &cfg, &["kill-switch", "status"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("kill switch ON (last set by ops: drill)"),
        "{out}"
    );
    let o = run_ats(home.path(), &cfg, &["kill-switch", "off"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("needs --owner"), "{}", text(&o));
    let o = run_ats(
        home.path(),
        &cfg,
        &["review", "r1", "--decision", "exception", "--by", "me"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("possible values: approve, reject, appeal"),
        "{}",
        text(&o)
    );
    let o = run_ats(home.path(), &cfg, &["status", "--state", "stuck"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("possible values: pending, delivered, dead"),
        "{}",
        text(&o)
    );
}

/// Registers `n` signed reports directly in the store for `tenant` (application ids from
/// `first_app`), returning (report_id, application_id, envelope sha256).
fn register_many(
    db: &Path,
    tenant: &str,
    connector: &str,
    first_app: u64,
    n: u64,
) -> Vec<(String, String, String)> {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let mut store = Store::open(db).unwrap();
    (0..n)
        .map(|i| {
            let app = (first_app + i).to_string();
            let report_id = format!("vr_{tenant}{i:06}");
            let payload =
                serde_json::json!({"schema": "vigil.integrity-report/v1", "report_id": report_id});
            let env = vigil::report::dsse::sign(&serde_json::to_vec(&payload).unwrap(), &key);
            let envelope = serde_json::to_vec(&env).unwrap();
            let sha = sha256_hex(&envelope);
            store
                .register(
                    &NewReport {
                        report_id: report_id.clone(),
                        tenant: tenant.into(),
                        application_id: app.clone(),
                        candidate_id: None,
                        department: None,
                        session_id: None,
                        integrity: 90.0,
                        risk_tier: "low".into(),
                        verification_status: "verified".into(),
                        envelope,
                        html: Some(b"<!doctype html><title>r</title>".to_vec()),
                    },
                    &[connector],
                    "test",
                    vigil::store::now_ms(),
                )
                .unwrap();
            (report_id, app, sha)
        })
        .collect()
}

/// 1 000 deliveries (400 Greenhouse, 300 Lever, 300 webhook) against a sandbox that faults on
/// ~30 % of requests — including writes whose answer is lost — while the worker is killed
/// (SIGKILL) mid-run and restarted. Every report must land exactly once and none be lost.
#[test]
fn thousand_deliveries_with_faults_and_a_killed_worker_land_exactly_once() {
    let home = tempfile::tempdir().unwrap();
    let srv = start(SandboxConfig {
        faults: FaultConfig {
            rate: 0.3,
            kinds: FaultKind::ALL.to_vec(),
            seed: 42,
            hang_ms: 1_500,
            slow_ms: 150,
        },
        duplicates: Duplicates::Accept,
        ..SandboxConfig::default()
    });
    let cfg = write_config(
        home.path(),
        &srv.url,
        "max_attempts = 8\nbackoff_base_ms = 20\nbackoff_cap_ms = 400\nrequest_timeout_ms = 500\nconcurrency = 32\nlease_s = 2",
    );
    let db = home.path().join("vigil.db");
    let gh = register_many(&db, "gh", "greenhouse", 500_000, 400);
    let lv = register_many(&db, "lv", "lever", 600_000, 300);
    let wh = register_many(&db, "wh", "webhook", 700_000, 300);
    let started = Instant::now();

    // First worker: runs "forever" until killed once a third of the work has landed.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("vigil"))
        .env("XDG_DATA_HOME", home.path())
        .env(
            "TEST_GH_SECRET",
            vigil::ats::sandbox::GREENHOUSE_CLIENT_SECRET,
        )
        .env("TEST_LEVER_KEY", vigil::ats::sandbox::LEVER_API_KEY)
        .env("TEST_WEBHOOK_SECRET", vigil::ats::sandbox::WEBHOOK_SECRET)
        .env("NO_PROXY", "127.0.0.1")
        .args(["ats", "deliver", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let s = srv.sandbox.snapshot();
        let landed = s.greenhouse.len() + s.lever.len() + s.webhooks.len();
        if landed >= 330 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed_at = started.elapsed();

    // Restart until idle; dead letters (8 failed attempts in a row) are requeued, as an
    // operator would with `vigil ats retry --all-dead`.
    let mut dead_lettered = 0;
    for round in 0..6 {
        let o = run_ats(home.path(), &cfg, &["deliver", "--until-idle"]);
        match o.status.code() {
            Some(0) => break,
            Some(1) => {
                let dead: Vec<Value> = serde_json::from_slice(
                    &run_ats(home.path(), &cfg, &["status", "--state", "dead", "--json"]).stdout,
                )
                .unwrap();
                dead_lettered += dead.len();
                let o = run_ats(home.path(), &cfg, &["retry", "--all-dead"]);
                assert!(o.status.success(), "{}", text(&o));
                assert!(round < 5, "still dead letters after 5 requeues");
            }
            _ => panic!("deliver failed: {}", text(&o)),
        }
    }
    let drained = started.elapsed();

    let store = Store::open(&db).unwrap();
    let counts = store.counts().unwrap();
    assert_eq!(
        (counts.pending, counts.delivered, counts.dead),
        (0, 1000, 0)
    );
    let snap = srv.sandbox.snapshot();
    assert_eq!(snap.duplicate_writes, 0, "something was posted twice");
    for (report_id, app, sha) in &gh {
        let a = &snap.greenhouse[&app.parse::<u64>().unwrap()];
        let json: Vec<_> = a
            .attachments
            .iter()
            .filter(|x| x.filename.ends_with(".json"))
            .collect();
        assert_eq!(json.len(), 1, "{report_id}: {:?}", a.attachments);
        assert_eq!(&json[0].sha256, sha);
        assert_eq!(a.attachments.len(), 2, "report + HTML rendering");
        assert_eq!(a.custom_fields.len(), 3);
    }
    for (report_id, opp, sha) in &lv {
        let o = &snap.lever[opp];
        assert_eq!(o.files.len(), 2, "{report_id}: {:?}", o.files);
        assert!(o.files.iter().any(|f| &f.sha256 == sha));
        assert_eq!(o.notes.len(), 1, "{report_id}: notes {:?}", o.notes);
    }
    for (report_id, _, _) in &wh {
        assert_eq!(snap.webhooks[&format!("msg_{report_id}")], *report_id);
    }
    assert_eq!(snap.webhooks.len(), 300);
    let faults: u64 = snap.faults.values().sum();
    let stats = store.attempt_stats().unwrap();
    assert!(
        faults as f64 > 0.2 * snap.requests as f64,
        "faults were injected"
    );
    // The figures BENCHMARKS.md quotes (run with --nocapture to see them).
    eprintln!(
        "ATS reliability: 1000 deliveries, {} requests, {} faults ({:.0} %: {:?}), {} webhook re-deliveries de-duplicated by the receiver; \
         attempts {} ({:.2} per delivery, max {}), {} dead-lettered and requeued; worker killed at {:.1} s; drained in {:.1} s ({:.0} deliveries/s)",
        snap.requests,
        faults,
        100.0 * faults as f64 / snap.requests as f64,
        snap.faults,
        snap.webhook_redeliveries,
        stats.attempts,
        stats.attempts as f64 / 1000.0,
        stats.max_attempts,
        dead_lettered,
        killed_at.as_secs_f64(),
        drained.as_secs_f64(),
        1000.0 / drained.as_secs_f64()
    );
}

#[test]
fn permanent_errors_dead_letter_at_once_and_requeue_works() {
    let home = tempfile::tempdir().unwrap();
    let srv = start(SandboxConfig {
        blocked_extensions: vec!["json".into()],
        ..SandboxConfig::default()
    });
    let cfg = write_config(
        home.path(),
        &srv.url,
        "request_timeout_ms = 5000\nlease_s = 60",
    );
    let db = home.path().join("vigil.db");
    register_many(&db, "gh", "greenhouse", 100, 1);
    let o = run_ats(home.path(), &cfg, &["deliver", "--until-idle"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("dead letter (permanent error)"), "{stderr}");
    assert!(stderr.contains("HTTP 422"), "{stderr}");
    let dead: Vec<Value> = serde_json::from_slice(
        &run_ats(home.path(), &cfg, &["status", "--state", "dead", "--json"]).stdout,
    )
    .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["attempts"], 1, "a 422 is not retried");
    srv.sandbox.set_blocked_extensions(Vec::new());
    let id = dead[0]["id"].to_string();
    let o = run_ats(home.path(), &cfg, &["retry", &id]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run_ats(home.path(), &cfg, &["deliver", "--until-idle"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(srv.sandbox.snapshot().greenhouse[&100].attachments.len(), 2);
}

#[test]
fn retry_after_is_honoured_and_secrets_never_reach_the_logs() {
    let home = tempfile::tempdir().unwrap();
    let srv = start(SandboxConfig {
        faults: FaultConfig {
            rate: 1.0,
            kinds: vec![FaultKind::RateLimited],
            ..FaultConfig::default()
        },
        ..SandboxConfig::default()
    });
    let cfg = write_config(
        home.path(),
        &srv.url,
        "max_attempts = 3\nbackoff_base_ms = 1\nbackoff_cap_ms = 2\nrequest_timeout_ms = 2000\nlease_s = 60",
    );
    let db = home.path().join("vigil.db");
    register_many(&db, "gh", "greenhouse", 200, 1);
    register_many(&db, "wh", "webhook", 300, 1);
    let mut c = vigil(home.path());
    c.env(
        "TEST_GH_SECRET",
        vigil::ats::sandbox::GREENHOUSE_CLIENT_SECRET,
    )
    .env("TEST_LEVER_KEY", vigil::ats::sandbox::LEVER_API_KEY)
    .env("TEST_WEBHOOK_SECRET", vigil::ats::sandbox::WEBHOOK_SECRET)
    .env("RUST_LOG", "trace")
    .args(["ats", "deliver", "--until-idle", "--config"])
    .arg(&cfg);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(1), "all attempts were rate-limited");
    let logs = text(&o);
    assert!(logs.contains("HTTP 429"), "{logs}");
    // Every attempt's logs carry the ids that tie Vigil and the ATS together.
    assert!(logs.contains("delivery_attempt{"), "{logs}");
    assert!(logs.contains("report=vr_gh000000"), "{logs}");
    assert!(logs.contains("ats.request_id=\"sbx-"), "{logs}");
    for secret in [
        vigil::ats::sandbox::GREENHOUSE_CLIENT_SECRET,
        vigil::ats::sandbox::LEVER_API_KEY,
        vigil::ats::sandbox::WEBHOOK_SECRET,
        &vigil::ats::sandbox::WEBHOOK_SECRET["whsec_".len()..],
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
    // Three attempts each, at least `Retry-After: 1` s apart (a floor, not a timing claim).
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut st = conn
        .prepare(
            "SELECT delivery_id, started_ms FROM delivery_attempts ORDER BY delivery_id, attempt",
        )
        .unwrap();
    let rows: Vec<(i64, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 6, "{rows:?}");
    for pair in rows.windows(2).filter(|w| w[0].0 == w[1].0) {
        assert!(pair[1].1 - pair[0].1 >= 1000, "{rows:?}");
    }
}

#[test]
fn scheduled_interviews_become_sessions_without_per_interview_setup() {
    let home = tempfile::tempdir().unwrap();
    let srv = start(SandboxConfig::default());
    srv.sandbox.add_interview(
        31087450,
        31415,
        "2026-12-01T15:00:00Z",
        "https://meet.example/abc",
    );
    srv.sandbox.add_interview(
        31087451,
        27182,
        "2026-12-02T09:30:00Z",
        "https://meet.example/def",
    );
    srv.sandbox.add_interview(
        31087400,
        11111,
        "2026-11-01T09:30:00Z",
        "https://meet.example/old",
    );
    let cfg = write_config(
        home.path(),
        &srv.url,
        "request_timeout_ms = 5000\nlease_s = 60",
    );
    for round in 0..2 {
        let o = run_ats(
            home.path(),
            &cfg,
            &[
                "sync-interviews",
                "--tenant",
                "gh",
                "--since",
                "2026-11-23T00:00:00Z",
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        let expect = if round == 0 {
            "2 new session(s)"
        } else {
            "0 new session(s)"
        };
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(expect),
            "{}",
            text(&o)
        );
    }
    let o = run_ats(home.path(), &cfg, &["sessions", "--tenant", "gh", "--json"]);
    let list: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["interview_id"], "31087450");
    assert_eq!(list[0]["application_id"], "31415");
    assert_eq!(list[0]["video_url"], "https://meet.example/abc");
    assert_eq!(list[0]["source"], "greenhouse_schedule");
}

/// `vigil rescore --deliver`: only the verdict that changed is queued, once, audited as a
/// rescore with its policy and the report it supersedes; the Greenhouse record then holds the new
/// report and shows the new status.
#[test]
fn rescore_delivers_only_the_changed_verdicts_once() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let srv = start(SandboxConfig::default());
    let cfg = write_config(h, &srv.url, "request_timeout_ms = 5000\nlease_s = 60");
    let arch = h.join("archive");
    let consent = r#""consent": {"recorded_at": "2026-11-20T09:00:00Z", "method": "meeting_bot_prompt", "text_version": "v3"}"#;
    for (dir, file, app) in [
        ("a", "face_identity_cut.mp4", "2718"),
        ("b", "clip_vp8_opus.webm", "2719"),
    ] {
        let media = arch.join(dir).join(file);
        std::fs::create_dir_all(media.parent().unwrap()).unwrap();
        std::fs::copy(testdata(file), &media).unwrap();
        let session = format!("{}.session.json", media.display());
        std::fs::write(
            &session,
            format!(
                r#"{{"application_id": "{app}", "candidate_external_id": "GH-{app}", {consent}}}"#
            ),
        )
        .unwrap();
        common::score(
            h,
            media.to_str().unwrap(),
            Path::new(&format!("{}.vigil.json", media.display())),
            &["--session", &session, "--sampling", "keyframes"],
        );
    }
    let strict = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/vigil-strict.toml");
    let out = h.join("out");
    let rescore = || {
        let mut c = vigil(h);
        c.env(
            "TEST_GH_SECRET",
            vigil::ats::sandbox::GREENHOUSE_CLIENT_SECRET,
        )
        .env("TEST_LEVER_KEY", vigil::ats::sandbox::LEVER_API_KEY)
        .env("TEST_WEBHOOK_SECRET", vigil::ats::sandbox::WEBHOOK_SECRET)
        .arg("rescore")
        .arg(&arch)
        .arg("--out")
        .arg(&out)
        .arg("--policy")
        .arg(&strict)
        .args([
            "--sampling",
            "keyframes",
            "--deliver",
            "--tenant",
            "gh",
            "--config",
        ])
        .arg(&cfg)
        .timeout(Duration::from_secs(600));
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let s: Value =
            serde_json::from_slice(&std::fs::read(out.join("rescore.json")).unwrap()).unwrap();
        s
    };
    let s = rescore();
    assert_eq!(s["changed"].as_array().unwrap().len(), 1, "{s:#}");
    let new_id = s["changed"][0]["report_id"]["new"]
        .as_str()
        .unwrap()
        .to_string();
    let old_id = s["changed"][0]["report_id"]["old"]
        .as_str()
        .unwrap()
        .to_string();
    let queued = s["delivery"]["queued"].as_array().unwrap();
    assert_eq!(queued.len(), 1, "{s:#}");
    assert_eq!(queued[0]["report_id"], new_id.as_str());
    assert_eq!(queued[0]["supersedes"], old_id.as_str());
    // Again: nothing new is queued.
    let s = rescore();
    assert_eq!(
        s["delivery"]["queued"].as_array().unwrap().len(),
        0,
        "{s:#}"
    );
    assert_eq!(s["delivery"]["already_queued"][0], new_id.as_str());

    let store = Store::open(&h.join("vigil.db")).unwrap();
    let counts = store.counts().unwrap();
    assert_eq!(counts.pending, 1, "one report, one Greenhouse delivery");
    let audit = store.audit_entries(0, 100).unwrap();
    let reg: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "report_registered")
        .collect();
    assert_eq!(reg.len(), 1);
    assert_eq!(reg[0].actor, "vigil rescore");
    assert_eq!(reg[0].subject, new_id);
    assert_eq!(
        reg[0].details["context"]["rescore"]["supersedes"],
        old_id.as_str()
    );
    assert_eq!(
        reg[0].details["context"]["rescore"]["policy"]["id"],
        "vigil-strict"
    );
    drop(store);

    let o = run_ats(h, &cfg, &["deliver", "--until-idle"]);
    assert!(o.status.success(), "{}", text(&o));
    let snap = srv.sandbox.snapshot();
    let app = &snap.greenhouse[&2718];
    let mut names: Vec<&str> = app
        .attachments
        .iter()
        .map(|a| a.filename.as_str())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            format!("vigil-integrity-{new_id}.html"),
            format!("vigil-integrity-{new_id}.json")
        ]
    );
    let status = app
        .custom_fields
        .iter()
        .find(|(k, _)| k.as_str() == "vigil_status")
        .map(|(_, v)| v.clone());
    assert_eq!(status, Some(Value::from("rejected")));
    assert!(
        !snap.greenhouse.contains_key(&2719),
        "the unchanged verdict is not re-sent"
    );
}

/// The sandbox answers a malformed attachment upload as Harvest v3 does: 400 for a body that is
/// not a JSON object, 422 naming the first faulty field, 401 without a token — and stores
/// nothing for any of them.
#[test]
fn sandbox_refuses_malformed_greenhouse_uploads_naming_the_field() {
    let srv = start(SandboxConfig::default());
    let url = srv.url.clone();
    let outcomes = srv._rt.block_on(async move {
        let http = reqwest::Client::new();
        let token: Value = http
            .post(format!("{url}/token"))
            .basic_auth(
                vigil::ats::sandbox::GREENHOUSE_CLIENT_ID,
                Some(vigil::ats::sandbox::GREENHOUSE_CLIENT_SECRET),
            )
            .form(&[("grant_type", "client_credentials"), ("sub", "4080")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = token["access_token"].as_str().unwrap().to_owned();
        let good = serde_json::json!({
            "application_id": 7, "filename": "r.json", "type": "other", "content": "e30="
        });
        let with = |k: &str, v: Value| {
            let mut b = good.clone();
            b[k] = v;
            b
        };
        let without = |k: &str| {
            let mut b = good.clone();
            b.as_object_mut().unwrap().remove(k);
            b
        };
        let cases: Vec<(&str, Option<String>, Vec<u8>)> = vec![
            ("no token", None, good.to_string().into()),
            ("array", Some(token.clone()), b"[]".to_vec()),
            (
                "unknown",
                Some(token.clone()),
                with("colour", "red".into()).to_string().into(),
            ),
            (
                "app id",
                Some(token.clone()),
                with("application_id", "7".into()).to_string().into(),
            ),
            (
                "no name",
                Some(token.clone()),
                without("filename").to_string().into(),
            ),
            (
                "no ext",
                Some(token.clone()),
                with("filename", "report".into()).to_string().into(),
            ),
            (
                "type",
                Some(token.clone()),
                with("type", "selfie".into()).to_string().into(),
            ),
            (
                "base64",
                Some(token.clone()),
                with("content", "%%".into()).to_string().into(),
            ),
            (
                "both",
                Some(token.clone()),
                with("url", "https://x".into()).to_string().into(),
            ),
            (
                "visibility",
                Some(token.clone()),
                with("visibility", "all".into()).to_string().into(),
            ),
        ];
        let mut out = Vec::new();
        for (name, token, body) in cases {
            let mut req = http.post(format!("{url}/v3/attachments")).body(body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            let field = body["errors"][0]["field"].as_str().map(str::to_owned);
            out.push((name, status, field));
        }
        out
    });
    let expected = [
        ("no token", 401, None),
        ("array", 400, None),
        ("unknown", 422, Some("colour")),
        ("app id", 422, Some("application_id")),
        ("no name", 422, Some("filename")),
        ("no ext", 422, Some("filename")),
        ("type", 422, Some("type")),
        ("base64", 422, Some("content")),
        ("both", 422, Some("content")),
        ("visibility", 422, Some("visibility")),
    ];
    for ((name, status, field), (ename, estatus, efield)) in outcomes.iter().zip(expected) {
        assert_eq!(
            (*name, *status, field.as_deref()),
            (ename, estatus, efield),
            "{name}"
        );
    }
    assert!(
        srv.sandbox.snapshot().greenhouse.is_empty(),
        "nothing stored"
    );
}
