//! Spectral analyser cost on one core: the shared STFT (n_fft 400, hop 160), per-frame features,
//! voicing on every other speech frame, the hum tracker, clipping/dropout scans and the detectors,
//! over one hour of real speech (45 s of Allison tiled, 70 % of it under a speech mask as the VAD
//! would give). Throughput is in audio seconds per second (× real time = elements/s). The VAD and
//! the voice mels are the voice analyser's cost (benches/voice.rs), not counted here.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;
use vigil::analysis::spectral::{self, SpectralParams};
use vigil::dsp::stft::Stft;
use vigil::ingest::{self, MediaInput};

const RATE: usize = 16_000;

fn hour_of_speech() -> Vec<f32> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/voice_same_allison.ogg");
    let s = ingest::decode_audio(&MediaInput::File(path)).unwrap();
    s.iter().copied().cycle().take(3600 * RATE).collect()
}

/// Speech for 2.1 s, pause for 0.9 s: the VAD's share of speech in an interview.
fn speech(sample: u64) -> bool {
    sample % (3 * RATE as u64) < (21 * RATE as u64) / 10
}

fn bench(c: &mut Criterion) {
    let audio = hour_of_speech();
    let mut g = c.benchmark_group("spectral_per_audio_second");
    g.sample_size(10);
    g.throughput(Throughput::Elements(3600));
    g.bench_function("stft_only_1h", |b| {
        b.iter(|| {
            let mut stft = Stft::new(spectral::N_FFT, spectral::HOP);
            let mut n = 0u64;
            stft.push(&audio, |p| n += (p[10] > 0.0) as u64);
            n
        })
    });
    g.bench_function("analyser_1h", |b| {
        b.iter(|| spectral::analyse_signal(&audio, SpectralParams::default(), speech).findings)
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
