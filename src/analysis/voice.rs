//! Voice consistency: the same voice, the candidate's own, all session.
//!
//! The audio analyser hands this analyser the samples of the 32 ms steps the VAD called speech
//! (silence dropped). Every 94 speech steps (3.0 s, windows side by side) become a window, embedded
//! by the CAM++ speaker model (3D-Speaker, `models/README.md`) on a Kaldi fbank with the window's
//! own mean removed (CMN): a fixed microphone or room colouring is a constant offset in log-mel
//! energies, so the mean subtraction takes it away — a voice heard through other EQ, a narrow
//! band or a codec stays the same voice (the GE2E encoder used before read an EQ change as a
//! second speaker). Each window's cosine similarity to the enrolled voice (the first seconds of
//! speech, or `--reference-voice`) drives sustained-span findings: a different voice that stays
//! (`speaker_change`), other voices interleaved with the candidate's (`second_speaker`), and a
//! session that does not match the reference recording (`reference_voice_mismatch`).
//!
//! Memory: one window of samples, a batch of windows and per-run summaries. Embeddings are never
//! logged, written or reported.
//!
//! Why one file of this length: VAD segmentation, windowing, batching and the run-length findings all
//! work on one bounded window state; the parameters with their calibration notes are a quarter of it.

use crate::analysis::audio::VAD_STEP;
use crate::dsp::fbank::{FBANK_BINS, Fbank, cmn};
use crate::inference::{CamPlus, InferenceError};
use crate::media::{AUDIO_RATE, Pts};
use std::collections::VecDeque;

pub const EMBED_DIM: usize = crate::inference::CAMPPLUS_DIM;
/// VAD steps of speech per embedded window (94 × 32 ms ≈ 3.0 s: CAM++ needs 2–3 s to separate
/// voices, `models/README.md`).
const WINDOW_STEPS: usize = 94;
/// Speech steps between window starts: windows side by side, so CAM++ sees each second of
/// speech once (overlapping them by half doubled the audio thread's time for the same findings,
/// BENCHMARKS.md).
const HOP_STEPS: usize = WINDOW_STEPS;
/// Windows per CAM++ run. CAM++ is convolutional: a window's embedding is bit-identical in any
/// batch and the time per window the same from 1 to 16 windows, while the activations grow with
/// the batch (8 windows held ≈ 60 MiB more at peak than 1 or 2; BENCHMARKS.md "One-hour
/// comparison with a Python pipeline").
const BATCH: usize = 2;

/// Session thresholds (policy values).
#[derive(Debug, Clone)]
pub struct VoiceParams {
    /// CAM++ similarity of a 3 s window to the enrolled voice under which the speech is someone
    /// else's. Default 0.60: on the voice fixtures single windows of one voice stay ≥ 0.64 (an
    /// expressive actor), other voices sit at 0.27–0.55 (calibrated on the corpus's calibration
    /// half, BENCHMARKS.md).
    pub same_voice: f32,
    /// Windows averaged to enrol the candidate's voice (2 ≈ 6 s of speech).
    pub enrol_windows: usize,
    /// A different voice that stays to the end for at least this much speech. Default 5 s.
    pub min_change_s: f64,
    /// Other voices interleaved with the candidate's for at least this much speech in total.
    /// Default 3 s.
    pub min_second_s: f64,
    /// A run of other-voice windows counts from this many windows (1 = 3 s of speech).
    pub min_run_windows: u64,
    /// A voice that stays to the end starts at the earliest other-voice run from which at least
    /// this share of windows is the other voice: one change, not a `second_speaker` run plus a
    /// late `speaker_change` when a window or two in between happen to match. Default 0.8.
    pub change_purity: f32,
}

impl Default for VoiceParams {
    fn default() -> Self {
        VoiceParams {
            same_voice: 0.60,
            enrol_windows: 2,
            min_change_s: 5.0,
            min_second_s: 3.0,
            min_run_windows: 1,
            change_purity: 0.8,
        }
    }
}

