//! Bad media and broken installations: a precise one-line error, the right exit code, no panic,
//! no hang, no report written.

mod common;

use common::*;
use predicates::prelude::*;
use std::path::Path;

fn expect_exit(home: &Path, media: &str, code: i32, needles: &[&str]) {
    let out = home.join("never.json");
    let a = vigil(home)
        .args(["score", media, "--out"])
        .arg(&out)
        .assert()
        .code(code)
        .stderr(predicate::str::contains("panicked").not());
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    for n in needles {
        assert!(
            stderr.contains(n),
            "stderr for {media} lacks {n:?}: {stderr}"
        );
    }
    assert!(!out.exists(), "no report may be written for {media}");
}

#[test]
fn missing_empty_random_text_and_directory_inputs_exit_3() {
    let home = tempfile::tempdir().unwrap();
    let d = home.path();
    let empty = d.join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let random = d.join("random.mp4");
    let mut x = 0x2545F4914F6CDD1Du64;
    let bytes: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&random, bytes).unwrap();
    let text = d.join("notes.txt");
    std::fs::write(&text, "interview notes, not media\n").unwrap();

    expect_exit(
        d,
        d.join("does-not-exist.mp4").to_str().unwrap(),
        3,
        &["does-not-exist.mp4", "no such file"],
    );
    expect_exit(d, empty.to_str().unwrap(), 3, &["empty.mp4", "empty"]);
    expect_exit(
        d,
        random.to_str().unwrap(),
        3,
        &["random.mp4", "not a media file"],
    );
    expect_exit(
        d,
        text.to_str().unwrap(),
        3,
        &["notes.txt", "not a media file"],
    );
    expect_exit(d, d.to_str().unwrap(), 3, &["directory"]);
}

#[test]
fn a_truncated_mp4_without_its_index_exits_3() {
    let home = tempfile::tempdir().unwrap();
    let full = std::fs::read(testdata("interview.mp4")).unwrap();
    let cut = home.path().join("cut.mp4");
    // mp4mux writes the index (moov) at the end: half a file has no playable stream.
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    expect_exit(
        home.path(),
        cut.to_str().unwrap(),
        3,
        &["cut.mp4", "no playable streams"],
    );
}

#[test]
fn a_truncated_webm_is_scored_up_to_where_it_ends() {
    let home = tempfile::tempdir().unwrap();
    let full = std::fs::read(testdata("clip_vp8_opus.webm")).unwrap();
    let cut = home.path().join("cut.webm");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let out = home.path().join("cut.json");
    let (_, p) = score(home.path(), cut.to_str().unwrap(), &out, &[]);
    let d = p["media"]["duration_s"].as_f64().unwrap();
    assert!(d > 1.0 && d < 5.0, "duration {d}");
}

#[test]
fn a_missing_decoder_is_named() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("x.json");
    vigil(home.path())
        // Hide every H.264 decoder from autoplugging, as on a machine without gstreamer1.0-libav.
        .env(
            "GST_PLUGIN_FEATURE_RANK",
            "avdec_h264:NONE,openh264dec:NONE",
        )
        .args([
            "score",
            testdata("interview.mp4").to_str().unwrap(),
            "--out",
        ])
        .arg(&out)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("interview.mp4"))
        .stderr(predicate::str::contains("video/x-h264"))
        .stderr(predicate::str::contains("plug-in"));
    assert!(!out.exists());
}

#[test]
fn an_http_404_exits_3() {
    let home = tempfile::tempdir().unwrap();
    let base = http_server(vec![0; 10], Serve::File);
    expect_exit(
        home.path(),
        &format!("{base}/missing.webm"),
        3,
        &["/missing.webm"],
    );
}

#[test]
fn a_source_that_stops_sending_is_abandoned() {
    let home = tempfile::tempdir().unwrap();
    let base = http_server(
        std::fs::read(testdata("clip_vp8_opus.webm")).unwrap(),
        Serve::Stall,
    );
    let out = home.path().join("stall.json");
    vigil(home.path())
        .args([
            "score",
            &format!("{base}/media/stall.webm"),
            "--stall-timeout",
            "3",
            "--out",
        ])
        .arg(&out)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("stall.webm"));
    assert!(!out.exists());
}

#[test]
fn a_missing_runtime_library_is_one_sentence_with_the_fix() {
    let home = tempfile::tempdir().unwrap();
    vigil(home.path())
        .env(
            "VIGIL_ORT_LIB",
            home.path().join("libonnxruntime.so.1.31.1"),
        )
        .args(["score", testdata("audio_only.ogg").to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("libonnxruntime.so.1.31.1"))
        .stderr(predicate::str::contains("scripts/setup"))
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn a_broken_runtime_library_is_reported_not_a_crash() {
    let home = tempfile::tempdir().unwrap();
    let fake = home.path().join("libonnxruntime.so.1.31.1");
    std::fs::write(&fake, b"this is not an ELF file").unwrap();
    vigil(home.path())
        .env("VIGIL_ORT_LIB", &fake)
        .args(["score", testdata("audio_only.ogg").to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("could not be loaded"))
        .stderr(predicate::str::contains("scripts/setup"))
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn missing_and_corrupt_models_are_named() {
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join("models");
    std::fs::create_dir(&models).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "onnx") {
            std::fs::copy(&p, models.join(p.file_name().unwrap())).unwrap();
        }
    }
    let target = models.join("silero_vad.onnx");
    let bytes = std::fs::read(&target).unwrap();
    std::fs::remove_file(&target).unwrap();
    vigil(home.path())
        .env("VIGIL_MODELS_DIR", &models)
        .args(["score", testdata("audio_only.ogg").to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("silero_vad.onnx"))
        .stderr(predicate::str::contains("missing"));

    let mut bytes = bytes;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&target, bytes).unwrap();
    vigil(home.path())
        .env("VIGIL_MODELS_DIR", &models)
        .args(["score", testdata("audio_only.ogg").to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("silero_vad.onnx"))
        .stderr(predicate::str::contains("corrupt"))
        .stderr(predicate::str::contains("git checkout -- models/"));
}

#[test]
fn usage_errors_exit_2() {
    let home = tempfile::tempdir().unwrap();
    vigil(home.path()).args(["score"]).assert().code(2);
    vigil(home.path())
        .args(["score", "x.mp4", "--sampling", "sometimes"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid sampling"));
    vigil(home.path()).args(["frobnicate"]).assert().code(2);
    vigil(home.path())
        .args(["score", "--help"])
        .assert()
        .success();
}
