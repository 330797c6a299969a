//! Clipping and dropouts that went through a lossy codec: the per-second level cues and the
//! detectors that read them at the end of the audio. The sample-exact cues (flat tops of
//! identical samples, runs of exact zeros) only survive lossless audio: AAC and Opus decode a
//! clipped stretch with overshoot and ripple on its flat tops, and a zeroed gap as a short decay
//! of the sound before it. What they keep is the shape of the level distribution:
//!
//! - **Clipping.** Loud samples pile up at the clip level: in a clipped second the 90th
//!   percentile of |x| stands close to the 99th (0.71–0.91 on the corpus's clipped AAC seconds,
//!   calibration half), where speech's peaky distribution keeps it near half; a loud sustained
//!   vowel can read as high for a second, so a span needs two ([`detect_clipping`]).
//! - **Dropouts.** A gap cut into the signal takes the room's noise with it: its level falls far
//!   below the recording's noise floor, which no pause, breath or reverberation tail does. How
//!   deep it falls depends on the codec: Opus decodes a zeroed gap as a decay of about 1.5 dB
//!   per 10 ms from the sound before it, so its shortest gaps never get under the floor.

use super::detect::median;
use super::{FLOOR_DB, Gap, RATE, SpectralFinding, SpectralParams, SpectralSecond};

/// Histogram bins of |x| over [0, 2): 1/128 full scale each (decoders overshoot past 1.0).
const TOP_BINS: usize = 256;
const TOP_BIN_PER_UNIT: f32 = 128.0;

/// |x| over one second of samples, for the flat-top share of [`TopStats::close`].
pub(super) struct TopStats {
    hist: Box<[u32; TOP_BINS]>,
    sum_sq: f64,
    n: u32,
}

/// One second's loudness and flat-top share.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SampleLevels {
    /// RMS of the samples, dBFS.
    pub rms_dbfs: f32,
    /// 90th over 99th percentile of |x|: near 1 when the loud samples sit at one level.
    pub top_ratio: f32,
}

impl TopStats {
    pub(super) fn new() -> Self {
        TopStats {
            hist: Box::new([0; TOP_BINS]),
            sum_sq: 0.0,
            n: 0,
        }
    }

    /// Adds samples; appends each completed second's levels to `out`.
    pub(super) fn push(&mut self, samples: &[f32], out: &mut Vec<SampleLevels>) {
        for &x in samples {
            let a = if x.is_finite() { x.abs() } else { 0.0 };
            self.hist[((a * TOP_BIN_PER_UNIT) as usize).min(TOP_BINS - 1)] += 1;
            self.sum_sq += (a * a) as f64;
            self.n += 1;
            if self.n as usize == RATE {
                out.push(self.close());
            }
        }
    }

    /// Samples since the last close.
    pub(super) fn pending(&self) -> bool {
        self.n > 0
    }

    /// The levels of the samples since the last close (a partial second at the end), and a reset.
    pub(super) fn close(&mut self) -> SampleLevels {
        let n = self.n.max(1) as f64;
        let ms = self.sum_sq / n;
        let q90 = self.quantile(0.90);
        let q99 = self.quantile(0.99);
        let out = SampleLevels {
            rms_dbfs: if ms > 0.0 {
                (10.0 * ms.log10()) as f32
            } else {
                FLOOR_DB
            },
            top_ratio: if q99 > 0.0 { q90 / q99 } else { 0.0 },
        };
        self.hist.fill(0);
        self.sum_sq = 0.0;
        self.n = 0;
        out
    }

    /// The `q` quantile of |x|, interpolated within its bin.
    fn quantile(&self, q: f64) -> f32 {
        let target = q * self.n as f64;
        let mut cum = 0.0;
        for (i, &c) in self.hist.iter().enumerate() {
            let next = cum + c as f64;
            if next >= target && c > 0 {
                let frac = ((target - cum) / c as f64).clamp(0.0, 1.0);
                return (i as f64 + frac) as f32 / TOP_BIN_PER_UNIT;
            }
            cum = next;
        }
        0.0
    }
}

