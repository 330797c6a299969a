//! The detectors: run once over the per-second summaries at the end of the audio.

use super::features::MAINS;
use super::*;

pub(super) fn median(v: &mut [f32]) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    Some(v[v.len() / 2])
}

/// Seconds each side of a boundary whose pause floors are compared.
const SPLICE_SIDE: usize = 6;
/// Fewest pause floors a side needs.
const SPLICE_MIN_SIDE: usize = 3;
/// How far a sparse side may reach for its pause floors.
const SPLICE_REACH: usize = 15;

/// A second's pause floor and band spectrum.
type Floor = (f32, [f32; N_BANDS]);

/// Splices from the pause noise: its level and spectral shape, compared over the seconds before
/// and after each boundary. A step that holds on both sides (each side steady within a few dB)
/// is a join of two recordings; one loud second is not. Also mains hum appearing or going at a
/// boundary, judged over the first `hum_secs` seconds (those with a whole second of samples
/// for the hum tracker: a trailing part-second has no hum measured and must not read as silence).
pub(super) fn detect_splices(
    secs: &[SpectralSecond],
    hum_secs: usize,
    p: &SpectralParams,
) -> Vec<SpectralFinding> {
    let mut cands: Vec<(usize, f32, SpliceCue)> = Vec::new();
    for b in SPLICE_MIN_SIDE..secs.len().saturating_sub(SPLICE_MIN_SIDE - 1) {
        let (left, dense_l) = splice_side(secs, b, true);
        let (right, dense_r) = splice_side(secs, b, false);
        if left.len() < SPLICE_MIN_SIDE || right.len() < SPLICE_MIN_SIDE {
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
            let cue = SpliceCue::NoiseFloor {
                before_dbfs: ml,
                after_dbfs: mr,
            };
            cands.push((b, jump, cue));
            continue;
        }
        // Only over the regular windows: three scattered pauses are too few to compare shapes.
        if !(dense_l && dense_r) {
            continue;
        }
        if let Some(rms) = shape_distance(&left, &right)
            && rms >= p.splice_envelope_db
        {
            cands.push((b, rms, SpliceCue::Envelope { distance_db: rms }));
        }
    }
    // The hum's strength is a share (≤ 1), below any noise-floor or shape candidate's dB: a step
    // those cues already found keeps its cue, and one join still makes one finding.
    cands.extend(hum_onsets(&secs[..hum_secs.min(secs.len())], p));
    strongest_splices(&cands)
}

/// Splices from mains hum that appears or goes at a boundary and stays that way: a room's wiring
/// does not start humming between two sentences, a join to another recording does. Per mains
/// frequency, each second's hum counts when it stands out of the spectrum beside it; a
/// boundary is a candidate when the share of such seconds and the hum's level both change
/// across it ([`SpectralParams::hum_onset_share`]).
fn hum_onsets(secs: &[SpectralSecond], p: &SpectralParams) -> Vec<(usize, f32, SpliceCue)> {
    let mut out = Vec::new();
    for (m, (mains_hz, _)) in MAINS.iter().enumerate() {
        let hum: Vec<(bool, f32)> = secs
            .iter()
            .map(|s| {
                let level_db = 20.0 * s.hum[3 * m].norm().max(1e-12).log10();
                (hum_snr_db(s, m) >= p.hum_min_snr_db, level_db)
            })
            .collect();
        let side = |v: &[(bool, f32)]| {
            let share = v.iter().filter(|x| x.0).count() as f32 / v.len() as f32;
            let mut level: Vec<f32> = v.iter().map(|x| x.1).collect();
            (share, median(&mut level).unwrap_or(0.0))
        };
        for b in SPLICE_MIN_SIDE..=secs.len().saturating_sub(SPLICE_MIN_SIDE) {
            let (share_l, level_l) = side(&hum[b.saturating_sub(SPLICE_SIDE)..b]);
            let (share_r, level_r) = side(&hum[b..(b + SPLICE_SIDE).min(secs.len())]);
            let change = (share_r - share_l).abs();
            if change >= p.hum_onset_share && (level_r - level_l).abs() >= p.hum_onset_level_db {
                let cue = SpliceCue::HumOnset {
                    mains_hz: *mains_hz,
                    level_change_db: level_r - level_l,
                };
                out.push((b, change, cue));
            }
        }
    }
    out
}

