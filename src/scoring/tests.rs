use super::*;
use crate::media::Pts;

fn freeze(start: f64, end: f64) -> VideoFinding {
    VideoFinding::Freeze {
        start: Pts::from_secs_f64(start),
        end: Pts::from_secs_f64(end),
        frames: (end - start) as u64 + 1,
        max_mad: 0.0,
        median_mad: 0.0,
        session_mad: 5.0,
        max_thumb_mad: 0.0,
    }
}

#[test]
fn adding_an_event_never_raises_the_score() {
    let p = Policy::default();
    let s = Sufficiency {
        has_video: true,
        has_audio: true,
        audio_checked: true,
        face_checked: true,
        voice_checked: true,
        duration_s: 0.0,
        frames_analysed: None,
    };
    let mut findings = Vec::new();
    let mut last = aggregate(&p, &video_events(&findings), &s).integrity;
    assert_eq!(last, 100.0);
    for i in 0..6 {
        findings.push(freeze(i as f64 * 20.0, i as f64 * 20.0 + 8.0));
        let now = aggregate(&p, &video_events(&findings), &s).integrity;
        assert!(now <= last, "{now} > {last}");
        last = now;
    }
    assert!(last < 50.0);
}

#[test]
fn too_few_frames_per_minute_is_never_verified() {
    let p = Policy::default();
    let sparse = Sufficiency {
        frames_analysed: Some(6),
        ..all_checked()
    };
    let score = aggregate(&p, &[], &sparse);
    assert_eq!(score.verification_status, VerificationStatus::NeedsReview);
    assert!(
        score.status_reasons[0].contains("Only 6 video frames"),
        "{:?}",
        score.status_reasons
    );
    let enough = Sufficiency {
        frames_analysed: Some(40),
        ..all_checked()
    };
    assert_eq!(
        aggregate(&p, &[], &enough).verification_status,
        VerificationStatus::Verified
    );
}

#[test]
fn unchecked_identity_is_never_verified() {
    let p = Policy::default();
    let s = Sufficiency {
        has_video: true,
        has_audio: true,
        audio_checked: true,
        face_checked: false,
        voice_checked: false,
        duration_s: 0.0,
        frames_analysed: None,
    };
    let score = aggregate(&p, &[], &s);
    assert_eq!(score.integrity, 100.0);
    assert_eq!(score.verification_status, VerificationStatus::NeedsReview);
    let none = aggregate(&p, &[], &Sufficiency::default());
    assert_eq!(none.verification_status, VerificationStatus::NeedsReview);
}

#[test]
fn spectral_events_alone_raise_a_review_and_never_reject() {
    let p = Policy::default();
    let s = Sufficiency {
        has_video: true,
        has_audio: true,
        audio_checked: true,
        face_checked: true,
        voice_checked: true,
        duration_s: 0.0,
        frames_analysed: None,
    };
    let findings: Vec<SpectralFinding> = (0..12)
        .map(|i| SpectralFinding::Splice {
            at_s: i as f64 * 10.0,
            cue: SpliceCue::NoiseFloor {
                before_dbfs: -70.0,
                after_dbfs: -30.0,
            },
        })
        .collect();
    let events = spectral_events(&findings, 0.0);
    assert!(events.iter().all(|e| e.confidence <= 0.6));
    assert!(events.iter().all(|e| e.reason.contains("weak evidence")));
    let score = aggregate(&p, &events, &s);
    assert_eq!(score.verification_status, VerificationStatus::NeedsReview);
    assert!(score.components.audio.unwrap() < 100.0);
    assert!(
        score
            .status_reasons
            .iter()
            .any(|r| r.contains("never reject"))
    );
    let one = aggregate(&p, &events[..1], &s);
    assert_eq!(one.risk_tier, RiskTier::Low);
    assert_eq!(one.verification_status, VerificationStatus::NeedsReview);
}

#[test]
fn a_hum_onset_splice_names_its_cue_and_which_way_the_hum_went() {
    let finding = |level_change_db: f32| SpectralFinding::Splice {
        at_s: 15.0,
        cue: SpliceCue::HumOnset {
            mains_hz: 50.0,
            level_change_db,
        },
    };
    let events = spectral_events(&[finding(40.0), finding(-35.0)], 0.0);
    assert_eq!(events.len(), 2);
    for (e, word) in events.iter().zip(["starts", "stops"]) {
        assert_eq!(e.kind, EventKind::AudioSplice);
        assert_eq!(e.evidence["cue"], "mains_hum_onset");
        assert_eq!(e.evidence["mains_hz"], 50.0);
        assert!(e.reason.contains(word), "{}", e.reason);
        assert!(e.confidence <= 0.6 && e.reason.contains("weak evidence"));
    }
    assert_eq!(events[1].evidence["hum_level_change_db"], -35.0);
}

#[test]
fn event_kinds_serialise_as_snake_case() {
    assert_eq!(
        serde_json::to_string(&EventKind::VideoFreeze).unwrap(),
        "\"video_freeze\""
    );
    assert_eq!(
        serde_json::to_string(&EventKind::NoAudio).unwrap(),
        "\"no_audio\""
    );
}

fn ev(kind: EventKind, s: f64, e: f64, confidence: f64) -> Event {
    span_event(kind, (s, e), confidence, [], String::new())
}

