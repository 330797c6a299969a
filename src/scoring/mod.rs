//! From findings to a verdict: events with confidence and a plain-language reason, component
//! scores, the integrity score, risk tier and verification status.
//!
//! This is the built-in default policy (`vigil-default`). Its numbers are deliberately
//! conservative: a frozen or looping camera raises review, never rejection on its own, and
//! nothing is `verified` unless identity (face and voice) was actually checked.

use crate::analysis::face::FaceFinding;
use crate::analysis::lipsync::{LipSyncFinding, LipSyncParams};
use crate::analysis::spectral::{SpectralFinding, SpliceCue, SynthCue};
use crate::analysis::video::VideoFinding;
use crate::analysis::voice::{VoiceFinding, VoiceParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

mod outcome;
pub mod policy;

pub use outcome::{Components, Event, Score, round};
pub use policy::Policy;

/// Stable snake_case event identifiers (README.md § The report).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum EventKind {
    FaceAbsent,
    MultipleFaces,
    IdentityChange,
    ReferenceFaceMismatch,
    SpeakerChange,
    SecondSpeaker,
    ReferenceVoiceMismatch,
    SyntheticVoice,
    ReplaySuspected,
    AudioSplice,
    /// Speech-band sound in the candidate's pauses (e.g. whispered coaching).
    BackgroundVoice,
    VideoFreeze,
    VideoLoop,
    LipSyncMismatch,
    AudioDropout,
    Clipping,
    LowLight,
    NoAudio,
    NoVideo,
    /// A stream's timestamps jump forward (or pass the duration limit): the recording is broken
    /// or manipulated, and nothing after the jump was analysed.
    TimestampJump,
    /// Part of the file could not be decoded (the demuxer skipped it): only the part before it
    /// was analysed.
    UndecodableMedia,
}

impl EventKind {
    /// The snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Every kind, in declaration order (a policy must give each one a rule, except the
    /// [`EventKind::MEDIA_FAULTS`], which have a fixed one).
    pub const ALL: [EventKind; 21] = [
        EventKind::FaceAbsent,
        EventKind::MultipleFaces,
        EventKind::IdentityChange,
        EventKind::ReferenceFaceMismatch,
        EventKind::SpeakerChange,
        EventKind::SecondSpeaker,
        EventKind::ReferenceVoiceMismatch,
        EventKind::SyntheticVoice,
        EventKind::ReplaySuspected,
        EventKind::AudioSplice,
        EventKind::BackgroundVoice,
        EventKind::VideoFreeze,
        EventKind::VideoLoop,
        EventKind::LipSyncMismatch,
        EventKind::AudioDropout,
        EventKind::Clipping,
        EventKind::LowLight,
        EventKind::NoAudio,
        EventKind::NoVideo,
        EventKind::TimestampJump,
        EventKind::UndecodableMedia,
    ];

    /// Faults of the media itself, added after policies were first published: a policy file
    /// need not name them (they are quality kinds: weight 0, never blocking) and they always
    /// make the session `needs_review` — what was not decoded was not looked at.
    pub const MEDIA_FAULTS: [EventKind; 2] =
        [EventKind::TimestampJump, EventKind::UndecodableMedia];

    /// Quality kinds lower confidence in the analysis, not integrity.
    pub fn is_quality(self) -> bool {
        matches!(
            self,
            EventKind::AudioDropout
                | EventKind::Clipping
                | EventKind::LowLight
                | EventKind::NoAudio
                | EventKind::NoVideo
                | EventKind::TimestampJump
                | EventKind::UndecodableMedia
        )
    }

    /// Spectral cues: calibrated but weak evidence (they generalise poorly to real-world audio),
    /// so they raise a review and never reject a candidate on their own.
    pub fn is_spectral(self) -> bool {
        matches!(
            self,
            EventKind::SyntheticVoice
                | EventKind::ReplaySuspected
                | EventKind::AudioSplice
                | EventKind::BackgroundVoice
        )
    }
}

/// The analyser (and report component score) an integrity event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Face,
    Voice,
    Audio,
    Video,
}

