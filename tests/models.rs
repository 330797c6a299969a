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
