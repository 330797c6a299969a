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
//! Between samples the mouth is followed at the glimpse rate (ten frames a second, interval
//! sampling only): [`MouthTrace`] measures how dark the mouth region of each glimpse's thumbnail
//! is, in the box the latest sampled frame's landmarks put it, and [`detect_unsynced`] finds
//! speech over which that darkness does not rise and fall with the voice's loudness — a mouth
//! that moves, but out of step with the words (a dubbed or delayed voice, someone else
//! answering). A closed or still mouth is found by [`detect`] from the sampled frames alone.
//!
//! Assumes the media is the candidate's own stream (a meeting bot's per-participant track): in a
//! mixed recording the interviewer's speech would coincide with the candidate listening.

use crate::analysis::face::{FaceSample, MouthBox};
use crate::media::{LumaThumb, Pts};

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
    /// Window over which the mouth's darkness is correlated with the voice's loudness, seconds
    /// (stepped by one second). Default 8.
    pub sync_window_s: f64,
    /// A window is out of step when that correlation, at no offset, is below this. Default
    /// 0.25: on the corpus's calibration half (`scripts/accuracy`), speech windows of clean
    /// recordings correlate at 0.41 (1st percentile) to 0.96, windows inside a delayed or
    /// another speaker's mouth track at −0.25 to 0.26.
    pub sync_max_corr: f32,
    /// A mismatch takes at least this many out-of-step windows in a row (10 s at the defaults).
    /// Default 3.
    pub sync_min_windows: usize,
    /// Offsets searched for the evidence of where the mouth does match the voice, seconds.
    /// Default 1.
    pub sync_max_offset_s: f64,
    /// A window is judged only when at least this share of its seconds is speech… Default 0.5.
    pub sync_min_speech: f64,
    /// …and the mouth was measured in at least this share of its glimpse slots (so sources
    /// under about 8 frames a second are not judged). Default 0.6.
    pub sync_min_coverage: f64,
    /// A closed-mouth span over which the mouth's darkness at the glimpse rate correlates with
    /// the voice at least this much is a small mouth that speaks, not a closed one. Default 0.4:
    /// the 1st percentile of clean speech windows on the calibration half (0.41), above every
    /// window inside a mismatch there (≤ 0.26).
    pub sync_follows_corr: f32,
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
            sync_window_s: 8.0,
            sync_max_corr: 0.25,
            sync_min_windows: 3,
            sync_max_offset_s: 1.0,
            sync_min_speech: 0.5,
            sync_min_coverage: 0.6,
            sync_follows_corr: 0.4,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LipSyncFinding {
    pub start: Pts,
    pub end: Pts,
    /// Closed-mouth frames during speech in the span.
    pub frames: u64,
    /// Largest mouth openness seen in the span.
    pub max_mouth: f32,
    /// Smallest mouth openness seen in the span.
    pub min_mouth: f32,
    /// Pearson correlation of mouth openness with speech loudness over the span's frames (0 when
    /// the mouth does not move at all): evidence only, see [`correlation`].
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
    let pairs = faces
        .iter()
        .filter(|f| f.pts >= start && f.pts <= end && f.faces > 0)
        .filter_map(|f| Some((f.mouth_open? as f64, loudness(f.pts)? as f64)));
    pearson(pairs, 4)
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

/// The mouth's darkness over time, one value per glimpse that came after a sampled frame with
/// landmarks. Darkness, not openness: landmarks are too costly ten times a second, while an open
/// mouth shows its dark inside whatever the face. Sixteen bytes per glimpse (≈ 0.6 MB per hour),
/// like the other per-second series the session keeps; no image is kept.
#[derive(Debug, Clone, Default)]
pub struct MouthTrace {
    mouth: Option<MouthBox>,
    points: Vec<(Pts, f32)>,
}

impl MouthTrace {
    /// A sampled frame's mouth (`None` without a face or landmarks): the box the glimpses up to
    /// the next sample are read in. Heads move a few pixels in a second; the box is wide enough.
    pub fn sample(&mut self, mouth: Option<MouthBox>) {
        self.mouth = mouth;
    }

    pub fn glimpse(&mut self, pts: Pts, thumb: &LumaThumb) {
        if let Some(d) = self.mouth.and_then(|m| darkness(thumb, &m)) {
            self.points.push((pts, d));
        }
    }

    pub fn points(&self) -> &[(Pts, f32)] {
        &self.points
    }
}

/// Mean of max(0, p90 − y) over a box 1.4 mouth widths wide and one high around the mouth: how
/// far its pixels fall below its own bright part (lips and skin), so lighting and skin tone
/// shift it little while an open mouth's dark inside raises it. `None` when the box is off the
/// picture or under 3×3 pixels.
fn darkness(t: &LumaThumb, m: &MouthBox) -> Option<f32> {
    let s = t.scale as f32;
    let (cx, cy, w) = (m.cx / s, m.cy / s, m.width / s);
    let clamp = |v: f32, hi: usize| v.round().clamp(0.0, hi as f32) as usize;
    let (x0, x1) = (clamp(cx - 0.7 * w, t.width), clamp(cx + 0.7 * w, t.width));
    let (y0, y1) = (clamp(cy - 0.5 * w, t.height), clamp(cy + 0.5 * w, t.height));
    if x1 < x0 + 3 || y1 < y0 + 3 {
        return None;
    }
    let mut hist = [0u32; 256];
    for row in t.data[y0 * t.width..y1 * t.width].chunks(t.width) {
        for &v in &row[x0..x1] {
            hist[v as usize] += 1;
        }
    }
    let n = ((x1 - x0) * (y1 - y0)) as u32;
    // Nearest rank: the smallest level with at least 90 % of the pixels at or below it.
    let rank = (n * 9).div_ceil(10);
    let mut seen = 0;
    let p90 = hist
        .iter()
        .position(|&c| {
            seen += c;
            seen >= rank
        })
        .unwrap_or(255);
    let below: u32 = (0..p90).map(|v| hist[v] * (p90 - v) as u32).sum();
    Some(below as f32 / n as f32)
}

/// Speech over which the mouth moves out of step with the voice.
#[derive(Debug, Clone, PartialEq)]
pub struct UnsyncedFinding {
    pub start: Pts,
    pub end: Pts,
    /// Out-of-step windows in the run.
    pub windows: usize,
    /// Median over those windows of the mouth–voice correlation at no offset.
    pub correlation: f32,
    /// Median offset at which the mouth correlates best with the voice (positive: the mouth
    /// moves after the voice), seconds, and that best correlation: evidence of a delayed voice
    /// when high, of someone else's when low.
    pub best_offset_s: f32,
    pub best_offset_correlation: f32,
}

/// Out-of-step speech: runs of at least `sync_min_windows` windows whose mouth–voice
/// correlation is below `sync_max_corr`. Windows with too little speech or mouth data neither
/// extend nor break a run; a run also ends at a gap longer than a window, and runs whose spans
/// overlap are merged. Each finding spans
/// its windows less a quarter window at each end (a change lies in a window's middle half by
/// the time the window's correlation has dropped).
pub fn detect_unsynced(
    trace: &[(Pts, f32)],
    speaking: impl Fn(Pts) -> bool,
    loudness: impl Fn(Pts) -> Option<f32>,
    p: &LipSyncParams,
) -> Vec<UnsyncedFinding> {
    let Some(&(last, _)) = trace.last() else {
        return Vec::new();
    };
    let win = p.sync_window_s;
    let mut runs: Vec<Vec<Window>> = Vec::new();
    let mut run: Vec<Window> = Vec::new();
    // Runs whose spans overlap (one window in step between them) are one mismatch.
    let mut close = |run: &mut Vec<Window>| {
        if run.len() >= p.sync_min_windows {
            match runs.last_mut() {
                Some(prev) if prev[prev.len() - 1].0 + win * 0.75 >= run[0].0 + win / 4.0 => {
                    prev.append(run)
                }
                _ => runs.push(std::mem::take(run)),
            }
        }
        run.clear();
    };
    let mut from = 0usize;
    let mut w0 = trace[0].0.as_secs_f64().floor();
    while w0 + win <= last.as_secs_f64() + 0.05 {
        while trace[from].0.as_secs_f64() < w0 {
            from += 1;
        }
        let n = trace[from..].partition_point(|(t, _)| t.as_secs_f64() < w0 + win);
        let window = &trace[from..from + n];
        let secs = win.round() as u64;
        let speech = (0..secs)
            .filter(|k| speaking(Pts::from_secs_f64(w0 + *k as f64)))
            .count() as f64
            / secs as f64;
        let judged = speech >= p.sync_min_speech && n as f64 >= p.sync_min_coverage * win * 10.0;
        if judged {
            let (r0, best_s, best_r) = offsets(window, &loudness, p.sync_max_offset_s);
            if r0 < p.sync_max_corr {
                if run.last().is_some_and(|(s, ..)| w0 - s > win) {
                    close(&mut run);
                }
                run.push((w0, r0, best_s, best_r));
            } else {
                close(&mut run);
            }
        }
        w0 += 1.0;
    }
    close(&mut run);
    runs.iter().map(|r| unsynced_of(r, win)).collect()
}

/// A judged window: its start (s), correlation at no offset, best offset (s) and correlation there.
type Window = (f64, f32, f32, f32);

fn unsynced_of(run: &[Window], win: f64) -> UnsyncedFinding {
    let median = |f: fn(&Window) -> f32| {
        let mut v: Vec<f32> = run.iter().map(f).collect();
        v.sort_by(f32::total_cmp);
        v[v.len() / 2]
    };
    UnsyncedFinding {
        start: Pts::from_secs_f64(run[0].0 + win / 4.0),
        end: Pts::from_secs_f64(run[run.len() - 1].0 + win * 0.75),
        windows: run.len(),
        correlation: median(|w| w.1),
        best_offset_s: median(|w| w.2),
        best_offset_correlation: median(|w| w.3),
    }
}

/// Correlation of the mouth's darkness with the voice's loudness at no offset over the glimpses
/// in [start, end]; `None` with fewer than 20.
pub fn trace_correlation(
    trace: &[(Pts, f32)],
    loudness: impl Fn(Pts) -> Option<f32>,
    start: Pts,
    end: Pts,
) -> Option<f32> {
    let from = trace.partition_point(|(t, _)| *t < start);
    let to = trace.partition_point(|(t, _)| *t <= end);
    let pairs = trace[from..to]
        .iter()
        .filter_map(|&(t, m)| Some((m as f64, loudness(t)? as f64)));
    pearson(pairs, 20)
}

/// Correlation of the mouth's darkness with the voice's loudness at no offset, and the offset
/// (tenths of a second up to `max_s` either way) where it is highest, with that correlation.
fn offsets(
    window: &[(Pts, f32)],
    loudness: &impl Fn(Pts) -> Option<f32>,
    max_s: f64,
) -> (f32, f32, f32) {
    let steps = (max_s * 10.0).round() as i64;
    let at = |k: i64| {
        let pairs = window.iter().filter_map(|&(t, m)| {
            // The voice heard k tenths before the mouth's frame (k > 0: the mouth is late).
            let shifted = t.0 as i64 - k * 100_000_000;
            let v = loudness(Pts(u64::try_from(shifted).ok()?))?;
            Some((m as f64, v as f64))
        });
        pearson(pairs, 20).unwrap_or(0.0)
    };
    let rs: Vec<(i64, f32)> = (-steps..=steps).map(|k| (k, at(k))).collect();
    let r0 = rs[steps as usize].1;
    let (best_k, best_r) = rs
        .into_iter()
        .fold((0, r0), |b, c| if c.1 > b.1 { c } else { b });
    (r0, best_k as f32 / 10.0, best_r)
}

/// Pearson correlation of at least `min` pairs; 0 when either side does not vary.
fn pearson(pairs: impl Iterator<Item = (f64, f64)>, min: usize) -> Option<f32> {
    let v: Vec<(f64, f64)> = pairs.collect();
    if v.len() < min {
        return None;
    }
    let n = v.len() as f64;
    let (mx, my) = (
        v.iter().map(|p| p.0).sum::<f64>() / n,
        v.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in &v {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    if sxx < 1e-8 || syy < 1e-12 {
        return Some(0.0);
    }
    Some((sxy / (sxx * syy).sqrt()) as f32)
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

    /// Syllable-like loudness per tenth of a second: bursts of 2–4 tenths with gaps, from a
    /// fixed linear congruential sequence (so the test is deterministic).
    fn syllables(tenths: usize, seed: u64) -> Vec<f32> {
        let mut x = seed;
        let mut out = Vec::with_capacity(tenths);
        while out.len() < tenths {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let (len, loud) = (2 + (x >> 60) % 3, 0.05 + ((x >> 40) % 100) as f32 / 400.0);
            out.extend(std::iter::repeat_n(loud, len as usize));
            out.extend(std::iter::repeat_n(0.005, 1 + ((x >> 50) % 3) as usize));
        }
        out.truncate(tenths);
        out
    }

    /// A mouth trace at the glimpse rate (nine tenths in ten, as between 1 s samples) whose
    /// darkness is `mouth[k]` scaled.
    fn trace(mouth: &[f32]) -> Vec<(Pts, f32)> {
        (0..mouth.len())
            .filter(|k| k % 10 != 0)
            .map(|k| (Pts(k as u64 * 100_000_000), 2.0 + 100.0 * mouth[k]))
            .collect()
    }

    #[test]
    fn a_mouth_out_of_step_with_the_voice_is_found_and_its_offset_measured() {
        let p = LipSyncParams::default();
        let voice = syllables(400, 7);
        let loud = |t: Pts| voice.get((t.0 / 100_000_000) as usize).copied();
        // In step: nothing.
        assert!(detect_unsynced(&trace(&voice), |_| true, loud, &p).is_empty());
        // The mouth 0.7 s behind the voice from 15 s on.
        let mut late = voice.clone();
        late[157..].copy_from_slice(&voice[150..393]);
        let f = detect_unsynced(&trace(&late), |_| true, loud, &p);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!((12.0..=18.0).contains(&f[0].start.as_secs_f64()), "{f:?}");
        assert!(
            f[0].correlation < 0.25 && f[0].best_offset_correlation > 0.8,
            "{f:?}"
        );
        assert_eq!(f[0].best_offset_s, 0.7);
        // Someone else's words from 15 s on: no offset matches.
        let mut other = voice.clone();
        other[150..].copy_from_slice(&syllables(250, 99));
        let f = detect_unsynced(&trace(&other), |_| true, loud, &p);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].best_offset_correlation < 0.5, "{f:?}");
        // Without speech there is nothing to be in step with.
        assert!(detect_unsynced(&trace(&other), |_| false, loud, &p).is_empty());
    }

    #[test]
    fn a_thumbnail_shrinks_by_a_whole_factor_and_ignores_row_padding() {
        // 720 rows → factor 4; a plane 8 pixels wide with 4 bytes of padding per row.
        let (w, h, stride) = (8, 720, 12);
        let plane: Vec<u8> = (0..h * stride)
            .map(|i| {
                if i % stride >= w {
                    255
                } else {
                    (i / stride % 4 * 10) as u8
                }
            })
            .collect();
        let t = LumaThumb::of_luma(&plane, w, h, stride).unwrap();
        assert_eq!((t.scale, t.width, t.height), (4, 2, 180));
        // Rows 0..4 hold 0, 10, 20, 30: mean 15, never the padding's 255.
        assert!(t.data.iter().all(|&v| v == 15), "{:?}", &t.data[..4]);
        assert!(LumaThumb::of_luma(&plane[..plane.len() - stride], w, h, stride).is_none());
    }

    #[test]
    fn an_open_mouth_is_darker_than_a_closed_one_in_its_box() {
        let skin = vec![180u8; 64 * 48];
        let thumb = |data: Vec<u8>| LumaThumb {
            scale: 2,
            width: 64,
            height: 48,
            data,
        };
        let mut open = skin.clone();
        for y in 21..27 {
            open[y * 64 + 28..y * 64 + 36].fill(40);
        }
        // A mouth 20 thumbnail pixels wide at (32, 24), given in frame pixels (scale 2).
        let m = MouthBox {
            cx: 64.0,
            cy: 48.0,
            width: 40.0,
        };
        let closed = darkness(&thumb(skin), &m).unwrap();
        let opened = darkness(&thumb(open), &m).unwrap();
        assert_eq!(closed, 0.0);
        assert!(opened > 10.0, "{opened}");
        // Off the picture: nothing to measure.
        let away = MouthBox { cx: 500.0, ..m };
        assert!(darkness(&thumb(vec![180; 64 * 48]), &away).is_none());
    }
}
