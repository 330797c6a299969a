//! Camera-side findings (frozen or looping video, faces, lip-sync) as events.

use super::*;
use crate::media::Pts;

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
            } => identity_event((start, end), frames, mean_distance, before_distance),
            FaceFinding::ReferenceMismatch {
                start,
                end,
                frames,
                median_distance,
            } => reference_event((start, end), frames, median_distance),
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

/// A different person on camera from the one enrolled at the start.
fn identity_event(
    (start, end): (Pts, Pts),
    frames: u64,
    mean_distance: f32,
    before_distance: f32,
) -> Event {
    let (s, e) = (start.as_secs_f64(), end.as_secs_f64());
    // dlib: different people are typically 0.7–0.9 apart; 0.6 is the decision line.
    let confidence = round(
        (0.5 + (mean_distance as f64 - 0.6) * 2.0).clamp(0.5, 0.97),
        3,
    );
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

/// The person on camera is not the one in the reference photo.
fn reference_event((start, end): (Pts, Pts), frames: u64, median_distance: f32) -> Event {
    let (s, e) = (start.as_secs_f64(), end.as_secs_f64());
    span_event(
        EventKind::ReferenceFaceMismatch,
        (s, e),
        round(
            (0.5 + (median_distance as f64 - 0.6) * 2.0).clamp(0.5, 0.97),
            3,
        ),
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

/// A mouth moving out of step with the voice (`lipsync::detect_unsynced`).
pub fn unsynced_events(findings: &[UnsyncedFinding], p: &LipSyncParams) -> Vec<Event> {
    findings
        .iter()
        .map(|f| {
            let (s, e) = (f.start.as_secs_f64(), f.end.as_secs_f64());
            let lag = f.best_offset_s as f64;
            let best = if f.best_offset_correlation >= p.sync_max_corr && lag.abs() >= 0.2 {
                format!(
                    "; it matches best with the voice {:.1} s {} (correlation {:.2}): the voice may be dubbed",
                    lag.abs(),
                    if lag > 0.0 { "earlier" } else { "later" },
                    f.best_offset_correlation
                )
            } else {
                String::from(" at any offset within a second: the voice may not be the candidate's")
            };
            span_event(
                EventKind::LipSyncMismatch,
                (s, e),
                round((0.5 + (e - s) / 40.0).min(0.9), 3),
                [
                    ("mouth_voice_correlation", json!(round(f.correlation as f64, 3))),
                    ("correlated_below", json!(round(p.sync_max_corr as f64, 3))),
                    ("best_offset_s", json!(round(lag, 1))),
                    ("best_offset_correlation", json!(round(f.best_offset_correlation as f64, 3))),
                    ("windows", json!(f.windows)),
                ],
                format!(
                    "From {} to {} the candidate's mouth moves, but not with the voice (correlation {:.2} at ten frames a second){}.",
                    fmt_s(s),
                    fmt_s(e),
                    f.correlation,
                    best
                ),
            )
        })
        .collect()
}
