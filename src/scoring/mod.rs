//! From findings to a verdict: events with confidence and a plain-language reason, component
//! scores, the integrity score, risk tier and verification status.
//!
//! This is the built-in default policy (`vigil-default`). Its numbers are deliberately
//! conservative: a frozen or looping camera raises review, never rejection on its own, and
//! nothing is `verified` unless identity (face and voice) was actually checked.
//!
//! Files: this one holds the event kinds and the aggregation into a score; `video.rs` turns
//! camera-side findings into events, `audio.rs` voice and spectral ones, `media.rs` missing or
//! undecodable media; `outcome.rs` the score's types; `policy.rs` the policy file.

use crate::analysis::face::FaceFinding;
use crate::analysis::lipsync::{LipSyncFinding, LipSyncParams, UnsyncedFinding};
use crate::analysis::spectral::{SpectralFinding, SpliceCue, SynthCue};
use crate::analysis::video::VideoFinding;
use crate::analysis::voice::{VoiceFinding, VoiceParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

mod audio;
mod media;
mod outcome;
pub mod policy;
mod video;

pub use audio::{spectral_events, voice_events};
pub use media::{
    UNDECODED_MIN_BYTES, UNDECODED_MIN_SHARE, media_fault_events, missing_stream_event,
};
pub use outcome::{Components, Event, Score, round};
pub use policy::Policy;
pub use video::{face_events, lipsync_events, unsynced_events, video_events};

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
fn span_event<'a>(
    kind: EventKind,
    (s, e): (f64, f64),
    confidence: f64,
    evidence: impl IntoIterator<Item = (&'a str, serde_json::Value)>,
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
    let clamp = |x: f64| round(x.clamp(0.0, 100.0), 1);
    let component =
        |checked: bool, c: Component| checked.then(|| clamp(100.0 - cost(policy, events, Some(c))));
    let integrity = clamp(100.0 - cost(policy, events, None));
    let risk_tier = if integrity >= policy.low_tier_min {
        RiskTier::Low
    } else if integrity >= policy.medium_tier_min {
        RiskTier::Medium
    } else {
        RiskTier::High
    };
    let mut reasons = evidence_reasons(policy, suff);
    reasons.extend(event_reasons(policy, events, suff));
    if risk_tier != RiskTier::Low {
        reasons.push(format!(
            "Integrity {integrity} is below the low-risk threshold {}.",
            policy.low_tier_min
        ));
    }
    let verification_status = status(policy, events, risk_tier, &mut reasons);
    Score {
        integrity,
        components: Components {
            face: component(suff.face_checked, Component::Face),
            voice: component(suff.voice_checked, Component::Voice),
            audio: component(suff.audio_checked, Component::Audio),
            video: component(suff.has_video, Component::Video),
        },
        risk_tier,
        verification_status,
        status_reasons: reasons,
    }
}

/// Points the integrity events take off: from one component's score (`Some`, unweighted), or
/// from the integrity score (`None`: every event, weighted by its component's share).
fn cost(policy: &Policy, events: &[Event], only: Option<Component>) -> f64 {
    let comp_weight = |c: Option<Component>| match c {
        Some(Component::Face) => policy.components.face,
        Some(Component::Voice) => policy.components.voice,
        Some(Component::Audio) => policy.components.audio,
        Some(Component::Video) => policy.components.video,
        None => 0.0,
    };
    events
        .iter()
        .filter(|e| !e.kind.is_quality() && (only.is_none() || e.kind.component() == only))
        .map(|e| {
            let w = match only {
                Some(_) => 1.0,
                None => comp_weight(e.kind.component()),
            };
            policy.weight(e.kind) * e.confidence * w
        })
        .sum()
}

/// Why the evidence is too thin to vouch for the session: a missing stream, an identity that
/// could not be established, too few frames looked at.
fn evidence_reasons(policy: &Policy, suff: &Sufficiency) -> Vec<String> {
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
    reasons
}

/// What the events say needs a person: unusable media, a broken recording, integrity events,
/// weak spectral cues.
fn event_reasons(policy: &Policy, events: &[Event], suff: &Sufficiency) -> Vec<String> {
    let mut reasons = Vec::new();
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
    reasons
}

/// `rejected` (high tier and a blocking event at the policy's confidence; its reason added),
/// `verified` when nothing needs a person, `needs_review` otherwise.
fn status(
    policy: &Policy,
    events: &[Event],
    risk_tier: RiskTier,
    reasons: &mut Vec<String>,
) -> VerificationStatus {
    let blocking = events
        .iter()
        .filter(|e| {
            policy.rule(e.kind).can_block
                && !e.kind.is_spectral()
                && e.confidence >= policy.block_min_confidence
        })
        .count();
    if risk_tier == RiskTier::High && blocking > 0 {
        reasons.push(format!(
            "Rejected by policy {} {}: {blocking} blocking event(s) at confidence ≥ {} with a high risk tier.",
            policy.id, policy.version, policy.block_min_confidence
        ));
        VerificationStatus::Rejected
    } else if reasons.is_empty() {
        VerificationStatus::Verified
    } else {
        VerificationStatus::NeedsReview
    }
}

#[cfg(test)]
mod tests;
