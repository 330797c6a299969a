//! Decoding and analysis: everything of a session that needs the media.

use super::{
    Analysis, PipelineError, Progress, ScoreOptions, hash_file, reference_embedding,
    reference_voice_embedding,
};
use crate::analysis::audio::{AudioAnalyser, AudioSummary};
use crate::analysis::face::{FaceAnalyser, PerWorker};
use crate::analysis::lipsync::MouthTrace;
use crate::analysis::spectral::SpectralAnalyser;
use crate::analysis::video::{FrameSignature, VideoAnalyser};
use crate::analysis::voice::VoiceAnalyser;
use crate::inference::InferenceError;
use crate::ingest::{self, IngestError, Item, MediaInput, MediaSummary, RunError, Sampling};
use crate::media::{AUDIO_RATE, AudioChunk, Glimpse, VideoFrame};
use rayon::prelude::*;

/// The media's SHA-256 and size: a file's, hashed on its own thread while it decoded; a live
/// spool's, hashed now that its stream has ended; none for a stream read from a URL.
fn media_hash(
    hasher: Option<std::thread::JoinHandle<std::io::Result<(String, u64)>>>,
    input: &MediaInput,
) -> Result<(Option<String>, Option<u64>), PipelineError> {
    let hashed = match (hasher, input) {
        (Some(h), _) => h.join().expect("the hash thread does not panic"),
        (None, MediaInput::Spool(spool)) => hash_file(spool.path()),
        (None, _) => return Ok((None, None)),
    };
    let (sha, size) = hashed.map_err(|source| PipelineError::Hash {
        input: input.display_name(),
        source,
    })?;
    Ok((Some(sha), Some(size)))
}

/// One set of face models per rayon worker, shared by every analysis in the process (a server
/// runs many sessions on the same pool; loading the models per session would multiply memory).
fn shared_face_models() -> &'static PerWorker {
    static MODELS: std::sync::OnceLock<PerWorker> = std::sync::OnceLock::new();
    MODELS.get_or_init(|| PerWorker::new(rayon::current_num_threads()))
}

/// Why `analyse` stopped the ingest early.
enum Stop {
    /// A video batch failed in the face models.
    Video(InferenceError),
    /// The audio thread is gone: it stopped on an error, which its join returns.
    AudioEnded,
}

/// Decodes the media and runs every analyser: everything of a session that needs the media.
pub fn analyse(input: &MediaInput, opts: &ScoreOptions) -> Result<Analysis, PipelineError> {
    // No analysis of an identified candidate without their recorded consent.
    opts.session
        .check_consent()
        .map_err(PipelineError::Consent)?;
    // Load models before decoding anything: a broken install fails in milliseconds.
    let audio = audio_analyser(opts)?;
    let interval_s = match opts.ingest.sampling {
        Sampling::Interval { every_s } => every_s,
        Sampling::Keyframes => 2.0,
        Sampling::All => 1.0 / 30.0,
    };
    let mut stage = VideoStage::new(input, opts, interval_s)?;
    let hasher = input.path().map(|p| {
        let p = p.to_path_buf();
        std::thread::spawn(move || hash_file(&p))
    });

    let (audio_tx, audio_thread) = spawn_audio_thread(audio, opts.progress.clone());

    let summary = ingest::run(input, &opts.ingest, |item| match item {
        Item::Video(f) => stage.frame(f).map_err(Stop::Video),
        Item::Glimpse(g) => {
            stage.glimpse(g);
            Ok(())
        }
        // A closed channel means the audio thread stopped on an error, collected below.
        Item::Audio(a) => audio_tx.send(a).map_err(|_| Stop::AudioEnded),
    });
    drop(audio_tx);
    let audio_result = audio_thread
        .join()
        .expect("the audio analysis thread does not panic");
    let (summary, audio_summary) = settle(input, summary, audio_result)?;
    stage.flush()?;
    let frames = stage.frames;
    let (findings, per_frame) = stage.video.finish();
    let face_present_ratio = stage.faces.present_ratio();
    let (face_findings, face_samples, face_enrolled) = stage.faces.finish();

    let (sha256, size_bytes) = media_hash(hasher, input)?;

    Ok(Analysis {
        report_name: opts
            .media_name
            .clone()
            .unwrap_or_else(|| input.report_name()),
        summary,
        audio_summary,
        video_findings: findings,
        per_frame,
        face_present_ratio,
        face_findings,
        face_samples,
        face_enrolled,
        mouth_trace: stage.mouths,
        sha256,
        size_bytes,
        frames,
        interval_s,
    })
}

/// The audio side's analysers, with the candidate's enrolled voice when one was given.
fn audio_analyser(opts: &ScoreOptions) -> Result<AudioAnalyser, PipelineError> {
    let voice_reference = opts
        .reference_voice
        .as_ref()
        .map(|r| reference_voice_embedding(r, opts))
        .transpose()?;
    Ok(AudioAnalyser::new(
        opts.vad.clone(),
        VoiceAnalyser::new(opts.voice.clone(), voice_reference)?,
        Some(SpectralAnalyser::new(opts.spectral.clone())),
    )?)
}