/// A sustained span found by the session logic.
#[derive(Debug, Clone, PartialEq)]
pub enum VoiceFinding {
    SpeakerChange {
        start: Pts,
        end: Pts,
        windows: u64,
        mean_similarity: f32,
    },
    SecondSpeaker {
        start: Pts,
        end: Pts,
        runs: u64,
        windows: u64,
        mean_similarity: f32,
        /// How distinctly the session's speech segments split into two voices
        /// ([`SegmentSplit::gap`]); corroborating evidence, not the detection rule.
        split_gap: Option<f32>,
    },
    ReferenceMismatch {
        start: Pts,
        end: Pts,
        windows: u64,
        median_similarity: f32,
    },
}

/// Per-window summary kept for the timeline (no embedding).
#[derive(Debug, Clone, Copy)]
pub struct VoiceSample {
    pub centre: Pts,
    pub similarity: Option<f32>,
}

struct Window {
    start: Pts,
    end: Pts,
    /// The speech segment (VAD run) the window's centre step belongs to.
    segment: u64,
    feats: Vec<[f32; FBANK_BINS]>,
}

/// One speech segment (a run of speech frames between pauses) and the mean of the embeddings of
/// the windows centred in it. Kept in memory for the session only, for clustering; never
/// reported or written.
struct Segment {
    id: u64,
    start: Pts,
    end: Pts,
    windows: u32,
    sum: [f32; EMBED_DIM],
}

/// Segments kept for clustering; beyond this the two most similar neighbours are merged, so
/// memory stays bounded (≈ 1 KiB per segment) whatever the session length.
const MAX_SEGMENTS: usize = 512;

/// The two-cluster split of a session's speech segments (cosine 2-means).
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentSplit {
    /// Coherence of the less coherent cluster (mean similarity of its segments to its centre)
    /// minus the similarity between the two centres: how much more alike each voice is to
    /// itself than to the other. Single speakers measure ≤ ~0.05 here, distinct voices more.
    pub gap: f32,
    /// Segments, windows and time spans of the smaller cluster (by windows).
    pub minority_segments: u64,
    pub minority_windows: u64,
    pub majority_windows: u64,
    pub minority_spans: Vec<(Pts, Pts)>,
    /// Times the voice switches between the clusters, in time order.
    pub switches: u64,
}

struct Run {
    start: Pts,
    end: Pts,
    windows: u64,
    sim_sum: f32,
    /// Windows that matched the enrolled voice between the previous run and this one.
    matched_before: u64,
}

impl Run {
    /// Seconds of speech the run's windows cover (pauses between them do not count).
    fn speech_s(&self) -> f64 {
        let step = (HOP_STEPS * VAD_STEP) as f64 / AUDIO_RATE as f64;
        let window = (WINDOW_STEPS * VAD_STEP) as f64 / AUDIO_RATE as f64;
        (self.windows.saturating_sub(1)) as f64 * step + window
    }
}

