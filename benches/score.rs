//! Scoring latency (`vigil score`'s work in process, without process start-up): the bundled 20 s
//! recording end to end in each sampling mode (decode → analysers → scoring → report → DSSE
//! signature), and the scoring → report → signing stage alone on a recorded analysis (what a
//! re-score under another policy repeats). Throughput is in media seconds per second (× real
//! time = elements/s).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;
use std::time::Duration;
use vigil::ingest::{IngestConfig, MediaInput, Sampling};
use vigil::pipeline::{self, ScoreOptions};
use vigil::report::dsse;

const MEDIA_S: u64 = 20;

fn input() -> MediaInput {
    MediaInput::File(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/interview.mp4"))
}

fn options(sampling: Sampling) -> ScoreOptions {
    ScoreOptions {
        ingest: IngestConfig {
            sampling,
            ..IngestConfig::default()
        },
        ..ScoreOptions::default()
    }
}

fn key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng)
}

fn end_to_end(c: &mut Criterion) {
    let key = key();
    let mut g = c.benchmark_group("score_end_to_end_20s_360p");
    g.throughput(Throughput::Elements(MEDIA_S));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    for (name, sampling) in [
        ("keyframes", Sampling::Keyframes),
        ("1s", Sampling::Interval { every_s: 1.0 }),
        ("2s", Sampling::Interval { every_s: 2.0 }),
        ("all", Sampling::All),
    ] {
        let opts = options(sampling);
        g.bench_function(name, |b| {
            b.iter(|| {
                let report = pipeline::score(&input(), &opts).unwrap();
                dsse::sign(&report.to_payload(), &key)
            })
        });
    }
    g.finish();
}

fn scoring_stage(c: &mut Criterion) {
    let key = key();
    let opts = options(Sampling::Interval { every_s: 1.0 });
    let analysis = pipeline::analyse(&input(), &opts).unwrap();
    let mut g = c.benchmark_group("score_stage_20s_360p");
    g.throughput(Throughput::Elements(MEDIA_S));
    g.bench_function("assemble_and_sign", |b| {
        b.iter(|| {
            let report = pipeline::assemble(&analysis, &opts);
            dsse::sign(&report.to_payload(), &key)
        })
    });
    g.finish();
}

criterion_group!(benches, end_to_end, scoring_stage);
criterion_main!(benches);
