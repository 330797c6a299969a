//! Wrappers for the speech models added by issue 14: the CAM++ speaker embedder, pyannote
//! segmentation-3.0 and AASIST. Each takes its sessions from the process-wide [`SessionPool`]
//! (one checked out per batch run, never holding the pool's lock while running), so concurrent
//! analyses share about as many ONNX Runtime sessions as run at once. `load()` warms the pool:
//! a missing, corrupt or swapped model file fails there, naming the file.
//!
//! Inputs are batched: one ONNX Runtime call per `embed`/`run`/`score`. Pre-processing and what
//! the outputs mean are in `models/README.md`.

use super::{AASIST, CAMPPLUS, InferenceError, ModelSpec, SEGMENTATION, SessionPool, timing};
use crate::dsp::fbank::FBANK_BINS;
use ndarray::Array2;
use ort::value::TensorRef;

/// Dimension of a CAM++ embedding.
pub const CAMPPLUS_DIM: usize = 192;
/// Samples in one segmentation chunk (10 s at 16 kHz).
pub const SEGMENTATION_CHUNK: usize = 160_000;
/// Output frames per segmentation chunk.
pub const SEGMENTATION_FRAMES: usize = 589;
/// Powerset classes per output frame.
pub const SEGMENTATION_CLASSES: usize = 7;
/// Samples between the starts of consecutive output frames (≈ 16.9 ms).
pub const SEGMENTATION_FRAME_STEP: usize = 270;
/// Samples each output frame sees (its receptive field, ≈ 61.9 ms): frame `i` covers samples
/// `i·270 .. i·270 + 991` of its chunk.
pub const SEGMENTATION_FRAME_SPAN: usize = 991;
/// The local speakers active in each powerset class: ∅, A, B, C, A+B, A+C, B+C. Speaker
/// indices are local to a chunk (A in one chunk is not A in the next).
pub const SEGMENTATION_POWERSET: [&[usize]; SEGMENTATION_CLASSES] =
    [&[], &[0], &[1], &[2], &[0, 1], &[0, 2], &[1, 2]];
/// Samples in one AASIST window (4.04 s at 16 kHz).
pub const AASIST_WINDOW: usize = 64_600;

fn run_err(spec: &ModelSpec) -> impl Fn(ort::Error) -> InferenceError + '_ {
    move |e| InferenceError::Run {
        model: spec.name.to_string(),
        reason: e.to_string(),
    }
}

fn bad_input(spec: &ModelSpec, detail: String) -> InferenceError {
    InferenceError::BadInput {
        model: spec.name.to_string(),
        detail,
    }
}

/// CAM++ speaker embedder. Compare embeddings by cosine (they are returned L2-normalised, so
/// the cosine is the dot product).
pub struct CamPlus {
    pool: &'static SessionPool,
    input: Vec<f32>,
}

impl CamPlus {
    /// Checks the model file (sha256) and warms the pool in the background: its first session
    /// takes ≈ 0.6 s to build, and the first batch of windows comes only after ≥ 12 s of
    /// speech. The graph's inputs and outputs are checked when that session is built.
    pub fn load() -> Result<Self, InferenceError> {
        let pool = SessionPool::of(&CAMPPLUS);
        pool.warm_in_background()?;
        Ok(CamPlus {
            pool,
            input: Vec::new(),
        })
    }

    /// Embeds a batch of windows, each `T` frames of [`crate::dsp::fbank::campplus_features`]
    /// (Kaldi fbank, then CMN over that window). All windows of one call must have the same `T`
    /// (T may differ from call to call; group windows by length). Returns one L2-normalised
    /// 192-d embedding per window, in order; an empty batch gives an empty result.
    pub fn embed(
        &mut self,
        windows: &[&[[f32; FBANK_BINS]]],
    ) -> Result<Vec<[f32; CAMPPLUS_DIM]>, InferenceError> {
        let Some(first) = windows.first() else {
            return Ok(Vec::new());
        };
        let t = first.len();
        if t == 0 {
            return Err(bad_input(&CAMPPLUS, "a window has no frames".into()));
        }
        if let Some(w) = windows.iter().find(|w| w.len() != t) {
            return Err(bad_input(
                &CAMPPLUS,
                format!(
                    "windows of one batch must have equal lengths ({t} and {} frames)",
                    w.len()
                ),
            ));
        }
        let fail = run_err(&CAMPPLUS);
        self.input.clear();
        for w in windows {
            self.input.extend(w.iter().flatten());
        }
        let input = TensorRef::from_array_view(([windows.len(), t, FBANK_BINS], &self.input[..]))
            .map_err(&fail)?;
        self.pool.with(|session| {
            let out = timing::timed(&CAMPPLUS, || session.run(ort::inputs!["feats" => input]))
                .map_err(&fail)?;
            let (_, e) = out["embedding"]
                .try_extract_tensor::<f32>()
                .map_err(&fail)?;
            Ok(e.chunks_exact(CAMPPLUS_DIM)
                .map(|c| {
                    let norm = c.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                    let mut v = [0f32; CAMPPLUS_DIM];
                    for (o, x) in v.iter_mut().zip(c) {
                        *o = x / norm;
                    }
                    v
                })
                .collect())
        })
    }
}

