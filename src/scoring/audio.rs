//! Audio-side findings (voice consistency, spectral cues) as events.

use super::*;

/// Turns the voice analyser's findings into events. Confidence grows with how far below the
/// same-voice threshold the similarity is and with the duration.
pub fn voice_events(findings: &[VoiceFinding], params: &VoiceParams) -> Vec<Event> {
    let thr = params.same_voice as f64;
    let conf = |sim: f32, dur: f64| {
        let margin = ((thr - sim as f64) / 0.3).clamp(0.0, 1.0);
        round((0.45 + 0.35 * margin + (dur / 60.0).min(0.15)).min(0.95), 3)
    };
    findings
        .iter()
        .map(|f| match *f {
            VoiceFinding::SpeakerChange {
                start,
                end,
                windows,
                mean_similarity,
            } => {
                let (s, e) = (start.as_secs_f64(), end.as_secs_f64());
                span_event(
                    EventKind::SpeakerChange,
                    (s, e),
                    conf(mean_similarity, e - s),
                    [
                        ("windows", json!(windows)),
                        ("mean_similarity", json!(round(mean_similarity as f64, 3))),
                        ("same_voice_above", json!(round(thr, 3))),
                    ],
                    format!(
                        "A different voice speaks from {} to the end ({}); its similarity to the candidate's enrolled voice is {:.2} (same voice is above {:.2}).",
                        fmt_s(s),
                        fmt_s(e),
                        mean_similarity,
                        thr
                    ),
                )
            }
            VoiceFinding::SecondSpeaker {
                start,
                end,
                runs,
                windows,
                mean_similarity,
                split_gap,
            } => {
                let (s, e) = (start.as_secs_f64(), end.as_secs_f64());
                span_event(
                    EventKind::SecondSpeaker,
                    (s, e),
                    conf(mean_similarity, (windows as f64) * 0.77),
                    [
                        ("runs", json!(runs)),
                        ("windows", json!(windows)),
                        ("mean_similarity", json!(round(mean_similarity as f64, 3))),
                        ("same_voice_above", json!(round(thr, 3))),
                        // Two-voice split of the speech segments (cosine 2-means): how much more
                        // alike each cluster is to itself than to the other. Single speakers
                        // measured −0.03…0.13 on the labelled set (BENCHMARKS.md).
                        (
                            "segment_split_gap",
                            json!(split_gap.map(|g| round(g as f64, 3))),
                        ),
                    ],
                    format!(
                        "Another voice speaks in {runs} stretch(es) between {} and {}, alternating with the candidate's (similarity {:.2}).",
                        fmt_s(s),
                        fmt_s(e),
                        mean_similarity
                    ),
                )
            }
            VoiceFinding::ReferenceMismatch {
                start,
                end,
                windows,
                median_similarity,
            } => {
                let (s, e) = (start.as_secs_f64(), end.as_secs_f64());
                span_event(
                    EventKind::ReferenceVoiceMismatch,
                    (s, e),
                    conf(median_similarity, e - s),
                    [
                        ("windows", json!(windows)),
                        ("median_similarity", json!(round(median_similarity as f64, 3))),
                        ("same_voice_above", json!(round(thr, 3))),
                    ],
                    format!(
                        "The voice in the session does not match the reference recording (median similarity {median_similarity:.2}; same voice is above {thr:.2})."
                    ),
                )
            }
        })
        .collect()
}

const WEAK: &str = "Spectral cues are weak evidence and only raise a review.";

/// Turns the spectral analyser's findings into events; `offset_s` is the first audio sample's
/// Confidence of a spectral (weak) cue: 0.3 to 0.6.
fn weak(x: f64) -> f64 {
    round(x.clamp(0.3, 0.6), 3)
}

fn r1(x: f32) -> serde_json::Value {
    json!(round(x as f64, 1))
}

fn r3(x: f32) -> serde_json::Value {
    json!(round(x as f64, 3))
}