/// The pause floors of the [`SPLICE_SIDE`] seconds on one side of boundary `b`, and whether
/// they were that dense; in fluent speech, where pauses are sparse, the nearest
/// [`SPLICE_MIN_SIDE`] within [`SPLICE_REACH`]: a lasting step shows in the next pauses.
fn splice_side(secs: &[SpectralSecond], b: usize, before: bool) -> (Vec<Floor>, bool) {
    let floors = |s: &SpectralSecond| s.noise_floor_dbfs.map(|f| (f, s.pause_bands_db));
    let near = match before {
        true => b.saturating_sub(SPLICE_SIDE)..b,
        false => b..(b + SPLICE_SIDE).min(secs.len()),
    };
    let v: Vec<Floor> = secs[near].iter().filter_map(floors).collect();
    if v.len() >= SPLICE_MIN_SIDE {
        return (v, true);
    }
    let wide = match before {
        true => b.saturating_sub(SPLICE_REACH)..b,
        false => b..(b + SPLICE_REACH).min(secs.len()),
    };
    let mut far: Vec<_> = secs[wide].iter().filter_map(floors).collect();
    if before {
        far.reverse();
    }
    far.truncate(SPLICE_MIN_SIDE);
    (far, false)
}

/// Shape: the mean pause band spectrum each side, level removed, RMS difference over bands with
/// energy on both sides (the 40–240 Hz bands are left out: mains and handling noise). `None`
/// with fewer than 5 such bands.
fn shape_distance(left: &[Floor], right: &[Floor]) -> Option<f32> {
    let shape = |v: &[Floor]| {
        let mut m = [0f32; N_BANDS];
        for (_, bands) in v {
            for (a, b) in m.iter_mut().zip(bands) {
                *a += b / v.len() as f32;
            }
        }
        m
    };
    let (sl, sr) = (shape(left), shape(right));
    let idx: Vec<usize> = (2..N_BANDS)
        .filter(|&i| sl[i] > -95.0 && sr[i] > -95.0)
        .collect();
    if idx.len() < 5 {
        return None;
    }
    let diffs: Vec<f32> = idx.iter().map(|&i| sr[i] - sl[i]).collect();
    let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
    let var = diffs.iter().map(|d| (d - mean) * (d - mean)).sum::<f32>() / diffs.len() as f32;
    Some(var.sqrt())
}

