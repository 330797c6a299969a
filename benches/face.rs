//! Face analyser cost per frame on one core: detection (each BlazeFace range), landmarks,
//! alignment + embedding, and the whole per-frame observation; frames per second = elements/s.
//!
//! Input: the first frame of `testdata/interview.mp4` (640×360, one face).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;
use vigil::analysis::face::FaceModels;
use vigil::ingest::{self, IngestConfig, Item, MediaInput, Sampling};
use vigil::media::VideoFrame;

fn frame() -> VideoFrame {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/interview.mp4");
    let mut first = None;
    let cfg = IngestConfig {
        sampling: Sampling::Keyframes,
        ..IngestConfig::default()
    };
    ingest::run(&MediaInput::File(path), &cfg, |item| {
        if let Item::Video(f) = item {
            first.get_or_insert(f);
        }
        Ok::<_, std::convert::Infallible>(())
    })
    .unwrap();
    first.unwrap()
}

fn face(c: &mut Criterion) {
    let f = frame();
    let mut m = FaceModels::load().unwrap();
    let dets = m.detect_with(&f, false).unwrap();
    let primary = dets.first().expect("a face in the bench frame").clone();
    let (lms, _) = m.landmarks(&f, &primary).unwrap();

    let mut g = c.benchmark_group("face_per_frame_640x360");
    g.throughput(Throughput::Elements(1));
    g.bench_function("detect_short_range", |b| {
        b.iter(|| m.detect_with(&f, false).unwrap())
    });
    g.bench_function("detect_full_range", |b| {
        b.iter(|| m.detect_with(&f, true).unwrap())
    });
    g.bench_function("landmarks", |b| {
        b.iter(|| m.landmarks(&f, &primary).unwrap())
    });
    g.bench_function("align_and_embed", |b| b.iter(|| m.embed(&f, &lms).unwrap()));
    g.bench_function("observe_whole_frame", |b| {
        b.iter(|| m.observe(&f, 128.0).unwrap())
    });
    g.finish();
}

criterion_group!(benches, face);
criterion_main!(benches);
