//! Decode throughput of the GStreamer ingest on 720p H.264 + AAC, per sampling mode.
//!
//! Input: `testdata/generated/interview_720p_60s.mp4` (made by `scripts/gen-testdata --large`)
//! when present, else a 10 s 720p clip generated here once with GStreamer's test sources.
//! Throughput is reported in media seconds per second (× real time = elements/s).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::path::{Path, PathBuf};
use vigil::ingest::{self, IngestConfig, Item, MediaInput, Sampling};

fn input() -> (PathBuf, u64) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let big = root.join("testdata/generated/interview_720p_60s.mp4");
    if big.is_file() {
        return (big, 60);
    }
    let dir = root.join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let clip = dir.join("testsrc_720p_10s.mp4");
    if !clip.is_file() {
        let tmp = dir.join("testsrc_720p_10s.mp4.part");
        let status = std::process::Command::new("gst-launch-1.0")
            .args([
                "-q",
                "-e",
                "videotestsrc",
                "pattern=ball",
                "num-buffers=300",
                "!",
                "video/x-raw,width=1280,height=720,framerate=30/1",
                "!",
                "x264enc",
                "speed-preset=veryfast",
                "key-int-max=60",
                "!",
                "h264parse",
                "!",
                "queue",
                "!",
                "mp4mux",
                "name=mux",
                "!",
                "filesink",
            ])
            .arg(format!("location={}", tmp.display()))
            .args([
                "audiotestsrc",
                "num-buffers=470",
                "!",
                "audioconvert",
                "!",
                "avenc_aac",
                "!",
                "queue",
                "!",
                "mux.",
            ])
            .status()
            .expect("gst-launch-1.0 runs (scripts/setup installs it)");
        assert!(status.success(), "could not generate the bench clip");
        std::fs::rename(&tmp, &clip).unwrap();
    }
    (clip, 10)
}

fn decode(c: &mut Criterion) {
    let (path, secs) = input();
    let media = MediaInput::File(path);
    let mut g = c.benchmark_group("ingest_720p_h264");
    g.sample_size(10);
    g.throughput(Throughput::Elements(secs));
    for (name, sampling) in [
        ("all_frames", Sampling::All),
        ("interval_1s", Sampling::Interval { every_s: 1.0 }),
        ("keyframes", Sampling::Keyframes),
    ] {
        let cfg = IngestConfig {
            sampling,
            ..IngestConfig::default()
        };
        g.bench_with_input(BenchmarkId::from_parameter(name), &cfg, |b, cfg| {
            b.iter(|| {
                let mut frames = 0u64;
                let mut samples = 0usize;
                ingest::run(&media, cfg, |item| {
                    match item {
                        Item::Video(_) => frames += 1,
                        Item::Audio(a) => samples += a.samples.len(),
                        Item::Glimpse(_) => {}
                    }
                    Ok::<_, std::convert::Infallible>(())
                })
                .unwrap();
                assert!(frames > 0 && samples > 0);
                (frames, samples)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
