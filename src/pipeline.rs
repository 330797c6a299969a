//! `vigil score`'s engine: ingest → analysers on a rayon pool → scoring → report payload.
//!
//! The consumer thread receives decoded items from the bounded ingest channel. Video frames are
//! gathered into small batches whose signatures are computed in parallel (rayon, indexed collect
//! keeps frame order); while that runs, the audio analyser (a sequential recurrent VAD) works on
//! the audio received so far via `rayon::join`. Results are keyed by timestamp and reduced in
//! frame order, so the payload does not depend on the thread count.

use crate::analysis::audio::{AudioAnalyser, AudioSummary, ENVELOPE_HOP, VadParams};
use crate::analysis::face::{self, FaceAnalyser, FaceParams, FaceSample, PerWorker};
use crate::analysis::lipsync::{self, LipSyncParams, MouthTrace};
use crate::analysis::spectral::{SpectralAnalyser, SpectralParams};
use crate::analysis::video::{FrameSignature, VideoAnalyser, VideoFinding, VideoParams};
use crate::analysis::voice::{self, VoiceAnalyser, VoiceParams, VoiceSample};
use crate::inference::{CAMPPLUS, InferenceError, SILERO_VAD};
use crate::ingest::{self, IngestConfig, IngestError, Item, MediaInput, RunError, Sampling};
use crate::media::{AUDIO_RATE, AudioChunk, Glimpse, Pts, VideoFrame};
use crate::report::{
    Coverage, Event, MediaSection, PipelineSection, PolicyRef, Report, SCHEMA, SessionInfo,
    Timeline, round,
};
use crate::scoring::{self, EventKind, Policy, Sufficiency};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Inference(#[from] InferenceError),
    #[error("{input}: {reason}")]
    Hash { input: String, reason: String },
    #[error("reference photo {input}: {reason}")]
    Reference { input: String, reason: String },
    #[error("reference voice {input}: {reason}")]
    ReferenceVoice { input: String, reason: String },
    /// A reference photo or recording that cannot be read (exit 3, like the session media).
    #[error("reference {role}: {source}")]
    ReferenceMedia {
        role: &'static str,
        #[source]
        source: IngestError,
    },
    /// The session names a candidate but carries no valid consent record (exit 2).
    #[error("consent: {0}")]
    Consent(String),
}

/// Everything `score` needs besides the media.
#[derive(Debug, Clone, Default)]
pub struct ScoreOptions {
    pub ingest: IngestConfig,
    pub session: SessionInfo,
    pub policy: Policy,
    pub video: VideoParams,
    pub vad: VadParams,
    pub face: FaceParams,
    /// A photo of the candidate (e.g. from ID verification) to compare the session against.
    pub reference_face: Option<MediaInput>,
    pub voice: VoiceParams,
    pub lipsync: LipSyncParams,
    /// A recording of the candidate's voice to compare the session against.
    pub reference_voice: Option<MediaInput>,
    pub spectral: SpectralParams,
    /// How the media is named in the report when not by its path or URI (a server's spool file
    /// carries the bot's file name).
    pub media_name: Option<String>,
    /// Where the analysis has got to, for a server watching a live session (ingest lag).
    pub progress: Option<std::sync::Arc<Progress>>,
}

/// How far into the media the analysers have got: the media time up to which every stream
/// that has started has been *analysed* (not merely decoded), for a server measuring how far a
/// live session's analysis trails real time.
#[derive(Debug)]
pub struct Progress {
    video_ms: AtomicU64,
    audio_ms: AtomicU64,
}

const NOT_STARTED: u64 = u64::MAX;

impl Default for Progress {
    fn default() -> Self {
        Progress {
            video_ms: AtomicU64::new(NOT_STARTED),
            audio_ms: AtomicU64::new(NOT_STARTED),
        }
    }
}