/// The `synthetic_voice` event of a span, explained by the strongest cue that flagged it.
fn synthetic_event(
    span: (f64, f64),
    cue: SynthCue,
    high_band_harmonicity: f32,
    pitch_step_st: Option<f32>,
    silent_pause_ratio: f32,
    pitch_range_st: Option<f32>,
) -> Event {
    let (why, confidence, name) = match cue {
        SynthCue::HighBandHarmonicity => (
            format!(
                "its high frequencies are as regularly periodic as its pitch (harmonicity {high_band_harmonicity:.2} above 3 kHz; real voices are breathier there)"
            ),
            0.3 + (high_band_harmonicity as f64 - 0.4),
            "high_band_harmonicity",
        ),
        SynthCue::FlatPitch => (
            format!(
                "its melody is flat: the middle 80 % of its pitch spans {:.1} semitones over 30 s, where people talking move over 6 or more",
                pitch_range_st.unwrap_or(0.0)
            ),
            0.3 + (5.0 - pitch_range_st.unwrap_or(5.0) as f64).clamp(0.0, 5.0) * 0.06,
            "flat_pitch",
        ),
        SynthCue::SilentPauses => (
            format!(
                "its pauses are digital silence ({:.0} % of pause frames) with no breath or room noise, which a microphone always picks up",
                silent_pause_ratio * 100.0
            ),
            0.3 + silent_pause_ratio as f64 * 0.2,
            "silent_pauses",
        ),
    };
    let opt = |v: Option<f32>| v.map_or(serde_json::Value::Null, r3);
    span_event(
        EventKind::SyntheticVoice,
        span,
        weak(confidence),
        [
            ("cue", json!(name)),
            ("high_band_harmonicity", r3(high_band_harmonicity)),
            ("pitch_step_semitones", opt(pitch_step_st)),
            ("silent_pause_ratio", r3(silent_pause_ratio)),
            ("pitch_range_semitones", opt(pitch_range_st)),
        ],
        format!(
            "The voice from {} to {} has vocoder/TTS cues: {why}. {WEAK}",
            fmt_s(span.0),
            fmt_s(span.1),
        ),
    )
}

/// time. Confidence is capped at 0.6 for integrity kinds: spectral cues are weak evidence.
pub fn spectral_events(findings: &[SpectralFinding], offset_s: f64) -> Vec<Event> {
    findings
        .iter()
        .map(|f| {
            let (s, e) = f.span();
            let (s, e) = (s + offset_s, e + offset_s);
            match *f {
                SpectralFinding::Splice { cue, .. } => splice_event((s, e), cue),
                SpectralFinding::Replay {
                    bass_db,
                    decay_db,
                    rolloff_hz,
                    ..
                } => span_event(
                    EventKind::ReplaySuspected,
                    (s, e),
                    weak(0.35 + (-bass_db as f64 - 20.0) / 40.0),
                    [
                        ("bass_vs_low_mid_db", r1(bass_db)),
                        ("fastest_decay_db_per_100ms", r1(decay_db)),
                        ("speech_rolloff_hz", json!(round(rolloff_hz as f64, 0))),
                    ],
                    format!(
                        "The voice from {} to {} sounds played through a loudspeaker into a room: almost no bass ({:.0} dB below the low mids) and sound that dies away slowly (at most {:.0} dB per 100 ms). {WEAK}",
                        fmt_s(s),
                        fmt_s(e),
                        -bass_db,
                        decay_db
                    ),
                ),
                SpectralFinding::Synthetic {
                    cue,
                    high_band_harmonicity,
                    pitch_step_st,
                    silent_pause_ratio,
                    pitch_range_st,
                    ..
                } => synthetic_event(
                    (s, e),
                    cue,
                    high_band_harmonicity,
                    pitch_step_st,
                    silent_pause_ratio,
                    pitch_range_st,
                ),
                SpectralFinding::BackgroundVoice {
                    excess_db, seconds, ..
                } => span_event(
                    EventKind::BackgroundVoice,
                    (s, e),
                    weak(0.3 + seconds as f64 / 30.0),
                    [
                        ("speech_band_excess_db", r1(excess_db)),
                        ("seconds", json!(seconds)),
                    ],
                    format!(
                        "Between {} and {}, while the candidate pauses, there is quiet speech-band sound {:.0} dB above the room's background in {} second(s): possibly someone else speaking or whispering. {WEAK}",
                        fmt_s(s),
                        fmt_s(e),
                        excess_db,
                        seconds
                    ),
                ),
                SpectralFinding::Clipping {
                    samples,
                    flat_seconds,
                    ..
                } => clipping_event((s, e), samples, flat_seconds),
                SpectralFinding::Dropout {
                    gaps,
                    longest_s,
                    below_floor_db,
                    ..
                } => dropout_event((s, e), gaps, longest_s, below_floor_db),
            }
        })
        .collect()
}

