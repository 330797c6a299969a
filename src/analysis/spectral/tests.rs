use super::detect::wrap;
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
    let out = detect_splices(&seconds(&f), f.len(), &p);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(matches!(out[0], SpectralFinding::Splice { at_s, .. } if at_s == 12.0));
    // One loud second, or a wandering floor, is not a join.
    let mut blip = vec![-70.0f32; 24];
    blip[12] = -40.0;
    assert!(detect_splices(&seconds(&blip), blip.len(), &p).is_empty());
    let wander: Vec<f32> = (0..24).map(|i| -70.0 + (i % 4) as f32 * 4.0).collect();
    assert!(detect_splices(&seconds(&wander), wander.len(), &p).is_empty());
    // Steps between floors of digital silence mean nothing.
    let mut quiet = vec![-110.0f32; 12];
    quiet.extend(vec![-90.0; 12]);
    assert!(detect_splices(&seconds(&quiet), quiet.len(), &p).is_empty());
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
/// edge (4–5 kHz re 2–3 kHz), in dB; the line's edge (3.72–3.96 kHz re 2.52–3.08) is −3 dB
/// and 5–7 kHz is as loud as 2–3 kHz.
fn speech_seconds(bass: f32, edge: f32) -> Vec<SpectralSecond> {
    speech_seconds_on_line(bass, edge, -3.0, 0.0)
}

/// As [`speech_seconds`], with the line's edge and the 5–7 kHz band (re 2–3 kHz) given.
fn speech_seconds_on_line(bass: f32, edge: f32, line_edge: f32, top: f32) -> Vec<SpectralSecond> {
    let mut bands = [-30.0f32; N_BANDS];
    bands[1] = -30.0 + bass;
    bands[7] = -30.0 + edge;
    bands[8] = -30.0 + top;
    bands[9] = -30.0 + top;
    (0..12)
        .map(|_| SpectralSecond {
            frames: 100,
            speech_frames: 60,
            pause_frames: 40,
            speech_bands_db: bands,
            speech_edge_db: [-30.0, -30.0 + line_edge],
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
    // Coding noise at 4–5 kHz (AAC) hides the empty band; the line's edge at 3.4 kHz still
    // tells a telephone line from a loudspeaker, with 5–7 kHz as empty as the line leaves it.
    let on_line =
        |bass, line_edge, top| replays(&speech_seconds_on_line(bass, -30.0, line_edge, top));
    assert_eq!(on_line(-15.0, -30.0, -70.0), 0);
    assert_eq!(on_line(-30.0, -30.0, -70.0), 1);
    // A loudspeaker's own treble loss is gentler than a line's edge.
    assert_eq!(on_line(-15.0, -6.0, -70.0), 1);
    // A narrow-band voice from a loudspeaker: the room fills 5–7 kHz, so the channel is wide.
    assert_eq!(on_line(-15.0, -30.0, -40.0), 1);
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

#[test]
fn mains_hum_that_starts_mid_recording_is_a_splice() {
    // A quiet 50 Hz hum joins the room noise at 12 s: the pause level barely moves (no
    // noise-floor step), the hum stands out of its neighbourhood from then on.
    let with_hum_from = |from: usize| {
        let mut x = noise(RATE * 24, 0.002, 9);
        for (i, v) in x.iter_mut().enumerate().skip(from) {
            *v += 0.002 * (std::f32::consts::TAU * 50.0 * i as f32 / RATE as f32).sin();
        }
        analyse_signal(&x, SpectralParams::default(), |_| false).findings
    };
    let found = with_hum_from(RATE * 12);
    let [
        SpectralFinding::Splice {
            at_s,
            cue:
                SpliceCue::HumOnset {
                    mains_hz,
                    level_change_db,
                },
        },
    ] = found[..]
    else {
        panic!("one hum-onset splice expected: {found:?}");
    };
    assert!((11.0..=13.0).contains(&at_s), "{at_s}");
    assert_eq!(mains_hz, 50.0);
    assert!(level_change_db >= 20.0, "{level_change_db}");
    // The same hum from the start is the room, not a join.
    assert_eq!(with_hum_from(0), vec![]);
}