/// One finding per step: the strongest boundary within ±[`SPLICE_SIDE`] seconds. Boundaries in
/// a stretch without pauses all see the same two sides (equal strength): the join lies
/// somewhere in that stretch, so the middle of it is reported.
fn strongest_splices(cands: &[(usize, f32, SpliceCue)]) -> Vec<SpectralFinding> {
    let mut out = Vec::new();
    for (i, c) in cands.iter().enumerate() {
        let near: Vec<_> = cands
            .iter()
            .enumerate()
            .filter(|(_, d)| d.0.abs_diff(c.0) <= SPLICE_SIDE)
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

pub(super) fn wrap(a: f32) -> f32 {
    let t = std::f32::consts::TAU;
    a - t * ((a + std::f32::consts::PI) / t).floor()
}

/// How far the `m`-th mains frequency ([`MAINS`]) stands above the spectrum beside it in a
/// second (dB).
fn hum_snr_db(s: &SpectralSecond, m: usize) -> f32 {
    let beside = 0.5 * (s.hum[3 * m + 1].norm() + s.hum[3 * m + 2].norm());
    20.0 * (s.hum[3 * m].norm() / beside.max(1e-9)).log10()
}

/// Splices from the mains hum's phase: the steady drift is the median block-to-block phase step;
/// a join shows as a step that breaks it.
pub(super) fn detect_hum_jumps(
    secs: &[SpectralSecond],
    p: &SpectralParams,
) -> Vec<SpectralFinding> {
    let Some(min_jump_deg) = p.hum_jump_deg else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if secs.len() < 5 {
        return out;
    }
    for (m, (mains_hz, _)) in MAINS.iter().enumerate() {
        let h: Vec<Complex<f32>> = secs.iter().map(|s| s.hum[3 * m]).collect();
        let hummed: Vec<bool> = secs
            .iter()
            .map(|s| hum_snr_db(s, m) >= p.hum_min_snr_db)
            .collect();
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
pub(super) fn detect_windows(secs: &[SpectralSecond], p: &SpectralParams) -> Vec<SpectralFinding> {
    let w = p.window_s.max(2);
    let step = (w / 2).max(1);
    let n = secs.len();
    let mut replay: Vec<(usize, usize, ReplayCues)> = Vec::new();
    let mut synth: Vec<(usize, usize, SynthCues)> = Vec::new();
    let mut bg: Vec<(usize, usize, (f32, f32))> = Vec::new();
    let starts: Vec<usize> = if n <= w {
        vec![0]
    } else {
        (0..=(n - w)).step_by(step).chain([n - w]).collect()
    };
    for a in starts {
        let b = (a + w).min(n);
        let win = &secs[a..b];
        if let Some(c) = replay_window(win, p) {
            replay.push((a, b, c));
        }
        if let Some(c) = synthetic_window(secs, a, b, p) {
            synth.push((a, b, c));
        }
        if let Some(c) = background_window(win, p) {
            bg.push((a, b, c));
        }
    }
    let mut out = Vec::new();
    merge(&replay, |a, b, v| out.push(replay_span(a, b, v)));
    merge(&synth, |a, b, v| out.push(synthetic_span(a, b, v)));
    merge(&bg, |a, b, v| out.push(background_span(secs, a, b, v, p)));
    out
}

/// Merges overlapping windows of one detector into one span.
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

fn mean(x: impl IntoIterator<Item = f32>) -> f32 {
    let (sum, n) = x
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n.max(1) as f32
}

/// A replay window's measures: bass (dB re 480–1000 Hz), median fastest fall, mean roll-off.
#[derive(Debug, Clone, Copy)]
struct ReplayCues {
    bass: f32,
    decay: f32,
    rolloff: f32,
}

/// Replay: loudspeaker bass roll-off and room decay, over ≥ 4 s of speech.
fn replay_window(win: &[SpectralSecond], p: &SpectralParams) -> Option<ReplayCues> {
    let speech: u32 = win.iter().map(|s| s.speech_frames).sum();
    if speech < 400 {
        return None;
    }
    let mut bands = [0f32; N_BANDS];
    let mut line = [0f32; 2];
    for s in win {
        for (o, d) in bands.iter_mut().zip(&s.speech_bands_db) {
            *o += 10f32.powf(d / 10.0) * s.speech_frames as f32;
        }
        for (o, d) in line.iter_mut().zip(&s.speech_edge_db) {
            *o += 10f32.powf(d / 10.0) * s.speech_frames as f32;
        }
    }
    let band = |i: usize| db(bands[i] / speech as f32);
    // 120–240 Hz against 480–1000 Hz: 40–120 Hz is mostly hum and handling noise.
    let bass = band(1) - band(3);
    let bass_limit = if narrow_band_channel(&band, db(line[1]) - db(line[0]), p) {
        p.replay_bass_narrowband_db
    } else {
        p.replay_bass_db
    };
    let mut falls: Vec<f32> = win
        .iter()
        .filter(|s| s.speech_frames >= 30)
        .filter_map(|s| s.max_fall_db)
        .collect();
    let decay = median(&mut falls)?;
    let rolloff = win
        .iter()
        .map(|s| s.rolloff_hz * s.speech_frames as f32)
        .sum::<f32>()
        / speech as f32;
    (bass <= bass_limit && decay <= p.replay_decay_db).then_some(ReplayCues {
        bass,
        decay,
        rolloff,
    })
}

/// Whether the channel itself is a telephone line (nothing above 3.4 kHz): the line has cut the
/// bass already, so a replay needs a deeper cut. Either 4–5 kHz is empty, or coding noise fills
/// it but the line's edge at 3.4 kHz shows (`line_edge`) while 5–7 kHz stays empty. The last
/// condition keeps a narrow-band *voice* in a wide-band room (a narrow-band recording played
/// from a loudspeaker: the room and microphone noise fill 5–7 kHz) on the wide-band limit.
fn narrow_band_channel(band: &impl Fn(usize) -> f32, line_edge: f32, p: &SpectralParams) -> bool {
    let edge = band(7) - band(5);
    let top = db((10f32.powf(band(8) / 10.0) + 10f32.powf(band(9) / 10.0)) / 2.0) - band(5);
    edge <= p.replay_narrowband_edge_db
        || (line_edge <= p.replay_line_edge_db && top <= p.replay_narrowband_top_db)
}

fn replay_span(a: usize, b: usize, v: &[ReplayCues]) -> SpectralFinding {
    SpectralFinding::Replay {
        start_s: a as f64,
        end_s: b as f64,
        bass_db: mean(v.iter().map(|x| x.bass)),
        decay_db: mean(v.iter().map(|x| x.decay)),
        rolloff_hz: mean(v.iter().map(|x| x.rolloff)),
    }
}

/// Synthetic: periodic excitation above 3 kHz in voiced speech, a melody too flat for a person,
/// or speech whose pauses are digital silence (a microphone always hears a room; TTS into a
/// virtual device does not). The window is `secs[a..b]`; the melody is judged over a longer
/// stretch centred on it: a person can sound flat for ten seconds, rarely for thirty.
fn synthetic_window(
    secs: &[SpectralSecond],
    a: usize,
    b: usize,
    p: &SpectralParams,
) -> Option<SynthCues> {
    let win = &secs[a..b];
    let speech: u32 = win.iter().map(|s| s.speech_frames).sum();
    let pause: u32 = win.iter().map(|s| s.pause_frames).sum();
    let voiced: u32 = win.iter().map(|s| s.voiced_frames).sum();
    let hb =
        (voiced >= 100).then(|| win.iter().map(|s| s.high_band_r_sum).sum::<f32>() / voiced as f32);
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
    let mid = (a + b) / 2;
    let half = p.synthetic_pitch_window_s / 2;
    let (pa, pb) = (mid.saturating_sub(half), (mid + half).min(secs.len()));
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
    .find_map(|(fired, cue)| fired.then_some(cue))?;
    let steps: u32 = win.iter().map(|s| s.pitch_steps).sum();
    let jit = (steps > 0).then(|| win.iter().map(|s| s.pitch_step_sum).sum::<f32>() / steps as f32);
    Some(SynthCues {
        cue,
        high_band: hb.unwrap_or(0.0),
        pitch_step: jit,
        silent_ratio: ratio,
        pitch_range,
    })
}

fn synthetic_span(a: usize, b: usize, v: &[SynthCues]) -> SpectralFinding {
    let jit: Vec<f32> = v.iter().filter_map(|x| x.pitch_step).collect();
    SpectralFinding::Synthetic {
        start_s: a as f64,
        end_s: b as f64,
        cue: v
            .iter()
            .map(|x| x.cue)
            .min()
            .unwrap_or(SynthCue::SilentPauses),
        high_band_harmonicity: mean(v.iter().map(|x| x.high_band)),
        pitch_step_st: (!jit.is_empty()).then(|| mean(jit)),
        silent_pause_ratio: mean(v.iter().map(|x| x.silent_ratio)),
        pitch_range_st: v.iter().filter_map(|x| x.pitch_range).reduce(f32::min),
    }
}

/// Background voice: seconds whose pauses carry sound rising again, well below the candidate's
/// own speech (louder is the candidate, missed by the VAD). Returns the mean rise (dB) and the
/// candidate's level (dBFS, speech band).
fn background_window(win: &[SpectralSecond], p: &SpectralParams) -> Option<(f32, f32)> {
    let mut lv: Vec<f32> = win.iter().filter_map(|s| s.speech_band_dbfs).collect();
    let level = median(&mut lv)?;
    let loud: Vec<f32> = win
        .iter()
        .filter(|s| background_second(s, level, p))
        .filter_map(|s| s.pause_rise_excess_db)
        .collect();
    (loud.len() >= p.background_min_s).then(|| (mean(loud.iter().copied()), level))
}

/// The merged windows narrowed to the seconds that carried the sound.
fn background_span(
    secs: &[SpectralSecond],
    a: usize,
    b: usize,
    v: &[(f32, f32)],
    p: &SpectralParams,
) -> SpectralFinding {
    let level = v.iter().map(|x| x.1).fold(f32::MIN, f32::max);
    let loud: Vec<usize> = (a..b)
        .filter(|&i| background_second(&secs[i], level, p))
        .collect();
    SpectralFinding::BackgroundVoice {
        start_s: loud.first().copied().unwrap_or(a) as f64,
        end_s: loud.last().map(|x| x + 1).unwrap_or(b) as f64,
        excess_db: mean(v.iter().map(|x| x.0)),
        seconds: loud.len() as u32,
    }
}
