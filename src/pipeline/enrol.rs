//! Reference embeddings: the candidate's enrolled photo and voice.

use super::{PipelineError, ScoreOptions};
use crate::analysis::audio::AudioAnalyser;
use crate::analysis::face;
use crate::analysis::voice::{self, VoiceAnalyser};
use crate::ingest::{self, IngestConfig, Item, MediaInput, RunError};

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
