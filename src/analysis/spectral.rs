//! Cheap spectral audio anomaly detectors over all of the audio.
//!
//! Fed, in stream order, by [`crate::analysis::audio::AudioAnalyser`]: every raw sample
//! ([`SpectralAnalyser::push_samples`]: clipping, dropouts, mains hum) and every power frame of
//! the one shared STFT (n_fft 400, hop 160 at 16 kHz — the frames the voice analyser's mel front
//! end also uses) with the VAD's speech flag for the frame's centre
//! ([`SpectralAnalyser::push_frame`]). Everything is folded into one [`SpectralSecond`] per second
//! of audio (a few dozen floats); the detectors run over those summaries at
//! [`SpectralAnalyser::finish`]. Memory is therefore bounded by the per-second summaries, never
//! raw audio or a spectrogram.
//!
//! Spectral spoofing cues generalise poorly to real-world audio (research/ats-and-specs.md):
//! every finding here is weak, calibrated evidence that raises a review and never rejects on its
//! own. The detectors are deliberately conjunctive (a replay needs both a loudspeaker's missing
//! bass *and* a room's slow decays) so that a band-limited but genuine source — a telephone
//! line, a codec — is not called anything by itself.

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner};
use std::sync::Arc;

/// The shared STFT's shape (the voice mel front end needs exactly this).
pub const N_FFT: usize = 400;
pub const HOP: usize = 160;
pub const BINS: usize = N_FFT / 2 + 1;
const RATE: usize = 16_000;
const FRAMES_PER_S: usize = RATE / HOP;
/// Hz per STFT bin.
pub const BIN_HZ: f32 = RATE as f32 / N_FFT as f32;

/// Coarse band edges in bins (40 Hz each): 40–120, 120–240, 240–480, 480–1000 Hz, then 1 kHz
/// bands to 8 kHz. Bass bands are narrow because a loudspeaker's roll-off lives there.
pub const BAND_EDGES: [usize; 12] = [1, 3, 6, 12, 25, 50, 75, 100, 125, 150, 175, 201];
pub const N_BANDS: usize = BAND_EDGES.len() - 1;
/// Speech band for background-voice energy: 320–3400 Hz.
const SPEECH_BAND: (usize, usize) = (8, 85);
/// High band for harmonicity: above 3 kHz real voices are mostly aspiration noise, pulse-excited
/// synthesis (formant synthesisers, simple vocoders) stays periodic there.
const HIGH_BAND_FROM: usize = 75;
/// A frame below this level (dBFS) is digital silence: a gap, a gate, a codec's priming.
const SILENT_DB: f32 = -100.0;
/// Pause frames (10 ms) kept clear of the candidate's speech on each side before a pause frame
/// counts for the background-voice cue: 300 ms holds the VAD's late onset and hangover.
const PAUSE_GUARD: usize = 30;
/// Σw² of the periodic Hann window: 0.375·N. Power → mean square of the frame.
const POWER_TO_MS: f32 = 1.0 / (N_FFT as f32 * 0.375 * N_FFT as f32);
const FLOOR_DB: f32 = -120.0;

/// Policy thresholds of the spectral detectors (a later issue moves them into the TOML policy).
#[derive(Debug, Clone)]
pub struct SpectralParams {
    /// Seconds per detector window for the replay / synthetic / background-voice detectors;
    /// windows step by half this. Default 10 s: long enough for ≥ 4 s of speech.
    pub window_s: usize,
    /// Pause noise-floor jump (dB) across a boundary that counts as a splice. Default 10 dB:
    /// pause floors within one real recording vary by ≤ 5 dB on the clean recordings.
    pub splice_floor_jump_db: f32,
    /// A floor below this is digital silence or a noise gate: jumps between such floors mean
    /// nothing. Default −75 dBFS (the louder side must be above it).
    pub splice_min_floor_dbfs: f32,
    /// Change in the pause noise's spectral shape (RMS over bands, level removed) that counts as a
    /// splice. Default 13 dB: on the corpus's calibration half (`scripts/accuracy`) this cue found
    /// no splice at 8 dB while clean recordings and other manipulations reached 8.1–12.7 dB
    /// (codecs, reverb and noise suppression reshape the pause noise from one pause to the next).
    pub splice_envelope_db: f32,
    /// Mains-hum phase jump (degrees, after removing the steady drift) that counts as a splice;
    /// `None` (the default) turns the cue off. On the corpus's calibration half, lossy meeting
    /// codecs (AAC, Opus) moved a steady 60 Hz hum's phase by 52–176° within single recordings:
    /// 10 false splices, no true one. It still finds a joined hum in lossless audio (the
    /// `spectral_hum_jump.flac` fixture at `Some(45.0)`).
    pub hum_jump_deg: Option<f32>,
    /// Hum must stand this far above the spectrum beside it to be tracked. Default 12 dB.
    pub hum_min_snr_db: f32,
    /// Replay: speech bass (120–240 Hz) relative to 480–1000 Hz at or below this. Default −12 dB:
    /// the bass-lightest real voices here sit at −11 dB (telephone −9 dB), a phone-class
    /// loudspeaker (roll-off ≈ 700 Hz) in a room at −14 dB — a thin margin. A loudspeaker with
    /// real bass is missed.
    pub replay_bass_db: f32,
    /// Replay on telephone-band speech: a window whose speech has no energy above the band
    /// (4–5 kHz at or below this many dB relative to 2–3 kHz) came through a channel that
    /// already cuts the bass (300–3400 Hz), so its bass is judged against
    /// `replay_bass_narrowband_db` instead. Default −42 dB: on the corpus's calibration half
    /// wide-band windows reach −39.6 dB at the lowest, telephone-band ones −43.8 at the highest.
    pub replay_narrowband_edge_db: f32,
    /// Replay: the bass threshold for telephone-band windows. Default −24 dB: the calibration
    /// half's telephone-band real voices reach −17.6 dB with room decay (that is the line's own
    /// roll-off; at −12 they raised `replay_suspected` on 2 of 3 clean phone recordings), and
    /// a loudspeaker's roll-off comes on top of it. The calibration half holds no
    /// telephone-band replay; the margin below the real voices is a choice, not a fit.
    pub replay_bass_narrowband_db: f32,
    /// Replay: the fastest 100 ms fall of speech energy (median over seconds) at or below this:
    /// room reverberation stops sound from dying away quickly. Default 16 dB (dry real speech
    /// 30–37 dB; reverberant real recordings 12–16 dB, so this alone is not enough either).
    pub replay_decay_db: f32,
    /// Synthetic: mean high-band (> 3 kHz) harmonicity of voiced frames at or above this.
    /// Default 0.40 (real voices 0.05–0.30, espeak-ng 0.5+; flite's mixed excitation does not
    /// show it).
    pub synthetic_harmonicity: f32,
    /// Synthetic: seconds with speech and ≥ 80 ms of digitally silent pause (< −100 dBFS: no
    /// breath, no room, nothing a microphone would pick up), with ≥ 40 % of the window's pause
    /// frames that silent — the "absent breath noise" cue. Default 3 seconds per window. Noise
    /// suppression in conferencing apps can gate pauses to silence too: weak evidence.
    pub synthetic_silent_s: usize,
    /// Synthetic: the pitch of the voiced speech spreads over at most this many semitones
    /// (90th − 10th percentile over [`Self::synthetic_pitch_window_s`]): diphone and HTS
    /// voices read on a flat melody people do not keep up. Default 5.0, the middle of the gap
    /// on the corpus's calibration half (`scripts/accuracy`): 5 of 7 festival recordings at
    /// 2.0–3.5, one flite at 4.0, every recording of a real voice (clean or manipulated) at
    /// 6.0 or more (clean 6.5+). espeak-ng and most flite voices read wide through octave
    /// errors and are left to the other cues. `None` turns the cue off.
    pub synthetic_pitch_range_st: Option<f32>,
    /// Seconds of audio, centred on a detector window, over which the pitch spread is taken.
    /// Default 30: ten seconds of a real voice can be flat, thirty rarely are.
    pub synthetic_pitch_window_s: usize,
    /// Voiced frames (20 ms apart) the pitch spread needs. Default 250 (5 s of voicing).
    pub synthetic_min_voiced: u32,
    /// Background voice: a pause frame (300 ms or more from the candidate's speech on both
    /// sides) *rises* when its speech-band level stands at least this far above the lowest level
    /// since that pause began. A room's reverberation and the VAD's hangover only decay after the
    /// candidate stops; someone else speaking in the pause comes back up. Default 10 dB: on the
    /// corpus's calibration half (`scripts/accuracy`), 6–12 dB all separated the same whispers
    /// from the 56 clean recordings.
    pub background_rise_db: f32,
    /// Background voice: risen frames (10 ms each) for a second to count. Default 10.
    pub background_rise_frames: u32,
    /// Background voice: … and the risen frames at least this far below the candidate's speech
    /// in the same band (louder pause sound is the candidate's own speech the VAD missed).
    /// Default 15 dB.
    pub background_below_speech_db: f32,
    /// Background voice: seconds in a window with such pause sound. Default 2: on the
    /// calibration half this found 3 of 5 whispered-coaching recordings with no clean recording
    /// reaching 2 (the old pause-percentile rule: 0 of 5, and 2 clean false alarms); the two
    /// missed whispers fall in a single pause of the candidate.
    pub background_min_s: usize,
    /// Clipping: flat-topped samples per second for the second to count. Default 20.
    pub clip_samples_per_s: u32,
    /// Dropout: shortest digital-silence gap cut into audible sound. Default 20 ms.
    pub dropout_min_s: f32,
    /// Longest gap still called a dropout (longer is a muted microphone). Default 2 s.
    pub dropout_max_s: f32,
}

