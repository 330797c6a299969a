//! Face consistency: is the same real person on camera all session?
//!
//! Per sampled frame ([`FaceModels::observe`], run in parallel, one set of ONNX sessions per rayon
//! worker): BlazeFace short range (full range when nothing is found: small, far faces) → the
//! primary face (largest box) → FaceMesh landmarks on a crop rotated to level the eyes → a 150×150
//! chip aligned like dlib's `get_face_chip(size=150, padding=0.25)` → 128-d dlib embedding.
//! Mouth openness comes from the landmarks.
//!
//! Over the session ([`FaceAnalyser`], sequential in frame order): enrol the candidate's face from
//! the first stable frames (or a reference photo), then look for sustained spans — never single
//! frames — of absence, extra faces, a different person and darkness.
//!
//! Embeddings and crops live only in memory for the session; nothing here is logged or reported
//! except distances and counts.
//!
//! Why one file of this length: the per-frame step (detectors, landmarks, alignment, embedding) and
//! the run-length state machines that turn frames into findings share the analyser's state; the
//! models live in their own files beside this one.

pub mod detect;
pub mod image;

use self::detect::Detection;
use self::image::{Affine, warp_chw};
use crate::inference::{
    self, BLAZEFACE_FULL, BLAZEFACE_SHORT, FACE_EMBEDDER, FACE_LANDMARK, InferenceError, ModelRef,
    timing,
};
use crate::media::{Pts, VideoFrame};
use ort::session::Session;
use ort::value::TensorRef;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Models the face analyser uses (for the report's `pipeline.models`).
pub fn model_refs() -> Vec<ModelRef> {
    [
        BLAZEFACE_SHORT,
        BLAZEFACE_FULL,
        FACE_LANDMARK,
        FACE_EMBEDDER,
    ]
    .iter()
    .map(|m| m.reference())
    .collect()
}

/// dlib's 5-point template (`get_face_chip_details`), in FaceMesh landmark order 263, 362, 33,
/// 133, 2: image-right eye outer/inner corner, image-left eye outer/inner corner, nose base.
const DLIB_TEMPLATE: [(f32, f32); 5] = [
    (0.859_567_4, 0.213_498_15),
    (0.646_060_5, 0.228_967_44),
    (0.120_575_06, 0.213_727_45),
    (0.334_085_06, 0.229_064_24),
    (0.490_112_3, 0.627_797_5),
];
const CHIP_LANDMARKS: [usize; 5] = [263, 362, 33, 133, 2];
const CHIP: usize = 150;
const CHIP_PADDING: f32 = 0.25;
/// Frames kept for re-checking while no face has been enrolled yet.
const MAX_PENDING: usize = 300;
/// Zooms of the centre passes tried, in order, on a frame where neither detector found a face.
const CENTRE_ZOOMS: [f32; 2] = [1.0, 0.6];
const DLIB_MEAN_RGB: [f32; 3] = [122.782, 117.001, 104.298];

/// One face found in a frame.
#[derive(Debug, Clone)]
pub struct FaceBox {
    pub score: f32,
    /// Box in frame pixels.
    pub cx: f32,
    pub cy: f32,
    pub w: f32,
    pub h: f32,
}

/// What one frame shows.
#[derive(Debug, Clone)]
pub struct FaceObservation {
    pub pts: Pts,
    pub faces: Vec<FaceBox>,
    /// The primary (largest) face's embedding, when its landmarks were found.
    pub embedding: Option<[f32; 128]>,
    /// |lm13 − lm14| / |lm78 − lm308| of the primary face (≈0.02 closed, ≈0.5 open).
    pub mouth_open: Option<f32>,
    /// Where the primary face's mouth is, for following it between samples.
    pub mouth: Option<MouthBox>,
    pub mean_luma: f32,
}

/// A mouth's place in frame pixels: the mean of its corners (lm78, lm308) and mid-lips (lm13,
/// lm14), and the corners' distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MouthBox {
    pub cx: f32,
    pub cy: f32,
    pub width: f32,
}

