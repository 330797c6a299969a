//! Synthetic-voice evidence from the AASIST anti-spoofing model.
//!
//! AASIST (`models/README.md`) scores 4.04 s of raw audio: `logit[bona fide] − logit[spoof]`.
//! It was trained on studio speech (ASVspoof 2019 LA), so its own threshold (0) calls most real
//! meeting audio spoofed; the score is used only against a threshold calibrated on the project's
//! labelled real and synthetic speech (`scripts/accuracy`), and only as a session-level median
//! over several windows, never one window's verdict.
//!
//! Cost bounds the design: one window costs about as much as a minute of VAD, so windows are
//! taken from speech onsets at a spacing of speech time that doubles whenever `max_windows`
//! scores are held (every other one is then dropped). The windows kept are therefore spread over
//! the whole session, their number stays between `max_windows / 2` and `max_windows`, and the
//! result does not depend on how the audio was chunked.

use crate::inference::{AASIST_WINDOW, Aasist, InferenceError};
use crate::media::{AUDIO_RATE, Pts};

/// Window schedule (policy values).
#[derive(Debug, Clone)]
pub struct SpoofParams {
    /// Seconds of speech between the starts of two scored windows, at first. Default 6 s.
    pub every_s: f64,
    /// Most windows held (and scored) per session. Default 8.
    pub max_windows: usize,
    /// A session whose median window score is below this speaks with a synthetic voice.
    /// Calibrated on the calibration half of the labelled corpus (`scripts/accuracy`,
    /// BENCHMARKS.md): the lowest threshold that raises nothing on its real voices.
    pub synthetic_below: f32,
    /// Fewest windows for a decision (one window is too little evidence). Default 2.
    pub min_windows: usize,
}

impl Default for SpoofParams {
    fn default() -> Self {
        SpoofParams {
            every_s: 6.0,
            max_windows: 8,
            synthetic_below: -12.5,
            min_windows: 2,
        }
    }
}

/// One scored window (no audio kept).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpoofWindow {
    pub start: Pts,
    pub end: Pts,
    /// AASIST's `logit[bona fide] − logit[spoof]`: lower is more like synthetic speech.
    pub score: f32,
}

/// What the spoof analyser measured.
#[derive(Debug, Clone, Default)]
pub struct SpoofOutcome {
    pub windows: Vec<SpoofWindow>,
}

/// A session whose voice AASIST scores as synthetic.
#[derive(Debug, Clone, PartialEq)]
pub struct SpoofFinding {
    pub start: Pts,
    pub end: Pts,
    pub windows: usize,
    pub median_score: f32,
    pub threshold: f32,
}

impl SpoofOutcome {
    /// The session-level decision: the median of the window scores under the calibrated
    /// threshold, over at least `min_windows` windows.
    pub fn finding(&self, p: &SpoofParams) -> Option<SpoofFinding> {
        let median = self.median()?;
        (self.windows.len() >= p.min_windows && median < p.synthetic_below).then(|| SpoofFinding {
            start: self.windows[0].start,
            end: self.windows[self.windows.len() - 1].end,
            windows: self.windows.len(),
            median_score: median,
            threshold: p.synthetic_below,
        })
    }

    /// Median window score; `None` without windows.
    pub fn median(&self) -> Option<f32> {
        let mut s: Vec<f32> = self.windows.iter().map(|w| w.score).collect();
        s.sort_by(f32::total_cmp);
        s.get(s.len() / 2).copied()
    }
}

/// Sequential state; feed every VAD step in stream order with its speech flag.
pub struct SpoofAnalyser {
    params: SpoofParams,
    model: Aasist,
    stream_start: Pts,
    /// Audio being captured for the next window and the stream index of its first sample.
    capture: Vec<f32>,
    capture_from: u64,
    speech_samples: u64,
    next_at: u64,
    interval: u64,
    windows: Vec<SpoofWindow>,
}

impl SpoofAnalyser {
    pub fn new(params: SpoofParams) -> Result<Self, InferenceError> {
        let interval = (params.every_s.max(0.5) * AUDIO_RATE as f64) as u64;
        Ok(SpoofAnalyser {
            params,
            model: Aasist::load()?,
            stream_start: Pts(0),
            capture: Vec::with_capacity(AASIST_WINDOW),
            capture_from: 0,
            speech_samples: 0,
            next_at: 0,
            interval,
            windows: Vec::new(),
        })
    }

    /// Time of the first audio sample (the original-stream origin).
    pub fn set_stream_start(&mut self, pts: Pts) {
        self.stream_start = pts;
    }

    fn time_of(&self, sample: u64) -> Pts {
        Pts(self.stream_start.0 + sample * 1_000_000_000 / AUDIO_RATE as u64)
    }

    /// Feeds one VAD step; `first` is the stream index of its first sample. A window starts at
    /// a speech step once enough speech has passed since the last one, then takes the audio as
    /// it comes (pauses included: how a voice pauses is part of what the model judges).
    pub fn push(
        &mut self,
        samples: &[f32],
        first: u64,
        speech: bool,
    ) -> Result<(), InferenceError> {
        if speech {
            self.speech_samples += samples.len() as u64;
        }
        if self.capture.is_empty() {
            if !speech || self.speech_samples < self.next_at + samples.len() as u64 {
                return Ok(());
            }
            self.capture_from = first;
        }
        let take = (AASIST_WINDOW - self.capture.len()).min(samples.len());
        self.capture.extend(
            samples[..take]
                .iter()
                .map(|&x| if x.is_finite() { x } else { 0.0 }),
        );
        if self.capture.len() == AASIST_WINDOW {
            self.score_capture()?;
        }
        Ok(())
    }

    fn score_capture(&mut self) -> Result<(), InferenceError> {
        let score = self.model.score(&[&self.capture[..]])?[0];
        let start = self.time_of(self.capture_from);
        let end = self.time_of(self.capture_from + self.capture.len() as u64);
        tracing::debug!(start_s = start.as_secs_f64(), score, "aasist window");
        self.windows.push(SpoofWindow { start, end, score });
        self.capture.clear();
        self.next_at = self.speech_samples + self.interval;
        if self.windows.len() >= self.params.max_windows.max(2) {
            // Keep every other window and halve the rate: bounded cost, spread over the session.
            let mut i = 0;
            self.windows.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.interval *= 2;
        }
        Ok(())
    }

    /// Scores a partly captured window of at least 2 s at the end (short sessions), then
    /// returns the windows in time order.
    pub fn finish(mut self) -> Result<SpoofOutcome, InferenceError> {
        if self.capture.len() >= 2 * AUDIO_RATE as usize {
            self.score_capture()?;
        }
        Ok(SpoofOutcome {
            windows: self.windows,
        })
    }
}