impl Default for SpectralParams {
    fn default() -> Self {
        SpectralParams {
            window_s: 10,
            splice_floor_jump_db: 10.0,
            splice_min_floor_dbfs: -75.0,
            splice_envelope_db: 13.0,
            hum_jump_deg: None,
            hum_min_snr_db: 12.0,
            replay_bass_db: -12.0,
            replay_narrowband_edge_db: -42.0,
            replay_bass_narrowband_db: -24.0,
            replay_decay_db: 16.0,
            synthetic_harmonicity: 0.40,
            synthetic_silent_s: 3,
            synthetic_pitch_range_st: Some(5.0),
            synthetic_pitch_window_s: 30,
            synthetic_min_voiced: 250,
            background_rise_db: 10.0,
            background_rise_frames: 10,
            background_below_speech_db: 15.0,
            background_min_s: 2,
            clip_samples_per_s: 20,
            dropout_min_s: 0.02,
            dropout_max_s: 2.0,
        }
    }
}

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

fn db(ms: f32) -> f32 {
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
const AUDIBLE_MS: f32 = 3e-7;

/// Mains frequencies tracked, and the references beside them for the hum's signal-to-noise.
const MAINS: [(f32, [f32; 2]); 2] = [(50.0, [44.0, 56.0]), (60.0, [53.0, 67.0])];
/// The hum tracker works on a 2 kHz signal (8-sample block means): the mean's response is flat
/// to 0.1 dB at 60 Hz and puts a null on the alias at 2 kHz; a 1 s block is 2000 samples.
const DECIM: usize = 8;
const HUM_BLOCK: usize = RATE / DECIM;

/// Complex amplitude of the mains frequencies over each second: a Hann-weighted single-bin DFT
/// (Goertzel-equivalent) on the decimated signal. 1 s blocks hold an integer number of cycles of
/// every tracked frequency, so a steady 50 Hz hum has the same phase in every block and a splice
/// shows as a phase step, resolved far below the STFT's 40 Hz bins.
struct HumTracker {
    /// Per frequency (50, 44, 56, 60, 53, 67 Hz): Hann·cos and Hann·sin over one block.
    tables: Vec<(Vec<f32>, Vec<f32>)>,
    acc: Vec<Complex<f32>>,
    dec_sum: f32,
    dec_n: usize,
    pos: usize,
}

impl HumTracker {
    fn new() -> Self {
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
    fn push_block(&mut self, samples: &[f32], out: &mut Vec<[Complex<f32>; 6]>) {
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

/// What one second of audio looked like (a few dozen floats).
#[derive(Debug, Clone, Default)]
pub struct SpectralSecond {
    pub frames: u32,
    pub speech_frames: u32,
    pub pause_frames: u32,
    /// Mean band power of speech frames and of pause frames, dB.
    pub speech_bands_db: [f32; N_BANDS],
    pub pause_bands_db: [f32; N_BANDS],
    /// 10th percentile of pause-frame levels (dBFS): the background noise floor.
    pub noise_floor_dbfs: Option<f32>,
    /// Pause frames away from speech whose speech-band level rose again within their pause
    /// (see [`SpectralParams::background_rise_db`]), and those frames' mean level (dBFS).
    /// How far they rose, on average (dB above their pause's lowest level).
    pub pause_rise_frames: u32,
    pub pause_rise_dbfs: Option<f32>,
    pub pause_rise_excess_db: Option<f32>,
    /// Mean speech-band level of the speech frames (dBFS): the candidate's own loudness.
    pub speech_band_dbfs: Option<f32>,
    pub flatness: f32,
    pub centroid_hz: f32,
    pub rolloff_hz: f32,
    pub voiced_frames: u32,
    pub hnr_db_sum: f32,
    pub high_band_r_sum: f32,
    /// Σ|Δ semitones| between consecutive analysed voiced frames, and how many.
    pub pitch_step_sum: f32,
    pub pitch_steps: u32,
    /// Analysed voiced frames per pitch bin ([`PITCH_BINS`]): the spread of the voice's pitch.
    pub pitch_hist: PitchHist,
    /// Largest 100 ms fall of frame level starting near the recent speech peak (dB).
    pub max_fall_db: Option<f32>,
    /// Pause frames at digital silence (< −100 dBFS).
    pub silent_pause_frames: u32,
    /// Speech frames above −60 dBFS (the VAD's speech that is actually sound).
    pub audible_speech_frames: u32,
    pub clipped_samples: u32,
    pub hum: [Complex<f32>; 6],
}

#[derive(Debug, Default, Clone)]
struct SecondAcc {
    frames: u32,
    speech: u32,
    pause: u32,
    speech_bands: [f32; N_BANDS],
    pause_bands: [f32; N_BANDS],
    pause_levels: Vec<f32>,
    pause_rise: u32,
    pause_rise_sum: f32,
    pause_rise_excess_sum: f32,
    flatness: f32,
    centroid: f32,
    rolloff: f32,
    voiced: u32,
    hnr: f32,
    hb: f32,
    pitch_step: f32,
    pitch_steps: u32,
    pitch_hist: PitchHist,
    max_fall: Option<f32>,
    silent: u32,
    speech_sb: f32,
    audible: u32,
}

/// Spans of a dropout: digital silence cut into audible sound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap {
    pub start_s: f64,
    pub dur_s: f64,
}

/// A finding of the spectral detectors; times in seconds from the first audio sample.
#[derive(Debug, Clone, PartialEq)]
pub enum SpectralFinding {
    /// Recording joined at `at_s` (within one second).
    Splice { at_s: f64, cue: SpliceCue },
    /// Loudspeaker playback into a room.
    Replay {
        start_s: f64,
        end_s: f64,
        bass_db: f32,
        decay_db: f32,
        rolloff_hz: f32,
    },
    /// Vocoder / TTS cues.
    Synthetic {
        start_s: f64,
        end_s: f64,
        /// The strongest cue that fired.
        cue: SynthCue,
        high_band_harmonicity: f32,
        pitch_step_st: Option<f32>,
        silent_pause_ratio: f32,
        /// The narrowest pitch spread of the span's windows (semitones), when measured.
        pitch_range_st: Option<f32>,
    },
    /// Speech-band sound in the candidate's pauses.
    BackgroundVoice {
        start_s: f64,
        end_s: f64,
        excess_db: f32,
        seconds: u32,
    },
    Clipping {
        start_s: f64,
        end_s: f64,
        samples: u64,
    },
    Dropout {
        start_s: f64,
        end_s: f64,
        gaps: u32,
        longest_s: f64,
    },
}

/// Which cue found a splice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpliceCue {
    NoiseFloor { before_dbfs: f32, after_dbfs: f32 },
    Envelope { distance_db: f32 },
    HumPhase { mains_hz: f32, jump_deg: f32 },
}

impl SpectralFinding {
    /// (start, end) in seconds from the first audio sample.
    pub fn span(&self) -> (f64, f64) {
        match *self {
            SpectralFinding::Splice { at_s, .. } => (at_s, at_s + 1.0),
            SpectralFinding::Replay { start_s, end_s, .. }
            | SpectralFinding::Synthetic { start_s, end_s, .. }
            | SpectralFinding::BackgroundVoice { start_s, end_s, .. }
            | SpectralFinding::Clipping { start_s, end_s, .. }
            | SpectralFinding::Dropout { start_s, end_s, .. } => (start_s, end_s),
        }
    }
}

/// What the spectral analyser concluded.
#[derive(Debug, Clone, Default)]
pub struct SpectralOutcome {
    pub findings: Vec<SpectralFinding>,
    pub seconds: Vec<SpectralSecond>,
}

/// Sequential spectral state; feed samples and frames in stream order.
pub struct SpectralAnalyser {
    params: SpectralParams,
    harm: Harmonicity,
    hum: HumTracker,
    seconds: Vec<SpectralSecond>,
    cur: SecondAcc,
    frame_idx: u64,
    speech_frames_seen: u64,
    last_f0_st: Option<f32>,
    /// Last 11 frame levels (dB) for the 100 ms fall, and a slowly decaying peak.
    levels: [f32; 11],
    peak_db: f32,
    /// Frames since the last speech frame (pause frames next to speech are VAD hangover, breath
    /// and reverberation tail, not someone else talking).
    since_speech: u32,
    /// Speech-band levels of the last pause frames, committed only once [`PAUSE_GUARD`] frames
    /// of pause follow them: the VAD switches on late, so the frames just before speech are
    /// its onset.
    pause_sb_queue: std::collections::VecDeque<f32>,
    /// Lowest committed speech-band level since the current pause began (dB).
    pause_min_db: f32,
    /// The candidate has spoken since the recording began or last fell digitally silent: only
    /// then is a pause theirs.
    spoke: bool,
    /// Sample-level state.
    samples: u64,
    prev: f32,
    flat_run: u32,
    clipped: Vec<u32>,
    zero_run: u64,
    /// The last 10 ms of samples (ring), for a dropout's level before the gap.
    hist: [f32; HOP],
    hpos: usize,
    ms_before_zero: f32,
    /// A gap waiting for the 10 ms after it: (start, length, samples seen, Σx²).
    pending_gap: Option<(u64, u64, u64, f32)>,
    gaps: Vec<Gap>,
    hum_blocks: Vec<[Complex<f32>; 6]>,
}

impl SpectralAnalyser {
    pub fn new(params: SpectralParams) -> Self {
        SpectralAnalyser {
            params,
            harm: Harmonicity::new(),
            hum: HumTracker::new(),
            seconds: Vec::new(),
            cur: SecondAcc::default(),
            frame_idx: 0,
            speech_frames_seen: 0,
            last_f0_st: None,
            levels: [FLOOR_DB; 11],
            peak_db: FLOOR_DB,
            // The recording's first frames are guarded like speech's end: codecs fade in.
            since_speech: 0,
            pause_sb_queue: std::collections::VecDeque::with_capacity(PAUSE_GUARD + 1),
            pause_min_db: f32::MAX,
            spoke: false,
            samples: 0,
            prev: f32::NAN,
            flat_run: 0,
            clipped: Vec::new(),
            zero_run: 0,
            hist: [0.0; HOP],
            hpos: 0,
            ms_before_zero: 0.0,
            pending_gap: None,
            gaps: Vec::new(),
            hum_blocks: Vec::new(),
        }
    }

    /// Raw samples (16 kHz mono), in order: clipping, dropouts and the mains hum.
    pub fn push_samples(&mut self, samples: &[f32]) {
        let odd = |x: f32| x == 0.0 || !x.is_finite();
        let flat = |a: f32, b: f32| a == b && a.abs() >= 0.25;
        let mut k = 0;
        while k < samples.len() {
            if self.zero_run == 0 && self.flat_run == 0 && self.pending_gap.is_none() {
                // Skip ahead to the next sample that could start a zero run or a flat top: the
                // per-sample state machine only runs around those.
                let mut prev = self.prev;
                let next = samples[k..]
                    .iter()
                    .position(|&x| {
                        let hit = odd(x) || flat(x, prev);
                        prev = x;
                        hit
                    })
                    .map_or(samples.len(), |p| k + p);
                if next > k {
                    let run = &samples[k..next];
                    self.samples += run.len() as u64;
                    self.prev = run[run.len() - 1];
                    for &x in &run[run.len().saturating_sub(HOP)..] {
                        self.hist[self.hpos] = x;
                        self.hpos = if self.hpos + 1 == HOP {
                            0
                        } else {
                            self.hpos + 1
                        };
                    }
                    k = next;
                    continue;
                }
            }
            self.push_sample(samples[k]);
            k += 1;
        }
        self.hum.push_block(samples, &mut self.hum_blocks);
    }

    fn push_sample(&mut self, x: f32) {
        let x = if x.is_finite() { x } else { 0.0 };
        let i = self.samples;
        // Clipping: flat tops, ≥ 3 identical consecutive samples at a high level.
        if x.abs() >= 0.25 && x == self.prev {
            self.flat_run += 1;
            let add = match self.flat_run {
                1 => 0,
                2 => 3, // the run reached 3 samples: count all three
                _ => 1,
            };
            if add > 0 {
                let s = (i / RATE as u64) as usize;
                if self.clipped.len() <= s {
                    self.clipped.resize(s + 1, 0);
                }
                self.clipped[s] += add;
            }
        } else {
            self.flat_run = 0;
        }
        self.prev = x;
        // Dropouts: exact digital silence, cut abruptly into sound on both sides.
        let (lo, hi) = (
            ((self.params.dropout_min_s * RATE as f32) as u64).max(1),
            (self.params.dropout_max_s * RATE as f32) as u64,
        );
        if x == 0.0 {
            self.zero_run += 1;
            // Level before the gap, measured once the run is long enough to matter (single zeros
            // at zero crossings are common in 16-bit audio); zeros never enter `hist`.
            if self.zero_run == lo {
                self.ms_before_zero = self.hist.iter().map(|v| v * v).sum::<f32>() / HOP as f32;
            }
        } else if self.zero_run > 0 {
            let len = self.zero_run;
            self.zero_run = 0;
            if len >= lo && len <= hi && self.ms_before_zero >= AUDIBLE_MS {
                // Confirmed once the next 10 ms are audible too.
                self.pending_gap = Some((i - len, len, 0, 0.0));
            }
        }
        if let Some((start, len, n, acc)) = &mut self.pending_gap {
            *n += 1;
            *acc += x * x;
            if *n as usize >= HOP {
                if *acc / HOP as f32 >= AUDIBLE_MS {
                    self.gaps.push(Gap {
                        start_s: *start as f64 / RATE as f64,
                        dur_s: *len as f64 / RATE as f64,
                    });
                }
                self.pending_gap = None;
            }
        }
        if x != 0.0 {
            self.hist[self.hpos] = x;
            self.hpos = if self.hpos + 1 == HOP {
                0
            } else {
                self.hpos + 1
            };
        }
        self.samples += 1;
    }

    /// One power frame of the shared STFT ([`BINS`] bins) and whether the VAD called its centre
    /// speech. Frame `j` is centred on sample `j·160`.
    pub fn push_frame(&mut self, power: &[f32], speech: bool) {
        if power.len() != BINS {
            return;
        }
        let sec = (self.frame_idx / FRAMES_PER_S as u64) as usize;
        while self.seconds.len() < sec {
            self.close_second();
        }
        let f = frame_features(power);
        let level = f.level_dbfs;
        let a = &mut self.cur;
        a.frames += 1;
        if speech {
            a.speech += 1;
            for (s, b) in a.speech_bands.iter_mut().zip(&f.bands) {
                *s += b;
            }
            a.flatness += f.flatness;
            a.centroid += f.centroid_hz;
            a.rolloff += f.rolloff_hz;
            a.speech_sb += f.speech_band;
            a.audible += (level > -60.0) as u32;
            self.since_speech = 0;
            self.pause_sb_queue.clear();
            self.pause_min_db = f32::MAX;
            self.spoke = true;
            // Voicing on every other speech frame: halves the cost, pitch steps stay 20 ms.
            self.speech_frames_seen += 1;
            if self.speech_frames_seen.is_multiple_of(2) {
                match self.harm.analyse(power) {
                    Some(v) if v.r >= VOICED_R && level > -60.0 => {
                        let a = &mut self.cur;
                        a.voiced += 1;
                        let r = v.r.min(0.999);
                        a.hnr += 10.0 * (r / (1.0 - r)).log10();
                        a.hb += v.high_band_r;
                        let st = 12.0 * (v.f0_hz / 100.0).log2();
                        a.pitch_hist.add(st);
                        if let Some(prev) = self.last_f0_st {
                            let d = (st - prev).abs();
                            if d < 2.0 {
                                a.pitch_step += d;
                                a.pitch_steps += 1;
                            }
                        }
                        self.last_f0_st = Some(st);
                    }
                    _ => self.last_f0_st = None,
                }
            }
        } else {
            self.last_f0_st = None;
            self.since_speech = self.since_speech.saturating_add(1);
            a.pause += 1;
            for (s, b) in a.pause_bands.iter_mut().zip(&f.bands) {
                *s += b;
            }
            a.pause_levels.push(level);
            if level < SILENT_DB {
                a.silent += 1;
            }
            self.track_pause(db(f.speech_band), level < SILENT_DB);
        }
        // Fastest 100 ms fall starting near the recent peak.
        self.levels.copy_within(1.., 0);
        self.levels[10] = level;
        self.peak_db = (self.peak_db - 0.01).max(level);
        let start = self.levels[0];
        if start > -60.0 && start >= self.peak_db - 15.0 {
            let fall = start - level;
            let a = &mut self.cur;
            a.max_fall = Some(a.max_fall.map_or(fall, |m: f32| m.max(fall)));
        }
        self.frame_idx += 1;
    }

    /// The background-voice cue for one pause frame (speech-band level `sb_db`): frames
    /// [`PAUSE_GUARD`] away from speech on both sides, in a pause that followed the candidate's
    /// speech, count when they rise over the pause's lowest level so far. Digital silence (a
    /// dropout, a gate) ends a pause like speech does: the VAD wakes late after it, and the
    /// sound that returns is the recording, not someone else.
    fn track_pause(&mut self, sb_db: f32, silent: bool) {
        if silent {
            self.since_speech = 0;
            self.pause_sb_queue.clear();
            self.pause_min_db = f32::MAX;
            self.spoke = false;
            return;
        }
        if (self.since_speech as usize) < PAUSE_GUARD {
            return;
        }
        self.pause_sb_queue.push_back(sb_db);
        if self.pause_sb_queue.len() <= PAUSE_GUARD {
            return;
        }
        let Some(v) = self.pause_sb_queue.pop_front() else {
            return;
        };
        self.pause_min_db = self.pause_min_db.min(v);
        let rise = v - self.pause_min_db;
        if self.spoke && rise >= self.params.background_rise_db {
            let a = &mut self.cur;
            a.pause_rise += 1;
            a.pause_rise_sum += v;
            a.pause_rise_excess_sum += rise;
        }
    }

    fn close_second(&mut self) {
        let a = std::mem::take(&mut self.cur);
        let mean_db = |v: &[f32; N_BANDS], n: u32| {
            let mut o = [FLOOR_DB; N_BANDS];
            if n > 0 {
                for (o, x) in o.iter_mut().zip(v) {
                    *o = db(x / n as f32);
                }
            }
            o
        };
        let pct = |v: &mut Vec<f32>, q: f32, min: usize| -> Option<f32> {
            if v.len() < min {
                return None;
            }
            v.sort_by(f32::total_cmp);
            Some(v[((v.len() - 1) as f32 * q).round() as usize])
        };
        let mut levels = a.pause_levels;
        let n = a.speech.max(1) as f32;
        self.seconds.push(SpectralSecond {
            frames: a.frames,
            speech_frames: a.speech,
            pause_frames: a.pause,
            speech_bands_db: mean_db(&a.speech_bands, a.speech),
            pause_bands_db: mean_db(&a.pause_bands, a.pause),
            noise_floor_dbfs: pct(&mut levels, 0.1, 10),
            pause_rise_frames: a.pause_rise,
            pause_rise_dbfs: (a.pause_rise > 0).then(|| a.pause_rise_sum / a.pause_rise as f32),
            pause_rise_excess_db: (a.pause_rise > 0)
                .then(|| a.pause_rise_excess_sum / a.pause_rise as f32),
            speech_band_dbfs: (a.speech > 0).then(|| db(a.speech_sb / a.speech as f32)),
            flatness: a.flatness / n,
            centroid_hz: a.centroid / n,
            rolloff_hz: a.rolloff / n,
            voiced_frames: a.voiced,
            hnr_db_sum: a.hnr,
            high_band_r_sum: a.hb,
            pitch_step_sum: a.pitch_step,
            pitch_steps: a.pitch_steps,
            pitch_hist: a.pitch_hist,
            max_fall_db: a.max_fall,
            silent_pause_frames: a.silent,
            audible_speech_frames: a.audible,
            clipped_samples: 0,
            hum: [Complex::new(0.0, 0.0); 6],
        });
    }

    /// Closes the last second and runs the detectors.
    pub fn finish(mut self) -> SpectralOutcome {
        if self.cur.frames > 0 {
            self.close_second();
        }
        // Clipping counts and hum blocks are per second of samples; attach them.
        let secs = self.seconds.len().max(self.clipped.len());
        self.seconds.resize(secs, SpectralSecond::default());
        for (s, c) in self.seconds.iter_mut().zip(&self.clipped) {
            s.clipped_samples = *c;
        }
        for (s, h) in self.seconds.iter_mut().zip(&self.hum_blocks) {
            s.hum = *h;
        }
        for (i, s) in self.seconds.iter().enumerate() {
            let bass = s.speech_bands_db[0].max(s.speech_bands_db[1]) - s.speech_bands_db[3];
            tracing::debug!(
                "spectral second {i}: speech {} pause {} floor {:?} pause_rise {} at {:?} \
                 voiced {} hb {:.2} hnr {:.1} step {:.3} fall {:?} bass {:.1} rolloff {:.0} silent {} clip {} hum50 {:.4} speech_bands {:?} pause_bands {:?}",
                s.speech_frames,
                s.pause_frames,
                s.noise_floor_dbfs,
                s.pause_rise_frames,
                s.pause_rise_dbfs,
                s.voiced_frames,
                s.high_band_r_sum / s.voiced_frames.max(1) as f32,
                s.hnr_db_sum / s.voiced_frames.max(1) as f32,
                s.pitch_step_sum / s.pitch_steps.max(1) as f32,
                s.max_fall_db,
                bass,
                s.rolloff_hz,
                s.silent_pause_frames,
                s.clipped_samples,
                s.hum[0].norm(),
                s.speech_bands_db.map(|x| (x * 10.0).round() / 10.0),
                s.pause_bands_db.map(|x| (x * 10.0).round() / 10.0),
            );
        }
        let p = &self.params;
        let mut findings = Vec::new();
        findings.extend(detect_splices(&self.seconds, p));
        findings.extend(detect_hum_jumps(&self.seconds, p));
        findings.extend(detect_windows(&self.seconds, p));
        findings.extend(detect_clipping(&self.seconds, p));
        findings.extend(detect_dropouts(&self.gaps));
        findings.sort_by(|a, b| a.span().0.total_cmp(&b.span().0));
        SpectralOutcome {
            findings,
            seconds: self.seconds,
        }
    }
}

fn median(v: &mut [f32]) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    Some(v[v.len() / 2])
}

/// Splices from the pause noise: its level and spectral shape, compared over the seconds before
/// and after each boundary. A step that holds on both sides (each side steady within a few dB)
/// is a join of two recordings; one loud second is not.
fn detect_splices(secs: &[SpectralSecond], p: &SpectralParams) -> Vec<SpectralFinding> {
    const SIDE: usize = 6;
    const MIN_SIDE: usize = 3;
    const REACH: usize = 15;
    let mut cands: Vec<(usize, f32, SpliceCue)> = Vec::new();
    for b in MIN_SIDE..secs.len().saturating_sub(MIN_SIDE - 1) {
        // The pause floors of the SIDE seconds each side; in fluent speech, where pauses are
        // sparse, the nearest MIN_SIDE within REACH: a lasting step shows in the next pauses.
        let floors = |s: &SpectralSecond| s.noise_floor_dbfs.map(|f| (f, s.pause_bands_db));
        let side = |r: std::ops::Range<usize>, nearest_last: bool| {
            let v: Vec<(f32, [f32; N_BANDS])> = secs[r.clone()].iter().filter_map(floors).collect();
            let dense = v.len() >= MIN_SIDE;
            if dense {
                return (v, true);
            }
            let wide = if nearest_last {
                b.saturating_sub(REACH)..b
            } else {
                b..(b + REACH).min(secs.len())
            };
            let mut far: Vec<_> = secs[wide].iter().filter_map(floors).collect();
            if nearest_last {
                far.reverse();
            }
            far.truncate(MIN_SIDE);
            (far, false)
        };
        let (left, dense_l) = side(b.saturating_sub(SIDE)..b, true);
        let (right, dense_r) = side(b..(b + SIDE).min(secs.len()), false);
        if left.len() < MIN_SIDE || right.len() < MIN_SIDE {
            continue;
        }
        let mut lf: Vec<f32> = left.iter().map(|x| x.0).collect();
        let mut rf: Vec<f32> = right.iter().map(|x| x.0).collect();
        let (ml, mr) = (
            median(&mut lf).unwrap_or(0.0),
            median(&mut rf).unwrap_or(0.0),
        );
        let spread = |v: &[f32], m: f32| v.iter().map(|x| (x - m).abs()).fold(0f32, f32::max);
        // Both sides steady: the largest deviation from the side's median under half the jump.
        let jump = (mr - ml).abs();
        let steady = spread(&lf, ml).max(spread(&rf, mr)) < 0.5 * jump;
        if ml.max(mr) < p.splice_min_floor_dbfs {
            continue;
        }
        if jump >= p.splice_floor_jump_db && steady {
            cands.push((
                b,
                jump,
                SpliceCue::NoiseFloor {
                    before_dbfs: ml,
                    after_dbfs: mr,
                },
            ));
            continue;
        }
        // Shape: mean pause band spectrum each side, level removed, RMS difference over bands
        // with energy on both sides (the 40–240 Hz bands are left out: mains and handling noise).
        // Only over the regular windows: three scattered pauses are too few to compare shapes.
        if !(dense_l && dense_r) {
            continue;
        }
        let shape = |v: &[(f32, [f32; N_BANDS])]| {
            let mut m = [0f32; N_BANDS];
            for (_, bands) in v {
                for (a, b) in m.iter_mut().zip(bands) {
                    *a += b / v.len() as f32;
                }
            }
            m
        };
        let (sl, sr) = (shape(&left), shape(&right));
        let idx: Vec<usize> = (2..N_BANDS)
            .filter(|&i| sl[i] > -95.0 && sr[i] > -95.0)
            .collect();
        if idx.len() < 5 {
            continue;
        }
        let diffs: Vec<f32> = idx.iter().map(|&i| sr[i] - sl[i]).collect();
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
        let rms = (diffs.iter().map(|d| (d - mean) * (d - mean)).sum::<f32>() / diffs.len() as f32)
            .sqrt();
        if rms >= p.splice_envelope_db {
            cands.push((b, rms, SpliceCue::Envelope { distance_db: rms }));
        }
    }
    // One finding per step: the strongest boundary within ±SIDE seconds. Boundaries in a
    // stretch without pauses all see the same two sides (equal strength): the join lies
    // somewhere in that stretch, so the middle of it is reported.
    let mut out = Vec::new();
    for (i, c) in cands.iter().enumerate() {
        let near: Vec<_> = cands
            .iter()
            .enumerate()
            .filter(|(_, d)| d.0.abs_diff(c.0) <= SIDE)
            .collect();
        if near
            .iter()
            .all(|(j, d)| d.1 < c.1 || (d.1 == c.1 && *j >= i))
        {
            let tied = near.iter().filter(|(_, d)| d.1 == c.1).map(|(_, d)| d.0);
            let (lo, hi) = tied.fold((c.0, c.0), |(lo, hi), b| (lo.min(b), hi.max(b)));
            out.push(SpectralFinding::Splice {
                at_s: ((lo + hi) / 2) as f64,
                cue: c.2,
            });
        }
    }
    out
}

fn wrap(a: f32) -> f32 {
    let t = std::f32::consts::TAU;
    a - t * ((a + std::f32::consts::PI) / t).floor()
}

/// Splices from the mains hum's phase: the steady drift is the median block-to-block phase step;
/// a join shows as a step that breaks it.
fn detect_hum_jumps(secs: &[SpectralSecond], p: &SpectralParams) -> Vec<SpectralFinding> {
    let Some(min_jump_deg) = p.hum_jump_deg else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if secs.len() < 5 {
        return out;
    }
    for (m, (mains_hz, _)) in MAINS.iter().enumerate() {
        let h: Vec<Complex<f32>> = secs.iter().map(|s| s.hum[3 * m]).collect();
        let snr: Vec<f32> = secs
            .iter()
            .map(|s| {
                let r = 0.5 * (s.hum[3 * m + 1].norm() + s.hum[3 * m + 2].norm());
                20.0 * (s.hum[3 * m].norm() / r.max(1e-9)).log10()
            })
            .collect();
        let hummed: Vec<bool> = snr.iter().map(|&x| x >= p.hum_min_snr_db).collect();
        if hummed.iter().filter(|&&x| x).count() * 2 < secs.len() {
            continue;
        }
        let mut steps: Vec<f32> = (1..h.len())
            .filter(|&b| hummed[b] && hummed[b - 1])
            .map(|b| (h[b] * h[b - 1].conj()).arg())
            .collect();
        let Some(drift) = median(&mut steps) else {
            continue;
        };
        // The hum must be steady for phase to mean anything: most steps near the drift.
        let steady = steps
            .iter()
            .filter(|s| wrap(*s - drift).abs() < 20f32.to_radians())
            .count();
        if steady * 10 < steps.len() * 7 {
            continue;
        }
        // A jump inside block b: compare b−1 with b+1 (block b itself straddles it). The jump
        // shows fully only at the block that contains it, partly at its neighbours: keep local
        // maxima.
        let e: Vec<Option<f32>> = (0..h.len())
            .map(|b| {
                (b >= 1 && b + 1 < h.len() && hummed[b - 1] && hummed[b + 1])
                    .then(|| wrap((h[b + 1] * h[b - 1].conj()).arg() - 2.0 * drift).to_degrees())
            })
            .collect();
        for b in 0..e.len() {
            let Some(v) = e[b] else { continue };
            let mag = |i: usize| e.get(i).copied().flatten().map_or(0.0, f32::abs);
            let is_max = (b.saturating_sub(2)..(b + 3).min(e.len()))
                .all(|i| i == b || mag(i) < v.abs() || (mag(i) == v.abs() && i > b));
            if v.abs() >= min_jump_deg && is_max {
                out.push(SpectralFinding::Splice {
                    at_s: b as f64,
                    cue: SpliceCue::HumPhase {
                        mains_hz: *mains_hz,
                        jump_deg: v,
                    },
                });
            }
        }
    }
    out
}

/// Which synthetic-voice cue flagged a span, strongest first (a span flagged by several names
/// the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SynthCue {
    /// Periodic excitation above 3 kHz.
    HighBandHarmonicity,
    /// A flat, regular melody.
    FlatPitch,
    /// Pauses of digital silence.
    SilentPauses,
}

