//! Audio levels per second, streaming voice activity (Silero VAD) and the one shared STFT.
//!
//! Silero VAD is a recurrent model: each 512-sample step carries the previous step's state and
//! the last 64 samples as context, so it runs sequentially over the stream (in parallel with the
//! video work, not within itself). Memory is the per-second summary only.
//!
//! After the VAD has judged a step, its samples go through one STFT (n_fft 400, hop 160): every
//! power frame feeds the spectral analyser with the VAD flag of the frame's centre. Steps in
//! speech also go to the voice analyser (on its own thread, `voice_thread.rs`), which embeds
//! windows of speech with its own front end.

use crate::analysis::spectral::{self, SpectralAnalyser, SpectralOutcome};
use crate::analysis::voice::{VoiceAnalyser, VoiceOutcome};
use crate::analysis::voice_thread::VoiceThread;
use crate::dsp::stft::Stft;
use crate::inference::{InferenceError, SILERO_VAD, SessionPool, timing};
use crate::media::{AUDIO_RATE, Pts};
use ndarray::{Array0, Array2, Array3};
use ort::value::TensorRef;
use std::collections::VecDeque;

pub const VAD_STEP: usize = 512;
/// Samples per envelope value (100 ms at 16 kHz).
pub const ENVELOPE_HOP: u64 = 1600;
const VAD_CONTEXT: usize = 64;

/// Streaming Silero VAD: feed 512-sample steps in order. The recurrent state lives here, per
/// stream; the ONNX Runtime session comes from the process-wide pool for each step.
pub struct Vad {
    pool: &'static SessionPool,
    state: Array3<f32>,
    input: Array2<f32>,
    sr: Array0<i64>,
}

impl Vad {
    pub fn new() -> Result<Self, InferenceError> {
        let pool = SessionPool::of(&SILERO_VAD);
        pool.warm()?;
        Ok(Vad {
            pool,
            state: Array3::zeros((2, 1, 128)),
            input: Array2::zeros((1, VAD_CONTEXT + VAD_STEP)),
            sr: Array0::from_elem((), AUDIO_RATE as i64),
        })
    }

    /// Speech probability of the next 512 samples.
    pub fn step(&mut self, samples: &[f32]) -> Result<f32, InferenceError> {
        debug_assert_eq!(samples.len(), VAD_STEP);
        let fail = |e: ort::Error| InferenceError::Run {
            model: SILERO_VAD.name.into(),
            reason: e.to_string(),
        };
        {
            let row = self.input.as_slice_mut().expect("standard layout");
            row.copy_within(VAD_STEP.., 0); // last 64 samples of the previous step become context
            row[VAD_CONTEXT..].copy_from_slice(samples);
        }
        let (input, state, sr) = (&self.input, &mut self.state, &self.sr);
        self.pool.with(|session| {
            let inputs = ort::inputs![
                "input" => TensorRef::from_array_view(input).map_err(fail)?,
                "state" => TensorRef::from_array_view(&*state).map_err(fail)?,
                "sr" => TensorRef::from_array_view(sr).map_err(fail)?,
            ];
            let outputs = timing::timed(&SILERO_VAD, || session.run(inputs)).map_err(fail)?;
            let prob = outputs["output"].try_extract_array::<f32>().map_err(fail)?[[0, 0]];
            let new_state = outputs["stateN"].try_extract_array::<f32>().map_err(fail)?;
            state
                .as_slice_mut()
                .expect("standard layout")
                .copy_from_slice(new_state.as_slice().ok_or_else(|| InferenceError::Run {
                    model: SILERO_VAD.name.into(),
                    reason: "stateN is not contiguous".into(),
                })?);
            Ok(prob)
        })
    }
}

/// Hysteresis thresholds for turning VAD probabilities into speech.
#[derive(Debug, Clone)]
pub struct VadParams {
    /// Probability at which speech starts. Default 0.5 (Silero's own default).
    pub on: f32,
    /// Probability under which speech ends. Default 0.35.
    pub off: f32,
}

impl Default for VadParams {
    fn default() -> Self {
        VadParams { on: 0.5, off: 0.35 }
    }
}

