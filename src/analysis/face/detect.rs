//! BlazeFace (MediaPipe face detection) anchor decoding and weighted non-maximum suppression.
//!
//! Outputs are per anchor: 16 regressors (Δcx, Δcy, w, h, then 6 keypoints x, y — subject's right
//! eye, left eye, nose tip, mouth, right ear, left ear) in input pixels relative to the anchor
//! centre, and one logit. Anchors have unit size; centres are ((x + 0.5)/fm, (y + 0.5)/fm).

/// A detection in frame pixel coordinates (continuous: 0 = left edge).
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub score: f32,
    pub cx: f32,
    pub cy: f32,
    pub w: f32,
    pub h: f32,
    /// Subject's right eye, left eye, nose tip, mouth, right ear, left ear.
    pub keypoints: [(f32, f32); 6],
}

impl Detection {
    fn iou(&self, o: &Detection) -> f32 {
        let (ax0, ay0, ax1, ay1) = (
            self.cx - self.w / 2.0,
            self.cy - self.h / 2.0,
            self.cx + self.w / 2.0,
            self.cy + self.h / 2.0,
        );
        let (bx0, by0, bx1, by1) = (
            o.cx - o.w / 2.0,
            o.cy - o.h / 2.0,
            o.cx + o.w / 2.0,
            o.cy + o.h / 2.0,
        );
        let iw = (ax1.min(bx1) - ax0.max(bx0)).max(0.0);
        let ih = (ay1.min(by1) - ay0.max(by0)).max(0.0);
        let inter = iw * ih;
        let union = self.w * self.h + o.w * o.h - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }

    fn holds_centre_of(&self, o: &Detection) -> bool {
        (o.cx - self.cx).abs() <= self.w / 2.0 && (o.cy - self.cy).abs() <= self.h / 2.0
    }
}

/// Anchor centres for a BlazeFace variant.
pub fn anchors(input: usize, strides: &[usize]) -> Vec<(f32, f32)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < strides.len() {
        // Consecutive layers with the same stride share a grid: 2 anchors per layer per cell.
        let stride = strides[i];
        let mut per_cell = 0;
        while i < strides.len() && strides[i] == stride {
            per_cell += 2;
            i += 1;
        }
        let fm = input.div_ceil(stride);
        for y in 0..fm {
            for x in 0..fm {
                for _ in 0..per_cell {
                    out.push(((x as f32 + 0.5) / fm as f32, (y as f32 + 0.5) / fm as f32));
                }
            }
        }
    }
    out
}

/// Short-range model: 128 px input, strides 8,16,16,16 → 896 anchors.
pub fn short_range_anchors() -> Vec<(f32, f32)> {
    anchors(128, &[8, 16, 16, 16])
}

/// Full-range model: 192 px input, stride 4 with one anchor per cell → 2304 anchors.
pub fn full_range_anchors() -> Vec<(f32, f32)> {
    let fm = 48;
    let mut out = Vec::with_capacity(fm * fm);
    for y in 0..fm {
        for x in 0..fm {
            out.push(((x as f32 + 0.5) / fm as f32, (y as f32 + 0.5) / fm as f32));
        }
    }
    out
}

/// Decodes raw outputs into detections in normalised input coordinates (0–1), keeping scores
/// ≥ `threshold`, then merges overlapping boxes by weighted NMS (IoU > `iou`).
pub fn decode(
    regressors: &[f32],
    logits: &[f32],
    anchors: &[(f32, f32)],
    input: f32,
    threshold: f32,
    iou: f32,
) -> Vec<Detection> {
    let mut raw = Vec::new();
    for (i, &(ax, ay)) in anchors.iter().enumerate() {
        let score = 1.0 / (1.0 + (-logits[i].clamp(-80.0, 80.0)).exp());
        if score < threshold {
            continue;
        }
        let r = &regressors[i * 16..i * 16 + 16];
        let mut keypoints = [(0.0, 0.0); 6];
        for (k, kp) in keypoints.iter_mut().enumerate() {
            *kp = (ax + r[4 + 2 * k] / input, ay + r[5 + 2 * k] / input);
        }
        raw.push(Detection {
            score,
            cx: ax + r[0] / input,
            cy: ay + r[1] / input,
            w: r[2] / input,
            h: r[3] / input,
            keypoints,
        });
    }
    weighted_nms(raw, iou)
}