/// Synthetic-voice cues of one window.
#[derive(Debug, Clone, Copy)]
struct SynthCues {
    cue: SynthCue,
    high_band: f32,
    pitch_step: Option<f32>,
    silent_ratio: f32,
    pitch_range: Option<f32>,
}

/// A second whose pauses carry sound that rose again after the candidate stopped (someone
/// else speaking; a room's decay never rises), yet well below the candidate's own speech.
fn background_second(s: &SpectralSecond, level: f32, p: &SpectralParams) -> bool {
    s.pause_rise_frames >= p.background_rise_frames
        && s.pause_rise_dbfs
            .is_some_and(|l| l <= level - p.background_below_speech_db)
}

/// Window detectors: replay, synthetic voice, background voice. Flagged windows merge into spans.
fn detect_windows(secs: &[SpectralSecond], p: &SpectralParams) -> Vec<SpectralFinding> {
    let w = p.window_s.max(2);
    let step = (w / 2).max(1);
    let n = secs.len();
    let mut out = Vec::new();
    let mut replay: Vec<(usize, usize, f32, f32, f32)> = Vec::new();
    let mut synth: Vec<(usize, usize, SynthCues)> = Vec::new();
    let mut bg: Vec<(usize, usize, f32, f32)> = Vec::new();
    let starts: Vec<usize> = if n <= w {
        vec![0]
    } else {
        (0..=(n - w)).step_by(step).chain([n - w]).collect()
    };
    for a in starts {
        let b = (a + w).min(n);
        let win = &secs[a..b];
        let speech: u32 = win.iter().map(|s| s.speech_frames).sum();
        let pause: u32 = win.iter().map(|s| s.pause_frames).sum();
        // Replay: loudspeaker bass roll-off and room decay, over ≥ 4 s of speech.
        if speech >= 400 {
            let mut bands = [0f32; N_BANDS];
            for s in win {
                for (o, d) in bands.iter_mut().zip(&s.speech_bands_db) {
                    *o += 10f32.powf(d / 10.0) * s.speech_frames as f32;
                }
            }
            // 120–240 Hz against 480–1000 Hz: 40–120 Hz is mostly hum and handling noise.
            let bass = db(bands[1] / speech as f32) - db(bands[3] / speech as f32);
            // Telephone band (nothing above 3.4 kHz): the line has cut the bass already.
            let edge = db(bands[7] / speech as f32) - db(bands[5] / speech as f32);
            let bass_limit = if edge <= p.replay_narrowband_edge_db {
                p.replay_bass_narrowband_db
            } else {
                p.replay_bass_db
            };
            let mut falls: Vec<f32> = win
                .iter()
                .filter(|s| s.speech_frames >= 30)
                .filter_map(|s| s.max_fall_db)
                .collect();
            let decay = median(&mut falls);
            let rolloff = win
                .iter()
                .map(|s| s.rolloff_hz * s.speech_frames as f32)
                .sum::<f32>()
                / speech as f32;
            if let Some(decay) = decay
                && bass <= bass_limit
                && decay <= p.replay_decay_db
            {
                replay.push((a, b, bass, decay, rolloff));
            }
        }
        // Synthetic: periodic excitation above 3 kHz in voiced speech, or speech whose pauses are
        // digital silence (a microphone always hears a room; TTS into a virtual device does not).
        let voiced: u32 = win.iter().map(|s| s.voiced_frames).sum();
        let hb = (voiced >= 100)
            .then(|| win.iter().map(|s| s.high_band_r_sum).sum::<f32>() / voiced as f32);
        let silent_secs = win
            .iter()
            .filter(|s| s.silent_pause_frames >= 8 && s.audible_speech_frames >= 20)
            .count();
        let silent: u32 = win.iter().map(|s| s.silent_pause_frames).sum();
        let ratio = if pause > 0 {
            silent as f32 / pause as f32
        } else {
            0.0
        };
        let harmonic = hb.is_some_and(|h| h >= p.synthetic_harmonicity);
        let gated = speech >= 200 && silent_secs >= p.synthetic_silent_s && ratio >= 0.4;
        // The melody is judged over a longer stretch centred on the window: a person can sound
        // flat for ten seconds, rarely for thirty.
        let mid = (a + b) / 2;
        let half = p.synthetic_pitch_window_s / 2;
        let (pa, pb) = (mid.saturating_sub(half), (mid + half).min(n));
        let hists: Vec<&PitchHist> = secs[pa..pb].iter().map(|s| &s.pitch_hist).collect();
        let pitch_range = PitchHist::range_st(&hists, p.synthetic_min_voiced);
        let flat = p
            .synthetic_pitch_range_st
            .zip(pitch_range)
            .is_some_and(|(max, r)| r <= max);
        let cue = [
            (harmonic, SynthCue::HighBandHarmonicity),
            (flat, SynthCue::FlatPitch),
            (gated, SynthCue::SilentPauses),
        ]
        .into_iter()
        .find_map(|(fired, cue)| fired.then_some(cue));
        if let Some(cue) = cue {
            let steps: u32 = win.iter().map(|s| s.pitch_steps).sum();
            let jit = (steps > 0)
                .then(|| win.iter().map(|s| s.pitch_step_sum).sum::<f32>() / steps as f32);
            synth.push((
                a,
                b,
                SynthCues {
                    cue,
                    high_band: hb.unwrap_or(0.0),
                    pitch_step: jit,
                    silent_ratio: ratio,
                    pitch_range,
                },
            ));
        }
        // Background voice: speech-band sound in the pauses, well above the pause floor nearby yet
        // well below the candidate's own speech (louder is the candidate, missed by the VAD).
        let mut lv: Vec<f32> = win.iter().filter_map(|s| s.speech_band_dbfs).collect();
        if let Some(level) = median(&mut lv) {
            let loud: Vec<f32> = win
                .iter()
                .filter(|s| background_second(s, level, p))
                .filter_map(|s| s.pause_rise_excess_db)
                .collect();
            if loud.len() >= p.background_min_s {
                let excess = loud.iter().sum::<f32>() / loud.len() as f32;
                bg.push((a, b, excess, level));
            }
        }
    }
    // Merge overlapping windows of one detector into one span.
    fn merge<T: Copy>(v: &[(usize, usize, T)], mut f: impl FnMut(usize, usize, &[T])) {
        let mut i = 0;
        while i < v.len() {
            let mut j = i;
            while j + 1 < v.len() && v[j + 1].0 <= v[j].1 {
                j += 1;
            }
            let vals: Vec<T> = v[i..=j].iter().map(|x| x.2).collect();
            f(v[i].0, v[j].1, &vals);
            i = j + 1;
        }
    }
    let mean = |x: &[f32]| x.iter().sum::<f32>() / x.len().max(1) as f32;
    let r: Vec<(usize, usize, (f32, f32, f32))> =
        replay.iter().map(|x| (x.0, x.1, (x.2, x.3, x.4))).collect();
    merge(&r, |a, b, v| {
        out.push(SpectralFinding::Replay {
            start_s: a as f64,
            end_s: b as f64,
            bass_db: mean(&v.iter().map(|x| x.0).collect::<Vec<_>>()),
            decay_db: mean(&v.iter().map(|x| x.1).collect::<Vec<_>>()),
            rolloff_hz: mean(&v.iter().map(|x| x.2).collect::<Vec<_>>()),
        })
    });
    merge(&synth, |a, b, v| {
        let jit: Vec<f32> = v.iter().filter_map(|x| x.pitch_step).collect();
        out.push(SpectralFinding::Synthetic {
            start_s: a as f64,
            end_s: b as f64,
            cue: v
                .iter()
                .map(|x| x.cue)
                .min()
                .unwrap_or(SynthCue::SilentPauses),
            high_band_harmonicity: mean(&v.iter().map(|x| x.high_band).collect::<Vec<_>>()),
            pitch_step_st: (!jit.is_empty()).then(|| mean(&jit)),
            silent_pause_ratio: mean(&v.iter().map(|x| x.silent_ratio).collect::<Vec<_>>()),
            pitch_range_st: v.iter().filter_map(|x| x.pitch_range).reduce(f32::min),
        })
    });
    let g: Vec<(usize, usize, (f32, f32))> = bg.iter().map(|x| (x.0, x.1, (x.2, x.3))).collect();
    merge(&g, |a, b, v| {
        // Narrow the span to the seconds that carried the sound.
        let level = v.iter().map(|x| x.1).fold(f32::MIN, f32::max);
        let loud: Vec<usize> = (a..b)
            .filter(|&i| background_second(&secs[i], level, p))
            .collect();
        let (s, e) = (
            loud.first().copied().unwrap_or(a),
            loud.last().map(|x| x + 1).unwrap_or(b),
        );
        out.push(SpectralFinding::BackgroundVoice {
            start_s: s as f64,
            end_s: e as f64,
            excess_db: mean(&v.iter().map(|x| x.0).collect::<Vec<_>>()),
            seconds: loud.len() as u32,
        })
    });
    out
}

