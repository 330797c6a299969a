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
    /// Mean absolute luma difference (grey levels, sparse raw pixels) under which two consecutive
    /// sampled frames count as the same picture. Default 1.0 (live fixtures: ≥ 8; re-encoded frozen frames: 0.3–0.5).
    pub freeze_mad: f32,
    /// Shortest frozen span reported. Default 5 s.
    pub min_freeze_s: f64,
    /// Thumbnail mean absolute difference under which a frame repeats an earlier one. Default 1.5.
    pub loop_mad: f32,
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
            min_freeze_s: 5.0,
            loop_mad: 1.5,
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
        max_mad: f32,
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
    /// pts of the matched earlier frame for the latest frame in the run.
    last_source: Pts,
    frames: u64,
    mad_sum: f32,
}

/// Sequential state of the video analyser; feed it signatures in index order.
pub struct VideoAnalyser {
    params: VideoParams,
    prev: Option<FrameSignature>,
    freeze_run: Option<(Pts, Pts, u64, f32)>,
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
            freeze_run: None,
            recent: VecDeque::new(),
            open_loop: None,
            findings: Vec::new(),
            per_frame: Vec::new(),
            interval_s,
        }
    }

    pub fn push(&mut self, sig: FrameSignature) {
        let motion = self
            .prev
            .as_ref()
            .map(|p| mad_u8(&p.sparse, &sig.sparse))
            .unwrap_or(f32::NAN);
        self.per_frame.push((sig.pts, motion, sig.mean_luma));
        // The real spacing of sampled frames (keyframe spacing, stream fps) rather than the
        // nominal one.
        if let Some(p) = &self.prev
            && sig.pts > p.pts
        {
            self.interval_s = sig.pts.as_secs_f64() - p.pts.as_secs_f64();
        }

        // Freeze: a run of consecutive frames each (nearly) identical to the one before.
        if motion.is_finite() && motion <= self.params.freeze_mad {
            let prev_pts = self.prev.as_ref().map(|p| p.pts).unwrap_or(sig.pts);
            match &mut self.freeze_run {
                Some((_, end, n, max)) => {
                    *end = sig.pts;
                    *n += 1;
                    *max = max.max(motion);
                }
                None => self.freeze_run = Some((prev_pts, sig.pts, 2, motion)),
            }
        } else {
            self.close_freeze();
        }

        // Loop: only moving frames can be evidence of a replay.
        let moving = motion.is_finite() && motion > self.params.freeze_mad;
        let mut matched = None;
        if moving {
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
            matched = best;
        }
        match (matched, self.open_loop.as_mut()) {
            (Some((d, src)), Some(open))
                if src > open.last_source
                    && src.0 - open.last_source.0
                        <= Pts::from_secs_f64(self.interval_s * 2.5).0 =>
            {
                open.end = sig.pts;
                open.last_source = src;
                open.frames += 1;
                open.mad_sum += d;
            }
            (Some((d, src)), _) => {
                self.close_loop();
                self.open_loop = Some(OpenLoop {
                    start: sig.pts,
                    end: sig.pts,
                    source_start: src,
                    last_source: src,
                    frames: 1,
                    mad_sum: d,
                });
            }
            (None, _) => self.close_loop(),
        }

        // Bounded ring of recent thumbnails for the loop search.
        let window = Pts::from_secs_f64(self.params.loop_window_s);
        while self
            .recent
            .front()
            .is_some_and(|r| sig.pts.0.saturating_sub(r.pts.0) > window.0)
        {
            self.recent.pop_front();
        }
        // And by count: timestamps that do not advance must not grow the ring.
        while self.recent.len() >= MAX_RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(Recent {
            pts: sig.pts,
            thumb: sig.thumb.clone(),
            dhash: sig.dhash,
        });
        self.prev = Some(sig);
    }

    fn close_freeze(&mut self) {
        if let Some((start, end, frames, max_mad)) = self.freeze_run.take()
            && (end.as_secs_f64() - start.as_secs_f64()) >= self.params.min_freeze_s - 1e-9
        {
            self.findings.push(VideoFinding::Freeze {
                start,
                end,
                frames,
                max_mad,
            });
        }
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

    /// Closes open spans and returns the findings in time order.
    pub fn finish(mut self) -> (Vec<VideoFinding>, Vec<(Pts, f32, f32)>) {
        self.close_freeze();
        self.close_loop();
        let mut f = self.findings;
        f.sort_by_key(|x| match x {
            VideoFinding::Freeze { start, .. } | VideoFinding::Loop { start, .. } => *start,
        });
        (f, self.per_frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        VideoFrame {
            pts: Pts::from_secs_f64(pts_s),
            index,
            width: w,
            height: h,
            colour: Default::default(),
            y,
            u: vec![128; 32 * 24],
            v: vec![128; 32 * 24],
        }
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

    #[test]
    fn area_average_of_constant_plane_is_constant() {
        let y = vec![77u8; 100 * 50];
        let t = area_average(&y, 100, 50, 64, 36);
        assert!(t.iter().all(|&v| (v - 77.0).abs() < 1e-6));
    }
}
