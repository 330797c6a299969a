//! Per-frame measures the analyser folds into seconds: band levels, harmonicity and pitch, and
//! the mains-hum tracker.

use super::*;

/// Per-frame features of one power spectrum (public for tests and benches).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FrameFeatures {
    /// Mean square of the frame in dBFS (a full-scale sine is −3 dBFS).
    pub level_dbfs: f32,
    /// Geometric over arithmetic mean of bins 1..=200 (white-noise periodogram ≈ e^−γ ≈ 0.56,
    /// pure tone ≈ 0).
    pub flatness: f32,
    pub centroid_hz: f32,
    /// Frequency under which 85 % of the energy lies.
    pub rolloff_hz: f32,
    /// Mean square per coarse band ([`BAND_EDGES`]), linear.
    pub bands: [f32; N_BANDS],
    /// Mean square in the speech band (320–3400 Hz), linear.
    pub speech_band: f32,
}

/// Fast log2 (exponent + quadratic on the mantissa, |error| < 0.005): 201 logs per frame would
/// otherwise cost more than the FFT.
#[inline]
pub fn fast_log2(x: f32) -> f32 {
    let bits = x.max(1e-30).to_bits();
    // The quadratic below is log2(m) + 1 on [1, 2), hence the bias of 128.
    let e = ((bits >> 23) & 0xff) as f32 - 128.0;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    e + (-0.344_848_43 * m + 2.024_665_8) * m - 0.674_877_6
}

pub(super) fn db(ms: f32) -> f32 {
    if ms > 1e-12 {
        10.0 * ms.log10()
    } else {
        FLOOR_DB
    }
}

/// Features of one one-sided power spectrum of [`BINS`] bins.
pub fn frame_features(power: &[f32]) -> FrameFeatures {
    debug_assert_eq!(power.len(), BINS);
    let mut f = FrameFeatures::default();
    // Parseval over the one-sided spectrum: DC and Nyquist once, the rest twice.
    // Bins 1..=200 in 25 chunks of 8 with per-lane accumulators: strict float order keeps the
    // compiler from vectorising a plain sum, and these three sums are the analyser's hot loop.
    let mut lt = [0f32; 8];
    let mut lw = [0f32; 8];
    let mut ll = [0f32; 8];
    for (c, chunk) in power[1..].chunks_exact(8).enumerate() {
        let base = (1 + c * 8) as f32;
        for j in 0..8 {
            let p = chunk[j];
            lt[j] += p;
            lw[j] += p * (base + j as f32);
            ll[j] += fast_log2(p + 1e-20);
        }
    }
    let total: f32 = lt.iter().sum();
    let weighted: f32 = lw.iter().sum();
    let log_sum: f32 = ll.iter().sum();
    if !total.is_finite() {
        return FrameFeatures {
            level_dbfs: FLOOR_DB,
            ..f
        };
    }
    let n = (BINS - 1) as f32;
    let full = power[0] + 2.0 * total - power[BINS - 1];
    f.level_dbfs = db(full * POWER_TO_MS);
    let mean = total / n;
    f.flatness = if mean > 1e-20 {
        ((log_sum / n).exp2() / mean).clamp(0.0, 1.0)
    } else {
        0.0
    };
    f.centroid_hz = if total > 0.0 {
        weighted / total * BIN_HZ
    } else {
        0.0
    };
    let target = 0.85 * total;
    let mut acc = 0f32;
    let mut roll = BINS - 1;
    for (b, w) in BAND_EDGES.windows(2).enumerate() {
        let s: f32 = power[w[0]..w[1]].iter().sum();
        f.bands[b] = 2.0 * s * POWER_TO_MS;
    }
    for (k, &p) in power.iter().enumerate().skip(1) {
        acc += p;
        if acc >= target {
            roll = k;
            break;
        }
    }
    f.rolloff_hz = if total > 0.0 {
        roll as f32 * BIN_HZ
    } else {
        0.0
    };
    f.speech_band = 2.0 * power[SPEECH_BAND.0..SPEECH_BAND.1].iter().sum::<f32>() * POWER_TO_MS;
    f
}

/// Pitch, harmonic-to-noise ratio and high-band harmonicity of one frame, from its
/// autocorrelation (inverse FFT of the power spectrum, Wiener–Khinchin). The 400-point inverse is
/// circular, so long lags carry some aliasing from the window's far end; for a 25 ms Hann frame
/// the error is small against the voicing threshold, and it saves a 800-point transform.
pub struct Harmonicity {
    ifft: Arc<dyn ComplexToReal<f32>>,
    /// The Hann window's own (circular) autocorrelation, normalised: dividing by it undoes the
    /// window's taper (Boersma 1993), so a periodic frame reads r ≈ 1 at its period.
    window_r: Vec<f32>,
    spec: Vec<Complex<f32>>,
    out: Vec<f32>,
    scratch: Vec<Complex<f32>>,
}

