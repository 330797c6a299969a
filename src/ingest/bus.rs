//! Reading GStreamer's bus into precise errors, and stable names for demuxers and decoders.

use super::*;

pub(super) fn drain_bus_for_error(bus: &gst::Bus, name: &str) -> Option<IngestError> {
    let mut missing = None;
    while let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) {
        match msg.view() {
            gst::MessageView::Error(err) => {
                return Some(classify_error(name, err.error(), err.debug(), missing));
            }
            gst::MessageView::Element(el) => {
                if let Some(s) = el.structure()
                    && s.name() == "missing-plugin"
                {
                    missing = Some(describe_missing_plugin(s));
                }
            }
            _ => {}
        }
    }
    None
}

pub(super) fn describe_missing_plugin(s: &gst::StructureRef) -> String {
    let kind = s.get::<String>("type").unwrap_or_else(|_| "element".into());
    let detail = s
        .get::<gst::Caps>("detail")
        .ok()
        .and_then(|c| c.structure(0).map(|s| s.name().to_string()))
        .or_else(|| s.get::<String>("detail").ok())
        .unwrap_or_else(|| "unknown".into());
    format!("{kind} for {detail}")
}

pub(super) fn classify_error(
    name: &str,
    err: gst::glib::Error,
    details: Option<gst::glib::GString>,
    missing: Option<String>,
) -> IngestError {
    let input = name.to_string();
    // GStreamer's debug text can quote the full URI (credentials, signed query): not logged.
    drop(details);
    tracing::debug!(input = %name, "GStreamer error: {err}");
    if let Some(what) = missing {
        return IngestError::MissingPlugin { input, what };
    }
    if let Some(e) = err.kind::<gst::ResourceError>() {
        return match e {
            gst::ResourceError::NotFound => IngestError::NotFound { input },
            _ => IngestError::Unreadable {
                input,
                reason: err.message().to_string(),
            },
        };
    }
    if let Some(e) = err.kind::<gst::StreamError>() {
        return match e {
            gst::StreamError::TypeNotFound | gst::StreamError::WrongType => IngestError::BadInput {
                input,
                reason:
                    "not a media file GStreamer recognises (could not determine the stream type)"
                        .into(),
            },
            gst::StreamError::CodecNotFound => IngestError::MissingPlugin {
                input,
                what: "a stream in this file".into(),
            },
            _ => IngestError::Unreadable {
                input,
                reason: err.message().to_string(),
            },
        };
    }
    IngestError::Unreadable {
        input,
        reason: err.message().to_string(),
    }
}

/// Friendly codec name for the decoder uridecodebin picked (stable across runs).
pub(super) fn codec_name(decoder: &str) -> String {
    match decoder {
        "avdec_h264" | "openh264dec" => "h264",
        "avdec_h265" | "libde265dec" => "h265",
        "vp8dec" | "avdec_vp8" => "vp8",
        "vp9dec" | "avdec_vp9" => "vp9",
        "dav1ddec" | "av1dec" | "avdec_av1" => "av1",
        "avdec_aac" | "faad" | "fdkaacdec" => "aac",
        "opusdec" | "avdec_opus" => "opus",
        "vorbisdec" => "vorbis",
        "flacdec" => "flac",
        "mpg123audiodec" | "avdec_mp3" => "mp3",
        "wavparse" => "pcm",
        other => other,
    }
    .to_string()
}

pub(super) fn container_name(demuxer: &str) -> String {
    match demuxer {
        "qtdemux" => "mp4",
        "tsdemux" => "mpegts",
        "matroskademux" => "matroska",
        "oggdemux" => "ogg",
        "wavparse" => "wav",
        "avidemux" => "avi",
        other => other,
    }
    .to_string()
}
