//! Frozen and looping camera detection from sampled frames.
//!
//! Two per-frame signatures, computed in parallel ([`FrameSignature::of`]):
//! - a sparse grid of raw luma pixels (every 4th pixel): camera sensor noise and codec noise make
//!   consecutive live frames differ by ≥ 1 grey level on average, while a frozen feed repeats the
//!   same decoded picture (mean difference ≈ 0). Averaging would erase that noise, so none is done.
//! - a 64×36 area-averaged thumbnail plus a 64-bit difference hash, for loop search: a replayed
//!   stretch of video reproduces earlier pictures almost exactly *while moving*, which a live
//!   person sitting in the same pose never does at this precision.
//!
//! The sequential part ([`VideoAnalyser::push`]) keeps one previous frame and a bounded ring of
//! recent thumbnails, so memory does not grow with session length.

use crate::media::{Pts, VideoFrame};
use std::collections::VecDeque;

const THUMB_W: usize = 64;
const THUMB_H: usize = 36;
const SPARSE_STEP: usize = 4;
/// Upper bound on thumbnails kept for the loop search (≈ 11 MiB), whatever the timestamps do.
const MAX_RECENT: usize = 1200;

/// Thresholds for the video detectors (policy values; defaults documented per field).
#[derive(Debug, Clone)]
pub struct VideoParams {
    /// Mean absolute luma difference (grey levels, sparse raw pixels) that a frozen span's median
    /// frame-to-frame change may always reach: identical pictures measure 0. Default 1.0.
    pub freeze_mad: f32,
    /// A frozen span's median raw change may also reach this share of the session's own median
    /// change outside frozen spans: a still frame re-encoded at a low bitrate keeps changing
    /// (1.0–1.6 grey levels, pulses of ≈ 3 at keyframes) while live video moves more (4.5–12 on
    /// the same recording). Default 0.5.
    pub freeze_relative: f32,
    /// Thumbnail (64×36 area means) change from the first frame of a span under which the
    /// picture has not moved: area means average compression and sensor noise away but keep
    /// any motion of the person or the camera. Default 0.6 grey levels.
    pub freeze_thumb_mad: f32,
    /// …or this share of the session's live thumbnail change, whichever is larger. Default 0.3.
    pub freeze_thumb_relative: f32,
    /// Shortest frozen span reported. Default 5 s.
    pub min_freeze_s: f64,
    /// Thumbnail mean absolute difference under which a frame repeats an earlier one. Default 1.5.
    pub loop_mad: f32,
    /// Thumbnail change from the previous sampled frame above which the picture is moving: only
    /// moving content repeating is a replay (a still picture repeats itself trivially). Default 0.6.
    pub loop_motion_thumb: f32,
    /// A repeat must also be this close relative to the frame's own motion (thumbnail change from
    /// the previous sampled frame). Default 0.4: replays sampled 0.1 s off the original measure
    /// 0.08–0.37 of their motion, a live portrait hovering around one pose 0.4–0.9.
    pub loop_motion_ratio: f32,
    /// A loop must repeat frames at least this far back (so slow motion is not a loop). Default 5 s.
    pub loop_min_lag_s: f64,
    /// How far back loops are searched; bounds memory. Default 600 s.
    pub loop_window_s: f64,
    /// Shortest repeated span reported. Default 4 s.
    pub min_loop_s: f64,
}

impl Default for VideoParams {
    fn default() -> Self {
        VideoParams {
            freeze_mad: 1.0,
            freeze_relative: 0.5,
            freeze_thumb_mad: 0.6,
            freeze_thumb_relative: 0.3,
            min_freeze_s: 5.0,
            loop_mad: 1.5,
            loop_motion_thumb: 0.6,
            loop_motion_ratio: 0.4,
            loop_min_lag_s: 5.0,
            loop_window_s: 600.0,
            min_loop_s: 4.0,
        }
    }
}