impl Progress {
    /// Media seconds analysed in every started stream (0 before anything was analysed).
    pub fn media_s(&self) -> f64 {
        let v = self.video_ms.load(Ordering::Relaxed);
        let a = self.audio_ms.load(Ordering::Relaxed);
        match v.min(a) {
            NOT_STARTED => 0.0,
            ms => ms as f64 / 1000.0,
        }
    }

    fn note(slot: &AtomicU64, ms: u64) {
        let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
            (old == NOT_STARTED || ms > old).then_some(ms)
        });
    }
}

/// One set of face models per rayon worker, shared by every analysis in the process (a server
/// runs many sessions on the same pool; loading the models per session would multiply memory).
fn shared_face_models() -> &'static PerWorker {
    static MODELS: std::sync::OnceLock<PerWorker> = std::sync::OnceLock::new();
    MODELS.get_or_init(|| PerWorker::new(rayon::current_num_threads()))
}

/// Minimum speech in a reference recording: four 3 s windows (8 s of speech).
const MIN_REFERENCE_WINDOWS: u64 = 4;

/// Utterance embedding of the speech in a reference recording (any audio or video GStreamer
/// decodes): VAD, CAM++ windows, normalised mean.
pub fn reference_voice_embedding(
    input: &MediaInput,
    opts: &ScoreOptions,
) -> Result<[f32; voice::EMBED_DIM], PipelineError> {
    let mut audio = AudioAnalyser::new(
        opts.vad.clone(),
        VoiceAnalyser::new(opts.voice.clone(), None)?,
        None,
    )?;
    ingest::run(input, &IngestConfig::default(), |item| match item {
        Item::Audio(a) => audio.feed(a.pts, &a.samples),
        Item::Video(_) | Item::Glimpse(_) => Ok(()),
    })
    .map_err(|e| match e {
        RunError::Consumer(e) => PipelineError::Inference(e),
        RunError::Ingest(source) => PipelineError::ReferenceMedia {
            role: "voice",
            source,
        },
    })?;
    let summary = audio.finish()?;
    let reason = |r: String| PipelineError::ReferenceVoice {
        input: input.display_name(),
        reason: r,
    };
    if summary.voice.windows < MIN_REFERENCE_WINDOWS {
        return Err(reason(format!(
            "has {:.1} s of speech; at least 8 s of the candidate speaking is needed",
            summary.speech_s
        )));
    }
    summary
        .voice
        .mean_embedding
        .ok_or_else(|| reason("contains no speech".into()))
}

/// Embeds the single face in a reference photo (any image or video GStreamer decodes; the
/// first frame is used).
pub fn reference_embedding(input: &MediaInput) -> Result<[f32; 128], PipelineError> {
    let frame =
        ingest::first_video_frame(input).map_err(|source| PipelineError::ReferenceMedia {
            role: "photo",
            source,
        })?;
    let reason = |r: String| PipelineError::Reference {
        input: input.display_name(),
        reason: r,
    };
    let frame = frame.ok_or_else(|| reason("contains no picture".into()))?;
    let obs = face::FaceModels::load()?.observe(&frame, 128.0)?;
    if obs.faces.len() != 1 {
        return Err(reason(format!(
            "shows {} faces; it must show exactly one (the candidate)",
            obs.faces.len()
        )));
    }
    obs.embedding
        .ok_or_else(|| reason("the face is too small or turned away to be compared".into()))
}

/// Analyses `input` and builds the (unsigned) report.
pub fn score(input: &MediaInput, opts: &ScoreOptions) -> Result<Report, PipelineError> {
    let analysis = analyse(input, opts)?;
    Ok(assemble(&analysis, opts))
}

