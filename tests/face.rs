//! Face models on real photos: detection, landmarks, alignment and embeddings give dlib's
//! same-person separation.

use vigil::analysis::face::{FaceModels, FaceObservation, distance};
use vigil::ingest::{self, MediaInput};
use vigil::media::VideoFrame;

fn photo(name: &str) -> VideoFrame {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/faces")
        .join(name);
    ingest::first_video_frame(&MediaInput::File(path))
        .unwrap()
        .expect("the photo decodes to a frame")
}

fn observe(models: &mut FaceModels, name: &str) -> FaceObservation {
    let f = photo(name);
    models.observe(&f, 128.0).unwrap()
}

#[test]
fn one_face_per_portrait_and_dlib_separation_holds() {
    let mut m = FaceModels::load().unwrap();
    let names = [
        "obama.jpg",
        "obama2.jpg",
        "biden.jpg",
        "grace_hopper.jpg",
        "astronaut.png",
    ];
    let obs: Vec<FaceObservation> = names.iter().map(|n| observe(&mut m, n)).collect();
    for (n, o) in names.iter().zip(&obs) {
        eprintln!(
            "{n}: {} faces, scores {:?}, mouth {:?}",
            o.faces.len(),
            o.faces.iter().map(|f| f.score).collect::<Vec<_>>(),
            o.mouth_open
        );
        assert_eq!(o.faces.len(), 1, "{n}");
        assert!(o.embedding.is_some(), "{n}");
    }
    let e = |i: usize| obs[i].embedding.unwrap();
    for i in 0..names.len() {
        for j in i + 1..names.len() {
            eprintln!(
                "{} vs {}: {:.3}",
                names[i],
                names[j],
                distance(&e(i), &e(j))
            );
        }
    }
    let same = distance(&e(0), &e(1));
    assert!(same < 0.6, "two photos of the same man: {same}");
    for (j, name) in names.iter().enumerate().skip(2) {
        let d = distance(&e(0), &e(j));
        assert!(d > 0.6, "obama vs {name}: {d}");
    }
}

// ---- Session outcomes on labelled recordings (testdata/README.md has the ground truth) ----

mod common;

use common::*;
use serde_json::Value;

#[test]
fn the_same_person_throughout_raises_no_identity_change() {
    for file in [
        "interview.mp4",
        "face_same_person.mp4",
        "face_small.mp4",
        "face_occluded.mp4",
        "face_glance_away.mp4",
        "face_turned.mp4",
        "clip_vp8_opus.webm",
    ] {
        let p = scored(file, &[]);
        for kind in [
            "identity_change",
            "face_absent",
            "multiple_faces",
            "reference_face_mismatch",
        ] {
            assert!(
                events_of(&p, kind).is_empty(),
                "{file}: unexpected {kind}: {:#?}",
                p["events"]
            );
        }
        assert!(
            p["coverage"]["face_present_ratio"].as_f64().unwrap() >= 0.8,
            "{file}"
        );
        assert_eq!(p["score"]["components"]["face"], 100.0, "{file}");
        assert!(
            p["pipeline"]["analysers"]
                .as_array()
                .unwrap()
                .contains(&"face_consistency".into())
        );
    }
}

#[test]
fn a_cut_to_another_person_is_an_identity_change_where_it_happens() {
    let p = scored("face_identity_cut.mp4", &[]);
    let ev = events_of(&p, "identity_change");
    assert_eq!(ev.len(), 1, "{:#?}", p["events"]);
    let (s, e) = span(ev[0]);
    assert!((s - 12.0).abs() <= 3.0, "starts at {s}, truth 12 s");
    assert!(e >= 20.0, "lasts to the end, got {e}");
    assert!(ev[0]["evidence"]["mean_distance"].as_f64().unwrap() > 0.6);
    assert!(
        ev[0]["reason"]
            .as_str()
            .unwrap()
            .contains("different person")
    );
    assert!(p["score"]["integrity"].as_f64().unwrap() < 80.0);
    assert_ne!(p["score"]["risk_tier"], "low");
}

#[test]
fn leaving_the_frame_is_face_absent_not_a_frozen_camera() {
    let p = scored("face_leaves.mp4", &[]);
    let ev = events_of(&p, "face_absent");
    assert_eq!(ev.len(), 1, "{:#?}", p["events"]);
    let (s, e) = span(ev[0]);
    assert!(
        s < 13.0 && e > 7.0 && (s - 7.0).abs() <= 1.5 && (e - 13.0).abs() <= 1.5,
        "{s}–{e}, truth 7–13"
    );
    assert!(
        events_of(&p, "video_freeze").is_empty(),
        "an empty room is not a frozen candidate"
    );
    assert!(events_of(&p, "identity_change").is_empty());
}

#[test]
fn a_second_person_joining_is_multiple_faces() {
    let p = scored("face_second_person.mp4", &[]);
    let ev = events_of(&p, "multiple_faces");
    assert_eq!(ev.len(), 1, "{:#?}", p["events"]);
    let (s, e) = span(ev[0]);
    assert!(
        (s - 8.0).abs() <= 1.5 && (e - 16.0).abs() <= 1.5,
        "{s}–{e}, truth 8–16"
    );
    assert_eq!(ev[0]["evidence"]["max_faces"], 2);
    assert!(events_of(&p, "identity_change").is_empty());
}

