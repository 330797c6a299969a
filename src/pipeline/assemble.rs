//! From a session's analysis to its report: events, score, coverage, provenance.

use super::timeline::timeline;
use super::{Analysis, ScoreOptions, loudness};
use crate::analysis::face;
use crate::analysis::lipsync;
use crate::analysis::video::VideoFinding;
use crate::inference::{CAMPPLUS, SILERO_VAD};
use crate::ingest::Sampling;
use crate::media::{AUDIO_RATE, Pts};
use crate::report::{
    Coverage, Event, MediaSection, PipelineSection, PolicyRef, Report, SCHEMA, SessionInfo, round,
};
use crate::scoring::{self, EventKind, Policy, Sufficiency};
use sha2::{Digest, Sha256};

/// Which streams a session had, and how long it lasted.
struct Streams {
    video: bool,
    audio: bool,
    duration_s: f64,
}

impl Streams {
    fn of(a: &Analysis) -> Self {
        let audio_summary = &a.audio_summary;
        let video = a.summary.video.is_some() && a.frames > 0;
        let audio = a.summary.audio.is_some() && audio_summary.samples > 0;
        let video_end = a
            .per_frame
            .last()
            .map(|(p, _, _)| p.as_secs_f64() + a.interval_s.min(1.0))
            .unwrap_or(0.0);
        let audio_end =
            audio_summary.start.as_secs_f64() + audio_summary.samples as f64 / AUDIO_RATE as f64;
        Streams {
            video,
            audio,
            duration_s: video_end.max(if audio { audio_end } else { 0.0 }),
        }
    }
}

/// Scoring, report and nothing else, from a session's analysis: what re-scoring under another
/// policy would repeat, and what `benches/score.rs` measures on its own.
pub fn assemble(a: &Analysis, opts: &ScoreOptions) -> Report {
    let streams = Streams::of(a);
    let events = events(a, &streams, opts);
    let spectral_events: Vec<Event> = events
        .iter()
        .filter(|e| {
            e.kind.is_spectral() || matches!(e.kind, EventKind::Clipping | EventKind::AudioDropout)
        })
        .cloned()
        .collect();
    let events = opts.policy.admit(events);
    let score = scoring::aggregate(&opts.policy, &events, &sufficiency(a, &streams, opts));
    let session = opts.session.clone();
    let source = a.report_name.clone();
    let report_id = report_id(
        a.sha256.as_deref().unwrap_or(&source),
        &session,
        &opts.policy,
        &opts.ingest.sampling,
    );
    Report {
        schema: SCHEMA.into(),
        report_id,
        generated_at: crate::report::now_rfc3339(),
        session,
        media: MediaSection {
            source,
            sha256: a.sha256.clone(),
            size_bytes: a.size_bytes,
            duration_s: round(streams.duration_s, 3),
            container: a.summary.container.clone(),
            video: a.summary.video.clone(),
            audio: a.summary.audio.clone(),
        },
        pipeline: pipeline_section(&streams, opts),
        coverage: coverage(a, &streams),
        score,
        events,
        timeline: timeline(
            &a.per_frame,
            &a.face_samples,
            streams.audio.then_some(&a.audio_summary),
            &a.audio_summary.voice.samples,
            &spectral_events,
        ),
    }
}

