//! A self-contained HTML rendering of a signed report: verdict, score, timeline plot (inline
//! SVG), event table, signature check and versions.
//!
//! One file with no scripts and no external assets; a Content-Security-Policy of
//! `default-src 'none'` makes any accidental fetch fail loudly in a browser instead of leaking
//! where the report is being read. Every string from the payload is HTML-escaped.

use super::{Event, Report};
use serde_json::Value;
use std::fmt::Write;

/// The outcome of the signature check shown on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    Valid { keyid: String },
    Invalid { reason: String },
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn mmss(t: f64) -> String {
    let t = t.max(0.0);
    let m = (t / 60.0).floor() as u64;
    format!("{m}:{:04.1}", t - m as f64 * 60.0)
}

/// A short number for axis labels: at most 3 decimals, trailing zeros dropped.
fn num(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Series plotted, in this order, with their fixed y-range when one is meaningful.
/// A y-axis range (low, high).
type Range = Option<(f64, f64)>;

const LANES: &[(&str, &str, Range)] = &[
    (
        "face_distance",
        "face distance to enrolled",
        Some((0.0, 1.2)),
    ),
    ("faces_on_camera", "faces on camera", Some((0.0, 3.0))),
    ("voice_similarity", "voice similarity", Some((0.0, 1.0))),
    ("speech_probability", "speech probability", Some((0.0, 1.0))),
    (
        "mouth_voice_correlation",
        "mouth–voice correlation",
        Some((-1.0, 1.0)),
    ),
    ("audio_anomaly", "audio anomaly", Some((0.0, 1.0))),
    ("audio_level_dbfs", "audio level (dBFS)", Some((-90.0, 0.0))),
    ("noise_floor_dbfs", "noise floor (dBFS)", Some((-90.0, 0.0))),
    ("video_motion", "video motion", None),
    ("video_luma", "video luma", Some((0.0, 255.0))),
];

fn component_colour(kind: &str) -> &'static str {
    match kind {
        k if k.starts_with("face") || k.contains("faces") || k.contains("identity") => "#d9480f",
        k if k.contains("speaker") || k.contains("voice") => "#5f3dc4",
        k if k.starts_with("video") || k == "low_light" => "#1971c2",
        k if k.starts_with("lip") => "#c2255c",
        _ => "#2b8a3e",
    }
}

const W: f64 = 960.0;
const LEFT: f64 = 190.0;
const LANE: f64 = 64.0;
const GAP: f64 = 10.0;

/// The timeline's geometry: seconds per value, the span of time drawn, the picture's height.
struct Frame {
    step: f64,
    duration: f64,
    height: f64,
}

impl Frame {
    /// The x coordinate of time `t`.
    fn x(&self, t: f64) -> f64 {
        LEFT + (t / self.duration).clamp(0.0, 1.0) * (W - LEFT - 10.0)
    }
}

fn timeline_svg(r: &Report, out: &mut String) {
    let step = if r.timeline.step_s > 0.0 {
        r.timeline.step_s
    } else {
        1.0
    };
    let lanes = timeline_lanes(r);
    let duration = r
        .media
        .duration_s
        .max(
            r.timeline
                .series
                .values()
                .map(|v| v.len() as f64 * step)
                .fold(0.0, f64::max),
        )
        .max(1.0);
    let f = Frame {
        step,
        duration,
        height: 30.0 + lanes.len() as f64 * (LANE + GAP),
    };
    let _ = write!(
        out,
        r#"<svg id="timeline" viewBox="0 0 {W} {}" width="100%" role="img" aria-label="Timeline of per-second measurements with flagged spans shaded">"#,
        f.height
    );
    span_rects(r, &f, out);
    for (li, (key, label, range)) in lanes.iter().enumerate() {
        lane_svg(&f, li, key, label, *range, &r.timeline.series[*key], out);
    }
    time_axis(&f, out);
    out.push_str("</svg>");
}

/// The lanes drawn: the known series in [`LANES`] order with their labels and ranges, then any
/// other series under its own name.
fn timeline_lanes(r: &Report) -> Vec<(&str, String, Range)> {
    let mut lanes: Vec<(&str, String, Range)> = Vec::new();
    for (key, label, range) in LANES {
        if r.timeline.series.contains_key(*key) {
            lanes.push((key, (*label).to_owned(), *range));
        }
    }
    for key in r.timeline.series.keys() {
        if !LANES.iter().any(|(k, _, _)| k == key) {
            lanes.push((key.as_str(), key.replace('_', " "), None));
        }
    }
    lanes
}

