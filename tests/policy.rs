//! Scoring policy files and report snapshots.
//!
//! The snapshots (insta, `tests/snapshots/`) pin the whole payload of labelled recordings —
//! events, reasons, scores, tier, status, coverage, versions — with the volatile field
//! (`generated_at`) and the per-second timeline values redacted (their keys stay). Review a
//! change with `cargo insta review`, or `INSTA_UPDATE=always cargo test --test policy`.

mod common;

use common::{testdata, vigil};
use serde_json::Value;

fn payload(fixture: &str, extra: &[&str]) -> Value {
    common::scored(fixture, extra)
}

macro_rules! snapshot {
    ($name:expr, $payload:expr) => {
        insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_json_snapshot!($name, $payload, {
                ".generated_at" => "[generated_at]",
                ".timeline.series.*" => "[per-second values]",
            });
        });
    };
}

#[test]
fn snapshot_lip_sync_mismatch() {
    snapshot!("lipsync_mismatch", payload("lipsync_mismatch.mp4", &[]));
}

#[test]
fn snapshot_frozen_camera() {
    snapshot!("frozen_middle", payload("frozen_middle.mp4", &[]));
}

#[test]
fn snapshot_voice_swap() {
    snapshot!("voice_swap", payload("voice_swap.ogg", &[]));
}

#[test]
fn snapshot_identity_cut() {
    snapshot!("face_identity_cut", payload("face_identity_cut.mp4", &[]));
}

#[test]
fn a_policy_file_changes_the_verdict_and_is_named_in_the_report() {
    let home = tempfile::tempdir().unwrap();
    let default = payload("face_identity_cut.mp4", &[]);
    assert_eq!(default["pipeline"]["policy"]["id"], "vigil-default");
    assert_eq!(
        default["score"]["verification_status"], "needs_review",
        "the default policy never rejects"
    );

    // A stricter policy: identity changes can block, and count double.
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/vigil-default.toml"),
    )
    .unwrap()
    .replace("id = \"vigil-default\"", "id = \"acme-strict\"")
    .replace(
        "[events.identity_change]\nweight = 60\nmin_duration_s = 0\nmin_confidence = 0\ncan_block = false",
        "[events.identity_change]\nweight = 100\nmin_duration_s = 0\nmin_confidence = 0\ncan_block = true",
    )
    .replace("block_min_confidence = 0.9", "block_min_confidence = 0.5");
    let strict = home.path().join("strict.toml");
    std::fs::write(&strict, &text).unwrap();
    let p = payload(
        "face_identity_cut.mp4",
        &["--policy", strict.to_str().unwrap()],
    );
    assert_eq!(p["pipeline"]["policy"]["id"], "acme-strict");
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(text.as_bytes()))
    };
    assert_eq!(p["pipeline"]["policy"]["sha256"], sha);
    assert_ne!(
        p["report_id"], default["report_id"],
        "another policy, another report"
    );
    assert!(p["score"]["integrity"].as_f64() <= default["score"]["integrity"].as_f64());
    assert_eq!(p["score"]["risk_tier"], "high");
    assert_eq!(p["score"]["verification_status"], "rejected");

    // A broken policy is a usage error naming the file and the key.
    let bad = home.path().join("bad.toml");
    std::fs::write(&bad, text.replace("[tiers]", "[tiers]\nlow = 3")).unwrap();
    let o = vigil(home.path())
        .arg("score")
        .arg(testdata("audio_only.ogg"))
        .arg("--policy")
        .arg(&bad)
        .arg("--out")
        .arg(home.path().join("x.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("unknown field"),
        "{err}"
    );
    assert!(
        !home.path().join("x.json").exists(),
        "no report from a bad policy"
    );
}