/// The four face models for one worker.
pub struct FaceModels {
    short: Session,
    full: Session,
    landmark: Session,
    embedder: Session,
    short_anchors: Vec<(f32, f32)>,
    full_anchors: Vec<(f32, f32)>,
    buf: Vec<f32>,
}

fn run_err(model: &str) -> impl Fn(ort::Error) -> InferenceError + '_ {
    move |e| InferenceError::Run {
        model: model.to_string(),
        reason: e.to_string(),
    }
}

impl FaceModels {
    pub fn load() -> Result<Self, InferenceError> {
        Ok(FaceModels {
            short: inference::load(&BLAZEFACE_SHORT)?,
            full: inference::load(&BLAZEFACE_FULL)?,
            landmark: inference::load(&FACE_LANDMARK)?,
            embedder: inference::load(&FACE_EMBEDDER)?,
            short_anchors: detect::short_range_anchors(),
            full_anchors: detect::full_range_anchors(),
            buf: Vec::new(),
        })
    }

    /// Detects faces with one BlazeFace variant on the whole frame (letterboxed: centred in a
    /// square of its longer side); boxes come back in frame pixels.
    pub fn detect_with(
        &mut self,
        frame: &VideoFrame,
        full: bool,
    ) -> Result<Vec<Detection>, InferenceError> {
        let (w, h) = (frame.width as f32, frame.height as f32);
        let side = w.max(h);
        self.detect_in(frame, full, side, (side - w) / 2.0, (side - h) / 2.0)
    }

    /// Detects faces with the short-range model in the centred square of `zoom` × the frame's
    /// shorter side (the candidate's place in webcam framing). Without the letterbox bars the face
    /// is larger in the model's input: the low-resolution, blurred faces of the corpus that score
    /// 0.3–0.5 on the whole frame score ≈ 0.7–0.8 at zoom 1 or 0.6 (measured on
    /// `scripts/gen-corpus`'s `hanks` renders, 640×480 and 640×360).
    pub fn detect_centre(
        &mut self,
        frame: &VideoFrame,
        zoom: f32,
    ) -> Result<Vec<Detection>, InferenceError> {
        let (w, h) = (frame.width as f32, frame.height as f32);
        let side = w.min(h) * zoom;
        self.detect_in(frame, false, side, (side - w) / 2.0, (side - h) / 2.0)
    }

    /// Runs one BlazeFace variant on the square of `side` pixels whose corner sits at
    /// (−padx, −pady) in the frame (positive pads add grey bars, negative ones crop).
    fn detect_in(
        &mut self,
        frame: &VideoFrame,
        full: bool,
        side: f32,
        padx: f32,
        pady: f32,
    ) -> Result<Vec<Detection>, InferenceError> {
        let size = if full { 192 } else { 128 };
        let (w, h) = (frame.width as f32, frame.height as f32);
        let s = side / size as f32;
        let map = Affine {
            a: s,
            b: 0.0,
            c: 0.5 * s - padx - 0.5,
            d: 0.0,
            e: s,
            f: 0.5 * s - pady - 0.5,
        };
        self.buf.resize(3 * size * size, 0.0);
        // RGB / 127.5 − 1.
        warp_chw(frame, &map, size, [127.5; 3], 1.0 / 127.5, &mut self.buf);
        let (session, anchors, spec, out_r, out_c) = if full {
            (
                &mut self.full,
                &self.full_anchors,
                &BLAZEFACE_FULL,
                "reshaped_regressor_face_4",
                "reshaped_classifier_face_4",
            )
        } else {
            (
                &mut self.short,
                &self.short_anchors,
                &BLAZEFACE_SHORT,
                "regressors",
                "classificators",
            )
        };
        let model = spec.name;
        let input = TensorRef::from_array_view(([1usize, 3, size, size], &self.buf[..]))
            .map_err(run_err(model))?;
        let outputs = timing::timed(spec, || session.run(ort::inputs!["input" => input]))
            .map_err(run_err(model))?;
        let (_, regs) = outputs[out_r]
            .try_extract_tensor::<f32>()
            .map_err(run_err(model))?;
        let (_, logits) = outputs[out_c]
            .try_extract_tensor::<f32>()
            .map_err(run_err(model))?;
        let dets = detect::decode(regs, logits, anchors, size as f32, 0.5, 0.3);
        let to_px = |x: f32, y: f32| (x * side - padx, y * side - pady);
        Ok(dets
            .into_iter()
            .map(|mut d| {
                (d.cx, d.cy) = to_px(d.cx, d.cy);
                d.w *= side;
                d.h *= side;
                for k in d.keypoints.iter_mut() {
                    *k = to_px(k.0, k.1);
                }
                d
            })
            // Boxes mostly outside the picture are letterbox artefacts.
            .filter(|d| d.cx > 0.0 && d.cy > 0.0 && d.cx < w && d.cy < h)
            .collect())
    }

