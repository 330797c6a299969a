//! Lip-sync: sustained speech while the on-camera face's mouth stays closed and still — the
//! candidate mouthing nothing while a recording or someone off camera answers.
//!
//! Inputs are the face analyser's per-frame mouth openness (FaceMesh |lm13 − lm14| / |lm78 −
//! lm308|: ≈ 0.02 closed, 0.1–0.5 open) and the VAD's speech per second. At the default sampling
//! (one frame per second) a correlation of mouth motion with the speech envelope is not
//! measurable, so the test is the robust half of it: during speech a speaker's mouth is open in a
//! good share of the frames; a mouth that is closed, or held still, in every sampled frame over
//! several seconds of speech is not the speaker's. Frames without a face or without speech neither extend nor break
//! a span (`face_absent` covers the first).
//!
//! Assumes the media is the candidate's own stream (a meeting bot's per-participant track): in a
//! mixed recording the interviewer's speech would coincide with the candidate listening.

use crate::analysis::face::FaceSample;
use crate::media::Pts;

/// Thresholds (policy values).
#[derive(Debug, Clone)]
pub struct LipSyncParams {
    /// Mouth openness under which the mouth counts as closed. Default 0.04: on the corpus's
    /// calibration half (`scripts/accuracy`), 0.06 raised mismatches on 5 recordings without a
    /// lip-sync manipulation — small-mouthed speakers whose sampled openness peaked at
    /// 0.030–0.058 (4 of them ≥ 0.046) — and found none of the lip-sync ones (stillness found
    /// the 2 it found); the `lipsync_mismatch.mp4` fixture's closed mouth reads ≤ 0.033.
    pub closed_max: f32,
    /// A closed-mouth span during speech must last at least this long. Default 6 s.
    pub min_span_s: f64,
    /// …and contain at least this many closed-mouth frames during speech. Default 5.
    pub min_frames: u64,
    /// A span ends when no qualifying frame came for this long (face away, silence). Default 3 s.
    pub max_gap_s: f64,
    /// A mouth whose openness stays within this range over the span is still, whatever its
    /// resting openness. Default 0.015 (FaceMesh jitter on a still mouth ≤ 0.005; a speaker's
    /// sampled openness ranges over 0.05–0.3).
    pub still_range: f32,
    /// A mouth whose openness correlates with the voice's loudness at least this much over the
    /// span follows the voice, however little it opens (a face with a small mouth range, sampled
    /// between syllables): no mismatch. Default 0.5.
    pub follows_voice_corr: f32,
    /// …provided it moves at least this much (max − min openness in the span), so FaceMesh's
    /// jitter on a closed mouth cannot pass for following. Default 0.01 (closed-mouth jitter on
    /// the fixtures ≤ 0.005; a small-mouthed speaker 0.01–0.03).
    pub follows_voice_range: f32,
}

