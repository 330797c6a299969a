//! What scoring produces: the session's events and its score, as the signed report carries them
//! (`report` re-exports these; scoring never depends on `report`).

use super::{EventKind, RiskTier, VerificationStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Rounds to `digits` decimals so reports do not carry float noise.
pub fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    let r = (x * m).round() / m;
    if r == 0.0 { 0.0 } else { r }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Components {
    pub face: Option<f64>,
    pub voice: Option<f64>,
    pub audio: Option<f64>,
    pub video: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Score {
    /// 0–100, 100 = no concern.
    pub integrity: f64,
    /// Per analyser, null when it did not run or had nothing to analyse.
    pub components: Components,
    pub risk_tier: RiskTier,
    pub verification_status: VerificationStatus,
    /// Plain-language reasons for the status, in a fixed order.
    pub status_reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub start_s: f64,
    pub end_s: f64,
    pub confidence: f64,
    /// Measurements behind the event (sorted keys).
    pub evidence: BTreeMap<String, serde_json::Value>,
    /// One sentence a recruiter can read.
    pub reason: String,
}