/// Per-frame signatures; computing them is the parallel part of the video analyser.
#[derive(Debug, Clone)]
pub struct FrameSignature {
    pub pts: Pts,
    pub index: u64,
    sparse: Vec<u8>,
    thumb: Vec<f32>,
    dhash: u64,
    /// Mean luma 0–255 (for the low-light quality check).
    pub mean_luma: f32,
}

impl FrameSignature {
    pub fn of(frame: &VideoFrame) -> Self {
        let (w, h) = (frame.width as usize, frame.height as usize);
        let mut sparse = Vec::with_capacity((w / SPARSE_STEP + 1) * (h / SPARSE_STEP + 1));
        let mut sum = 0u64;
        for y in (0..h).step_by(SPARSE_STEP) {
            let row = &frame.y[y * w..(y + 1) * w];
            for x in (0..w).step_by(SPARSE_STEP) {
                sparse.push(row[x]);
                sum += row[x] as u64;
            }
        }
        let mean_luma = if sparse.is_empty() {
            0.0
        } else {
            sum as f32 / sparse.len() as f32
        };
        let thumb = area_average(&frame.y, w, h, THUMB_W, THUMB_H);
        let small = area_average(&frame.y, w, h, 9, 8);
        let mut dhash = 0u64;
        for r in 0..8 {
            for c in 0..8 {
                dhash = (dhash << 1) | (small[r * 9 + c] < small[r * 9 + c + 1]) as u64;
            }
        }
        FrameSignature {
            pts: frame.pts,
            index: frame.index,
            sparse,
            thumb,
            dhash,
            mean_luma,
        }
    }
}

/// Box-filter downscale of a luma plane to `tw`×`th` cells (each cell the mean of its pixels).
fn area_average(y: &[u8], w: usize, h: usize, tw: usize, th: usize) -> Vec<f32> {
    let mut out = vec![0f32; tw * th];
    if w == 0 || h == 0 {
        return out;
    }
    for (r, out_row) in out.chunks_mut(tw).enumerate() {
        let (y0, y1) = (r * h / th, ((r + 1) * h / th).max(r * h / th + 1).min(h));
        for (c, cell) in out_row.iter_mut().enumerate() {
            let (x0, x1) = (c * w / tw, ((c + 1) * w / tw).max(c * w / tw + 1).min(w));
            let mut s = 0u32;
            for yy in y0..y1 {
                s += y[yy * w + x0..yy * w + x1]
                    .iter()
                    .map(|&v| v as u32)
                    .sum::<u32>();
            }
            *cell = s as f32 / ((y1 - y0) * (x1 - x0)) as f32;
        }
    }
    out
}

fn mad_u8(a: &[u8], b: &[u8]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return f32::INFINITY;
    }
    let s: u64 = a.iter().zip(b).map(|(&x, &y)| x.abs_diff(y) as u64).sum();
    s as f32 / a.len() as f32
}

fn mad_f32(a: &[f32], b: &[f32]) -> f32 {
    let s: f32 = a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum();
    s / a.len() as f32
}

/// A detected span, before scoring turns it into a report event.
#[derive(Debug, Clone, PartialEq)]
pub enum VideoFinding {
    Freeze {
        start: Pts,
        end: Pts,
        frames: u64,
        /// Largest and median raw frame-to-frame change inside the span (grey levels).
        max_mad: f32,
        median_mad: f32,
        /// The session's median raw change outside frozen spans: what live video measures here.
        session_mad: f32,
        /// Largest thumbnail change from the span's first frame.
        max_thumb_mad: f32,
    },
    Loop {
        start: Pts,
        end: Pts,
        /// Start of the earlier span being repeated.
        source_start: Pts,
        frames: u64,
        mean_mad: f32,
    },
}

struct Recent {
    pts: Pts,
    thumb: Vec<f32>,
    dhash: u64,
}

struct OpenLoop {
    start: Pts,
    end: Pts,
    source_start: Pts,
    frames: u64,
    mad_sum: f32,
}

/// A run of frames whose thumbnail stays within `freeze_thumb_mad` of its first frame's.
struct StillRun {
    anchor: Vec<f32>,
    start: Pts,
    end: Pts,
    frames: u64,
    /// Raw changes of the frames after the first (bounded by the span: at most one per sampled
    /// frame of one frozen stretch).
    mads: Vec<f32>,
    max_thumb: f32,
}

