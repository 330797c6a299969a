//! Kaldi log-mel filterbank equal to `torchaudio.compliance.kaldi.fbank(wav, num_mel_bins=80,
//! sample_frequency=16000, dither=0.0)` with every other argument at its default — the CAM++
//! speaker embedder's front end — plus the per-utterance mean normalisation (CMN) CAM++ applies
//! after it.
//!
//! Per frame (torchaudio `_get_window`, `fbank`):
//! - frames of 400 samples (25 ms) every 160 (10 ms), `snip_edges=True`: `1 + (N − 400) / 160`
//!   frames, none when `N < 400`;
//! - the frame's mean is subtracted (`remove_dc_offset`);
//! - pre-emphasis 0.97, the first sample using itself as its predecessor (`replicate` padding);
//! - Povey window `hann(400, periodic=False)^0.85`;
//! - zero-padded to 512 (`round_to_power_of_two`), power spectrum `|rfft|²`;
//! - 80 triangular Kaldi mel bands (`mel = 1127 ln(1 + f/700)`, 20 Hz to Nyquist, triangles in
//!   the mel domain over bins 0..255, the Nyquist bin weighted 0), the weights rounded the way
//!   torchaudio computes them (float32);
//! - `ln(max(energy, f32::EPSILON))`; no energy column (`use_energy=False`).
//!
//! The samples are used as given: CAM++ is fed 16 kHz samples in [-1, 1] (not Kaldi's int16
//! scale). The signal path is float64 (torchaudio's is float32, whose FFT rounding moves quiet
//! bands by up to 3e-4 in the log); `tests/fbank.rs` compares with torchaudio run in float32
//! (what CAM++ sees) and in float64.

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

/// Sample rate the filterbank is defined for.
pub const FBANK_RATE: u32 = 16_000;
/// Mel bands per frame.
pub const FBANK_BINS: usize = 80;
/// Samples per frame (25 ms).
pub const FBANK_WINDOW: usize = 400;
/// Samples between frame starts (10 ms).
pub const FBANK_SHIFT: usize = 160;
const PADDED: usize = 512;
const PREEMPHASIS: f64 = 0.97;
const LOW_FREQ: f64 = 20.0;

/// Frames `fbank` yields for `n` samples (`snip_edges=True`).
pub fn fbank_frames(n: usize) -> usize {
    if n < FBANK_WINDOW {
        0
    } else {
        1 + (n - FBANK_WINDOW) / FBANK_SHIFT
    }
}

fn mel_scale(hz: f64) -> f64 {
    1127.0 * (1.0 + hz / 700.0).ln()
}

/// Weight of FFT bin `k` in mel band `m`, computed as torchaudio's `get_mel_banks` computes it
/// (vtln_warp = 1): the band edges from float64 scalars, everything else in float32 tensors.
/// The float32 rounding matters: the lowest bands span two or three bins, some with weights
/// near 0.01, where computing in float64 instead shifts the log energy by up to 3e-4.
fn mel_weight(m: usize, k: usize) -> f32 {
    let nyquist = FBANK_RATE as f64 / 2.0;
    let mel_lo = mel_scale(LOW_FREQ);
    let delta = ((mel_scale(nyquist) - mel_lo) / (FBANK_BINS + 1) as f64) as f32;
    let mel_lo = mel_lo as f32;
    // mel_low_freq + bin * delta, (bin + 1.0) * delta, (bin + 2.0) * delta
    let left = m as f32 * delta + mel_lo;
    let centre = (m as f32 + 1.0) * delta + mel_lo;
    let right = (m as f32 + 2.0) * delta + mel_lo;
    let bin_width = (FBANK_RATE as f64 / PADDED as f64) as f32;
    let freq = bin_width * k as f32;
    let mel = 1127.0f32 * (1.0f32 + freq / 700.0f32).ln();
    let up = (mel - left) / (centre - left);
    let down = (right - mel) / (right - centre);
    up.min(down).max(0.0)
}

/// The filterbank with its FFT plan and scratch buffers; reuse one per thread.
pub struct Fbank {
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    /// Per mel band: first FFT bin with a non-zero weight and the weights from there.
    bands: Vec<(usize, Vec<f64>)>,
    frame: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    power: Vec<f64>,
}

impl Default for Fbank {
    fn default() -> Self {
        Self::new()
    }
}