impl Default for LipSyncParams {
    fn default() -> Self {
        LipSyncParams {
            closed_max: 0.04,
            min_span_s: 6.0,
            min_frames: 5,
            max_gap_s: 3.0,
            still_range: 0.015,
            follows_voice_corr: 0.5,
            follows_voice_range: 0.01,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LipSyncFinding {
    pub start: Pts,
    pub end: Pts,
    /// Pearson correlation of mouth openness with speech loudness over the span's frames (0 when
    /// the mouth does not move at all): evidence only, see [`correlation`].
    /// Closed-mouth frames during speech in the span.
    pub frames: u64,
    /// Largest mouth openness seen in the span.
    pub max_mouth: f32,
    /// Smallest mouth openness seen in the span.
    pub min_mouth: f32,
    pub correlation: f32,
}

/// Pearson correlation of mouth openness and speech loudness over the face samples in
/// [start, end] that have both. At one frame per second this is a coarse measure (a handful of
/// pairs per window) that cannot be calibrated on the material here, so it is reported as
/// evidence and as a timeline series, not used to decide; a mouth that never moves gives 0.
pub fn correlation(
    faces: &[FaceSample],
    loudness: &impl Fn(Pts) -> Option<f32>,
    start: Pts,
    end: Pts,
) -> Option<f32> {
    let pairs: Vec<(f64, f64)> = faces
        .iter()
        .filter(|f| f.pts >= start && f.pts <= end && f.faces > 0)
        .filter_map(|f| Some((f.mouth_open? as f64, loudness(f.pts)? as f64)))
        .collect();
    if pairs.len() < 4 {
        return None;
    }
    let n = pairs.len() as f64;
    let (mx, my) = (
        pairs.iter().map(|p| p.0).sum::<f64>() / n,
        pairs.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in &pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    if sxx < 1e-8 || syy < 1e-12 {
        return Some(0.0);
    }
    Some((sxy / (sxx * syy).sqrt()) as f32)
}

/// Finds spans of speech with a closed, still mouth. `speaking(pts)` says whether the audio at
/// that time is mostly speech.
pub fn detect(
    faces: &[FaceSample],
    speaking: impl Fn(Pts) -> bool,
    loudness: impl Fn(Pts) -> Option<f32>,
    p: &LipSyncParams,
) -> Vec<LipSyncFinding> {
    let mut out = Vec::new();
    let mut run: Option<LipSyncFinding> = None;
    let close = |run: &mut Option<LipSyncFinding>, out: &mut Vec<LipSyncFinding>| {
        if let Some(mut r) = run.take()
            && r.frames >= p.min_frames
            && r.end.as_secs_f64() - r.start.as_secs_f64() >= p.min_span_s - 1e-9
        {
            r.correlation = correlation(faces, &loudness, r.start, r.end).unwrap_or(0.0);
            // Never raised against its own evidence: a mouth moving with the voice is speaking.
            let follows = r.correlation >= p.follows_voice_corr
                && r.max_mouth - r.min_mouth >= p.follows_voice_range;
            if !follows {
                out.push(r);
            }
        }
    };
    for f in faces {
        let Some(m) = f.mouth_open else { continue };
        if f.faces == 0 || !speaking(f.pts) {
            continue;
        }
        if run
            .as_ref()
            .is_some_and(|r| f.pts.as_secs_f64() - r.end.as_secs_f64() > p.max_gap_s)
        {
            close(&mut run, &mut out);
        }
        // A frame continues the span while the mouth stays closed, or stays still: a mouth at
        // rest need not read as closed (a smile, an open-lipped photo), but a speaker's moves.
        let qualifies = |r: &LipSyncFinding| {
            let (lo, hi) = (r.min_mouth.min(m), r.max_mouth.max(m));
            hi < p.closed_max || hi - lo <= p.still_range
        };
        if run.as_ref().is_some_and(|r| !qualifies(r)) {
            close(&mut run, &mut out);
        }
        match &mut run {
            Some(r) => {
                r.end = f.pts;
                r.frames += 1;
                r.max_mouth = r.max_mouth.max(m);
                r.min_mouth = r.min_mouth.min(m);
            }
            None => {
                run = Some(LipSyncFinding {
                    start: f.pts,
                    end: f.pts,
                    frames: 1,
                    max_mouth: m,
                    min_mouth: m,
                    correlation: 0.0,
                })
            }
        }
    }
    close(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: u64, mouth: f32) -> FaceSample {
        FaceSample {
            pts: Pts(t * 1_000_000_000),
            faces: 1,
            distance: None,
            mouth_open: Some(mouth),
        }
    }

    #[test]
    fn a_mouth_that_follows_the_voice_correlates() {
        let faces: Vec<_> = (0..10)
            .map(|t| sample(t, 0.02 + 0.02 * (t % 3) as f32))
            .collect();
        let loud = |t: Pts| Some(0.1 * ((t.0 / 1_000_000_000) % 3) as f32);
        let r = correlation(&faces, &loud, Pts(0), Pts(10_000_000_000)).unwrap();
        assert!(r > 0.99, "{r}");
        let against = |t: Pts| Some(0.3 - 0.1 * ((t.0 / 1_000_000_000) % 3) as f32);
        assert!(correlation(&faces, &against, Pts(0), Pts(10_000_000_000)).unwrap() < -0.99);
    }

    #[test]
    fn a_closed_mouth_through_speech_is_flagged_a_moving_one_is_not() {
        let p = LipSyncParams::default();
        let moving: Vec<_> = (0..20)
            .map(|t| sample(t, if t % 2 == 0 { 0.02 } else { 0.2 }))
            .collect();
        assert!(detect(&moving, |_| true, |_| Some(0.1), &p).is_empty());
        let closed: Vec<_> = (0..20)
            .map(|t| {
                sample(
                    t,
                    if t >= 8 {
                        0.02
                    } else if t % 2 == 0 {
                        0.1
                    } else {
                        0.3
                    },
                )
            })
            .collect();
        let f = detect(&closed, |_| true, |_| Some(0.1), &p);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].start, Pts(8_000_000_000));
        // A mouth that never moves has no correlation with the voice.
        assert_eq!(f[0].correlation, 0.0);
        // A mouth that barely opens but moves with the voice is the speaker's.
        let small: Vec<_> = (0..20)
            .map(|t| sample(t, 0.01 + 0.005 * (t % 4) as f32))
            .collect();
        let with_voice = |t: Pts| Some(0.05 * ((t.0 / 1_000_000_000) % 4) as f32);
        assert!(detect(&small, |_| true, with_voice, &p).is_empty());
        let against_voice = |t: Pts| Some(0.05 * (3 - (t.0 / 1_000_000_000) % 4) as f32);
        assert_eq!(detect(&small, |_| true, against_voice, &p).len(), 1);
        // A small mouth that moves (0.01–0.05), out of step with the voice at one frame per
        // second, is a small-mouthed speaker, not a closed mouth.
        let small_moving: Vec<_> = (0..20)
            .map(|t| sample(t, 0.01 + 0.01 * (t % 5) as f32))
            .collect();
        assert!(detect(&small_moving, |_| true, |_| Some(0.1), &p).is_empty());
        // A mouth held still, though not closed (a smile), through speech is not speaking.
        let held: Vec<_> = (0..20)
            .map(|t| sample(t, 0.15 + 0.002 * (t % 3) as f32))
            .collect();
        assert_eq!(detect(&held, |_| true, |_| Some(0.1), &p).len(), 1);
        // No speech: a closed mouth is just listening.
        assert!(detect(&closed, |_| false, |_| Some(0.1), &p).is_empty());
    }
}