/// A still run long enough to report, judged against the session's motion at the end.
struct Candidate {
    start: Pts,
    end: Pts,
    frames: u64,
    max_mad: f32,
    median_mad: f32,
    max_thumb: f32,
}

/// Sequential state of the video analyser; feed it signatures in index order.
pub struct VideoAnalyser {
    params: VideoParams,
    prev: Option<FrameSignature>,
    still: Option<StillRun>,
    /// Moving average of the thumbnail change outside still runs: the session's live motion.
    live_thumb: Option<f32>,
    candidates: Vec<Candidate>,
    recent: VecDeque<Recent>,
    open_loop: Option<OpenLoop>,
    findings: Vec<VideoFinding>,
    /// (pts, motion = MAD to the previous frame, mean luma) per frame, for the timeline.
    pub per_frame: Vec<(Pts, f32, f32)>,
    interval_s: f64,
}

impl VideoAnalyser {
    /// `interval_s` is the nominal sampling interval until the real spacing of frames is seen; it
    /// tells consecutive sampled frames apart from gaps.
    pub fn new(params: VideoParams, interval_s: f64) -> Self {
        VideoAnalyser {
            params,
            prev: None,
            still: None,
            live_thumb: None,
            candidates: Vec::new(),
            recent: VecDeque::new(),
            open_loop: None,
            findings: Vec::new(),
            per_frame: Vec::new(),
            interval_s,
        }
    }

    pub fn push(&mut self, sig: FrameSignature) {
        let (motion, thumb_motion) = match &self.prev {
            Some(p) => (
                mad_u8(&p.sparse, &sig.sparse),
                mad_f32(&p.thumb, &sig.thumb),
            ),
            None => (f32::NAN, f32::NAN),
        };
        self.per_frame.push((sig.pts, motion, sig.mean_luma));
        // The real spacing of sampled frames (keyframe spacing, stream fps) rather than the
        // nominal one.
        if let Some(p) = &self.prev
            && sig.pts > p.pts
        {
            self.interval_s = sig.pts.as_secs_f64() - p.pts.as_secs_f64();
        }
        self.track_still(&sig, motion, thumb_motion);
        // Loop: only moving pictures can be evidence of a replay; compression noise on a still
        // picture is not motion.
        let moving = thumb_motion.is_finite() && thumb_motion > self.params.loop_motion_thumb;
        // A replay reproduces an earlier frame far more closely than the picture moves from one
        // sampled frame to the next; a live person hovering around one pose only comes close.
        let matched = if moving { self.best_match(&sig) } else { None }
            .filter(|(d, _)| *d <= self.params.loop_motion_ratio * thumb_motion);
        tracing::debug!(
            t = sig.pts.as_secs_f64(),
            motion,
            thumb_motion,
            loop_match = matched.map(|m| m.0),
            loop_source = matched.map(|m| m.1.as_secs_f64()),
            nearest = self.nearest_earlier(&sig),
            "video frame"
        );
        self.extend_loop(&sig, matched);
        self.remember(&sig);
        self.prev = Some(sig);
    }

    /// Freeze candidates: runs whose thumbnail stays within `freeze_thumb_mad` of the run's
    /// first frame.
    fn track_still(&mut self, sig: &FrameSignature, motion: f32, thumb_motion: f32) {
        // A still picture re-encoded at a very low bitrate keeps converging (its thumbnail
        // drifts by ≈ 0.8 a second where the live picture moved by 3–4): the limit follows the
        // session's own live motion, and the drift from the run's first frame stays bounded.
        let limit = self
            .params
            .freeze_thumb_mad
            .max(self.params.freeze_thumb_relative * self.live_thumb.unwrap_or(0.0));
        if let Some(run) = &mut self.still {
            let d = mad_f32(&run.anchor, &sig.thumb);
            if thumb_motion <= limit && d <= 3.0 * limit {
                run.end = sig.pts;
                run.frames += 1;
                run.mads.push(motion);
                run.max_thumb = run.max_thumb.max(d);
                return;
            }
            self.close_still();
        }
        if thumb_motion.is_finite() {
            self.live_thumb = Some(match self.live_thumb {
                Some(m) => 0.9 * m + 0.1 * thumb_motion,
                None => thumb_motion,
            });
        }
        let Some(prev) = &self.prev else { return };
        if thumb_motion <= limit {
            self.still = Some(StillRun {
                anchor: prev.thumb.clone(),
                start: prev.pts,
                end: sig.pts,
                frames: 2,
                mads: vec![motion],
                max_thumb: thumb_motion,
            });
        }
    }