/// Every analyser's events, in time order, before the policy admits them.
fn events(a: &Analysis, streams: &Streams, opts: &ScoreOptions) -> Vec<Event> {
    let audio_summary = &a.audio_summary;
    let findings = kept_video_findings(a, opts);
    let mut events = scoring::video_events(&findings);
    events.extend(scoring::face_events(&a.face_findings));
    events.extend(scoring::voice_events(
        &audio_summary.voice.findings,
        &opts.voice,
    ));
    if streams.audio
        && let Some(sp) = &audio_summary.spectral
    {
        events.extend(scoring::spectral_events(
            &sp.findings,
            audio_summary.start.as_secs_f64(),
        ));
    }
    if streams.video && streams.audio {
        events.extend(lip_events(a, &findings, opts));
    }
    tracing::debug!(
        file_bytes = ?a.size_bytes,
        demuxed_bytes = ?a.summary.demuxed_bytes,
        cuts = a.summary.cuts.len(),
        "media bytes"
    );
    events.extend(scoring::media_fault_events(
        &a.summary.cuts,
        a.size_bytes.zip(a.summary.demuxed_bytes),
        streams.duration_s,
    ));
    for (present, kind) in [
        (streams.video, EventKind::NoVideo),
        (streams.audio, EventKind::NoAudio),
    ] {
        if !present {
            events.push(scoring::missing_stream_event(kind, streams.duration_s));
        }
    }
    events.sort_by(|a, b| {
        a.start_s
            .total_cmp(&b.start_s)
            .then(a.kind.cmp(&b.kind))
            .then(a.end_s.total_cmp(&b.end_s))
    });
    events
}

/// The video findings that stand. An unchanging picture with nobody in it is an empty room
/// (reported as `face_absent`), not evidence of a frozen or pre-recorded candidate: keep freezes
/// that show a face. In the dark every change shrinks with the light, so a still picture cannot
/// be told from a still person there (`low_light` is reported instead): keep freezes whose
/// frames are mostly lit.
fn kept_video_findings(a: &Analysis, opts: &ScoreOptions) -> Vec<VideoFinding> {
    a.video_findings
        .iter()
        .filter(|f| match f {
            VideoFinding::Freeze { start, end, .. } => {
                lit(&a.per_frame, (*start, *end), opts.face.low_light_luma)
                    && a.face_samples
                        .iter()
                        .any(|s| s.pts >= *start && s.pts <= *end && s.faces > 0)
            }
            VideoFinding::Loop { .. } => true,
        })
        .cloned()
        .collect()
}

/// What the verdict may rest on: which checks had enough material.
fn sufficiency(a: &Analysis, streams: &Streams, opts: &ScoreOptions) -> Sufficiency {
    let audio = &a.audio_summary;
    Sufficiency {
        has_video: streams.video,
        has_audio: streams.audio,
        audio_checked: streams.audio && audio.spectral.is_some(),
        face_checked: a.face_enrolled
            && a.face_present_ratio
                .is_some_and(|r| r >= opts.face.min_present_ratio),
        voice_checked: streams.audio
            && audio.voice.enrolled
            && audio.speech_s >= MIN_SPEECH_FOR_VOICE_S,
        duration_s: streams.duration_s,
        frames_analysed: Some(a.frames),
    }
}

/// The analysers that ran and the models they used.
fn pipeline_section(streams: &Streams, opts: &ScoreOptions) -> PipelineSection {
    let mut analysers = Vec::new();
    let mut models = Vec::new();
    if streams.video {
        analysers.push("face_consistency".to_string());
        analysers.push("video_integrity".to_string());
        models.extend(face::model_refs());
    }
    if streams.video && streams.audio {
        analysers.push("lip_sync".to_string());
    }
    if streams.audio {
        analysers.push("voice_activity".to_string());
        analysers.push("voice_consistency".to_string());
        analysers.push("spectral_anomaly".to_string());
        models.push(SILERO_VAD.reference());
        models.push(CAMPPLUS.reference());
    }
    models.sort();
    PipelineSection {
        vigil_version: env!("CARGO_PKG_VERSION").into(),
        policy: PolicyRef {
            id: opts.policy.id.clone(),
            version: opts.policy.version.clone(),
            sha256: opts.policy.sha256.clone(),
        },
        sampling: opts.ingest.sampling,
        analysers,
        models,
    }
}

fn coverage(a: &Analysis, streams: &Streams) -> Coverage {
    let per_frame = &a.per_frame;
    let mean_frame_interval_s = (per_frame.len() >= 2).then(|| {
        let first = per_frame[0].0.as_secs_f64();
        let last = per_frame[per_frame.len() - 1].0.as_secs_f64();
        round((last - first) / (per_frame.len() - 1) as f64, 3)
    });
    Coverage {
        frames_analysed: a.frames,
        mean_frame_interval_s,
        audio_windows_analysed: a.audio_summary.per_second.len() as u64,
        face_present_ratio: a.face_present_ratio.map(|r| round(r, 3)),
        speech_s: streams.audio.then(|| round(a.audio_summary.speech_s, 2)),
    }
}

