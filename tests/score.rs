//! `vigil score` on real recordings: containers, codecs, missing streams, detectors, determinism.

mod common;

use common::*;
use serde_json::Value;

fn check_common(p: &Value) {
    assert_eq!(p["schema"], "vigil.integrity-report/v1");
    assert!(p["report_id"].as_str().unwrap().starts_with("vr_"));
    assert!(p["generated_at"].as_str().unwrap().ends_with('Z'));
    let score = &p["score"];
    let integrity = score["integrity"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&integrity));
    assert!(["low", "medium", "high"].contains(&score["risk_tier"].as_str().unwrap()));
    // `verified` only with identity checked by face and voice, no integrity event, low risk.
    if score["verification_status"] == "verified" {
        assert!(
            score["components"]["face"].is_number() && score["components"]["voice"].is_number()
        );
        assert_eq!(score["risk_tier"], "low");
        let quality = [
            "audio_dropout",
            "clipping",
            "low_light",
            "no_audio",
            "no_video",
        ];
        assert!(
            p["events"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| quality.contains(&e["kind"].as_str().unwrap()))
        );
    }
    // Events are sorted by start time.
    let starts: Vec<f64> = p["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["start_s"].as_f64().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
}

#[test]
fn every_container_decodes_with_both_streams() {
    let home = tempfile::tempdir().unwrap();
    for (file, container, vcodec, acodec, dur) in [
        ("interview.mp4", "mp4", "h264", "aac", 20.0),
        ("clip_vp8_opus.webm", "matroska", "vp8", "opus", 6.0),
        ("clip_vp9_opus.webm", "matroska", "vp9", "opus", 6.0),
        ("clip_h264_opus.mkv", "matroska", "h264", "opus", 6.0),
    ] {
        let out = home.path().join(format!("{file}.json"));
        let (env, p) = score(home.path(), testdata(file).to_str().unwrap(), &out, &[]);
        check_common(&p);
        assert_eq!(
            env["payloadType"],
            "application/vnd.vigil.integrity-report.v1+json"
        );
        let m = &p["media"];
        assert_eq!(
            m["source"], file,
            "the report names the file, never its full path"
        );
        assert_eq!(m["container"], container, "{file}");
        assert_eq!(m["video"]["codec"], vcodec, "{file}");
        assert_eq!(m["audio"]["codec"], acodec, "{file}");
        assert_eq!(m["sha256"].as_str().unwrap().len(), 64);
        let d = m["duration_s"].as_f64().unwrap();
        assert!((d - dur).abs() < 0.5, "{file}: duration {d}");
        // One frame per second by default.
        let frames = p["coverage"]["frames_analysed"].as_u64().unwrap();
        assert!(
            (frames as f64 - dur).abs() <= 1.0,
            "{file}: {frames} frames"
        );
        // Real speech throughout these clips: the VAD finds most of it.
        let speech = p["coverage"]["speech_s"].as_f64().unwrap();
        assert!(speech > 0.5 * dur, "{file}: only {speech} s of speech");
        assert!(events_of(&p, "no_audio").is_empty() && events_of(&p, "no_video").is_empty());
        assert!(
            events_of(&p, "video_freeze").is_empty(),
            "{file}: live camera flagged as frozen"
        );
        assert!(
            events_of(&p, "video_loop").is_empty(),
            "{file}: live camera flagged as a loop"
        );
    }
}