/// Clipping spans: runs of seconds with flat-topped samples (gaps ≤ 1 s bridged).
fn detect_clipping(secs: &[SpectralSecond], p: &SpectralParams) -> Vec<SpectralFinding> {
    let mut out = Vec::new();
    let mut run: Option<(usize, usize, u64)> = None;
    for (i, s) in secs.iter().enumerate() {
        if s.clipped_samples >= p.clip_samples_per_s {
            run = Some(match run {
                Some((a, e, n)) if i <= e + 1 => (a, i + 1, n + s.clipped_samples as u64),
                Some((a, e, n)) => {
                    out.push(SpectralFinding::Clipping {
                        start_s: a as f64,
                        end_s: e as f64,
                        samples: n,
                    });
                    (i, i + 1, s.clipped_samples as u64)
                }
                None => (i, i + 1, s.clipped_samples as u64),
            });
        }
    }
    if let Some((a, e, n)) = run {
        out.push(SpectralFinding::Clipping {
            start_s: a as f64,
            end_s: e as f64,
            samples: n,
        });
    }
    out
}

/// Dropout spans: gaps within 2 s of each other form one span.
fn detect_dropouts(gaps: &[Gap]) -> Vec<SpectralFinding> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < gaps.len() {
        let mut j = i;
        while j + 1 < gaps.len() && gaps[j + 1].start_s <= gaps[j].start_s + gaps[j].dur_s + 2.0 {
            j += 1;
        }
        let g = &gaps[i..=j];
        out.push(SpectralFinding::Dropout {
            start_s: g[0].start_s,
            end_s: g[g.len() - 1].start_s + g[g.len() - 1].dur_s,
            gaps: g.len() as u32,
            longest_s: g.iter().map(|x| x.dur_s).fold(0.0, f64::max),
        });
        i = j + 1;
    }
    out
}

