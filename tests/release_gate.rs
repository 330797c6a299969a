//! `vigil release-gate`: the shipped gate passes end to end; any wrong expectation, dropped
//! contract field or malformed gate file fails it.

mod common;

use common::vigil;
use serde_json::Value;
use std::path::Path;

fn gate_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/release-gate.yaml")
}

#[test]
fn the_shipped_release_gate_passes_and_writes_its_evidence_pack() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("pack");
    let o = vigil(home.path())
        .arg("release-gate")
        .arg(gate_file())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("release gate vigil-ats-connector: PASS"));
    let results: Value =
        serde_json::from_slice(&std::fs::read(out.join("release-gate/results.json")).unwrap())
            .unwrap();
    assert_eq!(results["passed"], true);
    assert_eq!(results["fixtures"].as_array().unwrap().len(), 6);
    for id in [
        "sx-001-name-mismatch-stepup",
        "sx-002-fast-pass-low-risk",
        "sx-003-doc-resubmission",
    ] {
        assert!(
            results["fixtures"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["name"] == id && f["passed"] == true)
        );
    }
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["reports"].as_array().unwrap().len(), 6);
    assert_eq!(manifest["release_gate"]["passed"], true);
    assert!(out.join("policy/vigil-strict.toml").exists());
    let check = std::process::Command::new("sha256sum")
        .args(["--quiet", "-c", "SHA256SUMS"])
        .current_dir(&out)
        .status()
        .unwrap();
    assert!(check.success());
}

#[test]
fn a_wrong_expectation_or_missing_contract_field_fails_the_gate() {
    let home = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(gate_file()).unwrap();
    // Point relative paths at the real tree from a copy in a temp dir.
    let contracts = gate_file().parent().unwrap().display().to_string();
    let text = text
        .replace("\"../", &format!("\"{contracts}/../"))
        .replace("pact: \"vigil-", &format!("pact: \"{contracts}/vigil-"))
        .replace(
            "expected:\n          risk_tier: \"medium\"",
            "expected:\n          risk_tier: \"low\"",
        )
        .replace("- \"$.data.risk_tier\"", "- \"$.data.risk_level\"");
    let file = home.path().join("gate.yaml");
    std::fs::write(&file, &text).unwrap();
    let o = vigil(home.path())
        .arg("release-gate")
        .arg(&file)
        .arg("--out")
        .arg(home.path().join("pack"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL fixture hc-replayed-video"),
        "{stdout}"
    );
    assert!(
        stdout.contains("risk_tier: expected low, got medium ✘"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL contract webhook.integrity_report.ready"),
        "{stdout}"
    );
    assert!(
        stdout.contains("request body has no $.data.risk_level"),
        "{stdout}"
    );
    assert!(
        stdout.contains("PASS fixture sx-002-fast-pass-low-risk"),
        "{stdout}"
    );
    // The failing run still leaves its evidence.
    let results: Value = serde_json::from_slice(
        &std::fs::read(home.path().join("pack/release-gate/results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(results["passed"], false);

    // A malformed gate file is a usage error.
    std::fs::write(&file, text.replace("atsVendor:", "atsVendr:")).unwrap();
    let o = vigil(home.path())
        .arg("release-gate")
        .arg(&file)
        .arg("--out")
        .arg(home.path().join("pack2"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown field"));
}