/// Flagged spans, shaded across every lane.
fn span_rects(r: &Report, f: &Frame, out: &mut String) {
    for (i, e) in r.events.iter().enumerate() {
        let kind = e.kind.as_str();
        let (x0, x1) = (f.x(e.start_s), f.x(e.end_s.max(e.start_s + f.step * 0.5)));
        let _ = write!(
            out,
            r#"<rect class="span" data-event="{i}" x="{x0:.1}" y="0" width="{:.1}" height="{:.1}" fill="{}" fill-opacity="0.14"><title>{} {}–{}</title></rect>"#,
            (x1 - x0).max(1.0),
            f.height - 20.0,
            component_colour(kind),
            esc(kind),
            mmss(e.start_s),
            mmss(e.end_s)
        );
    }
}

/// A lane's value range: the fixed one, else the series' own (a constant series sits mid-lane).
fn lane_range(values: &[Option<f64>], range: Range) -> (f64, f64) {
    range.unwrap_or_else(|| {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.iter().flatten() {
            lo = lo.min(*v);
            hi = hi.max(*v);
        }
        if !lo.is_finite() {
            (0.0, 1.0)
        } else if hi <= lo {
            (lo - 1.0, lo + 1.0)
        } else {
            (lo, hi)
        }
    })
}

/// One lane: its frame, label and range, and one polyline per run of defined values (gaps stay
/// gaps; a lone value is a dot).
fn lane_svg(
    f: &Frame,
    li: usize,
    key: &str,
    label: &str,
    range: Range,
    values: &[Option<f64>],
    out: &mut String,
) {
    let top = li as f64 * (LANE + GAP);
    let (lo, hi) = lane_range(values, range);
    let y = |v: f64| top + LANE - ((v - lo) / (hi - lo)).clamp(0.0, 1.0) * LANE;
    let _ = write!(
        out,
        r##"<g class="lane" data-series="{key}"><rect x="{LEFT}" y="{top}" width="{:.1}" height="{LANE}" fill="none" stroke="#ced4da"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end" fill="#343a40">{}</text><text x="{:.1}" y="{:.1}" font-size="9" text-anchor="end" fill="#868e96">{} – {}</text>"##,
        W - LEFT - 10.0,
        LEFT - 8.0,
        top + LANE / 2.0,
        esc(label),
        LEFT - 8.0,
        top + LANE / 2.0 + 13.0,
        num(lo),
        num(hi),
    );
    let mut run: Vec<String> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) if v.is_finite() => run.push(format!(
                "{:.1},{:.1}",
                f.x((i as f64 + 0.5) * f.step),
                y(*v)
            )),
            _ => polyline(&mut run, out),
        }
    }
    polyline(&mut run, out);
    out.push_str("</g>");
}

/// Draws a run of points (a dot when there is one) and empties it.
fn polyline(run: &mut Vec<String>, out: &mut String) {
    if run.len() == 1 {
        let p: Vec<&str> = run[0].split(',').collect();
        let _ = write!(
            out,
            r##"<circle cx="{}" cy="{}" r="1.8" fill="#212529"/>"##,
            p[0], p[1]
        );
    } else if run.len() > 1 {
        let _ = write!(
            out,
            r##"<polyline fill="none" stroke="#212529" stroke-width="1.2" points="{}"/>"##,
            run.join(" ")
        );
    }
    run.clear();
}

/// Eleven time labels under the lanes.
fn time_axis(f: &Frame, out: &mut String) {
    let axis_y = f.height - 14.0;
    let ticks = 10;
    for k in 0..=ticks {
        let t = f.duration * k as f64 / ticks as f64;
        let anchor = match k {
            0 => "start",
            k if k == ticks => "end",
            _ => "middle",
        };
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{axis_y:.1}" font-size="10" text-anchor="{anchor}" fill="#495057">{}</text>"##,
            f.x(t),
            mmss(t)
        );
    }
}

