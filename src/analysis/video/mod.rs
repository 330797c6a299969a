//! Frozen and looping camera detection from sampled frames.
//!
//! Two per-frame signatures, computed in parallel ([`FrameSignature::of`]):
//! - a sparse grid of raw luma pixels (every 4th pixel): camera sensor noise and codec noise make
//!   consecutive live frames differ by ≥ 1 grey level on average, while a frozen feed repeats the
//!   same decoded picture (mean difference ≈ 0). Averaging would erase that noise, so none is done.
//! - a 64×36 area-averaged thumbnail, for still pictures (freeze);
//! - a 32×18 [`Glimpse`], for loop search: a replayed stretch of video reproduces earlier
//!   pictures almost exactly *while moving*, which a live person sitting in the same pose never
//!   does at this precision. The frames decoded between samples contribute glimpses too
//!   ([`VideoAnalyser::push_glimpse`]), so a sample finds the very frame it repeats rather than
//!   one up to half a sampling interval away.
//!
//! The sequential part ([`VideoAnalyser::push`]) keeps one previous frame and a bounded ring of
//! recent glimpses, so memory does not grow with session length.
//!
//! Why one file of this length: the frame signatures, the glimpse ring and the freeze and loop
//! searches share the analyser's bounded state; tests are in `tests.rs`.

use crate::media::{Glimpse, Pts, VideoFrame};
use std::collections::VecDeque;

