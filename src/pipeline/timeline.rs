//! The report's per-second series.

use super::loudness;
use crate::analysis::audio::AudioSummary;
use crate::analysis::face::FaceSample;
use crate::analysis::lipsync;
use crate::analysis::voice::VoiceSample;
use crate::media::Pts;
use crate::report::{Event, Timeline, round};
use std::collections::BTreeMap;

/// Per-second series: video motion (mean abs luma difference to the previous frame), mean luma,
/// faces and face distance; audio level (dBFS), noise floor, anomaly strength and speech
/// probability; mouth–voice correlation and voice similarity.
pub(super) fn timeline(
    per_frame: &[(Pts, f32, f32)],
    faces: &[FaceSample],
    audio: Option<&AudioSummary>,
    voice: &[VoiceSample],
    spectral_events: &[Event],
) -> Timeline {
    let mut series: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    let video_secs = video_series(per_frame, faces, &mut series);
    if let Some(a) = audio {
        audio_series(a, spectral_events, &mut series);
        if video_secs > 0 {
            series.insert(
                "mouth_voice_correlation".into(),
                mouth_voice(faces, a, video_secs),
            );
        }
        series.insert("voice_similarity".into(), voice_similarity(a, voice));
    }
    Timeline {
        step_s: 1.0,
        series,
    }
}

/// Mean of each second's (sum, count), rounded to `d` decimals; `None` where nothing was seen.
fn mean(v: Vec<(f64, u32)>, d: i32) -> Vec<Option<f64>> {
    v.into_iter()
        .map(|(s, n)| (n > 0).then(|| round(s / n as f64, d)))
        .collect()
}

/// The video series; returns how many seconds they cover, sized from the latest timestamp
/// (frames are not guaranteed to be in time order; every index is clamped).
fn video_series(
    per_frame: &[(Pts, f32, f32)],
    faces: &[FaceSample],
    series: &mut BTreeMap<String, Vec<Option<f64>>>,
) -> usize {
    let video_secs = per_frame
        .iter()
        .map(|(p, _, _)| p.as_secs_f64().floor() as usize + 1)
        .max()
        .unwrap_or(0);
    if video_secs == 0 {
        return 0;
    }
    let mut motion: Vec<(f64, u32)> = vec![(0.0, 0); video_secs];
    let mut luma: Vec<(f64, u32)> = vec![(0.0, 0); video_secs];
    for (p, m, l) in per_frame {
        let s = (p.as_secs_f64().floor() as usize).min(video_secs - 1);
        if m.is_finite() {
            motion[s].0 += *m as f64;
            motion[s].1 += 1;
        }
        luma[s].0 += *l as f64;
        luma[s].1 += 1;
    }
    series.insert("video_motion".into(), mean(motion, 2));
    series.insert("video_luma".into(), mean(luma, 1));
    // Faces on camera: the most seen in any frame of that second.
    let mut count: Vec<Option<f64>> = vec![None; video_secs];
    let mut dist: Vec<(f64, u32)> = vec![(0.0, 0); video_secs];
    for f in faces {
        let s = (f.pts.as_secs_f64().floor() as usize).min(video_secs - 1);
        count[s] = Some(count[s].unwrap_or(0.0).max(f.faces as f64));
        if let Some(d) = f.distance {
            dist[s].0 += d as f64;
            dist[s].1 += 1;
        }
    }
    series.insert("faces_on_camera".into(), count);
    series.insert("face_distance".into(), mean(dist, 3));
    video_secs
}

/// The audio series, each padded with `None` for the seconds before the audio starts.
fn audio_series(
    a: &AudioSummary,
    spectral_events: &[Event],
    series: &mut BTreeMap<String, Vec<Option<f64>>>,
) {
    let offset = a.start.as_secs_f64().floor() as usize;
    let pad = |v: Vec<Option<f64>>| -> Vec<Option<f64>> {
        std::iter::repeat_n(None, offset).chain(v).collect()
    };
    series.insert(
        "audio_level_dbfs".into(),
        pad(a
            .per_second
            .iter()
            .map(|s| Some(round(s.rms_dbfs() as f64, 1)))
            .collect()),
    );
    if let Some(sp) = &a.spectral {
        // Noise floor of the pauses, and each second's own anomaly cue strength (0–1).
        series.insert(
            "noise_floor_dbfs".into(),
            pad(sp
                .seconds
                .iter()
                .map(|s| s.noise_floor_dbfs.map(|f| round(f as f64, 1)))
                .collect()),
        );
        // Per second, the highest confidence of a spectral event covering it (0 when none).
        let mut anomaly: Vec<Option<f64>> = sp
            .seconds
            .iter()
            .map(|x| (x.frames > 0).then_some(0.0))
            .collect();
        for e in spectral_events {
            let from = (e.start_s - a.start.as_secs_f64()).max(0.0).floor() as usize;
            let to = (e.end_s - a.start.as_secs_f64()).max(0.0).ceil() as usize;
            for v in anomaly.iter_mut().take(to).skip(from).flatten() {
                *v = v.max(e.confidence);
            }
        }
        series.insert("audio_anomaly".into(), pad(anomaly));
    }
    series.insert(
        "speech_probability".into(),
        pad(a
            .per_second
            .iter()
            .map(|s| s.mean_speech_prob().map(|p| round(p as f64, 3)))
            .collect()),
    );
}

/// Mouth–voice correlation over the 10 s around each second (null without enough pairs).
fn mouth_voice(faces: &[FaceSample], a: &AudioSummary, video_secs: usize) -> Vec<Option<f64>> {
    let loud = loudness(a);
    (0..video_secs)
        .map(|sec| {
            let (from, to) = (sec.saturating_sub(5) as u64, sec as u64 + 5);
            lipsync::correlation(
                faces,
                &loud,
                Pts(from * 1_000_000_000),
                Pts(to * 1_000_000_000),
            )
            .map(|r| round(r as f64, 3))
        })
        .collect()
}

/// Mean similarity to the enrolled voice of the windows centred in each second.
fn voice_similarity(a: &AudioSummary, voice: &[VoiceSample]) -> Vec<Option<f64>> {
    let secs = a.per_second.len() + a.start.as_secs_f64().floor() as usize;
    let mut sim: Vec<(f64, u32)> = vec![(0.0, 0); secs.max(1)];
    for v in voice {
        if let Some(x) = v.similarity {
            let s = (v.centre.as_secs_f64().floor() as usize).min(sim.len() - 1);
            sim[s].0 += x as f64;
            sim[s].1 += 1;
        }
    }
    mean(sim, 3)
}
