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
//! Files: this one holds the thresholds, the per-second summary and the analyser;
//! `features.rs` the per-frame measures (band levels, harmonicity and pitch, the hum tracker);
//! `detect.rs` the detectors over the summaries; `tests.rs` their unit tests.
//!
//! Spectral spoofing cues generalise poorly to real-world audio (research/ats-and-specs.md):
//! every finding here is weak, calibrated evidence that raises a review and never rejects on its
//! own. The detectors are deliberately conjunctive (a replay needs both a loudspeaker's missing
//! bass *and* a room's slow decays) so that a band-limited but genuine source — a telephone
//! line, a codec — is not called anything by itself.
//!
//! Why one file of this length: it holds the analyser's per-frame and per-sample state machines and
//! the per-second summary they fill, which the detectors (`detect.rs`), features (`features.rs`) and
//! codec-robust level cues (`levels.rs`) read; the parameters with their calibration notes are a
//! third of it.

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner};
use std::sync::Arc;

mod detect;
mod features;
mod levels;

pub use detect::SynthCue;
use detect::{detect_hum_jumps, detect_splices, detect_windows};
use features::{AUDIBLE_MS, HumTracker, db};
pub use features::{
    FrameFeatures, Harmonicity, PITCH_BINS, PitchHist, VOICED_R, Voicing, fast_log2, frame_features,
};
pub use levels::{Dip, SampleLevels};
use levels::{DipTracker, TopStats, detect_clipping, detect_dropouts};

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
/// FFT bins under and at a telephone line's upper edge: 2.52–3.08 kHz (passed by every line) and
/// 3.72–3.96 kHz (cut by a 300–3400 Hz line, kept by wide-band speech and by codecs whose own
/// low-pass lies at 4 kHz or above).
pub const LINE_EDGE_BINS: [std::ops::Range<usize>; 2] = [63..78, 93..100];
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
    /// Mains hum appearing or going at a boundary: the share of seconds whose hum stands out
    /// ([`Self::hum_min_snr_db`]) changes by at least this much between the six seconds before
    /// and after, and the hum's level (median per side) by at least
    /// [`Self::hum_onset_level_db`]. Default 0.5: on the corpus's calibration half the four
    /// recordings where a join added hum read 0.67–1.0, every clean recording 0 and every other
    /// recording at most 0.17 (with the level condition; `scripts/accuracy`, BENCHMARKS.md
    /// "Mains hum that starts at a join"). Telephone-band audio carries no mains hum to judge.
    pub hum_onset_share: f32,
    /// See [`Self::hum_onset_share`]. Default 20 dB: the joins moved the hum's level by 30–48
    /// dB, the largest step on a clean calibration recording was 6 dB.
    pub hum_onset_level_db: f32,
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
    /// Replay on telephone-band speech whose coding noise fills 4–5 kHz (AAC): the line's own
    /// edge, speech power at 3.72–3.96 kHz relative to 2.52–3.08 kHz ([`LINE_EDGE_BINS`]), at or
    /// below this, with `replay_narrowband_top_db`, also selects `replay_bass_narrowband_db`.
    /// Default −12 dB: per 10 s window on the corpus's calibration half, telephone-band AAC
    /// spans −47 … −15 dB and telephone-band Opus stays under −29, wide-band replays read −9 or
    /// more. The replay of a voice that was itself recorded narrow-band (`replay_001`) reads
    /// −17 … −22 too — a narrow voice from a loudspeaker — hence the second condition.
    pub replay_line_edge_db: f32,
    /// Telephone-band channel: speech power at 5–7 kHz relative to 2–3 kHz at or below this.
    /// Default −47 dB: on the calibration half, telephone-band recordings read −52 dB or less
    /// per 10 s window (the line cut the background noise too), the narrow-band voice replayed
    /// into a room (`replay_001`) −43 … −40 dB: the room and microphone fill the top band. On
    /// the validation half AAC's noise filling lifts some telephone-band windows to −33 dB, so
    /// this is a partial fix (BENCHMARKS.md, "A telephone line's edge").
    pub replay_narrowband_top_db: f32,
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
    /// Clipping after a lossy codec: a second at least this loud (RMS, dBFS) … Default −12.
    pub clip_loud_dbfs: f32,
    /// … whose 90th percentile of |x| is at least this share of its 99th counts
    /// ([`levels`]). Default 0.7: on the corpus's calibration half the clipped AAC seconds read
    /// 0.71–0.91 at −8.6 to −3.6 dBFS; a span found this way alone needs two such seconds (one
    /// loud sustained vowel of a clean recording read 0.82 at −10 dBFS).
    pub clip_top_ratio: f32,
    /// Dropout: shortest digital-silence gap cut into audible sound. Default 20 ms.
    pub dropout_min_s: f32,
    /// Longest gap still called a dropout (longer is a muted microphone). Default 2 s.
    pub dropout_max_s: f32,
    /// Dropout after a lossy codec: a dip inside sound at least this far under the noise floor
    /// of the seconds around it ([`levels`]). Default 20 dB.
    pub dropout_below_floor_db: f32,
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
            hum_onset_share: 0.5,
            hum_onset_level_db: 20.0,
            replay_bass_db: -12.0,
            replay_narrowband_edge_db: -42.0,
            replay_bass_narrowband_db: -24.0,
            replay_line_edge_db: -12.0,
            replay_narrowband_top_db: -47.0,
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
            clip_loud_dbfs: -12.0,
            clip_top_ratio: 0.7,
            dropout_min_s: 0.02,
            dropout_max_s: 2.0,
            dropout_below_floor_db: 20.0,
        }
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
    /// Mean power of speech frames in the two [`LINE_EDGE_BINS`] bands, dB.
    pub speech_edge_db: [f32; 2],
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
    /// The raw samples' loudness and flat-top share (clipping after a lossy codec).
    pub sample_levels: SampleLevels,
    /// The deepest short dip inside sound that started in this second (dropouts after a codec).
    pub dip: Option<Dip>,
    pub hum: [Complex<f32>; 6],
}

