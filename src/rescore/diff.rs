//! A session's previous report against its new one: trusted only when its signature verifies
//! with a key the operator trusts, and compared on the verdict alone (integrity, tier, status,
//! event kinds) — never on `generated_at`, the report id or the signing key, which differ on
//! every re-run without anything having changed.

use crate::report::dsse::{self, Envelope};
use crate::report::{Event, Report};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// What became of the previous report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Previous {
    /// No previous report was given.
    None,
    /// Verified; the verdict is the same.
    Unchanged { path: String },
    /// Verified; the verdict differs.
    Changed { path: String, change: Box<Change> },
    /// Not trusted (unreadable, not a report, or a signature that does not verify with any
    /// trusted key): reported, never compared.
    Untrusted { path: String, reason: String },
}

/// An old and a new value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair<T> {
    pub old: T,
    pub new: T,
}

/// The events of one kind, as `[start_s, end_s]` spans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindSpans {
    pub kind: String,
    pub spans: Vec<[f64; 2]>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub report_id: Pair<String>,
    pub integrity: Pair<f64>,
    pub risk_tier: Pair<String>,
    pub verification_status: Pair<String>,
    /// Event kinds the new report raises and the old did not, with their times.
    pub events_added: Vec<KindSpans>,
    /// Event kinds the old report raised and the new does not, with their times.
    pub events_removed: Vec<KindSpans>,
}

/// Reads and verifies the previous report at `path` and compares it with `new`.
pub fn compare(path: &Path, trusted: &[VerifyingKey], new: &Report) -> Previous {
    let shown = path.display().to_string();
    match read_trusted(path, trusted) {
        Ok(old) => match change(&old, new) {
            Some(change) => Previous::Changed {
                path: shown,
                change: Box::new(change),
            },
            None => Previous::Unchanged { path: shown },
        },
        Err(reason) => Previous::Untrusted {
            path: shown,
            reason,
        },
    }
}

fn read_trusted(path: &Path, trusted: &[VerifyingKey]) -> Result<Report, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let env: Envelope =
        serde_json::from_slice(&bytes).map_err(|e| format!("not a DSSE envelope: {e}"))?;
    let mut last = "no trusted public key was given".to_string();
    for key in trusted {
        match dsse::verify(&env, key) {
            Ok(payload) => return Report::from_payload(&payload),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("signature not trusted: {last}"))
}

/// The verdict's differences, or `None` when the verdict is the same.
pub fn change(old: &Report, new: &Report) -> Option<Change> {
    let (o, n) = (kinds(&old.events), kinds(&new.events));
    let only = |a: &BTreeMap<String, Vec<[f64; 2]>>, b: &BTreeMap<String, Vec<[f64; 2]>>| {
        a.iter()
            .filter(|(k, _)| !b.contains_key(*k))
            .map(|(k, v)| KindSpans {
                kind: k.clone(),
                spans: v.clone(),
            })
            .collect::<Vec<_>>()
    };
    let c = Change {
        report_id: Pair {
            old: old.report_id.clone(),
            new: new.report_id.clone(),
        },
        integrity: Pair {
            old: old.score.integrity,
            new: new.score.integrity,
        },
        risk_tier: Pair {
            old: old.score.risk_tier.as_str().to_owned(),
            new: new.score.risk_tier.as_str().to_owned(),
        },
        verification_status: Pair {
            old: old.score.verification_status.as_str().to_owned(),
            new: new.score.verification_status.as_str().to_owned(),
        },
        events_added: only(&n, &o),
        events_removed: only(&o, &n),
    };
    let same = c.integrity.old == c.integrity.new
        && c.risk_tier.old == c.risk_tier.new
        && c.verification_status.old == c.verification_status.new
        && c.events_added.is_empty()
        && c.events_removed.is_empty();
    (!same).then_some(c)
}

fn kinds(events: &[Event]) -> BTreeMap<String, Vec<[f64; 2]>> {
    let mut m: BTreeMap<String, Vec<[f64; 2]>> = BTreeMap::new();
    for e in events {
        m.entry(e.kind.as_str().to_owned())
            .or_default()
            .push([e.start_s, e.end_s]);
    }
    m
}
