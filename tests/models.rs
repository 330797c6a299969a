//! Every reference model loads through the real ONNX Runtime with the interface the code expects,
//! and the VAD separates real speech from silence and noise.

use vigil::analysis::audio::{VAD_STEP, Vad};
use vigil::inference::{ALL_MODELS, load, verify_file};

#[test]
fn every_model_matches_its_manifest() {
    for spec in ALL_MODELS {
        verify_file(&spec).unwrap_or_else(|e| panic!("{e}"));
        let session = load(&spec).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        assert_eq!(
            names,
            spec.inputs.iter().map(|i| i.name).collect::<Vec<_>>(),
            "{}",
            spec.name
        );
    }
}

fn white_noise(n: usize, amp: f32) -> Vec<f32> {
    let mut x = 0x9E3779B97F4A7C15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amp
        })
        .collect()
}

fn mean_prob(vad: &mut Vad, samples: &[f32]) -> f32 {
    let probs: Vec<f32> = samples
        .chunks_exact(VAD_STEP)
        .map(|c| vad.step(c).unwrap())
        .collect();
    probs.iter().sum::<f32>() / probs.len() as f32
}

#[test]
fn vad_hears_speech_not_silence_or_noise() {
    let mut vad = Vad::new().unwrap();
    assert!(mean_prob(&mut vad, &vec![0.0; 16000 * 3]) < 0.05);
    let mut vad = Vad::new().unwrap();
    assert!(mean_prob(&mut vad, &white_noise(16000 * 3, 0.1)) < 0.1);
}

// ---- Speech models of issue 14: CAM++, pyannote segmentation-3.0, AASIST -------------------

use std::path::Path;
use vigil::dsp::fbank::{FBANK_BINS, campplus_features};
use vigil::inference::{
    AASIST, AASIST_WINDOW, Aasist, CAMPPLUS, CamPlus, InferenceError, ModelSpec, SEGMENTATION,
    SEGMENTATION_CLASSES, SEGMENTATION_FRAMES, Segmentation,
};
use vigil::ingest::{self, MediaInput};

const RATE: usize = 16_000;

fn decode(name: &str) -> Vec<f32> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    ingest::decode_audio(&MediaInput::File(p)).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The same spec, but its file at an absolute path (a spec's file is joined to the models
/// directory, and joining an absolute path replaces it).
fn spec_at(spec: &ModelSpec, path: &Path) -> &'static ModelSpec {
    let file: &'static str = Box::leak(path.to_str().unwrap().to_string().into_boxed_str());
    Box::leak(Box::new(ModelSpec { file, ..*spec }))
}

#[test]
fn corrupt_or_swapped_speech_models_fail_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    for spec in [CAMPPLUS, SEGMENTATION, AASIST] {
        // One flipped byte.
        let mut bytes = std::fs::read(shipped.join(spec.file)).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        let path = dir.path().join(spec.file);
        std::fs::write(&path, &bytes).unwrap();
        let err = load(spec_at(&spec, &path)).map(|_| ()).unwrap_err();
        assert!(
            matches!(err, InferenceError::ModelCorrupt { .. }),
            "{}: {err}",
            spec.name
        );
        assert!(err.to_string().contains(spec.file), "{err}");
    }
    // Another model under CAM++'s name: the hash gives it away ...
    let swapped = dir.path().join("swapped").join(CAMPPLUS.file);
    std::fs::create_dir_all(swapped.parent().unwrap()).unwrap();
    std::fs::copy(shipped.join(AASIST.file), &swapped).unwrap();
    let err = load(spec_at(&CAMPPLUS, &swapped)).map(|_| ()).unwrap_err();
    assert!(matches!(err, InferenceError::ModelCorrupt { .. }), "{err}");
    assert!(err.to_string().contains(CAMPPLUS.file), "{err}");
    // ... and a manifest whose hash was updated for it still fails on the I/O check.
    let relabelled = ModelSpec {
        sha256: AASIST.sha256,
        ..*spec_at(&CAMPPLUS, &swapped)
    };
    let err = load(&relabelled).map(|_| ()).unwrap_err();
    assert!(matches!(err, InferenceError::ModelMismatch { .. }), "{err}");
    assert!(err.to_string().contains(CAMPPLUS.file), "{err}");
    assert!(err.to_string().contains("feats"), "{err}");
}