#[derive(Debug, Default, Clone)]
struct SecondAcc {
    frames: u32,
    speech: u32,
    pause: u32,
    speech_bands: [f32; N_BANDS],
    speech_edge: [f32; 2],
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
        /// Flat-topped samples (identical consecutive samples at a high level).
        samples: u64,
        /// Seconds whose loud samples pile up at one level (clipping through a lossy codec).
        flat_seconds: u32,
    },
    Dropout {
        start_s: f64,
        end_s: f64,
        gaps: u32,
        longest_s: f64,
        /// For gaps that went through a lossy codec: how far the deepest fell under the noise
        /// floor around it (dB); `None` when every gap is exact digital silence.
        below_floor_db: Option<f32>,
    },
}

/// Which cue found a splice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpliceCue {
    NoiseFloor {
        before_dbfs: f32,
        after_dbfs: f32,
    },
    Envelope {
        distance_db: f32,
    },
    HumPhase {
        mains_hz: f32,
        jump_deg: f32,
    },
    /// Mains hum that appears (positive change) or goes (negative) and stays that way.
    HumOnset {
        mains_hz: f32,
        level_change_db: f32,
    },
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
    tops: TopStats,
    sample_levels: Vec<SampleLevels>,
    dips: DipTracker,
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
            tops: TopStats::new(),
            sample_levels: Vec::new(),
            dips: DipTracker::new(),
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
        self.tops.push(samples, &mut self.sample_levels);
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
        self.dips.push(level);
        let a = &mut self.cur;
        a.frames += 1;
        if speech {
            a.speech += 1;
            for (s, b) in a.speech_bands.iter_mut().zip(&f.bands) {
                *s += b;
            }
            for (s, bins) in a.speech_edge.iter_mut().zip(LINE_EDGE_BINS) {
                *s += power[bins].iter().sum::<f32>() * (2.0 * POWER_TO_MS);
            }
            a.flatness += f.flatness;
            a.centroid += f.centroid_hz;
            a.rolloff += f.rolloff_hz;
            a.speech_sb += f.speech_band;
            a.audible += (level > -60.0) as u32;
            self.restart_pause(true);
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
            self.track_pause(f.speech_band, level < SILENT_DB);
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

    /// The background-voice cue for one pause frame (speech-band mean square `speech_band`): frames
    /// [`PAUSE_GUARD`] away from speech on both sides, in a pause that followed the candidate's
    /// speech, count when they rise over the pause's lowest level so far. Digital silence (a
    /// dropout, a gate) ends a pause like speech does: the VAD wakes late after it, and the
    /// sound that returns is the recording, not someone else.
    fn track_pause(&mut self, speech_band: f32, silent: bool) {
        if silent {
            self.restart_pause(false);
            return;
        }
        if (self.since_speech as usize) < PAUSE_GUARD {
            return;
        }
        self.pause_sb_queue.push_back(db(speech_band));
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

    /// A pause (re)starts: after speech (`spoke`) or after digital silence.
    fn restart_pause(&mut self, spoke: bool) {
        self.since_speech = 0;
        self.pause_sb_queue.clear();
        self.pause_min_db = f32::MAX;
        self.spoke = spoke;
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
            speech_edge_db: a.speech_edge.map(|x| db(x / a.speech.max(1) as f32)),
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
            sample_levels: SampleLevels::default(),
            dip: None,
            hum: [Complex::new(0.0, 0.0); 6],
        });
    }

    /// Closes the last second and runs the detectors.
    pub fn finish(mut self) -> SpectralOutcome {
        if self.cur.frames > 0 {
            self.close_second();
        }
        // Clipping counts, sample levels and hum blocks are per second of samples; attach them.
        if self.tops.pending() {
            self.sample_levels.push(self.tops.close());
        }
        self.dips.finish();
        let secs = self.seconds.len().max(self.clipped.len());
        self.seconds.resize(secs, SpectralSecond::default());
        for (s, c) in self.seconds.iter_mut().zip(&self.clipped) {
            s.clipped_samples = *c;
        }
        for (s, l) in self.seconds.iter_mut().zip(&self.sample_levels) {
            s.sample_levels = *l;
        }
        for (s, d) in self.seconds.iter_mut().zip(&self.dips.per_second) {
            s.dip = *d;
        }
        for (s, h) in self.seconds.iter_mut().zip(&self.hum_blocks) {
            s.hum = *h;
        }
        for (i, s) in self.seconds.iter().enumerate() {
            let bass = s.speech_bands_db[0].max(s.speech_bands_db[1]) - s.speech_bands_db[3];
            tracing::debug!(
                "spectral second {i}: speech {} pause {} floor {:?} pause_rise {} at {:?} \
                 voiced {} hb {:.2} hnr {:.1} step {:.3} fall {:?} bass {:.1} rolloff {:.0} silent {} clip {} rms {:.1} top {:.2} dip {:?} hum50 {:.4} line_edge {:.1} speech_bands {:?} pause_bands {:?}",
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
                s.sample_levels.rms_dbfs,
                s.sample_levels.top_ratio,
                s.dip
                    .map(|d| (d.start_s, d.dur_s, d.min_dbfs, d.before_dbfs, d.after_dbfs)),
                s.hum[0].norm(),
                s.speech_edge_db[1] - s.speech_edge_db[0],
                s.speech_bands_db.map(|x| (x * 10.0).round() / 10.0),
                s.pause_bands_db.map(|x| (x * 10.0).round() / 10.0),
            );
        }
        let p = &self.params;
        let mut findings = Vec::new();
        findings.extend(detect_splices(&self.seconds, self.hum_blocks.len(), p));
        findings.extend(detect_hum_jumps(&self.seconds, p));
        findings.extend(detect_windows(&self.seconds, p));
        findings.extend(detect_clipping(&self.seconds, p));
        findings.extend(detect_dropouts(&self.gaps, &self.seconds, p));
        findings.sort_by(|a, b| a.span().0.total_cmp(&b.span().0));
        SpectralOutcome {
            findings,
            seconds: self.seconds,
        }
    }
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
mod tests;