const THUMB_W: usize = 64;
const THUMB_H: usize = 36;
const SPARSE_STEP: usize = 4;
/// Upper bound on glimpses kept for the loop search (≈ 4 MiB: ten a second for ten minutes),
/// whatever the timestamps do.
const MAX_RECENT: usize = 6000;
/// Lags of one replay agree within this when the glimpses are dense: the glimpse nearest a
/// repeated frame is at most half a glimpse step (0.05 s) plus half a frame (1/30 s at 15 fps)
/// away from it. A live person swaying back and forth revisits poses at lags that wander by
/// more.
const DENSE_LAG_TOLERANCE_S: f64 = 0.12;

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
    /// Glimpse mean absolute difference under which a frame repeats an earlier one. Default 0.4:
    /// on the corpus's calibration half, replayed frames read 0.10–0.34 from the glimpses they
    /// repeat (H.264 and VP9 at 400–900 kbit/s), while a live picture's nearest glimpse in the
    /// minutes before is under 0.35 in one moving sample in ten — which is why a loop also
    /// needs three repeats at one lag. VP8 at 100 kbit/s re-codes a replay too coarsely
    /// (0.37–1.0) to be told from live video this way.
    pub loop_mad: f32,
    /// Glimpse change from the previous sampled frame above which the picture is moving: only
    /// moving content repeating is a replay (a still picture repeats itself trivially). Default 0.6.
    pub loop_motion: f32,
    /// A repeat must also be this close relative to the frame's own motion (glimpse change from
    /// the previous sampled frame). Default 0.4 (calibration replays 0.04–0.38; half of the live
    /// moving samples' nearest earlier glimpses are under 0.46).
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
            loop_mad: 0.4,
            loop_motion: 0.6,
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
    /// `None` for a frame under 32×18 pixels.
    glimpse: Option<Glimpse>,
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
        FrameSignature {
            pts: frame.pts,
            index: frame.index,
            sparse,
            thumb: area_average(&frame.y, w, h, THUMB_W, THUMB_H),
            glimpse: Glimpse::of_luma(frame.pts, &frame.y, w, h, w),
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

/// A glimpse in the loop-search ring, with what makes searching it cheap and exact.
struct Recent {
    glimpse: Glimpse,
    /// Mean of the cells: two glimpses' MAD is at least the difference of their means.
    mean: f32,
    /// Time to the previous entry of the ring: how finely a lag matched here is known.
    step_s: f64,
}

struct OpenLoop {
    start: Pts,
    end: Pts,
    source_start: Pts,
    /// How far a later repeat's lag may stray from this run's.
    lag_tolerance_s: f64,
    frames: u64,
    mad_sum: f32,
}

/// How far past the still limit a keyframe pulse jumps (out, and back), at least.
const PULSE_JUMP: f32 = 2.0;

/// A run of frames whose thumbnail stays within `freeze_thumb_mad` of its first frame's.
///
/// A still picture re-encoded at a low bitrate with sparse keyframes jumps at a keyframe: the
/// intra picture is coded coarsely (thumbnail change ≈ 1.7, as much as live motion) and the
/// frames after it converge back to the same picture within the second. So one frame that
/// breaks the run is held back: when the next frame matches the run's last still frame again,
/// the jump was such a pulse and the run goes on; otherwise the run ends at its last still frame.
/// A pulse is a jump out and back of more than [`PULSE_JUMP`] times the still limit each way:
/// calm live video that misses the limit narrowly for one sample is motion, not a keyframe.
/// (Matching a frame against any of several recent ones, or holding back two, also bridged a
/// live person's sway: 17 freezes on the calibration half's clean recordings, BENCHMARKS.md.)
struct StillRun {
    anchor: Vec<f32>,
    start: Pts,
    end: Pts,
    frames: u64,
    /// Raw changes of the frames after the first, each from the still frame before it
    /// (bounded by the span: at most one per sampled frame of one frozen stretch).
    mads: Vec<f32>,
    max_thumb: f32,
    /// The frame held back since the last still one, if any.
    held: Option<Held>,
}

/// A sample held back as a possible keyframe pulse.
struct Held {
    /// The run's last still frame (the previous sample when the pulse came): raw pixels and
    /// thumbnail. Without a held sample the last still frame is the previous one, whose changes
    /// `push` has measured already.
    last_still: (Vec<u8>, Vec<f32>),
    /// The pulse's own thumbnail change, for the live-motion average should the run end.
    thumb_motion: f32,
}

impl StillRun {
    fn new(
        first: &FrameSignature,
        second: &FrameSignature,
        motion: f32,
        thumb_motion: f32,
    ) -> Self {
        StillRun {
            anchor: first.thumb.clone(),
            start: first.pts,
            end: second.pts,
            frames: 2,
            mads: vec![motion],
            max_thumb: thumb_motion,
            held: None,
        }
    }

    /// Extends the run with `sig` (and the frame held back before it) when `sig` is within
    /// `limit` of the last still frame and within `3 × limit` of the first; after a held frame,
    /// only when `sig` also jumped back from it. `motion` and `thumb_motion` are `sig`'s changes
    /// from the previous sample.
    fn extend(&mut self, sig: &FrameSignature, motion: f32, thumb_motion: f32, limit: f32) -> bool {
        let near = match &self.held {
            None => thumb_motion,
            Some(_) if thumb_motion <= PULSE_JUMP * limit => return false,
            Some(h) => mad_f32(&h.last_still.1, &sig.thumb),
        };
        let d = mad_f32(&self.anchor, &sig.thumb);
        if near > limit || d > 3.0 * limit {
            return false;
        }
        let raw = match self.held.take() {
            None => motion,
            Some(h) => {
                self.frames += 1;
                mad_u8(&h.last_still.0, &sig.sparse)
            }
        };
        self.mads.push(raw);
        self.end = sig.pts;
        self.frames += 1;
        self.max_thumb = self.max_thumb.max(d);
        true
    }
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
        let glimpse_motion = match (&self.prev, &sig.glimpse) {
            (
                Some(FrameSignature {
                    glimpse: Some(p), ..
                }),
                Some(g),
            ) => g.distance(p),
            _ => f32::NAN,
        };
        let nearest = sig.glimpse.as_ref().and_then(|g| self.nearest_earlier(g));
        let cue = match &sig.glimpse {
            Some(g) => self.loop_cue(g, glimpse_motion, nearest),
            None => LoopCue::Nothing,
        };
        tracing::debug!(
            t = sig.pts.as_secs_f64(),
            motion,
            thumb_motion,
            glimpse_motion,
            nearest = nearest.map(|m| m.distance),
            nearest_source = nearest.map(|m| m.source.as_secs_f64()),
            loop_cue = ?cue,
            "video frame"
        );
        self.extend_loop(&sig, cue);
        if let Some(g) = &sig.glimpse {
            self.remember(g.clone());
        }
        self.prev = Some(sig);
    }

    /// A frame decoded between samples: only the loop search looks at it. Glimpses and
    /// signatures must arrive in pts order.
    pub fn push_glimpse(&mut self, glimpse: Glimpse) {
        self.remember(glimpse);
    }

    /// Freeze candidates: runs whose thumbnail stays within `freeze_thumb_mad` of the run's
    /// first frame ([`StillRun`]).
    fn track_still(&mut self, sig: &FrameSignature, motion: f32, thumb_motion: f32) {
        let limit = self.still_limit();
        if let Some(run) = &mut self.still {
            if run.extend(sig, motion, thumb_motion, limit) {
                return;
            }
            if thumb_motion > PULSE_JUMP * limit
                && run.held.is_none()
                && let Some(prev) = &self.prev
            {
                run.held = Some(Held {
                    last_still: (prev.sparse.clone(), prev.thumb.clone()),
                    thumb_motion,
                });
                return;
            }
            let held = run.held.take();
            self.close_still();
            if let Some(h) = held {
                self.note_live(h.thumb_motion);
            }
        }
        self.note_live(thumb_motion);
        let Some(prev) = &self.prev else { return };
        if thumb_motion <= limit {
            self.still = Some(StillRun::new(prev, sig, motion, thumb_motion));
        }
    }

    /// A still picture re-encoded at a very low bitrate keeps converging (its thumbnail drifts
    /// by ≈ 0.8 a second where the live picture moved by 3–4): the limit follows the session's
    /// own live motion, and the drift from the run's first frame stays bounded.
    fn still_limit(&self) -> f32 {
        self.params
            .freeze_thumb_mad
            .max(self.params.freeze_thumb_relative * self.live_thumb.unwrap_or(0.0))
    }

    fn note_live(&mut self, thumb_motion: f32) {
        if thumb_motion.is_finite() {
            self.live_thumb = Some(match self.live_thumb {
                Some(m) => 0.9 * m + 0.1 * thumb_motion,
                None => thumb_motion,
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

    /// The closest earlier glimpse at least `loop_min_lag_s` back.
    fn nearest_earlier(&self, g: &Glimpse) -> Option<LoopMatch> {
        let latest = g
            .pts
            .0
            .saturating_sub(Pts::from_secs_f64(self.params.loop_min_lag_s).0);
        let mean = glimpse_mean(g);
        let mut best: Option<LoopMatch> = None;
        for r in self.recent.iter().take_while(|r| r.glimpse.pts.0 <= latest) {
            // The MAD is at least the difference of the means: skip what cannot beat the best.
            let bound = best.map_or(f32::INFINITY, |b| b.distance);
            if (r.mean - mean).abs() >= bound {
                continue;
            }
            let d = g.distance(&r.glimpse);
            if d < bound {
                best = Some(LoopMatch {
                    distance: d,
                    source: r.glimpse.pts,
                    step_s: r.step_s,
                });
            }
        }
        best
    }

    /// What this sample says about a replay. A replay reproduces an earlier frame far more
    /// closely than the picture moves from one sample to the next; a live person hovering
    /// around one pose only comes close. It goes on at the lag it started with, so an open run
    /// is continued from the pictures at its own lag first: where the picture barely moves,
    /// the nearest earlier picture may lie a little off that lag.
    fn loop_cue(&self, g: &Glimpse, motion: f32, nearest: Option<LoopMatch>) -> LoopCue {
        let p = &self.params;
        let moving = motion > p.loop_motion;
        let repeats = |m: &LoopMatch| {
            moving && m.distance <= p.loop_mad && m.distance <= p.loop_motion_ratio * motion
        };
        if let Some(m) = self
            .open_loop
            .as_ref()
            .and_then(|o| self.match_at_lag(g, o))
        {
            if repeats(&m) {
                return LoopCue::Repeats(m);
            }
            if !moving && m.distance <= p.loop_mad {
                return LoopCue::Holds;
            }
        }
        match nearest {
            Some(m) if repeats(&m) => LoopCue::Repeats(m),
            _ => LoopCue::Nothing,
        }
    }

    /// The closest glimpse at the open run's lag (within the ring's lag tolerance there).
    fn match_at_lag(&self, g: &Glimpse, open: &OpenLoop) -> Option<LoopMatch> {
        let lag = open.start.0.checked_sub(open.source_start.0)?;
        let target = g.pts.0.checked_sub(lag)?;
        let tol = Pts::from_secs_f64(open.lag_tolerance_s).0;
        let first = self
            .recent
            .partition_point(|r| r.glimpse.pts.0 + tol < target);
        self.recent
            .range(first..)
            .take_while(|r| r.glimpse.pts.0 <= target + tol)
            .map(|r| LoopMatch {
                distance: g.distance(&r.glimpse),
                source: r.glimpse.pts,
                step_s: r.step_s,
            })
            .min_by(|a, b| a.distance.total_cmp(&b.distance))
    }

    /// A replay shows earlier pictures at a constant lag: a repeat continues the open run when
    /// its lag agrees with the run's within the ring's spacing, a still picture at the run's lag
    /// holds it, and a frame or two without either (fast motion sampled between the earlier
    /// frames) does not break it.
    fn extend_loop(&mut self, sig: &FrameSignature, cue: LoopCue) {
        let interval = Pts::from_secs_f64(self.interval_s);
        let lag = |t: Pts, src: Pts| t.0 as i128 - src.0 as i128;
        match (cue, self.open_loop.as_mut()) {
            (LoopCue::Repeats(m), Some(open))
                if (lag(sig.pts, m.source) - lag(open.start, open.source_start)).abs()
                    <= Pts::from_secs_f64(open.lag_tolerance_s).0 as i128
                    && sig.pts.0 - open.end.0 <= 2 * interval.0 + interval.0 / 2 =>
            {
                open.end = sig.pts;
                open.frames += 1;
                open.mad_sum += m.distance;
            }
            (LoopCue::Holds, Some(open)) => open.end = sig.pts,
            (LoopCue::Repeats(m), _) => {
                self.close_loop();
                self.open_loop = Some(OpenLoop {
                    start: sig.pts,
                    end: sig.pts,
                    source_start: m.source,
                    lag_tolerance_s: m.lag_tolerance_s(),
                    frames: 1,
                    mad_sum: m.distance,
                });
            }
            (_, Some(open)) if sig.pts.0 - open.end.0 < 2 * interval.0 => {}
            _ => self.close_loop(),
        }
    }

    /// Bounded ring of recent thumbnails for the loop search: by time and by count (timestamps
    /// that do not advance must not grow it).
    fn remember(&mut self, glimpse: Glimpse) {
        let window = Pts::from_secs_f64(self.params.loop_window_s);
        let pts = glimpse.pts;
        while self
            .recent
            .front()
            .is_some_and(|r| pts.0.saturating_sub(r.glimpse.pts.0) > window.0)
        {
            self.recent.pop_front();
        }
        while self.recent.len() >= MAX_RECENT {
            self.recent.pop_front();
        }
        let step_s = self.recent.back().map_or(self.interval_s, |r| {
            pts.as_secs_f64() - r.glimpse.pts.as_secs_f64()
        });
        self.recent.push_back(Recent {
            mean: glimpse_mean(&glimpse),
            glimpse,
            step_s,
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
        let mut f = drop_loops_in_freezes(self.findings);
        f.sort_by_key(|x| match x {
            VideoFinding::Freeze { start, .. } | VideoFinding::Loop { start, .. } => *start,
        });
        (f, self.per_frame)
    }
}

/// A still picture that the encoder codes differently at each keyframe "moves" and repeats
/// itself, which the loop search reads as a replay; a loop lying mostly inside a freeze is that
/// freeze, not moving content played again.
fn drop_loops_in_freezes(findings: Vec<VideoFinding>) -> Vec<VideoFinding> {
    let freezes: Vec<(f64, f64)> = findings
        .iter()
        .filter_map(|f| match f {
            VideoFinding::Freeze { start, end, .. } => {
                Some((start.as_secs_f64(), end.as_secs_f64()))
            }
            VideoFinding::Loop { .. } => None,
        })
        .collect();
    findings
        .into_iter()
        .filter(|f| match f {
            VideoFinding::Loop { start, end, .. } => {
                let (a, b) = (start.as_secs_f64(), end.as_secs_f64());
                let inside: f64 = freezes
                    .iter()
                    .map(|&(fa, fb)| (b.min(fb) - a.max(fa)).max(0.0))
                    .sum();
                inside * 2.0 <= b - a
            }
            VideoFinding::Freeze { .. } => true,
        })
        .collect()
}

/// A sample's evidence for the loop search.
#[derive(Debug, Clone, Copy)]
enum LoopCue {
    /// A moving picture that repeats an earlier one.
    Repeats(LoopMatch),
    /// A still picture, as still as the one at the open run's lag.
    Holds,
    Nothing,
}

/// The closest earlier picture to a sampled frame.
#[derive(Debug, Clone, Copy)]
struct LoopMatch {
    distance: f32,
    source: Pts,
    /// Spacing of the ring where the source was found.
    step_s: f64,
}

impl LoopMatch {
    /// How far two matches' lags may differ and still be one replay: the spacing of the
    /// pictures matched against (sampled frames only: the sampling interval).
    fn lag_tolerance_s(&self) -> f64 {
        self.step_s.max(DENSE_LAG_TOLERANCE_S)
    }
}

fn glimpse_mean(g: &Glimpse) -> f32 {
    g.cells.iter().map(|&v| v as u32).sum::<u32>() as f32 / g.cells.len() as f32
}

/// Median of finite values (0 when there are none).
fn median(v: &mut [f32]) -> f32 {
    v.sort_by(f32::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests;