/// The outcome of the ingest and of the audio thread as one result: the first real error
/// wins (a failed face batch, then the audio thread's own error, then the ingest's), and a
/// still image without sound is refused.
fn settle(
    input: &MediaInput,
    summary: Result<MediaSummary, RunError<Stop>>,
    audio_result: Result<AudioSummary, InferenceError>,
) -> Result<(MediaSummary, AudioSummary), PipelineError> {
    let (summary, audio_summary) = match (summary, audio_result) {
        (Err(RunError::Consumer(Stop::Video(e))), _) => return Err(e.into()),
        (_, Err(e)) => return Err(e.into()),
        (Err(RunError::Ingest(e)), Ok(_)) => return Err(e.into()),
        (Err(RunError::Consumer(Stop::AudioEnded)), Ok(_)) => {
            unreachable!("the audio thread reads until its sender is dropped unless it fails")
        }
        (Ok(s), Ok(a)) => (s, a),
    };
    if let Some(decoder) = &summary.image_decoder
        && summary.audio.is_none()
    {
        return Err(IngestError::BadInput {
            input: input.display_name(),
            reason: format!(
                "is a still image ({decoder}), not a recording: score a video or audio recording of the interview"
            ),
        }
        .into());
    }
    Ok((summary, audio_summary))
}
impl VideoStage {
    /// A live spool is analysed frame by frame, so the face results keep up with real time (a
    /// server gets its parallelism from concurrent sessions); a file in batches across the pool.
    fn new(
        input: &MediaInput,
        opts: &ScoreOptions,
        interval_s: f64,
    ) -> Result<VideoStage, PipelineError> {
        let reference = opts
            .reference_face
            .as_ref()
            .map(reference_embedding)
            .transpose()?;
        let batch_size = match input {
            MediaInput::Spool(_) => 1,
            _ => (rayon::current_num_threads() * 2).max(4),
        };
        Ok(VideoStage {
            video: VideoAnalyser::new(opts.video.clone(), interval_s),
            faces: FaceAnalyser::new(opts.face.clone(), interval_s, reference),
            models: shared_face_models(),
            progress: opts.progress.clone(),
            batch: Vec::with_capacity(batch_size),
            batch_size,
            glimpses: Vec::new(),
            mouths: MouthTrace::default(),
            frames: 0,
        })
    }
}

/// The video side of `analyse`: sampled frames batched across the rayon pool for the face
/// models, and the glimpses that arrived between them, handed to the video analyser in pts
/// order whatever the batch size.
struct VideoStage {
    video: VideoAnalyser,
    faces: FaceAnalyser,
    models: &'static PerWorker,
    progress: Option<std::sync::Arc<Progress>>,
    batch: Vec<VideoFrame>,
    batch_size: usize,
    /// Each glimpse with the number of batched frames before it.
    glimpses: Vec<(usize, Glimpse)>,
    mouths: MouthTrace,
    frames: u64,
}

impl VideoStage {
    fn frame(&mut self, f: VideoFrame) -> Result<(), InferenceError> {
        self.frames += 1;
        self.batch.push(f);
        if self.batch.len() >= self.batch_size {
            self.flush()?;
        }
        Ok(())
    }

    fn glimpse(&mut self, g: Glimpse) {
        self.glimpses.push((self.batch.len(), g));
    }

    fn flush(&mut self) -> Result<(), InferenceError> {
        let models = self.models;
        let per_frame = self
            .batch
            .par_iter()
            .map(|f| {
                let sig = FrameSignature::of(f);
                let obs = models.observe(f, sig.mean_luma);
                obs.map(|o| (sig, o))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut pending = std::mem::take(&mut self.glimpses).into_iter().peekable();
        for (i, (sig, obs)) in per_frame.into_iter().enumerate() {
            while let Some((_, g)) = pending.next_if(|(before, _)| *before <= i) {
                self.push_glimpse(g);
            }
            self.video.push(sig);
            self.mouths.sample(obs.mouth);
            self.faces.push(obs);
        }
        pending.for_each(|(_, g)| self.push_glimpse(g));
        if let (Some(p), Some(last)) = (&self.progress, self.batch.last()) {
            Progress::note(&p.video_ms, last.pts.0 / 1_000_000);
        }
        self.batch.clear();
        Ok(())
    }

    /// The mouth is read from a glimpse's thumbnail, which the loop search does not keep.
    fn push_glimpse(&mut self, mut g: Glimpse) {
        if let Some(thumb) = g.thumb.take() {
            self.mouths.glimpse(g.pts, &thumb);
        }
        self.video.push_glimpse(g);
    }
}

/// The audio analyser (a recurrent VAD, sequential by nature) runs on its own thread behind a
/// bounded channel, so it overlaps with the video work on the rayon pool instead of waiting for
/// it, and hands speech on to the voice encoder's thread (`analysis/voice_thread.rs`); a full
/// channel back-pressures the decoder like any other queue.
fn spawn_audio_thread(
    mut audio: AudioAnalyser,
    progress: Option<std::sync::Arc<Progress>>,
) -> (
    crossbeam_channel::Sender<AudioChunk>,
    std::thread::JoinHandle<Result<AudioSummary, InferenceError>>,
) {
    let (audio_tx, audio_rx) = crossbeam_channel::bounded::<AudioChunk>(AUDIO_QUEUE);
    let thread = std::thread::Builder::new()
        .name("vigil-audio".into())
        .spawn(move || {
            for chunk in audio_rx {
                audio.feed(chunk.pts, &chunk.samples)?;
                if let Some(p) = &progress {
                    let end = chunk.pts.0 / 1_000_000
                        + chunk.samples.len() as u64 * 1000 / AUDIO_RATE as u64;
                    Progress::note(&p.audio_ms, end);
                }
            }
            audio.finish()
        })
        .expect("spawning the audio analysis thread");
    (audio_tx, thread)
}

/// Audio chunks queued for the audio thread (GStreamer chunks are ≈ 20–100 ms).
const AUDIO_QUEUE: usize = 64;