fn all_checked() -> Sufficiency {
    Sufficiency {
        has_video: true,
        has_audio: true,
        audio_checked: true,
        face_checked: true,
        voice_checked: true,
        duration_s: 600.0,
        frames_analysed: None,
    }
}

/// Adding any event, of any kind and confidence, never raises the integrity or any
/// component score (deterministic pseudo-random sequences over every kind).
#[test]
fn monotone_over_random_event_sequences() {
    let p = Policy::default();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..200 {
        let mut events = Vec::new();
        let mut last = aggregate(&p, &events, &all_checked());
        for _ in 0..12 {
            let kind = EventKind::ALL[(next() % EventKind::ALL.len() as u64) as usize];
            let start = (next() % 500) as f64;
            let conf = (next() % 1000) as f64 / 1000.0;
            events.push(ev(kind, start, start + 10.0, conf));
            let now = aggregate(&p, &events, &all_checked());
            assert!(now.integrity <= last.integrity);
            let c = |s: &Score| {
                [
                    s.components.face,
                    s.components.voice,
                    s.components.audio,
                    s.components.video,
                ]
            };
            for (a, b) in c(&now).iter().zip(c(&last)) {
                assert!(a.unwrap() <= b.unwrap());
            }
            last = now;
        }
    }
}

fn strict_policy() -> Policy {
    let text = policy::DEFAULT_POLICY.replace(
        "[events.identity_change]\nweight = 60\nmin_duration_s = 0\nmin_confidence = 0\ncan_block = false",
        "[events.identity_change]\nweight = 60\nmin_duration_s = 0\nmin_confidence = 0\ncan_block = true",
    );
    assert_ne!(text, policy::DEFAULT_POLICY);
    Policy::parse(&text, "strict").unwrap()
}

#[test]
fn rejection_needs_a_blocking_kind_high_tier_and_confidence() {
    let p = strict_policy();
    // Identity change at 0.95 plus a loop: high tier, blocking → rejected.
    let events = [
        ev(EventKind::IdentityChange, 30.0, 600.0, 0.95),
        ev(EventKind::VideoLoop, 100.0, 160.0, 0.9),
    ];
    let s = aggregate(&p, &events, &all_checked());
    assert_eq!(s.risk_tier, RiskTier::High);
    assert_eq!(s.verification_status, VerificationStatus::Rejected);
    assert!(
        s.status_reasons
            .last()
            .unwrap()
            .contains("Rejected by policy")
    );
    // Same with confidence under block_min_confidence: review, not rejection.
    let weaker = [
        ev(EventKind::IdentityChange, 30.0, 600.0, 0.85),
        ev(EventKind::VideoLoop, 100.0, 160.0, 0.9),
    ];
    let s = aggregate(&p, &weaker, &all_checked());
    assert_eq!(s.verification_status, VerificationStatus::NeedsReview);
    // The default policy blocks nothing.
    let s = aggregate(&Policy::default(), &events, &all_checked());
    assert_eq!(s.verification_status, VerificationStatus::NeedsReview);
}

#[test]
fn weak_spectral_evidence_never_rejects_even_at_full_confidence() {
    let p = strict_policy();
    let events: Vec<Event> = (0..10)
        .flat_map(|i| {
            let t = i as f64 * 30.0;
            [
                ev(EventKind::SyntheticVoice, t, t + 20.0, 1.0),
                ev(EventKind::ReplaySuspected, t, t + 20.0, 1.0),
                ev(EventKind::AudioSplice, t, t + 1.0, 1.0),
                ev(EventKind::BackgroundVoice, t, t + 20.0, 1.0),
            ]
        })
        .collect();
    let s = aggregate(&p, &events, &all_checked());
    assert_eq!(s.risk_tier, RiskTier::High);
    assert_eq!(s.verification_status, VerificationStatus::NeedsReview);
}

#[test]
fn mostly_unusable_media_is_never_verified() {
    let p = Policy::default();
    let quality = [ev(EventKind::AudioDropout, 0.0, 400.0, 1.0)];
    let s = aggregate(&p, &quality, &all_checked());
    assert_eq!(s.integrity, 100.0, "quality kinds cost no integrity");
    assert_eq!(s.verification_status, VerificationStatus::NeedsReview);
    let s = aggregate(
        &p,
        &[ev(EventKind::AudioDropout, 0.0, 60.0, 1.0)],
        &all_checked(),
    );
    assert_eq!(s.verification_status, VerificationStatus::Verified);
}

#[test]
fn policy_floors_drop_weak_or_short_events() {
    let text = policy::DEFAULT_POLICY.replace(
        "[events.video_freeze]\nweight = 25\nmin_duration_s = 0\nmin_confidence = 0",
        "[events.video_freeze]\nweight = 25\nmin_duration_s = 10\nmin_confidence = 0.5",
    );
    let p = Policy::parse(&text, "floors").unwrap();
    let kept = p.admit(vec![
        ev(EventKind::VideoFreeze, 0.0, 5.0, 0.9),
        ev(EventKind::VideoFreeze, 10.0, 30.0, 0.3),
        ev(EventKind::VideoFreeze, 40.0, 60.0, 0.9),
        ev(EventKind::NoAudio, 0.0, 60.0, 1.0),
    ]);
    let spans: Vec<(f64, f64)> = kept.iter().map(|e| (e.start_s, e.end_s)).collect();
    assert_eq!(spans, [(40.0, 60.0), (0.0, 60.0)]);
}