/// Frames looked at on each side of a dip (300 ms).
pub(super) const DIP_GUARD: usize = 30;
/// A dip is a run of frames at least this far under the loudest of the frames before it.
const DIP_DROP_DB: f32 = 30.0;
/// Longest run still called a dip (300 ms): longer is a pause, whose level the seconds around
/// it can misjudge (a second with few pause frames reads its floor from speech tails). On the
/// corpus's calibration half the codec-decoded gaps (60–250 ms zeroed) ran 70–230 ms under the
/// sound before them; longer cuts of exact digital silence are still found sample-exactly, up
/// to [`super::SpectralParams::dropout_max_s`]. Set after the validation run showed five
/// pauses of 0.5–1.1 s taken for dropouts (BENCHMARKS.md says so).
const DIP_MAX_FRAMES: u32 = 30;
/// Shortest run (60 ms). The codec-decoded gaps of the calibration half ran 70–230 ms; a
/// noise-gated recording (`testdata/voice_same_bigfish.ogg`, game dialogue) drops 20–50 ms
/// under its floor between words. Set after that fixture failed `tests/spectral.rs`, with the
/// validation figures already seen (BENCHMARKS.md says so).
const DIP_MIN_FRAMES: u32 = 6;

/// The deepest dip inside sound that started in one second: a short run of frames far under
/// the sound before it, with sound after it. Whether it is a cut is decided against the noise
/// floor of the seconds around it ([`detect_dropouts`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dip {
    /// Time of the run's first frame, s.
    pub start_s: f64,
    pub dur_s: f64,
    /// Lowest frame level in the run, dBFS.
    pub min_dbfs: f32,
    /// Loudest frame in the [`DIP_GUARD`] frames before and after the run, dBFS.
    pub before_dbfs: f32,
    pub after_dbfs: f32,
}

/// Finds [`Dip`]s in the frame levels, keeping the deepest per second.
pub(super) struct DipTracker {
    ring: [f32; DIP_GUARD],
    pos: usize,
    frame: u64,
    /// The run in progress: first frame, frames, lowest level, loudest level before it.
    run: Option<(u64, u32, f32, f32)>,
    /// A finished run waiting for [`DIP_GUARD`] frames after it: (dip so far, frames seen).
    waiting: Option<(Dip, usize)>,
    /// Deepest dip per second, by the second its run started in.
    pub(super) per_second: Vec<Option<Dip>>,
}

impl DipTracker {
    pub(super) fn new() -> Self {
        DipTracker {
            ring: [FLOOR_DB; DIP_GUARD],
            pos: 0,
            frame: 0,
            run: None,
            waiting: None,
            per_second: Vec::new(),
        }
    }

    /// The next frame's level (dBFS, 10 ms hop).
    pub(super) fn push(&mut self, level: f32) {
        if let Some((d, seen)) = &mut self.waiting {
            d.after_dbfs = d.after_dbfs.max(level);
            *seen += 1;
            if *seen >= DIP_GUARD {
                let d = *d;
                self.waiting = None;
                self.keep(d);
            }
        }
        match &mut self.run {
            Some((_, n, min, loud)) if level < *loud - DIP_DROP_DB => {
                *n += 1;
                *min = min.min(level);
            }
            Some(_) => self.end_run(level),
            None => {
                // The loudest of the frames before: only needed to start a run.
                let before = self.ring.iter().copied().fold(FLOOR_DB, f32::max);
                if level < before - DIP_DROP_DB {
                    self.run = Some((self.frame, 1, level, before));
                }
            }
        }
        self.ring[self.pos] = level;
        self.pos = (self.pos + 1) % DIP_GUARD;
        self.frame += 1;
    }

    /// The run ended at a frame of `level`: a dip of the right length waits for the frames
    /// after it (a second run may start while it waits only once it is kept).
    fn end_run(&mut self, level: f32) {
        let Some((start, n, min, loud)) = self.run.take() else {
            return;
        };
        if !(DIP_MIN_FRAMES..=DIP_MAX_FRAMES).contains(&n) {
            return;
        }
        if let Some((d, _)) = self.waiting.take() {
            self.keep(d);
        }
        let dip = Dip {
            start_s: start as f64 * super::HOP as f64 / RATE as f64,
            dur_s: n as f64 * super::HOP as f64 / RATE as f64,
            min_dbfs: min,
            before_dbfs: loud,
            after_dbfs: level,
        };
        self.waiting = Some((dip, 1));
    }