#[test]
fn audio_only_and_video_only_inputs_say_which_stream_is_absent() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("a.json");
    let (_, p) = score(
        home.path(),
        testdata("audio_only.ogg").to_str().unwrap(),
        &out,
        &[],
    );
    check_common(&p);
    assert!(p["media"]["video"].is_null());
    assert_eq!(p["media"]["audio"]["codec"], "opus");
    assert_eq!(p["coverage"]["frames_analysed"], 0);
    assert_eq!(events_of(&p, "no_video").len(), 1);
    assert!(events_of(&p, "no_audio").is_empty());
    assert_eq!(p["score"]["verification_status"], "needs_review");

    let out = home.path().join("v.json");
    let (_, p) = score(
        home.path(),
        testdata("video_only.mp4").to_str().unwrap(),
        &out,
        &[],
    );
    check_common(&p);
    assert!(p["media"]["audio"].is_null());
    assert!(p["coverage"]["speech_s"].is_null());
    assert_eq!(events_of(&p, "no_audio").len(), 1);
    assert!(events_of(&p, "no_video").is_empty());
}

#[test]
fn silence_has_no_speech() {
    let home = tempfile::tempdir().unwrap();
    let wav = home.path().join("silence.wav");
    gst_make(
        &wav,
        &[
            "audiotestsrc",
            "wave=silence",
            "num-buffers=100",
            "!",
            "audioconvert",
            "!",
            "wavenc",
        ],
    );
    let out = home.path().join("s.json");
    let (_, p) = score(home.path(), wav.to_str().unwrap(), &out, &[]);
    assert_eq!(p["coverage"]["speech_s"].as_f64().unwrap(), 0.0);
    assert_eq!(p["media"]["container"], "wav");
}

fn overlap(e: &Value, a: f64, b: f64) -> f64 {
    let (s, t) = (e["start_s"].as_f64().unwrap(), e["end_s"].as_f64().unwrap());
    (t.min(b) - s.max(a)).max(0.0)
}

#[test]
fn a_frozen_middle_is_found_where_it_is() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("f.json");
    let (_, p) = score(
        home.path(),
        testdata("frozen_middle.mp4").to_str().unwrap(),
        &out,
        &[],
    );
    check_common(&p);
    // Ground truth: frames from 6 s to 14 s repeat one picture.
    let freezes = events_of(&p, "video_freeze");
    assert_eq!(freezes.len(), 1, "{:#?}", p["events"]);
    let e = freezes[0];
    assert!((e["start_s"].as_f64().unwrap() - 6.0).abs() <= 1.5, "{e}");
    assert!((e["end_s"].as_f64().unwrap() - 14.0).abs() <= 1.5, "{e}");
    assert!(overlap(e, 6.0, 14.0) >= 5.0);
    assert!(e["confidence"].as_f64().unwrap() > 0.5);
    assert!(e["reason"].as_str().unwrap().contains("did not change"));
    assert!(p["score"]["integrity"].as_f64().unwrap() < 100.0);
    assert!(p["score"]["components"]["video"].as_f64().unwrap() < 100.0);
    assert!(events_of(&p, "video_loop").is_empty(), "{:#?}", p["events"]);
}

#[test]
fn a_replayed_stretch_of_video_is_a_loop() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("l.json");
    let (_, p) = score(
        home.path(),
        testdata("looping.mp4").to_str().unwrap(),
        &out,
        &[],
    );
    // Ground truth: 12–22 s replays 1–11 s.
    let loops = events_of(&p, "video_loop");
    assert_eq!(loops.len(), 1, "{:#?}", p["events"]);
    let e = loops[0];
    assert!(overlap(e, 12.0, 22.0) >= 7.0, "{e}");
    assert!(
        (e["evidence"]["repeats_from_s"].as_f64().unwrap() - 1.0).abs() <= 1.5,
        "{e}"
    );
    assert!(events_of(&p, "video_freeze").is_empty());
}

#[test]
fn keyframes_mode_decodes_only_keyframes() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("k.json");
    let (_, p) = score(
        home.path(),
        testdata("interview.mp4").to_str().unwrap(),
        &out,
        &["--sampling", "keyframes"],
    );
    check_common(&p);
    // The fixture has a keyframe every 2 s (50 frames at 25 fps).
    let frames = p["coverage"]["frames_analysed"].as_u64().unwrap();
    assert!((9..=11).contains(&frames), "{frames} keyframes");
    assert!((p["coverage"]["mean_frame_interval_s"].as_f64().unwrap() - 2.0).abs() < 0.1);
    assert_eq!(p["pipeline"]["sampling"]["mode"], "keyframes");
}