    fn close_still(&mut self) {
        let Some(mut run) = self.still.take() else {
            return;
        };
        if run.end.as_secs_f64() - run.start.as_secs_f64() < self.params.min_freeze_s - 1e-9 {
            return;
        }
        let max_mad = run.mads.iter().copied().fold(0f32, f32::max);
        let median_mad = median(&mut run.mads);
        self.candidates.push(Candidate {
            start: run.start,
            end: run.end,
            frames: run.frames,
            max_mad,
            median_mad,
            max_thumb: run.max_thumb,
        });
    }

    /// The closest earlier thumbnail at least `loop_min_lag_s` back, if it repeats this frame.
    fn best_match(&self, sig: &FrameSignature) -> Option<(f32, Pts)> {
        let min_lag = Pts::from_secs_f64(self.params.loop_min_lag_s);
        let mut best: Option<(f32, Pts)> = None;
        for r in &self.recent {
            if sig.pts.0.saturating_sub(r.pts.0) < min_lag.0 {
                continue;
            }
            if (r.dhash ^ sig.dhash).count_ones() > 6 {
                continue;
            }
            let d = mad_f32(&r.thumb, &sig.thumb);
            if d <= self.params.loop_mad && best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, r.pts));
            }
        }
        best
    }

    /// Thumbnail distance to the closest earlier frame at least `loop_min_lag_s` back, for the
    /// debug log the loop threshold is calibrated on.
    fn nearest_earlier(&self, sig: &FrameSignature) -> Option<f32> {
        let min_lag = Pts::from_secs_f64(self.params.loop_min_lag_s);
        self.recent
            .iter()
            .filter(|r| sig.pts.0.saturating_sub(r.pts.0) >= min_lag.0)
            .map(|r| mad_f32(&r.thumb, &sig.thumb))
            .min_by(f32::total_cmp)
    }

    /// A replay shows earlier pictures at a constant lag: a match continues the open run when
    /// its lag agrees with the run's within one sampling interval, and a frame or two without a
    /// match (fast motion sampled between the earlier frames) does not break it.
    fn extend_loop(&mut self, sig: &FrameSignature, matched: Option<(f32, Pts)>) {
        let interval = Pts::from_secs_f64(self.interval_s);
        let lag = |t: Pts, src: Pts| t.0 as i128 - src.0 as i128;
        match (matched, self.open_loop.as_mut()) {
            (Some((d, src)), Some(open))
                if (lag(sig.pts, src) - lag(open.start, open.source_start)).abs()
                    <= interval.0 as i128
                    && sig.pts.0 - open.end.0 <= 2 * interval.0 + interval.0 / 2 =>
            {
                open.end = sig.pts;
                open.frames += 1;
                open.mad_sum += d;
            }
            (Some((d, src)), _) => {
                self.close_loop();
                self.open_loop = Some(OpenLoop {
                    start: sig.pts,
                    end: sig.pts,
                    source_start: src,
                    frames: 1,
                    mad_sum: d,
                });
            }
            (None, Some(open)) if sig.pts.0 - open.end.0 < 2 * interval.0 => {}
            (None, _) => self.close_loop(),
        }
    }

    /// Bounded ring of recent thumbnails for the loop search: by time and by count (timestamps
    /// that do not advance must not grow it).
    fn remember(&mut self, sig: &FrameSignature) {
        let window = Pts::from_secs_f64(self.params.loop_window_s);
        while self
            .recent
            .front()
            .is_some_and(|r| sig.pts.0.saturating_sub(r.pts.0) > window.0)
        {
            self.recent.pop_front();
        }
        while self.recent.len() >= MAX_RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(Recent {
            pts: sig.pts,
            thumb: sig.thumb.clone(),
            dhash: sig.dhash,
        });
    }

    fn close_loop(&mut self) {
        if let Some(open) = self.open_loop.take() {
            // A run's span counts the last frame's own interval, so N frames cover N intervals.
            let span = open.end.as_secs_f64() - open.start.as_secs_f64() + self.interval_s;
            if span >= self.params.min_loop_s - 1e-9 && open.frames >= 3 {
                self.findings.push(VideoFinding::Loop {
                    start: open.start,
                    end: open.end,
                    source_start: open.source_start,
                    frames: open.frames,
                    mean_mad: open.mad_sum / open.frames as f32,
                });
            }
        }
    }

    /// Still runs become freezes when their raw change is the session's compression noise, not
    /// its live motion: at most `freeze_mad`, or `freeze_relative` of the median change outside
    /// them (a wide, calm shot whose thumbnail hardly moves still changes like live video).
    fn judge_candidates(&mut self) {
        let inside = |t: Pts| self.candidates.iter().any(|c| t > c.start && t <= c.end);
        let mut outside: Vec<f32> = self
            .per_frame
            .iter()
            .filter(|(t, m, _)| m.is_finite() && !inside(*t))
            .map(|(_, m, _)| *m)
            .collect();
        let session_mad = median(&mut outside);
        let limit = self
            .params
            .freeze_mad
            .max(self.params.freeze_relative * session_mad);
        for c in std::mem::take(&mut self.candidates) {
            if c.median_mad <= limit {
                self.findings.push(VideoFinding::Freeze {
                    start: c.start,
                    end: c.end,
                    frames: c.frames,
                    max_mad: c.max_mad,
                    median_mad: c.median_mad,
                    session_mad,
                    max_thumb_mad: c.max_thumb,
                });
            }
        }
    }

    /// Closes open spans and returns the findings in time order.
    pub fn finish(mut self) -> (Vec<VideoFinding>, Vec<(Pts, f32, f32)>) {
        self.close_still();
        self.close_loop();
        self.judge_candidates();
        let mut f = self.findings;
        f.sort_by_key(|x| match x {
            VideoFinding::Freeze { start, .. } | VideoFinding::Loop { start, .. } => *start,
        });
        (f, self.per_frame)
    }
}

