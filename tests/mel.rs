//! The Rust mel front end equals librosa's `melspectrogram(sr=16000, n_fft=400, hop_length=160,
//! n_mels=40)` (reference values computed once by `scripts/mel-reference`, committed).

use serde_json::Value;
use std::path::Path;
use vigil::dsp::mel::melspectrogram;
use vigil::ingest::{self, MediaInput};

/// Largest difference allowed, relative to the largest value of the spectrogram: librosa runs the
/// FFT in float32 too, so agreement is to float32 rounding of sums over 400 samples.
const REL_TOL: f64 = 2e-5;

fn reference(name: &str) -> Vec<Vec<f64>> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/reference/mel_librosa.json");
    let v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    v[name]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

fn compare(name: &str, ours: &[[f32; 40]]) {
    let want = reference(name);
    assert_eq!(ours.len(), want.len(), "{name}: frame count");
    let peak = want.iter().flatten().fold(0f64, |m, &x| m.max(x.abs()));
    let mut worst = 0f64;
    for (a, b) in ours.iter().zip(&want) {
        for (x, y) in a.iter().zip(b) {
            worst = worst.max((*x as f64 - y).abs());
        }
    }
    assert!(
        worst <= REL_TOL * peak,
        "{name}: max abs diff {worst:e} vs peak {peak:e}"
    );
}

#[test]
fn tones_match_librosa() {
    let x: Vec<f32> = (0..8000)
        .map(|n| {
            let (n, t) = (n as f64, n as f64 / 16000.0);
            (0.5 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                + 0.25 * (2.0 * std::f64::consts::PI * 3000.0 * t + 0.3).sin()
                + 0.1 * (n / 8000.0) * (2.0 * std::f64::consts::PI * 7000.0 * t).sin())
                as f32
        })
        .collect();
    compare("tones", &melspectrogram(&x));
}

#[test]
fn real_speech_decoded_by_gstreamer_matches_librosa() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/reference/speech_0p5s.wav");
    let samples = ingest::decode_audio(&MediaInput::File(p)).unwrap();
    assert_eq!(samples.len(), 8000);
    compare("speech", &melspectrogram(&samples));
}