#[test]
fn campplus_tells_real_speakers_apart() {
    let allison = decode("voice_same_allison.ogg");
    let bigfish = decode("voice_same_bigfish.ogg");
    let swap = decode("voice_swap.ogg"); // "small fish" (female) for the first 25 s
    let window = |x: &[f32], start_s: usize| campplus_features(&x[start_s * RATE..][..3 * RATE]);
    let speakers: [(&str, Vec<Vec<[f32; FBANK_BINS]>>); 3] = [
        (
            "allison",
            [2, 12, 22, 32]
                .iter()
                .map(|&s| window(&allison, s))
                .collect(),
        ),
        (
            "bigfish",
            [2, 12, 22, 32]
                .iter()
                .map(|&s| window(&bigfish, s))
                .collect(),
        ),
        (
            "smallfish",
            [2, 8, 14, 20].iter().map(|&s| window(&swap, s)).collect(),
        ),
    ];
    let windows: Vec<&[[f32; FBANK_BINS]]> = speakers
        .iter()
        .flat_map(|(_, w)| w.iter().map(|x| &x[..]))
        .collect();
    assert!(windows.iter().all(|w| w.len() == 298));
    let mut model = CamPlus::load().unwrap();
    let emb = model.embed(&windows).unwrap();
    assert_eq!(emb.len(), 12);
    let (mut same_min, mut diff_max) = (f32::MAX, f32::MIN);
    for i in 0..12 {
        assert!(
            (cosine(&emb[i], &emb[i]) - 1.0).abs() < 1e-4,
            "L2-normalised"
        );
        for j in i + 1..12 {
            let c = cosine(&emb[i], &emb[j]);
            if i / 4 == j / 4 {
                same_min = same_min.min(c);
            } else {
                diff_max = diff_max.max(c);
            }
        }
    }
    eprintln!("CAM++ 3 s windows: same speaker ≥ {same_min:.3}, different ≤ {diff_max:.3}");
    assert!(
        same_min > diff_max,
        "same {same_min} vs different {diff_max}"
    );
    // A window alone gives the embedding it gets in a batch; other lengths work too.
    let alone = model.embed(&windows[5..6]).unwrap();
    assert!(cosine(&alone[0], &emb[5]) > 0.9999);
    let short = campplus_features(&allison[2 * RATE..][..RATE * 3 / 2]);
    assert_eq!(model.embed(&[&short[..]]).unwrap().len(), 1);
    // Unequal lengths in one batch are refused with the model named.
    let err = model.embed(&[&short[..], windows[0]]).unwrap_err();
    assert!(matches!(err, InferenceError::BadInput { .. }), "{err}");
    assert!(err.to_string().contains(CAMPPLUS.name), "{err}");
    assert!(model.embed(&[]).unwrap().is_empty());
}

fn speech_fraction(logp: &ndarray::Array2<f32>) -> f32 {
    assert_eq!(logp.dim(), (SEGMENTATION_FRAMES, SEGMENTATION_CLASSES));
    let speech = logp
        .rows()
        .into_iter()
        .filter(|r| {
            let best = (0..SEGMENTATION_CLASSES)
                .max_by(|&a, &b| r[a].total_cmp(&r[b]))
                .unwrap();
            best != 0
        })
        .count();
    speech as f32 / SEGMENTATION_FRAMES as f32
}

#[test]
fn segmentation_finds_speech_in_speech_and_none_in_silence() {
    let allison = decode("voice_same_allison.ogg");
    let silence = vec![0f32; 160_000];
    let mut model = Segmentation::load().unwrap();
    let out = model
        .run(&[&allison[..160_000], &silence, &allison[160_000..240_000]])
        .unwrap();
    assert_eq!(out.len(), 3);
    for logp in &out {
        for r in logp.rows() {
            let total: f32 = r.iter().map(|v| v.exp()).sum();
            assert!(
                (total - 1.0).abs() < 1e-3,
                "log-probabilities sum to {total}"
            );
        }
    }
    let (speech, quiet, padded) = (
        speech_fraction(&out[0]),
        speech_fraction(&out[1]),
        speech_fraction(&out[2]),
    );
    eprintln!(
        "segmentation speech frames: speech {speech:.3}, silence {quiet:.3}, 5 s + padding {padded:.3}"
    );
    assert!(speech > 0.6, "speech chunk: {speech}");
    assert_eq!(quiet, 0.0, "silent chunk");
    // 5 s of speech then 5 s of zero padding: speech only in the first half (with margin).
    assert!(padded > 0.3 && padded < 0.6, "half-speech chunk: {padded}");
    let err = model.run(&[&allison[..160_001]]).unwrap_err();
    assert!(matches!(err, InferenceError::BadInput { .. }), "{err}");
}

#[test]
fn aasist_scores_real_speech_and_repeats_short_windows() {
    let allison = decode("voice_same_allison.ogg");
    let bigfish = decode("voice_same_bigfish.ogg");
    let one_s = &allison[RATE..2 * RATE];
    let tiled: Vec<f32> = one_s.iter().cycle().take(AASIST_WINDOW).copied().collect();
    let mut model = Aasist::load().unwrap();
    let scores = model
        .score(&[
            &allison[..AASIST_WINDOW],
            &bigfish[..AASIST_WINDOW],
            one_s,
            &tiled,
        ])
        .unwrap();
    eprintln!("AASIST scores (bona fide − spoof): {scores:?}");
    assert_eq!(scores.len(), 4);
    assert!(scores.iter().all(|s| s.is_finite()));
    assert!((scores[2] - scores[3]).abs() < 1e-4, "short windows repeat");
    let alone = model.score(&[&bigfish[..AASIST_WINDOW]]).unwrap();
    assert!((alone[0] - scores[1]).abs() < 1e-3);
    for bad in [&[][..], &allison[..AASIST_WINDOW + 1]] {
        let err = model.score(&[bad]).unwrap_err();
        assert!(matches!(err, InferenceError::BadInput { .. }), "{err}");
    }
}