impl EventKind {
    /// Which component score the event lowers; `None` for quality kinds.
    pub fn component(self) -> Option<Component> {
        use EventKind::*;
        match self {
            FaceAbsent | MultipleFaces | IdentityChange | ReferenceFaceMismatch => {
                Some(Component::Face)
            }
            SpeakerChange | SecondSpeaker | ReferenceVoiceMismatch | LipSyncMismatch => {
                Some(Component::Voice)
            }
            SyntheticVoice | ReplaySuspected | AudioSplice | BackgroundVoice => {
                Some(Component::Audio)
            }
            VideoFreeze | VideoLoop => Some(Component::Video),
            AudioDropout | Clipping | LowLight | NoAudio | NoVideo | TimestampJump
            | UndecodableMedia => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RiskTier {
    Low,
    Medium,
    High,
}

impl RiskTier {
    /// The snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum VerificationStatus {
    Verified,
    NeedsReview,
    Rejected,
}

impl VerificationStatus {
    /// The snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An event over [s, e] seconds with its evidence (keys sorted) and reason.
fn span_event<const N: usize>(
    kind: EventKind,
    (s, e): (f64, f64),
    confidence: f64,
    evidence: [(&str, serde_json::Value); N],
    reason: String,
) -> Event {
    Event {
        kind,
        start_s: round(s, 3),
        end_s: round(e, 3),
        confidence,
        evidence: evidence
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        reason,
    }
}

fn fmt_s(s: f64) -> String {
    format!("{} s", round(s, 1))
}

/// Turns the video analyser's findings into events.
pub fn video_events(findings: &[VideoFinding]) -> Vec<Event> {
    findings
        .iter()
        .map(|f| match *f {
            VideoFinding::Freeze {
                start,
                end,
                frames,
                max_mad,
                median_mad,
                session_mad,
                max_thumb_mad,
            } => {
                let (s, e) = (start.as_secs_f64(), end.as_secs_f64());
                let dur = e - s;
                // Longer and more exactly repeated pictures are stronger evidence.
                let exact = if max_mad < 0.05 { 1.0 } else { 0.85 };
                let confidence = round(((0.5 + dur / 30.0).min(0.95)) * exact, 3);
                span_event(
                    EventKind::VideoFreeze,
                    (s, e),
                    confidence,
                    [
                        ("frames", json!(frames)),
                        ("max_mean_abs_diff", json!(round(max_mad as f64, 3))),
                        ("median_mean_abs_diff", json!(round(median_mad as f64, 3))),
                        ("session_mean_abs_diff", json!(round(session_mad as f64, 3))),
                        ("max_thumbnail_change", json!(round(max_thumb_mad as f64, 3))),
                        ("duration_s", json!(round(dur, 3))),
                    ],
                    format!(
                        "The camera picture did not change from {} to {} ({} consecutive sampled frames show the same still picture; it changed by {:.1} grey levels a frame where live video here changes by {:.1}): a frozen feed or a still image.",
                        fmt_s(s),
                        fmt_s(e),
                        frames,
                        median_mad,
                        session_mad
                    ),
                )
            }
            VideoFinding::Loop {
                start,
                end,
                source_start,
                frames,
                mean_mad,
            } => {
                let (s, e, src) = (start.as_secs_f64(), end.as_secs_f64(), source_start.as_secs_f64());
                let confidence = round((0.6 + (e - s) / 40.0).min(0.9), 3);
                span_event(
                    EventKind::VideoLoop,
                    (s, e),
                    confidence,
                    [
                        ("frames", json!(frames)),
                        ("repeats_from_s", json!(round(src, 3))),
                        ("mean_thumbnail_abs_diff", json!(round(mean_mad as f64, 3))),
                    ],
                    format!(
                        "The video from {} to {} repeats, frame for frame, what was shown from {}: the camera feed may be a replayed recording.",
                        fmt_s(s),
                        fmt_s(e),
                        fmt_s(src)
                    ),
                )
            }
        })
        .collect()
}

/// Turns the face analyser's findings into events.
pub fn face_events(findings: &[FaceFinding]) -> Vec<Event> {
    findings
        .iter()
        .map(|f| match *f {
            FaceFinding::Absent { start, end, frames } => {
                let (s, e) = (start.as_secs_f64(), end.as_secs_f64());
                span_event(
                    EventKind::FaceAbsent,
                    (s, e),
                    round((0.6 + (e - s) / 60.0).min(0.95), 3),
                    [("frames", json!(frames))],
                    format!(
                        "No face was on camera from {} to {} ({frames} sampled frames).",
                        fmt_s(s),
                        fmt_s(e)
                    ),
                )
            }
            FaceFinding::Multiple {
                start,
                end,
                frames,
                max_faces,
            } => {
                let (s, e) = (start.as_secs_f64(), end.as_secs_f64());
                span_event(
                    EventKind::MultipleFaces,
                    (s, e),
                    round((0.6 + (e - s) / 30.0).min(0.95), 3),
                    [
                        ("frames", json!(frames)),
                        ("max_faces", json!(max_faces)),
                    ],
                    format!(
                        "{max_faces} faces were on camera from {} to {}: someone else was in view.",
                        fmt_s(s),
                        fmt_s(e)
                    ),
                )
            }
            FaceFinding::IdentityChange {
                start,
                end,
                frames,
                mean_distance,
                before_distance,
            } => {
                let (s, e) = (start.as_secs_f64(), end.as_secs_f64());
                // dlib: different people are typically 0.7–0.9 apart; 0.6 is the decision line.
                let confidence = round((0.5 + (mean_distance as f64 - 0.6) * 2.0).clamp(0.5, 0.97), 3);
                span_event(
                    EventKind::IdentityChange,
                    (s, e),
                    confidence,
                    [
                        ("frames", json!(frames)),
                        ("mean_distance", json!(round(mean_distance as f64, 3))),
                        ("distance_before", json!(round(before_distance as f64, 3))),
                        ("same_person_below", json!(0.6)),
                    ],
                    format!(
                        "A different person appears on camera from {} to {}; the face's distance to the enrolled face rose from {:.2} to {:.2} (same person is below 0.60).",
                        fmt_s(s),
                        fmt_s(e),
                        before_distance,
                        mean_distance
                    ),
                )
            }
            FaceFinding::ReferenceMismatch {
                start,
                end,
                frames,
                median_distance,
            } => {
                let (s, e) = (start.as_secs_f64(), end.as_secs_f64());
                span_event(
                    EventKind::ReferenceFaceMismatch,
                    (s, e),
                    round((0.5 + (median_distance as f64 - 0.6) * 2.0).clamp(0.5, 0.97), 3),
                    [
                        ("frames", json!(frames)),
                        ("median_distance", json!(round(median_distance as f64, 3))),
                        ("same_person_below", json!(0.6)),
                    ],
                    format!(
                        "The person on camera does not match the reference photo (median face distance {median_distance:.2}; same person is below 0.60)."
                    ),
                )
            }
            FaceFinding::LowLight {
                start,
                end,
                frames,
                mean_luma,
            } => {
                let (s, e) = (start.as_secs_f64(), end.as_secs_f64());
                span_event(
                    EventKind::LowLight,
                    (s, e),
                    1.0,
                    [
                        ("frames", json!(frames)),
                        ("mean_luma", json!(round(mean_luma as f64, 1))),
                    ],
                    format!(
                        "The picture was too dark from {} to {} (mean brightness {mean_luma:.0}/255): face checks there are less reliable.",
                        fmt_s(s),
                        fmt_s(e)
                    ),
                )
            }
        })
        .collect()
}

/// Turns the voice analyser's findings into events. Confidence grows with how far below the
/// same-voice threshold the similarity is and with the duration.
pub fn voice_events(findings: &[VoiceFinding], params: &VoiceParams) -> Vec<Event> {
    let thr = params.same_voice as f64;
    let conf = |sim: f32, dur: f64| {
        let margin = ((thr - sim as f64) / 0.3).clamp(0.0, 1.0);
        round((0.45 + 0.35 * margin + (dur / 60.0).min(0.15)).min(0.95), 3)
    };
    findings
        .iter()
        .map(|f| match *f {
            VoiceFinding::SpeakerChange {
                start,
                end,
                windows,
                mean_similarity,
            } => {
                let (s, e) = (start.as_secs_f64(), end.as_secs_f64());
                span_event(
                    EventKind::SpeakerChange,
                    (s, e),
                    conf(mean_similarity, e - s),
                    [
                        ("windows", json!(windows)),
                        ("mean_similarity", json!(round(mean_similarity as f64, 3))),
                        ("same_voice_above", json!(round(thr, 3))),
                    ],
                    format!(
                        "A different voice speaks from {} to the end ({}); its similarity to the candidate's enrolled voice is {:.2} (same voice is above {:.2}).",
                        fmt_s(s),
                        fmt_s(e),
                        mean_similarity,
                        thr
                    ),
                )
            }
            VoiceFinding::SecondSpeaker {
                start,
                end,
                runs,
                windows,
                mean_similarity,
                split_gap,
            } => {
                let (s, e) = (start.as_secs_f64(), end.as_secs_f64());
                span_event(
                    EventKind::SecondSpeaker,
                    (s, e),
                    conf(mean_similarity, (windows as f64) * 0.77),
                    [
                        ("runs", json!(runs)),
                        ("windows", json!(windows)),
                        ("mean_similarity", json!(round(mean_similarity as f64, 3))),
                        ("same_voice_above", json!(round(thr, 3))),
                        // Two-voice split of the speech segments (cosine 2-means): how much more
                        // alike each cluster is to itself than to the other. Single speakers
                        // measured −0.03…0.13 on the labelled set (BENCHMARKS.md).
                        (
                            "segment_split_gap",
                            json!(split_gap.map(|g| round(g as f64, 3))),
                        ),
                    ],
                    format!(
                        "Another voice speaks in {runs} stretch(es) between {} and {}, alternating with the candidate's (similarity {:.2}).",
                        fmt_s(s),
                        fmt_s(e),
                        mean_similarity
                    ),
                )
            }
            VoiceFinding::ReferenceMismatch {
                start,
                end,
                windows,
                median_similarity,
            } => {
                let (s, e) = (start.as_secs_f64(), end.as_secs_f64());
                span_event(
                    EventKind::ReferenceVoiceMismatch,
                    (s, e),
                    conf(median_similarity, e - s),
                    [
                        ("windows", json!(windows)),
                        ("median_similarity", json!(round(median_similarity as f64, 3))),
                        ("same_voice_above", json!(round(thr, 3))),
                    ],
                    format!(
                        "The voice in the session does not match the reference recording (median similarity {median_similarity:.2}; same voice is above {thr:.2})."
                    ),
                )
            }
        })
        .collect()
}

/// Turns lip-sync findings into events.
pub fn lipsync_events(findings: &[LipSyncFinding], p: &LipSyncParams) -> Vec<Event> {
    findings
        .iter()
        .map(|f| {
            let (s, e) = (f.start.as_secs_f64(), f.end.as_secs_f64());
            span_event(
                EventKind::LipSyncMismatch,
                (s, e),
                round((0.5 + (e - s) / 40.0).min(0.9), 3),
                [
                    ("closed_mouth_frames", json!(f.frames)),
                    ("mouth_voice_correlation", json!(round(f.correlation as f64, 3))),
                    ("max_mouth_open", json!(round(f.max_mouth as f64, 3))),
                    ("closed_below", json!(round(p.closed_max as f64, 3))),
                    ("min_mouth_open", json!(round(f.min_mouth as f64, 3))),
                    ("still_within", json!(round(p.still_range as f64, 3))),
                ],
                format!(
                    "Someone is speaking from {} to {} while the candidate's mouth stays {} on camera ({} frames): the voice may not be the candidate's.",
                    fmt_s(s),
                    fmt_s(e),
                    if f.max_mouth < p.closed_max { "closed" } else { "still" },
                    f.frames
                ),
            )
        })
        .collect()
}

const WEAK: &str = "Spectral cues are weak evidence and only raise a review.";

/// Turns the spectral analyser's findings into events; `offset_s` is the first audio sample's
/// Confidence of a spectral (weak) cue: 0.3 to 0.6.
fn weak(x: f64) -> f64 {
    round(x.clamp(0.3, 0.6), 3)
}

fn r1(x: f32) -> serde_json::Value {
    json!(round(x as f64, 1))
}

fn r3(x: f32) -> serde_json::Value {
    json!(round(x as f64, 3))
}

/// The `synthetic_voice` event of a span, explained by the strongest cue that flagged it.
fn synthetic_event(
    span: (f64, f64),
    cue: SynthCue,
    high_band_harmonicity: f32,
    pitch_step_st: Option<f32>,
    silent_pause_ratio: f32,
    pitch_range_st: Option<f32>,
) -> Event {
    let (why, confidence, name) = match cue {
        SynthCue::HighBandHarmonicity => (
            format!(
                "its high frequencies are as regularly periodic as its pitch (harmonicity {high_band_harmonicity:.2} above 3 kHz; real voices are breathier there)"
            ),
            0.3 + (high_band_harmonicity as f64 - 0.4),
            "high_band_harmonicity",
        ),
        SynthCue::FlatPitch => (
            format!(
                "its melody is flat: the middle 80 % of its pitch spans {:.1} semitones over 30 s, where people talking move over 6 or more",
                pitch_range_st.unwrap_or(0.0)
            ),
            0.3 + (5.0 - pitch_range_st.unwrap_or(5.0) as f64).clamp(0.0, 5.0) * 0.06,
            "flat_pitch",
        ),
        SynthCue::SilentPauses => (
            format!(
                "its pauses are digital silence ({:.0} % of pause frames) with no breath or room noise, which a microphone always picks up",
                silent_pause_ratio * 100.0
            ),
            0.3 + silent_pause_ratio as f64 * 0.2,
            "silent_pauses",
        ),
    };
    let opt = |v: Option<f32>| v.map_or(serde_json::Value::Null, r3);
    span_event(
        EventKind::SyntheticVoice,
        span,
        weak(confidence),
        [
            ("cue", json!(name)),
            ("high_band_harmonicity", r3(high_band_harmonicity)),
            ("pitch_step_semitones", opt(pitch_step_st)),
            ("silent_pause_ratio", r3(silent_pause_ratio)),
            ("pitch_range_semitones", opt(pitch_range_st)),
        ],
        format!(
            "The voice from {} to {} has vocoder/TTS cues: {why}. {WEAK}",
            fmt_s(span.0),
            fmt_s(span.1),
        ),
    )
}

/// time. Confidence is capped at 0.6 for integrity kinds: spectral cues are weak evidence.
pub fn spectral_events(findings: &[SpectralFinding], offset_s: f64) -> Vec<Event> {
    findings
        .iter()
        .map(|f| {
            let (s, e) = f.span();
            let (s, e) = (s + offset_s, e + offset_s);
            match *f {
                SpectralFinding::Splice { cue, .. } => match cue {
                    SpliceCue::NoiseFloor {
                        before_dbfs,
                        after_dbfs,
                    } => {
                        let jump = (after_dbfs - before_dbfs).abs();
                        span_event(
                            EventKind::AudioSplice,
                            (s, e),
                            weak(0.3 + jump as f64 / 50.0),
                            [
                                ("cue", json!("noise_floor")),
                                ("noise_floor_before_dbfs", r1(before_dbfs)),
                                ("noise_floor_after_dbfs", r1(after_dbfs)),
                                ("jump_db", r1(jump)),
                            ],
                            format!(
                                "Possible splice at {}: the background noise level in the pauses jumps by {:.0} dB ({:.0} to {:.0} dBFS) and stays there, as when two recordings are joined. {WEAK}",
                                fmt_s(s),
                                jump,
                                before_dbfs,
                                after_dbfs
                            ),
                        )
                    }
                    SpliceCue::Envelope { distance_db } => span_event(
                        EventKind::AudioSplice,
                        (s, e),
                        weak(0.3 + distance_db as f64 / 40.0),
                        [
                            ("cue", json!("noise_spectrum")),
                            ("spectral_shape_change_db", r1(distance_db)),
                        ],
                        format!(
                            "Possible splice at {}: the colour of the background noise in the pauses changes abruptly ({:.0} dB across frequency bands) and stays changed. {WEAK}",
                            fmt_s(s),
                            distance_db
                        ),
                    ),
                    SpliceCue::HumPhase { mains_hz, jump_deg } => span_event(
                        EventKind::AudioSplice,
                        (s, e),
                        weak(0.3 + jump_deg.abs() as f64 / 360.0),
                        [
                            ("cue", json!("mains_hum_phase")),
                            ("mains_hz", r1(mains_hz)),
                            ("phase_jump_deg", r1(jump_deg)),
                        ],
                        format!(
                            "Possible splice at {}: the {:.0} Hz mains hum in the recording jumps in phase by {:.0}°, which a continuous recording does not do. {WEAK}",
                            fmt_s(s),
                            mains_hz,
                            jump_deg.abs()
                        ),
                    ),
                },
                SpectralFinding::Replay {
                    bass_db,
                    decay_db,
                    rolloff_hz,
                    ..
                } => span_event(
                    EventKind::ReplaySuspected,
                    (s, e),
                    weak(0.35 + (-bass_db as f64 - 20.0) / 40.0),
                    [
                        ("bass_vs_low_mid_db", r1(bass_db)),
                        ("fastest_decay_db_per_100ms", r1(decay_db)),
                        ("speech_rolloff_hz", json!(round(rolloff_hz as f64, 0))),
                    ],
                    format!(
                        "The voice from {} to {} sounds played through a loudspeaker into a room: almost no bass ({:.0} dB below the low mids) and sound that dies away slowly (at most {:.0} dB per 100 ms). {WEAK}",
                        fmt_s(s),
                        fmt_s(e),
                        -bass_db,
                        decay_db
                    ),
                ),
                SpectralFinding::Synthetic {
                    cue,
                    high_band_harmonicity,
                    pitch_step_st,
                    silent_pause_ratio,
                    pitch_range_st,
                    ..
                } => synthetic_event(
                    (s, e),
                    cue,
                    high_band_harmonicity,
                    pitch_step_st,
                    silent_pause_ratio,
                    pitch_range_st,
                ),
                SpectralFinding::BackgroundVoice {
                    excess_db, seconds, ..
                } => span_event(
                    EventKind::BackgroundVoice,
                    (s, e),
                    weak(0.3 + seconds as f64 / 30.0),
                    [
                        ("speech_band_excess_db", r1(excess_db)),
                        ("seconds", json!(seconds)),
                    ],
                    format!(
                        "Between {} and {}, while the candidate pauses, there is quiet speech-band sound {:.0} dB above the room's background in {} second(s): possibly someone else speaking or whispering. {WEAK}",
                        fmt_s(s),
                        fmt_s(e),
                        excess_db,
                        seconds
                    ),
                ),
                SpectralFinding::Clipping { samples, .. } => span_event(
                    EventKind::Clipping,
                    (s, e),
                    1.0,
                    [("clipped_samples", json!(samples))],
                    format!(
                        "The audio is clipped (too loud for the recording level) from {} to {} ({samples} flat-topped samples): voice and spectral checks there are less reliable.",
                        fmt_s(s),
                        fmt_s(e)
                    ),
                ),
                SpectralFinding::Dropout {
                    gaps, longest_s, ..
                } => span_event(
                    EventKind::AudioDropout,
                    (s, e),
                    1.0,
                    [
                        ("gaps", json!(gaps)),
                        ("longest_gap_s", json!(round(longest_s, 3))),
                    ],
                    format!(
                        "The audio drops out {gaps} time(s) between {} and {} (longest gap {:.2} s of digital silence cut into sound): a network or device problem; checks there are less reliable.",
                        fmt_s(s),
                        fmt_s(e),
                        longest_s
                    ),
                ),
            }
        })
        .collect()
}

/// A quality event that spans the whole session.
pub fn missing_stream_event(kind: EventKind, duration_s: f64) -> Event {
    let what = if kind == EventKind::NoVideo {
        "video"
    } else {
        "audio"
    };
    Event {
        kind,
        start_s: 0.0,
        end_s: round(duration_s, 3),
        confidence: 1.0,
        evidence: BTreeMap::new(),
        reason: format!("The recording has no {what} stream, so the {what} checks could not run."),
    }
}

/// A file is reported as partly undecodable when at least this share of its bytes (and at least
/// [`UNDECODED_MIN_BYTES`]) never reached a decoder. Container overhead measured 0.3–5.1 % on
/// the test recordings and corpus samples (WebM, Matroska, MP4, Ogg; the most for a small
/// low-bitrate MP4); a file that turns to garbage halfway leaves about half.
pub const UNDECODED_MIN_SHARE: f64 = 0.10;
pub const UNDECODED_MIN_BYTES: u64 = 64 * 1024;

/// Events for faults of the media itself: streams cut at a timestamp jump or at the duration
/// limit (one event per reason), and a file whose bytes largely never reached a decoder.
/// `bytes` is (file size, bytes the demuxer handed to decoders) when both are known.
pub fn media_fault_events(
    cuts: &[crate::ingest::Cut],
    bytes: Option<(u64, u64)>,
    analysed_s: f64,
) -> Vec<Event> {
    use crate::ingest::{CutReason, StreamKind};
    let mut events = Vec::new();
    for reason in [CutReason::TimestampJump, CutReason::DurationLimit] {
        let of: Vec<_> = cuts.iter().filter(|c| c.reason == reason).collect();
        let (Some(at), Some(claimed)) = (
            of.iter().map(|c| c.at).min(),
            of.iter().map(|c| c.claimed).max(),
        ) else {
            continue;
        };
        let streams: Vec<&str> = of
            .iter()
            .map(|c| match c.stream {
                StreamKind::Video => "video",
                StreamKind::Audio => "audio",
            })
            .collect();
        let (at_s, claimed_s) = (round(at.as_secs_f64(), 3), round(claimed.as_secs_f64(), 3));
        let why = match reason {
            CutReason::TimestampJump => format!(
                "its {} timestamps jump from {at_s:.1} s to {claimed_s:.1} s.",
                streams.join(" and ")
            ),
            CutReason::DurationLimit => format!(
                "its {} timestamps pass the duration limit (next at {claimed_s:.1} s).",
                streams.join(" and ")
            ),
        };
        events.push(Event {
            kind: EventKind::TimestampJump,
            start_s: at_s,
            end_s: at_s,
            confidence: 1.0,
            evidence: BTreeMap::from([
                ("claimed_s".into(), claimed_s.into()),
                ("streams".into(), streams.into()),
                (
                    "cut".into(),
                    match reason {
                        CutReason::TimestampJump => "timestamp_jump",
                        CutReason::DurationLimit => "duration_limit",
                    }
                    .into(),
                ),
            ]),
            reason: format!("The recording stops being analysable at {at_s:.1} s: {why}"),
        });
    }
    if let Some((size, decoded)) = bytes {
        let undecoded = size.saturating_sub(decoded);
        let share = undecoded as f64 / size.max(1) as f64;
        if undecoded >= UNDECODED_MIN_BYTES && share >= UNDECODED_MIN_SHARE {
            let end = round(analysed_s, 3);
            events.push(Event {
                kind: EventKind::UndecodableMedia,
                start_s: end,
                end_s: end,
                confidence: 1.0,
                evidence: BTreeMap::from([
                    ("file_bytes".into(), size.into()),
                    ("decoded_bytes".into(), decoded.into()),
                    ("undecoded_share".into(), round(share, 3).into()),
                ]),
                reason: format!(
                    "{:.0} % of the file ({undecoded} of {size} bytes) could not be decoded; the {end:.1} s before it were analysed.",
                    100.0 * share
                ),
            });
        }
    }
    events
}

/// What the analysers could see, for the evidence-sufficiency rules.
#[derive(Debug, Clone, Default)]
pub struct Sufficiency {
    pub has_video: bool,
    pub has_audio: bool,
    /// The spectral analyser scanned the audio.
    pub audio_checked: bool,
    pub face_checked: bool,
    pub voice_checked: bool,
    /// Session length, for the share of it quality events make unusable.
    pub duration_s: f64,
    /// Video frames analysed (`None`: not counted), for the coverage rule.
    pub frames_analysed: Option<u64>,
}

/// Fewer analysed frames than this per minute of a session with video (over at least a minute)
/// is too little to vouch for the face: one every 15 s, below any keyframe interval a meeting
/// recorder uses.
pub const MIN_FRAMES_PER_MINUTE: f64 = 4.0;

/// Aggregates admitted events ([`Policy::admit`]) into the score.
///
/// Properties (unit-tested): monotone — adding an integrity event never raises any score;
/// too little evidence (identity unchecked, mostly unusable media) is never `verified`; weak
/// spectral evidence never makes a candidate `rejected`; `rejected` needs a high tier and a
/// blocking event at or above the policy's confidence.
pub fn aggregate(policy: &Policy, events: &[Event], suff: &Sufficiency) -> Score {
    let comp_weight = |c: Option<Component>| match c {
        Some(Component::Face) => policy.components.face,
        Some(Component::Voice) => policy.components.voice,
        Some(Component::Audio) => policy.components.audio,
        Some(Component::Video) => policy.components.video,
        None => 0.0,
    };
    let cost = |pred: &dyn Fn(EventKind) -> bool, weighted: bool| -> f64 {
        events
            .iter()
            .filter(|e| !e.kind.is_quality() && pred(e.kind))
            .map(|e| {
                let w = if weighted {
                    comp_weight(e.kind.component())
                } else {
                    1.0
                };
                policy.weight(e.kind) * e.confidence * w
            })
            .sum()
    };
    let clamp = |x: f64| round(x.clamp(0.0, 100.0), 1);
    let component = |checked: bool, c: Component| {
        checked.then(|| clamp(100.0 - cost(&|k| k.component() == Some(c), false)))
    };
    let video = component(suff.has_video, Component::Video);
    let face = component(suff.face_checked, Component::Face);
    let voice = component(suff.voice_checked, Component::Voice);
    let audio = component(suff.audio_checked, Component::Audio);
    let integrity = clamp(100.0 - cost(&|_| true, true));
    let risk_tier = if integrity >= policy.low_tier_min {
        RiskTier::Low
    } else if integrity >= policy.medium_tier_min {
        RiskTier::Medium
    } else {
        RiskTier::High
    };
    let mut reasons = Vec::new();
    if !suff.has_video && policy.require_face {
        reasons.push("No video: the candidate's face could not be checked.".to_string());
    }
    if !suff.has_audio && policy.require_voice {
        reasons.push("No audio: the candidate's voice could not be checked.".to_string());
    }
    if suff.has_video && !suff.face_checked && policy.require_face {
        reasons.push(
            "Face identity could not be established: too few frames showed one clear face."
                .to_string(),
        );
    }
    if suff.has_audio && !suff.voice_checked && policy.require_voice {
        reasons.push(
            "Voice identity could not be established: too little speech (under 5 s).".to_string(),
        );
    }
    if let Some(frames) = suff.frames_analysed
        && suff.has_video
        && suff.duration_s >= 60.0
        && (frames as f64) < MIN_FRAMES_PER_MINUTE * suff.duration_s / 60.0
    {
        reasons.push(format!(
            "Only {frames} video frames were analysed over {:.1} minutes (fewer than {MIN_FRAMES_PER_MINUTE} a minute): too little was looked at to vouch for the session.",
            suff.duration_s / 60.0
        ));
    }
    let unusable: f64 = events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::AudioDropout | EventKind::Clipping | EventKind::LowLight
            )
        })
        .map(|e| (e.end_s - e.start_s).max(0.0))
        .sum();
    if suff.duration_s > 0.0 && unusable / suff.duration_s > policy.max_unusable_ratio {
        reasons.push(format!(
            "Most of the session is hard to analyse (dropouts, clipping or darkness over {:.0} % of it).",
            100.0 * (unusable / suff.duration_s).min(1.0)
        ));
    }
    for e in events
        .iter()
        .filter(|e| EventKind::MEDIA_FAULTS.contains(&e.kind))
    {
        reasons.push(format!(
            "The recording is broken or manipulated ({} at {:.1} s): only what was decoded was analysed.",
            e.kind.as_str(),
            e.start_s
        ));
    }
    let flagged = events.iter().filter(|e| !e.kind.is_quality()).count();
    if flagged > 0 {
        reasons.push(format!(
            "{flagged} integrity event(s) need a person to look at the evidence."
        ));
    }
    if events.iter().any(|e| e.kind.is_spectral()) {
        reasons.push(
            "Spectral audio cues (splice, replay, synthetic or background voice) are weak evidence: they raise a review and never reject a candidate on their own."
                .to_string(),
        );
    }
    if risk_tier != RiskTier::Low {
        reasons.push(format!(
            "Integrity {integrity} is below the low-risk threshold {}.",
            policy.low_tier_min
        ));
    }
    let blocking: Vec<&Event> = events
        .iter()
        .filter(|e| {
            policy.rule(e.kind).can_block
                && !e.kind.is_spectral()
                && e.confidence >= policy.block_min_confidence
        })
        .collect();
    let verification_status = if risk_tier == RiskTier::High && !blocking.is_empty() {
        reasons.push(format!(
            "Rejected by policy {} {}: {} blocking event(s) at confidence ≥ {} with a high risk tier.",
            policy.id,
            policy.version,
            blocking.len(),
            policy.block_min_confidence
        ));
        VerificationStatus::Rejected
    } else if reasons.is_empty() {
        VerificationStatus::Verified
    } else {
        VerificationStatus::NeedsReview
    };
    Score {
        integrity,
        components: Components {
            face,
            voice,
            audio,
            video,
        },
        risk_tier,
        verification_status,
        status_reasons: reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::Pts;

    fn freeze(start: f64, end: f64) -> VideoFinding {
        VideoFinding::Freeze {
            start: Pts::from_secs_f64(start),
            end: Pts::from_secs_f64(end),
            frames: (end - start) as u64 + 1,
            max_mad: 0.0,
            median_mad: 0.0,
            session_mad: 5.0,
            max_thumb_mad: 0.0,
        }
    }

    #[test]
    fn adding_an_event_never_raises_the_score() {
        let p = Policy::default();
        let s = Sufficiency {
            has_video: true,
            has_audio: true,
            audio_checked: true,
            face_checked: true,
            voice_checked: true,
            duration_s: 0.0,
            frames_analysed: None,
        };
        let mut findings = Vec::new();
        let mut last = aggregate(&p, &video_events(&findings), &s).integrity;
        assert_eq!(last, 100.0);
        for i in 0..6 {
            findings.push(freeze(i as f64 * 20.0, i as f64 * 20.0 + 8.0));
            let now = aggregate(&p, &video_events(&findings), &s).integrity;
            assert!(now <= last, "{now} > {last}");
            last = now;
        }
        assert!(last < 50.0);
    }

    #[test]
    fn too_few_frames_per_minute_is_never_verified() {
        let p = Policy::default();
        let sparse = Sufficiency {
            frames_analysed: Some(6),
            ..all_checked()
        };
        let score = aggregate(&p, &[], &sparse);
        assert_eq!(score.verification_status, VerificationStatus::NeedsReview);
        assert!(
            score.status_reasons[0].contains("Only 6 video frames"),
            "{:?}",
            score.status_reasons
        );
        let enough = Sufficiency {
            frames_analysed: Some(40),
            ..all_checked()
        };
        assert_eq!(
            aggregate(&p, &[], &enough).verification_status,
            VerificationStatus::Verified
        );
    }

    #[test]
    fn unchecked_identity_is_never_verified() {
        let p = Policy::default();
        let s = Sufficiency {
            has_video: true,
            has_audio: true,
            audio_checked: true,
            face_checked: false,
            voice_checked: false,
            duration_s: 0.0,
            frames_analysed: None,
        };
        let score = aggregate(&p, &[], &s);
        assert_eq!(score.integrity, 100.0);
        assert_eq!(score.verification_status, VerificationStatus::NeedsReview);
        let none = aggregate(&p, &[], &Sufficiency::default());
        assert_eq!(none.verification_status, VerificationStatus::NeedsReview);
    }

    #[test]
    fn spectral_events_alone_raise_a_review_and_never_reject() {
        let p = Policy::default();
        let s = Sufficiency {
            has_video: true,
            has_audio: true,
            audio_checked: true,
            face_checked: true,
            voice_checked: true,
            duration_s: 0.0,
            frames_analysed: None,
        };
        let findings: Vec<SpectralFinding> = (0..12)
            .map(|i| SpectralFinding::Splice {
                at_s: i as f64 * 10.0,
                cue: SpliceCue::NoiseFloor {
                    before_dbfs: -70.0,
                    after_dbfs: -30.0,
                },
            })
            .collect();
        let events = spectral_events(&findings, 0.0);
        assert!(events.iter().all(|e| e.confidence <= 0.6));
        assert!(events.iter().all(|e| e.reason.contains("weak evidence")));
        let score = aggregate(&p, &events, &s);
        assert_eq!(score.verification_status, VerificationStatus::NeedsReview);
        assert!(score.components.audio.unwrap() < 100.0);
        assert!(
            score
                .status_reasons
                .iter()
                .any(|r| r.contains("never reject"))
        );
        let one = aggregate(&p, &events[..1], &s);
        assert_eq!(one.risk_tier, RiskTier::Low);
        assert_eq!(one.verification_status, VerificationStatus::NeedsReview);
    }

    #[test]
    fn event_kinds_serialise_as_snake_case() {
        assert_eq!(
            serde_json::to_string(&EventKind::VideoFreeze).unwrap(),
            "\"video_freeze\""
        );
        assert_eq!(
            serde_json::to_string(&EventKind::NoAudio).unwrap(),
            "\"no_audio\""
        );
    }

    fn ev(kind: EventKind, s: f64, e: f64, confidence: f64) -> Event {
        span_event(kind, (s, e), confidence, [], String::new())
    }

    fn all_checked() -> Sufficiency {
        Sufficiency {
            has_video: true,
            has_audio: true,
            audio_checked: true,
            face_checked: true,
            voice_checked: true,
            duration_s: 600.0,
            frames_analysed: None,
        }
    }

    /// Adding any event, of any kind and confidence, never raises the integrity or any
    /// component score (deterministic pseudo-random sequences over every kind).
    #[test]
    fn monotone_over_random_event_sequences() {
        let p = Policy::default();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let mut events = Vec::new();
            let mut last = aggregate(&p, &events, &all_checked());
            for _ in 0..12 {
                let kind = EventKind::ALL[(next() % EventKind::ALL.len() as u64) as usize];
                let start = (next() % 500) as f64;
                let conf = (next() % 1000) as f64 / 1000.0;
                events.push(ev(kind, start, start + 10.0, conf));
                let now = aggregate(&p, &events, &all_checked());
                assert!(now.integrity <= last.integrity);
                let c = |s: &Score| {
                    [
                        s.components.face,
                        s.components.voice,
                        s.components.audio,
                        s.components.video,
                    ]
                };
                for (a, b) in c(&now).iter().zip(c(&last)) {
                    assert!(a.unwrap() <= b.unwrap());
                }
                last = now;
            }
        }
    }

    fn strict_policy() -> Policy {
        let text = policy::DEFAULT_POLICY.replace(
            "[events.identity_change]\nweight = 60\nmin_duration_s = 0\nmin_confidence = 0\ncan_block = false",
            "[events.identity_change]\nweight = 60\nmin_duration_s = 0\nmin_confidence = 0\ncan_block = true",
        );
        assert_ne!(text, policy::DEFAULT_POLICY);
        Policy::parse(&text, "strict").unwrap()
    }

    #[test]
    fn rejection_needs_a_blocking_kind_high_tier_and_confidence() {
        let p = strict_policy();
        // Identity change at 0.95 plus a loop: high tier, blocking → rejected.
        let events = [
            ev(EventKind::IdentityChange, 30.0, 600.0, 0.95),
            ev(EventKind::VideoLoop, 100.0, 160.0, 0.9),
        ];
        let s = aggregate(&p, &events, &all_checked());
        assert_eq!(s.risk_tier, RiskTier::High);
        assert_eq!(s.verification_status, VerificationStatus::Rejected);
        assert!(
            s.status_reasons
                .last()
                .unwrap()
                .contains("Rejected by policy")
        );
        // Same with confidence under block_min_confidence: review, not rejection.
        let weaker = [
            ev(EventKind::IdentityChange, 30.0, 600.0, 0.85),
            ev(EventKind::VideoLoop, 100.0, 160.0, 0.9),
        ];
        let s = aggregate(&p, &weaker, &all_checked());
        assert_eq!(s.verification_status, VerificationStatus::NeedsReview);
        // The default policy blocks nothing.
        let s = aggregate(&Policy::default(), &events, &all_checked());
        assert_eq!(s.verification_status, VerificationStatus::NeedsReview);
    }

    #[test]
    fn weak_spectral_evidence_never_rejects_even_at_full_confidence() {
        let p = strict_policy();
        let events: Vec<Event> = (0..10)
            .flat_map(|i| {
                let t = i as f64 * 30.0;
                [
                    ev(EventKind::SyntheticVoice, t, t + 20.0, 1.0),
                    ev(EventKind::ReplaySuspected, t, t + 20.0, 1.0),
                    ev(EventKind::AudioSplice, t, t + 1.0, 1.0),
                    ev(EventKind::BackgroundVoice, t, t + 20.0, 1.0),
                ]
            })
            .collect();
        let s = aggregate(&p, &events, &all_checked());
        assert_eq!(s.risk_tier, RiskTier::High);
        assert_eq!(s.verification_status, VerificationStatus::NeedsReview);
    }

    #[test]
    fn mostly_unusable_media_is_never_verified() {
        let p = Policy::default();
        let quality = [ev(EventKind::AudioDropout, 0.0, 400.0, 1.0)];
        let s = aggregate(&p, &quality, &all_checked());
        assert_eq!(s.integrity, 100.0, "quality kinds cost no integrity");
        assert_eq!(s.verification_status, VerificationStatus::NeedsReview);
        let s = aggregate(
            &p,
            &[ev(EventKind::AudioDropout, 0.0, 60.0, 1.0)],
            &all_checked(),
        );
        assert_eq!(s.verification_status, VerificationStatus::Verified);
    }

    #[test]
    fn policy_floors_drop_weak_or_short_events() {
        let text = policy::DEFAULT_POLICY.replace(
            "[events.video_freeze]\nweight = 25\nmin_duration_s = 0\nmin_confidence = 0",
            "[events.video_freeze]\nweight = 25\nmin_duration_s = 10\nmin_confidence = 0.5",
        );
        let p = Policy::parse(&text, "floors").unwrap();
        let kept = p.admit(vec![
            ev(EventKind::VideoFreeze, 0.0, 5.0, 0.9),
            ev(EventKind::VideoFreeze, 10.0, 30.0, 0.3),
            ev(EventKind::VideoFreeze, 40.0, 60.0, 0.9),
            ev(EventKind::NoAudio, 0.0, 60.0, 1.0),
        ]);
        let spans: Vec<(f64, f64)> = kept.iter().map(|e| (e.start_s, e.end_s)).collect();
        assert_eq!(spans, [(40.0, 60.0), (0.0, 60.0)]);
    }
}