#[test]
fn all_frames_mode_keeps_every_frame() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("all.json");
    let (_, p) = score(
        home.path(),
        testdata("clip_vp8_opus.webm").to_str().unwrap(),
        &out,
        &["--sampling", "all"],
    );
    assert_eq!(p["coverage"]["frames_analysed"], 150);
}

fn strip_volatile(mut p: Value) -> Value {
    p.as_object_mut().unwrap().remove("generated_at");
    p
}

#[test]
fn the_payload_is_identical_whatever_the_thread_count() {
    let home = tempfile::tempdir().unwrap();
    let mut payloads = Vec::new();
    for threads in ["1", "2", "2"] {
        let out = home.path().join(format!("d{threads}.json"));
        let o = vigil(home.path())
            .env("RAYON_NUM_THREADS", threads)
            .args([
                "score",
                testdata("frozen_middle.mp4").to_str().unwrap(),
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success());
        let (env, p) = read_report(&out);
        payloads.push((env, strip_volatile(p)));
    }
    assert_eq!(payloads[0].1, payloads[1].1);
    assert_eq!(payloads[1].1, payloads[2].1);
    // Byte-level: the payload text differs only in generated_at.
    let raw = |env: &Value| {
        let bytes = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            env["payload"].as_str().unwrap(),
        )
        .unwrap();
        let s = String::from_utf8(bytes).unwrap();
        let i = s.find("\"generated_at\":\"").unwrap();
        let j = s[i + 16..].find('"').unwrap();
        format!("{}{}", &s[..i], &s[i + 16 + j..])
    };
    assert_eq!(raw(&payloads[0].0), raw(&payloads[1].0));
}

#[test]
fn json_flag_prints_the_payload_and_keeps_logs_off_stdout() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("j.json");
    let o = vigil(home.path())
        .env("RUST_LOG", "debug")
        .args([
            "score",
            testdata("clip_vp8_opus.webm").to_str().unwrap(),
            "--json",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success());
    let p: Value = serde_json::from_slice(&o.stdout).expect("stdout is exactly the JSON payload");
    assert_eq!(p["schema"], "vigil.integrity-report/v1");
    let (_, from_file) = read_report(&out);
    assert_eq!(p, from_file);
}

#[test]
fn a_session_file_fills_the_session_ids() {
    let home = tempfile::tempdir().unwrap();
    let session = home.path().join("session.json");
    std::fs::write(
        &session,
        r#"{"session_id":"s-1","interview_id":"iv-9","candidate_external_id":"c-42","ats":"greenhouse",
            "consent":{"recorded_at":"2026-11-20T09:00:00Z","method":"meeting_bot_prompt","text_version":"v3"}}"#,
    )
    .unwrap();
    let out = home.path().join("s.json");
    let (_, p) = score(
        home.path(),
        testdata("audio_only.ogg").to_str().unwrap(),
        &out,
        &["--session", session.to_str().unwrap()],
    );
    assert_eq!(p["session"]["interview_id"], "iv-9");
    assert_eq!(p["session"]["candidate_external_id"], "c-42");
    assert_eq!(
        p["session"]["consent"]["text_version"], "v3",
        "the report states the consent"
    );

    // A session naming a candidate without consent is not analysed (and writes nothing).
    let no_consent = home.path().join("no-consent.json");
    std::fs::write(&no_consent, r#"{"candidate_external_id":"c-42"}"#).unwrap();
    let out2 = home.path().join("s2.json");
    vigil(home.path())
        .args([
            "score",
            testdata("audio_only.ogg").to_str().unwrap(),
            "--session",
        ])
        .arg(&no_consent)
        .arg("--out")
        .arg(&out2)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no consent record"));
    assert!(!out2.exists());
    std::fs::write(
        &no_consent,
        r#"{"candidate_external_id":"c-42","consent":{"recorded_at":"yesterday","method":"x","text_version":"v1"}}"#,
    )
    .unwrap();
    vigil(home.path())
        .args([
            "score",
            testdata("audio_only.ogg").to_str().unwrap(),
            "--session",
        ])
        .arg(&no_consent)
        .arg("--out")
        .arg(&out2)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not RFC 3339"));

    std::fs::write(&session, r#"{"candidate":"typo"}"#).unwrap();
    vigil(home.path())
        .args([
            "score",
            testdata("audio_only.ogg").to_str().unwrap(),
            "--session",
        ])
        .arg(&session)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("unknown field `candidate`"));
}