    /// FaceMesh on a crop of 1.5× the box, rotated to level the eyes; landmarks in frame pixels
    /// and the face-presence probability.
    pub fn landmarks(
        &mut self,
        frame: &VideoFrame,
        d: &Detection,
    ) -> Result<(Vec<(f32, f32)>, f32), InferenceError> {
        const SIZE: usize = 192;
        let (re, le) = (d.keypoints[0], d.keypoints[1]);
        let theta = (le.1 - re.1).atan2(le.0 - re.0);
        let side = 1.5 * d.w.max(d.h);
        let s = side / SIZE as f32;
        // Crop pixel (u, v) → frame: centre + R(θ)·s·((u, v) − SIZE/2 + 0.5), integer-centre convention.
        let (sin, cos) = theta.sin_cos();
        let half = SIZE as f32 / 2.0 - 0.5;
        let map = Affine {
            a: s * cos,
            b: -s * sin,
            c: d.cx - 0.5 - s * (cos * half - sin * half),
            d: s * sin,
            e: s * cos,
            f: d.cy - 0.5 - s * (sin * half + cos * half),
        };
        self.buf.resize(3 * SIZE * SIZE, 0.0);
        warp_chw(frame, &map, SIZE, [0.0; 3], 1.0 / 255.0, &mut self.buf);
        let model = FACE_LANDMARK.name;
        let input = TensorRef::from_array_view(([1usize, 3, SIZE, SIZE], &self.buf[..]))
            .map_err(run_err(model))?;
        let outputs = timing::timed(&FACE_LANDMARK, || {
            self.landmark.run(ort::inputs!["input_1" => input])
        })
        .map_err(run_err(model))?;
        let (_, pts) = outputs["conv2d_20"]
            .try_extract_tensor::<f32>()
            .map_err(run_err(model))?;
        let (_, presence) = outputs["conv2d_30"]
            .try_extract_tensor::<f32>()
            .map_err(run_err(model))?;
        let presence = 1.0 / (1.0 + (-presence[0].clamp(-80.0, 80.0)).exp());
        // Landmarks are in continuous crop pixels; convert to integer-centre then map.
        let lms = pts
            .chunks_exact(3)
            .map(|p| {
                let (x, y) = map.apply(p[0] - 0.5, p[1] - 0.5);
                (x + 0.5, y + 0.5)
            })
            .collect();
        Ok((lms, presence))
    }

    /// 128-d dlib embedding of the face given by its FaceMesh landmarks.
    pub fn embed(
        &mut self,
        frame: &VideoFrame,
        lms: &[(f32, f32)],
    ) -> Result<[f32; 128], InferenceError> {
        let to: Vec<(f32, f32)> = CHIP_LANDMARKS
            .iter()
            .map(|&i| (lms[i].0 - 0.5, lms[i].1 - 0.5))
            .collect();
        let from: Vec<(f32, f32)> = DLIB_TEMPLATE
            .iter()
            .map(|&(x, y)| {
                let k = CHIP as f32 / (1.0 + 2.0 * CHIP_PADDING);
                ((CHIP_PADDING + x) * k, (CHIP_PADDING + y) * k)
            })
            .collect();
        let map = Affine::fit_similarity(&from, &to);
        self.buf.resize(3 * CHIP * CHIP, 0.0);
        warp_chw(frame, &map, CHIP, DLIB_MEAN_RGB, 1.0 / 256.0, &mut self.buf);
        let model = FACE_EMBEDDER.name;
        let input = TensorRef::from_array_view(([1usize, 3, CHIP, CHIP], &self.buf[..]))
            .map_err(run_err(model))?;
        let outputs = timing::timed(&FACE_EMBEDDER, || {
            self.embedder.run(ort::inputs!["input" => input])
        })
        .map_err(run_err(model))?;
        let (_, e) = outputs["embedding"]
            .try_extract_tensor::<f32>()
            .map_err(run_err(model))?;
        let mut out = [0f32; 128];
        out.copy_from_slice(&e[..128]);
        Ok(out)
    }

