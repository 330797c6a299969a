//! The integrity report: payload schema (README.md § The report), its canonical bytes, and the signed
//! DSSE envelope around them.
//!
//! The payload is serialised from these structs in declaration order with every float rounded
//! at construction ([`round`]), so the same analysis always yields the same bytes; only
//! `generated_at` varies between runs.

pub mod dsse;
pub mod html;
pub mod keys;
pub mod pack;

use crate::inference::ModelRef;
use crate::ingest::Sampling;
use crate::media::{AudioStreamInfo, VideoStreamInfo};
// What scoring produces is part of the report: re-exported so readers of a report need only
// this module (scoring does not depend on report).
pub use crate::scoring::{
    Components, Event, EventKind, RiskTier, Score, VerificationStatus, round,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const SCHEMA: &str = "vigil.integrity-report/v1";

/// `t` as RFC 3339 in whole seconds (UTC), the one time format of reports, manifests and logs.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// Now, as [`rfc3339`].
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// Prefix of the temporary files [`write_atomic`] renames into place: one left behind by a
/// killed process is never a report, and `vigil rescore` removes them from its output.
pub const PARTIAL_PREFIX: &str = ".vigil-partial-";

/// Writes via a temporary file in the same directory and a rename, so a crash never leaves half
/// a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(PARTIAL_PREFIX)
        .tempfile_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub schema: String,
    /// Stable id derived from the media hash, session ids, policy and pipeline version: the same
    /// inputs re-scored give the same id (the ATS writer de-duplicates on it).
    pub report_id: String,
    pub generated_at: String,
    pub session: SessionInfo,
    pub media: MediaSection,
    pub pipeline: PipelineSection,
    pub coverage: Coverage,
    pub score: Score,
    pub events: Vec<Event>,
    pub timeline: Timeline,
}

/// Who and what the session is about (from `--session FILE.json` or the server's session).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SessionInfo {
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub interview_id: Option<String>,
    #[serde(default)]
    pub application_id: Option<String>,
    #[serde(default)]
    pub candidate_external_id: Option<String>,
    #[serde(default)]
    pub ats: Option<String>,
    #[serde(default)]
    pub requisition_id: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    /// The candidate's recorded consent. Required whenever the session identifies a candidate
    /// (candidate or application id): Vigil does not analyse such a session without it.
    #[serde(default)]
    pub consent: Option<Consent>,
}

/// How and when the candidate consented to integrity monitoring.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// RFC 3339 time the consent was given.
    pub recorded_at: String,
    /// How it was collected, e.g. `meeting_bot_prompt`, `scheduling_form`.
    pub method: String,
    /// Version of the consent text the candidate saw.
    pub text_version: String,
}

impl SessionInfo {
    /// True when the session names a candidate (and so needs a consent record).
    pub fn identifies_candidate(&self) -> bool {
        self.candidate_external_id.is_some() || self.application_id.is_some()
    }

    /// Checks the consent rule: a session naming a candidate needs a complete consent record.
    pub fn check_consent(&self) -> Result<(), String> {
        if !self.identifies_candidate() {
            return Ok(());
        }
        let Some(c) = &self.consent else {
            return Err("the session identifies a candidate but has no consent record (consent.recorded_at, method, text_version): Vigil does not analyse it".into());
        };
        if c.method.trim().is_empty() || c.text_version.trim().is_empty() {
            return Err("consent.method and consent.text_version must not be empty".into());
        }
        let at = time::OffsetDateTime::parse(
            &c.recorded_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| {
            format!(
                "consent.recorded_at '{}' is not RFC 3339: {e}",
                c.recorded_at
            )
        })?;
        // Consent is recorded before the interview; 5 minutes of clock skew are tolerated.
        if at > time::OffsetDateTime::now_utc() + time::Duration::minutes(5) {
            return Err(format!(
                "consent.recorded_at '{}' is in the future: consent must be recorded before the session",
                c.recorded_at
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MediaSection {
    /// File name (never the full path) or URI without credentials/query.
    pub source: String,
    /// SHA-256 of the input file's bytes; null for remote inputs.
    pub sha256: Option<String>,
    pub size_bytes: Option<u64>,
    pub duration_s: f64,
    pub container: Option<String>,
    pub video: Option<VideoStreamInfo>,
    pub audio: Option<AudioStreamInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PolicyRef {
    pub id: String,
    pub version: String,
    /// SHA-256 of the policy file the report was scored with.
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PipelineSection {
    pub vigil_version: String,
    pub policy: PolicyRef,
    pub sampling: Sampling,
    /// Analysers that ran, in a fixed order.
    pub analysers: Vec<String>,
    pub models: Vec<ModelRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Coverage {
    pub frames_analysed: u64,
    /// Mean spacing of analysed frames (null with fewer than two frames).
    pub mean_frame_interval_s: Option<f64>,
    /// One-second audio windows analysed.
    pub audio_windows_analysed: u64,
    /// Share of analysed frames with a face; null until a face analyser has run.
    pub face_present_ratio: Option<f64>,
    /// Seconds of speech found by the VAD; null without audio.
    pub speech_s: Option<f64>,
}

/// Per-second series for plots; `null` where a series has no value for that second.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Timeline {
    pub step_s: f64,
    pub series: BTreeMap<String, Vec<Option<f64>>>,
}

impl Report {
    /// The exact payload bytes that get signed.
    pub fn to_payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("report serialises")
    }

    /// Parses and sanity-checks payload bytes.
    pub fn from_payload(bytes: &[u8]) -> Result<Report, String> {
        let r: Report = serde_json::from_slice(bytes)
            .map_err(|e| format!("payload is not a Vigil report: {e}"))?;
        if r.schema != SCHEMA {
            return Err(format!(
                "payload schema is '{}', expected '{SCHEMA}'",
                r.schema
            ));
        }
        Ok(r)
    }
}