    fn keep(&mut self, d: Dip) {
        let s = d.start_s as usize;
        if self.per_second.len() <= s {
            self.per_second.resize(s + 1, None);
        }
        let slot = &mut self.per_second[s];
        if slot.is_none_or(|o| d.min_dbfs < o.min_dbfs) {
            *slot = Some(d);
        }
    }

    /// Keeps a dip still waiting when the audio ends (its after-level is what was seen).
    pub(super) fn finish(&mut self) {
        if let Some((d, _)) = self.waiting.take() {
            self.keep(d);
        }
    }
}

/// Clipping spans: runs of seconds with flat-topped samples (lossless audio) or whose loud
/// samples pile up at one level (after a lossy codec); seconds next to each other form one span.
pub(super) fn detect_clipping(secs: &[SpectralSecond], p: &SpectralParams) -> Vec<SpectralFinding> {
    let mut out = Vec::new();
    // (first second, end, flat-topped samples, seconds clipped by their level distribution)
    let mut run: Option<(usize, usize, u64, u32)> = None;
    for (i, s) in secs.iter().enumerate() {
        let exact = s.clipped_samples >= p.clip_samples_per_s;
        let flat = s.sample_levels.rms_dbfs >= p.clip_loud_dbfs
            && s.sample_levels.top_ratio >= p.clip_top_ratio;
        if !(exact || flat) {
            continue;
        }
        let n = s.clipped_samples as u64;
        run = Some(match run {
            Some((a, e, c, f)) if i <= e + 1 => (a, i + 1, c + n, f + flat as u32),
            Some(done) => {
                out.extend(clipping(done));
                (i, i + 1, n, flat as u32)
            }
            None => (i, i + 1, n, flat as u32),
        });
    }
    out.extend(run.and_then(clipping));
    out
}

/// Fewest seconds a span found only by its level distribution must last: one loud sustained
/// vowel can stand as flat as a clipped second (a clean calibration recording's did, at
/// −10 dBFS, 0.82), clipping that costs the analysis lasts (the calibration half's clipped
/// stretches were found over 5 and 7 seconds).
const CLIP_MIN_FLAT_SECONDS: u32 = 2;

fn clipping((a, e, samples, flat_seconds): (usize, usize, u64, u32)) -> Option<SpectralFinding> {
    (samples > 0 || flat_seconds >= CLIP_MIN_FLAT_SECONDS).then_some(SpectralFinding::Clipping {
        start_s: a as f64,
        end_s: e as f64,
        samples,
        flat_seconds,
    })
}

/// How far under its own second's noise floor a dip must fall as well (dB). On the calibration
/// half the one dip that met the 20 dB rule in a pause stood 2.7 dB under its own second's
/// floor; the codec-decoded gaps found stood 5–21 dB under theirs.
const DIP_UNDER_OWN_FLOOR_DB: f32 = 5.0;

/// Dips that are cuts: far under the noise floor of the seconds around them (the median floor
/// of the 10 s before and 5 s after, the dip's own second left out), with sound above that
/// floor on both sides. Returned as gaps with how far under the floor each fell.
fn codec_gaps(secs: &[SpectralSecond], p: &SpectralParams) -> Vec<(Gap, f32)> {
    let mut out = Vec::new();
    for (i, s) in secs.iter().enumerate() {
        let Some(d) = s.dip else { continue };
        let mut floors: Vec<f32> = (i.saturating_sub(10)..(i + 6).min(secs.len()))
            .filter(|&k| k != i)
            .filter_map(|k| secs[k].noise_floor_dbfs)
            .collect();
        if floors.len() < 3 {
            continue;
        }
        let Some(floor) = median(&mut floors) else {
            continue;
        };
        let below = floor - d.min_dbfs;
        let sound = |l: f32| l >= floor + 6.0;
        // Its own second's floor too, when it has one: where the seconds around read their floor
        // high (few pause frames, mostly speech tails), a dip that only reaches the true floor
        // still stands at or near its own second's.
        let under_own = s
            .noise_floor_dbfs
            .is_none_or(|f| d.min_dbfs <= f - DIP_UNDER_OWN_FLOOR_DB);
        if below >= p.dropout_below_floor_db
            && under_own
            && sound(d.before_dbfs)
            && sound(d.after_dbfs)
        {
            let gap = Gap {
                start_s: d.start_s,
                dur_s: d.dur_s,
            };
            out.push((gap, below));
        }
    }
    out
}

