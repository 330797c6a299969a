//! Voice consistency: the same voice, the candidate's own, all session.
//!
//! The audio analyser runs one STFT over all of the audio (shared with the spectral analyser) and
//! hands this analyser the Resemblyzer mel rows of the frames whose centre the VAD called speech
//! (silence dropped); every 77 such rows a 160-frame partial window (1.6 s) is embedded by the
//! GE2E speaker encoder (batched), as Resemblyzer slices an utterance. Frames next to a pause
//! see the pause's samples rather than the next speech (before the STFT was shared, it ran over
//! the speech-only stream); scripts/accuracy-voice measured no change in the outcomes. Each window's
//! cosine similarity to the enrolled voice (the first seconds of speech, or `--reference-voice`)
//! drives sustained-span findings: a different voice that stays (`speaker_change`), other voices
//! interleaved with the candidate's (`second_speaker`), and a session that does not match the
//! reference recording (`reference_voice_mismatch`).
//!
//! Memory: one STFT window, the last 160 mel frames, a batch of windows and per-run summaries.
//! Embeddings are never logged, written or reported.

use crate::inference::{InferenceError, SessionPool, VOICE_ENCODER};
use crate::media::{AUDIO_RATE, Pts};
use ort::value::TensorRef;
use std::collections::VecDeque;

pub const EMBED_DIM: usize = 256;
pub const N_MELS: usize = 40;
const WINDOW_FRAMES: usize = 160;
const WINDOW_STEP: usize = 77;
/// STFT hop of the shared front end (10 ms at 16 kHz).
pub const HOP: usize = 160;
const BATCH: usize = 8;
/// Resemblyzer raises quiet audio to −30 dBFS (never lowers it).
const TARGET_DBFS: f64 = -30.0;

/// Session thresholds (policy values).
#[derive(Debug, Clone)]
pub struct VoiceParams {
    /// Similarity to the enrolled voice, averaged over 3 consecutive windows (≈ 3.1 s of speech),
    /// under which the speech is someone else's. Default 0.60: on the labelled recordings the
    /// same real voice stays ≥ 0.63 after averaging (single windows dip to 0.59 for an expressive
    /// actor), different clean voices sit at 0.35–0.55. Narrow-band telephone speech separates
    /// far less (different speakers 0.69–0.8) and is mostly not flagged.
    pub same_voice: f32,
    /// Windows averaged to enrol the candidate's voice (3 ≈ 3.1 s of speech).
    pub enrol_windows: usize,
    /// A different voice that stays to the end for at least this much speech. Default 5 s.
    pub min_change_s: f64,
    /// Other voices interleaved with the candidate's for at least this much speech in total.
    /// Default 3 s.
    pub min_second_s: f64,
    /// A run of other-voice windows counts from this many windows (2 ≈ 2.4 s of speech).
    pub min_run_windows: u64,
}