/// Cosine 2-means over segment embeddings (weighted by windows), deterministic: initialised
/// with the longest segment and the segment least like it. `None` with fewer than two segments.
fn split_segments(segments: &[Segment]) -> Option<SegmentSplit> {
    if segments.len() < 2 {
        return None;
    }
    let units: Vec<[f32; EMBED_DIM]> = segments
        .iter()
        .map(|s| {
            let mut v = s.sum;
            normalise(&mut v);
            v
        })
        .collect();
    let first = (0..segments.len())
        .max_by(|&a, &b| {
            segments[a]
                .windows
                .cmp(&segments[b].windows)
                .then(b.cmp(&a))
        })
        .expect("non-empty");
    let second = (0..segments.len())
        .min_by(|&a, &b| {
            cosine(&units[first], &units[a])
                .total_cmp(&cosine(&units[first], &units[b]))
                .then(a.cmp(&b))
        })
        .expect("non-empty");
    let mut centres = [units[first], units[second]];
    let mut label = vec![0usize; segments.len()];
    for _ in 0..20 {
        let next: Vec<usize> = units
            .iter()
            .map(|u| usize::from(cosine(u, &centres[1]) > cosine(u, &centres[0])))
            .collect();
        let settled = next == label;
        label = next;
        for (k, centre) in centres.iter_mut().enumerate() {
            let mut m = [0f32; EMBED_DIM];
            for (i, seg) in segments.iter().enumerate() {
                if label[i] == k {
                    m.iter_mut().zip(&seg.sum).for_each(|(a, b)| *a += b);
                }
            }
            normalise(&mut m);
            *centre = m;
        }
        if settled {
            break;
        }
    }
    let windows = |k: usize| -> u64 {
        segments
            .iter()
            .zip(&label)
            .filter(|(_, l)| **l == k)
            .map(|(s, _)| s.windows as u64)
            .sum()
    };
    let (wa, wb) = (windows(0), windows(1));
    if wa == 0 || wb == 0 {
        return None;
    }
    let coherence = |k: usize| -> f32 {
        let (sum, n) = units
            .iter()
            .zip(&label)
            .filter(|(_, l)| **l == k)
            .fold((0f32, 0u32), |(s, n), (u, _)| {
                (s + cosine(u, &centres[k]), n + 1)
            });
        sum / n.max(1) as f32
    };
    let gap = coherence(0).min(coherence(1)) - cosine(&centres[0], &centres[1]);
    let minority = if wb < wa { 1 } else { 0 };
    let minority_spans: Vec<(Pts, Pts)> = segments
        .iter()
        .zip(&label)
        .filter(|(_, l)| **l == minority)
        .map(|(s, _)| (s.start, s.end))
        .collect();
    let switches = label.windows(2).filter(|w| w[0] != w[1]).count() as u64;
    Some(SegmentSplit {
        gap,
        minority_segments: minority_spans.len() as u64,
        minority_windows: windows(minority),
        majority_windows: windows(1 - minority),
        minority_spans,
        switches,
    })
}

/// A final other-voice run extended back over the closed runs before it.
struct Change {
    start: Pts,
    end: Pts,
    /// Other-voice windows, and matching windows between the runs taken in.
    other: u64,
    matched: u64,
    sim_sum: f32,
    /// How many closed runs (the last ones) were taken in.
    absorbed: usize,
}

impl Change {
    fn speech_s(&self) -> f64 {
        let span = Run {
            start: self.start,
            end: self.end,
            windows: self.other + self.matched,
            sim_sum: 0.0,
            matched_before: 0,
        };
        span.speech_s()
    }
}

/// Extends a final other-voice run back over the closed runs before it while, from the run
/// taken in to the end, at least `purity` of the windows are the other voice.
fn absorb_into_change(closed: &[Run], last: &Run, purity: f32) -> Change {
    let mut c = Change {
        start: last.start,
        end: last.end,
        other: last.windows,
        matched: 0,
        sim_sum: last.sim_sum,
        absorbed: 0,
    };
    let mut gap = last.matched_before;
    for run in closed.iter().rev() {
        let (other, matched) = (c.other + run.windows, c.matched + gap);
        if (other as f32) < purity * (other + matched) as f32 {
            break;
        }
        c = Change {
            start: run.start,
            other,
            matched,
            sim_sum: c.sim_sum + run.sim_sum,
            absorbed: c.absorbed + 1,
            ..c
        };
        gap = run.matched_before;
    }
    c
}