/// Voicing analysis of one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Voicing {
    /// Normalised autocorrelation at the best lag in 80–400 Hz.
    pub r: f32,
    pub f0_hz: f32,
    /// Normalised autocorrelation of the > 3 kHz part at the same period.
    pub high_band_r: f32,
}

/// Window-corrected autocorrelation at which a frame counts as voiced.
pub const VOICED_R: f32 = 0.5;

/// Half-semitone bins of the per-second pitch histogram, from 4 semitones below 100 Hz (79 Hz)
/// to 26 above (449 Hz): every pitch the lag search below can return.
pub const PITCH_BINS: usize = 60;
const PITCH_BIN_LOW_ST: f32 = -4.0;
const PITCH_BINS_PER_ST: f32 = 2.0;

/// How often each pitch was heard (voiced frames per half-semitone bin).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PitchHist(pub [u16; PITCH_BINS]);

impl Default for PitchHist {
    fn default() -> Self {
        PitchHist([0; PITCH_BINS])
    }
}

impl PitchHist {
    /// Counts one frame of pitch `st` semitones relative to 100 Hz.
    pub fn add(&mut self, st: f32) {
        let bin = ((st - PITCH_BIN_LOW_ST) * PITCH_BINS_PER_ST).floor();
        let bin = (bin.max(0.0) as usize).min(PITCH_BINS - 1);
        self.0[bin] = self.0[bin].saturating_add(1);
    }

    /// The spread of the pitch over seconds summed together, in semitones: the 90th minus the
    /// 10th percentile of the voiced frames' pitch. `None` under `min_frames` voiced frames.
    /// Octave errors of the period search (a buzzy voice read at f0/2) widen it, so they can
    /// only hide a flat voice, never make a lively one look flat.
    pub fn range_st(hists: &[&PitchHist], min_frames: u32) -> Option<f32> {
        let mut sum = [0u32; PITCH_BINS];
        for h in hists {
            for (s, &c) in sum.iter_mut().zip(&h.0) {
                *s += u32::from(c);
            }
        }
        let n: u32 = sum.iter().sum();
        if n < min_frames.max(1) {
            return None;
        }
        let bin_of = |q: f32| {
            let target = q * n as f32;
            let mut seen = 0u32;
            sum.iter()
                .position(|&c| {
                    seen += c;
                    seen as f32 >= target
                })
                .unwrap_or(PITCH_BINS - 1)
        };
        Some((bin_of(0.9) - bin_of(0.1)) as f32 / PITCH_BINS_PER_ST)
    }
}

/// Lags searched for the pitch period: 40..=200 samples (400–80 Hz).
const MIN_LAG: usize = 40;
const MAX_LAG: usize = 200;

impl Default for Harmonicity {
    fn default() -> Self {
        Self::new()
    }
}

impl Harmonicity {
    pub fn new() -> Self {
        let mut planner = RealFftPlanner::<f32>::new();
        let ifft = planner.plan_fft_inverse(N_FFT);
        let fwd = planner.plan_fft_forward(N_FFT);
        let mut w: Vec<f32> = (0..N_FFT)
            .map(|n| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()) as f32
            })
            .collect();
        let mut wspec = fwd.make_output_vec();
        let mut window_r = vec![0f32; N_FFT];
        if fwd.process(&mut w, &mut wspec).is_ok() {
            let mut p: Vec<Complex<f32>> = wspec
                .iter()
                .map(|c| Complex::new(c.norm_sqr(), 0.0))
                .collect();
            if ifft.process(&mut p, &mut window_r).is_ok() && window_r[0] > 0.0 {
                let r0 = window_r[0];
                window_r.iter_mut().for_each(|v| *v /= r0);
            }
        }
        Harmonicity {
            window_r,
            spec: ifft.make_input_vec(),
            out: ifft.make_output_vec(),
            scratch: ifft.make_scratch_vec(),
            ifft,
        }
    }

    fn autocorr(&mut self, power: &[f32], from_bin: usize) -> bool {
        for (k, (s, &p)) in self.spec.iter_mut().zip(power).enumerate() {
            *s = Complex::new(if k >= from_bin { p } else { 0.0 }, 0.0);
        }
        self.ifft
            .process_with_scratch(&mut self.spec, &mut self.out, &mut self.scratch)
            .is_ok()
            && self.out[0] > 0.0
    }

    /// `None` for silent or non-finite frames.
    pub fn analyse(&mut self, power: &[f32]) -> Option<Voicing> {
        if !self.autocorr(power, 0) {
            return None;
        }
        let r0 = self.out[0];
        let (mut best, mut lag) = (f32::MIN, MIN_LAG);
        for (k, &v) in self.out[MIN_LAG..=MAX_LAG].iter().enumerate() {
            if v > best {
                best = v;
                lag = k + MIN_LAG;
            }
        }
        let r = best / r0 / self.window_r[lag].max(0.05);
        // Parabolic interpolation of the peak for a sub-sample period.
        let (a, c) = (self.out[lag - 1], self.out[(lag + 1).min(N_FFT - 1)]);
        let den = a - 2.0 * best + c;
        let off = if den.abs() > 1e-20 {
            (0.5 * (a - c) / den).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        let period = lag as f32 + off;
        // The high band only matters for voiced frames: skip its transform otherwise.
        if r < VOICED_R || !self.autocorr(power, HIGH_BAND_FROM) {
            return Some(Voicing {
                r,
                f0_hz: RATE as f32 / period,
                high_band_r: 0.0,
            });
        }
        let h0 = self.out[0];
        let hb = self.out[lag - 1]
            .max(self.out[lag])
            .max(self.out[(lag + 1).min(N_FFT - 1)]);
        (r.is_finite() && period > 0.0).then(|| Voicing {
            r,
            f0_hz: RATE as f32 / period,
            high_band_r: (hb / h0).clamp(-1.0, 1.0),
        })
    }
}