/// Lip-sync mismatches: a closed or still mouth through speech (from the sampled frames), and a
/// mouth moving out of step with the voice (from the glimpses), unless a frozen or replayed
/// picture explains the mouth — that picture is the finding. A closed mouth whose glimpses
/// follow the voice is kept out; an out-of-step span mostly covered by a closed one is that one,
/// and one mostly in the dark is not judged (the mouth's contrast falls with the light, as
/// `low_light` reports).
fn lip_events(a: &Analysis, video: &[VideoFinding], opts: &ScoreOptions) -> Vec<Event> {
    let (audio, p) = (&a.audio_summary, &opts.lipsync);
    let speaking = |t: Pts| {
        let s = (t.0.saturating_sub(audio.start.0) / 1_000_000_000) as usize;
        audio.per_second.get(s).is_some_and(|x| x.is_speech())
    };
    let covered = |(s, e): (Pts, Pts), (fs, fe): (Pts, Pts)| {
        2 * e.min(fe).0.saturating_sub(s.max(fs).0) >= e.0.saturating_sub(s.0)
    };
    let replayed = |span: (Pts, Pts)| {
        video.iter().any(|f| match f {
            VideoFinding::Freeze { start, end, .. } | VideoFinding::Loop { start, end, .. } => {
                covered(span, (*start, *end))
            }
        })
    };
    let trace = a.mouth_trace.points();
    // A mouth whose darkness follows the voice ten times a second is speaking, however little
    // it opens in the sampled frames.
    let speaks = |l: &lipsync::LipSyncFinding| {
        lipsync::trace_correlation(trace, loudness(audio), l.start, l.end)
            .is_some_and(|r| r >= p.sync_follows_corr)
    };
    let closed: Vec<_> = lipsync::detect(&a.face_samples, speaking, loudness(audio), p)
        .into_iter()
        .filter(|l| !replayed((l.start, l.end)) && !speaks(l))
        .collect();
    let unsynced: Vec<_> = lipsync::detect_unsynced(trace, speaking, loudness(audio), p)
        .into_iter()
        .filter(|u| {
            let span = (u.start, u.end);
            !replayed(span)
                && lit(&a.per_frame, span, opts.face.low_light_luma)
                && !closed.iter().any(|l| covered(span, (l.start, l.end)))
        })
        .collect();
    let mut events = scoring::lipsync_events(&closed, p);
    events.extend(scoring::unsynced_events(&unsynced, p));
    events
}

/// Whether the sampled frames in a span are mostly lit (their median mean luma at least
/// `low_light_luma`).
fn lit(per_frame: &[(Pts, f32, f32)], (start, end): (Pts, Pts), low_light_luma: f32) -> bool {
    let mut luma: Vec<f32> = per_frame
        .iter()
        .filter(|(t, _, _)| *t >= start && *t <= end)
        .map(|(_, _, l)| *l)
        .collect();
    luma.sort_by(f32::total_cmp);
    luma.get(luma.len() / 2)
        .is_some_and(|&l| l >= low_light_luma)
}

/// Voice identity counts as checked only with at least this much speech.
const MIN_SPEECH_FOR_VOICE_S: f64 = 5.0;

fn report_id(media: &str, session: &SessionInfo, policy: &Policy, sampling: &Sampling) -> String {
    let mut h = Sha256::new();
    h.update(media.as_bytes());
    h.update(serde_json::to_vec(session).expect("session serialises"));
    h.update(policy.id.as_bytes());
    h.update(policy.version.as_bytes());
    h.update(policy.sha256.as_bytes());
    h.update(serde_json::to_vec(sampling).expect("sampling serialises"));
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    format!("vr_{}", &hex::encode(h.finalize())[..24])
}
