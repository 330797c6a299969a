//! Voice consistency on labelled recordings (ground truth in testdata/README.md): real speech and
//! flite TTS, with the voice changing, a second voice interjecting, and the same voice throughout.

mod common;

use common::*;
use serde_json::Value;

const VOICE_KINDS: [&str; 3] = [
    "speaker_change",
    "second_speaker",
    "reference_voice_mismatch",
];

#[test]
fn the_same_voice_throughout_raises_nothing() {
    for file in [
        "voice_same_allison.ogg",
        "voice_same_bigfish.ogg",
        "interview.mp4",
    ] {
        // Not face_same_person.mp4: its photos never speak, so the voice component carries a
        // lip_sync_mismatch there (tests/face.rs).
        let p = scored(file, &[]);
        for kind in VOICE_KINDS {
            assert!(
                events_of(&p, kind).is_empty(),
                "{file}: unexpected {kind}: {:#?}",
                p["events"]
            );
        }
        assert_eq!(p["score"]["components"]["voice"], 100.0, "{file}");
        let sims: Vec<f64> = p["timeline"]["series"]["voice_similarity"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        // One point per 3 s window of speech (about 17 s of speech in each file).
        assert!(
            sims.len() >= 5,
            "{file}: similarity timeline too short: {}",
            sims.len()
        );
    }
}

#[test]
fn a_real_interview_with_one_face_and_one_voice_is_verified() {
    let p = scored("interview.mp4", &[]);
    assert_eq!(
        p["score"]["verification_status"], "verified",
        "{:#?}",
        p["score"]
    );
    assert!(
        p["pipeline"]["analysers"]
            .as_array()
            .unwrap()
            .contains(&"voice_consistency".into())
    );
}

#[test]
fn a_voice_swap_is_localised() {
    // Real speech: one woman until 25 s, another after. TTS: slt until 16.16 s, awb after.
    for (file, at) in [("voice_swap.ogg", 25.0), ("voice_swap_tts.ogg", 16.16)] {
        let p = scored(file, &[]);
        let ev = events_of(&p, "speaker_change");
        assert_eq!(ev.len(), 1, "{file}: {:#?}", p["events"]);
        let (s, _) = span(ev[0]);
        assert!((s - at).abs() <= 3.0, "{file}: starts at {s}, truth {at}");
        assert!(ev[0]["evidence"]["mean_similarity"].as_f64().unwrap() < 0.6);
        assert!(
            events_of(&p, "second_speaker").is_empty(),
            "{file}: {:#?}",
            p["events"]
        );
        assert_ne!(p["score"]["verification_status"], "verified");
    }
}

#[test]
fn another_voice_answering_for_a_while_is_a_second_speaker() {
    let p = scored("voice_interjection.ogg", &[]);
    let ev = events_of(&p, "second_speaker");
    assert_eq!(ev.len(), 1, "{:#?}", p["events"]);
    let (s, e) = span(ev[0]);
    assert!(
        (s - 20.0).abs() <= 3.0 && (e - 28.0).abs() <= 3.0,
        "{s}–{e}, truth 20–28"
    );
    assert!(
        events_of(&p, "speaker_change").is_empty(),
        "{:#?}",
        p["events"]
    );
}

#[test]
fn a_real_two_person_dialogue_is_a_second_speaker() {
    let p = scored("voice_dialogue.ogg", &[]);
    assert_eq!(
        events_of(&p, "second_speaker").len(),
        1,
        "{:#?}",
        p["events"]
    );
}

#[test]
fn a_reference_recording_is_matched_or_flagged() {
    // Allison's voice as the reference for an interview with Allison's voice: no mismatch.
    let allison = testdata("voice_same_allison.ogg");
    let p = scored(
        "interview.mp4",
        &["--reference-voice", allison.to_str().unwrap()],
    );
    for kind in VOICE_KINDS {
        assert!(events_of(&p, kind).is_empty(), "{kind}: {:#?}", p["events"]);
    }
    // A man's voice as the reference: mismatch, and not also a speaker change.
    let bigfish = testdata("voice_same_bigfish.ogg");
    let p = scored(
        "interview.mp4",
        &["--reference-voice", bigfish.to_str().unwrap()],
    );
    let ev = events_of(&p, "reference_voice_mismatch");
    assert_eq!(ev.len(), 1, "{:#?}", p["events"]);
    assert!(ev[0]["evidence"]["median_similarity"].as_f64().unwrap() < 0.6);
    assert!(
        events_of(&p, "speaker_change").is_empty(),
        "{:#?}",
        p["events"]
    );
}

#[test]
fn a_reference_recording_without_enough_speech_is_refused() {
    let home = tempfile::tempdir().unwrap();
    vigil(home.path())
        .args([
            "score",
            testdata("interview.mp4").to_str().unwrap(),
            "--reference-voice",
        ])
        .arg(testdata("audio_only.ogg"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("audio_only.ogg"))
        .stderr(predicates::str::contains("speech"));
}

#[test]
fn unreadable_reference_media_is_named_with_its_role() {
    let home = tempfile::tempdir().unwrap();
    vigil(home.path())
        .args([
            "score",
            testdata("interview.mp4").to_str().unwrap(),
            "--reference-voice",
            "/no/such/voice.wav",
        ])
        .assert()
        .code(3)
        .stderr(predicates::str::contains(
            "reference voice: /no/such/voice.wav: no such file",
        ));
    vigil(home.path())
        .args([
            "score",
            testdata("interview.mp4").to_str().unwrap(),
            "--reference-face",
            "/no/such/photo.jpg",
        ])
        .assert()
        .code(3)
        .stderr(predicates::str::contains(
            "reference photo: /no/such/photo.jpg: no such file",
        ));
}

#[test]
fn noise_and_silence_give_no_voice_findings() {
    let home = tempfile::tempdir().unwrap();
    let noise = home.path().join("noise.wav");
    gst_make(
        &noise,
        &[
            "audiotestsrc",
            "wave=pink-noise",
            "volume=0.2",
            "num-buffers=300",
            "!",
            "audioconvert",
            "!",
            "wavenc",
        ],
    );
    let out = home.path().join("n.json");
    let (_, p) = score(home.path(), noise.to_str().unwrap(), &out, &[]);
    for kind in VOICE_KINDS {
        assert!(events_of(&p, kind).is_empty());
    }
    assert!(
        p["score"]["components"]["voice"].is_null(),
        "no speech: voice not checked"
    );
    assert_ne!(p["score"]["verification_status"], "verified");
}
