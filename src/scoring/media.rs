//! Events about the media itself: a missing stream, undecodable stretches.

use super::*;

/// A quality event that spans the whole session.
pub fn missing_stream_event(kind: EventKind, duration_s: f64) -> Event {
    let what = if kind == EventKind::NoVideo {
        "video"
    } else {
        "audio"
    };
    Event {
        kind,
        start_s: 0.0,
        end_s: round(duration_s, 3),
        confidence: 1.0,
        evidence: BTreeMap::new(),
        reason: format!("The recording has no {what} stream, so the {what} checks could not run."),
    }
}

/// A file is reported as partly undecodable when at least this share of its bytes (and at least
/// [`UNDECODED_MIN_BYTES`]) never reached a decoder. Container overhead measured 0.3–5.1 % on
/// the test recordings and corpus samples (WebM, Matroska, MP4, Ogg; the most for a small
/// low-bitrate MP4); a file that turns to garbage halfway leaves about half.
pub const UNDECODED_MIN_SHARE: f64 = 0.10;
pub const UNDECODED_MIN_BYTES: u64 = 64 * 1024;

/// Events for faults of the media itself: streams cut at a timestamp jump or at the duration
/// limit (one event per reason), and a file whose bytes largely never reached a decoder.
/// `bytes` is (file size, bytes the demuxer handed to decoders) when both are known.
pub fn media_fault_events(
    cuts: &[crate::ingest::Cut],
    bytes: Option<(u64, u64)>,
    analysed_s: f64,
) -> Vec<Event> {
    use crate::ingest::{CutReason, StreamKind};
    let mut events = Vec::new();
    for reason in [CutReason::TimestampJump, CutReason::DurationLimit] {
        let of: Vec<_> = cuts.iter().filter(|c| c.reason == reason).collect();
        let (Some(at), Some(claimed)) = (
            of.iter().map(|c| c.at).min(),
            of.iter().map(|c| c.claimed).max(),
        ) else {
            continue;
        };
        let streams: Vec<&str> = of
            .iter()
            .map(|c| match c.stream {
                StreamKind::Video => "video",
                StreamKind::Audio => "audio",
            })
            .collect();
        let (at_s, claimed_s) = (round(at.as_secs_f64(), 3), round(claimed.as_secs_f64(), 3));
        let why = match reason {
            CutReason::TimestampJump => format!(
                "its {} timestamps jump from {at_s:.1} s to {claimed_s:.1} s.",
                streams.join(" and ")
            ),
            CutReason::DurationLimit => format!(
                "its {} timestamps pass the duration limit (next at {claimed_s:.1} s).",
                streams.join(" and ")
            ),
        };
        events.push(Event {
            kind: EventKind::TimestampJump,
            start_s: at_s,
            end_s: at_s,
            confidence: 1.0,
            evidence: BTreeMap::from([
                ("claimed_s".into(), claimed_s.into()),
                ("streams".into(), streams.into()),
                (
                    "cut".into(),
                    match reason {
                        CutReason::TimestampJump => "timestamp_jump",
                        CutReason::DurationLimit => "duration_limit",
                    }
                    .into(),
                ),
            ]),
            reason: format!("The recording stops being analysable at {at_s:.1} s: {why}"),
        });
    }
    if let Some((size, decoded)) = bytes {
        let undecoded = size.saturating_sub(decoded);
        let share = undecoded as f64 / size.max(1) as f64;
        if undecoded >= UNDECODED_MIN_BYTES && share >= UNDECODED_MIN_SHARE {
            let end = round(analysed_s, 3);
            events.push(Event {
                kind: EventKind::UndecodableMedia,
                start_s: end,
                end_s: end,
                confidence: 1.0,
                evidence: BTreeMap::from([
                    ("file_bytes".into(), size.into()),
                    ("decoded_bytes".into(), decoded.into()),
                    ("undecoded_share".into(), round(share, 3).into()),
                ]),
                reason: format!(
                    "{:.0} % of the file ({undecoded} of {size} bytes) could not be decoded; the {end:.1} s before it were analysed.",
                    100.0 * share
                ),
            });
        }
    }
    events
}