impl Fbank {
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(PADDED);
        let window = (0..FBANK_WINDOW)
            .map(|n| {
                let hann = 0.5
                    - 0.5
                        * (2.0 * std::f64::consts::PI * n as f64 / (FBANK_WINDOW - 1) as f64).cos();
                hann.powf(0.85)
            })
            .collect();
        let bands = (0..FBANK_BINS)
            .map(|m| {
                let w: Vec<f64> = (0..PADDED / 2).map(|k| mel_weight(m, k) as f64).collect();
                let first = w.iter().position(|&v| v > 0.0).unwrap_or(0);
                let last = w
                    .iter()
                    .rposition(|&v| v > 0.0)
                    .map(|i| i + 1)
                    .unwrap_or(first);
                (first, w[first..last].to_vec())
            })
            .collect();
        Fbank {
            frame: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            power: vec![0.0; PADDED / 2 + 1],
            fft,
            window,
            bands,
        }
    }

    /// Log mel energies of every frame of `samples` (16 kHz), one row per frame; no CMN.
    pub fn compute(&mut self, samples: &[f32]) -> Vec<[f32; FBANK_BINS]> {
        let n = fbank_frames(samples.len());
        let mut rows = Vec::with_capacity(n);
        for i in 0..n {
            let x = &samples[i * FBANK_SHIFT..i * FBANK_SHIFT + FBANK_WINDOW];
            rows.push(self.frame(x));
        }
        rows
    }

    fn frame(&mut self, x: &[f32]) -> [f32; FBANK_BINS] {
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / FBANK_WINDOW as f64;
        let mut prev = x[0] as f64 - mean;
        for (k, (&v, &w)) in x.iter().zip(&self.window).enumerate() {
            let cur = v as f64 - mean;
            self.frame[k] = (cur - PREEMPHASIS * prev) * w;
            prev = cur;
        }
        self.frame[FBANK_WINDOW..].fill(0.0);
        self.fft
            .process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch)
            .expect("buffer sizes come from the plan");
        for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
            *p = c.re * c.re + c.im * c.im;
        }
        let floor = f32::EPSILON as f64;
        let mut row = [0f32; FBANK_BINS];
        for (o, (first, w)) in row.iter_mut().zip(&self.bands) {
            let e: f64 = w
                .iter()
                .zip(&self.power[*first..])
                .map(|(a, b)| a * b)
                .sum();
            *o = e.max(floor).ln() as f32;
        }
        row
    }
}

/// `torchaudio.compliance.kaldi.fbank(samples, num_mel_bins=80, sample_frequency=16000,
/// dither=0.0)`: one row of 80 log mel energies per 10 ms frame, no CMN.
pub fn fbank(samples: &[f32]) -> Vec<[f32; FBANK_BINS]> {
    Fbank::new().compute(samples)
}

/// Per-utterance cepstral mean normalisation: subtracts the mean over time of each band from
/// every frame (what CAM++ applies to the fbank of each segment it embeds).
pub fn cmn(rows: &mut [[f32; FBANK_BINS]]) {
    if rows.is_empty() {
        return;
    }
    let mut mean = [0f64; FBANK_BINS];
    for r in rows.iter() {
        for (m, &v) in mean.iter_mut().zip(r) {
            *m += v as f64;
        }
    }
    let n = rows.len() as f64;
    for r in rows.iter_mut() {
        for (v, m) in r.iter_mut().zip(&mean) {
            *v = (*v as f64 - m / n) as f32;
        }
    }
}

/// CAM++ input features of one segment: [`fbank`] followed by [`cmn`].
pub fn campplus_features(samples: &[f32]) -> Vec<[f32; FBANK_BINS]> {
    let mut rows = fbank(samples);
    cmn(&mut rows);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_count_follows_snip_edges() {
        assert_eq!(fbank_frames(399), 0);
        assert_eq!(fbank_frames(400), 1);
        assert_eq!(fbank_frames(559), 1);
        assert_eq!(fbank_frames(560), 2);
        assert_eq!(fbank_frames(16_000), 98);
        assert!(fbank(&[0.1; 399]).is_empty());
    }

    #[test]
    fn silence_sits_on_the_floor_and_cmn_zeroes_the_mean() {
        let rows = fbank(&[0.0; 1600]);
        let floor = (f32::EPSILON as f64).ln() as f32;
        assert!(rows.iter().flatten().all(|&v| v == floor));
        let x: Vec<f32> = (0..8000)
            .map(|n| ((n * n) % 97) as f32 / 97.0 - 0.5)
            .collect();
        let mut rows = fbank(&x);
        cmn(&mut rows);
        for b in 0..FBANK_BINS {
            let m: f64 = rows.iter().map(|r| r[b] as f64).sum::<f64>() / rows.len() as f64;
            assert!(m.abs() < 1e-5, "band {b} mean {m}");
        }
    }
}