/// What the analysers found in one session's media, before any policy is applied. Held in
/// memory for one session only (the voice outcome carries the session's mean embedding).
pub struct Analysis {
    report_name: String,
    summary: ingest::MediaSummary,
    audio_summary: AudioSummary,
    video_findings: Vec<VideoFinding>,
    per_frame: Vec<(Pts, f32, f32)>,
    face_present_ratio: Option<f64>,
    face_findings: Vec<face::FaceFinding>,
    face_samples: Vec<FaceSample>,
    face_enrolled: bool,
    mouth_trace: MouthTrace,
    sha256: Option<String>,
    size_bytes: Option<u64>,
    frames: u64,
    interval_s: f64,
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
    let voice_reference = opts
        .reference_voice
        .as_ref()
        .map(|r| reference_voice_embedding(r, opts))
        .transpose()?;
    let audio = AudioAnalyser::new(
        opts.vad.clone(),
        VoiceAnalyser::new(opts.voice.clone(), voice_reference)?,
        Some(SpectralAnalyser::new(opts.spectral.clone())),
    )?;
    let interval_s = match opts.ingest.sampling {
        Sampling::Interval { every_s } => every_s,
        Sampling::Keyframes => 2.0,
        Sampling::All => 1.0 / 30.0,
    };
    let reference = opts
        .reference_face
        .as_ref()
        .map(reference_embedding)
        .transpose()?;
    let hasher = input.path().map(|p| {
        let p = p.to_path_buf();
        std::thread::spawn(move || hash_file(&p))
    });

    // A live spool is analysed frame by frame, so the face results keep up with real time (a
    // server gets its parallelism from concurrent sessions); a file in batches across the pool.
    let batch_size = match input {
        MediaInput::Spool(_) => 1,
        _ => (rayon::current_num_threads() * 2).max(4),
    };
    let mut stage = VideoStage {
        video: VideoAnalyser::new(opts.video.clone(), interval_s),
        faces: FaceAnalyser::new(opts.face.clone(), interval_s, reference),
        models: shared_face_models(),
        progress: opts.progress.clone(),
        batch: Vec::with_capacity(batch_size),
        batch_size,
        glimpses: Vec::new(),
        mouths: MouthTrace::default(),
        frames: 0,
    };
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
    let summary = match (summary, audio_result) {
        (Err(RunError::Consumer(Stop::Video(e))), _) => return Err(e.into()),
        (_, Err(e)) => return Err(e.into()),
        (Err(RunError::Ingest(e)), Ok(_)) => return Err(e.into()),
        (Err(RunError::Consumer(Stop::AudioEnded)), Ok(_)) => {
            unreachable!("the audio thread reads until its sender is dropped unless it fails")
        }
        (Ok(s), Ok(a)) => (s, a),
    };
    let (summary, audio_summary) = summary;
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
    stage.flush()?;
    let frames = stage.frames;
    let (findings, per_frame) = stage.video.finish();
    let face_present_ratio = stage.faces.present_ratio();
    let (face_findings, face_samples, face_enrolled) = stage.faces.finish();

