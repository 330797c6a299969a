//! `vigil verify` and `vigil keygen`: offline verification of signed reports.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use predicates::prelude::*;
use serde_json::Value;

#[test]
fn a_fresh_report_verifies_and_any_change_breaks_it() {
    let home = tempfile::tempdir().unwrap();
    let report = home.path().join("r.json");
    score(
        home.path(),
        testdata("clip_vp8_opus.webm").to_str().unwrap(),
        &report,
        &[],
    );
    let pubkey = home.path().join("vigil/signing-key.pub.pem");

    vigil(home.path())
        .args(["verify"])
        .arg(&report)
        .arg("--pubkey")
        .arg(&pubkey)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("VALID"));
    // Default public key: the one next to the default signing key.
    vigil(home.path())
        .arg("verify")
        .arg(&report)
        .assert()
        .code(0);

    // Flip one byte of the payload.
    let mut env: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let mut payload = B64.decode(env["payload"].as_str().unwrap()).unwrap();
    let i = payload.len() / 2;
    payload[i] ^= 0x01;
    env["payload"] = Value::String(B64.encode(&payload));
    let tampered = home.path().join("tampered.json");
    std::fs::write(&tampered, serde_json::to_vec(&env).unwrap()).unwrap();
    vigil(home.path())
        .arg("verify")
        .arg(&tampered)
        .arg("--pubkey")
        .arg(&pubkey)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("does not match"));

    // Not JSON at all.
    let junk = home.path().join("junk.json");
    std::fs::write(&junk, b"{not json").unwrap();
    vigil(home.path())
        .arg("verify")
        .arg(&junk)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("INVALID"));
}

#[test]
fn a_report_signed_by_another_key_fails() {
    let home = tempfile::tempdir().unwrap();
    let other = home.path().join("other.pem");
    vigil(home.path())
        .args(["keygen", "--out"])
        .arg(&other)
        .assert()
        .success()
        .stdout(predicate::str::contains("ed25519:"));
    assert!(home.path().join("other.pub.pem").exists());
    // keygen refuses to overwrite.
    vigil(home.path())
        .args(["keygen", "--out"])
        .arg(&other)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists"));

    let report = home.path().join("r.json");
    score(
        home.path(),
        testdata("audio_only.ogg").to_str().unwrap(),
        &report,
        &["--key", other.to_str().unwrap()],
    );
    // Valid with the signer's public key…
    vigil(home.path())
        .arg("verify")
        .arg(&report)
        .arg("--pubkey")
        .arg(home.path().join("other.pub.pem"))
        .assert()
        .code(0);
    // …invalid with any other.
    let third = home.path().join("third.pem");
    vigil(home.path())
        .args(["keygen", "--out"])
        .arg(&third)
        .assert()
        .success();
    vigil(home.path())
        .arg("verify")
        .arg(&report)
        .arg("--pubkey")
        .arg(home.path().join("third.pub.pem"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("signed by key"));
}

#[test]
fn a_validly_signed_non_report_is_rejected() {
    // A correct signature over something that is not a Vigil report still fails verification.
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let home = tempfile::tempdir().unwrap();
    let key_path = home.path().join("k.pem");
    vigil(home.path())
        .args(["keygen", "--out"])
        .arg(&key_path)
        .assert()
        .success();
    let key =
        ed25519_dalek::SigningKey::from_pkcs8_pem(&std::fs::read_to_string(&key_path).unwrap())
            .unwrap();
    let env = vigil::report::dsse::sign(br#"{"schema":"something-else"}"#, &key);
    let path = home.path().join("odd.json");
    std::fs::write(&path, serde_json::to_vec(&env).unwrap()).unwrap();
    vigil(home.path())
        .arg("verify")
        .arg(&path)
        .arg("--pubkey")
        .arg(home.path().join("k.pub.pem"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("not a Vigil report"));
}
