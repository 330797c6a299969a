use super::*;

/// A grey frame (neutral chroma) from its luma plane.
fn luma_frame(index: u64, pts_s: f64, w: u32, h: u32, y: Vec<u8>) -> VideoFrame {
    let chroma = ((w / 2) * (h / 2)) as usize;
    VideoFrame {
        pts: Pts::from_secs_f64(pts_s),
        index,
        width: w,
        height: h,
        colour: Default::default(),
        y,
        u: vec![128; chroma],
        v: vec![128; chroma],
    }
}

fn frame(index: u64, pts_s: f64, seed: u64) -> VideoFrame {
    let (w, h) = (64u32, 48u32);
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let y = (0..w * h)
        .map(|i| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((i % w) as u8)
                .wrapping_mul(3)
                .wrapping_add((seed as u8).wrapping_mul(23))
                .wrapping_add((s >> 60) as u8)
        })
        .collect();
    luma_frame(index, pts_s, w, h, y)
}

#[test]
fn identical_frames_for_six_seconds_are_a_freeze_noisy_frames_are_not() {
    let mut a = VideoAnalyser::new(VideoParams::default(), 1.0);
    for i in 0..20u64 {
        let seed = if (5..=11).contains(&i) { 5 } else { i };
        a.push(FrameSignature::of(&frame(i, i as f64, seed)));
    }
    let (f, _) = a.finish();
    assert_eq!(f.len(), 1, "{f:?}");
    match &f[0] {
        VideoFinding::Freeze { start, end, .. } => {
            assert_eq!(start.as_secs_f64(), 5.0);
            assert_eq!(end.as_secs_f64(), 11.0);
        }
        other => panic!("expected a freeze, got {other:?}"),
    }
}

#[test]
fn a_short_freeze_is_not_reported() {
    let mut a = VideoAnalyser::new(VideoParams::default(), 1.0);
    for i in 0..20u64 {
        let seed = if (5..=8).contains(&i) { 5 } else { i };
        a.push(FrameSignature::of(&frame(i, i as f64, seed)));
    }
    assert!(a.finish().0.is_empty());
}

/// A `w`×`h` frame of a gradient at `phase` with symmetric per-pixel noise of up to
/// ±`noise` grey levels drawn from `noise_seed` (an encoder refining a still picture, or
/// sensor noise).
fn textured(
    (w, h): (u32, u32),
    (index, pts_s): (u64, f64),
    (a, b): (f64, f64),
    noise: u8,
    noise_seed: u64,
) -> VideoFrame {
    let mut s = noise_seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let y = (0..w * h)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let (x, r) = ((i % w) as f64, (i / w) as f64);
            let base = 128.0 + 60.0 * (x / 23.0 + a).sin() * (r / 29.0 - b).cos();
            let n = (s % (2 * noise as u64 + 1)) as f64 - noise as f64;
            (base + n).clamp(0.0, 255.0) as u8
        })
        .collect();
    luma_frame(index, pts_s, w, h, y)
}

/// A 640×360 frame of `seed`'s picture (the seed sets the gradient's phase).
fn noisy(index: u64, pts_s: f64, seed: u64, noise: u8, noise_seed: u64) -> VideoFrame {
    let phase = (seed as f64 * 0.37, seed as f64 * 0.21);
    textured((640, 360), (index, pts_s), phase, noise, noise_seed)
}

#[test]
fn a_still_frame_with_compression_noise_is_a_freeze_not_a_loop() {
    let mut a = VideoAnalyser::new(VideoParams::default(), 1.0);
    for i in 0..40u64 {
        // 10–30 s: one picture, re-encoded: every frame differs by ≈ 1.5 grey levels, more
        // at "keyframes" (every 5th); outside it the picture moves every second.
        let f = if (10..=30).contains(&i) {
            noisy(i, i as f64, 10, if i % 5 == 0 { 6 } else { 3 }, i)
        } else {
            noisy(i, i as f64, i, 3, i)
        };
        a.push(FrameSignature::of(&f));
    }
    let (f, _) = a.finish();
    assert_eq!(f.len(), 1, "{f:?}");
    match &f[0] {
        VideoFinding::Freeze {
            start,
            end,
            median_mad,
            session_mad,
            ..
        } => {
            assert_eq!((start.as_secs_f64(), end.as_secs_f64()), (10.0, 30.0));
            assert!(*median_mad > 1.0, "{median_mad}");
            assert!(*session_mad > 2.0 * median_mad, "{session_mad}");
        }
        other => panic!("expected a freeze, got {other:?}"),
    }
}