    /// Everything the session logic needs from one frame.
    pub fn observe(
        &mut self,
        frame: &VideoFrame,
        mean_luma: f32,
    ) -> Result<FaceObservation, InferenceError> {
        // Both detectors run: short range is sharp on webcam framing, full range finds the small
        // or distant faces (a second person in the background) that short range misses. Their
        // detections are merged by the same weighted NMS.
        let mut all = self.detect_with(frame, false)?;
        all.extend(self.detect_with(frame, true)?);
        // Nothing on the whole frame: look again, closer, where a candidate sits.
        for zoom in CENTRE_ZOOMS {
            if !all.is_empty() {
                break;
            }
            all = self.detect_centre(frame, zoom)?;
        }
        let mut dets = detect::drop_nested(detect::weighted_nms(all, 0.3));
        // Largest face first; ties by position so the order is total.
        dets.sort_by(|a, b| {
            (b.w * b.h)
                .total_cmp(&(a.w * a.h))
                .then(a.cx.total_cmp(&b.cx))
        });
        let mut obs = FaceObservation {
            pts: frame.pts,
            faces: dets
                .iter()
                .map(|d| FaceBox {
                    score: d.score,
                    cx: d.cx,
                    cy: d.cy,
                    w: d.w,
                    h: d.h,
                })
                .collect(),
            embedding: None,
            mouth_open: None,
            mouth: None,
            mean_luma,
        };
        if let Some(primary) = dets.first() {
            let (lms, presence) = self.landmarks(frame, primary)?;
            if presence >= 0.5 {
                let dist = |a: usize, b: usize| {
                    ((lms[a].0 - lms[b].0).powi(2) + (lms[a].1 - lms[b].1).powi(2)).sqrt()
                };
                let width = dist(78, 308);
                obs.mouth_open = (width > 0.0).then(|| dist(13, 14) / width);
                let (sx, sy) = [13, 14, 78, 308]
                    .iter()
                    .fold((0.0, 0.0), |(x, y), &i| (x + lms[i].0, y + lms[i].1));
                obs.mouth = (width > 0.0).then_some(MouthBox {
                    cx: sx / 4.0,
                    cy: sy / 4.0,
                    width,
                });
                obs.embedding = Some(self.embed(frame, &lms)?);
            }
        }
        Ok(obs)
    }
}

/// One [`FaceModels`] per rayon worker, created on first use: sessions are never shared between
/// threads (each slot's mutex is only ever taken by its own worker, so it is uncontended).
pub struct PerWorker {
    slots: Vec<Mutex<Option<FaceModels>>>,
}

impl PerWorker {
    pub fn new(threads: usize) -> Self {
        PerWorker {
            slots: (0..threads.max(1) + 1).map(|_| Mutex::new(None)).collect(),
        }
    }

    pub fn observe(
        &self,
        frame: &VideoFrame,
        mean_luma: f32,
    ) -> Result<FaceObservation, InferenceError> {
        // Off-pool callers (index None) use the last slot.
        let i = rayon::current_thread_index().unwrap_or(self.slots.len() - 1) % self.slots.len();
        let mut slot = self.slots[i].lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(FaceModels::load()?);
        }
        slot.as_mut()
            .expect("just loaded")
            .observe(frame, mean_luma)
    }
}