/// MediaPipe's weighted NMS: each cluster of boxes overlapping the best one is replaced by the
/// score-weighted mean of its members, keeping the best score.
pub fn weighted_nms(mut dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    // Stable, total order: score, then position, so the result never depends on input order.
    dets.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.cx.total_cmp(&b.cx))
            .then(a.cy.total_cmp(&b.cy))
    });
    let mut out = Vec::new();
    while !dets.is_empty() {
        let best = dets[0].clone();
        let (cluster, rest): (Vec<Detection>, Vec<Detection>) =
            dets.into_iter().partition(|d| d.iou(&best) > iou);
        dets = rest;
        let total: f32 = cluster.iter().map(|d| d.score).sum();
        let mut merged = best.clone();
        if cluster.len() > 1 && total > 0.0 {
            let wavg = |f: &dyn Fn(&Detection) -> f32| {
                cluster.iter().map(|d| f(d) * d.score).sum::<f32>() / total
            };
            merged.cx = wavg(&|d| d.cx);
            merged.cy = wavg(&|d| d.cy);
            merged.w = wavg(&|d| d.w);
            merged.h = wavg(&|d| d.h);
            for k in 0..6 {
                merged.keypoints[k] = (wavg(&|d| d.keypoints[k].0), wavg(&|d| d.keypoints[k].1));
            }
        }
        out.push(merged);
    }
    out
}

/// Two detections one of which holds the other's centre in its box are one face found twice — at
/// another scale, or a loose low-score box around it (weighted NMS keeps both when their overlap
/// is under its IoU): in interview framing two people's faces do not sit inside each other's
/// boxes. The less confident of the two goes. Measured on the corpus's calibration half
/// (BENCHMARKS.md, "A face found twice is one face"): such pairs made `clean_043`'s 2
/// `multiple_faces` false alarms and extra boxes around the guests of the `extra_face` recordings.
/// `dets` in descending score, as [`weighted_nms`] returns them.
pub fn drop_nested(dets: Vec<Detection>) -> Vec<Detection> {
    let mut kept: Vec<Detection> = Vec::new();
    for d in dets {
        if !kept
            .iter()
            .any(|k| k.holds_centre_of(&d) || d.holds_centre_of(k))
        {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_counts_match_the_models() {
        assert_eq!(short_range_anchors().len(), 896);
        assert_eq!(full_range_anchors().len(), 2304);
        let a = short_range_anchors();
        assert_eq!(a[0], (0.5 / 16.0, 0.5 / 16.0));
        assert_eq!(a[512], (0.5 / 8.0, 0.5 / 8.0));
    }

    #[test]
    fn overlapping_boxes_merge_and_distant_ones_stay() {
        let d = |score: f32, cx: f32| Detection {
            score,
            cx,
            cy: 0.5,
            w: 0.2,
            h: 0.2,
            keypoints: [(cx, 0.5); 6],
        };
        let out = weighted_nms(vec![d(0.9, 0.30), d(0.6, 0.32), d(0.8, 0.80)], 0.3);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].score, 0.9);
        assert!(out[0].cx > 0.30 && out[0].cx < 0.32);
        assert_eq!(out[1].cx, 0.80);
    }

    #[test]
    fn a_box_around_a_face_is_the_same_face_and_a_face_beside_it_is_not() {
        // As in the corpus's clean_043: a loose 0.5 box twice the size around a 0.86 face, whose
        // overlap (IoU 0.25) weighted NMS keeps apart; and a guest beside the candidate.
        let d = |score: f32, cx: f32, cy: f32, side: f32| Detection {
            score,
            cx,
            cy,
            w: side,
            h: side,
            keypoints: [(cx, cy); 6],
        };
        let face = d(0.86, 348.0, 149.0, 62.0);
        let loose = d(0.50, 360.0, 133.0, 124.0);
        let guest = d(0.70, 500.0, 234.0, 90.0);
        let merged = weighted_nms(vec![loose.clone(), face.clone(), guest.clone()], 0.3);
        assert_eq!(merged.len(), 3, "NMS alone keeps the loose box");
        assert_eq!(drop_nested(merged), vec![face.clone(), guest.clone()]);
        // Whichever of a nested pair is more confident stays, the big or the small one.
        let inner = d(0.55, 348.0, 149.0, 30.0);
        assert_eq!(drop_nested(vec![face.clone(), inner]), vec![face.clone()]);
        assert_eq!(drop_nested(vec![guest.clone(), face.clone()]).len(), 2);
    }
}