/// Mean square (10 ms) that counts as sound on both sides of a dropout: −65 dBFS, above any
/// 16-bit dither or codec residue yet below a quiet room's noise. A gap of exact zeros between two
/// such stretches is a cut in the signal, not a pause (a pause keeps the room's noise).
pub(super) const AUDIBLE_MS: f32 = 3e-7;

/// Mains frequencies tracked, and the references beside them for the hum's signal-to-noise.
pub(super) const MAINS: [(f32, [f32; 2]); 2] = [(50.0, [44.0, 56.0]), (60.0, [53.0, 67.0])];
/// The hum tracker works on a 2 kHz signal (8-sample block means): the mean's response is flat
/// to 0.1 dB at 60 Hz and puts a null on the alias at 2 kHz; a 1 s block is 2000 samples.
pub(super) const DECIM: usize = 8;
pub(super) const HUM_BLOCK: usize = RATE / DECIM;

/// Complex amplitude of the mains frequencies over each second: a Hann-weighted single-bin DFT
/// (Goertzel-equivalent) on the decimated signal. 1 s blocks hold an integer number of cycles of
/// every tracked frequency, so a steady 50 Hz hum has the same phase in every block and a splice
/// shows as a phase step, resolved far below the STFT's 40 Hz bins.
pub(super) struct HumTracker {
    /// Per frequency (50, 44, 56, 60, 53, 67 Hz): Hann·cos and Hann·sin over one block.
    tables: Vec<(Vec<f32>, Vec<f32>)>,
    acc: Vec<Complex<f32>>,
    dec_sum: f32,
    dec_n: usize,
    pos: usize,
}

impl HumTracker {
    pub(super) fn new() -> Self {
        let freqs: Vec<f32> = MAINS.iter().flat_map(|(f, r)| [*f, r[0], r[1]]).collect();
        let tables = freqs
            .iter()
            .map(|&f| {
                (0..HUM_BLOCK)
                    .map(|n| {
                        let w = 0.5
                            - 0.5
                                * (2.0 * std::f64::consts::PI * n as f64 / HUM_BLOCK as f64).cos();
                        // Decimated sample n is the mean of samples 8n..8n+7: centred on 8n+3.5.
                        let t =
                            (n as f64 * DECIM as f64 + (DECIM as f64 - 1.0) / 2.0) / RATE as f64;
                        let ph = 2.0 * std::f64::consts::PI * f as f64 * t;
                        ((w * ph.cos()) as f32, (-w * ph.sin()) as f32)
                    })
                    .unzip()
            })
            .collect();
        HumTracker {
            acc: vec![Complex::new(0.0, 0.0); freqs.len()],
            tables,
            dec_sum: 0.0,
            dec_n: 0,
            pos: 0,
        }
    }

    /// Adds samples; appends each completed second's amplitudes to `out`.
    pub(super) fn push_block(&mut self, samples: &[f32], out: &mut Vec<[Complex<f32>; 6]>) {
        for &x in samples {
            self.dec_sum += if x.is_finite() { x } else { 0.0 };
            self.dec_n += 1;
            if self.dec_n == DECIM
                && let Some(b) = self.push_decimated()
            {
                out.push(b);
            }
        }
    }

    /// One 2 kHz sample (the mean of the last 8); returns the amplitudes when a second completes.
    fn push_decimated(&mut self) -> Option<[Complex<f32>; 6]> {
        let y = self.dec_sum / DECIM as f32;
        self.dec_sum = 0.0;
        self.dec_n = 0;
        let i = self.pos;
        for (a, (c, s)) in self.acc.iter_mut().zip(&self.tables) {
            a.re += y * c[i];
            a.im += y * s[i];
        }
        self.pos += 1;
        if self.pos < HUM_BLOCK {
            return None;
        }
        self.pos = 0;
        let mut out = [Complex::new(0.0, 0.0); 6];
        for (o, a) in out.iter_mut().zip(self.acc.iter_mut()) {
            // Scale so a sine of amplitude A reads A (Hann sum = N/2, single-sided ×2).
            *o = *a * (4.0 / HUM_BLOCK as f32);
            *a = Complex::new(0.0, 0.0);
        }
        Some(out)
    }
}
