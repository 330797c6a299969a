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

mod contract;
pub mod file;

use crate::ats::config::{
    AtsConfig, ConfigError, DeliverySettings, FieldRef, GreenhouseConfig, Secret, Tenant,
    Visibility,
};
use crate::ats::retry::RetryPolicy;
use crate::ats::sandbox::{self, Sandbox, SandboxConfig};
use crate::ats::worker::{RunMode, Worker, WorkerError};
use crate::ingest::{IngestError, MediaInput};
use crate::pipeline::{self, ScoreOptions};
use crate::report::keys::{self, KeyError};
use crate::report::pack::{self, PackError};
use crate::report::{Consent, SessionInfo, dsse, now_rfc3339};
use crate::scoring::Policy;
use crate::scoring::policy::PolicyError;
use crate::store::{NewReport, Store, StoreError, now_ms};
use ed25519_dalek::SigningKey;
use file::{Fixture, GateFile, ReleaseGate, RolloutControls};
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the gate could not run (a failed check is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Yaml {
        path: PathBuf,
        source: serde_yaml_ng::Error,
    },
    #[error("{path}: version '{version}' is not supported (1.0)")]
    Version { path: PathBuf, version: String },
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("fixture {fixture}: {source}")]
    Media {
        fixture: String,
        source: IngestError,
    },
    #[error("release-gate work directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("release-gate signing key: {0}")]
    Key(#[from] KeyError),
    #[error("release-gate sandbox ATS: {0}")]
    Config(#[from] ConfigError),
    #[error("release-gate HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("release-gate delivery: {0}")]
    Worker(#[from] WorkerError),
    #[error("release-gate store: {0}")]
    Store(#[from] StoreError),
    #[error("evidence pack: {0}")]
    Pack(#[from] PackError),
}

// ------------------------------------------------------------------ results ----

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub details: Vec<String>,
}

impl Check {
    /// Records `what`, when the gate expects a value for it: pass or fail, with both values.
    fn expect(&mut self, what: &str, want: Option<&str>, got: &str) {
        if let Some(w) = want {
            let pass = w == got;
            self.passed &= pass;
            self.details.push(format!(
                "{what}: expected {w}, got {got} {}",
                if pass { "✔" } else { "✘" }
            ));
        }
    }
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

/// Runs the gate; returns the results and writes the Evidence Pack to `out`.
pub fn run(file: &Path, out: &Path) -> Result<Results, GateError> {
    let (text, gf) = read_gate(file)?;
    let g = gf.release_gate;
    let base = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut results = Results {
        gate_file: file.display().to_string(),
        integration: g.integration.clone(),
        ats_vendor: g.ats_vendor.clone(),
        vigil_version: env!("CARGO_PKG_VERSION"),
        started_at: now_rfc3339(),
        passed: false,
        contracts: g
            .contract_tests
            .iter()
            .map(|c| contract::check(&base, c))
            .collect(),
        fixtures: Vec::new(),
        rollout_controls: rollout_shape(&g),
    };
    let mut rig = Rig::start(&g.rollout_controls)?;
    let default_policy = match &g.policy {
        Some(p) => Policy::load(&base.join(p))?,
        None => Policy::default(),
    };
    let mut policy_files: Vec<PathBuf> = g.policy.iter().map(|p| base.join(p)).collect();
    let mut report_files = Vec::new();
    for f in &g.sandbox_fixtures.candidates {
        let policy = match &f.policy {
            Some(p) => {
                policy_files.push(base.join(p));
                Policy::load(&base.join(p))?
            }
            None => default_policy.clone(),
        };
        let (check, report) = rig.score_fixture(&base, &g.ats_vendor, f, policy)?;
        report_files.extend(report);
        results.fixtures.push(check);
    }
    // Deliver everything to the sandbox ATS, then confirm each landing and ask the stage gate.
    rig.deliver()?;
    let snap = rig.sandbox.snapshot();
    for (f, check) in g
        .sandbox_fixtures
        .candidates
        .iter()
        .zip(results.fixtures.iter_mut())
    {
        let scored = !check
            .details
            .first()
            .is_some_and(|d| d.starts_with("scoring failed"));
        if scored {
            let attached = snap
                .greenhouse
                .get(&f.application_id)
                .map_or(0, |a| a.attachments.len());
            rig.confirm(f, attached, check)?;
        }
    }
    let drill = rig.kill_switch_drill(&g, snap.greenhouse.len())?;
    results.rollout_controls.push(drill);
    results.passed = results.contracts.iter().all(|c| c.passed)
        && results.fixtures.iter().all(|c| c.passed)
        && results.rollout_controls.iter().all(|c| c.passed);
    policy_files.sort();
    policy_files.dedup();
    rig.write_pack(file, &text, &results, &report_files, &policy_files, out)?;
    Ok(results)
}

fn read_gate(file: &Path) -> Result<(String, GateFile), GateError> {
    let text = std::fs::read_to_string(file).map_err(|source| GateError::Read {
        path: file.to_owned(),
        source,
    })?;
    let gf: GateFile = serde_yaml_ng::from_str(&text).map_err(|source| GateError::Yaml {
        path: file.to_owned(),
        source,
    })?;
    if gf.version != "1.0" {
        return Err(GateError::Version {
            path: file.to_owned(),
            version: gf.version,
        });
    }
    Ok((text, gf))
}

/// Rollout controls checked for shape and sense (the kill switch is drilled later).
fn rollout_shape(g: &ReleaseGate) -> Vec<Check> {
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
    rollout
}

/// The ATS configuration of a gate run: one tenant whose Greenhouse is the sandbox at `url`,
/// with the gate's retry budget and short back-offs (the sandbox answers at once).
fn sandbox_config(work: &Path, url: &str, rc: &RolloutControls) -> Result<AtsConfig, GateError> {
    let url = |path: &str| {
        url::Url::parse(&format!("{url}{path}")).map_err(|e| ConfigError::Invalid {
            path: work.to_owned(),
            message: format!("sandbox URL: {e}"),
        })
    };
    let field = |name: &str| Some(FieldRef::NameKey(name.into()));
    Ok(AtsConfig {
        store_path: work.join("gate.db"),
        retention: Duration::from_secs(365 * 86_400),
        delivery: DeliverySettings {
            retry: RetryPolicy {
                max_attempts: rc.retries.max_attempts.clamp(1, 8),
                base: Duration::from_millis(50),
                cap: Duration::from_millis(1000),
                settle: Duration::from_secs(5),
                ..RetryPolicy::default()
            },
            request_timeout: Duration::from_secs(5),
            concurrency: 4,
            lease: Duration::from_secs(60),
        },
        tenants: vec![Tenant {
            id: "release-gate".into(),
            canary: None,
            greenhouse: Some(GreenhouseConfig {
                base_url: url("")?,
                token_url: url("/token")?,
                client_id: sandbox::GREENHOUSE_CLIENT_ID.into(),
                client_secret: Secret::new(sandbox::GREENHOUSE_CLIENT_SECRET),
                user_id: 1,
                visibility: Visibility::AdminOnly,
                integrity_field: field("vigil_integrity"),
                risk_tier_field: field("vigil_risk_tier"),
                status_field: field("vigil_status"),
                webhook_secret: None,
            }),
            lever: None,
            webhook: None,
            gate_tokens: Vec::new(),
        }],
    })
}

/// Everything one gate run owns: a sandbox ATS on a loopback port, a private store, ATS config
/// and signing key in a temporary directory, and the runtime they run on.
struct Rig {
    work: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    sandbox: Sandbox,
    cfg: AtsConfig,
    tenant: Tenant,
    key: SigningKey,
    pubkey_path: PathBuf,
    store: Store,
}

impl Rig {
    fn start(rc: &RolloutControls) -> Result<Rig, GateError> {
        let work = tempfile::tempdir()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let sb = Sandbox::new(SandboxConfig::default());
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("http://{}", listener.local_addr()?);
        rt.spawn(sandbox::serve(sb.clone(), listener, std::future::pending()));
        let cfg = sandbox_config(work.path(), &url, rc)?;
        let tenant = cfg.tenants[0].clone();
        let key_path = work.path().join("release-gate.pem");
        let key = keys::generate(&key_path, false)?;
        let store = Store::open(&cfg.store_path)?;
        Ok(Rig {
            pubkey_path: keys::public_path_for(&key_path),
            work,
            rt,
            sandbox: sb,
            cfg,
            tenant,
            key,
            store,
        })
    }

    /// Scores, signs and queues one fixture and compares tier, status and allowed actions with
    /// its expectations. A recording that fails to score fails its check, not the run.
    fn score_fixture(
        &mut self,
        base: &Path,
        ats_vendor: &str,
        f: &Fixture,
        policy: Policy,
    ) -> Result<(Check, Option<PathBuf>), GateError> {
        let media = |p: &Path| {
            MediaInput::parse(&base.join(p).display().to_string()).map_err(|source| {
                GateError::Media {
                    fixture: f.fixture_id.clone(),
                    source,
                }
            })
        };
        let opts = ScoreOptions {
            policy,
            session: SessionInfo {
                session_id: Some(format!("release-gate-{}", f.fixture_id)),
                application_id: Some(f.application_id.to_string()),
                candidate_external_id: Some(f.external_id.clone()),
                ats: Some(ats_vendor.to_owned()),
                department: f.department.clone(),
                // Synthetic sandbox candidates: the consent record says so.
                consent: Some(Consent {
                    recorded_at: now_rfc3339(),
                    method: "sandbox_fixture".into(),
                    text_version: "synthetic".into(),
                }),
                ..SessionInfo::default()
            },
            reference_face: f.reference_face.as_deref().map(media).transpose()?,
            reference_voice: f.reference_voice.as_deref().map(media).transpose()?,
            ..ScoreOptions::default()
        };
        let report = match pipeline::score(&media(&f.media)?, &opts) {
            Ok(r) => r,
            Err(e) => {
                let check = Check {
                    name: f.fixture_id.clone(),
                    passed: false,
                    details: vec![format!("scoring failed: {e}")],
                };
                return Ok((check, None));
            }
        };
        let env = dsse::sign(&report.to_payload(), &self.key);
        let bytes = serde_json::to_vec_pretty(&env).expect("envelope serialises");
        let rpath = self
            .work
            .path()
            .join(format!("{}.vigil.json", f.fixture_id));
        std::fs::write(&rpath, &bytes)?;
        // The session names the fixture's candidate and department (set above).
        let new = NewReport::of(
            &report,
            &self.tenant.id,
            f.application_id.to_string(),
            bytes,
            None,
        );
        self.store.register(
            &new,
            &self.tenant.connectors(),
            "vigil release-gate",
            now_ms(),
        )?;
        let mut check = Check {
            name: f.fixture_id.clone(),
            passed: true,
            details: Vec::new(),
        };
        check.expect("risk_tier", f.expected.risk_tier.as_deref(), &new.risk_tier);
        let status = new.verification_status.as_str();
        check.expect(
            "verification_status",
            f.expected.verification_status.as_deref(),
            status,
        );
        let actions = allowed_actions(status);
        for a in &f.expected.allowed_actions {
            let pass = actions.contains(&a.as_str());
            check.passed &= pass;
            check.details.push(format!(
                "allowed action {a}: {}",
                if pass { "✔" } else { "✘ not offered" }
            ));
        }
        Ok((check, Some(rpath)))
    }

    fn deliver(&self) -> Result<(), GateError> {
        let d = &self.cfg.delivery;
        let worker = Worker::new(
            Store::open(&self.cfg.store_path)?,
            crate::ats::connectors(&self.cfg)?,
            d.retry,
            d.concurrency,
            d.lease,
        );
        self.rt
            .block_on(worker.run(RunMode::UntilIdle, std::future::pending()))?;
        Ok(())
    }

    /// After delivery: the report landed exactly once, the manual queue and the stage gate
    /// answer as expected (`status_blocks_offer`: the stage may only move when the gate allows).
    fn confirm(&self, f: &Fixture, attached: usize, check: &mut Check) -> Result<(), GateError> {
        let landed = attached == 1;
        check.passed &= landed;
        check.details.push(format!(
            "report attached to application {} in the sandbox ATS: {attached} attachment(s) {}",
            f.application_id,
            if landed { "✔" } else { "✘" }
        ));
        let ans =
            crate::ats::gate::decide(&self.store, &self.tenant, &f.application_id.to_string())?;
        if let Some(q) = &f.expected.manual_queue {
            let pass = ans.manual_queue == Some(q.as_str());
            check.passed &= pass;
            check.details.push(format!(
                "manual_queue: expected {q}, got {} {}",
                ans.manual_queue.unwrap_or("none"),
                if pass { "✔" } else { "✘" }
            ));
        }
        let want_advance = f.expected.stage_update.is_some();
        let pass = ans.advance_allowed == want_advance;
        check.passed &= pass;
        let stage = if ans.advance_allowed {
            f.expected.stage_update.as_ref().map_or_else(
                || "advance".into(),
                |s| format!("advance to {}", s.ats_stage),
            )
        } else {
            "blocked".into()
        };
        check.details.push(format!(
            "stage gate: {stage} ({}) {}",
            ans.reason,
            if pass { "✔" } else { "✘" }
        ));
        if f.expected.evidence_pack_required {
            check.details.push("included in the Evidence Pack ✔".into());
        }
        Ok(())
    }

    /// With the kill switch on, a verified candidate must not advance; reports still flow.
    fn kill_switch_drill(&mut self, g: &ReleaseGate, delivered: usize) -> Result<Check, GateError> {
        let owner = &g.rollout_controls.kill_switch.owner;
        let mut drill = Vec::new();
        let mut ok = !owner.trim().is_empty();
        self.store
            .set_kill_switch(true, owner, "release-gate drill", now_ms())?;
        let verified = g
            .sandbox_fixtures
            .candidates
            .iter()
            .find(|f| f.expected.stage_update.is_some());
        if let Some(f) = verified {
            let app = f.application_id.to_string();
            let ans = crate::ats::gate::decide(&self.store, &self.tenant, &app)?;
            ok &= !ans.advance_allowed;
            drill.push(format!(
                "do_not_auto_advance_to_offer: {} blocked while on {}",
                f.fixture_id,
                if ans.advance_allowed { "✘" } else { "✔" }
            ));
        }
        drill.push(format!(
            "continue_collecting_evidence_packs: delivery does not consult the kill switch; {delivered} report(s) delivered ✔"
        ));
        self.store
            .set_kill_switch(false, owner, "release-gate drill done", now_ms())?;
        drill.push(format!("owner {owner} recorded in the audit log ✔"));
        Ok(Check {
            name: "kill_switch".into(),
            passed: ok,
            details: drill,
        })
    }

    /// The Evidence Pack: the signed reports and their key, the results, the gate file, the
    /// policies and the audit log of the run.
    fn write_pack(
        &self,
        file: &Path,
        text: &str,
        results: &Results,
        reports: &[PathBuf],
        policies: &[PathBuf],
        out: &Path,
    ) -> Result<(), GateError> {
        let key_entry = (self.pubkey_path.clone(), self.key.verifying_key());
        let mut p = pack::Pack::build(reports, &[key_entry], None, now_rfc3339())?;
        p.manifest.extra.insert(
            "release_gate".into(),
            json!({
                "passed": results.passed,
                "keyid": dsse::key_id(&self.key.verifying_key()),
                "gate_file": file.display().to_string(),
            }),
        );
        p.add(
            "release-gate/results.json".into(),
            serde_json::to_vec_pretty(results).expect("results serialise"),
        );
        p.add(
            format!("release-gate/{}", file_name(file)),
            text.as_bytes().to_vec(),
        );
        for pf in policies {
            let bytes = std::fs::read(pf).map_err(|source| GateError::Read {
                path: pf.clone(),
                source,
            })?;
            p.add(format!("policy/{}", file_name(pf)), bytes);
        }
        let audit = self.store.audit_entries(0, 10_000)?;
        p.add(
            "release-gate/audit.json".into(),
            serde_json::to_vec_pretty(&audit).expect("audit serialises"),
        );
        p.write(out)?;
        Ok(())
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