fn normalise(v: &mut [f32; EMBED_DIM]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

fn cosine(a: &[f32; EMBED_DIM], b: &[f32; EMBED_DIM]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Streams speech into windows and embeddings; sequential, fed in stream order.
pub struct VoiceAnalyser {
    params: VoiceParams,
    encoder: CamPlus,
    fbank: Fbank,
    /// The last window's worth of speech samples, and per VAD step its first sample's index in
    /// the stream and its speech segment (a new segment starts after any gap between steps).
    speech: VecDeque<f32>,
    steps: VecDeque<(u64, u64)>,
    steps_total: usize,
    segment: u64,
    last_step: Option<u64>,
    segments: Vec<Segment>,
    stream_start: Pts,
    batch: Vec<Window>,
    reference: Option<[f32; EMBED_DIM]>,
    enrolled: Option<[f32; EMBED_DIM]>,
    enrol_buf: Vec<[f32; EMBED_DIM]>,
    pending: Vec<(Pts, Pts, [f32; EMBED_DIM])>,
    run: Option<Run>,
    closed_runs: Vec<Run>,
    /// Windows matching the enrolled voice since the last other-voice run started.
    matched_since_run: u64,
    /// Whether any window matched the enrolled voice yet. With a reference recording, a session
    /// that never matches it is one `reference_voice_mismatch`, not also a `speaker_change`.
    matched_once: bool,
    ref_sims: Vec<f32>,
    ref_span: Option<(Pts, Pts)>,
    pub samples: Vec<VoiceSample>,
    windows: u64,
    /// Sum of every window's embedding (for a reference recording's utterance embedding).
    sum: [f32; EMBED_DIM],
}

/// What the voice analyser concluded. `mean_embedding` stays in memory (it is how a reference
/// recording is turned into an identity); it is never reported or stored.
pub struct VoiceOutcome {
    pub findings: Vec<VoiceFinding>,
    /// How the session's speech segments split into two voices (no embeddings).
    pub split: Option<SegmentSplit>,
    pub samples: Vec<VoiceSample>,
    pub enrolled: bool,
    pub windows: u64,
    pub mean_embedding: Option<[f32; EMBED_DIM]>,
}

impl VoiceAnalyser {
    pub fn new(
        params: VoiceParams,
        reference: Option<[f32; EMBED_DIM]>,
    ) -> Result<Self, InferenceError> {
        Ok(VoiceAnalyser {
            params,
            encoder: CamPlus::load()?,
            fbank: Fbank::new(),
            speech: VecDeque::with_capacity(WINDOW_STEPS * VAD_STEP),
            steps: VecDeque::with_capacity(WINDOW_STEPS + 1),
            steps_total: 0,
            segment: 0,
            last_step: None,
            segments: Vec::new(),
            stream_start: Pts(0),
            batch: Vec::new(),
            reference,
            enrolled: None,
            enrol_buf: Vec::new(),
            pending: Vec::new(),
            run: None,
            closed_runs: Vec::new(),
            matched_since_run: 0,
            matched_once: false,
            ref_sims: Vec::new(),
            ref_span: None,
            samples: Vec::new(),
            windows: 0,
            sum: [0.0; EMBED_DIM],
        })
    }

    /// Time of the first audio sample (the original-stream origin).
    pub fn set_stream_start(&mut self, pts: Pts) {
        self.stream_start = pts;
    }

    /// Stream time of a sample index.
    fn time_of(&self, sample: u64) -> Pts {
        Pts(self.stream_start.0 + sample * 1_000_000_000 / AUDIO_RATE as u64)
    }

    /// Feeds one VAD step (512 samples) that the VAD called speech; `first` is the stream index
    /// of its first sample. Steps must come in stream order.
    pub fn push_speech(&mut self, samples: &[f32], first: u64) -> Result<(), InferenceError> {
        let step = first / VAD_STEP as u64;
        if self.last_step.is_some_and(|l| step != l + 1) {
            self.segment += 1;
        }
        self.last_step = Some(step);
        self.steps.push_back((first, self.segment));
        self.speech
            .extend(samples.iter().map(|&x| if x.is_finite() { x } else { 0.0 }));
        self.steps_total += 1;
        if self.steps.len() > WINDOW_STEPS {
            self.steps.pop_front();
            self.speech.drain(..VAD_STEP.min(self.speech.len()));
        }
        if self.steps_total >= WINDOW_STEPS
            && (self.steps_total - WINDOW_STEPS).is_multiple_of(HOP_STEPS)
        {
            self.make_window()?;
        }
        Ok(())
    }

    fn make_window(&mut self) -> Result<(), InferenceError> {
        let (first, _) = self.steps.front().copied().unwrap_or((0, 0));
        let (last, _) = self.steps.back().copied().unwrap_or((0, 0));
        let segment = self
            .steps
            .get(self.steps.len() / 2)
            .map_or(self.segment, |s| s.1);
        let mut feats = self.fbank.compute(self.speech.make_contiguous());
        cmn(&mut feats);
        self.batch.push(Window {
            start: self.time_of(first),
            end: self.time_of(last + VAD_STEP as u64 - 1),
            segment,
            feats,
        });
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), InferenceError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let views: Vec<&[[f32; FBANK_BINS]]> = batch.iter().map(|w| &w.feats[..]).collect();
        let embeds = self.encoder.embed(&views)?;
        for (w, e) in batch.iter().zip(embeds) {
            self.add_to_segment(w, &e);
            self.on_window(w.start, w.end, e);
        }
        Ok(())
    }

    fn add_to_segment(&mut self, w: &Window, e: &[f32; EMBED_DIM]) {
        match self.segments.last_mut() {
            Some(seg) if seg.id == w.segment => {
                seg.end = seg.end.max(w.end);
                seg.windows += 1;
                seg.sum.iter_mut().zip(e).for_each(|(a, b)| *a += b);
            }
            _ => {
                self.segments.push(Segment {
                    id: w.segment,
                    start: w.start,
                    end: w.end,
                    windows: 1,
                    sum: *e,
                });
                if self.segments.len() > MAX_SEGMENTS {
                    self.merge_closest_neighbours();
                }
            }
        }
    }

    /// Merges the most similar pair of consecutive segments (bounded memory for long sessions).
    fn merge_closest_neighbours(&mut self) {
        let unit = |s: &Segment| {
            let mut v = s.sum;
            normalise(&mut v);
            v
        };
        // The newest segment may still grow: it is never merged.
        let n = self.segments.len() - 1;
        let best = (0..n.saturating_sub(1))
            .map(|i| {
                (
                    i,
                    cosine(&unit(&self.segments[i]), &unit(&self.segments[i + 1])),
                )
            })
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(i, _)| i);
        if let Some(i) = best {
            let next = self.segments.remove(i + 1);
            let seg = &mut self.segments[i];
            seg.end = next.end;
            seg.windows += next.windows;
            seg.sum.iter_mut().zip(&next.sum).for_each(|(a, b)| *a += b);
        }
    }

    fn on_window(&mut self, start: Pts, end: Pts, e: [f32; EMBED_DIM]) {
        self.windows += 1;
        self.sum.iter_mut().zip(&e).for_each(|(a, b)| *a += b);
        if let Some(r) = &self.reference {
            self.ref_sims.push(cosine(r, &e));
            let span = self.ref_span.get_or_insert((start, end));
            span.1 = end;
        }
        match self.enrolled {
            Some(c) => self.judge(start, end, cosine(&c, &e)),
            None => {
                self.enrol_buf.push(e);
                self.pending.push((start, end, e));
                if self.enrol_buf.len() >= self.params.enrol_windows {
                    self.enrol();
                }
            }
        }
    }

    fn enrol(&mut self) {
        let centroid = self.reference.unwrap_or_else(|| {
            let mut m = [0f32; EMBED_DIM];
            for e in &self.enrol_buf {
                m.iter_mut().zip(e).for_each(|(a, b)| *a += b);
            }
            normalise(&mut m);
            m
        });
        self.enrolled = Some(centroid);
        for (s, t, e) in std::mem::take(&mut self.pending) {
            self.judge(s, t, cosine(&centroid, &e));
        }
    }

    /// Judges one window on its own similarity: a 3 s CAM++ window is steady enough (single
    /// windows of one voice stay ≥ 0.64 on the fixtures) and averaging neighbours would only
    /// delay a change.
    fn judge(&mut self, start: Pts, end: Pts, sim: f32) {
        let centre = Pts((start.0 + end.0) / 2);
        self.samples.push(VoiceSample {
            centre,
            similarity: Some(sim),
        });
        if sim < self.params.same_voice {
            if !self.matched_once {
                return;
            }
            match &mut self.run {
                Some(r) => {
                    r.end = end;
                    r.windows += 1;
                    r.sim_sum += sim;
                }
                // A 3 s window turns once most of it is the other voice and the window before
                // it did not: the change lies within half a window of their boundary, this
                // window's start.
                None => {
                    self.run = Some(Run {
                        start,
                        end,
                        windows: 1,
                        sim_sum: sim,
                        matched_before: std::mem::take(&mut self.matched_since_run),
                    })
                }
            }
        } else {
            self.matched_once = true;
            self.matched_since_run += 1;
            if let Some(r) = self.run.take()
                && r.windows >= self.params.min_run_windows
            {
                self.closed_runs.push(r);
            }
        }
    }

    /// True once the candidate's voice was enrolled.
    pub fn enrolled(&self) -> bool {
        self.enrolled.is_some()
    }

    pub fn finish(mut self) -> Result<VoiceOutcome, InferenceError> {
        // The speech after the last window (up to 3 s) would otherwise go unheard: from half a
        // window on, the last 3 s of speech make one more window, so a voice that comes back
        // at the end is heard coming back.
        let since_last = self.steps_total.saturating_sub(WINDOW_STEPS) % HOP_STEPS;
        if self.steps_total > WINDOW_STEPS && since_last >= WINDOW_STEPS / 2 {
            self.make_window()?;
        }
        self.flush()?;
        if self.enrolled.is_none() && !self.enrol_buf.is_empty() {
            self.enrol();
        }
        let p = self.params.clone();
        let mut findings = Vec::new();
        if let Some(r) = self.run.take()
            && r.windows >= p.min_run_windows
        {
            let change = absorb_into_change(&self.closed_runs, &r, p.change_purity);
            if change.speech_s() >= p.min_change_s {
                self.closed_runs
                    .truncate(self.closed_runs.len() - change.absorbed);
                findings.push(VoiceFinding::SpeakerChange {
                    start: change.start,
                    end: change.end,
                    windows: change.other,
                    mean_similarity: change.sim_sum / change.other as f32,
                });
            } else {
                self.closed_runs.push(r);
            }
        }
        let total: f64 = self.closed_runs.iter().map(Run::speech_s).sum();
        if !self.closed_runs.is_empty() && total >= p.min_second_s {
            let windows: u64 = self.closed_runs.iter().map(|r| r.windows).sum();
            let sim: f32 = self.closed_runs.iter().map(|r| r.sim_sum).sum();
            findings.push(VoiceFinding::SecondSpeaker {
                start: self.closed_runs[0].start,
                end: self.closed_runs[self.closed_runs.len() - 1].end,
                runs: self.closed_runs.len() as u64,
                windows,
                mean_similarity: sim / windows as f32,
                split_gap: None,
            });
        }
        if self.reference.is_some() && !self.ref_sims.is_empty() {
            let mut s = self.ref_sims.clone();
            s.sort_by(f32::total_cmp);
            let median = s[s.len() / 2];
            if median < p.same_voice
                && let Some((start, end)) = self.ref_span
            {
                findings.push(VoiceFinding::ReferenceMismatch {
                    start,
                    end,
                    windows: s.len() as u64,
                    median_similarity: median,
                });
            }
        }
        let mean_embedding = (self.windows > 0).then(|| {
            let mut m = self.sum;
            normalise(&mut m);
            m
        });
        let split = split_segments(&self.segments);
        for f in &mut findings {
            if let VoiceFinding::SecondSpeaker { split_gap, .. } = f {
                *split_gap = split.as_ref().map(|s| s.gap);
            }
        }
        if let Some(sp) = &split {
            tracing::debug!(
                segments = self.segments.len(),
                gap = sp.gap,
                minority_segments = sp.minority_segments,
                minority_windows = sp.minority_windows,
                majority_windows = sp.majority_windows,
                switches = sp.switches,
                "speech segments split into two voices"
            );
        }
        Ok(VoiceOutcome {
            findings,
            split,
            samples: self.samples,
            enrolled: self.enrolled.is_some(),
            windows: self.windows,
            mean_embedding,
        })
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;

    /// A unit vector near axis `axis`, perturbed deterministically by `k`.
    fn voice(axis: usize, k: usize) -> [f32; EMBED_DIM] {
        let mut v = [0f32; EMBED_DIM];
        v[axis] = 1.0;
        v[(axis + 7 + k * 13) % EMBED_DIM] = 0.3;
        normalise(&mut v);
        v
    }

    fn seg(id: u64, e: [f32; EMBED_DIM]) -> Segment {
        Segment {
            id,
            start: Pts(id * 1_000_000_000),
            end: Pts(id * 1_000_000_000 + 900_000_000),
            windows: 2,
            sum: e.map(|x| x * 2.0),
        }
    }

    #[test]
    fn two_alternating_voices_split_cleanly_one_voice_does_not() {
        let two: Vec<Segment> = (0..10)
            .map(|i| seg(i, voice(if i % 3 == 2 { 100 } else { 0 }, i as usize)))
            .collect();
        let sp = split_segments(&two).unwrap();
        assert!(sp.gap > 0.5, "{sp:?}");
        assert_eq!(sp.minority_segments, 3);
        assert_eq!(sp.switches, 6);
        let one: Vec<Segment> = (0..10).map(|i| seg(i, voice(0, i as usize))).collect();
        let sp1 = split_segments(&one).unwrap();
        assert!(sp1.gap < sp.gap - 0.3, "{sp1:?}");
        assert!(split_segments(&one[..1]).is_none());
    }

    #[test]
    fn segments_stay_bounded_in_long_sessions() {
        let mut v = VoiceAnalyser::new(VoiceParams::default(), None).unwrap();
        for i in 0..(MAX_SEGMENTS as u64 + 200) {
            let w = Window {
                start: Pts(i),
                end: Pts(i + 1),
                segment: i,
                feats: Vec::new(),
            };
            v.add_to_segment(&w, &voice((i % 2) as usize * 50, i as usize));
        }
        assert_eq!(v.segments.len(), MAX_SEGMENTS);
        let windows: u32 = v.segments.iter().map(|s| s.windows).sum();
        assert_eq!(windows as usize, MAX_SEGMENTS + 200, "merged, not dropped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: u64, windows: u64, matched_before: u64) -> Run {
        Run {
            start: Pts(start * 1_000_000_000),
            end: Pts((start + windows) * 1_000_000_000),
            windows,
            sim_sum: 0.4 * windows as f32,
            matched_before,
        }
    }

    #[test]
    fn a_change_takes_in_the_runs_before_it_that_a_few_matching_windows_split_off() {
        // Other voice from 30 s, two windows matching by chance at 38–40 s, then on to the end.
        let closed = [run(10, 2, 5), run(30, 7, 15)];
        let last = run(40, 20, 2);
        let c = absorb_into_change(&closed, &last, 0.8);
        assert_eq!(c.start, Pts(30_000_000_000));
        assert_eq!((c.other, c.matched, c.absorbed), (27, 2, 1));
        // An interjection long before, with the candidate speaking in between, stays apart.
        let closed = [run(10, 3, 5), run(30, 20, 20)];
        let c = absorb_into_change(&closed, &run(60, 4, 20), 0.8);
        assert_eq!((c.start, c.absorbed), (Pts(60_000_000_000), 0));
    }
}