/// Median of finite values (0 when there are none).
fn median(v: &mut [f32]) -> f32 {
    v.sort_by(f32::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey frame (neutral chroma) from its luma plane.
    fn luma_frame(index: u64, pts_s: f64, w: u32, h: u32, y: Vec<u8>) -> VideoFrame {
        let chroma = ((w / 2) * (h / 2)) as usize;
        VideoFrame {
            pts: Pts::from_secs_f64(pts_s),
            index,
            width: w,
            height: h,
            colour: Default::default(),
            y,
            u: vec![128; chroma],
            v: vec![128; chroma],
        }
    }

    fn frame(index: u64, pts_s: f64, seed: u64) -> VideoFrame {
        let (w, h) = (64u32, 48u32);
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let y = (0..w * h)
            .map(|i| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
                ((i % w) as u8)
                    .wrapping_mul(3)
                    .wrapping_add((seed as u8).wrapping_mul(23))
                    .wrapping_add((s >> 60) as u8)
            })
            .collect();
        luma_frame(index, pts_s, w, h, y)
    }

    #[test]
    fn identical_frames_for_six_seconds_are_a_freeze_noisy_frames_are_not() {
        let mut a = VideoAnalyser::new(VideoParams::default(), 1.0);
        for i in 0..20u64 {
            let seed = if (5..=11).contains(&i) { 5 } else { i };
            a.push(FrameSignature::of(&frame(i, i as f64, seed)));
        }
        let (f, _) = a.finish();
        assert_eq!(f.len(), 1, "{f:?}");
        match &f[0] {
            VideoFinding::Freeze { start, end, .. } => {
                assert_eq!(start.as_secs_f64(), 5.0);
                assert_eq!(end.as_secs_f64(), 11.0);
            }
            other => panic!("expected a freeze, got {other:?}"),
        }
    }

    #[test]
    fn a_short_freeze_is_not_reported() {
        let mut a = VideoAnalyser::new(VideoParams::default(), 1.0);
        for i in 0..20u64 {
            let seed = if (5..=8).contains(&i) { 5 } else { i };
            a.push(FrameSignature::of(&frame(i, i as f64, seed)));
        }
        assert!(a.finish().0.is_empty());
    }

    /// A 640×360 frame of `seed`'s picture (a gradient whose phase the seed sets) with
    /// symmetric per-pixel noise of up to ±`noise` grey levels drawn from `noise_seed` (an
    /// encoder refining a still picture, or sensor noise).
    fn noisy(index: u64, pts_s: f64, seed: u64, noise: u8, noise_seed: u64) -> VideoFrame {
        let (w, h) = (640u32, 360u32);
        let mut s = noise_seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let y = (0..w * h)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let (x, r) = ((i % w) as f64, (i / w) as f64);
                let (a, b) = (seed as f64 * 0.37, seed as f64 * 0.21);
                let base = 128.0 + 60.0 * (x / 23.0 + a).sin() * (r / 29.0 - b).cos();
                let n = (s % (2 * noise as u64 + 1)) as f64 - noise as f64;
                (base + n).clamp(0.0, 255.0) as u8
            })
            .collect();
        luma_frame(index, pts_s, w, h, y)
    }

    #[test]
    fn a_still_frame_with_compression_noise_is_a_freeze_not_a_loop() {
        let mut a = VideoAnalyser::new(VideoParams::default(), 1.0);
        for i in 0..40u64 {
            // 10–30 s: one picture, re-encoded: every frame differs by ≈ 1.5 grey levels, more
            // at "keyframes" (every 5th); outside it the picture moves every second.
            let f = if (10..=30).contains(&i) {
                noisy(i, i as f64, 10, if i % 5 == 0 { 6 } else { 3 }, i)
            } else {
                noisy(i, i as f64, i, 3, i)
            };
            a.push(FrameSignature::of(&f));
        }
        let (f, _) = a.finish();
        assert_eq!(f.len(), 1, "{f:?}");
        match &f[0] {
            VideoFinding::Freeze {
                start,
                end,
                median_mad,
                session_mad,
                ..
            } => {
                assert_eq!((start.as_secs_f64(), end.as_secs_f64()), (10.0, 30.0));
                assert!(*median_mad > 1.0, "{median_mad}");
                assert!(*session_mad > 2.0 * median_mad, "{session_mad}");
            }
            other => panic!("expected a freeze, got {other:?}"),
        }
    }

    #[test]
    fn moving_pictures_replayed_are_a_loop() {
        let mut a = VideoAnalyser::new(VideoParams::default(), 1.0);
        // 0–11 s live; 12–22 s replays 1–11 s (same pictures, fresh noise).
        for i in 0..24u64 {
            let seed = if (12..=22).contains(&i) { i - 11 } else { i };
            a.push(FrameSignature::of(&noisy(i, i as f64, seed, 2, i)));
        }
        let (f, _) = a.finish();
        assert!(
            f.iter().any(
                |x| matches!(x, VideoFinding::Loop { start, .. } if start.as_secs_f64() == 12.0)
            ),
            "{f:?}"
        );
        assert!(
            !f.iter().any(|x| matches!(x, VideoFinding::Freeze { .. })),
            "{f:?}"
        );
    }

    #[test]
    fn area_average_of_constant_plane_is_constant() {
        let y = vec![77u8; 100 * 50];
        let t = area_average(&y, 100, 50, 64, 36);
        assert!(t.iter().all(|&v| (v - 77.0).abs() < 1e-6));
    }
}
