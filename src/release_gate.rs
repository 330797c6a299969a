//! `vigil release-gate FILE.yaml`: the connector release gate of the seed article, as one file.
//!
//! It (1) checks every consumer contract (Pact file) for the headers and JSON paths the YAML
//! requires, (2) replays every sandbox fixture end to end — score the recording, sign, queue,
//! deliver to the built-in sandbox ATS, confirm the attachment landed once, ask the stage gate —
//! and compares risk tier, verification status, manual queue, allowed actions and stage update
//! with the expectations, (3) drills the kill switch (a verified candidate must not advance
//! while it is on, and delivery must go on), and (4) writes an Evidence Pack with the signed
//! reports, the gate file, the policies and `release-gate/results.json` (pass/fail per contract
//! and fixture, versions, timestamp). Any mismatch makes it exit 1.

use crate::ats::config::AtsConfig;
use crate::ats::sandbox::{self, Sandbox, SandboxConfig};
use crate::ats::worker::{RunMode, Worker};
use crate::ingest::MediaInput;
use crate::pipeline::{self, ScoreOptions};
use crate::report::{SessionInfo, dsse, pack};
use crate::scoring::Policy;
use crate::store::{NewReport, Store, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Run(String),
}

// ------------------------------------------------------------------ the YAML ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateFile {
    pub version: String,
    #[serde(rename = "releaseGate")]
    pub release_gate: ReleaseGate,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReleaseGate {
    pub integration: String,
    pub ats_vendor: String,
    #[serde(default)]
    pub data_policy: DataPolicy,
    /// Default policy for fixtures (path relative to the YAML).
    pub policy: Option<PathBuf>,
    pub contract_tests: Vec<ContractTest>,
    pub sandbox_fixtures: SandboxFixtures,
    pub rollout_controls: RolloutControls,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DataPolicy {
    #[serde(default)]
    pub zero_retention_biometrics: bool,
    #[serde(default)]
    pub pii_masking: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContractTest {
    pub name: String,
    /// Pact file (relative to the YAML).
    pub pact: PathBuf,
    /// Interaction description in the pact file.
    pub interaction: String,
    #[serde(default)]
    pub required_headers: Vec<String>,
    #[serde(default)]
    pub required_json_paths: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxFixtures {
    pub candidates: Vec<Fixture>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    pub fixture_id: String,
    pub external_id: String,
    pub application_id: u64,
    #[serde(default)]
    pub department: Option<String>,
    /// Recording (relative to the YAML).
    pub media: PathBuf,
    #[serde(default)]
    pub reference_face: Option<PathBuf>,
    #[serde(default)]
    pub reference_voice: Option<PathBuf>,
    /// Policy for this fixture (overrides the gate's).
    #[serde(default)]
    pub policy: Option<PathBuf>,
    #[serde(default)]
    pub description: Option<String>,
    pub expected: Expected,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    #[serde(default)]
    pub risk_tier: Option<String>,
    #[serde(default)]
    pub verification_status: Option<String>,
    #[serde(default)]
    pub manual_queue: Option<String>,
    #[serde(default)]
    pub allowed_actions: Vec<String>,
    #[serde(default)]
    pub stage_update: Option<StageUpdate>,
    #[serde(default)]
    pub evidence_pack_required: bool,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StageUpdate {
    pub ats_stage: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RolloutControls {
    pub canary: CanaryControl,
    pub kill_switch: KillSwitchControl,
    pub retries: Retries,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CanaryControl {
    pub enabled: bool,
    pub scope: CanaryScope,
    #[serde(default)]
    pub success_signals: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryScope {
    #[serde(default)]
    pub department: Option<String>,
    pub percent_of_new_candidates: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillSwitchControl {
    pub owner: String,
    pub action: KillSwitchAction,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillSwitchAction {
    pub mode: String,
    pub behavior: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Retries {
    pub idempotent_webhooks: bool,
    pub backoff: String,
    pub max_attempts: u32,
}

// ------------------------------------------------------------------ results ----

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub details: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub gate_file: String,
    pub integration: String,
    pub ats_vendor: String,
    pub vigil_version: &'static str,
    pub started_at: String,
    pub passed: bool,
    pub contracts: Vec<Check>,
    pub fixtures: Vec<Check>,
    pub rollout_controls: Vec<Check>,
}

/// What Vigil lets a recruiter do next for a report of this status.
pub fn allowed_actions(status: &str) -> &'static [&'static str] {
    match status {
        "verified" => &["advance"],
        "needs_review" => &["approve", "reject", "appeal", "step_up_verification"],
        _ => &["appeal", "resubmit_reference"],
    }
}

/// Resolves a `$.a.b[0].c` path in `v`.
fn json_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let rest = path.strip_prefix('$')?;
    let mut cur = v;
    for seg in rest.split('.').filter(|s| !s.is_empty()) {
        let (name, idx) = match seg.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

fn check_contract(base: &Path, c: &ContractTest) -> Check {
    let mut details = Vec::new();
    let path = base.join(&c.pact);
    let pact: Option<Value> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(pact) = pact else {
        return Check {
            name: c.name.clone(),
            passed: false,
            details: vec![format!("{}: missing or not JSON", path.display())],
        };
    };
    let interaction = pact["interactions"].as_array().and_then(|a| {
        a.iter()
            .find(|i| i["description"] == c.interaction.as_str())
    });
    let Some(i) = interaction else {
        return Check {
            name: c.name.clone(),
            passed: false,
            details: vec![format!(
                "no interaction '{}' in {}",
                c.interaction,
                c.pact.display()
            )],
        };
    };
    let headers = i["request"]["headers"].as_object();
    for h in &c.required_headers {
        let present = headers.is_some_and(|m| m.keys().any(|k| k.eq_ignore_ascii_case(h)));
        if !present {
            details.push(format!("request header {h} is not in the contract"));
        }
    }
    let body = &i["request"]["body"]["content"];
    for p in &c.required_json_paths {
        if json_path(body, p).is_none() {
            details.push(format!("request body has no {p}"));
        }
    }
    let passed = details.is_empty();
    if passed {
        details.push(format!(
            "{} headers and {} JSON paths present in '{}'",
            c.required_headers.len(),
            c.required_json_paths.len(),
            c.interaction
        ));
    }
    Check {
        name: c.name.clone(),
        passed,
        details,
    }
}

/// Runs the gate; returns the results and writes the Evidence Pack to `out`.
pub fn run(file: &Path, out: &Path) -> Result<Results, GateError> {
    let ferr = |message: String| GateError::File {
        path: file.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(file).map_err(|e| ferr(e.to_string()))?;
    let gf: GateFile = serde_yaml_ng::from_str(&text).map_err(|e| ferr(e.to_string()))?;
    if gf.version != "1.0" {
        return Err(ferr(format!(
            "version '{}' is not supported (1.0)",
            gf.version
        )));
    }
    let g = gf.release_gate;
    let base = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut results = Results {
        gate_file: file.display().to_string(),
        integration: g.integration.clone(),
        ats_vendor: g.ats_vendor.clone(),
        vigil_version: env!("CARGO_PKG_VERSION"),
        started_at: crate::report::now_rfc3339(),
        passed: false,
        contracts: g
            .contract_tests
            .iter()
            .map(|c| check_contract(&base, c))
            .collect(),
        fixtures: Vec::new(),
        rollout_controls: Vec::new(),
    };

    // Rollout controls are checked for shape and sense, and the kill switch is drilled below.
    let rc = &g.rollout_controls;
    let mut rollout = Vec::new();
    let canary_ok = (0.0..=100.0).contains(&rc.canary.scope.percent_of_new_candidates);
    rollout.push(Check {
        name: "canary".into(),
        passed: canary_ok,
        details: vec![format!(
            "enabled {}, department {:?}, {} % of new candidates (deterministic by candidate id)",
            rc.canary.enabled,
            rc.canary.scope.department,
            rc.canary.scope.percent_of_new_candidates
        )],
    });
    let retries_ok = rc.retries.idempotent_webhooks
        && rc.retries.backoff == "exponential"
        && (1..=8).contains(&rc.retries.max_attempts);
    rollout.push(Check {
        name: "retries".into(),
        passed: retries_ok,
        details: vec![format!(
            "idempotent webhooks {}, backoff {}, max attempts {} (Vigil: webhook-id + Idempotency-Key, full-jitter exponential, ≤ 8)",
            rc.retries.idempotent_webhooks, rc.retries.backoff, rc.retries.max_attempts
        )],
    });
    if !g.data_policy.zero_retention_biometrics {
        rollout.push(Check {
            name: "data_policy".into(),
            passed: false,
            details: vec![
                "zeroRetentionBiometrics must be true: Vigil never stores embeddings".into(),
            ],
        });
    }

    // Sandbox ATS + a private store, signing key and config for this run.
    let work = tempfile::tempdir().map_err(|e| GateError::Run(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| GateError::Run(e.to_string()))?;
    let sb = Sandbox::new(SandboxConfig::default());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| GateError::Run(format!("sandbox: {e}")))?;
    let url = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|e| GateError::Run(e.to_string()))?
    );
    rt.spawn(sandbox::serve(sb.clone(), listener, std::future::pending()));
    let cfg_text = format!(
        r#"
[store]
path = "gate.db"
[delivery]
max_attempts = {attempts}
backoff_base_ms = 50
backoff_cap_ms = 1000
request_timeout_ms = 5000
lease_s = 60
[[tenants]]
id = "release-gate"
[tenants.greenhouse]
base_url = "{url}"
token_url = "{url}/token"
client_id = "{cid}"
client_secret = "{secret}"
user_id = 1
custom_fields = {{ integrity = "vigil_integrity", risk_tier = "vigil_risk_tier", verification_status = "vigil_status" }}
"#,
        attempts = rc.retries.max_attempts.clamp(1, 8),
        cid = sandbox::GREENHOUSE_CLIENT_ID,
        secret = sandbox::GREENHOUSE_CLIENT_SECRET,
    );
    let cfg = AtsConfig::parse(&cfg_text, &work.path().join("gate.toml"), true)
        .map_err(|e| GateError::Run(e.to_string()))?;
    let tenant = cfg.tenants[0].clone();
    let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let keyid = dsse::key_id(&key.verifying_key());
    let pubkey_path = work.path().join("release-gate.pub.pem");
    {
        use ed25519_dalek::pkcs8::EncodePublicKey;
        let pem = key
            .verifying_key()
            .to_public_key_pem(Default::default())
            .map_err(|e| GateError::Run(e.to_string()))?;
        std::fs::write(&pubkey_path, pem).map_err(|e| GateError::Run(e.to_string()))?;
    }
    let mut store = Store::open(&cfg.store_path).map_err(|e| GateError::Run(e.to_string()))?;
    let default_policy = match &g.policy {
        Some(p) => Policy::load(&base.join(p)).map_err(|e| ferr(e.to_string()))?,
        None => Policy::default(),
    };
    let mut report_files = Vec::new();
    let mut policy_files: Vec<PathBuf> = g.policy.iter().map(|p| base.join(p)).collect();

    for f in &g.sandbox_fixtures.candidates {
        let mut details = Vec::new();
        let mut ok = true;
        let policy = match &f.policy {
            Some(p) => {
                policy_files.push(base.join(p));
                Policy::load(&base.join(p)).map_err(|e| ferr(e.to_string()))?
            }
            None => default_policy.clone(),
        };
        let parse = |p: &Path| MediaInput::parse(&base.join(p).display().to_string());
        let input = parse(&f.media).map_err(|e| ferr(format!("{}: {e}", f.fixture_id)))?;
        let opts = ScoreOptions {
            policy,
            session: SessionInfo {
                session_id: Some(format!("release-gate-{}", f.fixture_id)),
                application_id: Some(f.application_id.to_string()),
                candidate_external_id: Some(f.external_id.clone()),
                ats: Some(g.ats_vendor.clone()),
                department: f.department.clone(),
                // Synthetic sandbox candidates: the consent record says so.
                consent: Some(crate::report::Consent {
                    recorded_at: crate::report::now_rfc3339(),
                    method: "sandbox_fixture".into(),
                    text_version: "synthetic".into(),
                }),
                ..SessionInfo::default()
            },
            reference_face: f
                .reference_face
                .as_deref()
                .map(parse)
                .transpose()
                .map_err(|e| ferr(e.to_string()))?,
            reference_voice: f
                .reference_voice
                .as_deref()
                .map(parse)
                .transpose()
                .map_err(|e| ferr(e.to_string()))?,
            ..ScoreOptions::default()
        };
        let report = match pipeline::score(&input, &opts) {
            Ok(r) => r,
            Err(e) => {
                results.fixtures.push(Check {
                    name: f.fixture_id.clone(),
                    passed: false,
                    details: vec![format!("scoring failed: {e}")],
                });
                continue;
            }
        };
        let env = dsse::sign(&report.to_payload(), &key);
        let bytes = serde_json::to_vec_pretty(&env).expect("envelope serialises");
        let rpath = work.path().join(format!("{}.vigil.json", f.fixture_id));
        std::fs::write(&rpath, &bytes).map_err(|e| GateError::Run(e.to_string()))?;
        report_files.push(rpath);
        let status = report.score.verification_status.as_str().to_owned();
        let tier = report.score.risk_tier.as_str().to_owned();
        store
            .register(
                &NewReport {
                    report_id: report.report_id.clone(),
                    tenant: tenant.id.clone(),
                    application_id: f.application_id.to_string(),
                    candidate_id: Some(f.external_id.clone()),
                    department: f.department.clone(),
                    session_id: report.session.session_id.clone(),
                    integrity: report.score.integrity,
                    risk_tier: tier.clone(),
                    verification_status: status.clone(),
                    envelope: bytes.clone(),
                    html: None,
                },
                &tenant.connectors(),
                "vigil release-gate",
                now_ms(),
            )
            .map_err(|e| GateError::Run(e.to_string()))?;
        let mut cmp = |what: &str, want: Option<&str>, got: Option<&str>| {
            if let Some(w) = want {
                let pass = Some(w) == got;
                ok &= pass;
                details.push(format!(
                    "{what}: expected {w}, got {} {}",
                    got.unwrap_or("none"),
                    if pass { "✔" } else { "✘" }
                ));
            }
        };
        cmp("risk_tier", f.expected.risk_tier.as_deref(), Some(&tier));
        cmp(
            "verification_status",
            f.expected.verification_status.as_deref(),
            Some(&status),
        );
        let actions = allowed_actions(&status);
        for a in &f.expected.allowed_actions {
            let pass = actions.contains(&a.as_str());
            ok &= pass;
            details.push(format!(
                "allowed action {a}: {}",
                if pass { "✔" } else { "✘ not offered" }
            ));
        }
        // Gate after delivery (below) for manual queue and stage update.
        results.fixtures.push(Check {
            name: f.fixture_id.clone(),
            passed: ok,
            details,
        });
    }

    // Deliver everything to the sandbox ATS.
    let worker = Worker::new(
        Store::open(&cfg.store_path).map_err(|e| GateError::Run(e.to_string()))?,
        crate::ats::connectors(&cfg).map_err(|e| GateError::Run(e.to_string()))?,
        cfg.delivery.retry,
        cfg.delivery.concurrency,
        cfg.delivery.lease,
    );
    rt.block_on(worker.run(RunMode::UntilIdle, std::future::pending()))
        .map_err(|e| GateError::Run(e.to_string()))?;
    let snap = sb.snapshot();
    for (f, check) in g
        .sandbox_fixtures
        .candidates
        .iter()
        .zip(results.fixtures.iter_mut())
    {
        if check
            .details
            .first()
            .is_some_and(|d| d.starts_with("scoring failed"))
        {
            continue;
        }
        let attached = snap
            .greenhouse
            .get(&f.application_id)
            .map(|a| a.attachments.len())
            .unwrap_or(0);
        let landed = attached == 1;
        check.passed &= landed;
        check.details.push(format!(
            "report attached to application {} in the sandbox ATS: {attached} attachment(s) {}",
            f.application_id,
            if landed { "✔" } else { "✘" }
        ));
        let ans = crate::ats::gate::decide(&store, &tenant, &f.application_id.to_string())
            .map_err(|e| GateError::Run(e.to_string()))?;
        if let Some(q) = &f.expected.manual_queue {
            let pass = ans.manual_queue == Some(q.as_str());
            check.passed &= pass;
            check.details.push(format!(
                "manual_queue: expected {q}, got {} {}",
                ans.manual_queue.unwrap_or("none"),
                if pass { "✔" } else { "✘" }
            ));
        }
        // status_blocks_offer: the stage may only move when the gate allows it.
        let want_advance = f.expected.stage_update.is_some();
        let pass = ans.advance_allowed == want_advance;
        check.passed &= pass;
        check.details.push(format!(
            "stage gate: {} ({}) {}",
            if ans.advance_allowed {
                f.expected
                    .stage_update
                    .as_ref()
                    .map(|s| format!("advance to {}", s.ats_stage))
                    .unwrap_or_else(|| "advance".into())
            } else {
                "blocked".into()
            },
            ans.reason,
            if pass { "✔" } else { "✘" }
        ));
        if f.expected.evidence_pack_required {
            check.details.push("included in the Evidence Pack ✔".into());
        }
    }

    // Kill-switch drill: with it on, a verified candidate must not advance; reports still flow.
    let ks = &rc.kill_switch;
    let mut drill = Vec::new();
    let mut drill_ok = !ks.owner.trim().is_empty();
    store
        .set_kill_switch(true, &ks.owner, "release-gate drill", now_ms())
        .map_err(|e| GateError::Run(e.to_string()))?;
    if let Some(f) = g
        .sandbox_fixtures
        .candidates
        .iter()
        .find(|f| f.expected.stage_update.is_some())
    {
        let ans = crate::ats::gate::decide(&store, &tenant, &f.application_id.to_string())
            .map_err(|e| GateError::Run(e.to_string()))?;
        drill_ok &= !ans.advance_allowed;
        drill.push(format!(
            "do_not_auto_advance_to_offer: {} blocked while on {}",
            f.fixture_id,
            if ans.advance_allowed { "✘" } else { "✔" }
        ));
    }
    drill.push(format!(
        "continue_collecting_evidence_packs: delivery does not consult the kill switch; {} report(s) delivered ✔",
        snap.greenhouse.len()
    ));
    store
        .set_kill_switch(false, &ks.owner, "release-gate drill done", now_ms())
        .map_err(|e| GateError::Run(e.to_string()))?;
    drill.push(format!("owner {} recorded in the audit log ✔", ks.owner));
    rollout.push(Check {
        name: "kill_switch".into(),
        passed: drill_ok,
        details: drill,
    });
    results.rollout_controls = rollout;
    results.passed = results.contracts.iter().all(|c| c.passed)
        && results.fixtures.iter().all(|c| c.passed)
        && results.rollout_controls.iter().all(|c| c.passed);

    // Evidence Pack.
    let key_entry = (pubkey_path.clone(), key.verifying_key());
    let mut p = pack::Pack::build(
        &report_files,
        &[key_entry],
        None,
        crate::report::now_rfc3339(),
    )
    .map_err(|e| GateError::Run(e.to_string()))?;
    p.manifest.extra.insert(
        "release_gate".into(),
        json!({"passed": results.passed, "keyid": keyid, "gate_file": file.display().to_string()}),
    );
    p.add(
        "release-gate/results.json".into(),
        serde_json::to_vec_pretty(&results).expect("results serialise"),
    );
    p.add(
        format!(
            "release-gate/{}",
            file.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        text.into_bytes(),
    );
    policy_files.sort();
    policy_files.dedup();
    for pf in &policy_files {
        let bytes = std::fs::read(pf).map_err(|e| ferr(format!("{}: {e}", pf.display())))?;
        p.add(
            format!(
                "policy/{}",
                pf.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
            bytes,
        );
    }
    let audit = store
        .audit_entries(0, 10_000)
        .map_err(|e| GateError::Run(e.to_string()))?;
    p.add(
        "release-gate/audit.json".into(),
        serde_json::to_vec_pretty(&audit).expect("audit serialises"),
    );
    p.write(out).map_err(|e| GateError::Run(e.to_string()))?;
    drop(rt);
    Ok(results)
}
