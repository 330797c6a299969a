//! `DIR/rescore.json` and `DIR/rescore.html`: what a run did, built from the ledger's entries
//! for the run (so a run that skipped everything still lists the changes it found before).

use super::diff::{KindSpans, Previous};
use super::ledger::{Ledger, LedgerError, RunState};
use super::{Entry, RescoreError, Tally, archive};
use crate::inference::ModelRef;
use crate::report::{PolicyRef, html::esc, write_atomic};
use serde::Serialize;
use std::path::Path;

pub const JSON: &str = "rescore.json";
pub const HTML: &str = "rescore.html";
/// Suffix of a session's new HTML report beside its signed report.
pub const HTML_SUFFIX: &str = ".vigil.html";

/// `rescore.json`.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub schema: &'static str,
    pub generated_at: String,
    pub vigil_version: &'static str,
    pub policy: PolicyRef,
    pub sampling: crate::ingest::Sampling,
    pub models: Vec<ModelRef>,
    pub total: usize,
    pub scored: usize,
    pub skipped: usize,
    pub failed: Vec<Failed>,
    pub changed: Vec<Changed>,
    /// Sessions whose previous report verified and whose verdict is the same.
    pub unchanged: usize,
    /// Sessions scored without a previous report to compare with.
    pub without_previous: usize,
    /// Previous reports that were not trusted (and so not compared).
    pub untrusted_previous: Vec<Untrusted>,
    /// Files of directory archives that are not media.
    pub ignored: Vec<Ignored>,
    /// With `--deliver`: what was queued to the ATS outbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<super::deliver::Delivery>,
}

#[derive(Debug, Serialize)]
pub struct Failed {
    pub media: String,
    pub error: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Changed {
    pub media: String,
    pub report: String,
    pub html: String,
    pub previous_report: String,
    #[serde(flatten)]
    pub change: super::diff::Change,
}

#[derive(Debug, Serialize)]
pub struct Untrusted {
    pub media: String,
    pub previous_report: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Ignored {
    pub path: String,
    pub kind: String,
}

/// Builds the summary from the ledger's entries of this run.
pub fn build(
    ledger: &Ledger,
    tally: &Tally,
    ignored: Vec<archive::Ignored>,
    score: &crate::pipeline::ScoreOptions,
    models: Vec<ModelRef>,
) -> Result<Summary, LedgerError> {
    let mut s = Summary {
        schema: "vigil.rescore/v1",
        generated_at: crate::report::now_rfc3339(),
        vigil_version: env!("CARGO_PKG_VERSION"),
        policy: PolicyRef {
            id: score.policy.id.clone(),
            version: score.policy.version.clone(),
            sha256: score.policy.sha256.clone(),
        },
        sampling: score.ingest.sampling,
        models,
        total: tally.total,
        scored: tally.scored,
        skipped: tally.skipped,
        failed: Vec::new(),
        changed: Vec::new(),
        unchanged: 0,
        without_previous: 0,
        untrusted_previous: Vec::new(),
        ignored: ignored
            .into_iter()
            .map(|i| Ignored {
                path: i.path,
                kind: i.kind,
            })
            .collect(),
        delivery: None,
    };
    ledger.entries(|state, json| {
        let e: Entry = serde_json::from_str(json).map_err(|e| {
            LedgerError::Sql(rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                Box::new(e),
            ))
        })?;
        if state == RunState::Failed {
            s.failed.push(Failed {
                media: e.media,
                error: e.error.unwrap_or_default(),
            });
            return Ok(());
        }
        match e.previous {
            Previous::None => s.without_previous += 1,
            Previous::Unchanged { .. } => s.unchanged += 1,
            Previous::Changed { path, change } => s.changed.push(Changed {
                media: e.media,
                report: e.report.unwrap_or_default(),
                html: e.html.unwrap_or_default(),
                previous_report: path,
                change: *change,
            }),
            Previous::Untrusted { path, reason } => s.untrusted_previous.push(Untrusted {
                media: e.media,
                previous_report: path,
                reason,
            }),
        }
        Ok(())
    })?;
    Ok(s)
}

/// Writes `rescore.json` and `rescore.html` into `out` (atomically).
pub fn write(out: &Path, s: &Summary) -> Result<(), RescoreError> {
    let write = |name: &str, bytes: &[u8]| {
        let p = out.join(name);
        write_atomic(&p, bytes).map_err(|source| RescoreError::Write {
            path: p.display().to_string(),
            source,
        })
    };
    write(
        JSON,
        &serde_json::to_vec_pretty(s).expect("summary serialises"),
    )?;
    write(HTML, page(s).as_bytes())
}

fn spans(v: &[KindSpans]) -> String {
    v.iter()
        .map(|k| {
            let t: Vec<String> = k
                .spans
                .iter()
                .map(|s| format!("{:.1}–{:.1} s", s[0], s[1]))
                .collect();
            format!("{} ({})", esc(&k.kind), t.join(", "))
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

/// The summary as one self-contained page: changed verdicts first, each linking its new report.
fn page(s: &Summary) -> String {
    use std::fmt::Write;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Vigil rescore</title><style>body{{font:14px system-ui,sans-serif;margin:2em}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;\
         text-align:left;vertical-align:top}}.bad{{color:#a00}}</style></head><body>\
         <h1>Vigil rescore</h1><p>{} · policy {} {} (sha256 {}) · sampling {} · Vigil {}</p>\
         <p>{} sessions: {} scored, {} skipped (already done), {} failed; {} changed, {} \
         unchanged, {} without a previous report, {} previous report(s) not trusted.</p>",
        esc(&s.generated_at),
        esc(&s.policy.id),
        esc(&s.policy.version),
        esc(&s.policy.sha256),
        esc(&serde_json::to_value(s.sampling)
            .unwrap_or_default()
            .to_string()),
        s.vigil_version,
        s.total,
        s.scored,
        s.skipped,
        s.failed.len(),
        s.changed.len(),
        s.unchanged,
        s.without_previous,
        s.untrusted_previous.len()
    );
    h.push_str(
        "<h2>Changed verdicts</h2><table><tr><th>media</th><th>status</th><th>tier</th>\
         <th>integrity</th><th>events added</th><th>events removed</th><th>report</th></tr>",
    );
    for c in &s.changed {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{} → {}</td><td>{} → {}</td><td>{:.1} → {:.1}</td><td>{}</td>\
             <td>{}</td><td><a href=\"{}\">{}</a></td></tr>",
            esc(&c.media),
            esc(&c.change.verification_status.old),
            esc(&c.change.verification_status.new),
            esc(&c.change.risk_tier.old),
            esc(&c.change.risk_tier.new),
            c.change.integrity.old,
            c.change.integrity.new,
            spans(&c.change.events_added),
            spans(&c.change.events_removed),
            esc(&c.html),
            esc(&c.change.report_id.new)
        );
    }
    h.push_str("</table>");
    if !s.failed.is_empty() {
        h.push_str("<h2 class=\"bad\">Failed</h2><table><tr><th>media</th><th>error</th></tr>");
        for f in &s.failed {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(&f.media),
                esc(&f.error)
            );
        }
        h.push_str("</table>");
    }
    if !s.untrusted_previous.is_empty() {
        h.push_str(
            "<h2 class=\"bad\">Previous reports not trusted</h2><table><tr><th>media</th>\
             <th>previous report</th><th>why</th></tr>",
        );
        for u in &s.untrusted_previous {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&u.media),
                esc(&u.previous_report),
                esc(&u.reason)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</body></html>\n");
    h
}