    let (sha256, size_bytes) = match hasher {
        Some(h) => {
            let (sha, size) = h
                .join()
                .expect("hash thread")
                .map_err(|e| PipelineError::Hash {
                    input: input.display_name(),
                    reason: e.to_string(),
                })?;
            (Some(sha), Some(size))
        }
        None => match input {
            // A spool is complete only now that its stream has ended.
            MediaInput::Spool(spool) => {
                let (sha, size) = hash_file(spool.path()).map_err(|e| PipelineError::Hash {
                    input: input.display_name(),
                    reason: e.to_string(),
                })?;
                (Some(sha), Some(size))
            }
            _ => (None, None),
        },
    };

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

/// Scoring, report and nothing else, from a session's analysis: what re-scoring under another
/// policy would repeat, and what `benches/score.rs` measures on its own.
pub fn assemble(a: &Analysis, opts: &ScoreOptions) -> Report {
    let Analysis {
        summary,
        audio_summary,
        video_findings: findings,
        per_frame,
        face_present_ratio,
        face_findings,
        face_samples,
        face_enrolled,
        sha256,
        size_bytes,
        frames,
        interval_s,
        ..
    } = a;
    let (sha256, size_bytes) = (sha256.clone(), *size_bytes);
    let (frames, interval_s, face_present_ratio, face_enrolled) =
        (*frames, *interval_s, *face_present_ratio, *face_enrolled);

    let has_video = summary.video.is_some() && frames > 0;
    let has_audio = summary.audio.is_some() && audio_summary.samples > 0;
    let video_end = per_frame
        .last()
        .map(|(p, _, _)| p.as_secs_f64() + interval_s.min(1.0))
        .unwrap_or(0.0);
    let audio_end =
        audio_summary.start.as_secs_f64() + audio_summary.samples as f64 / AUDIO_RATE as f64;
    let duration_s = video_end.max(if has_audio { audio_end } else { 0.0 });

    // An unchanging picture with nobody in it is an empty room (reported as `face_absent`), not
    // evidence of a frozen or pre-recorded candidate: keep freezes that show a face. In the dark
    // every change shrinks with the light, so a still picture cannot be told from a still person
    // there (`low_light` is reported instead): keep freezes whose frames are mostly lit.
    let lit = |start: Pts, end: Pts| lit(per_frame, (start, end), opts.face.low_light_luma);
    let findings: Vec<VideoFinding> = findings
        .iter()
        .filter(|f| match f {
            VideoFinding::Freeze { start, end, .. } => {
                lit(*start, *end)
                    && face_samples
                        .iter()
                        .any(|s| s.pts >= *start && s.pts <= *end && s.faces > 0)
            }
            VideoFinding::Loop { .. } => true,
        })
        .cloned()
        .collect();
    let mut events = scoring::video_events(&findings);
    events.extend(scoring::face_events(face_findings));
    events.extend(scoring::voice_events(
        &audio_summary.voice.findings,
        &opts.voice,
    ));
    if has_audio && let Some(sp) = &audio_summary.spectral {
        events.extend(scoring::spectral_events(
            &sp.findings,
            audio_summary.start.as_secs_f64(),
        ));
    }
    if has_video && has_audio {
        events.extend(lip_events(a, &findings, opts));
    }
    tracing::debug!(
        file_bytes = ?size_bytes,
        demuxed_bytes = ?summary.demuxed_bytes,
        cuts = summary.cuts.len(),
        "media bytes"
    );
    events.extend(scoring::media_fault_events(
        &summary.cuts,
        size_bytes.zip(summary.demuxed_bytes),
        duration_s,
    ));
    if !has_video {
        events.push(scoring::missing_stream_event(
            EventKind::NoVideo,
            duration_s,
        ));
    }
    if !has_audio {
        events.push(scoring::missing_stream_event(
            EventKind::NoAudio,
            duration_s,
        ));
    }
    events.sort_by(|a, b| {
        a.start_s
            .total_cmp(&b.start_s)
            .then(a.kind.cmp(&b.kind))
            .then(a.end_s.total_cmp(&b.end_s))
    });
    let spectral_events: Vec<Event> = events
        .iter()
        .filter(|e| {
            e.kind.is_spectral() || matches!(e.kind, EventKind::Clipping | EventKind::AudioDropout)
        })
        .cloned()
        .collect();
    let events = opts.policy.admit(events);
    let score = scoring::aggregate(
        &opts.policy,
        &events,
        &Sufficiency {
            has_video,
            has_audio,
            audio_checked: has_audio && audio_summary.spectral.is_some(),
            face_checked: face_enrolled
                && face_present_ratio.is_some_and(|r| r >= opts.face.min_present_ratio),
            voice_checked: has_audio
                && audio_summary.voice.enrolled
                && audio_summary.speech_s >= MIN_SPEECH_FOR_VOICE_S,
            duration_s,
            frames_analysed: Some(frames),
        },
    );

    let mean_frame_interval_s = (per_frame.len() >= 2).then(|| {
        let first = per_frame[0].0.as_secs_f64();
        let last = per_frame[per_frame.len() - 1].0.as_secs_f64();
        round((last - first) / (per_frame.len() - 1) as f64, 3)
    });
    let mut analysers = Vec::new();
    let mut models = Vec::new();
    if has_video {
        analysers.push("face_consistency".to_string());
        analysers.push("video_integrity".to_string());
        models.extend(face::model_refs());
    }
    if has_video && has_audio {
        analysers.push("lip_sync".to_string());
    }
    if has_audio {
        analysers.push("voice_activity".to_string());
        analysers.push("voice_consistency".to_string());
        analysers.push("spectral_anomaly".to_string());
        models.push(SILERO_VAD.reference());
        models.push(CAMPPLUS.reference());
    }
    models.sort();

    let session = opts.session.clone();
    let source = a.report_name.clone();
    let report_id = report_id(
        sha256.as_deref().unwrap_or(&source),
        &session,
        &opts.policy,
        &opts.ingest.sampling,
    );
    Report {
        schema: SCHEMA.into(),
        report_id,
        generated_at: crate::report::now_rfc3339(),
        session,
        media: MediaSection {
            source,
            sha256,
            size_bytes,
            duration_s: round(duration_s, 3),
            container: summary.container.clone(),
            video: summary.video.clone(),
            audio: summary.audio.clone(),
        },
        pipeline: PipelineSection {
            vigil_version: env!("CARGO_PKG_VERSION").into(),
            policy: PolicyRef {
                id: opts.policy.id.clone(),
                version: opts.policy.version.clone(),
                sha256: opts.policy.sha256.clone(),
            },
            sampling: opts.ingest.sampling,
            analysers,
            models,
        },
        coverage: Coverage {
            frames_analysed: frames,
            mean_frame_interval_s,
            audio_windows_analysed: audio_summary.per_second.len() as u64,
            face_present_ratio: face_present_ratio.map(|r| round(r, 3)),
            speech_s: has_audio.then(|| round(audio_summary.speech_s, 2)),
        },
        score,
        events,
        timeline: timeline(
            per_frame,
            face_samples,
            has_audio.then_some(audio_summary),
            &audio_summary.voice.samples,
            &spectral_events,
        ),
    }
}

/// Per-second series: video motion (mean abs luma difference to the previous frame), mean luma,
/// audio level (dBFS) and speech probability.
fn timeline(
    per_frame: &[(Pts, f32, f32)],
    faces: &[FaceSample],
    audio: Option<&AudioSummary>,
    voice: &[VoiceSample],
    spectral_events: &[Event],
) -> Timeline {
    let mut series: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    // Sized from the latest timestamp (frames are not guaranteed to be in time order), and
    // every index below is clamped.
    let video_secs = per_frame
        .iter()
        .map(|(p, _, _)| p.as_secs_f64().floor() as usize + 1)
        .max()
        .unwrap_or(0);
    if video_secs > 0 {
        let mut motion: Vec<(f64, u32)> = vec![(0.0, 0); video_secs];
        let mut luma: Vec<(f64, u32)> = vec![(0.0, 0); video_secs];
        for (p, m, l) in per_frame {
            let s = (p.as_secs_f64().floor() as usize).min(video_secs - 1);
            if m.is_finite() {
                motion[s].0 += *m as f64;
                motion[s].1 += 1;
            }
            luma[s].0 += *l as f64;
            luma[s].1 += 1;
        }
        let mean = |v: Vec<(f64, u32)>, d: i32| -> Vec<Option<f64>> {
            v.into_iter()
                .map(|(s, n)| (n > 0).then(|| round(s / n as f64, d)))
                .collect()
        };
        series.insert("video_motion".into(), mean(motion, 2));
        series.insert("video_luma".into(), mean(luma, 1));
        // Faces on camera: the most seen in any frame of that second.
        let mut count: Vec<Option<f64>> = vec![None; video_secs];
        let mut dist: Vec<(f64, u32)> = vec![(0.0, 0); video_secs];
        for f in faces {
            let s = (f.pts.as_secs_f64().floor() as usize).min(video_secs - 1);
            count[s] = Some(count[s].unwrap_or(0.0).max(f.faces as f64));
            if let Some(d) = f.distance {
                dist[s].0 += d as f64;
                dist[s].1 += 1;
            }
        }
        series.insert("faces_on_camera".into(), count);
        series.insert("face_distance".into(), mean(dist, 3));
    }
    if let Some(a) = audio {
        let offset = a.start.as_secs_f64().floor() as usize;
        let pad = |v: Vec<Option<f64>>| -> Vec<Option<f64>> {
            std::iter::repeat_n(None, offset).chain(v).collect()
        };
        series.insert(
            "audio_level_dbfs".into(),
            pad(a
                .per_second
                .iter()
                .map(|s| Some(round(s.rms_dbfs() as f64, 1)))
                .collect()),
        );
        if let Some(sp) = &a.spectral {
            // Noise floor of the pauses, and each second's own anomaly cue strength (0–1).
            series.insert(
                "noise_floor_dbfs".into(),
                pad(sp
                    .seconds
                    .iter()
                    .map(|s| s.noise_floor_dbfs.map(|f| round(f as f64, 1)))
                    .collect()),
            );
            // Per second, the highest confidence of a spectral event covering it (0 when none).
            let mut anomaly: Vec<Option<f64>> = sp
                .seconds
                .iter()
                .map(|x| (x.frames > 0).then_some(0.0))
                .collect();
            for e in spectral_events {
                let from = (e.start_s - a.start.as_secs_f64()).max(0.0).floor() as usize;
                let to = (e.end_s - a.start.as_secs_f64()).max(0.0).ceil() as usize;
                for v in anomaly.iter_mut().take(to).skip(from).flatten() {
                    *v = v.max(e.confidence);
                }
            }
            series.insert("audio_anomaly".into(), pad(anomaly));
        }
        series.insert(
            "speech_probability".into(),
            pad(a
                .per_second
                .iter()
                .map(|s| s.mean_speech_prob().map(|p| round(p as f64, 3)))
                .collect()),
        );
    }
    if let Some(a) = audio
        && video_secs > 0
    {
        // Mouth–voice correlation over the 10 s around each second (null without enough pairs).
        let loud = loudness(a);
        let r: Vec<Option<f64>> = (0..video_secs)
            .map(|sec| {
                let (from, to) = (sec.saturating_sub(5) as u64, sec as u64 + 5);
                lipsync::correlation(
                    faces,
                    &loud,
                    Pts(from * 1_000_000_000),
                    Pts(to * 1_000_000_000),
                )
                .map(|r| round(r as f64, 3))
            })
            .collect();
        series.insert("mouth_voice_correlation".into(), r);
    }
    if let Some(a) = audio {
        let secs = a.per_second.len() + a.start.as_secs_f64().floor() as usize;
        let mut sim: Vec<(f64, u32)> = vec![(0.0, 0); secs.max(1)];
        for v in voice {
            if let Some(x) = v.similarity {
                let s = (v.centre.as_secs_f64().floor() as usize).min(sim.len() - 1);
                sim[s].0 += x as f64;
                sim[s].1 += 1;
            }
        }
        series.insert(
            "voice_similarity".into(),
            sim.into_iter()
                .map(|(s, n)| (n > 0).then(|| round(s / n as f64, 3)))
                .collect(),
        );
    }
    Timeline {
        step_s: 1.0,
        series,
    }
}

/// Lip-sync mismatches: a closed or still mouth through speech (from the sampled frames), and a
/// mouth moving out of step with the voice (from the glimpses), unless a frozen or replayed
/// picture explains the mouth — that picture is the finding. A closed mouth whose glimpses
/// follow the voice is kept out; an out-of-step span mostly covered by a closed one is that one,
/// and one mostly in the dark is not judged (the mouth's contrast falls with the light, as
/// `low_light` reports).
fn lip_events(a: &Analysis, video: &[VideoFinding], opts: &ScoreOptions) -> Vec<Event> {
    let (audio, p) = (&a.audio_summary, &opts.lipsync);
    let speaking = |t: Pts| {
        let s = (t.0.saturating_sub(audio.start.0) / 1_000_000_000) as usize;
        audio.per_second.get(s).is_some_and(|x| x.is_speech())
    };
    let covered = |(s, e): (Pts, Pts), (fs, fe): (Pts, Pts)| {
        2 * e.min(fe).0.saturating_sub(s.max(fs).0) >= e.0.saturating_sub(s.0)
    };
    let replayed = |span: (Pts, Pts)| {
        video.iter().any(|f| match f {
            VideoFinding::Freeze { start, end, .. } | VideoFinding::Loop { start, end, .. } => {
                covered(span, (*start, *end))
            }
        })
    };
    let trace = a.mouth_trace.points();
    // A mouth whose darkness follows the voice ten times a second is speaking, however little
    // it opens in the sampled frames.
    let speaks = |l: &lipsync::LipSyncFinding| {
        lipsync::trace_correlation(trace, loudness(audio), l.start, l.end)
            .is_some_and(|r| r >= p.sync_follows_corr)
    };
    let closed: Vec<_> = lipsync::detect(&a.face_samples, speaking, loudness(audio), p)
        .into_iter()
        .filter(|l| !replayed((l.start, l.end)) && !speaks(l))
        .collect();
    let unsynced: Vec<_> = lipsync::detect_unsynced(trace, speaking, loudness(audio), p)
        .into_iter()
        .filter(|u| {
            let span = (u.start, u.end);
            !replayed(span)
                && lit(&a.per_frame, span, opts.face.low_light_luma)
                && !closed.iter().any(|l| covered(span, (l.start, l.end)))
        })
        .collect();
    let mut events = scoring::lipsync_events(&closed, p);
    events.extend(scoring::unsynced_events(&unsynced, p));
    events
}

/// Whether the sampled frames in a span are mostly lit (their median mean luma at least
/// `low_light_luma`).
fn lit(per_frame: &[(Pts, f32, f32)], (start, end): (Pts, Pts), low_light_luma: f32) -> bool {
    let mut luma: Vec<f32> = per_frame
        .iter()
        .filter(|(t, _, _)| *t >= start && *t <= end)
        .map(|(_, _, l)| *l)
        .collect();
    luma.sort_by(f32::total_cmp);
    luma.get(luma.len() / 2)
        .is_some_and(|&l| l >= low_light_luma)
}

/// Speech loudness (100 ms RMS) at a time, for lip-sync.
fn loudness(a: &AudioSummary) -> impl Fn(Pts) -> Option<f32> + '_ {
    move |t: Pts| {
        let i = t.0.saturating_sub(a.start.0) / (ENVELOPE_HOP * 1_000_000_000 / AUDIO_RATE as u64);
        a.envelope.get(i as usize).copied()
    }
}

/// Audio chunks queued for the audio thread (GStreamer chunks are ≈ 20–100 ms).
const AUDIO_QUEUE: usize = 64;

/// Voice identity counts as checked only with at least this much speech.
const MIN_SPEECH_FOR_VOICE_S: f64 = 5.0;

/// SHA-256 (hex) and size of a file, read in 1 MiB blocks.
pub fn hash_file(path: &std::path::Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex::encode(h.finalize()), size))
}

fn report_id(media: &str, session: &SessionInfo, policy: &Policy, sampling: &Sampling) -> String {
    let mut h = Sha256::new();
    h.update(media.as_bytes());
    h.update(serde_json::to_vec(session).expect("session serialises"));
    h.update(policy.id.as_bytes());
    h.update(policy.version.as_bytes());
    h.update(policy.sha256.as_bytes());
    h.update(serde_json::to_vec(sampling).expect("sampling serialises"));
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    format!("vr_{}", &hex::encode(h.finalize())[..24])
}
