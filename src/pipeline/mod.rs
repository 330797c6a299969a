//! `vigil score`'s engine: ingest → analysers on a rayon pool → scoring → report payload.
//!
//! [`analyse`] (analyse.rs) decodes the media and feeds the analysers: sampled frames are batched
//! across the rayon pool for the face models and reduced in frame order together with the
//! glimpses between them, while the audio analyser (a sequential recurrent VAD, then the voice
//! encoder) runs on its own thread behind a bounded channel. Results are keyed by timestamp, so
//! the payload does not depend on the thread count. [`assemble`] (assemble.rs) turns the
//! [`Analysis`] into the report — events, score, coverage and the per-second timeline
//! (timeline.rs) — and can run again under another policy. enrol.rs embeds reference photos and
//! voices.

mod analyse;
mod assemble;
mod enrol;
mod timeline;

pub use analyse::analyse;
pub use assemble::assemble;
pub use enrol::{reference_embedding, reference_voice_embedding};

use crate::analysis::audio::{AudioSummary, ENVELOPE_HOP, VadParams};
use crate::analysis::face::{self, FaceParams, FaceSample};
use crate::analysis::lipsync::{LipSyncParams, MouthTrace};
use crate::analysis::spectral::SpectralParams;
use crate::analysis::video::{VideoFinding, VideoParams};
use crate::analysis::voice::VoiceParams;
use crate::inference::InferenceError;
use crate::ingest::{self, IngestConfig, IngestError, MediaInput};
use crate::media::{AUDIO_RATE, Pts};
use crate::report::{Report, SessionInfo};
use crate::scoring::Policy;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Inference(#[from] InferenceError),
    /// Reading the media to hash it failed (the cause is kept: a vanished file, an I/O error).
    #[error("{input}: {source}")]
    Hash {
        input: String,
        #[source]
        source: std::io::Error,
    },
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

/// Speech loudness (100 ms RMS) at a time, for lip-sync.
fn loudness(a: &AudioSummary) -> impl Fn(Pts) -> Option<f32> + '_ {
    move |t: Pts| {
        let i = t.0.saturating_sub(a.start.0) / (ENVELOPE_HOP * 1_000_000_000 / AUDIO_RATE as u64);
        a.envelope.get(i as usize).copied()
    }
}

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
