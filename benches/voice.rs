//! Voice analyser costs per second of audio on one core: Silero VAD, and the CAM++ speaker
//! windows as the analyser takes them (3.0 s of speech every 1.5 s: Kaldi fbank + CMN per
//! window, embeddings batched by 8). Throughput is in audio seconds per second (× real time =
//! elements/s). Per-model costs on fixed inputs are in `benches/speech_models.rs`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;
use vigil::analysis::audio::{VAD_STEP, Vad};
use vigil::dsp::fbank::{FBANK_BINS, campplus_features};
use vigil::inference::CamPlus;
use vigil::ingest::{self, MediaInput};

fn speech(seconds: usize) -> Vec<f32> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/voice_same_allison.ogg");
    let mut s = ingest::decode_audio(&MediaInput::File(path)).unwrap();
    s.truncate(seconds * 16_000);
    s
}

fn voice(c: &mut Criterion) {
    let secs = 10;
    let audio = speech(secs);
    let mut g = c.benchmark_group("voice_per_audio_second");
    g.throughput(Throughput::Elements(secs as u64));
    let mut vad = Vad::new().unwrap();
    g.bench_function("silero_vad", |b| {
        b.iter(|| {
            audio
                .chunks_exact(VAD_STEP)
                .map(|c| vad.step(c).unwrap())
                .sum::<f32>()
        })
    });
    // Windows of 94 VAD steps every 47, as the analyser takes them: 10 s → 5 windows.
    let (window, hop) = (94 * VAD_STEP, 47 * VAD_STEP);
    let mut enc = CamPlus::load().unwrap();
    g.bench_function("campplus_windows_batched", |b| {
        b.iter(|| {
            let feats: Vec<Vec<[f32; FBANK_BINS]>> = (0..)
                .map(|i| i * hop)
                .take_while(|k| k + window <= audio.len())
                .map(|k| campplus_features(&audio[k..k + window]))
                .collect();
            let views: Vec<&[[f32; FBANK_BINS]]> = feats.iter().map(|f| &f[..]).collect();
            views
                .chunks(8)
                .map(|w| enc.embed(w).unwrap().len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, voice);
criterion_main!(benches);