/// A `clipping` event: flat-topped samples, or (through a lossy codec) seconds whose loud
/// samples pile up at one level.
fn clipping_event((s, e): (f64, f64), samples: u64, flat_seconds: u32) -> Event {
    let how = match samples {
        0 => format!("in {flat_seconds} second(s) the loudest samples pile up at one level"),
        n => format!("{n} flat-topped samples"),
    };
    let mut evidence = vec![("clipped_samples", json!(samples))];
    if flat_seconds > 0 {
        evidence.push(("flat_topped_seconds", json!(flat_seconds)));
    }
    span_event(
        EventKind::Clipping,
        (s, e),
        1.0,
        evidence,
        format!(
            "The audio is clipped (too loud for the recording level) from {} to {} ({how}): voice and spectral checks there are less reliable.",
            fmt_s(s),
            fmt_s(e)
        ),
    )
}

/// An `audio_dropout` event: gaps of digital silence, or (through a lossy codec) dips far under
/// the room's noise floor, cut into the sound.
fn dropout_event((s, e): (f64, f64), gaps: u32, longest_s: f64, below: Option<f32>) -> Event {
    let mut evidence = vec![
        ("gaps", json!(gaps)),
        ("longest_gap_s", json!(round(longest_s, 3))),
    ];
    let what = match below {
        None => "of digital silence cut into sound".to_string(),
        Some(b) => {
            evidence.push(("below_noise_floor_db", json!(round(b as f64, 1))));
            format!("falling {b:.0} dB under the room's noise floor, cut into sound")
        }
    };
    span_event(
        EventKind::AudioDropout,
        (s, e),
        1.0,
        evidence,
        format!(
            "The audio drops out {gaps} time(s) between {} and {} (longest gap {:.2} s {what}): a network or device problem; checks there are less reliable.",
            fmt_s(s),
            fmt_s(e),
            longest_s
        ),
    )
}

/// An `audio_splice` event for the cue that found it.
fn splice_event((s, e): (f64, f64), cue: SpliceCue) -> Event {
    match cue {
        SpliceCue::NoiseFloor {
            before_dbfs,
            after_dbfs,
        } => {
            let jump = (after_dbfs - before_dbfs).abs();
            span_event(
                EventKind::AudioSplice,
                (s, e),
                weak(0.3 + jump as f64 / 50.0),
                [
                    ("cue", json!("noise_floor")),
                    ("noise_floor_before_dbfs", r1(before_dbfs)),
                    ("noise_floor_after_dbfs", r1(after_dbfs)),
                    ("jump_db", r1(jump)),
                ],
                format!(
                    "Possible splice at {}: the background noise level in the pauses jumps by {:.0} dB ({:.0} to {:.0} dBFS) and stays there, as when two recordings are joined. {WEAK}",
                    fmt_s(s),
                    jump,
                    before_dbfs,
                    after_dbfs
                ),
            )
        }
        SpliceCue::Envelope { distance_db } => span_event(
            EventKind::AudioSplice,
            (s, e),
            weak(0.3 + distance_db as f64 / 40.0),
            [
                ("cue", json!("noise_spectrum")),
                ("spectral_shape_change_db", r1(distance_db)),
            ],
            format!(
                "Possible splice at {}: the colour of the background noise in the pauses changes abruptly ({:.0} dB across frequency bands) and stays changed. {WEAK}",
                fmt_s(s),
                distance_db
            ),
        ),
        SpliceCue::HumPhase { mains_hz, jump_deg } => span_event(
            EventKind::AudioSplice,
            (s, e),
            weak(0.3 + jump_deg.abs() as f64 / 360.0),
            [
                ("cue", json!("mains_hum_phase")),
                ("mains_hz", r1(mains_hz)),
                ("phase_jump_deg", r1(jump_deg)),
            ],
            format!(
                "Possible splice at {}: the {:.0} Hz mains hum in the recording jumps in phase by {:.0}°, which a continuous recording does not do. {WEAK}",
                fmt_s(s),
                mains_hz,
                jump_deg.abs()
            ),
        ),
        SpliceCue::HumOnset {
            mains_hz,
            level_change_db,
        } => span_event(
            EventKind::AudioSplice,
            (s, e),
            weak(0.3 + level_change_db.abs() as f64 / 100.0),
            [
                ("cue", json!("mains_hum_onset")),
                ("mains_hz", r1(mains_hz)),
                ("hum_level_change_db", r1(level_change_db)),
            ],
            format!(
                "Possible splice at {}: a {:.0} Hz mains hum {} ({:+.0} dB) and stays that way, as when two recordings are joined. {WEAK}",
                fmt_s(s),
                mains_hz,
                if level_change_db > 0.0 {
                    "starts"
                } else {
                    "stops"
                },
                level_change_db
            ),
        ),
    }
}