/// (start, end) in seconds of the freezes among `f`.
fn freeze_spans(f: &[VideoFinding]) -> Vec<(f64, f64)> {
    f.iter()
        .filter_map(|x| match x {
            VideoFinding::Freeze { start, end, .. } => {
                Some((start.as_secs_f64(), end.as_secs_f64()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_still_picture_that_jumps_at_each_keyframe_is_one_freeze() {
    let mut a = VideoAnalyser::new(VideoParams::default(), 1.0);
    for i in 0..40u64 {
        // 10–30 s: one picture; at every 5th second a coarsely coded keyframe shows a visibly
        // different picture for one sample, and the next sample is the still picture again.
        // Outside it the picture moves every second.
        let seed = match i {
            10..=30 if i % 5 == 0 && i != 10 && i != 30 => 100 + i,
            10..=30 => 10,
            _ => i,
        };
        a.push(FrameSignature::of(&noisy(i, i as f64, seed, 2, i)));
    }
    let (f, _) = a.finish();
    assert_eq!(freeze_spans(&f), vec![(10.0, 30.0)], "{f:?}");
}

#[test]
fn a_person_who_moves_away_for_two_samples_and_back_is_not_a_freeze() {
    let mut a = VideoAnalyser::new(VideoParams::default(), 1.0);
    for i in 0..30u64 {
        // 10–13 s and 16–19 s the same calm pose; 14 and 15 s two other poses (a sway away
        // and back). One held frame is a keyframe pulse; two are motion: the runs stay apart,
        // each under the 5 s minimum.
        let seed = match i {
            10..=13 | 16..=19 => 10,
            _ => i,
        };
        a.push(FrameSignature::of(&noisy(i, i as f64, seed, 2, i)));
    }
    let (f, _) = a.finish();
    assert_eq!(freeze_spans(&f), vec![], "{f:?}");
}

#[test]
fn a_picture_that_changes_for_good_ends_the_still_run() {
    let mut a = VideoAnalyser::new(VideoParams::default(), 1.0);
    for i in 0..30u64 {
        // 5–12 s one picture, then a different one from 13 s on (also still, for two
        // samples), then motion: the jump at 13 s is not a pulse, the first run ends at 12 s.
        let seed = match i {
            5..=12 => 5,
            13..=14 => 13,
            _ => i,
        };
        a.push(FrameSignature::of(&noisy(i, i as f64, seed, 2, i)));
    }
    let (f, _) = a.finish();
    assert_eq!(freeze_spans(&f), vec![(5.0, 12.0)], "{f:?}");
}

#[test]
fn moving_pictures_replayed_are_a_loop() {
    let mut a = VideoAnalyser::new(VideoParams::default(), 1.0);
    // 0–11 s live; 12–22 s replays 1–11 s (same pictures, fresh noise).
    for i in 0..24u64 {
        let seed = if (12..=22).contains(&i) { i - 11 } else { i };
        a.push(FrameSignature::of(&noisy(i, i as f64, seed, 2, i)));
    }
    let (f, _) = a.finish();
    assert!(
        f.iter()
            .any(|x| matches!(x, VideoFinding::Loop { start, .. } if start.as_secs_f64() == 12.0)),
        "{f:?}"
    );
    assert!(
        !f.iter().any(|x| matches!(x, VideoFinding::Freeze { .. })),
        "{f:?}"
    );
}

/// A picture that changes smoothly with `t` (seconds of the scene shown), with fresh noise.
fn scene(index: u64, pts_s: f64, t: f64, noise_seed: u64) -> VideoFrame {
    textured(
        (256, 144),
        (index, pts_s),
        (1.1 * t, 0.7 * t),
        1,
        noise_seed,
    )
}

/// 0–24 s sampled once a second; from 14 s to 22 s the camera shows the scene 6.5 s earlier:
/// every sample lands half a second away from the samples it repeats.
fn replay_between_samples(glimpses: bool) -> Vec<VideoFinding> {
    let shown = |t: f64| {
        if (14.0..22.0).contains(&t) {
            t - 6.5
        } else {
            t
        }
    };
    let mut a = VideoAnalyser::new(VideoParams::default(), 1.0);
    for i in 0..240u64 {
        let t = i as f64 / 10.0;
        if i % 10 == 0 {
            a.push(FrameSignature::of(&scene(i / 10, t, shown(t), i)));
        } else if glimpses {
            let f = scene(0, t, shown(t), i);
            a.push_glimpse(Glimpse::of_luma(f.pts, &f.y, 256, 144, 256).unwrap());
        }
    }
    a.finish().0
}

#[test]
fn a_replay_between_samples_is_found_through_the_glimpses() {
    let loops = |f: &[VideoFinding]| {
        f.iter()
            .filter_map(|x| match x {
                VideoFinding::Loop { start, end, .. } => {
                    Some((start.as_secs_f64(), end.as_secs_f64()))
                }
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // The samples alone are half a second off what they repeat: as far as live motion.
    assert_eq!(loops(&replay_between_samples(false)), vec![]);
    let found = loops(&replay_between_samples(true));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].0 <= 15.0 && found[0].1 >= 20.0, "{found:?}");
}

#[test]
fn a_glimpse_ignores_row_padding_and_refuses_short_planes() {
    let (w, h, stride) = (100usize, 40usize, 128usize);
    let tight: Vec<u8> = (0..w * h).map(|i| (i % 251) as u8).collect();
    let mut padded = vec![255u8; stride * h];
    for r in 0..h {
        padded[r * stride..r * stride + w].copy_from_slice(&tight[r * w..(r + 1) * w]);
    }
    let a = Glimpse::of_luma(Pts(0), &tight, w, h, w).unwrap();
    let b = Glimpse::of_luma(Pts(0), &padded, w, h, stride).unwrap();
    assert_eq!(a.distance(&b), 0.0);
    assert!(Glimpse::of_luma(Pts(0), &tight[..w * h - 1], w, h, w).is_none());
    assert!(Glimpse::of_luma(Pts(0), &tight, 31, 18, 31).is_none());
}

#[test]
fn area_average_of_constant_plane_is_constant() {
    let y = vec![77u8; 100 * 50];
    let t = area_average(&y, 100, 50, 64, 36);
    assert!(t.iter().all(|&v| (v - 77.0).abs() < 1e-6));
}
