//! The release-gate file (`--file`, YAML, schema `version: "1.0"`) as written: the seed article's
//! connector release gate, with unknown fields rejected so a typo cannot silently skip a check.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    #[expect(
        dead_code,
        reason = "part of the gate schema; the gate file itself goes into the Evidence Pack"
    )]
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
    #[expect(
        dead_code,
        reason = "part of the gate schema; the gate file itself goes into the Evidence Pack"
    )]
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
    #[expect(
        dead_code,
        reason = "part of the gate schema; the gate file itself goes into the Evidence Pack"
    )]
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
    #[expect(
        dead_code,
        reason = "part of the gate schema; the gate file itself goes into the Evidence Pack"
    )]
    pub action: KillSwitchAction,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "part of the gate schema; the gate file itself goes into the Evidence Pack"
)]
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
