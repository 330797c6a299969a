//! Costs of the issue-14 speech models on one core (each ONNX Runtime session has one intra-op
//! thread): Kaldi fbank + CMN and CAM++ per 10 s of audio (one 10 s window, and 3 s windows every
//! 1.5 s in one batch), pyannote segmentation per 10 s chunk, AASIST per 4.04 s window. Times are
//! per unit of work (criterion's `time`).

use criterion::{Criterion, criterion_group, criterion_main};
use std::path::Path;
use vigil::dsp::fbank::{FBANK_BINS, Fbank, cmn};
use vigil::inference::{AASIST_WINDOW, Aasist, CamPlus, SEGMENTATION_CHUNK, Segmentation};
use vigil::ingest::{self, MediaInput};

fn speech(seconds: usize) -> Vec<f32> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/voice_same_allison.ogg");
    let mut s = ingest::decode_audio(&MediaInput::File(path)).unwrap();
    s.truncate(seconds * 16_000);
    s
}

fn speech_models(c: &mut Criterion) {
    let audio = speech(10);
    let mut g = c.benchmark_group("speech_models");
    g.sample_size(10);
    let mut fbank = Fbank::new();
    g.bench_function("fbank_cmn_per_10s", |b| {
        b.iter(|| {
            let mut f = fbank.compute(&audio);
            cmn(&mut f);
            f.len()
        })
    });
    let mut campplus = CamPlus::load().unwrap();
    g.bench_function("fbank_campplus_per_10s_one_window", |b| {
        b.iter(|| {
            let mut f = fbank.compute(&audio);
            cmn(&mut f);
            campplus.embed(&[&f[..]]).unwrap().len()
        })
    });
    // 3 s windows (298 frames) every 1.5 s: 5 windows in 10 s, one batch.
    g.bench_function("fbank_campplus_per_10s_3s_windows", |b| {
        b.iter(|| {
            let f = fbank.compute(&audio);
            let windows: Vec<Vec<[f32; FBANK_BINS]>> = (0..)
                .map(|i| i * 150)
                .take_while(|k| k + 298 <= f.len())
                .map(|k| {
                    let mut w = f[k..k + 298].to_vec();
                    cmn(&mut w);
                    w
                })
                .collect();
            let refs: Vec<&[[f32; FBANK_BINS]]> = windows.iter().map(|w| &w[..]).collect();
            campplus.embed(&refs).unwrap().len()
        })
    });
    let mut seg = Segmentation::load().unwrap();
    let chunk = &audio[..SEGMENTATION_CHUNK];
    g.bench_function("segmentation_per_10s_chunk", |b| {
        b.iter(|| seg.run(&[chunk]).unwrap().len())
    });
    let mut aasist = Aasist::load().unwrap();
    let window = &audio[..AASIST_WINDOW];
    g.bench_function("aasist_per_4s_window", |b| {
        b.iter(|| aasist.score(&[window]).unwrap()[0])
    });
    g.finish();
}

criterion_group!(benches, speech_models);
criterion_main!(benches);
