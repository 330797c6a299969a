//! Voice analyser costs per second of audio on one core: Silero VAD, the mel front end (STFT +
//! Slaney filterbank) and GE2E embeddings (one 1.6 s window per 0.77 s of speech, batched by 8).
//! Throughput is in audio seconds per second (× real time = elements/s).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;
use vigil::analysis::audio::{VAD_STEP, Vad};
use vigil::analysis::voice::VoiceEncoder;
use vigil::dsp::mel::melspectrogram;
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
    g.bench_function("mel_front_end", |b| b.iter(|| melspectrogram(&audio)));
    let mels = melspectrogram(&audio);
    let flat: Vec<f32> = mels.iter().flatten().copied().collect();
    // Windows every 77 frames, as the analyser takes them: 10 s of speech → 12 windows.
    let windows: Vec<&[f32]> = (0..)
        .map(|i| i * 77)
        .take_while(|k| k + 160 <= mels.len())
        .map(|k| &flat[k * 40..(k + 160) * 40])
        .collect();
    let mut enc = VoiceEncoder::load().unwrap();
    g.bench_function("ge2e_embeddings_batched", |b| {
        b.iter(|| {
            windows
                .chunks(8)
                .map(|w| enc.embed(w).unwrap().len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, voice);
criterion_main!(benches);
