//! The scoring policy as a versioned TOML file (`policies/vigil-default.toml` is built in and
//! documents the reason for each number). Parsed with `deny_unknown_fields`, then validated:
//! every event kind must be listed, quality kinds cost nothing, weak-evidence (spectral) kinds
//! can never block, and the tier cut-offs are ordered.

use super::{Event, EventKind};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// The built-in default policy file.
pub const DEFAULT_POLICY: &str = include_str!("../../policies/vigil-default.toml");

#[derive(Debug, thiserror::Error)]
#[error("policy {name}: {message}")]
pub struct PolicyError {
    pub name: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    id: String,
    version: String,
    tiers: RawTiers,
    status: RawStatus,
    components: RawComponents,
    events: BTreeMap<EventKind, Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTiers {
    low_min: f64,
    medium_min: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatus {
    require_face: bool,
    require_voice: bool,
    block_min_confidence: f64,
    max_unusable_ratio: f64,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawComponents {
    pub face: f64,
    pub voice: f64,
    pub audio: f64,
    pub video: f64,
}

/// How one event kind is scored.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Cost of a fully confident event on the 0–100 integrity scale.
    pub weight: f64,
    /// Events shorter than this are dropped before scoring.
    pub min_duration_s: f64,
    /// Events less confident than this are dropped before scoring.
    pub min_confidence: f64,
    /// May make the status `rejected` (with a high tier and enough confidence).
    pub can_block: bool,
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub id: String,
    pub version: String,
    /// SHA-256 of the policy file's bytes (in every report, next to id and version).
    pub sha256: String,
    /// Integrity at or above which the tier is low.
    pub low_tier_min: f64,
    /// Integrity at or above which the tier is medium (below: high).
    pub medium_tier_min: f64,
    pub require_face: bool,
    pub require_voice: bool,
    pub block_min_confidence: f64,
    pub max_unusable_ratio: f64,
    pub components: RawComponents,
    rules: BTreeMap<EventKind, Rule>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::parse(DEFAULT_POLICY, "built-in vigil-default")
            .expect("the built-in policy is valid")
    }
}

impl Policy {
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            name: path.display().to_string(),
            message: e.to_string(),
        })?;
        Policy::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, name: &str) -> Result<Policy, PolicyError> {
        let err = |message: String| PolicyError {
            name: name.to_owned(),
            message,
        };
        let raw: RawPolicy = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        if raw.id.trim().is_empty() || raw.version.trim().is_empty() {
            return Err(err("id and version must not be empty".into()));
        }
        let mut raw = raw;
        for k in EventKind::MEDIA_FAULTS {
            raw.events.entry(k).or_insert(Rule {
                weight: 0.0,
                min_duration_s: 0.0,
                min_confidence: 0.0,
                can_block: false,
            });
        }
        let missing: Vec<String> = EventKind::ALL
            .iter()
            .filter(|k| !raw.events.contains_key(k))
            .map(|k| k.as_str().to_owned())
            .collect();
        if !missing.is_empty() {
            return Err(err(format!(
                "every event kind needs a rule; missing: {}",
                missing.join(", ")
            )));
        }
        let t = &raw.tiers;
        if !(0.0..=100.0).contains(&t.medium_min)
            || !(0.0..=100.0).contains(&t.low_min)
            || t.medium_min > t.low_min
        {
            return Err(err("tiers: need 0 ≤ medium_min ≤ low_min ≤ 100".into()));
        }
        let s = &raw.status;
        if !(s.block_min_confidence > 0.0 && s.block_min_confidence <= 1.0) {
            return Err(err("status.block_min_confidence must be in (0, 1]".into()));
        }
        if !(0.0..=1.0).contains(&s.max_unusable_ratio) {
            return Err(err("status.max_unusable_ratio must be in [0, 1]".into()));
        }
        let c = raw.components;
        for (n, w) in [
            ("face", c.face),
            ("voice", c.voice),
            ("audio", c.audio),
            ("video", c.video),
        ] {
            if !(0.0..=10.0).contains(&w) {
                return Err(err(format!("components.{n} must be in [0, 10]")));
            }
        }
        for (k, r) in &raw.events {
            let name = k.as_str();
            if !(0.0..=100.0).contains(&r.weight) {
                return Err(err(format!("events.{name}.weight must be in [0, 100]")));
            }
            if !(0.0..=1.0).contains(&r.min_confidence) || r.min_duration_s < 0.0 {
                return Err(err(format!(
                    "events.{name}: min_confidence must be in [0, 1] and min_duration_s ≥ 0"
                )));
            }
            if k.is_quality() && (r.weight != 0.0 || r.can_block) {
                return Err(err(format!(
                    "events.{name} is a quality kind: it lowers confidence, not integrity (weight 0, can_block false)"
                )));
            }
            if k.is_spectral() && r.can_block {
                return Err(err(format!(
                    "events.{name} is weak spectral evidence: it can raise a review but never block (can_block false)"
                )));
            }
        }
        Ok(Policy {
            id: raw.id,
            version: raw.version,
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            low_tier_min: t.low_min,
            medium_tier_min: t.medium_min,
            require_face: s.require_face,
            require_voice: s.require_voice,
            block_min_confidence: s.block_min_confidence,
            max_unusable_ratio: s.max_unusable_ratio,
            components: c,
            rules: raw.events,
        })
    }

    pub fn rule(&self, kind: EventKind) -> Rule {
        self.rules[&kind]
    }

    /// Cost of a fully confident event of `kind`.
    pub fn weight(&self, kind: EventKind) -> f64 {
        self.rules[&kind].weight
    }

    /// Drops events below the policy's confidence or duration floor. Absence-of-stream events
    /// (`no_audio`, `no_video`) and media faults always stay.
    pub fn admit(&self, events: Vec<Event>) -> Vec<Event> {
        events
            .into_iter()
            .filter(|e| {
                let r = self.rule(e.kind);
                matches!(e.kind, EventKind::NoAudio | EventKind::NoVideo)
                    || EventKind::MEDIA_FAULTS.contains(&e.kind)
                    || (e.confidence >= r.min_confidence && e.end_s - e.start_s >= r.min_duration_s)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_policy_parses() {
        let p = Policy::default();
        assert_eq!(p.id, "vigil-default");
        assert_eq!(p.weight(EventKind::IdentityChange), 60.0);
        assert_eq!(p.weight(EventKind::Clipping), 0.0);
        assert_eq!(p.sha256.len(), 64);
    }

    #[test]
    fn invalid_policies_are_refused_with_the_reason() {
        let bad = |from: &str, to: &str, expect: &str| {
            let text = DEFAULT_POLICY.replacen(from, to, 1);
            assert_ne!(text, DEFAULT_POLICY, "{from} not found");
            let e = Policy::parse(&text, "t").unwrap_err().to_string();
            assert!(e.contains(expect), "{e}");
        };
        bad("low_min = 80", "low_min = 40", "medium_min ≤ low_min");
        bad(
            "low_min = 80",
            "low_min = 80\nlow_minn = 1",
            "unknown field",
        );
        bad(
            "[events.video_loop]",
            "[events.video_lopo]",
            "unknown variant",
        );
        bad(
            "[events.clipping]\nweight = 0",
            "[events.clipping]\nweight = 5",
            "quality kind",
        );
        bad(
            "[events.audio_splice]\nweight = 20\nmin_duration_s = 0\nmin_confidence = 0\ncan_block = false",
            "[events.audio_splice]\nweight = 20\nmin_duration_s = 0\nmin_confidence = 0\ncan_block = true",
            "never block",
        );
        let without_loop = DEFAULT_POLICY.replace(
            "[events.video_loop]\nweight = 45\nmin_duration_s = 0\nmin_confidence = 0\ncan_block = false\n",
            "",
        );
        let e = Policy::parse(&without_loop, "t").unwrap_err().to_string();
        assert!(e.contains("missing: video_loop"), "{e}");
    }
}