/// L2 distance between two embeddings (dlib: same person ⇔ < 0.6).
pub fn distance(a: &[f32; 128], b: &[f32; 128]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

/// Session thresholds (policy values).
#[derive(Debug, Clone)]
pub struct FaceParams {
    /// dlib's same-person rule: L2 distance under this is the same person. Default 0.6.
    pub same_person: f32,
    /// Frames used to enrol the candidate when no reference photo is given. Default 3.
    pub enrol_frames: usize,
    /// Minimum detector score for an enrolment frame. Default 0.6 (small faces in wide shots
    /// score 0.65–0.75; the detector itself keeps faces from 0.5).
    pub enrol_min_score: f32,
    /// A different person must stay at least this long. Default 3 s.
    pub min_identity_change_s: f64,
    /// Face absent for at least this long. Default 3 s.
    pub min_absent_s: f64,
    /// Two or more faces for at least this long. Default 2 s.
    pub min_multiple_s: f64,
    /// Mean luma under which a frame is too dark. Default 40.
    pub low_light_luma: f32,
    /// Darkness for at least this long. Default 5 s.
    pub min_low_light_s: f64,
    /// Identity counts as checked only when a face was seen in at least this share of frames.
    /// Default 0.5.
    pub min_present_ratio: f64,
}

impl Default for FaceParams {
    fn default() -> Self {
        FaceParams {
            same_person: 0.6,
            enrol_frames: 3,
            enrol_min_score: 0.6,
            min_identity_change_s: 3.0,
            min_absent_s: 3.0,
            min_multiple_s: 2.0,
            low_light_luma: 40.0,
            min_low_light_s: 5.0,
            min_present_ratio: 0.5,
        }
    }
}

/// A sustained span found by the session logic.
#[derive(Debug, Clone, PartialEq)]
pub enum FaceFinding {
    Absent {
        start: Pts,
        end: Pts,
        frames: u64,
    },
    Multiple {
        start: Pts,
        end: Pts,
        frames: u64,
        max_faces: usize,
    },
    IdentityChange {
        start: Pts,
        end: Pts,
        frames: u64,
        mean_distance: f32,
        before_distance: f32,
    },
    ReferenceMismatch {
        start: Pts,
        end: Pts,
        frames: u64,
        median_distance: f32,
    },
    LowLight {
        start: Pts,
        end: Pts,
        frames: u64,
        mean_luma: f32,
    },
}

/// Per-frame summary kept for the timeline (no biometric data).
#[derive(Debug, Clone, Copy)]
pub struct FaceSample {
    pub pts: Pts,
    pub faces: usize,
    /// Distance to the enrolled face, when a face was embedded and someone is enrolled.
    pub distance: Option<f32>,
    pub mouth_open: Option<f32>,
}

struct Run {
    start: Pts,
    end: Pts,
    frames: u64,
    sum: f32,
    max: usize,
}

impl Run {
    fn new(pts: Pts, v: f32, n: usize) -> Self {
        Run {
            start: pts,
            end: pts,
            frames: 1,
            sum: v,
            max: n,
        }
    }
    fn extend(&mut self, pts: Pts, v: f32, n: usize) {
        self.end = pts;
        self.frames += 1;
        self.sum += v;
        self.max = self.max.max(n);
    }
    /// Span covered, counting the last frame's own sampling interval.
    fn span(&self, interval: f64) -> f64 {
        self.end.as_secs_f64() - self.start.as_secs_f64() + interval
    }
}

/// Sequential session state; feed observations in frame order.
pub struct FaceAnalyser {
    params: FaceParams,
    interval_s: f64,
    reference: Option<[f32; 128]>,
    enrolled: Option<[f32; 128]>,
    enrol_buf: Vec<[f32; 128]>,
    /// Frames seen before enrolment completed (sample index, embedding), re-checked once it
    /// does; capped, so a session that never shows one clear face cannot pile up embeddings.
    pending: VecDeque<(usize, Pts, [f32; 128])>,
    absent: Option<Run>,
    multiple: Option<Run>,
    mismatch: Option<Run>,
    dark: Option<Run>,
    last_match_distance: f32,
    /// Whether any frame matched the enrolled face yet. With a reference photo, a session that
    /// never matches it is one `reference_face_mismatch`, not also an `identity_change`.
    matched_once: bool,
    ref_distances: Vec<f32>,
    ref_span: Option<(Pts, Pts)>,
    findings: Vec<FaceFinding>,
    pub samples: Vec<FaceSample>,
    frames: u64,
    frames_with_face: u64,
}

impl FaceAnalyser {
    pub fn new(params: FaceParams, interval_s: f64, reference: Option<[f32; 128]>) -> Self {
        FaceAnalyser {
            params,
            interval_s,
            reference,
            // A reference photo is the identity from the first frame on.
            enrolled: reference,
            enrol_buf: Vec::new(),
            pending: VecDeque::new(),
            absent: None,
            multiple: None,
            mismatch: None,
            dark: None,
            last_match_distance: 0.0,
            matched_once: false,
            ref_distances: Vec::new(),
            ref_span: None,
            findings: Vec::new(),
            samples: Vec::new(),
            frames: 0,
            frames_with_face: 0,
        }
    }

    pub fn push(&mut self, o: FaceObservation) {
        if let Some(last) = self.samples.last()
            && o.pts > last.pts
        {
            self.interval_s = o.pts.as_secs_f64() - last.pts.as_secs_f64();
        }
        self.frames += 1;
        let n = o.faces.len();
        if n > 0 {
            self.frames_with_face += 1;
        }
        let p = self.params.clone();
        let interval = self.interval_s;
        let mut closed = Vec::new();
        track(
            &mut self.absent,
            n == 0,
            o.pts,
            0.0,
            n,
            RunKind::Absent,
            &p,
            interval,
            &mut closed,
        );
        track(
            &mut self.multiple,
            n >= 2,
            o.pts,
            0.0,
            n,
            RunKind::Multiple,
            &p,
            interval,
            &mut closed,
        );
        let dark = o.mean_luma < p.low_light_luma;
        track(
            &mut self.dark,
            dark,
            o.pts,
            o.mean_luma,
            n,
            RunKind::Dark,
            &p,
            interval,
            &mut closed,
        );
        self.findings.extend(closed);

        // The sample goes in first: enrolment may complete on this frame and fill in distances.
        self.samples.push(FaceSample {
            pts: o.pts,
            faces: n,
            distance: None,
            mouth_open: o.mouth_open,
        });
        if let Some(e) = o.embedding {
            if let Some(r) = &self.reference {
                self.ref_distances.push(distance(r, &e));
                let span = self.ref_span.get_or_insert((o.pts, o.pts));
                span.1 = o.pts;
            }
            match self.enrolled {
                Some(enrolled) => {
                    let d = distance(&enrolled, &e);
                    if let Some(s) = self.samples.last_mut() {
                        s.distance = Some(d);
                    }
                    self.check_identity(o.pts, d);
                }
                None => {
                    let primary_ok = o
                        .faces
                        .first()
                        .is_some_and(|f| f.score >= p.enrol_min_score)
                        && n == 1;
                    if primary_ok {
                        self.enrol_buf.push(e);
                    }
                    if self.pending.len() >= MAX_PENDING {
                        self.pending.pop_front();
                    }
                    self.pending.push_back((self.samples.len() - 1, o.pts, e));
                    if self.enrol_buf.len() >= p.enrol_frames {
                        self.enrol_from_buffer();
                    }
                }
            }
        }
    }

    fn enrol_from_buffer(&mut self) {
        // The reference photo, when given, is the identity; otherwise the mean of the first stable frames.
        let enrolled = self
            .reference
            .unwrap_or_else(|| mean_embedding(&self.enrol_buf));
        self.enrolled = Some(enrolled);
        for (i, pts, e) in std::mem::take(&mut self.pending) {
            let d = distance(&enrolled, &e);
            self.samples[i].distance = Some(d);
            self.check_identity(pts, d);
        }
    }

    fn check_identity(&mut self, pts: Pts, d: f32) {
        if d > self.params.same_person {
            match &mut self.mismatch {
                Some(r) => r.extend(pts, d, 0),
                None => self.mismatch = Some(Run::new(pts, d, 0)),
            }
        } else {
            self.close_mismatch();
            self.last_match_distance = d;
            self.matched_once = true;
        }
    }

    fn close_mismatch(&mut self) {
        if let Some(r) = self.mismatch.take()
            && r.span(self.interval_s) >= self.params.min_identity_change_s
            && r.frames >= 2
            && self.matched_once
        {
            self.findings.push(FaceFinding::IdentityChange {
                start: r.start,
                end: r.end,
                frames: r.frames,
                mean_distance: r.sum / r.frames as f32,
                before_distance: self.last_match_distance,
            });
        }
    }

    /// Share of analysed frames with at least one face.
    pub fn present_ratio(&self) -> Option<f64> {
        (self.frames > 0).then(|| self.frames_with_face as f64 / self.frames as f64)
    }

    /// True when a candidate face was enrolled (identity was actually checked).
    pub fn enrolled(&self) -> bool {
        self.enrolled.is_some()
    }

    pub fn finish(mut self) -> (Vec<FaceFinding>, Vec<FaceSample>, bool) {
        if self.enrolled.is_none() && !self.enrol_buf.is_empty() {
            // Short sessions: enrol from whatever stable frames there were.
            self.enrol_from_buffer();
        }
        self.close_mismatch();
        let p = self.params.clone();
        let interval = self.interval_s;
        let mut closed = Vec::new();
        for (run, kind) in [
            (&mut self.absent, RunKind::Absent),
            (&mut self.multiple, RunKind::Multiple),
            (&mut self.dark, RunKind::Dark),
        ] {
            track(run, false, Pts(0), 0.0, 0, kind, &p, interval, &mut closed);
        }
        self.findings.extend(closed);
        if self.reference.is_some() && !self.ref_distances.is_empty() {
            let mut d = self.ref_distances.clone();
            d.sort_by(f32::total_cmp);
            let median = d[d.len() / 2];
            if median > p.same_person
                && let Some((start, end)) = self.ref_span
            {
                self.findings.push(FaceFinding::ReferenceMismatch {
                    start,
                    end,
                    frames: d.len() as u64,
                    median_distance: median,
                });
            }
        }
        let enrolled = self.enrolled.is_some();
        (self.findings, self.samples, enrolled)
    }
}

fn mean_embedding(v: &[[f32; 128]]) -> [f32; 128] {
    let mut m = [0f32; 128];
    for e in v {
        for (a, b) in m.iter_mut().zip(e) {
            *a += b;
        }
    }
    for a in m.iter_mut() {
        *a /= v.len().max(1) as f32;
    }
    m
}

#[derive(Clone, Copy)]
enum RunKind {
    Absent,
    Multiple,
    Dark,
}

/// Extends or closes a run depending on `active`; a closed run long enough becomes a finding.
#[allow(clippy::too_many_arguments)]
fn track(
    run: &mut Option<Run>,
    active: bool,
    pts: Pts,
    v: f32,
    n: usize,
    kind: RunKind,
    p: &FaceParams,
    interval: f64,
    out: &mut Vec<FaceFinding>,
) {
    if active {
        match run {
            Some(r) => r.extend(pts, v, n),
            None => *run = Some(Run::new(pts, v, n)),
        }
        return;
    }
    let Some(r) = run.take() else { return };
    let span = r.span(interval);
    let (start, end, frames) = (r.start, r.end, r.frames);
    let finding = match kind {
        RunKind::Absent => {
            (span >= p.min_absent_s).then_some(FaceFinding::Absent { start, end, frames })
        }
        RunKind::Multiple => (span >= p.min_multiple_s).then_some(FaceFinding::Multiple {
            start,
            end,
            frames,
            max_faces: r.max,
        }),
        RunKind::Dark => (span >= p.min_low_light_s).then(|| FaceFinding::LowLight {
            start,
            end,
            frames,
            mean_luma: r.sum / r.frames as f32,
        }),
    };
    out.extend(finding);
}