impl Drop for CamPlus {
    /// Never leaves the pool's warm-up thread running behind an analysis that ended early (no
    /// audio, or an error): see [`SessionPool::settle`].
    fn drop(&mut self) {
        self.pool.settle();
    }
}

/// pyannote segmentation-3.0 (speaker activity and overlap of up to three local speakers).
pub struct Segmentation {
    pool: &'static SessionPool,
    input: Vec<f32>,
}

impl Segmentation {
    /// Checks the model file (sha256, inputs, outputs) and warms the pool.
    pub fn load() -> Result<Self, InferenceError> {
        let pool = SessionPool::of(&SEGMENTATION);
        pool.warm()?;
        Ok(Segmentation {
            pool,
            input: Vec::new(),
        })
    }

    /// Runs a batch of chunks of at most 160 000 samples (10 s of 16 kHz mono in [-1, 1];
    /// shorter chunks are zero-padded at the end). Returns per chunk a 589 × 7 array of
    /// log-probabilities over [`SEGMENTATION_POWERSET`], one row per
    /// [`SEGMENTATION_FRAME_STEP`] samples.
    pub fn run(&mut self, chunks: &[&[f32]]) -> Result<Vec<Array2<f32>>, InferenceError> {
        if chunks.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(c) = chunks.iter().find(|c| c.len() > SEGMENTATION_CHUNK) {
            return Err(bad_input(
                &SEGMENTATION,
                format!(
                    "a chunk has {} samples, at most {SEGMENTATION_CHUNK} fit",
                    c.len()
                ),
            ));
        }
        let fail = run_err(&SEGMENTATION);
        self.input.clear();
        self.input.resize(chunks.len() * SEGMENTATION_CHUNK, 0.0);
        for (row, c) in self.input.chunks_exact_mut(SEGMENTATION_CHUNK).zip(chunks) {
            row[..c.len()].copy_from_slice(c);
        }
        let input =
            TensorRef::from_array_view(([chunks.len(), 1, SEGMENTATION_CHUNK], &self.input[..]))
                .map_err(&fail)?;
        self.pool.with(|session| {
            let out = timing::timed(&SEGMENTATION, || {
                session.run(ort::inputs!["waveform" => input])
            })
            .map_err(&fail)?;
            let (_, l) = out["logits"].try_extract_tensor::<f32>().map_err(&fail)?;
            l.chunks_exact(SEGMENTATION_FRAMES * SEGMENTATION_CLASSES)
                .map(|c| {
                    Array2::from_shape_vec((SEGMENTATION_FRAMES, SEGMENTATION_CLASSES), c.to_vec())
                        .map_err(|e| InferenceError::Run {
                            model: SEGMENTATION.name.into(),
                            reason: e.to_string(),
                        })
                })
                .collect()
        })
    }
}

/// AASIST anti-spoofing scorer. Its raw decision is not usable on the project's audio (see
/// `models/README.md`): recalibrate the score before relying on it.
pub struct Aasist {
    pool: &'static SessionPool,
    input: Vec<f32>,
}

impl Aasist {
    /// Checks the model file (sha256, inputs, outputs) and warms the pool.
    pub fn load() -> Result<Self, InferenceError> {
        let pool = SessionPool::of(&AASIST);
        pool.warm()?;
        Ok(Aasist {
            pool,
            input: Vec::new(),
        })
    }

    /// Scores a batch of windows of 1..=64 600 samples of raw 16 kHz mono (a shorter window is
    /// repeated to fill 64 600, as AASIST's own data loader does). Returns per window
    /// `logit[bona fide] − logit[spoof]`: higher means more like genuine speech.
    pub fn score(&mut self, windows: &[&[f32]]) -> Result<Vec<f32>, InferenceError> {
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(w) = windows
            .iter()
            .find(|w| w.is_empty() || w.len() > AASIST_WINDOW)
        {
            return Err(bad_input(
                &AASIST,
                format!(
                    "a window has {} samples, 1 to {AASIST_WINDOW} are accepted",
                    w.len()
                ),
            ));
        }
        let fail = run_err(&AASIST);
        self.input.clear();
        for w in windows {
            let mut left = AASIST_WINDOW;
            while left > 0 {
                let n = left.min(w.len());
                self.input.extend_from_slice(&w[..n]);
                left -= n;
            }
        }
        let input = TensorRef::from_array_view(([windows.len(), AASIST_WINDOW], &self.input[..]))
            .map_err(&fail)?;
        self.pool.with(|session| {
            let out = timing::timed(&AASIST, || session.run(ort::inputs!["waveform" => input]))
                .map_err(&fail)?;
            let (_, l) = out["logits"].try_extract_tensor::<f32>().map_err(&fail)?;
            Ok(l.chunks_exact(2).map(|c| c[1] - c[0]).collect())
        })
    }
}