fn evidence_text(e: &Event) -> String {
    e.evidence
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}: {s}"),
            v => format!("{k}: {v}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Renders the report page.
/// The page for a file whose signature does not verify and whose payload is not a readable
/// report: it says so, and shows nothing of what the file claims.
pub fn render_unreadable(reason: &str, detail: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Not a valid Vigil report</title>
<style>body{{font-family:"DejaVu Sans",system-ui,sans-serif;margin:24px auto;max-width:1000px;padding:0 16px}} .sig-bad{{color:#c92a2a;font-weight:bold}}</style>
</head><body>
<h1>Not a valid Vigil report</h1>
<p id="signature" class="sig-bad">✘ Signature NOT verified: {}.</p>
<p id="unreadable">The payload is not a readable report ({}): nothing in this file can be relied on.</p>
</body></html>
"#,
        esc(reason),
        esc(detail)
    )
}

pub fn render(r: &Report, check: &SignatureCheck) -> String {
    let mut o = String::with_capacity(32 * 1024);
    head(r, &mut o);
    verdict(r, check, &mut o);
    components(r, &mut o);
    o.push_str("<h2>Timeline</h2>");
    timeline_svg(r, &mut o);
    events(r, &mut o);
    provenance(r, &mut o);
    o
}

/// The document head (strict CSP, inline style) and the page title.
fn head(r: &Report, o: &mut String) {
    let _ = write!(
        o,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vigil integrity report {id}</title>
<style>
body{{font-family:"DejaVu Sans",system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#212529;padding:0 16px}}
h1{{font-size:22px;margin:0 0 4px}} h2{{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dee2e6;padding-bottom:4px}}
.verdict{{display:flex;gap:16px;align-items:center;flex-wrap:wrap;margin:16px 0}}
.badge{{color:#fff;border-radius:6px;padding:8px 14px;font-weight:bold;font-size:18px}}
.score{{font-size:34px;font-weight:bold}} .muted{{color:#868e96;font-size:13px}}
table{{border-collapse:collapse;width:100%;font-size:13px}} td,th{{border-bottom:1px solid #e9ecef;padding:5px 6px;text-align:left;vertical-align:top}}
.sig-ok{{color:#2b8a3e;font-weight:bold}} .sig-bad{{color:#c92a2a;font-weight:bold}}
code{{font-size:12px;word-break:break-all}}
</style></head><body>
<h1>Interview-integrity report</h1>
<div class="muted">report <code>{id}</code> · generated {gen}</div>
"#,
        id = esc(&r.report_id),
        gen = esc(&r.generated_at),
    );
}

/// The verdict badge, integrity and tier, the status reasons and the signature line; an
/// untrusted page leads with its warning and shows no verdict colour.
fn verdict(r: &Report, check: &SignatureCheck, o: &mut String) {
    let status = r.score.verification_status.as_str();
    let tier = r.score.risk_tier.as_str();
    let trusted = matches!(check, SignatureCheck::Valid { .. });
    // An untrusted page carries no verdict styling: no green "verified" for a forgery.
    let status_colour = match status {
        _ if !trusted => "#868e96",
        "verified" => "#2b8a3e",
        "rejected" => "#c92a2a",
        _ => "#e67700",
    };
    // An untrusted page leads with the warning, before any verdict.
    if let SignatureCheck::Invalid { reason } = check {
        let _ = write!(
            o,
            r#"<p id="signature" class="sig-bad">✘ Signature NOT verified: {}. Do not rely on this report: what follows is what the file claims, not what Vigil found.</p>"#,
            esc(reason)
        );
    }
    let badge = if trusted {
        status.replace('_', " ")
    } else {
        format!("unverified claim: {}", status.replace('_', " "))
    };
    let _ = write!(
        o,
        r#"<div class="verdict" id="verdict"><span class="badge" style="background:{status_colour}">{}</span><span class="score" id="integrity">{:.0}<span class="muted">/100</span></span><span>risk tier <b id="risk-tier">{}</b></span></div>"#,
        esc(&badge),
        r.score.integrity,
        esc(tier)
    );
    if !r.score.status_reasons.is_empty() {
        o.push_str("<ul id=\"reasons\">");
        for reason in &r.score.status_reasons {
            let _ = write!(o, "<li>{}</li>", esc(reason));
        }
        o.push_str("</ul>");
    }
    if let SignatureCheck::Valid { keyid } = check {
        let _ = write!(
            o,
            r#"<p id="signature" class="sig-ok">✔ Signature valid (DSSE, Ed25519, key <code>{}</code>). The signed payload is what this page shows.</p>"#,
            esc(keyid)
        );
    }
}

/// Component scores and what was analysed.
fn components(r: &Report, o: &mut String) {
    // Components and coverage.
    let c = &r.score.components;
    let comp = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "—".into());
    let _ = write!(
        o,
        r#"<h2>Components</h2><table id="components"><tr><th>face</th><th>voice</th><th>audio</th><th>video</th></tr><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>"#,
        comp(c.face),
        comp(c.voice),
        comp(c.audio),
        comp(c.video)
    );
    let cov = &r.coverage;
    let _ = write!(
        o,
        r#"<p class="muted">Coverage: {} frames analysed{}, {} audio seconds, face on camera {}, speech {}.</p>"#,
        cov.frames_analysed,
        cov.mean_frame_interval_s
            .map(|s| format!(" (every {s:.1} s)"))
            .unwrap_or_default(),
        cov.audio_windows_analysed,
        cov.face_present_ratio
            .map(|f| format!("{:.0} % of frames", f * 100.0))
            .unwrap_or_else(|| "not analysed".into()),
        cov.speech_s
            .map(|s| format!("{s:.1} s"))
            .unwrap_or_else(|| "not analysed".into()),
    );
}

/// One row per event.
fn events(r: &Report, o: &mut String) {
    let _ = write!(o, r#"<h2>Events ({})</h2>"#, r.events.len());
    if r.events.is_empty() {
        o.push_str(r#"<p id="no-events">No integrity or quality events.</p>"#);
    } else {
        o.push_str(r#"<table id="events"><tr><th>kind</th><th>from</th><th>to</th><th>confidence</th><th>what happened</th><th>evidence</th></tr>"#);
        for (i, e) in r.events.iter().enumerate() {
            let kind = e.kind.as_str();
            let _ = write!(
                o,
                r#"<tr class="event" id="event-{i}" data-kind="{k}"><td><span style="color:{col}">■</span> {k}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td class="muted">{}</td></tr>"#,
                mmss(e.start_s),
                mmss(e.end_s),
                e.confidence,
                esc(&e.reason),
                esc(&evidence_text(e)),
                k = esc(kind),
                col = component_colour(kind),
            );
        }
        o.push_str("</table>");
    }
}

/// Session ids, media, versions and models.
fn provenance(r: &Report, o: &mut String) {
    // Provenance.
    let s = &r.session;
    let ids: Vec<String> = [
        ("session", &s.session_id),
        ("interview", &s.interview_id),
        ("application", &s.application_id),
        ("candidate", &s.candidate_external_id),
        ("ATS", &s.ats),
        ("requisition", &s.requisition_id),
        ("department", &s.department),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} <code>{}</code>", esc(v))))
    .collect();
    let _ = write!(
        o,
        r#"<h2>Session and media</h2><p>{}</p><p>Media <code>{}</code>, {:.1} s{}.</p>"#,
        if ids.is_empty() {
            "No session ids were given.".to_owned()
        } else {
            ids.join(" · ")
        },
        esc(&r.media.source),
        r.media.duration_s,
        r.media
            .sha256
            .as_ref()
            .map(|h| format!(", SHA-256 <code>{}</code>", esc(h)))
            .unwrap_or_default()
    );
    let p = &r.pipeline;
    let _ = write!(
        o,
        r#"<h2>Versions</h2><table id="versions"><tr><th>vigil</th><td>{}</td></tr><tr><th>policy</th><td>{} {}</td></tr><tr><th>analysers</th><td>{}</td></tr>"#,
        esc(&p.vigil_version),
        esc(&p.policy.id),
        esc(&p.policy.version),
        esc(&p.analysers.join(", "))
    );
    for m in &p.models {
        let _ = write!(
            o,
            r#"<tr><th>model</th><td>{} <code>{}</code></td></tr>"#,
            esc(&m.name),
            esc(&m.sha256)
        );
    }
    o.push_str("</table><p class=\"muted\">Verify the signed file offline with <code>vigil verify REPORT --pubkey KEY.pub.pem</code>. Spectral audio cues are weak evidence: they raise a review, never a rejection on their own.</p></body></html>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn time_format() {
        assert_eq!(mmss(0.0), "0:00.0");
        assert_eq!(mmss(75.25), "1:15.2");
    }
}