/// Dropout spans: gaps of exact digital silence and cuts through a lossy codec (those that do
/// not overlap an exact gap); gaps within 2 s of each other form one span.
pub(super) fn detect_dropouts(
    exact: &[Gap],
    secs: &[SpectralSecond],
    p: &SpectralParams,
) -> Vec<SpectralFinding> {
    let overlaps = |g: &Gap| {
        exact
            .iter()
            .any(|x| x.start_s < g.start_s + g.dur_s && g.start_s < x.start_s + x.dur_s)
    };
    let mut gaps: Vec<(Gap, Option<f32>)> = exact.iter().map(|g| (*g, None)).collect();
    gaps.extend(
        codec_gaps(secs, p)
            .into_iter()
            .filter(|(g, _)| !overlaps(g))
            .map(|(g, below)| (g, Some(below))),
    );
    gaps.sort_by(|a, b| a.0.start_s.total_cmp(&b.0.start_s));
    let mut out = Vec::new();
    let mut i = 0;
    while i < gaps.len() {
        let mut j = i;
        while j + 1 < gaps.len()
            && gaps[j + 1].0.start_s <= gaps[j].0.start_s + gaps[j].0.dur_s + 2.0
        {
            j += 1;
        }
        let g = &gaps[i..=j];
        let last = &g[g.len() - 1].0;
        out.push(SpectralFinding::Dropout {
            start_s: g[0].0.start_s,
            end_s: last.start_s + last.dur_s,
            gaps: g.len() as u32,
            longest_s: g.iter().map(|x| x.0.dur_s).fold(0.0, f64::max),
            below_floor_db: g.iter().filter_map(|x| x.1).reduce(f32::max),
        });
        i = j + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clipped_second_has_its_loud_samples_at_one_level() {
        // Speech-like: Laplacian samples (speech's peaky amplitude distribution, q90/q99 ≈ 0.5),
        // from a fixed linear congruential sequence; clipped: the same, 24 dB hotter, at ±0.95.
        let mut state = 12345u64;
        let mut uniform = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64).max(1e-12)
        };
        let speech: Vec<f32> = (0..RATE)
            .map(|_| (0.05 * (uniform() / uniform()).ln()) as f32)
            .collect();
        let clipped: Vec<f32> = speech
            .iter()
            .map(|x| (x * 16.0).clamp(-0.95, 0.95))
            .collect();
        let mut t = TopStats::new();
        let mut out = Vec::new();
        t.push(&speech, &mut out);
        t.push(&clipped, &mut out);
        assert_eq!(out.len(), 2);
        assert!(out[0].top_ratio < 0.8, "{:?}", out[0]);
        assert!(out[1].top_ratio > 0.95, "{:?}", out[1]);
        assert!(out[1].rms_dbfs > out[0].rms_dbfs + 10.0);
    }

    #[test]
    fn a_dip_is_a_short_run_far_under_the_sound_before_it() {
        let mut d = DipTracker::new();
        // 1 s of sound at -20 dBFS, 80 ms at -90, sound again; then a slow fade to a pause.
        let levels = (0..100)
            .map(|_| -20.0)
            .chain((0..8).map(|_| -90.0))
            .chain((0..100).map(|_| -22.0))
            .chain((0..60).map(|i| -22.0 - i as f32 * 0.5))
            .chain((0..100).map(|_| -60.0));
        for l in levels {
            d.push(l);
        }
        d.finish();
        let dips: Vec<Dip> = d.per_second.iter().flatten().copied().collect();
        assert_eq!(dips.len(), 1, "{dips:?}");
        assert!((dips[0].start_s - 1.0).abs() < 1e-9);
        assert!((dips[0].dur_s - 0.08).abs() < 1e-9);
        assert_eq!(dips[0].min_dbfs, -90.0);
        assert_eq!((dips[0].before_dbfs, dips[0].after_dbfs), (-20.0, -22.0));
    }
}