/// Per-second audio summary for the timeline.
#[derive(Debug, Clone, Default)]
pub struct SecondStats {
    sum_sq: f64,
    n: u32,
    peak: f32,
    prob_sum: f32,
    prob_n: u32,
    speech_steps: u32,
}

impl SecondStats {
    pub fn rms_dbfs(&self) -> f32 {
        if self.n == 0 {
            return -100.0;
        }
        let rms = (self.sum_sq / self.n as f64).sqrt();
        (20.0 * rms.max(1e-5).log10()) as f32
    }
    pub fn mean_speech_prob(&self) -> Option<f32> {
        (self.prob_n > 0).then(|| self.prob_sum / self.prob_n as f32)
    }
    pub fn peak(&self) -> f32 {
        self.peak
    }
    /// Mostly speech: at least half of the second's VAD steps were in speech.
    pub fn is_speech(&self) -> bool {
        self.prob_n > 0 && self.speech_steps * 2 >= self.prob_n
    }
}

/// What the audio analyser found.
pub struct AudioSummary {
    /// Time of the first sample.
    pub start: Pts,
    /// RMS loudness per 100 ms (the speech envelope lip-sync compares with the mouth).
    pub envelope: Vec<f32>,
    pub samples: u64,
    pub per_second: Vec<SecondStats>,
    pub speech_s: f64,
    pub voice: VoiceOutcome,
    /// `None` when the spectral analyser was not run (reference recordings).
    pub spectral: Option<SpectralOutcome>,
}

/// Sequential audio state; feed chunks in stream order.
pub struct AudioAnalyser {
    vad: Vad,
    params: VadParams,
    start: Option<Pts>,
    pending: Vec<f32>,
    samples: u64,
    vad_samples: u64,
    in_speech: bool,
    speech_steps: u64,
    per_second: Vec<SecondStats>,
    envelope: Vec<f32>,
    env_acc: f64,
    voice: VoiceThread,
    spectral: Option<SpectralAnalyser>,
    stft: Stft,
    /// Speech flags of the last VAD steps (step index, speech): a frame's centre lies in the step
    /// being fed or the one before.
    step_flags: VecDeque<(u64, bool)>,
    /// Frames out of the STFT.
    frames: u64,
    frame_buf: Vec<f32>,
}

impl AudioAnalyser {
    /// `spectral`: the spectral anomaly analyser, fed every frame (`None` for a reference
    /// recording, where only the voice matters).
    pub fn new(
        params: VadParams,
        voice: VoiceAnalyser,
        spectral: Option<SpectralAnalyser>,
    ) -> Result<Self, InferenceError> {
        Ok(AudioAnalyser {
            voice: VoiceThread::spawn(voice),
            spectral,
            stft: Stft::new(spectral::N_FFT, spectral::HOP),
            step_flags: VecDeque::with_capacity(4),
            frames: 0,
            frame_buf: Vec::with_capacity(spectral::BINS * 4),
            envelope: Vec::new(),
            env_acc: 0.0,
            vad: Vad::new()?,
            params,
            start: None,
            pending: Vec::with_capacity(AUDIO_RATE as usize * 2),
            samples: 0,
            vad_samples: 0,
            in_speech: false,
            speech_steps: 0,
            per_second: Vec::new(),
        })
    }

    fn second(&mut self, sample_index: u64) -> &mut SecondStats {
        let s = (sample_index / AUDIO_RATE as u64) as usize;
        if self.per_second.len() <= s {
            self.per_second.resize(s + 1, SecondStats::default());
        }
        &mut self.per_second[s]
    }

    /// Appends samples (levels are updated at once, VAD runs on [`Self::process`]).
    pub fn push(&mut self, pts: Pts, samples: &[f32]) {
        if self.start.is_none() {
            self.start = Some(pts);
            self.voice.set_stream_start(pts);
        }
        for &x in samples {
            let idx = self.samples;
            let st = self.second(idx);
            st.sum_sq += (x as f64) * (x as f64);
            st.n += 1;
            st.peak = st.peak.max(x.abs());
            self.env_acc += (x as f64) * (x as f64);
            self.samples += 1;
            if self.samples.is_multiple_of(ENVELOPE_HOP) {
                self.envelope
                    .push((self.env_acc / ENVELOPE_HOP as f64).sqrt() as f32);
                self.env_acc = 0.0;
            }
        }
        self.pending.extend_from_slice(samples);
    }

