//! Hostile media (issue 19): recordings whose timestamps, bytes or kind lie. Each must give
//! bounded work, a precise event or error, and never a `verified` report for what was not
//! looked at. The files come from `scripts/gen-testdata --hostile` (testdata/hostile/).

mod common;

use common::{scored, testdata, vigil};
use serde_json::Value;

fn events_of<'a>(p: &'a Value, kind: &str) -> Vec<&'a Value> {
    p["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

#[test]
fn a_timestamp_jump_is_cut_reported_and_never_verified() {
    // Two clusters of a normal WebM, then one whose timecode says 100 000 s. Before the fix
    // this decoded 100 000 s of filled-in silence (minutes of CPU; the harness's 120 s timeout
    // stops it) and came out `verified` with a 5 MB timeline.
    let p = scored("hostile/timestamp_jump.webm", &[]);
    let jumps = events_of(&p, "timestamp_jump");
    assert_eq!(jumps.len(), 1, "{:#?}", p["events"]);
    let j = jumps[0];
    assert!(j["start_s"].as_f64().unwrap() < 10.0, "{j}");
    assert!(
        j["evidence"]["claimed_s"].as_f64().unwrap() > 99_000.0,
        "{j}"
    );
    assert_eq!(j["evidence"]["cut"], "timestamp_jump");
    assert!(
        p["media"]["duration_s"].as_f64().unwrap() < 10.0,
        "{}",
        p["media"]
    );
    assert_eq!(p["score"]["verification_status"], "needs_review");
    let reasons = p["score"]["status_reasons"].to_string();
    assert!(reasons.contains("broken or manipulated"), "{reasons}");
    assert!(
        p.to_string().len() < 200_000,
        "the payload follows what was decoded"
    );
}

#[test]
fn media_past_the_duration_limit_is_not_analysed() {
    let p = scored("interview.mp4", &["--max-duration", "8"]);
    let cuts = events_of(&p, "timestamp_jump");
    assert_eq!(cuts.len(), 1, "{:#?}", p["events"]);
    assert_eq!(cuts[0]["evidence"]["cut"], "duration_limit");
    assert!(p["media"]["duration_s"].as_f64().unwrap() <= 9.0);
    assert_eq!(p["score"]["verification_status"], "needs_review");
}

#[test]
fn a_file_that_turns_to_garbage_says_how_much_was_analysed() {
    // The first 800 000 bytes of a 20 s WebM, then 845 633 random bytes: the demuxer skips
    // the garbage silently, so only the bytes that reached a decoder tell.
    let p = scored("hostile/garbage_tail.webm", &[]);
    let bad = events_of(&p, "undecodable_media");
    assert_eq!(bad.len(), 1, "{:#?}", p["events"]);
    let share = bad[0]["evidence"]["undecoded_share"].as_f64().unwrap();
    assert!((0.45..0.6).contains(&share), "{}", bad[0]);
    assert_eq!(p["score"]["verification_status"], "needs_review");
}

#[test]
fn intact_recordings_raise_no_media_fault() {
    for file in [
        "interview_live.webm",
        "clip_h264_opus.mkv",
        "voice_swap.ogg",
    ] {
        let p = scored(file, &["--sampling", "keyframes"]);
        for kind in ["timestamp_jump", "undecodable_media"] {
            assert!(events_of(&p, kind).is_empty(), "{file}: {kind}");
        }
    }
}

#[test]
fn a_still_image_is_refused_as_not_a_recording() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("r.json");
    let assert = vigil(home.path())
        .arg("score")
        .arg(testdata("hostile/still_1x1.png"))
        .arg("--out")
        .arg(&out)
        .assert()
        .code(3);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("still image"), "{stderr}");
    assert!(!out.exists(), "no report for a photo");
}

#[test]
fn a_decompression_bomb_is_refused_before_decoding() {
    // 490 KB of VP8 at 16 376 × 16 376: 400 MB per decoded frame.
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("r.json");
    let assert = vigil(home.path())
        .arg("score")
        .arg(testdata("hostile/bomb_16376.webm"))
        .arg("--out")
        .arg(&out)
        .assert()
        .code(3);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("16376×16376"), "{stderr}");
    assert!(stderr.contains("exceed the limit"), "{stderr}");
    assert!(!out.exists());
}