#[test]
fn an_http_uri_is_decoded() {
    let home = tempfile::tempdir().unwrap();
    let base = http_server(
        std::fs::read(testdata("clip_vp8_opus.webm")).unwrap(),
        Serve::File,
    );
    let out = home.path().join("h.json");
    let (_, p) = score(
        home.path(),
        &format!("{base}/media/clip.webm?token=secret"),
        &out,
        &[],
    );
    check_common(&p);
    assert_eq!(p["media"]["video"]["codec"], "vp8");
    assert!(p["media"]["sha256"].is_null());
    let src = p["media"]["source"].as_str().unwrap();
    assert!(src.ends_with("/media/clip.webm"), "{src}");
    assert!(
        !src.contains("secret"),
        "query strings (tokens) stay out of reports"
    );
}

#[test]
fn the_default_key_is_created_once_and_reused() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("k1.json");
    vigil(home.path())
        .args([
            "score",
            testdata("audio_only.ogg").to_str().unwrap(),
            "--out",
        ])
        .arg(&out)
        .assert()
        .success()
        .stderr(predicates::str::contains("created a new signing key"))
        .stdout(predicates::str::contains("Signed report"));
    let key = home.path().join("vigil/signing-key.pem");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    vigil(home.path())
        .args([
            "score",
            testdata("audio_only.ogg").to_str().unwrap(),
            "--out",
        ])
        .arg(&out)
        .assert()
        .success()
        .stderr(predicates::str::contains("created a new signing key").not());
}

use predicates::prelude::PredicateBooleanExt;

#[test]
fn an_mpeg_ts_stream_reports_time_from_its_start() {
    // MPEG-TS timestamps do not start at zero; the report counts seconds from the start.
    let home = tempfile::tempdir().unwrap();
    let ts = home.path().join("clip.ts");
    let ok = std::process::Command::new("gst-launch-1.0")
        .args([
            "-q",
            "-e",
            "videotestsrc",
            "pattern=ball",
            "num-buffers=150",
            "!",
        ])
        .args([
            "video/x-raw,width=320,height=240,framerate=25/1",
            "!",
            "x264enc",
            "!",
            "h264parse",
        ])
        .args(["!", "queue", "!", "mpegtsmux", "name=m", "!", "filesink"])
        .arg(format!("location={}", ts.display()))
        .args([
            "audiotestsrc",
            "num-buffers=280",
            "!",
            "audioconvert",
            "!",
            "avenc_aac",
        ])
        .args(["!", "aacparse", "!", "queue", "!", "m."])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = home.path().join("ts.json");
    let (_, p) = score(home.path(), ts.to_str().unwrap(), &out, &[]);
    assert_eq!(p["media"]["container"], "mpegts");
    let d = p["media"]["duration_s"].as_f64().unwrap();
    assert!((5.5..8.0).contains(&d), "duration {d}");
    let motion = p["timeline"]["series"]["video_motion"].as_array().unwrap();
    assert!(motion.len() <= 8, "timeline of {} seconds", motion.len());
}