    /// Appends a chunk and runs the VAD (and the voice analyser behind it) once a second of
    /// audio is waiting. Results do not depend on how the stream is chunked.
    pub fn feed(&mut self, pts: Pts, samples: &[f32]) -> Result<(), InferenceError> {
        self.push(pts, samples);
        if self.pending.len() >= AUDIO_RATE as usize {
            self.process()?;
        }
        Ok(())
    }

    /// Runs the VAD over every complete 512-sample step buffered so far.
    pub fn process(&mut self) -> Result<(), InferenceError> {
        let steps = self.pending.len() / VAD_STEP;
        for i in 0..steps {
            let (a, b) = (i * VAD_STEP, (i + 1) * VAD_STEP);
            let p = self.vad.step(&self.pending[a..b])?;
            if self.in_speech {
                self.in_speech = p >= self.params.off;
            } else {
                self.in_speech = p >= self.params.on;
            }
            let idx = self.vad_samples;
            let speech = self.in_speech;
            let st = self.second(idx);
            st.prob_sum += p;
            st.prob_n += 1;
            st.speech_steps += speech as u32;
            self.speech_steps += speech as u64;
            self.step_flags.push_back((idx / VAD_STEP as u64, speech));
            if self.step_flags.len() > 3 {
                self.step_flags.pop_front();
            }
            let pending = std::mem::take(&mut self.pending);
            let r = self.front(&pending[a..b]).and_then(|()| {
                if speech {
                    self.voice.push_speech(&pending[a..b], idx)?;
                }
                Ok(())
            });
            self.pending = pending;
            r?;
            self.vad_samples += VAD_STEP as u64;
        }
        self.pending.drain(..steps * VAD_STEP);
        Ok(())
    }

    /// Whether the VAD called the sample at `index` speech (false where it has not run).
    fn speech_at(&self, index: u64) -> bool {
        let step = index / VAD_STEP as u64;
        self.step_flags
            .iter()
            .rev()
            .find(|(s, _)| *s == step)
            .is_some_and(|(_, f)| *f)
    }

    /// Runs samples (already judged by the VAD) through the shared STFT and hands out frames.
    fn front(&mut self, samples: &[f32]) -> Result<(), InferenceError> {
        if let Some(s) = &mut self.spectral {
            s.push_samples(samples);
        }
        let clean: std::borrow::Cow<[f32]> = if samples.iter().all(|x| x.is_finite()) {
            samples.into()
        } else {
            samples
                .iter()
                .map(|&x| if x.is_finite() { x } else { 0.0 })
                .collect::<Vec<_>>()
                .into()
        };
        let buf = &mut self.frame_buf;
        self.stft.push(&clean, |p| buf.extend_from_slice(p));
        self.drain_frames()
    }

    fn drain_frames(&mut self) -> Result<(), InferenceError> {
        let buf = std::mem::take(&mut self.frame_buf);
        let hop = spectral::HOP as u64;
        for p in buf.chunks_exact(spectral::BINS) {
            let j = self.frames;
            self.frames += 1;
            let speech = self.speech_at(j * hop);
            if let Some(s) = &mut self.spectral {
                s.push_frame(p, speech);
            }
        }
        self.frame_buf = buf;
        self.frame_buf.clear();
        Ok(())
    }

    pub fn finish(mut self) -> Result<AudioSummary, InferenceError> {
        self.process()?;
        // The tail shorter than a VAD step is not speech; it still belongs to the spectrum.
        let tail = std::mem::take(&mut self.pending);
        self.front(&tail)?;
        let buf = &mut self.frame_buf;
        self.stft.finish(|p| buf.extend_from_slice(p));
        self.drain_frames()?;
        let voice = self.voice.finish()?;
        let spectral = self.spectral.map(SpectralAnalyser::finish);
        Ok(AudioSummary {
            voice,
            spectral,
            envelope: self.envelope,
            start: self.start.unwrap_or_default(),
            samples: self.samples,
            per_second: self.per_second,
            speech_s: self.speech_steps as f64 * VAD_STEP as f64 / AUDIO_RATE as f64,
        })
    }
}