/// Runs the shared STFT and the spectral analyser over a whole signal, with `speech(sample)`
/// standing in for the VAD. For tests, benches and offline tools; the pipeline feeds frames from
/// [`crate::analysis::audio::AudioAnalyser`] instead.
pub fn analyse_signal(
    samples: &[f32],
    params: SpectralParams,
    speech: impl Fn(u64) -> bool,
) -> SpectralOutcome {
    let mut stft = crate::dsp::stft::Stft::new(N_FFT, HOP);
    let mut sa = SpectralAnalyser::new(params);
    let mut j = 0u64;
    for chunk in samples.chunks(4096) {
        sa.push_samples(chunk);
        stft.push(chunk, |p| {
            sa.push_frame(p, speech(j * HOP as u64));
            j += 1;
        });
    }
    stft.finish(|p| {
        sa.push_frame(p, speech(j * HOP as u64));
        j += 1;
    });
    sa.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic white noise (xorshift), uniform in ±a.
    fn noise(n: usize, a: f32, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 * a
            })
            .collect()
    }

    fn tone(n: usize, hz: f32, a: f32, phase: f32) -> Vec<f32> {
        (0..n)
            .map(|i| a * (std::f32::consts::TAU * hz * i as f32 / RATE as f32 + phase).sin())
            .collect()
    }

    /// Power spectra of a signal through the shared STFT.
    fn frames(x: &[f32]) -> Vec<Vec<f32>> {
        let mut s = crate::dsp::stft::Stft::new(N_FFT, HOP);
        let mut v = Vec::new();
        s.push(x, |p| v.push(p.to_vec()));
        v
    }

    /// Naive reference: flatness with exact f64 logs.
    fn naive_flatness(p: &[f32]) -> f64 {
        let v: Vec<f64> = p[1..].iter().map(|&x| x as f64 + 1e-20).collect();
        let g = (v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp();
        g / (v.iter().sum::<f64>() / v.len() as f64)
    }

    #[test]
    fn fast_log2_is_close_to_log2() {
        const EPS: f32 = 0.006;
        for x in [1e-12f32, 1e-5, 0.01, 0.3, 1.0, 1.5, 2.0, 3.7, 1000.0, 1e9] {
            assert!((fast_log2(x) - x.log2()).abs() < EPS, "{x}");
        }
    }

    #[test]
    fn flatness_of_white_noise_and_of_a_tone() {
        // A single-frame periodogram of white noise has exponentially distributed bins, whose
        // geometric/arithmetic mean ratio is e^−γ ≈ 0.561; averaged over frames.
        const EPS_NOISE: f64 = 0.05;
        const EPS_NAIVE: f64 = 0.01;
        let fr = frames(&noise(RATE, 0.3, 7));
        let mean: f64 = fr[5..]
            .iter()
            .map(|p| frame_features(p).flatness as f64)
            .sum::<f64>()
            / (fr.len() - 5) as f64;
        assert!((mean - (-0.577_215_7f64).exp()).abs() < EPS_NOISE, "{mean}");
        for p in &fr[5..20] {
            let ours = frame_features(p).flatness as f64;
            assert!((ours - naive_flatness(p)).abs() < EPS_NAIVE);
        }
        let t = frames(&tone(RATE, 1000.0, 0.5, 0.0));
        let f = frame_features(&t[10]);
        assert!(f.flatness < 0.01, "{}", f.flatness);
        assert!((f.centroid_hz - 1000.0).abs() < 60.0, "{}", f.centroid_hz);
        assert!((f.rolloff_hz - 1000.0).abs() <= 80.0, "{}", f.rolloff_hz);
        // A 0.5-amplitude sine has mean square 0.125 → −9.03 dBFS.
        assert!((f.level_dbfs + 9.03).abs() < 0.1, "{}", f.level_dbfs);
    }

    #[test]
    fn band_energies_follow_parseval() {
        const EPS_DB: f32 = 0.2;
        let x = noise(RATE, 0.5, 3);
        let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
        let fr = frames(&x);
        let mean_level: f32 = fr[5..]
            .iter()
            .map(|p| frame_features(p).bands.iter().sum::<f32>())
            .sum::<f32>()
            / (fr.len() - 5) as f32;
        // Bands cover 40 Hz–8 kHz: white noise loses the DC bin's 0.5 %.
        assert!((db(mean_level) - db(ms)).abs() < EPS_DB);
    }

    #[test]
    fn pitch_of_a_pulse_train_and_high_band_harmonicity() {
        // A 125 Hz pulse train is periodic at every frequency; noise is not.
        let x: Vec<f32> = (0..RATE)
            .map(|i| if i % 128 == 0 { 0.8 } else { 0.0 })
            .collect();
        let fr = frames(&x);
        let mut h = Harmonicity::new();
        let v = h.analyse(&fr[20]).unwrap();
        assert!((v.f0_hz - 125.0).abs() < 2.0, "{v:?}");
        // The 25 ms Hann frame tapers the autocorrelation (at a 128-sample lag to ≈ 0.5); the
        // voicing threshold (r ≥ 0.5 after the window correction) and the synthetic threshold
        // (0.40) are set for the tapered values.
        assert!(v.r > 0.9 && v.high_band_r > 0.45, "{v:?}");
        let n = frames(&noise(RATE, 0.3, 11));
        let v = h.analyse(&n[20]).unwrap();
        assert!(v.high_band_r < 0.3, "{v:?}");
        assert!(h.analyse(&vec![0.0; BINS]).is_none());
    }

    /// Seconds of voiced speech whose pitch walks over `span_st` semitones around 120 Hz.
    fn melody(n: usize, span_st: f32) -> Vec<SpectralSecond> {
        (0..n)
            .map(|i| {
                let mut h = PitchHist::default();
                for k in 0..25 {
                    let t = (i * 25 + k) as f32 * 0.37;
                    h.add(3.2 + span_st * 0.5 * t.sin());
                }
                SpectralSecond {
                    pitch_hist: h,
                    ..seconds(&[-60.0])[0].clone()
                }
            })
            .collect()
    }

    #[test]
    fn pitch_spread_is_the_middle_80_percent_of_voiced_frames() {
        let mut h = PitchHist::default();
        for i in 0..1000 {
            h.add(i as f32 / 100.0); // uniform over 0..10 semitones
        }
        let r = PitchHist::range_st(&[&h], 250).unwrap();
        assert!((r - 8.0).abs() <= 0.5, "{r}");
        assert_eq!(PitchHist::range_st(&[&h], 1001), None);
        let flat: Vec<PitchHist> = melody(30, 2.0).iter().map(|s| s.pitch_hist).collect();
        let r = PitchHist::range_st(&flat.iter().collect::<Vec<_>>(), 250).unwrap();
        assert!(r <= 2.5, "{r}");
    }

    #[test]
    fn a_flat_melody_is_a_synthetic_voice_and_a_lively_one_is_not() {
        let p = SpectralParams::default();
        let synthetic = |secs: &[SpectralSecond]| {
            detect_windows(secs, &p)
                .into_iter()
                .filter_map(|f| match f {
                    SpectralFinding::Synthetic {
                        start_s,
                        cue,
                        pitch_range_st,
                        ..
                    } => Some((start_s, cue, pitch_range_st)),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        let flat = synthetic(&melody(40, 2.0));
        assert_eq!(flat.len(), 1, "{flat:?}");
        assert_eq!((flat[0].0, flat[0].1), (0.0, SynthCue::FlatPitch));
        assert!(flat[0].2.is_some_and(|r| r <= 2.5), "{flat:?}");
        assert_eq!(synthetic(&melody(40, 10.0)), vec![]);
        // Off by policy: nothing.
        let off = SpectralParams {
            synthetic_pitch_range_st: None,
            ..SpectralParams::default()
        };
        assert!(detect_windows(&melody(40, 2.0), &off).is_empty());
    }

    #[test]
    fn hum_phase_of_a_50_hz_sine() {
        const EPS_DEG: f32 = 2.0;
        const EPS_AMP: f32 = 0.02;
        let mut t = HumTracker::new();
        let x = tone(RATE * 3, 50.0, 0.01, 0.7);
        let mut blocks = Vec::new();
        t.push_block(&x, &mut blocks);
        assert_eq!(blocks.len(), 3);
        for b in &blocks {
            // sin(ωt + φ) = cos(ωt + φ − π/2): phase φ − 90°.
            let want = (0.7f32 - std::f32::consts::FRAC_PI_2).to_degrees();
            assert!(
                (wrap((b[0].arg().to_degrees() - want).to_radians()))
                    .to_degrees()
                    .abs()
                    < EPS_DEG
            );
            assert!(
                (b[0].norm() - 0.01).abs() < 0.01 * EPS_AMP,
                "{}",
                b[0].norm()
            );
            assert!(b[1].norm() < 1e-4 && b[3].norm() < 1e-4);
        }
    }

    fn hummed(jump_at: Option<usize>) -> Vec<f32> {
        let n = RATE * 20;
        let mut x = noise(n, 0.002, 5);
        for (i, v) in x.iter_mut().enumerate() {
            let ph = if jump_at.is_some_and(|j| i >= j) {
                2.0
            } else {
                0.0
            };
            *v += 0.01 * (std::f32::consts::TAU * 50.02 * i as f32 / RATE as f32 + ph).sin();
        }
        x
    }

    #[test]
    fn a_hum_phase_jump_is_a_splice_and_steady_hum_is_not() {
        let on = SpectralParams {
            hum_jump_deg: Some(45.0),
            ..SpectralParams::default()
        };
        let off = analyse_signal(
            &hummed(Some(RATE * 12 + 4000)),
            SpectralParams::default(),
            |_| false,
        );
        assert!(off.findings.is_empty(), "the cue is off by default");
        let out = analyse_signal(&hummed(Some(RATE * 12 + 4000)), on.clone(), |_| false);
        let splices: Vec<_> = out
            .findings
            .iter()
            .filter(|f| {
                matches!(
                    f,
                    SpectralFinding::Splice {
                        cue: SpliceCue::HumPhase { .. },
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(splices.len(), 1, "{:?}", out.findings);
        let (s, _) = splices[0].span();
        assert!((12.0..=12.25).contains(&s), "{s}");
        let clean = analyse_signal(&hummed(None), on, |_| false);
        assert!(clean.findings.is_empty(), "{:?}", clean.findings);
    }

    #[test]
    fn clipping_and_dropouts_from_samples() {
        let mut x = tone(RATE * 6, 220.0, 0.3, 0.0);
        for v in &mut x[RATE * 2..RATE * 3] {
            *v = (*v * 4.0).clamp(-0.9, 0.9);
        }
        for v in &mut x[RATE * 4..RATE * 4 + 1600] {
            *v = 0.0;
        }
        let out = analyse_signal(&x, SpectralParams::default(), |_| false);
        let kinds: Vec<_> = out
            .findings
            .iter()
            .map(|f| match f {
                SpectralFinding::Clipping { start_s, end_s, .. } => ("clip", *start_s, *end_s),
                SpectralFinding::Dropout { start_s, end_s, .. } => ("drop", *start_s, *end_s),
                _ => ("other", 0.0, 0.0),
            })
            .collect();
        assert_eq!(kinds, vec![("clip", 2.0, 3.0), ("drop", 4.0, 4.1)]);
    }

    /// Seconds with a given pause floor and pause speech-band percentiles.
    fn seconds(floors: &[f32]) -> Vec<SpectralSecond> {
        floors
            .iter()
            .map(|&f| SpectralSecond {
                frames: 100,
                speech_frames: 60,
                pause_frames: 40,
                noise_floor_dbfs: Some(f),
                pause_bands_db: [f - 12.0; N_BANDS],
                speech_band_dbfs: Some(-25.0),
                ..SpectralSecond::default()
            })
            .collect()
    }

    #[test]
    fn a_held_noise_floor_step_is_one_splice_and_a_blip_is_none() {
        let p = SpectralParams::default();
        let mut f = vec![-70.0f32; 12];
        f.extend(vec![-50.0; 12]);
        let out = detect_splices(&seconds(&f), &p);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(matches!(out[0], SpectralFinding::Splice { at_s, .. } if at_s == 12.0));
        // One loud second, or a wandering floor, is not a join.
        let mut blip = vec![-70.0f32; 24];
        blip[12] = -40.0;
        assert!(detect_splices(&seconds(&blip), &p).is_empty());
        let wander: Vec<f32> = (0..24).map(|i| -70.0 + (i % 4) as f32 * 4.0).collect();
        assert!(detect_splices(&seconds(&wander), &p).is_empty());
        // Steps between floors of digital silence mean nothing.
        let mut quiet = vec![-110.0f32; 12];
        quiet.extend(vec![-90.0; 12]);
        assert!(detect_splices(&seconds(&quiet), &p).is_empty());
    }

    #[test]
    fn background_voice_needs_sound_rising_in_pauses_below_the_speaker() {
        let p = SpectralParams::default();
        let mut secs = seconds(&[-70.0; 20]);
        // Seconds 8–12: 20 risen pause frames each, 25 dB under the candidate (−25 dBFS).
        for s in &mut secs[8..13] {
            s.pause_rise_frames = 20;
            s.pause_rise_dbfs = Some(-50.0);
            s.pause_rise_excess_db = Some(14.0);
        }
        let out = detect_windows(&secs, &p);
        assert!(
            out.iter().any(|f| matches!(f, SpectralFinding::BackgroundVoice { start_s, end_s, excess_db, .. } if *start_s == 8.0 && *end_s == 13.0 && *excess_db == 14.0)),
            "{out:?}"
        );
        // A moment of it (under 10 frames a second) is a breath or a click.
        for s in &mut secs[8..13] {
            s.pause_rise_frames = 9;
        }
        assert!(detect_windows(&secs, &p).is_empty());
        // As loud as the candidate: the candidate's own speech the VAD missed.
        for s in &mut secs[8..13] {
            s.pause_rise_frames = 20;
            s.pause_rise_dbfs = Some(-30.0);
        }
        assert!(detect_windows(&secs, &p).is_empty());
    }

    /// Feeds `secs` seconds of frames: speech (at −20 dBFS in the speech band) for the first
    /// 300 ms of every 2 s, then a pause whose speech-band level in dB is `pause(frame)`.
    fn pause_rises(secs: usize, pause: impl Fn(usize) -> f32) -> Vec<u32> {
        let mut a = SpectralAnalyser::new(SpectralParams::default());
        let flat = |dbfs: f32| {
            // Equal power in every bin, scaled so the speech band (77 bins) reaches `dbfs`.
            let per_bin = 10f32.powf(dbfs / 10.0) / POWER_TO_MS / (2.0 * 77.0);
            vec![per_bin; BINS]
        };
        for i in 0..secs * FRAMES_PER_S {
            let t = i % 200;
            if t < 30 {
                a.push_frame(&flat(-20.0), true);
            } else {
                a.push_frame(&flat(pause(t - 30)), false);
            }
        }
        a.finish()
            .seconds
            .iter()
            .map(|s| s.pause_rise_frames)
            .collect()
    }

    #[test]
    fn a_decaying_pause_never_rises_and_a_voice_coming_back_does() {
        // A room's decay: from −40 dB down to a −70 dB floor, at 60 dB per 0.7 s.
        let reverb = pause_rises(10, |f| (-40.0 - f as f32 * 0.6 / 0.7).max(-70.0));
        assert!(reverb.iter().all(|&n| n == 0), "{reverb:?}");
        // The same decay, then a quiet voice 20 dB over the floor from 0.8 s into the pause
        // for 0.5 s (syllables of 100 ms on, 100 ms off).
        let voice = pause_rises(10, |f| {
            let decay = (-40.0 - f as f32 * 0.6 / 0.7).max(-70.0);
            if (80..130).contains(&f) && (f / 10) % 2 == 0 {
                -50.0
            } else {
                decay
            }
        });
        assert!(voice.iter().filter(|&&n| n >= 10).count() >= 4, "{voice:?}");
    }

    /// Seconds of reverberant speech with this bass (120–240 Hz re 480–1000 Hz) and upper band
    /// edge (4–5 kHz re 2–3 kHz), in dB.
    fn speech_seconds(bass: f32, edge: f32) -> Vec<SpectralSecond> {
        let mut bands = [-30.0f32; N_BANDS];
        bands[1] = -30.0 + bass;
        bands[7] = -30.0 + edge;
        (0..12)
            .map(|_| SpectralSecond {
                frames: 100,
                speech_frames: 60,
                pause_frames: 40,
                speech_bands_db: bands,
                max_fall_db: Some(12.0),
                ..SpectralSecond::default()
            })
            .collect()
    }

    #[test]
    fn telephone_band_speech_needs_a_deeper_bass_cut_to_be_a_replay() {
        let p = SpectralParams::default();
        let replays = |secs: &[SpectralSecond]| {
            detect_windows(secs, &p)
                .iter()
                .filter(|f| matches!(f, SpectralFinding::Replay { .. }))
                .count()
        };
        // Wide band: a loudspeaker's roll-off at −15 dB is enough.
        assert_eq!(replays(&speech_seconds(-15.0, -20.0)), 1);
        // Telephone band: −15 dB is the line's own roll-off, not a loudspeaker's …
        assert_eq!(replays(&speech_seconds(-15.0, -60.0)), 0);
        // … and a loudspeaker on top of the line cuts deeper.
        assert_eq!(replays(&speech_seconds(-30.0, -60.0)), 1);
    }

    #[test]
    fn odd_input_never_panics_and_finds_nothing() {
        for x in [
            vec![],
            vec![0.0; 10],
            vec![0.0; RATE * 5],
            vec![f32::NAN; 2000],
            noise(RATE * 3, 1e-6, 9),
        ] {
            let out = analyse_signal(&x, SpectralParams::default(), |i| i % 3000 < 1500);
            assert!(out.findings.is_empty(), "{:?}", out.findings);
        }
        let mut sa = SpectralAnalyser::new(SpectralParams::default());
        sa.push_frame(&[1.0; 7], true); // wrong length: ignored
        assert!(sa.finish().seconds.is_empty());
    }
}