impl Default for VoiceParams {
    fn default() -> Self {
        VoiceParams {
            same_voice: 0.60,
            enrol_windows: 3,
            min_change_s: 5.0,
            min_second_s: 3.0,
            min_run_windows: 2,
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
    /// The speech segment (VAD run) the window's centre frame belongs to.
    segment: u64,
    mels: Vec<f32>,
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
}

impl Run {
    /// Seconds of speech the run's windows cover (pauses between them do not count).
    fn speech_s(&self) -> f64 {
        let step = (WINDOW_STEP * HOP) as f64 / AUDIO_RATE as f64;
        let window = (WINDOW_FRAMES * HOP) as f64 / AUDIO_RATE as f64;
        (self.windows.saturating_sub(1)) as f64 * step + window
    }
}

/// Resemblyzer GE2E encoder: sessions from the process-wide pool, one per batch run.
pub struct VoiceEncoder {
    pool: &'static SessionPool,
    input: Vec<f32>,
}

impl VoiceEncoder {
    pub fn load() -> Result<Self, InferenceError> {
        let pool = SessionPool::of(&VOICE_ENCODER);
        pool.warm()?;
        Ok(VoiceEncoder {
            pool,
            input: Vec::new(),
        })
    }

    /// Embeds `n` windows of 160×40 mels laid out back to back; returns L2-normalised embeddings.
    pub fn embed(&mut self, mels: &[&[f32]]) -> Result<Vec<[f32; EMBED_DIM]>, InferenceError> {
        let fail = |e: ort::Error| InferenceError::Run {
            model: VOICE_ENCODER.name.into(),
            reason: e.to_string(),
        };
        self.input.clear();
        for m in mels {
            self.input.extend_from_slice(m);
        }
        let input =
            TensorRef::from_array_view(([mels.len(), WINDOW_FRAMES, N_MELS], &self.input[..]))
                .map_err(fail)?;
        self.pool.with(|session| {
            let out = session.run(ort::inputs!["mels" => input]).map_err(fail)?;
            let (_, e) = out["embeds"].try_extract_tensor::<f32>().map_err(fail)?;
            Ok(e.chunks_exact(EMBED_DIM)
                .map(|c| {
                    let mut v = [0f32; EMBED_DIM];
                    v.copy_from_slice(c);
                    normalise(&mut v);
                    v
                })
                .collect())
        })
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
    encoder: VoiceEncoder,
    /// Last 160 mel frames, their frame indices in the whole stream (frame `j` is centred on
    /// sample `j·160`) and the energy (Σx²) of each frame's hop of samples.
    mels: VecDeque<[f32; N_MELS]>,
    frame_ids: VecDeque<u64>,
    /// Segment id of each frame in `mels` (a new segment starts after any gap in frame ids).
    frame_segs: VecDeque<u64>,
    segment: u64,
    last_frame: Option<u64>,
    segments: Vec<Segment>,
    hop_energy: VecDeque<f64>,
    frames_total: usize,
    stream_start: Pts,
    batch: Vec<Window>,
    reference: Option<[f32; EMBED_DIM]>,
    enrolled: Option<[f32; EMBED_DIM]>,
    enrol_buf: Vec<[f32; EMBED_DIM]>,
    pending: Vec<(Pts, Pts, [f32; EMBED_DIM])>,
    /// Raw similarities waiting for their right-hand neighbour: each window is judged on the mean
    /// of itself and its neighbours (one window of lag).
    recent: VecDeque<(Pts, Pts, f32)>,
    run: Option<Run>,
    closed_runs: Vec<Run>,
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
            encoder: VoiceEncoder::load()?,
            mels: VecDeque::with_capacity(WINDOW_FRAMES + 1),
            frame_ids: VecDeque::with_capacity(WINDOW_FRAMES + 1),
            frame_segs: VecDeque::with_capacity(WINDOW_FRAMES + 1),
            segment: 0,
            last_frame: None,
            segments: Vec::new(),
            hop_energy: VecDeque::with_capacity(WINDOW_FRAMES + 1),
            frames_total: 0,
            stream_start: Pts(0),
            batch: Vec::new(),
            reference,
            enrolled: None,
            enrol_buf: Vec::new(),
            pending: Vec::new(),
            recent: VecDeque::with_capacity(3),
            run: None,
            closed_runs: Vec::new(),
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

    /// Feeds the mel row of one speech frame of the shared STFT: `frame` is its index in the
    /// whole stream and `hop_energy` the energy (Σx²) of the 160 samples from its centre on.
    pub fn push_frame(
        &mut self,
        row: [f32; N_MELS],
        hop_energy: f64,
        frame: u64,
    ) -> Result<(), InferenceError> {
        self.hop_energy.push_back(hop_energy);
        self.frame_ids.push_back(frame);
        if self.last_frame.is_some_and(|l| frame != l + 1) {
            self.segment += 1;
        }
        self.last_frame = Some(frame);
        self.frame_segs.push_back(self.segment);
        self.push_row(row)
    }

    fn push_row(&mut self, row: [f32; N_MELS]) -> Result<(), InferenceError> {
        self.mels.push_back(row);
        self.frames_total += 1;
        if self.mels.len() > WINDOW_FRAMES {
            self.mels.pop_front();
            self.frame_ids.pop_front();
            self.frame_segs.pop_front();
        }
        while self.hop_energy.len() > WINDOW_FRAMES {
            self.hop_energy.pop_front();
        }
        if self.frames_total >= WINDOW_FRAMES
            && (self.frames_total - WINDOW_FRAMES).is_multiple_of(WINDOW_STEP)
        {
            // Volume normalisation after the fact: mel power scales with gain².
            let energy: f64 = self.hop_energy.iter().sum();
            let n = (self.hop_energy.len().max(1) * HOP) as f64;
            let dbfs = 10.0 * (energy / n).max(1e-12).log10();
            let gain2 = if dbfs < TARGET_DBFS {
                10f64.powf((TARGET_DBFS - dbfs) / 10.0) as f32
            } else {
                1.0
            };
            let mut mels = Vec::with_capacity(WINDOW_FRAMES * N_MELS);
            for r in &self.mels {
                mels.extend(r.iter().map(|v| v * gain2));
            }
            let first = self.frame_ids.front().copied().unwrap_or(0);
            let last = self.frame_ids.back().copied().unwrap_or(0);
            let (start, end) = (
                self.time_of(first * HOP as u64),
                self.time_of(last * HOP as u64 + HOP as u64 - 1),
            );
            let segment = self
                .frame_segs
                .get(self.frame_segs.len() / 2)
                .copied()
                .unwrap_or(self.segment);
            self.batch.push(Window {
                start,
                end,
                segment,
                mels,
            });
            if self.batch.len() >= BATCH {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), InferenceError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let views: Vec<&[f32]> = batch.iter().map(|w| &w.mels[..]).collect();
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
            Some(c) => self.smooth(start, end, cosine(&c, &e)),
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
            self.smooth(s, t, cosine(&centroid, &e));
        }
    }

    /// Queues a window's raw similarity and judges the window before it on the centred mean.
    fn smooth(&mut self, start: Pts, end: Pts, sim: f32) {
        self.recent.push_back((start, end, sim));
        if self.recent.len() > 3 {
            self.recent.pop_front();
        }
        match self.recent.len() {
            // First window: judged once its right neighbour arrives (or at finish).
            1 => {}
            2 if self.samples.is_empty() => {
                let (s, t, _) = self.recent[0];
                let m = (self.recent[0].2 + self.recent[1].2) / 2.0;
                self.judge(s, t, self.recent[0].2, m);
            }
            _ => {
                let n = self.recent.len();
                let (s, t, raw) = self.recent[n - 2];
                let m = self.recent.iter().map(|r| r.2).sum::<f32>() / n as f32;
                self.judge(s, t, raw, m);
            }
        }
    }

    /// Judges the last queued window (no right neighbour) at the end of the stream.
    fn flush_smoothing(&mut self) {
        let n = self.recent.len();
        if n == 0 {
            return;
        }
        let (s, t, raw) = self.recent[n - 1];
        let from = n.saturating_sub(2);
        let m = self.recent.iter().skip(from).map(|r| r.2).sum::<f32>() / (n - from) as f32;
        self.judge(s, t, raw, m);
        self.recent.clear();
    }

    fn judge(&mut self, start: Pts, end: Pts, raw: f32, sim: f32) {
        let centre = Pts((start.0 + end.0) / 2);
        self.samples.push(VoiceSample {
            centre,
            similarity: Some(raw),
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
                None => {
                    self.run = Some(Run {
                        start,
                        end,
                        windows: 1,
                        sim_sum: sim,
                    })
                }
            }
        } else {
            self.matched_once = true;
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
        self.flush()?;
        if self.enrolled.is_none() && !self.enrol_buf.is_empty() {
            self.enrol();
        }
        self.flush_smoothing();
        let p = self.params.clone();
        let mut findings = Vec::new();
        if let Some(r) = self.run.take()
            && r.windows >= p.min_run_windows
        {
            if r.speech_s() >= p.min_change_s {
                findings.push(VoiceFinding::SpeakerChange {
                    start: r.start,
                    end: r.end,
                    windows: r.windows,
                    mean_similarity: r.sim_sum / r.windows as f32,
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
                mels: Vec::new(),
            };
            v.add_to_segment(&w, &voice((i % 2) as usize * 50, i as usize));
        }
        assert_eq!(v.segments.len(), MAX_SEGMENTS);
        let windows: u32 = v.segments.iter().map(|s| s.windows).sum();
        assert_eq!(windows as usize, MAX_SEGMENTS + 200, "merged, not dropped");
    }
}