#[test]
fn a_dark_room_is_low_light_and_not_a_different_person() {
    let p = scored("face_dark.mp4", &[]);
    let ev = events_of(&p, "low_light");
    assert_eq!(ev.len(), 1, "{:#?}", p["events"]);
    let (s, e) = span(ev[0]);
    assert!(
        (s - 5.0).abs() <= 1.5 && (e - 12.0).abs() <= 1.5,
        "{s}–{e}, truth 5–12"
    );
    assert!(events_of(&p, "identity_change").is_empty());
    // A quality event does not lower integrity.
    assert_eq!(p["score"]["integrity"], 100.0);
}

#[test]
fn a_reference_photo_is_matched_or_flagged() {
    let hopper = testdata("faces/grace_hopper.jpg");
    let p = scored(
        "interview.mp4",
        &["--reference-face", hopper.to_str().unwrap()],
    );
    assert!(
        events_of(&p, "reference_face_mismatch").is_empty(),
        "{:#?}",
        p["events"]
    );
    assert!(events_of(&p, "identity_change").is_empty());

    let obama = testdata("faces/obama.jpg");
    let p = scored(
        "interview.mp4",
        &["--reference-face", obama.to_str().unwrap()],
    );
    let ev = events_of(&p, "reference_face_mismatch");
    assert_eq!(ev.len(), 1, "{:#?}", p["events"]);
    assert!(ev[0]["evidence"]["median_distance"].as_f64().unwrap() > 0.6);
    // Never matching the photo is one finding, not also an identity change within the session.
    assert!(
        events_of(&p, "identity_change").is_empty(),
        "{:#?}",
        p["events"]
    );
}

#[test]
fn a_reference_photo_without_one_face_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let blank = home.path().join("blank.png");
    gst_make(
        &blank,
        &[
            "videotestsrc",
            "num-buffers=1",
            "pattern=smpte",
            "!",
            "pngenc",
        ],
    );
    vigil(home.path())
        .args([
            "score",
            testdata("interview.mp4").to_str().unwrap(),
            "--reference-face",
        ])
        .arg(&blank)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("blank.png"))
        .stderr(predicates::str::contains("0 faces"));
}

/// No face embedding (128 numbers) or crop ever reaches the report.
#[test]
fn reports_carry_no_biometric_vectors() {
    fn longest_numeric_array(v: &Value) -> usize {
        match v {
            Value::Array(a) => {
                let own = if a.iter().all(Value::is_number) {
                    a.len()
                } else {
                    0
                };
                a.iter()
                    .map(longest_numeric_array)
                    .max()
                    .unwrap_or(0)
                    .max(own)
            }
            Value::Object(o) => o.values().map(longest_numeric_array).max().unwrap_or(0),
            _ => 0,
        }
    }
    let p = scored("face_identity_cut.mp4", &[]);
    // Timeline series are per second (24 here); an embedding would be 128 long.
    assert!(longest_numeric_array(&p) < 100);
    let text = p.to_string();
    assert!(!text.contains("embedding"));
}

#[test]
fn speech_over_a_closed_still_mouth_is_a_lip_sync_mismatch() {
    // The mouth moves with the voice until 8 s, then stays closed while the voice goes on.
    let p = scored("lipsync_mismatch.mp4", &[]);
    let ev = events_of(&p, "lip_sync_mismatch");
    assert_eq!(ev.len(), 1, "{:#?}", p["events"]);
    let (s, e) = span(ev[0]);
    assert!((s - 8.0).abs() <= 2.0 && e >= 17.0, "{s}–{e}, truth 8–20");
    assert!(ev[0]["evidence"]["max_mouth_open"].as_f64().unwrap() < 0.04);
    assert!(
        ev[0]["evidence"]["mouth_voice_correlation"]
            .as_f64()
            .unwrap()
            .abs()
            < 0.3
    );
    assert!(events_of(&p, "identity_change").is_empty());
    assert_ne!(p["score"]["verification_status"], "verified");
}

#[test]
fn a_mouth_that_moves_with_the_voice_correlates_with_it() {
    let p = scored("interview.mp4", &[]);
    let r: Vec<f64> = p["timeline"]["series"]["mouth_voice_correlation"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert!(r.len() >= 15);
    let mean = r.iter().sum::<f64>() / r.len() as f64;
    assert!(mean > 0.3, "mean mouth–voice correlation {mean}");
}

#[test]
fn a_speaking_mouth_or_no_face_raises_no_lip_sync_mismatch() {
    // face_dark.mp4: the speaking face goes dark for 7 s, where the mouth cannot be followed.
    for file in [
        "interview.mp4",
        "face_leaves.mp4",
        "face_small.mp4",
        "face_dark.mp4",
    ] {
        let p = scored(file, &[]);
        assert!(
            events_of(&p, "lip_sync_mismatch").is_empty(),
            "{file}: {:#?}",
            p["events"]
        );
    }
}

/// face_same_person.mp4 shows two photos of one man that never speak while a woman's voice
/// plays: the mouth rests a little open and sways with the camera, so it is neither closed nor
/// still in the sampled frames, but followed ten times a second it does not move with the voice.
#[test]
fn photos_that_never_speak_over_a_voice_are_a_lip_sync_mismatch() {
    let p = scored("face_same_person.mp4", &[]);
    let ev = events_of(&p, "lip_sync_mismatch");
    assert_eq!(ev.len(), 1, "{:#?}", p["events"]);
    let (s, e) = span(ev[0]);
    assert!(s <= 4.0 && e - s >= 10.0, "{s}–{e} of 20 s");
    let evidence = &ev[0]["evidence"];
    assert!(evidence["mouth_voice_correlation"].as_f64().unwrap() < 0.25);
    // Nor does it at any offset: no delayed voice, someone else's.
    assert!(evidence["best_offset_correlation"].as_f64().unwrap() < 0.4);
}
