//! `vigil evidence-pack`: verified reports + HTML + keys + policy + manifest, as a directory or
//! a ZIP; a forged report aborts with nothing written.

mod common;

use common::{testdata, vigil};
use serde_json::Value;
use std::path::Path;

fn scored(home: &Path, fixture: &str) -> std::path::PathBuf {
    let out = home.join(format!("{fixture}.vigil.json"));
    common::score(home, testdata(fixture).to_str().unwrap(), &out, &[]);
    out
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn directory_and_zip_packs_hold_verified_reports_with_a_checkable_manifest() {
    let home = tempfile::tempdir().unwrap();
    let a = scored(home.path(), "audio_only.ogg");
    let b = scored(home.path(), "lipsync_mismatch.mp4");
    let policy = home.path().join("policy.toml");
    std::fs::write(&policy, "# the policy used\n").unwrap();
    let dir = home.path().join("pack");
    let o = vigil(home.path())
        .arg("evidence-pack")
        .args([&a, &b])
        .arg("--policy")
        .arg(&policy)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    // The SHA256SUMS file checks with coreutils.
    let check = std::process::Command::new("sha256sum")
        .args(["--quiet", "-c", "SHA256SUMS"])
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(check.success());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["schema"], "vigil.evidence-pack/v1");
    let reports = manifest["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    for (r, src) in reports.iter().zip([&a, &b]) {
        let (_, payload) = common::read_report(src);
        assert_eq!(r["report_id"], payload["report_id"]);
        assert_eq!(r["signature"], "valid");
        assert_eq!(
            r["verification_status"],
            payload["score"]["verification_status"]
        );
        let packed = std::fs::read(dir.join(r["file"].as_str().unwrap())).unwrap();
        assert_eq!(
            packed,
            std::fs::read(src).unwrap(),
            "report bytes unchanged"
        );
        let page = std::fs::read_to_string(dir.join(r["html"].as_str().unwrap())).unwrap();
        assert!(page.contains("Signature valid"));
    }
    let inputs = manifest["inputs"].as_array().unwrap();
    let policy_in = inputs.iter().find(|i| i["role"] == "policy").unwrap();
    assert_eq!(
        policy_in["sha256"],
        sha256_hex(&std::fs::read(&policy).unwrap())
    );
    assert!(inputs.iter().any(|i| i["role"] == "public_key"));
    assert!(dir.join("policy/policy.toml").exists());
    // A packed report verifies offline with the packed key.
    let key = std::fs::read_dir(dir.join("keys"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let o = vigil(home.path())
        .arg("verify")
        .arg(dir.join(reports[0]["file"].as_str().unwrap()))
        .arg("--pubkey")
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");

    // The same as a ZIP.
    let zip_path = home.path().join("pack.zip");
    let o = vigil(home.path())
        .arg("evidence-pack")
        .args([&a, &b])
        .arg("--out")
        .arg(&zip_path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let mut z = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let names: Vec<String> = (0..z.len())
        .map(|i| z.by_index(i).unwrap().name().unwrap().to_string())
        .collect();
    assert!(names.contains(&"manifest.json".to_owned()));
    assert!(names.contains(&"SHA256SUMS".to_owned()));
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".vigil.json")).count(),
        2
    );
    assert_eq!(names.iter().filter(|n| n.ends_with(".html")).count(), 2);

    // Writing over an existing pack is refused.
    let o = vigil(home.path())
        .arg("evidence-pack")
        .arg(&a)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_forged_report_aborts_the_pack_with_nothing_written() {
    let home = tempfile::tempdir().unwrap();
    let a = scored(home.path(), "audio_only.ogg");
    let mut env: Value = serde_json::from_slice(&std::fs::read(&a).unwrap()).unwrap();
    let p = env["payload"].as_str().unwrap().to_owned();
    env["payload"] = Value::String(format!(
        "{}{}",
        if p.starts_with('e') { "f" } else { "e" },
        &p[1..]
    ));
    let forged = home.path().join("forged.json");
    std::fs::write(&forged, serde_json::to_vec(&env).unwrap()).unwrap();
    let out = home.path().join("pack");
    let o = vigil(home.path())
        .arg("evidence-pack")
        .args([&a, &forged])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("forged.json"));
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".vigil-pack-"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary directory left behind");
}
